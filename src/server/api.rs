//! The HTTP router: the admin JSON API, the admin pages (in `pages.rs`), and the open
//! endpoints (`/healthz`, `/metrics`, `POST /api/activate`, sign-in).
//!
//! Every admin route is listed once, in [`admin_routes`]: the router is built from that
//! list behind the admin check, and a test walks the same list to prove each one refuses a
//! request without the token or a session (401 for the API, a redirect to sign-in for the
//! pages). JSON bodies here are the API's own wire types; the report JSON is the documented
//! one from `report`.
//!
//! The open endpoints answer strangers, so they never show raw error text (database errors
//! name the database); the details go to the log.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{MethodRouter, get, patch, post};
use axum::{Extension, Json};
use chrono::Utc;
use serde::Deserialize;

use super::supervise::{TaskState, TaskStatus};
use super::{Daemon, NotApproved, StartError, accounts, auth, listing, manage_api, pages, people};
use crate::domain::{Actor, AuditAction, Email, RunMode, Trigger, Via};
use crate::report;
use crate::secret::sha256_hex as token_hash;
use crate::store::{AuditEntry, PrincipalKind, TokenState};
use crate::sync::{AsOf, RunRequest};

type Shared = Arc<Daemon>;

/// One admin route: its method, its path, and its handler.
pub struct AdminRoute {
    pub method: Method,
    pub path: &'static str,
    handler: MethodRouter<Shared>,
}

fn route(method: Method, path: &'static str, handler: MethodRouter<Shared>) -> AdminRoute {
    AdminRoute {
        method,
        path,
        handler,
    }
}

/// Every route that needs the admin token: the JSON API and the pages.
pub fn admin_routes() -> Vec<AdminRoute> {
    vec![
        route(Method::GET, "/api/runs", get(listing::list_runs)),
        route(Method::POST, "/api/runs", post(trigger_run)),
        route(Method::GET, "/api/runs/{id}", get(run_report)),
        route(Method::POST, "/api/runs/{id}/approve", post(approve_run)),
        route(Method::GET, "/api/accounts", get(accounts::list_accounts)),
        route(Method::POST, "/api/accounts/resend", post(resend_invite)),
        route(Method::GET, "/api/audit", get(listing::audit_trail)),
        route(Method::POST, "/api/people", post(manage_api::add_person)),
        route(Method::GET, "/api/people/{id}", get(manage_api::person)),
        route(Method::PATCH, "/api/people/{id}", patch(manage_api::edit)),
        route(
            Method::POST,
            "/api/people/{id}/roles",
            post(manage_api::role),
        ),
        route(
            Method::POST,
            "/api/people/{id}/teams",
            post(manage_api::team_link),
        ),
        route(
            Method::POST,
            "/api/people/{id}/membership",
            post(manage_api::membership),
        ),
        route(Method::GET, "/api/teams", get(manage_api::teams)),
        route(Method::POST, "/api/teams", post(manage_api::create_team)),
        route(Method::GET, "/", get(pages::home)),
        route(Method::GET, "/runs", get(pages::runs)),
        route(Method::POST, "/runs", post(pages::trigger)),
        route(Method::GET, "/runs/{id}", get(pages::run)),
        route(Method::POST, "/runs/{id}/approve", post(pages::approve)),
        route(Method::GET, "/accounts", get(accounts::accounts)),
        route(Method::POST, "/accounts/export", post(accounts::export)),
        route(Method::POST, "/accounts/resend", post(accounts::resend)),
        route(Method::GET, "/people/new", get(people::new_person)),
        route(Method::POST, "/people", post(people::add_person)),
        route(Method::GET, "/people/{id}", get(people::person)),
        route(Method::POST, "/people/{id}/edit", post(people::edit)),
        route(Method::POST, "/people/{id}/roles", post(people::role)),
        route(Method::POST, "/people/{id}/teams", post(people::team_link)),
        route(
            Method::POST,
            "/people/{id}/membership",
            post(people::membership),
        ),
        route(Method::GET, "/teams", get(people::teams)),
        route(Method::POST, "/teams", post(people::create_team)),
    ]
}

/// The whole application.
pub fn router(daemon: Shared) -> Router {
    let mut admin = Router::new();
    for r in admin_routes() {
        admin = admin.route(r.path, r.handler);
    }
    let admin = admin.route_layer(middleware::from_fn_with_state(
        Arc::clone(&daemon),
        require_admin,
    ));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/api/activate", post(activate))
        .route("/signin", get(pages::sign_in_form).post(pages::sign_in))
        .route("/signout", post(pages::sign_out))
        .merge(admin)
        .merge(super::service::router(&daemon))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&daemon),
            request_timeout,
        ))
        .layer(middleware::from_fn(security_headers))
        .with_state(daemon)
}

/// Lets a request through only with an admin's token as a bearer token (the configured one,
/// or a named admin's), or a live sign-in session; the admin goes along with the request (an
/// [`Actor`] extension), so each action by hand names them. A request signed in by the
/// session cookie that changes something must come from this origin. Without either, the API
/// answers 401 with a JSON error and a page redirects to the sign-in form (forgetting a cookie
/// that no longer works).
async fn require_admin(State(daemon): State<Shared>, mut request: Request, next: Next) -> Response {
    match admin_of(&daemon, request.headers()).await {
        Ok(Some(actor)) => {
            if actor.via == Via::Page
                && auth::cross_origin_form(request.method(), request.headers())
            {
                tracing::warn!(path = %request.uri().path(), "Refused a cross-origin form sent with the admin cookie");
                return error(
                    StatusCode::FORBIDDEN,
                    "refused: this form was sent from another origin",
                );
            }
            request.extensions_mut().insert(actor);
            next.run(request).await
        }
        Ok(None) => refuse(&daemon, &request),
        Err(e) => {
            tracing::error!(error = %e, "Cannot check an admin's token or session");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "cannot check the sign-in now; try again shortly",
            )
        }
    }
}

/// The admin a request comes from: a bearer token (the configured admin token, or a live named
/// admin's), else a live sign-in session; `None` when neither.
async fn admin_of(
    daemon: &Daemon,
    headers: &axum::http::HeaderMap,
) -> Result<Option<Actor>, crate::store::StoreError> {
    if let Some(token) = auth::bearer(headers) {
        if daemon.token.accepts(token) {
            return Ok(Some(Actor::new(auth::CONFIGURED_ADMIN, Via::Api)));
        }
        let named = daemon
            .app
            .store
            .principal_by_token(PrincipalKind::Admin, &token_hash(token))
            .await?;
        if let Some(name) = named {
            return Ok(Some(Actor::new(&name, Via::Api)));
        }
    }
    Ok(live_session(daemon, headers)
        .await?
        .map(|name| Actor::new(name.as_deref().unwrap_or(auth::CONFIGURED_ADMIN), Via::Page)))
}

/// The admin of the request's session cookie, if it names a session that may be used now
/// (`Some(None)` for one started with the configured token); notes the use (at most once per
/// `SESSION_TOUCH_EVERY`, so the idle timeout counts from it).
pub(super) async fn live_session(
    daemon: &Daemon,
    headers: &axum::http::HeaderMap,
) -> Result<Option<Option<String>>, crate::store::StoreError> {
    let Some(id) = auth::session_cookie(headers) else {
        return Ok(None);
    };
    let hash = auth::session_hash(id);
    let Some(session) = daemon.app.store.admin_session(&hash).await? else {
        return Ok(None);
    };
    let now = Utc::now();
    match daemon.sessions.check(&session, now) {
        auth::SessionCheck::Valid { touch } => {
            if touch && let Err(e) = daemon.app.store.touch_admin_session(&hash, now).await {
                // The session is good; only its idle clock is a minute behind.
                tracing::warn!(error = %e, "Could not note the use of an admin session");
            }
            Ok(Some(session.admin_name))
        }
        ended => {
            tracing::info!(session = ?ended, "Refused an admin session that has ended");
            Ok(None)
        }
    }
}

/// The answer to a request that is not signed in.
fn refuse(daemon: &Daemon, request: &Request) -> Response {
    if request.uri().path().starts_with("/api/") {
        let mut response = error(
            StatusCode::UNAUTHORIZED,
            "an admin token is required: send `Authorization: Bearer <token>`",
        );
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return response;
    }
    // Back to the page after signing in, when it is one a browser can open again.
    let next = if matches!(*request.method(), Method::GET | Method::HEAD) {
        request
            .uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/runs")
    } else {
        "/runs"
    };
    let location = format!("/signin?next={}", pages::urlencode(next));
    let mut response = Redirect::to(&location).into_response();
    if auth::has_cookie(request.headers())
        && let Ok(value) = HeaderValue::from_str(&auth::sign_out_cookie(
            daemon.app.config.settings.server.cookie_secure,
        ))
    {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// Answers 503 when a request (reading its body included) takes longer than the request
/// timeout, and drops its handler: a client that sends its body a byte at a time holds a
/// connection only that long. Work that must not stop half-way (a run, an approval) runs as a
/// task of its own and goes on.
async fn request_timeout(State(daemon): State<Shared>, request: Request, next: Next) -> Response {
    let limit = daemon.limits.request_timeout;
    let path = request.uri().path().to_string();
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(path = %path, seconds = limit.as_secs_f64(), "A request took longer than the request timeout");
            let mut response = error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "the request did not complete within {} s; a run or approval it started goes on (see the runs)",
                    limit.as_secs_f64()
                ),
            );
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            response
        }
    }
}

/// Headers every answer carries: no framing, no sniffing, no caching of admin data.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// A JSON error answer: `{"error": "…"}`.
pub fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(serde_json::json!({ "error": message.into() }))).into_response()
}

/// A JSON answer from text the report module already serialised.
pub(super) fn json_text(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

pub(super) fn internal(e: anyhow::Error) -> Response {
    let message = format!("{e:#}");
    tracing::error!(error = %message, "Request failed");
    error(StatusCode::INTERNAL_SERVER_ERROR, message)
}

async fn run_report(State(daemon): State<Shared>, Path(id): Path<i64>) -> Response {
    match daemon.app.store.run_report(id).await {
        Ok(Some(r)) => json_text(StatusCode::OK, report::json(&r)),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("there is no run {id}")),
        Err(e) => internal(e.into()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TriggerBody {
    connector: String,
    /// Plan only (a dry run).
    #[serde(default)]
    dry_run: bool,
    /// Hold the run for review when it would change anything (`HR205`), as "Run now" on the
    /// pages does; approving it applies the plan.
    #[serde(default)]
    review: bool,
}

/// Starts a run now; answers 202 with its id as soon as it is recorded.
async fn trigger_run(
    State(daemon): State<Shared>,
    Extension(actor): Extension<Actor>,
    Json(body): Json<TriggerBody>,
) -> Response {
    let how = Start {
        dry_run: body.dry_run,
        review: body.review,
    };
    match start(&daemon, &body.connector, how, &actor).await {
        Ok(run_id) => (
            StatusCode::ACCEPTED,
            [(header::LOCATION, format!("/api/runs/{run_id}"))],
            Json(serde_json::json!({ "run_id": run_id })),
        )
            .into_response(),
        Err((status, message)) => error(status, message),
    }
}

/// Writes an entry of the audit trail for an action already taken; a database that refuses
/// it now is logged, since the action itself stands.
pub(super) async fn audit(daemon: &Daemon, entry: &AuditEntry<'_>) {
    if let Err(e) = daemon.app.store.record_audit(entry, Utc::now()).await {
        tracing::error!(error = %e, action = entry.action.as_str(), admin = %entry.actor.name, "Could not write the audit trail");
    }
}

/// Notes who approved a run.
pub(super) async fn audit_approval(daemon: &Daemon, actor: &Actor, run_id: i64) {
    let entry = AuditEntry {
        run_id: Some(run_id),
        ..AuditEntry::new(actor, AuditAction::RunApprove)
    };
    audit(daemon, &entry).await;
}

/// Starts a run asked for by an admin, noted in the audit trail; the status and message say
/// why not.
/// How a run started by hand runs.
#[derive(Clone, Copy, Debug)]
pub(super) struct Start {
    /// Plan only.
    pub dry_run: bool,
    /// Hold it for review when it would change anything.
    pub review: bool,
}

pub(super) async fn start(
    daemon: &Shared,
    connector: &str,
    how: Start,
    actor: &Actor,
) -> Result<i64, (StatusCode, String)> {
    let dry_run = how.dry_run;
    let request = RunRequest {
        mode: if dry_run {
            RunMode::Plan
        } else {
            RunMode::Apply
        },
        trigger: Trigger::Api,
        as_of: AsOf::Now,
        scheduled_for: None,
        review: how.review,
    };
    let run_id = daemon
        .start_run(connector, request)
        .await
        .map_err(|e| match e {
            StartError::Stopping => (
                StatusCode::SERVICE_UNAVAILABLE,
                "the daemon is stopping".to_string(),
            ),
            StartError::Busy => (
                StatusCode::CONFLICT,
                format!("connector `{connector}` is running already"),
            ),
            StartError::UnknownConnector(e) => (StatusCode::NOT_FOUND, format!("{e:#}")),
            StartError::Failed(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}")),
        })?;
    let mode = if dry_run { "plan" } else { "apply" };
    let entry = AuditEntry {
        run_id: Some(run_id),
        subject: Some(connector),
        new_value: Some(mode),
        ..AuditEntry::new(actor, AuditAction::RunStart)
    };
    audit(daemon, &entry).await;
    Ok(run_id)
}

/// The HTTP status of a refused approval, for the API and the pages alike: a run that is not
/// there is 404; one that cannot be approved now (not held, a dry run, a busy connector, a
/// plan that changed) is 409; the HR system failing is 502; the database failing is 503.
pub(super) fn approve_status(error: &crate::sync::ApproveError) -> StatusCode {
    use crate::sync::ApproveError as E;
    match error {
        E::NotFound(_) => StatusCode::NOT_FOUND,
        E::NotHeld { .. } | E::DryRun(_) | E::Busy(_) | E::PlanChanged { .. } => {
            StatusCode::CONFLICT
        }
        E::Fetch { .. } => StatusCode::BAD_GATEWAY,
        E::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        E::Other(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

async fn approve_run(
    State(daemon): State<Shared>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<i64>,
) -> Response {
    match daemon.approve(id).await {
        // The outcome holds the first lines of each kind; the answer is the whole run, or,
        // should reading it fail now, what the outcome holds: the approval was applied.
        Ok(outcome) => {
            audit_approval(&daemon, &actor, id).await;
            let whole = daemon.app.store.run_report(id).await;
            match whole {
                Ok(Some(whole)) => json_text(StatusCode::OK, report::json(&whole)),
                Ok(None) | Err(_) => json_text(StatusCode::OK, report::json(&outcome.report)),
            }
        }
        Err(NotApproved::Stopping) => {
            error(StatusCode::SERVICE_UNAVAILABLE, "the daemon is stopping")
        }
        Err(NotApproved::Refused(e)) => error(approve_status(&e), format!("{e:#}")),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResendBody {
    organisation: String,
    email: String,
}

async fn resend_invite(
    State(daemon): State<Shared>,
    Extension(actor): Extension<Actor>,
    Json(body): Json<ResendBody>,
) -> Response {
    match resend(&daemon, &body.organisation, &body.email, &actor).await {
        Ok(mail_id) => (
            StatusCode::ACCEPTED,
            Json(serde_json::json!({ "mail_id": mail_id })),
        )
            .into_response(),
        Err((status, message)) => error(status, message),
    }
}

/// Queues a new activation email (the earlier link stops working), notes who asked for it,
/// and wakes the mail worker.
pub(super) async fn resend(
    daemon: &Shared,
    organisation: &str,
    email: &str,
    actor: &Actor,
) -> Result<i64, (StatusCode, String)> {
    let email = Email::parse(email).map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()))?;
    match daemon
        .app
        .store
        .queue_activation_resend(organisation, email.key(), Utc::now())
        .await
    {
        Ok(id) => {
            daemon.mail_due.notify_one();
            let entry = AuditEntry {
                organisation: Some(organisation),
                email: Some(&email),
                ..AuditEntry::new(actor, AuditAction::InviteResend)
            };
            audit(daemon, &entry).await;
            Ok(id)
        }
        Err(crate::store::StoreError::NotFound(m)) => Err((StatusCode::NOT_FOUND, m)),
        Err(e) => Err((StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
    }
}

#[derive(Deserialize)]
struct ActivateBody {
    token: String,
}

/// Activates the account of a single-use token, for the product's onboarding flow. Open: the
/// token is the credential. 410 for a token that was used, revoked or has expired.
async fn activate(State(daemon): State<Shared>, Json(body): Json<ActivateBody>) -> Response {
    let token = body.token.trim();
    if token.is_empty() {
        return error(StatusCode::BAD_REQUEST, "`token` is empty");
    }
    match daemon.app.store.activate(&token_hash(token), Utc::now()).await {
        Ok(TokenState::Valid { account_id, email }) => (
            StatusCode::OK,
            Json(serde_json::json!({ "status": "activated", "account_id": account_id, "email": email })),
        )
            .into_response(),
        Ok(TokenState::Used) => gone("used", "this activation link was used already"),
        Ok(TokenState::Revoked) => gone(
            "revoked",
            "this activation link was replaced by a newer one; use the link in the latest email",
        ),
        Ok(TokenState::Expired) => gone(
            "expired",
            "this activation link has expired; ask an admin to send a new one",
        ),
        Ok(TokenState::Unknown) => error(StatusCode::NOT_FOUND, "unknown activation token"),
        Err(e) => {
            // Open to anyone: the database's error text stays in the log.
            tracing::error!(error = %e, "Activation failed");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "activation is not available right now; try again shortly",
            )
        }
    }
}

fn gone(state: &str, message: &str) -> Response {
    (
        StatusCode::GONE,
        Json(serde_json::json!({ "error": message, "state": state })),
    )
        .into_response()
}

/// How long `/healthz` waits for the database before calling it unavailable.
const HEALTH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// What `/healthz` says of a supervised task: `ok`, `down` (ended, waiting to be restarted),
/// `restarting` (restarted again and again lately) or `stopped` (the daemon is stopping).
fn task_health(task: &TaskStatus) -> &'static str {
    if task.state == TaskState::Down {
        "down"
    } else if !task.healthy() {
        "restarting"
    } else if task.state == TaskState::Stopped {
        "stopped"
    } else {
        "ok"
    }
}

/// Open: whether each dependency works (the database, the mail worker, each connector's
/// scheduler), and the last run of each connector. 503, naming the unhealthy ones in
/// `unhealthy`, when any does not; why goes to the log, never into the answer.
async fn healthz(State(daemon): State<Shared>) -> Response {
    let store = &daemon.app.store;
    let last = match tokio::time::timeout(HEALTH_TIMEOUT, async {
        store.ping().await?;
        store.last_runs().await
    })
    .await
    {
        Ok(Ok(last)) => Some(last),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "Health check: the database does not answer");
            None
        }
        Err(_) => {
            tracing::error!(
                seconds = HEALTH_TIMEOUT.as_secs(),
                "Health check: the database did not answer in time"
            );
            None
        }
    };
    let tasks = daemon.tasks.statuses();
    for task in tasks.iter().filter(|t| !t.healthy()) {
        tracing::warn!(task = %task.name, state = task.state.as_str(), recent_restarts = task.recent_restarts, "Health check: a daemon task is unhealthy");
    }
    let (code, body) = health(
        last.as_deref(),
        &tasks,
        daemon.app.config.settings.connectors.keys(),
        daemon.stopping(),
    );
    (code, Json(body)).into_response()
}

/// The `/healthz` answer: `last` is the last run of each connector (`None` when the database
/// could not be read), `tasks` the supervised tasks.
fn health<'a>(
    last: Option<&[crate::domain::RunSummary]>,
    tasks: &[TaskStatus],
    connectors: impl Iterator<Item = &'a String>,
    stopping: bool,
) -> (StatusCode, serde_json::Value) {
    let mut unhealthy: Vec<String> = Vec::new();
    if last.is_none() {
        unhealthy.push("database".to_string());
    }
    unhealthy.extend(
        tasks
            .iter()
            .filter(|t| !t.healthy())
            .map(|t| t.name.to_string()),
    );
    let mail_worker = tasks
        .iter()
        .find(|t| t.name == super::TaskName::mail_worker())
        .map(task_health);
    let connectors: Vec<serde_json::Value> = connectors
        .map(|id| {
            let run = last.into_iter().flatten().find(|r| &r.connector == id);
            let scheduler = tasks
                .iter()
                .find(|t| t.name == super::TaskName::scheduler(id))
                .map(task_health);
            serde_json::json!({
                "connector": id,
                "scheduler": scheduler,
                "last_run_id": run.map(|r| r.id),
                "last_status": run.map(|r| r.status.as_str()),
                "last_started_at": run.map(|r| r.started_at.to_rfc3339()),
                "last_finished_at": run.and_then(|r| r.finished_at).map(|t| t.to_rfc3339()),
            })
        })
        .collect();
    let task_list: Vec<serde_json::Value> = tasks
        .iter()
        .map(|t| {
            serde_json::json!({
                "task": t.name.to_string(),
                "state": task_health(t),
                "restarts": t.restarts,
                "recent_restarts": t.recent_restarts,
            })
        })
        .collect();
    let (code, status) = if !unhealthy.is_empty() {
        (StatusCode::SERVICE_UNAVAILABLE, "unhealthy")
    } else if stopping {
        (StatusCode::OK, "stopping")
    } else {
        (StatusCode::OK, "ok")
    };
    let body = serde_json::json!({
        "status": status,
        "unhealthy": unhealthy,
        "database": if last.is_some() { "ok" } else { "unavailable" },
        "mail_worker": mail_worker,
        "tasks": task_list,
        "connectors": connectors,
    });
    (code, body)
}

/// Open: Prometheus metrics.
async fn metrics(State(daemon): State<Shared>) -> Response {
    let mut gauges = Vec::new();
    let stats = daemon.app.store.outbox_stats().await;
    if let Err(e) = &stats {
        // The counters are still worth scraping; the outbox gauges are left out.
        tracing::warn!(error = %e, "Metrics: cannot read the outbox");
    }
    if let Ok(stats) = stats {
        gauges.push(crate::metrics::Gauge {
            name: crate::metrics::OUTBOX_DEPTH,
            help: "Emails waiting in the outbox.",
            value: stats.pending as f64,
        });
        let age = stats
            .oldest_pending
            .map(|t| (Utc::now() - t).num_milliseconds() as f64 / 1000.0)
            .unwrap_or(0.0);
        gauges.push(crate::metrics::Gauge {
            name: crate::metrics::OUTBOX_OLDEST_AGE,
            help: "Age of the oldest email waiting in the outbox.",
            value: age.max(0.0),
        });
        gauges.push(crate::metrics::Gauge {
            name: crate::metrics::OUTBOX_UNDELIVERABLE,
            help: "Emails the mail server refused for good (not tried again).",
            value: stats.undeliverable as f64,
        });
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::metrics::render(&gauges),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::{TaskName, TaskState, TaskStatus};

    fn task(name: TaskName, state: TaskState, recent_restarts: usize) -> TaskStatus {
        TaskStatus {
            name,
            state,
            restarts: recent_restarts as u64,
            recent_restarts,
        }
    }

    #[test]
    fn health_names_a_down_mail_worker_and_a_scheduler_that_keeps_restarting() {
        // Arrange: the database answers; the mail worker is down, the scheduler of `hr` has
        // restarted three times lately (and runs again), the one of `csv` is fine.
        let tasks = [
            task(TaskName::mail_worker(), TaskState::Down, 1),
            task(TaskName::scheduler("csv"), TaskState::Running, 0),
            task(TaskName::scheduler("hr"), TaskState::Running, 3),
        ];
        let connectors = ["csv".to_string(), "hr".to_string(), "manual".to_string()];

        // Act
        let (code, body) = health(Some(&[]), &tasks, connectors.iter(), false);

        // Assert
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["status"], "unhealthy");
        assert_eq!(
            body["unhealthy"],
            serde_json::json!(["mail_worker", "scheduler:hr"])
        );
        assert_eq!(body["database"], "ok");
        assert_eq!(body["mail_worker"], "down");
        assert_eq!(body["connectors"][0]["scheduler"], "ok");
        assert_eq!(body["connectors"][1]["scheduler"], "restarting");
        assert!(body["connectors"][2]["scheduler"].is_null(), "{body}");
    }

    #[test]
    fn health_is_ok_when_everything_runs_and_names_the_database_when_it_cannot_be_read() {
        let tasks = [task(TaskName::mail_worker(), TaskState::Running, 1)];

        let (ok, ok_body) = health(Some(&[]), &tasks, std::iter::empty(), false);
        let (down, down_body) = health(None, &tasks, std::iter::empty(), false);

        assert_eq!((ok, &ok_body["status"]), (StatusCode::OK, &"ok".into()));
        assert_eq!(ok_body["unhealthy"], serde_json::json!([]));
        assert_eq!(down, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(down_body["unhealthy"], serde_json::json!(["database"]));
        assert_eq!(down_body["database"], "unavailable");
    }
}
