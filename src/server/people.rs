//! Administration by hand in the pages: a person's page (their memberships, the fields an admin
//! may edit with the locked ones shown and who keeps them, roles, teams, suspension, removal,
//! and their history), adding a person, and the teams page (teams with coaches and members,
//! and making a team). Every form posts to the same origin and names its organisation; each
//! action is the store's, attributed to the signed-in admin, and a refusal (a field HR owns, a
//! membership a connector manages) is shown with its reason.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use chrono::Utc;
use serde::Deserialize;

use super::Daemon;
use super::pages::{error_page, render, time, urlencode};
use crate::domain::{Actor, Email, TeamKey};
use crate::planner::{Field, locks};
use crate::store::{
    HistoryLine, MembershipAction, NewPerson, PersonMembership, PersonView, StoreError,
    TeamListing, TeamRole,
};

type Shared = std::sync::Arc<Daemon>;

/// How many members of a team the teams page lists before linking to the accounts page.
const MEMBERS_SHOWN: usize = 20;
/// Teams on one page of the teams page.
const TEAMS_PER_PAGE: u32 = 50;

/// A refused or failed action, as a page.
fn refused(title: &str, e: StoreError) -> Response {
    match e {
        StoreError::Refused(m) => error_page(StatusCode::CONFLICT, title, &m),
        StoreError::NotFound(m) => error_page(StatusCode::NOT_FOUND, title, &m),
        other => {
            tracing::error!(error = %other, "An action by hand failed");
            error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                title,
                "The database could not do it now; try again shortly.",
            )
        }
    }
}

fn person_link(id: i64, org: &str) -> String {
    format!("/people/{id}?org={}", urlencode(org))
}

/// A value from a form, on one line; `None` when nothing is left.
fn value(text: &str) -> Option<String> {
    crate::domain::non_empty(text)
}

#[derive(Deserialize)]
pub struct PersonQuery {
    org: Option<String>,
}

/// An editable field on the person's page: its name, its value, and why it is locked.
struct FieldRow {
    name: &'static str,
    value: String,
    /// Why it cannot be edited here; `None` when it can.
    lock: Option<String>,
}

#[derive(Template)]
#[template(path = "person.html", config = "src/server/askama.toml")]
struct PersonPage<'a> {
    title: String,
    p: &'a PersonView,
    created: String,
    activated: String,
    last_login: String,
    /// The membership the page acts on, and the others to switch to.
    current: Option<&'a PersonMembership>,
    suspended: bool,
    others: Vec<(&'a str, String)>,
    fields: Vec<FieldRow>,
    /// Roles in the current organisation: name, granted by hand.
    roles: Vec<(&'a str, bool, String)>,
    /// Teams in the current organisation: key, name, `member` or `coach`, by hand.
    teams: Vec<(&'a str, &'a str, &'a str, bool, String)>,
    history: Vec<(String, &'a HistoryLine)>,
}

/// A person's page.
pub async fn person(
    State(daemon): State<Shared>,
    Path(id): Path<i64>,
    Query(q): Query<PersonQuery>,
) -> Response {
    let p = match daemon.app.store.person(id).await {
        Ok(Some(p)) => p,
        Ok(None) => {
            return error_page(
                StatusCode::NOT_FOUND,
                "No such person",
                &format!("There is no account {id}."),
            );
        }
        Err(e) => return refused("Person", e),
    };
    let current = q
        .org
        .as_deref()
        .and_then(|o| p.memberships.iter().find(|m| m.organisation == o))
        .or_else(|| p.memberships.first());
    let org = current.map(|m| m.organisation.as_str()).unwrap_or_default();
    let owners = daemon.app.config.field_owners();
    let profile_owner = p
        .profile_owner
        .as_deref()
        .and_then(crate::domain::ConnectorId::parse);
    let membership_owner = current
        .and_then(|m| m.connector.as_deref())
        .and_then(crate::domain::ConnectorId::parse);
    let activated = p.activated_at.is_some();
    let fields = locks::EDITABLE
        .iter()
        .map(|&field| {
            let keeper = if locks::is_account_field(field) {
                profile_owner.as_ref()
            } else {
                membership_owner.as_ref()
            };
            let value = match field {
                Field::Email => Some(p.email.clone()),
                Field::FirstName => p.first_name.clone(),
                Field::LastName => p.last_name.clone(),
                Field::DisplayName => p.display_name.clone(),
                Field::JobTitle => current.and_then(|m| m.job_title.clone()),
                Field::Location => current.and_then(|m| m.location.clone()),
                Field::EmploymentType => current.and_then(|m| m.employment_type.clone()),
                Field::Team | Field::Coach => None,
            };
            FieldRow {
                name: field.as_str(),
                value: value.unwrap_or_default(),
                lock: locks::lock(field, keeper, &owners, activated).reason(field),
            }
        })
        .collect();
    let page = PersonPage {
        title: p.display_name.clone().unwrap_or_else(|| p.email.clone()),
        p: &p,
        created: time(p.created_at),
        activated: p.activated_at.map(time).unwrap_or_default(),
        last_login: p.last_login_at.map(time).unwrap_or_default(),
        current,
        suspended: current.is_some_and(|m| m.suspended_at.is_some() && m.state != "deactivated"),
        others: p
            .memberships
            .iter()
            .filter(|m| m.organisation != org)
            .map(|m| (m.organisation.as_str(), person_link(id, &m.organisation)))
            .collect(),
        fields,
        roles: p
            .roles
            .iter()
            .filter(|r| r.organisation == org)
            .map(|r| {
                let by = r.connector.as_deref().map(|c| format!("rule of {c}"));
                (
                    r.role.as_str(),
                    r.connector.is_none(),
                    by.unwrap_or_default(),
                )
            })
            .collect(),
        teams: p
            .teams
            .iter()
            .filter(|t| t.organisation == org)
            .map(|t| {
                let by = t.connector.as_deref().map(|c| format!("from {c}"));
                (
                    t.key.as_str(),
                    t.name.as_str(),
                    t.role.as_str(),
                    t.connector.is_none(),
                    by.unwrap_or_default(),
                )
            })
            .collect(),
        history: p.history.iter().map(|h| (time(h.at), h)).collect(),
    };
    render(StatusCode::OK, &page)
}

/// Resolves the person of a form by id; the error page when there is none.
async fn email_of(daemon: &Daemon, id: i64) -> Result<Email, Box<Response>> {
    match daemon.app.store.person(id).await {
        Ok(Some(p)) => Email::parse(&p.email).map_err(|e| {
            Box::new(error_page(
                StatusCode::CONFLICT,
                "Person",
                &format!("the stored address `{}` is not one: {e}", p.email),
            ))
        }),
        Ok(None) => Err(Box::new(error_page(
            StatusCode::NOT_FOUND,
            "No such person",
            &format!("There is no account {id}."),
        ))),
        Err(e) => Err(Box::new(refused("Person", e))),
    }
}

/// Saves the fields an admin changed on the person's page (disabled, locked fields are not
/// sent; a field sent with its value unchanged changes nothing).
pub async fn edit(
    State(daemon): State<Shared>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<i64>,
    body: String,
) -> Response {
    let email = match email_of(&daemon, id).await {
        Ok(email) => email,
        Err(page) => return *page,
    };
    let mut org = String::new();
    let mut edits = Vec::new();
    for (key, text) in form_urlencoded::parse(body.as_bytes()) {
        if key == "org" {
            org = text.into_owned();
        } else if let Some(field) = Field::parse(&key).filter(|f| locks::EDITABLE.contains(f)) {
            edits.push((field, value(&text)));
        }
    }
    let owners = daemon.app.config.field_owners();
    match daemon
        .app
        .store
        .edit_person(&org, &email, &edits, &owners, &actor, Utc::now())
        .await
    {
        Ok(_) => Redirect::to(&person_link(id, &org)).into_response(),
        Err(e) => refused("Not saved", e),
    }
}

#[derive(Deserialize)]
pub struct RoleForm {
    org: String,
    role: String,
    /// `grant` or `revoke`.
    action: String,
}

/// Grants or revokes a role by hand.
pub async fn role(
    State(daemon): State<Shared>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<i64>,
    Form(form): Form<RoleForm>,
) -> Response {
    let email = match email_of(&daemon, id).await {
        Ok(email) => email,
        Err(page) => return *page,
    };
    let Some(role) = value(&form.role) else {
        return error_page(StatusCode::BAD_REQUEST, "No role", "A role needs a name.");
    };
    let grant = form.action != "revoke";
    let done = daemon
        .app
        .store
        .change_role(&form.org, &email, &role, grant, &actor, Utc::now())
        .await;
    match done {
        Ok(_) => Redirect::to(&person_link(id, &form.org)).into_response(),
        Err(e) => refused("Role not changed", e),
    }
}

#[derive(Deserialize)]
pub struct TeamLinkForm {
    org: String,
    team: String,
    /// `member` or `coach`.
    role: String,
    /// `add` or `remove`.
    action: String,
}

/// Adds the person to a team, or removes a link made by hand.
pub async fn team_link(
    State(daemon): State<Shared>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<i64>,
    Form(form): Form<TeamLinkForm>,
) -> Response {
    let email = match email_of(&daemon, id).await {
        Ok(email) => email,
        Err(page) => return *page,
    };
    let Some(key) = TeamKey::parse(&form.team) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "No team",
            "Name a team by its key.",
        );
    };
    let role = TeamRole::parse(&form.role).unwrap_or(TeamRole::Member);
    let store = &daemon.app.store;
    let now = Utc::now();
    let done = match form.action.as_str() {
        "remove" => {
            store
                .remove_team_link(&form.org, &key, &email, role, &actor, now)
                .await
        }
        _ => {
            store
                .add_team_link(&form.org, &key, &email, role, &actor, now)
                .await
        }
    };
    match done {
        Ok(_) => Redirect::to(&person_link(id, &form.org)).into_response(),
        Err(e) => refused("Team not changed", e),
    }
}

#[derive(Deserialize)]
pub struct MembershipForm {
    org: String,
    /// `suspend`, `unsuspend` or `remove`.
    action: String,
}

/// Suspends the membership, lifts its suspension, or removes a membership made by hand.
pub async fn membership(
    State(daemon): State<Shared>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<i64>,
    Form(form): Form<MembershipForm>,
) -> Response {
    let email = match email_of(&daemon, id).await {
        Ok(email) => email,
        Err(page) => return *page,
    };
    let Some(action) = MembershipAction::parse(&form.action) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Nothing done",
            &format!("unknown action `{}`", form.action),
        );
    };
    let done = daemon
        .app
        .store
        .change_membership(&form.org, &email, action, &actor, Utc::now())
        .await;
    match done {
        Ok(_) => Redirect::to(&person_link(id, &form.org)).into_response(),
        Err(e) => refused("Nothing done", e),
    }
}

#[derive(Template)]
#[template(path = "person_new.html", config = "src/server/askama.toml")]
struct NewPersonPage<'a> {
    title: &'a str,
    orgs: Vec<&'a str>,
}

/// The form to add a person by hand.
pub async fn new_person(State(daemon): State<Shared>) -> Response {
    let orgs = daemon
        .app
        .config
        .settings
        .organisations
        .keys()
        .map(String::as_str)
        .collect();
    render(
        StatusCode::OK,
        &NewPersonPage {
            title: "Add a person",
            orgs,
        },
    )
}

#[derive(Deserialize)]
pub struct NewPersonForm {
    org: String,
    email: String,
    #[serde(default)]
    first_name: String,
    #[serde(default)]
    last_name: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    job_title: String,
    #[serde(default)]
    location: String,
    #[serde(default)]
    employment_type: String,
    /// Comma-separated.
    #[serde(default)]
    roles: String,
    /// Comma-separated team keys.
    #[serde(default)]
    teams: String,
    /// `true` when the box is ticked.
    send_invite: Option<String>,
}

/// Adds a person by hand and opens their page.
pub async fn add_person(
    State(daemon): State<Shared>,
    Extension(actor): Extension<Actor>,
    Form(form): Form<NewPersonForm>,
) -> Response {
    let email = match Email::parse(&form.email) {
        Ok(email) => email,
        Err(e) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "Not added",
                &format!("`{}`: {e}", form.email),
            );
        }
    };
    if let Err(e) = daemon.app.organisation(&form.org).await {
        return error_page(StatusCode::BAD_REQUEST, "Not added", &format!("{e:#}"));
    }
    let list = |text: &str| -> Vec<String> { text.split(',').filter_map(value).collect() };
    let person = NewPerson {
        organisation: form.org.clone(),
        email,
        first_name: value(&form.first_name),
        last_name: value(&form.last_name),
        display_name: value(&form.display_name),
        job_title: value(&form.job_title),
        location: value(&form.location),
        employment_type: value(&form.employment_type),
        roles: list(&form.roles),
        teams: list(&form.teams)
            .iter()
            .filter_map(|k| TeamKey::parse(k))
            .collect(),
        send_invite: form.send_invite.as_deref() == Some("true"),
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
            Redirect::to(&person_link(added.account_id, &form.org)).into_response()
        }
        Err(e) => refused("Not added", e),
    }
}

#[derive(Template)]
#[template(path = "teams.html", config = "src/server/askama.toml")]
struct TeamsPage<'a> {
    title: &'a str,
    org: &'a str,
    orgs: Vec<(&'a str, bool)>,
    teams: Vec<TeamRow<'a>>,
    /// The pages before and after this one, when there are.
    prev: Option<String>,
    next: Option<String>,
}

/// A team on the teams page.
struct TeamRow<'a> {
    t: &'a TeamListing,
    made: String,
    coaches: Vec<(String, bool)>,
    members: Vec<(String, bool)>,
    /// Members not listed here, and the accounts page that lists them.
    more: usize,
    all_members: String,
}

#[derive(Deserialize)]
pub struct TeamsQuery {
    org: Option<String>,
    /// 1 for the first page of teams.
    page: Option<u32>,
}

/// The teams of an organisation with their coaches and members.
pub async fn teams(State(daemon): State<Shared>, Query(q): Query<TeamsQuery>) -> Response {
    let settings = &daemon.app.config.settings;
    let Some(org) = q
        .org
        .clone()
        .filter(|o| settings.organisations.contains_key(o))
        .or_else(|| settings.organisations.keys().next().cloned())
    else {
        return error_page(
            StatusCode::NOT_FOUND,
            "Teams",
            "No organisation is configured.",
        );
    };
    let page = q.page.unwrap_or(1).max(1);
    let listed = match daemon
        .app
        .store
        .list_teams_page(&org, page, TEAMS_PER_PAGE)
        .await
    {
        Ok(listed) => listed,
        Err(e) => return refused("Teams", e),
    };
    let person = |p: &crate::store::TeamPerson| (p.email.clone(), p.connector.is_none());
    let teams = listed
        .iter()
        .map(|t| TeamRow {
            t,
            made: t
                .connector
                .as_deref()
                .map(|c| format!("from {c}"))
                .unwrap_or_else(|| "made by hand".to_string()),
            coaches: t.coaches.iter().map(person).collect(),
            members: t.members.iter().take(MEMBERS_SHOWN).map(person).collect(),
            more: t.members.len().saturating_sub(MEMBERS_SHOWN),
            all_members: format!(
                "/accounts?org={}&team={}",
                urlencode(&org),
                urlencode(&t.key)
            ),
        })
        .collect();
    let orgs = settings
        .organisations
        .keys()
        .map(|o| (o.as_str(), *o == org))
        .collect();
    render(
        StatusCode::OK,
        &TeamsPage {
            title: "Teams",
            org: &org,
            orgs,
            teams,
            prev: (page > 1).then(|| format!("/teams?org={}&page={}", urlencode(&org), page - 1)),
            next: (listed.len() == TEAMS_PER_PAGE as usize)
                .then(|| format!("/teams?org={}&page={}", urlencode(&org), page + 1)),
        },
    )
}

#[derive(Deserialize)]
pub struct NewTeamForm {
    org: String,
    key: String,
    #[serde(default)]
    name: String,
}

/// Makes a team by hand.
pub async fn create_team(
    State(daemon): State<Shared>,
    Extension(actor): Extension<Actor>,
    Form(form): Form<NewTeamForm>,
) -> Response {
    let Some(key) = TeamKey::parse(&form.key) else {
        return error_page(StatusCode::BAD_REQUEST, "No team", "A team needs a key.");
    };
    let name = value(&form.name).unwrap_or_else(|| key.to_string());
    if let Err(e) = daemon.app.organisation(&form.org).await {
        return error_page(StatusCode::BAD_REQUEST, "No team", &format!("{e:#}"));
    }
    match daemon
        .app
        .store
        .create_team(&form.org, &key, &name, &actor, Utc::now())
        .await
    {
        Ok(_) => Redirect::to(&format!("/teams?org={}", urlencode(&form.org))).into_response(),
        Err(e) => refused("No team", e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_value_is_one_line_or_nothing() {
        assert_eq!(
            value("  Anna\n de Vries "),
            Some("Anna de Vries".to_string())
        );
        assert_eq!(value(" \t "), None);
    }
}
