//! WS-Security for ePUAP's SOAP services, as production accepts it: a `wsse:Security` header
//! with an X.509v3 BinarySecurityToken, a Timestamp, and an exclusive-c14n RSA-SHA256
//! `ds:Signature` whose References cover `soap:Body` and the Timestamp by `wsu:Id`. KeyInfo
//! is a SecurityTokenReference to the token.
//!
//! Verification pins the peer's certificate: the token in the message is never trusted. It
//! also checks which elements the References cover, so that the Body the caller reads is the
//! Body that was signed (no wrapping), and that the Timestamp is fresh.

use std::time::Duration;

use base64::Engine;
use chrono::{DateTime, SecondsFormat, Utc};
use libxml::tree::{Document, Node};

use crate::xml::{self, Limits, XmlError, only_child};
use crate::xmldsig::{self, Allowlist, DSIG_NS, DsigError, SigningKey};

pub const SOAP_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";
pub const WSSE_NS: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd";
pub use crate::xmldsig::WSU_NS;
const X509V3: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3";
const BASE64_BINARY: &str = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary";

/// Why a SOAP message was refused at the security layer.
#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    #[error(transparent)]
    Xml(#[from] XmlError),
    #[error(transparent)]
    Signature(#[from] DsigError),
    #[error("not a SOAP 1.1 envelope: {0}")]
    NotSoap(String),
    #[error("message is not signed: {0}")]
    Unsigned(String),
    #[error("signature does not cover {0}")]
    NotCovered(&'static str),
    #[error("signature references {0:?}, which is neither the Body nor the Timestamp")]
    UnexpectedReference(String),
    #[error("timestamp refused: {0}")]
    Timestamp(String),
}

/// What a verification requires.
#[derive(Debug, Clone)]
pub struct VerifyPolicy {
    pub limits: Limits,
    /// Refuse a message without a signed Timestamp.
    pub require_timestamp: bool,
    /// Accepted clock difference between the peers.
    pub clock_skew: Duration,
}

/// A signed envelope under construction: optional SOAP header blocks and the Body payload,
/// both as XML fragments that declare their own namespaces.
pub struct Envelope<'a> {
    pub header_blocks: &'a str,
    pub body: &'a str,
}

/// Builds and signs a SOAP 1.1 envelope around `envelope.body`.
pub fn sign_envelope(
    envelope: &Envelope<'_>,
    key: &SigningKey,
    now: DateTime<Utc>,
    ttl: Duration,
) -> Result<String, DsigError> {
    let token = base64::engine::general_purpose::STANDARD.encode(key.certificate_der()?);
    let suffix: String = format!("{:016x}", rand::random::<u64>());
    let created = now.to_rfc3339_opts(SecondsFormat::Millis, true);
    let expires = (now + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::minutes(5)))
        .to_rfc3339_opts(SecondsFormat::Millis, true);
    let reference = |uri: &str| {
        format!(
            r##"<ds:Reference URI="#{uri}"><ds:Transforms><ds:Transform Algorithm="{c14n}"/></ds:Transforms><ds:DigestMethod Algorithm="{sha256}"/><ds:DigestValue/></ds:Reference>"##,
            c14n = xmldsig::EXC_C14N,
            sha256 = xmldsig::SHA256,
        )
    };
    let text = format!(
        concat!(
            r#"<soap:Envelope xmlns:soap="{soap}" xmlns:wsse="{wsse}" xmlns:wsu="{wsu}">"#,
            r#"<soap:Header>{headers}<wsse:Security soap:mustUnderstand="1">"#,
            r#"<wsse:BinarySecurityToken EncodingType="{b64}" ValueType="{x509}" wsu:Id="X509-{s}">{token}</wsse:BinarySecurityToken>"#,
            r#"<wsu:Timestamp wsu:Id="TS-{s}"><wsu:Created>{created}</wsu:Created><wsu:Expires>{expires}</wsu:Expires></wsu:Timestamp>"#,
            r#"<ds:Signature xmlns:ds="{dsig}" Id="SIG-{s}"><ds:SignedInfo>"#,
            r#"<ds:CanonicalizationMethod Algorithm="{c14n}"/><ds:SignatureMethod Algorithm="{rsa}"/>"#,
            "{ref_ts}{ref_body}</ds:SignedInfo><ds:SignatureValue/>",
            r##"<ds:KeyInfo><wsse:SecurityTokenReference><wsse:Reference URI="#X509-{s}" ValueType="{x509}"/></wsse:SecurityTokenReference></ds:KeyInfo>"##,
            "</ds:Signature></wsse:Security></soap:Header>",
            r#"<soap:Body wsu:Id="Body-{s}">{body}</soap:Body></soap:Envelope>"#
        ),
        soap = SOAP_NS,
        wsse = WSSE_NS,
        wsu = WSU_NS,
        headers = envelope.header_blocks,
        b64 = BASE64_BINARY,
        x509 = X509V3,
        s = suffix,
        token = token,
        created = created,
        expires = expires,
        dsig = DSIG_NS,
        c14n = xmldsig::EXC_C14N,
        rsa = xmldsig::RSA_SHA256,
        ref_ts = reference(&format!("TS-{suffix}")),
        ref_body = reference(&format!("Body-{suffix}")),
        body = envelope.body,
    );
    // Our own template: a parse failure here is a bug in a payload builder, reported as such.
    let limits = Limits {
        max_bytes: usize::MAX,
        max_depth: 64,
    };
    let doc = xml::parse(text.as_bytes(), limits)
        .map_err(|e| DsigError::Sign(format!("envelope template: {e}")))?;
    let parts = locate(&doc).map_err(|e| DsigError::Sign(format!("envelope template: {e}")))?;
    xmldsig::register_id(&doc, &parts.body, Some(WSU_NS), "Id")?;
    if let Some(timestamp) = &parts.timestamp {
        xmldsig::register_id(&doc, timestamp, Some(WSU_NS), "Id")?;
    }
    xmldsig::sign(&parts.signature, key, Allowlist::WSS)?;
    Ok(serialize(&doc))
}

fn serialize(doc: &Document) -> String {
    doc.to_string_with_options(libxml::tree::SaveOptions::default())
}

/// The parts of a received envelope the caller may read.
pub struct Opened<'a> {
    /// The `soap:Header` element, if any. Not signed: ePUAP's contract signs the Body and the
    /// Timestamp only (SignedParts = Body), yet `nadaj` carries its addressing here, so the
    /// emulator reads those blocks unsigned, as ePUAP does (docs/wssecurity.md).
    pub header: Option<&'a Node>,
    /// The first element child of `soap:Body`, the signed part: the payload or a `soap:Fault`.
    pub payload: &'a Node,
}

struct Parts {
    header: Option<Node>,
    body: Node,
    signature: Node,
    timestamp: Option<Node>,
}

fn locate(doc: &Document) -> Result<Parts, SecurityError> {
    let root = doc
        .get_root_element()
        .ok_or_else(|| SecurityError::NotSoap("no root element".into()))?;
    if !xml::is_element(&root, Some(SOAP_NS), "Envelope") {
        return Err(SecurityError::NotSoap(format!(
            "root element is <{}> in namespace {:?}, expected soap:Envelope",
            root.get_name(),
            xml::namespace_of(&root)
        )));
    }
    for child in root.get_child_elements() {
        if !(xml::is_element(&child, Some(SOAP_NS), "Header")
            || xml::is_element(&child, Some(SOAP_NS), "Body"))
        {
            return Err(SecurityError::NotSoap(format!(
                "unexpected element <{}> in Envelope",
                child.get_name()
            )));
        }
    }
    let single = |parent: &Node, ns: &str, local: &'static str| {
        only_child(parent, Some(ns), local).map_err(|n| {
            SecurityError::NotSoap(format!("{n} <{local}> elements where one is allowed"))
        })
    };
    let body = single(&root, SOAP_NS, "Body")?
        .ok_or_else(|| SecurityError::NotSoap("no soap:Body".into()))?;
    let header = single(&root, SOAP_NS, "Header")?;
    let security = match &header {
        Some(header) => single(header, WSSE_NS, "Security")?,
        None => None,
    }
    .ok_or_else(|| SecurityError::Unsigned("no wsse:Security header".into()))?;
    let signature = single(&security, DSIG_NS, "Signature")?
        .ok_or_else(|| SecurityError::Unsigned("no ds:Signature in wsse:Security".into()))?;
    let timestamp = single(&security, WSU_NS, "Timestamp")?;
    let all_signatures = xml::count_elements(doc, DSIG_NS, "Signature");
    if all_signatures != 1 {
        return Err(SecurityError::Unsigned(format!(
            "{all_signatures} ds:Signature elements in the message; exactly one, in wsse:Security, is accepted"
        )));
    }
    Ok(Parts {
        header,
        body,
        signature,
        timestamp,
    })
}

/// Verifies `bytes` as a signed SOAP envelope from the holder of `peer_certificate_pem` and
/// hands the signed parts to `read`. The document never leaves this thread.
pub fn open_envelope<T, E>(
    bytes: &[u8],
    peer_certificate_pem: &[u8],
    policy: &VerifyPolicy,
    now: DateTime<Utc>,
    read: impl FnOnce(Opened<'_>) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<SecurityError>,
{
    let doc = xml::parse(bytes, policy.limits).map_err(SecurityError::from)?;
    let parts = locate(&doc)?;
    check_signature(&doc, &parts, peer_certificate_pem, policy, now)?;
    let payload = parts
        .body
        .get_first_element_child()
        .ok_or_else(|| SecurityError::NotSoap("soap:Body is empty".into()))?;
    read(Opened {
        header: parts.header.as_ref(),
        payload: &payload,
    })
}

fn check_signature(
    doc: &Document,
    parts: &Parts,
    peer_certificate_pem: &[u8],
    policy: &VerifyPolicy,
    now: DateTime<Utc>,
) -> Result<(), SecurityError> {
    let body_id = xmldsig::register_id(doc, &parts.body, Some(WSU_NS), "Id")
        .map_err(|e| SecurityError::Unsigned(format!("soap:Body cannot be referenced: {e}")))?;
    let timestamp_id = match &parts.timestamp {
        Some(timestamp) => Some(xmldsig::register_id(doc, timestamp, Some(WSU_NS), "Id")?),
        None if policy.require_timestamp => {
            return Err(SecurityError::Timestamp("no wsu:Timestamp".into()));
        }
        None => None,
    };
    let signed_info = only_child(&parts.signature, Some(DSIG_NS), "SignedInfo")
        .ok()
        .flatten()
        .ok_or_else(|| SecurityError::Unsigned("ds:Signature has no single SignedInfo".into()))?;
    let (mut body_covered, mut timestamp_covered) = (false, false);
    for reference in xml::children(&signed_info, Some(DSIG_NS), "Reference") {
        let uri = reference.get_property_no_ns("URI").unwrap_or_default();
        match uri.strip_prefix('#') {
            Some(id) if id == body_id => body_covered = true,
            Some(id) if Some(id) == timestamp_id.as_deref() => timestamp_covered = true,
            _ => return Err(SecurityError::UnexpectedReference(uri)),
        }
    }
    if !body_covered {
        return Err(SecurityError::NotCovered("soap:Body"));
    }
    if timestamp_id.is_some() && !timestamp_covered {
        return Err(SecurityError::NotCovered("wsu:Timestamp"));
    }
    xmldsig::verify(&parts.signature, peer_certificate_pem, Allowlist::WSS)?;
    if let Some(timestamp) = &parts.timestamp {
        check_freshness(timestamp, policy.clock_skew, now)?;
    }
    Ok(())
}

fn check_freshness(
    timestamp: &Node,
    skew: Duration,
    now: DateTime<Utc>,
) -> Result<(), SecurityError> {
    let skew = chrono::Duration::from_std(skew).unwrap_or(chrono::Duration::minutes(5));
    let read = |local: &'static str| -> Result<Option<DateTime<Utc>>, SecurityError> {
        match only_child(timestamp, Some(WSU_NS), local) {
            Ok(Some(node)) => DateTime::parse_from_rfc3339(xml::text_of(&node).trim())
                .map(|t| Some(t.with_timezone(&Utc)))
                .map_err(|e| {
                    SecurityError::Timestamp(format!("wsu:{local} is not a dateTime: {e}"))
                }),
            Ok(None) => Ok(None),
            Err(n) => Err(SecurityError::Timestamp(format!(
                "{n} wsu:{local} elements"
            ))),
        }
    };
    let created =
        read("Created")?.ok_or_else(|| SecurityError::Timestamp("no wsu:Created".into()))?;
    if created > now + skew {
        return Err(SecurityError::Timestamp(format!(
            "created {created}, in the future"
        )));
    }
    if let Some(expires) = read("Expires")?
        && expires < now - skew
    {
        return Err(SecurityError::Timestamp(format!("expired at {expires}")));
    }
    Ok(())
}
