//! The store's SQL compiled for SQLite: the `backend/` modules with SQLite's types.

/// The database the `backend/` modules are compiled for here.
type Db = sqlx::Sqlite;
/// Whether this is PostgreSQL, for the few places the dialects differ.
const POSTGRES: bool = false;

// The same files are loaded once per backend on purpose: that is how one SQL text is compiled
// with each backend's types.
#[allow(clippy::duplicate_mod)]
#[path = "backend/mod.rs"]
pub(super) mod backend;

/// SQLite has no bulk-load statement: returns false, and the caller writes the rows with
/// multi-row `INSERT`s. (PostgreSQL's counterpart runs `COPY`.)
async fn copy_csv(
    _tx: &mut sqlx::Transaction<'_, Db>,
    _target: &str,
    _rows: usize,
    _row: impl FnMut(&mut backend::common::CopyCsv, usize),
) -> sqlx::Result<bool> {
    Ok(false)
}
