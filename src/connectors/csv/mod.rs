//! The `csv` source kind: reads an HR export file into [`HrRecord`](crate::domain::HrRecord)s.
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
//!
//! The reading is split by concern: `settings` holds [`CsvSettings`] and the problems found
//! without the file; `layout` turns the settings into what each header is read into and checks
//! the header line; `quoting` is the RFC 4180 quoting check that runs first; `reader` reads the
//! rows into records (dates, departments, line numbers); `error` is [`CsvError`].

mod error;
mod layout;
mod quoting;
mod reader;
mod settings;

pub use error::CsvError;
pub use reader::{parse, read_file};
pub use settings::CsvSettings;

#[cfg(test)]
mod test_support {
    //! Settings and functions the tests of every part share.

    use super::{CsvError, CsvSettings};
    use crate::domain::HrRecord;

    pub(super) fn settings() -> CsvSettings {
        CsvSettings::new("hr.csv")
    }

    pub(super) fn dutch_settings() -> CsvSettings {
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

    pub(super) fn error_text(result: Result<Vec<HrRecord>, CsvError>) -> String {
        result.expect_err("the parse should fail").to_string()
    }
}
