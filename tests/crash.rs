//! Acceptance: the daemon is killed with SIGKILL at random moments while it drains 400
//! documents, and restarted each time. In the end the database holds all 400, with no
//! duplicates and nothing unconfirmed, and the emulator's boxes are empty.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::*;
use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha256};

const BOXES: [(&str, &str, &str); 2] = [
    ("urzad_testowy", "skrytka", "/urzad_testowy/skrytka"),
    ("urzad_testowy", "podawcza", "/urzad_testowy/podawcza"),
];
const TOTAL: u64 = 400;

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_at_random_moments_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let emulator = EmulatorProcess::start(&dir.path().join("emulator"), &BOXES, &[]);
    let mut expected = HashSet::new();
    for n in 0..TOTAL {
        let (_, _, adres) = BOXES[(n % 2) as usize];
        let content = content_for(n, 99);
        expected.insert(hex::encode(Sha256::digest(&content)));
        emulator
            .add_document(adres, &format!("dok-{n}.xml"), &content)
            .await;
    }
    let db = test_database(dir.path()).await;
    let config = daemon_config(dir.path(), &db.url, &emulator.url, &BOXES, "");

    let mut rng = rand::rngs::StdRng::seed_from_u64(400);
    let mut kills = 0;
    for round in 0..30 {
        let mut daemon = spawn_daemon(&config, &dir.path().join(format!("daemon-{round}.log")));
        let wait = Duration::from_millis(rng.random_range(150..900));
        tokio::time::sleep(wait).await;
        if daemon.try_wait().unwrap().is_some() {
            panic!("daemon exited by itself in round {round}");
        }
        daemon.kill().unwrap(); // SIGKILL
        daemon.wait().unwrap();
        kills += 1;
        let pending: u64 = {
            let c = emulator.counters().await;
            BOXES
                .iter()
                .map(|(_, _, a)| c["pending"][a].as_u64().unwrap())
                .sum()
        };
        if pending == 0 {
            break;
        }
    }
    assert!(
        kills >= 3,
        "the daemon was killed mid-drain several times ({kills})"
    );

    // Restart once more and let it finish.
    let (status, stdout, stderr) = run_once(&config);
    assert!(status.success(), "final run failed:\n{stdout}\n{stderr}");

    let rows = stored_rows(&db.url).await;
    let stored: HashSet<String> = rows.iter().map(|r| r.content_sha256.clone()).collect();
    assert_eq!(
        rows.len() as u64,
        TOTAL,
        "no duplicates, nothing lost ({} rows)",
        rows.len()
    );
    assert_eq!(stored, expected, "exactly the documents that were sent");
    let unconfirmed: Vec<_> = rows
        .iter()
        .filter(|r| !r.confirmed)
        .map(|r| &r.nazwa_pliku)
        .collect();
    assert!(unconfirmed.is_empty(), "unconfirmed rows: {unconfirmed:?}");
    let counters = emulator.counters().await;
    assert_eq!(counters["confirmed"], TOTAL, "{counters}");
    for (_, _, adres) in BOXES {
        assert_eq!(counters["pending"][adres], 0, "{counters}");
    }
    let redelivered = rows.iter().filter(|r| r.pull_count > 1).count();
    println!(
        "{kills} kills on {}; {redelivered} document(s) delivered again and deduplicated; {counters}",
        db.kind
    );
}
