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
    /// One of the four above, chosen at random.
    Random,
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
}

impl FaultKind {
    /// True for faults that strike before the request takes effect.
    pub fn before_processing(self) -> bool {
        matches!(self, FaultKind::Http500 | FaultKind::SoapFault)
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

    /// The fault for this request, if any; `Random` is resolved to a concrete kind.
    pub fn decide(&mut self, operation: &str) -> Option<(FaultKind, u64)> {
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
            FaultKind::Random => [
                FaultKind::Http500,
                FaultKind::SoapFault,
                FaultKind::Drop,
                FaultKind::Slow,
            ][self.rng.random_range(0..4)],
            other => other,
        };
        Some((kind, delay))
    }
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
}
