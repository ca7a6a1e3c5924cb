//! The accounts page and `/api/accounts`: one page of the account list at a time, filtered, sorted and counted by
//! the database, with its statistics, the export of the selection or of everything the
//! filter matches (each export kept in the audit trail), and resending activation emails.

use std::collections::BTreeSet;

use askama::Template;
use axum::Extension;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use serde::Deserialize;

use super::Daemon;
use super::api::{self, internal, json_text};
use super::pages::{error_page, render, time, urlencode};
use crate::domain::Actor;
use crate::report;
use crate::store::{UserFilter, UserPage, UserRow, UserSort, UserStats};

type Shared = std::sync::Arc<Daemon>;

#[derive(Deserialize, Default, Clone)]
pub(super) struct AccountsQuery {
    pub org: Option<String>,
    pub status: Option<String>,
    pub q: Option<String>,
    pub role: Option<String>,
    pub team: Option<String>,
    /// `organisation`, `email`, `name`, `status`, `created`, `activated`, `last_login`.
    pub sort: Option<String>,
    /// `asc` or `desc`.
    pub dir: Option<String>,
    pub page: Option<u32>,
    pub per_page: Option<u32>,
}

/// The largest page of accounts.
pub(super) const MAX_PER_PAGE: u32 = 500;
/// The page size when none is asked for.
pub(super) const PER_PAGE: u32 = 100;

impl AccountsQuery {
    pub fn filter(&self) -> UserFilter {
        let some = |v: &Option<String>| v.clone().filter(|s| !s.trim().is_empty());
        UserFilter {
            organisation: some(&self.org),
            status: some(&self.status),
            search: some(&self.q).map(|s| s.trim().to_string()),
            role: some(&self.role).map(|s| s.trim().to_string()),
            team: some(&self.team).map(|s| s.trim().to_string()),
        }
    }

    /// The page asked for: sorted by email unless told otherwise, 100 to a page (at most
    /// 500), from page 1.
    pub fn page(&self) -> UserPage {
        UserPage {
            sort: self
                .sort
                .as_deref()
                .and_then(UserSort::parse)
                .unwrap_or_default(),
            descending: self.dir.as_deref() == Some("desc"),
            page: self.page.unwrap_or(1).max(1),
            per_page: self.per_page.unwrap_or(PER_PAGE).clamp(1, MAX_PER_PAGE),
            count: true,
        }
    }

    /// The query string of this filter and sort at `page` (for links between pages).
    pub fn query_string(&self, page: u32) -> String {
        let mut pairs = form_urlencoded::Serializer::new(String::new());
        for (key, value) in [
            ("q", &self.q),
            ("org", &self.org),
            ("status", &self.status),
            ("role", &self.role),
            ("team", &self.team),
            ("sort", &self.sort),
            ("dir", &self.dir),
        ] {
            if let Some(value) = value.as_deref().filter(|v| !v.is_empty()) {
                pairs.append_pair(key, value);
            }
        }
        if let Some(per_page) = self.per_page {
            pairs.append_pair("per_page", &per_page.to_string());
        }
        pairs.append_pair("page", &page.to_string());
        pairs.finish()
    }
}

/// A page of accounts, as `users --format json` writes them; `X-Total-Count` says how many the
/// filter matches, and `Link` names the next and previous pages (RFC 8288).
pub(super) async fn list_accounts(
    State(daemon): State<Shared>,
    Extension(actor): Extension<Actor>,
    Query(q): Query<AccountsQuery>,
) -> Response {
    let page = q.page();
    match daemon.app.store.list_users_page(&q.filter(), page).await {
        Ok(found) => {
            // Personal data read out through the API: kept in the audit trail like an export.
            let rows = found.rows.len().to_string();
            let entry = crate::store::AuditEntry {
                organisation: q.org.as_deref().filter(|o| !o.is_empty()),
                subject: Some("api"),
                new_value: Some(&rows),
                ..crate::store::AuditEntry::new(&actor, crate::domain::AuditAction::Export)
            };
            api::audit(&daemon, &entry).await;
            let mut response = json_text(StatusCode::OK, report::users_json(&found.rows));
            let pages = pages_of(found.total, page.per_page);
            let mut links = Vec::new();
            if page.page < pages {
                links.push(format!(
                    "</api/accounts?{}>; rel=\"next\"",
                    q.query_string(page.page + 1)
                ));
            }
            if page.page > 1 {
                links.push(format!(
                    "</api/accounts?{}>; rel=\"prev\"",
                    q.query_string(page.page - 1)
                ));
            }
            let headers = response.headers_mut();
            if let Ok(total) = HeaderValue::from_str(&found.total.to_string()) {
                headers.insert("x-total-count", total);
            }
            if !links.is_empty()
                && let Ok(link) = HeaderValue::from_str(&links.join(", "))
            {
                headers.insert(header::LINK, link);
            }
            response
        }
        Err(e) => internal(e.into()),
    }
}

/// How many pages `total` rows fill, at least one.
pub(super) fn pages_of(total: i64, per_page: u32) -> u32 {
    let per_page = i64::from(per_page.max(1));
    u32::try_from((total + per_page - 1) / per_page)
        .unwrap_or(u32::MAX)
        .max(1)
}

#[derive(Template)]
#[template(path = "accounts.html", config = "src/server/askama.toml")]
struct AccountsPage<'a> {
    title: &'a str,
    /// The filter as asked for.
    q: &'a str,
    org: &'a str,
    status: &'a str,
    role: &'a str,
    team: &'a str,
    /// The configured organisations and the statuses, and whether each is the one filtered by.
    orgs: Vec<(&'a str, bool)>,
    statuses: Vec<(&'static str, bool)>,
    stats: Stats,
    rows: Vec<AccountRow<'a>>,
    invited: Vec<&'a UserRow>,
    /// The column headers: label, the link that sorts by it, and an arrow where it sorts now.
    headers: Vec<(&'static str, String, &'static str)>,
    pager: Pager,
}

/// Links between the pages of a list.
struct Pager {
    page: u32,
    pages: u32,
    total: i64,
    first_shown: i64,
    last_shown: i64,
    previous: Option<String>,
    next: Option<String>,
}

/// A row of the accounts table.
struct AccountRow<'a> {
    user: &'a UserRow,
    roles: String,
    teams: String,
    coach_of: String,
    created: String,
    activated: String,
    last_login: String,
    can_log_in: &'static str,
    mail_problem: String,
    /// The person's page.
    link: String,
}

/// Accounts: a page of them with filters, sorting, statistics and export.
pub async fn accounts(State(daemon): State<Shared>, Query(q): Query<AccountsQuery>) -> Response {
    let filter = q.filter();
    // The statistics count the matches; the page need not count them again.
    let paging = UserPage {
        count: false,
        ..q.page()
    };
    let store = &daemon.app.store;
    let stale_days = daemon.app.config.settings.server.stale_invite_days;
    let stale_before = Utc::now() - chrono::Duration::days(i64::from(stale_days));
    let (found, counted) = match tokio::try_join!(
        store.list_users_page(&filter, paging),
        store.user_stats(&filter, stale_before)
    ) {
        Ok(both) => both,
        Err(e) => {
            return error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Accounts",
                &e.to_string(),
            );
        }
    };
    let users = &found.rows;
    let total = counted.total;
    let orgs = daemon
        .app
        .config
        .settings
        .organisations
        .keys()
        .map(|o| (o.as_str(), q.org.as_deref() == Some(o.as_str())))
        .collect();
    let statuses = crate::store::STATUSES
        .into_iter()
        .map(|s| (s, q.status.as_deref() == Some(s)))
        .collect();
    let rows = users
        .iter()
        .map(|u| AccountRow {
            user: u,
            roles: u.roles.join(", "),
            teams: u.teams.join(", "),
            coach_of: u.coach_of.join(", "),
            created: time(u.created_at),
            activated: u.activated_at.map(time).unwrap_or_default(),
            last_login: u.last_login_at.map(time).unwrap_or_default(),
            can_log_in: if u.can_log_in() { "yes" } else { "no" },
            mail_problem: crate::report::mail_problem_text(u),
            link: format!(
                "/people/{}?org={}",
                u.account_id,
                urlencode(&u.organisation)
            ),
        })
        .collect();
    let pages = pages_of(total, paging.per_page);
    let link = |page: u32| format!("/accounts?{}", q.query_string(page));
    let first_shown = i64::from(paging.page - 1) * i64::from(paging.per_page) + 1;
    let pager = Pager {
        page: paging.page,
        pages,
        total,
        first_shown: first_shown.min(total),
        last_shown: (first_shown + users.len() as i64 - 1).max(0),
        previous: (paging.page > 1).then(|| link(paging.page - 1)),
        next: (paging.page < pages).then(|| link(paging.page + 1)),
    };
    let headers = sort_headers(&q, paging);
    let page = AccountsPage {
        title: "Accounts",
        q: q.q.as_deref().unwrap_or(""),
        org: q.org.as_deref().unwrap_or(""),
        status: q.status.as_deref().unwrap_or(""),
        role: q.role.as_deref().unwrap_or(""),
        team: q.team.as_deref().unwrap_or(""),
        orgs,
        statuses,
        stats: stats(&counted, stale_days),
        rows,
        // Resending is a form of its own per invited person, outside the export form.
        invited: users.iter().filter(|u| u.status == "invited").collect(),
        headers,
        pager,
    };
    render(StatusCode::OK, &page)
}

/// The sortable column headers: a link that sorts by the column (the other way when it sorts
/// by it already), and the arrow of the current sort.
fn sort_headers(q: &AccountsQuery, paging: UserPage) -> Vec<(&'static str, String, &'static str)> {
    [
        ("Organisation", UserSort::Organisation),
        ("Name", UserSort::Name),
        ("Email", UserSort::Email),
        ("Status", UserSort::Status),
        ("Created", UserSort::Created),
        ("Activated", UserSort::Activated),
        ("Last login", UserSort::LastLogin),
    ]
    .into_iter()
    .map(|(label, sort)| {
        let current = paging.sort == sort;
        let descending = current && !paging.descending;
        let mut by = q.clone();
        by.sort = Some(sort.as_str().to_string());
        by.dir = Some(if descending { "desc" } else { "asc" }.to_string());
        let arrow = match (current, paging.descending) {
            (false, _) => "",
            (true, false) => " ▲",
            (true, true) => " ▼",
        };
        (label, format!("/accounts?{}", by.query_string(1)), arrow)
    })
    .collect()
}

/// The statistics of the filter: counts per status with their share, who can log in,
/// invitations never sent, and invited people who have not activated within `stale_days`.
struct Stats {
    total: i64,
    /// Status, count, and percentage of the total (one decimal).
    counts: Vec<(&'static str, i64, String)>,
    can_log_in: i64,
    can_log_in_share: String,
    never_invited: i64,
    stale: i64,
    stale_days: u32,
}

/// The statistics block on its own (the accounts page includes the same template).
#[derive(Template)]
#[template(path = "stats.html", config = "src/server/askama.toml")]
struct StatsBlock<'a> {
    stats: &'a Stats,
}

fn share(n: i64, total: i64) -> String {
    if total == 0 {
        "0%".to_string()
    } else {
        format!("{:.1}%", n as f64 * 100.0 / total as f64)
    }
}

fn stats(counted: &UserStats, stale_days: u32) -> Stats {
    Stats {
        total: counted.total,
        counts: counted
            .by_status
            .iter()
            .map(|(status, n)| (*status, *n, share(*n, counted.total)))
            .collect(),
        can_log_in: counted.can_log_in,
        can_log_in_share: share(counted.can_log_in, counted.total),
        never_invited: counted.never_invited,
        stale: counted.stale,
        stale_days,
    }
}

/// Exports the selected accounts (or every account the filter shows) as XLSX or CSV.
pub async fn export(
    State(daemon): State<Shared>,
    Extension(actor): Extension<Actor>,
    body: String,
) -> Response {
    let mut selected: BTreeSet<String> = BTreeSet::new();
    let mut query = AccountsQuery::default();
    let mut format = String::from("csv");
    let mut all = false;
    for (key, value) in form_urlencoded::parse(body.as_bytes()) {
        match key.as_ref() {
            "id" => {
                selected.insert(value.into_owned());
            }
            "q" => query.q = Some(value.into_owned()),
            "org" => query.org = Some(value.into_owned()),
            "status" => query.status = Some(value.into_owned()),
            "role" => query.role = Some(value.into_owned()),
            "team" => query.team = Some(value.into_owned()),
            "all" => all = value == "true",
            "format" => format = value.into_owned(),
            _ => {}
        }
    }
    // "All that the filter matches" overrides a selection on the page.
    if all {
        selected.clear();
    }
    let users = match daemon.app.store.list_users(&query.filter()).await {
        Ok(users) => users,
        Err(e) => return error_page(StatusCode::INTERNAL_SERVER_ERROR, "Export", &e.to_string()),
    };
    let users: Vec<UserRow> = users
        .into_iter()
        .filter(|u| {
            selected.is_empty()
                || selected.contains(&format!("{}:{}", u.organisation, u.account_id))
        })
        .collect();
    // An export of personal data is an action by hand: who took which rows, and how.
    let rows = users.len().to_string();
    let entry = crate::store::AuditEntry {
        organisation: query.org.as_deref().filter(|o| !o.is_empty()),
        subject: Some(format.as_str()),
        new_value: Some(&rows),
        ..crate::store::AuditEntry::new(&actor, crate::domain::AuditAction::Export)
    };
    api::audit(&daemon, &entry).await;
    // Headers in the organisation's language when the export is of one organisation.
    let settings = &daemon.app.config.settings;
    let language = query
        .org
        .as_deref()
        .and_then(|o| settings.organisations.get(o))
        .or_else(|| {
            let mut orgs = settings.organisations.values();
            orgs.next().filter(|_| orgs.next().is_none())
        })
        .map(|o| o.locale.clone())
        .unwrap_or_else(|| "en".to_string());
    let stamp = Utc::now().format("%Y%m%d-%H%M%S");
    let (bytes, content_type, extension) = match format.as_str() {
        "xlsx" => match report::users_xlsx(&users, &language) {
            Ok(b) => (
                b,
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                "xlsx",
            ),
            Err(e) => {
                return error_page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Export",
                    &format!("{e:#}"),
                );
            }
        },
        "csv" => match report::users_csv(&users) {
            Ok(text) => (text.into_bytes(), "text/csv; charset=utf-8", "csv"),
            Err(e) => {
                return error_page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Export",
                    &format!("{e:#}"),
                );
            }
        },
        other => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "Export",
                &format!("unknown export format `{other}`; xlsx or csv"),
            );
        }
    };
    (
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"accounts-{stamp}.{extension}\""),
            ),
        ],
        bytes,
    )
        .into_response()
}

#[derive(Deserialize)]
pub struct ResendForm {
    org: String,
    email: String,
}

pub async fn resend(
    State(daemon): State<Shared>,
    Extension(actor): Extension<Actor>,
    axum::Form(form): axum::Form<ResendForm>,
) -> Response {
    match api::resend(&daemon, &form.org, &form.email, &actor).await {
        Ok(_) => Redirect::to(&format!("/accounts?q={}", urlencode(&form.email))).into_response(),
        Err((status, message)) => error_page(status, "Not resent", &message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics_show_each_status_with_its_share_of_the_filter() {
        let counted = UserStats {
            total: 3,
            by_status: vec![
                ("invited", 2),
                ("active", 1),
                ("suspended", 0),
                ("deactivated", 0),
            ],
            can_log_in: 1,
            stale: 1,
            never_invited: 1,
        };

        let html = StatsBlock {
            stats: &stats(&counted, 7),
        }
        .render()
        .unwrap();

        assert!(html.contains("<strong>3</strong> matching"), "{html}");
        assert!(
            html.contains("<strong>2</strong> invited <span class=\"hint\">66.7%</span>"),
            "{html}"
        );
        assert!(
            html.contains("<strong>1</strong> can log in <span class=\"hint\">33.3%</span>"),
            "{html}"
        );
        assert!(
            html.contains("<strong>1</strong> invited over 7 days ago"),
            "{html}"
        );
        assert!(
            html.contains("<strong>1</strong> invited, email not sent"),
            "{html}"
        );
    }
}
