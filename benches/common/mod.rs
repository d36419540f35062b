//! Measuring helpers shared by the benches.
//! Each bench uses its own share of them.
#![allow(dead_code)]

use std::process::Command;
use std::time::Duration;

/// CPU time (user + system) and peak RSS (KiB) of this process, from getrusage.
pub fn cpu_time() -> (Duration, u64) {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    (
        tv(usage.ru_utime) + tv(usage.ru_stime),
        usage.ru_maxrss as u64,
    )
}

/// Seconds per RSA-2048 signature according to `openssl speed`.
pub fn openssl_rsa2048_sign() -> Duration {
    let output = Command::new("openssl")
        .args(["speed", "-seconds", "2", "rsa2048"])
        .output()
        .expect("openssl is installed");
    let text = String::from_utf8_lossy(&output.stdout);
    // "rsa 2048 bits 0.000712s 0.000021s   1404.5  47619.0"
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("rsa 2048 bits"))
        .unwrap_or_else(|| panic!("unexpected openssl speed output:\n{text}"));
    let sign: f64 = line
        .split_whitespace()
        .nth(3)
        .unwrap()
        .trim_end_matches('s')
        .parse()
        .unwrap();
    Duration::from_secs_f64(sign)
}

/// An emulator process, killed when dropped: a bench that panics leaves none behind.
pub struct Emulator(std::process::Child);

impl std::ops::Deref for Emulator {
    type Target = std::process::Child;
    fn deref(&self) -> &std::process::Child {
        &self.0
    }
}

impl std::ops::DerefMut for Emulator {
    fn deref_mut(&mut self) -> &mut std::process::Child {
        &mut self.0
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// An `eurzad emulator` process with one box on a free loopback port: (process, base URL).
pub fn start_emulator(state_dir: &std::path::Path, adres: &str) -> (Emulator, String) {
    start_emulator_with(state_dir, adres, &[])
}

/// As [`start_emulator`], with more arguments (`--edoreczenia …`).
pub fn start_emulator_with(
    state_dir: &std::path::Path,
    adres: &str,
    extra: &[&str],
) -> (Emulator, String) {
    use std::io::{BufRead, BufReader};
    let mut emulator = Command::new(env!("CARGO_BIN_EXE_eurzad"))
        .args(["emulator", "--listen", "127.0.0.1:0", "--state-dir"])
        .arg(state_dir)
        .args(["--box", &format!("urzad_testowy:skrytka:{adres}")])
        .args(extra)
        .env("RUST_LOG", "error")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start the emulator");
    let mut line = String::new();
    BufReader::new(emulator.stdout.take().expect("piped stdout"))
        .read_line(&mut line)
        .expect("the emulator says where it listens");
    let url = line.trim().rsplit(' ').next().expect("a URL").to_string();
    (Emulator(emulator), url)
}

/// A whole number from the environment, or `default` when unset or unreadable.
pub fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Puts documents into an emulator box through its admin API (`POST /admin/documents`),
/// each given as the API's JSON.
pub async fn put_documents(url: &str, documents: impl Iterator<Item = serde_json::Value>) {
    let http = reqwest::Client::new();
    for document in documents {
        let response = http
            .post(format!("{url}/admin/documents"))
            .json(&document)
            .send()
            .await
            .expect("the emulator answers");
        assert_eq!(response.status(), 201, "the emulator took the document");
    }
}

/// The PostgreSQL the benches make their databases in: EURZAD_BENCH_POSTGRES_URL, or the
/// one `.ci/run` starts.
pub struct PgAdmin {
    pub url: String,
}

impl PgAdmin {
    pub fn from_env() -> Self {
        PgAdmin {
            url: std::env::var("EURZAD_BENCH_POSTGRES_URL")
                .unwrap_or_else(|_| "postgres://eurzad:eurzad@127.0.0.1/eurzad".into()),
        }
    }

    /// Runs one statement as the admin: false when PostgreSQL is not reachable or refuses.
    pub fn exec(&self, runtime: &tokio::runtime::Runtime, sql: String) -> bool {
        runtime.block_on(async {
            let Ok(mut c) = <sqlx::PgConnection as sqlx::Connection>::connect(&self.url).await
            else {
                return false;
            };
            sqlx::Executor::execute(&mut c, sqlx::AssertSqlSafe(sql))
                .await
                .is_ok()
        })
    }

    /// The URL of database `name` on the same server.
    pub fn database_url(&self, name: &str) -> String {
        format!("{}/{name}", self.url.rsplit_once('/').unwrap().0)
    }
}

/// The `n`th bench applicant's PESEL.
pub fn pesel(n: usize) -> String {
    let base = format!("{:010}", 7_001_010_000u64 + n as u64 * 13);
    let check = eurzad::identifiers::pesel_check_digit(&base).unwrap();
    format!("{base}{check}")
}

/// The `n`th bench applicant's access request, signed with the trusted profile (the demo
/// ePUAP key).
pub fn access_request(n: usize) -> Vec<u8> {
    let pesel = pesel(n);
    let form = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Wniosek xmlns=\"{ns}\"><Wnioskodawca><Imie>Osoba{n}</Imie>\
         <Nazwisko>Testowa</Nazwisko><PESEL>{pesel}</PESEL><Email>osoba{n}@example.test</Email></Wnioskodawca>\
         <DataWniosku>2026-11-20</DataWniosku></Wniosek>\n",
        ns = eurzad::forms::ACCESS_REQUEST_NS
    );
    let role =
        eurzad::signature::seal::trusted_profile_role(&format!("Osoba{n}"), "Testowa", &pesel);
    eurzad::signature::seal::xades_enveloped_with_role(
        form.as_bytes(),
        &eurzad::emulator::demo_pki::epuap_key(),
        chrono::Utc::now(),
        "podpis",
        Some(&role),
    )
    .unwrap()
}
