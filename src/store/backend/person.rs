//! The SQL of a person's page: the account, its memberships, teams, roles, and history (the
//! changes of applied runs found by address through `sync_changes_email`, and the audit
//! trail), a few queries in all.

use chrono::{DateTime, Utc};
use sqlx::Pool;

use super::Db;
use crate::store::{
    Doing, HISTORY_LINES, HistoryLine, PersonMembership, PersonRole, PersonTeam, PersonView, Result,
};

#[derive(sqlx::FromRow)]
struct AccountRow {
    email: String,
    email_norm: String,
    first_name: Option<String>,
    last_name: Option<String>,
    display_name: Option<String>,
    created_at: DateTime<Utc>,
    activated_at: Option<DateTime<Utc>>,
    last_login_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct ChangeRow {
    run_id: i64,
    started_at: DateTime<Utc>,
    connector_id: String,
    slug: String,
    kind: String,
    field: Option<String>,
    old_value: Option<String>,
    new_value: Option<String>,
    reason: String,
}

pub(in crate::store) async fn person(pool: &Pool<Db>, id: i64) -> Result<Option<PersonView>> {
    let account: Option<AccountRow> = sqlx::query_as(
        "SELECT email, email_norm, first_name, last_name, display_name, created_at, \
         activated_at, last_login_at FROM accounts WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await
    .doing("reading the person")?;
    let Some(account) = account else {
        return Ok(None);
    };
    let memberships: Vec<PersonMembership> = sqlx::query_as(
        "SELECT o.slug AS organisation, m.state, m.suspended_at, m.suspended_by, \
         m.connector_id AS connector, m.employee_id, m.job_title, m.location, \
         m.employment_type, m.created_at FROM memberships m \
         JOIN organisations o ON o.id = m.organisation_id WHERE m.account_id = $1 ORDER BY o.slug",
    )
    .bind(id)
    .fetch_all(pool)
    .await
    .doing("reading the person's memberships")?;
    let profile_owner: Option<Option<String>> = sqlx::query_scalar(
        "SELECT connector_id FROM memberships WHERE account_id = $1 \
         AND connector_id IS NOT NULL AND state <> 'deactivated' ORDER BY id LIMIT 1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await
    .doing("finding who keeps the profile")?;
    let teams: Vec<PersonTeam> = sqlx::query_as(
        "SELECT o.slug AS organisation, t.key, t.name, 'member' AS role, l.connector_id AS connector \
         FROM team_members l JOIN teams t ON t.id = l.team_id \
         JOIN organisations o ON o.id = t.organisation_id WHERE l.account_id = $1 \
         UNION ALL \
         SELECT o.slug, t.key, t.name, 'coach', l.connector_id FROM team_coaches l \
         JOIN teams t ON t.id = l.team_id JOIN organisations o ON o.id = t.organisation_id \
         WHERE l.account_id = $1 ORDER BY 1, 2, 4",
    )
    .bind(id)
    .fetch_all(pool)
    .await
    .doing("reading the person's teams")?;
    let roles: Vec<PersonRole> = sqlx::query_as(
        "SELECT o.slug AS organisation, r.name AS role, g.connector_id AS connector \
         FROM role_grants g JOIN roles r ON r.id = g.role_id \
         JOIN organisations o ON o.id = r.organisation_id WHERE g.account_id = $1 \
         ORDER BY o.slug, r.name",
    )
    .bind(id)
    .fetch_all(pool)
    .await
    .doing("reading the person's roles")?;
    let mut history = history(pool, id, &account.email_norm).await?;
    history.sort_by_key(|h| std::cmp::Reverse(h.at));
    Ok(Some(PersonView {
        account_id: id,
        email: account.email,
        first_name: account.first_name,
        last_name: account.last_name,
        display_name: account.display_name,
        created_at: account.created_at,
        activated_at: account.activated_at,
        last_login_at: account.last_login_at,
        profile_owner: profile_owner.flatten(),
        memberships,
        teams,
        roles,
        history,
    }))
}

/// The person's history: the changes applied runs made to them (by their address now), and
/// the actions taken by hand.
async fn history(pool: &Pool<Db>, id: i64, email_norm: &str) -> Result<Vec<HistoryLine>> {
    let changes: Vec<ChangeRow> = sqlx::query_as(
        "SELECT c.run_id, r.started_at, r.connector_id, o.slug, c.kind, c.field, c.old_value, \
         c.new_value, c.reason FROM sync_changes c JOIN sync_runs r ON r.id = c.run_id \
         JOIN organisations o ON o.id = r.organisation_id \
         WHERE LOWER(c.email) = $1 AND r.mode = 'apply' AND r.status IN ('succeeded', 'approved') \
         ORDER BY c.run_id DESC, c.seq LIMIT $2",
    )
    .bind(email_norm)
    .bind(HISTORY_LINES)
    .fetch_all(pool)
    .await
    .doing("reading the person's history")?;
    let mut lines: Vec<HistoryLine> = changes
        .into_iter()
        .map(|c| {
            let mut what = c.kind.replace('_', " ");
            if let Some(field) = &c.field {
                what.push_str(&format!(
                    " `{field}`: {} → {}",
                    c.old_value.as_deref().unwrap_or("(empty)"),
                    c.new_value.as_deref().unwrap_or("(empty)")
                ));
            }
            what.push_str(&format!(" ({})", c.reason));
            HistoryLine {
                at: c.started_at,
                who: format!("sync ({})", c.connector_id),
                organisation: Some(c.slug),
                what,
                run_id: Some(c.run_id),
            }
        })
        .collect();
    let trail = super::manual::audit_of_account(pool, id).await?;
    let skip = trail.len().saturating_sub(HISTORY_LINES as usize);
    lines.extend(trail.into_iter().skip(skip).map(|e| HistoryLine {
        at: e.at,
        who: format!("{} ({})", e.actor, e.via.as_str()),
        organisation: e.organisation.clone(),
        what: e.describe(),
        run_id: e.run_id,
    }));
    Ok(lines)
}
