//! Administration by hand through the admin API: the same actions as the pages and the command
//! line (`store::manual`), with JSON bodies, attributed to the admin of the bearer token. A
//! refusal by the rules (a field HR keeps, a membership a connector manages) is 409 with its
//! reason; an unknown person or team 404.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::json;

use super::Daemon;
use super::api::error;
use crate::domain::{Actor, Email, TeamKey};
use crate::planner::{Field, locks};
use crate::store::{MembershipAction, NewPerson, StoreError, TeamRole};

type Shared = Arc<Daemon>;

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn store_error(e: StoreError) -> Response {
    match e {
        StoreError::Refused(m) => error(StatusCode::CONFLICT, m),
        StoreError::NotFound(m) => error(StatusCode::NOT_FOUND, m),
        other => {
            tracing::error!(error = %other, "An action by hand failed");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the database could not do it now; try again shortly",
            )
        }
    }
}

fn value(text: Option<&str>) -> Option<String> {
    text.and_then(crate::domain::non_empty)
}

/// The address of account `id`, or the answer that there is none.
async fn email_of(daemon: &Daemon, id: i64) -> Result<Email, Box<Response>> {
    match daemon.app.store.person(id).await {
        Ok(Some(p)) => {
            Email::parse(&p.email).map_err(|e| Box::new(error(StatusCode::CONFLICT, e.to_string())))
        }
        Ok(None) => Err(Box::new(error(
            StatusCode::NOT_FOUND,
            format!("there is no account {id}"),
        ))),
        Err(e) => Err(Box::new(store_error(e))),
    }
}

fn changed(changed: bool) -> Response {
    Json(json!({ "changed": changed })).into_response()
}

/// A person: the account, memberships, teams, roles and history.
pub(super) async fn person(State(daemon): State<Shared>, Path(id): Path<i64>) -> Response {
    let p = match daemon.app.store.person(id).await {
        Ok(Some(p)) => p,
        Ok(None) => return error(StatusCode::NOT_FOUND, format!("there is no account {id}")),
        Err(e) => return store_error(e),
    };
    Json(json!({
        "account_id": p.account_id,
        "email": p.email,
        "first_name": p.first_name,
        "last_name": p.last_name,
        "display_name": p.display_name,
        "created_at": time(p.created_at),
        "activated_at": p.activated_at.map(time),
        "last_login_at": p.last_login_at.map(time),
        "profile_owner": p.profile_owner,
        "memberships": p.memberships.iter().map(|m| json!({
            "organisation": m.organisation,
            "state": m.state,
            "suspended": m.suspended_at.is_some() && m.state != "deactivated",
            "suspended_by": m.suspended_by,
            "connector": m.connector,
            "employee_id": m.employee_id,
            "job_title": m.job_title,
            "location": m.location,
            "employment_type": m.employment_type,
        })).collect::<Vec<_>>(),
        "teams": p.teams.iter().map(|t| json!({
            "organisation": t.organisation, "key": t.key, "name": t.name, "role": t.role,
            "connector": t.connector,
        })).collect::<Vec<_>>(),
        "roles": p.roles.iter().map(|r| json!({
            "organisation": r.organisation, "role": r.role, "connector": r.connector,
        })).collect::<Vec<_>>(),
        "history": p.history.iter().map(|h| json!({
            "at": time(h.at), "who": h.who, "organisation": h.organisation, "what": h.what,
            "run_id": h.run_id,
        })).collect::<Vec<_>>(),
    }))
    .into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewPersonBody {
    organisation: String,
    email: String,
    first_name: Option<String>,
    last_name: Option<String>,
    display_name: Option<String>,
    job_title: Option<String>,
    location: Option<String>,
    employment_type: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
    /// Team keys to join as a member.
    #[serde(default)]
    teams: Vec<String>,
    /// Send the activation email now (default true).
    send_invite: Option<bool>,
}

/// Adds a person by hand: 201 with the account, whether it was linked, the membership's
/// state and the mail queued.
pub(super) async fn add_person(
    State(daemon): State<Shared>,
    Extension(actor): Extension<Actor>,
    Json(body): Json<NewPersonBody>,
) -> Response {
    let email = match Email::parse(&body.email) {
        Ok(email) => email,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("`email`: {e}")),
    };
    if let Err(e) = daemon.app.organisation(&body.organisation).await {
        return error(StatusCode::NOT_FOUND, format!("{e:#}"));
    }
    let mut teams = Vec::new();
    for key in &body.teams {
        match TeamKey::parse(key) {
            Some(key) => teams.push(key),
            None => return error(StatusCode::BAD_REQUEST, "a team key cannot be empty"),
        }
    }
    let person = NewPerson {
        organisation: body.organisation.clone(),
        email,
        first_name: value(body.first_name.as_deref()),
        last_name: value(body.last_name.as_deref()),
        display_name: value(body.display_name.as_deref()),
        job_title: value(body.job_title.as_deref()),
        location: value(body.location.as_deref()),
        employment_type: value(body.employment_type.as_deref()),
        roles: body.roles.iter().filter_map(|r| value(Some(r))).collect(),
        teams,
        send_invite: body.send_invite.unwrap_or(true),
    };
    match daemon
        .app
        .store
        .add_person(&person, &actor, Utc::now())
        .await
    {
        Ok(added) => {
            if added.mail.is_some() {
                daemon.mail_due.notify_one();
            }
            (
                StatusCode::CREATED,
                Json(json!({
                    "account_id": added.account_id,
                    "linked": added.linked,
                    "state": added.state.as_str(),
                    "mail": added.mail,
                })),
            )
                .into_response()
        }
        Err(e) => store_error(e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EditBody {
    organisation: String,
    /// Field name to new value (`null` empties it).
    fields: BTreeMap<String, Option<String>>,
}

/// Edits fields HR does not own, all or none: 200 with what changed, 409 naming who keeps a
/// field that is locked.
pub(super) async fn edit(
    State(daemon): State<Shared>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<i64>,
    Json(body): Json<EditBody>,
) -> Response {
    let email = match email_of(&daemon, id).await {
        Ok(email) => email,
        Err(response) => return *response,
    };
    let mut edits = Vec::new();
    for (name, text) in &body.fields {
        let Some(field) = Field::parse(name).filter(|f| locks::EDITABLE.contains(f)) else {
            return error(
                StatusCode::BAD_REQUEST,
                format!("no field `{name}` to edit"),
            );
        };
        edits.push((field, value(text.as_deref())));
    }
    let owners = daemon.app.config.field_owners();
    match daemon
        .app
        .store
        .edit_person(
            &body.organisation,
            &email,
            &edits,
            &owners,
            &actor,
            Utc::now(),
        )
        .await
    {
        Ok(edited) => Json(json!({
            "changed": edited.iter().map(|e| json!({
                "field": e.field.as_str(), "old": e.old, "new": e.new,
            })).collect::<Vec<_>>(),
        }))
        .into_response(),
        Err(e) => store_error(e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RoleBody {
    organisation: String,
    role: String,
    /// `grant` or `revoke`.
    action: String,
}

/// Grants or revokes a role by hand (`admin` is the admin right).
pub(super) async fn role(
    State(daemon): State<Shared>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<i64>,
    Json(body): Json<RoleBody>,
) -> Response {
    let email = match email_of(&daemon, id).await {
        Ok(email) => email,
        Err(response) => return *response,
    };
    let Some(role) = value(Some(&body.role)) else {
        return error(StatusCode::BAD_REQUEST, "`role` is empty");
    };
    let grant = match body.action.as_str() {
        "grant" => true,
        "revoke" => false,
        other => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("`action` `{other}`: grant or revoke"),
            );
        }
    };
    daemon
        .app
        .store
        .change_role(&body.organisation, &email, &role, grant, &actor, Utc::now())
        .await
        .map(changed)
        .unwrap_or_else(store_error)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TeamLinkBody {
    organisation: String,
    team: String,
    /// `member` or `coach`.
    role: String,
    /// `add` or `remove`.
    action: String,
}

/// Adds the person to a team as member or coach, or removes a link made by hand.
pub(super) async fn team_link(
    State(daemon): State<Shared>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<i64>,
    Json(body): Json<TeamLinkBody>,
) -> Response {
    let email = match email_of(&daemon, id).await {
        Ok(email) => email,
        Err(response) => return *response,
    };
    let Some(key) = TeamKey::parse(&body.team) else {
        return error(StatusCode::BAD_REQUEST, "`team` is empty");
    };
    let Some(role) = TeamRole::parse(&body.role) else {
        return error(
            StatusCode::BAD_REQUEST,
            format!("`role` `{}`: member or coach", body.role),
        );
    };
    let (store, now, org) = (&daemon.app.store, Utc::now(), body.organisation.as_str());
    let done = match body.action.as_str() {
        "add" => {
            store
                .add_team_link(org, &key, &email, role, &actor, now)
                .await
        }
        "remove" => {
            store
                .remove_team_link(org, &key, &email, role, &actor, now)
                .await
        }
        other => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("`action` `{other}`: add or remove"),
            );
        }
    };
    done.map(changed).unwrap_or_else(store_error)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MembershipBody {
    organisation: String,
    /// `suspend`, `unsuspend` or `remove`.
    action: String,
}

/// Suspends a membership, lifts its suspension, or removes one made by hand.
pub(super) async fn membership(
    State(daemon): State<Shared>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<i64>,
    Json(body): Json<MembershipBody>,
) -> Response {
    let email = match email_of(&daemon, id).await {
        Ok(email) => email,
        Err(response) => return *response,
    };
    let Some(action) = MembershipAction::parse(&body.action) else {
        return error(
            StatusCode::BAD_REQUEST,
            format!("`action` `{}`: suspend, unsuspend or remove", body.action),
        );
    };
    daemon
        .app
        .store
        .change_membership(&body.organisation, &email, action, &actor, Utc::now())
        .await
        .map(changed)
        .unwrap_or_else(store_error)
}

#[derive(Deserialize)]
pub(super) struct TeamsQuery {
    org: String,
    /// 1 for the first page.
    page: Option<u32>,
    /// Teams to a page: 100 by default, at most 500.
    per_page: Option<u32>,
}

/// The organisation's teams, a page at a time in key order, with their coaches and how many
/// members each has (the members themselves a page at a time from
/// `/api/accounts?team=KEY`); `Link` names the next page while a page is full.
pub(super) async fn teams(State(daemon): State<Shared>, Query(q): Query<TeamsQuery>) -> Response {
    let page = q.page.unwrap_or(1).max(1);
    let per_page = q.per_page.unwrap_or(100).clamp(1, 500);
    match daemon
        .app
        .store
        .list_teams_page(&q.org, page, per_page)
        .await
    {
        Ok(teams) => {
            let mut response = Json(
                teams
                    .iter()
                    .map(|t| {
                        json!({
                            "key": t.key,
                            "name": t.name,
                            "connector": t.connector,
                            "members": t.members.len(),
                            "coaches": t.coaches.iter().map(|c| json!({
                                "email": c.email, "connector": c.connector,
                            })).collect::<Vec<_>>(),
                        })
                    })
                    .collect::<Vec<_>>(),
            )
            .into_response();
            let next = form_urlencoded::Serializer::new(String::new())
                .append_pair("org", &q.org)
                .append_pair("page", &(page + 1).to_string())
                .append_pair("per_page", &per_page.to_string())
                .finish();
            if teams.len() == per_page as usize
                && let Ok(link) =
                    HeaderValue::from_str(&format!("</api/teams?{next}>; rel=\"next\""))
            {
                response.headers_mut().insert(header::LINK, link);
            }
            response
        }
        Err(e) => store_error(e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewTeamBody {
    organisation: String,
    key: String,
    name: Option<String>,
}

/// Makes a team by hand: 201 with its id.
pub(super) async fn create_team(
    State(daemon): State<Shared>,
    Extension(actor): Extension<Actor>,
    Json(body): Json<NewTeamBody>,
) -> Response {
    let Some(key) = TeamKey::parse(&body.key) else {
        return error(StatusCode::BAD_REQUEST, "`key` is empty");
    };
    if let Err(e) = daemon.app.organisation(&body.organisation).await {
        return error(StatusCode::NOT_FOUND, format!("{e:#}"));
    }
    let name = value(body.name.as_deref()).unwrap_or_else(|| key.to_string());
    match daemon
        .app
        .store
        .create_team(&body.organisation, &key, &name, &actor, Utc::now())
        .await
    {
        Ok(id) => (StatusCode::CREATED, Json(json!({ "team_id": id }))).into_response(),
        Err(e) => store_error(e),
    }
}
