//! Organisations: the tenants a connector syncs people into.

use chrono::{DateTime, Utc};

use super::{Result, Store};

/// The organisation row a run works in.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct OrganisationRow {
    pub id: i64,
    pub slug: String,
    pub name: String,
    pub locale: String,
}

/// Organisations.
impl Store {
    /// Creates the organisation, or brings its name, time zone and locale up to date.
    pub async fn upsert_organisation(
        &self,
        slug: &str,
        name: &str,
        time_zone: &str,
        locale: &str,
        now: DateTime<Utc>,
    ) -> Result<OrganisationRow> {
        dispatch!(
            self,
            organisations::upsert_organisation(slug, name, time_zone, locale, now)
        )
    }
}
