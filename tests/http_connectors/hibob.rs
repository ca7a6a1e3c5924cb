//! The shipped `hibob` definition against HiBob's documented people search, for two tenants:
//! tenant-b uses no custom field at all, tenant-a keeps its personnel number in a field of a
//! custom category.

use super::expect::*;
use super::*;

use hrsync::domain::HrRecord;

const TENANT_A_NUMBER: &str = "category_1720508362305.field_1720508399001";

/// A HiBob tenant served by wiremock: the search answers `response` when asked for exactly the
/// body in `request.json`, with the service user's Basic credentials.
async fn hibob_tenant(tenant: &str, response: &str) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/people/search"))
        .and(header(
            "authorization",
            "Basic U0VSVklDRS0xMjM0OmJvYi10b2tlbi1zZWNyZXQ=",
        ))
        .and(wiremock::matchers::body_json(fixture(
            "hibob",
            &format!("{tenant}/request.json"),
        )))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(fixture("hibob", &format!("{tenant}/{response}"))),
        )
        .expect(1)
        .mount(&server)
        .await;
    server
}

const SERVICE_USER: [(&str, &str); 2] = [
    ("service_user_id", "SERVICE-1234"),
    ("token", "bob-token-secret"),
];

#[tokio::test]
async fn hibob_tenant_without_custom_fields_reads_every_standard_field_by_the_backend_id() {
    let server = hibob_tenant("tenant-b", "response.json").await;
    let bob = source(
        definition("hibob.toml"),
        &[("base_url", &server.uri())],
        &SERVICE_USER,
    );

    let records = bob.fetch().await.unwrap();
    lifecycle::assert_lifecycle("hibob", &records);

    let director = "3332883884017713201";
    let nurse = "3332883884017713202";
    assert_eq!(
        records,
        vec![
            HrRecord {
                first_name: text("Margriet"),
                last_name: text("de Vries"),
                display_name: text("Margriet de Vries"),
                department: department("209192201", "Directie"),
                location: text("Utrecht"),
                job_title: text("Directeur"),
                employment_type: text("Vast"),
                start_date: date(2015, 9, 1),
                status: text("active"),
                attributes: attributes(&[
                    ("employee_number", "1"),
                    ("lifecycle_status", "employed")
                ]),
                ..person(director, Some("margriet.devries@zorggroep.example.org"))
            },
            HrRecord {
                first_name: text("Zoë"),
                last_name: text("Janssen"),
                display_name: text("Zoë Janssen"),
                department: department("209192202", "Wijkverpleging Noord"),
                location: text("Amersfoort"),
                manager_id: manager(director),
                job_title: text("Wijkverpleegkundige"),
                employment_type: text("Vast"),
                start_date: date(2017, 2, 1),
                status: text("active"),
                attributes: attributes(&[
                    ("employee_number", "2"),
                    ("lifecycle_status", "employed")
                ]),
                ..person(nurse, Some("zoe.janssen@zorggroep.example.org"))
            },
            HrRecord {
                first_name: text("Søren"),
                last_name: text("Ångström"),
                display_name: text("Søren Ångström"),
                department: department("209192202", "Wijkverpleging Noord"),
                location: text("Utrecht"),
                manager_id: manager(nurse),
                job_title: text("Verpleegkundige"),
                employment_type: text("Vast"),
                start_date: date(2018, 1, 1),
                end_date: date(2026, 6, 30),
                status: text("inactive"),
                attributes: attributes(&[
                    ("employee_number", "4"),
                    ("lifecycle_status", "terminated")
                ]),
                ..person(
                    "3332883884017713204",
                    Some("soren.angstrom@zorggroep.example.org")
                )
            },
            HrRecord {
                first_name: text("Fatima"),
                last_name: text("El Amrani"),
                display_name: text("Fatima El Amrani"),
                department: department("209192202", "Wijkverpleging Noord"),
                location: text("Amersfoort"),
                manager_id: manager(nurse),
                job_title: text("Verpleegkundige"),
                employment_type: text("Tijdelijk"),
                start_date: date(2027, 3, 1),
                status: text("active"),
                attributes: attributes(&[("employee_number", "5"), ("lifecycle_status", "hired")]),
                ..person(
                    "3332883884017713205",
                    Some("fatima.elamrani@zorggroep.example.org")
                )
            },
            HrRecord {
                first_name: text("Lars"),
                last_name: text("Vermeulen"),
                display_name: text("Lars Vermeulen"),
                start_date: date(2020, 1, 1),
                status: text("active"),
                attributes: attributes(&[("lifecycle_status", "employed")]),
                ..person("3332883884017713206", None)
            },
        ]
    );
}

#[tokio::test]
async fn hibob_tenant_with_a_custom_personnel_number_gets_it_through_an_instance_override() {
    let server = hibob_tenant("tenant-a", "response.json").await;
    let overrides: toml::Table = toml::from_str(&format!(
        "[attributes.employee_number]\npath = \"{TENANT_A_NUMBER}\"\n"
    ))
    .unwrap();
    let extend: toml::Table =
        toml::from_str(&format!("fields = [\"{TENANT_A_NUMBER}\"]\n")).unwrap();
    let bob = source(
        definition("hibob.toml")
            .with_fields(&overrides)
            .unwrap()
            .with_body_extended(&extend)
            .unwrap(),
        &[("base_url", &server.uri())],
        &SERVICE_USER,
    );

    let records = bob.fetch().await.unwrap();

    let board = "3412995001100000101";
    let lead = "3412995001100000102";
    assert_eq!(
        records,
        vec![
            HrRecord {
                first_name: text("Henk"),
                last_name: text("Bakker"),
                display_name: text("Henk Bakker"),
                department: department("209400031", "Bestuur"),
                location: text("Rotterdam Zuid"),
                job_title: text("Bestuurder"),
                employment_type: text("Onbepaalde tijd"),
                start_date: date(2012, 4, 1),
                status: text("active"),
                attributes: attributes(&[
                    ("employee_number", "TZ-0101"),
                    ("lifecycle_status", "employed")
                ]),
                ..person(board, Some("henk.bakker@thuiszorg.example.org"))
            },
            HrRecord {
                first_name: text("Noor"),
                last_name: text("Visser"),
                display_name: text("Noor Visser"),
                department: department("209400032", "Thuiszorg Delft"),
                location: text("Delft"),
                manager_id: manager(board),
                job_title: text("Teamleider Thuiszorg"),
                employment_type: text("Onbepaalde tijd"),
                start_date: date(2016, 10, 1),
                status: text("active"),
                attributes: attributes(&[
                    ("employee_number", "TZ-0102"),
                    ("lifecycle_status", "employed")
                ]),
                ..person(lead, Some("noor.visser@thuiszorg.example.org"))
            },
            HrRecord {
                first_name: text("Pieter"),
                last_name: text("Mulder"),
                display_name: text("Pieter Mulder"),
                department: department("209400032", "Thuiszorg Delft"),
                location: text("Delft"),
                manager_id: manager(lead),
                job_title: text("Verzorgende IG"),
                employment_type: text("Bepaalde tijd"),
                start_date: date(2019, 5, 1),
                end_date: date(2026, 9, 30),
                status: text("inactive"),
                attributes: attributes(&[
                    ("employee_number", "TZ-0103"),
                    ("lifecycle_status", "terminated")
                ]),
                ..person(
                    "3412995001100000103",
                    Some("pieter.mulder@thuiszorg.example.org")
                )
            },
            HrRecord {
                first_name: text("Inês"),
                last_name: text("Oliveira"),
                display_name: text("Inês Oliveira"),
                department: department("209400032", "Thuiszorg Delft"),
                location: text("Rotterdam Zuid"),
                manager_id: manager(lead),
                job_title: text("Verzorgende IG"),
                employment_type: text("Bepaalde tijd"),
                start_date: date(2027, 2, 1),
                status: text("active"),
                attributes: attributes(&[
                    ("employee_number", "TZ-0104"),
                    ("lifecycle_status", "hired")
                ]),
                ..person(
                    "3412995001100000104",
                    Some("ines.oliveira@thuiszorg.example.org")
                )
            },
            HrRecord {
                first_name: text("Daan"),
                last_name: text("Smit"),
                display_name: text("Daan Smit"),
                start_date: date(2023, 8, 15),
                status: text("active"),
                attributes: attributes(&[("lifecycle_status", "employed")]),
                ..person(
                    "3412995001100000105",
                    Some("daan.smit@thuiszorg.example.org")
                )
            },
        ]
    );
}

#[tokio::test]
async fn hibob_company_without_employees_is_an_empty_list() {
    let server = hibob_tenant("tenant-b", "response-empty.json").await;
    let bob = source(
        definition("hibob.toml"),
        &[("base_url", &server.uri())],
        &SERVICE_USER,
    );

    assert_eq!(bob.fetch().await.unwrap(), vec![]);
}
