//! The settings of one `http` connector instance (`[connectors.ID.http]` in the deployment
//! configuration): which definition it runs, this instance's values for the definition's
//! variables, the environment variables that hold its secrets, and whether (and how) it asks
//! only for what changed. The definition itself, shared by every tenant, is in `definition.rs`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Settings of the `http` source kind: which definition, and this instance's values for it.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    /// The definition: a name (`scim` is `connectors/scim.toml`) or a path to a `.toml` file.
    pub definition: String,
    /// Values of the definition's variables, e.g. `subdomain`.
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    /// For each of the definition's secrets, the environment variable that holds it.
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
    /// Ask only for the people changed since the last applied run, where the definition can
    /// (its `[incremental]` table); the whole feed is read again now and then.
    pub incremental: Option<IncrementalSettings>,
}

/// When an incremental connector reads its whole feed again, so that people who vanished from
/// the HR system (rather than being ended there) are seen as leavers.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IncrementalSettings {
    /// After this many incremental runs.
    pub full_every_runs: Option<u32>,
    /// When the last full read is this many hours old; 24 when neither is set.
    pub full_every_hours: Option<u32>,
    /// Ask for changes since this many minutes before the last fetch started, for clocks
    /// that differ and changes saved while it ran.
    #[serde(default = "default_overlap")]
    pub overlap_minutes: u32,
}

fn default_overlap() -> u32 {
    5
}

impl IncrementalSettings {
    /// Whether the next fetch reads the whole feed, given where the connector stands.
    pub fn full_due(
        &self,
        watermark: Option<chrono::DateTime<chrono::Utc>>,
        last_full_at: Option<chrono::DateTime<chrono::Utc>>,
        incremental_runs: i64,
        now: chrono::DateTime<chrono::Utc>,
    ) -> bool {
        let (Some(_), Some(last_full)) = (watermark, last_full_at) else {
            return true;
        };
        let hours = match (self.full_every_runs, self.full_every_hours) {
            (None, None) => Some(24),
            (_, hours) => hours,
        };
        let by_runs = self
            .full_every_runs
            .is_some_and(|n| incremental_runs >= i64::from(n));
        let by_age =
            hours.is_some_and(|h| now - last_full >= chrono::Duration::hours(i64::from(h)));
        by_runs || by_age
    }
}

impl HttpSettings {
    /// Where the definition file is.
    pub fn definition_path(&self) -> PathBuf {
        if self.definition.ends_with(".toml") {
            PathBuf::from(&self.definition)
        } else {
            Path::new("connectors").join(format!("{}.toml", self.definition))
        }
    }
}
