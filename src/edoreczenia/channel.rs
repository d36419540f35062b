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
    Lookup, LookupFuture, OfficialId, OutgoingLetter, PostalAddress,
};

/// The names stored with each letter sent this way: electronically, or on paper through
/// the public hybrid service.
pub const CHANNEL: &str = "edoreczenia";
pub const HYBRID_CHANNEL: &str = "hybrid";

pub struct EdoreczeniaChannel {
    pub client: UaClient,
    /// Electronic (to an ADE) or hybrid (printed and posted to a postal address).
    pub service: wire::ShippingService,
}

impl EdoreczeniaChannel {
    pub fn electronic(client: UaClient) -> Self {
        EdoreczeniaChannel {
            client,
            service: wire::ShippingService::Electronic,
        }
    }

    pub fn hybrid(client: UaClient) -> Self {
        EdoreczeniaChannel {
            client,
            service: wire::ShippingService::Hybrid,
        }
    }
}

/// The service a letter stored under `channel` went by.
pub fn service_of(channel: &str) -> wire::ShippingService {
    if channel == HYBRID_CHANNEL {
        wire::ShippingService::Hybrid
    } else {
        wire::ShippingService::Electronic
    }
}

/// How eurzad's letters go on paper: registered, administrative procedure (KPA), with a
/// proof of delivery, returned to the office when they cannot be delivered.
fn hybrid_shipment() -> wire::HybridShipment {
    wire::HybridShipment {
        proceding_type: "administrative".into(),
        category_service: "priority".into(),
        printing_mode: "duplex".into(),
        overprint_mode: "monochrome".into(),
        return_service: "returntosender".into(),
        shipping_mode: "registered".into(),
        proof_of_delivery: Some(true),
        senders_information: None,
    }
}

/// The addressee as the API names it: an ADE, or (hybrid) a postal address.
fn addressee(
    service: wire::ShippingService,
    recipient: &str,
) -> Result<wire::MessageAddressData, DeliveryError> {
    match service {
        wire::ShippingService::Electronic => {
            let to: Ade = recipient
                .parse()
                .map_err(|e: super::AdeError| DeliveryError::Refused(e.to_string()))?;
            Ok(wire::MessageAddressData {
                e_delivery_address: Some(to.to_string()),
                address: None,
            })
        }
        wire::ShippingService::Hybrid => {
            let postal =
                PostalAddress::from_recipient(recipient).map_err(DeliveryError::Refused)?;
            let number = match &postal.flat {
                Some(flat) => format!("{}/{flat}", postal.building),
                None => postal.building.clone(),
            };
            Ok(wire::MessageAddressData {
                e_delivery_address: None,
                address: Some(wire::Address {
                    country: "PL".into(),
                    street: postal.street,
                    postal_code: postal.postal_code,
                    city: postal.city,
                    building_number: Some(number),
                    house_number: None,
                }),
            })
        }
    }
}

/// The message for `letter` by `service`: what is sent, built the same way for a lookup.
pub fn message(
    from: &Ade,
    service: wire::ShippingService,
    letter: &OutgoingLetter,
) -> Result<wire::Message, DeliveryError> {
    let to = addressee(service, &letter.recipient)?;
    let size = letter.content.len() as u64;
    if size > wire::DRAFT_LIMIT {
        return Err(DeliveryError::Refused(format!(
            "the attachment {} has {size} bytes, over the {} bytes eurzad sends even through \
             drafts",
            letter.file_name,
            wire::DRAFT_LIMIT
        )));
    }
    // Lower-case extensions: the file-type rule may refuse `.XML`.
    let file_name = letter.file_name.to_lowercase();
    let is_pdf = file_name.ends_with(".pdf");
    if service == wire::ShippingService::Hybrid && !is_pdf {
        return Err(DeliveryError::Refused(format!(
            "the hybrid service prints PDF only, and {} is not one",
            letter.file_name
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
    let content_type = if is_pdf {
        "application/pdf"
    } else {
        "application/xml"
    };
    Ok(wire::Message {
        message_metadata: wire::MessageMetadata {
            from: Some(wire::MessageAddressData {
                e_delivery_address: Some(from.to_string()),
                address: None,
            }),
            to: vec![to],
            hybrid_shipment: (service == wire::ShippingService::Hybrid).then(hybrid_shipment),
            subject: Some(letter.subject.clone()),
            case_id: Some(letter.reference.clone()),
            shipping_service: service,
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

/// Whether `to` is the letter's addressee.
fn is_addressee(to: &wire::MessageAddressData, expected: &wire::MessageAddressData) -> bool {
    match (&expected.e_delivery_address, &expected.address) {
        (Some(ade), _) => to.e_delivery_address.as_deref() == Some(ade.as_str()),
        (None, Some(address)) => to.address.as_ref() == Some(address),
        (None, None) => false,
    }
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
        match self.service {
            wire::ShippingService::Electronic => CHANNEL,
            wire::ShippingService::Hybrid => HYBRID_CHANNEL,
        }
    }

    fn deliver<'a>(&'a self, letter: &'a OutgoingLetter) -> DeliveryFuture<'a> {
        Box::pin(async move {
            let message = message(self.client.ade(), self.service, letter)?;
            let expected = message.message_metadata.to[0].clone();
            // Over 15 MB, through a draft; the task is awaited the same way.
            let task = if letter.content.len() as u64 > wire::DIRECT_SEND_LIMIT {
                self.client.send_by_draft(&message).await
            } else {
                self.client.send(&message).await
            }
            .map_err(delivery_error)?;
            // Taken: from here on, any failure leaves only the message id unknown.
            let results = self.client.await_task(&task).await.map_err(|e| {
                DeliveryError::Uncertain(format!("task {task} of a message that was taken: {e}"))
            })?;
            let result = results
                .into_iter()
                .find(|r| {
                    (r.addressee_ade.is_some() && r.addressee_ade == expected.e_delivery_address)
                        || r.addressee
                            .as_ref()
                            .is_some_and(|a| is_addressee(a, &expected))
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
            let expected = addressee(self.service, &letter.recipient)?;
            let sent = self
                .client
                .sent_with_subject(&letter.subject)
                .await
                .map_err(|e| DeliveryError::NotSent(e.to_string()))?;
            let found = sent.into_iter().find(|m| {
                m.message_metadata
                    .to
                    .iter()
                    .any(|a| is_addressee(a, &expected))
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
