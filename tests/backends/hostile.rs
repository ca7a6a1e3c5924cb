//! Whole runs on data from the world: names with control characters, broken CSV exports,
//! feeds that look unhealthy, and mail servers that refuse a recipient for good.

use std::time::Duration;

use hrsync::domain::RunStatus;
use hrsync::store::UserFilter;

use crate::smtp::decode_words;
use crate::support::{HEADER, SmtpSink, TestEnv, count, mails_to, rows, staff};

const TODAY: &str = "2026-11-23";
const WAIT: Duration = Duration::from_secs(10);

/// The staff with the emails of the people at `blank` (0-based) left empty.
fn without_email(all: &[String], blank: &[usize]) -> Vec<String> {
    all.iter()
        .enumerate()
        .map(|(i, row)| {
            if blank.contains(&i) {
                let mut fields: Vec<&str> = row.split(',').collect();
                fields[1] = "";
                fields.join(",")
            } else {
                row.clone()
            }
        })
        .collect()
}

fn codes(report: &hrsync::domain::RunReport) -> Vec<&str> {
    report.errors.iter().map(|e| e.code.as_str()).collect()
}

fn has_control_character(text: &str) -> bool {
    text.chars().any(|c| {
        c.is_control()
            || matches!(
                c,
                '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
            )
    })
}

pub async fn names_with_control_characters_are_mailed_and_stored_on_one_line(
    mut env: TestEnv,
) -> anyhow::Result<()> {
    // Arrange: names with CR LF, tabs, NUL, a line separator and bidi marks, over real SMTP.
    let sink = SmtpSink::start().await;
    env.mail_toml = format!("transport = \"smtp\"\nsmtp_url = \"{}\"\n", sink.url());
    let feed = [
        "E1,ann@zorg.example,\"Ann\r\nMarie\",\"Smit\tde\u{0}Vries\",CARE,Care,,Helper,2020-01-01,,active,",
        "E2,bob@zorg.example,\"\u{202E}Bob\u{202C}\",\"Bakker\u{200F}\",CARE,Care,,Helper,2020-01-01,,active,",
        "E3,cas@zorg.example,\"Cas\u{2028}\u{2066}\",\"Claes\u{0}\n\",CARE,\"Ca\nre\",,\"Helper\r\",2020-01-01,,active,",
    ];
    env.write_feed(&feed);
    let app = env.app().await?;

    // Act
    let report = env.sync(&app, TODAY).await?;
    let drained = app.drain_outbox().await?;

    // Assert: every activation mail arrived, addressed to a clean one-line name.
    assert_eq!(
        report.summary.status,
        RunStatus::Succeeded,
        "{:?}",
        report.errors
    );
    assert_eq!((drained.sent, drained.failed), (3, 0));
    let mails = sink.wait_for(3, WAIT).await;
    let expected = [
        ("ann@zorg.example", "Ann Marie Smit deVries"),
        ("bob@zorg.example", "Bob Bakker"),
        ("cas@zorg.example", "Cas Claes"),
    ];
    for (address, name) in expected {
        let to = mails_to(&mails, address);
        assert_eq!(to.len(), 1, "one mail to {address}");
        let header = decode_words(&to[0].header("To").unwrap_or_default());
        assert!(header.contains(name), "{header:?} names {name:?}");
        assert!(!has_control_character(&header), "{header:?}");
    }
    let users = app.store.list_users(&UserFilter::default()).await?;
    for user in &users {
        let shown = format!(
            "{:?} {:?} {:?}",
            user.display_name, user.job_title, user.teams
        );
        assert!(!has_control_character(&shown), "{shown}");
    }

    // And the mail keeps flowing: a later run's mail goes out too.
    let mut more: Vec<&str> = feed.to_vec();
    more.push("E4,dan@zorg.example,Dan,\"\u{0}Dekker\",CARE,Care,,Helper,2020-01-01,,active,");
    env.write_feed(&more);
    env.sync(&app, TODAY).await?;
    let drained = app.drain_outbox().await?;
    assert_eq!((drained.sent, drained.failed), (1, 0));
    let mails = sink.wait_for(4, WAIT).await;
    assert_eq!(mails_to(&mails, "dan@zorg.example").len(), 1);
    Ok(())
}

/// Runs the staff feed once, then a broken export, and checks the broken one failed with the
/// file and line and deactivated nobody.
async fn broken_export_fails_at(env: &TestEnv, body: &str, line: &str) -> anyhow::Result<()> {
    let all = staff(6);
    env.write_feed(&rows(&all));
    let app = env.app().await?;
    env.sync(&app, TODAY).await?;
    std::fs::write(env.feed_path(), format!("{HEADER}\n{body}"))?;

    let report = env.sync(&app, TODAY).await?;

    assert_eq!(report.summary.status, RunStatus::Failed);
    let message = &report.errors[0].message;
    assert!(
        message.contains(&format!("feed.csv line {line}")),
        "{message}"
    );
    assert_eq!(
        env.count("SELECT COUNT(*) FROM memberships WHERE state = 'deactivated'")
            .await?,
        0,
        "nobody is deactivated"
    );
    assert!(report.changes.is_empty(), "nothing was planned");
    Ok(())
}

pub async fn a_stray_quote_that_keeps_the_field_count_fails_the_run_at_its_line(
    env: TestEnv,
) -> anyhow::Result<()> {
    // Row 3 opens a quote in the last name that never closes; the rows after it would be
    // swallowed into that name.
    let all = staff(6);
    let mut broken = all.clone();
    broken[1] = broken[1].replace(",Staff,", ",\"Staff,");
    broken_export_fails_at(&env, &(broken.join("\n") + "\n"), "3").await
}

pub async fn an_export_cut_inside_the_last_column_fails_the_run(
    env: TestEnv,
) -> anyhow::Result<()> {
    // Every value of the last column quoted; the file ends inside the last one.
    let all = staff(6);
    let quoted: Vec<String> = all.iter().map(|r| format!("{r}\"12345678901\"")).collect();
    let mut body = quoted.join("\n");
    body.truncate(body.len() - 6);
    broken_export_fails_at(&env, &body, "7").await
}

pub async fn text_after_a_closing_quote_fails_the_run(env: TestEnv) -> anyhow::Result<()> {
    let all = staff(6);
    let mut broken = all.clone();
    broken[3] = broken[3].replace(",Staff,", ",\"Staff\" de Vries,");
    broken_export_fails_at(&env, &(broken.join("\n") + "\n"), "5").await
}

pub async fn one_lost_email_in_a_small_organisation_is_a_quarantine_not_a_hold(
    env: TestEnv,
) -> anyhow::Result<()> {
    // Arrange: ten people synced; then one loses their email and another changes job.
    let all = staff(10);
    env.write_feed(&rows(&all));
    let app = env.app().await?;
    env.sync(&app, TODAY).await?;
    let mut next = without_email(&all, &[2]);
    next[5] = next[5].replace(",Helper,", ",Planner,");
    env.write_feed(&rows(&next));

    // Act
    let report = env.sync(&app, TODAY).await?;

    // Assert: applied; that person quarantined, the other change made.
    assert_eq!(
        report.summary.status,
        RunStatus::Succeeded,
        "{:?}",
        report.errors
    );
    assert_eq!(count(&report, "quarantine"), 1);
    assert!(
        report
            .changes
            .iter()
            .any(|c| c.field.as_deref() == Some("job_title") && c.new.as_deref() == Some("Planner")),
        "{:?}",
        report.changes
    );
    Ok(())
}

pub async fn two_of_eight_people_leaving_is_applied(env: TestEnv) -> anyhow::Result<()> {
    let all = staff(8);
    env.write_feed(&rows(&all));
    let app = env.app().await?;
    env.sync(&app, TODAY).await?;
    env.write_feed(&rows(&all[..6]));

    let report = env.sync(&app, TODAY).await?;

    assert_eq!(
        report.summary.status,
        RunStatus::Succeeded,
        "{:?}",
        report.errors
    );
    assert_eq!(count(&report, "deactivate"), 2);
    assert_eq!(
        env.count("SELECT COUNT(*) FROM memberships WHERE state = 'deactivated'")
            .await?,
        2
    );
    Ok(())
}

pub async fn a_first_feed_mostly_without_email_is_held(env: TestEnv) -> anyhow::Result<()> {
    // A mapping that reads the wrong email column: eight of ten records have none.
    let all = staff(10);
    env.write_feed(&rows(&without_email(&all, &[0, 1, 2, 3, 4, 5, 6, 7])));
    let app = env.app().await?;

    let report = env.sync(&app, TODAY).await?;

    assert_eq!(report.summary.status, RunStatus::Held);
    assert_eq!(codes(&report), ["HR204"]);
    assert!(
        report.errors[0].message.contains("8 of its 10 records"),
        "{}",
        report.errors[0].message
    );
    assert_eq!(env.count("SELECT COUNT(*) FROM accounts").await?, 0);
    Ok(())
}

pub async fn a_run_over_two_limits_lists_both_codes(env: TestEnv) -> anyhow::Result<()> {
    // Forty people, then a feed of twenty: it shrank by half and would deactivate twenty.
    let all = staff(40);
    env.write_feed(&rows(&all));
    let app = env.app().await?;
    env.sync(&app, TODAY).await?;
    env.write_feed(&rows(&all[..20]));

    let held = env.sync(&app, TODAY).await?;

    assert_eq!(held.summary.status, RunStatus::Held);
    assert_eq!(codes(&held), ["HR202", "HR201"]);
    let json: serde_json::Value = serde_json::from_str(&hrsync::report::json(&held))?;
    let json_codes: Vec<&str> = json["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["code"].as_str())
        .collect();
    assert_eq!(json_codes, ["HR202", "HR201"]);
    Ok(())
}

pub async fn a_mail_refused_with_550_fails_for_good_and_shows_on_the_account(
    mut env: TestEnv,
) -> anyhow::Result<()> {
    // Arrange: the server refuses one recipient for good; the admins get a digest.
    let sink = SmtpSink::refusing_recipients("person2@", "550 5.1.1 No such user here").await;
    env.mail_toml = format!("transport = \"smtp\"\nsmtp_url = \"{}\"\n", sink.url());
    env.org_extra = "digest_to = [\"it@zorg.example\"]".to_string();
    env.extra_toml = "[server]\npublic_url = \"https://hrsync.zorg.example/\"\n".to_string();
    env.write_feed(&rows(&staff(3)));
    let app = env.app().await?;
    env.sync(&app, TODAY).await?;

    // Act
    let drained = app.drain_outbox().await?;

    // Assert: the others and the digest went out; that mail failed and is not tried again.
    assert_eq!(
        (drained.sent, drained.failed, drained.undeliverable),
        (3, 0, 1)
    );
    let stats = app.store.outbox_stats().await?;
    assert_eq!((stats.pending, stats.undeliverable), (0, 1));
    let tomorrow = chrono::Utc::now() + chrono::Duration::days(1);
    let retried = app
        .store
        .claim_due_mail(tomorrow, Duration::from_secs(60), 10)
        .await?;
    assert!(retried.is_empty(), "a 550 is not retried");
    let person2 = app
        .store
        .list_users(&UserFilter {
            search: Some("person2@".into()),
            ..Default::default()
        })
        .await?;
    let problem = person2[0].mail_problem.as_ref().expect("a mail problem");
    assert!(problem.undeliverable);
    assert!(problem.error.contains("550"), "{}", problem.error);
    let table = hrsync::report::users_table(&person2);
    assert!(table.contains("undeliverable activation"), "{table}");
    let mails = sink.wait_for(3, WAIT).await;
    let digest = mails_to(&mails, "it@zorg.example");
    let text = digest[0].text().unwrap_or_default();
    assert!(text.contains("could not be delivered"), "{text}");
    assert!(text.contains("person2@zorg.example"), "{text}");
    Ok(())
}

pub async fn the_feed_health_counts_are_settings(mut env: TestEnv) -> anyhow::Result<()> {
    // With no count allowed, one person losing their email in ten holds the run again.
    env.connector_extra = "feed_health.max_missing_email_rise_count = 0".to_string();
    let all = staff(10);
    env.write_feed(&rows(&all));
    let app = env.app().await?;
    env.sync(&app, TODAY).await?;
    env.write_feed(&rows(&without_email(&all, &[2])));

    let report = env.sync(&app, TODAY).await?;

    assert_eq!(report.summary.status, RunStatus::Held);
    assert_eq!(codes(&report), ["HR203"]);
    Ok(())
}
