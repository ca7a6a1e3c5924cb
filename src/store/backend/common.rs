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

/// Rows as CSV text for PostgreSQL's `COPY … (FORMAT csv)`: a missing value is an unquoted
/// empty field (NULL), text is always quoted (so an empty text stays empty), quotes doubled.
pub(in crate::store) struct CopyCsv {
    pub(in crate::store) text: Vec<u8>,
    fresh_line: bool,
}

#[allow(
    dead_code,
    reason = "SQLite's copy of this module writes rows with multi-row INSERTs, never COPY text"
)]
impl CopyCsv {
    fn separate(&mut self) {
        if self.fresh_line {
            self.fresh_line = false;
        } else {
            self.text.push(b',');
        }
    }

    /// A text field, or NULL.
    pub(in crate::store) fn text(&mut self, value: Option<&str>) -> &mut Self {
        self.separate();
        if let Some(value) = value {
            self.text.push(b'"');
            for part in value.split_inclusive('"') {
                self.text.extend_from_slice(part.as_bytes());
                if part.ends_with('"') {
                    self.text.push(b'"');
                }
            }
            self.text.push(b'"');
        }
        self
    }

    /// A number, or NULL.
    pub(in crate::store) fn number(&mut self, value: Option<i64>) -> &mut Self {
        self.separate();
        if let Some(value) = value {
            self.text.extend_from_slice(value.to_string().as_bytes());
        }
        self
    }

    /// A time, as RFC 3339 with microseconds (what the column keeps).
    pub(in crate::store) fn time(&mut self, value: chrono::DateTime<chrono::Utc>) -> &mut Self {
        let text = value.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        self.text(Some(&text))
    }

    /// Ends a row.
    pub(in crate::store) fn end(&mut self) {
        self.text.push(b'\n');
        self.fresh_line = true;
    }

    pub(in crate::store) fn new() -> CopyCsv {
        CopyCsv {
            text: Vec::new(),
            fresh_line: true,
        }
    }

    /// Empties the buffer for the next rows.
    pub(in crate::store) fn clear(&mut self) {
        self.text.clear();
        self.fresh_line = true;
    }
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

/// `ANALYZE` of the directory's tables on PostgreSQL; nothing on SQLite, which plans the
/// pages' queries well without statistics. A sample of 3,000 rows a table (statistics target
/// 10, not 100) is plenty for these tables' few-valued and unique columns, and takes a
/// quarter of the time: 0.10-0.12 s for the nine tables at 96,000 people, against 0.41-0.44.
pub(in crate::store) async fn refresh_statistics(pool: &Pool<Db>) -> Result<()> {
    if !POSTGRES {
        return Ok(());
    }
    let doing = "refreshing the tables' statistics";
    let mut tx = pool.begin().await.doing(doing)?;
    for statement in [
        "SET LOCAL default_statistics_target = 10",
        "ANALYZE accounts, memberships, organisations, teams, team_members, team_coaches, \
         roles, role_grants, mail_outbox",
    ] {
        sqlx::query(statement)
            .execute(&mut *tx)
            .await
            .doing(doing)?;
    }
    tx.commit().await.doing(doing)
}

pub(in crate::store) async fn ping(pool: &Pool<Db>) -> Result<()> {
    sqlx::query("SELECT 1")
        .execute(pool)
        .await
        .doing("checking the database")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::CopyCsv;

    #[test]
    fn copy_text_keeps_null_empty_quotes_commas_and_line_breaks_apart() {
        let mut csv = CopyCsv::new();

        csv.number(Some(7))
            .text(None)
            .text(Some(""))
            .text(Some("O\"Brien, \"Jo\""))
            .text(Some("two\nlines"));
        csv.end();
        csv.number(None).text(Some("x"));
        csv.end();

        assert_eq!(
            String::from_utf8(csv.text).unwrap(),
            "7,,\"\",\"O\"\"Brien, \"\"Jo\"\"\",\"two\nlines\"\n,\"x\"\n"
        );
    }
}
