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
    /// The recipient's address on the channel (an ePUAP box address for ePUAP).
    pub recipient: String,
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
}

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The channel refused the letter: retrying will not help.
    #[error("refused: {0}")]
    Refused(String),
    /// The outcome is unknown or the channel is unreachable: a retry may deliver twice.
    #[error("uncertain: {0}")]
    Uncertain(String),
}

pub type DeliveryFuture<'a> =
    Pin<Box<dyn Future<Output = Result<DeliveryReceipt, DeliveryError>> + Send + 'a>>;

pub trait DeliveryChannel: Send + Sync {
    /// The name stored with each letter (`outbound_document.channel`).
    fn name(&self) -> &'static str;
    fn deliver<'a>(&'a self, letter: &'a OutgoingLetter) -> DeliveryFuture<'a>;
}
