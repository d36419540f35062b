//! Every row of `fixtures/xmldsig-vectors/expected.tsv` (the shared public XML-DSig, XAdES,
//! WS-Security and parser-attack vectors) through `eurzad verify`, with the row's trust
//! anchor and verification time: the verdict must agree with the row, in bounded time.
//! Legacy vectors are SHA-1, so rows run with --allow-sha1; the SHA-1 policy itself is
//! checked separately below.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn vectors() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/xmldsig-vectors"
    ))
}

/// Runs `eurzad verify` in the vectors folder; returns (passed, output, elapsed).
fn verify(args: &[&str]) -> (bool, String, Duration) {
    let started = Instant::now();
    let output = Command::new(common::BIN)
        .arg("verify")
        // Tests reach loopback only: the vectors' certificates name CRLs and OCSP responders
        // on the internet, so revocation is judged offline (by --crl files alone).
        .arg("--offline")
        .args(args)
        .current_dir(vectors())
        .output()
        .unwrap();
    let elapsed = started.elapsed();
    assert!(
        matches!(output.status.code(), Some(0) | Some(1)),
        "usage error: {output:?}"
    );
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr),
        elapsed,
    )
}

#[test]
fn every_shared_vector_gets_the_expected_verdict() {
    let table = std::fs::read_to_string(vectors().join("expected.tsv")).unwrap();
    let mut disagreements = Vec::new();
    let mut rows = 0;
    for line in table.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let columns: Vec<&str> = line.split('\t').collect();
        let (file, expected, anchor, at, profile) =
            (columns[0], columns[1], columns[2], columns[4], columns[5]);
        let mut args = vec!["--allow-sha1"];
        if let Some(path) = anchor.strip_prefix("ca:") {
            args.extend(["--ca", path]);
        } else if let Some(path) = anchor.strip_prefix("pinned:") {
            args.extend(["--pinned", path]);
        }
        if at != "now" && at != "-" {
            args.extend(["--at", at]);
        }
        args.push(file);
        let (passed, output, elapsed) = verify(&args);
        rows += 1;
        if passed != (expected == "valid") {
            disagreements.push(format!(
                "{file} with {anchor}: expected {expected}, got:\n{output}"
            ));
        }
        let bound = if profile == "parser" {
            Duration::from_millis(500)
        } else {
            Duration::from_secs(5)
        };
        assert!(elapsed < bound, "{file} took {elapsed:?}");
    }
    assert_eq!(rows, 40, "all rows of expected.tsv ran");
    assert!(
        disagreements.is_empty(),
        "{} disagreement(s):\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
}

#[test]
fn sha1_needs_the_legacy_switch() {
    let args = [
        "--ca",
        "public/xmlsec/phaos-xmldsig-three/certs/rsa-ca-cert.der",
        "--at",
        "2009-01-01T10:00:00Z",
        "public/xmlsec/phaos-xmldsig-three/signature-rsa-enveloped.xml",
    ];
    let (passed, output, _) = verify(&args);
    assert!(!passed && output.contains("SHA-1"), "{output}");
    let mut legacy = vec!["--allow-sha1"];
    legacy.extend(args);
    assert!(verify(&legacy).0);
}

#[test]
fn the_notes_of_the_negative_rows_hold() {
    // These legacy vectors are SHA-1.
    // "signer cert expired 2026-03-22 (valid if verification time 2026-03-15)"
    let file = "public/xmlsec/aleksey-xmldsig-01/enveloping-expired-cert.xml";
    let ca = "public/xmlsec/keys/cacert.pem";
    assert!(
        verify(&[
            "--allow-sha1",
            "--ca",
            ca,
            "--at",
            "2026-03-15T12:00:00Z",
            file
        ])
        .0
    );
    assert!(
        !verify(&[
            "--allow-sha1",
            "--ca",
            ca,
            "--at",
            "2026-04-15T12:00:00Z",
            file
        ])
        .0
    );
    // "intermediate ca2cert absent (valid if keys/ca2cert.pem is configured as intermediate)"
    let file = "public/xmlsec/aleksey-xmldsig-01/enveloped-x509-missing-cert.xml";
    assert!(
        verify(&[
            "--allow-sha1",
            "--ca",
            ca,
            "--intermediate",
            "public/xmlsec/keys/ca2cert.pem",
            file
        ])
        .0
    );
    // An intermediate is not an anchor: alone it proves nothing.
    assert!(
        !verify(&[
            "--allow-sha1",
            "--ca",
            "public/xmlsec/keys/same-subj-cert1.pem",
            "--intermediate",
            "public/xmlsec/keys/ca2cert.pem",
            file
        ])
        .0
    );
}

#[test]
fn an_issuing_ca_is_an_anchor_of_its_own() {
    // Trusted lists name issuing CAs, not roots (ETSI TS 119 615): an anchor that is not
    // self-signed must end the chain, even when the document carries the root too.
    let file = "public/xmlsec/aleksey-xmldsig-01/enveloping-sha256-rsa-sha256.xml";
    assert!(verify(&["--ca", "public/xmlsec/keys/ca2cert.pem", file]).0);
    // ... and an anchor elsewhere does not help.
    assert!(!verify(&["--ca", "public/xmlsec/keys/same-subj-cert1.pem", file]).0);
}

#[test]
fn json_output_has_the_contract_fields() {
    let (passed, output, _) = verify(&[
        "--json",
        "--pinned",
        "public/dss/certs/dss-signed.signer.pem",
        "--at",
        "2019-02-19T12:29:01Z",
        "public/dss/dss-signed.xml",
    ]);
    assert!(passed, "{output}");
    let line: serde_json::Value = serde_json::from_str(output.lines().next().unwrap()).unwrap();
    for field in [
        "file",
        "indication",
        "subindication",
        "reason",
        "signature_kind",
        "signer",
    ] {
        assert!(line.get(field).is_some(), "{field} in {line}");
    }
    assert_eq!(line["indication"], "TOTAL-PASSED");
    assert_eq!(line["signature_kind"], "xades");
}
