//! Apps' secrets, the key-encryption key, and the egress log.

use std::sync::Arc;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::Deserialize;

use super::apps::app_key;
use crate::{ApiFailure, ApiResult, ApiState, Caller, failure};

pub(crate) async fn list_app_secrets(
    State(state): State<Arc<ApiState>>,
    Caller(principal): Caller,
    Path((namespace, name)): Path<(String, String)>,
) -> ApiResult<Response> {
    Ok(Json(state.secrets.list_secrets(&principal, &namespace, Some(&name)).await?).into_response())
}

#[derive(Deserialize)]
pub(crate) struct SecretsQuery {
    namespace: String,
    app: Option<String>,
}

pub(crate) async fn list_secrets(
    State(state): State<Arc<ApiState>>,
    Caller(principal): Caller,
    query: Result<Query<SecretsQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Response> {
    let Ok(Query(query)) = query else {
        return Err(failure(StatusCode::BAD_REQUEST, "invalid_request", "pass ?namespace=<namespace>", vec![]));
    };
    Ok(Json(state.secrets.list_secrets(&principal, &query.namespace, query.app.as_deref()).await?).into_response())
}

/// `PUT .../secrets/{secret}` with `{"value": "...", "expires_at": "..."}`. A malformed body is
/// refused without repeating any of it: it may hold the secret.
pub(crate) async fn set_secret(
    State(state): State<Arc<ApiState>>,
    Caller(principal): Caller,
    Path((namespace, name, secret)): Path<(String, String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let request: api_types::SetSecret = serde_json::from_slice(&body).map_err(|_| {
        failure(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "expected {\"value\": \"...\"} with an optional \"expires_at\" (RFC 3339); the value must be a JSON string",
            vec![],
        )
    })?;
    let set = state.secrets.set_secret(&principal, &app_key(namespace, name), &secret, request).await?;
    Ok((StatusCode::CREATED, Json(set)).into_response())
}

pub(crate) async fn remove_secret(
    State(state): State<Arc<ApiState>>,
    Caller(principal): Caller,
    Path((namespace, name, secret)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let reloaded = state.secrets.remove_secret(&principal, &app_key(namespace, name), &secret).await?;
    Ok(Json(serde_json::json!({ "removed": secret, "reloaded": reloaded })).into_response())
}

pub(crate) async fn secret_versions(
    State(state): State<Arc<ApiState>>,
    Caller(principal): Caller,
    Path((namespace, name, secret)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    Ok(Json(state.secrets.secret_versions(&principal, &app_key(namespace, name), &secret).await?).into_response())
}

/// `POST /api/v1/secrets/rotate-kek`: an NDJSON stream of the rotation's progress. The rotation
/// runs to its end even if the client leaves.
pub(crate) async fn rotate_kek(State(state): State<Arc<ApiState>>, Caller(principal): Caller) -> ApiResult<Response> {
    // Refused before the stream starts, so a refusal is a plain 403.
    state.secrets.authorize_rotation(&principal).await?;
    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel::<serde_json::Value>();
    let admin = state.secrets.clone();
    tokio::spawn(async move {
        let progress_sender = sender.clone();
        let mut progress = move |event: secrets::RotationEvent| {
            let _ = progress_sender.send(serde_json::to_value(event).unwrap_or_default());
        };
        if let Err(error) = admin.rotate_kek(&principal, false, &mut progress).await {
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
pub(crate) struct EgressQuery {
    namespace: String,
    app: Option<String>,
    #[serde(default)]
    denied: bool,
    #[serde(default = "default_egress_limit")]
    limit: u32,
}

pub(crate) fn default_egress_limit() -> u32 {
    50
}

pub(crate) async fn list_egress(
    State(state): State<Arc<ApiState>>,
    Caller(principal): Caller,
    query: Result<Query<EgressQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Response> {
    let Ok(Query(query)) = query else {
        return Err(failure(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "pass ?namespace=<namespace> and optionally app=<name>, denied=true, limit=<n>",
            vec![],
        ));
    };
    let filter = metering::store::EgressFilter {
        namespace: Some(query.namespace),
        app: query.app,
        denied_only: query.denied,
        limit: query.limit.clamp(1, 10_000),
    };
    Ok(Json(state.control.list_egress(&principal, filter).await?).into_response())
}
