//! Vault's transit engine as the key-encryption key: data keys are wrapped and unwrapped by
//! Vault, and the KEK never leaves it. A rotation asks Vault for a new key version and rewraps
//! each data key under it; Vault keeps the old versions for decryption.

use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use secrets::SecretError;
use secrets::envelope::Key;
use secrets::kek::{KeyEncryptionKey, WrappedKey};
use serde_json::{Value, json};

use crate::{VaultClient, VaultError};

pub struct TransitKek {
    client: Arc<VaultClient>,
    mount: String,
    key: String,
}

impl TransitKek {
    pub fn new(client: Arc<VaultClient>, mount: &str, key: &str) -> TransitKek {
        TransitKek { client, mount: mount.to_owned(), key: key.to_owned() }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value, SecretError> {
        let what = format!("transit {path}");
        let url = self.client.url(&format!("{}/{path}", self.mount)).map_err(provider)?;
        let response = self.client.authorized(method, url, body.as_ref()).await.map_err(provider)?;
        let status = response.status().as_u16();
        if !(200..300).contains(&status) {
            return Err(provider(VaultError::Status { what, status }));
        }
        if status == 204 {
            return Ok(Value::Null);
        }
        response
            .json()
            .await
            .map_err(|_| provider(VaultError::Protocol { what, reason: "the body is not JSON".to_owned() }))
    }

    async fn latest_version(&self) -> Result<u64, SecretError> {
        let answer = self.call(reqwest::Method::GET, &format!("keys/{}", self.key), None).await?;
        answer["data"]["latest_version"]
            .as_u64()
            .ok_or_else(|| SecretError::Provider("transit key info has no latest_version".to_owned()))
    }
}

fn provider(error: VaultError) -> SecretError {
    SecretError::Provider(error.to_string())
}

/// `vault:v3:...` → 3.
fn ciphertext_version(ciphertext: &str) -> Option<u64> {
    ciphertext.strip_prefix("vault:v")?.split(':').next()?.parse().ok()
}

#[async_trait]
impl KeyEncryptionKey for TransitKek {
    fn describe(&self) -> String {
        format!("Vault transit key {}/{} at {}", self.mount, self.key, self.client.address())
    }

    async fn wrap(&self, data_key: &Key, _aad: &[u8]) -> Result<WrappedKey, SecretError> {
        // Transit binds context only for derived keys; the values themselves stay bound to their
        // place by the data-level associated data.
        let body = json!({ "plaintext": STANDARD.encode(data_key.as_bytes()) });
        let answer = self.call(reqwest::Method::POST, &format!("encrypt/{}", self.key), Some(body)).await?;
        let ciphertext = answer["data"]["ciphertext"]
            .as_str()
            .ok_or_else(|| SecretError::Provider("transit encrypt returned no ciphertext".to_owned()))?;
        let version = ciphertext_version(ciphertext)
            .ok_or_else(|| SecretError::Provider("transit ciphertext has no version prefix".to_owned()))?;
        Ok(WrappedKey { kek_id: format!("transit:{}:v{version}", self.key), bytes: ciphertext.as_bytes().to_vec() })
    }

    async fn unwrap(&self, wrapped: &WrappedKey, _aad: &[u8]) -> Result<Key, SecretError> {
        let ciphertext = std::str::from_utf8(&wrapped.bytes)
            .map_err(|_| SecretError::Provider("a transit-wrapped key is not text".to_owned()))?;
        let body = json!({ "ciphertext": ciphertext });
        let answer = self.call(reqwest::Method::POST, &format!("decrypt/{}", self.key), Some(body)).await?;
        let plaintext = answer["data"]["plaintext"]
            .as_str()
            .and_then(|text| STANDARD.decode(text).ok())
            .ok_or_else(|| SecretError::Provider("transit decrypt returned no plaintext".to_owned()))?;
        let plaintext = zeroize::Zeroizing::new(plaintext);
        Key::from_bytes(&plaintext).ok_or(SecretError::Crypto("an unwrapped data key has the wrong length"))
    }

    async fn is_active(&self, wrapped: &WrappedKey) -> Result<bool, SecretError> {
        let version = std::str::from_utf8(&wrapped.bytes).ok().and_then(ciphertext_version);
        Ok(version == Some(self.latest_version().await?))
    }

    async fn begin_rotation(&self) -> Result<(), SecretError> {
        self.call(reqwest::Method::POST, &format!("keys/{}/rotate", self.key), Some(json!({}))).await?;
        Ok(())
    }

    async fn finish_rotation(&self) -> Result<(), SecretError> {
        // Vault keeps old key versions; raising min_decryption_version is the operator's call.
        Ok(())
    }

    async fn rotation_pending(&self) -> Result<bool, SecretError> {
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::ciphertext_version;

    #[test]
    fn ciphertext_versions_are_read_from_the_prefix() {
        assert_eq!(ciphertext_version("vault:v1:abc"), Some(1));
        assert_eq!(ciphertext_version("vault:v12:abc"), Some(12));
        assert_eq!(ciphertext_version("v1:abc"), None);
        assert_eq!(ciphertext_version("vault:vx:abc"), None);
    }
}
