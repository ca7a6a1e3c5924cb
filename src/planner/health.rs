//! The feed-health gate: before a feed is trusted, it is compared with the connector's last
//! good feed. A feed that shrank by more than a share, or in which many more records lack a
//! usable email than before, is held: HR systems that return half a list, or lose a column,
//! would otherwise look like a wave of leavers or of broken records.

use crate::domain::HrRecord;

use super::Hold;

/// Stable code of a run held because its feed shrank too much.
pub const HOLD_FEED_SHRANK: &str = "HR202";
/// Stable code of a run held because many more records lack a usable email.
pub const HOLD_MISSING_EMAIL: &str = "HR203";

/// The size of a feed and how many of its records have no usable email.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FeedStats {
    pub records: usize,
    pub missing_email: usize,
}

impl FeedStats {
    pub fn of(records: &[HrRecord]) -> FeedStats {
        FeedStats {
            records: records.len(),
            missing_email: records.iter().filter(|r| r.email.is_err()).count(),
        }
    }

    fn missing_share(self) -> f64 {
        if self.records == 0 {
            0.0
        } else {
            self.missing_email as f64 / self.records as f64
        }
    }
}

/// How far a feed may move from the last good one before it is held.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HealthLimits {
    /// The largest share by which the record count may drop (0.20: one fifth).
    pub max_drop: f64,
    /// The largest rise in the share of records without a usable email (0.05: five points).
    pub max_missing_email_rise: f64,
}

impl Default for HealthLimits {
    fn default() -> Self {
        HealthLimits {
            max_drop: 0.20,
            max_missing_email_rise: 0.05,
        }
    }
}

/// Why the feed must be held, or `None` when it looks healthy (or there is nothing yet to
/// compare it with).
pub fn check(
    previous: Option<FeedStats>,
    current: FeedStats,
    limits: &HealthLimits,
) -> Option<Hold> {
    let previous = previous.filter(|p| p.records > 0)?;
    if current.records < previous.records {
        let drop = (previous.records - current.records) as f64 / previous.records as f64;
        if drop > limits.max_drop {
            return Some(Hold {
                code: HOLD_FEED_SHRANK,
                message: format!(
                    "the feed has {} records, {:.1}% fewer than the {} of the last good feed (limit {:.1}%); a partial export would look like leavers",
                    current.records,
                    drop * 100.0,
                    previous.records,
                    limits.max_drop * 100.0
                ),
            });
        }
    }
    let rise = current.missing_share() - previous.missing_share();
    (rise > limits.max_missing_email_rise).then(|| Hold {
        code: HOLD_MISSING_EMAIL,
        message: format!(
            "{:.1}% of the records have no usable email, against {:.1}% in the last good feed (limit: {:.1} points more)",
            current.missing_share() * 100.0,
            previous.missing_share() * 100.0,
            limits.max_missing_email_rise * 100.0
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(records: usize, missing_email: usize) -> FeedStats {
        FeedStats {
            records,
            missing_email,
        }
    }

    #[test]
    fn first_feed_has_nothing_to_be_compared_with() {
        assert_eq!(check(None, stats(10, 5), &HealthLimits::default()), None);
    }

    #[test]
    fn feed_shrinking_by_half_is_held() {
        let hold = check(Some(stats(100, 0)), stats(50, 0), &HealthLimits::default());

        assert_eq!(hold.map(|h| h.code), Some(HOLD_FEED_SHRANK));
    }

    #[test]
    fn feed_shrinking_within_the_limit_or_growing_passes() {
        let limits = HealthLimits::default();
        assert_eq!(check(Some(stats(100, 0)), stats(80, 0), &limits), None);
        assert_eq!(check(Some(stats(100, 0)), stats(300, 0), &limits), None);
    }

    #[test]
    fn sudden_rise_in_records_without_email_is_held() {
        let limits = HealthLimits::default();
        let hold = check(Some(stats(100, 1)), stats(100, 20), &limits);
        assert_eq!(hold.map(|h| h.code), Some(HOLD_MISSING_EMAIL));
        assert_eq!(check(Some(stats(100, 1)), stats(100, 5), &limits), None);
    }
}
