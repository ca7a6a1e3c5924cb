//! Property: for random HR feeds applied to random directory states, applying a plan and then
//! planning again against the same feed gives no actionable change, and no email address ever
//! ends up with two accounts.
//!
//! Directory states are reached the way production reaches them: earlier feeds of two
//! connectors in two organisations applied through the real store (SQLite), and some people
//! activating their accounts with the tokens the outbox issues. Feeds are drawn from a small
//! pool of ids, emails, departments and managers so that duplicates, email changes, swaps,
//! conflicts, links, rehires, leavers and future starters all come up often.

// A test stops at the first thing that is not as expected.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;

use chrono::{NaiveDate, TimeZone, Utc};
use hrsync::domain::{Department, Email, EmployeeId, HrRecord, TeamKey};
use hrsync::planner::{
    self, FeedKind, Field, Ownership, Policy, Requirement, RoleRule, Thresholds,
};
use hrsync::store::{ApplyRun, Store};
use proptest::prelude::*;

#[derive(Clone, Debug)]
struct Person {
    id: u8,
    email: Option<(u8, bool)>,
    department: Option<u8>,
    manager: Option<u8>,
    nurse: bool,
    big: u8,
    start: u8,
    end: u8,
    status: u8,
}

fn person() -> impl Strategy<Value = Person> {
    (
        0u8..7,
        prop::option::weighted(0.93, (0u8..7, any::<bool>())),
        prop::option::weighted(0.85, 0u8..3),
        prop::option::weighted(0.7, 0u8..7),
        any::<bool>(),
        0u8..3,
        0u8..4,
        0u8..4,
        0u8..8,
    )
        .prop_map(
            |(id, email, department, manager, nurse, big, start, end, status)| Person {
                id,
                email,
                department,
                manager,
                nurse,
                big,
                start,
                end,
                status,
            },
        )
}

#[derive(Clone, Debug)]
struct Step {
    connector: bool,
    people: Vec<Person>,
    activate: Vec<bool>,
}

fn step() -> impl Strategy<Value = Step> {
    (
        any::<bool>(),
        prop::collection::vec(person(), 0..9),
        prop::collection::vec(any::<bool>(), 12),
    )
        .prop_map(|(connector, people, activate)| Step {
            connector,
            people,
            activate,
        })
}

#[derive(Clone, Debug)]
struct Settings {
    send_invites: bool,
    invite_days: u32,
    display_owner: u8,
    team_owner: u8,
}

fn settings() -> impl Strategy<Value = Settings> {
    (any::<bool>(), 0u32..4, 0u8..3, 0u8..3).prop_map(
        |(send_invites, invite_days, display_owner, team_owner)| Settings {
            send_invites,
            invite_days,
            display_owner,
            team_owner,
        },
    )
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("a date")
}

fn record(p: &Person) -> HrRecord {
    const NAMES: [&str; 7] = ["Anna", "Bert", "Çelik", "Dirk", "Zoë", "Finn", "Søren"];
    let email = match p.email {
        None => Email::parse(""),
        Some((n, upper)) => {
            let text = format!("person{n}@zorg.example");
            Email::parse(&if upper { text.to_uppercase() } else { text })
        }
    };
    let mut r = HrRecord::new(
        EmployeeId::parse(&format!("E{}", p.id)).expect("an id"),
        email,
    );
    r.first_name = Some(NAMES[p.id as usize % NAMES.len()].to_string());
    r.last_name = Some(format!("Person {}", p.email.map(|e| e.0).unwrap_or(9)));
    r.department = p.department.map(|d| Department {
        key: TeamKey::parse(&format!("D{d}")).expect("a key"),
        name: format!("Department {d}"),
    });
    r.manager_id = p.manager.and_then(|m| EmployeeId::parse(&format!("E{m}")));
    r.job_title = Some(if p.nurse { "Nurse" } else { "Helper" }.to_string());
    match p.big {
        0 => {}
        1 => {
            r.attributes
                .insert("big_number".into(), "12345678901".into());
        }
        _ => {
            r.attributes.insert("big_number".into(), "123".into());
        }
    }
    r.start_date = match p.start {
        0 => None,
        1 => Some(date(2020, 1, 1)),
        2 => Some(date(2026, 11, 25)),
        _ => Some(date(2027, 6, 1)),
    };
    r.end_date = match p.end {
        0 | 1 => None,
        2 => Some(date(2026, 1, 31)),
        _ => Some(date(2027, 1, 31)),
    };
    r.status = Some(
        match p.status {
            0 => "inactive",
            1 => "on leave",
            _ => "active",
        }
        .to_string(),
    );
    r
}

fn owner(n: u8) -> Ownership {
    match n {
        0 => Ownership::Hris,
        1 => Ownership::Local,
        _ => Ownership::UserAfterActivation,
    }
}

fn policy(connector: &str, s: &Settings) -> Policy {
    let mut p = Policy::new(
        connector.parse().expect("an id"),
        chrono_tz::Europe::Amsterdam,
    );
    p.feed = FeedKind::Full;
    p.send_invites = s.send_invites;
    p.invite_days_before_start = s.invite_days;
    p.ownership = BTreeMap::from([
        (Field::DisplayName, owner(s.display_owner)),
        (Field::Team, owner(s.team_owner)),
    ]);
    p.roles = vec![
        RoleRule {
            role: "employee".into(),
            job_title: vec![],
            department: vec![],
            employment_type: vec![],
            require: vec![],
        },
        RoleRule {
            role: "nurse".into(),
            job_title: vec!["nurse".into()],
            department: vec![],
            employment_type: vec![],
            require: vec![Requirement::named("big_number")],
        },
    ];
    p.thresholds = Thresholds {
        max_deactivations: usize::MAX,
        max_deactivation_ratio: 1.0,
        min_deactivations_for_ratio: usize::MAX,
    };
    p
}

async fn run_case(steps: Vec<Step>, settings: Settings) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().expect("a temp dir");
    let url = format!("sqlite://{}", dir.path().join("p.db").display());
    let store = Store::connect(&url, 2).await.expect("a database");
    store.migrate().await.expect("migrations");
    let now = Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap();
    let orgs = [
        store
            .upsert_organisation("one", "One", "Europe/Amsterdam", "en", now)
            .await
            .expect("org"),
        store
            .upsert_organisation("two", "Two", "Europe/Amsterdam", "nl", now)
            .await
            .expect("org"),
    ];
    let connectors = ["hr_one", "hr_two"];
    let mut last = None;
    for step in &steps {
        let which = usize::from(step.connector);
        let (org, connector) = (&orgs[which], connectors[which]);
        let policy = policy(connector, &settings);
        let records: Vec<HrRecord> = step.people.iter().map(record).collect();
        let emails: Vec<String> = records
            .iter()
            .filter_map(|r| r.email.as_ref().ok().map(|e| e.key().to_string()))
            .collect();
        let directory = store.load_directory(org.id, &emails).await.expect("load");
        let plan = planner::plan(&records, &directory, &policy, now);
        if plan.hold().is_none() {
            let run_id = store
                .start_run(&hrsync::store::NewRun {
                    organisation_id: org.id,
                    connector,
                    trigger: hrsync::domain::Trigger::Command,
                    mode: hrsync::domain::RunMode::Apply,
                    as_of: now,
                    started_at: now,
                    scheduled_for: None,
                })
                .await
                .expect("run");
            let run = ApplyRun {
                run_id,
                organisation: org,
                connector,
                status: hrsync::domain::RunStatus::Succeeded,
                records_fetched: records.len(),
                missing_email: 0,
                now,
                feed: None,
                digest_to: &[],
            };
            store
                .apply_plan(&run, &plan)
                .await
                .map_err(|e| TestCaseError::fail(format!("apply failed: {e}")))?;
            last = Some((which, records, policy));
        }
        // Some people activate their accounts, with the tokens the outbox issues.
        let mails = store
            .claim_due_mail(now, std::time::Duration::from_secs(60), 100)
            .await
            .expect("claim");
        for (i, mail) in mails.iter().enumerate() {
            if mail.kind == "activation" && step.activate[i % step.activate.len()] {
                let hash = format!("{:064x}", mail.id);
                store
                    .issue_activation_token(mail, &hash, now, now + chrono::Duration::days(14))
                    .await
                    .expect("token");
                store.activate(&hash, now).await.expect("activate");
            }
            store.mark_mail_sent(mail.id, now).await.expect("sent");
        }
    }
    if let Some((which, records, policy)) = last {
        let emails: Vec<String> = records
            .iter()
            .filter_map(|r| r.email.as_ref().ok().map(|e| e.key().to_string()))
            .collect();
        let directory = store
            .load_directory(orgs[which].id, &emails)
            .await
            .expect("load");
        let again = planner::plan(&records, &directory, &policy, now);
        let actionable: Vec<_> = again.actionable().collect();
        prop_assert!(
            actionable.is_empty(),
            "planning again after apply gave actionable changes: {actionable:#?}"
        );
        let users = store.list_users(&Default::default()).await.expect("users");
        let mut by_email: BTreeMap<String, std::collections::BTreeSet<i64>> = BTreeMap::new();
        for u in &users {
            by_email
                .entry(u.email.to_lowercase())
                .or_default()
                .insert(u.account_id);
        }
        for (email, accounts) in by_email {
            prop_assert!(
                accounts.len() == 1,
                "{email} has several accounts: {accounts:?}"
            );
        }
    }
    store.close().await;
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, max_shrink_iters: 200, ..ProptestConfig::default() })]

    #[test]
    fn apply_then_plan_again_gives_no_actionable_change(
        steps in prop::collection::vec(step(), 1..5),
        settings in settings(),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        runtime.block_on(run_case(steps, settings))?;
    }
}

fn someone(id: u8, email: u8, start: u8, end: u8, status: u8) -> Person {
    Person {
        id,
        email: Some((email, false)),
        department: None,
        manager: None,
        nurse: false,
        big: 0,
        start,
        end,
        status,
    }
}

fn step_of(people: Vec<Person>) -> Step {
    Step {
        connector: true,
        people,
        activate: vec![false; 12],
    }
}

#[tokio::test]
async fn a_leaver_record_carrying_another_persons_email_does_not_keep_them_in_the_feed() {
    // E2 leaves; E4 joins with person6@; then a rehire takes E2's account by email under
    // E3, while HR's ended E2 record now carries person6@, and E4 is gone from the feed.
    let steps = vec![
        step_of(vec![someone(2, 4, 0, 0, 2)]),
        step_of(vec![someone(4, 6, 0, 0, 2)]),
        step_of(vec![someone(3, 4, 2, 0, 0), someone(2, 6, 0, 2, 0)]),
    ];
    let settings = Settings {
        send_invites: false,
        invite_days: 2,
        display_owner: 0,
        team_owner: 0,
    };

    let outcome = run_case(steps, settings).await;

    assert!(outcome.is_ok(), "{outcome:?}");
}
