//! The messages of ePUAP's pull and skrytka services (types namespace
//! `http://wsdl.epuap.gov.pl/obiekty/`, child elements unqualified), following
//! `wsdl/sejm-EpuapBrokerLib/obiektypk.xsd`. Builders give XML fragments for
//! [`super::wssec::sign_envelope`]; readers take the signed payload node.
//!
//! Both the client and the emulator use this module, so the two sides cannot drift apart.

use base64::Engine;
use libxml::tree::Node;
use quick_xml::escape::escape;

use crate::document::{PulledDocument, SenderData, SubjectData};
use crate::xml::{self, only_child};

pub const OBIEKTY_NS: &str = "http://wsdl.epuap.gov.pl/obiekty/";
pub const XSI_NS: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// The pull box a request is about (`ZapytaniePullTyp`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BoxRef {
    pub podmiot: String,
    pub nazwa: String,
    pub adres: String,
}

/// An operation of the services eurzad speaks. The names are ePUAP's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    OczekujaceDokumenty,
    PobierzNastepny,
    PotwierdzOdebranie,
    Nadaj,
    /// doręczyciel `dorecz`: delivery with a proof of delivery (UPD) that arrives later.
    Dorecz,
}

impl Operation {
    pub fn name(self) -> &'static str {
        match self {
            Operation::OczekujaceDokumenty => "oczekujaceDokumenty",
            Operation::PobierzNastepny => "pobierzNastepny",
            Operation::PotwierdzOdebranie => "potwierdzOdebranie",
            Operation::Nadaj => "nadaj",
            Operation::Dorecz => "dorecz",
        }
    }

    /// The service path segment under `/pk_external_ws/services/`.
    pub fn service(self) -> &'static str {
        match self {
            Operation::Nadaj => "skrytka",
            Operation::Dorecz => "doreczyciel",
            _ => "pull",
        }
    }

    /// The SOAPAction header from the WSDL binding.
    pub fn soap_action(self) -> String {
        format!("http://ws.epuap.gov.pl/{}/{}", self.service(), self.name())
    }

    /// The request payload element that identifies this operation.
    pub fn request_element(self) -> &'static str {
        match self {
            Operation::OczekujaceDokumenty => "ZapytaniePullOczekujace",
            Operation::PobierzNastepny => "ZapytaniePullPobierz",
            Operation::PotwierdzOdebranie => "ZapytaniePullPotwierdz",
            Operation::Nadaj | Operation::Dorecz => "Dokument",
        }
    }

    pub fn from_request_element(local: &str) -> Option<Operation> {
        [
            Operation::OczekujaceDokumenty,
            Operation::PobierzNastepny,
            Operation::PotwierdzOdebranie,
            Operation::Nadaj,
        ]
        .into_iter()
        .find(|op| op.request_element() == local)
    }
}

/// A payload that does not match the contract. Names the element and the field.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MessageError {
    #[error("<{element}> lacks the required field <{field}>")]
    MissingField { element: String, field: String },
    #[error("<{element}>/<{field}> is not valid base64: {reason}")]
    InvalidBase64 {
        element: String,
        field: String,
        reason: String,
    },
    #[error("<{element}>/<{field}> has an invalid value {value:?}: {reason}")]
    InvalidValue {
        element: String,
        field: String,
        value: String,
        reason: String,
    },
    #[error("expected <{expected}> in the Body, found <{found}>")]
    UnexpectedElement { expected: String, found: String },
    #[error("document content is {size} bytes, over the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
}

/// `StatusTyp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub kod: i32,
    pub komunikat: Option<String>,
}

fn esc(text: &str) -> std::borrow::Cow<'_, str> {
    escape(text)
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

// ---------------------------------------------------------------------------------------
// Requests

/// `ZapytaniePullOczekujace` / `ZapytaniePullPobierz` / `ZapytaniePullPotwierdz`.
pub fn pull_request(operation: Operation, mailbox: &BoxRef, skrot: Option<&str>) -> String {
    let skrot = skrot
        .map(|s| format!("<skrot>{}</skrot>", esc(s)))
        .unwrap_or_default();
    format!(
        r#"<ob:{el} xmlns:ob="{ns}"><podmiot>{p}</podmiot><nazwaSkrytki>{n}</nazwaSkrytki><adresSkrytki>{a}</adresSkrytki>{skrot}</ob:{el}>"#,
        el = operation.request_element(),
        ns = OBIEKTY_NS,
        p = esc(&mailbox.podmiot),
        n = esc(&mailbox.nazwa),
        a = esc(&mailbox.adres),
    )
}

/// The parameters of skrytka `nadaj`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NadajRequest {
    pub podmiot: String,
    pub adres_skrytki: String,
    pub adres_odpowiedzi: String,
    pub czy_probne: bool,
    pub dane_dodatkowe: Vec<u8>,
    pub nazwa_pliku: String,
    pub typ_pliku: Option<String>,
    pub content: Vec<u8>,
}

pub use crate::document::UPO_NS;

/// The parameters of doręczyciel `dorecz`: those of `nadaj`, plus the delivery deadline, the
/// sender's document and case identifiers, and the UPD form the recipient will sign.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DoreczRequest {
    pub nadaj: NadajRequest,
    /// xsd:dateTime.
    pub termin_doreczenia: String,
    pub identyfikator_dokumentu: String,
    pub identyfikator_sprawy: String,
    /// The UPD template (a DokumentTyp).
    pub upd: Vec<u8>,
}

/// The SOAP header blocks and the Body payload of `dorecz`.
pub fn dorecz_request(request: &DoreczRequest) -> (String, String) {
    let (headers, body) = nadaj_request(&request.nadaj);
    let extra = format!(
        concat!(
            r#"<ob:TerminDoreczenia xmlns:ob="{ns}">{t}</ob:TerminDoreczenia>"#,
            r#"<ob:IdentyfikatorDokumentu xmlns:ob="{ns}">{d}</ob:IdentyfikatorDokumentu>"#,
            r#"<ob:IdentyfikatorSprawy xmlns:ob="{ns}">{s}</ob:IdentyfikatorSprawy>"#,
            r#"<ob:UPD xmlns:ob="{ns}">{u}</ob:UPD>"#
        ),
        ns = OBIEKTY_NS,
        t = esc(&request.termin_doreczenia),
        d = esc(&request.identyfikator_dokumentu),
        s = esc(&request.identyfikator_sprawy),
        u = dokument_fields("UPD.xml", Some("text/xml"), &request.upd),
    );
    (headers + &extra, body)
}

/// Reads a `dorecz` request (the emulator's side).
pub fn read_dorecz_request(
    header: Option<&Node>,
    payload: &Node,
    max_content: usize,
) -> Result<DoreczRequest, MessageError> {
    let nadaj = read_nadaj_request(header, payload, max_content)?;
    let header = header.expect("read_nadaj_request checked the header");
    let child = |local: &str| -> Result<Node, MessageError> {
        only_child(header, Some(OBIEKTY_NS), local)
            .ok()
            .flatten()
            .ok_or_else(|| MessageError::MissingField {
                element: "soap:Header".into(),
                field: local.into(),
            })
    };
    let (_, _, upd) = read_dokument(&child("UPD")?, max_content)?;
    Ok(DoreczRequest {
        nadaj,
        termin_doreczenia: xml::text_of(&child("TerminDoreczenia")?),
        identyfikator_dokumentu: xml::text_of(&child("IdentyfikatorDokumentu")?),
        identyfikator_sprawy: xml::text_of(&child("IdentyfikatorSprawy")?),
        upd,
    })
}

/// `OdpowiedzDoreczyciela`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoreczResponse {
    pub status: Status,
    pub identyfikator_dokumentu: String,
    pub identyfikator_zlecenia: String,
}

pub fn dorecz_response(response: &DoreczResponse) -> String {
    format!(
        r#"<ob:OdpowiedzDoreczyciela xmlns:ob="{OBIEKTY_NS}">{}<identyfikatorDokumentu>{}</identyfikatorDokumentu><identyfikatorZlecenia>{}</identyfikatorZlecenia></ob:OdpowiedzDoreczyciela>"#,
        status_xml(&response.status),
        esc(&response.identyfikator_dokumentu),
        esc(&response.identyfikator_zlecenia)
    )
}

pub fn read_dorecz_response(payload: &Node) -> Result<DoreczResponse, MessageError> {
    expect_element(payload, "OdpowiedzDoreczyciela")?;
    Ok(DoreczResponse {
        status: read_status(payload)?,
        identyfikator_dokumentu: required(payload, "identyfikatorDokumentu")?,
        identyfikator_zlecenia: required(payload, "identyfikatorZlecenia")?,
    })
}

/// The SOAP header blocks and the Body payload of `nadaj`.
pub fn nadaj_request(request: &NadajRequest) -> (String, String) {
    let headers = format!(
        concat!(
            r#"<ob:IdentyfikatorPodmiotu xmlns:ob="{ns}">{p}</ob:IdentyfikatorPodmiotu>"#,
            r#"<ob:AdresSkrytki xmlns:ob="{ns}">{a}</ob:AdresSkrytki>"#,
            r#"<ob:AdresOdpowiedzi xmlns:ob="{ns}">{o}</ob:AdresOdpowiedzi>"#,
            r#"<ob:CzyProbne xmlns:ob="{ns}">{c}</ob:CzyProbne>"#,
            r#"<ob:DaneDodatkowe xmlns:ob="{ns}">{d}</ob:DaneDodatkowe>"#
        ),
        ns = OBIEKTY_NS,
        p = esc(&request.podmiot),
        a = esc(&request.adres_skrytki),
        o = esc(&request.adres_odpowiedzi),
        c = request.czy_probne,
        d = b64(&request.dane_dodatkowe),
    );
    let body = format!(
        r#"<ob:Dokument xmlns:ob="{ns}">{doc}</ob:Dokument>"#,
        ns = OBIEKTY_NS,
        doc = dokument_fields(
            &request.nazwa_pliku,
            request.typ_pliku.as_deref(),
            &request.content
        )
    );
    (headers, body)
}

fn dokument_fields(nazwa_pliku: &str, typ_pliku: Option<&str>, content: &[u8]) -> String {
    let typ = typ_pliku
        .map(|t| format!("<typPliku>{}</typPliku>", esc(t)))
        .unwrap_or_default();
    format!(
        "<nazwaPliku>{}</nazwaPliku>{typ}<zawartosc>{}</zawartosc>",
        esc(nazwa_pliku),
        b64(content)
    )
}

/// Reads a pull request payload (the emulator's side).
pub fn read_pull_request(payload: &Node) -> Result<(BoxRef, Option<String>), MessageError> {
    let element = payload.get_name();
    let mailbox = BoxRef {
        podmiot: required(payload, "podmiot")?,
        nazwa: required(payload, "nazwaSkrytki")?,
        adres: required(payload, "adresSkrytki")?,
    };
    let skrot = if element == "ZapytaniePullPotwierdz" {
        Some(required(payload, "skrot")?)
    } else {
        None
    };
    Ok((mailbox, skrot))
}

/// Reads a `nadaj` request (the emulator's side).
pub fn read_nadaj_request(
    header: Option<&Node>,
    payload: &Node,
    max_content: usize,
) -> Result<NadajRequest, MessageError> {
    let missing = |field: &str| MessageError::MissingField {
        element: "soap:Header".into(),
        field: field.into(),
    };
    let header = header.ok_or_else(|| missing("IdentyfikatorPodmiotu"))?;
    let block = |local: &str| -> Result<String, MessageError> {
        only_child(header, Some(OBIEKTY_NS), local)
            .ok()
            .flatten()
            .map(|n| xml::text_of(&n))
            .ok_or_else(|| missing(local))
    };
    let dane_dodatkowe = decode_base64(
        "DaneDodatkowe",
        "DaneDodatkowe",
        &block("DaneDodatkowe").unwrap_or_default(),
    )?;
    let (nazwa_pliku, typ_pliku, content) = read_dokument(payload, max_content)?;
    Ok(NadajRequest {
        podmiot: block("IdentyfikatorPodmiotu")?,
        adres_skrytki: block("AdresSkrytki")?,
        adres_odpowiedzi: block("AdresOdpowiedzi")?,
        czy_probne: parse_bool("CzyProbne", "CzyProbne", &block("CzyProbne")?)?,
        dane_dodatkowe,
        nazwa_pliku,
        typ_pliku,
        content,
    })
}

// ---------------------------------------------------------------------------------------
// Responses

fn status_xml(status: &Status) -> String {
    match &status.komunikat {
        Some(k) => format!(
            "<status><kod>{}</kod><komunikat>{}</komunikat></status>",
            status.kod,
            esc(k)
        ),
        None => format!(
            r#"<status><kod>{}</kod><komunikat xmlns:xsi="{XSI_NS}" xsi:nil="true"/></status>"#,
            status.kod
        ),
    }
}

pub fn oczekujace_response(status: &Status, oczekujace: u64) -> String {
    format!(
        r#"<ob:OdpowiedzPullOczekujace xmlns:ob="{OBIEKTY_NS}">{}<oczekujace>{oczekujace}</oczekujace></ob:OdpowiedzPullOczekujace>"#,
        status_xml(status)
    )
}

/// `OdpowiedzPullPobierz` with a document, or (`None`) ePUAP's bare-status answer for an
/// empty box.
pub fn pobierz_response(status: &Status, document: Option<&PulledDocument>) -> String {
    let Some(d) = document else {
        return format!(
            r#"<ob:OdpowiedzPullPobierz xmlns:ob="{OBIEKTY_NS}">{}</ob:OdpowiedzPullPobierz>"#,
            status_xml(status)
        );
    };
    let opt = |name: &str, value: &Option<String>| {
        value
            .as_ref()
            .map(|v| format!("<{name}>{}</{name}>", esc(v)))
            .unwrap_or_default()
    };
    let p = &d.dane_podmiotu;
    let adres_odpowiedzi = match &d.adres_odpowiedzi {
        Some(a) => format!("<adresOdpowiedzi>{}</adresOdpowiedzi>", esc(a)),
        None => format!(r#"<adresOdpowiedzi xmlns:xsi="{XSI_NS}" xsi:nil="true"/>"#),
    };
    format!(
        concat!(
            r#"<ob:OdpowiedzPullPobierz xmlns:ob="{ns}">{status}"#,
            "<danePodmiotu><identyfikator>{id}</identyfikator><typOsoby>{typ}</typOsoby>{imie}{nazwisko}{nip}{pesel}{regon}<zgoda>{zgoda}</zgoda></danePodmiotu>",
            "<daneNadawcy>{uzytkownik}{system}</daneNadawcy>",
            "<dataNadania>{data}</dataNadania><nazwaSkrytki>{nazwa}</nazwaSkrytki><adresSkrytki>{adres}</adresSkrytki>{odp}",
            "<czyTestowe>{testowe}</czyTestowe><daneDodatkowe>{dodatkowe}</daneDodatkowe>",
            "<dokument>{dokument}</dokument></ob:OdpowiedzPullPobierz>"
        ),
        ns = OBIEKTY_NS,
        status = status_xml(status),
        id = esc(&p.identyfikator),
        typ = esc(&p.typ_osoby),
        imie = opt("imieSkrot", &p.imie_skrot),
        nazwisko = opt("nazwiskoNazwa", &p.nazwisko_nazwa),
        nip = opt("nip", &p.nip),
        pesel = opt("pesel", &p.pesel),
        regon = opt("regon", &p.regon),
        zgoda = p.zgoda,
        uzytkownik = opt("uzytkownik", &d.dane_nadawcy.uzytkownik),
        system = opt("system", &d.dane_nadawcy.system),
        data = esc(&d.data_nadania),
        nazwa = esc(&d.nazwa_skrytki),
        adres = esc(&d.adres_skrytki),
        odp = adres_odpowiedzi,
        testowe = d.czy_testowe,
        dodatkowe = b64(&d.dane_dodatkowe),
        dokument = dokument_fields(&d.nazwa_pliku, d.typ_pliku.as_deref(), &d.content),
    )
}

pub fn potwierdz_response(status: &Status) -> String {
    format!(
        r#"<ob:OdpowiedzPullPotwierdz xmlns:ob="{OBIEKTY_NS}">{}</ob:OdpowiedzPullPotwierdz>"#,
        status_xml(status)
    )
}

/// The answer to `nadaj`: `OdpowiedzSkrytki`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NadajResponse {
    pub status: Status,
    pub identyfikator_dokumentu: String,
    pub identyfikator_upp: Option<String>,
    /// The UPP (urzędowe poświadczenie przedłożenia): file name and bytes.
    pub upp: Option<(String, Vec<u8>)>,
}

pub fn nadaj_response(response: &NadajResponse) -> String {
    let upp_id = response
        .identyfikator_upp
        .as_ref()
        .map(|id| format!("<identyfikatorUpp>{}</identyfikatorUpp>", esc(id)))
        .unwrap_or_default();
    let upp = response
        .upp
        .as_ref()
        .map(|(name, bytes)| {
            format!(
                "<zalacznik>{}</zalacznik>",
                dokument_fields(name, Some("text/xml"), bytes)
            )
        })
        .unwrap_or_default();
    format!(
        r#"<ob:OdpowiedzSkrytki xmlns:ob="{OBIEKTY_NS}">{}<identyfikatorDokumentu>{}</identyfikatorDokumentu>{upp_id}{upp}</ob:OdpowiedzSkrytki>"#,
        status_xml(&response.status),
        esc(&response.identyfikator_dokumentu)
    )
}

/// A `soap:Fault` carrying `Wyjatek{kod, komunikat}`.
pub fn fault(kod: i32, komunikat: &str) -> String {
    format!(
        concat!(
            r#"<soap:Fault xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><faultcode>soap:Server</faultcode>"#,
            r#"<faultstring>{k}</faultstring><detail><ob:Wyjatek xmlns:ob="{ns}"><kod>{kod}</kod><komunikat>{k}</komunikat></ob:Wyjatek></detail></soap:Fault>"#
        ),
        k = esc(komunikat),
        ns = OBIEKTY_NS,
        kod = kod,
    )
}

/// If `payload` is a `soap:Fault`, its `Wyjatek` (or faultstring when there is none).
pub fn read_fault(payload: &Node) -> Option<(i32, String)> {
    if !xml::is_element(payload, Some(super::wssec::SOAP_NS), "Fault") {
        return None;
    }
    let faultstring = only_child(payload, None, "faultstring")
        .ok()
        .flatten()
        .map(|n| xml::text_of(&n))
        .unwrap_or_default();
    let wyjatek = only_child(payload, None, "detail")
        .ok()
        .flatten()
        .and_then(|detail| {
            only_child(&detail, Some(OBIEKTY_NS), "Wyjatek")
                .ok()
                .flatten()
        });
    Some(match wyjatek {
        Some(w) => (
            optional(&w, "kod")
                .and_then(|k| k.trim().parse().ok())
                .unwrap_or(-1),
            optional(&w, "komunikat").unwrap_or(faultstring),
        ),
        None => (-1, faultstring),
    })
}

/// Checks that `payload` is `ob:{expected}`.
pub fn expect_element(payload: &Node, expected: &str) -> Result<(), MessageError> {
    if xml::is_element(payload, Some(OBIEKTY_NS), expected) {
        Ok(())
    } else {
        Err(MessageError::UnexpectedElement {
            expected: format!("ob:{expected}"),
            found: format!(
                "{{{}}}{}",
                xml::namespace_of(payload).unwrap_or_default(),
                payload.get_name()
            ),
        })
    }
}

pub fn read_status(payload: &Node) -> Result<Status, MessageError> {
    let element = payload.get_name();
    let status = only_child(payload, None, "status")
        .ok()
        .flatten()
        .ok_or_else(|| MessageError::MissingField {
            element: element.clone(),
            field: "status".into(),
        })?;
    let kod = required(&status, "kod")?;
    let kod = kod.trim().parse().map_err(|_| MessageError::InvalidValue {
        element: "status".into(),
        field: "kod".into(),
        value: kod.clone(),
        reason: "not an integer".into(),
    })?;
    Ok(Status {
        kod,
        komunikat: optional(&status, "komunikat").filter(|k| !k.is_empty()),
    })
}

pub fn read_oczekujace(payload: &Node) -> Result<(Status, u64), MessageError> {
    expect_element(payload, "OdpowiedzPullOczekujace")?;
    let status = read_status(payload)?;
    let count = required(payload, "oczekujace")?;
    let count = count
        .trim()
        .parse()
        .map_err(|_| MessageError::InvalidValue {
            element: "OdpowiedzPullOczekujace".into(),
            field: "oczekujace".into(),
            value: count.clone(),
            reason: "not a non-negative integer".into(),
        })?;
    Ok((status, count))
}

/// Reads `OdpowiedzPullPobierz`. A bare status without `dokument` yields `None`.
pub fn read_pobierz(
    payload: &Node,
    max_content: usize,
) -> Result<(Status, Option<PulledDocument>), MessageError> {
    expect_element(payload, "OdpowiedzPullPobierz")?;
    let status = read_status(payload)?;
    if payload.get_child_elements().len() == 1 {
        return Ok((status, None));
    }
    let podmiot = child(payload, "danePodmiotu")?;
    let nadawca = child(payload, "daneNadawcy")?;
    let dane_podmiotu = SubjectData {
        identyfikator: required(&podmiot, "identyfikator")?,
        typ_osoby: required(&podmiot, "typOsoby")?,
        imie_skrot: optional(&podmiot, "imieSkrot"),
        nazwisko_nazwa: optional(&podmiot, "nazwiskoNazwa"),
        nip: optional(&podmiot, "nip"),
        pesel: optional(&podmiot, "pesel"),
        regon: optional(&podmiot, "regon"),
        zgoda: parse_bool("danePodmiotu", "zgoda", &required(&podmiot, "zgoda")?)?,
    };
    let dane_nadawcy = SenderData {
        uzytkownik: optional(&nadawca, "uzytkownik"),
        system: optional(&nadawca, "system"),
    };
    let adres_odpowiedzi = {
        let node = child(payload, "adresOdpowiedzi")?;
        let nil = node
            .get_property_ns("nil", XSI_NS)
            .map(|v| v.trim() == "true")
            .unwrap_or(false);
        if nil { None } else { Some(xml::text_of(&node)) }
    };
    let dokument = child(payload, "dokument")?;
    let (nazwa_pliku, typ_pliku, content) = read_dokument(&dokument, max_content)?;
    let document = PulledDocument {
        dane_podmiotu,
        dane_nadawcy,
        data_nadania: required(payload, "dataNadania")?.trim().to_string(),
        nazwa_skrytki: required(payload, "nazwaSkrytki")?,
        adres_skrytki: required(payload, "adresSkrytki")?,
        adres_odpowiedzi,
        czy_testowe: parse_bool(
            "OdpowiedzPullPobierz",
            "czyTestowe",
            &required(payload, "czyTestowe")?,
        )?,
        dane_dodatkowe: decode_base64(
            "OdpowiedzPullPobierz",
            "daneDodatkowe",
            &required(payload, "daneDodatkowe")?,
        )?,
        nazwa_pliku,
        typ_pliku,
        content,
    };
    Ok((status, Some(document)))
}

pub fn read_potwierdz(payload: &Node) -> Result<Status, MessageError> {
    expect_element(payload, "OdpowiedzPullPotwierdz")?;
    read_status(payload)
}

pub fn read_nadaj_response(
    payload: &Node,
    max_content: usize,
) -> Result<NadajResponse, MessageError> {
    expect_element(payload, "OdpowiedzSkrytki")?;
    let status = read_status(payload)?;
    let upp = match only_child(payload, None, "zalacznik").ok().flatten() {
        Some(z) => {
            let (name, _, bytes) = read_dokument(&z, max_content)?;
            Some((name, bytes))
        }
        None => None,
    };
    Ok(NadajResponse {
        status,
        identyfikator_dokumentu: required(payload, "identyfikatorDokumentu")?,
        identyfikator_upp: optional(payload, "identyfikatorUpp"),
        upp,
    })
}

fn read_dokument(
    node: &Node,
    max_content: usize,
) -> Result<(String, Option<String>, Vec<u8>), MessageError> {
    let element = node.get_name();
    let encoded = required(node, "zawartosc")?;
    // base64 is 4/3 of the bytes: refuse before decoding an oversized document.
    let approx = encoded.len() / 4 * 3;
    if approx > max_content.saturating_add(3) {
        return Err(MessageError::TooLarge {
            size: approx,
            limit: max_content,
        });
    }
    let content = decode_base64(&element, "zawartosc", &encoded)?;
    if content.len() > max_content {
        return Err(MessageError::TooLarge {
            size: content.len(),
            limit: max_content,
        });
    }
    Ok((
        required(node, "nazwaPliku")?,
        optional(node, "typPliku"),
        content,
    ))
}

fn child(node: &Node, local: &str) -> Result<Node, MessageError> {
    only_child(node, None, local)
        .ok()
        .flatten()
        .ok_or_else(|| MessageError::MissingField {
            element: node.get_name(),
            field: local.into(),
        })
}

fn required(node: &Node, local: &str) -> Result<String, MessageError> {
    child(node, local).map(|n| xml::text_of(&n))
}

fn optional(node: &Node, local: &str) -> Option<String> {
    only_child(node, None, local)
        .ok()
        .flatten()
        .map(|n| xml::text_of(&n))
}

fn parse_bool(element: &str, field: &str, value: &str) -> Result<bool, MessageError> {
    match value.trim() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        other => Err(MessageError::InvalidValue {
            element: element.into(),
            field: field.into(),
            value: other.into(),
            reason: "not an xsd:boolean".into(),
        }),
    }
}

fn decode_base64(element: &str, field: &str, text: &str) -> Result<Vec<u8>, MessageError> {
    // Byte by byte: an ASCII whitespace byte is never part of a multi-byte character, and
    // anything else that is not base64 fails the decode.
    let compact: std::borrow::Cow<[u8]> = if text.bytes().any(|b| b.is_ascii_whitespace()) {
        text.bytes().filter(|b| !b.is_ascii_whitespace()).collect()
    } else {
        text.as_bytes().into()
    };
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|e| MessageError::InvalidBase64 {
            element: element.into(),
            field: field.into(),
            reason: e.to_string(),
        })
}
