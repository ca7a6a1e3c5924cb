//! The service API, for the product that owns the log-in, behind a service token
//! (`hrsync service-tokens add NAME`): record a person's sign-in, let the person edit the
//! fields they own since activating, and read the directory page by page (or what changed
//! since a moment) to mirror it.
//!
//! Service tokens and admin tokens are apart: a service token opens only these routes (listed
//! once, in [`service_routes`]), and no admin token opens them. JSON bodies are this API's own
//! wire types.

use std::sync::Arc;

use axum::extract::{Query, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, patch, post};
use axum::{Extension, Json, Router};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use super::Daemon;
use super::api::error;
use super::auth;
use crate::domain::{Actor, Email, Via};
use crate::planner::{Field, locks};
use crate::store::{DirectoryAccount, DirectoryQuery, PrincipalKind, StoreError};

type Shared = Arc<Daemon>;

/// The largest page of the directory read.
pub const MAX_PAGE: i64 = 500;
/// The page size when none is asked for.
pub const DEFAULT_PAGE: i64 = 100;

/// The service a request comes from (its token's name).
#[derive(Clone, Debug)]
struct Service(String);

/// One service route: its method and path (for the test that walks them), and its handler.
pub struct ServiceRoute {
    pub method: Method,
    pub path: &'static str,
    handler: MethodRouter<Shared>,
}

/// Every route of the service API.
pub fn service_routes() -> Vec<ServiceRoute> {
    let route = |method, path, handler| ServiceRoute {
        method,
        path,
        handler,
    };
    vec![
        route(Method::POST, "/api/service/sign-ins", post(sign_in)),
        route(
            Method::PATCH,
            "/api/service/accounts",
            patch(edit_own_fields),
        ),
        route(Method::GET, "/api/service/directory", get(directory)),
    ]
}

/// The service routes behind the service-token check.
pub fn router(daemon: &Shared) -> Router<Shared> {
    let mut service = Router::new();
    for r in service_routes() {
        service = service.route(r.path, r.handler);
    }
    service.route_layer(middleware::from_fn_with_state(
        Arc::clone(daemon),
        require_service,
    ))
}

/// Lets a request through only with a live service token as a bearer token; an admin token
/// is not one.
async fn require_service(
    State(daemon): State<Shared>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(token) = auth::bearer(request.headers()) else {
        return unauthorised();
    };
    let hash = crate::secret::sha256_hex(token);
    match daemon
        .app
        .store
        .principal_by_token(PrincipalKind::Service, &hash)
        .await
    {
        Ok(Some(name)) => {
            request.extensions_mut().insert(Service(name));
            next.run(request).await
        }
        Ok(None) => unauthorised(),
        Err(e) => {
            tracing::error!(error = %e, "Cannot check a service token");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "cannot check the token now; try again shortly",
            )
        }
    }
}

fn unauthorised() -> Response {
    let mut response = error(
        StatusCode::UNAUTHORIZED,
        "a service token is required: send `Authorization: Bearer <token>` (`hrsync service-tokens add`)",
    );
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

fn store_error(e: StoreError) -> Response {
    match e {
        StoreError::NotFound(m) => error(StatusCode::NOT_FOUND, m),
        StoreError::Refused(m) => error(StatusCode::FORBIDDEN, m),
        other => {
            tracing::error!(error = %other, "Service request failed");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the database could not answer; try again shortly",
            )
        }
    }
}

fn parse_email(text: &str) -> Result<Email, Box<Response>> {
    Email::parse(text)
        .map_err(|e| Box::new(error(StatusCode::BAD_REQUEST, format!("`email`: {e}"))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignInBody {
    email: String,
}

/// Records that the person signed in now, when they can log in; answers whether they can
/// (an active membership that is not suspended), or 404 for an unknown address.
async fn sign_in(State(daemon): State<Shared>, Json(body): Json<SignInBody>) -> Response {
    let email = match parse_email(&body.email) {
        Ok(email) => email,
        Err(response) => return *response,
    };
    match daemon.app.store.record_sign_in(&email, Utc::now()).await {
        Ok(Some(can_log_in)) => Json(serde_json::json!({
            "email": email.as_str(),
            "can_log_in": can_log_in,
            "recorded": can_log_in,
        }))
        .into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no account `{email}`")),
        Err(e) => store_error(e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EditBody {
    email: String,
    /// Needed for a membership field (job title, location, employment type).
    organisation: Option<String>,
    /// Field name to new value (`null` empties it).
    fields: std::collections::BTreeMap<String, Option<String>>,
}

/// The person edits fields they own since activating (`user_after_activation`); any other
/// field is refused (403) naming who owns it.
async fn edit_own_fields(
    State(daemon): State<Shared>,
    Extension(service): Extension<Service>,
    Json(body): Json<EditBody>,
) -> Response {
    let email = match parse_email(&body.email) {
        Ok(email) => email,
        Err(response) => return *response,
    };
    let mut edits = Vec::new();
    for (name, value) in &body.fields {
        let Some(field) = Field::parse(name).filter(|f| locks::EDITABLE.contains(f)) else {
            return error(
                StatusCode::BAD_REQUEST,
                format!("no field `{name}` to edit"),
            );
        };
        edits.push((field, value.as_deref().and_then(crate::domain::non_empty)));
    }
    let organisation = match body.organisation {
        Some(org) => org,
        None if edits.iter().all(|(f, _)| locks::is_account_field(*f)) => {
            match daemon.app.store.any_organisation_of(&email).await {
                Ok(Some(org)) => org,
                Ok(None) => return error(StatusCode::NOT_FOUND, format!("no account `{email}`")),
                Err(e) => return store_error(e),
            }
        }
        None => {
            return error(
                StatusCode::BAD_REQUEST,
                "`organisation` is needed to edit a membership field",
            );
        }
    };
    // The person acts for themselves, through this service.
    let actor = Actor::new(&format!("{email} (through {})", service.0), Via::Service);
    let owners = daemon.app.config.field_owners();
    match daemon
        .app
        .store
        .edit_person(&organisation, &email, &edits, &owners, &actor, Utc::now())
        .await
    {
        Ok(edited) => {
            let changed: Vec<_> = edited
                .iter()
                .map(|e| serde_json::json!({ "field": e.field.as_str(), "old": e.old, "new": e.new }))
                .collect();
            Json(serde_json::json!({ "changed": changed })).into_response()
        }
        Err(e) => store_error(e),
    }
}

#[derive(Deserialize)]
struct DirectoryParams {
    /// The cursor: accounts with an id above this (the previous page's `next_after`).
    after: Option<i64>,
    limit: Option<i64>,
    /// RFC 3339: only accounts changed since.
    updated_since: Option<String>,
}

#[derive(Serialize)]
struct DirectoryJson {
    accounts: Vec<AccountJson>,
    /// Pass as `after` for the next page; null after the last.
    next_after: Option<i64>,
}

#[derive(Serialize)]
struct AccountJson {
    id: i64,
    email: String,
    first_name: Option<String>,
    last_name: Option<String>,
    display_name: Option<String>,
    activated_at: Option<String>,
    last_login_at: Option<String>,
    updated_at: String,
    memberships: Vec<serde_json::Value>,
    teams: Vec<serde_json::Value>,
    roles: Vec<serde_json::Value>,
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn account_json(a: DirectoryAccount) -> AccountJson {
    AccountJson {
        id: a.id,
        email: a.email,
        first_name: a.first_name,
        last_name: a.last_name,
        display_name: a.display_name,
        activated_at: a.activated_at.map(time),
        last_login_at: a.last_login_at.map(time),
        updated_at: time(a.updated_at),
        memberships: a
            .memberships
            .into_iter()
            .map(|m| {
                serde_json::json!({
                    "organisation": m.organisation,
                    "state": m.state,
                    "suspended": m.suspended,
                    "can_log_in": m.can_log_in,
                    "connector": m.connector,
                    "employee_id": m.employee_id,
                    "job_title": m.job_title,
                    "location": m.location,
                    "employment_type": m.employment_type,
                    "updated_at": time(m.updated_at),
                })
            })
            .collect(),
        teams: a
            .teams
            .into_iter()
            .map(|t| {
                serde_json::json!({
                    "organisation": t.organisation, "key": t.key, "name": t.name, "role": t.role,
                })
            })
            .collect(),
        roles: a
            .roles
            .into_iter()
            .map(|r| {
                serde_json::json!({
                    "organisation": r.organisation, "role": r.role, "by_hand": r.by_hand,
                })
            })
            .collect(),
    }
}

/// A page of the directory: accounts in id order with their memberships, teams (live
/// memberships only) and roles.
async fn directory(State(daemon): State<Shared>, Query(q): Query<DirectoryParams>) -> Response {
    let limit = q.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return error(
            StatusCode::BAD_REQUEST,
            format!("`limit` is 1 to {MAX_PAGE}"),
        );
    }
    let updated_since = match q.updated_since.as_deref().map(DateTime::parse_from_rfc3339) {
        None => None,
        Some(Ok(t)) => Some(t.with_timezone(&Utc)),
        Some(Err(_)) => {
            return error(
                StatusCode::BAD_REQUEST,
                "`updated_since` is an RFC 3339 time, such as 2026-12-01T00:00:00Z",
            );
        }
    };
    let query = DirectoryQuery {
        after: q.after.unwrap_or(0),
        limit,
        updated_since,
    };
    match daemon.app.store.directory_page(&query).await {
        Ok(page) => Json(DirectoryJson {
            next_after: page.next_after,
            accounts: page.accounts.into_iter().map(account_json).collect(),
        })
        .into_response(),
        Err(e) => store_error(e),
    }
}
