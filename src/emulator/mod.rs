//! A local ePUAP: the pull and skrytka services of the same WSDL contract, with WS-Security on
//! both directions, FIFO box queues kept on disk, UPPs for `nadaj`, an admin API and fault
//! injection. It runs as `eurzad emulator --listen ADDR`, or in-process when the daemon's
//! `epuap.endpoint` is `embedded`. It is built on the same [`crate::epuap::soap`] and
//! [`crate::epuap::wssec`] as the client, so the two cannot disagree on the contract.
//!
//! Admin API (JSON, loopback only by default):
//! - `POST /admin/documents`: put a document into a box ([`AdminDocument`]);
//! - `GET /admin/counters`: delivered, confirmed, wrong confirmations, nadaj calls, … and
//!   the pending count per box;
//! - `POST /admin/faults` ([`faults::FaultRule`]) and `DELETE /admin/faults`;
//! - `GET /admin/outbox`: what was received with `nadaj`;
//! - `GET /health`.

pub mod demo_pki;
pub mod edoreczenia;
pub mod faults;
pub mod state;
pub mod upp;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, State as AxumState};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::document::{PulledDocument, SenderData, SkrotAlgorithm, SubjectData};
use crate::epuap::soap::{
    self, BoxRef, DoreczRequest, NadajRequest, NadajResponse, Operation, Status,
};
use crate::epuap::wssec::{self, Envelope, SecurityError, VerifyPolicy};
use crate::xml::Limits;
use crate::xmldsig::SigningKey;
use faults::{FaultKind, FaultPlan, FaultRule};
use state::State;

const DEMO_ACCESS_REQUEST: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Wniosek xmlns="http://epuap.gov.pl/fe-model-web/wzor_lokalny/eurzad/wniosek_o_dostep/">
    <Wnioskodawca>
        <Imie>Jan</Imie>
        <Nazwisko>Demo</Nazwisko>
        <PESEL>02070803628</PESEL>
        <Email>jan.demo@example.test</Email>
    </Wnioskodawca>
    <DataWniosku>2026-11-20</DataWniosku>
</Wniosek>
"#;

/// How an emulator instance behaves.
#[derive(Debug, Clone)]
pub struct EmulatorSettings {
    pub state_dir: PathBuf,
    /// The key the emulator signs its answers with (ePUAP's "server certificate").
    pub signing_key: SigningKey,
    /// Certificates whose holders may call the services (the offices' systems).
    pub client_certificates: Vec<Vec<u8>>,
    /// The digest `potwierdzOdebranie` must carry.
    pub skrot: SkrotAlgorithm,
    /// Boxes that exist from the start (more are made by the admin API).
    pub boxes: Vec<BoxRef>,
    pub max_request_bytes: usize,
    /// Seed of the fault plan's random source.
    pub seed: u64,
    /// Random faults (http500, soap_fault, drop, slow) on this share of requests.
    pub fault_rate: Option<f64>,
    /// Delay of the `slow` fault.
    pub slow_delay: Duration,
    /// Refuse a request without a signed `wsu:Timestamp`. ePUAP itself accepts a signature
    /// over the Body alone (a widely used .NET client signs so), and so does the emulator by
    /// default; a Timestamp that is present must be signed and fresh either way.
    pub strict: bool,
}

impl EmulatorSettings {
    /// The settings of the demo set-up: demo PKI, SHA-1 skrot.
    pub fn demo(state_dir: PathBuf, boxes: Vec<BoxRef>) -> EmulatorSettings {
        EmulatorSettings {
            state_dir,
            signing_key: demo_pki::epuap_key(),
            client_certificates: vec![demo_pki::OFFICE_CERT.to_vec()],
            skrot: SkrotAlgorithm::Sha1,
            boxes,
            max_request_bytes: 100 * 1024 * 1024,
            seed: 1,
            fault_rate: None,
            slow_delay: Duration::from_secs(40),
            strict: false,
        }
    }
}

/// A running emulator's shared state.
#[derive(Clone)]
pub struct Emulator {
    inner: Arc<Inner>,
}

struct Inner {
    settings: EmulatorSettings,
    state: Mutex<State>,
    faults: Mutex<FaultPlan>,
}

#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    #[error(transparent)]
    State(#[from] state::StateError),
    #[error("emulator: {0}")]
    Other(String),
}

impl Emulator {
    /// Opens the state directory. Returns the emulator and whether the state is new.
    pub fn open(settings: EmulatorSettings) -> Result<(Emulator, bool), EmulatorError> {
        settings
            .signing_key
            .validate()
            .map_err(|e| EmulatorError::Other(format!("signing key: {e}")))?;
        let (mut state, fresh) = State::open(&settings.state_dir)?;
        for mailbox in &settings.boxes {
            state.ensure_box(mailbox);
        }
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
        let emulator = Emulator {
            inner: Arc::new(Inner {
                settings,
                state: Mutex::new(state),
                faults: Mutex::new(plan),
            }),
        };
        Ok((emulator, fresh))
    }

    /// The HTTP routes: the SOAP services and the admin API.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/pk_external_ws/services/{service}", post(soap_endpoint))
            .route("/admin/documents", post(admin_add_document))
            .route(
                "/admin/deliveries/{zlecenie}/open",
                post(admin_open_delivery),
            )
            .route("/admin/counters", get(admin_counters))
            .route(
                "/admin/faults",
                post(admin_add_fault).delete(admin_clear_faults),
            )
            .route("/admin/outbox", get(admin_outbox))
            .route("/health", get(|| async { "ok" }))
            .layer(DefaultBodyLimit::max(self.inner.settings.max_request_bytes))
            .with_state(self.clone())
    }

    /// Serves on `listener` until `shutdown` resolves.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        axum::serve(listener, self.router())
            .with_graceful_shutdown(shutdown)
            .await
    }

    /// Puts a document at the end of a box's queue.
    pub fn add_document(
        &self,
        mailbox: &BoxRef,
        document: PulledDocument,
    ) -> Result<u64, EmulatorError> {
        Ok(self
            .inner
            .state
            .lock()
            .expect("state lock")
            .enqueue(mailbox, document)?)
    }

    pub fn counters(&self) -> state::Counters {
        self.inner
            .state
            .lock()
            .expect("state lock")
            .counters
            .clone()
    }

    /// Puts the demo documents into `mailbox`: a "pismo ogólne" from the demo citizen `demo`,
    /// another from a second citizen, and a non-XML attachment.
    /// Seeds the demo documents: an access request of the demo citizen, sealed with the
    /// trusted profile by this emulator's key, two letters and a non-XML attachment.
    pub fn seed_demo(&self, mailbox: &BoxRef) -> Result<usize, EmulatorError> {
        let now = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
        let citizen = |login: &str, imie: &str, nazwisko: &str| SubjectData {
            identyfikator: login.to_string(),
            typ_osoby: "F".into(),
            imie_skrot: Some(imie.into()),
            nazwisko_nazwa: Some(nazwisko.into()),
            zgoda: true,
            ..SubjectData::default()
        };
        // An access request sealed with the trusted profile by the emulator's own "ePUAP"
        // key (the embedded configuration trusts that seal; nothing else does).
        let request = crate::signature::seal::xades_enveloped_with_role(
            DEMO_ACCESS_REQUEST.as_bytes(),
            &self.inner.settings.signing_key,
            Utc::now(),
            "podpis",
            Some(&crate::signature::seal::trusted_profile_role(
                "Jan",
                "Demo",
                "02070803628",
            )),
        )
        .map_err(|e| EmulatorError::Other(format!("sealing the demo request: {e}")))?;
        let documents = [
            (
                citizen("demo", "Jan", "Demo"),
                "wniosek-o-dostep.xml",
                Some("text/xml"),
                request.as_slice(),
            ),
            (
                citizen("demo", "Jan", "Demo"),
                "pismo-ogolne.xml",
                Some("text/xml"),
                include_bytes!("../../fixtures/demo/pismo-ogolne-demo.xml").as_slice(),
            ),
            (
                citizen("anna_przykladowa", "Anna", "Przykładowa"),
                "pismo-ogolne.xml",
                Some("text/xml"),
                include_bytes!("../../fixtures/demo/pismo-ogolne-przykladowa.xml").as_slice(),
            ),
            (
                citizen("demo", "Jan", "Demo"),
                "zaswiadczenie-skan.txt",
                Some("text/plain"),
                include_bytes!("../../fixtures/demo/zaswiadczenie-skan.txt").as_slice(),
            ),
        ];
        for (podmiot, file, typ, content) in &documents {
            let login = podmiot.identyfikator.clone();
            self.add_document(
                mailbox,
                PulledDocument {
                    dane_podmiotu: podmiot.clone(),
                    dane_nadawcy: SenderData {
                        uzytkownik: Some(login.clone()),
                        system: Some("ePUAP".into()),
                    },
                    data_nadania: now.clone(),
                    nazwa_skrytki: mailbox.nazwa.clone(),
                    adres_skrytki: mailbox.adres.clone(),
                    adres_odpowiedzi: Some(format!("/{login}/skrytka")),
                    czy_testowe: true,
                    dane_dodatkowe: Vec::new(),
                    nazwa_pliku: file.to_string(),
                    typ_pliku: typ.map(str::to_string),
                    content: content.to_vec(),
                },
            )?;
        }
        Ok(documents.len())
    }

    fn signing_key_for(&self, fault: Option<FaultKind>) -> SigningKey {
        match fault {
            // A well-formed signature by a key the client does not pin.
            Some(FaultKind::WrongKey) => demo_pki::office_key(),
            _ => self.inner.settings.signing_key.clone(),
        }
    }

    /// Handles one SOAP request synchronously (called on a blocking thread).
    fn handle_soap(&self, bytes: &[u8], service: &str) -> Answer {
        let request = match self.read_request(bytes, service) {
            Ok(request) => request,
            Err(fault) => {
                let mut state = self.inner.state.lock().expect("state lock");
                state.counters.rejected_requests += 1;
                let _ = state.save_counters();
                drop(state);
                return self.fault_answer(fault.0, &fault.1, None);
            }
        };
        let operation = request.operation();
        let (fault, corruption) = {
            let mut plan = self.inner.faults.lock().expect("faults lock");
            let fault = plan.decide(operation.name());
            let corruption =
                matches!(fault, Some((FaultKind::Corrupt, _))).then(|| plan.corruption_seed());
            (fault, corruption)
        };
        if let Some((kind, _)) = fault {
            tracing::debug!(operation = operation.name(), ?kind, "injecting fault");
            let mut state = self.inner.state.lock().expect("state lock");
            state.counters.injected_faults += 1;
            let _ = state.save_counters();
        }
        match fault {
            Some((FaultKind::Http500, _)) => {
                return Answer {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    body: "Internal Server Error (injected by the eurzad emulator)".into(),
                    after: None,
                };
            }
            Some((FaultKind::SoapFault, _)) => {
                return self.fault_answer(
                    99,
                    "Błąd wewnętrzny systemu (wstrzyknięty przez emulator)",
                    None,
                );
            }
            _ => {}
        }
        let payload = match self.process(&request) {
            Ok(payload) => payload,
            Err((kod, komunikat)) => return self.fault_answer(kod, &komunikat, None),
        };
        let kind = fault.map(|f| f.0);
        let payload = corrupt_payload(payload, kind);
        let envelope = match kind {
            Some(FaultKind::Unsigned) => format!(
                r#"<soap:Envelope xmlns:soap="{}"><soap:Body>{payload}</soap:Body></soap:Envelope>"#,
                wssec::SOAP_NS
            ),
            _ => match self.sign(&payload, kind) {
                Ok(signed) => signed,
                Err(answer) => return answer,
            },
        };
        let mut body = corrupt_envelope(envelope, kind);
        if let Some(seed) = corruption {
            let mut bytes = body.into_bytes();
            let edits = faults::corrupt(&mut bytes, seed);
            tracing::debug!(operation = operation.name(), %edits, "answer corrupted");
            // The answer is text on the wire; a broken UTF-8 sequence becomes U+FFFD.
            body = String::from_utf8_lossy(&bytes).into_owned();
        }
        Answer {
            status: StatusCode::OK,
            body,
            after: fault.filter(|(k, _)| matches!(k, FaultKind::Drop | FaultKind::Slow)),
        }
    }

    fn sign(&self, payload: &str, fault: Option<FaultKind>) -> Result<String, Answer> {
        wssec::sign_envelope(
            &Envelope {
                header_blocks: "",
                body: payload,
            },
            &self.signing_key_for(fault),
            Utc::now(),
            Duration::from_secs(300),
        )
        .map_err(|e| Answer {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            body: format!("emulator cannot sign: {e}"),
            after: None,
        })
    }

    fn fault_answer(&self, kod: i32, komunikat: &str, fault: Option<FaultKind>) -> Answer {
        match self.sign(&soap::fault(kod, komunikat), fault) {
            Ok(body) => Answer {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                body,
                after: None,
            },
            Err(answer) => answer,
        }
    }

    /// Verifies WS-Security against the known client certificates and reads the request.
    fn read_request(&self, bytes: &[u8], service: &str) -> Result<Request, (i32, String)> {
        let policy = VerifyPolicy {
            limits: Limits {
                max_bytes: self.inner.settings.max_request_bytes,
                max_depth: 32,
            },
            require_timestamp: self.inner.settings.strict,
            clock_skew: Duration::from_secs(300),
        };
        let mut last = (3, "Brak zaufanych certyfikatów klienta".to_string());
        for certificate in &self.inner.settings.client_certificates {
            let outcome = wssec::open_envelope(bytes, certificate, &policy, Utc::now(), |opened| {
                let local = opened.payload.get_name();
                let ns = crate::xml::namespace_of(opened.payload);
                let operation = Operation::from_request_element(&local)
                    .filter(|_| ns.as_deref() == Some(soap::OBIEKTY_NS))
                    // `Dokument` is nadaj on skrytka and dorecz on doręczyciel.
                    .map(|op| match (op, service) {
                        (Operation::Nadaj, "doreczyciel") => Operation::Dorecz,
                        (op, _) => op,
                    })
                    .filter(|op| op.service() == service)
                    .ok_or_else(|| {
                        RequestError::Contract(format!(
                            "nieznana operacja: <{local}> w usłudze {service}"
                        ))
                    })?;
                match operation {
                    Operation::Dorecz => {
                        soap::read_dorecz_request(opened.header, opened.payload, usize::MAX)
                            .map(Request::Dorecz)
                            .map_err(|e| RequestError::Contract(e.to_string()))
                    }
                    Operation::Nadaj => {
                        soap::read_nadaj_request(opened.header, opened.payload, usize::MAX)
                            .map(Request::Nadaj)
                            .map_err(|e| RequestError::Contract(e.to_string()))
                    }
                    pull => soap::read_pull_request(opened.payload)
                        .map(|(mailbox, skrot)| Request::Pull(pull, mailbox, skrot))
                        .map_err(|e| RequestError::Contract(e.to_string())),
                }
            });
            match outcome {
                Ok(request) => return Ok(request),
                Err(RequestError::Contract(message)) => {
                    return Err((1, format!("Niepoprawne żądanie: {message}")));
                }
                Err(RequestError::Security(e)) => {
                    last = (3, format!("Błąd weryfikacji podpisu WS-Security: {e}"))
                }
            }
        }
        tracing::warn!(reason = %last.1, "request refused");
        Err(last)
    }

    /// Runs a verified request against the state. Errors are (Wyjatek kod, komunikat).
    fn process(&self, request: &Request) -> Result<String, (i32, String)> {
        let mut state = self.inner.state.lock().expect("state lock");
        let ok = Status {
            kod: 1,
            komunikat: Some("OK".into()),
        };
        let payload = match request {
            Request::Pull(operation, mailbox, skrot) => {
                match state.mailbox(&mailbox.adres) {
                    Some(known) if known.podmiot == mailbox.podmiot => {}
                    _ => {
                        return Err((
                            2,
                            format!(
                                "Skrytka {} nie istnieje lub nie należy do podmiotu {}",
                                mailbox.adres, mailbox.podmiot
                            ),
                        ));
                    }
                }
                match operation {
                    Operation::OczekujaceDokumenty => {
                        soap::oczekujace_response(&ok, state.pending(&mailbox.adres))
                    }
                    Operation::PobierzNastepny => match state.head(&mailbox.adres) {
                        Some((_, document)) => {
                            let payload = soap::pobierz_response(&ok, Some(document));
                            state.counters.delivered += 1;
                            payload
                        }
                        None => soap::pobierz_response(
                            &Status {
                                kod: 0,
                                komunikat: Some("Brak dokumentów do pobrania".into()),
                            },
                            None,
                        ),
                    },
                    Operation::PotwierdzOdebranie => {
                        let skrot = skrot.as_deref().unwrap_or_default();
                        let head = state
                            .head(&mailbox.adres)
                            .map(|(seq, d)| (seq, self.inner.settings.skrot.skrot(&d.content)));
                        match head {
                            Some((seq, expected)) if expected == skrot => {
                                state
                                    .remove(&mailbox.adres, seq)
                                    .map_err(|e| (98, e.to_string()))?;
                                state.counters.confirmed += 1;
                                soap::potwierdz_response(&ok)
                            }
                            _ => {
                                state.counters.wrong_confirmations += 1;
                                soap::potwierdz_response(&Status {
                                    kod: 0,
                                    komunikat: Some(
                                        "Skrót nie odpowiada pierwszemu dokumentowi w skrytce"
                                            .into(),
                                    ),
                                })
                            }
                        }
                    }
                    Operation::Nadaj | Operation::Dorecz => {
                        unreachable!("nadaj and dorecz are read as their own requests")
                    }
                }
            }
            Request::Dorecz(dorecz) => {
                let now = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
                let order = state::DoreczOrder {
                    identyfikator_zlecenia: String::new(),
                    termin_doreczenia: dorecz.termin_doreczenia.clone(),
                    identyfikator_dokumentu: dorecz.identyfikator_dokumentu.clone(),
                    identyfikator_sprawy: dorecz.identyfikator_sprawy.clone(),
                    opened_at: None,
                };
                let entry = state
                    .record_outgoing(dorecz.nadaj.clone(), now, Some(order))
                    .map_err(|e| (98, e.to_string()))?;
                state.counters.nadaj_calls += 1;
                soap::dorecz_response(&soap::DoreczResponse {
                    status: ok,
                    identyfikator_dokumentu: entry.identyfikator_dokumentu.clone(),
                    identyfikator_zlecenia: entry
                        .dorecz
                        .as_ref()
                        .map(|d| d.identyfikator_zlecenia.clone())
                        .unwrap_or_default(),
                })
            }
            Request::Nadaj(nadaj) => {
                let now = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
                let entry = state
                    .record_nadaj(nadaj.clone(), now.clone())
                    .map_err(|e| (98, e.to_string()))?;
                state.counters.nadaj_calls += 1;
                let upp = upp::build(
                    &upp::UppFields {
                        identyfikator_poswiadczenia: &entry.identyfikator_upp,
                        adresat: &nadaj.adres_skrytki,
                        nadawca: &nadaj.podmiot,
                        data_doreczenia: &now,
                        identyfikator_dokumentu: &entry.identyfikator_dokumentu,
                        content: &nadaj.content,
                    },
                    &self.inner.settings.signing_key,
                    &now,
                )
                .map_err(|e| (98, e.to_string()))?;
                soap::nadaj_response(&NadajResponse {
                    status: ok,
                    identyfikator_dokumentu: entry.identyfikator_dokumentu.clone(),
                    identyfikator_upp: Some(entry.identyfikator_upp.clone()),
                    upp: Some((format!("UPP-{}.xml", entry.identyfikator_dokumentu), upp)),
                })
            }
        };
        state.save_counters().map_err(|e| (98, e.to_string()))?;
        Ok(payload)
    }
}

enum Request {
    Pull(Operation, BoxRef, Option<String>),
    Nadaj(NadajRequest),
    Dorecz(DoreczRequest),
}

impl Request {
    fn operation(&self) -> Operation {
        match self {
            Request::Pull(op, _, _) => *op,
            Request::Nadaj(_) => Operation::Nadaj,
            Request::Dorecz(_) => Operation::Dorecz,
        }
    }
}

enum RequestError {
    Security(SecurityError),
    Contract(String),
}

impl From<SecurityError> for RequestError {
    fn from(e: SecurityError) -> Self {
        RequestError::Security(e)
    }
}

/// A prepared answer; `after` is a fault applied while sending it.
struct Answer {
    status: StatusCode,
    body: String,
    after: Option<(FaultKind, u64)>,
}

/// Payload-level corruption, before signing: the message is validly signed but breaks the
/// contract.
fn corrupt_payload(payload: String, fault: Option<FaultKind>) -> String {
    match fault {
        Some(FaultKind::BadBase64) => {
            replace_element_text(&payload, "zawartosc", "@@to-nie-jest-base64@@")
        }
        Some(FaultKind::MissingField) => remove_element(&payload, "dataNadania"),
        _ => payload,
    }
}

/// Envelope-level corruption, after signing.
fn corrupt_envelope(envelope: String, fault: Option<FaultKind>) -> String {
    match fault {
        Some(FaultKind::Malformed) => envelope[..envelope.len() / 2].to_string(),
        Some(FaultKind::Doctype) => {
            let body = envelope.trim_start_matches(|c| c != '<').to_string();
            let body = body
                .strip_prefix("<?xml version=\"1.0\"?>")
                .unwrap_or(&body)
                .to_string();
            format!(
                "<?xml version=\"1.0\"?><!DOCTYPE soap:Envelope [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;\">]>{body}"
            )
        }
        // Every successful answer says <komunikat>OK</komunikat> inside the signed Body.
        Some(FaultKind::TamperedBody) => envelope.replacen(
            "<komunikat>OK</komunikat>",
            "<komunikat>OK, zmienione</komunikat>",
            1,
        ),
        _ => envelope,
    }
}

fn replace_element_text(xml: &str, element: &str, text: &str) -> String {
    let open = format!("<{element}>");
    let close = format!("</{element}>");
    match (xml.find(&open), xml.find(&close)) {
        (Some(start), Some(end)) if end > start => {
            format!("{}{open}{text}{}", &xml[..start], &xml[end..])
        }
        _ => xml.to_string(),
    }
}

fn remove_element(xml: &str, element: &str) -> String {
    let open = format!("<{element}>");
    let close = format!("</{element}>");
    match (xml.find(&open), xml.find(&close)) {
        (Some(start), Some(end)) if end > start => {
            format!("{}{}", &xml[..start], &xml[end + close.len()..])
        }
        _ => xml.to_string(),
    }
}

async fn soap_endpoint(
    AxumState(emulator): AxumState<Emulator>,
    Path(service): Path<String>,
    body: Bytes,
) -> Response {
    if !matches!(service.as_str(), "pull" | "skrytka" | "doreczyciel") {
        return (
            StatusCode::NOT_FOUND,
            format!("no service {service:?} here (pull, skrytka, doreczyciel)"),
        )
            .into_response();
    }
    let handler = emulator.clone();
    let answer =
        match tokio::task::spawn_blocking(move || handler.handle_soap(&body, &service)).await {
            Ok(answer) => answer,
            Err(e) => {
                return (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("emulator task failed: {e}"),
                )
                    .into_response();
            }
        };
    let content_type = if answer.status == StatusCode::OK || answer.body.starts_with('<') {
        "text/xml; charset=utf-8"
    } else {
        "text/plain; charset=utf-8"
    };
    match answer.after {
        Some((FaultKind::Slow, delay)) => {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        Some((FaultKind::Drop, _)) => {
            // Send half the answer, then fail the body stream: hyper cuts the connection.
            let half = Bytes::from(answer.body[..answer.body.len() / 2].to_string());
            let stream = futures_util::stream::iter(vec![
                Ok(half),
                Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "injected drop",
                )),
            ]);
            return Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, content_type)
                .header(header::CONTENT_LENGTH, answer.body.len())
                .body(Body::from_stream(stream))
                .expect("valid response");
        }
        _ => {}
    }
    (
        answer.status,
        [(header::CONTENT_TYPE, content_type)],
        answer.body,
    )
        .into_response()
}

/// A document for `POST /admin/documents`. Only `adres_skrytki` and the content are required;
/// the box is created when `podmiot` is given for an unknown address.
#[derive(Debug, Deserialize)]
pub struct AdminDocument {
    pub adres_skrytki: String,
    #[serde(default)]
    pub podmiot: Option<String>,
    #[serde(default)]
    pub nazwa_skrytki: Option<String>,
    #[serde(default)]
    pub dane_podmiotu: Option<SubjectData>,
    #[serde(default)]
    pub dane_nadawcy: Option<SenderData>,
    #[serde(default)]
    pub data_nadania: Option<String>,
    #[serde(default)]
    pub adres_odpowiedzi: Option<String>,
    #[serde(default)]
    pub czy_testowe: bool,
    #[serde(default, with = "crate::document::base64_bytes")]
    pub dane_dodatkowe: Vec<u8>,
    pub nazwa_pliku: String,
    #[serde(default)]
    pub typ_pliku: Option<String>,
    #[serde(with = "crate::document::base64_bytes")]
    pub content: Vec<u8>,
}

#[derive(Serialize)]
struct Added {
    seq: u64,
}

/// The recipient opens a `dorecz` letter: the emulator makes the UPD, sealed by its key,
/// and puts it into the sender's reply box (adresOdpowiedzi), where the sender pulls it.
async fn admin_open_delivery(
    AxumState(emulator): AxumState<Emulator>,
    Path(zlecenie): Path<String>,
) -> Response {
    let now = Utc::now();
    let stamp = now.to_rfc3339_opts(SecondsFormat::Millis, true);
    let mut state = emulator.inner.state.lock().expect("state lock");
    let entry = match state.open_delivery(&zlecenie, stamp.clone()) {
        Ok(Some(entry)) => entry,
        Ok(None) => {
            return (
                StatusCode::NOT_FOUND,
                format!("no unopened delivery {zlecenie:?}"),
            )
                .into_response();
        }
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    };
    let order = entry.dorecz.as_ref().expect("a delivery order");
    let request = &entry.request;
    let Some(reply_box) = state.mailbox(&request.adres_odpowiedzi).cloned() else {
        return (
            StatusCode::CONFLICT,
            format!(
                "the sender's reply box {:?} is not in this emulator",
                request.adres_odpowiedzi
            ),
        )
            .into_response();
    };
    let upd = match upp::build_upd(
        &upp::UpdFields {
            wystawca: "ePUAP (emulator eurzad)",
            adresat: &request.adres_skrytki,
            data_odbioru: &stamp,
            identyfikator_sprawy: &order.identyfikator_sprawy,
            identyfikator_dokumentu: &order.identyfikator_dokumentu,
        },
        &emulator.inner.settings.signing_key,
        now,
    ) {
        Ok(upd) => upd,
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    };
    let document = PulledDocument {
        dane_podmiotu: SubjectData {
            identyfikator: "epuap".into(),
            typ_osoby: "P".into(),
            nazwisko_nazwa: Some("ePUAP".into()),
            zgoda: true,
            ..SubjectData::default()
        },
        dane_nadawcy: SenderData {
            uzytkownik: None,
            system: Some("ePUAP".into()),
        },
        data_nadania: stamp,
        nazwa_skrytki: reply_box.nazwa.clone(),
        adres_skrytki: reply_box.adres.clone(),
        adres_odpowiedzi: None,
        czy_testowe: false,
        dane_dodatkowe: Vec::new(),
        nazwa_pliku: format!("UPD-{}.xml", entry.identyfikator_dokumentu),
        typ_pliku: Some("text/xml".into()),
        content: upd,
    };
    match state.enqueue(&reply_box, document) {
        Ok(_) => (StatusCode::CREATED, "UPD delivered to the sender's box").into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn admin_add_document(
    AxumState(emulator): AxumState<Emulator>,
    axum::Json(doc): axum::Json<AdminDocument>,
) -> Response {
    let existing = emulator
        .inner
        .state
        .lock()
        .expect("state lock")
        .mailbox(&doc.adres_skrytki)
        .cloned();
    let mailbox = match (existing, &doc.podmiot) {
        (Some(mailbox), _) => mailbox,
        (None, Some(podmiot)) => BoxRef {
            podmiot: podmiot.clone(),
            nazwa: doc
                .nazwa_skrytki
                .clone()
                .unwrap_or_else(|| "skrytka".into()),
            adres: doc.adres_skrytki.clone(),
        },
        (None, None) => {
            return (
                StatusCode::BAD_REQUEST,
                format!(
                    "box {:?} does not exist: give \"podmiot\" to create it",
                    doc.adres_skrytki
                ),
            )
                .into_response();
        }
    };
    let document = PulledDocument {
        dane_podmiotu: doc.dane_podmiotu.unwrap_or_else(|| SubjectData {
            identyfikator: "nadawca_testowy".into(),
            typ_osoby: "F".into(),
            zgoda: true,
            ..SubjectData::default()
        }),
        dane_nadawcy: doc.dane_nadawcy.unwrap_or_default(),
        data_nadania: doc
            .data_nadania
            .unwrap_or_else(|| Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)),
        nazwa_skrytki: mailbox.nazwa.clone(),
        adres_skrytki: mailbox.adres.clone(),
        adres_odpowiedzi: doc.adres_odpowiedzi,
        czy_testowe: doc.czy_testowe,
        dane_dodatkowe: doc.dane_dodatkowe,
        nazwa_pliku: doc.nazwa_pliku,
        typ_pliku: doc.typ_pliku,
        content: doc.content,
    };
    let added =
        tokio::task::spawn_blocking(move || emulator.add_document(&mailbox, document)).await;
    match added {
        Ok(Ok(seq)) => (StatusCode::CREATED, axum::Json(Added { seq })).into_response(),
        Ok(Err(e)) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

#[derive(Serialize)]
struct CountersView {
    #[serde(flatten)]
    counters: state::Counters,
    pending: std::collections::BTreeMap<String, u64>,
}

async fn admin_counters(AxumState(emulator): AxumState<Emulator>) -> axum::Json<CountersView> {
    let state = emulator.inner.state.lock().expect("state lock");
    axum::Json(CountersView {
        counters: state.counters.clone(),
        pending: state.pending_by_box(),
    })
}

async fn admin_add_fault(
    AxumState(emulator): AxumState<Emulator>,
    axum::Json(rule): axum::Json<FaultRule>,
) -> StatusCode {
    emulator.inner.faults.lock().expect("faults lock").add(rule);
    StatusCode::NO_CONTENT
}

async fn admin_clear_faults(AxumState(emulator): AxumState<Emulator>) -> StatusCode {
    emulator.inner.faults.lock().expect("faults lock").clear();
    StatusCode::NO_CONTENT
}

async fn admin_outbox(
    AxumState(emulator): AxumState<Emulator>,
) -> axum::Json<Vec<state::OutboxEntry>> {
    axum::Json(
        emulator
            .inner
            .state
            .lock()
            .expect("state lock")
            .outbox()
            .to_vec(),
    )
}

/// Binds `addr` and serves the emulator in a background task. Returns the bound address.
pub async fn spawn(
    emulator: Emulator,
    addr: SocketAddr,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let handle = tokio::spawn(emulator.serve(listener, shutdown));
    Ok((local, handle))
}
