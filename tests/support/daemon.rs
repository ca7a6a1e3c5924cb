#![allow(dead_code)]
//! `hrsync serve` for tests: a SCIM 2.0 HR server on wiremock (the fixture's seven people, or
//! any number of generated ones), a configuration for the daemon, and the daemon as a child
//! process that can be waited for, asked over HTTP and stopped with SIGTERM, or in-process on
//! port 0 with HTTP limits of the test's choosing.
//!
//! Include it with `#[path = "support/daemon.rs"] mod daemon;`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use hrsync::server::{AdminToken, HttpLimits};
use wiremock::matchers::{header, path, query_param};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// The admin token every test daemon accepts.
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";
/// The environment variable that holds the SCIM server's token.
pub const SCIM_TOKEN_VAR: &str = "HRSYNC_TEST_SERVE_SCIM_TOKEN";
const SCIM_TOKEN: &str = "scim-token";

pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Serves the SCIM fixture's two pages (a tenant without custom fields), each after `delay`.
pub async fn scim_server(server: &MockServer, delay: Duration) {
    server.reset().await;
    for (start, page) in [("1", "users-page-1.json"), ("4", "users-page-2.json")] {
        let body: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(root().join("tests/fixtures/scim/tenant-b").join(page))
                .unwrap(),
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

/// A SCIM `/Users` list of generated people, paged as RFC 7644 §3.4.2.4 says (`startIndex`
/// is 1-based, `count` is the page size). The number of people and a delay per page can be
/// changed while the server runs.
#[derive(Clone, Default)]
pub struct ScimPeople {
    people: Arc<AtomicUsize>,
    delay_ms: Arc<AtomicU64>,
    /// Names with CR LF, tabs, NUL and bidi marks, as a hostile HR system gives them.
    hostile_names: Arc<std::sync::atomic::AtomicBool>,
}

impl ScimPeople {
    /// Mounts the list on `server` with `people` people.
    pub async fn mount(server: &MockServer, people: usize) -> ScimPeople {
        let list = ScimPeople::default();
        list.set_people(people);
        Mock::given(path("/scim/v2/Users"))
            .and(header("authorization", "Bearer scim-token"))
            .respond_with(list.clone())
            .mount(server)
            .await;
        list
    }

    pub fn set_people(&self, people: usize) {
        self.people.store(people, Ordering::SeqCst);
    }

    /// Gives every person a name full of control characters from now on: given name
    /// `"Person\r\n"`, family name `"\u{202E}0001\t\u{0}"`, display name `"Person\n0001"`.
    /// Cleaned, the person is called `Person 0001`.
    pub fn set_hostile_names(&self) {
        self.hostile_names.store(true, Ordering::SeqCst);
    }

    pub fn set_delay(&self, delay: Duration) {
        self.delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    /// The work address of person `i` (1-based).
    pub fn email(i: usize) -> String {
        format!("person{i:04}@acme.example")
    }
}

impl Respond for ScimPeople {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let query = |name: &str| {
            request
                .url
                .query_pairs()
                .find(|(k, _)| k == name)
                .and_then(|(_, v)| v.parse::<usize>().ok())
        };
        let total = self.people.load(Ordering::SeqCst);
        let hostile = self.hostile_names.load(Ordering::SeqCst);
        let name = |i: usize, hostile: bool| {
            if hostile {
                serde_json::json!({ "givenName": "Person\r\n", "familyName": format!("\u{202E}{i:04}\t\u{0}") })
            } else {
                serde_json::json!({ "givenName": "Person", "familyName": format!("{i:04}") })
            }
        };
        let start = query("startIndex").unwrap_or(1).max(1);
        let count = query("count").unwrap_or(100);
        let resources: Vec<serde_json::Value> = (start..start + count)
            .take_while(|i| *i <= total)
            .map(|i| {
                serde_json::json!({
                    "schemas": [
                        "urn:ietf:params:scim:schemas:core:2.0:User",
                        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
                    ],
                    "id": format!("user-{i}"),
                    "userName": format!("person{i:04}"),
                    "name": name(i, hostile),
                    "displayName": if hostile { format!("Person\n{i:04}") } else { format!("Person {i:04}") },
                    "emails": [{ "value": ScimPeople::email(i), "type": "work", "primary": true }],
                    "title": "Verzorgende",
                    "active": true,
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                        "employeeNumber": format!("E{i:04}"),
                        "department": format!("Team {}", i % 12)
                    }
                })
            })
            .collect();
        ResponseTemplate::new(200)
            .set_body_json(serde_json::json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
                "totalResults": total,
                "startIndex": start,
                "itemsPerPage": resources.len(),
                "Resources": resources,
            }))
            .set_delay(Duration::from_millis(self.delay_ms.load(Ordering::SeqCst)))
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// What a test daemon's configuration says: one organisation (`acme`) and one SCIM connector
/// (`scim_hr`).
pub struct Setup {
    /// `sqlite://…` or `postgres://…`.
    pub database: String,
    pub port: u16,
    /// The SMTP server's URL.
    pub smtp: String,
    /// The HR server's base URL.
    pub hr: String,
    pub schedule: Option<String>,
    /// Digest recipients of the organisation (with a `server.public_url`).
    pub digest_to: Vec<String>,
}

impl Setup {
    /// SQLite in `dir`, no schedule, no digest.
    pub fn sqlite(dir: &Path, port: u16, smtp: &str, hr: &str) -> Setup {
        Setup {
            database: format!("sqlite://{}", dir.join("hrsync.db").display()),
            port,
            smtp: smtp.to_string(),
            hr: hr.to_string(),
            schedule: None,
            digest_to: Vec::new(),
        }
    }

    /// Writes `hrsync.toml` into `dir` and returns its path.
    pub fn write(&self, dir: &Path) -> PathBuf {
        let schedule = self
            .schedule
            .as_ref()
            .map(|s| format!("schedule = \"{s}\"\n"))
            .unwrap_or_default();
        let digest = if self.digest_to.is_empty() {
            String::new()
        } else {
            format!("digest_to = {:?}\n", self.digest_to)
        };
        let config = format!(
            r#"
[database]
url = "{database}"

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
public_url = "http://127.0.0.1:{port}"

[organisations.acme]
name = "Acme"
time_zone = "Europe/Amsterdam"
{digest}
[connectors.scim_hr]
organisation = "acme"
kind = "http"
{schedule}
[connectors.scim_hr.http]
definition = "{definition}"
variables = {{ base_url = "{hr}/scim/v2" }}
secrets = {{ token = "{SCIM_TOKEN_VAR}" }}
"#,
            database = self.database,
            smtp = self.smtp,
            port = self.port,
            hr = self.hr,
            hash = AdminToken::hash_hex(ADMIN_TOKEN),
            definition = root().join("connectors/scim.toml").display(),
        );
        let path = dir.join("hrsync.toml");
        std::fs::write(&path, config).unwrap();
        path
    }
}

/// `hrsync serve` as a child process, logging JSON to `serve.log` in its folder.
pub struct Daemon {
    child: Child,
    pub base: String,
    log: PathBuf,
}

impl Daemon {
    /// Starts the daemon on the configuration in `dir`, listening on `port`.
    pub fn start(dir: &Path, port: u16) -> Daemon {
        let log = dir.join("serve.log");
        let child = Command::new(env!("CARGO_BIN_EXE_hrsync"))
            .args([
                "--config",
                dir.join("hrsync.toml").to_str().unwrap(),
                "serve",
            ])
            .env(SCIM_TOKEN_VAR, SCIM_TOKEN)
            .env("HRSYNC_LOG", "info")
            .env("HRSYNC_LOG_FORMAT", "json")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Daemon {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
        }
    }

    /// What the daemon logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// GETs an admin route (or an open one) with the admin token, as JSON.
    pub async fn get(&self, path: &str) -> serde_json::Value {
        admin_get(&self.base, path).await
    }

    /// POSTs `body` to an admin route with the admin token.
    pub async fn post(&self, path: &str, body: serde_json::Value) -> reqwest::Response {
        admin_post(&self.base, path, body).await
    }

    /// Waits until the daemon answers `/healthz`.
    pub async fn ready(&self) {
        for _ in 0..400 {
            if let Ok(r) = reqwest::get(format!("{}/healthz", self.base)).await
                && r.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the daemon did not come up; its log:\n{}", self.log());
    }

    /// Sends SIGTERM and waits for the process to end; returns whether it exited 0.
    pub fn terminate(&mut self) -> bool {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        for _ in 0..300 {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        panic!("the daemon did not stop within 15 s of SIGTERM");
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The daemon in-process on port 0 with `limits`, over a SQLite database in `dir`, with the
/// SCIM connector (unscheduled) on the HR server at `hr` and mail to an SMTP port where nothing
/// listens. Returns the base URL; the daemon runs until the test's runtime ends.
pub async fn serve_in_process(dir: &Path, hr: &str, limits: HttpLimits) -> String {
    serve_in_process_with(dir, hr, limits, "").await
}

/// [`serve_in_process`] with `extra` TOML appended to the configuration (a table of the
/// `scim_hr` connector, say).
#[allow(
    dead_code,
    reason = "not every test binary that loads this module adds settings"
)]
pub async fn serve_in_process_with(
    dir: &Path,
    hr: &str,
    limits: HttpLimits,
    extra: &str,
) -> String {
    let path = Setup::sqlite(dir, 0, "smtp://127.0.0.1:9", hr).write(dir);
    let mut config = std::fs::read_to_string(&path).unwrap();
    config.push_str(extra);
    std::fs::write(&path, config).unwrap();
    // SAFETY: tests set this variable to the same value before building an app.
    unsafe { std::env::set_var(SCIM_TOKEN_VAR, SCIM_TOKEN) };
    let config = hrsync::config::load_checked(&dir.join("hrsync.toml")).unwrap();
    let app = hrsync::sync::App::build(config).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let token = AdminToken::from_hex(&AdminToken::hash_hex(ADMIN_TOKEN)).unwrap();
    tokio::spawn(hrsync::server::serve_with(
        app,
        token,
        listener,
        limits,
        std::future::pending(),
    ));
    base
}

/// The daemon's SQLite database in `dir` (as [`serve_in_process`] and [`Setup::sqlite`] make
/// it), opened beside the daemon.
pub async fn open_store(dir: &Path) -> hrsync::store::Store {
    hrsync::store::Store::connect(&format!("sqlite://{}", dir.join("hrsync.db").display()), 1)
        .await
        .unwrap()
}

/// GETs `path` under `base` with the admin token, as JSON.
pub async fn admin_get(base: &str, path: &str) -> serde_json::Value {
    reqwest::Client::new()
        .get(format!("{base}{path}"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// POSTs `body` as JSON to `path` under `base` with the admin token.
pub async fn admin_post(base: &str, path: &str, body: serde_json::Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{base}{path}"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Polls `probe` until it gives `Some`, for at most `timeout`.
pub async fn eventually<T, F: std::future::Future<Output = Option<T>>>(
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
