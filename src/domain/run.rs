//! Sync runs as they are stored and reported: who ran what, how it ended, and every change.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};

/// How a run ended (or that it has not yet).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunStatus {
    Running,
    Succeeded,
    Failed,
    Held,
    Approved,
}

/// Whether a run only planned (a dry run) or applied its plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunMode {
    Plan,
    Apply,
}

/// What started a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    Command,
    Schedule,
    Api,
}

macro_rules! text_enum {
    ($name:ident { $($variant:ident => $text:literal),* $(,)? }) => {
        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),* }
            }
            pub fn parse(text: &str) -> Option<$name> {
                match text { $($text => Some($name::$variant),)* _ => None }
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

text_enum!(RunStatus { Running => "running", Succeeded => "succeeded", Failed => "failed", Held => "held", Approved => "approved" });
text_enum!(RunMode { Plan => "plan", Apply => "apply" });
text_enum!(Trigger { Command => "command", Schedule => "schedule", Api => "api" });
text_enum!(FetchKind { Full => "full", Incremental => "incremental" });

/// How an incremental connector's run read its feed: everything, or what changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FetchKind {
    Full,
    Incremental,
}

/// One run, without its change lines.
#[derive(Clone, Debug, PartialEq)]
pub struct RunSummary {
    pub id: i64,
    pub organisation: String,
    pub connector: String,
    pub trigger: Trigger,
    pub mode: RunMode,
    pub status: RunStatus,
    pub as_of: DateTime<Utc>,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub records_fetched: i64,
    /// For an incremental connector: whether the run read the whole feed or what changed.
    pub fetch: Option<FetchKind>,
    /// The schedule tick a scheduled run was started for.
    pub scheduled_for: Option<DateTime<Utc>>,
    /// Change lines per kind; kinds without lines are absent.
    pub counts: BTreeMap<String, i64>,
}

/// One change line of a run, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangeLine {
    pub kind: String,
    pub employee_id: Option<String>,
    pub email: Option<String>,
    pub field: Option<String>,
    pub old: Option<String>,
    pub new: Option<String>,
    pub reason: String,
}

/// An error or hold reason of a run, with its stable code (`HR101`, `HR201`, …).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunError {
    pub code: String,
    pub message: String,
}

/// A whole run: what admins read.
#[derive(Clone, Debug, PartialEq)]
pub struct RunReport {
    pub summary: RunSummary,
    pub changes: Vec<ChangeLine>,
    pub errors: Vec<RunError>,
}
