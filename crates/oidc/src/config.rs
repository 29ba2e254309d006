//! What an operator configures for one OpenID provider (the `[identity.oidc]` part of `terrarium.toml`).

use std::fmt;

/// One OpenID provider and this platform's client registration there.
///
/// There is no `Default`: every field decides who may sign in, so the caller spells it out.
#[derive(Clone)]
pub struct OidcConfig {
    /// The issuer identifier, compared byte for byte with the discovery document's `issuer`
    /// and with the `iss` of every token. It must be `https`, or `http` on a loopback address.
    pub issuer: String,
    /// This platform's client id at the provider; ID tokens must name it in `aud`.
    pub client_id: String,
    /// The client secret of a confidential client (sent with HTTP Basic), or `None` for a public client.
    pub client_secret: Option<String>,
    /// The scopes requested at sign-in; `openid` is added when missing.
    pub scopes: Vec<String>,
    /// The claim that carries the user's groups: an array of strings or a single string.
    pub groups_claim: String,
    /// The audience this platform expects in the provider's access tokens (token exchange);
    /// what callers normally pass to [`crate::OidcProvider::validate_access_token`].
    pub audience: String,
}

impl OidcConfig {
    /// The configured scopes with `openid` first, as the authorization and device requests send them.
    pub(crate) fn scope_parameter(&self) -> String {
        let mut scopes = vec!["openid"];
        scopes.extend(self.scopes.iter().map(String::as_str).filter(|scope| *scope != "openid"));
        scopes.join(" ")
    }
}

// The secret never reaches a log line, even through `{:?}`.
impl fmt::Debug for OidcConfig {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("OidcConfig")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "<redacted>"))
            .field("scopes", &self.scopes)
            .field("groups_claim", &self.groups_claim)
            .field("audience", &self.audience)
            .finish()
    }
}
