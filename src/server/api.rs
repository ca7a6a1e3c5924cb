//! The HTTP router: the admin JSON API, the admin pages (in `pages.rs`), and the open
//! endpoints (`/healthz`, `/metrics`, `POST /api/activate`, sign-in).
//!
//! Every admin route is listed once, in [`admin_routes`]: the router is built from that
//! list behind the admin check, and a test walks the same list to prove each one answers 401
//! without the token. JSON bodies here are the API's own wire types; the report JSON is the
//! documented one from `report`.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use chrono::Utc;
use serde::Deserialize;

use super::{Daemon, StartError, auth, pages};
use crate::domain::{Email, RunMode, Trigger};
use crate::mail::outbox::token_hash;
use crate::report;
use crate::store::{TokenState, UserFilter};
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
        route(Method::GET, "/api/runs", get(list_runs)),
        route(Method::POST, "/api/runs", post(trigger_run)),
        route(Method::GET, "/api/runs/{id}", get(run_report)),
        route(Method::POST, "/api/runs/{id}/approve", post(approve_run)),
        route(Method::GET, "/api/accounts", get(list_accounts)),
        route(Method::POST, "/api/accounts/resend", post(resend_invite)),
        route(Method::GET, "/", get(pages::home)),
        route(Method::GET, "/runs", get(pages::runs)),
        route(Method::POST, "/runs", post(pages::trigger)),
        route(Method::GET, "/runs/{id}", get(pages::run)),
        route(Method::POST, "/runs/{id}/approve", post(pages::approve)),
        route(Method::GET, "/accounts", get(pages::accounts)),
        route(Method::POST, "/accounts/export", post(pages::export)),
        route(Method::POST, "/accounts/resend", post(pages::resend)),
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
        .layer(middleware::from_fn(security_headers))
        .with_state(daemon)
}

/// Lets a request through only with the admin token. The API answers 401 with a JSON error;
/// a page answers 401 with the sign-in form.
async fn require_admin(State(daemon): State<Shared>, request: Request, next: Next) -> Response {
    if daemon.token.admits(request.headers()) {
        if auth::cross_origin_form(request.method(), request.headers()) {
            tracing::warn!(path = %request.uri().path(), "Refused a cross-origin form sent with the admin cookie");
            return error(
                StatusCode::FORBIDDEN,
                "refused: this form was sent from another origin",
            );
        }
        return next.run(request).await;
    }
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
    pages::sign_in_page(StatusCode::UNAUTHORIZED, request.uri().path(), None)
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
fn json_text(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn internal(e: anyhow::Error) -> Response {
    let message = format!("{e:#}");
    tracing::error!(error = %message, "Request failed");
    error(StatusCode::INTERNAL_SERVER_ERROR, message)
}

#[derive(Deserialize)]
struct RunsQuery {
    limit: Option<i64>,
    connector: Option<String>,
}

async fn list_runs(State(daemon): State<Shared>, Query(q): Query<RunsQuery>) -> Response {
    let limit = q.limit.unwrap_or(50).clamp(1, 1000);
    match daemon
        .app
        .store
        .list_runs(limit, q.connector.as_deref())
        .await
    {
        Ok(runs) => json_text(StatusCode::OK, report::runs_json(&runs)),
        Err(e) => internal(e.into()),
    }
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
}

/// Starts a run now; answers 202 with its id as soon as it is recorded.
async fn trigger_run(State(daemon): State<Shared>, Json(body): Json<TriggerBody>) -> Response {
    match start(&daemon, &body.connector, body.dry_run).await {
        Ok(run_id) => (
            StatusCode::ACCEPTED,
            [(header::LOCATION, format!("/api/runs/{run_id}"))],
            Json(serde_json::json!({ "run_id": run_id })),
        )
            .into_response(),
        Err((status, message)) => error(status, message),
    }
}

/// Starts a run asked for by an admin; the status and message say why not.
pub(super) async fn start(
    daemon: &Shared,
    connector: &str,
    dry_run: bool,
) -> Result<i64, (StatusCode, String)> {
    let request = RunRequest {
        mode: if dry_run {
            RunMode::Plan
        } else {
            RunMode::Apply
        },
        trigger: Trigger::Api,
        as_of: AsOf::Now,
        scheduled_for: None,
    };
    daemon
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
        })
}

async fn approve_run(State(daemon): State<Shared>, Path(id): Path<i64>) -> Response {
    match daemon.app.approve(id).await {
        Ok(outcome) => {
            daemon.mail_due.notify_one();
            json_text(StatusCode::OK, report::json(&outcome.report))
        }
        // Not held, not found, or planning again differs: the message says which.
        Err(e) => error(StatusCode::CONFLICT, format!("{e:#}")),
    }
}

#[derive(Deserialize, Default)]
pub(super) struct AccountsQuery {
    pub org: Option<String>,
    pub status: Option<String>,
    pub q: Option<String>,
}

impl AccountsQuery {
    pub fn filter(&self) -> UserFilter {
        let some = |v: &Option<String>| v.clone().filter(|s| !s.trim().is_empty());
        UserFilter {
            organisation: some(&self.org),
            status: some(&self.status),
            search: some(&self.q).map(|s| s.trim().to_string()),
        }
    }
}

async fn list_accounts(State(daemon): State<Shared>, Query(q): Query<AccountsQuery>) -> Response {
    match daemon.app.store.list_users(&q.filter()).await {
        Ok(users) => json_text(StatusCode::OK, report::users_json(&users)),
        Err(e) => internal(e.into()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResendBody {
    organisation: String,
    email: String,
}

async fn resend_invite(State(daemon): State<Shared>, Json(body): Json<ResendBody>) -> Response {
    match resend(&daemon, &body.organisation, &body.email).await {
        Ok(mail_id) => (
            StatusCode::ACCEPTED,
            Json(serde_json::json!({ "mail_id": mail_id })),
        )
            .into_response(),
        Err((status, message)) => error(status, message),
    }
}

/// Queues a new activation email (the earlier link stops working) and wakes the mail worker.
pub(super) async fn resend(
    daemon: &Shared,
    organisation: &str,
    email: &str,
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
        Err(e) => internal(e.into()),
    }
}

fn gone(state: &str, message: &str) -> Response {
    (
        StatusCode::GONE,
        Json(serde_json::json!({ "error": message, "state": state })),
    )
        .into_response()
}

/// Open: whether the database answers, and the last run of each connector. 503 when the
/// database does not answer.
async fn healthz(State(daemon): State<Shared>) -> Response {
    let store = &daemon.app.store;
    if let Err(e) = store.ping().await {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "status": "unavailable", "database": e.to_string() })),
        )
            .into_response();
    }
    let last = store.last_runs().await.unwrap_or_default();
    let connectors: Vec<serde_json::Value> = daemon
        .app
        .config
        .settings
        .connectors
        .keys()
        .map(|id| {
            let run = last.iter().find(|r| &r.connector == id);
            serde_json::json!({
                "connector": id,
                "last_run_id": run.map(|r| r.id),
                "last_status": run.map(|r| r.status.as_str()),
                "last_started_at": run.map(|r| r.started_at.to_rfc3339()),
                "last_finished_at": run.and_then(|r| r.finished_at).map(|t| t.to_rfc3339()),
            })
        })
        .collect();
    Json(serde_json::json!({
        "status": if daemon.stopping() { "stopping" } else { "ok" },
        "database": "ok",
        "connectors": connectors,
    }))
    .into_response()
}

/// Open: Prometheus metrics.
async fn metrics(State(daemon): State<Shared>) -> Response {
    let mut gauges = Vec::new();
    if let Ok(stats) = daemon.app.store.outbox_stats().await {
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
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::metrics::render(&gauges),
    )
        .into_response()
}
