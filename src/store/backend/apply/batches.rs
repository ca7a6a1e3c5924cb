//! A plan sorted into typed batches, one per phase of the applier.
//!
//! [`Batches::sort`] walks the plan once, with one `match` over `Action` that names every
//! variant: a new variant does not compile until it is given a batch here, so no action can be
//! planned and silently left unapplied. Each batch keeps the plan's order where the order shows
//! (ids of new rows, the order mails are queued in), and groups by column or state where one
//! statement writes a group.

use std::collections::{BTreeMap, HashMap};

use crate::domain::{Email, MembershipState, TeamKey};
use crate::planner::{
    AccountField, AccountRef, Action, MembershipField, MembershipFields, NewAccount, Notice, Plan,
    TeamRef, Update,
};
use crate::store::Result;

use super::super::common::corrupt;

/// Values for one column of many rows: `(row id, value)`.
pub(super) type Column<'p> = Vec<(i64, Option<&'p str>)>;

/// An account a batch names: one that exists, or one this run creates, by its email key until
/// it has an id.
#[derive(Clone, Copy)]
pub(super) enum Who<'p> {
    Existing(i64),
    New(&'p str),
}

impl<'p> From<&'p AccountRef> for Who<'p> {
    fn from(r: &'p AccountRef) -> Who<'p> {
        match r {
            AccountRef::Existing(id) => Who::Existing(id.0),
            AccountRef::New(key) => Who::New(key),
        }
    }
}

/// The plan, sorted by phase.
#[derive(Default)]
pub(super) struct Batches<'p> {
    pub(super) accounts: Accounts<'p>,
    pub(super) memberships: Memberships<'p>,
    pub(super) teams: Teams<'p>,
    pub(super) roles: Roles<'p>,
    pub(super) deactivations: Deactivations,
}

/// Phase 1: email changes, field updates and new accounts.
#[derive(Default)]
pub(super) struct Accounts<'p> {
    pub(super) email_changes: Vec<EmailChange<'p>>,
    /// Updates by column.
    pub(super) fields: BTreeMap<&'static str, Column<'p>>,
    /// New accounts, in plan order.
    pub(super) new: Vec<&'p NewAccount>,
}

pub(super) struct EmailChange<'p> {
    pub(super) account: i64,
    pub(super) old: &'p Email,
    pub(super) new: &'p Email,
    /// The account is not activated yet: a new activation goes to the new address.
    pub(super) resend_activation: bool,
}

/// Phase 2: take-overs, reactivations, field updates and new memberships, and the notices of
/// invites, links and reactivations.
#[derive(Default)]
pub(super) struct Memberships<'p> {
    /// Memberships made by hand that the connector takes over, in plan order.
    pub(super) take_overs: Vec<TakeOver<'p>>,
    /// Reactivated memberships by the state they reopen in.
    pub(super) reactivations: BTreeMap<&'static str, Vec<i64>>,
    /// Updates by column; a reactivation's employee id is among them.
    pub(super) fields: BTreeMap<&'static str, Column<'p>>,
    /// New memberships, of invited and of linked accounts, in plan order.
    pub(super) new: Vec<NewMembership<'p>>,
    /// The email each invite, link and reactivation asks for, in plan order.
    pub(super) notices: Vec<(Who<'p>, Notice)>,
}

pub(super) struct TakeOver<'p> {
    pub(super) membership: i64,
    pub(super) employee_id: &'p str,
    pub(super) state: MembershipState,
}

pub(super) struct NewMembership<'p> {
    pub(super) account: Who<'p>,
    pub(super) state: MembershipState,
    pub(super) fields: &'p MembershipFields,
}

/// Phase 3: new teams, renames, and team and coach links (`(team, account)` pairs).
#[derive(Default)]
pub(super) struct Teams<'p> {
    /// New teams by key; the first name the plan gives a key is the team's name.
    pub(super) new: BTreeMap<&'p TeamKey, &'p str>,
    pub(super) renames: Column<'p>,
    pub(super) leaves: Vec<(i64, i64)>,
    pub(super) coach_unassigns: Vec<(i64, i64)>,
    pub(super) joins: Vec<(&'p TeamRef, Who<'p>)>,
    pub(super) coach_assigns: Vec<(&'p TeamRef, Who<'p>)>,
}

/// Phase 4: role revokes and grants, by role name.
#[derive(Default)]
pub(super) struct Roles<'p> {
    pub(super) revokes: Vec<(&'p str, i64)>,
    pub(super) grants: Vec<(&'p str, Who<'p>)>,
}

/// Phase 5: memberships to close, and their accounts, whose pending links stop working.
#[derive(Default)]
pub(super) struct Deactivations {
    pub(super) memberships: Vec<i64>,
    pub(super) accounts: Vec<i64>,
}

impl<'p> Batches<'p> {
    pub(super) fn sort(plan: &'p Plan) -> Result<Batches<'p>> {
        let mut b = Batches::default();
        for change in &plan.changes {
            // Every variant is named and there is no `_` arm: a new `Action` variant must be
            // given a batch here (and a phase that writes it) before the store compiles.
            match &change.action {
                Action::Note(_) => {}
                Action::Invite {
                    account,
                    membership,
                    notice,
                } => {
                    let who = Who::New(account.email.key());
                    b.accounts.new.push(account);
                    b.memberships.new.push(NewMembership {
                        account: who,
                        state: MembershipState::Invited,
                        fields: membership,
                    });
                    b.memberships.notices.push((who, *notice));
                }
                Action::Link {
                    account,
                    existing,
                    membership,
                    state,
                    notice,
                } => {
                    let who = Who::Existing(account.0);
                    match existing {
                        None => b.memberships.new.push(NewMembership {
                            account: who,
                            state: *state,
                            fields: membership,
                        }),
                        Some(m) => b.memberships.take_overs.push(TakeOver {
                            membership: m.0,
                            employee_id: membership.employee_id.as_str(),
                            state: *state,
                        }),
                    }
                    b.memberships.notices.push((who, *notice));
                }
                Action::Update(update) => b.sort_update(update)?,
                Action::EmailChange {
                    account,
                    old,
                    new,
                    resend_activation,
                } => b.accounts.email_changes.push(EmailChange {
                    account: account.0,
                    old,
                    new,
                    resend_activation: *resend_activation,
                }),
                Action::Deactivate {
                    membership,
                    account,
                } => {
                    b.deactivations.memberships.push(membership.0);
                    b.deactivations.accounts.push(account.0);
                }
                Action::Reactivate {
                    membership,
                    account,
                    employee_id,
                    state,
                    notice,
                } => {
                    let m = &mut b.memberships;
                    m.reactivations
                        .entry(state.as_str())
                        .or_default()
                        .push(membership.0);
                    m.fields
                        .entry("employee_id")
                        .or_default()
                        .push((membership.0, Some(employee_id.as_str())));
                    m.notices.push((Who::Existing(account.0), *notice));
                }
                Action::TeamJoin { account, team } => {
                    b.teams.note_new(team);
                    b.teams.joins.push((team, Who::from(account)));
                }
                Action::TeamLeave { account, team } => b.teams.leaves.push((team.0, account.0)),
                Action::CoachAssign { account, team } => {
                    b.teams.note_new(team);
                    b.teams.coach_assigns.push((team, Who::from(account)));
                }
                Action::CoachUnassign { account, team } => {
                    b.teams.coach_unassigns.push((team.0, account.0))
                }
                Action::RoleGrant { account, role } => {
                    b.roles.grants.push((role.as_str(), Who::from(account)))
                }
                Action::RoleRevoke { account, role } => {
                    b.roles.revokes.push((role.as_str(), account.0))
                }
            }
        }
        Ok(b)
    }

    fn sort_update(&mut self, update: &'p Update) -> Result<()> {
        match update {
            Update::Account {
                account,
                field,
                value,
            } => self
                .accounts
                .fields
                .entry(account_column(*field))
                .or_default()
                .push((account.0, value.as_deref())),
            Update::Membership {
                membership,
                field,
                value,
            } => self
                .memberships
                .fields
                .entry(membership_column(*field))
                .or_default()
                .push((membership.0, value.as_deref())),
            Update::EmployeeId { membership, value } => self
                .memberships
                .fields
                .entry("employee_id")
                .or_default()
                .push((membership.0, Some(value.as_str()))),
            Update::TeamName { team, name } => {
                self.teams.renames.push((team.0, Some(name.as_str())))
            }
        }
        Ok(())
    }
}

impl<'p> Teams<'p> {
    fn note_new(&mut self, team: &'p TeamRef) {
        match team {
            TeamRef::Existing(_) => {}
            TeamRef::New(team) => {
                self.new.entry(&team.key).or_insert(&team.name);
            }
        }
    }
}

/// The `accounts` column of an account field; every field has one, so a new field does not
/// compile until it is given its column here.
fn account_column(field: AccountField) -> &'static str {
    match field {
        AccountField::FirstName => "first_name",
        AccountField::LastName => "last_name",
        AccountField::DisplayName => "display_name",
    }
}

/// The `memberships` column of a membership field, likewise.
fn membership_column(field: MembershipField) -> &'static str {
    match field {
        MembershipField::JobTitle => "job_title",
        MembershipField::Location => "location",
        MembershipField::EmploymentType => "employment_type",
    }
}

/// The ids of the accounts and teams this run creates, filled in as the phases create them.
#[derive(Default)]
pub(super) struct Ids<'p> {
    /// New accounts by email key (the plan's own text).
    pub(super) new_accounts: HashMap<&'p str, i64>,
    pub(super) new_teams: HashMap<TeamKey, i64>,
}

impl Ids<'_> {
    pub(super) fn account(&self, who: Who<'_>) -> Result<i64> {
        match who {
            Who::Existing(id) => Ok(id),
            Who::New(key) => self.new_accounts.get(key).copied().ok_or_else(|| {
                corrupt(format!(
                    "the plan refers to an account `{key}` it did not create"
                ))
            }),
        }
    }

    pub(super) fn team(&self, r: &TeamRef) -> Result<i64> {
        match r {
            TeamRef::Existing(id) => Ok(id.0),
            TeamRef::New(team) => self.new_teams.get(&team.key).copied().ok_or_else(|| {
                corrupt(format!(
                    "the plan refers to a team `{}` it did not create",
                    team.key
                ))
            }),
        }
    }
}
