//! What the key-value capability stores, behind a trait the platform's store implements. Every
//! call names the app (namespace and name): there is no query across tenants.

use async_trait::async_trait;
use bytes::Bytes;
use deployment::AppKey;
use runtime::kv::{KvKey, OnlyIf};

/// The storage failed; the message is the backend's (for the server log, never the app).
#[derive(Debug, thiserror::Error)]
#[error("storage failed: {0}")]
pub struct StorageError(pub String);

/// A stored value and its version.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredValue {
    pub value: Bytes,
    /// JSON text.
    pub metadata: Option<String>,
    /// Seconds since the Unix epoch.
    pub expiration: Option<i64>,
    /// Changes with every write of the key.
    pub version: i64,
    /// The version of the namespace's data key the value is sealed under; `None` when clear.
    pub sealed: Option<i64>,
}

impl StoredValue {
    /// The start of the value as text, for a message about what the key holds (an increment
    /// on a value that is not an integer).
    pub fn shown(&self) -> String {
        String::from_utf8_lossy(&self.value).chars().take(40).collect()
    }
}

/// One write of a key.
#[derive(Clone, Debug, PartialEq)]
pub struct KvWrite {
    pub key: String,
    pub value: Bytes,
    pub metadata: Option<String>,
    pub expiration: Option<i64>,
    /// `Etag` conditions are on the version.
    pub only_if: Option<StoredCondition>,
    /// The version of the namespace's data key `value` is sealed under; `None` when clear.
    pub sealed: Option<i64>,
}

/// A compare-and-set condition, on the stored version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoredCondition {
    Absent,
    Version(i64),
}

impl StoredCondition {
    /// The condition an app's `onlyIf` names; `None` for an etag that was never issued (the
    /// condition can never hold).
    pub fn from_only_if(only_if: &OnlyIf) -> Option<StoredCondition> {
        match only_if {
            OnlyIf::Absent => Some(StoredCondition::Absent),
            OnlyIf::Etag(etag) => etag.strip_prefix('v')?.parse().ok().map(StoredCondition::Version),
        }
    }
}

/// Keys and bytes an app holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KvUsage {
    pub keys: u64,
    pub bytes: u64,
}

#[async_trait]
pub trait KvStore: Send + Sync + 'static {
    /// The key's value, unless it is absent or expired at `now`.
    async fn get(&self, app: &AppKey, key: &str, now: i64) -> Result<Option<StoredValue>, StorageError>;
    /// Writes the key and answers its new version, or `None` when the condition did not hold
    /// at `now` (an expired key counts as absent).
    async fn put(&self, app: &AppKey, write: KvWrite, now: i64) -> Result<Option<i64>, StorageError>;
    async fn delete(&self, app: &AppKey, key: &str) -> Result<(), StorageError>;
    /// Up to `limit` live keys starting with `prefix`, in key order, after `after`.
    async fn list(
        &self,
        app: &AppKey,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
        now: i64,
    ) -> Result<Vec<KvKey>, StorageError>;
    /// Adds `by` to the key's integer value (0 when absent or expired) in one transaction and
    /// answers the sum; `Err(Ok(text))` when the stored value is not an integer.
    async fn increment(&self, app: &AppKey, key: &str, by: i64, now: i64) -> Result<Result<i64, String>, StorageError>;
    /// Deletes up to `limit` keys that expired before `now`; answers how many.
    async fn sweep_expired(&self, now: i64, limit: u32) -> Result<u64, StorageError>;
    /// Deletes every key of the app; answers how many.
    async fn delete_app(&self, app: &AppKey) -> Result<u64, StorageError>;
    async fn usage(&self, app: &AppKey) -> Result<KvUsage, StorageError>;
}
