//! The shipped `personio` definition (Personnel Data API v1) against Personio's documented
//! wire format, with two tenants: one without custom attributes (tenant-b) and one that keeps
//! its employee number in a custom attribute, read through an instance field override
//! (tenant-a).

use hrsync::domain::{EmployeeId, HrRecord};
use wiremock::matchers::body_json;

use super::expect::*;
use super::*;

const TOKEN: &str = "papi-0f3b1c2d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";

/// A Personio server that hands out the fixture token for `cid`/`csecret`, exactly once.
async fn personio_server() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/auth"))
        .and(body_json(
            serde_json::json!({"client_id": "cid", "client_secret": "csecret"}),
        ))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(fixture("personio", "auth-response.json")),
        )
        .expect(1)
        .mount(&server)
        .await;
    server
}

/// Serves one page of employees at `offset` to a request with the token and Personio's
/// integration headers.
async fn serve_page(server: &MockServer, offset: &str, limit: &str, file: &str, app_id: &str) {
    Mock::given(method("GET"))
        .and(path("/v1/company/employees"))
        .and(query_param("offset", offset))
        .and(query_param("limit", limit))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .and(header("x-personio-app-id", app_id))
        .and(header("x-personio-partner-id", "HRSYNC"))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("personio", file)))
        .expect(1)
        .mount(server)
        .await;
}

/// The instance a customer writes: the server address and the two secrets, nothing else.
fn instance(def: Definition, server: &MockServer, vars: &[(&str, &str)]) -> HttpSource {
    let base_url = format!("{}/v1", server.uri());
    let mut all = vec![("base_url", base_url.as_str())];
    all.extend_from_slice(vars);
    source(
        def,
        &all,
        &[("client_id", "cid"), ("client_secret", "csecret")],
    )
}

#[tokio::test]
async fn personio_reads_every_standard_attribute_with_personios_own_id_as_employee_id() {
    let server = personio_server().await;
    serve_page(&server, "0", "2", "tenant-b/page-1.json", "HRSYNC").await;
    serve_page(&server, "2", "2", "tenant-b/page-2.json", "HRSYNC").await;
    serve_page(&server, "4", "2", "tenant-b/page-3.json", "HRSYNC").await;
    let mut def = definition("personio.toml");
    if let Pagination::Offset { limit, .. } = &mut def.pagination {
        *limit = 2;
    }

    let records = instance(def, &server, &[]).fetch().await.unwrap();
    lifecycle::assert_lifecycle("personio", &records);

    let margriet = HrRecord {
        first_name: text("Margriet"),
        last_name: text("de Vries"),
        display_name: text("Margriet de Vries"),
        department: department("300101", "Directie"),
        location: text("Utrecht"),
        manager_id: None,
        job_title: text("Directeur"),
        employment_type: text("internal"),
        start_date: date(2015, 9, 1),
        end_date: None,
        status: text("active"),
        ..person("2210001", "margriet.devries@example.org")
    };
    let zoe = HrRecord {
        first_name: text("Zoë"),
        last_name: text("Janssen"),
        display_name: text("Zoë Janssen"),
        department: department("300102", "Wijkverpleging Noord"),
        location: text("Utrecht"),
        manager_id: EmployeeId::parse("2210001"),
        job_title: text("Wijkverpleegkundige"),
        employment_type: text("internal"),
        start_date: date(2017, 2, 1),
        end_date: None,
        status: text("active"),
        ..person("2210002", "zoe.janssen@example.org")
    };
    // A leaver: the termination date has passed, the status is inactive, and an empty
    // preferred name gives way to first and last name.
    let pieter = HrRecord {
        first_name: text("Pieter"),
        last_name: text("Bakker"),
        display_name: text("Pieter Bakker"),
        department: department("300102", "Wijkverpleging Noord"),
        location: text("Amersfoort"),
        manager_id: EmployeeId::parse("2210001"),
        job_title: text("Planner"),
        employment_type: text("external"),
        start_date: date(2018, 1, 1),
        end_date: date(2026, 6, 30),
        status: text("inactive"),
        ..person("2210003", "pieter.bakker@example.org")
    };
    // A future starter: Personio says `onboarding`; the hire date makes them scheduled.
    let chloe = HrRecord {
        first_name: text("Chloë"),
        last_name: text("Willems"),
        display_name: text("Chloë Willems"),
        department: department("300102", "Wijkverpleging Noord"),
        location: text("Utrecht"),
        manager_id: EmployeeId::parse("2210002"),
        job_title: text("Wijkverpleegkundige"),
        employment_type: text("internal"),
        start_date: date(2027, 3, 1),
        end_date: None,
        status: text("active"),
        ..person("2210004", "chloe.willems@example.org")
    };
    // Missing and null optional attributes leave their fields empty.
    let lars = HrRecord {
        first_name: text("Lars"),
        last_name: text("Vermeulen"),
        display_name: text("Lars Vermeulen"),
        status: text("active"),
        ..person("2210005", "lars.vermeulen@example.org")
    };
    assert_eq!(records, vec![margriet, zoe, pieter, chloe, lars]);
}

#[tokio::test]
async fn personio_keeps_a_tenants_custom_employee_number_through_an_instance_field_override() {
    let server = personio_server().await;
    serve_page(
        &server,
        "0",
        "100",
        "tenant-a/page-1.json",
        "THUISZORG_SYNC",
    )
    .await;
    let def = definition("personio.toml")
        .with_fields(
            &toml::from_str::<toml::Table>(
                r#"[attributes.employee_number]
                path = "attributes.dynamic_4400123.value"
                "#,
            )
            .unwrap(),
        )
        .unwrap();

    let records = instance(def, &server, &[("app_id", "THUISZORG_SYNC")])
        .fetch()
        .await
        .unwrap();

    let number = |n: &str| BTreeMap::from([("employee_number".to_string(), n.to_string())]);
    let hendrik = HrRecord {
        first_name: text("Hendrik"),
        last_name: text("Smit"),
        display_name: text("Henk Smit"),
        department: department("410201", "Thuiszorg Eindhoven"),
        location: text("Eindhoven"),
        manager_id: None,
        job_title: text("Teamleider"),
        employment_type: text("internal"),
        start_date: date(2012, 5, 1),
        end_date: None,
        status: text("active"),
        attributes: number("P-1001"),
        ..person("3350001", "hendrik.smit@example.com")
    };
    // On leave is employed.
    let fatima = HrRecord {
        first_name: text("Fatima"),
        last_name: text("El Amrani"),
        display_name: text("Fatima El Amrani"),
        department: department("410201", "Thuiszorg Eindhoven"),
        location: text("Helmond"),
        manager_id: EmployeeId::parse("3350001"),
        job_title: text("Verzorgende IG"),
        employment_type: text("internal"),
        start_date: date(2019, 3, 1),
        end_date: None,
        status: text("active"),
        attributes: number("P-1002"),
        ..person("3350002", "fatima.elamrani@example.com")
    };
    let jeroen = HrRecord {
        first_name: text("Jeroen"),
        last_name: text("van Dijk"),
        display_name: text("Jeroen van Dijk"),
        department: department("410202", "Planning & Roostering"),
        location: text("Eindhoven"),
        manager_id: EmployeeId::parse("3350001"),
        job_title: text("Roosteraar"),
        employment_type: text("external"),
        start_date: date(2016, 8, 15),
        end_date: date(2026, 10, 31),
        status: text("inactive"),
        attributes: number("P-0977"),
        ..person("3350003", "jeroen.vandijk@example.com")
    };
    let sanne = HrRecord {
        first_name: text("Sanne"),
        last_name: text("Peeters"),
        display_name: text("Sanne Peeters"),
        department: department("410201", "Thuiszorg Eindhoven"),
        location: text("Eindhoven"),
        manager_id: EmployeeId::parse("3350001"),
        job_title: text("Verzorgende IG"),
        employment_type: text("internal"),
        start_date: date(2027, 2, 1),
        end_date: None,
        status: text("active"),
        attributes: number("P-1010"),
        ..person("3350004", "sanne.peeters@example.com")
    };
    // No department or office in the answer, no supervisor or position, and an empty custom
    // employee number: no attribute, and the fetch goes on.
    let ana = HrRecord {
        first_name: text("Ana"),
        last_name: text("Núñez"),
        display_name: text("Ana Núñez"),
        employment_type: text("internal"),
        start_date: date(2021, 5, 1),
        status: text("active"),
        ..person("3350005", "ana.nunez@example.com")
    };
    assert_eq!(records, vec![hendrik, fatima, jeroen, sanne, ana]);
}

#[tokio::test]
async fn personio_reads_a_company_without_people_as_an_empty_list() {
    let server = personio_server().await;
    serve_page(&server, "0", "100", "empty.json", "HRSYNC").await;

    let records = instance(definition("personio.toml"), &server, &[])
        .fetch()
        .await;

    assert_eq!(records.unwrap(), vec![]);
}

#[test]
fn personio_definition_reads_no_tenants_custom_attribute() {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("connectors/personio.toml"),
    )
    .unwrap();
    let mappings: Vec<&str> = text
        .lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .filter(|line| line.contains("dynamic_"))
        .collect();

    assert_eq!(mappings, Vec::<&str>::new());
    assert!(definition("personio.toml").fields.attributes.is_empty());
}
