//! The server's background tasks and its clock.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use control::ControlError;
use serde::Deserialize;

use crate::{ApiResult, ApiState, Caller, failure};
use control::Action;

pub(crate) async fn list_tasks(State(state): State<Arc<ApiState>>, Caller(principal): Caller) -> ApiResult<Response> {
    if !principal.is_platform_admin() {
        let message = "only a platform admin may list background tasks".to_owned();
        return Err(state.control.deny(&principal, Action::TasksList, None, None, message).await.into());
    }
    Ok(Json(state.tasks.list()).into_response())
}

/// Runs a background task now and answers when it is over: how long it took, what failed.
pub(crate) async fn run_task(
    State(state): State<Arc<ApiState>>,
    Caller(principal): Caller,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    if !principal.is_platform_admin() {
        let message = "only a platform admin may run background tasks".to_owned();
        return Err(state.control.deny(&principal, Action::TasksRun, None, None, message).await.into());
    }
    let run = state.tasks.run(&name).await.map_err(|unknown| ControlError::NotFound(unknown.to_string()))?;
    let detail = match &run.error {
        None => format!("ran {name}"),
        Some(error) => format!("ran {name}, which failed: {error}"),
    };
    state.control.platform_admin_action(&principal, Action::TasksRun, "run background tasks", detail).await?;
    Ok(Json(run).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AdvanceClock {
    /// Seconds to move the clock forward by.
    advance_secs: u64,
}

pub(crate) fn clock_body(clock: &background::Clock) -> serde_json::Value {
    serde_json::json!({ "now": clock.now_rfc3339(), "offset_secs": clock.offset_secs(), "adjustable": clock.is_adjustable() })
}

pub(crate) async fn get_clock(State(state): State<Arc<ApiState>>, _caller: Caller) -> ApiResult<Response> {
    Ok(Json(clock_body(&state.clock)).into_response())
}

/// Moves an adjustable clock forward (`[server] adjustable_clock = true`; tests and drills).
pub(crate) async fn advance_clock(
    State(state): State<Arc<ApiState>>,
    Caller(principal): Caller,
    body: Result<Json<AdvanceClock>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Response> {
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
        return Err(state.control.deny(&principal, Action::ClockAdvance, None, None, message).await.into());
    }
    state
        .clock
        .advance(std::time::Duration::from_secs(body.advance_secs))
        .map_err(|refused| ControlError::Conflict(refused.to_string()))?;
    let detail = format!("moved the clock forward by {} s", body.advance_secs);
    state.control.platform_admin_action(&principal, Action::ClockAdvance, "move the clock", detail).await?;
    Ok(Json(clock_body(&state.clock)).into_response())
}
