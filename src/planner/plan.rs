//! The plan: an ordered list of changes, each with its kind, subject, reason and the action the
//! applier takes for it, and whether the run must be held.

use std::fmt;
use std::sync::Arc;

use crate::domain::{AccountId, Email, EmployeeId, MembershipId, MembershipState, TeamId, TeamKey};

use super::policy::Field;

/// The kinds of change a plan lists. The last three are informational: they take no action and
/// may repeat from run to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChangeKind {
    Invite,
    Link,
    Update,
    EmailChange,
    Deactivate,
    Reactivate,
    TeamJoin,
    TeamLeave,
    CoachAssign,
    CoachUnassign,
    RoleGrant,
    RoleRevoke,
    Scheduled,
    Quarantine,
    Conflict,
}

impl ChangeKind {
    pub const ALL: [ChangeKind; 15] = [
        ChangeKind::Invite,
        ChangeKind::Link,
        ChangeKind::Update,
        ChangeKind::EmailChange,
        ChangeKind::Deactivate,
        ChangeKind::Reactivate,
        ChangeKind::TeamJoin,
        ChangeKind::TeamLeave,
        ChangeKind::CoachAssign,
        ChangeKind::CoachUnassign,
        ChangeKind::RoleGrant,
        ChangeKind::RoleRevoke,
        ChangeKind::Scheduled,
        ChangeKind::Quarantine,
        ChangeKind::Conflict,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Invite => "invite",
            ChangeKind::Link => "link",
            ChangeKind::Update => "update",
            ChangeKind::EmailChange => "email_change",
            ChangeKind::Deactivate => "deactivate",
            ChangeKind::Reactivate => "reactivate",
            ChangeKind::TeamJoin => "team_join",
            ChangeKind::TeamLeave => "team_leave",
            ChangeKind::CoachAssign => "coach_assign",
            ChangeKind::CoachUnassign => "coach_unassign",
            ChangeKind::RoleGrant => "role_grant",
            ChangeKind::RoleRevoke => "role_revoke",
            ChangeKind::Scheduled => "scheduled",
            ChangeKind::Quarantine => "quarantine",
            ChangeKind::Conflict => "conflict",
        }
    }

    pub fn parse(text: &str) -> Option<ChangeKind> {
        ChangeKind::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// `scheduled`, `quarantine` and `conflict` only inform; every other kind changes something.
    pub fn is_actionable(self) -> bool {
        !matches!(
            self,
            ChangeKind::Scheduled | ChangeKind::Quarantine | ChangeKind::Conflict
        )
    }
}

impl fmt::Display for ChangeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An account that exists, or one this plan creates (named by its email key until it has an id).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AccountRef {
    Existing(AccountId),
    New(String),
}

/// A team that exists, or one this plan creates from an HR key. A new team is shared by every
/// change that names it, not copied into each.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TeamRef {
    Existing(TeamId),
    New(Arc<NewTeam>),
}

/// A team this plan creates: its HR key and the name HR gives it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NewTeam {
    pub key: TeamKey,
    pub name: String,
}

/// The profile of an account this plan creates.
#[derive(Clone, Debug, PartialEq)]
pub struct NewAccount {
    pub email: Email,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub display_name: Option<String>,
}

/// The HR fields kept on a membership.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MembershipFields {
    pub employee_id: EmployeeId,
    pub job_title: Option<String>,
    pub location: Option<String>,
    pub employment_type: Option<String>,
}

/// The email a change queues, if any.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Notice {
    /// No email: invites are switched off, or the person already was a member by hand.
    None,
    /// An activation email with a single-use link.
    Activation,
    /// The person already has an active account and was added to this organisation.
    AddedToOrganisation,
}

/// A field value to write.
#[derive(Clone, Debug, PartialEq)]
pub enum Update {
    Account {
        account: AccountId,
        field: AccountField,
        value: Option<String>,
    },
    Membership {
        membership: MembershipId,
        field: MembershipField,
        value: Option<String>,
    },
    EmployeeId {
        membership: MembershipId,
        value: EmployeeId,
    },
    TeamName {
        team: TeamId,
        name: String,
    },
}

/// The account fields HR updates: the profile, shared by every organisation of the person.
/// Its own type (not the whole [`Field`]), so an update the applier cannot write does not
/// compile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccountField {
    FirstName,
    LastName,
    DisplayName,
}

impl AccountField {
    /// The field, for its owner and its name in reports.
    pub fn field(self) -> Field {
        match self {
            AccountField::FirstName => Field::FirstName,
            AccountField::LastName => Field::LastName,
            AccountField::DisplayName => Field::DisplayName,
        }
    }
}

/// The membership fields HR updates, kept per organisation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MembershipField {
    JobTitle,
    Location,
    EmploymentType,
}

impl MembershipField {
    /// The field, for its owner and its name in reports.
    pub fn field(self) -> Field {
        match self {
            MembershipField::JobTitle => Field::JobTitle,
            MembershipField::Location => Field::Location,
            MembershipField::EmploymentType => Field::EmploymentType,
        }
    }
}

/// What the applier does for a change.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Informational: nothing to do, and why.
    Note(Note),
    /// Create an account and an invited membership. (The larger payloads are boxed, here and
    /// below, so that every change of a large plan is not as big as its largest kind.)
    Invite {
        account: Box<NewAccount>,
        membership: Box<MembershipFields>,
        notice: Notice,
    },
    /// Add an existing account to the organisation, or take over a membership made by hand.
    Link {
        account: AccountId,
        existing: Option<MembershipId>,
        membership: Box<MembershipFields>,
        state: MembershipState,
        notice: Notice,
    },
    Update(Update),
    EmailChange {
        account: AccountId,
        old: Box<Email>,
        new: Box<Email>,
        /// The account is not activated yet: revoke the old link and send a new one to `new`.
        resend_activation: bool,
    },
    Deactivate {
        membership: MembershipId,
        account: AccountId,
    },
    /// Reopen a deactivated membership, under the employee id HR now gives.
    Reactivate {
        membership: MembershipId,
        account: AccountId,
        employee_id: EmployeeId,
        state: MembershipState,
        notice: Notice,
    },
    TeamJoin {
        account: AccountRef,
        team: TeamRef,
    },
    TeamLeave {
        account: AccountId,
        team: TeamId,
    },
    CoachAssign {
        account: AccountRef,
        team: TeamRef,
    },
    CoachUnassign {
        account: AccountId,
        team: TeamId,
    },
    RoleGrant {
        account: AccountRef,
        role: String,
    },
    RoleRevoke {
        account: AccountId,
        role: String,
    },
}

/// One line of a plan: what changes for whom, why, and how it is applied. Its kind is its
/// action's ([`Change::kind`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    pub employee_id: Option<EmployeeId>,
    pub email: Option<String>,
    pub field: Option<String>,
    pub old: Option<String>,
    pub new: Option<String>,
    pub reason: String,
    pub action: Action,
}

/// An informational line: a change the plan reports but does not make.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Note {
    /// A future starter, invited later.
    Scheduled,
    /// A record nothing is applied for, with why.
    Quarantine,
    /// A change HR asks for that would clash with another account or connector.
    Conflict,
}

impl Change {
    /// The kind of change: its action's.
    pub fn kind(&self) -> ChangeKind {
        self.action.kind()
    }
}

impl Action {
    /// The kind of change this action is: one match, so a change's kind and its action can
    /// never disagree.
    pub fn kind(&self) -> ChangeKind {
        match self {
            Action::Note(Note::Scheduled) => ChangeKind::Scheduled,
            Action::Note(Note::Quarantine) => ChangeKind::Quarantine,
            Action::Note(Note::Conflict) => ChangeKind::Conflict,
            Action::Invite { .. } => ChangeKind::Invite,
            Action::Link { .. } => ChangeKind::Link,
            Action::Update(_) => ChangeKind::Update,
            Action::EmailChange { .. } => ChangeKind::EmailChange,
            Action::Deactivate { .. } => ChangeKind::Deactivate,
            Action::Reactivate { .. } => ChangeKind::Reactivate,
            Action::TeamJoin { .. } => ChangeKind::TeamJoin,
            Action::TeamLeave { .. } => ChangeKind::TeamLeave,
            Action::CoachAssign { .. } => ChangeKind::CoachAssign,
            Action::CoachUnassign { .. } => ChangeKind::CoachUnassign,
            Action::RoleGrant { .. } => ChangeKind::RoleGrant,
            Action::RoleRevoke { .. } => ChangeKind::RoleRevoke,
        }
    }
}

/// Why a run is held instead of applied, with the stable code stored in its report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hold {
    pub code: crate::domain::Code,
    pub message: String,
}

/// How many changes a block of [`Changes`] holds.
pub(super) const BLOCK: usize = 4096;

/// A plan's changes, in order, kept in blocks of a fixed size: a plan grows block by block,
/// where a vector would copy itself into one twice its size each time it filled (at 100,000
/// people, a first sync's 300,000 changes made that copy 50 MB at the run's peak).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Changes {
    blocks: Vec<Vec<Change>>,
    len: usize,
}

impl Changes {
    pub fn new() -> Changes {
        Changes::default()
    }

    pub fn push(&mut self, change: Change) {
        match self.blocks.last_mut() {
            Some(block) if block.len() < BLOCK => block.push(change),
            _ => {
                let mut block = Vec::with_capacity(BLOCK);
                block.push(change);
                self.blocks.push(block);
            }
        }
        self.len += 1;
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The `n`th change, counted from 0.
    pub fn get(&self, n: usize) -> Option<&Change> {
        self.blocks.get(n / BLOCK)?.get(n % BLOCK)
    }

    pub fn iter(&self) -> std::iter::Flatten<std::slice::Iter<'_, Vec<Change>>> {
        self.blocks.iter().flatten()
    }

    pub fn iter_mut(&mut self) -> std::iter::Flatten<std::slice::IterMut<'_, Vec<Change>>> {
        self.blocks.iter_mut().flatten()
    }

    /// The changes as consecutive slices, in order.
    pub fn blocks(&self) -> impl Iterator<Item = &[Change]> {
        self.blocks.iter().map(Vec::as_slice)
    }
}

impl<'a> IntoIterator for &'a Changes {
    type Item = &'a Change;
    type IntoIter = std::iter::Flatten<std::slice::Iter<'a, Vec<Change>>>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<'a> IntoIterator for &'a mut Changes {
    type Item = &'a mut Change;
    type IntoIter = std::iter::Flatten<std::slice::IterMut<'a, Vec<Change>>>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter_mut()
    }
}

impl FromIterator<Change> for Changes {
    fn from_iter<I: IntoIterator<Item = Change>>(changes: I) -> Changes {
        let mut all = Changes::new();
        for change in changes {
            all.push(change);
        }
        all
    }
}

/// The planner's answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub changes: Changes,
    /// Every reason the run is held, in the order found; empty when it may be applied.
    pub holds: Vec<Hold>,
    /// The connector's memberships that are not deactivated, before this plan.
    pub managed_memberships: usize,
}

impl Plan {
    /// The first reason the run is held, if it is.
    pub fn hold(&self) -> Option<&Hold> {
        self.holds.first()
    }

    /// Whether anything holds the run.
    pub fn is_held(&self) -> bool {
        !self.holds.is_empty()
    }

    /// How many records the plan quarantines: the planner writes one quarantine line per
    /// record (two records with one employee id are two lines).
    pub fn quarantined_records(&self) -> usize {
        self.count(ChangeKind::Quarantine)
    }

    pub fn count(&self, kind: ChangeKind) -> usize {
        self.changes.iter().filter(|c| c.kind() == kind).count()
    }

    pub fn actionable(&self) -> impl Iterator<Item = &Change> {
        self.changes.iter().filter(|c| c.kind().is_actionable())
    }
}
