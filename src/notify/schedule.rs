//! Wall-clock schedules (the officials' daily digest) in the office's time zone, with
//! croner, which fires a 02:30 job at 03:00 on the spring change and once on the autumn
//! one (the `cron` crate 0.17 skips it in spring and runs it twice in autumn).
//!
//! A schedule fires once per occurrence: the caller records each occurrence under a unique
//! key (its UTC instant) before acting on it, so a restart or a second daemon cannot fire it
//! again, and occurrences missed while the daemon was down are caught up (the latest only).

use std::str::FromStr;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;

#[derive(Debug, Clone)]
pub struct Schedule {
    cron: Cron,
    zone: Tz,
    pattern: String,
}

#[derive(Debug, thiserror::Error)]
#[error("schedule {pattern:?} in {zone}: {message}")]
pub struct ScheduleError {
    pattern: String,
    zone: String,
    message: String,
}

impl Schedule {
    pub fn new(pattern: &str, zone: &str) -> Result<Schedule, ScheduleError> {
        let error = |message: String| ScheduleError {
            pattern: pattern.into(),
            zone: zone.into(),
            message,
        };
        // 5-field crontab syntax, or 6 fields with seconds first.
        let cron = croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Optional)
            .build()
            .parse(pattern)
            .map_err(|e| error(e.to_string()))?;
        let zone = Tz::from_str(zone).map_err(|e| error(e.to_string()))?;
        // A valid pattern can still name a day that never comes (30 February): the job would
        // silently never run.
        let now = Utc::now();
        match cron.find_next_occurrence(&now.with_timezone(&zone), false) {
            Ok(next) if next.with_timezone(&Utc) - now <= chrono::TimeDelta::days(5 * 366) => {}
            _ => {
                return Err(error(
                    "it never fires (no occurrence in the next five years)".into(),
                ));
            }
        }
        Ok(Schedule {
            cron,
            zone,
            pattern: pattern.into(),
        })
    }

    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// The latest occurrence in (`after`, `now`], if any: what is due now.
    pub fn due(&self, after: DateTime<Utc>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut due = None;
        let mut cursor = after.with_timezone(&self.zone);
        while let Ok(next) = self.cron.find_next_occurrence(&cursor, false) {
            let next_utc = next.with_timezone(&Utc);
            if next_utc > now {
                break;
            }
            due = Some(next_utc);
            cursor = next;
        }
        due
    }

    /// The local date of an occurrence, for keys and subjects.
    pub fn local_date(&self, at: DateTime<Utc>) -> chrono::NaiveDate {
        at.with_timezone(&self.zone).date_naive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeDelta, TimeZone};

    /// Steps a clock through `days` from `start` in 5-minute ticks, recording each due
    /// occurrence once (as the daemon records it), and returns them.
    fn run(schedule: &Schedule, start: DateTime<Utc>, days: i64) -> Vec<DateTime<Utc>> {
        let mut fired: Vec<DateTime<Utc>> = Vec::new();
        let mut last = start;
        let mut now = start;
        while now < start + TimeDelta::days(days) {
            now += TimeDelta::minutes(5);
            if let Some(due) = schedule.due(last, now) {
                assert!(!fired.contains(&due), "fired twice: {due}");
                fired.push(due);
                last = due;
            }
        }
        fired
    }

    #[test]
    fn once_per_day_across_both_changes_of_2026() {
        let warsaw: Tz = "Europe/Warsaw".parse().unwrap();
        for pattern in ["30 2 * * *", "0 8 * * *", "30 1 * * *", "59 2 * * *"] {
            let schedule = Schedule::new(pattern, "Europe/Warsaw").unwrap();
            // Spring: 29 March 2026, 02:00 → 03:00. Autumn: 25 October 2026, 03:00 → 02:00.
            for (y, m, d) in [(2026, 3, 27), (2026, 10, 23)] {
                let start = Utc.with_ymd_and_hms(y, m, d, 0, 0, 0).unwrap();
                let fired = run(&schedule, start, 5);
                // One occurrence per local day, no day skipped, the change day included.
                let days: Vec<_> = fired.iter().map(|t| schedule.local_date(*t)).collect();
                assert!(days.len() >= 4, "{pattern} from {start}: {fired:?}");
                for pair in days.windows(2) {
                    assert_eq!(pair[1], pair[0].succ_opt().unwrap(), "{pattern}: {fired:?}");
                }
                let change_day =
                    chrono::NaiveDate::from_ymd_opt(y, m, if m == 3 { 29 } else { 25 });
                assert!(days.contains(&change_day.unwrap()), "{pattern}: {fired:?}");
                // And at the pattern's wall-clock time (or the first valid one after it).
                for t in &fired {
                    let local = t.with_timezone(&warsaw).format("%H:%M").to_string();
                    let wanted = format!(
                        "{:0>2}:{:0>2}",
                        pattern.split(' ').nth(1).unwrap(),
                        pattern.split(' ').next().unwrap()
                    );
                    assert!(
                        local == wanted || local == "03:00",
                        "{pattern}: {t} is {local} local"
                    );
                }
            }
        }
        // The skipped hour: 02:30 on 29 March fires at 03:00 local (01:00 UTC).
        let schedule = Schedule::new("30 2 * * *", "Europe/Warsaw").unwrap();
        let fired = run(
            &schedule,
            Utc.with_ymd_and_hms(2026, 3, 28, 12, 0, 0).unwrap(),
            1,
        );
        assert_eq!(
            fired,
            vec![Utc.with_ymd_and_hms(2026, 3, 29, 1, 0, 0).unwrap()]
        );
        // The repeated hour: 02:30 on 25 October fires once (00:30 UTC, the first 02:30).
        let fired = run(
            &schedule,
            Utc.with_ymd_and_hms(2026, 10, 24, 12, 0, 0).unwrap(),
            1,
        );
        assert_eq!(
            fired,
            vec![Utc.with_ymd_and_hms(2026, 10, 25, 0, 30, 0).unwrap()]
        );
    }

    #[test]
    fn a_missed_run_is_caught_up_once() {
        let schedule = Schedule::new("0 8 * * *", "Europe/Warsaw").unwrap();
        let after = Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 0).unwrap();
        let now = Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap();
        // Down for three days: only the latest digest is due.
        assert_eq!(
            schedule.due(after, now),
            Some(Utc.with_ymd_and_hms(2026, 11, 23, 7, 0, 0).unwrap())
        );
    }

    #[test]
    fn bad_patterns_and_zones_are_named() {
        let err = Schedule::new("0 25 * * *", "Europe/Warsaw")
            .unwrap_err()
            .to_string();
        assert!(err.contains("0 25 * * *"), "{err}");
        let err = Schedule::new("0 8 * * *", "Europe/Warszawa")
            .unwrap_err()
            .to_string();
        assert!(err.contains("Europe/Warszawa"), "{err}");
    }

    #[test]
    fn a_day_that_never_comes_is_refused_and_a_leap_day_is_not() {
        let err = Schedule::new("0 2 30 2 *", "Europe/Warsaw")
            .unwrap_err()
            .to_string();
        assert!(err.contains("never fires"), "{err}");
        assert!(Schedule::new("0 2 29 2 *", "Europe/Warsaw").is_ok());
    }
}
