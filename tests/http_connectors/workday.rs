//! The shipped `workday` definition against its system's documented wire format.

use super::*;

#[tokio::test]
async fn workday_definition_reads_the_raas_report() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(
            "/ccx/service/customreport2/acme/isu_hrsync/HrSync_Workers",
        ))
        .and(query_param("format", "json"))
        .and(header("authorization", "Basic aXN1OnB3"))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("workday", "response.json")))
        .expect(1)
        .mount(&server)
        .await;
    let workday = source(
        definition("workday.toml"),
        &[
            ("scheme", "http"),
            ("host", &server.address().to_string()),
            ("tenant", "acme"),
            ("owner", "isu_hrsync"),
            ("report", "HrSync_Workers"),
        ],
        &[("username", "isu"), ("password", "pw")],
    );

    let records = workday.fetch().await.unwrap();

    assert_eq!(records.len(), 7);
    let by_id = |id: &str| {
        records
            .iter()
            .find(|r| r.employee_id.as_str() == id)
            .unwrap()
    };
    assert_eq!(by_id("E004").status.as_deref(), Some("inactive"));
    assert_eq!(
        by_id("E004").end_date,
        chrono::NaiveDate::from_ymd_opt(2026, 6, 30)
    );
    assert_eq!(
        by_id("E002").department.as_ref().unwrap().key.as_str(),
        "WVN"
    );
    assert_eq!(by_id("E007").last_name.as_deref(), Some("Núñez"));
    assert_eq!(by_id("E006").email, Err(EmailError::Missing));
}

#[tokio::test]
async fn workday_report_without_rows_is_an_empty_feed_not_an_error() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({})))
        .mount(&server)
        .await;
    let workday = source(
        definition("workday.toml"),
        &[
            ("scheme", "http"),
            ("host", &server.address().to_string()),
            ("tenant", "acme"),
            ("owner", "isu"),
            ("report", "r"),
        ],
        &[("username", "isu"), ("password", "pw")],
    );

    let records = workday.fetch().await.unwrap();

    assert!(records.is_empty(), "held later as an empty feed (HR101)");
}
