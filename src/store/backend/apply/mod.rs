//! The SQL of applying a plan, in named phases inside one transaction.
//!
//! The plan is first sorted, once, into typed batches (`batches.rs`): one exhaustive `match`
//! over `Action`, so a new kind of action does not compile until it is given a batch. Then one
//! function per phase writes its batch (`phases.rs`), in an order the foreign keys need: accounts
//! before the memberships, links and grants that name them; teams and roles before their links;
//! deactivations last; then the outbox rows and the run's report (`report.rs`). Either all of it
//! is committed or none of it.

mod batches;
mod phases;
mod report;

use chrono::{DateTime, Utc};
use sqlx::Pool;

use super::Db;
use super::common::{Tx, begin_write};
use crate::domain::{Progress, RunStatus, Step};
use crate::planner::Plan;
use crate::store::{Applied, ApplyRun, Doing, Result, StoreError};

use batches::{Batches, Ids};

/// What every phase writes with: the organisation, the connector that owns what it writes,
/// and the run's time.
#[derive(Clone, Copy)]
struct Scope<'a> {
    org: i64,
    connector: &'a str,
    now: DateTime<Utc>,
}

pub(in crate::store) async fn apply_plan(
    pool: &Pool<Db>,
    run: &ApplyRun<'_>,
    plan: &Plan,
    progress: &Progress,
) -> Result<Applied> {
    // Sorted before the transaction starts: a plan the store cannot apply fails before
    // anything is written.
    let batches = Batches::sort(plan)?;
    let scope = Scope {
        org: run.organisation.id,
        connector: run.connector,
        now: run.now,
    };
    let mut tx = begin_write(pool, "starting the apply transaction").await?;
    if run.status == RunStatus::Approved {
        take_approval(&mut tx, run.run_id, run.now).await?;
    }
    // Mails are queued as the phases go and written with the report, once every account
    // write is done, so each goes to the address its account has at the end of the run.
    let mut queued = Vec::new();
    let mut ids = Ids::default();
    // How long each phase took, logged at debug level: where a large run's time goes.
    let mut clock = PhaseClock::start();
    let changes = plan.actionable().count();
    let phase = |phase: &str| {
        progress.report(Step::Applying {
            connector: run.connector,
            phase,
            changes,
        })
    };
    phase("accounts");
    phases::accounts(&mut tx, scope, &batches.accounts, &mut ids, &mut queued).await?;
    clock.lap("accounts");
    phase("memberships");
    phases::memberships(&mut tx, scope, &batches.memberships, &ids, &mut queued).await?;
    clock.lap("memberships");
    phase("teams and coaches");
    phases::teams_and_coaches(&mut tx, scope, &batches.teams, &mut ids).await?;
    clock.lap("teams and coaches");
    phase("roles");
    phases::roles(&mut tx, scope, &batches.roles, &ids).await?;
    clock.lap("roles");
    phase("deactivations");
    phases::deactivations(&mut tx, scope, &batches.deactivations).await?;
    clock.lap("deactivations");
    phase("outbox and report");
    let mails_queued = report::outbox_and_report(&mut tx, run, plan, &queued).await?;
    clock.lap("outbox and report");
    phase("commit");
    tx.commit().await.doing("committing the run")?;
    clock.lap("commit");
    Ok(Applied {
        accounts_created: ids.new_accounts.len(),
        mails_queued,
    })
}

/// Times the phases of one apply.
struct PhaseClock(std::time::Instant);

impl PhaseClock {
    fn start() -> PhaseClock {
        PhaseClock(std::time::Instant::now())
    }

    /// Logs the time since the last lap under `phase`.
    fn lap(&mut self, phase: &'static str) {
        let now = std::time::Instant::now();
        tracing::debug!(
            phase,
            ms = now.duration_since(self.0).as_millis() as u64,
            "Apply phase done"
        );
        self.0 = now;
    }
}

/// Marks a held run approved. Only one approval applies a held run, even when two admins
/// approve at once: the second finds it approved already.
async fn take_approval(tx: &mut Tx<'_>, run_id: i64, now: DateTime<Utc>) -> Result<()> {
    let taken = sqlx::query(
        "UPDATE sync_runs SET approved_at = $1 WHERE id = $2 AND status = 'held' \
         AND approved_at IS NULL",
    )
    .bind(now)
    .bind(run_id)
    .execute(&mut **tx)
    .await
    .doing("approving the held run")?;
    if taken.rows_affected() != 1 {
        return Err(StoreError::NotFound(format!(
            "run {run_id} is no longer held; it was approved or replaced meanwhile"
        )));
    }
    Ok(())
}
