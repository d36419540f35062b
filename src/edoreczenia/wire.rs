//! The UA API's JSON, as the OpenAPI (`uaapi_3.0.8.1.yaml`, components/schemas) names it:
//! the types the client sends and reads and the emulator reads and answers, so the two cannot
//! disagree on the contract. Only what eurzad uses is here; unknown fields are ignored.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha3::Digest as _;

/// `Message`: what is sent (`POST /{ADE}/messages`) and what a listing or a fetch answers.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_control_data: Option<MessageControlData>,
    #[serde(default)]
    pub message_metadata: MessageMetadata,
    /// At most 5,000 characters (counted as UTF-16 units, as a Java server counts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_body: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidences: Vec<Evidence>,
}

/// `MessageControlData`: set by the operator.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageControlData {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_task_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opened: Option<bool>,
    /// "W trakcie weryfikacji", "Nadana", …, "Uznana za doręczoną", "Niedoręczona".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Message, Evidence, Stub, massMessageGrouped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_type: Option<String>,
}

/// `shippingService`: electronic (RDE) or hybrid (PUH, on paper).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ShippingService {
    #[default]
    Electronic,
    Hybrid,
}

/// `MessageMetadata`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<MessageAddressData>,
    #[serde(default)]
    pub to: Vec<MessageAddressData>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hybrid_shipment: Option<HybridShipment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ref_to_message_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submission_date: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt_date: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(default)]
    pub shipping_service: ShippingService,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub additional_data: BTreeMap<String, String>,
}

/// `MessageAddressData`: an ADE, or a postal address for the hybrid service.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct MessageAddressData {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e_delivery_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Address>,
}

/// `Address`: a postal address, where the hybrid service prints and posts the letter.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Address {
    pub country: String,
    pub street: String,
    pub postal_code: String,
    pub city: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub building_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub house_number: Option<String>,
}

/// `HybridShipment`: how the hybrid service prints and posts a letter (the required fields
/// and the two eurzad sets).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct HybridShipment {
    /// general, administrative, tax, court_civil, court_criminal.
    pub proceding_type: String,
    /// economic or priority.
    pub category_service: String,
    /// duplex or simplex.
    pub printing_mode: String,
    /// monochrome or color.
    pub overprint_mode: String,
    /// returntosender or destroy.
    pub return_service: String,
    /// registered or notRegistered.
    pub shipping_mode: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof_of_delivery: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub senders_information: Option<String>,
}

/// `Attachment`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attachment {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attachment_id: Option<String>,
    pub file: FileData,
}

/// `FileData`: the metadata and the content in base64.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileData {
    pub file_metadata: FileMetadata,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

/// `FileMetadata`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct FileMetadata {
    pub file_id: String,
    #[serde(default)]
    pub filename: String,
    #[serde(default)]
    pub content_type: String,
    #[serde(default)]
    pub size: u64,
    /// "SHA-3", the only value the API allows.
    #[serde(default)]
    pub alg: String,
    /// [`attachment_hash`].
    #[serde(default)]
    pub hash: String,
}

/// The hash algorithm's name in `FileMetadata.alg`.
pub const HASH_ALG: &str = "SHA-3";

/// `FileMetadata.hash`: "SHA-3" fixes neither length nor encoding; the operator's own
/// example is base64 of the SHA3-512 digest written as 128 lower-case hex digits, and that
/// is what eurzad sends and the emulator checks.
pub fn attachment_hash(content: &[u8]) -> String {
    let hex = hex::encode(sha3::Sha3_512::digest(content));
    base64::engine::general_purpose::STANDARD.encode(hex)
}

/// `MessageInfo`: the 202 answer to a send.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageInfo {
    pub message_task_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

/// `MessageTaskStatus.messageTaskStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum TaskStatus {
    Pending,
    Finished,
}

/// `MessageTaskStatus`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageTaskStatus {
    pub message_task_status: TaskStatus,
}

/// `MessageOperationResponseWrapperStatus`: one addressee's outcome of a finished task. The
/// spec requires `addresseeAde` and `status` but lists neither among the properties; both are
/// read when present, and the message id is what matters.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskResult {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addressee_ade: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addressee: Option<MessageAddressData>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
}

/// `MessagesWrapper`: a listing.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessagesWrapper {
    pub messages: Vec<Message>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
}

/// `EvidenceWrapper`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EvidenceWrapper {
    pub evidences: Vec<Evidence>,
}

/// `Evidence`: one evidence's record; its XML is fetched from
/// `/{ADE}/evidences/purde/{evidenceId}` (or `puh` for the hybrid service).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Evidence {
    pub evidence_id: String,
    pub message_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_date: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_date: Option<chrono::DateTime<chrono::Utc>>,
    /// The code: A.1, D.1, E.1, … or an undotted legacy one (`super::evidence::EvidenceCode`).
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub downloaded: Option<bool>,
}

/// `ErrorInfo`: what a 400 says.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorInfo {
    pub error: String,
    #[serde(default, rename = "error_description")]
    pub error_description: String,
}

/// The text body's length as a Java server counts it: UTF-16 code units.
pub fn text_body_units(text: &str) -> usize {
    text.encode_utf16().count()
}

/// The text body's limit, in UTF-16 units.
pub const TEXT_BODY_LIMIT: usize = 5000;

/// Above this size a message goes through the drafts path.
pub const DIRECT_SEND_LIMIT: u64 = 15 * 1024 * 1024;

/// The largest letter eurzad sends at all, through a draft. The operator's own bound on an
/// attachment is not in the API; a letter of the office is a few kB, and a sealed letter
/// beyond this would be a mistake to stop, not to send.
pub const DRAFT_LIMIT: u64 = 50 * 1024 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_attachment_hash_is_base64_of_the_sha3_512_hex_text() {
        // SHA3-512("abc"), FIPS 202 example.
        let hex = "b751850b1a57168a5693cd924b6b096e08f621827444f70d884f5d0240d2712e10e116e9192af3c91a7ec57647e3934057340b4cf408d5a56592f8274eec53f0";
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(attachment_hash(b"abc"))
            .unwrap();
        assert_eq!(String::from_utf8(decoded).unwrap(), hex);
    }

    #[test]
    fn a_message_reads_as_the_openapi_writes_it() {
        let json = r#"{"messageMetadata":{"to":[{"eDeliveryAddress":"AE:PL-12345-67890-ABCDE-12"}],
            "subject":"S","shippingService":"hybrid"},"textBody":"t",
            "attachments":[{"file":{"fileMetadata":{"fileId":"1","filename":"a.pdf","contentType":"application/pdf",
            "size":3,"alg":"SHA-3","hash":"h"},"file":"YWJj"}}]}"#;
        let m: Message = serde_json::from_str(json).unwrap();
        assert_eq!(m.message_metadata.shipping_service, ShippingService::Hybrid);
        assert_eq!(
            m.message_metadata.to[0].e_delivery_address.as_deref(),
            Some("AE:PL-12345-67890-ABCDE-12")
        );
        assert_eq!(m.attachments[0].file.file_metadata.size, 3);
        let e: Evidence = serde_json::from_str(
            r#"{"evidenceId":"e","messageId":"m","type":"D.1","eventDate":"2026-01-05T10:00:00Z"}"#,
        )
        .unwrap();
        assert_eq!(e.kind, "D.1");
        assert_eq!(text_body_units("zażółć 😀"), 9);
    }
}
