//! Background work, and the clock it reads.
//!
//! Every periodic job of the platform (flushing metering, evaluating budgets, the secret sweep,
//! the policy audit, ...) is a named [`Task`] in one [`Tasks`] registry: it runs on its period,
//! when its wake-up signal fires, and on demand (`POST /api/v1/tasks/{name}/run`, `terrarium
//! tasks run NAME`), which answers once the run is over. Runs of one task never overlap. Tests
//! drive background work through that trigger instead of waiting for a period to pass.
//!
//! What is "now" for that work comes from a [`Clock`]: the system clock, plus an offset that an
//! admin may move forward only on a server started with `[server] adjustable_clock = true`
//! (tests and drills), so "forty days later" is one call instead of an edited database.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use api_types::{TaskInfo, TaskRun};
use futures::future::BoxFuture;
use time::OffsetDateTime;

/// The platform's "now" for background work.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    /// Seconds added to the system clock; only ever non-zero on an adjustable clock.
    offset_secs: Arc<AtomicI64>,
    adjustable: bool,
}

/// Why the clock was not moved.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClockError {
    #[error(
        "this server runs on the system clock; only a server started with `[server] adjustable_clock = true` (for tests and drills, never production) lets an admin move it"
    )]
    NotAdjustable,
    #[error("the clock only moves forward, by at most ten years at a time")]
    OutOfRange,
}

impl Clock {
    /// The system clock; [`Clock::advance`] refuses.
    pub fn system() -> Clock {
        Clock::default()
    }

    /// A clock an admin may move forward.
    pub fn adjustable() -> Clock {
        Clock { offset_secs: Arc::default(), adjustable: true }
    }

    pub fn is_adjustable(&self) -> bool {
        self.adjustable
    }

    pub fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + time::Duration::seconds(self.offset_secs())
    }

    /// Now as RFC 3339 UTC with second precision.
    pub fn now_rfc3339(&self) -> String {
        let now = self.now();
        let now = now.replace_nanosecond(0).unwrap_or(now);
        now.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
    }

    /// How far ahead of the system clock this clock is.
    pub fn offset_secs(&self) -> i64 {
        self.offset_secs.load(Ordering::Acquire)
    }

    /// Moves the clock forward by `by`; answers the new "now".
    pub fn advance(&self, by: Duration) -> Result<OffsetDateTime, ClockError> {
        if !self.adjustable {
            return Err(ClockError::NotAdjustable);
        }
        const TEN_YEARS: u64 = 10 * 366 * 86_400;
        let secs = by.as_secs();
        if secs == 0 || secs > TEN_YEARS {
            return Err(ClockError::OutOfRange);
        }
        self.offset_secs.fetch_add(secs as i64, Ordering::AcqRel);
        Ok(self.now())
    }
}

/// One run of a task's job: `Err` says what went wrong, for the log and `tasks list`.
pub type Job = Arc<dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// A named piece of periodic work.
pub struct Task {
    name: &'static str,
    about: &'static str,
    every: Duration,
    wake: Option<Arc<tokio::sync::Notify>>,
    at_start: bool,
    job: Job,
    /// Held for the length of a run, so runs never overlap.
    running: tokio::sync::Mutex<()>,
    last: Mutex<Option<TaskRun>>,
    runs: AtomicI64,
}

/// When a task runs, besides on demand.
pub struct TaskSpec {
    pub name: &'static str,
    /// One line for `tasks list`.
    pub about: &'static str,
    pub every: Duration,
    /// Runs at once when signalled, besides the period (a deploy wakes the budget evaluation).
    pub wake: Option<Arc<tokio::sync::Notify>>,
    /// Runs as the server starts, rather than one period later.
    pub at_start: bool,
}

impl Task {
    async fn run(&self) -> TaskRun {
        let _one_at_a_time = self.running.lock().await;
        let started = audit::now();
        let clock = Instant::now();
        let outcome = (self.job)().await;
        let run = TaskRun {
            task: self.name.to_owned(),
            started,
            millis: u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX),
            error: outcome.err(),
        };
        if let Some(error) = &run.error {
            tracing::error!(task = self.name, %error, "background task failed");
        }
        self.runs.fetch_add(1, Ordering::Relaxed);
        *self.last.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(run.clone());
        run
    }

    fn info(&self) -> TaskInfo {
        TaskInfo {
            name: self.name.to_owned(),
            about: self.about.to_owned(),
            every_secs: self.every.as_secs(),
            runs: u64::try_from(self.runs.load(Ordering::Relaxed)).unwrap_or(0),
            last: self.last.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone(),
        }
    }
}

/// Every background task of the server, by name.
#[derive(Default)]
pub struct Tasks {
    tasks: Mutex<BTreeMap<&'static str, Arc<Task>>>,
}

/// An unknown task name, with the names there are.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("there is no background task {name:?}; tasks: {}", .known.join(", "))]
pub struct UnknownTask {
    pub name: String,
    pub known: Vec<String>,
}

impl Tasks {
    pub fn new() -> Arc<Tasks> {
        Arc::new(Tasks::default())
    }

    /// Adds a task; its loop starts with [`Tasks::spawn_all`].
    pub fn add(&self, spec: TaskSpec, job: Job) {
        let task = Task {
            name: spec.name,
            about: spec.about,
            every: spec.every.max(Duration::from_millis(10)),
            wake: spec.wake,
            at_start: spec.at_start,
            job,
            running: tokio::sync::Mutex::new(()),
            last: Mutex::new(None),
            runs: AtomicI64::new(0),
        };
        self.lock().insert(spec.name, Arc::new(task));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<&'static str, Arc<Task>>> {
        self.tasks.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs task `name` now and answers when it is over (after a run in progress, if any).
    pub async fn run(&self, name: &str) -> Result<TaskRun, UnknownTask> {
        let task = {
            let tasks = self.lock();
            match tasks.get(name) {
                Some(task) => Arc::clone(task),
                None => {
                    let known = tasks.keys().map(|name| (*name).to_owned()).collect();
                    return Err(UnknownTask { name: name.to_owned(), known });
                }
            }
        };
        Ok(task.run().await)
    }

    pub fn list(&self) -> Vec<TaskInfo> {
        self.lock().values().map(|task| task.info()).collect()
    }

    /// Starts every task's loop on the current runtime.
    pub fn spawn_all(&self) {
        for task in self.lock().values() {
            let task = Arc::clone(task);
            tokio::spawn(async move {
                let first = tokio::time::Instant::now() + if task.at_start { Duration::ZERO } else { task.every };
                let mut ticks = tokio::time::interval_at(first, task.every);
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    match &task.wake {
                        Some(wake) => tokio::select! {
                            _ = ticks.tick() => {}
                            () = wake.notified() => {}
                        },
                        None => {
                            ticks.tick().await;
                        }
                    }
                    task.run().await;
                }
            });
        }
    }
}

/// A [`Job`] from an async closure.
pub fn job<F, Fut>(f: F) -> Job
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), String>> + Send + 'static,
{
    Arc::new(move || Box::pin(f()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_clock_does_not_move() {
        let clock = Clock::system();
        assert_eq!(clock.advance(Duration::from_secs(60)), Err(ClockError::NotAdjustable));
        assert_eq!(clock.offset_secs(), 0);
    }

    #[test]
    fn an_adjustable_clock_moves_forward_only() {
        let clock = Clock::adjustable();
        let before = clock.now();
        let after = clock.advance(Duration::from_secs(40 * 86_400)).unwrap();
        assert!(after - before >= time::Duration::days(40));
        assert_eq!(clock.offset_secs(), 40 * 86_400);
        assert_eq!(clock.advance(Duration::ZERO), Err(ClockError::OutOfRange));
        assert_eq!(clock.advance(Duration::from_secs(11 * 366 * 86_400)), Err(ClockError::OutOfRange));
        // Clones share the offset: every service reads the same time.
        assert_eq!(clock.clone().offset_secs(), 40 * 86_400);
    }

    #[tokio::test]
    async fn a_task_runs_on_demand_and_reports_its_outcome() {
        let tasks = Tasks::new();
        let count = Arc::new(AtomicI64::new(0));
        let counter = count.clone();
        let spec = TaskSpec {
            name: "count",
            about: "counts its runs",
            every: Duration::from_secs(3600),
            wake: None,
            at_start: false,
        };
        tasks.add(
            spec,
            job(move || {
                let counter = counter.clone();
                async move {
                    match counter.fetch_add(1, Ordering::SeqCst) {
                        0 => Ok(()),
                        _ => Err("the second run fails".to_owned()),
                    }
                }
            }),
        );
        let first = tasks.run("count").await.unwrap();
        assert_eq!((first.task.as_str(), first.error), ("count", None));
        let second = tasks.run("count").await.unwrap();
        assert_eq!(second.error.as_deref(), Some("the second run fails"));
        let listed = tasks.list();
        assert_eq!(listed[0].runs, 2);
        assert_eq!(listed[0].last.as_ref().unwrap().error.as_deref(), Some("the second run fails"));
        let unknown = tasks.run("nope").await.unwrap_err();
        assert_eq!(unknown.to_string(), "there is no background task \"nope\"; tasks: count");
    }

    #[tokio::test(start_paused = true)]
    async fn a_task_runs_on_its_period_and_when_woken() {
        let tasks = Tasks::new();
        let count = Arc::new(AtomicI64::new(0));
        let counter = count.clone();
        let wake = Arc::new(tokio::sync::Notify::new());
        let spec = TaskSpec {
            name: "tick",
            about: "counts",
            every: Duration::from_secs(60),
            wake: Some(wake.clone()),
            at_start: false,
        };
        tasks.add(
            spec,
            job(move || {
                let counter = counter.clone();
                async move {
                    counter.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                }
            }),
        );
        tasks.spawn_all();
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(count.load(Ordering::SeqCst), 0, "not before its first period");
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(count.load(Ordering::SeqCst), 1);
        wake.notify_one();
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(count.load(Ordering::SeqCst), 2);
    }
}
