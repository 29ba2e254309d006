//! `terrarium serve`: composes the platform from its parts and runs it.
//!
//! This is the only place that picks concrete backends: SQLite and local disk for storage,
//! QuickJS for functions, the egress-checking HTTP client for `fetch`.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context;
use capability_http::OutboundHttpFactory;
use control::blobs::LocalBlobStore;
use control::logs::LogHub;
use control::{ControlPlane, ControlSettings, Principal};
use deployment::Deployment;
use gateway::{GatewayState, RoutingTable};
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
    let source = args.config.as_deref().unwrap_or(Path::new("terrarium.toml")).display().to_string();
    if args.check {
        return check(&config, &source);
    }
    // Every problem at once, before anything starts; the rest are found as each part is built.
    let problems = config.validate();
    if !problems.is_empty() {
        anyhow::bail!("{source} has {} problem(s):\n  - {}", problems.len(), problems.join("\n  - "));
    }
    // Sends the last spans when `run` returns.
    let _telemetry = telemetry::init(config.telemetry.build(args.log.clone()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    runtime.block_on(serve(args, config))
}

/// What an app's functions may call: `fetch` through its allow-list, its log, and the data
/// services its manifest binds.
struct Capabilities {
    outbound: OutboundHttpFactory,
    logs: Arc<LogHub>,
    kv: Arc<capability_kv::Kv>,
    sql: Arc<dyn capability_sql::SqlService>,
    /// The store of the apps' Cache API, the gateway's response cache (`None`: caching is off).
    cache: Option<Arc<cache::ResponseCache>>,
    /// The models apps may name in `spec.ai.models`.
    ai: capability_ai::Ai,
    vectors: Arc<capability_vectors::Vectors>,
}

impl runtime::loader::Capabilities for Capabilities {
    fn host_services(&self, deployment: &Deployment) -> Result<HostServices, String> {
        let outbound = self.outbound.for_deployment(deployment).map_err(|errors| {
            let reasons: Vec<String> = errors.iter().map(|error| error.to_string()).collect();
            format!("spec.allowedEgress: {}", reasons.join("; "))
        })?;
        let kv = deployment.kv_binding.as_ref().map(|binding| runtime::KvBinding {
            binding: binding.clone(),
            store: self.kv.for_app(&deployment.app, deployment.kv_max_mib, deployment.seal_data),
        });
        let sql = match &deployment.sql {
            Some(database) => {
                // A revision stored before `encrypted` existed says it through `seal_data`.
                let database = deployment::SqlDatabase {
                    encrypted: database.encrypted || deployment.seal_data,
                    ..database.clone()
                };
                Some(runtime::SqlBinding {
                    binding: database.binding.clone(),
                    database: self.sql.for_app(&deployment.app, &database)?,
                })
            }
            None => None,
        };
        let cache = self.cache.as_ref().map(|store| {
            Arc::new(cache::AppCaches::new(store.clone(), deployment.app.clone())) as Arc<dyn runtime::cache::CacheHost>
        });
        let ai = self.ai.for_app(&deployment.app, &deployment.ai_models);
        let vectors = deployment
            .vectors
            .as_ref()
            .map(|index| self.vectors.for_app(&deployment.app, index, deployment.revision, &deployment.ai_models));
        Ok(HostServices { outbound, log: self.logs.clone(), kv, sql, cache, ai, vectors })
    }
}

/// The local all-MiniLM-L6-v2, `embed-default` for apps and the text pipeline of vector indexes,
/// loaded from the models directory on first use (a server without it says so to the app that asks).
fn local_embedder(
    section: &capability_ai::config::AiSection,
    data_dir: &std::path::Path,
) -> Arc<dyn capability_ai::Embedder> {
    let dir = section.models_dir(data_dir).join(embed_candle::MODEL);
    let embedder = embed_candle::LocalEmbedder::new(dir, section.embedding_threads());
    if !embedder.installed() {
        tracing::info!(
            model = embed_candle::MODEL,
            "the embedding model is not installed; apps asking for embed-default are told to have it installed with `terrarium models fetch`"
        );
    }
    Arc::new(embedder)
}

/// Apps' stored data sealed under their namespace's data key, by the secret store's envelope
/// scheme (the key-encryption key wraps each namespace's data key).
struct DataSealer(Arc<secrets::SecretStore>);

impl capability_kv::Sealer for DataSealer {
    fn seal(
        &self,
        namespace: &str,
        aad: Vec<u8>,
        plaintext: Vec<u8>,
    ) -> futures::future::BoxFuture<'static, Result<(i64, Vec<u8>), String>> {
        let (secrets, namespace) = (self.0.clone(), namespace.to_owned());
        Box::pin(async move {
            secrets.seal_data(&namespace, &aad, &plaintext, &control::now()).await.map_err(|error| error.to_string())
        })
    }

    fn open(
        &self,
        namespace: &str,
        version: i64,
        aad: Vec<u8>,
        sealed: Vec<u8>,
    ) -> futures::future::BoxFuture<'static, Result<Vec<u8>, String>> {
        let (secrets, namespace) = (self.0.clone(), namespace.to_owned());
        Box::pin(async move {
            secrets
                .open_data(&namespace, version, &aad, &sealed, &control::now())
                .await
                .map_err(|error| error.to_string())
        })
    }
}

/// The keys of confidential and restricted apps' SQL files: derived from the namespace's data
/// key, so they are never stored and go with the secret store's key-encryption key.
impl capability_sql::DatabaseKeys for DataSealer {
    fn key(
        &self,
        namespace: &str,
        purpose: &str,
    ) -> futures::future::BoxFuture<'static, Result<capability_sql::FileKey, String>> {
        let (secrets, namespace, purpose) = (self.0.clone(), namespace.to_owned(), purpose.to_owned());
        Box::pin(async move {
            let key = secrets
                .derive_data_key(&namespace, &purpose, &control::now())
                .await
                .map_err(|error| error.to_string())?;
            let bytes: [u8; 32] = key.as_bytes().try_into().map_err(|_| "a derived key is not 256 bits".to_owned())?;
            Ok(zeroize::Zeroizing::new(bytes))
        })
    }
}

/// Records what every app stores now: its key-value bytes and its part of SQL files.
async fn measure_storage(
    kv: &capability_kv::Kv,
    sql: &Arc<dyn capability_sql::SqlService>,
    vectors: &capability_vectors::Vectors,
    metering: &metering::Metering,
    control: &ControlPlane,
) -> Result<(), String> {
    let mut stored: std::collections::HashMap<deployment::AppKey, u64> = sql.stored_bytes().await.into_iter().collect();
    for (app, bytes) in
        vectors.stored_bytes().await.map_err(|error| format!("vector storage could not be read: {error}"))?
    {
        *stored.entry(app).or_default() += bytes;
    }
    let apps = control.list_apps(None).await.map_err(|error| format!("the apps could not be listed: {error}"))?;
    for app in apps {
        let key = deployment::AppKey::new(app.namespace, app.name);
        let kv_bytes = kv.usage(&key).await.map_err(|error| format!("KV usage could not be read: {error}"))?.bytes;
        *stored.entry(key).or_default() += kv_bytes;
    }
    for (app, bytes) in stored {
        metering.record_storage(&app, bytes);
    }
    Ok(())
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
    let blobs = Arc::new(LocalBlobStore::new(&data_dir, config.gateway.blob_cache_bytes()));
    let logs = Arc::new(LogHub::new());
    let routes = Arc::new(RoutingTable::new());
    // Responses apps mark shareable; a deploy, rollback or delete of an app purges its entries.
    let response_cache = match (config.cache.build(), config.cache.disk(&data_dir)) {
        (Some(limits), Some(disk)) => {
            Some(Arc::new(cache::ResponseCache::with_disk(limits, &disk).with_context(|| {
                format!("failed to open the response cache's disk tier in {} (cache.disk_path)", disk.dir.display())
            })?))
        }
        (Some(limits), None) => Some(Arc::new(cache::ResponseCache::new(limits))),
        (None, _) => None,
    };
    if let Some(cache) = &response_cache {
        let cache = cache.clone();
        routes.on_change(Box::new(move |app| cache.purge_app(app)));
    }

    let listener = tokio::net::TcpListener::bind(args.listen.unwrap_or(config.server.listen))
        .await
        .with_context(|| format!("failed to listen on {}", args.listen.unwrap_or(config.server.listen)))?;
    let local = listener.local_addr()?;
    let public_url = config.server.public_url.clone().unwrap_or_else(|| {
        let host = if local.ip().is_unspecified() { "localhost".to_owned() } else { local.ip().to_string() };
        format!("http://{host}:{}", local.port())
    });
    let namespaces = Arc::new(config.namespaces().map_err(|problems| anyhow::anyhow!(problems.join("; ")))?);
    let bundle_limits = config.limits.bundle_limits();
    let keys_path = data_dir.join(SIGNING_KEYS_FILE);
    let save_keys: accounts::tokens::SaveKeys =
        Box::new(move |ring| durable::write_private(&keys_path, ring.to_json().as_bytes()));
    let tokens =
        Arc::new(accounts::tokens::PlatformTokens::new(identity::TokenIssuer::new(&public_url, key_ring), save_keys));
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
        config
            .egress
            .build(concat!("terrarium/", env!("CARGO_PKG_VERSION")).to_owned(), &namespaces.internal_ranges())
            .map_err(|error| anyhow::anyhow!(error))?,
        tokio::runtime::Handle::current(),
    )
    .context("failed to build the outbound HTTP client")?
    .with_recorder(egress_log)
    .with_app_tokens(Arc::new(ServiceTokens::new(tokens.clone())));
    let cores = std::thread::available_parallelism().map_or(2, usize::from);
    let engine: Arc<dyn Engine> = Arc::new(engine_js::JsEngine::new(config.engine.build(cores)));
    let kv_store: Arc<dyn capability_kv::store::KvStore> = match config.data.backend {
        crate::config::DataBackend::Sqlite => store.clone(),
        crate::config::DataBackend::Postgres => {
            let url = config.data.postgres.build().map_err(anyhow::Error::msg)?;
            let postgres = store_postgres::PostgresStore::connect(&url, config.data.postgres.max_connections)
                .await
                .map_err(anyhow::Error::msg)?;
            tracing::info!(
                "apps' key-value data and SQL databases are in PostgreSQL (those of confidential and restricted \
                 apps in encrypted SQLite files under {})",
                data_dir.join("sql").display()
            );
            Arc::new(postgres)
        }
    };
    let secret_store =
        Arc::new(secrets::SecretStore::new(store.clone(), key_encryption_key(&config, &data_dir, vault.clone())?));
    let sealer = Arc::new(DataSealer(secret_store.clone()));
    let kv =
        Arc::new(capability_kv::Kv::new(kv_store, &config.data.kv, clock.clone(), metering.clone(), sealer.clone()));
    let embedded_sql: Arc<dyn capability_sql::SqlService> = Arc::new(Arc::new(
        capability_sql::Sql::new(&config.data.sql, &data_dir, metering.clone()).with_keys(sealer.clone()),
    ));
    let sql: Arc<dyn capability_sql::SqlService> = match config.data.backend {
        crate::config::DataBackend::Sqlite => embedded_sql,
        crate::config::DataBackend::Postgres => {
            let url = config.data.postgres.build().map_err(anyhow::Error::msg)?;
            Arc::new(
                data_postgres::PgSql::connect(
                    &url,
                    &config.data.sql,
                    &data_dir,
                    metering.clone(),
                    sealer.clone(),
                    embedded_sql,
                )
                .await
                .map_err(anyhow::Error::msg)?,
            )
        }
    };
    let embedder = local_embedder(&config.ai, &data_dir);
    let vectors = Arc::new(
        capability_vectors::Vectors::new(
            &data_dir,
            config.data.vectors.clone(),
            sealer.clone(),
            Some(embedder.clone()),
            clock.clone(),
            metering.clone(),
        )
        .with_graphs(Arc::new(ann_usearch::Usearch::default())),
    );
    let app_secrets = Arc::new(secrets::apps::AppSecrets::new(
        secret_store,
        vault.map(|vault| vault as Arc<dyn secrets::apps::KvSource>),
    ));
    let loader = Arc::new(runtime::loader::Loader::new(
        engine,
        blobs.clone(),
        Arc::new(Capabilities {
            outbound,
            logs: logs.clone(),
            kv: kv.clone(),
            sql: sql.clone(),
            cache: response_cache.clone(),
            ai: capability_ai::Ai::new()
                .with_embedder(capability_ai::EMBED_DEFAULT, embedder)
                .with_meter(metering.clone()),
            vectors: vectors.clone(),
        }),
        app_secrets.clone(),
    ));

    let federation = config.identity.build().await.map_err(|error| anyhow::anyhow!(error))?;
    let governance = Arc::new(control::governance::Governance::new(
        Arc::new(crate::policies::Policies::load(&config.policy)?),
        store.clone(),
        control::governance::config::settings(&config.policy, &config.approvals),
        namespaces.clone(),
    ));
    let accounts = Arc::new(accounts::Accounts::new(store.clone(), tokens, federation)?);
    let notifier = notifier(&config, store.clone())?;
    let archived = Arc::new(gateway::ArchivedApps::default());
    let control = Arc::new(ControlPlane::new(control::ControlParts {
        archived: archived.clone(),
        store: store.clone(),
        blobs: blobs.clone(),
        loader,
        routes: routes.clone(),
        logs: logs.clone(),
        egress_store: store.clone(),
        metrics: metrics.clone(),
        usage_store: store.clone(),
        governance,
        owners: Arc::new(AccountsDirectory(accounts.clone())),
        hooks: Arc::new(crate::hooks::Hooks {
            secrets: app_secrets.clone(),
            kv: kv.clone(),
            sql: sql.clone(),
            vectors: vectors.clone(),
        }),
        slo: slo.clone(),
        notifier: notifier.clone(),
        settings: ControlSettings {
            defaults: config.limits.defaults(&config.access, config.egress.max_bytes_per_request),
            bundle_limits,
            public_url: public_url.clone(),
            apps_domain: config.gateway.apps_domain.clone(),
            port: local.port(),
            scanner: Arc::new(config.scan.build().map_err(|error| anyhow::anyhow!(error))?),
            block_on_secrets: config.scan.block,
            clock: clock.clone(),
            lifecycle: config.lifecycle.clone(),
        },
    })?);
    let secrets_admin = Arc::new(secrets::admin::SecretsAdmin::new(app_secrets.clone(), control.clone()));
    let first_admin_password = accounts.ensure_first_admin(std::env::var("TERRARIUM_ADMIN_PASSWORD").ok()).await?;

    let suspensions = Arc::new(gateway::Suspensions::default());
    let budgets = Arc::new(metering::budgets::Budgets::new(
        config.budgets.build(&config.pricing, namespaces.budgets()),
        metering::budgets::BudgetParts {
            usage: store.clone(),
            registry: store.clone(),
            metering: metering.clone(),
            routes: routes.clone(),
            suspensions: suspensions.clone(),
            notifier: notifier.clone(),
            slo: slo.clone(),
            metrics: metrics.clone(),
        },
    ));
    let max_upload = (bundle_limits.max_total_bytes as usize).saturating_mul(2).saturating_add(1 << 20);
    let gateway_config =
        config.gateway.build(public_url.clone(), max_upload).map_err(|error| anyhow::anyhow!("gateway: {error}"))?;
    let secure_cookies = gateway_config.secure_cookies;
    if !secure_cookies {
        tracing::warn!(
            "[gateway] insecure_cookies is on: session cookies travel in clear over plain HTTP; serve the platform over HTTPS"
        );
    }
    let api_state = Arc::new(control_api::ApiState {
        cache: response_cache.clone(),
        control: control.clone(),
        accounts: accounts.clone(),
        secrets: secrets_admin.clone(),
        kv: kv.clone(),
        sql: sql.clone(),
        public_url: public_url.clone(),
        apps_domain: config.gateway.apps_domain.clone(),
        secure_cookies,
        budgets: budgets.clone(),
        notifier,
        tasks: tasks.clone(),
        clock,
    });
    // The control API and the web console: one state, the same service methods.
    let api = control_api::router(api_state.clone(), max_upload).merge(dashboard::router(api_state));
    let mut state = GatewayState::new(
        gateway_config,
        routes,
        blobs,
        accounts.clone(),
        metering.clone(),
        suspensions,
        Arc::new({
            let (default, named) = namespaces.ceilings();
            gateway::NamespaceCeilings::new(default, named.into_iter().collect())
        }),
    );
    state.archived = archived;
    if config.telemetry.otlp_endpoint.is_some() {
        state.request_span = telemetry::request_span;
    }
    // Traced or not, an app's outbound calls carry the request's trace context on.
    state.outgoing_trace_context = telemetry::outgoing_trace_context;
    state.app_log = Some(logs);
    state.cache = response_cache;
    let state = Arc::new(state);
    let app = gateway::build_stack(state.clone(), api);

    // Serve at once (health answers, readiness waits), then load what was deployed before.
    let front_door = config.server.limits.clone();
    let server = tokio::spawn(crate::front_door::serve(listener, app, front_door, shutdown_signal()));
    let n_loaded = control.load_active().await?;
    if args.demo {
        deploy_demo_apps(&control).await?;
    }
    state.ready.store(true, Ordering::Release);
    add_background_tasks(&tasks, &control, &secrets_admin, &metering, &budgets, &config);
    let sweeper = kv.clone();
    tasks.add(
        background::TaskSpec {
            name: "kv.sweep",
            about: "deletes apps' key-value entries that have expired (they are never answered once expired)",
            every: config.data.kv.build(),
            wake: None,
            at_start: false,
        },
        background::job(move || {
            let kv = sweeper.clone();
            async move { kv.sweep().await.map(drop).map_err(|error| format!("the KV sweep failed: {error}")) }
        }),
    );
    let (sweeper, unloader) = (vectors.clone(), vectors.clone());
    tasks.add(
        background::TaskSpec {
            name: "vectors.sweep",
            about: "deletes apps' vectors that have expired (ttlDays; they are never answered once expired)",
            every: std::time::Duration::from_secs(config.data.vectors.sweep_secs),
            wake: None,
            at_start: false,
        },
        background::job(move || {
            let vectors = sweeper.clone();
            async move { vectors.sweep().await.map(drop).map_err(|error| format!("the vector sweep failed: {error}")) }
        }),
    );
    tasks.add(
        background::TaskSpec {
            name: "vectors.unload",
            about: "takes vector indexes nobody used lately out of memory (their next use loads them from disk)",
            every: std::time::Duration::from_secs(60),
            wake: None,
            at_start: false,
        },
        background::job(move || {
            let vectors = unloader.clone();
            async move {
                vectors.unload_idle();
                Ok(())
            }
        }),
    );
    let (measured_kv, measured_sql, measured_vectors, measuring, apps) =
        (kv.clone(), sql.clone(), vectors.clone(), metering.clone(), control.clone());
    tasks.add(
        background::TaskSpec {
            name: "data.storage",
            about: "measures what each app stores (key-value, SQL and vector indexes) for usage, cost and metrics",
            every: config.metering.storage_every(),
            wake: None,
            at_start: false,
        },
        background::job(move || {
            let (kv, sql, vectors, metering, control) =
                (measured_kv.clone(), measured_sql.clone(), measured_vectors.clone(), measuring.clone(), apps.clone());
            async move { measure_storage(&kv, &sql, &vectors, &metering, &control).await }
        }),
    );
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

    async fn addresses(&self, owner: &str) -> Result<Vec<String>, String> {
        self.0.addresses(owner).await.map_err(|error| error.to_string())
    }
}

/// The notifier from `[notify]`: the operator's webhooks and mail server.
fn notifier(
    config: &PlatformConfig,
    store: Arc<dyn notify::NotificationStore>,
) -> anyhow::Result<Arc<notify::Notifier>> {
    let (webhooks, smtp) = config.notify.build().map_err(|error| anyhow::anyhow!(error))?;
    let notifier = notify::Notifier::new(webhooks, smtp, store).map_err(|error| anyhow::anyhow!(error))?;
    Ok(Arc::new(notifier))
}

/// `terrarium serve --check`: every section of the configuration is checked as `serve` would
/// check it, and every problem is reported at once; nothing is started, opened or written.
fn check(config: &PlatformConfig, source: &str) -> anyhow::Result<()> {
    if config.server.adjustable_clock {
        eprintln!(
            "warning: server.adjustable_clock is true: an admin may move this server's clock (test servers only)"
        );
    }
    let mut problems = config.validate();
    // What only building shows: the policies compile, the Vault credential is in the environment.
    let mut note = |result: anyhow::Result<()>| problems.extend(result.err().map(|error| format!("{error:#}")));
    note(crate::policies::Policies::load(&config.policy).map(drop));
    note(vault_client(config).map(drop));
    let public_url = config.server.public_url.clone().unwrap_or_else(|| format!("http://{}", config.server.listen));
    note(config.gateway.secure_cookies(&public_url).map(drop).map_err(|error| anyhow::anyhow!("gateway: {error}")));
    problems.dedup();
    match problems.as_slice() {
        [] => {
            println!("{source} is valid");
            Ok(())
        }
        _ => anyhow::bail!("{source} has {} problem(s):\n  - {}", problems.len(), problems.join("\n  - ")),
    }
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
    secrets: &Arc<secrets::admin::SecretsAdmin>,
    metering: &Arc<metering::Metering>,
    budgets: &Arc<metering::budgets::Budgets>,
    config: &PlatformConfig,
) {
    use background::{TaskSpec, job};
    let resume = secrets.clone();
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
            every: config.metering.flush_every(),
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
            every: config.budgets.evaluate_every(),
            wake: Some(control.changed.clone()),
            at_start: true,
        },
        job(move || {
            let budgets = evaluator.clone();
            async move { budgets.evaluate_now().await.map_err(|error| error.to_string()) }
        }),
    );
    let sweeper = secrets.clone();
    let clock = control.clock().clone();
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
            let secrets = sweeper.clone();
            let now = clock.now();
            async move {
                let reminded = secrets.sweep_expiry(now, reminder_days).await;
                let flagged = secrets.flag_expired_apps(now).await;
                reminded.map_err(|error| format!("the secret expiry sweep failed: {error}"))?;
                flagged.map_err(|error| format!("the sweep of apps past their TTL failed: {error}"))?;
                Ok(())
            }
        }),
    );
    if let Some(vault) = &config.secrets.vault {
        let refresher = secrets.clone();
        tasks.add(
            TaskSpec {
                name: "secrets.vault_refresh",
                about: "reads new versions of Vault secrets and reloads the apps that use them",
                every: Duration::from_secs((vault.cache_secs / 2).max(1)),
                wake: None,
                at_start: false,
            },
            job(move || {
                let secrets = refresher.clone();
                async move {
                    secrets.refresh_vault().await;
                    Ok(())
                }
            }),
        );
    }
    let archiver = control.clone();
    tasks.add(
        TaskSpec {
            name: "lifecycle.archive",
            about: "archives apps past their TTL with their data (410 until restored)",
            every: Duration::from_secs(3600),
            wake: None,
            at_start: true,
        },
        job(move || {
            let control = archiver.clone();
            async move {
                control
                    .archive_expired()
                    .await
                    .map(drop)
                    .map_err(|error| format!("archiving expired apps failed: {error}"))
            }
        }),
    );
    let lifecycle = control.clone();
    tasks.add(
        TaskSpec {
            name: "lifecycle.reminders",
            about: "tells owners of apps that expire in 30 days, in 7 days and today (each once per expiry date)",
            every: Duration::from_secs(3600),
            wake: None,
            at_start: true,
        },
        job(move || {
            let control = lifecycle.clone();
            async move {
                control
                    .send_expiry_reminders()
                    .await
                    .map(drop)
                    .map_err(|error| format!("the expiry reminders failed: {error}"))
            }
        }),
    );
    control.add_governance_tasks(tasks);
}

/// The Vault client for `vault://` references and the transit KEK, when `[secrets.vault]` is set.
fn vault_client(config: &PlatformConfig) -> anyhow::Result<Option<Arc<vault::VaultClient>>> {
    let Some(section) = &config.secrets.vault else {
        return Ok(None);
    };
    Ok(Some(Arc::new(vault::VaultClient::from_section(section).map_err(|error| anyhow::anyhow!(error))?)))
}

/// The key-encryption key of the secret store, as `[secrets] kek` says.
fn key_encryption_key(
    config: &PlatformConfig,
    data_dir: &Path,
    vault: Option<Arc<vault::VaultClient>>,
) -> anyhow::Result<Arc<dyn secrets::kek::KeyEncryptionKey>> {
    let transit = vault.map(|vault| {
        Arc::new(vault::TransitKek::new(vault, &config.secrets.transit_mount, &config.secrets.transit_key))
            as Arc<dyn secrets::kek::KeyEncryptionKey>
    });
    config.secrets.build_kek(data_dir, transit).map_err(|error| anyhow::anyhow!(error))
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
    durable::write_private(&path, ring.to_json().as_bytes())
        .with_context(|| format!("failed to write {}", path.display()))?;
    Ok(ring)
}
