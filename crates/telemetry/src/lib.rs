//! The process's logs and traces.
//!
//! Logs go to standard error through `tracing`. With an OTLP endpoint configured, spans (an app
//! request and its phases) are exported as OpenTelemetry traces over OTLP/HTTP (JSON), in
//! batches from a thread of their own. A request's trace id is its request id: the same 128 bits
//! (`x-request-id` 0194e1c2-…, trace id 0194e1c2…), so a log line and its trace find each other.

pub mod config;

use std::time::Duration;

use anyhow::Context as _;
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState, TracerProvider};
use opentelemetry_otlp::{Protocol, WithExportConfig};
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

/// The span of one app request, in the trace whose id is the request id (a UUID). Phases are
/// its children.
pub fn request_span(request_id: &str) -> tracing::Span {
    let span = tracing::info_span!(
        target: "gateway",
        "app request",
        request_id = %request_id,
        namespace = tracing::field::Empty,
        app = tracing::field::Empty,
        status = tracing::field::Empty
    );
    if let Some(trace_id) = trace_id_of(request_id) {
        let span_id = SpanId::from_bytes(trace_id.to_bytes()[8..].try_into().unwrap_or([1; 8]));
        let remote = SpanContext::new(trace_id, span_id, TraceFlags::SAMPLED, true, TraceState::default());
        let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(remote));
    }
    span
}

/// The 128 bits of a UUID request id as a trace id.
fn trace_id_of(request_id: &str) -> Option<TraceId> {
    let hex: String = request_id.chars().filter(|c| *c != '-').collect();
    (hex.len() == 32).then(|| TraceId::from_hex(&hex).ok()).flatten().filter(|id| *id != TraceId::INVALID)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_uuid_request_id_is_the_trace_id() {
        let id = trace_id_of("0194e1c2-7a3b-7cde-8f01-23456789abcd").unwrap();
        assert_eq!(id.to_string(), "0194e1c27a3b7cde8f0123456789abcd");
        assert!(trace_id_of("not-a-uuid").is_none());
        assert!(trace_id_of("00000000-0000-0000-0000-000000000000").is_none());
    }
}
