//! Kept credentials: a credential an HR system hands out in place of a configured one (a
//! refresh token replaced at every use), sealed, per connector and name.

use chrono::{DateTime, Utc};

use super::{Result, Store};

/// Kept credentials.
impl Store {
    /// The sealed credential kept for a connector under `name`, if any.
    pub async fn kept_credential(&self, connector: &str, name: &str) -> Result<Option<String>> {
        dispatch!(self, credentials::kept(connector, name))
    }

    /// Keeps a sealed credential for a connector under `name`, replacing the one before.
    pub async fn keep_credential(
        &self,
        connector: &str,
        name: &str,
        sealed: &str,
        at: DateTime<Utc>,
    ) -> Result<()> {
        dispatch!(self, credentials::keep(connector, name, sealed, at))
    }
}
