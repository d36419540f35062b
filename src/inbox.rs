//! The inbox: one task per ePUAP box, moving documents into the store exactly once.
//!
//! The order is oczekujaceDokumenty → pobierzNastepny → store (one committed transaction,
//! which also enqueues the processing job) → potwierdzOdebranie. A document is confirmed only
//! after its commit, so a crash before the confirmation makes ePUAP deliver the same document
//! again, and the store's identity key turns that second delivery into a no-op.
//!
//! A confirmation whose answer is lost leaves the stored row unconfirmed. Because
//! `pobierzNastepny` returns the head of the queue until it is confirmed, the next head being
//! another document (or the box being empty) proves the earlier confirmation went through;
//! the row is then marked confirmed by inference. This assumes eurzad is the box's only
//! consumer, which is how ePUAP boxes are assigned to systems.
//!
//! Only slow-free work happens here: everything fallible about a document's meaning runs
//! later from the job queue, so a bad document never blocks the box.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use crate::document::SkrotAlgorithm;
use crate::epuap::soap::BoxRef;
use crate::epuap::{EpuapClient, EpuapError};
use crate::store::{InboxWriter, StoreError};
use crate::worker::{Pace, Pass, Worker, jitter};

#[derive(Debug, thiserror::Error)]
pub enum InboxError {
    #[error(transparent)]
    Epuap(#[from] EpuapError),
    #[error("storing a pulled document: {0}")]
    Store(#[from] StoreError),
}

/// What a drain did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DrainStats {
    /// Documents stored for the first time.
    pub stored: u64,
    /// Documents delivered again and recognised by their identity key.
    pub duplicates: u64,
    /// Confirmations ePUAP answered with success.
    pub confirmed: u64,
    /// Rows marked confirmed because the queue head moved past them.
    pub inferred: u64,
    /// Errors met (each followed by a backoff and a retry).
    pub errors: u64,
}

impl std::ops::AddAssign for DrainStats {
    fn add_assign(&mut self, other: Self) {
        self.stored += other.stored;
        self.duplicates += other.duplicates;
        self.confirmed += other.confirmed;
        self.inferred += other.inferred;
        self.errors += other.errors;
    }
}

/// How a box task paces itself.
#[derive(Debug, Clone)]
pub struct Pacing {
    pub poll_interval: Duration,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// In `--once` mode: give up after this many consecutive failed drains without progress.
    pub once_max_failures: u32,
}

/// How a box task is doing, for the daemon's status line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum BoxHealth {
    /// No drain has ended yet.
    #[default]
    Starting,
    /// The last drain ended with the box empty (or at a stop).
    Drained { at: DateTime<Utc> },
    /// The drains have failed since `since`; `error` is the last failure.
    Failing { since: DateTime<Utc>, error: String },
}

impl BoxHealth {
    /// The health after a drain that ended at `now`, with `error` if it failed. A failure
    /// after failures keeps the time the failing began.
    pub fn after(&self, error: Option<String>, now: DateTime<Utc>) -> BoxHealth {
        match (error, self) {
            (None, _) => BoxHealth::Drained { at: now },
            (Some(error), BoxHealth::Failing { since, .. }) => BoxHealth::Failing {
                since: *since,
                error,
            },
            (Some(error), _) => BoxHealth::Failing { since: now, error },
        }
    }
}

/// A box task's health, shared with whoever reports it.
pub type SharedHealth = Arc<Mutex<BoxHealth>>;

/// One box's worker.
pub struct BoxWorker {
    pub client: EpuapClient,
    /// The box's own way into the store (`Store::inbox_writer`).
    pub store: InboxWriter,
    pub mailbox: BoxRef,
    pub skrot: SkrotAlgorithm,
    pub pacing: Pacing,
    /// Updated after every drain.
    pub health: SharedHealth,
}

impl BoxWorker {
    /// Drains the box until it is empty (`run --once`). A failing peer is logged, backed off
    /// and tried again; after `once_max_failures` failed drains in a row without progress
    /// the box is given up for this run (`Err`, with what it did).
    pub async fn run_once(
        mut self,
        mut stop: watch::Receiver<bool>,
    ) -> Result<DrainStats, DrainStats> {
        let mut total = DrainStats::default();
        let mut failures = 0;
        let pace = self.pace();
        loop {
            let mut stats = DrainStats::default();
            let outcome = self.drain(&stop, &mut stats).await;
            let progressed = stats.stored + stats.duplicates + stats.confirmed > 0;
            total += stats;
            self.record_health(&outcome);
            let Err(error) = outcome else {
                return Ok(total);
            };
            total.errors += 1;
            failures = if progressed { 1 } else { failures + 1 };
            let wait = jitter(pace.backoff(failures));
            tracing::warn!(mailbox = %self.mailbox.adres, %error, retry_in = ?wait, "box drain failed");
            if failures >= self.pacing.once_max_failures {
                tracing::error!(mailbox = %self.mailbox.adres, failures, "giving up on this box for this run");
                return Err(total);
            }
            if *stop.borrow() {
                return Ok(total);
            }
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.changed() => return Ok(total),
            }
        }
    }

    /// How its drains are paced: one every `poll_interval`, and after a failed one a pause
    /// that doubles from `backoff_initial` up to `backoff_max`.
    pub fn pace(&self) -> Pace {
        Pace {
            idle: self.pacing.poll_interval,
            backoff_initial: self.pacing.backoff_initial,
            backoff_max: self.pacing.backoff_max,
        }
    }

    /// The box as a worker of the running daemon: each step is a drain, until `stop`.
    pub fn into_worker(self, stop: watch::Receiver<bool>) -> BoxDrains {
        BoxDrains {
            worker: self,
            stop,
            total: DrainStats::default(),
        }
    }

    fn record_health(&self, outcome: &Result<(), InboxError>) {
        let mut health = self.health.lock().unwrap_or_else(|e| e.into_inner());
        let error = outcome.as_ref().err().map(ToString::to_string);
        *health = health.after(error, Utc::now());
    }

    /// Pulls until the box is empty or a stop is requested. The stop is only looked at
    /// between documents: a document in flight is stored and confirmed first.
    pub async fn drain(
        &mut self,
        stop: &watch::Receiver<bool>,
        stats: &mut DrainStats,
    ) -> Result<(), InboxError> {
        let pending = self.client.pending_count(&self.mailbox).await?;
        tracing::debug!(mailbox = %self.mailbox.adres, pending, "oczekujaceDokumenty");
        if pending == 0 {
            stats.inferred += self
                .store
                .infer_confirmed(&self.mailbox.adres, None)
                .await?;
            return Ok(());
        }
        // Whether some row of this box may be unconfirmed in the store although ePUAP took the
        // confirmation: true at the start of a drain (the previous one may have ended between a
        // confirmation and its mark), false once a confirmation was answered and recorded.
        // Only then is the head-moved inference worth a query.
        let mut uncertain = true;
        while !*stop.borrow() {
            let Some(document) = self.client.fetch_next(&self.mailbox).await? else {
                stats.inferred += self
                    .store
                    .infer_confirmed(&self.mailbox.adres, None)
                    .await?;
                return Ok(());
            };
            let skrot = self.skrot.skrot(&document.content);
            let stored = self
                .store
                .store_pulled(&self.mailbox.adres, &document, &skrot)
                .await?;
            if stored.new {
                stats.stored += 1;
                tracing::info!(mailbox = %self.mailbox.adres, id = stored.id, file = %document.nazwa_pliku,
                    bytes = document.content.len(), "document stored");
            } else {
                stats.duplicates += 1;
                tracing::info!(mailbox = %self.mailbox.adres, id = stored.id, "document delivered again; already stored");
            }
            if uncertain {
                stats.inferred += self
                    .store
                    .infer_confirmed(&self.mailbox.adres, Some(stored.id))
                    .await?;
            }
            // A failed confirmation ends this drain, and the next one starts uncertain.
            self.client.confirm_receipt(&self.mailbox, &skrot).await?;
            self.store.mark_confirmed(stored.id).await?;
            uncertain = false;
            stats.confirmed += 1;
        }
        Ok(())
    }
}

/// A box drained by the running daemon ([`crate::worker::run`]): never ends on a failing
/// peer, so one box failing never stops the others.
pub struct BoxDrains {
    worker: BoxWorker,
    stop: watch::Receiver<bool>,
    /// What its drains did so far.
    pub total: DrainStats,
}

impl Worker for BoxDrains {
    fn name(&self) -> String {
        format!("the task of box {}", self.worker.mailbox.adres)
    }

    async fn step(&mut self) -> anyhow::Result<Pass> {
        let mut stats = DrainStats::default();
        let outcome = self.worker.drain(&self.stop, &mut stats).await;
        self.total += stats;
        self.worker.record_health(&outcome);
        match outcome {
            Ok(()) => Ok(Pass::Idle),
            Err(error) => {
                self.total.errors += 1;
                Err(anyhow::Error::new(error)
                    .context(format!("box drain failed ({})", self.worker.mailbox.adres)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_box_fails_from_its_first_failure_until_a_drain_ends_well() {
        let at = |minute: u32| {
            DateTime::parse_from_rfc3339(&format!("2026-11-27T15:{minute:02}:00Z"))
                .unwrap()
                .with_timezone(&Utc)
        };
        let failing = BoxHealth::Starting.after(Some("cannot reach ePUAP".into()), at(1));
        let still = failing.after(Some("HTTP 500".into()), at(2));
        assert_eq!(
            still,
            BoxHealth::Failing {
                since: at(1),
                error: "HTTP 500".into()
            }
        );
        let drained = still.after(None, at(3));
        assert_eq!(drained, BoxHealth::Drained { at: at(3) });
        assert_eq!(
            drained.after(Some("timeout".into()), at(4)),
            BoxHealth::Failing {
                since: at(4),
                error: "timeout".into()
            }
        );
    }
}
