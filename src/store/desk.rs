//! What the officials' desk reads and writes: its officials and their sessions, the queue
//! of requests with what each asks for, a request's signature report and audit trail.
//! Decisions go through [`Store::decide`], as from the command line.

use chrono::{DateTime, Utc};
use sqlx::Row as _;

use super::{Begin, Store, StoreError};

/// An official of the desk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Official {
    pub id: i64,
    pub login: String,
    pub name: String,
    pub email: Option<String>,
    pub disabled_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// A signed-in browser: who, the token its forms carry, and until when.
#[derive(Debug, Clone)]
pub struct Session {
    pub official: Official,
    pub csrf: String,
    pub expires_at: DateTime<Utc>,
}

/// A request in the queue, with what it asks for in one line per representation.
#[derive(Debug, Clone)]
pub struct QueueRow {
    pub id: i64,
    pub status: String,
    pub applicant_name: String,
    pub applicant_pesel: String,
    pub received_at: DateTime<Utc>,
    pub deadline_at: DateTime<Utc>,
    pub reason: String,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    /// "Testowa Sp. z o.o. (NIP 5252955037): podatki, oplaty", in the form's order.
    pub asks: Vec<String>,
}

/// How the signature of a request's document was judged, from signed content only.
#[derive(Debug, Clone, Default)]
pub struct SignatureReport {
    pub file_name: String,
    pub channel: String,
    pub indication: Option<String>,
    pub subindication: Option<String>,
    pub reason: Option<String>,
    pub kind: Option<String>,
    pub signer_given_name: Option<String>,
    pub signer_surname: Option<String>,
    pub signer_pesel: Option<String>,
    pub signer_organization: Option<String>,
    pub signing_time: Option<DateTime<Utc>>,
    pub qualified: Option<bool>,
    /// The certificates' subjects, as presented (JSON array in the database).
    pub chain: Vec<String>,
    pub form_type: Option<String>,
    pub form_error: Option<String>,
}

/// A line of a request's audit trail.
#[derive(Debug, Clone)]
pub struct AuditLine {
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub detail: Option<String>,
}

/// ePUAP's proofs of a letter: the UPP's identifier, and whether a UPD came.
#[derive(Debug, Clone, Default)]
pub struct EpuapProofs {
    pub upp_identifier: Option<String>,
    pub has_upd: bool,
}

const OFFICIAL_COLUMNS: &str = "id, login, name, email, disabled_at, created_at";

fn official<R: sqlx::Row>(row: &R) -> Official
where
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> DateTime<Utc>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    usize: sqlx::ColumnIndex<R>,
{
    Official {
        id: row.get(0),
        login: row.get(1),
        name: row.get(2),
        email: row.get(3),
        disabled_at: row.get(4),
        created_at: row.get(5),
    }
}

impl Store {
    /// Adds an official; a login taken already is a conflict that names it.
    pub async fn add_official(
        &self,
        login: &str,
        name: &str,
        email: Option<&str>,
        password_hash: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Official, StoreError> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO desk_official (login, name, email, password_hash, created_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (login) DO NOTHING RETURNING {OFFICIAL_COLUMNS}"
            )))
            .bind(login)
            .bind(name)
            .bind(email)
            .bind(password_hash)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::Conflict(format!("an official {login:?} exists already")))?;
            audit_in_tx!(tx, "eurzad officials", "official_added", &format!("desk_official:{login}"), name, now);
            tx.commit().await?;
            Ok(official(&row))
        })
    }

    /// Disables an official and ends their sessions.
    pub async fn disable_official(
        &self,
        login: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let id: Option<i64> = sqlx::query_scalar(
                "UPDATE desk_official SET disabled_at = COALESCE(disabled_at, $1) WHERE login = $2 RETURNING id",
            )
            .bind(now)
            .bind(login)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(id) = id else {
                return Err(StoreError::Conflict(format!("no official {login:?}")));
            };
            sqlx::query("DELETE FROM desk_session WHERE official_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            audit_in_tx!(tx, "eurzad officials", "official_disabled", &format!("desk_official:{login}"), None::<&str>, now);
            tx.commit().await?;
        });
        Ok(())
    }

    pub async fn officials(&self) -> Result<Vec<Official>, StoreError> {
        on_pool!(self, pool => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {OFFICIAL_COLUMNS} FROM desk_official ORDER BY login"
            )))
            .fetch_all(pool)
            .await?;
            Ok(rows.iter().map(official).collect())
        })
    }

    /// An official by login, with their password hash, for signing in.
    pub async fn official_for_sign_in(
        &self,
        login: &str,
    ) -> Result<Option<(Official, Option<String>)>, StoreError> {
        on_pool!(self, pool => {
            let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {OFFICIAL_COLUMNS}, password_hash FROM desk_official WHERE login = $1"
            )))
            .bind(login)
            .fetch_optional(pool)
            .await?;
            Ok(row.map(|r| (official(&r), r.get(6))))
        })
    }

    /// Opens a session (and drops the expired ones), audited as a sign-in.
    pub async fn open_session(
        &self,
        token_sha256: &str,
        official: &Official,
        csrf: &str,
        how: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            sqlx::query("DELETE FROM desk_session WHERE expires_at < $1")
                .bind(now)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO desk_session (token_sha256, official_id, csrf, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(token_sha256)
            .bind(official.id)
            .bind(csrf)
            .bind(now)
            .bind(expires_at)
            .execute(&mut *tx)
            .await?;
            audit_in_tx!(tx, &official.login, "desk_sign_in", &format!("desk_official:{}", official.login), how, now);
            tx.commit().await?;
        });
        Ok(())
    }

    /// The live session of a token: not expired, its official not disabled.
    pub async fn session(
        &self,
        token_sha256: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Session>, StoreError> {
        on_pool!(self, pool => {
            let row = sqlx::query(
                "SELECT o.id, o.login, o.name, o.email, o.disabled_at, o.created_at, s.csrf, s.expires_at \
                 FROM desk_session s JOIN desk_official o ON o.id = s.official_id \
                 WHERE s.token_sha256 = $1 AND s.expires_at > $2 AND o.disabled_at IS NULL",
            )
            .bind(token_sha256)
            .bind(now)
            .fetch_optional(pool)
            .await?;
            Ok(row.map(|r| Session {
                official: official(&r),
                csrf: r.get(6),
                expires_at: r.get(7),
            }))
        })
    }

    /// Ends a session (signing out).
    pub async fn end_session(
        &self,
        token_sha256: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let login: Option<String> = sqlx::query_scalar(
                "SELECT o.login FROM desk_session s JOIN desk_official o ON o.id = s.official_id WHERE s.token_sha256 = $1",
            )
            .bind(token_sha256)
            .fetch_optional(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM desk_session WHERE token_sha256 = $1")
                .bind(token_sha256)
                .execute(&mut *tx)
                .await?;
            if let Some(login) = login {
                audit_in_tx!(tx, &login, "desk_sign_out", &format!("desk_official:{login}"), None::<&str>, now);
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// A refused sign-in, for the audit log.
    pub async fn audit_refused_sign_in(
        &self,
        login: &str,
        why: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            audit_in_tx!(tx, "desk", "desk_sign_in_refused", &format!("desk_official:{login}"), why, now);
            tx.commit().await?;
        });
        Ok(())
    }

    /// Requests in `statuses` (all when empty), soonest deadline first, or most recently
    /// decided first (`decided`), at most `limit`, each with what it asks for.
    pub async fn desk_queue(
        &self,
        statuses: &[&str],
        decided: bool,
        limit: i64,
    ) -> Result<Vec<QueueRow>, StoreError> {
        let filter = if statuses.is_empty() {
            "TRUE".to_string()
        } else {
            let names: Vec<String> = statuses
                .iter()
                .filter(|s| s.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
                .map(|s| format!("'{s}'"))
                .collect();
            format!("status IN ({})", names.join(", "))
        };
        // Decisions by officials, not those eurzad made on its own.
        let order = if decided {
            format!(
                "decided_at IS NOT NULL AND decided_by <> '{}' ORDER BY decided_at DESC, id DESC",
                super::AUTOMATIC
            )
        } else {
            "TRUE ORDER BY deadline_at, id".to_string()
        };
        on_pool!(self, pool => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT id, status, COALESCE(applicant_name, ''), COALESCE(applicant_pesel, ''), received_at, \
                 deadline_at, COALESCE(reason, ''), decided_by, decided_at FROM access_request \
                 WHERE {filter} AND {order} LIMIT $1"
            )))
            .bind(limit)
            .fetch_all(pool)
            .await?;
            let mut queue: Vec<QueueRow> = rows
                .iter()
                .map(|r| QueueRow {
                    id: r.get(0),
                    status: r.get(1),
                    applicant_name: r.get(2),
                    applicant_pesel: r.get(3),
                    received_at: r.get(4),
                    deadline_at: r.get(5),
                    reason: r.get(6),
                    decided_by: r.get(7),
                    decided_at: r.get(8),
                    asks: Vec::new(),
                })
                .collect();
            if queue.is_empty() {
                return Ok(queue);
            }
            // Ids are integers from the database: safe to write into the statement.
            let ids: Vec<String> = queue.iter().map(|q| q.id.to_string()).collect();
            let asked = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT request_id, principal_name, principal_id_type, principal_id, scope \
                 FROM requested_representation WHERE request_id IN ({}) ORDER BY request_id, position",
                ids.join(", ")
            )))
            .fetch_all(pool)
            .await?;
            let mut by_request: std::collections::HashMap<i64, Vec<String>> = std::collections::HashMap::new();
            for a in &asked {
                by_request.entry(a.get(0)).or_default().push(format!(
                    "{} ({} {}): {}",
                    a.get::<String, _>(1),
                    a.get::<String, _>(2),
                    a.get::<String, _>(3),
                    a.get::<String, _>(4)
                ));
            }
            for q in &mut queue {
                q.asks = by_request.remove(&q.id).unwrap_or_default();
            }
            Ok(queue)
        })
    }

    /// The signature report of a request's document.
    pub async fn signature_report(&self, document_id: i64) -> Result<SignatureReport, StoreError> {
        on_pool!(self, pool => {
            let r = sqlx::query(
                "SELECT nazwa_pliku, channel, signature_indication, signature_subindication, signature_reason, \
                 signature_kind, signer_given_name, signer_surname, signer_pesel, signer_organization, \
                 signing_time, signer_qualified, signature_chain, form_type, form_error \
                 FROM inbound_document WHERE id = $1",
            )
            .bind(document_id)
            .fetch_optional(pool)
            .await?
            .ok_or(StoreError::NotFound { what: "inbound_document", id: document_id })?;
            let chain: Option<String> = r.get(12);
            Ok(SignatureReport {
                file_name: r.get(0),
                channel: r.get(1),
                indication: r.get(2),
                subindication: r.get(3),
                reason: r.get(4),
                kind: r.get(5),
                signer_given_name: r.get(6),
                signer_surname: r.get(7),
                signer_pesel: r.get(8),
                signer_organization: r.get(9),
                signing_time: r.get(10),
                qualified: r.get(11),
                chain: chain
                    .and_then(|c| serde_json::from_str(&c).ok())
                    .unwrap_or_default(),
                form_type: r.get(13),
                form_error: r.get(14),
            })
        })
    }

    /// A request document's bytes and file name, as received.
    pub async fn original_document(
        &self,
        document_id: i64,
    ) -> Result<(String, String, Vec<u8>), StoreError> {
        on_pool!(self, pool => {
            let r = sqlx::query("SELECT nazwa_pliku, typ_pliku, content FROM inbound_document WHERE id = $1")
                .bind(document_id)
                .fetch_optional(pool)
                .await?
                .ok_or(StoreError::NotFound { what: "inbound_document", id: document_id })?;
            Ok((r.get(0), r.get(1), r.get(2)))
        })
    }

    /// What the audit log says of a request, oldest first.
    pub async fn request_audit(&self, request_id: i64) -> Result<Vec<AuditLine>, StoreError> {
        let subject = format!("access_request:{request_id}");
        on_pool!(self, pool => {
            let rows = sqlx::query(
                "SELECT at, actor, action, detail FROM audit_log WHERE subject = $1 OR detail = $1 ORDER BY at, id",
            )
            .bind(&subject)
            .fetch_all(pool)
            .await?;
            Ok(rows
                .iter()
                .map(|r| AuditLine { at: r.get(0), actor: r.get(1), action: r.get(2), detail: r.get(3) })
                .collect())
        })
    }

    /// ePUAP's proofs of a letter.
    pub async fn epuap_proofs(&self, letter_id: i64) -> Result<EpuapProofs, StoreError> {
        on_pool!(self, pool => {
            let r = sqlx::query("SELECT upp_identifier, upd IS NOT NULL FROM outbound_document WHERE id = $1")
                .bind(letter_id)
                .fetch_optional(pool)
                .await?;
            Ok(r.map(|r| EpuapProofs { upp_identifier: r.get(0), has_upd: r.get(1) }).unwrap_or_default())
        })
    }
}

/// A register sync as the status page shows it.
#[derive(Debug, Clone)]
pub struct SyncLine {
    pub register: String,
    pub source: String,
    pub status: String,
    pub finished_at: DateTime<Utc>,
    pub rows_read: i64,
    /// Why a file was refused (`file:line: …`).
    pub error: Option<String>,
}

/// A box: how many documents came from it, and when the last did.
#[derive(Debug, Clone)]
pub struct BoxLine {
    pub address: String,
    pub documents: i64,
    pub last_at: Option<DateTime<Utc>>,
}

impl Store {
    /// The latest sync of each register, the most recent first.
    pub async fn last_syncs(&self) -> Result<Vec<SyncLine>, StoreError> {
        on_pool!(self, pool => {
            let rows = sqlx::query(
                "SELECT register, source, status, finished_at, rows_read, error FROM sync_run s \
                 WHERE id = (SELECT MAX(id) FROM sync_run t WHERE t.register = s.register) \
                 ORDER BY finished_at DESC",
            )
            .fetch_all(pool)
            .await?;
            Ok(rows
                .iter()
                .map(|r| SyncLine {
                    register: r.get(0),
                    source: r.get(1),
                    status: r.get(2),
                    finished_at: r.get(3),
                    rows_read: r.get(4),
                    error: r.get(5),
                })
                .collect())
        })
    }

    /// Documents per box (ePUAP box or e-Doręczenia address).
    pub async fn boxes(&self) -> Result<Vec<BoxLine>, StoreError> {
        on_pool!(self, pool => {
            let rows = sqlx::query(
                "SELECT box_address, COUNT(*), MAX(received_at) FROM inbound_document \
                 GROUP BY box_address ORDER BY box_address",
            )
            .fetch_all(pool)
            .await?;
            Ok(rows
                .iter()
                .map(|r| BoxLine { address: r.get(0), documents: r.get(1), last_at: r.get(2) })
                .collect())
        })
    }
}

impl Store {
    /// One row of the audit log, in its own transaction.
    pub async fn audit(
        &self,
        actor: &str,
        action: &str,
        subject: &str,
        detail: &str,
    ) -> Result<(), StoreError> {
        let now = Utc::now();
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            audit_in_tx!(tx, actor, action, subject, detail, now);
            tx.commit().await?;
        });
        Ok(())
    }
}
