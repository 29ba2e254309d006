//! Outbound HTTP for apps (`fetch`), enforcing the deployment's egress allow list and the
//! operator's address policy on the URL, on every resolved address and on every redirect hop.
//!
//! Three phases, like every capability: [`OutboundHttpFactory::new`] builds one HTTP client per
//! process; [`OutboundHttpFactory::for_deployment`] parses a deployment's `spec.allowedEgress`
//! once; the returned [`runtime::OutboundHttp`] serves the app's `fetch` calls.

mod config;
mod events;
mod host;
mod resolve;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;

use deployment::{AppKey, Deployment};
use egress::{AddressPolicy, AllowList, RuleError};
use runtime::{EgressRecorder, OutboundHttp};
use tokio::runtime::Handle;

pub use config::{EgressSection, InternalApi, InternalApiSection, OutboundConfig};
pub use resolve::{NameResolver, SystemResolver};

use host::{AppOutbound, Network, Shared};
use resolve::CheckedResolver;

/// Builds each deployment's outbound HTTP. Create one per process and keep it.
pub struct OutboundHttpFactory {
    shared: Arc<Shared>,
}

/// The HTTP client could not be built (for example, no TLS roots could be loaded).
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("failed to build the outbound HTTP client")]
    Client {
        #[source]
        source: reqwest::Error,
    },
}

impl OutboundHttpFactory {
    /// Resolves names with the system resolver. `runtime` is the tokio runtime that runs every
    /// request, whichever thread or executor awaits the `fetch` future.
    pub fn new(config: OutboundConfig, runtime: Handle) -> Result<OutboundHttpFactory, BuildError> {
        OutboundHttpFactory::with_resolver(config, runtime, Arc::new(SystemResolver))
    }

    /// Resolves names with `resolver` (tests map made-up names to chosen addresses). Every
    /// address it returns still goes through the address policy.
    pub fn with_resolver(
        config: OutboundConfig,
        runtime: Handle,
        resolver: Arc<dyn NameResolver>,
    ) -> Result<OutboundHttpFactory, BuildError> {
        let network = |ranges: Vec<ipnet::IpNet>| -> Result<Arc<Network>, BuildError> {
            let policy = Arc::new(AddressPolicy::new(ranges));
            let client = build_client(&config, Arc::clone(&policy), Arc::clone(&resolver))?;
            Ok(Arc::new(Network { client, policy }))
        };
        let default_network = network(config.allowed_internal.clone())?;
        // A namespace with ranges of its own gets a client whose resolver allows them; the
        // others share the default client.
        let mut by_namespace = HashMap::new();
        for (namespace, ranges) in &config.allowed_internal_by_namespace {
            let mut all = config.allowed_internal.clone();
            all.extend(ranges.iter().copied());
            by_namespace.insert(namespace.clone(), network(all)?);
        }
        let shared = Shared { default_network, by_namespace, config, runtime, recorder: None, app_tokens: None };
        Ok(OutboundHttpFactory { shared: Arc::new(shared) })
    }

    /// Records every outbound call (allowed, denied, failed) with `recorder`.
    pub fn with_recorder(mut self, recorder: Arc<dyn EgressRecorder>) -> OutboundHttpFactory {
        self.shared_mut().recorder = Some(recorder);
        self
    }

    /// Mints the tokens attached to requests to the configured internal APIs.
    pub fn with_app_tokens(mut self, app_tokens: Arc<dyn AppTokens>) -> OutboundHttpFactory {
        self.shared_mut().app_tokens = Some(app_tokens);
        self
    }

    fn shared_mut(&mut self) -> &mut Shared {
        Arc::get_mut(&mut self.shared).expect("the factory is configured before any deployment uses it")
    }

    /// Parses the deployment's `spec.allowedEgress` once and returns the app's `fetch`.
    pub fn for_deployment(&self, deployment: &Deployment) -> Result<Arc<dyn OutboundHttp>, Vec<RuleError>> {
        let allow_list = AllowList::parse(&deployment.allowed_egress)?;
        let network = self.shared.by_namespace.get(&deployment.app.namespace).unwrap_or(&self.shared.default_network);
        let outbound =
            AppOutbound::new(deployment.app.clone(), allow_list, Arc::clone(network), Arc::clone(&self.shared));
        Ok(Arc::new(outbound))
    }
}

/// Mints the platform token that identifies an app to an internal API (`aud` = the API's audience).
pub trait AppTokens: Send + Sync + 'static {
    /// A short-lived token for `app`; an error is a bounded message without the token.
    fn token(&self, app: &AppKey, audience: &str) -> Result<String, String>;
}

/// The one HTTP client of the process, shared by every app: its connection pool holds only
/// connections to addresses the policy allowed, and each app's allow list is checked before a
/// request reaches it.
fn build_client(
    config: &OutboundConfig,
    policy: Arc<AddressPolicy>,
    resolver: Arc<dyn NameResolver>,
) -> Result<reqwest::Client, BuildError> {
    reqwest::Client::builder()
        // Every name goes through our resolver, which checks each address before anything connects.
        .dns_resolver(Arc::new(CheckedResolver { names: resolver, policy }))
        // Redirects are followed by hand in `host.rs`, so that every hop is checked again.
        .redirect(reqwest::redirect::Policy::none())
        // A proxy from the environment would connect to addresses we never checked.
        .no_proxy()
        // The whole call has a deadline too; this one stops a single slow connect early.
        .connect_timeout(config.timeout)
        .user_agent(config.user_agent.as_str())
        .build()
        .map_err(|source| BuildError::Client { source })
}
