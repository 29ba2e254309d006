//! Key-value storage for apps, with the Workers KV API: `env.KV.get/put/delete/list`, plus an
//! atomic `increment` and a compare-and-set `put(..., { onlyIf })`. Each app has its own
//! namespace; every stored key carries the app's namespace and name, so no app can name
//! another's data. Reads after a write are strongly consistent, and a key may be written as
//! often as the app likes (Workers KV is eventually consistent for up to 60 s and refuses more
//! than one write per second per key).
//!
//! Three phases, as every capability: the process's [`Kv`] service (its [`config::KvSection`]
//! and store), then one [`AppKv`] per deployment, then each call, checked against Workers'
//! limits with Workers' messages before it reaches the [`store::KvStore`].

pub mod config;
#[doc(hidden)]
pub mod contract;
pub mod store;

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use deployment::AppKey;
use futures::future::BoxFuture;
use runtime::kv::{KvAnswer, KvEntry, KvError, KvHost, KvOp, PutOptions};
use runtime::{DataMeter, DataOps};

use crate::store::{KvStore, KvWrite, StorageError, StoredCondition};

/// Workers KV's limits on keys and metadata.
pub const MAX_KEY_BYTES: usize = 512;
pub const MAX_METADATA_BYTES: usize = 1024;
/// The shortest `expirationTtl` Workers accepts, in seconds.
pub const MIN_EXPIRATION_TTL: i64 = 60;

/// Seals values under a namespace's data key (the secrets crate's envelope scheme) for apps
/// whose data is confidential or restricted; the binary implements it over the secret store.
pub trait Sealer: Send + Sync + 'static {
    /// `plaintext` sealed with `aad` bound to it; answers the data key's version and the sealed bytes.
    fn seal(
        &self,
        namespace: &str,
        aad: Vec<u8>,
        plaintext: Vec<u8>,
    ) -> BoxFuture<'static, Result<(i64, Vec<u8>), String>>;
    /// Opens what [`Sealer::seal`] sealed under `version` with the same `aad`.
    fn open(
        &self,
        namespace: &str,
        version: i64,
        aad: Vec<u8>,
        sealed: Vec<u8>,
    ) -> BoxFuture<'static, Result<Vec<u8>, String>>;
}

/// What a sealed value is bound to: its namespace, app and key, so no sealed value can be moved
/// to another key or app and still open.
fn value_aad(app: &AppKey, key: &str) -> Vec<u8> {
    format!("terrarium-kv\0{}\0{}\0{key}", app.namespace, app.name).into_bytes()
}

/// The key-value service of this server.
pub struct Kv {
    store: Arc<dyn KvStore>,
    max_value_bytes: usize,
    clock: background::Clock,
    meter: Arc<dyn DataMeter>,
    /// Bytes each app with a quota holds at most, as far as this server knows: an upper bound
    /// (writes add, deletes do not subtract), measured again before a write is refused.
    held: std::sync::Mutex<std::collections::HashMap<AppKey, u64>>,
    sealer: Arc<dyn Sealer>,
    /// Apps whose values are sealed (their deployments' `seal_data`), for import.
    sealed_apps: std::sync::Mutex<std::collections::HashSet<AppKey>>,
}

impl Kv {
    pub fn new(
        store: Arc<dyn KvStore>,
        section: &config::KvSection,
        clock: background::Clock,
        meter: Arc<dyn DataMeter>,
        sealer: Arc<dyn Sealer>,
    ) -> Kv {
        Kv {
            store,
            max_value_bytes: section.max_value_bytes,
            clock,
            meter,
            held: Default::default(),
            sealer,
            sealed_apps: Default::default(),
        }
    }

    pub fn store(&self) -> &Arc<dyn KvStore> {
        &self.store
    }

    /// The namespace one app's functions get, holding at most `max_mib` (`kvStorageMiB`), its
    /// values sealed when `seal` (the app's data is confidential or restricted).
    pub fn for_app(self: &Arc<Self>, app: &AppKey, max_mib: Option<u32>, seal: bool) -> Arc<dyn KvHost> {
        let max_bytes = max_mib.map(|mib| u64::from(mib) * 1024 * 1024);
        let mut sealed_apps = self.sealed_apps.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match seal {
            true => sealed_apps.insert(app.clone()),
            false => sealed_apps.remove(app),
        };
        Arc::new(AppKv { kv: self.clone(), app: app.clone(), max_bytes, seal })
    }

    /// A stored value in clear: opened when it is sealed.
    async fn clear_value(&self, app: &AppKey, key: &str, stored: &store::StoredValue) -> Result<bytes::Bytes, String> {
        match stored.sealed {
            None => Ok(stored.value.clone()),
            Some(version) => self
                .sealer
                .open(&app.namespace, version, value_aad(app, key), stored.value.to_vec())
                .await
                .map(bytes::Bytes::from),
        }
    }

    /// A write as stored: its value sealed when the app's data is.
    async fn seal_write(&self, app: &AppKey, seal: bool, mut write: KvWrite) -> Result<KvWrite, String> {
        if seal {
            let (version, sealed) =
                self.sealer.seal(&app.namespace, value_aad(app, &write.key), write.value.to_vec()).await?;
            write.value = bytes::Bytes::from(sealed);
            write.sealed = Some(version);
        }
        Ok(write)
    }

    /// Whether a write of `bytes` keeps the app within `max_bytes`: by the running upper bound
    /// when it is clearly under, else by measuring what the app holds now.
    async fn within_quota(&self, app: &AppKey, bytes: u64, max_bytes: u64) -> Result<bool, StorageError> {
        let known = self.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(app).copied();
        if let Some(held) = known
            && held + bytes <= max_bytes
        {
            self.add_held(app, bytes);
            return Ok(true);
        }
        let held = self.store.usage(app).await?.bytes;
        let fits = held + bytes <= max_bytes;
        let counted = if fits { held + bytes } else { held };
        self.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(app.clone(), counted);
        Ok(fits)
    }

    fn add_held(&self, app: &AppKey, bytes: u64) {
        let mut held = self.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(held) = held.get_mut(app) {
            *held += bytes;
        }
    }

    /// Every live entry of an app, in key order, as JSON lines: `key`, `value` (UTF-8 text, or
    /// base64 with `"encoding": "base64"`), `metadata`, `expiration`. What `import` reads back,
    /// and what archiving an app will keep.
    pub async fn export(&self, app: &AppKey) -> Result<String, StorageError> {
        let now = self.clock.now().unix_timestamp();
        let mut lines = String::new();
        let mut after: Option<String> = None;
        loop {
            let keys = self.store.list(app, "", after.as_deref(), 1000, now).await?;
            for key in &keys {
                let Some(stored) = self.store.get(app, &key.name, now).await? else {
                    continue;
                };
                let clear = self.clear_value(app, &key.name, &stored).await.map_err(StorageError)?;
                let (value, encoding) = match std::str::from_utf8(&clear) {
                    Ok(text) => (text.to_owned(), "utf-8"),
                    Err(_) => (base64::engine::general_purpose::STANDARD.encode(&clear), "base64"),
                };
                let metadata: Option<serde_json::Value> =
                    stored.metadata.as_deref().and_then(|text| serde_json::from_str(text).ok());
                let line = serde_json::json!({
                    "key": key.name, "value": value, "encoding": encoding,
                    "metadata": metadata, "expiration": stored.expiration,
                });
                lines.push_str(&line.to_string());
                lines.push('\n');
            }
            match keys.len() < 1000 {
                true => return Ok(lines),
                false => after = keys.last().map(|key| key.name.clone()),
            }
        }
    }

    /// Writes the entries of an export (JSON lines) into an app's namespace; answers how many.
    /// Every line is read and checked as a `put` is before anything is written, so a bad line
    /// (named by its number) leaves the namespace as it was.
    pub async fn import(self: &Arc<Self>, app: &AppKey, lines: &str) -> Result<u64, KvError> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Line {
            key: String,
            value: String,
            #[serde(default)]
            encoding: Option<String>,
            #[serde(default)]
            metadata: Option<serde_json::Value>,
            #[serde(default)]
            expiration: Option<i64>,
        }
        let seal = self.sealed_apps.lock().unwrap_or_else(std::sync::PoisonError::into_inner).contains(app);
        let namespace = AppKv { kv: self.clone(), app: app.clone(), max_bytes: None, seal };
        let now = self.clock.now().unix_timestamp();
        let mut writes = Vec::new();
        for (index, text) in lines.lines().enumerate().filter(|(_, text)| !text.trim().is_empty()) {
            let bad = |why: String| KvError::Invalid(format!("line {}: {why}", index + 1));
            let line: Line = serde_json::from_str(text).map_err(|error| bad(error.to_string()))?;
            let value = match line.encoding.as_deref() {
                None | Some("utf-8") => bytes::Bytes::from(line.value),
                Some("base64") => base64::engine::general_purpose::STANDARD
                    .decode(line.value.as_bytes())
                    .map(bytes::Bytes::from)
                    .map_err(|error| bad(format!("the value is not base64: {error}")))?,
                Some(other) => return Err(bad(format!("encoding {other:?} is neither utf-8 nor base64"))),
            };
            // An entry that has expired (or is about to) since it was exported is not brought back.
            if line.expiration.is_some_and(|at| at < now + MIN_EXPIRATION_TTL) {
                continue;
            }
            let options = PutOptions {
                expiration: line.expiration,
                metadata: line.metadata.map(|metadata| metadata.to_string()),
                ..PutOptions::default()
            };
            check_key("PUT", &line.key).map_err(|error| bad(error.to_string()))?;
            writes.push(namespace.write(line.key, value, options, now).map_err(|error| bad(error.to_string()))?);
        }
        let imported = writes.len() as u64;
        for write in writes {
            let write = self.seal_write(app, seal, write).await.map_err(|error| sealing_failed("PUT", app, &error))?;
            self.store.put(app, write, now).await.map_err(|error| failed("PUT", app, error))?;
        }
        Ok(imported)
    }

    /// Keys and bytes an app holds.
    pub async fn usage(&self, app: &AppKey) -> Result<store::KvUsage, StorageError> {
        self.store.usage(app).await
    }

    /// Deletes keys that have expired; the `kv.sweep` task runs it.
    pub async fn sweep(&self) -> Result<u64, StorageError> {
        let now = self.clock.now().unix_timestamp();
        let mut swept = 0;
        loop {
            let batch = self.store.sweep_expired(now, 1000).await?;
            swept += batch;
            if batch < 1000 {
                return Ok(swept);
            }
        }
    }
}

/// One app's namespace.
pub struct AppKv {
    kv: Arc<Kv>,
    app: AppKey,
    /// `spec.quotas.kvStorageMiB`, in bytes.
    max_bytes: Option<u64>,
    /// Values are sealed under the namespace's data key.
    seal: bool,
}

/// A storage failure reaches the app as Workers' shape of an internal error; the details go to
/// the server log only.
fn failed(operation: &str, app: &AppKey, error: StorageError) -> KvError {
    tracing::error!(namespace = %app.namespace, app = %app.name, %error, "KV {operation} failed");
    KvError::Failed(format!("KV {operation} failed: 500 Internal Server Error"))
}

/// Sealing or opening failed: Workers' shape of an internal error; the details go to the
/// server log only (never the value).
fn sealing_failed(operation: &str, app: &AppKey, error: &str) -> KvError {
    tracing::error!(namespace = %app.namespace, app = %app.name, %error, "KV {operation}: sealing failed");
    KvError::Failed(format!("KV {operation} failed: 500 Internal Server Error"))
}

/// Workers' checks of a key, with Workers' messages.
fn check_key(operation: &str, key: &str) -> Result<(), KvError> {
    if key.is_empty() {
        return Err(KvError::Failed(format!("KV {operation} failed: 400 Invalid key: keys may not be empty")));
    }
    if key.contains('\0') {
        return Err(KvError::Failed(format!(
            "KV {operation} failed: 400 Invalid key: keys may not contain NUL characters"
        )));
    }
    if key == "." || key == ".." {
        return Err(KvError::Failed(format!("Illegal key name \"{key}\". Please use a different name.")));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(KvError::Failed(format!(
            "KV {operation} failed: 414 UTF-8 encoded length of {} exceeds key length limit of {MAX_KEY_BYTES}.",
            key.len()
        )));
    }
    Ok(())
}

impl AppKv {
    fn clone_for_call(&self) -> AppKv {
        AppKv { kv: self.kv.clone(), app: self.app.clone(), max_bytes: self.max_bytes, seal: self.seal }
    }

    async fn call(self, op: KvOp) -> Result<KvAnswer, KvError> {
        let ops = match &op {
            KvOp::Get { .. } => DataOps { kv_reads: 1, ..DataOps::default() },
            KvOp::List { .. } => DataOps { kv_lists: 1, ..DataOps::default() },
            KvOp::Put { .. } | KvOp::Delete { .. } | KvOp::Increment { .. } => {
                DataOps { kv_writes: 1, ..DataOps::default() }
            }
        };
        self.kv.meter.record_data(&self.app, ops);
        let now = self.kv.clock.now().unix_timestamp();
        let store = &self.kv.store;
        let app = &self.app;
        match op {
            KvOp::Get { key } => {
                check_key("GET", &key)?;
                let Some(stored) = store.get(app, &key, now).await.map_err(|error| failed("GET", app, error))? else {
                    return Ok(KvAnswer::Entry(None));
                };
                let value = self
                    .kv
                    .clear_value(app, &key, &stored)
                    .await
                    .map_err(|error| sealing_failed("GET", app, &error))?;
                Ok(KvAnswer::Entry(Some(KvEntry {
                    value,
                    metadata: stored.metadata,
                    expiration: stored.expiration,
                    etag: format!("v{}", stored.version),
                })))
            }
            KvOp::Put { key, value, options } => {
                check_key("PUT", &key)?;
                let write = self.write(key, value, options, now)?;
                if let Some(max_bytes) = self.max_bytes {
                    let bytes =
                        (write.key.len() + write.value.len() + write.metadata.as_ref().map_or(0, String::len)) as u64;
                    let fits =
                        self.kv.within_quota(app, bytes, max_bytes).await.map_err(|error| failed("PUT", app, error))?;
                    if !fits {
                        return Err(KvError::Failed(format!(
                            "KV PUT failed: 413 the namespace is full: it may hold {} MiB (spec.quotas.kvStorageMiB); delete keys to make room",
                            max_bytes / (1024 * 1024)
                        )));
                    }
                }
                let write = self
                    .kv
                    .seal_write(app, self.seal, write)
                    .await
                    .map_err(|error| sealing_failed("PUT", app, &error))?;
                let stored = store.put(app, write, now).await.map_err(|error| failed("PUT", app, error))?;
                Ok(KvAnswer::Stored(stored.map(|version| format!("v{version}"))))
            }
            KvOp::Delete { key } => {
                check_key("DELETE", &key)?;
                store.delete(app, &key).await.map_err(|error| failed("DELETE", app, error))?;
                Ok(KvAnswer::Deleted)
            }
            KvOp::List { prefix, limit, cursor } => {
                let after = match cursor {
                    None => None,
                    Some(cursor) => Some(
                        URL_SAFE_NO_PAD
                            .decode(cursor.as_bytes())
                            .ok()
                            .and_then(|bytes| String::from_utf8(bytes).ok())
                            .ok_or_else(|| KvError::Failed("KV LIST failed: 400 Invalid cursor".to_owned()))?,
                    ),
                };
                let limit = limit.clamp(1, 1000);
                let mut keys = store
                    .list(app, &prefix, after.as_deref(), limit + 1, now)
                    .await
                    .map_err(|error| failed("LIST", app, error))?;
                let cursor = match keys.len() > limit as usize {
                    true => {
                        keys.truncate(limit as usize);
                        keys.last().map(|key| URL_SAFE_NO_PAD.encode(key.name.as_bytes()))
                    }
                    false => None,
                };
                Ok(KvAnswer::Listed { keys, cursor })
            }
            KvOp::Increment { key, by } if self.seal => {
                check_key("INCREMENT", &key)?;
                self.increment_sealed(key, by, now).await
            }
            KvOp::Increment { key, by } => {
                check_key("INCREMENT", &key)?;
                match store.increment(app, &key, by, now).await.map_err(|error| failed("INCREMENT", app, error))? {
                    Ok(count) => Ok(KvAnswer::Count(count)),
                    Err(found) => Err(KvError::Invalid(format!(
                        "increment(): the value of {key:?} is not an integer ({found:?}); increment works on keys it created or that hold an integer"
                    ))),
                }
            }
        }
    }

    /// `increment` on sealed values, which the store cannot add to: read and open, add, seal,
    /// and write only if the key did not change meanwhile, again until it did not.
    async fn increment_sealed(&self, key: String, by: i64, now: i64) -> Result<KvAnswer, KvError> {
        let (store, app) = (&self.kv.store, &self.app);
        for _ in 0..1000 {
            let stored = store.get(app, &key, now).await.map_err(|error| failed("INCREMENT", app, error))?;
            let (current, only_if, metadata, expiration) = match &stored {
                None => (0, StoredCondition::Absent, None, None),
                Some(stored) => {
                    let clear = self
                        .kv
                        .clear_value(app, &key, stored)
                        .await
                        .map_err(|error| sealing_failed("INCREMENT", app, &error))?;
                    let text = String::from_utf8_lossy(&clear).into_owned();
                    // The value is sealed: the message does not show it.
                    let current = text.parse::<i64>().ok().filter(|number| number.to_string() == text).ok_or_else(|| {
                        KvError::Invalid(format!(
                            "increment(): the value of {key:?} is not an integer; increment works on keys it created or that hold an integer"
                        ))
                    })?;
                    (current, StoredCondition::Version(stored.version), stored.metadata.clone(), stored.expiration)
                }
            };
            let next = current
                .checked_add(by)
                .ok_or_else(|| KvError::Invalid(format!("increment(): {current} + {by} is beyond a 64-bit integer")))?;
            let write = KvWrite {
                key: key.clone(),
                value: bytes::Bytes::from(next.to_string()),
                metadata,
                expiration,
                only_if: Some(only_if),
                sealed: None,
            };
            let write =
                self.kv.seal_write(app, true, write).await.map_err(|error| sealing_failed("INCREMENT", app, &error))?;
            if store.put(app, write, now).await.map_err(|error| failed("INCREMENT", app, error))?.is_some() {
                return Ok(KvAnswer::Count(next));
            }
        }
        Err(KvError::Failed("KV INCREMENT failed: 409 the key changed too often to add to it; try again".to_owned()))
    }

    /// A put's value, metadata and expiration, checked as Workers checks them.
    fn write(&self, key: String, value: bytes::Bytes, options: PutOptions, now: i64) -> Result<KvWrite, KvError> {
        let max = self.kv.max_value_bytes;
        if value.len() > max {
            return Err(KvError::Failed(format!(
                "KV PUT failed: 413 Value length of {} exceeds limit of {max}.",
                value.len()
            )));
        }
        if let Some(metadata) = &options.metadata {
            if metadata.len() > MAX_METADATA_BYTES {
                return Err(KvError::Failed(format!(
                    "KV PUT failed: 413 Metadata length of {} exceeds limit of {MAX_METADATA_BYTES}.",
                    metadata.len()
                )));
            }
            serde_json::from_str::<serde_json::Value>(metadata)
                .map_err(|_| KvError::Invalid("KV PUT failed: metadata must be serializable to JSON".to_owned()))?;
        }
        let expiration = match (options.expiration, options.expiration_ttl) {
            (_, Some(ttl)) if ttl < MIN_EXPIRATION_TTL => {
                return Err(KvError::Failed(format!(
                    "KV PUT failed: 400 Invalid expiration_ttl of {ttl}. Expiration TTL must be at least {MIN_EXPIRATION_TTL}."
                )));
            }
            (_, Some(ttl)) => Some(now.saturating_add(ttl)),
            (Some(at), None) if at < now + MIN_EXPIRATION_TTL => {
                return Err(KvError::Failed(format!(
                    "KV PUT failed: 400 Invalid expiration of {at}. Please specify integer greater than the current number of seconds since the UNIX epoch plus {MIN_EXPIRATION_TTL}."
                )));
            }
            (at, None) => at,
        };
        // An etag this store never issued can never match: the put does nothing.
        let only_if = options
            .only_if
            .as_ref()
            .map(|only_if| StoredCondition::from_only_if(only_if).unwrap_or(StoredCondition::Version(i64::MIN)));
        Ok(KvWrite { key, value, metadata: options.metadata, expiration, only_if, sealed: None })
    }
}

impl KvHost for AppKv {
    fn call(&self, op: KvOp) -> BoxFuture<'static, Result<KvAnswer, KvError>> {
        Box::pin(self.clone_for_call().call(op))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_checked_as_workers_checks_them() {
        assert!(check_key("GET", "votes:pizza").is_ok());
        assert!(check_key("GET", &"k".repeat(512)).is_ok());
        let too_long = check_key("PUT", &"k".repeat(513)).unwrap_err().to_string();
        assert_eq!(too_long, "KV PUT failed: 414 UTF-8 encoded length of 513 exceeds key length limit of 512.");
        assert!(check_key("GET", ".").unwrap_err().to_string().starts_with("Illegal key name"));
        assert!(check_key("GET", "").is_err());
    }

    #[test]
    fn only_if_etags_name_versions() {
        use runtime::kv::OnlyIf;
        assert_eq!(StoredCondition::from_only_if(&OnlyIf::Etag("v7".into())), Some(StoredCondition::Version(7)));
        assert_eq!(StoredCondition::from_only_if(&OnlyIf::Etag("\"abc\"".into())), None);
        assert_eq!(StoredCondition::from_only_if(&OnlyIf::Absent), Some(StoredCondition::Absent));
    }
}
