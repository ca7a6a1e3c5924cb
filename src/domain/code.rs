//! The stable codes an operator sees on a run that failed or was held: one enum, so the
//! planner, the feed-health gate, the run itself and README's table cannot drift apart.
//!
//! A code is stored in the run report as its text (`HR101`); a code's number never changes
//! meaning, and a new reason gets a new number.

use std::fmt;

/// Why a run failed (HR1xx) or was held for an admin's approval (HR2xx, and HR101).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Code {
    /// HR101: the feed is empty; always held.
    EmptyFeed,
    /// HR102: the fetch failed; nothing is planned or applied.
    FetchFailed,
    /// HR103: the run failed after fetching (a database or planning error); nothing applied.
    RunFailed,
    /// HR104: the run was cut off (a crash, or a stop that could not wait for it).
    RunInterrupted,
    /// HR201: more deactivations than the connector's thresholds allow.
    MassDeactivation,
    /// HR202: the feed shrank too much since the last applied one.
    FeedShrank,
    /// HR203: many more records without a usable email than in the last applied feed.
    MissingEmail,
    /// HR204: a connector's first feed in which most records would be quarantined.
    FirstFeedQuarantined,
    /// HR205: a run an admin started by hand to review first: held until its plan is approved.
    HeldForReview,
}

impl Code {
    /// Every code, in number order.
    pub const ALL: [Code; 9] = [
        Code::EmptyFeed,
        Code::FetchFailed,
        Code::RunFailed,
        Code::RunInterrupted,
        Code::MassDeactivation,
        Code::FeedShrank,
        Code::MissingEmail,
        Code::FirstFeedQuarantined,
        Code::HeldForReview,
    ];

    /// The code as stored and shown: `HR101`.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::EmptyFeed => "HR101",
            Code::FetchFailed => "HR102",
            Code::RunFailed => "HR103",
            Code::RunInterrupted => "HR104",
            Code::MassDeactivation => "HR201",
            Code::FeedShrank => "HR202",
            Code::MissingEmail => "HR203",
            Code::FirstFeedQuarantined => "HR204",
            Code::HeldForReview => "HR205",
        }
    }

    /// What the code means, as README's table says it.
    pub fn meaning(self) -> &'static str {
        match self {
            Code::EmptyFeed => "empty feed held",
            Code::FetchFailed => "fetch failed",
            Code::RunFailed => {
                "run failed after fetching (database or planning error; nothing applied)"
            }
            Code::RunInterrupted => {
                "run cut off by a crash or by a stop that could not wait for it (its transaction rolled back; nothing applied)"
            }
            Code::MassDeactivation => "mass deactivation held",
            Code::FeedShrank => "feed shrank too much since the last good feed",
            Code::MissingEmail => {
                "many more records without a usable email than in the last good feed"
            }
            Code::FirstFeedQuarantined => {
                "a connector's first feed held because more than half its records would be quarantined"
            }
            Code::HeldForReview => {
                "a run started by hand from the pages (or the API with `review`) held so the admin sees its plan before approving it"
            }
        }
    }

    /// Whether a run with this code was held (rather than failed).
    pub fn holds(self) -> bool {
        match self {
            Code::EmptyFeed
            | Code::MassDeactivation
            | Code::FeedShrank
            | Code::MissingEmail
            | Code::FirstFeedQuarantined
            | Code::HeldForReview => true,
            Code::FetchFailed | Code::RunFailed | Code::RunInterrupted => false,
        }
    }

    /// The code a stored text names, if any.
    pub fn parse(text: &str) -> Option<Code> {
        Code::ALL.into_iter().find(|c| c.as_str() == text)
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_in_all() {
        // The match has no `_` arm: a new code must be placed here, and then in `ALL`.
        let position = |code: Code| match code {
            Code::EmptyFeed => 0,
            Code::FetchFailed => 1,
            Code::RunFailed => 2,
            Code::RunInterrupted => 3,
            Code::MassDeactivation => 4,
            Code::FeedShrank => 5,
            Code::MissingEmail => 6,
            Code::FirstFeedQuarantined => 7,
            Code::HeldForReview => 8,
        };

        for (i, code) in Code::ALL.into_iter().enumerate() {
            assert_eq!(position(code), i, "{code}");
        }
    }

    #[test]
    fn every_code_round_trips_and_numbers_are_unique() {
        let texts: std::collections::BTreeSet<&str> =
            Code::ALL.iter().map(|c| c.as_str()).collect();

        assert_eq!(texts.len(), Code::ALL.len());
        for code in Code::ALL {
            assert_eq!(Code::parse(code.as_str()), Some(code));
        }
        assert_eq!(Code::parse("HR999"), None);
    }
}
