//! e-Doręczenia's evidences and what the law makes of a letter from them (NOTES.md,
//! "Evidence"): the codes ([`EvidenceCode`], dotted and the undotted legacy spellings), and
//! the letter's legal state ([`LegalState`]) derived from the evidences received so far and
//! the time: delivered with E.1, or **deemed delivered** when D.1 went unanswered for 14 days
//! (configurable), kept distinct from delivered.

use chrono::{DateTime, Days, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

/// An evidence's code (`Evidence.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EvidenceCode {
    /// A.1: the operator accepted the message for sending (dowód nadania).
    A1,
    /// A.2: the operator rejected it.
    A2,
    /// B.1, B.2, B.3: relay between providers (accepted, rejected, failed).
    B1,
    B2,
    B3,
    /// C.2: a relay notice of the older spelling.
    C2,
    /// D.1: the message is in the recipient's box, ready to be picked up; the 14 days run
    /// from it. D.2, D.3: further notices.
    D1,
    D2,
    D3,
    /// E.1: the recipient took it (dowód otrzymania): delivered.
    E1,
    /// E.2: it could not be handed over.
    E2,
    /// BP.WX, BP.WP: business proof of sending; BP.OX, BP.OP: of receipt.
    BpWx,
    BpWp,
    BpOx,
    BpOp,
    /// H.DW: the hybrid service took the letter; H.PN: posted on paper; H.EPO: the paper
    /// letter's electronic acknowledgement of receipt.
    HDw,
    HPn,
    HEpo,
}

/// An evidence code this version does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown evidence code {0:?} (known: A.1, A.2, B.1–B.3, D.1–D.3, E.1, E.2, BP.WX, BP.WP, BP.OX, BP.OP, H.DW, H.PN, H.EPO and their undotted spellings)"
)]
pub struct UnknownCode(pub String);

impl EvidenceCode {
    pub const ALL: [EvidenceCode; 18] = [
        EvidenceCode::A1,
        EvidenceCode::A2,
        EvidenceCode::B1,
        EvidenceCode::B2,
        EvidenceCode::B3,
        EvidenceCode::C2,
        EvidenceCode::D1,
        EvidenceCode::D2,
        EvidenceCode::D3,
        EvidenceCode::E1,
        EvidenceCode::E2,
        EvidenceCode::BpWx,
        EvidenceCode::BpWp,
        EvidenceCode::BpOx,
        EvidenceCode::BpOp,
        EvidenceCode::HDw,
        EvidenceCode::HPn,
        EvidenceCode::HEpo,
    ];

    /// The dotted name, as stored.
    pub const fn as_str(self) -> &'static str {
        use EvidenceCode::*;
        match self {
            A1 => "A.1",
            A2 => "A.2",
            B1 => "B.1",
            B2 => "B.2",
            B3 => "B.3",
            C2 => "C.2",
            D1 => "D.1",
            D2 => "D.2",
            D3 => "D.3",
            E1 => "E.1",
            E2 => "E.2",
            BpWx => "BP.WX",
            BpWp => "BP.WP",
            BpOx => "BP.OX",
            BpOp => "BP.OP",
            HDw => "H.DW",
            HPn => "H.PN",
            HEpo => "H.EPO",
        }
    }

    /// Reads a code as the API writes it: dotted (`D.1`) or in the undotted legacy spelling
    /// (`D1`, `BPOX`, `HEPO`; a bare `D` is D.1).
    pub fn read(code: &str) -> Result<EvidenceCode, UnknownCode> {
        let squeezed: String = code
            .trim()
            .chars()
            .filter(|c| *c != '.')
            .collect::<String>()
            .to_ascii_uppercase();
        let squeezed = if squeezed == "D" {
            "D1".into()
        } else {
            squeezed
        };
        EvidenceCode::ALL
            .into_iter()
            .find(|c| c.as_str().replace('.', "") == squeezed)
            .ok_or_else(|| UnknownCode(code.to_string()))
    }

    /// What this evidence says of the letter.
    pub const fn meaning(self) -> Meaning {
        use EvidenceCode::*;
        match self {
            A1 | BpWx | BpWp | HDw | HPn => Meaning::Accepted,
            A2 | B2 => Meaning::Rejected,
            D1 => Meaning::AwaitingPickup,
            E1 | BpOx | BpOp | HEpo => Meaning::Delivered,
            E2 | B3 => Meaning::Undeliverable,
            B1 | C2 | D2 | D3 => Meaning::Relay,
        }
    }
}

/// What an evidence says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Meaning {
    Accepted,
    Rejected,
    AwaitingPickup,
    Delivered,
    Undeliverable,
    /// A step between providers: the letter's state does not change.
    Relay,
}

/// A letter's standing in law, from its evidences.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LegalState {
    /// Sent; no evidence yet.
    Sent,
    /// The operator accepted it (A.1, or the hybrid service's H.DW / H.PN).
    Accepted,
    /// The operator refused it (A.2, B.2).
    Rejected,
    /// In the recipient's box since D.1: the 14 days run.
    AwaitingPickup,
    /// The recipient took it (E.1, or H.EPO on paper).
    Delivered,
    /// Nobody picked it up within the days after D.1: delivered in law, not in fact.
    DeemedDelivered,
    /// It could not be delivered (E.2, B.3).
    Undeliverable,
}

impl LegalState {
    pub const ALL: [LegalState; 7] = [
        LegalState::Sent,
        LegalState::Accepted,
        LegalState::Rejected,
        LegalState::AwaitingPickup,
        LegalState::Delivered,
        LegalState::DeemedDelivered,
        LegalState::Undeliverable,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            LegalState::Sent => "sent",
            LegalState::Accepted => "accepted",
            LegalState::Rejected => "rejected",
            LegalState::AwaitingPickup => "awaiting_pickup",
            LegalState::Delivered => "delivered",
            LegalState::DeemedDelivered => "deemed_delivered",
            LegalState::Undeliverable => "undeliverable",
        }
    }

    /// No later evidence changes it: the evidence poll stops asking.
    pub const fn is_final(self) -> bool {
        matches!(
            self,
            LegalState::Rejected
                | LegalState::Delivered
                | LegalState::DeemedDelivered
                | LegalState::Undeliverable
        )
    }

    /// In Polish, for officials.
    pub const fn polish(self) -> &'static str {
        match self {
            LegalState::Sent => "wysłana",
            LegalState::Accepted => "nadana",
            LegalState::Rejected => "odrzucona",
            LegalState::AwaitingPickup => "czeka na odbiór",
            LegalState::Delivered => "doręczona",
            LegalState::DeemedDelivered => "uznana za doręczoną",
            LegalState::Undeliverable => "niedoręczona",
        }
    }
}

crate::named_states!(LegalState);
crate::named_states!(EvidenceCode);

/// When an unclaimed letter counts as delivered: `days` after the day of D.1 (the day of D.1
/// itself not counted, KPA art. 57 § 1), with the lapse of that day. Offices read differently
/// whether a last day on a Saturday or a public holiday moves to the next working day (KPA
/// art. 57 § 4): `moves_off_holidays`, on by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeemedDelivery {
    pub days: u32,
    pub moves_off_holidays: bool,
    /// The zone the days are counted in.
    pub zone: Tz,
}

impl Default for DeemedDelivery {
    fn default() -> DeemedDelivery {
        DeemedDelivery {
            days: 14,
            moves_off_holidays: true,
            zone: chrono_tz::Europe::Warsaw,
        }
    }
}

impl DeemedDelivery {
    /// The day a letter whose D.1 came at `d1` is deemed delivered on.
    pub fn day(&self, d1: DateTime<Utc>) -> NaiveDate {
        let mut day = d1.with_timezone(&self.zone).date_naive() + Days::new(self.days.into());
        if self.moves_off_holidays {
            while !crate::provisioning::deadline::is_working_day(day) {
                day = day + Days::new(1);
            }
        }
        day
    }

    /// The moment it becomes deemed delivered: the end of [`DeemedDelivery::day`].
    pub fn moment(&self, d1: DateTime<Utc>) -> DateTime<Utc> {
        let next = self.day(d1) + Days::new(1);
        self.zone
            .from_local_datetime(&next.and_hms_opt(0, 0, 0).expect("midnight"))
            .earliest()
            .expect("midnight exists in the zone")
            .with_timezone(&Utc)
    }
}

/// A letter's legal state and the time it took effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    pub state: LegalState,
    /// When: the evidence's event time, or for deemed delivery the end of its day.
    pub since: Option<DateTime<Utc>>,
    /// For deemed delivery, the day the letter counts as delivered on.
    pub deemed_on: Option<NaiveDate>,
}

/// The legal state at `now` of a letter with these evidences (code, event time), in any
/// order. A final evidence wins over later relay notices; an E.1 after the deemed day does
/// not undo deemed delivery (the law settled it first), but an E.1 before it does.
pub fn standing(
    evidences: &[(EvidenceCode, DateTime<Utc>)],
    now: DateTime<Utc>,
    deemed: &DeemedDelivery,
) -> Standing {
    let mut sorted = evidences.to_vec();
    sorted.sort_by_key(|(_, at)| *at);
    let mut standing = Standing {
        state: LegalState::Sent,
        since: None,
        deemed_on: None,
    };
    let mut d1 = None;
    for (code, at) in sorted {
        if standing.state.is_final() {
            break;
        }
        // Deemed delivery takes effect at its moment, before any later evidence.
        if let Some(d1) = d1
            && deemed.moment(d1) <= at
        {
            break;
        }
        let state = match code.meaning() {
            Meaning::Relay => continue,
            Meaning::Accepted => {
                if standing.state != LegalState::Sent {
                    continue;
                }
                LegalState::Accepted
            }
            Meaning::AwaitingPickup => {
                if d1.is_none() {
                    d1 = Some(at);
                }
                LegalState::AwaitingPickup
            }
            Meaning::Rejected => LegalState::Rejected,
            Meaning::Delivered => LegalState::Delivered,
            Meaning::Undeliverable => LegalState::Undeliverable,
        };
        standing.state = state;
        standing.since = Some(at);
    }
    if !standing.state.is_final()
        && let Some(d1) = d1
        && deemed.moment(d1) <= now
    {
        return Standing {
            state: LegalState::DeemedDelivered,
            since: Some(deemed.moment(d1)),
            deemed_on: Some(deemed.day(d1)),
        };
    }
    standing
}

/// The namespace of the evidence document: ETSI EN 319 522's REM evidence, in the subset
/// the emulator writes and eurzad reads (the code, the event time, the message, the
/// parties), sealed with XAdES by the operator.
pub const EVIDENCE_NS: &str = "http://uri.etsi.org/19522/v1#";

/// What an evidence document says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidenceDocument {
    pub evidence_id: String,
    pub code: EvidenceCode,
    pub event_time: DateTime<Utc>,
    pub message_id: String,
}

/// An evidence document as the operator writes it (unsealed).
pub fn evidence_xml(evidence: &EvidenceDocument, sender: &str, recipient: &str) -> Vec<u8> {
    let esc = |s: &str| quick_xml::escape::escape(s).into_owned();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ev:REMEvidence xmlns:ev=\"{EVIDENCE_NS}\">\
<ev:EvidenceIdentifier>{}</ev:EvidenceIdentifier><ev:EventCode>{}</ev:EventCode>\
<ev:EventTime>{}</ev:EventTime><ev:MessageIdentifier>{}</ev:MessageIdentifier>\
<ev:SenderDetails>{}</ev:SenderDetails><ev:RecipientDetails>{}</ev:RecipientDetails></ev:REMEvidence>\n",
        esc(&evidence.evidence_id),
        evidence.code.as_str(),
        evidence
            .event_time
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        esc(&evidence.message_id),
        esc(sender),
        esc(recipient),
    )
    .into_bytes()
}

/// How an evidence's seal was judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SealCheck {
    /// Sealed by the operator's certificate, intact.
    Valid,
    /// Broken, or sealed by another key: the reason.
    Invalid(String),
    /// No operator certificate is configured to check it against.
    Unchecked,
}

impl SealCheck {
    pub fn name(&self) -> &'static str {
        match self {
            SealCheck::Valid => "valid",
            SealCheck::Invalid(_) => "invalid",
            SealCheck::Unchecked => "unchecked",
        }
    }
}

/// Why an evidence document cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("evidence {evidence_id}: {message}")]
pub struct EvidenceError {
    pub evidence_id: String,
    pub message: String,
}

/// Reads an evidence document and judges its seal against the operator's certificate (when
/// one is configured), at `at`. The document must be XML within the parser's limits (no
/// DOCTYPE), name a known code, and agree with what the listing said of it (`listed`): an
/// evidence that says otherwise is refused, whatever its seal.
pub fn read_evidence(
    bytes: &[u8],
    listed: &EvidenceDocument,
    operator_certificate: Option<&[u8]>,
    at: DateTime<Utc>,
) -> Result<(EvidenceDocument, SealCheck), EvidenceError> {
    let error = |message: String| EvidenceError {
        evidence_id: listed.evidence_id.clone(),
        message,
    };
    let doc = crate::xml::parse(bytes, crate::xml::Limits::default())
        .map_err(|e| error(format!("not well-formed XML: {e}")))?;
    let root = doc
        .get_root_element()
        .ok_or_else(|| error("an empty document".into()))?;
    if root.get_name() != "REMEvidence"
        || root.get_namespace().map(|n| n.get_href()).as_deref() != Some(EVIDENCE_NS)
    {
        return Err(error(format!(
            "the root is {:?}, not REMEvidence of {EVIDENCE_NS}",
            root.get_name()
        )));
    }
    let field = |name: &str| -> Result<String, EvidenceError> {
        match crate::xml::only_child(&root, Some(EVIDENCE_NS), name) {
            Ok(Some(node)) => Ok(crate::xml::text_of(&node).trim().to_string()),
            Ok(None) => Err(error(format!("no {name}"))),
            Err(n) => Err(error(format!("{n} {name} elements"))),
        }
    };
    let code = EvidenceCode::read(&field("EventCode")?).map_err(|e| error(e.to_string()))?;
    let event_time = DateTime::parse_from_rfc3339(&field("EventTime")?)
        .map_err(|e| error(format!("EventTime: {e}")))?
        .with_timezone(&Utc);
    let document = EvidenceDocument {
        evidence_id: field("EvidenceIdentifier")?,
        code,
        event_time,
        message_id: field("MessageIdentifier")?,
    };
    if document.evidence_id != listed.evidence_id
        || document.message_id != listed.message_id
        || document.code != listed.code
    {
        return Err(error(format!(
            "the document says {} {} of message {}, the listing {} {} of message {}",
            document.code.as_str(),
            document.evidence_id,
            document.message_id,
            listed.code.as_str(),
            listed.evidence_id,
            listed.message_id
        )));
    }
    let seal = match operator_certificate {
        None => SealCheck::Unchecked,
        Some(certificate) => {
            let policy = crate::signature::TrustPolicy {
                pinned: vec![certificate.to_vec()],
                ..Default::default()
            };
            let verdict = crate::signature::verify(bytes, &policy, at);
            if verdict.passed() {
                SealCheck::Valid
            } else {
                SealCheck::Invalid(verdict.reason)
            }
        }
    };
    Ok((document, seal))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn every_code_reads_dotted_and_undotted() {
        for code in EvidenceCode::ALL {
            assert_eq!(EvidenceCode::read(code.as_str()), Ok(code));
            assert_eq!(
                EvidenceCode::read(&code.as_str().replace('.', "")),
                Ok(code)
            );
        }
        assert_eq!(EvidenceCode::read("D"), Ok(EvidenceCode::D1));
        assert_eq!(EvidenceCode::read("bpox"), Ok(EvidenceCode::BpOx));
        let err = EvidenceCode::read("Z.9").unwrap_err();
        assert!(err.to_string().contains("\"Z.9\""), "{err}");
        crate::states::assert_names_read_back::<LegalState>("lost");
    }

    #[test]
    fn e1_delivers_and_d1_alone_is_deemed_delivered_after_fourteen_days() {
        let deemed = DeemedDelivery::default();
        let sent = [
            (EvidenceCode::A1, at("2026-03-02T09:00:00Z")),
            (EvidenceCode::D1, at("2026-03-02T09:00:05Z")),
        ];
        let s = standing(&sent, at("2026-03-10T00:00:00Z"), &deemed);
        assert_eq!(s.state, LegalState::AwaitingPickup);
        let mut opened = sent.to_vec();
        opened.push((EvidenceCode::E1, at("2026-03-05T12:00:00Z")));
        let s = standing(&opened, at("2026-04-30T00:00:00Z"), &deemed);
        assert_eq!(
            (s.state, s.since),
            (LegalState::Delivered, Some(at("2026-03-05T12:00:00Z")))
        );
        // Monday 2 March + 14 days = Monday 16 March, a working day: deemed with its lapse.
        let s = standing(&sent, at("2026-03-16T22:59:59Z"), &deemed);
        assert_eq!(s.state, LegalState::AwaitingPickup);
        let s = standing(&sent, at("2026-03-16T23:00:00Z"), &deemed);
        assert_eq!(s.state, LegalState::DeemedDelivered);
        assert_eq!(s.deemed_on, NaiveDate::from_ymd_opt(2026, 3, 16));
        // An E.1 after the deemed day does not undo it.
        let mut late = sent.to_vec();
        late.push((EvidenceCode::E1, at("2026-03-20T12:00:00Z")));
        let s = standing(&late, at("2026-03-21T00:00:00Z"), &deemed);
        assert_eq!(s.state, LegalState::DeemedDelivered);
    }

    #[test]
    fn the_deemed_day_moves_off_easter_monday_only_when_configured() {
        // D.1 on Monday 23 March 2026: + 14 days = Monday 6 April 2026, Easter Monday.
        let d1 = at("2026-03-23T10:00:00Z");
        let moved = DeemedDelivery::default();
        assert_eq!(moved.day(d1), NaiveDate::from_ymd_opt(2026, 4, 7).unwrap());
        let fixed = DeemedDelivery {
            moves_off_holidays: false,
            ..DeemedDelivery::default()
        };
        assert_eq!(fixed.day(d1), NaiveDate::from_ymd_opt(2026, 4, 6).unwrap());
        // A Saturday moves to Monday: D.1 on Saturday 31 October + 14 = Saturday 14 November.
        let d1 = at("2026-10-31T10:00:00Z");
        assert_eq!(
            moved.day(d1),
            NaiveDate::from_ymd_opt(2026, 11, 16).unwrap()
        );
        // D.1 late in the evening in Warsaw counts by the Warsaw day.
        let d1 = at("2026-03-01T23:30:00Z"); // 2 March, 00:30 in Warsaw
        assert_eq!(fixed.day(d1), NaiveDate::from_ymd_opt(2026, 3, 16).unwrap());
    }

    #[test]
    fn a_rejection_or_an_undeliverable_letter_is_final() {
        let deemed = DeemedDelivery::default();
        let rejected = [(EvidenceCode::A2, at("2026-03-02T09:00:00Z"))];
        assert_eq!(
            standing(&rejected, at("2026-05-01T00:00:00Z"), &deemed).state,
            LegalState::Rejected
        );
        let failed = [
            (EvidenceCode::A1, at("2026-03-02T09:00:00Z")),
            (EvidenceCode::E2, at("2026-03-03T09:00:00Z")),
        ];
        assert_eq!(
            standing(&failed, at("2026-05-01T00:00:00Z"), &deemed).state,
            LegalState::Undeliverable
        );
        let hybrid = [
            (EvidenceCode::HDw, at("2026-03-02T09:00:00Z")),
            (EvidenceCode::HPn, at("2026-03-03T09:00:00Z")),
            (EvidenceCode::HEpo, at("2026-03-05T09:00:00Z")),
        ];
        assert_eq!(
            standing(&hybrid, at("2026-03-06T00:00:00Z"), &deemed).state,
            LegalState::Delivered
        );
    }
}
