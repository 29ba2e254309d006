//! The platform's token service as the control plane uses it: access tokens for signed-in
//! users, verified on every call, and the public keys anyone can verify them with.

use std::time::Duration;

use identity::{TokenClaims, TokenIssuer, TokenUse};

pub struct PlatformTokens {
    issuer: TokenIssuer,
}

impl PlatformTokens {
    pub fn new(issuer: TokenIssuer) -> PlatformTokens {
        PlatformTokens { issuer }
    }

    pub fn mint_access_token(
        &self,
        subject: &str,
        groups: &[String],
        audience: &str,
        lifetime: Duration,
    ) -> Result<String, identity::KeyError> {
        let claims = TokenClaims {
            sub: subject.to_owned(),
            aud: audience.to_owned(),
            token_use: TokenUse::Access,
            namespace: None,
            groups: groups.to_vec(),
            roles: Vec::new(),
            email: None,
            name: None,
            act: None,
        };
        self.issuer.mint(claims, lifetime)
    }

    /// The subject of a valid access token for `audience`.
    pub fn verify_access_token(&self, token: &str, audience: &str) -> Result<String, identity::TokenError> {
        let verified = self.issuer.verify(token, audience, time::OffsetDateTime::now_utc())?;
        match verified.claims.token_use {
            TokenUse::Access => Ok(verified.claims.sub),
            _ => Err(identity::TokenError::InvalidClaims),
        }
    }

    pub fn jwks(&self) -> serde_json::Value {
        self.issuer.jwks()
    }

    pub fn discovery(&self) -> serde_json::Value {
        self.issuer.discovery_document()
    }
}
