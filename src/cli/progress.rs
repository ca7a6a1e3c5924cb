//! Progress on a terminal: a spinner on stderr that says what a run is doing (pages fetched,
//! records read, the phase being applied, mail sent), cleared before the report is printed.
//! Nothing is drawn when stderr is not a terminal, nor when the output is JSON.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::domain::{Progress, Step};

/// The spinner, made when there is something to show and cleared on [`Spinner::clear`].
#[derive(Clone, Default)]
pub struct Spinner(Arc<Mutex<Option<ProgressBar>>>);

impl Spinner {
    /// A spinner and the [`Progress`] that feeds it; `None` when nothing is to be drawn
    /// (stderr is not a terminal, or `wanted` is false).
    pub fn on_terminal(wanted: bool) -> Option<(Spinner, Progress)> {
        if !wanted || !std::io::stderr().is_terminal() {
            return None;
        }
        let spinner = Spinner::default();
        let fed = spinner.clone();
        let progress = Progress::to(move |step| fed.show(step));
        Some((spinner, progress))
    }

    fn show(&self, step: Step<'_>) {
        let message = match step {
            Step::Fetched {
                source,
                pages,
                records,
            } => format!("{source}: {pages} pages fetched, {records} records read"),
            Step::Planning { connector, records } => {
                format!("{connector}: planning {records} records")
            }
            Step::Applying {
                connector,
                phase,
                changes,
            } => format!("{connector}: applying {changes} changes: {phase}"),
            Step::Mailing { sent, failed } => format!("mail: {sent} sent, {failed} failed"),
            Step::Done => {
                self.clear();
                return;
            }
        };
        let Ok(mut bar) = self.0.lock() else {
            return;
        };
        let bar = bar.get_or_insert_with(|| {
            let bar = ProgressBar::new_spinner();
            if let Ok(style) = ProgressStyle::with_template("{spinner} {elapsed} {msg}") {
                bar.set_style(style);
            }
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        bar.set_message(message);
    }

    /// Takes the spinner off the terminal; the next step draws a new one.
    pub fn clear(&self) {
        if let Ok(mut bar) = self.0.lock()
            && let Some(bar) = bar.take()
        {
            bar.finish_and_clear();
        }
    }
}
