//! The normalised HR record that every connector emits.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use super::{Email, EmailError, EmployeeId, TeamKey, attribute, is_single_line, non_empty};

/// The longest employee id, manager id or team key a record may carry: the databases index
/// them, and an index entry has a size limit (about 2.7 kB on PostgreSQL).
pub const MAX_KEY_BYTES: usize = 1024;

/// A department as the HR system names it: a stable key and a display name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Department {
    pub key: TeamKey,
    pub name: String,
}

/// One person as one HR system describes them, parsed and normalised.
///
/// Connectors fill every field they can; the planner decides what each one means. Texts are
/// trimmed and empty texts are `None`. The email keeps its parse error, so a quarantine line can
/// say what was wrong with it.
#[derive(Clone, Debug, PartialEq)]
pub struct HrRecord {
    pub employee_id: EmployeeId,
    pub email: Result<Email, EmailError>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub display_name: Option<String>,
    pub department: Option<Department>,
    pub location: Option<String>,
    pub manager_id: Option<EmployeeId>,
    pub job_title: Option<String>,
    pub employment_type: Option<String>,
    pub start_date: Option<NaiveDate>,
    pub end_date: Option<NaiveDate>,
    /// The HR system's own status text, as given; the connector's status map interprets it.
    pub status: Option<String>,
    /// Further attributes by name, such as `big_number` or `cost_centre`.
    pub attributes: BTreeMap<String, String>,
}

impl HrRecord {
    /// The display name HR implies: its own, else first and last name joined.
    pub fn implied_display_name(&self) -> Option<String> {
        self.display_name.clone().or_else(|| {
            let joined = [self.first_name.as_deref(), self.last_name.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            (!joined.is_empty()).then_some(joined)
        })
    }

    /// A record with only an employee id and an email; the rest empty. Handy in tests and for
    /// connectors that fill fields one by one.
    pub fn new(employee_id: EmployeeId, email: Result<Email, EmailError>) -> HrRecord {
        HrRecord {
            employee_id,
            email,
            first_name: None,
            last_name: None,
            display_name: None,
            department: None,
            location: None,
            manager_id: None,
            job_title: None,
            employment_type: None,
            start_date: None,
            end_date: None,
            status: None,
            attributes: BTreeMap::new(),
        }
    }

    /// The record with every text cleaned as the rule "text from HR is single-line" says:
    /// names, ids, titles, department, location, employment type and status on one line
    /// (see [`super::single_line`]), attributes without NUL. Every fetch passes its records
    /// through here, whatever the source kind, so no later layer receives a control character;
    /// it is idempotent, and a record the parse steps already cleaned comes out unchanged.
    pub fn normalised(mut self) -> HrRecord {
        fn line(value: &mut Option<String>) {
            if let Some(text) = value.as_deref()
                && !is_single_line(text)
            {
                *value = non_empty(text);
            }
        }
        if !is_single_line(self.employee_id.as_str())
            && let Some(id) = EmployeeId::parse(self.employee_id.as_str())
        {
            self.employee_id = id;
        }
        if let Ok(email) = &self.email
            && !is_single_line(email.as_str())
        {
            self.email = Email::parse(email.as_str());
        }
        line(&mut self.first_name);
        line(&mut self.last_name);
        line(&mut self.display_name);
        line(&mut self.location);
        line(&mut self.job_title);
        line(&mut self.employment_type);
        line(&mut self.status);
        if let Some(department) = self.department.take() {
            let key = if is_single_line(department.key.as_str()) {
                Some(department.key)
            } else {
                TeamKey::parse(department.key.as_str())
            };
            self.department = key.map(|key| Department {
                name: non_empty(&department.name).unwrap_or_else(|| key.to_string()),
                key,
            });
        }
        if let Some(manager) = &self.manager_id
            && !is_single_line(manager.as_str())
        {
            self.manager_id = EmployeeId::parse(manager.as_str());
        }
        if self
            .attributes
            .iter()
            .any(|(k, v)| k.contains('\0') || v.contains('\0'))
        {
            self.attributes = std::mem::take(&mut self.attributes)
                .into_iter()
                .filter_map(|(name, value)| Some((non_empty(&name)?, attribute(&value)?)))
                .collect();
        }
        self
    }

    /// The first field that a database would refuse, by name, with why: a NUL (which
    /// PostgreSQL cannot store in text), or an id or team key over [`MAX_KEY_BYTES`] (too long
    /// for a database index). [`HrRecord::normalised`] removes NULs; the run asks this before
    /// planning, so such a record fails the run with its field named instead of with the
    /// database's raw refusal half-way through writing.
    pub fn unstorable_field(&self) -> Option<(String, &'static str)> {
        const NUL: &str = "holds a NUL character";
        const LONG: &str = "is longer than 1024 bytes";
        let nul = |text: &str| text.contains('\0');
        let keys = [
            ("employee_id", Some(self.employee_id.as_str())),
            (
                "manager_id",
                self.manager_id.as_ref().map(EmployeeId::as_str),
            ),
            (
                "department",
                self.department.as_ref().map(|d| d.key.as_str()),
            ),
        ];
        for (name, key) in keys {
            match key {
                Some(key) if nul(key) => return Some((name.to_string(), NUL)),
                Some(key) if key.len() > MAX_KEY_BYTES => return Some((name.to_string(), LONG)),
                _ => {}
            }
        }
        let texts = [
            ("email", self.email.as_ref().ok().map(Email::as_str)),
            ("first_name", self.first_name.as_deref()),
            ("last_name", self.last_name.as_deref()),
            ("display_name", self.display_name.as_deref()),
            (
                "department",
                self.department.as_ref().map(|d| d.name.as_str()),
            ),
            ("location", self.location.as_deref()),
            ("job_title", self.job_title.as_deref()),
            ("employment_type", self.employment_type.as_deref()),
            ("status", self.status.as_deref()),
        ];
        if let Some((name, _)) = texts.iter().find(|(_, text)| text.is_some_and(nul)) {
            return Some(((*name).to_string(), NUL));
        }
        self.attributes
            .iter()
            .find(|(name, value)| nul(name) || nul(value))
            .map(|(name, _)| (format!("attributes.{name}"), NUL))
    }

    /// The name to show: the HR display name, else first and last name, else the employee id.
    pub fn shown_name(&self) -> String {
        if let Some(name) = &self.display_name {
            return name.clone();
        }
        let joined = [self.first_name.as_deref(), self.last_name.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        if joined.is_empty() {
            self.employee_id.to_string()
        } else {
            joined
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> HrRecord {
        HrRecord::new(
            EmployeeId::parse("E1").unwrap(),
            Email::parse("ann@example.org"),
        )
    }

    #[test]
    fn normalising_cleans_every_single_line_field_and_keeps_attribute_lines() {
        let mut r = record();
        r.first_name = Some("Ann\r\nMarie".to_string());
        r.display_name = Some("\u{202E}Ann\t".to_string());
        r.department = Some(Department {
            key: TeamKey::parse("CARE").unwrap(),
            name: "Ca\nre".to_string(),
        });
        r.status = Some("\0".to_string());
        r.attributes
            .insert("note".to_string(), "line 1\nline\u{0} 2".to_string());

        let clean = r.normalised();

        assert_eq!(clean.first_name.as_deref(), Some("Ann Marie"));
        assert_eq!(clean.display_name.as_deref(), Some("Ann"));
        assert_eq!(clean.department.unwrap().name, "Ca re");
        assert_eq!(clean.status, None);
        assert_eq!(clean.attributes["note"], "line 1\nline 2");
    }

    #[test]
    fn a_record_built_around_the_parsers_names_its_unstorable_field() {
        let mut nul = record();
        nul.job_title = Some("Nurse\0".to_string());
        let mut long = record();
        long.manager_id = EmployeeId::parse(&"M".repeat(MAX_KEY_BYTES + 1));

        assert_eq!(
            nul.unstorable_field(),
            Some(("job_title".to_string(), "holds a NUL character"))
        );
        assert_eq!(
            long.unstorable_field().map(|(field, _)| field),
            Some("manager_id".to_string())
        );
        assert_eq!(record().unstorable_field(), None);
    }
}
