//! OpenID Provider metadata (`/.well-known/openid-configuration`): the pure checks that turn a
//! fetched document into the endpoints and algorithms this relying party will use.

use std::str::FromStr;

use jsonwebtoken::Algorithm;
use serde::Deserialize;
use url::{Host, Url};

use crate::OidcError;

/// The asymmetric algorithms this relying party can verify. HMAC (`HS*`) is never accepted: its
/// key would be the client secret, or, in the classic attack, the provider's public key.
const VERIFIABLE_ALGORITHMS: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// The members of the discovery document this crate reads.
#[derive(Debug, Deserialize)]
pub(crate) struct DiscoveryDocument {
    issuer: Option<String>,
    authorization_endpoint: Option<String>,
    token_endpoint: Option<String>,
    jwks_uri: Option<String>,
    device_authorization_endpoint: Option<String>,
    id_token_signing_alg_values_supported: Option<Vec<String>>,
}

/// A provider's checked metadata.
#[derive(Debug, Clone)]
pub(crate) struct ProviderMetadata {
    pub(crate) authorization_endpoint: Url,
    pub(crate) token_endpoint: Url,
    pub(crate) jwks_uri: Url,
    pub(crate) device_authorization_endpoint: Option<Url>,
    /// The published ID token algorithms this crate can verify; tokens are pinned to these.
    pub(crate) algorithms: Vec<Algorithm>,
}

/// Where the discovery document of `issuer` lives (OpenID Connect Discovery 1.0, section 4).
pub(crate) fn discovery_url(issuer: &str) -> Result<Url, OidcError> {
    let url = format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'));
    secure_url("issuer", &url)
}

/// Checks the document against the configured issuer and keeps what the flows need.
pub(crate) fn check_metadata(
    expected_issuer: &str,
    document: DiscoveryDocument,
) -> Result<ProviderMetadata, OidcError> {
    let issuer = document.issuer.ok_or(OidcError::MissingMetadata { field: "issuer" })?;
    // Exact comparison, trailing slash included (section 4.3): a look-alike issuer is another provider.
    if issuer != expected_issuer {
        return Err(OidcError::IssuerMismatch { expected: expected_issuer.to_owned(), found: issuer });
    }
    let required = |field: &'static str, value: Option<String>| {
        let value = value.ok_or(OidcError::MissingMetadata { field })?;
        secure_url(field, &value)
    };
    let authorization_endpoint = required("authorization_endpoint", document.authorization_endpoint)?;
    let token_endpoint = required("token_endpoint", document.token_endpoint)?;
    let jwks_uri = required("jwks_uri", document.jwks_uri)?;
    let device_authorization_endpoint = match document.device_authorization_endpoint {
        Some(value) => Some(secure_url("device_authorization_endpoint", &value)?),
        None => None,
    };
    let published = document
        .id_token_signing_alg_values_supported
        .ok_or(OidcError::MissingMetadata { field: "id_token_signing_alg_values_supported" })?;
    let algorithms = accepted_algorithms(&published);
    if algorithms.is_empty() {
        return Err(OidcError::NoUsableAlgorithm);
    }
    Ok(ProviderMetadata { authorization_endpoint, token_endpoint, jwks_uri, device_authorization_endpoint, algorithms })
}

/// The published algorithm names this crate verifies, in the provider's order; `none`, `HS*`
/// and unknown names are dropped.
pub(crate) fn accepted_algorithms(published: &[String]) -> Vec<Algorithm> {
    let mut accepted = Vec::new();
    for name in published {
        let Ok(algorithm) = Algorithm::from_str(name) else { continue };
        if VERIFIABLE_ALGORITHMS.contains(&algorithm) && !accepted.contains(&algorithm) {
            accepted.push(algorithm);
        }
    }
    accepted
}

/// Parses `value` and refuses anything but `https`, or `http` to a loopback address (tests and
/// a provider on the same host). Codes, tokens and secrets cross these URLs.
pub(crate) fn secure_url(field: &'static str, value: &str) -> Result<Url, OidcError> {
    let insecure = || OidcError::InsecureUrl { field, url: value.to_owned() };
    let url = Url::parse(value).map_err(|_| insecure())?;
    let loopback = match url.host() {
        Some(Host::Ipv4(address)) => address.is_loopback(),
        Some(Host::Ipv6(address)) => address.is_loopback(),
        Some(Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    match url.scheme() {
        "https" if url.host().is_some() => Ok(url),
        "http" if loopback => Ok(url),
        _ => Err(insecure()),
    }
}
