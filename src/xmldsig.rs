//! Our small safe wrapper over xmlsec1 (through the `xmlsec` crate and its raw bindings).
//!
//! It does three things the crate's safe API does not: it signs or verifies the exact
//! `ds:Signature` node the caller picked (never "the first one in the tree"), it restricts
//! xmlsec to an allowlist of reference URIs, transforms and algorithms, and it captures
//! xmlsec's error messages so that reasons reach our errors instead of stderr.
//!
//! Documents and signature contexts are not `Send`: call these functions from one thread
//! (`spawn_blocking` in async code) and keep the document on that thread.

use std::cell::RefCell;
use std::ffi::{CStr, CString, c_char, c_int};
use std::sync::Once;

use libxml::tree::{Document, Node};
use xmlsec::bindings as xs;
use xmlsec::{XmlSecKey, XmlSecKeyFormat, XmlSecSignatureContext};

/// Namespace of XML-DSig.
pub const DSIG_NS: &str = "http://www.w3.org/2000/09/xmldsig#";
/// Namespace of the WS-Security utility attributes (`wsu:Id`), which signed messages use as IDs.
pub const WSU_NS: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd";
pub const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
pub const ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";
pub const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
pub const RSA_SHA512: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512";
pub const SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";
pub const SHA512: &str = "http://www.w3.org/2001/04/xmlenc#sha512";

/// Errors of the signature layer.
#[derive(Debug, thiserror::Error)]
pub enum DsigError {
    #[error("cannot load {what}: {detail}")]
    Key { what: &'static str, detail: String },
    #[error(
        "duplicate ID {id:?}: IDs must be unique, refusing a possible signature-wrapping attempt"
    )]
    DuplicateId { id: String },
    #[error("element <{element}> has no {attribute} attribute to register as an ID")]
    MissingId { element: String, attribute: String },
    #[error("signing failed: {0}")]
    Sign(String),
    #[error("signature does not verify: {0}")]
    Invalid(String),
    #[error("no trusted key: {0}")]
    NoTrustedKey(String),
}

/// A private key and its certificate as PEM bytes. Plain bytes are `Send + Sync`; xmlsec
/// key objects are made from them on the thread that uses them.
#[derive(Clone)]
pub struct SigningKey {
    pub private_key_pem: Vec<u8>,
    pub certificate_pem: Vec<u8>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("private_key_pem", &"<redacted>")
            .finish()
    }
}

impl SigningKey {
    /// Checks that both PEMs load, so that a bad key fails at start and not at first use.
    pub fn validate(&self) -> Result<(), DsigError> {
        load_private_key(&self.private_key_pem)?;
        let der = certificate_der(&self.certificate_pem)?;
        // The key must be the certificate's: a signature made with another key would be
        // refused by whoever checks it against the certificate, far from this configuration.
        let key =
            openssl::pkey::PKey::private_key_from_pem(&self.private_key_pem).map_err(|e| {
                DsigError::Key {
                    what: "private key",
                    detail: e.to_string(),
                }
            })?;
        let matches = openssl::x509::X509::from_der(&der)
            .and_then(|c| c.public_key())
            .map(|public| public.public_eq(&key))
            .map_err(|e| DsigError::Key {
                what: "certificate",
                detail: e.to_string(),
            })?;
        if !matches {
            return Err(DsigError::Key {
                what: "private key",
                detail: "it is not the key of the certificate it is paired with".into(),
            });
        }
        Ok(())
    }

    /// The certificate as DER, for a BinarySecurityToken.
    pub fn certificate_der(&self) -> Result<Vec<u8>, DsigError> {
        certificate_der(&self.certificate_pem)
    }
}

/// The certificates of a file as DER: every `CERTIFICATE` block of a PEM file (text around
/// the blocks, as `openssl x509 -text` writes it, is ignored), or the file itself if it has no
/// PEM block (DER).
pub fn certificates_der(file: &[u8]) -> Result<Vec<Vec<u8>>, DsigError> {
    const BEGIN: &[u8] = b"-----BEGIN CERTIFICATE-----";
    if !file.windows(BEGIN.len()).any(|w| w == BEGIN) {
        return Ok(vec![file.to_vec()]);
    }
    let text = std::str::from_utf8(file).map_err(|_| DsigError::Key {
        what: "certificate",
        detail: "PEM is not UTF-8".into(),
    })?;
    text.match_indices("-----BEGIN CERTIFICATE-----")
        .map(|(start, _)| certificate_der(&file[start..]))
        .collect()
}

/// Decodes the first `CERTIFICATE` block of a PEM file.
pub fn certificate_der(pem: &[u8]) -> Result<Vec<u8>, DsigError> {
    use base64::Engine;
    let text = std::str::from_utf8(pem).map_err(|_| DsigError::Key {
        what: "certificate",
        detail: "PEM is not UTF-8".into(),
    })?;
    let begin = "-----BEGIN CERTIFICATE-----";
    let end = "-----END CERTIFICATE-----";
    let start = text.find(begin).ok_or_else(|| DsigError::Key {
        what: "certificate",
        detail: "no BEGIN CERTIFICATE block".into(),
    })? + begin.len();
    let stop = text[start..].find(end).ok_or_else(|| DsigError::Key {
        what: "certificate",
        detail: "no END CERTIFICATE line".into(),
    })? + start;
    let body: String = text[start..stop]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|e| DsigError::Key {
            what: "certificate",
            detail: format!("bad base64 in PEM: {e}"),
        })
}

/// Which algorithms and references a verification accepts.
#[derive(Debug, Clone, Copy)]
pub struct Allowlist {
    /// `URI=""` references with the enveloped-signature transform (enveloped signatures).
    pub enveloped: bool,
    /// Also the inclusive c14n family (1.0, 1.1, with comments), the XPath transform (whose
    /// expression the caller checks), ECDSA and SHA-384.
    pub forms: bool,
    /// Legacy SHA-1 digests and signatures.
    pub sha1: bool,
}

impl Allowlist {
    /// WS-Security as eurzad and ePUAP speak it: exc-c14n, RSA-SHA256/512, by ID only.
    pub const WSS: Allowlist = Allowlist {
        enveloped: false,
        forms: false,
        sha1: false,
    };
    /// Enveloped signatures eurzad makes (UPP, letters).
    pub const ENVELOPED: Allowlist = Allowlist {
        enveloped: true,
        forms: false,
        sha1: false,
    };
}

fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        // Creating any key initialises xmlsec and its OpenSSL backend inside the crate.
        xmlsec::XmlSecSignatureContext::new();
        // SAFETY: `collect_error` matches xmlsec's callback signature and touches only this thread's
        // buffer; set once, before any other xmlsec call of the process (inside `Once`).
        unsafe { xmlSecErrorsSetCallback(Some(collect_error)) };
    });
}

unsafe extern "C" {
    fn xmlSecErrorsSetCallback(callback: Option<ErrorsCallback>);
}

type ErrorsCallback = unsafe extern "C" fn(
    file: *const c_char,
    line: c_int,
    func: *const c_char,
    error_object: *const c_char,
    error_subject: *const c_char,
    reason: c_int,
    msg: *const c_char,
);

thread_local! {
    static ERRORS: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

unsafe extern "C" fn collect_error(
    _file: *const c_char,
    _line: c_int,
    func: *const c_char,
    _error_object: *const c_char,
    error_subject: *const c_char,
    _reason: c_int,
    msg: *const c_char,
) {
    let text = |p: *const c_char| {
        if p.is_null() {
            String::new()
        } else {
            // SAFETY: xmlsec passes NUL-terminated strings valid for the callback's duration.
            unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
        }
    };
    let line = format!("{}: {} {}", text(func), text(error_subject), text(msg));
    ERRORS.with(|errors| {
        let mut errors = errors.borrow_mut();
        if errors.len() < 16 {
            errors.push(line.trim().to_string());
        }
    });
}

/// Starts collecting one operation's errors: empties the collector (so that nothing left by
/// an earlier operation that succeeded is blamed on this one) and routes libxml2's own errors
/// (c14n, XPath, tree) raised on this thread into it while alive, restoring the previous
/// handler when dropped. Without it libxml2 prints them to stderr, outside the log and the
/// verdict. libxml2 keeps the handler per thread.
struct LibxmlErrors {
    saved_handler: libxml::bindings::xmlStructuredErrorFunc,
    saved_data: *mut std::ffi::c_void,
}

impl LibxmlErrors {
    fn install() -> LibxmlErrors {
        use libxml::bindings::{
            __xmlStructuredError, __xmlStructuredErrorContext, xmlSetStructuredErrorFunc,
        };
        ERRORS.with(|errors| errors.borrow_mut().clear());
        // SAFETY: reading and setting this thread's handler; the handler needs no data.
        unsafe {
            let saved = LibxmlErrors {
                saved_handler: *__xmlStructuredError(),
                saved_data: *__xmlStructuredErrorContext(),
            };
            xmlSetStructuredErrorFunc(std::ptr::null_mut(), Some(collect_libxml_error));
            saved
        }
    }
}

impl Drop for LibxmlErrors {
    fn drop(&mut self) {
        // SAFETY: puts back what `install` found on this thread.
        unsafe { libxml::bindings::xmlSetStructuredErrorFunc(self.saved_data, self.saved_handler) }
    }
}

unsafe extern "C" fn collect_libxml_error(
    _data: *mut std::ffi::c_void,
    error: libxml::bindings::xmlErrorPtr,
) {
    if error.is_null() {
        return;
    }
    // SAFETY: libxml2 passes a valid error whose message, if any, is NUL-terminated.
    let message = unsafe {
        let message = (*error).message;
        if message.is_null() {
            return;
        }
        CStr::from_ptr(message).to_string_lossy().into_owned()
    };
    ERRORS.with(|errors| {
        let mut errors = errors.borrow_mut();
        if errors.len() < 16 {
            errors.push(format!("libxml2: {}", message.trim()));
        }
    });
}

fn take_errors() -> String {
    ERRORS.with(|errors| {
        let drained: Vec<String> = errors.borrow_mut().drain(..).collect();
        if drained.is_empty() {
            "no detail from xmlsec".to_string()
        } else {
            drained.join("; ")
        }
    })
}

thread_local! {
    /// Parsed keys of this thread, by their PEM bytes: parsing an RSA key costs several
    /// times the signature itself, and a daemon uses the same two or three keys all day.
    /// xmlsec keys are not `Send`, hence one cache per thread.
    static KEYS: RefCell<Vec<(Vec<u8>, bool, XmlSecKey)>> = const { RefCell::new(Vec::new()) };
}

const KEY_CACHE_SIZE: usize = 8;

/// Runs `use_key` with a context that borrows the cached parsed key for `pem` (a private key,
/// or the public key of a certificate). The key is lent, not duplicated: duplicating an
/// OpenSSL 3 key costs more than the signature itself. It is detached from the context
/// before the context is destroyed, so the cache keeps sole ownership.
fn with_cached_key<T>(
    pem: &[u8],
    certificate: bool,
    what: &'static str,
    allow: Allowlist,
    use_key: impl FnOnce(&XmlSecSignatureContext) -> T,
) -> Result<T, DsigError> {
    init();
    KEYS.with(|keys| {
        let mut keys = keys.borrow_mut();
        if !keys.iter().any(|(p, c, _)| p == pem && *c == certificate) {
            let format = if certificate {
                XmlSecKeyFormat::CertPem
            } else {
                XmlSecKeyFormat::Pem
            };
            let key = XmlSecKey::from_memory(pem, format, None).map_err(|_| DsigError::Key {
                what,
                detail: take_errors(),
            })?;
            if keys.len() == KEY_CACHE_SIZE {
                keys.remove(0);
            }
            keys.push((pem.to_vec(), certificate, key));
        }
        let key = &keys
            .iter()
            .find(|(p, c, _)| p == pem && *c == certificate)
            .expect("just cached")
            .2;
        let ctx = XmlSecSignatureContext::new();
        restrict(&ctx, allow);
        let _errors = LibxmlErrors::install();
        // SAFETY: the context borrows the cached key for this call only: `Lent` resets the pointer
        // before the context is dropped, so the context never destroys a key it does not own.
        unsafe { (*ctx.as_ptr()).signKey = key.as_ptr() };
        // Dropped before `ctx`, even on a panic: the context must never destroy the lent key.
        let lent = Lent(&ctx);
        Ok(use_key(lent.0))
    })
}

struct Lent<'a>(&'a XmlSecSignatureContext);

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        // SAFETY: the context is alive (borrowed); clearing its key pointer only stops it from
        // destroying the lent key.
        unsafe { (*self.0.as_ptr()).signKey = std::ptr::null_mut() };
    }
}

fn load_private_key(pem: &[u8]) -> Result<(), DsigError> {
    with_cached_key(pem, false, "private key", Allowlist::WSS, |_| ())
}

/// Registers the attribute `attr_name` (in namespace `attr_ns`, or none) of `element` as an
/// XML ID so that `#id` references resolve to it, refusing an ID that is already registered.
pub fn register_id(
    doc: &Document,
    element: &Node,
    attr_ns: Option<&str>,
    attr_name: &str,
) -> Result<String, DsigError> {
    let attribute = match attr_ns {
        Some(ns) => element.get_property_node_ns(attr_name, ns),
        None => element.get_property_node_no_ns(attr_name),
    }
    .ok_or_else(|| DsigError::MissingId {
        element: element.get_name(),
        attribute: attr_name.to_string(),
    })?;
    let id = attribute.get_content();
    let c_id = CString::new(id.clone()).map_err(|_| DsigError::DuplicateId { id: id.clone() })?;
    let doc_ptr = doc.doc_ptr();
    let attr_ptr = attribute.node_ptr() as *mut libxml::bindings::_xmlAttr;
    // SAFETY: `doc_ptr` and `attr_ptr` are live parts of `doc`, borrowed for this call, and
    // `c_id` is a NUL-terminated string that outlives it; xmlAddID copies the ID.
    unsafe {
        let existing = libxml::bindings::xmlGetID(doc_ptr, c_id.as_ptr() as *const u8);
        if !existing.is_null() {
            if existing == attr_ptr {
                return Ok(id);
            }
            return Err(DsigError::DuplicateId { id });
        }
        libxml::bindings::xmlAddID(
            std::ptr::null_mut(),
            doc_ptr,
            c_id.as_ptr() as *const u8,
            attr_ptr,
        );
    }
    Ok(id)
}

fn restrict(ctx: &XmlSecSignatureContext, allow: Allowlist) {
    // SAFETY: the context is alive (borrowed) and not yet used.
    unsafe { restrict_raw(ctx.as_ptr(), allow) }
}

unsafe fn restrict_raw(raw: *mut xs::xmlSecDSigCtx, allow: Allowlist) {
    // SAFETY (caller): `raw` is a live, unused signature context. The klass getters return
    // static descriptors; xmlsec copies them into the context's lists.
    unsafe {
        let mut uris = xs::xmlSecTransformUriTypeSameDocument;
        if allow.enveloped {
            uris |= xs::xmlSecTransformUriTypeEmpty;
        }
        (*raw).enabledReferenceUris = uris;
        let mut reference = vec![
            xs::xmlSecTransformExclC14NGetKlass(),
            xs::xmlSecOpenSSLTransformSha256GetKlass(),
            xs::xmlSecOpenSSLTransformSha512GetKlass(),
        ];
        let mut signature = vec![
            xs::xmlSecTransformExclC14NGetKlass(),
            xs::xmlSecOpenSSLTransformRsaSha256GetKlass(),
            xs::xmlSecOpenSSLTransformRsaSha512GetKlass(),
        ];
        if allow.enveloped {
            reference.push(xs::xmlSecTransformEnvelopedGetKlass());
        }
        if allow.forms {
            let c14n = [
                xs::xmlSecTransformExclC14NWithCommentsGetKlass(),
                xs::xmlSecTransformInclC14NGetKlass(),
                xs::xmlSecTransformInclC14NWithCommentsGetKlass(),
                xs::xmlSecTransformInclC14N11GetKlass(),
                xs::xmlSecTransformInclC14N11WithCommentsGetKlass(),
            ];
            reference.extend(c14n);
            reference.push(xs::xmlSecTransformXPathGetKlass());
            reference.push(xs::xmlSecOpenSSLTransformSha384GetKlass());
            signature.extend(c14n);
            signature.extend([
                xs::xmlSecOpenSSLTransformRsaSha384GetKlass(),
                xs::xmlSecOpenSSLTransformEcdsaSha256GetKlass(),
                xs::xmlSecOpenSSLTransformEcdsaSha384GetKlass(),
                xs::xmlSecOpenSSLTransformEcdsaSha512GetKlass(),
            ]);
        }
        if allow.sha1 {
            reference.push(xs::xmlSecOpenSSLTransformSha1GetKlass());
            signature.push(xs::xmlSecOpenSSLTransformRsaSha1GetKlass());
            if allow.forms {
                signature.push(xs::xmlSecOpenSSLTransformEcdsaSha1GetKlass());
            }
        }
        for klass in reference {
            xs::xmlSecDSigCtxEnableReferenceTransform(raw, klass);
        }
        for klass in signature {
            xs::xmlSecDSigCtxEnableSignatureTransform(raw, klass);
        }
    }
}

/// Fills in the `ds:Signature` template at `signature` (digests and SignatureValue) with `key`.
pub fn sign(signature: &Node, key: &SigningKey, allow: Allowlist) -> Result<(), DsigError> {
    with_cached_key(&key.private_key_pem, false, "private key", allow, |ctx| {
        ctx.sign_node(signature)
            .map_err(|_| DsigError::Sign(take_errors()))
    })?
}

/// Verifies the `ds:Signature` at `signature` with the public key of `certificate_pem` only.
/// KeyInfo is ignored: the key is pinned by the caller. Every Reference in SignedInfo must
/// verify; the caller checks which elements those References cover.
pub fn verify(signature: &Node, certificate_pem: &[u8], allow: Allowlist) -> Result<(), DsigError> {
    with_cached_key(certificate_pem, true, "certificate", allow, |ctx| match ctx
        .verify_node(signature)
    {
        Ok(true) => Ok(()),
        Ok(false) => Err(DsigError::Invalid(format!(
            "digest or signature value mismatch ({})",
            take_errors()
        ))),
        Err(_) => Err(DsigError::Invalid(take_errors())),
    })?
}

/// Trust anchors for [`verify_with_anchors`]: certificates (PEM or DER) that end a chain.
pub struct Anchors<'a> {
    pub certificates: &'a [Vec<u8>],
    /// Untrusted intermediates offered besides those in KeyInfo.
    pub intermediates: &'a [Vec<u8>],
}

/// Verifies the `ds:Signature` at `signature` with the key of a certificate from its
/// `X509Data` that chains to one of `anchors` at `at` (UNIX seconds). Only X509Data is read
/// from KeyInfo: a bare KeyValue is never trusted. Returns the signer certificate (DER).
pub fn verify_with_anchors(
    signature: &Node,
    anchors: &Anchors<'_>,
    at: i64,
    allow: Allowlist,
) -> Result<Vec<u8>, DsigError> {
    init();
    let key = anchors_digest(anchors)?;
    // A chain already built for these anchors and these KeyInfo certificates is valid for as
    // long as every certificate in it is: the signature is then checked with the signer's key
    // alone, skipping the chain building. A CRL in KeyInfo always takes the full path.
    let carried = keyinfo_certificates(signature);
    let chain_key = (key, digest_of(&carried));
    if !carried.is_empty() && !has_keyinfo_crl(signature) {
        let cached = CHAINS.with(|chains| {
            chains
                .borrow()
                .iter()
                .find(|(k, _, _)| *k == chain_key)
                .map(|(_, signer, window)| (signer.clone(), *window))
        });
        if let Some((signer, (from, until))) = cached
            && from <= at
            && at <= until
        {
            let pem = der_to_pem(&signer);
            verify(signature, pem.as_bytes(), allow)?;
            return Ok(signer);
        }
    }
    let signer = verify_building_chain(signature, key, at, allow)?;
    if !carried.is_empty()
        && !has_keyinfo_crl(signature)
        && let Some(window) = chain_window(&signer, &carried, anchors)
    {
        CHAINS.with(|chains| {
            let mut chains = chains.borrow_mut();
            if chains.len() == CHAIN_CACHE_SIZE {
                chains.remove(0);
            }
            chains.push((chain_key, signer.clone(), window));
        });
    }
    Ok(signer)
}

/// A chain verified before: the SHA-256 of (anchors, KeyInfo certificates), the signer
/// (DER), and the window (UNIX seconds) in which every certificate in it is valid.
type VerifiedChain = (([u8; 32], [u8; 32]), Vec<u8>, (i64, i64));

thread_local! {
    /// Chains verified on this thread.
    static CHAINS: RefCell<Vec<VerifiedChain>> = const { RefCell::new(Vec::new()) };
}

const CHAIN_CACHE_SIZE: usize = 256;

/// The DER certificates in the signature's KeyInfo/X509Data.
pub fn keyinfo_certificates(signature: &Node) -> Vec<Vec<u8>> {
    use base64::Engine;
    signature
        .findnodes("*[local-name()='KeyInfo']/*[local-name()='X509Data']/*[local-name()='X509Certificate']")
        .unwrap_or_default()
        .iter()
        .filter_map(|c| {
            let text: String = c.get_content().split_whitespace().collect();
            base64::engine::general_purpose::STANDARD.decode(text).ok()
        })
        .collect()
}

fn has_keyinfo_crl(signature: &Node) -> bool {
    signature
        .findnodes("*[local-name()='KeyInfo']//*[local-name()='X509CRL']")
        .map(|n| !n.is_empty())
        .unwrap_or(true)
}

/// SHA-256 over a list of certificates, each with its length first, so that no two
/// different lists share a digest (a cache key an attacker cannot collide, unlike a 64-bit
/// hash).
fn digest_of(certificates: &[Vec<u8>]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    hasher.update((certificates.len() as u64).to_be_bytes());
    for certificate in certificates {
        hasher.update((certificate.len() as u64).to_be_bytes());
        hasher.update(certificate);
    }
    hasher.finalize().into()
}

/// When the chain signer -> KeyInfo certificates -> issuing anchor is valid: the intersection
/// of their validity periods. `None` when a certificate cannot be read (no caching then).
fn chain_window(signer: &[u8], carried: &[Vec<u8>], anchors: &Anchors<'_>) -> Option<(i64, i64)> {
    let mut window = (i64::MIN, i64::MAX);
    let mut narrow = |der: &[u8]| -> Option<()> {
        let (_, certificate) = x509_parser::parse_x509_certificate(der).ok()?;
        let validity = certificate.validity();
        window.0 = window.0.max(validity.not_before.timestamp());
        window.1 = window.1.min(validity.not_after.timestamp());
        Some(())
    };
    narrow(signer)?;
    let mut issuers = Vec::new();
    for der in carried {
        narrow(der)?;
        let (_, certificate) = x509_parser::parse_x509_certificate(der).ok()?;
        issuers.push(certificate.issuer().as_raw().to_vec());
    }
    // The anchors that may have ended the chain: those whose subject issued a carried cert.
    for file in anchors.certificates {
        for der in certificates_der(file).ok()? {
            let (_, anchor) = x509_parser::parse_x509_certificate(&der).ok()?;
            if issuers
                .iter()
                .any(|issuer| issuer.as_slice() == anchor.subject().as_raw())
            {
                narrow(&der)?;
            }
        }
    }
    (window.0 <= window.1).then_some(window)
}

/// A DER certificate as PEM (xmlsec loads certificate keys from PEM).
pub fn der_to_pem(der: &[u8]) -> String {
    use base64::Engine;
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap_or(""))
        .collect();
    format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        lines.join("\n")
    )
}

fn verify_building_chain(
    signature: &Node,
    key: [u8; 32],
    at: i64,
    allow: Allowlist,
) -> Result<Vec<u8>, DsigError> {
    MANAGERS.with(|cache| {
        let cache = cache.borrow();
        let managed = cache
            .iter()
            .find(|m| m.digest == key)
            .ok_or_else(|| DsigError::Key {
                what: "keys manager",
                detail: "the anchors' keys manager left the cache".into(),
            })?;
        let _errors = LibxmlErrors::install();
        // SAFETY: the manager is alive (borrowed from the cache) and was built by
        // `new_keys_manager`; `signature` is a live node of a document on this thread.
        unsafe { verify_with_manager(signature, &managed.manager, at, allow) }
    })
}

/// A keys manager and the anchors it was built from, as bytes: the cache is keyed by the
/// certificates themselves, compared byte for byte.
struct ManagedAnchors {
    certificates: Vec<Vec<u8>>,
    intermediates: Vec<Vec<u8>>,
    /// SHA-256 of both lists, the key of the chains verified under these anchors.
    digest: [u8; 32],
    manager: KeysManager,
}

thread_local! {
    /// Keys managers of this thread by their anchors: building one (an X509 store and its
    /// certificates) costs far more than a verification, and the anchors rarely change.
    static MANAGERS: RefCell<Vec<ManagedAnchors>> = const { RefCell::new(Vec::new()) };
}

const MANAGER_CACHE_SIZE: usize = 4;

/// The digest of `anchors`, with their keys manager built and cached on this thread. The
/// lookup compares the anchors byte for byte, so it costs a `memcmp`, not a hash of them.
fn anchors_digest(anchors: &Anchors<'_>) -> Result<[u8; 32], DsigError> {
    MANAGERS.with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some(managed) = cache.iter().find(|m| {
            m.certificates == anchors.certificates && m.intermediates == anchors.intermediates
        }) {
            return Ok(managed.digest);
        }
        // SAFETY: xmlsec is initialised (`init`), and the manager stays on this thread.
        let manager = unsafe { new_keys_manager(anchors)? };
        let digest = {
            use sha2::{Digest, Sha256};
            let mut hasher = Sha256::new();
            hasher.update(digest_of(anchors.certificates));
            hasher.update(digest_of(anchors.intermediates));
            <[u8; 32]>::from(hasher.finalize())
        };
        if cache.len() == MANAGER_CACHE_SIZE {
            cache.remove(0);
        }
        cache.push(ManagedAnchors {
            certificates: anchors.certificates.to_vec(),
            intermediates: anchors.intermediates.to_vec(),
            digest,
            manager,
        });
        Ok(digest)
    })
}

unsafe fn new_keys_manager(anchors: &Anchors<'_>) -> Result<KeysManager, DsigError> {
    // SAFETY (caller): xmlsec is initialised and the manager stays on this thread. Every
    // pointer below is checked for null before use and owned by `KeysManager` once made.
    unsafe {
        let manager = xs::xmlSecKeysMngrCreate();
        if manager.is_null() || xs::xmlSecOpenSSLAppDefaultKeysMngrInit(manager) < 0 {
            return Err(DsigError::Key {
                what: "keys manager",
                detail: take_errors(),
            });
        }
        let manager = KeysManager(manager);
        // Our own X509_STORE replaces xmlsec's: xmlsec's default store also trusts the
        // operating system's CA bundle (X509_STORE_set_default_paths), which must never count,
        // and it refuses an anchor that is not self-signed, while a trusted list's anchors are
        // issuing CAs (ETSI TS 119 615): explicit trust makes every configured anchor a root.
        own_x509_store(manager.0, anchors.certificates)?;
        for certificate in anchors
            .intermediates
            .iter()
            .map(|f| certificates_der(f))
            .collect::<Result<Vec<_>, _>>()?
            .iter()
            .flatten()
        {
            if xs::xmlSecOpenSSLAppKeysMngrCertLoadMemory(
                manager.0,
                certificate.as_ptr(),
                certificate.len() as _,
                xs::xmlSecKeyDataFormat_xmlSecKeyDataFormatDer,
                0,
            ) < 0
            {
                return Err(DsigError::Key {
                    what: "intermediate certificate",
                    detail: take_errors(),
                });
            }
        }
        Ok(manager)
    }
}

unsafe fn verify_with_manager(
    signature: &Node,
    manager: &KeysManager,
    at: i64,
    allow: Allowlist,
) -> Result<Vec<u8>, DsigError> {
    // SAFETY (caller): `manager` is a live keys manager and `signature` a live node of a
    // document on this thread; the context is destroyed by `Context` on every path.
    unsafe {
        let ctx = xs::xmlSecDSigCtxCreate(manager.0);
        if ctx.is_null() {
            return Err(DsigError::Invalid(
                "cannot create a signature context".into(),
            ));
        }
        let ctx = Context(ctx);
        (*ctx.0).keyInfoReadCtx.certsVerificationTime = at as _;
        xs::xmlSecPtrListAdd(
            &mut (*ctx.0).keyInfoReadCtx.enabledKeyData,
            xs::xmlSecOpenSSLKeyDataX509GetKlass() as *mut std::ffi::c_void,
        );
        restrict_raw(ctx.0, allow);
        let rc = xs::xmlSecDSigCtxVerify(ctx.0, signature.node_ptr() as xs::xmlNodePtr);
        if rc < 0 {
            // No key: no certificate in X509Data chains to an anchor at that time.
            return Err(DsigError::NoTrustedKey(take_errors()));
        }
        if (*ctx.0).status != xs::xmlSecDSigStatus_xmlSecDSigStatusSucceeded {
            return Err(DsigError::Invalid(format!(
                "digest or signature value mismatch ({})",
                take_errors()
            )));
        }
        let key = (*ctx.0).signKey;
        let data = if key.is_null() {
            std::ptr::null_mut()
        } else {
            xs::xmlSecKeyGetData(key, xs::xmlSecOpenSSLKeyDataX509GetKlass())
        };
        let certificate = if data.is_null() {
            std::ptr::null_mut()
        } else {
            xs::xmlSecOpenSSLKeyDataX509GetKeyCert(data)
        };
        if certificate.is_null() {
            return Err(DsigError::Invalid(
                "the signing key did not come from a certificate".into(),
            ));
        }
        Ok(x509_der(certificate as *mut std::ffi::c_void))
    }
}

unsafe extern "C" {
    fn X509_STORE_new() -> *mut std::ffi::c_void;
    fn X509_STORE_free(store: *mut std::ffi::c_void);
    fn X509_STORE_set_flags(store: *mut std::ffi::c_void, flags: std::ffi::c_ulong) -> c_int;
    fn X509_STORE_add_cert(
        store: *mut std::ffi::c_void,
        certificate: *mut std::ffi::c_void,
    ) -> c_int;
    fn d2i_X509(
        out: *mut *mut std::ffi::c_void,
        input: *mut *const u8,
        length: std::ffi::c_long,
    ) -> *mut std::ffi::c_void;
    fn X509_free(certificate: *mut std::ffi::c_void);
    fn X509_add1_trust_object(
        certificate: *mut std::ffi::c_void,
        object: *const std::ffi::c_void,
    ) -> c_int;
    fn OBJ_nid2obj(nid: c_int) -> *const std::ffi::c_void;
}

/// The libxmlsec1 release whose private X509 store layout `own_x509_store` relies on.
const CHECKED_XMLSEC: (c_int, c_int, c_int) = (1, 2, 37);

unsafe extern "C" {
    /// 1 when the loaded libxmlsec1 matches the version (mode 0: exactly), else 0 or -1.
    fn xmlSecCheckVersionExt(major: c_int, minor: c_int, subminor: c_int, mode: c_int) -> c_int;
}

/// Whether the loaded libxmlsec1 is exactly [`CHECKED_XMLSEC`].
fn x509_store_layout_is_known() -> bool {
    let (major, minor, subminor) = CHECKED_XMLSEC;
    // SAFETY: a plain query of the library's version; it reads no caller memory.
    let matched = unsafe { xmlSecCheckVersionExt(major, minor, subminor, 0) };
    take_errors();
    matched == 1
}

/// NID_anyExtendedKeyUsage: explicit trust for any purpose.
const NID_ANY_EXTENDED_KEY_USAGE: c_int = 910;

const X509_V_FLAG_PARTIAL_CHAIN: std::ffi::c_ulong = 0x80000;

/// Puts a fresh X509_STORE holding exactly `anchors` into the keys manager's X509 data store.
///
/// xmlsec 1.2.37 keeps its OpenSSL store in a private struct (`xmlSecOpenSSLX509StoreCtx`:
/// `X509_STORE* xst`, the untrusted stack, the CRLs, the verify params) placed right after the
/// `xmlSecKeyDataStore` header (src/openssl/x509vfy.c; measured: object size 56 = 24 + 4 × 8).
/// The object size is checked before the swap; the bindings are generated from, and pinned to,
/// 1.2.37 (1.3 changes the API); `tests/vectors.rs` fails if the swap stops taking effect.
unsafe fn own_x509_store(
    manager: xs::xmlSecKeysMngrPtr,
    anchors: &[Vec<u8>],
) -> Result<(), DsigError> {
    // Fail closed on any other libxmlsec1: the private layout below was read off 1.2.37's
    // source, and a release may move it while keeping the object size.
    if !x509_store_layout_is_known() {
        return Err(DsigError::Key {
            what: "keys manager",
            detail: format!(
                "the X509 store swap was checked against libxmlsec1 {CHECKED_XMLSEC:?} only: \
                 this libxmlsec1 is another release, so no anchors are loaded (install 1.2.37)"
            ),
        });
    }
    // SAFETY (caller): `manager` is a live keys manager built by `new_keys_manager`. The slot
    // is reached only on the checked libxmlsec1, after its object size matched, and holds
    // xmlsec's own X509_STORE, which is freed and replaced by one we made.
    unsafe {
        let data_store =
            xs::xmlSecKeysMngrGetDataStore(manager, xs::xmlSecOpenSSLX509StoreGetKlass());
        if data_store.is_null() {
            return Err(DsigError::Key {
                what: "keys manager",
                detail: "no X509 data store".into(),
            });
        }
        // Layout guard: the object is the store header followed by the four-pointer context.
        let expected =
            std::mem::size_of::<xs::_xmlSecKeyDataStore>() + 4 * std::mem::size_of::<usize>();
        if (*(*data_store).id).objSize as usize != expected {
            return Err(DsigError::Key {
                what: "keys manager",
                detail: format!(
                    "unexpected xmlsec X509 store layout (object of {} bytes)",
                    (*(*data_store).id).objSize
                ),
            });
        }
        let slot = (data_store as *mut u8).add(std::mem::size_of::<xs::_xmlSecKeyDataStore>())
            as *mut *mut std::ffi::c_void;
        if (*slot).is_null() {
            return Err(DsigError::Key {
                what: "keys manager",
                detail: "unexpected xmlsec X509 store layout".into(),
            });
        }
        let store = X509_STORE_new();
        X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN);
        X509_STORE_free(*slot);
        *slot = store;
        for file in anchors {
            for der in certificates_der(file)? {
                let mut cursor = der.as_ptr();
                let certificate = d2i_X509(std::ptr::null_mut(), &mut cursor, der.len() as _);
                if certificate.is_null() {
                    return Err(DsigError::Key {
                        what: "trust anchor",
                        detail: "not a DER or PEM certificate".into(),
                    });
                }
                // Explicit trust makes a non-self-signed anchor (an issuing CA from a trusted
                // list) end the chain.
                X509_add1_trust_object(certificate, OBJ_nid2obj(NID_ANY_EXTENDED_KEY_USAGE));
                X509_STORE_add_cert(store, certificate);
                X509_free(certificate);
            }
        }
        Ok(())
    }
}

struct KeysManager(xs::xmlSecKeysMngrPtr);
impl Drop for KeysManager {
    fn drop(&mut self) {
        // SAFETY: the manager was made by xmlSecKeysMngrCreate and is destroyed once, here.
        unsafe { xs::xmlSecKeysMngrDestroy(self.0) };
    }
}

struct Context(*mut xs::xmlSecDSigCtx);
impl Drop for Context {
    fn drop(&mut self) {
        // SAFETY: the context was made by xmlSecDSigCtxCreate and is destroyed once, here.
        unsafe { xs::xmlSecDSigCtxDestroy(self.0) };
    }
}

unsafe extern "C" {
    fn i2d_X509(certificate: *mut std::ffi::c_void, out: *mut *mut u8) -> c_int;
}

/// DER bytes of an OpenSSL `X509*`.
unsafe fn x509_der(certificate: *mut std::ffi::c_void) -> Vec<u8> {
    // SAFETY (caller): `certificate` is a live OpenSSL X509; i2d_X509 writes at most the
    // length it reported into the buffer sized for it.
    unsafe {
        let length = i2d_X509(certificate, std::ptr::null_mut());
        if length <= 0 {
            return Vec::new();
        }
        let mut buffer = vec![0u8; length as usize];
        let mut cursor = buffer.as_mut_ptr();
        i2d_X509(certificate, &mut cursor);
        buffer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_x509_store_swap_runs_only_on_the_checked_libxmlsec1() {
        init();
        // This machine's libxmlsec1 is the checked one; the check tells releases apart.
        assert!(x509_store_layout_is_known());
        let (major, minor, subminor) = CHECKED_XMLSEC;
        // SAFETY: a plain query of the library's version.
        let other = unsafe { xmlSecCheckVersionExt(major, minor, subminor - 1, 0) };
        take_errors();
        assert_ne!(other, 1, "1.2.36 must not pass for 1.2.37");
    }

    #[test]
    fn cache_keys_tell_lists_apart_by_their_bytes() {
        let a = vec![b"ab".to_vec(), b"c".to_vec()];
        let b = vec![b"a".to_vec(), b"bc".to_vec()];
        assert_ne!(digest_of(&a), digest_of(&b));
        assert_eq!(digest_of(&a), digest_of(&a.clone()));
        assert_ne!(digest_of(&[]), digest_of(&[Vec::new()]));
    }
}
