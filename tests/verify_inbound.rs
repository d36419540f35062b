//! Every inbound document carries its signature verdict: the daemon's `verify` job checks XML
//! documents under `[trust]` and stores the verdict with the row. A letter signed through
//! a certificate of the configured qualified CA passes; the same letter altered after signing
//! fails with a hash failure; an unsigned one fails as unsigned; a non-XML attachment is
//! recorded as not checked.

mod common;

use common::*;
use sqlx::Row;

const BOX: (&str, &str, &str) = ("urzad_testowy", "skrytka", "/urzad_testowy/skrytka");

/// Runs the daemon once over `documents` with `trust` appended to its configuration; returns
/// (file, indication, subindication, reason, signer, kind) per stored row.
async fn run_with_trust(
    documents: &[(&str, Vec<u8>)],
    trust: impl Fn(&std::path::Path) -> String,
) -> Vec<StoredVerdict> {
    let dir = tempfile::tempdir().unwrap();
    let emulator = EmulatorProcess::start(&dir.path().join("emulator"), &[BOX], &[]);
    for (file, content) in documents {
        emulator.add_document(BOX.2, file, content).await;
    }
    let db = test_database(dir.path()).await;
    let config = daemon_config(dir.path(), &db.url, &emulator.url, &[BOX], "");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&trust(dir.path()));
    std::fs::write(&config, text).unwrap();
    let (status, stdout, stderr) = run_once(&config);
    assert!(status.success(), "{stdout}\n{stderr}");
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&db.url).await.unwrap();
    let rows = sqlx::query(
        "SELECT nazwa_pliku, signature_indication, signature_subindication, signature_reason, signature_signer, signature_kind \
         FROM inbound_document ORDER BY nazwa_pliku",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let rows = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)))
        .collect();
    pool.close().await;
    rows
}

type StoredVerdict = (
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

fn anchor_dir(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    let anchors = dir.join(name);
    std::fs::create_dir_all(&anchors).unwrap();
    std::fs::copy(fixture("pki/ca.pem"), anchors.join("ca.pem")).unwrap();
    anchors
}

#[tokio::test(flavor = "multi_thread")]
async fn each_kind_of_signature_has_its_own_anchors() {
    let signed = std::fs::read(fixture("signed/pismo-ogolne-signed.xml")).unwrap();
    // The test CA configured for personal (e-ID) signatures: the letter passes as personal.
    let rows = run_with_trust(&[("signed.xml", signed.clone())], |dir| {
        format!(
            "\n[trust]\npersonal_ca_dir = \"{}\"\n",
            anchor_dir(dir, "personal").display()
        )
    })
    .await;
    assert_eq!(
        (rows[0].1.as_deref(), rows[0].5.as_deref()),
        (Some("TOTAL-PASSED"), Some("personal")),
        "{rows:?}"
    );
    // The same CA as the only trusted-profile "seal": a certificate chain does not make a
    // trusted profile, and with no qualified or personal anchors the letter is not trusted.
    let rows = run_with_trust(&[("signed.xml", signed)], |_| {
        format!(
            "\n[trust]\ntrusted_profile_certificates = [\"{}\"]\n",
            fixture("pki/ca.pem").display()
        )
    })
    .await;
    assert_eq!(rows[0].1.as_deref(), Some("INDETERMINATE"), "{rows:?}");
    assert_eq!(rows[0].5, None, "{rows:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn inbound_documents_carry_their_verdict() {
    let documents = [
        (
            "signed.xml",
            std::fs::read(fixture("signed/pismo-ogolne-signed.xml")).unwrap(),
        ),
        (
            "tampered.xml",
            std::fs::read(fixture("signed/pismo-ogolne-tampered.xml")).unwrap(),
        ),
        (
            "unsigned.xml",
            std::fs::read(fixture("demo/pismo-ogolne-demo.xml")).unwrap(),
        ),
        ("scan.txt", b"not XML at all".to_vec()),
    ];
    let verdicts = run_with_trust(&documents, |dir| {
        format!(
            "\n[trust]\nqualified_ca_dir = \"{}\"\n",
            anchor_dir(dir, "qualified").display()
        )
    })
    .await;
    let find = |name: &str| {
        verdicts
            .iter()
            .find(|v| v.0 == name)
            .unwrap_or_else(|| panic!("{name} stored: {verdicts:?}"))
    };
    let signed = find("signed.xml");
    assert_eq!(signed.1.as_deref(), Some("TOTAL-PASSED"), "{signed:?}");
    assert_eq!(signed.5.as_deref(), Some("qualified"), "{signed:?}");
    assert!(
        signed.4.as_deref().unwrap_or("").contains("Urzad Testowy"),
        "{signed:?}"
    );
    let tampered = find("tampered.xml");
    assert_eq!(
        (tampered.1.as_deref(), tampered.2.as_deref()),
        (Some("TOTAL-FAILED"), Some("HASH_FAILURE")),
        "{tampered:?}"
    );
    let unsigned = find("unsigned.xml");
    assert_eq!(unsigned.1.as_deref(), Some("TOTAL-FAILED"), "{unsigned:?}");
    assert!(
        unsigned.3.as_deref().unwrap_or("").contains("not signed"),
        "{unsigned:?}"
    );
    let scan = find("scan.txt");
    assert_eq!(scan.1, None, "{scan:?}");
    assert!(
        scan.3
            .as_deref()
            .unwrap_or("")
            .starts_with("signature not checked"),
        "{scan:?}"
    );
}
