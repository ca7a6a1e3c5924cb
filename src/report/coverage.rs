//! How many of a first page's records have a value in each field: what `check --connect` and
//! `fetch` print so that ops see a mapping that reads the wrong field (an email path that
//! finds nothing, a department that is always empty) before a run does.

use std::collections::BTreeMap;

use crate::domain::HrRecord;

/// How many records have a value in each field, in the order of the record; attributes after.
pub fn field_counts(records: &[HrRecord]) -> Vec<(String, usize)> {
    let count = |f: &dyn Fn(&HrRecord) -> bool| records.iter().filter(|r| f(r)).count();
    let mut counts = vec![
        ("employee_id".to_string(), records.len()),
        ("email".to_string(), count(&|r| r.email.is_ok())),
        ("first_name".to_string(), count(&|r| r.first_name.is_some())),
        ("last_name".to_string(), count(&|r| r.last_name.is_some())),
        (
            "display_name".to_string(),
            count(&|r| r.display_name.is_some()),
        ),
        ("department".to_string(), count(&|r| r.department.is_some())),
        ("location".to_string(), count(&|r| r.location.is_some())),
        ("manager_id".to_string(), count(&|r| r.manager_id.is_some())),
        ("job_title".to_string(), count(&|r| r.job_title.is_some())),
        (
            "employment_type".to_string(),
            count(&|r| r.employment_type.is_some()),
        ),
        ("start_date".to_string(), count(&|r| r.start_date.is_some())),
        ("end_date".to_string(), count(&|r| r.end_date.is_some())),
        ("status".to_string(), count(&|r| r.status.is_some())),
    ];
    let mut attributes: BTreeMap<&str, usize> = BTreeMap::new();
    for record in records {
        for name in record.attributes.keys() {
            *attributes.entry(name.as_str()).or_default() += 1;
        }
    }
    counts.extend(
        attributes
            .into_iter()
            .map(|(name, n)| (format!("attributes.{name}"), n)),
    );
    counts
}

/// The counts as lines for a terminal: `    email              97 of 100`, and a note on
/// fields that no record has (an end date is often empty; an email never should be).
pub fn field_counts_text(records: &[HrRecord]) -> String {
    let total = records.len();
    let counts = field_counts(records);
    let width = counts.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    let mut text = format!("  records with a value, per field (of {total}):\n");
    for (name, n) in counts {
        let note = if n == 0 && total > 0 {
            "   none: is this field mapped, and from the right place?"
        } else {
            ""
        };
        text.push_str(&format!("    {name:<width$}  {n:>6}{note}\n"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Email, EmailError, EmployeeId};

    fn record(id: &str, email: Option<&str>) -> HrRecord {
        let email = match email {
            Some(e) => Email::parse(e),
            None => Err(EmailError::Missing),
        };
        HrRecord::new(EmployeeId::parse(id).unwrap(), email)
    }

    #[test]
    fn each_field_counts_the_records_that_have_it() {
        let mut a = record("E1", Some("a@example.org"));
        a.location = Some("Utrecht".to_string());
        a.attributes.insert("employee_number".into(), "100".into());
        let b = record("E2", None);

        let counts = field_counts(&[a, b]);

        let of = |name: &str| counts.iter().find(|(n, _)| n == name).unwrap().1;
        assert_eq!(of("employee_id"), 2);
        assert_eq!(of("email"), 1);
        assert_eq!(of("location"), 1);
        assert_eq!(of("department"), 0);
        assert_eq!(of("attributes.employee_number"), 1);
    }

    #[test]
    fn a_field_no_record_has_is_pointed_out() {
        let text = field_counts_text(&[record("E1", Some("a@example.org"))]);

        assert!(text.contains("of 1"), "{text}");
        let department = text.lines().find(|l| l.contains("department")).unwrap();
        assert!(department.contains("none"), "{department}");
        let email = text.lines().find(|l| l.contains("email")).unwrap();
        assert!(!email.contains("none"), "{email}");
    }
}
