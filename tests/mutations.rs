//! Mutation tests of the verifiers an attacker aims at: the signed-form check (XAdES by a
//! qualified certificate, ePUAP's trusted-profile seal in both layouts, a company's
//! authorization, plain XML-DSig signed by `xmlsec1`), the UPD check, the trusted list's
//! check, and the WS-Security checks of ePUAP's answers (the daemon's side) and of the
//! office's requests (the emulator's side).
//!
//! Each subject starts from one genuinely signed input and judges thousands of seeded mutants
//! of it: bytes flipped, cut, copied and truncated; elements duplicated, copied and moved into
//! others (signature wrapping); text changed; comments, processing instructions, character
//! references and CDATA put into text; DOCTYPEs, entities and bombs; attributes and namespaces
//! changed. For every mutant:
//!
//! - the verifier answers (a crash in libxml2, xmlsec or our FFI code would end this process);
//! - a refusal gives a reason;
//! - a mutant that passes yields exactly what the genuine input yields: the same form (or the
//!   same pulled document) and the same signer. So nothing the office acts on can change
//!   without the signature failing, whatever the change.
//!
//! Then a systematic wrapping sweep: one element of each kind the input holds, its text
//! changed, copied into each place the signature leaves unsigned (KeyInfo, the Signature
//! itself, unsigned properties, the SOAP Header and Security), each refused or read exactly
//! as the genuine input. Random mutants rarely hit such a pair in a large input; the sweep
//! finds the two reader holes fixed at `f7968ff` on the code before their fixes.
//!
//! The last check has teeth only if mutants do change what is read. Each subject therefore
//! counts the mutants that read differently when read without the signature check, and
//! requires many of them; and it requires that some mutants pass (character references, CDATA,
//! comments outside the signed text), so that "refuse everything" does not pass either.
//!
//! A failure names the subject, the seed and the mutations, and writes the mutant to
//! `target/mutations/` to replay. `EURZAD_MUTANTS=N` sets the mutants per subject (default
//! 1500) and `EURZAD_MUTATION_SEED=S` the first seed.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use eurzad::document::{PulledDocument, SenderData, SubjectData};
use eurzad::emulator::demo_pki;
use eurzad::emulator::{faults, upp};
use eurzad::epuap::soap::{self, NadajRequest, Status};
use eurzad::epuap::wssec::{self, Envelope, SecurityError, VerifyPolicy};
use eurzad::forms::Registry;
use eurzad::provisioning;
use eurzad::signature::{self, KindTrust, TrustPolicy, seal, tsl};
use eurzad::xml::Limits;
use eurzad::xmldsig::SigningKey;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(format!("{}/fixtures/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn key(dir: &str, name: &str) -> SigningKey {
    SigningKey {
        private_key_pem: fixture(&format!("{dir}/{name}.key")),
        certificate_pem: fixture(&format!("{dir}/{name}.pem")),
    }
}

/// One fixed judging time, so that a long run cannot drift past a Timestamp's expiry.
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0).unwrap()
}

/// What a verifier made of one input.
#[derive(Debug)]
enum Judged {
    /// Passed; what the office would act on, as text.
    Passed(String),
    /// Refused, with the reason.
    Refused(String),
}

/// A verifier with what the office then reads from what passed.
type Judge = Box<dyn Fn(&[u8]) -> Judged>;
/// What an input says when read without any signature check (None: unreadable).
type ReadUnchecked = Box<dyn Fn(&[u8]) -> Option<String>>;

struct Subject {
    name: &'static str,
    genuine: Vec<u8>,
    judge: Judge,
    read_unchecked: ReadUnchecked,
    /// This subject judges `EURZAD_MUTANTS / share` mutants (a large input costs more).
    share: u64,
}

// ---------------------------------------------------------------------------------------
// Subjects

fn form_subject(name: &'static str, genuine: Vec<u8>, trust: KindTrust) -> Subject {
    let registry = Registry::default();
    Subject {
        name,
        genuine,
        judge: Box::new(move |bytes| {
            let verdict = signature::verify_by_kind(bytes, &trust, now());
            if !verdict.passed() {
                return Judged::Refused(format!(
                    "{} {}",
                    verdict.subindication.unwrap_or(""),
                    verdict.reason
                ));
            }
            // What provisioning reads from a passed document: the form, and who signed it.
            Judged::Passed(format!(
                "{:?}\n{:?}\n{:?}\n{:?}\n{:?}",
                Registry::default().read(bytes),
                verdict.kind,
                verdict.identity,
                verdict.signer_certificate,
                verdict.signing_time
            ))
        }),
        read_unchecked: Box::new(move |bytes| registry.read(bytes).ok().map(|f| format!("{f:?}"))),
        share: 1,
    }
}

fn qualified_trust() -> KindTrust {
    KindTrust {
        qualified: TrustPolicy {
            anchors: vec![fixture("pki/ca.pem")],
            ..TrustPolicy::default()
        },
        ..KindTrust::default()
    }
}

/// Jan Kowalski's access request, XAdES-BES by his (test) qualified certificate.
fn qualified_request() -> Subject {
    let signed = seal::xades_enveloped(
        &fixture("forms/wniosek-dla-siebie.xml"),
        &key("pki/citizens", "jan-kowalski"),
        now() - chrono::TimeDelta::minutes(5),
        "podpis",
    )
    .unwrap();
    form_subject("qualified access request", signed, qualified_trust())
}

/// Jan Kowalski's request sealed by "ePUAP" as a trusted-profile signature naming him in
/// `role`, judged with the ePUAP seal pinned.
fn sealed_by_epuap(name: &'static str, role: &str) -> Subject {
    let signed = seal::xades_enveloped_with_role(
        &fixture("forms/wniosek-dla-siebie.xml"),
        &key("pki", "epuap"),
        now() - chrono::TimeDelta::minutes(5),
        "podpis",
        Some(role),
    )
    .unwrap();
    let trust = KindTrust {
        trusted_profile: TrustPolicy {
            pinned: vec![fixture("pki/epuap.pem")],
            ..TrustPolicy::default()
        },
        ..qualified_trust()
    };
    form_subject(name, signed, trust)
}

/// The new trusted-profile layout (`pz:EPSignature`).
fn trusted_profile_request() -> Subject {
    let role = seal::trusted_profile_role("Jan", "Kowalski", "85031412347");
    sealed_by_epuap("trusted-profile access request", &role)
}

/// The old trusted-profile layout (`ppZP:PodpisZP`).
fn podpis_zp_request() -> Subject {
    let role = concat!(
        r#"<ppZP:PodpisZP xmlns:ppZP="http://crd.gov.pl/xml/schematy/ppzp/"><ppZP:DaneZP>"#,
        "<ppZP:DaneZPOsobyFizycznej><ppZP:Imie>Jan</ppZP:Imie><ppZP:Nazwisko>Kowalski</ppZP:Nazwisko>",
        "<ppZP:PESEL>85031412347</ppZP:PESEL><ppZP:IdKontaUzytkownikaEpuap>jkowalski</ppZP:IdKontaUzytkownikaEpuap>",
        "</ppZP:DaneZPOsobyFizycznej></ppZP:DaneZP></ppZP:PodpisZP>"
    );
    sealed_by_epuap("PodpisZP access request", role)
}

/// A company's authorization (upoważnienie), signed by its board member's certificate,
/// which names the company's NIP: what proves a representation.
fn company_authorization() -> Subject {
    let signed = seal::xades_enveloped(
        &fixture("forms/upowaznienie-firma.xml"),
        &key("pki/citizens", "firma-zarzad"),
        now() - chrono::TimeDelta::minutes(5),
        "podpis",
    )
    .unwrap();
    form_subject("company authorization", signed, qualified_trust())
}

/// A UPD sealed by ePUAP, read as the receipt job reads it.
fn upd() -> Subject {
    let signed = upp::build_upd(
        &upp::UpdFields {
            wystawca: "ePUAP",
            adresat: "/demo/skrytka",
            data_odbioru: "2026-11-27T11:00:00Z",
            identyfikator_sprawy: "SPR-1",
            identyfikator_dokumentu: "EUR.42",
        },
        &demo_pki::epuap_key(),
        now() - chrono::TimeDelta::minutes(5),
    )
    .unwrap();
    Subject {
        name: "UPD",
        genuine: signed,
        judge: Box::new(
            |bytes| match provisioning::read_upd(bytes, demo_pki::EPUAP_CERT, now()) {
                Ok(read) => Judged::Passed(format!("{read:?}")),
                Err(reason) => Judged::Refused(reason),
            },
        ),
        read_unchecked: Box::new(|bytes| {
            let doc = parse_unchecked(bytes)?;
            let root = doc.get_root_element()?;
            let fields: Vec<String> = root
                .get_child_elements()
                .iter()
                .filter(|e| e.get_name() != "Signature")
                .map(|e| format!("{}={}", e.get_name(), e.get_content()))
                .collect();
            Some(fields.join("\n"))
        }),
        share: 1,
    }
}

/// A `nadaj` request signed by the office, opened and read as the emulator does. Only the
/// Body is signed (ePUAP's contract); the addressing header blocks are not, so what must not
/// change is what the Body carries: the file's name, type and content.
fn nadaj_request() -> Subject {
    let (headers, body) = soap::nadaj_request(&NadajRequest {
        podmiot: "urzad_testowy".into(),
        adres_skrytki: "/demo/skrytka".into(),
        adres_odpowiedzi: "/urzad_testowy/skrytka".into(),
        czy_probne: false,
        dane_dodatkowe: Vec::new(),
        nazwa_pliku: "odpowiedz.xml".into(),
        typ_pliku: Some("text/xml".into()),
        content: fixture("demo/pismo-ogolne-demo.xml"),
    });
    let signed = wssec::sign_envelope(
        &Envelope {
            header_blocks: &headers,
            body: &body,
        },
        &demo_pki::office_key(),
        now() - chrono::TimeDelta::seconds(1),
        Duration::from_secs(300),
    )
    .unwrap();
    let body_fields =
        |r: NadajRequest| format!("{:?} {:?} {:?}", r.nazwa_pliku, r.typ_pliku, r.content);
    Subject {
        name: "nadaj request (WS-Security, the emulator's side)",
        genuine: signed.into_bytes(),
        judge: Box::new(move |bytes| {
            let opened = wssec::open_envelope(
                bytes,
                demo_pki::OFFICE_CERT,
                &wss_policy(),
                now(),
                |opened| {
                    Ok::<_, SecurityError>(
                        soap::read_nadaj_request(opened.header, opened.payload, usize::MAX)
                            .map(body_fields),
                    )
                },
            );
            // An unreadable (unsigned) header block makes the emulator refuse the request.
            match opened {
                Ok(Ok(read)) => Judged::Passed(read),
                Ok(Err(e)) => Judged::Refused(format!("unreadable: {e}")),
                Err(e) => Judged::Refused(e.to_string()),
            }
        }),
        read_unchecked: Box::new(move |bytes| {
            let doc = parse_unchecked(bytes)?;
            let root = doc.get_root_element()?;
            let children = root.get_child_elements();
            let header = children.iter().find(|e| e.get_name() == "Header");
            let payload = children
                .iter()
                .find(|e| e.get_name() == "Body")?
                .get_first_element_child()?;
            soap::read_nadaj_request(header, &payload, usize::MAX)
                .ok()
                .map(body_fields)
        }),
        share: 1,
    }
}

fn wss_policy() -> VerifyPolicy {
    VerifyPolicy {
        limits: Limits::default(),
        require_timestamp: true,
        clock_skew: Duration::from_secs(300),
    }
}

/// The real Polish trusted list (869 KB, XAdES by the PL TSL operator), loaded as the
/// daemon loads it: what it grants must not change unless the list is refused.
fn trusted_list() -> Subject {
    let signers =
        tsl::signers_from_lotl(&fixture("trust/eu-lotl-seq390-2026-08-03.xml"), "PL").unwrap();
    Subject {
        name: "PL trusted list",
        genuine: fixture("trust/PL_TSL-seq160-2026-06-03.xml"),
        judge: Box::new(move |bytes| match tsl::load(bytes, &signers, None) {
            Ok(list) => Judged::Passed(format!(
                "{} {} {} {:?} {} {:?}",
                list.territory,
                list.sequence_number,
                list.issued,
                list.next_update,
                list.signer,
                list.services
            )),
            Err(e) => Judged::Refused(e.to_string()),
        }),
        read_unchecked: Box::new(|bytes| {
            let doc = parse_unchecked(bytes)?;
            Some(doc.get_root_element()?.get_content())
        }),
        share: 5,
    }
}

/// A "pismo ogólne" signed by the `xmlsec1` tool (plain XML-DSig, fixtures/signed).
fn xmlsec1_letter() -> Subject {
    form_subject(
        "pismo ogólne signed by xmlsec1",
        fixture("signed/pismo-ogolne-signed.xml"),
        qualified_trust(),
    )
}

fn pulled_document() -> PulledDocument {
    PulledDocument {
        dane_podmiotu: SubjectData {
            identyfikator: "demo".into(),
            typ_osoby: "F".into(),
            imie_skrot: Some("Jan".into()),
            nazwisko_nazwa: Some("Kowalski".into()),
            nip: None,
            pesel: Some("85031412347".into()),
            regon: None,
            zgoda: true,
        },
        dane_nadawcy: SenderData {
            uzytkownik: Some("demo".into()),
            system: None,
        },
        data_nadania: "2026-11-27T11:58:00.000+01:00".into(),
        nazwa_skrytki: "skrytka".into(),
        adres_skrytki: "/urzad_testowy/skrytka".into(),
        adres_odpowiedzi: Some("/demo/skrytka".into()),
        czy_testowe: false,
        dane_dodatkowe: b"<dane/>".to_vec(),
        nazwa_pliku: "pismo.xml".into(),
        typ_pliku: Some("text/xml".into()),
        content: fixture("demo/pismo-ogolne-demo.xml"),
    }
}

/// ePUAP's answer to `pobierzNastepny`, signed as the emulator signs it, opened as the client
/// opens it (the ePUAP certificate pinned) and read as the inbox reads it.
fn pobierz_answer() -> Subject {
    let body = soap::pobierz_response(
        &Status {
            kod: 1,
            komunikat: Some("OK".into()),
        },
        Some(&pulled_document()),
    );
    let signed = wssec::sign_envelope(
        &Envelope {
            header_blocks: "",
            body: &body,
        },
        &demo_pki::epuap_key(),
        now() - chrono::TimeDelta::seconds(1),
        Duration::from_secs(300),
    )
    .unwrap();
    let policy = wss_policy();
    Subject {
        name: "pobierzNastepny answer (WS-Security)",
        genuine: signed.into_bytes(),
        judge: Box::new(move |bytes| {
            let opened =
                wssec::open_envelope(bytes, demo_pki::EPUAP_CERT, &policy, now(), |opened| {
                    Ok::<_, SecurityError>(format!(
                        "{:?}",
                        soap::read_pobierz(opened.payload, usize::MAX)
                    ))
                });
            match opened {
                Ok(read) => Judged::Passed(read),
                Err(e) => Judged::Refused(e.to_string()),
            }
        }),
        read_unchecked: Box::new(|bytes| {
            // The first element child of any element named Body, as a careless reader takes it.
            let doc = parse_unchecked(bytes)?;
            let root = doc.get_root_element()?;
            let body = root
                .get_child_elements()
                .into_iter()
                .find(|e| e.get_name() == "Body")?;
            let payload = body.get_first_element_child()?;
            soap::read_pobierz(&payload, usize::MAX)
                .ok()
                .map(|r| format!("{r:?}"))
        }),
        share: 1,
    }
}

/// Parses as a careless reader would (no limits, no signature check), quietly.
fn parse_unchecked(bytes: &[u8]) -> Option<libxml::tree::Document> {
    let options = libxml::parser::ParserOptions {
        no_error: true,
        no_warning: true,
        no_net: true,
        ..Default::default()
    };
    libxml::parser::Parser::default()
        .parse_string_with_diagnostics(bytes, options)
        .ok()
        .map(|(doc, _)| doc)
}

// ---------------------------------------------------------------------------------------
// Mutations

/// Elements of `text` as byte spans: a start tag's `<` to the end of its end tag. Found by
/// scanning, not parsing, so that broken mutants can be mutated again.
fn elements(text: &[u8]) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    for start in 0..text.len() {
        if text[start] != b'<' || !text.get(start + 1).is_some_and(|c| c.is_ascii_alphabetic()) {
            continue;
        }
        let name_end = (start + 1..text.len())
            .find(|&i| matches!(text[i], b' ' | b'\t' | b'\r' | b'\n' | b'>' | b'/'))
            .unwrap_or(text.len());
        let name = &text[start + 1..name_end];
        let Some(tag_end) = (name_end..text.len()).find(|&i| text[i] == b'>') else {
            continue;
        };
        if text[tag_end - 1] == b'/' {
            spans.push((start, tag_end + 1));
            continue;
        }
        let close = [b"</".as_slice(), name, b">"].concat();
        let mut depth = 1;
        let mut i = tag_end + 1;
        while i < text.len() {
            if text[i..].starts_with(&close) {
                depth -= 1;
                if depth == 0 {
                    spans.push((start, i + close.len()));
                    break;
                }
                i += close.len();
            } else if text[i] == b'<'
                && text[i + 1..].starts_with(name)
                && text
                    .get(i + 1 + name.len())
                    .is_some_and(|c| matches!(c, b' ' | b'\t' | b'\r' | b'\n' | b'>'))
            {
                depth += 1;
                i += 1;
            } else {
                i += 1;
            }
        }
    }
    spans
}

/// Text between tags that has something besides white space: (start, end).
fn texts(text: &[u8]) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut i = 0;
    while let Some(gt) = text[i..].iter().position(|&c| c == b'>') {
        let start = i + gt + 1;
        let end = text[start..]
            .iter()
            .position(|&c| c == b'<')
            .map_or(text.len(), |p| start + p);
        if text[start..end].iter().any(|c| !c.is_ascii_whitespace()) {
            spans.push((start, end));
        }
        i = end;
        if i >= text.len() {
            break;
        }
    }
    spans
}

/// Attribute values: the bytes between `="` and the next `"`.
fn attribute_values(text: &[u8]) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    for i in 0..text.len().saturating_sub(1) {
        if &text[i..i + 2] == b"=\"" {
            let start = i + 2;
            if let Some(len) = text[start..].iter().position(|&c| c == b'"') {
                spans.push((start, start + len));
            }
        }
    }
    spans
}

/// Where the prolog ends: after `?>` of an XML declaration, or 0.
fn prolog_end(text: &[u8]) -> usize {
    if text.starts_with(b"<?xml") {
        text.windows(2)
            .position(|w| w == b"?>")
            .map_or(0, |p| p + 2)
    } else {
        0
    }
}

fn pick<T: Copy>(rng: &mut StdRng, items: &[T]) -> Option<T> {
    (!items.is_empty()).then(|| items[rng.random_range(0..items.len())])
}

/// A character boundary at or before `i` in UTF-8 text (bytes mutations may still split one).
fn boundary(text: &[u8], mut i: usize) -> usize {
    while i > 0 && i < text.len() && (text[i] & 0xC0) == 0x80 {
        i -= 1;
    }
    i
}

const DOCTYPES: [&str; 5] = [
    r#"<!DOCTYPE r [<!ENTITY e "x">]>"#,
    r#"<!DOCTYPE r SYSTEM "file:///etc/passwd">"#,
    r#"<!DOCTYPE r [<!ENTITY % p SYSTEM "http://127.0.0.1:9/x.dtd"> %p;]>"#,
    r#"<!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>"#,
    r#"<!DOCTYPE r [<!ATTLIST Signature Id ID #IMPLIED>]>"#,
];

/// Applies one mutation to `text` and says which.
fn mutate_once(text: &mut Vec<u8>, rng: &mut StdRng) -> String {
    let len = text.len();
    if len == 0 {
        text.extend_from_slice(b"<a/>");
        return "empty -> <a/>".into();
    }
    match rng.random_range(0..17) {
        // Bits flipped, markup put in, spans cut or copied: the emulator's `corrupt` fault.
        0 | 2 | 3 => faults::corrupt(text, rng.random()),
        1 => {
            let i = rng.random_range(0..len);
            let byte = pick(rng, b"<>&\"'=/ \0\xff:#;x9").unwrap();
            text[i] = byte;
            format!("byte {byte:#04x} at {i}")
        }
        4 => {
            let i = rng.random_range(0..len);
            text.truncate(i);
            format!("truncate at {i}")
        }
        5..=7 => {
            // Signature wrapping: an element duplicated, or copied or moved into another.
            let spans = elements(text);
            let (Some(what), Some(into)) = (pick(rng, &spans), pick(rng, &spans)) else {
                return "no element".into();
            };
            let copy = text[what.0..what.1].to_vec();
            let Some(first_child_at) = text[into.0..into.1]
                .iter()
                .position(|&c| c == b'>')
                .map(|p| into.0 + p + 1)
                .filter(|&p| p < into.1)
            else {
                return "no element".into();
            };
            let how = rng.random_range(0..3);
            match how {
                0 => {
                    text.splice(what.1..what.1, copy);
                    format!("duplicate element {what:?}")
                }
                1 => {
                    text.splice(first_child_at..first_child_at, copy);
                    format!("copy element {what:?} into {into:?}")
                }
                _ => {
                    if first_child_at > what.0 && first_child_at < what.1 {
                        return "no move into itself".into();
                    }
                    if first_child_at >= what.1 {
                        text.splice(first_child_at..first_child_at, copy);
                        text.drain(what.0..what.1);
                    } else {
                        text.drain(what.0..what.1);
                        text.splice(first_child_at..first_child_at, copy);
                    }
                    format!("move element {what:?} into {into:?}")
                }
            }
        }
        8 | 9 => {
            // Text changed: a digit or a letter for another of its kind.
            let Some((start, end)) = pick(rng, &texts(text)) else {
                return "no text".into();
            };
            let i = rng.random_range(start..end);
            let c = text[i];
            text[i] = if c.is_ascii_digit() {
                b'0' + (c - b'0' + rng.random_range(1..10)) % 10
            } else if c.is_ascii_lowercase() {
                b'a' + (c - b'a' + rng.random_range(1..26)) % 26
            } else if c.is_ascii_uppercase() {
                b'A' + (c - b'A' + rng.random_range(1..26)) % 26
            } else {
                b'X'
            };
            format!("text byte at {i}")
        }
        10 => {
            // A comment or a processing instruction inside text (c14n drops comments: a
            // reader that stops at one would read less than what was signed).
            let Some((start, end)) = pick(rng, &texts(text)) else {
                return "no text".into();
            };
            let i = boundary(text, rng.random_range(start..=end));
            let what: &[u8] = if rng.random_bool(0.5) {
                b"<!---->"
            } else {
                b"<?p x?>"
            };
            text.splice(i..i, what.iter().copied());
            format!("{} in text at {i}", String::from_utf8_lossy(what))
        }
        11 => {
            // The same text, written another way: a character reference or CDATA.
            let Some((start, end)) = pick(rng, &texts(text)) else {
                return "no text".into();
            };
            if rng.random_bool(0.5) {
                let i = rng.random_range(start..end);
                if !text[i].is_ascii_alphanumeric() {
                    return "no plain character".into();
                }
                let reference = format!("&#x{:X};", text[i]);
                text.splice(i..i + 1, reference.bytes());
                format!("character reference at {i}")
            } else {
                if text[start..end].contains(&b'&') {
                    return "text with a reference".into();
                }
                text.splice(end..end, b"]]>".iter().copied());
                text.splice(start..start, b"<![CDATA[".iter().copied());
                format!("CDATA around {start}..{end}")
            }
        }
        12 => {
            let at = prolog_end(text);
            let doctype = pick(rng, &DOCTYPES).unwrap();
            text.splice(at..at, doctype.bytes());
            format!("DOCTYPE {doctype}")
        }
        13 => {
            // An attribute value changed, or replaced by another value of the document (an
            // ID for another ID, a URI for another).
            let values = attribute_values(text);
            let Some((start, end)) = pick(rng, &values) else {
                return "no attribute".into();
            };
            let other = pick(rng, &values).unwrap();
            let replacement = if rng.random_bool(0.5) {
                text[other.0..other.1].to_vec()
            } else {
                let mut v = text[start..end].to_vec();
                v.push(b'x');
                v
            };
            text.splice(start..end, replacement);
            format!("attribute value at {start}")
        }
        14 => {
            // An attribute added to an element: an ID a wrapped copy might claim.
            let spans = elements(text);
            let Some((start, _)) = pick(rng, &spans) else {
                return "no element".into();
            };
            let name_end = (start + 1..text.len())
                .find(|&i| matches!(text[i], b' ' | b'>' | b'/'))
                .unwrap_or(text.len());
            let attribute: &[u8] = pick(
                rng,
                &[
                    b" Id=\"podpis\"".as_slice(),
                    b" xml:id=\"podpis\"",
                    b" ID=\"x\"",
                    b" xmlns=\"urn:x\"",
                    b" xmlns:ds=\"urn:x\"",
                ],
            )
            .unwrap();
            text.splice(name_end..name_end, attribute.iter().copied());
            format!(
                "attribute {} at {start}",
                String::from_utf8_lossy(attribute)
            )
        }
        15 => {
            // The whole document wrapped in another root.
            let at = prolog_end(text);
            text.extend_from_slice(b"</w:w>");
            text.splice(at..at, b"<w:w xmlns:w=\"urn:wrap\">".iter().copied());
            "root wrapped".into()
        }
        _ => {
            // Insignificant white space between elements.
            let spans = elements(text);
            let Some((start, _)) = pick(rng, &spans) else {
                return "no element".into();
            };
            text.splice(start..start, b"\n  ".iter().copied());
            format!("white space at {start}")
        }
    }
}

// ---------------------------------------------------------------------------------------
// The run

#[derive(Default, Debug)]
struct Tally {
    mutants: usize,
    passed: usize,
    refused: usize,
    /// Mutants that read differently from the genuine input when read unchecked.
    changed_meaning: usize,
    /// Refusals by their first words.
    reasons: BTreeMap<String, usize>,
}

fn mutants_per_subject() -> u64 {
    std::env::var("EURZAD_MUTANTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1500)
}

fn first_seed() -> u64 {
    std::env::var("EURZAD_MUTATION_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_261_127)
}

fn save(subject: &str, seed: u64, mutant: &[u8]) -> String {
    let dir = format!("{}/target/mutations", env!("CARGO_MANIFEST_DIR"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = format!(
        "{dir}/{}-{seed}.xml",
        subject
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect::<String>()
    );
    std::fs::write(&path, mutant).unwrap();
    path
}

fn mutants_of(subject: &Subject) -> u64 {
    (mutants_per_subject() / subject.share).max(1)
}

fn run(subject: &Subject, genuine: &str) -> Tally {
    let genuine_unchecked = (subject.read_unchecked)(&subject.genuine);
    assert!(
        genuine_unchecked.is_some(),
        "{}: the genuine input reads",
        subject.name
    );
    let mut tally = Tally::default();
    let first = first_seed();
    for seed in first..first + mutants_of(subject) {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut mutant = subject.genuine.clone();
        let rounds = rng.random_range(1..=3);
        let ops: Vec<String> = (0..rounds)
            .map(|_| mutate_once(&mut mutant, &mut rng))
            .collect();
        if mutant == subject.genuine {
            continue;
        }
        tally.mutants += 1;
        let unchecked = (subject.read_unchecked)(&mutant);
        if unchecked.is_some() && unchecked != genuine_unchecked {
            tally.changed_meaning += 1;
        }
        match (subject.judge)(&mutant) {
            Judged::Passed(read) => {
                if read != genuine {
                    let path = save(subject.name, seed, &mutant);
                    panic!(
                        "{}: mutant {seed} ({}) passed the signature check but reads differently \
                         (saved to {path}).\nGenuine:\n{genuine}\nMutant:\n{read}",
                        subject.name,
                        ops.join("; ")
                    );
                }
                tally.passed += 1;
            }
            Judged::Refused(reason) => {
                if reason.trim().is_empty() {
                    let path = save(subject.name, seed, &mutant);
                    panic!(
                        "{}: mutant {seed} ({}) refused without a reason (saved to {path})",
                        subject.name,
                        ops.join("; ")
                    );
                }
                let head: String = reason
                    .split_whitespace()
                    .take(3)
                    .collect::<Vec<_>>()
                    .join(" ");
                *tally.reasons.entry(head).or_default() += 1;
                tally.refused += 1;
            }
        }
    }
    println!("{}: {tally:#?}", subject.name);
    tally
}

fn survives(subject: Subject) {
    let Judged::Passed(genuine) = (subject.judge)(&subject.genuine) else {
        panic!("{}: the genuine input must pass", subject.name);
    };
    let tally = run(&subject, &genuine);
    assert_teeth(&subject, &tally);
    wrapping_sweep(&subject, &genuine);
}

/// Where a signature leaves room that its digests do not cover: anything put there keeps the
/// signature valid, so a reader must never take it for signed content.
const UNSIGNED_PLACES: [&str; 6] = [
    "KeyInfo",
    "UnsignedProperties",
    "UnsignedSignatureProperties",
    "Signature",
    "Security",
    "Header",
];

/// The local name of the element whose start tag begins at `start`.
fn local_name(text: &[u8], start: usize) -> &[u8] {
    let end = (start + 1..text.len())
        .find(|&i| matches!(text[i], b' ' | b'\t' | b'\r' | b'\n' | b'>' | b'/'))
        .unwrap_or(text.len());
    let name = &text[start + 1..end];
    name.iter()
        .position(|&c| c == b':')
        .map_or(name, |colon| &name[colon + 1..])
}

/// Signature wrapping, systematically: one element of each kind the input holds, with its
/// text changed (so that a reader that took it would read something else), copied into each
/// place the signature leaves unsigned. Each copy is refused or reads exactly as the genuine
/// input. Random mutants rarely hit such a pair in a large input (a trusted list has
/// thousands of elements); this tries every kind once.
fn wrapping_sweep(subject: &Subject, genuine: &str) {
    let text = &subject.genuine;
    let spans = elements(text);
    let mut kinds: Vec<(usize, usize)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for &(start, end) in &spans {
        if seen.insert(local_name(text, start).to_vec()) {
            kinds.push((start, end));
        }
    }
    let places: Vec<usize> = spans
        .iter()
        .filter(|(start, _)| {
            UNSIGNED_PLACES.contains(&std::str::from_utf8(local_name(text, *start)).unwrap_or(""))
        })
        .filter_map(|&(start, end)| {
            let open_end = start + text[start..end].iter().position(|&c| c == b'>')? + 1;
            (text[open_end - 2] != b'/').then_some(open_end)
        })
        .collect();
    assert!(
        !places.is_empty(),
        "{}: the signature has an unsigned place",
        subject.name
    );
    let (mut tried, mut passed) = (0, 0);
    for &(start, end) in &kinds {
        let mut copy = text[start..end].to_vec();
        // Changed text: after the start tag, where an element with content has its text.
        let Some(open_end) = copy.iter().position(|&c| c == b'>') else {
            continue;
        };
        if copy[open_end - 1] != b'/' {
            copy.splice(open_end + 1..open_end + 1, b"ZMIENIONE".iter().copied());
        }
        for &at in &places {
            if at > start && at < end {
                continue; // not into itself
            }
            let mut mutant = text.clone();
            mutant.splice(at..at, copy.iter().copied());
            tried += 1;
            if let Judged::Passed(read) = (subject.judge)(&mutant) {
                passed += 1;
                if read != genuine {
                    let path = save(subject.name, 0, &mutant);
                    panic!(
                        "{}: <{}> copied into an unsigned place at byte {at} passed and reads \
                         differently (saved to {path}).\nGenuine:\n{genuine}\nMutant:\n{read}",
                        subject.name,
                        String::from_utf8_lossy(local_name(text, start))
                    );
                }
            }
        }
    }
    println!(
        "{}: wrapping sweep: {} kinds of element x {} unsigned places: {tried} copies, {passed} passed reading the same",
        subject.name,
        kinds.len(),
        places.len()
    );
    assert!(tried > 0);
}

/// The checks that keep the test from being vacuous: mutants reach what is read, and the
/// verifier does not simply refuse everything.
fn assert_teeth(subject: &Subject, tally: &Tally) {
    let count = mutants_of(subject);
    let subject = subject.name;
    if count < 200 {
        return; // replaying a few seeds
    }
    assert!(
        tally.mutants as u64 >= count * 9 / 10,
        "{subject}: most seeds make a mutant ({tally:?})"
    );
    assert!(
        tally.changed_meaning * 20 >= tally.mutants,
        "{subject}: at least one mutant in twenty reads differently unchecked ({tally:?})"
    );
    assert!(
        tally.passed > 0,
        "{subject}: some mutants (references, CDATA, white space) keep the signature valid ({tally:?})"
    );
}

#[test]
fn a_qualified_access_request_survives_its_mutants() {
    survives(qualified_request());
}

#[test]
fn a_trusted_profile_access_request_survives_its_mutants() {
    survives(trusted_profile_request());
}

#[test]
fn a_letter_signed_by_xmlsec1_survives_its_mutants() {
    survives(xmlsec1_letter());
}

#[test]
fn a_signed_pobierz_answer_survives_its_mutants() {
    survives(pobierz_answer());
}

#[test]
fn a_podpis_zp_access_request_survives_its_mutants() {
    survives(podpis_zp_request());
}

#[test]
fn a_company_authorization_survives_its_mutants() {
    survives(company_authorization());
}

#[test]
fn a_upd_survives_its_mutants() {
    survives(upd());
}

#[test]
fn a_signed_nadaj_request_survives_its_mutants() {
    survives(nadaj_request());
}

#[test]
fn the_pl_trusted_list_survives_its_mutants() {
    survives(trusted_list());
}
