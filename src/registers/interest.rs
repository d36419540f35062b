//! Late-payment interest on tax arrears (Ordynacja podatkowa):
//! - art. 56: interest for each day of delay, from the day after the due date to the day of
//!   payment, at the rate in force on that day (200% of the NBP lombard rate + 2%, at least
//!   8%: the office configures the table), per year of 365 days;
//! - art. 55 §2: a payment is split between the arrears and the interest accrued by its day,
//!   in proportion to them;
//! - art. 54 §1 pkt 5: no interest when it does not exceed three times the registered-letter
//!   fee;
//! - art. 63 §1: interest is rounded to whole złoty (under 50 gr down, from 50 gr up).
//!
//! Amounts are grosze; the accrual is exact (integers), rounded once per payment and at the
//! end.

use chrono::NaiveDate;

/// From `from` on, the annual rate in basis points (14.50% = 1450).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
pub struct RatePeriod {
    pub from: NaiveDate,
    pub basis_points: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterestRules {
    /// Sorted by `from`.
    pub rates: Vec<RatePeriod>,
    /// Interest up to this amount is not charged (3 × the registered-letter fee).
    pub threshold_gr: i64,
}

/// Where an installment stands on a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Standing {
    /// What is left of the installment itself.
    pub arrears_gr: i64,
    /// Interest due by the day, rounded to whole złoty (0 below the threshold).
    pub interest_gr: i64,
    /// Of the payments: what went to the installment and what to interest.
    pub paid_principal_gr: i64,
    pub paid_interest_gr: i64,
}

const SCALE: i128 = 365 * 10_000;

fn rate_on(rules: &InterestRules, day: NaiveDate) -> i128 {
    rules
        .rates
        .iter()
        .rev()
        .find(|r| r.from <= day)
        .map(|r| i128::from(r.basis_points))
        .unwrap_or(0)
}

/// Interest (exact, in grosze × SCALE) on `arrears` for the days after `from` up to and
/// including `to`.
fn accrue(arrears: i64, from: NaiveDate, to: NaiveDate, rules: &InterestRules) -> i128 {
    let mut total = 0i128;
    let mut day = from;
    while day < to {
        day = day.succ_opt().expect("a date after");
        total += i128::from(arrears) * rate_on(rules, day);
    }
    total
}

fn whole_zloty(grosze: i128) -> i64 {
    (((grosze + 50).div_euclid(100)) * 100) as i64
}

/// The standing of an installment of `amount_gr` due on `due`, after `payments` (day,
/// grosze; in date order), on day `at`.
pub fn standing(
    amount_gr: i64,
    due: NaiveDate,
    payments: &[(NaiveDate, i64)],
    at: NaiveDate,
    rules: &InterestRules,
) -> Standing {
    let mut arrears = amount_gr;
    let mut accrued: i128 = 0; // grosze × SCALE
    let mut last = due;
    let mut out = Standing::default();
    for &(day, paid) in payments.iter().filter(|(d, _)| *d <= at) {
        if arrears <= 0 {
            break;
        }
        if day > last {
            accrued += accrue(arrears, last, day, rules);
            last = day;
        }
        // Interest due on the day of payment, rounded; nothing under the threshold.
        let interest = whole_zloty(accrued / SCALE);
        let interest = if interest <= rules.threshold_gr {
            0
        } else {
            interest
        };
        let (to_interest, to_arrears) = if interest == 0 {
            (0, paid.min(arrears))
        } else {
            let total = i128::from(arrears) + i128::from(interest);
            let to_interest = (i128::from(paid) * i128::from(interest) / total) as i64;
            (to_interest.min(interest), (paid - to_interest).min(arrears))
        };
        arrears -= to_arrears;
        out.paid_principal_gr += to_arrears;
        out.paid_interest_gr += to_interest;
        // What was paid on interest leaves the accrual; an amount under the threshold is
        // forgiven with the payment that settles the arrears.
        accrued = if interest == 0 {
            if arrears == 0 { 0 } else { accrued }
        } else {
            (i128::from(interest - to_interest)) * SCALE
        };
    }
    if arrears > 0 && at > last {
        accrued += accrue(arrears, last, at, rules);
    }
    let interest = whole_zloty(accrued / SCALE);
    out.arrears_gr = arrears;
    out.interest_gr = if interest <= rules.threshold_gr {
        0
    } else {
        interest
    };
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn rules() -> InterestRules {
        InterestRules {
            rates: vec![
                RatePeriod {
                    from: date(2023, 10, 5),
                    basis_points: 1450,
                },
                RatePeriod {
                    from: date(2026, 6, 1),
                    basis_points: 1200,
                },
            ],
            // Three registered letters at 8,70 zł.
            threshold_gr: 3 * 870,
        }
    }

    #[test]
    fn interest_accrues_per_day_at_the_rate_of_the_day() {
        // 10,000 zł due 15 March 2026, unpaid on 15 May: 61 days at 14.5%:
        // 1,000,000 gr × 61 × 0.145 / 365 = 24,232.88 gr → 242 zł.
        let s = standing(
            1_000_000,
            date(2026, 3, 15),
            &[],
            date(2026, 5, 15),
            &rules(),
        );
        assert_eq!(s.interest_gr, 24_200);
        assert_eq!(s.arrears_gr, 1_000_000);
        // Across the change of rate on 1 June: 77 days at 14.5% (16 Mar–31 May) and 14 at
        // 12% (1–14 Jun): 30,589.04 + 4,602.74 = 35,191.78 gr → 352 zł.
        let s = standing(
            1_000_000,
            date(2026, 3, 15),
            &[],
            date(2026, 6, 14),
            &rules(),
        );
        assert_eq!(s.interest_gr, 35_200);
    }

    #[test]
    fn small_interest_is_not_charged_and_rounding_is_to_whole_zloty() {
        // 500 zł, 30 days late at 14.5%: 5.96 zł, under 3 × 8.70 zł.
        let s = standing(50_000, date(2026, 3, 15), &[], date(2026, 4, 14), &rules());
        assert_eq!(s.interest_gr, 0);
        assert_eq!(whole_zloty(4_949), 4_900);
        assert_eq!(whole_zloty(4_950), 5_000);
    }

    #[test]
    fn a_late_payment_is_split_between_arrears_and_interest() {
        // 10,000 zł due 15 March, 10,000 zł paid 15 May: 242 zł of interest had accrued, so
        // the payment goes 10000/10242 to the arrears and 242/10242 to interest.
        let s = standing(
            1_000_000,
            date(2026, 3, 15),
            &[(date(2026, 5, 15), 1_000_000)],
            date(2026, 5, 15),
            &rules(),
        );
        assert_eq!(s.paid_interest_gr, 1_000_000 * 24_200 / 1_024_200);
        assert_eq!(s.paid_principal_gr, 1_000_000 - s.paid_interest_gr);
        assert_eq!(s.arrears_gr, s.paid_interest_gr);
        // Paid on time: no interest at all.
        let s = standing(
            1_000_000,
            date(2026, 3, 15),
            &[(date(2026, 3, 15), 1_000_000)],
            date(2026, 11, 1),
            &rules(),
        );
        assert_eq!(
            s,
            Standing {
                arrears_gr: 0,
                interest_gr: 0,
                paid_principal_gr: 1_000_000,
                paid_interest_gr: 0
            }
        );
    }
}
