//! Bad input gets a clear error and the daemon keeps running: malformed XML, a DOCTYPE with
//! entities, base64 that does not decode, a missing field, an unsigned answer, a wrong key, a
//! tampered Body, and an oversized document. Each broken answer is refused (nothing stored
//! from it), the error names what is wrong, and once ePUAP answers properly again the
//! document arrives exactly once. The oversized document blocks only its own box. And with a
//! third of the answers corrupted at random, nothing is lost or stored twice.

mod common;

use std::time::Duration;

use common::*;
use sha2::{Digest, Sha256};

const GOOD: (&str, &str, &str) = ("urzad_testowy", "skrytka", "/urzad_testowy/skrytka");
const BIG: (&str, &str, &str) = ("urzad_testowy", "duze", "/urzad_testowy/duze");

#[tokio::test(flavor = "multi_thread")]
async fn broken_answers_are_refused_clearly_and_the_daemon_keeps_running() {
    let dir = tempfile::tempdir().unwrap();
    let emulator = EmulatorProcess::start(&dir.path().join("emulator"), &[GOOD, BIG], &[]);
    let db = test_database(dir.path()).await;
    let config = daemon_config(
        dir.path(),
        &db.url,
        &emulator.url,
        &[GOOD, BIG],
        "max_document_bytes = 65536",
    );
    let log = dir.path().join("daemon.log");

    // Box BIG holds a document over the configured limit at its head, for the whole test.
    emulator
        .add_document(BIG.2, "za-duzy.bin", &vec![b'x'; 100_000])
        .await;
    let mut daemon = spawn_daemon(&config, &log);

    let cases = [
        ("malformed", "not well-formed"),
        ("doctype", "DOCTYPE"),
        ("bad_base64", "<zawartosc> is not valid base64"),
        ("missing_field", "lacks the required field <dataNadania>"),
        ("unsigned", "message is not signed"),
        ("wrong_key", "signature does not verify"),
        ("tampered_body", "signature does not verify"),
    ];
    for (n, (kind, message)) in cases.iter().enumerate() {
        emulator
            .add_fault(
                serde_json::json!({"kind": kind, "operation": "pobierzNastepny", "count": 3}),
            )
            .await;
        let content = content_for(n as u64, 5);
        let digest = hex::encode(Sha256::digest(&content));
        emulator
            .add_document(GOOD.2, &format!("{kind}.xml"), &content)
            .await;
        wait_until(
            Duration::from_secs(60),
            &format!("the document after {kind} faults"),
            || {
                let url = db.url.clone();
                let digest = digest.clone();
                async move {
                    try_stored_rows(&url)
                        .await
                        .unwrap_or_default()
                        .iter()
                        .any(|r| r.content_sha256 == digest)
                }
            },
        )
        .await;
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(
            text.contains(message),
            "{kind}: the log names the problem ({message:?}):\n{text}"
        );
        assert!(
            daemon.try_wait().unwrap().is_none(),
            "daemon still running after {kind}"
        );
    }

    let rows = stored_rows(&db.url).await;
    assert_eq!(
        rows.len(),
        cases.len(),
        "each document once, none from a broken answer"
    );
    assert!(rows.iter().all(|r| r.confirmed));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("over the limit of 65536 bytes") && text.contains(BIG.2),
        "the oversized document is reported with its box:\n{text}"
    );
    let counters = emulator.counters().await;
    assert_eq!(
        counters["pending"][BIG.2], 1,
        "the oversized document is not confirmed away: {counters}"
    );

    // SIGTERM: a clean, prompt exit.
    let status = stop_with_sigterm(&mut daemon, Duration::from_secs(10)).await;
    assert!(status.success(), "clean exit on SIGTERM: {status}");
}

/// Answers corrupted at random after the emulator acted on them (a third of all answers: a
/// bit flipped, markup put in, a span cut or copied, anywhere in the message, confirmations
/// included): each is refused or, where the change is outside what is signed and read,
/// harmless. Every document still arrives exactly once, byte for byte, and is confirmed.
#[tokio::test(flavor = "multi_thread")]
async fn randomly_corrupted_answers_lose_and_duplicate_nothing() {
    const DOCUMENTS: u64 = 60;
    let dir = tempfile::tempdir().unwrap();
    let emulator = EmulatorProcess::start(
        &dir.path().join("emulator"),
        &[GOOD],
        &["--seed", "20261127"],
    );
    let mut expected = std::collections::HashMap::new();
    for n in 0..DOCUMENTS {
        let content = content_for(n + 500, 3);
        emulator
            .add_document(GOOD.2, &format!("dok-{n}.xml"), &content)
            .await;
        expected.insert(hex::encode(Sha256::digest(&content)), content);
    }
    emulator
        .add_fault(serde_json::json!({"kind": "corrupt", "probability": 0.33}))
        .await;
    let db = test_database(dir.path()).await;
    let config = daemon_config(dir.path(), &db.url, &emulator.url, &[GOOD], "");
    let stdout = run_once_ok(&config, db.kind);
    assert_stored_exactly_once(&db.url, &expected, db.kind).await;
    let counters = emulator.counters().await;
    assert_eq!(counters["confirmed"], DOCUMENTS, "{counters}");
    assert_eq!(counters["pending"][GOOD.2], 0, "{counters}");
    let injected = counters["injected_faults"].as_u64().unwrap();
    assert!(injected >= 20, "the run met corrupted answers: {counters}");
    println!("{} on {}: {counters}", stdout.trim(), db.kind);
}
