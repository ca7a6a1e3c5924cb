//! Runs and their changes: starting a run, ending one that applies nothing, and reading runs
//! back for reports, digests and the feed-health gate.

use chrono::{DateTime, Utc};

use crate::domain::{
    ChangeLine, FetchKind, RunError, RunMode, RunReport, RunStatus, RunSummary, Trigger,
};
use crate::planner::Plan;

use super::{Result, Store};

/// Which runs a list shows.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunFilter {
    pub connector: Option<String>,
    pub status: Option<RunStatus>,
    pub mode: Option<RunMode>,
    pub trigger: Option<Trigger>,
    /// Runs with at least one change line of this kind.
    pub kind: Option<String>,
    /// Started at or after.
    pub since: Option<DateTime<Utc>>,
    /// Started before.
    pub until: Option<DateTime<Utc>>,
    /// The oldest first, instead of the newest.
    pub oldest_first: bool,
}

/// A run about to start.
#[derive(Clone, Debug)]
pub struct NewRun<'a> {
    pub organisation_id: i64,
    pub connector: &'a str,
    pub trigger: Trigger,
    pub mode: RunMode,
    pub as_of: DateTime<Utc>,
    pub started_at: DateTime<Utc>,
    /// The schedule tick a scheduled run was started for.
    pub scheduled_for: Option<DateTime<Utc>>,
}

/// How a run that applies nothing ended: planned, held or failed.
#[derive(Clone, Debug)]
pub struct RunEnd<'a> {
    pub status: RunStatus,
    pub records_fetched: usize,
    pub plan: Option<&'a Plan>,
    pub errors: &'a [RunError],
    pub finished_at: DateTime<Utc>,
    /// Who gets a digest of the run, queued with its end; empty for none.
    pub digest_to: &'a [String],
}

/// Runs and their changes.
impl Store {
    /// Records the start of a run and returns its id.
    pub async fn start_run(&self, run: &NewRun<'_>) -> Result<i64> {
        dispatch!(self, runs::start_run(run))
    }

    /// Notes how a run read an incremental connector's feed (`FetchKind`), for its report and
    /// for approving it the same way.
    pub async fn set_run_fetch(&self, run_id: i64, fetch: FetchKind) -> Result<()> {
        dispatch!(self, runs::set_run_fetch(run_id, fetch))
    }

    /// Ends a run that applies nothing (a dry run, a held or a failed run), with its changes
    /// and errors, in one transaction.
    pub async fn end_run(&self, run_id: i64, end: &RunEnd<'_>) -> Result<()> {
        dispatch!(self, runs::end_run(run_id, end))
    }

    /// Ends as failed, with `error`, the runs of a connector still marked running. Call only
    /// while holding the connector's lock: then no run of it is really in progress, and these
    /// were cut off by a crash or a forced stop (their transactions rolled back).
    pub async fn fail_abandoned_runs(
        &self,
        connector: &str,
        error: &RunError,
        digest_to: &[String],
        now: DateTime<Utc>,
    ) -> Result<Vec<i64>> {
        dispatch!(
            self,
            runs::fail_abandoned_runs(connector, error, digest_to, now)
        )
    }

    /// The newest runs first, of every connector or of one.
    pub async fn list_runs(&self, limit: i64, connector: Option<&str>) -> Result<Vec<RunSummary>> {
        let filter = RunFilter {
            connector: connector.map(str::to_string),
            ..RunFilter::default()
        };
        self.find_runs(&filter, None, limit).await
    }

    /// The runs the filter selects, newest first (or oldest first), at most `limit`; with a
    /// `cursor` (the last id of the page before) only those past it in that order.
    pub async fn find_runs(
        &self,
        filter: &RunFilter,
        cursor: Option<i64>,
        limit: i64,
    ) -> Result<Vec<RunSummary>> {
        dispatch!(self, runs::list_runs(filter, cursor, limit))
    }

    /// The newest run of each connector, in connector order.
    pub async fn last_runs(&self) -> Result<Vec<RunSummary>> {
        dispatch!(self, runs::last_runs())
    }

    /// One run with its changes and errors.
    pub async fn run_report(&self, run_id: i64) -> Result<Option<RunReport>> {
        dispatch!(self, runs::run_report(run_id))
    }

    /// One run with its errors and at most `per_kind` change lines of each kind, the first
    /// recorded; the summary counts every line. What a report that summarises a large run
    /// needs, without reading the run whole.
    pub async fn run_report_head(&self, run_id: i64, per_kind: usize) -> Result<Option<RunReport>> {
        let per_kind = i64::try_from(per_kind).unwrap_or(i64::MAX);
        dispatch!(self, runs::run_report_head(run_id, per_kind))
    }

    /// One page of a run's change lines of one kind, as recorded: `limit` lines after the
    /// first `offset`. What a run's page shows of a kind with many lines.
    pub async fn run_changes_of_kind(
        &self,
        run_id: i64,
        kind: &str,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<crate::domain::ChangeLine>> {
        dispatch!(self, runs::run_changes_of_kind(run_id, kind, offset, limit))
    }

    /// Hands every change line of a run to `each`, one at a time, in the order a report lists
    /// them (by kind, then as recorded), until `each` returns false: a report of any size,
    /// written out without holding it.
    pub async fn each_change(
        &self,
        run_id: i64,
        each: &mut (dyn FnMut(ChangeLine) -> bool + Send),
    ) -> Result<()> {
        dispatch!(self, runs::each_change(run_id, each))
    }

    /// How the connector's last applied (not dry) run before `before` ended: its status and
    /// its error codes (a held run's hold code, a failed run's failure code).
    pub async fn previous_outcome(
        &self,
        connector: &str,
        before: i64,
    ) -> Result<Option<(RunStatus, Vec<String>)>> {
        dispatch!(self, runs::previous_outcome(connector, before))
    }
}
