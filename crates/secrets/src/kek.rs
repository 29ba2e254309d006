//! Key-encryption keys: what wraps each namespace's data key.
//!
//! Two providers live here: a key file (the embedded default, created with mode 0600) and keys
//! from an environment variable. Vault's transit engine implements the same trait in the `vault`
//! crate. Every provider keeps the keys it retired during a rotation until nothing is wrapped
//! under them any more, so a crash in the middle of a rotation never strands a data key.

use std::path::{Path, PathBuf};
use std::sync::RwLock;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::SecretError;
use crate::envelope::Key;

/// A data key wrapped by a key-encryption key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrappedKey {
    /// Which KEK wrapped it (`local:3f9c…`, `env:1a2b…`, `transit:terrarium:v2`).
    pub kek_id: String,
    pub bytes: Vec<u8>,
}

/// Wraps and unwraps data keys. `wrap` always uses the active KEK; `unwrap` any KEK the provider
/// still holds.
#[async_trait]
pub trait KeyEncryptionKey: Send + Sync + 'static {
    /// What it is, for the operator (never key material): "key file /var/lib/terrarium/kek.json".
    fn describe(&self) -> String;
    async fn wrap(&self, data_key: &Key, aad: &[u8]) -> Result<WrappedKey, SecretError>;
    async fn unwrap(&self, wrapped: &WrappedKey, aad: &[u8]) -> Result<Key, SecretError>;
    /// Whether `wrapped` is under the active KEK; a rotation rewraps every other one.
    async fn is_active(&self, wrapped: &WrappedKey) -> Result<bool, SecretError>;
    /// Makes a new KEK active while keeping the previous ones for unwrapping. Durable before it returns.
    async fn begin_rotation(&self) -> Result<(), SecretError>;
    /// Forgets the retired KEKs; called once no data key is wrapped under them.
    async fn finish_rotation(&self) -> Result<(), SecretError>;
    /// Whether retired KEKs are still held: a rotation that has not finished.
    async fn rotation_pending(&self) -> Result<bool, SecretError>;
}

/// One key of a local key ring.
struct RingKey {
    id: String,
    key: Key,
}

/// Keys in the order newest first: the first is active, the others are retired but still unwrap.
fn find<'a>(keys: &'a [RingKey], kek_id: &str) -> Result<&'a RingKey, SecretError> {
    keys.iter().find(|key| key.id == kek_id).ok_or_else(|| SecretError::UnknownKek { kek_id: kek_id.to_owned() })
}

fn wrap_with(key: &RingKey, data_key: &Key, aad: &[u8]) -> Result<WrappedKey, SecretError> {
    Ok(WrappedKey { kek_id: key.id.clone(), bytes: key.key.seal(data_key.as_bytes(), aad)? })
}

fn unwrap_with(keys: &[RingKey], wrapped: &WrappedKey, aad: &[u8]) -> Result<Key, SecretError> {
    let key = find(keys, &wrapped.kek_id)?;
    let opened = key.key.open(&wrapped.bytes, aad)?;
    Key::from_bytes(&opened).ok_or(SecretError::Crypto("a wrapped data key has the wrong length"))
}

/// A short, non-reversible name for a key: the first 8 bytes of SHA-256 over it, in hex.
fn fingerprint(key: &Key) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, key.as_bytes());
    digest.as_ref()[..8].iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The key file's format. Written whole to a temporary file, synced, then renamed.
#[derive(Serialize, Deserialize)]
struct KeyFileDocument {
    /// Newest first; the first is active.
    keys: Vec<KeyFileEntry>,
}

#[derive(Serialize, Deserialize)]
struct KeyFileEntry {
    id: String,
    /// Base64 of the 32 key bytes.
    key: String,
    created_at: String,
}

/// The embedded default: key-encryption keys in a file only the server's user can read.
pub struct KeyFile {
    path: PathBuf,
    state: RwLock<Vec<(RingKey, String)>>,
}

impl KeyFile {
    /// Opens the key file, creating it with one new key (mode 0600) if it does not exist.
    pub fn open_or_create(path: &Path) -> Result<KeyFile, SecretError> {
        let file_error =
            |error: std::io::Error| SecretError::KeyFile { path: path.to_owned(), reason: error.to_string() };
        let keys = match std::fs::read_to_string(path) {
            Ok(document) => parse_key_file(path, &document)?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let keys = vec![new_ring_key()?];
                write_key_file(path, &keys).map_err(file_error)?;
                keys
            }
            Err(error) => return Err(file_error(error)),
        };
        Ok(KeyFile { path: path.to_owned(), state: RwLock::new(keys) })
    }

    fn save(&self, keys: &[(RingKey, String)]) -> Result<(), SecretError> {
        write_key_file(&self.path, keys)
            .map_err(|error| SecretError::KeyFile { path: self.path.clone(), reason: error.to_string() })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<(RingKey, String)>> {
        self.state.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// How many keys the file holds (1, or 2 and more while a rotation is unfinished).
    pub fn key_count(&self) -> usize {
        self.read().len()
    }
}

fn new_ring_key() -> Result<(RingKey, String), SecretError> {
    let key = Key::generate()?;
    let id = format!("local:{}", fingerprint(&key));
    let created_at =
        time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
    Ok((RingKey { id, key }, created_at))
}

fn parse_key_file(path: &Path, document: &str) -> Result<Vec<(RingKey, String)>, SecretError> {
    let bad = |reason: &str| SecretError::KeyFile {
        path: path.to_owned(),
        reason: format!("{reason}; restore the file from a backup, or secrets cannot be decrypted"),
    };
    let parsed: KeyFileDocument = serde_json::from_str(document).map_err(|_| bad("it is not a valid key file"))?;
    if parsed.keys.is_empty() {
        return Err(bad("it holds no key"));
    }
    parsed
        .keys
        .into_iter()
        .map(|entry| {
            let bytes = STANDARD.decode(entry.key.as_bytes()).map_err(|_| bad("a key is not base64"))?;
            let key = Key::from_bytes(&bytes).ok_or_else(|| bad("a key is not 32 bytes"))?;
            Ok((RingKey { id: entry.id, key }, entry.created_at))
        })
        .collect()
}

fn write_key_file(path: &Path, keys: &[(RingKey, String)]) -> std::io::Result<()> {
    let document = KeyFileDocument {
        keys: keys
            .iter()
            .map(|(key, created_at)| KeyFileEntry {
                id: key.id.clone(),
                key: STANDARD.encode(key.key.as_bytes()),
                created_at: created_at.clone(),
            })
            .collect(),
    };
    let json = zeroize::Zeroizing::new(serde_json::to_vec_pretty(&document).map_err(std::io::Error::other)?);
    durable::write_private(path, &json)
}

#[async_trait]
impl KeyEncryptionKey for KeyFile {
    fn describe(&self) -> String {
        format!("key file {}", self.path.display())
    }

    async fn wrap(&self, data_key: &Key, aad: &[u8]) -> Result<WrappedKey, SecretError> {
        let keys = self.read();
        wrap_with(&keys[0].0, data_key, aad)
    }

    async fn unwrap(&self, wrapped: &WrappedKey, aad: &[u8]) -> Result<Key, SecretError> {
        let keys = self.read();
        let (key, _) = keys
            .iter()
            .find(|(key, _)| key.id == wrapped.kek_id)
            .ok_or_else(|| SecretError::UnknownKek { kek_id: wrapped.kek_id.clone() })?;
        unwrap_with(std::slice::from_ref(key), wrapped, aad)
    }

    async fn is_active(&self, wrapped: &WrappedKey) -> Result<bool, SecretError> {
        Ok(self.read()[0].0.id == wrapped.kek_id)
    }

    async fn begin_rotation(&self) -> Result<(), SecretError> {
        let mut keys = self.state.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut next = vec![new_ring_key()?];
        next.extend(keys.drain(..));
        // On disk first: nothing is wrapped under the new key before the file holds it.
        if let Err(error) = self.save(&next) {
            keys.extend(next.into_iter().skip(1));
            return Err(error);
        }
        *keys = next;
        Ok(())
    }

    async fn finish_rotation(&self) -> Result<(), SecretError> {
        let mut keys = self.state.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        if keys.len() == 1 {
            return Ok(());
        }
        let active = keys.remove(0);
        let kept = vec![active];
        self.save(&kept)?;
        *keys = kept;
        Ok(())
    }

    async fn rotation_pending(&self) -> Result<bool, SecretError> {
        Ok(self.key_count() > 1)
    }
}

/// Key-encryption keys from an environment variable: base64 keys separated by commas, the active
/// one first. To rotate, the operator puts a new key first and keeps the old one after it,
/// restarts, runs `terrarium secrets rotate-kek`, then removes the old key.
pub struct EnvKeys {
    variable: String,
    keys: Vec<RingKey>,
}

impl EnvKeys {
    pub fn from_value(variable: &str, value: &str) -> Result<EnvKeys, SecretError> {
        let bad = |reason: String| SecretError::EnvKek { variable: variable.to_owned(), reason };
        let keys = value
            .split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .enumerate()
            .map(|(index, part)| {
                let bytes = STANDARD.decode(part.as_bytes()).map_err(|_| {
                    bad(format!("key {} is not base64 (make one with `openssl rand -base64 32`)", index + 1))
                })?;
                let key = Key::from_bytes(&bytes).ok_or_else(|| {
                    bad(format!("key {} is not 32 bytes (make one with `openssl rand -base64 32`)", index + 1))
                })?;
                Ok(RingKey { id: format!("env:{}", fingerprint(&key)), key })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(bad("it is empty; set it to a key made with `openssl rand -base64 32`".to_owned()));
        }
        Ok(EnvKeys { variable: variable.to_owned(), keys })
    }
}

#[async_trait]
impl KeyEncryptionKey for EnvKeys {
    fn describe(&self) -> String {
        format!("environment variable {}", self.variable)
    }

    async fn wrap(&self, data_key: &Key, aad: &[u8]) -> Result<WrappedKey, SecretError> {
        wrap_with(&self.keys[0], data_key, aad)
    }

    async fn unwrap(&self, wrapped: &WrappedKey, aad: &[u8]) -> Result<Key, SecretError> {
        unwrap_with(&self.keys, wrapped, aad)
    }

    async fn is_active(&self, wrapped: &WrappedKey) -> Result<bool, SecretError> {
        Ok(self.keys[0].id == wrapped.kek_id)
    }

    async fn begin_rotation(&self) -> Result<(), SecretError> {
        // The operator supplies the new key; a rotation rewraps everything to the first key.
        Ok(())
    }

    async fn finish_rotation(&self) -> Result<(), SecretError> {
        Ok(())
    }

    async fn rotation_pending(&self) -> Result<bool, SecretError> {
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_key_file_is_private_and_survives_a_rotation() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kek.json");
        let file = KeyFile::open_or_create(&path).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let data_key = Key::generate().unwrap();
        let wrapped = file.wrap(&data_key, b"aad").await.unwrap();
        assert!(file.is_active(&wrapped).await.unwrap());

        file.begin_rotation().await.unwrap();
        assert!(!file.is_active(&wrapped).await.unwrap());
        assert!(file.rotation_pending().await.unwrap());
        // A restart in the middle of the rotation still unwraps the old and wraps with the new.
        let reopened = KeyFile::open_or_create(&path).unwrap();
        assert_eq!(reopened.unwrap(&wrapped, b"aad").await.unwrap().as_bytes(), data_key.as_bytes());
        let rewrapped = reopened.wrap(&data_key, b"aad").await.unwrap();
        assert_ne!(rewrapped.kek_id, wrapped.kek_id);

        reopened.finish_rotation().await.unwrap();
        assert_eq!(reopened.key_count(), 1);
        let reopened = KeyFile::open_or_create(&path).unwrap();
        assert!(matches!(reopened.unwrap(&wrapped, b"aad").await, Err(SecretError::UnknownKek { .. })));
        assert_eq!(reopened.unwrap(&rewrapped, b"aad").await.unwrap().as_bytes(), data_key.as_bytes());
    }

    #[tokio::test]
    async fn environment_keys_are_checked_and_the_first_is_active() {
        let old = STANDARD.encode([7u8; 32]);
        let new = STANDARD.encode([9u8; 32]);
        let before = EnvKeys::from_value("KEK", &old).unwrap();
        let data_key = Key::generate().unwrap();
        let wrapped = before.wrap(&data_key, b"aad").await.unwrap();
        let after = EnvKeys::from_value("KEK", &format!("{new},{old}")).unwrap();
        assert!(!after.is_active(&wrapped).await.unwrap());
        assert_eq!(after.unwrap(&wrapped, b"aad").await.unwrap().as_bytes(), data_key.as_bytes());

        for bad in ["", "not base64!", &STANDARD.encode([1u8; 16])] {
            let error = EnvKeys::from_value("KEK", bad).err().expect("refused").to_string();
            assert!(error.contains("KEK") && error.contains("openssl rand -base64 32"), "{error}");
        }
    }
}
