//! Apps, namespaces, deploys, logs and the audit log.

use std::sync::Arc;

use api_types::{ArchiveRequest, CreateNamespaceRequest, ExtendRequest, RollbackRequest};
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use deployment::AppKey;
use futures::StreamExt;
use serde::Deserialize;

use crate::{ApiResult, ApiState, Caller, parse_json};

pub(crate) fn app_key(namespace: String, name: String) -> AppKey {
    AppKey::new(namespace, name)
}

pub(crate) async fn deploy(
    State(state): State<Arc<ApiState>>,
    Caller(principal): Caller,
    body: Bytes,
) -> ApiResult<Response> {
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
pub(crate) struct NamespaceQuery {
    pub(crate) namespace: Option<String>,
}

/// `?namespace=…&expiring_within_days=N`.
#[derive(Deserialize)]
pub(crate) struct ListAppsQuery {
    namespace: Option<String>,
    expiring_within_days: Option<u32>,
}

pub(crate) async fn list_apps(
    State(state): State<Arc<ApiState>>,
    Caller(principal): Caller,
    Query(query): Query<ListAppsQuery>,
) -> ApiResult<Response> {
    let mut apps = state.control.visible_apps(&principal, query.namespace.as_deref()).await?;
    if let Some(days) = query.expiring_within_days {
        apps = state.control.expiring_within(apps, days);
    }
    Ok(Json(apps).into_response())
}

pub(crate) async fn archive(
    State(state): State<Arc<ApiState>>,
    Caller(principal): Caller,
    Path((namespace, name)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let request: ArchiveRequest = match body.is_empty() {
        true => ArchiveRequest::default(),
        false => parse_json(&body, "{\"reason\": \"...\"} or an empty body")?,
    };
    let reason = match request.reason.trim() {
        "" => "archived by hand",
        reason => reason,
    };
    Ok(Json(state.control.archive_app(&principal, &app_key(namespace, name), reason).await?).into_response())
}

pub(crate) async fn restore(
    State(state): State<Arc<ApiState>>,
    Caller(principal): Caller,
    Path((namespace, name)): Path<(String, String)>,
) -> ApiResult<Response> {
    Ok(Json(state.control.restore_app(&principal, &app_key(namespace, name)).await?).into_response())
}

pub(crate) async fn extend(
    State(state): State<Arc<ApiState>>,
    Caller(principal): Caller,
    Path((namespace, name)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let request: ExtendRequest = parse_json(&body, "{\"days\": 30, \"reason\": \"...\"}")?;
    Ok(Json(state.control.extend_app(&principal, &app_key(namespace, name), &request).await?).into_response())
}

pub(crate) async fn get_app(
    State(state): State<Arc<ApiState>>,
    Caller(principal): Caller,
    Path((namespace, name)): Path<(String, String)>,
) -> ApiResult<Response> {
    Ok(Json(state.control.app_for(&principal, &app_key(namespace, name)).await?).into_response())
}

pub(crate) async fn delete_app(
    State(state): State<Arc<ApiState>>,
    Caller(principal): Caller,
    Path((namespace, name)): Path<(String, String)>,
) -> ApiResult<Response> {
    state.control.delete(&principal, &app_key(namespace, name)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(crate) async fn rollback(
    State(state): State<Arc<ApiState>>,
    Caller(principal): Caller,
    Path((namespace, name)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let request: RollbackRequest = match body.is_empty() {
        true => RollbackRequest::default(),
        false => parse_json(&body, "{\"revision\": 3} or an empty body")?,
    };
    Ok(Json(state.control.rollback(&principal, &app_key(namespace, name), request.revision).await?).into_response())
}

#[derive(Deserialize)]
pub(crate) struct LogsQuery {
    #[serde(default = "default_tail")]
    tail: usize,
    #[serde(default)]
    follow: bool,
}

pub(crate) fn default_tail() -> usize {
    100
}

/// An NDJSON stream: the recent lines, then with `follow` every new line until the client leaves.
pub(crate) async fn logs(
    State(state): State<Arc<ApiState>>,
    Caller(principal): Caller,
    Path((namespace, name)): Path<(String, String)>,
    Query(query): Query<LogsQuery>,
) -> ApiResult<Response> {
    let app = app_key(namespace, name);
    let (recent, live) = state.control.app_logs(&principal, &app, query.tail, query.follow).await?;
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

pub(crate) async fn list_namespaces(
    State(state): State<Arc<ApiState>>,
    Caller(principal): Caller,
) -> ApiResult<Response> {
    Ok(Json(state.control.visible_namespaces(&principal).await?).into_response())
}

pub(crate) async fn create_namespace(
    State(state): State<Arc<ApiState>>,
    Caller(principal): Caller,
    body: Bytes,
) -> ApiResult<Response> {
    let request: CreateNamespaceRequest = parse_json(&body, "{\"name\": \"...\"}")?;
    let created = state.control.create_namespace(&principal, &request.name).await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

#[derive(Deserialize)]
pub(crate) struct AuditQuery {
    namespace: Option<String>,
    app: Option<String>,
    /// Who acted.
    actor: Option<String>,
    /// An action or its area (`app.`).
    action: Option<String>,
    /// A span back from now (`24h`) or an RFC 3339 time.
    since: Option<String>,
    /// The next page: events older than this id.
    before: Option<i64>,
    #[serde(default = "default_tail")]
    limit: usize,
}

pub(crate) async fn list_audit(
    State(state): State<Arc<ApiState>>,
    Caller(principal): Caller,
    Query(query): Query<AuditQuery>,
) -> ApiResult<Response> {
    // The whole log for platform admins; one namespace's events for its operators.
    let filter = control::store::AuditFilter {
        namespace: query.namespace,
        app: query.app,
        actor: query.actor,
        action_prefix: query.action,
        since: query.since,
        before: query.before,
        limit: query.limit.clamp(1, 10_000) as u32,
    };
    Ok(Json(state.control.audit_log(&principal, filter).await?).into_response())
}
