//! Acceptance: the daemon drains two boxes of 150 documents each from the emulator running as
//! a separate process over loopback, with 10% injected faults (HTTP 500, SOAP faults, dropped
//! connections, slow answers). Every document is stored exactly once, byte for byte, and
//! every one is confirmed. Runs on SQLite, or on PostgreSQL with EURZAD_TEST_POSTGRES_URL.

mod common;

use std::collections::HashMap;

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

    let (status, stdout, stderr) = run_once(&config);
    assert!(
        status.success(),
        "daemon failed ({status}) on {}:\n{stdout}\n{stderr}",
        db.kind
    );

    let rows = stored_rows(&db.url).await;
    assert_eq!(
        rows.len(),
        expected.len(),
        "every document stored exactly once on {}",
        db.kind
    );
    let mut seen = std::collections::HashSet::new();
    for row in &rows {
        assert!(
            seen.insert(row.content_sha256.clone()),
            "duplicate content {}",
            row.content_sha256
        );
        let content = expected
            .get(&row.content_sha256)
            .expect("stored content is one we sent");
        assert_eq!(&row.content, content, "byte for byte");
        assert_eq!(
            hex::encode(Sha256::digest(&row.content)),
            row.content_sha256
        );
        assert!(
            row.confirmed,
            "{} confirmed in the database",
            row.nazwa_pliku
        );
    }

    let counters = emulator.counters().await;
    assert_eq!(counters["confirmed"], 2 * PER_BOX, "{counters}");
    for (_, _, adres) in BOXES {
        assert_eq!(counters["pending"][adres], 0, "{counters}");
    }
    let injected = counters["injected_faults"].as_u64().unwrap();
    assert!(injected >= 30, "the run met real faults: {counters}");
    println!("{} on {}: {counters}", stdout.trim(), db.kind);
}
