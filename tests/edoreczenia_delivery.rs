//! Replies through e-Doręczenia (issue 17), against the emulator running as a separate
//! process over loopback (`eurzad emulator --edoreczenia`), on SQLite or on PostgreSQL when
//! EURZAD_TEST_POSTGRES_URL is set:
//! - the round trip: 200 access requests, each answered to the applicant's address found in
//!   the BAE, with 10% of the UA API's answers faulty (500, 429 with Retry-After, a connection
//!   dropped after the request took effect, a slow answer). Each letter is sent exactly once,
//!   each evidence chain ends as the simulated recipient behaved (delivered when they opened
//!   it, deemed delivered when they never did), and each evidence is stored byte for byte
//!   with its SHA-256;
//! - an interrupted send: found among the sent messages and not sent again; or, when the
//!   sent messages cannot be searched, held for an official, who is e-mailed.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::Utc;
use common::{
    EmulatorProcess, SmtpServer, TestDatabase, any_pool, daemon_config, fixture, nth_pesel,
    spawn_daemon, stop_with_sigterm, test_database, wait_until,
};
use eurzad::signature::seal;
use sha2::Digest as _;
use sqlx::Row as _;

const BOX: (&str, &str, &str) = ("urzad_testowy", "skrytka", "/urzad_testowy/skrytka");
const OFFICIAL: &str = "sekretariat@urzad.test";

/// The ADE of the `n`th applicant.
fn ade_of(n: usize) -> String {
    format!("AE:PL-{:05}-{:05}-OBYWA-01", 10_000 + n, 20_000 + n)
}

/// How the `n`th applicant behaves: every third never picks the letter up.
fn opens(n: usize) -> Option<f64> {
    match n % 3 {
        0 => None,
        1 => Some(0.5),
        _ => Some(3.0),
    }
}

/// The `n`th applicant's access request, sealed by "ePUAP" as a trusted-profile signature.
fn request(n: usize) -> Vec<u8> {
    request_with(n, "")
}

/// The same, with `more` at the end of the applicant's part (a postal address).
fn request_with(n: usize, more: &str) -> Vec<u8> {
    let pesel = nth_pesel(8_001_010_000, n);
    let form = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<Wniosek xmlns="http://epuap.gov.pl/fe-model-web/wzor_lokalny/eurzad/wniosek_o_dostep/">
    <Wnioskodawca><Imie>Jan</Imie><Nazwisko>Testowy{n}</Nazwisko><PESEL>{pesel}</PESEL>
    <Email>jan{n}@example.test</Email>{more}</Wnioskodawca>
    <DataWniosku>2026-11-20</DataWniosku>
</Wniosek>
"#
    );
    let key = eurzad::xmldsig::SigningKey {
        private_key_pem: std::fs::read(fixture("pki/epuap.key")).unwrap(),
        certificate_pem: std::fs::read(fixture("pki/epuap.pem")).unwrap(),
    };
    let role = seal::trusted_profile_role("Jan", &format!("Testowy{n}"), &pesel);
    seal::xades_enveloped_with_role(form.as_bytes(), &key, Utc::now(), "podpis", Some(&role))
        .unwrap()
}

struct Office {
    dir: tempfile::TempDir,
    emulator: EmulatorProcess,
    db: TestDatabase,
    smtp: SmtpServer,
    config: std::path::PathBuf,
    http: reqwest::Client,
}

impl Office {
    /// The emulator (ePUAP and e-Doręczenia, taking messages as if sent 25 days ago, so that
    /// unclaimed letters are already past their deemed-delivery day) with `applicants` addresses, and
    /// a daemon configuration for it.
    async fn start(applicants: usize, emulator_args: &[&str]) -> Office {
        let dir = tempfile::tempdir().unwrap();
        let addresses: Vec<serde_json::Value> = (0..applicants)
            .map(|n| {
                serde_json::json!({
                    "ade": ade_of(n),
                    "pesel": nth_pesel(8_001_010_000, n),
                    "opens_after_days": opens(n),
                })
            })
            .collect();
        let addresses_file = dir.path().join("addresses.json");
        std::fs::write(&addresses_file, serde_json::to_vec(&addresses).unwrap()).unwrap();
        let mut args = vec![
            "--edoreczenia",
            "--edoreczenia-addresses",
            addresses_file.to_str().unwrap(),
            "--edoreczenia-backdate",
            "25days",
            "--slow-delay",
            "1500ms",
        ];
        args.extend_from_slice(emulator_args);
        let emulator = EmulatorProcess::start(&dir.path().join("emulator"), &[BOX], &args);
        let db = test_database(dir.path()).await;
        let smtp = SmtpServer::start(dir.path());
        let config = daemon_config(dir.path(), &db.url, &emulator.url, &[BOX], "");
        let mut text = std::fs::read_to_string(&config).unwrap();
        text.push_str(&format!(
            r#"
[trust]
trusted_profile_certificates = ["{epuap}"]

[provisioning]
office_name = "Urząd Miasta Testowo"

[notify]
officials = ["{OFFICIAL}"]
from = "eUrząd <eurzad@urzad.test>"
smtp_host = "127.0.0.1"
smtp_port = {port}
smtp_security = "none"
digest_cron = "0 8 29 2 *"

[edoreczenia]
endpoint = "{url}"
ade = "AE:PL-00000-00000-EURZD-00"
system_certificate = "{office_pem}"
system_private_key = "{office_key}"
operator_certificate = "{epuap}"
evidence_interval = "1s"
"#,
            epuap = fixture("pki/epuap.pem").display(),
            office_pem = fixture("pki/office.pem").display(),
            office_key = fixture("pki/office.key").display(),
            port = smtp.port,
            url = emulator.url,
        ));
        std::fs::write(&config, text).unwrap();
        Office {
            dir,
            emulator,
            db,
            smtp,
            config,
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
        }
    }

    async fn send_requests(&self, range: std::ops::Range<usize>) {
        for n in range {
            self.send_request(n, request(n)).await;
        }
    }

    async fn send_request(&self, n: usize, form: Vec<u8>) {
        {
            self.emulator
                .add_document_json(serde_json::json!({
                    "adres_skrytki": BOX.2,
                    "nazwa_pliku": "wniosek.xml",
                    "typ_pliku": "text/xml",
                    "content": base64::Engine::encode(
                        &base64::engine::general_purpose::STANDARD,
                        form,
                    ),
                    "adres_odpowiedzi": format!("/obywatel{n}/skrytka"),
                    "dane_nadawcy": {"uzytkownik": format!("jan{n}"), "system": null},
                }))
                .await;
        }
    }

    async fn admin(&self, path: &str) -> serde_json::Value {
        self.http
            .get(format!("{}{path}", self.emulator.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn fault(&self, rule: serde_json::Value) {
        let status = self
            .http
            .post(format!("{}/admin/edoreczenia/faults", self.emulator.url))
            .json(&rule)
            .send()
            .await
            .unwrap()
            .status();
        assert!(status.is_success(), "{status}");
    }

    async fn pool(&self) -> sqlx::AnyPool {
        any_pool(&self.db.url).await
    }
}

/// (legal state, count) of the letters.
async fn legal_states(pool: &sqlx::AnyPool) -> HashMap<String, i64> {
    sqlx::query("SELECT COALESCE(legal_state, status), COUNT(*) FROM outbound_document GROUP BY 1")
        .fetch_all(pool)
        .await
        .unwrap_or_default()
        .iter()
        .map(|r| (r.get::<String, _>(0), r.get::<i64, _>(1)))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn two_hundred_replies_go_once_each_and_their_evidence_ends_as_the_recipients_behaved() {
    const N: usize = 200;
    let office = Office::start(N, &["--edoreczenia-fault-rate", "0.1"]).await;
    office.send_requests(0..N).await;
    let log = office.dir.path().join("daemon.log");
    sqlx::any::install_default_drivers();
    let mut daemon = spawn_daemon(&office.config, &log);
    // What the letters' states were, printed now and then (shown when the wait times out).
    let last_print = std::sync::Mutex::new(std::time::Instant::now());
    wait_until(
        Duration::from_secs(240),
        "every letter's evidence to end",
        || async {
            // A connection per look: the daemon makes the database.
            let Ok(pool) = sqlx::AnyPool::connect(&office.db.url).await else {
                return false;
            };
            let states = legal_states(&pool).await;
            pool.close().await;
            let mut last = last_print.lock().unwrap();
            if last.elapsed() > Duration::from_secs(5) {
                eprintln!("letters: {states:?}");
                *last = std::time::Instant::now();
            }
            drop(last);
            states.get("delivered").copied().unwrap_or(0)
                + states.get("deemed_delivered").copied().unwrap_or(0)
                == N as i64
        },
    )
    .await;
    let status = stop_with_sigterm(&mut daemon, Duration::from_secs(20)).await;
    assert!(
        status.success(),
        "{}",
        std::fs::read_to_string(&log).unwrap()
    );
    let pool = office.pool().await;

    // Faults were injected, of each kind the random plan draws.
    let counters = office.admin("/admin/edoreczenia/counters").await;
    assert!(
        counters["injected_faults"].as_u64().unwrap() >= 20,
        "{counters}"
    );
    // One token served the whole run.
    assert_eq!(counters["tokens_issued"], 1, "{counters}");

    // Each letter was sent exactly once: one message per applicant, to their address.
    let sent: Vec<serde_json::Value> =
        serde_json::from_value(office.admin("/admin/edoreczenia/sent").await).unwrap();
    let recipients: Vec<&str> = sent.iter().map(|m| m["to"].as_str().unwrap()).collect();
    let distinct: HashSet<&str> = recipients.iter().copied().collect();
    assert_eq!(recipients.len(), N, "one message per letter");
    assert_eq!(distinct.len(), N, "no applicant got two");
    let held: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM outbound_document WHERE status = 'review_required'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(held, 0);

    // Each chain ends as its recipient behaved.
    let by_ade: HashMap<String, usize> = (0..N).map(|n| (ade_of(n), n)).collect();
    let letters = sqlx::query(
        "SELECT recipient, legal_state, document_identifier, channel FROM outbound_document",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(letters.len(), N);
    for letter in &letters {
        let recipient: String = letter.get(0);
        let n = by_ade[&recipient];
        let state: String = letter.get(1);
        let expected = if opens(n).is_some() {
            "delivered"
        } else {
            "deemed_delivered"
        };
        assert_eq!(state, expected, "{recipient}");
        assert_eq!(letter.get::<String, _>(3), "edoreczenia");
    }

    // Each evidence is stored byte for byte, with its SHA-256, its seal valid.
    let evidences =
        sqlx::query("SELECT evidence_id, code, content, sha256, seal FROM letter_evidence")
            .fetch_all(&pool)
            .await
            .unwrap();
    let openers = (0..N).filter(|n| opens(*n).is_some()).count();
    assert_eq!(
        evidences.len(),
        2 * N + openers,
        "A.1 and D.1 each, E.1 for who opened"
    );
    for e in &evidences {
        let id: String = e.get(0);
        let content: Vec<u8> = e.get(2);
        let served = std::fs::read(
            office
                .emulator
                .state_dir
                .join("edoreczenia/evidences")
                .join(format!("{id}.xml")),
        )
        .unwrap();
        assert_eq!(content, served, "{id} byte for byte");
        assert_eq!(
            e.get::<String, _>(3),
            hex::encode(sha2::Sha256::digest(&content))
        );
        assert_eq!(e.get::<String, _>(4), "valid", "{id}");
    }
    // Every request is answered; those picked up are delivered.
    let delivered: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM access_request WHERE status = 'delivered'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(delivered as usize, openers);
    let deemed_days: Vec<String> = sqlx::query_scalar(
        "SELECT CAST(deemed_on AS TEXT) FROM outbound_document WHERE legal_state = 'deemed_delivered'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(deemed_days.len(), N - openers);
    for day in deemed_days {
        let day: chrono::NaiveDate = day.parse().unwrap();
        assert!(eurzad::provisioning::deadline::is_working_day(day), "{day}");
    }
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_interrupted_send_is_found_among_the_sent_messages_and_not_sent_again() {
    let office = Office::start(2, &[]).await;
    // The first send takes effect, and its answer is lost.
    office
        .fault(serde_json::json!({"kind": "drop", "operation": "send", "count": 1}))
        .await;
    office.send_requests(0..1).await;
    let (status, stdout, stderr) = common::run_once(&office.config);
    assert!(status.success(), "{stdout}\n{stderr}");
    let pool = office.pool().await;
    let row = sqlx::query("SELECT status, attempts, document_identifier FROM outbound_document")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(row.get::<String, _>(0), "sent", "{stderr}");
    assert_eq!(row.get::<i32, _>(1), 1, "sent once, never again");
    let sent: Vec<serde_json::Value> =
        serde_json::from_value(office.admin("/admin/edoreczenia/sent").await).unwrap();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["message_id"], row.get::<String, _>(2).as_str());
    assert!(office.smtp.messages().is_empty(), "no official was needed");
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_interrupted_send_that_cannot_be_looked_up_is_held_and_officials_are_mailed() {
    let office = Office::start(2, &[]).await;
    office
        .fault(serde_json::json!({"kind": "drop", "operation": "send", "count": 1}))
        .await;
    // The sent messages cannot be listed: the letter may have gone out, nobody can tell.
    office
        .fault(serde_json::json!({"kind": "http500", "operation": "messages"}))
        .await;
    office.send_requests(0..1).await;
    let (status, stdout, stderr) = common::run_once(&office.config);
    assert!(status.success(), "{stdout}\n{stderr}");
    let pool = office.pool().await;
    let row = sqlx::query("SELECT status, review_reason FROM outbound_document")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(row.get::<String, _>(0), "review_required", "{stderr}");
    assert!(
        row.get::<String, _>(1)
            .contains("sprawdzenie wysłanych wiadomości się nie udało"),
        "{}",
        row.get::<String, _>(1)
    );
    let sent: Vec<serde_json::Value> =
        serde_json::from_value(office.admin("/admin/edoreczenia/sent").await).unwrap();
    assert_eq!(sent.len(), 1, "not sent again");
    let mail = office.smtp.messages();
    assert!(
        mail.iter().any(|(to, _, body)| to.contains(OFFICIAL)
            && body.contains("sprawdzenie wysłanych wiadomości się nie udało")),
        "{mail:?}"
    );
    // The official sees it and decides.
    let (ok, out) = common::eurzad_with_config(&["requests", "show", "1"], &office.config);
    assert!(ok, "{out}");
    assert!(
        out.contains("reply letter 1 by edoreczenia: review_required"),
        "{out}"
    );
    pool.close().await;
}

/// The results of `COUNT(*)` queries, on a connection of their own (the daemon makes the
/// database); `None` while it cannot be read.
/// The text of a PDF, as `pdftotext` (poppler) reads it.
fn pdf_text(pdf: &[u8], dir: &std::path::Path) -> String {
    let path = dir.join("letter.pdf");
    std::fs::write(&path, pdf).unwrap();
    let out = std::process::Command::new("pdftotext")
        .args(["-enc", "UTF-8", "-layout"])
        .arg(&path)
        .arg("-")
        .output()
        .expect("pdftotext (poppler-utils, installed by .ci/install-deps)");
    assert!(
        out.status.success(),
        "pdftotext refused the letter: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn each_letter_takes_the_first_route_that_reaches_its_addressee_paper_included() {
    // Applicant 0 has an e-Doręczenia address; 1 and 2 have none, and 1 gave a postal address.
    let office = Office::start(1, &[]).await;
    let postal = "<AdresKorespondencyjny><Ulica>ul. Żółkiewskiego</Ulica><NrDomu>3</NrDomu>\
                  <NrLokalu>5</NrLokalu><KodPocztowy>00-950</KodPocztowy>\
                  <Miejscowosc>Łódź</Miejscowosc></AdresKorespondencyjny>";
    office.send_request(0, request(0)).await;
    office.send_request(1, request_with(1, postal)).await;
    office.send_request(2, request(2)).await;
    // Applicant 0 again: the address database's answer is reused, not asked for again.
    office.send_request(0, request(0)).await;
    let log = office.dir.path().join("daemon.log");
    sqlx::any::install_default_drivers();
    let mut daemon = spawn_daemon(&office.config, &log);
    wait_until(
        Duration::from_secs(120),
        "the paper letter's evidence to end",
        || async {
            let Ok(pool) = sqlx::AnyPool::connect(&office.db.url).await else {
                return false;
            };
            let done: Option<i64> = sqlx::query_scalar(
                "SELECT COUNT(*) FROM outbound_document WHERE channel = 'hybrid' AND legal_state = 'delivered'",
            )
            .fetch_one(&pool)
            .await
            .ok();
            pool.close().await;
            done == Some(1)
        },
    )
    .await;
    let status = stop_with_sigterm(&mut daemon, Duration::from_secs(20)).await;
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "{logged}");
    let pool = office.pool().await;
    let letters = sqlx::query(
        "SELECT r.applicant_pesel, o.channel, o.recipient, o.channel_reason, o.file_name, o.content, o.id \
         FROM outbound_document o JOIN access_request r ON r.id = o.request_id ORDER BY o.request_id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(letters.len(), 4, "{logged}");
    let pesel = |n| nth_pesel(8_001_010_000, n);
    let row = |i: usize| {
        (
            letters[i].get::<String, _>(0),
            letters[i].get::<String, _>(1),
            letters[i].get::<String, _>(2),
            letters[i].get::<String, _>(3),
        )
    };
    // 0: its ADE, found in the BAE.
    let (p, channel, recipient, reason) = row(0);
    assert_eq!((p, channel.as_str()), (pesel(0), "edoreczenia"));
    assert_eq!(recipient, ade_of(0));
    assert!(reason.contains("BAE"), "{reason}");
    // 1: on paper, to the address from the form, and why.
    let (p, channel, recipient, reason) = row(1);
    assert_eq!((p, channel.as_str()), (pesel(1), "hybrid"));
    let address: serde_json::Value = serde_json::from_str(&recipient).unwrap();
    assert_eq!(address["postal_code"], "00-950");
    assert_eq!(address["city"], "Łódź");
    assert!(
        reason.starts_with("usługa hybrydowa") && reason.contains("BAE"),
        "{reason}"
    );
    // The letter is a PDF whose text reads back in Polish, the address in the window.
    assert!(letters[1].get::<String, _>(4).ends_with(".pdf"));
    let pdf: Vec<u8> = letters[1].get(5);
    let text = pdf_text(&pdf, office.dir.path());
    for expected in [
        "Informacja o rejestracji w portalu eUrząd",
        "ul. Żółkiewskiego 3/5",
        "00-950 Łódź",
        "Jan Testowy1",
        "Urząd Miasta Testowo",
    ] {
        assert!(text.contains(expected), "{expected:?} in:\n{text}");
    }
    // 2: neither an ADE nor a postal address: ePUAP, as the default routes still allow.
    let (p, channel, recipient, reason) = row(2);
    assert_eq!((p, channel.as_str()), (pesel(2), "epuap_skrytka"));
    assert_eq!(recipient, "/obywatel2/skrytka");
    assert!(
        reason.starts_with("ePUAP") && reason.contains("adresu korespondencyjnego"),
        "{reason}"
    );
    // The operator got the paper letter with its printing order and the postal address.
    let sent: Vec<serde_json::Value> =
        serde_json::from_value(office.admin("/admin/edoreczenia/sent").await).unwrap();
    let paper: Vec<&serde_json::Value> = sent.iter().filter(|m| !m["postal"].is_null()).collect();
    assert_eq!(paper.len(), 1, "{sent:?}");
    assert_eq!(paper[0]["postal"]["street"], "ul. Żółkiewskiego");
    assert_eq!(paper[0]["postal"]["buildingNumber"], "3/5");
    // Its evidences are the hybrid service's, fetched under `puh`, sealed by the operator.
    let codes: Vec<(String, String)> = sqlx::query_as(
        "SELECT code, seal FROM letter_evidence WHERE letter_id = $1 ORDER BY event_at, id",
    )
    .bind(letters[1].get::<i64, _>(6))
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        codes,
        vec![
            ("H.DW".to_string(), "valid".to_string()),
            ("H.PN".to_string(), "valid".to_string()),
            ("H.EPO".to_string(), "valid".to_string()),
        ]
    );
    // Two letters to applicant 0, one search of the address database for them (and one for
    // each of the others).
    let counters = office.admin("/admin/edoreczenia/counters").await;
    assert_eq!(counters["address_searches"], 3, "{counters}");
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_routes_of_a_kind_of_letter_are_the_offices_choice() {
    // Registration letters only by e-Doręczenia or on paper: applicant 2, with neither an
    // address in the BAE nor a postal address, is not answered through ePUAP; the officials
    // are told instead.
    let office = Office::start(1, &[]).await;
    let mut text = std::fs::read_to_string(&office.config).unwrap();
    text.push_str(
        "\n[delivery]\naddress_cache = \"1h\"\n\n[delivery.routes]\n\
         registration_info = [\"hybrid\", \"edoreczenia\"]\n",
    );
    std::fs::write(&office.config, text).unwrap();
    office.send_request(0, request(0)).await;
    office.send_request(2, request(2)).await;
    let (status, stdout, stderr) = common::run_once(&office.config);
    assert!(status.success(), "{stdout}\n{stderr}");
    let pool = office.pool().await;
    let letters: Vec<(String, String)> = sqlx::query_as(
        "SELECT r.applicant_pesel, o.channel FROM outbound_document o \
         JOIN access_request r ON r.id = o.request_id ORDER BY o.request_id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        letters,
        vec![(nth_pesel(8_001_010_000, 0), "edoreczenia".to_string())],
        "{stderr}"
    );
    // The request stays unanswered (the deadline watch keeps reminding), with the reason.
    let (status, reason): (String, String) =
        sqlx::query_as("SELECT status, reason FROM access_request WHERE applicant_pesel = $1")
            .bind(nth_pesel(8_001_010_000, 2))
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(status, "approved");
    assert!(
        reason.contains("adresu korespondencyjnego") && reason.contains("BAE"),
        "{reason}"
    );
    let audited: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'reply_impossible'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(audited, 1);
    let told: Vec<_> = office
        .smtp
        .messages()
        .into_iter()
        .filter(|(_, _, body)| body.contains("inną drogą"))
        .collect();
    assert_eq!(told.len(), 1, "the officials are told once");
    assert_eq!(told[0].0, OFFICIAL);
    pool.close().await;
}

async fn counts(url: &str, queries: &[&'static str]) -> Option<Vec<i64>> {
    let pool = sqlx::AnyPool::connect(url).await.ok()?;
    let mut out = Vec::new();
    for sql in queries {
        out.push(sqlx::query_scalar(*sql).fetch_one(&pool).await.ok()?);
    }
    pool.close().await;
    Some(out)
}

/// The `n`th citizen's letter to the office's e-Doręczenia address: a general letter.
fn citizen_letter(n: usize) -> Vec<u8> {
    std::fs::read_to_string(fixture("forms/pismo-ogolne-2013.xml"))
        .unwrap()
        .replace(
            "Proszę o wydanie zaświadczenia",
            &format!("Pismo nr {n}: proszę o wydanie zaświadczenia"),
        )
        .into_bytes()
}

/// The office's address in the configuration `Office::start` writes.
const OFFICE_ADE: &str = "AE:PL-00000-00000-EURZD-00";

impl Office {
    /// Puts a citizen's message into the office's e-Doręczenia inbox; its message id.
    async fn put_inbox(&self, from: &str, subject: &str, files: &[(&str, &str, &[u8])]) -> String {
        let files: Vec<serde_json::Value> = files
            .iter()
            .map(|(name, content_type, content)| {
                serde_json::json!({
                    "filename": name,
                    "content_type": content_type,
                    "content": base64::Engine::encode(
                        &base64::engine::general_purpose::STANDARD,
                        content,
                    ),
                })
            })
            .collect();
        let answer: serde_json::Value = self
            .http
            .post(format!("{}/admin/edoreczenia/inbox", self.emulator.url))
            .json(&serde_json::json!({
                "to": OFFICE_ADE,
                "from": from,
                "subject": subject,
                "text_body": "W załączeniu pismo.",
                "files": files,
            }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        answer["messageId"].as_str().unwrap().to_string()
    }

    async fn add_address(&self, entry: serde_json::Value) {
        let status = self
            .http
            .post(format!("{}/admin/edoreczenia/addresses", self.emulator.url))
            .json(&entry)
            .send()
            .await
            .unwrap()
            .status();
        assert!(status.is_success(), "{status}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_citizens_message_is_stored_once_verified_and_answered_to_the_address_it_came_from() {
    let office = Office::start(0, &[]).await;
    // A company's address: not in the BAE by the applicant's PESEL.
    let sender = "AE:PL-55555-44444-FIRMA-07";
    office
        .add_address(serde_json::json!({"ade": sender, "opens_after_days": 0.0}))
        .await;
    let signed = request(7);
    let pdf = b"%PDF-1.4 a scan of a power of attorney".to_vec();
    let request_id = office
        .put_inbox(
            sender,
            "Wniosek o dostęp",
            &[
                ("skan.pdf", "application/pdf", &pdf),
                ("wniosek.xml", "application/xml", &signed),
            ],
        )
        .await;
    let letter_id = office
        .put_inbox(
            sender,
            "Pismo",
            &[("pismo.xml", "text/xml", &citizen_letter(1))],
        )
        .await;
    // A scan alone: what it is, the message's own subject and text say.
    let scan_id = office
        .put_inbox(
            sender,
            "Odpowiedź na wezwanie",
            &[("skan.pdf", "application/pdf", &pdf)],
        )
        .await;
    // The first deletion fails four times in a row (the client's three retries included):
    // the message stays in the box and is fetched again in the next pass.
    office
        .fault(serde_json::json!({"kind": "http500", "operation": "delete", "count": 4}))
        .await;

    let log = office.dir.path().join("daemon.log");
    let mut daemon = spawn_daemon(&office.config, &log);
    sqlx::any::install_default_drivers();
    wait_until(
        Duration::from_secs(90),
        "both messages stored and the request answered",
        || async {
            counts(
                &office.db.url,
                &[
                    "SELECT COUNT(*) FROM outbound_document WHERE status = 'sent'",
                    "SELECT COUNT(*) FROM job WHERE status IN ('pending', 'running')",
                    "SELECT COUNT(*) FROM inbound_delivery WHERE confirmation = 'confirmed'",
                ],
            )
            .await
                == Some(vec![1, 0, 3])
        },
    )
    .await;
    let inbox: Vec<serde_json::Value> =
        serde_json::from_value(office.admin("/admin/edoreczenia/inbox").await).unwrap();
    let status = stop_with_sigterm(&mut daemon, Duration::from_secs(20)).await;
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "{log_text}");

    // Both deleted from the box; stored once each, with the channel's identifiers.
    assert!(
        inbox.iter().all(|m| !m["deleted_at"].is_null()),
        "{inbox:?}"
    );
    let pool = office.pool().await;
    let rows = sqlx::query(
        "SELECT d.id, d.channel, d.channel_message_id, d.sender_address, d.box_address, d.nazwa_pliku, \
         d.content, d.subject, d.signature_indication, i.pull_count, i.confirmation \
         FROM inbound_document d JOIN inbound_delivery i ON i.document_id = d.id ORDER BY d.id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), 3);
    let by_message: HashMap<String, &sqlx::any::AnyRow> =
        rows.iter().map(|r| (r.get::<String, _>(2), r)).collect();
    let req = by_message[&request_id];
    assert_eq!(req.get::<String, _>(1), "edoreczenia");
    assert_eq!(req.get::<String, _>(3), sender);
    assert_eq!(req.get::<String, _>(4), OFFICE_ADE);
    // The XML file is the document; the PDF is kept beside it, byte for byte.
    assert_eq!(req.get::<String, _>(5), "wniosek.xml");
    assert_eq!(req.get::<Vec<u8>, _>(6), signed);
    assert_eq!(req.get::<String, _>(8), "TOTAL-PASSED");
    let (kept, sha): (Vec<u8>, String) =
        sqlx::query_as("SELECT content, sha256 FROM inbound_attachment WHERE document_id = $1")
            .bind(req.get::<i64, _>(0))
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(kept, pdf);
    assert_eq!(sha, hex::encode(sha2::Sha256::digest(&pdf)));
    // One of the two was fetched again after the failed deletion, and recognised.
    let pulls: Vec<i64> = rows.iter().map(|r| r.get::<i64, _>(9)).collect();
    assert_eq!(pulls.iter().sum::<i64>(), 4, "{pulls:?}");
    assert!(rows.iter().all(|r| r.get::<String, _>(10) == "confirmed"));
    let letter = by_message[&letter_id];
    assert_eq!(letter.get::<Vec<u8>, _>(6), citizen_letter(1));
    // Both other messages are correspondence, as an ePUAP letter would be: the general
    // letter under its own title, the scan under the message's subject and text.
    let correspondence: Vec<(i64, String, String, Option<String>)> = sqlx::query_as(
        "SELECT document_id, title, body, sender FROM correspondence ORDER BY document_id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(correspondence.len(), 2, "{correspondence:?}");
    let of = |id: &str| {
        let document: i64 = by_message[id].get(0);
        correspondence
            .iter()
            .find(|c| c.0 == document)
            .unwrap_or_else(|| panic!("no correspondence for {id}: {correspondence:?}"))
    };
    assert!(
        of(&letter_id).2.contains("Pismo nr 1"),
        "{:?}",
        of(&letter_id)
    );
    let scan = of(&scan_id);
    assert_eq!(scan.1, "Odpowiedź na wezwanie");
    assert_eq!(scan.2, "W załączeniu pismo.");
    assert_eq!(scan.3.as_deref(), Some(sender));

    // The request was answered through e-Doręczenia to the address it came from.
    let (channel, recipient, reason): (String, String, String) =
        sqlx::query_as("SELECT channel, recipient, channel_reason FROM outbound_document")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(channel, "edoreczenia");
    assert_eq!(recipient, sender);
    assert!(reason.contains("z którego wpłynął"), "{reason}");
    let sent: Vec<serde_json::Value> =
        serde_json::from_value(office.admin("/admin/edoreczenia/sent").await).unwrap();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["to"], sender);
    let failed: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM job WHERE status = 'failed'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(failed, 0, "{log_text}");
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_while_sending_and_receiving_loses_nothing_and_sends_nothing_twice() {
    use rand::{Rng, SeedableRng};
    const N: usize = 200;
    let office = Office::start(N, &[]).await;
    office.send_requests(0..N).await;
    let mut put = HashMap::new();
    for n in 0..N {
        let id = office
            .put_inbox(
                &ade_of(n),
                &format!("Pismo {n}"),
                &[("pismo.xml", "text/xml", &citizen_letter(n))],
            )
            .await;
        put.insert(id, n);
    }
    sqlx::any::install_default_drivers();
    let progress = || async {
        counts(
            &office.db.url,
            &[
                "SELECT COUNT(*) FROM outbound_document WHERE status IN ('sent', 'delivered', 'review_required')",
                "SELECT COUNT(*) FROM inbound_document WHERE channel = 'edoreczenia'",
                "SELECT COUNT(*) FROM job WHERE status IN ('pending', 'running') AND kind <> 'mail'",
            ],
        )
        .await
        .unwrap_or_default()
    };

    let mut rng = rand::rngs::StdRng::seed_from_u64(17);
    let mut kills = 0;
    for round in 0..60 {
        let log = office.dir.path().join(format!("daemon-{round}.log"));
        let mut daemon = spawn_daemon(&office.config, &log);
        tokio::time::sleep(Duration::from_millis(rng.random_range(300..2500))).await;
        assert!(
            daemon.try_wait().unwrap().is_none(),
            "the daemon exited by itself in round {round}: {}",
            std::fs::read_to_string(&log).unwrap()
        );
        daemon.kill().unwrap();
        daemon.wait().unwrap();
        kills += 1;
        let done = progress().await;
        eprintln!("round {round}: (letters gone, messages received, jobs waiting) {done:?}");
        if done.first() == Some(&(N as i64)) && done.get(1) == Some(&(N as i64)) {
            break;
        }
    }
    assert!(kills >= 5, "killed mid-work several times ({kills})");

    // A last, calm run finishes what the kills left.
    let log = office.dir.path().join("daemon-last.log");
    let mut daemon = spawn_daemon(&office.config, &log);
    // Up and its signal handlers set, before it is asked to stop.
    wait_until(Duration::from_secs(30), "the daemon to start", || async {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("eurzad running"))
    })
    .await;
    wait_until(
        Duration::from_secs(240),
        "every letter sent or held, every message received and its jobs done",
        || async { progress().await == [N as i64, N as i64, 0] },
    )
    .await;
    let inbox: Vec<serde_json::Value> =
        serde_json::from_value(office.admin("/admin/edoreczenia/inbox").await).unwrap();
    let status = stop_with_sigterm(&mut daemon, Duration::from_secs(20)).await;
    assert!(
        status.success(),
        "{}",
        std::fs::read_to_string(&log).unwrap()
    );
    let pool = office.pool().await;

    // No letter reached e-Doręczenia twice; each one is sent, or held for an official and
    // shown as such (the officials were mailed).
    let sent: Vec<serde_json::Value> =
        serde_json::from_value(office.admin("/admin/edoreczenia/sent").await).unwrap();
    let mut copies: HashMap<String, usize> = HashMap::new();
    for m in &sent {
        *copies
            .entry(m["to"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    let twice: Vec<_> = copies.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "sent twice: {twice:?}");
    let letters =
        sqlx::query("SELECT recipient, status, document_identifier FROM outbound_document")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(letters.len(), N, "one letter per request");
    let mut held: usize = 0;
    for l in &letters {
        let recipient: String = l.get(0);
        match l.get::<String, _>(1).as_str() {
            // Delivered: its recipient opened it (E.1).
            "sent" | "delivered" => {
                let id: String = l.get(2);
                let at_operator = sent.iter().find(|m| m["to"] == recipient.as_str());
                assert_eq!(
                    at_operator.map(|m| m["message_id"].as_str().unwrap()),
                    Some(id.as_str()),
                    "{recipient}: the stored message id is the operator's"
                );
            }
            "review_required" => held += 1,
            other => panic!("{recipient}: {other}"),
        }
    }
    if held > 0 {
        let (_, listing) = common::eurzad_with_config(&["requests", "list"], &office.config);
        let shown = listing
            .lines()
            .filter(|l| l.contains("letter review_required"))
            .count();
        assert_eq!(shown, held, "{listing}");
    }

    // Every citizen's message is stored once, byte for byte, and deleted from the box.
    assert!(inbox.iter().all(|m| !m["deleted_at"].is_null()));
    let received = sqlx::query(
        "SELECT channel_message_id, content FROM inbound_document WHERE channel = 'edoreczenia'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(received.len(), N);
    let mut seen = HashSet::new();
    for r in &received {
        let id: String = r.get(0);
        assert!(seen.insert(id.clone()), "{id} stored twice");
        assert_eq!(r.get::<Vec<u8>, _>(1), citizen_letter(put[&id]), "{id}");
    }
    let failed: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM job WHERE status = 'failed'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(failed, 0);
    eprintln!(
        "{kills} kills: {} letters sent once each, {held} held for an official, {N} messages received once each",
        N - held
    );
    pool.close().await;
}
