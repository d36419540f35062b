//! The emulator's durable state: a FIFO queue per box, the documents sent with `nadaj`, and
//! counters. Each document is one file, written atomically (temporary file, fsync, rename),
//! so the emulator survives restarts and a crash never leaves half a document.
//!
//! Layout of the state directory:
//! - `boxes/<hex of box address>/<seq>.json`: queued documents, oldest first by `seq`;
//! - `outbox/<seq>.json`: documents received with `nadaj`;
//! - `counters.json`.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::document::PulledDocument;
use crate::epuap::soap::{BoxRef, NadajRequest};

/// What the admin API reports.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Counters {
    /// `pobierzNastepny` answers that carried a document.
    pub delivered: u64,
    /// `potwierdzOdebranie` calls that removed the head.
    pub confirmed: u64,
    /// `potwierdzOdebranie` calls whose `skrot` did not match the head (or an empty box).
    pub wrong_confirmations: u64,
    pub nadaj_calls: u64,
    /// Requests refused at WS-Security.
    pub rejected_requests: u64,
    /// Faults injected by the fault plan.
    pub injected_faults: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct QueuedFile {
    seq: u64,
    mailbox: BoxRef,
    document: PulledDocument,
}

/// A document received with `nadaj`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutboxEntry {
    pub seq: u64,
    pub identyfikator_dokumentu: String,
    pub identyfikator_upp: String,
    pub received_at: String,
    pub request: NadajRequest,
    /// Set for `dorecz`: the delivery order and what the UPD will certify.
    #[serde(default)]
    pub dorecz: Option<DoreczOrder>,
}

/// A delivery with proof (`dorecz`), until the recipient opens it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct DoreczOrder {
    pub identyfikator_zlecenia: String,
    pub termin_doreczenia: String,
    /// The sender's own identifiers, which the UPD repeats.
    pub identyfikator_dokumentu: String,
    pub identyfikator_sprawy: String,
    /// When the recipient opened it (the UPD was made then).
    #[serde(default)]
    pub opened_at: Option<String>,
}

/// The in-memory view, mirrored on disk.
pub struct State {
    dir: PathBuf,
    boxes: HashMap<String, (BoxRef, BTreeMap<u64, PulledDocument>)>,
    pub counters: Counters,
    outbox: Vec<OutboxEntry>,
    next_seq: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("emulator state {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("emulator state {path}: {message}")]
    Corrupt { path: String, message: String },
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> StateError + '_ {
    move |source| StateError::Io {
        path: path.display().to_string(),
        source,
    }
}

impl State {
    /// Opens (or creates) the state directory. Returns the state and whether it was new.
    pub fn open(dir: &Path) -> Result<(State, bool), StateError> {
        let fresh = !dir.join("counters.json").exists();
        for sub in ["boxes", "outbox"] {
            std::fs::create_dir_all(dir.join(sub)).map_err(io_error(dir))?;
        }
        let mut state = State {
            dir: dir.to_path_buf(),
            boxes: HashMap::new(),
            counters: Counters::default(),
            outbox: Vec::new(),
            next_seq: 1,
        };
        if !fresh {
            let path = dir.join("counters.json");
            state.counters = read_json(&path)?;
        }
        for entry in std::fs::read_dir(dir.join("boxes")).map_err(io_error(dir))? {
            let box_dir = entry.map_err(io_error(dir))?.path();
            for file in json_files(&box_dir)? {
                let queued: QueuedFile = read_json(&file)?;
                state.next_seq = state.next_seq.max(queued.seq + 1);
                state
                    .boxes
                    .entry(queued.mailbox.adres.clone())
                    .or_insert_with(|| (queued.mailbox.clone(), BTreeMap::new()))
                    .1
                    .insert(queued.seq, queued.document);
            }
        }
        for file in json_files(&dir.join("outbox"))? {
            let entry: OutboxEntry = read_json(&file)?;
            state.next_seq = state.next_seq.max(entry.seq + 1);
            state.outbox.push(entry);
        }
        state.outbox.sort_by_key(|e| e.seq);
        if fresh {
            state.save_counters()?;
        }
        Ok((state, fresh))
    }

    fn box_dir(&self, adres: &str) -> PathBuf {
        self.dir.join("boxes").join(hex::encode(adres.as_bytes()))
    }

    /// Makes sure a box exists (an empty queue) without touching its documents.
    pub fn ensure_box(&mut self, mailbox: &BoxRef) {
        self.boxes
            .entry(mailbox.adres.clone())
            .or_insert_with(|| (mailbox.clone(), BTreeMap::new()));
    }

    /// The configured box for `adres`, if any.
    pub fn mailbox(&self, adres: &str) -> Option<&BoxRef> {
        self.boxes.get(adres).map(|(b, _)| b)
    }

    /// Appends a document to a box's queue (creating the box). Returns its sequence number.
    pub fn enqueue(
        &mut self,
        mailbox: &BoxRef,
        document: PulledDocument,
    ) -> Result<u64, StateError> {
        let seq = self.next_seq;
        let dir = self.box_dir(&mailbox.adres);
        std::fs::create_dir_all(&dir).map_err(io_error(&dir))?;
        let file = QueuedFile {
            seq,
            mailbox: mailbox.clone(),
            document,
        };
        write_json(&dir.join(format!("{seq:012}.json")), &file)?;
        self.next_seq += 1;
        self.ensure_box(mailbox);
        self.boxes
            .get_mut(&mailbox.adres)
            .expect("just ensured")
            .1
            .insert(seq, file.document);
        Ok(seq)
    }

    /// The head of a box's queue.
    pub fn head(&self, adres: &str) -> Option<(u64, &PulledDocument)> {
        self.boxes
            .get(adres)
            .and_then(|(_, q)| q.iter().next())
            .map(|(s, d)| (*s, d))
    }

    pub fn pending(&self, adres: &str) -> u64 {
        self.boxes
            .get(adres)
            .map(|(_, q)| q.len() as u64)
            .unwrap_or(0)
    }

    /// Removes the head of a box's queue.
    pub fn remove(&mut self, adres: &str, seq: u64) -> Result<(), StateError> {
        let path = self.box_dir(adres).join(format!("{seq:012}.json"));
        std::fs::remove_file(&path).map_err(io_error(&path))?;
        if let Some((_, queue)) = self.boxes.get_mut(adres) {
            queue.remove(&seq);
        }
        Ok(())
    }

    /// Records a document received with `nadaj`; returns the entry with its identifiers.
    pub fn record_nadaj(
        &mut self,
        request: NadajRequest,
        received_at: String,
    ) -> Result<OutboxEntry, StateError> {
        self.record_outgoing(request, received_at, None)
    }

    pub fn record_outgoing(
        &mut self,
        request: NadajRequest,
        received_at: String,
        dorecz: Option<DoreczOrder>,
    ) -> Result<OutboxEntry, StateError> {
        let seq = self.next_seq;
        let entry = OutboxEntry {
            seq,
            identyfikator_dokumentu: format!("EMU-DOK-{seq:08}"),
            identyfikator_upp: format!("EMU-UPP-{seq:08}"),
            received_at,
            request,
            dorecz: dorecz.map(|mut d| {
                d.identyfikator_zlecenia = format!("EMU-ZLC-{seq:08}");
                d
            }),
        };
        write_json(
            &self.dir.join("outbox").join(format!("{seq:012}.json")),
            &entry,
        )?;
        self.next_seq += 1;
        self.outbox.push(entry.clone());
        Ok(entry)
    }

    pub fn outbox(&self) -> &[OutboxEntry] {
        &self.outbox
    }

    /// Marks a delivery order opened; returns its entry (None: no such unopened order).
    pub fn open_delivery(
        &mut self,
        zlecenie: &str,
        at: String,
    ) -> Result<Option<OutboxEntry>, StateError> {
        let Some(entry) = self.outbox.iter_mut().find(|e| {
            e.dorecz
                .as_ref()
                .is_some_and(|d| d.identyfikator_zlecenia == zlecenie && d.opened_at.is_none())
        }) else {
            return Ok(None);
        };
        if let Some(d) = entry.dorecz.as_mut() {
            d.opened_at = Some(at);
        }
        let entry = entry.clone();
        write_json(
            &self
                .dir
                .join("outbox")
                .join(format!("{:012}.json", entry.seq)),
            &entry,
        )?;
        Ok(Some(entry))
    }

    /// Pending counts per box address.
    pub fn pending_by_box(&self) -> BTreeMap<String, u64> {
        self.boxes
            .iter()
            .map(|(a, (_, q))| (a.clone(), q.len() as u64))
            .collect()
    }

    pub fn save_counters(&self) -> Result<(), StateError> {
        write_json(&self.dir.join("counters.json"), &self.counters)
    }
}

fn json_files(dir: &Path) -> Result<Vec<PathBuf>, StateError> {
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_error(dir))? {
        let path = entry.map_err(io_error(dir))?.path();
        if path.extension().and_then(|e| e.to_str()) == Some("json") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, StateError> {
    let bytes = std::fs::read(path).map_err(io_error(path))?;
    serde_json::from_slice(&bytes).map_err(|e| StateError::Corrupt {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), StateError> {
    let tmp = path.with_extension("tmp");
    let bytes = serde_json::to_vec(value).expect("state serializes");
    let mut file = std::fs::File::create(&tmp).map_err(io_error(&tmp))?;
    file.write_all(&bytes).map_err(io_error(&tmp))?;
    file.sync_all().map_err(io_error(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io_error(path))
}
