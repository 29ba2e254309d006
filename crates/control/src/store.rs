//! The registry's storage contract: namespaces, apps, revisions and audit events.
//!
//! The embedded default is `store-sqlite`; PostgreSQL will implement the same trait.
//! Every method takes the tenant (namespace) explicitly: there is no query by app name alone.

use async_trait::async_trait;
use deployment::{AppKey, Deployment};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("namespace {namespace:?} does not exist")]
    UnknownNamespace { namespace: String },
    #[error("namespace {namespace:?} already exists")]
    NamespaceExists { namespace: String },
    #[error("app {app} does not exist")]
    UnknownApp { app: AppKey },
    #[error("app {app} has no revision {revision}")]
    UnknownRevision { app: AppKey, revision: i64 },
    #[error("revision {revision} of {app} was written concurrently; deploy again")]
    Conflict { app: AppKey, revision: i64 },
    /// The change conflicts with the stored state (a request no longer pending, a second vote).
    #[error("{0}")]
    Refused(String),
    #[error("storage failed: {0}")]
    Backend(String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct NamespaceRow {
    pub name: String,
    pub created_at: String,
    pub created_by: String,
    pub n_apps: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct AppRow {
    pub app: AppKey,
    pub owner: String,
    pub runtime: String,
    pub description: Option<String>,
    pub active_revision: i64,
    pub created_at: String,
    pub updated_at: String,
    /// When the app expires (RFC 3339): its last deploy plus `ttlDays`, moved by extensions;
    /// `None` for an app without a TTL.
    pub expires_at: Option<String>,
    /// When the app was archived and the digest of its archive; `None` for a live app.
    pub archived: Option<(String, String)>,
    /// When its owner was told the archive will be deleted; `None` until then.
    pub archive_notice_at: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RevisionRow {
    pub revision: i64,
    pub digest: String,
    pub created_at: String,
    pub created_by: String,
    pub n_files: u64,
    pub size_bytes: u64,
}

/// A revision to write. Its `deployment.revision` is the number it will get. Serialized while
/// it waits for approval.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct NewRevision {
    pub deployment: Deployment,
    pub owner: String,
    pub runtime: String,
    pub description: Option<String>,
    /// The manifest as the builder wrote it, kept for `apps get` and audits.
    pub manifest_source: String,
    pub created_by: String,
    pub created_at: String,
    pub size_bytes: u64,
    /// Create the namespace in the same transaction if it does not exist yet.
    pub create_namespace: bool,
    /// The app's expiry from this revision on (a deploy renews it); `None`: no TTL. Set when
    /// the revision is committed, from the control plane's clock.
    pub expires_at: Option<String>,
}

/// An audit event to append: built with [`audit::AuditEvent::new`].
pub use audit::AuditEvent as NewAuditEvent;

#[derive(Clone, Debug, PartialEq)]
/// An audit event as stored: names rather than enums, so rows written by another version read
/// back too.
pub struct AuditRow {
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

/// Which audit events to list, newest first.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    pub namespace: Option<String>,
    pub app: Option<String>,
    /// Who acted (`ana`, `terrarium`).
    pub actor: Option<String>,
    /// The action or its area (`app.`, `approval.approve`).
    pub action_prefix: Option<String>,
    /// Events at or after this time (RFC 3339, UTC).
    pub since: Option<String>,
    /// Events older than this id: the next page after a page that ended there.
    pub before: Option<i64>,
    pub limit: u32,
}

#[async_trait]
pub trait RegistryStore: Send + Sync + 'static {
    async fn create_namespace(
        &self,
        name: &str,
        created_by: &str,
        audit: NewAuditEvent,
    ) -> Result<NamespaceRow, StoreError>;
    async fn list_namespaces(&self) -> Result<Vec<NamespaceRow>, StoreError>;

    /// The number the next revision of `app` gets (1 for a new app).
    async fn next_revision(&self, app: &AppKey) -> Result<i64, StoreError>;
    /// In one transaction: the namespace if asked, the app row, the revision, the active
    /// pointer and the audit event. Fails with `Conflict` if the revision number is taken.
    async fn insert_revision(&self, revision: NewRevision, audit: NewAuditEvent) -> Result<(), StoreError>;
    /// The stored deployment record of one revision.
    async fn get_deployment(&self, app: &AppKey, revision: i64) -> Result<Deployment, StoreError>;
    /// Moves the active pointer to an existing revision and records the audit event, atomically.
    async fn set_active_revision(
        &self,
        app: &AppKey,
        revision: i64,
        audit: NewAuditEvent,
    ) -> Result<Deployment, StoreError>;
    /// Moves the app's expiry and records the audit event, atomically.
    async fn set_expiry(&self, app: &AppKey, expires_at: &str, audit: NewAuditEvent) -> Result<(), StoreError>;
    /// Marks the app archived (when, the archive's digest) or live again (`None`, with its new
    /// expiry), and records the audit event, atomically.
    async fn set_archived(
        &self,
        app: &AppKey,
        archived: Option<(&str, &str)>,
        expires_at: Option<&str>,
        audit: NewAuditEvent,
    ) -> Result<(), StoreError>;
    /// Records that the owner of an archived app was told its archive will be deleted, with the
    /// audit event, atomically.
    async fn set_archive_notice(&self, app: &AppKey, at: &str, audit: NewAuditEvent) -> Result<(), StoreError>;
    /// Removes the app and its revisions (blobs stay until collected) and records the audit event.
    async fn delete_app(&self, app: &AppKey, audit: NewAuditEvent) -> Result<(), StoreError>;

    async fn list_apps(&self, namespace: Option<&str>) -> Result<Vec<AppRow>, StoreError>;
    async fn get_app(&self, app: &AppKey) -> Result<AppRow, StoreError>;
    async fn list_revisions(&self, app: &AppKey) -> Result<Vec<RevisionRow>, StoreError>;
    /// The active deployment of every app: what the gateway serves after a restart.
    async fn active_deployments(&self) -> Result<Vec<Deployment>, StoreError>;

    async fn append_audit(&self, event: NewAuditEvent) -> Result<(), StoreError>;
    async fn list_audit(&self, filter: AuditFilter) -> Result<Vec<AuditRow>, StoreError>;
}

/// An approval request as stored, with the revision waiting in it.
#[derive(Clone, Debug, PartialEq)]
pub struct ApprovalRow {
    /// Ignored when creating: the store numbers requests.
    pub id: i64,
    pub app: AppKey,
    pub state: String,
    pub requested_by: String,
    pub requested_at: String,
    pub expires_at: String,
    pub digest: String,
    pub requests: Vec<api_types::policy::Violation>,
    pub required: u32,
    pub approvers: Vec<String>,
    pub votes: Vec<api_types::policy::ApprovalVote>,
    pub revision: Option<i64>,
    pub decided_at: Option<String>,
    pub outcome: Option<String>,
    /// The revision to write once approved, as JSON (`control::governance::PendingRevision`).
    pub pending: String,
}

/// How a pending approval request ends.
#[derive(Clone, Debug, PartialEq)]
pub struct ApprovalEnd {
    /// `approved`, `denied` or `superseded`.
    pub state: String,
    pub outcome: String,
    pub decided_at: String,
    pub revision: Option<i64>,
    /// Grants minted with an approval: (policy, message) the app may ask for from now on.
    pub grants: Vec<(String, String)>,
}

impl ApprovalEnd {
    /// An end that writes no revision and mints nothing: denied, timed out or superseded.
    pub fn closed(state: &str, outcome: String, decided_at: String) -> ApprovalEnd {
        ApprovalEnd { state: state.to_owned(), outcome, decided_at, revision: None, grants: Vec::new() }
    }
}

/// An operator's exception to a policy, as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct ExceptionRow {
    pub id: i64,
    pub app: AppKey,
    pub policy: String,
    pub reason: String,
    pub granted_by: String,
    pub granted_at: String,
    pub expires_at: String,
    pub removed_at: Option<String>,
}

/// Policy governance: approval requests and their grants, exceptions, and the violations the
/// background audit found. Deleting an app (`RegistryStore::delete_app`) removes its rows here
/// too and supersedes its pending requests.
#[async_trait]
pub trait GovernanceStore: Send + Sync + 'static {
    /// Stores a new pending request and supersedes the app's older pending ones, with the audit
    /// event, in one transaction. Returns the new request's id.
    async fn create_approval(&self, row: ApprovalRow, audit: NewAuditEvent) -> Result<i64, StoreError>;
    async fn get_approval(&self, id: i64) -> Result<Option<ApprovalRow>, StoreError>;
    /// Newest first; `state` filters (`pending`, ...).
    async fn list_approvals(
        &self,
        namespace: Option<&str>,
        app: Option<&str>,
        state: Option<&str>,
    ) -> Result<Vec<ApprovalRow>, StoreError>;
    /// Records a vote on a pending request. `Conflict` when the request is no longer pending or
    /// the approver has voted already.
    async fn add_vote(
        &self,
        id: i64,
        vote: api_types::policy::ApprovalVote,
        audit: NewAuditEvent,
    ) -> Result<(), StoreError>;
    /// Ends a pending request and mints its grants, with the audit event, in one transaction.
    /// `false` (and nothing written) when it was no longer pending.
    async fn finish_approval(&self, id: i64, end: ApprovalEnd, audit: NewAuditEvent) -> Result<bool, StoreError>;
    /// (policy, message) pairs the app was granted.
    async fn grants(&self, app: &AppKey) -> Result<Vec<(String, String)>, StoreError>;
    /// The manifest a revision was deployed with, as the builder wrote it.
    async fn manifest_source(&self, app: &AppKey, revision: i64) -> Result<String, StoreError>;
    /// Replaces the app's stored violations with what an audit of `revision` found at `time`;
    /// one found again keeps its first-seen time.
    async fn replace_violations(
        &self,
        app: &AppKey,
        revision: i64,
        violations: &[api_types::policy::Violation],
        time: &str,
    ) -> Result<(), StoreError>;
    async fn list_violations(
        &self,
        namespace: Option<&str>,
        app: Option<&str>,
        policy: Option<&str>,
    ) -> Result<Vec<api_types::policy::StoredViolation>, StoreError>;
    async fn add_exception(&self, row: ExceptionRow, audit: NewAuditEvent) -> Result<i64, StoreError>;
    /// Exceptions, removed ones included, newest first.
    async fn list_exceptions(&self, namespace: Option<&str>) -> Result<Vec<ExceptionRow>, StoreError>;
    /// Marks an exception removed at `time`; `None` when there is no such exception.
    async fn remove_exception(
        &self,
        id: i64,
        time: &str,
        audit: NewAuditEvent,
    ) -> Result<Option<ExceptionRow>, StoreError>;
}
