//! The daemon end to end: `hrsync serve` as a process, on a 1-second schedule against a SCIM
//! fixture server, sending mail to a real SMTP server and stopping on SIGTERM; two replicas on
//! one PostgreSQL database (each tick run once, no runs overlapping, each mail sent once);
//! and the HTTP router in-process: every admin route refuses a request without the token (401
//! for the API, a redirect to sign-in for the pages), and activation answers 410 for a used
//! link. `tests/admin_guard.rs` tests sign-in sessions, the cross-origin check, the HTTP limits
//! and `/healthz`.

// A test stops at the first thing that is not as expected.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "support/daemon.rs"]
mod daemon;
#[path = "support/smtp.rs"]
mod smtp;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use daemon::{
    ADMIN_TOKEN, Daemon, ScimPeople, Setup, admin_get, admin_post, eventually, free_port,
    open_store, scim_server, serve_in_process,
};
use hrsync::server::{HttpLimits, admin_routes};
use smtp::SmtpSink;
use wiremock::MockServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_runs_send_mail_and_sigterm_mid_run_applies_nothing_of_it() {
    // Arrange: a SCIM server, an SMTP server and a daemon that runs the connector every second.
    let dir = tempfile::tempdir().unwrap();
    let hr = MockServer::start().await;
    scim_server(&hr, Duration::ZERO).await;
    let smtp = SmtpSink::start().await;
    let port = free_port();
    let mut setup = Setup::sqlite(dir.path(), port, &smtp.url(), &hr.uri());
    setup.schedule = Some("* * * * * *".to_string());
    setup.write(dir.path());

    // Act 1: the daemon runs on its schedule.
    let mut daemon = Daemon::start(dir.path(), port);
    daemon.ready().await;
    let first = eventually(Duration::from_secs(20), "a scheduled run", || async {
        let runs = daemon.get("/api/runs?connector=scim_hr").await;
        runs.as_array()?
            .iter()
            .rev()
            .find(|r| r["status"] == "succeeded")
            .cloned()
    })
    .await;

    // Assert 1: the run was scheduled, invited people, and their mail arrived over SMTP.
    assert_eq!(first["trigger"], "schedule");
    assert!(first["scheduled_for"].is_string(), "{first}");
    let invites = first["counts"]["invite"].as_i64().unwrap() as usize;
    assert!(invites > 0, "{first}");
    let mails = smtp.wait_for(invites, Duration::from_secs(20)).await;
    assert_eq!(mails.len(), invites, "each invite mailed once");
    let report = daemon.get(&format!("/api/runs/{}", first["run_id"])).await;
    assert!(
        report["changes"].as_array().unwrap().len() >= invites,
        "{report}"
    );
    let health = daemon.get("/healthz").await;
    assert_eq!(health["database"], "ok");
    assert_eq!(health["connectors"][0]["connector"], "scim_hr");

    // Act 2: the HR system becomes slow, so the next run is mid-fetch when SIGTERM comes; the
    // grace period (1 s) is shorter than the fetch.
    scim_server(&hr, Duration::from_secs(4)).await;
    eventually(Duration::from_secs(10), "a run in progress", || async {
        let runs = daemon.get("/api/runs?connector=scim_hr&limit=1").await;
        (runs[0]["status"] == "running").then_some(())
    })
    .await;
    let clean_exit = daemon.terminate();

    // Assert 2: the daemon stopped cleanly and the cut-off run is failed, with nothing applied.
    assert!(clean_exit, "serve exits 0 on SIGTERM");
    let log = daemon.log();
    assert!(log.contains("Stopping"), "{log}");
    let store = open_store(dir.path()).await;
    let runs = store.list_runs(100, Some("scim_hr")).await.unwrap();
    assert!(
        runs.iter()
            .all(|r| r.status != hrsync::domain::RunStatus::Running),
        "no run is left running: {runs:#?}"
    );
    let cut = runs
        .iter()
        .find(|r| r.status == hrsync::domain::RunStatus::Failed)
        .expect("the cut-off run is failed");
    let cut = store.run_report(cut.id).await.unwrap().unwrap();
    assert_eq!(cut.errors[0].code, "HR104", "{:?}", cut.errors);
    assert!(cut.changes.is_empty());
    assert_eq!(
        smtp.messages().len(),
        invites,
        "no mail from the cut-off run"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_with_control_characters_are_mailed_clean_and_the_mail_keeps_flowing() {
    // Arrange: an HR system whose names hold CR LF, tabs, NUL and a bidi override, and a
    // daemon that runs the connector every second.
    let dir = tempfile::tempdir().unwrap();
    let hr = MockServer::start().await;
    let people = ScimPeople::mount(&hr, 5).await;
    people.set_hostile_names();
    let smtp = SmtpSink::start().await;
    let port = free_port();
    let mut setup = Setup::sqlite(dir.path(), port, &smtp.url(), &hr.uri());
    setup.schedule = Some("* * * * * *".to_string());
    setup.write(dir.path());
    let mut daemon = Daemon::start(dir.path(), port);
    daemon.ready().await;

    // Act: the first people are invited, then three more join.
    let first = smtp.wait_for(5, Duration::from_secs(30)).await;
    people.set_people(8);
    let all = smtp.wait_for(8, Duration::from_secs(30)).await;

    // Assert: every mail went to a clean, one-line name, and the daemon stayed healthy.
    for mail in &all {
        let to = smtp::decode_words(&mail.header("To").unwrap_or_default());
        assert!(
            to.contains("\"Person 0") && !to.chars().any(|c| c.is_control() || c == '\u{202E}'),
            "{to:?}"
        );
    }
    assert_eq!(first.len(), 5);
    assert_eq!(all.len(), 8, "each person mailed once");
    let health = daemon.get("/healthz").await;
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(health["mail_worker"], "ok", "{health}");
    assert!(daemon.terminate(), "serve exits 0 on SIGTERM");
}

/// The router in-process on port 0, over a SQLite database in a new folder, with the SCIM
/// connector (unscheduled) on a SCIM fixture server. Returns the folder, the HR server (both
/// must live as long as the test) and the base URL.
async fn spawn_router() -> (tempfile::TempDir, MockServer, String) {
    let dir = tempfile::tempdir().unwrap();
    let hr = MockServer::start().await;
    scim_server(&hr, Duration::ZERO).await;
    let base = serve_in_process(dir.path(), &hr.uri(), HttpLimits::default()).await;
    (dir, hr, base)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_admin_route_refuses_a_request_without_the_token() {
    // Arrange
    let (_dir, _hr, base) = spawn_router().await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    for route in admin_routes() {
        let url = format!("{base}{}", route.path.replace("{id}", "1"));
        // Act: no token, then a wrong one.
        let bare = client
            .request(route.method.clone(), &url)
            .send()
            .await
            .unwrap();
        let wrong = client
            .request(route.method.clone(), &url)
            .bearer_auth("not-the-token")
            .header("Cookie", format!("hrsync_admin={}", "0".repeat(64)))
            .send()
            .await
            .unwrap();

        // Assert: the API answers 401; a page sends the browser to sign in.
        for response in [bare, wrong] {
            let what = format!("{} {}", route.method, route.path);
            if route.path.starts_with("/api/") {
                assert_eq!(response.status(), 401, "{what}");
            } else {
                assert_eq!(response.status(), 303, "{what}");
                let location = response.headers()["location"].to_str().unwrap();
                assert!(location.starts_with("/signin?next="), "{what}: {location}");
            }
        }
    }
    // The open routes stay open, and a GET with the token gets through.
    assert_eq!(
        client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        client
            .get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let runs = client
        .get(format!("{base}/api/runs"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(runs.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_triggered_run_is_reported_and_its_activation_link_works_once() {
    // Arrange: a run started over the API. Its activation mails go to an SMTP port where
    // nothing listens, so they stay queued; the token is issued straight from the store.
    let (dir, _hr, base) = spawn_router().await;
    let client = reqwest::Client::new();

    // Act 1: trigger a run.
    let started = admin_post(
        &base,
        "/api/runs",
        serde_json::json!({ "connector": "scim_hr" }),
    )
    .await;
    assert_eq!(started.status(), 202);
    let run_id = started.json::<serde_json::Value>().await.unwrap()["run_id"]
        .as_i64()
        .unwrap();
    let report = eventually(Duration::from_secs(20), "the run to end", || async {
        let r = admin_get(&base, &format!("/api/runs/{run_id}")).await;
        (r["status"] != "running").then_some(r)
    })
    .await;

    // Assert 1
    assert_eq!(report["status"], "succeeded", "{report}");
    assert_eq!(report["trigger"], "api");
    // A run that is not there is not found; one that was not held cannot be approved.
    let missing = admin_post(&base, "/api/runs/999999/approve", serde_json::json!({})).await;
    let not_held = admin_post(
        &base,
        &format!("/api/runs/{run_id}/approve"),
        serde_json::json!({}),
    )
    .await;
    assert_eq!(missing.status(), 404);
    assert_eq!(not_held.status(), 409);

    // Act 2: issue a token for one invited person, as the mail worker would, and activate.
    let store = open_store(dir.path()).await;
    // Once the daemon's worker has tried every mail and set it to retry a minute later, claim
    // one as if that time had come (before that, the worker could issue a token of its own,
    // which would revoke the test's).
    eventually(Duration::from_secs(20), "every mail tried once", || async {
        let outbox = store.outbox_stats().await.ok()?;
        (outbox.pending > 0 && outbox.failing == outbox.pending).then_some(())
    })
    .await;
    let mail = store
        .claim_due_mail(
            chrono::Utc::now() + chrono::Duration::days(1),
            Duration::from_secs(60),
            1,
        )
        .await
        .unwrap()
        .remove(0);
    let token = "a-token-for-the-test-0123456789abcdef";
    let now = chrono::Utc::now();
    store
        .issue_activation_token(
            &mail,
            &hrsync::mail::outbox::token_hash(token),
            now,
            now + chrono::Duration::days(1),
        )
        .await
        .unwrap();
    let activate = |token: &'static str| {
        let client = client.clone();
        let base = base.clone();
        async move {
            client
                .post(format!("{base}/api/activate"))
                .json(&serde_json::json!({ "token": token }))
                .send()
                .await
                .unwrap()
        }
    };
    let first = activate(token).await;
    let second = activate(token).await;
    let unknown = activate("no-such-token").await;

    // Assert 2: single use, with a clear 410 the second time.
    assert_eq!(first.status(), 200);
    assert_eq!(second.status(), 410);
    let body: serde_json::Value = second.json().await.unwrap();
    assert_eq!(body["state"], "used", "{body}");
    assert_eq!(unknown.status(), 404);
    let accounts = admin_get(&base, "/api/accounts?status=active").await;
    assert_eq!(accounts.as_array().unwrap().len(), 1, "{accounts}");
    assert!(accounts[0]["activated_at"].is_string(), "{accounts}");
}

/// A fresh PostgreSQL database for one test, dropped when the guard goes.
struct PgDatabase {
    admin: String,
    name: String,
    url: String,
}

impl PgDatabase {
    /// A database of its own for `purpose`. A test that needs one is ignored, with the reason,
    /// unless asked for (`--include-ignored`); asked for without `HRSYNC_TEST_POSTGRES_URL`,
    /// it fails saying so. `.ci/run` sets the variable.
    async fn create(purpose: &str) -> PgDatabase {
        use sqlx::Connection;
        let Some(admin) = std::env::var("HRSYNC_TEST_POSTGRES_URL")
            .ok()
            .filter(|u| !u.is_empty())
        else {
            panic!(
                "{purpose} was asked to run but needs PostgreSQL: set HRSYNC_TEST_POSTGRES_URL \
                 (e.g. postgres://postgres@127.0.0.1/postgres)"
            );
        };
        let name = format!("hrsync_serve_{}", std::process::id());
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .expect("HRSYNC_TEST_POSTGRES_URL must reach PostgreSQL");
        for statement in [
            format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            format!("CREATE DATABASE {name}"),
        ] {
            sqlx::query(&statement).execute(&mut conn).await.unwrap();
        }
        let (base, _) = admin.rsplit_once('/').expect("a URL with a database name");
        let url = format!("{base}/{name}");
        PgDatabase { admin, name, url }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        // Drop runs outside the test's runtime; a small one of its own does the cleanup.
        let _ = std::thread::spawn(move || {
            use sqlx::Connection;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut conn)
                        .await;
                }
            })
        })
        .join();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: set HRSYNC_TEST_POSTGRES_URL and run with --include-ignored (.ci/run does)"]
async fn two_replicas_on_one_postgres_run_each_tick_once_and_send_each_mail_once() {
    // Arrange: one PostgreSQL database, a SCIM server with 300 people, one slow SMTP server, and
    // two daemons with the same configuration (but their own ports) running the connector
    // every second; the admin gets a digest of every run that changes something.
    let database = PgDatabase::create("the two-replica test").await;
    let hr = MockServer::start().await;
    let people = ScimPeople::mount(&hr, 300).await;
    // A busy mail server: draining a run's invitations takes a few seconds, so the other
    // replica's mail worker (polling every second) takes part.
    let smtp = SmtpSink::slow(Duration::from_millis(50)).await;
    let admin = "it@acme.example";
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let mut replicas: Vec<Daemon> = dirs
        .iter()
        .map(|dir| {
            let port = free_port();
            Setup {
                database: database.url.clone(),
                port,
                smtp: smtp.url(),
                hr: hr.uri(),
                schedule: Some("* * * * * *".to_string()),
                digest_to: vec![admin.to_string()],
            }
            .write(dir.path());
            Daemon::start(dir.path(), port)
        })
        .collect();
    for replica in &replicas {
        replica.ready().await;
    }
    let (a, b) = (&replicas[0], &replicas[1]);
    let succeeded_with_invites = |n: i64| {
        move || async move {
            let runs = a.get("/api/runs?connector=scim_hr&limit=100").await;
            runs.as_array()?
                .iter()
                .find(|r| r["status"] == "succeeded" && r["counts"]["invite"] == n)
                .cloned()
        }
    };

    // Act 1: the replicas sync the 300 people on their schedules.
    eventually(
        Duration::from_secs(60),
        "a run inviting 300 people",
        succeeded_with_invites(300),
    )
    .await;

    // Act 2: while a run is in progress (the HR system is slow now), both replicas are asked
    // to start one.
    people.set_delay(Duration::from_millis(1500));
    eventually(Duration::from_secs(20), "a run in progress", || async {
        let runs = a.get("/api/runs?connector=scim_hr&limit=1").await;
        (runs[0]["status"] == "running").then_some(())
    })
    .await;
    let asked = [
        a.post("/api/runs", serde_json::json!({ "connector": "scim_hr" }))
            .await
            .status(),
        b.post("/api/runs", serde_json::json!({ "connector": "scim_hr" }))
            .await
            .status(),
    ];
    people.set_delay(Duration::ZERO);

    // Act 3: 60 people join; then the replicas run on until all mail is out, and stop.
    people.set_people(360);
    eventually(
        Duration::from_secs(60),
        "a run inviting the 60 new people",
        succeeded_with_invites(60),
    )
    .await;
    let mails = smtp.wait_for(360 + 2, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let late = smtp.messages().len() - mails.len();
    let exits: Vec<bool> = replicas.iter_mut().map(Daemon::terminate).collect();

    // Assert: neither replica started a run while the other's was in progress.
    assert_eq!(
        asked.map(|s| s.as_u16()),
        [409, 409],
        "a run in progress on either replica refuses another"
    );
    assert_eq!(exits, [true, true], "both replicas stop cleanly");
    let store = hrsync::store::Store::connect(&database.url, 1)
        .await
        .unwrap();
    let mut runs = store.list_runs(10_000, Some("scim_hr")).await.unwrap();
    runs.reverse();
    assert!(runs.len() >= 3, "{runs:#?}");
    // No tick ran twice, and no two runs overlapped.
    let ticks: Vec<_> = runs.iter().filter_map(|r| r.scheduled_for).collect();
    let distinct: BTreeSet<_> = ticks.iter().collect();
    assert_eq!(ticks.len(), distinct.len(), "a tick ran twice: {ticks:?}");
    for pair in runs.windows(2) {
        let ended = pair[0].finished_at.expect("an earlier run has ended");
        assert!(
            ended <= pair[1].started_at,
            "run {} started before run {} ended",
            pair[1].id,
            pair[0].id
        );
    }
    // Only a run cut off by the stop may have failed; everything else went through.
    for run in &runs {
        if run.status == hrsync::domain::RunStatus::Failed {
            let report = store.run_report(run.id).await.unwrap().unwrap();
            assert_eq!(report.errors[0].code, "HR104", "{:?}", report.errors);
        }
    }
    // Each person got one activation mail; the admin got one digest per run that changed
    // something; nothing came twice.
    assert_eq!(late, 0, "no mail after the outbox was empty");
    let mut received: BTreeMap<String, usize> = BTreeMap::new();
    for mail in &mails {
        for to in &mail.to {
            *received.entry(to.clone()).or_default() += 1;
        }
    }
    let changing_runs = runs
        .iter()
        .filter(|r| hrsync::report::actionable_count(r) > 0)
        .count();
    assert_eq!(changing_runs, 2, "{runs:#?}");
    assert_eq!(received.remove(admin), Some(changing_runs));
    assert_eq!(received.len(), 360);
    assert!((1..=360).all(|i| received.get(&ScimPeople::email(i)) == Some(&1)));
    let outbox = store.outbox_stats().await.unwrap();
    assert_eq!((outbox.pending, outbox.sent), (0, 362));
    // Both replicas took part: each ran runs and sent mail (which one did what is up to
    // timing), so the counts above held under real contention.
    let ran: Vec<usize> = replicas
        .iter()
        .map(|d| d.log().matches("\"Run ended\"").count())
        .collect();
    let sent: Vec<usize> = replicas
        .iter()
        .map(|d| d.log().matches("\"Mail sent\"").count())
        .collect();
    eprintln!("runs ended per replica: {ran:?}; mails sent per replica: {sent:?}");
    assert!(ran.iter().all(|n| *n > 0), "runs per replica: {ran:?}");
    assert!(sent.iter().all(|n| *n > 0), "mails per replica: {sent:?}");
    assert_eq!(ran.iter().sum::<usize>(), runs.len());
    assert_eq!(sent.iter().sum::<usize>(), 362);
    store.close().await;
}
