//! The check: every problem a loaded configuration has, gathered rather than stopping at the
//! first, so `hrsync check` lists them all (as Vector's config validation does).
//!
//! Each section has its own function, in its own file: the services hrsync talks to and
//! offers (`services`: database, mail, server), `organisations`, `connectors` (identity,
//! source kind, status map, schedule, teams, ownership, roles) and `numbers` (every numeric
//! setting against its range in [`super::bounds`], thresholds and feed health included).
//! [`Loaded::check`] only calls them, in a fixed order, and gathers what they find.

use super::loading::env_var_for;
use super::{Loaded, Problem};
use crate::domain::HrRecord;

mod connectors;
mod numbers;
mod organisations;
mod services;

impl Loaded {
    /// A problem with `key`, naming as its origin the environment variable that set the key
    /// when there is one, and the file otherwise.
    fn problem(&self, key: impl Into<String>, message: impl Into<String>) -> Problem {
        let key = key.into();
        let var = env_var_for(&key);
        let origin = if std::env::var_os(&var).is_some() {
            format!("environment {var}")
        } else {
            self.path.display().to_string()
        };
        Problem {
            origin,
            key,
            message: message.into(),
        }
    }

    /// Every problem the configuration has, beyond what loading found: values out of range,
    /// unknown time zones, references to organisations that do not exist, source files that
    /// cannot be read, and secrets whose environment variable is not set.
    pub fn check(&self) -> Vec<Problem> {
        // The order is the order `hrsync check` prints, and has always printed (SMTP after
        // the server, numbers out of range last): operators and tests compare the lists.
        [
            services::database(self),
            services::mail(self),
            services::server(self),
            services::smtp(self),
            organisations::organisations(self),
            connectors::connectors(self),
            self.bounds_problems(),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// The problems of the HR sources themselves, for `hrsync check`: each CSV export is read
    /// as a sync would read it, so a bad header or row shows before a run fails on it. Kept
    /// apart from [`Loaded::check`] so one bad export stops only its own connector's runs.
    /// Also gives the records of each export that could be read, by connector id, so the
    /// caller can say what they hold without reading the file again.
    pub fn check_sources(&self) -> (Vec<Problem>, Vec<(String, Vec<HrRecord>)>) {
        let (mut problems, mut read) = (Vec::new(), Vec::new());
        for (id, c) in &self.settings.connectors {
            let Ok(super::Source::Csv(csv)) = c.source() else {
                continue;
            };
            if !csv.path.is_file() || !csv.problems().is_empty() {
                continue;
            }
            match crate::connectors::csv::read_file(csv) {
                Ok(records) => read.push((id.clone(), records)),
                Err(e) => {
                    problems.push(self.problem(format!("connectors.{id}.csv.path"), e.to_string()))
                }
            }
        }
        (problems, read)
    }
}
