//! The emulator's inboxes: citizens' messages to an office's address, put in through the
//! admin API (`POST /admin/edoreczenia/inbox`), listed, read in full (which is the office's
//! receipt, set once) and deleted by the office's system. Each message is a file of its own,
//! written atomically, so a restarted emulator has the same box.

use std::path::{Path, PathBuf};

use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::mailbox::write_atomic;
use crate::edoreczenia::{Ade, wire};

/// A message waiting in (or deleted from) an office's inbox.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InboxMessage {
    pub seq: u64,
    pub message_id: String,
    /// The office's address.
    pub to: String,
    pub from: String,
    pub subject: String,
    pub text_body: String,
    /// Each file: name, content type, content (base64).
    pub files: Vec<InboxFile>,
    pub submitted_at: DateTime<Utc>,
    /// The office's first full read: its receipt in law.
    #[serde(default)]
    pub receipt_at: Option<DateTime<Utc>>,
    /// How many times it was read in full.
    #[serde(default)]
    pub fetches: u32,
    #[serde(default)]
    pub deleted_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InboxFile {
    pub filename: String,
    pub content_type: String,
    /// Base64.
    pub content: String,
}

/// What the admin API takes: a citizen's message to `to`.
#[derive(Debug, Clone, Deserialize)]
pub struct NewInboxMessage {
    pub to: String,
    pub from: String,
    pub subject: String,
    #[serde(default)]
    pub text_body: String,
    #[serde(default)]
    pub files: Vec<InboxFile>,
}

pub struct Inbox {
    dir: PathBuf,
    messages: Vec<InboxMessage>,
    next_seq: u64,
}

impl Inbox {
    pub fn open(dir: &Path) -> Result<Inbox, String> {
        let io = |e: std::io::Error| format!("emulator state {}: {e}", dir.display());
        std::fs::create_dir_all(dir).map_err(io)?;
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(io)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("json"))
            .collect();
        files.sort();
        let mut inbox = Inbox {
            dir: dir.to_path_buf(),
            messages: Vec::new(),
            next_seq: 1,
        };
        for file in files {
            let bytes = std::fs::read(&file).map_err(io)?;
            let message: InboxMessage =
                serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", file.display()))?;
            inbox.next_seq = inbox.next_seq.max(message.seq + 1);
            inbox.messages.push(message);
        }
        Ok(inbox)
    }

    fn save(&self, index: usize) -> Result<(), String> {
        let m = &self.messages[index];
        write_atomic(
            &self.dir.join(format!("{:012}.json", m.seq)),
            &serde_json::to_vec(m).expect("a message serializes"),
        )
    }

    /// Puts a citizen's message into an office's box; its message id.
    pub fn put(&mut self, new: NewInboxMessage, now: DateTime<Utc>) -> Result<String, String> {
        for (field, ade) in [("to", &new.to), ("from", &new.from)] {
            ade.parse::<Ade>().map_err(|e| format!("{field}: {e}"))?;
        }
        for (n, f) in new.files.iter().enumerate() {
            base64::engine::general_purpose::STANDARD
                .decode(f.content.as_bytes())
                .map_err(|e| format!("files[{n}] ({}): base64: {e}", f.filename))?;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let message_id = format!("in-{seq:08}-{:08x}", rand::random::<u32>());
        self.messages.push(InboxMessage {
            seq,
            message_id: message_id.clone(),
            to: new.to,
            from: new.from,
            subject: new.subject,
            text_body: new.text_body,
            files: new.files,
            submitted_at: now,
            receipt_at: None,
            fetches: 0,
            deleted_at: None,
        });
        self.save(self.messages.len() - 1)?;
        Ok(message_id)
    }

    /// The box of `office`: the messages not deleted, oldest first.
    pub fn list(&self, office: &str, offset: usize, limit: usize) -> wire::MessagesWrapper {
        let waiting: Vec<&InboxMessage> = self
            .messages
            .iter()
            .filter(|m| m.to == office && m.deleted_at.is_none())
            .collect();
        wire::MessagesWrapper {
            total: Some(waiting.len() as u64),
            messages: waiting
                .into_iter()
                .skip(offset)
                .take(limit)
                .map(|m| wire::Message {
                    message_metadata: wire::MessageMetadata {
                        message_id: Some(m.message_id.clone()),
                        ..wire::MessageMetadata::default()
                    },
                    ..wire::Message::default()
                })
                .collect(),
        }
    }

    /// Message `id` of `office` in full, files and all; the first read is the receipt.
    pub fn read_full(
        &mut self,
        office: &str,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<wire::Message, String> {
        let index = self
            .messages
            .iter()
            .position(|m| m.to == office && m.message_id == id && m.deleted_at.is_none())
            .ok_or_else(|| format!("no message {id} in {office}"))?;
        let m = &mut self.messages[index];
        m.fetches += 1;
        m.receipt_at.get_or_insert(now);
        let message = wire::Message {
            message_control_data: Some(wire::MessageControlData {
                opened: Some(true),
                message_type: Some("Message".into()),
                ..wire::MessageControlData::default()
            }),
            message_metadata: wire::MessageMetadata {
                from: Some(wire::MessageAddressData {
                    e_delivery_address: Some(m.from.clone()),
                    address: None,
                }),
                to: vec![wire::MessageAddressData {
                    e_delivery_address: Some(m.to.clone()),
                    address: None,
                }],
                subject: Some(m.subject.clone()),
                message_id: Some(m.message_id.clone()),
                submission_date: Some(m.submitted_at),
                receipt_date: m.receipt_at,
                ..wire::MessageMetadata::default()
            },
            text_body: Some(m.text_body.clone()),
            attachments: m
                .files
                .iter()
                .enumerate()
                .map(|(n, f)| {
                    let content = base64::engine::general_purpose::STANDARD
                        .decode(f.content.as_bytes())
                        .unwrap_or_default();
                    wire::Attachment {
                        order: Some(n as u32 + 1),
                        attachment_id: Some(format!("{}-{}", m.message_id, n + 1)),
                        file: wire::FileData {
                            file_metadata: wire::FileMetadata {
                                file_id: format!("{}-{}", m.message_id, n + 1),
                                filename: f.filename.clone(),
                                content_type: f.content_type.clone(),
                                size: content.len() as u64,
                                alg: wire::HASH_ALG.into(),
                                hash: wire::attachment_hash(&content),
                            },
                            file: Some(f.content.clone()),
                        },
                    }
                })
                .collect(),
            evidences: Vec::new(),
        };
        self.save(index)?;
        Ok(message)
    }

    /// Deletes message `id` from `office`'s box; `Err` when there is no such message (or it
    /// is gone already).
    pub fn delete(&mut self, office: &str, id: &str, now: DateTime<Utc>) -> Result<(), String> {
        let index = self
            .messages
            .iter()
            .position(|m| m.to == office && m.message_id == id && m.deleted_at.is_none())
            .ok_or_else(|| format!("no message {id} in {office}"))?;
        self.messages[index].deleted_at = Some(now);
        self.save(index)
    }

    pub fn all(&self) -> &[InboxMessage] {
        &self.messages
    }
}
