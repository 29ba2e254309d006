//! The secret store: sets, lists and removes secrets, opens an app's secrets for its functions,
//! and rotates the key-encryption key.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use runtime::SecretValue;

use crate::envelope::{Key, data_key_aad, secret_aad};
use crate::kek::KeyEncryptionKey;
use crate::records::{NewSecretVersion, SecretRecords, SecretRow, StoredDataKey, VersionRow};
use crate::{SecretError, check_name, check_value};

/// Names an app's secret.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SecretName {
    pub namespace: String,
    pub app: String,
    pub name: String,
}

/// A step of a key-encryption key rotation, for the progress the operator sees.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum RotationEvent {
    /// The new KEK is active (or a rotation is being resumed); `total` data keys need rewrapping.
    Started { kek: String, total: usize, resumed: bool },
    /// One namespace's data key is now wrapped under the new KEK.
    Rewrapped { namespace: String, done: usize, total: usize },
    /// Every data key is under the active KEK and the retired ones are forgotten.
    Finished { rewrapped: usize },
}

pub struct SecretStore {
    records: Arc<dyn SecretRecords>,
    kek: Arc<dyn KeyEncryptionKey>,
    /// Unwrapped data keys by namespace. A rotation changes only their wrapping, never the keys.
    data_keys: Mutex<HashMap<String, (i64, Key)>>,
    /// A rotation holds it exclusively from start to finish; creating a data key holds it shared,
    /// so no key is wrapped under a KEK that a rotation is about to retire.
    rotation: tokio::sync::RwLock<()>,
}

impl SecretStore {
    pub fn new(records: Arc<dyn SecretRecords>, kek: Arc<dyn KeyEncryptionKey>) -> SecretStore {
        SecretStore { records, kek, data_keys: Mutex::new(HashMap::new()), rotation: tokio::sync::RwLock::new(()) }
    }

    pub fn kek_description(&self) -> String {
        self.kek.describe()
    }

    /// Stores a new version of a secret; returns its number. Nothing about the value is logged.
    pub async fn set(
        &self,
        secret: &SecretName,
        value: &SecretValue,
        expires_at: Option<String>,
        by: &str,
        now: &str,
    ) -> Result<i64, SecretError> {
        check_name(&secret.name)?;
        check_value(value)?;
        let (data_key_version, data_key) = self.data_key(&secret.namespace, now).await?;
        let sealed =
            data_key.seal(value.expose().as_bytes(), &secret_aad(&secret.namespace, &secret.app, &secret.name))?;
        self.records
            .insert_version(NewSecretVersion {
                namespace: secret.namespace.clone(),
                app: secret.app.clone(),
                name: secret.name.clone(),
                data_key_version,
                sealed,
                created_at: now.to_owned(),
                created_by: by.to_owned(),
                expires_at,
            })
            .await
    }

    pub async fn list(&self, namespace: &str, app: Option<&str>) -> Result<Vec<SecretRow>, SecretError> {
        self.records.list_secrets(Some(namespace), app).await
    }

    /// Every secret of every namespace: for the expiry sweep.
    pub async fn list_all(&self) -> Result<Vec<SecretRow>, SecretError> {
        self.records.list_secrets(None, None).await
    }

    pub async fn versions(&self, secret: &SecretName) -> Result<Vec<VersionRow>, SecretError> {
        let versions = self.records.list_versions(&secret.namespace, &secret.app, &secret.name).await?;
        match versions.is_empty() {
            true => Err(not_found(secret)),
            false => Ok(versions),
        }
    }

    /// Deletes every version of a secret; the values are gone for good.
    pub async fn remove(&self, secret: &SecretName) -> Result<u64, SecretError> {
        match self.records.remove_secret(&secret.namespace, &secret.app, &secret.name).await? {
            0 => Err(not_found(secret)),
            removed => Ok(removed),
        }
    }

    /// Seals an app's stored data (a key-value value, say) under the namespace's data key, with
    /// `aad` bound to it; answers the data key's version and the sealed bytes.
    pub async fn seal_data(
        &self,
        namespace: &str,
        aad: &[u8],
        plaintext: &[u8],
        now: &str,
    ) -> Result<(i64, Vec<u8>), SecretError> {
        let (version, key) = self.data_key(namespace, now).await?;
        Ok((version, key.seal(plaintext, aad)?))
    }

    /// A key of the namespace's own for `purpose` (`sql app-poll`), derived from its data key
    /// (made on first use): what encrypts an app's SQL database file.
    pub async fn derive_data_key(&self, namespace: &str, purpose: &str, now: &str) -> Result<Key, SecretError> {
        let (_, key) = self.data_key(namespace, now).await?;
        key.derive(format!("terrarium-derived-v1\0{namespace}\0{purpose}").as_bytes())
    }

    /// Opens what [`SecretStore::seal_data`] sealed.
    pub async fn open_data(
        &self,
        namespace: &str,
        version: i64,
        aad: &[u8],
        sealed: &[u8],
        now: &str,
    ) -> Result<Vec<u8>, SecretError> {
        let (current, key) = self.data_key(namespace, now).await?;
        if current != version {
            return Err(SecretError::Storage(format!(
                "data of namespace {namespace} is sealed under data key version {version}, which is missing"
            )));
        }
        Ok(key.open(sealed, aad)?.to_vec())
    }

    /// Opens the latest version of every secret of one app, for its functions, and records the read.
    pub async fn open_app(
        &self,
        namespace: &str,
        app: &str,
        now: &str,
    ) -> Result<BTreeMap<String, SecretValue>, SecretError> {
        let sealed = self.records.latest_sealed(namespace, app).await?;
        if sealed.is_empty() {
            return Ok(BTreeMap::new());
        }
        let (data_key_version, data_key) = self.data_key(namespace, now).await?;
        let mut opened = BTreeMap::new();
        for secret in sealed {
            if secret.data_key_version != data_key_version {
                return Err(SecretError::Storage(format!(
                    "secret {} of {namespace}/{app} is sealed under data key version {}, which is missing",
                    secret.name, secret.data_key_version
                )));
            }
            let plaintext = data_key.open(&secret.sealed, &secret_aad(namespace, app, &secret.name))?;
            let text = String::from_utf8(plaintext.to_vec())
                .map_err(|_| SecretError::Crypto("a stored secret is not UTF-8 text"))?;
            opened.insert(secret.name, SecretValue::new(text));
        }
        let names: Vec<String> = opened.keys().cloned().collect();
        self.records.record_reads(namespace, app, &names, now).await?;
        Ok(opened)
    }

    /// Flags every secret of an app for rotation (its owner changed, its TTL ended); returns their names.
    pub async fn flag_for_rotation(
        &self,
        namespace: &str,
        app: &str,
        reason: &str,
    ) -> Result<Vec<String>, SecretError> {
        self.records.flag_rotation(namespace, app, reason).await
    }

    pub async fn set_expiry_notice(&self, row: &SecretRow, notice: &str) -> Result<(), SecretError> {
        self.records.set_expiry_notice(&row.namespace, &row.app, &row.name, row.version, notice).await
    }

    /// Whether a rotation was interrupted and should be resumed.
    pub async fn rotation_pending(&self) -> Result<bool, SecretError> {
        let pending = self.kek.rotation_pending().await?;
        if pending {
            return Ok(true);
        }
        for key in self.records.all_data_keys().await? {
            if !self.kek.is_active(&key.wrapped).await? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Rewraps every data key under a new key-encryption key, one namespace at a time; apps keep
    /// serving throughout. With `resume`, no new KEK is made: an interrupted rotation is finished.
    ///
    /// Safe to interrupt at any point: the new KEK is on disk before anything is wrapped under
    /// it, each data key is replaced in one statement, and retired KEKs are forgotten only when no
    /// data key needs them.
    pub async fn rotate_kek(
        &self,
        resume: bool,
        progress: &mut (dyn FnMut(RotationEvent) + Send),
    ) -> Result<usize, SecretError> {
        let _rotation = self.rotation.write().await;
        if !resume {
            self.kek.begin_rotation().await?;
        }
        let mut pending = Vec::new();
        for key in self.records.all_data_keys().await? {
            if !self.kek.is_active(&key.wrapped).await? {
                pending.push(key);
            }
        }
        let total = pending.len();
        progress(RotationEvent::Started { kek: self.kek.describe(), total, resumed: resume });
        for (index, key) in pending.into_iter().enumerate() {
            let aad = data_key_aad(&key.namespace, key.version);
            let data_key = self.kek.unwrap(&key.wrapped, &aad).await?;
            let rewrapped = self.kek.wrap(&data_key, &aad).await?;
            // A concurrent change (another server rewrapping) is fine: it is under the active KEK too.
            self.records.rewrap_data_key(&key.namespace, key.version, &key.wrapped.kek_id, &rewrapped).await?;
            progress(RotationEvent::Rewrapped { namespace: key.namespace, done: index + 1, total });
        }
        self.kek.finish_rotation().await?;
        progress(RotationEvent::Finished { rewrapped: total });
        Ok(total)
    }

    /// The namespace's data key: from the cache, unwrapped from the store, or created on first use.
    async fn data_key(&self, namespace: &str, now: &str) -> Result<(i64, Key), SecretError> {
        if let Some(found) = self.cached(namespace) {
            return Ok(found);
        }
        let stored = match self.records.data_key(namespace).await? {
            Some(stored) => stored,
            None => {
                let _no_rotation = self.rotation.read().await;
                let key = Key::generate()?;
                let wrapped = self.kek.wrap(&key, &data_key_aad(namespace, 1)).await?;
                let new =
                    StoredDataKey { namespace: namespace.to_owned(), version: 1, wrapped, created_at: now.to_owned() };
                self.records.insert_data_key(new).await?
            }
        };
        let key = self.kek.unwrap(&stored.wrapped, &data_key_aad(namespace, stored.version)).await?;
        let mut cache = self.data_keys.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        cache.insert(namespace.to_owned(), (stored.version, key.clone()));
        Ok((stored.version, key))
    }

    fn cached(&self, namespace: &str) -> Option<(i64, Key)> {
        let cache = self.data_keys.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        cache.get(namespace).map(|(version, key)| (*version, key.clone()))
    }
}

fn not_found(secret: &SecretName) -> SecretError {
    SecretError::NotFound { namespace: secret.namespace.clone(), app: secret.app.clone(), name: secret.name.clone() }
}
