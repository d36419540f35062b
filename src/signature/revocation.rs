//! Revocation of every certificate on a signature's path (ETSI EN 319 102-1, 5.2.5): is the
//! signer, or any CA between it and the anchor, revoked?
//!
//! Sources, for each certificate and its issuer:
//! - the CRLs an office configures (`trust.crl_dir`: offline, signed by the issuer);
//! - OCSP, at the responders the certificate's Authority Information Access names;
//! - CRLs fetched from the certificate's CRL distribution points.
//!
//! What comes over the network is judged here, by OpenSSL: a CRL must be signed by the
//! issuer, an OCSP answer by the issuer or a responder it delegated to, and either must be
//! fresh (its nextUpdate not passed). Fetched data is cached until its nextUpdate. Fetching
//! itself is a [`Fetch`] the caller supplies (HTTP lives outside the domain).
//!
//! The outcome per certificate: good (a fresh source says so), revoked (any source lists it
//! as revoked at the judging time), or unknown: every source stale
//! (REVOCATION_OUT_OF_BOUNDS_NO_POE) or unreachable (TRY_LATER). Unknown is never passed. A
//! certificate that names no source and whose issuer has no configured CRL is not checked:
//! EU qualified certificates must name one (EN 319 412-2, 4.3.11), and the anchors
//! themselves are vouched for by the trusted list, not by revocation data.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use openssl::asn1::{Asn1Time, Asn1TimeRef};
use openssl::hash::MessageDigest;
use openssl::ocsp::{
    OcspCertId, OcspCertStatus, OcspFlag, OcspRequest, OcspResponse, OcspResponseStatus,
};
use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::verify::X509VerifyFlags;
use openssl::x509::{CrlStatus, X509, X509Crl};

use super::certificate::Crl;

/// Fetches revocation data over the network. Implemented by the transport (`crate::pki_http`);
/// tests may supply their own.
pub trait Fetch: Send + Sync {
    /// GET a CRL (DER or PEM) from a distribution point.
    fn crl(&self, url: &str) -> Result<Vec<u8>, String>;
    /// POST a DER OCSP request; the DER answer.
    fn ocsp(&self, url: &str, request: &[u8]) -> Result<Vec<u8>, String>;
}

/// How revocation is found: the configured CRLs, and what is done with the sources the
/// certificates name. Cheap to clone; clones share their cache.
#[derive(Clone, Default)]
pub struct Revocation {
    pub offline: Vec<Crl>,
    pub named: NamedSources,
    cache: Arc<Mutex<Cache>>,
}

/// What is done with the CRL distribution points and OCSP responders a certificate names.
#[derive(Clone, Default)]
pub enum NamedSources {
    /// Not consulted: only the configured CRLs count (`eurzad verify --offline`, and
    /// library callers that configure nothing).
    #[default]
    Ignore,
    /// Not fetched, and a certificate that names one is not passed unless a configured CRL
    /// covers it (the daemon with `trust.fetch_revocation = false`).
    Refuse,
    /// Fetched (the daemon's default).
    Fetch(Arc<dyn Fetch>),
}

impl std::fmt::Debug for Revocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let named = match self.named {
            NamedSources::Ignore => "ignored",
            NamedSources::Refuse => "required, not fetched",
            NamedSources::Fetch(_) => "fetched",
        };
        f.debug_struct("Revocation")
            .field("offline", &self.offline.len())
            .field("named_sources", &named)
            .finish()
    }
}

/// Data fetched before, kept until its nextUpdate.
#[derive(Default)]
struct Cache {
    /// By URL: the CRL's DER and its nextUpdate (UNIX seconds).
    crls: HashMap<String, (Vec<u8>, i64)>,
    /// By (CRL URL, issuer name and key, serial): a good answer of a CRL for a certificate,
    /// until its nextUpdate, so that a signer seen again costs no parse of a large CRL.
    crl_answers: HashMap<(String, Vec<u8>), i64>,
    /// By (responder URL, issuer name hash + key hash + serial): the status and its nextUpdate.
    ocsp: HashMap<(String, Vec<u8>), (Answer, i64)>,
}

/// What one source says of one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Answer {
    Good,
    Revoked(String),
}

/// Why a certificate on the path fails revocation checking: the sub-indication
/// (ETSI EN 319 102-1) and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub subindication: &'static str,
    pub reason: String,
}

impl Revocation {
    pub fn offline(crls: Vec<Crl>) -> Revocation {
        Revocation {
            offline: crls,
            ..Revocation::default()
        }
    }

    pub fn with_named(mut self, named: NamedSources) -> Revocation {
        self.named = named;
        self
    }

    /// Checks every (certificate, issuer) pair of `path` (DER), signer first: revoked at
    /// `judged_at`, or without fresh data at `now`, refuses.
    pub fn check_path(
        &self,
        path: &[(Vec<u8>, Vec<u8>)],
        judged_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), Refusal> {
        for (position, (certificate, issuer)) in path.iter().enumerate() {
            let what = if position == 0 {
                "the signer certificate".to_string()
            } else {
                format!("the CA certificate {position} above the signer")
            };
            self.check(certificate, issuer, judged_at, now)
                .map_err(|refusal| Refusal {
                    reason: format!("{what}: {}", refusal.reason),
                    ..refusal
                })?;
        }
        Ok(())
    }

    fn check(
        &self,
        certificate: &[u8],
        issuer: &[u8],
        judged_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), Refusal> {
        // What applies, read cheaply (OpenSSL 3's decoders take locks and cost far more than
        // a verification): the configured CRLs of this issuer, and the named sources.
        let facts = super::certificate::facts(certificate);
        let Some((named, issuer_name)) = &facts.revocation else {
            return Err(Refusal {
                subindication: "FORMAT_FAILURE",
                reason: "unreadable certificate".into(),
            });
        };
        let offline: Vec<&Crl> = self
            .offline
            .iter()
            .filter(|c| c.is_of(issuer_name))
            .collect();
        let consulted = match self.named {
            NamedSources::Ignore => 0,
            _ => named.ocsp.len() + named.crls.len(),
        };
        if offline.is_empty() && consulted == 0 {
            return Ok(());
        }
        let parse = |der: &[u8]| {
            X509::from_der(der).map_err(|e| Refusal {
                subindication: "FORMAT_FAILURE",
                reason: format!("unreadable certificate: {e}"),
            })
        };
        let (cert, issuer_cert) = (parse(certificate)?, parse(issuer)?);
        let serial = serial_of(&cert);
        let mut problems: Vec<(&'static str, String)> = Vec::new();
        let mut good = false;
        let mut sources = 0;

        // The configured CRLs of this issuer.
        for crl in offline {
            let Ok(parsed) = X509Crl::from_der(crl.der()) else {
                continue;
            };
            sources += 1;
            match judge_crl(&parsed, &cert, &issuer_cert, judged_at, now) {
                Ok(Answer::Good) => good = true,
                Ok(Answer::Revoked(why)) => return Err(revoked(&serial, &why, &crl.issuer)),
                Err(problem) => problems.push(problem),
            }
        }

        match &self.named {
            NamedSources::Ignore => {}
            NamedSources::Refuse => {
                if consulted > 0 && !good {
                    sources += consulted;
                    problems.push((
                        "TRY_LATER",
                        "it names revocation sources, but fetching them is off (trust.fetch_revocation) and no configured CRL covers it".into(),
                    ));
                }
            }
            NamedSources::Fetch(fetch) => {
                // OCSP first: it is current, and small.
                for url in named.ocsp.iter() {
                    sources += 1;
                    match self.ocsp(fetch.as_ref(), url, &cert, &issuer_cert, judged_at, now) {
                        Ok(Answer::Good) => good = true,
                        Ok(Answer::Revoked(why)) => {
                            return Err(revoked(&serial, &why, &format!("OCSP at {url}")));
                        }
                        Err(problem) => problems.push(problem),
                    }
                }
                for url in named.crls.iter() {
                    sources += 1;
                    match self.fetched_crl(fetch.as_ref(), url, &cert, &issuer_cert, judged_at, now)
                    {
                        Ok(Answer::Good) => good = true,
                        Ok(Answer::Revoked(why)) => {
                            return Err(revoked(&serial, &why, &format!("the CRL at {url}")));
                        }
                        Err(problem) => problems.push(problem),
                    }
                }
            }
        }
        if good || sources == 0 {
            return Ok(());
        }
        // No fresh word: stale data says "out of bounds", no data at all "try later".
        let subindication = if problems.iter().any(|(s, _)| *s == "TRY_LATER") {
            "TRY_LATER"
        } else {
            "REVOCATION_OUT_OF_BOUNDS_NO_POE"
        };
        Err(Refusal {
            subindication,
            reason: format!(
                "no fresh revocation data for serial {serial}: {}",
                problems
                    .iter()
                    .map(|(_, p)| p.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        })
    }

    fn fetched_crl(
        &self,
        fetch: &dyn Fetch,
        url: &str,
        cert: &X509,
        issuer: &X509,
        judged_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Answer, (&'static str, String)> {
        let key = (url.to_string(), id_key(cert, issuer));
        let cached = {
            let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if cache
                .crl_answers
                .get(&key)
                .is_some_and(|next| *next >= now.timestamp())
            {
                return Ok(Answer::Good);
            }
            cache
                .crls
                .get(url)
                .filter(|(_, next)| *next >= now.timestamp())
                .map(|(der, _)| der.clone())
        };
        let der = match cached {
            Some(der) => der,
            None => {
                let bytes = fetch
                    .crl(url)
                    .map_err(|e| ("TRY_LATER", format!("the CRL at {url}: {e}")))?;
                let crl = X509Crl::from_der(&bytes)
                    .or_else(|_| X509Crl::from_pem(&bytes))
                    .map_err(|e| ("TRY_LATER", format!("the CRL at {url} is unreadable: {e}")))?;
                let der = crl
                    .to_der()
                    .map_err(|e| ("TRY_LATER", format!("the CRL at {url}: {e}")))?;
                // Cached only once it is known to be the issuer's and fresh.
                let issuer_public = issuer_key(issuer)?;
                if crl.verify(&issuer_public).unwrap_or(false)
                    && let Some(next) = crl.next_update().and_then(unix)
                    && next >= now.timestamp()
                {
                    let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
                    cache.crls.insert(url.to_string(), (der.clone(), next));
                }
                der
            }
        };
        let crl =
            X509Crl::from_der(&der).map_err(|e| ("TRY_LATER", format!("the CRL at {url}: {e}")))?;
        let answer = judge_crl(&crl, cert, issuer, judged_at, now)
            .map_err(|(s, problem)| (s, format!("the CRL at {url}: {problem}")))?;
        // An answer for a certificate the CRL does not list is kept; one it lists is judged
        // again (its revocation time against the next judging time).
        if matches!(crl.get_by_cert(cert), CrlStatus::NotRevoked)
            && let Some(next) = crl.next_update().and_then(unix)
        {
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            cache.crl_answers.insert(key, next);
        }
        Ok(answer)
    }

    fn ocsp(
        &self,
        fetch: &dyn Fetch,
        url: &str,
        cert: &X509,
        issuer: &X509,
        judged_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Answer, (&'static str, String)> {
        let fail = |s: &'static str, what: String| (s, format!("OCSP at {url}: {what}"));
        let id = || {
            OcspCertId::from_cert(MessageDigest::sha1(), cert, issuer)
                .map_err(|e| fail("TRY_LATER", format!("cannot name the certificate: {e}")))
        };
        let key = (url.to_string(), id_key(cert, issuer));
        {
            let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((answer, next)) = cache.ocsp.get(&key)
                && *next >= now.timestamp()
            {
                return Ok(answer.clone());
            }
        }
        let mut request = OcspRequest::new().map_err(|e| fail("TRY_LATER", e.to_string()))?;
        request
            .add_id(id()?)
            .map_err(|e| fail("TRY_LATER", e.to_string()))?;
        let der = request
            .to_der()
            .map_err(|e| fail("TRY_LATER", e.to_string()))?;
        let bytes = fetch.ocsp(url, &der).map_err(|e| fail("TRY_LATER", e))?;
        let response = OcspResponse::from_der(&bytes)
            .map_err(|e| fail("TRY_LATER", format!("unreadable answer: {e}")))?;
        if response.status() != OcspResponseStatus::SUCCESSFUL {
            return Err(fail(
                "TRY_LATER",
                format!("the responder answered {:?}", response.status()),
            ));
        }
        let basic = response
            .basic()
            .map_err(|e| fail("TRY_LATER", format!("no basic answer: {e}")))?;
        // Signed by the issuer, or by a responder certificate the issuer delegated to
        // (id-kp-OCSPSigning); the issuer is the only trust here.
        let mut store = X509StoreBuilder::new().map_err(|e| fail("TRY_LATER", e.to_string()))?;
        store
            .add_cert(issuer.clone())
            .map_err(|e| fail("TRY_LATER", e.to_string()))?;
        store
            .set_flags(X509VerifyFlags::PARTIAL_CHAIN)
            .map_err(|e| fail("TRY_LATER", e.to_string()))?;
        let store = store.build();
        let mut certs = Stack::new().map_err(|e| fail("TRY_LATER", e.to_string()))?;
        certs
            .push(issuer.clone())
            .map_err(|e| fail("TRY_LATER", e.to_string()))?;
        basic
            .verify(&certs, &store, OcspFlag::empty())
            .map_err(|e| {
                fail(
                    "TRY_LATER",
                    format!("the answer is not signed by the issuer or its responder: {e}"),
                )
            })?;
        let id = id()?;
        let status = basic.find_status(&id).ok_or_else(|| {
            fail(
                "TRY_LATER",
                "the answer does not name the certificate".into(),
            )
        })?;
        let next = status.next_update().and_then(generalized_unix);
        if next.is_some_and(|next| next < now.timestamp()) {
            return Err(fail(
                "REVOCATION_OUT_OF_BOUNDS_NO_POE",
                "the answer is past its nextUpdate".into(),
            ));
        }
        if generalized_unix(status.this_update).is_some_and(|this| this > now.timestamp() + 300) {
            return Err(fail(
                "TRY_LATER",
                "the answer is dated in the future".into(),
            ));
        }
        let answer = match status.status {
            OcspCertStatus::GOOD => Answer::Good,
            OcspCertStatus::REVOKED => {
                let at = status.revocation_time.and_then(generalized_unix);
                if at.is_some_and(|at| at > judged_at.timestamp()) {
                    // Revoked after the time judged at (a signing time): it counted then.
                    Answer::Good
                } else {
                    Answer::Revoked(format!(
                        "revoked at {}",
                        status
                            .revocation_time
                            .map(|t| t.to_string())
                            .unwrap_or_else(|| "an unknown time".into())
                    ))
                }
            }
            _ => {
                return Err(fail(
                    "TRY_LATER",
                    "the responder does not know the certificate".into(),
                ));
            }
        };
        // Without a nextUpdate an answer is used for five minutes. A revocation later than
        // the judging time is not kept: it is judged again against the next judging time.
        if status.status == OcspCertStatus::GOOD || matches!(answer, Answer::Revoked(_)) {
            let keep_until = next.unwrap_or(now.timestamp() + 300);
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            cache.ocsp.insert(key, (answer.clone(), keep_until));
        }
        Ok(answer)
    }
}

fn revoked(serial: &str, why: &str, source: &str) -> Refusal {
    Refusal {
        subindication: "REVOKED_NO_POE",
        reason: format!("serial {serial} is {why}, says {source}"),
    }
}

/// A CRL's word on `cert`: it must be the issuer's (signature), fresh at `now`, and list the
/// certificate (revoked) or not (good).
fn judge_crl(
    crl: &X509Crl,
    cert: &X509,
    issuer: &X509,
    judged_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Answer, (&'static str, String)> {
    let key = issuer_key(issuer)?;
    if !crl.verify(&key).unwrap_or(false) {
        return Err((
            "TRY_LATER",
            "the CRL is not signed by the certificate's issuer".into(),
        ));
    }
    match crl.get_by_cert(cert) {
        CrlStatus::Revoked(entry) | CrlStatus::RemoveFromCrl(entry) => {
            let at = unix(entry.revocation_date());
            if at.is_none_or(|at| at <= judged_at.timestamp()) {
                return Ok(Answer::Revoked(format!(
                    "revoked at {}",
                    entry.revocation_date()
                )));
            }
        }
        CrlStatus::NotRevoked => {}
    }
    match crl.next_update().and_then(unix) {
        Some(next) if next < now.timestamp() => Err((
            "REVOCATION_OUT_OF_BOUNDS_NO_POE",
            format!(
                "the CRL of {:?} is stale (nextUpdate {})",
                name_of(crl),
                crl.next_update().map(|t| t.to_string()).unwrap_or_default()
            ),
        )),
        _ => Ok(Answer::Good),
    }
}

fn issuer_key(
    issuer: &X509,
) -> Result<openssl::pkey::PKey<openssl::pkey::Public>, (&'static str, String)> {
    issuer
        .public_key()
        .map_err(|e| ("TRY_LATER", format!("the issuer's key is unreadable: {e}")))
}

fn name_of(crl: &X509Crl) -> String {
    crl.issuer_name()
        .entries()
        .filter_map(|e| e.data().to_string().ok())
        .collect::<Vec<_>>()
        .join(", ")
}

fn serial_of(cert: &X509) -> String {
    cert.serial_number()
        .to_bn()
        .and_then(|bn| bn.to_hex_str().map(|s| s.to_string()))
        .unwrap_or_else(|_| "?".into())
}

/// The cache key of an OCSP question: the issuer's name and key, and the serial.
fn id_key(cert: &X509, issuer: &X509) -> Vec<u8> {
    let mut key = issuer.subject_name().to_der().unwrap_or_default();
    key.extend(
        issuer
            .public_key()
            .and_then(|k| k.public_key_to_der())
            .unwrap_or_default(),
    );
    key.extend(
        cert.serial_number()
            .to_bn()
            .map(|b| b.to_vec())
            .unwrap_or_default(),
    );
    key
}

/// A GeneralizedTime (OCSP's times) as UNIX seconds, read from OpenSSL's rendering
/// ("Dec  2 15:00:00 2026 GMT").
fn generalized_unix(time: &openssl::asn1::Asn1GeneralizedTimeRef) -> Option<i64> {
    let text = time.to_string();
    chrono::NaiveDateTime::parse_from_str(text.trim_end_matches(" GMT"), "%b %e %H:%M:%S %Y")
        .ok()
        .map(|t| t.and_utc().timestamp())
}

fn unix(time: &Asn1TimeRef) -> Option<i64> {
    let epoch = Asn1Time::from_unix(0).ok()?;
    let diff = epoch.diff(time).ok()?;
    Some(i64::from(diff.days) * 86_400 + i64::from(diff.secs))
}
