//! The feed-health gate: before a feed is trusted, it is compared with the connector's last
//! good feed. A feed that shrank by more than a share, or in which many more records lack a
//! usable email than before, is held: HR systems that return half a list, or lose a column,
//! would otherwise look like a wave of leavers or of broken records.

use crate::domain::{Code, HrRecord};

use super::Hold;

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
///
/// Each limit is a share and an absolute count, both of which must be exceeded, like the
/// deactivation thresholds: in a ten-person organisation one person losing their email is a
/// 10-point rise, yet it is that person's quarantine, not a broken feed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HealthLimits {
    /// The largest share by which the record count may drop (0.20: one fifth).
    pub max_drop: f64,
    /// The most records the feed may lose whatever the share (3).
    pub max_drop_count: usize,
    /// The largest rise in the share of records without a usable email (0.05: five points).
    pub max_missing_email_rise: f64,
    /// The most records that may newly lack a usable email whatever the share (3).
    pub max_missing_email_rise_count: usize,
    /// A connector's first feed, which has nothing to be compared with, is held when more than
    /// this share of its records would be quarantined (0.5: a mapping that reads the wrong
    /// field looks exactly like that).
    pub first_feed_max_quarantined: f64,
}

impl Default for HealthLimits {
    fn default() -> Self {
        HealthLimits {
            max_drop: 0.20,
            max_drop_count: 3,
            max_missing_email_rise: 0.05,
            max_missing_email_rise_count: 3,
            first_feed_max_quarantined: 0.5,
        }
    }
}

/// Every reason the feed must be held; empty when it looks healthy.
///
/// `previous` is the connector's last applied feed (`None` before its first); `quarantined`
/// is how many of this feed's records the plan quarantines, which decides a first feed.
pub fn check(
    previous: Option<FeedStats>,
    current: FeedStats,
    quarantined: usize,
    limits: &HealthLimits,
) -> Vec<Hold> {
    let Some(previous) = previous.filter(|p| p.records > 0) else {
        return first_feed(current, quarantined, limits)
            .into_iter()
            .collect();
    };
    let mut holds = Vec::new();
    let dropped = previous.records.saturating_sub(current.records);
    let drop = dropped as f64 / previous.records as f64;
    if drop > limits.max_drop && dropped > limits.max_drop_count {
        holds.push(Hold {
            code: Code::FeedShrank,
            message: format!(
                "the feed has {} records, {:.1}% fewer than the {} of the last good feed ({dropped} fewer; limit: more than {:.1}% and more than {} records); a partial export would look like leavers",
                current.records,
                drop * 100.0,
                previous.records,
                limits.max_drop * 100.0,
                limits.max_drop_count
            ),
        });
    }
    let rise = current.missing_share() - previous.missing_share();
    let more = current.missing_email.saturating_sub(previous.missing_email);
    if rise > limits.max_missing_email_rise && more > limits.max_missing_email_rise_count {
        holds.push(Hold {
            code: Code::MissingEmail,
            message: format!(
                "{} records ({:.1}%) have no usable email, against {} ({:.1}%) in the last good feed (limit: more than {:.1} points and more than {} records more)",
                current.missing_email,
                current.missing_share() * 100.0,
                previous.missing_email,
                previous.missing_share() * 100.0,
                limits.max_missing_email_rise * 100.0,
                limits.max_missing_email_rise_count
            ),
        });
    }
    holds
}

/// The gate of a connector's first feed: most of it quarantined means the mapping is wrong.
fn first_feed(current: FeedStats, quarantined: usize, limits: &HealthLimits) -> Option<Hold> {
    if current.records == 0 {
        return None;
    }
    let share = quarantined as f64 / current.records as f64;
    (share > limits.first_feed_max_quarantined).then(|| Hold {
        code: Code::FirstFeedQuarantined,
        message: format!(
            "this is the connector's first feed, and {quarantined} of its {} records ({:.1}%) would be quarantined (limit {:.1}%); {} records of the feed have no usable email. A mapping that reads the wrong field looks like this: check the connector's field mapping, then approve the run if the feed is right",
            current.records,
            share * 100.0,
            limits.first_feed_max_quarantined * 100.0,
            current.missing_email
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

    fn codes(holds: Vec<Hold>) -> Vec<Code> {
        holds.into_iter().map(|h| h.code).collect()
    }

    #[test]
    fn first_feed_with_few_quarantined_records_passes() {
        let limits = HealthLimits::default();
        assert_eq!(check(None, stats(10, 5), 5, &limits), vec![]);
    }

    #[test]
    fn first_feed_with_most_records_quarantined_is_held() {
        let holds = check(None, stats(10, 9), 9, &HealthLimits::default());

        assert_eq!(codes(holds), [Code::FirstFeedQuarantined]);
    }

    #[test]
    fn feed_shrinking_by_half_is_held() {
        let holds = check(
            Some(stats(100, 0)),
            stats(50, 0),
            0,
            &HealthLimits::default(),
        );

        assert_eq!(codes(holds), [Code::FeedShrank]);
    }

    #[test]
    fn feed_shrinking_within_the_limit_or_growing_passes() {
        let limits = HealthLimits::default();
        assert_eq!(check(Some(stats(100, 0)), stats(80, 0), 0, &limits), vec![]);
        assert_eq!(
            check(Some(stats(100, 0)), stats(300, 0), 0, &limits),
            vec![]
        );
    }

    #[test]
    fn two_of_eight_people_leaving_is_below_the_absolute_minimum() {
        let holds = check(Some(stats(8, 0)), stats(6, 0), 0, &HealthLimits::default());

        assert_eq!(holds, vec![]);
    }

    #[test]
    fn sudden_rise_in_records_without_email_is_held() {
        let limits = HealthLimits::default();
        let holds = check(Some(stats(100, 1)), stats(100, 20), 20, &limits);
        assert_eq!(codes(holds), [Code::MissingEmail]);
        assert_eq!(
            check(Some(stats(100, 1)), stats(100, 5), 5, &limits),
            vec![]
        );
    }

    #[test]
    fn one_missing_email_in_a_small_organisation_is_no_hold() {
        let holds = check(
            Some(stats(10, 0)),
            stats(10, 1),
            1,
            &HealthLimits::default(),
        );

        assert_eq!(holds, vec![]);
    }

    #[test]
    fn a_feed_past_both_limits_lists_both_reasons() {
        let holds = check(
            Some(stats(100, 0)),
            stats(50, 30),
            30,
            &HealthLimits::default(),
        );

        assert_eq!(codes(holds), [Code::FeedShrank, Code::MissingEmail]);
    }
}
