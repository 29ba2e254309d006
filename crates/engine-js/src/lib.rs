//! JavaScript edge functions on QuickJS: the [`JsEngine`] implementation of `runtime::Engine`.
//!
//! - **Isolation.** Every app runs in instances of its own: one QuickJS runtime and context each,
//!   with the app's memory and stack limits, so no state is shared between apps. An instance serves
//!   one request at a time, so every limit is charged to exactly one request and a limit that
//!   discards an instance never takes another request down with it.
//! - **Threads.** Instances live on a small pool of worker threads, each with a current-thread tokio
//!   runtime. An app is pinned to one worker by a hash of its key; `invoke` sends the request there
//!   over a channel and awaits a oneshot, so callers can be any tokio task on any thread.
//! - **Loading.** `Engine::load` compiles every module to bytecode, resolving imports within the
//!   bundle, and evaluates each function's entry once to check its `export default { fetch }`,
//!   so every fault a builder can make shows up at deploy time with the file's name.
//! - **Instances** are created on the first request (well under a millisecond in a release build),
//!   kept warm for the next, and recreated after a limit was hit.
//! - **Limits.** CPU time is measured around each entry into JavaScript, so awaiting a slow `fetch`
//!   costs nothing; an interrupt handler stops JavaScript at the deadline. Memory and stack are
//!   QuickJS's own per-runtime limits. The wall-clock deadline covers queueing, running and
//!   collecting a streamed body.
//! - **Web APIs** (`Request`, `Response`, `fetch`, `URL`, streams, …) are a JavaScript prelude over a
//!   few host functions (`prelude/`, `host.rs`). Only its core is evaluated in every instance; the
//!   other parts load when app code first touches one of their globals, which cuts the prelude's
//!   share of an instance's heap roughly in half. Every part is compiled to bytecode once per process.

pub mod config;
mod errors;
mod host;
mod instance;
mod modules;
mod worker;

pub use instance::thread_cpu_time;

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use deployment::{AppKey, FunctionLimits};
use futures::future::BoxFuture;
use runtime::{AppCode, Engine, FunctionRequest, FunctionResponse, HostServices, InvokeError, LoadError, LoadedApp};
use tokio::sync::oneshot;

use crate::instance::{CpuBudget, Instance};
use crate::modules::CompiledModules;
use crate::worker::{InvokeJob, PoolLimits, Reply, WorkerHandle, log_failure};

/// Native stack kept free below an app's JavaScript stack limit on a worker thread, for the
/// engine's own frames and native code between QuickJS's stack checks.
const STACK_RESERVE_BYTES: usize = 512 * 1024;

/// How the engine runs. There is no `Default`: the caller spells out every value.
#[derive(Clone, Debug)]
pub struct JsEngineConfig {
    /// Threads that run JavaScript. An app is pinned to one of them.
    pub worker_threads: usize,
    /// Native stack of each worker thread. Apps' `stack_bytes` are capped at this minus a reserve
    /// of 512 KiB, so deep recursion ends in a `RangeError`, never in a crashed process.
    /// At least 1 MiB.
    pub worker_stack_bytes: usize,
    /// Invocations that may wait in one worker's queue, and for one app's instances to become
    /// free; beyond it `invoke` fails with `Overloaded`.
    pub queue_capacity_per_worker: usize,
    /// Instances of one app that may serve requests at the same time on its worker (a request
    /// awaiting `fetch` holds its instance); further requests wait for one to become free.
    pub max_instances_per_app: usize,
    /// Warm instances kept per app between requests.
    pub idle_instances_per_app: usize,
    /// Warm instances unused for this long are dropped, so memory follows the apps in use rather
    /// than every app ever called; the next request creates a new one (well under a millisecond).
    /// `None` keeps them until the app is dropped.
    pub idle_instance_timeout: Option<Duration>,
}

/// The JavaScript engine. Cheap to share behind an `Arc`; its worker threads end when the engine
/// and every app loaded from it are dropped.
pub struct JsEngine {
    config: JsEngineConfig,
    workers: Vec<WorkerHandle>,
}

impl JsEngine {
    /// Starts the worker threads.
    ///
    /// # Panics
    /// When `worker_threads` or `max_instances_per_app` is zero or `worker_stack_bytes` is below 1 MiB:
    /// these are programming errors in the caller's configuration.
    pub fn new(config: JsEngineConfig) -> JsEngine {
        assert!(config.worker_threads > 0, "JsEngineConfig::worker_threads must be at least 1");
        assert!(config.max_instances_per_app > 0, "JsEngineConfig::max_instances_per_app must be at least 1");
        assert!(config.worker_stack_bytes >= 1024 * 1024, "JsEngineConfig::worker_stack_bytes must be at least 1 MiB");
        let pool = PoolLimits {
            max_instances_per_app: config.max_instances_per_app,
            idle_instances_per_app: config.idle_instances_per_app,
            max_waiting_per_app: config.queue_capacity_per_worker,
            idle_instance_timeout: config.idle_instance_timeout,
        };
        let workers = (0..config.worker_threads)
            .map(|index| worker::spawn_worker(index, config.worker_stack_bytes, config.queue_capacity_per_worker, pool))
            .collect();
        JsEngine { config, workers }
    }

    fn worker_for(&self, key: &AppKey) -> &WorkerHandle {
        let mut hasher = DefaultHasher::new();
        key.hash(&mut hasher);
        let index = (hasher.finish() % self.workers.len() as u64) as usize;
        &self.workers[index]
    }
}

/// Everything a worker needs to create instances of one loaded app.
pub(crate) struct AppImage {
    /// Unique per loaded app in this process.
    pub id: u64,
    pub key: AppKey,
    pub modules: Arc<CompiledModules>,
    pub vars: BTreeMap<String, String>,
    /// The app's secrets, set on `env` after the vars.
    pub secrets: BTreeMap<String, runtime::SecretValue>,
    /// The deployment's limits, with the stack capped to what the worker threads can hold.
    pub limits: FunctionLimits,
    pub host: HostServices,
}

impl Engine for JsEngine {
    fn load(&self, code: AppCode) -> Result<Arc<dyn LoadedApp>, LoadError> {
        static NEXT_APP_ID: AtomicU64 = AtomicU64::new(1);
        let mut limits = code.deployment.limits;
        let stack_cap = self.config.worker_stack_bytes - STACK_RESERVE_BYTES;
        limits.stack_bytes = limits.stack_bytes.min(stack_cap as u64);
        let stack_bytes = self.config.worker_stack_bytes;
        // Compiling and checking runs QuickJS, so it runs on a thread with a known stack size.
        let image = std::thread::Builder::new()
            .name("js-load".to_owned())
            .stack_size(stack_bytes)
            .spawn(move || prepare(code, limits, NEXT_APP_ID.fetch_add(1, Ordering::Relaxed)))
            .map_err(|error| LoadError {
                entry: String::new(),
                message: format!("could not start the loader thread: {error}"),
            })?
            .join()
            .map_err(|_| LoadError { entry: String::new(), message: "the loader thread panicked".to_owned() })??;
        let image = Arc::new(image);
        let worker = self.worker_for(&image.key).clone();
        let handle = Arc::new(AppHandle { id: image.id, worker });
        Ok(Arc::new(JsApp { image, handle }))
    }
}

/// Compiles every module and checks that each function's entry module loads and exports a handler.
fn prepare(code: AppCode, limits: FunctionLimits, id: u64) -> Result<AppImage, LoadError> {
    let sources = code.modules.iter().map(|(path, source)| (path.as_str(), &**source));
    // Compiling gets the same heap as an instance, and at least enough for a large bundle.
    let memory_limit = usize::try_from(limits.memory_bytes).unwrap_or(usize::MAX).max(32 << 20);
    let modules =
        CompiledModules::compile(sources, memory_limit).map_err(|(entry, message)| LoadError { entry, message })?;
    let image = AppImage {
        id,
        key: code.deployment.app.clone(),
        modules: Arc::new(modules),
        vars: code.deployment.vars.clone(),
        secrets: code.secrets.clone(),
        limits,
        host: code.host.clone(),
    };
    let mut checked = Vec::new();
    for function in &code.deployment.functions {
        let entry = function.entry.as_str();
        if checked.contains(&entry) {
            continue;
        }
        checked.push(entry);
        if !image.modules.contains(entry) {
            let message = format!("the function for route {} is not in the bundle", function.route.as_str());
            return Err(LoadError { entry: entry.to_owned(), message });
        }
        let mut budget = CpuBudget::new(limits.cpu_ms_per_request);
        let mut instance = Instance::new(&image, &mut budget)
            .map_err(|error| LoadError { entry: entry.to_owned(), message: error.to_string() })?;
        instance.check_entry(entry, &image)?;
    }
    Ok(image)
}

/// Tells the worker to release the app's instances once the app and every invocation are gone.
struct AppHandle {
    id: u64,
    worker: WorkerHandle,
}

impl Drop for AppHandle {
    fn drop(&mut self) {
        self.worker.unload(self.id);
    }
}

struct JsApp {
    image: Arc<AppImage>,
    handle: Arc<AppHandle>,
}

impl LoadedApp for JsApp {
    fn invoke(
        &self,
        entry: &str,
        request: FunctionRequest,
    ) -> BoxFuture<'static, Result<FunctionResponse, InvokeError>> {
        let image = self.image.clone();
        if !image.modules.contains(entry) {
            let message = "no such module in this deployment".to_owned();
            let error = InvokeError::Load(LoadError { entry: entry.to_owned(), message });
            log_failure(&image, &request.request_id, &error);
            return Box::pin(std::future::ready(Err(error)));
        }
        let wall = Duration::from_millis(image.limits.wall_timeout_ms);
        let deadline = Instant::now() + wall;
        let (sender, receiver) = oneshot::channel();
        let request_id = request.request_id.clone();
        let reply = Reply { sender: Some(sender), app: image.clone(), request_id: request_id.clone() };
        let job = InvokeJob { app: image.clone(), entry: entry.to_owned(), request, deadline, reply };
        if self.handle.worker.invoke(job).is_err() {
            log_failure(&image, &request_id, &InvokeError::Overloaded);
            return Box::pin(std::future::ready(Err(InvokeError::Overloaded)));
        }
        let handle = self.handle.clone();
        // The worker enforces the deadline; this later one only covers a worker that is stuck in
        // another app's JavaScript (at most that app's CPU limit) when the deadline passes.
        let give_up = deadline + Duration::from_millis(image.limits.cpu_ms_per_request) + Duration::from_millis(250);
        Box::pin(async move {
            let outcome = tokio::time::timeout_at(give_up.into(), receiver).await;
            drop(handle);
            match outcome {
                Ok(Ok(result)) => result,
                // The worker dropped the invocation without an answer: it is shutting down or the
                // invocation's task panicked.
                Ok(Err(_)) => {
                    log_failure(&image, &request_id, &InvokeError::Overloaded);
                    Err(InvokeError::Overloaded)
                }
                Err(_) => {
                    let error = InvokeError::WallTimeout { limit_ms: image.limits.wall_timeout_ms };
                    log_failure(&image, &request_id, &error);
                    Err(error)
                }
            }
        })
    }
}
