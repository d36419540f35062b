//! Every inbound document carries its signature verdict: the daemon's `verify` job checks XML
//! documents under `[trust]` and stores the verdict with the row. A letter signed through
//! a certificate of the configured qualified CA passes; the same letter altered after signing
//! fails with a hash failure; an unsigned one fails as unsigned; a non-XML attachment is
//! recorded as not checked.

mod common;

use common::*;
use sqlx::Row;

const BOX: (&str, &str, &str) = ("urzad_testowy", "skrytka", "/urzad_testowy/skrytka");

#[tokio::test(flavor = "multi_thread")]
async fn inbound_documents_carry_their_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let emulator = EmulatorProcess::start(&dir.path().join("emulator"), &[BOX], &[]);
    let anchors = dir.path().join("qualified");
    std::fs::create_dir(&anchors).unwrap();
    std::fs::copy(fixture("pki/ca.pem"), anchors.join("ca.pem")).unwrap();
    for (file, content) in [
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
    ] {
        emulator.add_document(BOX.2, file, &content).await;
    }
    let db = test_database(dir.path()).await;
    let config = daemon_config(dir.path(), &db.url, &emulator.url, &[BOX], "");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "\n[trust]\nqualified_ca_dir = \"{}\"\n",
        anchors.display()
    ));
    std::fs::write(&config, text).unwrap();

    let (status, stdout, stderr) = run_once(&config);
    assert!(status.success(), "{stdout}\n{stderr}");

    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&db.url).await.unwrap();
    let rows = sqlx::query(
        "SELECT nazwa_pliku, signature_indication, signature_subindication, signature_reason, signature_signer \
         FROM inbound_document ORDER BY nazwa_pliku",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let verdicts: Vec<(
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    )> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect();
    let find = |name: &str| {
        verdicts
            .iter()
            .find(|v| v.0 == name)
            .unwrap_or_else(|| panic!("{name} stored: {verdicts:?}"))
    };
    let signed = find("signed.xml");
    assert_eq!(signed.1.as_deref(), Some("TOTAL-PASSED"), "{signed:?}");
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
    pool.close().await;
}
