//! The shipped `personio` definition against its system's documented wire format.

use super::*;

#[tokio::test]
async fn personio_definition_exchanges_a_token_once_and_pages_with_offsets() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/auth"))
        .and(wiremock::matchers::body_json(
            serde_json::json!({"client_id": "cid", "client_secret": "csecret"}),
        ))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(fixture("personio", "auth-response.json")),
        )
        .expect(1)
        .mount(&server)
        .await;
    for (offset, file) in [
        ("0", "page-1.json"),
        ("3", "page-2.json"),
        ("6", "page-3.json"),
    ] {
        Mock::given(method("GET"))
            .and(path("/v1/company/employees"))
            .and(query_param("offset", offset))
            .and(header(
                "authorization",
                "Bearer papi-0f3b1c2d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
            ))
            .and(header("x-personio-partner-id", "ACME"))
            .respond_with(ResponseTemplate::new(200).set_body_json(fixture("personio", file)))
            .expect(1)
            .mount(&server)
            .await;
    }
    let mut def = definition("personio.toml");
    if let Pagination::Offset { limit, .. } = &mut def.pagination {
        *limit = 3;
    }
    let personio = source(
        def,
        &[
            ("base_url", &format!("{}/v1", server.uri())),
            ("partner_id", "ACME"),
            ("app_id", "hrsync"),
        ],
        &[("client_id", "cid"), ("client_secret", "csecret")],
    );

    let records = personio.fetch().await.unwrap();

    assert_eq!(records.len(), 7);
    let by_id = |id: &str| {
        records
            .iter()
            .find(|r| r.employee_id.as_str() == id)
            .unwrap()
    };
    assert_eq!(by_id("E002").manager_id.as_ref().unwrap().as_str(), "M001");
    assert_eq!(
        by_id("E002").start_date,
        chrono::NaiveDate::from_ymd_opt(2017, 2, 1)
    );
    assert_eq!(by_id("E002").display_name.as_deref(), Some("Zoë Janssen"));
    assert_eq!(by_id("E004").status.as_deref(), Some("inactive"));
    assert_eq!(by_id("E006").email, Err(EmailError::Missing));
}
