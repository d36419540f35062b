//! The desk's pages: each handler checks the sign-in (and, for a form, its CSRF token),
//! reads what the page shows, and renders its template. Messages are in Polish; what goes
//! wrong is said in words an official understands, and nothing changes.
//!
//! Helpers answer `Result<_, Response>`: the error is the page to show, which is what a
//! handler returns anyway.
#![allow(clippy::result_large_err)]

use std::net::SocketAddr;

use askama::Template;
use axum::extract::{ConnectInfo, Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::{DateTime, NaiveDate, Utc};

use super::auth::{self, SESSION_COOKIE, SIGN_IN_COOKIE};
use super::{Desk, DeskState};
use crate::provisioning::RequestStatus;
use crate::states::Named as _;
use crate::store::{Session, StoreError};

/// The longest reason or note a form takes.
const TEXT_LIMIT: usize = 1000;

/// Who is signed in, as the pages show it, with the token their forms carry.
pub struct Me {
    pub login: String,
    pub name: String,
    pub csrf: String,
}

impl Me {
    fn of(session: &Session) -> Me {
        Me {
            login: session.official.login.clone(),
            name: session.official.name.clone(),
            csrf: session.csrf.clone(),
        }
    }
}

/// How an official is named on the record: "Anna Nowak (anowak)".
fn on_record(session: &Session) -> String {
    format!("{} ({})", session.official.name, session.official.login)
}

#[derive(Template)]
#[template(path = "desk/message.html")]
struct MessagePage<'a> {
    me: Option<Me>,
    title: &'a str,
    text: &'a str,
    back: &'a str,
}

fn render(template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "a desk page could not be rendered");
            (StatusCode::INTERNAL_SERVER_ERROR, "błąd strony").into_response()
        }
    }
}

/// A page that says what went wrong, with `status`.
fn message(status: StatusCode, me: Option<Me>, title: &str, text: &str, back: &str) -> Response {
    let mut response = render(&MessagePage {
        me,
        title,
        text,
        back,
    });
    *response.status_mut() = status;
    response
}

fn database_trouble(error: &StoreError) -> Response {
    tracing::error!(%error, "the desk could not read or write the database");
    message(
        StatusCode::SERVICE_UNAVAILABLE,
        None,
        "Chwilowy błąd",
        "Baza danych nie odpowiada. Spróbuj ponownie za chwilę; nic nie zostało zmienione.",
        "/",
    )
}

fn local(desk: &Desk, at: DateTime<Utc>) -> String {
    at.with_timezone(&desk.settings.zone)
        .format("%d.%m.%Y %H:%M")
        .to_string()
}

/// "zostały 3 dni", "termin mija dziś", "po terminie (2 dni)": by the office's calendar days.
fn days_left(zone: chrono_tz::Tz, deadline: DateTime<Utc>, now: DateTime<Utc>) -> (String, bool) {
    let days = (deadline.with_timezone(&zone).date_naive() - now.with_timezone(&zone).date_naive())
        .num_days();
    let overdue = deadline < now;
    let text = match days {
        0 if overdue => "po terminie (minął dziś)".to_string(),
        _ if overdue => {
            let late = days.unsigned_abs();
            format!(
                "po terminie ({late} {})",
                if late == 1 { "dzień" } else { "dni" }
            )
        }
        0 => "termin mija dziś".to_string(),
        1 => "został 1 dzień".to_string(),
        n if (2..=4).contains(&(n % 10)) && !(12..=14).contains(&(n % 100)) => {
            format!("zostały {n} dni")
        }
        n => format!("zostało {n} dni"),
    };
    (text, overdue)
}

fn status_polish(status: &str) -> String {
    RequestStatus::parse(status).map_or_else(|| status.to_string(), |s| s.polish().to_string())
}

/// The sign-in of this browser, if it has one.
async fn session(desk: &Desk, headers: &HeaderMap) -> Result<Option<Session>, Response> {
    let Some(token) = auth::cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    desk.store
        .session(&auth::token_digest(token), Utc::now())
        .await
        .map_err(|e| database_trouble(&e))
}

/// The sign-in, or the sign-in page (coming back to `here` after).
async fn require(desk: &Desk, headers: &HeaderMap, here: &str) -> Result<Session, Response> {
    match session(desk, headers).await? {
        Some(session) => Ok(session),
        // `here` may carry what a path segment decoded to: only a plain path goes back.
        None => {
            Err(Redirect::to(&format!("/login?next={}", safe_next(Some(here)))).into_response())
        }
    }
}

/// A form's value.
fn field<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The form carries the token of this sign-in; otherwise nothing is done.
fn check_csrf(session: &Session, pairs: &[(String, String)], back: &str) -> Result<(), Response> {
    match field(pairs, "csrf") {
        Some(token) if auth::same_secret(token, &session.csrf) => Ok(()),
        _ => Err(message(
            StatusCode::FORBIDDEN,
            Some(Me::of(session)),
            "Formularz nieważny",
            "Ten formularz wygasł albo nie pochodzi z biurka urzędnika. Otwórz stronę \
             ponownie i spróbuj jeszcze raz. Nic nie zostało zmienione.",
            back,
        )),
    }
}

/// Where to go after signing in: a path of the desk only.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "/-_?=&".contains(c)) =>
        {
            n.to_string()
        }
        _ => "/".to_string(),
    }
}

#[derive(Template)]
#[template(path = "desk/login.html")]
struct SignInPage<'a> {
    error: Option<&'a str>,
    csrf: &'a str,
    next: &'a str,
    login: &'a str,
}

#[derive(serde::Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

/// The sign-in form, with a fresh token in its own cookie (double submit).
fn sign_in_page(desk: &Desk, error: Option<&str>, next: &str, login: &str) -> Response {
    let csrf = auth::token();
    let mut response = render(&SignInPage {
        error,
        csrf: &csrf,
        next,
        login,
    });
    set_cookie(
        &mut response,
        &auth::set_cookie(
            SIGN_IN_COOKIE,
            &csrf,
            std::time::Duration::from_secs(3600),
            desk.settings.insecure_ok,
        ),
    );
    response
}

fn set_cookie(response: &mut Response, cookie: &str) {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

pub async fn sign_in_form(
    State(DeskState(desk)): State<DeskState>,
    headers: HeaderMap,
    Query(query): Query<NextQuery>,
) -> Response {
    match session(&desk, &headers).await {
        Ok(Some(_)) => Redirect::to(&safe_next(query.next.as_deref())).into_response(),
        Ok(None) => sign_in_page(&desk, None, &safe_next(query.next.as_deref()), ""),
        Err(response) => response,
    }
}

pub async fn sign_in(
    State(DeskState(desk)): State<DeskState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let login = field(&pairs, "login").unwrap_or("").trim().to_string();
    let password = field(&pairs, "password").unwrap_or("").to_string();
    let next = safe_next(field(&pairs, "next"));
    let form_token = field(&pairs, "csrf").unwrap_or("");
    let cookie_token = auth::cookie(&headers, SIGN_IN_COOKIE).unwrap_or("");
    if form_token.is_empty() || !auth::same_secret(form_token, cookie_token) {
        let mut response = sign_in_page(
            &desk,
            Some("Formularz logowania wygasł. Wpisz login i hasło jeszcze raz."),
            &next,
            &login,
        );
        *response.status_mut() = StatusCode::FORBIDDEN;
        return response;
    }
    let from = Some(client_address(&headers, peer));
    if !desk.limit.allows(&login, from) {
        let minutes = desk.settings.sign_in_window.as_secs().div_ceil(60);
        let _ = desk
            .store
            .audit_refused_sign_in(&login, "too many failed sign-ins", Utc::now())
            .await;
        let text =
            format!("Zbyt wiele nieudanych prób logowania. Spróbuj ponownie za {minutes} minut.");
        let mut response = sign_in_page(&desk, Some(&text), &next, &login);
        *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
        return response;
    }
    let found = match desk.store.official_for_sign_in(&login).await {
        Ok(found) => found,
        Err(e) => return database_trouble(&e),
    };
    // The password is checked even for an unknown login, so that the answer takes as long.
    let hash = found
        .as_ref()
        .and_then(|(_, h)| h.clone())
        .unwrap_or_else(|| dummy_hash().to_string());
    let matches = tokio::task::spawn_blocking(move || auth::password_matches(&password, &hash))
        .await
        .unwrap_or(false);
    let refusal = match &found {
        None => Some("unknown login"),
        Some((official, _)) if official.disabled_at.is_some() => Some("the official is disabled"),
        Some((_, None)) => Some("no password set"),
        Some(_) if !matches => Some("wrong password"),
        Some(_) => None,
    };
    if let Some(why) = refusal {
        desk.limit.failed(&login, from);
        let _ = desk
            .store
            .audit_refused_sign_in(&login, why, Utc::now())
            .await;
        tracing::warn!(login = %login, from = ?from, why, "desk sign-in refused");
        let mut response = sign_in_page(
            &desk,
            Some("Nieprawidłowy login lub hasło, albo konto jest wyłączone."),
            &next,
            &login,
        );
        *response.status_mut() = StatusCode::UNAUTHORIZED;
        return response;
    }
    let Some((official, _)) = found else {
        unreachable!("refused above");
    };
    desk.limit.succeeded(&login);
    let token = auth::token();
    let csrf = auth::token();
    let now = Utc::now();
    let ttl = desk.settings.session_ttl;
    let expires = now + chrono::TimeDelta::from_std(ttl).unwrap_or(chrono::TimeDelta::hours(8));
    if let Err(e) = desk
        .store
        .open_session(
            &auth::token_digest(&token),
            &official,
            &csrf,
            &format!("password, from {}", peer.ip()),
            now,
            expires,
        )
        .await
    {
        return database_trouble(&e);
    }
    tracing::info!(login = %official.login, from = %peer.ip(), "desk sign-in");
    let mut response = Redirect::to(&next).into_response();
    set_cookie(
        &mut response,
        &auth::set_cookie(SESSION_COOKIE, &token, ttl, desk.settings.insecure_ok),
    );
    set_cookie(
        &mut response,
        &auth::set_cookie(
            SIGN_IN_COOKIE,
            "",
            std::time::Duration::ZERO,
            desk.settings.insecure_ok,
        ),
    );
    response
}

/// The client's address: the peer's, or, when the peer is a reverse proxy on this host
/// (loopback), the last address it put in `X-Forwarded-For`.
fn client_address(headers: &HeaderMap, peer: SocketAddr) -> std::net::IpAddr {
    if !peer.ip().is_loopback() {
        return peer.ip();
    }
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|a| a.trim().parse().ok())
        .next_back()
        .unwrap_or(peer.ip())
}

/// An argon2id hash of a random password nobody knows, checked when the login is unknown.
fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| auth::hash_password(&auth::token()).unwrap_or_default())
}

pub async fn sign_out(
    State(DeskState(desk)): State<DeskState>,
    headers: HeaderMap,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let session = match require(&desk, &headers, "/").await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if let Err(r) = check_csrf(&session, &pairs, "/") {
        return r;
    }
    if let Some(token) = auth::cookie(&headers, SESSION_COOKIE)
        && let Err(e) = desk
            .store
            .end_session(&auth::token_digest(token), Utc::now())
            .await
    {
        return database_trouble(&e);
    }
    let mut response = Redirect::to("/login").into_response();
    set_cookie(
        &mut response,
        &auth::set_cookie(
            SESSION_COOKIE,
            "",
            std::time::Duration::ZERO,
            desk.settings.insecure_ok,
        ),
    );
    response
}

pub struct QueueLine {
    id: i64,
    applicant: String,
    pesel: String,
    asks: Vec<String>,
    reason: String,
    received: String,
    deadline: String,
    days_left: String,
    overdue: bool,
}

pub struct DecidedLine {
    id: i64,
    applicant: String,
    status: String,
    by: String,
    at: String,
}

#[derive(Template)]
#[template(path = "desk/queue.html")]
struct QueuePage {
    me: Me,
    filters: Vec<(&'static str, &'static str)>,
    filter: String,
    heading: String,
    rows: Vec<QueueLine>,
    decided: Vec<DecidedLine>,
}

#[derive(serde::Deserialize)]
pub struct QueueQuery {
    status: Option<String>,
}

/// The filters of the queue: what waits (the default), each status, or all.
const FILTERS: [(&str, &str); 8] = [
    ("awaiting_official", "czekające na decyzję"),
    ("received", "przyjęte, jeszcze nieocenione"),
    ("approved", "zatwierdzone, odpowiedź w drodze"),
    ("rejected", "odrzucone, odpowiedź w drodze"),
    ("replied", "z wysłaną odpowiedzią"),
    ("delivered", "z doręczoną odpowiedzią"),
    ("open", "wszystkie bez odpowiedzi"),
    ("all", "wszystkie"),
];

/// The queue of requests with at most this many rows.
const QUEUE_LIMIT: i64 = 5_000;

pub async fn queue(
    State(DeskState(desk)): State<DeskState>,
    headers: HeaderMap,
    Query(query): Query<QueueQuery>,
) -> Response {
    let session = match require(&desk, &headers, "/").await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let filter = query
        .status
        .filter(|s| FILTERS.iter().any(|(v, _)| v == s))
        .unwrap_or_else(|| "awaiting_official".to_string());
    let statuses: Vec<&str> = match filter.as_str() {
        "all" => Vec::new(),
        "open" => RequestStatus::ALL
            .iter()
            .filter(|s| s.awaits_reply())
            .map(|s| s.as_str())
            .collect(),
        one => vec![one],
    };
    let read = async {
        let rows = desk.store.desk_queue(&statuses, false, QUEUE_LIMIT).await?;
        let decided = desk.store.desk_queue(&[], true, 20).await?;
        Ok::<_, StoreError>((rows, decided))
    };
    let (rows, decided) = match read.await {
        Ok(read) => read,
        Err(e) => return database_trouble(&e),
    };
    let now = Utc::now();
    let heading = FILTERS
        .iter()
        .find(|(v, _)| *v == filter)
        .map_or("Wnioski", |(_, label)| label);
    let mut chars = heading.chars();
    let heading: String = chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default();
    render(&QueuePage {
        me: Me::of(&session),
        filters: FILTERS.to_vec(),
        filter,
        heading,
        rows: rows
            .into_iter()
            .map(|r| {
                let (days_left, overdue) = days_left(desk.settings.zone, r.deadline_at, now);
                QueueLine {
                    id: r.id,
                    applicant: r.applicant_name,
                    pesel: r.applicant_pesel,
                    asks: r.asks,
                    reason: r.reason,
                    received: local(&desk, r.received_at),
                    deadline: local(&desk, r.deadline_at),
                    days_left,
                    overdue: overdue
                        && RequestStatus::parse(&r.status).is_some_and(|s| s.awaits_reply()),
                }
            })
            .collect(),
        decided: decided
            .into_iter()
            .map(|d| DecidedLine {
                id: d.id,
                applicant: d.applicant_name,
                status: status_polish(&d.status),
                by: d.decided_by.unwrap_or_default(),
                at: d.decided_at.map(|t| local(&desk, t)).unwrap_or_default(),
            })
            .collect(),
    })
}

pub struct RequestView {
    id: i64,
    status: String,
    applicant: String,
    pesel: String,
    email: Option<String>,
    received: String,
    came_by: String,
    deadline: String,
    days_left: String,
    overdue: bool,
    reason: String,
    decided_by: Option<String>,
    decided_at: String,
    decision_note: String,
}

pub struct SignatureView {
    verdict: String,
    verdict_class: &'static str,
    kind: String,
    signer: String,
    signing_time: String,
    qualified: &'static str,
    chain: Vec<String>,
    explained: &'static str,
    reason: String,
    form: String,
    file_name: String,
}

pub struct RepresentationView {
    number: usize,
    principal: String,
    scope: String,
    basis: String,
    proven: bool,
    proof: String,
}

pub struct LetterView {
    id: i64,
    channel: String,
    status: String,
    legal: String,
    why: String,
    proofs: Vec<String>,
}

pub struct AuditView {
    at: String,
    actor: String,
    action: String,
    detail: String,
}

#[derive(Template)]
#[template(path = "desk/request.html")]
struct RequestPage {
    me: Me,
    r: RequestView,
    sig: SignatureView,
    reps: Vec<RepresentationView>,
    awaiting: bool,
    letters: Vec<LetterView>,
    audit: Vec<AuditView>,
    done: Option<&'static str>,
}

#[derive(serde::Deserialize)]
pub struct DoneQuery {
    done: Option<String>,
}

fn not_such_request(me: Me, id: &str) -> Response {
    message(
        StatusCode::NOT_FOUND,
        Some(me),
        "Nie ma takiego wniosku",
        &format!("Nie ma wniosku o numerze {id}. Sprawdź numer w kolejce wniosków."),
        "/",
    )
}

/// A request id from the path: a number, else the page says there is no such request.
fn request_id(raw: &str) -> Option<i64> {
    raw.parse::<i64>().ok().filter(|id| *id > 0)
}

fn channel_polish(channel: &str) -> String {
    match channel {
        "edoreczenia" => "e-Doręczenia".into(),
        "hybrid" => "usługa hybrydowa (list papierowy)".into(),
        "epuap_skrytka" => "ePUAP (skrytka)".into(),
        "epuap_doreczyciel" => "ePUAP (doręczyciel, z UPD)".into(),
        other => other.into(),
    }
}

fn letter_status_polish(status: &str) -> String {
    match status {
        "pending" => "czeka na wysłanie".into(),
        "sending" => "w trakcie wysyłania".into(),
        "review_required" => "wstrzymane: wysyłanie przerwane, urzędnik musi sprawdzić".into(),
        "sent" => "wysłane".into(),
        "delivered" => "doręczone".into(),
        other => other.into(),
    }
}

/// An audit row's action as officials read it.
fn action_polish(action: &str) -> String {
    match action {
        "approved" => "zatwierdzenie wniosku".into(),
        "rejected" => "odrzucenie wniosku".into(),
        "awaiting_official" => "przekazanie urzędnikowi".into(),
        "account_activated" => "założenie konta".into(),
        "representation_granted" => "przyznanie przedstawicielstwa".into(),
        "representation_not_granted" => "nieprzyznanie przedstawicielstwa".into(),
        "replied" => "wysłanie odpowiedzi".into(),
        "reply_impossible" => "odpowiedzi nie da się wysłać".into(),
        "letter_legal_state" => "zmiana stanu prawnego pisma".into(),
        "desk_document_read" => "pobranie dokumentu".into(),
        other => other.into(),
    }
}

/// What a verdict means, in words an official understands (ETSI EN 319 102-1's
/// sub-indications); the verifier's own reason is shown beside it as the technical detail.
fn verdict_explained(indication: Option<&str>, subindication: Option<&str>) -> &'static str {
    match (indication, subindication) {
        (Some("TOTAL-PASSED"), _) => {
            "podpis obejmuje cały dokument, a certyfikat pochodzi od zaufanego wystawcy i był ważny w chwili podpisu"
        }
        (_, Some("HASH_FAILURE")) => "treść dokumentu zmieniono po podpisaniu",
        (_, Some("SIG_CRYPTO_FAILURE")) => "podpis nie zgadza się z kluczem certyfikatu",
        (_, Some("SIGNED_DATA_NOT_FOUND")) => {
            "podpis nie obejmuje treści, którą odczytano (możliwa podmiana treści)"
        }
        (_, Some("FORMAT_FAILURE")) => {
            "dokument lub podpis ma niedozwoloną budowę (na przykład niebezpieczną konstrukcję XML, niedozwolony algorytm albo brak podpisu)"
        }
        (_, Some("SIG_CONSTRAINTS_FAILURE")) => {
            "podpis nie spełnia wymagań (na przykład jego właściwości nie są podpisane)"
        }
        (_, Some("NO_SIGNING_CERTIFICATE_FOUND")) => "brak certyfikatu, którym złożono podpis",
        (_, Some("NO_CERTIFICATE_CHAIN_FOUND")) => "certyfikat nie pochodzi od zaufanego wystawcy",
        (_, Some("REVOKED_NO_POE")) => "certyfikat podpisującego został unieważniony",
        (_, Some("OUT_OF_BOUNDS_NO_POE")) => "certyfikat nie był ważny w chwili podpisu",
        (_, Some("REVOCATION_OUT_OF_BOUNDS_NO_POE")) => {
            "nie da się potwierdzić, że certyfikat nie był unieważniony"
        }
        (_, Some("TRY_LATER")) => {
            "nie udało się sprawdzić, czy certyfikat nie został unieważniony; sprawdzenie zostanie powtórzone"
        }
        (Some(_), _) => "podpisu nie da się uznać za prawidłowy",
        (None, _) => "dokument nie zawiera podpisu, który można sprawdzić",
    }
}

fn kind_polish(kind: Option<&str>) -> String {
    match kind {
        Some("qualified") => "kwalifikowany podpis elektroniczny (XAdES)".into(),
        Some("trusted_profile") => "podpis zaufany (profil zaufany ePUAP)".into(),
        Some("personal") => "podpis osobisty (e-dowód)".into(),
        Some(other) => other.into(),
        None => "brak podpisu lub nieustalony".into(),
    }
}

pub async fn request(
    State(DeskState(desk)): State<DeskState>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    Query(query): Query<DoneQuery>,
) -> Response {
    let session = match require(&desk, &headers, &format!("/requests/{raw}")).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Some(id) = request_id(&raw) else {
        return not_such_request(Me::of(&session), &raw);
    };
    let (row, requested) = match desk.store.request(id).await {
        Ok(found) => found,
        Err(StoreError::NotFound { .. }) => {
            return not_such_request(Me::of(&session), &raw);
        }
        Err(e) => return database_trouble(&e),
    };
    let read = async {
        let report = desk.store.signature_report(row.document_id).await?;
        let letter = desk.store.letter_standing(&format!("reply:{id}")).await?;
        let proofs = match &letter {
            Some(l) => Some(desk.store.epuap_proofs(l.letter_id).await?),
            None => None,
        };
        let audit = desk.store.request_audit(id).await?;
        Ok::<_, StoreError>((report, letter, proofs, audit))
    };
    let (report, letter, proofs, audit) = match read.await {
        Ok(read) => read,
        Err(e) => return database_trouble(&e),
    };
    let now = Utc::now();
    let (days, overdue) = days_left(desk.settings.zone, row.deadline_at, now);
    let awaiting = RequestStatus::parse(&row.status) == Some(RequestStatus::AwaitingOfficial);
    let passed = report.indication.as_deref() == Some("TOTAL-PASSED");
    let signer = [
        report.signer_given_name.as_deref(),
        report.signer_surname.as_deref(),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" ");
    let sig = SignatureView {
        verdict: match report.indication.as_deref() {
            Some("TOTAL-PASSED") => "podpis prawidłowy (TOTAL-PASSED)".into(),
            Some("TOTAL-FAILED") => format!(
                "podpis nieprawidłowy (TOTAL-FAILED{})",
                report
                    .subindication
                    .as_deref()
                    .map(|s| format!(", {s}"))
                    .unwrap_or_default()
            ),
            Some("INDETERMINATE") => format!(
                "nie da się rozstrzygnąć (INDETERMINATE{})",
                report
                    .subindication
                    .as_deref()
                    .map(|s| format!(", {s}"))
                    .unwrap_or_default()
            ),
            _ => "dokument bez podpisu, który można sprawdzić".into(),
        },
        verdict_class: if passed { "ok" } else { "bad" },
        kind: kind_polish(report.kind.as_deref()),
        // The signer only from signed content: shown when the signature passed.
        signer: if passed && !signer.is_empty() {
            format!(
                "{signer}{}{}",
                report
                    .signer_pesel
                    .as_deref()
                    .map(|p| format!(", PESEL {p}"))
                    .unwrap_or_default(),
                report
                    .signer_organization
                    .as_deref()
                    .map(|o| format!(", {o}"))
                    .unwrap_or_default()
            )
        } else {
            "nieustalony (tylko z treści objętej ważnym podpisem)".into()
        },
        signing_time: report
            .signing_time
            .map_or_else(|| "nie podano".into(), |t| local(&desk, t)),
        qualified: match report.qualified {
            Some(true) => "tak",
            Some(false) => "nie",
            None => "nie dotyczy",
        },
        chain: report.chain,
        explained: verdict_explained(
            report.indication.as_deref(),
            report.subindication.as_deref(),
        ),
        reason: report.reason.unwrap_or_default(),
        form: match (&report.form_type, &report.form_error) {
            (_, Some(error)) => format!("nie da się odczytać: {error}"),
            (Some(t), None) if t == "access_request" => "wniosek o dostęp, odczytany".into(),
            (Some(t), None) => t.clone(),
            (None, None) => "nie XML".into(),
        },
        file_name: report.file_name,
    };
    let letters = letter
        .map(|l| {
            let mut proofs_text: Vec<String> = Vec::new();
            if let Some(p) = &proofs {
                if let Some(upp) = &p.upp_identifier {
                    proofs_text.push(format!("UPP (poświadczenie przedłożenia) nr {upp}"));
                }
                if p.has_upd {
                    proofs_text.push("UPD (poświadczenie doręczenia) otrzymane".into());
                }
            }
            for e in &l.evidences {
                proofs_text.push(format!(
                    "dowód {} z {}, pieczęć: {}",
                    e.code,
                    local(&desk, e.event_at),
                    match e.seal.as_str() {
                        "valid" => "prawidłowa",
                        "invalid" => "NIEPRAWIDŁOWA",
                        _ => "niesprawdzona",
                    }
                ));
            }
            LetterView {
                id: l.letter_id,
                channel: channel_polish(&l.channel),
                status: letter_status_polish(&l.status),
                legal: l
                    .legal_state
                    .map(|s| {
                        format!(
                            "{}{}",
                            s.polish(),
                            l.deemed_on
                                .map(|d| format!(" (dnia {})", d.format("%d.%m.%Y")))
                                .unwrap_or_default()
                        )
                    })
                    .unwrap_or_default(),
                why: l.channel_reason.clone().unwrap_or_default(),
                proofs: proofs_text,
            }
        })
        .into_iter()
        .collect();
    render(&RequestPage {
        me: Me::of(&session),
        r: RequestView {
            id: row.id,
            status: status_polish(&row.status),
            applicant: row.applicant_name.clone(),
            pesel: row.applicant_pesel.clone(),
            email: row.applicant_email.clone(),
            received: local(&desk, row.received_at),
            came_by: channel_polish(if report.channel == "edoreczenia" {
                "edoreczenia"
            } else {
                "ePUAP"
            }),
            deadline: local(&desk, row.deadline_at),
            days_left: if RequestStatus::parse(&row.status).is_some_and(|s| s.awaits_reply()) {
                days
            } else {
                "odpowiedziano".into()
            },
            overdue: overdue && RequestStatus::parse(&row.status).is_some_and(|s| s.awaits_reply()),
            reason: row.reason.clone(),
            decided_by: row.decided_by.clone(),
            decided_at: row.decided_at.map(|t| local(&desk, t)).unwrap_or_default(),
            decision_note: row.decision_note.clone().unwrap_or_default(),
        },
        sig,
        reps: requested
            .iter()
            .enumerate()
            .map(|(n, r)| RepresentationView {
                number: n + 1,
                principal: format!(
                    "{} ({} {})",
                    r.principal_name, r.principal_id_type, r.principal_id
                ),
                scope: r.scope.clone(),
                basis: r.basis.clone(),
                proven: r.proven,
                proof: r.proof.clone(),
            })
            .collect(),
        awaiting,
        letters,
        audit: audit
            .into_iter()
            .map(|a| AuditView {
                at: local(&desk, a.at),
                actor: a.actor,
                action: action_polish(&a.action),
                detail: a.detail.unwrap_or_default(),
            })
            .collect(),
        done: match query.done.as_deref() {
            Some("approved") => Some("Wniosek zatwierdzony. Odpowiedź zostanie wysłana."),
            Some("rejected") => Some("Wniosek odrzucony. Odpowiedź z powodem zostanie wysłana."),
            _ => None,
        },
    })
}

pub async fn document(
    State(DeskState(desk)): State<DeskState>,
    headers: HeaderMap,
    Path(raw): Path<String>,
) -> Response {
    let session = match require(&desk, &headers, &format!("/requests/{raw}")).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Some(id) = request_id(&raw) else {
        return not_such_request(Me::of(&session), &raw);
    };
    let row = match desk.store.request(id).await {
        Ok((row, _)) => row,
        Err(StoreError::NotFound { .. }) => return not_such_request(Me::of(&session), &raw),
        Err(e) => return database_trouble(&e),
    };
    let (name, content_type, bytes) = match desk.store.original_document(row.document_id).await {
        Ok(found) => found,
        Err(e) => return database_trouble(&e),
    };
    // A read of a citizen's document: on the record.
    if let Err(e) = desk
        .store
        .audit(
            &on_record(&session),
            "desk_document_read",
            &format!("access_request:{id}"),
            &name,
        )
        .await
    {
        return database_trouble(&e);
    }
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".-_".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let content_type =
        if content_type.contains('/') && content_type.chars().all(|c| c.is_ascii_graphic()) {
            content_type
        } else {
            "application/octet-stream".into()
        };
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&content_type) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{ascii}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

#[derive(Template)]
#[template(path = "desk/confirm.html")]
struct ConfirmPage {
    me: Me,
    id: i64,
    action: &'static str,
    summary: String,
    lines: Vec<String>,
    hidden: Vec<(String, String)>,
    button: &'static str,
}

/// What a decision form comes to before anything is done: the request, awaiting an
/// official; or the page that says why not.
async fn decidable(
    desk: &Desk,
    headers: &HeaderMap,
    raw: &str,
    pairs: &[(String, String)],
) -> Result<Decidable, Response> {
    let back = format!("/requests/{raw}");
    let session = require(desk, headers, &back).await?;
    let session = &session;
    check_csrf(session, pairs, &back)?;
    let Some(id) = request_id(raw) else {
        return Err(not_such_request(Me::of(session), raw));
    };
    let (row, requested) = match desk.store.request(id).await {
        Ok(found) => found,
        Err(StoreError::NotFound { .. }) => return Err(not_such_request(Me::of(session), raw)),
        Err(e) => return Err(database_trouble(&e)),
    };
    if RequestStatus::parse(&row.status) != Some(RequestStatus::AwaitingOfficial) {
        return Err(message(
            StatusCode::CONFLICT,
            Some(Me::of(session)),
            "Wniosek już rozpatrzony",
            &format!(
                "Wniosek nr {id} nie czeka na decyzję (stan: {}{}). Nic nie zostało zmienione.",
                status_polish(&row.status),
                row.decided_by
                    .as_deref()
                    .map(|b| format!(", zdecydował(a): {b}"))
                    .unwrap_or_default()
            ),
            &back,
        ));
    }
    Ok((session.clone(), id, row, requested))
}

/// A request that can be decided now, and who decides it.
type Decidable = (
    Session,
    i64,
    crate::store::RequestRow,
    Vec<crate::store::RequestedRow>,
);

fn invalid(session: &Session, id: &str, text: &str) -> Response {
    message(
        StatusCode::UNPROCESSABLE_ENTITY,
        Some(Me::of(session)),
        "Popraw formularz",
        &format!("{text} Nic nie zostało zmienione."),
        &format!("/requests/{id}"),
    )
}

/// A date field: empty is none; otherwise RRRR-MM-DD.
fn date_field(
    pairs: &[(String, String)],
    name: &str,
    label: &str,
) -> Result<Option<NaiveDate>, String> {
    match field(pairs, name).map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => NaiveDate::parse_from_str(v, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| format!("Data „{label}” ({v}) nie jest datą w postaci RRRR-MM-DD.")),
    }
}

/// What a failed decision means for the official.
fn decision_failed(session: &Session, id: i64, error: &crate::requests::RequestsError) -> Response {
    tracing::warn!(request = id, %error, "a desk decision was not made");
    message(
        StatusCode::CONFLICT,
        Some(Me::of(session)),
        "Decyzja nie została zapisana",
        &format!(
            "Decyzji nie udało się zapisać i nic nie zostało zmienione. Powód (dla administratora): {error}"
        ),
        &format!("/requests/{id}"),
    )
}

/// The confirmed decision, through the one code path of the command line; the request's
/// page with what was done, or why nothing was.
async fn decide(
    desk: &Desk,
    session: &Session,
    id: i64,
    decision: crate::requests::Decision<'_>,
) -> Response {
    let (done, what) = if decision.approve {
        ("approved", "request approved at the desk")
    } else {
        ("rejected", "request rejected at the desk")
    };
    match crate::requests::decide(&desk.store, &desk.registry, id, decision).await {
        Ok(()) => {
            tracing::info!(request = id, official = %session.official.login, "{what}");
            Redirect::to(&format!("/requests/{id}?done={done}")).into_response()
        }
        Err(e) => decision_failed(session, id, &e),
    }
}

pub async fn approve(
    State(DeskState(desk)): State<DeskState>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let (session, id, row, requested) = match decidable(&desk, &headers, &raw, &pairs).await {
        Ok(found) => found,
        Err(r) => return r,
    };
    let mut only: Vec<usize> = Vec::new();
    for (k, v) in &pairs {
        if k == "only" {
            match v.parse::<usize>() {
                Ok(n) if (1..=requested.len()).contains(&n) => only.push(n),
                _ => {
                    return invalid(
                        &session,
                        &raw,
                        &format!("Wniosek nie ma przedstawicielstwa o numerze „{v}”."),
                    );
                }
            }
        }
    }
    only.sort_unstable();
    only.dedup();
    if !requested.is_empty() && only.is_empty() {
        return invalid(
            &session,
            &raw,
            "Zaznacz co najmniej jedno przedstawicielstwo albo odrzuć wniosek.",
        );
    }
    let note = field(&pairs, "note").unwrap_or("").trim().to_string();
    if note.chars().count() > TEXT_LIMIT {
        return invalid(
            &session,
            &raw,
            &format!(
                "Notatka jest za długa: {} znaków, najwięcej {TEXT_LIMIT}.",
                note.chars().count()
            ),
        );
    }
    let (from, to) = match (
        date_field(&pairs, "valid_from", "ważne od"),
        date_field(&pairs, "valid_to", "ważne do"),
    ) {
        (Ok(from), Ok(to)) => (from, to),
        (Err(e), _) | (_, Err(e)) => return invalid(&session, &raw, &e),
    };
    if to.is_some() && from.is_none() {
        return invalid(
            &session,
            &raw,
            "Podaj też, od kiedy upoważnienie jest ważne.",
        );
    }
    if let (Some(f), Some(t)) = (from, to)
        && t < f
    {
        return invalid(
            &session,
            &raw,
            "Upoważnienie nie może kończyć się przed początkiem.",
        );
    }
    let unproven: Vec<&crate::store::RequestedRow> = only
        .iter()
        .map(|n| &requested[n - 1])
        .filter(|r| !r.proven)
        .collect();
    if !unproven.is_empty() && from.is_none() {
        return invalid(
            &session,
            &raw,
            "Co najmniej jedno zaznaczone przedstawicielstwo nie ma załączonego upoważnienia: \
             podaj okres upoważnienia, które widzisz (pole „ważne od”), albo je odznacz.",
        );
    }
    let granted: Vec<String> = only
        .iter()
        .map(|n| {
            let r = &requested[n - 1];
            format!(
                "przyznane: {}. {} ({} {}): {}",
                n, r.principal_name, r.principal_id_type, r.principal_id, r.scope
            )
        })
        .chain(
            (1..=requested.len())
                .filter(|n| !only.contains(n))
                .map(|n| {
                    let r = &requested[n - 1];
                    format!(
                        "NIE przyznane: {}. {} ({} {})",
                        n, r.principal_name, r.principal_id_type, r.principal_id
                    )
                }),
        )
        .collect();
    if field(&pairs, "confirm") != Some("tak") {
        let mut hidden: Vec<(String, String)> = only
            .iter()
            .map(|n| ("only".to_string(), n.to_string()))
            .collect();
        hidden.push(("note".into(), note));
        if let Some(f) = from {
            hidden.push(("valid_from".into(), f.to_string()));
        }
        if let Some(t) = to {
            hidden.push(("valid_to".into(), t.to_string()));
        }
        return render(&ConfirmPage {
            me: Me::of(&session),
            id,
            action: "approve",
            summary: format!(
                "Zatwierdzasz wniosek {} (PESEL {}): powstanie konto w portalu eUrząd.",
                row.applicant_name, row.applicant_pesel
            ),
            lines: granted,
            hidden,
            button: "Tak, zatwierdzam",
        });
    }
    let term = from.map(|from| crate::provisioning::Term { from, to });
    decide(
        &desk,
        &session,
        id,
        crate::requests::Decision {
            approve: true,
            official: &on_record(&session),
            reason: &note,
            term,
            only: (!requested.is_empty()).then_some(only.as_slice()),
        },
    )
    .await
}

pub async fn reject(
    State(DeskState(desk)): State<DeskState>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let (session, id, row, _) = match decidable(&desk, &headers, &raw, &pairs).await {
        Ok(found) => found,
        Err(r) => return r,
    };
    let reason = field(&pairs, "reason").unwrap_or("").trim().to_string();
    if reason.is_empty() {
        return invalid(
            &session,
            &raw,
            "Podaj powód odmowy: trafi on do pisma do wnioskodawcy.",
        );
    }
    let length = reason.chars().count();
    if length > TEXT_LIMIT {
        return invalid(
            &session,
            &raw,
            &format!("Powód odmowy jest za długi: {length} znaków, najwięcej {TEXT_LIMIT}."),
        );
    }
    if field(&pairs, "confirm") != Some("tak") {
        return render(&ConfirmPage {
            me: Me::of(&session),
            id,
            action: "reject",
            summary: format!(
                "Odrzucasz wniosek {} (PESEL {}). Wnioskodawca dostanie pismo z tym powodem:",
                row.applicant_name, row.applicant_pesel
            ),
            lines: vec![reason.clone()],
            hidden: vec![("reason".into(), reason)],
            button: "Tak, odrzucam",
        });
    }
    decide(
        &desk,
        &session,
        id,
        crate::requests::Decision {
            approve: false,
            official: &on_record(&session),
            reason: &reason,
            term: None,
            only: None,
        },
    )
    .await
}

#[derive(Template)]
#[template(path = "desk/status.html")]
struct StatusPage {
    me: Me,
    boxes: Vec<(String, i64, String)>,
    unconfirmed: i64,
    jobs: (i64, i64, i64, i64),
    held: i64,
    failed: Vec<(String, i64, String, String)>,
    syncs: Vec<SyncView>,
}

pub struct SyncView {
    register: String,
    source: String,
    status: String,
    at: String,
    rows: i64,
    error: String,
}

pub async fn status(State(DeskState(desk)): State<DeskState>, headers: HeaderMap) -> Response {
    let session = match require(&desk, &headers, "/status").await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let read = async {
        Ok::<_, StoreError>((
            desk.store.boxes().await?,
            desk.store.counts().await?,
            desk.store.failed_jobs(20).await?,
            desk.store.provisioning_counts().await?.letters_held,
            desk.store.last_syncs().await?,
        ))
    };
    let (boxes, counts, failed, held, syncs) = match read.await {
        Ok(read) => read,
        Err(e) => return database_trouble(&e),
    };
    render(&StatusPage {
        me: Me::of(&session),
        boxes: boxes
            .into_iter()
            .map(|b| {
                (
                    b.address,
                    b.documents,
                    b.last_at.map(|t| local(&desk, t)).unwrap_or_default(),
                )
            })
            .collect(),
        unconfirmed: counts.unconfirmed,
        jobs: (
            counts.jobs_pending,
            counts.jobs_running,
            counts.jobs_done,
            counts.jobs_failed,
        ),
        held,
        failed: failed
            .into_iter()
            .map(|j| {
                (
                    format!("#{} {} {}", j.id, j.kind, j.key),
                    j.attempts,
                    local(&desk, j.failed_at),
                    j.error.unwrap_or_default(),
                )
            })
            .collect(),
        syncs: syncs
            .into_iter()
            .map(|s| SyncView {
                register: s.register,
                source: s.source,
                status: s.status,
                at: local(&desk, s.finished_at),
                rows: s.rows_read,
                error: s.error.unwrap_or_default(),
            })
            .collect(),
    })
}

pub async fn not_found(State(DeskState(desk)): State<DeskState>, headers: HeaderMap) -> Response {
    let me = session(&desk, &headers)
        .await
        .ok()
        .flatten()
        .map(|s| Me::of(&s));
    message(
        StatusCode::NOT_FOUND,
        me,
        "Nie ma takiej strony",
        "Tej strony nie ma na biurku urzędnika.",
        "/",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone as _;

    #[test]
    fn days_left_are_counted_in_the_offices_days_with_polish_plurals() {
        let zone = chrono_tz::Europe::Warsaw;
        // 23:30 in Warsaw on 5 December.
        let now = Utc.with_ymd_and_hms(2026, 12, 5, 22, 30, 0).unwrap();
        let at = |d: u32, h: u32| Utc.with_ymd_and_hms(2026, 12, d, h, 0, 0).unwrap();
        let left = |deadline| days_left(zone, deadline, now);
        // 23:45 on the 5th in Warsaw: the same calendar day.
        assert_eq!(
            left(at(5, 22) + chrono::TimeDelta::minutes(45)),
            ("termin mija dziś".to_string(), false)
        );
        // 00:30 on the 6th in Warsaw: tomorrow, though an hour away.
        assert_eq!(
            left(at(5, 23) + chrono::TimeDelta::minutes(30)).0,
            "został 1 dzień"
        );
        assert_eq!(left(at(6, 10)).0, "został 1 dzień");
        assert_eq!(left(at(8, 10)).0, "zostały 3 dni");
        assert_eq!(left(at(12, 10)).0, "zostało 7 dni");
        assert_eq!(
            left(at(5, 20)),
            ("po terminie (minął dziś)".to_string(), true)
        );
        assert_eq!(left(at(4, 20)), ("po terminie (1 dzień)".to_string(), true));
        assert_eq!(left(at(2, 20)), ("po terminie (3 dni)".to_string(), true));
    }

    #[test]
    fn a_sign_in_goes_back_only_to_a_page_of_the_desk() {
        assert_eq!(safe_next(Some("/requests/12")), "/requests/12");
        assert_eq!(safe_next(Some("//evil.example/")), "/");
        assert_eq!(safe_next(Some("https://evil.example/")), "/");
        assert_eq!(safe_next(Some("/requests/1\"><script>")), "/");
        assert_eq!(safe_next(None), "/");
    }
}
