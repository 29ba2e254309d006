//! The platform's token service as the control plane uses it: access tokens for signed-in
//! users, verified on every call, and the public keys anyone can verify them with.

use std::time::Duration;

use identity::{TokenClaims, TokenIssuer, TokenUse};

/// How long an app-scoped token lives: minutes, enough for one call and its outbound requests.
pub const APP_TOKEN_LIFETIME: Duration = Duration::from_secs(5 * 60);
/// How long a sign-in ticket for an app host lives.
pub const TICKET_LIFETIME: Duration = Duration::from_secs(60);

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

    /// The token one function call receives: audience `app:<namespace>/<name>`, the caller's
    /// groups and roles in that namespace, and the gateway as the actor (RFC 8693 `act`).
    pub fn mint_app_token(
        &self,
        subject: &str,
        groups: &[String],
        namespace: &str,
        name: &str,
        roles: Vec<String>,
    ) -> Result<String, identity::KeyError> {
        let claims = TokenClaims {
            sub: subject.to_owned(),
            aud: format!("app:{namespace}/{name}"),
            token_use: TokenUse::App,
            namespace: Some(namespace.to_owned()),
            groups: groups.to_vec(),
            roles,
            email: None,
            name: None,
            act: Some(identity::Actor { sub: "terrarium-gateway".to_owned() }),
        };
        self.issuer.mint(claims, APP_TOKEN_LIFETIME)
    }

    /// A one-minute ticket that signs `subject` in on the app host `host` (host-routed apps have
    /// their own cookies, so the sign-in page hands them a ticket rather than its cookie).
    pub fn mint_ticket(&self, subject: &str, groups: &[String], host: &str) -> Result<String, identity::KeyError> {
        self.mint_access_token(subject, groups, &format!("ticket:{host}"), TICKET_LIFETIME)
    }

    /// The subject of a valid ticket for `host`.
    pub fn verify_ticket(&self, ticket: &str, host: &str) -> Result<String, identity::TokenError> {
        self.verify_access_token(ticket, &format!("ticket:{host}"))
    }

    pub fn jwks(&self) -> serde_json::Value {
        self.issuer.jwks()
    }

    pub fn discovery(&self) -> serde_json::Value {
        self.issuer.discovery_document()
    }
}
