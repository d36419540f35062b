//! The provisioning steps of the job queue, and the deadline watch:
//! - `provision`: a judged access request is assessed and recorded (account and
//!   representations when it approves itself; mail to officials when it waits or is rejected);
//! - `reply`: the reply letter is composed, sealed, recorded, then sent through the delivery
//!   channel, the intent committed before the call (docs/provisioning.md);
//! - `mail`: one notification is e-mailed;
//! - [`watch_deadlines`]: reminders, overdue alerts and the daily digest, at an injectable `now`.

use std::sync::Arc;

use crate::states::Named as _;
use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;

use super::StepError;
use crate::config::RoutingRule;
use crate::delivery::{DeliveryChannel, DeliveryError, Lookup, OfficialId, OutgoingLetter, Route};
use crate::document::InboundChannel;
use crate::forms::{Form, FormType, GeneralLetter, Registry};
use crate::notify::Mailer;
use crate::notify::schedule::Schedule;
use crate::notify::templates::{self, RequestSummary};
use crate::provisioning::deadline::{self, DayCount};
use crate::provisioning::letter::{Letter, LetterKind};
use crate::provisioning::{self, RequestStatus};
use crate::signature::{KindTrust, seal};
use crate::store::{
    Correspondence, CorrespondenceFacts, Job, LetterRow, Notice, ReplyFacts, RequestRow,
    RoutedMail, Sending, Store, StoreError,
};
use crate::xmldsig::SigningKey;

/// The office: who it is, how it answers and whom it tells.
pub struct Office {
    pub name: String,
    pub deadline_days: u32,
    pub deadline_count: DayCount,
    /// The key letters are sealed with.
    pub seal: SigningKey,
    /// How letters go by default.
    pub channel: Arc<dyn DeliveryChannel>,
    /// How letters that need a proof of delivery go (`proof_kinds`).
    pub proof_channel: Arc<dyn DeliveryChannel>,
    pub proof_kinds: Vec<String>,
    /// e-Doręczenia, when configured: a letter goes to the applicant's address when the
    /// address database has one.
    pub electronic: Option<crate::delivery::ElectronicDelivery>,
    /// The routes each kind of letter may take, in order (`[delivery] routes`); a kind not
    /// named takes the default.
    pub routes: Vec<(LetterKind, Vec<Route>)>,
    /// The officials' desk as officials open it (`[desk] public_url`): mail links to it.
    pub desk_url: Option<String>,
    /// ePUAP's certificate: UPDs must be sealed by it.
    pub epuap_certificate: Vec<u8>,
    pub officials: Vec<String>,
    pub zone: Tz,
    pub mailer: Mailer,
    pub routing: Vec<RoutingRule>,
    pub reminder_before: TimeDelta,
    pub digest: Schedule,
}

impl Office {
    fn routes_for(&self, kind: LetterKind) -> &[Route] {
        self.routes
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or(&crate::config::DEFAULT_ROUTES, |(_, routes)| {
                routes.as_slice()
            })
    }

    fn channel_for(&self, kind: LetterKind) -> &Arc<dyn DeliveryChannel> {
        if self.proof_kinds.iter().any(|k| k == kind.as_str()) {
            &self.proof_channel
        } else {
            &self.channel
        }
    }

    fn channel_named(&self, name: &str) -> &Arc<dyn DeliveryChannel> {
        if let Some(electronic) = &self.electronic {
            if electronic.channel.name() == name {
                return &electronic.channel;
            }
            if electronic.hybrid.name() == name {
                return &electronic.hybrid;
            }
        }
        if self.proof_channel.name() == name {
            &self.proof_channel
        } else {
            &self.channel
        }
    }
}

impl std::fmt::Debug for Office {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Office")
            .field("name", &self.name)
            .field("channel", &self.channel.name())
            .field("officials", &self.officials)
            .field("mailer", &self.mailer)
            .finish_non_exhaustive()
    }
}

fn summary(row: &RequestRow, desk_url: Option<&str>) -> RequestSummary {
    RequestSummary {
        link: desk_url.map(|url| crate::desk::request_link(url, row.id)),
        id: row.id,
        applicant: if row.applicant_name.is_empty() {
            "(nieustalony)".into()
        } else {
            row.applicant_name.clone()
        },
        pesel: if row.applicant_pesel.is_empty() {
            "—".into()
        } else {
            row.applicant_pesel.clone()
        },
        received_at: row.received_at,
        deadline_at: row.deadline_at,
        status: row.status.clone(),
        reason: row.reason.clone(),
    }
}

fn err(e: impl Into<StepError>) -> StepError {
    e.into()
}

pub(super) async fn provision(
    store: &Store,
    job: &Job,
    office: &Office,
    trust: &Arc<KindTrust>,
    registry: &Arc<Registry>,
) -> Result<(), StepError> {
    let document_id = job.document_id.ok_or("provision job without a document")?;
    let facts = store.provision_facts(document_id).await.map_err(err)?;
    if facts.existing.is_some() {
        return store.finish_job(job.claim()).await.map_err(err);
    }
    let now = Utc::now();
    let (trust, registry) = (trust.clone(), registry.clone());
    let (content, signed) = (facts.content.clone(), facts.signed.clone());
    // Attachments are verified here: xmlsec and libxml2 stay on a blocking thread.
    let (request, assessment) = tokio::task::spawn_blocking(move || {
        let request = match registry.read(&content) {
            Ok(Form::AccessRequest(request)) => Ok(request),
            Ok(other) => Err(format!(
                "to nie jest wniosek o dostęp ({:?})",
                other.form_type()
            )),
            Err(e) => Err(e.to_string()),
        };
        let assessment = provisioning::assess(
            &signed,
            request.as_ref().map_err(String::as_str),
            &trust,
            &registry,
            now,
        );
        (request.ok(), assessment)
    })
    .await
    .map_err(|e| format!("assessment task failed: {e}"))?;
    // The deadline runs from the receipt in law, not from when eurzad stored the document:
    // after an outage of eurzad, the office's days have still been running.
    let received_at = crate::document::received_in_law(&facts.data_nadania, facts.stored_at);
    let deadline_at = deadline::deadline(received_at, office.deadline_days, office.deadline_count);
    // Letters and the queue name the applicant as the signature or ePUAP vouch, never only
    // as the form says.
    let typed = request
        .as_ref()
        .map(|r| format!("{} {}", r.applicant.given_name, r.applicant.surname));
    let applicant_name = provisioning::applicant_name(
        facts.signer_name.as_deref().filter(|_| facts.signed.passed),
        facts.epuap_name.as_deref(),
        typed.as_deref(),
    );
    let zone = office.zone;
    let desk_url = office.desk_url.clone();
    let render = move |row: &RequestRow, kind: &str| {
        let summary = summary(row, desk_url.as_deref());
        match kind {
            "rejected" => templates::rejected(&summary, zone),
            _ => templates::waiting(&summary, zone),
        }
    };
    let notice = Notice {
        officials: &office.officials,
        render: &render,
    };
    let request_id = store
        .record_assessment(
            job.claim(),
            &facts,
            request.as_ref(),
            &assessment,
            &applicant_name,
            received_at,
            deadline_at,
            &notice,
            now,
        )
        .await
        .map_err(err)?;
    tracing::info!(request = request_id, document = document_id, decision = ?assessment.decision, "access request assessed");
    Ok(())
}

pub(super) async fn reply(store: &Store, job: &Job, office: &Office) -> Result<(), StepError> {
    let request_id: i64 = job
        .key
        .parse()
        .map_err(|_| format!("reply job with key {:?}", job.key))?;
    let facts = store.reply_facts(request_id).await.map_err(err)?;
    let now = Utc::now();
    let letter_id = match &facts.letter {
        Some((_, status, _)) if status.went_out() => {
            return store
                .finish_replied(job.claim(), request_id, now)
                .await
                .map_err(err);
        }
        Some((id, _, _)) => *id,
        None => {
            let kind = match RequestStatus::parse(&facts.request.status) {
                Some(RequestStatus::Approved) => LetterKind::RegistrationInfo,
                Some(RequestStatus::Rejected) => LetterKind::RegistrationRefusal,
                _ => {
                    return Err(format!(
                        "request {request_id} is {}: nothing to reply yet",
                        facts.request.status
                    )
                    .into());
                }
            };
            let (route, channel_name, recipient, reason) = match choose_route(office, kind, &facts)
                .await?
            {
                Ok(chosen) => chosen,
                Err(passed_over) => {
                    let why = format!(
                        "odpowiedzi nie da się wysłać żadną z dróg dozwolonych dla tego pisma ({passed_over}): \
                         trzeba ją wysłać inną drogą"
                    );
                    tracing::warn!(
                        request = request_id,
                        %why,
                        "no allowed route reaches the applicant: the reply must go another way; officials are told"
                    );
                    tell_officials(
                        store,
                        office,
                        &format!("noreply:{request_id}"),
                        &facts.request,
                        &why,
                        templates::reply_impossible,
                        now,
                    )
                    .await?;
                    return store
                        .reply_impossible(job.claim(), request_id, &why, now)
                        .await
                        .map_err(err);
                }
            };
            let letter = Letter {
                kind,
                request_id,
                office: &office.name,
                date: now.with_timezone(&office.zone).date_naive(),
                request_date: facts.request_date,
                addressee: &facts.request.applicant_name,
                representations: &facts.representations,
                reason: (kind == LetterKind::RegistrationRefusal)
                    .then_some(facts.request.reason.as_str()),
            };
            // On paper the letter is printed: a PDF with the postal address in the envelope's
            // window; electronically it is XML under the office's seal.
            let (file_name, content) = if route == Route::Hybrid {
                let postal = crate::delivery::PostalAddress::from_recipient(&recipient)
                    .map_err(|e| format!("letter to request {request_id}: {e}"))?;
                let document = letter.to_document(Some(&postal));
                let pdf = tokio::task::spawn_blocking(move || crate::pdf::render(&document))
                    .await
                    .map_err(|e| format!("rendering task failed: {e}"))?
                    .map_err(|e| format!("rendering the letter as PDF: {e}"))?;
                (kind.pdf_file_name(request_id), pdf)
            } else {
                let xml = letter.to_xml();
                let key = office.seal.clone();
                let sealed = tokio::task::spawn_blocking(move || {
                    seal::xades_enveloped(&xml, &key, now, "pieczec")
                })
                .await
                .map_err(|e| format!("sealing task failed: {e}"))?
                .map_err(|e| format!("sealing the letter: {e}"))?;
                (kind.file_name(request_id), sealed)
            };
            store
                .record_letter(
                    &format!("reply:{request_id}"),
                    channel_name,
                    &reason,
                    kind.as_str(),
                    request_id,
                    &recipient,
                    &file_name,
                    &content,
                    now,
                )
                .await
                .map_err(err)?
        }
    };
    let letter = match store
        .begin_sending(letter_id, job.claim(), now)
        .await
        .map_err(err)?
    {
        Sending::Begun(letter) => letter,
        Sending::Uncertain(letter) => {
            // Begun by a claim that died: the letter may have gone out. It is never sent again
            // blindly: the channel is asked first, where it can be, then an official decides.
            let outgoing = outgoing_letter(&letter, request_id, &facts);
            let channel = office.channel_named(&letter.channel);
            let why = match channel.find_sent(&outgoing).await {
                Ok(Lookup::Found(receipt)) => {
                    tracing::info!(request = request_id, letter = letter.id, message = %receipt.document_identifier, "an interrupted send had gone out: found among the sent messages, not sent again");
                    return store
                        .letter_sent(job.claim(), letter.id, request_id, &receipt, Utc::now())
                        .await
                        .map_err(err);
                }
                Ok(Lookup::NotFound) => {
                    "wysyłanie odpowiedzi zostało przerwane i nie ma jej wśród wysłanych wiadomości: \
                     urzędnik musi to sprawdzić i wysłać ją ponownie albo oznaczyć jako wysłaną"
                        .to_string()
                }
                Ok(Lookup::CannotAsk) => {
                    "nie wiadomo, czy odpowiedź dotarła do ePUAP (przerwane wysyłanie): \
                     urzędnik musi to sprawdzić i wysłać ją ponownie albo oznaczyć jako wysłaną"
                        .to_string()
                }
                // The channel could not be asked now: asked again with the job's next try,
                // and only after a few such tries is an official asked instead.
                Err(e) if job.attempts < LOOKUP_TRIES => {
                    return Err(format!(
                        "an interrupted send of letter {} could not be looked up yet: {e}",
                        letter.id
                    )
                    .into());
                }
                Err(e) => format!(
                    "wysyłanie odpowiedzi zostało przerwane, a sprawdzenie wysłanych wiadomości \
                     się nie udało ({e}): urzędnik musi to sprawdzić i wysłać ją ponownie albo \
                     oznaczyć jako wysłaną"
                ),
            };
            tracing::warn!(
                request = request_id,
                letter = letter.id,
                %why,
                "a letter whose sending was interrupted is held for an official: not sent again blindly"
            );
            tell_officials(
                store,
                office,
                &format!("uncertain:{}", letter.id),
                &facts.request,
                &why,
                templates::letter_uncertain,
                now,
            )
            .await?;
            return store
                .hold_letter(job.claim(), letter.id, request_id, &why, now)
                .await
                .map_err(err);
        }
    };
    let outgoing = outgoing_letter(&letter, request_id, &facts);
    match office
        .channel_named(&letter.channel)
        .deliver(&outgoing)
        .await
    {
        Ok(receipt) => {
            store
                .letter_sent(job.claim(), letter.id, request_id, &receipt, Utc::now())
                .await
                .map_err(err)?;
            tracing::info!(request = request_id, letter = letter.id, document = %receipt.document_identifier, upp = ?receipt.submission_proof_id, "reply sent");
            Ok(())
        }
        Err(DeliveryError::Refused(e) | DeliveryError::NotSent(e)) => {
            store
                .letter_refused(letter.id, &e, Utc::now())
                .await
                .map_err(err)?;
            Err(format!("the channel refused the letter: {e}").into())
        }
        Err(error @ DeliveryError::Uncertain(_)) => Err(error.to_string().into()),
    }
}

/// The first of the routes allowed for `kind` that reaches the applicant: the channel's
/// name, the recipient on it, and why it was chosen (in Polish, for officials); or, when
/// none does, why each was passed over.
async fn choose_route(
    office: &Office,
    kind: LetterKind,
    facts: &ReplyFacts,
) -> Result<Result<(Route, &'static str, String, String), String>, StepError> {
    let mut passed_over: Vec<String> = Vec::new();
    for route in office.routes_for(kind) {
        match route {
            Route::Edoreczenia => {
                let Some(e) = &office.electronic else {
                    passed_over.push("e-Doręczenia nie są skonfigurowane".into());
                    continue;
                };
                let pesel = facts.request.applicant_pesel.as_str();
                let found = if pesel.is_empty() {
                    None
                } else {
                    e.addresses
                        .find(&OfficialId::Pesel(pesel.to_string()))
                        .await
                        .map_err(|e| format!("searching the address database: {e}"))?
                };
                if let Some(ade) = found {
                    return Ok(Ok((
                        Route::Edoreczenia,
                        e.channel.name(),
                        ade,
                        "e-Doręczenia: adres do doręczeń elektronicznych wnioskodawcy znaleziony w bazie adresów (BAE) po numerze PESEL".into(),
                    )));
                }
                // A request that came through e-Doręczenia is answered to the address it came
                // from when the address database has none by PESEL (a company's address, say).
                if let (InboundChannel::Edoreczenia, Some(ade)) = (facts.came_by, &facts.recipient)
                {
                    return Ok(Ok((
                        Route::Edoreczenia,
                        e.channel.name(),
                        ade.clone(),
                        "e-Doręczenia: odpowiedź na adres do doręczeń elektronicznych, z którego wpłynął wniosek".into(),
                    )));
                }
                passed_over.push(
                    "wnioskodawca nie ma adresu do doręczeń elektronicznych w bazie adresów (BAE)"
                        .into(),
                );
            }
            Route::Hybrid => {
                let Some(e) = &office.electronic else {
                    passed_over.push(
                        "usługa hybrydowa idzie przez e-Doręczenia, które nie są skonfigurowane"
                            .into(),
                    );
                    continue;
                };
                let Some(postal) = &facts.postal_address else {
                    passed_over.push("wniosek nie podaje adresu korespondencyjnego".into());
                    continue;
                };
                return Ok(Ok((
                    Route::Hybrid,
                    e.hybrid.name(),
                    postal.to_recipient(),
                    format!(
                        "usługa hybrydowa: list papierowy na adres korespondencyjny z wniosku{}",
                        because(&passed_over)
                    ),
                )));
            }
            Route::Epuap => match (&facts.recipient, facts.came_by) {
                (Some(recipient), InboundChannel::Epuap) => {
                    return Ok(Ok((
                        Route::Epuap,
                        office.channel_for(kind).name(),
                        recipient.clone(),
                        if passed_over.is_empty() {
                            "ePUAP: na adres odpowiedzi z wniosku".to_string()
                        } else {
                            format!("ePUAP{}", because(&passed_over))
                        },
                    )));
                }
                _ => {
                    passed_over.push("wniosek nie wpłynął przez ePUAP z adresem odpowiedzi".into())
                }
            },
        }
    }
    Ok(Err(passed_over.join("; ")))
}

/// ", bo <first reason>; <second>", or nothing.
fn because(passed_over: &[String]) -> String {
    if passed_over.is_empty() {
        String::new()
    } else {
        format!(", bo {}", passed_over.join("; "))
    }
}

/// How many tries of a reply job may fail to ask the channel whether an interrupted send
/// went out before the letter is held for an official (the job's own tries are more).
const LOOKUP_TRIES: i64 = 4;

/// The letter as the channel takes it. Its reference `EUR.<request>` names it to the
/// recipient and, in the subject, among the office's sent messages.
fn outgoing_letter(letter: &LetterRow, request_id: i64, facts: &ReplyFacts) -> OutgoingLetter {
    let reference = format!("EUR.{request_id}");
    let title = LetterKind::parse(&letter.kind).map_or("Pismo urzędu", LetterKind::title);
    OutgoingLetter {
        recipient: letter.recipient.clone(),
        subject: format!("{title}, znak {reference}"),
        file_name: letter.file_name.clone(),
        content: letter.content.clone(),
        reference,
        deliver_by: Some(facts.request.deadline_at),
    }
}

/// Mails the officials about `request` with `why` as its reason, rendered by `render`, once
/// per `key` (the notification row is keyed); nothing when no official is configured.
async fn tell_officials(
    store: &Store,
    office: &Office,
    key: &str,
    request: &RequestRow,
    why: &str,
    render: fn(&RequestSummary, Tz) -> (String, String),
    now: DateTime<Utc>,
) -> Result<(), StepError> {
    if office.officials.is_empty() {
        return Ok(());
    }
    let mut row = request.clone();
    row.reason = why.into();
    let (subject, body) = render(&summary(&row, office.desk_url.as_deref()), office.zone);
    store
        .add_notification(key, &office.officials, &subject, &body, now)
        .await
        .map_err(err)?;
    Ok(())
}

pub(super) async fn mail(store: &Store, job: &Job, office: &Office) -> Result<(), StepError> {
    let id: i64 = job
        .key
        .parse()
        .map_err(|_| format!("mail job with key {:?}", job.key))?;
    let Some((recipients, subject, body)) = store.notification(id).await.map_err(err)? else {
        return store.finish_job(job.claim()).await.map_err(err);
    };
    // Mail cannot be taken back: it goes only while this worker still holds the job.
    if !store.holds(job.claim()).await.map_err(err)? {
        return Err(err(StoreError::ClaimLost(job.id)));
    }
    office
        .mailer
        .send(&recipients, &subject, &body)
        .await
        .map_err(|e| format!("notification {id}: {e}"))?;
    store
        .notification_sent(job.claim(), id, Utc::now())
        .await
        .map_err(err)
}

/// A document other than an access request or a UPD, as correspondence of its party (the
/// signer when the signature passed, else the sender ePUAP vouches for), and the mail to
/// its department by the first matching `[[routing]]` rule.
pub(crate) struct Routed {
    pub record: Correspondence,
    mail: Option<(Vec<String>, String, String)>,
}

impl Routed {
    /// The mail as the store takes it: recipients, subject, body.
    pub fn mail(&self) -> Option<RoutedMail<'_>> {
        self.mail
            .as_ref()
            .map(|(emails, subject, body)| (emails.as_slice(), subject.as_str(), body.as_str()))
    }
}

/// Routes document `document_id` of form type `form_type` (`not_xml` when it is not XML);
/// `letter` is its content read as a general letter, if it is one.
pub(crate) fn route(
    document_id: i64,
    facts: &CorrespondenceFacts,
    form_type: &str,
    letter: Option<GeneralLetter>,
    office: &Office,
) -> Routed {
    let (party_id_type, party_id) = match (
        &facts.signer_pesel,
        &facts.subject_pesel,
        &facts.subject_nip,
    ) {
        (Some(pesel), _, _) | (None, Some(pesel), _) => (Some("PESEL"), Some(pesel.clone())),
        (None, None, Some(nip)) => (Some("NIP"), Some(nip.clone())),
        _ => (None, None),
    };
    let (title, body, sender) = match letter {
        Some(l) => (
            if l.title.is_empty() {
                facts.file_name.clone()
            } else {
                l.title
            },
            l.body,
            l.sender.or(facts.subject_name.clone()),
        ),
        // Not a general letter: an e-Doręczenia message says what it is in its own subject
        // and text; an ePUAP document has its file name.
        None => (
            facts
                .message_subject
                .clone()
                .unwrap_or_else(|| facts.file_name.clone()),
            facts.message_text.clone().unwrap_or_default(),
            facts
                .subject_name
                .clone()
                .or_else(|| facts.sender_address.clone()),
        ),
    };
    let rule = office.routing.iter().find(|r| {
        (r.form_type == "*" || r.form_type == form_type)
            && (r.r#box == "*" || r.r#box == facts.box_address)
    });
    let mail = rule.map(|r| {
        let (subject, body) = templates::routed(
            &title,
            sender.as_deref().unwrap_or("(nieustalony)"),
            &facts.box_address,
            &r.department,
        );
        (r.emails.clone(), subject, body)
    });
    let record = Correspondence {
        document_id,
        party_id_type: party_id_type.map(str::to_string),
        party_id,
        form_type: form_type.to_string(),
        title,
        body,
        sender,
        box_address: facts.box_address.clone(),
        department: rule.map(|r| r.department.clone()),
        received_at: facts.received_at,
    };
    Routed { record, mail }
}

/// A `correspond` job, as earlier versions queued one after the `verify` step (which now
/// records the correspondence itself): the same record, from what the store has.
pub(super) async fn correspond(
    store: &Store,
    job: &Job,
    office: &Office,
    registry: &Arc<Registry>,
) -> Result<(), StepError> {
    let document_id = job.document_id.ok_or("correspond job without a document")?;
    let facts = store.correspondence_facts(document_id).await.map_err(err)?;
    let form_type = facts.form_type.clone().unwrap_or_else(|| NOT_XML.into());
    // Only a document the verify step found to be a general letter has a title and body to
    // read; any other goes without a trip to a blocking thread.
    let letter = if form_type == FormType::GeneralLetter.as_str() {
        let (registry, content) = (registry.clone(), facts.content.clone());
        tokio::task::spawn_blocking(move || match registry.read(&content) {
            Ok(Form::GeneralLetter(letter)) => Some(letter),
            _ => None,
        })
        .await
        .map_err(|e| format!("reading task failed: {e}"))?
    } else {
        None
    };
    let routed = route(document_id, &facts, &form_type, letter, office);
    store
        .record_correspondence(job.claim(), &routed.record, routed.mail(), Utc::now())
        .await
        .map_err(err)
}

/// The form type correspondence records for content that is not XML.
pub(crate) const NOT_XML: &str = "not_xml";

/// A UPD from ePUAP: the recipient opened a letter sent with `dorecz`. It must be sealed
/// by ePUAP's certificate; its IdentyfikatorDokumentu (our reference `EUR.<request>`) names
/// the letter, which becomes `delivered` with the UPD stored beside it.
pub(super) async fn receipt(store: &Store, job: &Job, office: &Office) -> Result<(), StepError> {
    let document_id = job.document_id.ok_or("receipt job without a document")?;
    let content = store.document_content(document_id).await.map_err(err)?;
    let certificate = office.epuap_certificate.clone();
    let bytes = content.clone();
    let read = tokio::task::spawn_blocking(move || {
        crate::provisioning::read_upd(&bytes, &certificate, Utc::now())
    })
    .await
    .map_err(|e| format!("UPD task failed: {e}"))?;
    let (reference, opened) = match read {
        Ok(read) => read,
        Err(why) => {
            tracing::warn!(document = document_id, %why, "UPD refused");
            return store.finish_job(job.claim()).await.map_err(err);
        }
    };
    let request_id = reference
        .strip_prefix("EUR.")
        .and_then(|id| id.parse::<i64>().ok());
    let matched = match request_id {
        Some(id) => store
            .letter_delivered(
                job.claim(),
                id,
                document_id,
                &content,
                opened.as_deref(),
                Utc::now(),
            )
            .await
            .map_err(err)?,
        None => false,
    };
    if matched {
        tracing::info!(document = document_id, %reference, "UPD matched: the letter was delivered");
        Ok(())
    } else {
        tracing::warn!(document = document_id, %reference, "a UPD for no letter of ours");
        store.finish_job(job.claim()).await.map_err(err)
    }
}

/// What [`watch_deadlines`] recorded.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Watched {
    pub reminders: u32,
    pub overdue: u32,
    pub digests: u32,
}

/// Records, at `now`, the reminders (little time left), overdue alerts (deadline passed)
/// and the daily digest that are due; each once (keyed), each with its mail job.
pub async fn watch_deadlines(
    store: &Store,
    office: &Office,
    now: DateTime<Utc>,
) -> Result<Watched, StoreError> {
    let mut watched = Watched::default();
    if office.officials.is_empty() {
        return Ok(watched);
    }
    let open = store.unanswered_requests().await?;
    for row in &open {
        let s = summary(row, office.desk_url.as_deref());
        if row.deadline_at <= now {
            let (subject, body) = templates::overdue(&s, office.zone);
            if store
                .add_notification(
                    &format!("overdue:{}", row.id),
                    &office.officials,
                    &subject,
                    &body,
                    now,
                )
                .await?
            {
                watched.overdue += 1;
            }
        } else if row.deadline_at - office.reminder_before <= now {
            let (subject, body) = templates::reminder(&s, office.zone);
            if store
                .add_notification(
                    &format!("reminder:{}", row.id),
                    &office.officials,
                    &subject,
                    &body,
                    now,
                )
                .await?
            {
                watched.reminders += 1;
            }
        }
    }
    let last = store
        .latest_notification_key("digest:")
        .await?
        .and_then(|key| DateTime::parse_from_rfc3339(&key["digest:".len()..]).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(now - TimeDelta::days(1));
    if let Some(due) = office.digest.due(last, now) {
        let summaries: Vec<_> = open
            .iter()
            .map(|row| summary(row, office.desk_url.as_deref()))
            .collect();
        let (subject, body) =
            templates::digest(office.digest.local_date(due), &summaries, office.zone);
        let key = format!(
            "digest:{}",
            due.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
        if store
            .add_notification(&key, &office.officials, &subject, &body, now)
            .await?
        {
            watched.digests += 1;
        }
    }
    Ok(watched)
}
