//! The reply deadline: receipt + 7 days. Calendar days by default; working days as an
//! option (Monday to Friday, except Polish public holidays, the movable ones included).

use chrono::{DateTime, Datelike, Days, NaiveDate, Utc, Weekday};

/// How the days of the deadline are counted (`[provisioning] deadline_days`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DayCount {
    Calendar,
    Working,
}

/// The moment the reply is due for a request received at `received`.
pub fn deadline(received: DateTime<Utc>, days: u32, count: DayCount) -> DateTime<Utc> {
    match count {
        DayCount::Calendar => received + Days::new(u64::from(days)),
        DayCount::Working => {
            let mut date = received.date_naive();
            let mut left = days;
            while left > 0 {
                date = date + Days::new(1);
                if is_working_day(date) {
                    left -= 1;
                }
            }
            date.and_time(received.time()).and_utc()
        }
    }
}

pub fn is_working_day(date: NaiveDate) -> bool {
    !matches!(date.weekday(), Weekday::Sat | Weekday::Sun) && !is_public_holiday(date)
}

/// Polish public holidays (ustawa o dniach wolnych od pracy), with Christmas Eve from 2025.
pub fn is_public_holiday(date: NaiveDate) -> bool {
    let (month, day) = (date.month(), date.day());
    let fixed = matches!(
        (month, day),
        (1, 1) | (1, 6) | (5, 1) | (5, 3) | (8, 15) | (11, 1) | (11, 11) | (12, 25) | (12, 26)
    ) || (month == 12 && day == 24 && date.year() >= 2025);
    if fixed {
        return true;
    }
    let easter = easter_sunday(date.year());
    // Easter Sunday, Easter Monday, Pentecost Sunday (+49), Corpus Christi (+60).
    [0, 1, 49, 60]
        .iter()
        .any(|offset| easter + Days::new(*offset) == date)
}

/// Easter Sunday in the Gregorian calendar (the anonymous algorithm, Meeus/Jones/Butcher).
pub fn easter_sunday(year: i32) -> NaiveDate {
    let a = year % 19;
    let b = year / 100;
    let c = year % 100;
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    NaiveDate::from_ymd_opt(year, month as u32, day as u32).expect("a valid Easter date")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn easter_dates() {
        assert_eq!(easter_sunday(2024), date(2024, 3, 31));
        assert_eq!(easter_sunday(2025), date(2025, 4, 20));
        assert_eq!(easter_sunday(2026), date(2026, 4, 5));
        assert_eq!(easter_sunday(2027), date(2027, 3, 28));
    }

    #[test]
    fn movable_and_fixed_holidays() {
        assert!(is_public_holiday(date(2026, 4, 6))); // Easter Monday
        assert!(is_public_holiday(date(2026, 6, 4))); // Corpus Christi
        assert!(is_public_holiday(date(2026, 5, 24))); // Pentecost
        assert!(is_public_holiday(date(2026, 12, 24))); // Christmas Eve, from 2025
        assert!(!is_public_holiday(date(2024, 12, 24)));
        assert!(!is_public_holiday(date(2026, 6, 5)));
    }

    #[test]
    fn calendar_and_working_day_deadlines() {
        let received = Utc.with_ymd_and_hms(2026, 11, 20, 9, 30, 0).unwrap(); // a Friday
        assert_eq!(
            deadline(received, 7, DayCount::Calendar),
            Utc.with_ymd_and_hms(2026, 11, 27, 9, 30, 0).unwrap()
        );
        // 23–27 Nov, 30 Nov, 1 Dec: seven working days.
        assert_eq!(
            deadline(received, 7, DayCount::Working),
            Utc.with_ymd_and_hms(2026, 12, 1, 9, 30, 0).unwrap()
        );
        // Over Easter 2026: Fri 3 Apr → Mon 6 Apr is a holiday.
        let received = Utc.with_ymd_and_hms(2026, 4, 3, 12, 0, 0).unwrap();
        assert_eq!(
            deadline(received, 7, DayCount::Working).date_naive(),
            date(2026, 4, 15)
        );
        // Over Christmas 2026 (24, 25, 26 Dec) and New Year (1 Jan): 23, 28–31 Dec, 4, 5 Jan.
        let received = Utc.with_ymd_and_hms(2026, 12, 22, 12, 0, 0).unwrap();
        assert_eq!(
            deadline(received, 7, DayCount::Working).date_naive(),
            date(2027, 1, 5)
        );
    }
}
