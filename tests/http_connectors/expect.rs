//! Building the records a test expects: the small constructors every system's tests share.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use hrsync::domain::{Department, Email, EmailError, EmployeeId, HrRecord, TeamKey};

pub fn text(value: &str) -> Option<String> {
    Some(value.to_string())
}

pub fn date(y: i32, m: u32, d: u32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(y, m, d)
}

pub fn department(key: &str, name: &str) -> Option<Department> {
    Some(Department {
        key: TeamKey::parse(key).unwrap(),
        name: name.to_string(),
    })
}

/// A manager (or any other person) by employee id.
pub fn manager(id: &str) -> Option<EmployeeId> {
    Some(EmployeeId::parse(id).unwrap())
}

pub fn attributes(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A record with the id and email (or none); the test sets the rest.
pub fn person<'a>(id: &str, email: impl Into<Option<&'a str>>) -> HrRecord {
    HrRecord::new(
        EmployeeId::parse(id).unwrap(),
        email.into().map_or(Err(EmailError::Missing), Email::parse),
    )
}

pub fn no_email(id: &str) -> HrRecord {
    person(id, None)
}
