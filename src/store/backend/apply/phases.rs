//! The phases of the applier, one function each, in the order `apply_plan` runs them, and the
//! batched statements they write with. Every statement here runs in the run's transaction.

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use sqlx::QueryBuilder;

use super::super::Db;
use super::super::common::{CHUNK, Tx, corrupt, get, push_binds};
use super::super::tokens::revoke_tokens;
use super::Scope;
use super::batches::{self, Ids, Who};
use super::report::{Queued, queue_notice};
use crate::domain::TeamKey;
use crate::planner::TeamRef;
use crate::store::{Doing, Result};

/// Phase 1, accounts: email changes (through a temporary key, so that people who swap
/// addresses never collide), field updates, then new accounts. Returns the new accounts' ids
/// by email key.
pub(super) async fn accounts<'p>(
    tx: &mut Tx<'_>,
    scope: Scope<'_>,
    batch: &batches::Accounts<'p>,
    ids: &mut Ids<'p>,
    queued: &mut Vec<Queued>,
) -> Result<()> {
    change_emails(tx, scope, &batch.email_changes, queued).await?;
    for (column, rows) in &batch.fields {
        set_column(tx, "accounts", column, rows, Some(scope.now)).await?;
    }
    for chunk in batch.new.chunks(CHUNK) {
        let mut qb = QueryBuilder::<Db>::new(
            "INSERT INTO accounts (email, email_norm, first_name, last_name, display_name, \
             created_at, updated_at) ",
        );
        qb.push_values(chunk, |mut b, account| {
            b.push_bind(account.email.as_str())
                .push_bind(account.email.key())
                .push_bind(account.first_name.as_deref())
                .push_bind(account.last_name.as_deref())
                .push_bind(account.display_name.as_deref())
                .push_bind(scope.now)
                .push_bind(scope.now);
        });
        qb.push(" RETURNING id, email_norm");
        // The returned keys, matched to the plan's own, so no copy of each is kept.
        let keys: HashSet<&'p str> = chunk.iter().map(|a| a.email.key()).collect();
        for row in qb
            .build()
            .fetch_all(&mut **tx)
            .await
            .doing("creating accounts")?
        {
            let returned: String = get(&row, "email_norm")?;
            let key = keys.get(returned.as_str()).copied().ok_or_else(|| {
                corrupt(format!(
                    "the database returned an account `{returned}` not created"
                ))
            })?;
            ids.new_accounts.insert(key, get(&row, "id")?);
        }
    }
    Ok(())
}

/// Moves accounts to their new addresses, and queues the two mails of each change: a notice to
/// the old address, and to the new one either a notice or, for an account not activated yet,
/// a new activation.
async fn change_emails(
    tx: &mut Tx<'_>,
    scope: Scope<'_>,
    changes: &[batches::EmailChange<'_>],
    queued: &mut Vec<Queued>,
) -> Result<()> {
    let mut moving: Vec<i64> = Vec::new();
    let mut new_emails: batches::Column<'_> = Vec::new();
    let mut new_keys: batches::Column<'_> = Vec::new();
    for change in changes {
        let (old, new) = (change.old.to_string(), change.new.to_string());
        moving.push(change.account);
        new_emails.push((change.account, Some(change.new.as_str())));
        new_keys.push((change.account, Some(change.new.key())));
        queued.push(Queued {
            account: change.account,
            kind: "email_changed_old",
            recipient: Some(old.clone()),
            old_email: Some(old.clone()),
            new_email: Some(new.clone()),
        });
        let (kind, old_email, new_email) = if change.resend_activation {
            ("activation", None, None)
        } else {
            ("email_changed_new", Some(old), Some(new.clone()))
        };
        queued.push(Queued {
            account: change.account,
            kind,
            recipient: Some(new),
            old_email,
            new_email,
        });
    }
    for chunk in moving.chunks(CHUNK) {
        let mut qb = QueryBuilder::<Db>::new(
            "UPDATE accounts SET email_norm = '#moving-' || CAST(id AS TEXT) WHERE id IN (",
        );
        push_binds(&mut qb, chunk.iter().copied());
        qb.push(")");
        qb.build()
            .execute(&mut **tx)
            .await
            .doing("changing email addresses")?;
    }
    set_column(tx, "accounts", "email", &new_emails, Some(scope.now)).await?;
    set_column(tx, "accounts", "email_norm", &new_keys, Some(scope.now)).await?;
    // Links sent to an old address stop working, in every organisation, whether or not a
    // new one is sent.
    revoke_tokens(tx, &moving, None, scope.now).await
}

/// Phase 2, memberships: take-overs of memberships made by hand, reactivations, field
/// updates, then new ones; and the notices they ask for.
pub(super) async fn memberships(
    tx: &mut Tx<'_>,
    scope: Scope<'_>,
    batch: &batches::Memberships<'_>,
    ids: &Ids<'_>,
    queued: &mut Vec<Queued>,
) -> Result<()> {
    // Rare: a membership made by hand that the connector takes over.
    for take_over in &batch.take_overs {
        sqlx::query(
            "UPDATE memberships SET connector_id = $1, employee_id = $2, \
             state = $3, deactivated_at = NULL, updated_at = $4 WHERE id = $5",
        )
        .bind(scope.connector)
        .bind(take_over.employee_id)
        .bind(take_over.state.as_str())
        .bind(scope.now)
        .bind(take_over.membership)
        .execute(&mut **tx)
        .await
        .doing("taking over a membership")?;
    }
    for (state, memberships) in &batch.reactivations {
        for chunk in memberships.chunks(CHUNK) {
            let mut qb = QueryBuilder::<Db>::new("UPDATE memberships SET state = ");
            qb.push_bind(*state)
                .push(", deactivated_at = NULL, updated_at = ")
                .push_bind(scope.now)
                .push(" WHERE id IN (");
            push_binds(&mut qb, chunk.iter().copied());
            qb.push(")");
            qb.build()
                .execute(&mut **tx)
                .await
                .doing("reactivating memberships")?;
        }
    }
    for (column, rows) in &batch.fields {
        set_column(tx, "memberships", column, rows, Some(scope.now)).await?;
    }
    let new = batch
        .new
        .iter()
        .map(|m| Ok((ids.account(m.account)?, m)))
        .collect::<Result<Vec<_>>>()?;
    for chunk in new.chunks(CHUNK) {
        let mut qb = QueryBuilder::<Db>::new(
            "INSERT INTO memberships (organisation_id, account_id, state, connector_id, \
             employee_id, job_title, location, employment_type, created_at, updated_at) ",
        );
        qb.push_values(chunk, |mut b, (account, m)| {
            b.push_bind(scope.org)
                .push_bind(*account)
                .push_bind(m.state.as_str())
                .push_bind(scope.connector)
                .push_bind(m.fields.employee_id.as_str())
                .push_bind(m.fields.job_title.as_deref())
                .push_bind(m.fields.location.as_deref())
                .push_bind(m.fields.employment_type.as_deref())
                .push_bind(scope.now)
                .push_bind(scope.now);
        });
        qb.build()
            .execute(&mut **tx)
            .await
            .doing("creating memberships")?;
    }
    for (who, notice) in &batch.notices {
        queue_notice(queued, ids.account(*who)?, *notice);
    }
    Ok(())
}

/// Phase 3, teams and coaches: new teams (whose ids `ids` notes by key), renames, then leaves
/// before joins.
pub(super) async fn teams_and_coaches(
    tx: &mut Tx<'_>,
    scope: Scope<'_>,
    batch: &batches::Teams<'_>,
    ids: &mut Ids<'_>,
) -> Result<()> {
    let mut new_teams = HashMap::new();
    let new: Vec<_> = batch.new.iter().collect();
    for chunk in new.chunks(CHUNK) {
        let mut qb = QueryBuilder::<Db>::new(
            "INSERT INTO teams (organisation_id, connector_id, key, name, created_at) ",
        );
        qb.push_values(chunk, |mut b, (key, name)| {
            b.push_bind(scope.org)
                .push_bind(scope.connector)
                .push_bind(key.as_str())
                .push_bind(**name)
                .push_bind(scope.now);
        });
        qb.push(" RETURNING id, key");
        for row in qb
            .build()
            .fetch_all(&mut **tx)
            .await
            .doing("creating teams")?
        {
            let key: String = get(&row, "key")?;
            let key = TeamKey::parse(&key).ok_or_else(|| corrupt("an empty team key"))?;
            new_teams.insert(key, get(&row, "id")?);
        }
    }
    set_column(tx, "teams", "name", &batch.renames, None).await?;
    // Joins may name the teams just made.
    ids.new_teams = new_teams;
    let pairs = |links: &[(&TeamRef, Who<'_>)]| {
        links
            .iter()
            .map(|(team, who)| Ok((ids.team(team)?, ids.account(*who)?)))
            .collect::<Result<Vec<_>>>()
    };
    let joins = pairs(&batch.joins)?;
    let coach_joins = pairs(&batch.coach_assigns)?;
    let (connector, now) = (scope.connector, scope.now);
    delete_links(tx, "team_members", "team_id", &batch.leaves, connector).await?;
    delete_links(
        tx,
        "team_coaches",
        "team_id",
        &batch.coach_unassigns,
        connector,
    )
    .await?;
    insert_links(tx, "team_members", "team_id", &joins, connector, now).await?;
    insert_links(tx, "team_coaches", "team_id", &coach_joins, connector, now).await
}

/// Phase 4, roles: make the roles the grants need, revoke, then grant.
pub(super) async fn roles(
    tx: &mut Tx<'_>,
    scope: Scope<'_>,
    batch: &batches::Roles<'_>,
    ids: &Ids<'_>,
) -> Result<()> {
    let names: BTreeSet<&str> = batch.grants.iter().map(|(role, _)| *role).collect();
    let names: Vec<&str> = names.into_iter().collect();
    for chunk in names.chunks(CHUNK) {
        let mut qb = QueryBuilder::<Db>::new("INSERT INTO roles (organisation_id, name) ");
        qb.push_values(chunk, |mut b, name| {
            b.push_bind(scope.org).push_bind(*name);
        });
        qb.push(" ON CONFLICT (organisation_id, name) DO NOTHING");
        qb.build()
            .execute(&mut **tx)
            .await
            .doing("creating roles")?;
    }
    let role_ids: HashMap<String, i64> =
        sqlx::query_as::<_, (i64, String)>("SELECT id, name FROM roles WHERE organisation_id = $1")
            .bind(scope.org)
            .fetch_all(&mut **tx)
            .await
            .doing("reading roles")?
            .into_iter()
            .map(|(id, name)| (name, id))
            .collect();
    // A revoke of a role the organisation does not have has nothing to remove.
    let revokes: Vec<(i64, i64)> = batch
        .revokes
        .iter()
        .filter_map(|(role, account)| role_ids.get(*role).map(|&id| (id, *account)))
        .collect();
    let grants = batch
        .grants
        .iter()
        .map(|(role, who)| {
            let role_id = role_ids
                .get(*role)
                .copied()
                .ok_or_else(|| corrupt(format!("role `{role}` does not exist")))?;
            Ok((role_id, ids.account(*who)?))
        })
        .collect::<Result<Vec<_>>>()?;
    delete_links(tx, "role_grants", "role_id", &revokes, scope.connector).await?;
    insert_links(
        tx,
        "role_grants",
        "role_id",
        &grants,
        scope.connector,
        scope.now,
    )
    .await
}

/// Phase 5, deactivations: the membership closes (which ends a suspension: a leaver is
/// deactivated, not suspended) and its pending links stop working; nothing is deleted.
pub(super) async fn deactivations(
    tx: &mut Tx<'_>,
    scope: Scope<'_>,
    batch: &batches::Deactivations,
) -> Result<()> {
    for chunk in batch.memberships.chunks(CHUNK) {
        let mut qb = QueryBuilder::<Db>::new(
            "UPDATE memberships SET state = 'deactivated', suspended_at = NULL, \
             suspended_by = NULL, deactivated_at = ",
        );
        qb.push_bind(scope.now)
            .push(", updated_at = ")
            .push_bind(scope.now)
            .push(" WHERE id IN (");
        push_binds(&mut qb, chunk.iter().copied());
        qb.push(")");
        qb.build()
            .execute(&mut **tx)
            .await
            .doing("deactivating memberships")?;
    }
    revoke_tokens(tx, &batch.accounts, scope.org, scope.now).await
}

/// Sets one text column of many rows in a few statements:
/// `UPDATE table SET column = CASE id WHEN … THEN … END WHERE id IN (…)`.
/// `table` and `column` are the store's own constants, never input.
async fn set_column(
    tx: &mut Tx<'_>,
    table: &'static str,
    column: &'static str,
    rows: &[(i64, Option<&str>)],
    updated_at: Option<DateTime<Utc>>,
) -> Result<()> {
    for chunk in rows.chunks(CHUNK) {
        let mut qb = QueryBuilder::<Db>::new(format!("UPDATE {table} SET {column} = CASE id"));
        for (id, value) in chunk {
            qb.push(" WHEN ")
                .push_bind(*id)
                .push(" THEN ")
                .push_bind(*value);
        }
        qb.push(" END");
        if let Some(at) = updated_at {
            qb.push(", updated_at = ").push_bind(at);
        }
        qb.push(" WHERE id IN (");
        push_binds(&mut qb, chunk.iter().map(|(id, _)| *id));
        qb.push(")");
        qb.build()
            .execute(&mut **tx)
            .await
            .doing("updating fields")?;
    }
    Ok(())
}

/// Adds team member, coach or role grant rows made by the connector.
async fn insert_links(
    tx: &mut Tx<'_>,
    table: &'static str,
    first: &'static str,
    rows: &[(i64, i64)],
    connector: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    for chunk in rows.chunks(CHUNK) {
        let mut qb = QueryBuilder::<Db>::new(format!(
            "INSERT INTO {table} ({first}, account_id, connector_id, created_at) "
        ));
        qb.push_values(chunk, |mut b, (target, account)| {
            b.push_bind(*target)
                .push_bind(*account)
                .push_bind(connector)
                .push_bind(now);
        });
        qb.build()
            .execute(&mut **tx)
            .await
            .doing("adding team members, coaches and roles")?;
    }
    Ok(())
}

/// Removes team member, coach or role grant rows, only those the connector made.
async fn delete_links(
    tx: &mut Tx<'_>,
    table: &'static str,
    first: &'static str,
    rows: &[(i64, i64)],
    connector: &str,
) -> Result<()> {
    for chunk in rows.chunks(CHUNK) {
        let mut qb = QueryBuilder::<Db>::new(format!("DELETE FROM {table} WHERE connector_id = "));
        qb.push_bind(connector)
            .push(format!(" AND ({first}, account_id) IN (VALUES "));
        let mut list = qb.separated(", ");
        for (target, account) in chunk {
            list.push("(")
                .push_bind_unseparated(*target)
                .push_unseparated(", ")
                .push_bind_unseparated(*account)
                .push_unseparated(")");
        }
        qb.push(")");
        qb.build()
            .execute(&mut **tx)
            .await
            .doing("removing team members, coaches and roles")?;
    }
    Ok(())
}
