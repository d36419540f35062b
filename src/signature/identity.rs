//! Who signed: read only from signed content, after the signature has passed.
//!
//! - A certificate's subject (qualified and personal signatures): `serialNumber`
//!   `PNOPL-<PESEL>` (EN 319 412-1) or the older `PESEL:<pesel>`, `givenName`, `surname`,
//!   and `organizationIdentifier` (`VATPL-<NIP>`) for legal persons.
//! - A trusted-profile signature (sealed by ePUAP): the person is named in the signed
//!   SignedProperties, under SignerRole/ClaimedRoles/ClaimedRole, in the old
//!   `ppZP:PodpisZP/DaneZP…` layout or the new `pz:EPSignature/NaturalPerson` layout.

use libxml::tree::Node;

use crate::identifiers::pesel_is_valid;
use crate::xml;

const PODPIS_ZAUFANY_NS: &str = "http://crd.gov.pl/xml/schematy/podpis_zaufany/";
const PPZP_NS: &str = "http://crd.gov.pl/xml/schematy/ppzp/";

/// The signer as the signed content names them.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Identity {
    /// `trusted_profile` or `certificate`.
    pub source: &'static str,
    pub given_name: Option<String>,
    pub surname: Option<String>,
    pub pesel: Option<String>,
    /// The PESEL's check digit is right (false also when there is no PESEL).
    pub pesel_valid: bool,
    /// `organizationIdentifier`, e.g. `VATPL-5252955037`.
    pub organization_identifier: Option<String>,
    /// The ePUAP account (old trusted-profile layout only).
    pub epuap_account: Option<String>,
}

fn with_pesel(mut identity: Identity, pesel: Option<String>) -> Identity {
    identity.pesel_valid = pesel.as_deref().is_some_and(pesel_is_valid);
    identity.pesel = pesel;
    identity
}

/// Reads a certificate subject.
pub fn from_certificate(der: &[u8]) -> Option<Identity> {
    let (_, certificate) = x509_parser::parse_x509_certificate(der).ok()?;
    let subject = certificate.subject();
    let attribute = |oid: &x509_parser::der_parser::oid::Oid| {
        subject
            .iter_attributes()
            .find(|a| a.attr_type() == oid)
            .and_then(|a| a.as_str().ok())
            .map(str::to_string)
    };
    use x509_parser::oid_registry::{OID_X509_GIVEN_NAME, OID_X509_SERIALNUMBER, OID_X509_SURNAME};
    let organization_identifier = x509_parser::der_parser::oid!(2.5.4.97);
    let serial = attribute(&OID_X509_SERIALNUMBER);
    let pesel = serial.as_deref().and_then(|s| {
        let s = s.trim();
        s.strip_prefix("PNOPL-")
            .or_else(|| s.strip_prefix("PESEL:"))
            .map(|p| p.trim().to_string())
    });
    Some(with_pesel(
        Identity {
            source: "certificate",
            given_name: attribute(&OID_X509_GIVEN_NAME),
            surname: attribute(&OID_X509_SURNAME),
            organization_identifier: attribute(&organization_identifier),
            ..Identity::default()
        },
        pesel,
    ))
}

/// Reads the trusted-profile identity from the ClaimedRoles of `signed_properties`.
pub fn from_trusted_profile(signed_properties: &Node) -> Option<Identity> {
    let roles = signed_properties
        .findnodes(".//*[local-name()='SignerRole']/*[local-name()='ClaimedRoles']/*[local-name()='ClaimedRole']/*")
        .unwrap_or_default();
    let child_text = |node: &Node, ns: &str, path: &[&str]| -> Option<String> {
        let mut current = node.clone();
        for local in path {
            current = xml::only_child(&current, Some(ns), local).ok().flatten()?;
        }
        Some(xml::text_of(&current).trim().to_string()).filter(|t| !t.is_empty())
    };
    for role in roles {
        if xml::is_element(&role, Some(PODPIS_ZAUFANY_NS), "EPSignature") {
            let person = xml::only_child(&role, Some(PODPIS_ZAUFANY_NS), "NaturalPerson")
                .ok()
                .flatten()?;
            return Some(with_pesel(
                Identity {
                    source: "trusted_profile",
                    given_name: child_text(&person, PODPIS_ZAUFANY_NS, &["FirstName"]),
                    surname: child_text(&person, PODPIS_ZAUFANY_NS, &["CurrentFamilyName"]),
                    ..Identity::default()
                },
                child_text(&person, PODPIS_ZAUFANY_NS, &["PersonalIdentifier"]),
            ));
        }
        if xml::is_element(&role, Some(PPZP_NS), "PodpisZP") {
            let person = ["DaneZP", "DaneZPOsobyFizycznej"];
            let field = |name: &str| child_text(&role, PPZP_NS, &[person[0], person[1], name]);
            return Some(with_pesel(
                Identity {
                    source: "trusted_profile",
                    given_name: field("Imie"),
                    surname: field("Nazwisko"),
                    epuap_account: field("IdKontaUzytkownikaEpuap"),
                    ..Identity::default()
                },
                field("PESEL"),
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::Limits;

    fn signed_properties(xml_text: &str) -> Option<Identity> {
        let doc = xml::parse(xml_text.as_bytes(), Limits::default()).unwrap();
        from_trusted_profile(&doc.get_root_element().unwrap())
    }

    #[test]
    fn reads_the_new_epsignature_layout() {
        let identity = signed_properties(
            r#"<xades:SignedProperties xmlns:xades="http://uri.etsi.org/01903/v1.3.2#"><xades:SignedSignatureProperties><xades:SignerRole><xades:ClaimedRoles><xades:ClaimedRole>
               <pz:EPSignature xmlns:pz="http://crd.gov.pl/xml/schematy/podpis_zaufany/"><pz:NaturalPerson><pz:CurrentFamilyName>TESTOWY</pz:CurrentFamilyName><pz:FirstName>ZENEK</pz:FirstName><pz:DateOfBirth>1980-01-01</pz:DateOfBirth><pz:PersonalIdentifier>44051401359</pz:PersonalIdentifier></pz:NaturalPerson></pz:EPSignature>
               </xades:ClaimedRole></xades:ClaimedRoles></xades:SignerRole></xades:SignedSignatureProperties></xades:SignedProperties>"#,
        )
        .unwrap();
        assert_eq!(identity.source, "trusted_profile");
        assert_eq!(identity.surname.as_deref(), Some("TESTOWY"));
        assert_eq!(identity.given_name.as_deref(), Some("ZENEK"));
        assert_eq!(identity.pesel.as_deref(), Some("44051401359"));
        assert!(identity.pesel_valid);
    }

    #[test]
    fn reads_the_old_podpiszp_layout() {
        let identity = signed_properties(
            r#"<xades:SignedProperties xmlns:xades="http://uri.etsi.org/01903/v1.3.2#"><xades:SignedSignatureProperties><xades:SignerRole><xades:ClaimedRoles><xades:ClaimedRole>
               <ppZP:PodpisZP xmlns:ppZP="http://crd.gov.pl/xml/schematy/ppzp/"><ppZP:DaneZP><ppZP:DaneZPOsobyFizycznej><ppZP:Nazwisko>Demo</ppZP:Nazwisko><ppZP:Imie>Jan</ppZP:Imie><ppZP:PESEL>02070803628</ppZP:PESEL><ppZP:IdKontaUzytkownikaEpuap>demo</ppZP:IdKontaUzytkownikaEpuap></ppZP:DaneZPOsobyFizycznej></ppZP:DaneZP></ppZP:PodpisZP>
               </xades:ClaimedRole></xades:ClaimedRoles></xades:SignerRole></xades:SignedSignatureProperties></xades:SignedProperties>"#,
        )
        .unwrap();
        assert_eq!(
            (identity.given_name.as_deref(), identity.surname.as_deref()),
            (Some("Jan"), Some("Demo"))
        );
        assert_eq!(identity.epuap_account.as_deref(), Some("demo"));
        assert!(identity.pesel_valid);
    }

    #[test]
    fn reads_the_shared_epsignature_sample() {
        let sample = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/samples/tpsigning5-getSignedDocument-content-profil-zaufany-EPSignature.xml"
        ))
        .unwrap();
        let doc = xml::parse(sample.as_bytes(), Limits::default()).unwrap();
        let root = doc.get_root_element().unwrap();
        let properties = root
            .findnodes("//*[local-name()='SignedProperties']")
            .unwrap()
            .remove(0);
        let identity = from_trusted_profile(&properties).unwrap();
        assert_eq!(identity.surname.as_deref(), Some("TESTOWY"));
        // The sample's PESEL is a 12-digit placeholder: it must not pass the checksum.
        assert_eq!(identity.pesel.as_deref(), Some("123451234512"));
        assert!(!identity.pesel_valid);
    }

    #[test]
    fn reads_a_certificate_subject() {
        let der = crate::xmldsig::certificate_der(include_bytes!(
            "../../trust/pz-seal-minister-cyfryzacji-2024.pem"
        ))
        .unwrap();
        let identity = from_certificate(&der).unwrap();
        assert_eq!(
            identity.organization_identifier.as_deref(),
            Some("VATPL-5252955037")
        );
        assert_eq!(identity.pesel, None);
    }
}
