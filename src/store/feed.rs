//! Feed state: what the store keeps of a connector's feed between runs, for the feed-health
//! gate (the last applied feed's size) and for incremental connectors (the watermark, and the
//! records last known, stored as `snapshot.rs` encodes them).

use chrono::{DateTime, Utc};

use crate::domain::HrRecord;
use crate::planner::health::FeedStats;

use super::{Result, Store};

/// What an incremental connector keeps when its run is applied.
#[derive(Clone, Copy, Debug)]
pub struct FeedUpdate<'a> {
    /// When the fetch started: the next incremental fetch asks for changes since then.
    pub watermark: DateTime<Utc>,
    /// Whether the whole feed was read (rather than only what changed).
    pub full: bool,
    /// The records planned on: the delta merged into what was known, or the whole feed.
    pub records: &'a [HrRecord],
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

/// Feed state. It is written only when a run is applied, in its transaction (`apply_plan`).
impl Store {
    /// The connector's last applied feed, for the feed-health gate.
    pub async fn connector_state(&self, connector: &str) -> Result<Option<FeedStats>> {
        dispatch!(self, feed::connector_state(connector))
    }

    /// The watermark and full-fetch bookkeeping of an incremental connector.
    pub async fn feed_state(&self, connector: &str) -> Result<FeedState> {
        dispatch!(self, feed::feed_state(connector))
    }

    /// The records an incremental connector last knew, in employee id order.
    pub async fn feed_snapshot(&self, connector: &str) -> Result<Vec<HrRecord>> {
        dispatch!(self, feed::feed_snapshot(connector))
    }
}
