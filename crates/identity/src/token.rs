//! Platform tokens: minted for one subject and one audience, signed with the active key,
//! and verified strictly (EdDSA only, a known `kid`, exact issuer and audience, 60 s leeway).
//!
//! Verification reads the header itself before any cryptography and refuses everything this
//! platform never produces: `alg: none`, other algorithms (so an HMAC keyed with the public
//! key cannot pass), keys carried in the token (`jwk`) or fetched from elsewhere (`jku`,
//! `x5u`, `x5c`), critical extensions, and unknown kids. Only then does jsonwebtoken check the
//! signature with the ring's key for that kid, pinned to EdDSA whatever the header says.

#[cfg(test)]
mod tests;

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Header, Validation};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::keys::{KeyError, KeyRing};

/// How far clocks may disagree when checking `exp`, `nbf` and `iat`.
pub const LEEWAY_SECONDS: i64 = 60;

/// Tokens longer than this are refused before they are decoded.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// The grant type of OAuth 2.0 Token Exchange (RFC 8693).
pub const TOKEN_EXCHANGE_GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// Why a token was refused. Each variant names one check; the messages say nothing of the
/// token's contents, so they can be shown to whoever sent it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is too large")]
    TooLarge,
    #[error("the token is not a well-formed signed JWT")]
    Malformed,
    #[error("unsigned tokens are refused")]
    AlgorithmNone,
    #[error("the token's signing algorithm is not allowed")]
    AlgorithmNotAllowed,
    #[error("tokens that carry their own key are refused")]
    EmbeddedKey,
    #[error("tokens that point to keys or certificates elsewhere are refused")]
    KeyReference,
    #[error("tokens with critical header extensions are refused")]
    CriticalHeader,
    #[error("the token has no signature")]
    EmptySignature,
    #[error("the token names no signing key")]
    MissingKeyId,
    #[error("the token was signed with a key this platform does not know")]
    UnknownKeyId,
    #[error("the token's signature is invalid")]
    BadSignature,
    #[error("the token's claims are malformed")]
    InvalidClaims,
    #[error("the token was issued by someone else")]
    WrongIssuer,
    #[error("the token is not meant for {expected}")]
    WrongAudience { expected: String },
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token's issue time is in the future")]
    IssuedInFuture,
}

/// What a token is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenUse {
    /// A platform access token, the result of a token exchange.
    Access,
    /// A token the gateway hands to one app for one call; its audience is `app:<namespace>/<name>`.
    App,
    /// A token the platform attaches to an app's request to an internal API: the subject is the
    /// app (`app:<namespace>/<name>`), the audience the API's.
    Service,
}

/// The party acting on the subject's behalf (RFC 8693 `act`), such as the gateway.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub sub: String,
}

/// What a token says about its subject. The issuer adds `iss`, `iat`, `nbf`, `exp` and `jti`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenClaims {
    pub sub: String,
    /// Exactly one audience, such as `app:team-a/expenses`.
    pub aud: String,
    pub token_use: TokenUse,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Actor>,
}

/// The claims of a token that passed every check. Only [`TokenIssuer::verify`] makes one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct VerifiedClaims {
    pub iss: String,
    /// Times are seconds since the Unix epoch (JWT NumericDate).
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub jti: String,
    #[serde(flatten)]
    pub claims: TokenClaims,
}

/// The full claim set of a token whose signature is good but whose claims are not checked yet.
#[derive(Deserialize)]
struct SignedClaims {
    iss: String,
    iat: i64,
    nbf: i64,
    exp: i64,
    jti: String,
    #[serde(flatten)]
    claims: TokenClaims,
}

/// The full claim set of a token being minted.
#[derive(Serialize)]
struct MintedClaims<'a> {
    iss: &'a str,
    iat: i64,
    nbf: i64,
    exp: i64,
    jti: String,
    #[serde(flatten)]
    claims: &'a TokenClaims,
}

/// Mints and verifies the platform's tokens.
#[derive(Debug)]
pub struct TokenIssuer {
    /// The platform's issuer URL, such as `https://terrarium.example.com`; `iss` must equal it.
    pub issuer: String,
    pub ring: KeyRing,
}

impl TokenIssuer {
    pub fn new(issuer: impl Into<String>, ring: KeyRing) -> TokenIssuer {
        TokenIssuer { issuer: issuer.into(), ring }
    }

    /// A token for `claims`, valid from now for `lifetime`, signed with the active key.
    pub fn mint(&self, claims: TokenClaims, lifetime: Duration) -> Result<String, KeyError> {
        self.mint_at(claims, lifetime, OffsetDateTime::now_utc())
    }

    /// A token for `claims`, valid from `now` for `lifetime`, signed with the active key.
    pub fn mint_at(&self, claims: TokenClaims, lifetime: Duration, now: OffsetDateTime) -> Result<String, KeyError> {
        let now = now.unix_timestamp();
        let lifetime = i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX);
        let mut jti = [0u8; 16];
        aws_lc_rs::rand::fill(&mut jti).map_err(|_| KeyError::Random)?;
        let minted = MintedClaims {
            iss: &self.issuer,
            iat: now,
            nbf: now,
            exp: now.saturating_add(lifetime),
            jti: URL_SAFE_NO_PAD.encode(jti),
            claims: &claims,
        };
        let (kid, key) = self.ring.signing_key();
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(kid.to_owned());
        install_crypto_provider();
        jsonwebtoken::encode(&header, &minted, key).map_err(|_| KeyError::Signing)
    }

    /// Checks `token` completely and returns its claims: the header (before any cryptography),
    /// the signature with the ring's key for its kid, then issuer, audience and times at `now`.
    pub fn verify(
        &self,
        token: &str,
        expected_audience: &str,
        now: OffsetDateTime,
    ) -> Result<VerifiedClaims, TokenError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::TooLarge);
        }
        let parts: Vec<&str> = token.split('.').collect();
        let [header, _payload, signature] = parts[..] else {
            return Err(TokenError::Malformed);
        };
        let kid = check_header(header)?;
        // The same header as jsonwebtoken will read it: this refuses, for one, duplicate members,
        // which the check above would have read as the last of them.
        jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if signature.is_empty() {
            return Err(TokenError::EmptySignature);
        }
        let kid = kid.ok_or(TokenError::MissingKeyId)?;
        let key = self.ring.decoding_key(&kid).ok_or(TokenError::UnknownKeyId)?;

        // jsonwebtoken checks the signature only: the claims are checked below against `now`
        // rather than the system clock, each with its own error.
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        install_crypto_provider();
        let token_data =
            jsonwebtoken::decode::<SignedClaims>(token, key, &validation).map_err(|error| match error.kind() {
                ErrorKind::InvalidSignature => TokenError::BadSignature,
                ErrorKind::Json(_) => TokenError::InvalidClaims,
                _ => TokenError::Malformed,
            })?;
        let signed = token_data.claims;

        if signed.iss != self.issuer {
            return Err(TokenError::WrongIssuer);
        }
        if signed.claims.aud != expected_audience {
            return Err(TokenError::WrongAudience { expected: expected_audience.to_owned() });
        }
        let now = now.unix_timestamp();
        if now >= signed.exp.saturating_add(LEEWAY_SECONDS) {
            return Err(TokenError::Expired);
        }
        if now.saturating_add(LEEWAY_SECONDS) < signed.nbf {
            return Err(TokenError::NotYetValid);
        }
        if now.saturating_add(LEEWAY_SECONDS) < signed.iat {
            return Err(TokenError::IssuedInFuture);
        }
        Ok(VerifiedClaims {
            iss: signed.iss,
            iat: signed.iat,
            nbf: signed.nbf,
            exp: signed.exp,
            jti: signed.jti,
            claims: signed.claims,
        })
    }

    /// The platform's public keys as a JWKS, served at `/.well-known/jwks.json`.
    pub fn jwks(&self) -> serde_json::Value {
        self.ring.jwks()
    }

    /// The OIDC-style discovery document of this issuer.
    pub fn discovery_document(&self) -> serde_json::Value {
        discovery_document(&self.issuer)
    }
}

/// Refuses every header this platform never produces and returns its kid, if it has one.
fn check_header(encoded: &str) -> Result<Option<String>, TokenError> {
    let decoded = URL_SAFE_NO_PAD.decode(encoded).map_err(|_| TokenError::Malformed)?;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&decoded).map_err(|_| TokenError::Malformed)?;

    let alg = header.get("alg").and_then(|alg| alg.as_str()).ok_or(TokenError::Malformed)?;
    if alg.eq_ignore_ascii_case("none") {
        return Err(TokenError::AlgorithmNone);
    }
    if alg != "EdDSA" {
        return Err(TokenError::AlgorithmNotAllowed);
    }
    if header.contains_key("jwk") {
        return Err(TokenError::EmbeddedKey);
    }
    if ["jku", "x5u", "x5c"].iter().any(|name| header.contains_key(*name)) {
        return Err(TokenError::KeyReference);
    }
    if header.contains_key("crit") {
        return Err(TokenError::CriticalHeader);
    }
    match header.get("kid") {
        None => Ok(None),
        Some(serde_json::Value::String(kid)) => Ok(Some(kid.clone())),
        Some(_) => Err(TokenError::Malformed),
    }
}

/// The OIDC-style discovery document (`/.well-known/openid-configuration`) of `issuer`.
pub fn discovery_document(issuer: &str) -> serde_json::Value {
    let base = issuer.trim_end_matches('/');
    serde_json::json!({
        "issuer": issuer,
        "jwks_uri": format!("{base}/.well-known/jwks.json"),
        "token_endpoint": format!("{base}/oauth/token"),
        "grant_types_supported": [TOKEN_EXCHANGE_GRANT_TYPE],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["EdDSA"],
    })
}

/// Selects aws-lc-rs as jsonwebtoken's process-wide crypto provider. jsonwebtoken picks it
/// from its features alone, but panics if another crate in the build also enables its
/// RustCrypto backend, so name it outright; a provider installed earlier stays.
fn install_crypto_provider() {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
    });
}
