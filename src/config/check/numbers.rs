//! The check of every numeric setting against its range in [`bounds`]: the global ones, then
//! each connector's (invitations, incremental fetches, thresholds, feed health). This is also
//! the whole check of `thresholds` and `feed_health`, whose values are only numbers.
//!
//! [`Loaded::numbers`] is the one list of numbers and their bounds; a new numeric setting
//! gets a line here (and `tests/config_check.rs` fails for one without).

use crate::config::bounds::{self, Bound, Number, Number::Share, Number::Whole};
use crate::config::{ConnectorSettings, Loaded, Problem};

impl Loaded {
    /// Every numeric setting with its value, and its range in [`bounds`].
    pub fn numbers(&self) -> Vec<(String, Bound, Number)> {
        let s = &self.settings;
        let global = |bound: Bound, value| (bound.key.to_string(), bound, value);
        let mut numbers = vec![
            global(
                bounds::MAX_CONNECTIONS,
                Whole(s.database.max_connections.into()),
            ),
            global(
                bounds::TOKEN_VALID_DAYS,
                Whole(s.mail.token_valid_days.into()),
            ),
            global(bounds::MAIL_POLL_SECONDS, Whole(s.server.mail_poll_seconds)),
            global(
                bounds::SHUTDOWN_GRACE_SECONDS,
                Whole(s.server.shutdown_grace_seconds),
            ),
            global(
                bounds::STALE_INVITE_DAYS,
                Whole(s.server.stale_invite_days.into()),
            ),
        ];
        for (id, c) in &s.connectors {
            numbers.extend(
                connector_numbers(c)
                    .into_iter()
                    .map(|(bound, value)| (bound.key_for(id), bound, value)),
            );
        }
        numbers
    }

    /// The numeric settings outside their range, e.g. `mail.token_valid_days: 100000000 is
    /// out of range; use 1 to 365`. Part of [`Loaded::check`], and what `App::build` refuses
    /// to run with: it reads no file and no environment, so it holds for any caller.
    pub fn bounds_problems(&self) -> Vec<Problem> {
        self.numbers()
            .into_iter()
            .filter(|(_, bound, value)| !bound.range.admits(*value))
            .map(|(key, bound, value)| {
                self.problem(key, format!("{value} is out of range; use {}", bound.range))
            })
            .collect()
    }
}

/// One connector's numbers; the caller puts its id into each key.
fn connector_numbers(c: &ConnectorSettings) -> Vec<(Bound, Number)> {
    let mut numbers = vec![(
        bounds::INVITE_DAYS_BEFORE_START,
        Whole(c.invite_days_before_start.into()),
    )];
    numbers.extend(incremental_numbers(c));
    numbers.extend(threshold_numbers(c));
    numbers.extend(feed_health_numbers(c));
    numbers
}

/// `http.incremental`, where the connector has it; its two limits only where they are given.
fn incremental_numbers(c: &ConnectorSettings) -> Vec<(Bound, Number)> {
    let Some(inc) = c.http.as_ref().and_then(|h| h.incremental.as_ref()) else {
        return Vec::new();
    };
    let mut numbers = Vec::new();
    if let Some(runs) = inc.full_every_runs {
        numbers.push((bounds::FULL_EVERY_RUNS, Whole(runs.into())));
    }
    if let Some(hours) = inc.full_every_hours {
        numbers.push((bounds::FULL_EVERY_HOURS, Whole(hours.into())));
    }
    numbers.push((bounds::OVERLAP_MINUTES, Whole(inc.overlap_minutes.into())));
    numbers
}

/// `thresholds`: when a run's deactivations hold it.
fn threshold_numbers(c: &ConnectorSettings) -> Vec<(Bound, Number)> {
    let t = &c.thresholds;
    vec![
        (bounds::MAX_DEACTIVATIONS, count(t.max_deactivations)),
        (
            bounds::MAX_DEACTIVATION_RATIO,
            Share(t.max_deactivation_ratio),
        ),
        (
            bounds::MIN_DEACTIVATIONS_FOR_RATIO,
            count(t.min_deactivations_for_ratio),
        ),
    ]
}

/// `feed_health`: when a feed looks wrong enough to hold its run.
fn feed_health_numbers(c: &ConnectorSettings) -> Vec<(Bound, Number)> {
    let h = &c.feed_health;
    vec![
        (bounds::MAX_DROP, Share(h.max_drop)),
        (
            bounds::MAX_MISSING_EMAIL_RISE,
            Share(h.max_missing_email_rise),
        ),
        (bounds::MAX_DROP_COUNT, count(h.max_drop_count)),
        (
            bounds::MAX_MISSING_EMAIL_RISE_COUNT,
            count(h.max_missing_email_rise_count),
        ),
        (
            bounds::FIRST_FEED_MAX_QUARANTINED,
            Share(h.first_feed_max_quarantined),
        ),
    ]
}

/// A count as a whole number. usize is at most 64 bits on every target Rust supports;
/// saturate rather than cast.
fn count(n: usize) -> Number {
    Whole(u64::try_from(n).unwrap_or(u64::MAX))
}
