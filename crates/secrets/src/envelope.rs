//! AES-256-GCM sealing with random nonces, used at both levels of the envelope: secret values
//! under a namespace's data key, and data keys under the key-encryption key.
//!
//! A sealed blob is `nonce (12 bytes) || ciphertext || tag (16 bytes)`. The associated data binds
//! each blob to where it belongs (namespace, app, secret name), so a row copied to another
//! tenant or another secret no longer opens.

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use zeroize::Zeroizing;

use crate::SecretError;

/// Bytes of an AES-256 key.
pub const KEY_LEN: usize = 32;

/// A 256-bit key: a namespace's data key or a key-encryption key. Wiped when dropped.
#[derive(Clone)]
pub struct Key(Zeroizing<[u8; KEY_LEN]>);

impl Key {
    /// A fresh key from the system's cryptographic random generator.
    pub fn generate() -> Result<Key, SecretError> {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        aws_lc_rs::rand::fill(bytes.as_mut()).map_err(|_| SecretError::Crypto("the random generator failed"))?;
        Ok(Key(bytes))
    }

    pub fn from_bytes(bytes: &[u8]) -> Option<Key> {
        let array: [u8; KEY_LEN] = bytes.try_into().ok()?;
        Some(Key(Zeroizing::new(array)))
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_ref()
    }

    /// A key for another use, derived from this one with HKDF-SHA256: `info` names the use and
    /// the place (`terrarium-derived-v1\0<namespace>\0<purpose>`), so each gets its own key and
    /// none reveals this one.
    pub fn derive(&self, info: &[u8]) -> Result<Key, SecretError> {
        use aws_lc_rs::hkdf::{HKDF_SHA256, Salt};
        let failed = |_| SecretError::Crypto("deriving a key failed");
        let prk = Salt::new(HKDF_SHA256, b"terrarium").extract(self.as_bytes());
        let info = [info];
        let okm = prk.expand(&info, HKDF_SHA256).map_err(failed)?;
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        okm.fill(bytes.as_mut()).map_err(failed)?;
        Ok(Key(bytes))
    }

    /// Encrypts and authenticates `plaintext` with `aad`.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, SecretError> {
        let key = RandomizedNonceKey::new(&AES_256_GCM, self.as_bytes())
            .map_err(|_| SecretError::Crypto("the key was refused"))?;
        let mut in_out = plaintext.to_vec();
        let nonce = key
            .seal_in_place_append_tag(Aad::from(aad), &mut in_out)
            .map_err(|_| SecretError::Crypto("encryption failed"))?;
        let mut sealed = Vec::with_capacity(NONCE_LEN + in_out.len());
        sealed.extend_from_slice(nonce.as_ref());
        sealed.extend_from_slice(&in_out);
        Ok(sealed)
    }

    /// Decrypts a blob from [`Key::seal`]; fails if it was altered, sealed under another key, or
    /// sealed with other associated data.
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, SecretError> {
        let key = RandomizedNonceKey::new(&AES_256_GCM, self.as_bytes())
            .map_err(|_| SecretError::Crypto("the key was refused"))?;
        if sealed.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return Err(SecretError::Crypto("the sealed value is truncated"));
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SecretError::Crypto("bad nonce"))?;
        let mut in_out = Zeroizing::new(ciphertext.to_vec());
        let plaintext_len = key
            .open_in_place(nonce, Aad::from(aad), &mut in_out)
            .map_err(|_| SecretError::Crypto("decryption failed: wrong key or altered data"))?
            .len();
        in_out.truncate(plaintext_len);
        Ok(in_out)
    }
}

/// Associated data of a secret value: its namespace, app and name.
pub fn secret_aad(namespace: &str, app: &str, name: &str) -> Vec<u8> {
    format!("terrarium-secret-v1\0{namespace}\0{app}\0{name}").into_bytes()
}

/// Associated data of a namespace's wrapped data key.
pub fn data_key_aad(namespace: &str, version: i64) -> Vec<u8> {
    format!("terrarium-data-key-v1\0{namespace}\0{version}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_keys_differ_by_use_and_repeat_for_the_same_one() {
        let key = Key::generate().unwrap();
        let a = key.derive(b"terrarium-derived-v1\0growth\0sql app-poll").unwrap();
        let again = key.derive(b"terrarium-derived-v1\0growth\0sql app-poll").unwrap();
        let b = key.derive(b"terrarium-derived-v1\0growth\0sql app-todo").unwrap();
        assert_eq!(a.as_bytes(), again.as_bytes());
        assert_ne!(a.as_bytes(), b.as_bytes());
        assert_ne!(a.as_bytes(), key.as_bytes());
        let other = Key::generate().unwrap().derive(b"terrarium-derived-v1\0growth\0sql app-poll").unwrap();
        assert_ne!(a.as_bytes(), other.as_bytes());
    }

    #[test]
    fn sealed_values_open_only_with_their_key_and_place() {
        let key = Key::generate().unwrap();
        let aad = secret_aad("growth", "where2eat", "MAPS_KEY");
        let sealed = key.seal(b"value-1", &aad).unwrap();
        assert!(!sealed.windows(7).any(|window| window == b"value-1"), "the value is not stored in clear");
        assert_eq!(&key.open(&sealed, &aad).unwrap()[..], b"value-1");

        let other_key = Key::generate().unwrap();
        assert!(other_key.open(&sealed, &aad).is_err());
        // The same bytes under another tenant, app or name do not open.
        assert!(key.open(&sealed, &secret_aad("finance", "where2eat", "MAPS_KEY")).is_err());
        assert!(key.open(&sealed, &secret_aad("growth", "other", "MAPS_KEY")).is_err());
        assert!(key.open(&sealed, &secret_aad("growth", "where2eat", "OTHER")).is_err());
        let mut altered = sealed.clone();
        let last = altered.len() - 1;
        altered[last] ^= 1;
        assert!(key.open(&altered, &aad).is_err());
        assert!(key.open(&sealed[..10], &aad).is_err());
    }

    #[test]
    fn every_seal_uses_a_fresh_nonce() {
        let key = Key::generate().unwrap();
        let first = key.seal(b"same", b"aad").unwrap();
        let second = key.seal(b"same", b"aad").unwrap();
        assert_ne!(first, second);
    }
}
