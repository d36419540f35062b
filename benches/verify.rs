//! Bench: documents per second verifying a 10 KB enveloped XAdES-BES (RSA-2048/SHA-256,
//! chain of 3: leaf and issuing CA in X509Data, root as the anchor) on one core, in-process,
//! with the whole eurzad policy (parse, anti-wrapping, XAdES checks, keys manager, chain).
//! Next to it, in the same run: python-xmlsec on the same document (if a python with xmlsec
//! built against the system libxmlsec1 is found: EURZAD_BENCH_PYTHON, or
//! target/python-xmlsec/bin/python from benches/setup-python-xmlsec), and
//! `openssl speed rsa2048` (verifications per second, the physical floor's main part).
//!
//! `cargo bench --bench verify`; EURZAD_BENCH_ROUNDS (default 2000).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use eurzad::signature::{self, TrustPolicy};

fn cpu_time() -> Duration {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn openssl_rsa2048_verify_per_second() -> f64 {
    let output = Command::new("openssl")
        .args(["speed", "-seconds", "2", "rsa2048"])
        .output()
        .expect("openssl");
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("rsa 2048 bits"))
        .expect("openssl speed output");
    line.split_whitespace().nth(6).unwrap().parse().unwrap()
}

fn python() -> Option<String> {
    let candidates = [
        std::env::var("EURZAD_BENCH_PYTHON").ok(),
        Some(
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/target/python-xmlsec/bin/python"
            )
            .to_string(),
        ),
    ];
    candidates.into_iter().flatten().find(|p| {
        Command::new(p)
            .args(["-c", "import xmlsec, lxml"])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

fn main() {
    let rounds: u32 = std::env::var("EURZAD_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let document_path = root.join("signed/xades-10k-chain3.xml");
    let anchor_path = root.join("pki/chain/root.pem");
    let document = std::fs::read(&document_path).unwrap();
    let trust = TrustPolicy {
        anchors: vec![std::fs::read(&anchor_path).unwrap()],
        ..TrustPolicy::default()
    };
    let now = chrono::Utc::now();
    assert!(
        signature::verify(&document, &trust, now).passed(),
        "the bench document verifies"
    );

    let started = cpu_time();
    for _ in 0..rounds {
        let verdict = signature::verify(&document, &trust, now);
        assert!(verdict.passed());
    }
    let ours = rounds as f64 / (cpu_time() - started).as_secs_f64();

    let python = python().map(|python| {
        let output = Command::new(&python)
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/benches/python_xmlsec_verify.py"
            ))
            .arg(&document_path)
            .arg(&anchor_path)
            .arg(rounds.to_string())
            .output()
            .expect("python runs");
        let text = String::from_utf8_lossy(&output.stdout).trim().to_string();
        assert!(
            output.status.success(),
            "python-xmlsec bench failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        text
    });
    let rsa_verify = openssl_rsa2048_verify_per_second();

    println!(
        "\neurzad verify bench ({} B XAdES-BES, RSA-2048/SHA-256, chain of 3, one core, {rounds} rounds)",
        document.len()
    );
    println!("| verifier                                   | documents/s |");
    println!("|--------------------------------------------|-------------|");
    println!("| eurzad (full policy, cached keys manager)  | {ours:>11.1} |");
    match &python {
        Some(text) => {
            let mut parts = text.split_whitespace();
            let rate: f64 = parts.next().unwrap().parse().unwrap();
            println!(
                "| python-xmlsec (libxmlsec1 {:<7}, core)   | {rate:>11.1} |",
                parts.next().unwrap_or("?")
            );
            println!(
                "ratio eurzad / python-xmlsec: {:.2}x (target: at least 2x)",
                ours / rate
            );
        }
        None => println!(
            "| python-xmlsec                              | not found (run benches/setup-python-xmlsec) |"
        ),
    }
    println!("| openssl speed rsa2048, verify/s            | {rsa_verify:>11.1} |");
}
