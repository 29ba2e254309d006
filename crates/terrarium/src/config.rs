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
    pub gateway: GatewaySection,
    pub limits: LimitsConfig,
    pub egress: EgressConfig,
    pub engine: EngineConfig,
    pub access: AccessConfig,
    pub identity: IdentityConfig,
    pub secrets: SecretsConfig,
    pub metering: MeteringConfig,
    pub pricing: PricingConfig,
    pub budgets: BudgetsConfig,
    pub notify: NotifyConfig,
    /// Tiers by name: a ceiling shared by a namespace's apps and the most one app may ask.
    pub tiers: std::collections::BTreeMap<String, TierSection>,
    pub namespaces: NamespacesSection,
    pub telemetry: TelemetrySection,
    pub scan: ScanSection,
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

/// Secret detection on every uploaded bundle.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScanSection {
    /// A gitleaks.toml of your own: it replaces the built-in rules, or adds to them with
    /// `[extend] useDefault = true`.
    pub rules_file: Option<std::path::PathBuf>,
    /// Stop a deploy whose files hold a likely secret (true), or deploy it with warnings.
    pub block: bool,
}

impl Default for ScanSection {
    fn default() -> ScanSection {
        ScanSection { rules_file: None, block: true }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetrySection {
    /// An OTLP/HTTP collector (`http://otel-collector:4318`) to send traces to; none by default.
    pub otlp_endpoint: Option<String>,
    pub service_name: String,
    /// How often finished spans are sent, in milliseconds.
    pub export_every_ms: u64,
}

impl Default for TelemetrySection {
    fn default() -> TelemetrySection {
        TelemetrySection { otlp_endpoint: None, service_name: "terrarium".to_owned(), export_every_ms: 5000 }
    }
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

/// What usage costs; `terrarium usage` and budgets use it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PricingConfig {
    pub currency: String,
    pub per_million_requests: f64,
    pub per_cpu_second: f64,
    /// Per GB of response bodies apps send.
    pub per_gb_out: f64,
}

impl Default for PricingConfig {
    fn default() -> PricingConfig {
        PricingConfig {
            currency: "USD".to_owned(),
            per_million_requests: 0.40,
            per_cpu_second: 0.00002,
            per_gb_out: 0.09,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BudgetsConfig {
    /// Alerts at these percentages of a budget.
    pub thresholds: Vec<u32>,
    /// Stop an app (402) once a budget covering it is used up.
    pub hard_stop: bool,
    /// How often budgets and monthly quotas are evaluated.
    pub evaluate_secs: u64,
    /// Monthly budgets per namespace (`growth = 50.0`) and per owner (`"user:ana" = 20.0`).
    pub namespaces: std::collections::BTreeMap<String, f64>,
    pub owners: std::collections::BTreeMap<String, f64>,
}

impl Default for BudgetsConfig {
    fn default() -> BudgetsConfig {
        BudgetsConfig {
            thresholds: vec![50, 80, 100],
            hard_stop: true,
            evaluate_secs: 5,
            namespaces: Default::default(),
            owners: Default::default(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    pub webhooks: Vec<WebhookSection>,
    pub smtp: Option<SmtpSection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpSection {
    pub host: String,
    #[serde(default = "default_smtp_port")]
    pub port: u16,
    /// `starttls` (default), `tls`, or `none` (a relay on the same host or network only).
    #[serde(default = "default_smtp_security")]
    pub security: String,
    pub username: Option<String>,
    /// The environment variable with the password (never the password in this file).
    #[serde(default = "default_smtp_password_env")]
    pub password_env: String,
    /// `Terrarium <terrarium@example.com>`.
    pub from: String,
    /// Who is told.
    pub to: Vec<String>,
    /// Templates with `{kind}`, `{subject}`, `{text}` and `{details}`.
    #[serde(default = "default_subject_template")]
    pub subject_template: String,
    #[serde(default = "default_body_template")]
    pub body_template: String,
}

fn default_subject_template() -> String {
    "[Terrarium] {subject}".to_owned()
}

fn default_body_template() -> String {
    "{text}\n\nDetails: {details}\n".to_owned()
}

fn default_smtp_port() -> u16 {
    587
}

fn default_smtp_security() -> String {
    "starttls".to_owned()
}

fn default_smtp_password_env() -> String {
    "TERRARIUM_SMTP_PASSWORD".to_owned()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSection {
    pub url: String,
    /// `json` (kind, subject, text, details) or `slack` (text only).
    #[serde(default = "default_webhook_format")]
    pub format: String,
}

fn default_webhook_format() -> String {
    "json".to_owned()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MeteringConfig {
    /// How often counted usage is written to the roll-ups: at most this much is lost in a crash.
    pub flush_secs: u64,
}

impl Default for MeteringConfig {
    fn default() -> MeteringConfig {
        MeteringConfig { flush_secs: 5 }
    }
}

/// Where the key-encryption key comes from, and the Vault server for `vault://` references.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecretsConfig {
    /// `file` (a key file in the data directory, mode 0600), `env` (base64 keys in
    /// `kek_env`, active first) or `vault-transit` (Vault's transit engine; needs `[secrets.vault]`).
    pub kek: KekSource,
    /// The environment variable with the keys when `kek = "env"`.
    pub kek_env: String,
    /// The transit mount and key name when `kek = "vault-transit"`.
    pub transit_mount: String,
    pub transit_key: String,
    /// Days before a secret's expiry when reminders start.
    pub expiry_reminder_days: i64,
    pub vault: Option<VaultSection>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KekSource {
    File,
    Env,
    VaultTransit,
}

impl Default for SecretsConfig {
    fn default() -> SecretsConfig {
        SecretsConfig {
            kek: KekSource::File,
            kek_env: "TERRARIUM_SECRETS_KEK".to_owned(),
            transit_mount: "transit".to_owned(),
            transit_key: "terrarium".to_owned(),
            expiry_reminder_days: 14,
            vault: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultSection {
    /// `https://vault.example.com:8200`.
    pub address: String,
    /// `token` (from `token_env`) or `approle` (`role_id` here, the secret id from `secret_id_env`).
    #[serde(default = "default_vault_auth")]
    pub auth: String,
    #[serde(default = "default_vault_token_env")]
    pub token_env: String,
    #[serde(default = "default_approle_mount")]
    pub approle_mount: String,
    pub role_id: Option<String>,
    #[serde(default = "default_secret_id_env")]
    pub secret_id_env: String,
    /// Vault Enterprise namespace, if any.
    pub namespace: Option<String>,
    /// How long a read secret is reused; running apps pick up a new version within this time.
    #[serde(default = "default_vault_cache_secs")]
    pub cache_secs: u64,
}

fn default_vault_auth() -> String {
    "token".to_owned()
}

fn default_vault_token_env() -> String {
    "VAULT_TOKEN".to_owned()
}

fn default_approle_mount() -> String {
    "approle".to_owned()
}

fn default_secret_id_env() -> String {
    "TERRARIUM_VAULT_SECRET_ID".to_owned()
}

fn default_vault_cache_secs() -> u64 {
    300
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
    /// Lets a platform admin move the server's clock forward (`POST /api/v1/clock`), so TTLs,
    /// expiries and budgets' months can be rehearsed: for tests and drills, never production.
    pub adjustable_clock: bool,
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
    /// Internal ranges only the apps of one namespace may reach: `namespace = ["10.20.0.0/16"]`.
    pub allow_internal_by_namespace: std::collections::BTreeMap<String, Vec<String>>,
    /// Internal services that authenticate apps by the platform's token: for a request to one
    /// of these hosts, the platform sets `Authorization: Bearer <app token>` itself.
    pub internal_apis: Vec<InternalApiSection>,
    /// Outbound response bytes one incoming request may read in total, over all its fetches.
    pub max_bytes_per_request: u64,
    /// Newest egress log entries kept; older ones are deleted.
    pub log_keep_entries: u64,
    pub timeout_secs: u64,
    pub max_response_bytes: u64,
    pub max_redirects: u32,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InternalApiSection {
    /// The host, exactly (`billing.internal.example.com`). Apps still list it in allowedEgress.
    pub host: String,
    /// The `aud` of the tokens the platform attaches; the service checks it.
    pub audience: String,
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

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig { listen: SocketAddr::from(([127, 0, 0, 1], 8080)), public_url: None, adjustable_clock: false }
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
            allow_internal_by_namespace: std::collections::BTreeMap::new(),
            internal_apis: Vec::new(),
            max_bytes_per_request: 32 * 1024 * 1024,
            log_keep_entries: 1_000_000,
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
