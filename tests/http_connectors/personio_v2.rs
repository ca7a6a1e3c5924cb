//! The shipped `personio_v2` definition (Personio API v2, `/v2/persons`) against Personio's
//! documented wire format, with two tenants: one without custom attributes (tenant-b) and one
//! that keeps its employee number in a custom attribute, read through an instance field
//! override (tenant-a). Each person's employments are read from
//! `/v2/persons/{id}/employments`, one request per person; department and office names from
//! `/v2/org-units` and `/v2/workplaces` (in beta: tenant-a cannot read them, and keeps the ids).

use hrsync::domain::HrRecord;
use wiremock::matchers::{body_string_contains, query_param_is_missing};

use super::expect::*;
use super::*;

const TOKEN: &str = "papi-OUYVj9QdAyL8F-Naa0PB7X2CZVb0uHDTYvW_FoX1o3lJBgvbcJ_ctlJ8nH4FDi6QWl5BHlzj";

/// A Personio server whose OAuth2 token endpoint hands out the fixture token for the client
/// credentials `cid`/`csecret`, form-encoded, exactly once.
async fn personio_server() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2/auth/token"))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(body_string_contains("grant_type=client_credentials"))
        .and(body_string_contains("client_id=cid"))
        .and(body_string_contains("client_secret=csecret"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(fixture("personio_v2", "auth-response.json")),
        )
        .expect(1)
        .mount(&server)
        .await;
    server
}

/// A fixture with Personio's own address in its links replaced by the test server's.
fn served(file: &str, server: &MockServer) -> serde_json::Value {
    let text = fixture("personio_v2", file)
        .to_string()
        .replace("https://api.personio.de", &server.uri());
    serde_json::from_str(&text).unwrap()
}

/// `GET /v2/persons` with the token and Personio's integration headers.
fn persons_request() -> wiremock::MockBuilder {
    Mock::given(method("GET"))
        .and(path("/v2/persons"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .and(header("x-personio-app-id", "HRSYNC"))
        .and(header("x-personio-partner-id", "HRSYNC"))
}

/// The instance a customer writes: the server address and the two secrets, nothing else.
fn instance(def: Definition, server: &MockServer) -> HttpSource {
    source(
        def,
        &[("base_url", &server.uri())],
        &[("client_id", "cid"), ("client_secret", "csecret")],
    )
}

/// Each person's employments at their own link, each asked for once.
async fn employments(server: &MockServer, tenant: &str, ids: &[&str]) {
    for person in ids {
        Mock::given(method("GET"))
            .and(path(format!("/v2/persons/{person}/employments")))
            .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
            .and(header("x-personio-partner-id", "HRSYNC"))
            .respond_with(ResponseTemplate::new(200).set_body_json(served(
                &format!("{tenant}/employments-{person}.json"),
                server,
            )))
            .expect(1)
            .mount(server)
            .await;
    }
}

/// The department and office names, from the fixtures, or 404 where the tenant cannot read
/// them (both endpoints are in beta).
async fn names(server: &MockServer, tenant: Option<&str>) {
    for (at, file) in [
        ("/v2/org-units", "org-units.json"),
        ("/v2/workplaces", "workplaces.json"),
    ] {
        let answer = match tenant {
            Some(tenant) => ResponseTemplate::new(200)
                .set_body_json(served(&format!("{tenant}/{file}"), server)),
            None => ResponseTemplate::new(404),
        };
        Mock::given(method("GET"))
            .and(path(at))
            .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
            .respond_with(answer)
            .expect(1)
            .mount(server)
            .await;
    }
}

#[tokio::test]
async fn personio_v2_reads_persons_by_their_own_id_following_next_links_with_one_token() {
    let server = personio_server().await;
    persons_request()
        .and(query_param("limit", "3"))
        .and(query_param_is_missing("cursor"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(served("tenant-b/persons-1.json", &server)),
        )
        .expect(1)
        .mount(&server)
        .await;
    persons_request()
        .and(query_param("cursor", "cur_b2Zmc2V0PTMmbGltaXQ9Mw"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(served("tenant-b/persons-2.json", &server)),
        )
        .expect(1)
        .mount(&server)
        .await;
    employments(
        &server,
        "tenant-b",
        &["2210001", "2210002", "2210003", "2210004", "2210005"],
    )
    .await;
    names(&server, Some("tenant-b")).await;
    let mut def = definition("personio_v2.toml");
    def.request
        .query
        .insert("limit".to_string(), "3".to_string());

    let records = instance(def, &server).fetch().await.unwrap();
    lifecycle::assert_lifecycle("personio_v2", &records);

    let named = |id: &str, email: &str, first: &str, last: &str, status: &str| HrRecord {
        first_name: text(first),
        last_name: text(last),
        display_name: Some(format!("{first} {last}")),
        status: text(status),
        ..person(id, email)
    };
    let wijkverpleging = || department("300102", "Wijkverpleging Oost");
    assert_eq!(
        records,
        vec![
            HrRecord {
                department: department("300101", "Directie"),
                location: text("Deventer Brink"),
                job_title: text("Directeur"),
                employment_type: text("INTERNAL"),
                start_date: date(2015, 9, 1),
                ..named(
                    "2210001",
                    "margriet.devries@example.org",
                    "Margriet",
                    "de Vries",
                    "active",
                )
            },
            HrRecord {
                department: wijkverpleging(),
                location: text("Deventer Brink"),
                manager_id: manager("2210001"),
                job_title: text("Wijkverpleegkundige"),
                employment_type: text("INTERNAL"),
                start_date: date(2017, 2, 1),
                ..named(
                    "2210002",
                    "zoe.janssen@example.org",
                    "Zoë",
                    "Janssen",
                    "active",
                )
            },
            // A leaver: the employment's termination date is the end date.
            HrRecord {
                department: wijkverpleging(),
                location: text("Zwolle Centrum"),
                manager_id: manager("2210001"),
                job_title: text("Planner"),
                employment_type: text("EXTERNAL"),
                start_date: date(2018, 1, 1),
                end_date: date(2026, 6, 30),
                ..named(
                    "2210003",
                    "pieter.bakker@example.org",
                    "Pieter",
                    "Bakker",
                    "inactive",
                )
            },
            // A future starter: ONBOARDING, with the start date that schedules the invite.
            HrRecord {
                department: wijkverpleging(),
                location: text("Deventer Brink"),
                manager_id: manager("2210002"),
                job_title: text("Wijkverpleegkundige"),
                employment_type: text("INTERNAL"),
                start_date: date(2027, 3, 1),
                ..named(
                    "2210004",
                    "chloe.willems@example.org",
                    "Chloë",
                    "Willems",
                    "active",
                )
            },
            // An employment with nothing but its status.
            named(
                "2210005",
                "lars.vermeulen@example.org",
                "Lars",
                "Vermeulen",
                "active"
            ),
        ]
    );
}

#[tokio::test]
async fn personio_v2_keeps_a_tenants_custom_employee_number_through_an_instance_field_override() {
    let server = personio_server().await;
    persons_request()
        .and(query_param("limit", "50"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(served("tenant-a/persons-1.json", &server)),
        )
        .expect(1)
        .mount(&server)
        .await;
    employments(
        &server,
        "tenant-a",
        &["3350001", "3350002", "3350003", "3350004", "3350005"],
    )
    .await;
    names(&server, None).await;
    let def = definition("personio_v2.toml")
        .with_fields(
            &toml::from_str::<toml::Table>(
                r#"[attributes.employee_number]
                path = "custom_attributes[id=dynamic_4400123].value"
                "#,
            )
            .unwrap(),
        )
        .unwrap();

    let records = instance(def, &server).fetch().await.unwrap();

    let record =
        |id: &str, email: &str, names: [&str; 3], status: &str, number: Option<&str>| HrRecord {
            first_name: text(names[0]),
            last_name: text(names[1]),
            display_name: text(names[2]),
            status: text(status),
            attributes: number
                .map(|n| BTreeMap::from([("employee_number".to_string(), n.to_string())]))
                .unwrap_or_default(),
            ..person(id, email)
        };
    // The department and office names cannot be read here (404): the ids stay as names.
    let employment = |dept: &str, office: &str, title: &str, kind: &str| HrRecord {
        department: department(dept, dept),
        location: text(office),
        job_title: text(title),
        employment_type: text(kind),
        ..person("0", "x@example.com")
    };
    let with = |r: HrRecord, e: HrRecord| HrRecord {
        department: e.department,
        location: e.location,
        job_title: e.job_title,
        employment_type: e.employment_type,
        ..r
    };
    assert_eq!(
        records,
        vec![
            HrRecord {
                start_date: date(2012, 5, 1),
                ..with(
                    record(
                        "3350001",
                        "hendrik.smit@example.com",
                        ["Hendrik", "Smit", "Henk Smit"],
                        "active",
                        Some("P-1001")
                    ),
                    employment("410201", "220301", "Teamleider", "INTERNAL")
                )
            },
            // On leave counts as active.
            HrRecord {
                manager_id: manager("3350001"),
                start_date: date(2019, 3, 1),
                ..with(
                    record(
                        "3350002",
                        "fatima.elamrani@example.com",
                        ["Fatima", "El Amrani", "Fatima El Amrani"],
                        "active",
                        Some("P-1002")
                    ),
                    employment("410201", "220302", "Verzorgende IG", "INTERNAL")
                )
            },
            HrRecord {
                manager_id: manager("3350001"),
                start_date: date(2016, 8, 15),
                end_date: date(2026, 10, 31),
                ..with(
                    record(
                        "3350003",
                        "jeroen.vandijk@example.com",
                        ["Jeroen", "van Dijk", "Jeroen van Dijk"],
                        "inactive",
                        Some("P-0977")
                    ),
                    employment("410202", "220301", "Roosteraar", "EXTERNAL")
                )
            },
            HrRecord {
                manager_id: manager("3350001"),
                start_date: date(2027, 2, 1),
                ..with(
                    record(
                        "3350004",
                        "sanne.peeters@example.com",
                        ["Sanne", "Peeters", "Sanne Peeters"],
                        "active",
                        Some("P-1010")
                    ),
                    employment("410201", "220301", "Verzorgende IG", "INTERNAL")
                )
            },
            // An empty custom employee number is no attribute, and the fetch goes on; an
            // employment without position, office or department leaves them empty.
            HrRecord {
                employment_type: text("INTERNAL"),
                start_date: date(2021, 5, 1),
                ..record(
                    "3350005",
                    "ana.nunez@example.com",
                    ["Ana", "Núñez", "Ana Núñez"],
                    "active",
                    None
                )
            },
        ]
    );
}

#[tokio::test]
async fn personio_v2_reads_a_company_without_persons_as_an_empty_list() {
    for body in [
        fixture("personio_v2", "empty.json"),
        // The specification requires neither `_data` nor `_meta`.
        serde_json::json!({}),
    ] {
        let server = personio_server().await;
        persons_request()
            .respond_with(ResponseTemplate::new(200).set_body_json(body))
            .expect(1)
            .mount(&server)
            .await;

        let records = instance(definition("personio_v2.toml"), &server)
            .fetch()
            .await;

        assert_eq!(records.unwrap(), vec![]);
    }
}

#[test]
fn personio_v2_definition_reads_no_tenants_custom_attribute() {
    let def = definition("personio_v2.toml");

    assert!(def.fields.attributes.is_empty());
    assert_eq!(
        def.fields
            .employee_id
            .path
            .as_ref()
            .map(ToString::to_string),
        Some("id".to_string())
    );
}

#[test]
fn personio_v2_fixtures_serve_each_persons_employment_at_the_persons_own_link() {
    // Each person of the fixtures has one employment, listed by id on the person and served
    // at the person's own employments link, as `/v2/persons/{id}/employments` answers.
    for (tenant, pages) in [
        ("tenant-a", vec!["persons-1.json"]),
        ("tenant-b", vec!["persons-1.json", "persons-2.json"]),
    ] {
        for page in pages {
            let persons = fixture("personio_v2", &format!("{tenant}/{page}"));
            for person in persons["_data"].as_array().unwrap() {
                let id = person["id"].as_str().unwrap();
                let employments =
                    fixture("personio_v2", &format!("{tenant}/employments-{id}.json"));
                let employment = &employments["_data"][0];

                assert_eq!(
                    employment["id"], person["employments"][0]["id"],
                    "{tenant} {id}"
                );
                assert_eq!(employment["person"]["id"], person["id"], "{tenant} {id}");
                assert_eq!(
                    person["_meta"]["links"]["employments"]["href"],
                    format!("https://api.personio.de/v2/persons/{id}/employments").as_str()
                );
            }
        }
    }
}
