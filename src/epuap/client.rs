//! The ePUAP SOAP client: pull (`oczekujaceDokumenty`, `pobierzNastepny`,
//! `potwierdzOdebranie`) and skrytka `nadaj`, every request signed and every response
//! verified against the pinned server certificate.
//!
//! Idempotent calls (the pull operations) are retried with exponential backoff on transport
//! errors and HTTP errors without a SOAP answer. `nadaj` is not idempotent on ePUAP's side
//! and is never retried here: the caller records its intent first (see docs/delivery.md).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::Utc;

use super::soap::{self, BoxRef, MessageError, NadajRequest, NadajResponse, Operation, Status};
use super::wssec::{self, Envelope, Opened, SecurityError, VerifyPolicy};
use crate::document::PulledDocument;
use crate::xml::Limits;
use crate::xmldsig::{DsigError, SigningKey};

/// Everything that can go wrong talking to ePUAP. `is_transient` tells retryable from not.
#[derive(Debug, thiserror::Error)]
pub enum EpuapError {
    #[error("{operation}: cannot reach ePUAP: {detail}")]
    Transport {
        operation: &'static str,
        detail: String,
    },
    #[error("{operation}: no answer within {timeout:?}")]
    Timeout {
        operation: &'static str,
        timeout: Duration,
    },
    #[error("{operation}: HTTP {status} without a SOAP answer")]
    Http {
        operation: &'static str,
        status: u16,
    },
    #[error("{operation}: SOAP fault, Wyjatek kod {kod}: {komunikat}")]
    Fault {
        operation: &'static str,
        kod: i32,
        komunikat: String,
    },
    #[error("{operation}: status kod {kod}: {}", komunikat.as_deref().unwrap_or("(no message)"))]
    Status {
        operation: &'static str,
        kod: i32,
        komunikat: Option<String>,
    },
    #[error("{operation}: response refused: {source}")]
    Security {
        operation: &'static str,
        source: SecurityError,
    },
    #[error("{operation}: response refused: {source}")]
    Message {
        operation: &'static str,
        source: MessageError,
    },
    #[error("{operation}: response is {size} bytes, over the limit of {limit} bytes")]
    TooLarge {
        operation: &'static str,
        size: usize,
        limit: usize,
    },
    #[error("{operation}: cannot sign the request: {source}")]
    Signing {
        operation: &'static str,
        source: DsigError,
    },
}

impl EpuapError {
    /// Worth retrying: the peer may answer differently next time.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            EpuapError::Transport { .. } | EpuapError::Timeout { .. } | EpuapError::Http { .. }
        )
    }
}

/// Internal result of reading a response: a security problem, a contract problem, or a fault.
enum ReadError {
    Security(SecurityError),
    Message(MessageError),
    Fault(i32, String),
}

impl From<SecurityError> for ReadError {
    fn from(e: SecurityError) -> Self {
        ReadError::Security(e)
    }
}

impl From<MessageError> for ReadError {
    fn from(e: MessageError) -> Self {
        ReadError::Message(e)
    }
}

/// How the client talks to ePUAP.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    /// Base URL, e.g. `https://ws.epuap.gov.pl` or `http://127.0.0.1:8088`.
    pub base_url: String,
    pub office_key: SigningKey,
    pub server_certificate_pem: Vec<u8>,
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
    pub max_attempts: u32,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    pub max_document_bytes: usize,
    pub clock_skew: Duration,
}

/// A cheap-to-clone handle.
#[derive(Clone)]
pub struct EpuapClient {
    http: reqwest::Client,
    settings: Arc<ClientSettings>,
    security_cpu: Arc<SecurityCpu>,
}

/// CPU time spent on WS-Security by a client and all its clones, since it was made: signing
/// requests, and verifying and reading answers. Both are synchronous calls, measured with
/// the calling thread's CPU clock, so the figures are exact and cost two clock reads a call.
#[derive(Debug, Default)]
struct SecurityCpu {
    signing_ns: AtomicU64,
    verifying_ns: AtomicU64,
}

/// What [`EpuapClient::security_cpu`] reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SecurityCpuTime {
    /// Building and signing request envelopes.
    pub signing: Duration,
    /// Parsing answers, verifying their signatures and reading their payloads.
    pub verifying: Duration,
}

impl SecurityCpuTime {
    /// The time spent after the reading `earlier`.
    pub fn since(self, earlier: SecurityCpuTime) -> SecurityCpuTime {
        SecurityCpuTime {
            signing: self.signing.saturating_sub(earlier.signing),
            verifying: self.verifying.saturating_sub(earlier.verifying),
        }
    }
}

impl EpuapClient {
    pub fn new(settings: ClientSettings) -> Result<EpuapClient, reqwest::Error> {
        crate::install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(settings.request_timeout)
            .connect_timeout(settings.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .build()?;
        Ok(EpuapClient {
            http,
            settings: Arc::new(settings),
            security_cpu: Arc::default(),
        })
    }

    /// CPU time this client and its clones spent signing and verifying so far.
    pub fn security_cpu(&self) -> SecurityCpuTime {
        let read = |ns: &AtomicU64| Duration::from_nanos(ns.load(Ordering::Relaxed));
        SecurityCpuTime {
            signing: read(&self.security_cpu.signing_ns),
            verifying: read(&self.security_cpu.verifying_ns),
        }
    }

    /// `oczekujaceDokumenty`: how many documents wait in the box.
    pub async fn pending_count(&self, mailbox: &BoxRef) -> Result<u64, EpuapError> {
        let op = Operation::OczekujaceDokumenty;
        let body = soap::pull_request(op, mailbox, None);
        let (status, count) = self
            .call_with_retry(op, String::new(), body, |opened, _| {
                Ok(soap::read_oczekujace(opened.payload)?)
            })
            .await?;
        check_status(op, &status)?;
        Ok(count)
    }

    /// `pobierzNastepny`: the head of the box's queue, or `None` when the box is empty.
    pub async fn fetch_next(&self, mailbox: &BoxRef) -> Result<Option<PulledDocument>, EpuapError> {
        let op = Operation::PobierzNastepny;
        let body = soap::pull_request(op, mailbox, None);
        let (status, document) = self
            .call_with_retry(op, String::new(), body, |opened, max| {
                Ok(soap::read_pobierz(opened.payload, max)?)
            })
            .await?;
        match document {
            Some(document) => {
                check_status(op, &status)?;
                Ok(Some(document))
            }
            // ePUAP answers an empty box with a bare status; some clients see kod 0, some 1.
            None if status.kod == 0 || status.kod == 1 => Ok(None),
            None => Err(EpuapError::Status {
                operation: op.name(),
                kod: status.kod,
                komunikat: status.komunikat,
            }),
        }
    }

    /// `potwierdzOdebranie`: removes the head of the queue, identified by its `skrot`.
    pub async fn confirm_receipt(&self, mailbox: &BoxRef, skrot: &str) -> Result<(), EpuapError> {
        let op = Operation::PotwierdzOdebranie;
        let body = soap::pull_request(op, mailbox, Some(skrot));
        let status = self
            .call_with_retry(op, String::new(), body, |opened, _| {
                Ok(soap::read_potwierdz(opened.payload)?)
            })
            .await?;
        check_status(op, &status)
    }

    /// skrytka `nadaj`. Called once: never retried (see the module doc).
    pub async fn send(&self, request: &NadajRequest) -> Result<NadajResponse, EpuapError> {
        let op = Operation::Nadaj;
        let (headers, body) = soap::nadaj_request(request);
        let response = self
            .call(op, headers, body, |opened, max| {
                Ok(soap::read_nadaj_response(opened.payload, max)?)
            })
            .await?;
        check_status(op, &response.status)?;
        Ok(response)
    }

    /// doręczyciel `dorecz`: never retried here (not idempotent on ePUAP's side).
    pub async fn dorecz(
        &self,
        request: &soap::DoreczRequest,
    ) -> Result<soap::DoreczResponse, EpuapError> {
        let op = Operation::Dorecz;
        let (headers, body) = soap::dorecz_request(request);
        let response = self
            .call(op, headers, body, |opened, _| {
                Ok(soap::read_dorecz_response(opened.payload)?)
            })
            .await?;
        check_status(op, &response.status)?;
        Ok(response)
    }

    async fn call_with_retry<T>(
        &self,
        op: Operation,
        headers: String,
        body: String,
        read: fn(Opened<'_>, usize) -> Result<T, ReadError>,
    ) -> Result<T, EpuapError> {
        let mut delay = self.settings.backoff_initial;
        let mut attempt = 1;
        loop {
            match self.call(op, headers.clone(), body.clone(), read).await {
                Err(error) if error.is_transient() && attempt < self.settings.max_attempts => {
                    tracing::debug!(operation = op.name(), attempt, %error, "retrying");
                    tokio::time::sleep(crate::worker::jitter(delay)).await;
                    delay = (delay * 2).min(self.settings.backoff_max);
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn call<T>(
        &self,
        op: Operation,
        headers: String,
        body: String,
        read: fn(Opened<'_>, usize) -> Result<T, ReadError>,
    ) -> Result<T, EpuapError> {
        let name = op.name();
        // Signed here, as the answer is verified below: a fraction of a millisecond each,
        // less than handing the work to another thread and back costs.
        let started = crate::cputime::thread();
        let signed = wssec::sign_envelope(
            &Envelope {
                header_blocks: &headers,
                body: &body,
            },
            &self.settings.office_key,
            Utc::now(),
            Duration::from_secs(300),
        )
        .map_err(|source| EpuapError::Signing {
            operation: name,
            source,
        });
        self.security_cpu
            .signing_ns
            .fetch_add(crate::cputime::thread_since(started), Ordering::Relaxed);
        let signed = signed?;

        let url = format!(
            "{}/pk_external_ws/services/{}",
            self.settings.base_url,
            op.service()
        );
        let response = self
            .http
            .post(url)
            .header("Content-Type", "text/xml; charset=utf-8")
            .header("SOAPAction", format!("\"{}\"", op.soap_action()))
            .body(signed)
            .send()
            .await
            .map_err(|e| self.transport_error(name, e))?;
        let status = response.status();
        let bytes = self.read_body(name, response).await?;
        let is_xml = bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'<');
        if !status.is_success() && !is_xml {
            return Err(EpuapError::Http {
                operation: name,
                status: status.as_u16(),
            });
        }

        let settings = &self.settings;
        let started = crate::cputime::thread();
        let outcome = {
            let policy = VerifyPolicy {
                limits: Limits {
                    max_bytes: response_limit(settings.max_document_bytes),
                    max_depth: 32,
                },
                require_timestamp: false,
                clock_skew: settings.clock_skew,
            };
            wssec::open_envelope(
                &bytes,
                &settings.server_certificate_pem,
                &policy,
                Utc::now(),
                |opened| {
                    if let Some((kod, komunikat)) = soap::read_fault(opened.payload) {
                        return Err(ReadError::Fault(kod, komunikat));
                    }
                    read(opened, settings.max_document_bytes)
                },
            )
        };
        self.security_cpu
            .verifying_ns
            .fetch_add(crate::cputime::thread_since(started), Ordering::Relaxed);
        match outcome {
            Ok(value) => Ok(value),
            Err(ReadError::Fault(kod, komunikat)) => Err(EpuapError::Fault {
                operation: name,
                kod,
                komunikat,
            }),
            // A non-2xx answer we cannot read as a signed SOAP message is an HTTP error.
            Err(_) if !status.is_success() => Err(EpuapError::Http {
                operation: name,
                status: status.as_u16(),
            }),
            Err(ReadError::Security(source)) => Err(EpuapError::Security {
                operation: name,
                source,
            }),
            Err(ReadError::Message(MessageError::TooLarge { size, limit })) => {
                Err(EpuapError::TooLarge {
                    operation: name,
                    size,
                    limit,
                })
            }
            Err(ReadError::Message(source)) => Err(EpuapError::Message {
                operation: name,
                source,
            }),
        }
    }

    async fn read_body(
        &self,
        operation: &'static str,
        mut response: reqwest::Response,
    ) -> Result<Vec<u8>, EpuapError> {
        let limit = response_limit(self.settings.max_document_bytes);
        if let Some(length) = response.content_length()
            && length as usize > limit
        {
            return Err(EpuapError::TooLarge {
                operation,
                size: length as usize,
                limit,
            });
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.transport_error(operation, e))?
        {
            if bytes.len() + chunk.len() > limit {
                return Err(EpuapError::TooLarge {
                    operation,
                    size: bytes.len() + chunk.len(),
                    limit,
                });
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes)
    }

    fn transport_error(&self, operation: &'static str, error: reqwest::Error) -> EpuapError {
        if error.is_timeout() {
            EpuapError::Timeout {
                operation,
                timeout: self.settings.request_timeout,
            }
        } else {
            let mut detail = error.to_string();
            let mut source = std::error::Error::source(&error);
            while let Some(cause) = source {
                detail.push_str(": ");
                detail.push_str(&cause.to_string());
                source = cause.source();
            }
            EpuapError::Transport { operation, detail }
        }
    }
}

/// The largest SOAP response accepted for a given document limit: base64 grows content by 4/3,
/// plus room for the envelope and the other fields.
fn response_limit(max_document_bytes: usize) -> usize {
    max_document_bytes / 3 * 4 + 1024 * 1024
}

fn check_status(op: Operation, status: &Status) -> Result<(), EpuapError> {
    if status.kod == 1 {
        Ok(())
    } else {
        Err(EpuapError::Status {
            operation: op.name(),
            kod: status.kod,
            komunikat: status.komunikat.clone(),
        })
    }
}
