//! Who did what by hand: the admin behind an action ([`Actor`]), the actions an admin can take
//! ([`AuditAction`]), and an entry of the audit trail as it is read back ([`AuditEvent`]).
//!
//! Every action by hand (adding a person, editing a field, granting a role, a team link, a
//! suspension, an approval, a resend, an export, a run started by hand) is written to the
//! trail in the transaction that makes it, so a person's history and a run's page can say who
//! did it and when.

use chrono::{DateTime, Utc};

/// The name the audit trail gives the holder of the configured admin token
/// (`server.admin_token_sha256`); no named admin may take it.
pub const CONFIGURED_ADMIN: &str = "admin";

/// Through what an admin acted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Via {
    /// The command line, on a machine that holds the database's credentials.
    Cli,
    /// The admin API, with a bearer token.
    Api,
    /// The admin pages, signed in.
    Page,
    /// The person themselves, through the product that owns the log-in (its service token).
    Service,
}

impl Via {
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Cli => "cli",
            Via::Api => "api",
            Via::Page => "page",
            Via::Service => "service",
        }
    }

    pub fn parse(text: &str) -> Option<Via> {
        [Via::Cli, Via::Api, Via::Page, Via::Service]
            .into_iter()
            .find(|v| v.as_str() == text)
    }
}

/// The admin behind an action by hand.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    /// The admin's name, single-line.
    pub name: String,
    pub via: Via,
}

impl Actor {
    /// An actor with its name made single-line (an admin's name may come from a command line
    /// or an identity provider); an empty name is `unknown`.
    pub fn new(name: &str, via: Via) -> Actor {
        let name = super::non_empty(name).unwrap_or_else(|| "unknown".to_string());
        Actor { name, via }
    }
}

/// What an admin did by hand.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AuditAction {
    /// A person added by hand: a new account and a membership no connector manages.
    PersonAdd,
    /// An existing account linked to the organisation by hand (a new membership).
    PersonLink,
    /// A field changed by hand (`subject` names it).
    FieldEdit,
    RoleGrant,
    RoleRevoke,
    TeamCreate,
    TeamMemberAdd,
    TeamMemberRemove,
    TeamCoachAdd,
    TeamCoachRemove,
    Suspend,
    LiftSuspension,
    /// A membership made by hand removed from the organisation.
    Remove,
    /// A new activation email sent by hand.
    InviteResend,
    /// A held run approved (`run_id` names it).
    RunApprove,
    /// A run started by hand (`run_id` names it).
    RunStart,
    /// Personal data exported (the account list, as CSV, Excel or JSON).
    Export,
}

impl AuditAction {
    pub const ALL: [AuditAction; 17] = [
        AuditAction::PersonAdd,
        AuditAction::PersonLink,
        AuditAction::FieldEdit,
        AuditAction::RoleGrant,
        AuditAction::RoleRevoke,
        AuditAction::TeamCreate,
        AuditAction::TeamMemberAdd,
        AuditAction::TeamMemberRemove,
        AuditAction::TeamCoachAdd,
        AuditAction::TeamCoachRemove,
        AuditAction::Suspend,
        AuditAction::LiftSuspension,
        AuditAction::Remove,
        AuditAction::InviteResend,
        AuditAction::RunApprove,
        AuditAction::RunStart,
        AuditAction::Export,
    ];

    /// The stable name kept in the trail and shown in its JSON and CSV.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::PersonAdd => "person_add",
            AuditAction::PersonLink => "person_link",
            AuditAction::FieldEdit => "field_edit",
            AuditAction::RoleGrant => "role_grant",
            AuditAction::RoleRevoke => "role_revoke",
            AuditAction::TeamCreate => "team_create",
            AuditAction::TeamMemberAdd => "team_member_add",
            AuditAction::TeamMemberRemove => "team_member_remove",
            AuditAction::TeamCoachAdd => "team_coach_add",
            AuditAction::TeamCoachRemove => "team_coach_remove",
            AuditAction::Suspend => "suspend",
            AuditAction::LiftSuspension => "lift_suspension",
            AuditAction::Remove => "remove",
            AuditAction::InviteResend => "invite_resend",
            AuditAction::RunApprove => "run_approve",
            AuditAction::RunStart => "run_start",
            AuditAction::Export => "export",
        }
    }

    pub fn parse(text: &str) -> Option<AuditAction> {
        AuditAction::ALL.into_iter().find(|a| a.as_str() == text)
    }

    /// A short English phrase for a history line: "granted role".
    pub fn phrase(self) -> &'static str {
        match self {
            AuditAction::PersonAdd => "added by hand",
            AuditAction::PersonLink => "linked to the organisation by hand",
            AuditAction::FieldEdit => "changed a field",
            AuditAction::RoleGrant => "granted a role",
            AuditAction::RoleRevoke => "revoked a role",
            AuditAction::TeamCreate => "created a team",
            AuditAction::TeamMemberAdd => "added to a team as member",
            AuditAction::TeamMemberRemove => "removed from a team as member",
            AuditAction::TeamCoachAdd => "made coach of a team",
            AuditAction::TeamCoachRemove => "removed as coach of a team",
            AuditAction::Suspend => "suspended",
            AuditAction::LiftSuspension => "suspension lifted",
            AuditAction::Remove => "removed from the organisation",
            AuditAction::InviteResend => "activation email resent",
            AuditAction::RunApprove => "approved a held run",
            AuditAction::RunStart => "started a run",
            AuditAction::Export => "exported accounts",
        }
    }
}

/// One entry of the audit trail, as read back.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditEvent {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub via: Via,
    pub action: AuditAction,
    /// The organisation's key, where the action was in one.
    pub organisation: Option<String>,
    pub account_id: Option<i64>,
    /// The person's address when it happened.
    pub email: Option<String>,
    pub run_id: Option<i64>,
    /// What the action names beside the person: a field, a role, a team's key.
    pub subject: Option<String>,
    pub old_value: Option<String>,
    pub new_value: Option<String>,
}

impl AuditEvent {
    /// The entry in words: "granted a role `admin`", "changed a field `job_title`: Nurse →
    /// Head nurse", "approved a held run (run 12)".
    pub fn describe(&self) -> String {
        let mut line = self.action.phrase().to_string();
        if let Some(subject) = &self.subject {
            line.push_str(&format!(" `{subject}`"));
        }
        if self.old_value.is_some() || self.new_value.is_some() {
            line.push_str(&format!(
                ": {} → {}",
                self.old_value.as_deref().unwrap_or("(empty)"),
                self.new_value.as_deref().unwrap_or("(empty)")
            ));
        }
        if let Some(run) = self.run_id {
            line.push_str(&format!(" (run {run})"));
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_reads_back_from_its_name() {
        for action in AuditAction::ALL {
            assert_eq!(AuditAction::parse(action.as_str()), Some(action));
        }
    }

    #[test]
    fn an_actors_name_is_one_line_and_never_empty() {
        assert_eq!(
            Actor::new("Anna\n de Vries", Via::Cli).name,
            "Anna de Vries"
        );
        assert_eq!(Actor::new(" \t", Via::Page).name, "unknown");
    }
}
