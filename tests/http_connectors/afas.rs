//! The shipped `afas` definition against the Profit REST API: tenant-b reads AFAS's standard
//! GetConnector Profit_Employees, tenant-a reads a GetConnector of its own with other field
//! ids, through instance variables and field overrides.

use super::expect::*;
use super::*;

use hrsync::domain::HrRecord;
use wiremock::matchers::body_string_contains;

const CLIENT: [(&str, &str); 2] = [
    ("client_id", "hrsync-client"),
    ("client_secret", "afas-client-secret"),
];

/// The token exchange, which must happen exactly once for a whole fetch.
async fn afas_token(server: &MockServer, tenant: &str) -> String {
    let answer = fixture("afas", &format!("{tenant}/token.json"));
    Mock::given(method("POST"))
        .and(path("/ProfitRestServices/oauth/token"))
        .and(body_string_contains("grant_type=client_credentials"))
        .and(body_string_contains("client_id=hrsync-client"))
        .and(body_string_contains("client_secret=afas-client-secret"))
        .respond_with(ResponseTemplate::new(200).set_body_json(&answer))
        .expect(1)
        .mount(server)
        .await;
    format!("Bearer {}", answer["access_token"].as_str().unwrap())
}

/// Pages of `connector` sorted by `order_by`, two rows each, each asked for once.
async fn afas_pages(
    server: &MockServer,
    tenant: &str,
    connector: &str,
    order_by: &str,
    bearer: &str,
) {
    for (skip, file) in [
        ("0", "page-1.json"),
        ("2", "page-2.json"),
        ("4", "page-3.json"),
    ] {
        Mock::given(method("GET"))
            .and(path(format!("/ProfitRestServices/connectors/{connector}")))
            .and(query_param("skip", skip))
            .and(query_param("take", "2"))
            .and(query_param("orderbyfieldids", order_by))
            .and(header("authorization", bearer))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(fixture("afas", &format!("{tenant}/{file}"))),
            )
            .expect(1)
            .mount(server)
            .await;
    }
}

async fn afas_org_chart(server: &MockServer, tenant: &str, bearer: &str) {
    Mock::given(method("GET"))
        .and(path(
            "/ProfitRestServices/connectors/Profit_OrganizationChart",
        ))
        .and(query_param("skip", "0"))
        .and(query_param("take", "1000"))
        .and(query_param("orderbyfieldids", "Unitd"))
        .and(header("authorization", bearer))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture(
            "afas",
            &format!("{tenant}/organization-chart.json"),
        )))
        .expect(1)
        .mount(server)
        .await;
}

/// The shipped definition, read two rows a page as the fixtures were captured.
fn afas_definition() -> Definition {
    let mut def = definition("afas.toml");
    if let Pagination::Offset { limit, .. } = &mut def.pagination {
        *limit = 2;
    }
    def
}

#[tokio::test]
async fn afas_standard_employee_connector_pages_with_one_oauth_token_and_finds_unit_managers() {
    let server = MockServer::start().await;
    let bearer = afas_token(&server, "tenant-b").await;
    afas_pages(
        &server,
        "tenant-b",
        "Profit_Employees",
        "EmployeeId",
        &bearer,
    )
    .await;
    afas_org_chart(&server, "tenant-b", &bearer).await;
    let afas = source(afas_definition(), &[("base_url", &server.uri())], &CLIENT);

    let records = afas.fetch().await.unwrap();
    lifecycle::assert_lifecycle("afas", &records);

    let noord = department("WVN", "Wijkverpleging Noord");
    assert_eq!(
        records,
        vec![
            HrRecord {
                first_name: text("Margriet"),
                last_name: text("de Vries"),
                department: department("BST", "Bestuur"),
                job_title: text("Bestuurder"),
                employment_type: text("Vast dienstverband"),
                start_date: date(2015, 9, 1),
                attributes: attributes(&[
                    ("employee_number", "10001"),
                    ("employer", "01"),
                    ("person_id", "1000101"),
                ]),
                ..person("10001", Some("margriet.devries@zorggroep.example.org"))
            },
            HrRecord {
                first_name: text("Zoë"),
                last_name: text("Janssen"),
                department: noord.clone(),
                manager_id: manager("10001"),
                job_title: text("Wijkverpleegkundige"),
                employment_type: text("Vast dienstverband"),
                start_date: date(2017, 2, 1),
                attributes: attributes(&[
                    ("employee_number", "10002"),
                    ("employer", "01"),
                    ("person_id", "1000102"),
                ]),
                ..person("10002", Some("zoe.janssen@zorggroep.example.org"))
            },
            HrRecord {
                first_name: text("Søren"),
                last_name: text("Ångström"),
                department: noord.clone(),
                manager_id: manager("10001"),
                job_title: text("Verpleegkundige"),
                employment_type: text("Vast dienstverband"),
                start_date: date(2018, 1, 1),
                end_date: date(2026, 6, 30),
                attributes: attributes(&[
                    ("employee_number", "10004"),
                    ("employer", "01"),
                    ("person_id", "1000104"),
                ]),
                ..person("10004", Some("soren.angstrom@zorggroep.example.org"))
            },
            HrRecord {
                first_name: text("Fatima"),
                last_name: text("El Amrani"),
                department: noord,
                manager_id: manager("10001"),
                job_title: text("Verpleegkundige"),
                employment_type: text("Tijdelijk dienstverband"),
                start_date: date(2027, 3, 1),
                end_date: date(2028, 2, 29),
                attributes: attributes(&[
                    ("employee_number", "10005"),
                    ("employer", "01"),
                    ("person_id", "1000105"),
                ]),
                ..person("10005", Some("fatima.elamrani@zorggroep.example.org"))
            },
            HrRecord {
                first_name: text("Lars"),
                last_name: text("Vermeulen"),
                start_date: date(2020, 1, 1),
                attributes: attributes(&[
                    ("employee_number", "10006"),
                    ("employer", "01"),
                    ("person_id", "1000106"),
                ]),
                ..person("10006", None)
            },
        ]
    );
}

/// Tenant-a's deployment configuration: its own GetConnector on "Actuele medewerkergegevens".
const TENANT_A_FIELDS: &str = r#"
[employee_id]
path = "Medewerker"

[email]
path = "EmailWork"

[first_name]
path = "Voornaam"

[last_name]
join = ["Voorvoegsel", "Achternaam"]

[display_name]
path = "Naam"

[department_code]
path = "OrganisatorischeEenheid"

[department]
path = "OrganisatorischeEenheidOmschrijving"

[location]
path = "Standplaats"

[manager_id]
path = "Leidinggevende"

[job_title]
path = "FunctieOmschrijving"

[employment_type]
path = "TypeContract"

[start_date]
path = "EmploymentStartDate"
formats = ["rfc3339", "%Y-%m-%d"]

[end_date]
path = "EmploymentEndDate"
formats = ["rfc3339", "%Y-%m-%d"]

[status]
path = "Geblokkeerd"
boolean = true
map = { "true" = "inactive", "false" = "active" }

[attributes.employee_number]
path = "Medewerker"
"#;

#[tokio::test]
async fn afas_tenant_with_its_own_get_connector_is_read_through_instance_overrides() {
    let server = MockServer::start().await;
    let bearer = afas_token(&server, "tenant-a").await;
    afas_pages(
        &server,
        "tenant-a",
        "HrSync_Medewerkers",
        "Medewerker",
        &bearer,
    )
    .await;
    afas_org_chart(&server, "tenant-a", &bearer).await;
    let overrides: toml::Table = toml::from_str(TENANT_A_FIELDS).unwrap();
    let afas = source(
        afas_definition().with_fields(&overrides).unwrap(),
        &[
            ("base_url", &server.uri()),
            ("connector", "HrSync_Medewerkers"),
            ("order_by", "Medewerker"),
        ],
        &CLIENT,
    );

    let records = afas.fetch().await.unwrap();

    let delft = department("THD", "Thuiszorg Delft");
    assert_eq!(
        records,
        vec![
            HrRecord {
                first_name: text("Henk"),
                last_name: text("Bakker"),
                display_name: text("Henk Bakker"),
                department: department("BST", "Bestuur"),
                location: text("Rotterdam"),
                job_title: text("Bestuurder"),
                employment_type: text("Vast"),
                start_date: date(2012, 4, 1),
                status: text("active"),
                attributes: attributes(&[("employee_number", "000101")]),
                ..person("000101", Some("henk.bakker@thuiszorg.example.org"))
            },
            HrRecord {
                first_name: text("Noor"),
                last_name: text("Visser"),
                display_name: text("Noor Visser"),
                department: delft.clone(),
                location: text("Delft"),
                manager_id: manager("000101"),
                job_title: text("Teamleider Thuiszorg"),
                employment_type: text("Vast"),
                start_date: date(2016, 10, 1),
                status: text("active"),
                attributes: attributes(&[("employee_number", "000102")]),
                ..person("000102", Some("noor.visser@thuiszorg.example.org"))
            },
            HrRecord {
                first_name: text("Pieter"),
                last_name: text("Mulder"),
                display_name: text("Pieter Mulder"),
                department: delft.clone(),
                location: text("Delft"),
                manager_id: manager("000102"),
                job_title: text("Verzorgende IG"),
                employment_type: text("Tijdelijk"),
                start_date: date(2019, 5, 1),
                end_date: date(2026, 9, 30),
                status: text("inactive"),
                attributes: attributes(&[("employee_number", "000103")]),
                ..person("000103", Some("pieter.mulder@thuiszorg.example.org"))
            },
            HrRecord {
                first_name: text("Inês"),
                last_name: text("Oliveira"),
                display_name: text("Inês Oliveira"),
                department: delft,
                location: text("Rotterdam"),
                manager_id: manager("000102"),
                job_title: text("Verzorgende IG"),
                employment_type: text("Tijdelijk"),
                start_date: date(2027, 2, 1),
                status: text("active"),
                attributes: attributes(&[("employee_number", "000104")]),
                ..person("000104", Some("ines.oliveira@thuiszorg.example.org"))
            },
            HrRecord {
                first_name: text("Daan"),
                last_name: text("van der Smit"),
                display_name: text("Daan van der Smit"),
                start_date: date(2023, 8, 15),
                status: text("active"),
                attributes: attributes(&[("employee_number", "000105")]),
                ..person("000105", None)
            },
        ]
    );
}

#[tokio::test]
async fn afas_get_connector_without_rows_is_an_empty_list() {
    let server = MockServer::start().await;
    let bearer = afas_token(&server, "tenant-b").await;
    for connector in ["Profit_Employees", "Profit_OrganizationChart"] {
        Mock::given(method("GET"))
            .and(path(format!("/ProfitRestServices/connectors/{connector}")))
            .and(header("authorization", bearer.as_str()))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(fixture("afas", "tenant-b/empty.json")),
            )
            .expect(1)
            .mount(&server)
            .await;
    }
    let afas = source(
        definition("afas.toml"),
        &[("base_url", &server.uri())],
        &CLIENT,
    );

    assert_eq!(afas.fetch().await.unwrap(), vec![]);
}

#[tokio::test]
async fn afas_classic_definition_sends_the_afas_token_and_reads_the_same_connector() {
    let server = MockServer::start().await;
    let classic = "AfasToken PHRva2VuPjx2ZXJzaW9uPjE8L3ZlcnNpb24+PC90b2tlbj4=";
    afas_pages(
        &server,
        "tenant-b",
        "Profit_Employees",
        "EmployeeId",
        classic,
    )
    .await;
    afas_org_chart(&server, "tenant-b", classic).await;
    let mut def = definition("afas_classic.toml");
    if let Pagination::Offset { limit, .. } = &mut def.pagination {
        *limit = 2;
    }
    let oauth = afas_definition();
    assert_eq!(
        def.fields, oauth.fields,
        "only the auth differs from afas.toml"
    );
    let afas = source(
        def,
        &[("base_url", &server.uri())],
        &[("token", "PHRva2VuPjx2ZXJzaW9uPjE8L3ZlcnNpb24+PC90b2tlbj4=")],
    );

    let records = afas.fetch().await.unwrap();

    assert_eq!(records.len(), 5, "the three pages, each asked for once");
}
