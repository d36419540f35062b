//! Applying a register file: one transaction per run.
//!
//! - Rows are read and checked on a blocking thread, and arrive in batches.
//! - Each row is compared by its hash with the row already stored (`keys`). Unchanged rows
//!   are not written.
//! - New and changed rows are written through the backend's fastest path (`sqlite`,
//!   `postgres`).
//! - In full-snapshot mode, the rows that disappeared are deleted.
//!
//! A bad row aborts the run: nothing is applied, the previous data stays, and a failed
//! `sync_run` records where and why. docs/import-formats.md describes a run for operators.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use sha2::Digest;
use sqlx::Row as _;

use rustc_hash::FxHashMap;

use super::{Begin, Store, StoreError};
use crate::registers::csv_source::{FileEncoding, Row, RowError};
use crate::registers::{Kind, Register, Value, register, row_hash_with};
use crate::registers::{RowSource, open_rows};

mod balances;
mod idset;
mod keys;
mod postgres;
mod sqlite;

use idset::IdSet;
use keys::{Known, Standing};

const BATCH: usize = 1000;

/// How many register files this process is applying right now. The portal's read API
/// admits fewer reads at once while one is (src/portal.rs), so that a crowd of pages does
/// not starve the sync of the CPU; the reads themselves never wait for the sync's locks.
static APPLYING: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Whether this process is applying a register file now.
pub fn applying() -> bool {
    APPLYING.load(std::sync::atomic::Ordering::Relaxed) > 0
}

/// Counts one file being applied, for as long as it lives.
struct Applying;

impl Applying {
    fn start() -> Applying {
        APPLYING.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Applying
    }
}

impl Drop for Applying {
    fn drop(&mut self) {
        APPLYING.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Full snapshot (rows missing from the file are deleted) or incremental (upserts only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SyncMode {
    #[default]
    Full,
    Incremental,
}

impl SyncMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SyncMode::Full => "full",
            SyncMode::Incremental => "incremental",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SyncCounts {
    pub rows: u64,
    pub inserted: u64,
    pub updated: u64,
    pub deleted: u64,
    pub unchanged: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncOutcome {
    Applied {
        run_id: i64,
        counts: SyncCounts,
    },
    /// This very file (by checksum) was applied before.
    AlreadyApplied {
        run_id: i64,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("{0}")]
    Row(#[from] RowError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Other(String),
}

impl From<crate::store::sqlite_raw::RawError> for SyncError {
    fn from(error: crate::store::sqlite_raw::RawError) -> SyncError {
        SyncError::Other(error.message)
    }
}

impl From<sqlx::Error> for SyncError {
    fn from(e: sqlx::Error) -> Self {
        SyncError::Store(StoreError::Database(e))
    }
}

/// A checked row with its id key, its row hash and its reference keys, all computed on the
/// reader's thread.
struct Keyed {
    row: Row,
    key: u128,
    hash: i64,
    /// The id keys of the row's references, in the order of the register's `Ref` columns.
    refs: [Option<u128>; MAX_REFS],
}

/// The most `Ref` columns a register has (a test holds every register to it).
const MAX_REFS: usize = 2;

/// The id keys of a row's references, in the order of its register's `Ref` columns.
fn reference_keys(register: &Register, values: &[Value]) -> [Option<u128>; MAX_REFS] {
    let mut keys = [None; MAX_REFS];
    let refs = register
        .columns
        .iter()
        .zip(values)
        .filter(|(column, _)| matches!(column.kind, Kind::Ref(_)));
    for (slot, (_, value)) in keys.iter_mut().zip(refs) {
        if let Value::Text(Some(id)) = value {
            *slot = Some(id_key(id.as_bytes()));
        }
    }
    keys
}

/// The batches of a file's rows as the reader sends them, and the way back for the rows
/// once compared (or written): the reader thread fills them again with the next rows, so
/// that a run allocates about as many rows as it holds at once, and never frees one on
/// another thread than the one that allocated it (which costs several times more).
struct Batches {
    rows: tokio::sync::mpsc::Receiver<Result<Vec<Keyed>, RowError>>,
    spent: std::sync::mpsc::Sender<Vec<Row>>,
}

/// Batches the reader may run ahead of the comparison.
const READ_AHEAD: usize = 32;

/// Streams the file's rows in batches from a blocking thread. The reader may run
/// `READ_AHEAD` batches ahead, while the stored hashes load.
fn spawn_reader(
    register: &'static Register,
    rows: Box<dyn RowSource>,
) -> (Batches, tokio::task::JoinHandle<()>) {
    let (tx, rx) = tokio::sync::mpsc::channel(READ_AHEAD);
    let (spent, spent_rows) = std::sync::mpsc::channel::<Vec<Row>>();
    let task = tokio::task::spawn_blocking(move || {
        read_batches(register, rows, tx, spent_rows);
        // The rows were freed on this thread, which goes back to tokio's pool.
        release_freed_memory();
    });
    (Batches { rows: rx, spent }, task)
}

/// Hands the memory this thread freed back to the system. With mimalloc (the `eurzad`
/// binary's allocator) a thread keeps its freed pages for itself until it ends, and
/// tokio's threads live on (the sync bench's peak RSS went from 190–232 MiB to 158–182
/// MiB with this). A no-op for memory mimalloc never gave (another allocator, as in tests).
fn release_freed_memory() {
    // SAFETY: mi_collect only releases this thread's free memory.
    unsafe { libmimalloc_sys::mi_collect(true) };
}

/// The reader's loop: rows in batches of `BATCH`, filling again on the way the rows that
/// come back.
fn read_batches(
    register: &'static Register,
    mut rows: Box<dyn RowSource>,
    tx: tokio::sync::mpsc::Sender<Result<Vec<Keyed>, RowError>>,
    spent_rows: std::sync::mpsc::Receiver<Vec<Row>>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut scratch = Vec::with_capacity(256);
    // Rows that came back, to be filled again: their strings and vectors are reused.
    let mut free: Vec<Row> = Vec::new();
    loop {
        if batch.is_empty() {
            while let Ok(rows) = spent_rows.try_recv() {
                free.extend(rows);
            }
        }
        let mut row = free.pop().unwrap_or_default();
        match rows.next_row_into(&mut row) {
            None => break,
            Some(Ok(())) => {
                batch.push(Keyed {
                    key: id_key(row.id.as_bytes()),
                    hash: row_hash_with(&mut scratch, &row.id, &row.values),
                    refs: reference_keys(register, &row.values),
                    row,
                });
                if batch.len() == BATCH
                    && tx
                        .blocking_send(Ok(std::mem::replace(&mut batch, Vec::with_capacity(BATCH))))
                        .is_err()
                {
                    return;
                }
            }
            Some(Err(e)) => {
                let _ = tx.blocking_send(Err(e));
                return;
            }
        }
    }
    if !batch.is_empty() {
        let _ = tx.blocking_send(Ok(batch));
    }
}

fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = sha2::Sha256::new();
    std::io::copy(&mut file, &mut hasher)?;
    Ok(hex::encode(hasher.finalize()))
}

/// Ids are kept as 128-bit hashes (XXH3-128): a million keys fit in 16 MB instead of
/// carrying a String each, and a collision would need about 2^64 keys. Only held in memory
/// during a run.
fn id_key(id: &[u8]) -> u128 {
    xxhash_rust::xxh3::xxh3_128(id)
}

/// The ids each referenced register holds, by register name.
type References = FxHashMap<&'static str, Arc<IdSet>>;

/// One run's fixed facts, shared by the backends, and the row hashes of its file in file
/// order (for the register's digest).
struct RunContext<'a> {
    register: &'static Register,
    /// The file and how it is read, to read it again for an error's place.
    path: &'a Path,
    encoding: FileEncoding,
    file_name: &'a str,
    clock: Instant,
    /// The file's row hashes in file order, little-endian: the register's next digest.
    file_hashes: std::sync::Mutex<Vec<u8>>,
    /// Whether the stored rows were checked against the referenced data as it is now, so
    /// that an unchanged row's references need no check (`Checked`).
    unchanged_checked: bool,
}

impl RunContext<'_> {
    /// The table's columns in write order: `id`, the register's columns, `row_hash`.
    fn columns(&self) -> Vec<&'static str> {
        std::iter::once("id")
            .chain(self.register.columns.iter().map(|c| c.sql))
            .chain(std::iter::once("row_hash"))
            .collect()
    }

    /// `c = excluded.c` for every column but `id`.
    fn update_set(&self) -> String {
        self.columns()[1..]
            .iter()
            .map(|c| format!("{c} = excluded.{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The registers this one refers to, with their tables.
    fn referenced(&self) -> Result<Vec<(&'static str, &'static str)>, SyncError> {
        let mut out = Vec::new();
        for column in self.register.columns {
            if let Kind::Ref(target) = column.kind
                && !out.iter().any(|(name, _)| *name == target)
            {
                let table = register(target)
                    .map(|r| r.table)
                    .ok_or_else(|| SyncError::Other(format!("unknown register {target}")))?;
                out.push((target, table));
            }
        }
        Ok(out)
    }

    fn loaded(&self, known: &Known) {
        tracing::info!(
            register = self.register.name,
            stored = known.stored(),
            seconds = self.clock.elapsed().as_secs_f64(),
            "stored keys and references loaded"
        );
    }
}

/// How a backend reads keys and row hashes fastest.
trait KeyReader {
    /// Reads `SELECT <text id>, <bigint> …` into `each(id key, value)`.
    async fn read_keys(
        &mut self,
        query: &str,
        each: impl FnMut(u128, i64),
    ) -> Result<(), SyncError>;

    /// The row hashes of `table`, in stored order.
    async fn read_hashes(&mut self, table: &str) -> Result<Vec<i64>, SyncError>;
}

/// A register's digest, if its latest done run wrote it.
const DIGEST: &str = "SELECT d.hashes FROM register_digest d WHERE d.register = $1 AND d.run_id = \
     (SELECT MAX(r.id) FROM sync_run r WHERE r.register = $1 AND r.status = 'done')";

/// Which stored rows of a register were checked against which referenced data, as the
/// XXH3-128 of the digest a run left and the fingerprints of the referenced registers'
/// digests it checked against. A run that finds both the same need not check the
/// references of its unchanged rows: they are the very rows checked then (the digest's row
/// hashes cover them, and any other write deletes it), against the very ids (the
/// fingerprints cover those). Held by the process, one entry per register.
struct Checked {
    register: &'static str,
    digest: u128,
    referenced: Vec<u128>,
}

static CHECKED: std::sync::Mutex<Vec<Checked>> = std::sync::Mutex::new(Vec::new());

impl Checked {
    fn holds(register: &str, digest: Option<u128>, referenced: Option<&[u128]>) -> bool {
        let (Some(digest), Some(referenced)) = (digest, referenced) else {
            return false;
        };
        CHECKED
            .lock()
            .expect("no panic holds it")
            .iter()
            .any(|checked| {
                checked.register == register
                    && checked.digest == digest
                    && checked.referenced == referenced
            })
    }

    /// After a committed run: the digest it left (`None`: none usable) and what it checked
    /// against (`None`: not known by fingerprint).
    fn record(register: &'static str, digest: Option<u128>, referenced: Option<Vec<u128>>) {
        let mut checked = CHECKED.lock().expect("no panic holds it");
        checked.retain(|checked| checked.register != register);
        if let (Some(digest), Some(referenced)) = (digest, referenced) {
            checked.push(Checked {
                register,
                digest,
                referenced,
            });
        }
    }
}

/// The ids each of `referenced` (register, table) holds. A register whose digest is
/// `fingerprint` (its XXH3-128) has the ids it had the last time it had that digest: the
/// digest's row hashes cover the ids, and any write to the table outside a run deleted it
/// (migration 0010). Those ids are kept for the next run, one set per register.
async fn load_references(
    conn: &mut impl KeyReader,
    referenced: &[(&'static str, &'static str)],
    fingerprints: &[Option<u128>],
) -> Result<References, SyncError> {
    /// The ids of a register as read while its digest had this fingerprint.
    struct Kept {
        register: &'static str,
        fingerprint: u128,
        ids: Arc<IdSet>,
    }
    static KEPT: std::sync::Mutex<Vec<Kept>> = std::sync::Mutex::new(Vec::new());
    let mut references = References::default();
    for (index, (name, target)) in referenced.iter().enumerate() {
        let fingerprint = fingerprints.get(index).copied().flatten();
        let kept = fingerprint.and_then(|fingerprint| {
            KEPT.lock()
                .expect("no panic holds it")
                .iter()
                .find(|kept| kept.register == *name && kept.fingerprint == fingerprint)
                .map(|kept| kept.ids.clone())
        });
        let ids = match kept {
            Some(ids) => ids,
            None => {
                let mut ids = IdSet::default();
                let query = format!("SELECT id, CAST(0 AS BIGINT) FROM {target}");
                conn.read_keys(&query, |id, _| {
                    ids.insert(id);
                })
                .await?;
                let ids = Arc::new(ids);
                if let Some(fingerprint) = fingerprint {
                    let mut kept = KEPT.lock().expect("no panic holds it");
                    kept.retain(|kept| kept.register != *name);
                    kept.push(Kept {
                        register: name,
                        fingerprint,
                        ids: ids.clone(),
                    });
                }
                ids
            }
        };
        references.insert(*name, ids);
    }
    Ok(references)
}

/// The place of the first id the file names twice, read again from the file (on a thread
/// of its own): for a load whose primary key refused a duplicate without saying where it
/// was in the file.
async fn find_duplicate_id(run: &RunContext<'_>) -> Option<RowError> {
    let (path, register, encoding) = (run.path.to_path_buf(), run.register, run.encoding);
    let file_name = run.file_name.to_string();
    tokio::task::spawn_blocking(move || {
        let mut rows = open_rows(&path, register, encoding).ok()?;
        let mut seen = IdSet::default();
        while let Some(row) = rows.next_row() {
            let row = row.ok()?;
            if !seen.insert(id_key(row.id.as_bytes())) {
                return Some(duplicate_id(&file_name, &row));
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
}

fn duplicate_id(file: &str, row: &Row) -> RowError {
    RowError {
        file: file.to_string(),
        line: row.line,
        column: Some("id".into()),
        reason: format!("id {:?} appears twice in the file", row.id),
    }
}

/// Where the new and changed rows of a run go.
trait RowSink {
    async fn write(&mut self, rows: &[(Row, i64)]) -> Result<(), SyncError>;
}

/// Writes a run's rows through one backend's fastest path, inside the caller's
/// transaction.
trait WriteRows: KeyReader {
    /// What must precede reading the table (PostgreSQL: the register's advisory lock), and
    /// marks the transaction's writes as the register's run, so that its table's digest
    /// guard (migration 0010) lets them be. Returns the statements to run just before the
    /// commit (SQLite: the guard's triggers, created again).
    async fn begin_run(&mut self, register: &Register) -> Result<Vec<String>, SyncError>;

    /// Compares the rows with what is `known` of the table and writes the new and changed.
    async fn write_rows(
        &mut self,
        run: &RunContext<'_>,
        known: Known,
        references: &References,
        batches: &mut Batches,
    ) -> Result<(SyncCounts, Known), SyncError>;
}

/// Compares every row of the file with what is stored and hands the new and changed rows
/// to `sink`; checks references and duplicate ids on the way. Marks every stored key it
/// sees, so that the unseen ones are the rows that disappeared.
async fn compare_rows(
    run: &RunContext<'_>,
    batches: &mut Batches,
    existing: &mut Known,
    references: &References,
    sink: &mut (impl RowSink + KeyReader),
) -> Result<SyncCounts, SyncError> {
    let register = run.register;
    // Each `Ref` column: its index, the register it names, and that register's ids.
    let referenced: Vec<(usize, &str, &IdSet)> = register
        .columns
        .iter()
        .enumerate()
        .filter_map(|(index, column)| match column.kind {
            Kind::Ref(target) => Some((index, target, &*references[target])),
            _ => None,
        })
        .collect();
    let mut counts = SyncCounts::default();
    let mut next_report = 100_000;
    let mut changed: Vec<(Row, i64)> = Vec::with_capacity(BATCH);
    let mut order: Vec<u8> = Vec::with_capacity(BATCH * 8);
    while let Some(batch) = batches.rows.recv().await {
        let batch = batch?;
        // The reference lookups below miss the caches: start all of the batch's reads first
        // (unless most rows are expected unchanged and checked before).
        if !run.unchanged_checked {
            for keyed in &batch {
                for ((_, _, ids), key) in referenced.iter().zip(&keyed.refs) {
                    if let Some(key) = key {
                        ids.prefetch(*key);
                    }
                }
            }
        }
        let mut spent = Vec::with_capacity(BATCH);
        for Keyed {
            row,
            key,
            hash,
            refs,
        } in batch
        {
            counts.rows += 1;
            order.extend_from_slice(&hash.to_le_bytes());
            let standing = match existing.classify(key, hash) {
                Some(standing) => standing,
                None => {
                    // Out of step: from here on, by key. Nothing was written before this.
                    existing.upgrade(sink, register.table).await?;
                    existing
                        .classify(key, hash)
                        .expect("classified by key after the upgrade")
                }
            };
            if !(run.unchanged_checked && standing == Standing::Unchanged) {
                for ((index, target, ids), key) in referenced.iter().zip(refs) {
                    if let Some(key) = key
                        && !ids.contains(key)
                    {
                        let column = &register.columns[*index];
                        let Value::Text(Some(id)) = &row.values[*index] else {
                            unreachable!("a reference key comes from a text value")
                        };
                        return Err(RowError {
                            file: run.file_name.to_string(),
                            line: row.line,
                            column: Some(column.header.into()),
                            reason: format!("unknown {target} id {id:?}"),
                        }
                        .into());
                    }
                }
            }
            match standing {
                Standing::Unchanged => {
                    counts.unchanged += 1;
                    spent.push(row);
                }
                Standing::Changed => {
                    counts.updated += 1;
                    changed.push((row, hash));
                }
                Standing::New => {
                    counts.inserted += 1;
                    changed.push((row, hash));
                }
                Standing::Duplicate => return Err(duplicate_id(run.file_name, &row).into()),
            }
        }
        if !changed.is_empty() {
            sink.write(&changed).await?;
            spent.extend(changed.drain(..).map(|(row, _)| row));
        }
        // Freed by the reader; if it has stopped, here.
        let _ = batches.spent.send(spent);
        run.file_hashes
            .lock()
            .expect("only this task writes it")
            .append(&mut order);
        if counts.rows >= next_report {
            let seconds = run.clock.elapsed().as_secs_f64();
            tracing::info!(
                register = register.name,
                rows = counts.rows,
                rows_per_second = (counts.rows as f64 / seconds) as u64,
                "sync in progress"
            );
            next_report += 100_000;
        }
    }
    Ok(counts)
}

impl Store {
    /// Applies `path` to `register` in one transaction (see the module docs).
    pub async fn sync_file(
        &self,
        register: &'static Register,
        path: &Path,
        mode: SyncMode,
        encoding: FileEncoding,
        source: &str,
    ) -> Result<SyncOutcome, SyncError> {
        let started = Utc::now();
        let clock = Instant::now();
        let _applying = Applying::start();
        let file_name = path.display().to_string();
        // The checksum is computed while the reader starts on the rows: both read the whole
        // file, and a re-dropped file is rare next to a new export.
        let hashing = tokio::task::spawn_blocking({
            let path = path.to_path_buf();
            move || sha256_file(&path)
        });
        let result = async {
            let (batches, reader) = spawn_reader(register, open_rows(path, register, encoding)?);
            let checksum = async {
                hashing
                    .await
                    .map_err(|e| SyncError::Other(format!("checksum task failed: {e}")))?
                    .map_err(|e| {
                        SyncError::Row(RowError {
                            file: file_name.clone(),
                            line: 0,
                            column: None,
                            reason: format!("cannot read: {e}"),
                        })
                    })
            };
            self.apply(
                register,
                batches,
                reader,
                mode,
                source,
                (path, encoding, &file_name),
                checksum,
                started,
                clock,
            )
            .await
        }
        .await;
        // A run of a large file frees tens of megabytes (its key arrays and sets) here.
        release_freed_memory();
        match result {
            Ok(outcome) => Ok(outcome),
            Err(error) => {
                self.record_failed_sync(
                    register.name,
                    &format!("{source}: {file_name}"),
                    mode,
                    started,
                    &error.to_string(),
                )
                .await?;
                Err(error)
            }
        }
    }

    /// Records a run that applied nothing, and why.
    pub async fn record_failed_sync(
        &self,
        register: &str,
        source: &str,
        mode: SyncMode,
        started: chrono::DateTime<Utc>,
        error: &str,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO sync_run (register, source, mode, status, started_at, finished_at, error) \
                 VALUES ($1, $2, $3, 'failed', $4, $5, $6)",
            )
            .bind(register)
            .bind(source)
            .bind(mode.as_str())
            .bind(started)
            .bind(Utc::now())
            .bind(error)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn apply(
        &self,
        register: &'static Register,
        mut batches: Batches,
        reader: tokio::task::JoinHandle<()>,
        mode: SyncMode,
        source: &str,
        (path, encoding, file_name): (&Path, FileEncoding, &str),
        checksum: impl std::future::Future<Output = Result<String, SyncError>>,
        started: chrono::DateTime<Utc>,
        clock: Instant,
    ) -> Result<SyncOutcome, SyncError> {
        let table = register.table;
        let mut run = RunContext {
            register,
            path,
            encoding,
            file_name,
            clock,
            file_hashes: Default::default(),
            unchanged_checked: false,
        };
        let referenced = run.referenced()?;
        on_pool!(self, pool => {
            // The referenced ids load on a connection of their own while this one reads the
            // table (a pool of one connection reads them after).
            let references = (pool.options().get_max_connections() > 1).then(|| {
                let pool = pool.clone();
                let referenced = referenced.clone();
                tokio::spawn(async move {
                    // The digests and the ids from one snapshot, so that ids are kept under
                    // the digest they belong to.
                    let mut conn = pool.begin_snapshot_once().await?;
                    let mut fingerprints = Vec::with_capacity(referenced.len());
                    for (name, _) in &referenced {
                        let digest: Option<Vec<u8>> = sqlx::query_scalar(DIGEST)
                            .bind(*name)
                            .fetch_optional(&mut *conn)
                            .await?;
                        fingerprints.push(
                            digest
                                .filter(|d| !d.is_empty())
                                .map(|d| xxhash_rust::xxh3::xxh3_128(&d)),
                        );
                    }
                    let references = load_references(&mut *conn, &referenced, &fingerprints).await?;
                    conn.rollback().await?;
                    Ok::<_, SyncError>((references, fingerprints.into_iter().collect::<Option<Vec<u128>>>()))
                })
            });
            let mut tx = pool.begin_write_once().await?;
            let before_commit = tx.begin_run(register).await?;
            // The register's digest, if the latest done run wrote it; else the table's own.
            let digest: Option<Vec<u8>> = sqlx::query_scalar(DIGEST)
            .bind(register.name)
            .fetch_optional(&mut *tx)
            .await?;
            // What the digest read was, to leave it in place if this file's hashes are the
            // same (an unchanged export): its length and its XXH3-128.
            let read_digest = digest.as_deref().map(|b| (b.len(), xxhash_rust::xxh3::xxh3_128(b)));
            // A digest describes the table: any write outside a run deleted it (migration
            // 0010), so one that is there is the table's.
            let hashes: Vec<i64> = match digest {
                // An empty digest is not used: whether the table is empty decides how it is
                // loaded (without its indexes), so that is read from the table itself.
                Some(bytes) if !bytes.is_empty() && bytes.len() % 8 == 0 => bytes
                    .chunks_exact(8)
                    .map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes")))
                    .collect(),
                _ => tx.read_hashes(table).await?,
            };
            let known = Known::new(hashes);
            // The next digest is about as long as the last (growing it by doubling held
            // one and a half copies at a time).
            run.file_hashes
                .lock()
                .expect("only this task writes it")
                .reserve_exact(known.stored() * 8);
            let (references, referenced_fingerprints) = match references {
                Some(task) => task
                    .await
                    .map_err(|e| SyncError::Other(format!("reading references failed: {e}")))??,
                None => (load_references(&mut *tx, &referenced, &[]).await?, None),
            };
            run.unchanged_checked = Checked::holds(
                register.name,
                read_digest.map(|(_, fingerprint)| fingerprint),
                referenced_fingerprints.as_deref(),
            );
            run.loaded(&known);
            // The table is read inside the write transaction, so that two runs of one register
            // cannot both start from the same state. The file's checksum is computed meanwhile
            // (waiting for it first left the reader idle for a tenth of an unchanged re-sync).
            let written = tx.write_rows(&run, known, &references, &mut batches).await;
            let checksum = checksum.await?;
            // A file applied before is not applied again, even if it no longer passes.
            let applied_before = "SELECT run_id FROM import_file WHERE sha256 = $1";
            let skip = |previous: i64| {
                sqlx::query_scalar::<_, i64>(
                    "INSERT INTO sync_run (register, source, mode, status, started_at, finished_at, error) \
                     VALUES ($1, $2, $3, 'skipped', $4, $5, $6) RETURNING id",
                )
                .bind(register.name)
                .bind(format!("{source}: {file_name}"))
                .bind(mode.as_str())
                .bind(started)
                .bind(Utc::now())
                .bind(format!("the same file (SHA-256 {checksum}) was applied by run {previous}"))
                .fetch_one(pool)
            };
            let (mut counts, mut existing) = match written {
                Ok(written) => {
                    let seen: Option<i64> = sqlx::query_scalar(applied_before)
                        .bind(&checksum)
                        .fetch_optional(&mut *tx)
                        .await?;
                    if let Some(previous) = seen {
                        tx.rollback().await?;
                        return Ok(SyncOutcome::AlreadyApplied { run_id: skip(previous).await? });
                    }
                    written
                }
                Err(error) => {
                    tx.rollback().await?;
                    let seen: Option<i64> = sqlx::query_scalar(applied_before)
                        .bind(&checksum)
                        .fetch_optional(pool)
                        .await?;
                    return match seen {
                        Some(previous) => Ok(SyncOutcome::AlreadyApplied { run_id: skip(previous).await? }),
                        None => Err(error),
                    };
                }
            };
            reader.await.map_err(|e| SyncError::Other(format!("reader task failed: {e}")))?;
            let unseen = existing.unseen();
            if mode == SyncMode::Full && unseen > 0 {
                existing.upgrade(&mut *tx, table).await?;
                // The ids themselves, found again by a pass over the table.
                let mut gone: Vec<String> = Vec::with_capacity(unseen);
                {
                    use futures_util::TryStreamExt;
                    let sql = sqlx::AssertSqlSafe(format!("SELECT id FROM {table}"));
                    let mut stream = sqlx::query(sql).fetch(&mut *tx);
                    while let Some(row) = stream.try_next().await? {
                        let id: &str = row.get(0);
                        if existing.is_unseen(id_key(id.as_bytes())) {
                            gone.push(id.to_string());
                        }
                    }
                }
                counts.deleted = gone.len() as u64;
                for chunk in gone.chunks(BATCH) {
                    let mut builder = sqlx::QueryBuilder::new(format!("DELETE FROM {table} WHERE id IN ("));
                    let mut separated = builder.separated(", ");
                    for id in chunk {
                        separated.push_bind(id.clone());
                    }
                    builder.push(")");
                    builder.build().execute(&mut *tx).await?;
                }
            }
            drop(existing);
            if register.name == "assessment_components" {
                let disagree: Option<(String, i64, i64)> = sqlx::query_as(balances::COMPONENTS_DISAGREE)
                    .fetch_optional(&mut *tx)
                    .await?;
                if let Some((assessment, total, sum)) = disagree {
                    tx.rollback().await?;
                    return Err(SyncError::Other(format!(
                        "{file_name}: assessment {assessment:?}: its components sum to {}, its total (assessments) is {}",
                        crate::registers::zloty(sum),
                        crate::registers::zloty(total)
                    )));
                }
            }
            let run_id: i64 = sqlx::query_scalar(
                "INSERT INTO sync_run (register, source, mode, status, started_at, finished_at, rows_read, \
                 inserted, updated, deleted, unchanged) VALUES ($1, $2, $3, 'done', $4, $5, $6, $7, $8, $9, $10) RETURNING id",
            )
            .bind(register.name)
            .bind(format!("{source}: {file_name}"))
            .bind(mode.as_str())
            .bind(started)
            .bind(Utc::now())
            .bind(counts.rows as i64)
            .bind(counts.inserted as i64)
            .bind(counts.updated as i64)
            .bind(counts.deleted as i64)
            .bind(counts.unchanged as i64)
            .fetch_one(&mut *tx)
            .await?;
            // The digest of a full snapshot is its file's hashes; an incremental run leaves none.
            let bytes = std::mem::take(&mut *run.file_hashes.lock().expect("the run is over"));
            let written_digest = xxhash_rust::xxh3::xxh3_128(&bytes);
            let same = read_digest.is_some_and(|read| read == (bytes.len(), written_digest));
            if mode == SyncMode::Full && same {
                // The same hashes in the same order: only the run it belongs to changes.
                sqlx::query("UPDATE register_digest SET run_id = $2 WHERE register = $1")
                    .bind(register.name)
                    .bind(run_id)
                    .execute(&mut *tx)
                    .await?;
            } else {
                sqlx::query("DELETE FROM register_digest WHERE register = $1")
                    .bind(register.name)
                    .execute(&mut *tx)
                    .await?;
                if mode == SyncMode::Full {
                    sqlx::query("INSERT INTO register_digest (register, run_id, hashes) VALUES ($1, $2, $3)")
                        .bind(register.name)
                        .bind(run_id)
                        .bind(bytes)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            sqlx::query("INSERT INTO import_file (sha256, register, file_name, run_id, imported_at) VALUES ($1, $2, $3, $4, $5)")
                .bind(&checksum)
                .bind(register.name)
                .bind(file_name)
                .bind(run_id)
                .bind(Utc::now())
                .execute(&mut *tx)
                .await?;
            // The figures the portal reads, derived in this transaction: readers see them
            // change with the rows they come from.
            if counts.inserted + counts.updated + counts.deleted > 0 {
                for sql in balances::refresh(register, matches!(self, Store::Sqlite(_))) {
                    sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut *tx).await?;
                }
            }
            for sql in before_commit {
                sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            // An empty file leaves an empty digest, which is not used.
            Checked::record(
                register.name,
                (mode == SyncMode::Full && counts.rows > 0).then_some(written_digest),
                referenced_fingerprints,
            );
            let seconds = clock.elapsed().as_secs_f64();
            tracing::info!(register = register.name, rows = counts.rows, inserted = counts.inserted, updated = counts.updated,
                deleted = counts.deleted, unchanged = counts.unchanged, seconds, "sync done");
            Ok(SyncOutcome::Applied { run_id, counts })
        })
    }

    /// Claims a scheduled occurrence for this daemon; false when another claimed it first.
    pub async fn claim_occurrence(
        &self,
        schedule: &str,
        fire_at: &str,
        by: &str,
    ) -> Result<bool, StoreError> {
        on_pool!(self, pool => {
            let claimed = sqlx::query(
                "INSERT INTO schedule_claim (schedule, fire_at, claimed_by, claimed_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (schedule, fire_at) DO NOTHING",
            )
            .bind(schedule)
            .bind(fire_at)
            .bind(by)
            .bind(Utc::now())
            .execute(pool)
            .await?
            .rows_affected();
            Ok(claimed == 1)
        })
    }

    /// The latest claimed occurrence of a schedule (its UTC instant, RFC 3339).
    pub async fn last_occurrence(&self, schedule: &str) -> Result<Option<String>, StoreError> {
        on_pool!(self, pool => {
            Ok(sqlx::query_scalar("SELECT MAX(fire_at) FROM schedule_claim WHERE schedule = $1")
                .bind(schedule)
                .fetch_one(pool)
                .await?)
        })
    }
}

/// An installment with the payments that name it, for the interest calculation.
#[derive(Debug, Clone)]
pub struct InstallmentPayments {
    pub installment_id: String,
    pub number: i64,
    pub due_date: chrono::NaiveDate,
    pub amount_gr: i64,
    pub payments: Vec<(chrono::NaiveDate, i64)>,
}

impl Store {
    /// Fills the figures derived from the registers (`balances`) when the registers hold
    /// rows and the figures none: a database migrated from before they existed.
    pub(super) async fn derive_register_figures_if_missing(&self) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            let missing: bool = sqlx::query_scalar(
                "SELECT (EXISTS (SELECT 1 FROM reg_party WHERE pesel IS NOT NULL OR nip IS NOT NULL OR regon IS NOT NULL)
                         AND NOT EXISTS (SELECT 1 FROM reg_party_key))
                     OR (EXISTS (SELECT 1 FROM reg_account) AND NOT EXISTS (SELECT 1 FROM reg_account_party))",
            )
            .fetch_one(pool)
            .await?;
            if missing {
                let mut tx = pool.begin_write().await?;
                for sql in balances::refresh_all(matches!(self, Store::Sqlite(_))) {
                    sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                tracing::info!("derived the portal's figures from the registers");
            }
            Ok(())
        })
    }

    /// An account's kind and its installments with their payments (by booking date).
    pub async fn installments_with_payments(
        &self,
        account: &str,
    ) -> Result<Option<(String, Vec<InstallmentPayments>)>, StoreError> {
        on_pool!(self, pool => {
            let kind: Option<String> = sqlx::query_scalar("SELECT kind FROM reg_account WHERE id = $1")
                .bind(account)
                .fetch_optional(pool)
                .await?;
            let Some(kind) = kind else { return Ok(None) };
            let rows = sqlx::query(
                "SELECT i.id, i.number, i.due_date, i.amount_gr, l.booking_date, l.amount_gr FROM reg_installment i \
                 LEFT JOIN reg_ledger l ON l.installment_id = i.id AND l.entry_type = 'payment' \
                 WHERE i.account_id = $1 ORDER BY i.due_date, i.id, l.booking_date",
            )
            .bind(account)
            .fetch_all(pool)
            .await?;
            let mut out: Vec<InstallmentPayments> = Vec::new();
            for row in &rows {
                let id: String = row.get(0);
                if out.last().is_none_or(|last| last.installment_id != id) {
                    out.push(InstallmentPayments {
                        installment_id: id,
                        number: row.get(1),
                        due_date: row.get(2),
                        amount_gr: row.get(3),
                        payments: Vec::new(),
                    });
                }
                let paid: (Option<chrono::NaiveDate>, Option<i64>) = (row.get(4), row.get(5));
                if let (Some(day), Some(amount)) = paid {
                    out.last_mut().expect("just pushed").payments.push((day, amount));
                }
            }
            Ok(Some((kind, out)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_register_has_more_references_than_a_row_carries() {
        for register in crate::registers::REGISTERS {
            let refs = register
                .columns
                .iter()
                .filter(|c| matches!(c.kind, Kind::Ref(_)))
                .count();
            assert!(refs <= MAX_REFS, "{}: {refs} references", register.name);
        }
    }
}
