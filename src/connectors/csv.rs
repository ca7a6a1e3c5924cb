//! The `csv` source kind: reads an HR export file into [`HrRecord`]s.
//!
//! Many HR systems, and many small organisations without one, can only hand over a spreadsheet
//! export. This module reads such a file, all or nothing: a file with one malformed row yields
//! an error that names the file, the line and the column, and no records at all, because a
//! partial feed would make everyone after the bad row look like a leaver.
//!
//! The layout: a header line, then one person per line. Headers are matched without regard to
//! letter case or surrounding spaces. The default headers are the record's field names
//! (`employee_id`, `email`, `first_name`, `last_name`, `display_name`, `department_code`,
//! `department`, `location`, `manager_id`, `job_title`, `employment_type`, `start_date`,
//! `end_date`, `status`); [`CsvSettings::columns`] maps a field to another header, and
//! `columns."attributes.<name>"` maps a header to the attribute `<name>`. Headers listed under
//! [`CsvSettings::attributes`] become attributes named after the lower-cased header, and headers
//! listed under [`CsvSettings::ignore_columns`] are skipped. Any other header is an error, so a
//! column added to the export is noticed instead of silently dropped.
//!
//! The file is UTF-8, with or without a byte order mark; the delimiter is `,` or `;`, taken
//! from the settings or detected from the header line. Values are trimmed; empty values are
//! `None`. A bad email is kept as the record's `Err(EmailError)` so the planner can quarantine
//! that one person; a missing employee id or an unreadable date fails the whole file.

use std::collections::{BTreeMap, HashMap};
use std::fmt::{self, Write as _};
use std::path::PathBuf;

use chrono::NaiveDate;
use chrono::format::{Item, StrftimeItems};

use crate::domain::{
    Department, Email, EmployeeId, HrRecord, MAX_KEY_BYTES, TeamKey, attribute, non_empty,
};

/// Settings of one `csv` connector: where the file is and how its columns map to record fields.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsvSettings {
    /// The export file. Relative paths are resolved by the caller against the working directory.
    pub path: PathBuf,
    /// `,` or `;`; `None` detects it from the header line.
    #[serde(default)]
    pub delimiter: Option<char>,
    /// chrono strftime formats, tried in order for every date.
    #[serde(default = "default_date_formats")]
    pub date_formats: Vec<String>,
    /// Record field name -> header in the file; `attributes.<name>` -> header maps an attribute.
    #[serde(default)]
    pub columns: BTreeMap<String, String>,
    /// Further headers kept as attributes, named after the header in lower case.
    #[serde(default)]
    pub attributes: Vec<String>,
    /// Headers to skip.
    #[serde(default)]
    pub ignore_columns: Vec<String>,
}

fn default_date_formats() -> Vec<String> {
    ["%Y-%m-%d", "%d-%m-%Y", "%d/%m/%Y"]
        .into_iter()
        .map(String::from)
        .collect()
}

impl CsvSettings {
    /// Settings for a file in the documented default layout, with the delimiter detected.
    pub fn new(path: impl Into<PathBuf>) -> CsvSettings {
        CsvSettings {
            path: path.into(),
            delimiter: None,
            date_formats: default_date_formats(),
            columns: BTreeMap::new(),
            attributes: Vec::new(),
            ignore_columns: Vec::new(),
        }
    }

    /// Problems that can be found without reading the file: unknown field names in `columns`, a
    /// delimiter other than ',' or ';', empty date_formats, a date format that chrono cannot
    /// use, and a header claimed twice. Each item: (key path relative to the connector's csv
    /// table, e.g. "columns.emial", human message).
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        if let Some(delimiter) = self.delimiter
            && delimiter != ','
            && delimiter != ';'
        {
            problems.push((
                "delimiter".to_string(),
                format!("`{delimiter}` is not a supported delimiter: use `,` or `;`"),
            ));
        }
        if self.date_formats.is_empty() {
            problems.push((
                "date_formats".to_string(),
                "no date formats are given: list at least one, such as \"%Y-%m-%d\"".to_string(),
            ));
        }
        for (index, format) in self.date_formats.iter().enumerate() {
            if let Some(message) = date_format_problem(format) {
                problems.push((format!("date_formats[{index}]"), message));
            }
        }
        Layout::from_settings(self, &mut problems);
        problems
    }
}

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

/// Why an HR export could not be read. Every message names the file, and the line and column
/// where there is one. Lines are the file's own lines, 1-based, so the header is line 1 unless
/// blank lines precede it; a quoted value spanning lines is reported at the line it starts on.
#[derive(Debug, thiserror::Error)]
pub enum CsvError {
    #[error("cannot read {file}: {source}")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the csv settings for {file} have problems: {}", Problems(.problems))]
    Settings {
        file: String,
        problems: Vec<(String, String)>,
    },
    #[error("{file} is empty: expected a header line")]
    Empty { file: String },
    #[error("{file}{}: {message}", at_line(*.line))]
    Malformed {
        file: String,
        line: Option<u64>,
        message: String,
    },
    #[error(
        "{file} line {line}, column {column}: the text is not valid UTF-8; save the export as UTF-8"
    )]
    InvalidUtf8 {
        file: String,
        line: u64,
        column: String,
    },
    #[error("{file} line {line}, column {index}: the column has no header")]
    EmptyHeader {
        file: String,
        line: u64,
        index: usize,
    },
    #[error("{file} line {line}: column `{header}` appears more than once")]
    DuplicateHeader {
        file: String,
        line: u64,
        header: String,
    },
    #[error(
        "unknown column `{header}` in {file} line {line}: map it under columns, list it under attributes, or under ignore_columns"
    )]
    UnknownColumn {
        file: String,
        line: u64,
        header: String,
    },
    #[error("{file} line {line}: column `{header}` ({field}) is missing from the header")]
    MissingColumn {
        file: String,
        line: u64,
        header: String,
        field: String,
    },
    #[error(
        "{file} line {line}: the row has {found} fields where the header on line {header_line} has {expected}"
    )]
    FieldCount {
        file: String,
        line: u64,
        found: usize,
        expected: usize,
        header_line: u64,
    },
    #[error(
        "{file} line {line}, column {column}: a quoted value opens here and never closes; the file was cut off or hand-edited, and reading on would merge the rows after it into this one"
    )]
    UnclosedQuote {
        file: String,
        line: u64,
        column: usize,
    },
    #[error(
        "{file} line {line}, column {column}: the quoted value that starts here runs over line {row_line}, which looks like a row of its own; a quote is probably missing, and reading on would merge rows into one"
    )]
    RowsInsideQuotes {
        file: String,
        line: u64,
        column: usize,
        row_line: u64,
    },
    #[error(
        "{file} line {line}, column {column}: text follows the closing quote of a value; quote the whole value and double every quote inside it (\"\")"
    )]
    TextAfterQuote {
        file: String,
        line: u64,
        column: usize,
    },
    #[error(
        "{file} line {line}, column `{column}`: the value is {bytes} bytes long; an id or department code may be at most 1024"
    )]
    TooLong {
        file: String,
        line: u64,
        column: String,
        bytes: usize,
    },
    #[error("{file} line {line}, column `{column}`: the employee id is empty; every row needs one")]
    MissingEmployeeId {
        file: String,
        line: u64,
        column: String,
    },
    #[error(
        "{file} line {line}, column `{column}`: `{value}` is not a date in any of the formats {}",
        .formats.join(", ")
    )]
    BadDate {
        file: String,
        line: u64,
        column: String,
        value: String,
        formats: Vec<String>,
    },
}

impl CsvError {
    fn malformed(file: &str, error: csv::Error) -> CsvError {
        let line = error.position().map(csv::Position::line);
        let message = match error.into_kind() {
            csv::ErrorKind::Io(error) => error.to_string(),
            other => format!("{other:?}"),
        };
        CsvError::Malformed {
            file: file.to_string(),
            line,
            message,
        }
    }
}

fn at_line(line: Option<u64>) -> String {
    line.map(|line| format!(" line {line}")).unwrap_or_default()
}

/// Lists settings problems on one line, for the error message.
struct Problems<'a>(&'a [(String, String)]);

impl fmt::Display for Problems<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, (key, message)) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{key}: {message}")?;
        }
        Ok(())
    }
}

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// The record fields a column can fill. Each field's name is also its default header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Field {
    EmployeeId,
    Email,
    FirstName,
    LastName,
    DisplayName,
    DepartmentCode,
    Department,
    Location,
    ManagerId,
    JobTitle,
    EmploymentType,
    StartDate,
    EndDate,
    Status,
}

impl Field {
    const ALL: [Field; 14] = [
        Field::EmployeeId,
        Field::Email,
        Field::FirstName,
        Field::LastName,
        Field::DisplayName,
        Field::DepartmentCode,
        Field::Department,
        Field::Location,
        Field::ManagerId,
        Field::JobTitle,
        Field::EmploymentType,
        Field::StartDate,
        Field::EndDate,
        Field::Status,
    ];

    fn name(self) -> &'static str {
        match self {
            Field::EmployeeId => "employee_id",
            Field::Email => "email",
            Field::FirstName => "first_name",
            Field::LastName => "last_name",
            Field::DisplayName => "display_name",
            Field::DepartmentCode => "department_code",
            Field::Department => "department",
            Field::Location => "location",
            Field::ManagerId => "manager_id",
            Field::JobTitle => "job_title",
            Field::EmploymentType => "employment_type",
            Field::StartDate => "start_date",
            Field::EndDate => "end_date",
            Field::Status => "status",
        }
    }

    fn from_name(name: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|field| field.name() == name)
    }

    /// Without these two columns a file cannot be a feed; every other column may be absent.
    fn required(self) -> bool {
        matches!(self, Field::EmployeeId | Field::Email)
    }
}

/// What one column of the file is read into.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Target {
    Field(Field),
    Attribute(String),
    Ignored,
}

/// A header the settings claim, with where the claim came from.
#[derive(Clone, Debug)]
struct Claim {
    target: Target,
    /// The header as configured, for messages.
    header: String,
    /// The settings key that made the claim; `None` for a field's default header.
    key: Option<String>,
}

/// The settings turned into a lookup from normalised header to what it is read into.
#[derive(Debug)]
struct Layout {
    claims: HashMap<String, Claim>,
}

const ATTRIBUTE_PREFIX: &str = "attributes.";

impl Layout {
    /// Builds the lookup, pushing every conflict or unknown name onto `problems`.
    ///
    /// Explicit claims (the `columns` map, `attributes` and `ignore_columns`) must not overlap.
    /// A field's default header is used only when the field is not mapped and no explicit claim
    /// took that header, so `ignore_columns = ["location"]` simply stops reading locations.
    fn from_settings(settings: &CsvSettings, problems: &mut Vec<(String, String)>) -> Layout {
        let mut claims: HashMap<String, Claim> = HashMap::new();
        let mut attribute_names: HashMap<String, String> = HashMap::new();
        let mut claim =
            |problems: &mut Vec<(String, String)>, key: String, header: &str, target| {
                let normalised = normalise(header);
                if normalised.is_empty() {
                    problems.push((key, "the header is empty".to_string()));
                    return;
                }
                if let Target::Attribute(name) = &target {
                    if let Some(earlier) = attribute_names.get(name) {
                        problems.push((
                            key,
                            format!("attribute `{name}` is already read from {earlier}"),
                        ));
                        return;
                    }
                    attribute_names.insert(name.clone(), key.clone());
                }
                if let Some(earlier) = claims.get(&normalised) {
                    let earlier_key = earlier.key.as_deref().unwrap_or_default();
                    problems.push((
                        key,
                        format!("header `{header}` is already claimed by {earlier_key}"),
                    ));
                    return;
                }
                let claim = Claim {
                    target,
                    header: header.trim().to_string(),
                    key: Some(key),
                };
                claims.insert(normalised, claim);
            };

        for (name, header) in &settings.columns {
            let key = key_path("columns", name);
            if let Some(attribute) = name.strip_prefix(ATTRIBUTE_PREFIX) {
                let attribute = attribute.trim();
                if attribute.is_empty() {
                    problems.push((
                        key,
                        "the attribute name is empty: write `attributes.<name>`".to_string(),
                    ));
                } else {
                    claim(
                        problems,
                        key,
                        header,
                        Target::Attribute(attribute.to_string()),
                    );
                }
            } else if let Some(field) = Field::from_name(name) {
                claim(problems, key, header, Target::Field(field));
            } else {
                problems.push((key, unknown_field_message(name)));
            }
        }
        for (index, header) in settings.attributes.iter().enumerate() {
            let key = format!("attributes[{index}]");
            claim(problems, key, header, Target::Attribute(normalise(header)));
        }
        for (index, header) in settings.ignore_columns.iter().enumerate() {
            let key = format!("ignore_columns[{index}]");
            claim(problems, key, header, Target::Ignored);
        }

        for field in Field::ALL {
            if settings.columns.contains_key(field.name()) {
                continue;
            }
            match claims.get(field.name()) {
                None => {
                    let claim = Claim {
                        target: Target::Field(field),
                        header: field.name().to_string(),
                        key: None,
                    };
                    claims.insert(field.name().to_string(), claim);
                }
                Some(other) if field.required() => problems.push((
                    key_path("columns", field.name()),
                    format!(
                        "the required field `{name}` has no column: its default header `{name}` \
                         is claimed by {by}; map `{name}` to the export's header here",
                        name = field.name(),
                        by = other.key.as_deref().unwrap_or_default(),
                    ),
                )),
                Some(_) => {}
            }
        }
        Layout { claims }
    }

    /// The headers the file must have: every explicit claim except ignored ones, and the
    /// headers of the required fields.
    fn expected(&self) -> impl Iterator<Item = (&String, &Claim)> {
        self.claims.iter().filter(|(_, claim)| match &claim.target {
            Target::Field(field) => claim.key.is_some() || field.required(),
            Target::Attribute(_) => true,
            Target::Ignored => false,
        })
    }
}

/// The file's header line: what each column is read into, and the column names for messages.
#[derive(Debug)]
struct Header {
    line: u64,
    targets: Vec<Target>,
    names: Vec<String>,
}

impl Header {
    fn read(file: &str, line: u64, fields: &[&str], layout: &Layout) -> Result<Header, CsvError> {
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut targets = Vec::with_capacity(fields.len());
        for (index, raw) in fields.iter().enumerate() {
            let normalised = normalise(raw);
            if normalised.is_empty() {
                return Err(CsvError::EmptyHeader {
                    file: file.to_string(),
                    line,
                    index: index + 1,
                });
            }
            if seen.insert(normalised.clone(), index).is_some() {
                return Err(CsvError::DuplicateHeader {
                    file: file.to_string(),
                    line,
                    header: raw.trim().to_string(),
                });
            }
            match layout.claims.get(&normalised) {
                Some(claim) => targets.push(claim.target.clone()),
                None => {
                    return Err(CsvError::UnknownColumn {
                        file: file.to_string(),
                        line,
                        header: raw.trim().to_string(),
                    });
                }
            }
        }
        let mut missing: Vec<(&String, &Claim)> = layout
            .expected()
            .filter(|(normalised, _)| !seen.contains_key(*normalised))
            .collect();
        // Sorted by header, so the message does not depend on hash order.
        missing.sort_by(|a, b| a.1.header.cmp(&b.1.header));
        if let Some((_, claim)) = missing.first() {
            let field = match &claim.target {
                Target::Field(field) => field.name().to_string(),
                Target::Attribute(name) => format!("attribute `{name}`"),
                Target::Ignored => "ignored".to_string(),
            };
            return Err(CsvError::MissingColumn {
                file: file.to_string(),
                line,
                header: claim.header.clone(),
                field,
            });
        }
        Ok(Header {
            line,
            targets,
            names: fields.iter().map(|raw| raw.trim().to_string()).collect(),
        })
    }

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

/// Checks the file's quoting before the csv reader sees it, because that reader is lenient
/// where an HR export must not be: it reads a quote that never closes as running to the end of
/// the file (a file cut off inside the last column looks complete, and an unmatched quote in
/// one row swallows the rows after it), and it joins text after a closing quote to the value.
/// Here, as in RFC 4180, a quote opens a value only as the value's first character; inside,
/// `""` is a quote; after the closing quote only spaces, the delimiter or the end of the line
/// may follow. A quote inside an unquoted value is an ordinary character.
///
/// Two stray quotes can still pair up into a valid quoted value that swallows the rows between
/// them, so a quoted value that runs over a line holding a whole row's worth of delimiters (as
/// many as the header has, less one) is refused too: a note spanning lines rarely looks like a
/// row, and swallowed people always do. Errors name the line and column where the value starts.
/// Lines end at LF, CRLF or a lone CR, as the csv reader's rows do.
fn check_quoting(file: &str, bytes: &[u8], delimiter: u8) -> Result<(), CsvError> {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        FieldStart,
        Unquoted,
        Quoted,
        AfterQuote,
    }
    let (mut state, mut line, mut column) = (State::FieldStart, 1u64, 1usize);
    let mut cell_line = 1u64;
    // The header's field count, once its record has ended; and, inside a quoted value that
    // has crossed a line break, the delimiters on its current line.
    let (mut header_fields, mut row_has_text) = (None::<usize>, false);
    let mut inner_delimiters: Option<usize> = None;
    let mut iter = bytes.iter().copied().peekable();
    while let Some(byte) = iter.next() {
        let ends_record = byte == b'\n' || byte == b'\r';
        let ends_line = byte == b'\n' || (byte == b'\r' && iter.peek() != Some(&b'\n'));
        state = match (state, byte) {
            (State::Quoted, b'"') if iter.peek() == Some(&b'"') => {
                iter.next();
                State::Quoted
            }
            (State::Quoted, b'"') => State::AfterQuote,
            (State::Quoted, _) => {
                if ends_line {
                    inner_delimiters = Some(0);
                } else if byte == delimiter
                    && let Some(count) = inner_delimiters.as_mut()
                {
                    *count += 1;
                    if header_fields.is_some_and(|n| *count >= (n - 1).max(2)) {
                        return Err(CsvError::RowsInsideQuotes {
                            file: file.to_string(),
                            line: cell_line,
                            column,
                            row_line: line,
                        });
                    }
                }
                State::Quoted
            }
            (State::FieldStart, b'"') => {
                cell_line = line;
                inner_delimiters = None;
                State::Quoted
            }
            (State::AfterQuote, b' ' | b'\t') => State::AfterQuote,
            (State::AfterQuote, _) if byte != delimiter && !ends_record => {
                return Err(CsvError::TextAfterQuote {
                    file: file.to_string(),
                    line: cell_line,
                    column,
                });
            }
            (_, _) if byte == delimiter => {
                column += 1;
                State::FieldStart
            }
            (_, _) if ends_record => {
                if row_has_text && header_fields.is_none() {
                    header_fields = Some(column);
                }
                (column, row_has_text) = (1, false);
                State::FieldStart
            }
            (_, _) => State::Unquoted,
        };
        if !ends_record && byte != delimiter && !byte.is_ascii_whitespace() {
            row_has_text = true;
        }
        if ends_line {
            line += 1;
        }
    }
    if state == State::Quoted {
        return Err(CsvError::UnclosedQuote {
            file: file.to_string(),
            line: cell_line,
            column,
        });
    }
    Ok(())
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

/// Headers are compared without regard to letter case or surrounding spaces.
fn normalise(header: &str) -> String {
    header.trim().to_lowercase()
}

/// A key path as TOML writes it: `columns.email`, or `columns."attributes.big_number"`.
fn key_path(table: &str, key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        format!("{table}.{key}")
    } else {
        format!("{table}.{key:?}")
    }
}

fn unknown_field_message(name: &str) -> String {
    let mut message = format!("unknown field `{name}`");
    let closest = Field::ALL
        .into_iter()
        .map(|field| {
            (
                edit_distance(&name.to_lowercase(), field.name()),
                field.name(),
            )
        })
        .min();
    if let Some((distance, suggestion)) = closest
        && distance <= 2
    {
        let _ = write!(message, " (did you mean `{suggestion}`?)");
    }
    let names: Vec<&str> = Field::ALL.into_iter().map(Field::name).collect();
    let _ = write!(
        message,
        "; the fields are {}, or attributes.<name> for an attribute",
        names.join(", ")
    );
    message
}

/// The Levenshtein distance between two short texts, for "did you mean" hints.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

/// Why a strftime format cannot read dates, or `None` when it can.
///
/// A format is usable when chrono accepts its specifiers and a date written with it reads back
/// as the same date; that rules out formats without a year, a month or a day. Time fields may
/// be present (an export's `2026-01-05 00:00:00`); they are ignored when reading.
fn date_format_problem(format: &str) -> Option<String> {
    if StrftimeItems::new(format).any(|item| matches!(item, Item::Error)) {
        return Some(format!("`{format}` is not a valid chrono strftime format"));
    }
    let probe = NaiveDate::from_ymd_opt(2026, 11, 23).expect("2026-11-23 is a date");
    let moment = probe.and_time(chrono::NaiveTime::MIN).and_utc();
    let mut written = String::new();
    let usable = write!(written, "{}", moment.format(format)).is_ok()
        && NaiveDate::parse_from_str(&written, format) == Ok(probe);
    (!usable).then(|| {
        format!(
            "`{format}` cannot read a date: it needs a year, a month and a day, such as %d-%m-%Y"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::EmailError;

    fn settings() -> CsvSettings {
        CsvSettings::new("hr.csv")
    }

    fn dutch_settings() -> CsvSettings {
        let mut settings = settings();
        settings.delimiter = Some(';');
        settings.date_formats = vec!["%d-%m-%Y".to_string()];
        for (field, header) in [
            ("employee_id", "personeelsnummer"),
            ("email", "e-mail"),
            ("first_name", "voornaam"),
            ("last_name", "achternaam"),
            ("department_code", "afdelingscode"),
            ("department", "afdeling"),
            ("manager_id", "leidinggevende"),
            ("job_title", "functie"),
            ("start_date", "datum_in_dienst"),
            ("end_date", "datum_uit_dienst"),
            ("attributes.big_number", "big_nummer"),
        ] {
            settings
                .columns
                .insert(field.to_string(), header.to_string());
        }
        settings
    }

    fn error_text(result: Result<Vec<HrRecord>, CsvError>) -> String {
        result.expect_err("the parse should fail").to_string()
    }

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
    fn quoted_fields_keep_delimiters_quotes_and_line_breaks() {
        let text = "employee_id,email,display_name,job_title\n\
                    E1,a@example.org,\"Dijkstra, Saar\",\"Zorg \"\"plus\"\"\nnacht\"\n";

        let records = parse("hr.csv", text.as_bytes(), &settings()).unwrap();

        assert_eq!(records[0].display_name.as_deref(), Some("Dijkstra, Saar"));
        assert_eq!(records[0].job_title.as_deref(), Some("Zorg \"plus\" nacht"));
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
    fn stray_quote_that_keeps_the_field_count_fails_at_its_line() {
        let text = "employee_id,email,last_name,department\n\
                    E1,a@example.org,\"Smit,Zorg\n\
                    E2,b@example.org,Jansen,Zorg\n\
                    E3,c@example.org,Bakker,Zorg\n";

        let error = error_text(parse("hr.csv", text.as_bytes(), &settings()));

        assert!(error.starts_with("hr.csv line 2, column 3:"), "{error}");
        assert!(error.contains("runs over line 3"), "{error}");
    }

    #[test]
    fn file_cut_inside_the_last_column_of_the_last_row_fails() {
        let text = "employee_id,email,department\n\
                    E1,a@example.org,\"Engineering\"\n\
                    E2,b@example.org,\"Eng";

        let error = error_text(parse("hr.csv", text.as_bytes(), &settings()));

        assert!(error.starts_with("hr.csv line 3, column 3:"), "{error}");
        assert!(error.contains("never closes"), "{error}");
    }

    #[test]
    fn text_after_a_closing_quote_fails_at_the_line_where_the_value_starts() {
        let text = "employee_id,email,last_name\n\
                    E1,a@example.org,\"Smit\nde\" Vries\n";

        let error = error_text(parse("hr.csv", text.as_bytes(), &settings()));

        assert!(error.starts_with("hr.csv line 2, column 3:"), "{error}");
        assert!(error.contains("text follows the closing quote"), "{error}");
    }

    #[test]
    fn two_stray_quotes_that_pair_up_over_whole_rows_fail_where_the_first_opens() {
        let text = "employee_id,email,first_name,last_name\n\
                    E1,a@example.org,Ann,\"Smit\n\
                    E2,b@example.org,Bob,Bakker\n\
                    E3,c@example.org,Cor,de Vries\"\n\
                    E4,d@example.org,Dan,Dekker\n";

        let error = error_text(parse("hr.csv", text.as_bytes(), &settings()));

        assert!(error.starts_with("hr.csv line 2, column 4:"), "{error}");
        assert!(error.contains("runs over line 3"), "{error}");
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
    fn a_quoted_note_over_several_lines_is_one_value() {
        let text = "employee_id,email,first_name,notes\n\
                    E1,a@example.org,Ann,\"Works Mondays,\nTuesdays\nand, on call, Fridays\"\n\
                    E2,b@example.org,Bob,\n";
        let mut settings = settings();
        settings.attributes = vec!["notes".to_string()];

        let records = parse("hr.csv", text.as_bytes(), &settings).unwrap();

        assert_eq!(records.len(), 2);
        assert_eq!(
            records[0].attributes["notes"],
            "Works Mondays,\nTuesdays\nand, on call, Fridays"
        );
    }

    #[test]
    fn lines_ending_in_a_lone_cr_are_counted() {
        let unclosed =
            "employee_id,email,last_name\rE1,a@example.org,Smit\rE2,b@example.org,\"Bos\r";
        let short = "employee_id,email,last_name\rE1,a@example.org,Smit\rE2,b@example.org\r";

        let unclosed = error_text(parse("hr.csv", unclosed.as_bytes(), &settings()));
        let short = error_text(parse("hr.csv", short.as_bytes(), &settings()));

        assert!(
            unclosed.starts_with("hr.csv line 3, column 3:"),
            "{unclosed}"
        );
        assert!(short.starts_with("hr.csv line 3:"), "{short}");
    }

    #[test]
    fn quotes_inside_unquoted_values_and_spaces_after_a_closing_quote_are_accepted() {
        let text = "employee_id;email;job_title;last_name\r\n\
                    E1;a@example.org;Size 5\"11;\"Smit\" \r\n";

        let records = parse("hr.csv", text.as_bytes(), &settings()).unwrap();

        assert_eq!(records[0].job_title.as_deref(), Some("Size 5\"11"));
        assert_eq!(records[0].last_name.as_deref(), Some("Smit"));
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
    fn listed_attributes_are_named_after_the_lower_cased_header() {
        let mut settings = settings();
        settings.attributes = vec!["Kostenplaats".to_string(), "BIG_nummer".to_string()];
        let text = "employee_id,email,KOSTENPLAATS,big_nummer\nE1,a@example.org, 4100 ,\n";

        let record = &parse("hr.csv", text.as_bytes(), &settings).unwrap()[0];

        assert_eq!(record.attributes.len(), 1, "empty values are left out");
        assert_eq!(record.attributes["kostenplaats"], "4100");
    }

    #[test]
    fn ignored_columns_are_skipped_even_when_they_name_a_field() {
        let mut settings = settings();
        settings.ignore_columns = vec!["Salaris".to_string(), "location".to_string()];
        let text = "employee_id,email,salaris,location\nE1,a@example.org,4000,Utrecht\n";

        let record = &parse("hr.csv", text.as_bytes(), &settings).unwrap()[0];

        assert_eq!(record.location, None);
        assert!(record.attributes.is_empty());
    }

    #[test]
    fn unknown_column_is_an_error_that_says_how_to_fix_it() {
        let text = "employee_id,email,salaris\nE1,a@example.org,4000\n";

        let message = error_text(parse("hr.csv", text.as_bytes(), &settings()));

        assert_eq!(
            message,
            "unknown column `salaris` in hr.csv line 1: map it under columns, list it under attributes, or under ignore_columns"
        );
    }

    #[test]
    fn header_of_a_mapped_field_is_no_longer_known_under_its_default_name() {
        let mut settings = settings();
        settings
            .columns
            .insert("first_name".to_string(), "voornaam".to_string());
        let text = "employee_id,email,voornaam,first_name\nE1,a@example.org,An,An\n";

        let message = error_text(parse("hr.csv", text.as_bytes(), &settings));

        assert!(
            message.starts_with("unknown column `first_name` in hr.csv line 1"),
            "{message}"
        );
    }

    #[test]
    fn missing_required_column_is_an_error() {
        let text = "employee_id,first_name\nE1,An\n";

        let message = error_text(parse("hr.csv", text.as_bytes(), &settings()));

        assert_eq!(
            message,
            "hr.csv line 1: column `email` (email) is missing from the header"
        );
    }

    #[test]
    fn missing_mapped_column_is_an_error_naming_the_field() {
        let mut settings = settings();
        settings
            .columns
            .insert("job_title".to_string(), "Functie".to_string());
        let text = "employee_id,email\nE1,a@example.org\n";

        let message = error_text(parse("hr.csv", text.as_bytes(), &settings));

        assert_eq!(
            message,
            "hr.csv line 1: column `Functie` (job_title) is missing from the header"
        );
    }

    #[test]
    fn missing_optional_default_column_leaves_the_field_empty() {
        let text = "email,employee_id\na@example.org,E1\n";

        let record = &parse("hr.csv", text.as_bytes(), &settings()).unwrap()[0];

        assert_eq!(record.job_title, None);
        assert_eq!(record.start_date, None);
    }

    #[test]
    fn duplicate_header_is_an_error() {
        let text = "employee_id,email,Email\nE1,a@example.org,b@example.org\n";

        let message = error_text(parse("hr.csv", text.as_bytes(), &settings()));

        assert_eq!(
            message,
            "hr.csv line 1: column `Email` appears more than once"
        );
    }

    #[test]
    fn empty_header_is_an_error_with_its_column_number() {
        let text = "employee_id,email,\nE1,a@example.org,\n";

        let message = error_text(parse("hr.csv", text.as_bytes(), &settings()));

        assert_eq!(message, "hr.csv line 1, column 3: the column has no header");
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
    fn required_field_whose_default_header_is_ignored_is_a_problem() {
        let mut settings = settings();
        settings.ignore_columns = vec!["Email".to_string()];

        let problems = settings.problems();

        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].0, "columns.email");
        assert!(
            problems[0].1.contains("claimed by ignore_columns[0]"),
            "{}",
            problems[0].1
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
    fn parse_refuses_settings_with_problems() {
        let mut settings = settings();
        settings.delimiter = Some('\t');

        let message = error_text(parse("hr.csv", b"employee_id\temail\n", &settings));

        assert_eq!(
            message,
            "the csv settings for hr.csv have problems: delimiter: `\t` is not a supported delimiter: use `,` or `;`"
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

    #[test]
    fn default_settings_have_no_problems() {
        assert!(settings().problems().is_empty());
        assert!(dutch_settings().problems().is_empty());
    }

    #[test]
    fn unknown_field_in_columns_is_a_problem_with_a_suggestion() {
        let mut settings = settings();
        settings
            .columns
            .insert("emial".to_string(), "e-mail".to_string());

        let problems = settings.problems();

        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].0, "columns.emial");
        assert!(
            problems[0].1.starts_with(
                "unknown field `emial` (did you mean `email`?); the fields are employee_id, email,"
            ),
            "{}",
            problems[0].1
        );
    }

    #[test]
    fn unsupported_delimiter_and_unusable_date_formats_are_problems() {
        let mut settings = settings();
        settings.delimiter = Some('|');
        settings.date_formats = vec![
            "%d-%m-%Y".to_string(),
            "%Y-%m".to_string(),
            "%Q".to_string(),
            "%Y-%m-%d %H:%M".to_string(),
        ];

        let keys: Vec<String> = settings
            .problems()
            .into_iter()
            .map(|(key, _)| key)
            .collect();

        assert_eq!(keys, ["delimiter", "date_formats[1]", "date_formats[2]"]);
    }

    #[test]
    fn empty_date_formats_is_a_problem() {
        let mut settings = settings();
        settings.date_formats.clear();

        let problems = settings.problems();

        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].0, "date_formats");
    }

    #[test]
    fn header_claimed_twice_is_a_problem_at_the_later_key() {
        let mut settings = settings();
        settings.columns.insert(
            "attributes.big_number".to_string(),
            "big_nummer".to_string(),
        );
        settings.ignore_columns = vec!["BIG_nummer".to_string()];
        settings.attributes = vec![String::new()];

        let problems = settings.problems();

        assert_eq!(
            problems,
            [
                (
                    "attributes[0]".to_string(),
                    "the header is empty".to_string()
                ),
                (
                    "ignore_columns[0]".to_string(),
                    "header `BIG_nummer` is already claimed by columns.\"attributes.big_number\""
                        .to_string()
                ),
            ]
        );
    }

    #[test]
    fn settings_deserialise_with_defaults_and_refuse_unknown_keys() {
        let settings: CsvSettings =
            serde_json::from_str(r#"{"path": "hr.csv", "delimiter": ";"}"#).unwrap();
        assert_eq!(settings.delimiter, Some(';'));
        assert_eq!(settings.date_formats, ["%Y-%m-%d", "%d-%m-%Y", "%d/%m/%Y"]);

        let unknown =
            serde_json::from_str::<CsvSettings>(r#"{"path": "hr.csv", "delimeter": ";"}"#);

        assert!(
            unknown
                .unwrap_err()
                .to_string()
                .contains("unknown field `delimeter`")
        );
    }

    #[test]
    fn settings_from_toml_keep_the_quoted_attribute_key_whole() {
        let toml = r#"
            [connectors.zonnehof_hr.csv]
            path = "config/examples/zonnehof-export.csv"
            delimiter = ";"
            date_formats = ["%d-%m-%Y"]

            [connectors.zonnehof_hr.csv.columns]
            employee_id = "personeelsnummer"
            "attributes.big_number" = "big_nummer"
        "#;
        let config = config::Config::builder()
            .add_source(config::File::from_str(toml, config::FileFormat::Toml))
            .build()
            .unwrap();

        let settings: CsvSettings = config.get("connectors.zonnehof_hr.csv").unwrap();

        assert_eq!(settings.delimiter, Some(';'));
        assert_eq!(settings.columns["attributes.big_number"], "big_nummer");
        assert_eq!(settings.columns["employee_id"], "personeelsnummer");
        assert!(settings.problems().is_empty());
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

        #[test]
        fn any_text_a_spreadsheet_writes_is_read_back_as_one_clean_record_per_row(
            cells in proptest::collection::vec(
                (
                    "[A-Za-z0-9]{1,8}",
                    proptest::prop_oneof![
                        proptest::prelude::any::<String>(),
                        "[ \t\r\n\",;\x00\u{202E}\u{2028}a-zé]{0,30}",
                    ],
                    "[ \t\r\n\",;a-z]{0,30}",
                ),
                1..8,
            )
        ) {
            let mut writer = ::csv::Writer::from_writer(Vec::new());
            writer.write_record(["employee_id", "email", "first_name", "notes"]).unwrap();
            for (i, (id, name, note)) in cells.iter().enumerate() {
                writer.write_record([format!("{id}-{i}").as_str(), "", name, note]).unwrap();
            }
            let bytes = writer.into_inner().unwrap();
            let mut settings = settings();
            settings.delimiter = Some(',');
            settings.attributes = vec!["notes".to_string()];

            let records = parse("hr.csv", &bytes, &settings);

            // A value whose later line holds a row's worth of commas (three, with four
            // columns) is refused as rows swallowed by a stray quote; anything else is read.
            let looks_like_rows = cells.iter().any(|(_, name, note)| {
                [name, note].iter().any(|cell| {
                    cell.split(['\n', '\r']).skip(1).any(|line| line.matches(',').count() >= 3)
                })
            });
            if looks_like_rows {
                proptest::prop_assert!(
                    matches!(records, Err(CsvError::RowsInsideQuotes { .. }) | Ok(_)),
                    "{:?}",
                    records
                );
                return Ok(());
            }
            let records = records.unwrap();
            proptest::prop_assert_eq!(records.len(), cells.len());
            for (record, (_, name, note)) in records.iter().zip(&cells) {
                proptest::prop_assert_eq!(record.first_name.clone(), non_empty(name));
                proptest::prop_assert_eq!(record.attributes.get("notes").cloned(), attribute(note));
                proptest::prop_assert_eq!(&record.clone().normalised(), record);
            }
        }
    }
}
