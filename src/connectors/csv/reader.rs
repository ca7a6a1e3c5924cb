//! The reader: a file's rows into records, all or nothing. It strips a byte order mark,
//! detects the delimiter, runs the quoting check, reads the header line, and turns each data
//! row into an [`HrRecord`] (dates in the configured formats, a department from its code and
//! name, ids within the size an index allows), naming the line and column of the first
//! problem.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;

use super::error::CsvError;
use super::layout::{Field, Header, Layout, Target};
use super::quoting::check_quoting;
use super::settings::CsvSettings;
use crate::domain::{
    Department, Email, EmployeeId, HrRecord, MAX_KEY_BYTES, TeamKey, attribute, non_empty,
};

/// Reads and parses the whole file. All or nothing: any malformed row fails the read.
pub fn read_file(settings: &CsvSettings) -> Result<Vec<HrRecord>, CsvError> {
    let file = settings.path.display().to_string();
    let bytes = std::fs::read(&settings.path).map_err(|source| CsvError::Read {
        file: file.clone(),
        source,
    })?;
    parse(&file, &bytes, settings)
}

/// Parses bytes; `source` is the file name used in errors.
pub fn parse(
    source: &str,
    bytes: &[u8],
    settings: &CsvSettings,
) -> Result<Vec<HrRecord>, CsvError> {
    let file = source.to_string();
    let problems = settings.problems();
    if !problems.is_empty() {
        return Err(CsvError::Settings { file, problems });
    }
    let layout = Layout::from_settings(settings, &mut Vec::new());

    let bytes = bytes.strip_prefix(UTF8_BOM).unwrap_or(bytes);
    let delimiter = settings
        .delimiter
        .unwrap_or_else(|| detect_delimiter(bytes));
    check_quoting(&file, bytes, delimiter as u8)?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter as u8)
        .from_reader(bytes);

    let lines = LineIndex::new(bytes);
    let mut header: Option<Header> = None;
    let mut records = Vec::new();
    let mut row = csv::ByteRecord::new();
    loop {
        match reader.read_byte_record(&mut row) {
            Ok(true) => {}
            Ok(false) => break,
            Err(error) => return Err(CsvError::malformed(&file, error)),
        }
        let line = row
            .position()
            .map_or(0, |position| lines.line_at(position.byte()));
        let fields = decode_fields(&file, line, &row, header.as_ref())?;
        if fields.iter().all(|field| field.trim().is_empty()) {
            continue;
        }
        match &header {
            None => header = Some(Header::read(&file, line, &fields, &layout)?),
            Some(header) => records.push(header.record(&file, line, &fields, settings)?),
        }
    }
    if header.is_none() {
        return Err(CsvError::Empty { file });
    }
    Ok(records)
}

/// The byte order mark some spreadsheets write at the start of a UTF-8 export.
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

impl Header {
    /// Turns one data row into a record.
    fn record(
        &self,
        file: &str,
        line: u64,
        fields: &[&str],
        settings: &CsvSettings,
    ) -> Result<HrRecord, CsvError> {
        if fields.len() != self.targets.len() {
            return Err(CsvError::FieldCount {
                file: file.to_string(),
                line,
                found: fields.len(),
                expected: self.targets.len(),
                header_line: self.line,
            });
        }
        let mut row = Row::default();
        for ((target, value), name) in self.targets.iter().zip(fields).zip(&self.names) {
            match target {
                Target::Ignored => {}
                Target::Attribute(attribute_name) => {
                    if let Some(value) = attribute(value) {
                        row.attributes.insert(attribute_name.clone(), value);
                    }
                }
                Target::Field(field) => {
                    row.values.insert(*field, (*value, name.as_str()));
                }
            }
        }
        row.into_record(file, line, settings)
    }
}

/// One data row's values by field, each with its column name, before parsing.
#[derive(Default)]
struct Row<'a> {
    values: HashMap<Field, (&'a str, &'a str)>,
    attributes: BTreeMap<String, String>,
}

impl Row<'_> {
    fn text(&self, field: Field) -> Option<String> {
        self.values
            .get(&field)
            .and_then(|(value, _)| non_empty(value))
    }

    /// The raw value and column name of a field; a field without a column reads as empty.
    fn raw(&self, field: Field) -> (&str, &str) {
        self.values
            .get(&field)
            .copied()
            .unwrap_or(("", field.name()))
    }

    fn into_record(
        self,
        file: &str,
        line: u64,
        settings: &CsvSettings,
    ) -> Result<HrRecord, CsvError> {
        let (id_value, id_column) = self.raw(Field::EmployeeId);
        let employee_id =
            EmployeeId::parse(id_value).ok_or_else(|| CsvError::MissingEmployeeId {
                file: file.to_string(),
                line,
                column: id_column.to_string(),
            })?;
        // Keys the databases index have a size limit: say where the absurd one is.
        for field in [Field::EmployeeId, Field::ManagerId, Field::DepartmentCode] {
            let (value, column) = self.raw(field);
            if value.len() > MAX_KEY_BYTES {
                return Err(CsvError::TooLong {
                    file: file.to_string(),
                    line,
                    column: column.to_string(),
                    bytes: value.len(),
                });
            }
        }
        let mut record = HrRecord::new(employee_id, Email::parse(self.raw(Field::Email).0));
        record.first_name = self.text(Field::FirstName);
        record.last_name = self.text(Field::LastName);
        record.display_name = self.text(Field::DisplayName);
        record.department = department(
            self.text(Field::DepartmentCode),
            self.text(Field::Department),
        );
        record.location = self.text(Field::Location);
        record.manager_id = EmployeeId::parse(self.raw(Field::ManagerId).0);
        record.job_title = self.text(Field::JobTitle);
        record.employment_type = self.text(Field::EmploymentType);
        record.start_date = self.date(Field::StartDate, file, line, settings)?;
        record.end_date = self.date(Field::EndDate, file, line, settings)?;
        record.status = self.text(Field::Status);
        record.attributes = self.attributes;
        Ok(record)
    }

    fn date(
        &self,
        field: Field,
        file: &str,
        line: u64,
        settings: &CsvSettings,
    ) -> Result<Option<NaiveDate>, CsvError> {
        let Some((value, column)) = self.values.get(&field) else {
            return Ok(None);
        };
        let value = value.trim();
        if value.is_empty() {
            return Ok(None);
        }
        settings
            .date_formats
            .iter()
            .find_map(|format| NaiveDate::parse_from_str(value, format).ok())
            .map(Some)
            .ok_or_else(|| CsvError::BadDate {
                file: file.to_string(),
                line,
                column: column.to_string(),
                value: value.to_string(),
                formats: settings.date_formats.clone(),
            })
    }
}

/// A department from its code and name; when only one of them is given it serves as both.
fn department(code: Option<String>, name: Option<String>) -> Option<Department> {
    let (key, name) = match (code, name) {
        (Some(code), Some(name)) => (code, name),
        (Some(code), None) => (code.clone(), code),
        (None, Some(name)) => (name.clone(), name),
        (None, None) => return None,
    };
    Some(Department {
        key: TeamKey::parse(&key)?,
        name,
    })
}

/// Finds the line a record starts on.
///
/// The csv reader's own line count places a record after a blank line on the blank line, so
/// lines are counted here from the record's byte offset instead, skipping the line breaks that
/// precede it.
struct LineIndex<'a> {
    bytes: &'a [u8],
    breaks: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    fn new(bytes: &'a [u8]) -> LineIndex<'a> {
        let breaks = bytes
            .iter()
            .enumerate()
            .filter_map(|(offset, &byte)| {
                let lone_cr = byte == b'\r' && bytes.get(offset + 1) != Some(&b'\n');
                (byte == b'\n' || lone_cr).then_some(offset)
            })
            .collect();
        LineIndex { bytes, breaks }
    }

    fn line_at(&self, byte: u64) -> u64 {
        let mut start = usize::try_from(byte)
            .unwrap_or(usize::MAX)
            .min(self.bytes.len());
        while matches!(self.bytes.get(start), Some(b'\r' | b'\n')) {
            start += 1;
        }
        let before = self.breaks.partition_point(|&offset| offset < start);
        u64::try_from(before).map_or(u64::MAX, |before| before + 1)
    }
}

/// Decodes a row's fields as UTF-8, naming the column of the first field that is not.
fn decode_fields<'r>(
    file: &str,
    line: u64,
    row: &'r csv::ByteRecord,
    header: Option<&Header>,
) -> Result<Vec<&'r str>, CsvError> {
    row.iter()
        .enumerate()
        .map(|(index, bytes)| {
            std::str::from_utf8(bytes).map_err(|_| {
                let column = header
                    .and_then(|header| header.names.get(index))
                    .map_or_else(|| (index + 1).to_string(), |name| format!("`{name}`"));
                CsvError::InvalidUtf8 {
                    file: file.to_string(),
                    line,
                    column,
                }
            })
        })
        .collect()
}

/// Picks `;` when the first non-blank line has more semicolons than commas outside quotes.
fn detect_delimiter(bytes: &[u8]) -> char {
    let first_line = bytes
        .split(|&byte| byte == b'\n')
        .find(|line| line.iter().any(|byte| !byte.is_ascii_whitespace()))
        .unwrap_or_default();
    let (mut commas, mut semicolons, mut quoted) = (0usize, 0usize, false);
    for &byte in first_line {
        match byte {
            b'"' => quoted = !quoted,
            b',' if !quoted => commas += 1,
            b';' if !quoted => semicolons += 1,
            _ => {}
        }
    }
    if semicolons > commas { ';' } else { ',' }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::csv::test_support::{dutch_settings, error_text, settings};
    use crate::domain::EmailError;

    #[test]
    fn default_layout_with_commas_is_read_into_every_field() {
        let text = "employee_id,email,first_name,last_name,display_name,department_code,department,location,manager_id,job_title,employment_type,start_date,end_date,status\n\
                    E1,jan@example.org,Jan,de Vries,Jan de Vries,WVN,Wijkverpleging Noord,Utrecht,E0,Verpleegkundige,vast,2020-01-15,2027-12-31,Actief\n";

        let records = parse("hr.csv", text.as_bytes(), &settings()).unwrap();

        assert_eq!(records.len(), 1);
        let record = &records[0];
        assert_eq!(record.employee_id.as_str(), "E1");
        assert_eq!(record.email.as_ref().unwrap().as_str(), "jan@example.org");
        assert_eq!(record.first_name.as_deref(), Some("Jan"));
        assert_eq!(record.last_name.as_deref(), Some("de Vries"));
        assert_eq!(record.display_name.as_deref(), Some("Jan de Vries"));
        let department = record.department.as_ref().unwrap();
        assert_eq!(department.key.as_str(), "WVN");
        assert_eq!(department.name, "Wijkverpleging Noord");
        assert_eq!(record.location.as_deref(), Some("Utrecht"));
        assert_eq!(record.manager_id.as_ref().unwrap().as_str(), "E0");
        assert_eq!(record.job_title.as_deref(), Some("Verpleegkundige"));
        assert_eq!(record.employment_type.as_deref(), Some("vast"));
        assert_eq!(record.start_date, NaiveDate::from_ymd_opt(2020, 1, 15));
        assert_eq!(record.end_date, NaiveDate::from_ymd_opt(2027, 12, 31));
        assert_eq!(record.status.as_deref(), Some("Actief"));
        assert!(record.attributes.is_empty());
    }

    #[test]
    fn dutch_headers_with_semicolons_and_bom_are_read() {
        let text = "\u{feff}Personeelsnummer; E-mail ;voornaam;achternaam;afdelingscode;afdeling;leidinggevende;functie;datum_in_dienst;datum_uit_dienst;big_nummer\r\n\
                    ZH001;zoe@zonnehof.example;Zoë;Çelik;WVN;Wijkverpleging Noord;;Verpleegkundige;01-02-2017;;12345678901\r\n";

        let records = parse("zonnehof.csv", text.as_bytes(), &dutch_settings()).unwrap();

        let record = &records[0];
        assert_eq!(record.employee_id.as_str(), "ZH001");
        assert_eq!(record.first_name.as_deref(), Some("Zoë"));
        assert_eq!(record.last_name.as_deref(), Some("Çelik"));
        assert_eq!(record.start_date, NaiveDate::from_ymd_opt(2017, 2, 1));
        assert_eq!(record.end_date, None);
        assert_eq!(record.manager_id, None);
        assert_eq!(record.attributes["big_number"], "12345678901");
    }

    #[test]
    fn semicolon_delimiter_is_detected_from_the_header_line() {
        let text = "employee_id;email;department\nE1;a@example.org;Zorg, Noord\n";

        let records = parse("hr.csv", text.as_bytes(), &settings()).unwrap();

        assert_eq!(records[0].department.as_ref().unwrap().name, "Zorg, Noord");
    }

    #[test]
    fn line_breaks_tabs_nul_and_bidi_marks_in_names_become_one_line() {
        let text = "employee_id,email,first_name,last_name,job_title,notes\n\
                    \"E\u{0}1\",a@example.org,\"Ann\r\nMarie\",\"\u{202E}Smit\t\",\"Zorg\nnacht\",\"a\nb\u{0}\"\n";
        let mut settings = settings();
        settings.attributes = vec!["notes".to_string()];

        let records = parse("hr.csv", text.as_bytes(), &settings).unwrap();

        let r = &records[0];
        assert_eq!(r.employee_id.as_str(), "E1");
        assert_eq!(r.first_name.as_deref(), Some("Ann Marie"));
        assert_eq!(r.last_name.as_deref(), Some("Smit"));
        assert_eq!(r.job_title.as_deref(), Some("Zorg nacht"));
        assert_eq!(r.attributes["notes"], "a\nb");
    }

    #[test]
    fn an_id_too_long_for_an_index_names_its_line_and_column() {
        let text = format!(
            "employee_id,email,manager_id\nE1,a@example.org,\nE2,b@example.org,{}\n",
            "M".repeat(2_000)
        );

        let error = error_text(parse("hr.csv", text.as_bytes(), &settings()));

        assert!(
            error.starts_with("hr.csv line 3, column `manager_id`: the value is 2000 bytes long"),
            "{error}"
        );
    }

    #[test]
    fn blank_lines_and_rows_of_only_delimiters_are_skipped() {
        let text = "\nemployee_id;email\n\nE1;a@example.org\n;\n   \nE2;b@example.org\n\n";

        let records = parse("hr.csv", text.as_bytes(), &settings()).unwrap();

        let ids: Vec<&str> = records.iter().map(|r| r.employee_id.as_str()).collect();
        assert_eq!(ids, ["E1", "E2"]);
    }

    #[test]
    fn header_only_file_gives_no_records() {
        let records = parse("hr.csv", b"employee_id,email\n", &settings()).unwrap();

        assert!(records.is_empty());
    }

    #[test]
    fn empty_file_is_an_error_naming_the_file() {
        let message = error_text(parse("hr.csv", b"\xEF\xBB\xBF\n  \n", &settings()));

        assert_eq!(message, "hr.csv is empty: expected a header line");
    }

    #[test]
    fn values_are_trimmed_and_empty_values_are_none() {
        let text = "employee_id,email,first_name,location,manager_id,status\n  E1 , a@example.org ,  Anne-Marie ,  , ,  inactief \n";

        let record = &parse("hr.csv", text.as_bytes(), &settings()).unwrap()[0];

        assert_eq!(record.employee_id.as_str(), "E1");
        assert_eq!(record.email.as_ref().unwrap().as_str(), "a@example.org");
        assert_eq!(record.first_name.as_deref(), Some("Anne-Marie"));
        assert_eq!(record.location, None);
        assert_eq!(record.manager_id, None);
        assert_eq!(record.status.as_deref(), Some("inactief"));
    }

    #[test]
    fn names_and_status_keep_their_letter_case() {
        let text =
            "employee_id,email,first_name,last_name,status\nE1,A@Example.org,ANNE,van DAM,Active\n";

        let record = &parse("hr.csv", text.as_bytes(), &settings()).unwrap()[0];

        assert_eq!(record.first_name.as_deref(), Some("ANNE"));
        assert_eq!(record.last_name.as_deref(), Some("van DAM"));
        assert_eq!(record.status.as_deref(), Some("Active"));
        assert_eq!(record.email.as_ref().unwrap().as_str(), "A@Example.org");
    }

    #[test]
    fn empty_or_invalid_email_is_kept_in_the_record_not_an_error() {
        let text = "employee_id,email\nE1,\nE2,not-an-address\n";

        let records = parse("hr.csv", text.as_bytes(), &settings()).unwrap();

        assert_eq!(records[0].email, Err(EmailError::Missing));
        assert_eq!(
            records[1].email,
            Err(EmailError::Invalid("not-an-address".to_string()))
        );
    }

    #[test]
    fn department_code_alone_serves_as_key_and_name() {
        let text = "employee_id,email,department_code,department\nE1,a@example.org,BSO,\nE2,b@example.org,,Keuken\nE3,c@example.org,,\n";

        let records = parse("hr.csv", text.as_bytes(), &settings()).unwrap();

        let first = records[0].department.as_ref().unwrap();
        assert_eq!((first.key.as_str(), first.name.as_str()), ("BSO", "BSO"));
        let second = records[1].department.as_ref().unwrap();
        assert_eq!(
            (second.key.as_str(), second.name.as_str()),
            ("Keuken", "Keuken")
        );
        assert_eq!(records[2].department, None);
    }

    #[test]
    fn row_with_wrong_number_of_fields_names_its_line() {
        let text = "employee_id,email,first_name\nE1,a@example.org,An\n\nE2,b@example.org\n";

        let message = error_text(parse("hr.csv", text.as_bytes(), &settings()));

        assert_eq!(
            message,
            "hr.csv line 4: the row has 2 fields where the header on line 1 has 3"
        );
    }

    #[test]
    fn line_numbers_count_crlf_blank_lines_and_quoted_line_breaks() {
        let text = "employee_id,email,job_title\r\n\r\nE1,a@example.org,\"twee\r\nregels\"\r\n\r\n\r\nE2,b@example.org\r\n";

        let message = error_text(parse("hr.csv", text.as_bytes(), &settings()));

        assert_eq!(
            message,
            "hr.csv line 7: the row has 2 fields where the header on line 1 has 3"
        );
    }

    #[test]
    fn row_without_employee_id_names_file_line_and_column() {
        let mut settings = settings();
        settings
            .columns
            .insert("employee_id".to_string(), "personeelsnummer".to_string());
        let text = "personeelsnummer;email\nZH1;a@example.org\n  ;b@example.org\n";

        let message = error_text(parse("zonnehof.csv", text.as_bytes(), &settings));

        assert_eq!(
            message,
            "zonnehof.csv line 3, column `personeelsnummer`: the employee id is empty; every row needs one"
        );
    }

    #[test]
    fn row_with_bad_date_names_file_line_and_column() {
        let mut settings = settings();
        settings.date_formats = vec!["%Y-%m-%d".to_string(), "%d-%m-%Y".to_string()];
        let text = "employee_id,email,start_date\nE1,a@example.org,2026-02-28\nE2,b@example.org,31-02-2026\n";

        let message = error_text(parse("config/examples/x.csv", text.as_bytes(), &settings));

        assert_eq!(
            message,
            "config/examples/x.csv line 3, column `start_date`: `31-02-2026` is not a date in any of the formats %Y-%m-%d, %d-%m-%Y"
        );
    }

    #[test]
    fn dates_are_tried_in_every_format_in_order() {
        let text = "employee_id,email,start_date,end_date\nE1,a@example.org,2026-03-01,01-04-2028\nE2,b@example.org,15/06/2019,\n";

        let records = parse("hr.csv", text.as_bytes(), &settings()).unwrap();

        assert_eq!(records[0].start_date, NaiveDate::from_ymd_opt(2026, 3, 1));
        assert_eq!(records[0].end_date, NaiveDate::from_ymd_opt(2028, 4, 1));
        assert_eq!(records[1].start_date, NaiveDate::from_ymd_opt(2019, 6, 15));
        assert_eq!(records[1].end_date, None);
    }

    #[test]
    fn invalid_utf8_names_file_line_and_column() {
        let text = b"employee_id,email,last_name\nE1,a@example.org,G\xf6ksel\n";

        let message = error_text(parse("hr.csv", text, &settings()));

        assert_eq!(
            message,
            "hr.csv line 2, column `last_name`: the text is not valid UTF-8; save the export as UTF-8"
        );
    }

    #[test]
    fn read_file_names_a_missing_file() {
        let settings = CsvSettings::new("/nonexistent/hr-export.csv");

        let message = read_file(&settings).unwrap_err().to_string();

        assert!(
            message.starts_with("cannot read /nonexistent/hr-export.csv: "),
            "{message}"
        );
    }

    #[test]
    fn read_file_reads_the_file_at_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hr.csv");
        std::fs::write(&path, "employee_id,email\nE1,a@example.org\n").unwrap();

        let records = read_file(&CsvSettings::new(&path)).unwrap();

        assert_eq!(records.len(), 1);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]

        #[test]
        fn any_bytes_give_records_or_an_error_never_a_panic(
            body in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::strategy::Just(b','),
                    proptest::strategy::Just(b';'),
                    proptest::strategy::Just(b'"'),
                    proptest::strategy::Just(b'\n'),
                    proptest::strategy::Just(b'\r'),
                    proptest::num::u8::ANY,
                ],
                0..200,
            )
        ) {
            let mut bytes = b"employee_id,email,start_date\n".to_vec();
            bytes.extend(body);

            if let Ok(records) = parse("hr.csv", &bytes, &settings()) {
                for record in records {
                    proptest::prop_assert_eq!(record.clone().normalised(), record);
                }
            }
        }
    }
}
