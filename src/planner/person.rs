//! Step 5 of the planner, one present person at a time (invite, link, reactivate, email change,
//! the updates HR owns), and step 7, the deactivations: leavers, and in a full feed the managed
//! people nobody in it speaks for. Who keeps an account's profile is decided here too.

use foldhash::HashSet;

use super::{
    AccountField, AccountRef, Action, Change, Field, Matched, MembershipField, MembershipFields,
    NewAccount, Note, Notice, Planner, Synced, Update, update_reason,
};
use crate::domain::{Account, AccountId, Email, EmployeeId, HrRecord, Membership, MembershipState};

impl<'a> Planner<'a> {
    /// Whether this connector keeps the account's profile (email and names) once this plan is
    /// applied. An account shared by several organisations takes them from the connector of its
    /// oldest live managed membership only, so two HR systems never overwrite each other back
    /// and forth. `membership` is this organisation's membership of the person: when the plan
    /// makes it a live managed one of this connector (a rehire, or a membership made by hand
    /// taken over) and it is older than the one keeping the profile now, the profile passes to
    /// this connector with this very plan, so the plan updates it (planning again would).
    pub(super) fn owns_profile(&self, account: &Account, membership: Option<&Membership>) -> bool {
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

    pub(super) fn profile_kept_elsewhere(
        &mut self,
        record: &HrRecord,
        account: &Account,
        email: &Email,
    ) {
        let owner = account
            .profile_owner
            .as_ref()
            .map(|c| c.as_str())
            .unwrap_or_default();
        self.push(record,
            Some(Field::Email.as_str()),
            Some(account.email.to_string()),
            Some(email.to_string()),
            format!(
                "HR gives another email, but connector `{owner}` keeps this account's profile; the email is not changed (the rest is synced)"
            ),
            Action::Note(Note::Conflict),
        );
    }

    pub(super) fn may_update(&self, field: Field, activated: bool, creating: bool) -> bool {
        creating || self.policy.owner(field).hr_may_update(activated)
    }

    pub(super) fn requirement_failures(&self, record: &HrRecord) -> Vec<String> {
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
    pub(super) fn person(
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
        match matched {
            Matched::None => self.new_person(record, email, fields, email_ok),
            Matched::EmployeeId(membership, account) => {
                self.known_by_employee_id(record, email, fields, email_ok, (membership, account))
            }
            Matched::Email(account, membership) => {
                self.known_by_email(record, fields, (account, membership))
            }
        }
    }

    /// A present person no account matches: invited with a new account, unless the address
    /// is taken.
    fn new_person(
        &mut self,
        record: &'a HrRecord,
        email: Email,
        fields: MembershipFields,
        email_ok: bool,
    ) -> Option<Synced<'a>> {
        let send = self.policy.send_invites;
        if !email_ok {
            self.conflict_taken(record, &email);
            return None;
        }
        let reason = if send {
            "new in HR; gets an account and an activation email"
        } else {
            "new in HR; gets an account, but no activation email (send_invites = false)"
        };
        self.push(
            record,
            None,
            None,
            None,
            reason.to_string(),
            Action::Invite {
                account: Box::new(NewAccount {
                    email: email.clone(),
                    first_name: record.first_name.clone(),
                    last_name: record.last_name.clone(),
                    display_name: record.implied_display_name(),
                }),
                membership: Box::new(fields),
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

    /// A present person the connector knows by employee id: email change (or a conflict),
    /// reactivation, and the updates HR owns.
    fn known_by_employee_id(
        &mut self,
        record: &'a HrRecord,
        email: Email,
        fields: MembershipFields,
        email_ok: bool,
        (membership, account): (&'a Membership, &'a Account),
    ) -> Option<Synced<'a>> {
        let send = self.policy.send_invites;
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
            self.push(record,
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
                    old: Box::new(account.email.clone()),
                    new: Box::new(email.clone()),
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

    /// A present person matched by email: a rehire or re-numbering of the connector's own
    /// membership, a link of an existing account, or a membership by hand taken over.
    fn known_by_email(
        &mut self,
        record: &'a HrRecord,
        fields: MembershipFields,
        (account, membership): (&'a Account, Option<&'a Membership>),
    ) -> Option<Synced<'a>> {
        let send = self.policy.send_invites;
        let activated = account.activated_at.is_some();
        match membership {
            Some(m)
                if m.connector.is_some()
                    && m.connector.as_ref() != Some(&self.policy.connector) =>
            {
                self.push(record,
                    None,
                    None,
                    None,
                    format!(
                        "the account with this email is already managed by connector `{}` in this organisation",
                        m.connector.as_ref().map(|c| c.as_str()).unwrap_or_default()
                    ),
                    Action::Note(Note::Conflict),
                );
                return None;
            }
            Some(m) if m.connector.as_ref() == Some(&self.policy.connector) => {
                // The same person under a new employee id: a rehire or a re-numbering.
                if m.employee_id.as_ref() != Some(&record.employee_id) {
                    self.push(
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
                    self.reactivate(record, m, account, "rehired under a new employee id", false);
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
                    record,
                    None,
                    None,
                    Some(state.as_str().to_string()),
                    reason,
                    Action::Link {
                        account: account.id,
                        existing: existing.map(|m| m.id),
                        membership: Box::new(fields.clone()),
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

    pub(super) fn reactivate(
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
                format!("{why}; not activated before, so gets a new activation email")
            }
            (_, true) => {
                format!("{why}; not activated before: the activation email goes to the new address")
            }
            _ => format!("{why}; on the same account as before"),
        };
        self.push(
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
    pub(super) fn account_updates(&mut self, record: &HrRecord, account: &Account, owns: bool) {
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
                AccountField::FirstName,
                owner(Field::FirstName),
                &record.first_name,
                &account.first_name,
            ),
            (
                AccountField::LastName,
                owner(Field::LastName),
                &record.last_name,
                &account.last_name,
            ),
            (
                AccountField::DisplayName,
                display_owner,
                &record.implied_display_name(),
                &account.display_name,
            ),
        ];
        for (field, owner, new, old) in wanted {
            if new != old && owner.hr_may_update(activated) {
                self.push(
                    record,
                    Some(field.field().as_str()),
                    old.clone(),
                    new.clone(),
                    update_reason(field.field(), owner),
                    Action::Update(Update::Account {
                        account: account.id,
                        field,
                        value: new.clone(),
                    }),
                );
            }
        }
    }

    pub(super) fn membership_updates(
        &mut self,
        record: &HrRecord,
        membership: &Membership,
        fields: &MembershipFields,
        activated: bool,
    ) {
        let wanted = [
            (
                MembershipField::JobTitle,
                &fields.job_title,
                &membership.job_title,
            ),
            (
                MembershipField::Location,
                &fields.location,
                &membership.location,
            ),
            (
                MembershipField::EmploymentType,
                &fields.employment_type,
                &membership.employment_type,
            ),
        ];
        for (field, new, old) in wanted {
            if new != old && self.may_update(field.field(), activated, false) {
                self.push(
                    record,
                    Some(field.field().as_str()),
                    old.clone(),
                    new.clone(),
                    update_reason(field.field(), self.policy.owner(field.field())),
                    Action::Update(Update::Membership {
                        membership: membership.id,
                        field,
                        value: new.clone(),
                    }),
                );
            }
        }
    }

    pub(super) fn leaver(&mut self, record: &HrRecord, matched: Matched<'a>, reason: &str) -> bool {
        let (membership, account) = match matched {
            Matched::EmployeeId(m, a) => (m, a),
            Matched::Email(a, Some(m)) => (m, a),
            // A leaver unknown to the directory: no account, no report line.
            _ => return false,
        };
        if !membership.state.is_live() {
            return false;
        }
        self.deactivation(
            Some(record.employee_id.clone()),
            membership,
            account,
            format!("{reason}; sign-in to this organisation ends, all data is kept"),
        );
        true
    }

    // Step 7 (full feeds): managed, live memberships nobody in the feed speaks for.
    pub(super) fn absent(
        &mut self,
        touched: &HashSet<AccountId>,
        in_feed_emails: &HashSet<&str>,
    ) -> usize {
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
            self.deactivation(
                membership.employee_id.clone(),
                membership,
                account,
                "no longer in the HR feed; sign-in to this organisation ends, all data is kept"
                    .to_string(),
            );
        }
        gone.len()
    }

    /// A deactivation line, under the employee id it is known by and the account's address.
    fn deactivation(
        &mut self,
        employee_id: Option<EmployeeId>,
        membership: &Membership,
        account: &Account,
        reason: String,
    ) {
        self.changes.push(Change {
            employee_id,
            email: Some(account.email.to_string()),
            field: Some("state".to_string()),
            old: Some(membership.state.as_str().to_string()),
            new: Some(MembershipState::Deactivated.as_str().to_string()),
            reason,
            action: Action::Deactivate {
                membership: membership.id,
                account: account.id,
            },
        });
    }
}
