//! The durable job queue's worker. Jobs are rows keyed by (kind, key); a step is idempotent,
//! so a job that ran halfway before a crash is simply run again when its lease expires.
//!
//! Kinds:
//! - `verify`: names the form of an inbound document (its root element and namespace),
//!   checks the signature of an XML document, reads its form, and stores all three;
//!   A document that is neither an access request nor a UPD becomes correspondence in the
//!   same transaction (routed to its department, with the mail to it);
//! - `classify`: only the naming, as its own job. Documents stored by earlier versions
//!   queued it beside `verify`; such jobs still run. New documents get `verify` alone,
//!   which saves a read of the content and a transaction per document.
//! - `correspond`: the correspondence as its own job, as earlier versions queued it after
//!   `verify`; such jobs still run. Recording it in the `verify` step saves a job, a read
//!   and a transaction per document.
//! - `provision`, `reply`, `mail`, `receipt`: access requests become accounts, replies go
//!   out and their UPDs come back ([`provisioning`]).

pub mod kind;
pub mod provisioning;

pub use kind::JobKind;

pub use provisioning::{Office, Watched, watch_deadlines};

use std::time::Duration;

use tokio::sync::watch;

use std::sync::Arc;

use crate::states::Named as _;

use crate::forms;
use crate::signature::{self, KindTrust};
use crate::store::{Job, Judgement, Store, StoreError};
use crate::worker::{Pace, Pass, Worker};
use anyhow::Context as _;

/// What follows the judgement of a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    /// A job of this kind: `receipt` for a UPD (ePUAP's proof of delivery), `provision` for
    /// an access request.
    Job(JobKind),
    /// Anything else becomes correspondence in the `verify` step's own transaction (no
    /// second job, read and transaction per document; `correspond` jobs queued by earlier
    /// versions do the same).
    Correspondence,
}

fn next_step(classification: &forms::Classification, form_type: forms::FormType) -> Next {
    match (classification, form_type) {
        (
            forms::Classification::Xml {
                namespace: Some(ns),
                root,
            },
            _,
        ) if ns == crate::document::UPO_NS && root == "UPD" => Next::Job(JobKind::Receipt),
        (_, forms::FormType::AccessRequest) => Next::Job(JobKind::Provision),
        _ => Next::Correspondence,
    }
}

/// Job outcome counts of one worker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JobStats {
    pub done: u64,
    pub retried: u64,
    pub failed: u64,
}

#[derive(Debug, Clone)]
pub struct JobSettings {
    pub max_attempts: u32,
    pub retry_delay: Duration,
    /// How long a claimed job stays with its worker before another may take it over.
    pub lease: Duration,
    /// Idle wait between polls of an empty queue.
    pub idle_wait: Duration,
    /// Whom signatures must come from (the `verify` step).
    pub trust: Arc<KindTrust>,
    /// The form types the office reads (the `verify` step).
    pub forms: Arc<forms::Registry>,
    /// Who answers access requests, how, and whom it tells.
    pub office: Arc<Office>,
}

/// Runs jobs until none is left to run (`run --once`): it waits for jobs scheduled for a
/// retry and for jobs leased by another (perhaps dead) process until their lease expires and
/// it can take them over. An error of the queue itself is returned.
pub async fn run_until_idle(
    store: Store,
    settings: JobSettings,
    mut stop: watch::Receiver<bool>,
) -> Result<JobStats, StoreError> {
    let mut stats = JobStats::default();
    loop {
        if *stop.borrow() {
            return Ok(stats);
        }
        if !run_batch(&store, &settings, &mut stop, &mut stats).await? {
            if store.next_job_due().await?.is_none() {
                return Ok(stats);
            }
            tokio::select! {
                _ = tokio::time::sleep(settings.idle_wait) => {}
                _ = stop.changed() => {}
            }
        }
    }
}

/// The job worker of a running daemon: each step claims a batch and runs it.
///
/// When the queue itself cannot be read or written (the database is down, a lock is held
/// past the busy timeout), the step fails: the worker logs it ("the job queue failed"),
/// pauses (doubling from `idle_wait` up to a minute) and carries on, so a failing database
/// never ends it silently while the daemon keeps running.
pub struct JobWorker {
    store: Store,
    settings: JobSettings,
    stop: watch::Receiver<bool>,
    /// What it did so far.
    pub stats: JobStats,
}

impl JobWorker {
    pub fn new(store: Store, settings: JobSettings, stop: watch::Receiver<bool>) -> JobWorker {
        JobWorker {
            store,
            settings,
            stop,
            stats: JobStats::default(),
        }
    }

    pub fn pace(&self) -> Pace {
        Pace {
            idle: self.settings.idle_wait,
            backoff_initial: self.settings.idle_wait.max(MIN_QUEUE_WAIT),
            backoff_max: MAX_QUEUE_WAIT,
        }
    }
}

impl Worker for JobWorker {
    fn name(&self) -> String {
        "the job worker".into()
    }

    async fn step(&mut self) -> anyhow::Result<Pass> {
        let claimed = run_batch(&self.store, &self.settings, &mut self.stop, &mut self.stats)
            .await
            .context("the job queue failed")?;
        Ok(if claimed { Pass::Worked } else { Pass::Idle })
    }
}

/// The longest a job interrupted by a database outage waits before it runs again.
const OUTAGE_RETRY: Duration = Duration::from_secs(5);

/// The pauses after a failure of the queue itself, shortest and longest.
const MIN_QUEUE_WAIT: Duration = Duration::from_millis(100);
const MAX_QUEUE_WAIT: Duration = Duration::from_secs(60);

/// Claims one batch of jobs and runs it (up to the stop): whether there was one.
async fn run_batch(
    store: &Store,
    settings: &JobSettings,
    stop: &mut watch::Receiver<bool>,
    stats: &mut JobStats,
) -> Result<bool, StoreError> {
    let batch = store.claim_jobs(settings.lease, BATCH).await?;
    if batch.is_empty() {
        return Ok(false);
    }
    // The whole batch is this worker's while it runs: its leases are renewed until the last
    // job ends, so that a slow step cannot let another daemon take over the rest.
    let _renewal = Renewal::start(store, batch[0].token, settings.lease);
    for job in batch {
        // A claimed job left behind at a stop is taken up again when its lease ends.
        if *stop.borrow() {
            return Ok(true);
        }
        match run_step(store, settings, &job).await {
            Ok(()) => stats.done += 1,
            Err(error) if error.claim_lost => {
                // Another worker holds the job now (this lease ran out unrenewed, as in a
                // long database outage); nothing of this run was committed, and the job is
                // that worker's to finish.
                tracing::warn!(job = job.id, kind = %job.kind, %error, "job taken over by another worker");
            }
            Err(error) if error.outage => {
                // Not the step's failure: the job gets its attempt back. If the database
                // cannot take even that, the queue is failing and the worker pauses; the job
                // is taken up again when its lease ends.
                tracing::warn!(job = job.id, kind = %job.kind, %error, "job interrupted by a database outage; it will run again");
                store
                    .release_job(
                        job.claim(),
                        &error.message,
                        settings.retry_delay.min(OUTAGE_RETRY),
                    )
                    .await?;
                stats.retried += 1;
            }
            Err(error) => {
                let give_up = job.attempts >= i64::from(settings.max_attempts);
                tracing::warn!(job = job.id, kind = %job.kind, attempts = job.attempts, give_up, %error, "job failed");
                store
                    .fail_job(job.claim(), &error.message, settings.retry_delay, give_up)
                    .await?;
                if give_up {
                    stats.failed += 1;
                } else {
                    stats.retried += 1;
                }
            }
        }
    }
    Ok(true)
}

/// Jobs claimed at once: one claim statement serves the batch.
const BATCH: i64 = 32;

/// Renews the leases of a batch's claim every third of the lease while it lives; stops when
/// dropped (the batch ended, or the worker returned).
struct Renewal(tokio::task::JoinHandle<()>);

impl Renewal {
    fn start(store: &Store, token: i64, lease: Duration) -> Renewal {
        let store = store.clone();
        let every = (lease / 3).max(Duration::from_millis(10));
        Renewal(tokio::spawn(async move {
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            loop {
                ticks.tick().await;
                if let Err(error) = store.renew_claim(token, lease).await {
                    // The finish of each job checks the claim: a lease that runs out while the
                    // database is away costs a rerun, never a double effect.
                    tracing::warn!(%error, "renewing the job lease failed; trying again");
                }
            }
        }))
    }
}

impl Drop for Renewal {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Why a job's step did not finish.
#[derive(Debug)]
pub struct StepError {
    pub message: String,
    /// The database could not be reached or dropped the connection during the step: the
    /// step itself did not fail, so the attempt is given back.
    pub outage: bool,
    /// The job's claim was lost to another worker: the job is no longer this worker's to
    /// fail or put back.
    pub claim_lost: bool,
}

impl std::fmt::Display for StepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<StoreError> for StepError {
    fn from(error: StoreError) -> StepError {
        StepError {
            outage: error.is_outage(),
            claim_lost: matches!(error, StoreError::ClaimLost(_)),
            message: error.to_string(),
        }
    }
}

impl From<String> for StepError {
    fn from(message: String) -> StepError {
        StepError {
            message,
            outage: false,
            claim_lost: false,
        }
    }
}

impl From<&str> for StepError {
    fn from(message: &str) -> StepError {
        message.to_string().into()
    }
}

/// Runs one job's step. A step commits its effect together with the job's completion.
async fn run_step(store: &Store, settings: &JobSettings, job: &Job) -> Result<(), StepError> {
    let Some(kind) = JobKind::parse(&job.kind) else {
        return Err(format!("unknown job kind {:?}", job.kind).into());
    };
    match kind {
        JobKind::Classify => {
            let id = job.document_id.ok_or("classify job without a document")?;
            let content = store.document_content(id).await.map_err(StepError::from)?;
            let classification = forms::classify(&content);
            tracing::debug!(document = id, ?classification, "classified");
            store
                .finish_classify(job.claim(), id, &classification)
                .await
                .map_err(StepError::from)
        }
        JobKind::Verify => {
            let id = job.document_id.ok_or("verify job without a document")?;
            // One read gives the content and what its correspondence needs.
            let mut facts = store
                .correspondence_facts(id)
                .await
                .map_err(StepError::from)?;
            let content = std::mem::take(&mut facts.content);
            let classification = forms::classify(&content);
            // Content that is not XML has no signature to check and no form to read.
            let (verdict, form, not_checked) = match &classification {
                forms::Classification::NotXml { reason } => {
                    (None, None, format!("signature not checked: {reason}"))
                }
                forms::Classification::Xml { .. } => {
                    // xmlsec and libxml2 state is not Send: the checks run on a blocking
                    // thread and stay there.
                    let trust = settings.trust.clone();
                    let registry = settings.forms.clone();
                    let (verdict, form) = tokio::task::spawn_blocking(move || {
                        let verdict =
                            signature::verify_by_kind(&content, &trust, chrono::Utc::now());
                        (verdict, registry.read(&content))
                    })
                    .await
                    .map_err(|e| format!("verification task failed: {e}"))?;
                    tracing::info!(document = id, indication = %verdict.indication, reason = %verdict.reason, "signature checked");
                    // No revocation source answered: a passing state of the network, not a
                    // verdict on the document. Judged again after the retry delay; only the
                    // last attempt's verdict is stored.
                    if verdict.subindication == Some("TRY_LATER")
                        && job.attempts < i64::from(settings.max_attempts)
                    {
                        return Err(format!(
                            "document {id}: revocation data could not be had ({}); judged again later",
                            verdict.reason
                        )
                        .into());
                    }
                    (Some(verdict), Some(form), String::new())
                }
            };
            let (form_type, form_error, letter) = match form {
                None => (None, None, None),
                Some(Ok(form)) => {
                    let form_type = form.form_type();
                    match form {
                        forms::Form::GeneralLetter(letter) => (Some(form_type), None, Some(letter)),
                        _ => (Some(form_type), None, None),
                    }
                }
                Some(Err(error)) => {
                    tracing::warn!(document = id, %error, "form not readable");
                    (Some(error.form), Some(error.to_string()), None)
                }
            };
            let next = next_step(
                &classification,
                form_type.unwrap_or(forms::FormType::Unknown),
            );
            let routed = (next == Next::Correspondence).then(|| {
                // The party is the signer when the signature passed, as the store reads it
                // back for a `correspond` job.
                facts.signer_pesel = verdict
                    .as_ref()
                    .filter(|v| v.passed())
                    .and_then(|v| v.identity.as_ref()?.pesel.clone());
                let form_type = form_type.map_or(provisioning::NOT_XML, |t| t.as_str());
                provisioning::route(id, &facts, form_type, letter, &settings.office)
            });
            let judgement = Judgement {
                verdict: verdict.as_ref(),
                not_checked: &not_checked,
                form_type,
                form_error,
                follow_up: match next {
                    Next::Job(kind) => Some(kind),
                    Next::Correspondence => None,
                },
                classification: Some(&classification),
                correspondence: routed.as_ref().map(|r| (&r.record, r.mail())),
            };
            store
                .finish_verify(job.claim(), id, &judgement)
                .await
                .map_err(StepError::from)
        }
        JobKind::Provision => {
            provisioning::provision(
                store,
                job,
                &settings.office,
                &settings.trust,
                &settings.forms,
            )
            .await
        }
        JobKind::Reply => provisioning::reply(store, job, &settings.office).await,
        JobKind::Correspond => {
            provisioning::correspond(store, job, &settings.office, &settings.forms).await
        }
        JobKind::Mail => provisioning::mail(store, job, &settings.office).await,
        JobKind::Receipt => provisioning::receipt(store, job, &settings.office).await,
    }
}
