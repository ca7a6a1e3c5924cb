//! One sync run: fetch → plan → apply (or hold) → report.
//!
//! [`App`] holds what every run needs (configuration, store, mailer); [`App::run_once`] runs
//! one connector once and returns its report. A run is recorded before it fetches, so even a
//! run that fails at the first step leaves a report saying why. A fetch that fails or ends
//! early plans nothing and so deactivates nobody.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, NaiveTime, TimeZone, Utc};
use lettre::message::Mailbox;
use tracing::Instrument;

use crate::config::{ConnectorSettings, Loaded, MailTransportKind, Organisation, SourceKind};
use crate::connectors::csv;
use crate::connectors::http::{Definition, FetchOptions, HttpSource};
use crate::domain::{Code, FetchKind, HrRecord, RunError, RunMode, RunReport, RunStatus, Trigger};
use crate::mail::outbox::{Drained, OutboxWorker};
use crate::mail::{Mailer, digest};
use crate::planner::health::{self, FeedStats};
use crate::planner::{self, Change, Plan, Policy};
use crate::store::{ApplyRun, FeedUpdate, NewRun, OrganisationRow, RunEnd, Store, StoreError};

/// A run whose fetch failed.
pub const FETCH_FAILED: Code = Code::FetchFailed;
/// A run that failed after fetching (a database or planning error).
pub const RUN_FAILED: Code = Code::RunFailed;
/// A run that was cut off (a crash, or a stop that could not wait for it); its transaction
/// rolled back, so it applied nothing.
pub const RUN_INTERRUPTED: Code = Code::RunInterrupted;

/// What asks for a run, besides the connector.
#[derive(Clone, Copy, Debug)]
pub struct RunRequest {
    pub mode: RunMode,
    pub trigger: Trigger,
    pub as_of: AsOf,
    /// The schedule tick a scheduled run is for.
    pub scheduled_for: Option<DateTime<Utc>>,
}

/// Why a run did not start.
#[derive(Debug, thiserror::Error)]
pub enum RunRefused {
    #[error("connector `{0}` is running already, here or on another replica")]
    Busy(String),
}

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
    pub report: RunReport,
}

impl RunOutcome {
    pub fn status(&self) -> RunStatus {
        self.report.summary.status
    }
}

/// What a fetch gave a run: the records to plan on and, for an incremental connector, what to
/// keep when the run is applied.
#[derive(Clone, Debug)]
pub struct Feed {
    pub records: Vec<HrRecord>,
    /// For an incremental connector: how this fetch read the feed.
    pub incremental: Option<IncrementalFetch>,
}

/// How an incremental connector's fetch went.
#[derive(Clone, Debug)]
pub struct IncrementalFetch {
    /// When the fetch started: the watermark once the run is applied.
    pub started: DateTime<Utc>,
    pub kind: FetchKind,
    /// The definition and variables the records were mapped with.
    pub fingerprint: String,
}

impl Feed {
    fn update(&self) -> Option<FeedUpdate<'_>> {
        self.incremental.as_ref().map(|inc| FeedUpdate {
            watermark: inc.started,
            full: inc.kind == FetchKind::Full,
            records: &self.records,
            fingerprint: &inc.fingerprint,
        })
    }
}

/// Everything a run needs, built once per process.
pub struct App {
    pub config: Loaded,
    pub store: Store,
    pub mailer: Mailer,
    /// Incremental connectors read their whole feed on the next runs (`sync --full`).
    pub force_full_fetch: bool,
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
        let db = &config.settings.database;
        let password = config.database_password()?;
        let store = Store::connect_with_password(&db.url, db.max_connections, password.as_ref())
            .await
            .with_context(|| format!("database.url `{}`", redact_url(&db.url)))?;
        store.migrate().await?;
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
                    code: RUN_INTERRUPTED.to_string(),
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

    fn connector_settings(&self, connector: &str) -> anyhow::Result<&ConnectorSettings> {
        self.config.connector(connector)
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

    /// Fetches the connector's records. All or nothing. An incremental connector asks only for
    /// what changed since its last applied run and merges that into what it knew, or reads
    /// its whole feed when one is due (or `sync --full` asked for it).
    pub async fn fetch(&self, connector: &str) -> anyhow::Result<Feed> {
        self.fetch_clean(connector, self.force_full_fetch).await
    }

    /// [`App::fetch_feed`], with every record's text cleaned at this one edge whatever the
    /// source kind ([`HrRecord::normalised`]), so nothing after it meets a control character.
    async fn fetch_clean(&self, connector: &str, force_full: bool) -> anyhow::Result<Feed> {
        let mut feed = self.fetch_feed(connector, force_full).await?;
        feed.records = std::mem::take(&mut feed.records)
            .into_iter()
            .map(HrRecord::normalised)
            .collect();
        if let Some((record, (field, why))) = feed
            .records
            .iter()
            .find_map(|r| r.unstorable_field().map(|f| (r, f)))
        {
            anyhow::bail!(
                "the record of employee `{}` cannot be stored: its field `{field}` {why}",
                crate::domain::single_line(
                    &record
                        .employee_id
                        .as_str()
                        .chars()
                        .take(64)
                        .collect::<String>()
                )
            );
        }
        Ok(feed)
    }

    /// [`App::fetch`], reading an incremental connector's whole feed when `force_full`.
    async fn fetch_feed(&self, connector: &str, force_full: bool) -> anyhow::Result<Feed> {
        let settings = self.connector_settings(connector)?;
        match settings.kind {
            SourceKind::Csv => {
                let csv_settings = settings
                    .csv
                    .clone()
                    .ok_or_else(|| anyhow::anyhow!("connector `{connector}` has no [csv] table"))?;
                let records =
                    tokio::task::spawn_blocking(move || csv::read_file(&csv_settings)).await??;
                Ok(Feed {
                    records,
                    incremental: None,
                })
            }
            SourceKind::Http => {
                let http = settings.http.as_ref().ok_or_else(|| {
                    anyhow::anyhow!("connector `{connector}` has no [http] table")
                })?;
                let source = self.http_source(connector)?;
                let Some(incremental) = &http.incremental else {
                    return Ok(Feed {
                        records: source.fetch().await?,
                        incremental: None,
                    });
                };
                let started = Utc::now();
                let state = self.store.feed_state(connector).await?;
                let fingerprint = feed_fingerprint(http)?;
                let remapped = state
                    .fingerprint
                    .as_ref()
                    .is_some_and(|kept| *kept != fingerprint);
                if remapped {
                    tracing::info!(
                        "The definition or its variables changed since the records were kept; reading the whole feed"
                    );
                }
                let full = force_full
                    || remapped
                    || incremental.full_due(
                        state.watermark,
                        state.last_full_at,
                        state.incremental_runs,
                        started,
                    );
                let since = state
                    .watermark
                    .filter(|_| !full)
                    .map(|w| w - chrono::Duration::minutes(i64::from(incremental.overlap_minutes)));
                let fetched = source
                    .fetch_with(&FetchOptions {
                        since,
                        ..FetchOptions::default()
                    })
                    .await?;
                let records = if full {
                    tracing::info!(records = fetched.records.len(), "Read the whole feed");
                    fetched.records
                } else {
                    let known = self.store.feed_snapshot(connector).await?;
                    let mut delta = fetched.records;
                    source.resolve_managers(&mut delta, &known);
                    tracing::info!(
                        changed = delta.len(),
                        known = known.len(),
                        since = %since.map(|s| s.to_rfc3339()).unwrap_or_default(),
                        "Read what changed since the watermark"
                    );
                    merge_delta(known, delta)
                };
                Ok(Feed {
                    records,
                    incremental: Some(IncrementalFetch {
                        started,
                        kind: if full {
                            FetchKind::Full
                        } else {
                            FetchKind::Incremental
                        },
                        fingerprint,
                    }),
                })
            }
        }
    }

    /// The HTTP source of an `http` connector, bound to its variables and secrets.
    pub fn http_source(&self, connector: &str) -> anyhow::Result<HttpSource> {
        http_source(&self.config, connector)
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
        let directory = self.store.load_directory(org_row.id, &emails).await?;
        Ok(planner::plan(records, &directory, policy, as_of))
    }

    /// Runs one connector once: a dry run (`RunMode::Plan`) or a real one. Fails with
    /// [`RunRefused::Busy`] when a run of it is in progress.
    pub async fn run_once(
        &self,
        connector: &str,
        mode: RunMode,
        trigger: Trigger,
        as_of: AsOf,
    ) -> anyhow::Result<RunOutcome> {
        let request = RunRequest {
            mode,
            trigger,
            as_of,
            scheduled_for: None,
        };
        self.run_if_free(connector, request, None)
            .await?
            .ok_or_else(|| RunRefused::Busy(connector.to_string()).into())
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
        } = request;
        let settings = self.connector_settings(connector)?;
        let org = self.config.organisation(&settings.organisation)?;
        let org_row = self.organisation_row(&org).await?;
        let as_of = as_of.instant(&org);
        let run_id = self
            .store
            .start_run(&NewRun {
                organisation_id: org_row.id,
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
            if let Err(error) = self
                .run_steps(run_id, connector, &org_row, mode, as_of)
                .await
            {
                // Whatever went wrong after the run was recorded, the run says so; anything it
                // wrote was rolled back with its transaction.
                let message = format!("{error:#}");
                tracing::error!(error = %message, "Run failed; nothing was applied");
                self.fail_run(connector, run_id, RUN_FAILED, message)
                    .await?;
            }
            anyhow::Ok(())
        }
        .instrument(span)
        .await?;
        self.outcome(run_id).await
    }

    /// Fetch, plan, and apply or end the run. An error here leaves the run for
    /// [`App::run_once`] to record as failed.
    async fn run_steps(
        &self,
        run_id: i64,
        connector: &str,
        org_row: &OrganisationRow,
        mode: RunMode,
        as_of: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let fetch_started = std::time::Instant::now();
        let fetched = self.fetch(connector).await;
        crate::metrics::fetch_took(connector, fetch_started.elapsed().as_secs_f64());
        let feed = match fetched {
            Ok(feed) => feed,
            Err(error) => {
                let message = format!("{error:#}");
                tracing::error!(error = %message, "Fetch failed; nothing is planned or applied");
                self.fail_run(connector, run_id, FETCH_FAILED, message)
                    .await?;
                return Ok(());
            }
        };
        if let Some(inc) = &feed.incremental {
            self.store.set_run_fetch(run_id, inc.kind).await?;
        }
        let records = &feed.records;
        let policy = self.config.policy(connector)?;
        let mut plan = self.plan_for(&policy, org_row, records, as_of).await?;
        let fetched = records.len();
        // The feed-health gate: a feed far from the last good one is held, whatever the plan.
        let stats = FeedStats::of(records);
        let limits = policy.health;
        let previous = self.store.connector_state(connector).await?;
        // An empty feed says all there is to say; otherwise every reason that holds the run
        // is listed: the gate's first (a broken feed is the cause), then the planner's (the
        // deactivations it would cause).
        let empty = plan
            .hold()
            .is_some_and(|h| h.code == planner::HOLD_EMPTY_FEED);
        if !empty {
            let mut holds = health::check(previous, stats, plan.quarantined_records(), &limits);
            holds.append(&mut plan.holds);
            plan.holds = holds;
        }
        tracing::info!(
            records = fetched,
            changes = plan.actionable().count(),
            held = plan.is_held(),
            "Planned"
        );
        let hold_errors: Vec<RunError> = plan
            .holds
            .iter()
            .map(|h| RunError {
                code: h.code.to_string(),
                message: h.message.clone(),
            })
            .collect();
        match (mode, plan.is_held()) {
            (RunMode::Plan, _) | (RunMode::Apply, true) => {
                let status = if plan.is_held() {
                    RunStatus::Held
                } else {
                    RunStatus::Succeeded
                };
                let mut digest_to = Vec::new();
                if status == RunStatus::Held && mode == RunMode::Apply {
                    let codes: Vec<&str> = hold_errors.iter().map(|e| e.code.as_str()).collect();
                    tracing::warn!(
                        codes = %codes.join(","),
                        reasons = %hold_errors.iter().map(|e| e.message.as_str()).collect::<Vec<_>>().join("; "),
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
                            records_fetched: fetched,
                            plan: Some(&plan),
                            errors: &hold_errors,
                            finished_at: Utc::now(),
                            digest_to: &digest_to,
                        },
                    )
                    .await?;
            }
            (RunMode::Apply, false) => {
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
                    records_fetched: fetched,
                    missing_email: stats.missing_email,
                    now: Utc::now(),
                    feed: feed.update(),
                    digest_to: &digest_to,
                };
                let applied = self.store.apply_plan(&run, &plan).await?;
                tracing::info!(
                    accounts_created = applied.accounts_created,
                    mails_queued = applied.mails_queued,
                    "Run applied"
                );
            }
        }
        Ok(())
    }

    /// Ends a run as failed, with the stable code and message its report shows.
    async fn fail_run(
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

    async fn outcome(&self, run_id: i64) -> anyhow::Result<RunOutcome> {
        let report = self
            .store
            .run_report(run_id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("run {run_id} vanished"))?;
        Ok(RunOutcome { report })
    }

    /// Applies a held run if planning again now yields the same changes; otherwise refuses and
    /// says what differs.
    pub async fn approve(&self, run_id: i64) -> Result<RunOutcome, ApproveError> {
        let connector = self
            .store
            .run_report(run_id)
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
        let other = ApproveError::Other;
        let settings = self.connector_settings(&connector).map_err(other)?;
        let org = self
            .config
            .organisation(&settings.organisation)
            .map_err(other)?;
        let org_row = self.organisation_row(&org).await.map_err(other)?;
        // Read the way the held run read: a held full fetch (which may deactivate people who
        // vanished) is not compared with a delta.
        let full = self.force_full_fetch || s.fetch == Some(FetchKind::Full);
        let feed = self
            .fetch_clean(&connector, full)
            .await
            .map_err(|cause| ApproveError::Fetch { run: run_id, cause })?;
        let records = &feed.records;
        // The same instant the held run planned for: only the data may have changed.
        let policy = self.config.policy(&connector).map_err(other)?;
        let plan = self
            .plan_for(&policy, &org_row, records, s.as_of)
            .await
            .map_err(other)?;
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
            organisation: &org_row,
            connector: &connector,
            status: RunStatus::Approved,
            records_fetched: records.len(),
            missing_email: FeedStats::of(records).missing_email,
            now: Utc::now(),
            feed: feed.update(),
            digest_to: &digest_to,
        };
        self.store.apply_plan(&run, &plan).await?;
        tracing::info!(run_id, connector = %connector, "Held run approved and applied");
        self.outcome(run_id).await.map_err(other)
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
        let worker = OutboxWorker {
            store: &self.store,
            mailer: &self.mailer,
            from,
            activation_url: mail.activation_url.clone(),
            token_valid_days: mail.token_valid_days,
            public_url: self.config.settings.server.public_url.clone(),
        };
        let drained = worker.drain_while(keep_going).await?;
        crate::metrics::mails(drained.sent, drained.failed + drained.undeliverable);
        Ok(drained)
    }
}

/// The HTTP source of an `http` connector, bound to its variables and secrets read from the
/// environment.
pub fn http_source(config: &Loaded, connector: &str) -> anyhow::Result<HttpSource> {
    let http = config
        .connector(connector)?
        .http
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("connector `{connector}` is not an http connector"))?;
    let definition =
        Definition::load(&http.definition_path()).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(HttpSource::new(
        definition,
        http.variables.clone(),
        http.read_secrets()?,
    )?)
}

/// A digest of what an http connector's records are mapped with: its definition file and the
/// instance's variables. Records kept under another digest are read again in full.
fn feed_fingerprint(http: &crate::config::HttpSettings) -> anyhow::Result<String> {
    use anyhow::Context;
    let path = http.definition_path();
    let mut context = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    context.update(&std::fs::read(&path).with_context(|| format!("reading `{}`", path.display()))?);
    for (name, value) in &http.variables {
        context.update(format!("\0{name}={value}").as_bytes());
    }
    Ok(context
        .finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// What an incremental connector knows after a delta: every known record whose employee id
/// the delta does not mention, and the delta's records. People the delta leaves out are
/// unchanged, not gone; the periodic full fetch finds those who vanished.
pub fn merge_delta(known: Vec<HrRecord>, delta: Vec<HrRecord>) -> Vec<HrRecord> {
    let changed: std::collections::HashSet<String> = delta
        .iter()
        .map(|r| r.employee_id.as_str().to_string())
        .collect();
    let mut merged: Vec<HrRecord> = known
        .into_iter()
        .filter(|r| !changed.contains(r.employee_id.as_str()))
        .collect();
    merged.extend(delta);
    merged
}

/// The changes of a stored run and a new plan, compared on everything but the reason: each
/// difference described in a sentence. Empty when they are the same.
pub fn compare(stored: &[crate::domain::ChangeLine], planned: &[Change]) -> Vec<String> {
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
            c.kind.as_str().to_string(),
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

/// A database URL as it may be shown: without a password in the user part and without the
/// query string (which may carry `password=`).
pub fn redact_url(url: &str) -> String {
    let url = url.split_once('?').map(|(base, _)| base).unwrap_or(url);
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
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
