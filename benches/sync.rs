//! Bench: a full sync of 1,000,000 ledger rows, first into an empty table and then again
//! unchanged, on SQLite and (when reachable) PostgreSQL, next to the raw loaders in the same
//! run: `sqlite3 .import` and `psql \copy`, each into an unindexed table. Also the peak RSS
//! of this process (getrusage), which holds the sync's key map.
//!
//! `cargo bench --bench sync`; EURZAD_BENCH_LEDGER_ROWS (default 1000000) sizes it and
//! EURZAD_BENCH_POSTGRES_URL (default postgres://eurzad:eurzad@127.0.0.1/eurzad, a role
//! that may create databases) names the PostgreSQL server.

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

async fn run(store: &Store, dir: &Path, label: &str, rows: u64) -> Vec<(String, String)> {
    store.migrate().await.unwrap();
    for name in ["parties", "accounts", "installments"] {
        sync(store, name, &dir.join(format!("{name}.csv"))).await;
    }
    let (first, n) = sync(store, "ledger", &dir.join("ledger.csv")).await;
    assert_eq!(n, rows);
    // The same rows in other files (each a new checksum): every row compared and skipped.
    // Three runs, reported by their median and range (this machine's timings wander).
    let mut again = Vec::new();
    for copy in 1..=AGAIN {
        again.push(
            sync(
                store,
                "ledger",
                &dir.join(format!("ledger-again-{copy}.csv")),
            )
            .await
            .0,
        );
    }
    again.sort_by(f64::total_cmp);
    let second = again[AGAIN / 2];
    vec![
        (
            format!("{label}: first sync"),
            format!("{:.1} s, {:.0} rows/s", first, rows as f64 / first),
        ),
        (
            format!("{label}: unchanged re-sync (median of {AGAIN})"),
            format!(
                "{:.2} s (range {:.2}–{:.2}), {:.0} rows/s ({:.1}x faster)",
                second,
                again[0],
                again[AGAIN - 1],
                rows as f64 / second,
                first / second
            ),
        ),
    ]
}

const AGAIN: usize = 3;

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

    // SQLite.
    let db = dir.path().join("bench.db");
    runtime.block_on(async {
        let store = Store::connect(&format!("sqlite://{}?mode=rwc", db.display()), 4)
            .await
            .unwrap();
        table.extend(run(&store, &data, "SQLite", rows).await);
        store.close().await;
    });
    let raw = dir.path().join("raw.db");
    let mut sqlite3 = Command::new("sqlite3");
    sqlite3
        .arg(&raw)
        .args([".mode csv", ".separator ;"])
        .arg(format!(".import {} raw", data.join("ledger.csv").display()));
    let raw_sqlite = timed(sqlite3);
    table.push((
        "SQLite: sqlite3 .import (raw, unindexed)".into(),
        format!(
            "{:.1} s, {:.0} rows/s",
            raw_sqlite,
            rows as f64 / raw_sqlite
        ),
    ));
    table.push((
        "peak RSS after SQLite".into(),
        format!("{} MiB", peak_rss_mib()),
    ));

    // PostgreSQL, when reachable.
    let admin = std::env::var("EURZAD_BENCH_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://eurzad:eurzad@127.0.0.1/eurzad".into());
    let name = format!("eurzad_bench_{}", std::process::id());
    let created = runtime.block_on(async {
        let Ok(mut c) = <sqlx::PgConnection as sqlx::Connection>::connect(&admin).await else {
            return false;
        };
        sqlx::Executor::execute(
            &mut c,
            sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")),
        )
        .await
        .is_ok()
    });
    if created {
        let url = format!("{}/{name}", admin.rsplit_once('/').unwrap().0);
        runtime.block_on(async {
            let store = Store::connect(&url, 4).await.unwrap();
            table.extend(run(&store, &data, "PostgreSQL", rows).await);
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
        let raw_pg = timed(copy);
        table.push((
            "PostgreSQL: psql \\copy (raw, unindexed)".into(),
            format!("{:.1} s, {:.0} rows/s", raw_pg, rows as f64 / raw_pg),
        ));
        runtime.block_on(async {
            if let Ok(mut c) = <sqlx::PgConnection as sqlx::Connection>::connect(&admin).await {
                let _ = sqlx::Executor::execute(
                    &mut c,
                    sqlx::AssertSqlSafe(format!("DROP DATABASE {name} WITH (FORCE)")),
                )
                .await;
            }
        });
    } else {
        table.push((
            "PostgreSQL".into(),
            format!("not reachable at {admin}: skipped"),
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
