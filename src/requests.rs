//! The officials' queue behind `eurzad requests`: list, show, approve, reject. A decision is
//! recorded with who, when and why (audit_log), and enqueues the reply, which the daemon's
//! job worker sends (at once when it is running, or on the next `eurzad run --once`).

use chrono::Utc;

use crate::forms::{Form, Registry};
use crate::provisioning::{RequestStatus, Term};
use crate::states::Named as _;
use crate::store::{HeldLetter, RequestRow, RequestedRow, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum RequestsError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Invalid(String),
}

pub async fn list(store: &Store, status: Option<&str>) -> Result<Vec<RequestRow>, RequestsError> {
    if let Some(status) = status
        && RequestStatus::parse(status).is_none()
    {
        let names: Vec<&str> = RequestStatus::ALL.iter().map(|s| s.as_str()).collect();
        return Err(RequestsError::Invalid(format!(
            "--status {status:?}: one of {}",
            names.join(", ")
        )));
    }
    Ok(store.requests(status).await?)
}

pub async fn show(
    store: &Store,
    id: i64,
) -> Result<(RequestRow, Vec<RequestedRow>), RequestsError> {
    Ok(store.request(id).await?)
}

/// Approves (`reason` is the official's note) or rejects (`reason` is required and goes to
/// the applicant) a request that awaits an official. `term` is the term of an authorization
/// the official saw outside the request (on paper): it bounds every representation granted,
/// and is required for those without an attached authorization. A representation is never
/// granted beyond its attached authorization's term.
pub async fn decide(
    store: &Store,
    registry: &Registry,
    id: i64,
    approve: bool,
    official: &str,
    reason: &str,
    term: Option<Term>,
) -> Result<(), RequestsError> {
    if let Some(term) = term
        && term.to.is_some_and(|to| to < term.from)
    {
        return Err(RequestsError::Invalid(format!(
            "--valid-to {} is before --valid-from {}",
            term.to.unwrap_or(term.from),
            term.from
        )));
    }
    if official.trim().is_empty() {
        return Err(RequestsError::Invalid(
            "--as: who decides must be named".into(),
        ));
    }
    if !approve && reason.trim().is_empty() {
        return Err(RequestsError::Invalid(
            "reject needs --reason: it is sent to the applicant".into(),
        ));
    }
    let (row, _) = store.request(id).await?;
    let facts = store.provision_facts(row.document_id).await?;
    let request = match registry.read(&facts.content) {
        Ok(Form::AccessRequest(request)) => Some(request),
        _ => None,
    };
    store
        .decide(
            id,
            approve,
            official,
            reason,
            request.as_ref(),
            facts.epuap_user.as_deref(),
            term.filter(|_| approve),
            Utc::now(),
        )
        .await?;
    Ok(())
}

/// Resolves a reply letter held after an uncertain outcome (its sending was interrupted and
/// ePUAP cannot be asked whether it arrived): send it again, or record it as sent.
pub async fn resolve_held(
    store: &Store,
    id: i64,
    resolution: HeldLetter,
    official: &str,
) -> Result<(), RequestsError> {
    if official.trim().is_empty() {
        return Err(RequestsError::Invalid(
            "--as: who decides must be named".into(),
        ));
    }
    if let HeldLetter::Sent {
        document_identifier,
    } = &resolution
        && document_identifier.trim().is_empty()
    {
        return Err(RequestsError::Invalid(
            "--document-id: the identifier ePUAP gave the letter (identyfikatorDokumentu)".into(),
        ));
    }
    store
        .resolve_held_letter(id, &resolution, official, Utc::now())
        .await?;
    Ok(())
}
