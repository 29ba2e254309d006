//! The contract between the platform and the engines that run app code.
//!
//! The gateway hands an [`Engine`] the code of one deployment ([`AppCode`]) and gets back a
//! [`LoadedApp`] to invoke per request. Everything an app may do beyond computing is a host
//! service in [`HostServices`], built once per deployment by the capability crates, so every
//! engine enforces the same rules and only translates types.

pub mod ai;
pub mod cache;
pub mod kv;
pub mod loader;
pub mod mask;
pub mod sql;
pub mod vectors;

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use deployment::{AppKey, Deployment};
use futures::future::BoxFuture;

/// An engine runs one kind of code (JavaScript modules today, WebAssembly components later).
pub trait Engine: Send + Sync + 'static {
    /// Compiles the app's modules ahead of the first request and returns the loaded app.
    /// A module that does not compile is a [`LoadError`] the deploy pipeline reports to the builder.
    fn load(&self, code: AppCode) -> Result<Arc<dyn LoadedApp>, LoadError>;
}

/// One deployment, ready to serve. Dropping the last reference releases its instances.
pub trait LoadedApp: Send + Sync + 'static {
    /// Runs the function whose module is `entry` (a bundle path) for one request.
    fn invoke(
        &self,
        entry: &str,
        request: FunctionRequest,
    ) -> BoxFuture<'static, Result<FunctionResponse, InvokeError>>;
}

/// The code and capabilities of one deployment.
#[derive(Clone)]
pub struct AppCode {
    pub deployment: Arc<Deployment>,
    /// Source of every JavaScript module in the bundle, by bundle path (`functions/api.js`).
    /// Relative imports between them resolve inside this map and nowhere else.
    pub modules: BTreeMap<String, Arc<str>>,
    pub host: HostServices,
    /// The app's secrets, resolved from `spec.secretsRef`, given to functions as `env.NAME`
    /// beside `spec.vars`. Never logged, never part of an error.
    pub secrets: BTreeMap<String, SecretValue>,
}

/// A secret's value. Its `Debug` output is redacted and its memory is wiped when dropped, so a
/// stray `{:?}` or a core dump of freed memory does not reveal it.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(zeroize::Zeroizing<String>);

impl SecretValue {
    pub fn new(value: String) -> SecretValue {
        SecretValue(zeroize::Zeroizing::new(value))
    }

    /// The value itself: only for handing it to the app or encrypting it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretValue(<redacted>)")
    }
}

/// What the app's code may call, already scoped to this one app.
#[derive(Clone)]
pub struct HostServices {
    pub outbound: Arc<dyn OutboundHttp>,
    pub log: Arc<dyn AppLog>,
    /// The app's key-value namespace, bound as `env.<binding>`, when `spec.data.kv` asks for one.
    pub kv: Option<KvBinding>,
    /// The app's SQL database, bound as `env.<binding>`, when `spec.data.sql` asks for one.
    pub sql: Option<SqlBinding>,
    /// The app's caches (`caches.default`, `caches.open`); `None` when the server caches nothing,
    /// and then nothing is ever found.
    pub cache: Option<std::sync::Arc<dyn cache::CacheHost>>,
    /// The app's AI models, bound as `env.AI` when `spec.ai.models` lists any.
    pub ai: Option<std::sync::Arc<dyn ai::AiHost>>,
    /// The app's vector index, bound as `env.<binding>`, when `spec.data.vectors` asks for one.
    pub vectors: Option<vectors::VectorBinding>,
}

/// What apps' data calls did, for usage, cost and metrics; the capability crates report each
/// call to the meter the binary gives them.
pub trait DataMeter: Send + Sync + 'static {
    fn record_data(&self, app: &AppKey, ops: DataOps);
}

/// Counts of one or more data calls of an app.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DataOps {
    pub kv_reads: u64,
    /// Puts, deletes and increments.
    pub kv_writes: u64,
    pub kv_lists: u64,
    pub sql_rows_read: u64,
    pub sql_rows_written: u64,
    /// Vector searches (`query`, `queryText`).
    pub vector_queries: u64,
    /// Vectors written (inserted, upserted, deleted).
    pub vectors_written: u64,
    /// Tokens the platform's embedding model read for the app (`env.AI.run`, `upsertText`,
    /// `queryText`).
    pub embedding_tokens: u64,
}

/// A meter that counts nothing, for tests and tools.
pub struct NoDataMeter;

impl DataMeter for NoDataMeter {
    fn record_data(&self, _: &AppKey, _: DataOps) {}
}

/// A key-value namespace and the name it is bound under in `env`.
#[derive(Clone)]
pub struct KvBinding {
    pub binding: String,
    pub store: Arc<dyn kv::KvHost>,
}

/// A SQL database and the name it is bound under in `env`.
#[derive(Clone)]
pub struct SqlBinding {
    pub binding: String,
    pub database: Arc<dyn sql::SqlHost>,
}

/// An HTTP request as a function sees it.
#[derive(Clone, Debug)]
pub struct FunctionRequest {
    pub method: String,
    /// Absolute URL as the client addressed the app (`http://localhost:8080/apps/growth/where2eat/api/pick?x=1`).
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    /// The platform's request id, also in every log line of this request.
    pub request_id: String,
    /// W3C trace context (`traceparent`, `tracestate`) the function's outbound calls carry, so
    /// the next hop joins the request's trace; empty when there is none.
    pub trace_context: Vec<(String, String)>,
    /// The signed-in user, given to the function as `env.USER` (null when anonymous).
    pub user: Option<FunctionUser>,
}

/// Who is calling, as the app's code sees it (`env.USER`). Never a credential.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FunctionUser {
    pub subject: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub groups: Vec<String>,
}

/// A complete response from a function; the engine collects streamed bodies up to the limit.
#[derive(Clone, Debug)]
pub struct FunctionResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    /// CPU time the app's code spent on the request until its response was complete.
    pub cpu: std::time::Duration,
    /// The instance's heap in use when the response was complete, in bytes.
    pub heap_bytes: u64,
}

/// Why a module failed to load (syntax error, missing import, missing default export).
#[derive(Debug, thiserror::Error)]
#[error("{entry}: {message}")]
pub struct LoadError {
    pub entry: String,
    pub message: String,
}

/// Why an invocation produced no response. The gateway maps every variant to a clean 500 or 503
/// carrying the request id, and the reason goes to the app's log, never to the caller.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    #[error("uncaught exception: {message}")]
    Exception { message: String },
    #[error("the function used more than its {limit_ms} ms of CPU time")]
    CpuLimit { limit_ms: u64 },
    #[error("the function used more than its {limit_bytes} bytes of memory")]
    MemoryLimit { limit_bytes: u64 },
    #[error("the function exceeded its stack limit (too deep recursion)")]
    StackOverflow,
    #[error("the function did not finish within {limit_ms} ms")]
    WallTimeout { limit_ms: u64 },
    #[error("the response body is larger than the limit of {limit_bytes} bytes")]
    ResponseTooLarge { limit_bytes: u64 },
    #[error("the function returned something that is not a Response: {message}")]
    BadReturn { message: String },
    #[error("the module could not be loaded: {0}")]
    Load(#[from] LoadError),
    #[error("the engine is overloaded")]
    Overloaded,
}

impl InvokeError {
    /// 503 for limits and overload (retrying may help), 500 for faults in the app's code.
    pub fn status(&self) -> u16 {
        match self {
            InvokeError::CpuLimit { .. }
            | InvokeError::MemoryLimit { .. }
            | InvokeError::WallTimeout { .. }
            | InvokeError::Overloaded => 503,
            InvokeError::Exception { .. }
            | InvokeError::StackOverflow
            | InvokeError::ResponseTooLarge { .. }
            | InvokeError::BadReturn { .. }
            | InvokeError::Load(_) => 500,
        }
    }

    /// A bounded code for logs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            InvokeError::Exception { .. } => "exception",
            InvokeError::CpuLimit { .. } => "cpu_limit",
            InvokeError::MemoryLimit { .. } => "memory_limit",
            InvokeError::StackOverflow => "stack_overflow",
            InvokeError::WallTimeout { .. } => "wall_timeout",
            InvokeError::ResponseTooLarge { .. } => "response_too_large",
            InvokeError::BadReturn { .. } => "bad_return",
            InvokeError::Load(_) => "load_error",
            InvokeError::Overloaded => "overloaded",
        }
    }
}

/// Outbound HTTP for one app: the `fetch()` of its code. Implementations check the app's egress
/// allow-list and the addresses a host resolves to before connecting, and again on every redirect.
pub trait OutboundHttp: Send + Sync + 'static {
    /// The returned future may be awaited on any thread and any async runtime.
    fn fetch(&self, request: OutboundRequest) -> BoxFuture<'static, Result<OutboundResponse, OutboundError>>;
}

#[derive(Clone, Debug)]
pub struct OutboundRequest {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    /// The incoming request on whose behalf the call is made.
    pub request_id: String,
    /// Its trace context, added to the call's headers unless the app set its own.
    pub trace_context: Vec<(String, String)>,
}

#[derive(Clone, Debug)]
pub struct OutboundResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    /// The final URL after redirects.
    pub url: String,
}

/// A failed outbound call, as the app's code sees it (a rejected `fetch` promise with this message).
#[derive(Clone, Debug, thiserror::Error)]
pub enum OutboundError {
    /// Refused by egress policy: the message names the host and the rule, and how to allow it.
    #[error("{message}")]
    Denied { message: String },
    /// The call was allowed but failed (DNS, connect, TLS, timeout, too large).
    #[error("{message}")]
    Failed { message: String },
}

/// Where an app's console output and errors go.
pub trait AppLog: Send + Sync + 'static {
    fn write(&self, line: LogLine);
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    pub app: AppKey,
    pub request_id: String,
    pub level: LogLevel,
    pub message: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

/// One outbound call of an app, allowed or not: what the egress log and the metrics record.
/// Hosts and addresses only, never paths, queries, headers or bodies, which may carry secrets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EgressRecord {
    pub time: std::time::SystemTime,
    pub app: AppKey,
    pub request_id: String,
    pub method: String,
    /// The host of the last hop tried: the app's own, or the redirect target that was refused.
    pub host: String,
    /// The address connected to, when a connection was made.
    pub address: Option<std::net::IpAddr>,
    pub decision: EgressDecision,
    /// Why it was denied or failed: a bounded code (`blocked_address`, `host_not_allowed`, `timeout`).
    pub code: Option<&'static str>,
    pub status: Option<u16>,
    /// Request body bytes sent and response body bytes received.
    pub bytes_out: u64,
    pub bytes_in: u64,
    pub duration: std::time::Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EgressDecision {
    Allowed,
    Denied,
    /// Allowed, but it failed (DNS, connect, timeout, too large).
    Failed,
}

impl EgressDecision {
    pub fn as_str(self) -> &'static str {
        match self {
            EgressDecision::Allowed => "allowed",
            EgressDecision::Denied => "denied",
            EgressDecision::Failed => "failed",
        }
    }
}

/// Where outbound calls are recorded. Must not block: it is called on the request path.
pub trait EgressRecorder: Send + Sync + 'static {
    fn record(&self, record: EgressRecord);
}
