//! Applying a register file: one transaction per run. Rows are read and checked on a
//! blocking thread and arrive in batches; each row is compared by its hash with the row
//! already stored (unchanged rows are not written), new and changed rows are upserted in
//! multi-row statements, and in full-snapshot mode the rows that disappeared are deleted.
//! A bad row aborts the run: nothing is applied, the previous data stays, and a failed
//! `sync_run` records where and why.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use sha2::Digest;
use sqlx::Row as _;

use rustc_hash::{FxHashMap, FxHashSet};

use super::{BeginWrite, Store, StoreError};
use crate::registers::csv_source::{FileEncoding, Row, RowError};
#[cfg(test)]
use crate::registers::row_hash;
use crate::registers::{
    Kind, MAX_REFS, Register, RowDigest, Value, id_key, reference_keys, register, row_hash_with,
};
use crate::registers::{RowSource, open_rows};
#[cfg(test)]
use std::path::PathBuf;

mod keys;
mod postgres;
mod sqlite;

use keys::{Known, Standing};

const BATCH: usize = 1000;

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
    refs: [Option<u128>; MAX_REFS],
}

/// What the reader sends of a row.
enum Item {
    /// A row to compare (and perhaps write).
    Full(Keyed),
    /// A row the reader found unchanged: its hash is the stored hash at its position and
    /// its references exist. It was checked but never copied.
    Matched(RowDigest),
}

/// What the reader needs to find unchanged rows itself: the stored row hashes in stored
/// order and, for each `Ref` column, the ids it may name.
struct Matching {
    hashes: Arc<Vec<i64>>,
    refs: [Option<Arc<FxHashSet<u128>>>; MAX_REFS],
}

impl Matching {
    /// Whether the `index`th row of the file is the stored row at that position, unchanged,
    /// with references that exist.
    fn matches(&self, index: usize, digest: &RowDigest) -> bool {
        self.hashes.get(index) == Some(&digest.hash)
            && digest
                .refs
                .iter()
                .zip(&self.refs)
                .all(|(key, ids)| match (key, ids) {
                    (Some(key), Some(ids)) => ids.contains(key),
                    (None, _) => true,
                    (Some(_), None) => false,
                })
    }
}

/// The batches of a file's rows as the reader sends them, and the way back for the rows
/// that were not written: the reader thread frees them. (Freeing on another thread than
/// the one that allocated costs several times more, and a re-sync of unchanged data is
/// mostly that.)
struct Batches {
    rows: tokio::sync::mpsc::Receiver<Result<Vec<Item>, RowError>>,
    spent: std::sync::mpsc::Sender<Vec<Row>>,
    matching: std::sync::mpsc::Sender<Matching>,
}

impl Batches {
    /// Hands the reader what it needs to find unchanged rows itself (from its next batch
    /// on), while nothing but the stored hashes is known.
    fn start_matching(&self, register: &Register, known: &Known, references: &References) {
        let Some(hashes) = known.hashes() else { return };
        let mut refs: [Option<Arc<FxHashSet<u128>>>; MAX_REFS] = Default::default();
        let targets = register.columns.iter().filter_map(|c| match c.kind {
            Kind::Ref(target) => Some(target),
            _ => None,
        });
        for (slot, target) in refs.iter_mut().zip(targets) {
            *slot = references.get(target).cloned();
        }
        let _ = self.matching.send(Matching { hashes, refs });
    }
}

/// Streams the file's rows in batches from a blocking thread. The channel holds enough
/// batches for the reader to run ahead while the stored hashes load.
fn spawn_reader(
    register: &'static Register,
    mut rows: Box<dyn RowSource>,
    mut matching: Option<Matching>,
) -> (Batches, tokio::task::JoinHandle<()>) {
    let (tx, rx) = tokio::sync::mpsc::channel(160);
    let (spent, spent_rows) = std::sync::mpsc::channel::<Vec<Row>>();
    let (matching_tx, matching_rx) = std::sync::mpsc::channel::<Matching>();
    let task = tokio::task::spawn_blocking(move || {
        let mut batch = Vec::with_capacity(BATCH);
        let mut scratch = Vec::with_capacity(256);
        let mut index = 0usize;
        loop {
            if batch.is_empty() {
                while let Ok(rows) = spent_rows.try_recv() {
                    drop(rows);
                }
                if matching.is_none() {
                    matching = matching_rx.try_recv().ok();
                }
            }
            let item = match (matching.as_ref(), rows.as_csv()) {
                (Some(matching), Some(csv)) => match csv.next_digest(&mut scratch) {
                    None => break,
                    Some(Ok(digest)) if matching.matches(index, &digest) => {
                        Ok(Item::Matched(digest))
                    }
                    Some(Ok(digest)) => csv.current_row().map(|row| {
                        Item::Full(Keyed {
                            row,
                            key: digest.key,
                            hash: digest.hash,
                            refs: digest.refs,
                        })
                    }),
                    Some(Err(e)) => Err(e),
                },
                _ => match rows.next_row() {
                    None => break,
                    Some(Ok(row)) => Ok(Item::Full(Keyed {
                        key: id_key(row.id.as_bytes()),
                        hash: row_hash_with(&mut scratch, &row.id, &row.values),
                        refs: reference_keys(register.columns, row.values.iter().map(Value::text)),
                        row,
                    })),
                    Some(Err(e)) => Err(e),
                },
            };
            match item {
                Ok(item) => batch.push(item),
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            }
            index += 1;
            if batch.len() == BATCH
                && tx
                    .blocking_send(Ok(std::mem::replace(&mut batch, Vec::with_capacity(BATCH))))
                    .is_err()
            {
                return;
            }
        }
        if !batch.is_empty() {
            let _ = tx.blocking_send(Ok(batch));
        }
    });
    (
        Batches {
            rows: rx,
            spent,
            matching: matching_tx,
        },
        task,
    )
}

fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = sha2::Sha256::new();
    std::io::copy(&mut file, &mut hasher)?;
    Ok(hex::encode(hasher.finalize()))
}

/// The ids each referenced register holds, by register name.
type References = FxHashMap<&'static str, Arc<FxHashSet<u128>>>;

/// One run's fixed facts, shared by the backends.
struct RunContext<'a> {
    register: &'static Register,
    file_name: &'a str,
    clock: Instant,
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

/// The ids each of `referenced` (register, table) holds.
async fn load_references(
    conn: &mut impl KeyReader,
    referenced: &[(&'static str, &'static str)],
) -> Result<References, SyncError> {
    let mut references = References::default();
    for (name, target) in referenced {
        let mut ids = FxHashSet::default();
        let query = format!("SELECT id, CAST(0 AS BIGINT) FROM {target}");
        conn.read_keys(&query, |id, _| {
            ids.insert(id);
        })
        .await?;
        references.insert(*name, Arc::new(ids));
    }
    Ok(references)
}

/// Where the new and changed rows of a run go.
trait RowSink {
    async fn write(&mut self, rows: &[(Row, i64)]) -> Result<(), SyncError>;
}

/// Writes a run's rows through one backend's fastest path, inside the caller's
/// transaction.
trait WriteRows: KeyReader {
    /// What must precede reading the table (PostgreSQL: the register's advisory lock).
    async fn begin_run(&mut self, table: &str) -> Result<(), SyncError>;

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
    let referenced: Vec<(usize, &str, &FxHashSet<u128>)> = register
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
    while let Some(batch) = batches.rows.recv().await {
        let mut spent = Vec::with_capacity(BATCH);
        for item in batch? {
            counts.rows += 1;
            let Keyed {
                row,
                key,
                hash,
                refs,
            } = match item {
                Item::Full(keyed) => keyed,
                Item::Matched(digest) => {
                    // Found unchanged by the reader; the table may be known by key by now.
                    let standing = match existing.classify(digest.key, digest.hash) {
                        Some(standing) => standing,
                        None => {
                            existing.upgrade(sink, register.table).await?;
                            existing
                                .classify(digest.key, digest.hash)
                                .expect("classified by key after the upgrade")
                        }
                    };
                    match standing {
                        Standing::Unchanged => counts.unchanged += 1,
                        Standing::Duplicate => {
                            return Err(RowError {
                                file: run.file_name.to_string(),
                                line: digest.line,
                                column: Some("id".into()),
                                reason: "this id appears twice in the file".into(),
                            }
                            .into());
                        }
                        Standing::Changed | Standing::New => {
                            return Err(SyncError::Other(format!(
                                "{}:{}: the row matched a stored row by its hash but not by its key",
                                run.file_name, digest.line
                            )));
                        }
                    }
                    continue;
                }
            };
            for ((index, target, ids), key) in referenced.iter().zip(refs) {
                if let Some(key) = key
                    && !ids.contains(&key)
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
                Standing::Duplicate => {
                    return Err(RowError {
                        file: run.file_name.to_string(),
                        line: row.line,
                        column: Some("id".into()),
                        reason: format!("id {:?} appears twice in the file", row.id),
                    }
                    .into());
                }
            }
        }
        if !changed.is_empty() {
            sink.write(&changed).await?;
            spent.extend(changed.drain(..).map(|(row, _)| row));
        }
        // Freed by the reader; if it has stopped, here.
        let _ = batches.spent.send(spent);
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
        let file_name = path.display().to_string();
        // The checksum is computed while the reader starts on the rows: both read the whole
        // file, and a re-dropped file is rare next to a new export.
        let hashing = tokio::task::spawn_blocking({
            let path = path.to_path_buf();
            move || sha256_file(&path)
        });
        let result = async {
            let (batches, reader) =
                spawn_reader(register, open_rows(path, register, encoding)?, None);
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
                register, batches, reader, mode, source, &file_name, checksum, started, clock,
            )
            .await
        }
        .await;
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
        file_name: &str,
        checksum: impl std::future::Future<Output = Result<String, SyncError>>,
        started: chrono::DateTime<Utc>,
        clock: Instant,
    ) -> Result<SyncOutcome, SyncError> {
        let table = register.table;
        let run = RunContext {
            register,
            file_name,
            clock,
        };
        let referenced = run.referenced()?;
        on_pool!(self, pool => {
            // The referenced ids load on a connection of their own while this one reads the
            // table (a pool of one connection reads them after).
            let references = (pool.options().get_max_connections() > 1).then(|| {
                let pool = pool.clone();
                let referenced = referenced.clone();
                tokio::spawn(async move {
                    let mut conn = pool.acquire().await?;
                    load_references(&mut *conn, &referenced).await
                })
            });
            let mut tx = pool.begin_write().await?;
            tx.begin_run(table).await?;
            let known = Known::new(tx.read_hashes(table).await?);
            let references = match references {
                Some(task) => task
                    .await
                    .map_err(|e| SyncError::Other(format!("reading references failed: {e}")))??,
                None => load_references(&mut *tx, &referenced).await?,
            };
            run.loaded(&known);
            // The checksum was computed meanwhile; a file applied before is not applied again.
            let checksum = checksum.await?;
            let seen_before: Option<i64> = sqlx::query_scalar("SELECT run_id FROM import_file WHERE sha256 = $1")
                .bind(&checksum)
                .fetch_optional(&mut *tx)
                .await?;
            if let Some(previous) = seen_before {
                tx.rollback().await?;
                let run_id: i64 = sqlx::query_scalar(
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
                .await?;
                // The reader stops at its next batch, the channel being closed.
                return Ok(SyncOutcome::AlreadyApplied { run_id });
            }
            batches.start_matching(register, &known, &references);
            // The table is read inside the write transaction, so that two runs of one register
            // cannot both start from the same state.
            let (mut counts, mut existing) = tx.write_rows(&run, known, &references, &mut batches).await?;
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
            sqlx::query("INSERT INTO import_file (sha256, register, file_name, run_id, imported_at) VALUES ($1, $2, $3, $4, $5)")
                .bind(&checksum)
                .bind(register.name)
                .bind(file_name)
                .bind(run_id)
                .bind(Utc::now())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
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

    /// A table in memory, as a sink and a key reader.
    #[derive(Default)]
    struct Memory {
        stored: Vec<(u128, i64)>,
        written: Vec<String>,
        keys_read: usize,
    }

    impl KeyReader for Memory {
        async fn read_keys(
            &mut self,
            _query: &str,
            mut each: impl FnMut(u128, i64),
        ) -> Result<(), SyncError> {
            self.keys_read += 1;
            for (k, h) in &self.stored {
                each(*k, *h);
            }
            Ok(())
        }

        async fn read_hashes(&mut self, _table: &str) -> Result<Vec<i64>, SyncError> {
            Ok(self.stored.iter().map(|(_, h)| *h).collect())
        }
    }

    impl RowSink for Memory {
        async fn write(&mut self, rows: &[(Row, i64)]) -> Result<(), SyncError> {
            self.written
                .extend(rows.iter().map(|(row, _)| row.id.clone()));
            Ok(())
        }
    }

    fn property_file(dir: &Path, name: &str, rows: usize, changed: Option<usize>) -> PathBuf {
        let mut text = String::from("id;nazwa\n");
        for i in 0..rows {
            let name = if Some(i) == changed {
                "zmieniona"
            } else {
                "działka"
            };
            text.push_str(&format!("P{i:05};{name} {i}\n"));
        }
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// The stored state after applying `path`: (id key, row hash) in file order.
    fn stored_from(path: &Path) -> Vec<(u128, i64)> {
        let register = register("property").unwrap();
        let mut rows = open_rows(path, register, FileEncoding::Auto).unwrap();
        let mut stored = Vec::new();
        while let Some(row) = rows.next_row() {
            let row = row.unwrap();
            stored.push((id_key(row.id.as_bytes()), row_hash(&row.id, &row.values)));
        }
        stored
    }

    #[tokio::test]
    async fn the_reader_finds_unchanged_rows_and_the_rest_are_compared_by_key() {
        // 2,500 stored rows; the file changes row 1,200. Handed the stored hashes from the
        // start, the reader sends every row but that one as found unchanged; the run reads
        // the keys at row 1,200 and goes on comparing the reader's matches by key.
        let dir = tempfile::tempdir().unwrap();
        let register = register("property").unwrap();
        let before = property_file(dir.path(), "before.csv", 2500, None);
        let after = property_file(dir.path(), "after.csv", 2500, Some(1200));
        let mut memory = Memory {
            stored: stored_from(&before),
            ..Memory::default()
        };
        let mut known = Known::new(memory.read_hashes("reg_property").await.unwrap());
        let matching = Matching {
            hashes: known.hashes().unwrap(),
            refs: Default::default(),
        };
        // What the reader sends: every row found unchanged but the changed one.
        let rows = open_rows(&after, register, FileEncoding::Auto).unwrap();
        let (mut sent, _) = spawn_reader(
            register,
            rows,
            Some(Matching {
                hashes: matching.hashes.clone(),
                refs: Default::default(),
            }),
        );
        let mut full = Vec::new();
        let mut matched = 0;
        while let Some(batch) = sent.rows.recv().await {
            for item in batch.unwrap() {
                match item {
                    Item::Full(keyed) => full.push(keyed.row.id),
                    Item::Matched(_) => matched += 1,
                }
            }
        }
        assert_eq!((matched, full), (2499, vec!["P01200".to_string()]));
        let rows = open_rows(&after, register, FileEncoding::Auto).unwrap();
        let (mut batches, reader) = spawn_reader(register, rows, Some(matching));
        let run = RunContext {
            register,
            file_name: "after.csv",
            clock: Instant::now(),
        };
        let counts = compare_rows(
            &run,
            &mut batches,
            &mut known,
            &References::default(),
            &mut memory,
        )
        .await
        .unwrap();
        reader.await.unwrap();
        assert_eq!(
            (
                counts.rows,
                counts.unchanged,
                counts.updated,
                counts.inserted
            ),
            (2500, 2499, 1, 0)
        );
        assert_eq!(memory.written, ["P01200"]);
        assert_eq!(
            memory.keys_read, 1,
            "the keys were read once, at the changed row"
        );
        assert_eq!(known.unseen(), 0);
    }

    #[tokio::test]
    async fn a_file_named_twice_in_step_is_refused_and_nothing_is_taken_for_unchanged() {
        // The same rows, then row 0 again: the duplicate is caught although the reader
        // found the first 2,500 unchanged without the keys.
        let dir = tempfile::tempdir().unwrap();
        let register = register("property").unwrap();
        let before = property_file(dir.path(), "before.csv", 2500, None);
        let mut text = std::fs::read_to_string(&before).unwrap();
        text.push_str("P00000;działka 0\n");
        let after = dir.path().join("after.csv");
        std::fs::write(&after, text).unwrap();
        let mut memory = Memory {
            stored: stored_from(&before),
            ..Memory::default()
        };
        let mut known = Known::new(memory.read_hashes("reg_property").await.unwrap());
        let matching = Matching {
            hashes: known.hashes().unwrap(),
            refs: Default::default(),
        };
        let rows = open_rows(&after, register, FileEncoding::Auto).unwrap();
        let (mut batches, _reader) = spawn_reader(register, rows, Some(matching));
        let run = RunContext {
            register,
            file_name: "after.csv",
            clock: Instant::now(),
        };
        let error = compare_rows(
            &run,
            &mut batches,
            &mut known,
            &References::default(),
            &mut memory,
        )
        .await
        .unwrap_err();
        assert!(
            error.to_string().contains("after.csv:2502") && error.to_string().contains("twice"),
            "{error}"
        );
        assert!(memory.written.is_empty());
    }

    #[test]
    fn a_row_naming_an_unknown_reference_is_not_taken_for_unchanged() {
        let known_ids: FxHashSet<u128> = [id_key(b"K1")].into_iter().collect();
        let matching = Matching {
            hashes: Arc::new(vec![7, 8]),
            refs: [Some(Arc::new(known_ids)), None],
        };
        let digest = |hash, account: &[u8]| RowDigest {
            line: 2,
            key: 1,
            hash,
            refs: [Some(id_key(account)), None],
        };
        assert!(matching.matches(0, &digest(7, b"K1")));
        assert!(
            !matching.matches(0, &digest(7, b"K9")),
            "K9 is not an account"
        );
        assert!(
            !matching.matches(1, &digest(7, b"K1")),
            "row 1 is stored with hash 8"
        );
        assert!(
            !matching.matches(2, &digest(7, b"K1")),
            "nothing is stored at row 2"
        );
    }
}
