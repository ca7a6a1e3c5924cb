//! Run reports and account lists as admins read them, and fetched HR records as ops check a
//! connector's mapping with: text, JSON and CSV.
//!
//! The JSON shape is a public contract (documented in README.md): its own wire types live
//! here, apart from the domain types, so the domain can change without breaking readers.

mod accounts;
mod admin;
mod coverage;
mod run_text;

use std::fmt::Write as _;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::domain::{ChangeLine, HrRecord, RunReport, RunSummary};
use crate::planner::ChangeKind;

pub use accounts::{mail_problem_text, users_csv, users_json, users_table, users_xlsx};
pub use admin::{
    audit_csv, audit_json, audit_line, audit_table, roles_json, roles_table, teams_json,
    teams_table,
};
pub use coverage::{field_counts, field_counts_text};
pub use run_text::{Tense, text, text_close, text_head, text_kind, text_line};

#[derive(Serialize)]
struct ReportJson<'a> {
    run_id: i64,
    organisation: &'a str,
    connector: &'a str,
    trigger: &'a str,
    mode: &'a str,
    status: &'a str,
    as_of: String,
    started_at: String,
    finished_at: Option<String>,
    duration_ms: Option<i64>,
    records_fetched: i64,
    fetch: Option<&'static str>,
    scheduled_for: Option<String>,
    counts: serde_json::Map<String, serde_json::Value>,
    errors: Vec<ErrorJson<'a>>,
    // Last, so a report can be written out a line at a time (`json_open`, `json_change`).
    changes: Vec<ChangeJson<'a>>,
}

#[derive(Serialize)]
struct ChangeJson<'a> {
    kind: &'a str,
    employee_id: Option<&'a str>,
    email: Option<&'a str>,
    field: Option<&'a str>,
    old: Option<&'a str>,
    new: Option<&'a str>,
    reason: &'a str,
}

#[derive(Serialize)]
struct ErrorJson<'a> {
    code: &'a str,
    message: &'a str,
}

pub(crate) fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The kinds a run has lines of, with their counts, in kind order: `3 invite, 1 deactivate`.
/// Empty when the run has no change lines.
pub fn counts_summary(summary: &RunSummary) -> String {
    ChangeKind::ALL
        .iter()
        .filter_map(|k| {
            summary
                .counts
                .get(k.as_str())
                .map(|n| format!("{n} {}", k.as_str()))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every change kind with its count, zeros included, so readers can rely on the keys.
fn counts_json(summary: &RunSummary) -> serde_json::Map<String, serde_json::Value> {
    ChangeKind::ALL
        .iter()
        .map(|k| {
            let n = summary.counts.get(k.as_str()).copied().unwrap_or(0);
            (k.as_str().to_string(), serde_json::Value::from(n))
        })
        .collect()
}

pub(crate) fn duration_ms(s: &RunSummary) -> Option<i64> {
    s.finished_at.map(|f| (f - s.started_at).num_milliseconds())
}

/// The report as JSON, in the documented shape.
pub fn json(report: &RunReport) -> String {
    let mut out = json_open(report);
    for (n, c) in report.changes.iter().enumerate() {
        out.push_str(&json_change(c, n == 0));
    }
    out.push_str(json_close(!report.changes.is_empty()));
    out
}

/// The report's JSON up to its change lines: a report of any size is written as this, then
/// [`json_change`] for each line, then [`json_close`].
pub fn json_open(report: &RunReport) -> String {
    let s = &report.summary;
    let doc = ReportJson {
        run_id: s.id,
        organisation: &s.organisation,
        connector: &s.connector,
        trigger: s.trigger.as_str(),
        mode: s.mode.as_str(),
        status: s.status.as_str(),
        as_of: time(s.as_of),
        started_at: time(s.started_at),
        finished_at: s.finished_at.map(time),
        duration_ms: duration_ms(s),
        records_fetched: s.records_fetched,
        fetch: s.fetch.map(|f| f.as_str()),
        scheduled_for: s.scheduled_for.map(time),
        counts: counts_json(s),
        errors: report
            .errors
            .iter()
            .map(|e| ErrorJson {
                code: &e.code,
                message: &e.message,
            })
            .collect(),
        changes: Vec::new(),
    };
    let mut out = serde_json::to_string_pretty(&doc).unwrap_or_default();
    // The pretty form ends with `"changes": []` and the closing brace.
    if let Some(open) = out.strip_suffix("[]\n}").map(str::len) {
        out.truncate(open);
        out.push('[');
    }
    out
}

/// One change line of [`json_open`]'s array, with the separator before it.
pub fn json_change(c: &ChangeLine, first: bool) -> String {
    let line = ChangeJson {
        kind: &c.kind,
        employee_id: c.employee_id.as_deref(),
        email: c.email.as_deref(),
        field: c.field.as_deref(),
        old: c.old.as_deref(),
        new: c.new.as_deref(),
        reason: &c.reason,
    };
    let pretty = serde_json::to_string_pretty(&line).unwrap_or_default();
    // A JSON string holds no raw line break, so the lines of the pretty form are its own.
    let mut out = String::from(if first { "\n" } else { ",\n" });
    for (n, text) in pretty.lines().enumerate() {
        if n > 0 {
            out.push('\n');
        }
        out.push_str("    ");
        out.push_str(text);
    }
    out
}

/// What ends [`json_open`]'s report, after `any` change lines.
pub fn json_close(any: bool) -> &'static str {
    if any { "\n  ]\n}" } else { "]\n}" }
}

/// A cell as it may go into a CSV file that people open in a spreadsheet: a value from HR
/// that starts like a formula (`=`, `+`, `-`, `@`) is prefixed with `'` so it stays text.
fn cell(value: &str) -> std::borrow::Cow<'_, str> {
    if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}").into()
    } else {
        value.into()
    }
}

/// The report's changes as CSV, one line per change.
pub fn csv(report: &RunReport) -> anyhow::Result<String> {
    let mut w = csv_writer(Vec::new())?;
    let run_id = report.summary.id.to_string();
    for c in &report.changes {
        csv_line(&mut w, &run_id, c)?;
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}

/// A CSV writer of change lines with its header written: lines of any number are written to
/// it with [`csv_line`].
pub fn csv_writer<W: std::io::Write>(out: W) -> anyhow::Result<::csv::Writer<W>> {
    let mut w = ::csv::Writer::from_writer(out);
    w.write_record([
        "run_id",
        "kind",
        "employee_id",
        "email",
        "field",
        "old",
        "new",
        "reason",
    ])?;
    Ok(w)
}

/// One change line of run `run_id` (its id as written) as CSV.
pub fn csv_line<W: std::io::Write>(
    w: &mut ::csv::Writer<W>,
    run_id: &str,
    c: &ChangeLine,
) -> anyhow::Result<()> {
    w.write_record([
        run_id,
        &c.kind,
        &cell(c.employee_id.as_deref().unwrap_or("")),
        &cell(c.email.as_deref().unwrap_or("")),
        c.field.as_deref().unwrap_or(""),
        &cell(c.old.as_deref().unwrap_or("")),
        &cell(c.new.as_deref().unwrap_or("")),
        &cell(&c.reason),
    ])?;
    Ok(())
}

/// The run list as a text table, newest first.
pub fn runs_table(runs: &[RunSummary]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:>5}  {:<20}  {:<20}  {:<5}  {:<9}  {:<20}  {:>7}  changes",
        "run", "started", "connector", "mode", "status", "organisation", "records"
    );
    for r in runs {
        let changes = counts_summary(r);
        let _ = writeln!(
            out,
            "{:>5}  {:<20}  {:<20}  {:<5}  {:<9}  {:<20}  {:>7}  {}",
            r.id,
            time(r.started_at),
            r.connector,
            r.mode.as_str(),
            r.status.as_str(),
            r.organisation,
            r.records_fetched,
            changes
        );
    }
    out
}

/// Runs without their changes, as a JSON array of the report's summary fields.
pub fn runs_json(runs: &[RunSummary]) -> String {
    let docs: Vec<serde_json::Value> = runs
        .iter()
        .map(|s| {
            serde_json::json!({
                "run_id": s.id,
                "organisation": s.organisation,
                "connector": s.connector,
                "trigger": s.trigger.as_str(),
                "mode": s.mode.as_str(),
                "status": s.status.as_str(),
                "as_of": time(s.as_of),
                "started_at": time(s.started_at),
                "finished_at": s.finished_at.map(time),
                "duration_ms": duration_ms(s),
                "records_fetched": s.records_fetched,
                "fetch": s.fetch.map(|f| f.as_str()),
                "scheduled_for": s.scheduled_for.map(time),
                "counts": counts_json(s),
            })
        })
        .collect();
    serde_json::to_string_pretty(&docs).unwrap_or_default()
}

/// The number of actionable changes of a run (everything but scheduled, quarantine and
/// conflict lines).
pub fn actionable_count(summary: &RunSummary) -> i64 {
    summary
        .counts
        .iter()
        .filter(|(kind, _)| ChangeKind::parse(kind).is_some_and(ChangeKind::is_actionable))
        .map(|(_, n)| n)
        .sum()
}

/// One normalised HR record as JSON, as `hrsync fetch --format json` writes it.
fn record_json(r: &HrRecord) -> serde_json::Value {
    let email = match &r.email {
        Ok(email) => serde_json::json!(email.as_str()),
        Err(_) => serde_json::Value::Null,
    };
    let email_problem = r.email.as_ref().err().map(|e| e.to_string());
    serde_json::json!({
        "employee_id": r.employee_id.as_str(),
        "email": email,
        "email_problem": email_problem,
        "first_name": r.first_name,
        "last_name": r.last_name,
        "display_name": r.display_name,
        "department_code": r.department.as_ref().map(|d| d.key.as_str()),
        "department": r.department.as_ref().map(|d| d.name.as_str()),
        "location": r.location,
        "manager_id": r.manager_id.as_ref().map(|m| m.as_str()),
        "job_title": r.job_title,
        "employment_type": r.employment_type,
        "start_date": r.start_date,
        "end_date": r.end_date,
        "status": r.status,
        "attributes": r.attributes,
    })
}

/// Normalised HR records as a JSON array.
pub fn records_json(records: &[HrRecord]) -> String {
    let docs: Vec<_> = records.iter().map(record_json).collect();
    serde_json::to_string_pretty(&docs).unwrap_or_default()
}

/// Normalised HR records as a table of the fields a mapping is usually checked by.
pub fn records_table(records: &[HrRecord]) -> String {
    let rows: Vec<[String; 8]> = records
        .iter()
        .map(|r| {
            [
                r.employee_id.to_string(),
                match &r.email {
                    Ok(e) => e.to_string(),
                    Err(e) => format!("({e})"),
                },
                r.implied_display_name().unwrap_or_default(),
                r.department
                    .as_ref()
                    .map(|d| format!("{} ({})", d.name, d.key))
                    .unwrap_or_default(),
                r.manager_id
                    .as_ref()
                    .map(|m| m.to_string())
                    .unwrap_or_default(),
                r.start_date.map(|d| d.to_string()).unwrap_or_default(),
                r.end_date.map(|d| d.to_string()).unwrap_or_default(),
                r.status.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let header = [
        "EMPLOYEE",
        "EMAIL",
        "NAME",
        "DEPARTMENT",
        "MANAGER",
        "START",
        "END",
        "STATUS",
    ];
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    let mut out = line(header.to_vec());
    for row in &rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out.push_str(&format!("{} records\n", records.len()));
    out
}

/// A record with its personal fields masked, for `hrsync check --connect`: which fields the
/// mapping fills, without showing who the person is.
pub fn redacted_record(r: &HrRecord) -> String {
    fn mask(text: &str) -> String {
        match text.chars().next() {
            Some(first) => format!("{first}…"),
            None => String::new(),
        }
    }
    let mut lines: Vec<(String, String)> = vec![
        ("employee_id".into(), r.employee_id.to_string()),
        (
            "email".into(),
            match &r.email {
                Ok(e) => match e.as_str().split_once('@') {
                    Some((local, domain)) => format!("{}@{domain}", mask(local)),
                    None => mask(e.as_str()),
                },
                Err(e) => format!("({e})"),
            },
        ),
    ];
    let mut push = |name: &str, value: Option<String>| {
        if let Some(v) = value {
            lines.push((name.to_string(), v));
        }
    };
    push("first_name", r.first_name.as_deref().map(mask));
    push("last_name", r.last_name.as_deref().map(mask));
    push("display_name", r.display_name.as_deref().map(mask));
    push(
        "department",
        r.department
            .as_ref()
            .map(|d| format!("{} ({})", d.name, d.key)),
    );
    push("location", r.location.clone());
    push("manager_id", r.manager_id.as_ref().map(|m| m.to_string()));
    push("job_title", r.job_title.clone());
    push("employment_type", r.employment_type.clone());
    push("start_date", r.start_date.map(|d| d.to_string()));
    push("end_date", r.end_date.map(|d| d.to_string()));
    push("status", r.status.clone());
    for (name, value) in &r.attributes {
        push(&format!("attributes.{name}"), Some(mask(value)));
    }
    lines
        .iter()
        .map(|(k, v)| format!("    {k}: {v}\n"))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::{TimeZone, Utc};
    use proptest::prelude::*;

    use super::*;
    use crate::domain::{ChangeLine, RunError, RunMode, RunStatus, Trigger};
    use crate::store::MailProblem;

    /// Text as hostile as HR or a mail server can make it.
    fn hostile() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "[ \t\r\n\",;=+@\x00\u{202E}\u{2028}a-zé]{0,30}",
            Just("y".repeat(40_000)),
        ]
    }

    fn report(texts: &[String]) -> RunReport {
        let at = Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap();
        let text = |i: usize| texts[i % texts.len()].clone();
        RunReport {
            summary: RunSummary {
                id: 1,
                organisation: text(0),
                connector: text(1),
                trigger: Trigger::Command,
                mode: RunMode::Apply,
                status: RunStatus::Held,
                as_of: at,
                started_at: at,
                finished_at: Some(at),
                records_fetched: 3,
                fetch: None,
                scheduled_for: None,
                counts: BTreeMap::from([(text(2), 1), ("invite".to_string(), 2)]),
            },
            changes: (0..texts.len())
                .map(|i| ChangeLine {
                    kind: text(i),
                    employee_id: Some(text(i + 1)),
                    email: Some(text(i + 2)),
                    field: None,
                    old: Some(text(i + 3)),
                    new: Some(text(i + 4)),
                    reason: text(i + 5),
                })
                .collect(),
            errors: vec![RunError {
                code: "HR201".to_string(),
                message: text(3),
            }],
        }
    }

    use crate::store::UserRow;

    fn user(texts: &[String]) -> UserRow {
        let text = |i: usize| texts[i % texts.len()].clone();
        UserRow {
            account_id: 1,
            organisation: text(0),
            email: text(1),
            display_name: Some(text(2)),
            employee_id: Some(text(3)),
            status: "invited".to_string(),
            connector: Some(text(4)),
            job_title: Some(text(5)),
            teams: vec![text(6), text(7)],
            coach_of: vec![text(7)],
            roles: vec![text(8)],
            created_at: Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap(),
            activated_at: None,
            last_login_at: None,
            invitation: Some("not sent"),
            mail_problem: Some(MailProblem {
                kind: "activation".to_string(),
                error: text(9),
                undeliverable: true,
            }),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn report_writers_take_any_text_and_csv_reads_back_row_for_row(
            texts in proptest::collection::vec(hostile(), 1..6)
        ) {
            let report = report(&texts);

            let json: serde_json::Value = serde_json::from_str(&json(&report)).unwrap();
            let written = csv(&report).unwrap();
            let _ = text(&report);

            prop_assert_eq!(json["changes"].as_array().map(Vec::len), Some(texts.len()));
            let rows = ::csv::Reader::from_reader(written.as_bytes()).records().count();
            prop_assert_eq!(rows, texts.len());
        }

        #[test]
        fn account_writers_take_any_text(texts in proptest::collection::vec(hostile(), 1..6)) {
            let users = [user(&texts), user(&texts)];

            let written = users_csv(&users).unwrap();
            let xlsx = users_xlsx(&users, "nl");
            let json: serde_json::Value = serde_json::from_str(&users_json(&users)).unwrap();
            let _ = users_table(&users);

            let rows = ::csv::Reader::from_reader(written.as_bytes()).records().count();
            prop_assert_eq!(rows, 2);
            prop_assert_eq!(json.as_array().map(Vec::len), Some(2));
            // Excel refuses cells over 32,767 characters: a clear error, not a panic.
            prop_assert!(xlsx.is_ok() || texts.iter().any(|t| t.chars().count() > 32_767));
        }
    }

    #[test]
    fn formula_like_values_stay_text_in_csv() {
        assert_eq!(cell("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(cell("Zoë Janssen"), "Zoë Janssen");
    }
}
