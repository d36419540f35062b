//! ePUAP's skrytka as a [`DeliveryChannel`]: `nadaj` to the recipient's box, the UPP in the
//! answer. `nadaj` is never retried by the client; the caller's job queue decides.

use crate::delivery::{
    DeliveryChannel, DeliveryError, DeliveryFuture, DeliveryReceipt, OutgoingLetter,
};
use crate::epuap::soap::NadajRequest;
use crate::epuap::{EpuapClient, EpuapError};

/// Sends through the office's box: `podmiot` is the office's ePUAP subject, `reply_to` the
/// office box that answers go to.
pub struct SkrytkaChannel {
    pub client: EpuapClient,
    pub podmiot: String,
    pub reply_to: String,
}

impl DeliveryChannel for SkrytkaChannel {
    fn name(&self) -> &'static str {
        "epuap_skrytka"
    }

    fn deliver<'a>(&'a self, letter: &'a OutgoingLetter) -> DeliveryFuture<'a> {
        Box::pin(async move {
            let request = letter_request(&self.podmiot, &self.reply_to, letter);
            let response = self.client.send(&request).await.map_err(classify)?;
            Ok(DeliveryReceipt {
                document_identifier: response.identyfikator_dokumentu,
                submission_proof_id: response.identyfikator_upp,
                submission_proof: response.upp.map(|(_, bytes)| bytes),
                awaits_delivery_proof: false,
                follows_evidence: false,
            })
        })
    }
}

/// The `nadaj` part of a letter from the office's box: the reference goes in DaneDodatkowe
/// so that the recipient can tell a resent letter.
fn letter_request(podmiot: &str, reply_to: &str, letter: &OutgoingLetter) -> NadajRequest {
    NadajRequest {
        podmiot: podmiot.to_string(),
        adres_skrytki: letter.recipient.clone(),
        adres_odpowiedzi: reply_to.to_string(),
        czy_probne: false,
        dane_dodatkowe: format!("<znak>{}</znak>", letter.reference).into_bytes(),
        nazwa_pliku: letter.file_name.clone(),
        typ_pliku: Some("text/xml".into()),
        content: letter.content.clone(),
    }
}

/// A fault or a status from ePUAP means it did not take the letter; anything else (no
/// answer, a 5xx, an answer we cannot trust) leaves the outcome unknown.
fn classify(error: EpuapError) -> DeliveryError {
    match error {
        EpuapError::Fault { .. } | EpuapError::Status { .. } | EpuapError::Signing { .. } => {
            DeliveryError::Refused(error.to_string())
        }
        other => DeliveryError::Uncertain(other.to_string()),
    }
}

/// ePUAP's doręczyciel as a [`DeliveryChannel`]: `dorecz` with a UPD form; the UPD signed on
/// opening arrives later in the office's box and is matched to the letter by its
/// identifiers (the `receipt` step).
pub struct DoreczycielChannel {
    pub client: EpuapClient,
    pub podmiot: String,
    pub reply_to: String,
}

impl DeliveryChannel for DoreczycielChannel {
    fn name(&self) -> &'static str {
        "epuap_doreczyciel"
    }

    fn deliver<'a>(&'a self, letter: &'a OutgoingLetter) -> DeliveryFuture<'a> {
        Box::pin(async move {
            let termin = letter
                .deliver_by
                .unwrap_or_else(|| chrono::Utc::now() + chrono::TimeDelta::days(14))
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            let upd_form = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><upd:UPD xmlns:upd=\"{}\"><upd:IdentyfikatorDokumentu>{}</upd:IdentyfikatorDokumentu></upd:UPD>",
                crate::epuap::soap::UPO_NS,
                letter.reference
            );
            let request = crate::epuap::soap::DoreczRequest {
                nadaj: letter_request(&self.podmiot, &self.reply_to, letter),
                termin_doreczenia: termin,
                identyfikator_dokumentu: letter.reference.clone(),
                identyfikator_sprawy: letter.reference.clone(),
                upd: upd_form.into_bytes(),
            };
            let response = self.client.dorecz(&request).await.map_err(classify)?;
            Ok(DeliveryReceipt {
                document_identifier: response.identyfikator_dokumentu,
                submission_proof_id: Some(response.identyfikator_zlecenia),
                submission_proof: None,
                awaits_delivery_proof: true,
                follows_evidence: false,
            })
        })
    }
}
