//! National trusted lists (ETSI TS 119 612): the qualified CAs a qualified signature may chain
//! to, taken from a list whose own signature was verified first.
//!
//! Rules (shared/trust-reference/NOTES.md):
//! - the list is accepted only if signed (XAdES, checked by [`super::verify`]) by a signer
//!   certificate from the LOTL's pointer for the territory; the certificate in KeyInfo never
//!   counts. The signature is judged at the list's issue time;
//! - a sequence number lower than the one already loaded is refused;
//! - a service's status at time T comes from ServiceInformation and ServiceHistory, with the
//!   duplicated current entry (same status, same start) counted once; pre-eIDAS statuses
//!   equivalent to "granted" count as granted;
//! - a service with a critical extension we do not understand is left out, with the reason.

use chrono::{DateTime, Utc};
use libxml::tree::Node;

use super::{TrustPolicy, verify};
use crate::xml::{self, Limits};

pub const TSL_NS: &str = "http://uri.etsi.org/02231/v2#";
pub const CA_QC: &str = "http://uri.etsi.org/TrstSvc/Svctype/CA/QC";

#[derive(Debug, thiserror::Error)]
pub enum TslError {
    #[error("trusted list: {0}")]
    Format(String),
    #[error("trusted list signature refused: {0}")]
    Signature(String),
    #[error(
        "trusted list sequence number {found} is lower than the one already loaded ({loaded}): refusing a rollback"
    )]
    Rollback { found: u64, loaded: u64 },
    #[error("LOTL has no pointer for territory {0}")]
    NoPointer(String),
}

/// One trust service of a list.
#[derive(Debug, Clone)]
pub struct Service {
    pub provider: String,
    pub name: String,
    pub service_type: String,
    /// DER certificates of ServiceDigitalIdentity.
    pub certificates: Vec<Vec<u8>>,
    /// (status URI, starting time), de-duplicated, oldest first.
    pub statuses: Vec<(String, DateTime<Utc>)>,
    /// Why the service is left out, if it is.
    pub excluded: Option<String>,
}

impl Service {
    /// The status in force at `at`, if any.
    pub fn status_at(&self, at: DateTime<Utc>) -> Option<&str> {
        self.statuses
            .iter()
            .rev()
            .find(|(_, start)| *start <= at)
            .map(|(s, _)| s.as_str())
    }

    pub fn granted_at(&self, at: DateTime<Utc>) -> bool {
        self.excluded.is_none() && self.status_at(at).is_some_and(is_granted)
    }
}

/// Statuses that mean "granted" (eIDAS) or its pre-2016 equivalents.
fn is_granted(status: &str) -> bool {
    matches!(
        status.rsplit('/').next().unwrap_or(""),
        "granted"
            | "undersupervision"
            | "accredited"
            | "setbynationallaw"
            | "supervisionincessation"
    )
}

/// A verified trusted list.
#[derive(Debug, Clone)]
pub struct TrustedList {
    pub territory: String,
    pub sequence_number: u64,
    pub issued: DateTime<Utc>,
    pub next_update: Option<DateTime<Utc>>,
    /// Subject of the certificate that signed the list.
    pub signer: String,
    pub services: Vec<Service>,
}

impl TrustedList {
    /// The certificates of CA/QC services granted at `at`: anchors for qualified signatures.
    pub fn qualified_ca_anchors(&self, at: DateTime<Utc>) -> Vec<Vec<u8>> {
        self.services
            .iter()
            .filter(|s| s.service_type == CA_QC && s.granted_at(at))
            .flat_map(|s| s.certificates.iter().cloned())
            .collect()
    }
}

fn limits() -> Limits {
    Limits {
        max_bytes: 32 * 1024 * 1024,
        max_depth: 64,
    }
}

fn first(node: &Node, path: &str) -> Option<Node> {
    node.findnodes(path).ok().and_then(|n| n.into_iter().next())
}

fn text(node: &Node, path: &str) -> Option<String> {
    first(node, path).map(|n| xml::text_of(&n).trim().to_string())
}

fn time(node: &Node, path: &str) -> Result<Option<DateTime<Utc>>, TslError> {
    text(node, path)
        .map(|t| {
            DateTime::parse_from_rfc3339(&t)
                .map(|d| d.with_timezone(&Utc))
                .map_err(|e| TslError::Format(format!("{path}: {t:?} is not a dateTime: {e}")))
        })
        .transpose()
}

fn certificates(node: &Node, path: &str) -> Result<Vec<Vec<u8>>, TslError> {
    use base64::Engine;
    node.findnodes(path)
        .unwrap_or_default()
        .iter()
        .map(|c| {
            let b64: String = xml::text_of(c).split_whitespace().collect();
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|e| TslError::Format(format!("X509Certificate is not base64: {e}")))
        })
        .collect()
}

/// The TSL signer certificates the LOTL lists for `territory` (e.g. "PL").
pub fn signers_from_lotl(lotl: &[u8], territory: &str) -> Result<Vec<Vec<u8>>, TslError> {
    let doc = xml::parse(lotl, limits()).map_err(|e| TslError::Format(e.to_string()))?;
    let root = doc
        .get_root_element()
        .ok_or_else(|| TslError::Format("empty LOTL".into()))?;
    let pointers = root
        .findnodes("//*[local-name()='OtherTSLPointer']")
        .unwrap_or_default();
    for pointer in pointers {
        let matches = text(&pointer, ".//*[local-name()='SchemeTerritory']").as_deref()
            == Some(territory)
            && text(&pointer, ".//*[local-name()='MimeType']").is_some_and(|m| m.contains("xml"));
        if matches {
            return certificates(
                &pointer,
                ".//*[local-name()='ServiceDigitalIdentity']//*[local-name()='X509Certificate']",
            );
        }
    }
    Err(TslError::NoPointer(territory.to_string()))
}

/// The acceptable signers of a trusted list from a file: a PEM file of certificates, or the
/// EU LOTL (XML), whose pointer for `territory` names them.
pub fn signers_from_file(file: &[u8], territory: &str) -> Result<Vec<Vec<u8>>, TslError> {
    if file
        .windows(27)
        .any(|w| w == b"-----BEGIN CERTIFICATE-----")
    {
        crate::xmldsig::certificates_der(file).map_err(|e| TslError::Format(e.to_string()))
    } else {
        signers_from_lotl(file, territory)
    }
}

/// Verifies and reads a trusted list. `signers` are the acceptable signer certificates (from
/// the LOTL pointer); `loaded` is the sequence number of the list already in use, if any.
pub fn load(
    bytes: &[u8],
    signers: &[Vec<u8>],
    loaded: Option<u64>,
) -> Result<TrustedList, TslError> {
    // Read without the list's signature: what it covers. Its KeyInfo and unsigned properties
    // are not covered, and a TrustServiceProvider put there must not count.
    let doc = xml::parse_without(bytes, limits(), (crate::xmldsig::DSIG_NS, "Signature"))
        .map_err(|e| TslError::Format(e.to_string()))?;
    let root = doc
        .get_root_element()
        .ok_or_else(|| TslError::Format("empty document".into()))?;
    if !xml::is_element(&root, Some(TSL_NS), "TrustServiceStatusList") {
        return Err(TslError::Format(format!(
            "root element <{}> is not a TrustServiceStatusList",
            root.get_name()
        )));
    }
    let scheme = first(&root, "*[local-name()='SchemeInformation']")
        .ok_or_else(|| TslError::Format("no SchemeInformation".into()))?;
    let sequence_number: u64 = text(&scheme, "*[local-name()='TSLSequenceNumber']")
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| TslError::Format("no TSLSequenceNumber".into()))?;
    let issued = time(&scheme, "*[local-name()='ListIssueDateTime']")?
        .ok_or_else(|| TslError::Format("no ListIssueDateTime".into()))?;
    let next_update = time(
        &scheme,
        "*[local-name()='NextUpdate']/*[local-name()='dateTime']",
    )?;
    let territory = text(&scheme, "*[local-name()='SchemeTerritory']").unwrap_or_default();
    if let Some(loaded) = loaded
        && sequence_number < loaded
    {
        return Err(TslError::Rollback {
            found: sequence_number,
            loaded,
        });
    }
    // The list's signer is judged when it signed (its SigningTime; now when it gives none):
    // an archived list stays verifiable after its signer's certificate expires.
    let trust = TrustPolicy {
        pinned: signers.to_vec(),
        at_signing_time: true,
        ..TrustPolicy::default()
    };
    let verdict = verify(bytes, &trust, Utc::now());
    if !verdict.passed() {
        return Err(TslError::Signature(format!(
            "{}{}: {}",
            verdict.indication,
            verdict
                .subindication
                .map(|s| format!("/{s}"))
                .unwrap_or_default(),
            verdict.reason
        )));
    }
    let mut services = Vec::new();
    for provider in root
        .findnodes("//*[local-name()='TrustServiceProvider']")
        .unwrap_or_default()
    {
        let provider_name = text(
            &provider,
            "*[local-name()='TSPInformation']/*[local-name()='TSPName']/*[local-name()='Name']",
        )
        .unwrap_or_default();
        for service in provider
            .findnodes(".//*[local-name()='TSPService']")
            .unwrap_or_default()
        {
            services.push(read_service(&service, &provider_name)?);
        }
    }
    Ok(TrustedList {
        territory,
        sequence_number,
        issued,
        next_update,
        signer: verdict.signer.unwrap_or_default(),
        services,
    })
}

const UNDERSTOOD_EXTENSIONS: [&str; 4] = [
    "Qualifications",
    "AdditionalServiceInformation",
    "TakenOverBy",
    "ExpiredCertsRevocationInfo",
];

fn read_service(service: &Node, provider: &str) -> Result<Service, TslError> {
    let information = first(service, "*[local-name()='ServiceInformation']")
        .ok_or_else(|| TslError::Format("TSPService without ServiceInformation".into()))?;
    let mut statuses = Vec::new();
    let mut push_status = |node: &Node| -> Result<(), TslError> {
        let status = text(node, "*[local-name()='ServiceStatus']").unwrap_or_default();
        if let Some(start) = time(node, "*[local-name()='StatusStartingTime']")? {
            // The current entry is repeated in PL's history with the same start: count it once.
            if !statuses.iter().any(|(s, t)| *s == status && *t == start) {
                statuses.push((status, start));
            }
        }
        Ok(())
    };
    push_status(&information)?;
    for instance in service
        .findnodes("*[local-name()='ServiceHistory']/*[local-name()='ServiceHistoryInstance']")
        .unwrap_or_default()
    {
        push_status(&instance)?;
    }
    statuses.sort_by_key(|(_, start)| *start);
    let excluded = information
        .findnodes("*[local-name()='ServiceInformationExtensions']/*[local-name()='Extension'][@Critical='true']")
        .unwrap_or_default()
        .iter()
        .flat_map(|e| e.get_child_elements())
        .map(|c| c.get_name())
        .find(|name| !UNDERSTOOD_EXTENSIONS.contains(&name.as_str()))
        .map(|name| format!("critical extension <{name}> is not understood"));
    Ok(Service {
        provider: provider.to_string(),
        name: text(
            &information,
            "*[local-name()='ServiceName']/*[local-name()='Name']",
        )
        .unwrap_or_default(),
        service_type: text(&information, "*[local-name()='ServiceTypeIdentifier']")
            .unwrap_or_default(),
        certificates: certificates(
            &information,
            "*[local-name()='ServiceDigitalIdentity']/*[local-name()='DigitalId']/*[local-name()='X509Certificate']",
        )?,
        statuses,
        excluded,
    })
}
