//! What the policy reads off certificates and CRLs, beyond what xmlsec checks: the qualified
//! statement (QcCompliance), the signing time against validity, the CRLs an office configures,
//! the revocation sources a certificate names, and XAdES IssuerSerial.

use chrono::{DateTime, Utc};
use x509_parser::prelude::*;

/// id-pe-qcStatements (RFC 3739).
const QC_STATEMENTS: &str = "1.3.6.1.5.5.7.1.3";
/// The DER of id-etsi-qcs-QcCompliance (0.4.0.1862.1.1): the certificate is qualified
/// (EN 319 412-5).
const QC_COMPLIANCE_DER: [u8; 8] = [0x06, 0x06, 0x04, 0x00, 0x8e, 0x46, 0x01, 0x01];

/// True when the certificate states it is an EU qualified certificate (QcCompliance).
pub fn is_qualified(der: &[u8]) -> bool {
    let Ok((_, certificate)) = parse_x509_certificate(der) else {
        return false;
    };
    certificate.extensions().iter().any(|ext| {
        ext.oid.to_id_string() == QC_STATEMENTS
            && ext
                .value
                .windows(QC_COMPLIANCE_DER.len())
                .any(|w| w == QC_COMPLIANCE_DER)
    })
}

/// What the policy reads off a certificate, parsed once.
#[derive(Debug, Clone)]
pub struct Facts {
    pub subject: String,
    pub validity: Option<(DateTime<Utc>, DateTime<Utc>)>,
    pub qualified: bool,
    pub identity: Option<super::identity::Identity>,
    /// The revocation sources it names, and its issuer's name (DER); `None` when unreadable.
    pub revocation: Option<(RevocationSources, Vec<u8>)>,
}

type FactsCache = std::collections::HashMap<u64, (Vec<u8>, std::sync::Arc<Facts>)>;

thread_local! {
    /// Facts by certificate. Signers and intermediates recur from document to document;
    /// parsing them again cost about a tenth of a verification. Keyed by a cheap hash of
    /// the DER's length and tail (the signature value, effectively random); a hit is
    /// confirmed by comparing the whole DER.
    static FACTS: std::cell::RefCell<FactsCache> = std::cell::RefCell::new(FactsCache::new());
}

fn tail_key(der: &[u8]) -> u64 {
    let tail = &der[der.len().saturating_sub(32)..];
    tail.iter()
        .fold(0xcbf2_9ce4_8422_2325u64 ^ der.len() as u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
}

/// The facts of a certificate (cached per thread, at most 1,024 certificates).
pub fn facts(der: &[u8]) -> std::sync::Arc<Facts> {
    let key = tail_key(der);
    let hit = FACTS.with(|cache| {
        cache
            .borrow()
            .get(&key)
            .filter(|(cached, _)| cached.as_slice() == der)
            .map(|(_, facts)| facts.clone())
    });
    if let Some(hit) = hit {
        return hit;
    }
    let parsed = parse_x509_certificate(der).ok().map(|(_, c)| c);
    let facts = std::sync::Arc::new(Facts {
        subject: parsed
            .as_ref()
            .map(|c| c.subject().to_string())
            .unwrap_or_else(|| "(unreadable certificate)".into()),
        validity: validity(der),
        qualified: is_qualified(der),
        identity: super::identity::from_certificate(der),
        revocation: revocation_sources(der),
    });
    FACTS.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.len() >= 1024 {
            cache.clear();
        }
        cache.insert(key, (der.to_vec(), facts.clone()));
    });
    facts
}

/// The certificate's validity as (not before, not after).
pub fn validity(der: &[u8]) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let (_, certificate) = parse_x509_certificate(der).ok()?;
    let v = certificate.validity();
    Some((
        DateTime::from_timestamp(v.not_before.timestamp(), 0)?,
        DateTime::from_timestamp(v.not_after.timestamp(), 0)?,
    ))
}

/// A configured CRL, read and verified once.
#[derive(Debug, Clone)]
pub struct Crl {
    der: Vec<u8>,
    pub issuer: String,
    /// The issuer's name as DER, to find the CRLs of a certificate's issuer cheaply.
    issuer_der: Vec<u8>,
}

impl Crl {
    /// The CRL as DER.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// Whether this is a CRL of the issuer named `issuer_der` (a Name, DER).
    pub fn is_of(&self, issuer_der: &[u8]) -> bool {
        self.issuer_der == issuer_der
    }

    /// Reads a CRL (PEM or DER) and checks it is signed by one of `issuers` (anchors and
    /// intermediates, PEM or DER), so that a forged CRL can neither revoke nor pass.
    pub fn load(bytes: &[u8], issuers: &[Vec<u8>]) -> Result<Crl, String> {
        let der = if bytes.starts_with(b"-----BEGIN") {
            match x509_parser::pem::parse_x509_pem(bytes) {
                Ok((_, block)) if block.label == "X509 CRL" => block.contents,
                Ok((_, block)) => {
                    return Err(format!("a PEM {:?} block, not an X509 CRL", block.label));
                }
                Err(e) => return Err(format!("unreadable PEM: {e}")),
            }
        } else {
            bytes.to_vec()
        };
        let (_, crl) = parse_x509_crl(&der).map_err(|e| format!("not a CRL (PEM or DER): {e}"))?;
        let issuer = crl.issuer().to_string();
        let issuer_der = crl.issuer().as_raw().to_vec();
        let mut candidates = Vec::new();
        for file in issuers {
            candidates.extend(crate::xmldsig::certificates_der(file).unwrap_or_default());
        }
        let signed = candidates.iter().any(|cert| {
            parse_x509_certificate(cert).is_ok_and(|(_, c)| {
                c.subject() == crl.issuer() && crl.verify_signature(c.public_key()).is_ok()
            })
        });
        if !signed {
            return Err(format!(
                "the CRL of {issuer} is not signed by any configured anchor or intermediate"
            ));
        }
        Ok(Crl {
            der,
            issuer,
            issuer_der,
        })
    }
}

/// The DER of RFC 5035's `IssuerSerial` for a certificate: `SEQUENCE { GeneralNames {
/// directoryName issuer }, serialNumber }`, as XAdES `IssuerSerialV2` carries it (base64).
/// DER is canonical, so a genuine IssuerSerialV2 of this certificate is exactly these bytes.
pub fn issuer_serial_v2(der: &[u8]) -> Option<Vec<u8>> {
    let (_, certificate) = parse_x509_certificate(der).ok()?;
    let serial = certificate.raw_serial();
    let directory_name = tlv(0xA4, certificate.issuer().as_raw());
    let general_names = tlv(0x30, &directory_name);
    let serial_number = tlv(0x02, serial);
    Some(tlv(0x30, &[general_names, serial_number].concat()))
}

/// One DER element: tag, definite length, content.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let length = content.len();
    if length < 0x80 {
        out.push(length as u8);
    } else {
        let bytes: Vec<u8> = length
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

/// Whether XAdES's (V1) `IssuerSerial` names this certificate: the serial number (decimal)
/// exactly, and the issuer's distinguished name component by component where the string can
/// be read (RFC 4514 types by name or OID; a value in `#hex` form leaves the name unread and
/// the serial decides). `Err` says what differs.
pub fn issuer_serial_v1_names(der: &[u8], issuer_name: &str, serial: &str) -> Result<(), String> {
    let (_, certificate) =
        parse_x509_certificate(der).map_err(|e| format!("unreadable certificate: {e}"))?;
    let own_serial = certificate.serial.to_string();
    if serial.trim() != own_serial {
        return Err(format!(
            "serial {} where the signer's is {own_serial}",
            serial.trim()
        ));
    }
    let Some(claimed) = read_dn(issuer_name) else {
        return Ok(());
    };
    let mut own: Vec<(String, String)> = certificate
        .issuer()
        .iter_attributes()
        .map(|a| {
            (
                a.attr_type().to_id_string(),
                a.as_str().unwrap_or_default().trim().to_lowercase(),
            )
        })
        .collect();
    own.sort();
    if claimed != own {
        return Err(format!(
            "issuer {issuer_name:?} where the signer's is {:?}",
            certificate.issuer().to_string()
        ));
    }
    Ok(())
}

/// An RFC 4514 string as sorted (OID, lower-cased value) pairs; `None` when a part cannot be
/// read (an unknown type name, a value in `#hex` form).
fn read_dn(text: &str) -> Option<Vec<(String, String)>> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut escaped = false;
    for c in text.chars() {
        match c {
            _ if escaped => {
                current.push(c);
                escaped = false;
            }
            '\\' => escaped = true,
            ',' | ';' | '+' => parts.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    parts.push(current);
    let mut pairs = Vec::new();
    for part in parts.iter().filter(|p| !p.trim().is_empty()) {
        let (kind, value) = part.split_once('=')?;
        let value = value.trim();
        if value.starts_with('#') {
            return None;
        }
        let kind = kind.trim().to_uppercase();
        let oid = match kind.trim_start_matches("OID.") {
            "CN" => "2.5.4.3",
            "SN" | "SURNAME" => "2.5.4.4",
            "SERIALNUMBER" => "2.5.4.5",
            "C" => "2.5.4.6",
            "L" => "2.5.4.7",
            "ST" | "S" => "2.5.4.8",
            "STREET" => "2.5.4.9",
            "O" => "2.5.4.10",
            "OU" => "2.5.4.11",
            "T" | "TITLE" => "2.5.4.12",
            "G" | "GN" | "GIVENNAME" => "2.5.4.42",
            "ORGANIZATIONIDENTIFIER" => "2.5.4.97",
            "E" | "EMAILADDRESS" => "1.2.840.113549.1.9.1",
            "DC" => "0.9.2342.19200300.100.1.25",
            numeric if numeric.chars().all(|c| c.is_ascii_digit() || c == '.') => numeric,
            _ => return None,
        };
        pairs.push((oid.to_string(), value.to_lowercase()));
    }
    pairs.sort();
    Some(pairs)
}

/// The revocation sources a certificate names, HTTP(S) only (LDAP ones are skipped): OCSP
/// responders (Authority Information Access) and CRL distribution points.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RevocationSources {
    pub ocsp: Vec<String>,
    pub crls: Vec<String>,
}

/// id-ad-ocsp (RFC 5280, 4.2.2.1).
const AD_OCSP: &str = "1.3.6.1.5.5.7.48.1";

/// The revocation sources `der` names, and its issuer's name (DER).
pub fn revocation_sources(der: &[u8]) -> Option<(RevocationSources, Vec<u8>)> {
    let (_, certificate) = parse_x509_certificate(der).ok()?;
    let http = |uri: &str| uri.starts_with("http://") || uri.starts_with("https://");
    let mut sources = RevocationSources::default();
    for extension in certificate.extensions() {
        match extension.parsed_extension() {
            ParsedExtension::AuthorityInfoAccess(access) => {
                for description in &access.accessdescs {
                    if description.access_method.to_id_string() == AD_OCSP
                        && let GeneralName::URI(uri) = &description.access_location
                        && http(uri)
                    {
                        sources.ocsp.push(uri.to_string());
                    }
                }
            }
            ParsedExtension::CRLDistributionPoints(points) => {
                for point in points.iter() {
                    if let Some(DistributionPointName::FullName(names)) = &point.distribution_point
                    {
                        for name in names {
                            if let GeneralName::URI(uri) = name
                                && http(uri)
                            {
                                sources.crls.push(uri.to_string());
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Some((sources, certificate.issuer().as_raw().to_vec()))
}
