//! The shipped `hibob` definition against its system's documented wire format.

use super::*;

#[tokio::test]
async fn hibob_definition_searches_with_leavers_and_resolves_managers() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/people/search"))
        .and(wiremock::matchers::body_partial_json(serde_json::json!({
            "showInactive": true,
            "fields": ["root.id", "root.email", "root.firstName", "root.surname", "root.displayName",
                "work.custom.field_1700000000001", "work.department", "work.site", "work.title",
                "work.reportsTo", "work.startDate", "internal.terminationDate", "internal.status",
                "internal.lifecycleStatus", "payroll.employment.type"],
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("hibob", "response.json")))
        .expect(1)
        .mount(&server)
        .await;
    let bob = source(
        definition("hibob.toml"),
        &[
            ("base_url", &server.uri()),
            ("employee_id_field", "field_1700000000001"),
        ],
        &[("service_user_id", "SERVICE-1"), ("token", "bob-token")],
    );

    let records = bob.fetch().await.unwrap();

    assert_eq!(records.len(), 7);
    let by_id = |id: &str| {
        records
            .iter()
            .find(|r| r.employee_id.as_str() == id)
            .unwrap()
    };
    assert_eq!(by_id("E002").manager_id.as_ref().unwrap().as_str(), "M001");
    assert_eq!(by_id("E003").manager_id.as_ref().unwrap().as_str(), "E002");
    assert_eq!(by_id("E004").status.as_deref(), Some("inactive"));
    assert_eq!(
        by_id("E004").end_date,
        chrono::NaiveDate::from_ymd_opt(2026, 6, 30)
    );
    assert_eq!(
        by_id("E005").start_date,
        chrono::NaiveDate::from_ymd_opt(2027, 3, 1)
    );
    assert_eq!(
        by_id("E002").department.as_ref().unwrap().name,
        "Wijkverpleging Noord"
    );
    assert_eq!(by_id("E006").email, Err(EmailError::Missing));
}
