//! Bench: draining the emulator (a separate `eurzad emulator` process on loopback) with the
//! daemon running in this process, on SQLite. Reports documents per second, the daemon's CPU
//! time per document (getrusage of this process only: the emulator's work is not counted),
//! and that figure relative to the RSA-2048 signing cost measured in the same run by
//! `openssl speed rsa2048`. Target: CPU per document at most 3x the two RSA signatures the
//! daemon must make per document (pobierzNastepny and potwierdzOdebranie requests). The
//! table also prints the floor the parts measured in the same run set: two signed requests
//! and two verified answers, without HTTP, storage or scheduling; and how much of the drain
//! the client's WS-Security work took in the run itself (its threads' CPU clocks).
//!
//! `cargo bench --bench drain`; EURZAD_BENCH_DOCS (default 1000) and EURZAD_BENCH_BYTES
//! (default 8192) size the run.

use std::time::{Duration, Instant};

mod common;

use base64::Engine;
use chrono::Utc;
use common::{cpu_time, openssl_rsa2048_sign};
use eurzad::config::Config;
use eurzad::emulator::demo_pki;
use eurzad::epuap::wssec::{self, Envelope};

/// The allocator the `eurzad` binary uses (src/main.rs): the daemon runs in this process.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let docs: u64 = common::env_number("EURZAD_BENCH_DOCS", 1000);
    let bytes: usize = common::env_number("EURZAD_BENCH_BYTES", 8192);
    eurzad::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let adres = "/urzad_testowy/skrytka";

    let (mut emulator, url) = common::start_emulator(&dir.path().join("emulator"), adres);

    // The runtime the `eurzad` binary runs on.
    let runtime = eurzad::daemon::runtime().unwrap();
    runtime.block_on(common::put_documents(
        &url,
        (0..docs).map(|n| {
            let mut content = format!("<dokument nr=\"{n}\">").into_bytes();
            content.resize(bytes, b'x');
            serde_json::json!({
                "adres_skrytki": adres, "nazwa_pliku": format!("{n}.xml"),
                "content": base64::engine::general_purpose::STANDARD.encode(&content),
            })
        }),
    ));

    let config = Config::from_toml(
        "bench",
        &format!(
            "[database]\nurl = \"sqlite://{db}\"\n[epuap]\nendpoint = \"{url}\"\nwss_certificate = \"{oc}\"\n\
             wss_private_key = \"{ok}\"\nserver_certificate = \"{ec}\"\n[[epuap.boxes]]\npodmiot = \"urzad_testowy\"\n\
             nazwa = \"skrytka\"\nadres = \"{adres}\"\n[log]\nlevel = \"error\"\n",
            db = dir.path().join("bench.db").display(),
            oc = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/pki/office.pem"),
            ok = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/pki/office.key"),
            ec = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/pki/epuap.pem"),
        ),
    )
    .unwrap();

    let (cpu_before, _) = cpu_time();
    let wall = Instant::now();
    let report = runtime
        .block_on(eurzad::daemon::run(
            eurzad::settings::Settings::resolve(config).unwrap(),
            true,
        ))
        .unwrap();
    let wall = wall.elapsed();
    let (cpu_after, max_rss_kib) = cpu_time();
    let _ = emulator.kill();
    let _ = emulator.wait();
    assert_eq!(
        report.inbox.stored,
        docs,
        "every document drained: {}",
        report.render()
    );

    // Our own signing cost in the same run, for reference: one signed request envelope.
    let body = r#"<ob:ZapytaniePullPobierz xmlns:ob="http://wsdl.epuap.gov.pl/obiekty/"><podmiot>u</podmiot><nazwaSkrytki>s</nazwaSkrytki><adresSkrytki>/u/s</adresSkrytki></ob:ZapytaniePullPobierz>"#;
    let key = demo_pki::office_key();
    let rounds = 300;
    let started = cpu_time().0;
    for _ in 0..rounds {
        wssec::sign_envelope(
            &Envelope {
                header_blocks: "",
                body,
            },
            &key,
            Utc::now(),
            Duration::from_secs(300),
        )
        .unwrap();
    }
    let our_sign = (cpu_time().0 - started) / rounds;
    // The parts that handle a whole document run fewer times for large documents (at most
    // about 200 MB in all: the store part writes each copy to disk).
    let rounds = (200_000_000 / bytes.max(1)).clamp(5, 300) as u32;

    // Where the time goes, measured in the same process: verifying one signed 8 KB
    // pobierzNastepny answer, and storing + confirming one document in SQLite.
    let mailbox = eurzad::epuap::soap::BoxRef {
        podmiot: "u".into(),
        nazwa: "s".into(),
        adres: "/u/s".into(),
    };
    let (answer, document) = {
        let mut content = b"<dokument>".to_vec();
        content.resize(bytes, b'x');
        let pulled = eurzad::document::PulledDocument {
            dane_podmiotu: eurzad::document::SubjectData {
                identyfikator: "jan".into(),
                typ_osoby: "F".into(),
                ..Default::default()
            },
            dane_nadawcy: Default::default(),
            data_nadania: "2026-11-26T10:00:00.000Z".into(),
            nazwa_skrytki: "s".into(),
            adres_skrytki: "/u/s".into(),
            adres_odpowiedzi: None,
            czy_testowe: false,
            dane_dodatkowe: vec![],
            nazwa_pliku: "a.xml".into(),
            typ_pliku: None,
            content,
        };
        let status = eurzad::epuap::soap::Status {
            kod: 1,
            komunikat: Some("OK".into()),
        };
        let payload = eurzad::epuap::soap::pobierz_response(&status, Some(&pulled));
        let signed = wssec::sign_envelope(
            &Envelope {
                header_blocks: "",
                body: &payload,
            },
            &demo_pki::epuap_key(),
            Utc::now(),
            Duration::from_secs(300),
        )
        .unwrap();
        (signed, pulled)
    };
    let policy = wssec::VerifyPolicy {
        limits: eurzad::xml::Limits::default(),
        require_timestamp: false,
        clock_skew: Duration::from_secs(300),
    };
    let started = cpu_time().0;
    for _ in 0..rounds {
        wssec::open_envelope(
            answer.as_bytes(),
            demo_pki::EPUAP_CERT,
            &policy,
            Utc::now(),
            |opened| {
                eurzad::epuap::soap::read_pobierz(opened.payload, usize::MAX)
                    .map_err(|_| wssec::SecurityError::NotCovered("x"))
            },
        )
        .unwrap();
    }
    let our_verify = (cpu_time().0 - started) / rounds;
    let store_cost = runtime.block_on(async {
        let store = eurzad::store::Store::connect(
            &format!("sqlite://{}", dir.path().join("parts.db").display()),
            5,
        )
        .await
        .unwrap();
        store.migrate().await.unwrap();
        // As a box task stores and confirms, through its own writer.
        let mut writer = store.inbox_writer().await.unwrap();
        let mut document = document;
        let started = cpu_time().0;
        for n in 0..rounds {
            document.data_nadania = format!("2026-11-26T10:00:{n}Z");
            let stored = writer
                .store_pulled(&mailbox.adres, &document, "x")
                .await
                .unwrap();
            writer
                .infer_confirmed(&mailbox.adres, Some(stored.id))
                .await
                .unwrap();
            writer.mark_confirmed(stored.id).await.unwrap();
        }
        (cpu_time().0 - started) / rounds
    });

    let rsa = openssl_rsa2048_sign();
    let cpu_per_doc = (cpu_after - cpu_before) / docs as u32;
    let ratio = cpu_per_doc.as_secs_f64() / (2.0 * rsa.as_secs_f64());
    let phases = report.cpu.expect("a --once run measures its phases");
    let drain_per_doc = phases.drain / docs as u32;
    let jobs_per_doc = phases.jobs / docs as u32;
    let drain_ratio = drain_per_doc.as_secs_f64() / (2.0 * rsa.as_secs_f64());
    println!(
        "\neurzad drain bench ({docs} documents of {bytes} B, SQLite, emulator in a separate process)"
    );
    println!("| measure                                   | value      |");
    println!("|-------------------------------------------|------------|");
    println!(
        "| wall time                                 | {:>8.2} s |",
        wall.as_secs_f64()
    );
    println!(
        "| documents per second                      | {:>10.1} |",
        docs as f64 / wall.as_secs_f64()
    );
    println!(
        "| daemon CPU per document                   | {:>7.3} ms |",
        cpu_per_doc.as_secs_f64() * 1e3
    );
    println!(
        "|   of which draining (pull, store, confirm)| {:>7.3} ms |",
        drain_per_doc.as_secs_f64() * 1e3
    );
    // Within the drain, measured on the box tasks' own threads: what WS-Security took.
    let signing = phases.drain_security.signing / docs as u32;
    let verifying = phases.drain_security.verifying / docs as u32;
    println!(
        "|     signing the requests                  | {:>7.3} ms |",
        signing.as_secs_f64() * 1e3
    );
    println!(
        "|     verifying and reading the answers     | {:>7.3} ms |",
        verifying.as_secs_f64() * 1e3
    );
    println!(
        "|     the rest: HTTP, store, confirm, tasks | {:>7.3} ms |",
        drain_per_doc
            .saturating_sub(signing + verifying)
            .as_secs_f64()
            * 1e3
    );
    println!(
        "|   of which the job steps that follow      | {:>7.3} ms |",
        jobs_per_doc.as_secs_f64() * 1e3
    );
    println!(
        "| RSA-2048 sign (openssl speed)             | {:>7.3} ms |",
        rsa.as_secs_f64() * 1e3
    );
    println!(
        "| signed envelope, eurzad/xmlsec (CPU)      | {:>7.3} ms |",
        our_sign.as_secs_f64() * 1e3
    );
    println!(
        "| verify + read one answer, eurzad (CPU)    | {:>7.3} ms |",
        our_verify.as_secs_f64() * 1e3
    );
    println!(
        "| store + confirm one document, SQLite (CPU)| {:>7.3} ms |",
        store_cost.as_secs_f64() * 1e3
    );
    println!(
        "| CPU per document / (2 x RSA-2048 sign)    | {:>9.2}x |",
        ratio
    );
    println!(
        "| draining only / (2 x RSA-2048 sign)       | {:>9.2}x |",
        drain_ratio
    );
    println!(
        "| WS-Security in the drain / (2 x RSA-2048) | {:>9.2}x |",
        (signing + verifying).as_secs_f64() / (2.0 * rsa.as_secs_f64())
    );
    // What every document needs at the least, by the parts measured above: two signed
    // requests and two verified answers, with nothing for HTTP, storage or scheduling.
    let crypto_floor = 2.0 * (our_sign + our_verify).as_secs_f64();
    println!(
        "| 2 signed requests + 2 verified answers    | {:>7.3} ms |",
        crypto_floor * 1e3
    );
    println!(
        "|   the same / (2 x RSA-2048 sign)          | {:>9.2}x |",
        crypto_floor / (2.0 * rsa.as_secs_f64())
    );
    println!(
        "| max RSS of the daemon process             | {:>7.1} MB |",
        max_rss_kib as f64 / 1024.0
    );
    println!(
        "target: ratio <= 3.0 -> {}",
        if ratio <= 3.0 { "met" } else { "NOT met" }
    );
}
