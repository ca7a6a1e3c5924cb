//! The SQL of the account list: one query for the memberships the filter selects, then their
//! teams, roles and failed mail in batches of accounts.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use sqlx::{Pool, QueryBuilder};

use super::Db;
use super::common::{CHUNK, push_binds};
use crate::store::{DIGEST_KIND, Doing, MailProblem, Result, UserFilter, UserRow};

/// `text` as a `LIKE` pattern matching it literally; a backslash is the `ESCAPE` character.
fn like_literal(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | '%' | '_') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// One membership the filter selects, with its account and organisation.
#[derive(sqlx::FromRow)]
struct ListedRow {
    slug: String,
    organisation_id: i64,
    account_id: i64,
    email: String,
    display_name: Option<String>,
    employee_id: Option<String>,
    state: String,
    connector_id: Option<String>,
    job_title: Option<String>,
    created_at: DateTime<Utc>,
    activated_at: Option<DateTime<Utc>>,
}

/// A failed mail to a person, by membership.
#[derive(sqlx::FromRow)]
struct FailedMailRow {
    account_id: i64,
    organisation_id: i64,
    kind: String,
    last_error: Option<String>,
    failed_at: Option<DateTime<Utc>>,
}

/// What the list shows beside each membership, by `(account, organisation)`.
type ByMembership<T> = HashMap<(i64, i64), T>;

pub(in crate::store) async fn list_users(
    pool: &Pool<Db>,
    filter: &UserFilter,
) -> Result<Vec<UserRow>> {
    let rows = listed(pool, filter).await?;
    // Teams, roles and failed mail of the listed people, in a few queries.
    let accounts: BTreeSet<i64> = rows.iter().map(|r| r.account_id).collect();
    let accounts: Vec<i64> = accounts.into_iter().collect();
    let mut teams: ByMembership<Vec<String>> = HashMap::new();
    let mut roles: ByMembership<Vec<String>> = HashMap::new();
    let mut mail: ByMembership<MailProblem> = HashMap::new();
    for chunk in accounts.chunks(CHUNK) {
        failed_mail(pool, chunk, &mut mail).await?;
        names(pool, TEAMS_OF, chunk, &mut teams).await?;
        names(pool, ROLES_OF, chunk, &mut roles).await?;
    }
    Ok(rows
        .into_iter()
        .map(|row| {
            let key = (row.account_id, row.organisation_id);
            UserRow {
                account_id: row.account_id,
                organisation: row.slug,
                email: row.email,
                display_name: row.display_name,
                employee_id: row.employee_id,
                status: row.state,
                connector: row.connector_id,
                job_title: row.job_title,
                teams: teams.get(&key).cloned().unwrap_or_default(),
                roles: roles.get(&key).cloned().unwrap_or_default(),
                mail_problem: mail.get(&key).cloned(),
                created_at: row.created_at,
                activated_at: row.activated_at,
            }
        })
        .collect())
}

/// The memberships the filter selects, by organisation and address.
async fn listed(pool: &Pool<Db>, filter: &UserFilter) -> Result<Vec<ListedRow>> {
    let mut qb = QueryBuilder::<Db>::new(
        "SELECT o.slug, o.id AS organisation_id, a.id AS account_id, a.email, a.display_name, \
         m.employee_id, CASE WHEN m.suspended_at IS NOT NULL AND m.state <> 'deactivated' \
         THEN 'suspended' ELSE m.state END AS state, m.connector_id, m.job_title, m.created_at, a.activated_at \
         FROM memberships m JOIN accounts a ON a.id = m.account_id \
         JOIN organisations o ON o.id = m.organisation_id WHERE 1 = 1",
    );
    if let Some(org) = &filter.organisation {
        qb.push(" AND o.slug = ").push_bind(org.as_str());
    }
    if let Some(status) = &filter.status {
        // A suspended membership is listed as `suspended`, not as the state under it.
        if status == "suspended" {
            qb.push(" AND m.suspended_at IS NOT NULL AND m.state <> 'deactivated'");
        } else {
            qb.push(" AND m.state = ").push_bind(status.as_str());
            if status != "deactivated" {
                qb.push(" AND m.suspended_at IS NULL");
            }
        }
    }
    if let Some(text) = &filter.search {
        // The admin's text is matched literally: `%`, `_` and the escape character itself
        // are escaped, and `ESCAPE` names the same character on both backends.
        let like = format!("%{}%", like_literal(&text.to_lowercase()));
        qb.push(" AND (a.email_norm LIKE ")
            .push_bind(like.clone())
            .push(" ESCAPE '\\' OR LOWER(COALESCE(a.display_name, '')) LIKE ")
            .push_bind(like.clone())
            .push(" ESCAPE '\\' OR LOWER(COALESCE(m.employee_id, '')) LIKE ")
            .push_bind(like)
            .push(" ESCAPE '\\')");
    }
    qb.push(" ORDER BY o.slug, a.email_norm");
    qb.build_query_as()
        .fetch_all(pool)
        .await
        .doing("listing accounts")
}

/// Notes each listed person's mail that failed and has not been followed by one of the same
/// kind that went out (a resent activation mends a lost one; an email-change notice does not):
/// the newest such mail per membership (later rows overwrite earlier ones).
async fn failed_mail(
    pool: &Pool<Db>,
    accounts: &[i64],
    mail: &mut ByMembership<MailProblem>,
) -> Result<()> {
    let mut qb = QueryBuilder::<Db>::new(
        "SELECT m.account_id, m.organisation_id, m.kind, m.last_error, m.failed_at \
         FROM mail_outbox m WHERE m.last_error IS NOT NULL AND m.sent_at IS NULL \
         AND m.cancelled_at IS NULL AND m.kind <> ",
    );
    qb.push_bind(DIGEST_KIND);
    qb.push(
        " AND NOT EXISTS (SELECT 1 FROM mail_outbox n WHERE n.account_id = m.account_id \
         AND n.organisation_id = m.organisation_id AND n.kind = m.kind AND n.id > m.id \
         AND n.sent_at IS NOT NULL) \
         AND m.account_id IN (",
    );
    push_binds(&mut qb, accounts.iter().copied());
    qb.push(") ORDER BY m.id");
    let rows: Vec<FailedMailRow> = qb
        .build_query_as()
        .fetch_all(pool)
        .await
        .doing("listing failed emails")?;
    for row in rows {
        mail.insert(
            (row.account_id, row.organisation_id),
            MailProblem {
                kind: row.kind,
                error: row.last_error.unwrap_or_default(),
                undeliverable: row.failed_at.is_some(),
            },
        );
    }
    Ok(())
}

/// The teams of the listed people: `(account, organisation, name)`, closed by `names`.
const TEAMS_OF: &str = "SELECT l.account_id, t.organisation_id, t.name FROM team_members l \
              JOIN teams t ON t.id = l.team_id WHERE l.account_id IN (";

/// The roles of the listed people: `(account, organisation, name)`, closed by `names`.
const ROLES_OF: &str = "SELECT g.account_id, r.organisation_id, r.name FROM role_grants g \
              JOIN roles r ON r.id = g.role_id WHERE g.account_id IN (";

/// Adds the names `sql` (`TEAMS_OF` or `ROLES_OF`) gives the accounts to `target`, in name
/// order.
async fn names(
    pool: &Pool<Db>,
    sql: &'static str,
    accounts: &[i64],
    target: &mut ByMembership<Vec<String>>,
) -> Result<()> {
    let mut qb = QueryBuilder::<Db>::new(sql);
    push_binds(&mut qb, accounts.iter().copied());
    qb.push(") ORDER BY 3");
    let rows: Vec<(i64, i64, String)> = qb
        .build_query_as()
        .fetch_all(pool)
        .await
        .doing("listing teams and roles")?;
    for (account, organisation, name) in rows {
        target
            .entry((account, organisation))
            .or_default()
            .push(name);
    }
    Ok(())
}
