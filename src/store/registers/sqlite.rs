//! SQLite: the stored hashes and keys are read, and the rows written, through SQLite's C
//! API, on the connection (and inside the transaction) that sqlx holds. A large import spent most of
//! its time sending multi-row statements through sqlx's worker thread; here each batch is
//! one prepared statement stepped once per row, as `sqlite3 .import` does.
//!
//! Into an empty table the secondary indexes are dropped first and built again after the
//! load, in the same transaction: building an index from a full table is much cheaper than
//! keeping it sorted row by row, and readers (WAL) see the old table, indexes and all,
//! until the commit.

use std::ffi::{CStr, c_char, c_int};
use std::ptr::{NonNull, null_mut};

use libsqlite3_sys as ffi;
use sqlx::SqliteConnection;

use super::{
    Batches, KeyReader, Known, References, RowSink, RunContext, SyncCounts, SyncError, WriteRows,
    compare_rows, duplicate_id, id_key,
};
use crate::registers::csv_source::{Row, RowError};
use crate::registers::{Register, Value};

/// Runs `f` where blocking is allowed: on a multi-threaded runtime the worker hands its
/// other tasks away first (a key load or a batch takes milliseconds to a second).
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

/// A prepared statement on a handle locked out of sqlx; finalized when dropped.
struct Statement {
    raw: NonNull<ffi::sqlite3_stmt>,
    db: *mut ffi::sqlite3,
}

fn failure(db: *mut ffi::sqlite3, doing: &str) -> SyncError {
    // SAFETY: `db` is a live handle; sqlite3_errmsg returns a NUL-terminated string owned
    // by SQLite, copied out at once.
    let message = unsafe { CStr::from_ptr(ffi::sqlite3_errmsg(db)) }.to_string_lossy();
    SyncError::Other(format!("SQLite, {doing}: {message}"))
}

impl Statement {
    fn prepare(db: *mut ffi::sqlite3, sql: &str) -> Result<Statement, SyncError> {
        let mut raw = null_mut();
        // SAFETY: `db` is a live handle that only this thread uses while the caller holds
        // sqlx's handle lock; `sql` is valid for `sql.len()` bytes.
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

    fn check(&self, rc: c_int, doing: &str) -> Result<(), SyncError> {
        if rc == ffi::SQLITE_OK {
            Ok(())
        } else {
            Err(failure(self.db, doing))
        }
    }

    /// Binds text to parameter `index` (1-based); SQLite copies it (SQLITE_TRANSIENT).
    fn bind_text(&mut self, index: c_int, bytes: &[u8]) -> Result<(), SyncError> {
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

    fn bind_i64(&mut self, index: c_int, value: i64) -> Result<(), SyncError> {
        // SAFETY: the statement is live.
        let rc = unsafe { ffi::sqlite3_bind_int64(self.raw.as_ptr(), index, value) };
        self.check(rc, "binding a value")
    }

    /// Binds a checked value as sqlx would store it (a date as TEXT `YYYY-MM-DD`).
    fn bind(&mut self, index: c_int, value: &Value) -> Result<(), SyncError> {
        match value {
            Value::Text(Some(t)) => self.bind_text(index, t.as_bytes()),
            Value::Int(Some(i)) => self.bind_i64(index, *i),
            Value::Date(Some(d)) => {
                let mut iso = [0u8; 10];
                crate::registers::write_iso_date(*d, &mut iso);
                self.bind_text(index, &iso)
            }
            Value::Text(None) | Value::Int(None) | Value::Date(None) => {
                // SAFETY: the statement is live.
                let rc = unsafe { ffi::sqlite3_bind_null(self.raw.as_ptr(), index) };
                self.check(rc, "binding a value")
            }
        }
    }

    /// One step: true while it yields rows.
    fn step(&mut self) -> Result<bool, SyncError> {
        // SAFETY: the statement is live.
        match unsafe { ffi::sqlite3_step(self.raw.as_ptr()) } {
            ffi::SQLITE_ROW => Ok(true),
            ffi::SQLITE_DONE => Ok(false),
            _ => Err(failure(self.db, "writing a row")),
        }
    }

    /// Whether the last step failed on the table's primary key.
    fn primary_key_refused(&self) -> bool {
        // SAFETY: `db` is a live handle.
        unsafe { ffi::sqlite3_extended_errcode(self.db) == ffi::SQLITE_CONSTRAINT_PRIMARYKEY }
    }

    fn reset(&mut self) {
        // SAFETY: the statement is live. An error of the last step was reported by step.
        unsafe { ffi::sqlite3_reset(self.raw.as_ptr()) };
    }

    /// Column `i` of the current row as bytes (empty for NULL).
    fn column_bytes(&self, i: c_int) -> &[u8] {
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

    fn column_i64(&self, i: c_int) -> i64 {
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

impl KeyReader for SqliteConnection {
    async fn read_keys(
        &mut self,
        query: &str,
        mut each: impl FnMut(u128, i64),
    ) -> Result<(), SyncError> {
        let mut handle = self.lock_handle().await?;
        let db = handle.as_raw_handle().as_ptr();
        blocking(|| {
            let mut statement = Statement::prepare(db, query)?;
            while statement.step()? {
                each(id_key(statement.column_bytes(0)), statement.column_i64(1));
            }
            Ok(())
        })
    }

    async fn read_hashes(&mut self, table: &str) -> Result<Vec<i64>, SyncError> {
        let mut handle = self.lock_handle().await?;
        let db = handle.as_raw_handle().as_ptr();
        blocking(|| {
            let mut statement = Statement::prepare(db, &format!("SELECT row_hash FROM {table}"))?;
            let mut hashes = Vec::new();
            while statement.step()? {
                hashes.push(statement.column_i64(0));
            }
            Ok(hashes)
        })
    }
}

struct Upserts<'c> {
    conn: &'c mut SqliteConnection,
    sql: String,
    /// The run, to name the row a statement refused.
    run: &'c RunContext<'c>,
    /// Plain inserts into an empty table: its primary key refuses an id named twice.
    first_load: bool,
}

impl KeyReader for Upserts<'_> {
    async fn read_keys(
        &mut self,
        query: &str,
        each: impl FnMut(u128, i64),
    ) -> Result<(), SyncError> {
        self.conn.read_keys(query, each).await
    }

    async fn read_hashes(&mut self, table: &str) -> Result<Vec<i64>, SyncError> {
        self.conn.read_hashes(table).await
    }
}

impl RowSink for Upserts<'_> {
    async fn write(&mut self, rows: &[(Row, i64)]) -> Result<(), SyncError> {
        let mut handle = self.conn.lock_handle().await?;
        let db = handle.as_raw_handle().as_ptr();
        blocking(|| {
            let mut statement = Statement::prepare(db, &self.sql)?;
            for (row, hash) in rows {
                let written = (|| {
                    statement.bind_text(1, row.id.as_bytes())?;
                    for (i, value) in row.values.iter().enumerate() {
                        statement.bind(i as c_int + 2, value)?;
                    }
                    statement.bind_i64(row.values.len() as c_int + 2, *hash)?;
                    statement.step()
                })();
                let twice = written.is_err() && self.first_load && statement.primary_key_refused();
                statement.reset();
                if twice {
                    return Err(duplicate_id(self.run.file_name, row).into());
                }
                if let Err(SyncError::Other(reason)) = written {
                    // A constraint the checks did not catch: name the row.
                    return Err(RowError {
                        file: self.run.file_name.to_string(),
                        line: row.line,
                        column: None,
                        reason,
                    }
                    .into());
                }
                written?;
            }
            Ok(())
        })
    }
}

/// Drops the `kind` objects (`index` or `trigger`) of `table` whose names are `LIKE` the
/// pattern, and returns their definitions from `sqlite_master`, to create them again later
/// in the same transaction. Automatic indexes (a primary key's) have no definition and stay.
async fn drop_from_catalog(
    conn: &mut SqliteConnection,
    kind: &'static str,
    table: &str,
    name_like: &str,
) -> Result<Vec<String>, SyncError> {
    let objects: Vec<(String, String)> = sqlx::query_as(
        "SELECT name, sql FROM sqlite_master WHERE type = $1 AND tbl_name = $2 AND sql IS NOT NULL \
         AND name LIKE $3 ESCAPE '\\'",
    )
    .bind(kind)
    .bind(table)
    .bind(name_like)
    .fetch_all(&mut *conn)
    .await?;
    let mut definitions = Vec::with_capacity(objects.len());
    for (name, sql) in objects {
        let drop = format!(
            "DROP {} \"{}\"",
            kind.to_uppercase(),
            name.replace('"', "\"\"")
        );
        sqlx::query(sqlx::AssertSqlSafe(drop))
            .execute(&mut *conn)
            .await?;
        definitions.push(sql);
    }
    Ok(definitions)
}

impl WriteRows for SqliteConnection {
    /// `BEGIN IMMEDIATE` already holds the database's write lock. The digest guard's
    /// triggers (one per row written) are dropped for the run and created again from their
    /// own definitions before it commits; a run that fails rolls the drop back.
    async fn begin_run(&mut self, register: &Register) -> Result<Vec<String>, SyncError> {
        drop_from_catalog(self, "trigger", register.table, "%\\_digest\\_guard\\_%").await
    }

    async fn write_rows(
        &mut self,
        run: &RunContext<'_>,
        mut existing: Known,
        references: &References,
        batches: &mut Batches,
    ) -> Result<(SyncCounts, Known), SyncError> {
        let table = run.register.table;
        // An empty table is loaded without its secondary indexes, built again after.
        let dropped = if existing.stored() == 0 {
            drop_from_catalog(self, "index", table, "%").await?
        } else {
            Vec::new()
        };
        let columns = run.columns();
        let first_load = matches!(existing, Known::Empty);
        let mut sql = format!(
            "INSERT INTO {table} ({}) VALUES ({})",
            columns.join(", "),
            vec!["?"; columns.len()].join(", "),
        );
        if !first_load {
            sql += &format!(" ON CONFLICT (id) DO UPDATE SET {}", run.update_set());
        }
        let mut sink = Upserts {
            conn: self,
            sql,
            run,
            first_load,
        };
        let counts = compare_rows(run, batches, &mut existing, references, &mut sink).await?;
        for sql in dropped {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&mut *self)
                .await?;
        }
        Ok((counts, existing))
    }
}
