//! A refresh token the HR system replaces at every exchange is kept, sealed, in the database,
//! so the next run (in any process) sends the newest.

use crate::support::TestEnv;

/// A definition whose token endpoint answers each refresh with a new refresh token.
const ROTATING_DEFINITION: &str = r#"
name = "Rotating HR"
variables = ["base"]
secrets = ["refresh_token"]

[auth]
kind = "token"
url = "{base}/token"
form = { grant_type = "refresh_token", refresh_token = "{secret:refresh_token}" }
token_path = "access_token"
rotated_secret = { name = "refresh_token", path = "refresh_token" }

[request]
url = "{base}/people"

[records]
path = "people"

[fields.employee_id]
path = "id"

[fields.email]
path = "email"
"#;

/// Answers a refresh with `refresh_token=from` by handing out `to`, once.
async fn rotates(server: &wiremock::MockServer, from: &str, to: &str) {
    wiremock::Mock::given(wiremock::matchers::path("/token"))
        .and(wiremock::matchers::body_string_contains(format!(
            "refresh_token={from}"
        )))
        .respond_with(
            wiremock::ResponseTemplate::new(200).set_body_json(serde_json::json!({
                "access_token": format!("access-{to}"), "expires_in": 3600, "refresh_token": to
            })),
        )
        .expect(1)
        .mount(server)
        .await;
}

pub async fn a_rotated_refresh_token_is_kept_sealed_and_sent_at_the_next_run(
    mut env: TestEnv,
) -> anyhow::Result<()> {
    // Arrange: the configured refresh token is the test process's SCIM token variable.
    let server = wiremock::MockServer::start().await;
    rotates(&server, "scim-token", "second-7f3a").await;
    rotates(&server, "second-7f3a", "third-91c2").await;
    wiremock::Mock::given(wiremock::matchers::path("/people"))
        .respond_with(
            wiremock::ResponseTemplate::new(200).set_body_json(serde_json::json!({
                "people": [{"id": "R1", "email": "r1@rotating.example"}]
            })),
        )
        .mount(&server)
        .await;
    let definition = env.dir.path().join("rotating.toml");
    std::fs::write(&definition, ROTATING_DEFINITION)?;
    env.extra_toml = format!(
        "[connectors.rotating_hr]\norganisation = \"other\"\nkind = \"http\"\n\n\
         [connectors.rotating_hr.http]\ndefinition = \"{}\"\n\
         variables = {{ base = \"{}\" }}\nsecrets = {{ refresh_token = \"{}\" }}\n",
        definition.display(),
        server.uri(),
        crate::SCIM_TOKEN_VAR
    );
    env.write_feed(&crate::sync_runs::BASE);
    let app = env.app().await?;

    // Act: two runs, as two schedule ticks would start them.
    let first = env
        .sync_connector(&app, "rotating_hr", "2026-11-23")
        .await?;
    let second = env
        .sync_connector(&app, "rotating_hr", "2026-11-23")
        .await?;

    // Assert: each run sent the refresh token the one before received, and the database holds
    // the newest sealed, never as it is.
    assert!(first.errors.is_empty(), "{:?}", first.errors);
    assert!(second.errors.is_empty(), "{:?}", second.errors);
    let sealed = app
        .store
        .kept_credential("rotating_hr", "refresh_token")
        .await?
        .expect("a kept refresh token");
    assert!(!sealed.contains("third") && !sealed.contains("second"));
    assert_eq!(
        hrsync::secret::open_sealed("scim-token", &sealed).as_deref(),
        Some("third-91c2")
    );
    Ok(())
}
