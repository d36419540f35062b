//! The `eurzad` command line.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};

use eurzad::config::{Config, Part};
use eurzad::document::SkrotAlgorithm;

/// mimalloc: a register sync frees on one thread what its reader allocated on another, a
/// pattern glibc's allocator serves slowly (about a fifth of an unchanged re-sync).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use eurzad::emulator::{Emulator, EmulatorSettings};
use eurzad::epuap::soap::BoxRef;
use eurzad::settings::{Settings, trust_summary};
use eurzad::xmldsig::SigningKey;

#[derive(Parser)]
#[command(
    name = "eurzad",
    version,
    about = "eUrząd back-end daemon: ePUAP inbox, signed forms, accounts, registers"
)]
struct Cli {
    /// Log format: text or json (overrides [log] format).
    #[arg(long, global = true)]
    log_format: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon (the embedded default: SQLite and the embedded ePUAP emulator).
    Run {
        /// Configuration file; the shipped config.toml is compiled in and used without it.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Drain every box, finish the jobs, print a summary and exit (0 when all went well).
        #[arg(long)]
        once: bool,
    },
    /// Check a configuration as the daemon's start would, without opening the database or
    /// reaching ePUAP: every key, the files it names (keys, certificates, trusted lists,
    /// CRLs, the portal token), the schedules and the addresses. Prints what it would run
    /// with. Exit 0 when it is sound, 2 with the error (file and key) when not. For use
    /// before `systemctl restart eurzad`.
    Check {
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Apply the database migrations and exit.
    Migrate {
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// How the database stands, for the office's IT admin and for monitoring: documents,
    /// unconfirmed ones, jobs waiting and failed, the failed jobs' errors. Reads only.
    /// Exit 0 when nothing needs attention, 1 when a job has failed or a letter is held for an
    /// official, 2 when the database cannot be read.
    Status {
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// How many failed jobs to list, the most recent first.
        #[arg(long, default_value_t = 10)]
        failed: u32,
    },
    /// Copy the SQLite database to a new file, consistent, while the daemon may be running
    /// (SQLite's VACUUM INTO). A PostgreSQL database is backed up with pg_dump.
    Backup {
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// The new file.
        #[arg(long)]
        to: PathBuf,
    },
    /// Run a local ePUAP emulator (pull + skrytka over SOAP with WS-Security, admin API).
    Emulator(EmulatorArgs),
    /// Verify signed XML files (XML-DSig, XAdES, WS-Security): exit 0 if all are TOTAL-PASSED.
    Verify(VerifyArgs),
    /// Sync back-office registers now: all (in dependency order) or one, from the configured
    /// source (drop folder or SQL query) or from --file.
    Sync {
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// parties, accounts, obligors, installments, ledger, cases, alcohol_permits,
        /// leases, budget, property (all when absent).
        register: Option<String>,
        /// Full snapshot: rows missing from the file are deleted (the configured mode otherwise).
        #[arg(long, conflicts_with = "incremental")]
        full: bool,
        /// Upserts only.
        #[arg(long)]
        incremental: bool,
        /// Apply this file (needs REGISTER); it stays where it is.
        #[arg(long, requires = "register")]
        file: Option<PathBuf>,
    },
    /// Late-payment interest on a tax account's installments on a day (art. 54–56, 63
    /// Ordynacja podatkowa), from the rate table in [registers.interest].
    Interest {
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// The account (its id in the back office).
        #[arg(long)]
        account: String,
        /// The day (YYYY-MM-DD; today in notify.timezone by default).
        #[arg(long)]
        at: Option<chrono::NaiveDate>,
    },
    /// Write a generated sample set of register exports for a town (docs/import-formats.md).
    SampleRegisters {
        /// The folder to write the CSV files to.
        #[arg(long)]
        out: PathBuf,
        /// Inhabitants of the town.
        #[arg(long, default_value_t = 65_000)]
        inhabitants: u32,
        /// Ledger rows to aim for (0: as many as the town has), for benches.
        #[arg(long, default_value_t = 0)]
        ledger_rows: u64,
    },
    /// The officials' queue of access requests: list, show, approve, reject.
    Requests {
        #[arg(long, short, global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        action: RequestsAction,
    },
    /// The officials of the desk (`[desk]`): who may sign in and decide requests in a browser.
    Officials {
        #[arg(long, short, global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        action: OfficialsAction,
    },
}

#[derive(Subcommand)]
enum OfficialsAction {
    /// Add an official. The password is read from --password-file, else from the first line
    /// of standard input; it is kept only as an argon2id hash.
    Add {
        login: String,
        /// Their full name, as pages and the audit log show it.
        #[arg(long)]
        name: String,
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
    /// Disable an official: they can no longer sign in, and their sessions end.
    Disable { login: String },
    /// List the officials.
    List,
}

#[derive(Subcommand)]
enum RequestsAction {
    /// List requests (all, or those with --status).
    List {
        /// received, awaiting_official, approved, rejected, replied, delivered
        #[arg(long)]
        status: Option<String>,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Show one request with the representations it asks for and their proof.
    Show {
        id: i64,
        #[arg(long)]
        json: bool,
    },
    /// Approve a request awaiting an official: the account and its representations are made
    /// and the reply is sent.
    Approve {
        id: i64,
        /// A note for the audit log.
        #[arg(long, default_value = "")]
        note: String,
        /// Who decides (default: $SUDO_USER, else $USER).
        #[arg(long = "as")]
        official: Option<String>,
        /// The first day of an authorization seen outside the request (on paper): required
        /// for a representation without an attached authorization, and bounds every grant.
        #[arg(long)]
        valid_from: Option<chrono::NaiveDate>,
        /// Its last day (none: without end).
        #[arg(long, requires = "valid_from")]
        valid_to: Option<chrono::NaiveDate>,
        /// Grant only these of the representations asked for, numbered from 1 as `requests
        /// show` lists them (e.g. `--only 1,3`); the others are not granted.
        #[arg(long, value_delimiter = ',')]
        only: Option<Vec<usize>>,
    },
    /// Send again a reply letter held after its sending was interrupted (ePUAP could not be
    /// asked whether it arrived): the applicant may get it twice.
    Resend {
        id: i64,
        /// Who decides (default: $SUDO_USER, else $USER).
        #[arg(long = "as")]
        official: Option<String>,
    },
    /// Record a held reply letter as sent, with the identifier ePUAP gave it (as the office's
    /// box shows it among the sent documents).
    MarkSent {
        id: i64,
        #[arg(long)]
        document_id: String,
        /// Who decides (default: $SUDO_USER, else $USER).
        #[arg(long = "as")]
        official: Option<String>,
    },
    /// Reject a request awaiting an official: the reason is sent to the applicant.
    Reject {
        id: i64,
        #[arg(long)]
        reason: String,
        /// Who decides (default: $SUDO_USER, else $USER).
        #[arg(long = "as")]
        official: Option<String>,
    },
}

#[derive(clap::Args)]
struct VerifyArgs {
    /// A trust anchor (PEM or DER certificate) a chain may end at (repeatable).
    #[arg(long)]
    ca: Vec<PathBuf>,
    /// An untrusted intermediate certificate to build chains with (repeatable).
    #[arg(long)]
    intermediate: Vec<PathBuf>,
    /// The only certificate allowed to have signed (repeatable: any of them).
    #[arg(long)]
    pinned: Vec<PathBuf>,
    /// A CRL (PEM or DER), signed by one of --ca/--intermediate (repeatable).
    #[arg(long)]
    crl: Vec<PathBuf>,
    /// A national trusted list (ETSI TS 119 612) whose granted qualified CAs become anchors.
    #[arg(long, requires = "tsl_signers")]
    tsl: Option<PathBuf>,
    /// Who may sign --tsl: the EU LOTL (XML) or a PEM file of signer certificates.
    #[arg(long)]
    tsl_signers: Option<PathBuf>,
    /// Judge certificate validity at this instant (RFC 3339) instead of now.
    #[arg(long)]
    at: Option<String>,
    /// Accept SHA-1 (legacy documents only).
    #[arg(long)]
    allow_sha1: bool,
    /// Judge chains and revocation at the signature's XAdES SigningTime (signer-claimed).
    #[arg(long)]
    at_signing_time: bool,
    /// One JSON object per line instead of the human report.
    #[arg(long)]
    json: bool,
    /// With trust flags: do not consult the revocation sources (CRL distribution points,
    /// OCSP) the certificates name; revocation is judged by the --crl files alone.
    #[arg(long)]
    offline: bool,
    /// Configuration whose [trust] is used when no trust flag (--ca, --pinned, --tsl, --crl)
    /// is given; the shipped config.toml without it.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// The files to verify.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

#[derive(clap::Args)]
struct EmulatorArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8088")]
    listen: SocketAddr,
    /// Directory for the emulator's state (box queues, outbox, counters).
    #[arg(long, default_value = "var/emulator")]
    state_dir: PathBuf,
    /// PEM key the emulator signs answers with (default: the demo PKI's "epuap" key).
    #[arg(long, requires = "signing_certificate")]
    signing_key: Option<PathBuf>,
    /// PEM certificate of --signing-key.
    #[arg(long, requires = "signing_key")]
    signing_certificate: Option<PathBuf>,
    /// PEM certificate of a client allowed to call (repeatable; default: the demo "office").
    #[arg(long)]
    client_certificate: Vec<PathBuf>,
    /// A box that exists from the start, as podmiot:nazwa:adres (repeatable).
    #[arg(long = "box", value_parser = parse_box)]
    boxes: Vec<BoxRef>,
    /// The skrot digest potwierdzOdebranie must carry: sha1 or sha256.
    #[arg(long, default_value = "sha1")]
    skrot: SkrotAlgorithm,
    /// Inject random faults (HTTP 500, SOAP fault, dropped connection, slow answer) into this
    /// share of requests, e.g. 0.1.
    #[arg(long)]
    fault_rate: Option<f64>,
    /// Seed of the fault injection's random source.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Delay of a slow answer.
    #[arg(long, default_value = "40s", value_parser = humantime::parse_duration)]
    slow_delay: Duration,
    /// Put the demo documents into the first box when the state directory is new.
    #[arg(long)]
    seed_demo: bool,
    /// Refuse requests without a signed wsu:Timestamp (ePUAP accepts a signature over the
    /// Body alone; a Timestamp that is present is checked either way).
    #[arg(long)]
    strict: bool,
    /// Serve e-Doręczenia's UA API (`/api/v3`, its token endpoint and the BAE search) on the
    /// same port, its state under the state directory.
    #[arg(long)]
    edoreczenia: bool,
    /// A system that may authenticate, as `<ADE>.SYSTEM.<name>=<certificate PEM>`
    /// (repeatable; default: the demo office system `AE:PL-00000-00000-EURZD-00.SYSTEM.eurzad`
    /// with the demo "office" certificate).
    #[arg(long = "edoreczenia-system", requires = "edoreczenia")]
    edoreczenia_systems: Vec<String>,
    /// A JSON file of addresses (`[{"ade": …, "pesel": …, "opens_after_days": 2}]`): the BAE
    /// and the simulated recipients.
    #[arg(long, requires = "edoreczenia")]
    edoreczenia_addresses: Option<PathBuf>,
    /// Random faults (HTTP 500, 429, dropped connection, slow answer) on this share of UA API
    /// requests.
    #[arg(long, requires = "edoreczenia")]
    edoreczenia_fault_rate: Option<f64>,
    /// Take messages as if sent this long ago (e.g. "25days"): their D.1 is that old, so
    /// deemed delivery, and recipients who open after some days, are seen at once.
    #[arg(long, requires = "edoreczenia", value_parser = humantime::parse_duration)]
    edoreczenia_backdate: Option<Duration>,
    /// How long a send task stays PENDING.
    #[arg(long, default_value = "100ms", value_parser = humantime::parse_duration)]
    edoreczenia_task_delay: Duration,
}

fn parse_box(text: &str) -> Result<BoxRef, String> {
    let parts: Vec<&str> = text.splitn(3, ':').collect();
    match parts.as_slice() {
        [podmiot, nazwa, adres]
            if !podmiot.is_empty() && !nazwa.is_empty() && adres.starts_with('/') =>
        {
            Ok(BoxRef {
                podmiot: podmiot.to_string(),
                nazwa: nazwa.to_string(),
                adres: adres.to_string(),
            })
        }
        _ => Err(format!(
            "{text:?}: expected podmiot:nazwa:/adres, e.g. urzad_testowy:skrytka:/urzad_testowy/skrytka"
        )),
    }
}

fn init_logging(format: &str, level: &str) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    // Colours only for a person at a terminal: the journal and log files get plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = eurzad::daemon::runtime().expect("tokio runtime");
    match runtime.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("eurzad: error: {}", describe(&error));
            ExitCode::from(2)
        }
    }
}

/// The error and its causes, leaving out a cause its parent's message already quotes (our
/// error types put the reason into their message).
fn describe(error: &anyhow::Error) -> String {
    let mut text = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

/// Opens the configured database for an admin command, without migrating it, and without
/// creating a SQLite file where there is none.
async fn open_existing(database_url: &str) -> anyhow::Result<eurzad::store::Store> {
    if let Ok(options) =
        <sqlx::sqlite::SqliteConnectOptions as std::str::FromStr>::from_str(database_url)
        && !database_url.starts_with("postgres")
        && !options.get_filename().exists()
    {
        anyhow::bail!(
            "no database at {} (eurzad has not run with this configuration yet)",
            options.get_filename().display()
        );
    }
    eurzad::store::Store::connect(database_url, 1)
        .await
        .with_context(|| {
            format!(
                "opening database {}",
                eurzad::config::redact_url(database_url)
            )
        })
}

/// `eurzad status`: reads the database without migrating it or writing to it.
async fn status(config: &Config, failed: u32) -> anyhow::Result<ExitCode> {
    let url = eurzad::config::redact_url(&config.database.url);
    let store = open_existing(&config.database.url).await?;
    let read = async {
        let counts = store.counts().await?;
        let last = store.last_received().await?;
        let jobs = store.failed_jobs(i64::from(failed)).await?;
        let held = store.provisioning_counts().await?.letters_held;
        let letters = store.letter_tally().await?;
        Ok::<_, eurzad::store::StoreError>((counts, last, jobs, held, letters))
    };
    let (counts, last, jobs, held, letters) = read
        .await
        .with_context(|| format!("reading database {url} (has eurzad run and migrated it?)"))?;
    store.close().await;
    let at = |t: &chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d %H:%M:%S UTC").to_string();
    println!("eurzad: database {url}");
    println!(
        "  {} documents{}, {} unconfirmed",
        counts.documents,
        last.map(|t| format!(" (the last stored {})", at(&t)))
            .unwrap_or_default(),
        counts.unconfirmed
    );
    println!(
        "  jobs: {} waiting, {} running, {} done, {} failed",
        counts.jobs_pending, counts.jobs_running, counts.jobs_done, counts.jobs_failed
    );
    if !jobs.is_empty() {
        println!("  failed jobs, the most recent first:");
        for job in &jobs {
            println!(
                "    #{} {} {} after {} attempts, {}: {}",
                job.id,
                job.kind,
                job.key,
                job.attempts,
                at(&job.failed_at),
                job.error.as_deref().unwrap_or("(no error recorded)")
            );
        }
    }
    if !letters.is_empty() {
        println!("  letters, by channel:");
        let mut channels: Vec<&str> = letters.iter().map(|(c, ..)| c.as_str()).collect();
        channels.dedup();
        for channel in channels {
            let parts: Vec<String> = letters
                .iter()
                .filter(|(c, ..)| c == channel)
                .map(|(_, status, legal, n)| match legal {
                    Some(legal) => format!("{n} {status} (in law {legal})"),
                    None => format!("{n} {status}"),
                })
                .collect();
            println!("    {channel}: {}", parts.join(", "));
        }
    }
    if held > 0 {
        println!(
            "  letters held for an official: {held} (their sending was interrupted; see `eurzad requests list`, then `requests resend` or `requests mark-sent`)"
        );
    }
    Ok(if counts.jobs_failed > 0 || held > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Loads the configuration and checks the parts the command uses: a configuration for
/// `eurzad sync` alone need not name an ePUAP box.
fn load_config(
    path: Option<&std::path::Path>,
    log_format: &Option<String>,
    parts: &[Part],
) -> anyhow::Result<Config> {
    // Logging first, from the file's [log] table alone: loading the rest may warn (a
    // trusted list past its NextUpdate, the embedded emulator's demo key).
    let log = eurzad::config::LogConfig::peek(path);
    init_logging(log_format.as_deref().unwrap_or(&log.format), &log.level);
    Ok(Config::load_for(path, parts)?)
}

async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run { config, once } => {
            // Everything is resolved (and so checked) before the daemon opens anything.
            let config = load_config(config.as_deref(), &cli.log_format, &[])?;
            let report = eurzad::daemon::run(Settings::resolve(config)?, once).await?;
            if once {
                print!("{}", report.render());
                return Ok(if report.all_went_well() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                });
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate { config } => {
            let config = load_config(config.as_deref(), &cli.log_format, &[Part::Database])?;
            let store = eurzad::daemon::open_store(&config).await?;
            println!("eurzad: migrations applied ({})", store.backend());
            store.close().await;
            Ok(ExitCode::SUCCESS)
        }
        Command::Backup { config, to } => {
            let config = load_config(config.as_deref(), &cli.log_format, &[Part::Database])?;
            let url = eurzad::config::redact_url(&config.database.url);
            let store = open_existing(&config.database.url).await?;
            let done = store.backup(&to).await;
            store.close().await;
            done.with_context(|| format!("backing up {url}"))?;
            let size = std::fs::metadata(&to).map(|m| m.len()).unwrap_or(0);
            println!("eurzad: {url} copied to {} ({size} bytes)", to.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { config } => {
            // What the daemon would run with, resolved as its start resolves it.
            let config = load_config(config.as_deref(), &cli.log_format, &[])?;
            print!("{}", Settings::resolve(config)?.summary());
            Ok(ExitCode::SUCCESS)
        }
        Command::Status { config, failed } => {
            let config = load_config(config.as_deref(), &cli.log_format, &[Part::Database])?;
            status(&config, failed).await
        }
        Command::Verify(args) => verify_files(args, &cli.log_format),
        Command::Sync {
            config,
            register,
            full,
            incremental,
            file,
        } => {
            let config = load_config(
                config.as_deref(),
                &cli.log_format,
                &[Part::Database, Part::Registers, Part::Notify],
            )?;
            sync_registers(
                &config,
                register.as_deref(),
                full,
                incremental,
                file.as_deref(),
            )
            .await
        }
        Command::Interest {
            config,
            account,
            at,
        } => {
            let config = load_config(
                config.as_deref(),
                &cli.log_format,
                &[Part::Database, Part::Registers],
            )?;
            interest(&config, &account, at).await
        }
        Command::SampleRegisters {
            out,
            inhabitants,
            ledger_rows,
        } => {
            let written = eurzad::registers::sample::generate(&out, inhabitants, ledger_rows)?;
            for (file, rows) in written {
                println!("{}: {rows} rows", file.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Requests { config, action } => {
            let config = load_config(config.as_deref(), &cli.log_format, &[Part::Database])?;
            requests(&config, action).await
        }
        Command::Officials { config, action } => {
            let config = load_config(config.as_deref(), &cli.log_format, &[Part::Database])?;
            officials(&config, action).await
        }
        Command::Emulator(args) => {
            init_logging(cli.log_format.as_deref().unwrap_or("text"), "info");
            run_emulator(args).await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn run_emulator(args: EmulatorArgs) -> anyhow::Result<()> {
    let read =
        |path: &PathBuf| std::fs::read(path).with_context(|| format!("reading {}", path.display()));
    let mut settings = EmulatorSettings::demo(args.state_dir.clone(), args.boxes.clone());
    if let (Some(key), Some(certificate)) = (&args.signing_key, &args.signing_certificate) {
        settings.signing_key = SigningKey {
            private_key_pem: read(key)?,
            certificate_pem: read(certificate)?,
        };
    }
    if !args.client_certificate.is_empty() {
        settings.client_certificates = args
            .client_certificate
            .iter()
            .map(read)
            .collect::<anyhow::Result<_>>()?;
    }
    settings.skrot = args.skrot;
    settings.seed = args.seed;
    settings.fault_rate = args.fault_rate;
    settings.slow_delay = args.slow_delay;
    settings.strict = args.strict;
    let (emulator, fresh) = Emulator::open(settings)?;
    if fresh && args.seed_demo {
        let first = args.boxes.first().context("--seed-demo needs a --box")?;
        emulator.seed_demo(first)?;
    }
    let shutdown = async {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let local = listener.local_addr()?;
    let mut router = emulator.router();
    if args.edoreczenia {
        router = router.merge(ua_emulator(&args, &format!("http://{local}"))?.router());
    }
    tracing::info!(listen = %local, state = %args.state_dir.display(), edoreczenia = args.edoreczenia, "emulator listening");
    // A line on stdout that scripts and tests wait for.
    println!("eurzad emulator listening on http://{local}");
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}

/// The e-Doręczenia emulator of `eurzad emulator --edoreczenia`, served at `origin`.
fn ua_emulator(
    args: &EmulatorArgs,
    origin: &str,
) -> anyhow::Result<eurzad::emulator::edoreczenia::UaEmulator> {
    use eurzad::emulator::edoreczenia::{
        AddressEntry, REALM_PATH, TokenSettings, UaEmulator, UaSettings,
    };
    let mut systems = std::collections::HashMap::new();
    for system in &args.edoreczenia_systems {
        let (id, path) = system.split_once('=').with_context(|| {
            format!("--edoreczenia-system {system:?}: <ADE>.SYSTEM.<name>=<PEM>")
        })?;
        let pem = std::fs::read(path).with_context(|| format!("reading {path}"))?;
        systems.insert(id.to_string(), pem);
    }
    if systems.is_empty() {
        systems.insert(
            format!("{}.SYSTEM.eurzad", eurzad::config::DEMO_ADE),
            eurzad::emulator::demo_pki::OFFICE_CERT.to_vec(),
        );
    }
    let addresses: Vec<AddressEntry> = match &args.edoreczenia_addresses {
        None => Vec::new(),
        Some(path) => serde_json::from_slice(
            &std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
        )
        .with_context(|| format!("{}: a JSON list of addresses", path.display()))?,
    };
    let backdate = chrono::TimeDelta::from_std(args.edoreczenia_backdate.unwrap_or_default())
        .context("--edoreczenia-backdate")?;
    UaEmulator::open(UaSettings {
        state_dir: args.state_dir.clone(),
        token: TokenSettings {
            realm: format!("{origin}{REALM_PATH}"),
            systems,
            token_lifetime: Duration::from_secs(3600),
            leeway: Duration::from_secs(30),
        },
        operator_key: eurzad::emulator::demo_pki::epuap_key(),
        addresses,
        clock_offset: chrono::TimeDelta::zero(),
        backdate,
        task_delay: args.edoreczenia_task_delay,
        box_delay: Duration::from_secs(1),
        paper_delivery: Duration::from_secs(3 * 86_400),
        seed: args.seed,
        fault_rate: args.edoreczenia_fault_rate,
        slow_delay: args.slow_delay,
    })
    .map_err(|e| anyhow::anyhow!("the e-Doręczenia emulator: {e}"))
}

async fn sync_registers(
    config: &Config,
    register: Option<&str>,
    full: bool,
    incremental: bool,
    file: Option<&std::path::Path>,
) -> anyhow::Result<ExitCode> {
    use eurzad::store::registers::{SyncMode, SyncOutcome};
    let registers = match register {
        Some(name) => vec![eurzad::registers::register(name).ok_or_else(|| {
            anyhow::anyhow!(
                "unknown register {name:?}: one of {}",
                eurzad::registers::REGISTERS
                    .iter()
                    .map(|r| r.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?],
        None => Vec::new(),
    };
    let mode = match (full, incremental) {
        (true, _) => SyncMode::Full,
        (_, true) => SyncMode::Incremental,
        _ => config.registers.mode,
    };
    let store = eurzad::daemon::open_store(config).await?;
    let context = eurzad::sync::SyncContext {
        config,
        mode,
        encoding: config.registers.encoding,
        officials: &config.notify.officials,
    };
    let results = eurzad::sync::sync(&store, &context, &registers, file).await?;
    store.close().await;
    let mut failed = false;
    for r in &results {
        match &r.outcome {
            Ok(SyncOutcome::Applied { run_id, counts }) => println!(
                "{}: {}: run {run_id}: {} rows: {} inserted, {} updated, {} deleted, {} unchanged",
                r.register,
                r.file.display(),
                counts.rows,
                counts.inserted,
                counts.updated,
                counts.deleted,
                counts.unchanged
            ),
            Ok(SyncOutcome::AlreadyApplied { run_id }) => println!(
                "{}: {}: run {run_id}: already applied (the same file, by checksum): nothing changed",
                r.register,
                r.file.display()
            ),
            Err(reason) => {
                failed = true;
                println!("{}: refused, nothing applied: {reason}", r.register);
            }
        }
    }
    if results.is_empty() {
        println!("nothing to sync in {}", config.registers.drop_dir);
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

async fn interest(
    config: &Config,
    account: &str,
    at: Option<chrono::NaiveDate>,
) -> anyhow::Result<ExitCode> {
    use eurzad::registers::interest::{InterestRules, standing};
    let settings = &config.registers.interest;
    if settings.rates.is_empty() {
        anyhow::bail!(
            "{}: registers.interest.rates: no rate table configured",
            config.source
        );
    }
    let fee = match &settings.registered_letter_fee {
        Some(fee) => eurzad::registers::money(fee, false).map_err(|e| {
            anyhow::anyhow!(
                "{}: registers.interest.registered_letter_fee: {e}",
                config.source
            )
        })?,
        None => anyhow::bail!(
            "{}: registers.interest.registered_letter_fee is required",
            config.source
        ),
    };
    let mut rates = settings.rates.clone();
    rates.sort_by_key(|r| r.from);
    let rules = InterestRules {
        rates,
        threshold_gr: 3 * fee,
    };
    let zone: chrono_tz::Tz = config
        .notify
        .timezone
        .parse()
        .unwrap_or(chrono_tz::Europe::Warsaw);
    let at = at.unwrap_or_else(|| chrono::Utc::now().with_timezone(&zone).date_naive());
    let store = eurzad::daemon::open_store(config).await?;
    let found = store.installments_with_payments(account).await?;
    store.close().await;
    let Some((kind, installments)) = found else {
        eprintln!("eurzad: error: no account {account:?} in the registers");
        return Ok(ExitCode::from(1));
    };
    if !["property", "agricultural", "forest", "transport", "joint"].contains(&kind.as_str()) {
        eprintln!(
            "eurzad: error: account {account} is {kind}: tax-law interest applies to tax accounts only"
        );
        return Ok(ExitCode::from(1));
    }
    let zl = |g: i64| format!("{},{:02} zł", g / 100, (g % 100).abs());
    println!("account {account} ({kind}) on {at}:");
    let (mut arrears, mut interest) = (0, 0);
    for i in &installments {
        let s = standing(i.amount_gr, i.due_date, &i.payments, at, &rules);
        arrears += s.arrears_gr;
        interest += s.interest_gr;
        println!(
            "  installment {} due {}: {} ; arrears {}, interest {} (paid {} + {} of interest)",
            i.number,
            i.due_date,
            zl(i.amount_gr),
            zl(s.arrears_gr),
            zl(s.interest_gr),
            zl(s.paid_principal_gr),
            zl(s.paid_interest_gr)
        );
    }
    println!(
        "  total: arrears {}, interest {}",
        zl(arrears),
        zl(interest)
    );
    Ok(ExitCode::SUCCESS)
}

/// `eurzad officials …`.
async fn officials(config: &Config, action: OfficialsAction) -> anyhow::Result<ExitCode> {
    let store = eurzad::daemon::open_store(config).await?;
    let now = chrono::Utc::now();
    let outcome: anyhow::Result<()> = async {
        match action {
            OfficialsAction::Add {
                login,
                name,
                email,
                password_file,
            } => {
                if login.trim().is_empty()
                    || !login
                        .chars()
                        .all(|c| c.is_alphanumeric() || "._-@".contains(c))
                {
                    anyhow::bail!("login {login:?}: letters, digits and . _ - @ only, not empty");
                }
                if name.trim().is_empty() {
                    anyhow::bail!("--name: the official's full name is required");
                }
                let password = match &password_file {
                    Some(path) => std::fs::read_to_string(path)
                        .with_context(|| format!("--password-file {}", path.display()))?,
                    None => {
                        let mut line = String::new();
                        std::io::stdin()
                            .read_line(&mut line)
                            .context("reading the password from standard input")?;
                        line
                    }
                };
                let password = password.trim_end_matches(['\r', '\n']);
                if password.chars().count() < 12 {
                    anyhow::bail!(
                        "the password has {} characters: at least 12 are required",
                        password.chars().count()
                    );
                }
                let hash = eurzad::desk::hash_password(password).map_err(anyhow::Error::msg)?;
                let official = store
                    .add_official(
                        login.trim(),
                        name.trim(),
                        email.as_deref(),
                        Some(&hash),
                        now,
                    )
                    .await?;
                println!("official {} ({}) added", official.login, official.name);
            }
            OfficialsAction::Disable { login } => {
                store.disable_official(&login, now).await?;
                println!("official {login} disabled; their sessions ended");
            }
            OfficialsAction::List => {
                for o in store.officials().await? {
                    println!(
                        "{:<20} {:<32} {:<32} {}",
                        o.login,
                        o.name,
                        o.email.as_deref().unwrap_or("-"),
                        o.disabled_at
                            .map(|t| format!("disabled {}", t.format("%Y-%m-%d %H:%M UTC")))
                            .unwrap_or_else(|| "active".into())
                    );
                }
            }
        }
        Ok(())
    }
    .await;
    store.close().await;
    match outcome {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(error) => {
            eprintln!("eurzad: error: {error:#}");
            Ok(ExitCode::from(1))
        }
    }
}

async fn requests(config: &Config, action: RequestsAction) -> anyhow::Result<ExitCode> {
    use eurzad::requests;
    let store = eurzad::daemon::open_store(config).await?;
    let who = |official: Option<String>| {
        official
            .or_else(|| std::env::var("SUDO_USER").ok())
            .or_else(|| std::env::var("USER").ok())
            .unwrap_or_default()
    };
    let zone: chrono_tz::Tz = config
        .notify
        .timezone
        .parse()
        .unwrap_or(chrono_tz::Europe::Warsaw);
    let local = |t: chrono::DateTime<chrono::Utc>| {
        t.with_timezone(&zone).format("%Y-%m-%d %H:%M").to_string()
    };
    let outcome = match action {
        RequestsAction::List { status, json } => {
            let rows = requests::list(&store, status.as_deref()).await?;
            for row in &rows {
                if json {
                    println!("{}", serde_json::to_string(row)?);
                } else {
                    println!(
                        "{:>5}  {:<18} {:<28} PESEL {:<11}  deadline {}  letter {:<15}  {}",
                        row.id,
                        row.status,
                        row.applicant_name,
                        row.applicant_pesel,
                        local(row.deadline_at),
                        row.letter_status.as_deref().unwrap_or("-"),
                        row.reason
                    );
                }
            }
            if !json && rows.is_empty() {
                println!("no requests");
            }
            Ok(())
        }
        RequestsAction::Show { id, json } => {
            let (row, requested) = requests::show(&store, id).await?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({"request": row, "representations": requested})
                );
            } else {
                println!(
                    "request {} ({}), document {}",
                    row.id, row.status, row.document_id
                );
                println!(
                    "  applicant: {} (PESEL {}), e-mail {}",
                    row.applicant_name,
                    row.applicant_pesel,
                    row.applicant_email.as_deref().unwrap_or("-")
                );
                println!(
                    "  wpłynął {} (received by the office on ePUAP), stored by eurzad {}, deadline {}",
                    local(row.received_at),
                    row.stored_at.map(local).unwrap_or_else(|| "-".into()),
                    local(row.deadline_at)
                );
                if !row.reason.is_empty() {
                    println!("  reason: {}", row.reason);
                }
                if let Some(by) = &row.decided_by {
                    println!(
                        "  decided by {by} at {}{}",
                        row.decided_at.map(local).unwrap_or_default(),
                        row.decision_note
                            .as_deref()
                            .filter(|n| !n.is_empty())
                            .map(|n| format!(": {n}"))
                            .unwrap_or_default()
                    );
                }
                if let Some(letter) = store.letter_standing(&format!("reply:{}", row.id)).await? {
                    println!(
                        "  reply letter {} by {}: {}{}{}",
                        letter.letter_id,
                        letter.channel,
                        letter.status,
                        letter
                            .message_id
                            .as_deref()
                            .map(|m| format!(", message {m}"))
                            .unwrap_or_default(),
                        letter
                            .legal_state
                            .map(|s| format!(
                                "; in law: {} ({}){}{}",
                                s,
                                s.polish(),
                                letter
                                    .legal_state_at
                                    .map(|t| format!(" since {}", local(t)))
                                    .unwrap_or_default(),
                                letter
                                    .deemed_on
                                    .map(|d| format!(", deemed delivered on {d}"))
                                    .unwrap_or_default()
                            ))
                            .unwrap_or_default(),
                    );
                    if let Some(why) = &letter.channel_reason {
                        println!("    channel chosen: {why}");
                    }
                    for e in &letter.evidences {
                        println!(
                            "    evidence {} {} at {}, seal {}{}, SHA-256 {}",
                            e.code,
                            e.evidence_id,
                            local(e.event_at),
                            e.seal,
                            e.seal_reason
                                .as_deref()
                                .map(|r| format!(" ({r})"))
                                .unwrap_or_default(),
                            e.sha256
                        );
                    }
                }
                for (n, r) in requested.iter().enumerate() {
                    println!(
                        "  {}. represents {} ({} {}), {} on basis {}: {} ({})",
                        n + 1,
                        r.principal_name,
                        r.principal_id_type,
                        r.principal_id,
                        r.scope,
                        r.basis,
                        if r.proven { "proven" } else { "NOT proven" },
                        r.proof
                    );
                }
            }
            Ok(())
        }
        RequestsAction::Approve {
            id,
            note,
            official,
            valid_from,
            valid_to,
            only,
        } => {
            let registry = config.forms.registry();
            let term = valid_from.map(|from| eurzad::provisioning::Term { from, to: valid_to });
            requests::decide(
                &store,
                &registry,
                id,
                requests::Decision {
                    approve: true,
                    official: &who(official),
                    reason: &note,
                    term,
                    only: only.as_deref(),
                },
            )
            .await
            .map(|()| {
                println!(
                    "request {id} approved; the reply goes out with the daemon's next job run"
                );
            })
        }
        RequestsAction::Resend { id, official } => requests::resolve_held(
            &store,
            id,
            eurzad::store::HeldLetter::Resend,
            &who(official),
        )
        .await
        .map(|()| {
            println!("request {id}: the reply is sent again with the daemon's next job run");
        }),
        RequestsAction::MarkSent {
            id,
            document_id,
            official,
        } => requests::resolve_held(
            &store,
            id,
            eurzad::store::HeldLetter::Sent {
                document_identifier: document_id.clone(),
            },
            &who(official),
        )
        .await
        .map(|()| {
            println!("request {id}: the reply is recorded as sent ({document_id})");
        }),
        RequestsAction::Reject {
            id,
            reason,
            official,
        } => {
            let registry = config.forms.registry();
            requests::decide(
                &store,
                &registry,
                id,
                requests::Decision {
                    approve: false,
                    official: &who(official),
                    reason: &reason,
                    term: None,
                    only: None,
                },
            )
            .await
            .map(|()| {
                println!(
                    "request {id} rejected; the reply goes out with the daemon's next job run"
                );
            })
        }
    };
    store.close().await;
    match outcome {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(error) => {
            eprintln!("eurzad: error: {error}");
            Ok(ExitCode::from(1))
        }
    }
}

/// The trust `eurzad verify` judges by when no trust flag is given, and what to call it: the
/// configuration named by `--config`, else the system's (`$EURZAD_CONFIG`, else
/// `/etc/eurzad/config.toml` when present), else the shipped production trust. The embedded
/// emulator's demo seal is trusted only when the configuration used runs that emulator, and
/// the description says so.
fn configured_trust(
    config: Option<&std::path::Path>,
    log_format: &Option<String>,
) -> anyhow::Result<(eurzad::signature::KindTrust, String)> {
    let system = || {
        std::env::var_os("EURZAD_CONFIG")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| {
                let path = PathBuf::from(SYSTEM_CONFIG);
                path.exists().then_some(path)
            })
    };
    let path = config.map(PathBuf::from).or_else(system);
    // Loaded unchecked: the trust below is the check (the compiled-in configuration's
    // inbound trust, demo seal and its warning included, is never wanted here).
    let config = load_config(path.as_deref(), log_format, &[])?;
    let Some(path) = path else {
        let trust = config.kind_trust()?;
        let summary = trust_summary(&trust);
        return Ok((
            trust,
            format!(
                "the shipped production trust ({summary}; no configuration given, none at {SYSTEM_CONFIG})"
            ),
        ));
    };
    let trust = config.inbound_trust_after(None)?;
    let summary = trust_summary(&trust);
    let demo = if config.trusts_demo_seal() {
        "; DEMO: it runs the embedded emulator, whose demo seal (a public key pair) is trusted as a trusted-profile signer"
    } else {
        ""
    };
    Ok((
        trust,
        format!("the configuration {} ({summary}{demo})", path.display()),
    ))
}

/// Where eurzad's configuration lives on an installed system (systemd/eurzad.service).
const SYSTEM_CONFIG: &str = "/etc/eurzad/config.toml";

/// How many anchors and seals of each kind a trust holds, and from which trusted list.
fn verify_files(args: VerifyArgs, log_format: &Option<String>) -> anyhow::Result<ExitCode> {
    use eurzad::signature::{self, TrustPolicy};
    let read_all = |paths: &[PathBuf]| -> anyhow::Result<Vec<Vec<u8>>> {
        paths
            .iter()
            .map(|p| std::fs::read(p).with_context(|| format!("reading {}", p.display())))
            .collect()
    };
    let mut trust = TrustPolicy {
        anchors: read_all(&args.ca)?,
        intermediates: read_all(&args.intermediate)?,
        pinned: read_all(&args.pinned)?,
        allow_sha1: args.allow_sha1,
        revocation: Default::default(),
        at_signing_time: args.at_signing_time,
    };
    let at = match &args.at {
        Some(text) => chrono::DateTime::parse_from_rfc3339(text)
            .with_context(|| format!("--at {text:?} is not an RFC 3339 instant"))?
            .with_timezone(&chrono::Utc),
        None => chrono::Utc::now(),
    };
    if let (Some(tsl), Some(signers)) = (&args.tsl, &args.tsl_signers) {
        let signers =
            std::fs::read(signers).with_context(|| format!("reading {}", signers.display()))?;
        let signers = signature::tsl::signers_from_file(&signers, "PL")?;
        let list = std::fs::read(tsl).with_context(|| format!("reading {}", tsl.display()))?;
        let list = signature::tsl::load(&list, &signers, None)?;
        trust.anchors.extend(list.qualified_ca_anchors(at));
    }
    // No trust flag at all: a configuration's trust, judged by kind (qualified, trusted
    // profile, personal), as the daemon judges inbound documents.
    let configured = if args.ca.is_empty()
        && args.pinned.is_empty()
        && args.tsl.is_none()
        && args.crl.is_empty()
    {
        let (trust, source) = configured_trust(args.config.as_deref(), log_format)?;
        if !args.json {
            println!("trust: {source}");
        }
        Some((trust, source))
    } else {
        init_logging(log_format.as_deref().unwrap_or("text"), "info");
        if !args.json {
            println!("trust: the certificates given on the command line");
        }
        None
    };
    let issuers = [trust.anchors.as_slice(), trust.intermediates.as_slice()].concat();
    for (path, bytes) in args.crl.iter().zip(read_all(&args.crl)?) {
        let crl = signature::certificate::Crl::load(&bytes, &issuers)
            .map_err(|e| anyhow::anyhow!("--crl {}: {e}", path.display()))?;
        trust.revocation.offline.push(crl);
    }
    if !args.offline {
        let fetch = eurzad::pki_http::HttpFetch::new(Duration::from_secs(10))
            .map_err(|e| anyhow::anyhow!(e))?;
        trust.revocation = trust
            .revocation
            .with_named(signature::revocation::NamedSources::Fetch(
                std::sync::Arc::new(fetch),
            ));
    }
    // Files are judged in parallel, one thread each up to the number of cores; xmlsec state
    // stays on the thread that made it.
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let verdicts: Vec<std::sync::Mutex<Option<Result<signature::Verdict, String>>>> = args
        .files
        .iter()
        .map(|_| std::sync::Mutex::new(None))
        .collect();
    std::thread::scope(|scope| {
        for _ in 0..workers.min(args.files.len()) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(path) = args.files.get(i) else { break };
                    let outcome = std::fs::read(path)
                        .map(|bytes| match &configured {
                            Some((kinds, _)) => signature::verify_by_kind(&bytes, kinds, at),
                            None => signature::verify(&bytes, &trust, at),
                        })
                        .map_err(|e| e.to_string());
                    *verdicts[i].lock().expect("verdict slot") = Some(outcome);
                }
            });
        }
    });
    let mut all_passed = true;
    for (path, slot) in args.files.iter().zip(verdicts) {
        let file = path.display().to_string();
        match slot
            .into_inner()
            .expect("verdict slot")
            .expect("every file judged")
        {
            Ok(verdict) => {
                all_passed &= verdict.passed();
                if args.json {
                    let mut line = serde_json::to_value(&verdict).expect("verdict serializes");
                    line["file"] = serde_json::Value::String(file);
                    line["trust"] = serde_json::Value::String(configured.as_ref().map_or_else(
                        || "the certificates given on the command line".to_string(),
                        |(_, source)| source.clone(),
                    ));
                    // The kind when judged by kind (qualified, trusted_profile, personal),
                    // else the format that was judged (wss, xmldsig, xades).
                    line["signature_kind"] = if line["kind"].is_null() {
                        line["profile"].clone()
                    } else {
                        line["kind"].clone()
                    };
                    println!("{line}");
                } else {
                    let mut details = Vec::new();
                    if let Some(kind) = verdict.kind {
                        details.push(
                            match kind {
                                signature::SignatureKind::Qualified => "podpis kwalifikowany",
                                signature::SignatureKind::TrustedProfile => "podpis zaufany",
                                signature::SignatureKind::Personal => "podpis osobisty",
                            }
                            .to_string(),
                        );
                    }
                    if let Some(time) = verdict.signing_time {
                        details.push(format!("signed at {time}"));
                    }
                    if verdict.qualified_certificate == Some(false) {
                        details.push("certificate without QcCompliance".into());
                    }
                    println!(
                        "{file}: {}{} ({:?}{}){}\n  {}",
                        verdict.indication,
                        verdict
                            .subindication
                            .map(|s| format!("/{s}"))
                            .unwrap_or_default(),
                        verdict.profile,
                        details.iter().map(|d| format!(", {d}")).collect::<String>(),
                        verdict
                            .signer
                            .as_ref()
                            .map(|s| format!(", signer: {s}"))
                            .unwrap_or_default(),
                        verdict.reason
                    );
                }
            }
            Err(error) => {
                eprintln!("eurzad: error: cannot read {file}: {error}");
                return Ok(ExitCode::from(2));
            }
        }
    }
    Ok(if all_passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
