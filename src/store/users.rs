//! The account list of the admin pages, the API and `hrsync users`: each account's membership
//! of each organisation, with its teams, the teams it coaches, roles, whether its invitation
//! went out, and any mail to it that did not go out; filtered, sorted and paged in the
//! database, with its statistics counted there too, so a page of 100,000 people reads only
//! the page.

use chrono::{DateTime, Utc};

use super::{Result, Store};

/// Filters for the account list.
#[derive(Clone, Debug, Default)]
pub struct UserFilter {
    pub organisation: Option<String>,
    /// `invited`, `active`, `suspended` or `deactivated`.
    pub status: Option<String>,
    /// Text in the email, the name or the employee id, matched literally.
    pub search: Option<String>,
    /// Holds this role.
    pub role: Option<String>,
    /// Member or coach of the team with this key.
    pub team: Option<String>,
}

/// The statuses a membership is listed with.
pub const STATUSES: [&str; 4] = ["invited", "active", "suspended", "deactivated"];

/// What the account list is sorted by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UserSort {
    Organisation,
    #[default]
    Email,
    Name,
    Status,
    Created,
    Activated,
    LastLogin,
}

impl UserSort {
    pub const ALL: [UserSort; 7] = [
        UserSort::Organisation,
        UserSort::Email,
        UserSort::Name,
        UserSort::Status,
        UserSort::Created,
        UserSort::Activated,
        UserSort::LastLogin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            UserSort::Organisation => "organisation",
            UserSort::Email => "email",
            UserSort::Name => "name",
            UserSort::Status => "status",
            UserSort::Created => "created",
            UserSort::Activated => "activated",
            UserSort::LastLogin => "last_login",
        }
    }

    pub fn parse(text: &str) -> Option<UserSort> {
        UserSort::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// One page of the account list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UserPage {
    pub sort: UserSort,
    pub descending: bool,
    /// 1 for the first page.
    pub page: u32,
    pub per_page: u32,
    /// Count every match too ([`UsersPage::total`]); a caller that reads
    /// [`Store::user_stats`] has the count already.
    pub count: bool,
}

/// A page of the account list, with how many the filter matches in all.
#[derive(Clone, Debug, PartialEq)]
pub struct UsersPage {
    pub rows: Vec<UserRow>,
    /// How many the filter matches; -1 when the page was read without counting.
    pub total: i64,
}

/// The account list's statistics for a filter.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserStats {
    pub total: i64,
    /// Memberships by listed status, in [`STATUSES`] order (each present, zero or not).
    pub by_status: Vec<(&'static str, i64)>,
    /// Active and not suspended.
    pub can_log_in: i64,
    /// Invited before the cut-off given and not activated.
    pub stale: i64,
    /// Invited without an activation email queued or sent (`send_invites = false`, or added
    /// by hand without one).
    pub never_invited: i64,
}

/// One line of the account list: an account's membership of one organisation.
#[derive(Clone, Debug, PartialEq)]
pub struct UserRow {
    pub account_id: i64,
    pub organisation: String,
    pub email: String,
    pub display_name: Option<String>,
    pub employee_id: Option<String>,
    /// `invited`, `active`, `suspended` or `deactivated`.
    pub status: String,
    pub connector: Option<String>,
    pub job_title: Option<String>,
    /// Teams the person is a member of (none for a deactivated membership).
    pub teams: Vec<String>,
    /// Teams the person coaches (none for a deactivated membership).
    pub coach_of: Vec<String>,
    pub roles: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub activated_at: Option<DateTime<Utc>>,
    pub last_login_at: Option<DateTime<Utc>>,
    /// For an invited membership: `sent`, `queued` or `not sent` (no activation email yet).
    pub invitation: Option<&'static str>,
    /// The person's newest mail that failed and was not followed by one of its kind that went
    /// out.
    pub mail_problem: Option<MailProblem>,
}

impl UserRow {
    /// Whether the person can log in through this membership: active and not suspended.
    pub fn can_log_in(&self) -> bool {
        self.status == "active"
    }
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
    /// Every account the filter matches, by organisation and address (the CLI and exports).
    pub async fn list_users(&self, filter: &UserFilter) -> Result<Vec<UserRow>> {
        dispatch!(self, users::list_users(filter, None)).map(|page: UsersPage| page.rows)
    }

    /// One page of the accounts the filter matches, and how many it matches in all.
    pub async fn list_users_page(&self, filter: &UserFilter, page: UserPage) -> Result<UsersPage> {
        dispatch!(self, users::list_users(filter, Some(page)))
    }

    /// The statistics of the accounts the filter matches; `stale_before` is the cut-off for
    /// invitations not activated.
    pub async fn user_stats(
        &self,
        filter: &UserFilter,
        stale_before: DateTime<Utc>,
    ) -> Result<UserStats> {
        dispatch!(self, users::user_stats(filter, stale_before))
    }
}
