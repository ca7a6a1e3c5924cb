//! The admin pages: server-rendered HTML with no build step and no JavaScript. Runs with a
//! chart of changes per run, one run grouped by kind with its approve button, accounts with
//! filters, statistics and export, and sign-in with the admin token, which starts a session
//! (`auth.rs`) that signing out ends on the server.
//!
//! Each page is an askama template in `templates/` (checked when hrsync compiles), which
//! HTML-escapes every value it shows; forms post back to the same origin (the pages'
//! content security policy allows nothing else), the sign-in cookie is `SameSite=Strict`, and
//! a cookie-signed form from another origin is refused, so another site (a sibling subdomain
//! included) cannot make an admin's browser approve a run.

use std::collections::{BTreeMap, BTreeSet};

use askama::Template;
use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::api::{self, AccountsQuery};
use super::auth::{self, sign_in_cookie, sign_out_cookie};
use super::{Daemon, NotApproved};
use crate::domain::{
    Actor, ChangeLine, RunError, RunMode, RunReport, RunStatus, RunSummary, Trigger,
};
use crate::planner::ChangeKind;
use crate::report;
use crate::store::{PrincipalKind, UserPage, UserRow, UserSort, UserStats};

type Shared = std::sync::Arc<Daemon>;

/// Renders a page with `status`. A page that cannot be rendered (only a failing `Display` of
/// a value could do that) is answered with a 500 and logged, never with half a page.
fn render(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "Cannot render a page");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "The page could not be rendered.",
            )
                .into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "error.html", config = "src/server/askama.toml")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
}

fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    render(status, &ErrorPage { title, message })
}

fn time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// A path to go back to after signing in: only a path on this site. Browsers drop tabs and
/// line breaks from a URL and read `\\` as `/`, so `/\t/evil.example` would be
/// `//evil.example`: any white space, control character or backslash is refused.
fn local_path(next: &str) -> &str {
    let plain = !next
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '\\');
    if plain && next.starts_with('/') && !next.starts_with("//") {
        next
    } else {
        "/runs"
    }
}

#[derive(Template)]
#[template(path = "sign_in.html", config = "src/server/askama.toml")]
struct SignInPage<'a> {
    next: &'a str,
    problem: Option<&'a str>,
}

/// The sign-in page, with `status` (401 when an admin page was asked for without the token).
pub fn sign_in_page(status: StatusCode, next: &str, problem: Option<&str>) -> Response {
    render(
        status,
        &SignInPage {
            next: local_path(next),
            problem,
        },
    )
}

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

pub async fn sign_in_form(Query(q): Query<NextQuery>) -> Response {
    sign_in_page(StatusCode::OK, q.next.as_deref().unwrap_or("/runs"), None)
}

#[derive(Deserialize)]
pub struct SignInForm {
    token: String,
    next: Option<String>,
}

/// Signs in with the admin token: starts a session and keeps its id (never the token) in the
/// cookie.
pub async fn sign_in(
    State(daemon): State<Shared>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<SignInForm>,
) -> Response {
    let next = local_path(form.next.as_deref().unwrap_or("/runs")).to_string();
    let token = form.token.trim();
    let unavailable = |e: &dyn std::fmt::Display| {
        tracing::error!(error = %e, "Cannot start an admin session");
        sign_in_page(
            StatusCode::SERVICE_UNAVAILABLE,
            &next,
            Some("Signing in is not possible right now; try again shortly."),
        )
    };
    // The configured token signs in as `admin`; a named admin's token as that admin.
    let admin_name: Option<String> = if daemon.token.accepts(token) {
        None
    } else {
        let named = daemon
            .app
            .store
            .principal_by_token(PrincipalKind::Admin, &auth::session_hash(token))
            .await;
        match named {
            Ok(Some(name)) => Some(name),
            Ok(None) => {
                tracing::warn!("Sign-in with a wrong admin token");
                return sign_in_page(
                    StatusCode::UNAUTHORIZED,
                    &next,
                    Some("That is not an admin token."),
                );
            }
            Err(e) => return unavailable(&e),
        }
    };
    let id = match auth::new_session_id() {
        Ok(id) => id,
        Err(e) => return unavailable(&e),
    };
    let store = &daemon.app.store;
    let now = Utc::now();
    if let Err(e) = store
        .create_admin_session(
            &auth::session_hash(&id),
            admin_name.as_deref(),
            now,
            daemon.sessions.expires_at(now),
        )
        .await
    {
        return unavailable(&e);
    }
    // The browser's earlier session, if any, is of no more use.
    if let Some(old) = auth::session_cookie(&headers)
        && let Err(e) = store
            .revoke_admin_session(&auth::session_hash(old), now)
            .await
    {
        tracing::warn!(error = %e, "Could not end the earlier admin session at sign-in");
    }
    // Sessions start only here, so this is where ended ones are cleared away: the table holds
    // little more than the sessions of the last idle period.
    if let Err(e) = store
        .purge_admin_sessions(now, daemon.sessions.idle_since(now))
        .await
    {
        tracing::warn!(error = %e, "Could not purge ended admin sessions");
    }
    tracing::info!(
        admin = admin_name.as_deref().unwrap_or(auth::CONFIGURED_ADMIN),
        "Admin signed in"
    );
    let secure = daemon.app.config.settings.server.cookie_secure;
    (
        [(header::SET_COOKIE, sign_in_cookie(&id, secure))],
        Redirect::to(&next),
    )
        .into_response()
}

/// Signs out: ends the session on the server, so its cookie is refused wherever it was
/// kept, and forgets the cookie.
pub async fn sign_out(State(daemon): State<Shared>, headers: HeaderMap) -> Response {
    if auth::cross_origin_form(&Method::POST, &headers) {
        tracing::warn!("Refused a cross-origin sign-out");
        return error_page(
            StatusCode::FORBIDDEN,
            "Not signed out",
            "This form was sent from another origin.",
        );
    }
    if let Some(id) = auth::session_cookie(&headers) {
        match daemon
            .app
            .store
            .revoke_admin_session(&auth::session_hash(id), Utc::now())
            .await
        {
            Ok(true) => tracing::info!("Admin signed out"),
            Ok(false) => {}
            Err(e) => {
                tracing::error!(error = %e, "Cannot end an admin session");
                // The session still works on the server: say so rather than pretend.
                return error_page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Not signed out",
                    "Signing out did not reach the database; try again shortly.",
                );
            }
        }
    }
    let secure = daemon.app.config.settings.server.cookie_secure;
    (
        [(header::SET_COOKIE, sign_out_cookie(secure))],
        Redirect::to("/signin"),
    )
        .into_response()
}

pub async fn home() -> Redirect {
    Redirect::to("/runs")
}

#[derive(Deserialize)]
pub struct RunsQuery {
    connector: Option<String>,
}

#[derive(Template)]
#[template(path = "runs.html", config = "src/server/askama.toml")]
struct RunsPage<'a> {
    title: &'a str,
    chart: Option<Chart<'a>>,
    /// The configured connectors, and whether the list is filtered by each.
    filter: Vec<(&'a str, bool)>,
    rows: Vec<RunRow<'a>>,
}

/// A row of the runs table.
struct RunRow<'a> {
    id: i64,
    connector: &'a str,
    organisation: &'a str,
    when: String,
    mode: RunMode,
    trigger: Trigger,
    status: RunStatus,
    fetched: i64,
    changes: String,
}

/// The runs table, with a chart of changes per run over time.
pub async fn runs(State(daemon): State<Shared>, Query(q): Query<RunsQuery>) -> Response {
    let connector = q.connector.filter(|c| !c.is_empty());
    let runs = match daemon.app.store.list_runs(100, connector.as_deref()).await {
        Ok(runs) => runs,
        Err(e) => return error_page(StatusCode::INTERNAL_SERVER_ERROR, "Runs", &e.to_string()),
    };
    let filter = daemon
        .app
        .config
        .settings
        .connectors
        .keys()
        .map(|c| (c.as_str(), connector.as_deref() == Some(c.as_str())))
        .collect();
    let rows = runs
        .iter()
        .map(|r| RunRow {
            id: r.id,
            connector: &r.connector,
            organisation: &r.organisation,
            when: time(r.started_at),
            mode: r.mode,
            trigger: r.trigger,
            status: r.status,
            fetched: r.records_fetched,
            changes: report::counts_summary(r),
        })
        .collect();
    let page = RunsPage {
        title: "Runs",
        chart: chart(&runs),
        filter,
        rows,
    };
    render(StatusCode::OK, &page)
}

/// The chart of changes per run: the last 40 runs, oldest on the left; held and failed runs
/// are coloured so they stand out.
struct Chart<'a> {
    width: f64,
    height: f64,
    pad: f64,
    /// The most changes of a shown run (at least 1), the top of the scale.
    max: i64,
    bars: Vec<Bar<'a>>,
}

/// One run's bar.
struct Bar<'a> {
    id: i64,
    x: f64,
    y: f64,
    width: f64,
    height: f64,
    colour: &'static str,
    connector: &'a str,
    status: RunStatus,
    changes: i64,
}

/// The chart of the last runs, or none when there is no run.
fn chart(runs: &[RunSummary]) -> Option<Chart<'_>> {
    let shown: Vec<&RunSummary> = runs.iter().take(40).rev().collect();
    if shown.is_empty() {
        return None;
    }
    let (width, height, pad) = (800.0_f64, 140.0_f64, 20.0_f64);
    let max = shown
        .iter()
        .map(|r| report::actionable_count(r))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let slot = (width - pad) / shown.len() as f64;
    let bars = shown
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let n = report::actionable_count(r) as f64;
            let h = (n / max * (height - 16.0)).max(if n > 0.0 { 2.0 } else { 0.0 });
            Bar {
                id: r.id,
                x: pad + i as f64 * slot + slot * 0.15,
                y: height - h,
                width: (slot * 0.7).max(1.0),
                height: h,
                colour: match r.status {
                    RunStatus::Held => "#d97706",
                    RunStatus::Failed => "#dc2626",
                    _ => "#2563eb",
                },
                connector: &r.connector,
                status: r.status,
                changes: n as i64,
            }
        })
        .collect();
    Some(Chart {
        width,
        height,
        pad,
        max: max as i64,
        bars,
    })
}

#[derive(Deserialize)]
pub struct TriggerForm {
    connector: String,
    dry_run: Option<String>,
}

pub async fn trigger(
    State(daemon): State<Shared>,
    Extension(actor): Extension<Actor>,
    axum::Form(form): axum::Form<TriggerForm>,
) -> Response {
    // A run started here shows its plan first: it is held for review when it would change
    // anything, and the admin applies it by approving that plan.
    let dry_run = form.dry_run.as_deref() == Some("true");
    let how = api::Start {
        dry_run,
        review: !dry_run,
    };
    match api::start(&daemon, &form.connector, how, &actor).await {
        Ok(run_id) => Redirect::to(&format!("/runs/{run_id}")).into_response(),
        Err((status, message)) => error_page(status, "Run not started", &message),
    }
}

#[derive(Template)]
#[template(path = "run.html", config = "src/server/askama.toml")]
struct RunPage<'a> {
    title: &'a str,
    s: &'a RunSummary,
    started: String,
    as_of: String,
    took_ms: Option<i64>,
    errors: &'a [RunError],
    /// A held run's reasons are a notice; a failed run's are errors.
    error_class: &'static str,
    /// A held applying run can be approved.
    approvable: bool,
    /// Held only for the review its admin asked for (`HR205`).
    for_review: bool,
    /// Still running: the page refreshes itself.
    running: bool,
    /// The changes by kind, in [`ChangeKind::ALL`] order (unknown kinds last).
    groups: Vec<(&'a str, Vec<&'a ChangeLine>)>,
}

/// One run: its summary, why it was held or failed, and its changes grouped by kind.
pub async fn run(State(daemon): State<Shared>, Path(id): Path<i64>) -> Response {
    match daemon.app.store.run_report(id).await {
        Ok(Some(report)) => render(StatusCode::OK, &run_page(&format!("Run #{id}"), &report)),
        Ok(None) => error_page(
            StatusCode::NOT_FOUND,
            "No such run",
            &format!("There is no run {id}."),
        ),
        Err(e) => error_page(StatusCode::INTERNAL_SERVER_ERROR, "Run", &e.to_string()),
    }
}

fn run_page<'a>(title: &'a str, report: &'a RunReport) -> RunPage<'a> {
    let s = &report.summary;
    let mut by_kind: BTreeMap<usize, (&str, Vec<&ChangeLine>)> = BTreeMap::new();
    for c in &report.changes {
        let order = ChangeKind::ALL
            .iter()
            .position(|k| k.as_str() == c.kind)
            .unwrap_or(usize::MAX);
        by_kind
            .entry(order)
            .or_insert((&c.kind, Vec::new()))
            .1
            .push(c);
    }
    RunPage {
        title,
        s,
        started: time(s.started_at),
        as_of: time(s.as_of),
        took_ms: s.finished_at.map(|f| (f - s.started_at).num_milliseconds()),
        errors: &report.errors,
        error_class: if s.status == RunStatus::Held {
            "notice"
        } else {
            "error"
        },
        approvable: s.status == RunStatus::Held && s.mode == RunMode::Apply,
        for_review: report
            .errors
            .iter()
            .any(|e| e.code == crate::domain::Code::HeldForReview.as_str()),
        running: s.status == RunStatus::Running,
        groups: by_kind.into_values().collect(),
    }
}

pub async fn approve(
    State(daemon): State<Shared>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<i64>,
) -> Response {
    match daemon.approve(id).await {
        Ok(_) => {
            api::audit_approval(&daemon, &actor, id).await;
            Redirect::to(&format!("/runs/{id}")).into_response()
        }
        Err(NotApproved::Stopping) => error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Not approved",
            "The daemon is stopping.",
        ),
        Err(NotApproved::Refused(e)) => error_page(
            super::api::approve_status(&e),
            "Not approved",
            &format!("{e:#}"),
        ),
    }
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
    let paging = q.page();
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
    let pages = api::pages_of(found.total, paging.per_page);
    let link = |page: u32| format!("/accounts?{}", q.query_string(page));
    let first_shown = i64::from(paging.page - 1) * i64::from(paging.per_page) + 1;
    let pager = Pager {
        page: paging.page,
        pages,
        total: found.total,
        first_shown: first_shown.min(found.total),
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

pub(super) fn urlencode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_values_is_escaped() {
        let page = ErrorPage {
            title: "t",
            message: "<script>alert('x')</script> & \"q\"",
        };

        let html = page.render().unwrap();

        assert!(
            html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;")
        );
    }

    #[test]
    fn sign_in_goes_back_only_to_a_path_on_this_site_even_with_hidden_characters() {
        assert_eq!(local_path("/\t/evil.example"), "/runs");
        assert_eq!(local_path("/\n/evil.example"), "/runs");
        assert_eq!(local_path("/ /evil.example"), "/runs");
    }

    #[test]
    fn sign_in_goes_back_only_to_a_path_on_this_site() {
        assert_eq!(local_path("/runs/3"), "/runs/3");
        assert_eq!(local_path("//evil.example/x"), "/runs");
        assert_eq!(local_path("https://evil.example"), "/runs");
        assert_eq!(local_path("/\\evil.example"), "/runs");
    }

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
