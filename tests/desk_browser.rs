//! The officials' desk in a real browser (issue 18): headless Chromium driven over
//! WebDriver (chromedriver from Debian), against the real daemon (`eurzad run`, with
//! `[desk] listen`), the emulator as a separate process, a real SMTP server, and the
//! database (SQLite, or PostgreSQL with EURZAD_TEST_POSTGRES_URL):
//! - an official follows the link in the e-mail, signs in, finds the request in the queue
//!   with its days left, reads the signature report and rejects it with a reason: the
//!   request leaves the queue, the reply letter carries the reason, the audit log names the
//!   official;
//! - another official approves one of two representations; the other is not granted;
//! - a wrong password, a disabled official, a form without its CSRF token and an expired
//!   session are each refused, and nothing changes;
//! - bad input: an unknown request, an empty or too long reason, HTML in a reason (escaped,
//!   never rendered), a decision on a decided request: a message in Polish, nothing changes;
//! - axe-core (from npm, `.ci/fetch-axe`) finds no WCAG 2.1 A/AA violation on the sign-in
//!   page, the queue and a request.
//!
//! Screenshots of the queue and a request go to target/desk-screenshots/, and to docs/desk/
//! when EURZAD_DESK_SCREENSHOTS is set.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;
use chrono::Utc;
use common::*;
use eurzad::signature::seal;
use eurzad::xmldsig::SigningKey;
use fantoccini::{Client, ClientBuilder, Locator};
use sqlx::Row;

const BOX: (&str, &str, &str) = ("urzad_testowy", "skrytka", "/urzad_testowy/skrytka");
const OFFICIALS_MAIL: &str = "sekretariat@urzad.test";
const PASSWORD: &str = "Bardzo-tajne-hasło-1";

fn read(path: &str) -> Vec<u8> {
    std::fs::read(fixture(path)).unwrap()
}

fn key(name: &str) -> SigningKey {
    SigningKey {
        private_key_pem: read(&format!("pki/citizens/{name}.key")),
        certificate_pem: read(&format!("pki/citizens/{name}.pem")),
    }
}

fn sealed(form: &[u8], signer: &str) -> Vec<u8> {
    seal::xades_enveloped(form, &key(signer), Utc::now(), "podpis").unwrap()
}

/// Jan Kowalski's request for a company and a person: the company's authorization is signed
/// by someone whose certificate names no company (not proven), Anna Nowak's by her (proven).
/// It waits for an official.
fn request_for_two() -> Vec<u8> {
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let mut text = String::from_utf8(read("forms/wniosek-za-firme-i-osobe.xml")).unwrap();
    for (file, signer) in [
        ("forms/upowaznienie-firma.xml", "not-qualified"),
        ("forms/upowaznienie-anna-nowak.xml", "anna-nowak"),
    ] {
        let unsigned = read(file);
        text = text.replace(&b64(&unsigned), &b64(&sealed(&unsigned, signer)));
    }
    sealed(text.as_bytes(), "jan-kowalski")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Office {
    dir: tempfile::TempDir,
    emulator: EmulatorProcess,
    db: TestDatabase,
    smtp: SmtpServer,
    config: std::path::PathBuf,
    desk: String,
}

impl Office {
    async fn start() -> Office {
        let dir = tempfile::tempdir().unwrap();
        let emulator = EmulatorProcess::start(&dir.path().join("emulator"), &[BOX], &[]);
        let db = test_database(dir.path()).await;
        let smtp = SmtpServer::start(dir.path());
        let config = daemon_config(dir.path(), &db.url, &emulator.url, &[BOX], "");
        let anchors = dir.path().join("qualified");
        std::fs::create_dir_all(&anchors).unwrap();
        std::fs::copy(fixture("pki/ca.pem"), anchors.join("ca.pem")).unwrap();
        let port = free_port();
        let desk = format!("http://127.0.0.1:{port}");
        let mut text = std::fs::read_to_string(&config).unwrap();
        text.push_str(&format!(
            r#"
[trust]
qualified_ca_dir = "{anchors}"

[provisioning]
office_name = "Urząd Miasta Testowo"

[notify]
officials = ["{OFFICIALS_MAIL}"]
from = "eUrząd <eurzad@urzad.test>"
smtp_host = "127.0.0.1"
smtp_port = {smtp_port}
smtp_security = "none"
digest_cron = "0 8 29 2 *"

[desk]
listen = "127.0.0.1:{port}"
public_url = "{desk}"
sign_in_attempts = 3
"#,
            anchors = anchors.display(),
            smtp_port = smtp.port,
        ));
        std::fs::write(&config, text).unwrap();
        Office {
            dir,
            emulator,
            db,
            smtp,
            config,
            desk,
        }
    }

    async fn send(&self, content: &[u8]) {
        self.emulator
            .add_document_json(serde_json::json!({
                "adres_skrytki": BOX.2,
                "nazwa_pliku": "wniosek.xml",
                "typ_pliku": "text/xml",
                "content": base64::engine::general_purpose::STANDARD.encode(content),
                "adres_odpowiedzi": "/jan_kowalski/skrytka",
                "dane_nadawcy": {"uzytkownik": "jan_kowalski_epuap", "system": null},
            }))
            .await;
    }

    fn add_official(&self, login: &str, name: &str) {
        let file = self.dir.path().join(format!("{login}.password"));
        std::fs::write(&file, PASSWORD).unwrap();
        let (ok, out) = eurzad_with_config(
            &[
                "officials",
                "add",
                login,
                "--name",
                name,
                "--password-file",
                file.to_str().unwrap(),
            ],
            &self.config,
        );
        assert!(ok, "{out}");
    }

    async fn pool(&self) -> sqlx::AnyPool {
        any_pool(&self.db.url).await
    }
}

/// chromedriver on a loopback port, and a headless Chromium session through it.
struct Browser {
    driver: Child,
    client: Client,
}

impl Browser {
    async fn start() -> Browser {
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (chromium-driver, installed by .ci/install-deps)");
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1280,1024", "--lang=pl"],
            }),
        );
        let url = format!("http://127.0.0.1:{port}");
        let started = std::time::Instant::now();
        let client = loop {
            match ClientBuilder::native()
                .capabilities(capabilities.clone())
                .connect(&url)
                .await
            {
                Ok(client) => break client,
                Err(e) if started.elapsed() < Duration::from_secs(20) => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("no WebDriver session at {url}: {e}"),
            }
        };
        Browser { driver, client }
    }

    async fn page(&self) -> String {
        self.client.source().await.unwrap()
    }

    /// The page once it contains `text` (a click's navigation may still be under way),
    /// or a failure that shows the page after 10 s.
    async fn expect(&self, text: &str) -> String {
        let started = std::time::Instant::now();
        loop {
            let page = self.page().await;
            if page.contains(text) {
                return page;
            }
            if started.elapsed() > Duration::from_secs(10) {
                panic!("{text:?} not on the page:\n{page}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn fill(&self, css: &str, text: &str) {
        let field = self.client.find(Locator::Css(css)).await.unwrap();
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    /// Clicks what submits a form or follows a link, and waits for the next page (every
    /// page of the desk differs from the one before: a new token, a message).
    async fn click(&self, css: &str) {
        let before = self.page().await;
        self.toggle(css).await;
        let started = std::time::Instant::now();
        while self.page().await == before {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{css}: the page did not change"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Clicks what stays on the page (a checkbox).
    async fn toggle(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .click()
            .await
            .unwrap();
    }

    async fn sign_in(&self, login: &str, password: &str) {
        self.fill("#login", login).await;
        self.fill("#password", password).await;
        self.click("main button[type=submit]").await;
    }

    /// axe-core's WCAG 2.1 A and AA violations on the current page.
    async fn axe_violations(&self) -> Vec<String> {
        let path = std::env::var("EURZAD_AXE_JS")
            .unwrap_or_else(|_| format!("{}/target/axe/axe.min.js", env!("CARGO_MANIFEST_DIR")));
        let source = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!("axe-core at {path}: {e} (run .ci/fetch-axe, or set EURZAD_AXE_JS)")
        });
        self.client
            .execute(&format!("{source}\nreturn typeof axe;"), Vec::new())
            .await
            .unwrap();
        let found = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})
                    .then(r => done(r.violations.map(v => v.id + ': ' + v.help + ' at ' +
                        v.nodes.map(n => n.target.join(' ')).join(', '))))
                    .catch(e => done(['axe failed: ' + e]));",
                Vec::new(),
            )
            .await
            .unwrap();
        serde_json::from_value(found).unwrap()
    }

    async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/desk-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), &png).unwrap();
        if std::env::var_os("EURZAD_DESK_SCREENSHOTS").is_some() {
            let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/desk");
            std::fs::create_dir_all(&docs).unwrap();
            std::fs::write(docs.join(name), &png).unwrap();
        }
    }

    async fn close(mut self) {
        let _ = self.client.close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

async fn scalar(pool: &sqlx::AnyPool, sql: &'static str) -> i64 {
    sqlx::query(sql).fetch_one(pool).await.unwrap().get(0)
}

async fn status_of(pool: &sqlx::AnyPool, id: i64) -> String {
    sqlx::query("SELECT status FROM access_request WHERE id = $1")
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap()
        .get(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn officials_decide_requests_in_a_browser() {
    let office = Office::start().await;
    office.add_official("anowak", "Anna Nowak");
    office.add_official("pzielinski", "Piotr Zieliński");
    office.add_official("kwisniewska", "Katarzyna Wiśniewska");
    office.send(&request_for_two()).await;
    office.send(&request_for_two()).await;
    let log = office.dir.path().join("daemon.log");
    let mut daemon = spawn_daemon(&office.config, &log);
    sqlx::any::install_default_drivers();
    wait_until(
        Duration::from_secs(60),
        "two requests waiting and the officials mailed",
        || async {
            office
                .smtp
                .messages()
                .iter()
                .filter(|(_, subject, _)| subject.contains("czeka na decyzję"))
                .count()
                == 2
        },
    )
    .await;
    let pool = office.pool().await;
    let (first, second): (i64, i64) = {
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM access_request WHERE status = 'awaiting_official' ORDER BY id",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        assert_eq!(ids.len(), 2);
        (ids[0], ids[1])
    };

    // The e-mail links to the request's page.
    let mails = office.smtp.messages();
    let mail = mails
        .iter()
        .find(|(_, subject, _)| subject.contains(&format!("nr {first} ")))
        .unwrap();
    let link = format!("{}/requests/{first}", office.desk);
    assert!(mail.2.contains(&link), "{}", mail.2);

    let browser = Browser::start().await;
    let b = &browser;
    // Not signed in: the link leads to the sign-in page, which is accessible.
    b.client.goto(&link).await.unwrap();
    b.expect("<h1>Logowanie</h1>").await;
    let violations = b.axe_violations().await;
    assert!(violations.is_empty(), "sign-in page: {violations:#?}");

    // A wrong password is refused, and says so in Polish.
    b.sign_in("anowak", "nie-to-hasło").await;
    b.expect("Nieprawidłowy login lub hasło").await;
    assert_eq!(scalar(&pool, "SELECT COUNT(*) FROM desk_session").await, 0);

    // The right one opens the request the e-mail named.
    b.sign_in("anowak", PASSWORD).await;
    assert_eq!(b.client.current_url().await.unwrap().as_str(), link);
    let page = b.page().await;
    assert!(page.contains(&format!("Wniosek nr {first}")), "{page}");
    // The signature report, in Polish: a qualified signature, the signer from signed content.
    assert!(page.contains("podpis prawidłowy (TOTAL-PASSED)"), "{page}");
    assert!(
        page.contains("kwalifikowany podpis elektroniczny"),
        "{page}"
    );
    assert!(page.contains("Jan Kowalski, PESEL 85031412347"), "{page}");
    assert!(
        page.contains("podpis obejmuje cały dokument, a certyfikat pochodzi od zaufanego wystawcy"),
        "the reason in Polish: {page}"
    );
    assert!(
        page.contains("niepotwierdzone"),
        "the company's authorization: {page}"
    );
    let violations = b.axe_violations().await;
    assert!(violations.is_empty(), "request page: {violations:#?}");
    b.screenshot("request.png").await;

    // The queue: both requests, with their days left, by deadline.
    b.client.goto(&office.desk).await.unwrap();
    let page = b.expect("Czekające na decyzję (2)").await;
    assert!(page.contains("zostało 7 dni"), "{page}");
    assert!(
        page.contains(&format!("href=\"/requests/{second}\"")),
        "{page}"
    );
    let violations = b.axe_violations().await;
    assert!(violations.is_empty(), "queue: {violations:#?}");
    b.screenshot("queue.png").await;

    // Bad input first: each refused in Polish, nothing changes.
    b.client
        .goto(&format!("{}/requests/999999", office.desk))
        .await
        .unwrap();
    b.expect("Nie ma wniosku o numerze 999999").await;
    b.client.goto(&link).await.unwrap();
    // An empty reason (the browser's own check is bypassed, as a crafted post would).
    b.client
        .execute(
            "document.querySelector('#reason').removeAttribute('required');",
            Vec::new(),
        )
        .await
        .unwrap();
    b.click("button.danger").await;
    b.expect("Podaj powód odmowy").await;
    b.client.goto(&link).await.unwrap();
    b.client
        .execute(
            "document.querySelector('#reason').removeAttribute('maxlength');",
            Vec::new(),
        )
        .await
        .unwrap();
    b.fill("#reason", &"długo ".repeat(200)).await;
    b.click("button.danger").await;
    b.expect("Powód odmowy jest za długi: 1199 znaków").await;
    // A form without its CSRF token.
    b.client.goto(&link).await.unwrap();
    b.fill("#reason", "bez tokenu").await;
    b.client
        .execute(
            "document.querySelectorAll('input[name=csrf]').forEach(e => e.remove());",
            Vec::new(),
        )
        .await
        .unwrap();
    b.click("button.danger").await;
    b.expect("Formularz nieważny").await;
    assert_eq!(status_of(&pool, first).await, "awaiting_official");

    // The rejection, with HTML in its reason: shown escaped on the confirmation, then done.
    let reason =
        "Upoważnienie firmy nie jest podpisane przez osobę uprawnioną <b>do reprezentacji</b>";
    b.client.goto(&link).await.unwrap();
    b.fill("#reason", reason).await;
    b.click("button.danger").await;
    let page = b.expect("Potwierdź decyzję").await;
    assert!(
        page.contains("&lt;b&gt;do reprezentacji&lt;/b&gt;"),
        "escaped: {page}"
    );
    assert!(
        b.client.find(Locator::Css("main b")).await.is_err(),
        "never rendered as HTML"
    );
    assert_eq!(
        status_of(&pool, first).await,
        "awaiting_official",
        "not before confirming"
    );
    b.click("main button[type=submit]").await;
    b.expect("Wniosek odrzucony").await;
    assert!(
        ["rejected", "replied"].contains(&status_of(&pool, first).await.as_str()),
        "rejected (and perhaps answered already)"
    );
    // A second decision on it is refused.
    b.client.goto(&link).await.unwrap();
    assert!(
        b.client.find(Locator::Css("#reason")).await.is_err(),
        "no decision form on a decided request"
    );
    // …even posted from a page opened before (the other official's tab, say).
    b.client
        .execute(
            &format!(
                "const f = document.createElement('form'); f.method = 'post';
                 f.action = '/requests/{first}/approve';
                 for (const [k, v] of [['csrf', document.querySelector('input[name=csrf]').value], ['confirm', 'tak']]) {{
                   const i = document.createElement('input'); i.type = 'hidden'; i.name = k; i.value = v; f.appendChild(i);
                 }}
                 document.body.appendChild(f); f.submit();"
            ),
            Vec::new(),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    b.expect("nie czeka na decyzję").await;
    assert!(
        ["rejected", "replied"].contains(&status_of(&pool, first).await.as_str()),
        "rejected (and perhaps answered already)"
    );

    // The request left the queue.
    b.client.goto(&office.desk).await.unwrap();
    let page = b.expect("Czekające na decyzję (1)").await;
    let waiting = &page
        [page.find("Czekające na decyzję (1)").unwrap()..page.find("Ostatnie decyzje").unwrap()];
    assert!(
        !waiting.contains(&format!("href=\"/requests/{first}\"")),
        "{waiting}"
    );
    assert!(
        waiting.contains(&format!("href=\"/requests/{second}\"")),
        "{waiting}"
    );

    // The audit log names the official; the reply letter carries the reason.
    let actor: String = sqlx::query_scalar(
        "SELECT actor FROM audit_log WHERE action = 'rejected' AND subject = $1",
    )
    .bind(format!("access_request:{first}"))
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(actor, "Anna Nowak (anowak)");
    wait_until(Duration::from_secs(30), "the refusal sent", || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM outbound_document WHERE request_id = $1 AND status = 'sent'",
        )
        .bind(first)
        .fetch_one(&pool)
        .await
        .unwrap()
            == 1
    })
    .await;
    let letter: Vec<u8> =
        sqlx::query_scalar("SELECT content FROM outbound_document WHERE request_id = $1")
            .bind(first)
            .fetch_one(&pool)
            .await
            .unwrap();
    let letter = String::from_utf8(letter).unwrap();
    assert!(
        letter.contains("Upoważnienie firmy nie jest podpisane przez osobę uprawnioną &lt;b&gt;do reprezentacji&lt;/b&gt;"),
        "{letter}"
    );

    // Signing out, then another official approves one of the two representations.
    b.click("header button[type=submit]").await;
    b.expect("<h1>Logowanie</h1>").await;
    let second_link = format!("{}/requests/{second}", office.desk);
    b.client.goto(&second_link).await.unwrap();
    b.sign_in("pzielinski", PASSWORD).await;
    assert_eq!(b.client.current_url().await.unwrap().as_str(), second_link);
    // Only the second (Anna Nowak's, with her signed authorization): the company's is unticked.
    b.toggle("#only1").await;
    b.click("form[action$='/approve'] button[type=submit]")
        .await;
    let page = b.expect("NIE przyznane: 1.").await;
    assert!(page.contains("przyznane: 2."), "{page}");
    b.click("main button[type=submit]").await;
    b.expect("Wniosek zatwierdzony").await;
    let granted: Vec<(String, String)> = sqlx::query_as(
        "SELECT principal_id_type, principal_id FROM representation WHERE source_request_id = $1",
    )
    .bind(second)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        granted,
        vec![("PESEL".to_string(), "90010112349".to_string())],
        "only the one approved"
    );
    let not_granted = scalar(
        &pool,
        "SELECT COUNT(*) FROM audit_log WHERE action = 'representation_not_granted' \
         AND detail LIKE '%5252955037%' AND actor = 'Piotr Zieliński (pzielinski)'",
    )
    .await;
    assert_eq!(not_granted, 1);

    // An expired session: back to the sign-in page.
    let sessions_before = scalar(&pool, "SELECT COUNT(*) FROM desk_session").await;
    assert!(sessions_before >= 1);
    // Its end moved to its start, a few seconds ago.
    sqlx::query("UPDATE desk_session SET expires_at = created_at")
        .execute(&pool)
        .await
        .unwrap();
    b.client.goto(&office.desk).await.unwrap();
    b.expect("<h1>Logowanie</h1>").await;

    // A disabled official cannot sign in.
    let (ok, out) = eurzad_with_config(&["officials", "disable", "kwisniewska"], &office.config);
    assert!(ok, "{out}");
    b.sign_in("kwisniewska", PASSWORD).await;
    b.expect("Nieprawidłowy login lub hasło").await;
    // Too many failures lock the login, even with the right password then.
    b.sign_in("kwisniewska", "zle").await;
    b.sign_in("kwisniewska", "zle").await;
    b.sign_in("anowak", "zle").await;
    b.sign_in("anowak", "zle").await;
    b.sign_in("anowak", "zle").await;
    b.sign_in("anowak", PASSWORD).await;
    b.expect("Zbyt wiele nieudanych prób logowania").await;
    let refused = scalar(
        &pool,
        "SELECT COUNT(*) FROM audit_log WHERE action = 'desk_sign_in_refused'",
    )
    .await;
    assert!(refused >= 6, "{refused}");
    let signed_in = scalar(
        &pool,
        "SELECT COUNT(*) FROM audit_log WHERE action = 'desk_sign_in'",
    )
    .await;
    assert_eq!(signed_in, 2, "anowak and pzielinski, once each");

    browser.close().await;
    let status = stop_with_sigterm(&mut daemon, Duration::from_secs(20)).await;
    assert!(
        status.success(),
        "{}",
        std::fs::read_to_string(&log).unwrap()
    );
    pool.close().await;
}
