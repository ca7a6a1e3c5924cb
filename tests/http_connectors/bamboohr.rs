//! The shipped `bamboohr` definition against BambooHR's Datasets API v2 as two companies'
//! accounts answer it (`tests/fixtures/bamboohr/`).

use super::*;

use chrono::NaiveDate;
use hrsync::domain::{Department, Email, EmployeeId, HrRecord, TeamKey};
use wiremock::matchers::body_json;

/// base64("bamboo-key:x"): the API key as the user name, `x` as the password.
const BASIC: &str = "Basic YmFtYm9vLWtleTp4";
const DATA_PATH: &str = "/api/v2/datasets/employee/data";

/// One expected record, every field spelled out; the display name is first and last name, and
/// `attributes.bamboohr_id` is always the `eeid`.
struct Expected<'a> {
    id: &'a str,
    email: Option<&'a str>,
    first: &'a str,
    last: &'a str,
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
            first_name: Some(self.first.to_string()),
            last_name: Some(self.last.to_string()),
            display_name: Some(format!("{} {}", self.first, self.last)),
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
                .chain([("bamboohr_id".to_string(), self.id.to_string())])
                .collect(),
        }
    }
}

/// Answers the first page of the dataset when the request is the one BambooHR documents.
async fn serve(server: &MockServer, request: &str, answer: serde_json::Value) {
    Mock::given(method("POST"))
        .and(path(DATA_PATH))
        .and(wiremock::matchers::query_param_is_missing("page"))
        .and(header("authorization", BASIC))
        .and(header("content-type", "application/json"))
        .and(header("accept", "application/json"))
        .and(body_json(fixture("bamboohr", request)))
        .respond_with(ResponseTemplate::new(200).set_body_json(answer))
        .expect(1)
        .mount(server)
        .await;
}

fn bamboo(def: Definition, server: &MockServer, vars: &[(&str, &str)]) -> HttpSource {
    let base = server.uri();
    let mut all = vec![("base_url", base.as_str())];
    all.extend_from_slice(vars);
    source(def, &all, &[("api_key", "bamboo-key")])
}

#[tokio::test]
async fn bamboohr_company_without_custom_fields_reads_current_former_and_future_employees() {
    let server = MockServer::start().await;
    serve(
        &server,
        "tenant-b/request.json",
        fixture("bamboohr", "tenant-b/employee-data.json"),
    )
    .await;

    let records = bamboo(definition("bamboohr.toml"), &server, &[])
        .fetch()
        .await
        .unwrap();
    lifecycle::assert_lifecycle("bamboohr", &records);

    let expected = [
        Expected {
            id: "40",
            email: Some("hanna.dijkstra@zorgcentrum-noord.example.org"),
            first: "Hanna",
            last: "Dijkstra",
            department: Some("Wijkteam Noord"),
            location: Some("Groningen"),
            manager: None,
            title: Some("Teamleider"),
            employment_type: Some("Full-Time"),
            start: Some((2014, 4, 1)),
            end: None,
            status: "active",
            attributes: &[("division", "Thuiszorg"), ("employee_number", "N-0040")],
        },
        Expected {
            id: "41",
            email: Some("lucas.meijer@zorgcentrum-noord.example.org"),
            first: "Lucas",
            last: "Meijer",
            department: Some("Wijkteam Noord"),
            location: Some("Groningen"),
            manager: Some("40"),
            title: Some("Wijkverpleegkundige"),
            employment_type: Some("Full-Time"),
            start: Some((2019, 6, 1)),
            end: None,
            status: "active",
            attributes: &[("division", "Thuiszorg"), ("employee_number", "N-0041")],
        },
        Expected {
            id: "43",
            email: Some("julia.degraaf@zorgcentrum-noord.example.org"),
            first: "Julia",
            last: "de Graaf",
            department: Some("Wijkteam Noord"),
            location: Some("Assen"),
            manager: Some("40"),
            title: Some("Verzorgende IG"),
            employment_type: None,
            start: Some((2016, 3, 14)),
            end: Some((2026, 9, 30)),
            status: "inactive",
            attributes: &[("division", "Thuiszorg"), ("employee_number", "N-0043")],
        },
        Expected {
            id: "45",
            email: None,
            first: "Emma",
            last: "Vos",
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
        Expected {
            id: "47",
            email: Some("mohammed.yilmaz@zorgcentrum-noord.example.org"),
            first: "Mohammed",
            last: "Yılmaz",
            department: Some("Wijkteam Noord"),
            location: Some("Groningen"),
            manager: Some("40"),
            title: Some("Verpleegkundige"),
            employment_type: Some("Part-Time"),
            start: Some((2027, 2, 1)),
            end: None,
            status: "inactive",
            attributes: &[("division", "Thuiszorg"), ("employee_number", "N-0047")],
        },
    ]
    .map(|e| e.record());
    assert_eq!(records, expected);
}

#[tokio::test]
async fn bamboohr_number_in_a_custom_field_is_requested_and_read_through_an_instance_override() {
    let server = MockServer::start().await;
    serve(
        &server,
        "tenant-a/request.json",
        fixture("bamboohr", "tenant-a/employee-data.json"),
    )
    .await;
    let overrides: toml::Table = toml::from_str(
        r#"[attributes.employee_number]
path = "fields.customPersoneelsnummer"
"#,
    )
    .unwrap();
    let extend: toml::Table = toml::from_str("fields = [\"customPersoneelsnummer\"]").unwrap();
    let def = definition("bamboohr.toml")
        .with_fields(&overrides)
        .unwrap()
        .with_body_extended(&extend)
        .unwrap();

    let records = bamboo(def, &server, &[]).fetch().await.unwrap();

    let expected = [
        Expected {
            id: "7",
            email: Some("bram.hendriks@zorggroep-zuid.example.org"),
            first: "Bram",
            last: "Hendriks",
            department: Some("Revalidatie"),
            location: Some("Eindhoven"),
            manager: None,
            title: Some("Vestigingsmanager"),
            employment_type: Some("Vast"),
            start: Some((2010, 1, 4)),
            end: None,
            status: "active",
            attributes: &[("division", "Regio Zuid"), ("employee_number", "80007")],
        },
        Expected {
            id: "12",
            email: Some("lotte.vandam@zorggroep-zuid.example.org"),
            first: "Lotte",
            last: "van Dam",
            department: Some("Revalidatie"),
            location: Some("Eindhoven"),
            manager: Some("7"),
            title: Some("Fysiotherapeut"),
            employment_type: Some("Vast"),
            start: Some((2020, 8, 17)),
            end: None,
            status: "active",
            attributes: &[("division", "Regio Zuid"), ("employee_number", "80012")],
        },
        Expected {
            id: "15",
            email: Some("thijs.kramer@zorggroep-zuid.example.org"),
            first: "Thijs",
            last: "Kramer",
            department: Some("Revalidatie"),
            location: Some("Helmond"),
            manager: Some("7"),
            title: Some("Ergotherapeut"),
            employment_type: None,
            start: Some((2018, 2, 1)),
            end: Some((2026, 3, 31)),
            status: "inactive",
            attributes: &[("division", "Regio Zuid"), ("employee_number", "80015")],
        },
        Expected {
            id: "18",
            email: None,
            first: "Ruben",
            last: "Claes",
            department: None,
            location: None,
            manager: None,
            title: None,
            employment_type: None,
            start: Some((2023, 11, 6)),
            end: None,
            status: "active",
            attributes: &[],
        },
        Expected {
            id: "21",
            email: Some("sara.peeters@zorggroep-zuid.example.org"),
            first: "Sara",
            last: "Peeters",
            department: Some("Revalidatie"),
            location: Some("Eindhoven"),
            manager: Some("7"),
            title: Some("Zorgassistent"),
            employment_type: Some("Oproep"),
            start: Some((2027, 4, 1)),
            end: None,
            status: "inactive",
            attributes: &[("division", "Regio Zuid"), ("employee_number", "80021")],
        },
    ]
    .map(|e| e.record());
    assert_eq!(records, expected);
}

#[tokio::test]
async fn bamboohr_shipped_definition_asks_for_no_custom_field() {
    let server = MockServer::start().await;
    serve(
        &server,
        "tenant-b/request.json",
        fixture("bamboohr", "tenant-a/employee-data.json"),
    )
    .await;

    let records = bamboo(definition("bamboohr.toml"), &server, &[])
        .fetch()
        .await
        .unwrap();

    assert_eq!(records.len(), 5);
    assert!(
        records
            .iter()
            .all(|r| !r.attributes.contains_key("employee_number")),
        "a custom field is read only when an instance names it"
    );
}

#[tokio::test]
async fn bamboohr_empty_dataset_is_no_people_with_or_without_its_data_list() {
    for answer in [
        fixture("bamboohr", "tenant-b/employee-data-empty.json"),
        serde_json::json!({"links": {}, "meta": {"page": 1, "pageSize": 1000, "totalPages": 0, "totalItems": 0}}),
    ] {
        let server = MockServer::start().await;
        serve(&server, "tenant-b/request.json", answer).await;

        let records = bamboo(definition("bamboohr.toml"), &server, &[])
            .fetch()
            .await
            .unwrap();

        assert_eq!(records, vec![]);
    }
}

#[tokio::test]
async fn bamboohr_company_of_more_than_a_page_is_read_page_by_page_in_the_body() {
    // 1,500 employees: pages of 1,000, the page number in the JSON body as Datasets v2 reads it.
    let row = |n: u32| {
        serde_json::json!({"fields": {
            "eeid": n.to_string(), "employeeNumber": null, "firstName": "Medewerker",
            "lastName": n.to_string(), "email": format!("m{n}@zorgcentrum-noord.example.org"),
            "jobInformationDepartment": null, "jobInformationDivision": null,
            "jobInformationLocation": null, "jobInformationJobTitle": null,
            "employmentStatus": null, "hireDate": "2020-01-01", "terminationDate": null,
            "status": "Active", "supervisorEid": null
        }})
    };
    let server = MockServer::start().await;
    for (page, rows) in [(1, 1..=1000), (2, 1001..=1500)] {
        Mock::given(method("POST"))
            .and(path(DATA_PATH))
            .and(wiremock::matchers::body_partial_json(
                serde_json::json!({"page": page, "pageSize": 1000, "orderBy": "eeid asc"}),
            ))
            .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
                "data": rows.map(row).collect::<Vec<_>>(),
                "meta": {"page": page, "pageSize": 1000, "totalPages": 2, "totalItems": 1500}
            })))
            .expect(1)
            .mount(&server)
            .await;
    }

    let records = bamboo(definition("bamboohr.toml"), &server, &[])
        .fetch()
        .await
        .unwrap();

    assert_eq!(records.len(), 1500);
    assert_eq!(records[1000].employee_id.as_str(), "1001");
}

#[tokio::test]
async fn bamboohr_throttled_request_is_retried_until_the_dataset_comes() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(DATA_PATH))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    serve(
        &server,
        "tenant-b/request.json",
        fixture("bamboohr", "tenant-b/employee-data.json"),
    )
    .await;

    let records = bamboo(definition("bamboohr.toml"), &server, &[])
        .fetch()
        .await
        .unwrap();

    assert_eq!(records.len(), 5);
}
