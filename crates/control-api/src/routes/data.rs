//! Apps' stored data: its usage, and exporting and importing a key-value namespace as JSON
//! lines (the format archives will keep).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use control::Action;

use super::apps::app_key;
use crate::{ApiResult, ApiState, Caller, failure, internal};

/// `GET /api/v1/apps/{ns}/{name}/data`: what the app stores.
pub(crate) async fn usage(
    State(state): State<Arc<ApiState>>,
    Caller(principal): Caller,
    Path((namespace, name)): Path<(String, String)>,
) -> ApiResult<Response> {
    let app = app_key(namespace, name);
    state.control.authorize_app_data(&principal, &app, Action::DataUsage).await?;
    let kv = state.kv.usage(&app).await.map_err(|error| internal(&error.to_string()))?;
    Ok(Json(serde_json::json!({ "kv": { "keys": kv.keys, "bytes": kv.bytes } })).into_response())
}

/// `GET /api/v1/apps/{ns}/{name}/data/kv`: every entry as JSON lines.
pub(crate) async fn export_kv(
    State(state): State<Arc<ApiState>>,
    Caller(principal): Caller,
    Path((namespace, name)): Path<(String, String)>,
) -> ApiResult<Response> {
    let app = app_key(namespace, name);
    state.control.authorize_app_data(&principal, &app, Action::DataExport).await?;
    let lines = state.kv.export(&app).await.map_err(|error| internal(&error.to_string()))?;
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], lines).into_response())
}

/// `PUT /api/v1/apps/{ns}/{name}/data/kv` with JSON lines: writes every entry.
pub(crate) async fn import_kv(
    State(state): State<Arc<ApiState>>,
    Caller(principal): Caller,
    Path((namespace, name)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let app = app_key(namespace, name);
    state.control.authorize_app_data(&principal, &app, Action::DataImport).await?;
    let Ok(lines) = std::str::from_utf8(&body) else {
        return Err(failure(StatusCode::BAD_REQUEST, "invalid_data", "the export is not UTF-8 text", vec![]));
    };
    match state.kv.import(&app, lines).await {
        Ok(imported) => Ok(Json(serde_json::json!({ "imported": imported })).into_response()),
        Err(runtime::kv::KvError::Invalid(message)) => {
            Err(failure(StatusCode::BAD_REQUEST, "invalid_data", message, vec![]))
        }
        Err(runtime::kv::KvError::Failed(message)) => {
            Err(failure(StatusCode::UNPROCESSABLE_ENTITY, "invalid_data", message, vec![]))
        }
    }
}
