//! Apps' secrets in the control plane: who may set, list and remove them, rotation of the
//! key-encryption key, expiry reminders, and reloading apps whose secrets changed. Resolving a
//! deployment's `secretsRef` is `secrets::apps`.
//!
//! A secret's value goes from the request body into the store and from the store into the app's
//! functions; it is never in a response, an audit event, a log line or an error.

use api_types::{SecretInfo, SecretSet, SecretVersionInfo, SetSecret};
use deployment::{AppKey, SecretsSource};
use runtime::SecretValue;
use secrets::{RotationEvent, SecretError, SecretName};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use audit::{Action, Outcome};

use crate::store::{NewAuditEvent, StoreError};
use crate::{ControlError, ControlPlane, Principal, Role, audit, now};

impl From<SecretError> for ControlError {
    fn from(error: SecretError) -> ControlError {
        match error {
            SecretError::InvalidName { .. }
            | SecretError::ReservedName { .. }
            | SecretError::TooLarge { .. }
            | SecretError::Empty => ControlError::InvalidName(error.to_string()),
            SecretError::NotFound { .. } => ControlError::NotFound(error.to_string()),
            other => {
                tracing::error!(error = %other, "secret store failure");
                ControlError::Internal(other.to_string())
            }
        }
    }
}

fn info(row: secrets::records::SecretRow) -> SecretInfo {
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

impl ControlPlane {
    /// Stores a new version of one of an app's secrets and reloads the app if it is running.
    pub async fn set_secret(
        &self,
        principal: &Principal,
        app: &AppKey,
        name: &str,
        body: SetSecret,
    ) -> Result<SecretSet, ControlError> {
        self.authorize_secret_change(principal, app, Action::SecretSet).await?;
        let expires_at = match body.expires_at {
            None => None,
            Some(text) => {
                let at = OffsetDateTime::parse(&text, &Rfc3339).map_err(|_| {
                    ControlError::InvalidName(format!(
                        "expires_at {text:?} is not an RFC 3339 time like 2027-03-01T00:00:00Z"
                    ))
                })?;
                Some(at.to_offset(time::UtcOffset::UTC).format(&Rfc3339).unwrap_or(text))
            }
        };
        let value = SecretValue::new(body.value);
        let version =
            self.secrets.store().set(&secret_name(app, name), &value, expires_at, &principal.subject, &now()).await?;
        drop(value);
        let detail = format!("secret {name} version {version}");
        self.append_audit(audit(principal, Action::SecretSet, app, None, detail)).await;
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
    pub async fn remove_secret(&self, principal: &Principal, app: &AppKey, name: &str) -> Result<bool, ControlError> {
        self.authorize_secret_change(principal, app, Action::SecretRemove).await?;
        let removed = self.secrets.store().remove(&secret_name(app, name)).await?;
        let detail = format!("secret {name}, {removed} version(s) destroyed");
        self.append_audit(audit(principal, Action::SecretRemove, app, None, detail)).await;
        Ok(self.reload_for_secrets(app).await)
    }

    /// Names, versions and dates of a namespace's (or one app's) secrets: never values.
    pub async fn list_secrets(
        &self,
        principal: &Principal,
        namespace: &str,
        app: Option<&str>,
    ) -> Result<Vec<SecretInfo>, ControlError> {
        self.authorize_read(principal, namespace, Action::SecretList).await?;
        Ok(self.secrets.store().list(namespace, app).await?.into_iter().map(info).collect())
    }

    pub async fn secret_versions(
        &self,
        principal: &Principal,
        app: &AppKey,
        name: &str,
    ) -> Result<Vec<SecretVersionInfo>, ControlError> {
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

    /// Rewraps every data key under a new key-encryption key (or finishes an interrupted
    /// rotation with `resume`). Platform admins only. Apps keep serving throughout.
    pub async fn rotate_kek(
        &self,
        principal: &Principal,
        resume: bool,
        progress: &mut (dyn FnMut(RotationEvent) + Send),
    ) -> Result<usize, ControlError> {
        if !principal.is_platform_admin() {
            let message = "only a platform admin may rotate the key-encryption key".to_owned();
            return Err(self.deny(principal, Action::SecretsRotateKek, None, None, message).await);
        }
        self.append_audit(platform_event(
            principal,
            Action::SecretsRotateKek,
            Outcome::Started,
            self.secrets.store().kek_description(),
        ))
        .await;
        let result = self.secrets.store().rotate_kek(resume, progress).await;
        let (outcome, detail) = match &result {
            Ok(rewrapped) => (Outcome::Success, format!("{rewrapped} data key(s) rewrapped")),
            Err(error) => (Outcome::Failure, error.to_string()),
        };
        self.append_audit(platform_event(principal, Action::SecretsRotateKek, outcome, detail)).await;
        Ok(result?)
    }

    /// At start: finishes a rotation that a crash or stop interrupted.
    pub async fn resume_kek_rotation(&self) -> Result<(), ControlError> {
        if !self.secrets.store().rotation_pending().await? {
            return Ok(());
        }
        tracing::warn!("a key-encryption key rotation was interrupted; finishing it");
        let system = system_principal();
        let rewrapped =
            self.rotate_kek(&system, true, &mut |event| tracing::info!(?event, "key-encryption key rotation")).await?;
        tracing::info!(rewrapped, "key-encryption key rotation finished");
        Ok(())
    }

    /// Records an audit event and a warning for secrets that expire within `reminder_days` or
    /// have expired, once per version and stage.
    pub async fn sweep_secret_expiry(&self, now: OffsetDateTime, reminder_days: i64) -> Result<usize, ControlError> {
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
            let app = AppKey::new(&row.namespace, &row.app);
            let detail = format!(
                "secret {} version {} {} at {}; set a new value with `terrarium secrets set {app} {}`",
                row.name,
                row.version,
                if notice == "expired" { "expired" } else { "expires" },
                row.expires_at.as_deref().unwrap_or_default(),
                row.name
            );
            tracing::warn!(namespace = %row.namespace, app = %row.app, secret = %row.name, notice, "{detail}");
            let subject = format!(
                "secret {} of {app} {}",
                row.name,
                if notice == "expired" { "has expired" } else { "expires soon" }
            );
            self.notify(
                &format!("secret.{notice} {app} {} {}", row.name, row.version),
                "secret.expiry",
                subject,
                &detail,
            )
            .await;
            self.append_audit(audit(
                &system_principal(),
                if notice == "expired" { Action::SecretExpired } else { Action::SecretExpires },
                &app,
                None,
                detail,
            ))
            .await;
            self.secrets.store().set_expiry_notice(&row, notice).await?;
            reminders += 1;
        }
        Ok(reminders)
    }

    /// Flags the secrets of apps whose TTL (`spec.ttlDays` after their last deploy) has ended:
    /// whoever inherits or revives the app should not keep using them. Once per app.
    pub async fn flag_secrets_of_expired_apps(&self, now: OffsetDateTime) -> Result<usize, ControlError> {
        let mut flagged = 0;
        for row in self.store.list_apps(None).await? {
            let Some(ttl_days) = self.routes.get(&row.app).and_then(|live| live.deployment.ttl_days) else {
                continue;
            };
            let Ok(renewed) = OffsetDateTime::parse(&row.updated_at, &Rfc3339) else {
                continue;
            };
            let ended = renewed + time::Duration::days(i64::from(ttl_days));
            if ended > now {
                continue;
            }
            let secrets = self.secrets.store().list(&row.app.namespace, Some(&row.app.name)).await?;
            let already =
                |reason: &Option<String>| reason.as_deref().is_some_and(|reason| reason.starts_with("the app's TTL"));
            if secrets.is_empty() || secrets.iter().all(|secret| already(&secret.rotation_reason)) {
                continue;
            }
            let reason = format!(
                "the app's TTL of {ttl_days} days ended on {} without a new deploy",
                ended.format(&Rfc3339).unwrap_or_default()
            );
            let names = self.secrets.store().flag_for_rotation(&row.app.namespace, &row.app.name, &reason).await?;
            let detail = format!("{}: {reason}", names.join(", "));
            tracing::warn!(namespace = %row.app.namespace, app = %row.app.name, owner = %row.owner, "secrets flagged for rotation: {detail}");
            let subject = format!("the secrets of {} should be rotated", row.app);
            self.notify(&format!("secret.rotation {} {reason}", row.app), "secret.rotation", subject, &detail).await;
            self.append_audit(audit(&system_principal(), Action::SecretFlagRotation, &row.app, None, detail)).await;
            flagged += 1;
        }
        Ok(flagged)
    }

    /// Reloads live apps whose Vault secret has a new version. Runs periodically.
    pub async fn refresh_vault_secrets(&self) {
        for live in self.routes.all() {
            if self.secrets.vault_changed(&live.deployment).await {
                let app = live.deployment.app.clone();
                if self.reload(&app).await {
                    tracing::info!(namespace = %app.namespace, app = %app.name, "reloaded with its new Vault secret");
                }
            }
        }
    }

    /// Setting and removing secrets: an operator of the namespace, or the owner of an existing
    /// app (a builder). Only an operator may set secrets before the app's first deploy, so no one
    /// can plant values for an app another builder is about to create.
    async fn authorize_secret_change(
        &self,
        principal: &Principal,
        app: &AppKey,
        action: Action,
    ) -> Result<(), ControlError> {
        let namespace = &app.namespace;
        if !crate::is_dns_label(namespace) || !crate::is_dns_label(&app.name) {
            return Err(ControlError::InvalidName(format!(
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
        match self.store.get_app(app).await {
            Ok(row) if principal.is_owner(&row.owner) => Ok(()),
            Ok(row) => {
                let message = format!(
                    "app {app} belongs to {}; only its owner or an operator of {namespace:?} may change its secrets",
                    row.owner
                );
                Err(self.deny(principal, action, Some(namespace), Some(&app.name), message).await)
            }
            Err(StoreError::UnknownApp { .. }) => {
                let message = format!(
                    "app {app} does not exist yet: deploy it first with `terrarium deploy`, then set its secrets (an operator of {namespace:?} may set them before the first deploy)"
                );
                Err(self.deny(principal, action, Some(namespace), Some(&app.name), message).await)
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Reloads the app if it is live and reads its secrets from the built-in store.
    async fn reload_for_secrets(&self, app: &AppKey) -> bool {
        let Some(live) = self.routes.get(app) else {
            return false;
        };
        match &live.deployment.secrets {
            Some(SecretsSource::Terrarium { .. }) => self.reload(app).await,
            _ => false,
        }
    }

    /// Loads the app's active deployment again (with fresh secrets) and swaps it in. On failure
    /// the running version keeps serving.
    async fn reload(&self, app: &AppKey) -> bool {
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

    /// Through the notifier, once per `key`. Names and dates only.
    async fn notify(&self, key: &str, kind: &'static str, subject: String, text: &str) {
        let notification =
            notify::Notification { kind, subject, text: text.to_owned(), details: serde_json::json!({ "kind": kind }) };
        self.notifier.notify_once(key, notification).await;
    }

    async fn append_audit(&self, event: NewAuditEvent) {
        if let Err(error) = self.store.append_audit(event).await {
            tracing::error!(%error, "audit event could not be written");
        }
    }
}

fn platform_event(principal: &Principal, action: Action, outcome: Outcome, detail: String) -> NewAuditEvent {
    NewAuditEvent::new(&principal.subject, action, outcome).detail(detail)
}

/// The platform itself, for actions it takes on its own (resuming a rotation, reminders).
fn system_principal() -> Principal {
    Principal {
        subject: "terrarium".to_owned(),
        groups: Vec::new(),
        roles: vec![(identity::ALL_NAMESPACES.to_owned(), Role::Admin)],
    }
}
