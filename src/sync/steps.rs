//! The steps of one run after it is recorded: fetch, plan, the holds of the planner and the
//! feed-health gate, then the end of a dry or held run or the applied transaction; and how a
//! failed run is ended.

use chrono::{DateTime, Utc};

use super::{App, Connector, Feed};
use crate::domain::{Code, RunError, RunMode, RunStatus};
use crate::planner::health::{self, FeedStats, HealthLimits};
use crate::planner::{Hold, Plan};
use crate::store::{ApplyRun, OrganisationRow, RunEnd};

/// A run applying at least this many changes refreshes the database's statistics after it.
const BULK_CHANGES: usize = 5_000;

impl App {
    /// After a plan is applied: a bulk of changes refreshes the database's statistics. The
    /// run is applied either way; statistics that could not be refreshed only slow the pages
    /// down until autovacuum (or the next large run) refreshes them.
    pub(super) async fn after_apply(&self, plan: &Plan) {
        if plan.actionable().count() >= BULK_CHANGES
            && let Err(e) = self.store.refresh_statistics().await
        {
            tracing::warn!(error = %e, "Could not refresh the database's statistics");
        }
    }

    /// Fetch, plan, and apply or end the run. An error here leaves the run for
    /// [`App::run_once`] to record as failed.
    pub(super) async fn run_steps(
        &self,
        run_id: i64,
        cx: &Connector<'_>,
        mode: RunMode,
        as_of: DateTime<Utc>,
        review: bool,
    ) -> anyhow::Result<()> {
        let connector = cx.id;
        let fetch_started = std::time::Instant::now();
        let fetched = self.fetch_clean(cx, self.force_full_fetch).await;
        crate::metrics::fetch_took(connector, fetch_started.elapsed().as_secs_f64());
        let mut feed = match fetched {
            Ok(feed) => feed,
            Err(error) => {
                let message = format!("{error:#}");
                tracing::error!(error = %message, "Fetch failed; nothing is planned or applied");
                self.fail_run(connector, run_id, Code::FetchFailed, message)
                    .await?;
                return Ok(());
            }
        };
        if let Some(inc) = &feed.incremental {
            self.store.set_run_fetch(run_id, inc.kind).await?;
        }
        self.progress.report(crate::domain::Step::Planning {
            connector,
            records: feed.records.len(),
        });
        let mut plan = self
            .plan_for(&cx.policy, &cx.org_row, &feed.records, as_of)
            .await?;
        let stats = FeedStats::of(&feed.records);
        self.gate(connector, &mut plan, stats, &cx.policy.health)
            .await?;
        if review && mode == RunMode::Apply && !plan.is_held() && plan.actionable().count() > 0 {
            plan.holds.push(Hold {
                code: Code::HeldForReview,
                message: "started by hand to review first: nothing is applied until an admin \
                          approves this plan (it is applied if planning again gives the same \
                          changes)"
                    .to_string(),
            });
        }
        tracing::info!(
            records = stats.records,
            changes = plan.actionable().count(),
            held = plan.is_held(),
            "Planned"
        );
        feed.release_unkept();
        if mode == RunMode::Plan || plan.is_held() {
            self.end_unapplied(connector, run_id, mode, &plan, stats.records)
                .await
        } else {
            self.apply(connector, run_id, &cx.org_row, &plan, &feed, stats)
                .await
        }
    }

    /// The feed-health gate: a feed far from the last good one is held, whatever the plan. An
    /// empty feed says all there is to say; otherwise every reason that holds the run is
    /// listed: the gate's first (a broken feed is the cause), then the planner's (the
    /// deactivations it would cause).
    async fn gate(
        &self,
        connector: &str,
        plan: &mut Plan,
        stats: FeedStats,
        limits: &HealthLimits,
    ) -> anyhow::Result<()> {
        let empty = plan.hold().is_some_and(|h| h.code == Code::EmptyFeed);
        if !empty {
            let previous = self.store.connector_state(connector).await?;
            let mut holds = health::check(previous, stats, plan.quarantined_records(), limits);
            holds.append(&mut plan.holds);
            plan.holds = holds;
        }
        Ok(())
    }

    /// Ends a dry run, or a held one, with the changes it would make and every reason that
    /// holds it; a held real run mails the admins a digest when its hold is new.
    async fn end_unapplied(
        &self,
        connector: &str,
        run_id: i64,
        mode: RunMode,
        plan: &Plan,
        records_fetched: usize,
    ) -> anyhow::Result<()> {
        let hold_errors: Vec<RunError> = plan
            .holds
            .iter()
            .map(|h| RunError {
                code: h.code.to_string(),
                message: h.message.clone(),
            })
            .collect();
        let status = if plan.is_held() {
            RunStatus::Held
        } else {
            RunStatus::Succeeded
        };
        let mut digest_to = Vec::new();
        // A run held only for the review its admin asked for mails nobody: they are looking.
        let for_review = hold_errors
            .iter()
            .all(|e| e.code == Code::HeldForReview.as_str());
        if status == RunStatus::Held && mode == RunMode::Apply && !for_review {
            let codes: Vec<&str> = hold_errors.iter().map(|e| e.code.as_str()).collect();
            let reasons: Vec<&str> = hold_errors.iter().map(|e| e.message.as_str()).collect();
            tracing::warn!(
                codes = %codes.join(","),
                reasons = %reasons.join("; "),
                "Run held; nothing is applied until an admin approves it"
            );
            digest_to = self
                .digest_for(connector, run_id, status, 0, &hold_errors)
                .await?;
        }
        self.store
            .end_run(
                run_id,
                &RunEnd {
                    status,
                    records_fetched,
                    plan: Some(plan),
                    errors: &hold_errors,
                    finished_at: Utc::now(),
                    digest_to: &digest_to,
                },
            )
            .await?;
        Ok(())
    }

    /// Applies the plan in one transaction, with the run's end, its digest and, for an
    /// incremental connector, the merged feed and the new watermark.
    async fn apply(
        &self,
        connector: &str,
        run_id: i64,
        org_row: &OrganisationRow,
        plan: &Plan,
        feed: &Feed,
        stats: FeedStats,
    ) -> anyhow::Result<()> {
        let digest_to = self
            .digest_for(
                connector,
                run_id,
                RunStatus::Succeeded,
                plan.actionable().count(),
                &[],
            )
            .await?;
        let run = ApplyRun {
            run_id,
            organisation: org_row,
            connector,
            status: RunStatus::Succeeded,
            records_fetched: stats.records,
            missing_email: stats.missing_email,
            now: Utc::now(),
            feed: feed.update(),
            digest_to: &digest_to,
        };
        let applied = self
            .store
            .apply_plan_with(&run, plan, &self.progress)
            .await?;
        tracing::info!(
            accounts_created = applied.accounts_created,
            mails_queued = applied.mails_queued,
            "Run applied"
        );
        self.after_apply(plan).await;
        Ok(())
    }

    /// Ends a run as failed, with the stable code and message its report shows.
    pub(super) async fn fail_run(
        &self,
        connector: &str,
        run_id: i64,
        code: Code,
        message: String,
    ) -> anyhow::Result<()> {
        let errors = [RunError {
            code: code.to_string(),
            message,
        }];
        // A failure is recorded even when the digest cannot be worked out.
        let digest_to = self
            .digest_for(connector, run_id, RunStatus::Failed, 0, &errors)
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "Cannot tell whether the failed run needs a digest; none is sent");
                Vec::new()
            });
        let end = RunEnd {
            status: RunStatus::Failed,
            records_fetched: 0,
            plan: None,
            errors: &errors,
            finished_at: Utc::now(),
            digest_to: &digest_to,
        };
        Ok(self.store.end_run(run_id, &end).await?)
    }
}
