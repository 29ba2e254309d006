//! Who one is, local accounts, role bindings and the signing key.

use std::sync::Arc;

use accounts::store::UserChange;
use api_types::{CreateUserRequest, CreateUserResponse, RoleBindingRequest, UpdateUserRequest, WhoAmI};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use control::Role;

use super::apps::NamespaceQuery;
use crate::{ApiResult, ApiState, Caller, failure, parse_json};
use control::Action;

pub(crate) async fn whoami(State(state): State<Arc<ApiState>>, Caller(principal): Caller) -> ApiResult<Response> {
    let roles = principal.roles.iter().map(|(namespace, role)| format!("{namespace}:{role}")).collect();
    state.accounts.audit_read(&principal, Action::AuthWhoami, None).await;
    Ok(Json(WhoAmI { user: principal.subject, groups: principal.groups, roles }).into_response())
}

pub(crate) async fn list_users(State(state): State<Arc<ApiState>>, Caller(principal): Caller) -> ApiResult<Response> {
    let users = state.accounts.list_users(&principal).await?;
    state.accounts.audit_read(&principal, Action::UserList, None).await;
    Ok(Json(users).into_response())
}

pub(crate) async fn create_user(
    State(state): State<Arc<ApiState>>,
    Caller(principal): Caller,
    body: Bytes,
) -> ApiResult<Response> {
    let request: CreateUserRequest = parse_json(&body, "{\"name\": \"...\", \"groups\": [...]}")?;
    let (user, password) =
        state.accounts.create_user(&principal, &request.name, request.groups, request.email, None).await?;
    let password = password.expect("a generated password is returned");
    Ok((StatusCode::CREATED, Json(CreateUserResponse { user, password })).into_response())
}

pub(crate) async fn update_user(
    State(state): State<Arc<ApiState>>,
    Caller(principal): Caller,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let request: UpdateUserRequest = parse_json(&body, "{\"disabled\": true} or {\"groups\": [...]}")?;
    let change = UserChange { disabled: request.disabled, groups: request.groups, password_hash: None };
    Ok(Json(state.accounts.update_user(&principal, &name, change).await?).into_response())
}

pub(crate) async fn list_roles(
    State(state): State<Arc<ApiState>>,
    Caller(principal): Caller,
    Query(query): Query<NamespaceQuery>,
) -> ApiResult<Response> {
    let roles = state.accounts.list_roles(&principal, query.namespace.as_deref()).await?;
    state.accounts.audit_read(&principal, Action::RoleList, query.namespace.as_deref()).await;
    Ok(Json(roles).into_response())
}

pub(crate) fn parse_binding(body: &Bytes) -> ApiResult<(RoleBindingRequest, Role)> {
    let request: RoleBindingRequest =
        parse_json(body, "{\"namespace\": \"...\", \"subject\": \"user:...\", \"role\": \"builder\"}")?;
    let role = request
        .role
        .parse::<Role>()
        .map_err(|message| failure(StatusCode::BAD_REQUEST, "invalid_role", message, vec![]))?;
    Ok((request, role))
}

pub(crate) async fn grant_role(
    State(state): State<Arc<ApiState>>,
    Caller(principal): Caller,
    body: Bytes,
) -> ApiResult<Response> {
    let (request, role) = parse_binding(&body)?;
    let binding = state.accounts.grant_role(&principal, &request.namespace, &request.subject, role).await?;
    Ok((StatusCode::CREATED, Json(binding)).into_response())
}

pub(crate) async fn revoke_role(
    State(state): State<Arc<ApiState>>,
    Caller(principal): Caller,
    body: Bytes,
) -> ApiResult<Response> {
    let (request, role) = parse_binding(&body)?;
    state.accounts.revoke_role(&principal, &request.namespace, &request.subject, role).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /api/v1/keys/rotate`: a new platform signing key; answers the kids that verify.
pub(crate) async fn rotate_keys(State(state): State<Arc<ApiState>>, Caller(principal): Caller) -> ApiResult<Response> {
    let kids = state.accounts.rotate_signing_key(&principal).await?;
    Ok(Json(serde_json::json!({ "active_kid": kids[0], "kids": kids })).into_response())
}
