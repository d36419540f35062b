//! The inbox's durable store on SQLite, through SQLite's C API.
//!
//! Each box task owns an [`InboxConnection`]: a connection of its own to the database file,
//! with its statements prepared once. Storing a document is one transaction on it, and the
//! confirmation marks are one statement each, all run on the calling thread. Through sqlx,
//! every statement was a round trip to sqlx's worker thread, and every call a thread
//! hand-off (`block_in_place`); on the drain bench those hand-offs, the statement
//! preparation and sqlx's own work cost more CPU than SQLite's.
//!
//! The calling thread is an async worker, so nothing here may wait long: the write lock is
//! first tried without waiting, and only when another writer (a register run) holds it does
//! the wait move off the async worker (`sqlite_raw::blocking`), with the pool's busy
//! timeout (`SQLITE_BUSY_TIMEOUT`). What remains on the worker is the commit's fsync: a fraction of a millisecond
//! on the disks measured (README, the drain bench), once per document.
//!
//! [`Store::store_pulled`](super::Store::store_pulled), for callers without a box task,
//! opens one for the call. The SQL is the PostgreSQL path's (`super::INSERT_PULLED` and the
//! rest). The database must be a file: an in-memory one is not shared between connections.

use std::ffi::{CString, c_int};
use std::path::Path;
use std::ptr::{NonNull, null_mut};

use chrono::{DateTime, Utc};
use libsqlite3_sys as ffi;

use super::sqlite_raw::{RawError, Statement, blocking, execute};
use super::{
    COUNT_PULL_AGAIN, INFER_CONFIRMED, INSERT_DELIVERY, INSERT_PULLED, INSERT_VERIFY_JOB,
    MARK_CONFIRMED, SQLITE_BUSY_TIMEOUT, Stored,
};
use crate::document::PulledDocument;

/// As sqlx writes a timestamp, so that both paths store the same text.
fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false)
}

/// The statements of one stored document.
struct StoreStatements {
    insert: Statement,
    delivery: Statement,
    job: Statement,
    again: Statement,
}

impl StoreStatements {
    fn prepare(db: *mut ffi::sqlite3) -> Result<StoreStatements, RawError> {
        Ok(StoreStatements {
            insert: Statement::prepare(db, INSERT_PULLED)?,
            delivery: Statement::prepare(db, INSERT_DELIVERY)?,
            job: Statement::prepare(db, INSERT_VERIFY_JOB)?,
            again: Statement::prepare(db, COUNT_PULL_AGAIN)?,
        })
    }

    /// The document's statements inside an open write transaction: the insert, its delivery
    /// record and its `verify` job, or the pull count of a document stored before. Every
    /// statement is reset before it returns, so that the transaction can commit.
    fn run(
        &mut self,
        mailbox: &str,
        document: &PulledDocument,
        skrot: &str,
        key: &str,
        now: &str,
    ) -> Result<Stored, RawError> {
        let p = &document.dane_podmiotu;
        let insert = &mut self.insert;
        insert.reset();
        let texts: [(i32, Option<&str>); 20] = [
            (1, Some(key)),
            (2, Some(mailbox)),
            (3, Some(&p.identyfikator)),
            (4, Some(&p.typ_osoby)),
            (5, p.imie_skrot.as_deref()),
            (6, p.nazwisko_nazwa.as_deref()),
            (7, p.nip.as_deref()),
            (8, p.pesel.as_deref()),
            (9, p.regon.as_deref()),
            (11, document.dane_nadawcy.uzytkownik.as_deref()),
            (12, document.dane_nadawcy.system.as_deref()),
            (13, Some(&document.data_nadania)),
            (14, Some(&document.nazwa_skrytki)),
            (15, Some(&document.adres_skrytki)),
            (16, document.adres_odpowiedzi.as_deref()),
            (19, Some(&document.nazwa_pliku)),
            (20, document.typ_pliku.as_deref()),
            (22, Some(&document.content_sha256())),
            (23, Some(skrot)),
            (24, Some(now)),
        ];
        for (index, text) in texts {
            insert.bind_opt_text(index, text)?;
        }
        insert.bind_i64(10, i64::from(p.zgoda))?;
        insert.bind_i64(17, i64::from(document.czy_testowe))?;
        insert.bind_blob(18, &document.dane_dodatkowe)?;
        insert.bind_blob(21, &document.content)?;
        let inserted = insert.step()?.then(|| insert.column_i64(0));
        insert.reset();
        Ok(match inserted {
            Some(id) => {
                let delivery = &mut self.delivery;
                delivery.reset();
                delivery.bind_i64(1, id)?;
                delivery.bind_text(2, mailbox.as_bytes())?;
                delivery.step()?;
                delivery.reset();
                let job = &mut self.job;
                job.reset();
                job.bind_text(1, id.to_string().as_bytes())?;
                job.bind_i64(2, id)?;
                job.bind_text(3, now.as_bytes())?;
                job.step()?;
                job.reset();
                Stored { id, new: true }
            }
            None => {
                let again = &mut self.again;
                again.reset();
                again.bind_text(1, key.as_bytes())?;
                let found = again.step()?.then(|| again.column_i64(0));
                again.reset();
                let Some(id) = found else {
                    return Err(RawError {
                        message: format!("SQLite: the stored document {key:?} is gone"),
                        code: ffi::SQLITE_NOTFOUND,
                    });
                };
                Stored { id, new: false }
            }
        })
    }
}

/// A box task's own connection to the SQLite database, with its statements prepared.
pub(crate) struct InboxConnection {
    // Fields drop in order: the statements are finalized before `db` closes the connection.
    document: StoreStatements,
    mark: Statement,
    infer: Statement,
    begin: Statement,
    commit: Statement,
    full: Statement,
    normal: Statement,
    db: Handle,
}

/// An open connection, closed when dropped.
struct Handle(NonNull<ffi::sqlite3>);

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: closed once, here, after every statement on it was finalized (the field
        // order of `InboxConnection`, or none prepared yet in `open`).
        unsafe { ffi::sqlite3_close(self.0.as_ptr()) };
    }
}

// SAFETY: SQLite is built thread-safe (libsqlite3-sys's bundled build, SQLITE_THREADSAFE=1):
// a connection and its statements may move between threads. `InboxConnection` is used
// through `&mut` only, so never from two threads at once.
unsafe impl Send for InboxConnection {}

impl InboxConnection {
    /// Opens `path` (which exists: the pool created it and migrated it) for the inbox.
    pub(crate) fn open(path: &Path) -> Result<InboxConnection, RawError> {
        let name = CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| RawError {
            message: format!("SQLite: the database path {} has a NUL", path.display()),
            code: ffi::SQLITE_MISUSE,
        })?;
        let mut raw = null_mut();
        // SAFETY: `name` is NUL-terminated; `raw` receives the handle (even on failure),
        // which `Handle` closes when dropped, on every path below.
        let rc = unsafe {
            ffi::sqlite3_open_v2(
                name.as_ptr(),
                &mut raw,
                ffi::SQLITE_OPEN_READWRITE | ffi::SQLITE_OPEN_NOMUTEX,
                std::ptr::null(),
            )
        };
        let Some(handle) = NonNull::new(raw).map(Handle) else {
            return Err(RawError {
                message: format!("SQLite: cannot open {}: out of memory", path.display()),
                code: rc,
            });
        };
        let db = handle.0.as_ptr();
        if rc != ffi::SQLITE_OK {
            return Err(super::sqlite_raw::failure(
                db,
                &format!("opening {}", path.display()),
            ));
        }
        // WAL is the database's (set by the pool, persistent in the file); the rest is per
        // connection, as the pool's connections have it. On a failure below, the statements
        // already prepared are finalized before `handle`, a local declared before them,
        // closes the connection.
        execute(db, "PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL")?;
        Ok(InboxConnection {
            document: StoreStatements::prepare(db)?,
            mark: Statement::prepare(db, MARK_CONFIRMED)?,
            infer: Statement::prepare(db, INFER_CONFIRMED)?,
            begin: Statement::prepare(db, "BEGIN IMMEDIATE")?,
            commit: Statement::prepare(db, "COMMIT")?,
            full: Statement::prepare(db, "PRAGMA synchronous = FULL")?,
            normal: Statement::prepare(db, "PRAGMA synchronous = NORMAL")?,
            db: handle,
        })
    }

    /// Runs a prepared statement without results from its start.
    fn run(statement: &mut Statement) -> Result<(), RawError> {
        statement.reset();
        let result = statement.step().map(drop);
        statement.reset();
        result
    }

    /// Takes the write lock: at once if it is free; otherwise waits for it off the async
    /// worker, up to the busy timeout.
    fn begin(&mut self) -> Result<(), RawError> {
        let db = self.db.0.as_ptr();
        // SAFETY: the handle is live and used by this thread only (`&mut self`).
        unsafe { ffi::sqlite3_busy_timeout(db, 0) };
        match Self::run(&mut self.begin) {
            Err(error) if error.code & 0xff == ffi::SQLITE_BUSY => {
                let wait = SQLITE_BUSY_TIMEOUT.as_millis().min(c_int::MAX as u128) as c_int;
                let begin = &mut self.begin;
                blocking(|| {
                    // SAFETY: as above.
                    unsafe { ffi::sqlite3_busy_timeout(db, wait) };
                    Self::run(begin)
                })
            }
            other => other,
        }
    }

    /// Runs `statements` in one write transaction, committed with the WAL fsynced if
    /// `durable`, rolled back if any fails.
    fn transaction<T>(
        &mut self,
        durable: bool,
        statements: impl FnOnce(&mut InboxConnection) -> Result<T, RawError>,
    ) -> Result<T, RawError> {
        if durable {
            Self::run(&mut self.full)?;
        }
        let result = self
            .begin()
            .and_then(|()| statements(self))
            .and_then(|value| Self::run(&mut self.commit).map(|()| value));
        if result.is_err() {
            // A failed statement may have ended the transaction already: nothing to report.
            let _ = execute(self.db.0.as_ptr(), "ROLLBACK");
        }
        let normal = if durable {
            Self::run(&mut self.normal)
        } else {
            Ok(())
        };
        let value = result?;
        normal?;
        Ok(value)
    }

    /// Stores a pulled document durably: see `Store::store_pulled`.
    pub(crate) fn store(
        &mut self,
        mailbox: &str,
        document: &PulledDocument,
        skrot: &str,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Stored, RawError> {
        let now = timestamp(now);
        self.transaction(true, |connection| {
            connection.document.run(mailbox, document, skrot, key, &now)
        })
    }

    /// See `Store::mark_confirmed`.
    pub(crate) fn mark_confirmed(&mut self, id: i64, now: DateTime<Utc>) -> Result<(), RawError> {
        let now = timestamp(now);
        self.transaction(false, |connection| {
            let mark = &mut connection.mark;
            mark.reset();
            mark.bind_text(1, now.as_bytes())?;
            mark.bind_i64(2, id)?;
            Self::run_bound(mark).map(drop)
        })
    }

    /// See `Store::infer_confirmed`.
    pub(crate) fn infer_confirmed(
        &mut self,
        mailbox: &str,
        head: i64,
        now: DateTime<Utc>,
    ) -> Result<u64, RawError> {
        let now = timestamp(now);
        self.transaction(false, |connection| {
            let infer = &mut connection.infer;
            infer.reset();
            infer.bind_text(1, now.as_bytes())?;
            infer.bind_text(2, mailbox.as_bytes())?;
            infer.bind_i64(3, head)?;
            Self::run_bound(infer)
        })
    }

    /// Steps a bound statement without results; the rows it changed.
    fn run_bound(statement: &mut Statement) -> Result<u64, RawError> {
        let result = statement.step();
        statement.reset();
        result?;
        // SAFETY: the handle is live; the count is of the statement just run.
        Ok(unsafe { ffi::sqlite3_changes64(statement.db()) } as u64)
    }
}
