//! SQLite: the stored hashes and keys are read, and the rows written, through SQLite's C
//! API, on the connection (and inside the transaction) that sqlx holds. A large import spent most of
//! its time sending multi-row statements through sqlx's worker thread; here each batch is
//! one prepared statement stepped once per row, as `sqlite3 .import` does.
//!
//! Into an empty table the secondary indexes are dropped first and built again after the
//! load, in the same transaction: building an index from a full table is much cheaper than
//! keeping it sorted row by row, and readers (WAL) see the old table, indexes and all,
//! until the commit.

use std::ffi::c_int;

use sqlx::SqliteConnection;

use super::{
    Batches, KeyReader, Known, References, RowSink, RunContext, SyncCounts, SyncError, WriteRows,
    compare_rows, duplicate_id, id_key,
};
use crate::registers::Register;
use crate::registers::csv_source::{Row, RowError};
use crate::store::sqlite_raw::{Statement, blocking};

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
                statement.reset();
                match written {
                    Ok(_) => {}
                    Err(error)
                        if self.first_load
                            && error.code == libsqlite3_sys::SQLITE_CONSTRAINT_PRIMARYKEY =>
                    {
                        return Err(duplicate_id(self.run.file_name, row).into());
                    }
                    // A constraint the checks did not catch: name the row.
                    Err(error) => {
                        return Err(RowError {
                            file: self.run.file_name.to_string(),
                            line: row.line,
                            column: None,
                            reason: error.message,
                        }
                        .into());
                    }
                }
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
        // An empty table is loaded without its secondary indexes, built again after, and
        // by plain inserts: its primary key refuses an id named twice.
        let first_load = matches!(existing, Known::Empty);
        let dropped = if first_load {
            drop_from_catalog(self, "index", table, "%").await?
        } else {
            Vec::new()
        };
        let columns = run.columns();
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
