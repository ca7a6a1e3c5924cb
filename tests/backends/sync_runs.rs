//! Whole runs against a real database: what a sync writes, holds, refuses and sends.

use chrono::{DateTime, Utc};
use hrsync::domain::{FetchKind, RunStatus};
use hrsync::mail::outbox::token_hash;
use hrsync::store::{OutboxMail, TokenState, UserFilter};
use hrsync::sync::App;

use crate::support::{
    SmtpSink, TestEnv, actionable, count, eml_files, mails_to, rows, staff, token_in,
};

/// Anna leads Care and manages Bert, Cora and Dirk; Dirk leads Planning and will manage Eva,
/// who starts next year. Cora is a nurse without a BIG number; Finn has no email.
pub const BASE: [&str; 6] = [
    "E1,anna@zorg.example,Anna,Aalbers,CARE,Care,,Team lead,2020-01-01,,active,",
    "E2,bert@zorg.example,Bert,Bos,CARE,Care,E1,Nurse,2021-01-01,,active,12345678901",
    "E3,cora@zorg.example,Cora,Çelik,CARE,Care,E1,Nurse,2021-01-01,,active,",
    "E4,dirk@zorg.example,Dirk,Dekker,PLAN,Planning,E1,Planner,2022-01-01,,active,",
    "E5,eva@zorg.example,Eva,Ester,PLAN,Planning,E4,Planner,2027-06-01,,active,",
    "E6,,Finn,Fokker,PLAN,Planning,E4,Planner,2022-01-01,,active,",
];

const TODAY: &str = "2026-11-23";

fn with(base: &[&str], replace: &[(&str, &str)]) -> Vec<String> {
    base.iter()
        .map(|row| {
            let id = row.split(',').next().unwrap_or_default();
            replace
                .iter()
                .find(|(rid, _)| *rid == id)
                .map(|(_, new)| new.to_string())
                .unwrap_or_else(|| row.to_string())
        })
        .collect()
}

pub async fn example_sync_invites_links_schedules_and_quarantines(
    env: TestEnv,
) -> anyhow::Result<()> {
    // Arrange: an account Dirk already has, made by hand in another organisation.
    env.write_feed(&BASE);
    let app = env.app().await?;
    env.sql("INSERT INTO accounts (email, email_norm, first_name, created_at, updated_at) VALUES ('Dirk@Zorg.example', 'dirk@zorg.example', 'Dirk', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')").await?;

    // Act
    let report = env.sync(&app, TODAY).await?;

    // Assert
    assert_eq!(report.summary.status, RunStatus::Succeeded);
    assert_eq!(report.summary.records_fetched, 6);
    assert_eq!(count(&report, "invite"), 2, "Anna and Bert are new");
    assert_eq!(
        count(&report, "link"),
        1,
        "Dirk's existing account is linked"
    );
    assert_eq!(count(&report, "scheduled"), 1, "Eva starts next year");
    assert_eq!(
        count(&report, "quarantine"),
        2,
        "Cora has no BIG number, Finn no email"
    );
    assert_eq!(
        count(&report, "team_join"),
        2,
        "Bert joins Care, Dirk joins Planning"
    );
    assert_eq!(
        count(&report, "coach_assign"),
        2,
        "Anna coaches Care and Planning"
    );
    assert_eq!(
        count(&report, "role_grant"),
        4,
        "employee for three, nurse for Bert"
    );
    assert_eq!(
        env.count("SELECT COUNT(*) FROM accounts WHERE email_norm = 'dirk@zorg.example'")
            .await?,
        1,
        "one account per person"
    );
    assert_eq!(env.count("SELECT COUNT(*) FROM accounts").await?, 3);
    assert_eq!(env.count("SELECT COUNT(*) FROM mail_outbox").await?, 3);
    Ok(())
}

pub async fn second_sync_of_the_same_feed_changes_nothing(env: TestEnv) -> anyhow::Result<()> {
    env.write_feed(&BASE);
    let app = env.app().await?;
    env.sync(&app, TODAY).await?;

    let again = env.sync(&app, TODAY).await?;

    assert_eq!(actionable(&again), Vec::<String>::new());
    assert_eq!(count(&again, "scheduled"), 1);
    assert_eq!(count(&again, "quarantine"), 2);
    assert_eq!(
        env.count("SELECT COUNT(*) FROM mail_outbox").await?,
        3,
        "no second email"
    );
    Ok(())
}

pub async fn leaver_is_deactivated_and_keeps_data(env: TestEnv) -> anyhow::Result<()> {
    env.write_feed(&BASE);
    let app = env.app().await?;
    env.sync(&app, TODAY).await?;
    let leaving = with(
        &BASE,
        &[(
            "E2",
            "E2,bert@zorg.example,Bert,Bos,CARE,Care,E1,Nurse,2021-01-01,2026-12-31,active,12345678901",
        )],
    );
    env.write_feed(&rows(&leaving));

    let before_end = env.plan(&app, "2026-12-30").await?;
    let on_end = env.plan(&app, "2026-12-31").await?;
    let applied = env.sync(&app, "2027-01-01").await?;

    assert_eq!(count(&before_end, "deactivate"), 0);
    assert_eq!(
        count(&on_end, "deactivate"),
        1,
        "an end date on the as-of date makes a leaver"
    );
    assert_eq!(count(&applied, "deactivate"), 1);
    assert_eq!(applied.summary.status, RunStatus::Succeeded);
    let bert = "(SELECT id FROM accounts WHERE email_norm = 'bert@zorg.example')";
    assert_eq!(
        env.count(&format!(
            "SELECT COUNT(*) FROM memberships WHERE account_id = {bert} AND state = 'deactivated'"
        ))
        .await?,
        1
    );
    assert_eq!(
        env.count(&format!("SELECT COUNT(*) FROM accounts WHERE id = {bert}"))
            .await?,
        1,
        "the account is kept"
    );
    assert_eq!(
        env.count(&format!(
            "SELECT COUNT(*) FROM team_members WHERE account_id = {bert}"
        ))
        .await?,
        1,
        "team membership is kept"
    );
    assert_eq!(
        env.count(&format!(
            "SELECT COUNT(*) FROM role_grants WHERE account_id = {bert}"
        ))
        .await?,
        2,
        "roles are kept"
    );
    let again = env.sync(&app, "2027-01-01").await?;
    assert_eq!(actionable(&again), Vec::<String>::new());
    Ok(())
}

pub async fn rehire_reactivates_the_same_account(env: TestEnv) -> anyhow::Result<()> {
    env.write_feed(&BASE);
    let app = env.app().await?;
    env.sync(&app, TODAY).await?;
    env.sql("UPDATE accounts SET activated_at = '2026-11-24T09:00:00Z' WHERE email_norm = 'bert@zorg.example'").await?;
    let gone: Vec<&str> = BASE
        .iter()
        .copied()
        .filter(|r| !r.starts_with("E2,"))
        .collect();
    env.write_feed(&gone);
    env.sync(&app, TODAY).await?;
    let rehired = with(
        &BASE,
        &[(
            "E2",
            "E7,bert@zorg.example,Bert,Bos,CARE,Care,E1,Nurse,2027-02-01,,active,12345678901",
        )],
    );
    env.write_feed(&rows(&rehired));

    let report = env.sync(&app, "2027-02-01").await?;

    assert_eq!(count(&report, "reactivate"), 1, "{:#?}", report.changes);
    assert_eq!(count(&report, "invite"), 0, "the same account comes back");
    assert_eq!(
        env.count("SELECT COUNT(*) FROM accounts WHERE email_norm = 'bert@zorg.example'")
            .await?,
        1
    );
    assert_eq!(
        env.count("SELECT COUNT(*) FROM memberships m JOIN accounts a ON a.id = m.account_id WHERE a.email_norm = 'bert@zorg.example' AND m.state = 'active' AND m.employee_id = 'E7'").await?,
        1,
        "active again, since the account was activated before, under the new employee id"
    );
    Ok(())
}

pub async fn email_change_notifies_old_and_new_address(env: TestEnv) -> anyhow::Result<()> {
    env.write_feed(&BASE);
    let app = env.app().await?;
    env.sync(&app, TODAY).await?;
    app.drain_outbox().await?;
    env.sql("UPDATE accounts SET activated_at = '2026-11-24T09:00:00Z' WHERE email_norm = 'anna@zorg.example'").await?;
    let changed = with(
        &BASE,
        &[
            (
                "E1",
                "E1,anna.aalbers@zorg.example,Anna,Aalbers,CARE,Care,,Team lead,2020-01-01,,active,",
            ),
            (
                "E2",
                "E2,Bert.Bos@zorg.example,Bert,Bos,CARE,Care,E1,Nurse,2021-01-01,,active,12345678901",
            ),
        ],
    );
    env.write_feed(&rows(&changed));

    let report = env.sync(&app, TODAY).await?;
    let drained = app.drain_outbox().await?;

    assert_eq!(count(&report, "email_change"), 2, "{:#?}", report.changes);
    assert_eq!(drained.sent, 4);
    let mails = eml_files(&env.outbox_dir());
    let to_old = mails_to(&mails, "anna@zorg.example");
    let to_new = mails_to(&mails, "anna.aalbers@zorg.example");
    assert!(
        to_old.iter().any(|m| m
            .text()
            .is_some_and(|t| t.contains("anna.aalbers@zorg.example"))),
        "the old address is told the new one"
    );
    assert!(
        to_new
            .iter()
            .any(|m| m.text().is_some_and(|t| t.contains("anna@zorg.example"))),
        "the new address is told the old one"
    );
    // Bert never activated: the new address gets a fresh activation link, the old a notice.
    let bert_new = mails_to(&mails, "Bert.Bos@zorg.example");
    assert!(
        bert_new.iter().any(|m| token_in(m).is_some()),
        "activation link to the new address"
    );
    let again = env.sync(&app, TODAY).await?;
    assert_eq!(actionable(&again), Vec::<String>::new());
    Ok(())
}

pub async fn email_change_to_a_taken_address_is_a_conflict(env: TestEnv) -> anyhow::Result<()> {
    env.write_feed(&BASE);
    let app = env.app().await?;
    env.sync(&app, TODAY).await?;
    env.sql("INSERT INTO accounts (email, email_norm, created_at, updated_at) VALUES ('taken@zorg.example', 'taken@zorg.example', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')").await?;
    let changed = with(
        &BASE,
        &[(
            "E4",
            "E4,taken@zorg.example,Dirk,Dekker,ICT,ICT,E1,Developer,2022-01-01,,active,",
        )],
    );
    env.write_feed(&rows(&changed));

    let report = env.sync(&app, TODAY).await?;

    assert_eq!(count(&report, "conflict"), 1);
    assert!(
        !report
            .changes
            .iter()
            .any(|c| c.employee_id.as_deref() == Some("E4") && c.kind != "conflict"),
        "nothing changes for Dirk: {:#?}",
        report.changes
    );
    assert_eq!(
        env.count("SELECT COUNT(*) FROM accounts WHERE email_norm = 'dirk@zorg.example'")
            .await?,
        1
    );
    Ok(())
}

pub async fn local_edit_of_hr_owned_field_is_overwritten_and_reported(
    env: TestEnv,
) -> anyhow::Result<()> {
    env.write_feed(&BASE);
    let app = env.app().await?;
    env.sync(&app, TODAY).await?;
    env.sql("UPDATE accounts SET first_name = 'Annie' WHERE email_norm = 'anna@zorg.example'")
        .await?;

    let report = env.sync(&app, TODAY).await?;

    let line = report
        .changes
        .iter()
        .find(|c| c.kind == "update" && c.field.as_deref() == Some("first_name"))
        .expect("an update line");
    assert_eq!(
        (line.old.as_deref(), line.new.as_deref()),
        (Some("Annie"), Some("Anna"))
    );
    assert!(line.reason.contains("HR system owns"), "{}", line.reason);
    assert_eq!(
        env.count("SELECT COUNT(*) FROM accounts WHERE first_name = 'Anna'")
            .await?,
        1
    );
    Ok(())
}

pub async fn mass_deactivation_is_held_until_approved(mut env: TestEnv) -> anyhow::Result<()> {
    // The feed-health gate would hold a feed that halves first; here the threshold is tested.
    env.connector_extra = "feed_health.max_drop = 1.0".to_string();
    let all = staff(10);
    env.write_feed(&rows(&all));
    let app = env.app().await?;
    env.sync(&app, TODAY).await?;
    env.write_feed(&rows(&all[..5]));

    let held = env.sync(&app, TODAY).await?;

    assert_eq!(held.summary.status, RunStatus::Held);
    assert_eq!(held.errors[0].code, "HR201", "{:?}", held.errors);
    assert_eq!(
        count(&held, "deactivate"),
        5,
        "a held run lists what it would do"
    );
    assert_eq!(
        env.count("SELECT COUNT(*) FROM memberships WHERE state = 'deactivated'")
            .await?,
        0,
        "nothing applied"
    );
    let later = env.sync(&app, TODAY).await?;
    assert_eq!(
        later.summary.status,
        RunStatus::Held,
        "held again while the cause stays"
    );

    let approved = app.approve(held.summary.id).await?;

    assert_eq!(approved.report.summary.status, RunStatus::Approved);
    assert_eq!(
        env.count("SELECT COUNT(*) FROM memberships WHERE state = 'deactivated'")
            .await?,
        5
    );
    let after = env.sync(&app, TODAY).await?;
    assert_eq!(after.summary.status, RunStatus::Succeeded);
    assert_eq!(actionable(&after), Vec::<String>::new());
    Ok(())
}

pub async fn approval_is_refused_when_the_plan_changed(env: TestEnv) -> anyhow::Result<()> {
    let all = staff(10);
    env.write_feed(&rows(&all));
    let app = env.app().await?;
    env.sync(&app, TODAY).await?;
    env.write_feed(&rows(&all[..5]));
    let held = env.sync(&app, TODAY).await?;
    env.write_feed(&rows(&all[..6]));

    let refused = app.approve(held.summary.id).await;

    let message = format!("{:#}", refused.expect_err("approval must be refused"));
    assert!(message.contains("different changes"), "{message}");
    assert_eq!(
        env.count("SELECT COUNT(*) FROM memberships WHERE state = 'deactivated'")
            .await?,
        0
    );
    let run = app
        .store
        .run_report(held.summary.id)
        .await?
        .expect("the held run");
    assert_eq!(run.summary.status, RunStatus::Held, "still held");
    Ok(())
}

pub async fn empty_feed_is_held_and_applies_nothing(env: TestEnv) -> anyhow::Result<()> {
    env.write_feed(&BASE);
    let app = env.app().await?;
    env.sync(&app, TODAY).await?;
    env.write_feed(&[]);

    let report = env.sync(&app, TODAY).await?;

    assert_eq!(report.summary.status, RunStatus::Held);
    assert_eq!(report.errors[0].code, "HR101");
    assert_eq!(
        env.count("SELECT COUNT(*) FROM memberships WHERE state = 'deactivated'")
            .await?,
        0
    );
    Ok(())
}

pub async fn malformed_feed_fails_the_run_and_changes_nothing(env: TestEnv) -> anyhow::Result<()> {
    env.write_feed(&BASE);
    let app = env.app().await?;
    env.sync(&app, TODAY).await?;
    let mut broken: Vec<&str> = BASE[..3].to_vec();
    broken.push("E9,new@zorg.example,New,Person,CARE,Care,E1,Helper,31-02-2026,,active,");
    env.write_feed(&broken);

    let report = env.sync(&app, TODAY).await?;

    assert_eq!(report.summary.status, RunStatus::Failed);
    assert_eq!(report.errors[0].code, "HR102");
    let message = &report.errors[0].message;
    assert!(
        message.contains("feed.csv line 5") && message.contains("start_date"),
        "{message}"
    );
    assert!(report.changes.is_empty());
    assert_eq!(
        env.count("SELECT COUNT(*) FROM memberships WHERE state = 'deactivated'")
            .await?,
        0,
        "nobody deactivated"
    );
    assert_eq!(
        env.count("SELECT COUNT(*) FROM accounts").await?,
        3,
        "nobody added"
    );
    Ok(())
}

pub async fn dry_run_writes_only_the_run_record(env: TestEnv) -> anyhow::Result<()> {
    env.write_feed(&BASE);
    let app = env.app().await?;

    let report = env.plan(&app, TODAY).await?;

    assert_eq!(count(&report, "invite"), 3);
    assert_eq!(env.count("SELECT COUNT(*) FROM accounts").await?, 0);
    assert_eq!(env.count("SELECT COUNT(*) FROM mail_outbox").await?, 0);
    assert_eq!(
        env.count("SELECT COUNT(*) FROM sync_runs WHERE mode = 'plan'")
            .await?,
        1
    );
    Ok(())
}

pub async fn activation_mail_goes_over_smtp_and_its_link_works_once(
    mut env: TestEnv,
) -> anyhow::Result<()> {
    let sink = SmtpSink::start().await;
    env.mail_toml = format!("transport = \"smtp\"\nsmtp_url = \"{}\"\n", sink.url());
    env.write_feed(&BASE);
    let app = env.app().await?;
    env.sync(&app, TODAY).await?;

    let drained = app.drain_outbox().await?;

    assert_eq!(drained.sent, 3);
    let mails = sink.wait_for(3, std::time::Duration::from_secs(10)).await;
    let anna = mails_to(&mails, "anna@zorg.example");
    let token = token_in(anna[0]).expect("an activation link");
    assert_eq!(token.len(), 64, "256 random bits");
    let html = anna[0].html().unwrap_or_default();
    assert!(html.contains(&token), "the link is in the HTML part too");
    let hash = token_hash(&token);
    assert_eq!(
        env.count(&format!(
            "SELECT COUNT(*) FROM activation_tokens WHERE token_hash = '{hash}'"
        ))
        .await?,
        1,
        "stored as a hash"
    );
    assert_eq!(
        env.count(&format!(
            "SELECT COUNT(*) FROM activation_tokens WHERE token_hash = '{token}'"
        ))
        .await?,
        0,
        "never in clear"
    );
    assert!(matches!(
        app.store.activate(&hash, Utc::now()).await?,
        TokenState::Valid { .. }
    ));
    assert_eq!(
        app.store.activate(&hash, Utc::now()).await?,
        TokenState::Used,
        "single use"
    );
    assert_eq!(
        env.count("SELECT COUNT(*) FROM memberships m JOIN accounts a ON a.id = m.account_id WHERE a.email_norm = 'anna@zorg.example' AND m.state = 'active' AND a.activated_at IS NOT NULL").await?,
        1
    );
    Ok(())
}

pub async fn resend_revokes_the_earlier_link(env: TestEnv) -> anyhow::Result<()> {
    env.write_feed(&BASE);
    let app = env.app().await?;
    env.sync(&app, TODAY).await?;
    app.drain_outbox().await?;
    let first =
        token_in(mails_to(&eml_files(&env.outbox_dir()), "anna@zorg.example")[0]).expect("a link");

    app.store
        .queue_activation_resend("zorg", "anna@zorg.example", Utc::now())
        .await?;
    app.drain_outbox().await?;

    let mails = eml_files(&env.outbox_dir());
    let anna = mails_to(&mails, "anna@zorg.example");
    assert_eq!(anna.len(), 2);
    let tokens: Vec<String> = anna.iter().filter_map(|m| token_in(m)).collect();
    let second = tokens.iter().find(|t| **t != first).expect("a new link");
    assert_eq!(
        app.store
            .token_state(&token_hash(&first), Utc::now())
            .await?,
        TokenState::Revoked
    );
    assert!(matches!(
        app.store
            .token_state(&token_hash(second), Utc::now())
            .await?,
        TokenState::Valid { .. }
    ));
    Ok(())
}

pub async fn expired_link_is_refused(env: TestEnv) -> anyhow::Result<()> {
    env.write_feed(&BASE);
    let app = env.app().await?;
    env.sync(&app, TODAY).await?;
    app.drain_outbox().await?;
    let token =
        token_in(mails_to(&eml_files(&env.outbox_dir()), "anna@zorg.example")[0]).expect("a link");

    let later = Utc::now() + chrono::Duration::days(15);
    let state = app.store.activate(&token_hash(&token), later).await?;

    assert_eq!(state, TokenState::Expired, "links are valid for 14 days");
    assert_eq!(
        env.count("SELECT COUNT(*) FROM accounts WHERE activated_at IS NOT NULL")
            .await?,
        0
    );
    Ok(())
}

pub async fn failed_mail_stays_queued_with_its_error_and_is_retried(
    mut env: TestEnv,
) -> anyhow::Result<()> {
    let sink = SmtpSink::failing_transiently().await;
    env.mail_toml = format!("transport = \"smtp\"\nsmtp_url = \"{}\"\n", sink.url());
    env.write_feed(&BASE);
    let app = env.app().await?;
    env.sync(&app, TODAY).await?;

    let drained = app.drain_outbox().await?;

    assert_eq!((drained.sent, drained.failed), (0, 3));
    let stats = app.store.outbox_stats().await?;
    assert_eq!((stats.pending, stats.failing, stats.sent), (3, 3, 0));
    assert_eq!(
        env.count("SELECT COUNT(*) FROM mail_outbox WHERE last_error LIKE '%451%'")
            .await?,
        3
    );
    let soon = app
        .store
        .claim_due_mail(Utc::now(), std::time::Duration::from_secs(60), 10)
        .await?;
    assert!(soon.is_empty(), "not retried at once");
    let later = Utc::now() + chrono::Duration::minutes(2);
    let retried = app
        .store
        .claim_due_mail(later, std::time::Duration::from_secs(60), 10)
        .await?;
    assert_eq!(retried.len(), 3, "retried after the backoff");
    Ok(())
}

pub async fn users_can_be_filtered_by_status_and_text(env: TestEnv) -> anyhow::Result<()> {
    env.write_feed(&BASE);
    let app = env.app().await?;
    env.sync(&app, TODAY).await?;

    let invited = app
        .store
        .list_users(&UserFilter {
            status: Some("invited".into()),
            ..Default::default()
        })
        .await?;
    let bert = app
        .store
        .list_users(&UserFilter {
            search: Some("BOS".into()),
            ..Default::default()
        })
        .await?;
    let other = app
        .store
        .list_users(&UserFilter {
            organisation: Some("other".into()),
            ..Default::default()
        })
        .await?;

    assert_eq!(invited.len(), 3);
    assert_eq!(bert.len(), 1);
    assert_eq!(bert[0].email, "bert@zorg.example");
    assert_eq!(bert[0].teams, vec!["Care".to_string()]);
    assert_eq!(
        bert[0].roles,
        vec!["employee".to_string(), "nurse".to_string()]
    );
    assert!(other.is_empty());
    Ok(())
}

pub async fn moving_department_leaves_team_unassigns_coach_and_revokes_role(
    env: TestEnv,
) -> anyhow::Result<()> {
    env.write_feed(&BASE);
    let app = env.app().await?;
    env.sync(&app, TODAY).await?;
    let moved = with(
        &BASE,
        &[(
            "E2",
            "E2,bert@zorg.example,Bert,Bos,PLAN,Planning Office,E1,Planner,2021-01-01,,active,",
        )],
    );
    env.write_feed(&rows(&moved));

    let report = env.sync(&app, TODAY).await?;

    assert_eq!(count(&report, "team_leave"), 1, "{:#?}", report.changes);
    assert_eq!(
        count(&report, "team_join"),
        2,
        "Bert joins Planning; Anna, no longer coaching Care, becomes its member"
    );
    assert_eq!(
        count(&report, "coach_unassign"),
        1,
        "Anna no longer coaches Care"
    );
    assert_eq!(
        count(&report, "role_revoke"),
        1,
        "Bert is no longer a nurse"
    );
    assert!(
        report
            .changes
            .iter()
            .any(|c| c.field.as_deref() == Some("team_name")
                && c.new.as_deref() == Some("Planning Office")),
        "the team takes the HR department's new name"
    );
    let bert = "(SELECT id FROM accounts WHERE email_norm = 'bert@zorg.example')";
    assert_eq!(
        env.count(&format!("SELECT COUNT(*) FROM team_members l JOIN teams t ON t.id = l.team_id WHERE l.account_id = {bert} AND t.key = 'PLAN'")).await?,
        1
    );
    assert_eq!(
        env.count(&format!(
            "SELECT COUNT(*) FROM team_members WHERE account_id = {bert}"
        ))
        .await?,
        1
    );
    assert_eq!(
        env.count(&format!(
            "SELECT COUNT(*) FROM role_grants WHERE account_id = {bert}"
        ))
        .await?,
        1
    );
    assert_eq!(
        env.count("SELECT COUNT(*) FROM team_coaches").await?,
        1,
        "Anna coaches Planning only"
    );
    let again = env.sync(&app, TODAY).await?;
    assert_eq!(actionable(&again), Vec::<String>::new());
    Ok(())
}

pub async fn two_organisations_do_not_overwrite_a_shared_profile_back_and_forth(
    mut env: TestEnv,
) -> anyhow::Result<()> {
    // Anna works for both organisations; the second HR system knows her by another name and
    // a private address.
    let second = env.add_second_connector("other_hr", "other");
    env.write_feed(&BASE);
    env.write_feed_to(
        &second,
        &["O1,anna@zorg.example,Annie,Aalbers-Smit,KIDS,Kids,,Helper,2020-01-01,,active,"],
    );
    let app = env.app().await?;
    env.sync(&app, TODAY).await?;
    env.sync_connector(&app, "other_hr", TODAY).await?;
    env.write_feed_to(
        &second,
        &["O1,anna.private@mail.example,Annie,Aalbers-Smit,KIDS,Kids,,Helper,2020-01-01,,active,"],
    );

    let other = env.sync_connector(&app, "other_hr", TODAY).await?;
    let ours = env.sync(&app, TODAY).await?;
    let other_again = env.sync_connector(&app, "other_hr", TODAY).await?;

    assert_eq!(count(&other, "email_change"), 0, "{:#?}", other.changes);
    assert_eq!(
        count(&other, "conflict"),
        1,
        "the other HR system's address is reported"
    );
    assert_eq!(
        actionable(&ours),
        Vec::<String>::new(),
        "the first connector keeps the profile"
    );
    assert_eq!(actionable(&other_again), Vec::<String>::new());
    assert_eq!(
        env.count("SELECT COUNT(*) FROM accounts WHERE email_norm = 'anna@zorg.example' AND first_name = 'Anna'").await?,
        1
    );
    Ok(())
}

pub async fn queued_activation_is_cancelled_when_the_person_leaves_first(
    mut env: TestEnv,
) -> anyhow::Result<()> {
    // Arrange: the mail server is down when Bert is invited, and Bert leaves before it is back.
    let down = SmtpSink::failing_transiently().await;
    env.mail_toml = format!("transport = \"smtp\"\nsmtp_url = \"{}\"\n", down.url());
    env.write_feed(&BASE);
    let app = env.app().await?;
    env.sync(&app, TODAY).await?;
    app.drain_outbox().await?;
    let gone: Vec<&str> = BASE
        .iter()
        .copied()
        .filter(|r| !r.starts_with("E2,"))
        .collect();
    env.write_feed(&gone);
    env.sync(&app, TODAY).await?;
    let up = SmtpSink::start().await;
    env.mail_toml = format!("transport = \"smtp\"\nsmtp_url = \"{}\"\n", up.url());
    let app = env.app().await?;
    env.sql("UPDATE mail_outbox SET next_attempt_at = '2000-01-01T00:00:00Z'")
        .await?;

    let drained = app.drain_outbox().await?;

    assert_eq!((drained.sent, drained.cancelled), (2, 1), "{drained:?}");
    let mails = up.wait_for(2, std::time::Duration::from_secs(10)).await;
    assert!(
        mails_to(&mails, "bert@zorg.example").is_empty(),
        "no link for a leaver"
    );
    assert_eq!(
        env.count("SELECT COUNT(*) FROM activation_tokens t JOIN accounts a ON a.id = t.account_id WHERE a.email_norm = 'bert@zorg.example' AND t.revoked_at IS NULL AND t.used_at IS NULL").await?,
        0
    );
    Ok(())
}

/// The base feed synced with mail to an SMTP server, nothing sent yet, and a resend of Bert's
/// activation queued beside his first: the server, the app and the resend's outbox id.
async fn bert_invited_and_resent(env: &mut TestEnv) -> anyhow::Result<(SmtpSink, App, i64)> {
    let sink = SmtpSink::start().await;
    env.mail_toml = format!("transport = \"smtp\"\nsmtp_url = \"{}\"\n", sink.url());
    env.write_feed(&BASE);
    let app = env.app().await?;
    env.sync(&app, TODAY).await?;
    let resend = app
        .store
        .queue_activation_resend("zorg", "bert@zorg.example", Utc::now())
        .await?;
    Ok((sink, app, resend))
}

pub async fn a_resend_queued_beside_the_first_activation_sends_one_link(
    mut env: TestEnv,
) -> anyhow::Result<()> {
    // Arrange: Bert's first activation email is still queued when an admin asks for another.
    let (sink, app, _) = bert_invited_and_resent(&mut env).await?;

    // Act: both are sent in one group.
    let drained = app.drain_outbox().await?;

    // Assert: Bert gets one email, whose link is the one valid token; the earlier mail says why
    // it was not sent.
    assert_eq!((drained.sent, drained.cancelled), (3, 1), "{drained:?}");
    let mails = sink.wait_for(3, std::time::Duration::from_secs(10)).await;
    assert_eq!(mails_to(&mails, "bert@zorg.example").len(), 1);
    assert_eq!(
        env.count("SELECT COUNT(*) FROM activation_tokens t JOIN accounts a ON a.id = t.account_id WHERE a.email_norm = 'bert@zorg.example' AND t.revoked_at IS NULL AND t.used_at IS NULL").await?,
        1
    );
    assert_eq!(
        env.count("SELECT COUNT(*) FROM mail_outbox WHERE last_error = 'cancelled: a later activation email to this person replaces it'").await?,
        1
    );
    Ok(())
}

pub async fn a_later_activation_that_no_longer_applies_does_not_cancel_the_first(
    mut env: TestEnv,
) -> anyhow::Result<()> {
    // Arrange: beside Bert's first activation email, a later one to an address he no longer
    // has.
    let (sink, app, later) = bert_invited_and_resent(&mut env).await?;
    env.sql(&format!(
        "UPDATE mail_outbox SET recipient = 'bert.old@zorg.example' WHERE id = {later}"
    ))
    .await?;

    // Act
    let drained = app.drain_outbox().await?;

    // Assert: the first one goes out; only the later one is cancelled.
    assert_eq!((drained.sent, drained.cancelled), (3, 1), "{drained:?}");
    let mails = sink.wait_for(3, std::time::Duration::from_secs(10)).await;
    assert_eq!(mails_to(&mails, "bert@zorg.example").len(), 1);
    assert_eq!(
        env.count("SELECT COUNT(*) FROM mail_outbox WHERE last_error = 'cancelled: the account has another email address now'").await?,
        1
    );
    Ok(())
}

pub async fn failure_after_fetch_is_recorded_and_applies_nothing(
    env: TestEnv,
) -> anyhow::Result<()> {
    env.write_feed(&BASE);
    let app = env.app().await?;
    env.sync(&app, TODAY).await?;
    // Arrange a database fault half-way through applying: the table for team joins is gone.
    env.sql("DROP TABLE team_members").await?;
    let mut joined: Vec<&str> = BASE.to_vec();
    joined.push("E9,new@zorg.example,New,Person,CARE,Care,E1,Helper,2020-01-01,,active,");
    env.write_feed(&joined);

    let report = env.sync(&app, TODAY).await?;

    assert_eq!(report.summary.status, RunStatus::Failed);
    assert_eq!(report.errors[0].code, "HR103", "{:?}", report.errors);
    assert!(report.summary.finished_at.is_some());
    assert_eq!(
        env.count("SELECT COUNT(*) FROM accounts").await?,
        3,
        "the new account was rolled back"
    );
    assert_eq!(
        env.count("SELECT COUNT(*) FROM mail_outbox").await?,
        3,
        "no email queued"
    );
    Ok(())
}

pub async fn activating_once_activates_every_invited_membership(
    mut env: TestEnv,
) -> anyhow::Result<()> {
    let second = env.add_second_connector("other_hr", "other");
    env.write_feed(&BASE);
    env.write_feed_to(
        &second,
        &["O1,anna@zorg.example,Anna,Aalbers,KIDS,Kids,,Helper,2020-01-01,,active,"],
    );
    let app = env.app().await?;
    env.sync(&app, TODAY).await?;
    env.sync_connector(&app, "other_hr", TODAY).await?;
    app.drain_outbox().await?;
    let link = mails_to(&eml_files(&env.outbox_dir()), "anna@zorg.example")
        .iter()
        .find_map(|m| token_in(m))
        .expect("a link");

    let state = app.store.activate(&token_hash(&link), Utc::now()).await?;

    assert!(matches!(state, TokenState::Valid { .. }));
    assert_eq!(
        env.count("SELECT COUNT(*) FROM memberships m JOIN accounts a ON a.id = m.account_id WHERE a.email_norm = 'anna@zorg.example' AND m.state = 'active'").await?,
        2,
        "both organisations' memberships are active"
    );
    Ok(())
}

pub async fn feed_shrinking_by_half_is_held_by_the_health_gate(env: TestEnv) -> anyhow::Result<()> {
    let all = staff(40);
    env.write_feed(&rows(&all));
    let app = env.app().await?;
    env.sync(&app, TODAY).await?;
    env.write_feed(&rows(&all[..20]));

    let held = env.sync(&app, TODAY).await?;

    assert_eq!(held.summary.status, RunStatus::Held);
    assert_eq!(held.errors[0].code, "HR202", "{:?}", held.errors);
    assert!(
        held.errors[0].message.contains("50.0% fewer"),
        "{}",
        held.errors[0].message
    );
    assert_eq!(
        count(&held, "deactivate"),
        20,
        "the held run lists what it would do"
    );
    assert_eq!(
        env.count("SELECT COUNT(*) FROM memberships WHERE state = 'deactivated'")
            .await?,
        0,
        "nothing applied"
    );
    Ok(())
}

pub async fn feed_losing_its_email_column_is_held_by_the_health_gate(
    env: TestEnv,
) -> anyhow::Result<()> {
    let all = staff(20);
    env.write_feed(&rows(&all));
    let app = env.app().await?;
    env.sync(&app, TODAY).await?;
    let blanked: Vec<String> = all
        .iter()
        .enumerate()
        .map(|(i, r)| {
            if i % 2 == 0 {
                let mut fields: Vec<&str> = r.split(',').collect();
                fields[1] = "";
                fields.join(",")
            } else {
                r.clone()
            }
        })
        .collect();
    env.write_feed(&rows(&blanked));

    let held = env.sync(&app, TODAY).await?;

    assert_eq!(held.summary.status, RunStatus::Held);
    assert_eq!(held.errors[0].code, "HR203", "{:?}", held.errors);
    Ok(())
}

pub async fn http_connector_syncs_a_scim_server(mut env: TestEnv) -> anyhow::Result<()> {
    // Arrange: a SCIM server serving the two pages of a tenant without custom fields.
    let server = wiremock::MockServer::start().await;
    let fixtures =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/scim/tenant-b");
    for (start, page) in [("1", "users-page-1.json"), ("4", "users-page-2.json")] {
        let body: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(fixtures.join(page))?)?;
        wiremock::Mock::given(wiremock::matchers::query_param("startIndex", start))
            .and(wiremock::matchers::header(
                "authorization",
                "Bearer scim-token",
            ))
            .respond_with(wiremock::ResponseTemplate::new(200).set_body_json(body))
            .mount(&server)
            .await;
    }
    let definition = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("connectors/scim.toml");
    env.extra_toml = format!(
        "[connectors.scim_hr]\norganisation = \"other\"\nkind = \"http\"\n\n\
         [connectors.scim_hr.http]\ndefinition = \"{}\"\n\
         variables = {{ base_url = \"{}/scim/v2\" }}\nsecrets = {{ token = \"{}\" }}\n",
        definition.display(),
        server.uri(),
        crate::SCIM_TOKEN_VAR
    );
    env.write_feed(&BASE);
    let app = env.app().await?;

    let report = env.sync_connector(&app, "scim_hr", TODAY).await?;
    let again = env.sync_connector(&app, "scim_hr", TODAY).await?;

    assert_eq!(
        report.summary.status,
        RunStatus::Succeeded,
        "{:?}",
        report.errors
    );
    assert_eq!(report.summary.records_fetched, 5);
    assert_eq!(
        count(&report, "quarantine"),
        1,
        "the account without an email: {:#?}",
        report.changes
    );
    assert_eq!(
        count(&report, "invite"),
        2,
        "Zoë and her manager; the leaver and the future starter are not invited: {:#?}",
        report.changes
    );
    assert!(
        count(&report, "coach_assign") >= 1,
        "managers resolved from SCIM ids"
    );
    assert_eq!(actionable(&again), Vec::<String>::new());
    Ok(())
}

/// A definition of an HR system that can answer with only what changed.
const DELTA_DEFINITION: &str = r#"
name = "Delta HR"
variables = ["base"]

[auth]
kind = "none"

[request]
url = "{base}/people"

[records]
path = "people"

[incremental]
query = { changed_since = "{since}" }

[fields.employee_id]
path = "id"

[fields.email]
path = "email"

[fields.first_name]
path = "first"

[fields.job_title]
path = "title"

[fields.department]
path = "dept"

[fields.end_date]
path = "end"

[fields.status]
value = "active"
"#;

fn delta_people(people: &[(&str, &str)]) -> serde_json::Value {
    let people: Vec<serde_json::Value> = people
        .iter()
        .map(|(id, title)| {
            serde_json::json!({
                "id": id,
                "email": format!("{}@delta.example", id.to_lowercase()),
                "first": id,
                "title": title,
                "dept": "Zorg"
            })
        })
        .collect();
    serde_json::json!({ "people": people })
}

/// Serves `full` to requests without `changed_since` and `delta` to those with it.
async fn serve_delta_hr(
    server: &wiremock::MockServer,
    full: &[(&str, &str)],
    delta: &[(&str, &str)],
) {
    server.reset().await;
    let full = delta_people(full);
    let delta = delta_people(delta);
    wiremock::Mock::given(wiremock::matchers::query_param_is_missing("changed_since"))
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_json(full))
        .mount(server)
        .await;
    wiremock::Mock::given(|r: &wiremock::Request| {
        r.url.query_pairs().any(|(k, _)| k == "changed_since")
    })
    .respond_with(wiremock::ResponseTemplate::new(200).set_body_json(delta))
    .mount(server)
    .await;
}

fn asked_since(requests: &[wiremock::Request]) -> Vec<String> {
    requests
        .iter()
        .filter_map(|r| {
            r.url
                .query_pairs()
                .find(|(k, _)| k == "changed_since")
                .map(|(_, v)| v.into_owned())
        })
        .collect()
}

/// Six nurses, D1 to D6, as the delta HR system first lists them.
const SIX_NURSES: [(&str, &str); 6] = [
    ("D1", "Nurse"),
    ("D2", "Nurse"),
    ("D3", "Nurse"),
    ("D4", "Nurse"),
    ("D5", "Nurse"),
    ("D6", "Nurse"),
];

/// A delta HR server listing the six nurses, a `delta_hr` connector on it (with `connector`
/// TOML added to its table and `incremental` as its incremental settings), and the app.
async fn delta_hr_app(
    env: &mut TestEnv,
    connector: &str,
    incremental: &str,
) -> anyhow::Result<(wiremock::MockServer, hrsync::sync::App)> {
    let server = wiremock::MockServer::start().await;
    serve_delta_hr(&server, &SIX_NURSES, &[]).await;
    let definition = env.dir.path().join("delta.toml");
    std::fs::write(&definition, DELTA_DEFINITION)?;
    env.extra_toml = format!(
        "[connectors.delta_hr]\norganisation = \"other\"\nkind = \"http\"\n{connector}\n\n\
         [connectors.delta_hr.http]\ndefinition = \"{}\"\n\
         variables = {{ base = \"{}\" }}\nincremental = {{ {incremental} }}\n",
        definition.display(),
        server.uri(),
    );
    env.write_feed(&BASE);
    let app = env.app().await?;
    Ok((server, app))
}

pub async fn incremental_connector_merges_changes_and_finds_vanished_people_on_full_fetch(
    mut env: TestEnv,
) -> anyhow::Result<()> {
    // Arrange: six people; the connector reads everything every second run.
    let (server, app) = delta_hr_app(&mut env, "", "full_every_runs = 1").await?;
    let first = env.sync_connector(&app, "delta_hr", TODAY).await?;
    assert_eq!(count(&first, "invite"), 6, "{:#?}", first.changes);
    assert!(asked_since(&server.received_requests().await.unwrap()).is_empty());

    // Act 1: D2 got a new title; D6 vanished from the HR system, which a delta cannot show.
    let five = [
        ("D1", "Nurse"),
        ("D2", "Head nurse"),
        ("D3", "Nurse"),
        ("D4", "Nurse"),
        ("D5", "Nurse"),
    ];
    serve_delta_hr(&server, &five, &[("D2", "Head nurse")]).await;
    let delta_run = env.sync_connector(&app, "delta_hr", TODAY).await?;

    // Assert 1: only the change was asked for and applied; nobody absent from the delta left.
    let since = asked_since(&server.received_requests().await.unwrap());
    assert_eq!(since.len(), 1, "one incremental request");
    let watermark = chrono::DateTime::parse_from_rfc3339(&since[0])?;
    assert!(watermark <= chrono::Utc::now(), "{}", since[0]);
    assert_eq!(
        delta_run.summary.status,
        RunStatus::Succeeded,
        "{:?}",
        delta_run.errors
    );
    assert_eq!(
        delta_run.summary.records_fetched, 6,
        "the delta merged into what was known"
    );
    assert_eq!(first.summary.fetch, Some(FetchKind::Full));
    assert_eq!(delta_run.summary.fetch, Some(FetchKind::Incremental));
    assert_eq!(
        actionable(&delta_run),
        vec![r#"update Some("D2") Some("job_title") Some("Head nurse")"#.to_string()],
        "{:#?}",
        delta_run.changes
    );

    // Act 2: the full fetch is due after one incremental run.
    serve_delta_hr(&server, &five, &[("D2", "Head nurse")]).await;
    let full_run = env.sync_connector(&app, "delta_hr", TODAY).await?;

    // Assert 2: the whole feed was read, and the vanished person is a leaver.
    assert!(
        asked_since(&server.received_requests().await.unwrap()).is_empty(),
        "the full fetch asks for everything"
    );
    assert_eq!(
        full_run.summary.status,
        RunStatus::Succeeded,
        "{:?}",
        full_run.errors
    );
    assert_eq!(full_run.summary.records_fetched, 5);
    assert_eq!(full_run.summary.fetch, Some(FetchKind::Full));
    assert_eq!(count(&full_run, "deactivate"), 1, "{:#?}", full_run.changes);
    assert_eq!(
        actionable(&full_run).len(),
        1,
        "only D6 left: {:#?}",
        full_run.changes
    );
    assert!(
        full_run
            .changes
            .iter()
            .any(|c| c.kind == "deactivate" && c.employee_id.as_deref() == Some("D6"))
    );
    Ok(())
}

pub async fn held_incremental_run_moves_its_watermark_only_when_approved(
    mut env: TestEnv,
) -> anyhow::Result<()> {
    // Arrange: a connector that reads deltas, after a first full run of six people.
    let (server, app) = delta_hr_app(
        &mut env,
        "thresholds = { max_deactivations = 0 }",
        "full_every_hours = 1000",
    )
    .await?;
    env.sync_connector(&app, "delta_hr", TODAY).await?;
    let after_full = app.store.feed_state("delta_hr").await?;

    // Act: a delta in which D3 has left is held by the threshold, then approved.
    server.reset().await;
    let mut delta = delta_people(&[("D3", "Nurse")]);
    delta["people"][0]["end"] = serde_json::json!("2026-10-31");
    wiremock::Mock::given(wiremock::matchers::any())
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_json(delta))
        .mount(&server)
        .await;
    let held = env.sync_connector(&app, "delta_hr", TODAY).await?;
    let while_held = app.store.feed_state("delta_hr").await?;
    let approved = app.approve(held.summary.id).await?.report;
    let after_approval = app.store.feed_state("delta_hr").await?;

    // Assert: the held run kept the watermark, so its delta is asked for again; approval
    // applied it and moved the watermark on.
    assert_eq!(held.summary.status, RunStatus::Held, "{:?}", held.errors);
    assert_eq!(held.summary.records_fetched, 6);
    assert_eq!(count(&held, "deactivate"), 1, "{:#?}", held.changes);
    assert_eq!(while_held, after_full);
    assert_eq!(approved.summary.status, RunStatus::Approved);
    assert!(after_approval.watermark > after_full.watermark);
    assert_eq!(after_approval.incremental_runs, 1);
    assert_eq!(after_approval.last_full_at, after_full.last_full_at);
    Ok(())
}

pub async fn a_changed_definition_makes_the_next_incremental_fetch_full(
    mut env: TestEnv,
) -> anyhow::Result<()> {
    // Arrange: records kept from a first, full fetch; a full fetch would not be due for a day.
    let (server, app) = delta_hr_app(&mut env, "", "full_every_hours = 24").await?;
    let first = env.sync_connector(&app, "delta_hr", TODAY).await?;
    assert_eq!(first.summary.fetch, Some(FetchKind::Full));
    let definition = env.dir.path().join("delta.toml");
    std::fs::write(
        &definition,
        format!("{DELTA_DEFINITION}\n# mapped differently now\n"),
    )?;

    // Act
    let next = env.sync_connector(&app, "delta_hr", TODAY).await?;

    // Assert: the kept records were mapped by the old definition, so everything is read again.
    assert_eq!(
        next.summary.fetch,
        Some(FetchKind::Full),
        "{:?}",
        next.errors
    );
    assert!(asked_since(&server.received_requests().await.unwrap()).is_empty());
    Ok(())
}

pub async fn a_schedule_tick_and_a_connector_run_are_taken_by_one_caller_only(
    env: TestEnv,
) -> anyhow::Result<()> {
    // Arrange: one applied run, and a second one left `running` as a crash would leave it.
    env.write_feed(&BASE);
    let app = env.app().await?;
    let applied = env.sync(&app, TODAY).await?;
    env.sql(&format!(
        "UPDATE sync_runs SET status = 'running', finished_at = NULL WHERE id = {}",
        applied.summary.id
    ))
    .await?;
    let tick = Utc::now();

    // Act
    let first_claim = app.store.claim_tick("hr", tick).await?;
    let second_claim = app.store.claim_tick("hr", tick).await?;
    let later_claim = app
        .store
        .claim_tick("hr", tick + chrono::Duration::seconds(1))
        .await?;
    let lock = app.store.try_lock_connector("hr").await?.expect("free");
    let while_locked = app.store.try_lock_connector("hr").await?;
    let abandoned = app
        .store
        .fail_abandoned_runs(
            "hr",
            &hrsync::domain::RunError {
                code: "HR104".into(),
                message: "cut off".into(),
            },
            &[],
            Utc::now(),
        )
        .await?;
    lock.release().await;
    let after_release = app.store.try_lock_connector("hr").await?;

    // Assert: each tick is claimed once; the lock keeps a second taker out (an advisory lock
    // on PostgreSQL, a lock file on SQLite); the run left running is ended as failed.
    assert!(first_claim && !second_claim && later_claim);
    assert!(while_locked.is_none());
    assert!(after_release.is_some());
    assert_eq!(abandoned, vec![applied.summary.id]);
    let last = app.store.last_runs().await?;
    assert_eq!(last.len(), 1);
    assert_eq!(last[0].status, RunStatus::Failed);
    assert_eq!(app.store.list_runs(10, Some("hr")).await?.len(), 1);
    assert!(app.store.list_runs(10, Some("other")).await?.is_empty());
    Ok(())
}

pub async fn admins_get_a_digest_when_a_run_changes_holds_or_fails_something(
    mut env: TestEnv,
) -> anyhow::Result<()> {
    // Arrange: digests to one admin; mail over SMTP; the threshold (not the feed-health gate)
    // holds a run that deactivates half the staff.
    let sink = SmtpSink::start().await;
    env.mail_toml = format!("transport = \"smtp\"\nsmtp_url = \"{}\"\n", sink.url());
    env.org_extra = "digest_to = [\"it@zorg.example\"]".to_string();
    env.extra_toml = "[server]\npublic_url = \"https://hrsync.zorg.example/\"\n".to_string();
    env.connector_extra = "feed_health.max_drop = 1.0".to_string();
    let all = staff(10);
    env.write_feed(&rows(&all));
    let app = env.app().await?;

    // Act: a run that invites, one that changes nothing, a dry run, a held run, the same hold
    // again, and a failed fetch.
    let applied = env.sync(&app, TODAY).await?;
    env.sync(&app, TODAY).await?;
    env.write_feed(&rows(&all[..5]));
    env.plan(&app, TODAY).await?;
    let held = env.sync(&app, TODAY).await?;
    let held_again = env.sync(&app, TODAY).await?;
    std::fs::remove_file(env.feed_path())?;
    let failed = env.sync(&app, TODAY).await?;
    app.drain_outbox().await?;

    // Assert: three digests, one per new outcome, each linking to its run.
    assert_eq!(held_again.summary.status, RunStatus::Held);
    assert_eq!(failed.summary.status, RunStatus::Failed);
    let mails = sink
        .wait_for(10 + 3, std::time::Duration::from_secs(10))
        .await;
    let digests = mails_to(&mails, "it@zorg.example");
    let subjects: Vec<String> = digests.iter().filter_map(|m| m.subject()).collect();
    let changes = hrsync::report::actionable_count(&applied.summary);
    assert_eq!(
        subjects,
        vec![
            format!(
                "Zonnehof Zorg: run {} of hr applied {changes} changes",
                applied.summary.id
            ),
            format!(
                "Zonnehof Zorg: run {} of hr is held for your review",
                held.summary.id
            ),
            format!("Zonnehof Zorg: run {} of hr failed", failed.summary.id),
        ]
    );
    let held_text = digests[1].text().unwrap_or_default();
    assert!(
        held_text.contains(&format!(
            "https://hrsync.zorg.example/runs/{}",
            held.summary.id
        )),
        "{held_text}"
    );
    assert!(held_text.contains(&held.errors[0].message), "{held_text}");
    assert!(held_text.contains("Deactivations"), "{held_text}");
    assert!(
        digests[2]
            .text()
            .unwrap_or_default()
            .contains(&failed.errors[0].code),
        "the failure's code is given"
    );
    Ok(())
}

pub async fn a_stopping_mail_worker_hands_its_claim_back_unsent(
    env: TestEnv,
) -> anyhow::Result<()> {
    // Arrange: three activation mails queued.
    env.write_feed(&BASE);
    let app = env.app().await?;
    env.sync(&app, TODAY).await?;
    let asked = std::sync::atomic::AtomicUsize::new(0);

    // Act: the worker is told to stop once it has claimed the mails, before it sends any.
    let drained = app
        .drain_outbox_while(|| asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < 1)
        .await?;

    // Assert: none sent; all three are due again at once, not after the lease.
    assert_eq!(drained, hrsync::mail::outbox::Drained::default());
    let due = app
        .store
        .claim_due_mail(Utc::now(), std::time::Duration::from_secs(60), 10)
        .await?;
    assert_eq!(due.len(), 3);
    Ok(())
}

/// A first sync's mails, claimed by worker A with a lease of one second, then by worker B two
/// seconds later (the instant returned) with a lease of a minute.
async fn claims_of_two_workers(
    env: &TestEnv,
) -> anyhow::Result<(App, Vec<OutboxMail>, Vec<OutboxMail>, DateTime<Utc>)> {
    env.write_feed(&BASE);
    let app = env.app().await?;
    env.sync(&app, TODAY).await?;
    let now = Utc::now();
    let a = app
        .store
        .claim_due_mail(now, std::time::Duration::from_secs(1), 10)
        .await?;
    let later = now + chrono::Duration::seconds(2);
    let b = app
        .store
        .claim_due_mail(later, std::time::Duration::from_secs(60), 10)
        .await?;
    Ok((app, a, b, later))
}

pub async fn a_mail_whose_claim_ran_out_is_not_sent_by_the_first_claimer(
    env: TestEnv,
) -> anyhow::Result<()> {
    // Arrange: worker A claims the mails with a lease that runs out; worker B claims them
    // after that.
    let (app, a, b, later) = claims_of_two_workers(&env).await?;

    // Act: each renews its claim on the first mail just before sending it.
    let until = later + chrono::Duration::minutes(5);
    let a_may_send = app.store.renew_claim(&a[0], until).await?;
    let b_may_send = app.store.renew_claim(&b[0], until).await?;

    // Assert: only the later claim holds.
    assert_eq!(a[0].id, b[0].id);
    assert!(!a_may_send, "A's claim ran out and B took the mail");
    assert!(b_may_send);
    Ok(())
}

pub async fn a_worker_whose_claim_ran_out_cannot_hand_back_anothers_claim(
    env: TestEnv,
) -> anyhow::Result<()> {
    // Arrange: worker A's claim runs out and worker B claims the mails.
    let (app, a, b, later) = claims_of_two_workers(&env).await?;

    // Act: A, stopping, hands back what it claimed.
    let ids: Vec<i64> = a.iter().map(|m| m.id).collect();
    app.store
        .release_mail(&ids, a[0].claimed_until, later)
        .await?;

    // Assert: B's claim holds; nothing is due for a third worker.
    assert_eq!(b.len(), a.len());
    let third = app
        .store
        .claim_due_mail(later, std::time::Duration::from_secs(60), 10)
        .await?;
    assert!(third.is_empty(), "{third:?}");
    Ok(())
}

pub async fn a_held_runs_digest_still_queued_at_approval_gives_way_to_the_approvals(
    mut env: TestEnv,
) -> anyhow::Result<()> {
    // Arrange: a held run whose digest has not gone out yet (no mail sent in between).
    let sink = SmtpSink::start().await;
    env.mail_toml = format!("transport = \"smtp\"\nsmtp_url = \"{}\"\n", sink.url());
    env.org_extra = "digest_to = [\"it@zorg.example\"]".to_string();
    env.extra_toml = "[server]\npublic_url = \"https://hrsync.zorg.example\"\n".to_string();
    env.connector_extra = "feed_health.max_drop = 1.0".to_string();
    let all = staff(10);
    env.write_feed(&rows(&all));
    let app = env.app().await?;
    env.sync(&app, TODAY).await?;
    app.drain_outbox().await?;
    env.write_feed(&rows(&all[..5]));
    let held = env.sync(&app, TODAY).await?;

    // Act: approve, then send what is queued.
    app.approve(held.summary.id).await?;
    let drained = app.drain_outbox().await?;

    // Assert: one digest for the run, saying it was approved and applied.
    assert_eq!((drained.sent, drained.cancelled), (1, 1));
    let mails = sink
        .wait_for(10 + 2, std::time::Duration::from_secs(10))
        .await;
    let digests = mails_to(&mails, "it@zorg.example");
    assert_eq!(digests.len(), 2, "the first run's and the approval's");
    let text = digests[1].text().unwrap_or_default();
    assert!(text.contains("was approved"), "{text}");
    Ok(())
}
