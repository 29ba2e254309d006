//! The gateway: one tower stack in front of every app.
//!
//! [`build_stack`] assembles the request path top to bottom; an app request then goes through
//! its phases: resolve, authenticate, authorize, admit, dispatch, and account (one access log
//! line and the usage of every answer, refusals included).
//! Apps are found in a [`RoutingTable`] that the deploy pipeline updates atomically; the
//! gateway reads only [`deployment::Deployment`] records and never a manifest.

mod admission;
pub mod config;
pub mod cookies;
pub use admission::NamespaceCeilings;
mod pages;
mod resolve;
mod routing;
mod stack;
mod static_files;

pub use cookies::{SESSION_COOKIE, session_cookie_header};
pub use resolve::{AppAddress, resolve_host};
pub use routing::{LiveApp, RoutingTable};
pub use stack::{
    AccessControl, Allowance, ArchivedApp, ArchivedApps, BlobReader, GatewayConfig, GatewayState, Meter, RequestUsage,
    SESSION_PATH, SignedIn, Suspension, Suspensions, X_TERRARIUM_IDENTITY, build_stack,
};
