//! Deployment configuration: layered settings, and a check that reports every problem at once.
//!
//! Settings come from one TOML file (`config/hrsync.toml` by default) with `HRSYNC__SECTION__KEY`
//! environment variables on top. [`load`] reads and deserialises them; [`Loaded::check`]
//! then gathers every problem it can find (unknown keys, bad values, missing files, missing
//! secrets, dangling references) so `hrsync check` can list them all, each with where it came
//! from. Secrets are never stored in the file: it names the environment variable that holds
//! each one, and the value is read into a [`secrecy::SecretString`] only when it is needed.
//!
//! The parts, each in its own file: `settings` (the serde structs of each section),
//! `loading` (file and environment layers, and reading secrets), `check` (one function per
//! section, gathered by [`Loaded::check`]), [`bounds`] (the range of every number) and
//! `policy` (a connector's settings as the planner's `Policy`). This file holds what they
//! share: the loaded configuration, a problem and the error that carries them. Everything
//! other modules use is re-exported here, so they name `config::…` and not the file.

use std::fmt;
use std::path::PathBuf;

use chrono_tz::Tz;

pub mod bounds;
mod check;
mod loading;
mod policy;
mod settings;

pub use loading::{DEFAULT_PATH, ENV_PREFIX, load, load_checked, load_with_env};
pub use settings::{
    ConnectorSettings, DatabaseSettings, FeedHealthSettings, FeedSetting, HttpSettings,
    IncrementalSettings, MailSettings, MailTransportKind, OrganisationSettings, RoleRuleSettings,
    ServerSettings, Settings, Source, SourceKind, StatusMapSettings, ThresholdSettings,
};

/// One problem in the configuration, with where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The file or environment variable the value came from.
    pub origin: String,
    /// The dotted key, e.g. `connectors.zonnehof_hr.csv.path`.
    pub key: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}: {}", self.origin, self.message)
        } else {
            write!(f, "{}: {}: {}", self.origin, self.key, self.message)
        }
    }
}

/// Configuration that could not be loaded or does not pass the check.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        writeln!(
            f,
            "the configuration has {n} problem{}:",
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.problems {
            writeln!(f, "  - {p}")?;
        }
        Ok(())
    }
}

/// Settings as loaded, with the file they came from (for messages).
#[derive(Clone, Debug)]
pub struct Loaded {
    pub settings: Settings,
    pub path: PathBuf,
}

/// An organisation with its settings parsed.
#[derive(Clone, Debug)]
pub struct Organisation {
    pub slug: String,
    pub name: String,
    pub time_zone: Tz,
    pub locale: String,
}

impl Loaded {
    /// A connector instance's settings by id.
    pub fn connector(&self, id: &str) -> anyhow::Result<&ConnectorSettings> {
        self.settings
            .connectors
            .get(id)
            .ok_or_else(|| anyhow::anyhow!("connector `{id}` is not configured"))
    }

    /// The organisation by key, parsed. Call after [`Loaded::check`] passed.
    pub fn organisation(&self, slug: &str) -> anyhow::Result<Organisation> {
        let org = self
            .settings
            .organisations
            .get(slug)
            .ok_or_else(|| anyhow::anyhow!("no organisation `{slug}` in the configuration"))?;
        Ok(Organisation {
            slug: slug.to_string(),
            name: org.name.clone(),
            time_zone: org
                .time_zone
                .parse()
                .map_err(|_| anyhow::anyhow!("unknown time zone `{}`", org.time_zone))?,
            locale: org.locale.clone(),
        })
    }
}
