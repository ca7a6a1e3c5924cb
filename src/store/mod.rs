//! The store: every SQL statement of hrsync, for SQLite and PostgreSQL alike.
//!
//! [`Store`] wraps a pool of either backend; the database URL picks which. The store is split by
//! aggregate, and each aggregate has two halves with the same name: a public face in this folder
//! (`organisations.rs`, `directory.rs`, `runs.rs`, `apply.rs`, `outbox.rs`, `tokens.rs`,
//! `feed.rs`, `schedule.rs`, `admin_sessions.rs`, `users.rs`, `manual.rs`, `person.rs`, `principals.rs`, `service.rs`: its types and its `Store`
//! methods), and its SQL in `backend/`. The SQL is written once and compiled twice: `sqlite.rs`
//! and `postgres.rs` each load the `backend/` modules with their own `Db` type and `POSTGRES`
//! constant, so both backends run the very same SQL with native types (timestamps are
//! `TIMESTAMPTZ` on PostgreSQL and RFC 3339 text on SQLite) and no dynamic dispatch. Where the
//! dialects differ (row locks when claiming mail) the code branches on `POSTGRES`. `lock.rs` holds
//! the connector run locks, which live outside the SQL (advisory locks, lock files).
//!
//! Nothing here loops a query over records: the directory loads in a handful of queries and
//! the applier writes in batched multi-row statements, inside one transaction per run.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

/// Calls the backend function `$aggregate::$f` of the store's pool, for either backend: the
/// same SQL, compiled once per backend (see the module's documentation).
macro_rules! dispatch {
    ($self:ident, $aggregate:ident :: $f:ident ( $($arg:expr),* $(,)? )) => {
        match &$self.backend {
            $crate::store::Backend::Sqlite(pool) => {
                $crate::store::sqlite::backend::$aggregate::$f(pool, $($arg),*).await
            }
            $crate::store::Backend::Postgres(pool) => {
                $crate::store::postgres::backend::$aggregate::$f(pool, $($arg),*).await
            }
        }
    };
}

mod admin_sessions;
mod apply;
mod credentials;
mod directory;
mod feed;
mod lock;
mod manual;
mod organisations;
mod outbox;
mod person;
mod postgres;
mod principals;
mod runs;
mod schedule;
mod service;
mod snapshot;
mod sqlite;
mod tokens;
mod users;

pub use admin_sessions::AdminSession;
pub use apply::{Applied, ApplyRun};
pub use feed::{FeedState, FeedUpdate};
pub use lock::ConnectorLock;
pub use manual::{
    AuditEntry, Edited, MembershipAction, NewPerson, PersonAdded, RoleListing, TeamListing,
    TeamPerson, TeamRole,
};
pub use organisations::OrganisationRow;
pub use outbox::{DIGEST_KIND, OutboxMail, OutboxStats};
pub use person::{
    HISTORY_LINES, HistoryLine, PersonMembership, PersonRole, PersonTeam, PersonView,
};
pub use principals::{Principal, PrincipalKind};
pub use runs::{NewRun, RunEnd, RunFilter};
pub use service::{
    DirectoryAccount, DirectoryMembership, DirectoryPage, DirectoryQuery, DirectoryRole,
    DirectoryTeamLink,
};
pub use tokens::TokenState;
pub use users::{
    MailProblem, STATUSES, UserFilter, UserPage, UserRow, UserSort, UserStats, UsersPage,
};

/// Errors of the store. Each names what it was doing.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    // Each message carries its cause itself (no `#[source]`), so printing an error chain
    // does not repeat it.
    #[error("cannot open the database: {0}")]
    Connect(sqlx::Error),
    /// PostgreSQL did not let us in: what failed (refused, name lookup, authentication, TLS,
    /// no answer) and where.
    #[error("cannot open the database: {0}")]
    Unreachable(String),
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
    /// An action by hand that the rules refuse (a field HR owns, a membership a connector
    /// manages); the message says why.
    #[error("{0}")]
    Refused(String),
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

#[derive(Clone)]
enum Backend {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The database, SQLite or PostgreSQL. A clone shares the same pools.
#[derive(Clone)]
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

/// How many rows sqlx's SQLite worker thread may run ahead of the task reading them (sqlx
/// buffers 50): each time the buffer fills or empties, a thread waits and is woken.
const SQLITE_ROW_BUFFER: usize = 1024;

/// How long the first connection to PostgreSQL may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Connects to PostgreSQL once and closes the connection: an error says what failed.
async fn first_connection(options: &PgConnectOptions) -> Result<()> {
    use sqlx::{ConnectOptions as _, Connection as _};
    let place = format!("{}:{}", options.get_host(), options.get_port());
    match tokio::time::timeout(CONNECT_TIMEOUT, options.connect()).await {
        Err(_) => Err(StoreError::Unreachable(format!(
            "PostgreSQL at {place} did not answer within {} s",
            CONNECT_TIMEOUT.as_secs()
        ))),
        Ok(Err(e)) => Err(StoreError::Unreachable(connect_failure(&place, &e))),
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
            Ok(())
        }
    }
}

/// What a failed connection to PostgreSQL at `place` (host:port) means, in words.
fn connect_failure(place: &str, e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Io(io) => match io.kind() {
            std::io::ErrorKind::ConnectionRefused => format!(
                "connection refused by {place}: is PostgreSQL running there, on that port? ({io})"
            ),
            std::io::ErrorKind::TimedOut => format!("{place} did not answer ({io})"),
            _ if io.to_string().contains("lookup") || io.to_string().contains("resolve") => {
                format!("the host name of {place} was not found ({io})")
            }
            _ => format!("cannot reach {place}: {io}"),
        },
        sqlx::Error::Tls(tls) => format!("TLS with {place} failed: {tls}"),
        sqlx::Error::Database(db) => {
            // 28P01: wrong password; 28000: no such user or not allowed (pg_hba.conf);
            // 3D000: no such database.
            match db.code().as_deref() {
                Some("28P01" | "28000") => {
                    format!("authentication failed at {place}: {}", db.message())
                }
                Some("3D000") => format!("{place}: {}", db.message()),
                _ => format!("{place} refused the connection: {}", db.message()),
            }
        }
        other => format!("{place}: {other}"),
    }
}

/// Opening, migrating and closing the database.
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
                .busy_timeout(Duration::from_secs(30))
                .row_buffer_size(SQLITE_ROW_BUFFER);
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
            let sqlite_file = lock::sqlite_file(&pool).await?;
            Ok(Store {
                backend: Backend::Sqlite(pool),
                locks: None,
                sqlite_file,
            })
        } else {
            // No JIT compilation: the pages' counting queries over 100,000 memberships cost
            // enough to trigger it, and compiling took 260 ms of a 610 ms query that runs in
            // 310 ms without it. None of hrsync's queries runs long enough to win it back.
            let mut options = PgConnectOptions::from_str(url)
                .map_err(StoreError::Connect)?
                .options([("jit", "off")]);
            if let Some(password) = password {
                options = options.password(password.expose_secret());
            }
            // One connection first, on its own and within a short time, so that what fails is
            // said at once (the pool would retry until its acquire timeout and then say only
            // that it timed out).
            first_connection(&options).await?;
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
                    Some(db) => Some(lock::wait_for_lock_file(db, "migrate").await?),
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

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<()> {
        dispatch!(self, common::ping())
    }

    /// After a run that wrote many rows: PostgreSQL's statistics of the directory's tables
    /// brought up to date (`ANALYZE`), so the pages' queries are planned on what the tables
    /// hold now, whether or not autovacuum runs. SQLite plans these queries well without.
    pub async fn refresh_statistics(&self) -> Result<()> {
        dispatch!(self, common::refresh_statistics())
    }
}
