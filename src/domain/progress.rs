//! Progress of a long step, for a person watching a terminal: pages fetched, records read,
//! the plan being made and applied, mail sent. The library reports it through a [`Progress`]
//! handle that does nothing unless the command line gave it somewhere to draw; nothing
//! depends on it being heard.

use std::fmt;
use std::sync::Arc;

/// One report of progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step<'a> {
    /// An HTTP source (named by its definition) read another page: `pages` so far, with
    /// `records` in them.
    Fetched {
        source: &'a str,
        pages: u32,
        records: usize,
    },
    /// A connector's records are read and being planned.
    Planning { connector: &'a str, records: usize },
    /// A plan of `changes` lines is being applied; `phase` is the part being written.
    Applying {
        connector: &'a str,
        phase: &'a str,
        changes: usize,
    },
    /// Mail sent so far (`sent`) and failed so far (`failed`) in this drain of the outbox.
    Mailing { sent: usize, failed: usize },
    /// The step being watched has ended.
    Done,
}

type Listener = dyn Fn(Step<'_>) + Send + Sync;

/// Where progress goes: nowhere by default, or to a listener (a terminal's progress bar).
/// Cheap to clone.
#[derive(Clone, Default)]
pub struct Progress(Option<Arc<Listener>>);

impl Progress {
    /// Progress heard by `listener`.
    pub fn to(listener: impl Fn(Step<'_>) + Send + Sync + 'static) -> Progress {
        Progress(Some(Arc::new(listener)))
    }

    /// Reports `step`, if anyone listens.
    pub fn report(&self, step: Step<'_>) {
        if let Some(listener) = &self.0 {
            listener(step);
        }
    }
}

impl fmt::Debug for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "Progress(listened)"
        } else {
            "Progress(none)"
        })
    }
}
