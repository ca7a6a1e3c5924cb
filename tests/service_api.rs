//! The service API for the product that owns the log-in, and named admins, on the daemon
//! in-process: a service token records a sign-in, edits a field the person owns and reads the
//! directory page by page, and reaches no admin route; no admin token reaches the service
//! routes; a named admin's actions name them, and revoking them ends their sessions.

// A test stops at the first thing that is not as expected.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "support/daemon.rs"]
mod daemon;

use std::time::Duration;

use chrono::Utc;
use daemon::{ADMIN_TOKEN, admin_get, admin_post, eventually, open_store, scim_server};
use hrsync::server::{HttpLimits, admin_routes, service_routes};
use hrsync::store::PrincipalKind;
use wiremock::MockServer;

const SERVICE_TOKEN: &str = "service-token-for-the-app-0123456789";
const MIRA_TOKEN: &str = "mira-admin-token-0123456789";

/// A daemon whose connector leaves first names to people once they activate, synced once;
/// with a service token and a named admin, Mira.
async fn synced() -> (tempfile::TempDir, MockServer, String) {
    let dir = tempfile::tempdir().unwrap();
    let hr = MockServer::start().await;
    scim_server(&hr, Duration::ZERO).await;
    let extra = "\n[connectors.scim_hr.ownership]\nfirst_name = \"user_after_activation\"\n";
    let base =
        daemon::serve_in_process_with(dir.path(), &hr.uri(), HttpLimits::default(), extra).await;
    let started = admin_post(
        &base,
        "/api/runs",
        serde_json::json!({ "connector": "scim_hr" }),
    )
    .await;
    assert_eq!(started.status(), 202);
    eventually(Duration::from_secs(20), "the first sync", || async {
        let runs = admin_get(&base, "/api/runs").await;
        runs.as_array()?
            .iter()
            .find(|r| r["status"] == "succeeded")
            .cloned()
    })
    .await;
    let store = open_store(dir.path()).await;
    let now = Utc::now();
    store
        .add_principal(
            PrincipalKind::Service,
            "app",
            &hrsync::secret::sha256_hex(SERVICE_TOKEN),
            now,
        )
        .await
        .unwrap();
    store
        .add_principal(
            PrincipalKind::Admin,
            "Mira",
            &hrsync::secret::sha256_hex(MIRA_TOKEN),
            now,
        )
        .await
        .unwrap();
    (dir, hr, base)
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn sql(dir: &std::path::Path, statement: &str) {
    use sqlx::Connection;
    let url = format!("sqlite://{}", dir.join("hrsync.db").display());
    let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query(statement).execute(&mut c).await.unwrap();
}

async fn scalar(dir: &std::path::Path, query: &str) -> Option<String> {
    use sqlx::Connection;
    let url = format!("sqlite://{}", dir.join("hrsync.db").display());
    let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query_scalar(query).fetch_one(&mut c).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_token_records_a_sign_in_edits_the_persons_own_field_and_reads_the_directory() {
    // Arrange: one person has activated.
    let (dir, _hr, base) = synced().await;
    let accounts = admin_get(&base, "/api/accounts").await;
    let email = accounts[0]["email"].as_str().unwrap().to_string();
    sql(
        dir.path(),
        &format!(
            "UPDATE accounts SET activated_at = '2026-12-01T10:00:00Z' WHERE email = '{email}'"
        ),
    )
    .await;
    sql(
        dir.path(),
        &format!(
            "UPDATE memberships SET state = 'active' WHERE account_id = (SELECT id FROM accounts WHERE email = '{email}')"
        ),
    )
    .await;
    let service = client();

    // Act
    let signed_in = service
        .post(format!("{base}/api/service/sign-ins"))
        .bearer_auth(SERVICE_TOKEN)
        .json(&serde_json::json!({ "email": email }))
        .send()
        .await
        .unwrap();
    let own = service
        .patch(format!("{base}/api/service/accounts"))
        .bearer_auth(SERVICE_TOKEN)
        .json(&serde_json::json!({ "email": email, "fields": { "first_name": "Zelf" } }))
        .send()
        .await
        .unwrap();
    let hr_owned = service
        .patch(format!("{base}/api/service/accounts"))
        .bearer_auth(SERVICE_TOKEN)
        .json(&serde_json::json!({ "email": email, "fields": { "last_name": "Anders" } }))
        .send()
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut after = 0;
    loop {
        let page: serde_json::Value = service
            .get(format!(
                "{base}/api/service/directory?limit=2&after={after}"
            ))
            .bearer_auth(SERVICE_TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let batch = page["accounts"].as_array().unwrap();
        assert!(batch.len() <= 2);
        seen.extend(
            batch
                .iter()
                .map(|a| a["email"].as_str().unwrap().to_string()),
        );
        match page["next_after"].as_i64() {
            Some(next) => after = next,
            None => break,
        }
    }
    let changed_since: serde_json::Value = service
        .get(format!(
            "{base}/api/service/directory?updated_since={}",
            (Utc::now() - chrono::Duration::seconds(30))
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ))
        .bearer_auth(SERVICE_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    // Assert
    assert_eq!(signed_in.status(), 200);
    let signed_in: serde_json::Value = signed_in.json().await.unwrap();
    assert_eq!(signed_in["can_log_in"], true);
    assert!(
        scalar(
            dir.path(),
            &format!("SELECT last_login_at FROM accounts WHERE email = '{email}'")
        )
        .await
        .is_some()
    );
    assert_eq!(own.status(), 200);
    assert_eq!(
        scalar(
            dir.path(),
            &format!("SELECT first_name FROM accounts WHERE email = '{email}'")
        )
        .await,
        Some("Zelf".to_string())
    );
    assert_eq!(hr_owned.status(), 403);
    let refusal: serde_json::Value = hr_owned.json().await.unwrap();
    assert!(
        refusal["error"].as_str().unwrap().contains("scim_hr"),
        "{refusal}"
    );
    let listed: Vec<String> = accounts
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["email"].as_str().unwrap().to_string())
        .collect();
    let mut expected = listed.clone();
    expected.sort();
    expected.dedup();
    let mut paged = seen.clone();
    paged.sort();
    assert_eq!(paged, expected, "every account once, over the pages");
    assert!(
        changed_since["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["email"] == email.as_str()),
        "the person who just changed is in the changes since"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_tokens_reach_no_admin_route_and_admin_tokens_no_service_route() {
    let (_dir, _hr, base) = synced().await;
    let client = client();

    for route in admin_routes() {
        let url = format!("{base}{}", route.path.replace("{id}", "1"));
        let response = client
            .request(route.method.clone(), &url)
            .bearer_auth(SERVICE_TOKEN)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        assert!(
            status == 401 || (status == 303 && !route.path.starts_with("/api/")),
            "{} {} answered {status} to a service token",
            route.method,
            route.path
        );
    }
    for route in service_routes() {
        let url = format!("{base}{}", route.path);
        for token in [ADMIN_TOKEN, MIRA_TOKEN] {
            let response = client
                .request(route.method.clone(), &url)
                .bearer_auth(token)
                .json(&serde_json::json!({}))
                .send()
                .await
                .unwrap();
            assert_eq!(
                response.status(),
                401,
                "{} {} let an admin token in",
                route.method,
                route.path
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_named_admins_actions_name_them_and_revoking_them_ends_their_sessions() {
    // Arrange
    let (dir, _hr, base) = synced().await;
    let client = client();

    // Act: Mira starts a run with her token, then signs in to the pages.
    let started = client
        .post(format!("{base}/api/runs"))
        .bearer_auth(MIRA_TOKEN)
        .json(&serde_json::json!({ "connector": "scim_hr", "dry_run": true }))
        .send()
        .await
        .unwrap();
    let signed_in = client
        .post(format!("{base}/signin"))
        .form(&[("token", MIRA_TOKEN), ("next", "/runs")])
        .send()
        .await
        .unwrap();
    let cookie = signed_in.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let before = client
        .get(format!("{base}/runs"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    let store = open_store(dir.path()).await;
    store
        .revoke_principal(PrincipalKind::Admin, "Mira", Utc::now())
        .await
        .unwrap();
    let after = client
        .get(format!("{base}/runs"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    let token_after = client
        .get(format!("{base}/api/runs"))
        .bearer_auth(MIRA_TOKEN)
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(started.status(), 202);
    assert_eq!(
        scalar(
            dir.path(),
            "SELECT actor || ' ' || via FROM audit_events WHERE action = 'run_start' ORDER BY id DESC LIMIT 1"
        )
        .await,
        Some("Mira api".to_string())
    );
    assert_eq!(signed_in.status(), 303);
    assert_eq!(before.status(), 200);
    assert_eq!(
        after.status(),
        303,
        "the revoked admin's session is sent to sign in"
    );
    assert_eq!(token_after.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_started_for_review_is_held_with_its_plan_and_applied_when_approved() {
    // Arrange: a synced directory in which one person's HR data changed since.
    let (dir, _hr, base) = synced().await;
    sql(
        dir.path(),
        "UPDATE memberships SET job_title = 'Edited locally'",
    )
    .await;
    let client = client();

    // Act
    let started: serde_json::Value = client
        .post(format!("{base}/api/runs"))
        .bearer_auth(MIRA_TOKEN)
        .json(&serde_json::json!({ "connector": "scim_hr", "review": true }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let run_id = started["run_id"].as_i64().unwrap();
    let held = eventually(Duration::from_secs(20), "the run to end", || async {
        let run = admin_get(&base, &format!("/api/runs/{run_id}")).await;
        (run["status"] != "running").then_some(run)
    })
    .await;
    let unchanged = scalar(
        dir.path(),
        "SELECT CAST(COUNT(*) AS TEXT) FROM memberships WHERE job_title = 'Edited locally'",
    )
    .await;
    let approved = client
        .post(format!("{base}/api/runs/{run_id}/approve"))
        .bearer_auth(MIRA_TOKEN)
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(held["status"], "held", "{held}");
    assert_eq!(held["errors"][0]["code"], "HR205");
    assert_ne!(
        unchanged.as_deref(),
        Some("0"),
        "nothing applied before approval"
    );
    assert_eq!(approved.status(), 200);
    let approved: serde_json::Value = approved.json().await.unwrap();
    assert_eq!(approved["status"], "approved");
    assert_eq!(
        scalar(
            dir.path(),
            "SELECT CAST(COUNT(*) AS TEXT) FROM memberships WHERE job_title = 'Edited locally'"
        )
        .await
        .as_deref(),
        Some("0"),
        "HR data applied on approval"
    );
    assert_eq!(
        scalar(
            dir.path(),
            &format!(
                "SELECT actor FROM audit_events WHERE action = 'run_approve' AND run_id = {run_id}"
            )
        )
        .await
        .as_deref(),
        Some("Mira")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_adds_and_manages_a_person_by_hand_naming_the_admin() {
    // Arrange
    let (_dir, _hr, base) = synced().await;
    let client = client();
    let call = |method: reqwest::Method, path: &str, body: serde_json::Value| {
        client
            .request(method, format!("{base}{path}"))
            .bearer_auth(MIRA_TOKEN)
            .json(&body)
            .send()
    };

    // Act
    let added = call(
        reqwest::Method::POST,
        "/api/people",
        serde_json::json!({
            "organisation": "acme", "email": "gerda@example.org", "first_name": "Gerda",
            "roles": ["volunteer"], "send_invite": false,
        }),
    )
    .await
    .unwrap();
    assert_eq!(added.status(), 201);
    let id = added.json::<serde_json::Value>().await.unwrap()["account_id"]
        .as_i64()
        .unwrap();
    let edited = call(
        reqwest::Method::PATCH,
        &format!("/api/people/{id}"),
        serde_json::json!({ "organisation": "acme", "fields": { "job_title": "Host" } }),
    )
    .await
    .unwrap();
    let team = call(
        reqwest::Method::POST,
        "/api/teams",
        serde_json::json!({ "organisation": "acme", "key": "night" }),
    )
    .await
    .unwrap();
    let coach = call(
        reqwest::Method::POST,
        &format!("/api/people/{id}/teams"),
        serde_json::json!({ "organisation": "acme", "team": "night", "role": "coach", "action": "add" }),
    )
    .await
    .unwrap();
    let admin_right = call(
        reqwest::Method::POST,
        &format!("/api/people/{id}/roles"),
        serde_json::json!({ "organisation": "acme", "role": "admin", "action": "grant" }),
    )
    .await
    .unwrap();
    let suspended = call(
        reqwest::Method::POST,
        &format!("/api/people/{id}/membership"),
        serde_json::json!({ "organisation": "acme", "action": "suspend" }),
    )
    .await
    .unwrap();
    let person: serde_json::Value = client
        .get(format!("{base}/api/people/{id}"))
        .bearer_auth(MIRA_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let teams: serde_json::Value = client
        .get(format!("{base}/api/teams?org=acme"))
        .bearer_auth(MIRA_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let first_team = client
        .get(format!("{base}/api/teams?org=acme&per_page=1"))
        .bearer_auth(MIRA_TOKEN)
        .send()
        .await
        .unwrap();
    let next_teams = first_team
        .headers()
        .get("link")
        .map(|l| l.to_str().unwrap().to_string());
    let first_team: serde_json::Value = first_team.json().await.unwrap();

    // Assert
    assert_eq!(first_team.as_array().unwrap().len(), 1);
    assert_eq!(
        first_team[0]["key"], teams[0]["key"],
        "teams come in key order"
    );
    assert_eq!(
        next_teams.as_deref(),
        Some("</api/teams?org=acme&page=2&per_page=1>; rel=\"next\"")
    );
    assert_eq!(edited.status(), 200);
    assert_eq!(team.status(), 201);
    assert_eq!(coach.status(), 200);
    assert_eq!(admin_right.status(), 200);
    assert_eq!(suspended.status(), 200);
    assert_eq!(person["memberships"][0]["suspended"], true);
    assert_eq!(person["memberships"][0]["job_title"], "Host");
    let roles: Vec<&str> = person["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["admin", "volunteer"]);
    let history = person["history"].as_array().unwrap();
    assert!(history.len() >= 6, "{history:?}");
    assert!(
        history.iter().all(|h| h["who"] == "Mira (api)"),
        "{history:?}"
    );
    let night = teams
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["key"] == "night")
        .unwrap();
    assert_eq!(night["coaches"][0]["email"], "gerda@example.org");
}
