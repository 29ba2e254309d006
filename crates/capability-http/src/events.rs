//! The log events of outbound HTTP: one per egress decision and one per finished call.
//!
//! They carry the host only, never the path, query, headers or body, which may hold secrets.

use std::time::Duration;

use deployment::AppKey;

/// Whether one hop of a `fetch` may go ahead.
pub(crate) struct EgressDecision<'a> {
    pub(crate) app: &'a AppKey,
    pub(crate) request_id: &'a str,
    pub(crate) method: &'a str,
    /// The host as the URL spells it, or empty when the URL has none.
    pub(crate) host: &'a str,
    /// 0 for the app's own URL, then 1, 2, ... for each redirect.
    pub(crate) hop: u32,
    /// `None` when allowed, otherwise the bounded denial code.
    pub(crate) denied: Option<&'static str>,
}

impl EgressDecision<'_> {
    pub(crate) fn emit(&self) {
        match self.denied {
            None => tracing::debug!(
                namespace = %self.app.namespace,
                app = %self.app.name,
                request_id = %self.request_id,
                method = %self.method,
                host = %self.host,
                hop = self.hop,
                decision = "allowed",
                "outbound fetch allowed"
            ),
            Some(error_code) => tracing::warn!(
                namespace = %self.app.namespace,
                app = %self.app.name,
                request_id = %self.request_id,
                method = %self.method,
                host = %self.host,
                hop = self.hop,
                decision = "denied",
                error_code,
                "outbound fetch denied"
            ),
        }
    }
}

/// How a `fetch` that got past the first check ended.
pub(crate) struct FetchFinished<'a> {
    pub(crate) app: &'a AppKey,
    pub(crate) request_id: &'a str,
    pub(crate) method: &'a str,
    /// The first host: the one the app asked for.
    pub(crate) host: &'a str,
    pub(crate) outcome: FetchOutcome,
    pub(crate) duration: Duration,
}

pub(crate) enum FetchOutcome {
    Response {
        status: u16,
        bytes: usize,
        redirects: u32,
    },
    /// A denial on a later hop, or a failure; the code is bounded.
    Error {
        error_code: &'static str,
    },
}

impl FetchFinished<'_> {
    pub(crate) fn emit(&self) {
        let duration_ms = self.duration.as_millis() as u64;
        match self.outcome {
            FetchOutcome::Response { status, bytes, redirects } => tracing::info!(
                namespace = %self.app.namespace,
                app = %self.app.name,
                request_id = %self.request_id,
                method = %self.method,
                host = %self.host,
                status,
                bytes,
                redirects,
                duration_ms,
                "outbound fetch finished"
            ),
            FetchOutcome::Error { error_code } => tracing::warn!(
                namespace = %self.app.namespace,
                app = %self.app.name,
                request_id = %self.request_id,
                method = %self.method,
                host = %self.host,
                error_code,
                duration_ms,
                "outbound fetch failed"
            ),
        }
    }
}
