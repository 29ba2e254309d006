//! The control plane: the deploy pipeline, the registry, rollbacks, deletes and the audit log.
//!
//! A deploy goes: unpack the upload ([`bundle`]) → validate the manifest again (never trust
//! the client) → [`plan`] the deployment → store blobs content-addressed → compile the
//! functions ([`runtime::loader::Loader`]) → write revision + audit event in one transaction → swap the
//! gateway's routing table. A failure at any step leaves the previous revision serving.

pub mod blobs;
pub mod governance;
pub mod hooks;
pub mod lifecycle;
pub mod logs;
mod reads;
mod secrets_host;
pub mod store;

use std::sync::Arc;

use api_types::{AppDetail, AppSummary, AuditEvent, DeployResponse, NamespaceInfo, RevisionInfo};
use bundle::{Bundle, BundleError, BundleLimits, MANIFEST_FILE};
use deployment::{AppKey, Deployment};
use gateway::{LiveApp, RoutingTable};

use crate::blobs::LocalBlobStore;
use crate::logs::LogHub;
use crate::store::{AppRow, AuditFilter, NewAuditEvent, NewRevision, RegistryStore, StoreError};
use plan::PlatformDefaults;

pub use identity::{ALL_NAMESPACES, Principal, Role};

/// Who may own an app (`user:<name>`, `group:<name>`), for the policies' `directory`.
/// Accounts keeps users and groups; the binary connects the two.
#[async_trait::async_trait]
pub trait OwnerDirectory: Send + Sync + 'static {
    async fn owners(&self) -> Result<Vec<String>, String>;
    /// The e-mail addresses that reach an owner (a user's own, a group's members'); empty when
    /// none is known.
    async fn addresses(&self, _owner: &str) -> Result<Vec<String>, String> {
        Ok(Vec::new())
    }
}

/// Every way a control-plane call can fail, each with what the caller can do about it.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("the bundle was refused: {0}")]
    Bundle(#[from] BundleError),
    #[error("{MANIFEST_FILE} has {} problem(s)", .0.len())]
    InvalidManifest(Vec<String>),
    #[error("the app cannot be deployed as it is")]
    Unplannable(Vec<String>),
    /// Likely secrets in the bundle (masked), and what to do instead.
    #[error("the bundle holds {count} likely secret(s); the deploy was stopped")]
    SecretsFound { count: usize, details: Vec<String> },
    /// Policies in `deny` mode refused the app; each detail names its policy.
    #[error("the policies refuse this app: {}", .details.join("; "))]
    PolicyDenied { details: Vec<String> },
    /// The policies could not be evaluated; deploys fail closed.
    #[error("the policies could not be evaluated, so nothing was deployed: {0}")]
    PolicyFailed(String),
    /// New policies were refused; the previous ones keep running.
    #[error("the new policies cannot be used, so the previous ones keep running: {0}")]
    PolicyInvalid(String),
    #[error("the app's code does not load: {0}")]
    Load(String),
    #[error("namespace {namespace:?} does not exist; create it with `terrarium namespaces create {namespace}`")]
    UnknownNamespace { namespace: String },
    #[error("namespace {namespace:?} already exists")]
    NamespaceExists { namespace: String },
    #[error("app {app} does not exist; list apps with `terrarium apps list`")]
    UnknownApp { app: AppKey },
    #[error("app {app} has no revision {revision}; see its revisions with `terrarium apps get {app}`")]
    UnknownRevision { app: AppKey, revision: i64 },
    #[error("app {app} has no earlier revision to roll back to")]
    NothingToRollBack { app: AppKey },
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    InvalidName(String),
    /// A request's values are out of range; the message says which and what is allowed.
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0}")]
    NotFound(String),
    /// The caller is known but lacks the role; the message says which role, where, and who grants it.
    #[error("{0}")]
    Forbidden(String),
    #[error("internal error")]
    Internal(String),
}

impl From<metering::MeteringError> for ControlError {
    fn from(error: metering::MeteringError) -> ControlError {
        match error {
            metering::MeteringError::InvalidMonth(message) => ControlError::InvalidName(message),
            metering::MeteringError::Storage(error) => ControlError::Internal(error.to_string()),
        }
    }
}

impl From<metering::StorageError> for ControlError {
    fn from(error: metering::StorageError) -> ControlError {
        ControlError::Internal(error.to_string())
    }
}

impl From<notify::StorageError> for ControlError {
    fn from(error: notify::StorageError) -> ControlError {
        ControlError::Internal(error.to_string())
    }
}

impl From<StoreError> for ControlError {
    fn from(error: StoreError) -> ControlError {
        match error {
            StoreError::UnknownNamespace { namespace } => ControlError::UnknownNamespace { namespace },
            StoreError::NamespaceExists { namespace } => ControlError::NamespaceExists { namespace },
            StoreError::UnknownApp { app } => ControlError::UnknownApp { app },
            StoreError::UnknownRevision { app, revision } => ControlError::UnknownRevision { app, revision },
            conflict @ StoreError::Conflict { .. } => ControlError::Conflict(conflict.to_string()),
            StoreError::Refused(message) => ControlError::Conflict(message),
            StoreError::Backend(message) => ControlError::Internal(message),
        }
    }
}

/// Settings of the control plane, spelled out by the binary.
#[derive(Clone, Debug)]
pub struct ControlSettings {
    pub defaults: PlatformDefaults,
    pub bundle_limits: BundleLimits,
    /// Base URL of this server as users reach it (`http://127.0.0.1:8080`).
    pub public_url: String,
    pub apps_domain: String,
    /// Port of the apps' host-based URLs (`http://<app>.<ns>.<domain>:<port>/`).
    pub port: u16,
    /// Secret detection run on every uploaded bundle.
    pub scanner: Arc<scan::Scanner>,
    /// Whether a finding stops the deploy (the default) or only warns.
    pub block_on_secrets: bool,
    /// "Now" for TTLs, expiries, exceptions and approval timeouts.
    pub clock: background::Clock,
    /// `[lifecycle]`: how long archives are kept.
    pub lifecycle: lifecycle::LifecycleSection,
}

/// What the control plane is built from: its stores, the services it calls, its settings.
pub struct ControlParts {
    pub store: Arc<dyn RegistryStore>,
    pub blobs: Arc<LocalBlobStore>,
    pub loader: Arc<runtime::loader::Loader>,
    pub routes: Arc<RoutingTable>,
    pub logs: Arc<LogHub>,
    pub egress_store: Arc<dyn metering::store::EgressLogStore>,
    pub metrics: Arc<metering::metrics::Metrics>,
    pub usage_store: Arc<dyn metering::store::UsageStore>,
    pub governance: Arc<governance::Governance>,
    pub owners: Arc<dyn OwnerDirectory>,
    pub hooks: Arc<dyn hooks::AppHooks>,
    pub slo: Arc<metering::slo::SloTracker>,
    pub notifier: Arc<notify::Notifier>,
    /// The archived apps the gateway answers 410 for.
    pub archived: Arc<gateway::ArchivedApps>,
    pub settings: ControlSettings,
}

pub struct ControlPlane {
    store: Arc<dyn RegistryStore>,
    blobs: Arc<LocalBlobStore>,
    loader: Arc<runtime::loader::Loader>,
    routes: Arc<RoutingTable>,
    pub logs: Arc<LogHub>,
    /// Apps' outbound requests, as the egress log stored them.
    egress_store: Arc<dyn metering::store::EgressLogStore>,
    /// The platform's Prometheus metrics (`/metrics`).
    pub metrics: Arc<metering::metrics::Metrics>,
    /// Metering roll-ups per app per hour and day.
    usage_store: Arc<dyn metering::store::UsageStore>,
    /// Policies, approvals, exceptions and the policy audit.
    governance: Arc<governance::Governance>,
    /// Users and groups, from accounts.
    owners: Arc<dyn OwnerDirectory>,
    /// The services that keep data per app, told of deletes and owner changes.
    hooks: Arc<dyn hooks::AppHooks>,
    settings: ControlSettings,
    /// Apps' SLO windows, for `apps get`.
    slo: Arc<metering::slo::SloTracker>,
    /// Tells people about secrets that expire or need rotating.
    notifier: Arc<notify::Notifier>,
    /// The archived apps the gateway answers 410 for.
    archived: Arc<gateway::ArchivedApps>,
    /// Signalled whenever the routing table changes (deploy, rollback, reload), so budgets and
    /// quotas of a new revision apply at once.
    pub changed: Arc<tokio::sync::Notify>,
    /// Deploys, rollbacks and deletes run one at a time: they are rare, and it keeps the
    /// revision numbering and the routing table in step with the database.
    change_lock: tokio::sync::Mutex<()>,
}

pub use audit::{Action, Outcome, now};

/// A successful change to an app.
fn audit(principal: &Principal, action: Action, app: &AppKey, revision: Option<i64>, detail: String) -> NewAuditEvent {
    NewAuditEvent::new(&principal.subject, action, Outcome::Success).app(app).revision(revision).detail(detail)
}

impl ControlPlane {
    pub fn new(parts: ControlParts) -> Result<ControlPlane, ControlError> {
        let ControlParts {
            store,
            blobs,
            loader,
            routes,
            logs,
            egress_store,
            metrics,
            usage_store,
            governance,
            owners,
            hooks,
            slo,
            notifier,
            archived,
            settings,
        } = parts;
        Ok(ControlPlane {
            store,
            blobs,
            loader,
            routes,
            logs,
            egress_store,
            metrics,
            usage_store,
            governance,
            owners,
            hooks,
            settings,
            slo,
            notifier,
            archived,
            changed: Arc::new(tokio::sync::Notify::new()),
            change_lock: tokio::sync::Mutex::new(()),
        })
    }

    /// Loads the app's active deployment again (with fresh secrets) and swaps it in. On failure
    /// the running version keeps serving.
    pub async fn reload(&self, app: &AppKey) -> bool {
        let _guard = self.change_lock.lock().await;
        let Some(live) = self.routes.get(app) else {
            return false;
        };
        match self.load(live.deployment.clone()).await {
            Ok(reloaded) => {
                self.routes.insert(reloaded);
                self.changed.notify_one();
                true
            }
            Err(error) => {
                tracing::error!(namespace = %app.namespace, app = %app.name, %error, "reload with new secrets failed; the app keeps its previous values");
                false
            }
        }
    }

    /// Compiles a deployment's functions into what the gateway serves.
    async fn load(&self, deployment: Arc<Deployment>) -> Result<LiveApp, String> {
        let functions = self.loader.load(&deployment).await?;
        Ok(LiveApp::new(deployment, functions))
    }

    /// Loads every app's active revision into the routing table (at start). An app whose code
    /// no longer loads is logged and skipped; the others serve.
    pub async fn load_active(&self) -> Result<usize, ControlError> {
        for row in self.store.list_apps(None).await? {
            if let Some((archived_at, _)) = row.archived {
                self.archived.insert(row.app, gateway::ArchivedApp { archived_at });
            }
        }
        let deployments = self.store.active_deployments().await?;
        let mut n_loaded = 0;
        for deployment in deployments {
            let app = deployment.app.clone();
            match self.load(Arc::new(deployment)).await {
                Ok(live) => {
                    self.routes.insert(live);
                    n_loaded += 1;
                }
                Err(error) => {
                    tracing::error!(namespace = %app.namespace, app = %app.name, %error, "app failed to load")
                }
            }
        }
        Ok(n_loaded)
    }

    /// The deploy pipeline, from the uploaded archive to the switched routing table (or to an
    /// approval request, when the revision asks for more than the app was granted).
    pub async fn deploy(&self, principal: &Principal, archive: &[u8]) -> Result<DeployResponse, ControlError> {
        self.deploy_with(principal, archive, true, false).await
    }

    /// What a deploy of `archive` would say, without deploying anything: the manifest and the
    /// files checked, the code loaded, and the hints on it (its warnings). For whoever may
    /// deploy the app: the console's Check, in the deploy's own words.
    pub async fn check(&self, principal: &Principal, archive: &[u8]) -> Result<Vec<String>, ControlError> {
        let (bundle, _, validated) = self.open_bundle(archive)?;
        let app = AppKey::new(&validated.manifest().metadata.namespace, &validated.manifest().metadata.name);
        self.authorize_deploy(principal, &app, &validated.manifest().spec.owner.to_string()).await?;
        let mut warnings: Vec<String> = validated.warnings().iter().map(|warning| warning.to_string()).collect();
        let findings = plan::secret_findings(&self.settings.scanner, &bundle);
        if !findings.is_empty() {
            let details = findings.iter().map(ToString::to_string).collect();
            return Err(ControlError::SecretsFound { count: findings.len(), details });
        }
        let deployment =
            plan::plan(&validated, &bundle, 0, &self.settings.defaults).map_err(ControlError::Unplannable)?;
        warnings.extend(self.hints(&validated, &bundle).await);
        // The loader reads files from the blob store (content-addressed: storing is harmless).
        self.store_blobs(&bundle).await?;
        // Loaded and dropped: nothing is recorded or served.
        self.load(Arc::new(deployment)).await.map_err(ControlError::Load)?;
        Ok(warnings)
    }

    /// An uploaded archive: its bundle, its manifest's text, and the manifest validated.
    fn open_bundle(&self, archive: &[u8]) -> Result<(Bundle, String, manifest::ValidatedManifest), ControlError> {
        let bundle = Bundle::from_tar(archive, &self.settings.bundle_limits)?;
        let source = std::str::from_utf8(bundle.manifest()?)
            .map_err(|_| ControlError::InvalidManifest(vec![format!("{MANIFEST_FILE} is not UTF-8 text")]))?
            .to_owned();
        let validated = manifest::load(MANIFEST_FILE, &source).map_err(|diagnostics| {
            ControlError::InvalidManifest(diagnostics.iter().map(|d| d.to_string()).collect())
        })?;
        Ok((bundle, source, validated))
    }

    /// Every file of the bundle in the blob store, where the loader and the gateway read them.
    async fn store_blobs(&self, bundle: &Bundle) -> Result<(), ControlError> {
        for contents in bundle.files().values() {
            self.blobs
                .put(contents)
                .await
                .map_err(|error| ControlError::Internal(format!("storing a blob: {error}")))?;
        }
        Ok(())
    }

    /// The hints on an app's code, knowing its secret names when they are the platform's (the
    /// app's own, whatever the reference names: its names are never another app's to probe).
    async fn hints(&self, validated: &manifest::ValidatedManifest, bundle: &Bundle) -> Vec<String> {
        let manifest = validated.manifest();
        let app = AppKey::new(&manifest.metadata.namespace, &manifest.metadata.name);
        let secret_names = match &manifest.spec.secrets_ref {
            Some(manifest::SecretsRef::Terrarium { namespace, app: name })
                if *namespace == app.namespace && *name == app.name =>
            {
                self.hooks.secret_names(&app).await
            }
            _ => None,
        };
        plan::hints::hints(validated, bundle, secret_names.as_ref()).into_iter().map(|hint| hint.to_string()).collect()
    }

    /// Deploys a new app: like [`ControlPlane::deploy`], but refused (conflict) when the app
    /// exists or its first revision waits for approval, so making an app never replaces one.
    pub async fn create(&self, principal: &Principal, archive: &[u8]) -> Result<DeployResponse, ControlError> {
        self.deploy_with(principal, archive, true, true).await
    }

    /// Deploys apps that ship inside the binary (`serve --demo`): trusted content, so policies
    /// are not consulted at admission (the background audit still reports on them).
    pub async fn deploy_bundled(&self, principal: &Principal, archive: &[u8]) -> Result<DeployResponse, ControlError> {
        self.deploy_with(principal, archive, false, false).await
    }

    async fn deploy_with(
        &self,
        principal: &Principal,
        archive: &[u8],
        govern: bool,
        create_only: bool,
    ) -> Result<DeployResponse, ControlError> {
        let (bundle, source, validated) = self.open_bundle(archive)?;
        let mut warnings: Vec<String> = validated.warnings().iter().map(|warning| warning.to_string()).collect();
        let app = AppKey::new(&validated.manifest().metadata.namespace, &validated.manifest().metadata.name);

        let _guard = self.change_lock.lock().await;
        self.authorize_deploy(principal, &app, &validated.manifest().spec.owner.to_string()).await?;
        self.refuse_if_archived(&app).await?;
        if create_only {
            let exists = match self.store.get_app(&app).await {
                Ok(_) => true,
                Err(StoreError::UnknownApp { .. }) => self.pending_first_revision(&app).await.is_some(),
                Err(error) => return Err(error.into()),
            };
            if exists {
                return Err(ControlError::Conflict(format!(
                    "an app named {} already exists in {}; choose another name, or open that app to change it",
                    app.name, app.namespace
                )));
            }
        }
        // Scanned again here whatever the client did: a bundle may come from anywhere.
        let findings = plan::secret_findings(&self.settings.scanner, &bundle);
        if !findings.is_empty() {
            let mut details: Vec<String> = findings.iter().map(ToString::to_string).collect();
            let detail = format!("{} likely secret(s): {}", findings.len(), details.join("; "));
            if self.settings.block_on_secrets {
                self.audit_refusal(principal, &app, detail).await;
                let count = details.len();
                details.push(plan::secrets_hint(&app.namespace, &app.name));
                return Err(ControlError::SecretsFound { count, details });
            }
            warnings.extend(details.into_iter().map(|finding| format!("likely secret: {finding}")));
        }
        let revision = self.store.next_revision(&app).await?;
        let deployment =
            plan::plan(&validated, &bundle, revision, &self.settings.defaults).map_err(ControlError::Unplannable)?;
        // What the code will meet at run time, said now: unlisted hosts, unknown env names,
        // Node.js globals.
        warnings.extend(self.hints(&validated, &bundle).await);
        let urls = self.urls(&app);

        // An identical bundle is not a new revision: deploying twice changes nothing.
        if let Some(live) = self.routes.get(&app)
            && live.deployment.bundle_digest == deployment.bundle_digest
        {
            return Ok(DeployResponse {
                namespace: app.namespace,
                name: app.name,
                revision: live.deployment.revision,
                digest: deployment.bundle_digest,
                changed: false,
                urls,
                warnings,
                pending_approval: None,
                admission_ms: None,
            });
        }

        let mut ungranted = Vec::new();
        let mut dryrun = Vec::new();
        let mut admission_ms = None;
        if govern {
            let started = std::time::Instant::now();
            let admission = self.admit(principal, validated.manifest(), &bundle, &findings, &app).await?;
            admission_ms = Some(started.elapsed().as_secs_f64() * 1e3);
            let denials: Vec<String> = admission.decision.denials().map(ToString::to_string).collect();
            if !denials.is_empty() {
                self.audit_refusal(principal, &app, format!("policies: {}", denials.join("; "))).await;
                return Err(ControlError::PolicyDenied { details: denials });
            }
            warnings.extend(admission.decision.warnings().map(|violation| format!("policy {violation}")));
            dryrun = admission
                .decision
                .violations
                .iter()
                .filter(|v| v.mode == api_types::policy::Mode::Dryrun)
                .map(ToString::to_string)
                .collect();
            ungranted = admission.ungranted;
        }

        self.store_blobs(&bundle).await?;
        let deployment = Arc::new(deployment);
        // Compiled before anything is recorded, also for a revision that waits for approval:
        // code that does not load fails now, not when an operator approves it.
        let live = self.load(deployment.clone()).await.map_err(ControlError::Load)?;

        let spec = &validated.manifest().spec;
        let new = NewRevision {
            deployment: Deployment::clone(&deployment),
            owner: spec.owner.to_string(),
            runtime: spec.runtime.to_string(),
            description: spec.description.clone(),
            manifest_source: source.clone(),
            created_by: principal.subject.clone(),
            created_at: now(),
            size_bytes: bundle.total_bytes(),
            create_namespace: principal.is_platform_admin(),
            expires_at: None,
        };
        if !ungranted.is_empty() {
            drop(live);
            let request = self.request_approval(principal, new, ungranted).await?;
            let serving = self.routes.get(&app).map_or(0, |live| live.deployment.revision);
            return Ok(DeployResponse {
                namespace: app.namespace,
                name: app.name,
                revision: serving,
                digest: deployment.bundle_digest.clone(),
                changed: false,
                urls,
                warnings,
                pending_approval: Some(request),
                admission_ms,
            });
        }
        let mut detail = format!("digest {}, {} files", deployment.bundle_digest, deployment.files.len());
        if !dryrun.is_empty() {
            detail.push_str(&format!("; dryrun policies: {}", dryrun.join("; ")));
        }
        let event = audit(principal, Action::AppDeploy, &app, Some(revision), detail);
        warnings.extend(self.commit_revision(principal, new, live, event).await?);
        if govern {
            self.supersede_pending(principal, &app, revision).await;
        }
        tracing::info!(namespace = %app.namespace, app = %app.name, revision, "deployed");
        Ok(DeployResponse {
            namespace: app.namespace,
            name: app.name,
            revision,
            digest: deployment.bundle_digest.clone(),
            changed: true,
            urls,
            warnings,
            pending_approval: None,
            admission_ms,
        })
    }

    /// Commits a revision, the one way every path makes one live (a deploy, an approval): writes
    /// it with its audit event in one transaction, swaps the routing table, wakes what follows
    /// it (budgets and quotas of the new revision apply at once), and flags the app's secrets for
    /// rotation when the owner changed. Callers hold the change lock. Answers the warning for the
    /// builder when secrets were flagged.
    async fn commit_revision(
        &self,
        principal: &Principal,
        new: NewRevision,
        live: LiveApp,
        event: NewAuditEvent,
    ) -> Result<Option<String>, ControlError> {
        let app = new.deployment.app.clone();
        // Also for a revision approved while the app was archived: restoring comes first.
        self.refuse_if_archived(&app).await?;
        let previous_owner = match self.store.get_app(&app).await {
            Ok(row) => Some(row.owner),
            Err(StoreError::UnknownApp { .. }) => None,
            Err(error) => return Err(error.into()),
        };
        let new_owner = new.owner.clone();
        // A new revision renews the app's TTL from now (also one that waited for approval).
        let mut new = new;
        new.expires_at = self.expiry_from_now(new.deployment.ttl_days);
        self.store.insert_revision(new, event).await?;
        self.routes.insert(live);
        self.changed.notify_one();
        Ok(match previous_owner.filter(|previous| *previous != new_owner) {
            Some(previous_owner) => {
                let events = self.hooks.owner_changed(&app, &previous_owner, &new_owner).await;
                let warnings = self.record_hook_events(principal, &app, events).await;
                (!warnings.is_empty()).then(|| warnings.join(" "))
            }
            None => None,
        })
    }

    /// Records what the app hooks did: audit events, notifications; answers their warnings.
    async fn record_hook_events(
        &self,
        principal: &Principal,
        app: &AppKey,
        events: Vec<hooks::HookEvent>,
    ) -> Vec<String> {
        let mut warnings = Vec::new();
        for event in events {
            if let Some(notification) = event.notification {
                let details = serde_json::json!({ "kind": notification.kind });
                let text = event.detail.clone();
                let message =
                    notify::Notification { kind: notification.kind, subject: notification.subject, text, details };
                self.notifier.notify_once(&notification.key, message).await;
            }
            if let Err(error) = self.store.append_audit(audit(principal, event.action, app, None, event.detail)).await {
                tracing::error!(%error, "audit event could not be written");
            }
            warnings.extend(event.warning);
        }
        warnings
    }

    /// Records a deploy the platform refused (secrets, policies).
    async fn audit_refusal(&self, principal: &Principal, app: &AppKey, detail: String) {
        let event = NewAuditEvent::new(&principal.subject, Action::AppDeploy, Outcome::Refused).app(app).detail(detail);
        if let Err(error) = self.store.append_audit(event).await {
            tracing::error!(%error, "audit event could not be written");
        }
    }

    /// Makes an earlier revision active again (the one before the active one by default).
    pub async fn rollback(
        &self,
        principal: &Principal,
        app: &AppKey,
        to: Option<i64>,
    ) -> Result<AppDetail, ControlError> {
        let _guard = self.change_lock.lock().await;
        let row = self.authorize_change(principal, app, Action::AppRollback).await?;
        self.refuse_if_archived(app).await?;
        let target = match to {
            Some(revision) => revision,
            None => self
                .store
                .list_revisions(app)
                .await?
                .into_iter()
                .map(|revision| revision.revision)
                .filter(|&revision| revision < row.active_revision)
                .max()
                .ok_or_else(|| ControlError::NothingToRollBack { app: app.clone() })?,
        };
        // Load first: a revision whose code no longer loads must not become active.
        let deployment = self.store.get_deployment(app, target).await?;
        let live = self.load(Arc::new(deployment)).await.map_err(ControlError::Load)?;
        let detail = format!("from revision {} to {target}", row.active_revision);
        self.store
            .set_active_revision(app, target, audit(principal, Action::AppRollback, app, Some(target), detail))
            .await?;
        self.routes.insert(live);
        self.changed.notify_one();
        self.get_app(app).await
    }

    pub async fn delete(&self, principal: &Principal, app: &AppKey) -> Result<(), ControlError> {
        let _guard = self.change_lock.lock().await;
        let row = self.authorize_change(principal, app, Action::AppDelete).await?;
        let event = audit(principal, Action::AppDelete, app, None, String::new());
        self.delete_locked(principal, row, event).await
    }

    /// Deletes an app (the change lock held): its registry rows with the audit event, then what
    /// serves it, what it stored and, when it is archived, its archive.
    async fn delete_locked(
        &self,
        principal: &Principal,
        row: AppRow,
        event: NewAuditEvent,
    ) -> Result<(), ControlError> {
        let app = &row.app;
        self.store.delete_app(app, event).await?;
        self.routes.remove(app);
        self.archived.remove(app);
        self.logs.forget(app);
        let events = self.hooks.deleted(app).await;
        self.record_hook_events(principal, app, events).await;
        if let Some((_, digest)) = &row.archived {
            self.remove_archive(app, digest).await;
        }
        Ok(())
    }

    pub async fn create_namespace(&self, principal: &Principal, name: &str) -> Result<NamespaceInfo, ControlError> {
        if !principal.is_platform_admin() {
            let message = format!(
                "only a platform admin may create namespaces; ask one to run `terrarium namespaces create {name}`"
            );
            return Err(self.deny(principal, Action::NamespaceCreate, Some(name), None, message).await);
        }
        if !deployment::is_name(name) {
            return Err(ControlError::InvalidName(format!(
                "{name:?} is not a valid namespace name: use 1 to 40 lowercase letters, digits and '-', not at the start or end"
            )));
        }
        let event = NewAuditEvent::new(&principal.subject, Action::NamespaceCreate, Outcome::Success).namespace(name);
        let row = self.store.create_namespace(name, &principal.subject, event).await?;
        Ok(NamespaceInfo { name: row.name, created_at: row.created_at, created_by: row.created_by, n_apps: row.n_apps })
    }

    pub async fn list_namespaces(&self) -> Result<Vec<NamespaceInfo>, ControlError> {
        Ok(self
            .store
            .list_namespaces()
            .await?
            .into_iter()
            .map(|row| NamespaceInfo {
                name: row.name,
                created_at: row.created_at,
                created_by: row.created_by,
                n_apps: row.n_apps,
            })
            .collect())
    }

    pub async fn list_apps(&self, namespace: Option<&str>) -> Result<Vec<AppSummary>, ControlError> {
        Ok(self.store.list_apps(namespace).await?.into_iter().map(|row| self.summary(row)).collect())
    }

    pub async fn get_app(&self, app: &AppKey) -> Result<AppDetail, ControlError> {
        let row = match self.store.get_app(app).await {
            Ok(row) => row,
            Err(StoreError::UnknownApp { app }) => {
                return Err(self.pending_first_revision(&app).await.unwrap_or(ControlError::UnknownApp { app }));
            }
            Err(error) => return Err(error.into()),
        };
        let (violations, pending_approvals, exceptions) = self.governance_of(app).await?;
        let revisions = self.store.list_revisions(app).await?;
        let active = row.active_revision;
        let slo = self.slo.status(app);
        let description = row.description.clone();
        let created_at = row.created_at.clone();
        let mut summary = self.summary(row);
        if !pending_approvals.is_empty() {
            summary.phase = "Active, approval pending".to_owned();
        }
        Ok(AppDetail {
            slo,
            violations,
            pending_approvals,
            exceptions,
            description,
            created_at,
            summary,
            revisions: revisions
                .into_iter()
                .map(|revision| RevisionInfo {
                    active: revision.revision == active,
                    revision: revision.revision,
                    digest: revision.digest,
                    created_at: revision.created_at,
                    created_by: revision.created_by,
                    n_files: revision.n_files,
                    size_bytes: revision.size_bytes,
                })
                .collect(),
        })
    }

    pub async fn list_audit(&self, filter: AuditFilter) -> Result<Vec<AuditEvent>, ControlError> {
        let rows = self.store.list_audit(filter).await?;
        Ok(rows
            .into_iter()
            .map(|row| AuditEvent {
                id: row.id,
                time: row.time,
                principal: row.principal,
                action: row.action,
                namespace: row.namespace,
                app: row.app,
                revision: row.revision,
                outcome: row.outcome,
                detail: row.detail,
            })
            .collect())
    }

    /// The egress log of a namespace (or one app), newest first. Needs the viewer role there.
    pub async fn list_egress(
        &self,
        principal: &Principal,
        filter: metering::store::EgressFilter,
    ) -> Result<Vec<api_types::EgressEntry>, ControlError> {
        let namespace = filter.namespace.clone().unwrap_or_default();
        self.authorize_read(principal, &namespace, Action::EgressList).await?;
        let entries = self.egress_store.list_egress(filter).await?;
        self.audit_read(principal, Action::EgressList, Some(&namespace)).await;
        Ok(entries)
    }

    /// Usage of a month (`YYYY-MM`, this month by default) per app, per day or per hour. One
    /// namespace needs its viewer role; all namespaces need a platform-wide viewer.
    pub async fn usage(
        &self,
        principal: &Principal,
        namespace: Option<String>,
        app: Option<String>,
        owner: Option<&str>,
        month: Option<&str>,
        by: &str,
    ) -> Result<Vec<api_types::UsageEntry>, ControlError> {
        match &namespace {
            // An owner's apps span namespaces: like all namespaces, that needs a platform-wide viewer.
            Some(_) | None if owner.is_some() && !principal.has_role(ALL_NAMESPACES, Role::Viewer) => {
                let message = "usage by owner spans namespaces: it needs a platform-wide viewer role".to_owned();
                return Err(self.deny(principal, Action::UsageRead, None, None, message).await);
            }
            Some(namespace) => self.authorize_read(principal, namespace, Action::UsageRead).await?,
            None if principal.has_role(ALL_NAMESPACES, Role::Viewer) => {}
            None => {
                let message = "usage of every namespace needs a platform-wide viewer role; pass --namespace".to_owned();
                return Err(self.deny(principal, Action::UsageRead, None, None, message).await);
            }
        }
        let (from, to) = metering::month_range(month, self.settings.clock.now())?;
        let period = match by {
            "hour" => metering::store::UsagePeriod::Hour,
            "day" | "app" => metering::store::UsagePeriod::Day,
            other => {
                return Err(ControlError::InvalidName(format!("by={other:?}: use app, day or hour")));
            }
        };
        let mut rows = self
            .usage_store
            .usage(metering::store::UsageFilter { namespace, app, period, from: from.clone(), to })
            .await?;
        if let Some(owner) = owner {
            let owned: std::collections::HashSet<AppKey> = self
                .store
                .list_apps(None)
                .await?
                .into_iter()
                .filter(|row| row.owner == owner)
                .map(|row| row.app)
                .collect();
            rows.retain(|row| owned.contains(&row.app));
        }
        let mut entries: Vec<(AppKey, String, metering::store::UsageCounts)> =
            rows.into_iter().map(|row| (row.app, row.start, row.counts)).collect();
        if by == "app" {
            // Whole-month totals per app.
            let mut totals: Vec<(AppKey, String, metering::store::UsageCounts)> = Vec::new();
            for (app, _, counts) in entries {
                match totals.last_mut() {
                    Some((last, _, total)) if *last == app => total.add(&counts),
                    _ => totals.push((app, from.clone(), counts)),
                }
            }
            entries = totals;
        }
        Ok(entries
            .into_iter()
            .map(|(app, start, counts)| api_types::UsageEntry {
                namespace: app.namespace,
                app: app.name,
                start,
                requests: counts.requests,
                client_errors: counts.client_errors,
                server_errors: counts.server_errors,
                rate_limited: counts.rate_limited,
                busy: counts.busy,
                cpu_seconds: counts.cpu_us as f64 / 1e6,
                bytes_in: counts.bytes_in,
                bytes_out: counts.bytes_out,
                mean_duration_ms: match counts.requests + counts.rate_limited + counts.busy {
                    0 => 0.0,
                    n => counts.duration_us as f64 / n as f64 / 1000.0,
                },
                outbound_requests: counts.outbound_requests,
                outbound_bytes: counts.outbound_bytes,
                heap_bytes_max: counts.heap_bytes_max,
                kv_reads: counts.kv_reads,
                kv_writes: counts.kv_writes,
                kv_lists: counts.kv_lists,
                sql_rows_read: counts.sql_rows_read,
                sql_rows_written: counts.sql_rows_written,
                storage_bytes_max: counts.storage_bytes_max,
                cache_hits: counts.cache_hits,
                cache_misses: counts.cache_misses,
                cache_bytes_served: counts.cache_bytes_served,
                vector_queries: counts.vector_queries,
                vectors_written: counts.vectors_written,
                embedding_tokens: counts.embedding_tokens,
            })
            .collect())
    }

    /// The Prometheus exposition. Needs a platform-wide role (the metrics name every app).
    pub async fn metrics_text(&self, principal: &Principal) -> Result<String, ControlError> {
        if !principal.has_role(ALL_NAMESPACES, Role::Viewer) {
            let message = "/metrics names every app: it needs a platform-wide viewer role (`terrarium roles grant '*' user:NAME viewer`)".to_owned();
            return Err(self.deny(principal, Action::MetricsRead, None, None, message).await);
        }
        Ok(self.metrics.encode())
    }

    /// Records a refused control-plane call, so every denial is in the audit log.
    pub async fn audit_denial(&self, principal: &str, action: Action, detail: String) {
        let event = NewAuditEvent::new(principal, action, Outcome::Denied).detail(detail);
        if let Err(error) = self.store.append_audit(event).await {
            tracing::error!(%error, "audit event could not be written");
        }
    }

    /// A builder deploys new apps it owns into its namespaces; changing an existing app needs its
    /// owner or an operator. Only a platform admin's first deploy creates a namespace.
    async fn authorize_deploy(&self, principal: &Principal, app: &AppKey, new_owner: &str) -> Result<(), ControlError> {
        let namespace = &app.namespace;
        if !principal.has_role(namespace, Role::Builder) {
            let message = format!(
                "{} may not deploy into namespace {namespace:?}: that needs the builder role there; an admin grants it with `terrarium roles grant {namespace} user:{} builder`",
                principal.subject, principal.subject
            );
            return Err(self.deny(principal, Action::AppDeploy, Some(namespace), Some(&app.name), message).await);
        }
        if principal.has_role(namespace, Role::Operator) {
            return Ok(());
        }
        if !principal.is_owner(new_owner) {
            let message = format!(
                "spec.owner is {new_owner:?}, but you are user:{}: builders deploy apps they own; set spec.owner to user:{} or one of your groups",
                principal.subject, principal.subject
            );
            return Err(self.deny(principal, Action::AppDeploy, Some(namespace), Some(&app.name), message).await);
        }
        match self.store.get_app(app).await {
            Ok(existing) if !principal.is_owner(&existing.owner) => {
                let message = format!(
                    "app {app} belongs to {}; only its owner or an operator of {namespace:?} may change it",
                    existing.owner
                );
                Err(self.deny(principal, Action::AppDeploy, Some(namespace), Some(&app.name), message).await)
            }
            Ok(_) | Err(StoreError::UnknownApp { .. }) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }

    /// Rollback and delete: the app's owner (with at least builder) or an operator.
    async fn authorize_change(
        &self,
        principal: &Principal,
        app: &AppKey,
        action: Action,
    ) -> Result<AppRow, ControlError> {
        let namespace = &app.namespace;
        if !principal.has_role(namespace, Role::Viewer) {
            // Someone with no role there learns nothing about the namespace's apps.
            let message = format!("{} has no role in namespace {namespace:?}", principal.subject);
            return Err(self.deny(principal, action, Some(namespace), Some(&app.name), message).await);
        }
        let row = self.store.get_app(app).await?;
        let allowed = principal.has_role(namespace, Role::Operator)
            || (principal.has_role(namespace, Role::Builder) && principal.is_owner(&row.owner));
        if !allowed {
            let message = format!(
                "app {app} belongs to {}; only its owner or an operator of {namespace:?} may change it",
                row.owner
            );
            return Err(self.deny(principal, action, Some(namespace), Some(&app.name), message).await);
        }
        Ok(row)
    }

    /// An app's stored data: reading it (export, usage) or replacing it (import) needs what
    /// changing the app needs, its owner or an operator of the namespace; the call is audited.
    pub async fn authorize_app_data(
        &self,
        principal: &Principal,
        app: &AppKey,
        action: Action,
    ) -> Result<(), ControlError> {
        let row = self.authorize_change(principal, app, action).await?;
        // An archived app's live stores are empty and its data is in its archive: writing
        // into them would be lost on restore, which empties them first.
        if matches!(action, Action::DataImport | Action::DataMigrate)
            && (row.archived.is_some() || self.archived.get(app).is_some())
        {
            return Err(ControlError::Conflict(format!(
                "app {app} is archived; restore it first (`terrarium apps restore {app}`), then import"
            )));
        }
        let event = NewAuditEvent::new(&principal.subject, action, Outcome::Success).app(app);
        if let Err(error) = self.store.append_audit(event).await {
            tracing::error!(%error, "audit event could not be written");
        }
        Ok(())
    }

    /// Reading a namespace's apps, revisions and logs needs at least the viewer role there.
    pub async fn authorize_read(
        &self,
        principal: &Principal,
        namespace: &str,
        action: Action,
    ) -> Result<(), ControlError> {
        if principal.has_role(namespace, Role::Viewer) {
            return Ok(());
        }
        let message =
            format!("{} may not read namespace {namespace:?}: that needs the viewer role there", principal.subject);
        Err(self.deny(principal, action, Some(namespace), None, message).await)
    }

    /// Records an allowed read (listing apps, reading logs, ...) with its principal, so the audit
    /// log shows who looked at what, not only who changed it.
    pub async fn audit_read(&self, principal: &Principal, action: Action, namespace: Option<&str>) {
        let mut event = NewAuditEvent::new(&principal.subject, action, Outcome::Success);
        event.namespace = namespace.map(str::to_owned);
        if let Err(error) = self.store.append_audit(event).await {
            tracing::error!(%error, "audit event could not be written");
        }
    }

    /// "Now" for background work and deadlines.
    pub fn clock(&self) -> &background::Clock {
        &self.settings.clock
    }

    /// Lets only a platform admin run background tasks or move the clock; writes the audit
    /// event of the action (or of its refusal).
    pub async fn platform_admin_action(
        &self,
        principal: &Principal,
        action: Action,
        what: &str,
        detail: String,
    ) -> Result<(), ControlError> {
        if !principal.is_platform_admin() {
            let message = format!("only a platform admin may {what}; ask one to do it, or sign in as one");
            return Err(self.deny(principal, action, None, None, message).await);
        }
        let event = NewAuditEvent::new(&principal.subject, action, Outcome::Success).detail(detail);
        self.store.append_audit(event).await?;
        Ok(())
    }

    /// Records a refused call in the audit log and returns the error for the caller.
    pub async fn deny(
        &self,
        principal: &Principal,
        action: Action,
        namespace: Option<&str>,
        app: Option<&str>,
        message: String,
    ) -> ControlError {
        let mut event = NewAuditEvent::new(&principal.subject, action, Outcome::Denied).detail(message.clone());
        event.namespace = namespace.map(str::to_owned);
        event.app = app.map(str::to_owned);
        if let Err(error) = self.store.append_audit(event).await {
            tracing::error!(%error, "audit event could not be written");
        }
        ControlError::Forbidden(message)
    }

    /// The app's URLs: path-based on this server, and host-based under the apps domain.
    pub fn urls(&self, app: &AppKey) -> Vec<String> {
        let public_url = self.settings.public_url.trim_end_matches('/');
        vec![
            format!("{public_url}/apps/{}/{}/", app.namespace, app.name),
            format!("http://{}.{}.{}:{}/", app.name, app.namespace, self.settings.apps_domain, self.settings.port),
        ]
    }

    fn summary(&self, row: AppRow) -> AppSummary {
        let live = self.routes.get(&row.app);
        let data_class = live.as_ref().and_then(|live| live.deployment.data_class.clone());
        let phase = match row.archived {
            Some(_) => "Archived",
            None => lifecycle::phase(row.expires_at.as_deref(), self.settings.clock.now()),
        };
        let expires_at = row.expires_at;
        AppSummary {
            data_class,
            expires_at,
            urls: self.urls(&row.app),
            namespace: row.app.namespace,
            name: row.app.name,
            owner: row.owner,
            runtime: row.runtime,
            active_revision: row.active_revision,
            phase: phase.to_owned(),
            updated_at: row.updated_at,
        }
    }
}
