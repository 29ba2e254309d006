//! The control plane's HTTP routes (`/api/v1/...`), and the one place where control errors
//! become status codes. Bodies are the `api-types` shapes the CLI shares.

use std::collections::HashMap;
use std::sync::Arc;

use api_types::{
    ApiError, CreateNamespaceRequest, CreateUserRequest, CreateUserResponse, LoginRequest, RoleBindingRequest,
    RollbackRequest, UpdateUserRequest, WhoAmI,
};
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use control::store::UserChange;
use control::{ControlError, ControlPlane, Principal, Role};
use deployment::AppKey;
use futures::StreamExt;
use serde::Deserialize;

/// What the routes need.
pub struct ApiState {
    pub control: Arc<ControlPlane>,
    /// This server's base URL; a sign-in may only return to it or to an app under `apps_domain`.
    pub public_url: String,
    pub apps_domain: String,
    pub secure_cookies: bool,
    /// Prices and budgets, for chargeback exports.
    pub budgets: Arc<control::budgets::Budgets>,
    pub notifier: Arc<notify::Notifier>,
    /// The server's background tasks, to list and run now.
    pub tasks: Arc<control::background::Tasks>,
    pub clock: control::background::Clock,
}

/// The control API routes, to be mounted by the gateway as platform routes.
pub fn router(state: Arc<ApiState>, max_upload_bytes: usize) -> axum::Router {
    axum::Router::new()
        .route("/api/v1/deploy", post(deploy).layer(DefaultBodyLimit::max(max_upload_bytes)))
        .route("/api/v1/apps", get(list_apps))
        .route("/api/v1/apps/{namespace}/{name}", get(get_app).delete(delete_app))
        .route("/api/v1/apps/{namespace}/{name}/rollback", post(rollback))
        .route("/api/v1/apps/{namespace}/{name}/logs", get(logs))
        .route("/api/v1/namespaces", get(list_namespaces).post(create_namespace))
        .route("/api/v1/audit", get(list_audit))
        .route("/api/v1/whoami", get(whoami))
        .route("/api/v1/users", get(list_users).post(create_user))
        .route("/api/v1/users/{name}", axum::routing::patch(update_user))
        .route("/api/v1/roles", get(list_roles).post(grant_role).delete(revoke_role))
        .route("/api/v1/keys/rotate", post(rotate_keys))
        .route("/api/v1/apps/{namespace}/{name}/secrets", get(list_app_secrets))
        .route("/api/v1/apps/{namespace}/{name}/secrets/{secret}", axum::routing::put(set_secret).delete(remove_secret))
        .route("/api/v1/apps/{namespace}/{name}/secrets/{secret}/versions", get(secret_versions))
        .route("/api/v1/secrets", get(list_secrets))
        .route("/api/v1/egress", get(list_egress))
        .route("/api/v1/usage", get(usage))
        .route("/api/v1/chargeback", get(chargeback))
        .route("/api/v1/notifications", get(notifications))
        .route("/api/v1/policy", get(policy_status))
        .route("/api/v1/policy/reload", post(reload_policies))
        .route("/api/v1/policy/violations", get(list_violations))
        .route("/api/v1/policy/exceptions", get(list_exceptions).post(add_exception))
        .route("/api/v1/policy/exceptions/{id}", axum::routing::delete(remove_exception))
        .route("/api/v1/approvals", get(list_approvals))
        .route("/api/v1/approvals/{id}", get(get_approval))
        .route("/api/v1/approvals/{id}/{decision}", post(vote))
        .route("/api/v1/tasks", get(list_tasks))
        .route("/api/v1/tasks/{name}/run", post(run_task))
        .route("/api/v1/clock", get(get_clock).post(advance_clock))
        .route("/metrics", get(metrics))
        .route("/api/v1/secrets/rotate-kek", post(rotate_kek))
        .route("/auth/login", get(login_page).post(login))
        .route("/auth/logout", post(logout))
        .route("/auth/oidc/start", get(oidc_start))
        .route("/auth/oidc/callback", get(oidc_callback))
        .route("/auth/device", post(device_start))
        .route("/auth/device/token", post(device_token))
        .route("/oauth/token", post(oauth_token))
        .route("/.well-known/jwks.json", get(jwks))
        .route("/.well-known/openid-configuration", get(discovery))
        .fallback(not_found)
        .with_state(state)
}

/// An error response: a status and an [`ApiError`] body.
struct ApiFailure(StatusCode, ApiError);

impl IntoResponse for ApiFailure {
    fn into_response(self) -> Response {
        let mut response = (self.0, Json(self.1)).into_response();
        if self.0 == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer realm=\"terrarium\""));
        }
        response
    }
}

/// 429 with `Retry-After`, for a user name locked after failed sign-ins.
fn too_many_attempts(message: String, retry_after_secs: u64) -> Response {
    let mut response = failure(StatusCode::TOO_MANY_REQUESTS, "too_many_attempts", message, vec![]).into_response();
    response.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from(retry_after_secs));
    response
}

fn failure(status: StatusCode, code: &str, message: impl Into<String>, details: Vec<String>) -> ApiFailure {
    ApiFailure(status, ApiError { code: code.to_owned(), message: message.into(), details })
}

impl From<ControlError> for ApiFailure {
    fn from(error: ControlError) -> ApiFailure {
        let message = error.to_string();
        match error {
            ControlError::Bundle(_) => failure(StatusCode::BAD_REQUEST, "invalid_bundle", message, vec![]),
            ControlError::InvalidManifest(details) => failure(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_manifest",
                format!("{message}; fix them and deploy again"),
                details,
            ),
            ControlError::Unplannable(details) => {
                failure(StatusCode::UNPROCESSABLE_ENTITY, "invalid_app", message, details)
            }
            ControlError::SecretsFound { details, .. } => {
                failure(StatusCode::UNPROCESSABLE_ENTITY, "secrets_found", message, details)
            }
            ControlError::PolicyDenied { details } => failure(
                StatusCode::UNPROCESSABLE_ENTITY,
                "policy_denied",
                "the platform's policies refuse this app; change what each names and deploy again (or ask an operator for an exception)",
                details,
            ),
            ControlError::PolicyFailed(_) => {
                failure(StatusCode::SERVICE_UNAVAILABLE, "policy_unavailable", message, vec![])
            }
            ControlError::PolicyInvalid(_) => {
                failure(StatusCode::UNPROCESSABLE_ENTITY, "policy_invalid", message, vec![])
            }
            ControlError::Load(_) => failure(StatusCode::UNPROCESSABLE_ENTITY, "load_failed", message, vec![]),
            ControlError::UnknownNamespace { .. }
            | ControlError::UnknownApp { .. }
            | ControlError::UnknownRevision { .. } => failure(StatusCode::NOT_FOUND, "not_found", message, vec![]),
            ControlError::NothingToRollBack { .. } => {
                failure(StatusCode::CONFLICT, "nothing_to_roll_back", message, vec![])
            }
            ControlError::NamespaceExists { .. } | ControlError::Conflict(_) => {
                failure(StatusCode::CONFLICT, "conflict", message, vec![])
            }
            ControlError::InvalidName(_) => failure(StatusCode::BAD_REQUEST, "invalid_name", message, vec![]),
            ControlError::Forbidden(_) => failure(StatusCode::FORBIDDEN, "forbidden", message, vec![]),
            ControlError::Unauthenticated(_) => failure(StatusCode::UNAUTHORIZED, "unauthenticated", message, vec![]),
            ControlError::TooManyAttempts { .. } => {
                failure(StatusCode::TOO_MANY_REQUESTS, "too_many_attempts", message, vec![])
            }
            ControlError::UnknownUser { .. } | ControlError::NotFound(_) => {
                failure(StatusCode::NOT_FOUND, "not_found", message, vec![])
            }
            ControlError::Internal(detail) => {
                // Internal details go to the server log, never to the caller.
                tracing::error!(error = %detail, "control plane internal error");
                failure(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "Terrarium failed; the server log has the details",
                    vec![],
                )
            }
        }
    }
}

type ApiResult<T> = Result<T, ApiFailure>;

/// Every `/api/v1` route requires a platform access token (`terrarium login`).
async fn authenticate(state: &ApiState, headers: &HeaderMap, action: &str) -> ApiResult<Principal> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|token| !token.is_empty());
    let Some(token) = presented else {
        state.control.audit_denial("anonymous", action, "no token".to_owned()).await;
        return Err(failure(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "sign in first: run `terrarium login` (or pass a token with --token / TERRARIUM_TOKEN)",
            vec![],
        ));
    };
    match state.control.authenticate(token).await {
        Ok(principal) => Ok(principal),
        Err(error) => {
            state.control.audit_denial("anonymous", action, error.to_string()).await;
            Err(failure(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                format!("{error}; sign in again with `terrarium login`"),
                vec![],
            ))
        }
    }
}

fn app_key(namespace: String, name: String) -> AppKey {
    AppKey::new(namespace, name)
}

async fn deploy(State(state): State<Arc<ApiState>>, headers: HeaderMap, body: Bytes) -> ApiResult<Response> {
    let principal = authenticate(&state, &headers, "app.deploy").await?;
    let response = state.control.deploy(&principal, &body).await?;
    let status = match (&response.pending_approval, response.changed) {
        (Some(_), _) => StatusCode::ACCEPTED,
        (None, true) => StatusCode::CREATED,
        (None, false) => StatusCode::OK,
    };
    Ok((status, Json(response)).into_response())
}

/// `?namespace=…`: one namespace, or all the caller may see.
#[derive(Deserialize)]
struct NamespaceQuery {
    namespace: Option<String>,
}

async fn list_apps(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    Query(query): Query<NamespaceQuery>,
) -> ApiResult<Response> {
    let principal = authenticate(&state, &headers, "app.list").await?;
    if let Some(namespace) = &query.namespace {
        state.control.authorize_read(&principal, namespace, "app.list").await?;
    }
    let mut apps = state.control.list_apps(query.namespace.as_deref()).await?;
    // Only the namespaces the caller may read.
    apps.retain(|app| principal.has_role(&app.namespace, Role::Viewer));
    state.control.audit_read(&principal, "app.list", query.namespace.as_deref()).await;
    Ok(Json(apps).into_response())
}

async fn get_app(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    Path((namespace, name)): Path<(String, String)>,
) -> ApiResult<Response> {
    let principal = authenticate(&state, &headers, "app.get").await?;
    state.control.authorize_read(&principal, &namespace, "app.get").await?;
    let detail = state.control.get_app(&app_key(namespace.clone(), name)).await?;
    state.control.audit_read(&principal, "app.get", Some(&namespace)).await;
    Ok(Json(detail).into_response())
}

async fn delete_app(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    Path((namespace, name)): Path<(String, String)>,
) -> ApiResult<Response> {
    let principal = authenticate(&state, &headers, "app.delete").await?;
    state.control.delete(&principal, &app_key(namespace, name)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn rollback(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    Path((namespace, name)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let principal = authenticate(&state, &headers, "app.rollback").await?;
    let request: RollbackRequest = match body.is_empty() {
        true => RollbackRequest::default(),
        false => parse_json(&body, "{\"revision\": 3} or an empty body")?,
    };
    Ok(Json(state.control.rollback(&principal, &app_key(namespace, name), request.revision).await?).into_response())
}

#[derive(Deserialize)]
struct LogsQuery {
    #[serde(default = "default_tail")]
    tail: usize,
    #[serde(default)]
    follow: bool,
}

fn default_tail() -> usize {
    100
}

/// An NDJSON stream: the recent lines, then with `follow` every new line until the client leaves.
async fn logs(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    Path((namespace, name)): Path<(String, String)>,
    Query(query): Query<LogsQuery>,
) -> ApiResult<Response> {
    let principal = authenticate(&state, &headers, "app.logs").await?;
    state.control.authorize_read(&principal, &namespace, "app.logs").await?;
    let app = app_key(namespace, name);
    // Fails with 404 for an app that does not exist, rather than streaming nothing.
    state.control.get_app(&app).await?;
    let live = query.follow.then(|| state.control.logs.subscribe());
    let recent = state.control.logs.tail(&app, query.tail);
    let to_line = |entry: &api_types::LogEntry| {
        let mut line = serde_json::to_vec(entry).expect("log entries serialize");
        line.push(b'\n');
        Ok::<_, std::convert::Infallible>(Bytes::from(line))
    };
    let recent_lines: Vec<_> = recent.iter().map(to_line).collect();
    let head = futures::stream::iter(recent_lines);
    state.control.audit_read(&principal, "app.logs", Some(&app.namespace)).await;
    let body = match live {
        None => Body::from_stream(head),
        Some(receiver) => {
            let tail = tokio_stream::wrappers::BroadcastStream::new(receiver).filter_map(move |item| {
                let line = match item {
                    Ok((key, entry)) if key == app => Some(to_line(&entry)),
                    Ok(_) => None,
                    // A follower that fell behind is told so instead of silently missing lines.
                    Err(tokio_stream::wrappers::errors::BroadcastStreamRecvError::Lagged(n)) => Some(Ok(Bytes::from(format!(
                        "{{\"time\":\"{}\",\"namespace\":\"\",\"app\":\"\",\"request_id\":\"\",\"level\":\"warn\",\"message\":\"{n} lines were skipped because the follower fell behind\"}}\n",
                        control::now()
                    )))),
                };
                futures::future::ready(line)
            });
            Body::from_stream(head.chain(tail))
        }
    };
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response())
}

async fn list_namespaces(State(state): State<Arc<ApiState>>, headers: HeaderMap) -> ApiResult<Response> {
    let principal = authenticate(&state, &headers, "namespace.list").await?;
    let mut namespaces = state.control.list_namespaces().await?;
    namespaces.retain(|namespace| principal.has_role(&namespace.name, Role::Viewer));
    state.control.audit_read(&principal, "namespace.list", None).await;
    Ok(Json(namespaces).into_response())
}

async fn create_namespace(State(state): State<Arc<ApiState>>, headers: HeaderMap, body: Bytes) -> ApiResult<Response> {
    let principal = authenticate(&state, &headers, "namespace.create").await?;
    let request: CreateNamespaceRequest = parse_json(&body, "{\"name\": \"...\"}")?;
    let created = state.control.create_namespace(&principal, &request.name).await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

#[derive(Deserialize)]
struct AuditQuery {
    namespace: Option<String>,
    app: Option<String>,
    #[serde(default = "default_tail")]
    limit: usize,
}

async fn list_audit(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    Query(query): Query<AuditQuery>,
) -> ApiResult<Response> {
    let principal = authenticate(&state, &headers, "audit.list").await?;
    // The whole log for platform admins; one namespace's events for its operators.
    let allowed = match &query.namespace {
        Some(namespace) => principal.has_role(namespace, Role::Operator),
        None => principal.is_platform_admin(),
    };
    if !allowed {
        let message =
            "reading the audit log needs the operator role in the namespace (pass --namespace) or platform admin"
                .to_owned();
        return Err(state
            .control
            .deny(&principal, "audit.list", query.namespace.as_deref(), None, message)
            .await
            .into());
    }
    let limit = query.limit.clamp(1, 10_000) as u32;
    state.control.audit_read(&principal, "audit.list", query.namespace.as_deref()).await;
    Ok(Json(state.control.list_audit(query.namespace, query.app, limit).await?).into_response())
}

/// JSON in, token out (the CLI); or the browser's form in, session cookie and redirect out.
async fn login(State(state): State<Arc<ApiState>>, headers: HeaderMap, body: Bytes) -> ApiResult<Response> {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        let request: LoginRequest = parse_json(&body, "{\"username\": \"...\", \"password\": \"...\"}")?;
        return match state.control.login(&request.username, &request.password).await {
            Ok(signed_in) => Ok(Json(signed_in).into_response()),
            Err(error @ ControlError::TooManyAttempts { retry_after_secs }) => {
                Ok(too_many_attempts(error.to_string(), retry_after_secs))
            }
            Err(error) => Err(error.into()),
        };
    }
    // Login CSRF: a form posted from another site would sign the victim in as the attacker.
    // Browsers name the page's origin on a cross-site POST; it must be this server.
    let origin = headers.get(header::ORIGIN).and_then(|value| value.to_str().ok());
    if let Some(origin) = origin
        && origin != state.public_url.trim_end_matches('/')
    {
        return Err(failure(
            StatusCode::FORBIDDEN,
            "cross_site",
            "sign in from this server's own sign-in page",
            vec![],
        ));
    }
    let form: LoginForm = serde_urlencoded_form(&body)?;
    let return_to = form.return_to.unwrap_or_default();
    let signed_in = match state.control.login(&form.username, &form.password).await {
        Ok(signed_in) => signed_in,
        Err(error @ (ControlError::Unauthenticated(_) | ControlError::TooManyAttempts { .. })) => {
            let message = error.to_string();
            let provider = state.control.federation().map(|federation| federation.display_name.as_str());
            return Ok((StatusCode::UNAUTHORIZED, login_html(&return_to, Some(&message), provider)).into_response());
        }
        Err(error) => return Err(error.into()),
    };
    signed_in_redirect(&state, &signed_in, &return_to)
}

#[derive(Deserialize)]
struct LoginForm {
    username: String,
    password: String,
    return_to: Option<String>,
}

#[derive(Deserialize)]
struct LoginPageQuery {
    return_to: Option<String>,
}

async fn login_page(State(state): State<Arc<ApiState>>, Query(query): Query<LoginPageQuery>) -> Response {
    let provider = state.control.federation().map(|federation| federation.display_name.as_str());
    login_html(query.return_to.as_deref().unwrap_or_default(), None, provider).into_response()
}

/// The session cookie and the redirect back, after any successful browser sign-in.
fn signed_in_redirect(state: &ApiState, signed_in: &api_types::LoginResponse, return_to: &str) -> ApiResult<Response> {
    let cookie = gateway::session_cookie_header(&signed_in.access_token, state.secure_cookies);
    let location = match safe_return(state, return_to) {
        ReturnTo::Here(path) => path,
        ReturnTo::AppHost { origin, host, path } => {
            let ticket = state
                .control
                .tokens
                .mint_ticket(&signed_in.user, &[], &host)
                .map_err(|error| ControlError::Internal(format!("minting a ticket: {error}")))?;
            format!("{origin}{}?ticket={ticket}&return_to={}", gateway::SESSION_PATH, encode(&path))
        }
    };
    Ok(redirect(StatusCode::SEE_OTHER, &location, Some(cookie)))
}

fn configured_federation(state: &ApiState) -> ApiResult<&control::federation::Federation> {
    state.control.federation().ok_or_else(|| {
        failure(StatusCode::NOT_FOUND, "not_found", "no identity provider is configured on this server", vec![])
    })
}

/// A redirect the browser must not cache, optionally setting a cookie.
fn redirect(status: StatusCode, location: &str, cookie: Option<String>) -> Response {
    let mut response =
        Response::builder().status(status).header(header::LOCATION, location).header(header::CACHE_CONTROL, "no-store");
    if let Some(cookie) = cookie {
        response = response.header(header::SET_COOKIE, cookie);
    }
    response.body(Body::empty()).expect("a redirect to a checked location is a valid response")
}

/// `GET /auth/oidc/start?return_to=…`: off to the identity provider (code flow with PKCE).
async fn oidc_start(State(state): State<Arc<ApiState>>, Query(query): Query<LoginPageQuery>) -> ApiResult<Response> {
    let federation = configured_federation(&state)?;
    let redirect_uri = format!("{}/auth/oidc/callback", state.public_url.trim_end_matches('/'));
    let location = federation.start(&redirect_uri, query.return_to.unwrap_or_default());
    Ok(redirect(StatusCode::FOUND, &location, None))
}

#[derive(Deserialize)]
struct CallbackQuery {
    state: Option<String>,
    code: Option<String>,
    error: Option<String>,
}

/// `GET /auth/oidc/callback?code=…&state=…`: back from the provider, signed in.
async fn oidc_callback(State(state): State<Arc<ApiState>>, Query(query): Query<CallbackQuery>) -> ApiResult<Response> {
    let federation = configured_federation(&state)?;
    let (Some(flow_state), Some(code)) = (query.state, query.code) else {
        // The provider's own error code (access_denied, ...) is a bounded OAuth vocabulary word.
        let reason = query.error.filter(|error| error.chars().all(|c| c.is_ascii_lowercase() || c == '_'));
        let message = format!("the identity provider did not sign you in ({})", reason.as_deref().unwrap_or("no code"));
        return Ok(
            (StatusCode::UNAUTHORIZED, login_html("", Some(&message), Some(&federation.display_name))).into_response()
        );
    };
    let (identity, return_to) = federation.finish(&flow_state, &code).await?;
    let signed_in = state.control.sign_in_external(identity, "oidc").await?;
    signed_in_redirect(&state, &signed_in, &return_to)
}

/// `POST /auth/device`: the CLI's device sign-in starts (the platform is the provider's client).
async fn device_start(State(state): State<Arc<ApiState>>) -> ApiResult<Response> {
    let authorization = state.control.start_device_login().await?;
    Ok(Json(api_types::DeviceStart {
        device_code: authorization.device_code,
        user_code: authorization.user_code,
        verification_uri: authorization.verification_uri,
        verification_uri_complete: authorization.verification_uri_complete,
        expires_in: authorization.expires_in,
        interval: authorization.interval,
    })
    .into_response())
}

/// `POST /auth/device/token {device_code}`: 200 with a token once the user approved, else
/// 400 with the RFC 8628 error code (`authorization_pending`, `slow_down`, ...).
async fn device_token(State(state): State<Arc<ApiState>>, body: Bytes) -> ApiResult<Response> {
    let request: api_types::DevicePoll = parse_json(&body, "{\"device_code\": \"...\"}")?;
    let pending = |code: &str, message: &str| failure(StatusCode::BAD_REQUEST, code, message, vec![]);
    match state.control.poll_device_login(&request.device_code).await? {
        control::federation::DeviceOutcome::Granted(signed_in) => Ok(Json(signed_in).into_response()),
        control::federation::DeviceOutcome::Pending => {
            Err(pending("authorization_pending", "waiting for you to approve the sign-in"))
        }
        control::federation::DeviceOutcome::SlowDown => Err(pending("slow_down", "polling too fast")),
        control::federation::DeviceOutcome::Denied => Err(pending("access_denied", "the sign-in was denied")),
        control::federation::DeviceOutcome::Expired => {
            Err(pending("expired_token", "the sign-in expired; run `terrarium login` again"))
        }
    }
}

/// `POST /oauth/token` (RFC 8693 token exchange): an identity-provider access token in, a
/// platform access token out. Answers in OAuth's own error shape.
async fn oauth_token(State(state): State<Arc<ApiState>>, body: Bytes) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let oauth_error = |status: StatusCode, error: &str, description: &str| {
        (status, Json(serde_json::json!({ "error": error, "error_description": description }))).into_response()
    };
    if form.get("grant_type").map(String::as_str) != Some(identity::TOKEN_EXCHANGE_GRANT_TYPE) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "only token exchange (RFC 8693) is supported",
        );
    }
    let accepted_types = ["urn:ietf:params:oauth:token-type:access_token", "urn:ietf:params:oauth:token-type:jwt"];
    if !form.get("subject_token_type").is_some_and(|kind| accepted_types.contains(&kind.as_str())) {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "subject_token_type must be an access token");
    }
    let Some(subject_token) = form.get("subject_token").filter(|token| !token.is_empty()) else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "subject_token is missing");
    };
    match state.control.exchange_token(subject_token).await {
        Ok(signed_in) => Json(serde_json::json!({
            "access_token": signed_in.access_token,
            "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
            "token_type": "Bearer",
            "expires_in": signed_in.expires_in,
        }))
        .into_response(),
        Err(ControlError::Unauthenticated(message)) => oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", &message),
        Err(ControlError::NotFound(message)) => {
            oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", &message)
        }
        Err(error) => ApiFailure::from(error).into_response(),
    }
}

async fn logout(State(state): State<Arc<ApiState>>) -> Response {
    let secure = if state.secure_cookies { "; Secure" } else { "" };
    let cleared = format!("{}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}", gateway::SESSION_COOKIE);
    redirect(StatusCode::SEE_OTHER, "/auth/login", Some(cleared))
}

/// Where a sign-in may send the browser back to: this server, or an app under the apps domain.
enum ReturnTo {
    Here(String),
    AppHost { origin: String, host: String, path: String },
}

fn safe_return(state: &ApiState, return_to: &str) -> ReturnTo {
    if return_to.starts_with('/') && !return_to.starts_with("//") && !return_to.contains('\\') {
        return ReturnTo::Here(return_to.to_owned());
    }
    let Ok(url) = url::Url::parse(return_to) else { return ReturnTo::Here("/".to_owned()) };
    let path = match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    };
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    let same_server = url::Url::parse(&state.public_url).ok().is_some_and(|public| {
        public.host_str() == url.host_str() && public.port_or_known_default() == url.port_or_known_default()
    });
    if same_server {
        return ReturnTo::Here(path);
    }
    let under_apps_domain = host.strip_suffix(&state.apps_domain).is_some_and(|prefix| prefix.ends_with('.'));
    if matches!(url.scheme(), "http" | "https") && under_apps_domain && url.username().is_empty() {
        let origin = url.origin().ascii_serialization();
        return ReturnTo::AppHost { origin, host, path };
    }
    // Anywhere else would be an open redirect.
    ReturnTo::Here("/".to_owned())
}

fn encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn login_html(return_to: &str, error: Option<&str>, provider: Option<&str>) -> axum::response::Html<String> {
    let error = error.map(|message| format!("<p class=\"error\">{}</p>", escape_html(message))).unwrap_or_default();
    let provider = provider
        .map(|name| {
            format!(
                "<p><a class=\"provider\" href=\"/auth/oidc/start?return_to={}\">Sign in with {}</a></p><p>or with a local account:</p>",
                encode(return_to),
                escape_html(name)
            )
        })
        .unwrap_or_default();
    axum::response::Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Sign in · Terrarium</title>\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <style>body{{font:16px/1.5 system-ui,sans-serif;max-width:22rem;margin:4rem auto;padding:0 1rem;color:#222}}\
         label{{display:block;margin:.8rem 0 .2rem}}input{{width:100%;padding:.4rem;font:inherit;box-sizing:border-box}}\
         button{{margin-top:1rem;padding:.5rem 1rem;font:inherit}}.error{{color:#a00}}</style></head>\
         <body><h1>Sign in</h1>{error}{provider}<form method=\"post\" action=\"/auth/login\">\
         <label for=\"username\">User</label><input id=\"username\" name=\"username\" autocomplete=\"username\" required autofocus>\
         <label for=\"password\">Password</label><input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\
         <input type=\"hidden\" name=\"return_to\" value=\"{}\"><button type=\"submit\">Sign in</button></form></body></html>\n",
        escape_html(return_to)
    ))
}

fn serde_urlencoded_form<T: serde::de::DeserializeOwned>(body: &Bytes) -> ApiResult<T> {
    let pairs: serde_json::Map<String, serde_json::Value> = url::form_urlencoded::parse(body)
        .map(|(name, value)| (name.into_owned(), serde_json::Value::String(value.into_owned())))
        .collect();
    serde_json::from_value(serde_json::Value::Object(pairs)).map_err(|error| {
        failure(StatusCode::BAD_REQUEST, "invalid_request", format!("the sign-in form is incomplete: {error}"), vec![])
    })
}

async fn whoami(State(state): State<Arc<ApiState>>, headers: HeaderMap) -> ApiResult<Response> {
    let principal = authenticate(&state, &headers, "auth.whoami").await?;
    let roles = principal.roles.iter().map(|(namespace, role)| format!("{namespace}:{role}")).collect();
    state.control.audit_read(&principal, "auth.whoami", None).await;
    Ok(Json(WhoAmI { user: principal.subject, groups: principal.groups, roles }).into_response())
}

async fn list_users(State(state): State<Arc<ApiState>>, headers: HeaderMap) -> ApiResult<Response> {
    let principal = authenticate(&state, &headers, "user.list").await?;
    let users = state.control.list_users(&principal).await?;
    state.control.audit_read(&principal, "user.list", None).await;
    Ok(Json(users).into_response())
}

async fn create_user(State(state): State<Arc<ApiState>>, headers: HeaderMap, body: Bytes) -> ApiResult<Response> {
    let principal = authenticate(&state, &headers, "user.create").await?;
    let request: CreateUserRequest = parse_json(&body, "{\"name\": \"...\", \"groups\": [...]}")?;
    let (user, password) = state.control.create_user(&principal, &request.name, request.groups, None).await?;
    let password = password.expect("a generated password is returned");
    Ok((StatusCode::CREATED, Json(CreateUserResponse { user, password })).into_response())
}

async fn update_user(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let principal = authenticate(&state, &headers, "user.update").await?;
    let request: UpdateUserRequest = parse_json(&body, "{\"disabled\": true} or {\"groups\": [...]}")?;
    let change = UserChange { disabled: request.disabled, groups: request.groups, password_hash: None };
    Ok(Json(state.control.update_user(&principal, &name, change).await?).into_response())
}

async fn list_roles(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    Query(query): Query<NamespaceQuery>,
) -> ApiResult<Response> {
    let principal = authenticate(&state, &headers, "role.list").await?;
    let roles = state.control.list_roles(&principal, query.namespace.as_deref()).await?;
    state.control.audit_read(&principal, "role.list", query.namespace.as_deref()).await;
    Ok(Json(roles).into_response())
}

fn parse_binding(body: &Bytes) -> ApiResult<(RoleBindingRequest, Role)> {
    let request: RoleBindingRequest =
        parse_json(body, "{\"namespace\": \"...\", \"subject\": \"user:...\", \"role\": \"builder\"}")?;
    let role = request
        .role
        .parse::<Role>()
        .map_err(|message| failure(StatusCode::BAD_REQUEST, "invalid_role", message, vec![]))?;
    Ok((request, role))
}

async fn grant_role(State(state): State<Arc<ApiState>>, headers: HeaderMap, body: Bytes) -> ApiResult<Response> {
    let principal = authenticate(&state, &headers, "role.grant").await?;
    let (request, role) = parse_binding(&body)?;
    let binding = state.control.grant_role(&principal, &request.namespace, &request.subject, role).await?;
    Ok((StatusCode::CREATED, Json(binding)).into_response())
}

async fn revoke_role(State(state): State<Arc<ApiState>>, headers: HeaderMap, body: Bytes) -> ApiResult<Response> {
    let principal = authenticate(&state, &headers, "role.revoke").await?;
    let (request, role) = parse_binding(&body)?;
    state.control.revoke_role(&principal, &request.namespace, &request.subject, role).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /api/v1/keys/rotate`: a new platform signing key; answers the kids that verify.
async fn rotate_keys(State(state): State<Arc<ApiState>>, headers: HeaderMap) -> ApiResult<Response> {
    let principal = authenticate(&state, &headers, "keys.rotate").await?;
    let kids = state.control.rotate_signing_key(&principal).await?;
    Ok(Json(serde_json::json!({ "active_kid": kids[0], "kids": kids })).into_response())
}

async fn list_tasks(State(state): State<Arc<ApiState>>, headers: HeaderMap) -> ApiResult<Response> {
    let principal = authenticate(&state, &headers, "tasks.list").await?;
    if !principal.is_platform_admin() {
        let message = "only a platform admin may list background tasks".to_owned();
        return Err(state.control.deny(&principal, "tasks.list", None, None, message).await.into());
    }
    Ok(Json(state.tasks.list()).into_response())
}

/// Runs a background task now and answers when it is over: how long it took, what failed.
async fn run_task(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    let principal = authenticate(&state, &headers, "tasks.run").await?;
    if !principal.is_platform_admin() {
        let message = "only a platform admin may run background tasks".to_owned();
        return Err(state.control.deny(&principal, "tasks.run", None, None, message).await.into());
    }
    let run = state.tasks.run(&name).await.map_err(|unknown| ControlError::NotFound(unknown.to_string()))?;
    let detail = match &run.error {
        None => format!("ran {name}"),
        Some(error) => format!("ran {name}, which failed: {error}"),
    };
    state.control.platform_admin_action(&principal, "tasks.run", "run background tasks", detail).await?;
    Ok(Json(run).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AdvanceClock {
    /// Seconds to move the clock forward by.
    advance_secs: u64,
}

fn clock_body(clock: &control::background::Clock) -> serde_json::Value {
    serde_json::json!({ "now": clock.now_rfc3339(), "offset_secs": clock.offset_secs(), "adjustable": clock.is_adjustable() })
}

async fn get_clock(State(state): State<Arc<ApiState>>, headers: HeaderMap) -> ApiResult<Response> {
    authenticate(&state, &headers, "clock.get").await?;
    Ok(Json(clock_body(&state.clock)).into_response())
}

/// Moves an adjustable clock forward (`[server] adjustable_clock = true`; tests and drills).
async fn advance_clock(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    body: Result<Json<AdvanceClock>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Response> {
    let principal = authenticate(&state, &headers, "clock.advance").await?;
    let Json(body) = body.map_err(|rejection| {
        failure(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!("the body must be JSON like {{\"advance_secs\": 86400}}: {rejection}"),
            vec![],
        )
    })?;
    if !principal.is_platform_admin() {
        let message = "only a platform admin may move the clock".to_owned();
        return Err(state.control.deny(&principal, "clock.advance", None, None, message).await.into());
    }
    state
        .clock
        .advance(std::time::Duration::from_secs(body.advance_secs))
        .map_err(|refused| ControlError::Conflict(refused.to_string()))?;
    let detail = format!("moved the clock forward by {} s", body.advance_secs);
    state.control.platform_admin_action(&principal, "clock.advance", "move the clock", detail).await?;
    Ok(Json(clock_body(&state.clock)).into_response())
}

async fn list_app_secrets(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    Path((namespace, name)): Path<(String, String)>,
) -> ApiResult<Response> {
    let principal = authenticate(&state, &headers, "secret.list").await?;
    Ok(Json(state.control.list_secrets(&principal, &namespace, Some(&name)).await?).into_response())
}

#[derive(Deserialize)]
struct SecretsQuery {
    namespace: String,
    app: Option<String>,
}

async fn list_secrets(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    query: Result<Query<SecretsQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Response> {
    let principal = authenticate(&state, &headers, "secret.list").await?;
    let Ok(Query(query)) = query else {
        return Err(failure(StatusCode::BAD_REQUEST, "invalid_request", "pass ?namespace=<namespace>", vec![]));
    };
    Ok(Json(state.control.list_secrets(&principal, &query.namespace, query.app.as_deref()).await?).into_response())
}

/// `PUT .../secrets/{secret}` with `{"value": "...", "expires_at": "..."}`. A malformed body is
/// refused without repeating any of it: it may hold the secret.
async fn set_secret(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    Path((namespace, name, secret)): Path<(String, String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let principal = authenticate(&state, &headers, "secret.set").await?;
    let request: api_types::SetSecret = serde_json::from_slice(&body).map_err(|_| {
        failure(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "expected {\"value\": \"...\"} with an optional \"expires_at\" (RFC 3339); the value must be a JSON string",
            vec![],
        )
    })?;
    let set = state.control.set_secret(&principal, &app_key(namespace, name), &secret, request).await?;
    Ok((StatusCode::CREATED, Json(set)).into_response())
}

async fn remove_secret(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    Path((namespace, name, secret)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let principal = authenticate(&state, &headers, "secret.remove").await?;
    let reloaded = state.control.remove_secret(&principal, &app_key(namespace, name), &secret).await?;
    Ok(Json(serde_json::json!({ "removed": secret, "reloaded": reloaded })).into_response())
}

async fn secret_versions(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    Path((namespace, name, secret)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let principal = authenticate(&state, &headers, "secret.versions").await?;
    Ok(Json(state.control.secret_versions(&principal, &app_key(namespace, name), &secret).await?).into_response())
}

/// `POST /api/v1/secrets/rotate-kek`: an NDJSON stream of the rotation's progress. The rotation
/// runs to its end even if the client leaves.
async fn rotate_kek(State(state): State<Arc<ApiState>>, headers: HeaderMap) -> ApiResult<Response> {
    let principal = authenticate(&state, &headers, "secrets.rotate_kek").await?;
    if !principal.is_platform_admin() {
        let message = "only a platform admin may rotate the key-encryption key".to_owned();
        return Err(state.control.deny(&principal, "secrets.rotate_kek", None, None, message).await.into());
    }
    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel::<serde_json::Value>();
    let control = state.control.clone();
    tokio::spawn(async move {
        let progress_sender = sender.clone();
        let mut progress = move |event: secrets::RotationEvent| {
            let _ = progress_sender.send(serde_json::to_value(event).unwrap_or_default());
        };
        if let Err(error) = control.rotate_kek(&principal, false, &mut progress).await {
            let message = ApiFailure::from(error).1.message;
            let _ = sender.send(serde_json::json!({ "event": "error", "message": message }));
        }
    });
    let lines = tokio_stream::wrappers::UnboundedReceiverStream::new(receiver).map(|event| {
        let mut line = serde_json::to_vec(&event).unwrap_or_default();
        line.push(b'\n');
        Ok::<_, std::convert::Infallible>(Bytes::from(line))
    });
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], Body::from_stream(lines)).into_response())
}

#[derive(Deserialize)]
struct EgressQuery {
    namespace: String,
    app: Option<String>,
    #[serde(default)]
    denied: bool,
    #[serde(default = "default_egress_limit")]
    limit: u32,
}

fn default_egress_limit() -> u32 {
    50
}

async fn list_egress(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    query: Result<Query<EgressQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Response> {
    let principal = authenticate(&state, &headers, "egress.list").await?;
    let Ok(Query(query)) = query else {
        return Err(failure(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "pass ?namespace=<namespace> and optionally app=<name>, denied=true, limit=<n>",
            vec![],
        ));
    };
    let filter = control::store::EgressFilter {
        namespace: Some(query.namespace),
        app: query.app,
        denied_only: query.denied,
        limit: query.limit.clamp(1, 10_000),
    };
    Ok(Json(state.control.list_egress(&principal, filter).await?).into_response())
}

#[derive(Deserialize)]
struct UsageQuery {
    namespace: Option<String>,
    app: Option<String>,
    owner: Option<String>,
    month: Option<String>,
    #[serde(default = "default_usage_by")]
    by: String,
}

fn default_usage_by() -> String {
    "app".to_owned()
}

async fn usage(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    Query(query): Query<UsageQuery>,
) -> ApiResult<Response> {
    let principal = authenticate(&state, &headers, "usage.read").await?;
    let entries = state
        .control
        .usage(&principal, query.namespace, query.app, query.owner.as_deref(), query.month.as_deref(), &query.by)
        .await?;
    Ok(Json(entries).into_response())
}

#[derive(Deserialize)]
struct ChargebackQuery {
    month: Option<String>,
    #[serde(default = "default_chargeback_by")]
    by: String,
}

fn default_chargeback_by() -> String {
    "namespace".to_owned()
}

/// Cost per namespace or owner for a month: platform-wide viewers (finance) only.
async fn chargeback(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    Query(query): Query<ChargebackQuery>,
) -> ApiResult<Response> {
    let principal = authenticate(&state, &headers, "chargeback.read").await?;
    if !principal.has_role(control::ALL_NAMESPACES, Role::Viewer) {
        let message = "chargeback covers every namespace: it needs a platform-wide viewer role".to_owned();
        return Err(state.control.deny(&principal, "chargeback.read", None, None, message).await.into());
    }
    let by_owner = match query.by.as_str() {
        "namespace" => false,
        "owner" => true,
        other => {
            let message = format!("by={other:?}: use namespace or owner");
            return Err(failure(StatusCode::BAD_REQUEST, "invalid_request", message, vec![]));
        }
    };
    let rows = state.budgets.chargeback(query.month.as_deref(), by_owner).await?;
    state.control.audit_read(&principal, "chargeback.read", None).await;
    Ok(Json(rows).into_response())
}

/// What the notifier sent to whom: platform admins only.
async fn notifications(State(state): State<Arc<ApiState>>, headers: HeaderMap) -> ApiResult<Response> {
    let principal = authenticate(&state, &headers, "notification.list").await?;
    if !principal.is_platform_admin() {
        let message = "the notification record needs platform admin".to_owned();
        return Err(state.control.deny(&principal, "notification.list", None, None, message).await.into());
    }
    let rows = state.notifier.recent(1000).await.map_err(control::ControlError::from)?;
    let rows: Vec<serde_json::Value> = rows
        .into_iter()
        .map(|row| {
            serde_json::json!({
                "time": row.time, "channel": row.channel, "target": row.target, "key": row.key,
                "subject": row.subject, "status": row.status, "attempts": row.attempts, "error": row.error,
            })
        })
        .collect();
    Ok(Json(rows).into_response())
}

/// `GET /metrics`: Prometheus text exposition, for a platform-wide viewer's token.
async fn metrics(State(state): State<Arc<ApiState>>, headers: HeaderMap) -> ApiResult<Response> {
    let principal = authenticate(&state, &headers, "metrics.read").await?;
    let text = state.control.metrics_text(&principal).await?;
    Ok(([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text).into_response())
}

async fn jwks(State(state): State<Arc<ApiState>>) -> Response {
    Json(state.control.tokens.jwks()).into_response()
}

async fn discovery(State(state): State<Arc<ApiState>>) -> Response {
    Json(state.control.tokens.discovery()).into_response()
}

fn parse_json<T: serde::de::DeserializeOwned>(body: &Bytes, expected: &str) -> ApiResult<T> {
    serde_json::from_slice(body).map_err(|error| {
        failure(StatusCode::BAD_REQUEST, "invalid_request", format!("expected {expected}: {error}"), vec![])
    })
}

async fn not_found() -> ApiFailure {
    failure(
        StatusCode::NOT_FOUND,
        "not_found",
        "nothing here: apps are served at /apps/<namespace>/<app>/ and the control API under /api/v1",
        vec![],
    )
}

async fn policy_status(State(state): State<Arc<ApiState>>, headers: HeaderMap) -> ApiResult<Response> {
    authenticate(&state, &headers, "policy.status").await?;
    Ok(Json(state.control.policy_status()).into_response())
}

async fn reload_policies(State(state): State<Arc<ApiState>>, headers: HeaderMap) -> ApiResult<Response> {
    let principal = authenticate(&state, &headers, "policy.reload").await?;
    Ok(Json(state.control.reload_policies(&principal).await?).into_response())
}

/// `?namespace=&app=&policy=&state=`: filters of the governance listings.
#[derive(Deserialize)]
struct GovernanceQuery {
    namespace: Option<String>,
    app: Option<String>,
    policy: Option<String>,
    state: Option<String>,
}

async fn list_violations(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    Query(query): Query<GovernanceQuery>,
) -> ApiResult<Response> {
    let principal = authenticate(&state, &headers, "policy.violations").await?;
    let violations = state
        .control
        .list_violations(&principal, query.namespace.as_deref(), query.app.as_deref(), query.policy.as_deref())
        .await?;
    Ok(Json(violations).into_response())
}

async fn list_exceptions(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    Query(query): Query<GovernanceQuery>,
) -> ApiResult<Response> {
    let principal = authenticate(&state, &headers, "policy.exception.list").await?;
    Ok(Json(state.control.list_exceptions(&principal, query.namespace.as_deref()).await?).into_response())
}

async fn add_exception(State(state): State<Arc<ApiState>>, headers: HeaderMap, body: Bytes) -> ApiResult<Response> {
    let principal = authenticate(&state, &headers, "policy.exception.add").await?;
    let request: api_types::policy::NewPolicyException = parse_json(
        &body,
        r#"{"namespace": "growth", "app": "lunch", "policy": "egress", "reason": "...", "expires_at": "2026-12-31T00:00:00Z"}"#,
    )?;
    let exception = state.control.add_exception(&principal, request).await?;
    Ok((StatusCode::CREATED, Json(exception)).into_response())
}

async fn remove_exception(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> ApiResult<Response> {
    let principal = authenticate(&state, &headers, "policy.exception.remove").await?;
    Ok(Json(state.control.remove_exception(&principal, id).await?).into_response())
}

async fn list_approvals(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    Query(query): Query<GovernanceQuery>,
) -> ApiResult<Response> {
    let principal = authenticate(&state, &headers, "approval.list").await?;
    let approvals =
        state.control.list_approvals(&principal, query.namespace.as_deref(), query.state.as_deref()).await?;
    Ok(Json(approvals).into_response())
}

async fn get_approval(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> ApiResult<Response> {
    let principal = authenticate(&state, &headers, "approval.show").await?;
    Ok(Json(state.control.get_approval(&principal, id).await?).into_response())
}

async fn vote(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    Path((id, decision)): Path<(i64, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let approve = match decision.as_str() {
        "approve" => true,
        "deny" => false,
        _ => return Err(failure(StatusCode::NOT_FOUND, "not_found", "use /approve or /deny", vec![])),
    };
    let principal = authenticate(&state, &headers, "approval.vote").await?;
    let request: api_types::policy::ApprovalVoteRequest = parse_json(&body, r#"{"reason": "why"}"#)?;
    Ok(Json(state.control.vote(&principal, id, approve, &request.reason).await?).into_response())
}
