//! The store's SQL compiled for PostgreSQL: the `backend/` modules with PostgreSQL's types.

/// The database the `backend/` modules are compiled for here.
type Db = sqlx::Postgres;
/// Whether this is PostgreSQL, for the few places the dialects differ.
const POSTGRES: bool = true;

// The same files are loaded once per backend on purpose: that is how one SQL text is compiled
// with each backend's types.
#[allow(clippy::duplicate_mod)]
#[path = "backend/mod.rs"]
pub(super) mod backend;

/// PostgreSQL's bulk load, for the append-only tables the applier fills: `COPY target FROM
/// STDIN` of CSV text, in the run's transaction; `row` writes row `n` (0 to `rows - 1`), and
/// the text goes to the server a few thousand rows at a time. Returns true: the rows are
/// written.
async fn copy_csv(
    tx: &mut sqlx::Transaction<'_, Db>,
    target: &str,
    rows: usize,
    mut row: impl FnMut(&mut backend::common::CopyCsv, usize),
) -> sqlx::Result<bool> {
    const ROWS_PER_SEND: usize = 5_000;
    let mut copy = tx
        .copy_in_raw(&format!("COPY {target} FROM STDIN (FORMAT csv)"))
        .await?;
    let mut csv = backend::common::CopyCsv::new();
    let mut n = 0;
    while n < rows {
        csv.clear();
        for at in n..rows.min(n + ROWS_PER_SEND) {
            row(&mut csv, at);
            csv.end();
        }
        n += ROWS_PER_SEND;
        if let Err(error) = copy.send(csv.text.as_slice()).await {
            // The connection leaves COPY mode before the error rolls the transaction back.
            let _ = copy.abort(error.to_string()).await;
            return Err(error);
        }
    }
    copy.finish().await?;
    Ok(true)
}
