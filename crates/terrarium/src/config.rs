//! `terrarium.toml`: the operator's platform configuration. Unknown keys are an error.
//!
//! Every key has a documented default, so `terrarium serve` runs with no file at all.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::Context;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PlatformConfig {
    pub server: ServerConfig,
    pub gateway: GatewaySection,
    pub limits: LimitsConfig,
    pub egress: EgressConfig,
    pub engine: EngineConfig,
    pub access: AccessConfig,
    pub identity: IdentityConfig,
}

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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccessConfig {
    /// Who may use an app whose manifest sets no visibility: private, team, org or public.
    pub default_visibility: deployment::Visibility,
}

impl Default for AccessConfig {
    fn default() -> AccessConfig {
        // Behind the company's sign-in unless the app or the operator says otherwise.
        AccessConfig { default_visibility: deployment::Visibility::Org }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address the platform listens on (apps, control API, health).
    pub listen: SocketAddr,
    /// Base URL users reach this server at; derived from `listen` when absent.
    pub public_url: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewaySection {
    /// Apps are also served at `<app>.<namespace>.<apps_domain>`.
    pub apps_domain: String,
    pub request_timeout_secs: u64,
    pub max_in_flight: usize,
    pub max_app_body_bytes: usize,
    /// Memory for static files served often (files up to 1 MiB each).
    pub blob_cache_mib: u64,
}

/// Limits an app gets when its manifest does not set them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    pub cpu_ms_per_request: u64,
    pub memory_mib: u64,
    pub stack_kib: u64,
    pub wall_timeout_ms: u64,
    pub max_response_bytes: u64,
    pub max_outbound_requests: u32,
    pub max_bundle_bytes: u64,
    pub max_bundle_files: usize,
    /// Admission per app when its manifest sets no `spec.quotas`.
    pub requests_per_second: u32,
    pub burst: u32,
    pub concurrency: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EgressConfig {
    /// Internal ranges apps may reach despite the built-in deny list (on-premises services),
    /// as CIDRs like `10.20.0.0/16`. Empty by default: loopback, private, link-local and
    /// metadata addresses are denied.
    pub allow_internal: Vec<String>,
    pub timeout_secs: u64,
    pub max_response_bytes: u64,
    pub max_redirects: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    /// Threads running JavaScript; 0 means one per CPU core.
    pub workers: usize,
    /// Native stack of each JavaScript thread; an app's stack limit stays below it.
    pub worker_stack_kib: usize,
    /// Calls waiting for one JavaScript thread before new ones are refused with 503.
    pub queue_capacity_per_worker: usize,
    /// Instances of one app serving at once (a call awaiting `fetch` holds its instance).
    pub max_instances_per_app: usize,
    /// Warm instances kept per app between requests. Equal to `max_instances_per_app` by
    /// default: a busy app that needed several instances keeps them (until the idle timeout)
    /// instead of paying for new ones on every burst.
    pub idle_instances_per_app: usize,
    /// Warm instances unused this long are dropped, so memory follows the apps in use;
    /// 0 keeps them until the app is redeployed or deleted.
    pub idle_instance_timeout_secs: u64,
}

impl Default for PlatformConfig {
    fn default() -> PlatformConfig {
        PlatformConfig {
            server: ServerConfig::default(),
            gateway: GatewaySection::default(),
            limits: LimitsConfig::default(),
            egress: EgressConfig::default(),
            engine: EngineConfig::default(),
            access: AccessConfig::default(),
            identity: IdentityConfig::default(),
        }
    }
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig { listen: SocketAddr::from(([127, 0, 0, 1], 8080)), public_url: None }
    }
}

impl Default for GatewaySection {
    fn default() -> GatewaySection {
        GatewaySection {
            apps_domain: "localhost".to_owned(),
            request_timeout_secs: 60,
            max_in_flight: 10_000,
            max_app_body_bytes: 10 * 1024 * 1024,
            blob_cache_mib: 64,
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> LimitsConfig {
        LimitsConfig {
            cpu_ms_per_request: 50,
            memory_mib: 64,
            stack_kib: 512,
            wall_timeout_ms: 10_000,
            max_response_bytes: 10 * 1024 * 1024,
            max_outbound_requests: 50,
            // The same caps the CLI applies before uploading.
            max_bundle_bytes: crate::client::BUNDLE_LIMITS.max_total_bytes,
            max_bundle_files: crate::client::BUNDLE_LIMITS.max_files,
            requests_per_second: 100,
            burst: 200,
            concurrency: 32,
        }
    }
}

impl Default for EgressConfig {
    fn default() -> EgressConfig {
        EgressConfig {
            allow_internal: Vec::new(),
            timeout_secs: 10,
            max_response_bytes: 10 * 1024 * 1024,
            max_redirects: 5,
        }
    }
}

impl Default for EngineConfig {
    fn default() -> EngineConfig {
        EngineConfig {
            workers: 0,
            worker_stack_kib: 8 * 1024,
            queue_capacity_per_worker: 1024,
            max_instances_per_app: 4,
            idle_instances_per_app: 4,
            idle_instance_timeout_secs: 300,
        }
    }
}

impl PlatformConfig {
    /// Reads the file if it exists; `required` makes a missing file an error (an explicit `--config`).
    pub fn load(path: &Path, required: bool) -> anyhow::Result<PlatformConfig> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound && !required => {
                return Ok(PlatformConfig::default());
            }
            Err(error) => {
                return Err(error).with_context(|| format!("failed to read {}", path.display()));
            }
        };
        toml::from_str(&text).with_context(|| format!("{} is not a valid Terrarium configuration", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_errors_and_defaults_fill_in() {
        let config: PlatformConfig = toml::from_str("[egress]\nallow_internal = [\"127.0.0.1/32\"]\n").unwrap();
        assert_eq!(config.egress.allow_internal, ["127.0.0.1/32"]);
        assert_eq!(config.gateway.apps_domain, "localhost");
        let error = toml::from_str::<PlatformConfig>("[gateway]\napps_domian = \"x\"\n").unwrap_err();
        assert!(error.to_string().contains("apps_domian"), "{error}");
    }
}
