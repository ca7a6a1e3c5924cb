//! What the product that owns the log-in asks of hrsync through its service token: recording a
//! person's sign-in (for "last login"), and reading the directory page by page, or only what
//! changed since a moment, so it can mirror it.

use chrono::{DateTime, Utc};

use super::{Result, Store};
use crate::domain::Email;

/// One page of the directory read, in account id order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DirectoryPage {
    pub accounts: Vec<DirectoryAccount>,
    /// The cursor of the next page (`after`), `None` after the last.
    pub next_after: Option<i64>,
}

/// An account with its memberships, teams and roles in every organisation.
#[derive(Clone, Debug, PartialEq)]
pub struct DirectoryAccount {
    pub id: i64,
    pub email: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub display_name: Option<String>,
    pub activated_at: Option<DateTime<Utc>>,
    pub last_login_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    pub memberships: Vec<DirectoryMembership>,
    /// Teams of live memberships only: deactivated people are in no team.
    pub teams: Vec<DirectoryTeamLink>,
    pub roles: Vec<DirectoryRole>,
}

/// A membership of one organisation.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct DirectoryMembership {
    #[sqlx(skip)]
    pub account_id: i64,
    pub organisation: String,
    /// `invited`, `active` or `deactivated`.
    pub state: String,
    pub suspended: bool,
    /// Active and not suspended.
    pub can_log_in: bool,
    /// The connector that manages it; `None` when made by hand.
    pub connector: Option<String>,
    pub employee_id: Option<String>,
    pub job_title: Option<String>,
    pub location: Option<String>,
    pub employment_type: Option<String>,
    pub updated_at: DateTime<Utc>,
}

/// A team the person is in, as member or coach.
#[derive(Clone, Debug, PartialEq)]
pub struct DirectoryTeamLink {
    pub organisation: String,
    pub key: String,
    pub name: String,
    /// `member` or `coach`.
    pub role: &'static str,
}

/// A role the person holds in an organisation.
#[derive(Clone, Debug, PartialEq)]
pub struct DirectoryRole {
    pub organisation: String,
    pub role: String,
    /// Granted by hand (never revoked by a sync).
    pub by_hand: bool,
}

/// How a directory read is paged and filtered.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DirectoryQuery {
    /// Accounts with an id above this (the previous page's `next_after`).
    pub after: i64,
    /// At most this many accounts.
    pub limit: i64,
    /// Only accounts whose fields, memberships, team links or roles changed or were added at
    /// or after this moment. (A removed team link or role shows in a full read.)
    pub updated_since: Option<DateTime<Utc>>,
}

/// The service API's store.
impl Store {
    /// Records that the person signed in now, when they can log in (an active membership that
    /// is not suspended). `None` when there is no account with that address; otherwise
    /// whether they can log in.
    pub async fn record_sign_in(&self, email: &Email, now: DateTime<Utc>) -> Result<Option<bool>> {
        dispatch!(self, service::record_sign_in(email, now))
    }

    /// The key of an organisation the person is a member of (their oldest membership), for an
    /// edit of their own account fields that names none.
    pub async fn any_organisation_of(&self, email: &Email) -> Result<Option<String>> {
        dispatch!(self, service::any_organisation_of(email))
    }

    /// The organisations (their slugs, sorted) the person with this address is a member of.
    pub async fn organisations_of(&self, email: &Email) -> Result<Vec<String>> {
        dispatch!(self, service::organisations_of(email))
    }

    /// One page of the directory.
    pub async fn directory_page(&self, query: &DirectoryQuery) -> Result<DirectoryPage> {
        dispatch!(self, service::directory_page(query))
    }
}
