//! Approving a held run: fetch again the way the held run fetched, plan again at its own
//! instant, and apply only when the changes are the same; otherwise say what differs.

use std::collections::BTreeMap;

use chrono::Utc;

use super::{App, RunOutcome};
use crate::domain::{FetchKind, RunMode, RunStatus};
use crate::planner::Changes;
use crate::planner::health::FeedStats;
use crate::store::{ApplyRun, StoreError};

/// Why a held run was not approved: what the CLI and the server tell apart (a run that is not
/// there, one that cannot be approved, one whose plan changed, a busy connector, or the
/// database or the HR system failing).
#[derive(Debug, thiserror::Error)]
pub enum ApproveError {
    #[error("there is no run {0}")]
    NotFound(i64),
    #[error("run {run} is {status}, not held; only a held run can be approved")]
    NotHeld { run: i64, status: RunStatus },
    #[error("run {0} is a dry run (plan); run `hrsync sync` to get a run to approve")]
    DryRun(i64),
    #[error("connector `{0}` is running already, here or on another replica")]
    Busy(String),
    #[error(
        "run {run} was not applied: planning again gives different changes ({count} differ, e.g. {example}); run `hrsync sync` again and review the new run"
    )]
    PlanChanged {
        run: i64,
        count: usize,
        example: String,
    },
    #[error("run {run} was not applied: fetching again failed: {cause:#}")]
    Fetch { run: i64, cause: anyhow::Error },
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The configuration no longer has the run's connector, or the like.
    #[error("{0:#}")]
    Other(anyhow::Error),
}

impl App {
    /// Applies a held run if planning again now yields the same changes; otherwise refuses and
    /// says what differs.
    pub async fn approve(&self, run_id: i64) -> Result<RunOutcome, ApproveError> {
        let connector = self
            .store
            .run_report_head(run_id, 0)
            .await?
            .ok_or(ApproveError::NotFound(run_id))?
            .summary
            .connector;
        let guard = self
            .lock_connector(&connector)
            .await
            .map_err(ApproveError::Other)?
            .ok_or_else(|| ApproveError::Busy(connector.clone()))?;
        let outcome = self.approve_unlocked(run_id).await;
        guard.lock.release().await;
        let outcome = outcome?;
        let s = &outcome.report.summary;
        crate::metrics::run_ended(&connector, s.status.as_str(), &s.counts);
        Ok(outcome)
    }

    async fn approve_unlocked(&self, run_id: i64) -> Result<RunOutcome, ApproveError> {
        let held = self
            .store
            .run_report(run_id)
            .await?
            .ok_or(ApproveError::NotFound(run_id))?;
        let s = &held.summary;
        if s.status != RunStatus::Held {
            return Err(ApproveError::NotHeld {
                run: run_id,
                status: s.status,
            });
        }
        if s.mode != RunMode::Apply {
            return Err(ApproveError::DryRun(run_id));
        }
        let connector = s.connector.clone();
        // A database failure on the way is the database's (503), whatever step met it.
        let other = |e: anyhow::Error| match e.downcast::<StoreError>() {
            Ok(store) => ApproveError::Store(store),
            Err(e) => ApproveError::Other(e),
        };
        let cx = self.resolve(&connector).await.map_err(other)?;
        // Read the way the held run read: a held full fetch (which may deactivate people who
        // vanished) is not compared with a delta.
        let full = self.force_full_fetch || s.fetch == Some(FetchKind::Full);
        let mut feed = self.fetch_clean(&cx, full).await.map_err(|cause| {
            match cause.downcast::<StoreError>() {
                Ok(store) => ApproveError::Store(store),
                Err(cause) => ApproveError::Fetch { run: run_id, cause },
            }
        })?;
        let stats = FeedStats::of(&feed.records);
        // The same instant the held run planned for: only the data may have changed.
        let plan = self
            .plan_for(&cx.policy, &cx.org_row, &feed.records, s.as_of)
            .await
            .map_err(other)?;
        feed.release_unkept();
        let differences = compare(&held.changes, &plan.changes);
        if let Some(example) = differences.first() {
            return Err(ApproveError::PlanChanged {
                run: run_id,
                count: differences.len(),
                example: example.clone(),
            });
        }
        let digest_to = self
            .digest_for(
                &connector,
                run_id,
                RunStatus::Approved,
                plan.actionable().count(),
                &[],
            )
            .await
            .map_err(other)?;
        let run = ApplyRun {
            run_id,
            organisation: &cx.org_row,
            connector: &connector,
            status: RunStatus::Approved,
            records_fetched: stats.records,
            missing_email: stats.missing_email,
            now: Utc::now(),
            feed: feed.update(),
            digest_to: &digest_to,
        };
        self.store
            .apply_plan_with(&run, &plan, &self.progress)
            .await?;
        self.after_apply(&plan).await;
        tracing::info!(run_id, connector = %connector, "Held run approved and applied");
        self.outcome(run_id).await.map_err(other)
    }
}

/// The changes of a stored run and a new plan, compared on everything but the reason: each
/// difference described in a sentence. Empty when they are the same.
pub fn compare(stored: &[crate::domain::ChangeLine], planned: &Changes) -> Vec<String> {
    type Key = (
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    // Each side counted as a multiset, so a held run of any size compares in n log n.
    let mut counts: BTreeMap<Key, i64> = BTreeMap::new();
    for c in stored {
        let key = (
            c.kind.clone(),
            c.employee_id.clone(),
            c.email.clone(),
            c.field.clone(),
            c.old.clone(),
            c.new.clone(),
        );
        *counts.entry(key).or_default() += 1;
    }
    for c in planned {
        let key = (
            c.kind().as_str().to_string(),
            c.employee_id.as_ref().map(|e| e.to_string()),
            c.email.clone(),
            c.field.clone(),
            c.old.clone(),
            c.new.clone(),
        );
        *counts.entry(key).or_default() -= 1;
    }
    let describe = |k: &Key| {
        format!(
            "{} {}",
            k.0,
            k.1.as_deref().or(k.2.as_deref()).unwrap_or("(team)")
        )
    };
    let gone = counts
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(k, _)| format!("{} is no longer planned", describe(k)));
    let new = counts
        .iter()
        .filter(|(_, n)| **n < 0)
        .map(|(k, _)| format!("{} is new", describe(k)));
    gone.chain(new).collect()
}
