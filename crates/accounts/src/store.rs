//! What accounts store: users and role bindings, behind a trait the platform's store implements.
//! Every change is written with its audit event in one transaction.

use async_trait::async_trait;
use audit::AuditEvent;

#[derive(Debug, thiserror::Error)]
pub enum AccountStoreError {
    #[error("user {name:?} does not exist")]
    UnknownUser { name: String },
    #[error("user {name:?} already exists")]
    UserExists { name: String },
    #[error("{subject} has no {role} role in namespace {namespace:?}")]
    UnknownBinding { namespace: String, subject: String, role: String },
    #[error("storage failed: {0}")]
    Backend(String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct UserRow {
    pub name: String,
    /// argon2id PHC string; `None` for users of an identity provider.
    pub password_hash: Option<String>,
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub groups: Vec<String>,
    pub disabled: bool,
    pub created_at: String,
    pub created_by: String,
}

/// A change to a user; fields left `None` stay as they are.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UserChange {
    pub disabled: Option<bool>,
    pub groups: Option<Vec<String>>,
    pub password_hash: Option<String>,
}

/// A role granted in a namespace (`*` for every namespace) to `user:<name>` or `group:<name>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleBindingRow {
    pub namespace: String,
    pub subject: String,
    pub role: String,
    pub created_at: String,
    pub created_by: String,
}

#[async_trait]
pub trait AccountStore: Send + Sync + 'static {
    async fn count_users(&self) -> Result<u64, AccountStoreError>;
    async fn create_user(&self, user: UserRow, audit: AuditEvent) -> Result<(), AccountStoreError>;
    async fn get_user(&self, name: &str) -> Result<UserRow, AccountStoreError>;
    async fn list_users(&self) -> Result<Vec<UserRow>, AccountStoreError>;
    async fn update_user(
        &self,
        name: &str,
        change: UserChange,
        audit: AuditEvent,
    ) -> Result<UserRow, AccountStoreError>;
    /// Granting a binding that exists changes nothing (and still records the event).
    async fn grant_role(&self, binding: RoleBindingRow, audit: AuditEvent) -> Result<(), AccountStoreError>;
    async fn revoke_role(
        &self,
        namespace: &str,
        subject: &str,
        role: &str,
        audit: AuditEvent,
    ) -> Result<(), AccountStoreError>;
    /// Bindings in `namespace` (and the platform-wide ones), or all of them.
    async fn list_role_bindings(&self, namespace: Option<&str>) -> Result<Vec<RoleBindingRow>, AccountStoreError>;
    /// Every binding of any of `subjects` (`user:ana`, `group:growth`).
    async fn bindings_of(&self, subjects: &[String]) -> Result<Vec<RoleBindingRow>, AccountStoreError>;
    async fn append_audit(&self, event: AuditEvent) -> Result<(), AccountStoreError>;
}
