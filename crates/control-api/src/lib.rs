//! The control plane's HTTP routes (`/api/v1/...`), and the one place where control errors
//! become status codes. Bodies are the `api-types` shapes the CLI shares.

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
        .route("/auth/login", post(login))
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
    let status = if response.changed { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(response)).into_response())
}

#[derive(Deserialize)]
struct ListAppsQuery {
    namespace: Option<String>,
}

async fn list_apps(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    Query(query): Query<ListAppsQuery>,
) -> ApiResult<Response> {
    let principal = authenticate(&state, &headers, "app.list").await?;
    if let Some(namespace) = &query.namespace {
        state.control.authorize_read(&principal, namespace, "app.list").await?;
    }
    let mut apps = state.control.list_apps(query.namespace.as_deref()).await?;
    // Only the namespaces the caller may read.
    apps.retain(|app| principal.has_role(&app.namespace, Role::Viewer));
    Ok(Json(apps).into_response())
}

async fn get_app(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    Path((namespace, name)): Path<(String, String)>,
) -> ApiResult<Response> {
    let principal = authenticate(&state, &headers, "app.get").await?;
    state.control.authorize_read(&principal, &namespace, "app.get").await?;
    Ok(Json(state.control.get_app(&app_key(namespace, name)).await?).into_response())
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
        false => serde_json::from_slice(&body).map_err(|error| {
            failure(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                format!("the rollback request is not valid JSON: {error}"),
                vec![],
            )
        })?,
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
    Ok(Json(namespaces).into_response())
}

async fn create_namespace(State(state): State<Arc<ApiState>>, headers: HeaderMap, body: Bytes) -> ApiResult<Response> {
    let principal = authenticate(&state, &headers, "namespace.create").await?;
    let request: CreateNamespaceRequest = serde_json::from_slice(&body).map_err(|error| {
        failure(StatusCode::BAD_REQUEST, "invalid_request", format!("expected {{\"name\": \"...\"}}: {error}"), vec![])
    })?;
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
    Ok(Json(state.control.list_audit(query.namespace, query.app, limit).await?).into_response())
}

async fn login(State(state): State<Arc<ApiState>>, body: Bytes) -> ApiResult<Response> {
    let request: LoginRequest = parse_json(&body, "{\"username\": \"...\", \"password\": \"...\"}")?;
    Ok(Json(state.control.login(&request.username, &request.password).await?).into_response())
}

async fn whoami(State(state): State<Arc<ApiState>>, headers: HeaderMap) -> ApiResult<Response> {
    let principal = authenticate(&state, &headers, "auth.whoami").await?;
    let roles = principal.roles.iter().map(|(namespace, role)| format!("{namespace}:{role}")).collect();
    Ok(Json(WhoAmI { user: principal.subject, groups: principal.groups, roles }).into_response())
}

async fn list_users(State(state): State<Arc<ApiState>>, headers: HeaderMap) -> ApiResult<Response> {
    let principal = authenticate(&state, &headers, "user.list").await?;
    Ok(Json(state.control.list_users(&principal).await?).into_response())
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

#[derive(Deserialize)]
struct RolesQuery {
    namespace: Option<String>,
}

async fn list_roles(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    Query(query): Query<RolesQuery>,
) -> ApiResult<Response> {
    let principal = authenticate(&state, &headers, "role.list").await?;
    Ok(Json(state.control.list_roles(&principal, query.namespace.as_deref()).await?).into_response())
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
