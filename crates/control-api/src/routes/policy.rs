//! Policies, violations, exceptions and approvals.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::{ApiResult, ApiState, Caller, failure, parse_json};

pub(crate) async fn policy_status(State(state): State<Arc<ApiState>>, _caller: Caller) -> ApiResult<Response> {
    Ok(Json(state.control.policy_status()).into_response())
}

pub(crate) async fn reload_policies(
    State(state): State<Arc<ApiState>>,
    Caller(principal): Caller,
) -> ApiResult<Response> {
    Ok(Json(state.control.reload_policies(&principal).await?).into_response())
}

/// `?namespace=&app=&policy=&state=`: filters of the governance listings.
#[derive(Deserialize)]
pub(crate) struct GovernanceQuery {
    namespace: Option<String>,
    app: Option<String>,
    policy: Option<String>,
    state: Option<String>,
}

pub(crate) async fn list_violations(
    State(state): State<Arc<ApiState>>,
    Caller(principal): Caller,
    Query(query): Query<GovernanceQuery>,
) -> ApiResult<Response> {
    let violations = state
        .control
        .list_violations(&principal, query.namespace.as_deref(), query.app.as_deref(), query.policy.as_deref())
        .await?;
    Ok(Json(violations).into_response())
}

pub(crate) async fn list_exceptions(
    State(state): State<Arc<ApiState>>,
    Caller(principal): Caller,
    Query(query): Query<GovernanceQuery>,
) -> ApiResult<Response> {
    Ok(Json(state.control.list_exceptions(&principal, query.namespace.as_deref()).await?).into_response())
}

pub(crate) async fn add_exception(
    State(state): State<Arc<ApiState>>,
    Caller(principal): Caller,
    body: Bytes,
) -> ApiResult<Response> {
    let request: api_types::policy::NewPolicyException = parse_json(
        &body,
        r#"{"namespace": "growth", "app": "lunch", "policy": "egress", "reason": "...", "expires_at": "2026-12-31T00:00:00Z"}"#,
    )?;
    let exception = state.control.add_exception(&principal, request).await?;
    Ok((StatusCode::CREATED, Json(exception)).into_response())
}

pub(crate) async fn remove_exception(
    State(state): State<Arc<ApiState>>,
    Caller(principal): Caller,
    Path(id): Path<i64>,
) -> ApiResult<Response> {
    Ok(Json(state.control.remove_exception(&principal, id).await?).into_response())
}

pub(crate) async fn list_approvals(
    State(state): State<Arc<ApiState>>,
    Caller(principal): Caller,
    Query(query): Query<GovernanceQuery>,
) -> ApiResult<Response> {
    let approvals =
        state.control.list_approvals(&principal, query.namespace.as_deref(), query.state.as_deref()).await?;
    Ok(Json(approvals).into_response())
}

pub(crate) async fn get_approval(
    State(state): State<Arc<ApiState>>,
    Caller(principal): Caller,
    Path(id): Path<i64>,
) -> ApiResult<Response> {
    Ok(Json(state.control.get_approval(&principal, id).await?).into_response())
}

pub(crate) async fn vote(
    State(state): State<Arc<ApiState>>,
    Caller(principal): Caller,
    Path((id, decision)): Path<(i64, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let approve = match decision.as_str() {
        "approve" => true,
        "deny" => false,
        _ => return Err(failure(StatusCode::NOT_FOUND, "not_found", "use /approve or /deny", vec![])),
    };
    let request: api_types::policy::ApprovalVoteRequest = parse_json(&body, r#"{"reason": "why"}"#)?;
    Ok(Json(state.control.vote(&principal, id, approve, &request.reason).await?).into_response())
}
