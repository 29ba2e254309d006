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

pub mod policy;

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
    /// Set when the revision asks for something a person must approve: it waits in this
    /// request, and the previous revision (if any) keeps serving.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_approval: Option<policy::ApprovalRequest>,
    /// How long the policies took to decide (milliseconds): building their input from the
    /// registry, evaluating every policy, applying exceptions and grants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admission_ms: Option<f64>,
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
    /// `metadata.labels.dataClass` of the live revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_class: Option<String>,
    /// When the app expires (its last deploy plus `spec.ttlDays`), when it has a TTL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AppDetail {
    #[serde(flatten)]
    pub summary: AppSummary,
    pub description: Option<String>,
    pub created_at: String,
    pub revisions: Vec<RevisionInfo>,
    /// How the app meets its `spec.slo`, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo: Option<SloStatus>,
    /// What the last policy audit found in the active revision, in full.
    #[serde(default)]
    pub violations: Vec<policy::StoredViolation>,
    /// Revisions waiting for approval.
    #[serde(default)]
    pub pending_approvals: Vec<policy::ApprovalRequest>,
    /// Active exceptions to policies.
    #[serde(default)]
    pub exceptions: Vec<policy::PolicyException>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SloStatus {
    pub objectives: Vec<SloObjective>,
}

/// One objective over rolling windows: the share of good requests, and how fast the error
/// budget burns (1.0 spends it exactly over the window).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SloObjective {
    /// `availability` or `latency`.
    pub name: String,
    /// In words: `99.5 % succeed`, `95 % within 300 ms`.
    pub target: String,
    /// `None` without traffic in the window.
    pub good_percent_1h: Option<f64>,
    pub good_percent_6h: Option<f64>,
    pub burn_rate_1h: f64,
    pub burn_rate_6h: f64,
    /// `ok`, `slow_burn` (6 h and 30 min windows over 6×) or `fast_burn` (1 h and 5 min over 14.4×).
    pub alert: String,
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

/// What one revision changed from the one before it, by file path.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct RevisionChanges {
    pub revision: i64,
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub removed: Vec<String>,
}

impl RevisionChanges {
    /// The difference between two revisions' files, each given as path → content digest.
    pub fn between(
        revision: i64,
        before: &std::collections::BTreeMap<String, String>,
        after: &std::collections::BTreeMap<String, String>,
    ) -> RevisionChanges {
        let mut changes = RevisionChanges { revision, ..RevisionChanges::default() };
        for (path, digest) in after {
            match before.get(path) {
                None => changes.added.push(path.clone()),
                Some(old) if old != digest => changes.changed.push(path.clone()),
                Some(_) => {}
            }
        }
        changes.removed = before.keys().filter(|path| !after.contains_key(*path)).cloned().collect();
        changes
    }

    /// `2 added, 1 changed`, or `no file changed`.
    pub fn summary(&self) -> String {
        let parts: Vec<String> =
            [(self.added.len(), "added"), (self.changed.len(), "changed"), (self.removed.len(), "removed")]
                .into_iter()
                .filter(|(n, _)| *n > 0)
                .map(|(n, what)| format!("{n} {what}"))
                .collect();
        match parts.is_empty() {
            true => "no file changed".to_owned(),
            false => parts.join(", "),
        }
    }
}

/// `POST /api/v1/apps/{ns}/{app}/extend`: keep an app with a TTL longer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExtendRequest {
    /// Days added to the expiry (counted from today when it has passed).
    pub days: u32,
    /// Why the app is still needed; kept in the audit log.
    pub reason: String,
}

/// `POST /api/v1/apps/{ns}/{app}/archive`.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct ArchiveRequest {
    /// Why; kept in the audit log.
    #[serde(default)]
    pub reason: String,
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

/// One secret of an app, as listings show it: never its value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretInfo {
    pub namespace: String,
    pub app: String,
    pub name: String,
    pub version: i64,
    pub n_versions: i64,
    pub created_at: String,
    pub created_by: String,
    pub expires_at: Option<String>,
    pub last_read_at: Option<String>,
    /// Set when the secret should be rotated, with why (its app changed owner, ...).
    pub rotation_reason: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretVersionInfo {
    pub version: i64,
    pub created_at: String,
    pub created_by: String,
    pub expires_at: Option<String>,
}

/// The body of `PUT .../secrets/{name}`. The value travels only in request bodies, never in URLs.
#[derive(Clone, Serialize, Deserialize)]
pub struct SetSecret {
    pub value: String,
    /// RFC 3339 time after which the secret should be replaced; reminders start 14 days before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

impl std::fmt::Debug for SetSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SetSecret").field("value", &"<redacted>").field("expires_at", &self.expires_at).finish()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretSet {
    pub namespace: String,
    pub app: String,
    pub name: String,
    pub version: i64,
    /// Whether the running app was reloaded with the new value.
    pub reloaded: bool,
}

/// One outbound request of an app, from the egress log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EgressEntry {
    pub id: i64,
    pub time: String,
    pub namespace: String,
    pub app: String,
    pub request_id: String,
    pub method: String,
    pub host: String,
    pub address: Option<String>,
    /// `allowed`, `denied` or `failed`.
    pub decision: String,
    pub code: Option<String>,
    pub status: Option<u16>,
    pub bytes_out: u64,
    pub bytes_in: u64,
    pub duration_ms: u64,
}

/// An app's usage in one period (an hour, a day, or a whole month), from the metering roll-ups.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UsageEntry {
    pub namespace: String,
    pub app: String,
    /// The period's start (RFC 3339 UTC); the month's start for monthly totals.
    pub start: String,
    pub requests: u64,
    pub client_errors: u64,
    pub server_errors: u64,
    /// Refused with 429 (over the rate limit) and 503 (over the concurrency cap).
    pub rate_limited: u64,
    pub busy: u64,
    pub cpu_seconds: f64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub mean_duration_ms: f64,
    /// Outbound `fetch` calls and their body bytes (sent and received).
    #[serde(default)]
    pub outbound_requests: u64,
    #[serde(default)]
    pub outbound_bytes: u64,
    /// The largest function heap at the end of a request in the period.
    #[serde(default)]
    pub heap_bytes_max: u64,
    /// Key-value reads, writes and lists, and rows SQL statements read and wrote.
    #[serde(default)]
    pub kv_reads: u64,
    #[serde(default)]
    pub kv_writes: u64,
    #[serde(default)]
    pub kv_lists: u64,
    #[serde(default)]
    pub sql_rows_read: u64,
    #[serde(default)]
    pub sql_rows_written: u64,
    /// The most the app stored (key-value and SQL) at a daily measure in the period.
    #[serde(default)]
    pub storage_bytes_max: u64,
    /// Requests the response cache answered without running the app, requests it looked up
    /// and did not find fresh, and the body bytes it served.
    #[serde(default)]
    pub cache_hits: u64,
    #[serde(default)]
    pub cache_misses: u64,
    #[serde(default)]
    pub cache_bytes_served: u64,
    /// Vector searches, vectors written, and tokens the platform's embedding model read.
    #[serde(default)]
    pub vector_queries: u64,
    #[serde(default)]
    pub vectors_written: u64,
    #[serde(default)]
    pub embedding_tokens: u64,
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

/// `POST /auth/login` body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

/// A platform access token (`POST /auth/login`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoginResponse {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: u64,
    pub user: String,
}

/// `GET /api/v1/whoami`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WhoAmI {
    pub user: String,
    pub groups: Vec<String>,
    /// `namespace:role` pairs; `*` is every namespace.
    pub roles: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserInfo {
    pub name: String,
    pub groups: Vec<String>,
    pub disabled: bool,
    /// A local account (with a password), as opposed to one from an identity provider.
    pub local: bool,
    pub created_at: String,
    pub created_by: String,
}

/// `POST /api/v1/users`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CreateUserRequest {
    pub name: String,
    #[serde(default)]
    pub groups: Vec<String>,
    /// Where the platform reaches them (an app's expiry reminders, for its owner).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// The new user and its one-time password, shown once.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CreateUserResponse {
    pub user: UserInfo,
    pub password: String,
}

/// `PATCH /api/v1/users/{name}`.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct UpdateUserRequest {
    pub disabled: Option<bool>,
    pub groups: Option<Vec<String>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoleBindingInfo {
    pub namespace: String,
    pub subject: String,
    pub role: String,
    pub created_at: String,
    pub created_by: String,
}

/// `POST /api/v1/roles` (grant) and `DELETE /api/v1/roles` (revoke).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoleBindingRequest {
    pub namespace: String,
    pub subject: String,
    pub role: String,
}

/// `POST /auth/device`: a device sign-in started at the identity provider.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeviceStart {
    pub device_code: String,
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: Option<String>,
    pub expires_in: u64,
    pub interval: u64,
}

/// `POST /auth/device/token`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DevicePoll {
    pub device_code: String,
}

/// One run of a background task (`POST /api/v1/tasks/{name}/run`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskRun {
    pub task: String,
    /// When it started (RFC 3339, the system clock).
    pub started: String,
    pub millis: u64,
    /// What went wrong, when something did.
    pub error: Option<String>,
}

/// A background task of the server (`GET /api/v1/tasks`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskInfo {
    pub name: String,
    /// What it does, in one line.
    pub about: String,
    pub every_secs: u64,
    /// Runs since the server started.
    pub runs: u64,
    pub last: Option<TaskRun>,
}
