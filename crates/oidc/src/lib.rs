//! Terrarium as an OpenID Connect relying party of any standards-compliant provider (Keycloak,
//! Okta, Entra ID): discovery, a cached JWKS refreshed on key rotation, authorization code with
//! PKCE for browsers, the device authorization grant for the CLI, and validation of the
//! provider's ID tokens and JWT access tokens.
//!
//! [`OidcProvider::discover`] checks the provider once; its methods then run the flows. Every
//! token is pinned to the asymmetric algorithms the provider publishes (never `none` or `HS*`),
//! to a key of its JWKS, and checked for `iss`, `aud`, `exp`, `nbf` and `iat` with a 60 s leeway.
//!
//! Written on reqwest and jsonwebtoken rather than the `openidconnect` crate: that crate speaks
//! reqwest 0.12 and brings its own RustCrypto stack (rsa, p256, ed25519-dalek) beside the
//! workspace's aws-lc-rs, it cannot validate access tokens or refetch keys on an unknown kid, and
//! its device-flow polling loops inside; the four HTTP calls below are smaller than that glue.

mod config;
mod discovery;
mod error;
mod flows;
mod http;
mod jwks;
mod jwt;

#[cfg(test)]
mod tests;

use std::time::{SystemTime, UNIX_EPOCH};

pub use config::OidcConfig;
pub use error::OidcError;
pub use flows::{AuthorizationRequest, DeviceAuthorization, DevicePoll};
pub use jwks::REFETCH_INTERVAL;
pub use jwt::{LEEWAY_SECONDS, MAX_TOKEN_BYTES};

use discovery::ProviderMetadata;
use jwks::{JwksCache, Lookup};
use jwt::{Audience, Expectations};

/// A user as the identity provider vouches for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalIdentity {
    /// The provider's `sub`: stable and unique within this issuer.
    pub subject: String,
    /// The `email` claim, unless the provider marks it unverified (`email_verified: false`).
    pub email: Option<String>,
    pub name: Option<String>,
    /// The configured groups claim: empty when the token has none.
    pub groups: Vec<String>,
}

/// One discovered provider. Build it once at start-up and share it (`Arc<OidcProvider>`).
pub struct OidcProvider {
    config: OidcConfig,
    metadata: ProviderMetadata,
    client: reqwest::Client,
    jwks: JwksCache,
}

impl OidcProvider {
    /// Fetches the discovery document, checks that its `issuer` is exactly the configured one,
    /// pins the published ID token algorithms this crate can verify, and fetches the JWKS.
    pub async fn discover(config: OidcConfig) -> Result<OidcProvider, OidcError> {
        for (field, value) in [("client_id", &config.client_id), ("groups_claim", &config.groups_claim)] {
            if value.is_empty() {
                return Err(OidcError::EmptyConfig { field });
            }
        }
        let client = http::build_client()?;
        let url = discovery::discovery_url(&config.issuer)?;
        let document = http::get_json(&client, &url, "discovery document").await?;
        let document = serde_json::from_value(document)
            .map_err(|_| OidcError::InvalidResponse { endpoint: "discovery document" })?;
        let metadata = discovery::check_metadata(&config.issuer, document)?;
        let jwks = JwksCache::fetch(&client, metadata.jwks_uri.clone(), metadata.algorithms.clone()).await?;
        Ok(OidcProvider { config, metadata, client, jwks })
    }

    /// The configuration this provider was discovered with.
    pub fn config(&self) -> &OidcConfig {
        &self.config
    }

    /// The configured audience of this provider's access tokens, for [`Self::validate_access_token`].
    pub fn audience(&self) -> &str {
        &self.config.audience
    }

    /// Validates a JWT access token of this provider (for token exchange): signature, issuer,
    /// `expected_audience` among its audiences, and times. Groups come from the configured claim.
    pub async fn validate_access_token(
        &self,
        token: &str,
        expected_audience: &str,
    ) -> Result<ExternalIdentity, OidcError> {
        let expect = Expectations {
            issuer: &self.config.issuer,
            audience: Audience::AccessToken { audience: expected_audience },
            nonce: None,
            now: unix_now(),
        };
        self.validate(token, &expect).await
    }

    /// Validates an ID token for this client: `aud` (and `azp`), the nonce when one was sent.
    pub(crate) async fn validate_id_token(
        &self,
        token: &str,
        expected_nonce: Option<&str>,
    ) -> Result<ExternalIdentity, OidcError> {
        let expect = Expectations {
            issuer: &self.config.issuer,
            audience: Audience::IdToken { client_id: &self.config.client_id },
            nonce: expected_nonce,
            now: unix_now(),
        };
        self.validate(token, &expect).await
    }

    async fn validate(&self, token: &str, expect: &Expectations<'_>) -> Result<ExternalIdentity, OidcError> {
        let header = jwt::check_header(token, &self.metadata.algorithms)?;
        let mut keys = self.jwks.current();
        if let Lookup::Unknown = keys.find(header.kid.as_deref(), header.alg) {
            // The provider may have rotated its keys since the last fetch.
            keys = self.jwks.refetch_for_unknown_kid(&self.client, &keys).await?;
        }
        let key = match keys.find(header.kid.as_deref(), header.alg) {
            Lookup::Found(key) => key,
            Lookup::Unknown => return Err(OidcError::UnknownKeyId),
            Lookup::Ambiguous => return Err(OidcError::MissingKeyId),
        };
        let claims = jwt::verify_signature(token, &header, key)?;
        jwt::check_claims(&claims, expect)?;
        jwt::identity(&claims, &self.config.groups_claim)
    }
}

fn unix_now() -> i64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX)
}
