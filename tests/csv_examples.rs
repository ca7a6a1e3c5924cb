//! The bundled example exports in `config/examples/` read through the `csv` source kind, with
//! the column mapping that `config/hrsync.toml` uses for them.

// A test stops at the first thing that is not as expected.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::NaiveDate;
use hrsync::connectors::csv::{CsvSettings, read_file};
use hrsync::domain::{EmailError, HrRecord};

fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("config/examples")
        .join(name)
}

fn zonnehof_settings() -> CsvSettings {
    let columns: BTreeMap<String, String> = [
        ("employee_id", "personeelsnummer"),
        ("email", "e-mail"),
        ("first_name", "voornaam"),
        ("last_name", "achternaam"),
        ("department_code", "afdelingscode"),
        ("department", "afdeling"),
        ("location", "locatie"),
        ("manager_id", "leidinggevende"),
        ("job_title", "functie"),
        ("employment_type", "dienstverband"),
        ("start_date", "datum_in_dienst"),
        ("end_date", "datum_uit_dienst"),
        ("status", "status"),
        ("attributes.big_number", "big_nummer"),
    ]
    .into_iter()
    .map(|(field, header)| (field.to_string(), header.to_string()))
    .collect();
    CsvSettings {
        path: example("zonnehof-export.csv"),
        delimiter: Some(';'),
        date_formats: vec!["%d-%m-%Y".to_string()],
        columns,
        attributes: Vec::new(),
        ignore_columns: Vec::new(),
    }
}

fn zonnehof() -> Vec<HrRecord> {
    read_file(&zonnehof_settings()).expect("the Zonnehof example reads")
}

fn dekring() -> Vec<HrRecord> {
    read_file(&CsvSettings::new(example("dekring-export.csv"))).expect("the De Kring example reads")
}

fn person<'a>(records: &'a [HrRecord], id: &str) -> &'a HrRecord {
    records
        .iter()
        .find(|record| record.employee_id.as_str() == id)
        .unwrap_or_else(|| panic!("{id} is in the example"))
}

fn date(year: i32, month: u32, day: u32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(year, month, day)
}

#[test]
fn zonnehof_mapping_has_no_problems() {
    assert_eq!(zonnehof_settings().problems(), []);
}

#[test]
fn zonnehof_export_has_thirty_people_in_five_departments() {
    let records = zonnehof();

    assert_eq!(records.len(), 30);
    let departments: BTreeMap<&str, &str> = records
        .iter()
        .filter_map(|record| record.department.as_ref())
        .map(|department| (department.key.as_str(), department.name.as_str()))
        .collect();
    assert_eq!(
        departments.into_iter().collect::<Vec<_>>(),
        [
            ("DIR", "Directie"),
            ("ICT", "ICT"),
            ("PLN", "Planning"),
            ("WVN", "Wijkverpleging Noord"),
            ("WVZ", "Wijkverpleging Zuid"),
        ]
    );
}

#[test]
fn zonnehof_first_header_behind_the_bom_is_read_as_the_employee_id() {
    let records = zonnehof();

    assert_eq!(records[0].employee_id.as_str(), "ZH001");
    assert!(
        records
            .iter()
            .all(|record| record.employee_id.as_str().starts_with("ZH"))
    );
}

#[test]
fn zonnehof_manager_chain_runs_from_the_director_to_the_staff() {
    let records = zonnehof();

    let director = person(&records, "ZH001");
    assert_eq!(director.manager_id, None);
    assert_eq!(director.job_title.as_deref(), Some("Directeur-bestuurder"));
    for head in ["ZH002", "ZH003", "ZH004", "ZH005"] {
        assert_eq!(
            person(&records, head).manager_id.as_ref().unwrap().as_str(),
            "ZH001"
        );
    }
    let nurse = person(&records, "ZH008");
    assert_eq!(nurse.manager_id.as_ref().unwrap().as_str(), "ZH002");
    let without_manager: Vec<&str> = records
        .iter()
        .filter(|record| record.manager_id.is_none())
        .map(|record| record.employee_id.as_str())
        .collect();
    assert_eq!(without_manager, ["ZH001"]);
}

#[test]
fn zonnehof_person_without_email_keeps_a_missing_email() {
    let records = zonnehof();

    let without_email: Vec<&str> = records
        .iter()
        .filter(|record| record.email.is_err())
        .map(|record| record.employee_id.as_str())
        .collect();
    assert_eq!(without_email, ["ZH025"]);
    assert_eq!(person(&records, "ZH025").email, Err(EmailError::Missing));
}

#[test]
fn zonnehof_non_ascii_names_are_intact() {
    let records = zonnehof();

    let names: Vec<(&str, &str)> = ["ZH002", "ZH003", "ZH004", "ZH005", "ZH008", "ZH015"]
        .into_iter()
        .map(|id| {
            let record = person(&records, id);
            (
                record.first_name.as_deref().unwrap(),
                record.last_name.as_deref().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            ("Zoë", "Janssen"),
            ("Mehmet", "Çelik"),
            ("Søren", "Lindqvist"),
            ("Agnieszka", "Dąbrowska"),
            ("Linnea", "Ångström"),
            ("Isabel", "Ñúñez"),
        ]
    );
    assert_eq!(
        person(&records, "ZH029").last_name.as_deref(),
        Some("Öztürk")
    );
}

#[test]
fn zonnehof_nurses_have_big_numbers_except_one() {
    let records = zonnehof();

    let nurses: Vec<&HrRecord> = records
        .iter()
        .filter(|record| {
            matches!(
                record.job_title.as_deref(),
                Some("Wijkverpleegkundige" | "Verpleegkundige")
            )
        })
        .collect();
    assert_eq!(nurses.len(), 11);
    let without_big: Vec<&str> = nurses
        .iter()
        .filter(|record| !record.attributes.contains_key("big_number"))
        .map(|record| record.employee_id.as_str())
        .collect();
    assert_eq!(without_big, ["ZH012"]);
    for nurse in nurses
        .iter()
        .filter(|record| record.employee_id.as_str() != "ZH012")
    {
        let big = &nurse.attributes["big_number"];
        assert!(
            big.len() == 11 && big.chars().all(|c| c.is_ascii_digit()),
            "{big}"
        );
    }
    let others_with_big = records
        .iter()
        .filter(|record| !nurses.contains(record) && !record.attributes.is_empty())
        .count();
    assert_eq!(others_with_big, 0);
}

#[test]
fn zonnehof_dates_mark_the_leavers_and_the_future_starter() {
    let records = zonnehof();
    let today = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();

    let later_leaver = person(&records, "ZH015");
    assert_eq!(later_leaver.end_date, date(2028, 3, 31));
    assert_eq!(later_leaver.status.as_deref(), Some("actief"));
    let starter = person(&records, "ZH020");
    assert_eq!(starter.start_date, date(2028, 4, 1));
    let earlier_leaver = person(&records, "ZH019");
    assert_eq!(earlier_leaver.end_date, date(2026, 6, 30));
    assert_eq!(earlier_leaver.status.as_deref(), Some("inactief"));

    let with_end_date: Vec<&str> = records
        .iter()
        .filter(|record| record.end_date.is_some())
        .map(|record| record.employee_id.as_str())
        .collect();
    assert_eq!(with_end_date, ["ZH015", "ZH019"]);
    let starting_later: Vec<&str> = records
        .iter()
        .filter(|record| record.start_date.unwrap() > today)
        .map(|record| record.employee_id.as_str())
        .collect();
    assert_eq!(starting_later, ["ZH020"]);
    assert_eq!(person(&records, "ZH001").start_date, date(2015, 9, 1));
}

#[test]
fn dekring_export_in_the_default_layout_is_read() {
    let records = dekring();

    assert_eq!(records.len(), 4);
    let head = person(&records, "DK01");
    assert_eq!(
        head.email.as_ref().unwrap().as_str(),
        "marloes.kuipers@dekring.example"
    );
    assert_eq!(head.start_date, date(2019, 8, 1));
    assert_eq!(head.status.as_deref(), Some("active"));
    let after_school = person(&records, "DK03").department.as_ref().unwrap();
    assert_eq!(
        (after_school.key.as_str(), after_school.name.as_str()),
        ("BSO", "BSO")
    );
    assert_eq!(
        person(&records, "DK04").display_name.as_deref(),
        Some("Dijkstra, Saar")
    );
}

#[test]
fn one_person_is_in_both_organisations_under_differently_cased_email() {
    let zonnehof = zonnehof();
    let dekring = dekring();

    let in_zonnehof = person(&zonnehof, "ZH014").email.as_ref().unwrap();
    let in_dekring = person(&dekring, "DK02").email.as_ref().unwrap();

    assert_eq!(in_zonnehof.as_str(), "Anouk.Visser@Mail.example");
    assert_eq!(in_dekring.as_str(), "anouk.visser@mail.example");
    assert_eq!(in_zonnehof, in_dekring);
    let shared: Vec<&str> = zonnehof
        .iter()
        .filter_map(|record| record.email.as_ref().ok())
        .filter(|email| {
            dekring
                .iter()
                .any(|other| other.email.as_ref().ok() == Some(*email))
        })
        .map(|email| email.key())
        .collect();
    assert_eq!(shared, ["anouk.visser@mail.example"]);
}

#[test]
fn zonnehof_export_reads_the_same_with_the_delimiter_detected() {
    let mut settings = zonnehof_settings();
    settings.delimiter = None;

    let records = read_file(&settings).expect("the Zonnehof example reads");

    assert_eq!(records, zonnehof());
}
