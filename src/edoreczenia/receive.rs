//! The office's e-Doręczenia inbox: citizens' messages moved into the store exactly once.
//!
//! The order is list (`label=INBOX`) → fetch in full → store (one committed transaction,
//! which also enqueues the `verify` job) → delete. A message is deleted only after its
//! commit, so a crash before the deletion makes the next pass fetch it again, and the
//! store's identity key (office address and message id) turns that second fetch into a
//! no-op. A deletion whose answer was lost is asked again (a message already gone counts as
//! deleted).
//!
//! A message that cannot be read (its JSON, a file's base64, or a file whose SHA-3 differs
//! from the metadata) is left in the box, logged with its id and what is wrong, and tried
//! again next pass; the other messages go on.

use base64::Engine;
use chrono::Utc;

use super::client::UaClient;
use super::wire;
use crate::document::{ReceivedFile, ReceivedMessage};
use crate::store::Store;
use crate::worker::{Pass, Worker};

pub struct InboxReceiver {
    pub store: Store,
    pub client: UaClient,
    /// Messages listed per pass.
    pub batch: u32,
}

/// What a pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    pub listed: u32,
    /// Stored for the first time.
    pub stored: u32,
    /// Fetched again after a crash or a lost deletion, and recognised.
    pub duplicates: u32,
    pub deleted: u32,
    /// Messages that could not be had or read this time (left in the box).
    pub failed: u32,
}

/// Why a received message cannot be taken.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Unreadable {
    #[error("message {message}: {what}")]
    Field { message: String, what: String },
}

/// A received message as the domain takes it, checked: each file's content decodes from
/// base64, and its SHA-3 is the metadata's.
pub fn read_received(
    office: &str,
    message: &wire::Message,
    received_at: chrono::DateTime<Utc>,
) -> Result<ReceivedMessage, Unreadable> {
    let meta = &message.message_metadata;
    let id = meta.message_id.clone().unwrap_or_default();
    let bad = |what: String| Unreadable::Field {
        message: if id.is_empty() {
            "(no messageId)".into()
        } else {
            id.clone()
        },
        what,
    };
    if id.is_empty() {
        return Err(bad("messageMetadata.messageId is missing".into()));
    }
    let sender = meta
        .from
        .as_ref()
        .and_then(|f| f.e_delivery_address.clone())
        .ok_or_else(|| bad("messageMetadata.from.eDeliveryAddress is missing".into()))?;
    let mut files = Vec::new();
    for (n, a) in message.attachments.iter().enumerate() {
        let m = &a.file.file_metadata;
        let Some(encoded) = &a.file.file else {
            return Err(bad(format!(
                "attachments[{n}] ({}): no content (format=fullExtended carries it)",
                m.filename
            )));
        };
        let content = base64::engine::general_purpose::STANDARD
            .decode(encoded.as_bytes())
            .map_err(|e| bad(format!("attachments[{n}] ({}): base64: {e}", m.filename)))?;
        if m.alg == wire::HASH_ALG && m.hash != wire::attachment_hash(&content) {
            return Err(bad(format!(
                "attachments[{n}] ({}): the content's SHA-3 is not the metadata's hash",
                m.filename
            )));
        }
        files.push(ReceivedFile {
            name: m.filename.clone(),
            content_type: m.content_type.clone(),
            content,
        });
    }
    Ok(ReceivedMessage {
        office_address: office.to_string(),
        message_id: id,
        sender_address: sender,
        subject: meta.subject.clone().unwrap_or_default(),
        text_body: message.text_body.clone().unwrap_or_default(),
        received_at: meta.receipt_date.unwrap_or(received_at),
        files,
    })
}

impl InboxReceiver {
    /// One pass over the inbox.
    pub async fn receive(&self) -> anyhow::Result<Received> {
        let mut done = Received::default();
        let ids = self.client.inbox(self.batch).await?;
        for id in ids {
            done.listed += 1;
            let message = match self.client.received(&id).await {
                Ok(Some(message)) => message,
                Ok(None) => {
                    tracing::info!(message = %id, "e-Doręczenia is still preparing the message; fetched again later");
                    done.failed += 1;
                    continue;
                }
                Err(e) => {
                    tracing::warn!(message = %id, error = %e, "a received message could not be fetched; it stays in the box");
                    done.failed += 1;
                    continue;
                }
            };
            let received = match read_received(self.client.ade().as_str(), &message, Utc::now()) {
                Ok(r) if r.message_id == id => r,
                Ok(r) => {
                    tracing::warn!(message = %id, answered = %r.message_id, "the operator answered another message than the one asked; it stays in the box");
                    done.failed += 1;
                    continue;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "a received message cannot be read; it stays in the box");
                    done.failed += 1;
                    continue;
                }
            };
            // Stored (committed) before the operator is told to delete it. A store outage
            // ends the pass: nothing is deleted that is not stored.
            let stored = self.store.store_received(&received).await?;
            if stored.new {
                done.stored += 1;
                tracing::info!(message = %id, document = stored.id, from = %received.sender_address, "a message received through e-Doręczenia was stored");
            } else {
                done.duplicates += 1;
            }
            match self.client.delete_received(&id).await {
                Ok(()) => {
                    self.store.mark_received_deleted(stored.id).await?;
                    done.deleted += 1;
                }
                Err(e) => {
                    tracing::warn!(message = %id, document = stored.id, error = %e, "a stored message could not be deleted from the box; asked again next pass");
                    done.failed += 1;
                }
            }
        }
        Ok(done)
    }
}

impl Worker for InboxReceiver {
    fn name(&self) -> String {
        format!("e-Doręczenia inbox {}", self.client.ade().as_str())
    }

    async fn step(&mut self) -> anyhow::Result<Pass> {
        let done = self.receive().await?;
        Ok(if done.stored + done.duplicates > 0 {
            Pass::Worked
        } else {
            Pass::Idle
        })
    }
}
