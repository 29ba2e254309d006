//! Name resolution that checks every address before reqwest may connect to it.
//!
//! reqwest connects only to the addresses this resolver returns, so checking them here (rather
//! than resolving once to check and again to connect) leaves no window for DNS rebinding.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use egress::{AddressPolicy, Denied};
use futures::future::BoxFuture;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Turns a host name into addresses. The system resolver in production; a fixed table in tests.
pub trait NameResolver: Send + Sync + 'static {
    fn lookup(&self, host: &str) -> BoxFuture<'static, io::Result<Vec<IpAddr>>>;
}

/// The operating system's resolver (`getaddrinfo`, through tokio's blocking pool).
#[derive(Clone, Copy, Debug)]
pub struct SystemResolver;

impl NameResolver for SystemResolver {
    fn lookup(&self, host: &str) -> BoxFuture<'static, io::Result<Vec<IpAddr>>> {
        let host = host.to_owned();
        Box::pin(async move {
            let addresses = tokio::net::lookup_host((host, 0)).await?;
            Ok(addresses.map(|address| address.ip()).collect())
        })
    }
}

/// reqwest's resolver: looks the name up, then refuses it if any address is blocked.
pub(crate) struct CheckedResolver {
    pub(crate) names: Arc<dyn NameResolver>,
    pub(crate) policy: Arc<AddressPolicy>,
}

/// A host that resolves to an address the policy blocks. Found again in reqwest's error chain.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct ResolveDenied(pub(crate) Denied);

/// A host that does not resolve.
#[derive(Debug, thiserror::Error)]
#[error("could not resolve {host:?}: {reason}")]
pub(crate) struct ResolveFailed {
    pub(crate) host: String,
    pub(crate) reason: String,
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let names = Arc::clone(&self.names);
        let policy = Arc::clone(&self.policy);
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addresses = match names.lookup(&host).await {
                Ok(addresses) if addresses.is_empty() => {
                    let reason = "the name has no addresses".to_owned();
                    return Err(Box::new(ResolveFailed { host, reason }) as _);
                }
                Ok(addresses) => addresses,
                Err(error) => {
                    return Err(Box::new(ResolveFailed { host, reason: error.to_string() }) as _);
                }
            };
            // One blocked address denies the whole name: a host that mixes public and internal
            // addresses is either misconfigured or an attack, and either way must not be reached.
            for address in &addresses {
                if let Err(denied) = policy.check_ip(*address) {
                    return Err(Box::new(ResolveDenied(denied.resolved_from(&host))) as _);
                }
            }
            // Port 0 is replaced by the URL's port when reqwest connects.
            let socket_addresses: Addrs = Box::new(addresses.into_iter().map(|address| SocketAddr::new(address, 0)));
            Ok(socket_addresses)
        })
    }
}
