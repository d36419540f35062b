//! e-Doręczenia as a [`DeliveryChannel`]: the sealed letter goes as the attachment of a
//! message to the recipient's ADE, with a short text body; the send is taken as a task, and
//! the task's result names the message. Its evidences are fetched later (the `evidence`
//! worker), and a send whose outcome was lost is looked for among the sent messages by its
//! subject, which carries the office's reference.

use base64::Engine as _;

use super::client::{ApiError, UaClient};
use super::{Ade, wire};
use crate::delivery::{
    AddressBook, AddressFuture, DeliveryChannel, DeliveryError, DeliveryFuture, DeliveryReceipt,
    Lookup, LookupFuture, OfficialId, OutgoingLetter,
};

/// The name stored with each letter sent this way.
pub const CHANNEL: &str = "edoreczenia";

pub struct EdoreczeniaChannel {
    pub client: UaClient,
}

/// The message for `letter`: what is sent, built the same way for a lookup.
pub fn message(from: &Ade, letter: &OutgoingLetter) -> Result<wire::Message, DeliveryError> {
    let to: Ade = letter
        .recipient
        .parse()
        .map_err(|e: super::AdeError| DeliveryError::Refused(e.to_string()))?;
    let size = letter.content.len() as u64;
    if size > wire::DIRECT_SEND_LIMIT {
        return Err(DeliveryError::Refused(format!(
            "the attachment {} has {size} bytes, over the {} bytes a message may carry; \
             the drafts path for larger letters is not built",
            letter.file_name,
            wire::DIRECT_SEND_LIMIT
        )));
    }
    let text = format!(
        "Dzień dobry,\n\nw załączniku przesyłamy pismo „{}” (znak {}). \
         Pismo jest opatrzone pieczęcią elektroniczną urzędu.\n",
        letter.subject, letter.reference
    );
    if wire::text_body_units(&text) > wire::TEXT_BODY_LIMIT {
        return Err(DeliveryError::Refused(format!(
            "the text body has {} characters, over {}",
            wire::text_body_units(&text),
            wire::TEXT_BODY_LIMIT
        )));
    }
    // Lower-case extensions: the file-type rule may refuse `.XML`.
    let file_name = letter.file_name.to_lowercase();
    let content_type = if file_name.ends_with(".pdf") {
        "application/pdf"
    } else {
        "application/xml"
    };
    Ok(wire::Message {
        message_metadata: wire::MessageMetadata {
            from: Some(wire::MessageAddressData {
                e_delivery_address: Some(from.to_string()),
            }),
            to: vec![wire::MessageAddressData {
                e_delivery_address: Some(to.to_string()),
            }],
            subject: Some(letter.subject.clone()),
            case_id: Some(letter.reference.clone()),
            shipping_service: wire::ShippingService::Electronic,
            ..wire::MessageMetadata::default()
        },
        text_body: Some(text),
        attachments: vec![wire::Attachment {
            order: Some(1),
            attachment_id: None,
            file: wire::FileData {
                file_metadata: wire::FileMetadata {
                    file_id: format!("{}-1", letter.reference),
                    filename: file_name,
                    content_type: content_type.into(),
                    size,
                    alg: wire::HASH_ALG.into(),
                    hash: wire::attachment_hash(&letter.content),
                },
                file: Some(base64::engine::general_purpose::STANDARD.encode(&letter.content)),
            },
        }],
        ..wire::Message::default()
    })
}

fn receipt(message_id: String) -> DeliveryReceipt {
    DeliveryReceipt {
        document_identifier: message_id,
        submission_proof_id: None,
        submission_proof: None,
        awaits_delivery_proof: false,
        follows_evidence: true,
    }
}

/// What a failed call means for a send.
fn delivery_error(error: ApiError) -> DeliveryError {
    match error {
        ApiError::NotAccepted { status: 400, .. } => DeliveryError::Refused(error.to_string()),
        ApiError::Auth(_) | ApiError::NotAccepted { .. } | ApiError::Unreachable { .. } => {
            DeliveryError::NotSent(error.to_string())
        }
        ApiError::Uncertain { .. } | ApiError::Malformed { .. } => {
            DeliveryError::Uncertain(error.to_string())
        }
    }
}

impl DeliveryChannel for EdoreczeniaChannel {
    fn name(&self) -> &'static str {
        CHANNEL
    }

    fn deliver<'a>(&'a self, letter: &'a OutgoingLetter) -> DeliveryFuture<'a> {
        Box::pin(async move {
            let message = message(self.client.ade(), letter)?;
            let task = self.client.send(&message).await.map_err(delivery_error)?;
            // Taken: from here on, any failure leaves only the message id unknown.
            let results = self.client.await_task(&task).await.map_err(|e| {
                DeliveryError::Uncertain(format!("task {task} of a message that was taken: {e}"))
            })?;
            let result = results
                .into_iter()
                .find(|r| {
                    r.addressee_ade.as_deref() == Some(letter.recipient.as_str())
                        || r.addressee
                            .as_ref()
                            .and_then(|a| a.e_delivery_address.as_deref())
                            == Some(letter.recipient.as_str())
                })
                .ok_or_else(|| {
                    DeliveryError::Uncertain(format!(
                        "task {task} finished without a result for {}",
                        letter.recipient
                    ))
                })?;
            match (result.message_id, result.error) {
                (Some(id), None) => Ok(receipt(id)),
                (_, Some(error)) => Err(DeliveryError::Refused(format!(
                    "task {task}: {error}: {}",
                    result.error_description.unwrap_or_default()
                ))),
                (None, None) => Err(DeliveryError::Uncertain(format!(
                    "task {task} finished without a message id"
                ))),
            }
        })
    }

    fn find_sent<'a>(&'a self, letter: &'a OutgoingLetter) -> LookupFuture<'a> {
        Box::pin(async move {
            let sent = self
                .client
                .sent_with_subject(&letter.subject)
                .await
                .map_err(|e| DeliveryError::NotSent(e.to_string()))?;
            let found = sent.into_iter().find(|m| {
                m.message_metadata
                    .to
                    .iter()
                    .any(|a| a.e_delivery_address.as_deref() == Some(letter.recipient.as_str()))
            });
            Ok(match found.and_then(|m| m.message_metadata.message_id) {
                Some(id) => Lookup::Found(receipt(id)),
                None => Lookup::NotFound,
            })
        })
    }
}

/// The BAE search, through the same client (and token).
impl AddressBook for EdoreczeniaChannel {
    fn find<'a>(&'a self, id: &'a OfficialId) -> AddressFuture<'a> {
        Box::pin(async move {
            let ids = match id {
                OfficialId::Pesel(v) => serde_json::json!({ "pesel": v }),
                OfficialId::Nip(v) => serde_json::json!({ "nip": v }),
                OfficialId::Regon(v) => serde_json::json!({ "regon": v }),
                OfficialId::Krs(v) => serde_json::json!({ "krs": v }),
            };
            let found = self
                .client
                .search_addresses(&ids)
                .await
                .map_err(|e| DeliveryError::NotSent(e.to_string()))?;
            // An address that does not match its pattern is not one to send to.
            Ok(found.into_iter().find(|a| a.parse::<Ade>().is_ok()))
        })
    }
}
