//! The app's functions loaded offline, as the server's deploy loads them: the same planning,
//! the same loader and engine (compile every module, evaluate the entry, check the default
//! export), so `terrarium validate` says what `deploy` would, with the same words.

use std::collections::HashMap;
use std::sync::Arc;

use bundle::Bundle;
use bytes::Bytes;
use futures::future::BoxFuture;
use manifest::ValidatedManifest;
use runtime::loader::{Capabilities, Files, Loader, Secrets};
use runtime::{
    AppLog, Engine, HostServices, LogLine, OutboundError, OutboundHttp, OutboundRequest, OutboundResponse, SecretValue,
};

/// The bundle's files by content digest.
struct BundleFiles(HashMap<String, Bytes>);

impl Files for BundleFiles {
    fn read<'a>(&'a self, digest: &'a str) -> BoxFuture<'a, Result<Bytes, String>> {
        let found = self.0.get(digest).cloned().ok_or_else(|| format!("no file with digest {digest}"));
        Box::pin(async move { found })
    }
}

/// Loading runs no request: nothing is fetched, nothing is logged.
struct Offline;

impl OutboundHttp for Offline {
    fn fetch(&self, _request: OutboundRequest) -> BoxFuture<'static, Result<OutboundResponse, OutboundError>> {
        Box::pin(async { Err(OutboundError::Denied { message: "validate makes no requests".to_owned() }) })
    }
}

impl AppLog for Offline {
    fn write(&self, _line: LogLine) {}
}

impl Capabilities for Offline {
    fn host_services(&self, _deployment: &deployment::Deployment) -> Result<HostServices, String> {
        Ok(HostServices {
            outbound: Arc::new(Offline),
            log: Arc::new(Offline),
            kv: None,
            sql: None,
            cache: None,
            ai: None,
            vectors: None,
        })
    }
}

/// The secrets are the server's: none are known here.
impl Secrets for Offline {
    fn resolve<'a>(
        &'a self,
        _deployment: &'a deployment::Deployment,
    ) -> BoxFuture<'a, Result<std::collections::BTreeMap<String, SecretValue>, String>> {
        Box::pin(async { Ok(std::collections::BTreeMap::new()) })
    }
}

/// Loads every function of the app with the server's defaults; answers how many routes run code.
pub fn check_functions(validated: &ValidatedManifest, bundle: &Bundle) -> anyhow::Result<usize> {
    let limits = plan::config::LimitsSection::default();
    let defaults = limits.defaults(&plan::config::AccessSection::default(), u64::MAX);
    let deployment =
        plan::plan(validated, bundle, 1, &defaults).map_err(|problems| anyhow::anyhow!(problems.join("\n")))?;
    if deployment.functions.is_empty() {
        return Ok(0);
    }
    let files = bundle.files().values().map(|contents| (bundle::file_digest(contents), Bytes::from(contents.clone())));
    let engine: Arc<dyn Engine> =
        Arc::new(engine_js::JsEngine::new(engine_js::config::EngineSection::default().build(1)));
    let loader = Loader::new(engine, Arc::new(BundleFiles(files.collect())), Arc::new(Offline), Arc::new(Offline));
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    let loaded = runtime.block_on(loader.load(&Arc::new(deployment.clone())));
    match loaded {
        Ok(_) => Ok(deployment.functions.len()),
        // The words of the server's refusal (`ControlError::Load`).
        Err(message) => anyhow::bail!("the app's code does not load: {message}"),
    }
}
