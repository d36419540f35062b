//! Acceptance: the daemon drains two boxes of 150 documents each from the emulator running as
//! a separate process over loopback, with 10% injected faults (HTTP 500, SOAP faults, dropped
//! connections, slow answers). Every document is stored exactly once, byte for byte, and
//! every one is confirmed. Runs on SQLite, or on PostgreSQL with EURZAD_TEST_POSTGRES_URL.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use sha2::{Digest, Sha256};

const BOXES: [(&str, &str, &str); 2] = [
    ("urzad_testowy", "skrytka", "/urzad_testowy/skrytka"),
    ("urzad_testowy", "podawcza", "/urzad_testowy/podawcza"),
];
const PER_BOX: u64 = 150;

#[tokio::test(flavor = "multi_thread")]
async fn drains_two_boxes_exactly_once_despite_faults() {
    let dir = tempfile::tempdir().unwrap();
    let emulator = EmulatorProcess::start(
        &dir.path().join("emulator"),
        &BOXES,
        &[
            "--fault-rate",
            "0.1",
            "--seed",
            "20261126",
            "--slow-delay",
            "1500ms",
        ],
    );
    let mut expected = HashMap::new();
    for (b, (_, _, adres)) in BOXES.iter().enumerate() {
        for n in 0..PER_BOX {
            let content = content_for(n + 1000 * b as u64, 7);
            emulator
                .add_document(adres, &format!("dok-{b}-{n}.xml"), &content)
                .await;
            expected.insert(hex::encode(Sha256::digest(&content)), content);
        }
    }
    let db = test_database(dir.path()).await;
    let config = daemon_config(
        dir.path(),
        &db.url,
        &emulator.url,
        &BOXES,
        "request_timeout = \"1s\"",
    );

    let stdout = run_once_ok(&config, db.kind);
    assert_stored_exactly_once(&db.url, &expected, db.kind).await;

    let counters = emulator.counters().await;
    assert_eq!(counters["confirmed"], 2 * PER_BOX, "{counters}");
    for (_, _, adres) in BOXES {
        assert_eq!(counters["pending"][adres], 0, "{counters}");
    }
    let injected = counters["injected_faults"].as_u64().unwrap();
    assert!(injected >= 30, "the run met real faults: {counters}");
    println!("{} on {}: {counters}", stdout.trim(), db.kind);
}

/// The durable store itself, on the backend under test (SQLite's goes through its C API):
/// every field of the document as given, one `verify` job, and a document delivered again
/// counted on its row instead of stored twice. Through `Store::store_pulled`.
#[tokio::test(flavor = "multi_thread")]
async fn a_stored_document_keeps_every_field_and_a_second_delivery_is_counted() {
    stored_fields(false).await;
}

/// The same through a box task's own writer (on SQLite a connection of its own with its
/// statements prepared once), and its confirmation marks.
#[tokio::test(flavor = "multi_thread")]
async fn a_box_writer_stores_every_field_once_and_marks_confirmations() {
    stored_fields(true).await;
}

async fn stored_fields(through_writer: bool) {
    use eurzad::document::{PulledDocument, SenderData, SubjectData};
    let dir = tempfile::tempdir().unwrap();
    let db = test_database(dir.path()).await;
    let url = db.creating_url();
    let store = eurzad::store::Store::connect(&url, 2).await.unwrap();
    store.migrate().await.unwrap();
    // Deliveries and confirmations never update the document's own row: on SQLite that
    // would rewrite the whole row, content included.
    let pool = any_pool(&db.url).await;
    for sql in refuse(
        db.kind,
        "inbound_document",
        "UPDATE",
        "a stored document is written once",
    ) {
        exec(&pool, &sql).await;
    }
    let document = PulledDocument {
        dane_podmiotu: SubjectData {
            identyfikator: "jan.kowalski".into(),
            typ_osoby: "F".into(),
            imie_skrot: Some("Jan".into()),
            nazwisko_nazwa: Some("Kowalski-Żółć".into()),
            nip: None,
            pesel: Some("44051401359".into()),
            regon: None,
            zgoda: true,
        },
        dane_nadawcy: SenderData {
            uzytkownik: Some("jan.kowalski".into()),
            system: None,
        },
        data_nadania: "2026-11-27T10:00:00.000+01:00".into(),
        nazwa_skrytki: "skrytka".into(),
        adres_skrytki: "/urzad_testowy/skrytka".into(),
        adres_odpowiedzi: Some("/jan.kowalski/skrytka".into()),
        czy_testowe: false,
        dane_dodatkowe: b"<extra/>".to_vec(),
        nazwa_pliku: "pismo.xml".into(),
        typ_pliku: None,
        content: (0..=255u8).collect(),
    };
    let adres = "/urzad_testowy/skrytka";
    let mut writer = store.inbox_writer().await.unwrap();
    let mut store_pulled = async |document: &PulledDocument| {
        if through_writer {
            writer.store_pulled(adres, document, "c2tyb3Q=").await
        } else {
            store.store_pulled(adres, document, "c2tyb3Q=").await
        }
        .unwrap()
    };
    let first = store_pulled(&document).await;
    assert!(first.new);
    let again = store_pulled(&document).await;
    assert_eq!((again.id, again.new), (first.id, false));
    let second = store_pulled(&PulledDocument {
        data_nadania: "2026-11-27T10:05:00.000+01:00".into(),
        ..document.clone()
    })
    .await;
    assert!(second.new && second.id != first.id);
    if through_writer {
        // The first is confirmed; the second is inferred once the head moved past it, and
        // inferred once only.
        writer.mark_confirmed(first.id).await.unwrap();
        assert_eq!(
            writer.infer_confirmed(adres, Some(first.id)).await.unwrap(),
            1
        );
        assert_eq!(writer.infer_confirmed(adres, None).await.unwrap(), 0);
        writer.mark_confirmed(second.id).await.unwrap();
    }
    drop(writer);
    store.close().await;

    let row = sqlx::query(
        "SELECT podmiot_identyfikator, podmiot_imie_skrot, podmiot_nazwisko_nazwa, podmiot_nip, podmiot_pesel, \
         CAST(podmiot_zgoda AS INTEGER), nadawca_uzytkownik, nadawca_system, data_nadania, adres_odpowiedzi, \
         CAST(czy_testowe AS INTEGER), dane_dodatkowe, nazwa_pliku, typ_pliku, content, content_sha256, skrot, pull_count \
         FROM inbound_document LEFT JOIN inbound_delivery ON document_id = id ORDER BY id",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    use sqlx::Row;
    let text = |i: usize| row.get::<Option<String>, _>(i);
    assert_eq!(text(0).as_deref(), Some("jan.kowalski"));
    assert_eq!(text(1).as_deref(), Some("Jan"));
    assert_eq!(text(2).as_deref(), Some("Kowalski-Żółć"));
    assert_eq!(text(3), None);
    assert_eq!(text(4).as_deref(), Some("44051401359"));
    assert_eq!(row.get::<i64, _>(5), 1);
    assert_eq!(text(6).as_deref(), Some("jan.kowalski"));
    assert_eq!(text(7), None);
    assert_eq!(text(8).as_deref(), Some("2026-11-27T10:00:00.000+01:00"));
    assert_eq!(text(9).as_deref(), Some("/jan.kowalski/skrytka"));
    assert_eq!(row.get::<i64, _>(10), 0);
    assert_eq!(row.get::<Vec<u8>, _>(11), b"<extra/>");
    assert_eq!(text(12).as_deref(), Some("pismo.xml"));
    assert_eq!(text(13), None);
    assert_eq!(row.get::<Vec<u8>, _>(14), document.content);
    assert_eq!(
        text(15).unwrap(),
        hex::encode(Sha256::digest(&document.content))
    );
    assert_eq!(text(16).as_deref(), Some("c2tyb3Q="));
    assert_eq!(row.get::<i64, _>(17), 2, "delivered twice, stored once");
    let jobs: Vec<String> = sqlx::query_scalar("SELECT kind FROM job")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(jobs, ["verify", "verify"]);
    let confirmations: Vec<Option<String>> =
        sqlx::query_scalar("SELECT confirmation FROM inbound_delivery ORDER BY document_id")
            .fetch_all(&pool)
            .await
            .unwrap();
    let expected = if through_writer {
        vec![Some("confirmed".to_string()), Some("inferred".to_string())]
    } else {
        vec![None, None]
    };
    assert_eq!(
        confirmations, expected,
        "a later mark does not overwrite the first"
    );
    // The receipt time reads back as the timestamp it was written as (both paths write
    // sqlx's own text form on SQLite).
    let store = eurzad::store::Store::connect(&url, 2).await.unwrap();
    let facts = store.provision_facts(first.id).await.unwrap();
    assert!((chrono::Utc::now() - facts.stored_at).num_seconds().abs() < 60);
    store.close().await;
}

/// On SQLite a box task's writer tries the write lock without waiting, so as not to hold up
/// the async worker. While another writer (a register run) holds the lock, it waits for it
/// off the worker and then stores: it neither fails nor gets ahead of the other's commit.
#[tokio::test(flavor = "multi_thread")]
async fn a_box_writer_waits_for_another_writers_lock_and_then_stores() {
    use eurzad::document::{PulledDocument, SubjectData};
    use sqlx::Connection;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("w.db").display());
    let store = eurzad::store::Store::connect(&url, 2).await.unwrap();
    store.migrate().await.unwrap();
    let mut writer = store.inbox_writer().await.unwrap();

    let mut other = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut other)
        .await
        .unwrap();
    let held = std::time::Duration::from_millis(400);
    let release = tokio::spawn(async move {
        tokio::time::sleep(held).await;
        let committing = std::time::Instant::now();
        sqlx::query("COMMIT").execute(&mut other).await.unwrap();
        committing
    });

    let started = std::time::Instant::now();
    let document = PulledDocument {
        dane_podmiotu: SubjectData {
            identyfikator: "jan".into(),
            typ_osoby: "F".into(),
            ..Default::default()
        },
        dane_nadawcy: Default::default(),
        data_nadania: "2026-11-27T10:00:00.000Z".into(),
        nazwa_skrytki: "skrytka".into(),
        adres_skrytki: "/urzad_testowy/skrytka".into(),
        adres_odpowiedzi: None,
        czy_testowe: false,
        dane_dodatkowe: vec![],
        nazwa_pliku: "a.xml".into(),
        typ_pliku: None,
        content: b"<a/>".to_vec(),
    };
    let stored = writer
        .store_pulled("/urzad_testowy/skrytka", &document, "x")
        .await
        .expect("stored once the lock was free");
    let stored_at = std::time::Instant::now();
    let committing = release.await.unwrap();
    assert!(stored.new);
    assert!(
        stored_at > committing && stored_at - started >= held,
        "the store waited for the other writer's commit"
    );
}

/// One box in an emulator of its own process, the database under test, and a daemon
/// configuration for them: (the folder that holds it all, the box's address, the emulator,
/// the database, the configuration file, the daemon's log file).
async fn one_box() -> (
    tempfile::TempDir,
    &'static str,
    EmulatorProcess,
    TestDatabase,
    std::path::PathBuf,
    std::path::PathBuf,
) {
    let dir = tempfile::tempdir().unwrap();
    let boxes = [BOXES[0]];
    let emulator = EmulatorProcess::start(&dir.path().join("emulator"), &boxes, &[]);
    let db = test_database(dir.path()).await;
    let config = daemon_config(dir.path(), &db.url, &emulator.url, &boxes, "");
    let log = dir.path().join("daemon.log");
    (dir, boxes[0].2, emulator, db, config, log)
}

/// SIGTERM while a document is in flight: the daemon finishes that document (stores it and
/// confirms it), pulls no other, and exits cleanly. The `pobierzNastepny` answer is held back
/// for 1.5 s by the emulator, and the signal arrives while the daemon waits for it.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_finishes_the_document_in_flight_and_pulls_no_more() {
    let (_dir, adres, emulator, db, config, log) = one_box().await;
    for n in 0..3u64 {
        emulator
            .add_document(adres, &format!("{n}.xml"), &content_for(n, 4))
            .await;
    }
    emulator
        .add_fault(serde_json::json!({
            "kind": "slow", "operation": "pobierzNastepny", "count": 1, "delay_ms": 1500,
        }))
        .await;
    let mut daemon = spawn_daemon(&config, &log);
    // The emulator counts a delivery when it has taken the head, before the held answer.
    wait_until(
        Duration::from_secs(30),
        "the first pobierzNastepny",
        || async { emulator.counters().await["delivered"].as_u64() == Some(1) },
    )
    .await;
    let status = stop_with_sigterm(&mut daemon, Duration::from_secs(20)).await;
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        status.success(),
        "clean exit on SIGTERM: {status}\n{logged}"
    );

    let counters = emulator.counters().await;
    assert_eq!(
        counters["delivered"], 1,
        "no pull after the stop: {counters}"
    );
    assert_eq!(
        counters["confirmed"], 1,
        "the document in flight was confirmed: {counters}"
    );
    let rows = stored_rows(&db.url).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].nazwa_pliku, "0.xml");
    assert_eq!(rows[0].content, content_for(0, 4));
    assert!(rows[0].confirmed, "marked confirmed before the exit");
}

/// The database refuses writes for a while, and the daemon keeps running through it.
/// First the inbox's transaction fails at its last statement (the `verify` job): the whole
/// transaction is rolled back, so the document is neither stored nor confirmed, and it is
/// pulled again until the store works. Then the job queue refuses updates: the job worker
/// logs it and carries on, and the document's job is done once the queue works again.
#[tokio::test(flavor = "multi_thread")]
async fn a_failing_database_confirms_nothing_and_stops_no_worker() {
    let (_dir, adres, emulator, db, config, log) = one_box().await;
    let mut daemon = spawn_daemon(&config, &log);
    wait_until(Duration::from_secs(30), "the daemon's tables", || async {
        try_stored_rows(&db.url).await.is_some()
    })
    .await;
    let pool = any_pool(&db.url).await;
    let logged = |needle: &'static str, times: usize| {
        let log = log.clone();
        move || {
            let log = log.clone();
            async move {
                std::fs::read_to_string(&log)
                    .unwrap_or_default()
                    .matches(needle)
                    .count()
                    >= times
            }
        }
    };

    for sql in refuse(db.kind, "job", "INSERT", "job table closed for the test") {
        exec(&pool, &sql).await;
    }
    emulator
        .add_document(adres, "a.xml", &content_for(1, 6))
        .await;
    wait_until(
        Duration::from_secs(30),
        "two failed stores",
        logged("job table closed for the test", 2),
    )
    .await;
    assert!(daemon.try_wait().unwrap().is_none(), "still running");
    let counters = emulator.counters().await;
    assert_eq!(counters["confirmed"], 0, "nothing confirmed: {counters}");
    assert!(
        stored_rows(&db.url).await.is_empty(),
        "the rolled-back transaction left no document"
    );

    // Now the inbox can store, and the job queue cannot take the job.
    exec(&pool, &drop_refusal(db.kind, "job", "INSERT")).await;
    for sql in refuse(db.kind, "job", "UPDATE", "job table closed for the test") {
        exec(&pool, &sql).await;
    }
    wait_until(Duration::from_secs(30), "the document stored", || async {
        stored_rows(&db.url).await.iter().any(|r| r.confirmed)
    })
    .await;
    wait_until(
        Duration::from_secs(30),
        "the job worker's failure",
        logged("the job queue failed", 1),
    )
    .await;
    exec(&pool, &drop_refusal(db.kind, "job", "UPDATE")).await;
    wait_until(
        Duration::from_secs(30),
        "the document's job done",
        || async {
            sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM job WHERE kind = 'verify' AND status = 'done'",
            )
            .fetch_one(&pool)
            .await
            .unwrap()
                == 1
        },
    )
    .await;

    let rows = stored_rows(&db.url).await;
    assert_eq!(rows.len(), 1, "stored once: {rows:?}");
    assert_eq!(rows[0].content, content_for(1, 6));
    let counters = emulator.counters().await;
    assert_eq!(counters["confirmed"], 1, "confirmed once: {counters}");
    let status = stop_with_sigterm(&mut daemon, Duration::from_secs(20)).await;
    assert!(status.success(), "clean exit: {status}");
}

/// The inbox writes through a connection of its own, so its database must be a file: an
/// in-memory SQLite database (which another connection would not see) is refused with a
/// message that says so, before anything is pulled.
#[tokio::test(flavor = "multi_thread")]
async fn an_in_memory_sqlite_database_is_refused_for_the_inbox() {
    let store = eurzad::store::Store::connect("sqlite::memory:", 1)
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let error = match store.inbox_writer().await {
        Ok(_) => panic!("an in-memory database was accepted"),
        Err(error) => error.to_string(),
    };
    assert!(error.contains("needs a database file"), "{error}");
}

/// Migration 0013 moves each document's delivery record (pull count, confirmation) out of
/// `inbound_document` into `inbound_delivery`, keeping every value, and the inbox goes on
/// from where it was: an unconfirmed document from before the upgrade is still found.
#[tokio::test(flavor = "multi_thread")]
async fn migration_0013_moves_the_delivery_records_beside_their_documents() {
    let dir = tempfile::tempdir().unwrap();
    let db = test_database(dir.path()).await;
    let url = db.creating_url();
    if db.kind == "sqlite" {
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        sqlx::migrate!("./migrations/sqlite")
            .run_to(12, &pool)
            .await
            .unwrap();
        pool.close().await;
    } else {
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        sqlx::migrate!("./migrations/postgres")
            .run_to(12, &pool)
            .await
            .unwrap();
        pool.close().await;
    }
    let pool = any_pool(&db.url).await;
    let blob = if db.kind == "sqlite" {
        "X'3C613E'"
    } else {
        "'\\x3c613e'::bytea"
    };
    // Before 0013: one document confirmed, one delivered twice and not confirmed.
    for (key, pull_count, confirmed_at, confirmation) in [
        ("k1", 1, "'2026-11-27T10:01:00Z'", "'confirmed'"),
        ("k2", 2, "NULL", "NULL"),
    ] {
        exec(
            &pool,
            &format!(
                "INSERT INTO inbound_document (identity_key, box_address, podmiot_identyfikator, \
                 podmiot_typ_osoby, podmiot_zgoda, data_nadania, nazwa_skrytki, adres_skrytki, czy_testowe, \
                 dane_dodatkowe, nazwa_pliku, content, content_sha256, skrot, received_at, pull_count, \
                 confirmed_at, confirmation) VALUES ('{key}', '/u/s', 'jan', 'F', TRUE, \
                 '2026-11-27T10:00:00Z', 's', '/u/s', FALSE, {blob}, 'a.xml', {blob}, 'x', 'x', \
                 '2026-11-27T10:00:00Z', {pull_count}, {confirmed_at}, {confirmation})"
            ),
        )
        .await;
    }
    let store = eurzad::store::Store::connect(&url, 2).await.unwrap();
    store.migrate().await.unwrap();

    use sqlx::Row;
    let rows: Vec<(i64, String, i64, bool, Option<String>)> = sqlx::query(
        "SELECT document_id, box_address, CAST(pull_count AS BIGINT), \
         CASE WHEN confirmed_at IS NULL THEN 0 ELSE 1 END, confirmation \
         FROM inbound_delivery ORDER BY document_id",
    )
    .fetch_all(&pool)
    .await
    .unwrap()
    .iter()
    .map(|r| {
        (
            r.get(0),
            r.get(1),
            r.get(2),
            r.get::<i32, _>(3) == 1,
            r.get(4),
        )
    })
    .collect();
    assert_eq!(
        rows,
        [
            (
                1,
                "/u/s".to_string(),
                1,
                true,
                Some("confirmed".to_string())
            ),
            (2, "/u/s".to_string(), 2, false, None),
        ]
    );
    let gone = sqlx::query("SELECT pull_count FROM inbound_document")
        .fetch_all(&pool)
        .await;
    assert!(gone.is_err(), "inbound_document keeps no delivery columns");
    let content: Vec<u8> = sqlx::query_scalar("SELECT content FROM inbound_document WHERE id = 2")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(content, b"<a>");
    // The inbox takes up the unconfirmed document from before the upgrade.
    let mut writer = store.inbox_writer().await.unwrap();
    assert_eq!(writer.infer_confirmed("/u/s", None).await.unwrap(), 1);
    drop(writer);
    store.close().await;
    pool.close().await;
}

/// SQL that makes the database refuse `event` (INSERT or UPDATE) on `table` with `message`,
/// per backend (`kind` is "sqlite" or "postgres").
fn refuse(kind: &str, table: &str, event: &str, message: &str) -> Vec<String> {
    if kind == "sqlite" {
        vec![format!(
            "CREATE TRIGGER refuse_{event} BEFORE {event} ON {table} \
             BEGIN SELECT RAISE(ABORT, '{message}'); END"
        )]
    } else {
        vec![
            format!(
                "CREATE OR REPLACE FUNCTION refuse_{event}() RETURNS trigger LANGUAGE plpgsql AS \
                 $$ BEGIN RAISE EXCEPTION '{message}'; END $$"
            ),
            format!(
                "CREATE TRIGGER refuse_{event} BEFORE {event} ON {table} \
                 FOR EACH ROW EXECUTE FUNCTION refuse_{event}()"
            ),
        ]
    }
}

/// SQL that lifts [`refuse`].
fn drop_refusal(kind: &str, table: &str, event: &str) -> String {
    if kind == "sqlite" {
        format!("DROP TRIGGER refuse_{event}")
    } else {
        format!("DROP TRIGGER refuse_{event} ON {table}")
    }
}
