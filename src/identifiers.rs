//! Polish identifiers and their check digits: PESEL (persons), NIP (taxpayers), REGON
//! (entities) and NRB (bank accounts). Forms, signatures and registers all check them
//! here; the sample generator makes them here.

/// The PESEL check digit of the first ten digits (weights 1 3 7 9 1 3 7 9 1 3).
pub fn pesel_check_digit(first_ten: &str) -> Option<u32> {
    let digits = digits(first_ten, 10)?;
    let sum: u32 = [1, 3, 7, 9, 1, 3, 7, 9, 1, 3]
        .iter()
        .zip(&digits)
        .map(|(w, d)| w * d)
        .sum();
    Some((10 - sum % 10) % 10)
}

/// A PESEL whose check digit is right.
pub fn pesel_is_valid(pesel: &str) -> bool {
    pesel.len() == 11
        && pesel.is_char_boundary(10)
        && pesel_check_digit(&pesel[..10]).is_some_and(|d| pesel[10..].parse() == Ok(d))
}

const NIP_WEIGHTS: [u32; 9] = [6, 5, 7, 2, 3, 4, 5, 6, 7];

/// The NIP check digit of the first nine digits: weights 6 5 7 2 3 4 5 6 7, modulo 11.
/// `None` when the remainder is 10: no NIP starts with those nine digits.
pub fn nip_check_digit(first_nine: &str) -> Option<u32> {
    match mod11(&digits(first_nine, 9)?, &NIP_WEIGHTS) {
        10 => None,
        check => Some(check),
    }
}

/// A NIP whose check digit is right.
pub fn nip_is_valid(nip: &str) -> bool {
    nip.len() == 10
        && nip.is_char_boundary(9)
        && nip_check_digit(&nip[..9]).is_some_and(|d| nip[9..].parse() == Ok(d))
}

/// A REGON (9 or 14 digits) whose check digit is right: modulo 11, 10 read as 0.
pub fn regon_is_valid(regon: &str) -> bool {
    let weights: &[u32] = match regon.len() {
        9 => &[8, 9, 2, 3, 4, 5, 6, 7],
        14 => &[2, 4, 8, 5, 0, 9, 7, 3, 6, 1, 2, 4, 8],
        _ => return false,
    };
    let Some(digits) = digits(regon, regon.len()) else {
        return false;
    };
    mod11(&digits, weights) % 10 == digits[weights.len()]
}

/// The two check digits of an NRB for its 24-digit BBAN (ISO 13616, country PL).
pub fn nrb_check_digits(bban: &str) -> Option<u32> {
    digits(bban, 24)?;
    Some(98 - mod97(&format!("{bban}252100")))
}

/// An NRB: 26 digits (spaces allowed between groups) whose check digits are right.
pub fn nrb_is_valid(raw: &str) -> bool {
    nrb_digits(raw).is_some()
}

/// The 26 digits of a valid NRB written as exports and statements print it: in groups with
/// spaces (also non-breaking ones), with or without the IBAN country prefix `PL`.
pub fn nrb_digits(raw: &str) -> Option<String> {
    let raw = raw.trim();
    let raw = raw
        .strip_prefix("PL")
        .or_else(|| raw.strip_prefix("pl"))
        .unwrap_or(raw);
    let digits: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
    (digits.len() == 26
        && digits.bytes().all(|b| b.is_ascii_digit())
        // Moving "PL" (25 21) and the check digits to the end, the number mod 97 is 1.
        && mod97(&format!("{}2521{}", &digits[2..], &digits[..2])) == 1)
        .then_some(digits)
}

/// The decimal digits of `value` when it is exactly `len` ASCII digits.
fn digits(value: &str, len: usize) -> Option<Vec<u32>> {
    let digits: Vec<u32> = value
        .bytes()
        .map(|b| (b as char).to_digit(10))
        .collect::<Option<_>>()?;
    (digits.len() == len).then_some(digits)
}

fn mod11(digits: &[u32], weights: &[u32]) -> u32 {
    weights.iter().zip(digits).map(|(w, d)| w * d).sum::<u32>() % 11
}

fn mod97(decimal: &str) -> u32 {
    decimal
        .bytes()
        .fold(0u32, |acc, b| (acc * 10 + u32::from(b - b'0')) % 97)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pesel() {
        assert!(pesel_is_valid("44051401359"));
        assert!(pesel_is_valid("02070803628"));
        assert!(!pesel_is_valid("44051401358"));
        assert!(!pesel_is_valid("123451234512"));
        assert!(!pesel_is_valid("4405140135X"));
        assert_eq!(pesel_check_digit("4405140135"), Some(9));
    }

    #[test]
    fn nip_and_regon() {
        assert!(nip_is_valid("5252955037"));
        assert!(!nip_is_valid("5252955038"));
        assert!(!nip_is_valid("525295503"));
        assert!(!nip_is_valid("52529550ą"));
        assert_eq!(nip_check_digit("525295503"), Some(7));
        assert!(regon_is_valid("123456785"));
        assert!(!regon_is_valid("123456786"));
        assert!(regon_is_valid("12345678512347"));
        assert!(!regon_is_valid("1234"));
    }

    #[test]
    fn nrb_mod_97() {
        assert!(nrb_is_valid("61109010140000071219812874"));
        assert!(nrb_is_valid("61 1090 1014 0000 0712 1981 2874"));
        assert!(!nrb_is_valid("61109010140000071219812875"));
        // As statements print it: groups, a PL prefix, non-breaking spaces; stored as digits.
        for printed in [
            "PL61109010140000071219812874",
            "PL 61 1090 1014 0000 0712 1981 2874",
            "61\u{a0}1090\u{a0}1014\u{a0}0000\u{a0}0712\u{a0}1981\u{a0}2874",
            " 61 1090 1014 0000 0712 1981 2874 ",
        ] {
            assert_eq!(
                nrb_digits(printed).as_deref(),
                Some("61109010140000071219812874"),
                "{printed:?}"
            );
        }
        assert_eq!(nrb_digits("DE61109010140000071219812874"), None);
        assert_eq!(nrb_digits("PL 61 1090 1014 0000 0712 1981 287"), None);
        assert!(!nrb_is_valid("6110901014"));
        assert_eq!(nrb_check_digits("109010140000071219812874"), Some(61));
        assert_eq!(nrb_check_digits("10901014"), None);
    }
}
