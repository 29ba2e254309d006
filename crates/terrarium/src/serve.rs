//! `terrarium serve`: composes the platform from its parts and runs it.
//!
//! This is the only place that picks concrete backends: SQLite and local disk for storage,
//! QuickJS for functions, the egress-checking HTTP client for `fetch`.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context;
use bundle::BundleLimits;
use capability_http::{OutboundConfig, OutboundHttpFactory};
use control::blobs::LocalBlobStore;
use control::logs::LogHub;
use control::{ControlPlane, ControlSettings, Principal};
use deployment::Deployment;
use gateway::{GatewayConfig, GatewayState, RoutingTable};
use plan::PlatformDefaults;
use runtime::{Engine, HostServices};

use crate::config::PlatformConfig;

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on; overrides `server.listen` in terrarium.toml.
    #[arg(long, env = "TERRARIUM_LISTEN")]
    listen: Option<SocketAddr>,
    /// Where the database, blobs and signing keys live.
    #[arg(long, env = "TERRARIUM_DATA_DIR", default_value = ".terrarium")]
    data_dir: PathBuf,
    /// The platform configuration file.
    #[arg(long, env = "TERRARIUM_CONFIG")]
    config: Option<PathBuf>,
    /// Deploy the demo apps (where2eat, status) on start.
    #[arg(long)]
    demo: bool,
    /// Log filter, like `info` or `terrarium=debug,info`.
    #[arg(long, env = "TERRARIUM_LOG", default_value = "info")]
    log: String,
    /// Check the configuration (every problem at once) and exit, starting nothing.
    #[arg(long)]
    check: bool,
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let config = match &args.config {
        Some(path) => PlatformConfig::load(path, true)?,
        None => PlatformConfig::load(Path::new("terrarium.toml"), false)?,
    };
    if args.check {
        let source = args.config.as_deref().unwrap_or(Path::new("terrarium.toml")).display().to_string();
        return check(&config, &source);
    }
    // Sends the last spans when `run` returns.
    let _telemetry = telemetry::init(telemetry::TelemetryConfig {
        log_filter: args.log.clone(),
        otlp_endpoint: config.telemetry.otlp_endpoint.clone(),
        service_name: config.telemetry.service_name.clone(),
        export_every: Duration::from_millis(config.telemetry.export_every_ms.max(100)),
    })?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    runtime.block_on(serve(args, config))
}

/// What an app's functions may call: `fetch` through its allow-list, and its log.
struct Capabilities {
    outbound: OutboundHttpFactory,
    logs: Arc<LogHub>,
}

impl runtime::loader::Capabilities for Capabilities {
    fn host_services(&self, deployment: &Deployment) -> Result<HostServices, String> {
        let outbound = self.outbound.for_deployment(deployment).map_err(|errors| {
            let reasons: Vec<String> = errors.iter().map(|error| error.to_string()).collect();
            format!("spec.allowedEgress: {}", reasons.join("; "))
        })?;
        Ok(HostServices { outbound, log: self.logs.clone() })
    }
}

async fn serve(args: ServeArgs, config: PlatformConfig) -> anyhow::Result<()> {
    let data_dir = args.data_dir;
    create_private_dir(&data_dir)?;
    let key_ring = signing_keys(&data_dir)?;

    let store = Arc::new(
        store_sqlite::SqliteStore::open(&data_dir.join("terrarium.db"))
            .await
            .with_context(|| format!("failed to open the database in {}", data_dir.display()))?,
    );
    let vault = vault_client(&config)?;
    let blobs = Arc::new(LocalBlobStore::new(&data_dir, config.gateway.blob_cache_mib * 1024 * 1024));
    let logs = Arc::new(LogHub::new());
    let routes = Arc::new(RoutingTable::new());

    let listener = tokio::net::TcpListener::bind(args.listen.unwrap_or(config.server.listen))
        .await
        .with_context(|| format!("failed to listen on {}", args.listen.unwrap_or(config.server.listen)))?;
    let local = listener.local_addr()?;
    let public_url = config.server.public_url.clone().unwrap_or_else(|| {
        let host = if local.ip().is_unspecified() { "localhost".to_owned() } else { local.ip().to_string() };
        format!("http://{host}:{}", local.port())
    });
    let tiers = namespace_tiers(&config)?;
    let bundle_limits =
        BundleLimits { max_total_bytes: config.limits.max_bundle_bytes, max_files: config.limits.max_bundle_files };
    let keys_path = data_dir.join(SIGNING_KEYS_FILE);
    let save_keys: accounts::tokens::SaveKeys =
        Box::new(move |ring| write_private_file(&keys_path, ring.to_json().as_bytes()));
    let tokens =
        Arc::new(accounts::tokens::PlatformTokens::new(identity::TokenIssuer::new(&public_url, key_ring), save_keys));
    let allow_internal = parse_ranges("egress.allow_internal", &config.egress.allow_internal)?;
    let mut allow_internal_by_namespace = BTreeMap::new();
    for (namespace, ranges) in &config.egress.allow_internal_by_namespace {
        let key = format!("egress.allow_internal_by_namespace.{namespace}");
        allow_internal_by_namespace.insert(namespace.clone(), parse_ranges(&key, ranges)?);
    }
    let internal_apis = config
        .egress
        .internal_apis
        .iter()
        .map(|api| capability_http::InternalApi { host: api.host.to_ascii_lowercase(), audience: api.audience.clone() })
        .collect();
    let metrics = Arc::new(metering::metrics::Metrics::new());
    let slo = Arc::new(metering::slo::SloTracker::default());
    let clock = match config.server.adjustable_clock {
        true => {
            tracing::warn!(
                "[server] adjustable_clock is on: a platform admin may move this server's clock forward; never run production like this"
            );
            background::Clock::adjustable()
        }
        false => background::Clock::system(),
    };
    let tasks = background::Tasks::new();
    let metering = metering::Metering::new(store.clone(), metrics.clone(), slo.clone(), clock.clone());
    let (egress_log, egress_writer) = metering::egress_log::EgressLog::new(
        store.clone(),
        metrics.clone(),
        metering.clone(),
        config.egress.log_keep_entries,
    );
    tokio::spawn(egress_writer.run());
    let outbound = OutboundHttpFactory::new(
        OutboundConfig {
            allowed_internal: allow_internal,
            allowed_internal_by_namespace: allow_internal_by_namespace,
            internal_apis,
            timeout: Duration::from_secs(config.egress.timeout_secs),
            max_response_bytes: config.egress.max_response_bytes,
            max_redirects: config.egress.max_redirects,
            user_agent: concat!("terrarium/", env!("CARGO_PKG_VERSION")).to_owned(),
        },
        tokio::runtime::Handle::current(),
    )
    .context("failed to build the outbound HTTP client")?
    .with_recorder(egress_log)
    .with_app_tokens(Arc::new(ServiceTokens::new(tokens.clone())));
    let workers = match config.engine.workers {
        0 => std::thread::available_parallelism().map_or(2, usize::from),
        n => n,
    };
    let engine: Arc<dyn Engine> = Arc::new(engine_js::JsEngine::new(engine_js::JsEngineConfig {
        worker_threads: workers,
        worker_stack_bytes: config.engine.worker_stack_kib * 1024,
        queue_capacity_per_worker: config.engine.queue_capacity_per_worker,
        max_instances_per_app: config.engine.max_instances_per_app,
        idle_instances_per_app: config.engine.idle_instances_per_app,
        idle_instance_timeout: match config.engine.idle_instance_timeout_secs {
            0 => None,
            secs => Some(Duration::from_secs(secs)),
        },
    }));
    let app_secrets = Arc::new(secrets::apps::AppSecrets::new(
        Arc::new(secrets::SecretStore::new(store.clone(), key_encryption_key(&config, &data_dir, vault.clone())?)),
        vault.map(|vault| vault as Arc<dyn secrets::apps::KvSource>),
    ));
    let loader = Arc::new(runtime::loader::Loader::new(
        engine,
        blobs.clone(),
        Arc::new(Capabilities { outbound, logs: logs.clone() }),
        app_secrets.clone(),
    ));

    let federation = match &config.identity.oidc {
        None => None,
        Some(section) => {
            let oidc_config = oidc::OidcConfig {
                issuer: section.issuer.clone(),
                client_id: section.client_id.clone(),
                client_secret: std::env::var(&section.client_secret_env).ok().filter(|secret| !secret.is_empty()),
                scopes: section.scopes.clone(),
                groups_claim: section.groups_claim.clone(),
                audience: section.audience.clone(),
            };
            let provider = oidc::OidcProvider::discover(oidc_config).await.with_context(|| {
                format!("identity.oidc: the OpenID provider at {} could not be used", section.issuer)
            })?;
            Some(accounts::federation::Federation::new(provider, section.display_name.clone()))
        }
    };
    let governance = Arc::new(control::governance::Governance::new(
        Arc::new(crate::policies::Policies::load(&config.policy)?),
        store.clone(),
        governance_settings(&config)?,
    ));
    let accounts = Arc::new(accounts::Accounts::new(store.clone(), tokens, federation)?);
    let notifier = notifier(&config, store.clone())?;
    let control = Arc::new(ControlPlane::new(control::ControlParts {
        store: store.clone(),
        blobs: blobs.clone(),
        loader,
        routes: routes.clone(),
        logs,
        secrets: app_secrets.clone(),
        egress_store: store.clone(),
        metrics: metrics.clone(),
        usage_store: store.clone(),
        governance,
        owners: Arc::new(AccountsDirectory(accounts.clone())),
        hooks: Arc::new(crate::hooks::Hooks { secrets: app_secrets.clone() }),
        slo: slo.clone(),
        notifier: notifier.clone(),
        settings: ControlSettings {
            defaults: PlatformDefaults {
                cpu_ms_per_request: config.limits.cpu_ms_per_request,
                memory_mib: config.limits.memory_mib,
                stack_kib: config.limits.stack_kib,
                wall_timeout_ms: config.limits.wall_timeout_ms,
                max_response_bytes: config.limits.max_response_bytes,
                max_outbound_requests: config.limits.max_outbound_requests,
                max_outbound_bytes: config.egress.max_bytes_per_request,
                default_visibility: config.access.default_visibility,
                requests_per_second: config.limits.requests_per_second,
                burst: config.limits.burst,
                concurrency: config.limits.concurrency,
            },
            bundle_limits,
            public_url: public_url.clone(),
            apps_domain: config.gateway.apps_domain.clone(),
            port: local.port(),
            tiers: tiers.clone(),
            scanner: Arc::new(secret_scanner(&config)?),
            block_on_secrets: config.scan.block,
            clock: clock.clone(),
        },
    })?);
    let first_admin_password = accounts.ensure_first_admin(std::env::var("TERRARIUM_ADMIN_PASSWORD").ok()).await?;

    let suspensions = Arc::new(gateway::Suspensions::default());
    let pricing = &config.pricing;
    let mut thresholds = config.budgets.thresholds.clone();
    thresholds.sort_unstable();
    let budgets = Arc::new(metering::budgets::Budgets::new(
        metering::budgets::BudgetSettings {
            pricing: metering::budgets::Pricing {
                currency: pricing.currency.clone(),
                per_million_requests: pricing.per_million_requests,
                per_cpu_second: pricing.per_cpu_second,
                per_gb_out: pricing.per_gb_out,
            },
            thresholds,
            hard_stop: config.budgets.hard_stop,
            namespaces: config.budgets.namespaces.clone(),
            owners: config.budgets.owners.clone(),
        },
        store.clone(),
        store.clone(),
        metering.clone(),
        routes.clone(),
        suspensions.clone(),
        notifier.clone(),
        slo.clone(),
        metrics.clone(),
    ));
    let max_upload = (bundle_limits.max_total_bytes as usize).saturating_mul(2).saturating_add(1 << 20);
    let secure_cookies = public_url.starts_with("https://");
    let api = control_api::router(
        Arc::new(control_api::ApiState {
            control: control.clone(),
            accounts: accounts.clone(),
            public_url: public_url.clone(),
            apps_domain: config.gateway.apps_domain.clone(),
            secure_cookies,
            budgets: budgets.clone(),
            notifier,
            tasks: tasks.clone(),
            clock,
        }),
        max_upload,
    );
    let mut state = GatewayState::new(
        GatewayConfig {
            apps_domain: config.gateway.apps_domain.clone(),
            request_timeout: Duration::from_secs(config.gateway.request_timeout_secs),
            max_request_body_bytes: max_upload,
            max_app_body_bytes: config.gateway.max_app_body_bytes,
            max_in_flight: config.gateway.max_in_flight,
            public_url: public_url.clone(),
            secure_cookies,
        },
        routes,
        blobs,
        accounts.clone(),
        metering.clone(),
        suspensions,
        Arc::new(gateway::NamespaceCeilings::new(
            tiers.default.as_ref().map(|tier| tier.ceiling),
            tiers.by_namespace.iter().map(|(namespace, tier)| (namespace.clone(), tier.ceiling)).collect(),
        )),
    );
    if config.telemetry.otlp_endpoint.is_some() {
        state.request_span = telemetry::request_span;
    }
    let state = Arc::new(state);
    let app = gateway::build_stack(state.clone(), api);

    // Serve at once (health answers, readiness waits), then load what was deployed before.
    let server =
        tokio::spawn(async move { axum::serve(listener, app).with_graceful_shutdown(shutdown_signal()).await });
    let n_loaded = control.load_active().await?;
    if args.demo {
        deploy_demo_apps(&control).await?;
    }
    state.ready.store(true, Ordering::Release);
    add_background_tasks(&tasks, &control, &metering, &budgets, &config);
    tasks.spawn_all();

    let mut banner = std::io::stdout().lock();
    if let Some(password) = first_admin_password {
        writeln!(
            banner,
            "Created the platform admin account (shown once):\n  user: admin\n  password: {password}\nSign in with: terrarium login --password --server {public_url}"
        )?;
    }
    writeln!(banner, "Terrarium is serving on {public_url} ({n_loaded} apps loaded from {})", data_dir.display())?;
    for app in control.list_apps(None).await? {
        writeln!(banner, "  {}/{}  {}", app.namespace, app.name, app.urls.join("  "))?;
    }
    writeln!(banner, "Control API: {public_url}/api/v1  (sign in with `terrarium login --password`)")?;
    drop(banner);

    server.await.context("the server task failed")?.context("the server failed")?;
    // What was counted since the last flush.
    metering.flush().await;
    tracing::info!("stopped");
    Ok(())
}

/// Accounts' users and groups, as the owners the policies see.
struct AccountsDirectory(Arc<accounts::Accounts>);

#[async_trait::async_trait]
impl control::OwnerDirectory for AccountsDirectory {
    async fn owners(&self) -> Result<Vec<String>, String> {
        self.0.owners().await.map_err(|error| error.to_string())
    }
}

/// The notifier from `[notify]`: the operator's webhooks and mail server.
fn notifier(
    config: &PlatformConfig,
    store: Arc<dyn notify::NotificationStore>,
) -> anyhow::Result<Arc<notify::Notifier>> {
    let (webhooks, smtp) = notify_settings(config)?;
    let notifier = notify::Notifier::new(webhooks, smtp, store).map_err(|error| anyhow::anyhow!(error))?;
    Ok(Arc::new(notifier))
}

/// `[notify]`: the webhooks and the mail server, checked.
fn notify_settings(config: &PlatformConfig) -> anyhow::Result<(Vec<notify::Webhook>, Option<notify::SmtpSettings>)> {
    let webhooks = config
        .notify
        .webhooks
        .iter()
        .map(|webhook| {
            let format = match webhook.format.as_str() {
                "json" => notify::WebhookFormat::Json,
                "slack" => notify::WebhookFormat::Slack,
                other => anyhow::bail!("notify.webhooks: format {other:?} is not supported; use \"json\" or \"slack\""),
            };
            Ok(notify::Webhook { url: webhook.url.clone(), format })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let smtp = match &config.notify.smtp {
        None => None,
        Some(section) => {
            let security = match section.security.as_str() {
                "starttls" => notify::SmtpSecurity::StartTls,
                "tls" => notify::SmtpSecurity::Tls,
                "none" => notify::SmtpSecurity::None,
                other => anyhow::bail!("notify.smtp.security: {other:?} is not supported; use starttls, tls or none"),
            };
            let credentials = match &section.username {
                None => None,
                Some(user) => {
                    let password = std::env::var(&section.password_env).with_context(|| {
                        format!(
                            "notify.smtp.username is set, but the password variable {} is not",
                            section.password_env
                        )
                    })?;
                    Some((user.clone(), password))
                }
            };
            Some(notify::SmtpSettings {
                host: section.host.clone(),
                port: section.port,
                security,
                credentials,
                from: section.from.clone(),
                to: section.to.clone(),
                subject_template: section.subject_template.clone(),
                body_template: section.body_template.clone(),
            })
        }
    };
    Ok((webhooks, smtp))
}

/// `terrarium serve --check`: every section of the configuration is checked as `serve` would
/// check it, and every problem is reported at once; nothing is started, opened or written.
fn check(config: &PlatformConfig, source: &str) -> anyhow::Result<()> {
    let mut problems = Vec::new();
    let mut note = |result: anyhow::Result<()>| {
        if let Err(error) = result {
            problems.push(format!("{error:#}"));
        }
    };
    note(namespace_tiers(config).map(drop));
    note(governance_settings(config).map(drop));
    note(secret_scanner(config).map(drop));
    note(crate::policies::Policies::load(&config.policy).map(drop));
    note(notify_settings(config).map(drop));
    note(vault_client(config).map(drop));
    note(parse_ranges("egress.allow_internal", &config.egress.allow_internal).map(drop));
    for (namespace, ranges) in &config.egress.allow_internal_by_namespace {
        note(parse_ranges(&format!("egress.allow_internal_by_namespace.{namespace}"), ranges).map(drop));
    }
    if config.server.adjustable_clock {
        eprintln!(
            "warning: server.adjustable_clock is true: an admin may move this server's clock (test servers only)"
        );
    }
    match problems.as_slice() {
        [] => {
            println!("{source} is valid");
            Ok(())
        }
        _ => anyhow::bail!("{source} has {} problem(s):\n  - {}", problems.len(), problems.join("\n  - ")),
    }
}

/// The secret scanner: the built-in rules, or the operator's gitleaks.toml.
fn secret_scanner(config: &PlatformConfig) -> anyhow::Result<scan::Scanner> {
    let Some(path) = &config.scan.rules_file else {
        return Ok(scan::Scanner::builtin());
    };
    let text =
        std::fs::read_to_string(path).with_context(|| format!("scan.rules_file: cannot read {}", path.display()))?;
    scan::Scanner::from_toml(&text).with_context(|| format!("scan.rules_file: {}", path.display()))
}

/// Namespaces' policy settings and approvers from `[namespaces]`, `[policy]` and `[approvals]`.
fn governance_settings(config: &PlatformConfig) -> anyhow::Result<control::governance::GovernanceSettings> {
    use control::governance::{Approvers, GovernanceSettings, NamespacePolicy};
    let namespaces = &config.namespaces;
    let default = NamespacePolicy {
        max_ttl_days: namespaces.max_ttl_days.unwrap_or(90),
        allowed_egress: namespaces.allowed_egress.clone(),
        approved_runtimes: namespaces.approved_runtimes.clone(),
    };
    let by_namespace = namespaces
        .settings
        .iter()
        .map(|(name, settings)| {
            let mut allowed_egress = default.allowed_egress.clone();
            allowed_egress.extend(settings.allowed_egress.iter().cloned());
            let policy = NamespacePolicy {
                max_ttl_days: settings.max_ttl_days.unwrap_or(default.max_ttl_days),
                allowed_egress,
                approved_runtimes: settings.approved_runtimes.clone().or_else(|| default.approved_runtimes.clone()),
            };
            (name.clone(), policy)
        })
        .collect();
    let mut approvers = std::collections::BTreeMap::new();
    for (namespace, section) in &config.approvals.namespaces {
        if section.required == 0 {
            anyhow::bail!("approvals.namespaces.{namespace}.required is 0; at least one approval is needed");
        }
        if !section.approvers.is_empty() && section.required as usize > section.approvers.len() {
            anyhow::bail!(
                "approvals.namespaces.{namespace}: required = {} but only {} approvers are listed",
                section.required,
                section.approvers.len()
            );
        }
        if let Some(bad) =
            section.approvers.iter().find(|subject| !subject.starts_with("user:") && !subject.starts_with("group:"))
        {
            anyhow::bail!("approvals.namespaces.{namespace}.approvers: {bad:?} is neither user:NAME nor group:NAME");
        }
        approvers
            .insert(namespace.clone(), Approvers { subjects: section.approvers.clone(), required: section.required });
    }
    let secs = |value: u64, key: &str| {
        if value == 0 {
            anyhow::bail!("{key} is 0; give a number of seconds");
        }
        Ok(std::time::Duration::from_secs(value))
    };
    Ok(GovernanceSettings {
        namespace_default: default,
        namespaces: by_namespace,
        approvers,
        approval_timeout: secs(config.approvals.timeout_secs, "approvals.timeout_secs")?,
        audit_every: secs(config.policy.audit_secs, "policy.audit_secs")?,
        reload_every: secs(config.policy.reload_secs, "policy.reload_secs")?,
    })
}

/// Each namespace's tier from `[tiers.*]` and `[namespaces]`; an unknown tier name is an error.
fn namespace_tiers(config: &PlatformConfig) -> anyhow::Result<plan::Tiers> {
    let tier = |name: &str, key: &str| -> anyhow::Result<plan::Tier> {
        let section = config.tiers.get(name).with_context(|| {
            let known: Vec<&str> = config.tiers.keys().map(String::as_str).collect();
            format!("{key}: there is no [tiers.{name}] (tiers: {})", known.join(", "))
        })?;
        Ok(plan::Tier {
            name: name.to_owned(),
            ceiling: deployment::Admission {
                requests_per_second: section.requests_per_second.max(1),
                burst: section.burst.max(1),
                concurrency: section.concurrency.max(1),
            },
            max_app_requests_per_second: section.max_app_requests_per_second,
            max_app_burst: section.max_app_burst,
            max_app_concurrency: section.max_app_concurrency,
        })
    };
    let default = match &config.namespaces.default_tier {
        Some(name) => Some(tier(name, "namespaces.default_tier")?),
        None => None,
    };
    let mut by_namespace = BTreeMap::new();
    for (namespace, name) in &config.namespaces.tiers {
        by_namespace.insert(namespace.clone(), tier(name, &format!("namespaces.tiers.{namespace}"))?);
    }
    Ok(plan::Tiers { default, by_namespace })
}

fn parse_ranges(key: &str, ranges: &[String]) -> anyhow::Result<Vec<ipnet::IpNet>> {
    ranges
        .iter()
        .map(|cidr| cidr.parse().with_context(|| format!("{key}: {cidr:?} is not a CIDR like 10.0.0.0/8")))
        .collect()
}

/// The tokens that identify apps to internal APIs, reused until a minute before they expire.
struct ServiceTokens {
    tokens: Arc<accounts::tokens::PlatformTokens>,
    cache: std::sync::Mutex<std::collections::HashMap<(deployment::AppKey, String), (String, std::time::Instant)>>,
}

impl ServiceTokens {
    fn new(tokens: Arc<accounts::tokens::PlatformTokens>) -> ServiceTokens {
        ServiceTokens { tokens, cache: std::sync::Mutex::new(std::collections::HashMap::new()) }
    }
}

impl capability_http::AppTokens for ServiceTokens {
    fn token(&self, app: &deployment::AppKey, audience: &str) -> Result<String, String> {
        let key = (app.clone(), audience.to_owned());
        let now = std::time::Instant::now();
        let mut cache = self.cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((token, renew_at)) = cache.get(&key)
            && *renew_at > now
        {
            return Ok(token.clone());
        }
        let token = self
            .tokens
            .mint_service_token(&app.namespace, &app.name, audience)
            .map_err(|_| "the platform could not sign a token for the internal API".to_owned())?;
        let renew_at = now + accounts::tokens::APP_TOKEN_LIFETIME - Duration::from_secs(60);
        cache.insert(key, (token.clone(), renew_at));
        Ok(token)
    }
}

/// Periodic work, each a named task an admin can also run now (`terrarium tasks run NAME`):
/// metering, budgets, the secret sweep, Vault refreshes and governance; and, once, finishing an
/// interrupted key rotation.
fn add_background_tasks(
    tasks: &background::Tasks,
    control: &Arc<ControlPlane>,
    metering: &Arc<metering::Metering>,
    budgets: &Arc<metering::budgets::Budgets>,
    config: &PlatformConfig,
) {
    use background::{TaskSpec, job};
    let resume = control.clone();
    tokio::spawn(async move {
        if let Err(error) = resume.resume_kek_rotation().await {
            tracing::error!(%error, "the interrupted key-encryption key rotation could not be finished; run `terrarium secrets rotate-kek`");
        }
    });
    let flusher = metering.clone();
    tasks.add(
        TaskSpec {
            name: "metering.flush",
            about: "writes the usage counted in memory to the hourly roll-ups",
            every: Duration::from_secs(config.metering.flush_secs.max(1)),
            wake: None,
            at_start: false,
        },
        job(move || {
            let metering = flusher.clone();
            async move {
                metering.flush().await;
                Ok(())
            }
        }),
    );
    let evaluator = budgets.clone();
    tasks.add(
        TaskSpec {
            name: "budgets.evaluate",
            about: "alerts on budget thresholds, suspends apps over budget or quota, alerts on SLOs",
            every: Duration::from_secs(config.budgets.evaluate_secs.max(1)),
            wake: Some(control.changed.clone()),
            at_start: true,
        },
        job(move || {
            let budgets = evaluator.clone();
            async move { budgets.evaluate_now().await.map_err(|error| error.to_string()) }
        }),
    );
    let sweeper = control.clone();
    let reminder_days = config.secrets.expiry_reminder_days;
    tasks.add(
        TaskSpec {
            name: "secrets.sweep",
            about: "reminds owners of expiring secrets; flags secrets of apps past their TTL for rotation",
            every: Duration::from_secs(3600),
            wake: None,
            at_start: true,
        },
        job(move || {
            let control = sweeper.clone();
            async move {
                let now = control.clock().now();
                let reminded = control.sweep_secret_expiry(now, reminder_days).await;
                let flagged = control.flag_secrets_of_expired_apps(now).await;
                reminded.map_err(|error| format!("the secret expiry sweep failed: {error}"))?;
                flagged.map_err(|error| format!("the sweep of apps past their TTL failed: {error}"))?;
                Ok(())
            }
        }),
    );
    if let Some(vault) = &config.secrets.vault {
        let refresher = control.clone();
        tasks.add(
            TaskSpec {
                name: "secrets.vault_refresh",
                about: "reads new versions of Vault secrets and reloads the apps that use them",
                every: Duration::from_secs((vault.cache_secs / 2).max(1)),
                wake: None,
                at_start: false,
            },
            job(move || {
                let control = refresher.clone();
                async move {
                    control.refresh_vault_secrets().await;
                    Ok(())
                }
            }),
        );
    }
    control.add_governance_tasks(tasks);
}

/// The Vault client for `vault://` references and the transit KEK, when `[secrets.vault]` is set.
fn vault_client(config: &PlatformConfig) -> anyhow::Result<Option<Arc<vault::VaultClient>>> {
    let Some(section) = &config.secrets.vault else {
        return Ok(None);
    };
    let from_env = |variable: &str, what: &str| {
        std::env::var(variable).ok().filter(|value| !value.is_empty()).map(runtime::SecretValue::new).with_context(
            || format!("secrets.vault: {what} is read from the environment variable {variable}, which is not set"),
        )
    };
    let auth = match section.auth.as_str() {
        "token" => vault::VaultAuth::Token(from_env(&section.token_env, "the Vault token")?),
        "approle" => vault::VaultAuth::AppRole {
            mount: section.approle_mount.clone(),
            role_id: section.role_id.clone().context("secrets.vault: auth = \"approle\" needs role_id = \"...\"")?,
            secret_id: from_env(&section.secret_id_env, "the AppRole secret id")?,
        },
        other => anyhow::bail!("secrets.vault.auth: {other:?} is not supported; use \"token\" or \"approle\""),
    };
    let address = section.address.parse().with_context(|| {
        format!("secrets.vault.address: {:?} is not a URL like https://vault:8200", section.address)
    })?;
    let client = vault::VaultClient::new(vault::VaultConfig {
        address,
        auth,
        namespace: section.namespace.clone(),
        cache_ttl: Duration::from_secs(section.cache_secs),
        timeout: Duration::from_secs(10),
    })?;
    Ok(Some(Arc::new(client)))
}

const KEK_FILE: &str = "secrets-kek.json";

/// The key-encryption key of the secret store, as `[secrets] kek` says.
fn key_encryption_key(
    config: &PlatformConfig,
    data_dir: &Path,
    vault: Option<Arc<vault::VaultClient>>,
) -> anyhow::Result<Arc<dyn secrets::kek::KeyEncryptionKey>> {
    use crate::config::KekSource;
    Ok(match config.secrets.kek {
        KekSource::File => Arc::new(secrets::kek::KeyFile::open_or_create(&data_dir.join(KEK_FILE))?),
        KekSource::Env => {
            let variable = &config.secrets.kek_env;
            let value = std::env::var(variable).with_context(|| {
                format!("secrets.kek is \"env\", but {variable} is not set; set it to a key made with `openssl rand -base64 32`")
            })?;
            Arc::new(secrets::kek::EnvKeys::from_value(variable, &value)?)
        }
        KekSource::VaultTransit => {
            let vault = vault.context("secrets.kek is \"vault-transit\", which needs a [secrets.vault] section")?;
            Arc::new(vault::TransitKek::new(vault, &config.secrets.transit_mount, &config.secrets.transit_key))
        }
    })
}

async fn deploy_demo_apps(control: &ControlPlane) -> anyhow::Result<()> {
    let admin = Principal {
        subject: "terrarium-demo".to_owned(),
        groups: Vec::new(),
        roles: vec![(control::ALL_NAMESPACES.to_owned(), control::Role::Admin)],
    };
    for (_, bundle) in crate::init::demo_apps()? {
        let deployed =
            control.deploy_bundled(&admin, &bundle.to_tar()).await.map_err(|error| anyhow::anyhow!("{error}"))?;
        tracing::info!(namespace = %deployed.namespace, app = %deployed.name, revision = deployed.revision, "demo app deployed");
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}

fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("failed to create the data directory {}", dir.display()))?;
    }
    let mode = std::fs::metadata(dir)?.permissions().mode();
    if mode & 0o077 != 0 {
        tracing::warn!(dir = %dir.display(), "the data directory is readable by other users; chmod 700 it");
    }
    Ok(())
}

const SIGNING_KEYS_FILE: &str = "signing-keys.json";

/// The platform's token signing keys: created on first start in `signing-keys.json` (mode 0600),
/// read on later starts so tokens survive a restart.
fn signing_keys(data_dir: &Path) -> anyhow::Result<identity::KeyRing> {
    let path = data_dir.join(SIGNING_KEYS_FILE);
    match std::fs::read_to_string(&path) {
        Ok(document) => {
            return identity::KeyRing::from_json(&document)
                .with_context(|| format!("{} is not a valid key ring; restore it from a backup", path.display()));
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(error).with_context(|| format!("failed to read {}", path.display())),
    }
    let ring = identity::KeyRing::generate().context("failed to generate the platform signing key")?;
    write_private_file(&path, ring.to_json().as_bytes())
        .with_context(|| format!("failed to write {}", path.display()))?;
    Ok(ring)
}

/// Writes `contents` to `path` with mode 0600: to a temporary file, synced, then renamed, so a
/// crash leaves the old file or the new one.
fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let temporary = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&temporary)?;
    file.write_all(contents)?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)
}
