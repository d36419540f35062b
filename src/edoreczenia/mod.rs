//! e-Doręczenia, the legal channel for a public body's letters since 2026: the client of the
//! operator's UA API (`/api/v3`), beside `epuap/`. Facts and field experience:
//! `../shared/domain-reference/e-doreczenia/NOTES.md` and the OpenAPI beside it.
//!
//! - [`auth`]: the office system's access token (OAuth2 client credentials with a JWT signed
//!   by the system certificate), fetched once and shared until shortly before it expires.
//!
//! - [`wire`]: the API's JSON types, shared with the emulator;
//! - [`client`]: the office's mailbox: send (a task, polled), sent messages, evidences;
//! - [`channel`]: the delivery channel built on it;
//! - [`evidence`]: the evidence codes and the legal state of a letter, deemed delivery
//!   included.
//!
//! The emulator's side of the same protocol is `emulator::edoreczenia`.

pub mod auth;
pub mod channel;
pub mod client;
pub mod evidence;
pub mod follow;
pub mod receive;
pub mod wire;

use std::fmt;
use std::str::FromStr;

/// The UA API as configured (`[edoreczenia]`, resolved by `Config::edoreczenia`).
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// The API's base URL, or "embedded" for the emulator.
    pub endpoint: String,
    /// The auth realm: the client assertion's audience.
    pub realm: String,
    pub credentials: auth::SystemCredentials,
    /// The operator's sealing certificate, when configured (the emulator's, embedded).
    pub operator_certificate: Option<Vec<u8>>,
    pub following: Following,
}

/// How sent letters' evidences are followed.
#[derive(Debug, Clone, Copy)]
pub struct Following {
    pub deemed: evidence::DeemedDelivery,
    /// How often a letter's evidences are asked for.
    pub interval: std::time::Duration,
}

impl ApiSettings {
    /// The UA API's base: `<endpoint>/api/v3`.
    pub fn api_base(&self) -> String {
        format!("{}/api/v3", self.endpoint.trim_end_matches('/'))
    }
}

/// An e-Doręczenia address (ADE), `AE:PL-NNNNN-NNNNN-XXXXX-NN`: five digits, five digits,
/// five upper-case letters or digits, two digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ade(String);

/// What is wrong with a string that should be an ADE.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not an e-Doręczenia address (AE:PL-NNNNN-NNNNN-XXXXX-NN): {why}")]
pub struct AdeError {
    pub value: String,
    pub why: &'static str,
}

impl Ade {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Ade {
    type Err = AdeError;

    fn from_str(value: &str) -> Result<Ade, AdeError> {
        let error = |why| AdeError {
            value: value.to_string(),
            why,
        };
        let rest = value
            .strip_prefix("AE:PL-")
            .ok_or_else(|| error("it must begin with AE:PL-"))?;
        let groups: Vec<&str> = rest.split('-').collect();
        let [a, b, c, d] = groups[..] else {
            return Err(error("it must have four groups after AE:PL-"));
        };
        let digits = |g: &str, n| g.len() == n && g.bytes().all(|b| b.is_ascii_digit());
        if !digits(a, 5) || !digits(b, 5) {
            return Err(error("the first two groups are five digits each"));
        }
        if !(c.len() == 5
            && c.bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase()))
        {
            return Err(error(
                "the third group is five upper-case letters or digits",
            ));
        }
        if !digits(d, 2) {
            return Err(error("the last group is two digits"));
        }
        Ok(Ade(value.to_string()))
    }
}

impl fmt::Display for Ade {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ade_matches_its_pattern_and_a_wrong_one_says_why() {
        let ade: Ade = "AE:PL-12345-67890-ABCDE-12".parse().unwrap();
        assert_eq!(ade.as_str(), "AE:PL-12345-67890-ABCDE-12");
        for (value, why) in [
            ("PL-12345-67890-ABCDE-12", "begin with AE:PL-"),
            ("AE:PL-12345-67890-ABCDE", "four groups"),
            ("AE:PL-1234-67890-ABCDE-12", "five digits"),
            ("AE:PL-12345-67890-abcde-12", "upper-case"),
            ("AE:PL-12345-67890-ABCDE-1X", "two digits"),
            ("AE:PL-12345-67890-ABCDE-12-00", "four groups"),
        ] {
            let err = value.parse::<Ade>().unwrap_err();
            assert!(err.to_string().contains(why), "{value}: {err}");
            assert!(err.to_string().contains(value), "{err}");
        }
    }
}
