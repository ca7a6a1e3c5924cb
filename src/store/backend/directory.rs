//! The SQL of the directory load, in named steps: the organisation's accounts, the accounts
//! the feed's addresses may link, who keeps each account's profile, then memberships, teams,
//! team links and role grants. A fixed number of queries, plus one per 500 feed addresses
//! (and per 500 accounts found only by address); each step decodes its rows into the domain's
//! types and drops them, so only one row set is held at a time.

use std::collections::{BTreeMap, HashSet};

use sqlx::{Pool, QueryBuilder};

use super::Db;
use super::common::{CHUNK, connector_of, corrupt, push_binds};
use crate::domain::{
    Account, AccountId, Directory, Email, EmployeeId, Grant, Membership, MembershipId,
    MembershipState, Team, TeamId, TeamKey, TeamLink,
};
use crate::store::{Doing, Result};

const ACCOUNT_COLUMNS: &str =
    "a.id, a.email, a.first_name, a.last_name, a.display_name, a.activated_at";

#[derive(sqlx::FromRow)]
struct AccountRow {
    id: i64,
    email: String,
    first_name: Option<String>,
    last_name: Option<String>,
    display_name: Option<String>,
    activated_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl TryFrom<AccountRow> for Account {
    type Error = crate::store::StoreError;

    fn try_from(row: AccountRow) -> Result<Account> {
        Ok(Account {
            id: AccountId(row.id),
            email: Email::parse(&row.email).map_err(|e| corrupt(format!("account email: {e}")))?,
            first_name: row.first_name,
            last_name: row.last_name,
            display_name: row.display_name,
            activated_at: row.activated_at,
            profile_owner: None,
            profile_owner_membership: None,
        })
    }
}

/// A live managed membership, read to find who keeps an account's profile.
#[derive(sqlx::FromRow)]
struct OwnerRow {
    id: i64,
    account_id: i64,
    connector_id: Option<String>,
}

#[derive(sqlx::FromRow)]
struct MembershipRow {
    id: i64,
    account_id: i64,
    state: String,
    connector_id: Option<String>,
    employee_id: Option<String>,
    job_title: Option<String>,
    location: Option<String>,
    employment_type: Option<String>,
}

impl TryFrom<MembershipRow> for Membership {
    type Error = crate::store::StoreError;

    fn try_from(row: MembershipRow) -> Result<Membership> {
        let state = &row.state;
        Ok(Membership {
            id: MembershipId(row.id),
            account_id: AccountId(row.account_id),
            state: MembershipState::parse(state)
                .ok_or_else(|| corrupt(format!("membership state `{state}`")))?,
            connector: connector_of(row.connector_id),
            employee_id: row.employee_id.as_deref().and_then(EmployeeId::parse),
            job_title: row.job_title,
            location: row.location,
            employment_type: row.employment_type,
        })
    }
}

#[derive(sqlx::FromRow)]
struct TeamRow {
    id: i64,
    key: String,
    name: String,
    connector_id: Option<String>,
}

/// A row of `team_members` or `team_coaches`.
#[derive(sqlx::FromRow)]
struct LinkRow {
    team_id: i64,
    account_id: i64,
    connector_id: Option<String>,
}

#[derive(sqlx::FromRow)]
struct GrantRow {
    account_id: i64,
    name: String,
    connector_id: Option<String>,
}

pub(in crate::store) async fn load_directory(
    pool: &Pool<Db>,
    organisation_id: i64,
    emails: &[String],
) -> Result<Directory> {
    let mut accounts = members(pool, organisation_id).await?;
    let by_email_only = accounts_by_email(pool, emails, &mut accounts).await?;
    profile_owners(pool, organisation_id, &by_email_only, &mut accounts).await?;
    Ok(Directory {
        accounts: accounts.into_values().collect(),
        memberships: memberships(pool, organisation_id).await?,
        teams: teams(pool, organisation_id).await?,
        team_members: team_links(
            pool,
            organisation_id,
            "team_members",
            "loading team members",
        )
        .await?,
        coaches: team_links(pool, organisation_id, "team_coaches", "loading coaches").await?,
        grants: grants(pool, organisation_id).await?,
    })
}

/// The accounts of the organisation's members, by id.
async fn members(pool: &Pool<Db>, organisation_id: i64) -> Result<BTreeMap<i64, Account>> {
    let rows: Vec<AccountRow> = sqlx::query_as(&format!(
        "SELECT {ACCOUNT_COLUMNS} FROM accounts a \
         JOIN memberships m ON m.account_id = a.id WHERE m.organisation_id = $1"
    ))
    .bind(organisation_id)
    .fetch_all(pool)
    .await
    .doing("loading the organisation's accounts")?;
    let mut accounts = BTreeMap::new();
    for row in rows {
        let a = Account::try_from(row)?;
        accounts.insert(a.id.0, a);
    }
    Ok(accounts)
}

/// Adds the accounts whose address is among the feed's `emails` and that are not members yet:
/// those a record may link. Returns their ids.
async fn accounts_by_email(
    pool: &Pool<Db>,
    emails: &[String],
    accounts: &mut BTreeMap<i64, Account>,
) -> Result<Vec<i64>> {
    // Only the feed's addresses that are not members already can be new links.
    let known: HashSet<&str> = accounts.values().map(|a| a.email.key()).collect();
    let emails: Vec<&str> = emails
        .iter()
        .map(String::as_str)
        .filter(|e| !known.contains(e))
        .collect();
    drop(known);
    let mut by_email_only: Vec<i64> = Vec::new();
    for chunk in emails.chunks(CHUNK) {
        let mut qb = QueryBuilder::<Db>::new(format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts a WHERE a.email_norm IN ("
        ));
        push_binds(&mut qb, chunk.iter().copied());
        qb.push(")");
        let rows: Vec<AccountRow> = qb
            .build_query_as()
            .fetch_all(pool)
            .await
            .doing("loading accounts by email")?;
        for row in rows {
            let a = Account::try_from(row)?;
            by_email_only.push(a.id.0);
            accounts.insert(a.id.0, a);
        }
    }
    Ok(by_email_only)
}

/// Notes who keeps each account's profile: the connector of its oldest live managed
/// membership, in any organisation. One query for the organisation's members, and batches for
/// the few accounts loaded by email only.
async fn profile_owners(
    pool: &Pool<Db>,
    organisation_id: i64,
    by_email_only: &[i64],
    accounts: &mut BTreeMap<i64, Account>,
) -> Result<()> {
    let doing = "loading who keeps each account's profile";
    let mut owners: Vec<OwnerRow> = sqlx::query_as(
        "SELECT o.id, o.account_id, o.connector_id FROM memberships m \
         JOIN memberships o ON o.account_id = m.account_id \
         WHERE m.organisation_id = $1 AND o.connector_id IS NOT NULL \
         AND o.state <> 'deactivated' ORDER BY o.id DESC",
    )
    .bind(organisation_id)
    .fetch_all(pool)
    .await
    .doing(doing)?;
    for chunk in by_email_only.chunks(CHUNK) {
        let mut qb = QueryBuilder::<Db>::new(
            "SELECT id, account_id, connector_id FROM memberships WHERE connector_id IS NOT NULL \
             AND state <> 'deactivated' AND account_id IN (",
        );
        push_binds(&mut qb, chunk.iter().copied());
        qb.push(") ORDER BY id DESC");
        owners.extend(qb.build_query_as().fetch_all(pool).await.doing(doing)?);
    }
    // Rows come newest first, so the oldest membership's connector is written last.
    for row in owners {
        if let Some(account) = accounts.get_mut(&row.account_id) {
            account.profile_owner = connector_of(row.connector_id);
            account.profile_owner_membership = Some(MembershipId(row.id));
        }
    }
    Ok(())
}

async fn memberships(pool: &Pool<Db>, organisation_id: i64) -> Result<Vec<Membership>> {
    let rows: Vec<MembershipRow> = sqlx::query_as(
        "SELECT id, account_id, state, connector_id, employee_id, job_title, location, \
         employment_type FROM memberships WHERE organisation_id = $1 ORDER BY id",
    )
    .bind(organisation_id)
    .fetch_all(pool)
    .await
    .doing("loading memberships")?;
    rows.into_iter().map(Membership::try_from).collect()
}

async fn teams(pool: &Pool<Db>, organisation_id: i64) -> Result<Vec<Team>> {
    let rows: Vec<TeamRow> = sqlx::query_as(
        "SELECT id, key, name, connector_id FROM teams WHERE organisation_id = $1 ORDER BY id",
    )
    .bind(organisation_id)
    .fetch_all(pool)
    .await
    .doing("loading teams")?;
    rows.into_iter()
        .map(|row| {
            Ok(Team {
                id: TeamId(row.id),
                key: TeamKey::parse(&row.key).ok_or_else(|| corrupt("an empty team key"))?,
                name: row.name,
                connector: connector_of(row.connector_id),
            })
        })
        .collect()
}

/// The rows of `table` (`team_members` or `team_coaches`, the store's own constants) of the
/// organisation's teams.
async fn team_links(
    pool: &Pool<Db>,
    organisation_id: i64,
    table: &'static str,
    doing: &'static str,
) -> Result<Vec<TeamLink>> {
    let rows: Vec<LinkRow> = sqlx::query_as(&format!(
        "SELECT l.team_id, l.account_id, l.connector_id FROM {table} l \
         JOIN teams t ON t.id = l.team_id WHERE t.organisation_id = $1"
    ))
    .bind(organisation_id)
    .fetch_all(pool)
    .await
    .doing(doing)?;
    Ok(rows
        .into_iter()
        .map(|row| TeamLink {
            team_id: TeamId(row.team_id),
            account_id: AccountId(row.account_id),
            connector: connector_of(row.connector_id),
        })
        .collect())
}

async fn grants(pool: &Pool<Db>, organisation_id: i64) -> Result<Vec<Grant>> {
    let rows: Vec<GrantRow> = sqlx::query_as(
        "SELECT g.account_id, r.name, g.connector_id FROM role_grants g \
         JOIN roles r ON r.id = g.role_id WHERE r.organisation_id = $1",
    )
    .bind(organisation_id)
    .fetch_all(pool)
    .await
    .doing("loading role grants")?;
    Ok(rows
        .into_iter()
        .map(|row| Grant {
            account_id: AccountId(row.account_id),
            role: row.name,
            connector: connector_of(row.connector_id),
        })
        .collect())
}
