//! What every aggregate's SQL shares: the transaction and row types of this backend, the batch
//! size, the write transaction, `IN (…)` lists and reading a column by name.

use sqlx::{Pool, QueryBuilder, Row, Transaction};

use super::{Db, POSTGRES};
use crate::store::{Doing, Result, StoreError};

pub(super) type DbRow = <Db as sqlx::Database>::Row;
pub(super) type Tx<'c> = Transaction<'c, Db>;

/// Rows per multi-row statement: well under both backends' limits on bound parameters.
pub(super) const CHUNK: usize = 500;

/// Starts a transaction that will write. On SQLite it takes the write lock at once (`BEGIN
/// IMMEDIATE`): a deferred transaction that reads and then writes fails with "database is
/// locked" (`SQLITE_BUSY_SNAPSHOT`) when another connection wrote in between, whatever the busy
/// timeout, while an immediate one waits its turn. The daemon's mail worker, its runs and its
/// HTTP handlers write to one SQLite file at the same time.
pub(super) async fn begin_write(pool: &Pool<Db>, doing: &'static str) -> Result<Tx<'static>> {
    if POSTGRES {
        pool.begin().await
    } else {
        pool.begin_with("BEGIN IMMEDIATE").await
    }
    .doing(doing)
}

/// Binds every value as a comma-separated list, for `IN (…)`.
pub(super) fn push_binds<'a, T>(qb: &mut QueryBuilder<'a, Db>, values: impl IntoIterator<Item = T>)
where
    T: 'a + sqlx::Encode<'a, Db> + sqlx::Type<Db>,
{
    let mut list = qb.separated(", ");
    for value in values {
        list.push_bind(value);
    }
}

pub(super) fn corrupt(what: impl Into<String>) -> StoreError {
    StoreError::Corrupt(what.into())
}

/// Reads one column of a row; typed row structs (`sqlx::FromRow`) serve where a statement
/// reads many.
pub(super) fn get<'r, T>(row: &'r DbRow, column: &str) -> Result<T>
where
    T: sqlx::Decode<'r, Db> + sqlx::Type<Db>,
{
    row.try_get(column).doing("reading a row")
}

/// The connector id a row names, if it is one (`NULL` for rows made by hand).
pub(super) fn connector_of(text: Option<String>) -> Option<crate::domain::ConnectorId> {
    text.as_deref().and_then(crate::domain::ConnectorId::parse)
}

pub(in crate::store) async fn ping(pool: &Pool<Db>) -> Result<()> {
    sqlx::query("SELECT 1")
        .execute(pool)
        .await
        .doing("checking the database")?;
    Ok(())
}
