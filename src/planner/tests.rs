//! Behaviour tests of the planner, one or more per domain rule and decided edge case of the
//! product (README's "What a sync does"). Each test builds a small feed and directory, plans,
//! and checks what the plan says.

use chrono::{DateTime, Days, NaiveDate, TimeZone, Utc};
use proptest::prelude::*;

use super::*;
use crate::domain::{
    ConnectorId, Department, EmailError, Grant, MembershipId, MembershipState, Team, TeamId,
    TeamKey, TeamLink,
};

// ---------------------------------------------------------------------------------------------
// Builders
// ---------------------------------------------------------------------------------------------

/// The as-of date of every test unless it says otherwise.
const TODAY: &str = "2025-06-02";

/// Rows made by our connector, by hand, or by another connector.
const HR: Option<&str> = Some("hr");
const BY_HAND: Option<&str> = None;
const OTHER: Option<&str> = Some("afas");

fn date(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
}

fn today() -> NaiveDate {
    date(TODAY)
}

/// The day `n` days after (or, negative, before) the as-of date.
fn days(n: i64) -> NaiveDate {
    if n >= 0 {
        today().checked_add_days(Days::new(n as u64)).unwrap()
    } else {
        today().checked_sub_days(Days::new((-n) as u64)).unwrap()
    }
}

/// Noon of `day` in Amsterdam, as the instant the planner is given.
fn as_of(day: NaiveDate) -> DateTime<Utc> {
    chrono_tz::Europe::Amsterdam
        .from_local_datetime(&day.and_hms_opt(12, 0, 0).unwrap())
        .single()
        .unwrap()
        .with_timezone(&Utc)
}

fn instant(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .with_timezone(&Utc)
}

fn policy() -> Policy {
    Policy::new(
        ConnectorId::parse("hr").unwrap(),
        chrono_tz::Europe::Amsterdam,
    )
}

fn eid(id: &str) -> EmployeeId {
    EmployeeId::parse(id).unwrap()
}

fn email(text: &str) -> Email {
    Email::parse(text).unwrap()
}

fn key(text: &str) -> TeamKey {
    TeamKey::parse(text).unwrap()
}

fn connector(c: Option<&str>) -> Option<ConnectorId> {
    c.map(|c| ConnectorId::parse(c).unwrap())
}

/// A role rule with no conditions; set the fields you need.
fn rule(role: &str) -> RoleRule {
    RoleRule {
        role: role.to_string(),
        job_title: Vec::new(),
        department: Vec::new(),
        employment_type: Vec::new(),
        require: Vec::new(),
    }
}

/// An HR record with an employee id and an email; the rest is set with [`RecordBuilder`].
fn employee(id: &str, address: &str) -> HrRecord {
    HrRecord::new(eid(id), Email::parse(address))
}

fn employee_without_email(id: &str) -> HrRecord {
    HrRecord::new(eid(id), Err(EmailError::Missing))
}

trait RecordBuilder {
    fn names(self, first: &str, last: &str) -> Self;
    /// A department whose name is its key.
    fn dept(self, key: &str) -> Self;
    fn dept_named(self, key: &str, name: &str) -> Self;
    fn manager(self, id: &str) -> Self;
    fn title(self, title: &str) -> Self;
    fn starts(self, day: NaiveDate) -> Self;
    fn ends(self, day: NaiveDate) -> Self;
    fn status(self, status: &str) -> Self;
    fn attr(self, name: &str, value: &str) -> Self;
}

impl RecordBuilder for HrRecord {
    fn names(mut self, first: &str, last: &str) -> Self {
        self.first_name = Some(first.to_string());
        self.last_name = Some(last.to_string());
        self
    }
    fn dept(self, k: &str) -> Self {
        self.dept_named(k, k)
    }
    fn dept_named(mut self, k: &str, name: &str) -> Self {
        self.department = Some(Department {
            key: key(k),
            name: name.to_string(),
        });
        self
    }
    fn manager(mut self, id: &str) -> Self {
        self.manager_id = Some(eid(id));
        self
    }
    fn title(mut self, title: &str) -> Self {
        self.job_title = Some(title.to_string());
        self
    }
    fn starts(mut self, day: NaiveDate) -> Self {
        self.start_date = Some(day);
        self
    }
    fn ends(mut self, day: NaiveDate) -> Self {
        self.end_date = Some(day);
        self
    }
    fn status(mut self, status: &str) -> Self {
        self.status = Some(status.to_string());
        self
    }
    fn attr(mut self, name: &str, value: &str) -> Self {
        self.attributes.insert(name.to_string(), value.to_string());
        self
    }
}

/// The membership id of an account's membership: one per account in the organisation.
fn mid(account: i64) -> MembershipId {
    MembershipId(1000 + account)
}

/// Builds a [`Directory`]. Accounts are named by their numeric id; their membership of the
/// organisation gets id [`mid`].
#[derive(Default)]
struct Dir(Directory);

fn directory() -> Dir {
    Dir::default()
}

impl Dir {
    /// An activated account.
    fn account(self, id: i64, address: &str) -> Self {
        self.add_account(id, address, Some(instant("2024-01-15T09:00:00Z")))
    }

    /// An account whose owner has not activated it yet.
    fn pending_account(self, id: i64, address: &str) -> Self {
        self.add_account(id, address, None)
    }

    fn add_account(mut self, id: i64, address: &str, activated: Option<DateTime<Utc>>) -> Self {
        self.0.accounts.push(Account {
            id: AccountId(id),
            email: email(address),
            first_name: None,
            last_name: None,
            display_name: None,
            activated_at: activated,
            profile_owner: None,
            profile_owner_membership: None,
        });
        self
    }

    /// Says which connector keeps the account's profile.
    fn profile_kept_by(mut self, id: i64, connector: &str) -> Self {
        let account = self
            .0
            .accounts
            .iter_mut()
            .find(|a| a.id == AccountId(id))
            .unwrap();
        account.profile_owner = ConnectorId::parse(connector);
        self
    }

    /// Says which connector keeps the account's profile, through which of its memberships.
    fn profile_kept_through(mut self, id: i64, connector: &str, membership: i64) -> Self {
        self = self.profile_kept_by(id, connector);
        if let Some(account) = self.0.accounts.iter_mut().find(|a| a.id == AccountId(id)) {
            account.profile_owner_membership = Some(MembershipId(membership));
        }
        self
    }

    /// Sets an account's names; the display name is both joined.
    fn names(mut self, id: i64, first: &str, last: &str) -> Self {
        let account = self
            .0
            .accounts
            .iter_mut()
            .find(|a| a.id == AccountId(id))
            .expect("add the account first");
        account.first_name = Some(first.to_string());
        account.last_name = Some(last.to_string());
        account.display_name = Some(format!("{first} {last}"));
        self
    }

    fn membership(
        mut self,
        account: i64,
        state: MembershipState,
        by: Option<&str>,
        employee_id: Option<&str>,
    ) -> Self {
        self.0.memberships.push(Membership {
            id: mid(account),
            account_id: AccountId(account),
            state,
            connector: connector(by),
            employee_id: employee_id.map(eid),
            job_title: None,
            location: None,
            employment_type: None,
        });
        self
    }

    /// A membership managed by our connector: active if the account is activated, else invited.
    fn member(self, account: i64, employee_id: &str) -> Self {
        let activated = self
            .0
            .accounts
            .iter()
            .find(|a| a.id == AccountId(account))
            .expect("add the account first")
            .activated_at
            .is_some();
        let state = if activated {
            MembershipState::Active
        } else {
            MembershipState::Invited
        };
        self.membership(account, state, HR, Some(employee_id))
    }

    fn job_title(mut self, account: i64, title: &str) -> Self {
        let membership = self
            .0
            .memberships
            .iter_mut()
            .find(|m| m.account_id == AccountId(account))
            .expect("add the membership first");
        membership.job_title = Some(title.to_string());
        self
    }

    fn team(mut self, id: i64, k: &str, name: &str, by: Option<&str>) -> Self {
        self.0.teams.push(Team {
            id: TeamId(id),
            key: key(k),
            name: name.to_string(),
            connector: connector(by),
        });
        self
    }

    fn in_team(mut self, account: i64, team: i64, by: Option<&str>) -> Self {
        self.0.team_members.push(TeamLink {
            team_id: TeamId(team),
            account_id: AccountId(account),
            connector: connector(by),
        });
        self
    }

    fn coach(mut self, account: i64, team: i64, by: Option<&str>) -> Self {
        self.0.coaches.push(TeamLink {
            team_id: TeamId(team),
            account_id: AccountId(account),
            connector: connector(by),
        });
        self
    }

    fn grant(mut self, account: i64, role: &str, by: Option<&str>) -> Self {
        self.0.grants.push(Grant {
            account_id: AccountId(account),
            role: role.to_string(),
            connector: connector(by),
        });
        self
    }

    fn done(self) -> Directory {
        self.0
    }
}

// ---------------------------------------------------------------------------------------------
// Running the planner and reading plans
// ---------------------------------------------------------------------------------------------

/// Plans at `at` and checks what holds for every plan: each change has a reason, and a change
/// takes an action exactly when its kind is actionable.
fn plan_at(feed: &[HrRecord], dir: &Directory, policy: &Policy, at: DateTime<Utc>) -> Plan {
    let result = plan(feed, dir, policy, at);
    for change in &result.changes {
        assert!(
            !change.reason.trim().is_empty(),
            "a change without a reason: {change:?}"
        );
        assert_eq!(
            change.kind().is_actionable(),
            !matches!(change.action, Action::Note(_)),
            "kind and action disagree: {change:?}"
        );
    }
    result
}

/// Plans as of noon [`TODAY`] in Amsterdam.
fn run(feed: &[HrRecord], dir: &Directory, policy: &Policy) -> Plan {
    plan_at(feed, dir, policy, as_of(today()))
}

fn is_for(change: &Change, id: &str) -> bool {
    change
        .employee_id
        .as_ref()
        .is_some_and(|e| e.as_str() == id)
}

/// The changes of one kind.
fn of(plan: &Plan, kind: ChangeKind) -> Vec<&Change> {
    plan.changes.iter().filter(|c| c.kind() == kind).collect()
}

/// The changes of one kind for one employee id.
fn of_for<'p>(plan: &'p Plan, kind: ChangeKind, id: &str) -> Vec<&'p Change> {
    plan.changes
        .iter()
        .filter(|c| c.kind() == kind && is_for(c, id))
        .collect()
}

/// The actionable changes, as kinds.
fn actionable_kinds(plan: &Plan) -> Vec<ChangeKind> {
    plan.actionable().map(|c| c.kind()).collect()
}

/// The plan as lines, for assertion messages.
fn show(plan: &Plan) -> String {
    let mut out = format!("hold: {:?}\n", plan.hold());
    for c in &plan.changes {
        out.push_str(&format!(
            "  {} {} {} {:?} {:?}->{:?}: {}\n",
            c.kind(),
            c.employee_id.as_ref().map(|e| e.as_str()).unwrap_or("-"),
            c.email.as_deref().unwrap_or("-"),
            c.field,
            c.old,
            c.new,
            c.reason
        ));
    }
    out
}

/// The existing accounts an action writes to.
fn accounts_in(action: &Action) -> Vec<AccountId> {
    let existing = |r: &AccountRef| match r {
        AccountRef::Existing(id) => vec![*id],
        AccountRef::New(_) => vec![],
    };
    match action {
        Action::Note(_) | Action::Invite { .. } => vec![],
        Action::Link { account, .. }
        | Action::EmailChange { account, .. }
        | Action::Deactivate { account, .. }
        | Action::Reactivate { account, .. }
        | Action::TeamLeave { account, .. }
        | Action::CoachUnassign { account, .. }
        | Action::RoleRevoke { account, .. } => vec![*account],
        Action::TeamJoin { account, .. }
        | Action::CoachAssign { account, .. }
        | Action::RoleGrant { account, .. } => existing(account),
        Action::Update(Update::Account { account, .. }) => vec![*account],
        Action::Update(
            Update::Membership { membership, .. } | Update::EmployeeId { membership, .. },
        ) => vec![AccountId(membership.0 - 1000)],
        Action::Update(Update::TeamName { .. }) => vec![],
    }
}

/// The existing team an action writes to, if any.
fn team_in(action: &Action) -> Option<TeamId> {
    match action {
        Action::TeamJoin {
            team: TeamRef::Existing(t),
            ..
        }
        | Action::CoachAssign {
            team: TeamRef::Existing(t),
            ..
        } => Some(*t),
        Action::TeamLeave { team, .. } | Action::CoachUnassign { team, .. } => Some(*team),
        Action::Update(Update::TeamName { team, .. }) => Some(*team),
        _ => None,
    }
}

/// A directory of `n` managed, active members `E001`… with addresses `p001@example.org`…, and
/// the full feed that matches it.
fn staff(n: i64) -> (Dir, Vec<HrRecord>) {
    let mut dir = directory();
    let mut feed = Vec::new();
    for i in 1..=n {
        let address = format!("p{i:03}@example.org");
        let id = format!("E{i:03}");
        dir = dir.account(i, &address).member(i, &id);
        feed.push(employee(&id, &address));
    }
    (dir, feed)
}

// ---------------------------------------------------------------------------------------------
// Invites
// ---------------------------------------------------------------------------------------------

#[test]
fn new_person_is_invited_with_an_activation_email() {
    let feed = [employee("E1", "jan@example.org")
        .names("Jan", "Jansen")
        .title("Verpleegkundige")];

    let plan = run(&feed, &directory().done(), &policy());

    let invites = of_for(&plan, ChangeKind::Invite, "E1");
    assert_eq!(invites.len(), 1, "{}", show(&plan));
    let Action::Invite {
        account,
        membership,
        notice,
    } = &invites[0].action
    else {
        panic!("an invite without an invite action: {:?}", invites[0]);
    };
    assert_eq!(account.email, email("jan@example.org"));
    assert_eq!(account.first_name.as_deref(), Some("Jan"));
    assert_eq!(account.last_name.as_deref(), Some("Jansen"));
    assert_eq!(membership.employee_id, eid("E1"));
    assert_eq!(membership.job_title.as_deref(), Some("Verpleegkundige"));
    assert_eq!(*notice, Notice::Activation);
    assert_eq!(actionable_kinds(&plan), vec![ChangeKind::Invite]);
    assert_eq!(plan.hold(), None);
}

#[test]
fn send_invites_false_creates_the_account_without_email() {
    let mut policy = policy();
    policy.send_invites = false;
    let feed = [employee("E1", "jan@example.org")];

    let plan = run(&feed, &directory().done(), &policy);

    let invites = of_for(&plan, ChangeKind::Invite, "E1");
    assert_eq!(invites.len(), 1, "{}", show(&plan));
    assert!(
        matches!(
            invites[0].action,
            Action::Invite {
                notice: Notice::None,
                ..
            }
        ),
        "{:?}",
        invites[0]
    );
}

// ---------------------------------------------------------------------------------------------
// Correlation and email changes
// ---------------------------------------------------------------------------------------------

#[test]
fn account_is_matched_by_employee_id_before_email() {
    // E1 is account 1; HR now gives E1 the address of account 2 (another organisation's
    // person). Matched by employee id, this is account 1 wanting a taken address, not a link
    // of account 2.
    let dir = directory()
        .account(1, "old@example.org")
        .member(1, "E1")
        .account(2, "jan@example.org")
        .done();
    let feed = [employee("E1", "jan@example.org")];

    let plan = run(&feed, &dir, &policy());

    assert!(of(&plan, ChangeKind::Link).is_empty(), "{}", show(&plan));
    assert!(of(&plan, ChangeKind::Invite).is_empty(), "{}", show(&plan));
    assert!(
        plan.changes
            .iter()
            .all(|c| !accounts_in(&c.action).contains(&AccountId(2))),
        "{}",
        show(&plan)
    );
    assert_eq!(
        of_for(&plan, ChangeKind::Conflict, "E1").len(),
        1,
        "{}",
        show(&plan)
    );
    assert!(
        of(&plan, ChangeKind::Deactivate).is_empty(),
        "{}",
        show(&plan)
    );
}

#[test]
fn changed_email_on_known_employee_id_is_an_email_change_not_leaver_and_hire() {
    let dir = directory()
        .account(1, "jan@old.example.org")
        .member(1, "E1")
        .done();
    let feed = [employee("E1", "jan@new.example.org")];

    let plan = run(&feed, &dir, &policy());

    assert_eq!(
        actionable_kinds(&plan),
        vec![ChangeKind::EmailChange],
        "{}",
        show(&plan)
    );
    let change = of_for(&plan, ChangeKind::EmailChange, "E1")[0];
    assert_eq!(change.field.as_deref(), Some("email"));
    assert_eq!(change.old.as_deref(), Some("jan@old.example.org"));
    assert_eq!(change.new.as_deref(), Some("jan@new.example.org"));
    assert_eq!(
        change.action,
        Action::EmailChange {
            account: AccountId(1),
            old: Box::new(email("jan@old.example.org")),
            new: Box::new(email("jan@new.example.org")),
            resend_activation: false,
        }
    );
}

#[test]
fn email_change_to_an_address_of_another_account_is_a_conflict_and_changes_nothing() {
    let dir = directory()
        .account(1, "jan@example.org")
        .member(1, "E1")
        .job_title(1, "Clerk")
        .account(2, "piet@example.org")
        .done();
    // Title changed too: nothing at all may change for this person.
    let feed = [employee("E1", "piet@example.org").title("Manager")];

    let plan = run(&feed, &dir, &policy());

    let conflicts = of_for(&plan, ChangeKind::Conflict, "E1");
    assert_eq!(conflicts.len(), 1, "{}", show(&plan));
    assert!(
        conflicts[0].reason.contains("piet@example.org"),
        "the report says why: {}",
        conflicts[0].reason
    );
    assert!(
        actionable_kinds(&plan).is_empty(),
        "nothing changes for that person: {}",
        show(&plan)
    );
}

#[test]
fn letter_case_only_change_is_not_an_email_change() {
    let dir = directory()
        .account(1, "jan.jansen@example.org")
        .member(1, "E1")
        .done();
    let feed = [employee("E1", "  Jan.Jansen@EXAMPLE.org ")];

    let plan = run(&feed, &dir, &policy());

    for kind in [
        ChangeKind::EmailChange,
        ChangeKind::Conflict,
        ChangeKind::Invite,
        ChangeKind::Link,
        ChangeKind::Deactivate,
    ] {
        assert!(of(&plan, kind).is_empty(), "{kind}: {}", show(&plan));
    }
}

#[test]
fn two_people_swapping_addresses_both_change() {
    let dir = directory()
        .account(1, "a@example.org")
        .member(1, "E1")
        .account(2, "b@example.org")
        .member(2, "E2")
        .done();
    let feed = [
        employee("E1", "b@example.org"),
        employee("E2", "a@example.org"),
    ];

    let plan = run(&feed, &dir, &policy());

    assert!(
        of(&plan, ChangeKind::Conflict).is_empty(),
        "{}",
        show(&plan)
    );
    let e1 = of_for(&plan, ChangeKind::EmailChange, "E1");
    let e2 = of_for(&plan, ChangeKind::EmailChange, "E2");
    assert_eq!((e1.len(), e2.len()), (1, 1), "{}", show(&plan));
    assert_eq!(e1[0].new.as_deref(), Some("b@example.org"));
    assert_eq!(e2[0].new.as_deref(), Some("a@example.org"));
}

#[test]
fn email_change_before_activation_resends_activation() {
    let dir = directory()
        .pending_account(1, "jan@old.example.org")
        .member(1, "E1")
        .done();
    let feed = [employee("E1", "jan@new.example.org")];

    let plan = run(&feed, &dir, &policy());

    let changes = of_for(&plan, ChangeKind::EmailChange, "E1");
    assert_eq!(changes.len(), 1, "{}", show(&plan));
    assert_eq!(
        changes[0].action,
        Action::EmailChange {
            account: AccountId(1),
            old: Box::new(email("jan@old.example.org")),
            new: Box::new(email("jan@new.example.org")),
            resend_activation: true,
        }
    );
}

// ---------------------------------------------------------------------------------------------
// Linking existing accounts
// ---------------------------------------------------------------------------------------------

#[test]
fn existing_account_from_another_organisation_is_linked_not_duplicated() {
    // Account 5 belongs to another organisation: no membership here.
    let dir = directory().account(5, "Piet@Example.org").done();
    let feed = [employee("E7", "piet@example.ORG")];

    let plan = run(&feed, &dir, &policy());

    assert!(of(&plan, ChangeKind::Invite).is_empty(), "{}", show(&plan));
    let links = of_for(&plan, ChangeKind::Link, "E7");
    assert_eq!(links.len(), 1, "{}", show(&plan));
    let Action::Link {
        account,
        existing,
        membership,
        ..
    } = &links[0].action
    else {
        panic!("{:?}", links[0]);
    };
    assert_eq!(*account, AccountId(5));
    assert_eq!(*existing, None);
    assert_eq!(membership.employee_id, eid("E7"));
}

#[test]
fn linking_an_activated_account_makes_it_active_with_added_notice() {
    let dir = directory().account(5, "piet@example.org").done();
    let feed = [employee("E7", "piet@example.org")];

    let plan = run(&feed, &dir, &policy());

    let links = of_for(&plan, ChangeKind::Link, "E7");
    assert_eq!(links.len(), 1, "{}", show(&plan));
    assert!(
        matches!(
            links[0].action,
            Action::Link {
                state: MembershipState::Active,
                notice: Notice::AddedToOrganisation,
                ..
            }
        ),
        "{:?}",
        links[0]
    );
}

#[test]
fn linking_an_account_not_yet_activated_invites_it_with_an_activation_email() {
    let dir = directory().pending_account(5, "piet@example.org").done();
    let feed = [employee("E7", "piet@example.org")];

    let plan = run(&feed, &dir, &policy());

    let links = of_for(&plan, ChangeKind::Link, "E7");
    assert_eq!(links.len(), 1, "{}", show(&plan));
    assert!(
        matches!(
            links[0].action,
            Action::Link {
                state: MembershipState::Invited,
                notice: Notice::Activation,
                ..
            }
        ),
        "{:?}",
        links[0]
    );
}

#[test]
fn member_by_hand_is_taken_over_without_notice() {
    let dir = directory()
        .account(5, "piet@example.org")
        .membership(5, MembershipState::Active, BY_HAND, None)
        .done();
    let feed = [employee("E7", "piet@example.org")];

    let plan = run(&feed, &dir, &policy());

    assert!(of(&plan, ChangeKind::Invite).is_empty(), "{}", show(&plan));
    let links = of_for(&plan, ChangeKind::Link, "E7");
    assert_eq!(links.len(), 1, "{}", show(&plan));
    let Action::Link {
        account,
        existing,
        membership,
        state,
        notice,
    } = &links[0].action
    else {
        panic!("{:?}", links[0]);
    };
    assert_eq!(*account, AccountId(5));
    assert_eq!(*existing, Some(mid(5)));
    assert_eq!(membership.employee_id, eid("E7"));
    assert_eq!(*state, MembershipState::Active);
    assert_eq!(*notice, Notice::None);
}

#[test]
fn membership_managed_by_another_connector_is_a_conflict() {
    let dir = directory()
        .account(5, "piet@example.org")
        .membership(5, MembershipState::Active, OTHER, Some("X-1"))
        .done();
    let feed = [employee("E7", "piet@example.org")];

    let plan = run(&feed, &dir, &policy());

    assert_eq!(
        of_for(&plan, ChangeKind::Conflict, "E7").len(),
        1,
        "{}",
        show(&plan)
    );
    assert!(actionable_kinds(&plan).is_empty(), "{}", show(&plan));
}

#[test]
fn accounts_no_record_matches_are_never_touched() {
    let dir = directory()
        .account(1, "jan@example.org")
        .member(1, "E1")
        .account(5, "stranger@example.org")
        .account(6, "helper@example.org")
        .membership(6, MembershipState::Active, BY_HAND, None)
        .done();
    let feed = [employee("E1", "jan@example.org")];

    let plan = run(&feed, &dir, &policy());

    assert!(plan.changes.is_empty(), "{}", show(&plan));
}

// ---------------------------------------------------------------------------------------------
// Dates, statuses and leavers
// ---------------------------------------------------------------------------------------------

#[test]
fn future_starter_is_scheduled_until_start_minus_invite_days() {
    let mut policy = policy();
    policy.invite_days_before_start = 5;
    let feed = [
        employee("E1", "one@example.org").starts(days(6)),
        employee("E2", "two@example.org").starts(days(5)),
        employee("E3", "three@example.org").starts(days(30)),
    ];

    let plan = run(&feed, &directory().done(), &policy);

    assert_eq!(of_for(&plan, ChangeKind::Scheduled, "E1").len(), 1);
    assert_eq!(of_for(&plan, ChangeKind::Scheduled, "E3").len(), 1);
    assert_eq!(of_for(&plan, ChangeKind::Invite, "E2").len(), 1);
    assert_eq!(of(&plan, ChangeKind::Invite).len(), 1, "{}", show(&plan));
    assert!(of_for(&plan, ChangeKind::Scheduled, "E2").is_empty());
}

#[test]
fn starter_is_invited_on_the_start_date_by_default() {
    let feed = [
        employee("E1", "today@example.org").starts(today()),
        employee("E2", "tomorrow@example.org").starts(days(1)),
    ];

    let plan = run(&feed, &directory().done(), &policy());

    assert_eq!(
        of_for(&plan, ChangeKind::Invite, "E1").len(),
        1,
        "{}",
        show(&plan)
    );
    assert_eq!(
        of_for(&plan, ChangeKind::Scheduled, "E2").len(),
        1,
        "{}",
        show(&plan)
    );
    assert!(of_for(&plan, ChangeKind::Invite, "E2").is_empty());
}

#[test]
fn future_start_date_wins_over_inactive_status() {
    // E1 is known and active; E2 is new. Both start later and HR already says `terminated`.
    let dir = directory()
        .account(1, "one@example.org")
        .member(1, "E1")
        .done();
    let feed = [
        employee("E1", "one@example.org")
            .starts(days(10))
            .status("terminated"),
        employee("E2", "two@example.org")
            .starts(days(10))
            .status("terminated"),
    ];

    let plan = run(&feed, &dir, &policy());

    assert_eq!(of_for(&plan, ChangeKind::Scheduled, "E1").len(), 1);
    assert_eq!(of_for(&plan, ChangeKind::Scheduled, "E2").len(), 1);
    assert!(
        of(&plan, ChangeKind::Deactivate).is_empty(),
        "{}",
        show(&plan)
    );
    assert!(
        of(&plan, ChangeKind::Quarantine).is_empty(),
        "{}",
        show(&plan)
    );
}

#[test]
fn leaver_is_deactivated_at_the_end_of_the_last_day() {
    let dir = directory()
        .account(1, "one@example.org")
        .member(1, "E1")
        .account(2, "two@example.org")
        .member(2, "E2")
        .done();
    let feed = [
        employee("E1", "one@example.org").ends(days(-1)),
        employee("E2", "two@example.org").ends(today()),
    ];

    // At noon on E2's last day only E1, whose last day was yesterday, has left.
    let noon = run(&feed, &dir, &policy());
    // At the end of the day (what `--as-of DATE` means) E2 has left too.
    let end_of_day = plan_at(&feed, &dir, &policy(), instant("2025-06-02T21:59:59Z"));

    let gone = of(&noon, ChangeKind::Deactivate);
    assert_eq!(gone.len(), 1, "{}", show(&noon));
    assert!(is_for(gone[0], "E1"));
    assert_eq!(
        gone[0].action,
        Action::Deactivate {
            membership: mid(1),
            account: AccountId(1),
        }
    );
    assert_eq!(
        of(&end_of_day, ChangeKind::Deactivate).len(),
        2,
        "{}",
        show(&end_of_day)
    );
}

#[test]
fn end_date_is_read_in_the_organisation_time_zone() {
    let dir = directory()
        .account(1, "one@example.org")
        .member(1, "E1")
        .done();
    let feed = [employee("E1", "one@example.org").ends(date("2025-06-02"))];

    // 2025-06-02 22:00 UTC is 2025-06-03 00:00 in Amsterdam: the last day has ended.
    let late = plan_at(&feed, &dir, &policy(), instant("2025-06-02T22:00:00Z"));
    assert_eq!(
        of_for(&late, ChangeKind::Deactivate, "E1").len(),
        1,
        "{}",
        show(&late)
    );

    // 2025-06-02 21:30 UTC is 23:30 in Amsterdam, still the last day.
    let early = plan_at(&feed, &dir, &policy(), instant("2025-06-02T21:30:00Z"));
    assert!(
        of(&early, ChangeKind::Deactivate).is_empty(),
        "{}",
        show(&early)
    );

    // In winter Amsterdam is one hour ahead: 2025-01-14 23:00 UTC is already 15 January.
    let winter = [employee("E1", "one@example.org").ends(date("2025-01-14"))];
    let plan = plan_at(&winter, &dir, &policy(), instant("2025-01-14T23:00:00Z"));
    assert_eq!(
        of(&plan, ChangeKind::Deactivate).len(),
        1,
        "{}",
        show(&plan)
    );
    let plan = plan_at(&winter, &dir, &policy(), instant("2025-01-14T22:30:00Z"));
    assert!(
        of(&plan, ChangeKind::Deactivate).is_empty(),
        "{}",
        show(&plan)
    );
}

#[test]
fn start_date_is_read_in_the_organisation_time_zone() {
    let feed = [employee("E1", "one@example.org").starts(date("2025-06-03"))];

    // Already 3 June in Amsterdam, still 2 June in UTC: the person starts today.
    let late = plan_at(
        &feed,
        &directory().done(),
        &policy(),
        instant("2025-06-02T22:30:00Z"),
    );
    assert_eq!(
        of_for(&late, ChangeKind::Invite, "E1").len(),
        1,
        "{}",
        show(&late)
    );

    let early = plan_at(
        &feed,
        &directory().done(),
        &policy(),
        instant("2025-06-02T21:30:00Z"),
    );
    assert_eq!(
        of_for(&early, ChangeKind::Scheduled, "E1").len(),
        1,
        "{}",
        show(&early)
    );
}

#[test]
fn future_end_date_leaves_the_status_to_decide() {
    let dir = directory()
        .account(1, "one@example.org")
        .member(1, "E1")
        .account(2, "two@example.org")
        .member(2, "E2")
        .done();
    let feed = [
        employee("E1", "one@example.org")
            .ends(days(10))
            .status("terminated"),
        employee("E2", "two@example.org")
            .ends(days(10))
            .status("active"),
    ];

    let plan = run(&feed, &dir, &policy());

    let gone = of(&plan, ChangeKind::Deactivate);
    assert_eq!(gone.len(), 1, "{}", show(&plan));
    assert!(is_for(gone[0], "E1"));
}

#[test]
fn leaver_is_deactivated_and_keeps_data() {
    let mut policy = policy();
    let mut nurse = rule("nurse");
    nurse.job_title = vec!["Nurse".into()];
    policy.roles = vec![nurse];
    let dir = directory()
        .account(1, "one@example.org")
        .member(1, "E1")
        .job_title(1, "Nurse")
        .team(10, "ops", "ops", HR)
        .team(11, "dev", "dev", HR)
        .in_team(1, 10, HR)
        .coach(1, 11, HR)
        .grant(1, "nurse", HR)
        .grant(1, "admin", BY_HAND)
        .done();
    let feed = [employee("E1", "one@example.org")
        .dept("ops")
        .title("Nurse")
        .status("inactive")];

    let plan = run(&feed, &dir, &policy);

    let actions: Vec<&Action> = plan.actionable().map(|c| &c.action).collect();
    assert_eq!(
        actions,
        vec![&Action::Deactivate {
            membership: mid(1),
            account: AccountId(1),
        }],
        "{}",
        show(&plan)
    );
}

#[test]
fn leaver_unknown_to_directory_is_ignored_without_a_report_line() {
    let feed = [
        employee("E9", "gone@example.org").ends(days(-10)),
        employee("E8", "left@example.org").status("terminated"),
    ];

    let plan = run(&feed, &directory().done(), &policy());

    assert!(plan.changes.is_empty(), "{}", show(&plan));
    assert_eq!(plan.hold(), None);
}

#[test]
fn inactive_status_makes_a_leaver() {
    let dir = directory()
        .account(1, "one@example.org")
        .member(1, "E1")
        .done();
    let feed = [employee("E1", "one@example.org").status("Terminated")];

    let plan = run(&feed, &dir, &policy());

    assert_eq!(
        of_for(&plan, ChangeKind::Deactivate, "E1").len(),
        1,
        "{}",
        show(&plan)
    );
}

#[test]
fn leaver_already_deactivated_gives_no_change() {
    let dir = directory()
        .account(1, "one@example.org")
        .membership(1, MembershipState::Deactivated, HR, Some("E1"))
        .done();
    let feed = [employee("E1", "one@example.org").ends(days(-40))];

    let plan = run(&feed, &dir, &policy());

    assert!(actionable_kinds(&plan).is_empty(), "{}", show(&plan));
}

#[test]
fn unknown_status_is_quarantined() {
    let dir = directory()
        .account(1, "one@example.org")
        .member(1, "E1")
        .done();
    let feed = [
        employee("E1", "one@example.org").status("sabbatical"),
        employee("E2", "two@example.org").status("sabbatical"),
        employee("E3", "three@example.org").status("Active"),
    ];

    let plan = run(&feed, &dir, &policy());

    for id in ["E1", "E2"] {
        let lines = of_for(&plan, ChangeKind::Quarantine, id);
        assert_eq!(lines.len(), 1, "{id}: {}", show(&plan));
        assert!(
            lines[0].reason.contains("sabbatical"),
            "{}",
            lines[0].reason
        );
    }
    assert!(
        of(&plan, ChangeKind::Deactivate).is_empty(),
        "{}",
        show(&plan)
    );
    assert!(of_for(&plan, ChangeKind::Invite, "E2").is_empty());
    assert_eq!(of_for(&plan, ChangeKind::Invite, "E3").len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Absence from the feed
// ---------------------------------------------------------------------------------------------

#[test]
fn absent_from_full_feed_is_deactivated() {
    let dir = directory()
        .account(1, "one@example.org")
        .member(1, "E1")
        .account(2, "two@example.org")
        .member(2, "E2")
        .done();
    let feed = [employee("E1", "one@example.org")];

    let plan = run(&feed, &dir, &policy());

    let gone = of(&plan, ChangeKind::Deactivate);
    assert_eq!(gone.len(), 1, "{}", show(&plan));
    assert!(is_for(gone[0], "E2"), "{:?}", gone[0]);
    assert_eq!(
        gone[0].action,
        Action::Deactivate {
            membership: mid(2),
            account: AccountId(2),
        }
    );
}

#[test]
fn absent_from_incremental_feed_means_nothing() {
    let mut policy = policy();
    policy.feed = FeedKind::Incremental;
    let dir = directory()
        .account(1, "one@example.org")
        .member(1, "E1")
        .account(2, "two@example.org")
        .member(2, "E2")
        .done();
    let feed = [employee("E1", "one@example.org")];

    let plan = run(&feed, &dir, &policy);

    assert!(plan.changes.is_empty(), "{}", show(&plan));
}

#[test]
fn unmanaged_account_is_never_deactivated() {
    let dir = directory()
        .account(1, "one@example.org")
        .member(1, "E1")
        .account(2, "byhand@example.org")
        .membership(2, MembershipState::Active, BY_HAND, None)
        .account(3, "other@example.org")
        .membership(3, MembershipState::Active, OTHER, Some("X-3"))
        .account(4, "elsewhere@example.org")
        .done();
    let feed = [employee("E1", "one@example.org")];

    let plan = run(&feed, &dir, &policy());

    assert!(
        of(&plan, ChangeKind::Deactivate).is_empty(),
        "{}",
        show(&plan)
    );
    assert!(actionable_kinds(&plan).is_empty(), "{}", show(&plan));
}

#[test]
fn membership_made_by_hand_is_never_deactivated() {
    // HR lists these people as leavers, but their memberships were made by hand.
    let dir = directory()
        .account(5, "five@example.org")
        .membership(5, MembershipState::Active, BY_HAND, None)
        .account(6, "six@example.org")
        .membership(6, MembershipState::Active, BY_HAND, Some("E6"))
        .done();
    let feed = [
        employee("E5", "five@example.org").status("inactive"),
        employee("E6", "six@example.org").ends(days(-1)),
    ];

    let plan = run(&feed, &dir, &policy());

    assert!(
        of(&plan, ChangeKind::Deactivate).is_empty(),
        "{}",
        show(&plan)
    );
}

// ---------------------------------------------------------------------------------------------
// Rehires
// ---------------------------------------------------------------------------------------------

#[test]
fn rehire_with_same_employee_id_reactivates_same_account() {
    let dir = directory()
        .account(1, "one@example.org")
        .membership(1, MembershipState::Deactivated, HR, Some("E1"))
        .done();
    let feed = [employee("E1", "one@example.org")];

    let plan = run(&feed, &dir, &policy());

    assert!(of(&plan, ChangeKind::Invite).is_empty(), "{}", show(&plan));
    assert!(of(&plan, ChangeKind::Link).is_empty(), "{}", show(&plan));
    let back = of_for(&plan, ChangeKind::Reactivate, "E1");
    assert_eq!(back.len(), 1, "{}", show(&plan));
    assert!(
        matches!(
            &back[0].action,
            Action::Reactivate { membership, account, state: MembershipState::Active, .. }
                if *membership == mid(1) && *account == AccountId(1)
        ),
        "{:?}",
        back[0]
    );
}

#[test]
fn rehire_under_new_employee_id_with_same_email_reactivates_and_updates_id() {
    let dir = directory()
        .account(1, "anna@example.org")
        .membership(1, MembershipState::Deactivated, HR, Some("E1"))
        .done();
    // The old, ended record sits beside the new one, as HR systems often keep it.
    let feed = [
        employee("E1", "anna@example.org").ends(days(-400)),
        employee("E2", "anna@example.org"),
    ];

    let plan = run(&feed, &dir, &policy());

    assert!(of(&plan, ChangeKind::Invite).is_empty(), "{}", show(&plan));
    assert!(
        of(&plan, ChangeKind::Quarantine).is_empty(),
        "{}",
        show(&plan)
    );
    let back = of(&plan, ChangeKind::Reactivate);
    assert_eq!(back.len(), 1, "{}", show(&plan));
    assert!(
        matches!(
            &back[0].action,
            Action::Reactivate { membership, account, state: MembershipState::Active, .. }
                if *membership == mid(1) && *account == AccountId(1)
        ),
        "{:?}",
        back[0]
    );
    let id_updated = plan.changes.iter().any(|c| match &c.action {
        Action::Update(Update::EmployeeId { membership, value }) => {
            *membership == mid(1) && *value == eid("E2")
        }
        Action::Reactivate { employee_id, .. } => *employee_id == eid("E2"),
        _ => false,
    });
    assert!(id_updated, "{}", show(&plan));
}

#[test]
fn rehire_never_activated_gets_invited_with_fresh_activation() {
    let dir = directory()
        .pending_account(1, "one@example.org")
        .membership(1, MembershipState::Deactivated, HR, Some("E1"))
        .done();
    let feed = [employee("E1", "one@example.org")];

    let plan = run(&feed, &dir, &policy());

    let back = of_for(&plan, ChangeKind::Reactivate, "E1");
    assert_eq!(back.len(), 1, "{}", show(&plan));
    assert!(
        matches!(
            back[0].action,
            Action::Reactivate {
                state: MembershipState::Invited,
                notice: Notice::Activation,
                ..
            }
        ),
        "{:?}",
        back[0]
    );
    assert!(of(&plan, ChangeKind::Invite).is_empty(), "{}", show(&plan));
}

// ---------------------------------------------------------------------------------------------
// Duplicates inside one feed
// ---------------------------------------------------------------------------------------------

#[test]
fn duplicate_employee_id_with_one_current_record_uses_it_and_ignores_leavers() {
    let dir = directory()
        .account(1, "one@example.org")
        .member(1, "E1")
        .job_title(1, "Clerk")
        .done();
    let feed = [
        employee("E1", "one@example.org")
            .title("Clerk")
            .ends(days(-30)),
        employee("E1", "one@example.org").title("Nurse"),
        employee("E5", "five@example.org").status("terminated"),
        employee("E5", "five@example.org"),
    ];

    let plan = run(&feed, &dir, &policy());

    assert!(
        of(&plan, ChangeKind::Quarantine).is_empty(),
        "{}",
        show(&plan)
    );
    assert!(
        of(&plan, ChangeKind::Deactivate).is_empty(),
        "{}",
        show(&plan)
    );
    let updates = of_for(&plan, ChangeKind::Update, "E1");
    assert_eq!(updates.len(), 1, "{}", show(&plan));
    assert_eq!(updates[0].new.as_deref(), Some("Nurse"));
    assert_eq!(of(&plan, ChangeKind::Invite).len(), 1, "{}", show(&plan));
    assert_eq!(of_for(&plan, ChangeKind::Invite, "E5").len(), 1);
}

#[test]
fn duplicate_email_with_two_current_records_quarantines_both() {
    let feed = [
        employee("E1", "shared@example.org"),
        employee("E2", "Shared@Example.org"),
    ];

    let plan = run(&feed, &directory().done(), &policy());

    assert_eq!(of_for(&plan, ChangeKind::Quarantine, "E1").len(), 1);
    assert_eq!(of_for(&plan, ChangeKind::Quarantine, "E2").len(), 1);
    assert!(actionable_kinds(&plan).is_empty(), "{}", show(&plan));
}

#[test]
fn duplicate_employee_id_with_two_current_records_quarantines_both() {
    let dir = directory()
        .account(1, "one@example.org")
        .member(1, "E1")
        .done();
    let feed = [
        employee("E1", "one@example.org"),
        employee("E1", "other@example.org"),
    ];

    let plan = run(&feed, &dir, &policy());

    assert_eq!(
        of_for(&plan, ChangeKind::Quarantine, "E1").len(),
        2,
        "{}",
        show(&plan)
    );
    assert!(actionable_kinds(&plan).is_empty(), "{}", show(&plan));
}

#[test]
fn duplicate_leaver_records_are_quarantined_and_deactivate_nobody() {
    // Not exactly one of them is current: every record involved is quarantined.
    let dir = directory()
        .account(1, "one@example.org")
        .member(1, "E1")
        .done();
    let feed = [
        employee("E1", "one@example.org").ends(days(-5)),
        employee("E1", "one@example.org").status("terminated"),
    ];

    let plan = run(&feed, &dir, &policy());

    assert_eq!(
        of_for(&plan, ChangeKind::Quarantine, "E1").len(),
        2,
        "{}",
        show(&plan)
    );
    assert!(
        of(&plan, ChangeKind::Deactivate).is_empty(),
        "{}",
        show(&plan)
    );
}

#[test]
fn rest_of_feed_is_synced_despite_duplicates() {
    let feed = [
        employee("E1", "shared@example.org"),
        employee("E2", "shared@example.org"),
        employee("E3", "three@example.org").dept("ops"),
    ];

    let plan = run(&feed, &directory().done(), &policy());

    assert_eq!(
        of(&plan, ChangeKind::Quarantine).len(),
        2,
        "{}",
        show(&plan)
    );
    assert_eq!(
        of_for(&plan, ChangeKind::Invite, "E3").len(),
        1,
        "{}",
        show(&plan)
    );
    assert_eq!(of_for(&plan, ChangeKind::TeamJoin, "E3").len(), 1);
    assert!(of_for(&plan, ChangeKind::Invite, "E1").is_empty());
    assert!(of_for(&plan, ChangeKind::Invite, "E2").is_empty());
}

// ---------------------------------------------------------------------------------------------
// Quarantine
// ---------------------------------------------------------------------------------------------

#[test]
fn record_without_email_is_quarantined() {
    let feed = [
        employee_without_email("E1"),
        employee("E2", "not an address"),
        employee("E3", "three@example.org"),
    ];

    let plan = run(&feed, &directory().done(), &policy());

    assert_eq!(of_for(&plan, ChangeKind::Quarantine, "E1").len(), 1);
    assert_eq!(of_for(&plan, ChangeKind::Quarantine, "E2").len(), 1);
    assert_eq!(
        actionable_kinds(&plan),
        vec![ChangeKind::Invite],
        "{}",
        show(&plan)
    );
    assert_eq!(of_for(&plan, ChangeKind::Invite, "E3").len(), 1);
}

#[test]
fn quarantined_known_person_is_neither_updated_nor_deactivated() {
    let dir = directory()
        .account(1, "one@example.org")
        .names(1, "Jan", "Jansen")
        .member(1, "E1")
        .done();
    let feed = [employee_without_email("E1").names("Johannes", "Jansen")];

    let plan = run(&feed, &dir, &policy());

    assert_eq!(of_for(&plan, ChangeKind::Quarantine, "E1").len(), 1);
    assert!(actionable_kinds(&plan).is_empty(), "{}", show(&plan));
}

fn nurse_policy() -> Policy {
    let mut policy = policy();
    let mut nurse = rule("nurse");
    nurse.job_title = vec!["*verpleegkundige".into()];
    nurse.require = vec![Requirement::named("big_number")];
    policy.roles = vec![nurse];
    policy
}

#[test]
fn nurse_without_big_number_is_quarantined_others_synced() {
    let feed = [
        employee("E1", "nurse@example.org").title("Wijkverpleegkundige"),
        employee("E2", "clerk@example.org").title("Secretaresse"),
    ];

    let plan = run(&feed, &directory().done(), &nurse_policy());

    let lines = of_for(&plan, ChangeKind::Quarantine, "E1");
    assert_eq!(lines.len(), 1, "{}", show(&plan));
    assert!(
        lines[0].reason.contains("big_number"),
        "{}",
        lines[0].reason
    );
    assert!(
        plan.actionable().all(|c| !is_for(c, "E1")),
        "{}",
        show(&plan)
    );
    assert_eq!(of_for(&plan, ChangeKind::Invite, "E2").len(), 1);
}

#[test]
fn big_number_must_be_eleven_digits() {
    let feed = [
        employee("E1", "ten@example.org")
            .title("Verpleegkundige")
            .attr("big_number", "1234567890"),
        employee("E2", "eleven@example.org")
            .title("Verpleegkundige")
            .attr("big_number", "12345678901"),
        employee("E3", "letter@example.org")
            .title("Verpleegkundige")
            .attr("big_number", "1234567890a"),
        employee("E4", "twelve@example.org")
            .title("Verpleegkundige")
            .attr("big_number", "123456789012"),
    ];

    let plan = run(&feed, &directory().done(), &nurse_policy());

    for id in ["E1", "E3", "E4"] {
        assert_eq!(
            of_for(&plan, ChangeKind::Quarantine, id).len(),
            1,
            "{id}: {}",
            show(&plan)
        );
    }
    assert!(of_for(&plan, ChangeKind::Quarantine, "E2").is_empty());
    assert_eq!(of_for(&plan, ChangeKind::Invite, "E2").len(), 1);
    let grants = of_for(&plan, ChangeKind::RoleGrant, "E2");
    assert_eq!(grants.len(), 1, "{}", show(&plan));
    assert_eq!(grants[0].new.as_deref(), Some("nurse"));
}

// ---------------------------------------------------------------------------------------------
// Teams and coaches
// ---------------------------------------------------------------------------------------------

fn joins(plan: &Plan, id: &str) -> Vec<TeamRef> {
    of_for(plan, ChangeKind::TeamJoin, id)
        .into_iter()
        .map(|c| match &c.action {
            Action::TeamJoin { team, .. } => team.clone(),
            other => panic!("{other:?}"),
        })
        .collect()
}

fn coached(plan: &Plan, id: &str) -> Vec<TeamRef> {
    of_for(plan, ChangeKind::CoachAssign, id)
        .into_iter()
        .map(|c| match &c.action {
            Action::CoachAssign { team, .. } => team.clone(),
            other => panic!("{other:?}"),
        })
        .collect()
}

fn new_team(k: &str, name: &str) -> TeamRef {
    TeamRef::New(std::sync::Arc::new(NewTeam {
        key: key(k),
        name: name.to_string(),
    }))
}

#[test]
fn department_becomes_team_and_members_join() {
    let feed = [
        employee("E1", "one@example.org").dept_named("ops", "Operations"),
        employee("E2", "two@example.org").dept_named("ops", "Operations"),
    ];

    let plan = run(&feed, &directory().done(), &policy());

    assert_eq!(joins(&plan, "E1"), vec![new_team("ops", "Operations")]);
    assert_eq!(joins(&plan, "E2"), vec![new_team("ops", "Operations")]);
    assert!(matches!(
        &of_for(&plan, ChangeKind::TeamJoin, "E1")[0].action,
        Action::TeamJoin { account: AccountRef::New(k), .. } if k == "one@example.org"
    ));
}

#[test]
fn existing_team_of_the_connector_is_joined() {
    let dir = directory()
        .account(1, "one@example.org")
        .member(1, "E1")
        .team(10, "ops", "Operations", HR)
        .done();
    let feed = [employee("E1", "one@example.org").dept_named("ops", "Operations")];

    let plan = run(&feed, &dir, &policy());

    assert_eq!(joins(&plan, "E1"), vec![TeamRef::Existing(TeamId(10))]);
    assert_eq!(
        actionable_kinds(&plan),
        vec![ChangeKind::TeamJoin],
        "{}",
        show(&plan)
    );
}

#[test]
fn manager_becomes_coach_of_subordinates_team() {
    let feed = [
        employee("E1", "one@example.org").dept("ops").manager("E9"),
        employee("E9", "boss@example.org").dept("mgmt"),
    ];

    let plan = run(&feed, &directory().done(), &policy());

    assert_eq!(coached(&plan, "E9"), vec![new_team("ops", "ops")]);
    assert!(coached(&plan, "E1").is_empty());
    assert_eq!(joins(&plan, "E9"), vec![new_team("mgmt", "mgmt")]);
    assert_eq!(joins(&plan, "E1"), vec![new_team("ops", "ops")]);
}

#[test]
fn manager_in_same_department_is_coach_not_member() {
    let feed = [
        employee("E1", "one@example.org").dept("ops").manager("E9"),
        employee("E9", "boss@example.org").dept("ops"),
    ];

    let plan = run(&feed, &directory().done(), &policy());

    assert_eq!(coached(&plan, "E9"), vec![new_team("ops", "ops")]);
    assert!(joins(&plan, "E9").is_empty(), "{}", show(&plan));
    assert_eq!(joins(&plan, "E1"), vec![new_team("ops", "ops")]);
    let line = of_for(&plan, ChangeKind::CoachAssign, "E9")[0];
    assert!(
        line.reason.contains("member"),
        "the report says the coach is not a member: {}",
        line.reason
    );
}

#[test]
fn manager_who_was_member_leaves_the_team_they_now_coach() {
    let dir = directory()
        .account(1, "one@example.org")
        .member(1, "E1")
        .account(9, "boss@example.org")
        .member(9, "E9")
        .team(10, "ops", "ops", HR)
        .in_team(1, 10, HR)
        .in_team(9, 10, HR)
        .done();
    let feed = [
        employee("E1", "one@example.org").dept("ops").manager("E9"),
        employee("E9", "boss@example.org").dept("ops"),
    ];

    let plan = run(&feed, &dir, &policy());

    assert_eq!(coached(&plan, "E9"), vec![TeamRef::Existing(TeamId(10))]);
    let leaves = of_for(&plan, ChangeKind::TeamLeave, "E9");
    assert_eq!(leaves.len(), 1, "{}", show(&plan));
    assert_eq!(
        leaves[0].action,
        Action::TeamLeave {
            account: AccountId(9),
            team: TeamId(10),
        }
    );
    assert!(of_for(&plan, ChangeKind::TeamLeave, "E1").is_empty());
}

#[test]
fn quarantined_manager_makes_nobody_coach() {
    let feed = [
        employee("E1", "one@example.org").dept("ops").manager("E9"),
        employee_without_email("E9").dept("mgmt"),
    ];

    let plan = run(&feed, &directory().done(), &policy());

    assert!(
        of(&plan, ChangeKind::CoachAssign).is_empty(),
        "{}",
        show(&plan)
    );
    assert_eq!(joins(&plan, "E1"), vec![new_team("ops", "ops")]);
    let line = of_for(&plan, ChangeKind::Quarantine, "E9");
    assert_eq!(line.len(), 1, "{}", show(&plan));
    assert!(
        line[0].reason.contains("coach"),
        "the report says the manager is no coach: {}",
        line[0].reason
    );
}

#[test]
fn manager_outside_feed_is_no_coach() {
    // E9 has an account made by hand but is not in the feed; E8 is nowhere.
    let dir = directory()
        .account(9, "boss@example.org")
        .membership(9, MembershipState::Active, BY_HAND, Some("E9"))
        .done();
    let feed = [
        employee("E1", "one@example.org").dept("ops").manager("E9"),
        employee("E2", "two@example.org").dept("dev").manager("E8"),
    ];

    let plan = run(&feed, &dir, &policy());

    assert!(
        of(&plan, ChangeKind::CoachAssign).is_empty(),
        "{}",
        show(&plan)
    );
    assert!(
        plan.changes
            .iter()
            .all(|c| !accounts_in(&c.action).contains(&AccountId(9))),
        "{}",
        show(&plan)
    );
}

#[test]
fn manager_outside_feed_is_named_in_the_report() {
    // The rule: "a manager without an account (quarantined, out of scope) is no coach; the report
    // says so."
    let feed = [employee("E1", "one@example.org").dept("ops").manager("E8")];

    let plan = run(&feed, &directory().done(), &policy());

    assert!(
        plan.changes.iter().any(|c| c.reason.contains("E8")),
        "no line says that manager E8 is no coach of team ops:\n{}",
        show(&plan)
    );
}

#[test]
fn scheduled_manager_is_no_coach_yet() {
    let feed = [
        employee("E1", "one@example.org").dept("ops").manager("E9"),
        employee("E9", "boss@example.org")
            .dept("mgmt")
            .starts(days(20)),
    ];

    let plan = run(&feed, &directory().done(), &policy());

    assert!(
        of(&plan, ChangeKind::CoachAssign).is_empty(),
        "{}",
        show(&plan)
    );
    assert_eq!(of_for(&plan, ChangeKind::Scheduled, "E9").len(), 1);
}

#[test]
fn manager_coaches_every_team_of_their_reports() {
    let feed = [
        employee("E1", "one@example.org").dept("ops").manager("E9"),
        employee("E2", "two@example.org").dept("dev").manager("E9"),
        employee("E9", "boss@example.org").dept("mgmt"),
    ];

    let plan = run(&feed, &directory().done(), &policy());

    let mut teams = coached(&plan, "E9");
    teams.sort();
    assert_eq!(teams, vec![new_team("dev", "dev"), new_team("ops", "ops")]);
}

#[test]
fn manager_in_conflict_makes_nobody_coach() {
    // E9's address belongs to an account that another connector manages here.
    let dir = directory()
        .account(5, "boss@example.org")
        .membership(5, MembershipState::Active, OTHER, Some("X-5"))
        .done();
    let feed = [
        employee("E1", "one@example.org").dept("ops").manager("E9"),
        employee("E9", "boss@example.org").dept("mgmt"),
    ];

    let plan = run(&feed, &dir, &policy());

    assert_eq!(
        of_for(&plan, ChangeKind::Conflict, "E9").len(),
        1,
        "{}",
        show(&plan)
    );
    assert!(
        of(&plan, ChangeKind::CoachAssign).is_empty(),
        "{}",
        show(&plan)
    );
}

#[test]
fn teams_can_come_from_a_cost_centre() {
    let mut policy = policy();
    policy.teams_from = TeamSource::Attribute("cost_centre".into());
    let feed = [employee("E1", "one@example.org")
        .dept("ops")
        .attr("cost_centre", "CC-42")];

    let plan = run(&feed, &directory().done(), &policy);

    assert_eq!(joins(&plan, "E1"), vec![new_team("CC-42", "CC-42")]);
}

#[test]
fn moving_department_leaves_old_team_and_joins_new() {
    let dir = directory()
        .account(1, "one@example.org")
        .member(1, "E1")
        .team(10, "ops", "ops", HR)
        .team(11, "dev", "dev", HR)
        .in_team(1, 10, HR)
        .done();
    let feed = [employee("E1", "one@example.org").dept("dev")];

    let plan = run(&feed, &dir, &policy());

    let leaves = of_for(&plan, ChangeKind::TeamLeave, "E1");
    assert_eq!(leaves.len(), 1, "{}", show(&plan));
    assert_eq!(
        leaves[0].action,
        Action::TeamLeave {
            account: AccountId(1),
            team: TeamId(10),
        }
    );
    assert_eq!(joins(&plan, "E1"), vec![TeamRef::Existing(TeamId(11))]);
}

#[test]
fn coach_who_no_longer_manages_anyone_in_the_team_is_unassigned() {
    let dir = directory()
        .account(9, "boss@example.org")
        .member(9, "E9")
        .team(10, "ops", "ops", HR)
        .coach(9, 10, HR)
        .done();
    let feed = [employee("E9", "boss@example.org")];

    let plan = run(&feed, &dir, &policy());

    let lines = of_for(&plan, ChangeKind::CoachUnassign, "E9");
    assert_eq!(lines.len(), 1, "{}", show(&plan));
    assert_eq!(
        lines[0].action,
        Action::CoachUnassign {
            account: AccountId(9),
            team: TeamId(10),
        }
    );
}

#[test]
fn team_made_by_hand_is_untouched() {
    // A choir and an "ops" team, both made by hand; HR has a department `ops` too.
    let dir = directory()
        .account(1, "one@example.org")
        .member(1, "E1")
        .team(7, "choir", "Choir", BY_HAND)
        .team(8, "ops", "Ops (ours)", BY_HAND)
        .in_team(1, 7, BY_HAND)
        .in_team(1, 8, BY_HAND)
        .done();
    let feed = [employee("E1", "one@example.org").dept_named("ops", "Operations")];

    let plan = run(&feed, &dir, &policy());

    assert!(
        plan.changes
            .iter()
            .all(|c| !matches!(team_in(&c.action), Some(TeamId(7 | 8)))),
        "{}",
        show(&plan)
    );
    assert!(
        of(&plan, ChangeKind::TeamLeave).is_empty(),
        "{}",
        show(&plan)
    );
}

#[test]
fn coach_assigned_by_hand_is_untouched() {
    let dir = directory()
        .account(1, "one@example.org")
        .member(1, "E1")
        .team(10, "ops", "ops", HR)
        .coach(1, 10, BY_HAND)
        .done();
    // E1 manages nobody in HR.
    let feed = [employee("E1", "one@example.org").dept("dev")];

    let plan = run(&feed, &dir, &policy());

    assert!(
        of(&plan, ChangeKind::CoachUnassign).is_empty(),
        "{}",
        show(&plan)
    );
}

#[test]
fn coach_by_hand_is_not_also_made_member_of_that_team() {
    // "A person is never both member and coach of one team: the coach assignment wins."
    let dir = directory()
        .account(1, "one@example.org")
        .member(1, "E1")
        .team(10, "ops", "ops", HR)
        .coach(1, 10, BY_HAND)
        .done();
    let feed = [employee("E1", "one@example.org").dept("ops")];

    let plan = run(&feed, &dir, &policy());

    assert!(
        !joins(&plan, "E1").contains(&TeamRef::Existing(TeamId(10))),
        "{}",
        show(&plan)
    );
    assert!(
        of(&plan, ChangeKind::CoachUnassign).is_empty(),
        "{}",
        show(&plan)
    );
}

#[test]
fn team_of_the_connector_follows_the_department_name() {
    let dir = directory()
        .account(1, "one@example.org")
        .member(1, "E1")
        .team(10, "ops", "Ops", HR)
        .in_team(1, 10, HR)
        .done();
    let feed = [employee("E1", "one@example.org").dept_named("ops", "Operations")];

    let plan = run(&feed, &dir, &policy());

    let renames: Vec<&Change> = plan
        .changes
        .iter()
        .filter(|c| matches!(c.action, Action::Update(Update::TeamName { .. })))
        .collect();
    assert_eq!(renames.len(), 1, "{}", show(&plan));
    assert_eq!(
        renames[0].action,
        Action::Update(Update::TeamName {
            team: TeamId(10),
            name: "Operations".into(),
        })
    );
}

// ---------------------------------------------------------------------------------------------
// Roles
// ---------------------------------------------------------------------------------------------

#[test]
fn role_rule_grants_role() {
    let mut policy = policy();
    let mut planner = rule("planner");
    planner.department = vec!["ops".into()];
    policy.roles = vec![planner];
    let dir = directory()
        .account(1, "one@example.org")
        .member(1, "E1")
        .done();
    let feed = [
        employee("E1", "one@example.org").dept("ops"),
        employee("E2", "two@example.org").dept("ops"),
        employee("E3", "three@example.org").dept("dev"),
    ];

    let plan = run(&feed, &dir, &policy);

    let e1 = of_for(&plan, ChangeKind::RoleGrant, "E1");
    assert_eq!(e1.len(), 1, "{}", show(&plan));
    assert_eq!(
        e1[0].action,
        Action::RoleGrant {
            account: AccountRef::Existing(AccountId(1)),
            role: "planner".into(),
        }
    );
    assert_eq!(of_for(&plan, ChangeKind::RoleGrant, "E2").len(), 1);
    assert!(of_for(&plan, ChangeKind::RoleGrant, "E3").is_empty());
}

#[test]
fn role_no_longer_matching_is_revoked() {
    let mut policy = policy();
    let mut nurse = rule("nurse");
    nurse.job_title = vec!["Nurse".into()];
    policy.roles = vec![nurse];
    let dir = directory()
        .account(1, "one@example.org")
        .member(1, "E1")
        .grant(1, "nurse", HR)
        .done();
    let feed = [employee("E1", "one@example.org").title("Clerk")];

    let plan = run(&feed, &dir, &policy);

    let revokes = of_for(&plan, ChangeKind::RoleRevoke, "E1");
    assert_eq!(revokes.len(), 1, "{}", show(&plan));
    assert_eq!(
        revokes[0].action,
        Action::RoleRevoke {
            account: AccountId(1),
            role: "nurse".into(),
        }
    );
}

#[test]
fn role_granted_by_hand_is_never_revoked() {
    let mut policy = policy();
    let mut nurse = rule("nurse");
    nurse.job_title = vec!["Nurse".into()];
    policy.roles = vec![nurse];
    let dir = directory()
        .account(1, "one@example.org")
        .member(1, "E1")
        .grant(1, "nurse", BY_HAND)
        .grant(1, "admin", BY_HAND)
        .done();
    let feed = [employee("E1", "one@example.org").title("Clerk")];

    let plan = run(&feed, &dir, &policy);

    assert!(
        of(&plan, ChangeKind::RoleRevoke).is_empty(),
        "{}",
        show(&plan)
    );
}

// ---------------------------------------------------------------------------------------------
// Field ownership
// ---------------------------------------------------------------------------------------------

fn update_of<'p>(plan: &'p Plan, id: &str, field: &str) -> Vec<&'p Change> {
    of_for(plan, ChangeKind::Update, id)
        .into_iter()
        .filter(|c| c.field.as_deref() == Some(field))
        .collect()
}

#[test]
fn hris_field_edited_locally_is_overwritten_with_old_and_new_in_report() {
    let dir = directory()
        .account(1, "one@example.org")
        .names(1, "Johnny", "Jansen")
        .member(1, "E1")
        .job_title(1, "Team lead (acting)")
        .done();
    let feed = [employee("E1", "one@example.org")
        .names("Jan", "Jansen")
        .title("Nurse")];

    let plan = run(&feed, &dir, &policy());

    let first = update_of(&plan, "E1", "first_name");
    assert_eq!(first.len(), 1, "{}", show(&plan));
    assert_eq!(first[0].old.as_deref(), Some("Johnny"));
    assert_eq!(first[0].new.as_deref(), Some("Jan"));
    assert_eq!(
        first[0].action,
        Action::Update(Update::Account {
            account: AccountId(1),
            field: AccountField::FirstName,
            value: Some("Jan".into()),
        })
    );
    let title = update_of(&plan, "E1", "job_title");
    assert_eq!(title.len(), 1, "{}", show(&plan));
    assert_eq!(title[0].old.as_deref(), Some("Team lead (acting)"));
    assert_eq!(title[0].new.as_deref(), Some("Nurse"));
    assert!(update_of(&plan, "E1", "last_name").is_empty());
}

#[test]
fn local_field_is_set_only_at_creation() {
    let mut policy = policy();
    policy.ownership.insert(Field::JobTitle, Ownership::Local);
    policy.ownership.insert(Field::FirstName, Ownership::Local);
    let dir = directory()
        .account(1, "one@example.org")
        .names(1, "Johnny", "Jansen")
        .member(1, "E1")
        .job_title(1, "Local title")
        .done();
    let feed = [
        employee("E1", "one@example.org")
            .names("Jan", "Jansen")
            .title("Nurse"),
        employee("E2", "two@example.org")
            .names("Piet", "Pietersen")
            .title("Nurse"),
    ];

    let plan = run(&feed, &dir, &policy);

    assert!(
        update_of(&plan, "E1", "job_title").is_empty(),
        "{}",
        show(&plan)
    );
    assert!(
        update_of(&plan, "E1", "first_name").is_empty(),
        "{}",
        show(&plan)
    );
    let invites = of_for(&plan, ChangeKind::Invite, "E2");
    assert_eq!(invites.len(), 1, "{}", show(&plan));
    let Action::Invite {
        account,
        membership,
        ..
    } = &invites[0].action
    else {
        panic!("{:?}", invites[0]);
    };
    assert_eq!(account.first_name.as_deref(), Some("Piet"));
    assert_eq!(membership.job_title.as_deref(), Some("Nurse"));
}

#[test]
fn user_after_activation_field_stops_updating_once_activated() {
    let mut policy = policy();
    policy
        .ownership
        .insert(Field::FirstName, Ownership::UserAfterActivation);
    let dir = directory()
        .account(1, "one@example.org")
        .names(1, "Johnny", "Jansen")
        .member(1, "E1")
        .pending_account(2, "two@example.org")
        .names(2, "Pietje", "Pietersen")
        .member(2, "E2")
        .done();
    let feed = [
        employee("E1", "one@example.org").names("Jan", "Jansen"),
        employee("E2", "two@example.org").names("Piet", "Pietersen"),
    ];

    let plan = run(&feed, &dir, &policy);

    assert!(
        update_of(&plan, "E1", "first_name").is_empty(),
        "{}",
        show(&plan)
    );
    let e2 = update_of(&plan, "E2", "first_name");
    assert_eq!(e2.len(), 1, "{}", show(&plan));
    assert_eq!(e2[0].new.as_deref(), Some("Piet"));
}

#[test]
fn display_name_made_from_the_names_is_never_updated_past_their_owner() {
    // First and last name belong to the person once activated; the display name is derived.
    let mut policy = policy();
    for field in [Field::FirstName, Field::LastName] {
        policy
            .ownership
            .insert(field, Ownership::UserAfterActivation);
    }
    let dir = directory()
        .account(1, "one@example.org")
        .names(1, "Ann", "Smit")
        .member(1, "E1")
        .done();
    let feed = [employee("E1", "one@example.org").names("Annie", "Smit-Bos")];

    let plan = run(&feed, &dir, &policy);

    assert!(
        update_of(&plan, "E1", "display_name").is_empty(),
        "{}",
        show(&plan)
    );
    assert!(update_of(&plan, "E1", "first_name").is_empty());
}

#[test]
fn derived_display_name_follows_hr_names_whatever_its_own_owner() {
    // The display name's own owner applies only to a display name HR gives.
    let mut policy = policy();
    policy
        .ownership
        .insert(Field::DisplayName, Ownership::UserAfterActivation);
    let dir = directory()
        .account(1, "one@example.org")
        .names(1, "Ann", "Smit")
        .member(1, "E1")
        .done();
    let derived = [employee("E1", "one@example.org").names("Annie", "Smit")];
    let mut given = employee("E1", "one@example.org").names("Annie", "Smit");
    given.display_name = Some("Annie S.".to_string());

    let from_names = run(&derived, &dir, &policy);
    let from_hr = run(&[given], &dir, &policy);

    let update = update_of(&from_names, "E1", "display_name");
    assert_eq!(update.len(), 1, "{}", show(&from_names));
    assert_eq!(update[0].new.as_deref(), Some("Annie Smit"));
    assert!(
        update_of(&from_hr, "E1", "display_name").is_empty(),
        "{}",
        show(&from_hr)
    );
}

// ---------------------------------------------------------------------------------------------
// Safety
// ---------------------------------------------------------------------------------------------

#[test]
fn empty_feed_is_held() {
    let (dir, _) = staff(2);

    let plan = run(&[], &dir.done(), &policy());
    assert_eq!(
        plan.hold().map(|h| h.code),
        Some(Code::EmptyFeed),
        "{}",
        show(&plan)
    );

    let plan = run(&[], &directory().done(), &policy());
    assert_eq!(plan.hold().map(|h| h.code), Some(Code::EmptyFeed));

    let mut incremental = policy();
    incremental.feed = FeedKind::Incremental;
    let plan = run(&[], &directory().done(), &incremental);
    assert_eq!(plan.hold().map(|h| h.code), Some(Code::EmptyFeed));
}

#[test]
fn more_than_25_deactivations_are_held() {
    // 26 of 300 is under 10%: only the absolute limit holds it.
    let (dir, feed) = staff(300);

    let plan = run(&feed[26..], &dir.done(), &policy());

    assert_eq!(of(&plan, ChangeKind::Deactivate).len(), 26);
    assert_eq!(
        plan.hold().map(|h| h.code),
        Some(Code::MassDeactivation),
        "{:?}",
        plan.holds
    );
}

#[test]
fn twenty_five_deactivations_of_three_hundred_are_not_held() {
    let (dir, feed) = staff(300);

    let plan = run(&feed[25..], &dir.done(), &policy());

    assert_eq!(of(&plan, ChangeKind::Deactivate).len(), 25);
    assert_eq!(plan.hold(), None);
}

#[test]
fn four_deactivations_of_thirty_are_held() {
    let (dir, feed) = staff(30);

    let plan = run(&feed[4..], &dir.done(), &policy());

    assert_eq!(of(&plan, ChangeKind::Deactivate).len(), 4);
    assert_eq!(
        plan.hold().map(|h| h.code),
        Some(Code::MassDeactivation),
        "{:?}",
        plan.holds
    );
}

#[test]
fn three_deactivations_are_not_held() {
    // 3 of 10 is 30%, but not more than 3 people.
    let (dir, feed) = staff(10);

    let plan = run(&feed[3..], &dir.done(), &policy());

    assert_eq!(of(&plan, ChangeKind::Deactivate).len(), 3);
    assert_eq!(plan.hold(), None);
}

#[test]
fn four_deactivations_of_forty_are_not_held() {
    // Exactly 10% does not exceed 10%.
    let (dir, feed) = staff(40);

    let plan = run(&feed[4..], &dir.done(), &policy());

    assert_eq!(of(&plan, ChangeKind::Deactivate).len(), 4);
    assert_eq!(plan.hold(), None);
}

#[test]
fn leavers_by_status_and_date_count_towards_the_threshold() {
    let (dir, mut feed) = staff(30);
    feed[0] = feed[0].clone().status("terminated");
    feed[1] = feed[1].clone().status("inactive");
    feed[2] = feed[2].clone().ends(days(-1));
    feed[3] = feed[3].clone().ends(days(-2));

    let plan = run(&feed, &dir.done(), &policy());

    assert_eq!(
        of(&plan, ChangeKind::Deactivate).len(),
        4,
        "{}",
        show(&plan)
    );
    assert_eq!(plan.hold().map(|h| h.code), Some(Code::MassDeactivation));
}

#[test]
fn deactivated_memberships_are_not_managed_for_the_threshold() {
    // 35 live and 10 deactivated memberships: 4 of 35 is over 10% (4 of 45 would not be).
    let (mut dir, feed) = staff(35);
    for i in 100..110 {
        dir = dir.account(i, &format!("old{i}@example.org")).membership(
            i,
            MembershipState::Deactivated,
            HR,
            Some(&format!("OLD{i}")),
        );
    }

    let plan = run(&feed[4..], &dir.done(), &policy());

    assert_eq!(plan.managed_memberships, 35);
    assert_eq!(
        of(&plan, ChangeKind::Deactivate).len(),
        4,
        "{}",
        show(&plan)
    );
    assert_eq!(plan.hold().map(|h| h.code), Some(Code::MassDeactivation));
}

#[test]
fn held_plan_still_lists_every_change() {
    let (dir, feed) = staff(30);
    let mut feed = feed[4..].to_vec();
    feed.push(employee("E999", "new@example.org"));

    let plan = run(&feed, &dir.done(), &policy());

    assert!(plan.hold().is_some());
    let gone: Vec<&str> = of(&plan, ChangeKind::Deactivate)
        .iter()
        .filter_map(|c| c.employee_id.as_ref().map(|e| e.as_str()))
        .collect();
    assert_eq!(gone, vec!["E001", "E002", "E003", "E004"]);
    assert_eq!(of_for(&plan, ChangeKind::Invite, "E999").len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Idempotence and determinism
// ---------------------------------------------------------------------------------------------

#[test]
fn directory_in_step_with_the_feed_gives_no_actionable_change() {
    let mut policy = policy();
    let mut nurse = rule("nurse");
    nurse.job_title = vec!["Nurse".into()];
    policy.roles = vec![nurse];
    policy.invite_days_before_start = 0;
    let dir = directory()
        .account(1, "jan@example.org")
        .names(1, "Jan", "Jansen")
        .member(1, "E1")
        .job_title(1, "Nurse")
        .account(9, "boss@example.org")
        .names(9, "Bea", "Baas")
        .member(9, "E9")
        .job_title(9, "Manager")
        .account(3, "gone@example.org")
        .membership(3, MembershipState::Deactivated, HR, Some("E3"))
        .team(10, "ops", "Operations", HR)
        .in_team(1, 10, HR)
        .coach(9, 10, HR)
        .grant(1, "nurse", HR)
        .grant(9, "admin", BY_HAND)
        .done();
    let feed = [
        employee("E1", "jan@example.org")
            .names("Jan", "Jansen")
            .title("Nurse")
            .dept_named("ops", "Operations")
            .manager("E9"),
        employee("E9", "boss@example.org")
            .names("Bea", "Baas")
            .title("Manager")
            .dept_named("ops", "Operations"),
        employee("E3", "gone@example.org").ends(days(-100)),
        employee("E4", "later@example.org").starts(days(40)),
    ];

    let plan = run(&feed, &dir, &policy);

    assert!(actionable_kinds(&plan).is_empty(), "{}", show(&plan));
    assert_eq!(plan.hold(), None);
}

/// A feed that exercises most steps, without duplicates.
fn rich_case() -> (Vec<HrRecord>, Directory, Policy) {
    let mut policy = nurse_policy();
    let mut planner = rule("planner");
    planner.department = vec!["ops".into()];
    policy.roles.push(planner);
    let dir = directory()
        .account(1, "a@example.org")
        .member(1, "E1")
        .account(2, "b@example.org")
        .member(2, "E2")
        .account(3, "c@example.org")
        .member(3, "E3")
        .account(4, "d@example.org")
        .member(4, "E4")
        .account(5, "linked@example.org")
        .team(10, "ops", "ops", HR)
        .in_team(3, 10, HR)
        .done();
    let feed = vec![
        employee("E1", "b@example.org").dept("ops").manager("E9"),
        employee("E2", "a@example.org").dept("dev").manager("E9"),
        employee("E3", "c@example.org").status("inactive"),
        employee("E5", "linked@example.org").dept("ops"),
        employee("E6", "nurse@example.org").title("Verpleegkundige"),
        employee("E7", "future@example.org").starts(days(9)),
        employee("E8", "new@example.org").dept("dev").manager("E1"),
        employee("E9", "boss@example.org").dept("ops"),
        employee_without_email("E10"),
    ];
    (feed, dir, policy)
}

#[test]
fn shuffled_feed_gives_the_same_plan() {
    let (feed, dir, policy) = rich_case();
    let expected = run(&feed, &dir, &policy);

    let mut reversed = feed.clone();
    reversed.reverse();
    assert_eq!(run(&reversed, &dir, &policy), expected);

    for k in 1..feed.len() {
        let mut rotated = feed.clone();
        rotated.rotate_left(k);
        assert_eq!(run(&rotated, &dir, &policy), expected, "rotated by {k}");
    }
}

#[test]
fn shuffled_duplicates_give_the_same_plan() {
    let feed = vec![
        employee("E1", "one@example.org"),
        employee("E1", "other@example.org"),
    ];
    let mut reversed = feed.clone();
    reversed.reverse();
    let dir = directory().done();

    let forward = run(&feed, &dir, &policy());
    let backward = run(&reversed, &dir, &policy());

    assert_eq!(
        forward,
        backward,
        "forward:\n{}backward:\n{}",
        show(&forward),
        show(&backward)
    );
}

/// A small random record drawn from small pools, so that ids, emails and managers collide.
fn arb_record() -> impl Strategy<Value = HrRecord> {
    (
        0..6usize,
        prop::option::of(0..6usize),
        any::<bool>(),
        prop::option::of(0..3usize),
        prop::option::of(0..6usize),
        prop::option::of(0..4usize),
        prop::option::of(-2i64..3),
        prop::option::of(-2i64..3),
        prop::option::of(0..3usize),
        any::<bool>(),
    )
        .prop_map(
            |(id, mail, upper, dept, manager, status, start, end, title, big)| {
                let id = format!("E{id}");
                let mut record = match mail {
                    Some(m) => {
                        let address = format!("p{m}@example.org");
                        employee(
                            &id,
                            &if upper {
                                address.to_uppercase()
                            } else {
                                address
                            },
                        )
                    }
                    None => employee_without_email(&id),
                };
                if let Some(d) = dept {
                    record = record.dept(["ops", "dev", "hq"][d]);
                }
                if let Some(m) = manager {
                    record = record.manager(&format!("E{m}"));
                }
                if let Some(s) = status {
                    record = record.status(["active", "inactive", "terminated", "on leave"][s]);
                }
                if let Some(s) = start {
                    record = record.starts(days(s));
                }
                if let Some(e) = end {
                    record = record.ends(days(e));
                }
                if let Some(t) = title {
                    record = record.title(["Verpleegkundige", "Clerk", "Manager"][t]);
                }
                if big {
                    record = record.attr("big_number", "12345678901");
                }
                record
            },
        )
}

fn arb_feed_and_shuffle() -> impl Strategy<Value = (Vec<HrRecord>, Vec<HrRecord>)> {
    prop::collection::vec(arb_record(), 0..8)
        .prop_flat_map(|feed| (Just(feed.clone()), Just(feed).prop_shuffle()))
}

/// The directory the random feeds are planned against: managed members E0–E2 (E2 deactivated),
/// a member by hand, an account of another organisation, a team with a member and a coach.
fn arb_directory() -> Directory {
    directory()
        .account(1, "p0@example.org")
        .member(1, "E0")
        .pending_account(2, "p1@example.org")
        .member(2, "E1")
        .account(3, "p2@example.org")
        .membership(3, MembershipState::Deactivated, HR, Some("E2"))
        .account(4, "p3@example.org")
        .membership(4, MembershipState::Active, BY_HAND, None)
        .account(5, "p4@example.org")
        .team(10, "ops", "ops", HR)
        .in_team(1, 10, HR)
        .coach(2, 10, HR)
        .grant(1, "nurse", HR)
        .done()
}

proptest! {
    // Only `src/planner/tests.rs` belongs to these tests: no regression file is written.
    #![proptest_config(ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn plan_is_deterministic_for_any_feed_order((feed, shuffled) in arb_feed_and_shuffle()) {
        let dir = arb_directory();
        let mut policy = nurse_policy();
        policy.invite_days_before_start = 1;
        let expected = run(&feed, &dir, &policy);
        let got = run(&shuffled, &dir, &policy);
        prop_assert_eq!(
            &got,
            &expected,
            "feed order changed the plan:\nfirst:\n{}shuffled:\n{}",
            show(&expected),
            show(&got)
        );
    }
}

#[test]
fn profile_kept_by_another_connector_is_not_overwritten() {
    let dir = directory()
        .account(1, "one@example.org")
        .names(1, "Old", "Name")
        .member(1, "E1")
        .profile_kept_by(1, "other_hr")
        .done();
    let feed = [employee("E1", "new@example.org")
        .names("New", "Name")
        .title("Nurse")];

    let plan = run(&feed, &dir, &policy());

    assert!(
        of(&plan, ChangeKind::EmailChange).is_empty(),
        "{}",
        show(&plan)
    );
    assert!(
        !plan
            .changes
            .iter()
            .any(|c| c.field.as_deref() == Some("first_name")),
        "{}",
        show(&plan)
    );
    let conflict = of(&plan, ChangeKind::Conflict);
    assert_eq!(conflict.len(), 1, "{}", show(&plan));
    assert!(conflict[0].reason.contains("other_hr"));
    assert_eq!(
        of(&plan, ChangeKind::Update).len(),
        1,
        "the membership's own fields still follow HR: {}",
        show(&plan)
    );
}

#[test]
fn a_rehire_through_the_older_membership_takes_the_profile_back_in_the_same_plan() {
    // Our membership (1001) is older than the other connector's that keeps the profile now.
    let dir = directory()
        .account(1, "old@example.org")
        .names(1, "Old", "Name")
        .membership(1, MembershipState::Deactivated, HR, Some("E1"))
        .profile_kept_through(1, "other_hr", 5000)
        .done();
    let feed = [employee("E1", "new@example.org").names("New", "Name")];

    let plan = run(&feed, &dir, &policy());

    assert_eq!(
        of(&plan, ChangeKind::Reactivate).len(),
        1,
        "{}",
        show(&plan)
    );
    assert_eq!(
        of(&plan, ChangeKind::EmailChange).len(),
        1,
        "{}",
        show(&plan)
    );
    assert_eq!(
        update_of(&plan, "E1", "first_name").len(),
        1,
        "{}",
        show(&plan)
    );
    assert!(
        of(&plan, ChangeKind::Conflict).is_empty(),
        "{}",
        show(&plan)
    );
}

#[test]
fn a_rehire_through_a_newer_membership_leaves_the_profile_where_it_is() {
    let dir = directory()
        .account(1, "old@example.org")
        .names(1, "Old", "Name")
        .membership(1, MembershipState::Deactivated, HR, Some("E1"))
        .profile_kept_through(1, "other_hr", 7)
        .done();
    let feed = [employee("E1", "new@example.org").names("New", "Name")];

    let plan = run(&feed, &dir, &policy());

    assert_eq!(
        of(&plan, ChangeKind::Reactivate).len(),
        1,
        "{}",
        show(&plan)
    );
    assert!(
        of(&plan, ChangeKind::EmailChange).is_empty(),
        "{}",
        show(&plan)
    );
    assert!(
        update_of(&plan, "E1", "first_name").is_empty(),
        "{}",
        show(&plan)
    );
}

#[test]
fn rehire_under_new_id_is_recognised_when_the_old_record_has_another_email() {
    let dir = directory()
        .account(1, "anna@example.org")
        .membership(1, MembershipState::Deactivated, HR, Some("E1"))
        .done();
    // HR replaced the work address of the old, ended record with a private one.
    let feed = [
        employee("E1", "anna.private@example.net").ends(days(-400)),
        employee("E2", "anna@example.org"),
    ];

    let plan = run(&feed, &dir, &policy());

    assert!(
        of(&plan, ChangeKind::Conflict).is_empty(),
        "{}",
        show(&plan)
    );
    assert!(of(&plan, ChangeKind::Invite).is_empty(), "{}", show(&plan));
    assert_eq!(
        of(&plan, ChangeKind::Reactivate).len(),
        1,
        "{}",
        show(&plan)
    );
}

#[test]
fn rehire_with_changed_email_before_activation_sends_one_activation() {
    let dir = directory()
        .pending_account(1, "anna@example.org")
        .membership(1, MembershipState::Deactivated, HR, Some("E1"))
        .done();
    let feed = [employee("E1", "anna.new@example.org")];

    let plan = run(&feed, &dir, &policy());

    let activations = plan
        .changes
        .iter()
        .filter(|c| match &c.action {
            Action::EmailChange {
                resend_activation, ..
            } => *resend_activation,
            Action::Reactivate { notice, .. } => *notice == Notice::Activation,
            _ => false,
        })
        .count();
    assert_eq!(activations, 1, "{}", show(&plan));
    assert_eq!(of(&plan, ChangeKind::Reactivate).len(), 1);
}

#[test]
fn manager_keeping_a_coach_link_by_ownership_is_not_also_member() {
    let mut policy = policy();
    policy.ownership.insert(Field::Coach, Ownership::Local);
    let dir = directory()
        .account(1, "boss@example.org")
        .member(1, "E1")
        .account(2, "staff@example.org")
        .member(2, "E2")
        .team(10, "ops", "ops", HR)
        .coach(1, 10, HR)
        .in_team(2, 10, HR)
        .done();
    let feed = [
        employee("E1", "boss@example.org").dept("ops"),
        employee("E2", "staff@example.org")
            .dept("ops")
            .manager("E1"),
    ];

    let plan = run(&feed, &dir, &policy);

    assert!(
        !of(&plan, ChangeKind::TeamJoin)
            .iter()
            .any(|c| is_for(c, "E1")),
        "{}",
        show(&plan)
    );
}

#[test]
fn an_old_leaver_record_does_not_deactivate_someone_whose_own_record_is_in_the_feed() {
    // E2's ended record carries the address of E6's account; E6's own record is in the feed.
    let dir = directory()
        .pending_account(1, "six@example.org")
        .member(1, "E6")
        .done();
    let leaver = employee("E2", "six@example.org").ends(date("2026-01-31"));
    let current = employee("E6", "six@example.org");

    let plan = run(&[leaver, current], &dir, &policy());

    assert!(
        of(&plan, ChangeKind::Deactivate).is_empty(),
        "{}",
        show(&plan)
    );
}

#[test]
fn nobody_takes_a_quarantined_persons_account_by_email() {
    // E6 is quarantined (two ended records share an address, neither current); a new id
    // with E6's account address must not take that account over.
    let dir = directory()
        .pending_account(1, "six@example.org")
        .member(1, "E6")
        .done();
    let feed = [
        employee("E6", "one@example.org").status("inactive"),
        employee("E0", "one@example.org").status("inactive"),
        employee("E9", "six@example.org"),
    ];

    let plan = run(&feed, &dir, &policy());

    assert_eq!(
        of(&plan, ChangeKind::Quarantine).len(),
        2,
        "{}",
        show(&plan)
    );
    assert!(
        update_of(&plan, "E9", "employee_id").is_empty(),
        "{}",
        show(&plan)
    );
    assert!(
        of(&plan, ChangeKind::Deactivate).is_empty(),
        "{}",
        show(&plan)
    );
}

#[test]
fn a_plan_of_many_changes_keeps_their_order_across_blocks() {
    // Arrange: more changes than two blocks hold, each with its number as reason.
    let count = 2 * plan::BLOCK + 3;
    let change = |n: usize| Change {
        employee_id: None,
        email: None,
        field: None,
        old: None,
        new: None,
        reason: n.to_string(),
        action: Action::Note(Note::Scheduled),
    };

    // Act
    let changes: Changes = (0..count).map(change).collect();

    // Assert
    assert_eq!(changes.len(), count);
    let reasons: Vec<usize> = changes.iter().map(|c| c.reason.parse().unwrap()).collect();
    assert_eq!(reasons, (0..count).collect::<Vec<_>>());
    assert_eq!(
        changes.get(plan::BLOCK).map(|c| c.reason.as_str()),
        Some("4096")
    );
    assert_eq!(changes.get(count), None);
    let block_lengths: Vec<usize> = changes.blocks().map(<[Change]>::len).collect();
    assert_eq!(block_lengths, [plan::BLOCK, plan::BLOCK, 3]);
    assert!(Changes::new().is_empty());
}
