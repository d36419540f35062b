//! Register syncs: where files come from ([`RegisterSource`]: a drop folder, or a SQL query
//! against another database), running a sync by hand (`eurzad sync`) or on schedule, moving
//! files to `done/` or `failed/`, and telling officials when a run is refused.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::config::{Config, SqlSourceConfig};
use crate::notify::schedule::Schedule;
use crate::registers::csv_source::{FileEncoding, dropped_files};
use crate::registers::{REGISTERS, Register};
use crate::store::Store;
use crate::store::registers::{SyncError, SyncMode, SyncOutcome};

/// One file to apply, and what to do with it afterwards.
#[derive(Debug)]
pub struct Pending {
    pub path: PathBuf,
    /// Move the file to `done/` or `failed/` beside it (drop folders), or delete it (a
    /// file materialized from a query).
    pub after: After,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    Move,
    Delete,
    Keep,
}

/// Where a register's data comes from.
pub trait RegisterSource {
    fn describe(&self) -> String;
    /// The files to apply now, oldest first.
    fn pending(
        &self,
        register: &'static Register,
    ) -> impl std::future::Future<Output = Result<Vec<Pending>, SyncError>> + Send;
}

/// A folder where the back office drops `<register>*.csv`.
pub struct DropFolder(pub PathBuf);

impl RegisterSource for DropFolder {
    fn describe(&self) -> String {
        format!("drop folder {}", self.0.display())
    }

    async fn pending(&self, register: &'static Register) -> Result<Vec<Pending>, SyncError> {
        if !self.0.exists() {
            return Ok(Vec::new());
        }
        let files = dropped_files(&self.0, register.name)
            .map_err(|e| SyncError::Other(format!("{}: {e}", self.0.display())))?;
        Ok(files
            .into_iter()
            .map(|path| Pending {
                path,
                after: After::Move,
            })
            .collect())
    }
}

/// A query against another database; its rows are written to a temporary CSV (streamed,
/// so memory stays bounded) and applied like a file.
pub struct SqlQuery {
    pub config: SqlSourceConfig,
    pub scratch: PathBuf,
}

impl RegisterSource for SqlQuery {
    fn describe(&self) -> String {
        format!(
            "SQL query on {}",
            crate::config::redact_url(&self.config.url)
        )
    }

    async fn pending(&self, register: &'static Register) -> Result<Vec<Pending>, SyncError> {
        sqlx::any::install_default_drivers();
        let fail =
            |e: &dyn std::fmt::Display| SyncError::Other(format!("{}: {e}", self.describe()));
        let pool = sqlx::AnyPool::connect(&self.config.url)
            .await
            .map_err(|e| fail(&e))?;
        std::fs::create_dir_all(&self.scratch).map_err(|e| fail(&e))?;
        let path = self.scratch.join(format!(
            "{}-query-{}.csv",
            register.name,
            Utc::now().format("%Y%m%dT%H%M%S%.f")
        ));
        let exported = self.export(&pool, &path).await;
        pool.close().await;
        match exported {
            Ok(true) => {}
            Ok(false) => {
                let _ = std::fs::remove_file(&path);
                return Ok(Vec::new());
            }
            Err(e) => {
                // A half-written export is never applied.
                let _ = std::fs::remove_file(&path);
                return Err(e);
            }
        }
        Ok(vec![Pending {
            path,
            after: After::Delete,
        }])
    }
}

impl SqlQuery {
    /// Streams the query's rows into a CSV at `path`; false when there were none.
    async fn export(&self, pool: &sqlx::AnyPool, path: &Path) -> Result<bool, SyncError> {
        use futures_util::TryStreamExt;
        use sqlx::{Column, Row};
        let fail =
            |e: &dyn std::fmt::Display| SyncError::Other(format!("{}: {e}", self.describe()));
        let mut writer = csv::WriterBuilder::new()
            .delimiter(b';')
            .from_path(path)
            .map_err(|e| fail(&e))?;
        let mut rows = sqlx::query(sqlx::AssertSqlSafe(self.config.query.clone())).fetch(pool);
        let mut wrote_header = false;
        while let Some(row) = rows.try_next().await.map_err(|e| fail(&e))? {
            if !wrote_header {
                let names: Vec<String> =
                    row.columns().iter().map(|c| c.name().to_string()).collect();
                writer.write_record(&names).map_err(|e| fail(&e))?;
                wrote_header = true;
            }
            // Text and whole numbers pass as they are; any other type would be guessed, so
            // the query must cast it (a date or a decimal to text).
            let mut values = Vec::with_capacity(row.len());
            for (i, column) in row.columns().iter().enumerate() {
                let value = match row.try_get::<Option<String>, _>(i) {
                    Ok(v) => v.unwrap_or_default(),
                    Err(_) => match row.try_get::<Option<i64>, _>(i) {
                        Ok(v) => v.map(|v| v.to_string()).unwrap_or_default(),
                        Err(_) => {
                            return Err(fail(&format!(
                                "column {:?} is neither text nor a whole number: cast it to text in the query",
                                column.name()
                            )));
                        }
                    },
                };
                values.push(value);
            }
            writer.write_record(&values).map_err(|e| fail(&e))?;
        }
        writer.flush().map_err(|e| fail(&e))?;
        Ok(wrote_header)
    }
}

/// The outcome of one file.
#[derive(Debug)]
pub struct FileResult {
    pub register: &'static str,
    pub file: PathBuf,
    pub outcome: Result<SyncOutcome, String>,
}

/// What a sync needs besides the store.
pub struct SyncContext<'a> {
    pub config: &'a Config,
    pub mode: SyncMode,
    pub encoding: FileEncoding,
    /// Officials told when a run is refused (none: only the log and `sync_run`).
    pub officials: &'a [String],
}

fn move_beside(path: &Path, folder: &str) -> std::io::Result<PathBuf> {
    let dir = path.parent().unwrap_or(Path::new(".")).join(folder);
    std::fs::create_dir_all(&dir)?;
    let target = dir.join(path.file_name().unwrap_or_default());
    std::fs::rename(path, &target)?;
    Ok(target)
}

/// Mails officials that a register's data was refused and nothing changed.
async fn tell_officials(
    store: &Store,
    context: &SyncContext<'_>,
    register: &'static Register,
    what: &str,
    reason: &str,
) {
    if context.officials.is_empty() {
        return;
    }
    let subject = format!(
        "Import rejestru {} odrzucony: dane nie zostały zmienione",
        register.name
    );
    let body = format!(
        "Dzień dobry,\n\n{what} nie został wczytany, ponieważ zawiera błąd:\n\n  {reason}\n\n\
         Żadne dane nie zostały zmienione: portal pokazuje dane z poprzedniego importu. \
         Prosimy o poprawienie danych i ponowne przekazanie.\n\n-- \nWiadomość wysłana automatycznie przez eUrząd.\n",
    );
    let key = format!("sync_failed:{}:{}", register.name, Utc::now().to_rfc3339());
    if let Err(e) = store
        .add_notification(&key, context.officials, &subject, &body, Utc::now())
        .await
    {
        tracing::warn!(error = %e, "cannot record the mail about a refused sync");
    }
}

/// Applies one file and files it away; a refused file is reported to officials.
pub async fn apply_file(
    store: &Store,
    context: &SyncContext<'_>,
    register: &'static Register,
    pending: Pending,
    source: &str,
) -> FileResult {
    let outcome = store
        .sync_file(
            register,
            &pending.path,
            context.mode,
            context.encoding,
            source,
        )
        .await
        .map_err(|e| e.to_string());
    let disposal = match (&outcome, pending.after) {
        (_, After::Keep) => Ok(()),
        (_, After::Delete) => std::fs::remove_file(&pending.path),
        (Ok(_), After::Move) => move_beside(&pending.path, "done").map(|_| ()),
        (Err(_), After::Move) => move_beside(&pending.path, "failed").map(|_| ()),
    };
    if let Err(e) = disposal {
        tracing::warn!(file = %pending.path.display(), error = %e, "cannot file the import away");
    }
    if let Err(reason) = &outcome {
        tracing::error!(register = register.name, file = %pending.path.display(), %reason, "sync refused: nothing applied");
        let what = format!("plik {} ({source})", pending.path.display());
        tell_officials(store, context, register, &what, reason).await;
    }
    FileResult {
        register: register.name,
        file: pending.path,
        outcome,
    }
}

/// Syncs `registers` (all, in dependency order, when empty) from their configured sources,
/// or `file` for a single register.
pub async fn sync(
    store: &Store,
    context: &SyncContext<'_>,
    registers: &[&'static Register],
    file: Option<&Path>,
) -> Result<Vec<FileResult>, SyncError> {
    let selected: Vec<&'static Register> = if registers.is_empty() {
        REGISTERS.iter().collect()
    } else {
        registers.to_vec()
    };
    let mut results = Vec::new();
    for register in selected {
        if let Some(file) = file {
            let pending = Pending {
                path: file.to_path_buf(),
                after: After::Keep,
            };
            results.push(apply_file(store, context, register, pending, "command line").await);
            continue;
        }
        let (pending, source) = match context.config.registers.sql.get(register.name) {
            Some(sql) => {
                let source = SqlQuery {
                    config: sql.clone(),
                    scratch: PathBuf::from(&context.config.registers.drop_dir).join(".query"),
                };
                (source.pending(register).await, source.describe())
            }
            None => {
                let source = DropFolder(PathBuf::from(&context.config.registers.drop_dir));
                (source.pending(register).await, source.describe())
            }
        };
        // A source that fails (unreachable, a bad query) is reported like a refused file;
        // the other registers go on.
        let pending = match pending {
            Ok(pending) => pending,
            Err(e) => {
                let reason = e.to_string();
                tracing::error!(register = register.name, %source, %reason, "register source failed: nothing applied");
                if let Err(e) = store
                    .record_failed_sync(register.name, &source, context.mode, Utc::now(), &reason)
                    .await
                {
                    tracing::warn!(error = %e, "cannot record the failed sync");
                }
                tell_officials(
                    store,
                    context,
                    register,
                    &format!("rejestr z: {source}"),
                    &reason,
                )
                .await;
                results.push(FileResult {
                    register: register.name,
                    file: PathBuf::from(&source),
                    outcome: Err(reason),
                });
                continue;
            }
        };
        for p in pending {
            results.push(apply_file(store, context, register, p, &source).await);
        }
    }
    Ok(results)
}

/// The registers whose scheduled occurrence is due at `now` and was claimed by this daemon
/// (`schedule_claim`: each occurrence is claimed once across every daemon on the database).
pub async fn claim_due(
    store: &Store,
    schedules: &[(&'static Register, Schedule)],
    now: DateTime<Utc>,
    daemon: &str,
) -> Result<Vec<&'static Register>, SyncError> {
    let mut due = Vec::new();
    for (register, schedule) in schedules {
        let name = format!("sync:{}", register.name);
        let last = store
            .last_occurrence(&name)
            .await?
            .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or(now - chrono::TimeDelta::days(1));
        if let Some(at) = schedule.due(last, now) {
            let fire_at = at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            if store.claim_occurrence(&name, &fire_at, daemon).await? {
                tracing::info!(register = register.name, %fire_at, "scheduled sync claimed");
                due.push(*register);
            }
        }
    }
    Ok(due)
}

/// A `[registers.schedule]` entry that cannot run.
#[derive(Debug, thiserror::Error)]
#[error("{key}: {message}")]
pub struct ScheduleEntryError {
    /// `registers.schedule.<register>`.
    pub key: String,
    pub message: String,
}

/// The configured schedules, checked.
pub fn schedules(
    config: &Config,
) -> Result<Vec<(&'static Register, Schedule)>, ScheduleEntryError> {
    config
        .registers
        .schedule
        .iter()
        .map(|(name, pattern)| {
            let key = format!("registers.schedule.{name}");
            let register = crate::registers::register(name).ok_or_else(|| ScheduleEntryError {
                key: key.clone(),
                message: format!("unknown register {name:?}"),
            })?;
            let schedule = Schedule::new(pattern, &config.notify.timezone).map_err(|e| {
                ScheduleEntryError {
                    key,
                    message: e.to_string(),
                }
            })?;
            Ok((register, schedule))
        })
        .collect()
}
