//! eurzad: the back-end daemon of a municipal e-services portal.
//!
//! The tree follows the design card (docs and `shared/DESIGN.md`): the domain
//! ([`document`]) knows nothing of SOAP, HTTP or SQL; [`epuap`] speaks ePUAP's SOAP
//! contract; [`emulator`] is a local ePUAP built on the same contract; [`store`] keeps the
//! portal database on SQLite or PostgreSQL; [`inbox`] moves documents from ePUAP boxes into
//! the store exactly once; [`jobs`] processes them afterwards; [`daemon`] supervises it all.

pub mod config;
pub mod cputime;
pub mod daemon;
pub mod delivery;
pub mod desk;
pub mod document;
pub mod edoreczenia;
pub mod emulator;
pub mod epuap;
pub mod forms;
pub mod identifiers;
pub mod inbox;
pub mod jobs;
pub mod notify;
pub mod pdf;
pub mod pki_http;
pub mod portal;
pub mod provisioning;
pub mod registers;
pub mod requests;
pub mod settings;
pub mod signature;
pub mod states;
pub mod store;
pub mod sync;
pub mod worker;
pub mod xml;
pub mod xmldsig;

/// Installs rustls' ring provider once (reqwest is built without a default provider so
/// that aws-lc-rs, which needs cmake, stays out of the build).
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}
