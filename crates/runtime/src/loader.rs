//! From a stored deployment to code an engine runs: read the function modules from the blob
//! store, build the deployment's host services, resolve its secrets, compile.
//!
//! Each step is a trait the platform implements ([`Files`] by the blob store, [`Capabilities`]
//! by the binary over the capability crates, [`Secrets`] by `secrets`), so the deploy pipeline
//! calls one [`Loader`] and names none of them.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use deployment::{BundleFile, Deployment, StaticSite};
use futures::future::BoxFuture;

use crate::{AppCode, Engine, HostServices, LoadedApp, SecretValue};

/// The bundle's files, by content digest.
pub trait Files: Send + Sync + 'static {
    fn read<'a>(&'a self, digest: &'a str) -> BoxFuture<'a, Result<Bytes, String>>;
}

/// The capabilities one deployment's functions get, scoped to it.
pub trait Capabilities: Send + Sync + 'static {
    /// Fails when the deployment asks for what cannot be granted (an unusable egress rule).
    fn host_services(&self, deployment: &Deployment) -> Result<HostServices, String>;
}

/// The values of a deployment's `spec.secretsRef`. An error fails the load: an app never starts
/// without the secrets it names.
pub trait Secrets: Send + Sync + 'static {
    fn resolve<'a>(
        &'a self,
        deployment: &'a Deployment,
    ) -> BoxFuture<'a, Result<BTreeMap<String, SecretValue>, String>>;
}

/// Loads deployments into an engine.
pub struct Loader {
    engine: Arc<dyn Engine>,
    files: Arc<dyn Files>,
    capabilities: Arc<dyn Capabilities>,
    secrets: Arc<dyn Secrets>,
}

impl Loader {
    pub fn new(
        engine: Arc<dyn Engine>,
        files: Arc<dyn Files>,
        capabilities: Arc<dyn Capabilities>,
        secrets: Arc<dyn Secrets>,
    ) -> Loader {
        Loader { engine, files, capabilities, secrets }
    }

    /// The deployment's functions, compiled; `None` for an app with no functions (a static site).
    /// The error says what to fix, in the builder's terms.
    pub async fn load(&self, deployment: &Arc<Deployment>) -> Result<Option<Arc<dyn LoadedApp>>, String> {
        if deployment.functions.is_empty() {
            return Ok(None);
        }
        let mut modules = BTreeMap::new();
        for path in module_paths(&deployment.files, deployment.static_site.as_ref()) {
            let file = &deployment.files[path];
            let bytes = self.files.read(&file.digest).await.map_err(|error| format!("reading {path}: {error}"))?;
            let source = String::from_utf8(bytes.to_vec()).map_err(|_| format!("{path} is not UTF-8 text"))?;
            modules.insert(path.clone(), Arc::from(source));
        }
        let mut host = self.capabilities.host_services(deployment)?;
        let secrets = self.secrets.resolve(deployment).await?;
        // What the app writes to its log never holds its secrets' values.
        host.log = crate::mask::MaskedLog::wrap(host.log, &secrets);
        let bindings = [
            deployment.kv_binding.as_deref().map(|binding| (binding, "the KV binding (spec.data.kv)")),
            deployment.sql.as_ref().map(|sql| (sql.binding.as_str(), "the SQL binding (spec.data.sql)")),
        ];
        if let Some((binding, what)) =
            bindings.into_iter().flatten().find(|(binding, _)| secrets.contains_key(*binding))
        {
            return Err(format!("env.{binding} is both {what} and a secret of the app; rename one of them"));
        }
        let code = AppCode { deployment: deployment.clone(), modules, host, secrets };
        self.engine.load(code).map(Some).map_err(|error| error.to_string())
    }
}

/// The bundle's function modules: JavaScript outside the static site's folder. The static
/// site's scripts are browser code, not modules the engine should compile (they may import from
/// a CDN or use browser-only syntax).
fn module_paths<'a>(
    files: &'a BTreeMap<String, BundleFile>,
    static_site: Option<&StaticSite>,
) -> impl Iterator<Item = &'a String> {
    let static_prefix = static_site.map(|site| format!("{}/", site.dir));
    files.keys().filter(move |path| {
        let is_static = static_prefix.as_deref().is_some_and(|prefix| prefix != "/" && path.starts_with(prefix));
        (path.ends_with(".js") || path.ends_with(".mjs")) && !is_static
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(paths: &[&str]) -> BTreeMap<String, BundleFile> {
        paths
            .iter()
            .map(|path| {
                let file = BundleFile { digest: format!("sha256:{path}"), size: 1 };
                ((*path).to_owned(), file)
            })
            .collect()
    }

    fn site(dir: &str) -> StaticSite {
        StaticSite { dir: dir.to_owned(), spa: false }
    }

    #[test]
    fn modules_are_the_javascript_outside_the_static_site() {
        let files = files(&["functions/api.js", "lib/util.mjs", "public/app.js", "public/index.html", "README.md"]);
        let paths: Vec<&String> = module_paths(&files, Some(&site("public"))).collect();
        assert_eq!(paths, ["functions/api.js", "lib/util.mjs"]);
        assert_eq!(module_paths(&files, None).count(), 3, "without a site every script is a module");
    }

    #[test]
    fn a_site_served_from_the_root_keeps_its_modules() {
        let files = files(&["functions/api.js", "app.js"]);
        assert_eq!(module_paths(&files, Some(&site("/"))).count(), 2);
    }
}
