//! A generated, realistic sample set of register exports for a town (`eurzad
//! sample-registers`): parties with valid PESEL/NIP and Polish names, tax and fee accounts
//! with valid NRBs, installments on the statutory dates (natural persons: 15 March, 15 May,
//! 15 September, 15 November, one sum by 15 March up to 100 zł; legal persons monthly;
//! transport tax 15 February and 15 September), charges and payments (most paid, some late,
//! some partly), cases with JRWA references, alcohol permits, leases, the budget and
//! municipal property. Deterministic: the same arguments give the same files.

// Amounts are written złoty_grosze (`40_00` is 40.00 zł), which clippy calls inconsistent.
#![allow(clippy::inconsistent_digit_grouping)]

use std::io::Write;
use std::path::{Path, PathBuf};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const GIVEN: &[&str] = &[
    "Anna",
    "Maria",
    "Katarzyna",
    "Małgorzata",
    "Agnieszka",
    "Barbara",
    "Ewa",
    "Krystyna",
    "Elżbieta",
    "Zofia",
    "Jan",
    "Andrzej",
    "Piotr",
    "Krzysztof",
    "Stanisław",
    "Tomasz",
    "Paweł",
    "Józef",
    "Marcin",
    "Łukasz",
    "Michał",
    "Grzegorz",
    "Jerzy",
    "Tadeusz",
    "Wojciech",
    "Zbigniew",
    "Jolanta",
    "Dorota",
];
const SURNAMES: &[&str] = &[
    "Nowak",
    "Kowalski",
    "Wiśniewski",
    "Wójcik",
    "Kowalczyk",
    "Kamiński",
    "Lewandowski",
    "Zieliński",
    "Szymański",
    "Woźniak",
    "Dąbrowski",
    "Kozłowski",
    "Jankowski",
    "Mazur",
    "Kwiatkowski",
    "Krawczyk",
    "Piotrowski",
    "Grabowski",
    "Nowakowski",
    "Pawłowski",
    "Michalski",
    "Król",
    "Wieczorek",
    "Jabłoński",
];
const STREETS: &[&str] = &[
    "Ratuszowa",
    "Lipowa",
    "Słoneczna",
    "Kościuszki",
    "Mickiewicza",
    "Żeromskiego",
    "Polna",
    "Leśna",
    "Ogrodowa",
    "Kwiatowa",
    "Szkolna",
    "Piłsudskiego",
    "Wrocławska",
    "Łąkowa",
    "Źródlana",
];
const COMPANY: &[&str] = &[
    "Usługi",
    "Handel",
    "Transport",
    "Budownictwo",
    "Piekarnia",
    "Apteka",
    "Warsztat",
];

fn pesel(rng: &mut StdRng) -> String {
    let year = rng.random_range(1940..2006);
    let month = rng.random_range(1..=12) + if year >= 2000 { 20 } else { 0 };
    let base = format!(
        "{:02}{:02}{:02}{:04}",
        year % 100,
        month,
        rng.random_range(1..=28),
        rng.random_range(0..10_000)
    );
    let check = crate::identifiers::pesel_check_digit(&base).expect("ten digits");
    format!("{base}{check}")
}

fn nip(rng: &mut StdRng) -> String {
    loop {
        let base: String = (0..9)
            .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
            .collect();
        if let Some(check) = crate::identifiers::nip_check_digit(&base)
            && !base.starts_with('0')
        {
            return format!("{base}{check}");
        }
    }
}

/// An individual account number in the office's bank (sort code 10901014).
fn nrb(account: u64) -> String {
    let bban = format!("10901014{account:016}");
    let check = crate::identifiers::nrb_check_digits(&bban).expect("24 digits");
    format!("{check:02}{bban}")
}

fn zloty(grosze: i64) -> String {
    let sign = if grosze < 0 { "-" } else { "" };
    format!("{sign}{},{:02}", grosze.abs() / 100, grosze.abs() % 100)
}

/// Ten-thousandths as a decimal with a comma: `1,2345`, `120`.
fn decimal4(v: i64) -> String {
    let text = format!("{},{:04}", v / 10_000, v % 10_000);
    text.trim_end_matches('0').trim_end_matches(',').to_string()
}

fn regon(rng: &mut StdRng) -> String {
    loop {
        let base: String = (0..8)
            .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
            .collect();
        let candidate = format!("{base}{}", rng.random_range(0..10u8));
        if crate::identifiers::regon_is_valid(&candidate) {
            return candidate;
        }
    }
}

/// One component of a generated assessment.
struct Component {
    subject: &'static str,
    unit: &'static str,
    description: String,
    registration: String,
    weight: String,
    base_e4: i64,
    rate_e4: i64,
    amount_gr: i64,
}

fn component(subject: &'static str, unit: &'static str, base_e4: i64, rate_e4: i64) -> Component {
    Component {
        subject,
        unit,
        description: String::new(),
        registration: String::new(),
        weight: String::new(),
        base_e4,
        rate_e4,
        amount_gr: super::component_amount_gr(base_e4, rate_e4).expect("small numbers"),
    }
}

/// The components of a tax account's assessment, at 2026 rates (per m², per hectare, 2% of
/// a structure's value, per vehicle); none for a fee.
fn tax_components(kind: &str, natural: bool, rng: &mut StdRng) -> Vec<Component> {
    let m2 = |rng: &mut StdRng, range: std::ops::Range<i64>| rng.random_range(range) * 10_000;
    let ha = |rng: &mut StdRng, range: std::ops::Range<i64>| rng.random_range(range);
    let mut parts = Vec::new();
    let farm = |parts: &mut Vec<Component>, rng: &mut StdRng| {
        parts.push(component(
            "agricultural_land",
            "ha_przel",
            ha(rng, 1_0000..40_0000),
            152_5000,
        ));
        if rng.random_bool(0.4) {
            parts.push(component("forest", "ha", ha(rng, 5000..10_0000), 63_0000));
        }
    };
    match kind {
        "property" if natural => {
            parts.push(component("land_other", "m2", m2(rng, 200..2_000), 7100));
            parts.push(component(
                "building_residential",
                "m2",
                m2(rng, 40..250),
                1_1900,
            ));
            if rng.random_bool(0.1) {
                parts.push(component("building_other", "m2", m2(rng, 10..60), 1_0800));
            }
        }
        "property" => {
            parts.push(component(
                "land_business",
                "m2",
                m2(rng, 500..20_000),
                1_3800,
            ));
            parts.push(component(
                "building_business",
                "m2",
                m2(rng, 100..5_000),
                35_5300,
            ));
            if rng.random_bool(0.3) {
                parts.push(component(
                    "structure",
                    "zl",
                    m2(rng, 10_000..2_000_000),
                    200,
                ));
            }
        }
        "joint" => {
            parts.push(component("land_other", "m2", m2(rng, 500..3_000), 7100));
            parts.push(component(
                "building_residential",
                "m2",
                m2(rng, 60..250),
                1_1900,
            ));
            farm(&mut parts, rng);
        }
        "agricultural" => farm(&mut parts, rng),
        "forest" => parts.push(component("forest", "ha", ha(rng, 1_0000..30_0000), 63_0000)),
        "transport" => {
            for v in 0..rng.random_range(1..4) {
                let weight = rng.random_range(3_600..40_000);
                let mut vehicle = component(
                    "vehicle",
                    "szt",
                    10_000,
                    rng.random_range(800..3_000) * 10_000,
                );
                vehicle.description = format!("samochód ciężarowy {}", v + 1);
                vehicle.registration = format!("TST {:05}", rng.random_range(0..100_000));
                vehicle.weight = weight.to_string();
                parts.push(vehicle);
            }
        }
        _ => {}
    }
    parts
}

struct Out {
    path: PathBuf,
    writer: std::io::BufWriter<std::fs::File>,
    rows: u64,
}

impl Out {
    fn create(dir: &Path, name: &str, header: &str) -> std::io::Result<Out> {
        let path = dir.join(format!("{name}.csv"));
        let mut writer = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&path)?);
        writeln!(writer, "{header}")?;
        Ok(Out {
            path,
            writer,
            rows: 0,
        })
    }

    fn row(&mut self, fields: &[&str]) -> std::io::Result<()> {
        self.rows += 1;
        writeln!(self.writer, "{}", fields.join(";"))
    }

    fn finish(mut self) -> std::io::Result<(PathBuf, u64)> {
        self.writer.flush()?;
        Ok((self.path, self.rows))
    }
}

/// Writes the sample set into `dir`; returns each file with its row count. With
/// `ledger_rows` > 0, the ledger is made exactly that long (for benches).
pub fn generate(
    dir: &Path,
    inhabitants: u32,
    ledger_rows: u64,
) -> std::io::Result<Vec<(PathBuf, u64)>> {
    std::fs::create_dir_all(dir)?;
    let mut rng = StdRng::seed_from_u64(u64::from(inhabitants) * 31 + ledger_rows);
    let households = (inhabitants as f64 / 2.6) as u64;
    let companies = u64::from(inhabitants / 30);
    let mut parties = Out::create(dir, "parties", "id;rodzaj;nazwa;pesel;nip;regon;adres")?;
    let mut accounts = Out::create(dir, "accounts", "id;podmiot;rodzaj;nrb;opis")?;
    let mut obligors = Out::create(dir, "obligors", "id;konto;podmiot;rola")?;
    let mut installments = Out::create(dir, "installments", "id;konto;rok;numer;termin;kwota")?;
    let mut ledger = Out::create(
        dir,
        "ledger",
        "id;konto;rok;typ;rata;data_ksiegowania;data_waluty;kwota",
    )?;
    let mut cases = Out::create(
        dir,
        "cases",
        "id;podmiot;znak;tytul;status;wszczeta;zakonczona",
    )?;
    let mut case_letters = Out::create(dir, "case_letters", "id;sprawa;data;kierunek;tytul")?;
    let mut assessments = Out::create(
        dir,
        "assessments",
        "id;konto;rodzaj;numer;data;rok;kwota;doreczona",
    )?;
    let mut components = Out::create(
        dir,
        "assessment_components",
        "id;wymiar;przedmiot;opis;nr_rejestracyjny;dmc_kg;jednostka;podstawa;stawka;kwota",
    )?;
    let mut assessment_no = 0u64;
    let mut permits = Out::create(
        dir,
        "alcohol_permits",
        "id;podmiot;numer;kategoria;punkt;od;do",
    )?;
    let mut leases = Out::create(
        dir,
        "leases",
        "id;podmiot;dzialka;powierzchnia_m2;czynsz;od;do",
    )?;
    let mut account_no = 0u64;
    let mut account_ids: Vec<String> = Vec::new();
    // How many installments each account has, for the payments of a bench ledger.
    let mut installment_counts: Vec<usize> = Vec::new();
    let mut ledger_no = 0u64;
    let year = 2026;
    let address = |rng: &mut StdRng| {
        format!(
            "ul. {} {}, 00-950 Testowo",
            STREETS[rng.random_range(0..STREETS.len())],
            rng.random_range(1..120)
        )
    };
    for n in 0..households + companies {
        let party = format!("P{n:07}");
        let natural = n < households;
        let (name, pesel_value, nip_value) = if natural {
            let surname = SURNAMES[rng.random_range(0..SURNAMES.len())];
            let given = GIVEN[rng.random_range(0..GIVEN.len())];
            (format!("{given} {surname}"), pesel(&mut rng), String::new())
        } else {
            let kind = COMPANY[rng.random_range(0..COMPANY.len())];
            let surname = SURNAMES[rng.random_range(0..SURNAMES.len())];
            (
                format!("{kind} {surname} Sp. z o.o."),
                String::new(),
                nip(&mut rng),
            )
        };
        let addr = address(&mut rng);
        // Half the firms give their REGON as well.
        let regon_value = if !natural && rng.random_bool(0.5) {
            regon(&mut rng)
        } else {
            String::new()
        };
        parties.row(&[
            &party,
            if natural { "F" } else { "P" },
            &name,
            &pesel_value,
            &nip_value,
            &regon_value,
            &addr,
        ])?;
        // A spouse, liable with the head of the household for the property tax.
        let spouse = (natural && rng.random_bool(0.3)).then(|| format!("{party}M"));
        if let Some(spouse) = &spouse {
            let surname = name.rsplit(' ').next().unwrap_or("Nowak");
            let given = GIVEN[rng.random_range(0..GIVEN.len())];
            parties.row(&[
                spouse,
                "F",
                &format!("{given} {surname}"),
                &pesel(&mut rng),
                "",
                "",
                &addr,
            ])?;
        }
        // Every kind of account: property tax for most (joint with the agricultural and
        // forest tax for some farmers: one payment order), agricultural or forest tax alone
        // for a few, the waste fee for households, transport tax and the alcohol fee for some
        // firms, lease rent and perpetual usufruct for a few.
        let mut kinds: Vec<&str> = vec![];
        if natural && rng.random_bool(0.05) {
            kinds.push("joint");
        } else if rng.random_bool(0.9) {
            kinds.push("property");
        }
        if natural {
            kinds.push("waste_fee");
            if rng.random_bool(0.02) {
                kinds.push("agricultural");
            }
            if rng.random_bool(0.01) {
                kinds.push("forest");
            }
        } else {
            if rng.random_bool(0.25) {
                kinds.push("transport");
            }
            if rng.random_bool(0.1) {
                kinds.push("alcohol_fee");
            }
        }
        if rng.random_bool(0.01) {
            kinds.push("lease");
        }
        if rng.random_bool(0.02) {
            kinds.push("perpetual_usufruct");
        }
        for kind in kinds {
            account_no += 1;
            let account = format!("K{account_no:08}");
            accounts.row(&[&account, &party, kind, &nrb(account_no), ""])?;
            obligors.row(&[&format!("{account}-1"), &account, &party, "main"])?;
            if let Some(spouse) = spouse
                .as_ref()
                .filter(|_| kind == "property" || kind == "joint")
            {
                obligors.row(&[&format!("{account}-2"), &account, spouse, "co_obligor"])?;
            }
            account_ids.push(account.clone());
            let parts = tax_components(kind, natural, &mut rng);
            let annual: i64 = if parts.is_empty() {
                match kind {
                    "waste_fee" => rng.random_range(300_00..1_200_00),
                    "alcohol_fee" => rng.random_range(525_00..4_000_00),
                    "lease" => rng.random_range(100_00..5_000_00),
                    _ => rng.random_range(50_00..3_000_00),
                }
            } else {
                parts.iter().map(|c| c.amount_gr).sum()
            };
            if !parts.is_empty() && ledger_rows == 0 {
                assessment_no += 1;
                let assessment = format!("{account}-W1");
                let (assessment_kind, number, issued, delivered) = match kind {
                    "joint" => (
                        "payment_order",
                        format!("FN.3121.{assessment_no}.{year}"),
                        "2026-02-05",
                        "2026-02-12",
                    ),
                    _ if natural => (
                        "decision",
                        format!("FN.3120.{assessment_no}.{year}"),
                        "2026-02-05",
                        "2026-02-12",
                    ),
                    "transport" => (
                        "declaration",
                        format!("DT-1/{assessment_no}/{year}"),
                        "2026-02-10",
                        "",
                    ),
                    _ => (
                        "declaration",
                        format!("DN-1/{assessment_no}/{year}"),
                        "2026-01-31",
                        "",
                    ),
                };
                assessments.row(&[
                    &assessment,
                    &account,
                    assessment_kind,
                    &number,
                    issued,
                    "2026",
                    &zloty(annual),
                    delivered,
                ])?;
                for (i, c) in parts.iter().enumerate() {
                    components.row(&[
                        &format!("{assessment}-{}", i + 1),
                        &assessment,
                        c.subject,
                        &c.description,
                        &c.registration,
                        &c.weight,
                        c.unit,
                        &decimal4(c.base_e4),
                        &decimal4(c.rate_e4),
                        &zloty(c.amount_gr),
                    ])?;
                }
            }
            let dates: Vec<String> = match kind {
                _ if natural && annual <= 100_00 => vec![format!("{year}-03-15")],
                "transport" => vec![format!("{year}-02-15"), format!("{year}-09-15")],
                "property" if !natural => std::iter::once(format!("{year}-01-31"))
                    .chain((2..=12).map(|m| format!("{year}-{m:02}-15")))
                    .collect(),
                "alcohol_fee" => ["01-31", "05-31", "09-30"]
                    .iter()
                    .map(|d| format!("{year}-{d}"))
                    .collect(),
                "lease" => ["03-31", "06-30", "09-30", "12-31"]
                    .iter()
                    .map(|d| format!("{year}-{d}"))
                    .collect(),
                "perpetual_usufruct" => vec![format!("{year}-03-31")],
                _ => ["03-15", "05-15", "09-15", "11-15"]
                    .iter()
                    .map(|d| format!("{year}-{d}"))
                    .collect(),
            };
            let mut entry = |ledger: &mut Out, fields: [&str; 6]| {
                ledger_no += 1;
                let [kind, installment, booked, value, amount, _] = fields;
                ledger.row(&[
                    &format!("L{ledger_no:09}"),
                    &account,
                    "2026",
                    kind,
                    installment,
                    booked,
                    value,
                    amount,
                ])
            };
            if ledger_rows == 0 {
                entry(
                    &mut ledger,
                    ["charge", "", "2026-01-20", "", &zloty(annual), ""],
                )?;
                // A corrected decision for a few: the charge raised or lowered.
                if rng.random_bool(0.02) {
                    let change = rng.random_range(-(annual / 10).max(1)..=(annual / 10).max(1));
                    if change != 0 {
                        entry(
                            &mut ledger,
                            ["correction", "", "2026-04-02", "", &zloty(change), ""],
                        )?;
                    }
                }
            }
            let count = dates.len() as i64;
            installment_counts.push(dates.len());
            // How this payer pays: on time mostly; late, partly or not at all for some; a
            // few without naming the installment (allocated by art. 62), a few too much.
            let unnamed = rng.random_bool(0.15);
            let mut unpaid = false;
            let mut late = false;
            for (i, due) in dates.iter().enumerate() {
                let amount = annual / count + if i == 0 { annual % count } else { 0 };
                let installment = format!("{account}-R{}", i + 1);
                installments.row(&[
                    &installment,
                    &account,
                    "2026",
                    &(i + 1).to_string(),
                    due,
                    &zloty(amount),
                ])?;
                // Only installments already due by the day the set describes (2026-11-20).
                if ledger_rows == 0 && due.as_str() < "2026-11-20" {
                    let roll = rng.random_range(0..100);
                    let paid = match roll {
                        0..=79 => amount,
                        80..=89 => amount / 2,
                        _ => 0,
                    };
                    unpaid |= paid < amount;
                    late |= (70..80).contains(&roll);
                    if paid > 0 {
                        let day = if roll < 70 {
                            due.clone()
                        } else {
                            format!("{}-28", &due[..7])
                        };
                        let named = if unnamed { "" } else { installment.as_str() };
                        entry(
                            &mut ledger,
                            ["payment", named, &day, &day, &zloty(paid), ""],
                        )?;
                    }
                }
            }
            if ledger_rows == 0 {
                if late && rng.random_bool(0.5) {
                    let interest = rng.random_range(1_00..40_00);
                    entry(
                        &mut ledger,
                        ["interest", "", "2026-10-01", "", &zloty(interest), ""],
                    )?;
                    entry(
                        &mut ledger,
                        [
                            "payment",
                            "",
                            "2026-10-10",
                            "2026-10-09",
                            &zloty(interest),
                            "",
                        ],
                    )?;
                }
                if unpaid && rng.random_bool(0.3) {
                    entry(
                        &mut ledger,
                        ["reminder_cost", "", "2026-10-15", "", "16,00", ""],
                    )?;
                }
                if unpaid && rng.random_bool(0.05) {
                    entry(
                        &mut ledger,
                        [
                            "write_off",
                            "",
                            "2026-11-05",
                            "",
                            &zloty(rng.random_range(1_00..20_00)),
                            "",
                        ],
                    )?;
                }
                // Too much paid: refunded (art. 77) or moved to another liability for some.
                if !unpaid && rng.random_bool(0.04) {
                    let extra = rng.random_range(5_00..200_00);
                    entry(
                        &mut ledger,
                        ["payment", "", "2026-06-01", "2026-06-01", &zloty(extra), ""],
                    )?;
                    if rng.random_bool(0.5) {
                        entry(
                            &mut ledger,
                            [
                                "overpayment_refund",
                                "",
                                "2026-07-01",
                                "",
                                &zloty(extra),
                                "",
                            ],
                        )?;
                    }
                }
                if rng.random_bool(0.01) {
                    entry(
                        &mut ledger,
                        [
                            "overpayment_credit",
                            "",
                            "2026-04-20",
                            "2026-04-20",
                            &zloty(rng.random_range(10_00..100_00)),
                            "",
                        ],
                    )?;
                }
            }
        }
        if natural && rng.random_bool(0.02) {
            let case = format!("S{n:07}");
            case_letters.row(&[
                &format!("{case}-1"),
                &case,
                "2026-02-10",
                "in",
                "Wniosek o wydanie decyzji",
            ])?;
            case_letters.row(&[
                &format!("{case}-2"),
                &case,
                "2026-03-02",
                "out",
                "Wezwanie do uzupełnienia wniosku",
            ])?;
            cases.row(&[
                &case,
                &party,
                &format!("GKM.6730.{}.{year}", n % 900 + 1),
                "Wniosek o wydanie decyzji o warunkach zabudowy",
                if rng.random_bool(0.5) {
                    "open"
                } else {
                    "closed"
                },
                &format!(
                    "{year}-0{}-1{}",
                    rng.random_range(1..10),
                    rng.random_range(0..10)
                ),
                "",
            ])?;
        }
        if !natural && rng.random_bool(0.1) {
            let category = ["A", "B", "C"][rng.random_range(0..3)];
            permits.row(&[
                &format!("Z{n:07}"),
                &party,
                &format!("ZEZ/{n}/2024"),
                category,
                &addr,
                "2024-01-01",
                "2028-12-31",
            ])?;
        }
        if rng.random_bool(0.01) {
            leases.row(&[
                &format!("D{n:07}"),
                &party,
                &format!("142/{}", n % 300 + 1),
                &rng.random_range(50..5_000).to_string(),
                &zloty(rng.random_range(100_00..5_000_00)),
                "2023-01-01",
                "",
            ])?;
        }
    }
    // A bench ledger: exactly `ledger_rows` entries over the accounts, a third charges and
    // the rest payments, each paying one of its account's installments (as real ledgers do).
    for i in 0..ledger_rows {
        let index = (i % account_ids.len() as u64) as usize;
        let account = &account_ids[index];
        let (kind, day, installment) = if i % 3 == 0 {
            ("charge", "2026-01-20", String::new())
        } else {
            let round = (i / account_ids.len() as u64) as usize;
            let number = 1 + round % installment_counts[index];
            ("payment", "2026-05-15", format!("{account}-R{number}"))
        };
        ledger.row(&[
            &format!("L{i:09}"),
            account,
            "2026",
            kind,
            &installment,
            day,
            day,
            &zloty(rng.random_range(10_00..2_000_00)),
        ])?;
    }
    let mut budget = Out::create(
        dir,
        "budget",
        "id;rok;dzial;rozdzial;paragraf;nazwa;plan;wykonanie",
    )?;
    for (i, (dzial, rozdzial, paragraf, name)) in [
        ("600", "60016", "4270", "Drogi publiczne gminne: remonty"),
        (
            "700",
            "70005",
            "0750",
            "Gospodarka gruntami: najem i dzierżawa",
        ),
        ("756", "75615", "0310", "Podatek od nieruchomości"),
        ("801", "80101", "4010", "Szkoły podstawowe: wynagrodzenia"),
        ("900", "90002", "4300", "Gospodarka odpadami: usługi"),
        ("921", "92116", "2480", "Biblioteki: dotacja"),
    ]
    .iter()
    .enumerate()
    {
        let plan = i64::from(inhabitants) * rng.random_range(50..400) * 100;
        let execution = plan * rng.random_range(60..100) / 100;
        budget.row(&[
            &format!("B{i:04}"),
            "2026",
            dzial,
            rozdzial,
            paragraf,
            name,
            &zloty(plan),
            &zloty(execution),
        ])?;
    }
    let mut property = Out::create(
        dir,
        "property",
        "id;nazwa;adres;dzialka;powierzchnia_m2;przeznaczenie",
    )?;
    for i in 0..u64::from(inhabitants / 500) {
        let addr = address(&mut rng);
        property.row(&[
            &format!("M{i:05}"),
            &format!("Lokal użytkowy nr {}", i + 1),
            &addr,
            &format!("{}/{}", 100 + i, i % 7 + 1),
            &rng.random_range(20..900).to_string(),
            "usługi",
        ])?;
    }
    [
        parties,
        accounts,
        obligors,
        installments,
        ledger,
        assessments,
        components,
        cases,
        case_letters,
        permits,
        leases,
        budget,
        property,
    ]
    .into_iter()
    .map(Out::finish)
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_numbers_pass_their_checks() {
        let mut rng = StdRng::seed_from_u64(1);
        for n in 0..200 {
            assert!(crate::identifiers::pesel_is_valid(&pesel(&mut rng)));
            assert!(crate::identifiers::nip_is_valid(&nip(&mut rng)));
            assert!(super::super::nrb_is_valid(&nrb(n)));
        }
    }
}
