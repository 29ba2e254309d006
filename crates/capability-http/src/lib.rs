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

use std::sync::Arc;

use deployment::Deployment;
use egress::{AddressPolicy, AllowList, RuleError};
use runtime::OutboundHttp;
use tokio::runtime::Handle;

pub use config::OutboundConfig;
pub use resolve::{NameResolver, SystemResolver};

use host::{AppOutbound, Shared};
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
        let policy = Arc::new(AddressPolicy::new(config.allowed_internal.clone()));
        let client = build_client(&config, Arc::clone(&policy), resolver)?;
        let shared = Shared { client, policy, config, runtime };
        Ok(OutboundHttpFactory { shared: Arc::new(shared) })
    }

    /// Parses the deployment's `spec.allowedEgress` once and returns the app's `fetch`.
    pub fn for_deployment(&self, deployment: &Deployment) -> Result<Arc<dyn OutboundHttp>, Vec<RuleError>> {
        let allow_list = AllowList::parse(&deployment.allowed_egress)?;
        let outbound = AppOutbound::new(deployment.app.clone(), allow_list, Arc::clone(&self.shared));
        Ok(Arc::new(outbound))
    }
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
