//! Verification of signed XML: a policy layer on top of xmlsec that refuses what a
//! core-valid check lets through (signature wrapping, unsigned look-alikes, external or XSLT
//! references, HMAC, trusting the certificate the document brings), with verdicts after
//! ETSI EN 319 102-1: TOTAL-PASSED, TOTAL-FAILED or INDETERMINATE, a sub-indication and a
//! human reason.
//!
//! It judges any signed XML: a WS-Security SOAP message (the Body must be covered, and the
//! Timestamp when present), plain XML-DSig (enveloped or enveloping), and XAdES whenever
//! QualifyingProperties is present.
//!
//! The rules, in order, and what is not done: docs/signature.md.

pub mod certificate;
pub mod identity;
pub mod revocation;
pub mod seal;
pub mod tsl;

use std::collections::HashMap;

use base64::Engine;
use chrono::{DateTime, Utc};
use libxml::tree::{Document, Node};
use sha2::Digest;

use crate::xml::{self, Limits};
use crate::xmldsig::{self, Allowlist, Anchors, DSIG_NS, WSU_NS};

const XADES_NS: &str = "http://uri.etsi.org/01903/v1.3.2#";
const XADES141_NS: &str = "http://uri.etsi.org/01903/v1.4.1#";
const SIGNED_PROPERTIES_TYPE: &str = "http://uri.etsi.org/01903#SignedProperties";
const SOAP11_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";
const SOAP12_NS: &str = "http://www.w3.org/2003/05/soap-envelope";
/// The one XPath expression trusted-profile signatures use.
const XPATH_NOT_SIGNATURE: &str = "not(ancestor-or-self::ds:Signature)";

/// ETSI EN 319 102-1 main indication.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Indication {
    #[serde(rename = "TOTAL-PASSED")]
    TotalPassed,
    #[serde(rename = "TOTAL-FAILED")]
    TotalFailed,
    #[serde(rename = "INDETERMINATE")]
    Indeterminate,
}

impl std::fmt::Display for Indication {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Indication::TotalPassed => "TOTAL-PASSED",
            Indication::TotalFailed => "TOTAL-FAILED",
            Indication::Indeterminate => "INDETERMINATE",
        })
    }
}

/// What kind of signed document it was judged as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    Wss,
    Xmldsig,
    Xades,
    Unknown,
}

/// The verdict on one document.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Verdict {
    pub indication: Indication,
    /// ETSI sub-indication, e.g. `FORMAT_FAILURE`, `HASH_FAILURE`, `SIGNED_DATA_NOT_FOUND`.
    pub subindication: Option<&'static str>,
    pub reason: String,
    pub profile: Profile,
    /// Subject of the signer certificate, when one was established.
    pub signer: Option<String>,
    /// The signer as the signed content names them (TOTAL-PASSED only).
    pub identity: Option<identity::Identity>,
    /// Which kind of signature it was judged as, when judged by kind ([`verify_by_kind`]).
    pub kind: Option<SignatureKind>,
    /// XAdES SigningTime, as the signer claims it (signed, but not proven by a timestamp).
    pub signing_time: Option<DateTime<Utc>>,
    /// The signer certificate states QcCompliance (an EU qualified certificate).
    pub qualified_certificate: Option<bool>,
    /// Subjects of the certificates the signature carries in KeyInfo, as presented.
    pub chain: Vec<String>,
    /// The signer certificate (DER), when one was established.
    #[serde(skip)]
    pub signer_certificate: Option<Vec<u8>>,
}

/// The kinds of signature an office accepts, each with its own trust.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SignatureKind {
    /// Qualified electronic signature (XAdES): a chain to a qualified CA.
    Qualified,
    /// Trusted profile ("podpis zaufany"): sealed by ePUAP's pinned certificate.
    TrustedProfile,
    /// Personal signature ("podpis osobisty", e-ID): a chain to the e-ID CA.
    Personal,
}

impl SignatureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SignatureKind::Qualified => "qualified",
            SignatureKind::TrustedProfile => "trusted_profile",
            SignatureKind::Personal => "personal",
        }
    }
}

/// Trust for each kind of signature.
#[derive(Debug, Clone, Default)]
pub struct KindTrust {
    pub qualified: TrustPolicy,
    pub trusted_profile: TrustPolicy,
    pub personal: TrustPolicy,
    /// The trusted list the qualified anchors came from, if one is configured.
    pub trusted_list: Option<LoadedList>,
}

/// Which trusted list is in use: the daemon records it so that a restart never goes back
/// to an older list (a rollback would revive withdrawn CAs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedList {
    pub territory: String,
    pub sequence_number: u64,
    pub issued: DateTime<Utc>,
}

const TRUSTED_PROFILE_NAMESPACES: [&[u8]; 2] = [
    b"http://crd.gov.pl/xml/schematy/podpis_zaufany/",
    b"http://crd.gov.pl/xml/schematy/ppzp/",
];

/// Judges an inbound document by kind. A document that carries trusted-profile data is
/// judged only against ePUAP's pinned seal (adding that data can only narrow the trust);
/// any other against the qualified anchors, then the personal (e-ID) ones.
pub fn verify_by_kind(bytes: &[u8], trust: &KindTrust, at: DateTime<Utc>) -> Verdict {
    let claims_trusted_profile = TRUSTED_PROFILE_NAMESPACES
        .iter()
        .any(|ns| bytes.windows(ns.len()).any(|w| w == *ns));
    let judged = |policy: &TrustPolicy, kind: SignatureKind| {
        let mut verdict = verify(bytes, policy, at);
        if verdict.passed() {
            verdict.kind = Some(kind);
        }
        verdict
    };
    if claims_trusted_profile {
        return judged(&trust.trusted_profile, SignatureKind::TrustedProfile);
    }
    let qualified = judged(&trust.qualified, SignatureKind::Qualified);
    if qualified.passed() || trust.personal.anchors.is_empty() {
        return qualified;
    }
    let personal = judged(&trust.personal, SignatureKind::Personal);
    if personal.passed() {
        personal
    } else {
        qualified
    }
}

/// Why a signature was not accepted, in words a citizen understands (Polish), for letters
/// and officials' mail; the technical reason stays in the verdict and the logs.
pub fn in_plain_polish(subindication: Option<&str>, reason: &str) -> &'static str {
    match subindication {
        _ if reason.contains("not signed") => "dokument nie jest podpisany",
        _ if reason.contains("pinned certificate") => {
            "dokument podaje się za podpisany profilem zaufanym, ale tego podpisu nie złożył system ePUAP"
        }
        Some("HASH_FAILURE") => "treść dokumentu została zmieniona po jego podpisaniu",
        Some("SIG_CRYPTO_FAILURE") => {
            "podpis nie zgadza się z treścią dokumentu (dokument mógł zostać zmieniony po podpisaniu)"
        }
        Some("SIGNED_DATA_NOT_FOUND") => "podpis nie obejmuje treści dokumentu",
        Some("SIG_CONSTRAINTS_FAILURE") => {
            "podpis wykonano w sposób, którego urząd nie przyjmuje (np. przestarzałym algorytmem)"
        }
        Some("NO_SIGNING_CERTIFICATE_FOUND") => {
            "podpis nie wskazuje certyfikatu osoby podpisującej"
        }
        Some("NO_CERTIFICATE_CHAIN_FOUND") => {
            "podpis nie pochodzi od zaufanego wystawcy: nie jest to podpis zaufany, kwalifikowany ani osobisty, który urząd może potwierdzić"
        }
        Some("REVOKED_NO_POE") => "certyfikat podpisu został unieważniony",
        Some("OUT_OF_BOUNDS_NO_POE") => "certyfikat podpisu nie był ważny w chwili podpisania",
        Some("REVOCATION_OUT_OF_BOUNDS_NO_POE" | "TRY_LATER") => {
            "nie udało się sprawdzić, czy certyfikat podpisu nie został unieważniony"
        }
        Some("FORMAT_FAILURE") => "dokument lub podpis ma nieprawidłową budowę",
        _ => "podpisu nie udało się potwierdzić",
    }
}

impl Verdict {
    pub fn passed(&self) -> bool {
        self.indication == Indication::TotalPassed
    }

    /// Why the signature was not accepted, in plain Polish ([`in_plain_polish`]).
    pub fn in_plain_polish(&self) -> &'static str {
        in_plain_polish(self.subindication, &self.reason)
    }

    fn failed(profile: Profile, sub: &'static str, reason: impl Into<String>) -> Verdict {
        Verdict::refused(Indication::TotalFailed, profile, sub, reason.into())
    }

    fn indeterminate(profile: Profile, sub: &'static str, reason: impl Into<String>) -> Verdict {
        Verdict::refused(Indication::Indeterminate, profile, sub, reason.into())
    }

    fn refused(
        indication: Indication,
        profile: Profile,
        sub: &'static str,
        reason: String,
    ) -> Verdict {
        Verdict {
            indication,
            subindication: Some(sub),
            reason,
            profile,
            signer: None,
            identity: None,
            kind: None,
            signing_time: None,
            qualified_certificate: None,
            chain: Vec::new(),
            signer_certificate: None,
        }
    }
}

/// Whom to trust and when.
#[derive(Debug, Clone, Default)]
pub struct TrustPolicy {
    /// Certificates (PEM or DER) a chain may end at.
    pub anchors: Vec<Vec<u8>>,
    /// Untrusted intermediates to build chains with.
    pub intermediates: Vec<Vec<u8>>,
    /// Certificates (PEM or DER) whose key is the only one allowed to have signed.
    pub pinned: Vec<Vec<u8>>,
    /// Accept SHA-1 digests and signatures (legacy documents only).
    pub allow_sha1: bool,
    /// Where revocation of the path's certificates is found: configured CRLs (each verified
    /// against the anchors and intermediates when loaded) and, when enabled, the CRL
    /// distribution points and OCSP responders the certificates name.
    pub revocation: revocation::Revocation,
    /// Judge the chain, the certificate's validity and revocation at the XAdES SigningTime
    /// (when present) instead of at the judging time. The signer claims that time, so this
    /// suits signatures whose time is vouched for otherwise (a trusted list's issue, an
    /// ePUAP receipt); the default judges at the judging time ("now").
    pub at_signing_time: bool,
}

/// Verifies `bytes` under `trust`, judging certificate validity at `at`.
pub fn verify(bytes: &[u8], trust: &TrustPolicy, at: DateTime<Utc>) -> Verdict {
    let limits = Limits {
        max_bytes: 64 * 1024 * 1024,
        max_depth: 128,
    };
    let doc = match xml::parse(bytes, limits) {
        Ok(doc) => doc,
        Err(e) => return Verdict::failed(Profile::Unknown, "FORMAT_FAILURE", e.to_string()),
    };
    match judge(&doc, trust, at) {
        Ok(verdict) => verdict,
        Err(verdict) => verdict,
    }
}

type Judged = Result<Verdict, Verdict>;

// Both sides are the verdict itself, returned once per document: boxing the refusal would
// only add an allocation.
#[expect(
    clippy::result_large_err,
    reason = "the refusal is the verdict, returned once"
)]
fn judge(doc: &Document, trust: &TrustPolicy, at: DateTime<Utc>) -> Judged {
    let root = doc
        .get_root_element()
        .ok_or_else(|| Verdict::failed(Profile::Unknown, "FORMAT_FAILURE", "no root element"))?;
    // One pass over the document for every element the policy counts.
    let marked = root
        .findnodes(
            "//*[local-name()='Signature' or local-name()='SignedProperties' or local-name()='Manifest' \
             or local-name()='QualifyingProperties']",
        )
        .unwrap_or_default();
    let signatures: Vec<Node> = marked
        .iter()
        .filter(|n| xml::is_element(n, Some(DSIG_NS), "Signature"))
        .cloned()
        .collect();
    let soap = [SOAP11_NS, SOAP12_NS]
        .into_iter()
        .find(|ns| xml::is_element(&root, Some(ns), "Envelope"));
    let mut profile = if soap.is_some() {
        Profile::Wss
    } else {
        Profile::Xmldsig
    };
    let signature = match signatures.as_slice() {
        [] => {
            return Err(Verdict::failed(
                profile,
                "FORMAT_FAILURE",
                "the document is not signed (no ds:Signature)",
            ));
        }
        [one] => one.clone(),
        many => {
            return Err(Verdict::failed(
                profile,
                "FORMAT_FAILURE",
                format!(
                    "{} ds:Signature elements; exactly one is accepted",
                    many.len()
                ),
            ));
        }
    };
    let inside = |local: &str| {
        marked
            .iter()
            .filter(|n| n.get_name() == local && is_ancestor_or_self(&signature, n))
            .count()
    };
    if inside("QualifyingProperties") > 0 {
        profile = Profile::Xades;
    }
    if inside("Manifest") > 0 {
        return Err(Verdict::failed(
            profile,
            "FORMAT_FAILURE",
            "ds:Manifest is not accepted: its references are not checked by XML-DSig core validation",
        ));
    }
    let signed_properties_in_document = marked
        .iter()
        .filter(|n| n.get_name() == "SignedProperties")
        .count();
    let ids = register_ids(doc, &root)
        .map_err(|reason| Verdict::failed(profile, "FORMAT_FAILURE", reason))?;
    let references = check_references(&root, &signature, &ids, trust.allow_sha1)
        .map_err(|reason| Verdict::failed(profile, "FORMAT_FAILURE", reason))?;
    check_coverage(&root, &signature, soap, &references)
        .map_err(|reason| Verdict::indeterminate(profile, "SIGNED_DATA_NOT_FOUND", reason))?;
    let signed_properties = match profile {
        Profile::Xades => Some(
            check_signed_properties(&signature, &references, signed_properties_in_document)
                .map_err(|reason| Verdict::failed(profile, "FORMAT_FAILURE", reason))?,
        ),
        _ => None,
    };
    let allow = Allowlist {
        enveloped: true,
        forms: true,
        sha1: trust.allow_sha1,
    };
    let constraint = |reason| Verdict::indeterminate(profile, "SIG_CONSTRAINTS_FAILURE", reason);
    let signing_time = match &signed_properties {
        Some(signed_properties) => read_signing_time(signed_properties, at).map_err(constraint)?,
        None => None,
    };
    let judged_at = match signing_time {
        Some(time) if trust.at_signing_time => time,
        _ => at,
    };
    let signer = verify_core(&signature, trust, judged_at, allow, profile)?;
    if let Some(signed_properties) = &signed_properties {
        check_signing_certificate(signed_properties, &signer).map_err(|reason| {
            Verdict::indeterminate(profile, "NO_SIGNING_CERTIFICATE_FOUND", reason)
        })?;
    }
    // A trusted-profile identity counts only inside the signed SignedProperties of a
    // signature by a pinned (ePUAP seal) certificate; otherwise the certificate names the signer.
    let pinned_signer = trust
        .pinned
        .iter()
        .flat_map(|file| xmldsig::certificates_der(file).unwrap_or_default())
        .any(|der| der == signer);
    // Every certificate between the signer and the anchor, revocation included. A pinned
    // seal is trusted by configuration, as it is, and has no path.
    if !pinned_signer {
        let path = certification_path(&signer, &xmldsig::keyinfo_certificates(&signature), trust);
        trust
            .revocation
            .check_path(&path, judged_at, at)
            .map_err(|refusal| {
                Verdict::indeterminate(profile, refusal.subindication, refusal.reason)
            })?;
    }
    if let Some(time) = signing_time {
        check_signing_time_validity(time, &signer).map_err(constraint)?;
    }
    let signer_facts = certificate::facts(&signer);
    let trusted_profile = match &signed_properties {
        Some(signed_properties) if pinned_signer => {
            identity::from_trusted_profile(signed_properties)
        }
        _ => None,
    };
    Ok(Verdict {
        indication: Indication::TotalPassed,
        subindication: None,
        reason: "signature valid; signed data covers the document".into(),
        profile,
        signer: Some(signer_facts.subject.clone()),
        identity: trusted_profile.or_else(|| signer_facts.identity.clone()),
        kind: None,
        signing_time,
        qualified_certificate: Some(signer_facts.qualified),
        chain: key_info_subjects(&signature),
        signer_certificate: Some(signer),
    })
}

/// The path from `signer` up to a configured anchor, as (certificate, issuer) pairs in DER,
/// built from the certificates KeyInfo carries, the configured intermediates and the anchors,
/// each issuer matched by name and by its signature on the certificate (never by name alone).
/// Ends at the first anchor, or where no issuer is found.
fn certification_path(
    signer: &[u8],
    carried: &[Vec<u8>],
    trust: &TrustPolicy,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    // Signers and their chains recur from document to document: a path is built once per
    // thread for the same signer, carried certificates and trust (compared byte for byte).
    PATHS.with(|paths| {
        let mut paths = paths.borrow_mut();
        if let Some(known) = paths.iter().find(|p| {
            p.signer == signer
                && p.carried == carried
                && p.anchors == trust.anchors
                && p.intermediates == trust.intermediates
        }) {
            return known.path.clone();
        }
        let path = build_path(signer, carried, trust);
        if paths.len() == PATH_CACHE_SIZE {
            paths.remove(0);
        }
        paths.push(KnownPath {
            signer: signer.to_vec(),
            carried: carried.to_vec(),
            anchors: trust.anchors.clone(),
            intermediates: trust.intermediates.clone(),
            path: path.clone(),
        });
        path
    })
}

struct KnownPath {
    signer: Vec<u8>,
    carried: Vec<Vec<u8>>,
    anchors: Vec<Vec<u8>>,
    intermediates: Vec<Vec<u8>>,
    path: Vec<(Vec<u8>, Vec<u8>)>,
}

const PATH_CACHE_SIZE: usize = 64;

thread_local! {
    static PATHS: std::cell::RefCell<Vec<KnownPath>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn build_path(signer: &[u8], carried: &[Vec<u8>], trust: &TrustPolicy) -> Vec<(Vec<u8>, Vec<u8>)> {
    use x509_parser::prelude::parse_x509_certificate;
    let anchors: Vec<Vec<u8>> = trust
        .anchors
        .iter()
        .flat_map(|file| xmldsig::certificates_der(file).unwrap_or_default())
        .collect();
    let mut candidates: Vec<Vec<u8>> = carried.to_vec();
    candidates.extend(
        trust
            .intermediates
            .iter()
            .flat_map(|file| xmldsig::certificates_der(file).unwrap_or_default()),
    );
    candidates.extend(anchors.iter().cloned());
    // Parsed once (x509-parser, with ring for the signatures: OpenSSL 3's decoders cost far
    // more than a verification).
    let parsed: Vec<_> = candidates
        .iter()
        .filter_map(|der| parse_x509_certificate(der).ok().map(|(_, c)| (der, c)))
        .collect();
    let mut path = Vec::new();
    let mut current = signer.to_vec();
    while path.len() < 8 && !anchors.contains(&current) {
        let Ok((_, cert)) = parse_x509_certificate(&current) else {
            break;
        };
        let issuer = parsed.iter().find(|(der, candidate)| {
            **der != current
                && candidate.subject() == cert.issuer()
                && cert.verify_signature(Some(candidate.public_key())).is_ok()
        });
        let Some((issuer, _)) = issuer else {
            break;
        };
        path.push((current.clone(), issuer.to_vec()));
        current = issuer.to_vec();
    }
    path
}

/// How far a claimed SigningTime may lie ahead of the judging time (clock skew).
const SIGNING_TIME_SKEW: chrono::TimeDelta = chrono::TimeDelta::minutes(10);

/// XAdES SigningTime: at most one, an xs:dateTime, not in the future of `at`.
fn read_signing_time(
    signed_properties: &Node,
    at: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, String> {
    let times: Vec<Node> = xades_children(signed_properties, "SignedSignatureProperties")
        .flat_map(|p| xades_children(&p, "SigningTime").collect::<Vec<_>>())
        .collect();
    let node = match times.as_slice() {
        [] => return Ok(None),
        [one] => one,
        many => {
            return Err(format!(
                "{} SigningTime elements; at most one is allowed",
                many.len()
            ));
        }
    };
    let text = xml::text_of(node).trim().to_string();
    let time = DateTime::parse_from_rfc3339(&text)
        .map(|t| t.with_timezone(&Utc))
        .or_else(|_| {
            // xs:dateTime without a zone: read as UTC.
            chrono::NaiveDateTime::parse_from_str(&text, "%Y-%m-%dT%H:%M:%S%.f")
                .map(|t| t.and_utc())
        })
        .map_err(|_| format!("SigningTime {text:?} is not an xs:dateTime"))?;
    if time > at + SIGNING_TIME_SKEW {
        return Err(format!(
            "SigningTime {time} lies in the future of the judging time {at}"
        ));
    }
    Ok(Some(time))
}

/// The claimed SigningTime must fall within the signer certificate's validity.
fn check_signing_time_validity(time: DateTime<Utc>, signer: &[u8]) -> Result<(), String> {
    match certificate::facts(signer).validity {
        Some((not_before, not_after)) if time < not_before || time > not_after => Err(format!(
            "SigningTime {time} is outside the signer certificate's validity ({not_before} to {not_after})"
        )),
        _ => Ok(()),
    }
}

/// Subjects of the X509Certificate elements in the signature's KeyInfo.
fn key_info_subjects(signature: &Node) -> Vec<String> {
    let Ok(Some(key_info)) = xml::only_child(signature, Some(DSIG_NS), "KeyInfo") else {
        return Vec::new();
    };
    xml::children(&key_info, Some(DSIG_NS), "X509Data")
        .flat_map(|d| xml::children(&d, Some(DSIG_NS), "X509Certificate").collect::<Vec<_>>())
        .filter_map(|c| {
            let b64: String = xml::text_of(&c).split_whitespace().collect();
            base64::engine::general_purpose::STANDARD.decode(b64).ok()
        })
        .map(|der| certificate::facts(&der).subject.clone())
        .collect()
}

/// Registers every `Id`, `ID`, `id` and `wsu:Id` attribute as an XML ID, refusing any value
/// that appears twice (xml:id included). Returns id → element.
fn register_ids(doc: &Document, root: &Node) -> Result<HashMap<String, Node>, String> {
    let mut ids = HashMap::new();
    // Only the elements that carry an ID-like attribute: wrapping every element of a large
    // document in a Node costs more than the rest of the verification.
    let elements = root
        .findnodes(
            "descendant-or-self::*[@Id or @ID or @id or @*[local-name()='Id' and \
             namespace-uri()='http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd']]",
        )
        .unwrap_or_default();
    for element in elements {
        for (ns, name) in [
            (None, "Id"),
            (None, "ID"),
            (None, "id"),
            (Some(WSU_NS), "Id"),
        ] {
            let present = match ns {
                Some(ns) => element.get_property_node_ns(name, ns).is_some(),
                None => element.get_property_node_no_ns(name).is_some(),
            };
            if !present {
                continue;
            }
            let id = xmldsig::register_id(doc, &element, ns, name).map_err(|e| e.to_string())?;
            if ids.insert(id.clone(), element.clone()).is_some() {
                return Err(format!(
                    "duplicate ID {id:?}: refusing a possible signature-wrapping attempt"
                ));
            }
        }
    }
    Ok(ids)
}

/// One checked Reference: what it covers.
struct Reference {
    /// `None` for `URI=""` (the whole document).
    target: Option<Node>,
    kind: Option<String>,
}

fn check_references(
    root: &Node,
    signature: &Node,
    ids: &HashMap<String, Node>,
    allow_sha1: bool,
) -> Result<Vec<Reference>, String> {
    let signed_info = xml::only_child(signature, Some(DSIG_NS), "SignedInfo")
        .ok()
        .flatten()
        .ok_or("ds:Signature has no single ds:SignedInfo")?;
    let method = |parent: &Node, local: &str| {
        xml::only_child(parent, Some(DSIG_NS), local)
            .ok()
            .flatten()
            .and_then(|n| n.get_property_no_ns("Algorithm"))
            .unwrap_or_default()
    };
    check_signature_method(&method(&signed_info, "SignatureMethod"), allow_sha1)?;
    let mut references = Vec::new();
    for reference in xml::children(&signed_info, Some(DSIG_NS), "Reference") {
        let uri = reference
            .get_property_no_ns("URI")
            .ok_or("a Reference without URI is not accepted (the signed data would be implicit)")?;
        let target = if uri.is_empty() {
            None
        } else {
            let id = uri
                .strip_prefix('#')
                .filter(|id| !id.starts_with("xpointer("))
                .ok_or_else(|| format!("Reference URI {uri:?}: only same-document references (\"\" or #id) are accepted"))?;
            Some(
                ids.get(id)
                    .cloned()
                    .ok_or_else(|| format!("Reference URI {uri:?} points at no element"))?,
            )
        };
        let mut enveloped = false;
        if let Some(transforms) = xml::only_child(&reference, Some(DSIG_NS), "Transforms")
            .ok()
            .flatten()
        {
            for transform in xml::children(&transforms, Some(DSIG_NS), "Transform") {
                let algorithm = transform
                    .get_property_no_ns("Algorithm")
                    .unwrap_or_default();
                match algorithm.as_str() {
                    xmldsig::ENVELOPED => enveloped = true,
                    "http://www.w3.org/2001/10/xml-exc-c14n#"
                    | "http://www.w3.org/2001/10/xml-exc-c14n#WithComments"
                    | "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
                    | "http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments"
                    | "http://www.w3.org/2006/12/xml-c14n11"
                    | "http://www.w3.org/2006/12/xml-c14n11#WithComments" => {}
                    "http://www.w3.org/TR/1999/REC-xpath-19991116" => {
                        let xpath = xml::only_child(&transform, Some(DSIG_NS), "XPath")
                            .ok()
                            .flatten();
                        let expression = xpath
                            .as_ref()
                            .map(|x| xml::text_of(x).trim().to_string())
                            .unwrap_or_default();
                        // The expression's prefix may be any prefix bound to the XML-DSig namespace.
                        let prefix = expression
                            .strip_prefix("not(ancestor-or-self::")
                            .and_then(|rest| rest.strip_suffix(":Signature)"));
                        let bound = match (prefix, &xpath) {
                            (Some(prefix), Some(xpath)) => {
                                xpath.lookup_namespace_uri(prefix).as_deref() == Some(DSIG_NS)
                            }
                            _ => false,
                        };
                        if !bound {
                            return Err(format!(
                                "XPath transform {expression:?} is not accepted (only {XPATH_NOT_SIGNATURE:?})"
                            ));
                        }
                    }
                    other => {
                        return Err(format!(
                            "transform {other:?} is not accepted (XSLT and others are refused)"
                        ));
                    }
                }
            }
        }
        if enveloped {
            // The signature sits directly in the element it signs, as every signing tool puts
            // it. The transform would also take it out from deeper down, but then a reader of
            // that deeper element's text would read the signature's text (and anything an
            // attacker adds to its unsigned parts) as signed content.
            let covered = target.as_ref().unwrap_or(root);
            let parent = signature.get_parent();
            if parent.as_ref() != Some(covered) {
                return Err(if is_ancestor_or_self(covered, signature) {
                    format!(
                        "Reference {uri:?} uses the enveloped-signature transform: the signature must be a child of <{}>, the element it covers, but it is inside <{}>",
                        covered.get_name(),
                        parent.map(|p| p.get_name()).unwrap_or_default()
                    )
                } else {
                    format!(
                        "Reference {uri:?} uses the enveloped-signature transform but its target does not contain the signature"
                    )
                });
            }
        }
        check_digest_method(&method(&reference, "DigestMethod"), allow_sha1)?;
        references.push(Reference {
            target,
            kind: reference.get_property_no_ns("Type"),
        });
    }
    if references.is_empty() {
        return Err("SignedInfo has no Reference".into());
    }
    Ok(references)
}

fn check_signature_method(algorithm: &str, allow_sha1: bool) -> Result<(), String> {
    match algorithm {
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
        | "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384"
        | "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512"
        | "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
        | "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384"
        | "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512" => Ok(()),
        "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
        | "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha1"
            if allow_sha1 =>
        {
            Ok(())
        }
        "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
        | "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha1" => Err(format!(
            "signature method {algorithm}: SHA-1 is refused unless the legacy switch (allow_sha1) is on"
        )),
        other if other.contains("hmac") => Err(format!(
            "signature method {other}: HMAC is refused, only asymmetric signatures count"
        )),
        other => Err(format!("signature method {other:?} is not accepted")),
    }
}

fn check_digest_method(algorithm: &str, allow_sha1: bool) -> Result<(), String> {
    match algorithm {
        "http://www.w3.org/2001/04/xmlenc#sha256"
        | "http://www.w3.org/2001/04/xmldsig-more#sha384"
        | "http://www.w3.org/2001/04/xmlenc#sha512" => Ok(()),
        "http://www.w3.org/2000/09/xmldsig#sha1" if allow_sha1 => Ok(()),
        "http://www.w3.org/2000/09/xmldsig#sha1" => {
            Err("digest SHA-1 is refused unless the legacy switch (allow_sha1) is on".into())
        }
        other => Err(format!("digest method {other:?} is not accepted")),
    }
}

fn is_ancestor_or_self(ancestor: &Node, node: &Node) -> bool {
    let mut current = Some(node.clone());
    while let Some(n) = current {
        if n == *ancestor {
            return true;
        }
        current = n.get_parent();
    }
    false
}

/// The element a reader reads must be exactly what a verified Reference covers.
fn check_coverage(
    root: &Node,
    signature: &Node,
    soap: Option<&str>,
    references: &[Reference],
) -> Result<(), String> {
    let covers = |element: &Node| {
        references.iter().any(|r| match &r.target {
            Some(target) => target == element,
            None => element == root,
        })
    };
    if let Some(soap) = soap {
        let body = xml::only_child(root, Some(soap), "Body")
            .map_err(|n| format!("{n} soap:Body elements"))?
            .ok_or("no soap:Body")?;
        if !covers(&body) {
            return Err("the signature does not cover soap:Body".into());
        }
        let header = xml::only_child(root, Some(soap), "Header").ok().flatten();
        if let Some(security) = header.as_ref().and_then(|h| {
            h.get_child_elements()
                .into_iter()
                .find(|c| c.get_name() == "Security")
        }) {
            if !is_ancestor_or_self(&security, signature) {
                return Err("the signature is not in the wsse:Security header".into());
            }
            for timestamp in security
                .get_child_elements()
                .into_iter()
                .filter(|c| xml::is_element(c, Some(WSU_NS), "Timestamp"))
            {
                if !covers(&timestamp) {
                    return Err("the signature does not cover wsu:Timestamp".into());
                }
            }
        } else {
            return Err("the signature is not in a wsse:Security header".into());
        }
        return Ok(());
    }
    if signature == root {
        // Enveloping: the signed data is in ds:Object children; every one must be covered
        // (directly, or for XAdES through its referenced SignedProperties).
        let objects: Vec<Node> = xml::children(signature, Some(DSIG_NS), "Object").collect();
        if objects.is_empty() {
            return Err("an enveloping signature without ds:Object signs nothing".into());
        }
        for object in &objects {
            let covered = references.iter().any(|r| {
                r.target.as_ref().is_some_and(|t| {
                    is_ancestor_or_self(object, t)
                        && (t == object || r.kind.as_deref() == Some(SIGNED_PROPERTIES_TYPE))
                })
            });
            if !covered {
                let id = object.get_property_no_ns("Id").unwrap_or_default();
                return Err(format!(
                    "ds:Object {id:?} is not covered by any Reference (an unsigned look-alike of the signed data)"
                ));
            }
        }
        return Ok(());
    }
    if !covers(root) {
        return Err(format!(
            "no Reference covers the document element <{}> (URI=\"\" or its own ID): what a reader would read is not what was signed",
            root.get_name()
        ));
    }
    Ok(())
}

fn xades_children<'a>(node: &'a Node, local: &'a str) -> impl Iterator<Item = Node> + 'a {
    node.get_child_elements().into_iter().filter(move |c| {
        c.get_name() == local
            && matches!(
                xml::namespace_of(c).as_deref(),
                Some(XADES_NS) | Some(XADES141_NS)
            )
    })
}

/// XAdES: exactly one SignedProperties, inside this signature's QualifyingProperties, and
/// referenced with the SignedProperties Type.
fn check_signed_properties(
    signature: &Node,
    references: &[Reference],
    in_document: usize,
) -> Result<Node, String> {
    let inside: Vec<Node> = xml::children(signature, Some(DSIG_NS), "Object")
        .flat_map(|o| xades_children(&o, "QualifyingProperties").collect::<Vec<_>>())
        .flat_map(|q| xades_children(&q, "SignedProperties").collect::<Vec<_>>())
        .collect();
    let [signed_properties] = inside.as_slice() else {
        return Err(format!(
            "{} xades:SignedProperties in this signature's QualifyingProperties; exactly one is required",
            inside.len()
        ));
    };
    if in_document != 1 {
        return Err(format!(
            "{in_document} SignedProperties elements in the document; a look-alike is refused"
        ));
    }
    let referenced = references.iter().any(|r| {
        r.target.as_ref() == Some(signed_properties)
            && r.kind.as_deref() == Some(SIGNED_PROPERTIES_TYPE)
    });
    if !referenced {
        return Err("xades:SignedProperties is not referenced (with Type=\"http://uri.etsi.org/01903#SignedProperties\") by SignedInfo".into());
    }
    Ok(signed_properties.clone())
}

/// XAdES SigningCertificate (v1 or v2): a CertDigest must match the signer certificate.
fn check_signing_certificate(signed_properties: &Node, signer_der: &[u8]) -> Result<(), String> {
    let mut named = false;
    for signed_signature in xades_children(signed_properties, "SignedSignatureProperties") {
        let certificates = xades_children(&signed_signature, "SigningCertificate")
            .chain(xades_children(&signed_signature, "SigningCertificateV2"));
        for cert in certificates.flat_map(|c| xades_children(&c, "Cert").collect::<Vec<_>>()) {
            named = true;
            let Some(digest) = xades_children(&cert, "CertDigest").next() else {
                continue;
            };
            let child = |local: &str| {
                xml::only_child(&digest, Some(DSIG_NS), local)
                    .ok()
                    .flatten()
            };
            let algorithm = child("DigestMethod")
                .and_then(|m| m.get_property_no_ns("Algorithm"))
                .unwrap_or_default();
            let value: String = child("DigestValue")
                .map(|v| xml::text_of(&v).split_whitespace().collect())
                .unwrap_or_default();
            let computed = match algorithm.as_str() {
                "http://www.w3.org/2001/04/xmlenc#sha256" => {
                    sha2::Sha256::digest(signer_der).to_vec()
                }
                "http://www.w3.org/2001/04/xmlenc#sha512" => {
                    sha2::Sha512::digest(signer_der).to_vec()
                }
                "http://www.w3.org/2000/09/xmldsig#sha1" => sha1::Sha1::digest(signer_der).to_vec(),
                _ => continue,
            };
            if base64::engine::general_purpose::STANDARD.encode(computed) == value {
                // The digest names the signer; an IssuerSerial beside it must too, or the
                // properties claim another certificate (EN 319 132-1, 5.2.2).
                return check_issuer_serial(&cert, signer_der);
            }
        }
    }
    if !named {
        return Err("no xades:SigningCertificate(V2) names the signer".into());
    }
    Err(
        "xades:SigningCertificate does not match the certificate that signed (CertDigest differs)"
            .into(),
    )
}

/// A `xades:Cert`'s IssuerSerial (V1: `X509IssuerName` and `X509SerialNumber`; V2: the DER
/// of RFC 5035's IssuerSerial, base64), when present, must name the signer certificate.
fn check_issuer_serial(cert: &Node, signer_der: &[u8]) -> Result<(), String> {
    let differs = |what: String| {
        format!(
            "xades:SigningCertificate's IssuerSerial names another certificate than the one that signed ({what})"
        )
    };
    for v1 in xades_children(cert, "IssuerSerial") {
        let text = |local: &str| {
            xml::only_child(&v1, Some(DSIG_NS), local)
                .ok()
                .flatten()
                .map(|n| xml::text_of(&n))
                .unwrap_or_default()
        };
        certificate::issuer_serial_v1_names(
            signer_der,
            &text("X509IssuerName"),
            &text("X509SerialNumber"),
        )
        .map_err(differs)?;
    }
    for v2 in xades_children(cert, "IssuerSerialV2") {
        let text: String = xml::text_of(&v2).split_whitespace().collect();
        let claimed = base64::engine::general_purpose::STANDARD
            .decode(&text)
            .map_err(|_| differs("IssuerSerialV2 is not base64".into()))?;
        if certificate::issuer_serial_v2(signer_der).as_deref() != Some(claimed.as_slice()) {
            return Err(differs("IssuerSerialV2".into()));
        }
    }
    Ok(())
}

/// XML-DSig core validation with the trust policy; returns the signer certificate (DER).
#[expect(
    clippy::result_large_err,
    reason = "the refusal is the verdict, returned once"
)]
fn verify_core(
    signature: &Node,
    trust: &TrustPolicy,
    at: DateTime<Utc>,
    allow: Allowlist,
    profile: Profile,
) -> Result<Vec<u8>, Verdict> {
    // A pinned certificate (the trusted-profile seal, or --pinned) is tried first; when
    // anchors are configured too, a signature by another key may still chain to them.
    let mut pinned_failure = None;
    if !trust.pinned.is_empty() {
        let pinned: Vec<Vec<u8>> = trust
            .pinned
            .iter()
            .flat_map(|file| xmldsig::certificates_der(file).unwrap_or_default())
            .collect();
        for der in pinned {
            let pem = xmldsig::der_to_pem(&der);
            match xmldsig::verify(signature, pem.as_bytes(), allow) {
                Ok(()) => {
                    check_validity(&der, at).map_err(|reason| {
                        Verdict::indeterminate(profile, "OUT_OF_BOUNDS_NO_POE", reason)
                    })?;
                    return Ok(der);
                }
                Err(e) => pinned_failure = Some(e.to_string()),
            }
        }
        if trust.anchors.is_empty() {
            return Err(Verdict::failed(
                profile,
                "SIG_CRYPTO_FAILURE",
                format!(
                    "not a valid signature by the pinned certificate: {}",
                    pinned_failure.unwrap_or_default()
                ),
            ));
        }
    }
    if trust.anchors.is_empty() {
        return Err(Verdict::indeterminate(
            profile,
            "NO_CERTIFICATE_CHAIN_FOUND",
            "no trust anchor configured: certificates carried by the document are never trusted on their own",
        ));
    }
    let anchors = Anchors {
        certificates: &trust.anchors,
        intermediates: &trust.intermediates,
    };
    xmldsig::verify_with_anchors(signature, &anchors, at.timestamp(), allow).map_err(|e| match e {
        xmldsig::DsigError::Invalid(_) => Verdict::failed(
            profile,
            "HASH_FAILURE",
            format!("the signed data or the signature value was altered: {e}"),
        ),
        other => Verdict::indeterminate(
            profile,
            "NO_CERTIFICATE_CHAIN_FOUND",
            format!("no certificate in the signature chains to a trust anchor at {at}: {other}"),
        ),
    })
}

fn check_validity(der: &[u8], at: DateTime<Utc>) -> Result<(), String> {
    let (_, certificate) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| format!("cannot read the signer certificate: {e}"))?;
    let validity = certificate.validity();
    let at_seconds = at.timestamp();
    if at_seconds < validity.not_before.timestamp() {
        return Err(format!(
            "the signer certificate is not valid before {} (judged at {at})",
            validity.not_before
        ));
    }
    if at_seconds > validity.not_after.timestamp() {
        return Err(format!(
            "the signer certificate expired at {} (judged at {at})",
            validity.not_after
        ));
    }
    Ok(())
}
