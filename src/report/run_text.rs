//! A run's report as text, read the way `terraform plan` and `apply` are read: headings and a
//! closing line in the future tense for what a dry run or a held run would do, in the past
//! tense for what an applied run did; informational lines (scheduled, quarantined, conflicts)
//! told apart from work; and for a held or failed run, the next command to type.

use std::fmt::Write as _;

use crate::domain::{ChangeLine, RunMode, RunReport, RunStatus, RunSummary};
use crate::planner::ChangeKind;

use super::{duration_ms, time};

/// Whether a run's changes are told as still to happen or as done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tense {
    /// A dry run, a held run, or one still running: nothing of it is applied (yet).
    Future,
    /// An applied run (at once or on approval).
    Past,
    /// A failed run: its plan was not applied and will not be.
    NotApplied,
}

impl Tense {
    pub fn of(summary: &RunSummary) -> Tense {
        match (summary.mode, summary.status) {
            (_, RunStatus::Failed) => Tense::NotApplied,
            (RunMode::Apply, RunStatus::Succeeded | RunStatus::Approved) => Tense::Past,
            _ => Tense::Future,
        }
    }
}

/// What a kind of change means, as a heading: to come, and done.
fn heading(kind: ChangeKind) -> (&'static str, &'static str) {
    match kind {
        ChangeKind::Invite => (
            "will be invited: an account, and an activation email unless invitations are off",
            "invited: account created, activation email queued unless invitations are off",
        ),
        ChangeKind::Link => (
            "will be linked to the account they already have",
            "linked to the account they already have",
        ),
        ChangeKind::Update => (
            "HR's value will overwrite the directory's",
            "HR's value overwrote the directory's",
        ),
        ChangeKind::EmailChange => (
            "will change address; the old and the new address are told",
            "changed address; the old and the new address were told",
        ),
        ChangeKind::Deactivate => (
            "will be deactivated: sign-in ends, all data is kept",
            "deactivated: sign-in ended, all data kept",
        ),
        ChangeKind::Reactivate => (
            "will be reactivated on the account they had",
            "reactivated on the account they had",
        ),
        ChangeKind::TeamJoin => ("will join a team", "joined a team"),
        ChangeKind::TeamLeave => ("will leave a team", "left a team"),
        ChangeKind::CoachAssign => ("will coach a team", "made coach of a team"),
        ChangeKind::CoachUnassign => ("will stop coaching a team", "stopped coaching a team"),
        ChangeKind::RoleGrant => ("will be granted a role", "granted a role"),
        ChangeKind::RoleRevoke => ("will lose a role", "lost a role"),
        ChangeKind::Scheduled => (
            "not yet: invited on a later day; nothing to do now",
            "not yet: invited on a later day; nothing to do now",
        ),
        ChangeKind::Quarantine => (
            "skipped: nothing is applied for them until HR's record is fixed",
            "skipped: nothing was applied for them until HR's record is fixed",
        ),
        ChangeKind::Conflict => (
            "skipped: in conflict with the directory; nothing is applied for them",
            "skipped: in conflict with the directory; nothing was applied for them",
        ),
    }
}

/// A count of a kind in the closing line: `25 to invite`, `25 invited`.
fn counted(kind: ChangeKind, n: i64, tense: Tense) -> String {
    let (to_come, done) = match kind {
        ChangeKind::Invite => ("to invite", "invited"),
        ChangeKind::Link => ("to link", "linked"),
        ChangeKind::Update => ("fields to update", "fields updated"),
        ChangeKind::EmailChange => ("addresses to change", "addresses changed"),
        ChangeKind::Deactivate => ("to deactivate", "deactivated"),
        ChangeKind::Reactivate => ("to reactivate", "reactivated"),
        ChangeKind::TeamJoin => ("team joins", "team joins"),
        ChangeKind::TeamLeave => ("team leaves", "team leaves"),
        ChangeKind::CoachAssign => ("coaches to assign", "coaches assigned"),
        ChangeKind::CoachUnassign => ("coaches to unassign", "coaches unassigned"),
        ChangeKind::RoleGrant => ("roles to grant", "roles granted"),
        ChangeKind::RoleRevoke => ("roles to revoke", "roles revoked"),
        ChangeKind::Scheduled => ("scheduled", "scheduled"),
        ChangeKind::Quarantine => ("quarantined", "quarantined"),
        ChangeKind::Conflict if n == 1 => ("conflict", "conflict"),
        ChangeKind::Conflict => ("conflicts", "conflicts"),
    };
    format!("{n} {}", if tense == Tense::Past { done } else { to_come })
}

/// The counts of a run's kinds, actionable ones and informational ones apart, in kind order.
fn counts_of(summary: &RunSummary, tense: Tense) -> (Vec<String>, Vec<String>) {
    let mut work = Vec::new();
    let mut info = Vec::new();
    for kind in ChangeKind::ALL {
        let n = summary.counts.get(kind.as_str()).copied().unwrap_or(0);
        if n == 0 {
            continue;
        }
        if kind.is_actionable() {
            work.push(counted(kind, n, tense));
        } else {
            info.push(counted(kind, n, tense));
        }
    }
    (work, info)
}

/// The report as text: a summary, then the change lines it holds, grouped by kind, then the
/// closing line. A report that holds only the first lines of a kind (from
/// `Store::run_report_head`) says how many more there are and how to list them all.
pub fn text(report: &RunReport) -> String {
    let tense = Tense::of(&report.summary);
    let mut out = text_head(report);
    for kind in ChangeKind::ALL {
        let lines: Vec<&ChangeLine> = report
            .changes
            .iter()
            .filter(|c| c.kind == kind.as_str())
            .collect();
        let shown = i64::try_from(lines.len()).unwrap_or(i64::MAX);
        let count = report
            .summary
            .counts
            .get(kind.as_str())
            .copied()
            .unwrap_or(0)
            .max(shown);
        if count == 0 {
            continue;
        }
        out.push_str(&text_kind(kind.as_str(), count, tense));
        for c in lines {
            out.push_str(&text_line(c));
        }
        if count > shown {
            let _ = writeln!(
                out,
                "  … and {} more; `hrsync report {} --all` lists every line.",
                count - shown,
                report.summary.id
            );
        }
    }
    out.push_str(&text_close(&report.summary));
    out
}

/// The text report's head: the run and its errors (or the reasons it is held).
pub fn text_head(report: &RunReport) -> String {
    let s = &report.summary;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Run {} · {} · connector {} · {} ({}) · {}",
        s.id,
        s.organisation,
        s.connector,
        match s.mode {
            RunMode::Plan => "dry run",
            RunMode::Apply => "apply",
        },
        s.trigger,
        s.status
    );
    let _ = writeln!(
        out,
        "As of {} · started {} · {} records fetched{}{}",
        time(s.as_of),
        time(s.started_at),
        s.records_fetched,
        s.fetch.map(|f| format!(" ({f} fetch)")).unwrap_or_default(),
        duration_ms(s)
            .map(|ms| format!(" · took {ms} ms"))
            .unwrap_or_default()
    );
    for e in &report.errors {
        let _ = writeln!(out, "{}: {}", e.code, e.message);
    }
    out
}

/// The heading of a kind's lines in the text report: the kind, its count and what it means in
/// the run's tense.
pub fn text_kind(kind: &str, count: i64, tense: Tense) -> String {
    let meaning = ChangeKind::parse(kind).map(|k| {
        let (to_come, done) = heading(k);
        match tense {
            Tense::Future => to_come.to_string(),
            Tense::Past => done.to_string(),
            Tense::NotApplied if k.is_actionable() => "planned; not applied".to_string(),
            Tense::NotApplied => to_come.to_string(),
        }
    });
    match meaning {
        Some(meaning) => format!("\n{kind} ({count}) · {meaning}\n"),
        None => format!("\n{kind} ({count})\n"),
    }
}

/// One change line of the text report.
pub fn text_line(c: &ChangeLine) -> String {
    let who = [c.employee_id.as_deref(), c.email.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    let what = match (&c.field, &c.old, &c.new) {
        (Some(f), None, None) => format!(" {f}"),
        (Some(f), old, new) => format!(
            " {f}: {} → {}",
            old.as_deref().unwrap_or("∅"),
            new.as_deref().unwrap_or("∅")
        ),
        (None, _, Some(new)) => format!(" → {new}"),
        _ => String::new(),
    };
    format!(
        "  {}{}\n      {}\n",
        if who.is_empty() { "(team)" } else { &who },
        what,
        c.reason
    )
}

/// The closing line of a run's text report, after a blank line: what the run does or did in
/// counts (work and informational lines apart), whether anything was applied, and for a held
/// or failed run the command to type next.
pub fn text_close(s: &RunSummary) -> String {
    let tense = Tense::of(s);
    let (work, info) = counts_of(s, tense);
    let info_text = if info.is_empty() {
        String::new()
    } else {
        format!("; {}", info.join(", "))
    };
    let line = match (s.mode, s.status) {
        (_, RunStatus::Running) => format!(
            "Still running. `hrsync report {}` shows it when it has ended.",
            s.id
        ),
        (_, RunStatus::Failed) => format!(
            "Failed: nothing was applied. The run's report: `hrsync report {}` (and /runs/{} on the admin pages).",
            s.id, s.id
        ),
        (RunMode::Plan, RunStatus::Held) => format!(
            "Plan: {}{info_text}. Nothing was applied (dry run). A sync now would be held for the \
             reasons above: `hrsync sync` keeps it as a held run, and `hrsync approve RUN_ID` \
             applies that one.",
            if work.is_empty() {
                "no changes".to_string()
            } else {
                work.join(", ")
            }
        ),
        (RunMode::Apply, RunStatus::Held) => format!(
            "Held: {}{info_text}. Nothing was applied. See every line with `hrsync report {id} --all`; \
             apply it with `hrsync approve {id}` (it is planned again first, and applied only if \
             nothing changed).",
            if work.is_empty() {
                "no changes".to_string()
            } else {
                work.join(", ")
            },
            id = s.id
        ),
        _ if work.is_empty() => {
            let mut line =
                "No changes: HR and the directory agree; there is nothing to do.".to_string();
            if !info.is_empty() {
                let _ = write!(
                    line,
                    " The {} lines are listed at every run while HR's records stay so; they are not pending work.",
                    info.join(", ")
                );
            }
            if s.mode == RunMode::Plan {
                line.push_str(" Nothing was applied (dry run).");
            }
            line
        }
        (RunMode::Plan, _) => format!(
            "Plan: {}{info_text}. Nothing was applied (dry run); `hrsync sync` applies it.",
            work.join(", ")
        ),
        (RunMode::Apply, RunStatus::Approved) => {
            format!("Applied on approval: {}{info_text}.", work.join(", "))
        }
        (RunMode::Apply, _) => format!("Applied: {}{info_text}.", work.join(", ")),
    };
    format!("\n{line}\n")
}
