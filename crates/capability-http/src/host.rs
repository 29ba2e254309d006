//! What an app's code calls: `fetch`, checked on every hop, with redirects followed by hand and a
//! cap on the response body.

use std::collections::HashMap;
use std::error::Error as _;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use deployment::AppKey;
use egress::{AddressPolicy, AllowList, Denied};
use futures::future::BoxFuture;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode};
use runtime::{EgressRecord, EgressRecorder, OutboundError, OutboundHttp, OutboundRequest, OutboundResponse};
use tokio::runtime::Handle;
use url::Url;

use crate::AppTokens;
use crate::config::OutboundConfig;
use crate::events::{EgressDecision, FetchFinished, FetchOutcome};
use crate::resolve::{ResolveDenied, ResolveFailed};

/// What every app's outbound HTTP shares: the client, the address policy, the limits and the
/// runtime that does the I/O.
pub(crate) struct Shared {
    /// The client and address policy of apps whose namespace has no internal ranges of its own.
    pub(crate) default_network: Arc<Network>,
    pub(crate) by_namespace: HashMap<String, Arc<Network>>,
    pub(crate) config: OutboundConfig,
    pub(crate) runtime: Handle,
    pub(crate) recorder: Option<Arc<dyn EgressRecorder>>,
    pub(crate) app_tokens: Option<Arc<dyn AppTokens>>,
}

/// An HTTP client whose resolver enforces one address policy, and that policy.
pub(crate) struct Network {
    pub(crate) client: reqwest::Client,
    pub(crate) policy: Arc<AddressPolicy>,
}

/// One deployment's `fetch`: its allow list, parsed once, and the shared parts.
pub(crate) struct AppOutbound {
    inner: Arc<AppInner>,
}

struct AppInner {
    app: AppKey,
    allow_list: AllowList,
    network: Arc<Network>,
    shared: Arc<Shared>,
}

/// What the egress log learns about a call as it goes.
#[derive(Default)]
struct Trace {
    /// The host of the last hop tried.
    host: String,
    /// The address of the last connection.
    address: Option<std::net::IpAddr>,
    /// Bytes of the response body as they came on the wire (before decoding), for the log.
    wire_bytes: u64,
}

/// The state of one `fetch` call, for checks and log lines.
struct Call<'a> {
    app: &'a AppKey,
    request_id: &'a str,
    method: String,
}

/// One request of a call: the app's own, or one made to follow a redirect.
struct Hop {
    url: Url,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
    /// 0 for the app's own request, then the number of redirects followed so far.
    number: u32,
    /// The host that redirected here, for messages.
    redirected_from: Option<String>,
}

/// Why a call ended without a response: the error the app sees and a bounded code for the log.
pub(crate) struct Failure {
    pub(crate) code: &'static str,
    pub(crate) error: OutboundError,
    /// The host the failure is about, for the egress log.
    pub(crate) host: Option<String>,
}

impl Failure {
    fn denied(denied: &Denied, redirected_from: Option<&str>) -> Failure {
        let message = match redirected_from {
            Some(previous_host) => format!("{denied} (redirected from {previous_host:?})"),
            None => denied.to_string(),
        };
        Failure { code: denied.code(), error: OutboundError::Denied { message }, host: denied.host.clone() }
    }

    fn failed(code: &'static str, host: &str, reason: impl std::fmt::Display) -> Failure {
        let message = format!("fetch to {host:?} failed: {reason}");
        Failure { code, error: OutboundError::Failed { message }, host: Some(host.to_owned()) }
    }

    /// The bounded code, and whether policy denied the call (rather than the network failing it).
    fn code_and_kind(&self) -> (&'static str, bool) {
        (self.code, matches!(self.error, OutboundError::Denied { .. }))
    }
}

/// Request headers the platform sets itself or that only make sense hop by hop; an app's values
/// for them are dropped rather than forwarded.
const DROPPED_REQUEST_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "expect",
    "proxy-connection",
    "proxy-authorization",
];

/// Headers that describe a request body, removed when a redirect turns the request into a GET.
const BODY_HEADERS: [HeaderName; 4] =
    [header::CONTENT_TYPE, header::CONTENT_ENCODING, header::CONTENT_LANGUAGE, header::CONTENT_LOCATION];

/// Credentials that must not follow a redirect to another origin.
const CREDENTIAL_HEADERS: [HeaderName; 3] = [header::AUTHORIZATION, header::COOKIE, header::PROXY_AUTHORIZATION];

impl AppOutbound {
    pub(crate) fn new(app: AppKey, allow_list: AllowList, network: Arc<Network>, shared: Arc<Shared>) -> AppOutbound {
        AppOutbound { inner: Arc::new(AppInner { app, allow_list, network, shared }) }
    }
}

impl OutboundHttp for AppOutbound {
    fn fetch(&self, request: OutboundRequest) -> BoxFuture<'static, Result<OutboundResponse, OutboundError>> {
        // The I/O runs on the platform's runtime, so the caller may await this from any thread
        // or executor (the JavaScript engine runs on threads of its own).
        let inner = Arc::clone(&self.inner);
        let task = self.inner.shared.runtime.spawn(async move { inner.fetch(request).await });
        // An app that stops waiting (its request timed out) also stops the I/O, even when it
        // drops the future before polling it.
        let abort_on_drop = AbortOnDrop(task.abort_handle());
        Box::pin(async move {
            let _abort_on_drop = abort_on_drop;
            match task.await {
                Ok(result) => result,
                Err(error) if error.is_cancelled() => {
                    Err(OutboundError::Failed { message: "fetch failed: the platform is shutting down".to_owned() })
                }
                Err(_) => Err(OutboundError::Failed {
                    message: "fetch failed because of an internal error in the platform".to_owned(),
                }),
            }
        })
    }
}

struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl AppInner {
    async fn fetch(&self, request: OutboundRequest) -> Result<OutboundResponse, OutboundError> {
        let started = Instant::now();
        let call = Call { app: &self.app, request_id: &request.request_id, method: method_for_log(&request.method) };
        let mut trace = Trace::default();

        // The app's own URL is checked before anything else, so a denial costs no I/O.
        let url = match self.check_hop(&call, &request.url, 0, None) {
            Ok(url) => url,
            Err(failure) => {
                trace.host = failure.host.clone().unwrap_or_default();
                self.record(&call, &request, &trace, &Err(failure.code_and_kind()), started);
                return Err(failure.error);
            }
        };
        let first_host = url.host_str().unwrap_or_default().to_owned();
        trace.host = first_host.clone();

        let result = self.fetch_checked(&call, url, &request, &mut trace).await;
        let outcome = match &result {
            Ok((response, redirects)) => FetchOutcome::Response {
                status: response.status,
                bytes: trace.wire_bytes as usize,
                redirects: *redirects,
            },
            Err(failure) => FetchOutcome::Error { error_code: failure.code },
        };
        FetchFinished {
            app: call.app,
            request_id: call.request_id,
            method: &call.method,
            host: &first_host,
            outcome,
            duration: started.elapsed(),
        }
        .emit();
        let summary = match &result {
            Ok((response, _)) => Ok((response.status, trace.wire_bytes)),
            Err(failure) => Err(failure.code_and_kind()),
        };
        self.record(&call, &request, &trace, &summary, started);
        result.map(|(response, _)| response).map_err(|failure| failure.error)
    }

    /// Hands the call to the egress log and metrics: hosts and addresses, never paths or bodies.
    fn record(
        &self,
        call: &Call<'_>,
        request: &OutboundRequest,
        trace: &Trace,
        summary: &Result<(u16, u64), (&'static str, bool)>,
        started: Instant,
    ) {
        let Some(recorder) = &self.shared.recorder else {
            return;
        };
        let (decision, code, status, bytes_in) = match *summary {
            Ok((status, bytes)) => (runtime::EgressDecision::Allowed, None, Some(status), bytes),
            Err((code, true)) => (runtime::EgressDecision::Denied, Some(code), None, 0),
            Err((code, false)) => (runtime::EgressDecision::Failed, Some(code), None, 0),
        };
        recorder.record(EgressRecord {
            time: std::time::SystemTime::now(),
            app: call.app.clone(),
            request_id: call.request_id.to_owned(),
            method: call.method.clone(),
            host: trace.host.clone(),
            address: trace.address,
            decision,
            code,
            status,
            bytes_out: request.body.len() as u64,
            bytes_in,
            duration: started.elapsed(),
        });
    }

    /// Runs a call whose first URL passed the checks, under the call's deadline.
    async fn fetch_checked(
        &self,
        call: &Call<'_>,
        url: Url,
        request: &OutboundRequest,
        trace: &mut Trace,
    ) -> Result<(OutboundResponse, u32), Failure> {
        let host = url.host_str().unwrap_or_default().to_owned();
        let mut headers = request_headers(&request.headers, &host)?;
        // The request's trace goes on to the next hop, unless the app names a context itself.
        for (name, value) in &request.trace_context {
            if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value))
                && !headers.contains_key(&name)
            {
                headers.insert(name, value);
            }
        }
        let first_hop = Hop {
            method: parse_method(&request.method, &host)?,
            headers,
            body: request.body.clone(),
            url,
            number: 0,
            redirected_from: None,
        };
        let timeout = self.shared.config.timeout;
        match tokio::time::timeout(timeout, self.follow_redirects(call, first_hop, trace)).await {
            Ok(result) => result,
            Err(_) => Err(Failure::failed(
                "timeout",
                &host,
                format_args!("no complete response within {} ms", timeout.as_millis()),
            )),
        }
    }

    /// Sends the request and follows redirects by hand, checking every new URL and its addresses.
    async fn follow_redirects(
        &self,
        call: &Call<'_>,
        mut hop: Hop,
        trace: &mut Trace,
    ) -> Result<(OutboundResponse, u32), Failure> {
        let max_redirects = self.shared.config.max_redirects;
        loop {
            let host = hop.url.host_str().unwrap_or_default().to_owned();
            trace.host = host.clone();
            let response = self.send(call, &hop).await?;
            trace.address = response.remote_addr().map(|address| address.ip());
            let status = response.status();
            let location = match is_redirect(status) {
                true => response.headers().get(header::LOCATION).cloned(),
                false => None,
            };
            // A redirect without a Location header is an ordinary response, as in browsers.
            let Some(location) = location else {
                let limit = self.shared.config.max_response_bytes;
                let (raw, headers) = read_body(response, limit, &host).await?;
                trace.wire_bytes = raw.len() as u64;
                let (body, headers) = decode_body(raw, headers, limit, &host).await?;
                let response = OutboundResponse {
                    status: status.as_u16(),
                    headers: response_headers(&headers),
                    body,
                    url: hop.url.to_string(),
                };
                return Ok((response, hop.number));
            };
            if hop.number == max_redirects {
                return Err(Failure::failed(
                    "too_many_redirects",
                    &host,
                    format_args!("more than {max_redirects} redirects"),
                ));
            }
            let next_url = std::str::from_utf8(location.as_bytes())
                .ok()
                .and_then(|location| hop.url.join(location).ok())
                .ok_or_else(|| {
                    Failure::failed("bad_redirect", &host, "the redirect's Location header is not a valid URL")
                })?;
            let next_url =
                self.check_hop(call, next_url.as_str(), hop.number + 1, Some(&host)).inspect_err(|failure| {
                    trace.host = failure.host.clone().unwrap_or_default();
                })?;

            // Like fetch: 303 turns anything but HEAD into a GET, and 301/302 turn a POST into a GET.
            let becomes_get = (status == StatusCode::SEE_OTHER && hop.method != Method::HEAD)
                || (matches!(status, StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND) && hop.method == Method::POST);
            if becomes_get {
                hop.method = Method::GET;
                hop.body = Bytes::new();
                for name in &BODY_HEADERS {
                    hop.headers.remove(name);
                }
            }
            if next_url.origin() != hop.url.origin() {
                for name in &CREDENTIAL_HEADERS {
                    hop.headers.remove(name);
                }
            }
            hop.url = next_url;
            hop.number += 1;
            hop.redirected_from = Some(host);
        }
    }

    /// Checks one hop's URL: its form, the address when the host is an IP literal, then the
    /// allow list. Addresses of host names are checked by the resolver when connecting.
    fn check_hop(
        &self,
        call: &Call<'_>,
        raw_url: &str,
        hop: u32,
        redirected_from: Option<&str>,
    ) -> Result<Url, Failure> {
        let result = self.check_url(raw_url);
        // An allowed URL is logged once its addresses have passed too, in `send`.
        if let Err(denied) = &result {
            self.decision(call, denied.host.as_deref().unwrap_or_default(), hop, Some(denied.code()));
        }
        result.map_err(|denied| Failure::denied(&denied, redirected_from))
    }

    fn check_url(&self, raw_url: &str) -> Result<Url, Denied> {
        let url = egress::parse_url(raw_url)?;
        // An IP literal is checked first: its message is the more precise one, and listing the
        // address in allowedEgress would not help anyway.
        if let Some(address) = egress::ip_literal(&url) {
            self.network.policy.check_ip(address)?;
        }
        self.allow_list.check(&url)?;
        Ok(url)
    }

    /// Sends one hop. The resolver refuses blocked addresses, and its denial is found again here.
    async fn send(&self, call: &Call<'_>, hop: &Hop) -> Result<reqwest::Response, Failure> {
        let host = hop.url.host_str().unwrap_or_default();
        let redirected_from = hop.redirected_from.as_deref();
        let mut headers = hop.headers.clone();
        if let Some(api) = self.shared.config.internal_apis.iter().find(|api| api.host.eq_ignore_ascii_case(host)) {
            // The platform vouches for the app; whatever Authorization the app set is replaced.
            let tokens = self.shared.app_tokens.as_ref().ok_or_else(|| {
                Failure::failed("app_token", host, "the platform cannot mint tokens for internal APIs")
            })?;
            let token =
                tokens.token(&self.app, &api.audience).map_err(|reason| Failure::failed("app_token", host, reason))?;
            let value = HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| Failure::failed("app_token", host, "the platform token is not a valid header value"))?;
            headers.insert(header::AUTHORIZATION, value);
        }
        let mut builder = self.network.client.request(hop.method.clone(), hop.url.clone()).headers(headers);
        if !hop.body.is_empty() {
            builder = builder.body(hop.body.clone());
        }
        let result = builder.send().await;
        let error = match result {
            Ok(response) => {
                self.decision(call, host, hop.number, None);
                return Ok(response);
            }
            Err(error) => error,
        };
        if let Some(denied) = find_source::<ResolveDenied>(&error) {
            self.decision(call, host, hop.number, Some(denied.0.code()));
            return Err(Failure::denied(&denied.0, redirected_from));
        }
        // The policy allowed the hop; the network failed it.
        self.decision(call, host, hop.number, None);
        if let Some(failed) = find_source::<ResolveFailed>(&error) {
            return Err(Failure::failed("resolve", host, failed));
        }
        let (code, reason) = match () {
            _ if error.is_connect() => ("connect", "could not connect"),
            _ if error.is_timeout() => ("timeout", "timed out"),
            _ => ("send", "the request could not be completed"),
        };
        Err(Failure::failed(code, host, with_cause(reason, &error)))
    }

    fn decision(&self, call: &Call<'_>, host: &str, hop: u32, denied: Option<&'static str>) {
        EgressDecision { app: call.app, request_id: call.request_id, method: &call.method, host, hop, denied }.emit();
    }
}

/// The method as a bounded log field: an app controls the string, so anything odd is logged as `invalid`.
fn method_for_log(method: &str) -> String {
    match method.len() <= 16 && !method.is_empty() && method.bytes().all(|byte| byte.is_ascii_alphabetic()) {
        true => method.to_ascii_uppercase(),
        false => "invalid".to_owned(),
    }
}

fn is_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

/// The method as fetch normalises it: standard methods are case-insensitive; CONNECT, TRACE and
/// TRACK are forbidden.
pub(crate) fn parse_method(method: &str, host: &str) -> Result<Method, Failure> {
    let uppercase = method.to_ascii_uppercase();
    if matches!(uppercase.as_str(), "CONNECT" | "TRACE" | "TRACK") {
        return Err(Failure::failed("forbidden_method", host, format_args!("the method {uppercase} is not allowed")));
    }
    let normalised = match uppercase.as_str() {
        "DELETE" | "GET" | "HEAD" | "OPTIONS" | "POST" | "PUT" => uppercase.as_str(),
        _ => method,
    };
    Method::from_bytes(normalised.as_bytes())
        .map_err(|_| Failure::failed("invalid_method", host, "the request method is not a valid HTTP method"))
}

/// The app's headers as an HTTP header map. Messages name a bad header but never show its value.
pub(crate) fn request_headers(headers: &[(String, String)], host: &str) -> Result<HeaderMap, Failure> {
    let mut map = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let Ok(name) = HeaderName::from_bytes(name.as_bytes()) else {
            return Err(Failure::failed("invalid_header", host, "a request header has an invalid name"));
        };
        if DROPPED_REQUEST_HEADERS.contains(&name.as_str()) {
            continue;
        }
        let Ok(value) = HeaderValue::from_str(value) else {
            return Err(Failure::failed(
                "invalid_header",
                host,
                format_args!("the value of request header {:?} is not valid", name.as_str()),
            ));
        };
        map.append(name, value);
    }
    Ok(map)
}

/// Reads the whole body, failing as soon as it exceeds `limit` bytes. Returns the body and the
/// response's headers.
async fn read_body(mut response: reqwest::Response, limit: u64, host: &str) -> Result<(Bytes, HeaderMap), Failure> {
    let too_large = || {
        Failure::failed("too_large", host, format_args!("the response body is larger than the limit of {limit} bytes"))
    };
    if response.content_length().is_some_and(|length| length > limit) {
        return Err(too_large());
    }
    let headers = std::mem::take(response.headers_mut());
    let mut body = BytesMut::new();
    loop {
        let chunk = response.chunk().await.map_err(|error| {
            let reason = match error.is_timeout() {
                true => "timed out while reading the response body",
                false => "the response body could not be read",
            };
            Failure::failed("body", host, with_cause(reason, &error))
        })?;
        let Some(chunk) = chunk else {
            return Ok((body.freeze(), headers));
        };
        if (body.len() + chunk.len()) as u64 > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
}

/// The body as the app reads it, as Workers' `fetch` hands it over: a `gzip`, `deflate`, `br` or
/// `zstd` body decoded (within `limit` bytes decoded, so a small bomb cannot fill memory), without
/// its `Content-Encoding` and with the decoded `Content-Length`. A coding it does not know is
/// left as it came, headers and all.
pub(crate) async fn decode_body(
    raw: Bytes,
    mut headers: HeaderMap,
    limit: u64,
    host: &str,
) -> Result<(Bytes, HeaderMap), Failure> {
    use async_compression::tokio::bufread::{BrotliDecoder, GzipDecoder, ZlibDecoder, ZstdDecoder};
    use tokio::io::{AsyncRead, AsyncReadExt};

    let codings: Vec<String> = headers
        .get_all(header::CONTENT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|coding| coding.trim().to_ascii_lowercase())
        .filter(|coding| !coding.is_empty() && coding != "identity")
        .collect();
    let known = |coding: &str| matches!(coding, "gzip" | "x-gzip" | "deflate" | "br" | "zstd");
    if codings.is_empty() || raw.is_empty() || !codings.iter().all(|coding| known(coding)) {
        return Ok((raw, headers));
    }
    let mut body = raw;
    // Codings are listed in the order they were applied: undone last first.
    for coding in codings.iter().rev() {
        let input: &[u8] = &body;
        let reader: std::pin::Pin<Box<dyn AsyncRead + Send + '_>> = match coding.as_str() {
            "gzip" | "x-gzip" => Box::pin(GzipDecoder::new(input)),
            "deflate" => Box::pin(ZlibDecoder::new(input)),
            "br" => Box::pin(BrotliDecoder::new(input)),
            _ => Box::pin(ZstdDecoder::new(input)),
        };
        let mut decoded = Vec::new();
        reader.take(limit + 1).read_to_end(&mut decoded).await.map_err(|error| {
            Failure::failed("body", host, format_args!("the response body is not valid {coding}: {error}"))
        })?;
        if decoded.len() as u64 > limit {
            return Err(Failure::failed(
                "too_large",
                host,
                format_args!("the response body, decoded, is larger than the limit of {limit} bytes"),
            ));
        }
        body = Bytes::from(decoded);
    }
    headers.remove(header::CONTENT_ENCODING);
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    Ok((body, headers))
}

fn response_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(name, value)| (name.as_str().to_owned(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
        .collect()
}

/// The first error of type `T` in `error`'s chain of sources.
fn find_source<T: std::error::Error + 'static>(error: &reqwest::Error) -> Option<&T> {
    let mut source = error.source();
    while let Some(current) = source {
        if let Some(found) = current.downcast_ref::<T>() {
            return Some(found);
        }
        source = current.source();
    }
    None
}

/// `reason` followed by the innermost cause (`connection refused`, a TLS certificate problem).
/// reqwest's own message is never used: it contains the whole URL, query included.
fn with_cause(reason: &str, error: &reqwest::Error) -> String {
    let mut innermost = None;
    let mut source = error.source();
    while let Some(current) = source {
        innermost = Some(current);
        source = current.source();
    }
    match innermost {
        Some(cause) => format!("{reason} ({cause})"),
        None => reason.to_owned(),
    }
}
