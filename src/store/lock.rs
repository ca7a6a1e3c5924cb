//! Connector run locks: one run of a connector at a time, across processes and replicas.
//!
//! They live outside the SQL the backends share, because the two backends lock in different
//! ways: a session advisory lock on PostgreSQL, an OS lock on a file beside the database on
//! SQLite. The same lock files keep two processes from migrating a new SQLite file at once.

use std::path::Path;
use std::time::Duration;

use sqlx::sqlite::SqlitePool;

use super::{Doing, Result, Store, StoreError};

/// Taking a connector's run lock.
impl Store {
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
    for (to, from) in bytes.iter_mut().zip(digest.as_ref()) {
        *to = *from;
    }
    i64::from_be_bytes(bytes)
}

/// The absolute path of a SQLite pool's database file, as SQLite itself resolved it; `None`
/// for an in-memory database (SQLite gives its file as empty).
pub(super) async fn sqlite_file(pool: &SqlitePool) -> Result<Option<std::path::PathBuf>> {
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
pub(super) async fn wait_for_lock_file(db: &Path, what: &str) -> Result<std::fs::File> {
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
