//! `[identity]` in `terrarium.toml`: the company's OpenID provider, if any.

use serde::Deserialize;

use crate::federation::Federation;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdentityConfig {
    /// The company's OpenID provider (Keycloak, Okta, Entra ID, ...); local accounts only when absent.
    pub oidc: Option<OidcSection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcSection {
    /// The issuer URL, exactly as the provider's discovery document spells it.
    pub issuer: String,
    /// This platform's client id at the provider.
    pub client_id: String,
    /// The environment variable holding the client secret (never the secret itself in this file).
    #[serde(default = "default_client_secret_env")]
    pub client_secret_env: String,
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// The claim carrying the user's groups.
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
    /// The audience of the provider's access tokens accepted at `/oauth/token`.
    #[serde(default = "default_audience")]
    pub audience: String,
    /// What the sign-in page's button says.
    #[serde(default = "default_display_name")]
    pub display_name: String,
}

fn default_client_secret_env() -> String {
    "TERRARIUM_OIDC_CLIENT_SECRET".to_owned()
}

fn default_scopes() -> Vec<String> {
    ["openid", "profile", "email", "groups"].map(str::to_owned).to_vec()
}

fn default_groups_claim() -> String {
    "groups".to_owned()
}

fn default_audience() -> String {
    "terrarium".to_owned()
}

fn default_display_name() -> String {
    "your company account".to_owned()
}

impl IdentityConfig {
    /// Every problem of the section, each naming its key. Contacts no provider.
    pub fn validate(&self) -> Vec<String> {
        let Some(oidc) = &self.oidc else {
            return Vec::new();
        };
        let mut problems = Vec::new();
        if !(oidc.issuer.starts_with("https://") || oidc.issuer.starts_with("http://")) {
            problems.push(format!("identity.oidc.issuer: {:?} is not the provider's http(s) URL", oidc.issuer));
        }
        if oidc.client_id.trim().is_empty() {
            problems
                .push("identity.oidc.client_id is empty; give this platform's client id at the provider".to_owned());
        }
        if !oidc.scopes.iter().any(|scope| scope == "openid") {
            problems.push("identity.oidc.scopes: \"openid\" is missing; OpenID Connect needs it".to_owned());
        }
        problems
    }

    /// Discovers the provider (its keys and endpoints), reading the client secret from its
    /// variable; `None` when no provider is configured.
    pub async fn build(&self) -> Result<Option<Federation>, String> {
        let Some(section) = &self.oidc else {
            return Ok(None);
        };
        let config = oidc::OidcConfig {
            issuer: section.issuer.clone(),
            client_id: section.client_id.clone(),
            client_secret: std::env::var(&section.client_secret_env).ok().filter(|secret| !secret.is_empty()),
            scopes: section.scopes.clone(),
            groups_claim: section.groups_claim.clone(),
            audience: section.audience.clone(),
        };
        let provider = oidc::OidcProvider::discover(config).await.map_err(|error| {
            format!("identity.oidc: the OpenID provider at {} could not be used: {error}", section.issuer)
        })?;
        Ok(Some(Federation::new(provider, section.display_name.clone())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_provider_needs_an_issuer_a_client_and_openid() {
        assert!(IdentityConfig::default().validate().is_empty());
        let config: IdentityConfig =
            toml_like(r#"{"oidc": {"issuer": "sso.example.com", "client_id": " ", "scopes": ["email"]}}"#);
        let problems = config.validate();
        assert_eq!(problems.len(), 3, "{problems:#?}");
    }

    fn toml_like(json: &str) -> IdentityConfig {
        serde_json::from_str(json).unwrap()
    }
}
