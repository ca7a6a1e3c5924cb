//! Steps 1 to 4 of the planner: which records are present, scheduled or leavers (dates before
//! statuses), which duplicates are used, ignored or quarantined, which account each record is
//! (employee id first, then email), and which addresses the feed's records may take.

use std::collections::BTreeMap;

use foldhash::{HashMap, HashMapExt as _, HashSet};

use chrono::Days;

use super::{Excluded, Field, Life, Matched, Planner, StatusMeaning};
use crate::domain::{AccountId, EmployeeId, HrRecord};

impl<'a> Planner<'a> {
    // Step 1: dates decide before statuses.
    pub(super) fn classify(&self, record: &HrRecord) -> Life {
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
    pub(super) fn dedupe(&self, order: &[usize], lives: &[Life]) -> Vec<Option<Excluded>> {
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
    pub(super) fn shared_keys(&self, group: &[usize]) -> String {
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

    pub(super) fn settle_duplicates(
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
    pub(super) fn correlate(
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
    pub(super) fn resolve_emails(
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
    pub(super) fn moves_away(
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
}
