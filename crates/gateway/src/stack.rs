//! The request path as one tower stack, built top to bottom in [`build_stack`], and the
//! per-request phases (resolve, dispatch, account) in [`handle`].

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::body::Body;
use bytes::Bytes;
use futures::future::BoxFuture;
use http::header::{self, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode};
use runtime::FunctionRequest;
use tower::{ServiceBuilder, ServiceExt};
use tower_http::compression::CompressionLayer;
use tower_http::request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;

use crate::pages;
use crate::resolve::{AppAddress, resolve_host, resolve_path};
use crate::routing::{LiveApp, RoutingTable};
use crate::static_files;

pub(crate) static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Process-level settings of the gateway. Security-relevant limits have no `Default`.
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    /// Apps are also served at `<app>.<namespace>.<apps_domain>`.
    pub apps_domain: String,
    /// Upper bound on any one request, whatever the app's own limits.
    pub request_timeout: Duration,
    /// Cap on any request body (the control API's bundle uploads are the largest).
    pub max_request_body_bytes: usize,
    /// Cap on the body of a request to an app's function.
    pub max_app_body_bytes: usize,
    /// Requests in flight across all apps before new ones are shed with 503.
    pub max_in_flight: usize,
}

/// Reads a stored blob (a static file) by its digest.
pub trait BlobReader: Send + Sync + 'static {
    fn read(&self, digest: &str) -> BoxFuture<'static, std::io::Result<Bytes>>;
}

pub struct GatewayState {
    pub config: GatewayConfig,
    pub routes: Arc<RoutingTable>,
    pub blobs: Arc<dyn BlobReader>,
    /// Set once the active deployments are loaded after start; `/readyz` reports it.
    pub ready: AtomicBool,
}

impl GatewayState {
    pub fn new(config: GatewayConfig, routes: Arc<RoutingTable>, blobs: Arc<dyn BlobReader>) -> GatewayState {
        GatewayState { config, routes, blobs, ready: AtomicBool::new(false) }
    }
}

/// Request ids are UUIDv7: unique, and sortable by time in logs.
#[derive(Clone, Copy)]
struct MakeRequestUuid;

impl MakeRequestId for MakeRequestUuid {
    fn make_request_id<B>(&mut self, _request: &Request<B>) -> Option<RequestId> {
        let id = uuid::Uuid::now_v7().to_string();
        Some(RequestId::new(HeaderValue::from_str(&id).expect("a uuid is a valid header value")))
    }
}

/// The whole request path. `platform` serves everything that does not address an app:
/// the control API, `/healthz`, `/readyz`.
pub fn build_stack(state: Arc<GatewayState>, platform: axum::Router) -> axum::Router {
    let platform = platform
        .route("/healthz", axum::routing::get(|| async { "ok\n" }))
        .route("/readyz", axum::routing::get(readyz).with_state(state.clone()));
    let config = state.config.clone();
    let inner = tower::service_fn(move |request: Request<tower_http::body::Limited<Body>>| {
        let state = state.clone();
        let platform = platform.clone();
        async move { Ok::<_, Infallible>(handle(state, platform, request.map(Body::new)).await) }
    });
    let stack = ServiceBuilder::new()
        // accept: a request id we make ourselves; a client-sent one is dropped so logs cannot be forged.
        .map_request(|mut request: Request<Body>| {
            request.headers_mut().remove(&X_REQUEST_ID);
            request
        })
        .layer(SetRequestIdLayer::new(X_REQUEST_ID.clone(), MakeRequestUuid))
        .layer(PropagateRequestIdLayer::new(X_REQUEST_ID.clone()))
        // accept: credentials never reach a log line, even at trace level.
        .layer(SetSensitiveRequestHeadersLayer::new([header::AUTHORIZATION, header::COOKIE]))
        // accept: a panic in one request becomes a 500 for that request only.
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| pages::internal_error()))
        // accept: global load shedding, never an unbounded queue.
        .layer(axum::error_handling::HandleErrorLayer::<_, ()>::new(|error: tower::BoxError| async move {
            pages::overloaded(&error)
        }))
        .load_shed()
        .concurrency_limit(config.max_in_flight)
        // accept: a global deadline for any one request.
        .timeout(config.request_timeout)
        // accept: request bodies beyond the cap are refused with 413.
        .layer(tower_http::limit::RequestBodyLimitLayer::new(config.max_request_body_bytes))
        // dispatch: responses are compressed with gzip or brotli when the client accepts it.
        .layer(CompressionLayer::new())
        .service(inner);
    axum::Router::new().fallback_service(stack.map_response(|response| response.map(Body::new)))
}

async fn readyz(axum::extract::State(state): axum::extract::State<Arc<GatewayState>>) -> (StatusCode, &'static str) {
    match state.ready.load(Ordering::Acquire) {
        true => (StatusCode::OK, "ready\n"),
        false => (StatusCode::SERVICE_UNAVAILABLE, "starting: loading deployed apps\n"),
    }
}

/// One request through the phases: resolve, dispatch, account.
async fn handle(state: Arc<GatewayState>, platform: axum::Router, request: Request<Body>) -> Response<Body> {
    let started = Instant::now();
    let request_id =
        request.headers().get(&X_REQUEST_ID).and_then(|value| value.to_str().ok()).unwrap_or_default().to_owned();

    // resolve: host first (`<app>.<ns>.<domain>`), then path (`/apps/<ns>/<app>/…`).
    let host = request_header(&request, header::HOST).unwrap_or_default().to_owned();
    let address = match resolve_host(&host, &state.config.apps_domain) {
        Some(app) => AppAddress { app, path: request.uri().path().to_owned(), mount: String::new() },
        None => match resolve_path(request.uri().path()) {
            Some(address) => address,
            None => {
                return platform.oneshot(request).await.unwrap_or_else(|never| match never {});
            }
        },
    };
    if !address.mount.is_empty() && request.uri().path() == address.mount {
        // `/apps/ns/app` → `/apps/ns/app/`, so the app's relative links resolve inside it.
        let query = request.uri().query().map(|query| format!("?{query}")).unwrap_or_default();
        return pages::redirect(&format!("{}/{query}", address.mount));
    }
    let Some(live) = state.routes.get(&address.app) else {
        return pages::unknown_app(&address.app, &request_id);
    };

    // dispatch: a function whose route matches, else a static file.
    let response = dispatch(&state, &live, &address, &host, request, &request_id).await;

    // account: one access log line tagged with the tenant and the app.
    tracing::info!(
        namespace = %address.app.namespace,
        app = %address.app.name,
        revision = live.deployment.revision,
        status = response.status().as_u16(),
        duration_us = started.elapsed().as_micros() as u64,
        request_id = %request_id,
        "app request"
    );
    response
}

async fn dispatch(
    state: &GatewayState,
    live: &LiveApp,
    address: &AppAddress,
    host: &str,
    request: Request<Body>,
    request_id: &str,
) -> Response<Body> {
    let decoded_path = percent_encoding::percent_decode_str(&address.path).decode_utf8_lossy().into_owned();
    if let (Some(route), Some(functions)) = (live.deployment.function_for(&decoded_path), &live.functions) {
        return invoke(state, functions.as_ref(), &route.entry, address, host, request, request_id).await;
    }
    static_files::serve(state, live, &decoded_path, request.method(), request.headers(), request_id).await
}

async fn invoke(
    state: &GatewayState,
    functions: &dyn runtime::LoadedApp,
    entry: &str,
    address: &AppAddress,
    host: &str,
    request: Request<Body>,
    request_id: &str,
) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, state.config.max_app_body_bytes).await {
        Ok(body) => body,
        Err(_) => return pages::payload_too_large(state.config.max_app_body_bytes),
    };
    let query = parts.uri.query().map(|query| format!("?{query}")).unwrap_or_default();
    let host = if host.is_empty() { "localhost" } else { host };
    // The function sees its own paths (`/api/pick`) whatever the mount; the mount is a header.
    let url = format!("http://{host}{}{query}", address.path);
    let mut headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .filter_map(|(name, value)| Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned())))
        .collect();
    if !address.mount.is_empty() {
        headers.push(("x-forwarded-prefix".to_owned(), address.mount.clone()));
    }
    let call = FunctionRequest {
        method: parts.method.as_str().to_owned(),
        url,
        headers,
        body,
        request_id: request_id.to_owned(),
    };
    match functions.invoke(entry, call).await {
        Ok(response) => function_response(response, request_id),
        Err(error) => {
            tracing::warn!(
                namespace = %address.app.namespace,
                app = %address.app.name,
                request_id,
                error_code = error.code(),
                "function failed"
            );
            pages::function_failed(&address.app, error.status(), request_id)
        }
    }
}

/// Translates the engine's response, dropping headers that are not valid HTTP or that the
/// platform owns (hop-by-hop, framing).
fn function_response(response: runtime::FunctionResponse, request_id: &str) -> Response<Body> {
    let status = StatusCode::from_u16(response.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut builder = Response::builder().status(status);
    for (name, value) in &response.headers {
        let (Ok(name), Ok(value)) = (HeaderName::try_from(name.as_str()), HeaderValue::try_from(value.as_str())) else {
            continue;
        };
        if is_platform_owned(&name) {
            continue;
        }
        builder = builder.header(name, value);
    }
    builder = builder.header(&X_REQUEST_ID, request_id);
    builder.body(Body::from(response.body)).unwrap_or_else(|_| pages::internal_error())
}

fn is_platform_owned(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "transfer-encoding"
            | "content-length"
            | "upgrade"
            | "te"
            | "trailer"
            | "x-request-id"
    )
}

fn request_header<B>(request: &Request<B>, name: header::HeaderName) -> Option<&str> {
    request.headers().get(name).and_then(|value| value.to_str().ok())
}
