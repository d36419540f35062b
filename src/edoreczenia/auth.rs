//! The office system's access token for the UA API.
//!
//! e-Doręczenia authenticates a system, not a person: OAuth2 client credentials, the client
//! proving itself with a JWT (RS256) signed by the system certificate registered in the
//! mailbox's admin panel (NOTES.md, "Auth"):
//!
//! - the assertion: `iss` = `sub` = `<ADE>.SYSTEM.<system name>`, `aud` = the realm URL, a
//!   `jti`, `exp` a few minutes ahead;
//! - posted to `<realm>/protocol/openid-connect/token?login_hint=ADE.<ADE>` with
//!   `grant_type=client_credentials` and
//!   `client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer`;
//! - the answer is a bearer token with its `expires_in`.
//!
//! Fetching a token per call, and polling without backoff, are the known field failures of
//! 2025: [`TokenSource`] fetches one, shares it between every task, and fetches the next
//! only shortly before it expires. Concurrent callers wait for one fetch.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::Utc;
use tokio::time::Instant;

use super::Ade;

/// `client_assertion_type` of a JWT client assertion (RFC 7523).
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The claims of the client assertion.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct AssertionClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub jti: String,
    pub iat: i64,
    pub exp: i64,
}

/// The system as e-Doręczenia knows it: its mailbox, its name in the panel, its key.
#[derive(Clone)]
pub struct SystemCredentials {
    pub ade: Ade,
    /// The system's name as registered in the mailbox's panel.
    pub system_name: String,
    /// The system certificate's private key (PEM).
    pub private_key_pem: Vec<u8>,
    /// Where the certificate and key were configured, for the errors that concern them.
    pub certificate_label: String,
}

impl std::fmt::Debug for SystemCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SystemCredentials")
            .field("ade", &self.ade)
            .field("system_name", &self.system_name)
            .field("certificate_label", &self.certificate_label)
            .finish_non_exhaustive()
    }
}

impl SystemCredentials {
    /// `<ADE>.SYSTEM.<system name>`: the assertion's issuer and subject.
    pub fn client_id(&self) -> String {
        format!("{}.SYSTEM.{}", self.ade, self.system_name)
    }

    /// A client assertion for `audience`, valid for `lifetime` from now.
    pub fn assertion(&self, audience: &str, lifetime: Duration) -> Result<String, AuthError> {
        let now = Utc::now().timestamp();
        let client_id = self.client_id();
        let claims = AssertionClaims {
            iss: client_id.clone(),
            sub: client_id,
            aud: audience.to_string(),
            jti: format!("{:032x}", rand::random::<u128>()),
            iat: now,
            exp: now + i64::try_from(lifetime.as_secs()).unwrap_or(300),
        };
        sign(&claims, &self.private_key_pem).map_err(|e| AuthError::Key {
            certificate: self.certificate_label.clone(),
            message: e,
        })
    }
}

/// Signs `claims` as an RS256 JWT with a PEM private key (PKCS#1 or PKCS#8).
pub fn sign(claims: &AssertionClaims, private_key_pem: &[u8]) -> Result<String, String> {
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(private_key_pem)
        .map_err(|e| format!("not an RSA private key: {e}"))?;
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        claims,
        &key,
    )
    .map_err(|e| format!("signing the client assertion: {e}"))
}

/// Why no token could be had.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The configured key cannot sign.
    #[error("e-Doręczenia system key ({certificate}): {message}")]
    Key {
        certificate: String,
        message: String,
    },
    /// e-Doręczenia refused the system: a configuration error for the office's admin.
    #[error(
        "e-Doręczenia refused the token request of system {client_id} (HTTP {status}: {reason}): \
         check that the system certificate {certificate} is the one registered for it in the \
         mailbox's panel, and that the clock is right"
    )]
    Refused {
        client_id: String,
        certificate: String,
        status: u16,
        reason: String,
    },
    /// The token endpoint could not be reached or answered nonsense: try again later.
    #[error("e-Doręczenia token endpoint {url}: {message}")]
    Unavailable { url: String, message: String },
}

/// The token endpoint's answer (RFC 6749 § 5.1).
#[derive(Debug, serde::Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// An error answer (RFC 6749 § 5.2).
#[derive(Debug, serde::Deserialize)]
struct TokenRefusal {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

struct Cached {
    token: String,
    expires_at: Instant,
}

/// The office system's token, fetched once and shared by every task until shortly before it
/// expires.
pub struct TokenSource {
    http: reqwest::Client,
    /// The realm's URL: the assertion's audience (`…/auth/realms/EDOR`).
    realm: String,
    credentials: SystemCredentials,
    /// How long each client assertion is valid.
    assertion_lifetime: Duration,
    /// A token is fetched anew this long before it expires.
    refresh_before: Duration,
    cached: tokio::sync::Mutex<Option<Cached>>,
    fetches: AtomicU64,
}

impl TokenSource {
    /// Assertions valid for 300 s (as the operator's examples), and a token refreshed 60 s
    /// before it expires.
    pub fn new(http: reqwest::Client, realm: &str, credentials: SystemCredentials) -> TokenSource {
        TokenSource {
            http,
            realm: realm.trim_end_matches('/').to_string(),
            credentials,
            assertion_lifetime: Duration::from_secs(300),
            refresh_before: Duration::from_secs(60),
            cached: tokio::sync::Mutex::new(None),
            fetches: AtomicU64::new(0),
        }
    }

    /// A token is fetched anew `refresh_before` before it expires.
    pub fn refresh_before(mut self, refresh_before: Duration) -> TokenSource {
        self.refresh_before = refresh_before;
        self
    }

    /// The token endpoint: `<realm>/protocol/openid-connect/token`.
    pub fn token_url(&self) -> String {
        format!("{}/protocol/openid-connect/token", self.realm)
    }

    /// How many tokens were fetched (for `eurzad status` and the tests).
    pub fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// The current token: the cached one while it has more than `refresh_before` left, else
    /// a new one. Callers that arrive during a fetch wait for it and share its token.
    pub async fn token(&self) -> Result<String, AuthError> {
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached.as_ref()
            && c.expires_at > Instant::now() + self.refresh_before
        {
            return Ok(c.token.clone());
        }
        let fresh = self.fetch().await?;
        let token = fresh.token.clone();
        *cached = Some(fresh);
        Ok(token)
    }

    /// Forgets the cached token (the API answered 401 with it: it was revoked).
    pub async fn forget(&self) {
        *self.cached.lock().await = None;
    }

    async fn fetch(&self) -> Result<Cached, AuthError> {
        let url = self.token_url();
        let assertion = self
            .credentials
            .assertion(&self.realm, self.assertion_lifetime)?;
        let asked = Instant::now();
        let unavailable = |message: String| AuthError::Unavailable {
            url: url.clone(),
            message,
        };
        let answer = self
            .http
            .post(&url)
            .query(&[("login_hint", format!("ADE.{}", self.credentials.ade))])
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_assertion_type", JWT_BEARER),
                ("client_assertion", assertion.as_str()),
            ])
            .send()
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        let status = answer.status();
        let body = answer
            .bytes()
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        if status.is_client_error() {
            let reason = match serde_json::from_slice::<TokenRefusal>(&body) {
                Ok(r) => match r.error_description {
                    Some(d) => format!("{}: {d}", r.error),
                    None => r.error,
                },
                Err(_) => String::from_utf8_lossy(&body).chars().take(200).collect(),
            };
            return Err(AuthError::Refused {
                client_id: self.credentials.client_id(),
                certificate: self.credentials.certificate_label.clone(),
                status: status.as_u16(),
                reason,
            });
        }
        if !status.is_success() {
            return Err(unavailable(format!("HTTP {status}")));
        }
        let answer: TokenAnswer = serde_json::from_slice(&body)
            .map_err(|e| unavailable(format!("the answer is not a token: {e}")))?;
        self.fetches.fetch_add(1, Ordering::Relaxed);
        // Counted from when it was asked for: the server's clock started no later.
        let lifetime = Duration::from_secs(answer.expires_in.unwrap_or(300));
        tracing::info!(
            system = %self.credentials.client_id(),
            expires_in = lifetime.as_secs(),
            "e-Doręczenia token fetched"
        );
        Ok(Cached {
            token: answer.access_token,
            expires_at: asked + lifetime,
        })
    }
}
