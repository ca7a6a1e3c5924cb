//! The shipped `bamboohr` definition against its system's documented wire format.

use super::*;

#[tokio::test]
async fn bamboohr_definition_reads_the_custom_report() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/gateway/acme/v1/reports/custom"))
        .and(query_param("onlyCurrent", "false"))
        .and(header("authorization", "Basic YmFtYm9vLWtleTp4"))
        .and(wiremock::matchers::body_partial_json(
            serde_json::json!({"title": "hrsync"}),
        ))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(fixture("bamboohr", "response.json")),
        )
        .expect(1)
        .mount(&server)
        .await;
    let bamboo = source(
        definition("bamboohr.toml"),
        &[
            ("company_domain", "acme"),
            ("base_url", &format!("{}/gateway", server.uri())),
        ],
        &[("api_key", "bamboo-key")],
    );

    let records = bamboo.fetch().await.unwrap();

    assert_eq!(records.len(), 7);
    let by_id = |id: &str| {
        records
            .iter()
            .find(|r| r.employee_id.as_str() == id)
            .unwrap()
    };
    assert_eq!(by_id("E003").last_name.as_deref(), Some("Çelik"));
    assert_eq!(by_id("E003").manager_id.as_ref().unwrap().as_str(), "E002");
    assert_eq!(by_id("M001").end_date, None, "0000-00-00 is no end date");
    assert_eq!(
        by_id("E004").end_date,
        chrono::NaiveDate::from_ymd_opt(2026, 6, 30)
    );
    assert_eq!(by_id("E004").status.as_deref(), Some("inactive"));
    assert_eq!(
        by_id("E005").start_date,
        chrono::NaiveDate::from_ymd_opt(2027, 3, 1)
    );
    assert_eq!(by_id("E006").email, Err(EmailError::Missing));
}
