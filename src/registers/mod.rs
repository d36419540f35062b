//! Registers: back-office exports copied into the portal database. This module is the
//! domain: what each register holds (its columns and their checks), how a CSV export is read
//! (UTF-8 or Windows-1250, `;` or `,`, amounts in grosze or decimal złoty), and the row
//! hashes that let an unchanged row be skipped. Applying a run is `store::registers`;
//! `docs/import-formats.md` is the contract with the back office.

pub mod csv_source;
pub mod interest;
pub mod sample;
pub mod xml_source;

use std::path::Path;

use csv_source::{CsvRows, FileEncoding, Row, RowError};

/// Checked rows of a register file, one at a time.
pub trait RowSource: Send {
    fn next_row(&mut self) -> Option<Result<Row, RowError>>;

    /// The next row into `row`, reusing what it holds (its strings and its vector) where
    /// the source can: a run reads a million rows and frees most of them at once.
    fn next_row_into(&mut self, row: &mut Row) -> Option<Result<(), RowError>> {
        self.next_row().map(|next| next.map(|next| *row = next))
    }
}

impl RowSource for CsvRows {
    fn next_row(&mut self) -> Option<Result<Row, RowError>> {
        CsvRows::next_row(self)
    }

    fn next_row_into(&mut self, row: &mut Row) -> Option<Result<(), RowError>> {
        CsvRows::next_row_into(self, row)
    }
}

impl RowSource for xml_source::XmlRows {
    fn next_row(&mut self) -> Option<Result<Row, RowError>> {
        xml_source::XmlRows::next_row(self)
    }
}

/// Opens a register file: `.xml` as the XML format (schemas/rejestr.xsd), anything else as
/// CSV.
pub fn open_rows(
    path: &Path,
    register: &'static Register,
    encoding: FileEncoding,
) -> Result<Box<dyn RowSource>, RowError> {
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("xml"))
    {
        Ok(Box::new(xml_source::XmlRows::open(path, register)?))
    } else {
        Ok(Box::new(CsvRows::open(path, register, encoding)?))
    }
}

use chrono::NaiveDate;

/// What a column holds, and how a CSV value is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    /// Money: decimal złoty (`1234,56`, `1234.56`) or, when the header ends in `_gr`, grosze.
    Money,
    Int,
    Date,
    /// A decimal with at most 4 places (`1,2345`, `1.5`), stored in ten-thousandths: the
    /// base and the rate of a tax component.
    Decimal4,
    /// An individual bank account number (NRB): 26 digits, mod-97 check. Written in groups
    /// with spaces, or with a `PL` prefix, as statements print it; stored as the 26 digits.
    Nrb,
    Pesel,
    Nip,
    Regon,
    /// One of the listed values.
    OneOf(&'static [&'static str]),
    /// The external id of a row of another register, which must exist.
    Ref(&'static str),
}

#[derive(Debug, Clone, Copy)]
pub struct Column {
    /// The CSV header (and, with `_gr` appended, its grosze form for money).
    pub header: &'static str,
    /// The SQL column.
    pub sql: &'static str,
    pub kind: Kind,
    pub required: bool,
}

const fn col(header: &'static str, sql: &'static str, kind: Kind, required: bool) -> Column {
    Column {
        header,
        sql,
        kind,
        required,
    }
}

/// A check of a whole row, after each of its values passed its column's check: the column
/// to blame and why.
pub type RowCheck = fn(&[Value]) -> Result<(), (&'static str, String)>;

/// A register: its table, its external key (the CSV column `id`), and its columns.
#[derive(Debug)]
pub struct Register {
    pub name: &'static str,
    pub table: &'static str,
    pub columns: &'static [Column],
    /// What a row must satisfy across its columns.
    pub row_check: Option<RowCheck>,
}

pub const ACCOUNT_KINDS: &[&str] = &[
    "property",
    "agricultural",
    "forest",
    "transport",
    "joint",
    "waste_fee",
    "alcohol_fee",
    "lease",
    "perpetual_usufruct",
];
/// The ledger's entry types; docs/import-formats.md, "Ledger entry types", says what each
/// means and `store::registers::balances` is where the figures follow it.
pub const LEDGER_TYPES: &[&str] = &[
    "charge",
    "correction",
    "write_off",
    "payment",
    "interest",
    "reminder_cost",
    "overpayment_credit",
    "overpayment_refund",
];

/// What an assessment is: a decision (art. 21 §1 pkt 2), a payment order (nakaz płatniczy,
/// for the joint agricultural, forest and property tax of natural persons), or a
/// declaration (art. 21 §1 pkt 1: the tax is the one declared).
pub const ASSESSMENT_KINDS: &[&str] = &["decision", "payment_order", "declaration"];

/// What a component of an assessment taxes, and the unit of its base.
pub const COMPONENT_SUBJECTS: &[(&str, &[&str])] = &[
    // property tax (ustawa o podatkach i opłatach lokalnych, art. 5)
    ("land_business", &["m2"]),
    ("land_water", &["ha"]),
    ("land_other", &["m2"]),
    ("building_residential", &["m2"]),
    ("building_business", &["m2"]),
    ("building_grain_trade", &["m2"]),
    ("building_health", &["m2"]),
    ("building_other", &["m2"]),
    ("structure", &["zl"]),
    // agricultural tax: converted hectares, or physical ones for land of under 1 ha
    ("agricultural_land", &["ha_przel", "ha"]),
    // forest tax
    ("forest", &["ha"]),
    // transport tax: one vehicle
    ("vehicle", &["szt"]),
];

const SUBJECT_NAMES: &[&str] = &[
    "land_business",
    "land_water",
    "land_other",
    "building_residential",
    "building_business",
    "building_grain_trade",
    "building_health",
    "building_other",
    "structure",
    "agricultural_land",
    "forest",
    "vehicle",
];

const BASE_UNITS: &[&str] = &["m2", "ha", "ha_przel", "zl", "szt"];

/// A ledger row's amount is positive, its type says which way it goes; only a correction,
/// which may lower a charge as well as raise it, is signed.
fn ledger_row(values: &[Value]) -> Result<(), (&'static str, String)> {
    let (Value::Text(Some(kind)), Value::Int(Some(amount))) = (&values[2], &values[6]) else {
        return Ok(());
    };
    match (kind.as_str(), *amount) {
        ("correction", 0) => Err(("kwota", "a correction of 0 changes nothing".into())),
        ("correction", _) => Ok(()),
        (_, amount) if amount <= 0 => Err((
            "kwota",
            format!("an entry of type {kind} must be positive (only a correction is signed)"),
        )),
        _ => Ok(()),
    }
}

/// The amount of a tax component: base × rate, rounded to whole złoty (art. 63 §1: under
/// 50 grosze down, 50 and more up), in grosze. Base and rate in ten-thousandths.
pub fn component_amount_gr(base_e4: i64, rate_e4: i64) -> Option<i64> {
    // base × rate is in 1e-8 złoty.
    let product = i128::from(base_e4) * i128::from(rate_e4);
    if product < 0 {
        return None;
    }
    let zloty = (product + 50_000_000) / 100_000_000;
    i64::try_from(zloty * 100).ok()
}

/// A component's unit fits its subject, a vehicle names its registration and its weight,
/// and its amount is base × rate as art. 63 rounds it.
fn component_row(values: &[Value]) -> Result<(), (&'static str, String)> {
    let text = |i: usize| match &values[i] {
        Value::Text(Some(s)) => Some(s.as_str()),
        _ => None,
    };
    let int = |i: usize| match &values[i] {
        Value::Int(Some(v)) => Some(*v),
        _ => None,
    };
    let (Some(subject), Some(unit)) = (text(1), text(5)) else {
        return Ok(());
    };
    let units = COMPONENT_SUBJECTS
        .iter()
        .find(|(s, _)| *s == subject)
        .map(|(_, u)| *u)
        .unwrap_or(&[]);
    if !units.contains(&unit) {
        return Err((
            "jednostka",
            format!(
                "{subject} is measured in {}, not {unit}",
                units.join(" or ")
            ),
        ));
    }
    if subject == "vehicle" && (text(3).is_none() || int(4).is_none()) {
        return Err((
            "nr_rejestracyjny",
            "a vehicle needs its registration number and its permissible weight (dmc_kg)".into(),
        ));
    }
    let (Some(base), Some(rate), Some(amount)) = (int(6), int(7), int(8)) else {
        return Ok(());
    };
    if base < 0 || rate < 0 {
        return Err(("podstawa", "the base and the rate are not negative".into()));
    }
    match component_amount_gr(base, rate) {
        Some(expected) if expected == amount => Ok(()),
        Some(expected) => Err((
            "kwota",
            format!(
                "{} is not base × rate ({} × {}) rounded to whole złoty (art. 63): {}",
                zloty(amount),
                decimal4(base),
                decimal4(rate),
                zloty(expected)
            ),
        )),
        None => Err(("kwota", "base × rate is out of range".into())),
    }
}

/// Grosze as złoty for a message: `1234,56 zł`.
pub fn zloty(gr: i64) -> String {
    let sign = if gr < 0 { "-" } else { "" };
    format!("{sign}{},{:02} zł", gr.abs() / 100, gr.abs() % 100)
}

/// Ten-thousandths as a decimal for a message: `1,2345`, `12`.
fn decimal4(v: i64) -> String {
    let text = format!("{},{:04}", v / 10_000, (v % 10_000).abs());
    text.trim_end_matches('0').trim_end_matches(',').to_string()
}

/// Every register, in the order a full sync applies them (references point backwards).
pub const REGISTERS: &[Register] = &[
    Register {
        name: "parties",
        table: "reg_party",
        columns: &[
            col("rodzaj", "kind", Kind::OneOf(&["F", "P"]), true),
            col("nazwa", "name", Kind::Text, true),
            col("pesel", "pesel", Kind::Pesel, false),
            col("nip", "nip", Kind::Nip, false),
            col("regon", "regon", Kind::Regon, false),
            col("adres", "address", Kind::Text, false),
        ],
        row_check: None,
    },
    Register {
        name: "accounts",
        table: "reg_account",
        columns: &[
            col("podmiot", "party_id", Kind::Ref("parties"), true),
            col("rodzaj", "kind", Kind::OneOf(ACCOUNT_KINDS), true),
            col("nrb", "nrb", Kind::Nrb, true),
            col("opis", "description", Kind::Text, false),
        ],
        row_check: None,
    },
    Register {
        name: "obligors",
        table: "reg_obligor",
        columns: &[
            col("konto", "account_id", Kind::Ref("accounts"), true),
            col("podmiot", "party_id", Kind::Ref("parties"), true),
            col("rola", "role", Kind::OneOf(&["main", "co_obligor"]), true),
        ],
        row_check: None,
    },
    Register {
        name: "installments",
        table: "reg_installment",
        columns: &[
            col("konto", "account_id", Kind::Ref("accounts"), true),
            col("rok", "year", Kind::Int, true),
            col("numer", "number", Kind::Int, true),
            col("termin", "due_date", Kind::Date, true),
            col("kwota", "amount_gr", Kind::Money, true),
        ],
        row_check: None,
    },
    Register {
        name: "ledger",
        table: "reg_ledger",
        columns: &[
            col("konto", "account_id", Kind::Ref("accounts"), true),
            col("rok", "year", Kind::Int, true),
            col("typ", "entry_type", Kind::OneOf(LEDGER_TYPES), true),
            col("rata", "installment_id", Kind::Ref("installments"), false),
            col("data_ksiegowania", "booking_date", Kind::Date, true),
            col("data_waluty", "value_date", Kind::Date, false),
            col("kwota", "amount_gr", Kind::Money, true),
        ],
        row_check: Some(ledger_row),
    },
    Register {
        name: "cases",
        table: "reg_case",
        columns: &[
            col("podmiot", "party_id", Kind::Ref("parties"), true),
            col("znak", "reference", Kind::Text, true),
            col("tytul", "title", Kind::Text, true),
            col("status", "status", Kind::OneOf(&["open", "closed"]), true),
            col("wszczeta", "opened_on", Kind::Date, true),
            col("zakonczona", "closed_on", Kind::Date, false),
        ],
        row_check: None,
    },
    Register {
        name: "case_letters",
        table: "reg_case_letter",
        columns: &[
            col("sprawa", "case_id", Kind::Ref("cases"), true),
            col("data", "letter_date", Kind::Date, true),
            col("kierunek", "direction", Kind::OneOf(&["in", "out"]), true),
            col("tytul", "title", Kind::Text, true),
        ],
        row_check: None,
    },
    Register {
        name: "alcohol_permits",
        table: "reg_alcohol_permit",
        columns: &[
            col("podmiot", "party_id", Kind::Ref("parties"), true),
            col("numer", "number", Kind::Text, true),
            col("kategoria", "category", Kind::OneOf(&["A", "B", "C"]), true),
            col("punkt", "premises", Kind::Text, true),
            col("od", "valid_from", Kind::Date, true),
            col("do", "valid_to", Kind::Date, true),
        ],
        row_check: None,
    },
    Register {
        name: "leases",
        table: "reg_lease",
        columns: &[
            col("podmiot", "party_id", Kind::Ref("parties"), true),
            col("dzialka", "parcel", Kind::Text, true),
            col("powierzchnia_m2", "area_m2", Kind::Int, true),
            col("czynsz", "rent_gr", Kind::Money, true),
            col("od", "period_from", Kind::Date, true),
            col("do", "period_to", Kind::Date, false),
        ],
        row_check: None,
    },
    Register {
        name: "budget",
        table: "reg_budget",
        columns: &[
            col("rok", "year", Kind::Int, true),
            col("dzial", "dzial", Kind::Text, true),
            col("rozdzial", "rozdzial", Kind::Text, true),
            col("paragraf", "paragraf", Kind::Text, true),
            col("nazwa", "name", Kind::Text, true),
            col("plan", "plan_gr", Kind::Money, true),
            col("wykonanie", "execution_gr", Kind::Money, true),
        ],
        row_check: None,
    },
    Register {
        name: "property",
        table: "reg_property",
        columns: &[
            col("nazwa", "name", Kind::Text, true),
            col("adres", "address", Kind::Text, false),
            col("dzialka", "parcel", Kind::Text, false),
            col("powierzchnia_m2", "area_m2", Kind::Int, false),
            col("przeznaczenie", "purpose", Kind::Text, false),
        ],
        row_check: None,
    },
    Register {
        name: "assessments",
        table: "reg_assessment",
        columns: &[
            col("konto", "account_id", Kind::Ref("accounts"), true),
            col("rodzaj", "kind", Kind::OneOf(ASSESSMENT_KINDS), true),
            col("numer", "number", Kind::Text, true),
            col("data", "issued_on", Kind::Date, true),
            col("rok", "year", Kind::Int, true),
            col("kwota", "total_gr", Kind::Money, true),
            col("doreczona", "delivered_on", Kind::Date, false),
        ],
        row_check: None,
    },
    Register {
        name: "assessment_components",
        table: "reg_assessment_component",
        columns: &[
            col("wymiar", "assessment_id", Kind::Ref("assessments"), true),
            col("przedmiot", "subject", Kind::OneOf(SUBJECT_NAMES), true),
            col("opis", "description", Kind::Text, false),
            col("nr_rejestracyjny", "registration", Kind::Text, false),
            col("dmc_kg", "permissible_weight_kg", Kind::Int, false),
            col("jednostka", "base_unit", Kind::OneOf(BASE_UNITS), true),
            col("podstawa", "base_e4", Kind::Decimal4, true),
            col("stawka", "rate_e4", Kind::Decimal4, true),
            col("kwota", "amount_gr", Kind::Money, true),
        ],
        row_check: Some(component_row),
    },
];

pub fn register(name: &str) -> Option<&'static Register> {
    REGISTERS.iter().find(|r| r.name == name)
}

/// A checked value, typed for binding (NULLs keep their type: PostgreSQL needs it).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Value {
    Text(Option<String>),
    Int(Option<i64>),
    Date(Option<NaiveDate>),
}

/// Checks one CSV value of `column`; `grosze` when the header was `<name>_gr`.
pub fn check(column: &Column, raw: &str, grosze: bool) -> Result<Value, String> {
    let mut value = Value::Int(None);
    check_into(column, raw, grosze, &mut value)?;
    Ok(value)
}

/// `check`, into `slot`: a text value reuses the string `slot` holds.
pub fn check_into(
    column: &Column,
    raw: &str,
    grosze: bool,
    slot: &mut Value,
) -> Result<(), String> {
    let raw = raw.trim();
    if raw.is_empty() {
        if column.required {
            return Err("required, but empty".into());
        }
        *slot = match column.kind {
            Kind::Int | Kind::Money | Kind::Decimal4 => Value::Int(None),
            Kind::Date => Value::Date(None),
            _ => Value::Text(None),
        };
        return Ok(());
    }
    let text = |slot: &mut Value, text: &str| {
        match slot {
            Value::Text(Some(s)) => {
                s.clear();
                s.push_str(text);
            }
            other => *other = Value::Text(Some(text.to_string())),
        }
        Ok(())
    };
    match column.kind {
        Kind::Text | Kind::Ref(_) => text(slot, raw),
        Kind::Int => {
            *slot = Value::Int(Some(
                raw.parse()
                    .map_err(|_| format!("{raw:?} is not a whole number"))?,
            ));
            Ok(())
        }
        Kind::Money => {
            *slot = Value::Int(Some(money(raw, grosze)?));
            Ok(())
        }
        Kind::Date => {
            *slot = Value::Date(Some(
                iso_date(raw).ok_or_else(|| format!("{raw:?} is not a date (YYYY-MM-DD)"))?,
            ));
            Ok(())
        }
        Kind::Nrb => match crate::identifiers::nrb_digits(raw) {
            Some(digits) => text(slot, &digits),
            None => Err(format!(
                "{raw:?} is not a valid NRB (26 digits, mod-97 check; spaces and a PL prefix allowed)"
            )),
        },
        Kind::Decimal4 => {
            *slot = Value::Int(Some(decimal(raw, 4)?));
            Ok(())
        }
        Kind::Pesel if crate::identifiers::pesel_is_valid(raw) => text(slot, raw),
        Kind::Pesel => Err(format!("PESEL {raw} has a wrong check digit")),
        Kind::Nip if crate::identifiers::nip_is_valid(raw) => text(slot, raw),
        Kind::Nip => Err(format!("NIP {raw} has a wrong check digit")),
        Kind::Regon if crate::identifiers::regon_is_valid(raw) => text(slot, raw),
        Kind::Regon => Err(format!("REGON {raw} has a wrong check digit")),
        Kind::OneOf(allowed) if allowed.contains(&raw) => text(slot, raw),
        Kind::OneOf(allowed) => Err(format!("{raw:?} is not one of {}", allowed.join(", "))),
    }
}

/// A calendar date written `YYYY-MM-DD`, exactly (the hot path of every import: no
/// format-string parser).
pub fn iso_date(raw: &str) -> Option<NaiveDate> {
    let b = raw.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let number = |digits: &[u8]| {
        digits.iter().try_fold(0u32, |acc, d| {
            d.is_ascii_digit().then(|| acc * 10 + u32::from(d - b'0'))
        })
    };
    NaiveDate::from_ymd_opt(
        i32::try_from(number(&b[..4])?).ok()?,
        number(&b[5..7])?,
        number(&b[8..])?,
    )
}

/// Writes `date` as `YYYY-MM-DD` into `out` (years 0–9999), without allocating.
pub fn write_iso_date(date: NaiveDate, out: &mut [u8; 10]) {
    use chrono::Datelike;
    let (y, m, d) = (date.year().clamp(0, 9999) as u32, date.month(), date.day());
    *out = [
        b'0' + (y / 1000) as u8,
        b'0' + (y / 100 % 10) as u8,
        b'0' + (y / 10 % 10) as u8,
        b'0' + (y % 10) as u8,
        b'-',
        b'0' + (m / 10) as u8,
        b'0' + (m % 10) as u8,
        b'-',
        b'0' + (d / 10) as u8,
        b'0' + (d % 10) as u8,
    ];
}

/// Złoty as a decimal with a comma or a dot and at most 2 decimals, or whole grosze.
/// Spaces (also non-breaking ones) between digit groups are allowed.
pub fn money(raw: &str, grosze: bool) -> Result<i64, String> {
    if grosze {
        scaled(raw, 0).map_err(|()| format!("{raw:?} is not an amount (whole grosze)"))
    } else {
        scaled(raw, 2).map_err(|()| format!("{raw:?} is not an amount (złoty, e.g. 1234,56)"))
    }
}

/// A decimal with at most `places` places, scaled by 10^places.
pub fn decimal(raw: &str, places: u32) -> Result<i64, String> {
    scaled(raw, places).map_err(|()| {
        format!("{raw:?} is not a number with at most {places} decimals (e.g. 1,2345)")
    })
}

/// A decimal written with a comma or a dot and at most `places` places, with spaces (also
/// non-breaking ones) allowed between digit groups, scaled by 10^places.
fn scaled(raw: &str, places: u32) -> Result<i64, ()> {
    let mut chars = raw
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '\u{a0}')
        .peekable();
    let negative = chars.next_if_eq(&'-').is_some();
    let mut value: i64 = 0;
    let mut digits = 0;
    let mut fraction: Option<u32> = None;
    for c in chars {
        match c {
            '0'..='9' => {
                if let Some(f) = fraction.as_mut() {
                    *f += 1;
                    if *f > places {
                        return Err(());
                    }
                }
                value = value
                    .checked_mul(10)
                    .and_then(|v| v.checked_add(i64::from(c as u8 - b'0')))
                    .ok_or(())?;
                digits += 1;
            }
            ',' | '.' if places > 0 && fraction.is_none() && digits > 0 => fraction = Some(0),
            _ => return Err(()),
        }
    }
    if digits == 0 {
        return Err(());
    }
    // Scale: with 2 places "12" is 1200, "12,5" is 1250.
    for _ in fraction.unwrap_or(0)..places {
        value = value.checked_mul(10).ok_or(())?;
    }
    Ok(if negative { -value } else { value })
}

pub use crate::identifiers::nrb_is_valid;

/// A stable 64-bit hash (XXH3) of a row: its id and its values. An unchanged row is
/// recognised by it; since it covers the id, a row whose hash is the next stored hash is
/// that very row. Each value is written with its kind and, for text, its length, so that no
/// two rows share an encoding. Stored in every register table (`row_hash`): changing the
/// encoding makes the next sync rewrite every row once.
pub fn row_hash(id: &str, values: &[Value]) -> i64 {
    row_hash_with(&mut Vec::new(), id, values)
}

/// `row_hash`, encoding into `scratch` (a reader keeps one for all its rows).
pub fn row_hash_with(scratch: &mut Vec<u8>, id: &str, values: &[Value]) -> i64 {
    let out = scratch;
    out.clear();
    out.extend_from_slice(&(id.len() as u32).to_le_bytes());
    out.extend_from_slice(id.as_bytes());
    for value in values {
        match value {
            Value::Text(Some(s)) => {
                out.push(b'T');
                out.extend_from_slice(&(s.len() as u32).to_le_bytes());
                out.extend_from_slice(s.as_bytes());
            }
            Value::Int(Some(i)) => {
                out.push(b'I');
                out.extend_from_slice(&i.to_le_bytes());
            }
            Value::Date(Some(d)) => {
                let mut text = [0u8; 10];
                write_iso_date(*d, &mut text);
                out.push(b'D');
                out.extend_from_slice(&text);
            }
            Value::Text(None) | Value::Int(None) | Value::Date(None) => out.push(b'N'),
        }
    }
    xxhash_rust::xxh3::xxh3_64(out) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_in_zloty_and_grosze() {
        assert_eq!(money("1234,56", false), Ok(123_456));
        assert_eq!(money("1 234.5", false), Ok(123_450));
        assert_eq!(money("-12", false), Ok(-1200));
        assert_eq!(money("123456", true), Ok(123_456));
        assert!(money("12,345", false).is_err());
        assert!(money("12,3a", false).is_err());
        assert!(money("1,5", true).is_err());
        assert_eq!(money("12,", false), Ok(1200));
        assert_eq!(money("-0,05", false), Ok(-5));
        assert_eq!(money("1\u{a0}000,00", false), Ok(100_000));
        assert!(money(",5", false).is_err());
        assert!(money("-", false).is_err());
        assert!(money("1,2,3", false).is_err());
        assert!(money("99999999999999999999", true).is_err());
    }

    #[test]
    fn iso_dates_both_ways() {
        let day = NaiveDate::from_ymd_opt(2026, 2, 28).unwrap();
        assert_eq!(iso_date("2026-02-28"), Some(day));
        assert_eq!(iso_date("2026-02-29"), None);
        assert_eq!(iso_date("2026-2-28"), None);
        assert_eq!(iso_date("2026-02-28 "), None);
        assert_eq!(iso_date("2026/02/28"), None);
        assert_eq!(iso_date("+026-02-28"), None);
        let mut text = [0u8; 10];
        write_iso_date(day, &mut text);
        assert_eq!(&text, b"2026-02-28");
        write_iso_date(NaiveDate::from_ymd_opt(987, 1, 5).unwrap(), &mut text);
        assert_eq!(&text, b"0987-01-05");
    }

    #[test]
    fn row_hashes_see_every_value() {
        let a = [Value::Text(Some("a".into())), Value::Int(Some(1))];
        let b = [Value::Text(Some("a".into())), Value::Int(Some(2))];
        let c = [Value::Text(Some("a".into())), Value::Int(None)];
        assert_ne!(row_hash("x", &a), row_hash("x", &b));
        assert_ne!(row_hash("x", &a), row_hash("x", &c));
        assert_eq!(row_hash("x", &a), row_hash("x", &a.clone()));
        // Where one value ends and the next begins is part of the hash.
        let d = [
            Value::Text(Some("ab".into())),
            Value::Text(Some("c".into())),
        ];
        let e = [
            Value::Text(Some("a".into())),
            Value::Text(Some("bc".into())),
        ];
        assert_ne!(row_hash("x", &d), row_hash("x", &e));
        let f = [Value::Text(None), Value::Int(None)];
        let g = [Value::Int(None), Value::Text(None)];
        assert_eq!(
            row_hash("x", &f),
            row_hash("x", &g),
            "a NULL is a NULL whatever its column"
        );
        // Stable across versions: stored in every register table.
        assert_ne!(
            row_hash("x", &a),
            row_hash("y", &a),
            "the id is part of the hash"
        );
        assert_eq!(row_hash("x", &a), -718_700_136_325_501_739);
    }
}
