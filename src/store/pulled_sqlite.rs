//! The inbox's durable store on SQLite: one transaction through SQLite's C API on a
//! connection sqlx holds, instead of seven round trips to sqlx's worker thread. The SQL is
//! the PostgreSQL path's (`super::INSERT_PULLED` and the rest).

use chrono::{DateTime, Utc};

use super::sqlite_raw::{RawError, Statement, execute};
use super::{COUNT_PULL_AGAIN, INSERT_PULLED, INSERT_VERIFY_JOB, Stored};
use crate::document::PulledDocument;

/// `Store::store_pulled` on SQLite, on a handle locked out of sqlx: the transaction is
/// committed with `synchronous = FULL` (the WAL fsynced) before ePUAP is told to forget the
/// document; the connection goes back to `NORMAL` either way.
pub(super) fn store(
    db: *mut libsqlite3_sys::sqlite3,
    mailbox: &str,
    document: &PulledDocument,
    skrot: &str,
    key: &str,
    now: DateTime<Utc>,
) -> Result<Stored, RawError> {
    // As sqlx writes a timestamp, so that both paths store the same text.
    let now = now.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false);
    let transaction = || -> Result<Stored, RawError> {
        execute(db, "BEGIN IMMEDIATE")?;
        let p = &document.dane_podmiotu;
        let mut insert = Statement::prepare(db, INSERT_PULLED)?;
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
            (24, Some(&now)),
        ];
        for (index, text) in texts {
            insert.bind_opt_text(index, text)?;
        }
        insert.bind_i64(10, i64::from(p.zgoda))?;
        insert.bind_i64(17, i64::from(document.czy_testowe))?;
        insert.bind_blob(18, &document.dane_dodatkowe)?;
        insert.bind_blob(21, &document.content)?;
        let inserted = insert.step()?.then(|| insert.column_i64(0));
        drop(insert);
        Ok(match inserted {
            Some(id) => {
                let mut job = Statement::prepare(db, INSERT_VERIFY_JOB)?;
                job.bind_text(1, id.to_string().as_bytes())?;
                job.bind_i64(2, id)?;
                job.bind_text(3, now.as_bytes())?;
                job.step()?;
                Stored { id, new: true }
            }
            None => {
                let mut again = Statement::prepare(db, COUNT_PULL_AGAIN)?;
                again.bind_text(1, key.as_bytes())?;
                if !again.step()? {
                    return Err(RawError {
                        message: format!("SQLite: the stored document {key:?} is gone"),
                        code: libsqlite3_sys::SQLITE_NOTFOUND,
                    });
                }
                Stored {
                    id: again.column_i64(0),
                    new: false,
                }
            }
        })
    };
    execute(db, "PRAGMA synchronous = FULL")?;
    let stored = transaction().and_then(|stored| execute(db, "COMMIT").map(|()| stored));
    if stored.is_err() {
        // A failed statement may have ended the transaction already: nothing to report.
        let _ = execute(db, "ROLLBACK");
    }
    let normal = execute(db, "PRAGMA synchronous = NORMAL");
    let stored = stored?;
    normal?;
    Ok(stored)
}
