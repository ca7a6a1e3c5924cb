//! A snapshot of the local directory for one organisation, as the planner sees it.
//!
//! The store loads it in a handful of queries before planning; the planner reads it and never
//! writes it. Rows carry the connector that manages them (`None` for rows made by hand), because
//! a sync touches only what its own connector manages.

use chrono::{DateTime, Utc};

use super::{ConnectorId, Email, EmployeeId, TeamKey};

/// Database id of an account.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId(pub i64);
/// Database id of a membership.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MembershipId(pub i64);
/// Database id of a team.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TeamId(pub i64);

/// A person's login, shared by every organisation they belong to.
#[derive(Clone, Debug, PartialEq)]
pub struct Account {
    pub id: AccountId,
    pub email: Email,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub display_name: Option<String>,
    /// When the person activated the account; `None` while only invited.
    pub activated_at: Option<DateTime<Utc>>,
    /// The connector that keeps the account's profile (email and names): the one of its
    /// oldest live managed membership, in any organisation. `None` when no connector does.
    pub profile_owner: Option<ConnectorId>,
    /// That oldest live managed membership, which gives `profile_owner` the profile.
    pub profile_owner_membership: Option<MembershipId>,
}

/// The state of a person's membership of one organisation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MembershipState {
    Invited,
    Active,
    Deactivated,
}

impl MembershipState {
    pub fn as_str(self) -> &'static str {
        match self {
            MembershipState::Invited => "invited",
            MembershipState::Active => "active",
            MembershipState::Deactivated => "deactivated",
        }
    }

    pub fn parse(text: &str) -> Option<MembershipState> {
        match text {
            "invited" => Some(MembershipState::Invited),
            "active" => Some(MembershipState::Active),
            "deactivated" => Some(MembershipState::Deactivated),
            _ => None,
        }
    }

    /// Invited and active memberships are live; deactivated ones are kept but closed.
    pub fn is_live(self) -> bool {
        self != MembershipState::Deactivated
    }
}

/// An account's membership of the organisation, with the HR fields kept per organisation.
#[derive(Clone, Debug, PartialEq)]
pub struct Membership {
    pub id: MembershipId,
    pub account_id: AccountId,
    pub state: MembershipState,
    /// The connector that manages this membership; `None` when it was made by hand.
    pub connector: Option<ConnectorId>,
    pub employee_id: Option<EmployeeId>,
    pub job_title: Option<String>,
    pub location: Option<String>,
    pub employment_type: Option<String>,
}

/// A team of the organisation.
#[derive(Clone, Debug, PartialEq)]
pub struct Team {
    pub id: TeamId,
    pub key: TeamKey,
    pub name: String,
    /// The connector that made the team; `None` for a team made by hand.
    pub connector: Option<ConnectorId>,
}

/// A person in a team, as a member or as a coach.
#[derive(Clone, Debug, PartialEq)]
pub struct TeamLink {
    pub team_id: TeamId,
    pub account_id: AccountId,
    /// The connector that made the link; `None` when it was made by hand.
    pub connector: Option<ConnectorId>,
}

/// A role held by an account in the organisation.
#[derive(Clone, Debug, PartialEq)]
pub struct Grant {
    pub account_id: AccountId,
    pub role: String,
    /// The connector that granted it; `None` when it was granted by hand (admin rights are).
    pub connector: Option<ConnectorId>,
}

/// What the planner knows of the directory for one organisation.
///
/// `accounts` holds every account with a membership of the organisation and every account
/// whose email appears in the feed (the candidates for linking); the other lists are the
/// organisation's own rows.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Directory {
    pub accounts: Vec<Account>,
    pub memberships: Vec<Membership>,
    pub teams: Vec<Team>,
    pub team_members: Vec<TeamLink>,
    pub coaches: Vec<TeamLink>,
    pub grants: Vec<Grant>,
}
