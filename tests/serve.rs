//! The daemon end to end: `hrsync serve` as a process, on a 1-second schedule against a SCIM
//! fixture server, sending mail to a real SMTP server and stopping on SIGTERM; and the HTTP
//! router in-process: every admin route refuses a request without the token, and activation
//! answers 410 for a used link.

#[path = "support/smtp.rs"]
mod smtp;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use hrsync::server::{AdminToken, admin_routes};
use smtp::SmtpSink;
use wiremock::matchers::{header, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const ADMIN_TOKEN: &str = "test-admin-token-0123456789";
const SCIM_TOKEN_VAR: &str = "HRSYNC_TEST_SERVE_SCIM_TOKEN";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Serves the SCIM fixture's three pages, each after `delay`.
async fn scim_server(server: &MockServer, delay: Duration) {
    server.reset().await;
    for (start, page) in [
        ("1", "page-1.json"),
        ("4", "page-2.json"),
        ("7", "page-3.json"),
    ] {
        let body: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(root().join("tests/fixtures/scim").join(page)).unwrap(),
        )
        .unwrap();
        Mock::given(query_param("startIndex", start))
            .and(header("authorization", "Bearer scim-token"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(body)
                    .set_delay(delay),
            )
            .mount(server)
            .await;
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A configuration for `serve`: SQLite in `dir`, SMTP to `smtp`, one SCIM connector.
fn write_config(dir: &Path, port: u16, smtp: &str, hr: &str, schedule: Option<&str>) {
    let schedule = schedule
        .map(|s| format!("schedule = \"{s}\"\n"))
        .unwrap_or_default();
    let config = format!(
        r#"
[database]
url = "sqlite://{db}"

[mail]
from = "Acme HR <hr@acme.example>"
transport = "smtp"
smtp_url = "{smtp}"
activation_url = "https://app.acme.example/activate?token={{token}}"

[server]
listen = "127.0.0.1:{port}"
admin_token_sha256 = "{hash}"
cookie_secure = false
mail_poll_seconds = 1
shutdown_grace_seconds = 1

[organisations.acme]
name = "Acme"
time_zone = "Europe/Amsterdam"

[connectors.scim_hr]
organisation = "acme"
kind = "http"
{schedule}
[connectors.scim_hr.http]
definition = "{definition}"
variables = {{ base_url = "{hr}/scim/v2" }}
secrets = {{ token = "{SCIM_TOKEN_VAR}" }}
"#,
        db = dir.join("hrsync.db").display(),
        hash = AdminToken::hash_hex(ADMIN_TOKEN),
        definition = root().join("connectors/scim.toml").display(),
    );
    std::fs::write(dir.join("hrsync.toml"), config).unwrap();
}

struct Daemon {
    child: Child,
    base: String,
}

impl Daemon {
    fn start(dir: &Path, port: u16) -> Daemon {
        let child = Command::new(env!("CARGO_BIN_EXE_hrsync"))
            .args([
                "--config",
                dir.join("hrsync.toml").to_str().unwrap(),
                "serve",
            ])
            .env(SCIM_TOKEN_VAR, "scim-token")
            .env("HRSYNC_LOG", "info")
            .env("HRSYNC_LOG_FORMAT", "json")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("serve.log")).unwrap())
            .spawn()
            .unwrap();
        Daemon {
            child,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    async fn get(&self, path: &str) -> serde_json::Value {
        reqwest::Client::new()
            .get(format!("{}{path}", self.base))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Waits until the daemon answers `/healthz`.
    async fn ready(&self) {
        for _ in 0..200 {
            if let Ok(r) = reqwest::get(format!("{}/healthz", self.base)).await
                && r.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the daemon did not come up");
    }

    /// Sends SIGTERM and waits for the process to end; returns whether it exited 0.
    fn terminate(&mut self) -> bool {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        for _ in 0..200 {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        panic!("the daemon did not stop within 10 s of SIGTERM");
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

/// Polls `probe` until it gives `Some`, for at most `timeout`.
/// The daemon's SQLite database in `dir`, opened beside it.
async fn open_store(dir: &Path) -> hrsync::store::Store {
    hrsync::store::Store::connect(&format!("sqlite://{}", dir.join("hrsync.db").display()), 1)
        .await
        .unwrap()
}

async fn eventually<T, F: std::future::Future<Output = Option<T>>>(
    timeout: Duration,
    what: &str,
    mut probe: impl FnMut() -> F,
) -> T {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_runs_send_mail_and_sigterm_mid_run_applies_nothing_of_it() {
    // Arrange: a SCIM server, an SMTP server and a daemon that runs the connector every second.
    let dir = tempfile::tempdir().unwrap();
    let hr = MockServer::start().await;
    scim_server(&hr, Duration::ZERO).await;
    let smtp = SmtpSink::start().await;
    let port = free_port();
    write_config(
        dir.path(),
        port,
        &smtp.url(),
        &hr.uri(),
        Some("* * * * * *"),
    );

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
    let log = std::fs::read_to_string(dir.path().join("serve.log")).unwrap();
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

/// The router in-process on port 0, over a SQLite database in a new folder, with the SCIM
/// connector (unscheduled) on a SCIM fixture server. Returns the folder, the HR server (both
/// must live as long as the test) and the base URL.
async fn spawn_router() -> (tempfile::TempDir, MockServer, String) {
    let dir = tempfile::tempdir().unwrap();
    let hr = MockServer::start().await;
    scim_server(&hr, Duration::ZERO).await;
    let base = serve_in_process(dir.path(), &hr.uri()).await;
    (dir, hr, base)
}

async fn serve_in_process(dir: &Path, hr: &str) -> String {
    write_config(dir, 0, "smtp://127.0.0.1:9", hr, None);
    // SAFETY: tests in this binary set this variable to the same value before building an app.
    unsafe { std::env::set_var(SCIM_TOKEN_VAR, "scim-token") };
    let config = hrsync::config::load_checked(&dir.join("hrsync.toml")).unwrap();
    let app = hrsync::sync::App::build(config).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let token = AdminToken::from_hex(&AdminToken::hash_hex(ADMIN_TOKEN)).unwrap();
    tokio::spawn(hrsync::server::serve_on(
        app,
        token,
        listener,
        std::future::pending(),
    ));
    base
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_admin_route_answers_401_without_the_token() {
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
            .header("Cookie", "hrsync_admin=not-the-token")
            .send()
            .await
            .unwrap();

        // Assert
        assert_eq!(bare.status(), 401, "{} {}", route.method, route.path);
        assert_eq!(wrong.status(), 401, "{} {}", route.method, route.path);
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
    let started = client
        .post(format!("{base}/api/runs"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({ "connector": "scim_hr" }))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 202);
    let run_id = started.json::<serde_json::Value>().await.unwrap()["run_id"]
        .as_i64()
        .unwrap();
    let report = eventually(Duration::from_secs(20), "the run to end", || {
        let client = client.clone();
        let base = base.clone();
        async move {
            let r: serde_json::Value = client
                .get(format!("{base}/api/runs/{run_id}"))
                .bearer_auth(ADMIN_TOKEN)
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            (r["status"] != "running").then_some(r)
        }
    })
    .await;

    // Assert 1
    assert_eq!(report["status"], "succeeded", "{report}");
    assert_eq!(report["trigger"], "api");

    // Act 2: issue a token for one invited person, as the mail worker would, and activate.
    let store = open_store(dir.path()).await;
    // The daemon's worker tried the mail already and set it to retry later: claim it as if
    // that time had come.
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
    let accounts: serde_json::Value = client
        .get(format!("{base}/api/accounts?status=active"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(accounts.as_array().unwrap().len(), 1, "{accounts}");
    assert!(accounts[0]["activated_at"].is_string(), "{accounts}");
}
