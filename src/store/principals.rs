//! Who may call hrsync besides the configured admin token: named admins (the pages and the
//! admin API; each action by hand names them) and service tokens (the product that owns the
//! log-in: sign-ins, the person's own fields, the directory read). Each has a token of its own,
//! of which only the SHA-256 is kept; the two kinds are kept apart, so neither token opens the
//! other's routes.

use chrono::{DateTime, Utc};

use super::{Result, Store};

/// The kind of a named token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrincipalKind {
    /// An admin: the admin routes and pages.
    Admin,
    /// A service: the service routes only.
    Service,
}

impl PrincipalKind {
    /// What a person calls it, for messages.
    pub fn noun(self) -> &'static str {
        match self {
            PrincipalKind::Admin => "admin",
            PrincipalKind::Service => "service token",
        }
    }
}

/// A named admin or service token as listed.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct Principal {
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Named admins and service tokens.
impl Store {
    /// Adds a named admin or service token with the SHA-256 of its token; refused when the
    /// name is taken (a revoked name stays taken: the audit trail names it).
    pub async fn add_principal(
        &self,
        kind: PrincipalKind,
        name: &str,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        dispatch!(self, principals::add(kind, name, token_hash, now))
    }

    /// Gives a live admin or service token a new token; the old one stops working. `false`
    /// when there is no live one of that name.
    pub async fn rotate_principal(
        &self,
        kind: PrincipalKind,
        name: &str,
        token_hash: &str,
    ) -> Result<bool> {
        dispatch!(self, principals::rotate(kind, name, token_hash))
    }

    /// Revokes an admin or service token; `false` when there is no live one of that name.
    pub async fn revoke_principal(
        &self,
        kind: PrincipalKind,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        dispatch!(self, principals::revoke(kind, name, now))
    }

    /// The name of the live admin or service token whose token has this SHA-256.
    pub async fn principal_by_token(
        &self,
        kind: PrincipalKind,
        token_hash: &str,
    ) -> Result<Option<String>> {
        dispatch!(self, principals::by_token(kind, token_hash))
    }

    /// Every admin or service token, live and revoked, by name.
    pub async fn list_principals(&self, kind: PrincipalKind) -> Result<Vec<Principal>> {
        dispatch!(self, principals::list(kind))
    }
}
