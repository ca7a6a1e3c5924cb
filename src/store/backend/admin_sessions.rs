//! The SQL of admin sign-in sessions. Whether a session is still good (absolute expiry, idle
//! timeout, signed out) is decided by the server from the row; these statements only keep the
//! rows. Times are whole seconds, so that SQLite's RFC 3339 text compares in time order in
//! `purge_admin_sessions`.

use chrono::{DateTime, SubsecRound, Utc};
use sqlx::Pool;

use super::Db;
use crate::store::{AdminSession, Doing, Result};

pub(in crate::store) async fn create_admin_session(
    pool: &Pool<Db>,
    session_hash: &str,
    admin_name: Option<&str>,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<()> {
    let now = now.trunc_subsecs(0);
    sqlx::query(
        "INSERT INTO admin_sessions (session_hash, admin_name, created_at, last_seen_at, \
         expires_at) VALUES ($1, $4, $2, $2, $3)",
    )
    .bind(session_hash)
    .bind(now)
    .bind(expires_at.trunc_subsecs(0))
    .bind(admin_name)
    .execute(pool)
    .await
    .doing("starting an admin session")?;
    Ok(())
}

pub(in crate::store) async fn admin_session(
    pool: &Pool<Db>,
    session_hash: &str,
) -> Result<Option<AdminSession>> {
    sqlx::query_as(
        // A session of an admin who was revoked since reads as revoked then.
        "SELECT s.created_at, s.last_seen_at, s.expires_at, \
         COALESCE(s.revoked_at, a.revoked_at) AS revoked_at, s.admin_name \
         FROM admin_sessions s LEFT JOIN admins a ON a.name = s.admin_name \
         WHERE s.session_hash = $1",
    )
    .bind(session_hash)
    .fetch_optional(pool)
    .await
    .doing("reading an admin session")
}

pub(in crate::store) async fn touch_admin_session(
    pool: &Pool<Db>,
    session_hash: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    // Never backwards: two requests of one session may touch it in either order.
    sqlx::query(
        "UPDATE admin_sessions SET last_seen_at = $1 \
         WHERE session_hash = $2 AND revoked_at IS NULL AND last_seen_at < $1",
    )
    .bind(now.trunc_subsecs(0))
    .bind(session_hash)
    .execute(pool)
    .await
    .doing("noting the use of an admin session")?;
    Ok(())
}

pub(in crate::store) async fn revoke_admin_session(
    pool: &Pool<Db>,
    session_hash: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    let revoked = sqlx::query(
        "UPDATE admin_sessions SET revoked_at = $1 \
         WHERE session_hash = $2 AND revoked_at IS NULL",
    )
    .bind(now.trunc_subsecs(0))
    .bind(session_hash)
    .execute(pool)
    .await
    .doing("ending an admin session")?;
    Ok(revoked.rows_affected() == 1)
}

pub(in crate::store) async fn purge_admin_sessions(
    pool: &Pool<Db>,
    now: DateTime<Utc>,
    idle_since: DateTime<Utc>,
) -> Result<u64> {
    // A session past its end, idle for too long, or signed out can never be used again; its
    // row only says so, and an unknown cookie is refused just the same.
    let purged = sqlx::query(
        "DELETE FROM admin_sessions \
         WHERE expires_at <= $1 OR last_seen_at <= $2 OR revoked_at IS NOT NULL",
    )
    .bind(now.trunc_subsecs(0))
    .bind(idle_since.trunc_subsecs(0))
    .execute(pool)
    .await
    .doing("purging old admin sessions")?;
    Ok(purged.rows_affected())
}
