//! The inbound document as the domain sees it: every field of ePUAP's `OdpowiedzPullPobierz`,
//! plus the two digests that make ingestion exactly-once (the `skrot` that confirms a
//! document, and the identity key that dedupes a re-pulled one); and a citizen's message
//! received through e-Doręczenia ([`ReceivedMessage`]), stored in the same table with its
//! channel's identifiers ([`InboundChannel`]).

use base64::Engine;
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// The namespace of UPP and UPD, ePUAP's receipts: documents of their own, stored and read by
/// the domain, whichever transport brought them.
pub const UPO_NS: &str = "http://crd.gov.pl/xml/schematy/UPO/2008/05/09/";

/// `danePodmiotu`: the party in whose name the sender acted.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SubjectData {
    pub identyfikator: String,
    /// `P` (legal person) or `F` (natural person).
    pub typ_osoby: String,
    pub imie_skrot: Option<String>,
    pub nazwisko_nazwa: Option<String>,
    pub nip: Option<String>,
    pub pesel: Option<String>,
    pub regon: Option<String>,
    pub zgoda: bool,
}

/// `daneNadawcy`: the ePUAP user (login) and/or system that sent the document.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SenderData {
    pub uzytkownik: Option<String>,
    pub system: Option<String>,
}

/// One document as `pobierzNastepny` delivers it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PulledDocument {
    pub dane_podmiotu: SubjectData,
    pub dane_nadawcy: SenderData,
    /// `dataNadania` exactly as ePUAP sent it (xsd:dateTime; the offset is not always given).
    pub data_nadania: String,
    pub nazwa_skrytki: String,
    pub adres_skrytki: String,
    pub adres_odpowiedzi: Option<String>,
    pub czy_testowe: bool,
    /// `daneDodatkowe`, decoded from base64 (usually XML, may be empty).
    #[serde(with = "base64_bytes")]
    pub dane_dodatkowe: Vec<u8>,
    pub nazwa_pliku: String,
    pub typ_pliku: Option<String>,
    /// `dokument/zawartosc`, decoded from base64.
    #[serde(with = "base64_bytes")]
    pub content: Vec<u8>,
}

/// The digest ePUAP expects in `potwierdzOdebranie/skrot`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SkrotAlgorithm {
    /// base64(SHA-1(content)): what ePUAP documents and most clients send.
    #[default]
    Sha1,
    /// base64(SHA-256(content)): what some public clients send.
    Sha256,
}

impl SkrotAlgorithm {
    pub fn skrot(self, content: &[u8]) -> String {
        let digest = match self {
            SkrotAlgorithm::Sha1 => Sha1::digest(content).to_vec(),
            SkrotAlgorithm::Sha256 => Sha256::digest(content).to_vec(),
        };
        base64::engine::general_purpose::STANDARD.encode(digest)
    }
}

impl std::str::FromStr for SkrotAlgorithm {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "sha1" => Ok(SkrotAlgorithm::Sha1),
            "sha256" => Ok(SkrotAlgorithm::Sha256),
            other => Err(format!(
                "unknown skrot algorithm {other:?}: expected sha1 or sha256"
            )),
        }
    }
}

impl PulledDocument {
    /// Lowercase hex SHA-256 of the content bytes.
    pub fn content_sha256(&self) -> String {
        hex::encode(Sha256::digest(&self.content))
    }

    /// The dedupe key: SHA-256 over (box address, dataNadania, sender identifier, content
    /// digest). The pull response carries no document id, so a document pulled twice (after
    /// a crash between storing and confirming it) is recognised by this key.
    pub fn identity_key(&self) -> String {
        let sender = format!(
            "{}|{}|{}",
            self.dane_podmiotu.identyfikator,
            self.dane_nadawcy.uzytkownik.as_deref().unwrap_or(""),
            self.dane_nadawcy.system.as_deref().unwrap_or("")
        );
        let mut hasher = Sha256::new();
        for field in [
            self.adres_skrytki.as_str(),
            self.data_nadania.as_str(),
            sender.as_str(),
            self.content_sha256().as_str(),
        ] {
            // Length-prefix every field so that no two different tuples hash alike.
            hasher.update((field.len() as u64).to_be_bytes());
            hasher.update(field.as_bytes());
        }
        hex::encode(hasher.finalize())
    }
}

/// The channel an inbound document came through (`inbound_document.channel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InboundChannel {
    /// An ePUAP box: the row's ePUAP fields are `pobierzNastepny`'s.
    Epuap,
    /// The office's e-Doręczenia address: the row names the message id and the sender's ADE.
    Edoreczenia,
}

impl InboundChannel {
    pub fn as_str(self) -> &'static str {
        match self {
            InboundChannel::Epuap => "epuap",
            InboundChannel::Edoreczenia => "edoreczenia",
        }
    }
}

/// A file of a received e-Doręczenia message, as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedFile {
    pub name: String,
    pub content_type: String,
    pub content: Vec<u8>,
}

/// A citizen's message to the office's e-Doręczenia address, as the domain sees it: who sent
/// it from which address, to which of the office's addresses, when, and its files. The first
/// XML file is the document the `verify` step reads (a signed form); the others are kept
/// beside it. A message without files is its text body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    /// The office's address it was sent to.
    pub office_address: String,
    /// The operator's message id: the identity of the message.
    pub message_id: String,
    pub sender_address: String,
    pub subject: String,
    pub text_body: String,
    /// When the office received it in law (E.1 for the office: its system's first full read).
    pub received_at: chrono::DateTime<chrono::Utc>,
    pub files: Vec<ReceivedFile>,
}

impl ReceivedMessage {
    /// The dedupe key: SHA-256 over (channel, office address, message id). The operator's
    /// message id is unique per mailbox, so a message fetched again after a crash (stored,
    /// not yet deleted) is recognised whatever its content.
    pub fn identity_key(&self) -> String {
        let mut hasher = Sha256::new();
        for field in [
            InboundChannel::Edoreczenia.as_str(),
            self.office_address.as_str(),
            self.message_id.as_str(),
        ] {
            hasher.update((field.len() as u64).to_be_bytes());
            hasher.update(field.as_bytes());
        }
        hex::encode(hasher.finalize())
    }

    /// The index of the document in `files`: the first XML file, else the first file; `None`
    /// when the message has no files (its text body is then the document).
    pub fn main_file(&self) -> Option<usize> {
        let xml = |f: &ReceivedFile| {
            f.content_type.contains("xml") || f.name.to_ascii_lowercase().ends_with(".xml")
        };
        self.files
            .iter()
            .position(xml)
            .or((!self.files.is_empty()).then_some(0))
    }

    /// The document `verify` reads: (file name, content type, content).
    pub fn document(&self) -> (String, String, Vec<u8>) {
        match self.main_file() {
            Some(i) => {
                let f = &self.files[i];
                (f.name.clone(), f.content_type.clone(), f.content.clone())
            }
            None => (
                "tresc.txt".into(),
                "text/plain".into(),
                self.text_body.as_bytes().to_vec(),
            ),
        }
    }
}

/// Serde for byte fields as base64 strings (the emulator's state files, the admin API).
pub mod base64_bytes {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        base64::engine::general_purpose::STANDARD
            .decode(text.as_bytes())
            .map_err(serde::de::Error::custom)
    }
}

/// When the office received a document in law: ePUAP's `dataNadania` (the moment the sender
/// put it into the office's box), which deadlines run from, and not the moment eurzad stored
/// it (`stored_at`), which a day's outage would move. `dataNadania` is an xsd:dateTime whose
/// offset ePUAP does not always give: without one it is Polish local time. Where it cannot be
/// read, or lies after the storage (a clock ahead of ours), the storage time is the receipt.
pub fn received_in_law(
    data_nadania: &str,
    stored_at: chrono::DateTime<chrono::Utc>,
) -> chrono::DateTime<chrono::Utc> {
    use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
    let text = data_nadania.trim();
    let parsed = DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            let naive = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f").ok()?;
            chrono_tz::Europe::Warsaw
                .from_local_datetime(&naive)
                .earliest()
                .map(|t| t.with_timezone(&Utc))
        });
    match parsed {
        Some(at) if at <= stored_at => at,
        _ => stored_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> PulledDocument {
        PulledDocument {
            dane_podmiotu: SubjectData {
                identyfikator: "demo".into(),
                typ_osoby: "F".into(),
                ..Default::default()
            },
            dane_nadawcy: SenderData {
                uzytkownik: Some("demo".into()),
                system: None,
            },
            data_nadania: "2026-11-26T10:00:00.000+01:00".into(),
            nazwa_skrytki: "skrytka".into(),
            adres_skrytki: "/urzad_testowy/skrytka".into(),
            adres_odpowiedzi: None,
            czy_testowe: false,
            dane_dodatkowe: vec![],
            nazwa_pliku: "pismo.xml".into(),
            typ_pliku: Some("text/xml".into()),
            content: b"<a/>".to_vec(),
        }
    }

    #[test]
    fn skrot_matches_known_digests() {
        // SHA-1("abc") and SHA-256("abc"), base64.
        assert_eq!(
            SkrotAlgorithm::Sha1.skrot(b"abc"),
            "qZk+NkcGgWq6PiVxeFDCbJzQ2J0="
        );
        assert_eq!(
            SkrotAlgorithm::Sha256.skrot(b"abc"),
            "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="
        );
    }

    #[test]
    fn identity_key_depends_on_each_field() {
        let base = sample();
        let key = base.identity_key();
        assert_eq!(key, sample().identity_key());
        let mut other = sample();
        other.content = b"<b/>".to_vec();
        assert_ne!(key, other.identity_key());
        let mut other = sample();
        other.data_nadania.push('1');
        assert_ne!(key, other.identity_key());
        let mut other = sample();
        other.adres_skrytki = "/urzad_testowy/inna".into();
        assert_ne!(key, other.identity_key());
        let mut other = sample();
        other.dane_podmiotu.identyfikator = "someone".into();
        assert_ne!(key, other.identity_key());
        // The file name is not part of the identity: the same bytes at the same moment from
        // the same sender are one document.
        let mut same = sample();
        same.nazwa_pliku = "x.xml".into();
        assert_eq!(key, same.identity_key());
    }

    #[test]
    fn the_legal_receipt_is_data_nadania() {
        use chrono::{TimeZone, Utc};
        let stored = Utc.with_ymd_and_hms(2026, 11, 27, 8, 0, 0).unwrap();
        assert_eq!(
            received_in_law("2026-11-24T10:00:00.000+01:00", stored),
            Utc.with_ymd_and_hms(2026, 11, 24, 9, 0, 0).unwrap()
        );
        // No offset: Polish time (CET in November, CEST in June).
        assert_eq!(
            received_in_law("2026-11-24T10:00:00", stored),
            Utc.with_ymd_and_hms(2026, 11, 24, 9, 0, 0).unwrap()
        );
        assert_eq!(
            received_in_law("2026-06-24T10:00:00.5", stored + chrono::Days::new(365)),
            Utc.with_ymd_and_hms(2026, 6, 24, 8, 0, 0).unwrap()
                + chrono::TimeDelta::milliseconds(500)
        );
        // Unreadable, or after the storage: the storage time.
        assert_eq!(received_in_law("wczoraj", stored), stored);
        assert_eq!(received_in_law("2026-11-28T10:00:00Z", stored), stored);
    }
}
