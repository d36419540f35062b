//! Mutation tests of the register readers (CSV and XML exports from the back office): seeded
//! mutants of the hand-checked set in fixtures/registers/basic (bytes flipped, cut, copied
//! and truncated; separators, quotes, line ends and broken UTF-8 put in; lines duplicated,
//! dropped and swapped; headers changed), each read to its end. For every mutant:
//!
//! - reading ends, without a panic (a panic on the reader thread would surface as one here);
//! - an error names the file and a line within it, and says what is wrong;
//! - a row that is read names a line within the file and an id that the file holds.
//!
//! Teeth: many mutants must be refused somewhere, and many must still read, so that neither a
//! reader that refuses everything nor one that accepts everything passes.
//! `EURZAD_MUTANTS=N` sets the mutants per file (default 300), `EURZAD_MUTATION_SEED=S` the
//! first seed.

mod common;

use std::path::Path;

use eurzad::registers::csv_source::FileEncoding;
use eurzad::registers::{open_rows, register};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(common::fixture(&format!("registers/basic/{name}"))).unwrap()
}

/// The ledger as the XML format (schemas/rejestr.xsd), built from its CSV.
fn ledger_xml() -> Vec<u8> {
    let csv = String::from_utf8(fixture("ledger.csv")).unwrap();
    common::register_csv_as_xml(&csv, "ledger").into_bytes()
}

fn mutants_per_file() -> u64 {
    std::env::var("EURZAD_MUTANTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300)
}

fn first_seed() -> u64 {
    std::env::var("EURZAD_MUTATION_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_261_127)
}

/// Line starts (byte offsets) of `text`.
fn line_starts(text: &[u8]) -> Vec<usize> {
    std::iter::once(0)
        .chain(
            text.iter()
                .enumerate()
                .filter(|(_, c)| **c == b'\n')
                .map(|(i, _)| i + 1),
        )
        .filter(|&i| i < text.len())
        .collect()
}

fn line_at(text: &[u8], starts: &[usize], n: usize) -> (usize, usize) {
    let start = starts[n];
    let end = starts.get(n + 1).copied().unwrap_or(text.len());
    (start, end)
}

fn mutate_once(text: &mut Vec<u8>, rng: &mut StdRng) -> String {
    if text.is_empty() {
        return "empty".into();
    }
    let len = text.len();
    let starts = line_starts(text);
    match rng.random_range(0..10) {
        // Bits flipped, markup put in, spans cut or copied: the emulator's `corrupt` fault.
        0 | 3 | 4 => eurzad::emulator::faults::corrupt(text, rng.random()),
        1 | 2 => {
            let i = rng.random_range(0..len);
            let bytes: [&[u8]; 12] = [
                b";",
                b",",
                b"\"",
                b"\n",
                b"\r",
                b"\r\n",
                b"\0",
                b"\xff",
                b"\xc5",
                b"\xe2\x82",
                b" ",
                b"-",
            ];
            let with = bytes[rng.random_range(0..bytes.len())];
            text.splice(i..i + 1, with.iter().copied());
            format!("byte(s) {with:?} at {i}")
        }
        5 => {
            let i = rng.random_range(0..len);
            text.truncate(i);
            format!("truncate at {i}")
        }
        6 => {
            let (start, end) = line_at(text, &starts, rng.random_range(0..starts.len()));
            let copy = text[start..end].to_vec();
            text.splice(end..end, copy);
            format!("duplicate the line at {start}")
        }
        7 => {
            let (start, end) = line_at(text, &starts, rng.random_range(0..starts.len()));
            text.drain(start..end);
            format!("drop the line at {start}")
        }
        8 => {
            // A digit changed: amounts, dates, years, ids.
            let digits: Vec<usize> = (0..len).filter(|&i| text[i].is_ascii_digit()).collect();
            let Some(&i) = digits.get(rng.random_range(0..digits.len().max(1))) else {
                return "no digit".into();
            };
            text[i] = b'0' + (text[i] - b'0' + rng.random_range(1..10)) % 10;
            format!("digit at {i}")
        }
        _ => {
            // A header name or an XML attribute name changed.
            let (start, end) = line_at(text, &starts, 0);
            let letters: Vec<usize> = (start..end)
                .filter(|&i| text[i].is_ascii_lowercase())
                .collect();
            let Some(&i) = letters.get(rng.random_range(0..letters.len().max(1))) else {
                return "no letter".into();
            };
            text[i] = b'a' + (text[i] - b'a' + rng.random_range(1..26)) % 26;
            format!("header letter at {i}")
        }
    }
}

#[derive(Debug, Default)]
struct Tally {
    mutants: u64,
    read_whole: u64,
    refused: u64,
}

/// Reads `bytes` as `file_name` of `register_name` to its end, checking every row and error.
fn read_all(dir: &Path, file_name: &str, register_name: &str, bytes: &[u8], what: &str) -> bool {
    let path = dir.join(file_name);
    std::fs::write(&path, bytes).unwrap();
    let lines = bytes.iter().filter(|c| **c == b'\n').count() as u64 + 1;
    let register = register(register_name).unwrap();
    // As the reader decodes it: UTF-8, or else Windows-1250 (`auto`).
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text.to_string(),
        Err(_) => encoding_rs::WINDOWS_1250.decode(bytes).0.into_owned(),
    };
    let mut source = match open_rows(&path, register, FileEncoding::Auto) {
        Ok(source) => source,
        Err(error) => {
            assert!(
                error.file.ends_with(file_name) && !error.reason.trim().is_empty(),
                "{what}: an opening error must name the file and the fault: {error}"
            );
            assert!(
                error.line <= lines,
                "{what}: {error} (the file has {lines} lines)"
            );
            return false;
        }
    };
    let mut whole = true;
    // A row per line at most, plus the end: anything more would be a reader that loops.
    for _ in 0..=lines + 1 {
        match source.next_row() {
            None => return whole,
            Some(Ok(row)) => {
                assert!(
                    (1..=lines).contains(&row.line),
                    "{what}: row {:?} at line {} of {lines}",
                    row.id,
                    row.line
                );
                assert!(
                    !row.id.is_empty() && text.contains(row.id.as_str()),
                    "{what}: row id {:?} is not in the file",
                    row.id
                );
            }
            Some(Err(error)) => {
                assert!(
                    error.file.ends_with(file_name) && !error.reason.trim().is_empty(),
                    "{what}: an error must name the file and the fault: {error}"
                );
                assert!(
                    (1..=lines).contains(&error.line),
                    "{what}: {error} names line {} of {lines}",
                    error.line
                );
                whole = false;
            }
        }
    }
    panic!("{what}: more rows than lines ({lines})");
}

fn survives(file_name: &str, register_name: &str, genuine: Vec<u8>) -> Tally {
    let dir = tempfile::tempdir().unwrap();
    assert!(
        read_all(dir.path(), file_name, register_name, &genuine, "genuine"),
        "{file_name}: the genuine file reads whole"
    );
    let mut tally = Tally::default();
    let first = first_seed();
    for seed in first..first + mutants_per_file() {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut mutant = genuine.clone();
        let ops: Vec<String> = (0..rng.random_range(1..=3))
            .map(|_| mutate_once(&mut mutant, &mut rng))
            .collect();
        if mutant == genuine {
            continue;
        }
        tally.mutants += 1;
        let what = format!("{file_name}, mutant {seed} ({})", ops.join("; "));
        if read_all(dir.path(), file_name, register_name, &mutant, &what) {
            tally.read_whole += 1;
        } else {
            tally.refused += 1;
        }
    }
    println!("{file_name}: {tally:?}");
    if mutants_per_file() >= 100 {
        assert!(
            tally.refused * 5 >= tally.mutants,
            "{file_name}: at least a fifth of the mutants are refused somewhere ({tally:?})"
        );
        assert!(
            tally.read_whole * 20 >= tally.mutants,
            "{file_name}: some mutants still read whole ({tally:?})"
        );
    }
    tally
}

#[test]
fn every_csv_of_the_basic_set_survives_its_mutants() {
    for (file, register) in [
        ("parties.csv", "parties"),
        ("accounts.csv", "accounts"),
        ("obligors.csv", "obligors"),
        ("installments.csv", "installments"),
        ("ledger.csv", "ledger"),
        ("cases.csv", "cases"),
        ("case_letters.csv", "case_letters"),
    ] {
        survives(file, register, fixture(file));
    }
}

#[test]
fn the_ledger_as_xml_survives_its_mutants() {
    survives("ledger.xml", "ledger", ledger_xml());
}
