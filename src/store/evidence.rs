//! The letters whose legal state follows the channel's evidences (e-Doręczenia), and the
//! evidences themselves: stored once each (by the letter and the evidence id), as received,
//! with their SHA-256 and the judgement of their seal.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::Row;

use super::{AUTOMATIC, Begin, Store, StoreError};
use crate::delivery::LetterStatus;
use crate::edoreczenia::evidence::{EvidenceCode, LegalState, SealCheck, Standing};
use crate::provisioning::RequestStatus;
use crate::states::{Moves as _, Named as _};

/// A sent letter whose evidences are still awaited.
#[derive(Debug, Clone)]
pub struct FollowedLetter {
    pub id: i64,
    pub request_id: Option<i64>,
    /// The channel's message id.
    pub message_id: String,
    pub legal_state: LegalState,
    /// The channel it went by (`edoreczenia`, or `hybrid` on paper).
    pub channel: String,
}

/// An evidence fetched for a letter, to be stored.
#[derive(Debug, Clone)]
pub struct NewEvidence {
    pub evidence_id: String,
    pub code: EvidenceCode,
    pub event_at: DateTime<Utc>,
    pub content: Vec<u8>,
    pub seal: SealCheck,
}

/// A stored evidence, as officials see it.
#[derive(Debug, Clone)]
pub struct StoredEvidence {
    pub evidence_id: String,
    pub code: String,
    pub event_at: DateTime<Utc>,
    pub sha256: String,
    pub seal: String,
    pub seal_reason: Option<String>,
    pub content: Vec<u8>,
}

/// A letter's legal standing, as stored.
#[derive(Debug, Clone)]
pub struct LetterStanding {
    pub letter_id: i64,
    pub channel: String,
    pub channel_reason: Option<String>,
    pub status: String,
    pub message_id: Option<String>,
    pub legal_state: Option<LegalState>,
    pub legal_state_at: Option<DateTime<Utc>>,
    pub deemed_on: Option<NaiveDate>,
    pub evidences: Vec<StoredEvidence>,
}

fn legal_state(name: &str) -> Result<LegalState, StoreError> {
    LegalState::parse(name).ok_or_else(|| {
        StoreError::Conflict(format!(
            "outbound_document.legal_state {name:?} is not a legal state"
        ))
    })
}

/// The states a letter's evidences are still awaited in.
const FOLLOWED: &str = "('sent', 'accepted', 'awaiting_pickup')";

impl Store {
    /// Up to `limit` letters of `channel` whose legal state is not final, least recently
    /// checked first, not checked since `checked_before`.
    pub async fn letters_following(
        &self,
        channels: [&str; 2],
        checked_before: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<FollowedLetter>, StoreError> {
        on_pool!(self, pool => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT id, request_id, document_identifier, legal_state, channel FROM outbound_document \
                 WHERE legal_state IN {FOLLOWED} AND channel IN ($1, $2) AND document_identifier IS NOT NULL \
                 AND (evidence_checked_at IS NULL OR evidence_checked_at < $3) \
                 ORDER BY evidence_checked_at IS NOT NULL, evidence_checked_at, id LIMIT $4"
            )))
            .bind(channels[0])
            .bind(channels[1])
            .bind(checked_before)
            .bind(limit)
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(FollowedLetter {
                        id: r.get(0),
                        request_id: r.get(1),
                        message_id: r.get(2),
                        legal_state: legal_state(&r.get::<String, _>(3))?,
                        channel: r.get(4),
                    })
                })
                .collect()
        })
    }

    /// The evidences stored for a letter (code, event time, seal), oldest first.
    pub async fn letter_evidences(
        &self,
        letter_id: i64,
    ) -> Result<Vec<StoredEvidence>, StoreError> {
        on_pool!(self, pool => {
            let rows = sqlx::query(
                "SELECT evidence_id, code, event_at, sha256, seal, seal_reason, content FROM letter_evidence \
                 WHERE letter_id = $1 ORDER BY event_at, id",
            )
            .bind(letter_id)
            .fetch_all(pool)
            .await?;
            Ok(rows
                .iter()
                .map(|r| StoredEvidence {
                    evidence_id: r.get(0),
                    code: r.get(1),
                    event_at: r.get(2),
                    sha256: r.get(3),
                    seal: r.get(4),
                    seal_reason: r.get(5),
                    content: r.get(6),
                })
                .collect())
        })
    }

    /// Stores the new evidences of a letter (each once), and its standing derived from all
    /// of them at `now`. A change of the legal state is audited; E.1 makes the letter (and its
    /// request) `delivered`, as a UPD does for ePUAP. Returns whether the legal state moved.
    pub async fn record_evidence(
        &self,
        letter_id: i64,
        new: &[NewEvidence],
        standing: &Standing,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            for e in new {
                let sha256 = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&e.content));
                let reason = match &e.seal {
                    SealCheck::Invalid(why) => Some(why.as_str()),
                    _ => None,
                };
                sqlx::query(
                    "INSERT INTO letter_evidence (letter_id, evidence_id, code, event_at, content, sha256, seal, \
                     seal_reason, received_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                     ON CONFLICT (letter_id, evidence_id) DO NOTHING",
                )
                .bind(letter_id)
                .bind(&e.evidence_id)
                .bind(e.code.as_str())
                .bind(e.event_at)
                .bind(&e.content)
                .bind(&sha256)
                .bind(e.seal.name())
                .bind(reason)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                if let SealCheck::Invalid(why) = &e.seal {
                    audit_in_tx!(tx, AUTOMATIC, "evidence_seal_invalid", &format!("letter:{letter_id}"),
                        &format!("{} {}: {why}", e.code.as_str(), e.evidence_id), now);
                }
            }
            let row = sqlx::query("SELECT legal_state, request_id, key FROM outbound_document WHERE id = $1")
                .bind(letter_id)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or(StoreError::NotFound { what: "outbound_document", id: letter_id })?;
            let before: Option<String> = row.get(0);
            let request_id: Option<i64> = row.get(1);
            let key: String = row.get(2);
            let moved = before.as_deref() != Some(standing.state.as_str());
            sqlx::query(
                "UPDATE outbound_document SET legal_state = $1, legal_state_at = $2, deemed_on = $3, \
                 evidence_checked_at = $4, updated_at = $4 WHERE id = $5",
            )
            .bind(standing.state.as_str())
            .bind(standing.since)
            .bind(standing.deemed_on)
            .bind(now)
            .bind(letter_id)
            .execute(&mut *tx)
            .await?;
            if moved {
                let subject = request_id.map_or(format!("letter:{letter_id}"), |r| format!("access_request:{r}"));
                audit_in_tx!(tx, AUTOMATIC, "letter_legal_state", &subject,
                    &format!("letter {letter_id}: {} → {}{}", before.as_deref().unwrap_or("-"), standing.state.as_str(),
                        standing.deemed_on.map(|d| format!(" (deemed delivered on {d})")).unwrap_or_default()), now);
            }
            if moved && standing.state == LegalState::Delivered {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "UPDATE outbound_document SET status = $1, delivered_at = $2 WHERE key = $3 AND status IN {}",
                    LetterStatus::sql_sources(LetterStatus::Delivered)
                )))
                .bind(LetterStatus::Delivered.as_str())
                .bind(standing.since)
                .bind(&key)
                .execute(&mut *tx)
                .await?;
                if let Some(request_id) = request_id {
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "UPDATE access_request SET status = $3, updated_at = $1 WHERE id = $2 AND status IN {}",
                        RequestStatus::sql_sources(RequestStatus::Delivered)
                    )))
                    .bind(now)
                    .bind(request_id)
                    .bind(RequestStatus::Delivered.as_str())
                    .execute(&mut *tx)
                    .await?;
                }
            }
            tx.commit().await?;
            Ok(moved)
        })
    }

    /// How many letters there are by channel, sending status and legal state (the latter
    /// `None` where the channel keeps none), for `eurzad status`.
    pub async fn letter_tally(
        &self,
    ) -> Result<Vec<(String, String, Option<String>, i64)>, StoreError> {
        Ok(on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT channel, status, legal_state, COUNT(*) FROM outbound_document                  GROUP BY channel, status, legal_state ORDER BY channel, status, legal_state",
            )
            .fetch_all(pool)
            .await?
        }))
    }

    /// The letters made since `since`, with their standing, oldest first.
    pub async fn recent_letters(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<(String, String, LetterStanding)>, StoreError> {
        let keys: Vec<(String, String)> = on_pool!(self, pool => {
            sqlx::query_as("SELECT key, recipient FROM outbound_document WHERE created_at >= $1 ORDER BY id")
                .bind(since)
                .fetch_all(pool)
                .await?
        });
        let mut letters = Vec::new();
        for (key, recipient) in keys {
            if let Some(standing) = self.letter_standing(&key).await? {
                letters.push((key, recipient, standing));
            }
        }
        Ok(letters)
    }

    /// A letter's channel, legal state and evidences (the letter of `key`).
    pub async fn letter_standing(&self, key: &str) -> Result<Option<LetterStanding>, StoreError> {
        let row = on_pool!(self, pool => {
            sqlx::query(
                "SELECT id, channel, channel_reason, status, document_identifier, legal_state, legal_state_at, \
                 deemed_on FROM outbound_document WHERE key = $1",
            )
            .bind(key)
            .fetch_optional(pool)
            .await?
            .map(|r| -> Result<LetterStanding, StoreError> {
                Ok(LetterStanding {
                    letter_id: r.get(0),
                    channel: r.get(1),
                    channel_reason: r.get(2),
                    status: r.get(3),
                    message_id: r.get(4),
                    legal_state: r.get::<Option<String>, _>(5).as_deref().map(legal_state).transpose()?,
                    legal_state_at: r.get(6),
                    deemed_on: r.get(7),
                    evidences: Vec::new(),
                })
            })
            .transpose()?
        });
        let Some(mut standing) = row else {
            return Ok(None);
        };
        standing.evidences = self.letter_evidences(standing.letter_id).await?;
        Ok(Some(standing))
    }
}
