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

/// An official's decision on a request, as the command line and the desk give it.
#[derive(Debug, Clone, Copy)]
pub struct Decision<'a> {
    pub approve: bool,
    /// Who decides, as the record names them.
    pub official: &'a str,
    /// The note of an approval, or the reason of a refusal (sent to the applicant).
    pub reason: &'a str,
    pub term: Option<Term>,
    /// Grant only these representations, numbered from 1 in the form's order.
    pub only: Option<&'a [usize]>,
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
    decision: Decision<'_>,
) -> Result<(), RequestsError> {
    let Decision {
        approve,
        official,
        reason,
        term,
        only,
    } = decision;
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
    let (row, requested) = store.request(id).await?;
    // Representations are numbered from 1 in the order the form lists them.
    let positions: Option<Vec<i64>> = match only {
        None => None,
        Some(_) if !approve => None,
        Some([]) => {
            return Err(RequestsError::Invalid(
                "--only: name at least one representation to approve, or reject the request"
                    .into(),
            ));
        }
        Some(numbers) => Some(
            numbers
                .iter()
                .map(|&n| {
                    if n == 0 || n > requested.len() {
                        Err(RequestsError::Invalid(format!(
                            "--only {n}: request {id} asks for {} representation(s), numbered from 1",
                            requested.len()
                        )))
                    } else {
                        Ok(n as i64 - 1)
                    }
                })
                .collect::<Result<_, _>>()?,
        ),
    };
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
            positions.as_deref(),
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
