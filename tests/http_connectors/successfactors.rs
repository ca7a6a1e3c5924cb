//! The shipped `successfactors` definitions (Employee Central's OData v2 EmpEmployment with user,
//! person and job information expanded) against the wire format in
//! `tests/fixtures/successfactors/`, with two tenants: one without custom fields (tenant-b) and
//! one that keeps its own employee number in a custom field of the employment, read through an
//! instance field override (tenant-a).

use hrsync::domain::{EmployeeId, HrRecord};
use wiremock::matchers::{body_string, body_string_contains, header, query_param_is_missing};

use super::expect::*;
use super::*;

const EXPAND: &str = "userNav,personNav/personalInfoNav,personNav/emailNav,jobInfoNav/departmentNav,jobInfoNav/locationNav,jobInfoNav/employmentTypeNav/picklistLabels";
const IAS_TOKEN: &str = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJpYXNfYXBpcyI6WyJzZl90ZWNobmljYWxfYWNjZXNzIl0sInN1YiI6Imhyc3luYy1jbGllbnQifQ.c2lnbmF0dXJl";

/// A fixture page whose next-page links point at the test server instead of SAP's host.
fn successfactors_page(file: &str, server: &MockServer) -> serde_json::Value {
    let text = serde_json::to_string(&fixture("successfactors", file)).unwrap();
    serde_json::from_str(&text.replace("https://api12preview.sapsf.eu:443", &server.uri())).unwrap()
}

/// A server that plays Identity Authentication and the API server: its token endpoint hands
/// out a token for the technical-access dependency `SF-TA`, exactly once.
async fn successfactors_server() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth2/token"))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(body_string(
            "client_id=hrsync-client&client_secret=s3cret&grant_type=client_credentials\
             &resource=urn%3Asap%3Aidentity%3Aapplication%3Aprovider%3Aname%3ASF-TA&token_format=jwt",
        ))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(fixture("successfactors", "ias-token.json")),
        )
        .expect(1)
        .mount(&server)
        .await;
    server
}

/// Serves the first page of employments to the full query with the bearer token.
async fn serve_first_page(server: &MockServer, token: &str, body: serde_json::Value) {
    Mock::given(method("GET"))
        .and(path("/odata/v2/EmpEmployment"))
        .and(query_param("$format", "json"))
        .and(query_param("$filter", "userNav/status in 't','f','e'"))
        .and(query_param("$expand", EXPAND))
        .and(query_param("paging", "snapshot"))
        .and(query_param_is_missing("$skiptoken"))
        .and(header("authorization", format!("Bearer {token}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(body))
        .expect(1)
        .mount(server)
        .await;
}

/// The instance a customer writes: the API server, the IAS tenant, the dependency and the
/// client's id and secret.
fn instance(def: Definition, server: &MockServer, extra: &[(&str, &str)]) -> HttpSource {
    let host = server.address().to_string();
    let mut vars = vec![
        ("scheme", "http"),
        ("api_host", host.as_str()),
        ("ias_host", host.as_str()),
        ("dependency", "SF-TA"),
    ];
    vars.extend_from_slice(extra);
    source(
        def,
        &vars,
        &[("client_id", "hrsync-client"), ("client_secret", "s3cret")],
    )
}

fn number(value: &str) -> BTreeMap<String, String> {
    BTreeMap::from([("employee_number".to_string(), value.to_string())])
}

#[tokio::test]
async fn successfactors_reads_employments_with_user_person_and_job_and_the_user_id_as_employee_id()
{
    let server = successfactors_server().await;
    serve_first_page(
        &server,
        IAS_TOKEN,
        successfactors_page("tenant-b/page-1.json", &server),
    )
    .await;
    Mock::given(method("GET"))
        .and(path("/odata/v2/EmpEmployment"))
        .and(query_param(
            "$skiptoken",
            "eyJzZXNzaW9uSWQiOiJyN2s0cTIiLCJzdGFydFJvdyI6M30=",
        ))
        .and(header(
            "authorization",
            format!("Bearer {IAS_TOKEN}").as_str(),
        ))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(successfactors_page("tenant-b/page-2.json", &server)),
        )
        .expect(1)
        .mount(&server)
        .await;

    let records = instance(definition("successfactors.toml"), &server, &[])
        .fetch()
        .await
        .unwrap();
    lifecycle::assert_lifecycle("successfactors", &records);

    let margriet = HrRecord {
        first_name: text("Margriet"),
        last_name: text("de Vries"),
        display_name: text("Margriet de Vries"),
        department: department("DIR", "Directie"),
        location: text("Utrecht"),
        manager_id: None,
        job_title: text("Directeur"),
        employment_type: text("Regular"),
        start_date: date(2015, 9, 1),
        end_date: None,
        status: text("active"),
        attributes: number("21001"),
        ..person("802101", "margriet.devries@example.org")
    };
    let zoe = HrRecord {
        first_name: text("Zoë"),
        last_name: text("Janssen"),
        display_name: text("Zoë Janssen"),
        department: department("WVN", "Wijkverpleging Noord"),
        location: text("Amersfoort"),
        manager_id: EmployeeId::parse("802101"),
        job_title: text("Wijkverpleegkundige"),
        employment_type: text("Regular"),
        start_date: date(2017, 2, 1),
        end_date: None,
        status: text("active"),
        attributes: number("21002"),
        ..person("802102", "zoe.janssen@example.org")
    };
    // A leaver: the employment ended in the past and the user is inactive; today's job record
    // is the termination, which keeps department and manager.
    let soren = HrRecord {
        first_name: text("Søren"),
        last_name: text("Ångström"),
        display_name: text("Søren Ångström"),
        department: department("WVN", "Wijkverpleging Noord"),
        location: text("Amersfoort"),
        manager_id: EmployeeId::parse("802102"),
        job_title: text("Verpleegkundige"),
        employment_type: text("Regular"),
        start_date: date(2018, 1, 1),
        end_date: date(2026, 6, 30),
        status: text("inactive"),
        attributes: number("21003"),
        ..person("802103", "soren.angstrom@example.org")
    };
    // A future starter: no job or personal record is in effect today, the user is inactive;
    // names and email come from the user, and the start date makes them scheduled.
    let chloe = HrRecord {
        first_name: text("Chloë"),
        last_name: text("Willems"),
        start_date: date(2027, 3, 1),
        status: text("inactive"),
        attributes: number("21004"),
        ..person("802104", "chloe.willems@example.org")
    };
    // Optional values that are null or absent leave their fields empty.
    let lars = HrRecord {
        first_name: text("Lars"),
        last_name: text("Vermeulen"),
        start_date: date(2020, 1, 1),
        status: text("active"),
        attributes: number("21005"),
        ..no_email("802105")
    };
    assert_eq!(records, vec![margriet, zoe, soren, chloe, lars]);
}

#[tokio::test]
async fn successfactors_keeps_a_tenants_custom_employee_number_through_an_instance_field_override()
{
    let server = successfactors_server().await;
    serve_first_page(
        &server,
        IAS_TOKEN,
        successfactors_page("tenant-a/page-1.json", &server),
    )
    .await;
    let def = definition("successfactors.toml")
        .with_fields(
            &toml::from_str::<toml::Table>(
                r#"[attributes.employee_number]
                path = "customString1"
                "#,
            )
            .unwrap(),
        )
        .unwrap();

    let records = instance(def, &server, &[("locale", "nl_NL")])
        .fetch()
        .await
        .unwrap();

    let hendrik = HrRecord {
        first_name: text("Hendrik"),
        last_name: text("Smit"),
        display_name: text("Henk Smit"),
        department: department("TZ-EHV", "Thuiszorg Eindhoven"),
        location: text("Eindhoven"),
        manager_id: None,
        job_title: text("Teamleider"),
        employment_type: text("Vast"),
        start_date: date(2012, 5, 1),
        end_date: None,
        status: text("active"),
        attributes: number("P-1001"),
        ..person("hsmit", "hendrik.smit@example.net")
    };
    let fatima = HrRecord {
        first_name: text("Fatima"),
        last_name: text("El Amrani"),
        display_name: text("Fatima El Amrani"),
        department: department("TZ-EHV", "Thuiszorg Eindhoven"),
        location: text("Eindhoven"),
        manager_id: EmployeeId::parse("hsmit"),
        job_title: text("Verzorgende IG"),
        employment_type: text("Vast"),
        start_date: date(2019, 8, 15),
        end_date: None,
        status: text("active"),
        attributes: number("P-1002"),
        ..person("felamrani", "fatima.elamrani@example.net")
    };
    let bram = HrRecord {
        first_name: text("Bram"),
        last_name: text("Peeters"),
        display_name: text("Bram Peeters"),
        department: department("TZ-HLM", "Thuiszorg Helmond"),
        location: text("Helmond"),
        manager_id: EmployeeId::parse("hsmit"),
        job_title: text("Helpende"),
        employment_type: text("Tijdelijk"),
        start_date: date(2021, 3, 1),
        end_date: date(2026, 9, 30),
        status: text("inactive"),
        attributes: number("P-1003"),
        ..person("bpeeters", "bram.peeters@example.net")
    };
    let eva = HrRecord {
        first_name: text("Eva"),
        last_name: text("Lambrecht"),
        start_date: date(2027, 2, 1),
        status: text("inactive"),
        attributes: number("P-1004"),
        ..person("elambrecht", "eva.lambrecht@example.net")
    };
    // The custom field is null for him: no employee number.
    let joris = HrRecord {
        first_name: text("Joris"),
        last_name: text("Wouters"),
        start_date: date(2023, 6, 1),
        status: text("active"),
        ..no_email("jwouters")
    };
    assert_eq!(records, vec![hendrik, fatima, bram, eva, joris]);
}

#[tokio::test]
async fn successfactors_answer_without_results_is_an_empty_list() {
    let server = successfactors_server().await;
    serve_first_page(
        &server,
        IAS_TOKEN,
        serde_json::json!({"d": {"results": []}}),
    )
    .await;

    let records = instance(definition("successfactors.toml"), &server, &[])
        .fetch()
        .await
        .unwrap();

    assert_eq!(records, vec![]);
}

#[tokio::test]
async fn successfactors_saml_exchanges_an_assertion_from_oauth_idp_for_a_bearer_token() {
    let server = MockServer::start().await;
    let assertion = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/successfactors/assertion.txt"),
    )
    .unwrap();
    Mock::given(method("POST"))
        .and(path("/oauth/idp"))
        .and(body_string_contains("client_id=api-key-1"))
        .and(body_string_contains("user_id=hrsync_api"))
        .and(body_string_contains(
            "private_key=TUlJRXZRSUJBREFOQmdrcWhraUc5dzBC",
        ))
        .and(body_string_contains("token_url=http%3A%2F%2F"))
        .respond_with(ResponseTemplate::new(200).set_body_string(assertion.clone()))
        .expect(1)
        .mount(&server)
        .await;
    let sent_assertion = format!(
        "assertion={}",
        assertion
            .trim()
            .replace('+', "%2B")
            .replace('/', "%2F")
            .replace('=', "%3D")
    );
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .and(body_string_contains("company_id=ACME"))
        .and(body_string_contains("client_id=api-key-1"))
        .and(body_string_contains(
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Asaml2-bearer",
        ))
        .and(body_string_contains(sent_assertion.as_str()))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(fixture("successfactors", "oauth-token.json")),
        )
        .expect(1)
        .mount(&server)
        .await;
    let token = fixture("successfactors", "oauth-token.json")["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    serve_first_page(
        &server,
        &token,
        successfactors_page("tenant-a/page-1.json", &server),
    )
    .await;
    let host = server.address().to_string();
    let sf = source(
        definition("successfactors_saml.toml"),
        &[
            ("scheme", "http"),
            ("api_host", host.as_str()),
            ("company_id", "ACME"),
            ("api_user", "hrsync_api"),
        ],
        &[
            ("api_key", "api-key-1"),
            ("private_key", "TUlJRXZRSUJBREFOQmdrcWhraUc5dzBC"),
        ],
    );

    let records = sf.fetch().await.unwrap();

    let ids: Vec<&str> = records.iter().map(|r| r.employee_id.as_str()).collect();
    assert_eq!(
        ids,
        ["hsmit", "felamrani", "bpeeters", "elambrecht", "jwouters"]
    );
}
