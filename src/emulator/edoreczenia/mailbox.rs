//! The emulator's mailboxes: the addresses it knows (with how their owners behave), the
//! messages sent, their tasks and their evidences over simulated time, kept on disk:
//! - `addresses.json`: addresses added through the admin API;
//! - `messages/<seq>.json`: each message sent, with the evidences issued for it;
//! - `evidences/<id>.xml`: each evidence as served, sealed.
//!
//! Files are written atomically (temporary file, fsync, rename).

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::UaSettings;
use crate::edoreczenia::evidence::{EvidenceCode, EvidenceDocument, evidence_xml};
use crate::edoreczenia::{Ade, wire};
use crate::xmldsig::SigningKey;

/// An address the emulator knows: its owner's identifiers (for the BAE search) and behaviour.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AddressEntry {
    pub ade: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub pesel: Option<String>,
    #[serde(default)]
    pub nip: Option<String>,
    #[serde(default)]
    pub regon: Option<String>,
    #[serde(default)]
    pub krs: Option<String>,
    /// How many days after D.1 the owner opens a letter; never, when absent.
    #[serde(default)]
    pub opens_after_days: Option<f64>,
}

/// The identifiers a BAE search is by.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct OfficialIds {
    pub pesel: Option<String>,
    pub nip: Option<String>,
    pub regon: Option<String>,
    pub krs: Option<String>,
}

/// An evidence issued for a message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IssuedEvidence {
    pub evidence_id: String,
    pub code: String,
    pub event_at: DateTime<Utc>,
}

/// A message sent, to one recipient.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SentMessage {
    pub seq: u64,
    pub message_id: String,
    pub task_id: String,
    pub from: String,
    /// The recipient's ADE; on paper (hybrid), the postal address on one line.
    pub to: String,
    /// On paper: the postal address the hybrid service posts it to.
    #[serde(default)]
    pub postal: Option<wire::Address>,
    pub subject: String,
    #[serde(default)]
    pub case_id: Option<String>,
    pub text_body: String,
    /// Each attachment: file name, size, SHA-256 (hex).
    pub attachments: Vec<(String, u64, String)>,
    pub submitted_at: DateTime<Utc>,
    #[serde(default)]
    pub opened_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub evidences: Vec<IssuedEvidence>,
}

/// What the admin API counts.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UaCounters {
    pub messages: u64,
    pub refused_sends: u64,
    pub task_polls: u64,
    pub evidence_listings: u64,
    pub injected_faults: u64,
    pub tokens_issued: u64,
    /// Searches of the address database (BAE).
    #[serde(default)]
    pub address_searches: u64,
}

pub struct Mailbox {
    dir: PathBuf,
    addresses: BTreeMap<String, AddressEntry>,
    messages: Vec<SentMessage>,
    by_task: HashMap<String, Vec<usize>>,
    /// When each task was made (a task made before a restart is finished).
    task_started: HashMap<String, Instant>,
    counters: UaCounters,
    next_seq: u64,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> String + '_ {
    move |e| format!("emulator state {}: {e}", path.display())
}

pub(super) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::File::create(&tmp).map_err(io(&tmp))?;
    file.write_all(bytes).map_err(io(&tmp))?;
    file.sync_all().map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

impl Mailbox {
    pub fn open(dir: &Path) -> Result<Mailbox, String> {
        for sub in ["messages", "evidences"] {
            std::fs::create_dir_all(dir.join(sub)).map_err(io(dir))?;
        }
        let mut mailbox = Mailbox {
            dir: dir.to_path_buf(),
            addresses: BTreeMap::new(),
            messages: Vec::new(),
            by_task: HashMap::new(),
            task_started: HashMap::new(),
            counters: UaCounters::default(),
            next_seq: 1,
        };
        let addresses = dir.join("addresses.json");
        if addresses.exists() {
            let bytes = std::fs::read(&addresses).map_err(io(&addresses))?;
            let list: Vec<AddressEntry> = serde_json::from_slice(&bytes)
                .map_err(|e| format!("{}: {e}", addresses.display()))?;
            for a in list {
                mailbox.addresses.insert(a.ade.clone(), a);
            }
        }
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("messages"))
            .map_err(io(dir))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("json"))
            .collect();
        files.sort();
        for file in files {
            let bytes = std::fs::read(&file).map_err(io(&file))?;
            let message: SentMessage =
                serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", file.display()))?;
            mailbox.next_seq = mailbox.next_seq.max(message.seq + 1);
            mailbox
                .by_task
                .entry(message.task_id.clone())
                .or_default()
                .push(mailbox.messages.len());
            mailbox.messages.push(message);
        }
        mailbox.counters.messages = mailbox.messages.len() as u64;
        Ok(mailbox)
    }

    /// Adds (or replaces) an address; `persist` keeps it across restarts (the configured ones
    /// are added at each start).
    pub fn add_address(&mut self, entry: AddressEntry, persist: bool) -> Result<(), String> {
        entry.ade.parse::<Ade>().map_err(|e| e.to_string())?;
        self.addresses.insert(entry.ade.clone(), entry);
        if persist {
            let list: Vec<&AddressEntry> = self.addresses.values().collect();
            write_atomic(
                &self.dir.join("addresses.json"),
                &serde_json::to_vec_pretty(&list).expect("addresses serialize"),
            )?;
        }
        Ok(())
    }

    pub fn counters(&self) -> UaCounters {
        self.counters.clone()
    }

    pub fn count_fault(&mut self) {
        self.counters.injected_faults += 1;
    }

    pub fn sent(&self) -> &[SentMessage] {
        &self.messages
    }

    fn save(&self, index: usize) -> Result<(), String> {
        let message = &self.messages[index];
        write_atomic(
            &self
                .dir
                .join("messages")
                .join(format!("{:012}.json", message.seq)),
            &serde_json::to_vec(message).expect("a message serializes"),
        )
    }

    /// Checks a message as the operator does and takes it: one message per recipient, one
    /// task for them all. The reason of a refusal names the field.
    /// A message to send: checked as the operator checks it, then one sent message per
    /// recipient under one task. `via_drafts`: assembled from a draft, which may exceed the
    /// 15 MB of a direct send.
    pub fn accept(
        &mut self,
        from: &str,
        message: wire::Message,
        now: DateTime<Utc>,
        settings: &UaSettings,
        via_drafts: bool,
    ) -> Result<String, String> {
        let refuse = |counters: &mut UaCounters, why: String| {
            counters.refused_sends += 1;
            Err(why)
        };
        let meta = &message.message_metadata;
        if meta.to.is_empty() || meta.to.len() > 15 {
            return refuse(
                &mut self.counters,
                format!("to: 1 to 15 recipients, not {}", meta.to.len()),
            );
        }
        let hybrid = meta.shipping_service == wire::ShippingService::Hybrid;
        if hybrid && let Err(why) = check_shipment(meta.hybrid_shipment.as_ref()) {
            return refuse(&mut self.counters, why);
        }
        let mut recipients = Vec::new();
        for (i, to) in meta.to.iter().enumerate() {
            if hybrid {
                match check_postal(i, to) {
                    Ok(address) => {
                        recipients.push((postal_line(&address), Some(address)));
                        continue;
                    }
                    Err(why) => return refuse(&mut self.counters, why),
                }
            }
            let Some(ade) = to.e_delivery_address.as_deref() else {
                return refuse(&mut self.counters, format!("to[{i}]: no eDeliveryAddress"));
            };
            if let Err(e) = ade.parse::<Ade>() {
                return refuse(&mut self.counters, format!("to[{i}]: {e}"));
            }
            if !self.addresses.contains_key(ade) {
                return refuse(
                    &mut self.counters,
                    format!("to[{i}]: {ade} is not an active address"),
                );
            }
            recipients.push((ade.to_string(), None));
        }
        let subject = meta.subject.clone().unwrap_or_default();
        if subject.trim().is_empty() {
            return refuse(&mut self.counters, "subject: required".into());
        }
        let text = message.text_body.clone().unwrap_or_default();
        if wire::text_body_units(&text) > wire::TEXT_BODY_LIMIT {
            return refuse(
                &mut self.counters,
                format!(
                    "textBody: {} characters, over {}",
                    wire::text_body_units(&text),
                    wire::TEXT_BODY_LIMIT
                ),
            );
        }
        let mut attachments = Vec::new();
        let mut total = 0u64;
        for (i, a) in message.attachments.iter().enumerate() {
            let m = &a.file.file_metadata;
            let content = match a
                .file
                .file
                .as_deref()
                .map(|f| base64::engine::general_purpose::STANDARD.decode(f))
            {
                Some(Ok(content)) => content,
                Some(Err(e)) => {
                    return refuse(&mut self.counters, format!("attachments[{i}].file: {e}"));
                }
                None => {
                    return refuse(
                        &mut self.counters,
                        format!("attachments[{i}].file: missing"),
                    );
                }
            };
            if content.len() as u64 != m.size {
                return refuse(
                    &mut self.counters,
                    format!(
                        "attachments[{i}]: size {} but {} bytes",
                        m.size,
                        content.len()
                    ),
                );
            }
            if m.alg != wire::HASH_ALG {
                return refuse(
                    &mut self.counters,
                    format!("attachments[{i}].alg: {:?}, only SHA-3", m.alg),
                );
            }
            if m.hash != wire::attachment_hash(&content) {
                return refuse(
                    &mut self.counters,
                    format!("attachments[{i}].hash: does not match the content"),
                );
            }
            let extension = m.filename.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
            if extension.is_empty() || extension != extension.to_lowercase() {
                return refuse(
                    &mut self.counters,
                    format!(
                        "attachments[{i}].filename: {:?}: a lower-case extension is required",
                        m.filename
                    ),
                );
            }
            if meta.shipping_service == wire::ShippingService::Hybrid && extension != "pdf" {
                return refuse(
                    &mut self.counters,
                    format!("attachments[{i}]: the hybrid service takes PDF only"),
                );
            }
            total += m.size;
            let sha256 = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&content));
            attachments.push((m.filename.clone(), m.size, sha256));
        }
        if total > wire::DIRECT_SEND_LIMIT && !via_drafts {
            return refuse(
                &mut self.counters,
                format!("attachments: {total} bytes, over 15 MB: send through drafts"),
            );
        }
        let task_id = format!("task-{:032x}", rand::random::<u128>());
        for (to, postal) in recipients {
            let seq = self.next_seq;
            self.next_seq += 1;
            self.messages.push(SentMessage {
                seq,
                message_id: format!("msg-{seq:08}-{:08x}", rand::random::<u32>()),
                task_id: task_id.clone(),
                from: from.to_string(),
                to,
                postal,
                subject: subject.clone(),
                case_id: meta.case_id.clone(),
                text_body: text.clone(),
                attachments: attachments.clone(),
                submitted_at: now - settings.backdate,
                opened_at: None,
                evidences: Vec::new(),
            });
            let index = self.messages.len() - 1;
            self.save(index)?;
            self.by_task.entry(task_id.clone()).or_default().push(index);
            self.counters.messages += 1;
        }
        self.task_started.insert(task_id.clone(), Instant::now());
        Ok(task_id)
    }

    fn task(&self, from: &str, task: &str) -> Option<&Vec<usize>> {
        self.by_task
            .get(task)
            .filter(|ix| ix.iter().all(|i| self.messages[*i].from == from))
    }

    pub fn task_status(
        &mut self,
        from: &str,
        task: &str,
        delay: Duration,
    ) -> Option<wire::TaskStatus> {
        self.counters.task_polls += 1;
        self.task(from, task)?;
        let pending = self
            .task_started
            .get(task)
            .is_some_and(|started| started.elapsed() < delay);
        Some(if pending {
            wire::TaskStatus::Pending
        } else {
            wire::TaskStatus::Finished
        })
    }

    pub fn task_result(&self, from: &str, task: &str) -> Option<Vec<wire::TaskResult>> {
        Some(
            self.task(from, task)?
                .iter()
                .map(|i| {
                    let m = &self.messages[*i];
                    wire::TaskResult {
                        message_id: Some(m.message_id.clone()),
                        addressee_ade: Some(m.to.clone()),
                        status: Some("OK".into()),
                        ..wire::TaskResult::default()
                    }
                })
                .collect(),
        )
    }

    pub fn list_sent(
        &self,
        from: &str,
        subject: Option<&str>,
        offset: usize,
        limit: usize,
    ) -> wire::MessagesWrapper {
        let matching: Vec<&SentMessage> = self
            .messages
            .iter()
            .filter(|m| m.from == from && subject.is_none_or(|s| m.subject.contains(s)))
            .collect();
        wire::MessagesWrapper {
            total: Some(matching.len() as u64),
            messages: matching
                .into_iter()
                .skip(offset)
                .take(limit)
                .map(|m| wire::Message {
                    message_metadata: wire::MessageMetadata {
                        from: Some(wire::MessageAddressData {
                            e_delivery_address: Some(m.from.clone()),
                            address: None,
                        }),
                        to: vec![match &m.postal {
                            Some(address) => wire::MessageAddressData {
                                e_delivery_address: None,
                                address: Some(address.clone()),
                            },
                            None => wire::MessageAddressData {
                                e_delivery_address: Some(m.to.clone()),
                                address: None,
                            },
                        }],
                        shipping_service: if m.postal.is_some() {
                            wire::ShippingService::Hybrid
                        } else {
                            wire::ShippingService::Electronic
                        },
                        subject: Some(m.subject.clone()),
                        message_id: Some(m.message_id.clone()),
                        case_id: m.case_id.clone(),
                        submission_date: Some(m.submitted_at),
                        ..wire::MessageMetadata::default()
                    },
                    ..wire::Message::default()
                })
                .collect(),
        }
    }

    /// The evidences due by `now` for one message, issued (sealed and kept) as they fall due:
    /// A.1 at the send, D.1 when it is in the recipient's box, E.1 when they open it.
    pub fn evidences(
        &mut self,
        from: &str,
        message_id: &str,
        now: DateTime<Utc>,
        key: &SigningKey,
        box_delay: Duration,
        paper_delivery: Duration,
    ) -> Result<Vec<wire::Evidence>, String> {
        self.counters.evidence_listings += 1;
        let index = self
            .messages
            .iter()
            .position(|m| m.message_id == message_id && m.from == from)
            .ok_or_else(|| format!("no message {message_id}"))?;
        let m = &self.messages[index];
        let d1 = m.submitted_at + chrono::TimeDelta::from_std(box_delay).unwrap_or_default();
        let opens = m.opened_at.or_else(|| {
            self.addresses
                .get(&m.to)
                .and_then(|a| a.opens_after_days)
                .map(|days| d1 + chrono::TimeDelta::milliseconds((days * 86_400_000.0) as i64))
        });
        let due = if m.postal.is_some() {
            // On paper: taken by the hybrid service (H.DW), printed and posted (H.PN) when
            // an electronic letter would be in the box, received (H.EPO, the electronic
            // acknowledgement of receipt) when the post has carried it, or when the admin
            // API says the addressee took it.
            let posted = d1;
            let received = m.opened_at.unwrap_or(
                posted + chrono::TimeDelta::from_std(paper_delivery).unwrap_or_default(),
            );
            vec![
                (EvidenceCode::HDw, m.submitted_at),
                (EvidenceCode::HPn, posted),
                (EvidenceCode::HEpo, received.max(posted)),
            ]
        } else {
            let mut due = vec![(EvidenceCode::A1, m.submitted_at), (EvidenceCode::D1, d1)];
            if let Some(opened) = opens {
                due.push((EvidenceCode::E1, opened.max(d1)));
            }
            due
        };
        let mut issued = false;
        for (code, at) in due {
            if at > now || m_has(&self.messages[index], code) {
                continue;
            }
            let m = &self.messages[index];
            let document = EvidenceDocument {
                evidence_id: format!("ev-{}-{}", m.message_id, code.as_str().replace('.', "")),
                code,
                event_time: at,
                message_id: m.message_id.clone(),
            };
            let xml = evidence_xml(&document, &m.from, &m.to);
            // Sealed on the wall clock: the simulated clock moves events, not the
            // certificate's validity.
            let sealed = crate::signature::seal::xades_enveloped(&xml, key, Utc::now(), "dowod")
                .map_err(|e| format!("sealing an evidence: {e}"))?;
            write_atomic(
                &self
                    .dir
                    .join("evidences")
                    .join(format!("{}.xml", document.evidence_id)),
                &sealed,
            )?;
            self.messages[index].evidences.push(IssuedEvidence {
                evidence_id: document.evidence_id,
                code: code.as_str().to_string(),
                event_at: at,
            });
            issued = true;
        }
        if issued {
            self.save(index)?;
        }
        let m = &self.messages[index];
        Ok(m.evidences
            .iter()
            .map(|e| wire::Evidence {
                evidence_id: e.evidence_id.clone(),
                message_id: m.message_id.clone(),
                create_date: Some(e.event_at),
                event_date: Some(e.event_at),
                kind: e.code.clone(),
                external_data: None,
                downloaded: None,
            })
            .collect())
    }

    /// An evidence's XML, asked for under its service (`purde` electronic, `puh` paper).
    pub fn evidence_file(
        &self,
        from: &str,
        service: wire::ShippingService,
        evidence_id: &str,
    ) -> Result<Vec<u8>, String> {
        let known = self.messages.iter().any(|m| {
            m.from == from
                && (m.postal.is_some() == (service == wire::ShippingService::Hybrid))
                && m.evidences.iter().any(|e| e.evidence_id == evidence_id)
        });
        if !known {
            return Err(format!("no evidence {evidence_id}"));
        }
        let path = self
            .dir
            .join("evidences")
            .join(format!("{evidence_id}.xml"));
        std::fs::read(&path).map_err(io(&path))
    }

    /// The recipient opens the message now (the admin API): E.1 follows.
    pub fn open_message(&mut self, message_id: &str, now: DateTime<Utc>) -> Result<(), String> {
        let index = self
            .messages
            .iter()
            .position(|m| m.message_id == message_id)
            .ok_or_else(|| format!("no message {message_id}"))?;
        if self.messages[index].opened_at.is_none() {
            self.messages[index].opened_at = Some(now);
            self.save(index)?;
        }
        Ok(())
    }

    /// The BAE search: the addresses of the owner with these identifiers.
    pub fn search(&mut self, ids: &OfficialIds) -> Vec<serde_json::Value> {
        self.counters.address_searches += 1;
        let same = |a: &Option<String>, b: &Option<String>| a.is_some() && a == b;
        self.addresses
            .values()
            .filter(|a| {
                same(&a.pesel, &ids.pesel)
                    || same(&a.nip, &ids.nip)
                    || same(&a.regon, &ids.regon)
                    || same(&a.krs, &ids.krs)
            })
            .map(|a| {
                serde_json::json!({
                    "eDeliveryAddress": a.ade,
                    "name": a.name,
                    "status": "ACTIVE",
                    "isPublic": false,
                })
            })
            .collect()
    }
}

/// `hybridShipment` of a hybrid send: present, with the values the API allows.
fn check_shipment(shipment: Option<&wire::HybridShipment>) -> Result<(), String> {
    let Some(h) = shipment else {
        return Err("hybridShipment: required when shippingService is hybrid".into());
    };
    let fields: [(&str, &str, &[&str]); 6] = [
        (
            "procedingType",
            &h.proceding_type,
            &[
                "general",
                "administrative",
                "tax",
                "court_civil",
                "court_criminal",
            ],
        ),
        (
            "categoryService",
            &h.category_service,
            &["economic", "priority"],
        ),
        ("printingMode", &h.printing_mode, &["duplex", "simplex"]),
        ("overprintMode", &h.overprint_mode, &["monochrome", "color"]),
        (
            "returnService",
            &h.return_service,
            &["returntosender", "destroy"],
        ),
        (
            "shippingMode",
            &h.shipping_mode,
            &["registered", "notRegistered"],
        ),
    ];
    for (name, value, allowed) in fields {
        if !allowed.contains(&value) {
            return Err(format!(
                "hybridShipment.{name}: {value:?} is not one of {}",
                allowed.join(", ")
            ));
        }
    }
    Ok(())
}

/// A hybrid recipient: a postal address in Poland with its required fields.
fn check_postal(i: usize, to: &wire::MessageAddressData) -> Result<wire::Address, String> {
    let Some(address) = &to.address else {
        return Err(format!(
            "to[{i}]: the hybrid service needs a postal address (address)"
        ));
    };
    for (name, value) in [
        ("country", &address.country),
        ("street", &address.street),
        ("postalCode", &address.postal_code),
        ("city", &address.city),
    ] {
        if value.trim().is_empty() {
            return Err(format!("to[{i}].address.{name}: required"));
        }
    }
    if address.country == "PL" && !crate::delivery::is_postal_code(&address.postal_code) {
        return Err(format!(
            "to[{i}].address.postalCode: {:?} is not NN-NNN",
            address.postal_code
        ));
    }
    Ok(address.clone())
}

fn postal_line(a: &wire::Address) -> String {
    format!(
        "{} {}, {} {}",
        a.street,
        a.building_number.as_deref().unwrap_or(""),
        a.postal_code,
        a.city
    )
}

fn m_has(m: &SentMessage, code: EvidenceCode) -> bool {
    m.evidences.iter().any(|e| e.code == code.as_str())
}
