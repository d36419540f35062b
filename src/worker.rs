//! The daemon's background work, one way: a [`Worker`] is a name and a step; [`run`] steps it
//! until the stop, at once while it finds work, after its idle wait when it finds none, and
//! after a growing pause when a step fails (logged, never the end of the worker).
//! [`supervise`] watches the daemon's tasks and stops the daemon when one of them ends before
//! the stop (a panic: a bug).

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What a step found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// It did something: step again at once.
    Worked,
    /// Nothing to do: step again after the idle wait.
    Idle,
}

/// A unit of background work, stepped by [`run`].
pub trait Worker: Send + 'static {
    /// How the log and the supervisor name it.
    fn name(&self) -> String;
    /// One step. An error is logged and the step is tried again after a pause.
    fn step(&mut self) -> impl Future<Output = anyhow::Result<Pass>> + Send;
}

/// How often a worker steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pace {
    /// The wait after a step that found nothing to do.
    pub idle: Duration,
    /// The pause after a failed step, doubling with each failure in a row up to `backoff_max`.
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
}

impl Pace {
    /// The pause after `failures` failed steps in a row (1 or more).
    pub fn backoff(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(20);
        self.backoff_initial
            .saturating_mul(1 << doublings)
            .min(self.backoff_max)
    }
}

/// Full jitter in [delay/2, delay], so that workers failing together do not retry in
/// lockstep.
pub fn jitter(delay: Duration) -> Duration {
    let half = delay / 2;
    half + half.mul_f64(rand::random::<f64>())
}

/// Steps `worker` until `stop` is sent. A step in progress when the stop comes is finished
/// (a step is the worker's unit of consistency), then the worker is handed back (with what
/// it counted).
pub async fn run<W: Worker>(mut worker: W, pace: Pace, mut stop: watch::Receiver<bool>) -> W {
    let mut failures = 0u32;
    loop {
        if *stop.borrow() {
            return worker;
        }
        let wait = match worker.step().await {
            Ok(Pass::Worked) => {
                failures = 0;
                continue;
            }
            Ok(Pass::Idle) => {
                failures = 0;
                pace.idle
            }
            Err(error) => {
                failures += 1;
                let wait = jitter(pace.backoff(failures));
                tracing::warn!(worker = %worker.name(), error = format!("{error:#}"), failures, retry_in = ?wait, "a step failed; the worker carries on after a pause");
                wait
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => {}
        }
    }
}

/// A task whose end can be seen without waiting for it.
pub trait Finished {
    fn is_finished(&self) -> bool;
}

impl<T> Finished for JoinHandle<T> {
    fn is_finished(&self) -> bool {
        JoinHandle::is_finished(self)
    }
}

/// An optional task (one the configuration may leave out) as [`supervise`] watches it.
pub fn as_finished<T: Finished>(task: &Option<T>) -> Option<&dyn Finished> {
    task.as_ref().map(|t| t as &dyn Finished)
}

/// Waits until `stop` is sent, or until one of `tasks` ends first: then it logs which, sends
/// the stop to the others, and returns the task's name. The daemon's one supervisor.
pub async fn supervise(
    tasks: &[(String, &dyn Finished)],
    stop: &watch::Sender<bool>,
    interval: Duration,
) -> Option<String> {
    let mut stopped = stop.subscribe();
    loop {
        if *stopped.borrow() {
            return None;
        }
        if let Some((name, _)) = tasks.iter().find(|(_, task)| task.is_finished()) {
            tracing::error!(task = %name, "a task ended before the stop: stopping the daemon");
            let _ = stop.send(true);
            return Some(name.clone());
        }
        tokio::select! {
            _ = stopped.changed() => {}
            _ = tokio::time::sleep(interval) => {}
        }
    }
}

/// Awaits a task after the stop was sent, for at most `deadline` (none: as long as it
/// takes). A task still running then is aborted and named in the log, and `None` is
/// returned: its unit of work rolls back with its transaction and is done again after the
/// restart (a document is pulled again, a job runs again when its lease ends).
pub async fn finish<T>(
    name: &str,
    mut task: JoinHandle<T>,
    deadline: Option<Duration>,
) -> Result<Option<T>, tokio::task::JoinError> {
    let Some(deadline) = deadline else {
        return task.await.map(Some);
    };
    match tokio::time::timeout(deadline, &mut task).await {
        Ok(done) => done.map(Some),
        Err(_) => {
            tracing::warn!(task = %name, ?deadline, "the task did not stop in time: aborted");
            task.abort();
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    struct Scripted {
        steps: Arc<AtomicU32>,
        script: Vec<anyhow::Result<Pass>>,
    }

    impl Worker for Scripted {
        fn name(&self) -> String {
            "scripted".into()
        }
        async fn step(&mut self) -> anyhow::Result<Pass> {
            self.steps.fetch_add(1, Ordering::SeqCst);
            if self.script.is_empty() {
                Ok(Pass::Idle)
            } else {
                self.script.remove(0)
            }
        }
    }

    const PACE: Pace = Pace {
        idle: Duration::from_secs(10),
        backoff_initial: Duration::from_secs(1),
        backoff_max: Duration::from_secs(4),
    };

    #[tokio::test(start_paused = true)]
    async fn a_task_that_does_not_stop_by_the_deadline_is_aborted() {
        let quick = tokio::spawn(async { 7 });
        assert_eq!(
            finish("quick", quick, Some(Duration::from_secs(1)))
                .await
                .unwrap(),
            Some(7)
        );
        let (_keep, mut never) = watch::channel(false);
        let stubborn = tokio::spawn(async move {
            let _ = never.changed().await;
        });
        let abort = stubborn.abort_handle();
        assert_eq!(
            finish("stubborn", stubborn, Some(Duration::from_secs(30)))
                .await
                .unwrap(),
            None
        );
        tokio::task::yield_now().await;
        assert!(abort.is_finished(), "aborted");
        let slow = tokio::spawn(async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            8
        });
        assert_eq!(
            finish("slow", slow, None).await.unwrap(),
            Some(8),
            "no deadline: waited"
        );
    }

    #[test]
    fn the_pause_after_failures_doubles_up_to_its_maximum() {
        let pauses: Vec<u64> = (1..=5).map(|n| PACE.backoff(n).as_secs()).collect();
        assert_eq!(pauses, [1, 2, 4, 4, 4]);
        assert_eq!(PACE.backoff(u32::MAX), Duration::from_secs(4));
    }

    #[tokio::test(start_paused = true)]
    async fn a_worker_steps_at_once_while_it_works_waits_when_idle_and_backs_off_on_errors() {
        let steps = Arc::new(AtomicU32::new(0));
        let worker = Scripted {
            steps: steps.clone(),
            script: vec![
                Ok(Pass::Worked),
                Ok(Pass::Worked),
                Err(anyhow::anyhow!("the database is down")),
                Err(anyhow::anyhow!("the database is down")),
                Ok(Pass::Idle),
            ],
        };
        let (stop_tx, stop_rx) = watch::channel(false);
        let task = tokio::spawn(run(worker, PACE, stop_rx));
        let at = |ms: u64| tokio::time::sleep(Duration::from_millis(ms));
        // Two steps that worked and the first failure, all at once.
        at(1).await;
        assert_eq!(steps.load(Ordering::SeqCst), 3);
        // The pauses after the failures: 0.5–1 s, then 1–2 s (jittered), then idle.
        at(480).await;
        assert_eq!(
            steps.load(Ordering::SeqCst),
            3,
            "not before half the first pause"
        );
        at(2_600).await;
        assert_eq!(
            steps.load(Ordering::SeqCst),
            5,
            "both pauses over by 3 s: idle now"
        );
        // The idle wait is 10 s: from the fifth step (1.5–3 s) to the sixth.
        at(8_400).await;
        assert_eq!(steps.load(Ordering::SeqCst), 5, "the idle wait is 10 s");
        at(2_200).await;
        assert_eq!(steps.load(Ordering::SeqCst), 6);
        // The stop ends the wait at once.
        stop_tx.send(true).unwrap();
        task.await.unwrap();
        assert_eq!(steps.load(Ordering::SeqCst), 6);
    }

    /// A task that panics while the others run on is named, and the stop is sent to the
    /// others; a stop sent first ends the watch with no name.
    #[tokio::test(flavor = "multi_thread")]
    async fn supervise_names_a_task_that_ends_before_the_stop_and_stops_the_rest() {
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut stop = stop_rx.clone();
        let steady = tokio::spawn(async move {
            let _ = stop.wait_for(|s| *s).await;
        });
        let failing = tokio::spawn(async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            panic!("a bug in a task");
        });
        let tasks: Vec<(String, &dyn Finished)> =
            vec![("steady".into(), &steady), ("failing".into(), &failing)];
        let ended = supervise(&tasks, &stop_tx, Duration::from_millis(10)).await;
        assert_eq!(ended.as_deref(), Some("failing"));
        assert!(*stop_rx.borrow(), "the others were told to stop");
        steady.await.unwrap();
        assert!(failing.await.unwrap_err().is_panic());

        let (stop_tx, _stop_rx) = watch::channel(false);
        let mut stop = stop_tx.subscribe();
        let steady = tokio::spawn(async move {
            let _ = stop.wait_for(|s| *s).await;
        });
        let tasks: Vec<(String, &dyn Finished)> = vec![("steady".into(), &steady)];
        let sender = stop_tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let _ = sender.send(true);
        });
        let watched = tokio::time::timeout(
            Duration::from_secs(30),
            supervise(&tasks, &stop_tx, Duration::from_secs(600)),
        )
        .await
        .expect("a stop ends the watch, not the next look ten minutes on");
        assert_eq!(watched, None);
    }
}
