//! Signed forms as citizens send them: XAdES-BES sealed with the test citizens' keys
//! (fixtures/pki/citizens, shaped like Polish qualified certificates), judged by kind, read by
//! the forms registry. Also the checks beyond core validity: the qualified statement, the
//! signing time against the certificate, CRLs from configuration, and `eurzad verify` using
//! the trust of config.toml when given no trust flag.

use std::process::Command;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use eurzad::forms::{Form, Registry};
use eurzad::signature::certificate::Crl;
use eurzad::signature::{self, Indication, KindTrust, SignatureKind, TrustPolicy, seal};
use eurzad::xmldsig::SigningKey;

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(format!("{}/fixtures/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn citizen(name: &str) -> SigningKey {
    SigningKey {
        private_key_pem: fixture(&format!("pki/citizens/{name}.key")),
        certificate_pem: fixture(&format!("pki/citizens/{name}.pem")),
    }
}

fn kinds() -> KindTrust {
    KindTrust {
        qualified: TrustPolicy {
            anchors: vec![fixture("pki/ca.pem")],
            ..TrustPolicy::default()
        },
        ..KindTrust::default()
    }
}

fn sealed(form: &str, who: &str, at: DateTime<Utc>) -> Vec<u8> {
    seal::xades_enveloped(&fixture(form), &citizen(who), at, "podpis").unwrap()
}

#[test]
fn a_qualified_access_request_passes_and_names_its_signer() {
    let now = Utc::now();
    let signed_at = now - TimeDelta::minutes(5);
    let bytes = sealed("forms/wniosek-dla-siebie.xml", "jan-kowalski", signed_at);
    let verdict = signature::verify_by_kind(&bytes, &kinds(), now);
    assert_eq!(
        verdict.indication,
        Indication::TotalPassed,
        "{}",
        verdict.reason
    );
    assert_eq!(verdict.kind, Some(SignatureKind::Qualified));
    assert_eq!(verdict.qualified_certificate, Some(true));
    assert_eq!(
        verdict.signing_time.map(|t| t.timestamp()),
        Some(signed_at.timestamp())
    );
    let identity = verdict.identity.expect("identity");
    assert_eq!(identity.pesel.as_deref(), Some("85031412347"));
    assert!(identity.pesel_valid);
    assert_eq!(verdict.chain.len(), 1);
    // The signed form still matches its XSD and reads as an access request.
    let Form::AccessRequest(request) = Registry::default().read(&bytes).unwrap() else {
        panic!("not an access request")
    };
    assert_eq!(request.applicant.pesel, "85031412347");
}

#[test]
fn a_certificate_without_qc_compliance_is_reported() {
    let now = Utc::now();
    let bytes = sealed("forms/wniosek-dla-siebie.xml", "not-qualified", now);
    let verdict = signature::verify_by_kind(&bytes, &kinds(), now);
    assert!(verdict.passed(), "{}", verdict.reason);
    assert_eq!(verdict.qualified_certificate, Some(false));
}

#[test]
fn a_company_signer_carries_its_organization_identifier() {
    let now = Utc::now();
    let bytes = sealed("forms/upowaznienie-firma.xml", "firma-zarzad", now);
    let verdict = signature::verify_by_kind(&bytes, &kinds(), now);
    assert!(verdict.passed(), "{}", verdict.reason);
    let identity = verdict.identity.unwrap();
    assert_eq!(
        identity.organization_identifier.as_deref(),
        Some("VATPL-5252955037")
    );
    assert_eq!(identity.surname.as_deref(), Some("Zielińska"));
}

#[test]
fn signing_time_must_fit_the_certificate_and_the_clock() {
    let now = Utc::now();
    let future = sealed(
        "forms/wniosek-dla-siebie.xml",
        "jan-kowalski",
        now + TimeDelta::hours(2),
    );
    let verdict = signature::verify_by_kind(&future, &kinds(), now);
    assert_eq!(verdict.indication, Indication::Indeterminate);
    assert_eq!(verdict.subindication, Some("SIG_CONSTRAINTS_FAILURE"));
    assert!(
        verdict.reason.contains("in the future"),
        "{}",
        verdict.reason
    );

    let before_issue = Utc.with_ymd_and_hms(2020, 1, 1, 0, 0, 0).unwrap();
    let early = sealed("forms/wniosek-dla-siebie.xml", "jan-kowalski", before_issue);
    let verdict = signature::verify_by_kind(&early, &kinds(), now);
    assert_eq!(verdict.subindication, Some("SIG_CONSTRAINTS_FAILURE"));
    assert!(
        verdict
            .reason
            .contains("outside the signer certificate's validity"),
        "{}",
        verdict.reason
    );
}

fn crl_trust(crl: &str) -> Result<TrustPolicy, String> {
    let anchors = vec![fixture("pki/ca.pem")];
    let crl = Crl::load(&fixture(crl), &anchors)?;
    Ok(TrustPolicy {
        anchors,
        revocation: eurzad::signature::revocation::Revocation::offline(vec![crl]),
        ..TrustPolicy::default()
    })
}

#[test]
fn a_configured_crl_revokes_from_its_revocation_date() {
    let trust = crl_trust("pki/crl/ca-revokes-office.crl.pem").unwrap();
    let letter = fixture("signed/pismo-ogolne-xades.xml");
    let verdict = signature::verify(&letter, &trust, Utc::now());
    assert_eq!(verdict.indication, Indication::Indeterminate);
    assert_eq!(
        verdict.subindication,
        Some("REVOKED_NO_POE"),
        "{}",
        verdict.reason
    );
    assert!(verdict.reason.contains("revoked"), "{}", verdict.reason);
    // Another signer of the same CA is not affected.
    let now = Utc::now();
    let other = sealed("forms/wniosek-dla-siebie.xml", "jan-kowalski", now);
    assert!(signature::verify(&other, &trust, now).passed());
}

#[test]
fn a_crl_not_signed_by_an_anchor_is_refused() {
    let err = crl_trust("pki/crl/rogue.crl.pem").unwrap_err();
    assert!(err.contains("not signed by any configured anchor"), "{err}");
    // A genuine CRL with its signature altered.
    let mut der = {
        let pem = fixture("pki/crl/ca-revokes-office.crl.pem");
        let (_, block) = x509_parser::pem::parse_x509_pem(&pem).unwrap();
        block.contents
    };
    let last = der.len() - 1;
    der[last] ^= 1;
    let err = Crl::load(&der, &[fixture("pki/ca.pem")]).unwrap_err();
    assert!(err.contains("not signed"), "{err}");
}

fn eurzad(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_eurzad"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn verify_without_trust_flags_uses_the_configured_trust() {
    let dir = tempfile::tempdir().unwrap();
    let anchors = dir.path().join("qualified");
    std::fs::create_dir(&anchors).unwrap();
    std::fs::write(anchors.join("ca.pem"), fixture("pki/ca.pem")).unwrap();
    let crls = dir.path().join("crl");
    std::fs::create_dir(&crls).unwrap();
    std::fs::write(
        crls.join("ca.crl"),
        fixture("pki/crl/ca-revokes-office.crl.pem"),
    )
    .unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        String::from_utf8(fixture("../config.toml"))
            .unwrap()
            .replacen(
                "[trust]\n",
                &format!(
                    "[trust]\nqualified_ca_dir = {:?}\ncrl_dir = {:?}\n",
                    anchors.display().to_string(),
                    crls.display().to_string()
                ),
                1,
            ),
    )
    .unwrap();
    let request = dir.path().join("wniosek.xml");
    std::fs::write(
        &request,
        sealed("forms/wniosek-dla-siebie.xml", "jan-kowalski", Utc::now()),
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let (code, out) = eurzad(&[
        "verify",
        "--json",
        "--config",
        config,
        request.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}");
    let line: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(line["signature_kind"], "qualified");
    assert_eq!(line["qualified_certificate"], true);
    assert_eq!(line["identity"]["pesel"], "85031412347");
    // The office's letter: its certificate is revoked by the configured CRL.
    let letter = format!(
        "{}/fixtures/signed/pismo-ogolne-xades.xml",
        env!("CARGO_MANIFEST_DIR")
    );
    let (code, out) = eurzad(&["verify", "--config", config, &letter]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("REVOKED_NO_POE"), "{out}");
    // A CRL on the command line works the same.
    let (code, out) = eurzad(&[
        "verify",
        "--ca",
        &format!("{}/fixtures/pki/ca.pem", env!("CARGO_MANIFEST_DIR")),
        "--crl",
        &format!(
            "{}/fixtures/pki/crl/ca-revokes-office.crl.pem",
            env!("CARGO_MANIFEST_DIR")
        ),
        &letter,
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("revoked"), "{out}");
}

/// A trusted-profile-shaped access request sealed with the embedded emulator's demo key, whose
/// private half is public (fixtures/pki/epuap.key, and in the binary): a forgery anyone can make.
fn forged_with_the_demo_key(dir: &std::path::Path) -> std::path::PathBuf {
    let forged = seal::xades_enveloped_with_role(
        &fixture("forms/wniosek-dla-siebie.xml"),
        &SigningKey {
            private_key_pem: fixture("pki/epuap.key"),
            certificate_pem: fixture("pki/epuap.pem"),
        },
        Utc::now(),
        "podpis",
        Some(&seal::trusted_profile_role(
            "Jan",
            "Kowalski",
            "85031412347",
        )),
    )
    .unwrap();
    let path = dir.join("wniosek-podrobiony.xml");
    std::fs::write(&path, forged).unwrap();
    path
}

fn eurzad_in(dir: &std::path::Path, args: &[&str], system_config: Option<&str>) -> (i32, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_eurzad"));
    command
        .args(args)
        .current_dir(dir)
        .env_remove("EURZAD_CONFIG");
    if let Some(config) = system_config {
        command.env("EURZAD_CONFIG", config);
    }
    let out = command.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// Issue 15, point 1: `eurzad verify` with no trust flag and no configuration used to load the
/// compiled-in config.toml, whose embedded emulator pins the demo seal, and called this
/// forgery TOTAL-PASSED, exit 0.
#[test]
fn verify_never_trusts_the_demo_key_unless_a_demo_configuration_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let forged = forged_with_the_demo_key(dir.path());
    let forged = forged.to_str().unwrap();
    let system = std::path::Path::new("/etc/eurzad/config.toml").exists();

    let (code, out) = eurzad_in(dir.path(), &["verify", forged], None);
    assert_eq!(code, 1, "the forgery is refused: {out}");
    assert!(
        out.contains("TOTAL-FAILED") || out.contains("INDETERMINATE"),
        "{out}"
    );
    if !system {
        assert!(
            out.starts_with("trust: the shipped production trust (0 qualified anchor(s), 1 trusted-profile seal(s)"),
            "{out}"
        );
    }
    assert!(!out.contains("DEMO") && !out.contains("demo key"), "{out}");
    let (code, out) = eurzad_in(dir.path(), &["verify", "--json", forged], None);
    assert_eq!(code, 1, "{out}");
    let line: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_ne!(line["indication"], "TOTAL-PASSED", "{line}");
    assert!(line["trust"].as_str().unwrap().contains("trust"), "{line}");

    // A configuration that runs the embedded emulator judges the emulator's demo documents by
    // its demo trust, and says so.
    let embedded = dir.path().join("demo.toml");
    std::fs::write(&embedded, fixture("../config.toml")).unwrap();
    let embedded = embedded.to_str().unwrap();
    let (code, out) = eurzad_in(dir.path(), &["verify", "--config", embedded, forged], None);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("TOTAL-PASSED"), "{out}");
    assert!(
        out.starts_with(&format!("trust: the configuration {embedded} (")) && out.contains("DEMO"),
        "{out}"
    );

    // The system configuration ($EURZAD_CONFIG here) is used when present: a production one
    // does not trust the demo key.
    let production = dir.path().join("production.toml");
    std::fs::write(
        &production,
        String::from_utf8(fixture("../config.toml"))
            .unwrap()
            .replacen(
                "endpoint = \"embedded\"",
                &format!(
                    "endpoint = \"https://ws.epuap.gov.pl\"\nwss_certificate = \"{0}/fixtures/pki/office.pem\"\nwss_private_key = \"{0}/fixtures/pki/office.key\"\nserver_certificate = \"{0}/fixtures/pki/epuap.pem\"",
                    env!("CARGO_MANIFEST_DIR")
                ),
                1,
            ),
    )
    .unwrap();
    let production = production.to_str().unwrap();
    let (code, out) = eurzad_in(dir.path(), &["verify", forged], Some(production));
    assert_eq!(code, 1, "{out}");
    assert!(
        out.starts_with(&format!("trust: the configuration {production} ("))
            && !out.contains("DEMO"),
        "{out}"
    );
}
