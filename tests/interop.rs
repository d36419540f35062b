//! Interop: a request the client signs verifies with the `xmlsec1` command-line tool (an
//! independent verifier), with the office certificate and nothing else.

use std::process::Command;

use chrono::Utc;
use eurzad::emulator::demo_pki;
use eurzad::epuap::soap::{self, BoxRef, Operation};
use eurzad::epuap::wssec::{self, Envelope};

fn xmlsec1_verify(envelope: &str, certificate: &[u8]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let message = dir.path().join("request.xml");
    let cert = dir.path().join("cert.pem");
    std::fs::write(&message, envelope).unwrap();
    std::fs::write(&cert, certificate).unwrap();
    let output = Command::new("xmlsec1")
        .args([
            "--verify",
            "--enabled-reference-uris",
            "same-doc",
            "--id-attr:Id",
            "Body",
            "--id-attr:Id",
            "Timestamp",
        ])
        .arg("--pubkey-cert-pem")
        .arg(&cert)
        .arg(&message)
        .output()
        .expect("xmlsec1 is installed (apt-get install xmlsec1; .ci/run does it)");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn signed_request() -> String {
    let mailbox = BoxRef {
        podmiot: "urzad_testowy".into(),
        nazwa: "skrytka".into(),
        adres: "/urzad_testowy/skrytka".into(),
    };
    let body = soap::pull_request(
        Operation::PotwierdzOdebranie,
        &mailbox,
        Some("qZk+NkcGgWq6PiVxeFDCbJzQ2J0="),
    );
    wssec::sign_envelope(
        &Envelope {
            header_blocks: "",
            body: &body,
        },
        &demo_pki::office_key(),
        Utc::now(),
        std::time::Duration::from_secs(300),
    )
    .unwrap()
}

#[test]
fn xmlsec1_verifies_what_the_client_signs() {
    let envelope = signed_request();
    let (ok, log) = xmlsec1_verify(&envelope, demo_pki::OFFICE_CERT);
    assert!(ok, "xmlsec1 refused our signature:\n{log}\n{envelope}");
    assert!(log.contains("OK"), "{log}");
}

#[test]
fn xmlsec1_refuses_a_tampered_body_and_the_wrong_certificate() {
    let envelope = signed_request();
    let tampered = envelope.replace("urzad_testowy/skrytka", "urzad_testowy/inna");
    assert_ne!(tampered, envelope);
    assert!(
        !xmlsec1_verify(&tampered, demo_pki::OFFICE_CERT).0,
        "tampered Body must fail"
    );
    assert!(
        !xmlsec1_verify(&envelope, demo_pki::EPUAP_CERT).0,
        "another certificate must fail"
    );
}
