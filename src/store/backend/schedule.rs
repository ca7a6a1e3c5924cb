//! The SQL of schedule ticks (`schedule_ticks`): one row per scheduled connector, moved
//! forward by whoever claims the next tick.

use chrono::{DateTime, Utc};
use sqlx::Pool;

use super::Db;
use crate::store::{Doing, Result};

pub(in crate::store) async fn claim_tick(
    pool: &Pool<Db>,
    connector: &str,
    tick: DateTime<Utc>,
) -> Result<bool> {
    // Atomic on both backends: the row moves forward for one caller only.
    let moved = sqlx::query(
        "INSERT INTO schedule_ticks (connector_id, tick) VALUES ($1, $2) \
         ON CONFLICT (connector_id) DO UPDATE SET tick = excluded.tick \
         WHERE schedule_ticks.tick < excluded.tick",
    )
    .bind(connector)
    .bind(tick)
    .execute(pool)
    .await
    .doing("claiming a schedule tick")?;
    Ok(moved.rows_affected() == 1)
}
