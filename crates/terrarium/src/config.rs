//! `terrarium.toml`: the operator's platform configuration. Unknown keys are an error.
//!
//! Every key has a documented default, so `terrarium serve` runs with no file at all.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::Context;
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PlatformConfig {
    pub server: ServerConfig,
    pub gateway: gateway::config::GatewaySection,
    pub limits: plan::config::LimitsSection,
    pub egress: capability_http::EgressSection,
    pub engine: engine_js::config::EngineSection,
    pub access: plan::config::AccessSection,
    pub identity: accounts::config::IdentityConfig,
    pub secrets: secrets::config::SecretsConfig,
    pub metering: metering::config::MeteringConfig,
    pub pricing: metering::config::PricingConfig,
    pub budgets: metering::config::BudgetsConfig,
    pub notify: notify::config::NotifyConfig,
    /// Tiers by name: a ceiling shared by a namespace's apps and the most one app may ask.
    pub tiers: std::collections::BTreeMap<String, TierSection>,
    pub namespaces: NamespacesSection,
    pub telemetry: telemetry::config::TelemetrySection,
    pub scan: scan::config::ScanSection,
    pub policy: PolicySection,
    pub approvals: ApprovalsSection,
}

/// Policy as code: which policies run, in which mode, and how often everything is audited.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicySection {
    /// Run the bundled library (`terrarium policy test` shows it).
    pub bundled: bool,
    /// A directory of your own `.rego` files, added to the bundled ones (a file named like a
    /// bundled one replaces it). Read again every `reload_secs` and on `terrarium policy reload`.
    pub dir: Option<std::path::PathBuf>,
    /// Policy name → `deny` (the default), `warn` or `dryrun`.
    pub modes: std::collections::BTreeMap<String, String>,
    pub reload_secs: u64,
    /// Every running app is evaluated again this often (and at start, on policy change, and
    /// when an exception lapses).
    pub audit_secs: u64,
}

impl Default for PolicySection {
    fn default() -> PolicySection {
        PolicySection { bundled: true, dir: None, modes: Default::default(), reload_secs: 10, audit_secs: 3600 }
    }
}

/// Approvals of elevated requests.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApprovalsSection {
    /// A request without enough approvals is denied after this long.
    pub timeout_secs: u64,
    /// Per namespace: who approves and how many must (one operator of the namespace otherwise).
    pub namespaces: std::collections::BTreeMap<String, ApproversSection>,
}

impl Default for ApprovalsSection {
    fn default() -> ApprovalsSection {
        ApprovalsSection { timeout_secs: 72 * 3600, namespaces: Default::default() }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApproversSection {
    /// `user:NAME` or `group:NAME`; each must also be an operator of the namespace.
    #[serde(default)]
    pub approvers: Vec<String>,
    #[serde(default = "one")]
    pub required: u32,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierSection {
    /// Namespace-wide: all its apps together.
    pub requests_per_second: u32,
    pub burst: u32,
    pub concurrency: u32,
    /// The most one app's spec.quotas may ask; deploys asking more are refused.
    pub max_app_requests_per_second: Option<u32>,
    pub max_app_burst: Option<u32>,
    pub max_app_concurrency: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NamespacesSection {
    /// The tier of namespaces not listed in `tiers`; none means no ceiling.
    pub default_tier: Option<String>,
    /// Namespace → tier name.
    pub tiers: std::collections::BTreeMap<String, String>,
    /// The longest `spec.ttlDays` an app may ask (90 when unset).
    pub max_ttl_days: Option<u32>,
    /// Hosts (or `*.domain`) every namespace's apps may call without approval.
    pub allowed_egress: Vec<String>,
    /// Runtimes apps may use; every supported one when unset.
    pub approved_runtimes: Option<Vec<String>>,
    /// Per namespace: its own maximum TTL, runtimes, and hosts added to `allowed_egress`.
    pub settings: std::collections::BTreeMap<String, NamespaceSettings>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NamespaceSettings {
    pub max_ttl_days: Option<u32>,
    pub allowed_egress: Vec<String>,
    pub approved_runtimes: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address the platform listens on (apps, control API, health).
    pub listen: SocketAddr,
    /// Base URL users reach this server at; derived from `listen` when absent.
    pub public_url: Option<String>,
    /// Lets a platform admin move the server's clock forward (`POST /api/v1/clock`), so TTLs,
    /// expiries and budgets' months can be rehearsed: for tests and drills, never production.
    pub adjustable_clock: bool,
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig { listen: SocketAddr::from(([127, 0, 0, 1], 8080)), public_url: None, adjustable_clock: false }
    }
}

impl PlatformConfig {
    /// Every problem of every section, each naming its key, before anything starts. Each
    /// component checks its own section (`validate` in its crate's `config` module).
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        problems.extend(self.gateway.validate());
        problems.extend(self.limits.validate());
        problems.extend(self.egress.validate());
        problems.extend(self.engine.validate());
        problems.extend(self.identity.validate());
        problems.extend(self.secrets.validate());
        problems.extend(self.metering.validate());
        problems.extend(self.pricing.validate());
        problems.extend(self.budgets.validate());
        problems.extend(self.notify.validate());
        problems.extend(self.telemetry.validate());
        problems.extend(self.scan.validate());
        problems
    }

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

    /// The README's `terrarium.toml` examples (operating, policies and approvals) are real
    /// configurations: each parses as it is written.
    #[test]
    fn the_readme_configurations_parse() {
        let readme = include_str!("../../../README.md");
        let blocks: Vec<&str> =
            readme.split("```toml\n").skip(1).map(|rest| rest.split("```").next().unwrap()).collect();
        assert!(blocks.len() >= 2, "the README has its toml examples");
        for block in blocks {
            toml::from_str::<PlatformConfig>(block).unwrap_or_else(|error| panic!("{error}\n{block}"));
        }
    }
}
