//! Applying a plan: everything an applied run writes, in one transaction.

use chrono::{DateTime, Utc};

use crate::domain::{Progress, RunStatus};
use crate::planner::Plan;

use super::{FeedUpdate, OrganisationRow, Result, Store};

/// The run a plan is applied in.
#[derive(Clone, Debug)]
pub struct ApplyRun<'a> {
    pub run_id: i64,
    pub organisation: &'a OrganisationRow,
    pub connector: &'a str,
    /// `succeeded`, or `approved` when an admin approved the held run.
    pub status: RunStatus,
    pub records_fetched: usize,
    /// How many fetched records had no usable email, kept for the feed-health gate.
    pub missing_email: usize,
    pub now: DateTime<Utc>,
    /// For a connector that fetches incrementally: the feed to keep and the new watermark.
    pub feed: Option<FeedUpdate<'a>>,
    /// Who gets a digest of the run, queued in its transaction; empty for none.
    pub digest_to: &'a [String],
}

/// What an applied run wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    pub accounts_created: usize,
    pub mails_queued: usize,
}

/// Applying plans.
impl Store {
    /// Applies a plan in one transaction, in named phases: accounts, memberships, teams and
    /// coaches, roles, deactivations, then the outbox rows and the run's report. Either all of
    /// it is written or none of it.
    pub async fn apply_plan(&self, run: &ApplyRun<'_>, plan: &Plan) -> Result<Applied> {
        self.apply_plan_with(run, plan, &Progress::default()).await
    }

    /// [`Store::apply_plan`], telling `progress` of each phase as it starts.
    pub async fn apply_plan_with(
        &self,
        run: &ApplyRun<'_>,
        plan: &Plan,
        progress: &Progress,
    ) -> Result<Applied> {
        dispatch!(self, apply::apply_plan(run, plan, progress))
    }
}
