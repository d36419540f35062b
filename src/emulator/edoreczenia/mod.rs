//! The e-Doręczenia emulator: the operator's side of what `edoreczenia/` speaks, on the same
//! [`crate::edoreczenia::wire`] types, under `/api/v3`:
//! - the token endpoint ([`token`]), judging the system's client assertion;
//! - `POST /{ADE}/messages`: checked as the operator checks (recipients, the text body's
//!   length, each attachment's size and SHA-3 hash, lower-case extensions, PDF only for the
//!   hybrid service), answered 202 with a task; the task's status and result;
//! - the drafts path of a message over 15 MB: `POST /{ADE}/drafts`, a multipart upload to
//!   `/{ADE}/{draft}/attachments/upload` (size and SHA-3 checked), `POST /{ADE}/drafts/send`
//!   (drafts are kept in memory only);
//! - the hybrid service: a postal address and a printing order instead of an ADE, PDF only;
//!   its evidences H.DW, H.PN (posted) and H.EPO (received);
//! - `GET /{ADE}/messages?label=SENT`: the office's sent messages (metadata);
//! - evidences over simulated time ([`mailbox`]): A.1 at once, D.1 when the letter is in the
//!   recipient's box, E.1 when the recipient opens it (after the days its address is set to
//!   wait, or through the admin API), nothing more when they never do; each evidence is XML
//!   sealed with the operator's key;
//! - `POST /search/bae_search`: the address database over the configured addresses;
//! - fault injection per operation: HTTP 500, 429 with `Retry-After`, a connection dropped
//!   after the request took effect, a slow answer.
//!
//! The emulator's clock is the real one moved by `clock_offset`, and messages can be taken
//! as if sent `backdate` ago: their D.1 is then days old, and deemed delivery (or a pickup
//! after some days) can be seen without waiting.
//! State is kept on disk (one file per message and per evidence, written atomically).
//!
//! Admin API: `POST /admin/edoreczenia/inbox` (a citizen's message to an office's box;
//! `GET` lists them with their fetches and deletion), `POST /admin/edoreczenia/addresses`, `POST /admin/edoreczenia/messages/{id}/open`,
//! `GET /admin/edoreczenia/sent`, `GET /admin/edoreczenia/counters`,
//! `POST|DELETE /admin/edoreczenia/faults`.

mod inbox;
mod mailbox;
mod token;

pub use inbox::{InboxFile, InboxMessage, NewInboxMessage};
pub use mailbox::{AddressEntry, SentMessage, UaCounters};
pub use token::{REALM_PATH, TokenEndpoint, TokenSettings};

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use chrono::{DateTime, Utc};

use super::faults::{FaultKind, FaultPlan, FaultRule};
use crate::edoreczenia::wire;
use crate::xmldsig::SigningKey;
use inbox::Inbox;
use mailbox::Mailbox;

/// The API's base path.
pub const API_PATH: &str = "/api/v3";

/// How the emulator behaves.
#[derive(Clone)]
pub struct UaSettings {
    pub state_dir: PathBuf,
    /// The token endpoint (the realm URL must be the one clients are configured with).
    pub token: TokenSettings,
    /// The operator's seal on evidences.
    pub operator_key: SigningKey,
    /// Addresses that exist from the start, with their owners' behaviour.
    pub addresses: Vec<AddressEntry>,
    /// The emulator's clock is the real one plus this.
    pub clock_offset: chrono::TimeDelta,
    /// Messages are taken as if sent this long ago: their evidences fall due on the
    /// emulator's clock as if that time had passed (deemed delivery can be seen at once,
    /// and a recipient who opens after a few days has done so).
    pub backdate: chrono::TimeDelta,
    /// How long a send task stays PENDING.
    pub task_delay: Duration,
    /// How long after the send a message is in the recipient's box (D.1), or a letter on
    /// paper is posted (H.PN).
    pub box_delay: Duration,
    /// How long the post takes a letter on paper to its addressee (H.EPO after H.PN).
    pub paper_delivery: Duration,
    pub seed: u64,
    /// Random faults (500, 429, drop, slow) on this share of API requests.
    pub fault_rate: Option<f64>,
    pub slow_delay: Duration,
}

/// A running emulator.
#[derive(Clone)]
pub struct UaEmulator {
    inner: Arc<Inner>,
}

struct Inner {
    settings: UaSettings,
    tokens: TokenEndpoint,
    mailbox: Mutex<Mailbox>,
    inbox: Mutex<Inbox>,
    faults: Mutex<FaultPlan>,
    /// Drafts (the path of messages over 15 MB), by (ADE, draft id): the message and the
    /// attachments uploaded to it. Kept in memory: a draft is gone after a restart, and
    /// sending it is refused, so the client starts again.
    drafts: Mutex<HashMap<(String, String), wire::Message>>,
}

/// The kinds a random fault of the UA API is chosen among.
const RANDOM_FAULTS: [FaultKind; 4] = [
    FaultKind::Http500,
    FaultKind::TooManyRequests,
    FaultKind::Drop,
    FaultKind::Slow,
];

impl UaEmulator {
    pub fn open(settings: UaSettings) -> Result<UaEmulator, String> {
        settings
            .operator_key
            .validate()
            .map_err(|e| format!("operator key: {e}"))?;
        let mut mailbox = Mailbox::open(&settings.state_dir.join("edoreczenia"))?;
        for address in &settings.addresses {
            mailbox.add_address(address.clone(), false)?;
        }
        let inbox = Inbox::open(&settings.state_dir.join("edoreczenia/inbox"))?;
        let mut plan = FaultPlan::new(settings.seed);
        if let Some(rate) = settings.fault_rate {
            plan.add(FaultRule {
                kind: FaultKind::Random,
                operation: None,
                probability: Some(rate),
                count: None,
                delay_ms: settings.slow_delay.as_millis() as u64,
            });
        }
        Ok(UaEmulator {
            inner: Arc::new(Inner {
                tokens: TokenEndpoint::new(settings.token.clone()),
                settings,
                mailbox: Mutex::new(mailbox),
                inbox: Mutex::new(inbox),
                faults: Mutex::new(plan),
                drafts: Mutex::default(),
            }),
        })
    }

    /// The emulator's time.
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.inner.settings.clock_offset
    }

    pub fn tokens(&self) -> &TokenEndpoint {
        &self.inner.tokens
    }

    fn mailbox(&self) -> std::sync::MutexGuard<'_, Mailbox> {
        self.inner.mailbox.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn inbox(&self) -> std::sync::MutexGuard<'_, Inbox> {
        self.inner.inbox.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A citizen's message put into an office's box (as `POST /admin/edoreczenia/inbox`).
    pub fn put_inbox(&self, message: NewInboxMessage) -> Result<String, String> {
        let now = self.now();
        self.inbox().put(message, now)
    }

    /// Every message put into an inbox, deleted ones included.
    pub fn inbox_messages(&self) -> Vec<InboxMessage> {
        self.inbox().all().to_vec()
    }

    pub fn counters(&self) -> UaCounters {
        self.mailbox().counters()
    }

    /// Every message sent, oldest first.
    pub fn sent(&self) -> Vec<SentMessage> {
        self.mailbox().sent().to_vec()
    }

    /// The recipient opens message `id` now (as `POST /admin/edoreczenia/messages/{id}/open`).
    pub fn open_message(&self, id: &str) -> Result<(), String> {
        let now = self.now();
        self.mailbox().open_message(id, now)
    }

    pub fn add_fault(&self, rule: FaultRule) {
        self.inner
            .faults
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .add(rule);
    }

    pub fn router(&self) -> Router {
        let api = Router::new()
            .route("/{ade}/messages", post(send).get(list_messages))
            .route("/{ade}/messages/tasks/{task}/status", get(task_status))
            .route("/{ade}/messages/tasks/{task}", get(task_result))
            .route(
                "/{ade}/messages/{id}",
                get(received_message).delete(delete_message),
            )
            .route("/{ade}/drafts", post(create_draft))
            .route("/{ade}/drafts/send", post(send_draft))
            .route("/{ade}/{id}/attachments/upload", post(upload_attachment))
            .route("/{ade}/messages/{id}/evidences", get(evidences))
            .route("/{ade}/evidences/{service}/{id}", get(evidence_file));
        Router::new()
            .nest(API_PATH, api)
            .route("/search/bae_search", post(bae_search))
            .route("/admin/edoreczenia/addresses", post(admin_add_address))
            .route("/admin/edoreczenia/messages/{id}/open", post(admin_open))
            .route("/admin/edoreczenia/sent", get(admin_sent))
            .route(
                "/admin/edoreczenia/inbox",
                post(admin_put_inbox).get(admin_inbox),
            )
            .route("/admin/edoreczenia/counters", get(admin_counters))
            .route(
                "/admin/edoreczenia/faults",
                post(admin_add_fault).delete(admin_clear_faults),
            )
            .layer(DefaultBodyLimit::max(64 * 1024 * 1024))
            .with_state(self.clone())
            .merge(self.inner.tokens.router())
    }

    /// The system the request's bearer token was issued to, and that it may use `ade`.
    fn authorize(&self, headers: &HeaderMap, ade: Option<&str>) -> Result<String, Box<Response>> {
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| {
                Box::new(error(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "no bearer token",
                ))
            })?;
        let system = self.inner.tokens.system_of(token).ok_or_else(|| {
            Box::new(error(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "the token is unknown or expired",
            ))
        })?;
        if let Some(ade) = ade
            && !system.starts_with(&format!("{ade}.SYSTEM."))
        {
            return Err(Box::new(error(
                StatusCode::FORBIDDEN,
                "forbidden",
                &format!("system {system} has no rights to {ade}"),
            )));
        }
        Ok(system)
    }

    /// The fault for `operation`, if the plan fires one: a response now (before processing),
    /// or what to do to the answer (after).
    fn fault(&self, operation: &str) -> Result<Option<(FaultKind, u64)>, Box<Response>> {
        let fired = self
            .inner
            .faults
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .decide_among(operation, &RANDOM_FAULTS);
        if fired.is_some() {
            self.mailbox().count_fault();
        }
        match fired {
            Some((FaultKind::Http500, _)) => Err(Box::new(
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "injected fault: internal server error",
                )
                    .into_response(),
            )),
            Some((FaultKind::TooManyRequests, delay)) => Err(Box::new((
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, delay.div_ceil(1000).max(1).to_string())],
                axum::Json(serde_json::json!({"error": "too_many_requests", "error_description": "injected fault"})),
            )
                .into_response())),
            other => Ok(other),
        }
    }
}

fn error(status: StatusCode, code: &str, description: &str) -> Response {
    (
        status,
        axum::Json(wire::ErrorInfo {
            error: code.to_string(),
            error_description: description.to_string(),
        }),
    )
        .into_response()
}

/// The answer as a fault after processing leaves it.
async fn after(fault: Option<(FaultKind, u64)>, answer: Response) -> Response {
    match fault {
        Some((FaultKind::Slow, delay)) => {
            tokio::time::sleep(Duration::from_millis(delay)).await;
            answer
        }
        Some((FaultKind::Drop, _)) => {
            let (parts, body) = answer.into_parts();
            let bytes = axum::body::to_bytes(body, usize::MAX)
                .await
                .unwrap_or_default();
            let half = Bytes::copy_from_slice(&bytes[..bytes.len() / 2]);
            let stream = futures_util::stream::iter(vec![
                Ok(half),
                Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "injected drop",
                )),
            ]);
            let mut response = Response::from_parts(parts, Body::from_stream(stream));
            response
                .headers_mut()
                .insert(header::CONTENT_LENGTH, bytes.len().into());
            response
        }
        Some((FaultKind::TamperedBody, _)) => {
            // One character of the sealed content changed after sealing (evidence files).
            let (parts, body) = answer.into_parts();
            let mut bytes = axum::body::to_bytes(body, usize::MAX)
                .await
                .unwrap_or_default()
                .to_vec();
            let marker = b"<ev:SenderDetails>A";
            if let Some(at) = bytes.windows(marker.len()).position(|w| w == marker) {
                bytes[at + marker.len() - 1] = b'X';
            }
            let mut response = Response::from_parts(parts, Body::from(bytes));
            response.headers_mut().remove(header::CONTENT_LENGTH);
            response
        }
        _ => answer,
    }
}

macro_rules! guarded {
    ($emulator:expr, $headers:expr, $ade:expr, $operation:expr) => {{
        if let Err(refused) = $emulator.authorize(&$headers, $ade) {
            return *refused;
        }
        match $emulator.fault($operation) {
            Ok(fault) => fault,
            Err(response) => return *response,
        }
    }};
}

async fn send(
    State(emulator): State<UaEmulator>,
    Path(ade): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fault = guarded!(emulator, headers, Some(&ade), "send");
    let message = match message_of(&body, "message") {
        Ok(m) => m,
        Err(refused) => return *refused,
    };
    let now = emulator.now();
    let accepted = emulator
        .mailbox()
        .accept(&ade, message, now, &emulator.inner.settings, false);
    after(fault, task_answer(accepted)).await
}

/// A request body read as a `Message`, or the 400 that names what (`message`, `draft`) is not one.
fn message_of(body: &[u8], what: &str) -> Result<wire::Message, Box<Response>> {
    serde_json::from_slice(body).map_err(|e| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            "invalid_message",
            &format!("the {what} is not a Message: {e}"),
        ))
    })
}

/// A send's answer: 202 with its task, or 400 with why it was refused.
fn task_answer(accepted: Result<String, String>) -> Response {
    match accepted {
        Ok(task) => (
            StatusCode::ACCEPTED,
            axum::Json(wire::MessageInfo {
                message_task_id: task,
                warning: None,
            }),
        )
            .into_response(),
        Err(why) => error(StatusCode::BAD_REQUEST, "invalid_message", &why),
    }
}

/// `POST /{ADE}/drafts`: a draft of a message, its attachments to come one by one.
async fn create_draft(
    State(emulator): State<UaEmulator>,
    Path(ade): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fault = guarded!(emulator, headers, Some(&ade), "create_draft");
    let message = match message_of(&body, "draft") {
        Ok(m) => m,
        Err(refused) => return *refused,
    };
    let id = format!("draft-{:032x}", rand::random::<u128>());
    emulator
        .inner
        .drafts
        .lock()
        .expect("drafts lock")
        .insert((ade, id.clone()), message);
    after(
        fault,
        axum::Json(serde_json::json!({ "messageId": id })).into_response(),
    )
    .await
}

/// `POST /{ADE}/{messageId}/attachments/upload` (multipart: filename, contentType, size,
/// alg, hash, file): an attachment of a draft, its size and SHA-3 checked.
async fn upload_attachment(
    State(emulator): State<UaEmulator>,
    Path((ade, id)): Path<(String, String)>,
    headers: HeaderMap,
    mut form: axum::extract::Multipart,
) -> Response {
    let fault = guarded!(emulator, headers, Some(&ade), "upload_attachment");
    let mut fields: HashMap<String, String> = HashMap::new();
    let mut content: Option<Vec<u8>> = None;
    loop {
        match form.next_field().await {
            Ok(Some(field)) => {
                let name = field.name().unwrap_or("").to_string();
                match field.bytes().await {
                    Ok(bytes) if name == "file" => content = Some(bytes.to_vec()),
                    Ok(bytes) => {
                        fields.insert(name, String::from_utf8_lossy(&bytes).into_owned());
                    }
                    Err(e) => {
                        return error(
                            StatusCode::BAD_REQUEST,
                            "invalid_attachment",
                            &e.to_string(),
                        );
                    }
                }
            }
            Ok(None) => break,
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "invalid_attachment",
                    &e.to_string(),
                );
            }
        }
    }
    let Some(content) = content else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_attachment",
            "file: missing",
        );
    };
    for required in ["filename", "contentType"] {
        if fields.get(required).is_none_or(|v| v.is_empty()) {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_attachment",
                &format!("{required}: missing"),
            );
        }
    }
    if let Some(size) = fields.get("size")
        && size.parse::<u64>().ok() != Some(content.len() as u64)
    {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_attachment",
            &format!("size {size} but {} bytes", content.len()),
        );
    }
    let hash = wire::attachment_hash(&content);
    if fields.get("hash").is_some_and(|h| *h != hash) {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_attachment",
            "hash: does not match the content",
        );
    }
    let metadata = {
        let mut drafts = emulator.inner.drafts.lock().expect("drafts lock");
        let Some(draft) = drafts.get_mut(&(ade.clone(), id.clone())) else {
            return error(
                StatusCode::BAD_REQUEST,
                "not_found",
                &format!("no draft {id}"),
            );
        };
        let order = draft.attachments.len() as u32 + 1;
        let metadata = wire::FileMetadata {
            file_id: format!("{id}-{order}"),
            filename: fields["filename"].clone(),
            content_type: fields["contentType"].clone(),
            size: content.len() as u64,
            alg: wire::HASH_ALG.into(),
            hash,
        };
        draft.attachments.push(wire::Attachment {
            order: Some(order),
            attachment_id: Some(metadata.file_id.clone()),
            file: wire::FileData {
                file_metadata: metadata.clone(),
                file: Some(base64::engine::general_purpose::STANDARD.encode(&content)),
            },
        });
        metadata
    };
    after(
        fault,
        axum::Json(serde_json::json!({
            "attachmentId": metadata.file_id,
            "fileMetadata": metadata,
        }))
        .into_response(),
    )
    .await
}

/// `POST /{ADE}/drafts/send` (`{"messageId": …}`): the draft is sent as a message would be,
/// answered 202 with its task.
async fn send_draft(
    State(emulator): State<UaEmulator>,
    Path(ade): Path<String>,
    headers: HeaderMap,
    axum::Json(send): axum::Json<serde_json::Value>,
) -> Response {
    let fault = guarded!(emulator, headers, Some(&ade), "send_draft");
    let Some(id) = send["messageId"].as_str() else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_message",
            "messageId: missing",
        );
    };
    let draft = emulator
        .inner
        .drafts
        .lock()
        .expect("drafts lock")
        .remove(&(ade.clone(), id.to_string()));
    let Some(message) = draft else {
        return error(
            StatusCode::BAD_REQUEST,
            "not_found",
            &format!("no draft {id}"),
        );
    };
    let now = emulator.now();
    let accepted = emulator
        .mailbox()
        .accept(&ade, message, now, &emulator.inner.settings, true);
    after(fault, task_answer(accepted)).await
}

async fn task_status(
    State(emulator): State<UaEmulator>,
    Path((ade, task)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let fault = guarded!(emulator, headers, Some(&ade), "task_status");
    let status = emulator
        .mailbox()
        .task_status(&ade, &task, emulator.inner.settings.task_delay);
    let answer = match status {
        Some(status) => axum::Json(wire::MessageTaskStatus {
            message_task_status: status,
        })
        .into_response(),
        None => error(
            StatusCode::BAD_REQUEST,
            "not_found",
            &format!("no task {task}"),
        ),
    };
    after(fault, answer).await
}

async fn task_result(
    State(emulator): State<UaEmulator>,
    Path((ade, task)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let fault = guarded!(emulator, headers, Some(&ade), "task");
    let answer = match emulator.mailbox().task_result(&ade, &task) {
        Some(results) => axum::Json(results).into_response(),
        None => error(
            StatusCode::BAD_REQUEST,
            "not_found",
            &format!("no task {task}"),
        ),
    };
    after(fault, answer).await
}

#[derive(serde::Deserialize)]
struct ListQuery {
    label: Option<String>,
    subject: Option<String>,
    #[serde(default)]
    offset: usize,
    limit: Option<usize>,
}

async fn list_messages(
    State(emulator): State<UaEmulator>,
    Path(ade): Path<String>,
    Query(query): Query<ListQuery>,
    headers: HeaderMap,
) -> Response {
    let limit = query.limit.unwrap_or(20).clamp(1, 2000);
    match query.label.as_deref() {
        Some("SENT") => {
            let fault = guarded!(emulator, headers, Some(&ade), "messages");
            let listing =
                emulator
                    .mailbox()
                    .list_sent(&ade, query.subject.as_deref(), query.offset, limit);
            after(fault, axum::Json(listing).into_response()).await
        }
        Some("INBOX") => {
            let fault = guarded!(emulator, headers, Some(&ade), "inbox");
            let listing = emulator.inbox().list(&ade, query.offset, limit);
            after(fault, axum::Json(listing).into_response()).await
        }
        _ => error(
            StatusCode::BAD_REQUEST,
            "unsupported",
            "the emulator lists label=SENT and label=INBOX",
        ),
    }
}

/// `GET /{ADE}/messages/{id}`: a received message, in full (an array of one, as this
/// version answers).
async fn received_message(
    State(emulator): State<UaEmulator>,
    Path((ade, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let fault = guarded!(emulator, headers, Some(&ade), "message");
    let now = emulator.now();
    let answer = match emulator.inbox().read_full(&ade, &id, now) {
        Ok(message) => axum::Json(vec![message]).into_response(),
        Err(why) => error(StatusCode::NOT_FOUND, "message_not_found", &why),
    };
    after(fault, answer).await
}

/// `DELETE /{ADE}/messages/{id}`.
async fn delete_message(
    State(emulator): State<UaEmulator>,
    Path((ade, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let fault = guarded!(emulator, headers, Some(&ade), "delete");
    let now = emulator.now();
    let answer = match emulator.inbox().delete(&ade, &id, now) {
        Ok(()) => {
            axum::Json(serde_json::json!([{"messageId": id, "status": "DELETED"}])).into_response()
        }
        Err(why) => error(StatusCode::NOT_FOUND, "message_not_found", &why),
    };
    after(fault, answer).await
}

async fn admin_put_inbox(
    State(emulator): State<UaEmulator>,
    axum::Json(message): axum::Json<NewInboxMessage>,
) -> Response {
    match emulator.put_inbox(message) {
        Ok(id) => axum::Json(serde_json::json!({ "messageId": id })).into_response(),
        Err(why) => (StatusCode::BAD_REQUEST, why).into_response(),
    }
}

async fn admin_inbox(State(emulator): State<UaEmulator>) -> axum::Json<Vec<InboxMessage>> {
    axum::Json(emulator.inbox_messages())
}

async fn evidences(
    State(emulator): State<UaEmulator>,
    Path((ade, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let fault = guarded!(emulator, headers, Some(&ade), "evidences");
    let now = emulator.now();
    let key = emulator.inner.settings.operator_key.clone();
    let handle = emulator.clone();
    let listed = tokio::task::spawn_blocking(move || {
        handle.mailbox().evidences(
            &ade,
            &id,
            now,
            &key,
            handle.inner.settings.box_delay,
            handle.inner.settings.paper_delivery,
        )
    })
    .await;
    let answer = match listed {
        Ok(Ok(evidences)) => axum::Json(wire::EvidenceWrapper { evidences }).into_response(),
        Ok(Err(why)) => error(StatusCode::BAD_REQUEST, "not_found", &why),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            &e.to_string(),
        ),
    };
    after(fault, answer).await
}

async fn evidence_file(
    State(emulator): State<UaEmulator>,
    Path((ade, service, id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let fault = guarded!(emulator, headers, Some(&ade), "evidence_file");
    let service = match service.as_str() {
        "purde" => wire::ShippingService::Electronic,
        "puh" => wire::ShippingService::Hybrid,
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid",
                "messageType is puh or purde",
            );
        }
    };
    let answer = match emulator.mailbox().evidence_file(&ade, service, &id) {
        Ok(bytes) => ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response(),
        Err(why) => error(StatusCode::BAD_REQUEST, "not_found", &why),
    };
    after(fault, answer).await
}

/// `POST /search/bae_search` (SE API): `{"officialIds": {"pesel": …}}` → the addresses found.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct BaeSearch {
    official_ids: mailbox::OfficialIds,
}

async fn bae_search(
    State(emulator): State<UaEmulator>,
    headers: HeaderMap,
    axum::Json(search): axum::Json<BaeSearch>,
) -> Response {
    let fault = guarded!(emulator, headers, None, "bae_search");
    let found = emulator.mailbox().search(&search.official_ids);
    after(
        fault,
        axum::Json(serde_json::json!({ "addresses": found })).into_response(),
    )
    .await
}

async fn admin_add_address(
    State(emulator): State<UaEmulator>,
    axum::Json(entry): axum::Json<AddressEntry>,
) -> Response {
    match emulator.mailbox().add_address(entry, true) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(why) => (StatusCode::BAD_REQUEST, why).into_response(),
    }
}

async fn admin_open(State(emulator): State<UaEmulator>, Path(id): Path<String>) -> Response {
    let now = emulator.now();
    match emulator.mailbox().open_message(&id, now) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(why) => (StatusCode::NOT_FOUND, why).into_response(),
    }
}

async fn admin_sent(State(emulator): State<UaEmulator>) -> axum::Json<Vec<SentMessage>> {
    axum::Json(emulator.sent())
}

async fn admin_counters(State(emulator): State<UaEmulator>) -> axum::Json<UaCounters> {
    let mut counters = emulator.counters();
    counters.tokens_issued = emulator.inner.tokens.issued();
    axum::Json(counters)
}

async fn admin_add_fault(
    State(emulator): State<UaEmulator>,
    axum::Json(rule): axum::Json<FaultRule>,
) -> StatusCode {
    emulator.add_fault(rule);
    StatusCode::NO_CONTENT
}

async fn admin_clear_faults(State(emulator): State<UaEmulator>) -> StatusCode {
    emulator
        .inner
        .faults
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clear();
    StatusCode::NO_CONTENT
}
