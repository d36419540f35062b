//! Provisioning: an access request becomes a portal account within seven days.
//!
//! This module is the domain: it decides, from the judged request and its attachments,
//! whether a request approves itself, waits for an official, or is rejected, and says why in
//! Polish (officials and applicants read the reasons). The durable state machine around it
//! (received → awaiting_official | approved | rejected → replied → delivered) is run by the
//! job queue (`jobs`) on the store; see docs/provisioning.md.

pub mod deadline;
pub mod letter;
pub mod status;

pub use status::RequestStatus;

use chrono::{DateTime, NaiveDate, Utc};

use crate::forms::{AccessRequest, Form, PartyId, PartyKind, Registry, Represented};
use crate::signature::{self, KindTrust};

/// Who signed the request, as the `verify` step recorded it.
#[derive(Debug, Clone, Default)]
pub struct SignedBy {
    pub passed: bool,
    /// The verdict's technical reason and sub-indication (for a failed signature): what
    /// applicants and officials read is [`SignedBy::in_plain_polish`].
    pub reason: String,
    pub subindication: Option<String>,
    /// `qualified`, `trusted_profile` or `personal`.
    pub kind: Option<String>,
    pub pesel: Option<String>,
    /// The certificate states QcCompliance (qualified kind only).
    pub qualified_certificate: Option<bool>,
}

impl SignedBy {
    pub fn in_plain_polish(&self) -> &'static str {
        signature::in_plain_polish(self.subindication.as_deref(), &self.reason)
    }

    /// Whether the verdict failed only for want of revocation data (no source answered, or
    /// every answer was stale).
    pub fn revocation_unknown(&self) -> bool {
        matches!(
            self.subindication.as_deref(),
            Some("TRY_LATER" | "REVOCATION_OUT_OF_BOUNDS_NO_POE")
        )
    }
}

/// The applicant's name as letters and the officials' queue give it: the name the signature
/// vouches for (a signed identity), else the one ePUAP vouches for (the sender's account),
/// else the name typed into the form, marked as unconfirmed. A forged request is thus never
/// answered under a name only its forger typed.
pub fn applicant_name(signer: Option<&str>, epuap: Option<&str>, typed: Option<&str>) -> String {
    fn vouched(name: Option<&str>) -> Option<&str> {
        name.map(str::trim).filter(|n| !n.is_empty())
    }
    match (vouched(signer), vouched(epuap), vouched(typed)) {
        (Some(name), _, _) | (None, Some(name), _) => name.to_string(),
        (None, None, Some(typed)) => format!("{typed} (podane we wniosku, niepotwierdzone)"),
        (None, None, None) => "(nie podano, niepotwierdzone)".to_string(),
    }
}

/// What to do with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Everything is proven: make the account and the representations.
    Approve,
    /// A human must look: each reason is a sentence in Polish.
    AwaitOfficial(Vec<String>),
    /// Forged, tampered or unreadable: no account, the reason in Polish.
    Reject(String),
}

/// A representation the request asks for, with the outcome of its proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedRepresentation {
    pub represented: Represented,
    pub proven: bool,
    /// Why it is (or is not) proven, in Polish.
    pub proof: String,
    pub valid_from: Option<NaiveDate>,
    pub valid_to: Option<NaiveDate>,
}

#[derive(Debug, Clone)]
pub struct Assessment {
    pub decision: Decision,
    pub representations: Vec<CheckedRepresentation>,
}

/// Decides on a request. `form` is the request as the forms registry read it (or why it
/// could not be read). Attached authorizations are verified here with `trust`, at `at`.
pub fn assess(
    signed: &SignedBy,
    form: Result<&AccessRequest, &str>,
    trust: &KindTrust,
    registry: &Registry,
    at: DateTime<Utc>,
) -> Assessment {
    let reject = |reason: String| Assessment {
        decision: Decision::Reject(reason),
        representations: Vec::new(),
    };
    if !signed.passed {
        // Whether the signer's certificate was revoked could not be learned: the signature
        // is not shown false, so a person decides instead of a refusal.
        if signed.revocation_unknown() {
            return Assessment {
                decision: Decision::AwaitOfficial(vec![format!(
                    "podpisu nie można było w pełni sprawdzić: {}",
                    signed.in_plain_polish()
                )]),
                representations: Vec::new(),
            };
        }
        return reject(format!(
            "podpis wniosku jest nieprawidłowy: {}",
            signed.in_plain_polish()
        ));
    }
    let request = match form {
        Ok(request) => request,
        Err(error) => return reject(format!("wniosku nie można odczytać: {error}")),
    };
    let mut waits = Vec::new();
    match &signed.pesel {
        Some(pesel) if *pesel == request.applicant.pesel => {}
        Some(pesel) => waits.push(format!(
            "PESEL osoby podpisującej ({pesel}) różni się od PESEL wnioskodawcy ({})",
            request.applicant.pesel
        )),
        None => waits.push("podpis nie wskazuje numeru PESEL osoby podpisującej".to_string()),
    }
    if signed.kind.as_deref() == Some("qualified") && signed.qualified_certificate != Some(true) {
        waits.push(
            "certyfikat podpisu nie zawiera deklaracji certyfikatu kwalifikowanego (QcCompliance)"
                .to_string(),
        );
    }
    let today = at.date_naive();
    let representations: Vec<CheckedRepresentation> = request
        .represented
        .iter()
        .map(|represented| check_representation(request, represented, trust, registry, at, today))
        .collect();
    for r in representations.iter().filter(|r| !r.proven) {
        waits.push(format!(
            "reprezentacja {} ({} {}): {}",
            r.represented.party.name,
            r.represented.party.id.kind(),
            r.represented.party.id.value(),
            r.proof
        ));
    }
    Assessment {
        decision: if waits.is_empty() {
            Decision::Approve
        } else {
            Decision::AwaitOfficial(waits)
        },
        representations,
    }
}

/// A representation is proven by an attached authorization that (1) verifies, (2) is signed
/// by the principal (their PESEL, or for an entity a certificate naming its NIP), (3) names
/// the applicant as the agent and this principal, (4) covers the requested scope, and (5) is
/// in force today.
fn check_representation(
    request: &AccessRequest,
    represented: &Represented,
    trust: &KindTrust,
    registry: &Registry,
    at: DateTime<Utc>,
    today: NaiveDate,
) -> CheckedRepresentation {
    let outcome = |proven: bool, proof: String, from, to| CheckedRepresentation {
        represented: represented.clone(),
        proven,
        proof,
        valid_from: from,
        valid_to: to,
    };
    let not_proven = |proof: &str| outcome(false, proof.to_string(), None, None);
    let Some(attachment) = request.attachment_for(represented) else {
        return not_proven("brak załączonego upoważnienia");
    };
    let authorization = match registry.read(&attachment.content) {
        Ok(Form::Authorization(authorization)) => authorization,
        Ok(_) => return not_proven("załącznik nie jest upoważnieniem"),
        Err(e) => return not_proven(&format!("upoważnienia nie można odczytać: {e}")),
    };
    let verdict = signature::verify_by_kind(&attachment.content, trust, at);
    if !verdict.passed() {
        return not_proven(&format!(
            "podpis upoważnienia jest nieprawidłowy: {}",
            verdict.in_plain_polish()
        ));
    }
    // From here on the authorization is genuinely signed: its term bounds any grant, also
    // one an official approves after it failed another check (it is never widened).
    let not_proven = |proof: &str| {
        outcome(
            false,
            proof.to_string(),
            Some(authorization.valid_from),
            authorization.valid_to,
        )
    };
    let identity = verdict.identity.unwrap_or_default();
    let signed_by_principal = match (&represented.party.kind, &represented.party.id) {
        (PartyKind::Natural, PartyId::Pesel(pesel)) => identity.pesel.as_ref() == Some(pesel),
        (PartyKind::Legal, PartyId::Nip(nip)) => {
            identity.organization_identifier.as_deref() == Some(&format!("VATPL-{nip}"))
        }
        _ => false,
    };
    if !signed_by_principal {
        return not_proven("upoważnienie nie jest podpisane przez mocodawcę");
    }
    if authorization.principal.id != represented.party.id {
        return not_proven("upoważnienie dotyczy innego mocodawcy");
    }
    if authorization.agent_pesel != request.applicant.pesel {
        return not_proven("upoważnienie wskazuje innego pełnomocnika");
    }
    let missing: Vec<&str> = represented
        .scope
        .iter()
        .filter(|s| !authorization.scope.contains(s))
        .map(|s| s.as_str())
        .collect();
    if !missing.is_empty() {
        return not_proven(&format!(
            "upoważnienie nie obejmuje zakresu: {}",
            missing.join(", ")
        ));
    }
    if authorization.valid_from > today || authorization.valid_to.is_some_and(|to| to < today) {
        return not_proven("upoważnienie nie obowiązuje w dniu rozpatrzenia");
    }
    outcome(
        true,
        format!(
            "upoważnienie z dnia {} podpisane przez mocodawcę",
            authorization.date
        ),
        Some(authorization.valid_from),
        authorization.valid_to,
    )
}

/// How long a representation holds: from a day, until a day (inclusive) or without end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Term {
    pub from: NaiveDate,
    pub to: Option<NaiveDate>,
}

impl Term {
    /// The days both terms cover: a grant is never wider than any of its proofs.
    pub fn within(self, bound: Term) -> Term {
        Term {
            from: self.from.max(bound.from),
            to: match (self.to, bound.to) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
        }
    }

    /// Whether the term has ended before `day` (or never begins: it ends before it starts).
    pub fn ended_before(self, day: NaiveDate) -> bool {
        self.to.is_some_and(|to| to < day || to < self.from)
    }
}

impl std::fmt::Display for Term {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.to {
            Some(to) => write!(f, "{}..{}", self.from, to),
            None => write!(f, "{}.. (bezterminowo)", self.from),
        }
    }
}

/// The term an approved representation is granted for: the attached authorization's term
/// (`proof`, when one was read and verified), within the term an official gives (`official`,
/// for an authorization seen on paper). With neither, there is nothing to bound it by, and
/// the official must give one.
pub fn granted_term(proof: Option<Term>, official: Option<Term>) -> Option<Term> {
    match (proof, official) {
        (Some(proof), Some(official)) => Some(official.within(proof)),
        (proof, official) => proof.or(official),
    }
}

/// What a UPD (urzędowe poświadczenie doręczenia) from ePUAP certifies: the document it
/// names (`IdentyfikatorDokumentu`, our `EUR.<request>` reference) and when it was opened
/// (`DataOdbioru`, if given). The UPD must be sealed by `epuap_certificate`; only the signed
/// fields, the root's direct children, are read.
pub fn read_upd(
    bytes: &[u8],
    epuap_certificate: &[u8],
    at: DateTime<Utc>,
) -> Result<(String, Option<String>), String> {
    let policy = signature::TrustPolicy {
        pinned: vec![epuap_certificate.to_vec()],
        ..Default::default()
    };
    let verdict = signature::verify(bytes, &policy, at);
    if !verdict.passed() {
        return Err(format!(
            "the UPD is not sealed by ePUAP: {}",
            verdict.reason
        ));
    }
    let doc = crate::xml::parse(bytes, crate::xml::Limits::default()).map_err(|e| e.to_string())?;
    let root = doc.get_root_element().ok_or("an empty UPD")?;
    let field = |name: &str| {
        crate::xml::only_child(&root, Some(crate::document::UPO_NS), name)
            .ok()
            .flatten()
            .map(|n| crate::xml::text_of(&n).trim().to_string())
    };
    let reference =
        field("IdentyfikatorDokumentu").ok_or("the UPD names no IdentyfikatorDokumentu")?;
    Ok((reference, field("DataOdbioru")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    #[test]
    fn the_name_comes_from_whoever_vouches_for_it() {
        assert_eq!(
            applicant_name(
                Some("Anna Wiśniewska"),
                Some("Anna W."),
                Some("Wojciech Wójcik")
            ),
            "Anna Wiśniewska"
        );
        assert_eq!(
            applicant_name(None, Some("Jan Kowalski"), Some("Wojciech Wójcik")),
            "Jan Kowalski"
        );
        assert_eq!(
            applicant_name(None, Some(" "), Some("Wojciech Wójcik")),
            "Wojciech Wójcik (podane we wniosku, niepotwierdzone)"
        );
    }

    #[test]
    fn a_signature_whose_revocation_is_unknown_waits_for_an_official() {
        let registry = Registry::default();
        let unknown = SignedBy {
            passed: false,
            reason: "the signer certificate: no fresh revocation data".into(),
            subindication: Some("TRY_LATER".into()),
            ..SignedBy::default()
        };
        let assessment = assess(
            &unknown,
            Err("unread"),
            &KindTrust::default(),
            &registry,
            Utc::now(),
        );
        assert!(
            matches!(&assessment.decision, Decision::AwaitOfficial(reasons)
                if reasons[0].contains("nie udało się sprawdzić, czy certyfikat podpisu nie został unieważniony")),
            "{:?}",
            assessment.decision
        );
        let revoked = SignedBy {
            subindication: Some("REVOKED_NO_POE".into()),
            ..unknown
        };
        let assessment = assess(
            &revoked,
            Err("unread"),
            &KindTrust::default(),
            &registry,
            Utc::now(),
        );
        assert!(matches!(assessment.decision, Decision::Reject(_)));
    }

    #[test]
    fn a_grant_is_never_wider_than_its_proof() {
        let proof = Term {
            from: day("2025-10-28"),
            to: Some(day("2026-11-26")),
        };
        assert_eq!(granted_term(Some(proof), None), Some(proof));
        let official = Term {
            from: day("2026-01-01"),
            to: None,
        };
        assert_eq!(
            granted_term(Some(proof), Some(official)),
            Some(Term {
                from: day("2026-01-01"),
                to: Some(day("2026-11-26"))
            })
        );
        assert_eq!(granted_term(None, Some(official)), Some(official));
        assert_eq!(granted_term(None, None), None);
        assert!(proof.ended_before(day("2026-12-02")));
        assert!(!proof.ended_before(day("2026-11-26")));
        assert!(!official.ended_before(day("2099-01-01")));
    }
}
