//! The planner: HR records, a directory snapshot, a policy and an instant in; a plan out.
//!
//! It is pure: no I/O, no clock, no randomness, and the same inputs always give the same plan
//! in the same order. Every domain rule of the product lives here, in named steps:
//!
//! 1. **classify** each record as present, scheduled or leaver, by dates first (in the
//!    organisation's time zone), then by the connector's status map;
//! 2. **dedupe** the feed: where an employee id or email appears more than once, keep the one
//!    record that is not a leaver, else quarantine them all;
//! 3. **correlate** records with accounts: the connector's employee id first, then email;
//! 4. **resolve emails**: decide which email changes and new accounts can take their address,
//!    allowing for addresses that other people in the same feed give up;
//! 5. **per person**: quarantine, conflict, invite, link, reactivate, email change, updates;
//! 6. **teams and coaches** from departments and managers, then **roles** from the rules;
//! 7. **deactivations** of leavers, and in a full feed of managed people no longer in it;
//! 8. **safety**: hold an empty feed, or more deactivations than the thresholds allow.

// The steps keep one entry per record in parallel vectors (`lives`, `excluded`, `matched`,
// `team_of`, …), each built from `records` and indexed only by positions taken from
// `0..records.len()`. Indexing is the clearest way to say that; the property tests walk it.
#![allow(
    clippy::indexing_slicing,
    reason = "parallel per-record vectors, indexed by record position"
)]

pub mod health;
mod identify;
pub mod locks;
mod person;
mod plan;
mod policy;
mod teams;

use foldhash::{HashMap, HashSet, HashSetExt as _};

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};

pub use plan::{
    AccountField, AccountRef, Action, Change, ChangeKind, Changes, Hold, MembershipField,
    MembershipFields, NewAccount, NewTeam, Note, Notice, Plan, TeamRef, Update,
};
pub use policy::{
    FeedKind, Field, Ownership, Policy, Requirement, RoleRule, StatusMap, StatusMeaning,
    TeamSource, Thresholds, pattern_matches,
};

use crate::domain::{Account, AccountId, Code, Directory, Email, EmployeeId, HrRecord, Membership};

/// Plans the changes that bring the directory in line with the records.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use hrsync::domain::{Directory, Email, EmployeeId, HrRecord};
/// use hrsync::planner::{ChangeKind, Policy, plan};
///
/// let policy = Policy::new("hr".parse().unwrap(), chrono_tz::Europe::Amsterdam);
/// let anna = HrRecord::new(
///     EmployeeId::parse("E1").unwrap(),
///     Email::parse("anna@example.org"),
/// );
/// let now = Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap();
///
/// let plan = plan(&[anna], &Directory::default(), &policy, now);
///
/// assert_eq!(plan.count(ChangeKind::Invite), 1);
/// assert!(plan.hold().is_none());
/// ```
pub fn plan(
    records: &[HrRecord],
    directory: &Directory,
    policy: &Policy,
    as_of: DateTime<Utc>,
) -> Plan {
    Planner::new(records, directory, policy, as_of).run()
}

/// Where a record stands on the as-of date.
#[derive(Clone, Debug, PartialEq)]
enum Life {
    /// Works here now, or starts within the invite window.
    Present,
    /// Starts later; not invited before `invite_on`.
    Scheduled {
        start: NaiveDate,
        invite_on: NaiveDate,
    },
    Leaver {
        reason: String,
    },
    /// The status map does not know the record's status.
    UnknownStatus(String),
}

/// Why a record takes no part in the run.
#[derive(Clone, Debug)]
enum Excluded {
    /// A leaver record beside the one live record with the same id or email.
    Ignored,
    Quarantined(String),
}

/// The account a record was matched to.
#[derive(Clone, Copy, Debug)]
enum Matched<'a> {
    /// By the connector's employee id.
    EmployeeId(&'a Membership, &'a Account),
    /// By email, with the account's membership of the organisation if it has one.
    Email(&'a Account, Option<&'a Membership>),
    None,
}

impl<'a> Matched<'a> {
    fn account(&self) -> Option<&'a Account> {
        match *self {
            Matched::EmployeeId(_, a) | Matched::Email(a, _) => Some(a),
            Matched::None => None,
        }
    }
}

/// What planning decided for one present person, for the team, coach and role steps.
struct Synced<'a> {
    record: &'a HrRecord,
    account: AccountRef,
    /// The current account, if the person has one.
    existing: Option<&'a Account>,
    /// Whether HR may still set the fields the person owns after activation.
    activated: bool,
    /// Whether the account or membership is created by this plan (ownership does not apply).
    creating: bool,
}

struct Planner<'a> {
    records: &'a [HrRecord],
    directory: &'a Directory,
    policy: &'a Policy,
    today: NaiveDate,
    /// Whether the as-of instant is the last second of `today`: the end of the day.
    end_of_today: bool,
    accounts_by_id: HashMap<AccountId, &'a Account>,
    accounts_by_email: HashMap<&'a str, &'a Account>,
    membership_by_account: HashMap<AccountId, &'a Membership>,
    managed_by_employee_id: HashMap<&'a EmployeeId, &'a Membership>,
    changes: Changes,
}

impl<'a> Planner<'a> {
    fn new(
        records: &'a [HrRecord],
        directory: &'a Directory,
        policy: &'a Policy,
        as_of: DateTime<Utc>,
    ) -> Planner<'a> {
        let connector = Some(&policy.connector);
        Planner {
            records,
            directory,
            policy,
            today: as_of.with_timezone(&policy.time_zone).date_naive(),
            end_of_today: as_of.with_timezone(&policy.time_zone).time()
                >= NaiveTime::from_hms_opt(23, 59, 59).unwrap_or_default(),
            accounts_by_id: directory.accounts.iter().map(|a| (a.id, a)).collect(),
            accounts_by_email: directory
                .accounts
                .iter()
                .map(|a| (a.email.key(), a))
                .collect(),
            membership_by_account: directory
                .memberships
                .iter()
                .map(|m| (m.account_id, m))
                .collect(),
            managed_by_employee_id: directory
                .memberships
                .iter()
                .filter(|m| m.connector.as_ref() == connector)
                .filter_map(|m| m.employee_id.as_ref().map(|id| (id, m)))
                .collect(),
            changes: Changes::new(),
        }
    }

    fn run(mut self) -> Plan {
        let managed = self
            .directory
            .memberships
            .iter()
            .filter(|m| m.connector.as_ref() == Some(&self.policy.connector) && m.state.is_live())
            .count();

        // Records are handled in employee id order so that the plan does not depend on the
        // order of the feed.
        // Records that share an employee id are ordered by their email and, failing that,
        // by all their fields, so duplicates too come out the same whatever the feed order.
        let mut order: Vec<usize> = (0..self.records.len()).collect();
        order.sort_by(|&a, &b| {
            let (ra, rb) = (&self.records[a], &self.records[b]);
            ra.employee_id
                .cmp(&rb.employee_id)
                .then_with(|| email_text(ra).cmp(email_text(rb)))
                .then_with(|| format!("{ra:?}").cmp(&format!("{rb:?}")))
        });

        let lives: Vec<Life> = self.records.iter().map(|r| self.classify(r)).collect();
        let excluded = self.dedupe(&order, &lives);
        let matched = self.correlate(&order, &lives, &excluded);
        let email_ok = self.resolve_emails(&order, &lives, &excluded, &matched);

        let mut synced: Vec<Synced<'a>> = Vec::new();
        let mut touched: HashSet<AccountId> = HashSet::new();
        // The feed's emails that speak for the account holding them, so that it is not
        // absent: not those of a record matched (by employee id) to another account, of an
        // ignored duplicate, or of a leaver matched to nobody (an old, ended record beside a
        // rehire). A record that is gone, or carries an address that now belongs to someone
        // else, does not keep that someone in the feed.
        let speaking: HashSet<&str> = order
            .iter()
            .filter(|&&i| !matches!(excluded[i], Some(Excluded::Ignored)))
            .filter(|&&i| {
                !(matches!(lives[i], Life::Leaver { .. }) && matches!(matched[i], Matched::None))
            })
            .filter_map(|&i| {
                let email = self.records[i].email.as_ref().ok()?;
                match matched[i].account() {
                    Some(account) if account.email.key() != email.key() => None,
                    _ => Some(email.key()),
                }
            })
            .collect();
        let mut deactivations = 0usize;
        for &i in &order {
            let record = &self.records[i];
            if let Some(account) = matched[i].account() {
                touched.insert(account.id);
            }
            match &excluded[i] {
                Some(Excluded::Ignored) => continue,
                Some(Excluded::Quarantined(reason)) => {
                    self.quarantine(record, reason.clone());
                    continue;
                }
                None => {}
            }
            match &lives[i] {
                Life::Present => {
                    if let Some(s) = self.person(record, matched[i], email_ok[i]) {
                        synced.push(s);
                    }
                }
                Life::Scheduled { start, invite_on } => self.push(record,
                    None,
                    None,
                    None,
                    format!("starts on {start}; invited from {invite_on}"),
                    Action::Note(Note::Scheduled),
                ),
                Life::Leaver { reason } => {
                    if self.leaver(record, matched[i], reason) {
                        deactivations += 1;
                    }
                }
                Life::UnknownStatus(status) => self.quarantine(
                    record,
                    format!(
                        "HR status `{status}` is not in the connector's status map; add it to status_map.active or status_map.inactive"
                    ),
                ),
            }
        }

        self.teams_and_coaches(&synced);
        self.roles(&synced);
        if self.policy.feed == FeedKind::Full {
            deactivations += self.absent(&touched, &speaking);
        }

        let hold = if self.records.is_empty() {
            Some(Hold {
                code: Code::EmptyFeed,
                message: "the HR feed is empty; an empty feed is always held".to_string(),
            })
        } else {
            self.policy
                .thresholds
                .exceeded(deactivations, managed)
                .map(|message| Hold {
                    code: Code::MassDeactivation,
                    message,
                })
        };
        Plan {
            changes: self.changes,
            holds: hold.into_iter().collect(),
            managed_memberships: managed,
        }
    }

    fn quarantine(&mut self, record: &HrRecord, reason: String) {
        self.push(
            record,
            None,
            None,
            None,
            format!("{reason}; nothing is applied for this person"),
            Action::Note(Note::Quarantine),
        );
    }

    fn conflict_taken(&mut self, record: &HrRecord, email: &Email) {
        self.push(
            record,
            Some(Field::Email.as_str()),
            None,
            Some(email.to_string()),
            format!(
                "`{email}` already belongs to another account; nothing changes for this person"
            ),
            Action::Note(Note::Conflict),
        );
    }

    /// Adds a change for a record: its employee id and its email as given (valid or not).
    fn push(
        &mut self,
        record: &HrRecord,
        field: Option<&str>,
        old: Option<String>,
        new: Option<String>,
        reason: String,
        action: Action,
    ) {
        let email = match &record.email {
            Ok(e) => Some(e.to_string()),
            Err(crate::domain::EmailError::Invalid(raw)) => Some(raw.clone()),
            Err(crate::domain::EmailError::Missing) => None,
        };
        self.changes.push(Change {
            employee_id: Some(record.employee_id.clone()),
            email,
            field: field.map(str::to_string),
            old,
            new,
            reason,
            action,
        });
    }
}

/// A record's email as given, valid or not, for ordering.
fn email_text(record: &HrRecord) -> &str {
    match &record.email {
        Ok(email) => email.as_str(),
        Err(crate::domain::EmailError::Invalid(raw)) => raw,
        Err(crate::domain::EmailError::Missing) => "",
    }
}

fn update_reason(field: Field, owner: Ownership) -> String {
    match owner {
        Ownership::UserAfterActivation => format!(
            "`{}` differs from HR; HR fills it until the person activates the account",
            field.as_str()
        ),
        _ => format!(
            "`{}` differs from HR; the HR system owns this field, a local edit is overwritten",
            field.as_str()
        ),
    }
}

#[cfg(test)]
mod tests;
