//! Validation of the provider's signed JWTs (ID tokens and access tokens), in three steps:
//! the header is read and refused if it asks for anything but a published algorithm and a
//! published key; jsonwebtoken checks the signature with that key, pinned to that algorithm;
//! then the claims are checked here against the expectations and a given `now`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

use crate::{ExternalIdentity, OidcError};

/// How far clocks may disagree when checking `exp`, `nbf` and `iat`.
pub const LEEWAY_SECONDS: i64 = 60;

/// Tokens longer than this are refused before they are decoded. Access tokens with many
/// groups run to a few kilobytes.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// The claims of a token whose signature verified.
pub(crate) type Claims = Map<String, Value>;

/// What the header allows: the algorithm to pin and the key to look up.
#[derive(Debug, PartialEq)]
pub(crate) struct CheckedHeader {
    pub(crate) alg: Algorithm,
    pub(crate) kid: Option<String>,
}

/// Splits the token and checks its header against the provider's `allowed` algorithms.
pub(crate) fn check_header(token: &str, allowed: &[Algorithm]) -> Result<CheckedHeader, OidcError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(OidcError::TokenTooLarge { max_bytes: MAX_TOKEN_BYTES });
    }
    let parts: Vec<&str> = token.split('.').collect();
    let [header, _payload, signature] = parts[..] else {
        return Err(OidcError::MalformedToken);
    };
    let decoded = URL_SAFE_NO_PAD.decode(header).map_err(|_| OidcError::MalformedToken)?;
    let header: Map<String, Value> = serde_json::from_slice(&decoded).map_err(|_| OidcError::MalformedToken)?;

    let alg = header.get("alg").and_then(Value::as_str).ok_or(OidcError::MalformedToken)?;
    if alg.eq_ignore_ascii_case("none") {
        return Err(OidcError::AlgorithmNone);
    }
    // Names are case-sensitive (RFC 7515): `rs256` is not RS256.
    let alg = alg.parse::<Algorithm>().map_err(|_| OidcError::AlgorithmNotAllowed)?;
    if !allowed.contains(&alg) {
        return Err(OidcError::AlgorithmNotAllowed);
    }
    if header.contains_key("jwk") {
        return Err(OidcError::EmbeddedKey);
    }
    if ["jku", "x5u", "x5c"].iter().any(|name| header.contains_key(*name)) {
        return Err(OidcError::KeyReference);
    }
    if header.contains_key("crit") {
        return Err(OidcError::CriticalHeader);
    }
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.clone()),
        Some(_) => return Err(OidcError::MalformedToken),
    };
    // The header as jsonwebtoken reads it too, which refuses, for one, duplicate members.
    jsonwebtoken::decode_header(token).map_err(|_| OidcError::MalformedToken)?;
    if signature.is_empty() {
        return Err(OidcError::BadSignature);
    }
    Ok(CheckedHeader { alg, kid })
}

/// Checks the signature with `key`, pinned to the header's checked algorithm, and returns the
/// claims unchecked: [`check_claims`] does that against an explicit `now`.
pub(crate) fn verify_signature(token: &str, header: &CheckedHeader, key: &DecodingKey) -> Result<Claims, OidcError> {
    let mut validation = Validation::new(header.alg);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    install_crypto_provider();
    match jsonwebtoken::decode::<Claims>(token, key, &validation) {
        Ok(data) => Ok(data.claims),
        Err(error) => match error.kind() {
            jsonwebtoken::errors::ErrorKind::Json(_) => Err(OidcError::MalformedToken),
            _ => Err(OidcError::BadSignature),
        },
    }
}

/// Whom the token must be addressed to.
pub(crate) enum Audience<'a> {
    /// An ID token: `aud` names this client; with several audiences, `azp` must name it too
    /// (OpenID Connect Core 1.0, section 3.1.3.7).
    IdToken { client_id: &'a str },
    /// An access token: `aud` names this resource, among others perhaps.
    AccessToken { audience: &'a str },
}

/// What a token's claims are checked against.
pub(crate) struct Expectations<'a> {
    pub(crate) issuer: &'a str,
    pub(crate) audience: Audience<'a>,
    /// The nonce of the sign-in request, for ID tokens of the code flow.
    pub(crate) nonce: Option<&'a str>,
    /// Seconds since the Unix epoch.
    pub(crate) now: i64,
}

/// Checks `iss`, `aud` (and `azp`), `exp`, `nbf`, `iat` with [`LEEWAY_SECONDS`], `nonce` and `sub`.
pub(crate) fn check_claims(claims: &Claims, expect: &Expectations<'_>) -> Result<(), OidcError> {
    match claims.get("iss").and_then(Value::as_str) {
        Some(issuer) if issuer == expect.issuer => {}
        Some(_) => return Err(OidcError::WrongIssuer),
        None => return Err(OidcError::MissingClaim { claim: "iss" }),
    }

    let audiences = audiences(claims)?;
    match expect.audience {
        Audience::IdToken { client_id } => {
            if !audiences.contains(&client_id) {
                return Err(OidcError::WrongAudience { expected: client_id.to_owned() });
            }
            match claims.get("azp") {
                None if audiences.len() > 1 => return Err(OidcError::WrongAuthorizedParty),
                None => {}
                Some(azp) if azp.as_str() == Some(client_id) => {}
                Some(_) => return Err(OidcError::WrongAuthorizedParty),
            }
        }
        Audience::AccessToken { audience } => {
            if !audiences.contains(&audience) {
                return Err(OidcError::WrongAudience { expected: audience.to_owned() });
            }
        }
    }

    let exp = time_claim(claims, "exp")?.ok_or(OidcError::MissingClaim { claim: "exp" })?;
    if expect.now >= exp.saturating_add(LEEWAY_SECONDS) {
        return Err(OidcError::Expired);
    }
    if let Some(nbf) = time_claim(claims, "nbf")?
        && expect.now.saturating_add(LEEWAY_SECONDS) < nbf
    {
        return Err(OidcError::NotYetValid);
    }
    let iat = time_claim(claims, "iat")?;
    // ID tokens must say when they were issued; access tokens need not.
    if iat.is_none() && matches!(expect.audience, Audience::IdToken { .. }) {
        return Err(OidcError::MissingClaim { claim: "iat" });
    }
    if let Some(iat) = iat
        && expect.now.saturating_add(LEEWAY_SECONDS) < iat
    {
        return Err(OidcError::IssuedInFuture);
    }

    if let Some(expected_nonce) = expect.nonce {
        match claims.get("nonce").and_then(Value::as_str) {
            // Compared in constant time (aws-lc-rs): timing tells nothing about the nonce.
            Some(nonce)
                if aws_lc_rs::constant_time::verify_slices_are_equal(nonce.as_bytes(), expected_nonce.as_bytes())
                    .is_ok() => {}
            _ => return Err(OidcError::WrongNonce),
        }
    }

    match claims.get("sub").and_then(Value::as_str) {
        Some(subject) if !subject.is_empty() => Ok(()),
        _ => Err(OidcError::MissingClaim { claim: "sub" }),
    }
}

/// The `aud` claim as a list: a string or an array of strings.
fn audiences(claims: &Claims) -> Result<Vec<&str>, OidcError> {
    let missing = || OidcError::MissingClaim { claim: "aud" };
    match claims.get("aud") {
        Some(Value::String(audience)) => Ok(vec![audience.as_str()]),
        Some(Value::Array(values)) => values.iter().map(|value| value.as_str().ok_or_else(missing)).collect(),
        _ => Err(missing()),
    }
}

/// A NumericDate claim in whole seconds, if present; other types are refused.
fn time_claim(claims: &Claims, claim: &'static str) -> Result<Option<i64>, OidcError> {
    match claims.get(claim) {
        None => Ok(None),
        Some(value) => match (value.as_i64(), value.as_f64()) {
            (Some(seconds), _) => Ok(Some(seconds)),
            (None, Some(seconds)) if seconds.is_finite() => Ok(Some(seconds.floor() as i64)),
            _ => Err(OidcError::MissingClaim { claim }),
        },
    }
}

/// The signed-in user as a checked token describes them.
pub(crate) fn identity(claims: &Claims, groups_claim: &str) -> Result<ExternalIdentity, OidcError> {
    let text = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_owned);
    let subject = text("sub").ok_or(OidcError::MissingClaim { claim: "sub" })?;
    // An address the provider says it has not verified must not link accounts by email.
    let email = match claims.get("email_verified") {
        Some(Value::Bool(false)) => None,
        _ => text("email"),
    };
    let groups = match claims.get(groups_claim) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(group)) => vec![group.clone()],
        Some(Value::Array(values)) => values
            .iter()
            .map(|value| value.as_str().map(str::to_owned))
            .collect::<Option<Vec<String>>>()
            .ok_or_else(|| OidcError::InvalidGroupsClaim { claim: groups_claim.to_owned() })?,
        Some(_) => return Err(OidcError::InvalidGroupsClaim { claim: groups_claim.to_owned() }),
    };
    Ok(ExternalIdentity { subject, email, name: text("name"), groups })
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
