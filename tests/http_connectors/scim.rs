//! The shipped `scim` definition against RFC 7643/7644 as two tenants' providers serve it
//! (`tests/fixtures/scim/`).

use super::*;

use chrono::NaiveDate;
use hrsync::domain::{Department, Email, EmployeeId, HrRecord, TeamKey};

const TENANT_A_NUMBER: &str =
    r#"path = '"urn:ietf:params:scim:schemas:extension:zorggroepwest:2.0:User".personeelsnummer'"#;

/// One expected record, every field spelled out; `attributes.scim_id` is always the `id`.
struct Expected<'a> {
    id: &'a str,
    email: Option<&'a str>,
    first: Option<&'a str>,
    last: Option<&'a str>,
    display: Option<&'a str>,
    department: Option<&'a str>,
    location: Option<&'a str>,
    manager: Option<&'a str>,
    title: Option<&'a str>,
    employment_type: Option<&'a str>,
    start: Option<(i32, u32, u32)>,
    end: Option<(i32, u32, u32)>,
    status: &'a str,
    attributes: &'a [(&'a str, &'a str)],
}

impl Expected<'_> {
    fn record(&self) -> HrRecord {
        let text = |t: Option<&str>| t.map(str::to_string);
        let date =
            |d: Option<(i32, u32, u32)>| d.and_then(|(y, m, d)| NaiveDate::from_ymd_opt(y, m, d));
        HrRecord {
            employee_id: EmployeeId::parse(self.id).unwrap(),
            email: match self.email {
                Some(e) => Email::parse(e),
                None => Err(EmailError::Missing),
            },
            first_name: text(self.first),
            last_name: text(self.last),
            display_name: text(self.display),
            department: self.department.map(|d| Department {
                key: TeamKey::parse(d).unwrap(),
                name: d.to_string(),
            }),
            location: text(self.location),
            manager_id: self.manager.map(|m| EmployeeId::parse(m).unwrap()),
            job_title: text(self.title),
            employment_type: text(self.employment_type),
            start_date: date(self.start),
            end_date: date(self.end),
            status: Some(self.status.to_string()),
            attributes: self
                .attributes
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .chain([("scim_id".to_string(), self.id.to_string())])
                .collect(),
        }
    }
}

async fn serve(server: &MockServer, start: &str, file: &str) {
    Mock::given(method("GET"))
        .and(path("/scim/v2/Users"))
        .and(query_param("startIndex", start))
        .and(query_param("count", "100"))
        .and(header("authorization", "Bearer scim-token"))
        .and(header("accept", "application/scim+json"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "application/scim+json")
                .set_body_json(fixture("scim", file)),
        )
        .expect(1)
        .mount(server)
        .await;
}

fn scim(def: Definition, server: &MockServer) -> HttpSource {
    source(
        def,
        &[("base_url", &format!("{}/scim/v2", server.uri()))],
        &[("token", "scim-token")],
    )
}

fn tenant_a_definition() -> Definition {
    let overrides: toml::Table = toml::from_str(&format!(
        "[attributes.employee_number]\n{TENANT_A_NUMBER}\n"
    ))
    .unwrap();
    definition("scim.toml").with_fields(&overrides).unwrap()
}

const TB_MANAGER: &str = "6e39ae90-9714-4394-86e0-e23819d54183";
const TA_MANAGER: &str = "201f9aec-79a2-45c2-b2f4-027840232dfd";

#[tokio::test]
async fn scim_tenant_without_custom_fields_reads_every_page_into_complete_records() {
    let server = MockServer::start().await;
    serve(&server, "1", "tenant-b/users-page-1.json").await;
    serve(&server, "4", "tenant-b/users-page-2.json").await;

    let records = scim(definition("scim.toml"), &server)
        .fetch()
        .await
        .unwrap();
    lifecycle::assert_lifecycle("scim", &records);

    let expected = [
        Expected {
            id: "a8323b44-4af9-49d3-925e-04b9896e46ff",
            email: Some("zoe.janssen@thuiszorg-oost.example.org"),
            first: Some("Zoë"),
            last: Some("Janssen"),
            display: Some("Zoë Janssen"),
            department: Some("Wijkverpleging Oost"),
            location: Some("Deventer"),
            manager: Some(TB_MANAGER),
            title: Some("Wijkverpleegkundige"),
            employment_type: Some("Employee"),
            start: Some((2017, 2, 1)),
            end: None,
            status: "active",
            attributes: &[
                ("cost_centre", "KP-410"),
                ("division", "Zorg"),
                ("employee_number", "1002"),
                ("organization", "Thuiszorg Oost"),
            ],
        },
        Expected {
            id: "20eed00a-e39a-4cf3-aa4c-f7167d36ac58",
            email: Some("soren.angstrom@thuiszorg-oost.example.org"),
            first: Some("Søren"),
            last: Some("Ångström"),
            display: Some("Søren Ångström"),
            department: Some("Wijkverpleging Oost"),
            location: Some("Apeldoorn"),
            manager: Some(TB_MANAGER),
            title: Some("Verpleegkundige"),
            employment_type: Some("Employee"),
            start: Some((2018, 1, 8)),
            end: Some((2026, 6, 30)),
            status: "inactive",
            attributes: &[("employee_number", "1004")],
        },
        Expected {
            id: "3acce409-1b0a-43e6-bb72-cb14885d93b8",
            email: Some("fatima.elamrani@thuiszorg-oost.example.org"),
            first: Some("Fatima"),
            last: Some("el Amrani"),
            display: Some("Fatima el Amrani"),
            department: Some("Wijkverpleging Oost"),
            location: Some("Deventer"),
            manager: Some(TB_MANAGER),
            title: Some("Verzorgende IG"),
            employment_type: Some("Contractor"),
            start: Some((2027, 2, 1)),
            end: None,
            status: "inactive",
            attributes: &[("employee_number", "1005")],
        },
        Expected {
            id: TB_MANAGER,
            email: Some("margriet.devries@thuiszorg-oost.example.org"),
            first: Some("Margriet"),
            last: Some("de Vries"),
            display: Some("Margriet de Vries"),
            department: Some("Wijkverpleging Oost"),
            location: Some("Deventer"),
            manager: None,
            title: Some("Teamleider Wijkverpleging"),
            employment_type: Some("Employee"),
            start: Some((2015, 9, 1)),
            end: None,
            status: "active",
            attributes: &[
                ("cost_centre", "KP-400"),
                ("division", "Zorg"),
                ("employee_number", "1001"),
                ("organization", "Thuiszorg Oost"),
            ],
        },
        Expected {
            id: "bc545b39-71c1-46e7-8c2c-8d490f8aa78b",
            email: None,
            first: Some("Pieter"),
            last: Some("Bakker"),
            display: None,
            department: None,
            location: None,
            manager: None,
            title: None,
            employment_type: None,
            start: None,
            end: None,
            status: "active",
            attributes: &[],
        },
    ]
    .map(|e| e.record());
    assert_eq!(records, expected);
}

#[tokio::test]
async fn scim_tenant_number_in_a_custom_extension_comes_from_an_instance_override() {
    let server = MockServer::start().await;
    serve(&server, "1", "tenant-a/users.json").await;

    let records = scim(tenant_a_definition(), &server).fetch().await.unwrap();

    let expected = [
        Expected {
            id: TA_MANAGER,
            email: Some("anouk.visser@zorggroep-west.example.org"),
            first: Some("Anouk"),
            last: Some("Visser"),
            display: Some("Anouk Visser"),
            department: Some("Verpleeghuis De Linde"),
            location: Some("Leiden"),
            manager: None,
            title: Some("Locatiemanager"),
            employment_type: Some("Medewerker"),
            start: Some((2012, 3, 1)),
            end: None,
            status: "active",
            attributes: &[
                ("employee_number", "700101"),
                ("organization", "Zorggroep West"),
            ],
        },
        Expected {
            id: "d5603d06-f165-4cb5-bb42-88e687df3ea3",
            email: Some("daan.deboer@zorggroep-west.example.org"),
            first: Some("Daan"),
            last: Some("de Boer"),
            display: Some("Daan de Boer"),
            department: Some("Verpleeghuis De Linde"),
            location: Some("Leiden"),
            manager: Some(TA_MANAGER),
            title: Some("Verpleegkundige"),
            employment_type: Some("Medewerker"),
            start: Some((2019, 5, 1)),
            end: None,
            status: "active",
            attributes: &[
                ("cost_centre", "4110"),
                ("division", "Ouderenzorg"),
                ("employee_number", "700214"),
                ("organization", "Zorggroep West"),
            ],
        },
        Expected {
            id: "0de3f4ac-87e2-4365-ad9c-9909ee3be57d",
            email: Some("eva.smit@zorggroep-west.example.org"),
            first: Some("Eva"),
            last: Some("Smit"),
            display: Some("Eva Smit"),
            department: Some("Verpleeghuis De Linde"),
            location: Some("Katwijk"),
            manager: Some(TA_MANAGER),
            title: Some("Helpende"),
            employment_type: Some("Oproepkracht"),
            start: Some((2021, 9, 1)),
            end: Some((2026, 10, 31)),
            status: "inactive",
            attributes: &[("employee_number", "700377")],
        },
        Expected {
            id: "5dd8332a-72c9-44ee-90cb-ff81d78647dd",
            email: Some("noah.mulder@zorggroep-west.example.org"),
            first: Some("Noah"),
            last: Some("Mulder"),
            display: Some("Noah Mulder"),
            department: Some("Verpleeghuis De Linde"),
            location: Some("Leiden"),
            manager: Some(TA_MANAGER),
            title: Some("Leerling-verpleegkundige"),
            employment_type: Some("BBL-leerling"),
            start: Some((2027, 3, 1)),
            end: None,
            status: "inactive",
            attributes: &[("employee_number", "700402")],
        },
        Expected {
            id: "7c16598e-5965-4400-aea9-cb7bccde11ec",
            email: Some("sanne.jacobs@zorggroep-west.example.org"),
            first: Some("Sanne"),
            last: Some("Jacobs"),
            display: None,
            department: None,
            location: None,
            manager: None,
            title: None,
            employment_type: None,
            start: None,
            end: None,
            status: "active",
            attributes: &[("employee_number", "700388")],
        },
        Expected {
            id: "71708be1-8477-4633-a793-2fb9a29ae4b6",
            email: Some("roosterplanning@zorggroep-west.example.org"),
            first: None,
            last: None,
            display: Some("Roosterplanning (koppeling)"),
            department: None,
            location: None,
            manager: None,
            title: None,
            employment_type: Some("Service"),
            start: None,
            end: None,
            status: "active",
            attributes: &[],
        },
    ]
    .map(|e| e.record());
    assert_eq!(records, expected);
}

#[tokio::test]
async fn scim_shipped_definition_reads_no_tenant_extension_but_finds_work_typed_emails() {
    let server = MockServer::start().await;
    serve(&server, "1", "tenant-a/users.json").await;

    let records = scim(definition("scim.toml"), &server)
        .fetch()
        .await
        .unwrap();

    assert_eq!(records.len(), 6);
    assert!(
        records
            .iter()
            .all(|r| !r.attributes.contains_key("employee_number")),
        "the tenant's own extension is read only through an instance override"
    );
    // "Work" is the canonical `work` in another letter case (RFC 7643 §2.1); the home address,
    // listed first and marked primary, is not taken.
    let daan = &records[1];
    assert_eq!(
        daan.email.as_ref().unwrap().as_str(),
        "daan.deboer@zorggroep-west.example.org"
    );
    assert!(records.iter().all(|r| r.email.is_ok()));
}

#[tokio::test]
async fn scim_future_starter_not_yet_active_keeps_the_start_date_that_schedules_them() {
    let server = MockServer::start().await;
    serve(&server, "1", "tenant-b/users-page-1.json").await;
    serve(&server, "4", "tenant-b/users-page-2.json").await;

    let records = scim(definition("scim.toml"), &server)
        .fetch()
        .await
        .unwrap();

    let fatima = records
        .iter()
        .find(|r| r.employee_id.as_str() == "3acce409-1b0a-43e6-bb72-cb14885d93b8")
        .unwrap();
    assert_eq!(fatima.status.as_deref(), Some("inactive"));
    assert!(fatima.start_date > NaiveDate::from_ymd_opt(2027, 1, 31));
    assert_eq!(fatima.end_date, None, "not a leaver: nothing has ended");
}

#[tokio::test]
async fn scim_empty_list_without_resources_is_no_people() {
    let server = MockServer::start().await;
    serve(&server, "1", "tenant-b/users-empty.json").await;

    let records = scim(definition("scim.toml"), &server)
        .fetch()
        .await
        .unwrap();

    assert_eq!(records, vec![]);
}

#[tokio::test]
async fn scim_incremental_fetch_filters_on_last_modified_since_the_watermark() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/scim/v2/Users"))
        .and(query_param(
            "filter",
            r#"meta.lastModified gt "2026-11-01T07:55:00Z""#,
        ))
        .and(query_param("startIndex", "1"))
        .and(header("authorization", "Bearer scim-token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
            "totalResults": 1,
            "startIndex": 1,
            "itemsPerPage": 1,
            "Resources": [fixture("scim", "tenant-b/users-page-1.json")["Resources"][2]],
        })))
        .expect(1)
        .mount(&server)
        .await;
    let since = chrono::DateTime::parse_from_rfc3339("2026-11-01T08:55:00+01:00")
        .unwrap()
        .with_timezone(&chrono::Utc);

    let fetched = scim(definition("scim.toml"), &server)
        .fetch_with(&hrsync::connectors::http::FetchOptions {
            since: Some(since),
            ..Default::default()
        })
        .await
        .unwrap();

    assert!(fetched.incremental);
    assert_eq!(fetched.records.len(), 1);
    assert_eq!(
        fetched.records[0]
            .attributes
            .get("employee_number")
            .map(String::as_str),
        Some("1005")
    );
}
