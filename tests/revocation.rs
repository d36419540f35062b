//! Revocation as a qualified-signature verifier must check it (issue 15, point 13), against
//! real peers on loopback: a CRL server (HTTP, in this test) and an `openssl ocsp` responder,
//! with a PKI made for the run whose certificates name them (tests/revocation/make-pki.sh).
//! Every certificate of the path is checked; where no fresh revocation data can be had the
//! verdict is INDETERMINATE, never TOTAL-PASSED; XAdES IssuerSerial must name the signer.
//! Before, CRLs came only from a configured folder and covered the signer alone, a stale CRL
//! passed without a word, nothing was fetched, and IssuerSerial was never compared: every
//! signature below but the last passed.

mod common;

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use chrono::Utc;
use eurzad::signature::certificate::Crl;
use eurzad::signature::revocation::{NamedSources, Revocation};
use eurzad::signature::{self, Indication, TrustPolicy, seal};
use eurzad::xmldsig::SigningKey;

/// A free loopback port (bound, then released).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Serves the files of a folder over HTTP on loopback, counting requests per path.
struct CrlServer {
    port: u16,
    hits: Arc<Mutex<HashMap<String, usize>>>,
}

impl CrlServer {
    fn start(dir: PathBuf) -> CrlServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits = Arc::new(Mutex::new(HashMap::new()));
        let counted = hits.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let app = axum::Router::new().route(
                    "/{file}",
                    axum::routing::get(
                        move |axum::extract::Path(file): axum::extract::Path<String>| {
                            let (dir, counted) = (dir.clone(), counted.clone());
                            async move {
                                *counted.lock().unwrap().entry(file.clone()).or_insert(0) += 1;
                                match std::fs::read(dir.join(&file)) {
                                    Ok(bytes) => Ok(bytes),
                                    Err(_) => Err(axum::http::StatusCode::NOT_FOUND),
                                }
                            }
                        },
                    ),
                );
                axum::serve(listener, app).await.unwrap();
            });
        });
        CrlServer { port, hits }
    }

    fn hits(&self, file: &str) -> usize {
        self.hits.lock().unwrap().get(file).copied().unwrap_or(0)
    }
}

/// `openssl ocsp` answering for the intermediate CA from its index; killed when dropped.
struct Responder(Child);

impl Responder {
    fn start(dir: &Path, port: u16) -> Responder {
        let child = Command::new("openssl")
            .args(["ocsp", "-index", "inter-index.txt", "-port"])
            .arg(port.to_string())
            .args([
                "-rsigner",
                "responder.pem",
                "-rkey",
                "responder.key",
                "-CA",
                "inter.pem",
                "-nmin",
                "5",
                "-timeout",
                "5",
                "-ignore_err",
            ])
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("responder.log")).unwrap())
            .spawn()
            .expect("openssl ocsp");
        // Ready once it says so: a probe connection would hold the single-threaded
        // responder until it times out.
        let started = Instant::now();
        while !std::fs::read_to_string(dir.join("responder.log"))
            .unwrap_or_default()
            .contains("waiting for OCSP client connections")
        {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the OCSP responder did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Responder(child)
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Pki {
    dir: tempfile::TempDir,
    crls: CrlServer,
    _responder: Responder,
}

impl Pki {
    fn make() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let crls = CrlServer::start(dir.path().to_path_buf());
        let (ocsp, dead) = (free_port(), free_port());
        let status = Command::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/revocation/make-pki.sh"
        ))
        .arg(dir.path())
        .args([crls.port, ocsp, dead].map(|p| p.to_string()))
        .status()
        .unwrap();
        assert!(status.success(), "make-pki.sh");
        let responder = Responder::start(dir.path(), ocsp);
        Pki {
            dir,
            crls,
            _responder: responder,
        }
    }

    fn read(&self, file: &str) -> Vec<u8> {
        std::fs::read(self.dir.path().join(file)).unwrap()
    }

    fn key(&self, name: &str) -> SigningKey {
        SigningKey {
            private_key_pem: self.read(&format!("{name}.key")),
            certificate_pem: self.read(&format!("{name}.pem")),
        }
    }

    fn signed_by(&self, name: &str) -> Vec<u8> {
        seal::xades_enveloped(
            &std::fs::read(common::fixture("forms/wniosek-dla-siebie.xml")).unwrap(),
            &self.key(name),
            Utc::now(),
            "podpis",
        )
        .unwrap()
    }

    fn trust(&self, revocation: Revocation) -> TrustPolicy {
        TrustPolicy {
            anchors: vec![self.read("root.pem")],
            intermediates: vec![self.read("inter.pem"), self.read("inter2.pem")],
            revocation,
            ..TrustPolicy::default()
        }
    }

    fn online(&self) -> TrustPolicy {
        let fetch = eurzad::pki_http::HttpFetch::new(Duration::from_secs(2)).unwrap();
        self.trust(Revocation::default().with_named(NamedSources::Fetch(Arc::new(fetch))))
    }
}

fn judged(verdict: &signature::Verdict) -> String {
    format!(
        "{}/{} {}",
        verdict.indication,
        verdict.subindication.unwrap_or("-"),
        verdict.reason
    )
}

#[test]
fn every_certificate_of_the_path_is_checked_online() {
    let pki = Pki::make();
    let trust = pki.online();
    let verify = |name: &str| signature::verify(&pki.signed_by(name), &trust, Utc::now());

    // Good: OCSP says so for the signer, the root's CRL for the intermediate.
    let good = verify("good");
    assert_eq!(
        good.indication,
        Indication::TotalPassed,
        "{}",
        judged(&good)
    );
    assert_eq!(pki.crls.hits("root.crl"), 1);

    // A revoked signer: OCSP says so.
    let revoked = verify("revoked");
    assert_eq!(revoked.indication, Indication::Indeterminate);
    assert_eq!(
        revoked.subindication,
        Some("REVOKED_NO_POE"),
        "{}",
        judged(&revoked)
    );
    assert!(
        revoked.reason.contains("the signer certificate") && revoked.reason.contains("OCSP"),
        "{}",
        judged(&revoked)
    );

    // A revoked intermediate: the root's CRL lists it.
    let under = verify("under-revoked-ca");
    assert_eq!(
        under.subindication,
        Some("REVOKED_NO_POE"),
        "{}",
        judged(&under)
    );
    assert!(
        under.reason.contains("CA certificate 1 above the signer"),
        "{}",
        judged(&under)
    );

    // A stale CRL is no fresh word.
    let stale = verify("stale");
    assert_eq!(stale.indication, Indication::Indeterminate);
    assert_eq!(
        stale.subindication,
        Some("REVOCATION_OUT_OF_BOUNDS_NO_POE"),
        "{}",
        judged(&stale)
    );

    // A responder that does not answer: try later.
    let unreachable = verify("unreachable");
    assert_eq!(unreachable.indication, Indication::Indeterminate);
    assert_eq!(
        unreachable.subindication,
        Some("TRY_LATER"),
        "{}",
        judged(&unreachable)
    );

    // A distribution point that answers junk: no fresh word, and the reason says what.
    let junk = verify("junk");
    assert_eq!(junk.subindication, Some("TRY_LATER"), "{}", judged(&junk));
    assert!(
        junk.reason.contains("junk.crl is unreadable"),
        "{}",
        judged(&junk)
    );

    // Fetched data is reused until its nextUpdate: a second check fetches no CRL again.
    let before = pki.crls.hits("root.crl");
    assert!(verify("good").passed());
    assert_eq!(
        pki.crls.hits("root.crl"),
        before,
        "the root's CRL was cached"
    );
}

#[test]
fn configured_crls_stay_an_offline_source() {
    let pki = Pki::make();
    let load = |file: &str, issuer: &str| Crl::load(&pki.read(file), &[pki.read(issuer)]).unwrap();
    let offline = vec![
        load("inter.crl", "inter.pem"),
        load("inter2.crl", "inter2.pem"),
        load("root.crl", "root.pem"),
    ];
    // Fetching off: the configured CRLs decide, and a certificate they do not cover is not
    // passed, since it names sources nobody asked.
    let trust = pki.trust(Revocation::offline(offline).with_named(NamedSources::Refuse));
    let verify = |name: &str| signature::verify(&pki.signed_by(name), &trust, Utc::now());
    assert!(verify("good").passed(), "{}", judged(&verify("good")));
    assert_eq!(verify("revoked").subindication, Some("REVOKED_NO_POE"));
    let under = verify("under-revoked-ca");
    assert_eq!(
        under.subindication,
        Some("REVOKED_NO_POE"),
        "{}",
        judged(&under)
    );
    assert!(
        under.reason.contains("CA certificate 1 above the signer"),
        "{}",
        judged(&under)
    );
    // Without the intermediate's CRL configured, its signers are not covered.
    let partial = pki.trust(
        Revocation::offline(vec![load("root.crl", "root.pem")]).with_named(NamedSources::Refuse),
    );
    let uncovered = signature::verify(&pki.signed_by("good"), &partial, Utc::now());
    assert_eq!(
        uncovered.subindication,
        Some("TRY_LATER"),
        "{}",
        judged(&uncovered)
    );
    assert!(
        uncovered.reason.contains("no configured CRL covers it"),
        "{}",
        judged(&uncovered)
    );
    assert_eq!(
        pki.crls.hits("inter.crl") + pki.crls.hits("root.crl"),
        0,
        "nothing fetched"
    );
}

#[test]
fn a_signing_certificate_whose_issuer_serial_names_another_is_refused() {
    let pki = Pki::make();
    let trust = pki.online();
    let genuine = String::from_utf8(pki.signed_by("good")).unwrap();
    assert!(signature::verify(genuine.as_bytes(), &trust, Utc::now()).passed());
    // The same properties, the digest still the signer's, IssuerSerialV2 naming `revoked`
    // (same issuer, another serial), signed again by the same key: a valid signature whose
    // signed properties claim another certificate.
    let start = genuine.find("<xades:IssuerSerialV2>").unwrap() + "<xades:IssuerSerialV2>".len();
    let end = genuine.find("</xades:IssuerSerialV2>").unwrap();
    let revoked_der = eurzad::xmldsig::certificate_der(&pki.read("revoked.pem")).unwrap();
    let other = base64::engine::general_purpose::STANDARD
        .encode(signature::certificate::issuer_serial_v2(&revoked_der).unwrap());
    let mut claimed = genuine.clone();
    claimed.replace_range(start..end, &other);
    let resigned = resign(&claimed, &pki.key("good"));
    let verdict = signature::verify(resigned.as_bytes(), &trust, Utc::now());
    assert_eq!(
        verdict.indication,
        Indication::Indeterminate,
        "{}",
        judged(&verdict)
    );
    assert_eq!(verdict.subindication, Some("NO_SIGNING_CERTIFICATE_FOUND"));
    assert!(
        verdict
            .reason
            .contains("IssuerSerial names another certificate"),
        "{}",
        judged(&verdict)
    );

    // The same with XAdES 1.3.2's IssuerSerial (V1): another serial is refused, the signer's
    // own (with the issuer written as RFC 4514 puts it) passes.
    let good = openssl::x509::X509::from_pem(&pki.read("good.pem")).unwrap();
    let serial = |cert: &openssl::x509::X509| {
        cert.serial_number()
            .to_bn()
            .unwrap()
            .to_dec_str()
            .unwrap()
            .to_string()
    };
    let revoked = openssl::x509::X509::from_pem(&pki.read("revoked.pem")).unwrap();
    for (serial, passes) in [(serial(&good), true), (serial(&revoked), false)] {
        let v1 = format!(
            "<xades:IssuerSerial><ds:X509IssuerName>CN=inter,O=Test revocation,C=PL</ds:X509IssuerName><ds:X509SerialNumber>{serial}</ds:X509SerialNumber></xades:IssuerSerial>"
        );
        let mut text = genuine.clone();
        let from = text.find("<xades:IssuerSerialV2>").unwrap();
        let to = text.find("</xades:IssuerSerialV2>").unwrap() + "</xades:IssuerSerialV2>".len();
        text.replace_range(from..to, &v1);
        let verdict = signature::verify(
            resign(&text, &pki.key("good")).as_bytes(),
            &trust,
            Utc::now(),
        );
        assert_eq!(
            verdict.passed(),
            passes,
            "serial {serial}: {}",
            judged(&verdict)
        );
    }
}

/// Signs an XAdES document again after its signed properties were changed.
fn resign(text: &str, key: &SigningKey) -> String {
    let doc = eurzad::xml::parse(text.as_bytes(), eurzad::xml::Limits::default()).unwrap();
    let root = doc.get_root_element().unwrap();
    let signature = root
        .findnodes("//*[local-name()='Signature']")
        .unwrap()
        .remove(0);
    let properties = root
        .findnodes("//*[local-name()='SignedProperties']")
        .unwrap()
        .remove(0);
    eurzad::xmldsig::register_id(&doc, &properties, None, "Id").unwrap();
    eurzad::xmldsig::sign(&signature, key, eurzad::xmldsig::Allowlist::ENVELOPED).unwrap();
    doc.to_string_with_options(libxml::tree::SaveOptions::default())
}

/// The daemon fetches revocation data as it judges an inbound document (on its blocking
/// threads), and stores the verdict: the revoked signer's request is INDETERMINATE
/// REVOKED_NO_POE and refused, the good one passes. When no source answers (TRY_LATER) the
/// document is judged again after the retry delay, up to the job's attempts; a request whose
/// revocation stays unknown waits for an official instead of being refused.
#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_checks_revocation_of_inbound_documents() {
    const BOX: (&str, &str, &str) = ("urzad_testowy", "skrytka", "/urzad_testowy/skrytka");
    let pki = tokio::task::spawn_blocking(Pki::make).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let emulator = common::EmulatorProcess::start(&dir.path().join("emulator"), &[BOX], &[]);
    for name in ["good", "revoked", "unreachable"] {
        emulator
            .add_document(BOX.2, &format!("{name}.xml"), &pki.signed_by(name))
            .await;
    }
    let db = common::test_database(dir.path()).await;
    let config = common::daemon_config(dir.path(), &db.url, &emulator.url, &[BOX], "");
    // The intermediate is the anchor here: the daemon's trust has no intermediates.
    let anchors = dir.path().join("anchors");
    std::fs::create_dir_all(&anchors).unwrap();
    std::fs::write(anchors.join("inter.pem"), pki.read("inter.pem")).unwrap();
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "\n[trust]\nqualified_ca_dir = \"{}\"\nrevocation_timeout = \"3s\"\n",
        anchors.display()
    ));
    std::fs::write(&config, text).unwrap();
    let (status, stdout, stderr) = common::run_once(&config);
    assert!(status.success(), "{stdout}\n{stderr}");
    let pool = common::any_pool(&db.url).await;
    let rows: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT nazwa_pliku, signature_indication, signature_subindication FROM inbound_document ORDER BY nazwa_pliku",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        rows,
        vec![
            ("good.xml".into(), "TOTAL-PASSED".into(), None),
            (
                "revoked.xml".into(),
                "INDETERMINATE".into(),
                Some("REVOKED_NO_POE".into())
            ),
            (
                "unreachable.xml".into(),
                "INDETERMINATE".into(),
                Some("TRY_LATER".into())
            ),
        ]
    );
    let attempts: Vec<(String, i32)> = sqlx::query_as(
        "SELECT d.nazwa_pliku, j.attempts FROM job j JOIN inbound_document d ON d.id = j.document_id \
         WHERE j.kind = 'verify' ORDER BY d.nazwa_pliku",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        attempts,
        vec![
            ("good.xml".into(), 1),
            ("revoked.xml".into(), 1),
            ("unreachable.xml".into(), 5)
        ],
        "judged again while no source answered (jobs.max_attempts = 5)"
    );
    let requests: Vec<(String, String)> = sqlx::query_as(
        "SELECT d.nazwa_pliku, r.status FROM access_request r JOIN inbound_document d ON d.id = r.document_id \
         ORDER BY d.nazwa_pliku",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    // Refused (no reply address in these documents: it stays unanswered for officials).
    assert_eq!(requests[1], ("revoked.xml".into(), "rejected".into()));
    assert_eq!(
        requests[2],
        ("unreachable.xml".into(), "awaiting_official".into())
    );
    pool.close().await;
    drop(pki);
}
