//! How the office's letters reach people: a [`DeliveryChannel`]. ePUAP's skrytka (`nadaj`,
//! with its UPP at once) is one; ePUAP's doręczyciel and e-Doręczenia (the legal channel for
//! official letters since 2026) sit beside it behind the same trait.
//!
//! Sending is not idempotent on the far side: a channel call whose answer is lost may have
//! delivered. Callers record the intent before calling and count a second call after an
//! uncertain outcome (docs/provisioning.md).

mod status;

pub use status::LetterStatus;

use std::future::Future;
use std::pin::Pin;

use chrono::{DateTime, Utc};

/// A sealed letter, ready to go.
#[derive(Debug, Clone)]
pub struct OutgoingLetter {
    /// The recipient's address on the channel (an ePUAP box address for ePUAP, an ADE for
    /// e-Doręczenia).
    pub recipient: String,
    /// The subject the recipient sees; it carries the reference, so that a letter whose send
    /// was interrupted can be found among the sent ones.
    pub subject: String,
    pub file_name: String,
    pub content: Vec<u8>,
    /// The office's reference (znak), for the recipient to spot a duplicate.
    pub reference: String,
    /// When the letter must be delivered by (channels with proof of delivery).
    pub deliver_by: Option<DateTime<Utc>>,
}

/// What the channel answered.
#[derive(Debug, Clone, Default)]
pub struct DeliveryReceipt {
    /// The channel's identifier of the letter (ePUAP: identyfikatorDokumentu).
    pub document_identifier: String,
    /// The proof of submission (ePUAP: UPP) and its identifier, when the channel gives one now.
    pub submission_proof_id: Option<String>,
    pub submission_proof: Option<Vec<u8>>,
    /// A proof of delivery (UPD) will arrive later, in the inbox.
    pub awaits_delivery_proof: bool,
    /// The channel's evidences are to be fetched for it (e-Doręczenia): the letter's legal
    /// state starts as `sent` and follows them.
    pub follows_evidence: bool,
}

/// What a channel found when asked whether a letter whose send was interrupted went out.
#[derive(Debug, Clone)]
pub enum Lookup {
    /// It went out: its receipt, as if the send had answered.
    Found(DeliveryReceipt),
    /// The channel was asked and does not have it.
    NotFound,
    /// The channel cannot be asked (ePUAP has no listing of what a box sent).
    CannotAsk,
}

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The channel refused the letter: retrying will not help.
    #[error("refused: {0}")]
    Refused(String),
    /// The channel did not take it (busy, unreachable, an error answer): a later try is safe.
    #[error("not sent: {0}")]
    NotSent(String),
    /// The outcome is unknown or the channel is unreachable: a retry may deliver twice.
    #[error("uncertain: {0}")]
    Uncertain(String),
}

pub type LookupFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Lookup, DeliveryError>> + Send + 'a>>;

pub type DeliveryFuture<'a> =
    Pin<Box<dyn Future<Output = Result<DeliveryReceipt, DeliveryError>> + Send + 'a>>;

pub trait DeliveryChannel: Send + Sync {
    /// The name stored with each letter (`outbound_document.channel`).
    fn name(&self) -> &'static str;
    fn deliver<'a>(&'a self, letter: &'a OutgoingLetter) -> DeliveryFuture<'a>;
    /// Whether `letter`, whose send was interrupted, went out after all; asked before an
    /// official is, never followed by a blind resend.
    fn find_sent<'a>(&'a self, _letter: &'a OutgoingLetter) -> LookupFuture<'a> {
        Box::pin(async { Ok(Lookup::CannotAsk) })
    }
}

/// An identifier the address database (BAE) is searched by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OfficialId {
    Pesel(String),
    Nip(String),
    Regon(String),
    Krs(String),
}

pub type AddressFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Option<String>, DeliveryError>> + Send + 'a>>;

/// Where an addressee's electronic delivery address is looked up (e-Doręczenia's BAE).
pub trait AddressBook: Send + Sync {
    /// The addressee's active address, if they have one.
    fn find<'a>(&'a self, id: &'a OfficialId) -> AddressFuture<'a>;
}

/// Letters by electronic delivery: the channel, and where addressees' addresses are found.
pub struct ElectronicDelivery {
    pub channel: std::sync::Arc<dyn DeliveryChannel>,
    /// The public hybrid service (letters on paper), through the same operator.
    pub hybrid: std::sync::Arc<dyn DeliveryChannel>,
    pub addresses: std::sync::Arc<dyn AddressBook>,
}

/// A postal address, for a letter that goes on paper (the public hybrid service).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PostalAddress {
    /// The street ("ul. Lipowa"), or the place's name where it has no streets.
    pub street: String,
    pub building: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flat: Option<String>,
    /// NN-NNN.
    pub postal_code: String,
    pub city: String,
}

/// A Polish postal code: NN-NNN.
pub fn is_postal_code(code: &str) -> bool {
    let code = code.as_bytes();
    code.len() == 6
        && code.iter().enumerate().all(|(i, c)| {
            if i == 2 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        })
}

impl PostalAddress {
    /// The address as printed on an envelope: "ul. Lipowa 3/5", "00-950 Warszawa".
    pub fn lines(&self) -> [String; 2] {
        let number = match &self.flat {
            Some(flat) => format!("{}/{flat}", self.building),
            None => self.building.clone(),
        };
        [
            format!("{} {number}", self.street),
            format!("{} {}", self.postal_code, self.city),
        ]
    }

    /// As the letter's recipient is stored (`outbound_document.recipient`): JSON.
    pub fn to_recipient(&self) -> String {
        serde_json::to_string(self).expect("a postal address serializes")
    }

    /// Read back from a stored recipient; the error names what is wrong.
    pub fn from_recipient(recipient: &str) -> Result<PostalAddress, String> {
        serde_json::from_str(recipient)
            .map_err(|e| format!("the recipient {recipient:?} is not a postal address: {e}"))
    }
}

/// How a letter may go, as `[delivery]` in config.toml names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Route {
    /// To the addressee's e-Doręczenia address (ADE).
    Edoreczenia,
    /// On paper, through the public hybrid service (PUH), to a postal address.
    Hybrid,
    /// Through ePUAP, to the reply address of the request: only where a law still allows it.
    Epuap,
}

impl Route {
    pub const fn as_str(self) -> &'static str {
        match self {
            Route::Edoreczenia => "edoreczenia",
            Route::Hybrid => "hybrid",
            Route::Epuap => "epuap",
        }
    }
}

impl std::fmt::Display for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An [`AddressBook`] whose answers (an address, or none) are reused for a while: the
/// address database is asked once per addressee per `keep`, not once per letter.
pub struct CachedAddressBook {
    inner: std::sync::Arc<dyn AddressBook>,
    keep: std::time::Duration,
    answers:
        std::sync::Mutex<std::collections::HashMap<String, (std::time::Instant, Option<String>)>>,
}

impl CachedAddressBook {
    pub fn new(inner: std::sync::Arc<dyn AddressBook>, keep: std::time::Duration) -> Self {
        CachedAddressBook {
            inner,
            keep,
            answers: std::sync::Mutex::default(),
        }
    }

    fn key(id: &OfficialId) -> String {
        match id {
            OfficialId::Pesel(v) => format!("pesel:{v}"),
            OfficialId::Nip(v) => format!("nip:{v}"),
            OfficialId::Regon(v) => format!("regon:{v}"),
            OfficialId::Krs(v) => format!("krs:{v}"),
        }
    }
}

/// Past this many answers kept, the stale ones are dropped.
const CACHE_PRUNE_AT: usize = 10_000;

impl AddressBook for CachedAddressBook {
    fn find<'a>(&'a self, id: &'a OfficialId) -> AddressFuture<'a> {
        Box::pin(async move {
            let key = Self::key(id);
            let now = std::time::Instant::now();
            {
                let mut answers = self.answers.lock().expect("address cache lock");
                match answers.get(&key) {
                    Some((at, answer)) if now.duration_since(*at) < self.keep => {
                        return Ok(answer.clone());
                    }
                    Some(_) => {
                        answers.remove(&key);
                    }
                    None => {}
                }
            }
            // An error is not kept: the next letter asks again.
            let answer = self.inner.find(id).await?;
            let mut answers = self.answers.lock().expect("address cache lock");
            if answers.len() >= CACHE_PRUNE_AT {
                answers.retain(|_, (at, _)| now.duration_since(*at) < self.keep);
            }
            answers.insert(key, (now, answer.clone()));
            Ok(answer)
        })
    }
}
