//! Request and response bodies of the control API, shared by the server and the CLI.
//!
//! Paths (all under `/api/v1`, JSON unless noted, bearer token in `Authorization`):
//! - `POST /deploy` with an `application/x-tar` bundle body → [`DeployResponse`]
//! - `GET /apps` → `Vec<AppSummary>`; `GET /apps/{ns}/{name}` → [`AppDetail`]
//! - `POST /apps/{ns}/{name}/rollback` with [`RollbackRequest`] → [`AppDetail`]
//! - `DELETE /apps/{ns}/{name}` → 204
//! - `GET /apps/{ns}/{name}/logs?follow=true&tail=N` → NDJSON stream of [`LogEntry`]
//! - `GET /namespaces` → `Vec<NamespaceInfo>`; `POST /namespaces` with [`CreateNamespaceRequest`]
//! - `GET /audit?namespace=&app=` → `Vec<AuditEvent>`
//!
//! Every error is an [`ApiError`] body with a non-2xx status.

use serde::{Deserialize, Serialize};

pub const API_PREFIX: &str = "/api/v1";
pub const BUNDLE_CONTENT_TYPE: &str = "application/x-tar";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeployResponse {
    pub namespace: String,
    pub name: String,
    pub revision: i64,
    pub digest: String,
    /// False when the bundle is identical to the active revision and nothing changed.
    pub changed: bool,
    pub urls: Vec<String>,
    pub warnings: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AppSummary {
    pub namespace: String,
    pub name: String,
    pub owner: String,
    pub runtime: String,
    pub active_revision: i64,
    pub phase: String,
    pub updated_at: String,
    pub urls: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AppDetail {
    #[serde(flatten)]
    pub summary: AppSummary,
    pub description: Option<String>,
    pub created_at: String,
    pub revisions: Vec<RevisionInfo>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RevisionInfo {
    pub revision: i64,
    pub digest: String,
    pub created_at: String,
    pub created_by: String,
    pub n_files: u64,
    pub size_bytes: u64,
    pub active: bool,
}

#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct RollbackRequest {
    /// The revision to make active; the one before the active one when absent.
    pub revision: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NamespaceInfo {
    pub name: String,
    pub created_at: String,
    pub created_by: String,
    pub n_apps: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CreateNamespaceRequest {
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogEntry {
    pub time: String,
    pub namespace: String,
    pub app: String,
    pub request_id: String,
    pub level: String,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub id: i64,
    pub time: String,
    pub principal: String,
    pub action: String,
    pub namespace: Option<String>,
    pub app: Option<String>,
    pub revision: Option<i64>,
    pub outcome: String,
    pub detail: String,
}

/// The body of every error response.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApiError {
    /// A stable, bounded code (`invalid_manifest`, `not_found`, `bundle_too_large`, ...).
    pub code: String,
    /// One sentence saying what is wrong and how to fix it.
    pub message: String,
    /// Every individual problem, when there are several (one per manifest mistake).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
}
