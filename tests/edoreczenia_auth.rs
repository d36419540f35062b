//! The office system's e-Doręczenia token, against the emulator's token endpoint over
//! loopback (issue 17, point 1, "Auth"): fetched once for many calls, refreshed before it
//! expires; an assertion signed with the wrong key, expired, or for the wrong audience is
//! refused, and the client reports a configuration error that names the certificate.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use eurzad::edoreczenia::Ade;
use eurzad::edoreczenia::auth::{AssertionClaims, AuthError, SystemCredentials, TokenSource, sign};
use eurzad::emulator::demo_pki;
use eurzad::emulator::edoreczenia::{REALM_PATH, TokenEndpoint, TokenSettings};

const ROGUE_KEY: &[u8] = include_bytes!("../fixtures/pki/rogue.key");
const ADE: &str = "AE:PL-12345-67890-ABCDE-12";

struct Operator {
    endpoint: TokenEndpoint,
    realm: String,
}

/// The emulator's token endpoint on a loopback port, with the office's demo system
/// registered under its certificate.
async fn operator(token_lifetime: Duration) -> Operator {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let realm = format!("http://{}{REALM_PATH}", listener.local_addr().unwrap());
    let endpoint = TokenEndpoint::new(TokenSettings {
        realm: realm.clone(),
        systems: HashMap::from([(
            format!("{ADE}.SYSTEM.eurzad"),
            demo_pki::OFFICE_CERT.to_vec(),
        )]),
        token_lifetime,
        leeway: Duration::ZERO,
    });
    let router = endpoint.router();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    Operator { endpoint, realm }
}

fn credentials(key: &[u8]) -> SystemCredentials {
    SystemCredentials {
        ade: ADE.parse::<Ade>().unwrap(),
        system_name: "eurzad".into(),
        private_key_pem: key.to_vec(),
        certificate_label: "edoreczenia.system_certificate (/etc/eurzad/edor.pem)".into(),
    }
}

fn http() -> reqwest::Client {
    eurzad::install_crypto_provider();
    reqwest::Client::builder().no_proxy().build().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn one_token_serves_many_calls_and_is_renewed_before_it_expires() {
    let operator = operator(Duration::from_secs(60)).await;
    // Renewed when less than 59.4 s are left: the token serves 0.6 s here.
    let source = Arc::new(
        TokenSource::new(http(), &operator.realm, credentials(demo_pki::OFFICE_KEY))
            .refresh_before(Duration::from_millis(59_400)),
    );
    // 50 tasks at once: one fetch, one token.
    let calls: Vec<_> = (0..50)
        .map(|_| {
            let source = source.clone();
            tokio::spawn(async move { source.token().await.unwrap() })
        })
        .collect();
    let mut tokens = Vec::new();
    for call in calls {
        tokens.push(call.await.unwrap());
    }
    tokens.sort();
    tokens.dedup();
    assert_eq!(tokens.len(), 1, "every task got the same token");
    assert_eq!(source.fetches(), 1);
    assert_eq!(operator.endpoint.issued(), 1);
    assert_eq!(
        operator.endpoint.system_of(&tokens[0]).as_deref(),
        Some("AE:PL-12345-67890-ABCDE-12.SYSTEM.eurzad")
    );
    // Still fresh: no fetch.
    assert_eq!(source.token().await.unwrap(), tokens[0]);
    assert_eq!(operator.endpoint.issued(), 1);
    // Near its end (0.6 s in, 59.4 s left): a new one, before the old one expired.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let renewed = source.token().await.unwrap();
    assert_ne!(renewed, tokens[0]);
    assert_eq!(operator.endpoint.issued(), 2);
    assert!(
        operator.endpoint.system_of(&tokens[0]).is_some(),
        "the old token had not expired yet"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_system_signing_with_the_wrong_key_gets_an_error_that_names_the_certificate() {
    let operator = operator(Duration::from_secs(300)).await;
    let source = TokenSource::new(http(), &operator.realm, credentials(ROGUE_KEY));
    let err = source.token().await.unwrap_err();
    assert!(
        matches!(err, AuthError::Refused { status: 401, .. }),
        "{err:?}"
    );
    let message = err.to_string();
    for part in [
        "edoreczenia.system_certificate (/etc/eurzad/edor.pem)",
        "AE:PL-12345-67890-ABCDE-12.SYSTEM.eurzad",
        "signature does not verify",
        "registered",
    ] {
        assert!(message.contains(part), "{part:?} in {message}");
    }
    assert_eq!(operator.endpoint.issued(), 0);
}

/// Posts a hand-made assertion; the endpoint's answer: (status, error_description).
async fn post(operator: &Operator, claims: &AssertionClaims, login_hint: &str) -> (u16, String) {
    let assertion = sign(claims, demo_pki::OFFICE_KEY).unwrap();
    let answer = http()
        .post(format!("{}/protocol/openid-connect/token", operator.realm))
        .query(&[("login_hint", login_hint)])
        .form(&[
            ("grant_type", "client_credentials"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion.as_str()),
        ])
        .send()
        .await
        .unwrap();
    let status = answer.status().as_u16();
    let body: serde_json::Value = answer.json().await.unwrap();
    (
        status,
        body["error_description"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_wrong_audience_wrong_subject_and_unregistered_assertions_are_refused() {
    let operator = operator(Duration::from_secs(300)).await;
    let now = chrono::Utc::now().timestamp();
    let system = format!("{ADE}.SYSTEM.eurzad");
    let good = AssertionClaims {
        iss: system.clone(),
        sub: system.clone(),
        aud: operator.realm.clone(),
        jti: "1".into(),
        iat: now,
        exp: now + 300,
    };
    let hint = format!("ADE.{ADE}");
    assert_eq!(
        post(&operator, &good, &hint).await.0,
        200,
        "the good one passes"
    );
    let cases = [
        (
            AssertionClaims {
                exp: now - 10,
                iat: now - 310,
                ..good.clone()
            },
            hint.clone(),
            401,
            "expired",
        ),
        (
            AssertionClaims {
                aud: "https://elsewhere.example/auth/realms/EDOR".into(),
                ..good.clone()
            },
            hint.clone(),
            401,
            "audience",
        ),
        (
            AssertionClaims {
                sub: "someone-else".into(),
                ..good.clone()
            },
            hint.clone(),
            401,
            "sub must equal iss",
        ),
        (
            AssertionClaims {
                iss: "AE:PL-00000-00000-ZZZZZ-00.SYSTEM.eurzad".into(),
                sub: "AE:PL-00000-00000-ZZZZZ-00.SYSTEM.eurzad".into(),
                ..good.clone()
            },
            hint.clone(),
            401,
            "not registered",
        ),
        (
            good.clone(),
            "ADE.AE:PL-00000-00000-ZZZZZ-00".into(),
            400,
            "login_hint",
        ),
    ];
    for (claims, login_hint, status, why) in cases {
        let (got, description) = post(&operator, &claims, &login_hint).await;
        assert_eq!(got, status, "{why}: {description}");
        assert!(description.contains(why), "{why:?} in {description:?}");
    }
    assert_eq!(
        operator.endpoint.issued(),
        1,
        "only the good one got a token"
    );
}
