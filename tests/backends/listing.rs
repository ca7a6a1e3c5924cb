//! What the pages and APIs read a page at a time: runs filtered and paged by a cursor, and a
//! run's changes of one kind a page at a time.

use hrsync::domain::{RunMode, RunStatus, Trigger};
use hrsync::store::RunFilter;

use crate::support::TestEnv;
use crate::sync_runs::BASE;

const TODAY: &str = "2026-11-23";

pub async fn runs_are_filtered_by_status_mode_trigger_kind_and_date_and_paged_by_cursor_either_way(
    env: TestEnv,
) -> anyhow::Result<()> {
    // Arrange: a first sync (invites), a dry run, and a second sync (nothing to do).
    env.write_feed(&BASE);
    let app = env.app().await?;
    let first = env.sync(&app, TODAY).await?;
    env.plan(&app, TODAY).await?;
    env.sync(&app, TODAY).await?;
    let store = &app.store;
    let ids =
        |runs: &[hrsync::domain::RunSummary]| -> Vec<i64> { runs.iter().map(|r| r.id).collect() };
    let tomorrow = chrono::Utc::now() + chrono::Duration::days(1);

    // Act
    let all = store.find_runs(&RunFilter::default(), None, 10).await?;
    let page_one = store.find_runs(&RunFilter::default(), None, 2).await?;
    let page_two = store
        .find_runs(&RunFilter::default(), page_one.last().map(|r| r.id), 2)
        .await?;
    let plans = RunFilter {
        mode: Some(RunMode::Plan),
        ..RunFilter::default()
    };
    let with_invites = RunFilter {
        kind: Some("invite".to_string()),
        mode: Some(RunMode::Apply),
        ..RunFilter::default()
    };
    let by_command_succeeded = RunFilter {
        trigger: Some(Trigger::Command),
        status: Some(RunStatus::Succeeded),
        ..RunFilter::default()
    };
    let from_tomorrow = RunFilter {
        since: Some(tomorrow),
        ..RunFilter::default()
    };
    let oldest_first = RunFilter {
        oldest_first: true,
        ..RunFilter::default()
    };
    let oldest_one = store.find_runs(&oldest_first, None, 2).await?;
    let oldest_two = store
        .find_runs(&oldest_first, oldest_one.last().map(|r| r.id), 2)
        .await?;

    // Assert
    assert_eq!(all.len(), 3);
    assert_eq!(ids(&page_one), ids(&all)[..2].to_vec(), "newest first");
    assert_eq!(
        ids(&page_two),
        ids(&all)[2..].to_vec(),
        "the cursor goes on after the page"
    );
    assert_eq!(store.find_runs(&plans, None, 10).await?.len(), 1);
    assert_eq!(
        ids(&store.find_runs(&with_invites, None, 10).await?),
        [first.summary.id]
    );
    assert_eq!(
        store
            .find_runs(&by_command_succeeded, None, 10)
            .await?
            .len(),
        3
    );
    assert!(store.find_runs(&from_tomorrow, None, 10).await?.is_empty());
    let mut reversed = ids(&all);
    reversed.reverse();
    assert_eq!(
        [ids(&oldest_one), ids(&oldest_two)].concat(),
        reversed,
        "oldest first, the cursor going on to newer runs"
    );
    Ok(())
}

pub async fn a_runs_changes_of_one_kind_are_read_a_page_at_a_time(
    env: TestEnv,
) -> anyhow::Result<()> {
    // Arrange: 30 people invited in one run.
    let staff = crate::support::staff(30);
    env.write_feed(&crate::support::rows(&staff));
    let app = env.app().await?;
    let run = env.sync(&app, TODAY).await?;
    let id = run.summary.id;

    // Act
    let first = app.store.run_changes_of_kind(id, "invite", 0, 20).await?;
    let rest = app.store.run_changes_of_kind(id, "invite", 20, 20).await?;
    let head = app.store.run_report_head(id, 5).await?.unwrap();

    // Assert
    assert_eq!(run.summary.counts.get("invite"), Some(&30));
    assert_eq!(first.len(), 20);
    assert_eq!(rest.len(), 10);
    assert!(first.iter().chain(&rest).all(|c| c.kind == "invite"));
    let mut emails: Vec<_> = first.iter().chain(&rest).map(|c| c.email.clone()).collect();
    emails.dedup();
    assert_eq!(emails.len(), 30, "each line once over the pages");
    assert_eq!(
        head.changes.iter().filter(|c| c.kind == "invite").count(),
        5
    );
    Ok(())
}
