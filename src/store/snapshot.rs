//! The stored form of HR records an incremental connector last knew: JSON, one array per
//! employee id. Only the store reads and writes it.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::domain::{Department, Email, EmailError, EmployeeId, HrRecord, TeamKey};

/// One record as stored. The email is kept as the HR system gave it and parsed again when read,
/// so a record without a usable address stays one.
#[derive(Serialize, Deserialize)]
struct Stored {
    employee_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    department_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    department_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    manager_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    job_title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    employment_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    start_date: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    end_date: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    attributes: BTreeMap<String, String>,
}

impl From<&HrRecord> for Stored {
    fn from(r: &HrRecord) -> Stored {
        Stored {
            employee_id: r.employee_id.as_str().to_string(),
            email: match &r.email {
                Ok(email) => Some(email.as_str().to_string()),
                Err(EmailError::Invalid(text)) => Some(text.clone()),
                Err(EmailError::Missing) => None,
            },
            first_name: r.first_name.clone(),
            last_name: r.last_name.clone(),
            display_name: r.display_name.clone(),
            department_key: r.department.as_ref().map(|d| d.key.as_str().to_string()),
            department_name: r.department.as_ref().map(|d| d.name.clone()),
            location: r.location.clone(),
            manager_id: r.manager_id.as_ref().map(|m| m.as_str().to_string()),
            job_title: r.job_title.clone(),
            employment_type: r.employment_type.clone(),
            start_date: r.start_date,
            end_date: r.end_date,
            status: r.status.clone(),
            attributes: r.attributes.clone(),
        }
    }
}

impl Stored {
    fn record(self) -> Result<HrRecord, String> {
        let employee_id = EmployeeId::parse(&self.employee_id)
            .ok_or_else(|| format!("a stored record has the employee id `{}`", self.employee_id))?;
        let email = match &self.email {
            Some(text) => Email::parse(text),
            None => Err(EmailError::Missing),
        };
        let mut r = HrRecord::new(employee_id, email);
        r.first_name = self.first_name;
        r.last_name = self.last_name;
        r.display_name = self.display_name;
        r.department = match (
            self.department_key.as_deref().and_then(TeamKey::parse),
            self.department_name,
        ) {
            (Some(key), Some(name)) => Some(Department { key, name }),
            _ => None,
        };
        r.location = self.location;
        r.manager_id = self.manager_id.as_deref().and_then(EmployeeId::parse);
        r.job_title = self.job_title;
        r.employment_type = self.employment_type;
        r.start_date = self.start_date;
        r.end_date = self.end_date;
        r.status = self.status;
        r.attributes = self.attributes;
        Ok(r)
    }
}

/// The stored text of the records that share one employee id.
pub(super) fn encode(records: &[&HrRecord]) -> serde_json::Result<String> {
    let stored: Vec<Stored> = records.iter().map(|r| Stored::from(*r)).collect();
    serde_json::to_string(&stored)
}

/// The records of one stored text.
pub(super) fn decode(text: &str) -> Result<Vec<HrRecord>, String> {
    let stored: Vec<Stored> =
        serde_json::from_str(text).map_err(|e| format!("a stored record is not readable: {e}"))?;
    stored.into_iter().map(Stored::record).collect()
}

/// The records grouped by employee id, each group in feed order.
pub(super) fn by_employee(records: &[HrRecord]) -> BTreeMap<&str, Vec<&HrRecord>> {
    let mut groups: BTreeMap<&str, Vec<&HrRecord>> = BTreeMap::new();
    for r in records {
        groups.entry(r.employee_id.as_str()).or_default().push(r);
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_record_reads_back_the_same_including_an_unusable_email() {
        let mut full = HrRecord::new(
            EmployeeId::parse("E1").unwrap(),
            Email::parse("Zoë.de.Vries@Example.org"),
        );
        full.first_name = Some("Zoë".to_string());
        full.department = Some(Department {
            key: TeamKey::parse("WVN").unwrap(),
            name: "Wijkverpleging Noord".to_string(),
        });
        full.manager_id = EmployeeId::parse("M1");
        full.start_date = NaiveDate::from_ymd_opt(2020, 2, 1);
        full.attributes
            .insert("big_number".to_string(), "12345678901".to_string());
        let invalid = HrRecord::new(EmployeeId::parse("E2").unwrap(), Email::parse("<x@y>"));
        let missing = HrRecord::new(EmployeeId::parse("E3").unwrap(), Err(EmailError::Missing));

        for r in [full, invalid, missing] {
            let back = decode(&encode(&[&r]).unwrap()).unwrap();
            assert_eq!(back, vec![r]);
        }
    }
}
