//! Usage errors found after the arguments parsed: a `--org` or `--connector` the configuration
//! does not have, or a missing `--org` that cannot be worked out. They exit 2, as clap's own
//! usage errors do, and name the values that would have been right.

use std::fmt::Display;

use crate::config::Loaded;
use crate::domain::Email;
use crate::sync::App;

/// A command given wrongly: exit code 2, the message naming what is allowed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// `values` as `a, b, c` for a message, or `(none)`.
fn listed<T: Display>(values: impl IntoIterator<Item = T>) -> String {
    let all: Vec<String> = values.into_iter().map(|v| v.to_string()).collect();
    if all.is_empty() {
        "(none)".to_string()
    } else {
        all.join(", ")
    }
}

/// `--org SLUG` must name an organisation of the configuration.
pub fn known_organisation(config: &Loaded, slug: &str) -> Result<(), UsageError> {
    if config.settings.organisations.contains_key(slug) {
        return Ok(());
    }
    Err(UsageError(format!(
        "--org `{slug}` is not an organisation of the configuration; the organisations are: {}",
        listed(config.settings.organisations.keys())
    )))
}

/// `--connector ID` must name a connector of the configuration.
pub fn known_connector(config: &Loaded, id: Option<&str>) -> Result<(), UsageError> {
    match id {
        Some(id) if !config.settings.connectors.contains_key(id) => Err(UsageError(format!(
            "`{id}` is not a connector of the configuration; the connectors are: {}",
            listed(config.settings.connectors.keys())
        ))),
        _ => Ok(()),
    }
}

/// The organisation when `--org` is left out: the only one there is.
pub fn only_organisation(config: &Loaded) -> Result<String, UsageError> {
    let orgs: Vec<&String> = config.settings.organisations.keys().collect();
    match orgs.as_slice() {
        [one] => Ok(one.to_string()),
        _ => Err(UsageError(format!(
            "there is more than one organisation; name one with --org: {}",
            listed(orgs)
        ))),
    }
}

/// The organisation of an action on one person: `--org` if given (and known), else the only
/// one configured, else the only one the person is a member of.
pub async fn organisation_of_person(
    app: &App,
    org: Option<&str>,
    person: &Email,
) -> anyhow::Result<String> {
    if let Some(org) = org {
        known_organisation(&app.config, org)?;
        return Ok(org.to_string());
    }
    if let Ok(only) = only_organisation(&app.config) {
        return Ok(only);
    }
    let theirs = app.store.organisations_of(person).await?;
    match theirs.as_slice() {
        [one] => Ok(one.clone()),
        [] => anyhow::bail!("{person} is not a member of any organisation"),
        _ => Err(UsageError(format!(
            "{person} is a member of more than one organisation; name one with --org: {}",
            listed(&theirs)
        ))
        .into()),
    }
}
