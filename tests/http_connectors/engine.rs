//! The engine's own behaviour: paging, retries, lookups, incremental fetches, redaction and the operator tools.

use super::*;

const OFFSET_DEFINITION: &str = r#"
name = "Test HR"
variables = ["base"]
secrets = ["api_key"]

[auth]
kind = "header"
name = "X-Api-Key"
value = "{secret:api_key}"

[request]
url = "{base}/people"
query = { key = "{secret:api_key}" }

[pagination]
kind = "offset"
offset_param = "offset"
limit_param = "limit"
limit = 2

[records]
path = "data"

[fields.employee_id]
path = "id"

[fields.email]
path = "email"

[limits]
retries = 3
retry_after_ms = 10
"#;

fn people(ids: &[&str]) -> serde_json::Value {
    let data: Vec<_> = ids
        .iter()
        .map(|id| serde_json::json!({"id": id, "email": format!("{id}@acme.example")}))
        .collect();
    serde_json::json!({ "data": data })
}

fn offset_source(server: &MockServer, secret: &str) -> HttpSource {
    source(
        Definition::parse(OFFSET_DEFINITION).unwrap(),
        &[("base", &server.uri())],
        &[("api_key", secret)],
    )
}

#[tokio::test]
async fn throttled_and_unavailable_answers_are_retried_until_the_page_comes() {
    let server = MockServer::start().await;
    Mock::given(path("/people"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(path("/people"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(path("/people"))
        .and(query_param("offset", "0"))
        .respond_with(ResponseTemplate::new(200).set_body_json(people(&["A1"])))
        .mount(&server)
        .await;
    let hr = offset_source(&server, "k-123");

    let started = std::time::Instant::now();
    let records = hr.fetch().await.unwrap();

    assert_eq!(records.len(), 1);
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "Retry-After: 1 was honoured"
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
}

#[tokio::test]
async fn a_page_that_keeps_failing_fails_the_whole_fetch() {
    let server = MockServer::start().await;
    Mock::given(path("/people"))
        .and(query_param("offset", "0"))
        .respond_with(ResponseTemplate::new(200).set_body_json(people(&["A1", "A2"])))
        .mount(&server)
        .await;
    Mock::given(path("/people"))
        .and(query_param("offset", "2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(people(&["A3", "A4"])))
        .mount(&server)
        .await;
    Mock::given(path("/people"))
        .and(query_param("offset", "4"))
        .respond_with(ResponseTemplate::new(500).set_body_string("database on fire"))
        .mount(&server)
        .await;
    let hr = offset_source(&server, "k-123");

    let error = hr.fetch().await.unwrap_err();

    assert!(
        matches!(
            error,
            FetchError::Status {
                page: 3,
                status: 500,
                ..
            }
        ),
        "{error}"
    );
    let tries = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.query().is_some_and(|q| q.contains("offset=4")))
        .count();
    assert_eq!(tries, 4, "the first try and three retries");
}

#[tokio::test]
async fn a_system_that_refuses_the_connection_is_named_as_refusing_it() {
    // Arrange: nothing listens on port 1.
    let hr = source(
        Definition::parse(OFFSET_DEFINITION).unwrap(),
        &[("base", "http://127.0.0.1:1")],
        &[("api_key", "very-secret-key-8c1f")],
    );

    // Act
    let error = hr.fetch().await.unwrap_err().to_string();

    // Assert
    assert!(error.contains("connection refused"), "{error}");
    assert!(!error.contains("very-secret-key-8c1f"), "{error}");
}

#[tokio::test]
async fn secrets_never_appear_in_fetch_errors() {
    let server = MockServer::start().await;
    Mock::given(path("/people"))
        .respond_with(ResponseTemplate::new(401).set_body_string("bad key"))
        .mount(&server)
        .await;
    let secret = "very-secret-key-8c1f";
    let hr = offset_source(&server, secret);

    let error = hr.fetch().await.unwrap_err().to_string();

    assert!(error.contains("401"), "{error}");
    assert!(!error.contains(secret), "{error}");
    let sent = &server.received_requests().await.unwrap()[0];
    assert_eq!(
        sent.headers.get("x-api-key").map(|v| v.to_str().unwrap()),
        Some(secret),
        "the secret did reach the server"
    );
}

#[test]
fn definition_with_a_bad_path_or_date_format_is_refused() {
    let bad_path = OFFSET_DEFINITION.replace("path = \"id\"", "path = \"id[\"");
    let bad_date =
        format!("{OFFSET_DEFINITION}\n[fields.start_date]\npath = \"start\"\nformats = [\"%Y\"]\n");

    assert!(Definition::parse(&bad_path).unwrap_err().contains("id["));
    assert!(
        Definition::parse(&bad_date)
            .unwrap_err()
            .contains("fields.start_date")
    );
}

#[tokio::test]
async fn refused_token_request_fails_without_showing_the_secret() {
    let server = MockServer::start().await;
    Mock::given(path("/v1/auth"))
        .respond_with(
            ResponseTemplate::new(401).set_body_string("client_secret csecret-9f2 is wrong"),
        )
        .mount(&server)
        .await;
    let personio = source(
        definition("personio.toml"),
        &[
            ("base_url", &format!("{}/v1", server.uri())),
            ("partner_id", "ACME"),
            ("app_id", "hrsync"),
        ],
        &[("client_id", "cid"), ("client_secret", "csecret-9f2")],
    );

    let error = personio.fetch().await.unwrap_err().to_string();

    assert!(
        error.contains("token request") && error.contains("401"),
        "{error}"
    );
    assert!(!error.contains("csecret-9f2"), "{error}");
}

/// A definition for the paging tests: people at `{base}/people`, in `data`, by `id` and
/// `email`, with the given pagination (and anything else) appended.
fn paged_definition(extra: &str) -> Definition {
    Definition::parse(&format!(
        r#"
name = "Paged HR"
variables = ["base"]
secrets = ["api_key"]

[auth]
kind = "bearer"
token = "{{secret:api_key}}"

[request]
url = "{{base}}/people"

[records]
path = "data"

[fields.employee_id]
path = "id"

[fields.email]
path = "email"

[limits]
retries = 1
retry_after_ms = 10
concurrency = 3

{extra}
"#
    ))
    .unwrap()
}

fn with_body(ids: &[&str], extra: serde_json::Value) -> serde_json::Value {
    let mut body = people(ids);
    if let (Some(target), serde_json::Value::Object(members)) = (body.as_object_mut(), extra) {
        target.extend(members);
    }
    body
}

fn ids(records: &[hrsync::domain::HrRecord]) -> Vec<&str> {
    records.iter().map(|r| r.employee_id.as_str()).collect()
}

#[tokio::test]
async fn cursor_paging_follows_the_cursor_until_there_is_none() {
    let server = MockServer::start().await;
    Mock::given(path("/people"))
        .and(query_param("cursor", "c2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(with_body(
            &["A3", "A4"],
            serde_json::json!({"meta": {"next_cursor": "c3", "has_more": true}}),
        )))
        .mount(&server)
        .await;
    Mock::given(path("/people"))
        .and(query_param("cursor", "c3"))
        .respond_with(ResponseTemplate::new(200).set_body_json(with_body(
            &["A5"],
            serde_json::json!({"meta": {"next_cursor": "c4", "has_more": false}}),
        )))
        .mount(&server)
        .await;
    Mock::given(path("/people"))
        .and(query_param("limit", "2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(with_body(
            &["A1", "A2"],
            serde_json::json!({"meta": {"next_cursor": "c2", "has_more": true}}),
        )))
        .mount(&server)
        .await;
    let hr = source(
        paged_definition(
            r#"[pagination]
kind = "cursor"
cursor_param = "cursor"
path = "meta.next_cursor"
more_path = "meta.has_more"
size_param = "limit"
size = 2"#,
        ),
        &[("base", &server.uri())],
        &[("api_key", "k")],
    );

    let records = hr.fetch().await.unwrap();

    assert_eq!(ids(&records), ["A1", "A2", "A3", "A4", "A5"]);
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
}

#[tokio::test]
async fn a_cursor_that_repeats_fails_instead_of_looping() {
    let server = MockServer::start().await;
    Mock::given(path("/people"))
        .and(query_param("cursor", "same"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(with_body(&["A2"], serde_json::json!({"next": "same"}))),
        )
        .mount(&server)
        .await;
    Mock::given(path("/people"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(with_body(&["A1"], serde_json::json!({"next": "same"}))),
        )
        .mount(&server)
        .await;
    let hr = source(
        paged_definition(
            r#"[pagination]
kind = "cursor"
cursor_param = "cursor"
path = "next""#,
        ),
        &[("base", &server.uri())],
        &[("api_key", "k")],
    );

    let error = hr.fetch().await.unwrap_err().to_string();

    assert!(error.contains("same next page twice"), "{error}");
}

#[tokio::test]
async fn link_header_paging_follows_rel_next_relative_or_absolute() {
    let server = MockServer::start().await;
    let uri = server.uri();
    Mock::given(path("/people"))
        .and(query_param("page", "2"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(people(&["A3"]))
                .insert_header(
                    "Link",
                    format!(
                        r#"<{uri}/people?page=1>; rel="first", <{uri}/people?page=3>; rel="next""#
                    ),
                ),
        )
        .mount(&server)
        .await;
    Mock::given(path("/people"))
        .and(query_param("page", "3"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(people(&["A4"]))
                .insert_header("Link", format!(r#"<{uri}/people?page=1>; rel="first""#)),
        )
        .mount(&server)
        .await;
    Mock::given(path("/people"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(people(&["A1", "A2"]))
                .insert_header("Link", r#"</people?page=2>; rel="next""#),
        )
        .mount(&server)
        .await;
    let hr = source(
        paged_definition("[pagination]\nkind = \"link_header\""),
        &[("base", &uri)],
        &[("api_key", "k")],
    );

    let records = hr.fetch().await.unwrap();

    assert_eq!(ids(&records), ["A1", "A2", "A3", "A4"]);
    let sent = server.received_requests().await.unwrap();
    assert!(
        sent.iter()
            .all(|r| r.headers.get("authorization").is_some()),
        "every page is authenticated"
    );
}

#[tokio::test]
async fn a_next_link_to_another_host_is_refused_and_gets_no_credentials() {
    let server = MockServer::start().await;
    let elsewhere = MockServer::start().await;
    Mock::given(path("/people"))
        .respond_with(ResponseTemplate::new(200).set_body_json(with_body(
            &["A1"],
            serde_json::json!({"next": format!("{}/steal", elsewhere.uri())}),
        )))
        .mount(&server)
        .await;
    let hr = source(
        paged_definition("[pagination]\nkind = \"next_link\"\npath = \"next\""),
        &[("base", &server.uri())],
        &[("api_key", "k")],
    );

    let error = hr.fetch().await.unwrap_err().to_string();

    assert!(error.contains("credentials are only sent"), "{error}");
    assert!(elsewhere.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn numbered_pages_with_a_total_are_all_read_in_order() {
    let server = MockServer::start().await;
    let all = [
        "A01", "A02", "A03", "A04", "A05", "A06", "A07", "A08", "A09",
    ];
    for (n, chunk) in all.chunks(2).enumerate() {
        Mock::given(path("/people"))
            .and(query_param("page", (n + 1).to_string()))
            .and(query_param("per_page", "2"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(with_body(chunk, serde_json::json!({"total": "9"})))
                    // Later pages answer sooner, so they arrive out of order.
                    .set_delay(Duration::from_millis(100 - 20 * n as u64)),
            )
            .expect(1)
            .mount(&server)
            .await;
    }
    let hr = source(
        paged_definition(
            r#"[pagination]
kind = "page"
page_param = "page"
size_param = "per_page"
size = 2
total_path = "total""#,
        ),
        &[("base", &server.uri())],
        &[("api_key", "k")],
    );

    let fetched = hr
        .fetch_with(&hrsync::connectors::http::FetchOptions::default())
        .await
        .unwrap();

    assert_eq!(ids(&fetched.records), all);
    assert_eq!(fetched.pages, 5);
    assert_eq!(fetched.total, Some(9));
}

#[tokio::test]
async fn a_failing_page_among_concurrent_pages_fails_the_whole_fetch() {
    let server = MockServer::start().await;
    Mock::given(path("/people"))
        .and(query_param("page", "3"))
        .respond_with(ResponseTemplate::new(502))
        .mount(&server)
        .await;
    for (page, people) in [("2", ["A3", "A4"]), ("4", ["A7", "A8"])] {
        Mock::given(path("/people"))
            .and(query_param("page", page))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(with_body(&people, serde_json::json!({"total": 8}))),
            )
            .mount(&server)
            .await;
    }
    Mock::given(path("/people"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(with_body(&["A1", "A2"], serde_json::json!({"total": 8}))),
        )
        .mount(&server)
        .await;
    let hr = source(
        paged_definition(
            "[pagination]\nkind = \"page\"\npage_param = \"page\"\nsize = 2\ntotal_path = \"total\"",
        ),
        &[("base", &server.uri())],
        &[("api_key", "k")],
    );

    let error = hr.fetch().await.unwrap_err();

    assert!(
        matches!(
            error,
            FetchError::Status {
                page: 3,
                status: 502,
                ..
            }
        ),
        "{error}"
    );
}

#[tokio::test]
async fn lookup_table_from_another_endpoint_names_each_department() {
    let server = MockServer::start().await;
    Mock::given(path("/departments"))
        .and(query_param("cursor", "d2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "results": [{"id": 18, "name": "Zorg Zuid"}]
        })))
        .mount(&server)
        .await;
    Mock::given(path("/departments"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "results": [{"id": 17, "name": "Wijkverpleging Noord"}],
            "next_cursor": "d2"
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/people"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(serde_json::json!({"data": [
                {"id": "A1", "email": "a1@acme.example", "dept": 17, "custom": {"cf_88": "CC-1"}},
                {"id": "A2", "email": "a2@acme.example", "dept": 18, "custom": {"cf_88": "CC-2"}},
                {"id": "A3", "email": "a3@acme.example", "dept": 99}
            ]})),
        )
        .mount(&server)
        .await;
    let def = paged_definition(
        r#"[lookups.departments]
request = { url = "{base}/departments" }
pagination = { kind = "cursor", cursor_param = "cursor", path = "next_cursor" }
records = { path = "results" }
key = "id"
value = "name"

[fields.department_code]
path = "dept"

[fields.department]
path = "dept"
lookup = "departments"

[fields.attributes.cost_centre]
path = "custom.{cost_centre_field}"

[defaults]
cost_centre_field = "cf_1""#,
    );
    let hr = source(
        def,
        &[("base", &server.uri()), ("cost_centre_field", "cf_88")],
        &[("api_key", "k")],
    );

    let records = hr.fetch().await.unwrap();

    let dept = |i: usize| records[i].department.as_ref().unwrap().name.clone();
    assert_eq!(dept(0), "Wijkverpleging Noord");
    assert_eq!(dept(1), "Zorg Zuid");
    assert_eq!(
        dept(2),
        "99",
        "a value missing from the table stays as it is"
    );
    assert_eq!(records[0].department.as_ref().unwrap().key.as_str(), "17");
    assert_eq!(records[1].attributes["cost_centre"], "CC-2");
}

#[test]
fn a_field_using_an_unknown_lookup_or_variable_is_refused() {
    let unknown_lookup = format!(
        "{OFFSET_DEFINITION}\n[fields.department]\npath = \"dept\"\nlookup = \"departments\"\n"
    );
    let unknown_variable =
        format!("{OFFSET_DEFINITION}\n[fields.location]\npath = \"custom.{{site_field}}\"\n");

    assert!(
        Definition::parse(&unknown_lookup)
            .unwrap_err()
            .contains("no [lookups.departments]")
    );
    assert!(
        Definition::parse(&unknown_variable)
            .unwrap_err()
            .contains("`{site_field}` is not a variable")
    );
}

#[tokio::test]
async fn incremental_fetch_asks_only_for_what_changed_since_the_watermark() {
    let server = MockServer::start().await;
    Mock::given(path("/people"))
        .and(query_param(
            "filter",
            "updated_at gt '2026-11-23T08:00:00Z'",
        ))
        .and(query_param("size", "50"))
        .respond_with(ResponseTemplate::new(200).set_body_json(people(&["A2"])))
        .expect(1)
        .mount(&server)
        .await;
    let hr = source(
        paged_definition(
            r#"[request.query]
filter = "status eq 'any'"
size = "50"

[incremental]
query = { filter = "updated_at gt '{since}'" }"#,
        ),
        &[("base", &server.uri())],
        &[("api_key", "k")],
    );
    let since = chrono::DateTime::parse_from_rfc3339("2026-11-23T09:00:00+01:00")
        .unwrap()
        .with_timezone(&chrono::Utc);

    let fetched = hr
        .fetch_with(&hrsync::connectors::http::FetchOptions {
            since: Some(since),
            ..Default::default()
        })
        .await
        .unwrap();

    assert!(fetched.incremental);
    assert_eq!(ids(&fetched.records), ["A2"]);
}

#[tokio::test]
async fn raw_dump_keeps_every_page_with_credentials_redacted() {
    let server = MockServer::start().await;
    let secret = "sk_live_51c0ffee";
    Mock::given(path("/people"))
        .and(query_param("offset", "0"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(with_body(
                    &["A1", "A2"],
                    // A system that echoes the key it was given.
                    serde_json::json!({"debug": {"key_used": secret}}),
                ))
                .insert_header("Set-Cookie", "session=abc123"),
        )
        .mount(&server)
        .await;
    Mock::given(path("/people"))
        .and(query_param("offset", "2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(people(&["A3"])))
        .mount(&server)
        .await;
    let hr = offset_source(&server, secret);
    let dir = tempfile::tempdir().unwrap();

    let fetched = hr
        .fetch_with(&hrsync::connectors::http::FetchOptions {
            raw_dir: Some(dir.path().to_path_buf()),
            ..Default::default()
        })
        .await
        .unwrap();

    assert_eq!(fetched.records.len(), 3);
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "people-0001.http",
            "people-0001.json",
            "people-0002.http",
            "people-0002.json"
        ]
    );
    for name in &names {
        let text = std::fs::read_to_string(dir.path().join(name)).unwrap();
        assert!(!text.contains(secret), "{name} holds the secret:\n{text}");
        assert!(!text.contains("abc123"), "{name} holds the cookie:\n{text}");
    }
    let exchange = std::fs::read_to_string(dir.path().join("people-0001.http")).unwrap();
    assert!(exchange.contains("x-api-key: [redacted]"), "{exchange}");
    assert!(exchange.contains("key=%5Bredacted%5D"), "{exchange}");
    assert!(exchange.contains("offset=0"), "{exchange}");
    assert!(exchange.contains("HTTP 200"), "{exchange}");
    let page: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("people-0001.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(page["data"][1]["id"], "A2");
    assert_eq!(page["debug"]["key_used"], "[redacted]");
}

/// Runs the `hrsync` binary with a configuration whose SCIM connector reads its token from
/// `HRSYNC_TEST_CLI_TOKEN`, with debug logging on.
fn hrsync_cli(dir: &Path, secret: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_hrsync"))
        .args(["--config", dir.join("hrsync.toml").to_str().unwrap()])
        .args(args)
        .current_dir(dir)
        .env("HRSYNC_TEST_CLI_TOKEN", secret)
        .env("RUST_LOG", "debug")
        .env_remove("HRSYNC__DATABASE__URL")
        .output()
        .expect("running hrsync")
}

/// A configuration with one connector of the shipped SCIM definition, by name; `extra` lines
/// go in its `[http]` table.
fn write_cli_config(dir: &Path, base_url: &str) {
    write_cli_config_with(dir, base_url, "");
}

fn write_cli_config_with(dir: &Path, base_url: &str, extra: &str) {
    std::fs::write(
        dir.join("hrsync.toml"),
        format!(
            r#"
[database]
url = "sqlite://{db}"

[mail]
transport = "file"
dir = "{outbox}"
from = "HR <no-reply@acme.example>"
activation_url = "https://app.acme.example/activate?token={{token}}"

[organisations.acme]
name = "Acme"
time_zone = "Europe/Amsterdam"

[connectors.acme_scim]
organisation = "acme"
kind = "http"

[connectors.acme_scim.http]
definition = "scim"
variables = {{ base_url = "{base_url}" }}
secrets = {{ token = "HRSYNC_TEST_CLI_TOKEN" }}
{extra}
"#,
            db = dir.join("hrsync.db").display(),
            outbox = dir.join("outbox").display(),
        ),
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_tools_never_show_a_secret_from_the_environment() {
    // Arrange: a SCIM server with the fixture's pages that echoes the token in a header, and
    // answers one unknown page with an error that repeats it.
    let secret = "scim-8f2b7c41d9e0";
    let server = MockServer::start().await;
    for (start, page) in [
        ("1", "tenant-b/users-page-1.json"),
        ("4", "tenant-b/users-page-2.json"),
    ] {
        Mock::given(path("/scim/v2/Users"))
            .and(query_param("startIndex", start))
            .and(header("authorization", format!("Bearer {secret}").as_str()))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(fixture("scim", page))
                    .insert_header("X-Echo-Authorization", format!("Bearer {secret}").as_str()),
            )
            .mount(&server)
            .await;
    }
    let dir = tempfile::tempdir().unwrap();
    write_cli_config(dir.path(), &format!("{}/scim/v2", server.uri()));
    let raw = dir.path().join("raw");

    // Act
    let check = hrsync_cli(dir.path(), secret, &["check", "--connect"]);
    let fetch = hrsync_cli(
        dir.path(),
        secret,
        &[
            "fetch",
            "acme_scim",
            "--raw",
            raw.to_str().unwrap(),
            "--format",
            "json",
        ],
    );
    write_cli_config(dir.path(), &format!("{}/missing", server.uri()));
    let failing = hrsync_cli(dir.path(), secret, &["fetch", "acme_scim"]);

    // Assert: the tools worked, and the secret is nowhere in what they wrote.
    let text = |o: &std::process::Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    assert!(check.status.success(), "{}", text(&check));
    assert!(
        text(&check).contains("the first page has 3 records, of 5 in all"),
        "{}",
        text(&check)
    );
    assert!(
        text(&check).contains("records with a value, per field (of 3)"),
        "{}",
        text(&check)
    );
    assert!(
        text(&check).contains("employee_id: a8323b44-4af9-49d3-925e-04b9896e46ff"),
        "{}",
        text(&check)
    );
    assert!(
        !text(&check).contains("Zoë"),
        "personal fields are masked: {}",
        text(&check)
    );
    assert!(fetch.status.success(), "{}", text(&fetch));
    let records: serde_json::Value = serde_json::from_slice(&fetch.stdout).unwrap();
    assert_eq!(records.as_array().unwrap().len(), 5);
    assert_eq!(failing.status.code(), Some(1), "{}", text(&failing));
    assert!(text(&failing).contains("404"), "{}", text(&failing));
    let mut dumped = 0;
    for entry in std::fs::read_dir(&raw).unwrap() {
        let file = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        assert!(
            !file.contains(secret),
            "a raw dump holds the secret:\n{file}"
        );
        dumped += 1;
    }
    assert_eq!(dumped, 4, "two pages, each with its exchange");
    for output in [&check, &fetch, &failing] {
        assert!(
            !text(output).contains(secret),
            "the output holds the secret:\n{}",
            text(output)
        );
    }
}

#[test]
fn managers_of_a_delta_are_found_among_the_known_records() {
    use hrsync::domain::{Email, EmployeeId, HrRecord};
    let scim = source(
        definition("scim.toml"),
        &[("base_url", "https://hr.acme.example/scim/v2")],
        &[("token", "t")],
    );
    let person = |id: &str, scim_id: &str, manager: Option<&str>| {
        let mut r = HrRecord::new(
            EmployeeId::parse(id).unwrap(),
            Email::parse(&format!("{id}@acme.example")),
        );
        r.attributes
            .insert("scim_id".to_string(), scim_id.to_string());
        r.manager_id = manager.and_then(EmployeeId::parse);
        r
    };
    let known = [
        person("M001", "u-1", None),
        person("E002", "u-2", Some("M001")),
    ];
    let mut delta = [
        person("E003", "u-3", Some("u-1")),
        person("E004", "u-4", Some("u-9")),
    ];

    scim.resolve_managers(&mut delta, &known);

    assert_eq!(delta[0].manager_id.as_ref().unwrap().as_str(), "M001");
    assert_eq!(
        delta[1].manager_id, None,
        "a manager nobody knows is no manager"
    );
}

/// The definition of the worked example in `connectors/README.md`, taken from the README.
fn readme_example_definition() -> Definition {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("connectors/README.md"))
            .unwrap();
    let start = readme
        .find("So `connectors/rippling.toml` is:")
        .expect("the worked example");
    let body = &readme[start..];
    let open = body.find("```toml\n").unwrap() + "```toml\n".len();
    let close = open + body[open..].find("```").unwrap();
    Definition::parse(&body[open..close]).unwrap()
}

#[tokio::test]
async fn readme_worked_example_of_a_new_system_needs_only_its_file() {
    let server = MockServer::start().await;
    let uri = server.uri();
    Mock::given(path("/departments"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "__meta": {"redacted_fields": []},
            "results": [{"id": "dp-wvn", "name": "Wijkverpleging Noord", "parent_id": null}]
        })))
        .mount(&server)
        .await;
    Mock::given(path("/workers"))
        .and(query_param("cursor", "p2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "__meta": {"redacted_fields": []},
            "results": [{"id": "wk-1", "number": 10, "work_email": "anna@acme.example",
                "status": "TERMINATED", "title": "Teamleider", "department_id": "dp-wvn",
                "manager_id": null, "start_date": "2019-03-01", "end_date": "2026-10-31",
                "user": {"name": {"given_name": "Anna", "family_name": "Çelik"}}}]
        })))
        .mount(&server)
        .await;
    Mock::given(path("/workers"))
        .and(header("authorization", "Bearer rk-test"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "__meta": {"redacted_fields": []},
            "results": [{"id": "wk-2", "number": 11, "work_email": "bob@acme.example",
                "status": "ACTIVE", "title": "Wijkverpleegkundige", "department_id": "dp-wvn",
                "manager_id": "wk-1", "start_date": "2023-01-15", "end_date": null,
                "user": {"name": {"given_name": "Bob", "family_name": "de Vries"}}}],
            "next_link": format!("{uri}/workers?cursor=p2")
        })))
        .mount(&server)
        .await;
    let rippling = source(
        readme_example_definition(),
        &[("base_url", &uri)],
        &[("api_key", "rk-test")],
    );

    let records = rippling.fetch().await.unwrap();

    assert_eq!(ids(&records), ["wk-2", "wk-1"]);
    let bob = &records[0];
    assert_eq!(bob.last_name.as_deref(), Some("de Vries"));
    assert_eq!(bob.manager_id.as_ref().unwrap().as_str(), "wk-1");
    assert_eq!(bob.attributes["employee_number"], "11");
    assert_eq!(
        bob.department.as_ref().unwrap().name,
        "Wijkverpleging Noord"
    );
    assert_eq!(records[1].status.as_deref(), Some("inactive"));
    assert_eq!(records[1].last_name.as_deref(), Some("Çelik"));
}

#[tokio::test]
async fn a_list_that_ends_before_its_total_fails_instead_of_passing_for_everyone() {
    let server = MockServer::start().await;
    for page in ["2", "3"] {
        Mock::given(path("/people"))
            .and(query_param("page", page))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(with_body(&[], serde_json::json!({"total": 5}))),
            )
            .mount(&server)
            .await;
    }
    Mock::given(path("/people"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(with_body(&["A1", "A2"], serde_json::json!({"total": 5}))),
        )
        .mount(&server)
        .await;
    let hr = source(
        paged_definition(
            "[pagination]\nkind = \"page\"\npage_param = \"page\"\nsize = 2\ntotal_path = \"total\"",
        ),
        &[("base", &server.uri())],
        &[("api_key", "k")],
    );

    let error = hr.fetch().await.unwrap_err().to_string();

    assert!(
        error.contains("ended after 2 records") && error.contains("there are 5"),
        "{error}"
    );
}

#[tokio::test]
async fn a_system_that_ignores_the_page_size_fails_the_fetch() {
    let server = MockServer::start().await;
    Mock::given(path("/people"))
        .respond_with(ResponseTemplate::new(200).set_body_json(people(&["A1", "A2", "A3"])))
        .mount(&server)
        .await;
    let hr = source(
        paged_definition(
            "[pagination]\nkind = \"offset\"\noffset_param = \"offset\"\nlimit_param = \"limit\"\nlimit = 2",
        ),
        &[("base", &server.uri())],
        &[("api_key", "k")],
    );

    let error = hr.fetch().await.unwrap_err().to_string();

    assert!(error.contains("more than the 2 asked for"), "{error}");
}

#[tokio::test]
async fn a_system_that_sends_the_same_page_again_fails_the_fetch() {
    let server = MockServer::start().await;
    Mock::given(path("/people"))
        .respond_with(ResponseTemplate::new(200).set_body_json(people(&["A1", "A2"])))
        .mount(&server)
        .await;
    let hr = source(
        paged_definition(
            "[pagination]\nkind = \"offset\"\noffset_param = \"offset\"\nlimit_param = \"limit\"\nlimit = 2",
        ),
        &[("base", &server.uri())],
        &[("api_key", "k")],
    );

    let error = hr.fetch().await.unwrap_err().to_string();

    assert!(error.contains("same record as the page before"), "{error}");
}

#[tokio::test]
async fn a_redirect_is_not_followed_so_credentials_stay_with_the_system() {
    let elsewhere = MockServer::start().await;
    Mock::given(path("/people"))
        .respond_with(ResponseTemplate::new(200).set_body_json(people(&["A1"])))
        .mount(&elsewhere)
        .await;
    let server = MockServer::start().await;
    Mock::given(path("/people"))
        .respond_with(
            ResponseTemplate::new(302)
                .insert_header("Location", format!("{}/people", elsewhere.uri()).as_str()),
        )
        .mount(&server)
        .await;
    let hr = source(
        paged_definition(""),
        &[("base", &server.uri())],
        &[("api_key", "k")],
    );

    let error = hr.fetch().await.unwrap_err();

    assert!(
        matches!(error, FetchError::Status { status: 302, .. }),
        "{error}"
    );
    assert!(elsewhere.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_cached_token_the_system_rejects_is_renewed_once() {
    let server = MockServer::start().await;
    for token in ["first", "second"] {
        Mock::given(path("/auth"))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(
                    serde_json::json!({"data": {"token": token, "expires_in": 3600}}),
                ),
            )
            .up_to_n_times(1)
            .mount(&server)
            .await;
    }
    // The first token works once, then the system revokes it.
    Mock::given(path("/people"))
        .and(header("Authorization", "Bearer first"))
        .respond_with(ResponseTemplate::new(200).set_body_json(people(&["A1"])))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(path("/people"))
        .and(header("Authorization", "Bearer first"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&server)
        .await;
    Mock::given(path("/people"))
        .and(header("Authorization", "Bearer second"))
        .respond_with(ResponseTemplate::new(200).set_body_json(people(&["A1", "A2"])))
        .mount(&server)
        .await;
    let definition = Definition::parse(
        r#"
name = "Token HR"
variables = ["base"]
secrets = ["client_secret"]

[auth]
kind = "token"
url = "{base}/auth"
body = { secret = "{secret:client_secret}" }
token_path = "data.token"
expires_in_path = "data.expires_in"

[request]
url = "{base}/people"

[records]
path = "data"

[fields.employee_id]
path = "id"

[fields.email]
path = "email"

[limits]
retries = 2
retry_after_ms = 10
"#,
    )
    .unwrap();
    let hr = source(
        definition,
        &[("base", &server.uri())],
        &[("client_secret", "s3cret-value")],
    );
    assert_eq!(ids(&hr.fetch().await.unwrap()), ["A1"]);

    let records = hr.fetch().await.unwrap();

    assert_eq!(ids(&records), ["A1", "A2"]);
    let token_requests = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == "/auth")
        .count();
    assert_eq!(token_requests, 2);
}

#[tokio::test]
async fn a_page_cut_short_or_a_maintenance_page_is_read_again() {
    let server = MockServer::start().await;
    Mock::given(path("/people"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            "<html><body>Down for maintenance</body></html>",
            "text/html",
        ))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(path("/people"))
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"data": [{"id": "A1", "em"#))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(path("/people"))
        .and(query_param("offset", "0"))
        .respond_with(ResponseTemplate::new(200).set_body_json(people(&["A1"])))
        .mount(&server)
        .await;
    let hr = offset_source(&server, "k-123");

    let records = hr.fetch().await.unwrap();

    assert_eq!(ids(&records), ["A1"]);
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
}

#[tokio::test]
async fn a_system_that_never_answers_json_fails_once_the_retries_are_spent() {
    let server = MockServer::start().await;
    Mock::given(path("/people"))
        .respond_with(ResponseTemplate::new(200).set_body_raw("<html>Sign in</html>", "text/html"))
        .mount(&server)
        .await;
    let hr = offset_source(&server, "k-123");

    let error = hr.fetch().await.unwrap_err().to_string();

    assert!(error.contains("(text/html) is not JSON"), "{error}");
    assert_eq!(
        server.received_requests().await.unwrap().len(),
        4,
        "the first try and three retries"
    );
}

#[tokio::test]
async fn a_record_that_cannot_be_read_is_reported_once() {
    let server = MockServer::start().await;
    Mock::given(path("/people"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"data": [{"email": "no-id@acme.example"}]})),
        )
        .mount(&server)
        .await;
    let hr = offset_source(&server, "k-123");

    let error = anyhow::Error::from(hr.fetch().await.unwrap_err());

    let shown = format!("{error:#}");
    assert_eq!(shown.matches("employee_id").count(), 1, "{shown}");
    assert!(
        shown.starts_with("Test HR page 1, record 1: employee_id"),
        "{shown}"
    );
}

#[tokio::test]
async fn a_saml_bearer_assertion_is_exchanged_for_a_token_once() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth/idp"))
        .and(wiremock::matchers::body_string_contains("client_id=c-1"))
        .and(wiremock::matchers::body_string_contains(
            "private_key=pk-secret",
        ))
        .respond_with(
            ResponseTemplate::new(200).set_body_string("PHNhbWw+YXNzZXJ0aW9uPC9zYW1sPg==\n"),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .and(wiremock::matchers::body_string_contains(
            "assertion=PHNhbWw%2BYXNzZXJ0aW9uPC9zYW1sPg%3D%3D",
        ))
        .and(wiremock::matchers::body_string_contains("company_id=ACME"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            serde_json::json!({"access_token": "t-77", "token_type": "Bearer", "expires_in": 86399}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    for (offset, page) in [("0", people(&["A1", "A2"])), ("2", people(&["A3"]))] {
        Mock::given(path("/people"))
            .and(query_param("offset", offset))
            .and(header("authorization", "Bearer t-77"))
            .respond_with(ResponseTemplate::new(200).set_body_json(page))
            .mount(&server)
            .await;
    }
    let def = Definition::parse(&OFFSET_DEFINITION.replace(
        "[auth]\nkind = \"header\"\nname = \"X-Api-Key\"\nvalue = \"{secret:api_key}\"",
        r#"[auth]
kind = "token"
url = "{base}/oauth/token"
form = { company_id = "ACME", client_id = "c-1", grant_type = "urn:ietf:params:oauth:grant-type:saml2-bearer", assertion = "{assertion}" }
token_path = "access_token"
expires_in_path = "expires_in"
[auth.assertion]
url = "{base}/oauth/idp"
form = { client_id = "c-1", user_id = "sfapi", token_url = "{base}/oauth/token", private_key = "{secret:api_key}" }"#,
    ))
    .unwrap();
    let hr = source(def, &[("base", &server.uri())], &[("api_key", "pk-secret")]);

    let records = hr.fetch().await.unwrap();

    assert_eq!(ids(&records), ["A1", "A2", "A3"], "two pages, one token");
}

#[test]
fn an_assertion_step_makes_assertion_known_only_in_the_token_request() {
    let with = |auth: &str| {
        Definition::parse(&OFFSET_DEFINITION.replace(
            "[auth]\nkind = \"header\"\nname = \"X-Api-Key\"\nvalue = \"{secret:api_key}\"",
            auth,
        ))
    };

    let without_step = with(
        "[auth]\nkind = \"token\"\nurl = \"{base}/t\"\nform = { assertion = \"{assertion}\" }\ntoken_path = \"t\"",
    );
    let in_the_step = with(
        "[auth]\nkind = \"token\"\nurl = \"{base}/t\"\ntoken_path = \"t\"\n[auth.assertion]\nurl = \"{base}/idp?a={assertion}\"",
    );

    assert!(
        without_step
            .unwrap_err()
            .contains("auth.assertion: `{assertion}`")
    );
    assert!(
        in_the_step
            .unwrap_err()
            .contains("auth.assertion.url: `{assertion}`")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_connect_refuses_incremental_fetches_a_scim_server_says_it_cannot_filter() {
    let server = MockServer::start().await;
    Mock::given(path("/scim/v2/Users"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(fixture("scim", "tenant-b/users-page-1.json")),
        )
        .mount(&server)
        .await;
    let says = |supported: bool| {
        ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
            "filter": {"supported": supported, "maxResults": 200}
        }))
    };
    Mock::given(path("/scim/v2/ServiceProviderConfig"))
        .respond_with(says(false))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(path("/scim/v2/ServiceProviderConfig"))
        .respond_with(says(true))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    write_cli_config_with(
        dir.path(),
        &format!("{}/scim/v2", server.uri()),
        "incremental = { full_every_runs = 12 }",
    );

    let cannot = hrsync_cli(dir.path(), "t", &["check", "--connect"]);
    let can = hrsync_cli(dir.path(), "t", &["check", "--connect"]);

    let stderr = String::from_utf8_lossy(&cannot.stderr);
    assert_eq!(cannot.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("acme_scim: cannot connect: http.incremental is set, but the system does not say `filter.supported` is true at {base_url}/ServiceProviderConfig"),
        "{stderr}"
    );
    assert!(
        can.status.success(),
        "{}",
        String::from_utf8_lossy(&can.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_connect_counts_each_field_and_flags_a_mapping_that_finds_no_email() {
    let server = MockServer::start().await;
    let mut page = fixture("scim", "tenant-b/users-page-1.json");
    for user in page["Resources"].as_array_mut().unwrap() {
        user.as_object_mut().unwrap().remove("emails");
    }
    Mock::given(path("/scim/v2/Users"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    write_cli_config(dir.path(), &format!("{}/scim/v2", server.uri()));

    let check = hrsync_cli(dir.path(), "t", &["check", "--connect"]);

    let stderr = String::from_utf8_lossy(&check.stderr);
    assert_eq!(check.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "the first page has 3 records, but 3 of 3 records (100%) have no usable email"
        ),
        "{stderr}"
    );
    let email = stderr
        .lines()
        .find(|l| l.trim_start().starts_with("email "))
        .unwrap_or_default();
    assert!(
        email.contains(" 0") && email.contains("none"),
        "the counts come with it: {stderr}"
    );
}

/// The offset definition with each person's `roles` read from `/people/{id}/roles`.
fn expanding_definition() -> Definition {
    Definition::parse(&format!(
        "{OFFSET_DEFINITION}\n[expand.roles]\nrequest = {{ url = \"{{base}}/people/{{record:id}}/roles\" }}\nrecords = {{ path = \"data\", missing_is_empty = true }}\n\n[fields.job_title]\npath = \"roles[0].title\"\n"
    ))
    .unwrap()
}

#[tokio::test]
async fn each_person_is_expanded_with_a_request_of_their_own() {
    let server = MockServer::start().await;
    Mock::given(path("/people"))
        .and(query_param("offset", "0"))
        .respond_with(ResponseTemplate::new(200).set_body_json(people(&["A1", "A2"])))
        .mount(&server)
        .await;
    Mock::given(path("/people"))
        .and(query_param("offset", "2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(people(&["A3"])))
        .mount(&server)
        .await;
    for (id, title) in [("A1", "Nurse"), ("A3", "Planner")] {
        Mock::given(path(format!("/people/{id}/roles")))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(serde_json::json!({"data": [{"title": title}]})),
            )
            .expect(1)
            .mount(&server)
            .await;
    }
    Mock::given(path("/people/A2/roles"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({})))
        .expect(1)
        .mount(&server)
        .await;
    let hr = source(
        expanding_definition(),
        &[("base", &server.uri())],
        &[("api_key", "k")],
    );

    let records = hr.fetch().await.unwrap();

    let titles: Vec<Option<&str>> = records.iter().map(|r| r.job_title.as_deref()).collect();
    assert_eq!(ids(&records), ["A1", "A2", "A3"]);
    assert_eq!(titles, [Some("Nurse"), None, Some("Planner")]);
}

#[tokio::test]
async fn a_person_whose_id_would_change_the_request_fails_the_fetch() {
    let server = MockServer::start().await;
    Mock::given(path("/people"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "data": [{"id": "../admin", "email": "x@acme.example"}]
        })))
        .mount(&server)
        .await;
    let hr = source(
        expanding_definition(),
        &[("base", &server.uri())],
        &[("api_key", "k")],
    );

    let error = hr.fetch().await.unwrap_err().to_string();

    assert!(
        error.contains("expand roles of Test HR page 1, record 1")
            && error.contains("`{record:id}` has no plain value"),
        "{error}"
    );
    let asked: Vec<String> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| r.url.path().to_string())
        .collect();
    assert_eq!(asked, ["/people"], "nothing else was asked");
}

/// Keeps sealed credentials in memory, as the store does in a database.
#[derive(Default)]
struct MemoryKeeper(std::sync::Mutex<BTreeMap<String, String>>);

impl hrsync::connectors::http::CredentialKeeper for MemoryKeeper {
    fn kept<'a>(
        &'a self,
        name: &'a str,
    ) -> hrsync::connectors::http::SendFuture<'a, Result<Option<String>, String>> {
        Box::pin(async move { Ok(self.0.lock().unwrap().get(name).cloned()) })
    }

    fn keep<'a>(
        &'a self,
        name: &'a str,
        sealed: String,
    ) -> hrsync::connectors::http::SendFuture<'a, Result<(), String>> {
        Box::pin(async move {
            self.0.lock().unwrap().insert(name.to_string(), sealed);
            Ok(())
        })
    }
}

fn rotating_definition() -> Definition {
    Definition::parse(&OFFSET_DEFINITION.replace(
        "[auth]\nkind = \"header\"\nname = \"X-Api-Key\"\nvalue = \"{secret:api_key}\"",
        r#"[auth]
kind = "token"
url = "{base}/token"
form = { grant_type = "refresh_token", refresh_token = "{secret:api_key}" }
token_path = "access_token"
rotated_secret = { name = "api_key", path = "refresh_token" }"#,
    ))
    .unwrap()
}

#[tokio::test]
async fn a_new_consent_starts_again_from_the_configured_refresh_token() {
    let server = MockServer::start().await;
    for (from, to) in [("consent-1", "r-2"), ("r-2", "r-3"), ("consent-2", "r-9")] {
        Mock::given(path("/token"))
            .and(wiremock::matchers::body_string_contains(format!(
                "refresh_token={from}"
            )))
            .respond_with(ResponseTemplate::new(200).set_body_json(
                serde_json::json!({"access_token": format!("a-{to}"), "refresh_token": to}),
            ))
            .expect(1)
            .mount(&server)
            .await;
    }
    Mock::given(path("/people"))
        .respond_with(ResponseTemplate::new(200).set_body_json(people(&["A1"])))
        .mount(&server)
        .await;
    let keeper = std::sync::Arc::new(MemoryKeeper::default());
    let run = |secret: &'static str| {
        source(
            rotating_definition(),
            &[("base", &server.uri())],
            &[("api_key", secret)],
        )
        .with_keeper(keeper.clone())
    };

    // Two runs on the first consent, then ops configure the refresh token of a new consent.
    run("consent-1").fetch().await.unwrap();
    run("consent-1").fetch().await.unwrap();
    run("consent-2").fetch().await.unwrap();

    // Each exchange was asked for exactly once (`expect(1)`), in that order of tokens.
    let kept = keeper.0.lock().unwrap().get("api_key").cloned().unwrap();
    assert_eq!(
        hrsync::secret::open_sealed("consent-2", &kept).as_deref(),
        Some("r-9")
    );
}

#[tokio::test]
async fn managers_are_still_found_when_an_instance_reads_the_employee_id_from_elsewhere() {
    let server = MockServer::start().await;
    Mock::given(path("/people"))
        .and(query_param("offset", "2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"data": []})))
        .mount(&server)
        .await;
    Mock::given(path("/people"))
        .and(query_param("offset", "0"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(serde_json::json!({"data": [
                {"id": "901", "number": "P-1", "email": "boss@acme.example"},
                {"id": "902", "number": "P-2", "email": "nurse@acme.example", "boss": "901"}
            ]})),
        )
        .mount(&server)
        .await;
    let def = Definition::parse(&format!(
        "{OFFSET_DEFINITION}\n[fields.manager_id]\npath = \"boss\"\n"
    ))
    .unwrap()
    .with_fields(&toml::from_str("[employee_id]\npath = \"number\"\n").unwrap())
    .unwrap();
    let hr = source(def, &[("base", &server.uri())], &[("api_key", "k")]);

    let records = hr.fetch().await.unwrap();

    assert_eq!(ids(&records), ["P-1", "P-2"]);
    assert_eq!(records[1].manager_id.as_ref().unwrap().as_str(), "P-1");
    assert_eq!(records[1].attributes["system_id"], "902");
}
