//! One instance of an app (its own QuickJS runtime and context) and the event loop of one request.
//!
//! An instance serves one request at a time. The event loop runs JavaScript in short entries
//! (the handler call, then one entry per completed fetch or timer) and measures the CPU time of
//! each, so time spent awaiting I/O is not charged to the request's CPU limit.

use std::cell::{Cell, RefCell};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use rquickjs::{Array, Context, Ctx, Error, Function, Module, Object, Persistent, Runtime, TypedArray, Value};
use runtime::kv::{KvAnswer, KvError};
use runtime::sql::{SqlAnswer, SqlError, SqlValue};
use runtime::{InvokeError, LoadError, LogLevel, OutboundError, OutboundResponse};

use crate::AppImage;
use crate::errors::{JsException, discards_instance};
use crate::host::{InstanceShared, RequestState, host_object};
use crate::modules::{BundleModules, load_bytecode, prelude_part};
use crate::worker::InvokeJob;

/// CPU time one request may still spend running JavaScript, and the wall-clock deadline that
/// stops running JavaScript too.
pub(crate) struct CpuBudget {
    limit: Duration,
    used: Duration,
    wall_deadline: Option<Instant>,
}

impl CpuBudget {
    pub(crate) fn new(limit_ms: u64) -> CpuBudget {
        CpuBudget { limit: Duration::from_millis(limit_ms), used: Duration::ZERO, wall_deadline: None }
    }

    pub(crate) fn with_wall_deadline(mut self, deadline: Instant) -> CpuBudget {
        self.wall_deadline = Some(deadline);
        self
    }

    fn remaining(&self) -> Duration {
        self.limit.saturating_sub(self.used)
    }

    fn exhausted(&self) -> bool {
        self.used > self.limit
    }
}

/// What to do with an instance after a request.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Disposition {
    Keep,
    Discard,
}

/// The prelude's functions the engine calls.
struct EntryPoints {
    invoke: Persistent<Function<'static>>,
    settle_fetch: Persistent<Function<'static>>,
    fire_timer: Persistent<Function<'static>>,
    /// The object the three above came from: the bindings' parts add `settleKv`, `settleSql` and
    /// `settleCache` to it when they load.
    points: Persistent<Object<'static>>,
}

impl EntryPoints {
    /// A binding part's settle function (its part made the call being settled, so it is loaded).
    fn settle<'js>(&self, ctx: &Ctx<'js>, name: &str) -> rquickjs::Result<Function<'js>> {
        self.points.clone().restore(ctx)?.get(name)
    }
}

pub(crate) struct Instance {
    // JavaScript handles come first: fields drop in order, and these must be released before the
    // context and the runtime that own them.
    entry_points: EntryPoints,
    env: Persistent<Object<'static>>,
    handlers: HashMap<String, Persistent<Object<'static>>>,
    context: Context,
    _runtime: Runtime,
    shared: Rc<InstanceShared>,
    /// Requests served, and the heap size last measured: measuring walks every object, so it is
    /// done on the first request and then every [`HEAP_SAMPLE_EVERY`]th.
    served: u64,
    heap_bytes: u64,
}

/// An app's `fetch` in flight: its id, its URL and how it ended.
type PendingFetch = BoxFuture<'static, (u32, String, Result<OutboundResponse, OutboundError>)>;
/// A key-value operation in flight: its id and how it ended.
type PendingKv = BoxFuture<'static, (u32, Result<KvAnswer, KvError>)>;
type PendingSql = BoxFuture<'static, (u32, Result<SqlAnswer, SqlError>)>;
type PendingCache = BoxFuture<'static, (u32, Result<runtime::cache::CacheAnswer, String>)>;
type PendingVectors = BoxFuture<'static, (u32, Result<serde_json::Value, runtime::vectors::VectorError>)>;
type PendingAi = BoxFuture<'static, (u32, Result<runtime::ai::AiAnswer, runtime::ai::AiError>)>;

/// How often an instance measures its heap for metering.
const HEAP_SAMPLE_EVERY: u64 = 16;

/// The CPU time the calling thread has used. A request is charged this, not wall time: time its
/// worker spends waiting for a core on a busy machine is not the app's doing, so it never turns
/// a healthy request into a CPU-limit refusal.
pub fn thread_cpu_time() -> Duration {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(u64::try_from(now.tv_sec).unwrap_or(0), u32::try_from(now.tv_nsec).unwrap_or(0))
}

/// Runs JavaScript under the budget's deadlines, then the promise reactions it queued, and charges
/// the CPU time it used to the budget.
fn run_js<R>(context: &Context, shared: &InstanceShared, budget: &mut CpuBudget, f: impl FnOnce(&Ctx<'_>) -> R) -> R {
    let started = thread_cpu_time();
    shared.cpu_deadline.set(Some(started + budget.remaining()));
    shared.cpu_check_from.set(Some(Instant::now() + budget.remaining()));
    shared.deadline.set(budget.wall_deadline);
    let result = context.with(|ctx| {
        let result = f(&ctx);
        while !shared.interrupted.get() && ctx.execute_pending_job() {}
        result
    });
    shared.cpu_deadline.set(None);
    shared.cpu_check_from.set(None);
    shared.deadline.set(None);
    budget.used += thread_cpu_time().saturating_sub(started);
    result
}

/// The `InvokeError` for a failed call into JavaScript.
fn js_error(ctx: &Ctx<'_>, shared: &InstanceShared, error: Error) -> InvokeError {
    if shared.interrupted.get() {
        return InvokeError::CpuLimit { limit_ms: shared.limits.cpu_ms_per_request };
    }
    match error {
        Error::Exception => JsException::from_value(ctx.catch()).classify(false, &shared.limits),
        Error::Allocation => InvokeError::MemoryLimit { limit_bytes: shared.limits.memory_bytes },
        other => InvokeError::Exception { message: other.to_string() },
    }
}

impl Instance {
    /// Creates a runtime and context with the app's limits and evaluates the prelude.
    /// The app's modules are evaluated later, on the first request for each entry.
    pub(crate) fn new(image: &AppImage, budget: &mut CpuBudget) -> Result<Instance, InvokeError> {
        let internal = |error: Error| InvokeError::Exception {
            message: format!("the engine could not create an instance: {error}"),
        };
        let runtime = Runtime::new().map_err(internal)?;
        runtime.set_memory_limit(usize::try_from(image.limits.memory_bytes).unwrap_or(usize::MAX));
        runtime.set_max_stack_size(usize::try_from(image.limits.stack_bytes).unwrap_or(usize::MAX));
        runtime.set_loader(BundleModules(image.modules.clone()), BundleModules(image.modules.clone()));
        let shared = Rc::new(InstanceShared {
            app: image.key.clone(),
            limits: image.limits,
            cpu_deadline: Cell::new(None),
            cpu_check_from: Cell::new(None),
            deadline: Cell::new(None),
            interrupted: Cell::new(false),
            request: RefCell::new(RequestState::idle()),
        });
        let interrupt_state = shared.clone();
        runtime.set_interrupt_handler(Some(Box::new(move || {
            let Some(cpu_deadline) = interrupt_state.cpu_deadline.get() else {
                return false;
            };
            let now = Instant::now();
            let past_wall = interrupt_state.deadline.get().is_some_and(|wall| now >= wall);
            let cpu_may_be_spent = interrupt_state.cpu_check_from.get().is_none_or(|from| now >= from);
            let stop = past_wall || (cpu_may_be_spent && thread_cpu_time() >= cpu_deadline);
            if stop {
                interrupt_state.interrupted.set(true);
            }
            stop
        })));
        let context = Context::full(&runtime).map_err(internal)?;

        let installed = run_js(&context, &shared, budget, |ctx| -> Result<_, InvokeError> {
            let prelude_failed = |error: Error| match js_error(ctx, &shared, error) {
                InvokeError::Exception { message } => {
                    InvokeError::Exception { message: format!("the engine's prelude failed: {message}") }
                }
                limit => limit,
            };
            let (prelude, _evaluated) = load_bytecode(ctx, prelude_part("core").expect("the core prelude"))
                .and_then(Module::eval)
                .map_err(prelude_failed)?;
            let install: Function = prelude.get("default").map_err(prelude_failed)?;
            let host = host_object(ctx, &shared).map_err(prelude_failed)?;
            let points: Object = install.call((host,)).map_err(prelude_failed)?;
            let entry_point =
                |name: &str| points.get::<_, Function>(name).map(|function| Persistent::save(ctx, function));
            let entry_points = EntryPoints {
                invoke: entry_point("invoke").map_err(prelude_failed)?,
                settle_fetch: entry_point("settleFetch").map_err(prelude_failed)?,
                fire_timer: entry_point("fireTimer").map_err(prelude_failed)?,
                points: Persistent::save(ctx, points.clone()),
            };
            let env = Object::new(ctx.clone()).map_err(prelude_failed)?;
            for (name, value) in &image.vars {
                env.set(name.as_str(), value.as_str()).map_err(prelude_failed)?;
            }
            for (name, value) in &image.secrets {
                env.set(name.as_str(), value.expose()).map_err(prelude_failed)?;
            }
            if let Some(kv) = &image.host.kv {
                let make_kv: Function = points.get("makeKv").map_err(prelude_failed)?;
                let namespace: Object = make_kv.call(()).map_err(prelude_failed)?;
                env.set(kv.binding.as_str(), namespace).map_err(prelude_failed)?;
            }
            if image.host.ai.is_some() {
                let make_ai: Function = points.get("makeAi").map_err(prelude_failed)?;
                let ai: Object = make_ai.call(()).map_err(prelude_failed)?;
                env.set("AI", ai).map_err(prelude_failed)?;
            }
            if let Some(vectors) = &image.host.vectors {
                let make_vectorize: Function = points.get("makeVectorize").map_err(prelude_failed)?;
                let index: Object = make_vectorize.call(()).map_err(prelude_failed)?;
                env.set(vectors.binding.as_str(), index).map_err(prelude_failed)?;
            }
            if let Some(sql) = &image.host.sql {
                let make_d1: Function = points.get("makeD1").map_err(prelude_failed)?;
                let database: Object = make_d1.call(()).map_err(prelude_failed)?;
                env.set(sql.binding.as_str(), database).map_err(prelude_failed)?;
            }
            let freeze: Function = ctx
                .globals()
                .get::<_, Object>("Object")
                .and_then(|object| object.get("freeze"))
                .map_err(prelude_failed)?;
            freeze.call::<_, ()>((env.clone(),)).map_err(prelude_failed)?;
            Ok((entry_points, Persistent::save(ctx, env)))
        });
        let (entry_points, env) = installed?;
        Ok(Instance {
            entry_points,
            env,
            handlers: HashMap::new(),
            context,
            _runtime: runtime,
            shared,
            served: 0,
            heap_bytes: 0,
        })
    }

    /// Evaluates the app's entry module and checks its default export, as the first request would.
    /// Used at load time, with no request: I/O and timers are refused.
    pub(crate) fn check_entry(&mut self, entry: &str, image: &AppImage) -> Result<(), LoadError> {
        let mut budget = CpuBudget::new(image.limits.cpu_ms_per_request);
        {
            let mut request = self.shared.request.borrow_mut();
            request.request_id = "load".to_owned();
            request.log = Some(image.host.log.clone());
        }
        let Instance { context, shared, handlers, .. } = self;
        let result = run_js(context, shared, &mut budget, |ctx| load_handler(ctx, shared, handlers, entry).map(|_| ()));
        *self.shared.request.borrow_mut() = RequestState::idle();
        result.map_err(|error| {
            let message = match error {
                InvokeError::Load(error) => return error,
                InvokeError::Exception { message } => format!("the module threw while loading: {message}"),
                InvokeError::CpuLimit { limit_ms } => {
                    format!("the module's top-level code ran longer than {limit_ms} ms")
                }
                other => other.to_string(),
            };
            LoadError { entry: entry.to_owned(), message }
        })
    }

    /// Serves one request: calls the handler, drives its fetches and timers, replies as soon as the
    /// response is complete, then keeps driving `ctx.waitUntil` work until it settles or time is up.
    pub(crate) async fn serve(&mut self, job: InvokeJob, mut budget: CpuBudget) -> Disposition {
        let InvokeJob { app, entry, request, deadline, mut reply } = job;
        {
            let mut state = self.shared.request.borrow_mut();
            *state = RequestState::idle();
            state.active = true;
            state.request_id = request.request_id.clone();
            state.trace_context = request.trace_context.clone();
            state.log = Some(app.host.log.clone());
            state.outbound = Some(app.host.outbound.clone());
            state.outbound_left = app.limits.max_outbound_requests;
            state.outbound_bytes_left = app.limits.max_outbound_bytes;
            state.author = request.user.as_ref().map(|user| user.subject.clone());
        }
        self.shared.interrupted.set(false);

        let Instance { context, shared, handlers, entry_points, env, _runtime: runtime, served, heap_bytes } = self;
        let started = run_js(context, shared, &mut budget, |ctx| {
            let handler = load_handler(ctx, shared, handlers, &entry)?;
            let call = || -> rquickjs::Result<()> {
                let invoke = entry_points.invoke.clone().restore(ctx)?;
                let headers = Array::new(ctx.clone())?;
                for (index, (name, value)) in request.headers.iter().enumerate() {
                    headers.set(2 * index, name.as_str())?;
                    headers.set(2 * index + 1, value.as_str())?;
                }
                let body = match request.body.is_empty() {
                    true => Value::new_null(ctx.clone()),
                    false => TypedArray::<u8>::new_copy(ctx.clone(), &request.body)?.into_value(),
                };
                let env = env.clone().restore(ctx)?;
                // `env.USER`: the signed-in user as a frozen object, or null; the prelude adds it to
                // a per-call copy of the frozen env.
                let user = match &request.user {
                    None => Value::new_null(ctx.clone()),
                    Some(user) => {
                        let object = Object::new(ctx.clone())?;
                        object.set("sub", user.subject.as_str())?;
                        // Unknown email or name is null, not undefined: the shape is always the same.
                        let text_or_null = |text: &Option<String>| -> rquickjs::Result<Value> {
                            match text {
                                Some(text) => {
                                    rquickjs::String::from_str(ctx.clone(), text).map(|text| text.into_value())
                                }
                                None => Ok(Value::new_null(ctx.clone())),
                            }
                        };
                        object.set("email", text_or_null(&user.email)?)?;
                        object.set("name", text_or_null(&user.name)?)?;
                        let groups = Array::new(ctx.clone())?;
                        for (index, group) in user.groups.iter().enumerate() {
                            groups.set(index, group.as_str())?;
                        }
                        object.set("groups", groups)?;
                        object.into_value()
                    }
                };
                invoke.call::<_, ()>((handler, request.method.as_str(), request.url.as_str(), headers, body, env, user))
            };
            call().map_err(|error| js_error(ctx, shared, error))
        });

        let mut fetches: FuturesUnordered<PendingFetch> = FuturesUnordered::new();
        let mut kv_calls: FuturesUnordered<PendingKv> = FuturesUnordered::new();
        let mut cache_calls: FuturesUnordered<PendingCache> = FuturesUnordered::new();
        let mut ai_calls: FuturesUnordered<PendingAi> = FuturesUnordered::new();
        let mut sql_calls: FuturesUnordered<PendingSql> = FuturesUnordered::new();
        let mut vector_calls: FuturesUnordered<PendingVectors> = FuturesUnordered::new();
        let mut timers: BinaryHeap<Reverse<(Instant, u32)>> = BinaryHeap::new();
        let mut failure = started.err();
        let disposition = loop {
            if failure.is_none() && (shared.interrupted.get() || budget.exhausted()) {
                failure = Some(InvokeError::CpuLimit { limit_ms: shared.limits.cpu_ms_per_request });
            }
            // JavaScript stopped at the wall-clock deadline rather than at the end of its CPU time.
            if matches!(failure, Some(InvokeError::CpuLimit { .. }))
                && !budget.exhausted()
                && Instant::now() >= deadline
            {
                failure = Some(InvokeError::WallTimeout { limit_ms: shared.limits.wall_timeout_ms });
            }
            if let Some(error) = failure.take() {
                let disposition = if discards_instance(&error) { Disposition::Discard } else { Disposition::Keep };
                match reply.is_pending() {
                    true => reply.send(Err(error)),
                    false => {
                        shared.log(LogLevel::Error, format!("after the response was sent ({}): {error}", error.code()))
                    }
                }
                break disposition;
            }
            let (outcome, finished) = {
                let mut state = shared.request.borrow_mut();
                for (id, outbound_request) in state.new_fetches.drain(..) {
                    let url = outbound_request.url.clone();
                    let future = app.host.outbound.fetch(outbound_request);
                    fetches.push(Box::pin(async move { (id, url, future.await) }));
                }
                for (id, op) in state.new_kv.drain(..) {
                    let future = match &app.host.kv {
                        Some(kv) => kv.store.call(op),
                        None => {
                            Box::pin(std::future::ready(Err(KvError::Failed("no KV namespace is bound".to_owned()))))
                        }
                    };
                    kv_calls.push(Box::pin(async move { (id, future.await) }));
                }
                for (id, op) in state.new_cache.drain(..) {
                    let future = match &app.host.cache {
                        Some(cache) => cache.call(op),
                        // A server that caches nothing: nothing is kept, nothing found.
                        None => Box::pin(std::future::ready(Ok(match op {
                            runtime::cache::CacheOp::Match { .. } => runtime::cache::CacheAnswer::Found(None),
                            runtime::cache::CacheOp::Put { .. } => runtime::cache::CacheAnswer::Stored(false),
                            runtime::cache::CacheOp::Delete { .. } => runtime::cache::CacheAnswer::Deleted(false),
                        }))),
                    };
                    cache_calls.push(Box::pin(async move { (id, future.await) }));
                }
                for (id, op) in state.new_ai.drain(..) {
                    let future = match &app.host.ai {
                        Some(ai) => ai.run(op),
                        None => Box::pin(std::future::ready(Err(runtime::ai::AiError::Invalid(
                            "env.AI is bound only for apps whose manifest lists models in spec.ai.models".to_owned(),
                        )))),
                    };
                    ai_calls.push(Box::pin(async move { (id, future.await) }));
                }
                for (id, op) in state.new_vectors.drain(..) {
                    let future = match &app.host.vectors {
                        Some(vectors) => vectors.index.call(op),
                        None => Box::pin(std::future::ready(Err(runtime::vectors::VectorError::Invalid(
                            "no vector index is bound; ask for one with spec.data.vectors".to_owned(),
                        )))),
                    };
                    vector_calls.push(Box::pin(async move { (id, future.await) }));
                }
                for (id, op) in state.new_sql.drain(..) {
                    let future = match &app.host.sql {
                        Some(sql) => sql.database.call(op),
                        None => Box::pin(std::future::ready(Err(SqlError("no D1 database is bound".to_owned())))),
                    };
                    sql_calls.push(Box::pin(async move { (id, future.await) }));
                }
                let now = Instant::now();
                for (id, delay) in state.new_timers.drain(..) {
                    timers.push(Reverse((now + delay, id)));
                }
                (state.outcome.take(), state.finished)
            };
            if let Some(mut outcome) = outcome {
                if let Ok(response) = &mut outcome {
                    response.cpu = budget.used;
                    if served.is_multiple_of(HEAP_SAMPLE_EVERY) {
                        *heap_bytes = u64::try_from(runtime.memory_usage().malloc_size).unwrap_or(0);
                    }
                    *served += 1;
                    response.heap_bytes = *heap_bytes;
                }
                if let Err(error) = &outcome
                    && discards_instance(error)
                {
                    reply.send(outcome);
                    break Disposition::Discard;
                }
                reply.send(outcome);
            }
            if finished {
                break Disposition::Keep;
            }
            if fetches.is_empty()
                && timers.is_empty()
                && kv_calls.is_empty()
                && sql_calls.is_empty()
                && cache_calls.is_empty()
                && ai_calls.is_empty()
                && vector_calls.is_empty()
            {
                if reply.is_pending() {
                    let message =
                        "the handler's promise never settled: it awaits something that no fetch or timer will complete"
                            .to_owned();
                    failure = Some(InvokeError::Exception { message });
                    continue;
                }
                // Only `ctx.waitUntil` promises are left, and nothing can settle them.
                break Disposition::Keep;
            }
            let next_timer = timers.peek().map(|Reverse((at, _))| *at);
            tokio::select! {
                biased;
                () = tokio::time::sleep_until(deadline.into()) => {
                    failure = Some(InvokeError::WallTimeout { limit_ms: shared.limits.wall_timeout_ms });
                }
                Some((id, url, result)) = fetches.next(), if !fetches.is_empty() => {
                    let result = charge_outbound_bytes(shared, &url, result);
                    let settled = run_js(context, shared, &mut budget, |ctx| {
                        settle_fetch(ctx, entry_points, id, &url, result).map_err(|error| js_error(ctx, shared, error))
                    });
                    failure = settled.err();
                }
                Some((id, result)) = kv_calls.next(), if !kv_calls.is_empty() => {
                    let settled = run_js(context, shared, &mut budget, |ctx| {
                        settle_kv(ctx, entry_points, id, result).map_err(|error| js_error(ctx, shared, error))
                    });
                    failure = settled.err();
                }
                Some((id, result)) = cache_calls.next(), if !cache_calls.is_empty() => {
                    let settled = run_js(context, shared, &mut budget, |ctx| {
                        settle_cache(ctx, entry_points, id, result).map_err(|error| js_error(ctx, shared, error))
                    });
                    failure = settled.err();
                }
                Some((id, result)) = ai_calls.next(), if !ai_calls.is_empty() => {
                    let settled = run_js(context, shared, &mut budget, |ctx| {
                        settle_ai(ctx, entry_points, id, result).map_err(|error| js_error(ctx, shared, error))
                    });
                    failure = settled.err();
                }
                Some((id, result)) = vector_calls.next(), if !vector_calls.is_empty() => {
                    let settled = run_js(context, shared, &mut budget, |ctx| {
                        settle_vectors(ctx, entry_points, id, result).map_err(|error| js_error(ctx, shared, error))
                    });
                    failure = settled.err();
                }
                Some((id, result)) = sql_calls.next(), if !sql_calls.is_empty() => {
                    let settled = run_js(context, shared, &mut budget, |ctx| {
                        settle_sql(ctx, entry_points, id, result).map_err(|error| js_error(ctx, shared, error))
                    });
                    failure = settled.err();
                }
                () = tokio::time::sleep_until(next_timer.unwrap_or(deadline).into()), if next_timer.is_some() => {
                    let now = Instant::now();
                    let mut due = Vec::new();
                    while let Some(Reverse((at, id))) = timers.peek().copied() {
                        if at > now {
                            break;
                        }
                        timers.pop();
                        due.push(id);
                    }
                    let fired = run_js(context, shared, &mut budget, |ctx| {
                        let fire = || -> rquickjs::Result<()> {
                            let fire_timer = entry_points.fire_timer.clone().restore(ctx)?;
                            due.into_iter().try_for_each(|id| fire_timer.call::<_, ()>((id,)))
                        };
                        fire().map_err(|error| js_error(ctx, shared, error))
                    });
                    failure = fired.err();
                }
            }
        };
        *self.shared.request.borrow_mut() = RequestState::idle();
        disposition
    }
}

/// The default export of an entry module, evaluating the module on first use in this instance.
fn load_handler<'js>(
    ctx: &Ctx<'js>,
    shared: &InstanceShared,
    handlers: &mut HashMap<String, Persistent<Object<'static>>>,
    entry: &str,
) -> Result<Object<'js>, InvokeError> {
    if let Some(handler) = handlers.get(entry) {
        return handler.clone().restore(ctx).map_err(|error| js_error(ctx, shared, error));
    }
    let promise = Module::import(ctx, entry).map_err(|error| js_error(ctx, shared, error))?;
    // Evaluation, including any top-level await, runs as promise jobs.
    while !shared.interrupted.get() && ctx.execute_pending_job() {}
    let namespace: Object = match promise.result::<Object>() {
        Some(Ok(namespace)) => namespace,
        Some(Err(error)) => return Err(js_error(ctx, shared, error)),
        None if shared.interrupted.get() => {
            return Err(InvokeError::CpuLimit { limit_ms: shared.limits.cpu_ms_per_request });
        }
        None => {
            let message = "the module's top-level await never finished".to_owned();
            return Err(InvokeError::Load(LoadError { entry: entry.to_owned(), message }));
        }
    };
    let missing = |what: &str| {
        let message = format!("{what}: the module must `export default {{ async fetch(request, env, ctx) {{ … }} }}`");
        InvokeError::Load(LoadError { entry: entry.to_owned(), message })
    };
    let handler: Value = namespace.get("default").map_err(|error| js_error(ctx, shared, error))?;
    let Some(handler) = handler.into_object() else { return Err(missing("there is no default export object")) };
    let fetch: Value = handler.get("fetch").map_err(|error| js_error(ctx, shared, error))?;
    if !fetch.is_function() {
        return Err(missing("the default export has no fetch function"));
    }
    handlers.insert(entry.to_owned(), Persistent::save(ctx, handler.clone()));
    Ok(handler)
}

/// Counts a response body against the request's outbound byte budget; past it, the fetch fails.
fn charge_outbound_bytes(
    shared: &InstanceShared,
    url: &str,
    result: Result<OutboundResponse, OutboundError>,
) -> Result<OutboundResponse, OutboundError> {
    let response = result?;
    let mut state = shared.request.borrow_mut();
    let size = response.body.len() as u64;
    if size > state.outbound_bytes_left {
        state.outbound_bytes_left = 0;
        let host = url::Url::parse(url).ok().and_then(|url| url.host_str().map(str::to_owned)).unwrap_or_default();
        let limit = shared.limits.max_outbound_bytes;
        return Err(OutboundError::Failed {
            message: format!(
                "fetch to {host:?} failed: this request sent and received more than {limit} bytes through fetch, the limit"
            ),
        });
    }
    state.outbound_bytes_left -= size;
    Ok(response)
}

/// Hands a completed outbound fetch to the prelude, which resolves or rejects the app's promise.
fn settle_fetch(
    ctx: &Ctx<'_>,
    entry_points: &EntryPoints,
    id: u32,
    requested_url: &str,
    result: Result<OutboundResponse, OutboundError>,
) -> rquickjs::Result<()> {
    let settle = entry_points.settle_fetch.clone().restore(ctx)?;
    match result {
        Ok(response) => {
            let headers = Array::new(ctx.clone())?;
            for (index, (name, value)) in response.headers.iter().enumerate() {
                headers.set(2 * index, name.as_str())?;
                headers.set(2 * index + 1, value.as_str())?;
            }
            let value = Array::new(ctx.clone())?;
            value.set(0, response.status)?;
            value.set(1, headers)?;
            value.set(2, response.url.as_str())?;
            value.set(3, TypedArray::<u8>::new_copy(ctx.clone(), &response.body)?)?;
            value.set(4, response.url != requested_url)?;
            settle.call((id, true, value))
        }
        Err(error) => settle.call((id, false, error.to_string())),
    }
}

/// Completes a D1 call in JavaScript: `ok` with the results as JSON (columns, rows of values,
/// BLOBs as arrays of bytes, and meta), or D1's error message.
fn settle_sql(
    ctx: &Ctx<'_>,
    entry_points: &EntryPoints,
    id: u32,
    result: Result<SqlAnswer, SqlError>,
) -> rquickjs::Result<()> {
    let settle = entry_points.settle(ctx, "settleSql")?;
    let answer = match result {
        Ok(answer) => answer,
        Err(SqlError(message)) => return settle.call((id, false, message)),
    };
    let json = match answer {
        SqlAnswer::Executed { count, duration_ms, .. } => {
            serde_json::json!({ "count": count, "duration": duration_ms })
        }
        SqlAnswer::Results(results) => {
            let results: Vec<serde_json::Value> = results
                .into_iter()
                .map(|result| {
                    let rows: Vec<Vec<serde_json::Value>> =
                        result.rows.into_iter().map(|row| row.into_iter().map(sql_json).collect()).collect();
                    let meta = result.meta;
                    serde_json::json!({
                        "columns": result.columns,
                        "rows": rows,
                        "meta": {
                            "duration": meta.duration_ms,
                            "changes": meta.changes,
                            "last_row_id": meta.last_row_id,
                            "changed_db": meta.changed_db,
                            "size_after": meta.size_after,
                            "rows_read": meta.rows_read,
                            "rows_written": meta.rows_written,
                        },
                    })
                })
                .collect();
            serde_json::Value::Array(results)
        }
    };
    settle.call((id, true, json.to_string()))
}

/// A column's value as D1 answers it: BLOBs as arrays of bytes.
fn sql_json(value: SqlValue) -> serde_json::Value {
    match value {
        SqlValue::Null => serde_json::Value::Null,
        SqlValue::Integer(number) => number.into(),
        SqlValue::Real(number) => serde_json::Number::from_f64(number).map_or(serde_json::Value::Null, Into::into),
        SqlValue::Text(text) => text.into(),
        SqlValue::Blob(bytes) => bytes.iter().copied().collect::<Vec<u8>>().into(),
    }
}

/// Completes a KV operation in JavaScript: `ok` with the answer as JSON and the value's bytes,
/// or the message with whether it is the app's mistake (a `TypeError`).
/// Completes a Cache API call: `ok` with its answer as JSON (a found response's status and
/// headers) and the body's bytes, or the failure's message.
fn settle_cache(
    ctx: &Ctx<'_>,
    entry_points: &EntryPoints,
    id: u32,
    result: Result<runtime::cache::CacheAnswer, String>,
) -> rquickjs::Result<()> {
    use runtime::cache::CacheAnswer;
    let settle = entry_points.settle(ctx, "settleCache")?;
    let (json, bytes) = match result {
        Err(message) => return settle.call((id, false, message, None::<TypedArray<u8>>)),
        Ok(CacheAnswer::Found(None)) => (serde_json::Value::Null, None),
        Ok(CacheAnswer::Found(Some(found))) => {
            let headers: Vec<&str> =
                found.headers.iter().flat_map(|(name, value)| [name.as_str(), value.as_str()]).collect();
            (serde_json::json!({ "status": found.status, "headers": headers }), Some(found.body))
        }
        Ok(CacheAnswer::Stored(stored)) => (serde_json::json!(stored), None),
        Ok(CacheAnswer::Deleted(deleted)) => (serde_json::json!(deleted), None),
    };
    let bytes = match bytes {
        Some(bytes) => Some(TypedArray::<u8>::new_copy(ctx.clone(), &bytes)?),
        None => None,
    };
    settle.call((id, true, json.to_string(), bytes))
}

/// Completes an `env.AI.run` call in JavaScript: the vectors (as one Float32Array of n × d
/// numbers and the dimensions), or the message and whether it is the app's mistake (TypeError).
fn settle_ai(
    ctx: &Ctx<'_>,
    entry_points: &EntryPoints,
    id: u32,
    result: Result<runtime::ai::AiAnswer, runtime::ai::AiError>,
) -> rquickjs::Result<()> {
    use runtime::ai::{AiAnswer, AiError};
    let settle = entry_points.settle(ctx, "settleAi")?;
    match result {
        Ok(AiAnswer::Embeddings { dimensions, vectors }) => {
            let flat: Vec<f32> = vectors.iter().flat_map(|vector| vector.iter().copied()).collect();
            let array = TypedArray::<f32>::new(ctx.clone(), flat)?;
            settle.call((id, true, array, dimensions))
        }
        Err(AiError::Invalid(message)) => settle.call((id, false, message, true)),
        Err(AiError::Unavailable(message)) => settle.call((id, false, message, false)),
    }
}

/// Completes a vector index call in JavaScript: the answer as JSON, or the message and whether it
/// is the app's mistake (TypeError).
fn settle_vectors(
    ctx: &Ctx<'_>,
    entry_points: &EntryPoints,
    id: u32,
    result: Result<serde_json::Value, runtime::vectors::VectorError>,
) -> rquickjs::Result<()> {
    use runtime::vectors::VectorError;
    let settle = entry_points.settle(ctx, "settleVectors")?;
    match result {
        Ok(answer) => settle.call((id, true, answer.to_string(), false)),
        Err(VectorError::Invalid(message)) => settle.call((id, false, message, true)),
        Err(VectorError::Failed(message)) => settle.call((id, false, message, false)),
    }
}

fn settle_kv(
    ctx: &Ctx<'_>,
    entry_points: &EntryPoints,
    id: u32,
    result: Result<KvAnswer, KvError>,
) -> rquickjs::Result<()> {
    let settle = entry_points.settle(ctx, "settleKv")?;
    let answer = match result {
        Ok(answer) => answer,
        Err(KvError::Invalid(message)) => return settle.call((id, false, message, true)),
        Err(KvError::Failed(message)) => return settle.call((id, false, message, false)),
    };
    let (json, bytes) = match answer {
        KvAnswer::Entry(None) => (serde_json::Value::Null, None),
        KvAnswer::Entry(Some(entry)) => {
            let metadata: Option<serde_json::Value> =
                entry.metadata.as_deref().and_then(|text| serde_json::from_str(text).ok());
            let json = serde_json::json!({ "metadata": metadata, "expiration": entry.expiration, "etag": entry.etag });
            (json, Some(entry.value))
        }
        KvAnswer::Stored(etag) => (serde_json::json!({ "etag": etag }), None),
        KvAnswer::Deleted => (serde_json::json!({}), None),
        KvAnswer::Count(count) => (serde_json::json!({ "count": count }), None),
        KvAnswer::Listed { keys, cursor } => {
            let keys: Vec<serde_json::Value> = keys
                .into_iter()
                .map(|key| {
                    let mut json = serde_json::json!({ "name": key.name });
                    if let Some(expiration) = key.expiration {
                        json["expiration"] = expiration.into();
                    }
                    if let Some(metadata) =
                        key.metadata.as_deref().and_then(|text| serde_json::from_str::<serde_json::Value>(text).ok())
                    {
                        json["metadata"] = metadata;
                    }
                    json
                })
                .collect();
            (serde_json::json!({ "keys": keys, "cursor": cursor }), None)
        }
    };
    let bytes = match bytes {
        Some(bytes) => Some(TypedArray::<u8>::new_copy(ctx.clone(), &bytes)?),
        None => None,
    };
    settle.call((id, true, json.to_string(), bytes))
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_thread_that_waits_is_not_charged_cpu_time() {
        let before = thread_cpu_time();
        std::thread::sleep(Duration::from_millis(200));
        let slept = thread_cpu_time().saturating_sub(before);
        assert!(slept < Duration::from_millis(100), "sleeping cost {slept:?} of CPU time");
        let before = thread_cpu_time();
        let mut x = 0u64;
        while thread_cpu_time().saturating_sub(before) < Duration::from_millis(5) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        assert!(x > 0);
    }
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use deployment::{AppKey, FunctionLimits};
    use runtime::{AppLog, FunctionRequest, HostServices, LogLine, OutboundHttp, OutboundRequest};

    use super::*;
    use crate::modules::CompiledModules;
    use crate::worker::Reply;

    struct NoLog;
    impl AppLog for NoLog {
        fn write(&self, _line: LogLine) {}
    }
    struct NoOutbound;
    impl OutboundHttp for NoOutbound {
        fn fetch(&self, _request: OutboundRequest) -> BoxFuture<'static, Result<OutboundResponse, OutboundError>> {
            Box::pin(async { Err(OutboundError::Denied { message: "no".to_owned() }) })
        }
    }

    /// Prints how much of QuickJS's heap each stage of an instance takes.
    #[test]
    fn memory_of_an_instance() {
        let runtime = Runtime::new().unwrap();
        let empty = runtime.memory_usage().malloc_size;
        let context = Context::full(&runtime).unwrap();
        let with_context = runtime.memory_usage().malloc_size;
        context.with(|ctx| {
            let (prelude, _) = load_bytecode(&ctx, prelude_part("core").unwrap()).and_then(Module::eval).unwrap();
            let _: Function = prelude.get("default").unwrap();
        });
        let with_prelude_module = runtime.memory_usage().malloc_size;
        println!(
            "runtime {empty} B, + context {} B, + core prelude module {} B; core prelude bytecode {} B",
            with_context - empty,
            with_prelude_module - with_context,
            prelude_part("core").unwrap().len()
        );

        let source = r#"export default { async fetch(request) { return new Response("Hello, world!"); } };"#;
        let modules = CompiledModules::compile([("index.js", source)].into_iter(), 1 << 24).unwrap();
        let limits = FunctionLimits {
            cpu_ms_per_request: 1000,
            memory_bytes: 64 << 20,
            stack_bytes: 256 << 10,
            wall_timeout_ms: 1000,
            max_response_bytes: 1 << 20,
            max_outbound_requests: 1,
            max_outbound_bytes: 1 << 20,
        };
        let image = Arc::new(AppImage {
            id: 1,
            key: AppKey::new("t", "memory"),
            modules: Arc::new(modules),
            vars: BTreeMap::new(),
            secrets: BTreeMap::new(),
            limits,
            host: HostServices {
                outbound: Arc::new(NoOutbound),
                log: Arc::new(NoLog),
                kv: None,
                sql: None,
                cache: None,
                ai: None,
                vectors: None,
            },
        });
        let mut instance = Instance::new(&image, &mut CpuBudget::new(1000)).unwrap();
        let installed = instance._runtime.memory_usage().malloc_size;
        let usage = |runtime: &Runtime| {
            let u = runtime.memory_usage();
            format!(
                "malloc {} in {}; atoms {} ({} B), strings {} ({} B), objects {} ({} B), props {} ({} B), shapes {} ({} B), js functions {} ({} B, code {} B), c functions {}",
                u.malloc_size,
                u.malloc_count,
                u.atom_count,
                u.atom_size,
                u.str_count,
                u.str_size,
                u.obj_count,
                u.obj_size,
                u.prop_count,
                u.prop_size,
                u.shape_count,
                u.shape_size,
                u.js_func_count,
                u.js_func_size,
                u.js_func_code_size,
                u.c_func_count
            )
        };
        println!("bare context: {}", usage(&runtime));
        println!("installed instance: {}", usage(&instance._runtime));
        let tokio = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let serve_once = |instance: &mut Instance| {
            let (sender, receiver) = tokio::sync::oneshot::channel();
            let request = FunctionRequest {
                method: "GET".into(),
                url: "http://a/".into(),
                headers: vec![("a".into(), "b".into())],
                body: Default::default(),
                request_id: "r".into(),
                trace_context: Vec::new(),
                user: None,
            };
            let reply = Reply { sender: Some(sender), app: image.clone(), request_id: "r".into() };
            let job = InvokeJob {
                app: image.clone(),
                entry: "index.js".into(),
                request,
                deadline: Instant::now() + Duration::from_secs(1),
                reply,
            };
            tokio.block_on(instance.serve(job, CpuBudget::new(1000)));
            assert_eq!(tokio.block_on(receiver).unwrap().unwrap().status, 200);
        };
        serve_once(&mut instance);
        let first = instance._runtime.memory_usage().malloc_size;
        for _ in 0..100 {
            serve_once(&mut instance);
        }
        let hundred = instance._runtime.memory_usage().malloc_size;
        let resident = || {
            let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
                .unwrap_or(0)
                * 1024
        };
        // QuickJS serves small allocations from 4 KiB arenas per size class and runtime, so resident
        // memory exceeds the heap it reports by the arenas' unused room.
        let before = resident();
        let bare: Vec<(Context, Runtime)> = (0..300)
            .map(|_| {
                let runtime = Runtime::new().unwrap();
                (Context::full(&runtime).unwrap(), runtime)
            })
            .collect();
        let bare_heap: i64 = bare.iter().map(|(_, runtime)| runtime.memory_usage().malloc_size).sum();
        println!(
            "300 bare runtimes + contexts: resident {} B each, QuickJS heap {} B each",
            (resident() - before) / 300,
            bare_heap / 300
        );
        let before = resident();
        let mut warm = Vec::new();
        for _ in 0..300 {
            let mut extra = Instance::new(&image, &mut CpuBudget::new(1000)).unwrap();
            serve_once(&mut extra);
            warm.push(extra);
        }
        let heap: i64 = warm.iter().map(|extra| extra._runtime.memory_usage().malloc_size).sum();
        println!(
            "300 warm instances: resident {} B each, QuickJS heap {} B each",
            (resident() - before) / 300,
            heap / 300
        );
        let started = Instant::now();
        for _ in 0..1000 {
            serve_once(&mut instance);
        }
        println!("one request served in the worker, no thread hop: {:?}", started.elapsed() / 1000);
        instance._runtime.run_gc();
        let collected = instance._runtime.memory_usage();
        println!(
            "instance installed {installed} B, after 1 request {first} B, after 101 requests {hundred} B, after gc {} B in {} allocations",
            collected.malloc_size, collected.malloc_count
        );
    }
}

#[cfg(test)]
mod context_size {
    use rquickjs::context::intrinsic::*;
    use rquickjs::{Context, Runtime};

    fn size<I: rquickjs::context::Intrinsic>() -> i64 {
        let runtime = Runtime::new().unwrap();
        let before = runtime.memory_usage().malloc_size;
        let _context = Context::custom::<I>(&runtime).unwrap();
        runtime.memory_usage().malloc_size - before
    }

    #[test]
    fn sizes_of_intrinsics() {
        println!("base {}", size::<()>());
        println!("date {}", size::<(Date,)>() - size::<()>());
        println!("regexp {}", size::<(RegExp, RegExpCompiler)>() - size::<()>());
        println!("json {}", size::<(Json,)>() - size::<()>());
        println!("proxy {}", size::<(Proxy,)>() - size::<()>());
        println!("mapset {}", size::<(MapSet,)>() - size::<()>());
        println!("typed arrays {}", size::<(TypedArrays,)>() - size::<()>());
        println!("promise {}", size::<(Promise,)>() - size::<()>());
        println!("weakref {}", size::<(WeakRef,)>() - size::<()>());
        println!("performance {}", size::<(Performance,)>() - size::<()>());
        println!("dom exception {}", size::<(DOMException,)>() - size::<()>());
        println!("all {}", size::<All>());
    }
}
