//! The process's logs and traces.
//!
//! Logs go to standard error through `tracing`. With an OTLP endpoint configured, spans (an app
//! request and its phases) are exported as OpenTelemetry traces over OTLP/HTTP (JSON), in
//! batches from a thread of their own. W3C trace context is honoured both ways: a request that
//! comes with `traceparent` (and `tracestate`) is a child of the caller's span, one without starts
//! a trace of its own, and an app's outbound `fetch` carries the current span's `traceparent` so
//! the next hop joins the trace. The request id is an attribute of the request's span
//! (`request_id`), so a log line and its trace find each other.

pub mod config;

use std::time::Duration;

use anyhow::Context as _;
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt, TracerProvider};
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

pub struct TelemetryConfig {
    /// Log filter, like `info` or `terrarium=debug,info`.
    pub log_filter: String,
    /// Base URL of an OTLP/HTTP collector (`http://otel-collector:4318`); traces are sent to
    /// `<endpoint>/v1/traces`. `None`: no traces.
    pub otlp_endpoint: Option<String>,
    pub service_name: String,
    /// How often finished spans are sent.
    pub export_every: Duration,
}

/// Keeps the exporter running; dropping it sends what is left.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            let _ = provider.shutdown();
        }
    }
}

/// Installs the global subscriber: logs to standard error, and traces when configured.
pub fn init(config: TelemetryConfig) -> anyhow::Result<Telemetry> {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log_filter).context("invalid --log filter")?;
    let Some(endpoint) = &config.otlp_endpoint else {
        let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
        tracing_subscriber::registry().with(filter).with(logs).init();
        return Ok(Telemetry { provider: None });
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpJson)
        .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
        .with_timeout(Duration::from_secs(10))
        .build()
        .with_context(|| format!("telemetry.otlp_endpoint: {endpoint:?} cannot be used"))?;
    let processor = BatchSpanProcessor::builder(exporter)
        .with_batch_config(BatchConfigBuilder::default().with_scheduled_delay(config.export_every).build())
        .build();
    let resource = opentelemetry_sdk::Resource::builder().with_service_name(config.service_name.clone()).build();
    let provider = SdkTracerProvider::builder().with_span_processor(processor).with_resource(resource).build();
    let tracer = provider.tracer("terrarium");
    // Only spans of the platform's own crates become traces, whatever the log filter says.
    let traces = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_filter(tracing_subscriber::filter::Targets::new().with_target("gateway", tracing::Level::INFO));
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_filter(filter);
    tracing_subscriber::registry().with(traces).with(logs).init();
    Ok(Telemetry { provider: Some(provider) })
}

/// The span of one app request: a child of the caller's span when the request carries W3C trace
/// context (`traceparent`, `tracestate`), else the root of a trace of its own. Phases are its
/// children; the request id is its attribute.
pub fn request_span(request_id: &str, headers: &http::HeaderMap) -> tracing::Span {
    let span = tracing::info_span!(
        target: "gateway",
        "app request",
        request_id = %request_id,
        namespace = tracing::field::Empty,
        app = tracing::field::Empty,
        status = tracing::field::Empty
    );
    let caller = TraceContextPropagator::new().extract(&Headers(headers));
    if caller.span().span_context().is_valid() {
        let _ = span.set_parent(caller);
    }
    span
}

/// The trace context an outbound call made now carries (`traceparent`, and `tracestate` when
/// there is one): the current span's, so the next hop is its child. When no span is traced (no
/// OTLP endpoint), the caller's context as it came in (`incoming`), so the trace still goes on.
pub fn outgoing_trace_context(incoming: &http::HeaderMap) -> Vec<(String, String)> {
    let propagator = TraceContextPropagator::new();
    let current = tracing::Span::current().context();
    let context = match current.span().span_context().is_valid() {
        true => current,
        false => propagator.extract(&Headers(incoming)),
    };
    if !context.span().span_context().is_valid() {
        return Vec::new();
    }
    let mut fields = std::collections::HashMap::new();
    propagator.inject_context(&context, &mut fields);
    let mut fields: Vec<(String, String)> = fields.into_iter().filter(|(_, value)| !value.is_empty()).collect();
    fields.sort();
    fields
}

/// Request headers as OpenTelemetry's propagators read them.
struct Headers<'a>(&'a http::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> http::HeaderMap {
        pairs.iter().map(|(name, value)| (http::HeaderName::from_static(name), value.parse().unwrap())).collect()
    }

    #[test]
    fn without_a_traced_span_the_callers_context_goes_on_unchanged() {
        let caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let incoming = headers(&[("traceparent", caller), ("tracestate", "vendor=1")]);
        assert_eq!(
            outgoing_trace_context(&incoming),
            [("traceparent".to_owned(), caller.to_owned()), ("tracestate".to_owned(), "vendor=1".to_owned())]
        );
        // A malformed or absent context is not invented.
        assert!(outgoing_trace_context(&headers(&[("traceparent", "00-nonsense-01")])).is_empty());
        assert!(outgoing_trace_context(&http::HeaderMap::new()).is_empty());
    }
}
