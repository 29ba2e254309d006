//! The gateway: one tower stack in front of every app.
//!
//! [`build_stack`] assembles the request path top to bottom (accept, resolve, dispatch,
//! account; authenticate, authorize and admit arrive with the identity and quota work).
//! Apps are found in a [`RoutingTable`] that the deploy pipeline updates atomically; the
//! gateway reads only [`deployment::Deployment`] records and never a manifest.

mod admission;
pub use admission::NamespaceCeilings;
mod pages;
mod resolve;
mod routing;
mod stack;
mod static_files;

pub use resolve::{AppAddress, resolve_host};
pub use routing::{LiveApp, RoutingTable};
pub use stack::{
    AccessControl, Allowance, BlobReader, GatewayConfig, GatewayState, Meter, RequestUsage, SESSION_COOKIE,
    SESSION_PATH, SignedIn, Suspension, Suspensions, X_TERRARIUM_IDENTITY, build_stack, session_cookie_header,
};
