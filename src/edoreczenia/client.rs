//! The UA API client: the office's mailbox (`/{ADE}/…` under the base URL, `/api/v3` in use),
//! with the shared token of [`super::auth::TokenSource`] on every call.
//!
//! What an answer means for a send decides what may be done next (docs/edoreczenia.md):
//! - 429 and 503 were not taken: waited out as `Retry-After` says, then asked again;
//! - any other answer with a status (400, 500…) is the server's word that the message was not
//!   taken ([`ApiError::NotAccepted`]), so a later try is no duplicate;
//! - a connection lost after the request went out, or a 202 whose body never came, leaves the
//!   outcome unknown ([`ApiError::Uncertain`]): never repeated blindly.

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde::de::DeserializeOwned;

use super::Ade;
use super::auth::{AuthError, TokenSource};
use super::wire;

/// How the client waits.
#[derive(Debug, Clone, Copy)]
pub struct Pacing {
    /// How many 429/503 answers in a row are waited out before giving up.
    pub busy_retries: u32,
    /// The longest `Retry-After` honoured; a longer one ends the call (the job tries later).
    pub max_retry_after: Duration,
    /// The task status poll: first wait, doubling up to `poll_max`, for at most `poll_total`.
    pub poll_initial: Duration,
    pub poll_max: Duration,
    pub poll_total: Duration,
    /// Each request's timeout.
    pub timeout: Duration,
}

impl Default for Pacing {
    fn default() -> Pacing {
        Pacing {
            busy_retries: 5,
            max_retry_after: Duration::from_secs(120),
            poll_initial: Duration::from_millis(200),
            poll_max: Duration::from_secs(5),
            poll_total: Duration::from_secs(120),
            timeout: Duration::from_secs(60),
        }
    }
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No token (a configuration error when refused: it names the certificate).
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The server answered that it did not do it (or kept answering 429/503).
    #[error("e-Doręczenia {what}: HTTP {status}: {message}")]
    NotAccepted {
        what: &'static str,
        status: u16,
        message: String,
    },
    /// The request never reached the server.
    #[error("e-Doręczenia {what}: unreachable: {message}")]
    Unreachable { what: &'static str, message: String },
    /// The request went out and its answer was lost: it may have taken effect.
    #[error("e-Doręczenia {what}: outcome unknown: {message}")]
    Uncertain { what: &'static str, message: String },
    /// The answer is not what the API says it is.
    #[error("e-Doręczenia {what}: malformed answer: {message}")]
    Malformed { what: &'static str, message: String },
}

impl ApiError {
    /// For a send: whether the message may have been taken.
    pub fn is_uncertain(&self) -> bool {
        matches!(self, ApiError::Uncertain { .. })
    }
}

/// The office's mailbox on the UA API.
#[derive(Clone)]
pub struct UaClient {
    http: reqwest::Client,
    base: reqwest::Url,
    ade: Ade,
    tokens: Arc<TokenSource>,
    pacing: Pacing,
}

/// A received answer: its status and body.
struct Answer {
    status: StatusCode,
    body: Vec<u8>,
}

impl UaClient {
    /// `base` is the API's base URL (`…/api/v3`); an invalid one is a configuration error
    /// caught when settings are resolved.
    pub fn new(
        http: reqwest::Client,
        base: &str,
        ade: Ade,
        tokens: Arc<TokenSource>,
        pacing: Pacing,
    ) -> Result<UaClient, String> {
        let base = reqwest::Url::parse(&format!("{}/", base.trim_end_matches('/')))
            .map_err(|e| format!("{base:?} is not a URL: {e}"))?;
        Ok(UaClient {
            http,
            base,
            ade,
            tokens,
            pacing,
        })
    }

    pub fn ade(&self) -> &Ade {
        &self.ade
    }

    pub fn tokens(&self) -> &TokenSource {
        &self.tokens
    }

    /// `<base>/<ADE>/<segments…>`, each segment escaped.
    fn url(&self, segments: &[&str]) -> reqwest::Url {
        let mut url = self.base.clone();
        {
            let mut path = url.path_segments_mut().expect("an http base URL");
            path.pop_if_empty();
            path.push(self.ade.as_str());
            path.extend(segments);
        }
        url
    }

    /// An idempotent call (a read, or a delete whose repetition is harmless): asked again
    /// after a lost connection or a 5xx, a few times with a growing pause, before its error
    /// is returned.
    async fn read(
        &self,
        what: &'static str,
        build: impl Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
    ) -> Result<Answer, ApiError> {
        let mut pause = Duration::from_millis(200);
        for _ in 0..READ_RETRIES {
            match self.call(what, &build).await {
                Err(ApiError::Uncertain { .. } | ApiError::Unreachable { .. }) => {}
                Err(ApiError::NotAccepted { status, .. }) if status >= 500 => {}
                other => return other,
            }
            tokio::time::sleep(crate::worker::jitter(pause)).await;
            pause *= 2;
        }
        self.call(what, &build).await
    }

    /// Sends a request built by `build` with the token; a 401 is answered once with a fresh
    /// token (the old one was revoked), and 429/503 are waited out as `Retry-After` says.
    async fn call(
        &self,
        what: &'static str,
        build: impl Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
    ) -> Result<Answer, ApiError> {
        let mut busy = 0u32;
        let mut renewed = false;
        loop {
            let token = self.tokens.token().await?;
            let sent = build(&self.http, &token)
                .timeout(self.pacing.timeout)
                .send()
                .await;
            let response = match sent {
                Ok(r) => r,
                Err(e) if e.is_connect() => {
                    return Err(ApiError::Unreachable {
                        what,
                        message: error_chain(&e),
                    });
                }
                Err(e) => {
                    return Err(ApiError::Uncertain {
                        what,
                        message: error_chain(&e),
                    });
                }
            };
            let status = response.status();
            let retry_after = retry_after(response.headers());
            if status == StatusCode::UNAUTHORIZED && !renewed {
                renewed = true;
                self.tokens.forget().await;
                continue;
            }
            if matches!(
                status,
                StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
            ) {
                busy += 1;
                let wait = retry_after.unwrap_or(Duration::from_secs(1 << busy.min(6)));
                if busy > self.pacing.busy_retries || wait > self.pacing.max_retry_after {
                    return Err(ApiError::NotAccepted {
                        what,
                        status: status.as_u16(),
                        message: format!("still busy after {busy} answers (Retry-After {wait:?})"),
                    });
                }
                tracing::info!(what, status = status.as_u16(), wait = ?wait, "e-Doręczenia is busy: waiting as Retry-After says");
                tokio::time::sleep(wait).await;
                continue;
            }
            let body = response.bytes().await.map_err(|e| ApiError::Uncertain {
                what,
                message: format!("HTTP {status}, then the body was lost: {}", error_chain(&e)),
            })?;
            if !status.is_success() {
                return Err(ApiError::NotAccepted {
                    what,
                    status: status.as_u16(),
                    message: error_text(&body),
                });
            }
            return Ok(Answer {
                status,
                body: body.to_vec(),
            });
        }
    }

    async fn call_json<T: DeserializeOwned>(
        &self,
        what: &'static str,
        build: impl Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
    ) -> Result<T, ApiError> {
        let answer = self.read(what, build).await?;
        serde_json::from_slice(&answer.body).map_err(|e| ApiError::Malformed {
            what,
            message: format!("HTTP {}: {e}", answer.status),
        })
    }

    /// `POST /{ADE}/messages`: the message is taken for sending; the task's id.
    pub async fn send(&self, message: &wire::Message) -> Result<String, ApiError> {
        let url = self.url(&["messages"]);
        let body = serde_json::to_vec(message).expect("a message serializes");
        let answer = self
            .call("send", |http, token| {
                http.post(url.clone())
                    .bearer_auth(token)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.clone())
            })
            .await?;
        task_of("send", &answer)
    }

    /// The drafts path, for a message whose attachments are over the 15 MB a direct send may
    /// carry: `POST /{ADE}/drafts` (the message without its files), each file uploaded to
    /// `/{ADE}/{draft}/attachments/upload` (multipart, its size and SHA-3 given), then
    /// `POST /{ADE}/drafts/send`, answered 202 with the task, as a direct send is.
    ///
    /// Until the last call nothing is sent: a failure before it leaves at most a draft in
    /// the office's box, and the letter may be tried again. The last call's outcome is
    /// uncertain in the same ways as a direct send's.
    pub async fn send_by_draft(&self, message: &wire::Message) -> Result<String, ApiError> {
        let mut draft = message.clone();
        let attachments = std::mem::take(&mut draft.attachments);
        let body = serde_json::to_vec(&draft).expect("a message serializes");
        let url = self.url(&["drafts"]);
        let created = self
            .call("create draft", |http, token| {
                http.post(url.clone())
                    .bearer_auth(token)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.clone())
            })
            .await
            .and_then(|a| expect_json::<DraftCreated>("create draft", &a))?;
        // Not sent yet: an error here is a refusal or a failure to try again, never uncertain.
        let not_sent = |e: ApiError| match e {
            ApiError::Uncertain { what, message } => ApiError::NotAccepted {
                what,
                status: 503,
                message: format!("{message} (the draft was not sent)"),
            },
            other => other,
        };
        for attachment in &attachments {
            let meta = &attachment.file.file_metadata;
            let content = base64::Engine::decode(
                &base64::engine::general_purpose::STANDARD,
                attachment.file.file.as_deref().unwrap_or(""),
            )
            .map_err(|e| ApiError::Malformed {
                what: "upload attachment",
                message: format!("{}: {e}", meta.filename),
            })?;
            let url = self.url(&[created.message_id.as_str(), "attachments", "upload"]);
            self.call("upload attachment", |http, token| {
                let file = reqwest::multipart::Part::bytes(content.clone())
                    .file_name(meta.filename.clone());
                let form = reqwest::multipart::Form::new()
                    .text("filename", meta.filename.clone())
                    .text("contentType", meta.content_type.clone())
                    .text("size", meta.size.to_string())
                    .text("alg", meta.alg.clone())
                    .text("hash", meta.hash.clone())
                    .part("file", file);
                http.post(url.clone()).bearer_auth(token).multipart(form)
            })
            .await
            .map_err(not_sent)?;
        }
        let url = self.url(&["drafts", "send"]);
        let body = serde_json::json!({ "messageId": created.message_id });
        let answer = self
            .call("send draft", |http, token| {
                http.post(url.clone()).bearer_auth(token).json(&body)
            })
            .await?;
        task_of("send draft", &answer)
    }

    /// Polls the task with a growing wait until it is FINISHED, then reads its result.
    pub async fn await_task(&self, task_id: &str) -> Result<Vec<wire::TaskResult>, ApiError> {
        let status_url = self.url(&["messages", "tasks", task_id, "status"]);
        let started = tokio::time::Instant::now();
        let mut wait = self.pacing.poll_initial;
        let mut failures = 0u32;
        loop {
            let polled: Result<wire::MessageTaskStatus, ApiError> = self
                .call_json("task status", |http, token| {
                    http.get(status_url.clone()).bearer_auth(token)
                })
                .await;
            match polled {
                Ok(s) if s.message_task_status == wire::TaskStatus::Finished => break,
                Ok(_) => failures = 0,
                // A poll that fails changes nothing on the server: poll again, a few times.
                Err(e @ ApiError::Auth(AuthError::Refused { .. })) => return Err(e),
                Err(e) => {
                    failures += 1;
                    if failures > 5 {
                        return Err(e);
                    }
                    tracing::debug!(task = task_id, error = %e, "task status poll failed; polling again");
                }
            }
            if started.elapsed() > self.pacing.poll_total {
                return Err(ApiError::Uncertain {
                    what: "task status",
                    message: format!(
                        "task {task_id} not finished after {:?}",
                        self.pacing.poll_total
                    ),
                });
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(self.pacing.poll_max);
        }
        let task_url = self.url(&["messages", "tasks", task_id]);
        self.call_json("task", |http, token| {
            http.get(task_url.clone()).bearer_auth(token)
        })
        .await
    }

    /// The office's sent messages whose subject is `subject` (`label=SENT`, metadata only,
    /// which does not mark them opened).
    pub async fn sent_with_subject(&self, subject: &str) -> Result<Vec<wire::Message>, ApiError> {
        let url = self.url(&["messages"]);
        let listing: wire::MessagesWrapper = self
            .call_json("sent messages", |http, token| {
                http.get(url.clone()).bearer_auth(token).query(&[
                    ("label", "SENT"),
                    ("format", "metadata"),
                    ("subject", subject),
                    ("limit", "50"),
                ])
            })
            .await?;
        Ok(listing
            .messages
            .into_iter()
            .filter(|m| m.message_metadata.subject.as_deref() == Some(subject))
            .collect())
    }

    /// The ids of the messages waiting in the office's inbox (`label=INBOX`, minimal), at most
    /// `limit`, oldest first as the operator lists them.
    pub async fn inbox(&self, limit: u32) -> Result<Vec<String>, ApiError> {
        let url = self.url(&["messages"]);
        let limit = limit.to_string();
        let listing: wire::MessagesWrapper = self
            .call_json("inbox", |http, token| {
                http.get(url.clone()).bearer_auth(token).query(&[
                    ("label", "INBOX"),
                    ("format", "minimal"),
                    ("limit", limit.as_str()),
                ])
            })
            .await?;
        listing
            .messages
            .into_iter()
            .map(|m| {
                m.message_metadata.message_id.ok_or(ApiError::Malformed {
                    what: "inbox",
                    message: "a listed message has no messageId".into(),
                })
            })
            .collect()
    }

    /// A received message in full, its files' content included (`format=fullExtended`;
    /// reading it so is the office's receipt in law). `None` while the operator answers 202
    /// (the message is still being prepared): ask again later.
    pub async fn received(&self, message_id: &str) -> Result<Option<wire::Message>, ApiError> {
        let url = self.url(&["messages", message_id]);
        let answer = self
            .read("received message", |http, token| {
                http.get(url.clone())
                    .bearer_auth(token)
                    .query(&[("format", "fullExtended")])
            })
            .await?;
        if answer.status == StatusCode::ACCEPTED {
            return Ok(None);
        }
        // This version answers an array (older ones one object): both are read.
        let malformed = |e: serde_json::Error| ApiError::Malformed {
            what: "received message",
            message: format!("{message_id}: {e}"),
        };
        let value: serde_json::Value = serde_json::from_slice(&answer.body).map_err(malformed)?;
        let message: wire::Message = match value {
            serde_json::Value::Array(mut items) if items.len() == 1 => {
                serde_json::from_value(items.remove(0)).map_err(malformed)?
            }
            serde_json::Value::Array(items) => {
                return Err(ApiError::Malformed {
                    what: "received message",
                    message: format!("{message_id}: {} messages where one was asked", items.len()),
                });
            }
            one => serde_json::from_value(one).map_err(malformed)?,
        };
        Ok(Some(message))
    }

    /// `DELETE /{ADE}/messages/{id}`: the office has the message. A message already gone
    /// (deleted by an earlier call whose answer was lost) counts as deleted.
    pub async fn delete_received(&self, message_id: &str) -> Result<(), ApiError> {
        let url = self.url(&["messages", message_id]);
        match self
            .read("delete message", |http, token| {
                http.delete(url.clone()).bearer_auth(token)
            })
            .await
        {
            Ok(_) | Err(ApiError::NotAccepted { status: 404, .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The address database (SE API `POST /search/bae_search`, on the endpoint's origin):
    /// the active addresses of the owner of `ids` (`{"pesel": …}`, `{"nip": …}`…).
    pub async fn search_addresses(&self, ids: &serde_json::Value) -> Result<Vec<String>, ApiError> {
        let mut url = self.base.clone();
        url.set_path("/search/bae_search");
        let body = serde_json::json!({ "officialIds": ids });
        let found: BaeAnswer = self
            .call_json("address search", |http, token| {
                http.post(url.clone()).bearer_auth(token).json(&body)
            })
            .await?;
        Ok(found
            .addresses
            .into_iter()
            .filter(|a| a.status.as_deref().is_none_or(|s| s == "ACTIVE"))
            .map(|a| a.e_delivery_address)
            .collect())
    }

    /// `GET /{ADE}/messages/{id}/evidences`.
    pub async fn evidences(&self, message_id: &str) -> Result<Vec<wire::Evidence>, ApiError> {
        let url = self.url(&["messages", message_id, "evidences"]);
        let wrapper: wire::EvidenceWrapper = self
            .call_json("evidences", |http, token| {
                http.get(url.clone()).bearer_auth(token)
            })
            .await?;
        Ok(wrapper.evidences)
    }

    /// An evidence's XML as received: `GET /{ADE}/evidences/{purde|puh}/{id}`.
    pub async fn evidence_file(
        &self,
        shipping: wire::ShippingService,
        evidence_id: &str,
    ) -> Result<Vec<u8>, ApiError> {
        let service = match shipping {
            wire::ShippingService::Electronic => "purde",
            wire::ShippingService::Hybrid => "puh",
        };
        let url = self.url(&["evidences", service, evidence_id]);
        Ok(self
            .read("evidence file", |http, token| {
                http.get(url.clone()).bearer_auth(token)
            })
            .await?
            .body)
    }
}

/// The task of a send answered 202. The message was taken: an unreadable answer leaves
/// only the task id unknown.
fn task_of(what: &'static str, answer: &Answer) -> Result<String, ApiError> {
    if answer.status != StatusCode::ACCEPTED {
        return Err(ApiError::Malformed {
            what,
            message: format!("HTTP {} where 202 was expected", answer.status),
        });
    }
    let info: wire::MessageInfo =
        serde_json::from_slice(&answer.body).map_err(|e| ApiError::Uncertain {
            what,
            message: format!("202 without a task id: {e}"),
        })?;
    Ok(info.message_task_id)
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct DraftCreated {
    message_id: String,
}

/// A JSON answer's body, or why it is not one.
fn expect_json<T: DeserializeOwned>(what: &'static str, answer: &Answer) -> Result<T, ApiError> {
    serde_json::from_slice(&answer.body).map_err(|e| ApiError::Malformed {
        what,
        message: format!("HTTP {}: {e}", answer.status),
    })
}

#[derive(serde::Deserialize)]
struct BaeAnswer {
    #[serde(default)]
    addresses: Vec<BaeAddress>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct BaeAddress {
    e_delivery_address: String,
    #[serde(default)]
    status: Option<String>,
}

/// How many times a read is asked again after a lost connection or a 5xx.
pub const READ_RETRIES: u32 = 3;

/// `Retry-After` in seconds (the form the operator uses; an HTTP date is not honoured).
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// What an error answer says: `ErrorInfo` when it is one, else the start of the body.
fn error_text(body: &[u8]) -> String {
    match serde_json::from_slice::<wire::ErrorInfo>(body) {
        Ok(info) => format!("{}: {}", info.error, info.error_description),
        Err(_) => String::from_utf8_lossy(body).chars().take(300).collect(),
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
