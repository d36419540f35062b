//! The UPP (urzędowe poświadczenie przedłożenia) the emulator returns for `nadaj`: the fields
//! of DESIGN.md §2 in the UPO 2008/05/09 namespace, sealed with an enveloped XML-DSig by the
//! emulator's key. The root element's name follows public descriptions; ePUAP's own UPP
//! schema was not available to check it against.

use base64::Engine;
use quick_xml::escape::escape;
use sha2::{Digest, Sha256};

use crate::xml::{self, Limits};
use crate::xmldsig::{self, Allowlist, DSIG_NS, DsigError, SigningKey};

pub use crate::epuap::soap::UPO_NS;

pub struct UppFields<'a> {
    pub identyfikator_poswiadczenia: &'a str,
    pub adresat: &'a str,
    pub nadawca: &'a str,
    pub data_doreczenia: &'a str,
    pub identyfikator_dokumentu: &'a str,
    pub content: &'a [u8],
}

/// Builds and seals a UPP.
pub fn build(fields: &UppFields<'_>, key: &SigningKey, now: &str) -> Result<Vec<u8>, DsigError> {
    let digest = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(fields.content));
    let text = format!(
        concat!(
            r#"<upp:UPP xmlns:upp="{ns}">"#,
            "<upp:IdentyfikatorPoswiadczenia>{id}</upp:IdentyfikatorPoswiadczenia>",
            "<upp:Adresat>{adresat}</upp:Adresat><upp:Nadawca>{nadawca}</upp:Nadawca>",
            "<upp:DataDoreczenia>{doreczenie}</upp:DataDoreczenia>",
            "<upp:DataWytworzeniaPoswiadczenia>{now}</upp:DataWytworzeniaPoswiadczenia>",
            "<upp:IdentyfikatorDokumentu>{dok}</upp:IdentyfikatorDokumentu>",
            r#"<upp:InformacjaUzupelniajaca rodzaj="SkrotDokumentuSHA256">{digest}</upp:InformacjaUzupelniajaca>"#,
            r#"<ds:Signature xmlns:ds="{dsig}"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="{c14n}"/>"#,
            r#"<ds:SignatureMethod Algorithm="{rsa}"/><ds:Reference URI=""><ds:Transforms>"#,
            r#"<ds:Transform Algorithm="{env}"/><ds:Transform Algorithm="{c14n}"/></ds:Transforms>"#,
            r#"<ds:DigestMethod Algorithm="{sha}"/><ds:DigestValue/></ds:Reference></ds:SignedInfo>"#,
            "<ds:SignatureValue/></ds:Signature></upp:UPP>"
        ),
        ns = UPO_NS,
        id = escape(fields.identyfikator_poswiadczenia),
        adresat = escape(fields.adresat),
        nadawca = escape(fields.nadawca),
        doreczenie = escape(fields.data_doreczenia),
        now = escape(now),
        dok = escape(fields.identyfikator_dokumentu),
        digest = digest,
        dsig = DSIG_NS,
        c14n = xmldsig::EXC_C14N,
        rsa = xmldsig::RSA_SHA256,
        env = xmldsig::ENVELOPED,
        sha = xmldsig::SHA256,
    );
    let doc = xml::parse(text.as_bytes(), Limits::default())
        .map_err(|e| DsigError::Sign(format!("UPP template: {e}")))?;
    let root = doc.get_root_element().expect("UPP has a root");
    let signature = xml::only_child(&root, Some(DSIG_NS), "Signature")
        .ok()
        .flatten()
        .expect("UPP template has one signature");
    xmldsig::sign(&signature, key, Allowlist::ENVELOPED)?;
    Ok(doc
        .to_string_with_options(libxml::tree::SaveOptions::default())
        .into_bytes())
}

/// What a UPD (urzędowe poświadczenie doręczenia) certifies.
pub struct UpdFields<'a> {
    pub wystawca: &'a str,
    pub adresat: &'a str,
    pub data_odbioru: &'a str,
    pub identyfikator_sprawy: &'a str,
    pub identyfikator_dokumentu: &'a str,
}

/// Builds and seals a UPD: the recipient opened the letter (DESIGN.md §2 fields; the root
/// element's name, like the UPP's, is not checked against an ePUAP schema).
pub fn build_upd(
    fields: &UpdFields<'_>,
    key: &SigningKey,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<u8>, DsigError> {
    let text = format!(
        concat!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
            r#"<upd:UPD xmlns:upd="{ns}">"#,
            "<upd:PodmiotWystawiajacyPoswiadczenie>{wystawca}</upd:PodmiotWystawiajacyPoswiadczenie>",
            "<upd:Adresat>{adresat}</upd:Adresat>",
            "<upd:DataOdbioru>{odbior}</upd:DataOdbioru>",
            "<upd:DataUtworzeniaPoswiadczenia>{odbior}</upd:DataUtworzeniaPoswiadczenia>",
            "<upd:IdentyfikatorSprawy>{sprawa}</upd:IdentyfikatorSprawy>",
            "<upd:IdentyfikatorDokumentu>{dok}</upd:IdentyfikatorDokumentu>",
            "</upd:UPD>\n"
        ),
        ns = UPO_NS,
        wystawca = escape(fields.wystawca),
        adresat = escape(fields.adresat),
        odbior = escape(fields.data_odbioru),
        sprawa = escape(fields.identyfikator_sprawy),
        dok = escape(fields.identyfikator_dokumentu),
    );
    crate::signature::seal::xades_enveloped(text.as_bytes(), key, now, "upd")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::demo_pki;

    #[test]
    fn upp_verifies_with_the_emulator_certificate_only() {
        let fields = UppFields {
            identyfikator_poswiadczenia: "EMU-UPP-1",
            adresat: "/jan_kowalski/skrytka",
            nadawca: "urzad_testowy",
            data_doreczenia: "2026-11-26T10:00:00Z",
            identyfikator_dokumentu: "EMU-DOK-1",
            content: b"<a/>",
        };
        let upp = build(&fields, &demo_pki::epuap_key(), "2026-11-26T10:00:00Z").unwrap();
        let verify = |cert: &[u8]| {
            let doc = xml::parse(&upp, Limits::default()).unwrap();
            let root = doc.get_root_element().unwrap();
            let signature = xml::only_child(&root, Some(DSIG_NS), "Signature")
                .unwrap()
                .unwrap();
            xmldsig::verify(&signature, cert, Allowlist::ENVELOPED)
        };
        verify(demo_pki::EPUAP_CERT).unwrap();
        assert!(verify(demo_pki::OFFICE_CERT).is_err());
    }
}
