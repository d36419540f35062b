//! The emulator accepts what ePUAP accepts (issue 15, point 7): a widely used .NET ePUAP
//! client signs its requests over the Body alone, with no `wsu:Timestamp`, and its KeyInfo is a
//! SecurityTokenReference to the BinarySecurityToken. Such requests drain a box. `--strict`
//! keeps the old rule, and a Timestamp that is present must still be signed.

mod common;

use base64::Engine;
use chrono::Utc;
use common::EmulatorProcess;
use eurzad::emulator::demo_pki;
use eurzad::epuap::soap::{self, BoxRef, Operation};
use eurzad::epuap::wssec::{self, SOAP_NS, VerifyPolicy, WSSE_NS};
use eurzad::xml::Limits;
use eurzad::xmldsig::{self, Allowlist, DSIG_NS, WSU_NS};
use sha1::Digest;

const BOX: (&str, &str, &str) = ("urzad_testowy", "skrytka", "/urzad_testowy/skrytka");

fn mailbox() -> BoxRef {
    BoxRef {
        podmiot: BOX.0.into(),
        nazwa: BOX.1.into(),
        adres: BOX.2.into(),
    }
}

/// A request as that client builds it: the token, then a signature whose one Reference is the
/// Body; `timestamp` adds an unsigned `wsu:Timestamp` (which must be refused).
fn dotnet_request(body: &str, timestamp: bool) -> String {
    let key = demo_pki::office_key();
    let token = base64::engine::general_purpose::STANDARD.encode(key.certificate_der().unwrap());
    let x509 =
        "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3";
    let created = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let stamp = if timestamp {
        format!(
            r#"<u:Timestamp u:Id="_0"><u:Created>{created}</u:Created><u:Expires>{created}</u:Expires></u:Timestamp>"#
        )
    } else {
        String::new()
    };
    let text = format!(
        concat!(
            r#"<s:Envelope xmlns:s="{soap}" xmlns:u="{wsu}"><s:Header>"#,
            r#"<o:Security xmlns:o="{wsse}" s:mustUnderstand="1">{stamp}"#,
            r#"<o:BinarySecurityToken u:Id="uuid-1-token" ValueType="{x509}" EncodingType="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary">{token}</o:BinarySecurityToken>"#,
            r#"<Signature xmlns="{dsig}"><SignedInfo><CanonicalizationMethod Algorithm="{c14n}"/>"#,
            r##"<SignatureMethod Algorithm="{rsa}"/><Reference URI="#_1"><Transforms><Transform Algorithm="{c14n}"/></Transforms>"##,
            r#"<DigestMethod Algorithm="{sha256}"/><DigestValue/></Reference></SignedInfo><SignatureValue/>"#,
            r##"<KeyInfo><o:SecurityTokenReference><o:Reference ValueType="{x509}" URI="#uuid-1-token"/></o:SecurityTokenReference></KeyInfo>"##,
            r#"</Signature></o:Security></s:Header><s:Body u:Id="_1">{body}</s:Body></s:Envelope>"#,
        ),
        soap = SOAP_NS,
        wsu = WSU_NS,
        wsse = WSSE_NS,
        dsig = DSIG_NS,
        c14n = xmldsig::EXC_C14N,
        rsa = xmldsig::RSA_SHA256,
        sha256 = xmldsig::SHA256,
        stamp = stamp,
        x509 = x509,
        token = token,
        body = body,
    );
    let doc = eurzad::xml::parse(text.as_bytes(), Limits::default()).unwrap();
    let root = doc.get_root_element().unwrap();
    let body_node = root
        .get_child_elements()
        .into_iter()
        .find(|n| n.get_name() == "Body")
        .unwrap();
    xmldsig::register_id(&doc, &body_node, Some(WSU_NS), "Id").unwrap();
    let signature = root
        .findnodes("//*[local-name()='Signature']")
        .unwrap()
        .remove(0);
    xmldsig::sign(&signature, &key, Allowlist::WSS).unwrap();
    doc.to_string_with_options(libxml::tree::SaveOptions::default())
}

/// Posts one pull request; the answer's payload, verified against the emulator's key, is
/// handed to `read`, or the fault's code and message come back.
async fn call<T>(
    emulator: &EmulatorProcess,
    operation: Operation,
    request: String,
    read: impl FnOnce(&libxml::tree::Node) -> T,
) -> Result<T, (i32, String)> {
    let answer = reqwest::Client::new()
        .post(format!("{}/pk_external_ws/services/pull", emulator.url))
        .header("Content-Type", "text/xml; charset=utf-8")
        .header("SOAPAction", format!("\"{}\"", operation.soap_action()))
        .body(request)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let policy = VerifyPolicy {
        limits: Limits::default(),
        require_timestamp: false,
        clock_skew: std::time::Duration::from_secs(300),
    };
    wssec::open_envelope(
        &answer,
        demo_pki::EPUAP_CERT,
        &policy,
        Utc::now(),
        |opened| match soap::read_fault(opened.payload) {
            Some(fault) => Ok::<_, wssec::SecurityError>(Err(fault)),
            None => Ok(Ok(read(opened.payload))),
        },
    )
    .unwrap()
}

fn pull(operation: Operation, skrot: Option<&str>, timestamp: bool) -> String {
    dotnet_request(&soap::pull_request(operation, &mailbox(), skrot), timestamp)
}

#[tokio::test]
async fn a_body_only_signature_without_timestamp_drains_a_box() {
    let dir = tempfile::tempdir().unwrap();
    let emulator = EmulatorProcess::start(dir.path(), &[BOX], &[]);
    let contents: Vec<Vec<u8>> = (0..3)
        .map(|i| format!("<pismo>nr {i}</pismo>").into_bytes())
        .collect();
    for (i, content) in contents.iter().enumerate() {
        emulator
            .add_document(BOX.2, &format!("pismo-{i}.xml"), content)
            .await;
    }
    let waiting = call(
        &emulator,
        Operation::OczekujaceDokumenty,
        pull(Operation::OczekujaceDokumenty, None, false),
        |p| soap::read_oczekujace(p).unwrap().1,
    )
    .await
    .expect("oczekujaceDokumenty is answered");
    assert_eq!(waiting, 3);
    let mut pulled = Vec::new();
    loop {
        let document = call(
            &emulator,
            Operation::PobierzNastepny,
            pull(Operation::PobierzNastepny, None, false),
            |p| soap::read_pobierz(p, usize::MAX).unwrap().1,
        )
        .await
        .expect("pobierzNastepny is answered");
        let Some(document) = document else { break };
        let skrot =
            base64::engine::general_purpose::STANDARD.encode(sha1::Sha1::digest(&document.content));
        let status = call(
            &emulator,
            Operation::PotwierdzOdebranie,
            pull(Operation::PotwierdzOdebranie, Some(&skrot), false),
            |p| soap::read_potwierdz(p).unwrap(),
        )
        .await
        .expect("potwierdzOdebranie is answered");
        assert_eq!(status.kod, 1, "{status:?}");
        pulled.push(document.content);
        assert!(pulled.len() <= 3, "the box does not empty");
    }
    assert_eq!(pulled, contents);
    let counters = emulator.counters().await;
    assert_eq!(counters["confirmed"], 3, "{counters}");
    assert_eq!(counters["rejected_requests"], 0, "{counters}");
}

#[tokio::test]
async fn strict_mode_and_an_unsigned_timestamp_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let emulator = EmulatorProcess::start(dir.path(), &[BOX], &[]);
    // A Timestamp that is present must be covered by the signature.
    let refused = call(
        &emulator,
        Operation::OczekujaceDokumenty,
        pull(Operation::OczekujaceDokumenty, None, true),
        |_| (),
    )
    .await
    .expect_err("an unsigned Timestamp is refused");
    assert_eq!(refused.0, 3, "{refused:?}");

    let strict_dir = tempfile::tempdir().unwrap();
    let strict = EmulatorProcess::start(strict_dir.path(), &[BOX], &["--strict"]);
    let refused = call(
        &strict,
        Operation::OczekujaceDokumenty,
        pull(Operation::OczekujaceDokumenty, None, false),
        |_| (),
    )
    .await
    .expect_err("--strict wants a Timestamp");
    assert_eq!(refused.0, 3, "{refused:?}");
    assert_eq!(strict.counters().await["rejected_requests"], 1);
}
