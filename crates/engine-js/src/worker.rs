//! The JavaScript worker threads: each runs a current-thread tokio runtime and owns the instances
//! of the apps pinned to it, so QuickJS values never cross threads.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use runtime::{FunctionRequest, FunctionResponse, InvokeError, LogLevel, LogLine};
use tokio::sync::{mpsc, oneshot};

use crate::AppImage;
use crate::instance::{CpuBudget, Disposition, Instance};

/// A message to a worker.
#[expect(
    clippy::large_enum_variant,
    reason = "every request is an Invoke: boxing it would add an allocation to the request path for the rare Unload"
)]
pub(crate) enum Job {
    Invoke(InvokeJob),
    /// The app was dropped: release its instances.
    Unload {
        app_id: u64,
    },
}

pub(crate) struct InvokeJob {
    pub app: Arc<AppImage>,
    pub entry: String,
    pub request: FunctionRequest,
    /// The wall-clock deadline of the whole invocation, queueing included.
    pub deadline: Instant,
    pub reply: Reply,
}

/// Where the outcome of one invocation goes; failures are also written to the app's log, once.
pub(crate) struct Reply {
    pub sender: Option<oneshot::Sender<Result<FunctionResponse, InvokeError>>>,
    pub app: Arc<AppImage>,
    pub request_id: String,
}

impl Reply {
    /// Whether the caller still waits for the outcome.
    pub(crate) fn is_pending(&self) -> bool {
        self.sender.is_some()
    }

    pub(crate) fn send(&mut self, result: Result<FunctionResponse, InvokeError>) {
        let Some(sender) = self.sender.take() else { return };
        // A caller that gave up (its own timeout) has already logged the failure it returned.
        if sender.is_closed() {
            return;
        }
        if let Err(error) = &result {
            log_failure(&self.app, &self.request_id, error);
        }
        let _ = sender.send(result);
    }
}

/// Writes why an invocation failed to the app's log at error level.
pub(crate) fn log_failure(app: &AppImage, request_id: &str, error: &InvokeError) {
    tracing::debug!(app = %app.key, request_id, error_code = error.code(), "function invocation failed");
    app.host.log.write(LogLine {
        app: app.key.clone(),
        request_id: request_id.to_owned(),
        level: LogLevel::Error,
        message: format!("request failed ({}): {error}", error.code()),
    });
}

/// The sending side of one worker.
#[derive(Clone)]
pub(crate) struct WorkerHandle {
    sender: mpsc::UnboundedSender<Job>,
    /// Invocations sent and not yet picked up, for admission control.
    queued: Arc<AtomicUsize>,
    capacity: usize,
}

impl WorkerHandle {
    /// Queues an invocation, or gives it back when the worker's queue is full or it has stopped.
    #[expect(clippy::result_large_err, reason = "the job is handed back whole, without an allocation, to be refused")]
    pub(crate) fn invoke(&self, job: InvokeJob) -> Result<(), InvokeJob> {
        if self.queued.fetch_add(1, Ordering::AcqRel) >= self.capacity {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            return Err(job);
        }
        self.sender.send(Job::Invoke(job)).map_err(|returned| {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            match returned.0 {
                Job::Invoke(job) => job,
                Job::Unload { .. } => unreachable!("an invoke job was sent"),
            }
        })
    }

    pub(crate) fn unload(&self, app_id: u64) {
        let _ = self.sender.send(Job::Unload { app_id });
    }
}

/// How many instances of one app a worker keeps and runs.
#[derive(Clone, Copy)]
pub(crate) struct PoolLimits {
    pub max_instances_per_app: usize,
    pub idle_instances_per_app: usize,
    /// Invocations of one app that may wait for a free instance.
    pub max_waiting_per_app: usize,
    /// Idle instances older than this are dropped; `None` keeps them until the app is dropped.
    pub idle_instance_timeout: Option<Duration>,
}

/// Starts one worker thread.
pub(crate) fn spawn_worker(index: usize, stack_bytes: usize, queue_capacity: usize, pool: PoolLimits) -> WorkerHandle {
    let (sender, receiver) = mpsc::unbounded_channel();
    let queued = Arc::new(AtomicUsize::new(0));
    let worker_queued = queued.clone();
    std::thread::Builder::new()
        .name(format!("js-worker-{index}"))
        .stack_size(stack_bytes)
        .spawn(move || run_worker(receiver, worker_queued, pool))
        .expect("the operating system starts a JavaScript worker thread");
    WorkerHandle { sender, queued, capacity: queue_capacity }
}

/// The instances of one app on this worker.
#[derive(Default)]
struct AppSlot {
    /// Warm instances with the time each last finished a request.
    idle: Vec<(Instance, Instant)>,
    /// Instances serving a request right now.
    busy: usize,
    /// Invocations waiting for an instance because `busy` is at the limit.
    waiting: VecDeque<InvokeJob>,
}

struct WorkerState {
    apps: HashMap<u64, AppSlot>,
    pool: PoolLimits,
}

fn run_worker(mut receiver: mpsc::UnboundedReceiver<Job>, queued: Arc<AtomicUsize>, pool: PoolLimits) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread tokio runtime for a JavaScript worker");
    let local = tokio::task::LocalSet::new();
    let state = Rc::new(RefCell::new(WorkerState { apps: HashMap::new(), pool }));
    local.block_on(&runtime, async move {
        // Without a timeout the sweep never fires: an hour is as good as never.
        let sweep_every = pool
            .idle_instance_timeout
            .map_or(Duration::from_secs(3600), |timeout| (timeout / 2).max(Duration::from_millis(100)));
        let mut sweep = tokio::time::interval(sweep_every);
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                job = receiver.recv() => match job {
                    Some(Job::Invoke(job)) => {
                        queued.fetch_sub(1, Ordering::AcqRel);
                        dispatch(&state, job);
                    }
                    Some(Job::Unload { app_id }) => {
                        // Idle instances are dropped here; busy ones when their request ends.
                        state.borrow_mut().apps.remove(&app_id);
                    }
                    None => break,
                },
                _ = sweep.tick(), if pool.idle_instance_timeout.is_some() => drop_stale_instances(&state),
            }
        }
    });
}

/// Drops instances that have been idle longer than the pool's timeout.
fn drop_stale_instances(state: &Rc<RefCell<WorkerState>>) {
    let mut worker = state.borrow_mut();
    let Some(timeout) = worker.pool.idle_instance_timeout else { return };
    let now = Instant::now();
    for slot in worker.apps.values_mut() {
        slot.idle.retain(|(_, idle_since)| now.duration_since(*idle_since) < timeout);
    }
}

/// Starts an invocation on an idle or new instance, or queues it behind the app's busy ones.
fn dispatch(state: &Rc<RefCell<WorkerState>>, job: InvokeJob) {
    let mut worker = state.borrow_mut();
    let max_instances = worker.pool.max_instances_per_app;
    let max_waiting = worker.pool.max_waiting_per_app;
    let slot = worker.apps.entry(job.app.id).or_default();
    if let Some((instance, _)) = slot.idle.pop() {
        slot.busy += 1;
        tokio::task::spawn_local(serve(state.clone(), Some(instance), job));
    } else if slot.busy < max_instances {
        slot.busy += 1;
        tokio::task::spawn_local(serve(state.clone(), None, job));
    } else if slot.waiting.len() < max_waiting {
        slot.waiting.push_back(job);
    } else {
        let mut job = job;
        job.reply.send(Err(InvokeError::Overloaded));
    }
}

async fn serve(state: Rc<RefCell<WorkerState>>, instance: Option<Instance>, mut job: InvokeJob) {
    let app_id = job.app.id;
    if Instant::now() >= job.deadline {
        job.reply.send(Err(InvokeError::WallTimeout { limit_ms: job.app.limits.wall_timeout_ms }));
        release(&state, app_id, instance);
        return;
    }
    let mut budget = CpuBudget::new(job.app.limits.cpu_ms_per_request).with_wall_deadline(job.deadline);
    let mut instance = match instance {
        Some(instance) => instance,
        None => match Instance::new(&job.app, &mut budget) {
            Ok(instance) => instance,
            Err(error) => {
                job.reply.send(Err(error));
                release(&state, app_id, None);
                return;
            }
        },
    };
    let disposition = instance.serve(job, budget).await;
    release(&state, app_id, (disposition == Disposition::Keep).then_some(instance));
}

/// Returns an instance to its app's pool (or drops it) and starts the next waiting invocation.
fn release(state: &Rc<RefCell<WorkerState>>, app_id: u64, instance: Option<Instance>) {
    let mut worker = state.borrow_mut();
    let idle_limit = worker.pool.idle_instances_per_app;
    // An unloaded app has no slot any more: its instance is dropped here.
    let Some(slot) = worker.apps.get_mut(&app_id) else { return };
    if let Some(next) = slot.waiting.pop_front() {
        tokio::task::spawn_local(serve(state.clone(), instance, next));
        return;
    }
    slot.busy -= 1;
    if let Some(instance) = instance
        && slot.idle.len() < idle_limit
    {
        slot.idle.push((instance, Instant::now()));
    }
}
