//! One person as their page shows them: the account, every membership (with who manages it
//! and whether it is suspended), teams and coached teams, roles with who granted them, and
//! their history: the changes runs made to them beside the actions taken by hand.

use chrono::{DateTime, Utc};

use super::{Result, Store};

/// A person's page.
#[derive(Clone, Debug, PartialEq)]
pub struct PersonView {
    pub account_id: i64,
    pub email: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub display_name: Option<String>,
    pub created_at: DateTime<Utc>,
    pub activated_at: Option<DateTime<Utc>>,
    pub last_login_at: Option<DateTime<Utc>>,
    /// The connector that keeps the account's email and names (its oldest live managed
    /// membership's), if any.
    pub profile_owner: Option<String>,
    pub memberships: Vec<PersonMembership>,
    /// Teams in every organisation, as member or coach.
    pub teams: Vec<PersonTeam>,
    pub roles: Vec<PersonRole>,
    /// Newest first: changes of applied runs and actions by hand.
    pub history: Vec<HistoryLine>,
}

/// A membership on a person's page.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct PersonMembership {
    pub organisation: String,
    pub state: String,
    pub suspended_at: Option<DateTime<Utc>>,
    pub suspended_by: Option<String>,
    pub connector: Option<String>,
    pub employee_id: Option<String>,
    pub job_title: Option<String>,
    pub location: Option<String>,
    pub employment_type: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// A team the person is in.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct PersonTeam {
    pub organisation: String,
    pub key: String,
    pub name: String,
    /// `member` or `coach`.
    pub role: String,
    /// The connector that made the link; `None` when made by hand.
    pub connector: Option<String>,
}

/// A role the person holds.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct PersonRole {
    pub organisation: String,
    pub role: String,
    /// The connector whose rule granted it; `None` when granted by hand.
    pub connector: Option<String>,
}

/// One line of a person's history.
#[derive(Clone, Debug, PartialEq)]
pub struct HistoryLine {
    pub at: DateTime<Utc>,
    /// The admin (with through what), or `sync (connector)`.
    pub who: String,
    pub organisation: Option<String>,
    /// What happened, in words.
    pub what: String,
    pub run_id: Option<i64>,
}

/// How many history lines of each source a person's page shows.
pub const HISTORY_LINES: i64 = 200;

impl Store {
    /// The person with this account id, as their page shows them; `None` when there is none.
    pub async fn person(&self, account_id: i64) -> Result<Option<PersonView>> {
        dispatch!(self, person::person(account_id))
    }
}
