//! Test harness: the real `eurzad` binary as the daemon and as the emulator, separate
//! processes talking real HTTP on loopback, and a real database (SQLite in a temporary
//! folder, or PostgreSQL when `EURZAD_TEST_POSTGRES_URL` names a server where the role may
//! create databases: each test gets its own database).
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use sqlx::Row;

pub const BIN: &str = env!("CARGO_BIN_EXE_eurzad");

pub fn fixture(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(path)
}

/// An `eurzad emulator` process on a free loopback port.
pub struct EmulatorProcess {
    pub child: Child,
    pub url: String,
    pub state_dir: PathBuf,
    http: reqwest::Client,
}

impl EmulatorProcess {
    /// Starts the emulator with `boxes` (podmiot, nazwa, adres) and extra arguments.
    pub fn start(
        state_dir: &Path,
        boxes: &[(&str, &str, &str)],
        extra: &[&str],
    ) -> EmulatorProcess {
        eurzad::install_crypto_provider();
        let mut command = Command::new(BIN);
        command
            .args(["emulator", "--listen", "127.0.0.1:0", "--state-dir"])
            .arg(state_dir)
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (podmiot, nazwa, adres) in boxes {
            command
                .arg("--box")
                .arg(format!("{podmiot}:{nazwa}:{adres}"));
        }
        let mut child = command.spawn().expect("start the emulator");
        let stdout = child.stdout.take().expect("emulator stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("emulator announces its address");
        let url = line
            .trim()
            .rsplit(' ')
            .next()
            .filter(|u| u.starts_with("http://127.0.0.1:"))
            .unwrap_or_else(|| panic!("unexpected emulator output {line:?}"))
            .to_string();
        EmulatorProcess {
            child,
            url,
            state_dir: state_dir.to_path_buf(),
            http: reqwest::Client::new(),
        }
    }

    /// Puts a document with `content` into the box at `adres`.
    pub async fn add_document(&self, adres: &str, file: &str, content: &[u8]) {
        self.add_document_json(serde_json::json!({
            "adres_skrytki": adres,
            "nazwa_pliku": file,
            "typ_pliku": "application/octet-stream",
            "content": base64::engine::general_purpose::STANDARD.encode(content),
            "dane_nadawcy": {"uzytkownik": "jan_testowy", "system": null},
        }))
        .await;
    }

    pub async fn add_document_json(&self, document: serde_json::Value) {
        let response = self
            .http
            .post(format!("{}/admin/documents", self.url))
            .json(&document)
            .send()
            .await
            .expect("admin API answers");
        assert_eq!(
            response.status(),
            201,
            "{}",
            response.text().await.unwrap_or_default()
        );
    }

    pub async fn counters(&self) -> serde_json::Value {
        self.http
            .get(format!("{}/admin/counters", self.url))
            .send()
            .await
            .expect("admin API answers")
            .json()
            .await
            .expect("counters are JSON")
    }

    /// How many times each recipient's letter reached the outbox (`nadaj`), by address.
    pub async fn outbox_copies(&self) -> std::collections::BTreeMap<String, usize> {
        let entries: Vec<serde_json::Value> = self
            .http
            .get(format!("{}/admin/outbox", self.url))
            .send()
            .await
            .expect("admin API answers")
            .json()
            .await
            .expect("the outbox is JSON");
        let mut copies = std::collections::BTreeMap::new();
        for entry in entries {
            let recipient = entry["request"]["adres_skrytki"]
                .as_str()
                .expect("each letter names its recipient")
                .to_string();
            *copies.entry(recipient).or_insert(0) += 1;
        }
        copies
    }

    pub async fn add_fault(&self, rule: serde_json::Value) {
        let response = self
            .http
            .post(format!("{}/admin/faults", self.url))
            .json(&rule)
            .send()
            .await
            .expect("admin API answers");
        assert_eq!(response.status(), 204);
    }

    pub async fn clear_faults(&self) {
        self.http
            .delete(format!("{}/admin/faults", self.url))
            .send()
            .await
            .expect("admin API answers");
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for EmulatorProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A database for one test. A PostgreSQL one is dropped when the test ends (`.ci/run` also
/// sweeps up those a killed test run left behind).
pub struct TestDatabase {
    pub url: String,
    pub kind: &'static str,
    /// The admin URL and the database name, for the drop.
    postgres: Option<(String, String)>,
}

impl TestDatabase {
    /// The URL for a pool of eurzad's own that may create the SQLite file.
    pub fn creating_url(&self) -> String {
        if self.kind == "sqlite" {
            format!("{}?mode=rwc", self.url)
        } else {
            self.url.clone()
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some((admin_url, name)) = self.postgres.take() else {
            return;
        };
        // Drop may run inside the test's runtime, which cannot be blocked on: the drop gets
        // its own thread and runtime. A failure only leaves a database for the sweep.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let mut connection = <sqlx::PgConnection as sqlx::Connection>::connect(&admin_url)
                    .await
                    .ok()?;
                sqlx::Executor::execute(
                    &mut connection,
                    sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")),
                )
                .await
                .ok()
            })
        })
        .join();
    }
}

pub async fn test_database(dir: &Path) -> TestDatabase {
    match std::env::var("EURZAD_TEST_POSTGRES_URL") {
        Ok(admin_url) => {
            let name = format!("eurzad_test_{:016x}", rand::random::<u64>());
            let mut connection = <sqlx::PgConnection as sqlx::Connection>::connect(&admin_url)
                .await
                .expect("connect to the test PostgreSQL");
            sqlx::Executor::execute(
                &mut connection,
                sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")),
            )
            .await
            .expect("create a test database");
            let base = admin_url
                .rsplit_once('/')
                .map(|(b, _)| b)
                .unwrap_or(&admin_url);
            TestDatabase {
                url: format!("{base}/{name}"),
                kind: "postgres",
                postgres: Some((admin_url.clone(), name)),
            }
        }
        Err(_) => TestDatabase {
            url: format!("sqlite://{}", dir.join("eurzad.db").display()),
            kind: "sqlite",
            postgres: None,
        },
    }
}

/// A daemon configuration for `emulator_url`, with short timeouts for tests. `extra_epuap`
/// lines go into `[epuap]`; a `request_timeout` there replaces the default of 5 s.
pub fn daemon_config(
    dir: &Path,
    database_url: &str,
    emulator_url: &str,
    boxes: &[(&str, &str, &str)],
    extra_epuap: &str,
) -> PathBuf {
    let mut text = format!(
        r#"[database]
url = "{database_url}"

[epuap]
endpoint = "{emulator_url}"
wss_certificate = "{office_cert}"
wss_private_key = "{office_key}"
server_certificate = "{epuap_cert}"
poll_interval = "200ms"
{request_timeout}
connect_timeout = "1s"
max_attempts = 3
backoff_initial = "50ms"
backoff_max = "400ms"
{extra_epuap}

[jobs]
retry_delay = "1s"
lease = "3s"
"#,
        request_timeout = if extra_epuap.contains("request_timeout") {
            ""
        } else {
            "request_timeout = \"5s\""
        },
        office_cert = fixture("pki/office.pem").display(),
        office_key = fixture("pki/office.key").display(),
        epuap_cert = fixture("pki/epuap.pem").display(),
    );
    for (podmiot, nazwa, adres) in boxes {
        text.push_str(&format!(
            "\n[[epuap.boxes]]\npodmiot = \"{podmiot}\"\nnazwa = \"{nazwa}\"\nadres = \"{adres}\"\n"
        ));
    }
    let path = dir.join("config.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

/// Runs `eurzad run --once`, returning the exit status and what it printed.
pub fn run_once(config: &Path) -> (std::process::ExitStatus, String, String) {
    let output = Command::new(BIN)
        .args(["run", "--once", "--config"])
        .arg(config)
        .env("RUST_LOG", "eurzad=info")
        .output()
        .expect("run the daemon");
    (
        output.status,
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A daemon started by a test. It is killed if the test ends without stopping it (a failed
/// assertion), so that a failing test leaves no daemon behind; a `Child` otherwise.
pub struct Daemon(Child);

impl std::ops::Deref for Daemon {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Daemon {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl From<Child> for Daemon {
    fn from(child: Child) -> Daemon {
        Daemon(child)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Starts `eurzad run` in the background, logging to `log`.
pub fn spawn_daemon(config: &Path, log: &Path) -> Daemon {
    let log = std::fs::File::create(log).expect("log file");
    Daemon(
        Command::new(BIN)
            .args(["run", "--config"])
            .arg(config)
            .env("RUST_LOG", "eurzad=info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start the daemon"),
    )
}

/// Sends SIGTERM to `daemon` and waits for it to exit, at most `timeout`; its exit status.
pub async fn stop_with_sigterm(daemon: &mut Child, timeout: Duration) -> std::process::ExitStatus {
    // SAFETY: a plain kill(2) of our own child's pid.
    unsafe { libc::kill(daemon.id() as i32, libc::SIGTERM) };
    let started = Instant::now();
    loop {
        if let Some(status) = daemon.try_wait().expect("the daemon's status") {
            return status;
        }
        assert!(
            started.elapsed() < timeout,
            "the daemon did not stop within {timeout:?} of SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One stored row, as the tests check it.
#[derive(Debug)]
pub struct Row_ {
    pub identity_key: String,
    pub content: Vec<u8>,
    pub content_sha256: String,
    pub nazwa_pliku: String,
    pub confirmed: bool,
    pub pull_count: i64,
}

/// Asserts that the database holds exactly the documents of `expected` (content by its
/// SHA-256 in hex): each once, byte for byte, its digest right, and confirmed. `on` names the
/// backend for the messages. Returns the rows.
pub async fn assert_stored_exactly_once(
    database_url: &str,
    expected: &std::collections::HashMap<String, Vec<u8>>,
    on: &str,
) -> Vec<Row_> {
    use sha2::Digest;
    let rows = stored_rows(database_url).await;
    assert_eq!(
        rows.len(),
        expected.len(),
        "every document stored exactly once on {on}"
    );
    let mut seen = std::collections::HashSet::new();
    for row in &rows {
        assert!(
            seen.insert(row.content_sha256.clone()),
            "duplicate content {} on {on}",
            row.content_sha256
        );
        let content = expected
            .get(&row.content_sha256)
            .expect("stored content is one we sent");
        assert_eq!(&row.content, content, "byte for byte");
        assert_eq!(
            hex::encode(sha2::Sha256::digest(&row.content)),
            row.content_sha256
        );
        assert!(row.confirmed, "{} confirmed on {on}", row.nazwa_pliku);
    }
    rows
}

/// `run_once`, which must exit 0: its stdout; the output in the message when it does not.
pub fn run_once_ok(config: &Path, on: &str) -> String {
    let (status, stdout, stderr) = run_once(config);
    assert!(
        status.success(),
        "daemon failed ({status}) on {on}:\n{stdout}\n{stderr}"
    );
    stdout
}

pub async fn stored_rows(database_url: &str) -> Vec<Row_> {
    try_stored_rows(database_url)
        .await
        .expect("the test database exists and is migrated")
}

/// The stored rows, or `None` while the daemon has not created the database yet.
pub async fn try_stored_rows(database_url: &str) -> Option<Vec<Row_>> {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(database_url).await.ok()?;
    let rows = sqlx::query(
        "SELECT identity_key, content, content_sha256, nazwa_pliku, \
         CASE WHEN confirmed_at IS NULL THEN 0 ELSE 1 END AS confirmed, CAST(pull_count AS BIGINT) AS pull_count \
         FROM inbound_document LEFT JOIN inbound_delivery ON document_id = id ORDER BY id",
    )
    .fetch_all(&pool)
    .await
    .ok()?;
    let out = rows
        .into_iter()
        .map(|row| Row_ {
            identity_key: row.get("identity_key"),
            content: row.get("content"),
            content_sha256: row.get("content_sha256"),
            nazwa_pliku: row.get("nazwa_pliku"),
            confirmed: row.get::<i32, _>("confirmed") == 1,
            pull_count: row.get("pull_count"),
        })
        .collect();
    pool.close().await;
    Some(out)
}

/// Waits until `check` holds, or panics after `timeout` with `what`.
pub async fn wait_until<F, Fut>(timeout: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Deterministic pseudo-random content of varied sizes, unique per `n`.
pub fn content_for(n: u64, seed: u64) -> Vec<u8> {
    let mut state = seed ^ (n.wrapping_mul(0x9E37_79B9_7F4A_7C15)) | 1;
    let len = 64 + (state % 16_384) as usize;
    let mut out = format!("<dokument nr=\"{n}\" seed=\"{seed}\">").into_bytes();
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.push(b'a' + (state % 26) as u8);
    }
    out.extend_from_slice(b"</dokument>");
    out
}

/// A real SMTP server process on loopback: aiosmtpd (installed by `.ci/setup-smtpd` into
/// target/ci-venv, or the Python named by `EURZAD_TEST_SMTPD_PYTHON`), delivering into a
/// maildir that the test reads back.
pub struct SmtpServer {
    child: Child,
    pub port: u16,
    maildir: PathBuf,
}

impl SmtpServer {
    pub fn start(dir: &Path) -> SmtpServer {
        let python = std::env::var("EURZAD_TEST_SMTPD_PYTHON").unwrap_or_else(|_| {
            format!("{}/target/ci-venv/bin/python", env!("CARGO_MANIFEST_DIR"))
        });
        assert!(
            Path::new(&python).exists(),
            "no aiosmtpd: run .ci/setup-smtpd (or set EURZAD_TEST_SMTPD_PYTHON)"
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let maildir = dir.join("maildir");
        let child = Command::new(&python)
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start aiosmtpd");
        let deadline = Instant::now() + Duration::from_secs(15);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "aiosmtpd did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        SmtpServer {
            child,
            port,
            maildir,
        }
    }

    /// Every message received so far: (recipients, subject, body), decoded.
    pub fn messages(&self) -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        for sub in ["new", "cur"] {
            let Ok(entries) = std::fs::read_dir(self.maildir.join(sub)) else {
                continue;
            };
            for entry in entries.flatten() {
                let raw = std::fs::read(entry.path()).expect("read a message");
                let mail = mailparse::parse_mail(&raw).expect("a parseable message");
                let header = |name: &str| {
                    mail.headers
                        .iter()
                        .find(|h| h.get_key().eq_ignore_ascii_case(name))
                        .map(|h| h.get_value())
                        .unwrap_or_default()
                };
                out.push((
                    header("To"),
                    header("Subject"),
                    mail.get_body().expect("a decodable body"),
                ));
            }
        }
        out.sort_by(|a, b| a.1.cmp(&b.1));
        out
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes `dir/config.toml` for a daemon on `database_url` with the embedded emulator (its
/// state in `dir/emulator`) and one box, `/urzad_testowy/skrytka`; `epuap` adds keys to
/// `[epuap]` (one per line).
pub fn embedded_config(dir: &Path, database_url: &str, epuap: &str) -> PathBuf {
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[database]\nurl = \"{database_url}\"\n[epuap]\nendpoint = \"embedded\"\n{epuap}\n\
             [[epuap.boxes]]\npodmiot = \"urzad_testowy\"\nnazwa = \"skrytka\"\n\
             adres = \"/urzad_testowy/skrytka\"\n[emulator]\nstate_dir = \"{}\"\n",
            dir.join("emulator").display()
        ),
    )
    .expect("write the test config");
    config
}

/// Runs `eurzad ARGS --config CONFIG`: (success, stdout + stderr).
pub fn eurzad_with_config(args: &[&str], config: &Path) -> (bool, String) {
    let (code, out) = eurzad_exit_with_config(args, config);
    (code == Some(0), out)
}

/// Runs `eurzad ARGS --config CONFIG`: (exit code, stdout + stderr).
pub fn eurzad_exit_with_config(args: &[&str], config: &Path) -> (Option<i32>, String) {
    let out = Command::new(BIN)
        .args(args)
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run eurzad");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// A pool on a test database through sqlx's Any driver.
pub async fn any_pool(url: &str) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    sqlx::AnyPool::connect(url)
        .await
        .expect("connect to the test database")
}

/// Runs one statement written by a test (fixture rows, state changes).
pub async fn exec(pool: &sqlx::AnyPool, sql: &str) {
    sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
        .execute(pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// A replied access request (document 1, request 1) for representations to point at.
pub async fn seed_request(pool: &sqlx::AnyPool) {
    let ts = "'2026-11-01 10:00:00+00:00'";
    exec(pool, &format!(
        "INSERT INTO inbound_document (id, identity_key, box_address, podmiot_identyfikator, podmiot_typ_osoby, \
         podmiot_zgoda, data_nadania, nazwa_skrytki, adres_skrytki, czy_testowe, dane_dodatkowe, nazwa_pliku, \
         content, content_sha256, skrot, received_at) VALUES (1, 'k', '/b', 'p', 'F', false, 'x', 's', '/b', false, \
         '', 'w.xml', '', 'h', 's', {ts})"
    ))
    .await;
    exec(pool, &format!(
        "INSERT INTO access_request (id, document_id, received_at, deadline_at, status, created_at, updated_at) \
         VALUES (1, 1, {ts}, {ts}, 'replied', {ts}, {ts})"
    ))
    .await;
}

/// Account `agent` represents Anna Nowak (PESEL 90010112349) for taxes, from 2026-01-01
/// (representation 1; needs [`seed_request`]).
pub async fn grant_anna_taxes(pool: &sqlx::AnyPool, agent: i64) {
    exec(pool, &format!(
        "INSERT INTO representation (id, agent_account_id, principal_kind, principal_name, principal_id_type, \
         principal_id, basis, valid_from, valid_to, status, source_request_id, source_document_id, verified_by, \
         verified_at) VALUES (1, {agent}, 'F', 'Anna Nowak', 'PESEL', '90010112349', 'upowaznienie', '2026-01-01', \
         NULL, 'active', 1, 1, 'test', '2026-11-01 10:00:00+00:00')"
    ))
    .await;
    exec(
        pool,
        "INSERT INTO representation_scope (representation_id, scope) VALUES (1, 'podatki')",
    )
    .await;
}

/// A `;`-separated register CSV as the XML format (schemas/rejestr.xsd): a row element per
/// line (named per register), an attribute per non-empty value, named by the header.
pub fn register_csv_as_xml(csv: &str, register: &str) -> String {
    let mut lines = csv.lines();
    let headers: Vec<&str> = lines.next().unwrap().split(';').collect();
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Rejestr xmlns=\"http://epuap.gov.pl/fe-model-web/wzor_lokalny/eurzad/rejestr/\" rejestr=\"{register}\">\n",
    );
    let element = eurzad::registers::xml_source::row_element(register).expect("a register");
    for line in lines {
        let attributes: String = headers
            .iter()
            .zip(line.split(';'))
            .filter(|(_, v)| !v.is_empty())
            .map(|(h, v)| format!(" {h}=\"{v}\""))
            .collect();
        xml.push_str(&format!("  <{element}{attributes}/>\n"));
    }
    xml.push_str("</Rejestr>\n");
    xml
}

/// The encodings XML 1.0 Appendix F tells apart, each with and without a byte-order mark.
pub const XML_ENCODINGS: [&str; 8] = [
    "UTF-16LE",
    "UTF-16LE+BOM",
    "UTF-16BE",
    "UTF-16BE+BOM",
    "UTF-32LE",
    "UTF-32LE+BOM",
    "UTF-32BE",
    "UTF-32BE+BOM",
];

/// `text` (an XML document in UTF-8) in `encoding`, one of [`XML_ENCODINGS`], its declaration
/// (if any) naming that encoding.
pub fn xml_in_encoding(text: &str, encoding: &str) -> Vec<u8> {
    let (name, bom) = match encoding.strip_suffix("+BOM") {
        Some(name) => (name, true),
        None => (encoding, false),
    };
    let text = text.replacen(
        "encoding=\"UTF-8\"",
        &format!("encoding=\"{}\"", &name[..6]),
        1,
    );
    let chars = bom.then_some('\u{FEFF}').into_iter().chain(text.chars());
    match name {
        "UTF-16LE" => chars
            .flat_map(|c| c.encode_utf16(&mut [0; 2]).to_vec())
            .flat_map(u16::to_le_bytes)
            .collect(),
        "UTF-16BE" => chars
            .flat_map(|c| c.encode_utf16(&mut [0; 2]).to_vec())
            .flat_map(u16::to_be_bytes)
            .collect(),
        "UTF-32LE" => chars.flat_map(|c| (c as u32).to_le_bytes()).collect(),
        "UTF-32BE" => chars.flat_map(|c| (c as u32).to_be_bytes()).collect(),
        other => panic!("unknown encoding {other}"),
    }
}

/// A valid PESEL, the `n`th from `first` (ten digits) in steps of seven: distinct people for
/// tests with many requests.
pub fn nth_pesel(first: u64, n: usize) -> String {
    let base = format!("{:010}", first + n as u64 * 7);
    let check = eurzad::identifiers::pesel_check_digit(&base).unwrap();
    format!("{base}{check}")
}

/// A drop folder `dir/import` holding a copy of the hand-checked register set
/// (fixtures/registers/basic): a sync moves the files it applied, so tests never sync the
/// fixtures themselves.
pub fn basic_registers_drop_dir(dir: &Path) -> PathBuf {
    let import = dir.join("import");
    std::fs::create_dir_all(&import).unwrap();
    for entry in std::fs::read_dir(fixture("registers/basic")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "csv") {
            std::fs::copy(&path, import.join(path.file_name().unwrap())).unwrap();
        }
    }
    import
}
