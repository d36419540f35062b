//! SQLite's C API, for the hot paths that would otherwise send one statement at a time
//! through sqlx's worker thread: a register load (on a connection sqlx holds, through
//! `lock_handle`) and the inbox's durable store (on a box task's own connection,
//! `pulled_sqlite`).

use std::ffi::{CStr, c_char, c_int};
use std::ptr::{NonNull, null_mut};

use libsqlite3_sys as ffi;

use crate::registers::Value;

/// Runs `f` where blocking is allowed: on a multi-threaded runtime the worker hands its
/// other tasks away first (a key load or a batch takes milliseconds to a second).
pub(crate) fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

/// A prepared statement on a handle locked out of sqlx; finalized when dropped.
pub(crate) struct Statement {
    raw: NonNull<ffi::sqlite3_stmt>,
    db: *mut ffi::sqlite3,
}

/// What SQLite said, and what was being done.
#[derive(Debug)]
pub(crate) struct RawError {
    pub(crate) message: String,
    /// SQLite's extended result code.
    pub(crate) code: c_int,
}

impl From<RawError> for super::StoreError {
    fn from(error: RawError) -> super::StoreError {
        super::StoreError::Sqlite(error.message)
    }
}

impl std::fmt::Display for RawError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

pub(crate) fn failure(db: *mut ffi::sqlite3, doing: &str) -> RawError {
    // SAFETY: `db` is a live handle; sqlite3_errmsg returns a NUL-terminated string owned
    // by SQLite, copied out at once.
    let (message, code) = unsafe {
        (
            CStr::from_ptr(ffi::sqlite3_errmsg(db)).to_string_lossy(),
            ffi::sqlite3_extended_errcode(db),
        )
    };
    RawError {
        message: format!("SQLite, {doing}: {message}"),
        code,
    }
}

/// Runs `sql` (statements without results) on `db`.
pub(crate) fn execute(db: *mut ffi::sqlite3, sql: &str) -> Result<(), RawError> {
    let sql = std::ffi::CString::new(sql).map_err(|_| RawError {
        message: format!("SQLite, running {sql:?}: a NUL in the statement"),
        code: ffi::SQLITE_MISUSE,
    })?;
    // SAFETY: `db` is a live handle that only this thread uses for now (sqlx's handle lock,
    // or a box task's own connection held by `&mut`); `sql` is NUL-terminated.
    let rc = unsafe { ffi::sqlite3_exec(db, sql.as_ptr(), None, null_mut(), null_mut()) };
    if rc == ffi::SQLITE_OK {
        Ok(())
    } else {
        Err(failure(db, &format!("running {sql:?}")))
    }
}

impl Statement {
    pub(crate) fn prepare(db: *mut ffi::sqlite3, sql: &str) -> Result<Statement, RawError> {
        let mut raw = null_mut();
        // SAFETY: `db` is a live handle that only this thread uses for now (as in `execute`);
        // `sql` is valid for `sql.len()` bytes.
        let rc = unsafe {
            ffi::sqlite3_prepare_v2(
                db,
                sql.as_ptr().cast::<c_char>(),
                sql.len() as c_int,
                &mut raw,
                null_mut(),
            )
        };
        match NonNull::new(raw) {
            Some(raw) if rc == ffi::SQLITE_OK => Ok(Statement { raw, db }),
            _ => Err(failure(db, &format!("preparing {sql:?}"))),
        }
    }

    fn check(&self, rc: c_int, doing: &str) -> Result<(), RawError> {
        if rc == ffi::SQLITE_OK {
            Ok(())
        } else {
            Err(failure(self.db, doing))
        }
    }

    /// Binds text to parameter `index` (1-based); SQLite copies it (SQLITE_TRANSIENT).
    pub(crate) fn bind_text(&mut self, index: c_int, bytes: &[u8]) -> Result<(), RawError> {
        // SAFETY: the statement is live; SQLite copies `bytes` before returning.
        let rc = unsafe {
            ffi::sqlite3_bind_text(
                self.raw.as_ptr(),
                index,
                bytes.as_ptr().cast::<c_char>(),
                bytes.len() as c_int,
                ffi::SQLITE_TRANSIENT(),
            )
        };
        self.check(rc, "binding a value")
    }

    /// Binds a blob to parameter `index`; SQLite copies it.
    pub(crate) fn bind_blob(&mut self, index: c_int, bytes: &[u8]) -> Result<(), RawError> {
        // SAFETY: the statement is live; SQLite copies `bytes` before returning.
        let rc = unsafe {
            ffi::sqlite3_bind_blob(
                self.raw.as_ptr(),
                index,
                bytes.as_ptr().cast(),
                bytes.len() as c_int,
                ffi::SQLITE_TRANSIENT(),
            )
        };
        self.check(rc, "binding a value")
    }

    /// Binds text, or NULL for `None`.
    pub(crate) fn bind_opt_text(
        &mut self,
        index: c_int,
        text: Option<&str>,
    ) -> Result<(), RawError> {
        match text {
            Some(text) => self.bind_text(index, text.as_bytes()),
            None => self.bind_null(index),
        }
    }

    pub(crate) fn bind_null(&mut self, index: c_int) -> Result<(), RawError> {
        // SAFETY: the statement is live.
        let rc = unsafe { ffi::sqlite3_bind_null(self.raw.as_ptr(), index) };
        self.check(rc, "binding a value")
    }

    pub(crate) fn bind_i64(&mut self, index: c_int, value: i64) -> Result<(), RawError> {
        // SAFETY: the statement is live.
        let rc = unsafe { ffi::sqlite3_bind_int64(self.raw.as_ptr(), index, value) };
        self.check(rc, "binding a value")
    }

    /// Binds a checked value as sqlx would store it (a date as TEXT `YYYY-MM-DD`).
    pub(crate) fn bind(&mut self, index: c_int, value: &Value) -> Result<(), RawError> {
        match value {
            Value::Text(Some(t)) => self.bind_text(index, t.as_bytes()),
            Value::Int(Some(i)) => self.bind_i64(index, *i),
            Value::Date(Some(d)) => {
                let mut iso = [0u8; 10];
                crate::registers::write_iso_date(*d, &mut iso);
                self.bind_text(index, &iso)
            }
            Value::Text(None) | Value::Int(None) | Value::Date(None) => self.bind_null(index),
        }
    }

    /// One step: true while it yields rows.
    pub(crate) fn step(&mut self) -> Result<bool, RawError> {
        // SAFETY: the statement is live.
        match unsafe { ffi::sqlite3_step(self.raw.as_ptr()) } {
            ffi::SQLITE_ROW => Ok(true),
            ffi::SQLITE_DONE => Ok(false),
            _ => Err(failure(self.db, &format!("running {:?}", self.sql_head()))),
        }
    }

    /// The start of the statement's SQL, to name it in an error.
    fn sql_head(&self) -> String {
        // SAFETY: the statement is live; sqlite3_sql returns its NUL-terminated text (or
        // null), owned by SQLite for the statement's life and copied out at once.
        let sql = unsafe {
            let sql = ffi::sqlite3_sql(self.raw.as_ptr());
            if sql.is_null() {
                return String::new();
            }
            CStr::from_ptr(sql).to_string_lossy()
        };
        match sql.char_indices().nth(60) {
            Some((at, _)) => format!("{}…", &sql[..at]),
            None => sql.into_owned(),
        }
    }

    /// The connection the statement belongs to.
    pub(crate) fn db(&self) -> *mut ffi::sqlite3 {
        self.db
    }

    pub(crate) fn reset(&mut self) {
        // SAFETY: the statement is live. An error of the last step was reported by step.
        unsafe { ffi::sqlite3_reset(self.raw.as_ptr()) };
    }

    /// Column `i` of the current row as bytes (empty for NULL).
    pub(crate) fn column_bytes(&self, i: c_int) -> &[u8] {
        // SAFETY: the statement is positioned on a row; the pointer stays valid until the
        // next step, which needs `&mut self`, so the borrow cannot outlive it.
        unsafe {
            let data = ffi::sqlite3_column_text(self.raw.as_ptr(), i);
            let len = ffi::sqlite3_column_bytes(self.raw.as_ptr(), i);
            if data.is_null() {
                &[]
            } else {
                std::slice::from_raw_parts(data, len as usize)
            }
        }
    }

    pub(crate) fn column_i64(&self, i: c_int) -> i64 {
        // SAFETY: the statement is positioned on a row.
        unsafe { ffi::sqlite3_column_int64(self.raw.as_ptr(), i) }
    }
}

impl Drop for Statement {
    fn drop(&mut self) {
        // SAFETY: finalized once, here.
        unsafe { ffi::sqlite3_finalize(self.raw.as_ptr()) };
    }
}
