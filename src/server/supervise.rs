//! Supervision of the daemon's long-lived tasks (the mail worker, one scheduler per scheduled
//! connector): a task that ends while the daemon is not stopping, by returning or by a panic,
//! is logged, counted in `/metrics` (`hrsync_task_restarts_total`) and started again after a
//! backoff that grows from [`Backoff::first`] to [`Backoff::max`], so a task that dies at once
//! does not spin. [`Tasks`] keeps each task's state for `/healthz`: a task is unhealthy while
//! it is down (waiting to be restarted) and while it has restarted [`RESTARTS_UNHEALTHY`] times
//! or more within [`RECENT`].
//!
//! Only the end of a task that returns after the daemon's stop was asked for is a clean stop.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

/// How far back restarts count as recent.
pub const RECENT: Duration = Duration::from_secs(10 * 60);
/// A task that restarted this many times within [`RECENT`] is reported unhealthy even while it
/// runs: it keeps dying.
pub const RESTARTS_UNHEALTHY: usize = 3;

/// Which task: its kind (`mail_worker`, `scheduler`) and, for a scheduler, its connector.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct TaskName {
    pub kind: &'static str,
    pub connector: Option<String>,
}

impl TaskName {
    pub fn mail_worker() -> TaskName {
        TaskName {
            kind: "mail_worker",
            connector: None,
        }
    }

    pub fn scheduler(connector: &str) -> TaskName {
        TaskName {
            kind: "scheduler",
            connector: Some(connector.to_string()),
        }
    }
}

impl std::fmt::Display for TaskName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.connector {
            Some(c) => write!(f, "{}:{c}", self.kind),
            None => f.write_str(self.kind),
        }
    }
}

/// Where a task is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskState {
    Running,
    /// Ended unexpectedly; waiting for its restart.
    Down,
    /// Ended because the daemon is stopping.
    Stopped,
}

impl TaskState {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Running => "running",
            TaskState::Down => "down",
            TaskState::Stopped => "stopped",
        }
    }
}

struct Entry {
    state: TaskState,
    restarts: u64,
    recent: VecDeque<Instant>,
}

/// A task's state as `/healthz` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskStatus {
    pub name: TaskName,
    pub state: TaskState,
    /// Restarts since the daemon started.
    pub restarts: u64,
    /// Restarts within [`RECENT`].
    pub recent_restarts: usize,
}

impl TaskStatus {
    /// Down, or restarting again and again.
    pub fn healthy(&self) -> bool {
        self.state != TaskState::Down && self.recent_restarts < RESTARTS_UNHEALTHY
    }
}

/// The supervised tasks of one daemon.
#[derive(Default)]
pub struct Tasks {
    entries: Mutex<BTreeMap<TaskName, Entry>>,
}

impl Tasks {
    fn update(&self, name: &TaskName, f: impl FnOnce(&mut Entry)) {
        // A poisoned lock only means a panic elsewhere mid-update; the states stay usable.
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let entry = entries.entry(name.clone()).or_insert_with(|| Entry {
            state: TaskState::Running,
            restarts: 0,
            recent: VecDeque::new(),
        });
        f(entry);
    }

    /// Lists a task before its supervisor first starts it, so `/healthz` shows it from the
    /// beginning.
    pub fn register(&self, name: &TaskName) {
        self.update(name, |_| {});
    }

    /// Every task's state, in name order.
    pub fn statuses(&self) -> Vec<TaskStatus> {
        let now = Instant::now();
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .iter()
            .map(|(name, e)| TaskStatus {
                name: name.clone(),
                state: e.state,
                restarts: e.restarts,
                recent_restarts: e
                    .recent
                    .iter()
                    .filter(|t| now.duration_since(**t) < RECENT)
                    .count(),
            })
            .collect()
    }

    /// The state of one task, if it was ever started.
    pub fn status(&self, name: &TaskName) -> Option<TaskStatus> {
        self.statuses().into_iter().find(|s| &s.name == name)
    }
}

/// How long to wait before a restart: `first`, doubling up to `max`; back to `first` once a
/// task ran for `max` or longer before it ended.
#[derive(Clone, Copy, Debug)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            first: Duration::from_secs(1),
            max: Duration::from_secs(60),
        }
    }
}

/// Aborts the task when dropped, so a supervisor that is itself dropped leaves nothing behind.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs the task `start` makes, and makes and starts it again whenever it ends while `stop`
/// is not set; returns once it ended with `stop` set.
pub async fn supervise<F, Fut>(
    tasks: Arc<Tasks>,
    name: TaskName,
    mut stop: watch::Receiver<bool>,
    backoff: Backoff,
    mut start: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut wait = backoff.first;
    loop {
        tasks.update(&name, |e| e.state = TaskState::Running);
        let started = Instant::now();
        let mut handle = AbortOnDrop(tokio::spawn(start()));
        let ended = (&mut handle.0).await;
        if *stop.borrow() {
            tasks.update(&name, |e| e.state = TaskState::Stopped);
            return;
        }
        match ended {
            Ok(()) => {
                tracing::error!(task = %name, "A daemon task ended unexpectedly; restarting it")
            }
            Err(e) if e.is_panic() => {
                let message = panic_message(e.into_panic());
                tracing::error!(task = %name, panic = %message, "A daemon task panicked; restarting it")
            }
            Err(_) => tracing::error!(task = %name, "A daemon task was cancelled; restarting it"),
        }
        let now = Instant::now();
        tasks.update(&name, |e| {
            e.state = TaskState::Down;
            e.restarts += 1;
            e.recent.push_back(now);
            while e
                .recent
                .front()
                .is_some_and(|t| now.duration_since(*t) >= RECENT)
            {
                e.recent.pop_front();
            }
        });
        crate::metrics::task_restarted(name.kind, name.connector.as_deref());
        if now.duration_since(started) >= backoff.max {
            wait = backoff.first;
        }
        tracing::info!(task = %name, wait_ms = wait.as_millis() as u64, "Restarting the task after a pause");
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.wait_for(|s| *s) => {
                tasks.update(&name, |e| e.state = TaskState::Stopped);
                return;
            }
        }
        wait = (wait * 2).min(backoff.max);
    }
}

/// The text of a panic's payload, for the log.
fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "(a panic without a message)".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn quick() -> Backoff {
        Backoff {
            first: Duration::from_millis(10),
            max: Duration::from_millis(40),
        }
    }

    fn restarts_in_metrics(kind: &str) -> String {
        let text = crate::metrics::render(&[]);
        text.lines()
            .find(|l| l.starts_with(&format!("hrsync_task_restarts_total{{task=\"{kind}\"")))
            .unwrap_or("")
            .to_string()
    }

    #[tokio::test]
    async fn a_task_that_panics_once_is_restarted_counted_and_healthy_again() {
        // Arrange: a task that panics the first time and then runs until the stop.
        let tasks = Arc::new(Tasks::default());
        let (stop_tx, stop) = watch::channel(false);
        let starts = Arc::new(AtomicUsize::new(0));
        let name = TaskName {
            kind: "test_panics_once",
            connector: None,
        };
        let supervisor = {
            let (tasks, starts, name, stop) = (
                Arc::clone(&tasks),
                Arc::clone(&starts),
                name.clone(),
                stop.clone(),
            );
            tokio::spawn(supervise(tasks, name, stop.clone(), quick(), move || {
                let n = starts.fetch_add(1, Ordering::SeqCst);
                let mut stop = stop.clone();
                async move {
                    if n == 0 {
                        panic!("the first start fails");
                    }
                    let _ = stop.wait_for(|s| *s).await;
                }
            }))
        };

        // Act: wait for the second start.
        for _ in 0..200 {
            if starts.load(Ordering::SeqCst) >= 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let running = tasks.status(&name).unwrap();
        stop_tx.send(true).unwrap();
        supervisor.await.unwrap();

        // Assert: started twice, counted once, running (and healthy) after the restart, and a
        // stop is a clean end, not another restart.
        assert_eq!(starts.load(Ordering::SeqCst), 2);
        assert_eq!(running.state, TaskState::Running);
        assert_eq!((running.restarts, running.recent_restarts), (1, 1));
        assert!(running.healthy());
        assert_eq!(
            restarts_in_metrics("test_panics_once"),
            "hrsync_task_restarts_total{task=\"test_panics_once\"} 1"
        );
        let stopped = tasks.status(&name).unwrap();
        assert_eq!((stopped.state, stopped.restarts), (TaskState::Stopped, 1));
    }

    #[tokio::test]
    async fn a_task_that_keeps_ending_is_unhealthy_and_its_restarts_slow_down() {
        // Arrange: a task that returns at once, every time.
        let tasks = Arc::new(Tasks::default());
        let (stop_tx, stop) = watch::channel(false);
        let starts = Arc::new(Mutex::new(Vec::<Instant>::new()));
        let name = TaskName::scheduler("test_keeps_ending");
        let supervisor = {
            let (tasks, starts, name) = (Arc::clone(&tasks), Arc::clone(&starts), name.clone());
            tokio::spawn(supervise(tasks, name, stop, quick(), move || {
                starts.lock().unwrap().push(Instant::now());
                async {}
            }))
        };

        // Act
        for _ in 0..200 {
            if starts.lock().unwrap().len() >= 5 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let status = tasks.status(&name).unwrap();
        stop_tx.send(true).unwrap();
        supervisor.await.unwrap();

        // Assert: reported unhealthy; the pauses between starts grew and stayed within max.
        assert!(status.recent_restarts >= RESTARTS_UNHEALTHY, "{status:?}");
        assert!(!status.healthy());
        let starts = starts.lock().unwrap();
        let gaps: Vec<Duration> = starts.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(gaps[0] >= Duration::from_millis(10), "{gaps:?}");
        assert!(gaps[3] >= Duration::from_millis(40), "{gaps:?}");
        assert!(
            restarts_in_metrics("scheduler").contains("connector=\"test_keeps_ending\""),
            "{}",
            crate::metrics::render(&[])
        );
    }
}
