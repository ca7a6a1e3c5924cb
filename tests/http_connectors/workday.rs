//! The shipped `workday` definitions (a RaaS custom report read as JSON; OAuth 2.0 by default,
//! Basic in `workday_basic.toml`) against the wire format in `tests/fixtures/workday/`, with two
//! tenants: one whose report uses the definition's aliases (tenant-b) and one whose report names
//! its columns otherwise and keeps its own employee number in a custom field, read through
//! instance field overrides (tenant-a).

use hrsync::domain::{EmployeeId, HrRecord};
use wiremock::matchers::{body_string, header};

use super::expect::*;
use super::*;

const REPORT_PATH: &str = "/ccx/service/customreport2/acme/isu_hrsync/HrSync_Workers";
const TOKEN: &str = "wd-at-2b7c9e41d8f04a6b9e3c5d7f1a2b3c4d";

/// A Workday server whose token endpoint exchanges the instance's refresh token for the
/// fixture's access token, exactly once.
async fn workday_server() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/ccx/oauth2/acme/token"))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(body_string(
            "client_id=wd-client&client_secret=wd-secret&grant_type=refresh_token&refresh_token=wd-refresh",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("workday", "token.json")))
        .expect(1)
        .mount(&server)
        .await;
    server
}

/// Serves the report, as JSON, to a request that carries the access token.
async fn serve_report(server: &MockServer, body: serde_json::Value) {
    Mock::given(method("GET"))
        .and(path(REPORT_PATH))
        .and(query_param("format", "json"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(body))
        .expect(1)
        .mount(server)
        .await;
}

/// The instance a customer writes: host, tenant, report owner and name, and the secrets.
fn instance(def: Definition, server: &MockServer) -> HttpSource {
    source(
        def,
        &[
            ("scheme", "http"),
            ("host", &server.address().to_string()),
            ("tenant", "acme"),
            ("owner", "isu_hrsync"),
            ("report", "HrSync_Workers"),
        ],
        &[
            ("client_id", "wd-client"),
            ("client_secret", "wd-secret"),
            ("refresh_token", "wd-refresh"),
        ],
    )
}

/// Tenant-a's report names its columns in camel case and keeps its employee number in a
/// custom field; its connector instance says so.
fn tenant_a_overrides() -> toml::Table {
    toml::from_str(
        r#"
        [employee_id]
        path = "workdayID"
        [email]
        path = "primaryWorkEmail"
        [first_name]
        path = "legalFirstName"
        [last_name]
        path = "legalLastName"
        [display_name]
        path = "worker"
        [department_code]
        path = "supervisoryOrganizationCode"
        [department]
        path = "supervisoryOrganizationName"
        [location]
        path = "businessSite"
        [manager_id]
        path = "managerWorkdayID"
        [job_title]
        path = "jobTitle"
        [employment_type]
        path = "employeeType"
        [start_date]
        path = "hireDate"
        [end_date]
        path = "terminationDate"
        [status]
        path = "isActive"
        boolean = true
        map = { "true" = "active", "false" = "inactive" }
        [attributes.employee_number]
        path = "Personeelsnummer"
        "#,
    )
    .unwrap()
}

fn number(value: &str) -> BTreeMap<String, String> {
    BTreeMap::from([("employee_number".to_string(), value.to_string())])
}

#[tokio::test]
async fn workday_reads_every_standard_column_with_the_workday_id_as_employee_id() {
    let server = workday_server().await;
    serve_report(&server, fixture("workday", "tenant-b/report.json")).await;

    let records = instance(definition("workday.toml"), &server)
        .fetch()
        .await
        .unwrap();
    lifecycle::assert_lifecycle("workday", &records);

    let margriet_wid = "47a2eeda8b6b2496e7d3227d8721e35b";
    let zoe_wid = "afb990336018bea061ebe00e66e965e1";
    let margriet = HrRecord {
        first_name: text("Margriet"),
        last_name: text("de Vries"),
        display_name: text("Margriet de Vries"),
        department: department("SO-0001", "Directie"),
        location: text("Utrecht"),
        manager_id: None,
        job_title: text("Directeur"),
        employment_type: text("Regular"),
        start_date: date(2015, 9, 1),
        end_date: None,
        status: text("active"),
        attributes: number("21001"),
        ..person(margriet_wid, "margriet.devries@example.org")
    };
    let zoe = HrRecord {
        first_name: text("Zoë"),
        last_name: text("Janssen"),
        display_name: text("Zoë Janssen"),
        department: department("SO-0102", "Wijkverpleging Noord"),
        location: text("Amersfoort"),
        manager_id: EmployeeId::parse(margriet_wid),
        job_title: text("Wijkverpleegkundige"),
        employment_type: text("Regular"),
        start_date: date(2017, 2, 1),
        end_date: None,
        status: text("active"),
        attributes: number("21002"),
        ..person(zoe_wid, "zoe.janssen@example.org")
    };
    // A leaver: terminated in the past, Active "0".
    let soren = HrRecord {
        first_name: text("Søren"),
        last_name: text("Ångström"),
        display_name: text("Søren Ångström"),
        department: department("SO-0102", "Wijkverpleging Noord"),
        location: text("Amersfoort"),
        manager_id: EmployeeId::parse(zoe_wid),
        job_title: text("Verpleegkundige"),
        employment_type: text("Regular"),
        start_date: date(2018, 1, 1),
        end_date: date(2026, 6, 30),
        status: text("inactive"),
        attributes: number("21003"),
        ..person(
            "364cf32e8924efb1e1c5c97191a2b540",
            "soren.angstrom@example.org",
        )
    };
    // A future starter: not active yet; the hire date makes them scheduled.
    let chloe = HrRecord {
        first_name: text("Chloë"),
        last_name: text("Willems"),
        display_name: text("Chloë Willems"),
        department: department("SO-0102", "Wijkverpleging Noord"),
        location: text("Utrecht"),
        manager_id: EmployeeId::parse(zoe_wid),
        job_title: text("Wijkverpleegkundige"),
        employment_type: text("Regular"),
        start_date: date(2027, 3, 1),
        end_date: None,
        status: text("inactive"),
        attributes: number("21004"),
        ..person(
            "65b48e6433f77111b21d5a87d530465a",
            "chloe.willems@example.org",
        )
    };
    // A contingent worker has no Employee ID: the Workday ID still identifies her, and her
    // Contingent Worker ID and type stand in for the employee's.
    let ana = HrRecord {
        first_name: text("Ana"),
        last_name: text("Núñez"),
        display_name: text("Ana Núñez"),
        department: department("SO-0001", "Directie"),
        location: text("Utrecht"),
        manager_id: EmployeeId::parse(margriet_wid),
        job_title: text("Interim controller"),
        employment_type: text("Contractor"),
        start_date: date(2026, 1, 5),
        end_date: None,
        status: text("active"),
        attributes: number("C-0042"),
        ..person("da94366bf59a7bb911d52a52c1318a7d", "ana.nunez@example.org")
    };
    // Columns left empty in a row are absent: the fields stay empty, the email is missing.
    let lars = HrRecord {
        first_name: text("Lars"),
        last_name: text("Vermeulen"),
        display_name: text("Lars Vermeulen"),
        status: text("active"),
        attributes: number("21006"),
        ..HrRecord::new(
            EmployeeId::parse("9c199b79c2fc7489e9dbb394dcd040ad").unwrap(),
            Err(EmailError::Missing),
        )
    };
    assert_eq!(records, vec![margriet, zoe, soren, chloe, ana, lars]);
}

#[tokio::test]
async fn workday_reads_a_tenants_own_aliases_and_custom_employee_number_through_instance_field_overrides()
 {
    let server = workday_server().await;
    serve_report(&server, fixture("workday", "tenant-a/report.json")).await;
    let def = definition("workday.toml")
        .with_fields(&tenant_a_overrides())
        .unwrap();

    let records = instance(def, &server).fetch().await.unwrap();

    let hendrik_wid = "fd66089a8f320d6630142ef2ab0ff04b";
    let hendrik = HrRecord {
        first_name: text("Hendrik"),
        last_name: text("Smit"),
        display_name: text("Hendrik Smit"),
        department: department("TZ-EHV", "Thuiszorg Eindhoven"),
        location: text("Eindhoven"),
        manager_id: None,
        job_title: text("Teamleider"),
        employment_type: text("Vast"),
        start_date: date(2012, 5, 1),
        end_date: None,
        status: text("active"),
        attributes: number("P-1001"),
        ..person(hendrik_wid, "hendrik.smit@example.net")
    };
    let fatima = HrRecord {
        first_name: text("Fatima"),
        last_name: text("El Amrani"),
        display_name: text("Fatima El Amrani"),
        department: department("TZ-EHV", "Thuiszorg Eindhoven"),
        location: text("Eindhoven"),
        manager_id: EmployeeId::parse(hendrik_wid),
        job_title: text("Verzorgende IG"),
        employment_type: text("Vast"),
        start_date: date(2019, 8, 15),
        end_date: None,
        status: text("active"),
        attributes: number("P-1002"),
        ..person(
            "5deec221280d647d4baff5e5b31eba31",
            "fatima.elamrani@example.net",
        )
    };
    let bram = HrRecord {
        first_name: text("Bram"),
        last_name: text("Peeters"),
        display_name: text("Bram Peeters"),
        department: department("TZ-EHV", "Thuiszorg Eindhoven"),
        location: text("Helmond"),
        manager_id: EmployeeId::parse(hendrik_wid),
        job_title: text("Helpende"),
        employment_type: text("Tijdelijk"),
        start_date: date(2021, 3, 1),
        end_date: date(2026, 9, 30),
        status: text("inactive"),
        attributes: number("P-1003"),
        ..person(
            "57ee24bc1eeb8d6206b02423ea03cbed",
            "bram.peeters@example.net",
        )
    };
    let eva = HrRecord {
        first_name: text("Eva"),
        last_name: text("Lambrecht"),
        display_name: text("Eva Lambrecht"),
        department: department("TZ-EHV", "Thuiszorg Eindhoven"),
        location: text("Eindhoven"),
        manager_id: EmployeeId::parse(hendrik_wid),
        job_title: text("Wijkverpleegkundige"),
        employment_type: text("Vast"),
        start_date: date(2027, 2, 1),
        end_date: None,
        status: text("inactive"),
        attributes: number("P-1004"),
        ..person(
            "a4e6651443b9cbc1ff76579b11d24c44",
            "eva.lambrecht@example.net",
        )
    };
    // The custom field is empty for him, and so is everything optional.
    let joris = HrRecord {
        first_name: text("Joris"),
        last_name: text("Wouters"),
        display_name: text("Joris Wouters"),
        status: text("active"),
        ..HrRecord::new(
            EmployeeId::parse("694fa25a2d3642675a4f148ab72bfd45").unwrap(),
            Err(EmailError::Missing),
        )
    };
    assert_eq!(records, vec![hendrik, fatima, bram, eva, joris]);
}

#[tokio::test]
async fn workday_fails_a_report_without_the_workday_id_column_instead_of_reading_nobody() {
    let server = workday_server().await;
    // Tenant-a's report read without its overrides: no row has a `Worker_WID`.
    serve_report(&server, fixture("workday", "tenant-a/report.json")).await;

    let error = instance(definition("workday.toml"), &server)
        .fetch()
        .await
        .unwrap_err();

    match error {
        FetchError::Record(e) => {
            assert_eq!(e.field, "employee_id", "{e}");
            assert_eq!(e.index, 1, "the first record: {e}");
        }
        other => panic!("expected a record without employee id, got {other}"),
    }
}

#[tokio::test]
async fn workday_report_without_rows_is_an_empty_list_with_or_without_report_entry() {
    for body in [
        serde_json::json!({"Report_Entry": []}),
        serde_json::json!({}),
    ] {
        let server = workday_server().await;
        serve_report(&server, body.clone()).await;

        let records = instance(definition("workday.toml"), &server)
            .fetch()
            .await
            .unwrap();

        assert_eq!(records, vec![], "{body}");
    }
}

#[tokio::test]
async fn workday_basic_reads_the_same_report_with_the_integration_system_users_password() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(REPORT_PATH))
        .and(query_param("format", "json"))
        // base64("isu_hrsync@acme:pw-1")
        .and(header(
            "authorization",
            "Basic aXN1X2hyc3luY0BhY21lOnB3LTE=",
        ))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(fixture("workday", "tenant-b/report.json")),
        )
        .expect(1)
        .mount(&server)
        .await;
    let workday = source(
        definition("workday_basic.toml"),
        &[
            ("scheme", "http"),
            ("host", &server.address().to_string()),
            ("tenant", "acme"),
            ("owner", "isu_hrsync"),
            ("report", "HrSync_Workers"),
        ],
        &[("username", "isu_hrsync@acme"), ("password", "pw-1")],
    );

    let records = workday.fetch().await.unwrap();

    let ids: Vec<&str> = records.iter().map(|r| r.employee_id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "47a2eeda8b6b2496e7d3227d8721e35b",
            "afb990336018bea061ebe00e66e965e1",
            "364cf32e8924efb1e1c5c97191a2b540",
            "65b48e6433f77111b21d5a87d530465a",
            "da94366bf59a7bb911d52a52c1318a7d",
            "9c199b79c2fc7489e9dbb394dcd040ad",
        ]
    );
}
