//! The account list of the admin pages, the API and `hrsync users`: each account's membership
//! of each organisation, with its teams, roles and any mail to it that did not go out.

use chrono::{DateTime, Utc};

use super::{Result, Store};

/// Filters for the account list.
#[derive(Clone, Debug, Default)]
pub struct UserFilter {
    pub organisation: Option<String>,
    pub status: Option<String>,
    pub search: Option<String>,
}

/// One line of the account list: an account's membership of one organisation.
#[derive(Clone, Debug, PartialEq)]
pub struct UserRow {
    pub account_id: i64,
    pub organisation: String,
    pub email: String,
    pub display_name: Option<String>,
    pub employee_id: Option<String>,
    pub status: String,
    pub connector: Option<String>,
    pub job_title: Option<String>,
    pub teams: Vec<String>,
    pub roles: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub activated_at: Option<DateTime<Utc>>,
    /// The person's newest mail that failed and was not followed by one of its kind that went
    /// out.
    pub mail_problem: Option<MailProblem>,
}

/// A mail to a person that did not go out: still retried, or refused for good.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailProblem {
    /// The mail's kind, such as `activation`.
    pub kind: String,
    /// The last error, as the mail server or the renderer gave it.
    pub error: String,
    /// Refused for good (a 5xx answer, or a message that cannot be built): not tried again.
    pub undeliverable: bool,
}

/// The account list.
impl Store {
    /// Accounts with their memberships, filtered.
    pub async fn list_users(&self, filter: &UserFilter) -> Result<Vec<UserRow>> {
        dispatch!(self, users::list_users(filter))
    }
}
