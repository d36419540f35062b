//! Bench: the portal's pages at town scale (issue 16), on SQLite and (when reachable)
//! PostgreSQL, for a town of 65,000 inhabitants and a city of 650,000, made by the generator
//! (`eurzad sample-registers`), with an active account for every person.
//!
//! - Per view, one client: one viewer's rows (`SELECT * FROM portal_x WHERE
//!   viewer_account_id = $1`), 200 random viewers: median and p99; and the same round trip
//!   with no table (`SELECT $1`), the floor under every view's figure. Measured last, with
//!   every size's databases taking turns, and each size's median put against the first
//!   size's.
//! - 32 clients through the read API (`GET /portal/v1/{view}?viewer=ID`, the daemon's
//!   router on loopback): pages per second, a page being one viewer's liabilities,
//!   installments and payments, and the p99 of a page.
//! - The same 32 clients while a full ledger sync of the first town runs (every row
//!   changed): the p99 of a page, and the sync's time next to its time with no readers;
//!   one uncounted sync, then five interleaved rounds (alone, with readers), medians.
//!
//! `cargo bench --bench portal`; EURZAD_BENCH_SIZES (default "65000,650000") and
//! EURZAD_BENCH_POSTGRES_URL (default postgres://eurzad:eurzad@127.0.0.1/eurzad, a role that
//! may create databases) set it up; EURZAD_BENCH_SECONDS (default 10) is how long the clients
//! run; EURZAD_BENCH_BACKENDS (default "sqlite,postgres") which backends it measures;
//! EURZAD_BENCH_PORTAL_CONNECTIONS and EURZAD_BENCH_PORTAL_DURING_SYNC (default: `[portal]`'s
//! defaults) the read API's limits.

mod common;

use common::PgAdmin;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use eurzad::registers::csv_source::FileEncoding;
use eurzad::registers::{REGISTERS, register};
use eurzad::store::Store;
use eurzad::store::registers::SyncMode;
use rand::{Rng, SeedableRng};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const VIEWS: &[&str] = &[
    "portal_liabilities",
    "portal_installments",
    "portal_payments",
    "portal_assessments",
    "portal_tax_components",
    "portal_cases",
    "portal_correspondence",
];
const VIEWERS: usize = 200;
const CLIENTS: usize = 32;
const TOKEN: &str = "bench-token-0123456789";

fn quantile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * q).round() as usize]
}

fn ms(seconds: f64) -> String {
    format!("{:.2} ms", seconds * 1000.0)
}

/// Loads the generated town, and an active account for every person.
async fn load(store: &Store, data: &Path) -> (f64, Vec<i64>) {
    store.migrate().await.unwrap();
    let started = Instant::now();
    for r in REGISTERS {
        store
            .sync_file(
                register(r.name).unwrap(),
                &data.join(format!("{}.csv", r.name)),
                SyncMode::Full,
                FileEncoding::Auto,
                "bench",
            )
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", r.name));
    }
    let seconds = started.elapsed().as_secs_f64();
    let sql = "INSERT INTO account (pesel, given_name, surname, status, created_at, updated_at) \
               SELECT DISTINCT pesel, 'Imię', 'Nazwisko', 'active', $1, $1 FROM reg_party WHERE pesel IS NOT NULL";
    let now = chrono::Utc::now();
    let ids: Vec<i64> = match store {
        Store::Sqlite(pool) => {
            sqlx::query(sql).bind(now).execute(pool).await.unwrap();
            sqlx::query_scalar("SELECT id FROM account")
                .fetch_all(pool)
                .await
                .unwrap()
        }
        Store::Postgres(pool) => {
            sqlx::query(sql).bind(now).execute(pool).await.unwrap();
            sqlx::query("ANALYZE").execute(pool).await.unwrap();
            sqlx::query_scalar("SELECT id FROM account")
                .fetch_all(pool)
                .await
                .unwrap()
        }
    };
    (seconds, ids)
}

/// What `per_view` measures besides the views: the same round trip with no table, the
/// floor under every view's figure (for SQLite, sqlx's hand-off to its worker thread and
/// back; on an idle VM, mostly the time a sleeping core takes to wake).
const FLOOR: &str = "(floor: SELECT $1, no table)";

/// A loaded database whose views are measured one client at a time, at the end.
struct Measured {
    size: u32,
    backend: &'static str,
    url: String,
    viewers: Vec<i64>,
}

/// One viewer's rows of `view` (or the floor), one round trip: (seconds, rows).
async fn read_one(store: &Store, view: &str, viewer: i64) -> (f64, usize) {
    let sql = if view == FLOOR {
        "SELECT $1 AS viewer_account_id".to_string()
    } else {
        format!("SELECT * FROM {view} WHERE viewer_account_id = $1")
    };
    let started = Instant::now();
    let n = match store {
        Store::Sqlite(pool) => sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(viewer)
            .fetch_all(pool)
            .await
            .unwrap()
            .len(),
        Store::Postgres(pool) => sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(viewer)
            .fetch_all(pool)
            .await
            .unwrap()
            .len(),
    };
    (started.elapsed().as_secs_f64(), n)
}

/// Per database, per view and then the floor: (median, p99, rows per viewer), one client.
/// The databases take turns, a tenth of the viewers at a time, so that every size and
/// backend is measured under the same conditions: a 2-core VM's speed wanders by more than
/// a sub-millisecond read costs, and sizes measured minutes apart were not comparable.
async fn per_view(measured: &[Measured]) -> Vec<Vec<(f64, f64, f64)>> {
    const TURNS: usize = 10;
    let views: Vec<&str> = VIEWS.iter().copied().chain([FLOOR]).collect();
    let mut stores = Vec::new();
    for m in measured {
        let store = Store::connect(&m.url, 1).await.unwrap();
        // A warm-up pass over a few viewers, as a running portal's cache would be.
        for view in &views {
            for &viewer in &m.viewers[..10] {
                read_one(&store, view, viewer).await;
            }
        }
        stores.push(store);
    }
    let mut times = vec![vec![Vec::new(); views.len()]; measured.len()];
    let mut rows = vec![vec![0usize; views.len()]; measured.len()];
    let per_turn = VIEWERS.div_ceil(TURNS);
    for turn in 0..TURNS {
        for (d, (m, store)) in measured.iter().zip(&stores).enumerate() {
            for (v, view) in views.iter().enumerate() {
                for &viewer in m.viewers[10..].iter().skip(turn * per_turn).take(per_turn) {
                    let (seconds, n) = read_one(store, view, viewer).await;
                    times[d][v].push(seconds);
                    rows[d][v] += n;
                }
            }
        }
    }
    for store in stores {
        store.close().await;
    }
    times
        .into_iter()
        .zip(rows)
        .map(|(per_view, rows)| {
            per_view
                .into_iter()
                .zip(rows)
                .map(|(mut t, n)| {
                    t.sort_by(f64::total_cmp);
                    (
                        quantile(&t, 0.5),
                        quantile(&t, 0.99),
                        n as f64 / t.len() as f64,
                    )
                })
                .collect()
        })
        .collect()
}

/// 32 clients reading pages through the API until `stop` is set: (pages/s, p99 of a page,
/// pages).
async fn clients(base: String, viewers: Arc<Vec<i64>>, stop: Arc<AtomicBool>) -> (f64, f64, usize) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CLIENTS)
        .build()
        .unwrap();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let client = client.clone();
        let base = base.clone();
        let viewers = viewers.clone();
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(c as u64);
            let mut pages = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let viewer = viewers[rng.random_range(0..viewers.len())];
                let page = Instant::now();
                for view in ["liabilities", "installments", "payments"] {
                    let response = client
                        .get(format!("{base}/portal/v1/{view}?viewer={viewer}"))
                        .bearer_auth(TOKEN)
                        .send()
                        .await
                        .unwrap();
                    assert!(response.status().is_success(), "{}", response.status());
                    response.bytes().await.unwrap();
                }
                pages.push(page.elapsed().as_secs_f64());
            }
            pages
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    let seconds = started.elapsed().as_secs_f64();
    all.sort_by(f64::total_cmp);
    (all.len() as f64 / seconds, quantile(&all, 0.99), all.len())
}

/// The town's ledger with every amount one grosz more: a sync that rewrites every row.
fn changed_ledger(data: &Path, to: &Path) {
    let text = std::fs::read_to_string(data.join("ledger.csv")).unwrap();
    let mut out = String::with_capacity(text.len() + 1024);
    for (i, line) in text.lines().enumerate() {
        if i == 0 {
            out.push_str(line);
        } else {
            let (head, amount) = line.rsplit_once(';').unwrap();
            let gr = eurzad::registers::money(amount, false).unwrap();
            let gr = if gr < 0 { gr - 1 } else { gr + 1 };
            out.push_str(&format!(
                "{head};{}",
                eurzad::registers::zloty(gr).trim_end_matches(" zł")
            ));
        }
        out.push('\n');
    }
    std::fs::write(to, out).unwrap();
}

async fn sync_ledger(store: &Store, path: &Path) -> f64 {
    let started = Instant::now();
    let outcome = store
        .sync_file(
            register("ledger").unwrap(),
            path,
            SyncMode::Full,
            FileEncoding::Auto,
            "bench",
        )
        .await
        .unwrap();
    // Every run rewrites every row: none is skipped as a file applied before.
    match outcome {
        eurzad::store::registers::SyncOutcome::Applied { counts, .. } => {
            assert!(counts.updated > 0, "{}: {counts:?}", path.display())
        }
        other => panic!("{}: not applied: {other:?}", path.display()),
    }
    started.elapsed().as_secs_f64()
}

/// Keeps a table row for the end, and shows it now (the whole run takes a while).
fn note(table: &mut Vec<String>, row: String) {
    eprintln!("{row}");
    table.push(row);
}

struct Backend {
    name: &'static str,
    url: String,
}

fn main() {
    let sizes: Vec<u32> = std::env::var("EURZAD_BENCH_SIZES")
        .unwrap_or_else(|_| "65000,650000".into())
        .split(',')
        .map(|s| s.trim().parse().unwrap())
        .collect();
    let run_for = Duration::from_secs(
        std::env::var("EURZAD_BENCH_SECONDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(10),
    );
    let backends_wanted =
        std::env::var("EURZAD_BENCH_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".into());
    let wanted = |name: &str| backends_wanted.split(',').any(|b| b.trim() == name);
    // The read API's pool: `[portal] connections`, its default unless told.
    let portal_connections: u32 = std::env::var("EURZAD_BENCH_PORTAL_CONNECTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(eurzad::config::PortalConfig::default().connections);
    let during_sync: usize = std::env::var("EURZAD_BENCH_PORTAL_DURING_SYNC")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(eurzad::config::PortalConfig::default().connections_during_sync);
    let rest: Option<f64> = std::env::var("EURZAD_BENCH_PORTAL_REST")
        .ok()
        .and_then(|v| v.parse().ok());
    eurzad::install_crypto_provider();
    let runtime = eurzad::daemon::runtime().unwrap();
    // The portal's side: its 32 sessions, on a thread of their own.
    let portal_side = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let admin = PgAdmin::from_env();
    let admin_sql = |sql: String| admin.exec(&runtime, sql);
    let mut report: Vec<String> = Vec::new();
    let mut measured: Vec<Measured> = Vec::new();
    let mut pg_names: Vec<String> = Vec::new();
    for &size in &sizes {
        let data = dir.path().join(format!("town-{size}"));
        eurzad::registers::sample::generate(&data, size, 0).unwrap();
        let changed = dir.path().join(format!("ledger-changed-{size}.csv"));
        changed_ledger(&data, &changed);
        let pg_name = format!("eurzad_bench_portal_{}_{size}", std::process::id());
        let mut backends = vec![Backend {
            name: "SQLite",
            url: format!(
                "sqlite://{}?mode=rwc",
                dir.path().join(format!("portal-{size}.db")).display()
            ),
        }];
        if !wanted("sqlite") {
            backends.clear();
        }
        if !wanted("postgres") {
        } else if admin_sql(format!("CREATE DATABASE {pg_name}")) {
            backends.push(Backend {
                name: "PostgreSQL 15",
                url: admin.database_url(&pg_name),
            });
        } else {
            note(
                &mut report,
                format!(
                    "| {size} | PostgreSQL | not reachable at {}: skipped | | |",
                    admin.url
                ),
            );
        }
        for backend in backends {
            runtime.block_on(async {
                let store = Store::connect(&backend.url, 4).await.unwrap();
                let (load_seconds, accounts) = load(&store, &data).await;
                let mut rng = rand::rngs::StdRng::seed_from_u64(size as u64);
                let viewers: Vec<i64> = (0..VIEWERS + 10)
                    .map(|_| accounts[rng.random_range(0..accounts.len())])
                    .collect();
                measured.push(Measured {
                    size,
                    backend: backend.name,
                    url: backend.url.clone(),
                    viewers: viewers.clone(),
                });
                // The read API on loopback, as the daemon starts it: its own pool, thread
                // and runtime. The clients stand for the portal, another program: they run
                // on a runtime of their own too, not on the one that applies the syncs.
                let (stop_server, server_stops) = tokio::sync::watch::channel(false);
                let server = eurzad::portal::start(
                    std::net::TcpListener::bind("127.0.0.1:0").unwrap(),
                    backend.url.clone(),
                    portal_connections,
                    TOKEN.into(),
                    during_sync,
                    rest.unwrap_or(
                        eurzad::config::PortalConfig::default()
                            .rest_during_sync(backend.name == "SQLite"),
                    ),
                    server_stops,
                )
                .await
                .unwrap();
                let base = format!("http://{}", server.addr);
                let all = Arc::new(accounts.clone());
                let stop = Arc::new(AtomicBool::new(false));
                let timer = {
                    let stop = stop.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(run_for).await;
                        stop.store(true, Ordering::Relaxed);
                    })
                };
                let (pages, p99, n) = portal_side.spawn(clients(base.clone(), all.clone(), stop)).await.unwrap();
                timer.await.unwrap();
                note(&mut report, format!(
                    "| {size} | {} | 32 clients, read API | {pages:.0} pages/s ({n} pages) | p99 of a page {} |",
                    backend.name,
                    ms(p99)
                ));
                if size == sizes[0] {
                    // The full ledger sync alone, then under the 32 clients, five rounds
                    // (this VM's speed wanders: medians of interleaved runs), after one
                    // sync alone that is not counted (the first rewrite after a load ran
                    // slower, every time, on SQLite). Back and forth between the two
                    // ledgers, each run rewriting every row; the header's spelling makes each
                    // file new to the run's checksum.
                    let original = std::fs::read_to_string(data.join("ledger.csv")).unwrap();
                    let changed_text = std::fs::read_to_string(&changed).unwrap();
                    let spelled = |text: &str, spelling: usize| {
                        let ids = ["id;", "ID;", "Id;", "iD;"];
                        let years = [";rok;", ";ROK;", ";Rok;"];
                        text.replacen("id;", ids[spelling % 4], 1)
                            .replacen(";rok;", years[spelling / 4], 1)
                    };
                    // Step 0 and every even step apply the changed ledger, odd steps the
                    // original; the original's first spelling is the loaded file itself.
                    let file = |step: usize| {
                        let (text, spelling) = if step.is_multiple_of(2) {
                            (&changed_text, step / 2)
                        } else {
                            (&original, step / 2 + 1)
                        };
                        let path = dir.path().join(format!("ledger-{step}-{size}-{}.csv", backend.name.len()));
                        std::fs::write(&path, spelled(text, spelling)).unwrap();
                        path
                    };
                    const ROUNDS: usize = 5;
                    sync_ledger(&store, &file(0)).await;
                    let (mut alone, mut busy, mut pages_per_s, mut p99s, mut pages) = (vec![], vec![], vec![], vec![], 0);
                    for round in 0..ROUNDS {
                        alone.push(sync_ledger(&store, &file(2 * round + 1)).await);
                        // The pages counted are those read while the sync ran.
                        let stop = Arc::new(AtomicBool::new(false));
                        let readers_task = portal_side.spawn(clients(base.clone(), all.clone(), stop.clone()));
                        busy.push(sync_ledger(&store, &file(2 * round + 2)).await);
                        stop.store(true, Ordering::Relaxed);
                        let (rate, p99, n) = readers_task.await.unwrap();
                        pages_per_s.push(rate);
                        p99s.push(p99);
                        pages += n;
                    }
                    let median = |mut v: Vec<f64>| {
                        v.sort_by(f64::total_cmp);
                        v[v.len() / 2]
                    };
                    let ratios: Vec<f64> = busy.iter().zip(&alone).map(|(b, a)| b / a).collect();
                    let range = |v: &[f64]| {
                        let (lo, hi) = v.iter().fold((f64::MAX, f64::MIN), |(lo, hi), x| (lo.min(*x), hi.max(*x)));
                        format!("{lo:.2}–{hi:.2}")
                    };
                    let (busy_s, alone_s) = (median(busy.clone()), median(alone.clone()));
                    note(&mut report, format!(
                        "| {size} | {} | 32 clients during a full ledger sync (median of {ROUNDS}) | {:.0} pages/s ({pages} pages), p99 of a page {} (rounds {}) | sync {busy_s:.2} s with readers, {alone_s:.2} s alone: {:.2}× (round by round {}×) |",
                        backend.name,
                        median(pages_per_s),
                        ms(median(p99s.clone())),
                        p99s.iter().map(|p| format!("{:.0}", p * 1000.0)).collect::<Vec<_>>().join(", ") + " ms",
                        busy_s / alone_s,
                        range(&ratios),
                    ));
                }
                note(&mut report, format!(
                    "| {size} | {} | first load of every register | {load_seconds:.1} s | |",
                    backend.name
                ));
                stop_server.send(true).unwrap();
                server.ended.await.ok();
                store.close().await;
            });
        }
        pg_names.push(pg_name);
        std::fs::remove_dir_all(&data).ok();
    }
    let figures = runtime.block_on(per_view(&measured));
    for name in pg_names {
        admin_sql(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
    }
    println!(
        "\nportal views, one client, one viewer's rows ({VIEWERS} random viewers; the databases \
         take turns)\n"
    );
    println!(
        "| inhabitants | backend | view | median | p99 | rows per viewer | median against the smallest size |\n|---|---|---|---|---|---|---|"
    );
    let views: Vec<&str> = VIEWS.iter().copied().chain([FLOOR]).collect();
    for (m, per_view) in measured.iter().zip(&figures) {
        // The same backend's first size: the ratio issue 16's target is about.
        let first = measured
            .iter()
            .position(|o| o.backend == m.backend)
            .unwrap();
        for ((view, (median, p99, rows)), (base, _, _)) in
            views.iter().zip(per_view).zip(&figures[first])
        {
            println!(
                "| {} | {} | {view} | {} | {} | {rows:.1} | {:.2}× |",
                m.size,
                m.backend,
                ms(*median),
                ms(*p99),
                median / base
            );
        }
    }
    println!("\nthe read API under load\n");
    println!("| inhabitants | backend | what | figure | |\n|---|---|---|---|---|");
    for line in report {
        println!("{line}");
    }
}
