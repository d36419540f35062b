//! Signing: an enveloped XAdES-BES signature over a whole XML document, as the office seals
//! its letters (and as tests sign citizens' forms with the test PKI). The result passes
//! [`super::verify`]: `URI=""` with the enveloped transform over the root, SignedProperties
//! referenced with its Type, SigningCertificateV2 (digest and IssuerSerialV2) and SigningTime.

use base64::Engine;
use chrono::{DateTime, SecondsFormat, Utc};
use sha2::Digest;

use crate::xml::{self, Limits};
use crate::xmldsig::{self, Allowlist, DSIG_NS, DsigError, SigningKey};

const XADES_NS: &str = "http://uri.etsi.org/01903/v1.3.2#";

/// The signed person as ePUAP's trusted-profile seal names them: `pz:EPSignature` with
/// `NaturalPerson` (for [`xades_enveloped_with_role`]). Names may be absent.
pub fn trusted_profile_role(given_name: &str, surname: &str, pesel: &str) -> String {
    let field = |name: &str, value: &str| {
        if value.is_empty() {
            String::new()
        } else {
            format!(
                "<pz:{name}>{}</pz:{name}>",
                quick_xml::escape::escape(value)
            )
        }
    };
    format!(
        "<pz:EPSignature xmlns:pz=\"http://crd.gov.pl/xml/schematy/podpis_zaufany/\"><pz:NaturalPerson>{}{}{}</pz:NaturalPerson></pz:EPSignature>",
        field("FirstName", given_name),
        field("CurrentFamilyName", surname),
        field("PersonalIdentifier", pesel),
    )
}

/// Appends an enveloped XAdES-BES signature by `key` to the root element of `document`.
/// `id` names the signature (its SignedProperties get `{id}-signed-properties`).
pub fn xades_enveloped(
    document: &[u8],
    key: &SigningKey,
    signing_time: DateTime<Utc>,
    id: &str,
) -> Result<Vec<u8>, DsigError> {
    xades_enveloped_with_role(document, key, signing_time, id, None)
}

/// As [`xades_enveloped`], with `claimed_role` (an XML element) placed in the signed
/// `SignerRole/ClaimedRoles/ClaimedRole`, where ePUAP's trusted-profile seal names the person
/// (`pz:EPSignature` or `ppZP:PodpisZP`).
pub fn xades_enveloped_with_role(
    document: &[u8],
    key: &SigningKey,
    signing_time: DateTime<Utc>,
    id: &str,
    claimed_role: Option<&str>,
) -> Result<Vec<u8>, DsigError> {
    let fail = |what: &str| DsigError::Sign(format!("sealing: {what}"));
    let limits = Limits {
        max_bytes: 64 * 1024 * 1024,
        max_depth: 128,
    };
    // The document must be well-formed and not signed already; its root's end tag is where
    // the signature goes.
    let doc = xml::parse(document, limits).map_err(|e| fail(&e.to_string()))?;
    let root = doc
        .get_root_element()
        .ok_or_else(|| fail("no root element"))?;
    if !root
        .findnodes("//*[local-name()='Signature']")
        .unwrap_or_default()
        .is_empty()
    {
        return Err(fail("the document is signed already"));
    }
    let text = std::str::from_utf8(document).map_err(|_| fail("the document is not UTF-8"))?;
    let end = text
        .trim_end()
        .rfind("</")
        .ok_or_else(|| fail("the root element is empty"))?;
    let certificate = xmldsig::certificate_der(&key.certificate_pem)?;
    let cert_b64 = base64::engine::general_purpose::STANDARD.encode(&certificate);
    let cert_digest =
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(&certificate));
    let issuer_serial = super::certificate::issuer_serial_v2(&certificate)
        .map(|der| {
            format!(
                "<xades:IssuerSerialV2>{}</xades:IssuerSerialV2>",
                base64::engine::general_purpose::STANDARD.encode(der)
            )
        })
        .unwrap_or_default();
    let time = signing_time.to_rfc3339_opts(SecondsFormat::Secs, true);
    let signature = format!(
        r##"<ds:Signature xmlns:ds="{DSIG_NS}" Id="{id}"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="{c14n}"/><ds:SignatureMethod Algorithm="{rsa}"/><ds:Reference URI=""><ds:Transforms><ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/><ds:Transform Algorithm="{c14n}"/></ds:Transforms><ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue/></ds:Reference><ds:Reference URI="#{id}-signed-properties" Type="http://uri.etsi.org/01903#SignedProperties"><ds:Transforms><ds:Transform Algorithm="{c14n}"/></ds:Transforms><ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue/></ds:Reference></ds:SignedInfo><ds:SignatureValue/><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert_b64}</ds:X509Certificate></ds:X509Data></ds:KeyInfo><ds:Object><xades:QualifyingProperties xmlns:xades="{XADES_NS}" Target="#{id}"><xades:SignedProperties Id="{id}-signed-properties"><xades:SignedSignatureProperties><xades:SigningTime>{time}</xades:SigningTime><xades:SigningCertificateV2><xades:Cert><xades:CertDigest><ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue>{cert_digest}</ds:DigestValue></xades:CertDigest>{issuer_serial}</xades:Cert></xades:SigningCertificateV2>{role}</xades:SignedSignatureProperties></xades:SignedProperties></xades:QualifyingProperties></ds:Object></ds:Signature>"##,
        c14n = xmldsig::EXC_C14N,
        rsa = xmldsig::RSA_SHA256,
        role = claimed_role
            .map(|r| format!("<xades:SignerRole><xades:ClaimedRoles><xades:ClaimedRole>{r}</xades:ClaimedRole></xades:ClaimedRoles></xades:SignerRole>"))
            .unwrap_or_default(),
    );
    let combined = format!("{}{signature}{}", &text[..end], &text[end..]);
    let doc = xml::parse(combined.as_bytes(), limits).map_err(|e| fail(&e.to_string()))?;
    let root = doc
        .get_root_element()
        .ok_or_else(|| fail("no root element"))?;
    let signature = root
        .get_child_elements()
        .into_iter()
        .rfind(|n| xml::is_element(n, Some(DSIG_NS), "Signature"))
        .ok_or_else(|| fail("the signature did not land in the root element"))?;
    let signed_properties = signature
        .findnodes(".//*[local-name()='SignedProperties']")
        .ok()
        .and_then(|mut found| found.pop())
        .ok_or_else(|| fail("no SignedProperties"))?;
    xmldsig::register_id(&doc, &signed_properties, None, "Id")?;
    xmldsig::sign(&signature, key, Allowlist::ENVELOPED)?;
    Ok(doc
        .to_string_with_options(libxml::tree::SaveOptions::default())
        .into_bytes())
}
