//! The layout of an export: what each header is read into (a record field, an attribute, or
//! nothing), built from the settings, and the check of the file's header line against it.
//!
//! Headers are compared without regard to letter case or surrounding spaces. A header the
//! settings do not account for is an error, so a column added to the export is noticed instead
//! of silently dropped.

use std::collections::HashMap;
use std::fmt::Write as _;

use super::error::CsvError;
use super::settings::CsvSettings;

/// The record fields a column can fill. Each field's name is also its default header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Field {
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

    pub(super) fn name(self) -> &'static str {
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
pub(super) enum Target {
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
pub(super) struct Layout {
    claims: HashMap<String, Claim>,
}

const ATTRIBUTE_PREFIX: &str = "attributes.";

impl Layout {
    /// Builds the lookup, pushing every conflict or unknown name onto `problems`.
    ///
    /// Explicit claims (the `columns` map, `attributes` and `ignore_columns`) must not overlap.
    /// A field's default header is used only when the field is not mapped and no explicit claim
    /// took that header, so `ignore_columns = ["location"]` simply stops reading locations.
    pub(super) fn from_settings(
        settings: &CsvSettings,
        problems: &mut Vec<(String, String)>,
    ) -> Layout {
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
pub(super) struct Header {
    pub(super) line: u64,
    pub(super) targets: Vec<Target>,
    pub(super) names: Vec<String>,
}

impl Header {
    /// Reads the header line: each column must be one the layout knows, and appear once, and
    /// every column the layout expects must be there.
    pub(super) fn read(
        file: &str,
        line: u64,
        fields: &[&str],
        layout: &Layout,
    ) -> Result<Header, CsvError> {
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
    // One row of the table at a time: `previous[j]` is the distance between the `a`
    // read so far and the first `j` characters of `b`.
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = Vec::with_capacity(b.len() + 1);
        current.push(i + 1);
        for (cb, pair) in b.iter().zip(previous.windows(2)) {
            let (diagonal, above) = match pair {
                [d, u] => (*d, *u),
                _ => continue,
            };
            let left = current.last().copied().unwrap_or(i + 1);
            let substitution = diagonal + usize::from(ca != *cb);
            current.push(substitution.min(above + 1).min(left + 1));
        }
        previous = current;
    }
    previous.last().copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::edit_distance;
    use crate::connectors::csv::parse;

    #[test]
    fn edit_distance_counts_the_fewest_single_character_edits() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("email", ""), 5);
        assert_eq!(edit_distance("", "email"), 5);
        assert_eq!(edit_distance("emial", "email"), 2, "a swap is two edits");
        assert_eq!(edit_distance("e-mail", "email"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(
            edit_distance("straße", "strasse"),
            2,
            "counted in characters"
        );
    }
    use crate::connectors::csv::test_support::{error_text, settings};

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
}
