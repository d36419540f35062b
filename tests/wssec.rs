//! Our WS-Security verifier against forged and broken messages: each is refused with a
//! reason, and only the signed Body is ever handed to the reader.

use std::time::Duration;

use chrono::Utc;
use eurzad::emulator::demo_pki;
use eurzad::epuap::wssec::{self, Envelope, SecurityError, VerifyPolicy};
use eurzad::xml::Limits;

const BODY: &str = r#"<ob:OdpowiedzPullPotwierdz xmlns:ob="http://wsdl.epuap.gov.pl/obiekty/"><status><kod>1</kod><komunikat>OK</komunikat></status></ob:OdpowiedzPullPotwierdz>"#;

fn policy() -> VerifyPolicy {
    VerifyPolicy {
        limits: Limits::default(),
        require_timestamp: true,
        clock_skew: Duration::from_secs(300),
    }
}

fn signed(body: &str) -> String {
    wssec::sign_envelope(
        &Envelope {
            header_blocks: "",
            body,
        },
        &demo_pki::epuap_key(),
        Utc::now(),
        Duration::from_secs(300),
    )
    .unwrap()
}

/// Opens the message with the ePUAP certificate pinned; returns the payload's text.
fn open(message: &str) -> Result<String, SecurityError> {
    wssec::open_envelope(
        message.as_bytes(),
        demo_pki::EPUAP_CERT,
        &policy(),
        Utc::now(),
        |opened| Ok::<_, SecurityError>(opened.payload.get_content()),
    )
}

#[test]
fn accepts_a_genuine_message() {
    assert_eq!(open(&signed(BODY)).unwrap(), "1OK");
}

#[test]
fn refuses_the_wrong_key() {
    let message = wssec::sign_envelope(
        &Envelope {
            header_blocks: "",
            body: BODY,
        },
        &demo_pki::office_key(),
        Utc::now(),
        Duration::from_secs(300),
    )
    .unwrap();
    let error = open(&message).unwrap_err();
    assert!(matches!(error, SecurityError::Signature(_)), "{error}");
}

#[test]
fn refuses_a_tampered_body() {
    let message = signed(BODY).replace("<kod>1</kod>", "<kod>2</kod>");
    let error = open(&message).unwrap_err();
    assert!(matches!(error, SecurityError::Signature(_)), "{error}");
}

#[test]
fn refuses_an_unsigned_message() {
    let message = format!(
        r#"<soap:Envelope xmlns:soap="{}"><soap:Body>{BODY}</soap:Body></soap:Envelope>"#,
        wssec::SOAP_NS
    );
    assert!(matches!(
        open(&message).unwrap_err(),
        SecurityError::Unsigned(_)
    ));
}

#[test]
fn refuses_signature_wrapping() {
    // The classic attack: keep the signed Body (so the digest still matches, found by ID),
    // but move it aside and put a forged Body where the reader looks.
    let genuine = signed(BODY);
    let start = genuine.find("<soap:Body").unwrap();
    let end = genuine.find("</soap:Body>").unwrap() + "</soap:Body>".len();
    let signed_body = &genuine[start..end];
    let forged_body = signed_body
        .replace("<kod>1</kod>", "<kod>7</kod>")
        .replacen("wsu:Id=\"Body-", "wsu:Id=\"Forged-", 1);
    let wrapped_in_header = genuine[..start].replace(
        "</soap:Header>",
        &format!("<Wrapper>{signed_body}</Wrapper></soap:Header>"),
    ) + &forged_body
        + &genuine[end..];
    let error = open(&wrapped_in_header).unwrap_err();
    assert!(
        matches!(error, SecurityError::UnexpectedReference(_)),
        "{error}"
    );
    // A second Body with the same ID next to the signed one.
    let duplicated = genuine.replace("</soap:Body>", &format!("</soap:Body>{signed_body}"));
    assert!(open(&duplicated).is_err());
    // An xml:id elsewhere claiming the Body's ID.
    let id = &genuine[genuine.find("Body-").unwrap()..];
    let id = &id[..id.find('"').unwrap()];
    let xml_id = genuine.replace(
        "<wsu:Timestamp ",
        &format!("<Decoy xml:id=\"{id}\"/><wsu:Timestamp "),
    );
    assert!(
        open(&xml_id).is_err(),
        "an xml:id duplicating the Body's ID is refused"
    );
}

#[test]
fn refuses_a_second_signature() {
    let genuine = signed(BODY);
    let sig_start = genuine.find("<ds:Signature").unwrap();
    let sig_end = genuine.find("</ds:Signature>").unwrap() + "</ds:Signature>".len();
    let second = genuine.replace(
        "</soap:Header>",
        &format!("{}</soap:Header>", &genuine[sig_start..sig_end]),
    );
    assert!(matches!(
        open(&second).unwrap_err(),
        SecurityError::Unsigned(_)
    ));
}

#[test]
fn refuses_an_expired_timestamp() {
    let old = wssec::sign_envelope(
        &Envelope {
            header_blocks: "",
            body: BODY,
        },
        &demo_pki::epuap_key(),
        Utc::now() - chrono::Duration::hours(2),
        Duration::from_secs(300),
    )
    .unwrap();
    assert!(matches!(
        open(&old).unwrap_err(),
        SecurityError::Timestamp(_)
    ));
}

#[test]
fn refuses_doctype_and_entity_bombs_before_parsing() {
    let genuine = signed(BODY);
    let bomb = genuine.replacen(
        "<soap:Envelope",
        "<!DOCTYPE soap:Envelope [<!ENTITY a \"aaaa\"><!ENTITY b \"&a;&a;&a;&a;\">]><soap:Envelope",
        1,
    );
    assert!(matches!(
        open(&bomb).unwrap_err(),
        SecurityError::Xml(eurzad::xml::XmlError::Doctype { .. })
    ));
}
