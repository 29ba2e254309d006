//! The provider's JSON Web Key Set: which published keys may verify which algorithms, cached,
//! and fetched again on an unknown `kid` at most once per [`REFETCH_INTERVAL`].

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;
use url::Url;

use crate::{OidcError, http};

/// The shortest time between two fetches caused by unknown key ids. Tokens with made-up kids
/// then cost the provider one request per interval, whoever sends them.
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(30);

/// One published verification key and the algorithms it may verify.
pub(crate) struct VerificationKey {
    kid: Option<String>,
    algorithms: Vec<Algorithm>,
    key: DecodingKey,
}

/// The usable keys of one JWKS document.
#[derive(Default)]
pub(crate) struct KeySet {
    keys: Vec<VerificationKey>,
}

/// The outcome of looking a token's key up.
pub(crate) enum Lookup<'a> {
    Found(&'a DecodingKey),
    /// No key has this kid (or, without a kid, no key fits the algorithm).
    Unknown,
    /// No kid and several keys fit: the provider must name one.
    Ambiguous,
}

impl KeySet {
    /// Keeps the signing keys whose type, curve, `alg`, `use` and `key_ops` allow one of `allowed`.
    /// Symmetric (`oct`) keys, encryption keys and key types this crate does not know are skipped,
    /// so a provider adding a new kind of key does not break sign-in.
    pub(crate) fn parse(document: &Value, allowed: &[Algorithm]) -> Result<KeySet, OidcError> {
        let invalid = || OidcError::InvalidResponse { endpoint: "JWKS" };
        let entries = document.get("keys").and_then(Value::as_array).ok_or_else(invalid)?;
        let keys = entries.iter().filter_map(|entry| usable_key(entry, allowed)).collect();
        Ok(KeySet { keys })
    }

    /// The key for a token with this `kid` and (already allowed) `alg`.
    pub(crate) fn find(&self, kid: Option<&str>, alg: Algorithm) -> Lookup<'_> {
        let mut fitting = self.keys.iter().filter(|key| key.algorithms.contains(&alg));
        match kid {
            Some(kid) => match fitting.find(|key| key.kid.as_deref() == Some(kid)) {
                Some(key) => Lookup::Found(&key.key),
                None => Lookup::Unknown,
            },
            None => match (fitting.next(), fitting.next()) {
                (Some(key), None) => Lookup::Found(&key.key),
                (None, _) => Lookup::Unknown,
                (Some(_), Some(_)) => Lookup::Ambiguous,
            },
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }
}

/// The verification key of one JWK entry, if it is a signing key this crate can use.
fn usable_key(entry: &Value, allowed: &[Algorithm]) -> Option<VerificationKey> {
    let text = |name: &str| entry.get(name).and_then(Value::as_str);
    if text("use").is_some_and(|usage| usage != "sig") {
        return None;
    }
    if let Some(operations) = entry.get("key_ops") {
        let operations = operations.as_array()?;
        if !operations.iter().any(|operation| operation.as_str() == Some("verify")) {
            return None;
        }
    }
    let (by_type, key): (&[Algorithm], DecodingKey) = match (text("kty")?, text("crv")) {
        ("RSA", _) => (
            &[
                Algorithm::RS256,
                Algorithm::RS384,
                Algorithm::RS512,
                Algorithm::PS256,
                Algorithm::PS384,
                Algorithm::PS512,
            ],
            DecodingKey::from_rsa_components(text("n")?, text("e")?).ok()?,
        ),
        ("EC", Some("P-256")) => (&[Algorithm::ES256], DecodingKey::from_ec_components(text("x")?, text("y")?).ok()?),
        ("EC", Some("P-384")) => (&[Algorithm::ES384], DecodingKey::from_ec_components(text("x")?, text("y")?).ok()?),
        ("OKP", Some("Ed25519")) => (&[Algorithm::EdDSA], DecodingKey::from_ed_components(text("x")?).ok()?),
        // `oct` (HMAC) keys and everything else.
        _ => return None,
    };
    let pinned = match text("alg") {
        Some(name) => Some(name.parse::<Algorithm>().ok()?),
        None => None,
    };
    let algorithms: Vec<Algorithm> = by_type
        .iter()
        .copied()
        .filter(|algorithm| allowed.contains(algorithm) && pinned.is_none_or(|pinned| pinned == *algorithm))
        .collect();
    if algorithms.is_empty() {
        return None;
    }
    Some(VerificationKey { kid: text("kid").map(str::to_owned), algorithms, key })
}

/// The cached key set of one provider.
pub(crate) struct JwksCache {
    jwks_uri: Url,
    allowed: Vec<Algorithm>,
    keys: RwLock<Arc<KeySet>>,
    /// When an unknown kid last caused a fetch. The lock also makes concurrent misses wait for
    /// one fetch rather than each sending their own.
    last_refetch: tokio::sync::Mutex<Option<Instant>>,
}

impl JwksCache {
    /// Fetches the key set once.
    pub(crate) async fn fetch(
        client: &reqwest::Client,
        jwks_uri: Url,
        allowed: Vec<Algorithm>,
    ) -> Result<JwksCache, OidcError> {
        let keys = fetch_key_set(client, &jwks_uri, &allowed).await?;
        Ok(JwksCache {
            jwks_uri,
            allowed,
            keys: RwLock::new(Arc::new(keys)),
            last_refetch: tokio::sync::Mutex::new(None),
        })
    }

    /// The current key set.
    pub(crate) fn current(&self) -> Arc<KeySet> {
        // A poisoned lock still holds a whole `Arc`: nothing is half-written under it.
        Arc::clone(&self.keys.read().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    /// Called when a token names a kid the current set lacks. Fetches the set again unless an
    /// unknown kid already did so within [`REFETCH_INTERVAL`], and returns the set to look in.
    pub(crate) async fn refetch_for_unknown_kid(
        &self,
        client: &reqwest::Client,
        seen: &Arc<KeySet>,
    ) -> Result<Arc<KeySet>, OidcError> {
        let mut last_refetch = self.last_refetch.lock().await;
        let current = self.current();
        // Another caller fetched while this one waited for the lock.
        if !Arc::ptr_eq(&current, seen) {
            return Ok(current);
        }
        if last_refetch.is_some_and(|at| at.elapsed() < REFETCH_INTERVAL) {
            return Ok(current);
        }
        *last_refetch = Some(Instant::now());
        let keys = Arc::new(fetch_key_set(client, &self.jwks_uri, &self.allowed).await?);
        tracing::info!(jwks_uri = %self.jwks_uri, n_keys = keys.len(), "refetched the identity provider's keys for an unknown key id");
        *self.keys.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::clone(&keys);
        Ok(keys)
    }
}

async fn fetch_key_set(client: &reqwest::Client, jwks_uri: &Url, allowed: &[Algorithm]) -> Result<KeySet, OidcError> {
    let document = http::get_json(client, jwks_uri, "JWKS").await?;
    KeySet::parse(&document, allowed)
}
