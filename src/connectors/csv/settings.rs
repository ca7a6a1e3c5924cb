//! The settings of a `csv` connector, and the problems that can be found in them without
//! reading the file, so `hrsync check` reports them all at once.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use chrono::NaiveDate;
use chrono::format::{Item, StrftimeItems};

use super::layout::Layout;

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

/// Why a strftime format cannot read dates, or `None` when it can.
///
/// A format is usable when chrono accepts its specifiers and a date written with it reads back
/// as the same date; that rules out formats without a year, a month or a day. Time fields may
/// be present (an export's `2026-01-05 00:00:00`); they are ignored when reading.
fn date_format_problem(format: &str) -> Option<String> {
    if StrftimeItems::new(format).any(|item| matches!(item, Item::Error)) {
        return Some(format!("`{format}` is not a valid chrono strftime format"));
    }
    // 23 November 2026: day, month and year all differ, so none can stand in for another.
    let probe = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap_or_default();
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
    use crate::connectors::csv::parse;
    use crate::connectors::csv::test_support::{dutch_settings, error_text, settings};

    #[test]
    fn default_settings_have_no_problems() {
        assert!(settings().problems().is_empty());
        assert!(dutch_settings().problems().is_empty());
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
}
