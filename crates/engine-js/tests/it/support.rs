//! Test support: an engine, apps built from JavaScript source strings, a log that records lines,
//! and an outbound HTTP capability that answers from a fixed table.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use deployment::{AppKey, Deployment, FunctionLimits, FunctionRoute, RoutePattern};
use engine_js::{JsEngine, JsEngineConfig};
use futures::future::BoxFuture;
use runtime::{
    AppCode, AppLog, Engine, FunctionRequest, FunctionResponse, HostServices, InvokeError, LoadError, LoadedApp,
    LogLevel, LogLine, OutboundError, OutboundHttp, OutboundRequest, OutboundResponse,
};

pub const ENTRY: &str = "functions/index.js";

pub fn engine() -> JsEngine {
    JsEngine::new(JsEngineConfig {
        worker_threads: 2,
        worker_stack_bytes: 4 * 1024 * 1024,
        queue_capacity_per_worker: 1024,
        max_instances_per_app: 4,
        idle_instances_per_app: 1,
        idle_instance_timeout: None,
    })
}

pub fn limits() -> FunctionLimits {
    FunctionLimits {
        cpu_ms_per_request: 100,
        memory_bytes: 16 * 1024 * 1024,
        stack_bytes: 512 * 1024,
        wall_timeout_ms: 3000,
        max_response_bytes: 1024 * 1024,
        max_outbound_requests: 3,
        max_outbound_bytes: 1 << 20,
    }
}

/// Every line an app wrote, in order.
#[derive(Default)]
pub struct TestLog {
    pub lines: Mutex<Vec<LogLine>>,
}

impl AppLog for TestLog {
    fn write(&self, line: LogLine) {
        self.lines.lock().unwrap().push(line);
    }
}

impl TestLog {
    pub fn lines(&self) -> Vec<LogLine> {
        self.lines.lock().unwrap().clone()
    }

    /// Whether a line of this level for this request contains `fragment`.
    pub fn has(&self, request_id: &str, level: LogLevel, fragment: &str) -> bool {
        self.lines()
            .iter()
            .any(|line| line.request_id == request_id && line.level == level && line.message.contains(fragment))
    }
}

/// Outbound HTTP from a fixed table: `denied.test` is refused, `slow.test` answers after 300 ms,
/// anything else echoes the request.
pub struct TestOutbound {
    pub requests: Mutex<Vec<OutboundRequest>>,
}

impl OutboundHttp for TestOutbound {
    fn fetch(&self, request: OutboundRequest) -> BoxFuture<'static, Result<OutboundResponse, OutboundError>> {
        self.requests.lock().unwrap().push(request.clone());
        Box::pin(async move {
            let url = url::Url::parse(&request.url).unwrap();
            match url.host_str().unwrap_or_default() {
                "denied.test" => Err(OutboundError::Denied {
                    message: "egress to denied.test is not allowed: add it to spec.allowedEgress".to_owned(),
                }),
                "failing.test" => Err(OutboundError::Failed { message: "connection refused".to_owned() }),
                host => {
                    if host == "slow.test" {
                        tokio::time::sleep(Duration::from_millis(300)).await;
                    }
                    let body = serde_json::json!({
                        "method": request.method,
                        "url": request.url,
                        "headers": request.headers,
                        "body": String::from_utf8_lossy(&request.body),
                        "request_id": request.request_id,
                    });
                    Ok(OutboundResponse {
                        status: 200,
                        headers: vec![
                            ("content-type".to_owned(), "application/json".to_owned()),
                            ("x-upstream".to_owned(), host.to_owned()),
                        ],
                        body: Bytes::from(body.to_string()),
                        url: request.url,
                    })
                }
            }
        })
    }
}

/// One loaded app with its log and outbound capability.
pub struct TestApp {
    pub app: Arc<dyn LoadedApp>,
    pub log: Arc<TestLog>,
    pub outbound: Arc<TestOutbound>,
}

pub struct AppBuilder {
    pub name: String,
    pub modules: BTreeMap<String, Arc<str>>,
    pub functions: Vec<(String, String)>,
    pub vars: BTreeMap<String, String>,
    pub secrets: BTreeMap<String, runtime::SecretValue>,
    pub limits: FunctionLimits,
}

impl AppBuilder {
    pub fn new(name: &str, source: &str) -> AppBuilder {
        AppBuilder {
            name: name.to_owned(),
            modules: BTreeMap::from([(ENTRY.to_owned(), Arc::from(source))]),
            functions: vec![("/*".to_owned(), ENTRY.to_owned())],
            vars: BTreeMap::new(),
            secrets: BTreeMap::new(),
            limits: limits(),
        }
    }

    pub fn module(mut self, path: &str, source: &str) -> AppBuilder {
        self.modules.insert(path.to_owned(), Arc::from(source));
        self
    }

    pub fn var(mut self, name: &str, value: &str) -> AppBuilder {
        self.vars.insert(name.to_owned(), value.to_owned());
        self
    }

    pub fn secret(mut self, name: &str, value: &str) -> AppBuilder {
        self.secrets.insert(name.to_owned(), runtime::SecretValue::new(value.to_owned()));
        self
    }

    pub fn limits(mut self, limits: FunctionLimits) -> AppBuilder {
        self.limits = limits;
        self
    }

    pub fn load(self, engine: &JsEngine) -> Result<TestApp, LoadError> {
        let log = Arc::new(TestLog::default());
        let outbound = Arc::new(TestOutbound { requests: Mutex::new(Vec::new()) });
        let functions = self
            .functions
            .iter()
            .map(|(route, entry)| FunctionRoute { route: RoutePattern::parse(route).unwrap(), entry: entry.clone() })
            .collect();
        let deployment = Deployment {
            app: AppKey::new("test", self.name.as_str()),
            revision: 1,
            bundle_digest: "sha256:0".to_owned(),
            static_site: None,
            files: BTreeMap::new(),
            functions,
            vars: self.vars,
            allowed_egress: Vec::new(),
            limits: self.limits,
            admission: deployment::Admission { requests_per_second: 1000, burst: 1000, concurrency: 100 },
            secrets: None,
            ttl_days: None,
            monthly_budget: None,
            monthly_requests: None,
            slo: None,
            kv_binding: None,
            kv_max_mib: None,
            ai_models: Vec::new(),
            vectors: None,
            seal_data: false,
            data_class: None,
            sql: None,
            access: deployment::AppAccess {
                owner: "user:tester".into(),
                visibility: deployment::Visibility::Public,
                groups: vec![],
            },
        };
        let code = AppCode {
            deployment: Arc::new(deployment),
            modules: self.modules,
            host: HostServices {
                outbound: outbound.clone(),
                log: log.clone(),
                kv: None,
                sql: None,
                cache: None,
                ai: None,
                vectors: None,
            },
            secrets: self.secrets,
        };
        let app = engine.load(code)?;
        Ok(TestApp { app, log, outbound })
    }
}

/// Loads a one-module app or panics with the load error.
pub fn app(engine: &JsEngine, name: &str, source: &str) -> TestApp {
    AppBuilder::new(name, source).load(engine).unwrap_or_else(|error| panic!("{name} should load: {error}"))
}

pub fn request(method: &str, path: &str) -> FunctionRequest {
    FunctionRequest {
        method: method.to_owned(),
        url: format!("http://app.test.localhost:8080{path}"),
        headers: vec![("host".to_owned(), "localhost:8080".to_owned()), ("user-agent".to_owned(), "it".to_owned())],
        body: Bytes::new(),
        request_id: format!("req-{}", uuid::Uuid::new_v4()),
        trace_context: Vec::new(),
        user: None,
    }
}

impl TestApp {
    pub async fn call(&self, request: FunctionRequest) -> Result<FunctionResponse, InvokeError> {
        self.app.invoke(ENTRY, request).await
    }

    pub async fn get(&self, path: &str) -> Result<FunctionResponse, InvokeError> {
        self.call(request("GET", path)).await
    }

    /// GETs `path` and returns the body as text, panicking on a failure.
    pub async fn text(&self, path: &str) -> String {
        let response = self
            .get(path)
            .await
            .unwrap_or_else(|error| panic!("GET {path} failed: {error}; log: {:#?}", self.log.lines()));
        String::from_utf8(response.body.to_vec()).unwrap()
    }

    pub async fn json(&self, path: &str) -> serde_json::Value {
        let text = self.text(path).await;
        serde_json::from_str(&text).unwrap_or_else(|error| panic!("{path} did not return JSON ({error}): {text}"))
    }
}

pub fn header<'a>(response: &'a FunctionResponse, name: &str) -> Option<&'a str> {
    response.headers.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.as_str())
}
