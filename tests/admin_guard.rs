//! The admin guard against hostile requests, on the daemon in-process: sign-in sessions (the
//! cookie holds a session id, never the token; signing out, expiry and idleness end it on the
//! server), the cross-origin check on cookie-signed changes whatever `Authorization` comes
//! with them, the HTTP limits (header-read timeout, request timeout, bound on connections) and
//! a `/healthz` that names what is unhealthy without showing error text.

// A test stops at the first thing that is not as expected.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "support/daemon.rs"]
mod daemon;

use std::path::Path;
use std::time::{Duration, Instant};

use chrono::Utc;
use daemon::{ADMIN_TOKEN, admin_get, open_store, scim_server, serve_in_process};
use hrsync::server::{HttpLimits, session_hash};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wiremock::MockServer;

/// What a test runs against: the daemon's folder, its HR server (both must live as long as the
/// test) and its base URL.
struct Served {
    dir: tempfile::TempDir,
    _hr: MockServer,
    base: String,
}

async fn serve(limits: HttpLimits) -> Served {
    let dir = tempfile::tempdir().unwrap();
    let hr = MockServer::start().await;
    scim_server(&hr, Duration::ZERO).await;
    let base = serve_in_process(dir.path(), &hr.uri(), limits).await;
    Served { dir, _hr: hr, base }
}

/// A client that shows redirects instead of following them.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Signs in with the admin token as the sign-in form does; returns the `Set-Cookie` header.
async fn sign_in(base: &str) -> String {
    let response = client()
        .post(format!("{base}/signin"))
        .form(&[("token", ADMIN_TOKEN), ("next", "/runs")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303, "sign-in redirects back");
    response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_string()
}

/// The session id in a `Set-Cookie` header.
fn session_of(set_cookie: &str) -> String {
    set_cookie
        .split(';')
        .next()
        .and_then(|pair| pair.strip_prefix("hrsync_admin="))
        .expect("the sign-in cookie")
        .to_string()
}

/// GETs `path` with session cookie `session`.
async fn with_session(base: &str, path: &str, session: &str) -> reqwest::Response {
    client()
        .get(format!("{base}{path}"))
        .header("cookie", format!("hrsync_admin={session}"))
        .send()
        .await
        .unwrap()
}

/// How many runs the daemon has recorded.
async fn run_count(base: &str) -> usize {
    admin_get(base, "/api/runs").await.as_array().unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cookie_signed_post_from_another_origin_with_basic_credentials_is_refused() {
    // Arrange: a signed-in browser whose proxy also sends HTTP Basic credentials, as browsers
    // do by themselves once asked.
    let served = serve(HttpLimits::default()).await;
    let base = &served.base;
    let session = session_of(&sign_in(base).await);
    let cookie = format!("hrsync_admin={session}");
    let basic = "Basic cHJveHk6cHJveHktcGFzc3dvcmQ=";

    // Act: a page on a sibling subdomain posts to the API and to the run form.
    let api = client()
        .post(format!("{base}/api/runs"))
        .header("cookie", &cookie)
        .header("authorization", basic)
        .header("sec-fetch-site", "same-site")
        .json(&serde_json::json!({ "connector": "scim_hr" }))
        .send()
        .await
        .unwrap();
    let form = client()
        .post(format!("{base}/runs"))
        .header("cookie", &cookie)
        .header("authorization", basic)
        .header("origin", "https://intranet.acme.example")
        .header("host", "hrsync.acme.example")
        .form(&[("connector", "scim_hr")])
        .send()
        .await
        .unwrap();
    let bearer_with_cookie = client()
        .post(format!("{base}/api/runs"))
        .header("cookie", &cookie)
        .header("authorization", "Bearer not-the-token")
        .header("sec-fetch-site", "cross-site")
        .json(&serde_json::json!({ "connector": "scim_hr" }))
        .send()
        .await
        .unwrap();
    let runs_after_refusals = run_count(base).await;
    // The same form from this origin goes through: the cookie itself works.
    let same_origin = client()
        .post(format!("{base}/runs"))
        .header("cookie", &cookie)
        .header("authorization", basic)
        .header("sec-fetch-site", "same-origin")
        .form(&[("connector", "scim_hr"), ("dry_run", "true")])
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(api.status(), 403);
    assert_eq!(form.status(), 403);
    assert_eq!(
        bearer_with_cookie.status(),
        403,
        "a wrong bearer token exempts nothing"
    );
    assert_eq!(runs_after_refusals, 0, "no run was started");
    assert_eq!(same_origin.status(), 303);
    assert!(
        same_origin.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("/runs/")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_bearer_token_is_not_held_to_the_origin_check() {
    // Arrange
    let served = serve(HttpLimits::default()).await;

    // Act: an API client whose requests happen to carry browser headers.
    let response = client()
        .post(format!("{}/api/runs", served.base))
        .bearer_auth(ADMIN_TOKEN)
        .header("sec-fetch-site", "cross-site")
        .json(&serde_json::json!({ "connector": "scim_hr", "dry_run": true }))
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(response.status(), 202);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_sets_a_session_cookie_that_is_not_the_token_and_sign_out_ends_it_on_the_server() {
    // Arrange
    let served = serve(HttpLimits::default()).await;
    let base = &served.base;

    // Act 1: sign in.
    let set_cookie = sign_in(base).await;
    let session = session_of(&set_cookie);
    let signed_in = with_session(base, "/api/runs", &session).await;

    // Assert 1: the cookie is a 256-bit session id, not the token; the database keeps only
    // its hash; the cookie signs requests in.
    assert_ne!(session, ADMIN_TOKEN);
    assert!(!set_cookie.contains(ADMIN_TOKEN), "{set_cookie}");
    assert_eq!(session.len(), 64);
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"));
    let store = open_store(served.dir.path()).await;
    let stored = store.admin_session(&session_hash(&session)).await.unwrap();
    assert!(stored.is_some_and(|s| s.revoked_at.is_none()));
    assert!(store.admin_session(&session).await.unwrap().is_none());
    assert_eq!(signed_in.status(), 200);

    // Act 2: sign out from the pages, then use the same cookie again.
    let signed_out = client()
        .post(format!("{base}/signout"))
        .header("cookie", format!("hrsync_admin={session}"))
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .unwrap();
    let api = with_session(base, "/api/runs", &session).await;
    let page = with_session(base, "/accounts?status=invited", &session).await;

    // Assert 2: the session ended on the server: the API answers 401, a page sends the
    // browser to sign in (and back to the page afterwards) and forgets the cookie.
    assert_eq!(signed_out.status(), 303);
    assert!(
        signed_out.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let revoked = store.admin_session(&session_hash(&session)).await.unwrap();
    assert!(revoked.is_some_and(|s| s.revoked_at.is_some()));
    assert_eq!(api.status(), 401);
    assert_eq!(page.status(), 303);
    assert_eq!(
        page.headers()["location"],
        "/signin?next=%2Faccounts%3Fstatus%3Dinvited"
    );
    assert!(
        page.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_idle_made_up_and_token_cookies_are_refused_and_a_live_session_is_kept_alive() {
    // Arrange: sessions written straight into the database, as if made earlier.
    let served = serve(HttpLimits::default()).await;
    let base = &served.base;
    let store = open_store(served.dir.path()).await;
    let now = Utc::now();
    let minutes = chrono::Duration::minutes;
    let make = |n: u8| format!("{n:02x}").repeat(32);
    let (expired, idle, live) = (make(1), make(2), make(3));
    for (id, created, last_seen, expires) in [
        // Past its 12 hours, though used a minute ago.
        (
            &expired,
            now - minutes(13 * 60),
            now - minutes(1),
            now - minutes(60),
        ),
        // Unused for 31 minutes.
        (
            &idle,
            now - minutes(60),
            now - minutes(31),
            now + minutes(11 * 60),
        ),
        // Used 5 minutes ago.
        (
            &live,
            now - minutes(60),
            now - minutes(5),
            now + minutes(11 * 60),
        ),
    ] {
        store
            .create_admin_session(&session_hash(id), None, created, expires)
            .await
            .unwrap();
        store
            .touch_admin_session(&session_hash(id), last_seen)
            .await
            .unwrap();
    }

    // Act
    let expired_answer = with_session(base, "/api/runs", &expired).await;
    let idle_answer = with_session(base, "/api/runs", &idle).await;
    let made_up = with_session(base, "/api/runs", &make(4)).await;
    let the_token_itself = with_session(base, "/api/runs", ADMIN_TOKEN).await;
    let live_answer = with_session(base, "/api/runs", &live).await;

    // Assert: only the live session gets in, and its use is noted (the idle clock restarts).
    assert_eq!(expired_answer.status(), 401);
    assert_eq!(idle_answer.status(), 401);
    assert_eq!(made_up.status(), 401);
    assert_eq!(the_token_itself.status(), 401);
    assert_eq!(live_answer.status(), 200);
    let seen = store
        .admin_session(&session_hash(&live))
        .await
        .unwrap()
        .unwrap()
        .last_seen_at;
    assert!(now - seen < minutes(1), "last seen {seen}, now {now}");
}

/// Opens a connection to `base` and sends `bytes` on it.
async fn connect_and_send(base: &str, bytes: &[u8]) -> tokio::net::TcpStream {
    let address = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    stream
}

/// Reads until the server closes the connection (or 10 s pass); returns what came and when
/// the connection ended, counted from `since`.
async fn read_until_closed(
    stream: &mut tokio::net::TcpStream,
    since: Instant,
) -> (String, Duration) {
    let mut received = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the server kept the connection open for 10 s");
    (
        String::from_utf8_lossy(&received).into_owned(),
        since.elapsed(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_sends_half_a_request_is_closed_after_the_header_read_timeout() {
    // Arrange
    let timeout = Duration::from_millis(500);
    let served = serve(HttpLimits {
        header_read_timeout: timeout,
        ..HttpLimits::default()
    })
    .await;
    let started = Instant::now();

    // Act: a request line and one header, and then nothing.
    let mut half = connect_and_send(&served.base, b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await;
    let (answer, closed_after) = read_until_closed(&mut half, started).await;

    // Assert: closed once the timeout passed, without the request being served.
    assert!(closed_after >= timeout, "closed after {closed_after:?}");
    assert!(!answer.contains("200 OK"), "{answer}");
    // A whole request is served as ever.
    let health = reqwest::get(format!("{}/healthz", served.base))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_bound_wait_until_open_ones_close() {
    // Arrange: room for two connections, both taken by half-sent requests.
    let timeout = Duration::from_millis(1000);
    let served = serve(HttpLimits {
        header_read_timeout: timeout,
        max_connections: 2,
        ..HttpLimits::default()
    })
    .await;
    let started = Instant::now();
    let _first = connect_and_send(&served.base, b"GET /healthz HTTP/1.1\r\n").await;
    let _second = connect_and_send(&served.base, b"GET /healthz HTTP/1.1\r\n").await;
    tokio::time::sleep(Duration::from_millis(100)).await;

    // Act: a third, whole request.
    let third = reqwest::get(format!("{}/healthz", served.base))
        .await
        .unwrap();
    let answered_after = started.elapsed();

    // Assert: it was served only once the half-sent ones were closed.
    assert_eq!(third.status(), 200);
    assert!(
        answered_after >= timeout,
        "answered after {answered_after:?}, before the open connections closed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_whose_body_never_arrives_is_answered_503_after_the_request_timeout() {
    // Arrange
    let timeout = Duration::from_millis(500);
    let served = serve(HttpLimits {
        request_timeout: timeout,
        ..HttpLimits::default()
    })
    .await;
    let started = Instant::now();

    // Act: a sign-in form that promises 100 bytes and sends 10.
    let mut slow = connect_and_send(
        &served.base,
        b"POST /signin HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ntoken=abcd",
    )
    .await;
    let (answer, closed_after) = read_until_closed(&mut slow, started).await;

    // Assert: 503 once the timeout passed, and the connection closed.
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(closed_after >= timeout, "answered after {closed_after:?}");
}

/// Runs one statement on the daemon's SQLite database from outside.
async fn sql(dir: &Path, statement: &str) {
    use sqlx::Connection;
    let url = format!("sqlite://{}", dir.join("hrsync.db").display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query(statement).execute(&mut conn).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_names_the_unhealthy_database_without_its_error_text() {
    // Arrange: the database answers, but the runs cannot be read any more.
    let served = serve(HttpLimits::default()).await;
    let healthy = reqwest::get(format!("{}/healthz", served.base))
        .await
        .unwrap();
    let healthy_status = healthy.status();
    let healthy: serde_json::Value = healthy.json().await.unwrap();
    sql(served.dir.path(), "DROP TABLE sync_runs").await;

    // Act
    let answer = reqwest::get(format!("{}/healthz", served.base))
        .await
        .unwrap();
    let status = answer.status();
    let text = answer.text().await.unwrap();

    // Assert: 503, naming the database; no error text, table or file name for strangers.
    assert_eq!(healthy_status, 200, "{healthy}");
    assert_eq!(healthy["unhealthy"], serde_json::json!([]));
    assert_eq!(healthy["mail_worker"], "ok");
    assert_eq!(status, 503, "{text}");
    let body: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["unhealthy"], serde_json::json!(["database"]));
    assert_eq!(body["database"], "unavailable");
    assert_eq!(body["mail_worker"], "ok");
    for secret in ["sync_runs", "no such table", "hrsync.db", "error"] {
        assert!(!text.contains(secret), "`{secret}` in {text}");
    }
    let folder = served.dir.path().display().to_string();
    assert!(!text.contains(&folder), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approving_a_run_that_is_missing_or_not_held_is_refused_with_the_reason() {
    // Arrange: a dry run that has ended.
    let served = serve(HttpLimits::default()).await;
    let base = &served.base;
    let started = daemon::admin_post(
        base,
        "/api/runs",
        serde_json::json!({ "connector": "scim_hr", "dry_run": true }),
    )
    .await;
    let run_id = started.json::<serde_json::Value>().await.unwrap()["run_id"]
        .as_i64()
        .unwrap();
    daemon::eventually(Duration::from_secs(20), "the run to end", || async {
        let r = admin_get(base, &format!("/api/runs/{run_id}")).await;
        (r["status"] != "running").then_some(())
    })
    .await;

    // Act
    let approve = |id: i64| async move {
        let path = format!("/api/runs/{id}/approve");
        daemon::admin_post(base, &path, serde_json::json!({})).await
    };
    let not_held = approve(run_id).await;
    let missing = approve(run_id + 100).await;

    // Assert
    assert_eq!(not_held.status(), 409);
    let not_held = not_held.json::<serde_json::Value>().await.unwrap();
    assert!(
        not_held["error"].as_str().unwrap().contains("not held"),
        "{not_held}"
    );
    // A run that is not there is not found (it was 409 before approvals had typed errors).
    assert_eq!(missing.status(), 404);
    let missing = missing.json::<serde_json::Value>().await.unwrap();
    assert!(
        missing["error"]
            .as_str()
            .unwrap()
            .contains("there is no run"),
        "{missing}"
    );
}
