//! Usage, chargeback, notifications and the Prometheus metrics.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use control::ControlError;
use serde::Deserialize;

use crate::{ApiResult, ApiState, Caller, failure};
use control::Action;

#[derive(Deserialize)]
pub(crate) struct UsageQuery {
    namespace: Option<String>,
    app: Option<String>,
    owner: Option<String>,
    month: Option<String>,
    #[serde(default = "default_usage_by")]
    by: String,
}

pub(crate) fn default_usage_by() -> String {
    "app".to_owned()
}

pub(crate) async fn usage(
    State(state): State<Arc<ApiState>>,
    Caller(principal): Caller,
    Query(query): Query<UsageQuery>,
) -> ApiResult<Response> {
    let entries = state
        .control
        .usage(&principal, query.namespace, query.app, query.owner.as_deref(), query.month.as_deref(), &query.by)
        .await?;
    Ok(Json(entries).into_response())
}

#[derive(Deserialize)]
pub(crate) struct ChargebackQuery {
    month: Option<String>,
    #[serde(default = "default_chargeback_by")]
    by: String,
}

pub(crate) fn default_chargeback_by() -> String {
    "namespace".to_owned()
}

/// Cost per namespace or owner for a month: platform-wide viewers (finance) only.
pub(crate) async fn chargeback(
    State(state): State<Arc<ApiState>>,
    Caller(principal): Caller,
    Query(query): Query<ChargebackQuery>,
) -> ApiResult<Response> {
    state.control.authorize_platform_read(&principal, Action::ChargebackRead, "chargeback").await?;
    let by_owner = match query.by.as_str() {
        "namespace" => false,
        "owner" => true,
        other => {
            let message = format!("by={other:?}: use namespace or owner");
            return Err(failure(StatusCode::BAD_REQUEST, "invalid_request", message, vec![]));
        }
    };
    let rows = state.budgets.chargeback(query.month.as_deref(), by_owner).await.map_err(ControlError::from)?;
    state.control.audit_read(&principal, Action::ChargebackRead, None).await;
    Ok(Json(rows).into_response())
}

/// What the notifier sent to whom: platform admins only.
pub(crate) async fn notifications(
    State(state): State<Arc<ApiState>>,
    Caller(principal): Caller,
) -> ApiResult<Response> {
    state.control.authorize_platform_admin(&principal, Action::NotificationList, "the notification record").await?;
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
pub(crate) async fn metrics(State(state): State<Arc<ApiState>>, Caller(principal): Caller) -> ApiResult<Response> {
    let text = state.control.metrics_text(&principal).await?;
    Ok(([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text).into_response())
}
