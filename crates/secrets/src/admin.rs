//! Apps' secrets administered: who may set, list and remove them, rotation of the
//! key-encryption key, expiry reminders, secrets flagged when an app outlives its TTL, and
//! reloading apps whose secrets changed.
//!
//! The registry (who owns an app, which apps are live), the audit log and the notifications
//! are the control plane's: it implements [`SecretsHost`]. A secret's value goes from the
//! request body into the store and from the store into the app's functions; it is never in a
//! response, an audit event, a log line or an error.

use std::sync::Arc;

use api_types::{SecretInfo, SecretSet, SecretVersionInfo, SetSecret};
use async_trait::async_trait;
use audit::{Action, AuditEvent, Outcome};
use deployment::{AppKey, Deployment, SecretsSource};
use identity::{ALL_NAMESPACES, Principal, Role};
use runtime::SecretValue;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::apps::AppSecrets;
use crate::records::SecretRow;
use crate::{RotationEvent, SecretError, SecretName};

/// Every way a secrets call can fail, each with what the caller can do about it.
#[derive(Debug, thiserror::Error)]
pub enum SecretsAdminError {
    /// A name, value or date that is not acceptable; the message says what is.
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    /// The caller lacks the role; the message says which and where.
    #[error("{0}")]
    Forbidden(String),
    #[error("internal error")]
    Internal(String),
}

impl From<SecretError> for SecretsAdminError {
    fn from(error: SecretError) -> SecretsAdminError {
        match error {
            SecretError::InvalidName { .. }
            | SecretError::ReservedName { .. }
            | SecretError::TooLarge { .. }
            | SecretError::Empty => SecretsAdminError::Invalid(error.to_string()),
            SecretError::NotFound { .. } => SecretsAdminError::NotFound(error.to_string()),
            other => {
                tracing::error!(error = %other, "secret store failure");
                SecretsAdminError::Internal(other.to_string())
            }
        }
    }
}

/// An app as the secret sweeps see it.
#[derive(Clone, Debug)]
pub struct AppLife {
    pub app: AppKey,
    pub owner: String,
    /// `spec.ttlDays` of its live revision.
    pub ttl_days: Option<u32>,
    /// Its last deploy, RFC 3339.
    pub renewed_at: String,
}

/// What secrets administration needs from the control plane.
#[async_trait]
pub trait SecretsHost: Send + Sync + 'static {
    /// The app's owner (`user:ana`, `group:growth`), or `None` when the app does not exist.
    async fn owner(&self, app: &AppKey) -> Result<Option<String>, String>;
    /// Every app, with its TTL and last deploy.
    async fn apps(&self) -> Result<Vec<AppLife>, String>;
    /// The live deployment of every app.
    fn live(&self) -> Vec<Arc<Deployment>>;
    /// The app's live deployment, if it is live.
    fn live_app(&self, app: &AppKey) -> Option<Arc<Deployment>>;
    /// Loads the app's live revision again, with its current secrets; whether it did.
    async fn reload(&self, app: &AppKey) -> bool;
    async fn audit(&self, event: AuditEvent);
    /// Tells the platform's notification channels, once per `key`.
    async fn notify(&self, key: &str, kind: &'static str, subject: String, text: String);
}

/// Apps' secrets, administered.
pub struct SecretsAdmin {
    secrets: Arc<AppSecrets>,
    host: Arc<dyn SecretsHost>,
}

fn info(row: SecretRow) -> SecretInfo {
    SecretInfo {
        namespace: row.namespace,
        app: row.app,
        name: row.name,
        version: row.version,
        n_versions: row.n_versions,
        created_at: row.created_at,
        created_by: row.created_by,
        expires_at: row.expires_at,
        last_read_at: row.last_read_at,
        rotation_reason: row.rotation_reason,
    }
}

fn secret_name(app: &AppKey, name: &str) -> SecretName {
    SecretName { namespace: app.namespace.clone(), app: app.name.clone(), name: name.to_owned() }
}

/// The platform itself, for what it does on its own (resuming a rotation, reminders).
fn system_principal() -> Principal {
    Principal {
        subject: "terrarium".to_owned(),
        groups: Vec::new(),
        roles: vec![(ALL_NAMESPACES.to_owned(), Role::Admin)],
    }
}

fn app_event(principal: &Principal, action: Action, app: &AppKey, detail: String) -> AuditEvent {
    AuditEvent::new(&principal.subject, action, Outcome::Success).app(app).detail(detail)
}

impl SecretsAdmin {
    pub fn new(secrets: Arc<AppSecrets>, host: Arc<dyn SecretsHost>) -> SecretsAdmin {
        SecretsAdmin { secrets, host }
    }

    /// Stores a new version of one of an app's secrets and reloads the app if it is running.
    pub async fn set_secret(
        &self,
        principal: &Principal,
        app: &AppKey,
        name: &str,
        body: SetSecret,
    ) -> Result<SecretSet, SecretsAdminError> {
        self.authorize_change(principal, app, Action::SecretSet).await?;
        let expires_at = match body.expires_at {
            None => None,
            Some(text) => {
                let at = OffsetDateTime::parse(&text, &Rfc3339).map_err(|_| {
                    SecretsAdminError::Invalid(format!(
                        "expires_at {text:?} is not an RFC 3339 time like 2027-03-01T00:00:00Z"
                    ))
                })?;
                Some(at.to_offset(time::UtcOffset::UTC).format(&Rfc3339).unwrap_or(text))
            }
        };
        let value = SecretValue::new(body.value);
        let version = self
            .secrets
            .store()
            .set(&secret_name(app, name), &value, expires_at, &principal.subject, &audit::now())
            .await?;
        drop(value);
        let detail = format!("secret {name} version {version}");
        self.host.audit(app_event(principal, Action::SecretSet, app, detail)).await;
        let reloaded = self.reload_for_secrets(app).await;
        Ok(SecretSet {
            namespace: app.namespace.clone(),
            app: app.name.clone(),
            name: name.to_owned(),
            version,
            reloaded,
        })
    }

    /// Deletes every version of a secret and reloads the app if it is running.
    pub async fn remove_secret(
        &self,
        principal: &Principal,
        app: &AppKey,
        name: &str,
    ) -> Result<bool, SecretsAdminError> {
        self.authorize_change(principal, app, Action::SecretRemove).await?;
        let removed = self.secrets.store().remove(&secret_name(app, name)).await?;
        let detail = format!("secret {name}, {removed} version(s) destroyed");
        self.host.audit(app_event(principal, Action::SecretRemove, app, detail)).await;
        Ok(self.reload_for_secrets(app).await)
    }

    /// Names, versions and dates of a namespace's (or one app's) secrets: never values.
    pub async fn list_secrets(
        &self,
        principal: &Principal,
        namespace: &str,
        app: Option<&str>,
    ) -> Result<Vec<SecretInfo>, SecretsAdminError> {
        self.authorize_read(principal, namespace, Action::SecretList).await?;
        Ok(self.secrets.store().list(namespace, app).await?.into_iter().map(info).collect())
    }

    pub async fn secret_versions(
        &self,
        principal: &Principal,
        app: &AppKey,
        name: &str,
    ) -> Result<Vec<SecretVersionInfo>, SecretsAdminError> {
        self.authorize_read(principal, &app.namespace, Action::SecretVersions).await?;
        Ok(self
            .secrets
            .store()
            .versions(&secret_name(app, name))
            .await?
            .into_iter()
            .map(|row| SecretVersionInfo {
                version: row.version,
                created_at: row.created_at,
                created_by: row.created_by,
                expires_at: row.expires_at,
            })
            .collect())
    }

    /// Whether `principal` may rotate the key-encryption key (platform admins); a refusal is
    /// audited. Checked before a rotation's progress starts streaming.
    pub async fn authorize_rotation(&self, principal: &Principal) -> Result<(), SecretsAdminError> {
        match principal.is_platform_admin() {
            true => Ok(()),
            false => {
                let message = "only a platform admin may rotate the key-encryption key".to_owned();
                Err(self.deny(principal, Action::SecretsRotateKek, None, None, message).await)
            }
        }
    }

    /// Rewraps every data key under a new key-encryption key (or finishes an interrupted
    /// rotation with `resume`). Platform admins only. Apps keep serving throughout.
    pub async fn rotate_kek(
        &self,
        principal: &Principal,
        resume: bool,
        progress: &mut (dyn FnMut(RotationEvent) + Send),
    ) -> Result<usize, SecretsAdminError> {
        self.authorize_rotation(principal).await?;
        let event = |outcome: Outcome, detail: String| {
            AuditEvent::new(&principal.subject, Action::SecretsRotateKek, outcome).detail(detail)
        };
        self.host.audit(event(Outcome::Started, self.secrets.store().kek_description())).await;
        let result = self.secrets.store().rotate_kek(resume, progress).await;
        let (outcome, detail) = match &result {
            Ok(rewrapped) => (Outcome::Success, format!("{rewrapped} data key(s) rewrapped")),
            Err(error) => (Outcome::Failure, error.to_string()),
        };
        self.host.audit(event(outcome, detail)).await;
        Ok(result?)
    }

    /// At start: finishes a rotation that a crash or stop interrupted.
    pub async fn resume_kek_rotation(&self) -> Result<(), SecretsAdminError> {
        if !self.secrets.store().rotation_pending().await? {
            return Ok(());
        }
        tracing::warn!("a key-encryption key rotation was interrupted; finishing it");
        let rewrapped = self
            .rotate_kek(&system_principal(), true, &mut |event| tracing::info!(?event, "key-encryption key rotation"))
            .await?;
        tracing::info!(rewrapped, "key-encryption key rotation finished");
        Ok(())
    }

    /// Records an audit event and a warning for secrets that expire within `reminder_days` or
    /// have expired, once per version and stage.
    pub async fn sweep_expiry(&self, now: OffsetDateTime, reminder_days: i64) -> Result<usize, SecretsAdminError> {
        let soon = now + time::Duration::days(reminder_days);
        let mut reminders = 0;
        for row in self.secrets.store().list_all().await? {
            let Some(expires_at) = row.expires_at.as_deref().and_then(|at| OffsetDateTime::parse(at, &Rfc3339).ok())
            else {
                continue;
            };
            let notice = match row.expiry_notice.as_deref() {
                _ if expires_at > soon => continue,
                Some("expired") => continue,
                Some("expiring") if expires_at > now => continue,
                _ if expires_at <= now => "expired",
                _ => "expiring",
            };
            let expired = notice == "expired";
            let app = AppKey::new(&row.namespace, &row.app);
            let detail = format!(
                "secret {} version {} {} at {}; set a new value with `terrarium secrets set {app} {}`",
                row.name,
                row.version,
                if expired { "expired" } else { "expires" },
                row.expires_at.as_deref().unwrap_or_default(),
                row.name
            );
            tracing::warn!(namespace = %row.namespace, app = %row.app, secret = %row.name, notice, "{detail}");
            let subject =
                format!("secret {} of {app} {}", row.name, if expired { "has expired" } else { "expires soon" });
            let key = format!("secret.{notice} {app} {} {}", row.name, row.version);
            self.host.notify(&key, "secret.expiry", subject, detail.clone()).await;
            let action = if expired { Action::SecretExpired } else { Action::SecretExpires };
            self.host.audit(app_event(&system_principal(), action, &app, detail)).await;
            self.secrets.store().set_expiry_notice(&row, notice).await?;
            reminders += 1;
        }
        Ok(reminders)
    }

    /// Flags the secrets of apps whose TTL (`spec.ttlDays` after their last deploy) has ended:
    /// whoever inherits or revives the app should not keep using them. Once per app.
    pub async fn flag_expired_apps(&self, now: OffsetDateTime) -> Result<usize, SecretsAdminError> {
        let mut flagged = 0;
        for life in self.host.apps().await.map_err(SecretsAdminError::Internal)? {
            let Some(ttl_days) = life.ttl_days else {
                continue;
            };
            let Ok(renewed) = OffsetDateTime::parse(&life.renewed_at, &Rfc3339) else {
                continue;
            };
            let ended = renewed + time::Duration::days(i64::from(ttl_days));
            if ended > now {
                continue;
            }
            let app = &life.app;
            let secrets = self.secrets.store().list(&app.namespace, Some(&app.name)).await?;
            let already =
                |reason: &Option<String>| reason.as_deref().is_some_and(|reason| reason.starts_with("the app's TTL"));
            if secrets.is_empty() || secrets.iter().all(|secret| already(&secret.rotation_reason)) {
                continue;
            }
            let reason = format!(
                "the app's TTL of {ttl_days} days ended on {} without a new deploy",
                ended.format(&Rfc3339).unwrap_or_default()
            );
            let names = self.secrets.store().flag_for_rotation(&app.namespace, &app.name, &reason).await?;
            let detail = format!("{}: {reason}", names.join(", "));
            tracing::warn!(namespace = %app.namespace, app = %app.name, owner = %life.owner, "secrets flagged for rotation: {detail}");
            let subject = format!("the secrets of {app} should be rotated");
            self.host
                .notify(&format!("secret.rotation {app} {reason}"), "secret.rotation", subject, detail.clone())
                .await;
            self.host.audit(app_event(&system_principal(), Action::SecretFlagRotation, app, detail)).await;
            flagged += 1;
        }
        Ok(flagged)
    }

    /// Reloads live apps whose Vault secret has a new version.
    pub async fn refresh_vault(&self) {
        for deployment in self.host.live() {
            if self.secrets.vault_changed(&deployment).await && self.host.reload(&deployment.app).await {
                let app = &deployment.app;
                tracing::info!(namespace = %app.namespace, app = %app.name, "reloaded with its new Vault secret");
            }
        }
    }

    /// Setting and removing secrets: an operator of the namespace, or the owner of an existing
    /// app (a builder). Only an operator may set secrets before the app's first deploy, so no one
    /// can plant values for an app another builder is about to create.
    async fn authorize_change(
        &self,
        principal: &Principal,
        app: &AppKey,
        action: Action,
    ) -> Result<(), SecretsAdminError> {
        let namespace = &app.namespace;
        if !app.is_valid() {
            return Err(SecretsAdminError::Invalid(format!(
                "{app} is not an app name: namespace and app are 1 to 40 lowercase letters, digits and '-'"
            )));
        }
        if principal.has_role(namespace, Role::Operator) {
            return Ok(());
        }
        if !principal.has_role(namespace, Role::Builder) {
            let message = format!(
                "{} may not change secrets in namespace {namespace:?}: that needs the app's owner (with the builder role) or an operator",
                principal.subject
            );
            return Err(self.deny(principal, action, Some(namespace), Some(&app.name), message).await);
        }
        let message = match self.host.owner(app).await.map_err(SecretsAdminError::Internal)? {
            Some(owner) if principal.is_owner(&owner) => return Ok(()),
            Some(owner) => format!(
                "app {app} belongs to {owner}; only its owner or an operator of {namespace:?} may change its secrets"
            ),
            None => format!(
                "app {app} does not exist yet: deploy it first with `terrarium deploy`, then set its secrets (an operator of {namespace:?} may set them before the first deploy)"
            ),
        };
        Err(self.deny(principal, action, Some(namespace), Some(&app.name), message).await)
    }

    /// Reading a namespace's secrets' names needs at least the viewer role there.
    async fn authorize_read(
        &self,
        principal: &Principal,
        namespace: &str,
        action: Action,
    ) -> Result<(), SecretsAdminError> {
        if principal.has_role(namespace, Role::Viewer) {
            return Ok(());
        }
        let message =
            format!("{} may not read namespace {namespace:?}: that needs the viewer role there", principal.subject);
        Err(self.deny(principal, action, Some(namespace), None, message).await)
    }

    async fn deny(
        &self,
        principal: &Principal,
        action: Action,
        namespace: Option<&str>,
        app: Option<&str>,
        message: String,
    ) -> SecretsAdminError {
        let mut event = AuditEvent::new(&principal.subject, action, Outcome::Denied).detail(message.clone());
        event.namespace = namespace.map(str::to_owned);
        event.app = app.map(str::to_owned);
        self.host.audit(event).await;
        SecretsAdminError::Forbidden(message)
    }

    /// Reloads the app if it is live and reads its secrets from the built-in store.
    async fn reload_for_secrets(&self, app: &AppKey) -> bool {
        match self.host.live_app(app).and_then(|deployment| deployment.secrets.clone()) {
            Some(SecretsSource::Terrarium { .. }) => self.host.reload(app).await,
            _ => false,
        }
    }
}
