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

pub mod health;
mod plan;
mod policy;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Days, NaiveDate, NaiveTime, Utc};

pub use plan::{
    AccountRef, Action, Change, ChangeKind, Hold, MembershipFields, NewAccount, Notice, Plan,
    TeamRef, Update,
};
pub use policy::{
    FeedKind, Field, Ownership, Policy, Requirement, RoleRule, StatusMap, StatusMeaning,
    TeamSource, Thresholds, pattern_matches,
};

use crate::domain::{
    Account, AccountId, Directory, Email, EmployeeId, HrRecord, Membership, MembershipState, Team,
    TeamId, TeamKey,
};

/// Stable code of a run held because the feed was empty.
pub const HOLD_EMPTY_FEED: &str = "HR101";
/// Stable code of a run held because it would deactivate too many people.
pub const HOLD_MASS_DEACTIVATION: &str = "HR201";

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
    changes: Vec<Change>,
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
            changes: Vec::new(),
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
                Life::Scheduled { start, invite_on } => self.push(
                    ChangeKind::Scheduled,
                    record,
                    None,
                    None,
                    None,
                    format!("starts on {start}; invited from {invite_on}"),
                    Action::None,
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
                code: HOLD_EMPTY_FEED,
                message: "the HR feed is empty; an empty feed is always held".to_string(),
            })
        } else {
            self.policy
                .thresholds
                .exceeded(deactivations, managed)
                .map(|message| Hold {
                    code: HOLD_MASS_DEACTIVATION,
                    message,
                })
        };
        Plan {
            changes: self.changes,
            holds: hold.into_iter().collect(),
            managed_memberships: managed,
        }
    }

    // Step 1: dates decide before statuses.
    fn classify(&self, record: &HrRecord) -> Life {
        if let Some(start) = record.start_date
            && start > self.today
        {
            let invite_on = start
                .checked_sub_days(Days::new(self.policy.invite_days_before_start.into()))
                .unwrap_or(start);
            if invite_on > self.today {
                return Life::Scheduled { start, invite_on };
            }
            return Life::Present;
        }
        if let Some(end) = record.end_date
            && (end < self.today || (end == self.today && self.end_of_today))
        {
            // The last working day counts in full: a leaver is deactivated once it has ended.
            return Life::Leaver {
                reason: format!("the last working day, {end}, has ended"),
            };
        }
        match self.policy.status_map.meaning(record.status.as_deref()) {
            StatusMeaning::Active => Life::Present,
            StatusMeaning::Inactive => Life::Leaver {
                reason: format!(
                    "HR status `{}` means inactive",
                    record.status.as_deref().unwrap_or_default()
                ),
            },
            StatusMeaning::Unknown => {
                Life::UnknownStatus(record.status.clone().unwrap_or_default())
            }
        }
    }

    // Step 2: an employee id or email that appears more than once.
    fn dedupe(&self, order: &[usize], lives: &[Life]) -> Vec<Option<Excluded>> {
        // Records that share an employee id or an email belong together, also through a third
        // record (A and B share an id, B and C an email): a union-find over both keys.
        let mut parent: Vec<usize> = (0..self.records.len()).collect();
        fn root(parent: &mut [usize], mut i: usize) -> usize {
            while parent[i] != i {
                parent[i] = parent[parent[i]];
                i = parent[i];
            }
            i
        }
        let mut by_id: HashMap<&EmployeeId, usize> = HashMap::new();
        let mut by_email: HashMap<&str, usize> = HashMap::new();
        for &i in order {
            let record = &self.records[i];
            let mut join = |j: usize| {
                let (a, b) = (root(&mut parent, i), root(&mut parent, j));
                parent[a.max(b)] = a.min(b);
            };
            match by_id.get(&record.employee_id) {
                Some(&j) => join(j),
                None => {
                    by_id.insert(&record.employee_id, i);
                }
            }
            if let Ok(email) = &record.email {
                match by_email.get(email.key()) {
                    Some(&j) => join(j),
                    None => {
                        by_email.insert(email.key(), i);
                    }
                }
            }
        }
        let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for &i in order {
            groups.entry(root(&mut parent, i)).or_default().push(i);
        }
        let groups: Vec<(String, Vec<usize>)> = groups
            .into_values()
            .filter(|g| g.len() > 1)
            .map(|g| (self.shared_keys(&g), g))
            .collect();
        let mut excluded: Vec<Option<Excluded>> = vec![None; self.records.len()];
        Self::settle_duplicates(groups, lives, &mut excluded);
        excluded
    }

    /// The employee ids and emails that a group of records shares, for the report.
    fn shared_keys(&self, group: &[usize]) -> String {
        let mut ids: BTreeMap<&str, usize> = BTreeMap::new();
        let mut emails: BTreeMap<&str, usize> = BTreeMap::new();
        for &i in group {
            *ids.entry(self.records[i].employee_id.as_str()).or_default() += 1;
            if let Ok(email) = &self.records[i].email {
                *emails.entry(email.key()).or_default() += 1;
            }
        }
        let shared = ids
            .into_iter()
            .filter(|(_, n)| *n > 1)
            .map(|(id, _)| format!("employee id `{id}`"))
            .chain(
                emails
                    .into_iter()
                    .filter(|(_, n)| *n > 1)
                    .map(|(e, _)| format!("email `{e}`")),
            )
            .collect::<Vec<_>>();
        format!("{} records share {}", group.len(), shared.join(" and "))
    }

    fn settle_duplicates(
        groups: Vec<(String, Vec<usize>)>,
        lives: &[Life],
        excluded: &mut [Option<Excluded>],
    ) {
        for (what, group) in groups {
            let live: Vec<usize> = group
                .iter()
                .copied()
                .filter(|&i| !matches!(lives[i], Life::Leaver { .. }))
                .collect();
            if live.len() == 1 {
                for &i in &group {
                    if i != live[0] {
                        excluded[i] = Some(Excluded::Ignored);
                    }
                }
            } else {
                let reason = format!("{what} in the feed, and not exactly one of them is current");
                for &i in &group {
                    excluded[i] = Some(Excluded::Quarantined(reason.clone()));
                }
            }
        }
    }

    // Step 3: the connector's employee id first, then email. An account is matched by at most
    // one record: employee id matches claim their accounts before any email match is tried.
    fn correlate(
        &self,
        order: &[usize],
        lives: &[Life],
        excluded: &[Option<Excluded>],
    ) -> Vec<Matched<'a>> {
        let mut matched = vec![Matched::None; self.records.len()];
        let mut claimed: HashMap<AccountId, usize> = HashMap::new();
        let in_feed_ids: HashSet<&EmployeeId> =
            self.records.iter().map(|r| &r.employee_id).collect();
        // Nothing is applied for a quarantined person, so no other record may take their
        // account by email either (an old record that carries their address, say).
        let quarantined: HashSet<AccountId> = order
            .iter()
            .filter(|&&i| matches!(excluded[i], Some(Excluded::Quarantined(_))))
            .flat_map(|&i| {
                let record = &self.records[i];
                let by_id = self
                    .managed_by_employee_id
                    .get(&record.employee_id)
                    .map(|m| m.account_id);
                let by_email = record
                    .email
                    .as_ref()
                    .ok()
                    .and_then(|e| self.accounts_by_email.get(e.key()))
                    .map(|a| a.id);
                by_id.into_iter().chain(by_email)
            })
            .collect();
        for &i in order {
            if excluded[i].is_some() {
                continue;
            }
            if let Some(m) = self
                .managed_by_employee_id
                .get(&self.records[i].employee_id)
                && let Some(account) = self.accounts_by_id.get(&m.account_id)
            {
                matched[i] = Matched::EmployeeId(m, account);
                claimed.insert(account.id, i);
            }
        }
        for &i in order {
            if excluded[i].is_some() || !matches!(matched[i], Matched::None) {
                continue;
            }
            let Ok(email) = &self.records[i].email else {
                continue;
            };
            let Some(&account) = self.accounts_by_email.get(email.key()) else {
                continue;
            };
            if quarantined.contains(&account.id) {
                continue;
            }
            if let Some(&j) = claimed.get(&account.id) {
                // A rehire under a new employee id while HR keeps the old, ended record (often
                // with another address): the current record gets the account back, and the
                // old one is ignored.
                let rehire = matches!(lives[j], Life::Leaver { .. }) && lives[i] == Life::Present;
                if !rehire {
                    continue;
                }
                matched[j] = Matched::None;
            }
            let membership = self.membership_by_account.get(&account.id).copied();
            // A leaver is matched by email only to a membership this connector manages
            // (accounts no connector manages are never deactivated by one), and not to one
            // whose own employee id is in the feed: that record speaks for it, and an old
            // record carrying its address does not.
            if matches!(lives[i], Life::Leaver { .. })
                && membership.is_none_or(|m| {
                    m.connector.as_ref() != Some(&self.policy.connector)
                        || m.employee_id
                            .as_ref()
                            .is_some_and(|id| in_feed_ids.contains(id))
                })
            {
                continue;
            }
            matched[i] = Matched::Email(account, membership);
            claimed.insert(account.id, i);
        }
        matched
    }

    // Step 4: which present records can have the address the feed gives them. An address held
    // by an account that nobody in the feed moves away from blocks the record that wants it; an
    // address held by an account that another record moves to a new address is free if that
    // move succeeds. Failures spread until nothing changes (a swap of two addresses succeeds).
    fn resolve_emails(
        &self,
        order: &[usize],
        lives: &[Life],
        excluded: &[Option<Excluded>],
        matched: &[Matched<'a>],
    ) -> Vec<bool> {
        let n = self.records.len();
        let mut ok = vec![true; n];
        // The record (if any) that holds each account by employee id or email.
        let mut holder_record: HashMap<AccountId, usize> = HashMap::new();
        for &i in order {
            if let Some(a) = matched[i].account() {
                holder_record.insert(a.id, i);
            }
        }
        // What each relevant record's address depends on: `None` = free, `Some(Err)` = blocked
        // for good, `Some(Ok(j))` = free only if record j's own move succeeds.
        let mut depends: Vec<Option<Result<usize, ()>>> = vec![None; n];
        for &i in order {
            if excluded[i].is_some() || lives[i] != Life::Present {
                continue;
            }
            let Ok(email) = &self.records[i].email else {
                continue;
            };
            let own = matched[i].account().map(|a| a.id);
            let Some(&holder) = self.accounts_by_email.get(email.key()) else {
                continue;
            };
            if Some(holder.id) == own {
                continue;
            }
            depends[i] = Some(match holder_record.get(&holder.id) {
                Some(&j) if self.moves_away(j, lives, excluded, matched) => Ok(j),
                _ => Err(()),
            });
        }
        loop {
            let mut changed = false;
            for &i in order {
                let blocked = match depends[i] {
                    None => false,
                    Some(Err(())) => true,
                    Some(Ok(j)) => !ok[j],
                };
                if blocked && ok[i] {
                    ok[i] = false;
                    changed = true;
                }
            }
            if !changed {
                return ok;
            }
        }
    }

    /// Whether record `j` takes its account to another address in this plan.
    fn moves_away(
        &self,
        j: usize,
        lives: &[Life],
        excluded: &[Option<Excluded>],
        matched: &[Matched<'a>],
    ) -> bool {
        let record = &self.records[j];
        let (Matched::EmployeeId(_, account), None, Life::Present, Ok(email)) =
            (matched[j], &excluded[j], &lives[j], &record.email)
        else {
            return false;
        };
        let Matched::EmployeeId(membership, _) = matched[j] else {
            return false;
        };
        *email != account.email
            && self.owns_profile(account, Some(membership))
            && self.may_update(Field::Email, account.activated_at.is_some(), false)
            && self.requirement_failures(record).is_empty()
    }

    /// Whether this connector keeps the account's profile (email and names) once this plan is
    /// applied. An account shared by several organisations takes them from the connector of its
    /// oldest live managed membership only, so two HR systems never overwrite each other back
    /// and forth. `membership` is this organisation's membership of the person: when the plan
    /// makes it a live managed one of this connector (a rehire, or a membership made by hand
    /// taken over) and it is older than the one keeping the profile now, the profile passes to
    /// this connector with this very plan, so the plan updates it (planning again would).
    fn owns_profile(&self, account: &Account, membership: Option<&Membership>) -> bool {
        let keeps_now = account
            .profile_owner
            .as_ref()
            .is_none_or(|owner| owner == &self.policy.connector);
        let becomes_live =
            membership.filter(|m| m.state == MembershipState::Deactivated || m.connector.is_none());
        keeps_now
            || becomes_live.is_some_and(|m| {
                account
                    .profile_owner_membership
                    .is_some_and(|owner| m.id.0 < owner.0)
            })
    }

    fn profile_kept_elsewhere(&mut self, record: &HrRecord, account: &Account, email: &Email) {
        let owner = account
            .profile_owner
            .as_ref()
            .map(|c| c.as_str())
            .unwrap_or_default();
        self.push(
            ChangeKind::Conflict,
            record,
            Some(Field::Email.as_str()),
            Some(account.email.to_string()),
            Some(email.to_string()),
            format!(
                "HR gives another email, but connector `{owner}` keeps this account's profile; the email is not changed (the rest is synced)"
            ),
            Action::None,
        );
    }

    fn may_update(&self, field: Field, activated: bool, creating: bool) -> bool {
        creating || self.policy.owner(field).hr_may_update(activated)
    }

    fn requirement_failures(&self, record: &HrRecord) -> Vec<String> {
        let mut failures = Vec::new();
        for rule in self.policy.roles.iter().filter(|r| r.matches(record)) {
            for req in &rule.require {
                if let Some(why) = req.failure(record) {
                    failures.push(format!("role `{}` requires {why}", rule.role));
                }
            }
        }
        failures
    }

    // Step 5: one present person.
    fn person(
        &mut self,
        record: &'a HrRecord,
        matched: Matched<'a>,
        email_ok: bool,
    ) -> Option<Synced<'a>> {
        let email = match &record.email {
            Ok(email) => email.clone(),
            Err(e) => {
                self.quarantine(record, format!("no usable email: {e}"));
                return None;
            }
        };
        let failures = self.requirement_failures(record);
        if !failures.is_empty() {
            self.quarantine(record, failures.join("; "));
            return None;
        }
        let fields = MembershipFields {
            employee_id: record.employee_id.clone(),
            job_title: record.job_title.clone(),
            location: record.location.clone(),
            employment_type: record.employment_type.clone(),
        };
        let send = self.policy.send_invites;
        match matched {
            Matched::None => {
                if !email_ok {
                    self.conflict_taken(record, &email);
                    return None;
                }
                let reason = if send {
                    "new in HR; account created and activation email queued"
                } else {
                    "new in HR; account created, activation email not sent (send_invites = false)"
                };
                self.push(
                    ChangeKind::Invite,
                    record,
                    None,
                    None,
                    None,
                    reason.to_string(),
                    Action::Invite {
                        account: NewAccount {
                            email: email.clone(),
                            first_name: record.first_name.clone(),
                            last_name: record.last_name.clone(),
                            display_name: record.implied_display_name(),
                        },
                        membership: fields,
                        notice: if send {
                            Notice::Activation
                        } else {
                            Notice::None
                        },
                    },
                );
                Some(Synced {
                    record,
                    account: AccountRef::New(email.key().to_string()),
                    existing: None,
                    activated: false,
                    creating: true,
                })
            }
            Matched::EmployeeId(membership, account) => {
                let activated = account.activated_at.is_some();
                let mut activation_queued = false;
                let email_differs = email != account.email;
                let owns = self.owns_profile(account, Some(membership));
                if email_differs && !owns {
                    self.profile_kept_elsewhere(record, account, &email);
                } else if email_differs && self.may_update(Field::Email, activated, false) {
                    if !email_ok {
                        self.conflict_taken(record, &email);
                        return None;
                    }
                    activation_queued = !activated && send;
                    self.push(
                        ChangeKind::EmailChange,
                        record,
                        Some(Field::Email.as_str()),
                        Some(account.email.to_string()),
                        Some(email.to_string()),
                        if activated {
                            "email changed in HR; notices sent to the old and the new address"
                                .to_string()
                        } else {
                            "email changed in HR before activation; activation link sent to the new address, notice to the old"
                                .to_string()
                        },
                        Action::EmailChange {
                            account: account.id,
                            old: account.email.clone(),
                            new: email.clone(),
                            resend_activation: !activated && send,
                        },
                    );
                }
                if membership.state == MembershipState::Deactivated {
                    self.reactivate(
                        record,
                        membership,
                        account,
                        "back in HR as current",
                        activation_queued,
                    );
                }
                self.membership_updates(record, membership, &fields, activated);
                self.account_updates(record, account, owns);
                Some(Synced {
                    record,
                    account: AccountRef::Existing(account.id),
                    existing: Some(account),
                    activated,
                    creating: false,
                })
            }
            Matched::Email(account, membership) => {
                let activated = account.activated_at.is_some();
                match membership {
                    Some(m)
                        if m.connector.is_some()
                            && m.connector.as_ref() != Some(&self.policy.connector) =>
                    {
                        self.push(
                            ChangeKind::Conflict,
                            record,
                            None,
                            None,
                            None,
                            format!(
                                "the account with this email is already managed by connector `{}` in this organisation",
                                m.connector.as_ref().map(|c| c.as_str()).unwrap_or_default()
                            ),
                            Action::None,
                        );
                        return None;
                    }
                    Some(m) if m.connector.as_ref() == Some(&self.policy.connector) => {
                        // The same person under a new employee id: a rehire or a re-numbering.
                        if m.employee_id.as_ref() != Some(&record.employee_id) {
                            self.push(
                                ChangeKind::Update,
                                record,
                                Some("employee_id"),
                                m.employee_id.as_ref().map(ToString::to_string),
                                Some(record.employee_id.to_string()),
                                "same email under a new employee id in HR".to_string(),
                                Action::Update(Update::EmployeeId {
                                    membership: m.id,
                                    value: record.employee_id.clone(),
                                }),
                            );
                        }
                        if m.state == MembershipState::Deactivated {
                            self.reactivate(
                                record,
                                m,
                                account,
                                "rehired under a new employee id",
                                false,
                            );
                        }
                        self.membership_updates(record, m, &fields, activated);
                    }
                    existing => {
                        // A new membership for an existing account, or one made by hand that
                        // the connector takes over.
                        let by_hand_live = existing.filter(|m| m.state.is_live());
                        let (state, notice, reason) = match (by_hand_live, activated) {
                            (Some(m), _) => (
                                m.state,
                                Notice::None,
                                "already a member by hand; the connector manages this membership from now on".to_string(),
                            ),
                            (None, true) => (
                                MembershipState::Active,
                                Notice::AddedToOrganisation,
                                "existing account matched by email; added to the organisation".to_string(),
                            ),
                            (None, false) => (
                                MembershipState::Invited,
                                if send { Notice::Activation } else { Notice::None },
                                "existing account matched by email, not yet activated; invited to the organisation".to_string(),
                            ),
                        };
                        self.push(
                            ChangeKind::Link,
                            record,
                            None,
                            None,
                            Some(state.as_str().to_string()),
                            reason,
                            Action::Link {
                                account: account.id,
                                existing: existing.map(|m| m.id),
                                membership: fields.clone(),
                                state,
                                notice,
                            },
                        );
                        if let Some(m) = existing {
                            self.membership_updates(record, m, &fields, activated);
                        }
                    }
                }
                let owns = self.owns_profile(account, membership);
                self.account_updates(record, account, owns);
                Some(Synced {
                    record,
                    account: AccountRef::Existing(account.id),
                    existing: Some(account),
                    activated,
                    creating: membership.is_none(),
                })
            }
        }
    }

    fn reactivate(
        &mut self,
        record: &HrRecord,
        membership: &Membership,
        account: &Account,
        why: &str,
        activation_queued: bool,
    ) {
        let activated = account.activated_at.is_some();
        let (state, notice) = if activated {
            (MembershipState::Active, Notice::None)
        } else if self.policy.send_invites && !activation_queued {
            (MembershipState::Invited, Notice::Activation)
        } else {
            (MembershipState::Invited, Notice::None)
        };
        let reason = match (notice, activation_queued) {
            (Notice::Activation, _) => {
                format!("{why}; not activated before, so a new activation email is queued")
            }
            (_, true) => {
                format!("{why}; not activated before, the activation email goes to the new address")
            }
            _ => format!("{why}; the same account is reactivated"),
        };
        self.push(
            ChangeKind::Reactivate,
            record,
            Some("state"),
            Some(MembershipState::Deactivated.as_str().to_string()),
            Some(state.as_str().to_string()),
            reason,
            Action::Reactivate {
                membership: membership.id,
                account: account.id,
                employee_id: record.employee_id.clone(),
                state,
                notice,
            },
        );
    }

    /// Updates of the account's names, when this connector keeps its profile (`owns`, see
    /// [`Planner::owns_profile`]).
    fn account_updates(&mut self, record: &HrRecord, account: &Account, owns: bool) {
        if !owns {
            return;
        }
        let activated = account.activated_at.is_some();
        let owner = |field| self.policy.owner(field);
        // A display name made from first and last name has their owner (the stricter of the
        // two), so a name the person owns is never overwritten through the display name.
        let display_owner = if record.display_name.is_some() {
            owner(Field::DisplayName)
        } else {
            owner(Field::FirstName).stricter(owner(Field::LastName))
        };
        let wanted = [
            (
                Field::FirstName,
                owner(Field::FirstName),
                &record.first_name,
                &account.first_name,
            ),
            (
                Field::LastName,
                owner(Field::LastName),
                &record.last_name,
                &account.last_name,
            ),
            (
                Field::DisplayName,
                display_owner,
                &record.implied_display_name(),
                &account.display_name,
            ),
        ];
        for (field, owner, new, old) in wanted {
            if new != old && owner.hr_may_update(activated) {
                self.push(
                    ChangeKind::Update,
                    record,
                    Some(field.as_str()),
                    old.clone(),
                    new.clone(),
                    update_reason(field, owner),
                    Action::Update(Update::Account {
                        account: account.id,
                        field,
                        value: new.clone(),
                    }),
                );
            }
        }
    }

    fn membership_updates(
        &mut self,
        record: &HrRecord,
        membership: &Membership,
        fields: &MembershipFields,
        activated: bool,
    ) {
        let wanted = [
            (Field::JobTitle, &fields.job_title, &membership.job_title),
            (Field::Location, &fields.location, &membership.location),
            (
                Field::EmploymentType,
                &fields.employment_type,
                &membership.employment_type,
            ),
        ];
        for (field, new, old) in wanted {
            if new != old && self.may_update(field, activated, false) {
                self.push(
                    ChangeKind::Update,
                    record,
                    Some(field.as_str()),
                    old.clone(),
                    new.clone(),
                    update_reason(field, self.policy.owner(field)),
                    Action::Update(Update::Membership {
                        membership: membership.id,
                        field,
                        value: new.clone(),
                    }),
                );
            }
        }
    }

    fn leaver(&mut self, record: &HrRecord, matched: Matched<'a>, reason: &str) -> bool {
        let (membership, account) = match matched {
            Matched::EmployeeId(m, a) => (m, a),
            Matched::Email(a, Some(m)) => (m, a),
            // A leaver unknown to the directory: no account, no report line.
            _ => return false,
        };
        if !membership.state.is_live() {
            return false;
        }
        self.push_for(
            ChangeKind::Deactivate,
            Some(record.employee_id.clone()),
            Some(account.email.to_string()),
            Some("state"),
            Some(membership.state.as_str().to_string()),
            Some(MembershipState::Deactivated.as_str().to_string()),
            format!("{reason}; sign-in to this organisation ends, all data is kept"),
            Action::Deactivate {
                membership: membership.id,
                account: account.id,
            },
        );
        true
    }

    // Step 7 (full feeds): managed, live memberships nobody in the feed speaks for.
    fn absent(&mut self, touched: &HashSet<AccountId>, in_feed_emails: &HashSet<&str>) -> usize {
        let in_feed_ids: HashSet<&EmployeeId> =
            self.records.iter().map(|r| &r.employee_id).collect();
        let mut gone: Vec<(&Membership, &Account)> = self
            .directory
            .memberships
            .iter()
            .filter(|m| m.connector.as_ref() == Some(&self.policy.connector) && m.state.is_live())
            .filter(|m| !touched.contains(&m.account_id))
            .filter(|m| {
                !m.employee_id
                    .as_ref()
                    .is_some_and(|id| in_feed_ids.contains(id))
            })
            .filter_map(|m| self.accounts_by_id.get(&m.account_id).map(|a| (m, *a)))
            .filter(|(_, a)| !in_feed_emails.contains(a.email.key()))
            .collect();
        gone.sort_by(|a, b| {
            a.0.employee_id
                .cmp(&b.0.employee_id)
                .then(a.1.id.cmp(&b.1.id))
        });
        for (membership, account) in &gone {
            self.push_for(
                ChangeKind::Deactivate,
                membership.employee_id.clone(),
                Some(account.email.to_string()),
                Some("state"),
                Some(membership.state.as_str().to_string()),
                Some(MembershipState::Deactivated.as_str().to_string()),
                "no longer in the HR feed; sign-in to this organisation ends, all data is kept"
                    .to_string(),
                Action::Deactivate {
                    membership: membership.id,
                    account: account.id,
                },
            );
        }
        gone.len()
    }

    fn team_key(&self, record: &HrRecord) -> Option<(TeamKey, String)> {
        match &self.policy.teams_from {
            TeamSource::Department => record
                .department
                .as_ref()
                .map(|d| (d.key.clone(), d.name.clone())),
            TeamSource::Location => record
                .location
                .as_deref()
                .and_then(TeamKey::parse)
                .map(|k| (k.clone(), k.to_string())),
            TeamSource::Attribute(name) => record
                .attributes
                .get(name)
                .and_then(|v| TeamKey::parse(v))
                .map(|k| (k.clone(), k.to_string())),
        }
    }

    // Step 6: a team's people are the synced records with its key; each person's manager, if
    // synced too, coaches that person's team; a coach is never also a member of the same team.
    fn teams_and_coaches(&mut self, synced: &[Synced<'a>]) {
        let connector = Some(&self.policy.connector);
        let teams: HashMap<&TeamKey, &'a Team> = self
            .directory
            .teams
            .iter()
            .filter(|t| t.connector.as_ref() == connector)
            .map(|t| (&t.key, t))
            .collect();

        // The name of each team, from the first person (by employee id) in it.
        let mut names: BTreeMap<TeamKey, String> = BTreeMap::new();
        let mut team_of: Vec<Option<TeamKey>> = Vec::with_capacity(synced.len());
        for s in synced {
            let key = self.team_key(s.record);
            if let Some((k, name)) = &key {
                names.entry(k.clone()).or_insert_with(|| name.clone());
            }
            team_of.push(key.map(|(k, _)| k));
        }
        for (key, name) in &names {
            if let Some(team) = teams.get(key)
                && &team.name != name
            {
                self.changes.push(Change {
                    kind: ChangeKind::Update,
                    employee_id: None,
                    email: None,
                    field: Some("team_name".to_string()),
                    old: Some(team.name.clone()),
                    new: Some(name.clone()),
                    reason: format!("department `{key}` is named differently in HR"),
                    action: Action::Update(Update::TeamName {
                        team: team.id,
                        name: name.clone(),
                    }),
                });
            }
        }
        let team_ref = |key: &TeamKey| match teams.get(key) {
            Some(t) => TeamRef::Existing(t.id),
            None => TeamRef::New {
                key: key.clone(),
                name: names.get(key).cloned().unwrap_or_else(|| key.to_string()),
            },
        };

        let index: HashMap<&EmployeeId, usize> = synced
            .iter()
            .enumerate()
            .map(|(i, s)| (&s.record.employee_id, i))
            .collect();
        let mut coach_of: Vec<BTreeSet<TeamKey>> = vec![BTreeSet::new(); synced.len()];
        let mut uncoached: BTreeMap<EmployeeId, BTreeSet<TeamKey>> = BTreeMap::new();
        for (i, s) in synced.iter().enumerate() {
            let (Some(team), Some(manager)) = (&team_of[i], &s.record.manager_id) else {
                continue;
            };
            match index.get(manager) {
                Some(&m) if m != i => {
                    coach_of[m].insert(team.clone());
                }
                Some(_) => {}
                None => {
                    uncoached
                        .entry(manager.clone())
                        .or_default()
                        .insert(team.clone());
                }
            }
        }
        // A manager whose own record is quarantined or in conflict coaches nobody: say so on
        // that record's line, where the admin looks to fix it.
        for change in &mut self.changes {
            if matches!(change.kind, ChangeKind::Quarantine | ChangeKind::Conflict)
                && let Some(teams) = change.employee_id.as_ref().and_then(|id| uncoached.get(id))
            {
                let teams: Vec<&str> = teams.iter().map(TeamKey::as_str).collect();
                change.reason.push_str(&format!(
                    "; manages people in team {}, but is no coach of it until this is resolved",
                    teams.join(", ")
                ));
            }
        }

        let links = |list: &'a [crate::domain::TeamLink]| {
            let mut all: HashMap<AccountId, BTreeSet<TeamId>> = HashMap::new();
            let mut ours: HashMap<AccountId, BTreeSet<TeamId>> = HashMap::new();
            for l in list {
                all.entry(l.account_id).or_default().insert(l.team_id);
                if l.connector.as_ref() == connector {
                    ours.entry(l.account_id).or_default().insert(l.team_id);
                }
            }
            (all, ours)
        };
        let (all_members, our_members) = links(&self.directory.team_members);
        let (all_coaches, our_coaches) = links(&self.directory.coaches);
        let empty = BTreeSet::new();
        let keys_by_id: HashMap<TeamId, &TeamKey> = self
            .directory
            .teams
            .iter()
            .map(|t| (t.id, &t.key))
            .collect();
        let key_of = |id: &TeamId| {
            keys_by_id
                .get(id)
                .map(|k| k.to_string())
                .unwrap_or_else(|| id.0.to_string())
        };

        for (i, s) in synced.iter().enumerate() {
            let record = s.record;
            let team_allowed = self.may_update(Field::Team, s.activated, s.creating);
            let coach_allowed = self.may_update(Field::Coach, s.activated, s.creating);
            let id = s.existing.map(|a| a.id);
            let has = |map: &HashMap<AccountId, BTreeSet<TeamId>>, team: &TeamRef| match (id, team)
            {
                (Some(id), TeamRef::Existing(t)) => map.get(&id).is_some_and(|s| s.contains(t)),
                _ => false,
            };

            // Coach assignments.
            let wanted_coach: BTreeSet<TeamKey> = coach_of[i].clone();
            if coach_allowed {
                for key in &wanted_coach {
                    let team = team_ref(key);
                    if !has(&all_coaches, &team) {
                        let reason = match &team_of[i] {
                            Some(own) if own == key => format!(
                                "manages people in team `{key}` and works in it: coach, not member"
                            ),
                            _ => format!("manages people in team `{key}`"),
                        };
                        self.push(
                            ChangeKind::CoachAssign,
                            record,
                            Some("coach"),
                            None,
                            Some(key.to_string()),
                            reason,
                            Action::CoachAssign {
                                account: s.account.clone(),
                                team,
                            },
                        );
                    }
                }
                if let Some(id) = id {
                    for team in our_coaches.get(&id).unwrap_or(&empty) {
                        let key = key_of(team);
                        if !wanted_coach.iter().any(|k| {
                            k.as_str() == key && teams.get(k).is_some_and(|t| t.id == *team)
                        }) {
                            self.push(
                                ChangeKind::CoachUnassign,
                                record,
                                Some("coach"),
                                Some(key.clone()),
                                None,
                                format!("no longer manages anyone in team `{key}`"),
                                Action::CoachUnassign {
                                    account: id,
                                    team: *team,
                                },
                            );
                        }
                    }
                }
            }

            // Team membership: the person's own team, unless they coach it.
            if team_allowed {
                // The coach assignment wins, also one made by hand.
                // After this plan the person coaches a team when HR makes them its coach, when
                // a coach link made by hand says so, or when the connector's own link stays
                // because HR may no longer change coaches.
                let coaches_after = |k: &TeamKey| {
                    let team = team_ref(k);
                    let by_hand = has(&all_coaches, &team) && !has(&our_coaches, &team);
                    let kept = !coach_allowed && has(&our_coaches, &team);
                    (coach_allowed && wanted_coach.contains(k)) || by_hand || kept
                };
                let wanted_member = team_of[i].clone().filter(|k| !coaches_after(k));
                if let Some(key) = &wanted_member {
                    let team = team_ref(key);
                    if !has(&all_members, &team) {
                        let mut reason = format!("in department `{key}` in HR");
                        if let Some(manager) = &record.manager_id
                            && !index.contains_key(manager)
                        {
                            reason.push_str(&format!(
                                "; manager `{manager}` is not synced by this connector, so is no coach of it"
                            ));
                        }
                        self.push(
                            ChangeKind::TeamJoin,
                            record,
                            Some("team"),
                            None,
                            Some(key.to_string()),
                            reason,
                            Action::TeamJoin {
                                account: s.account.clone(),
                                team,
                            },
                        );
                    }
                }
                if let Some(id) = id {
                    for team in our_members.get(&id).unwrap_or(&empty) {
                        let keep = wanted_member
                            .as_ref()
                            .is_some_and(|k| teams.get(k).is_some_and(|t| t.id == *team));
                        if !keep {
                            let key = key_of(team);
                            let reason = if team_of[i].as_ref().is_some_and(|k| k.as_str() == key) {
                                format!("coaches team `{key}`, so is no longer a member of it")
                            } else {
                                format!("no longer in department `{key}` in HR")
                            };
                            self.push(
                                ChangeKind::TeamLeave,
                                record,
                                Some("team"),
                                Some(key),
                                None,
                                reason,
                                Action::TeamLeave {
                                    account: id,
                                    team: *team,
                                },
                            );
                        }
                    }
                }
            }
        }
    }

    fn roles(&mut self, synced: &[Synced<'a>]) {
        let connector = Some(&self.policy.connector);
        let mut all: HashMap<AccountId, BTreeSet<&'a str>> = HashMap::new();
        let mut ours: HashMap<AccountId, BTreeSet<&'a str>> = HashMap::new();
        for g in &self.directory.grants {
            all.entry(g.account_id).or_default().insert(&g.role);
            if g.connector.as_ref() == connector {
                ours.entry(g.account_id).or_default().insert(&g.role);
            }
        }
        for s in synced {
            let record = s.record;
            let wanted: BTreeSet<&str> = self
                .policy
                .roles
                .iter()
                .filter(|r| r.matches(record))
                .map(|r| r.role.as_str())
                .collect();
            let id = s.existing.map(|a| a.id);
            let held = id.and_then(|id| all.get(&id));
            for role in &wanted {
                if !held.is_some_and(|h| h.contains(role)) {
                    self.push(
                        ChangeKind::RoleGrant,
                        record,
                        Some("role"),
                        None,
                        Some(role.to_string()),
                        format!("role rule `{role}` matches the HR fields"),
                        Action::RoleGrant {
                            account: s.account.clone(),
                            role: role.to_string(),
                        },
                    );
                }
            }
            if let Some(id) = id {
                for role in ours.get(&id).into_iter().flatten() {
                    if !wanted.contains(role) {
                        self.push(
                            ChangeKind::RoleRevoke,
                            record,
                            Some("role"),
                            Some(role.to_string()),
                            None,
                            format!("role rule `{role}` no longer matches the HR fields"),
                            Action::RoleRevoke {
                                account: id,
                                role: role.to_string(),
                            },
                        );
                    }
                }
            }
        }
    }

    fn quarantine(&mut self, record: &HrRecord, reason: String) {
        self.push(
            ChangeKind::Quarantine,
            record,
            None,
            None,
            None,
            format!("{reason}; nothing is applied for this person"),
            Action::None,
        );
    }

    fn conflict_taken(&mut self, record: &HrRecord, email: &Email) {
        self.push(
            ChangeKind::Conflict,
            record,
            Some(Field::Email.as_str()),
            None,
            Some(email.to_string()),
            format!(
                "`{email}` already belongs to another account; nothing changes for this person"
            ),
            Action::None,
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        kind: ChangeKind,
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
        self.push_for(
            kind,
            Some(record.employee_id.clone()),
            email,
            field,
            old,
            new,
            reason,
            action,
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn push_for(
        &mut self,
        kind: ChangeKind,
        employee_id: Option<EmployeeId>,
        email: Option<String>,
        field: Option<&str>,
        old: Option<String>,
        new: Option<String>,
        reason: String,
        action: Action,
    ) {
        self.changes.push(Change {
            kind,
            employee_id,
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
