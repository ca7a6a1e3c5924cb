//! The SQL of the account list: one query for the page of memberships the filter selects (and
//! one to count them), then their teams, coached teams, roles, invitations and failed mail in
//! batches of accounts; and the list's statistics, counted by the database.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use sqlx::{Pool, QueryBuilder};

use super::Db;
use super::common::{CHUNK, push_binds};
use crate::store::{
    DIGEST_KIND, Doing, MailProblem, Result, STATUSES, UserFilter, UserPage, UserRow, UserSort,
    UserStats, UsersPage,
};

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

/// A membership's status as listed: `suspended` over the state under it.
const STATUS: &str = "CASE WHEN m.suspended_at IS NOT NULL AND m.state <> 'deactivated' \
     THEN 'suspended' ELSE m.state END";

/// The memberships with their accounts and organisations; the filter's conditions follow.
const FROM: &str = " FROM memberships m JOIN accounts a ON a.id = m.account_id \
     JOIN organisations o ON o.id = m.organisation_id WHERE 1 = 1";

/// One membership the filter selects, with its account and organisation.
#[derive(sqlx::FromRow)]
struct ListedRow {
    slug: String,
    organisation_id: i64,
    account_id: i64,
    email: String,
    display_name: Option<String>,
    employee_id: Option<String>,
    status: String,
    connector_id: Option<String>,
    job_title: Option<String>,
    created_at: DateTime<Utc>,
    activated_at: Option<DateTime<Utc>>,
    last_login_at: Option<DateTime<Utc>>,
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

/// Adds the filter's conditions to a query that ends in `FROM`.
fn push_filter(qb: &mut QueryBuilder<'_, Db>, filter: &UserFilter) {
    if let Some(org) = &filter.organisation {
        qb.push(" AND o.slug = ").push_bind(org.clone());
    }
    if let Some(status) = &filter.status {
        // Said in the columns' own terms where the status is one of the four, so that the
        // database can estimate how many rows match from its statistics of `state`.
        match status.as_str() {
            "invited" | "active" => {
                qb.push(" AND m.suspended_at IS NULL AND m.state = ")
                    .push_bind(status.clone());
            }
            "suspended" => {
                qb.push(" AND m.suspended_at IS NOT NULL AND m.state <> 'deactivated'");
            }
            "deactivated" => {
                qb.push(" AND m.state = 'deactivated'");
            }
            _ => {
                qb.push(format!(" AND {STATUS} = "))
                    .push_bind(status.clone());
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
    if let Some(role) = &filter.role {
        qb.push(
            " AND EXISTS (SELECT 1 FROM role_grants g JOIN roles r ON r.id = g.role_id \
             WHERE g.account_id = m.account_id AND r.organisation_id = m.organisation_id \
             AND r.name = ",
        )
        .push_bind(role.clone())
        .push(")");
    }
    if let Some(team) = &filter.team {
        for table in ["team_members", "team_coaches"] {
            let open = if table == "team_members" {
                " AND ("
            } else {
                " OR "
            };
            qb.push(format!(
                "{open}EXISTS (SELECT 1 FROM {table} l JOIN teams t ON t.id = l.team_id \
                 WHERE l.account_id = m.account_id AND t.organisation_id = m.organisation_id \
                 AND t.key = "
            ))
            .push_bind(team.clone())
            .push(")");
        }
        qb.push(")");
    }
}

/// The column a sort orders by; ties are broken by organisation, address and membership.
fn order_by(sort: UserSort) -> &'static str {
    match sort {
        UserSort::Organisation => "o.slug",
        UserSort::Email => "a.email_norm",
        UserSort::Name => "LOWER(COALESCE(a.display_name, ''))",
        UserSort::Status => STATUS,
        UserSort::Created => "m.created_at",
        UserSort::Activated => "a.activated_at",
        UserSort::LastLogin => "a.last_login_at",
    }
}

/// How many pages a page may skip before it is read from the list's other end.
const FAR_PAGES: i64 = 10;

/// The `ORDER BY` of a page: the sort's column (NULLs last either way, as both backends can
/// say), ties broken by organisation, address and membership; `reversed` turns all of it
/// round, for reading a page from the list's end.
fn order_clause(p: UserPage, reversed: bool) -> String {
    let column = order_by(p.sort);
    let (main, rest) = match (p.descending, reversed) {
        (false, false) => ("ASC", "ASC"),
        (true, false) => ("DESC", "ASC"),
        (false, true) => ("DESC", "DESC"),
        (true, true) => ("ASC", "DESC"),
    };
    // A column that is never NULL is ordered by itself, so an index on it can serve the order.
    let nulls_last = match p.sort {
        UserSort::Activated | UserSort::LastLogin => format!(
            "CASE WHEN {column} IS NULL THEN 1 ELSE 0 END {}, ",
            if reversed { "DESC" } else { "ASC" }
        ),
        _ => String::new(),
    };
    format!(
        " ORDER BY {nulls_last}{column} {main}, o.slug {rest}, a.email_norm {rest}, m.id {rest}"
    )
}

/// How many memberships the filter selects.
async fn count_users(pool: &Pool<Db>, filter: &UserFilter) -> Result<i64> {
    let mut count = QueryBuilder::<Db>::new(format!("SELECT COUNT(*){FROM}"));
    push_filter(&mut count, filter);
    count
        .build_query_scalar()
        .fetch_one(pool)
        .await
        .doing("counting accounts")
}

pub(in crate::store) async fn list_users(
    pool: &Pool<Db>,
    filter: &UserFilter,
    page: Option<UserPage>,
) -> Result<UsersPage> {
    let mut qb = QueryBuilder::<Db>::new(format!(
        "SELECT o.slug, o.id AS organisation_id, a.id AS account_id, a.email, a.display_name, \
         m.employee_id, {STATUS} AS status, m.connector_id, m.job_title, m.created_at, \
         a.activated_at, a.last_login_at{FROM}"
    ));
    // A page far down the list is read from its other end: the database then skips the
    // rows after it instead of the rows before it, so no page skips more than half the
    // matches. That needs the count first, which the answer carries anyway.
    let mut total: Option<i64> = None;
    let mut reversed = false;
    match page {
        Some(p) => {
            let per_page = i64::from(p.per_page);
            let mut offset = i64::from(p.page.saturating_sub(1)) * per_page;
            let mut limit = per_page;
            if offset >= FAR_PAGES * per_page {
                let counted = count_users(pool, filter).await?;
                total = Some(counted);
                if offset > counted / 2 {
                    reversed = true;
                    let end = (offset + per_page).min(counted);
                    limit = (end - offset).max(0);
                    offset = (counted - end).max(0);
                }
            }
            // The page's memberships are found first, ordered and skipped on the narrow
            // keys alone; then only those rows are read whole.
            qb.push(" AND m.id IN (SELECT m.id");
            qb.push(FROM);
            push_filter(&mut qb, filter);
            qb.push(order_clause(p, reversed))
                .push(" LIMIT ")
                .push_bind(limit)
                .push(" OFFSET ")
                .push_bind(offset)
                .push(")")
                .push(order_clause(p, false));
        }
        None => {
            push_filter(&mut qb, filter);
            qb.push(" ORDER BY o.slug, a.email_norm");
        }
    }
    let rows: Vec<ListedRow> = qb
        .build_query_as()
        .fetch_all(pool)
        .await
        .doing("listing accounts")?;
    let total = match (page, total) {
        (None, _) => rows.len() as i64,
        (Some(_), Some(counted)) => counted,
        // The caller counts the filter's matches itself (with its statistics).
        (Some(p), None) if !p.count => -1,
        (Some(_), None) => count_users(pool, filter).await?,
    };
    Ok(UsersPage {
        rows: decorated(pool, rows).await?,
        total,
    })
}

/// The listed memberships with their teams, coached teams, roles, invitations and failed mail,
/// read in a few queries per batch of accounts.
async fn decorated(pool: &Pool<Db>, rows: Vec<ListedRow>) -> Result<Vec<UserRow>> {
    let accounts: BTreeSet<i64> = rows.iter().map(|r| r.account_id).collect();
    let accounts: Vec<i64> = accounts.into_iter().collect();
    let mut teams: ByMembership<Vec<String>> = HashMap::new();
    let mut coached: ByMembership<Vec<String>> = HashMap::new();
    let mut roles: ByMembership<Vec<String>> = HashMap::new();
    let mut mail: ByMembership<MailProblem> = HashMap::new();
    let mut invitations: ByMembership<&'static str> = HashMap::new();
    for chunk in accounts.chunks(CHUNK) {
        failed_mail(pool, chunk, &mut mail).await?;
        invitations_of(pool, chunk, &mut invitations).await?;
        names(pool, TEAMS_OF, chunk, &mut teams).await?;
        names(pool, COACHED_BY, chunk, &mut coached).await?;
        names(pool, ROLES_OF, chunk, &mut roles).await?;
    }
    Ok(rows
        .into_iter()
        .map(|row| {
            let key = (row.account_id, row.organisation_id);
            // Deactivated people are in no team.
            let live = row.status != "deactivated";
            let in_teams = |by: &mut ByMembership<Vec<String>>| {
                if live {
                    by.remove(&key).unwrap_or_default()
                } else {
                    Vec::new()
                }
            };
            let invitation = (row.status == "invited")
                .then(|| invitations.get(&key).copied().unwrap_or("not sent"));
            UserRow {
                account_id: row.account_id,
                organisation: row.slug,
                email: row.email,
                display_name: row.display_name,
                employee_id: row.employee_id,
                status: row.status,
                connector: row.connector_id,
                job_title: row.job_title,
                teams: in_teams(&mut teams),
                coach_of: in_teams(&mut coached),
                roles: roles.get(&key).cloned().unwrap_or_default(),
                mail_problem: mail.get(&key).cloned(),
                created_at: row.created_at,
                activated_at: row.activated_at,
                last_login_at: row.last_login_at,
                invitation,
            }
        })
        .collect())
}

/// Whether each listed person's activation email went out (`sent`) or waits (`queued`).
async fn invitations_of(
    pool: &Pool<Db>,
    accounts: &[i64],
    target: &mut ByMembership<&'static str>,
) -> Result<()> {
    let mut qb = QueryBuilder::<Db>::new(
        "SELECT account_id, organisation_id, \
         MAX(CASE WHEN sent_at IS NOT NULL THEN 1 ELSE 0 END) AS sent \
         FROM mail_outbox WHERE kind = 'activation' AND cancelled_at IS NULL AND account_id IN (",
    );
    push_binds(&mut qb, accounts.iter().copied());
    qb.push(") GROUP BY account_id, organisation_id");
    let rows: Vec<(i64, i64, i32)> = qb
        .build_query_as()
        .fetch_all(pool)
        .await
        .doing("listing invitations")?;
    for (account, organisation, sent) in rows {
        target.insert(
            (account, organisation),
            if sent > 0 { "sent" } else { "queued" },
        );
    }
    Ok(())
}

pub(in crate::store) async fn user_stats(
    pool: &Pool<Db>,
    filter: &UserFilter,
    stale_before: DateTime<Utc>,
) -> Result<UserStats> {
    // Counted by the status as listed: a suspended membership is not among the invited.
    let mut qb = QueryBuilder::<Db>::new(format!(
        "SELECT {STATUS} AS status, COUNT(*) AS n, COUNT(CASE WHEN {STATUS} = 'invited' \
         AND a.activated_at IS NULL AND m.created_at < "
    ));
    qb.push_bind(stale_before).push(" THEN 1 END) AS stale");
    qb.push(FROM);
    push_filter(&mut qb, filter);
    qb.push(format!(" GROUP BY {STATUS}"));
    // The invited without an activation email, counted apart: as a condition of the query
    // (an anti-join) the database can hash the outbox once; as a count beside the others it
    // probed the outbox once per membership (265-330 ms against 65 at 96,000 on PostgreSQL).
    let mut never = QueryBuilder::<Db>::new("SELECT COUNT(*)");
    never.push(FROM);
    push_filter(&mut never, filter);
    never.push(
        " AND m.state = 'invited' AND m.suspended_at IS NULL AND NOT EXISTS \
         (SELECT 1 FROM mail_outbox x WHERE x.account_id = m.account_id \
         AND x.organisation_id = m.organisation_id AND x.kind = 'activation' \
         AND x.cancelled_at IS NULL)",
    );
    let (rows, never): (Vec<(String, i64, i64)>, i64) = tokio::try_join!(
        async {
            qb.build_query_as()
                .fetch_all(pool)
                .await
                .doing("counting accounts")
        },
        async {
            never
                .build_query_scalar()
                .fetch_one(pool)
                .await
                .doing("counting accounts never invited")
        }
    )?;
    let mut stats = UserStats {
        by_status: STATUSES.iter().map(|s| (*s, 0)).collect(),
        ..UserStats::default()
    };
    stats.never_invited = never;
    for (status, n, stale) in rows {
        stats.total += n;
        stats.stale += stale;
        if status == "active" {
            stats.can_log_in += n;
        }
        if let Some(entry) = stats.by_status.iter_mut().find(|(s, _)| *s == status) {
            entry.1 += n;
        }
    }
    Ok(stats)
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

/// The teams the listed people coach: `(account, organisation, name)`, closed by `names`.
const COACHED_BY: &str = "SELECT l.account_id, t.organisation_id, t.name FROM team_coaches l \
              JOIN teams t ON t.id = l.team_id WHERE l.account_id IN (";

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
