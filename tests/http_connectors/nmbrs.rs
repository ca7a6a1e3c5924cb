//! The shipped `nmbrs` definition against the Nmbrs REST API: the people from the company's
//! personal info, joined by employee id with the employments, contracts, departments, functions
//! and managers of the same company. Tenant-b uses the definition as shipped; tenant-a's carers
//! have no work mailbox, and its deployment reads the private email instead.

use super::expect::*;
use super::*;

use hrsync::domain::HrRecord;
use wiremock::matchers::{body_string_contains, query_param_is_missing};

const COMPANY_B: &str = "6fa66076-20c4-5def-a771-d5d0a6e533aa";
const COMPANY_A: &str = "cc37c9ec-698b-5463-9f49-31369ff1eb13";
const SUBSCRIPTION_KEY: &str = "5b1e7c3d9a2f4e8b8c6d0a1b2c3d4e5f";
const LOOKUPS: [&str; 5] = [
    "employments",
    "contracts",
    "departments",
    "functions",
    "managers",
];

/// A fixture with Nmbrs' own host in its next-page links replaced by the test server's.
fn nmbrs_fixture(server: &MockServer, file: &str) -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/nmbrs")
        .join(file);
    let text = std::fs::read_to_string(path).unwrap();
    serde_json::from_str(&text.replace("https://api.nmbrsapp.com", &server.uri())).unwrap()
}

const SECRETS: [(&str, &str); 4] = [
    ("client_id", "PartnerApp_hrsync_7f3a"),
    ("client_secret", "nmbrs-client-secret"),
    ("refresh_token", "3F1C8D2E9A7B4C6D-consent"),
    ("subscription_key", SUBSCRIPTION_KEY),
];

/// The refresh-token exchange at the identity service, which must happen once per fetch.
async fn nmbrs_token(server: &MockServer, tenant: &str) -> String {
    let answer = nmbrs_fixture(server, &format!("{tenant}/token.json"));
    Mock::given(method("POST"))
        .and(path("/connect/token"))
        .and(body_string_contains("grant_type=refresh_token"))
        .and(body_string_contains(
            "refresh_token=3F1C8D2E9A7B4C6D-consent",
        ))
        .and(body_string_contains("client_id=PartnerApp_hrsync_7f3a"))
        .and(body_string_contains("client_secret=nmbrs-client-secret"))
        .respond_with(ResponseTemplate::new(200).set_body_json(&answer))
        .expect(1)
        .mount(server)
        .await;
    format!("Bearer {}", answer["access_token"].as_str().unwrap())
}

/// One company: its personal info in `pages` pages of `size`, and each joined resource once
/// per lookup table that reads it (employments and departments feed two tables each).
async fn nmbrs_company(
    server: &MockServer,
    tenant: &str,
    company: &str,
    pages: u32,
    size: &str,
    bearer: &str,
) {
    let employees = format!("/api/companies/{company}/employees");
    for page in 1..=pages {
        let mock = Mock::given(method("GET"))
            .and(path(format!("{employees}/personalinfo")))
            .and(query_param("pageSize", size))
            .and(header("authorization", bearer))
            .and(header("x-subscription-key", SUBSCRIPTION_KEY));
        let mock = if page == 1 {
            mock.and(query_param_is_missing("pageNumber"))
        } else {
            mock.and(query_param("pageNumber", page.to_string()))
        };
        mock.respond_with(ResponseTemplate::new(200).set_body_json(nmbrs_fixture(
            server,
            &format!("{tenant}/personalinfo-{page}.json"),
        )))
        .expect(1)
        .mount(server)
        .await;
    }
    for resource in LOOKUPS {
        let tables = if matches!(resource, "employments" | "departments") {
            2
        } else {
            1
        };
        Mock::given(method("GET"))
            .and(path(format!("{employees}/{resource}")))
            .and(query_param("pageSize", "100"))
            .and(header("authorization", bearer))
            .and(header("x-subscription-key", SUBSCRIPTION_KEY))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(nmbrs_fixture(server, &format!("{tenant}/{resource}.json"))),
            )
            .expect(tables)
            .mount(server)
            .await;
    }
}

/// The shipped definition, asking for personal info in pages of `size` as the fixtures were
/// captured.
fn nmbrs_definition(size: &str) -> Definition {
    let mut def = definition("nmbrs.toml");
    def.request
        .query
        .insert("pageSize".to_string(), size.to_string());
    def
}

#[tokio::test]
async fn nmbrs_company_is_joined_by_employee_id_with_one_token_and_managers_found_by_email() {
    let server = MockServer::start().await;
    let bearer = nmbrs_token(&server, "tenant-b").await;
    nmbrs_company(&server, "tenant-b", COMPANY_B, 2, "3", &bearer).await;
    let nmbrs = source(
        nmbrs_definition("3"),
        &[
            ("base_url", &server.uri()),
            ("identity_url", &server.uri()),
            ("company_id", COMPANY_B),
        ],
        &SECRETS,
    );

    let records = nmbrs.fetch().await.unwrap();
    lifecycle::assert_lifecycle("nmbrs", &records);

    let director = "1e20afbd-dc27-5a96-b03e-9d435649b5bd";
    let nurse = "0235a1e4-0aa9-5d7c-9ed9-f6baab84ea7c";
    let noord = department("2", "Wijkverpleging Noord");
    assert_eq!(
        records,
        vec![
            HrRecord {
                first_name: text("Margriet"),
                last_name: text("de Vries"),
                department: department("1", "Directie"),
                job_title: text("Bestuurder"),
                employment_type: text("Onbepaalde tijd"),
                start_date: date(2015, 9, 1),
                status: text("active"),
                attributes: attributes(&[
                    ("business_email", "margriet.devries@zorggroep.example.org"),
                    ("employee_number", "1"),
                    ("employee_type", "payroll"),
                ]),
                ..person(director, Some("margriet.devries@zorggroep.example.org"))
            },
            HrRecord {
                first_name: text("Zoë"),
                last_name: text("Janssen"),
                department: noord.clone(),
                manager_id: manager(director),
                job_title: text("Wijkverpleegkundige"),
                employment_type: text("Onbepaalde tijd"),
                start_date: date(2017, 2, 1),
                status: text("active"),
                attributes: attributes(&[
                    ("business_email", "zoe.janssen@zorggroep.example.org"),
                    ("employee_number", "2"),
                    ("employee_type", "payroll"),
                ]),
                ..person(nurse, Some("zoe.janssen@zorggroep.example.org"))
            },
            HrRecord {
                first_name: text("Søren"),
                last_name: text("Ångström"),
                department: noord.clone(),
                manager_id: manager(nurse),
                job_title: text("Verpleegkundige"),
                employment_type: text("Onbepaalde tijd"),
                start_date: date(2018, 1, 1),
                end_date: date(2026, 6, 30),
                status: text("inactive"),
                attributes: attributes(&[
                    ("business_email", "soren.angstrom@zorggroep.example.org"),
                    ("employee_number", "4"),
                    ("employee_type", "formerPayroll"),
                ]),
                ..person(
                    "27344911-d6d0-51c9-96ce-0af8b026495c",
                    Some("soren.angstrom@zorggroep.example.org")
                )
            },
            HrRecord {
                first_name: text("Fatima"),
                last_name: text("El Amrani"),
                department: noord,
                manager_id: manager(nurse),
                job_title: text("Verpleegkundige"),
                employment_type: text("Bepaalde tijd"),
                start_date: date(2027, 3, 1),
                status: text("active"),
                attributes: attributes(&[
                    ("business_email", "fatima.elamrani@zorggroep.example.org"),
                    ("employee_number", "5"),
                    ("employee_type", "newHire"),
                ]),
                ..person(
                    "0b7f63a9-28f5-524e-8a48-8b44f8b45878",
                    Some("fatima.elamrani@zorggroep.example.org")
                )
            },
            HrRecord {
                first_name: text("Lars"),
                last_name: text("Vermeulen"),
                start_date: date(2020, 1, 1),
                status: text("active"),
                attributes: attributes(&[("employee_number", "6"), ("employee_type", "payroll")]),
                ..person("e030ff4b-aeaa-55ba-8bf9-bcd730f7247d", None)
            },
        ]
    );
}

#[tokio::test]
async fn nmbrs_company_without_work_mailboxes_reads_the_private_email_through_an_override() {
    let server = MockServer::start().await;
    let bearer = nmbrs_token(&server, "tenant-a").await;
    nmbrs_company(&server, "tenant-a", COMPANY_A, 3, "2", &bearer).await;
    let overrides: toml::Table =
        toml::from_str("[email]\npath = \"info[0].contactInfo.privateEmail\"\n").unwrap();
    let nmbrs = source(
        nmbrs_definition("2").with_fields(&overrides).unwrap(),
        &[
            ("base_url", &server.uri()),
            ("identity_url", &server.uri()),
            ("company_id", COMPANY_A),
        ],
        &SECRETS,
    );

    let records = nmbrs.fetch().await.unwrap();

    let board = "09c9288a-7b3d-552b-bd03-e7b7801d7756";
    let lead = "4ba3694a-c305-5412-b0c6-78a6d88f0677";
    let delft = department("20", "Thuiszorg Delft");
    assert_eq!(
        records,
        vec![
            // Henk's manager is a supervisory board member without employment: no manager.
            HrRecord {
                first_name: text("Henk"),
                last_name: text("Bakker"),
                department: department("10", "Bestuur"),
                job_title: text("Bestuurder"),
                employment_type: text("Onbepaalde tijd"),
                start_date: date(2012, 4, 1),
                status: text("active"),
                attributes: attributes(&[
                    ("business_email", "henk.bakker@thuiszorg.example.org"),
                    ("employee_number", "101"),
                    ("employee_type", "payroll"),
                ]),
                ..person(board, Some("henk.bakker@mail.example.org"))
            },
            HrRecord {
                first_name: text("Noor"),
                last_name: text("Visser"),
                department: delft.clone(),
                manager_id: manager(board),
                job_title: text("Teamleider Thuiszorg"),
                employment_type: text("Onbepaalde tijd"),
                start_date: date(2016, 10, 1),
                status: text("active"),
                attributes: attributes(&[
                    ("business_email", "noor.visser@thuiszorg.example.org"),
                    ("employee_number", "102"),
                    ("employee_type", "payroll"),
                ]),
                ..person(lead, Some("noor.visser@mail.example.org"))
            },
            HrRecord {
                first_name: text("Pieter"),
                last_name: text("Mulder"),
                department: delft.clone(),
                manager_id: manager(lead),
                job_title: text("Verzorgende IG"),
                employment_type: text("Bepaalde tijd"),
                start_date: date(2019, 5, 1),
                end_date: date(2026, 9, 30),
                status: text("inactive"),
                attributes: attributes(&[
                    ("employee_number", "103"),
                    ("employee_type", "formerPayroll"),
                ]),
                ..person(
                    "81370086-46e1-5931-ba9e-0f231d2565b3",
                    Some("pieter.mulder@mail.example.org")
                )
            },
            HrRecord {
                first_name: text("Inês"),
                last_name: text("Oliveira"),
                department: delft,
                manager_id: manager(lead),
                job_title: text("Verzorgende IG"),
                employment_type: text("Bepaalde tijd"),
                start_date: date(2027, 2, 1),
                status: text("active"),
                attributes: attributes(
                    &[("employee_number", "104"), ("employee_type", "newHire"),]
                ),
                ..person(
                    "b2d41f4f-1453-51e5-9ea9-e2e8ddfd4c98",
                    Some("ines.oliveira@mail.example.org")
                )
            },
            HrRecord {
                first_name: text("Daan"),
                last_name: text("van der Smit"),
                start_date: date(2023, 8, 15),
                status: text("active"),
                attributes: attributes(&[("employee_number", "105"), ("employee_type", "payroll")]),
                ..person("06e2d565-9c94-550a-8702-ba0ffb1350ef", None)
            },
        ]
    );
}

#[tokio::test]
async fn nmbrs_company_without_employees_is_an_empty_list() {
    let server = MockServer::start().await;
    let bearer = nmbrs_token(&server, "tenant-b").await;
    let employees = format!("/api/companies/{COMPANY_B}/employees");
    for resource in ["personalinfo"].into_iter().chain(LOOKUPS) {
        Mock::given(method("GET"))
            .and(path(format!("{employees}/{resource}")))
            .and(header("authorization", bearer.as_str()))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(fixture("nmbrs", "tenant-b/empty.json")),
            )
            .mount(&server)
            .await;
    }
    let nmbrs = source(
        definition("nmbrs.toml"),
        &[
            ("base_url", &server.uri()),
            ("identity_url", &server.uri()),
            ("company_id", COMPANY_B),
        ],
        &SECRETS,
    );

    assert_eq!(nmbrs.fetch().await.unwrap(), vec![]);
}
