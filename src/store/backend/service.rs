//! The SQL of the service API: sign-ins, and the directory read in pages of accounts, each
//! page's memberships, teams and roles read in one query each.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::{Pool, QueryBuilder};

use super::Db;
use super::common::push_binds;
use crate::domain::Email;
use crate::store::{
    DirectoryAccount, DirectoryMembership, DirectoryPage, DirectoryQuery, DirectoryRole,
    DirectoryTeamLink, Doing, Result,
};

/// Whether an account can log in: an active membership somewhere that is not suspended.
const CAN_LOG_IN: &str = "EXISTS (SELECT 1 FROM memberships m WHERE m.account_id = accounts.id \
     AND m.state = 'active' AND m.suspended_at IS NULL)";

pub(in crate::store) async fn record_sign_in(
    pool: &Pool<Db>,
    email: &Email,
    now: DateTime<Utc>,
) -> Result<Option<bool>> {
    let done = sqlx::query(&format!(
        "UPDATE accounts SET last_login_at = $1 WHERE email_norm = $2 AND {CAN_LOG_IN}"
    ))
    .bind(now)
    .bind(email.key())
    .execute(pool)
    .await
    .doing("recording a sign-in")?;
    if done.rows_affected() > 0 {
        return Ok(Some(true));
    }
    let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM accounts WHERE email_norm = $1")
        .bind(email.key())
        .fetch_optional(pool)
        .await
        .doing("finding the account")?;
    Ok(exists.map(|_| false))
}

/// The slugs of the organisations the person with address `$1` is a member of.
const MEMBER_OF: &str = "SELECT o.slug FROM memberships m JOIN accounts a ON a.id = m.account_id \
     JOIN organisations o ON o.id = m.organisation_id WHERE a.email_norm = $1";

pub(in crate::store) async fn any_organisation_of(
    pool: &Pool<Db>,
    email: &Email,
) -> Result<Option<String>> {
    sqlx::query_scalar(&format!("{MEMBER_OF} ORDER BY m.id LIMIT 1"))
        .bind(email.key())
        .fetch_optional(pool)
        .await
        .doing("finding the person's organisation")
}

pub(in crate::store) async fn organisations_of(
    pool: &Pool<Db>,
    email: &Email,
) -> Result<Vec<String>> {
    sqlx::query_scalar(&format!("{MEMBER_OF} ORDER BY o.slug"))
        .bind(email.key())
        .fetch_all(pool)
        .await
        .doing("finding the person's organisations")
}

#[derive(sqlx::FromRow)]
struct AccountRow {
    id: i64,
    email: String,
    first_name: Option<String>,
    last_name: Option<String>,
    display_name: Option<String>,
    activated_at: Option<DateTime<Utc>>,
    last_login_at: Option<DateTime<Utc>>,
    updated_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct MembershipRow {
    account_id: i64,
    #[sqlx(flatten)]
    membership: DirectoryMembership,
}

pub(in crate::store) async fn directory_page(
    pool: &Pool<Db>,
    query: &DirectoryQuery,
) -> Result<DirectoryPage> {
    let limit = query.limit.max(1);
    let mut qb = QueryBuilder::<Db>::new(
        "SELECT a.id, a.email, a.first_name, a.last_name, a.display_name, a.activated_at, \
         a.last_login_at, a.updated_at FROM accounts a WHERE a.id > ",
    );
    qb.push_bind(query.after);
    if let Some(since) = query.updated_since {
        qb.push(" AND (a.updated_at >= ")
            .push_bind(since)
            .push(" OR a.last_login_at >= ")
            .push_bind(since)
            .push(" OR EXISTS (SELECT 1 FROM memberships m WHERE m.account_id = a.id AND m.updated_at >= ")
            .push_bind(since)
            .push(") OR EXISTS (SELECT 1 FROM team_members l WHERE l.account_id = a.id AND l.created_at >= ")
            .push_bind(since)
            .push(") OR EXISTS (SELECT 1 FROM team_coaches l WHERE l.account_id = a.id AND l.created_at >= ")
            .push_bind(since)
            .push(") OR EXISTS (SELECT 1 FROM role_grants g WHERE g.account_id = a.id AND g.created_at >= ")
            .push_bind(since)
            .push("))");
    }
    qb.push(" ORDER BY a.id LIMIT ").push_bind(limit + 1);
    let mut rows: Vec<AccountRow> = qb
        .build_query_as()
        .fetch_all(pool)
        .await
        .doing("reading the directory")?;
    let more = rows.len() as i64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let next_after = if more { ids.last().copied() } else { None };
    if ids.is_empty() {
        return Ok(DirectoryPage {
            accounts: Vec::new(),
            next_after,
        });
    }
    let mut memberships = memberships_of(pool, &ids).await?;
    let mut teams = teams_of(pool, &ids).await?;
    let mut roles = roles_of(pool, &ids).await?;
    let accounts = rows
        .into_iter()
        .map(|r| DirectoryAccount {
            memberships: memberships.remove(&r.id).unwrap_or_default(),
            teams: teams.remove(&r.id).unwrap_or_default(),
            roles: roles.remove(&r.id).unwrap_or_default(),
            id: r.id,
            email: r.email,
            first_name: r.first_name,
            last_name: r.last_name,
            display_name: r.display_name,
            activated_at: r.activated_at,
            last_login_at: r.last_login_at,
            updated_at: r.updated_at,
        })
        .collect();
    Ok(DirectoryPage {
        accounts,
        next_after,
    })
}

async fn memberships_of(
    pool: &Pool<Db>,
    ids: &[i64],
) -> Result<HashMap<i64, Vec<DirectoryMembership>>> {
    let mut qb = QueryBuilder::<Db>::new(
        "SELECT m.account_id, o.slug AS organisation, m.state, \
         (m.suspended_at IS NOT NULL AND m.state <> 'deactivated') AS suspended, \
         (m.state = 'active' AND m.suspended_at IS NULL) AS can_log_in, \
         m.connector_id AS connector, m.employee_id, m.job_title, m.location, \
         m.employment_type, m.updated_at \
         FROM memberships m JOIN organisations o ON o.id = m.organisation_id \
         WHERE m.account_id IN (",
    );
    push_binds(&mut qb, ids.iter().copied());
    qb.push(") ORDER BY m.account_id, o.slug");
    let rows: Vec<MembershipRow> = qb
        .build_query_as()
        .fetch_all(pool)
        .await
        .doing("reading the directory's memberships")?;
    let mut by_account: HashMap<i64, Vec<DirectoryMembership>> = HashMap::new();
    for row in rows {
        let mut membership = row.membership;
        membership.account_id = row.account_id;
        by_account
            .entry(row.account_id)
            .or_default()
            .push(membership);
    }
    Ok(by_account)
}

async fn teams_of(pool: &Pool<Db>, ids: &[i64]) -> Result<HashMap<i64, Vec<DirectoryTeamLink>>> {
    let mut by_account: HashMap<i64, Vec<DirectoryTeamLink>> = HashMap::new();
    for (table, role) in [("team_members", "member"), ("team_coaches", "coach")] {
        let mut qb = QueryBuilder::<Db>::new(format!(
            "SELECT l.account_id, o.slug, t.key, t.name FROM {table} l \
             JOIN teams t ON t.id = l.team_id JOIN organisations o ON o.id = t.organisation_id \
             JOIN memberships m ON m.account_id = l.account_id \
             AND m.organisation_id = t.organisation_id AND m.state <> 'deactivated' \
             WHERE l.account_id IN ("
        ));
        push_binds(&mut qb, ids.iter().copied());
        qb.push(") ORDER BY o.slug, t.key");
        let rows: Vec<(i64, String, String, String)> = qb
            .build_query_as()
            .fetch_all(pool)
            .await
            .doing("reading the directory's teams")?;
        for (account, organisation, key, name) in rows {
            by_account
                .entry(account)
                .or_default()
                .push(DirectoryTeamLink {
                    organisation,
                    key,
                    name,
                    role,
                });
        }
    }
    Ok(by_account)
}

async fn roles_of(pool: &Pool<Db>, ids: &[i64]) -> Result<HashMap<i64, Vec<DirectoryRole>>> {
    let mut qb = QueryBuilder::<Db>::new(
        "SELECT g.account_id, o.slug, r.name, g.connector_id FROM role_grants g \
         JOIN roles r ON r.id = g.role_id JOIN organisations o ON o.id = r.organisation_id \
         WHERE g.account_id IN (",
    );
    push_binds(&mut qb, ids.iter().copied());
    qb.push(") ORDER BY o.slug, r.name");
    let rows: Vec<(i64, String, String, Option<String>)> = qb
        .build_query_as()
        .fetch_all(pool)
        .await
        .doing("reading the directory's roles")?;
    let mut by_account: HashMap<i64, Vec<DirectoryRole>> = HashMap::new();
    for (account, organisation, role, connector) in rows {
        by_account.entry(account).or_default().push(DirectoryRole {
            organisation,
            role,
            by_hand: connector.is_none(),
        });
    }
    Ok(by_account)
}
