//! Why an HR export could not be read, as one error type whose every message names the file,
//! and the line and column where there is one.

use std::fmt;

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
    pub(super) fn malformed(file: &str, error: csv::Error) -> CsvError {
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
