//! The evidence worker: for each sent letter whose legal state is not final, the message's
//! evidences are listed, each new one is fetched as XML, read and its seal judged, stored
//! once as received (with its SHA-256), and the letter's legal state is derived again from
//! all of them at the time of the pass: deemed delivery comes with the passing of days, not
//! with an evidence.
//!
//! A letter whose evidences cannot be had or read is left for the next pass; the others go
//! on. An evidence with a broken seal is kept (it is what the operator sent) but does not
//! move the letter's state.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::client::UaClient;
use super::evidence::{
    DeemedDelivery, EvidenceCode, EvidenceDocument, LegalState, SealCheck, read_evidence, standing,
};
use super::wire;
use crate::store::{FollowedLetter, NewEvidence, Store};
use crate::worker::{Pass, Worker};

pub struct EvidenceFollower {
    pub store: Store,
    pub client: UaClient,
    pub deemed: DeemedDelivery,
    /// The operator's sealing certificate; without one, seals are recorded as unchecked.
    pub operator_certificate: Option<Vec<u8>>,
    /// A letter is asked again after this long.
    pub recheck_after: Duration,
    /// Letters per pass.
    pub batch: i64,
}

/// What a pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Followed {
    pub letters: u32,
    pub evidences: u32,
    pub moved: u32,
    /// Letters whose evidences could not be had or read this time.
    pub failed: u32,
}

impl EvidenceFollower {
    /// One pass at `now`.
    pub async fn follow_at(&self, now: DateTime<Utc>) -> anyhow::Result<Followed> {
        let checked_before =
            now - chrono::TimeDelta::from_std(self.recheck_after).unwrap_or(chrono::TimeDelta::MAX);
        let letters = self
            .store
            .letters_following(
                [super::channel::CHANNEL, super::channel::HYBRID_CHANNEL],
                checked_before,
                self.batch,
            )
            .await?;
        let mut followed = Followed::default();
        for letter in &letters {
            followed.letters += 1;
            let (new, failed) = self.fetch_new(letter).await?;
            if failed {
                followed.failed += 1;
            }
            followed.evidences += new.len() as u32;
            let mut known: Vec<(EvidenceCode, DateTime<Utc>)> = self
                .store
                .letter_evidences(letter.id)
                .await?
                .into_iter()
                .filter(|e| e.seal != "invalid")
                .filter_map(|e| Some((EvidenceCode::read(&e.code).ok()?, e.event_at)))
                .collect();
            known.extend(
                new.iter()
                    .filter(|e| !matches!(e.seal, SealCheck::Invalid(_)))
                    .map(|e| (e.code, e.event_at)),
            );
            let mut standing = standing(&known, now, &self.deemed);
            // Deemed delivery is final: it is not concluded while an evidence could not be
            // had (an E.1 among them would make the letter delivered instead).
            if failed && standing.state == LegalState::DeemedDelivered {
                let latest = known.iter().map(|(_, at)| *at).max().unwrap_or(now);
                standing = super::evidence::standing(&known, latest, &self.deemed);
            }
            if self
                .store
                .record_evidence(letter.id, &new, &standing, now)
                .await?
            {
                followed.moved += 1;
                tracing::info!(letter = letter.id, request = ?letter.request_id, state = %standing.state, deemed_on = ?standing.deemed_on, "the letter's legal state moved");
            }
        }
        Ok(followed)
    }

    /// The letter's evidences not stored yet, fetched and judged; and whether something
    /// failed (the rest is fetched again next time).
    async fn fetch_new(&self, letter: &FollowedLetter) -> anyhow::Result<(Vec<NewEvidence>, bool)> {
        let listed = match self.client.evidences(&letter.message_id).await {
            Ok(listed) => listed,
            Err(e) => {
                tracing::warn!(letter = letter.id, message = %letter.message_id, error = %e, "the letter's evidences could not be listed; asked again later");
                return Ok((Vec::new(), true));
            }
        };
        let stored: std::collections::HashSet<String> = self
            .store
            .letter_evidences(letter.id)
            .await?
            .into_iter()
            .map(|e| e.evidence_id)
            .collect();
        let mut new = Vec::new();
        let mut failed = false;
        for e in listed {
            if stored.contains(&e.evidence_id) {
                continue;
            }
            let Some(listed) = listing(&e, letter) else {
                failed = true;
                continue;
            };
            let bytes = match self
                .client
                .evidence_file(super::channel::service_of(&letter.channel), &e.evidence_id)
                .await
            {
                Ok(bytes) => bytes,
                Err(err) => {
                    tracing::warn!(letter = letter.id, evidence = %e.evidence_id, error = %err, "an evidence could not be fetched; asked again later");
                    failed = true;
                    continue;
                }
            };
            let certificate = self.operator_certificate.clone();
            let (document, content) = (listed.clone(), bytes.clone());
            // The seal is judged when it is checked, on the wall clock (`now` moves the legal
            // days in tests; it does not make a certificate valid).
            let read = tokio::task::spawn_blocking(move || {
                read_evidence(&content, &document, certificate.as_deref(), Utc::now())
            })
            .await?;
            let (event_at, seal) = match read {
                Ok((document, seal)) => (document.event_time, seal),
                // Kept as received, for the record; it moves nothing.
                Err(why) => (listed.event_time, SealCheck::Invalid(why.to_string())),
            };
            if let SealCheck::Invalid(why) = &seal {
                tracing::warn!(letter = letter.id, evidence = %e.evidence_id, code = listed.code.as_str(), %why, "an evidence failed its check: kept, but it moves nothing");
            }
            new.push(NewEvidence {
                evidence_id: e.evidence_id,
                code: listed.code,
                event_at,
                content: bytes,
                seal,
            });
        }
        Ok((new, failed))
    }
}

/// What the listing says of an evidence, or `None` (logged) when it cannot be read.
fn listing(e: &wire::Evidence, letter: &FollowedLetter) -> Option<EvidenceDocument> {
    let code = match EvidenceCode::read(&e.kind) {
        Ok(code) => code,
        Err(err) => {
            tracing::warn!(letter = letter.id, evidence = %e.evidence_id, error = %err, "an evidence of a kind this version does not know: not stored");
            return None;
        }
    };
    let Some(event_time) = e.event_date.or(e.create_date) else {
        tracing::warn!(letter = letter.id, evidence = %e.evidence_id, "an evidence without an event date: not stored");
        return None;
    };
    if e.message_id != letter.message_id {
        tracing::warn!(letter = letter.id, evidence = %e.evidence_id, of = %e.message_id, "an evidence of another message in this message's listing: not stored");
        return None;
    }
    Some(EvidenceDocument {
        evidence_id: e.evidence_id.clone(),
        code,
        event_time,
        message_id: e.message_id.clone(),
    })
}

impl Worker for EvidenceFollower {
    fn name(&self) -> String {
        "e-Doręczenia evidence".into()
    }

    async fn step(&mut self) -> anyhow::Result<Pass> {
        let followed = self.follow_at(Utc::now()).await?;
        Ok(
            if followed.letters > 0 && followed.failed < followed.letters {
                Pass::Worked
            } else {
                Pass::Idle
            },
        )
    }
}
