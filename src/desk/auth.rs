//! Who may use the desk: passwords (argon2id), session cookies (random tokens of which the
//! database keeps only a SHA-256), a CSRF token per session for every form (and a
//! double-submit cookie for the sign-in form, which comes before any session), and a limit
//! on failed sign-ins per login and per address.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine as _;
use sha2::Digest as _;

/// The session cookie, and the sign-in form's own.
pub const SESSION_COOKIE: &str = "eurzad_desk";
pub const SIGN_IN_COOKIE: &str = "eurzad_desk_login";

/// An argon2id hash of `password` (PHC string), with a fresh salt.
pub fn hash_password(password: &str) -> Result<String, String> {
    let salt =
        SaltString::encode_b64(&rand::random::<[u8; 16]>()).map_err(|e| format!("a salt: {e}"))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("hashing the password: {e}"))
}

/// Whether `password` is the one `hash` was made of. A hash that cannot be read matches
/// nothing.
pub fn password_matches(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// A random token: 32 bytes, URL-safe base64.
pub fn token() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// What the database keeps of a session token.
pub fn token_digest(token: &str) -> String {
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}

/// Compares two secrets in time that does not depend on where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// A cookie's value from the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, path /, `Secure` unless `insecure_ok`;
/// `max_age` zero removes it.
pub fn set_cookie(name: &str, value: &str, max_age: Duration, insecure_ok: bool) -> String {
    format!(
        "{name}={value}; Path=/; Max-Age={}; HttpOnly; SameSite=Strict{}",
        max_age.as_secs(),
        if insecure_ok { "" } else { "; Secure" }
    )
}

/// Failed sign-ins within a window, per login and per address.
pub struct SignInLimit {
    per_login: u32,
    window: Duration,
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl SignInLimit {
    pub fn new(per_login: u32, window: Duration) -> Self {
        SignInLimit {
            per_login,
            window,
            failures: Mutex::default(),
        }
    }

    fn keys(login: &str, from: Option<IpAddr>) -> [(String, u32); 2] {
        [
            (format!("login:{}", login.to_lowercase()), 1),
            (
                format!("ip:{}", from.map_or("-".to_string(), |ip| ip.to_string())),
                4,
            ),
        ]
    }

    /// Whether another try is allowed now.
    pub fn allows(&self, login: &str, from: Option<IpAddr>) -> bool {
        let now = Instant::now();
        let mut failures = self.failures.lock().expect("sign-in limit lock");
        Self::keys(login, from).iter().all(|(key, factor)| {
            let Some(seen) = failures.get_mut(key) else {
                return true;
            };
            while seen
                .front()
                .is_some_and(|t| now.duration_since(*t) > self.window)
            {
                seen.pop_front();
            }
            (seen.len() as u32) < self.per_login * factor
        })
    }

    pub fn failed(&self, login: &str, from: Option<IpAddr>) {
        let now = Instant::now();
        let mut failures = self.failures.lock().expect("sign-in limit lock");
        if failures.len() > 10_000 {
            failures.retain(|_, seen| {
                seen.back()
                    .is_some_and(|t| now.duration_since(*t) <= self.window)
            });
        }
        for (key, _) in Self::keys(login, from) {
            failures.entry(key).or_default().push_back(now);
        }
    }

    /// A sign-in succeeded: the login's failures are forgotten (the address's are not).
    pub fn succeeded(&self, login: &str) {
        self.failures
            .lock()
            .expect("sign-in limit lock")
            .remove(&format!("login:{}", login.to_lowercase()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_matches_its_argon2id_hash_only() {
        let hash = hash_password("Zażółć-123").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(password_matches("Zażółć-123", &hash));
        assert!(!password_matches("zażółć-123", &hash));
        assert!(!password_matches("Zażółć-123", "not a hash"));
        assert_ne!(hash, hash_password("Zażółć-123").unwrap(), "salted");
    }

    #[test]
    fn sign_ins_are_limited_per_login_and_per_address() {
        let limit = SignInLimit::new(2, Duration::from_secs(60));
        let ip = Some("192.0.2.7".parse().unwrap());
        assert!(limit.allows("anna", ip));
        limit.failed("anna", ip);
        limit.failed("ANNA", ip);
        assert!(!limit.allows("anna", ip), "the login is locked");
        assert!(
            limit.allows("jan", ip),
            "another login from the address is not, yet"
        );
        for _ in 0..6 {
            limit.failed("jan", ip);
        }
        assert!(!limit.allows("ewa", ip), "8 failures lock the address");
        assert!(limit.allows("ewa", Some("192.0.2.8".parse().unwrap())));
    }

    #[test]
    fn cookies_are_http_only_strict_and_secure_unless_allowed_plain() {
        let c = set_cookie(SESSION_COOKIE, "abc", Duration::from_secs(60), false);
        assert_eq!(
            c,
            "eurzad_desk=abc; Path=/; Max-Age=60; HttpOnly; SameSite=Strict; Secure"
        );
        let mut headers = axum::http::HeaderMap::new();
        headers.insert(
            axum::http::header::COOKIE,
            "a=1; eurzad_desk=xyz; b=2".parse().unwrap(),
        );
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("xyz"));
        assert!(same_secret("abc", "abc") && !same_secret("abc", "abd") && !same_secret("a", "ab"));
    }
}
