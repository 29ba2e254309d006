//! The app hooks of this server: each delete or owner change of an app, fanned out to the
//! services that keep data per app (apps' secrets today).

use std::sync::Arc;

use control::hooks::{AppHooks, DataPart, HookEvent, HookNotification};
use control::{Action, now};
use deployment::{AppKey, Deployment};
use futures::future::BoxFuture;
use secrets::SecretName;
use secrets::apps::AppSecrets;

pub struct Hooks {
    pub secrets: Arc<AppSecrets>,
    pub kv: Arc<capability_kv::Kv>,
    pub sql: Arc<dyn capability_sql::SqlService>,
    pub vectors: Arc<capability_vectors::Vectors>,
}

impl AppHooks for Hooks {
    fn deleted<'a>(&'a self, app: &'a AppKey) -> BoxFuture<'a, Vec<HookEvent>> {
        Box::pin(async move {
            let mut events = secrets_deleted(&self.secrets, app).await;
            events.extend(kv_deleted(&self.kv, app).await);
            events.extend(sql_deleted(&self.sql, app).await);
            events.extend(vectors_deleted(&self.vectors, app).await);
            events
        })
    }

    fn owner_changed<'a>(&'a self, app: &'a AppKey, previous: &'a str, new: &'a str) -> BoxFuture<'a, Vec<HookEvent>> {
        Box::pin(async move { secrets_owner_changed(&self.secrets, app, previous, new).await.into_iter().collect() })
    }

    fn archive_data<'a>(&'a self, deployment: &'a Deployment) -> BoxFuture<'a, Result<Vec<DataPart>, String>> {
        Box::pin(async move {
            let app = &deployment.app;
            // Exports open sealed values; an archive in clear would undo the seal. Refused (the
            // app keeps serving) until archives are sealed with the namespace's data key.
            if deployment.seal_data {
                return Err(format!(
                    "{app} holds confidential or restricted data, which archives cannot seal yet; it was not archived"
                ));
            }
            let mut parts = Vec::new();
            if deployment.kv_binding.is_some() {
                let lines = self.kv.export(app).await.map_err(|error| format!("KV export: {error}"))?;
                parts.push(DataPart { name: "kv".to_owned(), bytes: lines.into_bytes() });
            }
            if deployment.sql.is_some() {
                let file = self.sql.export(app).await.map_err(|error| format!("SQL export: {error}"))?;
                parts.push(DataPart { name: "sql".to_owned(), bytes: file });
            }
            // Index files as stored: sealed under the namespace's data key, opened only by this app.
            for (binding, file) in self.vectors.export(app).await.map_err(|error| format!("vectors export: {error}"))? {
                parts.push(DataPart { name: format!("vectors:{binding}"), bytes: file });
            }
            Ok(parts)
        })
    }

    fn drop_data<'a>(&'a self, deployment: &'a Deployment) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            // Only what the archive holds: a store an earlier revision used and this one does
            // not bind was not archived, and stays.
            let app = &deployment.app;
            if deployment.kv_binding.is_some() {
                self.kv.store().delete_app(app).await.map_err(|error| format!("KV: {error}"))?;
            }
            if deployment.sql.is_some() {
                self.sql.delete_app(app).await.map_err(|error| format!("SQL: {error}"))?;
            }
            self.vectors.delete_app(app).await.map_err(|error| format!("vectors: {error}"))?;
            Ok(())
        })
    }

    fn restore_data<'a>(&'a self, app: &'a AppKey, parts: &'a [DataPart]) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            for part in parts {
                match part.name.as_str() {
                    "kv" => {
                        let lines =
                            std::str::from_utf8(&part.bytes).map_err(|_| "KV: the archive is not UTF-8".to_owned())?;
                        self.kv.import(app, lines).await.map_err(|error| format!("KV import: {error}"))?;
                    }
                    "sql" => {
                        self.sql
                            .import(app, part.bytes.clone())
                            .await
                            .map_err(|error| format!("SQL import: {error}"))?;
                    }
                    other => match other.strip_prefix("vectors:") {
                        Some(binding) => self
                            .vectors
                            .import(app, binding, &part.bytes)
                            .await
                            .map_err(|error| format!("vectors import: {error}"))?,
                        None => return Err(format!("the archive holds a part this server does not know: {other:?}")),
                    },
                }
            }
            Ok(())
        })
    }

    fn secret_names<'a>(&'a self, app: &'a AppKey) -> BoxFuture<'a, Option<std::collections::BTreeSet<String>>> {
        Box::pin(async move {
            let rows = self.secrets.store().list(&app.namespace, Some(&app.name)).await.ok()?;
            Some(rows.into_iter().map(|row| row.name).collect())
        })
    }
}

/// Deletes a deleted app's key-value entries.
async fn kv_deleted(kv: &capability_kv::Kv, app: &AppKey) -> Option<HookEvent> {
    match kv.store().delete_app(app).await {
        Ok(0) => None,
        Ok(keys) => Some(HookEvent {
            action: Action::DataDelete,
            detail: format!("KV: {keys} key(s) deleted with the app"),
            notification: None,
            warning: None,
        }),
        Err(error) => {
            tracing::error!(%error, namespace = %app.namespace, app = %app.name, "the deleted app's KV entries could not be deleted");
            None
        }
    }
}

/// Deletes a deleted app's vector indexes.
async fn vectors_deleted(vectors: &capability_vectors::Vectors, app: &AppKey) -> Option<HookEvent> {
    match vectors.delete_app(app).await {
        Ok(0) => None,
        Ok(files) => Some(HookEvent {
            action: Action::DataDelete,
            detail: format!("vectors: {files} index file(s) deleted with the app"),
            notification: None,
            warning: None,
        }),
        Err(error) => {
            tracing::error!(%error, namespace = %app.namespace, app = %app.name, "the deleted app's vectors could not be deleted");
            None
        }
    }
}

/// Deletes a deleted app's SQL database (or, under `schema`, its tables).
async fn sql_deleted(sql: &Arc<dyn capability_sql::SqlService>, app: &AppKey) -> Option<HookEvent> {
    match sql.delete_app(app).await {
        Ok(None) => None,
        Ok(Some(detail)) => Some(HookEvent { action: Action::DataDelete, detail, notification: None, warning: None }),
        Err(error) => {
            tracing::error!(%error, namespace = %app.namespace, app = %app.name, "the deleted app's SQL data could not be deleted");
            None
        }
    }
}

/// Destroys a deleted app's secrets, every version.
async fn secrets_deleted(secrets: &AppSecrets, app: &AppKey) -> Vec<HookEvent> {
    let rows = match secrets.store().list(&app.namespace, Some(&app.name)).await {
        Ok(rows) => rows,
        Err(error) => {
            tracing::error!(%error, "the deleted app's secrets could not be listed");
            return Vec::new();
        }
    };
    let mut events = Vec::new();
    for row in rows {
        let name = SecretName { namespace: app.namespace.clone(), app: app.name.clone(), name: row.name.clone() };
        if let Err(error) = secrets.store().remove(&name).await {
            tracing::error!(%error, secret = %row.name, "a deleted app's secret could not be removed");
            continue;
        }
        events.push(HookEvent {
            action: Action::SecretRemove,
            detail: format!("secret {}: its app was deleted", row.name),
            notification: None,
            warning: None,
        });
    }
    events
}

/// Flags the app's secrets for rotation: the previous owner knew them.
async fn secrets_owner_changed(secrets: &AppSecrets, app: &AppKey, previous: &str, new: &str) -> Option<HookEvent> {
    let reason = format!("the owner changed from {previous} to {new} on {}", now());
    let names = match secrets.store().flag_for_rotation(&app.namespace, &app.name, &reason).await {
        Ok(names) if names.is_empty() => return None,
        Ok(names) => names,
        Err(error) => {
            tracing::error!(%error, "secrets could not be flagged for rotation");
            return None;
        }
    };
    Some(HookEvent {
        action: Action::SecretFlagRotation,
        detail: format!("{}: {reason}", names.join(", ")),
        notification: Some(HookNotification {
            key: format!("secret.rotation {app} {reason}"),
            kind: "secret.rotation",
            subject: format!("the secrets of {app} should be rotated: its owner changed"),
        }),
        warning: Some(format!(
            "{new} now owns {app}, whose secrets {} were known to {previous}: they are flagged for rotation; set new values with `terrarium secrets set {app} NAME`",
            names.join(", ")
        )),
    })
}
