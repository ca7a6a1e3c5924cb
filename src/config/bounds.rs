//! The allowed range of every numeric setting. `check` refuses a value outside its range, so
//! nothing it accepts can overflow a date or a duration, or ask for an absurd allocation, at
//! run time; `App::build` refuses the same values. The ranges are generous for a production
//! deployment and documented with each key in README's configuration reference.

use std::fmt;

/// The values a numeric setting may take, both ends included.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Range {
    /// Whole numbers (counts, sizes, days, seconds).
    Whole { min: u64, max: u64 },
    /// Shares of a whole, such as 0.10 for 10%. NaN is in no range.
    Share { min: f64, max: f64 },
}

/// A setting's value, as [`Range`] compares it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Number {
    Whole(u64),
    Share(f64),
}

impl Range {
    pub fn admits(&self, value: Number) -> bool {
        match (*self, value) {
            (Range::Whole { min, max }, Number::Whole(v)) => (min..=max).contains(&v),
            (Range::Share { min, max }, Number::Share(v)) => (min..=max).contains(&v),
            // A whole number where a share belongs (or the reverse) is a slip in this
            // module, never an operator's value: refuse rather than guess.
            _ => false,
        }
    }
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Range::Whole { min, max } => write!(f, "{min} to {max}"),
            Range::Share { min, max } => write!(f, "{min} to {max}"),
        }
    }
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Number::Whole(v) => write!(f, "{v}"),
            Number::Share(v) => write!(f, "{v}"),
        }
    }
}

/// A numeric setting and its range.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bound {
    /// The dotted key; under `connectors`, `ID` stands for the connector's id.
    pub key: &'static str,
    pub range: Range,
}

impl Bound {
    /// The key of this setting in connector `id` (settings outside connectors ignore it).
    pub fn key_for(&self, id: &str) -> String {
        match self.key.strip_prefix("connectors.ID.") {
            Some(rest) => format!("connectors.{id}.{rest}"),
            None => self.key.to_string(),
        }
    }

    /// Whether a dotted key names this setting, for any connector id in place of `ID`.
    pub fn matches(&self, key: &str) -> bool {
        let (mut pattern, mut key) = (self.key.split('.'), key.split('.'));
        loop {
            match (pattern.next(), key.next()) {
                (None, None) => return true,
                (Some("ID"), Some(_)) => {}
                (Some(p), Some(k)) if p == k => {}
                _ => return false,
            }
        }
    }
}

const fn whole(key: &'static str, min: u64, max: u64) -> Bound {
    Bound {
        key,
        range: Range::Whole { min, max },
    }
}

const fn share(key: &'static str) -> Bound {
    Bound {
        key,
        range: Range::Share { min: 0.0, max: 1.0 },
    }
}

/// The pool reserves room for every connection up front; see `store::MAX_POOL_SIZE`.
pub const MAX_CONNECTIONS: Bound = whole(
    "database.max_connections",
    1,
    crate::store::MAX_POOL_SIZE as u64,
);
/// A year: an activation link older than that is better sent again.
pub const TOKEN_VALID_DAYS: Bound = whole("mail.token_valid_days", 1, 365);
/// Up to an hour; the worker is woken after every run as well.
pub const MAIL_POLL_SECONDS: Bound = whole("server.mail_poll_seconds", 1, 3600);
/// 0 cuts a run in progress off at once; an hour is longer than any service manager
/// waits for a stop.
pub const SHUTDOWN_GRACE_SECONDS: Bound = whole("server.shutdown_grace_seconds", 0, 3600);
pub const STALE_INVITE_DAYS: Bound = whole("server.stale_invite_days", 1, 365);
pub const INVITE_DAYS_BEFORE_START: Bound = whole("connectors.ID.invite_days_before_start", 0, 365);
pub const FULL_EVERY_RUNS: Bound =
    whole("connectors.ID.http.incremental.full_every_runs", 1, 10_000);
/// A year at most, so people who vanished from the HR system are found within one.
pub const FULL_EVERY_HOURS: Bound =
    whole("connectors.ID.http.incremental.full_every_hours", 1, 8760);
pub const OVERLAP_MINUTES: Bound = whole("connectors.ID.http.incremental.overlap_minutes", 0, 1440);
/// 0 holds every run that deactivates anyone; a million is more than any organisation.
pub const MAX_DEACTIVATIONS: Bound =
    whole("connectors.ID.thresholds.max_deactivations", 0, 1_000_000);
pub const MAX_DEACTIVATION_RATIO: Bound = share("connectors.ID.thresholds.max_deactivation_ratio");
pub const MIN_DEACTIVATIONS_FOR_RATIO: Bound = whole(
    "connectors.ID.thresholds.min_deactivations_for_ratio",
    0,
    1_000_000,
);
pub const MAX_DROP: Bound = share("connectors.ID.feed_health.max_drop");
pub const MAX_MISSING_EMAIL_RISE: Bound = share("connectors.ID.feed_health.max_missing_email_rise");
/// Counts that go with the feed-health shares; a million is more than any organisation.
pub const MAX_DROP_COUNT: Bound = whole("connectors.ID.feed_health.max_drop_count", 0, 1_000_000);
pub const MAX_MISSING_EMAIL_RISE_COUNT: Bound = whole(
    "connectors.ID.feed_health.max_missing_email_rise_count",
    0,
    1_000_000,
);
pub const FIRST_FEED_MAX_QUARANTINED: Bound =
    share("connectors.ID.feed_health.first_feed_max_quarantined");

/// Every numeric setting of the configuration.
pub const ALL: &[Bound] = &[
    MAX_CONNECTIONS,
    TOKEN_VALID_DAYS,
    MAIL_POLL_SECONDS,
    SHUTDOWN_GRACE_SECONDS,
    STALE_INVITE_DAYS,
    INVITE_DAYS_BEFORE_START,
    FULL_EVERY_RUNS,
    FULL_EVERY_HOURS,
    OVERLAP_MINUTES,
    MAX_DEACTIVATIONS,
    MAX_DEACTIVATION_RATIO,
    MIN_DEACTIVATIONS_FOR_RATIO,
    MAX_DROP,
    MAX_MISSING_EMAIL_RISE,
    MAX_DROP_COUNT,
    MAX_MISSING_EMAIL_RISE_COUNT,
    FIRST_FEED_MAX_QUARANTINED,
];

/// The range of the setting a dotted key names, if it is a numeric one.
pub fn of(key: &str) -> Option<Range> {
    ALL.iter().find(|b| b.matches(key)).map(|b| b.range)
}
