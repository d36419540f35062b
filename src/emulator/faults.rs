//! Fault injection, for tests: rules set through the admin API (`POST /admin/faults`) or the
//! `--fault-rate` flag decide, per request, whether the emulator misbehaves and how.
//!
//! Some faults strike before the request is processed (the call had no effect), others after
//! (the call took effect but its answer is lost), which is what makes confirmation handling
//! interesting.

use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// How the emulator misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// Before processing: HTTP 500 with a plain-text body.
    Http500,
    /// Before processing: a signed SOAP fault (`Wyjatek`), HTTP 500.
    SoapFault,
    /// After processing: the connection is cut before the answer is complete.
    Drop,
    /// After processing: the answer comes after `delay_ms` (beyond the client's timeout).
    Slow,
    /// One of the four above, chosen at random (for the UA API: HTTP 500, 429, drop, slow).
    Random,
    /// Before processing (UA API): HTTP 429 with `Retry-After`, `delay_ms` rounded up to
    /// whole seconds.
    TooManyRequests,
    /// After processing: the answer is cut in the middle (malformed XML).
    Malformed,
    /// After processing: a DOCTYPE with an entity is put before the answer.
    Doctype,
    /// `pobierzNastepny` only: `zawartosc` is not base64 (signed as such).
    BadBase64,
    /// `pobierzNastepny` only: `dataNadania` is missing (signed as such).
    MissingField,
    /// The answer is not signed.
    Unsigned,
    /// The answer is signed with a key the client does not trust.
    WrongKey,
    /// The Body is changed after signing.
    TamperedBody,
    /// After processing: one to three random byte edits of the signed answer (a bit flipped,
    /// a byte replaced by markup, a span deleted or copied), seeded by the plan.
    Corrupt,
}

impl FaultKind {
    /// True for faults that strike before the request takes effect.
    pub fn before_processing(self) -> bool {
        matches!(
            self,
            FaultKind::Http500 | FaultKind::SoapFault | FaultKind::TooManyRequests
        )
    }
}

/// One rule of the plan.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FaultRule {
    pub kind: FaultKind,
    /// ePUAP operation name (`pobierzNastepny`, …); any operation when absent.
    #[serde(default)]
    pub operation: Option<String>,
    /// Chance per matching request, 0..=1.
    #[serde(default)]
    pub probability: Option<f64>,
    /// Fire on the next `count` matching requests.
    #[serde(default)]
    pub count: Option<u64>,
    /// Delay for `slow`, in milliseconds.
    #[serde(default = "default_delay")]
    pub delay_ms: u64,
}

fn default_delay() -> u64 {
    5_000
}

/// The rules in force and a seeded random source, so that a test run can be repeated.
pub struct FaultPlan {
    rules: Vec<FaultRule>,
    rng: rand::rngs::StdRng,
}

impl FaultPlan {
    pub fn new(seed: u64) -> FaultPlan {
        FaultPlan {
            rules: Vec::new(),
            rng: rand::rngs::StdRng::seed_from_u64(seed),
        }
    }

    pub fn add(&mut self, rule: FaultRule) {
        self.rules.push(rule);
    }

    pub fn clear(&mut self) {
        self.rules.clear();
    }

    pub fn rules(&self) -> &[FaultRule] {
        &self.rules
    }

    /// A seed for one `corrupt` fault, from the plan's seeded source.
    pub fn corruption_seed(&mut self) -> u64 {
        self.rng.random()
    }

    /// The fault for this request, if any; `Random` is resolved to a concrete kind.
    pub fn decide(&mut self, operation: &str) -> Option<(FaultKind, u64)> {
        self.decide_among(
            operation,
            &[
                FaultKind::Http500,
                FaultKind::SoapFault,
                FaultKind::Drop,
                FaultKind::Slow,
            ],
        )
    }

    /// As [`FaultPlan::decide`], with `Random` resolved to one of `random`.
    pub fn decide_among(
        &mut self,
        operation: &str,
        random: &[FaultKind],
    ) -> Option<(FaultKind, u64)> {
        let mut fired = None;
        for rule in self.rules.iter_mut() {
            if rule.operation.as_deref().is_some_and(|op| op != operation) {
                continue;
            }
            let fire = match (rule.count, rule.probability) {
                (Some(0), _) => false,
                (Some(n), _) => {
                    rule.count = Some(n - 1);
                    true
                }
                (None, Some(p)) => self.rng.random_bool(p.clamp(0.0, 1.0)),
                (None, None) => true,
            };
            if fire {
                fired = Some((rule.kind, rule.delay_ms));
                break;
            }
        }
        self.rules.retain(|r| r.count != Some(0));
        let (kind, delay) = fired?;
        let kind = match kind {
            FaultKind::Random => random[self.rng.random_range(0..random.len())],
            other => other,
        };
        Some((kind, delay))
    }
}

/// Applies one to three random byte edits to `bytes`, chosen by `seed`; says which.
pub fn corrupt(bytes: &mut Vec<u8>, seed: u64) -> String {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut edits = Vec::new();
    for _ in 0..rng.random_range(1..=3) {
        if bytes.is_empty() {
            break;
        }
        let len = bytes.len();
        let at = rng.random_range(0..len);
        match rng.random_range(0..4) {
            0 => {
                bytes[at] ^= 1 << rng.random_range(0..8);
                edits.push(format!("bit flipped at {at}"));
            }
            1 => {
                let markup = b"<>&\"'/="[rng.random_range(0..7)];
                bytes[at] = markup;
                edits.push(format!("{:?} at {at}", markup as char));
            }
            2 => {
                let n = rng.random_range(1..=32).min(len - at);
                bytes.drain(at..at + n);
                edits.push(format!("{n} bytes deleted at {at}"));
            }
            _ => {
                let n = rng.random_range(1..=32).min(len - at);
                let copy = bytes[at..at + n].to_vec();
                let to = rng.random_range(0..=len);
                bytes.splice(to..to, copy);
                edits.push(format!("{n} bytes from {at} copied to {to}"));
            }
        }
    }
    edits.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_rules_fire_exactly_n_times_on_their_operation() {
        let mut plan = FaultPlan::new(1);
        plan.add(FaultRule {
            kind: FaultKind::Http500,
            operation: Some("pobierzNastepny".into()),
            probability: None,
            count: Some(2),
            delay_ms: 0,
        });
        assert_eq!(plan.decide("potwierdzOdebranie"), None);
        assert_eq!(
            plan.decide("pobierzNastepny").map(|f| f.0),
            Some(FaultKind::Http500)
        );
        assert_eq!(
            plan.decide("pobierzNastepny").map(|f| f.0),
            Some(FaultKind::Http500)
        );
        assert_eq!(plan.decide("pobierzNastepny"), None);
        assert!(plan.rules().is_empty());
    }

    #[test]
    fn probability_is_roughly_honoured() {
        let mut plan = FaultPlan::new(7);
        plan.add(FaultRule {
            kind: FaultKind::Random,
            operation: None,
            probability: Some(0.1),
            count: None,
            delay_ms: 0,
        });
        let fired = (0..10_000)
            .filter(|_| plan.decide("pobierzNastepny").is_some())
            .count();
        assert!((800..1200).contains(&fired), "{fired}");
    }

    #[test]
    fn a_corruption_is_repeatable_from_its_seed_and_changes_the_answer() {
        let answer = b"<soap:Envelope><soap:Body><ok/></soap:Body></soap:Envelope>".to_vec();
        let (mut a, mut b) = (answer.clone(), answer.clone());
        let said = corrupt(&mut a, 7);
        assert_eq!(said, corrupt(&mut b, 7));
        assert_eq!(a, b);
        let changed = (0..100)
            .filter(|seed| {
                let mut c = answer.clone();
                corrupt(&mut c, *seed);
                c != answer
            })
            .count();
        assert!(changed >= 90, "{changed} of 100 seeds changed the answer");
    }
}
