//! Forms: what a document is, and what it says.
//!
//! A [`Registry`] knows the form types the office reads, keyed by the namespace of the root
//! element (CRD forms are identified that way, e.g. "pismo ogólne" is
//! `http://crd.gov.pl/wzor/2013/12/12/1410/`). Each type has a parser and, where we have one,
//! an XSD in `schemas/` that libxml2 validates against before anything is read:
//!
//! | type | namespace | XSD |
//! |---|---|---|
//! | access request ("wniosek o dostęp") | configurable, default [`ACCESS_REQUEST_NS`] | `schemas/wniosek_o_dostep.xsd` |
//! | authorization ("upoważnienie") | configurable, default [`AUTHORIZATION_NS`] | `schemas/upowaznienie.xsd` |
//! | "pismo ogólne" | [`PISMO_OGOLNE_2013_NS`], [`PISMO_OGOLNE_2017_NS`] | none (remote CRD imports); tolerant parser |
//!
//! Any other XML is [`Form::Unknown`], recorded as such and never dropped. Forms are read
//! from bytes that the signature check has already judged; the parser reads exactly the
//! root element that check covered (see `signature` for the anti-wrapping rules).

mod access_request;
mod classify;
mod general_letter;
mod schema;

pub use access_request::{
    AccessRequest, Applicant, Attachment, Authorization, Basis, Party, PartyId, PartyKind,
    Represented, Scope,
};
pub use classify::{Classification, classify};
pub use general_letter::GeneralLetter;

use crate::xml::{self, Limits};
use crate::xmldsig::DSIG_NS;

pub const ACCESS_REQUEST_NS: &str =
    "http://epuap.gov.pl/fe-model-web/wzor_lokalny/eurzad/wniosek_o_dostep/";
pub const AUTHORIZATION_NS: &str =
    "http://epuap.gov.pl/fe-model-web/wzor_lokalny/eurzad/upowaznienie/";
pub const PISMO_OGOLNE_2013_NS: &str = "http://crd.gov.pl/wzor/2013/12/12/1410/";
pub const PISMO_OGOLNE_2017_NS: &str = "http://crd.gov.pl/wzor/2017/10/24/4566/";
/// CRD "struktura" schema: `str:Zalaczniki` and friends.
pub const CRD_STRUKTURA_NS: &str = "http://crd.gov.pl/xml/schematy/struktura/2009/11/16/";

/// The form types, as stored with a document (`inbound_document.form_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FormType {
    AccessRequest,
    Authorization,
    GeneralLetter,
    Unknown,
}

impl FormType {
    pub fn as_str(self) -> &'static str {
        match self {
            FormType::AccessRequest => "access_request",
            FormType::Authorization => "authorization",
            FormType::GeneralLetter => "general_letter",
            FormType::Unknown => "unknown",
        }
    }

    /// The name officials know.
    pub fn polish_name(self) -> &'static str {
        match self {
            FormType::AccessRequest => "wniosek o dostęp do portalu eUrząd",
            FormType::Authorization => "upoważnienie",
            FormType::GeneralLetter => "pismo ogólne",
            FormType::Unknown => "nieznany formularz",
        }
    }
}

/// A document read as a form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Form {
    AccessRequest(AccessRequest),
    Authorization(Authorization),
    GeneralLetter(GeneralLetter),
    /// XML of a type the registry does not know: recorded with its root's name.
    Unknown {
        namespace: Option<String>,
        root: String,
    },
}

impl Form {
    pub fn form_type(&self) -> FormType {
        match self {
            Form::AccessRequest(_) => FormType::AccessRequest,
            Form::Authorization(_) => FormType::Authorization,
            Form::GeneralLetter(_) => FormType::GeneralLetter,
            Form::Unknown { .. } => FormType::Unknown,
        }
    }
}

/// Why a document of a known type could not be read. `at` names where: an element path
/// (`/Wniosek/Reprezentowani/Podmiot[2]/NIP`) or a line of the XSD report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {at}: {message}", form.polish_name())]
pub struct FormError {
    pub form: FormType,
    pub at: String,
    pub message: String,
}

impl FormError {
    pub(crate) fn new(form: FormType, at: impl Into<String>, message: impl Into<String>) -> Self {
        FormError {
            form,
            at: at.into(),
            message: message.into(),
        }
    }
}

/// The form types the office reads, keyed by namespace.
#[derive(Debug, Clone)]
pub struct Registry {
    pub access_request_ns: String,
    pub authorization_ns: String,
}

impl Default for Registry {
    fn default() -> Self {
        Registry {
            access_request_ns: ACCESS_REQUEST_NS.into(),
            authorization_ns: AUTHORIZATION_NS.into(),
        }
    }
}

/// Forms are small; an access request with attachments stays well under this.
const LIMITS: Limits = Limits {
    max_bytes: 16 * 1024 * 1024,
    max_depth: 64,
};

impl Registry {
    /// Which type a namespace names.
    pub fn form_type(&self, namespace: Option<&str>) -> FormType {
        match namespace {
            Some(ns) if ns == self.access_request_ns => FormType::AccessRequest,
            Some(ns) if ns == self.authorization_ns => FormType::Authorization,
            Some(PISMO_OGOLNE_2013_NS | PISMO_OGOLNE_2017_NS) => FormType::GeneralLetter,
            _ => FormType::Unknown,
        }
    }

    /// Reads a document as the form its root names: validates it against the type's XSD
    /// (when there is one), then parses it. Every `ds:Signature` below the root is left out
    /// first, so only what an enveloped signature covers is read (the signature check requires
    /// an enveloped signature to sit directly in the root). Not XML at all is an error of
    /// type `Unknown`.
    pub fn read(&self, bytes: &[u8]) -> Result<Form, FormError> {
        // Read without its signatures: what an enveloped signature covers, and nothing that
        // could be slipped into a signature's unsigned parts.
        let doc = xml::parse_without(bytes, LIMITS, (DSIG_NS, "Signature"))
            .map_err(|e| FormError::new(FormType::Unknown, "document", e.to_string()))?;
        let root = doc
            .get_root_element()
            .ok_or_else(|| FormError::new(FormType::Unknown, "document", "no root element"))?;
        let namespace = xml::namespace_of(&root);
        let form_type = self.form_type(namespace.as_deref());
        match form_type {
            FormType::AccessRequest => {
                schema::validate(schema::Kind::AccessRequest, &self.access_request_ns, &doc)
                    .map_err(|(at, m)| FormError::new(form_type, at, m))?;
                access_request::read_request(&root, &self.access_request_ns, self)
                    .map(Form::AccessRequest)
            }
            FormType::Authorization => {
                schema::validate(schema::Kind::Authorization, &self.authorization_ns, &doc)
                    .map_err(|(at, m)| FormError::new(form_type, at, m))?;
                access_request::read_authorization(&root, &self.authorization_ns)
                    .map(Form::Authorization)
            }
            FormType::GeneralLetter => Ok(Form::GeneralLetter(general_letter::read(&root))),
            FormType::Unknown => Ok(Form::Unknown {
                namespace,
                root: root.get_name(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/fixtures/forms/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    #[test]
    fn reads_an_access_request_for_oneself() {
        let Form::AccessRequest(request) = Registry::default()
            .read(&fixture("wniosek-dla-siebie.xml"))
            .unwrap()
        else {
            panic!("not an access request")
        };
        assert_eq!(request.applicant.pesel, "85031412347");
        assert_eq!(
            request.applicant.email.as_deref(),
            Some("jan.kowalski@example.test")
        );
        assert!(request.represented.is_empty());
        assert_eq!(request.date.to_string(), "2026-11-20");
    }

    #[test]
    fn reads_representations_and_their_attached_authorizations() {
        let registry = Registry::default();
        let Form::AccessRequest(request) = registry
            .read(&fixture("wniosek-za-firme-i-osobe.xml"))
            .unwrap()
        else {
            panic!("not an access request")
        };
        assert_eq!(request.represented.len(), 2);
        let company = &request.represented[0];
        assert_eq!(company.party.kind, PartyKind::Legal);
        assert_eq!(company.party.id, PartyId::Nip("5252955037".into()));
        assert_eq!(company.scope, vec![Scope::Podatki, Scope::Oplaty]);
        assert_eq!(company.basis, Basis::Upowaznienie);
        assert_eq!(
            company.attachment.as_deref(),
            Some("upowaznienie-firma.xml")
        );
        let person = &request.represented[1];
        assert_eq!(person.party.id, PartyId::Pesel("90010112349".into()));
        assert_eq!(person.basis, Basis::Upowaznienie);
        let attachment = request
            .attachment_for(person)
            .expect("the authorization is attached");
        let Form::Authorization(authorization) = registry.read(&attachment.content).unwrap() else {
            panic!("the attachment is not an authorization")
        };
        assert_eq!(
            authorization.principal.id,
            PartyId::Pesel("90010112349".into())
        );
        assert_eq!(authorization.agent_pesel, "85031412347");
        assert!(authorization.scope.contains(&Scope::Podatki));
    }

    #[test]
    fn reads_the_postal_address_a_paper_letter_goes_to_and_refuses_a_wrong_one() {
        let with = |code: &str| {
            String::from_utf8(fixture("wniosek-dla-siebie.xml"))
                .unwrap()
                .replace(
                    "</Telefon>",
                    &format!(
                        "</Telefon><AdresKorespondencyjny><Ulica>ul. Świętokrzyska</Ulica>\
                     <NrDomu>12</NrDomu><KodPocztowy>{code}</KodPocztowy>\
                     <Miejscowosc>Kielce</Miejscowosc></AdresKorespondencyjny>"
                    ),
                )
        };
        let Form::AccessRequest(request) =
            Registry::default().read(with("25-001").as_bytes()).unwrap()
        else {
            panic!("not an access request")
        };
        let postal = request.applicant.postal_address.expect("read");
        assert_eq!(
            postal.lines(),
            [
                "ul. Świętokrzyska 12".to_string(),
                "25-001 Kielce".to_string()
            ]
        );
        let err = Registry::default()
            .read(with("25001").as_bytes())
            .unwrap_err();
        assert!(
            err.to_string().contains("KodPocztowy") && err.to_string().contains("25001"),
            "{err}"
        );
    }

    #[test]
    fn xsd_errors_name_the_line_and_the_element() {
        let bad = String::from_utf8(fixture("wniosek-dla-siebie.xml"))
            .unwrap()
            .replace("<PESEL>85031412347</PESEL>", "<PESEL>8503141234</PESEL>");
        let err = Registry::default().read(bad.as_bytes()).unwrap_err();
        assert_eq!(err.form, FormType::AccessRequest);
        assert!(
            err.to_string()
                .starts_with("wniosek o dostęp do portalu eUrząd: line "),
            "{err}"
        );
        assert!(err.at.starts_with("line "), "{err}");
        assert!(err.message.contains("PESEL"), "{err}");
    }

    #[test]
    fn a_bad_checksum_is_named_with_its_path() {
        let bad = String::from_utf8(fixture("wniosek-za-firme-i-osobe.xml"))
            .unwrap()
            .replace("<NIP>5252955037</NIP>", "<NIP>5252955038</NIP>");
        let err = Registry::default().read(bad.as_bytes()).unwrap_err();
        assert_eq!(err.at, "/Wniosek/Reprezentowani/Podmiot[1]/NIP", "{err}");
        assert!(err.message.contains("check digit"), "{err}");
    }

    #[test]
    fn the_namespace_is_configurable() {
        let ns = "http://epuap.gov.pl/fe-model-web/wzor_lokalny/urzad-testowo/wniosek/";
        let doc = String::from_utf8(fixture("wniosek-dla-siebie.xml"))
            .unwrap()
            .replace(ACCESS_REQUEST_NS, ns);
        let registry = Registry {
            access_request_ns: ns.into(),
            ..Registry::default()
        };
        assert!(matches!(
            registry.read(doc.as_bytes()),
            Ok(Form::AccessRequest(_))
        ));
        // Under the default registry the same document is an unknown form, not an error.
        assert!(matches!(
            Registry::default().read(doc.as_bytes()),
            Ok(Form::Unknown { .. })
        ));
    }

    #[test]
    fn reads_both_generations_of_pismo_ogolne() {
        let registry = Registry::default();
        for file in ["pismo-ogolne-przykladowa.xml", "pismo-ogolne-demo.xml"] {
            let bytes = std::fs::read(format!(
                "{}/fixtures/demo/{file}",
                env!("CARGO_MANIFEST_DIR")
            ))
            .unwrap();
            let Form::GeneralLetter(letter) = registry.read(&bytes).unwrap() else {
                panic!("{file}: not a general letter")
            };
            assert!(
                !letter.title.is_empty() && !letter.body.is_empty(),
                "{file}: {letter:?}"
            );
        }
        let old = std::fs::read(format!(
            "{}/fixtures/forms/pismo-ogolne-2013.xml",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let Form::GeneralLetter(letter) = registry.read(&old).unwrap() else {
            panic!("not a general letter")
        };
        assert_eq!(letter.title, "Wniosek o wydanie zaświadczenia");
        assert_eq!(letter.sender.as_deref(), Some("Jan Kowalski"));
    }

    #[test]
    fn unknown_xml_is_recorded_not_rejected() {
        assert_eq!(
            Registry::default()
                .read(b"<x:a xmlns:x='urn:other'/>")
                .unwrap(),
            Form::Unknown {
                namespace: Some("urn:other".into()),
                root: "a".into()
            }
        );
    }
}
