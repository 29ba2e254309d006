//! Apps' stored data: its usage, exporting and importing a key-value namespace as JSON lines
//! and a SQL database as a SQLite database file (the formats archives will keep).

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
    let sql = state.sql.usage(&app).await.map_err(sql_failure)?;
    Ok(Json(serde_json::json!({ "kv": { "keys": kv.keys, "bytes": kv.bytes }, "sql": sql })).into_response())
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

/// `GET /api/v1/apps/{ns}/{name}/data/sql`: the app's tables, views, indexes and triggers with
/// their rows, as a SQLite database file.
pub(crate) async fn export_sql(
    State(state): State<Arc<ApiState>>,
    Caller(principal): Caller,
    Path((namespace, name)): Path<(String, String)>,
) -> ApiResult<Response> {
    let app = app_key(namespace, name);
    state.control.authorize_app_data(&principal, &app, Action::DataExport).await?;
    let file = state.sql.export(&app).await.map_err(sql_failure)?;
    Ok(([(header::CONTENT_TYPE, "application/vnd.sqlite3")], file).into_response())
}

/// `PUT /api/v1/apps/{ns}/{name}/data/sql` with a SQLite database file: copies its objects and
/// rows into the app's database.
pub(crate) async fn import_sql(
    State(state): State<Arc<ApiState>>,
    Caller(principal): Caller,
    Path((namespace, name)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let app = app_key(namespace, name);
    state.control.authorize_app_data(&principal, &app, Action::DataImport).await?;
    let tables = state.sql.import(&app, body.to_vec()).await.map_err(sql_failure)?;
    Ok(Json(serde_json::json!({ "tables": tables })).into_response())
}

fn sql_failure(error: capability_sql::SqlAdminError) -> crate::ApiFailure {
    match error {
        capability_sql::SqlAdminError::Invalid(message) => {
            failure(StatusCode::UNPROCESSABLE_ENTITY, "invalid_data", message, vec![])
        }
        capability_sql::SqlAdminError::Storage(detail) => internal(&detail),
    }
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct PurgeRequest {
    /// Only entries whose path starts with this (`/menu/`).
    prefix: Option<String>,
    /// Only entries whose response carried this `Cache-Tag`.
    tag: Option<String>,
}

/// `POST /api/v1/apps/{ns}/{name}/cache/purge` with `{ "prefix"?, "tag"? }`: forgets the app's
/// cached responses and Cache API entries (all of them, or those under a path or with a tag).
pub(crate) async fn purge_cache(
    State(state): State<Arc<ApiState>>,
    Caller(principal): Caller,
    Path((namespace, name)): Path<(String, String)>,
    Json(request): Json<PurgeRequest>,
) -> ApiResult<Response> {
    let app = app_key(namespace, name);
    if let Some(prefix) = &request.prefix
        && !prefix.starts_with('/')
    {
        let message = format!("prefix {prefix:?} is not a path; give one that starts with /, like /menu/");
        return Err(failure(StatusCode::BAD_REQUEST, "invalid_request", message, vec![]));
    }
    state.control.authorize_app_data(&principal, &app, Action::CachePurge).await?;
    let Some(cache) = &state.cache else {
        return Ok(Json(
            serde_json::json!({ "purged": false, "reason": "this server caches nothing ([cache] enabled = false)" }),
        )
        .into_response());
    };
    match (&request.prefix, &request.tag) {
        (None, None) => cache.purge_app(&app),
        (prefix, tag) => cache.purge(&app, prefix.as_deref(), tag.as_deref()),
    }
    Ok(Json(serde_json::json!({ "purged": true, "prefix": request.prefix, "tag": request.tag })).into_response())
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MigrateRequest {
    isolation: String,
}

/// `POST /api/v1/apps/{ns}/{name}/data/sql/migrate` with `{ "isolation": TIER }`: moves the
/// app's SQL data to another isolation tier.
pub(crate) async fn migrate_sql(
    State(state): State<Arc<ApiState>>,
    Caller(principal): Caller,
    Path((namespace, name)): Path<(String, String)>,
    Json(request): Json<MigrateRequest>,
) -> ApiResult<Response> {
    let app = app_key(namespace, name);
    let target = match request.isolation.as_str() {
        "isolated" => deployment::SqlTier::Isolated,
        "schema" => deployment::SqlTier::Schema,
        "shared" => deployment::SqlTier::Shared,
        other => {
            let message = format!("isolation {other:?} is not a tier; give isolated, schema or shared");
            return Err(failure(StatusCode::BAD_REQUEST, "invalid_request", message, vec![]));
        }
    };
    state.control.authorize_app_data(&principal, &app, Action::DataMigrate).await?;
    let tables = state.sql.migrate(&app, target).await.map_err(sql_failure)?;
    Ok(Json(serde_json::json!({ "isolation": target.as_str(), "tables": tables })).into_response())
}
