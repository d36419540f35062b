//! The provisioning tables: access requests, accounts, representations, the office's
//! letters, mail to officials, correspondence and the audit log. Every step commits its
//! effect with the completion of its job, and enqueues what follows in the same transaction.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::Row;

use super::{Begin, Claim, FINISH_JOB, Store, StoreError};
use crate::delivery::LetterStatus;
use crate::forms::{AccessRequest, PartyKind};
use crate::jobs::JobKind;
use crate::provisioning::RequestStatus;
use crate::provisioning::{Assessment, Decision, SignedBy, Term, granted_term};
use crate::states::{Moves as _, Named as _};

/// Adds a reason to a request's (for officials: why it still waits).
const APPEND_REASON: &str = "UPDATE access_request SET reason = CASE WHEN COALESCE(reason, '') = '' \
     THEN $1 ELSE reason || '; ' || $1 END, updated_at = $2 WHERE id = $3";

/// A letter's proof of delivery came back (from the statuses that may move to `delivered`).
/// Binds: upd, its inbound document, now, the letter's key, `delivered`.
static MARK_DELIVERED: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "UPDATE outbound_document SET status = $5, upd = $1, upd_document_id = $2, \
         delivered_at = $3, updated_at = $3 WHERE key = $4 AND status IN {}",
        LetterStatus::sql_sources(LetterStatus::Delivered)
    )
});

/// A letter's status as stored; a name the table does not know is an error that names it.
fn letter_status(name: &str) -> Result<LetterStatus, StoreError> {
    LetterStatus::parse(name).ok_or_else(|| {
        StoreError::Conflict(format!(
            "outbound_document.status {name:?} is not a letter state"
        ))
    })
}

/// A decided request whose letter went out is `replied` (binds: now, request id), from the
/// statuses that may move to `replied`.
static MARK_REPLIED: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "UPDATE access_request SET status = '{}', updated_at = $1 WHERE id = $2 AND status IN {}",
        RequestStatus::Replied,
        RequestStatus::sql_sources(RequestStatus::Replied)
    )
});

/// The actor of automatic decisions, as the audit log and representations name it.
pub const AUTOMATIC: &str = "eurzad (automatycznie)";

/// Inserts a notification and its `mail` job (once per key), inside a transaction.
macro_rules! notify_in_tx {
    ($tx:expr, $key:expr, $recipients:expr, $subject:expr, $body:expr, $now:expr) => {{
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO notification (key, recipients, subject, body, status, created_at) \
             VALUES ($1, $2, $3, $4, 'pending', $5) ON CONFLICT (key) DO NOTHING RETURNING id",
        )
        .bind($key)
        .bind($recipients)
        .bind($subject)
        .bind($body)
        .bind($now)
        .fetch_optional(&mut *$tx)
        .await?;
        if let Some(id) = id {
            sqlx::query(
                "INSERT INTO job (kind, key, run_after, created_at, updated_at) \
                 VALUES ($1, $2, $3, $3, $3) ON CONFLICT (kind, key) DO NOTHING",
            )
            .bind(crate::jobs::JobKind::Mail.as_str())
            .bind(id.to_string())
            .bind($now)
            .execute(&mut *$tx)
            .await?;
        }
        id.is_some()
    }};
}

/// Records a letter as correspondence (once per document), linked to the account of its
/// party when there is one, with the mail to its department, inside a transaction. Used by
/// the `verify` step and by `correspond` jobs queued by earlier versions.
macro_rules! correspondence_in_tx {
    ($tx:expr, $letter:expr, $mail:expr, $now:expr) => {{
        let letter: &$crate::store::Correspondence = $letter;
        let mail: Option<$crate::store::RoutedMail<'_>> = $mail;
        let inserted: Option<i64> = sqlx::query_scalar(
            "INSERT INTO correspondence (document_id, account_id, party_id_type, party_id, form_type, title, \
             body, sender, box_address, department, received_at) \
             VALUES ($1, (SELECT id FROM account WHERE $2 = 'PESEL' AND pesel = $3), $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (document_id) DO NOTHING RETURNING id",
        )
        .bind(letter.document_id)
        .bind(letter.party_id_type.as_deref())
        .bind(letter.party_id.as_deref())
        .bind(&letter.form_type)
        .bind(&letter.title)
        .bind(&letter.body)
        .bind(letter.sender.as_deref())
        .bind(&letter.box_address)
        .bind(letter.department.as_deref())
        .bind(letter.received_at)
        .fetch_optional(&mut *$tx)
        .await?;
        if let (Some(id), Some((emails, subject, body))) = (inserted, mail) {
            let _new = notify_in_tx!($tx, format!("route:{id}"), emails.join(", "), subject, body, $now);
        }
    }};
}

macro_rules! enqueue_in_tx {
    ($tx:expr, $kind:expr, $key:expr, $now:expr) => {
        sqlx::query(
            "INSERT INTO job (kind, key, run_after, created_at, updated_at) \
             VALUES ($1, $2, $3, $3, $3) ON CONFLICT (kind, key) DO NOTHING",
        )
        .bind($kind)
        .bind($key)
        .bind($now)
        .execute(&mut *$tx)
        .await?
    };
}

macro_rules! audit_in_tx {
    ($tx:expr, $actor:expr, $action:expr, $subject:expr, $detail:expr, $now:expr) => {
        sqlx::query(
            "INSERT INTO audit_log (at, actor, action, subject, detail) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind($now)
        .bind($actor)
        .bind($action)
        .bind($subject)
        .bind($detail)
        .execute(&mut *$tx)
        .await?
    };
}

/// Makes (or updates) the applicant's account, links the request to it, and makes the
/// request's representations (only the proven ones unless an official approves them all).
macro_rules! activate_in_tx {
    ($tx:expr, $request_id:expr, $document_id:expr, $applicant:expr, $epuap_user:expr, $actor:expr, $now:expr, $only_proven:expr, $official_term:expr, $chosen:expr) => {{
        let applicant = $applicant;
        let account_id: i64 = sqlx::query_scalar(
            "INSERT INTO account (pesel, epuap_user_id, given_name, surname, email, status, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, 'active', $6, $6) \
             ON CONFLICT (pesel) DO UPDATE SET epuap_user_id = COALESCE(excluded.epuap_user_id, account.epuap_user_id), \
             given_name = excluded.given_name, surname = excluded.surname, \
             email = COALESCE(excluded.email, account.email), status = 'active', updated_at = excluded.updated_at \
             RETURNING id",
        )
        .bind(&applicant.pesel)
        .bind($epuap_user)
        .bind(&applicant.given_name)
        .bind(&applicant.surname)
        .bind(applicant.email.as_deref())
        .bind($now)
        .fetch_one(&mut *$tx)
        .await?;
        sqlx::query("UPDATE access_request SET account_id = $1, updated_at = $2 WHERE id = $3")
            .bind(account_id)
            .bind($now)
            .bind($request_id)
            .execute(&mut *$tx)
            .await?;
        audit_in_tx!($tx, $actor, "account_activated", &format!("account:{account_id}"),
            &format!("access_request:{}", $request_id), $now);
        let requested = sqlx::query(
            "SELECT principal_kind, principal_name, principal_id_type, principal_id, scope, basis, \
             valid_from, valid_to, proven, CAST(position AS BIGINT) FROM requested_representation WHERE request_id = $1 ORDER BY position",
        )
        .bind($request_id)
        .fetch_all(&mut *$tx)
        .await?;
        for r in &requested {
            let proven: bool = r.get(8);
            if $only_proven && !proven {
                continue;
            }
            // The official approved only some of what was asked: the rest is not granted.
            let chosen: Option<&[i64]> = $chosen;
            let position: i64 = r.get(9);
            if chosen.is_some_and(|c| !c.contains(&position)) {
                audit_in_tx!($tx, $actor, "representation_not_granted", &format!("access_request:{}", $request_id),
                    &format!("{} {}: not approved by the official", r.get::<String, _>(2), r.get::<String, _>(3)), $now);
                continue;
            }
            let valid_from: Option<NaiveDate> = r.get(6);
            let valid_to: Option<NaiveDate> = r.get(7);
            // Never wider than the proof: the attached authorization's term, within the
            // official's; without either there is nothing to bound the grant by.
            let proof = valid_from.map(|from| Term { from, to: valid_to });
            let official_term: Option<Term> = $official_term;
            let Some(term) = granted_term(proof, official_term) else {
                return Err(StoreError::Conflict(format!(
                    "request {}: the representation of {} ({} {}) has no attached authorization: \
                     give the term of the authorization you saw (--valid-from, and --valid-to unless it has no end)",
                    $request_id, r.get::<String, _>(1), r.get::<String, _>(2), r.get::<String, _>(3)
                )));
            };
            if term.ended_before($now.date_naive()) {
                audit_in_tx!($tx, $actor, "representation_not_granted", &format!("access_request:{}", $request_id),
                    &format!("{} {}: the authorization's term {term} has ended", r.get::<String, _>(2), r.get::<String, _>(3)), $now);
                continue;
            }
            let representation_id: i64 = sqlx::query_scalar(
                "INSERT INTO representation (agent_account_id, principal_kind, principal_name, principal_id_type, \
                 principal_id, basis, valid_from, valid_to, status, source_request_id, source_document_id, \
                 verified_by, verified_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'active', $9, $10, $11, $12) \
                 ON CONFLICT (agent_account_id, principal_id_type, principal_id) DO UPDATE SET \
                 principal_name = excluded.principal_name, basis = excluded.basis, valid_from = excluded.valid_from, \
                 valid_to = excluded.valid_to, status = 'active', source_request_id = excluded.source_request_id, \
                 source_document_id = excluded.source_document_id, verified_by = excluded.verified_by, \
                 verified_at = excluded.verified_at RETURNING id",
            )
            .bind(account_id)
            .bind(r.get::<String, _>(0))
            .bind(r.get::<String, _>(1))
            .bind(r.get::<String, _>(2))
            .bind(r.get::<String, _>(3))
            .bind(r.get::<String, _>(5))
            .bind(term.from)
            .bind(term.to)
            .bind($request_id)
            .bind($document_id)
            .bind($actor)
            .bind($now)
            .fetch_one(&mut *$tx)
            .await?;
            sqlx::query("DELETE FROM representation_scope WHERE representation_id = $1")
                .bind(representation_id)
                .execute(&mut *$tx)
                .await?;
            let scope: String = r.get(4);
            for item in scope.split_whitespace() {
                sqlx::query("INSERT INTO representation_scope (representation_id, scope) VALUES ($1, $2)")
                    .bind(representation_id)
                    .bind(item)
                    .execute(&mut *$tx)
                    .await?;
            }
            audit_in_tx!($tx, $actor, "representation_granted", &format!("representation:{representation_id}"),
                &format!("{} {} for account {account_id}: {scope}, valid {term}{}", r.get::<String, _>(2), r.get::<String, _>(3),
                    if proof.is_some() { " (bounded by the attached authorization)" } else { " (the term the official gave)" }), $now);
        }
        account_id
    }};
}

/// What the `provision` step needs of a judged access request.
#[derive(Debug, Clone)]
pub struct ProvisionFacts {
    pub document_id: i64,
    /// When eurzad stored the document.
    pub stored_at: DateTime<Utc>,
    /// ePUAP's `dataNadania` as it came (the receipt in law, read by the domain).
    pub data_nadania: String,
    /// The signer's name from signed content (a passed signature only).
    pub signer_name: Option<String>,
    /// The sender's name as ePUAP gives it (`danePodmiotu`).
    pub epuap_name: Option<String>,
    pub content: Vec<u8>,
    pub signed: SignedBy,
    /// The ePUAP user (daneNadawcy.uzytkownik, or the trusted profile's account).
    pub epuap_user: Option<String>,
    /// The request made of this document before (a rerun), with its status.
    pub existing: Option<(i64, String)>,
}

/// Renders (subject, body) of mail about a request; the second argument is the kind
/// (`waiting` or `rejected`).
pub type RenderNotice = dyn Fn(&RequestRow, &str) -> (String, String) + Sync;

/// Mail to officials, rendered by the caller once the request has an id.
pub struct Notice<'a> {
    pub officials: &'a [String],
    pub render: &'a RenderNotice,
}

/// An access request as officials see it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RequestRow {
    pub id: i64,
    pub document_id: i64,
    pub status: String,
    pub applicant_name: String,
    pub applicant_pesel: String,
    pub applicant_email: Option<String>,
    /// The receipt in law (ePUAP's `dataNadania`): "wpłynął". The deadline runs from it.
    pub received_at: DateTime<Utc>,
    /// When eurzad stored the document.
    pub stored_at: Option<DateTime<Utc>>,
    pub deadline_at: DateTime<Utc>,
    pub reason: String,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub decision_note: Option<String>,
    pub account_id: Option<i64>,
    /// The reply letter's sending status (`LetterStatus`), once there is a letter:
    /// `review_required` when its sending was interrupted and an official must act.
    pub letter_status: Option<String>,
}

/// A representation a request asks for, as officials see it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RequestedRow {
    pub principal_name: String,
    pub principal_id_type: String,
    pub principal_id: String,
    pub scope: String,
    pub basis: String,
    pub proven: bool,
    pub proof: String,
}

/// What the `reply` step needs.
#[derive(Debug, Clone)]
pub struct ReplyFacts {
    pub request: RequestRow,
    pub request_date: NaiveDate,
    pub recipient: Option<String>,
    /// The channel the request came through (`recipient` is then that channel's address:
    /// ePUAP's `adresOdpowiedzi`, or the sender's e-Doręczenia address).
    pub came_by: crate::document::InboundChannel,
    /// The postal address the applicant gave, for a letter on paper.
    pub postal_address: Option<crate::delivery::PostalAddress>,
    /// "Name (NIP …): podatki, oplaty" for each representation of the account made by it.
    pub representations: Vec<String>,
    /// The letter made before, if any: (id, status, attempts).
    pub letter: Option<(i64, LetterStatus, i64)>,
}

/// A letter to send or sent.
#[derive(Debug, Clone)]
pub struct LetterRow {
    pub id: i64,
    pub channel: String,
    /// `LetterKind`'s name.
    pub kind: String,
    pub recipient: String,
    pub file_name: String,
    pub content: Vec<u8>,
    pub attempts: i64,
}

/// What `begin_sending` found.
#[derive(Debug, Clone)]
pub enum Sending {
    /// Marked `sending` under this claim: call the channel.
    Begun(LetterRow),
    /// Left `sending` by a claim that died: the outcome is unknown; hold it for an official.
    Uncertain(LetterRow),
}

/// An official's resolution of a letter held after an uncertain outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeldLetter {
    /// Send it again (the applicant may get it twice).
    Resend,
    /// It went out: ePUAP's identifier of the document, as the office's box shows it.
    Sent { document_identifier: String },
}

/// A [`LetterRow`] from a row of `begin_sending`'s columns (either backend).
macro_rules! letter_row {
    ($row:expr) => {
        LetterRow {
            id: $row.get(0),
            recipient: $row.get(1),
            file_name: $row.get(2),
            content: $row.get(3),
            attempts: $row.get::<i64, _>(4),
            channel: $row.get(5),
            kind: $row.get("kind"),
        }
    };
}

/// `SELECT <the columns of RequestRow> FROM access_request <rest>`.
/// The requests still without a reply: the statuses that await one
/// (`RequestStatus::awaits_reply`; a test holds this list to it).
macro_rules! unanswered {
    () => {
        "WHERE status IN ('received', 'awaiting_official', 'approved', 'rejected') ORDER BY deadline_at"
    };
}

macro_rules! select_requests {
    ($rest:expr) => {
        concat!(
            "SELECT id, document_id, status, COALESCE(applicant_name, ''), COALESCE(applicant_pesel, ''), \
             applicant_email, received_at, deadline_at, COALESCE(reason, ''), decided_by, decided_at, \
             decision_note, account_id, stored_at, \
             (SELECT o.status FROM outbound_document o WHERE o.key = 'reply:' || CAST(access_request.id AS TEXT)) \
             FROM access_request ",
            $rest
        )
    };
}

fn request_row<R: Row>(row: &R) -> RequestRow
where
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> DateTime<Utc>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    usize: sqlx::ColumnIndex<R>,
{
    RequestRow {
        id: row.get(0),
        document_id: row.get(1),
        status: row.get(2),
        applicant_name: row.get(3),
        applicant_pesel: row.get(4),
        applicant_email: row.get(5),
        received_at: row.get(6),
        deadline_at: row.get(7),
        reason: row.get(8),
        decided_by: row.get(9),
        decided_at: row.get(10),
        decision_note: row.get(11),
        account_id: row.get(12),
        stored_at: row.get(13),
        letter_status: row.get(14),
    }
}

impl Store {
    pub async fn provision_facts(&self, document_id: i64) -> Result<ProvisionFacts, StoreError> {
        on_pool!(self, pool => {
            let row = sqlx::query(
                "SELECT d.received_at, d.content, d.signature_indication, COALESCE(d.signature_reason, ''), \
                 d.signature_kind, d.signer_pesel, d.signer_qualified, \
                 COALESCE(d.signer_epuap_account, d.nadawca_uzytkownik), r.id, r.status, d.data_nadania, \
                 d.signature_subindication, \
                 NULLIF(TRIM(COALESCE(d.signer_given_name, '') || ' ' || COALESCE(d.signer_surname, '')), ''), \
                 NULLIF(TRIM(COALESCE(d.podmiot_imie_skrot, '') || ' ' || COALESCE(d.podmiot_nazwisko_nazwa, '')), '') \
                 FROM inbound_document d LEFT JOIN access_request r ON r.document_id = d.id \
                 WHERE d.id = $1",
            )
            .bind(document_id)
            .fetch_optional(pool)
            .await?
            .ok_or(StoreError::NotFound { what: "inbound_document", id: document_id })?;
            let indication: Option<String> = row.get(2);
            let request_id: Option<i64> = row.get(8);
            let status: Option<String> = row.get(9);
            Ok(ProvisionFacts {
                document_id,
                stored_at: row.get(0),
                data_nadania: row.get(10),
                signer_name: row.get(12),
                epuap_name: row.get(13),
                content: row.get(1),
                signed: SignedBy {
                    passed: indication.as_deref() == Some("TOTAL-PASSED"),
                    reason: row.get(3),
                    subindication: row.get(11),
                    kind: row.get(4),
                    pesel: row.get(5),
                    qualified_certificate: row.get(6),
                },
                epuap_user: row.get(7),
                existing: request_id.zip(status),
            })
        })
    }

    /// Records a new request with its assessment, in one transaction with the job's
    /// completion: the account and representations (approved), the reply job (approved or
    /// rejected), and the mail to officials (waiting or rejected). Returns the request id.
    #[allow(clippy::too_many_arguments)]
    pub async fn record_assessment(
        &self,
        claim: Claim,
        facts: &ProvisionFacts,
        request: Option<&AccessRequest>,
        assessment: &Assessment,
        applicant_name: &str,
        received_at: DateTime<Utc>,
        deadline_at: DateTime<Utc>,
        notice: &Notice<'_>,
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let (status, reason) = match &assessment.decision {
            Decision::Approve => (RequestStatus::Approved, String::new()),
            Decision::AwaitOfficial(reasons) => {
                (RequestStatus::AwaitingOfficial, reasons.join("; "))
            }
            Decision::Reject(reason) => (RequestStatus::Rejected, reason.clone()),
        };
        let applicant = request.map(|r| &r.applicant);
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let inserted: Option<i64> = sqlx::query_scalar(
                "INSERT INTO access_request (document_id, received_at, deadline_at, status, applicant_pesel, \
                 applicant_name, applicant_email, reason, decided_by, decided_at, created_at, updated_at, stored_at, \
                 applicant_postal_address) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12, $13) \
                 ON CONFLICT (document_id) DO NOTHING RETURNING id",
            )
            .bind(facts.document_id)
            .bind(received_at)
            .bind(deadline_at)
            .bind(status.as_str())
            .bind(applicant.map(|a| a.pesel.clone()))
            .bind(applicant_name)
            .bind(applicant.and_then(|a| a.email.clone()))
            .bind(&reason)
            .bind((status != RequestStatus::AwaitingOfficial).then_some(AUTOMATIC))
            .bind((status != RequestStatus::AwaitingOfficial).then_some(now))
            .bind(now)
            .bind(facts.stored_at)
            .bind(applicant.and_then(|a| a.postal_address.as_ref()).map(|p| p.to_recipient()))
            .fetch_optional(&mut *tx)
            .await?;
            let Some(request_id) = inserted else {
                // Recorded by an earlier run of this step: only the job is left to finish.
                let id: i64 = sqlx::query_scalar("SELECT id FROM access_request WHERE document_id = $1")
                    .bind(facts.document_id)
                    .fetch_one(&mut *tx)
                    .await?;
                finish_claimed!(&mut *tx, claim, now);
                tx.commit().await?;
                return Ok(id);
            };
            for (position, checked) in assessment.representations.iter().enumerate() {
                let party = &checked.represented.party;
                sqlx::query(
                    "INSERT INTO requested_representation (request_id, position, principal_kind, principal_name, \
                     principal_id_type, principal_id, scope, basis, attachment, valid_from, valid_to, proven, proof) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                )
                .bind(request_id)
                .bind(position as i64)
                .bind(if party.kind == PartyKind::Natural { "F" } else { "P" })
                .bind(&party.name)
                .bind(party.id.kind())
                .bind(party.id.value())
                .bind(checked.represented.scope.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" "))
                .bind(checked.represented.basis.as_str())
                .bind(checked.represented.attachment.as_deref())
                .bind(checked.valid_from)
                .bind(checked.valid_to)
                .bind(checked.proven)
                .bind(&checked.proof)
                .execute(&mut *tx)
                .await?;
            }
            let subject = format!("access_request:{request_id}");
            audit_in_tx!(tx, AUTOMATIC, status.as_str(), &subject, &reason, now);
            if status == RequestStatus::Approved {
                let applicant = applicant.expect("an approved request was read");
                activate_in_tx!(tx, request_id, facts.document_id, applicant, facts.epuap_user.as_deref(), AUTOMATIC, now, true, None, None);
            }
            if status != RequestStatus::AwaitingOfficial {
                enqueue_in_tx!(tx, JobKind::Reply.as_str(), request_id.to_string(), now);
            }
            let row = sqlx::query(select_requests!("WHERE id = $1"))
                .bind(request_id)
                .fetch_one(&mut *tx)
                .await?;
            let row = request_row(&row);
            let kind = if status == RequestStatus::Rejected { "rejected" } else { "waiting" };
            if status != RequestStatus::Approved && !notice.officials.is_empty() {
                let (mail_subject, body) = (notice.render)(&row, kind);
                let _new = notify_in_tx!(tx, format!("{kind}:{request_id}"), notice.officials.join(", "), mail_subject, body, now);
            }
            finish_claimed!(&mut *tx, claim, now);
            tx.commit().await?;
            Ok(request_id)
        })
    }

    /// An official's decision on a waiting request. Approval makes the account and every
    /// requested representation (the official has checked the proof); either way the reply
    /// is enqueued and the decision audited. Refuses a request that is not waiting.
    #[allow(clippy::too_many_arguments)]
    pub async fn decide(
        &self,
        request_id: i64,
        approve: bool,
        official: &str,
        text: &str,
        request: Option<&AccessRequest>,
        epuap_user: Option<&str>,
        term: Option<Term>,
        only: Option<&[i64]>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let row = sqlx::query("SELECT status, document_id FROM access_request WHERE id = $1")
                .bind(request_id)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or(StoreError::NotFound { what: "access_request", id: request_id })?;
            let status: String = row.get(0);
            let document_id: i64 = row.get(1);
            let decision = if approve { RequestStatus::Approved } else { RequestStatus::Rejected };
            // Officials decide what waits for them; the rest was decided when it was judged.
            if RequestStatus::parse(&status) != Some(RequestStatus::AwaitingOfficial)
                || !RequestStatus::AwaitingOfficial.can_become(decision)
            {
                return Err(StoreError::Conflict(format!(
                    "request {request_id} is {status}: only a request awaiting an official can be decided"
                )));
            }
            let subject = format!("access_request:{request_id}");
            if approve {
                let applicant = &request
                    .ok_or_else(|| StoreError::Conflict(format!(
                        "request {request_id} cannot be read as an access request: reject it instead"
                    )))?
                    .applicant;
                sqlx::query(
                    "UPDATE access_request SET status = $5, decided_by = $1, decided_at = $2, \
                     decision_note = $3, updated_at = $2 WHERE id = $4",
                )
                .bind(official)
                .bind(now)
                .bind(text)
                .bind(request_id)
                .bind(decision.as_str())
                .execute(&mut *tx)
                .await?;
                activate_in_tx!(tx, request_id, document_id, applicant, epuap_user, official, now, false, term, only);
                let note = match term {
                    Some(term) => format!("{text} [term given by the official: {term}]"),
                    None => text.to_string(),
                };
                audit_in_tx!(tx, official, RequestStatus::Approved.as_str(), &subject, &note, now);
            } else {
                sqlx::query(
                    "UPDATE access_request SET status = $5, reason = $3, decided_by = $1, decided_at = $2, \
                     decision_note = $3, updated_at = $2 WHERE id = $4",
                )
                .bind(official)
                .bind(now)
                .bind(text)
                .bind(request_id)
                .bind(decision.as_str())
                .execute(&mut *tx)
                .await?;
                audit_in_tx!(tx, official, RequestStatus::Rejected.as_str(), &subject, text, now);
            }
            enqueue_in_tx!(tx, JobKind::Reply.as_str(), request_id.to_string(), now);
            tx.commit().await?;
        });
        Ok(())
    }

    pub async fn requests(&self, status: Option<&str>) -> Result<Vec<RequestRow>, StoreError> {
        on_pool!(self, pool => {
            let rows = sqlx::query(select_requests!("WHERE ($1 IS NULL OR status = $1) ORDER BY id"))
            .bind(status)
            .fetch_all(pool)
            .await?;
            Ok(rows.iter().map(request_row).collect())
        })
    }

    pub async fn request(&self, id: i64) -> Result<(RequestRow, Vec<RequestedRow>), StoreError> {
        on_pool!(self, pool => {
            let row = sqlx::query(select_requests!("WHERE id = $1"))
                .bind(id)
                .fetch_optional(pool)
                .await?
                .ok_or(StoreError::NotFound { what: "access_request", id })?;
            let requested = sqlx::query(
                "SELECT principal_name, principal_id_type, principal_id, scope, basis, proven, proof \
                 FROM requested_representation WHERE request_id = $1 ORDER BY position",
            )
            .bind(id)
            .fetch_all(pool)
            .await?
            .iter()
            .map(|r| RequestedRow {
                principal_name: r.get(0),
                principal_id_type: r.get(1),
                principal_id: r.get(2),
                scope: r.get(3),
                basis: r.get(4),
                proven: r.get(5),
                proof: r.get(6),
            })
            .collect();
            Ok((request_row(&row), requested))
        })
    }

    pub async fn reply_facts(&self, request_id: i64) -> Result<ReplyFacts, StoreError> {
        on_pool!(self, pool => {
            let row = sqlx::query(select_requests!("WHERE id = $1"))
                .bind(request_id)
                .fetch_optional(pool)
                .await?
                .ok_or(StoreError::NotFound { what: "access_request", id: request_id })?;
            let request = request_row(&row);
            let (recipient, channel): (Option<String>, String) = sqlx::query_as(
                "SELECT adres_odpowiedzi, channel FROM inbound_document WHERE id = $1",
            )
            .bind(request.document_id)
            .fetch_one(pool)
            .await?;
            let postal: Option<String> = sqlx::query_scalar(
                "SELECT applicant_postal_address FROM access_request WHERE id = $1",
            )
            .bind(request_id)
            .fetch_one(pool)
            .await?;
            let postal_address = postal
                .map(|p| crate::delivery::PostalAddress::from_recipient(&p))
                .transpose()
                .map_err(|e| StoreError::Conflict(format!("access_request {request_id}: {e}")))?;
            let came_by = match channel.as_str() {
                "edoreczenia" => crate::document::InboundChannel::Edoreczenia,
                _ => crate::document::InboundChannel::Epuap,
            };
            let representations = sqlx::query(
                "SELECT r.principal_name, r.principal_id_type, r.principal_id, s.scope FROM representation r \
                 JOIN representation_scope s ON s.representation_id = r.id \
                 WHERE r.source_request_id = $1 ORDER BY r.id, s.scope",
            )
            .bind(request_id)
            .fetch_all(pool)
            .await?;
            let mut grouped: Vec<(String, Vec<String>)> = Vec::new();
            for r in &representations {
                let who = format!("{} ({} {})", r.get::<String, _>(0), r.get::<String, _>(1), r.get::<String, _>(2));
                let scope: String = r.get(3);
                match grouped.last_mut() {
                    Some((last, scopes)) if *last == who => scopes.push(scope),
                    _ => grouped.push((who, vec![scope])),
                }
            }
            let letter = sqlx::query("SELECT id, status, attempts FROM outbound_document WHERE key = $1")
                .bind(format!("reply:{request_id}"))
                .fetch_optional(pool)
                .await?
                .map(|r| -> Result<_, StoreError> {
                    Ok((r.get(0), letter_status(&r.get::<String, _>(1))?, i64::from(r.get::<i32, _>(2))))
                })
                .transpose()?;
            Ok(ReplyFacts {
                request_date: request.received_at.date_naive(),
                request,
                recipient,
                came_by,
                postal_address,
                representations: grouped
                    .into_iter()
                    .map(|(who, scopes)| format!("{who}: {}", scopes.join(", ")))
                    .collect(),
                letter,
            })
        })
    }

    /// Records a letter to send (once per key); returns its id.
    #[allow(clippy::too_many_arguments)]
    pub async fn record_letter(
        &self,
        key: &str,
        channel: &str,
        channel_reason: &str,
        kind: &str,
        request_id: i64,
        recipient: &str,
        file_name: &str,
        content: &[u8],
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        on_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO outbound_document (key, channel, kind, request_id, recipient, file_name, content, \
                 status, created_at, updated_at, channel_reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $9, $8, $8, $10) \
                 ON CONFLICT (key) DO NOTHING",
            )
            .bind(key)
            .bind(channel)
            .bind(kind)
            .bind(request_id)
            .bind(recipient)
            .bind(file_name)
            .bind(content)
            .bind(now)
            .bind(LetterStatus::Pending.as_str())
            .bind(channel_reason)
            .execute(pool)
            .await?;
            Ok(sqlx::query_scalar("SELECT id FROM outbound_document WHERE key = $1")
                .bind(key)
                .fetch_one(pool)
                .await?)
        })
    }

    /// Marks a letter as being sent (the intent, committed before the channel is called):
    /// [`Sending::Begun`], with `attempts` counting this call.
    ///
    /// Fenced by `claim`: it marks the letter only while the claim still holds its job (so a
    /// worker whose lease ran out never calls the channel), and never a letter `sending` under
    /// another claim that is still live (another worker is sending it now). A letter left
    /// `sending` by a claim that died (a crashed daemon, an answer that never came) is not
    /// marked again: its outcome is unknown and ePUAP cannot be asked, so it is
    /// [`Sending::Uncertain`], for an official to resolve.
    pub async fn begin_sending(
        &self,
        letter_id: i64,
        claim: Claim,
        now: DateTime<Utc>,
    ) -> Result<Sending, StoreError> {
        on_pool!(self, pool => {
            let begun = sqlx::query(
                "UPDATE outbound_document SET status = $5, attempts = attempts + 1, updated_at = $1, \
                 sending_claim = $3 \
                 WHERE id = $2 \
                 AND (status = $6 OR (status = $5 AND sending_claim = $3)) \
                 AND EXISTS (SELECT 1 FROM job WHERE job.id = $4 AND job.claim_token = $3 AND job.status = 'running' \
                     AND job.locked_until > $1) \
                 RETURNING id, recipient, file_name, content, CAST(attempts AS BIGINT), channel, kind",
            )
            .bind(now)
            .bind(letter_id)
            .bind(claim.token)
            .bind(claim.job)
            .bind(LetterStatus::Sending.as_str())
            .bind(LetterStatus::Pending.as_str())
            .fetch_optional(pool)
            .await?;
            if let Some(row) = begun {
                return Ok(Sending::Begun(letter_row!(row)));
            }
            // Not begun: left `sending` by a claim that is no longer live, or not ours at all.
            let row = sqlx::query(
                "SELECT id, recipient, file_name, content, CAST(attempts AS BIGINT), channel, status, \
                 EXISTS (SELECT 1 FROM job WHERE job.claim_token = outbound_document.sending_claim \
                     AND job.status = 'running' AND job.locked_until > $2), \
                 EXISTS (SELECT 1 FROM job WHERE job.id = $3 AND job.claim_token = $4 AND job.status = 'running' \
                     AND job.locked_until > $2), kind \
                 FROM outbound_document WHERE id = $1",
            )
            .bind(letter_id)
            .bind(now)
            .bind(claim.job)
            .bind(claim.token)
            .fetch_optional(pool)
            .await?
            .ok_or(StoreError::NotFound { what: "outbound_document", id: letter_id })?;
            let status = letter_status(&row.get::<String, _>(6))?;
            let held = status == LetterStatus::ReviewRequired;
            let other_live: bool = row.get(7);
            let ours: bool = row.get(8);
            if status == LetterStatus::Sending && !other_live && ours {
                return Ok(Sending::Uncertain(letter_row!(row)));
            }
            Err(StoreError::Conflict(format!(
                "letter {letter_id} is not waiting to be sent by this worker ({status}{}{}{})",
                if held { ", held for an official" } else { "" },
                if other_live { ", another worker is sending it" } else { "" },
                if ours { "" } else { ", this worker's claim ended" },
            )))
        })
    }

    /// Holds a letter whose sending was begun by a claim that died: ePUAP cannot be asked
    /// whether it arrived, so an official decides (`eurzad requests resend` or `mark-sent`).
    /// The request stays unanswered, so the deadline watch keeps reminding; the reason is
    /// added to it and audited, and the job is finished.
    pub async fn hold_letter(
        &self,
        claim: Claim,
        letter_id: i64,
        request_id: i64,
        why: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            sqlx::query(
                "UPDATE outbound_document SET status = $4, review_required_at = $1, review_reason = $2, \
                 updated_at = $1 WHERE id = $3 AND status = $5",
            )
            .bind(now)
            .bind(why)
            .bind(letter_id)
            .bind(LetterStatus::ReviewRequired.as_str())
            .bind(LetterStatus::Sending.as_str())
            .execute(&mut *tx)
            .await?;
            sqlx::query(APPEND_REASON)
            .bind(why)
            .bind(now)
            .bind(request_id)
            .execute(&mut *tx)
            .await?;
            audit_in_tx!(tx, AUTOMATIC, "letter_held_for_review", &format!("access_request:{request_id}"),
                &format!("letter {letter_id}: {why}"), now);
            finish_claimed!(&mut *tx, claim, now);
            tx.commit().await?;
        });
        Ok(())
    }

    /// An official's resolution of a held letter of `request_id`: send it again (it goes out
    /// with the next job run) or record it as sent, with the identifier ePUAP gave it.
    pub async fn resolve_held_letter(
        &self,
        request_id: i64,
        resolution: &HeldLetter,
        official: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let letter: i64 = sqlx::query_scalar(
                "SELECT id FROM outbound_document WHERE key = $1 AND status = $2",
            )
            .bind(format!("reply:{request_id}"))
            .bind(LetterStatus::ReviewRequired.as_str())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::Conflict(format!(
                "request {request_id} has no letter held for an official"
            )))?;
            let subject = format!("access_request:{request_id}");
            match resolution {
                HeldLetter::Resend => {
                    sqlx::query(
                        "UPDATE outbound_document SET status = $3, review_required_at = NULL, \
                         sending_claim = NULL, updated_at = $1 WHERE id = $2",
                    )
                    .bind(now)
                    .bind(letter)
                    .bind(LetterStatus::Pending.as_str())
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query(
                        "UPDATE job SET status = 'pending', run_after = $1, attempts = 0, locked_until = NULL, \
                         claim_token = NULL, last_error = NULL, updated_at = $1 WHERE kind = $3 AND key = $2",
                    )
                    .bind(now)
                    .bind(request_id.to_string())
                    .bind(JobKind::Reply.as_str())
                    .execute(&mut *tx)
                    .await?;
                    audit_in_tx!(tx, official, "letter_resend_ordered", &subject,
                        &format!("letter {letter}: it may reach the applicant twice"), now);
                }
                HeldLetter::Sent { document_identifier } => {
                    sqlx::query(
                        "UPDATE outbound_document SET status = $4, document_identifier = $1, sent_at = $2, \
                         review_required_at = NULL, updated_at = $2 WHERE id = $3",
                    )
                    .bind(document_identifier)
                    .bind(now)
                    .bind(letter)
                    .bind(LetterStatus::Sent.as_str())
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query(sqlx::AssertSqlSafe(MARK_REPLIED.as_str())).bind(now).bind(request_id).execute(&mut *tx).await?;
                    audit_in_tx!(tx, official, "letter_marked_sent", &subject,
                        &format!("letter {letter}, {document_identifier}"), now);
                }
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// The channel refused the letter: it was not delivered, so the next try is no duplicate.
    pub async fn letter_refused(
        &self,
        letter_id: i64,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            sqlx::query(
                "UPDATE outbound_document SET status = $4, attempts = attempts - 1, error = $1, \
                 updated_at = $2 WHERE id = $3 AND status = $5",
            )
            .bind(error)
            .bind(now)
            .bind(letter_id)
            .bind(LetterStatus::Pending.as_str())
            .bind(LetterStatus::Sending.as_str())
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Records the channel's receipt (UPP), marks the request replied, finishes the job.
    #[allow(clippy::too_many_arguments)]
    pub async fn letter_sent(
        &self,
        claim: Claim,
        letter_id: i64,
        request_id: i64,
        receipt: &crate::delivery::DeliveryReceipt,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            sqlx::query(
                "UPDATE outbound_document SET status = $6, document_identifier = $1, upp_identifier = $2, \
                 upp = $3, sent_at = $4, error = NULL, updated_at = $4 WHERE id = $5",
            )
            .bind(&receipt.document_identifier)
            .bind(receipt.submission_proof_id.as_deref())
            .bind(receipt.submission_proof.as_deref())
            .bind(now)
            .bind(letter_id)
            .bind(LetterStatus::Sent.as_str())
            .execute(&mut *tx)
            .await?;
            if receipt.follows_evidence {
                // Its legal state follows the channel's evidences from here (the evidence worker).
                sqlx::query(
                    "UPDATE outbound_document SET legal_state = $1, legal_state_at = $2 WHERE id = $3",
                )
                .bind(crate::edoreczenia::evidence::LegalState::Sent.as_str())
                .bind(now)
                .bind(letter_id)
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query(sqlx::AssertSqlSafe(MARK_REPLIED.as_str()))
            .bind(now)
            .bind(request_id)
            .execute(&mut *tx)
            .await?;
            audit_in_tx!(tx, AUTOMATIC, "replied", &format!("access_request:{request_id}"),
                &format!("letter {letter_id}, {}", receipt.document_identifier), now);
            finish_claimed!(&mut *tx, claim, now);
            tx.commit().await?;
        });
        Ok(())
    }

    /// The reply cannot go out by the channel (e.g. no adresOdpowiedzi): the reason is added
    /// to the request for officials, audited, and the job finished. The request stays
    /// unanswered, so the deadline watch keeps reminding officials.
    pub async fn reply_impossible(
        &self,
        claim: Claim,
        request_id: i64,
        why: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            sqlx::query(APPEND_REASON)
            .bind(why)
            .bind(now)
            .bind(request_id)
            .execute(&mut *tx)
            .await?;
            audit_in_tx!(tx, AUTOMATIC, "reply_impossible", &format!("access_request:{request_id}"), why, now);
            finish_claimed!(&mut *tx, claim, now);
            tx.commit().await?;
        });
        Ok(())
    }

    /// Records a UPD: the letter of `request_id` was delivered. False when there is no such
    /// sent letter (the job is then left for the caller to finish).
    pub async fn letter_delivered(
        &self,
        claim: Claim,
        request_id: i64,
        upd_document_id: i64,
        upd: &[u8],
        opened: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let updated = sqlx::query(sqlx::AssertSqlSafe(MARK_DELIVERED.as_str()))
            .bind(upd)
            .bind(upd_document_id)
            .bind(now)
            .bind(format!("reply:{request_id}"))
            .bind(LetterStatus::Delivered.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if updated == 0 {
                return Ok(false);
            }
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE access_request SET status = $3, updated_at = $1 WHERE id = $2 AND status IN {}",
                RequestStatus::sql_sources(RequestStatus::Delivered)
            )))
            .bind(now)
            .bind(request_id)
            .bind(RequestStatus::Delivered.as_str())
            .execute(&mut *tx)
            .await?;
            audit_in_tx!(tx, AUTOMATIC, "delivered", &format!("access_request:{request_id}"),
                &format!("UPD in document {upd_document_id}, opened {}", opened.unwrap_or("?")), now);
            finish_claimed!(&mut *tx, claim, now);
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Marks the request replied when its letter was sent by an earlier run.
    pub async fn finish_replied(
        &self,
        claim: Claim,
        request_id: i64,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            sqlx::query(sqlx::AssertSqlSafe(MARK_REPLIED.as_str()))
            .bind(now)
            .bind(request_id)
            .execute(&mut *tx)
            .await?;
            finish_claimed!(&mut *tx, claim, now);
            tx.commit().await?;
        });
        Ok(())
    }

    /// A pending notification: (recipients, subject, body), or `None` once sent.
    pub async fn notification(
        &self,
        id: i64,
    ) -> Result<Option<(Vec<String>, String, String)>, StoreError> {
        on_pool!(self, pool => {
            let row = sqlx::query("SELECT recipients, subject, body, status FROM notification WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?
                .ok_or(StoreError::NotFound { what: "notification", id })?;
            let status: String = row.get(3);
            if status == "sent" {
                return Ok(None);
            }
            let recipients: String = row.get(0);
            Ok(Some((
                recipients.split(", ").map(str::to_string).collect(),
                row.get(1),
                row.get(2),
            )))
        })
    }

    pub async fn notification_sent(
        &self,
        claim: Claim,
        id: i64,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            sqlx::query("UPDATE notification SET status = 'sent', sent_at = $1, attempts = attempts + 1 WHERE id = $2")
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            finish_claimed!(&mut *tx, claim, now);
            tx.commit().await?;
        });
        Ok(())
    }

    /// Requests still without a reply: for reminders, overdue alerts and the digest.
    pub async fn unanswered_requests(&self) -> Result<Vec<RequestRow>, StoreError> {
        on_pool!(self, pool => {
            let rows = sqlx::query(select_requests!(unanswered!()))
            .fetch_all(pool)
            .await?;
            Ok(rows.iter().map(request_row).collect())
        })
    }

    /// Records a notification (once per key) with its mail job; true when it is new.
    pub async fn add_notification(
        &self,
        key: &str,
        recipients: &[String],
        subject: &str,
        body: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let new = notify_in_tx!(tx, key, recipients.join(", "), subject, body, now);
            tx.commit().await?;
            Ok(new)
        })
    }

    /// The key of the latest notification whose key starts with `prefix`.
    pub async fn latest_notification_key(
        &self,
        prefix: &str,
    ) -> Result<Option<String>, StoreError> {
        on_pool!(self, pool => {
            Ok(sqlx::query_scalar("SELECT MAX(key) FROM notification WHERE key LIKE $1")
                .bind(format!("{prefix}%"))
                .fetch_one(pool)
                .await?)
        })
    }
}

/// A letter from a citizen or company, as the portal's correspondence shows it.
#[derive(Debug, Clone)]
pub struct Correspondence {
    pub document_id: i64,
    pub party_id_type: Option<String>,
    pub party_id: Option<String>,
    pub form_type: String,
    pub title: String,
    pub body: String,
    pub sender: Option<String>,
    pub box_address: String,
    pub department: Option<String>,
    pub received_at: DateTime<Utc>,
}

/// What the `correspond` step reads of a document.
#[derive(Debug, Clone)]
pub struct CorrespondenceFacts {
    pub box_address: String,
    pub received_at: DateTime<Utc>,
    pub file_name: String,
    pub form_type: Option<String>,
    pub content: Vec<u8>,
    /// The signer's PESEL when the signature passed.
    pub signer_pesel: Option<String>,
    /// danePodmiotu as ePUAP vouches for it.
    pub subject_pesel: Option<String>,
    pub subject_nip: Option<String>,
    pub subject_name: Option<String>,
    /// A message's own subject and text (e-Doręczenia), and its sender's address.
    pub message_subject: Option<String>,
    pub message_text: Option<String>,
    pub sender_address: Option<String>,
}

impl Store {
    pub async fn correspondence_facts(
        &self,
        document_id: i64,
    ) -> Result<CorrespondenceFacts, StoreError> {
        on_pool!(self, pool => {
            let row = sqlx::query(
                "SELECT box_address, received_at, nazwa_pliku, form_type, content, \
                 CASE WHEN signature_indication = 'TOTAL-PASSED' THEN signer_pesel END, \
                 NULLIF(podmiot_pesel, ''), NULLIF(podmiot_nip, ''), \
                 NULLIF(TRIM(COALESCE(podmiot_imie_skrot, '') || ' ' || COALESCE(podmiot_nazwisko_nazwa, '')), ''), \
                 NULLIF(subject, ''), NULLIF(text_body, ''), sender_address \
                 FROM inbound_document WHERE id = $1",
            )
            .bind(document_id)
            .fetch_optional(pool)
            .await?
            .ok_or(StoreError::NotFound { what: "inbound_document", id: document_id })?;
            Ok(CorrespondenceFacts {
                box_address: row.get(0),
                received_at: row.get(1),
                file_name: row.get(2),
                form_type: row.get(3),
                content: row.get(4),
                signer_pesel: row.get(5),
                subject_pesel: row.get(6),
                subject_nip: row.get(7),
                subject_name: row.get(8),
                message_subject: row.get(9),
                message_text: row.get(10),
                sender_address: row.get(11),
            })
        })
    }

    /// Records a letter as correspondence (once per document), linked to the account of its
    /// party when there is one, with the mail to its department; finishes the job.
    pub async fn record_correspondence(
        &self,
        claim: Claim,
        letter: &Correspondence,
        mail: Option<super::RoutedMail<'_>>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            correspondence_in_tx!(tx, letter, mail, now);
            finish_claimed!(&mut *tx, claim, now);
            tx.commit().await?;
        });
        Ok(())
    }
}

/// What the run summary shows of provisioning.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ProvisioningCounts {
    /// (status, count) of access requests.
    pub requests: Vec<(String, i64)>,
    pub accounts: i64,
    pub letters_sent: i64,
    pub letters_resent: i64,
    /// Letters held for an official after an uncertain outcome.
    pub letters_held: i64,
    pub correspondence: i64,
    pub mail_sent: i64,
    pub mail_pending: i64,
}

impl Store {
    pub async fn provisioning_counts(&self) -> Result<ProvisioningCounts, StoreError> {
        on_pool!(self, pool => {
            let requests = sqlx::query("SELECT status, COUNT(*) FROM access_request GROUP BY status ORDER BY status")
                .fetch_all(pool)
                .await?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
            let row = sqlx::query(
                "SELECT (SELECT COUNT(*) FROM account), \
                 (SELECT COUNT(*) FROM outbound_document WHERE status IN ($1, $2)), \
                 (SELECT CAST(COALESCE(SUM(attempts - 1), 0) AS BIGINT) FROM outbound_document WHERE attempts > 1), \
                 (SELECT COUNT(*) FROM correspondence), \
                 (SELECT COUNT(*) FROM notification WHERE status = 'sent'), \
                 (SELECT COUNT(*) FROM notification WHERE status = 'pending'), \
                 (SELECT COUNT(*) FROM outbound_document WHERE status = $3)",
            )
            .bind(LetterStatus::Sent.as_str())
            .bind(LetterStatus::Delivered.as_str())
            .bind(LetterStatus::ReviewRequired.as_str())
            .fetch_one(pool)
            .await?;
            Ok(ProvisioningCounts {
                requests,
                accounts: row.get(0),
                letters_sent: row.get(1),
                letters_resent: row.get(2),
                correspondence: row.get(3),
                mail_sent: row.get(4),
                mail_pending: row.get(5),
                letters_held: row.get(6),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unanswered_requests_are_those_that_await_a_reply() {
        let listed: Vec<String> = RequestStatus::ALL
            .into_iter()
            .filter(|s| s.awaits_reply())
            .map(|s| format!("'{s}'"))
            .collect();
        let sql = select_requests!(
            "WHERE status IN ('received', 'awaiting_official', 'approved', 'rejected') ORDER BY deadline_at"
        );
        assert!(
            sql.contains(&format!("IN ({})", listed.join(", "))),
            "{sql}"
        );
    }
}
