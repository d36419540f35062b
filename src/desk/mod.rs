//! The officials' desk (`[desk] listen`): server-rendered pages, in Polish, where officials
//! sign in, see the queue of access requests with their deadlines, read a request (the
//! form as read, the signature report, each representation with its proof, the original
//! document, the reply letters with their proofs, the audit trail), and decide it. A
//! decision goes through [`crate::requests::decide`], the same code path as `eurzad
//! requests approve|reject`, under the official's login.
//!
//! Plain forms, no JavaScript. Every form carries the session's CSRF token; the session
//! cookie is HttpOnly, SameSite=Strict and Secure (docs/desk.md).

mod auth;
mod pages;

pub use auth::{hash_password, password_matches};

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};

use crate::forms::Registry;
use crate::store::Store;

/// What the desk needs, resolved from `[desk]`.
#[derive(Debug, Clone)]
pub struct DeskSettings {
    /// The address officials open (links in e-mails); None: links are not written.
    pub public_url: Option<String>,
    pub session_ttl: Duration,
    /// Cookies without `Secure` (plain http on loopback only).
    pub insecure_ok: bool,
    pub sign_in_attempts: u32,
    pub sign_in_window: Duration,
    pub zone: chrono_tz::Tz,
}

impl DeskSettings {
    pub fn from_config(config: &crate::config::DeskConfig, zone: chrono_tz::Tz) -> Self {
        DeskSettings {
            public_url: config
                .public_url
                .as_ref()
                .map(|u| u.trim_end_matches('/').to_string()),
            session_ttl: config.session_ttl,
            insecure_ok: config.insecure_ok(),
            sign_in_attempts: config.sign_in_attempts,
            sign_in_window: config.sign_in_window,
            zone,
        }
    }
}

/// A request's page under `public_url`, for the e-mails.
pub fn request_link(public_url: &str, request_id: i64) -> String {
    format!("{}/requests/{request_id}", public_url.trim_end_matches('/'))
}

struct Desk {
    store: Store,
    registry: Arc<Registry>,
    settings: DeskSettings,
    limit: auth::SignInLimit,
}

#[derive(Clone)]
pub struct DeskState(Arc<Desk>);

/// The desk's routes.
pub fn router(store: Store, registry: Arc<Registry>, settings: DeskSettings) -> Router {
    let limit = auth::SignInLimit::new(settings.sign_in_attempts, settings.sign_in_window);
    let state = DeskState(Arc::new(Desk {
        store,
        registry,
        settings,
        limit,
    }));
    Router::new()
        .route("/", get(pages::queue))
        .route("/login", get(pages::sign_in_form).post(pages::sign_in))
        .route("/logout", post(pages::sign_out))
        .route("/status", get(pages::status))
        .route("/requests/{id}", get(pages::request))
        .route("/requests/{id}/document", get(pages::document))
        .route("/requests/{id}/approve", post(pages::approve))
        .route("/requests/{id}/reject", post(pages::reject))
        .fallback(pages::not_found)
        .with_state(state)
}
