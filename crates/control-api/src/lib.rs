//! The control plane's HTTP routes (`/api/v1/...`), and the one place where control errors
//! become status codes. Bodies are the `api-types` shapes the CLI shares.

use std::sync::Arc;

use api_types::{ApiError, CreateNamespaceRequest, RollbackRequest};
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use control::{ControlError, ControlPlane, Principal};
use deployment::AppKey;
use futures::StreamExt;
use serde::Deserialize;

/// What the routes need: the control plane and the credential that proves an admin.
pub struct ApiState {
    pub control: Arc<ControlPlane>,
    /// The admin token of the placeholder auth, until the identity work lands.
    pub admin_token: String,
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
            ControlError::Forbidden => failure(StatusCode::FORBIDDEN, "forbidden", message, vec![]),
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

/// Every route but the fallback requires the admin token.
async fn authenticate(state: &ApiState, headers: &HeaderMap, action: &str) -> ApiResult<Principal> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim);
    match presented {
        Some(token) if constant_time_eq(token.as_bytes(), state.admin_token.as_bytes()) => {
            Ok(Principal { subject: "admin".to_owned(), is_admin: true })
        }
        presented => {
            let detail = match presented {
                Some(_) => "wrong token",
                None => "no token",
            };
            state.control.audit_denial("anonymous", action, detail.to_owned()).await;
            Err(failure(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "this call needs the admin token: pass --token or set TERRARIUM_TOKEN (the server printed it on first start and keeps it in <data-dir>/admin-token)",
                vec![],
            ))
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
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
    authenticate(&state, &headers, "app.list").await?;
    Ok(Json(state.control.list_apps(query.namespace.as_deref()).await?).into_response())
}

async fn get_app(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    Path((namespace, name)): Path<(String, String)>,
) -> ApiResult<Response> {
    authenticate(&state, &headers, "app.get").await?;
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
    authenticate(&state, &headers, "app.logs").await?;
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
    authenticate(&state, &headers, "namespace.list").await?;
    Ok(Json(state.control.list_namespaces().await?).into_response())
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
    authenticate(&state, &headers, "audit.list").await?;
    let limit = query.limit.clamp(1, 10_000) as u32;
    Ok(Json(state.control.list_audit(query.namespace, query.app, limit).await?).into_response())
}

async fn not_found() -> ApiFailure {
    failure(
        StatusCode::NOT_FOUND,
        "not_found",
        "nothing here: apps are served at /apps/<namespace>/<app>/ and the control API under /api/v1",
        vec![],
    )
}
