//! The store: every SQL statement of hrsync, for SQLite and PostgreSQL alike.
//!
//! [`Store`] wraps a pool of either backend; the database URL picks which. The statements are
//! written once, in `backend.rs`, and compiled twice, once per backend (`mod sqlite` and
//! `mod postgres` below include the same file with a different `Db` type), so both backends
//! run the very same SQL with native types (timestamps are `TIMESTAMPTZ` on PostgreSQL and
//! RFC 3339 text on SQLite) and no dynamic dispatch. Where the dialects differ (row locks
//! when claiming mail) the code branches on the backend's `POSTGRES` constant.
//!
//! Nothing here loops a query over records: the directory loads in a handful of queries and
//! the applier writes in batched multi-row statements, inside one transaction per run.

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use secrecy::{ExposeSecret, SecretString};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

use crate::domain::{
    Directory, FetchKind, RunError, RunMode, RunReport, RunStatus, RunSummary, Trigger,
};
use crate::planner::Plan;
use crate::planner::health::FeedStats;

mod snapshot;

mod sqlite {
    //! The store's statements compiled for SQLite.
    pub(super) type Db = sqlx::Sqlite;
    pub(super) const POSTGRES: bool = false;
    include!("backend.rs");
}

mod postgres {
    //! The store's statements compiled for PostgreSQL.
    pub(super) type Db = sqlx::Postgres;
    pub(super) const POSTGRES: bool = true;
    include!("backend.rs");
}

/// Errors of the store. Each names what it was doing.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    // Each message carries its cause itself (no `#[source]`), so printing an error chain
    // does not repeat it.
    #[error("cannot open the database: {0}")]
    Connect(sqlx::Error),
    #[error("cannot migrate the database: {0}")]
    Migrate(sqlx::migrate::MigrateError),
    #[error("database error while {doing}: {cause}")]
    Query {
        doing: &'static str,
        cause: sqlx::Error,
    },
    #[error("the database holds a value it cannot read: {0}")]
    Corrupt(String),
    #[error("{0}")]
    NotFound(String),
    /// The run was ended by another process while this one worked on it.
    #[error("{0}")]
    Superseded(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Adds what the store was doing to a sqlx error.
pub(crate) trait Doing<T> {
    fn doing(self, doing: &'static str) -> Result<T>;
}

impl<T> Doing<T> for std::result::Result<T, sqlx::Error> {
    fn doing(self, doing: &'static str) -> Result<T> {
        self.map_err(|cause| StoreError::Query { doing, cause })
    }
}

enum Backend {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The database, SQLite or PostgreSQL.
pub struct Store {
    backend: Backend,
    /// On PostgreSQL, the connections that hold connector locks, apart from the pool the
    /// work uses: a run holds its lock connection for as long as it runs, so several runs at
    /// once could otherwise take every connection and wait for one to do their work with.
    locks: Option<PgPool>,
    /// On SQLite, the database file's absolute path: connector locks are OS file locks on
    /// files beside it ([`Store::try_lock_connector`]). `None` for an in-memory database,
    /// which no other process can open.
    sqlite_file: Option<std::path::PathBuf>,
}

/// How many connector locks one process may hold at once (one per connector running).
const MAX_LOCKS: u32 = 64;

/// The largest pool the store opens (`database.max_connections`). The pool reserves room for
/// every connection up front, so an absurd size would exhaust memory before any connection
/// is made; a sync needs a handful, and 100 is PostgreSQL's default server-wide limit.
pub const MAX_POOL_SIZE: u32 = 100;

macro_rules! dispatch {
    ($self:ident . $f:ident ( $($arg:expr),* $(,)? )) => {
        match &$self.backend {
            Backend::Sqlite(pool) => sqlite::$f(pool, $($arg),*).await,
            Backend::Postgres(pool) => postgres::$f(pool, $($arg),*).await,
        }
    };
}

/// The outbox kind of the admins' digest of a run (`mail_outbox.kind`).
pub const DIGEST_KIND: &str = "digest";

/// The organisation row a run works in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrganisationRow {
    pub id: i64,
    pub slug: String,
    pub name: String,
    pub locale: String,
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

/// What an incremental connector keeps when its run is applied.
#[derive(Clone, Copy, Debug)]
pub struct FeedUpdate<'a> {
    /// When the fetch started: the next incremental fetch asks for changes since then.
    pub watermark: DateTime<Utc>,
    /// Whether the whole feed was read (rather than only what changed).
    pub full: bool,
    /// The records planned on: the delta merged into what was known, or the whole feed.
    pub records: &'a [crate::domain::HrRecord],
    /// What the records were mapped with; see [`FeedState::fingerprint`].
    pub fingerprint: &'a str,
}

/// Where an incremental connector stands.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FeedState {
    /// When the last applied fetch started.
    pub watermark: Option<DateTime<Utc>>,
    /// When the last applied full fetch happened.
    pub last_full_at: Option<DateTime<Utc>>,
    /// Incremental runs applied since then.
    pub incremental_runs: i64,
    /// A digest of the definition and variables the kept records were mapped with: when it
    /// differs from today's, the kept records are stale and the whole feed is read again.
    pub fingerprint: Option<String>,
}

/// What an applied run wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    pub accounts_created: usize,
    pub mails_queued: usize,
}

/// An email waiting in the outbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxMail {
    pub id: i64,
    pub organisation_id: i64,
    pub organisation_name: String,
    pub locale: String,
    /// The organisation's IANA time zone, for times a mail shows.
    pub time_zone: String,
    pub account_id: Option<i64>,
    /// The run that queued the mail (none for a resend).
    pub run_id: Option<i64>,
    pub kind: String,
    pub recipient: String,
    pub recipient_name: Option<String>,
    pub old_email: Option<String>,
    pub new_email: Option<String>,
    pub attempts: i32,
    /// Until when this worker's claim reserves the mail; also the claim's mark, so a worker
    /// can tell whether the mail is still its own ([`Store::renew_claim`]).
    pub claimed_until: DateTime<Utc>,
    /// When the mail was queued.
    pub created_at: DateTime<Utc>,
}

/// The outbox at a glance.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OutboxStats {
    pub pending: i64,
    pub failing: i64,
    pub sent: i64,
    /// Mails refused for good (not tried again).
    pub undeliverable: i64,
    /// When the oldest email still waiting was queued.
    pub oldest_pending: Option<DateTime<Utc>>,
}

/// Filters for the account list.
#[derive(Clone, Debug, Default)]
pub struct UserFilter {
    pub organisation: Option<String>,
    pub status: Option<String>,
    pub search: Option<String>,
}

/// One line of the account list: an account's membership of one organisation.
#[derive(Clone, Debug, PartialEq)]
pub struct UserRow {
    pub account_id: i64,
    pub organisation: String,
    pub email: String,
    pub display_name: Option<String>,
    pub employee_id: Option<String>,
    pub status: String,
    pub connector: Option<String>,
    pub job_title: Option<String>,
    pub teams: Vec<String>,
    pub roles: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub activated_at: Option<DateTime<Utc>>,
    /// The person's newest mail that failed and was not followed by one of its kind that went
    /// out.
    pub mail_problem: Option<MailProblem>,
}

/// A mail to a person that did not go out: still retried, or refused for good.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailProblem {
    /// The mail's kind, such as `activation`.
    pub kind: String,
    /// The last error, as the mail server or the renderer gave it.
    pub error: String,
    /// Refused for good (a 5xx answer, or a message that cannot be built): not tried again.
    pub undeliverable: bool,
}

impl Store {
    /// Opens the database the URL names; a SQLite file and its folder are created if missing.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Store> {
        Store::connect_with_password(url, max_connections, None).await
    }

    /// [`Store::connect`], with a PostgreSQL password kept apart from the URL.
    pub async fn connect_with_password(
        url: &str,
        max_connections: u32,
        password: Option<&SecretString>,
    ) -> Result<Store> {
        // `hrsync check` refuses these sizes already; this keeps a caller that skipped it from
        // aborting the process on the allocation (or sqlx from panicking on 0).
        if !(1..=MAX_POOL_SIZE).contains(&max_connections) {
            return Err(StoreError::Connect(sqlx::Error::Configuration(
                format!("a pool of {max_connections} connections is out of range; use 1 to {MAX_POOL_SIZE}").into(),
            )));
        }
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)
                .map_err(StoreError::Connect)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(30));
            if let Some(parent) = Path::new(options.get_filename()).parent()
                && !parent.as_os_str().is_empty()
            {
                std::fs::create_dir_all(parent)
                    .map_err(|e| StoreError::Connect(sqlx::Error::Io(e)))?;
            }
            let pool = SqlitePoolOptions::new()
                .max_connections(max_connections)
                .connect_with(options)
                .await
                .map_err(StoreError::Connect)?;
            let sqlite_file = sqlite_file(&pool).await?;
            Ok(Store {
                backend: Backend::Sqlite(pool),
                locks: None,
                sqlite_file,
            })
        } else {
            let mut options = PgConnectOptions::from_str(url).map_err(StoreError::Connect)?;
            if let Some(password) = password {
                options = options.password(password.expose_secret());
            }
            let pool = PgPoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options.clone())
                .await
                .map_err(StoreError::Connect)?;
            let locks = PgPoolOptions::new()
                .max_connections(MAX_LOCKS)
                .min_connections(0)
                .idle_timeout(Duration::from_secs(60))
                .acquire_timeout(Duration::from_secs(10))
                .connect_lazy_with(options);
            Ok(Store {
                backend: Backend::Postgres(pool),
                locks: Some(locks),
                sqlite_file: None,
            })
        }
    }

    /// `sqlite` or `postgres`.
    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// Brings the schema up to date with the migrations under `migrations/`.
    pub async fn migrate(&self) -> Result<()> {
        match &self.backend {
            Backend::Sqlite(pool) => {
                // sqlx migrates PostgreSQL under an advisory lock but SQLite under none: two
                // processes starting on a new file would both create its tables, and one fail.
                let _turn = match &self.sqlite_file {
                    Some(db) => Some(wait_for_lock_file(db, "migrate").await?),
                    None => None,
                };
                sqlx::migrate!("migrations/sqlite")
                    .run(pool)
                    .await
                    .map_err(StoreError::Migrate)?
            }
            Backend::Postgres(pool) => sqlx::migrate!("migrations/postgres")
                .run(pool)
                .await
                .map_err(StoreError::Migrate)?,
        }
        Ok(())
    }

    pub async fn close(&self) {
        match &self.backend {
            Backend::Sqlite(pool) => pool.close().await,
            Backend::Postgres(pool) => {
                if let Some(locks) = &self.locks {
                    locks.close().await;
                }
                pool.close().await
            }
        }
    }

    /// Creates the organisation, or brings its name, time zone and locale up to date.
    pub async fn upsert_organisation(
        &self,
        slug: &str,
        name: &str,
        time_zone: &str,
        locale: &str,
        now: DateTime<Utc>,
    ) -> Result<OrganisationRow> {
        dispatch!(self.upsert_organisation(slug, name, time_zone, locale, now))
    }

    /// The directory the planner compares a feed with: the organisation's rows, and the
    /// accounts whose email is among `emails` (lower-cased), which a record may link.
    pub async fn load_directory(
        &self,
        organisation_id: i64,
        emails: &[String],
    ) -> Result<Directory> {
        dispatch!(self.load_directory(organisation_id, emails))
    }

    /// Records the start of a run and returns its id.
    pub async fn start_run(&self, run: &NewRun<'_>) -> Result<i64> {
        dispatch!(self.start_run(run))
    }

    /// Ends a run that applies nothing (a dry run, a held or a failed run), with its changes
    /// and errors, in one transaction.
    pub async fn end_run(&self, run_id: i64, end: &RunEnd<'_>) -> Result<()> {
        dispatch!(self.end_run(run_id, end))
    }

    /// Applies a plan in one transaction, in named phases: accounts, memberships, teams and
    /// coaches, roles, deactivations, then the outbox rows and the run's report. Either all of
    /// it is written or none of it.
    pub async fn apply_plan(&self, run: &ApplyRun<'_>, plan: &Plan) -> Result<Applied> {
        dispatch!(self.apply_plan(run, plan))
    }

    /// The newest runs first, of every connector or of one.
    pub async fn list_runs(&self, limit: i64, connector: Option<&str>) -> Result<Vec<RunSummary>> {
        dispatch!(self.list_runs(limit, connector))
    }

    /// The newest run of each connector, in connector order.
    pub async fn last_runs(&self) -> Result<Vec<RunSummary>> {
        dispatch!(self.last_runs())
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<()> {
        dispatch!(self.ping())
    }

    /// Claims a schedule tick of a connector: true for the one caller (of every replica) that
    /// moves the connector's last tick forward to `tick`, false for everyone else.
    pub async fn claim_tick(&self, connector: &str, tick: DateTime<Utc>) -> Result<bool> {
        dispatch!(self.claim_tick(connector, tick))
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
        dispatch!(self.fail_abandoned_runs(connector, error, digest_to, now))
    }

    /// How the connector's last applied (not dry) run before `before` ended: its status and
    /// its error codes (a held run's hold code, a failed run's failure code).
    pub async fn previous_outcome(
        &self,
        connector: &str,
        before: i64,
    ) -> Result<Option<(RunStatus, Vec<String>)>> {
        dispatch!(self.previous_outcome(connector, before))
    }

    /// Takes the connector's run lock if no one holds it. On PostgreSQL this is a session
    /// advisory lock, held by a connection of its own until [`ConnectorLock::release`] (or
    /// until that connection closes, should the process die), so one replica at a time runs
    /// the connector. On SQLite it is an exclusive OS lock on a file beside the database
    /// (`<db>.connector-<hash>.lock`), so a `sync` from the command line and a `serve` on the
    /// same file take turns; the OS drops it when the lock is released or the process dies.
    /// An in-memory SQLite database has no other process to keep out: it always succeeds.
    pub async fn try_lock_connector(&self, connector: &str) -> Result<Option<ConnectorLock>> {
        let key = lock_key(connector);
        if let Some(db) = &self.sqlite_file {
            return Ok(lock_file(db, connector, key)?.map(|file| ConnectorLock {
                conn: None,
                key,
                file: Some(file),
            }));
        }
        let Some(pool) = &self.locks else {
            return Ok(Some(ConnectorLock {
                conn: None,
                key,
                file: None,
            }));
        };
        let mut conn = pool
            .acquire()
            .await
            .doing("taking a connection for a lock")?;
        let (taken,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_lock($1)")
            .bind(key)
            .fetch_one(&mut *conn)
            .await
            .doing("taking the connector's lock")?;
        Ok(taken.then_some(ConnectorLock {
            conn: Some(conn),
            key,
            file: None,
        }))
    }

    /// One run with its changes and errors.
    pub async fn run_report(&self, run_id: i64) -> Result<Option<RunReport>> {
        dispatch!(self.run_report(run_id))
    }

    /// Emails that are due, oldest first, claimed so that no other worker sends them while
    /// this one is busy (`FOR UPDATE SKIP LOCKED` on PostgreSQL).
    pub async fn claim_due_mail(
        &self,
        now: DateTime<Utc>,
        lease: Duration,
        limit: i64,
    ) -> Result<Vec<OutboxMail>> {
        dispatch!(self.claim_due_mail(now, lease, limit))
    }

    /// Issues an activation token for an outbox mail: earlier unused tokens of the account in
    /// that organisation are revoked, and only the token's hash is stored. When the mail no
    /// longer applies (the person left, activated, or has another address) it is cancelled
    /// instead, and the reason is returned.
    pub async fn issue_activation_token(
        &self,
        mail: &OutboxMail,
        token_hash: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<Option<String>> {
        dispatch!(self.issue_activation_token(mail, token_hash, now, expires_at))
    }

    /// Extends this worker's claim on a mail to `until`, just before sending it: false when the
    /// claim ran out and another worker has claimed the mail since (or it was sent), so it
    /// must not be sent here.
    pub async fn renew_claim(&self, mail: &OutboxMail, until: DateTime<Utc>) -> Result<bool> {
        let until = until.trunc_subsecs(6);
        dispatch!(self.renew_claim(mail.id, mail.claimed_until, until))
    }

    /// Cancels a queued email that no longer applies; `reason` is kept as its last error.
    pub async fn cancel_mail(&self, id: i64, reason: &str, now: DateTime<Utc>) -> Result<()> {
        dispatch!(self.cancel_mail(id, reason, now))
    }

    /// Hands claimed emails back unsent: due again at `now`, for any worker.
    pub async fn release_mail(&self, ids: &[i64], now: DateTime<Utc>) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        dispatch!(self.release_mail(ids, now))
    }

    pub async fn mark_mail_sent(&self, id: i64, now: DateTime<Utc>) -> Result<()> {
        dispatch!(self.mark_mail_sent(id, now))
    }

    pub async fn mark_mail_failed(
        &self,
        id: i64,
        error: &str,
        retry_at: DateTime<Utc>,
    ) -> Result<()> {
        dispatch!(self.mark_mail_failed(id, error, retry_at))
    }

    /// Marks a mail failed for good (the server refused it with a 5xx answer, or it cannot be
    /// built): it is not tried again, and the account and the run's digest show the reason.
    pub async fn mark_mail_undeliverable(
        &self,
        id: i64,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        dispatch!(self.mark_mail_undeliverable(id, error, now))
    }

    /// The mails a run queued that were refused for good: (recipient, error), in queue order.
    pub async fn undeliverable_mail_of_run(&self, run_id: i64) -> Result<Vec<(String, String)>> {
        dispatch!(self.undeliverable_mail_of_run(run_id))
    }

    pub async fn outbox_stats(&self) -> Result<OutboxStats> {
        dispatch!(self.outbox_stats())
    }

    /// Queues a new activation email for the account with this email in the organisation.
    /// The earlier link stops working when the new one is issued.
    pub async fn queue_activation_resend(
        &self,
        organisation_slug: &str,
        email_key: &str,
        now: DateTime<Utc>,
    ) -> Result<i64> {
        dispatch!(self.queue_activation_resend(organisation_slug, email_key, now))
    }

    /// Accounts with their memberships, filtered.
    pub async fn list_users(&self, filter: &UserFilter) -> Result<Vec<UserRow>> {
        dispatch!(self.list_users(filter))
    }

    /// The connector's last applied feed, for the feed-health gate.
    pub async fn connector_state(&self, connector: &str) -> Result<Option<FeedStats>> {
        dispatch!(self.connector_state(connector))
    }

    /// The watermark and full-fetch bookkeeping of an incremental connector.
    pub async fn feed_state(&self, connector: &str) -> Result<FeedState> {
        dispatch!(self.feed_state(connector))
    }

    /// Notes how a run read an incremental connector's feed (`FetchKind`), for its report and
    /// for approving it the same way.
    pub async fn set_run_fetch(&self, run_id: i64, fetch: FetchKind) -> Result<()> {
        dispatch!(self.set_run_fetch(run_id, fetch))
    }

    /// The records an incremental connector last knew, in employee id order.
    pub async fn feed_snapshot(&self, connector: &str) -> Result<Vec<crate::domain::HrRecord>> {
        dispatch!(self.feed_snapshot(connector))
    }

    /// Token lookup for tests and the activation endpoint: the state of a token by its hash.
    pub async fn token_state(&self, token_hash: &str, now: DateTime<Utc>) -> Result<TokenState> {
        dispatch!(self.token_state(token_hash, now))
    }

    /// Marks an account activated (and its invited memberships active) with a valid token.
    pub async fn activate(&self, token_hash: &str, now: DateTime<Utc>) -> Result<TokenState> {
        dispatch!(self.activate(token_hash, now))
    }
}

/// A connector's run lock; see [`Store::try_lock_connector`].
pub struct ConnectorLock {
    conn: Option<sqlx::pool::PoolConnection<sqlx::Postgres>>,
    key: i64,
    /// On SQLite, the locked file; closing it (on drop, or when the process dies) unlocks it.
    file: Option<std::fs::File>,
}

impl ConnectorLock {
    /// Releases the lock, and closes its connection: should this future be dropped
    /// half-way, or unlocking fail, no connection still holding the lock goes back to a pool.
    pub async fn release(mut self) {
        if let Some(file) = self.file.take() {
            // Closing the file unlocks it too; unlocking first says so plainly.
            let _ = file.unlock();
        }
        if let Some(mut conn) = self.conn.take() {
            conn.close_on_drop();
            let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(self.key)
                .execute(&mut *conn)
                .await;
        }
    }
}

impl Drop for ConnectorLock {
    fn drop(&mut self) {
        // Dropped without `release` (a cancelled run): end the session, which frees the lock,
        // rather than hand a locked connection back to the pool.
        if let Some(conn) = self.conn.as_mut() {
            conn.close_on_drop();
        }
    }
}

/// The advisory lock key of a connector: the first 8 bytes of a SHA-256 of a namespaced id,
/// stable across processes and versions.
fn lock_key(connector: &str) -> i64 {
    let digest = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        format!("hrsync.connector:{connector}").as_bytes(),
    );
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest.as_ref()[..8]);
    i64::from_be_bytes(bytes)
}

/// The absolute path of a SQLite pool's database file, as SQLite itself resolved it; `None`
/// for an in-memory database (SQLite gives its file as empty).
async fn sqlite_file(pool: &SqlitePool) -> Result<Option<std::path::PathBuf>> {
    let (file,): (String,) =
        sqlx::query_as("SELECT file FROM pragma_database_list WHERE name = 'main'")
            .fetch_one(pool)
            .await
            .doing("finding the database file")?;
    if file.is_empty() {
        return Ok(None);
    }
    // One file reached by two paths (a symbolic link, say) must give one lock file.
    let path = std::path::PathBuf::from(file);
    Ok(Some(std::fs::canonicalize(&path).unwrap_or(path)))
}

/// Takes the exclusive OS lock on a connector's lock file beside the SQLite database `db`, or
/// `None` when another holder has it. The lock belongs to the open file, so a second handle
/// is refused even within one process, and it goes when the file is closed or the process
/// dies. The file itself stays: removing it while another process waits to open it would let
/// two holders lock two different files.
fn lock_file(db: &Path, connector: &str, key: i64) -> Result<Option<std::fs::File>> {
    use std::io::Write;
    let io = |cause| lock_error("taking the connector's lock file", cause);
    // The hash, not the id, names the file: any id gives a safe file name.
    let mut file = open_lock_file(db, &format!("connector-{key:016x}")).map_err(io)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
        Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
    }
    // The last holder, for an operator who looks at the file while a run is refused.
    file.set_len(0).map_err(io)?;
    writeln!(
        file,
        "connector {connector}, process {}",
        std::process::id()
    )
    .map_err(io)?;
    Ok(Some(file))
}

/// Waits for the exclusive OS lock on `<db>.<what>.lock` beside the SQLite database `db`, for
/// work that every process must do in turn; the lock goes when the file is dropped.
async fn wait_for_lock_file(db: &Path, what: &str) -> Result<std::fs::File> {
    // Long enough for another process to migrate a large database, short enough that a stuck
    // one is reported rather than waited on for ever.
    const PATIENCE: Duration = Duration::from_secs(120);
    let doing = "waiting for another process to migrate the database";
    let file = open_lock_file(db, what).map_err(|e| lock_error(doing, e))?;
    let started = std::time::Instant::now();
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) if started.elapsed() < PATIENCE => {
                // Polling keeps the async worker free; a blocking `lock` would not.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(lock_error(
                    doing,
                    std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("its lock was held for over {} s", PATIENCE.as_secs()),
                    ),
                ));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(lock_error(doing, e)),
        }
    }
}

/// Opens (creating it if missing) the lock file `<db>.<what>.lock` beside a SQLite database.
fn open_lock_file(db: &Path, what: &str) -> std::io::Result<std::fs::File> {
    let mut name = db.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{what}.lock"));
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(db.with_file_name(name))
}

fn lock_error(doing: &'static str, cause: std::io::Error) -> StoreError {
    StoreError::Query {
        doing,
        cause: sqlx::Error::Io(cause),
    }
}

/// What a token is worth.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenState {
    Valid { account_id: i64, email: String },
    Used,
    Revoked,
    Expired,
    Unknown,
}

/// An admin sign-in session as stored (`server::auth` decides whether it is still good).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminSession {
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Admin sign-in sessions of the pages, by the SHA-256 of the session id in the cookie.
impl Store {
    /// Records a new session, last seen `now`, ending at `expires_at` at the latest.
    pub async fn create_admin_session(
        &self,
        session_hash: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<()> {
        dispatch!(self.create_admin_session(session_hash, now, expires_at))
    }

    /// The session with this hash, whatever its state; `None` when there is none.
    pub async fn admin_session(&self, session_hash: &str) -> Result<Option<AdminSession>> {
        dispatch!(self.admin_session(session_hash))
    }

    /// Notes that the session was used at `now` (never moves it backwards).
    pub async fn touch_admin_session(&self, session_hash: &str, now: DateTime<Utc>) -> Result<()> {
        dispatch!(self.touch_admin_session(session_hash, now))
    }

    /// Signs the session out; whether it was live.
    pub async fn revoke_admin_session(
        &self,
        session_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        dispatch!(self.revoke_admin_session(session_hash, now))
    }

    /// Deletes sessions that can no longer be used: past their end, last seen at or before
    /// `idle_since`, or signed out. Returns how many.
    pub async fn purge_admin_sessions(
        &self,
        now: DateTime<Utc>,
        idle_since: DateTime<Utc>,
    ) -> Result<u64> {
        dispatch!(self.purge_admin_sessions(now, idle_since))
    }
}

/// Counts change lines per kind, from `(kind, count)` rows.
fn counts_map(rows: impl IntoIterator<Item = (String, i64)>) -> BTreeMap<String, i64> {
    rows.into_iter().collect()
}
