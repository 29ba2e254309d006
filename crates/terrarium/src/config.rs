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
    /// The gateway's response cache.
    pub cache: cache::CacheSection,
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
    pub tiers: std::collections::BTreeMap<String, plan::config::TierSection>,
    pub namespaces: plan::config::NamespacesSection,
    pub telemetry: telemetry::config::TelemetrySection,
    pub scan: scan::config::ScanSection,
    pub policy: control::governance::config::PolicySection,
    pub approvals: control::governance::config::ApprovalsSection,
    /// `[lifecycle]`: how long archived apps are kept.
    pub lifecycle: control::lifecycle::LifecycleSection,
    /// Apps' data services: `[data.kv]`, `[data.sql]`.
    pub data: DataConfig,
    /// `[ai]`: the models apps reach through `env.AI`.
    pub ai: capability_ai::config::AiSection,
}

/// `[data]`: the data services apps bind in their manifest's `spec.data`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// Where apps' key-value data lives: `sqlite` (the embedded default, in the data directory)
    /// or `postgres` (`[data.postgres]`).
    pub backend: DataBackend,
    pub kv: capability_kv::config::KvSection,
    pub sql: capability_sql::config::SqlSection,
    pub vectors: capability_vectors::config::VectorsSection,
    pub postgres: store_postgres::config::PostgresSection,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataBackend {
    #[default]
    Sqlite,
    Postgres,
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
    /// The front door's limits (`[server.limits]`).
    pub limits: crate::front_door::FrontDoorLimits,
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: None,
            adjustable_clock: false,
            limits: crate::front_door::FrontDoorLimits::default(),
        }
    }
}

impl PlatformConfig {
    /// Every problem of every section, each naming its key, before anything starts. Each
    /// component checks its own section (`validate` in its crate's `config` module).
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        problems.extend(self.server.limits.validate());
        problems.extend(self.gateway.validate());
        problems.extend(self.cache.validate());
        problems.extend(self.lifecycle.validate());
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
        problems.extend(self.policy.validate());
        problems.extend(self.approvals.validate());
        problems.extend(self.data.kv.validate());
        problems.extend(self.data.sql.validate());
        problems.extend(self.data.vectors.validate());
        problems.extend(self.data.postgres.validate());
        problems.extend(self.ai.validate());
        problems.extend(self.namespaces().err().unwrap_or_default());
        problems
    }

    /// Every namespace's settings in one record, gathered from the sections that name
    /// namespaces: `[namespaces]` and `[tiers]`, `[approvals.namespaces]`, `[budgets.namespaces]`
    /// and `[egress.allow_internal_by_namespace]`.
    pub fn namespaces(&self) -> Result<plan::Namespaces, Vec<String>> {
        let mut namespaces = self.namespaces.build(&self.tiers)?;
        for (namespace, section) in &self.approvals.namespaces {
            namespaces.entry(namespace).approvers =
                plan::Approvers { subjects: section.approvers.clone(), required: section.required };
        }
        for (namespace, budget) in &self.budgets.namespaces {
            namespaces.entry(namespace).monthly_budget = Some(*budget);
        }
        for (namespace, ranges) in &self.egress.allow_internal_by_namespace {
            namespaces.entry(namespace).allow_internal = ranges.clone();
        }
        Ok(namespaces)
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
