//! The normalised HR record that every connector emits.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use super::{Email, EmailError, EmployeeId, TeamKey};

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

/// Trims a text and turns an empty one into `None`; connectors use it for every optional field.
pub fn non_empty(raw: &str) -> Option<String> {
    let text = raw.trim();
    (!text.is_empty()).then(|| text.to_string())
}
