//! The admin pages: server-rendered HTML with no build step and no JavaScript. Runs with a
//! chart of changes per run, one run grouped by kind with its approve button, accounts with
//! filters, statistics and export, and sign-in with the admin token, which starts a session
//! (`auth.rs`) that signing out ends on the server.
//!
//! Every value shown goes through [`esc`]; forms post back to the same origin (the pages'
//! content security policy allows nothing else), the sign-in cookie is `SameSite=Strict`, and
//! a cookie-signed form from another origin is refused, so another site (a sibling subdomain
//! included) cannot make an admin's browser approve a run.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::api::{self, AccountsQuery};
use super::auth::{self, sign_in_cookie, sign_out_cookie};
use super::{ApproveError, Daemon};
use crate::domain::{RunReport, RunStatus, RunSummary};
use crate::planner::ChangeKind;
use crate::report;
use crate::store::UserRow;

type Shared = std::sync::Arc<Daemon>;

/// Escapes text for HTML content and attribute values (the mail layout's escaping).
pub fn esc(text: &str) -> String {
    crate::mail::escape_html(text)
}

const STYLE: &str = "body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1d2430;background:#f6f7f9}\
header{background:#1d3557;color:#fff;padding:.6rem 1.2rem;display:flex;gap:1.2rem;align-items:center}\
header a{color:#fff;text-decoration:none;font-weight:600}header form{margin-left:auto}\
main{padding:1.2rem;max-width:1200px}table{border-collapse:collapse;width:100%;background:#fff}\
th,td{border-bottom:1px solid #e1e4e8;padding:.35rem .5rem;text-align:left;vertical-align:top}\
th{background:#eef1f5}.status-held{color:#b45309;font-weight:600}.status-failed{color:#b91c1c;font-weight:600}\
.status-succeeded,.status-approved{color:#15803d}.notice{background:#fff7ed;border:1px solid #fdba74;padding:.6rem;margin:.6rem 0}\
.error{background:#fef2f2;border:1px solid #fca5a5;padding:.6rem;margin:.6rem 0}\
.stats{display:flex;gap:1rem;margin:.6rem 0}.stats div{background:#fff;border:1px solid #e1e4e8;padding:.5rem .8rem}\
form.inline{display:inline}button{cursor:pointer}code{font-size:90%}";

/// A whole page: the header with navigation, then `body`.
fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · hrsync</title><style>{STYLE}</style></head><body>\
         <header><a href=\"/runs\" id=\"nav-runs\">Runs</a><a href=\"/accounts\" id=\"nav-accounts\">Accounts</a>\
         <form method=\"post\" action=\"/signout\"><button type=\"submit\" id=\"sign-out\">Sign out</button></form></header>\
         <main><h1>{}</h1>{body}</main></body></html>",
        esc(title),
        esc(title)
    ))
}

fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    (
        status,
        page(title, &format!("<p class=\"error\">{}</p>", esc(message))),
    )
        .into_response()
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

/// The sign-in page, with `status` (401 when an admin page was asked for without the token).
pub fn sign_in_page(status: StatusCode, next: &str, problem: Option<&str>) -> Response {
    let problem = problem
        .map(|p| format!("<p class=\"error\">{}</p>", esc(p)))
        .unwrap_or_default();
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Sign in · hrsync</title>\
         <style>{STYLE}</style></head><body><main><h1>Sign in</h1>{problem}\
         <form method=\"post\" action=\"/signin\">\
         <label>Admin token <input type=\"password\" name=\"token\" id=\"token\" autocomplete=\"current-password\" required></label>\
         <input type=\"hidden\" name=\"next\" value=\"{}\">\
         <button type=\"submit\" id=\"sign-in\">Sign in</button></form></main></body></html>",
        esc(local_path(next))
    );
    (status, Html(body)).into_response()
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
    if !daemon.token.accepts(token) {
        tracing::warn!("Sign-in with a wrong admin token");
        return sign_in_page(
            StatusCode::UNAUTHORIZED,
            &next,
            Some("That is not the admin token."),
        );
    }
    let unavailable = |e: &dyn std::fmt::Display| {
        tracing::error!(error = %e, "Cannot start an admin session");
        sign_in_page(
            StatusCode::SERVICE_UNAVAILABLE,
            &next,
            Some("Signing in is not possible right now; try again shortly."),
        )
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
    tracing::info!("Admin signed in");
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

/// The runs table, with a chart of changes per run over time.
pub async fn runs(State(daemon): State<Shared>, Query(q): Query<RunsQuery>) -> Response {
    let connector = q.connector.filter(|c| !c.is_empty());
    let runs = match daemon.app.store.list_runs(100, connector.as_deref()).await {
        Ok(runs) => runs,
        Err(e) => return error_page(StatusCode::INTERNAL_SERVER_ERROR, "Runs", &e.to_string()),
    };
    let connectors: Vec<&String> = daemon.app.config.settings.connectors.keys().collect();
    let mut body = String::new();
    body.push_str(&chart(&runs));
    let options: String = connectors
        .iter()
        .map(|c| {
            let selected = if connector.as_deref() == Some(c.as_str()) {
                " selected"
            } else {
                ""
            };
            format!("<option value=\"{0}\"{selected}>{0}</option>", esc(c))
        })
        .collect();
    let _ = write!(
        body,
        "<form method=\"get\" action=\"/runs\" class=\"inline\"><label>Connector \
         <select name=\"connector\"><option value=\"\">all</option>{options}</select></label> \
         <button type=\"submit\">Show</button></form> \
         <form method=\"post\" action=\"/runs\" class=\"inline\" id=\"run-now\"><label>Run now \
         <select name=\"connector\" id=\"run-connector\">{}</select></label> \
         <label><input type=\"checkbox\" name=\"dry_run\" value=\"true\"> dry run</label> \
         <button type=\"submit\" id=\"start-run\">Start</button></form>",
        connectors
            .iter()
            .map(|c| format!("<option value=\"{0}\">{0}</option>", esc(c)))
            .collect::<String>()
    );
    body.push_str(
        "<table id=\"runs\"><thead><tr><th>Run</th><th>Connector</th><th>Organisation</th>\
         <th>When</th><th>Mode</th><th>Trigger</th><th>Status</th><th>Fetched</th><th>Changes</th></tr></thead><tbody>",
    );
    if runs.is_empty() {
        body.push_str("<tr><td colspan=\"9\">No runs yet.</td></tr>");
    }
    for r in &runs {
        let _ = write!(
            body,
            "<tr><td><a href=\"/runs/{id}\">#{id}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td class=\"status-{st}\">{st}</td><td>{}</td><td>{}</td></tr>",
            esc(&r.connector),
            esc(&r.organisation),
            time(r.started_at),
            r.mode,
            r.trigger,
            r.records_fetched,
            esc(&report::counts_summary(r)),
            id = r.id,
            st = r.status,
        );
    }
    body.push_str("</tbody></table>");
    page("Runs", &body).into_response()
}

/// An inline SVG bar chart of actionable changes per run, oldest on the left; held and failed
/// runs are coloured so they stand out.
fn chart(runs: &[RunSummary]) -> String {
    let shown: Vec<&RunSummary> = runs.iter().take(40).rev().collect();
    if shown.is_empty() {
        return String::new();
    }
    let (width, height, pad) = (800.0_f64, 140.0_f64, 20.0_f64);
    let max = shown
        .iter()
        .map(|r| report::actionable_count(r))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let slot = (width - pad) / shown.len() as f64;
    let mut svg = format!(
        "<figure><svg id=\"changes-chart\" role=\"img\" aria-label=\"Changes per run\" width=\"{width}\" height=\"{}\" \
         viewBox=\"0 0 {width} {}\" xmlns=\"http://www.w3.org/2000/svg\">\
         <line x1=\"{pad}\" y1=\"{height}\" x2=\"{width}\" y2=\"{height}\" stroke=\"#999\"/>\
         <text x=\"0\" y=\"12\" font-size=\"11\">{}</text><text x=\"0\" y=\"{height}\" font-size=\"11\">0</text>",
        height + 20.0,
        height + 20.0,
        max as i64
    );
    for (i, r) in shown.iter().enumerate() {
        let n = report::actionable_count(r) as f64;
        let h = (n / max * (height - 16.0)).max(if n > 0.0 { 2.0 } else { 0.0 });
        let colour = match r.status {
            RunStatus::Held => "#d97706",
            RunStatus::Failed => "#dc2626",
            _ => "#2563eb",
        };
        let x = pad + i as f64 * slot + slot * 0.15;
        let _ = write!(
            svg,
            "<a href=\"/runs/{id}\"><rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"{colour}\">\
             <title>Run #{id} ({}, {}): {} changes</title></rect></a>",
            height - h,
            (slot * 0.7).max(1.0),
            esc(&r.connector),
            r.status,
            n as i64,
            id = r.id,
        );
        if h == 0.0 {
            let _ = write!(
                svg,
                "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"2\" fill=\"{colour}\" opacity=\"0.35\"/>",
                height - 2.0,
                (slot * 0.7).max(1.0)
            );
        }
    }
    let _ = write!(
        svg,
        "<text x=\"{pad}\" y=\"{}\" font-size=\"11\">older</text><text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"end\">newer</text></svg>\
         <figcaption>Changes applied or planned per run (the last {} runs; orange held, red failed).</figcaption></figure>",
        height + 16.0,
        width,
        height + 16.0,
        shown.len()
    );
    svg
}

#[derive(Deserialize)]
pub struct TriggerForm {
    connector: String,
    dry_run: Option<String>,
}

pub async fn trigger(
    State(daemon): State<Shared>,
    axum::Form(form): axum::Form<TriggerForm>,
) -> Response {
    let dry_run = form.dry_run.as_deref() == Some("true");
    match api::start(&daemon, &form.connector, dry_run).await {
        Ok(run_id) => Redirect::to(&format!("/runs/{run_id}")).into_response(),
        Err((status, message)) => error_page(status, "Run not started", &message),
    }
}

/// One run: its summary, why it was held or failed, and its changes grouped by kind.
pub async fn run(State(daemon): State<Shared>, Path(id): Path<i64>) -> Response {
    match daemon.app.store.run_report(id).await {
        Ok(Some(report)) => page(&format!("Run #{id}"), &run_body(&report)).into_response(),
        Ok(None) => error_page(
            StatusCode::NOT_FOUND,
            "No such run",
            &format!("There is no run {id}."),
        ),
        Err(e) => error_page(StatusCode::INTERNAL_SERVER_ERROR, "Run", &e.to_string()),
    }
}

fn run_body(report: &RunReport) -> String {
    let s = &report.summary;
    let mut body = format!(
        "<p>Connector <strong>{}</strong> · organisation {} · {} ({}) · \
         <span class=\"status-{st}\" id=\"run-status\">{st}</span><br>\
         Started {} · as of {} · {} records fetched{}{}</p>",
        esc(&s.connector),
        esc(&s.organisation),
        s.mode,
        s.trigger,
        time(s.started_at),
        time(s.as_of),
        s.records_fetched,
        s.fetch.map(|f| format!(" ({f} fetch)")).unwrap_or_default(),
        s.finished_at
            .map(|f| format!(" · took {} ms", (f - s.started_at).num_milliseconds()))
            .unwrap_or_default(),
        st = s.status,
    );
    for e in &report.errors {
        let class = if s.status == RunStatus::Held {
            "notice"
        } else {
            "error"
        };
        let _ = write!(
            body,
            "<p class=\"{class}\"><code>{}</code> {}</p>",
            esc(&e.code),
            esc(&e.message)
        );
    }
    if s.status == RunStatus::Held && s.mode == crate::domain::RunMode::Apply {
        let _ = write!(
            body,
            "<form method=\"post\" action=\"/runs/{}/approve\"><p>Nothing of this run was applied. \
             Approving fetches again and applies the changes below if planning again gives the same ones.</p>\
             <button type=\"submit\" id=\"approve\">Approve and apply</button></form>",
            s.id
        );
    }
    let mut by_kind: BTreeMap<usize, Vec<&crate::domain::ChangeLine>> = BTreeMap::new();
    for c in &report.changes {
        let order = ChangeKind::ALL
            .iter()
            .position(|k| k.as_str() == c.kind)
            .unwrap_or(usize::MAX);
        by_kind.entry(order).or_default().push(c);
    }
    if report.changes.is_empty() {
        body.push_str("<p>No changes.</p>");
    }
    for lines in by_kind.values() {
        let kind = &lines[0].kind;
        let _ = write!(
            body,
            "<h2 id=\"kind-{k}\">{k} ({})</h2><table><thead><tr><th>Employee</th><th>Email</th>\
             <th>Field</th><th>Old</th><th>New</th><th>Reason</th></tr></thead><tbody>",
            lines.len(),
            k = esc(kind)
        );
        for c in lines {
            let o = |v: &Option<String>| esc(v.as_deref().unwrap_or(""));
            let _ = write!(
                body,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                o(&c.employee_id),
                o(&c.email),
                o(&c.field),
                o(&c.old),
                o(&c.new),
                esc(&c.reason)
            );
        }
        body.push_str("</tbody></table>");
    }
    body
}

pub async fn approve(State(daemon): State<Shared>, Path(id): Path<i64>) -> Response {
    match daemon.approve(id).await {
        Ok(_) => Redirect::to(&format!("/runs/{id}")).into_response(),
        Err(ApproveError::Stopping) => error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Not approved",
            "The daemon is stopping.",
        ),
        Err(ApproveError::Refused(e)) => error_page(
            super::api::approve_status(&e),
            "Not approved",
            &format!("{e:#}"),
        ),
    }
}

/// Accounts with filters, statistics and export.
pub async fn accounts(State(daemon): State<Shared>, Query(q): Query<AccountsQuery>) -> Response {
    let users = match daemon.app.store.list_users(&q.filter()).await {
        Ok(users) => users,
        Err(e) => {
            return error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Accounts",
                &e.to_string(),
            );
        }
    };
    let stale_days = daemon.app.config.settings.server.stale_invite_days;
    let mut body = String::new();
    let orgs: String = daemon
        .app
        .config
        .settings
        .organisations
        .keys()
        .map(|o| {
            let selected = if q.org.as_deref() == Some(o.as_str()) {
                " selected"
            } else {
                ""
            };
            format!("<option value=\"{0}\"{selected}>{0}</option>", esc(o))
        })
        .collect();
    let statuses: String = ["invited", "active", "deactivated"]
        .iter()
        .map(|s| {
            let selected = if q.status.as_deref() == Some(*s) {
                " selected"
            } else {
                ""
            };
            format!("<option value=\"{s}\"{selected}>{s}</option>")
        })
        .collect();
    let _ = write!(
        body,
        "<form method=\"get\" action=\"/accounts\" id=\"filter\"><label>Search <input type=\"search\" name=\"q\" id=\"q\" value=\"{}\"></label> \
         <label>Organisation <select name=\"org\"><option value=\"\">all</option>{orgs}</select></label> \
         <label>Status <select name=\"status\" id=\"status\"><option value=\"\">all</option>{statuses}</select></label> \
         <button type=\"submit\" id=\"apply-filter\">Filter</button></form>",
        esc(q.q.as_deref().unwrap_or(""))
    );
    body.push_str(&stats(&users, stale_days, Utc::now()));
    let _ = write!(
        body,
        "<form method=\"post\" action=\"/accounts/export\" id=\"export\">\
         <input type=\"hidden\" name=\"q\" value=\"{}\"><input type=\"hidden\" name=\"org\" value=\"{}\">\
         <input type=\"hidden\" name=\"status\" value=\"{}\">\
         <p>Export the selected accounts (all shown when none is selected): \
         <button type=\"submit\" name=\"format\" value=\"xlsx\" id=\"export-xlsx\">Excel</button> \
         <button type=\"submit\" name=\"format\" value=\"csv\" id=\"export-csv\">CSV</button></p>\
         <table id=\"accounts\"><thead><tr><th></th><th>Name</th><th>Email</th><th>Roles</th><th>Teams</th>\
         <th>Status</th><th>Created</th><th>Activated</th><th>Source</th><th>Mail</th></tr></thead><tbody>",
        esc(q.q.as_deref().unwrap_or("")),
        esc(q.org.as_deref().unwrap_or("")),
        esc(q.status.as_deref().unwrap_or("")),
    );
    if users.is_empty() {
        body.push_str("<tr><td colspan=\"10\">No accounts match.</td></tr>");
    }
    for u in &users {
        let _ = write!(
            body,
            "<tr><td><input type=\"checkbox\" name=\"id\" value=\"{}:{}\" aria-label=\"select {}\"></td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"status-{st}\">{st}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td class=\"mail-problem\">{}</td></tr>",
            esc(&u.organisation),
            u.account_id,
            esc(&u.email),
            esc(u.display_name.as_deref().unwrap_or("")),
            esc(&u.email),
            esc(&u.roles.join(", ")),
            esc(&u.teams.join(", ")),
            time(u.created_at),
            u.activated_at.map(time).unwrap_or_default(),
            esc(u.connector.as_deref().unwrap_or("by hand")),
            esc(&crate::report::mail_problem_text(u)),
            st = esc(&u.status),
        );
    }
    body.push_str("</tbody></table></form>");
    // Resending is a form of its own per invited person, outside the export form.
    let invited: Vec<&UserRow> = users.iter().filter(|u| u.status == "invited").collect();
    if !invited.is_empty() {
        body.push_str(
            "<h2>Resend an activation email</h2><p>The earlier link stops working.</p><ul>",
        );
        for u in invited {
            let _ = write!(
                body,
                "<li><form method=\"post\" action=\"/accounts/resend\" class=\"inline\">\
                 <input type=\"hidden\" name=\"org\" value=\"{}\"><input type=\"hidden\" name=\"email\" value=\"{}\">\
                 <button type=\"submit\">Resend</button></form> {} ({})</li>",
                esc(&u.organisation),
                esc(&u.email),
                esc(&u.email),
                esc(&u.organisation)
            );
        }
        body.push_str("</ul>");
    }
    page("Accounts", &body).into_response()
}

/// Counts per status, and invited people who have not activated within `stale_days`.
fn stats(users: &[UserRow], stale_days: u32, now: DateTime<Utc>) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for u in users {
        *counts.entry(u.status.as_str()).or_default() += 1;
    }
    let stale = users
        .iter()
        .filter(|u| {
            u.status == "invited"
                && u.activated_at.is_none()
                && now - u.created_at > chrono::Duration::days(i64::from(stale_days))
        })
        .count();
    let mut out = format!(
        "<div class=\"stats\" id=\"stats\"><div><strong>{}</strong> shown</div>",
        users.len()
    );
    for (status, n) in counts {
        let _ = write!(out, "<div><strong>{n}</strong> {}</div>", esc(status));
    }
    let _ = write!(
        out,
        "<div><strong>{stale}</strong> invited over {stale_days} days ago, not activated</div></div>"
    );
    out
}

/// Exports the selected accounts (or every account the filter shows) as XLSX or CSV.
pub async fn export(State(daemon): State<Shared>, body: String) -> Response {
    let mut selected: BTreeSet<String> = BTreeSet::new();
    let mut query = AccountsQuery::default();
    let mut format = String::from("csv");
    for (key, value) in form_urlencoded::parse(body.as_bytes()) {
        match key.as_ref() {
            "id" => {
                selected.insert(value.into_owned());
            }
            "q" => query.q = Some(value.into_owned()),
            "org" => query.org = Some(value.into_owned()),
            "status" => query.status = Some(value.into_owned()),
            "format" => format = value.into_owned(),
            _ => {}
        }
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
    let stamp = Utc::now().format("%Y%m%d-%H%M%S");
    let (bytes, content_type, extension) = match format.as_str() {
        "xlsx" => match report::users_xlsx(&users) {
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
    axum::Form(form): axum::Form<ResendForm>,
) -> Response {
    match api::resend(&daemon, &form.org, &form.email).await {
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
        assert_eq!(
            esc("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
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
    fn stale_invites_are_counted_after_the_configured_days() {
        let now = Utc::now();
        let user = |status: &str, days_ago: i64| UserRow {
            account_id: 1,
            organisation: "o".into(),
            email: "a@example.org".into(),
            display_name: None,
            employee_id: None,
            status: status.into(),
            connector: None,
            job_title: None,
            teams: vec![],
            roles: vec![],
            created_at: now - chrono::Duration::days(days_ago),
            activated_at: None,
            mail_problem: None,
        };
        let users = [user("invited", 10), user("invited", 2), user("active", 30)];

        let html = stats(&users, 7, now);

        assert!(
            html.contains("<strong>1</strong> invited over 7 days ago"),
            "{html}"
        );
        assert!(html.contains("<strong>2</strong> invited"), "{html}");
    }
}
