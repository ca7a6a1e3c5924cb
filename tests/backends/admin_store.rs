//! What the admin API and pages keep and look up in the database, on both backends: account
//! search that matches the admin's text literally, and sign-in sessions.

use chrono::{DateTime, SubsecRound, Utc};
use hrsync::store::UserFilter;

use crate::support::TestEnv;

/// People whose names and addresses hold `LIKE`'s wildcards and its escape character, each
/// beside one the wildcard would also match.
const WILDCARDS: [&str; 6] = [
    "E1,ann_a@zorg.example,Ann,Underscore,CARE,Care,,Planner,2020-01-01,,active,",
    "E2,annxa@zorg.example,Ann,Cross,CARE,Care,,Planner,2020-01-01,,active,",
    "E3,bert@zorg.example,Bert,Bos 100%,CARE,Care,,Planner,2020-01-01,,active,",
    "E4,cora@zorg.example,Cora,Bos 1000,CARE,Care,,Planner,2020-01-01,,active,",
    "E5,dirk@zorg.example,Dirk,Back\\slash,CARE,Care,,Planner,2020-01-01,,active,",
    "E6,eva@zorg.example,Eva,Backslash,CARE,Care,,Planner,2020-01-01,,active,",
];

async fn emails_matching(app: &hrsync::sync::App, text: &str) -> anyhow::Result<Vec<String>> {
    Ok(app
        .store
        .list_users(&UserFilter {
            search: Some(text.to_string()),
            ..Default::default()
        })
        .await?
        .into_iter()
        .map(|u| u.email)
        .collect())
}

pub async fn account_search_matches_percent_underscore_and_backslash_literally(
    env: TestEnv,
) -> anyhow::Result<()> {
    // Arrange
    env.write_feed(&WILDCARDS);
    let app = env.app().await?;
    env.sync(&app, "2026-11-23").await?;

    // Act
    let underscore = emails_matching(&app, "n_a").await?;
    let percent = emails_matching(&app, "100%").await?;
    let backslash = emails_matching(&app, "k\\s").await?;
    let only_percent = emails_matching(&app, "%").await?;
    let plain = emails_matching(&app, "BOS").await?;

    // Assert: each wildcard matches itself only; plain text still matches as before.
    assert_eq!(underscore, ["ann_a@zorg.example"]);
    assert_eq!(percent, ["bert@zorg.example"]);
    assert_eq!(backslash, ["dirk@zorg.example"]);
    assert_eq!(only_percent, ["bert@zorg.example"]);
    assert_eq!(plain, ["bert@zorg.example", "cora@zorg.example"]);
    Ok(())
}

pub async fn admin_sessions_are_kept_by_hash_touched_forward_revoked_once_and_purged(
    env: TestEnv,
) -> anyhow::Result<()> {
    // Arrange: a live session, one past its end, one idle, one to sign out.
    env.write_feed(&WILDCARDS);
    let app = env.app().await?;
    let store = &app.store;
    let now = Utc::now().trunc_subsecs(0);
    let at = |minutes_ago: i64| -> DateTime<Utc> { now - chrono::Duration::minutes(minutes_ago) };
    let later = at(-60);
    store
        .create_admin_session("live", None, at(10), later)
        .await?;
    store
        .create_admin_session("ended", None, at(120), at(5))
        .await?;
    store
        .create_admin_session("idle", None, at(60), later)
        .await?;
    store
        .create_admin_session("signed-out", None, at(10), later)
        .await?;

    // Act
    store.touch_admin_session("live", at(2)).await?;
    store.touch_admin_session("live", at(8)).await?; // late, out of order
    let revoked = store.revoke_admin_session("signed-out", at(1)).await?;
    let revoked_again = store.revoke_admin_session("signed-out", at(0)).await?;
    let live = store.admin_session("live").await?;
    let purged = store.purge_admin_sessions(at(0), at(30)).await?;

    // Assert: times come back as written; a touch never moves back; a session is revoked
    // once; the purge leaves only the live one.
    assert_eq!(
        live,
        Some(hrsync::store::AdminSession {
            created_at: at(10),
            last_seen_at: at(2),
            expires_at: later,
            revoked_at: None,
            admin_name: None,
        })
    );
    assert!(revoked && !revoked_again);
    assert_eq!(purged, 3);
    assert!(store.admin_session("live").await?.is_some());
    for gone in ["ended", "idle", "signed-out"] {
        assert!(store.admin_session(gone).await?.is_none(), "{gone}");
    }
    Ok(())
}
