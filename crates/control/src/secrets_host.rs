//! What secrets administration (`secrets::admin`) needs from the control plane: app owners,
//! TTLs and live revisions, reloads, the audit log and notifications.

use std::sync::Arc;

use async_trait::async_trait;
use deployment::{AppKey, Deployment};
use secrets::admin::{AppLife, SecretsHost};

use crate::ControlPlane;
use crate::store::StoreError;

#[async_trait]
impl SecretsHost for ControlPlane {
    async fn owner(&self, app: &AppKey) -> Result<Option<String>, String> {
        match self.store.get_app(app).await {
            Ok(row) => Ok(Some(row.owner)),
            Err(StoreError::UnknownApp { .. }) => Ok(None),
            Err(error) => Err(error.to_string()),
        }
    }

    async fn apps(&self) -> Result<Vec<AppLife>, String> {
        let rows = self.store.list_apps(None).await.map_err(|error| error.to_string())?;
        Ok(rows
            .into_iter()
            .map(|row| AppLife {
                ttl_days: self.routes.get(&row.app).and_then(|live| live.deployment.ttl_days),
                app: row.app,
                owner: row.owner,
                renewed_at: row.updated_at,
            })
            .collect())
    }

    fn live(&self) -> Vec<Arc<Deployment>> {
        self.routes.all().into_iter().map(|live| live.deployment.clone()).collect()
    }

    fn live_app(&self, app: &AppKey) -> Option<Arc<Deployment>> {
        self.routes.get(app).map(|live| live.deployment.clone())
    }

    async fn reload(&self, app: &AppKey) -> bool {
        ControlPlane::reload(self, app).await
    }

    async fn audit(&self, event: audit::AuditEvent) {
        if let Err(error) = self.store.append_audit(event).await {
            tracing::error!(%error, "audit event could not be written");
        }
    }

    async fn notify(&self, key: &str, kind: &'static str, subject: String, text: String) {
        let notification = notify::Notification { kind, subject, text, details: serde_json::json!({ "kind": kind }) };
        self.notifier.notify_once(key, notification).await;
    }
}
