//! Every SOAP message the client and the emulator produce validates against the WSDL's XSD
//! (`wsdl/sejm-EpuapBrokerLib/obiektypk.xsd`), with libxml2's schema validator: the Body
//! payload of each request and answer, the `nadaj` header blocks, and `Wyjatek` in faults.
//!
//! One answer is checked by shape instead: ePUAP answers `pobierzNastepny` on an empty box
//! with a bare `status` (no document), which `OdpowiedzPullPobierzTyp` does not allow. The
//! emulator reproduces ePUAP there, on purpose (see docs/emulator.md).

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use chrono::Utc;
use eurzad::emulator::{Emulator, EmulatorSettings, demo_pki};
use eurzad::epuap::soap::{self, BoxRef, NadajRequest, Operation};
use eurzad::epuap::wssec::{self, Envelope};
use eurzad::xml::{self, Limits};
use libxml::schemas::{SchemaParserContext, SchemaValidationContext};

fn schema() -> SchemaValidationContext {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/wsdl/sejm-EpuapBrokerLib/obiektypk.xsd"
    );
    let mut parser = SchemaParserContext::from_file(path);
    SchemaValidationContext::from_parser(&mut parser).expect("obiektypk.xsd compiles")
}

/// Validates the Body payload (or the Wyjatek inside a Fault) and every `ob:` header block.
/// Returns the local name of what was validated.
fn validate(message: &str) -> Vec<String> {
    let doc = xml::parse(message.as_bytes(), Limits::default()).expect("well-formed");
    let root = doc.get_root_element().unwrap();
    let mut targets = Vec::new();
    for part in root.get_child_elements() {
        for child in part.get_child_elements() {
            if xml::namespace_of(&child).as_deref() == Some(soap::OBIEKTY_NS) {
                targets.push(child);
            } else if child.get_name() == "Fault" {
                let detail = xml::only_child(&child, None, "detail")
                    .unwrap()
                    .expect("fault detail");
                targets.extend(detail.get_child_elements());
            }
        }
    }
    assert!(!targets.is_empty(), "nothing to validate in {message}");
    let mut validator = schema();
    targets
        .iter()
        .map(|node| {
            if let Err(errors) = validator.validate_node(node) {
                let messages: Vec<_> = errors
                    .iter()
                    .map(|e| e.message.clone().unwrap_or_default())
                    .collect();
                panic!(
                    "<{}> does not validate: {messages:?}\n{message}",
                    node.get_name()
                );
            }
            node.get_name()
        })
        .collect()
}

fn sign(headers: &str, body: &str) -> String {
    wssec::sign_envelope(
        &Envelope {
            header_blocks: headers,
            body,
        },
        &demo_pki::office_key(),
        Utc::now(),
        Duration::from_secs(300),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_message_validates_against_obiektypk_xsd() {
    eurzad::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let mailbox = BoxRef {
        podmiot: "urzad_testowy".into(),
        nazwa: "skrytka".into(),
        adres: "/urzad_testowy/skrytka".into(),
    };
    let (emulator, _) = Emulator::open(EmulatorSettings::demo(
        dir.path().to_path_buf(),
        vec![mailbox.clone()],
    ))
    .unwrap();
    let seeded = emulator.seed_demo(&mailbox).unwrap();
    let (addr, _task) = eurzad::emulator::spawn(
        emulator,
        SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        std::future::pending(),
    )
    .await
    .unwrap();
    let http = reqwest::Client::new();
    let post = |service: &'static str, message: String| {
        let http = http.clone();
        async move {
            http.post(format!("http://{addr}/pk_external_ws/services/{service}"))
                .body(message)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    let mut validated = Vec::new();
    let mut exchange = |request: String, answer: String| {
        validated.extend(validate(&request));
        validated.extend(validate(&answer));
    };

    let request = sign(
        "",
        &soap::pull_request(Operation::OczekujaceDokumenty, &mailbox, None),
    );
    exchange(request.clone(), post("pull", request).await);

    // Drain the demo documents (they have adresOdpowiedzi and the optional fields).
    for _ in 0..seeded {
        let request = sign(
            "",
            &soap::pull_request(Operation::PobierzNastepny, &mailbox, None),
        );
        let answer = post("pull", request.clone()).await;
        let content = {
            let doc = xml::parse(answer.as_bytes(), Limits::default()).unwrap();
            let body = doc
                .get_root_element()
                .unwrap()
                .get_last_element_child()
                .unwrap();
            let (_, document) =
                soap::read_pobierz(&body.get_first_element_child().unwrap(), usize::MAX).unwrap();
            document.expect("a document").content
        };
        exchange(request, answer);
        let wrong = sign(
            "",
            &soap::pull_request(Operation::PotwierdzOdebranie, &mailbox, Some("AAAA")),
        );
        exchange(wrong.clone(), post("pull", wrong).await);
        let skrot = eurzad::document::SkrotAlgorithm::Sha1.skrot(&content);
        let confirm = sign(
            "",
            &soap::pull_request(Operation::PotwierdzOdebranie, &mailbox, Some(&skrot)),
        );
        exchange(confirm.clone(), post("pull", confirm).await);
    }

    let (headers, body) = soap::nadaj_request(&NadajRequest {
        podmiot: "urzad_testowy".into(),
        adres_skrytki: "/jan_demo/skrytka".into(),
        adres_odpowiedzi: "/urzad_testowy/skrytka".into(),
        czy_probne: false,
        dane_dodatkowe: b"<dodatkowe/>".to_vec(),
        nazwa_pliku: "odpowiedz.xml".into(),
        typ_pliku: Some("text/xml".into()),
        content: b"<pismo>Informacja</pismo>".to_vec(),
    });
    let request = sign(&headers, &body);
    exchange(request.clone(), post("skrytka", request).await);

    // doręczyciel: dorecz with its extra header blocks, and OdpowiedzDoreczyciela.
    let (headers, body) = soap::dorecz_request(&soap::DoreczRequest {
        nadaj: NadajRequest {
            podmiot: "urzad_testowy".into(),
            adres_skrytki: "/jan_demo/skrytka".into(),
            adres_odpowiedzi: "/urzad_testowy/skrytka".into(),
            czy_probne: false,
            dane_dodatkowe: Vec::new(),
            nazwa_pliku: "decyzja.xml".into(),
            typ_pliku: Some("text/xml".into()),
            content: b"<pismo>Decyzja</pismo>".to_vec(),
        },
        termin_doreczenia: "2026-12-04T10:00:00Z".into(),
        identyfikator_dokumentu: "EUR.7".into(),
        identyfikator_sprawy: "EUR.7".into(),
        upd: b"<UPD/>".to_vec(),
    });
    let request = sign(&headers, &body);
    exchange(request.clone(), post("doreczyciel", request).await);

    let unknown = BoxRef {
        adres: "/nie/ma".into(),
        ..mailbox.clone()
    };
    let request = sign(
        "",
        &soap::pull_request(Operation::OczekujaceDokumenty, &unknown, None),
    );
    exchange(request.clone(), post("pull", request).await);

    for expected in [
        "ZapytaniePullOczekujace",
        "OdpowiedzPullOczekujace",
        "ZapytaniePullPobierz",
        "OdpowiedzPullPobierz",
        "ZapytaniePullPotwierdz",
        "OdpowiedzPullPotwierdz",
        "IdentyfikatorPodmiotu",
        "AdresSkrytki",
        "AdresOdpowiedzi",
        "CzyProbne",
        "DaneDodatkowe",
        "Dokument",
        "OdpowiedzSkrytki",
        "TerminDoreczenia",
        "IdentyfikatorDokumentu",
        "IdentyfikatorSprawy",
        "UPD",
        "OdpowiedzDoreczyciela",
        "Wyjatek",
    ] {
        assert!(
            validated.iter().any(|v| v == expected),
            "{expected} was validated: {validated:?}"
        );
    }

    // The empty box: ePUAP's bare status, checked by shape.
    let request = sign(
        "",
        &soap::pull_request(Operation::PobierzNastepny, &mailbox, None),
    );
    let answer = post("pull", request).await;
    let doc = xml::parse(answer.as_bytes(), Limits::default()).unwrap();
    let body = doc
        .get_root_element()
        .unwrap()
        .get_last_element_child()
        .unwrap();
    let payload = body.get_first_element_child().unwrap();
    assert_eq!(payload.get_name(), "OdpowiedzPullPobierz");
    let children: Vec<_> = payload
        .get_child_elements()
        .iter()
        .map(|c| c.get_name())
        .collect();
    assert_eq!(children, ["status"]);
    assert_eq!(soap::read_status(&payload).unwrap().kod, 0);
}

#[test]
fn the_validator_does_catch_a_contract_breach() {
    // Guard against a validator that accepts anything: a pull request without adresSkrytki.
    let broken = sign(
        "",
        r#"<ob:ZapytaniePullOczekujace xmlns:ob="http://wsdl.epuap.gov.pl/obiekty/"><podmiot>x</podmiot><nazwaSkrytki>y</nazwaSkrytki></ob:ZapytaniePullOczekujace>"#,
    );
    let outcome = std::panic::catch_unwind(|| validate(&broken));
    assert!(
        outcome.is_err(),
        "a payload missing adresSkrytki must not validate"
    );
}
