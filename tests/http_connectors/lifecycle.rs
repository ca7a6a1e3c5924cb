//! What a tenant's records do in a sync, for every shipped definition: the records a
//! definition reads from a tenant without custom fields are planned as a run would plan them
//! on 2026-12-05, against a directory where each leaver still has an account. A leaver is
//! deactivated by date, a future starter is scheduled, managers become coaches, and an empty
//! list is held (HR101).

use chrono::{NaiveDate, TimeZone, Utc};
use hrsync::domain::{
    Account, AccountId, Code, Directory, HrRecord, Membership, MembershipId, MembershipState,
};
use hrsync::planner::{ChangeKind, Policy, plan};

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 12, 5).unwrap()
}

fn policy() -> Policy {
    Policy::new("hr".parse().unwrap(), chrono_tz::Europe::Amsterdam)
}

/// A directory where every leaver of `records` (an end date before today) with a usable
/// email has an active account of this connector, as an earlier run made it.
fn with_leavers_active(records: &[HrRecord]) -> Directory {
    let mut directory = Directory::default();
    for (n, record) in records
        .iter()
        .filter(|r| r.end_date.is_some_and(|d| d < today()))
        .enumerate()
    {
        let Ok(email) = &record.email else { continue };
        let id = i64::try_from(n).unwrap() + 1;
        directory.accounts.push(Account {
            id: AccountId(id),
            email: email.clone(),
            first_name: record.first_name.clone(),
            last_name: record.last_name.clone(),
            display_name: record.display_name.clone(),
            activated_at: Some(Utc.with_ymd_and_hms(2024, 1, 1, 9, 0, 0).unwrap()),
            profile_owner: Some("hr".parse().unwrap()),
            profile_owner_membership: Some(MembershipId(id)),
        });
        directory.memberships.push(Membership {
            id: MembershipId(id),
            account_id: AccountId(id),
            state: MembershipState::Active,
            connector: Some("hr".parse().unwrap()),
            employee_id: Some(record.employee_id.clone()),
            job_title: record.job_title.clone(),
            location: record.location.clone(),
            employment_type: record.employment_type.clone(),
        });
    }
    directory
}

/// Plans `records` as a sync on 2026-12-05 would, and checks the lifecycle every tenant of a
/// system needs: the cast must hold a leaver, a future starter and a manager.
pub fn assert_lifecycle(system: &str, records: &[HrRecord]) {
    let as_of = Utc.with_ymd_and_hms(2026, 12, 5, 12, 0, 0).unwrap();
    let directory = with_leavers_active(records);

    let planned = plan(records, &directory, &policy(), as_of);

    let ids = |kind: ChangeKind| -> Vec<String> {
        planned
            .changes
            .iter()
            .filter(|c| c.kind() == kind)
            .filter_map(|c| c.employee_id.as_ref().map(|e| e.as_str().to_string()))
            .collect()
    };
    let leavers: Vec<String> = directory
        .memberships
        .iter()
        .filter_map(|m| m.employee_id.as_ref().map(|e| e.as_str().to_string()))
        .collect();
    assert!(
        !leavers.is_empty(),
        "{system}: the cast has a leaver with an email"
    );
    for leaver in &leavers {
        assert!(
            ids(ChangeKind::Deactivate).contains(leaver),
            "{system}: leaver {leaver} is deactivated by date: {:#?}",
            planned.changes
        );
    }
    let starters: Vec<&str> = records
        .iter()
        .filter(|r| r.start_date.is_some_and(|d| d > today()) && r.email.is_ok())
        .map(|r| r.employee_id.as_str())
        .collect();
    assert!(
        !starters.is_empty(),
        "{system}: the cast has a future starter"
    );
    for starter in starters {
        assert!(
            ids(ChangeKind::Scheduled).iter().any(|s| s == starter),
            "{system}: future starter {starter} is scheduled: {:#?}",
            planned.changes
        );
        assert!(!ids(ChangeKind::Invite).iter().any(|s| s == starter));
    }
    assert!(
        planned.count(ChangeKind::CoachAssign) >= 1,
        "{system}: managers become coaches: {:#?}",
        planned.changes
    );
    assert!(planned.hold().is_none(), "{system}: {:?}", planned.hold());

    let empty = plan(&[], &directory, &policy(), as_of);
    assert_eq!(
        empty.hold().map(|h| h.code),
        Some(Code::EmptyFeed),
        "{system}: an empty list is held"
    );
}
