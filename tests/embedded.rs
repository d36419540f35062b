//! The embedded default: `eurzad run --once` with no configuration, in an empty folder, starts
//! the emulator in-process, seeds the demo documents (among them a "pismo ogólne" from the
//! demo citizen `demo`), ingests them into var/eurzad.db and prints a summary. A second run
//! finds nothing new and stores nothing twice.

mod common;

use std::process::Command;

fn run_once_in(dir: &std::path::Path) -> (bool, String) {
    let output = Command::new(common::BIN)
        .args(["run", "--once"])
        .current_dir(dir)
        .env_remove("EURZAD_DATABASE_URL")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn runs_on_a_fresh_folder_with_no_setup() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, output) = run_once_in(dir.path());
    assert!(ok, "{output}");
    assert!(output.contains("4 new document(s)"), "{output}");
    assert!(output.contains("from demo"), "{output}");
    // The demo access request becomes an account with a reply, sent through the embedded
    // e-Doręczenia emulator to the demo citizen's address, who opens it at once.
    assert!(
        output.contains("access requests: 1 delivered; accounts: 1; letters sent: 1"),
        "{output}"
    );
    assert!(
        output.contains(
            "letter reply:1 by edoreczenia to AE:PL-02070-80362-JDEMO-01: delivered, in law delivered (doręczona); evidences A.1, D.1, E.1"
        ),
        "{output}"
    );
    assert!(dir.path().join("var/eurzad.db").exists());
    assert!(dir.path().join("var/emulator/counters.json").exists());

    let url = format!("sqlite://{}", dir.path().join("var/eurzad.db").display());
    let rows = common::stored_rows(&url).await;
    assert_eq!(rows.len(), 4);
    let pismo = rows
        .iter()
        .find(|r| r.nazwa_pliku == "pismo-ogolne.xml")
        .expect("the demo pismo ogólne");
    assert!(String::from_utf8_lossy(&pismo.content).contains("Jan</Imie>"));
    assert!(rows.iter().all(|r| r.confirmed));
    // The general letters are read for the officials' correspondence: title and body from
    // the letter, not its file name.
    let pool = common::any_pool(&url).await;
    let letter: (String, String) = sqlx::query_as(
        "SELECT title, body FROM correspondence c JOIN inbound_document d ON d.id = c.document_id \
         WHERE d.podmiot_identyfikator = 'demo' AND c.form_type = 'general_letter'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        letter.0,
        "Pytanie o termin płatności podatku od nieruchomości"
    );
    assert!(letter.1.contains("czwartą ratę"), "{}", letter.1);
    pool.close().await;

    let (ok, output) = run_once_in(dir.path());
    assert!(ok, "{output}");
    assert!(
        output.contains("0 new document(s)") && output.contains("database: 4 document(s)"),
        "{output}"
    );
    assert_eq!(common::stored_rows(&url).await.len(), 4);
    assert!(output.contains("accounts: 1; letters sent: 1"), "{output}");
}

#[test]
fn a_bad_config_names_the_file_and_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("broken.toml");
    std::fs::write(&config, "[database]\nurl = \"sqlite://x.db\"\n[epuap]\nendpoint = \"embedded\"\npoll_interval = \"often\"\n").unwrap();
    let output = Command::new(common::BIN)
        .args(["run", "--once", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("broken.toml") && stderr.contains("poll_interval"),
        "{stderr}"
    );
}
