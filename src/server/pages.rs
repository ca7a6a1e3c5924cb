//! The admin pages: server-rendered HTML with no build step and no JavaScript. Runs with a
//! chart of changes per run, one run grouped by kind with its approve button, and sign-in with
//! an admin's token, which starts a session (`auth.rs`) that signing out ends on the server;
//! the accounts pages are in `accounts.rs`, a person's and the teams' in `people.rs`.
//!
//! Each page is an askama template in `templates/` (checked when hrsync compiles), which
//! HTML-escapes every value it shows; forms post back to the same origin (the pages'
//! content security policy allows nothing else), the sign-in cookie is `SameSite=Strict`, and
//! a cookie-signed form from another origin is refused, so another site (a sibling subdomain
//! included) cannot make an admin's browser approve a run.

use std::collections::BTreeMap;

use askama::Template;
use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::api;
use super::auth::{self, sign_in_cookie, sign_out_cookie};
use super::{Daemon, NotApproved};
use crate::domain::{
    Actor, ChangeLine, RunError, RunMode, RunReport, RunStatus, RunSummary, Trigger,
};
use crate::planner::ChangeKind;
use crate::report;
use crate::store::PrincipalKind;

type Shared = std::sync::Arc<Daemon>;

/// Renders a page with `status`. A page that cannot be rendered (only a failing `Display` of
/// a value could do that) is answered with a 500 and logged, never with half a page.
pub(super) fn render(status: StatusCode, page: &impl Template) -> Response {
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

pub(super) fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    render(status, &ErrorPage { title, message })
}

pub(super) fn time(t: DateTime<Utc>) -> String {
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

#[derive(Template)]
#[template(path = "runs.html", config = "src/server/askama.toml")]
struct RunsPage<'a> {
    title: &'a str,
    chart: Option<Chart<'a>>,
    /// The configured connectors, and whether the list is filtered by each.
    filter: Vec<(&'a str, bool)>,
    /// The other filters' choices, and which is chosen.
    statuses: Vec<(&'static str, bool)>,
    modes: Vec<(&'static str, bool)>,
    triggers: Vec<(&'static str, bool)>,
    kinds: Vec<(&'static str, bool)>,
    from: &'a str,
    to: &'a str,
    rows: Vec<RunRow<'a>>,
    /// The next page (older runs, or newer ones oldest first), when there may be one.
    next: Option<String>,
    /// `newest` and `oldest`, the one shown chosen.
    orders: Vec<(&'a str, bool)>,
    oldest_first: bool,
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

/// How many runs a page of the runs table shows.
const RUNS_PER_PAGE: i64 = 100;

/// The choices of a filter, each marked when it is the chosen one.
fn choices(all: &[&'static str], chosen: Option<&str>) -> Vec<(&'static str, bool)> {
    all.iter().map(|c| (*c, chosen == Some(*c))).collect()
}

/// The runs table, filtered, a page at a time (newest first), with a chart of changes per
/// run over time.
pub async fn runs(
    State(daemon): State<Shared>,
    Query(q): Query<super::listing::RunsQuery>,
) -> Response {
    let filter = match q.filter() {
        Ok(filter) => filter,
        Err(message) => return error_page(StatusCode::BAD_REQUEST, "Runs", &message),
    };
    let runs = match daemon
        .app
        .store
        .find_runs(&filter, q.cursor(), RUNS_PER_PAGE)
        .await
    {
        Ok(runs) => runs,
        Err(e) => return error_page(StatusCode::INTERNAL_SERVER_ERROR, "Runs", &e.to_string()),
    };
    let connectors = daemon
        .app
        .config
        .settings
        .connectors
        .keys()
        .map(|c| (c.as_str(), filter.connector.as_deref() == Some(c.as_str())))
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
    let kinds: Vec<&'static str> = ChangeKind::ALL.iter().map(|k| k.as_str()).collect();
    let next = (runs.len() as i64 == RUNS_PER_PAGE)
        .then(|| {
            runs.last()
                .map(|r| format!("/runs?{}", q.query_string(r.id)))
        })
        .flatten();
    // The chart reads newest first, whichever way the table is ordered.
    let newest_first: Vec<RunSummary> = if filter.oldest_first {
        runs.iter().rev().cloned().collect()
    } else {
        runs.clone()
    };
    let page = RunsPage {
        title: "Runs",
        chart: chart(&newest_first),
        orders: choices(&["newest", "oldest"], q.order.as_deref()),
        oldest_first: filter.oldest_first,
        filter: connectors,
        statuses: choices(
            &["running", "succeeded", "failed", "held", "approved"],
            q.status.as_deref(),
        ),
        modes: choices(&["plan", "apply"], q.mode.as_deref()),
        triggers: choices(&["command", "schedule", "api"], q.trigger.as_deref()),
        kinds: choices(&kinds, q.kind.as_deref()),
        from: q.from.as_deref().unwrap_or(""),
        to: q.to.as_deref().unwrap_or(""),
        rows,
        next,
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
    /// Who started or approved the run by hand, and when.
    actions: Vec<String>,
    /// The changes shown, by kind in [`ChangeKind::ALL`] order.
    groups: Vec<Group<'a>>,
    /// Links between the pages of one kind, when the page shows one kind.
    previous: Option<String>,
    next: Option<String>,
    /// Back to every kind, when the page shows one.
    all_kinds: Option<String>,
}

/// The lines of one kind a run's page shows.
struct Group<'a> {
    kind: &'a str,
    /// Every line of the kind in the run.
    count: i64,
    lines: Vec<&'a ChangeLine>,
    /// The page that lists them all, a page at a time, when more than these exist.
    all: Option<String>,
}

/// How many lines of each kind a run's page shows, and how many one kind's page shows.
const LINES_PER_KIND: usize = 20;
const LINES_PER_PAGE: i64 = 100;

#[derive(Deserialize)]
pub struct RunQuery {
    /// Show only this kind of change, a page at a time.
    kind: Option<String>,
    page: Option<u32>,
}

/// One run: its summary, why it was held or failed, who started or approved it by hand, and
/// its changes by kind, the first of each kind, or one kind a page at a time.
pub async fn run(
    State(daemon): State<Shared>,
    Path(id): Path<i64>,
    Query(q): Query<RunQuery>,
) -> Response {
    let store = &daemon.app.store;
    let kind = q
        .kind
        .as_deref()
        .and_then(ChangeKind::parse)
        .map(ChangeKind::as_str);
    let page = q.page.unwrap_or(1).max(1);
    let head = if kind.is_some() { 0 } else { LINES_PER_KIND };
    let report = match store.run_report_head(id, head).await {
        Ok(Some(report)) => report,
        Ok(None) => {
            return error_page(
                StatusCode::NOT_FOUND,
                "No such run",
                &format!("There is no run {id}."),
            );
        }
        Err(e) => return error_page(StatusCode::INTERNAL_SERVER_ERROR, "Run", &e.to_string()),
    };
    let paged = match kind {
        Some(kind) => {
            let offset = i64::from(page - 1) * LINES_PER_PAGE;
            match store
                .run_changes_of_kind(id, kind, offset, LINES_PER_PAGE)
                .await
            {
                Ok(lines) => Some((kind, lines)),
                Err(e) => {
                    return error_page(StatusCode::INTERNAL_SERVER_ERROR, "Run", &e.to_string());
                }
            }
        }
        None => None,
    };
    let actions = match store.audit_of_run(id).await {
        Ok(events) => events
            .iter()
            .map(|e| {
                format!(
                    "{} by {} ({}) at {}",
                    e.action.phrase(),
                    e.actor,
                    e.via.as_str(),
                    time(e.at)
                )
            })
            .collect(),
        Err(e) => {
            tracing::warn!(error = %e, "Cannot read who acted on a run");
            Vec::new()
        }
    };
    let title = format!("Run #{id}");
    let mut page_view = run_page(&title, &report, actions);
    if let Some((kind, lines)) = &paged {
        let count = report.summary.counts.get(*kind).copied().unwrap_or(0);
        let pages = u32::try_from((count + LINES_PER_PAGE - 1) / LINES_PER_PAGE).unwrap_or(1);
        let link = |p: u32| format!("/runs/{id}?kind={kind}&page={p}");
        page_view.groups = vec![Group {
            kind,
            count,
            lines: lines.iter().collect(),
            all: None,
        }];
        page_view.previous = (page > 1).then(|| link(page - 1));
        page_view.next = (page < pages).then(|| link(page + 1));
        page_view.all_kinds = Some(format!("/runs/{id}"));
    }
    render(StatusCode::OK, &page_view)
}

fn run_page<'a>(title: &'a str, report: &'a RunReport, actions: Vec<String>) -> RunPage<'a> {
    let s = &report.summary;
    let mut by_kind: BTreeMap<usize, Group<'a>> = BTreeMap::new();
    for c in &report.changes {
        let order = ChangeKind::ALL
            .iter()
            .position(|k| k.as_str() == c.kind)
            .unwrap_or(usize::MAX);
        let count = s.counts.get(c.kind.as_str()).copied().unwrap_or(0);
        by_kind
            .entry(order)
            .or_insert_with(|| Group {
                kind: &c.kind,
                count,
                lines: Vec::new(),
                all: (count > LINES_PER_KIND as i64)
                    .then(|| format!("/runs/{}?kind={}", s.id, c.kind)),
            })
            .lines
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
        actions,
        groups: by_kind.into_values().collect(),
        previous: None,
        next: None,
        all_kinds: None,
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
}
