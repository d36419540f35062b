//! Bench: replies through e-Doręczenia, end to end, per second: access requests come from
//! the ePUAP emulator, and each applicant has an address in the e-Doręczenia emulator's BAE
//! (both in one separate `eurzad emulator` process on loopback). Per request: pull, verdict,
//! account, the BAE search by PESEL, the letter sealed (XAdES) and sent to the UA API (a
//! task, polled until finished), then its evidences (A.1, D.1, E.1) fetched, their seals
//! verified and stored. The daemon runs in this process on SQLite; its CPU per letter is set
//! against `openssl speed rsa2048` in the same run. `cargo bench --bench provision` is the
//! same run answering through ePUAP.
//!
//! `cargo bench --bench edoreczenia`; EURZAD_BENCH_REQUESTS (default 300) sizes the run.

use std::time::Instant;

mod common;

use base64::Engine;
use common::{cpu_time, openssl_rsa2048_sign};
use eurzad::config::Config;

/// The allocator the `eurzad` binary uses (src/main.rs): the daemon runs in this process.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn ade(n: usize) -> String {
    format!("AE:PL-{:05}-{:05}-BENCH-01", 10_000 + n, 30_000 + n)
}

fn main() {
    let requests: usize = common::env_number("EURZAD_BENCH_REQUESTS", 300);
    eurzad::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let adres = "/urzad_testowy/skrytka";
    let addresses: Vec<serde_json::Value> = (0..requests)
        .map(|n| serde_json::json!({"ade": ade(n), "pesel": common::pesel(n), "opens_after_days": 0.0}))
        .collect();
    let addresses_file = dir.path().join("addresses.json");
    std::fs::write(&addresses_file, serde_json::to_vec(&addresses).unwrap()).unwrap();
    let (mut emulator, url) = common::start_emulator_with(
        &dir.path().join("emulator"),
        adres,
        &[
            "--edoreczenia",
            "--edoreczenia-addresses",
            addresses_file.to_str().unwrap(),
            "--edoreczenia-task-delay",
            "20ms",
        ],
    );

    // The runtime the `eurzad` binary runs on.
    let runtime = eurzad::daemon::runtime().unwrap();
    runtime.block_on(common::put_documents(
        &url,
        (0..requests).map(|n| {
            serde_json::json!({
                "adres_skrytki": adres,
                "nazwa_pliku": format!("wniosek-{n}.xml"),
                "content": base64::engine::general_purpose::STANDARD.encode(common::access_request(n)),
                "adres_odpowiedzi": format!("/osoba{n}/skrytka"),
                "dane_nadawcy": {"uzytkownik": format!("osoba{n}"), "system": null},
            })
        }),
    ));

    let config = Config::from_toml(
        "bench",
        &format!(
            "[database]\nurl = \"sqlite://{db}\"\n[epuap]\nendpoint = \"{url}\"\nwss_certificate = \"{oc}\"\n\
             wss_private_key = \"{ok}\"\nserver_certificate = \"{ec}\"\n[[epuap.boxes]]\npodmiot = \"urzad_testowy\"\n\
             nazwa = \"skrytka\"\nadres = \"{adres}\"\n[trust]\ntrusted_profile_certificates = [\"{ec}\"]\n\
             [notify]\nofficials = []\nmail_dir = \"{mail}\"\n[log]\nlevel = \"error\"\n\
             [edoreczenia]\nendpoint = \"{url}\"\nade = \"AE:PL-00000-00000-EURZD-00\"\nsystem_certificate = \"{oc}\"\n\
             system_private_key = \"{ok}\"\noperator_certificate = \"{ec}\"\n",
            db = dir.path().join("bench.db").display(),
            oc = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/pki/office.pem"),
            ok = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/pki/office.key"),
            ec = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/pki/epuap.pem"),
            mail = dir.path().join("mail").display(),
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
        report.provisioning.letters_sent as usize,
        requests,
        "every letter sent: {}",
        report.render()
    );
    let by_edoreczenia = report
        .letters
        .iter()
        .filter(|(_, _, l)| l.channel == "edoreczenia")
        .count();
    let evidences: usize = report
        .letters
        .iter()
        .map(|(_, _, l)| l.evidences.len())
        .sum();
    assert_eq!(by_edoreczenia, requests, "{}", report.render());

    let rsa = openssl_rsa2048_sign();
    let cpu = (cpu_after - cpu_before) / requests as u32;
    println!(
        "\nreplies through e-Doręczenia end to end (emulator in another process, SQLite, one daemon)\n"
    );
    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| letters (each a verified request, a BAE search, a sealed letter sent as a task) | {requests} |"
    );
    println!(
        "| evidences fetched by the end, seal verified and stored (A.1; D.1 and E.1 fall due a second later) | {evidences} |"
    );
    println!("| wall time | {:.2} s |", wall.as_secs_f64());
    println!(
        "| letters per second | {:.1} |",
        requests as f64 / wall.as_secs_f64()
    );
    println!(
        "| daemon CPU per letter | {:.2} ms |",
        cpu.as_secs_f64() * 1e3
    );
    println!(
        "| openssl speed rsa2048, one signature | {:.3} ms |",
        rsa.as_secs_f64() * 1e3
    );
    println!(
        "| CPU per letter / RSA signature | {:.1}x |",
        cpu.as_secs_f64() / rsa.as_secs_f64()
    );
    println!(
        "| peak RSS of the bench process | {} MiB |",
        max_rss_kib / 1024
    );
}
