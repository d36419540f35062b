//! The officials' desk under a full queue (issue 18): 1,000 access requests waiting for an
//! official, each asking for one to three representations, and 1,000 decided ones; the
//! queue page (`GET /`) and a request's page, rendered by the real router over loopback
//! HTTP with a signed-in session, one client. Prints a table per backend: median, p99 and
//! the page's size. SQLite always; PostgreSQL when reachable (EURZAD_BENCH_POSTGRES_URL, or
//! the one `.ci/run` starts).
//!
//! `cargo bench --bench desk` (EURZAD_BENCH_WAITING: the queue's length, 1000;
//! EURZAD_BENCH_PAGES: pages timed, 300).

mod common;

use std::time::{Duration, Instant};

use chrono::Utc;
use common::{PgAdmin, env_number, pesel};
use eurzad::document::{ReceivedFile, ReceivedMessage};
use eurzad::store::Store;

/// Fills the database: `waiting` requests awaiting an official, as many decided.
async fn fill(store: &Store, url: &str, waiting: usize) {
    let now = Utc::now();
    for n in 0..2 * waiting {
        let message = ReceivedMessage {
            office_address: "AE:PL-00000-00000-EURZD-00".into(),
            message_id: format!("bench-{n}"),
            sender_address: format!("AE:PL-{:05}-00000-OBYWA-01", n % 100_000),
            subject: "Wniosek o dostęp".into(),
            text_body: String::new(),
            received_at: now,
            files: vec![ReceivedFile {
                name: "wniosek.xml".into(),
                content_type: "application/xml".into(),
                content: format!("<Wniosek nr=\"{n}\"/>").into_bytes(),
            }],
        };
        store.store_received(&message).await.unwrap();
    }
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    let mut tx = pool.begin().await.unwrap();
    for n in 0..2 * waiting {
        let id = (n + 1) as i64;
        let awaiting = n < waiting;
        let received = (now - chrono::TimeDelta::hours((n % 150) as i64)).to_rfc3339();
        let deadline = (now + chrono::TimeDelta::hours(168 - (n % 150) as i64)).to_rfc3339();
        let sql = format!(
            "INSERT INTO access_request (id, document_id, received_at, deadline_at, status, applicant_pesel, \
             applicant_name, applicant_email, reason, decided_by, decided_at, created_at, updated_at, stored_at) \
             VALUES ({id}, {id}, '{received}', '{deadline}', '{status}', '{pesel}', 'Jan Testowy{n}', NULL, \
             'reprezentacja Testowa Spółka {n} (NIP 5252955037): upoważnienie nie jest podpisane przez mocodawcę', \
             {by}, {at}, '{received}', '{received}', '{received}')",
            status = if awaiting {
                "awaiting_official"
            } else {
                "rejected"
            },
            pesel = pesel(n),
            by = if awaiting {
                "NULL".to_string()
            } else {
                "'Anna Nowak (anowak)'".into()
            },
            at = if awaiting {
                "NULL".to_string()
            } else {
                format!("'{received}'")
            },
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut *tx)
            .await
            .unwrap();
        for position in 0..(1 + n % 3) {
            let sql = format!(
                "INSERT INTO requested_representation (request_id, position, principal_kind, principal_name, \
                 principal_id_type, principal_id, scope, basis, proven, proof) VALUES \
                 ({id}, {position}, 'P', 'Testowa Spółka {n}-{position} z o.o.', 'NIP', '5252955037', \
                 'podatki oplaty', 'upowaznienie', FALSE, 'upoważnienie nie jest podpisane przez mocodawcę')"
            );
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&mut *tx)
                .await
                .unwrap();
        }
    }
    tx.commit().await.unwrap();
    pool.close().await;
}

struct Timed {
    median: Duration,
    p99: Duration,
    bytes: usize,
}

async fn time_page(http: &reqwest::Client, url: &str, cookie: &str, pages: usize) -> Timed {
    let mut times = Vec::with_capacity(pages);
    let mut bytes = 0;
    // Warm-up: the first page opens connections.
    for i in 0..pages + 5 {
        let started = Instant::now();
        let body = http
            .get(url)
            .header("cookie", cookie)
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .bytes()
            .await
            .unwrap();
        if i >= 5 {
            times.push(started.elapsed());
        }
        bytes = body.len();
    }
    times.sort();
    Timed {
        median: times[times.len() / 2],
        p99: times[(times.len() * 99 / 100).min(times.len() - 1)],
        bytes,
    }
}

fn main() {
    let waiting: usize = env_number("EURZAD_BENCH_WAITING", 1_000);
    let pages: usize = env_number("EURZAD_BENCH_PAGES", 300);
    eurzad::install_crypto_provider();
    let runtime = eurzad::daemon::runtime().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let admin = PgAdmin::from_env();
    let pg_name = format!("eurzad_bench_desk_{}", std::process::id());
    let mut backends = vec![(
        "SQLite",
        format!("sqlite://{}?mode=rwc", dir.path().join("desk.db").display()),
    )];
    if admin.exec(&runtime, format!("CREATE DATABASE {pg_name}")) {
        backends.push(("PostgreSQL", admin.database_url(&pg_name)));
    } else {
        eprintln!("PostgreSQL not reachable: SQLite only");
    }
    let mut rows = Vec::new();
    for (name, url) in &backends {
        runtime.block_on(async {
            let store = Store::connect(url, 4).await.unwrap();
            store.migrate().await.unwrap();
            fill(&store, url, waiting).await;
            let hash = eurzad::desk::hash_password("bench-password-1").unwrap();
            store
                .add_official("anowak", "Anna Nowak", None, Some(&hash), Utc::now())
                .await
                .unwrap();
            let router = eurzad::desk::router(
                store.clone(),
                std::sync::Arc::new(eurzad::forms::Registry::default()),
                eurzad::desk::DeskSettings {
                    public_url: None,
                    session_ttl: Duration::from_secs(3600),
                    insecure_ok: true,
                    sign_in_attempts: 5,
                    sign_in_window: Duration::from_secs(900),
                    zone: chrono_tz::Europe::Warsaw,
                },
            );
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let base = format!("http://{}", listener.local_addr().unwrap());
            let server = tokio::spawn(async move {
                axum::serve(
                    listener,
                    router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
                )
                .await
            });
            let http = reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap();
            // Sign in as a browser would: the form's token and its cookie, then the session.
            let form = http.get(format!("{base}/login")).send().await.unwrap();
            let login_cookie = form
                .headers()
                .get_all("set-cookie")
                .iter()
                .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_string())
                .next()
                .unwrap();
            let token = login_cookie.split_once('=').unwrap().1.to_string();
            let signed = http
                .post(format!("{base}/login"))
                .header("cookie", &login_cookie)
                .form(&[
                    ("csrf", token.as_str()),
                    ("next", "/"),
                    ("login", "anowak"),
                    ("password", "bench-password-1"),
                ])
                .send()
                .await
                .unwrap();
            assert_eq!(signed.status(), 303, "signed in");
            let session = signed
                .headers()
                .get_all("set-cookie")
                .iter()
                .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_string())
                .find(|c| c.starts_with("eurzad_desk="))
                .unwrap();
            let queue = time_page(&http, &format!("{base}/"), &session, pages).await;
            let request = time_page(
                &http,
                &format!("{base}/requests/{}", waiting / 2),
                &session,
                pages,
            )
            .await;
            rows.push(format!(
                "| {name} | queue, {waiting} waiting | {:.1} ms | {:.1} ms | {} kB |",
                queue.median.as_secs_f64() * 1e3,
                queue.p99.as_secs_f64() * 1e3,
                queue.bytes / 1024
            ));
            rows.push(format!(
                "| {name} | a request | {:.1} ms | {:.1} ms | {} kB |",
                request.median.as_secs_f64() * 1e3,
                request.p99.as_secs_f64() * 1e3,
                request.bytes / 1024
            ));
            server.abort();
            store.close().await;
        });
    }
    if backends.len() > 1 {
        admin.exec(&runtime, format!("DROP DATABASE {pg_name} WITH (FORCE)"));
    }
    println!("\nThe officials' desk: pages over loopback HTTP, one client, {pages} pages each\n");
    println!("| backend | page | median | p99 | size |");
    println!("|---|---|---|---|---|");
    for row in rows {
        println!("{row}");
    }
    println!("\ntarget: the queue with 1,000 waiting requests, p99 ≤ 50 ms");
}
