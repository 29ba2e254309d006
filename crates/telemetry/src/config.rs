//! `[telemetry]` in `terrarium.toml`: where traces go.

use std::time::Duration;

use serde::Deserialize;

use crate::TelemetryConfig;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetrySection {
    /// An OTLP/HTTP collector (`http://otel-collector:4318`) to send traces to; none by default.
    pub otlp_endpoint: Option<String>,
    pub service_name: String,
    /// How often finished spans are sent, in milliseconds.
    pub export_every_ms: u64,
}

impl Default for TelemetrySection {
    fn default() -> TelemetrySection {
        TelemetrySection { otlp_endpoint: None, service_name: "terrarium".to_owned(), export_every_ms: 5000 }
    }
}

impl TelemetrySection {
    /// Every problem of the section, each naming its key.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(endpoint) = &self.otlp_endpoint
            && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
        {
            problems.push(format!(
                "telemetry.otlp_endpoint: {endpoint:?} is not an OTLP/HTTP URL like http://otel-collector:4318"
            ));
        }
        if self.service_name.trim().is_empty() {
            problems.push("telemetry.service_name is empty".to_owned());
        }
        problems
    }

    /// The process's telemetry, logging at `log_filter`.
    pub fn build(&self, log_filter: String) -> TelemetryConfig {
        TelemetryConfig {
            log_filter,
            otlp_endpoint: self.otlp_endpoint.clone(),
            service_name: self.service_name.clone(),
            export_every: Duration::from_millis(self.export_every_ms.max(100)),
        }
    }
}
