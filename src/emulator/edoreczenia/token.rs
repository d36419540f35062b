//! The emulator's token endpoint, which judges a system's client assertion as the operator's Keycloak does
//! (NOTES.md, "Auth"): RS256 signed by the certificate registered for the system, `iss` =
//! `sub` = the registered system, `aud` = the realm, not expired, a `jti`, and `login_hint`
//! naming the system's own mailbox. Each refusal says why, as an OAuth2 error answer.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use crate::edoreczenia::auth::{AssertionClaims, JWT_BEARER};

/// The path of the realm, under the emulator's base URL.
pub const REALM_PATH: &str = "/auth/realms/EDOR";

/// What the token endpoint accepts.
#[derive(Clone)]
pub struct TokenSettings {
    /// The realm's URL, the audience assertions must name (`<base>/auth/realms/EDOR`).
    pub realm: String,
    /// Registered systems: `<ADE>.SYSTEM.<name>` → their certificate (PEM).
    pub systems: HashMap<String, Vec<u8>>,
    /// How long a token lives.
    pub token_lifetime: Duration,
    /// Clock skew tolerated on `exp`.
    pub leeway: Duration,
}

/// The token endpoint, with the tokens it issued.
#[derive(Clone)]
pub struct TokenEndpoint {
    settings: Arc<TokenSettings>,
    issued: Arc<AtomicU64>,
    tokens: Arc<std::sync::Mutex<HashMap<String, (String, std::time::Instant)>>>,
}

#[derive(serde::Deserialize)]
struct TokenQuery {
    login_hint: Option<String>,
}

#[derive(serde::Deserialize)]
struct TokenForm {
    grant_type: Option<String>,
    client_assertion_type: Option<String>,
    client_assertion: Option<String>,
}

/// An OAuth2 error answer (RFC 6749 § 5.2).
struct Refusal {
    status: StatusCode,
    error: &'static str,
    description: String,
}

fn refusal(status: StatusCode, error: &'static str, description: impl Into<String>) -> Refusal {
    Refusal {
        status,
        error,
        description: description.into(),
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error": self.error, "error_description": self.description});
        (self.status, axum::Json(body)).into_response()
    }
}

impl TokenEndpoint {
    pub fn new(settings: TokenSettings) -> TokenEndpoint {
        TokenEndpoint {
            settings: Arc::new(settings),
            issued: Arc::new(AtomicU64::new(0)),
            tokens: Arc::default(),
        }
    }

    /// How many tokens it issued.
    pub fn issued(&self) -> u64 {
        self.issued.load(Ordering::Relaxed)
    }

    /// The system a bearer token was issued to, while it is valid.
    pub fn system_of(&self, token: &str) -> Option<String> {
        let tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        tokens
            .get(token)
            .filter(|(_, expires)| *expires > std::time::Instant::now())
            .map(|(system, _)| system.clone())
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route(
                &format!("{REALM_PATH}/protocol/openid-connect/token"),
                post(token),
            )
            .with_state(self.clone())
    }

    /// Judges a client assertion: the system it proves, or why not.
    fn judge(&self, login_hint: Option<&str>, form: &TokenForm) -> Result<String, Refusal> {
        let bad = |d: &str| refusal(StatusCode::BAD_REQUEST, "invalid_request", d);
        let client = |d: String| refusal(StatusCode::UNAUTHORIZED, "invalid_client", d);
        if form.grant_type.as_deref() != Some("client_credentials") {
            return Err(refusal(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "grant_type must be client_credentials",
            ));
        }
        if form.client_assertion_type.as_deref() != Some(JWT_BEARER) {
            return Err(bad("client_assertion_type must be jwt-bearer"));
        }
        let assertion = form
            .client_assertion
            .as_deref()
            .ok_or_else(|| bad("client_assertion is missing"))?;
        let header = jsonwebtoken::decode_header(assertion)
            .map_err(|e| client(format!("the client assertion is not a JWT: {e}")))?;
        if header.alg != jsonwebtoken::Algorithm::RS256 {
            return Err(client(format!("algorithm {:?}: RS256 only", header.alg)));
        }
        // Who it claims to be, read before the signature is checked, to find the
        // certificate it must be signed with.
        let mut peek = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        peek.insecure_disable_signature_validation();
        peek.validate_exp = false;
        peek.validate_aud = false;
        peek.required_spec_claims.clear();
        let claimed = jsonwebtoken::decode::<AssertionClaims>(
            assertion,
            &jsonwebtoken::DecodingKey::from_secret(&[]),
            &peek,
        )
        .map_err(|e| client(format!("the client assertion's claims: {e}")))?
        .claims;
        let certificate = self.settings.systems.get(&claimed.iss).ok_or_else(|| {
            client(format!(
                "system {:?} is not registered in the mailbox's panel",
                claimed.iss
            ))
        })?;
        let public_key = openssl::x509::X509::from_pem(certificate)
            .and_then(|c| c.public_key())
            .and_then(|k| k.public_key_to_pem())
            .map_err(|e| client(format!("the registered certificate: {e}")))?;
        let key = jsonwebtoken::DecodingKey::from_rsa_pem(&public_key)
            .map_err(|e| client(format!("the registered certificate's key: {e}")))?;
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        validation.set_audience(&[&self.settings.realm]);
        validation.set_issuer(&[&claimed.iss]);
        validation.sub = Some(claimed.iss.clone());
        validation.leeway = self.settings.leeway.as_secs();
        validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
        let claims = jsonwebtoken::decode::<AssertionClaims>(assertion, &key, &validation)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind;
                client(match e.kind() {
                    ErrorKind::InvalidSignature => format!(
                        "the client assertion's signature does not verify with the certificate registered for {}",
                        claimed.iss
                    ),
                    ErrorKind::ExpiredSignature => "the client assertion has expired".to_string(),
                    ErrorKind::InvalidAudience => format!(
                        "the client assertion's audience is not {}",
                        self.settings.realm
                    ),
                    ErrorKind::InvalidSubject => "sub must equal iss".to_string(),
                    _ => format!("the client assertion: {e}"),
                })
            })?
            .claims;
        if claims.jti.is_empty() {
            return Err(client("the client assertion has no jti".into()));
        }
        let ade = claims.iss.split(".SYSTEM.").next().unwrap_or_default();
        if login_hint != Some(&format!("ADE.{ade}")) {
            return Err(bad(&format!("login_hint must be ADE.{ade}")));
        }
        Ok(claims.iss)
    }
}

async fn token(
    State(endpoint): State<TokenEndpoint>,
    Query(query): Query<TokenQuery>,
    Form(form): Form<TokenForm>,
) -> Response {
    match endpoint.judge(query.login_hint.as_deref(), &form) {
        Err(refused) => refused.into_response(),
        Ok(system) => {
            let token = format!("edor-{:032x}", rand::random::<u128>());
            let lifetime = endpoint.settings.token_lifetime;
            endpoint
                .tokens
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(
                    token.clone(),
                    (system, std::time::Instant::now() + lifetime),
                );
            endpoint.issued.fetch_add(1, Ordering::Relaxed);
            axum::Json(serde_json::json!({
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": lifetime.as_secs(),
            }))
            .into_response()
        }
    }
}
