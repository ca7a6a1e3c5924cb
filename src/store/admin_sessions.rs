//! Admin sign-in sessions of the pages (`server::auth`): the cookie holds a random session id,
//! and only its SHA-256 is stored.

use chrono::{DateTime, Utc};

use super::{Result, Store};

/// An admin sign-in session as stored (`server::auth` decides whether it is still good).
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct AdminSession {
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// Signed out, or its admin revoked (`hrsync admins revoke`): the earlier of the two.
    pub revoked_at: Option<DateTime<Utc>>,
    /// The named admin who signed in; `None` for the configured admin token.
    pub admin_name: Option<String>,
}

/// Admin sign-in sessions of the pages, by the SHA-256 of the session id in the cookie.
impl Store {
    /// Records a new session of the named admin (`None`: the configured token), last seen
    /// `now`, ending at `expires_at` at the latest.
    pub async fn create_admin_session(
        &self,
        session_hash: &str,
        admin_name: Option<&str>,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<()> {
        dispatch!(
            self,
            admin_sessions::create_admin_session(session_hash, admin_name, now, expires_at)
        )
    }

    /// The session with this hash, whatever its state; `None` when there is none.
    pub async fn admin_session(&self, session_hash: &str) -> Result<Option<AdminSession>> {
        dispatch!(self, admin_sessions::admin_session(session_hash))
    }

    /// Notes that the session was used at `now` (never moves it backwards).
    pub async fn touch_admin_session(&self, session_hash: &str, now: DateTime<Utc>) -> Result<()> {
        dispatch!(self, admin_sessions::touch_admin_session(session_hash, now))
    }

    /// Signs the session out; whether it was live.
    pub async fn revoke_admin_session(
        &self,
        session_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        dispatch!(
            self,
            admin_sessions::revoke_admin_session(session_hash, now)
        )
    }

    /// Deletes sessions that can no longer be used: past their end, last seen at or before
    /// `idle_since`, or signed out. Returns how many.
    pub async fn purge_admin_sessions(
        &self,
        now: DateTime<Utc>,
        idle_since: DateTime<Utc>,
    ) -> Result<u64> {
        dispatch!(self, admin_sessions::purge_admin_sessions(now, idle_since))
    }
}
