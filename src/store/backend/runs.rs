//! The SQL of runs and their changes: a run's start, its end (with its errors and the admins'
//! digest), its change lines, and the queries that read runs back.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use sqlx::{Pool, QueryBuilder};

use super::common::{CHUNK, Tx, begin_write, corrupt, get, push_binds};
use super::{Db, copy_csv};
use crate::domain::{
    ChangeLine, FetchKind, RunError, RunMode, RunReport, RunStatus, RunSummary, Trigger,
};
use crate::planner::{ChangeKind, Changes};
use crate::store::{DIGEST_KIND, Doing, NewRun, Result, RunEnd, RunFilter, StoreError};

pub(in crate::store) async fn start_run(pool: &Pool<Db>, run: &NewRun<'_>) -> Result<i64> {
    let row = sqlx::query(
        "INSERT INTO sync_runs (organisation_id, connector_id, trigger, mode, status, as_of, \
         started_at, scheduled_for) VALUES ($1, $2, $3, $4, 'running', $5, $6, $7) RETURNING id",
    )
    .bind(run.organisation_id)
    .bind(run.connector)
    .bind(run.trigger.as_str())
    .bind(run.mode.as_str())
    .bind(run.as_of)
    .bind(run.started_at)
    .bind(run.scheduled_for)
    .fetch_one(pool)
    .await
    .doing("recording the start of the run")?;
    get(&row, "id")
}

pub(super) async fn insert_changes(tx: &mut Tx<'_>, run_id: i64, changes: &Changes) -> Result<()> {
    let copied = copy_csv(
        tx,
        "sync_changes (run_id, seq, kind, employee_id, email, field, old_value, new_value, reason)",
        changes.len(),
        |csv, n| {
            if let Some(c) = changes.get(n) {
                csv.number(Some(run_id))
                    .number(i64::try_from(n).ok())
                    .text(Some(c.kind().as_str()))
                    .text(c.employee_id.as_ref().map(|e| e.as_str()))
                    .text(c.email.as_deref())
                    .text(c.field.as_deref())
                    .text(c.old.as_deref())
                    .text(c.new.as_deref())
                    .text(Some(c.reason.as_str()));
            }
        },
    )
    .await
    .doing("recording the run's changes")?;
    if copied {
        return Ok(());
    }
    let chunks = changes.blocks().flat_map(|block| block.chunks(CHUNK));
    let mut seq = 0usize;
    for chunk in chunks {
        let mut qb = QueryBuilder::<Db>::new(
            "INSERT INTO sync_changes (run_id, seq, kind, employee_id, email, field, \
             old_value, new_value, reason) ",
        );
        qb.push_values(chunk.iter().enumerate(), |mut b, (i, c)| {
            b.push_bind(run_id)
                .push_bind((seq + i) as i32)
                .push_bind(c.kind().as_str())
                .push_bind(c.employee_id.as_ref().map(|e| e.as_str()))
                .push_bind(c.email.as_deref())
                .push_bind(c.field.as_deref())
                .push_bind(c.old.as_deref())
                .push_bind(c.new.as_deref())
                .push_bind(c.reason.as_str());
        });
        qb.build()
            .execute(&mut **tx)
            .await
            .doing("recording the run's changes")?;
        seq += chunk.len();
    }
    Ok(())
}

/// How a run ends: its status, what it read, why it was held or failed, and who gets a digest.
pub(super) struct Ending<'a> {
    pub(super) status: RunStatus,
    pub(super) records_fetched: usize,
    pub(super) errors: &'a [RunError],
    pub(super) digest_to: &'a [String],
    pub(super) now: DateTime<Utc>,
}

/// Ends a run that is still running (or approves a held one): false, and nothing written, when
/// it is not, because another process ended it first (e.g. as abandoned, while its commit was
/// on its way).
pub(super) async fn finish(tx: &mut Tx<'_>, run_id: i64, end: Ending<'_>) -> Result<bool> {
    let Ending {
        status,
        records_fetched,
        errors,
        digest_to,
        now,
    } = end;
    let ended = sqlx::query(
        "UPDATE sync_runs SET status = $1, finished_at = $2, records_fetched = $3 WHERE id = $4 \
         AND (status = 'running' OR (status = 'held' AND $1 = 'approved'))",
    )
    .bind(status.as_str())
    .bind(now)
    .bind(records_fetched as i64)
    .bind(run_id)
    .execute(&mut **tx)
    .await
    .doing("recording the end of the run")?
    .rows_affected();
    if ended == 0 {
        return Ok(false);
    }
    for (i, e) in errors.iter().enumerate() {
        sqlx::query("INSERT INTO sync_errors (run_id, seq, code, message) VALUES ($1, $2, $3, $4)")
            .bind(run_id)
            .bind(i as i32)
            .bind(e.code.as_str())
            .bind(e.message.as_str())
            .execute(&mut **tx)
            .await
            .doing("recording the run's errors")?;
    }
    // The admins' digest is queued with the end of the run, so it is sent once the run is
    // committed and never for a run that rolled back. Only applied runs (not dry runs) get one.
    for recipient in digest_to {
        sqlx::query(&format!(
            "INSERT INTO mail_outbox (organisation_id, account_id, run_id, kind, recipient, \
             created_at, attempts, next_attempt_at) \
             SELECT organisation_id, NULL, id, '{DIGEST_KIND}', $1, $2, 0, $2 FROM sync_runs \
             WHERE id = $3 AND mode = 'apply'"
        ))
        .bind(recipient)
        .bind(now)
        .bind(run_id)
        .execute(&mut **tx)
        .await
        .doing("queueing the run's digest")?;
    }
    Ok(true)
}

/// The error of a run that another process ended while it ran; its transaction rolls back.
pub(super) fn ended_elsewhere(run_id: i64) -> StoreError {
    StoreError::Superseded(format!(
        "run {run_id} was ended by another process while it ran (see its report); nothing of it was applied"
    ))
}

pub(in crate::store) async fn end_run(
    pool: &Pool<Db>,
    run_id: i64,
    end: &RunEnd<'_>,
) -> Result<()> {
    let mut tx = begin_write(pool, "starting a transaction").await?;
    if let Some(plan) = end.plan {
        insert_changes(&mut tx, run_id, &plan.changes).await?;
    }
    finish(
        &mut tx,
        run_id,
        Ending {
            status: end.status,
            records_fetched: end.records_fetched,
            errors: end.errors,
            digest_to: end.digest_to,
            now: end.finished_at,
        },
    )
    .await?
    .then_some(())
    .ok_or_else(|| ended_elsewhere(run_id))?;
    tx.commit().await.doing("committing the run")
}

pub(in crate::store) async fn set_run_fetch(
    pool: &Pool<Db>,
    run_id: i64,
    fetch: FetchKind,
) -> Result<()> {
    sqlx::query("UPDATE sync_runs SET fetch_kind = $1 WHERE id = $2")
        .bind(fetch.as_str())
        .bind(run_id)
        .execute(pool)
        .await
        .doing("noting how the run fetched")?;
    Ok(())
}

pub(in crate::store) async fn fail_abandoned_runs(
    pool: &Pool<Db>,
    connector: &str,
    error: &RunError,
    digest_to: &[String],
    now: DateTime<Utc>,
) -> Result<Vec<i64>> {
    let mut tx = begin_write(pool, "starting a transaction").await?;
    let rows = sqlx::query(
        "SELECT id FROM sync_runs WHERE connector_id = $1 AND status = 'running' ORDER BY id",
    )
    .bind(connector)
    .fetch_all(&mut *tx)
    .await
    .doing("finding abandoned runs")?;
    let running: Vec<i64> = rows.iter().map(|r| get(r, "id")).collect::<Result<_>>()?;
    let mut ids = Vec::with_capacity(running.len());
    for id in running {
        // A run whose commit lands meanwhile is not running any more and is left as it ended.
        let ended = finish(
            &mut tx,
            id,
            Ending {
                status: RunStatus::Failed,
                records_fetched: 0,
                errors: std::slice::from_ref(error),
                digest_to,
                now,
            },
        )
        .await?;
        if ended {
            ids.push(id);
        }
    }
    tx.commit().await.doing("ending abandoned runs")?;
    Ok(ids)
}

pub(in crate::store) async fn previous_outcome(
    pool: &Pool<Db>,
    connector: &str,
    before: i64,
) -> Result<Option<(RunStatus, Vec<String>)>> {
    let Some(row) = sqlx::query(
        "SELECT id, status FROM sync_runs WHERE connector_id = $1 AND id < $2 \
         AND mode = 'apply' AND status <> 'running' ORDER BY id DESC LIMIT 1",
    )
    .bind(connector)
    .bind(before)
    .fetch_optional(pool)
    .await
    .doing("reading the previous run")?
    else {
        return Ok(None);
    };
    let id: i64 = get(&row, "id")?;
    let status: String = get(&row, "status")?;
    let status = RunStatus::parse(&status)
        .ok_or_else(|| corrupt(format!("run {id} has the unknown status `{status}`")))?;
    let codes = sqlx::query("SELECT code FROM sync_errors WHERE run_id = $1 ORDER BY seq")
        .bind(id)
        .fetch_all(pool)
        .await
        .doing("reading the previous run's errors")?
        .iter()
        .map(|r| get(r, "code"))
        .collect::<Result<Vec<String>>>()?;
    Ok(Some((status, codes)))
}

pub(in crate::store) async fn last_runs(pool: &Pool<Db>) -> Result<Vec<RunSummary>> {
    let rows: Vec<RunRow> = sqlx::query_as(&format!(
        "SELECT {RUN_COLUMNS} FROM sync_runs r JOIN organisations o ON o.id = r.organisation_id \
         WHERE r.id IN (SELECT MAX(id) FROM sync_runs GROUP BY connector_id) \
         ORDER BY r.connector_id"
    ))
    .fetch_all(pool)
    .await
    .doing("reading the last run of each connector")?;
    summaries(pool, rows).await
}

const RUN_COLUMNS: &str = "r.id, o.slug, r.connector_id, r.trigger, r.mode, r.status, r.as_of, \
    r.started_at, r.finished_at, r.records_fetched, r.fetch_kind, r.scheduled_for";

/// A run as `RUN_COLUMNS` reads it.
#[derive(sqlx::FromRow)]
struct RunRow {
    id: i64,
    slug: String,
    connector_id: String,
    trigger: String,
    mode: String,
    status: String,
    as_of: DateTime<Utc>,
    started_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
    records_fetched: i64,
    fetch_kind: Option<String>,
    scheduled_for: Option<DateTime<Utc>>,
}

impl TryFrom<RunRow> for RunSummary {
    type Error = StoreError;

    fn try_from(row: RunRow) -> Result<RunSummary> {
        let RunRow {
            trigger,
            mode,
            status,
            ..
        } = &row;
        Ok(RunSummary {
            id: row.id,
            trigger: Trigger::parse(trigger)
                .ok_or_else(|| corrupt(format!("trigger `{trigger}`")))?,
            mode: RunMode::parse(mode).ok_or_else(|| corrupt(format!("mode `{mode}`")))?,
            status: RunStatus::parse(status)
                .ok_or_else(|| corrupt(format!("status `{status}`")))?,
            fetch: row
                .fetch_kind
                .as_deref()
                .map(|f| FetchKind::parse(f).ok_or_else(|| corrupt(format!("fetch `{f}`"))))
                .transpose()?,
            organisation: row.slug,
            connector: row.connector_id,
            as_of: row.as_of,
            started_at: row.started_at,
            finished_at: row.finished_at,
            records_fetched: row.records_fetched,
            scheduled_for: row.scheduled_for,
            counts: BTreeMap::new(),
        })
    }
}

/// Runs read with `RUN_COLUMNS`, with their change counts.
async fn summaries(pool: &Pool<Db>, rows: Vec<RunRow>) -> Result<Vec<RunSummary>> {
    let mut runs = rows
        .into_iter()
        .map(RunSummary::try_from)
        .collect::<Result<Vec<_>>>()?;
    add_counts(pool, &mut runs).await?;
    Ok(runs)
}

async fn add_counts(pool: &Pool<Db>, runs: &mut [RunSummary]) -> Result<()> {
    for chunk in runs.chunks_mut(CHUNK) {
        let mut qb = QueryBuilder::<Db>::new(
            "SELECT run_id, kind, COUNT(*) AS n FROM sync_changes WHERE run_id IN (",
        );
        push_binds(&mut qb, chunk.iter().map(|r| r.id));
        qb.push(") GROUP BY run_id, kind");
        let rows = qb.build().fetch_all(pool).await.doing("counting changes")?;
        let mut by_run: HashMap<i64, Vec<(String, i64)>> = HashMap::new();
        for row in &rows {
            by_run
                .entry(get(row, "run_id")?)
                .or_default()
                .push((get(row, "kind")?, get(row, "n")?));
        }
        for r in chunk.iter_mut() {
            r.counts = by_run
                .remove(&r.id)
                .unwrap_or_default()
                .into_iter()
                .collect();
        }
    }
    Ok(())
}

pub(in crate::store) async fn list_runs(
    pool: &Pool<Db>,
    filter: &RunFilter,
    cursor: Option<i64>,
    limit: i64,
) -> Result<Vec<RunSummary>> {
    let mut qb = QueryBuilder::<Db>::new(format!(
        "SELECT {RUN_COLUMNS} FROM sync_runs r JOIN organisations o ON o.id = r.organisation_id \
         WHERE 1 = 1"
    ));
    if let Some(cursor) = cursor {
        qb.push(if filter.oldest_first {
            " AND r.id > "
        } else {
            " AND r.id < "
        })
        .push_bind(cursor);
    }
    if let Some(connector) = &filter.connector {
        qb.push(" AND r.connector_id = ")
            .push_bind(connector.clone());
    }
    if let Some(status) = filter.status {
        qb.push(" AND r.status = ").push_bind(status.as_str());
    }
    if let Some(mode) = filter.mode {
        qb.push(" AND r.mode = ").push_bind(mode.as_str());
    }
    if let Some(trigger) = filter.trigger {
        qb.push(" AND r.trigger = ").push_bind(trigger.as_str());
    }
    if let Some(since) = filter.since {
        qb.push(" AND r.started_at >= ").push_bind(since);
    }
    if let Some(until) = filter.until {
        qb.push(" AND r.started_at < ").push_bind(until);
    }
    if let Some(kind) = &filter.kind {
        qb.push(" AND EXISTS (SELECT 1 FROM sync_changes c WHERE c.run_id = r.id AND c.kind = ")
            .push_bind(kind.clone())
            .push(")");
    }
    qb.push(if filter.oldest_first {
        " ORDER BY r.id ASC LIMIT "
    } else {
        " ORDER BY r.id DESC LIMIT "
    })
    .push_bind(limit);
    let rows: Vec<RunRow> = qb
        .build_query_as()
        .fetch_all(pool)
        .await
        .doing("listing runs")?;
    summaries(pool, rows).await
}

/// A run's summary (with the counts of its change lines) and its errors.
async fn run_head(pool: &Pool<Db>, run_id: i64) -> Result<Option<(RunSummary, Vec<RunError>)>> {
    let Some(row) = sqlx::query_as::<_, RunRow>(&format!(
        "SELECT {RUN_COLUMNS} FROM sync_runs r JOIN organisations o ON o.id = r.organisation_id \
         WHERE r.id = $1"
    ))
    .bind(run_id)
    .fetch_optional(pool)
    .await
    .doing("reading a run")?
    else {
        return Ok(None);
    };
    let mut summary = [RunSummary::try_from(row)?];
    add_counts(pool, &mut summary).await?;
    let [summary] = summary;
    let errors: Vec<(String, String)> =
        sqlx::query_as("SELECT code, message FROM sync_errors WHERE run_id = $1 ORDER BY seq")
            .bind(run_id)
            .fetch_all(pool)
            .await
            .doing("reading a run's errors")?;
    let errors = errors
        .into_iter()
        .map(|(code, message)| RunError { code, message })
        .collect();
    Ok(Some((summary, errors)))
}

pub(in crate::store) async fn run_report(
    pool: &Pool<Db>,
    run_id: i64,
) -> Result<Option<RunReport>> {
    let Some((summary, errors)) = run_head(pool, run_id).await? else {
        return Ok(None);
    };
    let rows: Vec<ChangeRow> = sqlx::query_as(
        "SELECT kind, employee_id, email, field, old_value, new_value, reason \
         FROM sync_changes WHERE run_id = $1 ORDER BY seq",
    )
    .bind(run_id)
    .fetch_all(pool)
    .await
    .doing("reading a run's changes")?;
    let changes = rows.into_iter().map(ChangeLine::from).collect();
    Ok(Some(RunReport {
        summary,
        changes,
        errors,
    }))
}

pub(in crate::store) async fn run_report_head(
    pool: &Pool<Db>,
    run_id: i64,
    per_kind: i64,
) -> Result<Option<RunReport>> {
    let Some((summary, errors)) = run_head(pool, run_id).await? else {
        return Ok(None);
    };
    let mut changes = Vec::new();
    for kind in ChangeKind::ALL {
        if !summary.counts.contains_key(kind.as_str()) {
            continue;
        }
        let rows: Vec<ChangeRow> = sqlx::query_as(
            "SELECT kind, employee_id, email, field, old_value, new_value, reason \
             FROM sync_changes WHERE run_id = $1 AND kind = $2 ORDER BY seq LIMIT $3",
        )
        .bind(run_id)
        .bind(kind.as_str())
        .bind(per_kind)
        .fetch_all(pool)
        .await
        .doing("reading the first changes of a run")?;
        changes.extend(rows.into_iter().map(ChangeLine::from));
    }
    Ok(Some(RunReport {
        summary,
        changes,
        errors,
    }))
}

pub(in crate::store) async fn run_changes_of_kind(
    pool: &Pool<Db>,
    run_id: i64,
    kind: &str,
    offset: i64,
    limit: i64,
) -> Result<Vec<ChangeLine>> {
    let rows: Vec<ChangeRow> = sqlx::query_as(
        "SELECT kind, employee_id, email, field, old_value, new_value, reason \
         FROM sync_changes WHERE run_id = $1 AND kind = $2 ORDER BY seq LIMIT $3 OFFSET $4",
    )
    .bind(run_id)
    .bind(kind)
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await
    .doing("reading a page of a run's changes")?;
    Ok(rows.into_iter().map(ChangeLine::from).collect())
}

pub(in crate::store) async fn each_change(
    pool: &Pool<Db>,
    run_id: i64,
    each: &mut (dyn FnMut(ChangeLine) -> bool + Send),
) -> Result<()> {
    use futures_util::TryStreamExt as _;
    // Report order: by kind as the report lists them, then as recorded.
    let mut rank = String::from("CASE kind");
    for (n, kind) in ChangeKind::ALL.iter().enumerate() {
        rank.push_str(&format!(" WHEN '{}' THEN {n}", kind.as_str()));
    }
    rank.push_str(&format!(" ELSE {} END", ChangeKind::ALL.len()));
    let sql = format!(
        "SELECT kind, employee_id, email, field, old_value, new_value, reason \
         FROM sync_changes WHERE run_id = $1 ORDER BY {rank}, seq"
    );
    let mut rows = sqlx::query_as::<_, ChangeRow>(&sql)
        .bind(run_id)
        .fetch(pool);
    while let Some(row) = rows.try_next().await.doing("reading a run's changes")? {
        if !each(ChangeLine::from(row)) {
            break;
        }
    }
    Ok(())
}

/// A change line as stored in `sync_changes`.
#[derive(sqlx::FromRow)]
struct ChangeRow {
    kind: String,
    employee_id: Option<String>,
    email: Option<String>,
    field: Option<String>,
    old_value: Option<String>,
    new_value: Option<String>,
    reason: String,
}

impl From<ChangeRow> for ChangeLine {
    fn from(row: ChangeRow) -> ChangeLine {
        ChangeLine {
            kind: row.kind,
            employee_id: row.employee_id,
            email: row.email,
            field: row.field,
            old: row.old_value,
            new: row.new_value,
            reason: row.reason,
        }
    }
}
