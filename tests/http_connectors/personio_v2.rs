//! The shipped `personio_v2` definition (Personio API v2, `/v2/persons`) against Personio's
//! documented wire format, with two tenants: one without custom attributes (tenant-b) and one
//! that keeps its employee number in a custom attribute, read through an instance field
//! override (tenant-a). The employments (`/v2/persons/{id}/employments`, one request per
//! person) are in the fixtures but not read yet: see the definition's header.

use hrsync::domain::{Email, EmployeeId, HrRecord};
use wiremock::matchers::{body_string_contains, query_param_is_missing};

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

/// A record with the id and email; the test sets the rest.
fn person(id: &str, email: &str) -> HrRecord {
    HrRecord::new(EmployeeId::parse(id).unwrap(), Email::parse(email))
}

fn text(value: &str) -> Option<String> {
    Some(value.to_string())
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
    let mut def = definition("personio_v2.toml");
    def.request
        .query
        .insert("limit".to_string(), "3".to_string());

    let records = instance(def, &server).fetch().await.unwrap();

    let named = |id: &str, email: &str, first: &str, last: &str, status: &str| HrRecord {
        first_name: text(first),
        last_name: text(last),
        display_name: Some(format!("{first} {last}")),
        status: text(status),
        ..person(id, email)
    };
    assert_eq!(
        records,
        vec![
            named(
                "2210001",
                "margriet.devries@example.org",
                "Margriet",
                "de Vries",
                "active"
            ),
            named(
                "2210002",
                "zoe.janssen@example.org",
                "Zoë",
                "Janssen",
                "active"
            ),
            // A leaver: the person's status follows the latest employment, INACTIVE; an
            // empty preferred name gives way to first and last name.
            named(
                "2210003",
                "pieter.bakker@example.org",
                "Pieter",
                "Bakker",
                "inactive"
            ),
            // A future starter: ONBOARDING counts as ACTIVE on the person, and the start
            // date is on the employment, which is not read yet.
            named(
                "2210004",
                "chloe.willems@example.org",
                "Chloë",
                "Willems",
                "active"
            ),
            // No preferred name, gender, picture or custom attributes.
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
    assert_eq!(
        records,
        vec![
            record(
                "3350001",
                "hendrik.smit@example.com",
                ["Hendrik", "Smit", "Henk Smit"],
                "active",
                Some("P-1001")
            ),
            // On leave counts as ACTIVE on the person.
            record(
                "3350002",
                "fatima.elamrani@example.com",
                ["Fatima", "El Amrani", "Fatima El Amrani"],
                "active",
                Some("P-1002")
            ),
            record(
                "3350003",
                "jeroen.vandijk@example.com",
                ["Jeroen", "van Dijk", "Jeroen van Dijk"],
                "inactive",
                Some("P-0977")
            ),
            record(
                "3350004",
                "sanne.peeters@example.com",
                ["Sanne", "Peeters", "Sanne Peeters"],
                "active",
                Some("P-1010")
            ),
            // An empty custom employee number is no attribute, and the fetch goes on.
            record(
                "3350005",
                "ana.nunez@example.com",
                ["Ana", "Núñez", "Ana Núñez"],
                "active",
                None
            ),
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
