//! The shipped `afas` definition against its system's documented wire format.

use super::*;

#[tokio::test]
async fn afas_definition_pages_with_skip_and_take() {
    let server = MockServer::start().await;
    for (skip, file) in [
        ("0", "page-1.json"),
        ("3", "page-2.json"),
        ("6", "page-3.json"),
    ] {
        Mock::given(method("GET"))
            .and(path("/ProfitRestServices/connectors/HrSync_Medewerkers"))
            .and(query_param("skip", skip))
            .and(query_param("take", "3"))
            .and(query_param("orderbyfieldids", "Medewerker"))
            .and(header("authorization", "AfasToken PHRva2VuPg=="))
            .respond_with(ResponseTemplate::new(200).set_body_json(fixture("afas", file)))
            .expect(1)
            .mount(&server)
            .await;
    }
    let mut def = definition("afas.toml");
    // Pages of three, as the fixture was captured.
    if let Pagination::Offset { limit, .. } = &mut def.pagination {
        *limit = 3;
    }
    let afas = source(
        def,
        &[
            ("base_url", &server.uri()),
            ("connector", "HrSync_Medewerkers"),
        ],
        &[("token", "PHRva2VuPg==")],
    );

    let records = afas.fetch().await.unwrap();

    assert_eq!(records.len(), 7);
    let by_id = |id: &str| {
        records
            .iter()
            .find(|r| r.employee_id.as_str() == id)
            .unwrap()
    };
    assert_eq!(by_id("M001").last_name.as_deref(), Some("de Vries"));
    assert_eq!(
        by_id("E002").start_date,
        chrono::NaiveDate::from_ymd_opt(2017, 2, 1)
    );
    assert_eq!(
        by_id("E004").end_date,
        chrono::NaiveDate::from_ymd_opt(2026, 6, 30)
    );
    assert_eq!(by_id("E003").manager_id.as_ref().unwrap().as_str(), "E002");
    assert_eq!(by_id("E006").email, Err(EmailError::Missing));
}
