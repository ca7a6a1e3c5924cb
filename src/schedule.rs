//! Cron schedules of connector instances: parsing the usual 5-field crontab form and the
//! 6-field form with seconds, and finding the next tick in the organisation's time zone.
//!
//! A schedule is read in the time zone of the connector's organisation, so `0 6 * * *` is six
//! in the morning where the people work, across daylight-saving changes. The scheduler asks
//! for the next tick after *now* each time, which is what keeps ticks missed while the
//! daemon was down from being replayed in a burst.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;

/// A parsed cron schedule.
#[derive(Clone)]
pub struct Schedule {
    text: String,
    cron: Cron,
}

impl Schedule {
    /// Parses `m h dom mon dow` or `s m h dom mon dow` (names such as `mon` and `jan`, lists,
    /// ranges, steps, and `@daily`-style nicknames are accepted).
    pub fn parse(text: &str) -> Result<Schedule, String> {
        let fields = text.split_whitespace().count();
        if !(text.trim_start().starts_with('@') || fields == 5 || fields == 6) {
            return Err(format!(
                "`{text}` has {fields} fields; a schedule has 5 (minute hour day month weekday) \
                 or 6 (with seconds first)"
            ));
        }
        let cron = Cron::from_str(text).map_err(|e| format!("`{text}` is not a schedule: {e}"))?;
        Ok(Schedule {
            text: text.trim().to_string(),
            cron,
        })
    }

    /// The first tick strictly after `after`, read in `zone`; `None` when there is none
    /// (a schedule such as `0 0 30 2 *` never fires).
    pub fn next_after(&self, after: DateTime<Utc>, zone: Tz) -> Option<DateTime<Utc>> {
        self.cron
            .find_next_occurrence(&after.with_timezone(&zone), false)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Schedule({})", self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
    }

    #[test]
    fn five_field_schedule_ticks_on_the_minute_in_the_organisations_zone() {
        let schedule = Schedule::parse("30 6 * * mon-fri").unwrap();

        // Friday 2026-11-20 07:00 UTC is 08:00 in Amsterdam: the next tick is Monday 06:30
        // Amsterdam time, 05:30 UTC.
        let next = schedule.next_after(utc(2026, 11, 20, 7, 0, 0), chrono_tz::Europe::Amsterdam);

        assert_eq!(next, Some(utc(2026, 11, 23, 5, 30, 0)));
    }

    #[test]
    fn six_field_schedule_has_seconds_first() {
        let schedule = Schedule::parse("*/15 * * * * *").unwrap();

        let next = schedule.next_after(utc(2026, 11, 24, 10, 0, 7), chrono_tz::UTC);

        assert_eq!(next, Some(utc(2026, 11, 24, 10, 0, 15)));
    }

    #[test]
    fn the_next_tick_is_strictly_after_the_moment_given() {
        let schedule = Schedule::parse("0 * * * *").unwrap();

        let next = schedule.next_after(utc(2026, 11, 24, 10, 0, 0), chrono_tz::UTC);

        assert_eq!(next, Some(utc(2026, 11, 24, 11, 0, 0)));
    }

    #[test]
    fn schedules_across_a_daylight_saving_change_keep_local_time() {
        let schedule = Schedule::parse("0 6 * * *").unwrap();

        // The clocks in Amsterdam go back on 2026-10-25: 06:00 is 05:00 UTC before and after
        // that day at 04:00 and 05:00 UTC respectively.
        let before = schedule.next_after(utc(2026, 10, 24, 0, 0, 0), chrono_tz::Europe::Amsterdam);
        let after = schedule.next_after(utc(2026, 10, 25, 0, 0, 0), chrono_tz::Europe::Amsterdam);

        assert_eq!(before, Some(utc(2026, 10, 24, 4, 0, 0)));
        assert_eq!(after, Some(utc(2026, 10, 25, 5, 0, 0)));
    }

    #[test]
    fn malformed_schedules_are_refused_with_the_reason() {
        for bad in ["* * * *", "61 * * * *", "* * * * * * * *", "every day"] {
            assert!(Schedule::parse(bad).is_err(), "{bad}");
        }
        let error = Schedule::parse("* * * *").unwrap_err();
        assert!(error.contains("4 fields"), "{error}");
    }
}
