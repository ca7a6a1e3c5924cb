//! One sync run: fetch → plan → apply (or hold) → report.
//!
//! [`App`] holds what every run needs (configuration, store, mailer); [`App::run_once`] runs
//! one connector once and returns its report. A run is recorded before it fetches, so even a
//! run that fails at the first step leaves a report saying why. A fetch that fails or ends
//! early plans nothing and so deactivates nobody.

mod approve;
mod feed;
mod steps;

use chrono::{DateTime, NaiveDate, NaiveTime, TimeZone, Utc};
use lettre::message::Mailbox;
use tracing::Instrument;

use crate::config::{Loaded, MailTransportKind, Organisation, Source};
use crate::domain::{Code, HrRecord, RunError, RunMode, RunReport, RunStatus, Trigger};
use crate::mail::outbox::{Drained, OutboxWorker};
use crate::mail::{Mailer, digest};
use crate::planner::{self, Plan, Policy};
use crate::store::{NewRun, OrganisationRow, Store, StoreError};

pub use approve::{ApproveError, compare};
pub use feed::{Feed, IncrementalFetch, http_source};

/// What asks for a run, besides the connector.
#[derive(Clone, Copy, Debug)]
pub struct RunRequest {
    pub mode: RunMode,
    pub trigger: Trigger,
    pub as_of: AsOf,
    /// The schedule tick a scheduled run is for.
    pub scheduled_for: Option<DateTime<Utc>>,
    /// Hold an applying run that would change anything for an admin to review its plan and
    /// approve it (`HR205`): what "Run now" on the pages does.
    pub review: bool,
}

/// Why [`App::run_once`] gave no run report: the connector is busy, the database failed, or
/// something else did before the run could be recorded (an unknown connector, say). A run
/// that was recorded and then failed is not an error here: its report says `failed`, with
/// its code.
#[derive(Debug, thiserror::Error)]
pub enum RunRefused {
    #[error("connector `{0}` is running already, here or on another replica")]
    Busy(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0:#}")]
    Other(anyhow::Error),
}

impl From<anyhow::Error> for RunRefused {
    /// A database failure stays one; anything else is `Other`.
    fn from(error: anyhow::Error) -> RunRefused {
        match error.downcast::<StoreError>() {
            Ok(store) => RunRefused::Store(store),
            Err(other) => RunRefused::Other(other),
        }
    }
}

/// The instant a run plans for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AsOf {
    Now,
    /// The end of this day in the organisation's time zone: people whose end date is this day
    /// have left, people who start the next day have not started.
    EndOfDay(NaiveDate),
}

impl AsOf {
    pub fn instant(self, org: &Organisation) -> DateTime<Utc> {
        match self {
            AsOf::Now => Utc::now(),
            AsOf::EndOfDay(date) => {
                let end = date.and_time(NaiveTime::from_hms_opt(23, 59, 59).unwrap_or_default());
                org.time_zone
                    .from_local_datetime(&end)
                    .latest()
                    .map(|t| t.with_timezone(&Utc))
                    .unwrap_or_else(|| Utc.from_utc_datetime(&end))
            }
        }
    }
}

/// The result of one run: its stored report.
#[derive(Clone, Debug)]
pub struct RunOutcome {
    /// The run's summary and errors with the first [`REPORT_HEAD`] change lines of each kind;
    /// the whole run is in the store.
    pub report: RunReport,
}

/// How many change lines of each kind a run's outcome holds: enough to show what a run did
/// without reading a large run back whole.
pub const REPORT_HEAD: usize = 20;

impl RunOutcome {
    pub fn status(&self) -> RunStatus {
        self.report.summary.status
    }
}

/// A run's connector, resolved once from its id: its typed source, its organisation (as
/// configured and as stored) and the policy it plans with. The steps of a run share it
/// instead of looking the id up again.
pub(crate) struct Connector<'a> {
    pub id: &'a str,
    pub source: Source<'a>,
    pub org: Organisation,
    pub org_row: OrganisationRow,
    pub policy: Policy,
}

/// Everything a run needs, built once per process.
pub struct App {
    pub config: Loaded,
    pub store: Store,
    pub mailer: Mailer,
    /// Incremental connectors read their whole feed on the next runs (`sync --full`).
    pub force_full_fetch: bool,
    /// Where runs and mail drains report their progress (a terminal's bar; nowhere by
    /// default).
    pub progress: crate::domain::Progress,
    /// Connectors with a run in progress in this process.
    running: std::sync::Mutex<std::collections::HashSet<String>>,
}

/// A connector's place in [`App::running`], given back when dropped.
struct Running<'a> {
    app: &'a App,
    connector: String,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        if let Ok(mut running) = self.app.running.lock() {
            running.remove(&self.connector);
        }
    }
}

/// Both locks of a connector: this process's and the database's.
struct RunGuard<'a> {
    _running: Running<'a>,
    lock: crate::store::ConnectorLock,
}

/// Opens (and migrates) the database the configuration names.
pub(crate) async fn open_store(config: &Loaded) -> anyhow::Result<Store> {
    use anyhow::Context;
    let db = &config.settings.database;
    let password = config.database_password()?;
    let store = Store::connect_with_password(&db.url, db.max_connections, password.as_ref())
        .await
        .with_context(|| format!("database.url `{}`", redact_url(&db.url)))?;
    store.migrate().await?;
    Ok(store)
}

impl App {
    /// Opens the database (migrating it) and the mail transport the configuration names.
    /// Refuses numbers outside their range as `hrsync check` does: the CLI checks the whole
    /// configuration first, and this holds for any other caller, so no run starts with a
    /// value that could overflow a date or size the pool absurdly.
    pub async fn build(config: Loaded) -> anyhow::Result<App> {
        use anyhow::Context;
        let problems = config.bounds_problems();
        if !problems.is_empty() {
            return Err(crate::config::ConfigError { problems }.into());
        }
        let store = open_store(&config).await?;
        let mail = &config.settings.mail;
        let mailer = match mail.transport {
            MailTransportKind::File => Mailer::file(&mail.dir)?,
            MailTransportKind::Smtp => {
                let url = mail
                    .smtp_url
                    .as_deref()
                    .context("mail.smtp_url is required with transport = \"smtp\"")?;
                let credentials = match (&mail.smtp_username, config.smtp_password()?) {
                    (Some(user), Some(password)) => Some((user.clone(), password)),
                    _ => None,
                };
                Mailer::smtp(url, credentials)?
            }
        };
        Ok(App {
            config,
            store,
            mailer,
            force_full_fetch: false,
            progress: crate::domain::Progress::default(),
            running: Default::default(),
        })
    }

    /// Takes the connector's locks (in this process, and on PostgreSQL across replicas), or
    /// `None` when a run of it is in progress. Runs it left marked `running` by a crash or a
    /// forced stop are ended as failed (`HR104`) first.
    async fn lock_connector(&self, connector: &str) -> anyhow::Result<Option<RunGuard<'_>>> {
        {
            let mut running = self
                .running
                .lock()
                .map_err(|_| anyhow::anyhow!("the run registry is poisoned"))?;
            if !running.insert(connector.to_string()) {
                return Ok(None);
            }
        }
        let running = Running {
            app: self,
            connector: connector.to_string(),
        };
        let Some(lock) = self.store.try_lock_connector(connector).await? else {
            return Ok(None);
        };
        let abandoned = self
            .store
            .fail_abandoned_runs(
                connector,
                &RunError {
                    code: Code::RunInterrupted.to_string(),
                    message: "the run was cut off (the process stopped or crashed) before it ended; nothing of it was applied".to_string(),
                },
                self.digest_recipients(connector),
                Utc::now(),
            )
            .await?;
        if !abandoned.is_empty() {
            tracing::warn!(connector, runs = ?abandoned, "Runs cut off earlier are ended as failed; they applied nothing");
        }
        Ok(Some(RunGuard {
            _running: running,
            lock,
        }))
    }

    /// Runs one connector once if no run of it is in progress anywhere: `Ok(None)` when one
    /// is. `started` hears the new run's id as soon as it is recorded.
    pub async fn run_if_free(
        &self,
        connector: &str,
        request: RunRequest,
        started: Option<tokio::sync::oneshot::Sender<i64>>,
    ) -> anyhow::Result<Option<RunOutcome>> {
        let Some(guard) = self.lock_connector(connector).await? else {
            return Ok(None);
        };
        let outcome = self.run_unlocked(connector, request, started).await;
        guard.lock.release().await;
        let outcome = outcome?;
        let s = &outcome.report.summary;
        crate::metrics::run_ended(connector, s.status.as_str(), &s.counts);
        Ok(Some(outcome))
    }

    /// The connector ids in the order `sync` runs them, or the one asked for.
    pub fn connector_ids(&self, only: Option<&str>) -> anyhow::Result<Vec<String>> {
        let all = &self.config.settings.connectors;
        match only {
            Some(id) if all.contains_key(id) => Ok(vec![id.to_string()]),
            Some(id) => anyhow::bail!(
                "no connector `{id}` in the configuration; known: {}",
                all.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
            None => Ok(all.keys().cloned().collect()),
        }
    }

    /// The configured organisation `slug`, stored (so its row exists before anything is done
    /// in it by hand).
    pub async fn organisation(&self, slug: &str) -> anyhow::Result<OrganisationRow> {
        let org = self.config.organisation(slug)?;
        self.organisation_row(&org).await
    }

    async fn organisation_row(&self, org: &Organisation) -> anyhow::Result<OrganisationRow> {
        Ok(self
            .store
            .upsert_organisation(
                &org.slug,
                &org.name,
                org.time_zone.name(),
                &org.locale,
                Utc::now(),
            )
            .await?)
    }

    /// Resolves a connector id into everything its run uses, once: settings, source,
    /// organisation (stored as well, so its row exists) and policy.
    pub(crate) async fn resolve<'a>(&'a self, connector: &'a str) -> anyhow::Result<Connector<'a>> {
        let settings = self.config.connector(connector)?;
        let source = settings
            .source()
            .map_err(|(key, message)| anyhow::anyhow!("connectors.{connector}.{key}: {message}"))?;
        let org = self.config.organisation(&settings.organisation)?;
        let org_row = self.organisation_row(&org).await?;
        let policy = self.config.policy(connector)?;
        Ok(Connector {
            id: connector,
            source,
            org,
            org_row,
            policy,
        })
    }

    /// The admin addresses of the connector's organisation that get digests.
    pub fn digest_recipients(&self, connector: &str) -> &[String] {
        self.config
            .connector(connector)
            .ok()
            .and_then(|c| self.config.settings.organisations.get(&c.organisation))
            .map(|o| o.digest_to.as_slice())
            .unwrap_or_default()
    }

    /// Who gets a digest of run `run_id` ending as `status` with `actionable` changes and
    /// `errors`: the organisation's `digest_to` when [`digest::is_due`] says so.
    async fn digest_for(
        &self,
        connector: &str,
        run_id: i64,
        status: RunStatus,
        actionable: usize,
        errors: &[RunError],
    ) -> anyhow::Result<Vec<String>> {
        let recipients = self.digest_recipients(connector);
        if recipients.is_empty() {
            return Ok(Vec::new());
        }
        let previous = match status {
            RunStatus::Held | RunStatus::Failed => {
                self.store.previous_outcome(connector, run_id).await?
            }
            _ => None,
        };
        let codes: Vec<String> = errors.iter().map(|e| e.code.clone()).collect();
        Ok(
            if digest::is_due(status, actionable, &codes, previous.as_ref()) {
                recipients.to_vec()
            } else {
                Vec::new()
            },
        )
    }

    /// Plans against the current directory, without writing anything.
    async fn plan_for(
        &self,
        policy: &Policy,
        org_row: &OrganisationRow,
        records: &[HrRecord],
        as_of: DateTime<Utc>,
    ) -> anyhow::Result<Plan> {
        let emails: Vec<String> = records
            .iter()
            .filter_map(|r| r.email.as_ref().ok().map(|e| e.key().to_string()))
            .collect();
        let started = std::time::Instant::now();
        let directory = self.store.load_directory(org_row.id, &emails).await?;
        // Not held while planning: a large feed's addresses are megabytes.
        drop(emails);
        tracing::debug!(ms = started.elapsed().as_millis(), "Directory loaded");
        let started = std::time::Instant::now();
        let plan = planner::plan(records, &directory, policy, as_of);
        tracing::debug!(ms = started.elapsed().as_millis(), "Planner done");
        Ok(plan)
    }

    /// Runs one connector once: a dry run (`RunMode::Plan`) or a real one. Fails with
    /// [`RunRefused::Busy`] when a run of it is in progress.
    pub async fn run_once(
        &self,
        connector: &str,
        mode: RunMode,
        trigger: Trigger,
        as_of: AsOf,
    ) -> Result<RunOutcome, RunRefused> {
        let request = RunRequest {
            mode,
            trigger,
            as_of,
            scheduled_for: None,
            review: false,
        };
        self.run_if_free(connector, request, None)
            .await?
            .ok_or_else(|| RunRefused::Busy(connector.to_string()))
    }

    async fn run_unlocked(
        &self,
        connector: &str,
        request: RunRequest,
        started: Option<tokio::sync::oneshot::Sender<i64>>,
    ) -> anyhow::Result<RunOutcome> {
        let RunRequest {
            mode,
            trigger,
            as_of,
            scheduled_for,
            review,
        } = request;
        let cx = self.resolve(connector).await?;
        let as_of = as_of.instant(&cx.org);
        let run_id = self
            .store
            .start_run(&NewRun {
                organisation_id: cx.org_row.id,
                connector,
                trigger,
                mode,
                as_of,
                started_at: Utc::now(),
                scheduled_for,
            })
            .await?;
        if let Some(started) = started {
            let _ = started.send(run_id);
        }
        let span = tracing::info_span!("run", run_id, connector, mode = %mode);
        async {
            tracing::info!(as_of = %as_of, "Run started");
            if let Err(error) = self.run_steps(run_id, &cx, mode, as_of, review).await {
                // Whatever went wrong after the run was recorded, the run says so; anything it
                // wrote was rolled back with its transaction.
                let message = format!("{error:#}");
                tracing::error!(error = %message, "Run failed; nothing was applied");
                self.fail_run(connector, run_id, Code::RunFailed, message)
                    .await?;
            }
            anyhow::Ok(())
        }
        .instrument(span)
        .await?;
        self.outcome(run_id).await
    }

    async fn outcome(&self, run_id: i64) -> anyhow::Result<RunOutcome> {
        let report = self
            .store
            .run_report_head(run_id, REPORT_HEAD)
            .await?
            .ok_or_else(|| anyhow::anyhow!("run {run_id} vanished"))?;
        Ok(RunOutcome { report })
    }

    /// Sends the mails that are due.
    pub async fn drain_outbox(&self) -> anyhow::Result<Drained> {
        self.drain_outbox_while(|| true).await
    }

    /// Sends the mails that are due while `keep_going` says so (checked before each mail).
    pub async fn drain_outbox_while(
        &self,
        keep_going: impl Fn() -> bool,
    ) -> anyhow::Result<Drained> {
        let mail = &self.config.settings.mail;
        let from: Mailbox = mail
            .from
            .parse()
            .map_err(|e| anyhow::anyhow!("mail.from `{}`: {e}", mail.from))?;
        let mut senders = std::collections::HashMap::new();
        for (slug, org) in &self.config.settings.organisations {
            if let Some(text) = &org.mail_from {
                let sender: Mailbox = text
                    .parse()
                    .map_err(|e| anyhow::anyhow!("organisations.{slug}.mail_from `{text}`: {e}"))?;
                senders.insert(slug.clone(), sender);
            }
        }
        let worker = OutboxWorker {
            store: &self.store,
            mailer: &self.mailer,
            from,
            senders,
            activation_url: mail.activation_url.clone(),
            token_valid_days: mail.token_valid_days,
            public_url: self.config.settings.server.public_url.clone(),
            progress: self.progress.clone(),
        };
        let drained = worker.drain_while(keep_going).await?;
        crate::metrics::mails(drained.sent, drained.failed + drained.undeliverable);
        Ok(drained)
    }
}

impl App {
    /// The database's URL as it may be shown to people and logs: see [`redact_url`].
    pub fn database_shown(&self) -> String {
        redact_url(&self.config.settings.database.url)
    }
}

/// A database URL as it may be shown: without a password in the user part and without the
/// query string (which may carry `password=`).
fn redact_url(url: &str) -> String {
    let url = url.split_once('?').map(|(base, _)| base).unwrap_or(url);
    crate::secret::url_without_password(url)
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn database_url_is_shown_without_passwords() {
        assert_eq!(
            redact_url("postgres://hr:s3cret@db/hr?sslmode=require&password=x"),
            "postgres://hr:***@db/hr"
        );
        assert_eq!(
            redact_url("sqlite://data/hrsync.db"),
            "sqlite://data/hrsync.db"
        );
    }
}
