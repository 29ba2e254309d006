//! Helpers for integration tests: real external services started on loopback, never mocks.

pub mod oidc;
pub mod vault;
