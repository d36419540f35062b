//! Configuration: typed structs with documented defaults, loaded once at start.
//!
//! `config.toml` at the top of the repository is both the documented default and, compiled
//! in, the embedded default used when no `--config` is given. Relative paths are relative to
//! the working directory (systemd sets it to the state directory).
//!
//! Secrets need not sit in the file:
//! - `EURZAD_DATABASE_URL` overrides `database.url`, and `database.url_file` reads it from a
//!   file;
//! - any path may be written `credential:NAME`, meaning `$CREDENTIALS_DIRECTORY/NAME`, which
//!   is where systemd's `LoadCredential=` puts files.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::document::SkrotAlgorithm;
use crate::epuap::soap::BoxRef;
use crate::xmldsig::SigningKey;

/// The shipped `config.toml`.
pub const EMBEDDED_DEFAULT: &str = include_str!("../config.toml");

/// A configuration error. It always names the file and, where it can, the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}: {message}")]
    Parse { file: String, message: String },
    #[error("{file}: {key}: {message}")]
    Invalid {
        file: String,
        key: String,
        message: String,
    },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub database: DatabaseConfig,
    /// Needed by the daemon only: a configuration for `eurzad sync` alone may leave it out.
    #[serde(default)]
    pub epuap: EpuapConfig,
    #[serde(default)]
    pub emulator: EmbeddedEmulatorConfig,
    #[serde(default)]
    pub jobs: JobsConfig,
    #[serde(default)]
    pub trust: TrustConfig,
    #[serde(default)]
    pub forms: FormsConfig,
    #[serde(default)]
    pub provisioning: ProvisioningConfig,
    #[serde(default)]
    pub notify: NotifyConfig,
    /// Where letters other than access requests go (by form type and box).
    #[serde(default)]
    pub routing: Vec<RoutingRule>,
    #[serde(default)]
    pub registers: RegistersConfig,
    #[serde(default)]
    pub portal: PortalConfig,
    #[serde(default)]
    pub edoreczenia: EdoreczeniaConfig,
    #[serde(default)]
    pub delivery: DeliveryConfig,
    #[serde(default)]
    pub desk: DeskConfig,
    #[serde(default)]
    pub log: LogConfig,
    /// Where the configuration came from, for messages.
    #[serde(skip)]
    pub source: String,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://PATH` (created on first start) or `postgres://user:pass@host/db`.
    #[serde(default = "default_database_url")]
    pub url: String,
    /// A file holding the URL (for a password kept out of the configuration).
    #[serde(default)]
    pub url_file: Option<String>,
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
}

impl DatabaseConfig {
    /// Whether the database is SQLite (else PostgreSQL).
    pub fn is_sqlite(&self) -> bool {
        self.url.starts_with("sqlite:")
    }
}

impl std::fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &redact_url(&self.url))
            .field("url_file", &self.url_file)
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

/// The URL with any password replaced by `***`, for logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EpuapConfig {
    /// `embedded`, or a base URL under which `/pk_external_ws/services/{pull,skrytka,…}` live.
    /// Empty (no `[epuap]` table) only in a configuration for commands that reach no ePUAP.
    #[serde(default)]
    pub endpoint: String,
    #[serde(default)]
    pub wss_certificate: Option<String>,
    #[serde(default)]
    pub wss_private_key: Option<String>,
    #[serde(default)]
    pub server_certificate: Option<String>,
    #[serde(default = "default_poll_interval", with = "humantime_serde")]
    pub poll_interval: Duration,
    #[serde(default = "default_request_timeout", with = "humantime_serde")]
    pub request_timeout: Duration,
    #[serde(default = "default_connect_timeout", with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Attempts per idempotent call (the pull operations) before the error surfaces.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    #[serde(default = "default_backoff_initial", with = "humantime_serde")]
    pub backoff_initial: Duration,
    #[serde(default = "default_backoff_max", with = "humantime_serde")]
    pub backoff_max: Duration,
    /// The digest in `potwierdzOdebranie/skrot`: `sha1` (ePUAP's) or `sha256`.
    #[serde(default)]
    pub skrot: SkrotAlgorithm,
    /// Largest accepted document content, in bytes.
    #[serde(default = "default_max_document_bytes")]
    pub max_document_bytes: usize,
    /// Accepted clock difference with ePUAP when checking Timestamps.
    #[serde(default = "default_clock_skew", with = "humantime_serde")]
    pub clock_skew: Duration,
    #[serde(default)]
    pub boxes: Vec<BoxConfig>,
}

impl Default for EpuapConfig {
    fn default() -> Self {
        EpuapConfig {
            endpoint: String::new(),
            wss_certificate: None,
            wss_private_key: None,
            server_certificate: None,
            poll_interval: default_poll_interval(),
            request_timeout: default_request_timeout(),
            connect_timeout: default_connect_timeout(),
            max_attempts: default_max_attempts(),
            backoff_initial: default_backoff_initial(),
            backoff_max: default_backoff_max(),
            skrot: SkrotAlgorithm::default(),
            max_document_bytes: default_max_document_bytes(),
            clock_skew: default_clock_skew(),
            boxes: Vec::new(),
        }
    }
}

/// The parts of a configuration a command uses. Each command checks only its own parts, so
/// that, say, a configuration for `eurzad sync` alone need not name an ePUAP box.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// `[database]` (every command that opens the database).
    Database,
    /// `[epuap]`: the endpoint, the boxes, the office's keys.
    Epuap,
    /// `[trust]`: the anchors, the trusted list, the CRLs, the seals.
    Trust,
    /// `[registers]`: schedules and interest.
    Registers,
    /// `[notify]`: addresses, SMTP, the digest, the time zone.
    Notify,
    /// `[provisioning]`: the seal key and the letter kinds.
    Provisioning,
    /// `[portal]`: the read API's token.
    Portal,
}

impl Part {
    /// Everything: what the daemon (and `eurzad check`) use.
    pub const ALL: [Part; 7] = [
        Part::Database,
        Part::Epuap,
        Part::Trust,
        Part::Registers,
        Part::Notify,
        Part::Provisioning,
        Part::Portal,
    ];
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoxConfig {
    pub podmiot: String,
    pub nazwa: String,
    pub adres: String,
}

impl BoxConfig {
    pub fn to_ref(&self) -> BoxRef {
        BoxRef {
            podmiot: self.podmiot.clone(),
            nazwa: self.nazwa.clone(),
            adres: self.adres.clone(),
        }
    }
}

/// Settings of the in-process emulator (`epuap.endpoint = "embedded"`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddedEmulatorConfig {
    #[serde(default = "default_emulator_state")]
    pub state_dir: String,
    /// Seed demo documents into the first box when the state directory is new.
    #[serde(default = "yes")]
    pub seed_demo: bool,
}

impl Default for EmbeddedEmulatorConfig {
    fn default() -> Self {
        EmbeddedEmulatorConfig {
            state_dir: default_emulator_state(),
            seed_demo: true,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobsConfig {
    /// Attempts of a failing job before it is marked failed.
    #[serde(default = "default_job_attempts")]
    pub max_attempts: u32,
    #[serde(default = "default_job_retry", with = "humantime_serde")]
    pub retry_delay: Duration,
    /// How long a claimed job belongs to its worker; a job of a crashed daemon is taken over
    /// after this. Longer than any job's run.
    #[serde(default = "default_job_lease", with = "humantime_serde")]
    pub lease: Duration,
}

impl Default for JobsConfig {
    fn default() -> Self {
        JobsConfig {
            max_attempts: default_job_attempts(),
            retry_delay: default_job_retry(),
            lease: default_job_lease(),
        }
    }
}

/// Whom signatures on inbound documents must come from. Each kind has its own anchors.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustConfig {
    /// A folder of PEM/DER anchors for qualified signatures.
    #[serde(default)]
    pub qualified_ca_dir: Option<String>,
    /// A national trusted list (ETSI TS 119 612): its granted CA/QC services become anchors
    /// for qualified signatures, once the list's own signature verifies.
    #[serde(default)]
    pub tsl: Option<String>,
    /// Who may sign the trusted list: a PEM file of signer certificates, or the EU LOTL (XML),
    /// whose pointer for the list's territory names them. Required with `tsl`.
    #[serde(default)]
    pub tsl_signers: Option<String>,
    /// ePUAP's trusted-profile signing certificate(s); the shipped seal when absent.
    #[serde(default)]
    pub trusted_profile_certificates: Option<Vec<String>>,
    /// A folder of PEM/DER anchors for personal (e-ID) signatures.
    #[serde(default)]
    pub personal_ca_dir: Option<String>,
    /// A folder of CRLs (PEM or DER: .crl, .pem, .der) for qualified and personal
    /// signatures. Each must be signed by a configured anchor; a certificate a CRL lists as
    /// revoked at the judging time fails.
    #[serde(default)]
    pub crl_dir: Option<String>,
    /// Fetch revocation data from the sources certificates name: CRL distribution points and
    /// OCSP responders (Authority Information Access), cached until their nextUpdate. Where
    /// none answers with fresh data, a signature is INDETERMINATE (TRY_LATER, or
    /// REVOCATION_OUT_OF_BOUNDS_NO_POE), never passed. `crl_dir` stays an offline source.
    #[serde(default = "yes")]
    pub fetch_revocation: bool,
    /// How long a revocation source may take to answer.
    #[serde(default = "default_revocation_timeout", with = "humantime_serde")]
    pub revocation_timeout: Duration,
    /// Judge chains and revocation at the XAdES SigningTime instead of now. The signer
    /// claims that time; keep `false` unless signatures are time-stamped by other means.
    #[serde(default)]
    pub judge_at_signing_time: bool,
    /// Accept SHA-1 (legacy documents only).
    #[serde(default)]
    pub allow_sha1: bool,
}

impl Default for TrustConfig {
    fn default() -> Self {
        TrustConfig {
            qualified_ca_dir: None,
            tsl: None,
            tsl_signers: None,
            trusted_profile_certificates: None,
            personal_ca_dir: None,
            crl_dir: None,
            fetch_revocation: true,
            revocation_timeout: default_revocation_timeout(),
            judge_at_signing_time: false,
            allow_sha1: false,
        }
    }
}

fn default_revocation_timeout() -> Duration {
    Duration::from_secs(10)
}

/// The office's own forms: the namespaces they are published under on ePUAP.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FormsConfig {
    pub access_request_namespace: String,
    pub authorization_namespace: String,
}

impl Default for FormsConfig {
    fn default() -> Self {
        FormsConfig {
            access_request_namespace: crate::forms::ACCESS_REQUEST_NS.into(),
            authorization_namespace: crate::forms::AUTHORIZATION_NS.into(),
        }
    }
}

impl FormsConfig {
    pub fn registry(&self) -> crate::forms::Registry {
        crate::forms::Registry {
            access_request_ns: self.access_request_namespace.clone(),
            authorization_ns: self.authorization_namespace.clone(),
        }
    }
}

/// The letter kinds `provisioning.proof_of_delivery` may name.
pub const PROOF_KINDS: [&str; 2] = ["registration_info", "registration_refusal"];

/// Access requests and the office's replies (docs/provisioning.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProvisioningConfig {
    /// The office's name, as letters show it.
    pub office_name: String,
    /// Days from receipt to the reply deadline.
    pub deadline_days: u32,
    /// `calendar` or `working` (Monday to Friday except Polish public holidays).
    pub deadline_count: crate::provisioning::deadline::DayCount,
    /// How replies travel: `skrytka` (nadaj, UPP at once) or `doreczyciel` (dorecz, UPD later).
    pub reply_channel: ReplyChannel,
    /// Letter kinds that need a proof of delivery (UPD): sent with doręczyciel `dorecz`
    /// instead of `nadaj` (`registration_info`, `registration_refusal`).
    pub proof_of_delivery: Vec<String>,
    /// The key letters are sealed with; the WS-Security key (`epuap.wss_*`) when absent.
    pub seal_private_key: Option<String>,
    pub seal_certificate: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplyChannel {
    Skrytka,
    Doreczyciel,
}

impl Default for ProvisioningConfig {
    fn default() -> Self {
        ProvisioningConfig {
            office_name: "Urząd Miasta".into(),
            deadline_days: 7,
            deadline_count: crate::provisioning::deadline::DayCount::Calendar,
            reply_channel: ReplyChannel::Skrytka,
            proof_of_delivery: Vec::new(),
            seal_private_key: None,
            seal_certificate: None,
        }
    }
}

/// E-mail to officials (docs/notify.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    /// Who is told about requests (waiting, reminders, overdue, the digest).
    pub officials: Vec<String>,
    /// The sender, e.g. `eUrząd <eurzad@urzad.example>`.
    pub from: String,
    /// The SMTP server; without it mail is written to `mail_dir` and the log says so.
    pub smtp_host: Option<String>,
    pub smtp_port: Option<u16>,
    /// `starttls` (default), `tls` (implicit TLS, port 465) or `none` (plain SMTP: refused
    /// unless `smtp_host` is a loopback address).
    pub smtp_security: SmtpSecurity,
    pub smtp_user: Option<String>,
    /// A file holding the SMTP password (`credential:NAME` works).
    pub smtp_password_file: Option<String>,
    /// Where mail goes when no SMTP server is configured.
    pub mail_dir: String,
    /// When the daily digest goes out: a 5-field cron pattern in `timezone`.
    pub digest_cron: String,
    pub timezone: String,
    /// A reminder goes out when this little time is left before a deadline.
    #[serde(with = "humantime_serde")]
    pub reminder_before: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpSecurity {
    Starttls,
    Tls,
    None,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            officials: Vec::new(),
            from: "eUrząd <eurzad@localhost>".into(),
            smtp_host: None,
            smtp_port: None,
            smtp_security: SmtpSecurity::Starttls,
            smtp_user: None,
            smtp_password_file: None,
            mail_dir: "var/mail".into(),
            digest_cron: "0 8 * * *".into(),
            timezone: "Europe/Warsaw".into(),
            reminder_before: Duration::from_secs(2 * 24 * 3600),
        }
    }
}

/// e-Doręczenia's UA API (src/edoreczenia/): off unless `endpoint` is set. So far eurzad
/// resolves and checks the system's credentials; sending and receiving come with issue 17.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EdoreczeniaConfig {
    /// The UA API's base URL (`https://uaapi-ow.poczta-polska.pl`), or "embedded" for the
    /// emulator; off when absent.
    pub endpoint: Option<String>,
    /// The office's e-Doręczenia address (ADE), `AE:PL-NNNNN-NNNNN-XXXXX-NN`.
    pub ade: Option<String>,
    /// The system's name as registered in the mailbox's admin panel ("eurzad" when absent).
    pub system_name: Option<String>,
    /// The system certificate registered in the panel (PEM), and its private key.
    pub system_certificate: Option<String>,
    pub system_private_key: Option<String>,
    /// The auth realm (`…/auth/realms/EDOR`); `<endpoint>/auth/realms/EDOR` when absent.
    pub realm: Option<String>,
    /// The operator's sealing certificate (PEM): evidences are checked against it; without
    /// it their seals are recorded as unchecked.
    pub operator_certificate: Option<String>,
    /// Days after D.1 an unclaimed letter is deemed delivered (14 when absent).
    pub deemed_after_days: Option<u32>,
    /// Whether a deemed-delivery day on a Saturday, Sunday or public holiday moves to the
    /// next working day (KPA art. 57 § 4 read so; true when absent).
    pub deemed_moves_off_holidays: Option<bool>,
    /// How often a sent letter's evidences are asked for ("10m" when absent).
    #[serde(default, with = "humantime_serde::option")]
    pub evidence_interval: Option<std::time::Duration>,
}

/// How each kind of letter may go (docs/edoreczenia.md, "Choosing the channel"): the routes
/// in order of preference; the first one that reaches the addressee is taken.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    /// Per letter kind (`registration_info`, `registration_refusal`); a kind not named takes
    /// [`DEFAULT_ROUTES`].
    pub routes: std::collections::BTreeMap<String, Vec<crate::delivery::Route>>,
    /// How long an answer of the address database (BAE) is reused for the same person.
    #[serde(with = "humantime_serde")]
    pub address_cache: std::time::Duration,
}

/// To the addressee's e-Doręczenia address; else on paper through the hybrid service when
/// the request gave a postal address; else through ePUAP, to the request's reply address.
/// An office that reads no law as still allowing ePUAP for a kind leaves `epuap` out.
pub const DEFAULT_ROUTES: [crate::delivery::Route; 3] = [
    crate::delivery::Route::Edoreczenia,
    crate::delivery::Route::Hybrid,
    crate::delivery::Route::Epuap,
];

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            routes: std::collections::BTreeMap::new(),
            address_cache: std::time::Duration::from_secs(24 * 3600),
        }
    }
}

impl DeliveryConfig {
    /// The routes a letter of `kind` may take, in order.
    pub fn routes_for(&self, kind: &str) -> &[crate::delivery::Route] {
        self.routes.get(kind).map_or(&DEFAULT_ROUTES, Vec::as_slice)
    }
}

/// The demo mailbox of the embedded e-Doręczenia emulator.
pub const DEMO_ADE: &str = "AE:PL-00000-00000-EURZD-00";

/// The optional read API for the portal (src/portal.rs): reads through it are logged.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PortalConfig {
    /// Where to listen, e.g. "127.0.0.1:8090"; no API when absent.
    pub listen: Option<std::net::SocketAddr>,
    /// A file holding the bearer token the portal sends (`credential:` works).
    pub token_file: Option<String>,
    /// Database connections of the API's own pool: reads in flight at once (the daemon's
    /// work keeps `database.max_connections` of its own). About twice the database's cores:
    /// more queue in the database instead of in the API, and a page's p99 grows (docs/
    /// benchmarks.md).
    pub connections: u32,
    /// Reads in flight at once while a register file is being applied, so that the sync
    /// keeps its share of the CPU; they still read the state before the file. 1 by default,
    /// on either database (the figures are in docs/benchmarks.md).
    pub connections_during_sync: usize,
    /// While a register file is applied, the read lane rests after each read this many
    /// times the read's own time. Unset: 0.25 on SQLite, whose reads run in the daemon's own
    /// threads beside the sync, 0 on PostgreSQL ([`PortalConfig::rest_during_sync`]; the
    /// figures are in docs/benchmarks.md).
    #[serde(rename = "rest_during_sync")]
    pub rest_during_sync_set: Option<f64>,
}

impl PortalConfig {
    /// `rest_during_sync`, or its default for the database (`sqlite` or not).
    pub fn rest_during_sync(&self, sqlite: bool) -> f64 {
        self.rest_during_sync_set
            .unwrap_or(if sqlite { 0.25 } else { 0.0 })
    }
}

/// The officials' desk (src/desk/, docs/desk.md): off unless `listen` is set.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeskConfig {
    /// Where to listen, e.g. "127.0.0.1:8091"; put the office's reverse proxy (TLS) in front.
    pub listen: Option<std::net::SocketAddr>,
    /// The address officials open, as the proxy serves it (`https://eurzad.urzad.example`):
    /// the e-mails link to the requests' pages under it. Sessions' cookies are `Secure`
    /// unless it is plain http on a loopback host.
    pub public_url: Option<String>,
    /// How long a sign-in lasts.
    #[serde(with = "humantime_serde")]
    pub session_ttl: std::time::Duration,
    /// Failed sign-ins allowed per login (and four times as many per address) within
    /// `sign_in_window`; more are refused until the window passes.
    pub sign_in_attempts: u32,
    #[serde(with = "humantime_serde")]
    pub sign_in_window: std::time::Duration,
}

impl Default for DeskConfig {
    fn default() -> Self {
        DeskConfig {
            listen: None,
            public_url: None,
            session_ttl: std::time::Duration::from_secs(8 * 3600),
            sign_in_attempts: 5,
            sign_in_window: std::time::Duration::from_secs(15 * 60),
        }
    }
}

impl DeskConfig {
    /// Whether cookies may go without `Secure`: only for plain http on a loopback host.
    pub fn insecure_ok(&self) -> bool {
        let Some(url) = self.public_url.as_deref() else {
            return self.listen.is_none_or(|a| a.ip().is_loopback());
        };
        let Ok(url) = reqwest::Url::parse(url) else {
            return false;
        };
        let host = url.host_str().unwrap_or("").trim_matches(['[', ']']);
        url.scheme() == "http"
            && (host == "localhost"
                || host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback()))
    }
}

impl Default for PortalConfig {
    fn default() -> Self {
        PortalConfig {
            listen: None,
            token_file: None,
            connections: 4,
            connections_during_sync: 1,
            rest_during_sync_set: None,
        }
    }
}

/// Back-office registers synced into the portal database (docs/import-formats.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistersConfig {
    /// Where the back office drops its CSV exports (`<register>*.csv`); applied files move
    /// to `done/`, refused ones to `failed/`.
    pub drop_dir: String,
    /// `auto` (UTF-8, else Windows-1250), `utf-8` or `windows-1250`.
    pub encoding: crate::registers::csv_source::FileEncoding,
    /// `full` (rows missing from a file are deleted) or `incremental`.
    pub mode: crate::store::registers::SyncMode,
    /// Cron patterns (5 fields, or 6 with seconds) in `notify.timezone`, per register; a
    /// register without one is synced only by `eurzad sync`.
    pub schedule: std::collections::BTreeMap<String, String>,
    /// Registers read by a SQL query from another database instead of the drop folder.
    pub sql: std::collections::BTreeMap<String, SqlSourceConfig>,
    /// Late-payment interest on tax arrears (`eurzad interest`).
    pub interest: InterestConfig,
}

/// The rate table and threshold for late-payment interest (art. 54, 56 Ordynacja podatkowa).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InterestConfig {
    /// `{ from = "2023-10-05", basis_points = 1450 }`: the rate from that day on.
    pub rates: Vec<crate::registers::interest::RatePeriod>,
    /// The registered-letter fee in złoty (e.g. "8,70"): interest up to three times it is
    /// not charged.
    pub registered_letter_fee: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlSourceConfig {
    /// A sqlite:// or postgres:// URL (a `credential:` file path is read for the URL).
    pub url: String,
    /// A query returning the register's CSV columns (`id` and the headers) by name.
    pub query: String,
}

impl Default for RegistersConfig {
    fn default() -> Self {
        RegistersConfig {
            drop_dir: "var/import".into(),
            encoding: Default::default(),
            mode: Default::default(),
            schedule: Default::default(),
            sql: Default::default(),
            interest: Default::default(),
        }
    }
}

/// Letters other than access requests: which department is told, by form type and box.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingRule {
    /// `general_letter`, `authorization`, `unknown`, or `*`.
    #[serde(default = "any")]
    pub form_type: String,
    /// A box address (`epuap.boxes[].adres`), or `*`.
    #[serde(default = "any")]
    pub r#box: String,
    pub department: String,
    pub emails: Vec<String>,
}

fn any() -> String {
    "*".into()
}

/// Whether a start-up notice is logged for the first time in this process: a configuration's
/// trust is read when it loads and again when the daemon starts, and its notices are said once.
fn first_time(notice: &'static str) -> bool {
    static SAID: std::sync::Mutex<Vec<&'static str>> = std::sync::Mutex::new(Vec::new());
    let mut said = SAID.lock().unwrap_or_else(|e| e.into_inner());
    if said.contains(&notice) {
        return false;
    }
    said.push(notice);
    true
}

/// The shipped trusted-profile seal (`trust/pz-seal-minister-cyfryzacji-2024.pem`).
pub const TRUSTED_PROFILE_SEAL: &[u8] =
    include_bytes!("../trust/pz-seal-minister-cyfryzacji-2024.pem");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `text` or `json`.
    #[serde(default = "default_log_format")]
    pub format: String,
    /// A tracing filter, e.g. `info` or `eurzad=debug`. `RUST_LOG` wins when set.
    #[serde(default = "default_log_level")]
    pub level: String,
}

impl LogConfig {
    /// The `[log]` table of a configuration file, read before the rest is loaded and checked,
    /// so that what the load warns about reaches the log. The defaults when there is none,
    /// or when the file cannot be read or parsed (the load then reports why).
    pub fn peek(path: Option<&Path>) -> LogConfig {
        #[derive(Deserialize)]
        struct Peek {
            #[serde(default)]
            log: LogConfig,
        }
        let text = match path {
            Some(path) => std::fs::read_to_string(path).unwrap_or_default(),
            None => EMBEDDED_DEFAULT.to_string(),
        };
        toml::from_str::<Peek>(&text)
            .map(|p| p.log)
            .unwrap_or_default()
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: default_log_format(),
            level: default_log_level(),
        }
    }
}

fn default_database_url() -> String {
    "sqlite://var/eurzad.db".into()
}
fn default_max_connections() -> u32 {
    5
}
fn default_poll_interval() -> Duration {
    Duration::from_secs(30)
}
fn default_request_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_connect_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_max_attempts() -> u32 {
    4
}
fn default_backoff_initial() -> Duration {
    Duration::from_millis(500)
}
fn default_backoff_max() -> Duration {
    Duration::from_secs(60)
}
fn default_max_document_bytes() -> usize {
    50 * 1024 * 1024
}
fn default_clock_skew() -> Duration {
    Duration::from_secs(300)
}
fn default_emulator_state() -> String {
    "var/emulator".into()
}
fn default_job_attempts() -> u32 {
    5
}
fn default_job_retry() -> Duration {
    Duration::from_secs(30)
}
fn default_job_lease() -> Duration {
    Duration::from_secs(30)
}
fn default_log_format() -> String {
    "text".into()
}
fn default_log_level() -> String {
    "info".into()
}
fn yes() -> bool {
    true
}

/// Where the ePUAP services are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// The in-process emulator, started by the daemon.
    Embedded,
    /// A base URL (no trailing slash).
    Url(String),
}

impl Config {
    /// Loads `path`, or the embedded default when `None`: parsed, with its secrets read and
    /// its `[log]` checked. Each command then checks the parts it uses ([`Config::check`]).
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let (source, text) = match path {
            Some(path) => {
                let file = path.display().to_string();
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    file: file.clone(),
                    source,
                })?;
                (file, text)
            }
            None => (
                "embedded config.toml".to_string(),
                EMBEDDED_DEFAULT.to_string(),
            ),
        };
        Config::from_toml(&source, &text)
    }

    pub fn from_toml(source: &str, text: &str) -> Result<Config, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            file: source.to_string(),
            message: e.to_string().trim_end().replace('\n', " | "),
        })?;
        config.source = source.to_string();
        if let Ok(url) = std::env::var("EURZAD_DATABASE_URL") {
            config.database.url = url;
        } else if let Some(file) = config.database.url_file.clone() {
            let path = config.resolve_path("database.url_file", &file)?;
            config.database.url = std::fs::read_to_string(&path)
                .map_err(|e| {
                    config.invalid(
                        "database.url_file",
                        format!("cannot read {}: {e}", path.display()),
                    )
                })?
                .trim()
                .to_string();
        }
        if !matches!(config.log.format.as_str(), "text" | "json") {
            return Err(config.invalid(
                "log.format",
                format!("{:?}: expected \"text\" or \"json\"", config.log.format),
            ));
        }
        Ok(config)
    }

    /// Loads as [`Config::load`] does and checks the `parts` a command uses.
    pub fn load_for(path: Option<&Path>, parts: &[Part]) -> Result<Config, ConfigError> {
        let config = Config::load(path)?;
        config.check(parts)?;
        Ok(config)
    }

    /// [`Config::from_toml`], resolved as the daemon's start resolves it
    /// ([`crate::settings::Settings::resolve`]): every part, each error naming its key.
    pub fn daemon_from_toml(source: &str, text: &str) -> Result<Config, ConfigError> {
        let config = Config::from_toml(source, text)?;
        crate::settings::Settings::resolve(config.clone())?;
        Ok(config)
    }

    fn invalid(&self, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            file: self.source.clone(),
            key: key.to_string(),
            message: message.into(),
        }
    }

    /// The checks of the parts a command uses (each error names the key).
    pub fn check(&self, parts: &[Part]) -> Result<(), ConfigError> {
        for part in parts {
            match part {
                Part::Database => self.check_database()?,
                Part::Epuap => self.check_epuap()?,
                Part::Trust => {
                    self.inbound_trust_after(None)?;
                }
                Part::Registers => {
                    crate::sync::schedules(self).map_err(|e| self.invalid(&e.key, e.message))?;
                }
                Part::Notify => self.check_notify()?,
                Part::Provisioning => self.check_provisioning()?,
                Part::Portal => {
                    self.portal_token()?;
                    self.check_portal_limits()?;
                }
            }
        }
        Ok(())
    }

    /// `[desk]`: a public URL that is a URL, limits that allow a sign-in.
    pub fn check_desk(&self) -> Result<(), ConfigError> {
        if let Some(url) = &self.desk.public_url {
            match reqwest::Url::parse(url) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
                Ok(_) => {
                    return Err(self.invalid(
                        "desk.public_url",
                        format!("{url:?}: an http:// or https:// address with a host"),
                    ));
                }
                Err(e) => {
                    return Err(self.invalid("desk.public_url", format!("{url:?}: {e}")));
                }
            }
        }
        if self.desk.sign_in_attempts == 0 {
            return Err(self.invalid("desk.sign_in_attempts", "must be at least 1"));
        }
        if self.desk.session_ttl < std::time::Duration::from_secs(60) {
            return Err(self.invalid("desk.session_ttl", "must be at least a minute"));
        }
        Ok(())
    }

    /// `[portal]`'s limits: at least one read at a time.
    pub fn check_portal_limits(&self) -> Result<(), ConfigError> {
        if self.portal.connections == 0 {
            return Err(self.invalid("portal.connections", "must be at least 1"));
        }
        if self.portal.connections_during_sync == 0 {
            return Err(self.invalid("portal.connections_during_sync", "must be at least 1"));
        }
        if let Some(rest) = self.portal.rest_during_sync_set
            && !(rest.is_finite() && (0.0..=10.0).contains(&rest))
        {
            return Err(self.invalid("portal.rest_during_sync", "must be between 0 and 10"));
        }
        Ok(())
    }

    fn check_database(&self) -> Result<(), ConfigError> {
        let url = &self.database.url;
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return Err(self.invalid(
                "database.url",
                format!(
                    "{:?} is neither sqlite://PATH nor postgres://…",
                    redact_url(url)
                ),
            ));
        }
        Ok(())
    }

    fn check_epuap(&self) -> Result<(), ConfigError> {
        self.check_boxes()?;
        if self.endpoint()? != Endpoint::Embedded {
            self.office_key()?;
            self.server_certificate()?;
        }
        Ok(())
    }

    /// `[epuap]`'s plain values: the endpoint, the boxes, the numbers (no file is read).
    pub fn check_boxes(&self) -> Result<(), ConfigError> {
        self.endpoint()?;
        if self.epuap.boxes.is_empty() {
            return Err(self.invalid(
                "epuap.boxes",
                "no box configured: add at least one [[epuap.boxes]]",
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, b) in self.epuap.boxes.iter().enumerate() {
            for (field, value) in [
                ("podmiot", &b.podmiot),
                ("nazwa", &b.nazwa),
                ("adres", &b.adres),
            ] {
                if value.trim().is_empty() {
                    return Err(
                        self.invalid(&format!("epuap.boxes[{i}].{field}"), "must not be empty")
                    );
                }
            }
            if !seen.insert(b.adres.clone()) {
                return Err(self.invalid(
                    &format!("epuap.boxes[{i}].adres"),
                    format!("{:?} is configured twice", b.adres),
                ));
            }
        }
        if self.epuap.max_attempts == 0 {
            return Err(self.invalid("epuap.max_attempts", "must be at least 1"));
        }
        if self.epuap.poll_interval.is_zero() {
            return Err(self.invalid("epuap.poll_interval", "must be longer than zero"));
        }
        Ok(())
    }

    fn check_notify(&self) -> Result<(), ConfigError> {
        crate::notify::schedule::Schedule::new(&self.notify.digest_cron, &self.notify.timezone)
            .map_err(|e| self.invalid("notify.digest_cron", e.to_string()))?;
        crate::notify::check_addresses(self)?;
        crate::notify::check_smtp(self)?;
        chrono::TimeDelta::from_std(self.notify.reminder_before)
            .map_err(|_| self.invalid("notify.reminder_before", "too long"))?;
        Ok(())
    }

    fn check_provisioning(&self) -> Result<(), ConfigError> {
        // What the daemon needs once it runs, checked at the start: a mistake here must stop
        // the start before the database is opened, not after the boxes were drained.
        self.seal_key()?;
        self.check_letter_kinds()
    }

    /// `provisioning.proof_of_delivery` names letter kinds that exist.
    pub fn check_letter_kinds(&self) -> Result<(), ConfigError> {
        for kind in &self.provisioning.proof_of_delivery {
            if !PROOF_KINDS.contains(&kind.as_str()) {
                return Err(self.invalid(
                    "provisioning.proof_of_delivery",
                    format!(
                        "unknown letter kind {kind:?} (known: {})",
                        PROOF_KINDS.join(", ")
                    ),
                ));
            }
        }
        for (kind, routes) in &self.delivery.routes {
            let key = format!("delivery.routes.{kind}");
            if !PROOF_KINDS.contains(&kind.as_str()) {
                return Err(self.invalid(
                    "delivery.routes",
                    format!(
                        "unknown letter kind {kind:?} (known: {})",
                        PROOF_KINDS.join(", ")
                    ),
                ));
            }
            if routes.is_empty() {
                return Err(self.invalid(&key, "empty: a letter of this kind could go nowhere"));
            }
            for (i, route) in routes.iter().enumerate() {
                if routes[..i].contains(route) {
                    return Err(self.invalid(&key, format!("{route} is named twice")));
                }
            }
        }
        if self.delivery.address_cache.is_zero() {
            return Err(self.invalid(
                "delivery.address_cache",
                "must be more than zero (\"1min\" asks the address database nearly every time)",
            ));
        }
        Ok(())
    }

    /// The key letters are sealed with: `provisioning.seal_*`, else the WS-Security key.
    pub fn seal_key(&self) -> Result<SigningKey, ConfigError> {
        let provisioning = &self.provisioning;
        match (
            &provisioning.seal_private_key,
            &provisioning.seal_certificate,
        ) {
            (Some(key), Some(certificate)) => {
                let read = |k: &str, v: &str| {
                    let path = self.resolve_path(k, v)?;
                    std::fs::read(&path).map_err(|e| {
                        self.invalid(k, format!("cannot read {}: {e}", path.display()))
                    })
                };
                let key = SigningKey {
                    private_key_pem: read("provisioning.seal_private_key", key)?,
                    certificate_pem: read("provisioning.seal_certificate", certificate)?,
                };
                key.validate().map_err(|e| {
                    self.invalid(
                        "provisioning.seal_private_key / provisioning.seal_certificate",
                        e.to_string(),
                    )
                })?;
                Ok(key)
            }
            (None, None) => self.office_key(),
            _ => Err(self.invalid(
                "provisioning.seal_private_key",
                "goes together with provisioning.seal_certificate: set both or neither",
            )),
        }
    }

    /// The portal API's bearer token, when `portal.listen` is set: read from
    /// `portal.token_file`, at least 16 characters.
    pub fn portal_token(&self) -> Result<Option<String>, ConfigError> {
        if self.portal.listen.is_none() {
            return Ok(None);
        }
        let key = "portal.token_file";
        let file = self
            .portal
            .token_file
            .as_deref()
            .ok_or_else(|| self.invalid(key, "required with portal.listen"))?;
        let path = self.resolve_path(key, file)?;
        let token = std::fs::read_to_string(&path)
            .map_err(|e| self.invalid(key, format!("cannot read {}: {e}", path.display())))?
            .trim()
            .to_string();
        if token.chars().count() < 16 {
            return Err(self.invalid(key, "the token must have at least 16 characters"));
        }
        Ok(Some(token))
    }

    /// The trust for inbound documents, per kind of signature, read from the `[trust]` files.
    pub fn kind_trust(&self) -> Result<crate::signature::KindTrust, ConfigError> {
        self.kind_trust_after(None)
    }

    /// As [`Config::kind_trust`], refusing a trusted list whose sequence number is lower than
    /// `loaded_sequence` (the one the daemon used before: a rollback).
    pub fn kind_trust_after(
        &self,
        loaded_sequence: Option<u64>,
    ) -> Result<crate::signature::KindTrust, ConfigError> {
        let trust = &self.trust;
        let (mut qualified, trusted_list) = match &trust.tsl {
            Some(tsl) => {
                let (anchors, list) = self.trusted_list_anchors(tsl, loaded_sequence)?;
                (anchors, Some(list))
            }
            None => (Vec::new(), None),
        };
        qualified
            .extend(self.anchor_dir("trust.qualified_ca_dir", trust.qualified_ca_dir.as_deref())?);
        let personal =
            self.anchor_dir("trust.personal_ca_dir", trust.personal_ca_dir.as_deref())?;
        let pinned: Vec<Vec<u8>> = match &trust.trusted_profile_certificates {
            None => vec![TRUSTED_PROFILE_SEAL.to_vec()],
            Some(files) => files
                .iter()
                .map(|f| {
                    let path = self.resolve_path("trust.trusted_profile_certificates", f)?;
                    std::fs::read(&path).map_err(|e| {
                        self.invalid(
                            "trust.trusted_profile_certificates",
                            format!("cannot read {}: {e}", path.display()),
                        )
                    })
                })
                .collect::<Result<_, _>>()?,
        };
        let crls = self.crls(&[qualified.as_slice(), personal.as_slice()].concat())?;
        use crate::signature::revocation::{NamedSources, Revocation};
        let named = if trust.fetch_revocation {
            let fetch = crate::pki_http::HttpFetch::new(trust.revocation_timeout)
                .map_err(|e| self.invalid("trust.fetch_revocation", e))?;
            NamedSources::Fetch(std::sync::Arc::new(fetch))
        } else {
            NamedSources::Refuse
        };
        let revocation = Revocation::offline(crls).with_named(named);
        let policy = |anchors: Vec<Vec<u8>>, pinned: Vec<Vec<u8>>, revocation| {
            crate::signature::TrustPolicy {
                anchors,
                intermediates: Vec::new(),
                pinned,
                allow_sha1: trust.allow_sha1,
                revocation,
                at_signing_time: trust.judge_at_signing_time,
            }
        };
        Ok(crate::signature::KindTrust {
            qualified: policy(qualified, Vec::new(), revocation.clone()),
            trusted_profile: policy(Vec::new(), pinned, Default::default()),
            personal: policy(personal, Vec::new(), revocation),
            trusted_list,
        })
    }

    /// Whether documents come from the embedded emulator, whose demo requests carry a trusted
    /// profile sealed by its own demo key: a key whose private half is public (it is in the
    /// repository and the binary).
    pub fn trusts_demo_seal(&self) -> bool {
        self.epuap.endpoint.trim() == "embedded"
    }

    /// The trust for the documents this configuration's ePUAP delivers: [`Config::kind_trust_after`],
    /// and with the embedded emulator its demo seal as a trusted-profile signer too. Only a
    /// daemon that runs the embedded emulator judges by this, and `eurzad verify --config`
    /// naming such a configuration, which says so; nothing else ever trusts the demo key.
    pub fn inbound_trust_after(
        &self,
        loaded_sequence: Option<u64>,
    ) -> Result<crate::signature::KindTrust, ConfigError> {
        let mut trust = self.kind_trust_after(loaded_sequence)?;
        if self.trusts_demo_seal() {
            if first_time("demo key") {
                tracing::warn!(
                    "embedded emulator: its demo key is trusted as a trusted-profile seal (demo only)"
                );
            }
            trust
                .trusted_profile
                .pinned
                .push(crate::emulator::demo_pki::EPUAP_CERT.to_vec());
        }
        Ok(trust)
    }

    /// The CRLs of `trust.crl_dir`, each verified against `issuers`.
    fn crls(
        &self,
        issuers: &[Vec<u8>],
    ) -> Result<Vec<crate::signature::certificate::Crl>, ConfigError> {
        let key = "trust.crl_dir";
        let Some(dir) = self.trust.crl_dir.as_deref() else {
            return Ok(Vec::new());
        };
        self.files_in(key, dir, &["crl", "pem", "der"])?
            .into_iter()
            .map(|file| {
                let bytes = std::fs::read(&file).map_err(|e| {
                    self.invalid(key, format!("cannot read {}: {e}", file.display()))
                })?;
                crate::signature::certificate::Crl::load(&bytes, issuers)
                    .map_err(|e| self.invalid(key, format!("{}: {e}", file.display())))
            })
            .collect()
    }

    /// The files in a configured folder with one of `extensions`, sorted.
    fn files_in(
        &self,
        key: &str,
        dir: &str,
        extensions: &[&str],
    ) -> Result<Vec<PathBuf>, ConfigError> {
        let path = self.resolve_path(key, dir)?;
        let entries = std::fs::read_dir(&path)
            .map_err(|e| self.invalid(key, format!("cannot read {}: {e}", path.display())))?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| extensions.contains(&e))
            })
            .collect();
        files.sort();
        Ok(files)
    }

    /// The PEM/DER certificates in a folder (none when the key is not set).
    fn anchor_dir(&self, key: &str, dir: Option<&str>) -> Result<Vec<Vec<u8>>, ConfigError> {
        let Some(dir) = dir else {
            return Ok(Vec::new());
        };
        self.files_in(key, dir, &["pem", "crt", "cer", "der"])?
            .into_iter()
            .map(|file| {
                let bytes = std::fs::read(&file).map_err(|e| {
                    self.invalid(key, format!("cannot read {}: {e}", file.display()))
                })?;
                crate::xmldsig::certificates_der(&bytes)
                    .map_err(|e| self.invalid(key, format!("{}: {e}", file.display())))?;
                Ok(bytes)
            })
            .collect()
    }

    fn trusted_list_anchors(
        &self,
        tsl: &str,
        loaded_sequence: Option<u64>,
    ) -> Result<(Vec<Vec<u8>>, crate::signature::LoadedList), ConfigError> {
        let read = |key: &str, value: &str| -> Result<Vec<u8>, ConfigError> {
            let path = self.resolve_path(key, value)?;
            std::fs::read(&path)
                .map_err(|e| self.invalid(key, format!("cannot read {}: {e}", path.display())))
        };
        let list = read("trust.tsl", tsl)?;
        let signers_file = self.trust.tsl_signers.as_deref().ok_or_else(|| {
            self.invalid(
                "trust.tsl_signers",
                "required with trust.tsl: the LOTL or a PEM file of the list's signers",
            )
        })?;
        let signers = read("trust.tsl_signers", signers_file)?;
        let signers = crate::signature::tsl::signers_from_file(&signers, "PL")
            .map_err(|e| self.invalid("trust.tsl_signers", e.to_string()))?;
        let list = crate::signature::tsl::load(&list, &signers, loaded_sequence)
            .map_err(|e| self.invalid("trust.tsl", e.to_string()))?;
        let now = chrono::Utc::now();
        if list.next_update.is_some_and(|next| next < now) && first_time("stale trusted list") {
            tracing::warn!(sequence = list.sequence_number, next_update = ?list.next_update, "the trusted list is past its NextUpdate: fetch a new one");
        }
        let anchors = list.qualified_ca_anchors(now);
        if anchors.is_empty() {
            return Err(self.invalid(
                "trust.tsl",
                "the trusted list gives no granted qualified CA today",
            ));
        }
        tracing::info!(
            sequence = list.sequence_number,
            anchors = anchors.len(),
            "trusted list loaded"
        );
        let loaded = crate::signature::LoadedList {
            territory: list.territory.clone(),
            sequence_number: list.sequence_number,
            issued: list.issued,
        };
        Ok((anchors, loaded))
    }

    /// `[edoreczenia]` resolved: the base URL (or "embedded"), the realm, and the system's
    /// credentials, the key checked against its certificate; `None` when it is off.
    pub fn edoreczenia(&self) -> Result<Option<crate::edoreczenia::ApiSettings>, ConfigError> {
        let e = &self.edoreczenia;
        let Some(endpoint) = e.endpoint.as_deref().map(str::trim) else {
            return Ok(None);
        };
        let system_name = e.system_name.clone().unwrap_or_else(|| "eurzad".into());
        if system_name.is_empty()
            || system_name.len() > 128
            || !system_name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(self.invalid(
                "edoreczenia.system_name",
                format!("{system_name:?}: letters, digits, - and _ only, at most 128"),
            ));
        }
        let ade = |value: &str| -> Result<crate::edoreczenia::Ade, ConfigError> {
            value.parse().map_err(|err: crate::edoreczenia::AdeError| {
                self.invalid("edoreczenia.ade", err.to_string())
            })
        };
        if endpoint == "embedded" {
            let key = crate::emulator::demo_pki::office_key();
            let credentials = crate::edoreczenia::auth::SystemCredentials {
                ade: ade(e.ade.as_deref().unwrap_or(DEMO_ADE))?,
                system_name,
                private_key_pem: key.private_key_pem,
                certificate_label: "the embedded emulator's demo system certificate".into(),
            };
            return Ok(Some(crate::edoreczenia::ApiSettings {
                endpoint: "embedded".into(),
                realm: "embedded".into(),
                credentials,
                operator_certificate: Some(crate::emulator::demo_pki::EPUAP_CERT.to_vec()),
                following: self.evidence_following()?,
            }));
        }
        let url = reqwest::Url::parse(endpoint).map_err(|err| {
            self.invalid(
                "edoreczenia.endpoint",
                format!("{endpoint:?} is not \"embedded\" or a URL: {err}"),
            )
        })?;
        let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
        if !(url.scheme() == "https" || (url.scheme() == "http" && loopback)) {
            return Err(self.invalid(
                "edoreczenia.endpoint",
                format!("{endpoint:?}: https:// only (plain http:// on loopback, for an emulator)"),
            ));
        }
        let ade = ade(e.ade.as_deref().ok_or_else(|| {
            self.invalid("edoreczenia.ade", "required with edoreczenia.endpoint")
        })?)?;
        let read = |key: &str, value: Option<&String>| -> Result<(PathBuf, Vec<u8>), ConfigError> {
            let value =
                value.ok_or_else(|| self.invalid(key, "required with edoreczenia.endpoint"))?;
            let path = self.resolve_path(key, value)?;
            let bytes = std::fs::read(&path).map_err(|err| {
                self.invalid(key, format!("cannot read {}: {err}", path.display()))
            })?;
            Ok((path, bytes))
        };
        let (certificate_path, certificate) = read(
            "edoreczenia.system_certificate",
            e.system_certificate.as_ref(),
        )?;
        let (_, private_key) = read(
            "edoreczenia.system_private_key",
            e.system_private_key.as_ref(),
        )?;
        let pair = SigningKey {
            private_key_pem: private_key,
            certificate_pem: certificate,
        };
        pair.validate().map_err(|err| {
            self.invalid(
                "edoreczenia.system_private_key / edoreczenia.system_certificate",
                err.to_string(),
            )
        })?;
        let base = endpoint.trim_end_matches('/').to_string();
        let realm = e
            .realm
            .clone()
            .unwrap_or_else(|| format!("{base}/auth/realms/EDOR"));
        let credentials = crate::edoreczenia::auth::SystemCredentials {
            ade,
            system_name,
            private_key_pem: pair.private_key_pem,
            certificate_label: format!(
                "edoreczenia.system_certificate ({})",
                certificate_path.display()
            ),
        };
        let operator_certificate = match &e.operator_certificate {
            None => None,
            Some(value) => {
                let (path, pem) = read("edoreczenia.operator_certificate", Some(value))?;
                openssl::x509::X509::from_pem(&pem).map_err(|err| {
                    self.invalid(
                        "edoreczenia.operator_certificate",
                        format!("{} is not a PEM certificate: {err}", path.display()),
                    )
                })?;
                Some(pem)
            }
        };
        Ok(Some(crate::edoreczenia::ApiSettings {
            endpoint: base,
            realm,
            credentials,
            operator_certificate,
            following: self.evidence_following()?,
        }))
    }

    /// How sent letters' evidences are followed: the deemed-delivery rule in the office's
    /// time zone, and how often.
    fn evidence_following(&self) -> Result<crate::edoreczenia::Following, ConfigError> {
        let e = &self.edoreczenia;
        let days = e.deemed_after_days.unwrap_or(14);
        if !(1..=60).contains(&days) {
            return Err(self.invalid(
                "edoreczenia.deemed_after_days",
                format!("{days}: 1 to 60 (the law says 14)"),
            ));
        }
        // `notify.timezone` is judged (and its error reported) by `Settings::resolve`.
        let zone = self
            .notify
            .timezone
            .parse::<chrono_tz::Tz>()
            .unwrap_or(chrono_tz::Europe::Warsaw);
        Ok(crate::edoreczenia::Following {
            deemed: crate::edoreczenia::evidence::DeemedDelivery {
                days,
                moves_off_holidays: e.deemed_moves_off_holidays.unwrap_or(true),
                zone,
            },
            interval: e
                .evidence_interval
                .unwrap_or(std::time::Duration::from_secs(600)),
        })
    }

    /// The parsed `epuap.endpoint`.
    pub fn endpoint(&self) -> Result<Endpoint, ConfigError> {
        let value = self.epuap.endpoint.trim();
        if value == "embedded" {
            return Ok(Endpoint::Embedded);
        }
        if value.is_empty() {
            return Err(self.invalid(
                "epuap.endpoint",
                "not set: \"embedded\", or ePUAP's base URL (https://ws.epuap.gov.pl)",
            ));
        }
        let url = reqwest::Url::parse(value).map_err(|e| {
            self.invalid(
                "epuap.endpoint",
                format!("{value:?} is not \"embedded\" or a URL: {e}"),
            )
        })?;
        let loopback = matches!(
            url.host_str(),
            Some("127.0.0.1" | "localhost" | "[::1]" | "::1")
        );
        match url.scheme() {
            "https" => {}
            "http" if loopback => {}
            "http" => {
                return Err(self.invalid(
                    "epuap.endpoint",
                    format!("{value:?}: plain http:// is only allowed on loopback (an emulator); use https://"),
                ));
            }
            other => {
                return Err(self.invalid("epuap.endpoint", format!("unsupported scheme {other:?}")));
            }
        }
        Ok(Endpoint::Url(value.trim_end_matches('/').to_string()))
    }

    /// Resolves a configured path, expanding `credential:NAME`.
    pub fn resolve_path(&self, key: &str, value: &str) -> Result<PathBuf, ConfigError> {
        match value.strip_prefix("credential:") {
            Some(name) => {
                let dir = std::env::var("CREDENTIALS_DIRECTORY").map_err(|_| {
                    self.invalid(key, format!("{value:?} needs $CREDENTIALS_DIRECTORY (set by systemd's LoadCredential=)"))
                })?;
                Ok(Path::new(&dir).join(name))
            }
            None => Ok(PathBuf::from(value)),
        }
    }

    fn read_file(&self, key: &str, value: Option<&String>) -> Result<Vec<u8>, ConfigError> {
        let value = value
            .ok_or_else(|| self.invalid(key, "required when epuap.endpoint is not \"embedded\""))?;
        let path = self.resolve_path(key, value)?;
        std::fs::read(&path)
            .map_err(|e| self.invalid(key, format!("cannot read {}: {e}", path.display())))
    }

    /// The office's WS-Security key and certificate (the demo PKI for the embedded emulator).
    pub fn office_key(&self) -> Result<SigningKey, ConfigError> {
        if self.endpoint()? == Endpoint::Embedded {
            return Ok(crate::emulator::demo_pki::office_key());
        }
        let key = SigningKey {
            private_key_pem: self
                .read_file("epuap.wss_private_key", self.epuap.wss_private_key.as_ref())?,
            certificate_pem: self
                .read_file("epuap.wss_certificate", self.epuap.wss_certificate.as_ref())?,
        };
        key.validate().map_err(|e| {
            self.invalid(
                "epuap.wss_private_key / epuap.wss_certificate",
                e.to_string(),
            )
        })?;
        Ok(key)
    }

    /// ePUAP's response-signing certificate (PEM).
    pub fn server_certificate(&self) -> Result<Vec<u8>, ConfigError> {
        if self.endpoint()? == Endpoint::Embedded {
            return Ok(crate::emulator::demo_pki::EPUAP_CERT.to_vec());
        }
        let pem = self.read_file(
            "epuap.server_certificate",
            self.epuap.server_certificate.as_ref(),
        )?;
        crate::xmldsig::certificate_der(&pem)
            .map_err(|e| self.invalid("epuap.server_certificate", e.to_string()))?;
        Ok(pem)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_loads() {
        let config = Config::load(None).unwrap();
        assert_eq!(config.endpoint().unwrap(), Endpoint::Embedded);
        assert_eq!(config.epuap.poll_interval, Duration::from_secs(30));
        assert_eq!(config.epuap.skrot, SkrotAlgorithm::Sha1);
        assert_eq!(config.epuap.max_document_bytes, 50 * 1024 * 1024);
        assert!(!config.epuap.boxes.is_empty());
    }

    #[test]
    fn errors_name_the_file_and_key() {
        let base = "[database]\nurl = \"sqlite://x.db\"\n[[epuap.boxes]]\npodmiot=\"a\"\nnazwa=\"b\"\nadres=\"/a/b\"\n";
        let err = Config::daemon_from_toml(
            "t.toml",
            &format!("{base}[epuap]\nendpoint = \"ftp://x\"\n"),
        )
        .unwrap_err();
        // The table was declared twice: toml says so, with the file name.
        assert!(err.to_string().starts_with("t.toml: "), "{err}");

        let text = "[database]\nurl = \"mysql://x\"\n[epuap]\nendpoint = \"embedded\"\n[[epuap.boxes]]\npodmiot=\"a\"\nnazwa=\"b\"\nadres=\"/a/b\"\n";
        let err = Config::daemon_from_toml("t.toml", text)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("t.toml: database.url: "), "{err}");

        let text = "[database]\n[epuap]\nendpoint = \"http://ws.epuap.gov.pl\"\n[[epuap.boxes]]\npodmiot=\"a\"\nnazwa=\"b\"\nadres=\"/a/b\"\n";
        let err = Config::daemon_from_toml("t.toml", text)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("epuap.endpoint") && err.contains("loopback"),
            "{err}"
        );

        let text = "[database]\n[epuap]\nendpoint = \"https://ws-int.epuap.gov.pl\"\n[[epuap.boxes]]\npodmiot=\"a\"\nnazwa=\"b\"\nadres=\"/a/b\"\n";
        let err = Config::daemon_from_toml("t.toml", text)
            .unwrap_err()
            .to_string();
        assert!(err.contains("epuap.wss_private_key"), "{err}");

        let text = "[database]\npool = 3\n[epuap]\nendpoint = \"embedded\"\n";
        let err = Config::daemon_from_toml("t.toml", text)
            .unwrap_err()
            .to_string();
        assert!(err.contains("pool") && err.contains("t.toml"), "{err}");

        let text = "[database]\n[epuap]\nendpoint = \"embedded\"\npoll_interval = \"soon\"\n[[epuap.boxes]]\npodmiot=\"a\"\nnazwa=\"b\"\nadres=\"/a/b\"\n";
        let err = Config::daemon_from_toml("t.toml", text)
            .unwrap_err()
            .to_string();
        assert!(err.contains("poll_interval"), "{err}");
    }

    #[test]
    fn a_trusted_list_gives_qualified_anchors_only_from_its_signers() {
        let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");
        let base = "[database]\n[epuap]\nendpoint = \"embedded\"\n[[epuap.boxes]]\npodmiot=\"a\"\nnazwa=\"b\"\nadres=\"/a/b\"\n";
        let text = format!(
            "{base}[trust]\ntsl = \"{fixtures}/trust/PL_TSL-seq160-2026-06-03.xml\"\ntsl_signers = \"{fixtures}/trust/eu-lotl-seq390-2026-08-03.xml\"\n"
        );
        let config = Config::daemon_from_toml("t.toml", &text).unwrap();
        let trust = config.kind_trust().unwrap();
        assert!(!trust.qualified.anchors.is_empty());
        assert!(trust.personal.anchors.is_empty());
        // The shipped seal only: the demo seal is never part of the configured trust.
        assert_eq!(
            trust.trusted_profile.pinned,
            vec![TRUSTED_PROFILE_SEAL.to_vec()]
        );
        // The trust for what the embedded emulator delivers adds its demo seal (demo only).
        assert_eq!(
            config
                .inbound_trust_after(None)
                .unwrap()
                .trusted_profile
                .pinned,
            vec![
                TRUSTED_PROFILE_SEAL.to_vec(),
                crate::emulator::demo_pki::EPUAP_CERT.to_vec()
            ]
        );
        let text = text.replace("trust/eu-lotl-seq390-2026-08-03.xml", "pki/rogue.pem");
        let err = Config::daemon_from_toml("t.toml", &text)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("t.toml: trust.tsl: trusted list signature refused"),
            "{err}"
        );
        let text =
            format!("{base}[trust]\ntsl = \"{fixtures}/trust/PL_TSL-seq160-2026-06-03.xml\"\n");
        let err = Config::daemon_from_toml("t.toml", &text)
            .unwrap_err()
            .to_string();
        assert!(err.contains("trust.tsl_signers"), "{err}");
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact_url("postgres://eurzad:secret@127.0.0.1/eurzad"),
            "postgres://eurzad:***@127.0.0.1/eurzad"
        );
        assert_eq!(redact_url("sqlite://var/x.db"), "sqlite://var/x.db");
    }
}
