//! The platform's token service as the control plane uses it: access tokens for signed-in
//! users, verified on every call, and the public keys anyone can verify them with.

use std::sync::RwLock;
use std::time::Duration;

use identity::{KeyRing, TokenClaims, TokenIssuer, TokenUse};

/// How long an app-scoped token lives: minutes, enough for one call and its outbound requests.
pub const APP_TOKEN_LIFETIME: Duration = Duration::from_secs(5 * 60);
/// How long a sign-in ticket for an app host lives.
pub const TICKET_LIFETIME: Duration = Duration::from_secs(60);

/// A retired key keeps verifying this long: longer than any token it signed lives.
const RETIRED_KEY_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

/// Stores the key ring durably (the binary writes `signing-keys.json`, mode 0600).
pub type SaveKeys = Box<dyn Fn(&KeyRing) -> std::io::Result<()> + Send + Sync>;

pub struct PlatformTokens {
    /// Read on every mint and verify; written only by a key rotation.
    issuer: RwLock<TokenIssuer>,
    save: SaveKeys,
}

impl PlatformTokens {
    pub fn new(issuer: TokenIssuer, save: SaveKeys) -> PlatformTokens {
        PlatformTokens { issuer: RwLock::new(issuer), save }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, TokenIssuer> {
        self.issuer.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A new signing key: new tokens are signed with it, tokens signed with the previous key
    /// keep verifying for a day, keys retired longer ago are dropped. Saved before it is used.
    /// Returns the kids that verify, the new active one first.
    pub fn rotate(&self) -> Result<Vec<String>, String> {
        let mut issuer = self.issuer.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        // Rotate a copy: if it cannot be saved, the ring in use stays as it was.
        let mut ring =
            KeyRing::from_json(&issuer.ring.to_json()).map_err(|error| format!("copying the key ring: {error}"))?;
        ring.rotate().map_err(|error| format!("generating a key: {error}"))?;
        let cutoff = time::OffsetDateTime::now_utc() - RETIRED_KEY_LIFETIME;
        ring.prune_retired_before(cutoff);
        (self.save)(&ring).map_err(|error| format!("saving the key ring: {error}"))?;
        issuer.ring = ring;
        Ok(issuer.ring.kids().into_iter().map(str::to_owned).collect())
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
        self.read().mint(claims, lifetime)
    }

    /// The subject of a valid access token for `audience`.
    pub fn verify_access_token(&self, token: &str, audience: &str) -> Result<String, identity::TokenError> {
        let verified = self.read().verify(token, audience, time::OffsetDateTime::now_utc())?;
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
        self.read().mint(claims, APP_TOKEN_LIFETIME)
    }

    /// The token that identifies an app to an internal API: subject `app:<namespace>/<name>`,
    /// audience the API's, the platform as the actor.
    pub fn mint_service_token(
        &self,
        namespace: &str,
        name: &str,
        audience: &str,
    ) -> Result<String, identity::KeyError> {
        let claims = TokenClaims {
            sub: format!("app:{namespace}/{name}"),
            aud: audience.to_owned(),
            token_use: TokenUse::Service,
            namespace: Some(namespace.to_owned()),
            groups: Vec::new(),
            roles: Vec::new(),
            email: None,
            name: None,
            act: Some(identity::Actor { sub: "terrarium-gateway".to_owned() }),
        };
        self.read().mint(claims, APP_TOKEN_LIFETIME)
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
        self.read().jwks()
    }

    pub fn discovery(&self) -> serde_json::Value {
        self.read().discovery_document()
    }
}
