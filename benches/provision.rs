//! Bench: access requests provisioned end to end, per second: the emulator (a separate
//! `eurzad emulator` process on loopback) → pull (WS-Security both ways) → verdict (a
//! trusted-profile XAdES) → form → account → the reply letter sealed (XAdES) and sent with
//! `nadaj` (WS-Security both ways) → its UPP stored. The daemon runs in this process on
//! SQLite; its CPU time per request is set against `openssl speed rsa2048` in the same run.
//! Each request needs at least four RSA-2048 signatures of ours (pobierzNastepny,
//! potwierdzOdebranie, the letter's seal, nadaj) and three verifications.
//!
//! `cargo bench --bench provision`; EURZAD_BENCH_REQUESTS (default 300) sizes the run.

use std::time::Instant;

mod common;

use base64::Engine;
use common::{cpu_time, openssl_rsa2048_sign};
use eurzad::config::Config;

fn main() {
    let requests: usize = common::env_number("EURZAD_BENCH_REQUESTS", 300);
    eurzad::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let adres = "/urzad_testowy/skrytka";
    let (mut emulator, url) = common::start_emulator(&dir.path().join("emulator"), adres);

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
             [notify]\nofficials = []\nmail_dir = \"{mail}\"\n[log]\nlevel = \"error\"\n",
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
    let replied = report
        .provisioning
        .requests
        .iter()
        .find(|(s, _)| s == "replied")
        .map(|(_, n)| *n)
        .unwrap_or(0);
    assert_eq!(
        replied as usize,
        requests,
        "every request replied: {}",
        report.render()
    );
    assert_eq!(report.provisioning.accounts as usize, requests);
    assert_eq!(report.provisioning.letters_sent as usize, requests);

    let rsa = openssl_rsa2048_sign();
    let cpu = (cpu_after - cpu_before) / requests as u32;
    println!("\nprovisioning end to end (emulator in another process, SQLite, one daemon)\n");
    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| requests (trusted profile, each replied with a sealed letter and its UPP) | {requests} |"
    );
    println!("| wall time | {:.2} s |", wall.as_secs_f64());
    println!(
        "| requests per second | {:.1} |",
        requests as f64 / wall.as_secs_f64()
    );
    println!(
        "| daemon CPU per request | {:.2} ms |",
        cpu.as_secs_f64() * 1e3
    );
    println!(
        "| openssl speed rsa2048, one signature | {:.3} ms |",
        rsa.as_secs_f64() * 1e3
    );
    println!(
        "| CPU per request / RSA signature | {:.1}x |",
        cpu.as_secs_f64() / rsa.as_secs_f64()
    );
    println!(
        "| peak RSS of the bench process | {} MiB |",
        max_rss_kib / 1024
    );
}
