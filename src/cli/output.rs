//! Run reports written to stdout a line at a time: the text summary of a run (its counts and
//! the first lines of each kind, every line with `--all`), and its JSON and CSV, whose change
//! lines are streamed from the store so that a run of any size is written without being held.
//! Like the `out!` macros, writing stops quietly when the reader has gone.

use std::io::{BufWriter, Stdout, Write as _};

use crate::domain::RunReport;
use crate::report;
use crate::sync::App;

/// Buffered stdout that remembers a failed write (the reader has gone) and then writes
/// nothing more.
struct Out {
    w: BufWriter<Stdout>,
    gone: bool,
}

impl Out {
    fn new() -> Out {
        Out {
            w: BufWriter::new(std::io::stdout()),
            gone: false,
        }
    }

    /// Writes `text`; false once the reader has gone.
    fn put(&mut self, text: &str) -> bool {
        if !self.gone && self.w.write_all(text.as_bytes()).is_err() {
            self.gone = true;
        }
        !self.gone
    }

    fn finish(mut self) {
        if !self.gone {
            let _ = self.w.flush();
        }
    }
}

/// The text report of a run: `report` as it is (the first lines of each kind, saying how
/// many more there are), or with `all` every line, read from the store as it is written.
pub async fn text(app: &App, report: &RunReport, all: bool) -> anyhow::Result<()> {
    let mut out = Out::new();
    if !all {
        out.put(&report::text(report));
        out.finish();
        return Ok(());
    }
    out.put(&report::text_head(report));
    let tense = report::Tense::of(&report.summary);
    let counts = &report.summary.counts;
    let mut kind: Option<String> = None;
    app.store
        .each_change(report.summary.id, &mut |line| {
            if kind.as_deref() != Some(line.kind.as_str()) {
                let count = counts.get(&line.kind).copied().unwrap_or(0);
                out.put(&report::text_kind(&line.kind, count, tense));
                kind = Some(line.kind.clone());
            }
            out.put(&report::text_line(&line))
        })
        .await?;
    out.put(&report::text_close(&report.summary));
    out.finish();
    Ok(())
}

/// The JSON of runs: one run's report as an object, several as an array of them, every
/// change line read from the store as it is written.
pub async fn json(app: &App, reports: &[&RunReport]) -> anyhow::Result<()> {
    let mut out = Out::new();
    let many = reports.len() != 1;
    if many {
        out.put("[");
    }
    for (n, r) in reports.iter().enumerate() {
        if n > 0 {
            out.put(",\n");
        }
        out.put(&report::json_open(r));
        let mut first = true;
        app.store
            .each_change(r.summary.id, &mut |line| {
                let more = out.put(&report::json_change(&line, first));
                first = false;
                more
            })
            .await?;
        out.put(report::json_close(!first));
    }
    if many {
        out.put("]");
    }
    out.put("\n");
    out.finish();
    Ok(())
}

/// The change lines of a run as CSV, read from the store as they are written.
pub async fn csv(app: &App, report: &RunReport) -> anyhow::Result<()> {
    let mut w = report::csv_writer(BufWriter::new(std::io::stdout()))?;
    let run_id = report.summary.id.to_string();
    let mut gone = false;
    app.store
        .each_change(report.summary.id, &mut |line| {
            gone = report::csv_line(&mut w, &run_id, &line).is_err();
            !gone
        })
        .await?;
    if !gone {
        let _ = w.flush();
    }
    Ok(())
}
