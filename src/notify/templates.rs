//! The Polish texts of mail to officials. Each returns (subject, body); times are shown in
//! the office's time zone.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

/// What officials need to know about one access request.
#[derive(Debug, Clone)]
pub struct RequestSummary {
    pub id: i64,
    pub applicant: String,
    pub pesel: String,
    pub received_at: DateTime<Utc>,
    pub deadline_at: DateTime<Utc>,
    pub status: String,
    pub reason: String,
    /// The request's page on the officials' desk (`[desk] public_url`).
    pub link: Option<String>,
}

fn local(at: DateTime<Utc>, zone: Tz) -> String {
    at.with_timezone(&zone)
        .format("%d.%m.%Y, %H:%M")
        .to_string()
}

fn describe(r: &RequestSummary, zone: Tz) -> String {
    format!(
        "Wniosek nr {id}\n\
         Wnioskodawca: {applicant} (PESEL {pesel})\n\
         Wpłynął: {received}\n\
         Termin odpowiedzi: {deadline}\n\
         Powód: {reason}\n",
        id = r.id,
        applicant = r.applicant,
        pesel = r.pesel,
        received = local(r.received_at, zone),
        deadline = local(r.deadline_at, zone),
        reason = if r.reason.is_empty() {
            "—"
        } else {
            &r.reason
        },
    )
}

/// Where the official decides: the request's page on the desk when there is one, else
/// the commands.
fn commands(r: &RequestSummary) -> String {
    let id = r.id;
    match &r.link {
        Some(link) => format!("\nOtwórz wniosek i podejmij decyzję w przeglądarce:\n  {link}\n"),
        None => format!(
            "\nDecyzja:\n  eurzad requests approve {id} [--note \"…\"]\n  eurzad requests reject {id} --reason \"…\"\n\
             Szczegóły: eurzad requests show {id}\n"
        ),
    }
}

const FOOTER: &str =
    "\n-- \nWiadomość wysłana automatycznie przez eUrząd. Prosimy na nią nie odpowiadać.\n";

pub fn waiting(r: &RequestSummary, zone: Tz) -> (String, String) {
    (
        format!(
            "Wniosek nr {} o dostęp do portalu eUrząd czeka na decyzję (termin: {})",
            r.id,
            local(r.deadline_at, zone)
        ),
        format!(
            "Dzień dobry,\n\nwniosek o dostęp do portalu eUrząd wymaga decyzji urzędnika.\n\n{}{}{FOOTER}",
            describe(r, zone),
            commands(r)
        ),
    )
}

pub fn reminder(r: &RequestSummary, zone: Tz) -> (String, String) {
    (
        format!(
            "Przypomnienie: termin odpowiedzi na wniosek nr {} mija {}",
            r.id,
            local(r.deadline_at, zone)
        ),
        format!(
            "Dzień dobry,\n\ndo upływu terminu odpowiedzi na wniosek zostały mniej niż 2 dni.\n\n{}{}{FOOTER}",
            describe(r, zone),
            commands(r)
        ),
    )
}

pub fn overdue(r: &RequestSummary, zone: Tz) -> (String, String) {
    (
        format!(
            "PILNE: przekroczony termin odpowiedzi na wniosek nr {}",
            r.id
        ),
        format!(
            "Dzień dobry,\n\ntermin odpowiedzi na wniosek minął {}. Wnioskodawca nie otrzymał jeszcze odpowiedzi.\n\n{}{}{FOOTER}",
            local(r.deadline_at, zone),
            describe(r, zone),
            commands(r)
        ),
    )
}

pub fn rejected(r: &RequestSummary, zone: Tz) -> (String, String) {
    (
        format!("Odrzucono wniosek nr {} o dostęp do portalu eUrząd", r.id),
        format!(
            "Dzień dobry,\n\nwniosek został odrzucony automatycznie i nie założono konta. \
             Wnioskodawcy wysłano odmowę rejestracji z podaniem powodu.\n\n{}{FOOTER}",
            describe(r, zone)
        ),
    )
}

pub fn reply_impossible(r: &RequestSummary, zone: Tz) -> (String, String) {
    (
        format!(
            "Nie można wysłać odpowiedzi na wniosek nr {} przez ePUAP",
            r.id
        ),
        format!(
            "Dzień dobry,\n\nodpowiedzi na wniosek nie można wysłać automatycznie. \
             Prosimy o wysłanie jej inną drogą przed upływem terminu.\n\n{}{FOOTER}",
            describe(r, zone)
        ),
    )
}

pub fn letter_uncertain(r: &RequestSummary, zone: Tz) -> (String, String) {
    (
        format!("Sprawdź, czy wysłano odpowiedź na wniosek nr {}", r.id),
        format!(
            "Dzień dobry,\n\nwysyłanie odpowiedzi na wniosek zostało przerwane i nie wiadomo, czy \
             dotarła ona do ePUAP. eUrząd nie wyśle jej ponownie sam, aby wnioskodawca nie dostał \
             jej dwa razy. Prosimy sprawdzić skrzynkę urzędu na ePUAP (wysłane) i:\n\
             - jeśli odpowiedź tam jest: eurzad requests mark-sent {id} --document-id IDENTYFIKATOR\n\
             - jeśli jej nie ma: eurzad requests resend {id}\n\n{}{FOOTER}",
            describe(r, zone),
            id = r.id
        ),
    )
}

pub fn digest(date: chrono::NaiveDate, open: &[RequestSummary], zone: Tz) -> (String, String) {
    let list: String = if open.is_empty() {
        "Brak wniosków oczekujących na odpowiedź.\n".into()
    } else {
        open.iter()
            .map(|r| {
                format!(
                    "- nr {}: {} — {}, termin {}\n",
                    r.id,
                    r.applicant,
                    status_pl(&r.status),
                    local(r.deadline_at, zone)
                )
            })
            .collect()
    };
    (
        format!(
            "Zestawienie dzienne eUrząd z dnia {}: wnioski bez odpowiedzi: {}",
            date.format("%d.%m.%Y"),
            open.len()
        ),
        format!(
            "Dzień dobry,\n\nwnioski o dostęp do portalu eUrząd bez wysłanej odpowiedzi:\n\n{list}{FOOTER}"
        ),
    )
}

pub fn routed(title: &str, sender: &str, box_address: &str, department: &str) -> (String, String) {
    (
        format!("Nowe pismo w skrzynce {box_address}: {title}"),
        format!(
            "Dzień dobry,\n\ndo skrzynki ePUAP {box_address} wpłynęło pismo skierowane do: {department}.\n\n\
             Tytuł: {title}\nNadawca: {sender}\n\nPismo jest widoczne w portalu w zakładce „korespondencja”.\n{FOOTER}"
        ),
    )
}

/// Request statuses as officials read them.
pub fn status_pl(status: &str) -> &'static str {
    <crate::provisioning::RequestStatus as crate::states::Named>::parse(status)
        .map_or("nieznany", |s| s.polish())
}
