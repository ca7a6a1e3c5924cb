//! What administration by hand shows: a person's audit trail, the teams with their members
//! and coaches, and the roles, as text tables and JSON (wire types of their own, like the run
//! reports').

use std::fmt::Write as _;

use serde::Serialize;

use crate::domain::AuditEvent;
use crate::store::{RoleListing, TeamListing, TeamPerson};

use super::time;

#[derive(Serialize)]
struct AuditJson<'a> {
    id: i64,
    at: String,
    actor: &'a str,
    via: &'static str,
    action: &'static str,
    organisation: Option<&'a str>,
    email: Option<&'a str>,
    run_id: Option<i64>,
    subject: Option<&'a str>,
    old_value: Option<&'a str>,
    new_value: Option<&'a str>,
}

fn audit_doc(e: &AuditEvent) -> AuditJson<'_> {
    AuditJson {
        id: e.id,
        at: time(e.at),
        actor: &e.actor,
        via: e.via.as_str(),
        action: e.action.as_str(),
        organisation: e.organisation.as_deref(),
        email: e.email.as_deref(),
        run_id: e.run_id,
        subject: e.subject.as_deref(),
        old_value: e.old_value.as_deref(),
        new_value: e.new_value.as_deref(),
    }
}

/// The trail as a JSON array, oldest first.
pub fn audit_json(events: &[AuditEvent]) -> String {
    let docs: Vec<_> = events.iter().map(audit_doc).collect();
    serde_json::to_string_pretty(&docs).unwrap_or_default()
}

/// The trail as CSV, one line per entry: `id,at,actor,via,action,organisation,email,run_id,
/// subject,old_value,new_value`.
pub fn audit_csv(events: &[AuditEvent]) -> anyhow::Result<String> {
    let mut w = ::csv::Writer::from_writer(Vec::new());
    w.write_record([
        "id",
        "at",
        "actor",
        "via",
        "action",
        "organisation",
        "email",
        "run_id",
        "subject",
        "old_value",
        "new_value",
    ])?;
    for e in events {
        let text = |v: &Option<String>| super::cell(v.as_deref().unwrap_or("")).into_owned();
        w.write_record([
            e.id.to_string(),
            time(e.at),
            super::cell(&e.actor).into_owned(),
            e.via.as_str().to_string(),
            e.action.as_str().to_string(),
            text(&e.organisation),
            text(&e.email),
            e.run_id.map(|r| r.to_string()).unwrap_or_default(),
            text(&e.subject),
            text(&e.old_value),
            text(&e.new_value),
        ])?;
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}

/// One line of the trail in words: "granted a role `admin`", "changed a field `job_title`:
/// Nurse → Head nurse".
pub fn audit_line(e: &AuditEvent) -> String {
    e.describe()
}

/// The trail as a table, oldest first.
pub fn audit_table(events: &[AuditEvent]) -> String {
    let mut out = String::new();
    if events.is_empty() {
        out.push_str("Nothing was done to this person by hand.\n");
        return out;
    }
    let _ = writeln!(
        out,
        "{:<20}  {:<20}  {:<14}  what",
        "when", "who", "organisation"
    );
    for e in events {
        let _ = writeln!(
            out,
            "{:<20}  {:<20}  {:<14}  {}",
            time(e.at),
            format!("{} ({})", e.actor, e.via.as_str()),
            e.organisation.as_deref().unwrap_or(""),
            audit_line(e)
        );
    }
    out
}

#[derive(Serialize)]
struct TeamJson<'a> {
    key: &'a str,
    name: &'a str,
    /// The connector that made the team; null for one made by hand.
    connector: Option<&'a str>,
    members: Vec<PersonJson<'a>>,
    coaches: Vec<PersonJson<'a>>,
}

#[derive(Serialize)]
struct PersonJson<'a> {
    email: &'a str,
    display_name: Option<&'a str>,
    /// The connector that made the link; null for one made by hand.
    connector: Option<&'a str>,
}

fn person_doc(p: &TeamPerson) -> PersonJson<'_> {
    PersonJson {
        email: &p.email,
        display_name: p.display_name.as_deref(),
        connector: p.connector.as_deref(),
    }
}

/// The teams as a JSON array, by key.
pub fn teams_json(teams: &[TeamListing]) -> String {
    let docs: Vec<_> = teams
        .iter()
        .map(|t| TeamJson {
            key: &t.key,
            name: &t.name,
            connector: t.connector.as_deref(),
            members: t.members.iter().map(person_doc).collect(),
            coaches: t.coaches.iter().map(person_doc).collect(),
        })
        .collect();
    serde_json::to_string_pretty(&docs).unwrap_or_default()
}

/// A member or coach as a list shows them: the address, and `(by hand)` for a link made by
/// hand.
fn person_text(p: &TeamPerson) -> String {
    match &p.connector {
        Some(_) => p.email.clone(),
        None => format!("{} (by hand)", p.email),
    }
}

/// The teams, each with its coaches and members.
pub fn teams_table(teams: &[TeamListing]) -> String {
    let mut out = String::new();
    if teams.is_empty() {
        out.push_str("No teams.\n");
    }
    for t in teams {
        let made = match &t.connector {
            Some(c) => format!("from connector {c}"),
            None => "made by hand".to_string(),
        };
        let _ = writeln!(
            out,
            "{} · {} · {made} · {} members",
            t.key,
            t.name,
            t.members.len()
        );
        let coaches: Vec<String> = t.coaches.iter().map(person_text).collect();
        let members: Vec<String> = t.members.iter().map(person_text).collect();
        let none = || "(none)".to_string();
        let _ = writeln!(
            out,
            "  coaches: {}",
            Some(coaches.join(", "))
                .filter(|s| !s.is_empty())
                .unwrap_or_else(none)
        );
        let _ = writeln!(
            out,
            "  members: {}",
            Some(members.join(", "))
                .filter(|s| !s.is_empty())
                .unwrap_or_else(none)
        );
    }
    out
}

#[derive(Serialize)]
struct RoleJson<'a> {
    name: &'a str,
    by_rule: i64,
    by_hand: i64,
}

/// The roles as a JSON array, by name.
pub fn roles_json(roles: &[RoleListing]) -> String {
    let docs: Vec<_> = roles
        .iter()
        .map(|r| RoleJson {
            name: &r.name,
            by_rule: r.by_rule,
            by_hand: r.by_hand,
        })
        .collect();
    serde_json::to_string_pretty(&docs).unwrap_or_default()
}

/// The roles, with how many hold each by a connector's rule and by hand.
pub fn roles_table(roles: &[RoleListing]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{:<24}  {:>8}  {:>8}", "role", "by rule", "by hand");
    for r in roles {
        let _ = writeln!(out, "{:<24}  {:>8}  {:>8}", r.name, r.by_rule, r.by_hand);
    }
    out
}
