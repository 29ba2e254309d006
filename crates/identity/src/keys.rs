//! The platform's Ed25519 signing keys: one active key that signs, retired keys that still verify.
//!
//! Each key is named by its RFC 7638 thumbprint (`kid`). Rotation makes a new active key and
//! keeps the old one's public half for verification until it is pruned; a retired key's
//! private half is dropped at once, since nothing signs with it again. The ring is saved as a
//! JSON document that the caller stores (mode 0600: it holds the active private key) and
//! published as a JWKS (public keys only).

use std::fmt;

use aws_lc_rs::digest;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{DecodingKey, EncodingKey};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The `format` of key ring documents this version reads and writes.
pub const KEY_RING_FORMAT: &str = "terrarium-keyring/1";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the system random generator failed")]
    Random,
    #[error("the key ring document is not valid (line {line}, column {column})")]
    Document { line: usize, column: usize },
    #[error("the key ring document has format {found:?}; this version reads {KEY_RING_FORMAT:?}")]
    UnsupportedFormat { found: String },
    #[error("key {kid:?} in the key ring document is not a valid Ed25519 key")]
    InvalidKey { kid: String },
    #[error("key {kid:?} in the key ring document does not match its kid")]
    KidMismatch { kid: String },
    #[error("key {kid:?} appears twice in the key ring document")]
    DuplicateKey { kid: String },
    #[error("key {kid:?} in the key ring document has a time that is not RFC 3339")]
    InvalidTime { kid: String },
    #[error("signing the token failed")]
    Signing,
}

/// A public key that verifies tokens, with its thumbprint.
struct VerificationKey {
    kid: String,
    /// The raw 32-byte Ed25519 public key (the JWK's `x`).
    public_key: Vec<u8>,
    created_at: OffsetDateTime,
    decoding_key: DecodingKey,
}

impl VerificationKey {
    fn new(public_key: Vec<u8>, created_at: OffsetDateTime) -> VerificationKey {
        VerificationKey {
            kid: thumbprint(&public_key),
            decoding_key: DecodingKey::from_ed_der(&public_key),
            public_key,
            created_at,
        }
    }
}

/// The key that signs new tokens.
struct ActiveKey {
    public: VerificationKey,
    /// The private key as a PKCS#8 document, which is what jsonwebtoken signs with.
    encoding_key: EncodingKey,
}

impl ActiveKey {
    fn generate(created_at: OffsetDateTime) -> Result<ActiveKey, KeyError> {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|_| KeyError::Random)?;
        // A document aws-lc has just generated always parses; were it not to, generation failed.
        ActiveKey::from_pkcs8(pkcs8.as_ref(), created_at).ok_or(KeyError::Random)
    }

    /// Parses a PKCS#8 Ed25519 private key (v1 or v2), or `None` if it is not one.
    fn from_pkcs8(pkcs8: &[u8], created_at: OffsetDateTime) -> Option<ActiveKey> {
        let key_pair = Ed25519KeyPair::from_pkcs8(pkcs8).ok()?;
        let public_key = key_pair.public_key().as_ref().to_vec();
        Some(ActiveKey {
            public: VerificationKey::new(public_key, created_at),
            encoding_key: EncodingKey::from_ed_der(pkcs8),
        })
    }
}

/// A key that no longer signs but still verifies the tokens it signed.
struct RetiredKey {
    public: VerificationKey,
    retired_at: OffsetDateTime,
}

/// The platform's signing keys. `Debug` shows only the kids.
pub struct KeyRing {
    active: ActiveKey,
    /// Oldest retirement first.
    retired: Vec<RetiredKey>,
}

impl KeyRing {
    /// A ring with one fresh key.
    pub fn generate() -> Result<KeyRing, KeyError> {
        Ok(KeyRing { active: ActiveKey::generate(now())?, retired: Vec::new() })
    }

    /// Makes a new active key. The previous one keeps verifying until it is pruned, so keep it
    /// at least as long as the longest lifetime of a token it signed.
    pub fn rotate(&mut self) -> Result<(), KeyError> {
        let now = now();
        let previous = std::mem::replace(&mut self.active, ActiveKey::generate(now)?);
        self.retired.push(RetiredKey { public: previous.public, retired_at: now });
        Ok(())
    }

    /// Drops the retired keys that were retired before `cutoff` and returns how many.
    pub fn prune_retired_before(&mut self, cutoff: OffsetDateTime) -> usize {
        let n_before = self.retired.len();
        self.retired.retain(|key| key.retired_at >= cutoff);
        n_before - self.retired.len()
    }

    /// Drops every retired key and returns how many: tokens they signed stop verifying.
    pub fn prune(&mut self) -> usize {
        let n_pruned = self.retired.len();
        self.retired.clear();
        n_pruned
    }

    /// The kid of the key that signs new tokens.
    pub fn active_kid(&self) -> &str {
        &self.active.public.kid
    }

    /// The kids of every key that verifies, the active one first.
    pub fn kids(&self) -> Vec<&str> {
        self.verification_keys().map(|key| key.kid.as_str()).collect()
    }

    /// The public keys as a JSON Web Key Set (RFC 7517, OKP keys as in RFC 8037).
    pub fn jwks(&self) -> serde_json::Value {
        let keys: Vec<serde_json::Value> = self
            .verification_keys()
            .map(|key| {
                serde_json::json!({
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "x": URL_SAFE_NO_PAD.encode(&key.public_key),
                    "kid": key.kid,
                    "alg": "EdDSA",
                    "use": "sig",
                })
            })
            .collect();
        serde_json::json!({ "keys": keys })
    }

    /// The ring as a JSON document, with the active private key in it: store it readable by
    /// the platform only.
    pub fn to_json(&self) -> String {
        let document = KeyRingDocument {
            format: KEY_RING_FORMAT.to_owned(),
            active: ActiveKeyEntry {
                kid: self.active.public.kid.clone(),
                created_at: format_time(self.active.public.created_at),
                private_key_pkcs8: URL_SAFE_NO_PAD.encode(self.active.encoding_key.as_bytes()),
            },
            retired: self
                .retired
                .iter()
                .map(|key| RetiredKeyEntry {
                    kid: key.public.kid.clone(),
                    created_at: format_time(key.public.created_at),
                    retired_at: format_time(key.retired_at),
                    public_key: URL_SAFE_NO_PAD.encode(&key.public.public_key),
                })
                .collect(),
        };
        serde_json::to_string_pretty(&document).expect("a key ring document always serializes")
    }

    /// Reads a document written by [`KeyRing::to_json`]. Every key is checked against its kid.
    pub fn from_json(document: &str) -> Result<KeyRing, KeyError> {
        let document: KeyRingDocument = serde_json::from_str(document)
            .map_err(|error| KeyError::Document { line: error.line(), column: error.column() })?;
        if document.format != KEY_RING_FORMAT {
            return Err(KeyError::UnsupportedFormat { found: document.format });
        }

        let entry = document.active;
        let invalid_key = || KeyError::InvalidKey { kid: entry.kid.clone() };
        let pkcs8 = URL_SAFE_NO_PAD.decode(&entry.private_key_pkcs8).map_err(|_| invalid_key())?;
        let created_at = parse_time(&entry.created_at, &entry.kid)?;
        let active = ActiveKey::from_pkcs8(&pkcs8, created_at).ok_or_else(invalid_key)?;
        if active.public.kid != entry.kid {
            return Err(KeyError::KidMismatch { kid: entry.kid });
        }

        let mut ring = KeyRing { active, retired: Vec::with_capacity(document.retired.len()) };
        for entry in document.retired {
            let public_key = URL_SAFE_NO_PAD
                .decode(&entry.public_key)
                .ok()
                .filter(|public_key| public_key.len() == ED25519_PUBLIC_KEY_LEN)
                .ok_or_else(|| KeyError::InvalidKey { kid: entry.kid.clone() })?;
            let public = VerificationKey::new(public_key, parse_time(&entry.created_at, &entry.kid)?);
            if public.kid != entry.kid {
                return Err(KeyError::KidMismatch { kid: entry.kid });
            }
            if ring.kids().contains(&entry.kid.as_str()) {
                return Err(KeyError::DuplicateKey { kid: entry.kid });
            }
            ring.retired.push(RetiredKey { public, retired_at: parse_time(&entry.retired_at, &entry.kid)? });
        }
        Ok(ring)
    }

    /// The active key's kid and private key.
    pub(crate) fn signing_key(&self) -> (&str, &EncodingKey) {
        (&self.active.public.kid, &self.active.encoding_key)
    }

    /// The public key named `kid`, if the ring has it.
    pub(crate) fn decoding_key(&self, kid: &str) -> Option<&DecodingKey> {
        self.verification_keys().find(|key| key.kid == kid).map(|key| &key.decoding_key)
    }

    fn verification_keys(&self) -> impl Iterator<Item = &VerificationKey> {
        std::iter::once(&self.active.public).chain(self.retired.iter().map(|key| &key.public))
    }
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("KeyRing")
            .field("active", &self.active.public.kid)
            .field("retired", &self.retired.iter().map(|key| &key.public.kid).collect::<Vec<_>>())
            .finish()
    }
}

const ED25519_PUBLIC_KEY_LEN: usize = 32;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyRingDocument {
    format: String,
    active: ActiveKeyEntry,
    retired: Vec<RetiredKeyEntry>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ActiveKeyEntry {
    kid: String,
    created_at: String,
    /// Base64url of the PKCS#8 document.
    private_key_pkcs8: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RetiredKeyEntry {
    kid: String,
    created_at: String,
    retired_at: String,
    /// Base64url of the raw public key.
    public_key: String,
}

/// The RFC 7638 thumbprint of an Ed25519 public key: SHA-256 over the JWK's required members
/// in lexicographic order without whitespace, base64url-encoded.
fn thumbprint(public_key: &[u8]) -> String {
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, URL_SAFE_NO_PAD.encode(public_key));
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, canonical.as_bytes()))
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc().replace_nanosecond(0).expect("zero nanoseconds is valid")
}

fn format_time(time: OffsetDateTime) -> String {
    time.format(&Rfc3339).expect("RFC 3339 formatting of a UTC time")
}

fn parse_time(text: &str, kid: &str) -> Result<OffsetDateTime, KeyError> {
    OffsetDateTime::parse(text, &Rfc3339).map_err(|_| KeyError::InvalidTime { kid: kid.to_owned() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_jwks_lists_public_okp_keys_only() {
        let mut ring = KeyRing::generate().unwrap();
        ring.rotate().unwrap();
        let jwks = ring.jwks();
        let keys = jwks["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 2);
        for key in keys {
            let mut members: Vec<&str> = key.as_object().unwrap().keys().map(String::as_str).collect();
            members.sort();
            assert_eq!(members, ["alg", "crv", "kid", "kty", "use", "x"], "no private member such as d");
            assert_eq!(key["kty"], "OKP");
            assert_eq!(key["crv"], "Ed25519");
            assert_eq!(key["alg"], "EdDSA");
            assert_eq!(key["use"], "sig");
            let x = URL_SAFE_NO_PAD.decode(key["x"].as_str().unwrap()).unwrap();
            assert_eq!(x.len(), ED25519_PUBLIC_KEY_LEN);
            assert_eq!(key["kid"], thumbprint(&x));
        }
        assert_eq!(keys[0]["kid"], ring.active_kid(), "the active key comes first");
    }

    #[test]
    fn the_kid_is_the_rfc_7638_thumbprint() {
        // RFC 8037 appendix A.3: the thumbprint of its example Ed25519 public key.
        let x = URL_SAFE_NO_PAD.decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo").unwrap();
        assert_eq!(thumbprint(&x), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
    }

    #[test]
    fn rotation_keeps_the_old_key_for_verification_until_pruned() {
        let mut ring = KeyRing::generate().unwrap();
        let first = ring.active_kid().to_owned();
        ring.rotate().unwrap();
        let second = ring.active_kid().to_owned();
        assert_ne!(first, second);
        assert_eq!(ring.kids(), [second.as_str(), first.as_str()]);
        assert!(ring.decoding_key(&first).is_some());

        assert_eq!(ring.prune_retired_before(now() - time::Duration::hours(1)), 0);
        assert_eq!(ring.kids().len(), 2);
        assert_eq!(ring.prune_retired_before(now() + time::Duration::hours(1)), 1);
        assert_eq!(ring.kids(), [second.as_str()]);

        ring.rotate().unwrap();
        ring.rotate().unwrap();
        assert_eq!(ring.prune(), 2);
        assert_eq!(ring.kids().len(), 1);
    }

    #[test]
    fn the_document_round_trips_and_keeps_retired_keys_public_only() {
        let mut ring = KeyRing::generate().unwrap();
        ring.rotate().unwrap();
        let document = ring.to_json();
        let loaded = KeyRing::from_json(&document).unwrap();
        assert_eq!(loaded.kids(), ring.kids());
        assert_eq!(loaded.jwks(), ring.jwks());
        assert_eq!(loaded.to_json(), document);

        let value: serde_json::Value = serde_json::from_str(&document).unwrap();
        assert_eq!(value["format"], KEY_RING_FORMAT);
        assert!(value["active"]["private_key_pkcs8"].is_string());
        assert!(value["retired"][0].get("private_key_pkcs8").is_none());
        assert!(value["retired"][0]["public_key"].is_string());
    }

    #[test]
    fn debug_output_shows_kids_and_no_key_material() {
        let ring = KeyRing::generate().unwrap();
        let debug = format!("{ring:?}");
        assert!(debug.contains(ring.active_kid()));
        let document: serde_json::Value = serde_json::from_str(&ring.to_json()).unwrap();
        assert!(!debug.contains(document["active"]["private_key_pkcs8"].as_str().unwrap()));
    }

    #[test]
    fn broken_documents_are_refused_with_the_reason() {
        let ring = KeyRing::generate().unwrap();
        let good: serde_json::Value = serde_json::from_str(&ring.to_json()).unwrap();
        let edited = |edit: &dyn Fn(&mut serde_json::Value)| {
            let mut document = good.clone();
            edit(&mut document);
            KeyRing::from_json(&document.to_string())
        };
        let mut other = KeyRing::generate().unwrap();
        other.rotate().unwrap();
        let other: serde_json::Value = serde_json::from_str(&other.to_json()).unwrap();

        assert!(matches!(KeyRing::from_json("{"), Err(KeyError::Document { .. })));
        assert!(matches!(
            edited(&|document| document["format"] = "terrarium-keyring/9".into()),
            Err(KeyError::UnsupportedFormat { .. })
        ));
        assert!(matches!(
            edited(&|document| document["active"]["private_key_pkcs8"] = "AAAA".into()),
            Err(KeyError::InvalidKey { .. })
        ));
        assert!(matches!(
            edited(&|document| document["active"]["kid"] = "some-other-kid".into()),
            Err(KeyError::KidMismatch { .. })
        ));
        assert!(matches!(
            edited(&|document| document["active"]["created_at"] = "yesterday".into()),
            Err(KeyError::InvalidTime { .. })
        ));
        assert!(matches!(
            edited(&|document| document["retired"] = other["retired"].clone()),
            Ok(ring) if ring.kids().len() == 2
        ));
        assert!(matches!(
            edited(&|document| {
                let mut retired = other["retired"][0].clone();
                retired["public_key"] = "AAAA".into();
                document["retired"] = serde_json::json!([retired]);
            }),
            Err(KeyError::InvalidKey { .. })
        ));
        assert!(matches!(
            edited(&|document| {
                let retired = other["retired"][0].clone();
                document["retired"] = serde_json::json!([retired, retired]);
            }),
            Err(KeyError::DuplicateKey { .. })
        ));
    }
}
