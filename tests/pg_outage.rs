//! PostgreSQL drops eurzad's connections again and again while it drains (as a failover, a
//! restart or a network cut would): every session of the daemon is terminated with
//! `pg_terminate_backend` every 25 ms, in the middle of stores, confirmations and job steps.
//! Every document still arrives exactly once, byte for byte, confirmed; every job finishes,
//! and none is counted as failed because of a cut (it gets its attempt back); and the daemon
//! keeps running and exits cleanly on SIGTERM.
//!
//! PostgreSQL only (EURZAD_TEST_POSTGRES_URL, as `.ci/run` sets it): SQLite has no
//! connections to cut. Without it the test says so and checks nothing.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use sha2::{Digest, Sha256};

const BOX: (&str, &str, &str) = ("urzad_testowy", "skrytka", "/urzad_testowy/skrytka");
const DOCUMENTS: u64 = 100;

#[tokio::test(flavor = "multi_thread")]
async fn cut_database_connections_lose_and_duplicate_nothing() {
    if std::env::var("EURZAD_TEST_POSTGRES_URL").is_err() {
        eprintln!("PostgreSQL only: set EURZAD_TEST_POSTGRES_URL (.ci/run does)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let emulator = EmulatorProcess::start(&dir.path().join("emulator"), &[BOX], &[]);
    let mut expected = HashMap::new();
    for n in 0..DOCUMENTS {
        let content = content_for(n + 7000, 11);
        emulator
            .add_document(BOX.2, &format!("dok-{n}.xml"), &content)
            .await;
        expected.insert(hex::encode(Sha256::digest(&content)), content);
    }
    let db = test_database(dir.path()).await;
    assert_eq!(db.kind, "postgres");
    let config = daemon_config(dir.path(), &db.url, &emulator.url, &[BOX], "");
    let log = dir.path().join("daemon.log");
    let mut daemon = spawn_daemon(&config, &log);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        daemon.try_wait().unwrap().is_none(),
        "the daemon started:\n{}",
        std::fs::read_to_string(&log).unwrap()
    );

    // The cutter: a connection of its own (the same role may end its own sessions) that
    // ends every other session on the test database, until the drain is done.
    let cut = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let cutter = {
        let url = db.url.clone();
        let cut = cut.clone();
        tokio::spawn(async move {
            let mut own = None;
            loop {
                tokio::time::sleep(Duration::from_millis(25)).await;
                if own.is_none() {
                    own = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
                        .await
                        .ok();
                }
                let Some(connection) = own.as_mut() else {
                    continue;
                };
                let ended: Result<i64, _> = sqlx::query_scalar(
                    "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                     WHERE datname = current_database() AND pid <> pg_backend_pid()) AS ended",
                )
                .fetch_one(&mut *connection)
                .await;
                match ended {
                    Ok(n) => {
                        cut.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                    }
                    Err(_) => own = None,
                }
            }
        })
    };

    wait_until(
        Duration::from_secs(180),
        "every document stored and confirmed despite the cuts",
        || {
            let url = db.url.clone();
            async move {
                let rows = try_stored_rows(&url).await.unwrap_or_default();
                rows.len() as u64 >= DOCUMENTS && rows.iter().all(|r| r.confirmed)
            }
        },
    )
    .await;
    // Let a few more cuts land on the job worker, then stop cutting and let it finish.
    tokio::time::sleep(Duration::from_secs(2)).await;
    cutter.abort();
    wait_until(
        Duration::from_secs(120),
        "every job done once the connections stay",
        || {
            let url = db.url.clone();
            async move {
                let Ok(mut connection) =
                    <sqlx::PgConnection as sqlx::Connection>::connect(&url).await
                else {
                    return false;
                };
                let open: Result<i64, _> = sqlx::query_scalar(
                    "SELECT count(*) FROM job WHERE status IN ('pending', 'running')",
                )
                .fetch_one(&mut connection)
                .await;
                matches!(open, Ok(0))
            }
        },
    )
    .await;
    assert!(
        daemon.try_wait().unwrap().is_none(),
        "the daemon kept running through the cuts"
    );

    assert_stored_exactly_once(&db.url, &expected, db.kind).await;
    let counters = emulator.counters().await;
    assert_eq!(counters["confirmed"], DOCUMENTS, "{counters}");
    assert_eq!(counters["pending"][BOX.2], 0, "{counters}");
    let mut connection = <sqlx::PgConnection as sqlx::Connection>::connect(&db.url)
        .await
        .unwrap();
    let failed: i64 = sqlx::query_scalar("SELECT count(*) FROM job WHERE status = 'failed'")
        .fetch_one(&mut connection)
        .await
        .unwrap();
    assert_eq!(failed, 0, "no job failed for good");
    let cut = cut.load(std::sync::atomic::Ordering::Relaxed);
    let text = std::fs::read_to_string(&log).unwrap();
    let met = text
        .matches("terminating connection due to administrator command")
        .count();
    println!("{cut} sessions ended; the daemon met {met} of the cuts");
    assert!(cut >= 10, "the test ended sessions: {cut}");
    assert!(met >= 1, "the daemon met the cuts and logged them:\n{text}");
    // A job whose step met a cut gets its attempt back: none is counted as failed by it.
    let counted = text
        .lines()
        .filter(|l| l.contains("job failed") && l.contains("terminating connection"))
        .count();
    assert_eq!(counted, 0, "outages are not the jobs' failures:\n{text}");
    let status = stop_with_sigterm(&mut daemon, Duration::from_secs(15)).await;
    assert!(status.success(), "clean exit on SIGTERM: {status}");
}

/// The portal's read API takes its idle connections without checking them first (a round
/// trip per read). Every one of them is ended while idle, as a restart of the database
/// would: the next reads still answer, each on a connection opened again, and none is
/// answered with an error.
#[tokio::test(flavor = "multi_thread")]
async fn portal_reads_go_on_after_their_idle_connections_are_cut() {
    if std::env::var("EURZAD_TEST_POSTGRES_URL").is_err() {
        eprintln!("PostgreSQL only: set EURZAD_TEST_POSTGRES_URL (.ci/run does)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = test_database(dir.path()).await;
    assert_eq!(db.kind, "postgres");
    let store = eurzad::store::Store::connect(&db.url, 1).await.unwrap();
    store.migrate().await.unwrap();
    store.close().await;
    const CONNECTIONS: u32 = 4;
    let (stop, stops) = tokio::sync::watch::channel(false);
    let api = eurzad::portal::start(
        std::net::TcpListener::bind("127.0.0.1:0").unwrap(),
        db.url.clone(),
        CONNECTIONS,
        "a-portal-token-of-some-length".into(),
        1,
        0.0,
        stops,
    )
    .await
    .unwrap();
    eurzad::install_crypto_provider();
    let http = reqwest::Client::new();
    let read = |viewer: usize| {
        let request = http
            .get(format!(
                "http://{}/portal/v1/liabilities?viewer={viewer}",
                api.addr
            ))
            .bearer_auth("a-portal-token-of-some-length");
        async move {
            let answer = request.send().await.unwrap();
            (answer.status().as_u16(), answer.text().await.unwrap())
        }
    };
    let api_sessions = |url: String| async move {
        let mut connection = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
            .await
            .unwrap();
        // The cut: every other session on the test database, which are the API's.
        let ended: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()) AS ended",
        )
        .fetch_one(&mut connection)
        .await
        .unwrap();
        // Until they are gone.
        for _ in 0..100 {
            let left: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE datname = current_database() AND pid <> pg_backend_pid()",
            )
            .fetch_one(&mut connection)
            .await
            .unwrap();
            if left == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        ended
    };
    let at_once = |reads: Vec<_>| async move {
        let mut set = tokio::task::JoinSet::new();
        for read in reads {
            set.spawn(read);
        }
        set.join_all().await
    };
    // Reads at once, so that the pool opens all its connections.
    let first = at_once((1..=16).map(read).collect()).await;
    assert!(
        first
            .iter()
            .all(|(status, body)| *status == 200 && body == "[]"),
        "{first:?}"
    );
    let ended = api_sessions(db.url.clone()).await;
    assert!(ended >= 2, "the API held connections to cut: {ended}");
    let after = at_once((1..=16).map(read).collect()).await;
    assert!(
        after
            .iter()
            .all(|(status, body)| *status == 200 && body == "[]"),
        "every read after the cut answers: {after:?}"
    );
    stop.send(true).unwrap();
    api.ended.await.ok();
    // The API's connections plan a statement once for every viewer (docs/schema.md).
    let readers = eurzad::store::Store::connect_for_reads(&db.url, 1)
        .await
        .unwrap();
    let eurzad::store::Store::Postgres(pool) = &readers else {
        unreachable!("a PostgreSQL test")
    };
    let mode: String = sqlx::query_scalar("SHOW plan_cache_mode")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(mode, "force_generic_plan");
    readers.close().await;
}
