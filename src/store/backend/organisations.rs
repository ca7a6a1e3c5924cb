//! The SQL of organisations.

use chrono::{DateTime, Utc};
use sqlx::Pool;

use super::Db;
use crate::store::{Doing, OrganisationRow, Result};

pub(in crate::store) async fn upsert_organisation(
    pool: &Pool<Db>,
    slug: &str,
    name: &str,
    time_zone: &str,
    locale: &str,
    now: DateTime<Utc>,
) -> Result<OrganisationRow> {
    sqlx::query(
        "INSERT INTO organisations (slug, name, time_zone, locale, created_at) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (slug) DO UPDATE SET name = excluded.name, \
         time_zone = excluded.time_zone, locale = excluded.locale",
    )
    .bind(slug)
    .bind(name)
    .bind(time_zone)
    .bind(locale)
    .bind(now)
    .execute(pool)
    .await
    .doing("saving the organisation")?;
    sqlx::query_as("SELECT id, slug, name, locale FROM organisations WHERE slug = $1")
        .bind(slug)
        .fetch_one(pool)
        .await
        .doing("reading the organisation")
}
