//! Integration tests of outbound HTTP against a real HTTP server on an ephemeral loopback port.
//!
//! Names are resolved by a test resolver (made-up `.test` hosts mapped to chosen addresses), so
//! every case runs offline and every address still goes through the real policy checks.

mod fetch;
mod ssrf;
mod upstream;

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use capability_http::{NameResolver, OutboundConfig, OutboundHttpFactory};
use deployment::{AppKey, Deployment, FunctionLimits};
use futures::future::BoxFuture;
use runtime::{
    EgressDecision, EgressRecord, EgressRecorder, OutboundError, OutboundHttp, OutboundRequest, OutboundResponse,
};

/// Maps made-up host names to addresses; any other name does not resolve.
struct TestResolver {
    names: HashMap<&'static str, Vec<IpAddr>>,
}

impl TestResolver {
    fn new() -> TestResolver {
        let table: &[(&str, &[&str])] = &[
            ("upstream.test", &["127.0.0.1"]),
            ("other.test", &["127.0.0.1"]),
            ("public-and-loopback.test", &["93.184.215.14", "127.0.0.1"]),
            ("metadata.test", &["169.254.169.254"]),
            ("mapped-loopback.test", &["::ffff:127.0.0.1"]),
            ("private.test", &["10.0.0.7"]),
        ];
        let names = table
            .iter()
            .map(|(name, addresses)| (*name, addresses.iter().map(|address| address.parse().unwrap()).collect()))
            .collect();
        TestResolver { names }
    }
}

impl NameResolver for TestResolver {
    fn lookup(&self, host: &str) -> BoxFuture<'static, io::Result<Vec<IpAddr>>> {
        let result = match self.names.get(host) {
            Some(addresses) => Ok(addresses.clone()),
            None => Err(io::Error::new(io::ErrorKind::NotFound, "no such test host")),
        };
        Box::pin(async move { result })
    }
}

/// Limits generous enough for every test; tests that exercise a limit override it.
fn config(allowed_internal: &[&str]) -> OutboundConfig {
    OutboundConfig {
        allowed_internal: allowed_internal.iter().map(|range| range.parse().unwrap()).collect(),
        allowed_internal_by_namespace: Default::default(),
        internal_apis: Vec::new(),
        timeout: Duration::from_secs(10),
        max_response_bytes: 1024 * 1024,
        max_redirects: 5,
        user_agent: "terrarium-test/1".to_owned(),
    }
}

/// A factory on the test's runtime, with the test resolver.
fn factory(config: OutboundConfig) -> OutboundHttpFactory {
    let runtime = tokio::runtime::Handle::current();
    OutboundHttpFactory::with_resolver(config, runtime, Arc::new(TestResolver::new()))
        .unwrap()
        .with_recorder(Arc::new(GlobalRecorder))
}

/// Every egress record of the test process, so each call can check that it was logged.
static RECORDS: std::sync::LazyLock<std::sync::Mutex<Vec<EgressRecord>>> = std::sync::LazyLock::new(Default::default);

struct GlobalRecorder;

impl EgressRecorder for GlobalRecorder {
    fn record(&self, record: EgressRecord) {
        RECORDS.lock().unwrap().push(record);
    }
}

/// The egress record of one call, by its request id.
fn record_of(request_id: &str) -> EgressRecord {
    let records = RECORDS.lock().unwrap();
    let mut matching = records.iter().filter(|record| record.request_id == request_id);
    let record = matching.next().unwrap_or_else(|| panic!("no egress record for {request_id}")).clone();
    assert!(matching.next().is_none(), "one record per call");
    record
}

fn deployment(allowed_egress: &[String]) -> Deployment {
    Deployment {
        app: AppKey::new("growth", "where2eat"),
        revision: 1,
        bundle_digest: "sha256:00".to_owned(),
        static_site: None,
        files: Default::default(),
        functions: Vec::new(),
        vars: Default::default(),
        allowed_egress: allowed_egress.to_vec(),
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
        limits: FunctionLimits {
            cpu_ms_per_request: 50,
            memory_bytes: 64 << 20,
            stack_bytes: 1 << 20,
            wall_timeout_ms: 10_000,
            max_response_bytes: 1 << 20,
            max_outbound_requests: 10,
            max_outbound_bytes: 1 << 20,
        },
    }
}

/// The app's `fetch` with the given operator ranges and `allowedEgress` entries.
fn outbound(config: OutboundConfig, allowed_egress: &[String]) -> Arc<dyn OutboundHttp> {
    match factory(config).for_deployment(&deployment(allowed_egress)) {
        Ok(outbound) => outbound,
        Err(errors) => panic!("allowedEgress {allowed_egress:?} should parse: {errors:?}"),
    }
}

fn request(method: &str, url: &str, headers: &[(&str, &str)], body: &str) -> OutboundRequest {
    OutboundRequest {
        method: method.to_owned(),
        url: url.to_owned(),
        headers: headers.iter().map(|(name, value)| (name.to_string(), value.to_string())).collect(),
        body: Bytes::from(body.to_owned()),
        request_id: format!("req-test-{}", NEXT_REQUEST.fetch_add(1, std::sync::atomic::Ordering::Relaxed)),
        trace_context: Vec::new(),
    }
}

static NEXT_REQUEST: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// GETs `url` and checks that the egress log recorded the call with the right decision.
async fn get(outbound: &Arc<dyn OutboundHttp>, url: &str) -> Result<OutboundResponse, OutboundError> {
    let request = request("GET", url, &[], "");
    let request_id = request.request_id.clone();
    let result = outbound.fetch(request).await;
    let record = record_of(&request_id);
    let expected = match &result {
        Ok(_) => EgressDecision::Allowed,
        Err(OutboundError::Denied { .. }) => EgressDecision::Denied,
        Err(OutboundError::Failed { .. }) => EgressDecision::Failed,
    };
    assert_eq!(record.decision, expected, "{url}: {record:?}");
    assert_eq!(record.app, AppKey::new("growth", "where2eat"));
    assert!(!format!("{record:?}").contains("/hello"), "paths never reach the egress log: {record:?}");
    if expected != EgressDecision::Allowed {
        assert!(record.code.is_some(), "{url}: a denial or failure has a code");
    }
    result
}

/// The message of a policy denial; panics on anything else.
fn denied(url: &str, result: Result<OutboundResponse, OutboundError>) -> String {
    match result {
        Err(OutboundError::Denied { message }) => message,
        Err(OutboundError::Failed { message }) => {
            panic!("{url}: expected a denial, got a failure: {message}")
        }
        Ok(response) => panic!("{url}: expected a denial, got status {}", response.status),
    }
}

/// The message of a failed (allowed but unsuccessful) call; panics on anything else.
fn failed(url: &str, result: Result<OutboundResponse, OutboundError>) -> String {
    match result {
        Err(OutboundError::Failed { message }) => message,
        Err(OutboundError::Denied { message }) => {
            panic!("{url}: expected a failure, got a denial: {message}")
        }
        Ok(response) => panic!("{url}: expected a failure, got status {}", response.status),
    }
}

fn body_text(response: &OutboundResponse) -> &str {
    std::str::from_utf8(&response.body).unwrap()
}

fn entries(entries: &[&str]) -> Vec<String> {
    entries.iter().map(|entry| entry.to_string()).collect()
}
