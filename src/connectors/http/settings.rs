//! The settings of one `http` connector instance (`[connectors.ID.http]` in the deployment
//! configuration): which definition it runs, this instance's values for the definition's
//! variables, the environment variables that hold its secrets, and whether (and how) it asks
//! only for what changed. The definition itself, shared by every tenant, is in `definition.rs`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::Definition;
use super::builtin;

/// Settings of the `http` source kind: which definition, and this instance's values for it.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    /// The definition: a name (`scim`: `connectors/scim.toml` beside the configuration file,
    /// else the shipped definition of that name) or a path to a `.toml` file (relative to the
    /// configuration file's folder).
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
    /// This instance's own reading of fields, laid over the definition's: a tenant's custom
    /// employee number or cost centre (`[connectors.ID.http.fields.attributes.cost_centre]`).
    #[serde(default, skip_serializing_if = "toml::Table::is_empty")]
    pub fields: toml::Table,
    /// Added to the definition's JSON request body: lists are appended to (a custom field's id
    /// for systems that return only the fields a search names), tables merged, other values
    /// set. For the field overrides' custom fields, where the system must be asked for them.
    #[serde(default, skip_serializing_if = "toml::Table::is_empty")]
    pub extend_body: toml::Table,
    /// The folder of the configuration file this came from, which names and relative paths
    /// of definitions resolve against; set when the configuration is loaded.
    #[serde(skip)]
    pub config_dir: Option<PathBuf>,
}

/// A definition as an instance uses it: where it came from, its text (what the feed's
/// fingerprint digests), and the definition with the instance's field overrides laid over it.
#[derive(Clone, Debug)]
pub struct ResolvedDefinition {
    /// A file's path, or `built-in <name>`.
    pub origin: String,
    pub text: String,
    pub definition: Definition,
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
    /// Where the definition is: a file, or the shipped definition of that name.
    ///
    /// A name (`personio`) is `connectors/<name>.toml` in the configuration file's folder when
    /// that file exists, else the definition built into hrsync; a path (anything with a `/` or
    /// ending in `.toml`) is taken relative to the configuration file's folder.
    pub fn definition_location(&self) -> Result<DefinitionLocation, String> {
        let base = self.config_dir.clone().unwrap_or_default();
        let name = self.definition.trim();
        if name.ends_with(".toml") || name.contains('/') || name.contains('\\') {
            return Ok(DefinitionLocation::File(base.join(name)));
        }
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(format!(
                "`{name}` is not a definition name (letters, digits, `_` and `-`) nor a path to a .toml file"
            ));
        }
        let beside = base.join("connectors").join(format!("{name}.toml"));
        if beside.is_file() {
            Ok(DefinitionLocation::File(beside))
        } else if builtin::text(name).is_some() {
            Ok(DefinitionLocation::BuiltIn(name.to_string()))
        } else {
            Err(format!(
                "no definition `{name}`: `{}` does not exist and none is built in (built in: {})",
                beside.display(),
                builtin::names().join(", ")
            ))
        }
    }

    /// The definition this instance runs, with its field overrides laid over it; the error
    /// names the file (or built-in definition) and every problem.
    pub fn load_definition(&self) -> Result<ResolvedDefinition, DefinitionError> {
        let (origin, text) = match self
            .definition_location()
            .map_err(DefinitionError::Definition)?
        {
            DefinitionLocation::File(path) => {
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    DefinitionError::Definition(format!("{}: cannot read: {e}", path.display()))
                })?;
                (path.display().to_string(), text)
            }
            DefinitionLocation::BuiltIn(name) => {
                let text = builtin::text(&name).unwrap_or_default().to_string();
                (format!("built-in {name}"), text)
            }
        };
        let definition = Definition::parse(&text)
            .map_err(|e| DefinitionError::Definition(format!("{origin}: {e}")))?;
        let definition = definition
            .with_fields(&self.fields)
            .map_err(DefinitionError::Fields)?
            .with_body_extended(&self.extend_body)
            .map_err(DefinitionError::ExtendBody)?;
        Ok(ResolvedDefinition {
            origin,
            text,
            definition,
        })
    }
}

/// Why an instance's definition cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DefinitionError {
    /// The definition is missing, unreadable or wrong in itself.
    #[error("{0}")]
    Definition(String),
    /// The instance's `fields` overrides name an unknown field or cannot be read.
    #[error("this instance's fields: {0}")]
    Fields(String),
    /// The instance's `extend_body` does not fit the definition's request.
    #[error("{0}")]
    ExtendBody(String),
}

/// Where a definition is read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DefinitionLocation {
    File(PathBuf),
    BuiltIn(String),
}
