//! Schedule ticks: a scheduled connector runs once per tick across every replica.

use chrono::{DateTime, Utc};

use super::{Result, Store};

/// Schedule ticks.
impl Store {
    /// Claims a schedule tick of a connector: true for the one caller (of every replica) that
    /// moves the connector's last tick forward to `tick`, false for everyone else.
    pub async fn claim_tick(&self, connector: &str, tick: DateTime<Utc>) -> Result<bool> {
        dispatch!(self, schedule::claim_tick(connector, tick))
    }
}
