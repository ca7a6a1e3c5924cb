//! Local administration: what an admin does by hand beside the sync (add a person, edit a
//! field HR does not own, roles and admin rights, teams with members and coaches, suspend,
//! remove a membership made by hand), each in one transaction with its audit-trail entry.
//!
//! The rules are "Local administration" of the product: rows made here carry no connector, so
//! no sync revokes, removes or deactivates them; what a connector made is HR's and is refused
//! here with the connector named ([`StoreError::Refused`](super::StoreError::Refused)). Which
//! fields are locked is decided by [`crate::planner::locks`] from the connectors' ownership,
//! which the caller passes in.

use chrono::{DateTime, Utc};

use super::{Result, Store};
use crate::domain::{Actor, AuditAction, AuditEvent, Email, MembershipState, TeamKey};
use crate::planner::Field;
use crate::planner::locks::FieldOwners;

/// A person added by hand to an organisation.
#[derive(Clone, Debug, PartialEq)]
pub struct NewPerson {
    /// The organisation's key.
    pub organisation: String,
    pub email: Email,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// Made from the names when not given.
    pub display_name: Option<String>,
    pub job_title: Option<String>,
    pub location: Option<String>,
    pub employment_type: Option<String>,
    /// Roles granted by hand (`admin` is the admin right).
    pub roles: Vec<String>,
    /// Teams (by key) the person joins as a member, by hand.
    pub teams: Vec<TeamKey>,
    /// Queue the activation email now; otherwise `invite resend` sends it later.
    pub send_invite: bool,
}

/// What adding a person did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersonAdded {
    pub account_id: i64,
    /// The address had an account already (made by hand or in another organisation): it was
    /// linked with a new membership, not created again.
    pub linked: bool,
    pub state: MembershipState,
    /// The mail queued: `activation`, `added_to_organisation`, or none.
    pub mail: Option<&'static str>,
}

/// A field changed by hand, with its values before and after.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edited {
    pub field: Field,
    pub old: Option<String>,
    pub new: Option<String>,
}

/// A person's place in a team.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TeamRole {
    Member,
    Coach,
}

impl TeamRole {
    pub fn as_str(self) -> &'static str {
        match self {
            TeamRole::Member => "member",
            TeamRole::Coach => "coach",
        }
    }

    /// `member` or `coach`.
    pub fn parse(text: &str) -> Option<TeamRole> {
        [TeamRole::Member, TeamRole::Coach]
            .into_iter()
            .find(|r| r.as_str() == text)
    }
}

/// What an admin does to a membership by hand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MembershipAction {
    Suspend,
    LiftSuspension,
    /// Only a membership made by hand.
    Remove,
}

impl MembershipAction {
    /// `suspend`, `unsuspend` or `remove`, as the forms, the API and the CLI name them.
    pub fn parse(text: &str) -> Option<MembershipAction> {
        match text {
            "suspend" => Some(MembershipAction::Suspend),
            "unsuspend" => Some(MembershipAction::LiftSuspension),
            "remove" => Some(MembershipAction::Remove),
            _ => None,
        }
    }
}

/// A team with its live members and coaches (deactivated people are in no team).
#[derive(Clone, Debug, PartialEq)]
pub struct TeamListing {
    pub id: i64,
    pub key: String,
    pub name: String,
    /// The connector that made the team; `None` for a team made by hand.
    pub connector: Option<String>,
    pub members: Vec<TeamPerson>,
    pub coaches: Vec<TeamPerson>,
}

/// A member or coach of a team.
#[derive(Clone, Debug, PartialEq)]
pub struct TeamPerson {
    pub account_id: i64,
    pub email: String,
    pub display_name: Option<String>,
    /// The connector that made the link; `None` when it was made by hand.
    pub connector: Option<String>,
}

/// A role of an organisation and how many hold it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleListing {
    pub name: String,
    /// Live memberships holding it through a connector's rule.
    pub by_rule: i64,
    /// Live memberships holding it by hand.
    pub by_hand: i64,
}

/// Manual administration.
impl Store {
    /// Adds a person by hand: a new account, or a link of the existing one found by address,
    /// and a membership no connector manages, with its roles and teams; queues the activation
    /// email (or, for an activated account, the "added to organisation" notice) unless told
    /// not to. Refused when the person is a member of the organisation already.
    pub async fn add_person(
        &self,
        person: &NewPerson,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<PersonAdded> {
        dispatch!(self, manual::add_person(person, actor, now))
    }

    /// Edits fields of a person's account and membership, all or none. An admin (an actor
    /// through the CLI, the API or the pages) may edit what no connector keeps from HR and the
    /// person does not own; the person (an actor through the service API) only what they own
    /// since activating. Anything else is refused naming why. Returns the fields whose value
    /// changed.
    pub async fn edit_person(
        &self,
        organisation: &str,
        email: &Email,
        edits: &[(Field, Option<String>)],
        owners: &FieldOwners,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Vec<Edited>> {
        dispatch!(
            self,
            manual::edit_person(organisation, email, edits, owners, actor, now)
        )
    }

    /// Grants a role by hand; `false` when the person holds it already.
    pub async fn grant_role(
        &self,
        organisation: &str,
        email: &Email,
        role: &str,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        dispatch!(
            self,
            manual::grant_role(organisation, email, role, actor, now)
        )
    }

    /// Revokes a role granted by hand; refused for one a connector's rule grants (it would
    /// come back at the next sync). `false` when the person does not hold it.
    pub async fn revoke_role(
        &self,
        organisation: &str,
        email: &Email,
        role: &str,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        dispatch!(
            self,
            manual::revoke_role(organisation, email, role, actor, now)
        )
    }

    /// Grants (`grant`) or revokes a role by hand: [`Store::grant_role`] or
    /// [`Store::revoke_role`]. `false` when nothing changed.
    pub async fn change_role(
        &self,
        organisation: &str,
        email: &Email,
        role: &str,
        grant: bool,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        if grant {
            self.grant_role(organisation, email, role, actor, now).await
        } else {
            self.revoke_role(organisation, email, role, actor, now)
                .await
        }
    }

    /// Suspends a membership, lifts its suspension, or removes one made by hand. `false`
    /// when nothing changed.
    pub async fn change_membership(
        &self,
        organisation: &str,
        email: &Email,
        action: MembershipAction,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        match action {
            MembershipAction::Suspend => self.suspend(organisation, email, actor, now).await,
            MembershipAction::LiftSuspension => {
                self.lift_suspension(organisation, email, actor, now).await
            }
            MembershipAction::Remove => self
                .remove_membership(organisation, email, actor, now)
                .await
                .map(|()| true),
        }
    }

    /// The organisation's roles, with how many hold each by rule and by hand.
    pub async fn list_roles(&self, organisation: &str) -> Result<Vec<RoleListing>> {
        dispatch!(self, manual::list_roles(organisation))
    }

    /// Creates a team by hand; refused when a team of that key exists.
    pub async fn create_team(
        &self,
        organisation: &str,
        key: &TeamKey,
        name: &str,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<i64> {
        dispatch!(
            self,
            manual::create_team(organisation, key, name, actor, now)
        )
    }

    /// Adds a person to a team by hand, as member or coach. A person is never both: a coach
    /// added ends their member link (the coach assignment wins, as in a sync), and a member is
    /// refused where the person coaches the team. `false` when the link exists already.
    pub async fn add_team_link(
        &self,
        organisation: &str,
        key: &TeamKey,
        email: &Email,
        role: TeamRole,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        dispatch!(
            self,
            manual::add_team_link(organisation, key, email, role, actor, now)
        )
    }

    /// Removes a member or coach link made by hand; refused for one a connector made from HR
    /// data. `false` when there is no such link.
    pub async fn remove_team_link(
        &self,
        organisation: &str,
        key: &TeamKey,
        email: &Email,
        role: TeamRole,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        dispatch!(
            self,
            manual::remove_team_link(organisation, key, email, role, actor, now)
        )
    }

    /// The organisation's teams with their live members and coaches, by key.
    pub async fn list_teams(&self, organisation: &str) -> Result<Vec<TeamListing>> {
        dispatch!(self, manual::list_teams(organisation, None))
    }

    /// One page of [`Store::list_teams`]: `per_page` teams from page `page` (1 for the first),
    /// reading only their links.
    pub async fn list_teams_page(
        &self,
        organisation: &str,
        page: u32,
        per_page: u32,
    ) -> Result<Vec<TeamListing>> {
        let window = (
            i64::from(page.saturating_sub(1)) * i64::from(per_page),
            i64::from(per_page),
        );
        dispatch!(self, manual::list_teams(organisation, Some(window)))
    }

    /// Suspends a live membership: the person cannot log in through it until the suspension
    /// is lifted; a sync does not lift it. `false` when it is suspended already.
    pub async fn suspend(
        &self,
        organisation: &str,
        email: &Email,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        dispatch!(self, manual::suspend(organisation, email, actor, now))
    }

    /// Lifts a suspension; `false` when the membership is not suspended.
    pub async fn lift_suspension(
        &self,
        organisation: &str,
        email: &Email,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        dispatch!(
            self,
            manual::lift_suspension(organisation, email, actor, now)
        )
    }

    /// Removes a membership made by hand from the organisation, with its team links and role
    /// grants there; its pending activation links stop working and its queued mail is
    /// cancelled. The account stays. Refused for a membership a connector manages: that one
    /// ends only through HR.
    pub async fn remove_membership(
        &self,
        organisation: &str,
        email: &Email,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<()> {
        dispatch!(
            self,
            manual::remove_membership(organisation, email, actor, now)
        )
    }

    /// Records an action by hand that is not a change of the directory (an approval, a
    /// resend, an export, a run started by hand).
    pub async fn record_audit(&self, entry: &AuditEntry<'_>, now: DateTime<Utc>) -> Result<()> {
        dispatch!(self, manual::record_audit(entry, now))
    }

    /// The id of the account with this address, if there is one.
    pub async fn account_id(&self, email: &Email) -> Result<Option<i64>> {
        dispatch!(self, manual::account_id(email))
    }

    /// The audit trail, oldest first: at most `limit` entries with an id above `after` (the
    /// cursor: the last id of the page before).
    pub async fn audit_trail(&self, after: i64, limit: i64) -> Result<Vec<AuditEvent>> {
        dispatch!(self, manual::audit_trail(after, limit))
    }

    /// The actions by hand on one run (who started it, who approved it), oldest first.
    pub async fn audit_of_run(&self, run_id: i64) -> Result<Vec<AuditEvent>> {
        dispatch!(self, manual::audit_of_run(run_id))
    }

    /// The audit trail of one account, oldest first.
    pub async fn audit_of_account(&self, account_id: i64) -> Result<Vec<AuditEvent>> {
        dispatch!(self, manual::audit_of_account(account_id))
    }
}

/// An entry for the audit trail, as an action writes it.
#[derive(Clone, Debug)]
pub struct AuditEntry<'a> {
    pub actor: &'a Actor,
    pub action: AuditAction,
    /// The organisation's key.
    pub organisation: Option<&'a str>,
    /// The person, by address.
    pub email: Option<&'a Email>,
    pub run_id: Option<i64>,
    pub subject: Option<&'a str>,
    pub old_value: Option<&'a str>,
    pub new_value: Option<&'a str>,
}

impl<'a> AuditEntry<'a> {
    /// An entry of `action` by `actor`, naming nothing yet.
    pub fn new(actor: &'a Actor, action: AuditAction) -> AuditEntry<'a> {
        AuditEntry {
            actor,
            action,
            organisation: None,
            email: None,
            run_id: None,
            subject: None,
            old_value: None,
            new_value: None,
        }
    }
}
