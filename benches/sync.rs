//! Bench: a full sync of 1,000,000 ledger rows, first into an empty table and then again
//! unchanged, on SQLite and (when reachable) PostgreSQL, next to the raw loaders in the same
//! run: `sqlite3 .import` and `psql \copy`, each into an unindexed table. Also the peak RSS
//! of this process (getrusage).
//!
//! This VM's speed wanders by a quarter from one minute to the next, so each figure is the
//! median of three, and the first syncs and the raw loads alternate (round by round: a fresh
//! database, its first sync, the raw load beside it), so that a slow stretch slows both.
//! The unchanged re-syncs run on the last round's database.
//!
//! `cargo bench --bench sync`; EURZAD_BENCH_LEDGER_ROWS (default 1000000) sizes it and
//! EURZAD_BENCH_POSTGRES_URL (default postgres://eurzad:eurzad@127.0.0.1/eurzad, a role
//! that may create databases) names the PostgreSQL server.

mod common;

use common::PgAdmin;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use eurzad::registers::csv_source::FileEncoding;
use eurzad::registers::register;
use eurzad::store::Store;
use eurzad::store::registers::{SyncMode, SyncOutcome};

/// The allocator the `eurzad` binary uses (src/main.rs): the sync runs in this process.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn peak_rss_mib() -> u64 {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    usage.ru_maxrss as u64 / 1024
}

async fn sync(store: &Store, name: &str, path: &Path) -> (f64, u64) {
    let started = Instant::now();
    let outcome = store
        .sync_file(
            register(name).unwrap(),
            path,
            SyncMode::Full,
            FileEncoding::Auto,
            "bench",
        )
        .await
        .unwrap();
    let SyncOutcome::Applied { counts, .. } = outcome else {
        panic!("{name}: not applied")
    };
    (started.elapsed().as_secs_f64(), counts.rows)
}

/// Rounds of (first sync, raw load), and unchanged re-syncs.
const ROUNDS: usize = 3;
const AGAIN: usize = 3;

fn median(mut values: Vec<f64>) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    (
        values[values.len() / 2],
        values[0],
        values[values.len() - 1],
    )
}

/// Loads what the ledger refers to, then the ledger into its empty table: the first sync.
async fn first_sync(store: &Store, dir: &Path, rows: u64) -> f64 {
    store.migrate().await.unwrap();
    for name in ["parties", "accounts", "installments"] {
        sync(store, name, &dir.join(format!("{name}.csv"))).await;
    }
    let (seconds, n) = sync(store, "ledger", &dir.join("ledger.csv")).await;
    assert_eq!(n, rows);
    seconds
}

/// The same rows in other files (each a new checksum): every row compared and skipped.
async fn resyncs(store: &Store, dir: &Path) -> Vec<f64> {
    let mut again = Vec::new();
    for copy in 1..=AGAIN {
        let path = dir.join(format!("ledger-again-{copy}.csv"));
        again.push(sync(store, "ledger", &path).await.0);
    }
    again
}

/// One backend's figures.
struct Figures {
    firsts: Vec<f64>,
    raws: Vec<f64>,
    again: Vec<f64>,
}

impl Figures {
    fn report(self, table: &mut Vec<(String, String)>, label: &str, raw_label: &str, rows: u64) {
        let ratios: Vec<f64> = self
            .firsts
            .iter()
            .zip(&self.raws)
            .map(|(f, r)| r / f)
            .collect();
        let (first, first_low, first_high) = median(self.firsts);
        let (raw, raw_low, raw_high) = median(self.raws);
        let (second, second_low, second_high) = median(self.again);
        let (_, ratio_low, ratio_high) = median(ratios);
        let rate = |s: f64| rows as f64 / s;
        table.push((
            format!("{label}: first sync (median of {ROUNDS})"),
            format!(
                "{first:.2} s (range {first_low:.2}–{first_high:.2}), {:.0} rows/s",
                rate(first)
            ),
        ));
        table.push((
            format!("{label}: {raw_label} (raw, unindexed; median of {ROUNDS})"),
            format!(
                "{raw:.2} s (range {raw_low:.2}–{raw_high:.2}), {:.0} rows/s",
                rate(raw)
            ),
        ));
        table.push((
            format!("{label}: first sync / raw loader (target >= 50%)"),
            format!(
                "{:.0}% of the medians (round by round {:.0}–{:.0}%)",
                100.0 * raw / first,
                100.0 * ratio_low,
                100.0 * ratio_high
            ),
        ));
        table.push((
            format!("{label}: unchanged re-sync (median of {AGAIN}; target >= 5x faster)"),
            format!(
                "{second:.2} s (range {second_low:.2}–{second_high:.2}), {:.0} rows/s: {:.1}x faster than the first sync",
                rate(second),
                first / second
            ),
        ));
    }
}

fn timed(mut command: Command) -> f64 {
    let started = Instant::now();
    let out = command.output().expect("the raw loader runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    started.elapsed().as_secs_f64()
}

fn main() {
    let rows: u64 = std::env::var("EURZAD_BENCH_LEDGER_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    eurzad::registers::sample::generate(&data, 65_000, rows).unwrap();
    // The same rows under other spellings of the header (so other checksums), copied as a
    // stream.
    for copy in 1..=AGAIN {
        use std::io::{BufRead, Write};
        let mut from =
            std::io::BufReader::new(std::fs::File::open(data.join("ledger.csv")).unwrap());
        let mut to = std::io::BufWriter::new(
            std::fs::File::create(data.join(format!("ledger-again-{copy}.csv"))).unwrap(),
        );
        let mut header = String::new();
        from.read_line(&mut header).unwrap();
        let spelled = ["ID;", "Id;", "iD;"][copy - 1];
        to.write_all(header.replacen("id;", spelled, 1).as_bytes())
            .unwrap();
        std::io::copy(&mut from, &mut to).unwrap();
    }
    // The runtime the `eurzad` binary runs on.
    let runtime = eurzad::daemon::runtime().unwrap();
    let mut table: Vec<(String, String)> = Vec::new();

    // SQLite: each round a new database file.
    let mut sqlite = Figures {
        firsts: Vec::new(),
        raws: Vec::new(),
        again: Vec::new(),
    };
    for round in 0..ROUNDS {
        let db = dir.path().join(format!("bench-{round}.db"));
        runtime.block_on(async {
            let store = Store::connect(&format!("sqlite://{}?mode=rwc", db.display()), 4)
                .await
                .unwrap();
            sqlite.firsts.push(first_sync(&store, &data, rows).await);
            if round == ROUNDS - 1 {
                sqlite.again = resyncs(&store, &data).await;
            }
            store.close().await;
        });
        let mut sqlite3 = Command::new("sqlite3");
        sqlite3
            .arg(dir.path().join(format!("raw-{round}.db")))
            .args([".mode csv", ".separator ;"])
            .arg(format!(".import {} raw", data.join("ledger.csv").display()));
        sqlite.raws.push(timed(sqlite3));
    }
    sqlite.report(&mut table, "SQLite", "sqlite3 .import", rows);
    table.push((
        "peak RSS after SQLite".into(),
        format!("{} MiB", peak_rss_mib()),
    ));

    // PostgreSQL, when reachable: each round a new database.
    let admin = PgAdmin::from_env();
    let admin_sql = |sql: String| admin.exec(&runtime, sql);
    let mut postgres = Figures {
        firsts: Vec::new(),
        raws: Vec::new(),
        again: Vec::new(),
    };
    for round in 0..ROUNDS {
        let name = format!("eurzad_bench_{}_{round}", std::process::id());
        if !admin_sql(format!("CREATE DATABASE {name}")) {
            break;
        }
        let url = admin.database_url(&name);
        runtime.block_on(async {
            let store = Store::connect(&url, 4).await.unwrap();
            postgres.firsts.push(first_sync(&store, &data, rows).await);
            if round == ROUNDS - 1 {
                postgres.again = resyncs(&store, &data).await;
            }
            store.close().await;
        });
        let mut create = Command::new("psql");
        create.arg(&url).args(["-qc", "CREATE TABLE raw (id text, konto text, rok bigint, typ text, rata text, data_ksiegowania date, data_waluty date, kwota text)"]);
        timed(create);
        let mut copy = Command::new("psql");
        copy.arg(&url).arg("-qc").arg(format!(
            "\\copy raw FROM '{}' WITH (FORMAT csv, HEADER, DELIMITER ';')",
            data.join("ledger.csv").display()
        ));
        postgres.raws.push(timed(copy));
        admin_sql(format!("DROP DATABASE {name} WITH (FORCE)"));
    }
    if postgres.firsts.len() == ROUNDS {
        postgres.report(&mut table, "PostgreSQL", "psql \\copy", rows);
    } else {
        table.push((
            "PostgreSQL".into(),
            format!("not reachable at {}: skipped", admin.url),
        ));
    }
    table.push((
        "peak RSS (whole bench process)".into(),
        format!("{} MiB", peak_rss_mib()),
    ));
    println!("\nregister sync, {rows} ledger rows (full snapshot mode)\n");
    println!("| measure | value |\n|---|---|");
    for (k, v) in table {
        println!("| {k} | {v} |");
    }
}
