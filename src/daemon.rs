//! The daemon: opens the store, starts the embedded emulator when configured, runs one inbox
//! task per box and the job worker, talks to systemd (READY, WATCHDOG, STATUS, STOPPING) and
//! shuts down cleanly on SIGTERM or SIGINT: each box finishes its document in flight.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use tokio::sync::watch;

use crate::config::{Config, Endpoint, redact_url};
use crate::cputime::process as process_cpu;
use crate::emulator::{Emulator, EmulatorSettings};
use crate::epuap::{ClientSettings, EpuapClient};
use crate::inbox::{BoxHealth, BoxWorker, DrainStats, Pacing, SharedHealth};
use crate::jobs::{self, JobSettings, JobStats};
use crate::settings::Settings;
use crate::store::{Counts, DocumentSummary, Store};
use crate::worker::{self, Finished, Pace, Pass, Worker, as_finished, supervise};

/// What a run did, for the summary and the exit code.
#[derive(Debug, Default)]
pub struct RunReport {
    pub endpoint: String,
    pub database: String,
    pub inbox: DrainStats,
    pub jobs: JobStats,
    /// Boxes that gave up (`--once` only).
    pub failed_boxes: Vec<String>,
    pub documents: Vec<DocumentSummary>,
    pub total_documents: i64,
    pub unconfirmed: i64,
    pub jobs_pending: i64,
    pub jobs_failed: i64,
    /// Access requests by status, accounts, letters and mail in the database.
    pub provisioning: crate::store::ProvisioningCounts,
    /// CPU time of this process (user and system) spent while the boxes drained, and then
    /// on the jobs that followed (`--once` only, where the two come one after the other).
    pub cpu: Option<PhaseCpu>,
    /// The letters made in this run: key, recipient, channel, legal state and evidences.
    pub letters: Vec<(String, String, crate::store::LetterStanding)>,
    /// What the pass over the office's e-Doręczenia inbox did (`--once` only).
    pub received: Option<crate::edoreczenia::receive::Received>,
}

/// CPU time by phase of a `--once` run.
#[derive(Debug, Clone, Copy, Default)]
pub struct PhaseCpu {
    pub drain: Duration,
    pub jobs: Duration,
    /// Of `drain`: the WS-Security work of the ePUAP client, signing requests and verifying
    /// and reading answers.
    pub drain_security: crate::epuap::client::SecurityCpuTime,
}

impl RunReport {
    /// True when every box drained and no job failed or is left waiting.
    pub fn all_went_well(&self) -> bool {
        self.failed_boxes.is_empty() && self.jobs_failed == 0 && self.jobs_pending == 0
    }

    /// A short human summary.
    pub fn render(&self) -> String {
        let mut out = format!(
            "eurzad: ePUAP {} -> {}\n  this run: {} new document(s), {} delivered again, {} confirmed, {} error(s) retried\n  \
             jobs: {} done, {} retried, {} failed; waiting: {}\n  database: {} document(s), {} unconfirmed\n",
            self.endpoint,
            self.database,
            self.inbox.stored,
            self.inbox.duplicates,
            self.inbox.confirmed,
            self.inbox.errors,
            self.jobs.done,
            self.jobs.retried,
            self.jobs_failed,
            self.jobs_pending,
            self.total_documents,
            self.unconfirmed,
        );
        if let Some(r) = &self.received {
            out.push_str(&format!(
                "  e-Doręczenia inbox: {} new message(s), {} fetched again, {} deleted from the box, {} left for later\n",
                r.stored, r.duplicates, r.deleted, r.failed
            ));
        }
        let p = &self.provisioning;
        if !p.requests.is_empty() || p.accounts > 0 || p.correspondence > 0 {
            let requests: Vec<String> =
                p.requests.iter().map(|(s, n)| format!("{n} {s}")).collect();
            out.push_str(&format!(
                "  access requests: {}; accounts: {}; letters sent: {} ({} resent by an official, {} held for an official after an interrupted send); \
                 correspondence: {}; mail to officials: {} sent, {} pending\n",
                if requests.is_empty() { "none".to_string() } else { requests.join(", ") },
                p.accounts,
                p.letters_sent,
                p.letters_resent,
                p.letters_held,
                p.correspondence,
                p.mail_sent,
                p.mail_pending,
            ));
        }
        for (key, recipient, l) in &self.letters {
            let evidences: Vec<&str> = l.evidences.iter().map(|e| e.code.as_str()).collect();
            out.push_str(&format!(
                "  letter {key} by {} to {recipient}: {}{}{}\n",
                l.channel,
                l.status,
                l.legal_state
                    .map(|s| format!(", in law {s} ({})", s.polish()))
                    .unwrap_or_default(),
                if evidences.is_empty() {
                    String::new()
                } else {
                    format!("; evidences {}", evidences.join(", "))
                },
            ));
        }
        for d in &self.documents {
            out.push_str(&format!(
                "  #{:<4} {}  from {:<18} {} ({} B){}{}\n",
                d.id,
                d.mailbox,
                d.sender,
                d.file,
                d.size,
                d.form
                    .as_ref()
                    .map(|f| format!(", form <{f}>"))
                    .unwrap_or_default(),
                d.signature
                    .as_ref()
                    .map(|s| format!(", signature {s}"))
                    .unwrap_or_default()
            ));
        }
        for b in &self.failed_boxes {
            out.push_str(&format!(
                "  box {b}: gave up after repeated errors (see the log)\n"
            ));
        }
        out
    }
}

/// The runtime eurzad runs on: one async worker thread unless `TOKIO_WORKER_THREADS` says
/// otherwise. The daemon mostly waits on ePUAP and the database, and its heavy work runs
/// on threads of its own (signature checks and file reading on tokio's blocking pool, CSV
/// parsing, SQLite writes through `block_in_place`). With a second async worker, tasks
/// moved between the two threads and woke each other: in interleaved drain bench runs, 11
/// to 29% more CPU per document (benches/drain.rs, README).
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if std::env::var_os("TOKIO_WORKER_THREADS").is_none() {
        builder.worker_threads(1);
    }
    builder.enable_all().build()
}

/// Opens the store and applies migrations.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "eurzad".into())
}

/// The office as provisioning sees it: its seal, its reply channel, its officials and mail,
/// from the resolved settings.
fn office(
    config: &Config,
    ready: Ready,
    client: &EpuapClient,
    electronic: Option<crate::delivery::ElectronicDelivery>,
) -> anyhow::Result<jobs::Office> {
    let provisioning = &config.provisioning;
    let office_box = config
        .epuap
        .boxes
        .first()
        .context("epuap.boxes: at least one box is needed to send replies from")?;
    let channel: std::sync::Arc<dyn crate::delivery::DeliveryChannel> =
        std::sync::Arc::new(crate::epuap::delivery::SkrytkaChannel {
            client: client.clone(),
            podmiot: office_box.podmiot.clone(),
            reply_to: office_box.adres.clone(),
        });
    let proof_channel: std::sync::Arc<dyn crate::delivery::DeliveryChannel> =
        std::sync::Arc::new(crate::epuap::delivery::DoreczycielChannel {
            client: client.clone(),
            podmiot: office_box.podmiot.clone(),
            reply_to: office_box.adres.clone(),
        });
    let channel = match provisioning.reply_channel {
        crate::config::ReplyChannel::Skrytka => channel,
        crate::config::ReplyChannel::Doreczyciel => proof_channel.clone(),
    };
    ready
        .mailer
        .prepare()
        .with_context(|| format!("{}: notify.mail_dir", config.source))?;
    Ok(jobs::Office {
        name: provisioning.office_name.clone(),
        deadline_days: provisioning.deadline_days,
        deadline_count: provisioning.deadline_count,
        seal: ready.seal,
        channel,
        proof_channel,
        proof_kinds: provisioning.proof_of_delivery.clone(),
        electronic,
        routes: [
            crate::provisioning::letter::LetterKind::RegistrationInfo,
            crate::provisioning::letter::LetterKind::RegistrationRefusal,
        ]
        .into_iter()
        .map(|kind| (kind, config.delivery.routes_for(kind.as_str()).to_vec()))
        .collect(),
        desk_url: config
            .desk
            .public_url
            .clone()
            .or_else(|| config.desk.listen.map(|a| format!("http://{a}"))),
        epuap_certificate: ready.server_certificate,
        officials: config.notify.officials.clone(),
        zone: ready.zone,
        mailer: ready.mailer,
        routing: config.routing.clone(),
        reminder_before: ready.reminder_before,
        digest: ready.digest,
    })
}

/// What [`office`] takes from the settings.
struct Ready {
    seal: crate::xmldsig::SigningKey,
    server_certificate: Vec<u8>,
    zone: chrono_tz::Tz,
    mailer: crate::notify::Mailer,
    reminder_before: chrono::TimeDelta,
    digest: crate::notify::schedule::Schedule,
}

/// The trust for inbound documents, as resolved. A configured trusted list must not be
/// older than the one used before (recorded in the database): a rollback would revive
/// withdrawn CAs.
async fn load_trust(
    config: &Config,
    trust: crate::signature::KindTrust,
    store: &Store,
) -> anyhow::Result<crate::signature::KindTrust> {
    let territory = "PL";
    let loaded = store.trusted_list_sequence(territory).await?;
    if let Some(list) = &trust.trusted_list {
        if let Some(loaded) = loaded
            && list.sequence_number < loaded
        {
            return Err(crate::config::ConfigError::Invalid {
                file: config.source.clone(),
                key: "trust.tsl".into(),
                message: crate::signature::tsl::TslError::Rollback {
                    found: list.sequence_number,
                    loaded,
                }
                .to_string(),
            }
            .into());
        }
        store.record_trusted_list(list).await?;
    }
    Ok(trust)
}

pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let store = Store::connect(&config.database.url, config.database.max_connections)
        .await
        .with_context(|| format!("opening database {}", redact_url(&config.database.url)))?;
    extending_start(
        "migrating the database",
        store.migrate(),
        EXTEND_START_EVERY,
        notify_systemd,
    )
    .await
    .with_context(|| format!("migrating database {}", redact_url(&config.database.url)))?;
    Ok(store)
}

/// How often a long step of the start tells systemd that the start goes on.
const EXTEND_START_EVERY: Duration = Duration::from_secs(30);

/// Awaits `work`, a step of the start such as migrating the database, and every `every`
/// until it ends tells systemd that the start goes on (`EXTEND_TIMEOUT_USEC`, twice `every`)
/// and what it waits for (`STATUS`). A migration that rewrites a large SQLite table can take
/// minutes; killed at `TimeoutStartSec`, its transaction would roll back and every restart
/// would begin it again.
async fn extending_start<T>(
    what: &str,
    work: impl std::future::Future<Output = T>,
    every: Duration,
    notify: impl Fn(&[sd_notify::NotifyState<'_>]),
) -> T {
    let mut work = std::pin::pin!(work);
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    let extension = u32::try_from((2 * every).as_micros()).unwrap_or(u32::MAX);
    loop {
        tokio::select! {
            done = &mut work => return done,
            _ = ticks.tick() => {
                tracing::info!("still {what}");
                notify(&[
                    sd_notify::NotifyState::Status(what),
                    sd_notify::NotifyState::ExtendTimeoutUsec(extension),
                ]);
            }
        }
    }
}

/// Runs the daemon. With `once`, drains every box, runs the jobs and returns; otherwise runs
/// until SIGTERM/SIGINT.
pub async fn run(settings: Settings, once: bool) -> anyhow::Result<RunReport> {
    // Everything was resolved before anything is opened: a mistake stops the start, not a
    // task later.
    let Settings {
        config,
        endpoint,
        office_key,
        server_certificate,
        seal,
        trust,
        zone,
        digest,
        reminder_before,
        register_schedules: schedules,
        mailer,
        portal_token,
        edoreczenia,
    } = settings;
    let started = Utc::now();
    let store = open_store(&config).await?;
    let (stop_tx, stop_rx) = watch::channel(false);
    spawn_signal_handler(stop_tx.clone());

    let mut ua_emulator_task = None;
    let electronic = match edoreczenia {
        None => None,
        Some(api) => {
            let (ua, task) = edoreczenia_client(&config, api, stop_rx.clone()).await?;
            ua_emulator_task = task;
            Some(ua)
        }
    };

    let mut emulator_task = None;
    let base_url = match endpoint {
        Endpoint::Url(url) => url,
        Endpoint::Embedded => {
            let (url, task) = start_embedded_emulator(&config, stop_rx.clone()).await?;
            emulator_task = Some(task);
            url
        }
    };
    let client = EpuapClient::new(ClientSettings {
        base_url: base_url.clone(),
        office_key,
        server_certificate_pem: server_certificate.clone(),
        request_timeout: config.epuap.request_timeout,
        connect_timeout: config.epuap.connect_timeout,
        max_attempts: config.epuap.max_attempts,
        backoff_initial: config.epuap.backoff_initial,
        backoff_max: config.epuap.backoff_max,
        max_document_bytes: config.epuap.max_document_bytes,
        clock_skew: config.epuap.clock_skew,
    })
    .context("building the HTTP client")?;

    let pacing = Pacing {
        poll_interval: config.epuap.poll_interval,
        backoff_initial: config.epuap.backoff_initial,
        backoff_max: config.epuap.backoff_max,
        once_max_failures: 8,
    };
    let ready = Ready {
        seal,
        server_certificate,
        zone,
        mailer,
        reminder_before,
        digest,
    };
    let follower =
        electronic.as_ref().map(
            |(channel, api)| crate::edoreczenia::follow::EvidenceFollower {
                store: store.clone(),
                client: channel.client.clone(),
                deemed: api.following.deemed,
                operator_certificate: api.operator_certificate.clone(),
                recheck_after: api.following.interval,
                batch: 100,
            },
        );
    let receiver =
        electronic
            .as_ref()
            .map(|(channel, _)| crate::edoreczenia::receive::InboxReceiver {
                store: store.clone(),
                client: channel.client.clone(),
                batch: 50,
            });
    let electronic = electronic.map(|(channel, _)| crate::delivery::ElectronicDelivery {
        hybrid: std::sync::Arc::new(crate::edoreczenia::channel::EdoreczeniaChannel::hybrid(
            channel.client.clone(),
        )),
        addresses: std::sync::Arc::new(crate::delivery::CachedAddressBook::new(
            channel.clone(),
            config.delivery.address_cache,
        )),
        channel,
    });
    let office = std::sync::Arc::new(office(&config, ready, &client, electronic)?);
    tracing::info!(mail = %office.mailer.describe(), officials = office.officials.len(), channel = office.channel.name(), "replies and mail");
    if office.officials.is_empty() {
        tracing::warn!(
            "notify.officials is empty: no official will be e-mailed about access requests"
        );
    }
    let job_settings = JobSettings {
        max_attempts: config.jobs.max_attempts,
        retry_delay: config.jobs.retry_delay,
        lease: config.jobs.lease,
        idle_wait: Duration::from_millis(500),
        trust: std::sync::Arc::new(load_trust(&config, trust, &store).await?),
        forms: std::sync::Arc::new(config.forms.registry()),
        office: office.clone(),
    };
    let sync_task = (!once && !schedules.is_empty()).then(|| {
        let worker = ScheduledSyncs {
            store: store.clone(),
            config: config.clone(),
            schedules,
            daemon: format!("{}:{}", hostname(), std::process::id()),
        };
        tokio::spawn(worker::run(worker, ScheduledSyncs::PACE, stop_rx.clone()))
    });
    let portal_task = match (config.portal.listen, once) {
        (Some(listen), false) => {
            let token = portal_token
                .clone()
                .context("portal.listen is set, so its token was resolved")?;
            let listener = std::net::TcpListener::bind(listen)
                .with_context(|| format!("portal.listen: binding {listen}"))?;
            // Reads go through a pool of their own, so that a page never waits for a
            // connection the jobs or a sync hold, and run on a thread of their own.
            let running = crate::portal::start(
                listener,
                config.database.url.clone(),
                config.portal.connections,
                token,
                config.portal.connections_during_sync,
                config.portal.rest_during_sync(config.database.is_sqlite()),
                stop_rx.clone(),
            )
            .await
            .context("portal.listen")?;
            tracing::info!(%listen, "portal read API listening (reads of others' data are audited)");
            Some(tokio::spawn(async move {
                let _ = running.ended.await;
            }))
        }
        _ => None,
    };
    let desk_task = match (config.desk.listen, once) {
        (Some(listen), false) => {
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("desk.listen: binding {listen}"))?;
            tracing::info!(%listen, public_url = ?config.desk.public_url, "the officials' desk listening");
            let router = crate::desk::router(
                store.clone(),
                job_settings.forms.clone(),
                crate::desk::DeskSettings::from_config(&config.desk, zone),
            );
            let mut stop = stop_rx.clone();
            Some(tokio::spawn(async move {
                let _ = axum::serve(
                    listener,
                    router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
                )
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await;
            }))
        }
        _ => None,
    };
    let deadline_task = (!once).then(|| {
        let worker = DeadlineWatch {
            store: store.clone(),
            office: office.clone(),
        };
        tokio::spawn(worker::run(worker, DeadlineWatch::PACE, stop_rx.clone()))
    });
    let (evidence_task, follower) = match (follower, once) {
        (Some(follower), false) => {
            let pace = Pace {
                idle: Duration::from_secs(5),
                backoff_initial: Duration::from_secs(5),
                backoff_max: Duration::from_secs(300),
            };
            (
                Some(tokio::spawn(worker::run(follower, pace, stop_rx.clone()))),
                None,
            )
        }
        (follower, _) => (None, follower),
    };
    let (receive_task, receiver) = match (receiver, once) {
        (Some(receiver), false) => {
            let pace = Pace {
                idle: config.epuap.poll_interval,
                backoff_initial: config.epuap.backoff_initial,
                backoff_max: config.epuap.backoff_max,
            };
            (
                Some(tokio::spawn(worker::run(receiver, pace, stop_rx.clone()))),
                None,
            )
        }
        (receiver, _) => (None, receiver),
    };
    let job_task = (!once).then(|| {
        let worker = jobs::JobWorker::new(store.clone(), job_settings.clone(), stop_rx.clone());
        let pace = worker.pace();
        tokio::spawn(worker::run(worker, pace, stop_rx.clone()))
    });

    // The boxes start once everything else is set up: a bad setting fails the start
    // before ePUAP is asked for anything.
    let cpu_start = process_cpu();
    let security_start = client.security_cpu();
    let mut box_tasks = Vec::new();
    let mut box_health = Vec::new();
    for mailbox in &config.epuap.boxes {
        let health = SharedHealth::default();
        box_health.push((mailbox.adres.clone(), health.clone()));
        let worker = BoxWorker {
            client: client.clone(),
            store: store.inbox_writer().await?,
            mailbox: mailbox.to_ref(),
            skrot: config.epuap.skrot,
            pacing: pacing.clone(),
            health,
        };
        let task = if once {
            tokio::spawn(worker.run_once(stop_rx.clone()))
        } else {
            let pace = worker.pace();
            let drains = worker.into_worker(stop_rx.clone());
            let stop = stop_rx.clone();
            tokio::spawn(async move { Ok(worker::run(drains, pace, stop).await.total) })
        };
        box_tasks.push((mailbox.adres.clone(), task));
    }
    notify_systemd(&[
        sd_notify::NotifyState::Ready,
        sd_notify::NotifyState::Status("draining ePUAP boxes"),
    ]);
    let watchdog = spawn_watchdog(stop_rx.clone());
    let status_task = (!once && std::env::var_os("NOTIFY_SOCKET").is_some()).then(|| {
        tokio::spawn(report_status(
            store.clone(),
            box_health,
            stop_rx.clone(),
            STATUS_EVERY,
            notify_systemd,
        ))
    });
    tracing::info!(endpoint = %base_url, database = %redact_url(&config.database.url), boxes = config.epuap.boxes.len(), once, "eurzad running");

    // Until the stop, every task runs. One that ends before it (a panic, which is a bug)
    // stops the daemon, which then exits with an error so that systemd starts it again
    // (Restart=on-failure), instead of running on without that task.
    let ended_early = if once {
        None
    } else {
        let mut tasks: Vec<(String, &dyn Finished)> = box_tasks
            .iter()
            .map(|(adres, task)| (format!("the task of box {adres}"), task as &dyn Finished))
            .collect();
        tasks.extend(
            [
                ("the job worker", as_finished(&job_task)),
                ("the scheduled syncs", as_finished(&sync_task)),
                ("the deadline watch", as_finished(&deadline_task)),
                ("the portal API", as_finished(&portal_task)),
                ("the officials' desk", as_finished(&desk_task)),
                ("the embedded emulator", as_finished(&emulator_task)),
                (
                    "the embedded e-Doręczenia emulator",
                    as_finished(&ua_emulator_task),
                ),
                (
                    "the e-Doręczenia evidence worker",
                    as_finished(&evidence_task),
                ),
                ("the e-Doręczenia inbox", as_finished(&receive_task)),
                ("the status report", as_finished(&status_task)),
            ]
            .into_iter()
            .filter_map(|(name, task)| Some((name.to_string(), task?))),
        );
        supervise(&tasks, &stop_tx, SUPERVISION_INTERVAL).await
    };

    let mut report = RunReport {
        endpoint: if emulator_task.is_some() {
            format!("embedded emulator at {base_url}")
        } else {
            base_url
        },
        database: redact_url(&config.database.url),
        ..RunReport::default()
    };
    // After the stop, each task gets EXIT_DEADLINE to end its step; `run --once` waits
    // for its drains and jobs to end by themselves.
    let deadline = (!once).then_some(EXIT_DEADLINE);
    for (adres, task) in box_tasks {
        match worker::finish(&format!("the task of box {adres}"), task, deadline)
            .await
            .context("box task panicked")?
        {
            Some(Ok(stats)) => report.inbox += stats,
            Some(Err(stats)) => {
                report.inbox += stats;
                report.failed_boxes.push(adres);
            }
            None => report.failed_boxes.push(adres),
        }
    }
    let cpu_drained = process_cpu();
    let drain_security = client.security_cpu().since(security_start);
    report.jobs = match job_task {
        Some(task) => worker::finish("the job worker", task, deadline)
            .await
            .context("job worker panicked")?
            .map(|w| w.stats)
            .unwrap_or_default(),
        None => {
            // The citizens' messages waiting at the office's e-Doręczenia address.
            if let Some(receiver) = &receiver {
                let received = receiver.receive().await?;
                tracing::info!(?received, "e-Doręczenia inbox drained");
                report.received = Some(received);
            }
            let mut stats =
                jobs::run_until_idle(store.clone(), job_settings.clone(), stop_rx.clone()).await?;
            // Reminders, overdue alerts and the digest due now, then their mail.
            jobs::watch_deadlines(&store, &office, Utc::now()).await?;
            let mail = jobs::run_until_idle(store.clone(), job_settings, stop_rx.clone()).await?;
            // The evidences of what was sent, as far as they came.
            if let Some(follower) = &follower {
                let followed = follower.follow_at(Utc::now()).await?;
                tracing::info!(?followed, "e-Doręczenia evidences fetched");
            }
            stats.done += mail.done;
            stats.retried += mail.retried;
            stats.failed += mail.failed;
            let cpu_done = process_cpu();
            report.cpu = Some(PhaseCpu {
                drain: cpu_drained - cpu_start,
                jobs: cpu_done - cpu_drained,
                drain_security,
            });
            stats
        }
    };
    if let Some(task) = deadline_task {
        task.abort();
    }
    if let Some(task) = evidence_task {
        task.abort();
    }
    if let Some(task) = receive_task {
        // A pass in progress stores each message in a transaction of its own: one cut
        // short is fetched again next time (its deletion comes only after its commit).
        task.abort();
    }
    if let Some(task) = portal_task {
        task.abort();
    }
    if let Some(task) = desk_task {
        task.abort();
    }
    if let Some(task) = sync_task {
        // A sync in progress is one transaction: stopping it rolls it back.
        task.abort();
    }
    notify_systemd(&[sd_notify::NotifyState::Stopping]);
    let _ = stop_tx.send(true);
    if let Some(task) = watchdog {
        task.abort();
    }
    if let Some(task) = status_task {
        task.abort();
    }
    if let Some(task) = emulator_task {
        let _ = task.await;
    }
    if let Some(task) = ua_emulator_task {
        let _ = task.await;
    }

    let counts = store.counts().await?;
    report.total_documents = counts.documents;
    report.unconfirmed = counts.unconfirmed;
    report.jobs_pending = counts.jobs_pending + counts.jobs_running;
    report.jobs_failed = counts.jobs_failed;
    report.documents = store.recent_documents(started).await?;
    report.provisioning = store.provisioning_counts().await?;
    report.letters = store.recent_letters(started).await?;
    store.close().await;
    if let Some(task) = ended_early {
        anyhow::bail!(
            "{task} ended before the stop (see the log); eurzad stopped so as to be started again"
        );
    }
    Ok(report)
}

/// The scheduled register syncs: each step claims the occurrences due (once across the
/// daemons sharing the database) and runs them.
struct ScheduledSyncs {
    store: Store,
    config: Config,
    schedules: Vec<(
        &'static crate::registers::Register,
        crate::notify::schedule::Schedule,
    )>,
    /// This daemon, as the claims name it.
    daemon: String,
}

impl ScheduledSyncs {
    const PACE: Pace = Pace {
        idle: Duration::from_secs(1),
        backoff_initial: Duration::from_secs(1),
        backoff_max: Duration::from_secs(60),
    };
}

impl Worker for ScheduledSyncs {
    fn name(&self) -> String {
        "the scheduled syncs".into()
    }

    async fn step(&mut self) -> anyhow::Result<Pass> {
        let due = crate::sync::claim_due(&self.store, &self.schedules, Utc::now(), &self.daemon)
            .await
            .context("claiming scheduled syncs")?;
        if !due.is_empty() {
            let context = crate::sync::SyncContext {
                config: &self.config,
                mode: self.config.registers.mode,
                encoding: self.config.registers.encoding,
                officials: &self.config.notify.officials,
            };
            // A refused file is reported by the sync itself (log, officials' mail, sync_run);
            // what ends here is a failure to run at all.
            crate::sync::sync(&self.store, &context, &due, None)
                .await
                .context("scheduled sync")?;
        }
        Ok(Pass::Idle)
    }
}

/// The deadline watch: reminders before an access request's deadline, alerts after it, and
/// the officials' digest.
struct DeadlineWatch {
    store: Store,
    office: std::sync::Arc<jobs::Office>,
}

impl DeadlineWatch {
    const PACE: Pace = Pace {
        idle: Duration::from_secs(60),
        backoff_initial: Duration::from_secs(5),
        backoff_max: Duration::from_secs(60),
    };
}

impl Worker for DeadlineWatch {
    fn name(&self) -> String {
        "the deadline watch".into()
    }

    async fn step(&mut self) -> anyhow::Result<Pass> {
        jobs::watch_deadlines(&self.store, &self.office, Utc::now())
            .await
            .context("deadline watch")?;
        Ok(Pass::Idle)
    }
}

/// How long the tasks get, after the stop, to end the step they are in: well within the
/// unit's TimeoutStopSec (90 s, systemd/eurzad.service), so that eurzad ends its own work
/// and records the run instead of being killed.
const EXIT_DEADLINE: Duration = Duration::from_secs(30);

/// How often `supervise` looks at the tasks.
const SUPERVISION_INTERVAL: Duration = Duration::from_secs(1);

/// The demo citizen's e-Doręczenia address in the embedded emulator (Jan Demo, whose access
/// request the embedded ePUAP emulator seeds); he opens his letters at once.
pub const DEMO_CITIZEN_ADE: &str = "AE:PL-02070-80362-JDEMO-01";

/// The UA API client of `[edoreczenia]`, and the embedded emulator it talks to when the
/// endpoint is "embedded" (on loopback, with the demo office system registered).
async fn edoreczenia_client(
    config: &Config,
    mut api: crate::edoreczenia::ApiSettings,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<(
    (
        std::sync::Arc<crate::edoreczenia::channel::EdoreczeniaChannel>,
        crate::edoreczenia::ApiSettings,
    ),
    Option<tokio::task::JoinHandle<std::io::Result<()>>>,
)> {
    use crate::emulator::edoreczenia::{
        AddressEntry, REALM_PATH, TokenSettings, UaEmulator, UaSettings,
    };
    crate::install_crypto_provider();
    let mut task = None;
    if api.endpoint == "embedded" {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .await
            .context("starting the embedded e-Doręczenia emulator on loopback")?;
        let origin = format!("http://{}", listener.local_addr()?);
        let realm = format!("{origin}{REALM_PATH}");
        let emulator = UaEmulator::open(UaSettings {
            state_dir: PathBuf::from(&config.emulator.state_dir),
            token: TokenSettings {
                realm: realm.clone(),
                systems: std::collections::HashMap::from([(
                    api.credentials.client_id(),
                    crate::emulator::demo_pki::OFFICE_CERT.to_vec(),
                )]),
                token_lifetime: Duration::from_secs(3600),
                leeway: Duration::from_secs(30),
            },
            operator_key: crate::emulator::demo_pki::epuap_key(),
            addresses: vec![AddressEntry {
                ade: DEMO_CITIZEN_ADE.into(),
                name: Some("Jan Demo".into()),
                pesel: Some("02070803628".into()),
                nip: None,
                regon: None,
                krs: None,
                opens_after_days: Some(0.0),
            }],
            clock_offset: chrono::TimeDelta::zero(),
            backdate: chrono::TimeDelta::zero(),
            task_delay: Duration::from_millis(50),
            box_delay: Duration::ZERO,
            paper_delivery: Duration::from_secs(3 * 86_400),
            seed: 1,
            fault_rate: None,
            slow_delay: Duration::from_secs(40),
        })
        .map_err(|e| anyhow::anyhow!("opening the embedded e-Doręczenia emulator: {e}"))?;
        let router = emulator.router();
        task = Some(tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await
        }));
        api.endpoint = origin;
        api.realm = realm;
    }
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .build()
        .context("building the e-Doręczenia HTTP client")?;
    let tokens = std::sync::Arc::new(crate::edoreczenia::auth::TokenSource::new(
        http.clone(),
        &api.realm,
        api.credentials.clone(),
    ));
    let client = crate::edoreczenia::client::UaClient::new(
        http,
        &api.api_base(),
        api.credentials.ade.clone(),
        tokens,
        crate::edoreczenia::client::Pacing::default(),
    )
    .map_err(|e| anyhow::anyhow!("edoreczenia.endpoint: {e}"))?;
    tracing::info!(endpoint = %api.endpoint, system = %api.credentials.client_id(), "e-Doręczenia: replies go to the applicant's address when the address database has one");
    Ok((
        (
            std::sync::Arc::new(crate::edoreczenia::channel::EdoreczeniaChannel::electronic(
                client,
            )),
            api,
        ),
        task,
    ))
}

async fn start_embedded_emulator(
    config: &Config,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<(String, tokio::task::JoinHandle<std::io::Result<()>>)> {
    let boxes: Vec<_> = config.epuap.boxes.iter().map(|b| b.to_ref()).collect();
    let mut settings =
        EmulatorSettings::demo(PathBuf::from(&config.emulator.state_dir), boxes.clone());
    settings.skrot = config.epuap.skrot;
    let (emulator, fresh) =
        Emulator::open(settings).context("opening the embedded emulator's state")?;
    if fresh && config.emulator.seed_demo {
        let seeded = emulator.seed_demo(&boxes[0])?;
        tracing::info!(mailbox = %boxes[0].adres, seeded, "seeded demo documents into the embedded emulator");
    }
    let shutdown = async move {
        let _ = stop.wait_for(|stop| *stop).await;
    };
    let (addr, task) = crate::emulator::spawn(
        emulator,
        SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        shutdown,
    )
    .await
    .context("starting the embedded emulator on loopback")?;
    Ok((format!("http://{addr}"), task))
}

fn spawn_signal_handler(stop: watch::Sender<bool>) {
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            tracing::error!("cannot install signal handlers");
            return;
        };
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: finishing documents in flight"),
            _ = int.recv() => tracing::info!("SIGINT: finishing documents in flight"),
        }
        notify_systemd(&[sd_notify::NotifyState::Stopping]);
        let _ = stop.send(true);
    });
}

fn notify_systemd(states: &[sd_notify::NotifyState<'_>]) {
    if std::env::var_os("NOTIFY_SOCKET").is_some()
        && let Err(error) = sd_notify::notify(states)
    {
        tracing::warn!(%error, "sd_notify failed");
    }
}

/// How often the running daemon tells systemd how it is doing (`systemctl status eurzad`).
const STATUS_EVERY: Duration = Duration::from_secs(30);

/// Tells systemd how the daemon is doing (`STATUS`, shown by `systemctl status eurzad`), now
/// and then every `every` until the stop: the database's counts and each box's health.
async fn report_status(
    store: Store,
    boxes: Vec<(String, SharedHealth)>,
    stop: watch::Receiver<bool>,
    every: Duration,
    notify: impl Fn(&[sd_notify::NotifyState<'_>]) + Send + Sync + 'static,
) {
    let pace = Pace {
        idle: every,
        backoff_initial: every,
        backoff_max: every,
    };
    worker::run(
        StatusReport {
            store,
            boxes,
            notify,
        },
        pace,
        stop,
    )
    .await;
}

/// The status line, sent to systemd at each step.
struct StatusReport<N> {
    store: Store,
    boxes: Vec<(String, SharedHealth)>,
    notify: N,
}

impl<N: Fn(&[sd_notify::NotifyState<'_>]) + Send + Sync + 'static> Worker for StatusReport<N> {
    fn name(&self) -> String {
        "the status report".into()
    }

    async fn step(&mut self) -> anyhow::Result<Pass> {
        let line = match self.store.counts().await {
            Ok(counts) => {
                let health: Vec<(String, BoxHealth)> = self
                    .boxes
                    .iter()
                    .map(|(adres, h)| {
                        let h = h.lock().unwrap_or_else(|e| e.into_inner()).clone();
                        (adres.clone(), h)
                    })
                    .collect();
                status_line(&counts, &health)
            }
            Err(error) => {
                tracing::warn!(%error, "reading the counts for the status line");
                format!("the database cannot be read: {error}")
            }
        };
        (self.notify)(&[sd_notify::NotifyState::Status(&line)]);
        Ok(Pass::Idle)
    }
}

/// The status line: what the database holds and what waits, and each box's last drain or
/// failure, e.g. `12 documents, 0 unconfirmed; jobs: 0 waiting, 1 failed; box /u/s: drained
/// 2026-11-27 15:20:03 UTC`.
pub fn status_line(counts: &Counts, boxes: &[(String, BoxHealth)]) -> String {
    const MAX_ERROR: usize = 160;
    let at = |t: &DateTime<Utc>| t.format("%Y-%m-%d %H:%M:%S UTC").to_string();
    let mut line = format!(
        "{} documents, {} unconfirmed; jobs: {} waiting, {} failed",
        counts.documents,
        counts.unconfirmed,
        counts.jobs_pending + counts.jobs_running,
        counts.jobs_failed
    );
    for (adres, health) in boxes {
        line.push_str(&format!("; box {adres}: "));
        match health {
            BoxHealth::Starting => line.push_str("starting"),
            BoxHealth::Drained { at: when } => line.push_str(&format!("drained {}", at(when))),
            BoxHealth::Failing { since, error } => {
                let mut error = error.replace('\n', " ");
                if let Some((cut, _)) = error.char_indices().nth(MAX_ERROR) {
                    error.truncate(cut);
                    error.push('…');
                }
                line.push_str(&format!("failing since {}: {error}", at(since)));
            }
        }
    }
    line
}

/// Pings systemd's watchdog at half its interval while the runtime is alive.
fn spawn_watchdog(stop: watch::Receiver<bool>) -> Option<tokio::task::JoinHandle<()>> {
    let interval = sd_notify::watchdog_enabled()? / 2;
    let pace = Pace {
        idle: interval,
        backoff_initial: interval,
        backoff_max: interval,
    };
    Some(tokio::spawn(async move {
        worker::run(Watchdog, pace, stop).await;
    }))
}

/// systemd's watchdog, kept fed at half its interval.
struct Watchdog;

impl Worker for Watchdog {
    fn name(&self) -> String {
        "the watchdog".into()
    }

    async fn step(&mut self) -> anyhow::Result<Pass> {
        notify_systemd(&[sd_notify::NotifyState::Watchdog]);
        Ok(Pass::Idle)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A long step of the start extends systemd's start timeout while it runs, and a short
    /// one says nothing. (Paused time: the runtime advances the clock, so the ticks are exact.)
    #[tokio::test(start_paused = true)]
    async fn a_long_start_step_keeps_extending_the_start_timeout() {
        let sent = std::sync::Mutex::new(Vec::new());
        let record = |states: &[sd_notify::NotifyState<'_>]| {
            let message: Vec<String> = states.iter().map(|s| s.to_string()).collect();
            sent.lock().unwrap().push(message.join("\n"));
        };
        let every = Duration::from_millis(100);
        let slow = async {
            tokio::time::sleep(Duration::from_millis(350)).await;
            7
        };
        assert_eq!(extending_start("migrating", slow, every, record).await, 7);
        let messages = std::mem::take(&mut *sent.lock().unwrap());
        assert_eq!(messages.len(), 3, "{messages:?}");
        for message in &messages {
            assert_eq!(message, "STATUS=migrating\nEXTEND_TIMEOUT_USEC=200000");
        }
        let quick = tokio::time::sleep(Duration::from_millis(20));
        extending_start("migrating", quick, every, record).await;
        assert!(sent.lock().unwrap().is_empty());
    }

    #[test]
    fn the_status_line_gives_the_counts_and_each_boxs_last_drain_or_failure() {
        let at = DateTime::parse_from_rfc3339("2026-11-27T15:20:03Z")
            .unwrap()
            .with_timezone(&Utc);
        let counts = Counts {
            documents: 12,
            unconfirmed: 1,
            jobs_pending: 2,
            jobs_running: 1,
            jobs_done: 9,
            jobs_failed: 1,
        };
        let boxes = [
            ("/u/a".to_string(), BoxHealth::Drained { at }),
            (
                "/u/b".to_string(),
                BoxHealth::Failing {
                    since: at,
                    error: format!("pobierzNastepny: cannot reach ePUAP:\n{}", "ż".repeat(300)),
                },
            ),
            ("/u/c".to_string(), BoxHealth::Starting),
        ];
        let line = status_line(&counts, &boxes);
        let expected_error = format!(
            "pobierzNastepny: cannot reach ePUAP: {}…",
            "ż".repeat(160 - "pobierzNastepny: cannot reach ePUAP: ".len())
        );
        assert_eq!(
            line,
            format!(
                "12 documents, 1 unconfirmed; jobs: 3 waiting, 1 failed; \
                 box /u/a: drained 2026-11-27 15:20:03 UTC; \
                 box /u/b: failing since 2026-11-27 15:20:03 UTC: {expected_error}; box /u/c: starting"
            )
        );
        assert!(!line.contains('\n'), "one line");
    }

    /// The status goes out at once, again every interval with what changed, and no more
    /// after the stop.
    #[tokio::test(flavor = "multi_thread")]
    async fn the_status_is_reported_at_once_and_then_every_interval_until_the_stop() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("s.db").display());
        let store = Store::connect(&url, 2).await.unwrap();
        store.migrate().await.unwrap();
        let health = SharedHealth::default();
        let (stop_tx, stop_rx) = watch::channel(false);
        let sent = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let record = {
            let sent = sent.clone();
            move |states: &[sd_notify::NotifyState<'_>]| {
                let message: Vec<String> = states.iter().map(|s| s.to_string()).collect();
                sent.lock().unwrap().push(message.join("\n"));
            }
        };
        let task = tokio::spawn(report_status(
            store,
            vec![("/u/s".to_string(), health.clone())],
            stop_rx,
            Duration::from_millis(100),
            record,
        ));
        let until = async |what: &'static str, done: &dyn Fn(&[String]) -> bool| {
            let started = std::time::Instant::now();
            while !done(&sent.lock().unwrap()) {
                assert!(started.elapsed() < Duration::from_secs(10), "no {what}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        until("first status", &|sent| !sent.is_empty()).await;
        *health.lock().unwrap() = BoxHealth::Failing {
            since: Utc::now(),
            error: "HTTP 500".into(),
        };
        until("status with the failure", &|sent| {
            sent.iter().any(|m| m.ends_with(": HTTP 500"))
        })
        .await;
        stop_tx.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("the report ends at the stop")
            .unwrap();
        assert_eq!(
            sent.lock().unwrap()[0],
            "STATUS=0 documents, 0 unconfirmed; jobs: 0 waiting, 0 failed; box /u/s: starting"
        );
    }
}
