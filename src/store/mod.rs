//! The portal database: SQLite (the default; a file created on first start, WAL mode) or
//! PostgreSQL, chosen by the URL's scheme.
//!
//! Durability on SQLite: the transaction that stores a pulled document runs with
//! `synchronous = FULL`, so it is on disk (WAL fsynced) before ePUAP is told to forget the
//! document. Everything else runs with `synchronous = NORMAL` (durable across a crash of the
//! process, perhaps not of the machine): a lost confirmation mark is re-derived by the inbox,
//! and a lost job state only makes an idempotent job run again. An fsync costs more CPU than
//! the rest of a document's storage, so this halves the daemon's CPU per document. A box
//! task runs that transaction, and its confirmation marks, through SQLite's C API on a
//! connection of its own with its statements prepared once ([`InboxWriter`],
//! `pulled_sqlite`), on the calling thread, instead of as round trips to sqlx's worker
//! thread.
//!
//! Each backend has its own migrations folder (`migrations/sqlite`, `migrations/postgres`)
//! with the same tables. The queries are written once in the SQL both dialects share
//! (`$N` placeholders, `ON CONFLICT`, `RETURNING`) and run on either pool through
//! [`on_pool!`], which compiles the same body once per backend, so types are checked
//! for both. Where the dialects differ (row locking) the query text is chosen per backend.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::document::PulledDocument;
use crate::forms::Classification;
use crate::forms::FormType;
use crate::signature::{LoadedList, Verdict};

/// What the `verify` step found about a document (see [`Store::finish_verify`]).
#[derive(Debug, Default)]
pub struct Judgement<'a> {
    /// `None`: the content is not XML, so there is no signature to check.
    pub verdict: Option<&'a Verdict>,
    /// Why there is no verdict.
    pub not_checked: &'a str,
    pub form_type: Option<FormType>,
    pub form_error: Option<String>,
    /// The job kind to run next for this document, if any.
    pub follow_up: Option<crate::jobs::JobKind>,
    /// What the document's content is (XML with this root, or why not), recorded with the
    /// judgement.
    pub classification: Option<&'a Classification>,
    /// The correspondence the document becomes, with the mail to its department (recipients,
    /// subject, body), recorded with the judgement instead of by a `correspond` job.
    pub correspondence: Option<(&'a Correspondence, Option<RoutedMail<'a>>)>,
}

/// The mail a routed letter sends its department: recipients, subject, body.
pub type RoutedMail<'a> = (&'a [String], &'a str, &'a str);

/// Storage errors. `Database` carries sqlx's message, which names the table or constraint.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// SQLite through its C API (the inbox's durable store).
    #[error("database: {0}")]
    Sqlite(String),
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database URL {0:?}: {1}")]
    Url(String, String),
    #[error("no {what} with id {id}")]
    NotFound { what: &'static str, id: i64 },
    /// The operation does not fit the current state (e.g. deciding a request twice).
    #[error("{0}")]
    Conflict(String),
    /// The job's claim is no longer this worker's: its lease ran out and another worker took
    /// the job over. Nothing this worker did for it was committed.
    #[error(
        "job {0}: the claim was lost to another worker (its lease ran out); nothing was committed"
    )]
    ClaimLost(i64),
}

impl StoreError {
    /// Whether the database could not be reached or dropped the connection (PostgreSQL
    /// restarting, failing over, ending sessions; the network; the pool waiting in vain),
    /// as opposed to refusing what was asked of it.
    pub fn is_outage(&self) -> bool {
        let StoreError::Database(error) = self else {
            return false;
        };
        match error {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => true,
            sqlx::Error::Database(db) => db
                .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                .is_some_and(|pg| {
                    let code = pg.code();
                    // 08: connection exception; 57P01-57P03: admin shutdown, crash shutdown,
                    // cannot connect now; 53300: too many connections.
                    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "53300")
                }),
            _ => false,
        }
    }
}

/// How long a SQLite connection waits for another's write lock.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// What a box task stores its documents and their confirmations through, the same
/// statements as [`Store::store_pulled`], [`Store::mark_confirmed`] and
/// [`Store::infer_confirmed`]. On SQLite it is a connection of the task's own with its
/// statements prepared, used on the calling thread (`pulled_sqlite`); on PostgreSQL the pool.
pub struct InboxWriter(Writer);

enum Writer {
    Sqlite(Box<pulled_sqlite::InboxConnection>),
    Postgres(PgPool),
}

impl InboxWriter {
    pub async fn store_pulled(
        &mut self,
        mailbox: &str,
        document: &PulledDocument,
        skrot: &str,
    ) -> Result<Stored, StoreError> {
        match &mut self.0 {
            Writer::Sqlite(connection) => {
                let key = document.identity_key();
                Ok(connection.store(mailbox, document, skrot, &key, Utc::now())?)
            }
            Writer::Postgres(pool) => store_pulled_postgres(pool, mailbox, document, skrot).await,
        }
    }

    pub async fn mark_confirmed(&mut self, id: i64) -> Result<(), StoreError> {
        match &mut self.0 {
            Writer::Sqlite(connection) => Ok(connection.mark_confirmed(id, Utc::now())?),
            Writer::Postgres(pool) => Store::Postgres(pool.clone()).mark_confirmed(id).await,
        }
    }

    pub async fn infer_confirmed(
        &mut self,
        mailbox: &str,
        head: Option<i64>,
    ) -> Result<u64, StoreError> {
        match &mut self.0 {
            Writer::Sqlite(connection) => {
                Ok(connection.infer_confirmed(mailbox, head.unwrap_or(-1), Utc::now())?)
            }
            Writer::Postgres(pool) => {
                Store::Postgres(pool.clone())
                    .infer_confirmed(mailbox, head)
                    .await
            }
        }
    }
}

/// `Store::store_pulled` on PostgreSQL: the same statements as SQLite's, in one transaction
/// (committed with the default `synchronous_commit = on`).
async fn store_pulled_postgres(
    pool: &PgPool,
    mailbox: &str,
    document: &PulledDocument,
    skrot: &str,
) -> Result<Stored, StoreError> {
    let now = Utc::now();
    let key = document.identity_key();
    let p = &document.dane_podmiotu;
    let mut tx = pool.begin().await?;
    let inserted: Option<i64> = sqlx::query_scalar(INSERT_PULLED)
        .bind(&key)
        .bind(mailbox)
        .bind(&p.identyfikator)
        .bind(&p.typ_osoby)
        .bind(&p.imie_skrot)
        .bind(&p.nazwisko_nazwa)
        .bind(&p.nip)
        .bind(&p.pesel)
        .bind(&p.regon)
        .bind(p.zgoda)
        .bind(&document.dane_nadawcy.uzytkownik)
        .bind(&document.dane_nadawcy.system)
        .bind(&document.data_nadania)
        .bind(&document.nazwa_skrytki)
        .bind(&document.adres_skrytki)
        .bind(&document.adres_odpowiedzi)
        .bind(document.czy_testowe)
        .bind(&document.dane_dodatkowe)
        .bind(&document.nazwa_pliku)
        .bind(&document.typ_pliku)
        .bind(&document.content)
        .bind(document.content_sha256())
        .bind(skrot)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
    let stored = delivered!(tx, inserted, mailbox, &key, now, |_id| {});
    tx.commit().await?;
    Ok(stored)
}

/// After the insert of an inbound document (`$inserted`: its id, or `None` when its
/// identity key was stored already), in its transaction `$tx`: a new document gets its
/// delivery record, whatever `$also` adds, and its `verify` job; one delivered again is
/// counted. Evaluates to the [`Stored`] outcome.
macro_rules! delivered {
    ($tx:ident, $inserted:expr, $mailbox:expr, $key:expr, $now:expr, |$id:ident| $also:block) => {
        match $inserted {
            Some($id) => {
                $also
                sqlx::query(INSERT_DELIVERY)
                    .bind($id)
                    .bind($mailbox)
                    .execute(&mut *$tx)
                    .await?;
                sqlx::query(INSERT_VERIFY_JOB)
                    .bind($id.to_string())
                    .bind($id)
                    .bind($now)
                    .execute(&mut *$tx)
                    .await?;
                Stored { id: $id, new: true }
            }
            None => {
                let id: i64 = sqlx::query_scalar(COUNT_PULL_AGAIN)
                    .bind($key)
                    .fetch_one(&mut *$tx)
                    .await?;
                Stored { id, new: false }
            }
        }
    };
}
use delivered;

/// A handle to the portal database. Cheap to clone.
#[derive(Clone, Debug)]
pub enum Store {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// A classification as `inbound_document` keeps it: `form_namespace`, `form_root` and
/// `classification_error`.
fn classification_columns(
    classification: &Classification,
) -> (Option<&str>, Option<&str>, Option<&str>) {
    match classification {
        Classification::Xml { namespace, root } => (namespace.as_deref(), Some(root), None),
        Classification::NotXml { reason } => (None, None, Some(reason)),
    }
}

/// How each backend begins the transactions the store needs.
pub(crate) trait Begin {
    type Db: sqlx::Database;

    /// A write transaction. On SQLite it is `BEGIN IMMEDIATE`: a deferred transaction that
    /// reads first and writes later fails with SQLITE_BUSY when another connection wrote in
    /// between (the busy timeout cannot help an upgrade); taking the write lock first makes
    /// it wait its turn instead. On PostgreSQL it is a plain `BEGIN`.
    fn begin_write(
        &self,
    ) -> impl std::future::Future<Output = Result<sqlx::Transaction<'static, Self::Db>, sqlx::Error>>
    + Send;

    /// `begin_write` on a connection of its own that is closed when the transaction ends
    /// instead of going back to the pool: a register run moves megabytes through it (its
    /// digest), and sqlx keeps a connection's buffers as large as the largest message it
    /// carried, for as long as the connection lives.
    fn begin_write_once(
        &self,
    ) -> impl std::future::Future<Output = Result<sqlx::Transaction<'static, Self::Db>, sqlx::Error>>
    + Send;

    /// A read-only transaction whose statements all see one snapshot (on SQLite (WAL) any
    /// transaction does, from its first read; on PostgreSQL it takes `REPEATABLE READ`), on
    /// a connection closed after it, as `begin_write_once`.
    fn begin_snapshot_once(
        &self,
    ) -> impl std::future::Future<Output = Result<sqlx::Transaction<'static, Self::Db>, sqlx::Error>>
    + Send;
}

/// A pooled connection that is closed when dropped (see `Begin::begin_write_once`).
async fn acquire_once<DB: sqlx::Database>(
    pool: &sqlx::Pool<DB>,
) -> Result<sqlx::pool::PoolConnection<DB>, sqlx::Error> {
    let mut connection = pool.acquire().await?;
    connection.close_on_drop();
    Ok(connection)
}

impl Begin for SqlitePool {
    type Db = sqlx::Sqlite;
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        self.begin_with("BEGIN IMMEDIATE").await
    }
    async fn begin_write_once(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        sqlx::Transaction::begin(
            acquire_once(self).await?,
            Some(sqlx::SqlSafeStr::into_sql_str("BEGIN IMMEDIATE")),
        )
        .await
    }
    async fn begin_snapshot_once(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        sqlx::Transaction::begin(acquire_once(self).await?, None).await
    }
}

impl Begin for PgPool {
    type Db = sqlx::Postgres;
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        self.begin().await
    }
    async fn begin_write_once(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        sqlx::Transaction::begin(acquire_once(self).await?, None).await
    }
    async fn begin_snapshot_once(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        sqlx::Transaction::begin(
            acquire_once(self).await?,
            Some(sqlx::SqlSafeStr::into_sql_str(
                "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY",
            )),
        )
        .await
    }
}

/// Runs `$body` with `$pool` bound to whichever pool the store holds.
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match $store {
            Store::Sqlite($pool) => $body,
            Store::Postgres($pool) => $body,
        }
    };
}

/// Marks the claimed job done, inside the transaction of its effect (`$executor`), and only
/// while the claim is still this worker's. When another worker has taken the job over, the
/// enclosing function returns [`StoreError::ClaimLost`] and its transaction rolls back.
macro_rules! finish_claimed {
    ($executor:expr, $claim:expr, $now:expr) => {{
        let claim: Claim = $claim;
        let finished = sqlx::query(FINISH_JOB)
            .bind($now)
            .bind(claim.job)
            .bind(claim.token)
            .execute($executor)
            .await?
            .rows_affected();
        if finished == 0 {
            return Err(StoreError::ClaimLost(claim.job));
        }
    }};
}

#[macro_use]
mod provisioning;
mod desk;
mod evidence;
mod pulled_sqlite;
mod received;
pub mod registers;
mod sqlite_raw;

/// A pulled document, unless its identity key is stored already.
const INSERT_PULLED: &str = "INSERT INTO inbound_document (identity_key, box_address, podmiot_identyfikator, \
     podmiot_typ_osoby, podmiot_imie_skrot, podmiot_nazwisko_nazwa, podmiot_nip, podmiot_pesel, podmiot_regon, \
     podmiot_zgoda, nadawca_uzytkownik, nadawca_system, data_nadania, nazwa_skrytki, adres_skrytki, \
     adres_odpowiedzi, czy_testowe, dane_dodatkowe, nazwa_pliku, typ_pliku, content, content_sha256, skrot, \
     received_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, \
     $19, $20, $21, $22, $23, $24) ON CONFLICT (identity_key) DO NOTHING RETURNING id";

/// The first step of a stored document's processing (`JobKind::Verify`, in the text: the
/// statement is prepared once).
const INSERT_VERIFY_JOB: &str = "INSERT INTO job (kind, key, document_id, run_after, created_at, updated_at) \
     VALUES ('verify', $1, $2, $3, $3, $3) ON CONFLICT (kind, key) DO NOTHING";

/// A new document's delivery record, in the same transaction. The document's own row is
/// never updated after this: SQLite would rewrite it, content and all.
const INSERT_DELIVERY: &str =
    "INSERT INTO inbound_delivery (document_id, box_address) VALUES ($1, $2)";

/// A document delivered again: counted, not stored again.
const COUNT_PULL_AGAIN: &str = "UPDATE inbound_delivery SET pull_count = pull_count + 1 \
     WHERE document_id = (SELECT id FROM inbound_document WHERE identity_key = $1) RETURNING document_id";

/// ePUAP answered a document's confirmation.
const MARK_CONFIRMED: &str = "UPDATE inbound_delivery SET confirmed_at = $1, confirmation = 'confirmed' \
     WHERE document_id = $2 AND confirmed_at IS NULL";

/// The queue head moved past these documents: their confirmations went through.
const INFER_CONFIRMED: &str = "UPDATE inbound_delivery SET confirmed_at = $1, confirmation = 'inferred' \
     WHERE box_address = $2 AND confirmed_at IS NULL AND document_id <> $3";

pub use desk::{
    AuditLine, BoxLine, EpuapProofs, Official, QueueRow, Session, SignatureReport, SyncLine,
};
pub use evidence::{FollowedLetter, LetterStanding, NewEvidence, StoredEvidence};
pub use provisioning::{
    AUTOMATIC, Correspondence, CorrespondenceFacts, HeldLetter, LetterRow, Notice, ProvisionFacts,
    ProvisioningCounts, RenderNotice, ReplyFacts, RequestRow, RequestedRow, Sending,
};

macro_rules! claim_sql {
    () => {
        "UPDATE job SET status = 'running', attempts = attempts + 1, locked_until = $1, updated_at = $2, \
         claim_token = $4 WHERE id IN (SELECT id FROM job WHERE (status = 'pending' AND run_after <= $2) \
         OR (status = 'running' AND locked_until < $2) ORDER BY id LIMIT $3"
    };
}

macro_rules! returning_job {
    () => {
        " RETURNING id, kind, key, document_id, attempts, claim_token"
    };
}

pub(crate) const FINISH_JOB: &str = "UPDATE job SET status = 'done', locked_until = NULL, last_error = NULL, updated_at = $1 \
     WHERE id = $2 AND claim_token = $3 AND status = 'running'";

/// The outcome of storing a pulled document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    pub id: i64,
    /// False when the identity key was already stored (a re-pulled document).
    pub new: bool,
}

/// A claimed job.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: i64,
    pub kind: String,
    pub key: String,
    pub document_id: Option<i64>,
    pub attempts: i64,
    /// The claim's fencing token: only its holder renews, finishes or puts back the job.
    pub token: i64,
}

impl Job {
    pub fn claim(&self) -> Claim {
        Claim {
            job: self.id,
            token: self.token,
        }
    }
}

/// A worker's claim of a job: the job and the token its claim wrote. Another claim of the
/// same job (after this one's lease ran out) writes another token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    pub job: i64,
    pub token: i64,
}

/// A job that gave up, for `eurzad status`.
#[derive(Debug, Clone)]
pub struct FailedJob {
    pub id: i64,
    pub kind: String,
    pub key: String,
    pub attempts: i64,
    pub failed_at: DateTime<Utc>,
    pub error: Option<String>,
}

/// Counts for summaries and health.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Counts {
    pub documents: i64,
    pub unconfirmed: i64,
    pub jobs_pending: i64,
    pub jobs_running: i64,
    pub jobs_done: i64,
    pub jobs_failed: i64,
}

impl Store {
    /// Connects to `url`, creating an SQLite file and its folder if needed.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Store, StoreError> {
        Store::connect_with(url, max_connections, false).await
    }

    /// Connects for the portal's read API (src/portal.rs), which runs the same few
    /// statements thousands of times a minute:
    ///
    /// - A connection taken from the pool is not first checked with a round trip of its own
    ///   (sqlx's default, 15% of the pages on PostgreSQL); the API tries a read again when
    ///   its connection turns out to be gone.
    /// - PostgreSQL plans each statement once per connection, for any viewer
    ///   (`plan_cache_mode = force_generic_plan`). By default it plans the first five
    ///   executions for their viewer, and again after every `ANALYZE`, which autovacuum runs
    ///   after each large sync: 2–6 ms a plan, while reads during a sync go one at a time.
    pub async fn connect_for_reads(url: &str, max_connections: u32) -> Result<Store, StoreError> {
        Store::connect_with(url, max_connections, true).await
    }

    async fn connect_with(
        url: &str,
        max_connections: u32,
        for_reads: bool,
    ) -> Result<Store, StoreError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let mut options = PgConnectOptions::from_str(url)
                .map_err(|e| StoreError::Url(url.to_string(), e.to_string()))?;
            if for_reads {
                options = options.options([("plan_cache_mode", "force_generic_plan")]);
            }
            let pool = PgPoolOptions::new()
                .max_connections(max_connections)
                .test_before_acquire(!for_reads)
                .acquire_timeout(Duration::from_secs(30))
                .connect_with(options)
                .await?;
            return Ok(Store::Postgres(pool));
        }
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Url(url.to_string(), e.to_string()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(SQLITE_BUSY_TIMEOUT);
        if let Some(parent) = options.get_filename().parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent).map_err(|e| {
                StoreError::Url(
                    url.to_string(),
                    format!("cannot create {}: {e}", parent.display()),
                )
            })?;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections)
            .test_before_acquire(!for_reads)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await?;
        Ok(Store::Sqlite(pool))
    }

    /// Applies the backend's migrations (idempotent).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(pool) => sqlx::migrate!("./migrations/sqlite").run(pool).await?,
            Store::Postgres(pool) => sqlx::migrate!("./migrations/postgres").run(pool).await?,
        }
        self.derive_register_figures_if_missing().await?;
        Ok(())
    }

    /// The most connections the pool opens.
    pub fn max_connections(&self) -> u32 {
        match self {
            Store::Sqlite(pool) => pool.options().get_max_connections(),
            Store::Postgres(pool) => pool.options().get_max_connections(),
        }
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "sqlite",
            Store::Postgres(_) => "postgres",
        }
    }

    /// Writes a consistent copy of a SQLite database to the new file `to` (`VACUUM INTO`):
    /// the view of one read transaction, taken while the daemon may go on writing. On
    /// PostgreSQL, `pg_dump` does this and is refused here.
    pub async fn backup(&self, to: &std::path::Path) -> Result<(), StoreError> {
        let Store::Sqlite(pool) = self else {
            return Err(StoreError::Conflict(
                "a PostgreSQL database is backed up with pg_dump".into(),
            ));
        };
        if to.exists() {
            return Err(StoreError::Conflict(format!(
                "{} exists already: a backup goes to a new file",
                to.display()
            )));
        }
        let path = to
            .to_str()
            .ok_or_else(|| StoreError::Conflict(format!("{} is not a UTF-8 path", to.display())))?;
        sqlx::query("VACUUM INTO $1")
            .bind(path)
            .execute(pool)
            .await?;
        Ok(())
    }

    pub async fn close(&self) {
        on_pool!(self, pool => pool.close().await)
    }

    /// The writer of one box task (see [`InboxWriter`]). On SQLite it opens a connection of
    /// the task's own to the pool's database file.
    pub async fn inbox_writer(&self) -> Result<InboxWriter, StoreError> {
        let pool = match self {
            Store::Postgres(pool) => return Ok(InboxWriter(Writer::Postgres(pool.clone()))),
            Store::Sqlite(pool) => pool,
        };
        let file = {
            let mut connection = pool.acquire().await?;
            let mut handle = connection.lock_handle().await?;
            let db = handle.as_raw_handle().as_ptr();
            // SAFETY: the handle is live while locked; the name is copied out at once. A
            // null or empty name is an in-memory or temporary database.
            unsafe {
                let name = libsqlite3_sys::sqlite3_db_filename(db, c"main".as_ptr());
                (!name.is_null())
                    .then(|| std::ffi::CStr::from_ptr(name).to_bytes().to_vec())
                    .filter(|name| !name.is_empty())
            }
        };
        let Some(file) = file else {
            return Err(StoreError::Sqlite(
                "the inbox needs a database file: an in-memory SQLite database is not shared \
                 between connections"
                    .into(),
            ));
        };
        // The name as SQLite has it, bytes and all (a path need not be UTF-8).
        let path = std::path::PathBuf::from(
            <std::ffi::OsString as std::os::unix::ffi::OsStringExt>::from_vec(file),
        );
        let connection = pulled_sqlite::InboxConnection::open(&path)?;
        Ok(InboxWriter(Writer::Sqlite(Box::new(connection))))
    }

    /// Stores a pulled document and enqueues its processing, in one transaction. A document
    /// whose identity key is already stored is not stored again: its pull count grows. A box
    /// task keeps an [`InboxWriter`] for this; on SQLite this opens one for the call.
    #[tracing::instrument(skip_all, fields(mailbox = mailbox, file = %document.nazwa_pliku))]
    pub async fn store_pulled(
        &self,
        mailbox: &str,
        document: &PulledDocument,
        skrot: &str,
    ) -> Result<Stored, StoreError> {
        match self {
            Store::Sqlite(_) => {
                let mut writer = self.inbox_writer().await?;
                writer.store_pulled(mailbox, document, skrot).await
            }
            Store::Postgres(pool) => store_pulled_postgres(pool, mailbox, document, skrot).await,
        }
    }

    /// Records that ePUAP confirmed the receipt of document `id`.
    pub async fn mark_confirmed(&self, id: i64) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            sqlx::query(MARK_CONFIRMED)
            .bind(Utc::now())
            .bind(id)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Marks every unconfirmed document of `mailbox` except `head` as confirmed by inference:
    /// `pobierzNastepny` returns the head of the queue until it is confirmed, so once the head
    /// is another document (or the box is empty), every document pulled from it before was
    /// confirmed, even if the answer to that confirmation was lost. Returns how many.
    pub async fn infer_confirmed(
        &self,
        mailbox: &str,
        head: Option<i64>,
    ) -> Result<u64, StoreError> {
        let head = head.unwrap_or(-1);
        let affected = on_pool!(self, pool => {
            sqlx::query(INFER_CONFIRMED)
            .bind(Utc::now())
            .bind(mailbox)
            .bind(head)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(affected)
    }

    /// Claims up to `limit` runnable jobs (pending and due, or running with an expired
    /// lease), oldest first. The lease must cover the whole batch. On PostgreSQL several
    /// daemons may claim at once: `FOR UPDATE SKIP LOCKED` keeps each job with one of them.
    pub async fn claim_jobs(&self, lease: Duration, limit: i64) -> Result<Vec<Job>, StoreError> {
        let now = Utc::now();
        let until = now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::minutes(5));
        // The same statement; PostgreSQL adds row locking so that daemons sharing the
        // database never claim one job twice.
        let sql = match self {
            Store::Sqlite(_) => concat!(claim_sql!(), ")", returning_job!()),
            Store::Postgres(_) => {
                concat!(claim_sql!(), " FOR UPDATE SKIP LOCKED)", returning_job!())
            }
        };
        // A fresh token per claim; 63 random bits, so that two claims never share one.
        let token = (rand::random::<u64>() >> 1) as i64;
        on_pool!(self, pool => {
            let rows = sqlx::query(sql)
                .bind(until)
                .bind(now)
                .bind(limit)
                .bind(token)
                .fetch_all(pool)
                .await?;
            let mut jobs = rows
                .into_iter()
                .map(|row| {
                    Ok(Job {
                        id: row.try_get("id")?,
                        kind: row.try_get("kind")?,
                        key: row.try_get("key")?,
                        document_id: row.try_get("document_id")?,
                        attempts: row.try_get("attempts")?,
                        token: row.try_get("claim_token")?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()?;
            jobs.sort_by_key(|job| job.id);
            Ok(jobs)
        })
    }

    /// Extends the lease of every job still running under the claim `token` to `lease` from
    /// now; how many. A worker renews its batch while it runs, so that a slow step (a letter
    /// to a slow ePUAP) does not let another worker take over the jobs it has yet to run.
    pub async fn renew_claim(&self, token: i64, lease: Duration) -> Result<u64, StoreError> {
        let now = Utc::now();
        let until = now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::minutes(5));
        on_pool!(self, pool => {
            Ok(sqlx::query(
                "UPDATE job SET locked_until = $1 WHERE claim_token = $2 AND status = 'running'",
            )
            .bind(until)
            .bind(token)
            .execute(pool)
            .await?
            .rows_affected())
        })
    }

    /// Whether `claim` still holds its job (running under its token, within its lease).
    pub async fn holds(&self, claim: Claim) -> Result<bool, StoreError> {
        on_pool!(self, pool => {
            let held: Option<i64> = sqlx::query_scalar(
                "SELECT id FROM job WHERE id = $1 AND claim_token = $2 AND status = 'running' \
                 AND locked_until > $3",
            )
            .bind(claim.job)
            .bind(claim.token)
            .bind(Utc::now())
            .fetch_optional(pool)
            .await?;
            Ok(held.is_some())
        })
    }

    /// When the next unfinished job becomes claimable: a pending job's `run_after` or a
    /// running job's lease end. `None` when every job is done or failed.
    pub async fn next_job_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        on_pool!(self, pool => {
            let due: Option<DateTime<Utc>> = sqlx::query_scalar(
                "SELECT MIN(CASE WHEN status = 'pending' THEN run_after ELSE locked_until END) FROM job \
                 WHERE status IN ('pending', 'running')",
            )
            .fetch_one(pool)
            .await?;
            Ok(due)
        })
    }

    /// Records a failure: retried after `retry_after`, or failed for good when `give_up`.
    pub async fn fail_job(
        &self,
        claim: Claim,
        error: &str,
        retry_after: Duration,
        give_up: bool,
    ) -> Result<(), StoreError> {
        let status = if give_up { "failed" } else { "pending" };
        self.put_back(claim, error, retry_after, status, 0).await
    }

    /// Gives a claimed job back after its step met a database outage, not counting the
    /// attempt: pending again after `retry_after`, `error` kept as its last error.
    pub async fn release_job(
        &self,
        claim: Claim,
        error: &str,
        retry_after: Duration,
    ) -> Result<(), StoreError> {
        self.put_back(claim, error, retry_after, "pending", 1).await
    }

    /// Ends a claim that did not finish the job: `status`, the attempt count lowered by
    /// `given_back`. Only a job still `running` under this claim: one whose step committed
    /// although its caller saw an error (the answer to the COMMIT was lost) stays `done`, and
    /// one another worker took over stays with it.
    async fn put_back(
        &self,
        claim: Claim,
        error: &str,
        retry_after: Duration,
        status: &str,
        given_back: i64,
    ) -> Result<(), StoreError> {
        let now = Utc::now();
        let run_after =
            now + chrono::Duration::from_std(retry_after).unwrap_or(chrono::Duration::seconds(30));
        on_pool!(self, pool => {
            sqlx::query(
                "UPDATE job SET status = $1, attempts = attempts - $2, locked_until = NULL, \
                 last_error = $3, run_after = $4, updated_at = $5 WHERE id = $6 AND claim_token = $7 \
                 AND status = 'running'",
            )
            .bind(status)
            .bind(given_back)
            .bind(error)
            .bind(run_after)
            .bind(now)
            .bind(claim.job)
            .bind(claim.token)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// The content bytes of a stored document.
    pub async fn document_content(&self, id: i64) -> Result<Vec<u8>, StoreError> {
        let content: Option<Vec<u8>> = on_pool!(self, pool => {
            sqlx::query_scalar("SELECT content FROM inbound_document WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        content.ok_or(StoreError::NotFound {
            what: "inbound_document",
            id,
        })
    }

    /// Records the classify job's result and marks the job done, in one transaction, so the
    /// effect and the job's completion cannot part (idempotent: a rerun writes the same row).
    pub async fn finish_classify(
        &self,
        claim: Claim,
        document_id: i64,
        classification: &Classification,
    ) -> Result<(), StoreError> {
        let (namespace, root, error) = classification_columns(classification);
        let now = Utc::now();
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            sqlx::query(
                "UPDATE inbound_document SET form_namespace = $1, form_root = $2, classification_error = $3, \
                 classified_at = $4 WHERE id = $5",
            )
            .bind(namespace)
            .bind(root)
            .bind(error)
            .bind(now)
            .bind(document_id)
            .execute(&mut *tx)
            .await?;
            finish_claimed!(&mut *tx, claim, now);
            tx.commit().await?;
        });
        Ok(())
    }

    /// Records the judgement of a document (signature verdict, signer, form type) and marks
    /// the job done, in one transaction; enqueues the follow-up job (e.g. `provision`) in the
    /// same transaction, so that a crash cannot lose it.
    pub async fn finish_verify(
        &self,
        claim: Claim,
        document_id: i64,
        judgement: &Judgement<'_>,
    ) -> Result<(), StoreError> {
        let now = Utc::now();
        let verdict = judgement.verdict;
        let identity = verdict.and_then(|v| v.identity.as_ref());
        let (form_namespace, form_root, classification_error) = judgement
            .classification
            .map(classification_columns)
            .unwrap_or_default();
        let chain = verdict
            .filter(|v| !v.chain.is_empty())
            .map(|v| serde_json::to_string(&v.chain).unwrap_or_default());
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            sqlx::query(
                "UPDATE inbound_document SET signature_indication = $1, signature_subindication = $2, \
                 signature_reason = $3, signature_profile = $4, signature_signer = $5, verified_at = $6, \
                 signature_kind = $8, form_type = $9, form_error = $10, signer_given_name = $11, \
                 signer_surname = $12, signer_pesel = $13, signer_organization = $14, \
                 signer_epuap_account = $15, signing_time = $16, signer_qualified = $17, \
                 signer_certificate = $18, signature_chain = $19, \
                 form_namespace = COALESCE($20, form_namespace), form_root = COALESCE($21, form_root), \
                 classification_error = COALESCE($22, classification_error), \
                 classified_at = CASE WHEN $23 THEN $6 ELSE classified_at END WHERE id = $7",
            )
            .bind(verdict.map(|v| v.indication.to_string()))
            .bind(verdict.and_then(|v| v.subindication))
            .bind(verdict.map(|v| v.reason.clone()).unwrap_or_else(|| judgement.not_checked.to_string()))
            .bind(verdict.map(|v| format!("{:?}", v.profile).to_lowercase()))
            .bind(verdict.and_then(|v| v.signer.clone()))
            .bind(now)
            .bind(document_id)
            .bind(verdict.and_then(|v| v.kind).map(|k| k.as_str()))
            .bind(judgement.form_type.map(|f| f.as_str()))
            .bind(judgement.form_error.as_deref())
            .bind(identity.and_then(|i| i.given_name.clone()))
            .bind(identity.and_then(|i| i.surname.clone()))
            .bind(identity.and_then(|i| i.pesel.clone()))
            .bind(identity.and_then(|i| i.organization_identifier.clone()))
            .bind(identity.and_then(|i| i.epuap_account.clone()))
            .bind(verdict.and_then(|v| v.signing_time))
            .bind(verdict.and_then(|v| v.qualified_certificate))
            .bind(verdict.and_then(|v| v.signer_certificate.clone()))
            .bind(chain)
            .bind(form_namespace)
            .bind(form_root)
            .bind(classification_error)
            .bind(judgement.classification.is_some())
            .execute(&mut *tx)
            .await?;
            if let Some((letter, mail)) = judgement.correspondence {
                correspondence_in_tx!(tx, letter, mail, now);
            }
            if let Some(kind) = judgement.follow_up {
                sqlx::query(
                    "INSERT INTO job (kind, key, document_id, run_after, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $4, $4) ON CONFLICT (kind, key) DO NOTHING",
                )
                .bind(kind.as_str())
                .bind(document_id.to_string())
                .bind(document_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            finish_claimed!(&mut *tx, claim, now);
            tx.commit().await?;
        });
        Ok(())
    }

    /// The sequence number of the trusted list last used for `territory`.
    pub async fn trusted_list_sequence(&self, territory: &str) -> Result<Option<u64>, StoreError> {
        on_pool!(self, pool => {
            let seq: Option<i64> = sqlx::query_scalar(
                "SELECT sequence_number FROM trusted_list_state WHERE territory = $1",
            )
            .bind(territory)
            .fetch_optional(pool)
            .await?;
            Ok(seq.map(|s| s as u64))
        })
    }

    /// Records the trusted list in use; never lowers the recorded sequence number.
    pub async fn record_trusted_list(&self, list: &LoadedList) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO trusted_list_state (territory, sequence_number, issued_at, loaded_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (territory) DO UPDATE SET \
                 sequence_number = excluded.sequence_number, issued_at = excluded.issued_at, \
                 loaded_at = excluded.loaded_at \
                 WHERE trusted_list_state.sequence_number <= excluded.sequence_number",
            )
            .bind(&list.territory)
            .bind(list.sequence_number as i64)
            .bind(list.issued)
            .bind(Utc::now())
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Marks a job done whose effect is already recorded (a rerun after a crash).
    pub async fn finish_job(&self, claim: Claim) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            finish_claimed!(pool, claim, Utc::now());
        });
        Ok(())
    }

    pub async fn counts(&self) -> Result<Counts, StoreError> {
        on_pool!(self, pool => {
            let row = sqlx::query(
                "SELECT (SELECT COUNT(*) FROM inbound_document) AS documents, \
                 (SELECT COUNT(*) FROM inbound_delivery WHERE confirmed_at IS NULL) AS unconfirmed, \
                 (SELECT COUNT(*) FROM job WHERE status = 'pending') AS pending, \
                 (SELECT COUNT(*) FROM job WHERE status = 'running') AS running, \
                 (SELECT COUNT(*) FROM job WHERE status = 'done') AS done, \
                 (SELECT COUNT(*) FROM job WHERE status = 'failed') AS failed",
            )
            .fetch_one(pool)
            .await?;
            Ok(Counts {
                documents: row.try_get("documents")?,
                unconfirmed: row.try_get("unconfirmed")?,
                jobs_pending: row.try_get("pending")?,
                jobs_running: row.try_get("running")?,
                jobs_done: row.try_get("done")?,
                jobs_failed: row.try_get("failed")?,
            })
        })
    }

    /// The jobs that gave up, the most recent first, at most `limit`.
    pub async fn failed_jobs(&self, limit: i64) -> Result<Vec<FailedJob>, StoreError> {
        on_pool!(self, pool => {
            let rows = sqlx::query(
                "SELECT id, kind, key, attempts, updated_at, last_error FROM job \
                 WHERE status = 'failed' ORDER BY updated_at DESC, id DESC LIMIT $1",
            )
            .bind(limit)
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|row| {
                    Ok(FailedJob {
                        id: row.try_get("id")?,
                        kind: row.try_get("kind")?,
                        key: row.try_get("key")?,
                        attempts: row.try_get("attempts")?,
                        failed_at: row.try_get("updated_at")?,
                        error: row.try_get("last_error")?,
                    })
                })
                .collect()
        })
    }

    /// When the newest document was stored, if any.
    pub async fn last_received(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        on_pool!(self, pool => {
            Ok(sqlx::query_scalar(
                "SELECT received_at FROM inbound_document ORDER BY id DESC LIMIT 1",
            )
            .fetch_optional(pool)
            .await?)
        })
    }

    /// Documents received since `since`, newest last, for the run summary.
    pub async fn recent_documents(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<DocumentSummary>, StoreError> {
        on_pool!(self, pool => {
            let rows = sqlx::query(
                "SELECT id, box_address, nadawca_uzytkownik, podmiot_identyfikator, nazwa_pliku, form_root, \
                 signature_indication, signature_subindication, \
                 LENGTH(content) AS size FROM inbound_document WHERE received_at >= $1 ORDER BY id",
            )
            .bind(since)
            .fetch_all(pool)
            .await?;
            rows.into_iter()
                .map(|row| {
                    Ok(DocumentSummary {
                        id: row.try_get("id")?,
                        mailbox: row.try_get("box_address")?,
                        sender: row
                            .try_get::<Option<String>, _>("nadawca_uzytkownik")?
                            .unwrap_or(row.try_get("podmiot_identyfikator")?),
                        file: row.try_get("nazwa_pliku")?,
                        form: row.try_get("form_root")?,
                        signature: row
                            .try_get::<Option<String>, _>("signature_indication")?
                            .map(|i| match row.try_get::<Option<String>, _>("signature_subindication") {
                                Ok(Some(sub)) => format!("{i}/{sub}"),
                                _ => i,
                            }),
                        size: row.try_get::<i32, _>("size").map(i64::from).or_else(|_| row.try_get::<i64, _>("size"))?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .map_err(StoreError::from)
        })
    }
}

/// One line of the run summary.
#[derive(Debug, Clone)]
pub struct DocumentSummary {
    pub id: i64,
    pub mailbox: String,
    pub sender: String,
    pub file: String,
    pub form: Option<String>,
    /// The signature verdict, `INDICATION[/SUBINDICATION]`, once checked.
    pub signature: Option<String>,
    pub size: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The inbox's hot path writes its job's kind in the SQL text (its statement is
    /// prepared once, on SQLite by hand): it must be the kind the worker runs.
    #[test]
    fn the_inbox_queues_the_verify_kind() {
        let literal = format!("'{}'", crate::jobs::JobKind::Verify.as_str());
        assert!(INSERT_VERIFY_JOB.contains(&literal), "{INSERT_VERIFY_JOB}");
    }

    #[test]
    fn an_unreachable_database_is_an_outage_and_a_refusal_is_not() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer");
        assert!(StoreError::Database(sqlx::Error::Io(io)).is_outage());
        assert!(StoreError::Database(sqlx::Error::PoolTimedOut).is_outage());
        assert!(!StoreError::Database(sqlx::Error::RowNotFound).is_outage());
        assert!(!StoreError::Conflict("decided already".into()).is_outage());
        assert!(!StoreError::Sqlite("disk I/O error".into()).is_outage());
    }
}
