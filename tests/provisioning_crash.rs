//! Crash safety of provisioning: 200 access requests (160 that approve themselves, 20 that
//! wait for an official, 20 forged) are processed once without interruption and once while
//! the daemon is SIGKILLed at random moments and restarted. Both end with the same accounts,
//! the same letters and the same requests in the same states, but for this: a letter whose
//! `nadaj` a kill interrupted is never sent again blindly (ePUAP cannot be asked whether it
//! arrived); it is held for an official, who is e-mailed, and its request stays unanswered.
//! No letter reaches ePUAP twice; every letter is sent or held.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use chrono::Utc;
use common::*;
use rand::{Rng, SeedableRng};
use sqlx::Row;

const BOX: (&str, &str, &str) = ("urzad_testowy", "skrytka", "/urzad_testowy/skrytka");
const TOTAL: usize = 200;

fn pesel(n: usize) -> String {
    nth_pesel(8_001_010_000, n)
}

/// Request `n`: signed with the trusted profile (the test seal is the emulator's key) by
/// the applicant (0..160), by somebody else (160..180), or not at all (180..200).
fn request(n: usize) -> Vec<u8> {
    let form = String::from_utf8(std::fs::read(fixture("forms/wniosek-dla-siebie.xml")).unwrap())
        .unwrap()
        .replace("85031412347", &pesel(n))
        .replace("<Imie>Jan</Imie>", &format!("<Imie>Osoba{n}</Imie>"));
    if n >= 180 {
        return form.into_bytes();
    }
    let signer = if n < 160 { pesel(n) } else { pesel(n + 1000) };
    let role =
        eurzad::signature::seal::trusted_profile_role(&format!("Osoba{n}"), "Kowalski", &signer);
    eurzad::signature::seal::xades_enveloped_with_role(
        form.as_bytes(),
        &eurzad::emulator::demo_pki::epuap_key(),
        Utc::now(),
        "podpis",
        Some(&role),
    )
    .unwrap()
}

struct Outcome {
    accounts: Vec<String>,
    requests: BTreeMap<String, String>,
    /// Letters sent, and letters held for an official: (request's file, kind).
    letters: Vec<(String, String)>,
    held: Vec<(String, String)>,
    /// Notifications to officials about held letters.
    held_mail: i64,
    /// How many times each recipient's letter reached the emulator.
    outbox: BTreeMap<String, usize>,
}

async fn outcome(db: &TestDatabase, emulator: &EmulatorProcess) -> Outcome {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&db.url).await.unwrap();
    let accounts = sqlx::query("SELECT pesel FROM portal_accounts ORDER BY pesel")
        .fetch_all(&pool)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    // (request's file, a text column) per row.
    let pairs = async |sql: String| -> Vec<(String, String)> {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&pool)
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect()
    };
    let requests = pairs(
        "SELECT d.nazwa_pliku, r.status FROM access_request r JOIN inbound_document d ON d.id = r.document_id"
            .into(),
    )
    .await
    .into_iter()
    .collect();
    let letters = |condition: &str| {
        format!(
            "SELECT d.nazwa_pliku, o.kind FROM outbound_document o JOIN access_request r ON r.id = o.request_id \
             JOIN inbound_document d ON d.id = r.document_id WHERE {condition} ORDER BY d.nazwa_pliku"
        )
    };
    let held = pairs(letters("o.status = 'review_required'")).await;
    let letters = pairs(letters("o.status = 'sent'")).await;
    let held_mail: i64 =
        sqlx::query("SELECT COUNT(*) FROM notification WHERE key LIKE 'uncertain:%'")
            .fetch_one(&pool)
            .await
            .unwrap()
            .get(0);
    pool.close().await;
    let outbox = emulator.outbox_copies().await;
    Outcome {
        accounts,
        requests,
        letters,
        held,
        held_mail,
        outbox,
    }
}

async fn office(dir: &std::path::Path) -> (EmulatorProcess, TestDatabase, std::path::PathBuf) {
    let emulator = EmulatorProcess::start(&dir.join("emulator"), &[BOX], &[]);
    for n in 0..TOTAL {
        emulator
            .add_document_json(serde_json::json!({
                "adres_skrytki": BOX.2,
                "nazwa_pliku": format!("wniosek-{n:03}.xml"),
                "content": base64::engine::general_purpose::STANDARD.encode(request(n)),
                "adres_odpowiedzi": format!("/osoba{n}/skrytka"),
                "dane_nadawcy": {"uzytkownik": format!("osoba{n}"), "system": null},
            }))
            .await;
    }
    let db = test_database(dir).await;
    let config = daemon_config(dir, &db.url, &emulator.url, &[BOX], "");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "\n[trust]\ntrusted_profile_certificates = [\"{}\"]\n\n[notify]\nofficials = [\"urzednik@urzad.test\"]\nmail_dir = \"{}\"\ndigest_cron = \"0 8 29 2 *\"\n",
        fixture("pki/epuap.pem").display(),
        dir.join("mail").display()
    ));
    std::fs::write(&config, text).unwrap();
    (emulator, db, config)
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_during_provisioning_gives_the_same_accounts_and_replies() {
    // Uninterrupted.
    let calm_dir = tempfile::tempdir().unwrap();
    let (calm_emulator, calm_db, calm_config) = office(calm_dir.path()).await;
    let (status, stdout, stderr) = run_once(&calm_config);
    assert!(status.success(), "{stdout}\n{stderr}");
    let calm = outcome(&calm_db, &calm_emulator).await;
    assert_eq!(calm.accounts.len(), 160);
    assert_eq!(calm.letters.len(), 180, "160 registrations and 20 refusals");
    assert_eq!(
        calm.requests
            .values()
            .filter(|s| *s == "awaiting_official")
            .count(),
        20
    );
    assert!(calm.held.is_empty());
    assert_eq!(calm.outbox.len(), 180);
    assert!(calm.outbox.values().all(|n| *n == 1));

    // Killed at random moments, restarted each time.
    let dir = tempfile::tempdir().unwrap();
    let (emulator, db, config) = office(dir.path()).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(200);
    let mut kills = 0;
    for round in 0..40 {
        let mut daemon = spawn_daemon(&config, &dir.path().join(format!("daemon-{round}.log")));
        tokio::time::sleep(Duration::from_millis(rng.random_range(150..900))).await;
        assert!(
            daemon.try_wait().unwrap().is_none(),
            "the daemon exited by itself in round {round}"
        );
        daemon.kill().unwrap();
        daemon.wait().unwrap();
        kills += 1;
        let now = outcome(&db, &emulator).await;
        if now.letters.len() + now.held.len() == 180 && now.requests.len() == TOTAL {
            break;
        }
    }
    assert!(kills >= 3, "killed mid-work several times ({kills})");
    let (status, stdout, stderr) = run_once(&config);
    assert!(status.success(), "final run:\n{stdout}\n{stderr}");
    let killed = outcome(&db, &emulator).await;

    assert_eq!(killed.accounts, calm.accounts, "the same accounts");
    // A request whose letter is held stays approved or rejected (unanswered) where the calm
    // run replied.
    let held_files: Vec<&String> = killed.held.iter().map(|(file, _)| file).collect();
    let normalized: BTreeMap<String, String> = killed
        .requests
        .iter()
        .map(|(file, status)| {
            let status =
                if held_files.contains(&file) && (status == "approved" || status == "rejected") {
                    "replied".to_string()
                } else {
                    status.clone()
                };
            (file.clone(), status)
        })
        .collect();
    assert_eq!(
        normalized, calm.requests,
        "the same requests in the same states (held letters aside)"
    );
    let mut letters = [killed.letters.clone(), killed.held.clone()].concat();
    letters.sort();
    assert_eq!(
        letters, calm.letters,
        "the same letters, one per request: sent, or held for an official"
    );
    let twice: Vec<_> = killed.outbox.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "letters at ePUAP twice: {twice:?}");
    assert_eq!(
        killed.held_mail,
        killed.held.len() as i64,
        "officials are told of each held letter"
    );
    println!(
        "{kills} kills on {}: {} accounts, {} letters sent, {} held for an official, none twice at ePUAP",
        db.kind,
        killed.accounts.len(),
        killed.letters.len(),
        killed.held.len()
    );
}
