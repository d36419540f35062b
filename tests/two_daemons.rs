//! Two daemons share one database and its job queue (a supported set-up on PostgreSQL), while
//! ePUAP's `nadaj` answers slowly (issue 15, point 3). A worker claims a batch of jobs under a
//! lease shorter than the batch takes; before the claims named their owner and were renewed,
//! the other daemon took over the batch's tail while the first still ran it, and letters went
//! out twice (188 of 300 letters here on that code). Now every letter reaches the emulator's
//! outbox exactly once; with one daemon SIGKILLed halfway, the other finishes its work, and
//! the letter whose `nadaj` the kill interrupted is held for an official, not sent again: no
//! letter reaches ePUAP twice.

mod common;

use std::time::Duration;

use base64::Engine;
use common::*;
use sqlx::Row;

const BOX_A: (&str, &str, &str) = ("urzad_testowy", "skrytka", "/urzad_testowy/skrytka");
const BOX_B: (&str, &str, &str) = ("urzad_testowy", "druga", "/urzad_testowy/druga");
const REPLIES: usize = 300;

fn pesel(n: usize) -> String {
    nth_pesel(7_001_010_000, n)
}

/// An unsigned access request: refused at once, so each needs a reply letter and no official.
fn unsigned_request(n: usize) -> Vec<u8> {
    String::from_utf8(std::fs::read(fixture("forms/wniosek-dla-siebie.xml")).unwrap())
        .unwrap()
        .replace("85031412347", &pesel(n))
        .into_bytes()
}

struct Office {
    emulator: EmulatorProcess,
    db: TestDatabase,
    configs: [std::path::PathBuf; 2],
    dir: tempfile::TempDir,
}

/// The emulator with `REPLIES` unsigned requests in box A and `nadaj` answering after
/// 200 ms; one database; two daemon configurations on it with a 1 s lease (a batch of 32
/// replies takes over 6 s), one pulling box A, the other the empty box B.
async fn office() -> Option<Office> {
    if std::env::var_os("EURZAD_TEST_POSTGRES_URL").is_none() {
        // Several daemons on one database is a PostgreSQL set-up (docs/inbox.md); `.ci/run`
        // runs this file in its PostgreSQL pass.
        eprintln!("two daemons share a PostgreSQL database: set EURZAD_TEST_POSTGRES_URL");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let emulator = EmulatorProcess::start(&dir.path().join("emulator"), &[BOX_A, BOX_B], &[]);
    for n in 0..REPLIES {
        emulator
            .add_document_json(serde_json::json!({
                "adres_skrytki": BOX_A.2,
                "nazwa_pliku": format!("wniosek-{n:03}.xml"),
                "content": base64::engine::general_purpose::STANDARD.encode(unsigned_request(n)),
                "adres_odpowiedzi": format!("/osoba{n}/skrytka"),
                "dane_nadawcy": {"uzytkownik": format!("osoba{n}"), "system": null},
            }))
            .await;
    }
    emulator
        .add_fault(serde_json::json!({"kind": "slow", "operation": "nadaj", "probability": 1.0, "delay_ms": 200}))
        .await;
    let db = test_database(dir.path()).await;
    let configs = [("a", BOX_A), ("b", BOX_B)].map(|(name, mailbox)| {
        let folder = dir.path().join(name);
        std::fs::create_dir_all(&folder).unwrap();
        let config = daemon_config(&folder, &db.url, &emulator.url, &[mailbox], "");
        let text = std::fs::read_to_string(&config)
            .unwrap()
            .replace("lease = \"3s\"", "lease = \"1s\"");
        std::fs::write(&config, text).unwrap();
        config
    });
    Some(Office {
        emulator,
        db,
        configs,
        dir,
    })
}

/// Letters sent, and letters held for an official after an interrupted send, from the
/// database; none before the daemons have made its tables.
async fn letters(db: &TestDatabase) -> (i64, i64) {
    sqlx::any::install_default_drivers();
    let Ok(pool) = sqlx::AnyPool::connect(&db.url).await else {
        return (0, 0);
    };
    let row = sqlx::query(
        "SELECT CAST(COUNT(*) FILTER (WHERE status = 'sent') AS BIGINT), \
         CAST(COUNT(*) FILTER (WHERE status = 'review_required') AS BIGINT) FROM outbound_document",
    )
    .fetch_one(&pool)
    .await;
    pool.close().await;
    row.map_or((0, 0), |row| (row.get(0), row.get(1)))
}

async fn wait_for_all_letters(db: &TestDatabase, timeout: Duration) {
    wait_until(timeout, "every reply sent or held", || async {
        let (sent, held) = letters(db).await;
        sent + held == REPLIES as i64
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_daemons_send_each_letter_once() {
    let Some(office) = office().await else {
        return;
    };
    let mut daemons = [0, 1].map(|i| {
        spawn_daemon(
            &office.configs[i],
            &office.dir.path().join(format!("daemon-{i}.log")),
        )
    });
    wait_for_all_letters(&office.db, Duration::from_secs(240)).await;
    for daemon in &mut daemons {
        let status = stop_with_sigterm(daemon, Duration::from_secs(20)).await;
        assert!(status.success(), "{status:?}");
    }
    let copies = office.emulator.outbox_copies().await;
    let twice: Vec<_> = copies.iter().filter(|(_, n)| **n > 1).collect();
    assert_eq!(copies.len(), REPLIES, "a letter to every applicant");
    assert!(twice.is_empty(), "letters sent more than once: {twice:?}");
    assert_eq!(
        letters(&office.db).await,
        (REPLIES as i64, 0),
        "all sent, none held"
    );
    // Both daemons did some of the work (the test exercises sharing the queue).
    for i in 0..2 {
        let log =
            std::fs::read_to_string(office.dir.path().join(format!("daemon-{i}.log"))).unwrap();
        assert!(log.contains("reply sent"), "daemon {i} sent no letter");
        assert!(
            !log.contains("sending again a letter"),
            "daemon {i} resent a letter"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_daemon_killed_halfway_leaves_its_jobs_to_the_other() {
    let Some(office) = office().await else {
        return;
    };
    let mut first = spawn_daemon(&office.configs[0], &office.dir.path().join("daemon-0.log"));
    let mut second = spawn_daemon(&office.configs[1], &office.dir.path().join("daemon-1.log"));
    wait_until(
        Duration::from_secs(240),
        "half the replies sent",
        || async { letters(&office.db).await.0 >= (REPLIES / 2) as i64 },
    )
    .await;
    first.kill().unwrap();
    first.wait().unwrap();
    wait_for_all_letters(&office.db, Duration::from_secs(240)).await;
    let status = stop_with_sigterm(&mut second, Duration::from_secs(20)).await;
    assert!(status.success(), "{status:?}");

    let copies = office.emulator.outbox_copies().await;
    let (sent, held) = letters(&office.db).await;
    assert_eq!(sent + held, REPLIES as i64, "every letter sent or held");
    // One worker per daemon: at most the one letter in flight at the kill is held.
    assert!(held <= 1, "{held} letters held");
    let twice: Vec<_> = copies.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "letters sent more than once: {twice:?}");
    // A held letter may or may not have reached ePUAP before the kill; every other one did.
    assert!(copies.len() as i64 >= sent && copies.len() <= REPLIES);
    println!(
        "SIGKILL halfway on {}: {sent} letters sent, {held} held for an official, none twice",
        office.db.kind
    );
}
