//! The one error type of the crate. Messages are safe to show: they never contain a token,
//! a code, a secret or text the provider or a token's author chose, except OAuth error codes.

/// Why discovery, a flow or a token validation failed.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("the {field} {url} must be an https URL (plain http is allowed on loopback addresses only)")]
    InsecureUrl { field: &'static str, url: String },
    #[error("the configured {field} is empty")]
    EmptyConfig { field: &'static str },
    #[error("failed to build the HTTP client for the identity provider")]
    Client {
        #[source]
        source: reqwest::Error,
    },
    #[error("failed to reach the identity provider's {endpoint}")]
    Request {
        endpoint: &'static str,
        #[source]
        source: reqwest::Error,
    },
    #[error("the identity provider's {endpoint} answered with HTTP status {status}")]
    Status { endpoint: &'static str, status: u16 },
    #[error("the identity provider's {endpoint} sent a response that is not valid")]
    InvalidResponse { endpoint: &'static str },
    #[error("the discovery document names the issuer {found}, not the configured {expected}")]
    IssuerMismatch { expected: String, found: String },
    #[error("the discovery document has no {field}")]
    MissingMetadata { field: &'static str },
    #[error("the identity provider publishes no token signing algorithm this platform accepts")]
    NoUsableAlgorithm,
    #[error("the identity provider does not offer the device authorization grant")]
    DeviceFlowUnsupported,
    #[error("the identity provider's {endpoint} refused the request with the error {error}")]
    Refused { endpoint: &'static str, error: String },
    #[error("the token response has no ID token")]
    MissingIdToken,

    #[error("the token is larger than {max_bytes} bytes")]
    TokenTooLarge { max_bytes: usize },
    #[error("the token is not a well-formed signed JWT")]
    MalformedToken,
    #[error("the token is unsigned (alg none)")]
    AlgorithmNone,
    #[error("the token's signing algorithm is not one the identity provider publishes")]
    AlgorithmNotAllowed,
    #[error("the token carries its own key (jwk header)")]
    EmbeddedKey,
    #[error("the token points to a key elsewhere (jku, x5u or x5c header)")]
    KeyReference,
    #[error("the token has critical header extensions")]
    CriticalHeader,
    #[error("the token has no key id and the provider has more than one key for its algorithm")]
    MissingKeyId,
    #[error("the token's key id is not in the identity provider's key set")]
    UnknownKeyId,
    #[error("the token's signature does not verify")]
    BadSignature,
    #[error("the token's issuer is not the configured identity provider")]
    WrongIssuer,
    #[error("the token is not addressed to {expected}")]
    WrongAudience { expected: String },
    #[error("the token was issued to another client (azp)")]
    WrongAuthorizedParty,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token was issued in the future")]
    IssuedInFuture,
    #[error("the token has no valid {claim} claim")]
    MissingClaim { claim: &'static str },
    #[error("the ID token's nonce does not match the one of the sign-in request")]
    WrongNonce,
    #[error("the token's {claim} claim is neither a string nor an array of strings")]
    InvalidGroupsClaim { claim: String },
}
