//! The SQL of kept credentials (`kept_credentials`): one sealed value per connector and name.

use chrono::{DateTime, Utc};
use sqlx::Pool;

use super::Db;
use crate::store::{Doing, Result};

pub(in crate::store) async fn kept(
    pool: &Pool<Db>,
    connector: &str,
    name: &str,
) -> Result<Option<String>> {
    sqlx::query_scalar("SELECT sealed FROM kept_credentials WHERE connector_id = $1 AND name = $2")
        .bind(connector)
        .bind(name)
        .fetch_optional(pool)
        .await
        .doing("reading a kept credential")
}

pub(in crate::store) async fn keep(
    pool: &Pool<Db>,
    connector: &str,
    name: &str,
    sealed: &str,
    at: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO kept_credentials (connector_id, name, sealed, updated_at) \
         VALUES ($1, $2, $3, $4) \
         ON CONFLICT (connector_id, name) DO UPDATE \
         SET sealed = excluded.sealed, updated_at = excluded.updated_at",
    )
    .bind(connector)
    .bind(name)
    .bind(sealed)
    .bind(at)
    .execute(pool)
    .await
    .doing("keeping a credential")?;
    Ok(())
}
