//! The shipped `successfactors` definition against its system's documented wire format.

use super::*;

/// A fixture page whose next-page links point at the test server instead of SAP's host.
fn successfactors_page(file: &str, server: &MockServer) -> serde_json::Value {
    let text = serde_json::to_string(&fixture("successfactors", file)).unwrap();
    serde_json::from_str(&text.replace("https://api12preview.sapsf.eu:443", &server.uri())).unwrap()
}

#[tokio::test]
async fn successfactors_definition_follows_next_links_and_reads_odata_dates() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/odata/v2/User"))
        .and(query_param("$filter", "status in 't','f'"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(successfactors_page("page-1.json", &server)),
        )
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    for (token, file) in [
        ("eyJzdGFydFJvdyI6MywiZW5kUm93Ijo2fQ==", "page-2.json"),
        ("eyJzdGFydFJvdyI6NiwiZW5kUm93Ijo5fQ==", "page-3.json"),
    ] {
        Mock::given(method("GET"))
            .and(query_param("$skiptoken", token))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(successfactors_page(file, &server)),
            )
            .expect(1)
            .mount(&server)
            .await;
    }
    let sf = source(
        definition("successfactors.toml"),
        &[
            ("scheme", "http"),
            ("api_host", &server.address().to_string()),
            ("company_id", "ACME"),
        ],
        &[("username", "hrsync"), ("password", "pw")],
    );

    let records = sf.fetch().await.unwrap();

    assert_eq!(records.len(), 7);
    let by_id = |id: &str| {
        records
            .iter()
            .find(|r| r.employee_id.as_str() == id)
            .unwrap()
    };
    let zoe = by_id("E002");
    assert_eq!(zoe.department.as_ref().unwrap().key.as_str(), "WVN");
    assert_eq!(
        zoe.department.as_ref().unwrap().name,
        "Wijkverpleging Noord"
    );
    assert_eq!(zoe.location.as_deref(), Some("Utrecht"));
    assert_eq!(zoe.start_date, chrono::NaiveDate::from_ymd_opt(2017, 2, 1));
    assert_eq!(zoe.manager_id.as_ref().unwrap().as_str(), "M001");
    assert_eq!(
        by_id("E004").end_date,
        chrono::NaiveDate::from_ymd_opt(2026, 6, 30)
    );
    assert_eq!(by_id("E004").status.as_deref(), Some("inactive"));
    assert_eq!(by_id("E006").email, Err(EmailError::Missing));
}
