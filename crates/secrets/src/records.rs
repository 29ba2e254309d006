//! The secret store's storage contract. Rows hold only sealed values and wrapped keys; the
//! embedded default is `store-sqlite`. Every method takes the namespace: there is no query by
//! app or secret name alone.

use async_trait::async_trait;

use crate::SecretError;
use crate::kek::WrappedKey;

/// A namespace's data key, wrapped by a key-encryption key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredDataKey {
    pub namespace: String,
    pub version: i64,
    pub wrapped: WrappedKey,
    pub created_at: String,
}

/// A new version of a secret, already sealed.
#[derive(Clone, Debug)]
pub struct NewSecretVersion {
    pub namespace: String,
    pub app: String,
    pub name: String,
    pub data_key_version: i64,
    pub sealed: Vec<u8>,
    pub created_at: String,
    pub created_by: String,
    pub expires_at: Option<String>,
}

/// The latest version of one secret, sealed.
#[derive(Clone, Debug)]
pub struct SealedSecret {
    pub name: String,
    pub version: i64,
    pub data_key_version: i64,
    pub sealed: Vec<u8>,
}

/// What `terrarium secrets list` shows about one secret: never its value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretRow {
    pub namespace: String,
    pub app: String,
    pub name: String,
    /// The latest version.
    pub version: i64,
    pub n_versions: i64,
    /// When the latest version was set, and by whom.
    pub created_at: String,
    pub created_by: String,
    pub expires_at: Option<String>,
    /// When the app last read the secret (loaded it into its functions).
    pub last_read_at: Option<String>,
    /// Why the secret should be rotated (the app changed owner, ...); cleared by a new version.
    pub rotation_reason: Option<String>,
    /// The expiry reminder already sent for the latest version: `expiring` or `expired`.
    pub expiry_notice: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionRow {
    pub version: i64,
    pub created_at: String,
    pub created_by: String,
    pub expires_at: Option<String>,
}

#[async_trait]
pub trait SecretRecords: Send + Sync + 'static {
    async fn data_key(&self, namespace: &str) -> Result<Option<StoredDataKey>, SecretError>;
    /// Stores the namespace's first data key, unless another writer stored one first; returns
    /// the one that is stored.
    async fn insert_data_key(&self, key: StoredDataKey) -> Result<StoredDataKey, SecretError>;
    async fn all_data_keys(&self) -> Result<Vec<StoredDataKey>, SecretError>;
    /// Replaces the wrapping of one data key if it is still wrapped under `expected_kek_id`, in
    /// one statement; `false` when it had changed.
    async fn rewrap_data_key(
        &self,
        namespace: &str,
        version: i64,
        expected_kek_id: &str,
        new: &WrappedKey,
    ) -> Result<bool, SecretError>;

    /// Adds a version (the next number for that secret) and clears its rotation flag; returns the number.
    async fn insert_version(&self, row: NewSecretVersion) -> Result<i64, SecretError>;
    async fn latest_sealed(&self, namespace: &str, app: &str) -> Result<Vec<SealedSecret>, SecretError>;
    /// Secrets of one namespace (and app), or of every namespace when `namespace` is `None`.
    async fn list_secrets(&self, namespace: Option<&str>, app: Option<&str>) -> Result<Vec<SecretRow>, SecretError>;
    async fn list_versions(&self, namespace: &str, app: &str, name: &str) -> Result<Vec<VersionRow>, SecretError>;
    /// Deletes every version of a secret; returns how many there were.
    async fn remove_secret(&self, namespace: &str, app: &str, name: &str) -> Result<u64, SecretError>;
    async fn record_reads(&self, namespace: &str, app: &str, names: &[String], at: &str) -> Result<(), SecretError>;
    /// Flags every secret of the app for rotation; returns their names.
    async fn flag_rotation(&self, namespace: &str, app: &str, reason: &str) -> Result<Vec<String>, SecretError>;
    async fn set_expiry_notice(
        &self,
        namespace: &str,
        app: &str,
        name: &str,
        version: i64,
        notice: &str,
    ) -> Result<(), SecretError>;
}
