//! The account list as people and programs read it: a text table (`hrsync users`), JSON (the
//! CLI and `/api/accounts`), CSV with stable snake_case columns, and an Excel workbook with
//! headers in the organisation's language and real date cells.

use std::fmt::Write as _;

use serde::Serialize;

use crate::store::UserRow;

use super::{cell, time};

/// The columns of a CSV export, in order (new columns are added at the end).
const CSV_COLUMNS: [&str; 16] = [
    "organisation",
    "email",
    "display_name",
    "employee_id",
    "status",
    "connector",
    "job_title",
    "teams",
    "roles",
    "created_at",
    "activated_at",
    "mail_problem",
    "coach_of",
    "can_log_in",
    "last_login_at",
    "invitation",
];

/// A person's mail problem as one cell: `undeliverable activation: 550 …` or
/// `retrying activation: …`.
pub fn mail_problem_text(u: &UserRow) -> String {
    u.mail_problem
        .as_ref()
        .map(|m| {
            let state = if m.undeliverable {
                "undeliverable"
            } else {
                "retrying"
            };
            format!("{state} {}: {}", m.kind, m.error)
        })
        .unwrap_or_default()
}

#[derive(Serialize)]
struct UserJson<'a> {
    organisation: &'a str,
    email: &'a str,
    display_name: Option<&'a str>,
    employee_id: Option<&'a str>,
    status: &'a str,
    can_log_in: bool,
    connector: Option<&'a str>,
    job_title: Option<&'a str>,
    teams: &'a [String],
    coach_of: &'a [String],
    roles: &'a [String],
    created_at: String,
    activated_at: Option<String>,
    last_login_at: Option<String>,
    invitation: Option<&'a str>,
    mail_problem: Option<MailProblemJson<'a>>,
}

/// A person's mail that did not go out, in the account JSON.
#[derive(Serialize)]
struct MailProblemJson<'a> {
    kind: &'a str,
    error: &'a str,
    /// Refused for good: not tried again.
    undeliverable: bool,
}

fn user_json(u: &UserRow) -> UserJson<'_> {
    UserJson {
        organisation: &u.organisation,
        email: &u.email,
        display_name: u.display_name.as_deref(),
        employee_id: u.employee_id.as_deref(),
        status: &u.status,
        can_log_in: u.can_log_in(),
        connector: u.connector.as_deref(),
        job_title: u.job_title.as_deref(),
        teams: &u.teams,
        coach_of: &u.coach_of,
        roles: &u.roles,
        created_at: time(u.created_at),
        activated_at: u.activated_at.map(time),
        last_login_at: u.last_login_at.map(time),
        invitation: u.invitation,
        mail_problem: u.mail_problem.as_ref().map(|m| MailProblemJson {
            kind: &m.kind,
            error: &m.error,
            undeliverable: m.undeliverable,
        }),
    }
}

pub fn users_json(users: &[UserRow]) -> String {
    let docs: Vec<_> = users.iter().map(user_json).collect();
    serde_json::to_string_pretty(&docs).unwrap_or_default()
}

pub fn users_csv(users: &[UserRow]) -> anyhow::Result<String> {
    let mut w = ::csv::Writer::from_writer(Vec::new());
    w.write_record(CSV_COLUMNS)?;
    for u in users {
        w.write_record([
            u.organisation.as_str(),
            &cell(&u.email),
            &cell(u.display_name.as_deref().unwrap_or("")),
            &cell(u.employee_id.as_deref().unwrap_or("")),
            &u.status,
            u.connector.as_deref().unwrap_or(""),
            &cell(u.job_title.as_deref().unwrap_or("")),
            &cell(&u.teams.join("; ")),
            &cell(&u.roles.join("; ")),
            &time(u.created_at),
            &u.activated_at.map(time).unwrap_or_default(),
            &cell(&mail_problem_text(u)),
            &cell(&u.coach_of.join("; ")),
            if u.can_log_in() { "true" } else { "false" },
            &u.last_login_at.map(time).unwrap_or_default(),
            u.invitation.unwrap_or(""),
        ])?;
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}

/// The Excel headers, in English and Dutch, in the workbook's column order.
fn xlsx_headers(language: &str) -> [&'static str; 16] {
    if language == "nl" {
        [
            "Organisatie",
            "Naam",
            "E-mailadres",
            "Personeelsnummer",
            "Functie",
            "Rollen",
            "Teams",
            "Coach van",
            "Status",
            "Kan inloggen",
            "Aangemaakt",
            "Geactiveerd",
            "Laatst ingelogd",
            "Bron",
            "Uitnodiging",
            "Mailprobleem",
        ]
    } else {
        [
            "Organisation",
            "Name",
            "Email",
            "Employee id",
            "Job title",
            "Roles",
            "Teams",
            "Coach of",
            "Status",
            "Can log in",
            "Created",
            "Activated",
            "Last login",
            "Source",
            "Invitation",
            "Mail problem",
        ]
    }
}

/// Accounts as an Excel workbook (one sheet, a header row in `language`, `en` or `nl`,
/// frozen and filtered; times as date cells in UTC).
pub fn users_xlsx(users: &[UserRow], language: &str) -> anyhow::Result<Vec<u8>> {
    use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};
    let mut workbook = Workbook::new();
    let sheet = workbook.add_worksheet();
    sheet.set_name("Accounts")?;
    let bold = Format::new().set_bold();
    let date = Format::new().set_num_format("yyyy-mm-dd hh:mm");
    let headers = xlsx_headers(language);
    for (col, name) in headers.iter().enumerate() {
        sheet.write_string_with_format(0, col as u16, *name, &bold)?;
    }
    let (yes, no, by_hand) = if language == "nl" {
        ("ja", "nee", "handmatig")
    } else {
        ("yes", "no", "by hand")
    };
    for (i, u) in users.iter().enumerate() {
        let row = i as u32 + 1;
        let texts = [
            (0, u.organisation.clone()),
            (1, u.display_name.clone().unwrap_or_default()),
            (2, u.email.clone()),
            (3, u.employee_id.clone().unwrap_or_default()),
            (4, u.job_title.clone().unwrap_or_default()),
            (5, u.roles.join("; ")),
            (6, u.teams.join("; ")),
            (7, u.coach_of.join("; ")),
            (8, u.status.clone()),
            (9, if u.can_log_in() { yes } else { no }.to_string()),
            (
                13,
                u.connector.clone().unwrap_or_else(|| by_hand.to_string()),
            ),
            (14, u.invitation.unwrap_or_default().to_string()),
            (15, mail_problem_text(u)),
        ];
        for (col, value) in texts {
            // Written as strings: a cell is never read as a formula.
            sheet.write_string(row, col, &value)?;
        }
        for (col, at) in [
            (10, Some(u.created_at)),
            (11, u.activated_at),
            (12, u.last_login_at),
        ] {
            if let Some(at) = at {
                let cell =
                    ExcelDateTime::parse_from_str(&at.format("%Y-%m-%dT%H:%M:%S").to_string())?;
                sheet.write_datetime_with_format(row, col, &cell, &date)?;
            }
        }
    }
    sheet.set_freeze_panes(1, 0)?;
    sheet.autofilter(0, 0, users.len() as u32, headers.len() as u16 - 1)?;
    sheet.autofit();
    Ok(workbook.save_to_buffer()?)
}

pub fn users_table(users: &[UserRow]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<14}  {:<34}  {:<26}  {:<8}  {:<11}  {:<24}  roles",
        "organisation", "email", "name", "id", "status", "teams"
    );
    for u in users {
        let mut teams = u.teams.join(", ");
        if !u.coach_of.is_empty() {
            if !teams.is_empty() {
                teams.push_str(", ");
            }
            teams.push_str(&format!("coach of {}", u.coach_of.join(", ")));
        }
        let _ = writeln!(
            out,
            "{:<14}  {:<34}  {:<26}  {:<8}  {:<11}  {:<24}  {}",
            u.organisation,
            u.email,
            u.display_name.as_deref().unwrap_or(""),
            u.employee_id.as_deref().unwrap_or(""),
            u.status,
            teams,
            u.roles.join(", ")
        );
        if u.mail_problem.is_some() {
            let _ = writeln!(out, "{:<14}  mail: {}", "", mail_problem_text(u));
        }
    }
    let _ = writeln!(out, "{} account(s)", users.len());
    out
}
