//! The shipped `scim` definition against its system's documented wire format.

use super::*;

#[tokio::test]
async fn scim_definition_reads_every_page_and_resolves_managers() {
    let server = MockServer::start().await;
    for (start, page) in [
        ("1", "page-1.json"),
        ("4", "page-2.json"),
        ("7", "page-3.json"),
    ] {
        Mock::given(method("GET"))
            .and(path("/scim/v2/Users"))
            .and(query_param("startIndex", start))
            .and(header("authorization", "Bearer scim-token"))
            .respond_with(ResponseTemplate::new(200).set_body_json(fixture("scim", page)))
            .expect(1)
            .mount(&server)
            .await;
    }
    let scim = source(
        definition("scim.toml"),
        &[("base_url", &format!("{}/scim/v2", server.uri()))],
        &[("token", "scim-token")],
    );

    let records = scim.fetch().await.unwrap();

    assert_eq!(records.len(), 7);
    let by_id = |id: &str| {
        records
            .iter()
            .find(|r| r.employee_id.as_str() == id)
            .unwrap()
    };
    assert_eq!(by_id("E002").first_name.as_deref(), Some("Zoë"));
    assert_eq!(by_id("E002").manager_id.as_ref().unwrap().as_str(), "M001");
    assert_eq!(by_id("E003").manager_id.as_ref().unwrap().as_str(), "E002");
    assert!(by_id("M001").manager_id.is_none());
    assert_eq!(by_id("E006").email, Err(EmailError::Missing));
    assert_eq!(by_id("E004").status.as_deref(), Some("inactive"));
    assert_eq!(
        by_id("E002").department.as_ref().unwrap().name,
        "Wijkverpleging Noord"
    );
}
