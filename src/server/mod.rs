//! The daemon, `hrsync serve`: the scheduler, the outbox mail worker and the HTTP server (admin
//! API, report pages, `/healthz`, `/metrics`) in one process, stopping cleanly on a signal.
//!
//! Every run the daemon starts, scheduled or asked for over HTTP, is a task of one
//! [`Runs`] set, so a stop can wait for them: on SIGTERM or SIGINT no new run starts, runs in
//! progress get `server.shutdown_grace_seconds` to finish, and any still going after that are
//! dropped, which rolls back their transaction; they are then ended as failed (`HR104`).
//! The mail worker finishes the mail in hand. Several replicas may serve one PostgreSQL
//! database: a schedule tick is claimed by one replica (`Store::claim_tick`), a connector's
//! run holds an advisory lock, and mail is claimed row by row, so nothing runs or is sent
//! twice without a coordinator of our own.
//!
//! The mail worker and each scheduler are supervised (`supervise.rs`): should one end or panic
//! while the daemon is not stopping, it is logged, counted, reported by `/healthz` and started
//! again. The HTTP server is an accept loop of its own (`http.rs`) with a header-read timeout
//! and a bound on open connections.

mod accounts;
mod api;
mod auth;
mod http;
mod listing;
mod manage_api;
mod pages;
mod people;
mod service;
mod supervise;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use tokio::sync::{Mutex, Notify, watch};
use tokio::task::JoinSet;

use crate::domain::Code;
use crate::domain::{RunError, RunMode, Trigger};
use crate::schedule::Schedule;
use crate::sync::{App, AsOf, RunRequest};

pub use api::{AdminRoute, admin_routes, router};
pub use auth::{
    AdminToken, COOKIE_NAME, SESSION_IDLE, SESSION_LIFETIME, SessionPolicy, new_admin_token,
    session_hash,
};
pub use http::HttpLimits;
pub use service::{ServiceRoute, service_routes};
pub use supervise::{Backoff, TaskName, TaskState, TaskStatus, Tasks, supervise};

/// What the HTTP handlers, the scheduler and the mail worker share.
pub struct Daemon {
    pub app: App,
    pub token: AdminToken,
    /// How long sign-in sessions last.
    pub sessions: SessionPolicy,
    /// The supervised tasks, for `/healthz`.
    pub tasks: Arc<Tasks>,
    /// The HTTP server's limits (the request timeout is applied by the router).
    pub limits: HttpLimits,
    runs: Runs,
    /// Wakes the mail worker when a run may have queued mail.
    mail_due: Notify,
    stop: watch::Receiver<bool>,
}

/// The runs in progress, so a stop can wait for them or cut them off.
#[derive(Default)]
struct Runs {
    tasks: Mutex<JoinSet<()>>,
    /// The connectors of the runs in progress, to end cut-off runs as failed.
    connectors: std::sync::Mutex<std::collections::BTreeMap<tokio::task::Id, String>>,
}

/// Why a run asked for over HTTP did not start.
#[derive(Debug)]
pub enum StartError {
    Stopping,
    Busy,
    UnknownConnector(anyhow::Error),
    Failed(anyhow::Error),
}

/// Why the daemon did not approve a held run: it is stopping, or the approval itself was
/// refused ([`crate::sync::ApproveError`] says why).
#[derive(Debug)]
pub enum NotApproved {
    Stopping,
    /// Not found, not held, busy, planning again differs, or a failure on the way.
    Refused(crate::sync::ApproveError),
}

impl Daemon {
    /// Whether a stop was asked for.
    pub fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    /// Starts a run of `connector` in the background and returns its id once it is recorded.
    pub async fn start_run(
        self: &Arc<Daemon>,
        connector: &str,
        request: RunRequest,
    ) -> Result<i64, StartError> {
        if self.stopping() {
            return Err(StartError::Stopping);
        }
        self.app
            .connector_ids(Some(connector))
            .map_err(StartError::UnknownConnector)?;
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let done_rx = self
            .spawn_run(connector, request, Some(started_tx))
            .await
            .ok_or(StartError::Stopping)?;
        match started_rx.await {
            Ok(run_id) => Ok(run_id),
            // The run never got an id: it was busy, or failed before it was recorded.
            Err(_) => match done_rx.await {
                Ok(Ok(false)) => Err(StartError::Busy),
                Ok(Err(e)) => Err(StartError::Failed(e)),
                _ => Err(StartError::Failed(anyhow::anyhow!(
                    "the run ended unexpectedly"
                ))),
            },
        }
    }

    /// Runs `connector` as a task of [`Runs`]; the receiver hears whether it ran (`false`:
    /// a run of it was in progress) or why it could not. `None` once a stop was asked for.
    async fn spawn_run(
        self: &Arc<Daemon>,
        connector: &str,
        request: RunRequest,
        started: Option<tokio::sync::oneshot::Sender<i64>>,
    ) -> Option<tokio::sync::oneshot::Receiver<anyhow::Result<bool>>> {
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let daemon = Arc::clone(self);
        let id = connector.to_string();
        let run = async move {
            let outcome = daemon.app.run_if_free(&id, request, started).await;
            daemon.after_run(&id, &outcome);
            let _ = done_tx.send(outcome.map(|o| o.is_some()));
        };
        self.track(connector, run).await.then_some(done_rx)
    }

    /// Approves held run `run_id` (fetch again, plan again, apply if the same) as a task of
    /// [`Runs`]: a stop waits for it like for any run, and a request that gives up waiting
    /// (its timeout, a closed connection) does not cut it off half-way.
    pub async fn approve(
        self: &Arc<Daemon>,
        run_id: i64,
    ) -> Result<crate::sync::RunOutcome, NotApproved> {
        if self.stopping() {
            return Err(NotApproved::Stopping);
        }
        let connector = match self.app.store.run_report(run_id).await {
            Ok(Some(report)) => report.summary.connector,
            Ok(None) => {
                return Err(NotApproved::Refused(crate::sync::ApproveError::NotFound(
                    run_id,
                )));
            }
            Err(e) => return Err(NotApproved::Refused(e.into())),
        };
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let daemon = Arc::clone(self);
        let id = connector.clone();
        let approval = async move {
            let outcome = daemon.app.approve(run_id).await;
            match &outcome {
                Ok(o) => {
                    tracing::info!(connector = %id, run_id, status = %o.status(), "Held run approved");
                    daemon.mail_due.notify_one();
                }
                Err(e) => {
                    tracing::warn!(connector = %id, run_id, error = %format!("{e:#}"), "Held run not approved")
                }
            }
            let _ = done_tx.send(outcome);
        };
        if !self.track(&connector, approval).await {
            return Err(NotApproved::Stopping);
        }
        match done_rx.await {
            Ok(outcome) => outcome.map_err(NotApproved::Refused),
            Err(_) => Err(NotApproved::Refused(crate::sync::ApproveError::Other(
                anyhow::anyhow!("the approval ended unexpectedly"),
            ))),
        }
    }

    /// Runs `work` (a run of `connector`) as a task of [`Runs`]; `false`, and nothing runs,
    /// once a stop was asked for.
    async fn track(
        self: &Arc<Daemon>,
        connector: &str,
        work: impl Future<Output = ()> + Send + 'static,
    ) -> bool {
        let mut tasks = self.runs.tasks.lock().await;
        // Asked again under the lock: a stop waits for the runs holding it, and a run spawned
        // after that wait would be left running.
        if self.stopping() {
            return false;
        }
        let mut connectors = self
            .runs
            .connectors
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        // Finished tasks are collected here, so neither the set nor the map grows for ever.
        while let Some(finished) = tasks.try_join_next_with_id() {
            let id = match finished {
                Ok((id, ())) => id,
                Err(e) => e.id(),
            };
            connectors.remove(&id);
        }
        let handle = tasks.spawn(work);
        connectors.insert(handle.id(), connector.to_string());
        true
    }

    fn after_run(
        &self,
        connector: &str,
        outcome: &anyhow::Result<Option<crate::sync::RunOutcome>>,
    ) {
        match outcome {
            Ok(Some(o)) => {
                tracing::info!(connector, run_id = o.report.summary.id, status = %o.status(), "Run ended");
                self.mail_due.notify_one();
            }
            Ok(None) => {
                tracing::info!(
                    connector,
                    "A run of this connector is in progress elsewhere; this one was skipped"
                )
            }
            Err(error) => {
                tracing::error!(connector, error = %format!("{error:#}"), "Run could not be carried out")
            }
        }
    }
}

/// Runs the daemon until `shutdown` completes (the CLI passes SIGTERM/SIGINT).
pub async fn serve(
    app: App,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let server = &app.config.settings.server;
    let token = AdminToken::from_settings(server)?;
    if !token.is_configured() {
        let admins = app
            .store
            .list_principals(crate::store::PrincipalKind::Admin)
            .await?;
        if admins.iter().all(|a| a.revoked_at.is_some()) {
            anyhow::bail!(
                "no admin can sign in: add one with `hrsync admins add NAME` (a token of their own), or configure server.admin_token_sha256 (`hrsync admin-token` makes one)"
            );
        }
    }
    let listen: SocketAddr = server
        .listen
        .parse()
        .with_context(|| format!("server.listen `{}`", server.listen))?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    serve_on(app, token, listener, shutdown).await
}

/// [`serve`] on a listener that is already bound (tests bind port 0).
pub async fn serve_on(
    app: App,
    token: AdminToken,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    serve_with(app, token, listener, HttpLimits::default(), shutdown).await
}

/// [`serve_on`] with other HTTP limits (tests use short timeouts).
pub async fn serve_with(
    app: App,
    token: AdminToken,
    listener: tokio::net::TcpListener,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (stop_tx, stop) = watch::channel(false);
    let grace = Duration::from_secs(app.config.settings.server.shutdown_grace_seconds);
    let daemon = Arc::new(Daemon {
        app,
        token,
        sessions: SessionPolicy::default(),
        tasks: Arc::new(Tasks::default()),
        limits,
        runs: Runs::default(),
        mail_due: Notify::new(),
        stop,
    });
    let address = listener.local_addr()?;
    tracing::info!(%address, backend = daemon.app.store.backend_name(), "Serving");

    let mut workers = JoinSet::new();
    for (connector, schedule) in schedules(&daemon.app)? {
        let name = TaskName::scheduler(&connector);
        daemon.tasks.register(&name);
        let d = Arc::clone(&daemon);
        workers.spawn(supervise(
            Arc::clone(&daemon.tasks),
            name,
            daemon.stop.clone(),
            Backoff::default(),
            move || scheduler(Arc::clone(&d), connector.clone(), schedule.clone()),
        ));
    }
    let name = TaskName::mail_worker();
    daemon.tasks.register(&name);
    let d = Arc::clone(&daemon);
    workers.spawn(supervise(
        Arc::clone(&daemon.tasks),
        name,
        daemon.stop.clone(),
        Backoff::default(),
        move || mail_worker(Arc::clone(&d)),
    ));

    let http = tokio::spawn(http::serve(
        listener,
        router(Arc::clone(&daemon)),
        limits,
        daemon.stop.clone(),
    ));

    shutdown.await;
    tracing::info!("Stopping: no new runs; runs in progress may finish");
    let _ = stop_tx.send(true);
    // Schedulers and the mail worker notice the stop between steps.
    while workers.join_next().await.is_some() {}
    finish_runs(&daemon, grace).await;
    match tokio::time::timeout(Duration::from_secs(5), http).await {
        Ok(Err(e)) => tracing::warn!(error = %e, "The HTTP server ended with an error"),
        Err(_) => tracing::warn!("The HTTP server did not stop within 5 s"),
        Ok(Ok(())) => {}
    }
    daemon.app.store.close().await;
    tracing::info!("Stopped");
    Ok(())
}

/// Waits up to `grace` for the runs in progress; cuts off the rest and ends them as failed.
async fn finish_runs(daemon: &Daemon, grace: Duration) {
    let mut tasks = daemon.runs.tasks.lock().await;
    let waited =
        tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
    if waited.is_ok() {
        return;
    }
    let cut: Vec<String> = {
        let map = daemon
            .runs
            .connectors
            .lock()
            .map(|m| m.clone())
            .unwrap_or_default();
        let mut cut = Vec::new();
        tasks.abort_all();
        while let Some(joined) = tasks.join_next_with_id().await {
            if let Err(e) = joined
                && e.is_cancelled()
                && let Some(connector) = map.get(&e.id())
            {
                cut.push(connector.clone());
            }
        }
        cut
    };
    for connector in cut {
        tracing::warn!(connector = %connector, "Run cut off at shutdown; its transaction rolled back");
        // The run's own lock goes with its connection, which closes in the background; take
        // the lock again (a few tries while the database notices) to end the run.
        let mut lock = None;
        for _ in 0..30 {
            if let Ok(Some(taken)) = daemon.app.store.try_lock_connector(&connector).await {
                lock = Some(taken);
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if let Some(lock) = lock {
            let error = RunError {
                code: Code::RunInterrupted.to_string(),
                message: format!(
                    "the daemon stopped and the run did not finish within server.shutdown_grace_seconds ({} s); nothing of it was applied",
                    grace.as_secs()
                ),
            };
            if let Err(e) = daemon
                .app
                .store
                .fail_abandoned_runs(
                    &connector,
                    &error,
                    daemon.app.digest_recipients(&connector),
                    Utc::now(),
                )
                .await
            {
                tracing::warn!(error = %e, "Could not end the cut-off run; the next run of the connector will");
            }
            lock.release().await;
        } else {
            tracing::warn!(connector = %connector, "Could not retake the connector's lock to end the cut-off run; the next run of the connector will");
        }
    }
}

/// The connectors that have a schedule, with it parsed.
fn schedules(app: &App) -> anyhow::Result<Vec<(String, Schedule)>> {
    app.config
        .settings
        .connectors
        .iter()
        .filter_map(|(id, c)| c.schedule.as_ref().map(|s| (id, s)))
        .map(|(id, text)| {
            Schedule::parse(text)
                .map(|s| (id.clone(), s))
                .map_err(|e| anyhow::anyhow!("connectors.{id}.schedule: {e}"))
        })
        .collect()
}

/// One connector's schedule: wait for the next tick, claim it, run. The next tick is always
/// taken after *now*, so ticks missed while a run went on, or while the daemon was down, are
/// skipped rather than replayed in a burst.
async fn scheduler(daemon: Arc<Daemon>, connector: String, schedule: Schedule) {
    let zone = match daemon
        .app
        .config
        .connector(&connector)
        .and_then(|c| daemon.app.config.organisation(&c.organisation))
    {
        Ok(org) => org.time_zone,
        Err(e) => {
            tracing::error!(connector = %connector, error = %e, "Cannot schedule the connector");
            return;
        }
    };
    let mut stop = daemon.stop.clone();
    tracing::info!(connector = %connector, schedule = schedule.as_str(), "Scheduled");
    loop {
        let now = Utc::now();
        let Some(tick) = schedule.next_after(now, zone) else {
            // Done for good, not dead: waiting for the stop keeps the supervisor from
            // restarting a scheduler that has nothing to do.
            tracing::warn!(connector = %connector, "The schedule has no next tick");
            let _ = stop.wait_for(|s| *s).await;
            return;
        };
        let wait = (tick - now).to_std().unwrap_or_default();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        match daemon.app.store.claim_tick(&connector, tick).await {
            Ok(true) => {}
            Ok(false) => continue, // another replica has this tick
            Err(e) => {
                tracing::error!(connector = %connector, error = %e, "Cannot claim the schedule tick");
                continue;
            }
        }
        let request = RunRequest {
            mode: RunMode::Apply,
            trigger: Trigger::Schedule,
            as_of: AsOf::Now,
            scheduled_for: Some(tick),
            review: false,
        };
        let Some(done_rx) = daemon.spawn_run(&connector, request, None).await else {
            return;
        };
        // One scheduled run of a connector at a time: the next tick is looked for after it.
        tokio::select! {
            _ = done_rx => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// Sends due mail whenever a run may have queued some, and every `mail_poll_seconds`.
async fn mail_worker(daemon: Arc<Daemon>) {
    let poll = Duration::from_secs(daemon.app.config.settings.server.mail_poll_seconds.max(1));
    let mut stop = daemon.stop.clone();
    loop {
        let keep_going = {
            let stop = daemon.stop.clone();
            move || !*stop.borrow()
        };
        match daemon.app.drain_outbox_while(keep_going).await {
            Ok(d) if d.sent + d.failed + d.undeliverable + d.cancelled > 0 => {
                tracing::info!(
                    sent = d.sent,
                    failed = d.failed,
                    undeliverable = d.undeliverable,
                    cancelled = d.cancelled,
                    "Outbox drained"
                )
            }
            Ok(_) => {}
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "The mail worker could not read the outbox")
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(poll) => {}
            _ = daemon.mail_due.notified() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// Completes on SIGTERM or SIGINT.
pub async fn signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
