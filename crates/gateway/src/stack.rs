//! The request path as one tower stack, built top to bottom in [`build_stack`], and an app
//! request's phases, one function each over one per-request context ([`AppRequest`]): resolve,
//! authenticate, authorize, admit, dispatch, and account, which runs for every answer.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tracing::Instrument as _;

use axum::body::Body;
use bytes::Bytes;
use deployment::AccessDecision;

use crate::cookies;
use futures::future::BoxFuture;
use http::header::{self, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use runtime::FunctionRequest;
use tower::{ServiceBuilder, ServiceExt};
use tower_http::compression::CompressionLayer;
use tower_http::request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;

use crate::admission::Refusal;
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
    /// Where the sign-in page is (`{public_url}/auth/login`).
    pub public_url: String,
    /// Session cookies get `Secure` (the platform is served over HTTPS).
    pub secure_cookies: bool,
    /// Apps are also served under `/apps/<ns>/<app>/` on the platform's own host. Off where the
    /// console has a registrable domain of its own, so no app shares its origin.
    pub path_routes: bool,
}

/// The header carrying an app-scoped token to a function; a client-sent one is dropped.
pub static X_TERRARIUM_IDENTITY: HeaderName = HeaderName::from_static("x-terrarium-identity");
/// Path on a host-routed app where a sign-in ticket becomes that host's session cookie.
pub const SESSION_PATH: &str = "/.terrarium/session";

/// A signed-in caller, as resolved from a platform token.
#[derive(Clone, Debug)]
pub struct SignedIn {
    pub visitor: deployment::Visitor,
    pub email: Option<String>,
    pub name: Option<String>,
    /// (namespace or `*`, role): what the app token says about the caller's roles.
    pub roles: Vec<(String, identity::Role)>,
}

/// Identity for the gateway's authenticate and authorize phases, implemented by the control plane.
pub trait AccessControl: Send + Sync + 'static {
    /// The user a platform token names, or `None` when it is not a valid platform token.
    fn signed_in(&self, token: &str) -> BoxFuture<'_, Option<SignedIn>>;
    /// The short-lived token one function call of `app` receives (audience `app:<ns>/<name>`).
    fn app_token(&self, user: &SignedIn, app: &deployment::AppKey) -> Option<String>;
    /// Records a refused request in the audit log: a signed-in user not let in, or (`user`
    /// None) a presented token that was not valid.
    fn record_denial(
        &self,
        user: Option<&SignedIn>,
        app: &deployment::AppKey,
        request_id: &str,
        reason: &'static str,
    ) -> BoxFuture<'_, ()>;
    /// A session token for `host` in exchange for a sign-in ticket minted for that host.
    fn redeem_ticket(&self, ticket: &str, host: &str) -> Option<String>;
}

/// What the account phase reports about one app request, to metering and metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestUsage {
    pub app: deployment::AppKey,
    pub status: u16,
    /// From the request's arrival to its response's head.
    pub duration: std::time::Duration,
    /// CPU time the app's function spent (zero for static files and refusals).
    pub cpu: std::time::Duration,
    /// The function instance's heap when its response was complete (zero for static files).
    pub heap_bytes: u64,
    /// Request body bytes (as announced) and response body bytes (when known).
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// `rate_limited` or `busy` when admission refused the request.
    pub refused: Option<&'static str>,
    /// What the response cache did: `hit`, `miss`, `expired` or `bypass` (`None`: not looked up).
    pub cache: Option<&'static str>,
}

/// Receives every app request's usage. Must not block: it is called on the request path.
pub trait Meter: Send + Sync + 'static {
    fn record(&self, usage: RequestUsage);
}

/// An app request's span without traces: its fields still reach the log lines inside it.
pub fn default_request_span(request_id: &str, _headers: &http::HeaderMap) -> tracing::Span {
    tracing::info_span!(target: "gateway", "app request", request_id = %request_id, namespace = tracing::field::Empty, app = tracing::field::Empty, status = tracing::field::Empty)
}

/// Why an app is stopped, decided by the control plane (budgets, quotas).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Suspension {
    /// 402 (budget used up) or 429 (monthly request quota used up).
    pub status: u16,
    /// What happened and how to lift it, for the page.
    pub reason: String,
    pub retry_after_secs: Option<u64>,
}

/// Requests an app may still serve this month, counted down by the gateway on every admitted
/// request and set again by the control plane from metered usage.
pub struct Allowance {
    pub remaining: std::sync::atomic::AtomicI64,
    /// The answer once `remaining` is used up.
    pub exhausted: Suspension,
}

/// The apps stopped right now, and the allowances of apps with a monthly quota; each replaced
/// whole by the control plane, read on every request.
#[derive(Default)]
pub struct Suspensions {
    apps: arc_swap::ArcSwap<std::collections::HashMap<deployment::AppKey, Suspension>>,
    allowances: arc_swap::ArcSwap<std::collections::HashMap<deployment::AppKey, Arc<Allowance>>>,
}

impl Suspensions {
    pub fn replace_allowances(&self, allowances: std::collections::HashMap<deployment::AppKey, Arc<Allowance>>) {
        self.allowances.store(Arc::new(allowances));
    }

    /// Takes one request from the app's allowance; the suspension to answer with when none is left.
    fn take_one(&self, app: &deployment::AppKey) -> Option<Suspension> {
        let allowances = self.allowances.load();
        let allowance = allowances.get(app)?;
        match allowance.remaining.fetch_sub(1, std::sync::atomic::Ordering::AcqRel) {
            remaining if remaining > 0 => None,
            _ => Some(allowance.exhausted.clone()),
        }
    }

    pub fn get(&self, app: &deployment::AppKey) -> Option<Suspension> {
        self.apps.load().get(app).cloned()
    }

    pub fn replace(&self, apps: std::collections::HashMap<deployment::AppKey, Suspension>) {
        self.apps.store(Arc::new(apps));
    }

    pub fn all(&self) -> Arc<std::collections::HashMap<deployment::AppKey, Suspension>> {
        self.apps.load_full()
    }
}

/// An app its lifecycle archived: not served, answered 410 with how to get it back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchivedApp {
    /// RFC 3339.
    pub archived_at: String,
}

/// The archived apps, kept by the control plane (at start, archive and restore).
#[derive(Default)]
pub struct ArchivedApps {
    apps: std::sync::RwLock<std::collections::HashMap<deployment::AppKey, ArchivedApp>>,
}

impl ArchivedApps {
    pub fn insert(&self, app: deployment::AppKey, archived: ArchivedApp) {
        self.apps.write().unwrap_or_else(std::sync::PoisonError::into_inner).insert(app, archived);
    }

    pub fn remove(&self, app: &deployment::AppKey) {
        self.apps.write().unwrap_or_else(std::sync::PoisonError::into_inner).remove(app);
    }

    pub fn get(&self, app: &deployment::AppKey) -> Option<ArchivedApp> {
        self.apps.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(app).cloned()
    }
}

/// What a function's response cost, carried from dispatch to the account phase.
#[derive(Clone, Copy, Debug)]
struct FunctionCost {
    cpu: std::time::Duration,
    heap_bytes: u64,
}

/// Reads a stored blob (a static file) by its digest.
pub trait BlobReader: Send + Sync + 'static {
    fn read(&self, digest: &str) -> BoxFuture<'static, std::io::Result<Bytes>>;
}

pub struct GatewayState {
    pub config: GatewayConfig,
    pub routes: Arc<RoutingTable>,
    pub blobs: Arc<dyn BlobReader>,
    pub access: Arc<dyn AccessControl>,
    pub meter: Arc<dyn Meter>,
    pub suspensions: Arc<Suspensions>,
    /// Ceilings per namespace, from its tier.
    pub ceilings: Arc<crate::admission::NamespaceCeilings>,
    /// Makes the span of one app request from its request id and headers (the binary's joins
    /// the caller's W3C trace context when traces are exported).
    pub request_span: fn(&str, &http::HeaderMap) -> tracing::Span,
    /// The trace context (`traceparent`, `tracestate`) an app's outbound calls carry, from the
    /// current span or else the incoming request's headers.
    pub outgoing_trace_context: fn(&http::HeaderMap) -> Vec<(String, String)>,
    /// Set once the active deployments are loaded after start; `/readyz` reports it.
    pub ready: AtomicBool,
    /// The apps' logs, where the gateway tells an owner what it did to their app's responses.
    pub app_log: Option<Arc<dyn runtime::AppLog>>,
    /// Responses apps mark shareable, served again without running the app (`[cache]`).
    pub cache: Option<Arc<cache::ResponseCache>>,
    /// Apps archived by their lifecycle (410 instead of 404).
    pub archived: Arc<ArchivedApps>,
}

impl GatewayState {
    pub fn new(
        config: GatewayConfig,
        routes: Arc<RoutingTable>,
        blobs: Arc<dyn BlobReader>,
        access: Arc<dyn AccessControl>,
        meter: Arc<dyn Meter>,
        suspensions: Arc<Suspensions>,
        ceilings: Arc<crate::admission::NamespaceCeilings>,
    ) -> GatewayState {
        GatewayState {
            config,
            routes,
            blobs,
            access,
            meter,
            suspensions,
            ceilings,
            request_span: default_request_span,
            outgoing_trace_context: |_| Vec::new(),
            ready: AtomicBool::new(false),
            app_log: None,
            cache: None,
            archived: Arc::default(),
        }
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
        // Boxed: the layers around move their futures on every call and poll, and an app
        // request's future is large (measured: a cache hit spent an eighth of its CPU in memcpy).
        let answer = Box::pin(handle(state.clone(), platform.clone(), request.map(Body::new)));
        async move { Ok::<_, Infallible>(answer.await) }
    });
    let stack = ServiceBuilder::new()
        // accept: a request id we make ourselves; a client-sent one is dropped so logs cannot be forged.
        .map_request(|mut request: Request<Body>| {
            request.headers_mut().remove(&X_REQUEST_ID);
            request.headers_mut().remove(&X_TERRARIUM_IDENTITY);
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

/// One request: the platform's own routes, or an app request through the phases.
async fn handle(state: Arc<GatewayState>, platform: axum::Router, request: Request<Body>) -> Response<Body> {
    let request_id =
        request.headers().get(&X_REQUEST_ID).and_then(|value| value.to_str().ok()).unwrap_or_default().to_owned();
    let host = request_header(&request, header::HOST).unwrap_or_default().to_owned();
    let Some(address) = resolve(&state, &host, request.uri().path()) else {
        return platform.oneshot(request).await.unwrap_or_else(|never| match never {});
    };
    let bytes_in = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok())
        .unwrap_or(0);
    let context = AppRequest { request_id, started: Instant::now(), host, address, bytes_in };
    let span = (state.request_span)(&context.request_id, request.headers());
    handle_app_request(&state, &context, request).instrument(span).await
}

/// One app request as every phase sees it; resolve builds it.
struct AppRequest {
    request_id: String,
    started: Instant,
    /// The `Host` header as sent.
    host: String,
    address: AppAddress,
    /// The request body's announced size.
    bytes_in: u64,
}

/// An answer the platform gives instead of the app, and why.
struct Refused(Response<Body>, Answer);

/// Who answered an app request, for the account phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Answer {
    /// The app (a function or a static file), whatever its status.
    App,
    /// `/apps/ns/app` sent on to `/apps/ns/app/`.
    Redirect,
    /// A sign-in ticket redeemed for the app's host.
    Session,
    UnknownApp,
    /// Archived by its lifecycle.
    Archived,
    SignInRequired,
    Forbidden,
    /// Stopped by a budget or a monthly quota.
    Suspended,
    RateLimited,
    Busy,
}

impl Answer {
    /// The log's name for it.
    fn code(self) -> &'static str {
        match self {
            Answer::App => "app",
            Answer::Redirect => "redirect",
            Answer::Session => "session",
            Answer::UnknownApp => "unknown_app",
            Answer::Archived => "archived",
            Answer::SignInRequired => "sign_in_required",
            Answer::Forbidden => "forbidden",
            Answer::Suspended => "suspended",
            Answer::RateLimited => "rate_limited",
            Answer::Busy => "busy",
        }
    }

    /// What metering is told: `None` for the app's own answers, the reason for a refusal, and
    /// nothing at all for a redirect, a ticket or an app that does not exist (an unknown name
    /// must not create a series).
    fn metered(self) -> Option<Option<&'static str>> {
        match self {
            Answer::App => Some(None),
            Answer::Redirect | Answer::Session | Answer::UnknownApp | Answer::Archived => None,
            refusal => Some(Some(refusal.code())),
        }
    }
}

/// resolve: host first (`<app>.<ns>.<domain>`), then path (`/apps/<ns>/<app>/…`); `None` for
/// the platform's own routes.
fn resolve(state: &GatewayState, host: &str, path: &str) -> Option<AppAddress> {
    match resolve_host(host, &state.config.apps_domain) {
        Some(app) => Some(AppAddress { app, path: path.to_owned(), mount: String::new() }),
        None if state.config.path_routes => resolve_path(path),
        None => None,
    }
}

/// An app request through the phases, inside its request span; the account phase runs for
/// every answer, the app's and the platform's refusals alike.
async fn handle_app_request(state: &GatewayState, context: &AppRequest, request: Request<Body>) -> Response<Body> {
    tracing::Span::current()
        .record("namespace", context.address.app.namespace.as_str())
        .record("app", context.address.app.name.as_str());
    let live = state.routes.get(&context.address.app);
    let (response, answer) = match phases(state, context, live.as_deref(), request).await {
        Ok(response) => (response, Answer::App),
        Err(Refused(response, answer)) => (response, answer),
    };
    account(state, context, live.as_deref(), &response, answer);
    response
}

/// The phases after resolve, each one able to answer in the app's place.
async fn phases(
    state: &GatewayState,
    context: &AppRequest,
    live: Option<&LiveApp>,
    request: Request<Body>,
) -> Result<Response<Body>, Refused> {
    let address = &context.address;
    if !address.mount.is_empty() && request.uri().path() == address.mount {
        // `/apps/ns/app` → `/apps/ns/app/`, so the app's relative links resolve inside it.
        let query = request.uri().query().map(|query| format!("?{query}")).unwrap_or_default();
        return Err(Refused(pages::redirect(&format!("{}/{query}", address.mount)), Answer::Redirect));
    }
    if address.mount.is_empty() && request.uri().path() == SESSION_PATH {
        return Err(Refused(redeem_ticket(state, &context.host, &request), Answer::Session));
    }
    let Some(live) = live else {
        if let Some(archived) = state.archived.get(&address.app) {
            return Err(Refused(pages::archived(&address.app, &archived, &context.request_id), Answer::Archived));
        }
        return Err(Refused(pages::unknown_app(&address.app, &context.request_id), Answer::UnknownApp));
    };
    let (user, credential) = authenticate(state, request.headers(), address.mount.is_empty())
        .instrument(tracing::info_span!(target: "gateway", "authenticate"))
        .await;
    if let Err(answer) = authorize(state, context, live, user.as_ref(), credential).await {
        let page = match answer {
            Answer::Forbidden => pages::forbidden(&address.app, &live.deployment.access.owner, &context.request_id),
            _ => sign_in_required(state, &request, &context.host, address, &context.request_id),
        };
        return Err(Refused(page, answer));
    }
    let admitted = admit(state, context, live)?;
    // The user's own credential never reaches the app.
    let mut request = request;
    strip_credential(request.headers_mut(), credential);
    let mut response = cached_dispatch(state, context, live, request, user.as_ref()).await;
    let headers = response.headers_mut();
    headers.insert("ratelimit-limit", HeaderValue::from(live.admission.limits().burst));
    headers.insert("ratelimit-remaining", HeaderValue::from(admitted.app.remaining));
    Ok(response)
}

/// authorize: the app's visibility, owner and extra groups, for the caller `authenticate`
/// found. Path-routed apps share one origin, where one app's browser code could call another
/// app with the visitor's cookie: there only bearer tokens count, and browsers are sent to the
/// app's own host to sign in.
async fn authorize(
    state: &GatewayState,
    context: &AppRequest,
    live: &LiveApp,
    user: Option<&SignedIn>,
    credential: Credential,
) -> Result<(), Answer> {
    let app = &context.address.app;
    match (live.deployment.access.decide(&app.namespace, user.map(|user| &user.visitor)), user) {
        (AccessDecision::Allow, _) => Ok(()),
        (AccessDecision::Forbidden, Some(user)) => {
            state.access.record_denial(Some(user), app, &context.request_id, "not shared with this user").await;
            Err(Answer::Forbidden)
        }
        (AccessDecision::SignInRequired | AccessDecision::Forbidden, _) => {
            if credential == Credential::Invalid {
                state.access.record_denial(None, app, &context.request_id, "the presented token is not valid").await;
            }
            Err(Answer::SignInRequired)
        }
    }
}

/// The slots an admitted request holds until its response is complete.
struct Admitted {
    app: crate::admission::Admitted,
    _namespace: Option<crate::admission::Admitted>,
}

/// admit: a stopped app answers before it costs anything; then the app's own limits (so a flood
/// they refuse never drains what its namespace's other apps share), then the namespace's
/// ceiling (its tier), then one request off the monthly quota. Never a queue.
#[expect(
    clippy::result_large_err,
    reason = "a refusal is a response moved once; boxing it would allocate on the path a flood takes"
)]
fn admit(state: &GatewayState, context: &AppRequest, live: &LiveApp) -> Result<Admitted, Refused> {
    let _span = tracing::info_span!(target: "gateway", "admit").entered();
    let app = &context.address.app;
    let suspended =
        |suspension: Suspension| Refused(pages::suspended(app, &suspension, &context.request_id), Answer::Suspended);
    if let Some(suspension) = state.suspensions.get(app) {
        return Err(suspended(suspension));
    }
    let refused = |refusal: Refusal, limits: deployment::Admission, scope: &str| {
        let reason = match refusal {
            Refusal::RateLimited { .. } => Answer::RateLimited,
            Refusal::Busy => Answer::Busy,
        };
        Refused(pages::admission_refused(scope, &refusal, limits, &context.request_id), reason)
    };
    let admitted =
        live.admission.admit().map_err(|refusal| refused(refusal, live.admission.limits(), &app.to_string()))?;
    let namespace = match state.ceilings.for_namespace(&app.namespace) {
        None => None,
        Some(ceiling) => Some(
            ceiling
                .admit()
                .map_err(|refusal| refused(refusal, ceiling.limits(), &format!("namespace {}", app.namespace)))?,
        ),
    };
    // Only an admitted request takes one from the monthly quota.
    if let Some(suspension) = state.suspensions.take_one(app) {
        return Err(suspended(suspension));
    }
    Ok(Admitted { app: admitted, _namespace: namespace })
}

/// account: one access log line for every app request, and its usage for metering and
/// metrics. A refusal is counted under its reason; only rate and concurrency refusals count as
/// the app's usage (metering decides).
fn account(
    state: &GatewayState,
    context: &AppRequest,
    live: Option<&LiveApp>,
    response: &Response<Body>,
    answer: Answer,
) {
    let status = response.status().as_u16();
    tracing::Span::current().record("status", status);
    let duration = context.started.elapsed();
    if let (Some(_), Some(refused)) = (live, answer.metered()) {
        let cost = response
            .extensions()
            .get::<FunctionCost>()
            .copied()
            .unwrap_or(FunctionCost { cpu: std::time::Duration::ZERO, heap_bytes: 0 });
        state.meter.record(RequestUsage {
            app: context.address.app.clone(),
            status,
            duration,
            cpu: cost.cpu,
            heap_bytes: cost.heap_bytes,
            bytes_in: context.bytes_in,
            bytes_out: match refused {
                None => http_body::Body::size_hint(response.body()).exact().unwrap_or(0),
                Some(_) => 0,
            },
            refused,
            // What the cache did, from the gateway's own mark: never from a header the app
            // could set itself to be priced as a hit.
            cache: response.extensions().get::<CacheOutcome>().map(|outcome| outcome.0),
        });
    }
    tracing::info!(
        namespace = %context.address.app.namespace,
        app = %context.address.app.name,
        revision = live.map(|live| live.deployment.revision),
        status,
        duration_us = duration.as_micros() as u64,
        request_id = %context.request_id,
        answered_by = answer.code(),
        "app request"
    );
}

/// What the response cache did for one request (`hit`, `miss`, `expired`, `bypass`): a
/// response extension only the gateway sets, read by metering.
#[derive(Clone, Copy, Debug)]
struct CacheOutcome(&'static str);

/// dispatch through the response cache: a fresh stored response is served without running the
/// app; a response the app marks shareable is stored for the next caller. Only GET and HEAD
/// without `Range` are looked up, only GET answers stored; the key is the routed app, its
/// revision and the path and query the app sees, never anything a client names. Every answer
/// says which it was (`x-cache: HIT | MISS | EXPIRED | BYPASS`).
async fn cached_dispatch(
    state: &GatewayState,
    context: &AppRequest,
    live: &LiveApp,
    request: Request<Body>,
    user: Option<&SignedIn>,
) -> Response<Body> {
    let method = request.method().clone();
    let looked_up = matches!(method, Method::GET | Method::HEAD) && !request.headers().contains_key(header::RANGE);
    let Some(cache) = state.cache.as_ref().filter(|_| looked_up) else {
        return dispatch(state, context, live, request, user)
            .instrument(tracing::info_span!(target: "gateway", "dispatch"))
            .await;
    };
    let query = request.uri().query().map(|query| format!("?{query}")).unwrap_or_default();
    let key = cache::Key {
        app: context.address.app.clone(),
        revision: live.deployment.revision,
        path_and_query: format!("{}{query}", context.address.path),
    };
    let mut label = "MISS";
    if let Some(entry) = cache.lookup(&key).await {
        if entry.is_fresh() {
            let (status, headers, with_body) = cache::answer_headers(&entry, request.headers());
            let body = match with_body && method == Method::GET {
                true => Body::from(entry.body.clone()),
                false => Body::empty(),
            };
            let mut response = Response::new(body);
            *response.status_mut() = status;
            *response.headers_mut() = headers;
            if method == Method::HEAD {
                response.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(entry.body.len()));
            }
            response.extensions_mut().insert(CacheOutcome("hit"));
            return response;
        }
        label = "EXPIRED";
    }
    let response = dispatch(state, context, live, request, user)
        .instrument(tracing::info_span!(target: "gateway", "dispatch"))
        .await;
    let lifetime = match cache::storable(response.status(), response.headers()) {
        cache::Storable::For(lifetime) if method == Method::GET => Some(lifetime),
        _ => None,
    };
    let size = http_body::Body::size_hint(response.body()).exact();
    let (mut parts, body) = response.into_parts();
    let body = match (lifetime, size) {
        (Some(lifetime), Some(size)) if size <= cache.limits().max_entry_bytes => {
            match http_body_util::BodyExt::collect(body).await {
                Ok(collected) => {
                    let bytes = collected.to_bytes();
                    let mut stored = parts.headers.clone();
                    // What is this call's alone stays out of the copy.
                    stored.remove("server-timing");
                    if !cache.insert(key, parts.status, stored, bytes.clone(), lifetime) {
                        label = "BYPASS";
                    }
                    Body::from(bytes)
                }
                Err(error) => {
                    tracing::warn!(%error, request_id = %context.request_id, "a response body could not be read for the cache");
                    return pages::internal_error_with_id(&context.request_id);
                }
            }
        }
        _ => {
            label = "BYPASS";
            body
        }
    };
    parts.headers.insert(HeaderName::from_static("x-cache"), HeaderValue::from_static(label));
    parts.extensions.insert(CacheOutcome(match label {
        "MISS" => "miss",
        "EXPIRED" => "expired",
        _ => "bypass",
    }));
    Response::from_parts(parts, body)
}

/// dispatch: a function whose route matches, else a static file.
async fn dispatch(
    state: &GatewayState,
    context: &AppRequest,
    live: &LiveApp,
    request: Request<Body>,
    user: Option<&SignedIn>,
) -> Response<Body> {
    let decoded_path = percent_encoding::percent_decode_str(&context.address.path).decode_utf8_lossy().into_owned();
    if let (Some(route), Some(functions)) = (live.deployment.function_for(&decoded_path), &live.functions) {
        return invoke(state, context, functions.as_ref(), &route.entry, request, user).await;
    }
    static_files::serve(state, live, &decoded_path, request.method(), request.headers(), &context.request_id).await
}

async fn invoke(
    state: &GatewayState,
    context: &AppRequest,
    functions: &dyn runtime::LoadedApp,
    entry: &str,
    request: Request<Body>,
    user: Option<&SignedIn>,
) -> Response<Body> {
    let (address, request_id) = (&context.address, context.request_id.as_str());
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, state.config.max_app_body_bytes).await {
        Ok(body) => body,
        Err(error) if is_length_limit(&error) => return pages::payload_too_large(state.config.max_app_body_bytes),
        // A body that breaks its framing (a bad chunk size, fewer bytes than announced).
        Err(_) => return pages::malformed_body(),
    };
    let query = parts.uri.query().map(|query| format!("?{query}")).unwrap_or_default();
    let host = if context.host.is_empty() { "localhost" } else { context.host.as_str() };
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
    // The caller's identity reaches the app as a short-lived token for this app only.
    if let Some(token) = user.and_then(|user| state.access.app_token(user, &address.app)) {
        headers.push((X_TERRARIUM_IDENTITY.as_str().to_owned(), token));
    }
    let call = FunctionRequest {
        method: parts.method.as_str().to_owned(),
        url,
        headers,
        body,
        request_id: request_id.to_owned(),
        trace_context: (state.outgoing_trace_context)(&parts.headers),
        user: user.map(|user| runtime::FunctionUser {
            subject: user.visitor.subject.clone(),
            email: user.email.clone(),
            name: user.name.clone(),
            groups: user.visitor.groups.clone(),
        }),
    };
    match functions.invoke(entry, call).await {
        Ok(response) => function_response(state, context, response),
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
/// platform owns (hop-by-hop, framing), and cookies that would cross the app's walls.
fn function_response(
    state: &GatewayState,
    context: &AppRequest,
    response: runtime::FunctionResponse,
) -> Response<Body> {
    let request_id = context.request_id.as_str();
    let status = StatusCode::from_u16(response.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut builder = Response::builder().status(status);
    let hostname = context.host.rsplit_once(':').map_or(context.host.as_str(), |(name, _)| name).to_ascii_lowercase();
    let scope = match context.address.mount.is_empty() {
        true => cookies::CookieScope::Host(&hostname),
        false => cookies::CookieScope::Mount(&context.address.mount),
    };
    let mut set_cookies = 0;
    let mut dropped = Vec::new();
    for (name, value) in &response.headers {
        let value = match name.eq_ignore_ascii_case("set-cookie") {
            false => std::borrow::Cow::Borrowed(value.as_str()),
            true => match cookies::check(value, scope) {
                cookies::Verdict::Keep(_) if set_cookies >= cookies::MAX_SET_COOKIES => {
                    dropped.push(format!("more than {} Set-Cookie headers in one response", cookies::MAX_SET_COOKIES));
                    continue;
                }
                cookies::Verdict::Keep(kept) => {
                    set_cookies += 1;
                    std::borrow::Cow::Owned(kept)
                }
                cookies::Verdict::Drop(reason) => {
                    dropped.push(reason);
                    continue;
                }
            },
        };
        let (Ok(name), Ok(value)) = (HeaderName::try_from(name.as_str()), HeaderValue::try_from(value.as_ref())) else {
            continue;
        };
        if is_platform_owned(&name) {
            continue;
        }
        builder = builder.header(name, value);
    }
    if !dropped.is_empty() {
        cookies_dropped(state, context, dropped);
    }
    builder = builder.header(&X_REQUEST_ID, request_id);
    // The function's CPU time, for the caller's developer tools and for metering.
    let cpu_ms = response.cpu.as_secs_f64() * 1000.0;
    builder = builder.header("server-timing", format!("cpu;dur={cpu_ms:.3}"));
    builder = builder.extension(FunctionCost { cpu: response.cpu, heap_bytes: response.heap_bytes });
    builder.body(Body::from(response.body)).unwrap_or_else(|_| pages::internal_error())
}

/// Tells the app's owner (in the app's log) and the operator (in the server's) which cookies
/// of one response were dropped, and why: one line per response.
fn cookies_dropped(state: &GatewayState, context: &AppRequest, reasons: Vec<String>) {
    let app = &context.address.app;
    let count = reasons.len();
    let mut distinct: Vec<String> = Vec::new();
    for reason in reasons {
        if !distinct.contains(&reason) {
            distinct.push(reason);
        }
    }
    let message = format!("the platform dropped {count} Set-Cookie header(s): {}", distinct.join("; "));
    tracing::warn!(namespace = %app.namespace, app = %app.name, request_id = %context.request_id, "{message}");
    if let Some(log) = &state.app_log {
        log.write(runtime::LogLine {
            app: app.clone(),
            request_id: context.request_id.clone(),
            level: runtime::LogLevel::Warn,
            message,
        });
    }
}

/// Where a request's platform credential came from, so it can be taken out before dispatch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Credential {
    None,
    Cookie,
    Bearer,
    /// A session cookie or bearer token was presented but is not a valid platform token.
    Invalid,
}

async fn authenticate(
    state: &GatewayState,
    headers: &http::HeaderMap,
    by_host: bool,
) -> (Option<SignedIn>, Credential) {
    let cookie_headers = headers.get_all(header::COOKIE).iter().filter_map(|value| value.to_str().ok());
    let sessions = cookies::session_values(cookie_headers, state.config.secure_cookies);
    // Two session cookies mean someone planted one: neither counts.
    if by_host
        && let [token] = sessions.as_slice()
        && let Some(user) = state.access.signed_in(token).await
    {
        return (Some(user), Credential::Cookie);
    }
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    if let Some(token) = bearer
        && let Some(user) = state.access.signed_in(token.trim()).await
    {
        return (Some(user), Credential::Bearer);
    }
    // A bearer token that is not ours (an app's own API key) is the app's business and stays;
    // it only counts as a refused credential where the app needs a sign-in.
    match !sessions.is_empty() || bearer.is_some() {
        true => (None, Credential::Invalid),
        false => (None, Credential::None),
    }
}

/// Removes the platform session cookie (keeping the app's own cookies) and, when it was ours,
/// the bearer token.
fn strip_credential(headers: &mut http::HeaderMap, credential: Credential) {
    let cookies: Vec<String> = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .map(str::trim)
        .filter(|pair| {
            !pair.is_empty() && !pair.split_once('=').is_some_and(|(name, _)| cookies::is_reserved(name.trim()))
        })
        .map(str::to_owned)
        .collect();
    headers.remove(header::COOKIE);
    if !cookies.is_empty()
        && let Ok(value) = HeaderValue::from_str(&cookies.join("; "))
    {
        headers.insert(header::COOKIE, value);
    }
    if credential == Credential::Bearer {
        headers.remove(header::AUTHORIZATION);
    }
}

/// Browsers go to the sign-in page and come back (to the app's own host); API clients get 401
/// with a challenge.
fn sign_in_required(
    state: &GatewayState,
    request: &Request<Body>,
    host: &str,
    address: &AppAddress,
    request_id: &str,
) -> Response<Body> {
    let wants_page = request.method() == http::Method::GET
        && request
            .headers()
            .get(header::ACCEPT)
            .and_then(|accept| accept.to_str().ok())
            .is_some_and(|accept| accept.contains("text/html"));
    if !wants_page {
        return pages::sign_in_required(request_id);
    }
    let query = request.uri().query().map(|query| format!("?{query}")).unwrap_or_default();
    let return_to = match address.mount.is_empty() {
        true => format!("http://{host}{}{query}", address.path),
        false => {
            // The same page on the app's own host: `<app>.<ns>.<apps-domain>`, on this port.
            let port = host.rsplit_once(':').map(|(_, port)| format!(":{port}")).unwrap_or_default();
            let app = &address.app;
            format!("http://{}.{}.{}{port}{}{query}", app.name, app.namespace, state.config.apps_domain, address.path)
        }
    };
    let encoded: String =
        percent_encoding::utf8_percent_encode(&return_to, percent_encoding::NON_ALPHANUMERIC).to_string();
    let location = format!("{}/auth/login?return_to={encoded}", state.config.public_url.trim_end_matches('/'));
    Response::builder()
        .status(StatusCode::FOUND)
        .header(header::LOCATION, location)
        .header(header::CACHE_CONTROL, "no-store")
        .body(Body::empty())
        .unwrap_or_else(|_| pages::internal_error())
}

/// `/.terrarium/session?ticket=…&return_to=/path` on a host-routed app: sets that host's
/// session cookie from a one-use-minute ticket and goes on to the page.
fn redeem_ticket(state: &GatewayState, host: &str, request: &Request<Body>) -> Response<Body> {
    let query = request.uri().query().unwrap_or_default();
    let param = |wanted: &str| {
        query.split('&').filter_map(|pair| pair.split_once('=')).find(|(name, _)| *name == wanted).map(|(_, value)| {
            percent_encoding::percent_decode_str(&value.replace('+', " ")).decode_utf8_lossy().into_owned()
        })
    };
    let hostname = host.rsplit_once(':').map_or(host, |(name, _)| name);
    let Some(session) = param("ticket").and_then(|ticket| state.access.redeem_ticket(&ticket, hostname)) else {
        return pages::sign_in_required("");
    };
    // Only a path on this same host: never an open redirect.
    let return_to = param("return_to")
        .filter(|path| path.starts_with('/') && !path.starts_with("//"))
        .unwrap_or_else(|| "/".to_owned());
    Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header(header::LOCATION, return_to)
        .header(header::SET_COOKIE, cookies::session_cookie_header(&session, state.config.secure_cookies))
        .header(header::CACHE_CONTROL, "no-store")
        .body(Body::empty())
        .unwrap_or_else(|_| pages::internal_error())
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

/// Whether reading a body failed on its size cap (413), not on its framing (400).
fn is_length_limit(error: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(cause) = source {
        if cause.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = cause.source();
    }
    false
}
