//! The SQL of feed state: `connector_state` (the last applied feed's size, and an incremental
//! connector's watermark) and `connector_records` (the records it last knew). The applier
//! writes both in the run's transaction, so a held or failed run leaves them as they were.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::{Pool, QueryBuilder};

use super::Db;
use super::common::{CHUNK, Tx, corrupt, get, push_binds};
use crate::domain::HrRecord;
use crate::planner::health::FeedStats;
use crate::store::{Doing, FeedState, FeedUpdate, Result, snapshot};

pub(in crate::store) async fn connector_state(
    pool: &Pool<Db>,
    connector: &str,
) -> Result<Option<FeedStats>> {
    let row = sqlx::query(
        "SELECT last_good_records, last_good_missing_email FROM connector_state \
         WHERE connector_id = $1",
    )
    .bind(connector)
    .fetch_optional(pool)
    .await
    .doing("reading the connector's state")?;
    let Some(row) = row else {
        return Ok(None);
    };
    let records: Option<i64> = get(&row, "last_good_records")?;
    let missing: Option<i64> = get(&row, "last_good_missing_email")?;
    Ok(records.map(|records| FeedStats {
        records: usize::try_from(records).unwrap_or(0),
        missing_email: usize::try_from(missing.unwrap_or(0)).unwrap_or(0),
    }))
}

pub(in crate::store) async fn feed_state(pool: &Pool<Db>, connector: &str) -> Result<FeedState> {
    let row = sqlx::query(
        "SELECT watermark, last_full_at, incremental_runs, feed_fingerprint FROM connector_state \
         WHERE connector_id = $1",
    )
    .bind(connector)
    .fetch_optional(pool)
    .await
    .doing("reading the connector's watermark")?;
    let Some(row) = row else {
        return Ok(FeedState::default());
    };
    let watermark: Option<String> = get(&row, "watermark")?;
    let watermark = watermark
        .map(|w| {
            DateTime::parse_from_rfc3339(&w)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| corrupt(format!("the watermark `{w}` of connector `{connector}`")))
        })
        .transpose()?;
    Ok(FeedState {
        watermark,
        last_full_at: get(&row, "last_full_at")?,
        incremental_runs: get(&row, "incremental_runs")?,
        fingerprint: get(&row, "feed_fingerprint")?,
    })
}

pub(in crate::store) async fn feed_snapshot(
    pool: &Pool<Db>,
    connector: &str,
) -> Result<Vec<HrRecord>> {
    let rows = sqlx::query(
        "SELECT records FROM connector_records WHERE connector_id = $1 ORDER BY employee_id",
    )
    .bind(connector)
    .fetch_all(pool)
    .await
    .doing("reading the connector's known records")?;
    let mut records = Vec::with_capacity(rows.len());
    for row in &rows {
        let text: String = get(row, "records")?;
        records.extend(snapshot::decode(&text).map_err(corrupt)?);
    }
    Ok(records)
}

/// Records the feed of an applied run as the connector's last good one, for the feed-health
/// gate of its next run.
pub(super) async fn record_good_feed(
    tx: &mut Tx<'_>,
    connector: &str,
    run_id: i64,
    records_fetched: usize,
    missing_email: usize,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO connector_state (connector_id, last_good_run_id, last_good_records, \
         last_good_missing_email, updated_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (connector_id) DO UPDATE SET \
         last_good_run_id = excluded.last_good_run_id, \
         last_good_records = excluded.last_good_records, \
         last_good_missing_email = excluded.last_good_missing_email, \
         updated_at = excluded.updated_at",
    )
    .bind(connector)
    .bind(run_id)
    .bind(records_fetched as i64)
    .bind(missing_email as i64)
    .bind(now)
    .execute(&mut **tx)
    .await
    .doing("recording the connector's last good feed")?;
    Ok(())
}

/// Keeps an incremental connector's feed (only the employee ids whose records changed are
/// written) and moves its watermark.
pub(super) async fn keep_feed(
    tx: &mut Tx<'_>,
    connector: &str,
    feed: &FeedUpdate<'_>,
) -> Result<()> {
    let rows =
        sqlx::query("SELECT employee_id, records FROM connector_records WHERE connector_id = $1")
            .bind(connector)
            .fetch_all(&mut **tx)
            .await
            .doing("reading the connector's known records")?;
    let mut known: HashMap<String, String> = HashMap::with_capacity(rows.len());
    for row in &rows {
        known.insert(get(row, "employee_id")?, get(row, "records")?);
    }
    let groups = snapshot::by_employee(feed.records);
    let mut changed: Vec<(&str, String)> = Vec::new();
    for (employee_id, records) in &groups {
        let text = snapshot::encode(records)
            .map_err(|e| corrupt(format!("a record that cannot be kept: {e}")))?;
        if known.get(*employee_id) != Some(&text) {
            changed.push((employee_id, text));
        }
    }
    let gone: Vec<&String> = known
        .keys()
        .filter(|id| !groups.contains_key(id.as_str()))
        .collect();
    for chunk in changed.chunks(CHUNK) {
        let mut qb = QueryBuilder::<Db>::new(
            "INSERT INTO connector_records (connector_id, employee_id, records) ",
        );
        qb.push_values(chunk, |mut b, (employee_id, text)| {
            b.push_bind(connector)
                .push_bind(*employee_id)
                .push_bind(text.as_str());
        });
        qb.push(
            " ON CONFLICT (connector_id, employee_id) DO UPDATE SET records = excluded.records",
        );
        qb.build()
            .execute(&mut **tx)
            .await
            .doing("keeping the connector's records")?;
    }
    for chunk in gone.chunks(CHUNK) {
        let mut qb = QueryBuilder::<Db>::new("DELETE FROM connector_records WHERE connector_id = ");
        qb.push_bind(connector).push(" AND employee_id IN (");
        push_binds(&mut qb, chunk.iter().map(|s| s.as_str()));
        qb.push(")");
        qb.build()
            .execute(&mut **tx)
            .await
            .doing("forgetting records the feed no longer has")?;
    }
    // The watermark column is text on both backends.
    let watermark = feed.watermark.to_rfc3339();
    let moved = if feed.full {
        sqlx::query(
            "UPDATE connector_state SET watermark = $1, last_full_at = $2, incremental_runs = 0, \
             feed_fingerprint = $3 WHERE connector_id = $4",
        )
        .bind(watermark)
        .bind(feed.watermark)
        .bind(feed.fingerprint)
        .bind(connector)
    } else {
        sqlx::query(
            "UPDATE connector_state SET watermark = $1, incremental_runs = incremental_runs + 1 \
             WHERE connector_id = $2",
        )
        .bind(watermark)
        .bind(connector)
    };
    moved
        .execute(&mut **tx)
        .await
        .doing("moving the connector's watermark")?;
    Ok(())
}

/// Drops what an incremental connector knew, so its next incremental fetch starts in full.
pub(super) async fn forget_feed(tx: &mut Tx<'_>, connector: &str) -> Result<()> {
    sqlx::query("DELETE FROM connector_records WHERE connector_id = $1")
        .bind(connector)
        .execute(&mut **tx)
        .await
        .doing("forgetting the connector's known records")?;
    sqlx::query(
        "UPDATE connector_state SET watermark = NULL, last_full_at = NULL, incremental_runs = 0, \
         feed_fingerprint = NULL WHERE connector_id = $1 AND watermark IS NOT NULL",
    )
    .bind(connector)
    .execute(&mut **tx)
    .await
    .doing("clearing the connector's watermark")?;
    Ok(())
}
