//! Every number in the configuration has a range (`config::bounds`): at its highest allowed
//! values a deployment syncs, sends mail and serves without overflowing, and a value outside
//! its range stops the app from being built at all.

use std::time::Duration;

use chrono::Utc;
use hrsync::config;
use hrsync::domain::RunStatus;
use hrsync::mail::outbox::token_hash;
use hrsync::server::AdminToken;
use hrsync::store::{Store, TokenState};
use hrsync::sync::App;

use crate::support::{TestEnv, count, eml_files, mails_to, token_in};

const TODAY: &str = "2026-11-23";

/// Anna and Bert work; Eva starts in about six months, within the longest invite lead time.
const STAFF: [&str; 3] = [
    "E1,anna@zorg.example,Anna,Aalbers,CARE,Care,,Team lead,2020-01-01,,active,",
    "E2,bert@zorg.example,Bert,Bos,CARE,Care,E1,Nurse,2021-01-01,,active,12345678901",
    "E5,eva@zorg.example,Eva,Ester,PLAN,Planning,E1,Planner,2027-06-01,,active,",
];

/// Each connector setting at the top of its range.
const HIGHEST_CONNECTOR: &str = "invite_days_before_start = 365
thresholds.max_deactivations = 1000000
thresholds.max_deactivation_ratio = 1.0
thresholds.min_deactivations_for_ratio = 1000000
feed_health.max_drop = 1.0
feed_health.max_missing_email_rise = 1.0
feed_health.max_drop_count = 1000000
feed_health.max_missing_email_rise_count = 1000000
feed_health.first_feed_max_quarantined = 1.0
";

/// An HR API that can answer with only what changed since a moment.
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
"#;

const ADMIN_TOKEN: &str = "the-admin-token-of-the-range-test";

pub async fn the_highest_allowed_settings_run_sync_mail_and_serve_without_overflow(
    mut env: TestEnv,
) -> anyhow::Result<()> {
    // Arrange: every numeric setting at its highest allowed value, including an incremental
    // HR API connector and the daemon's settings.
    let hr = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("GET"))
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_json(
            serde_json::json!({ "people": [{ "id": "D1", "email": "d1@delta.example" }] }),
        ))
        .mount(&hr)
        .await;
    let definition = env.dir.path().join("delta.toml");
    std::fs::write(&definition, DELTA_DEFINITION)?;
    env.connector_extra = HIGHEST_CONNECTOR.to_string();
    env.extra_toml = format!(
        "[connectors.delta_hr]\norganisation = \"other\"\nkind = \"http\"\n{HIGHEST_CONNECTOR}\n\
         [connectors.delta_hr.http]\ndefinition = \"{}\"\nvariables = {{ base = \"{}\" }}\n\
         incremental = {{ full_every_runs = 10000, full_every_hours = 8760, overlap_minutes = 1440 }}\n\n\
         [server]\nmail_poll_seconds = 3600\nshutdown_grace_seconds = 3600\n\
         stale_invite_days = 365\nadmin_token_sha256 = \"{}\"\n",
        definition.display(),
        hr.uri(),
        AdminToken::hash_hex(ADMIN_TOKEN),
    );
    env.write_feed(&STAFF);
    let path = env.dir.path().join("hrsync.toml");
    std::fs::write(
        &path,
        env.config_toml()
            .replace("max_connections = 3", "max_connections = 100")
            .replace("token_valid_days = 14", "token_valid_days = 365"),
    )?;
    let loaded = config::load_checked(&path)?;
    let at_the_top = loaded
        .numbers()
        .into_iter()
        .filter(|(_, bound, value)| match (bound.range, value) {
            (config::bounds::Range::Whole { max, .. }, config::bounds::Number::Whole(v)) => {
                *v == max
            }
            (config::bounds::Range::Share { max, .. }, config::bounds::Number::Share(v)) => {
                *v == max
            }
            _ => false,
        })
        .count();
    let numbers = loaded.numbers().len();
    let covered: std::collections::BTreeSet<&str> = loaded
        .numbers()
        .iter()
        .map(|(_, bound, _)| bound.key)
        .collect();
    let app = App::build(loaded).await?;

    // Act: a sync that invites, the activation mail, a sync in which two of three leave, a
    // full and an incremental fetch of the HR API, and the daemon's accounts page.
    let invited = env.sync(&app, TODAY).await?;
    app.drain_outbox().await?;
    let link = token_in(mails_to(&eml_files(&env.outbox_dir()), "anna@zorg.example")[0])
        .ok_or_else(|| anyhow::anyhow!("Anna's activation link"))?;
    let now = Utc::now();
    let in_364_days = app
        .store
        .token_state(&token_hash(&link), now + chrono::Duration::days(364))
        .await?;
    let in_366_days = app
        .store
        .token_state(&token_hash(&link), now + chrono::Duration::days(366))
        .await?;
    env.write_feed(&STAFF[..1]);
    let leavers = env.sync(&app, TODAY).await?;
    let full = env.sync_connector(&app, "delta_hr", TODAY).await?;
    let delta_started = Utc::now();
    let delta = env.sync_connector(&app, "delta_hr", TODAY).await?;
    let asked_since: Vec<String> = hr
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter_map(|r| {
            r.url
                .query_pairs()
                .find(|(k, _)| k == "changed_since")
                .map(|(_, v)| v.into_owned())
        })
        .collect();
    let page = serve_and_get_accounts_page(app).await?;

    // Assert: every number was at the top of its range.
    let every_bound: std::collections::BTreeSet<&str> =
        config::bounds::ALL.iter().map(|b| b.key).collect();
    assert_eq!(covered, every_bound, "every numeric setting is given");
    assert_eq!(at_the_top, numbers, "each number at its highest value");
    // Eva, six months out, is invited now; the link works for a year.
    assert_eq!(invited.summary.status, RunStatus::Succeeded);
    assert_eq!(count(&invited, "invite"), 3, "{:#?}", invited.changes);
    assert!(matches!(in_364_days, TokenState::Valid { .. }));
    assert_eq!(in_366_days, TokenState::Expired);
    // Two of three leaving is within thresholds and feed health at their highest.
    assert_eq!(leavers.summary.status, RunStatus::Succeeded);
    assert_eq!(count(&leavers, "deactivate"), 2, "{:#?}", leavers.changes);
    // The incremental fetch asked for a day of overlap before the full fetch started.
    assert_eq!(full.summary.status, RunStatus::Succeeded);
    assert_eq!(delta.summary.status, RunStatus::Succeeded);
    assert_eq!(asked_since.len(), 1, "{asked_since:?}");
    let since = chrono::DateTime::parse_from_rfc3339(&asked_since[0])?;
    let overlap = delta_started - since.with_timezone(&Utc);
    assert!(
        overlap >= chrono::Duration::minutes(1440) && overlap < chrono::Duration::minutes(1440 + 5),
        "{overlap:?}"
    );
    // The daemon served, counted stale invites a year back, and stopped.
    assert!(page.contains("invited over 365 days ago"), "{page}");
    Ok(())
}

/// Serves the app, fetches the accounts page as an admin, and stops the daemon; the page.
async fn serve_and_get_accounts_page(app: App) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let token = AdminToken::from_hex(&AdminToken::hash_hex(ADMIN_TOKEN))?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let daemon = tokio::spawn(hrsync::server::serve_on(app, token, listener, async move {
        let _ = stopped.await;
    }));
    let page = reqwest::Client::new()
        .get(format!("{base}/accounts"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await;
    let _ = stop.send(());
    // With no run in progress the grace period (an hour) is not waited for.
    tokio::time::timeout(Duration::from_secs(30), daemon).await???;
    Ok(page?)
}

pub async fn settings_out_of_range_are_refused_before_a_pool_is_allocated_or_a_run_starts(
    env: TestEnv,
) -> anyhow::Result<()> {
    // Arrange: a configuration loaded without `check`, with the two values that crashed a
    // deployment: a pool of u32::MAX connections (about 309 GB reserved up front) and
    // activation links valid for 100 million days (a date overflow in the mail worker).
    env.write_feed(&STAFF);
    let path = env.dir.path().join("hrsync.toml");
    std::fs::write(
        &path,
        env.config_toml()
            .replace("max_connections = 3", "max_connections = 4294967295")
            .replace("token_valid_days = 14", "token_valid_days = 100000000"),
    )?;
    let unchecked = config::load(&path)?;

    // Act
    let built = App::build(unchecked).await;
    let huge_pool = Store::connect(&env.database_url, u32::MAX).await;
    let empty_pool = Store::connect(&env.database_url, 0).await;

    // Assert: refused with each key and its range; the store refuses the sizes on its own.
    let error = built
        .err()
        .ok_or_else(|| anyhow::anyhow!("the app was built"))?
        .to_string();
    assert!(
        error.contains("database.max_connections: 4294967295 is out of range; use 1 to 100"),
        "{error}"
    );
    assert!(
        error.contains("mail.token_valid_days: 100000000 is out of range; use 1 to 365"),
        "{error}"
    );
    for pool in [huge_pool, empty_pool] {
        let error = pool
            .err()
            .ok_or_else(|| anyhow::anyhow!("the pool was opened"))?
            .to_string();
        assert!(error.contains("out of range; use 1 to 100"), "{error}");
    }
    Ok(())
}
