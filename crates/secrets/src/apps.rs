//! Apps' secrets at load time: a deployment's `secretsRef` resolved into the values its
//! functions get as `env.NAME`, from the built-in store (`terrarium://`) or a key-value source
//! (`vault://`), and which apps must load again because their Vault secret changed.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use deployment::{AppKey, Deployment, SecretsSource};
use futures::future::BoxFuture;
use runtime::SecretValue;

use crate::SecretStore;

/// One version of a secret of a key-value source.
#[derive(Clone, Debug)]
pub struct KvSecret {
    pub values: BTreeMap<String, SecretValue>,
    pub version: u64,
}

/// Where `vault://<mount>/<path>` references are read (Vault's KV engine, in `vault`).
#[async_trait]
pub trait KvSource: Send + Sync + 'static {
    /// The latest version of the secret; the error says what failed and never holds a value.
    async fn read(&self, mount: &str, path: &str) -> Result<KvSecret, String>;
}

/// Resolves deployments' `secretsRef` into the values their functions get.
pub struct AppSecrets {
    store: Arc<SecretStore>,
    vault: Option<Arc<dyn KvSource>>,
    /// The Vault secret version each loaded app got, to reload it when it changes.
    vault_versions: Mutex<HashMap<AppKey, u64>>,
}

impl AppSecrets {
    pub fn new(store: Arc<SecretStore>, vault: Option<Arc<dyn KvSource>>) -> AppSecrets {
        AppSecrets { store, vault, vault_versions: Mutex::new(HashMap::new()) }
    }

    pub fn store(&self) -> &SecretStore {
        &self.store
    }

    /// The secrets of one deployment, checked against its `spec.vars`. An error fails the load,
    /// so an app never starts without the secrets it names.
    pub async fn resolve(&self, deployment: &Deployment) -> Result<BTreeMap<String, SecretValue>, String> {
        let values = match &deployment.secrets {
            None => return Ok(BTreeMap::new()),
            Some(SecretsSource::Terrarium { namespace, app }) => {
                self.store.open_app(namespace, app, &now()).await.map_err(|error| {
                    tracing::error!(%namespace, %app, %error, "secrets could not be opened");
                    format!("the secrets of terrarium://{namespace}/{app} could not be opened: {error}")
                })?
            }
            Some(source @ SecretsSource::Vault { mount, path }) => {
                let Some(vault) = &self.vault else {
                    return Err(format!(
                        "spec.secretsRef is {source}, but this server has no Vault configured; ask the platform operator to set [secrets.vault] in terrarium.toml, or keep the secrets in terrarium://{}/{}",
                        deployment.app.namespace, deployment.app.name
                    ));
                };
                let secret = vault.read(mount, path).await?;
                for name in secret.values.keys() {
                    crate::check_name(name).map_err(|error| format!("{source}: {error}"))?;
                }
                let mut versions = self.vault_versions.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                versions.insert(deployment.app.clone(), secret.version);
                secret.values
            }
        };
        if let Some(name) = values.keys().find(|name| deployment.vars.contains_key(*name)) {
            return Err(format!(
                "env.{name} is both in spec.vars and a secret of {}; rename one of them",
                deployment.secrets.as_ref().map(ToString::to_string).unwrap_or_default()
            ));
        }
        Ok(values)
    }

    /// Whether the app's Vault secret has a version other than the one it was loaded with.
    /// When Vault does not answer, the app keeps its current values (and this says no).
    pub async fn vault_changed(&self, deployment: &Deployment) -> bool {
        let (Some(vault), Some(SecretsSource::Vault { mount, path })) = (&self.vault, &deployment.secrets) else {
            return false;
        };
        let loaded = {
            let versions = self.vault_versions.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            versions.get(&deployment.app).copied()
        };
        match vault.read(mount, path).await {
            Ok(secret) => loaded != Some(secret.version),
            Err(error) => {
                tracing::warn!(namespace = %deployment.app.namespace, app = %deployment.app.name, %error, "Vault secret refresh failed");
                false
            }
        }
    }
}

impl runtime::loader::Secrets for AppSecrets {
    fn resolve<'a>(
        &'a self,
        deployment: &'a Deployment,
    ) -> BoxFuture<'a, Result<BTreeMap<String, SecretValue>, String>> {
        Box::pin(AppSecrets::resolve(self, deployment))
    }
}

/// Now as RFC 3339 UTC with second precision, when a secret was last read.
fn now() -> String {
    let now = time::OffsetDateTime::now_utc();
    let now = now.replace_nanosecond(0).unwrap_or(now);
    now.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}
