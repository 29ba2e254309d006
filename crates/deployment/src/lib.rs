//! The immutable, resolved, content-addressed record of one app revision.
//!
//! The deploy pipeline builds a [`Deployment`] once from a validated manifest and a bundle;
//! the gateway and the runtime read only this record and never re-parse a manifest.
//! It is stored as JSON beside the revision, so a restarted server serves exactly the same thing.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The identity of an app: its tenant (namespace) and its name within it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AppKey {
    pub namespace: String,
    pub name: String,
}

impl AppKey {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> AppKey {
        AppKey { namespace: namespace.into(), name: name.into() }
    }
}

impl fmt::Display for AppKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// One revision of one app, fully resolved.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Deployment {
    pub app: AppKey,
    /// Monotonic per app, starting at 1.
    pub revision: i64,
    /// `sha256:<hex>` over the sorted list of (path, file digest): independent of archive metadata.
    pub bundle_digest: String,
    /// The static front end, when the runtime has one.
    pub static_site: Option<StaticSite>,
    /// Every file of the bundle by its normalised relative path (`public/index.html`).
    pub files: BTreeMap<String, BundleFile>,
    /// Edge functions in manifest order; the first matching route wins.
    pub functions: Vec<FunctionRoute>,
    /// Non-secret configuration handed to functions as `env.NAME`.
    pub vars: BTreeMap<String, String>,
    /// The raw `spec.allowedEgress` entries; the outbound HTTP capability parses them once per deployment.
    pub allowed_egress: Vec<String>,
    pub limits: FunctionLimits,
}

/// A file of the bundle, stored content-addressed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleFile {
    /// `sha256:<hex>` of the file's bytes: the blob's address and the HTTP `ETag`.
    pub digest: String,
    pub size: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaticSite {
    /// Directory inside the bundle that is served at the app's root, without a trailing slash (`public`).
    pub dir: String,
    /// Unknown paths that look like pages fall back to `index.html`.
    pub spa: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionRoute {
    pub route: RoutePattern,
    /// Bundle path of the ES module (`functions/api.js`).
    pub entry: String,
}

/// Limits of one function invocation. Spelled out by the deploy pipeline from the manifest's
/// quotas and the platform defaults; there is deliberately no `Default`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionLimits {
    /// CPU time one request may spend running the app's code.
    pub cpu_ms_per_request: u64,
    /// Heap of one instance of the app.
    pub memory_bytes: u64,
    /// Native stack the engine may use; deep recursion ends in a `RangeError` first.
    pub stack_bytes: u64,
    /// Wall-clock time from the call until the response body is complete.
    pub wall_timeout_ms: u64,
    /// Largest response body the app may return.
    pub max_response_bytes: u64,
    /// Outbound `fetch` calls one request may make.
    pub max_outbound_requests: u32,
}

/// A route inside an app: an exact path (`/api/pick`) or a prefix ending in `/*` (`/api/*`).
/// `/*` matches every path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RoutePattern {
    raw: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoutePatternError {
    pub pattern: String,
    pub reason: &'static str,
}

impl fmt::Display for RoutePatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "route {:?} {}", self.pattern, self.reason)
    }
}

impl std::error::Error for RoutePatternError {}

impl RoutePattern {
    pub fn parse(raw: &str) -> Result<RoutePattern, RoutePatternError> {
        let error = |reason| Err(RoutePatternError { pattern: raw.to_owned(), reason });
        if !raw.starts_with('/') {
            return error("must start with /");
        }
        if raw.contains("//") || raw.split('/').any(|segment| segment == "..") {
            return error("must not contain empty or .. segments");
        }
        let star_count = raw.matches('*').count();
        if star_count > 1 || (star_count == 1 && !raw.ends_with("/*")) {
            return error("may only end in /* (a prefix); * elsewhere is not supported");
        }
        if raw.chars().any(|c| c.is_whitespace() || c.is_control() || c == '?' || c == '#') {
            return error("must be a plain path without spaces, ? or #");
        }
        Ok(RoutePattern { raw: raw.to_owned() })
    }

    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// Whether `path` (the request path inside the app, starting with `/`) matches.
    pub fn matches(&self, path: &str) -> bool {
        match self.raw.strip_suffix('*') {
            // `/api/*` matches `/api`, `/api/` and everything below `/api/`.
            Some(prefix) => path.starts_with(prefix) || path == &prefix[..prefix.len() - 1],
            None => path == self.raw,
        }
    }
}

impl TryFrom<String> for RoutePattern {
    type Error = RoutePatternError;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        RoutePattern::parse(&raw)
    }
}

impl From<RoutePattern> for String {
    fn from(pattern: RoutePattern) -> String {
        pattern.raw
    }
}

impl Deployment {
    /// The function that serves `path`, if any: the first route in manifest order that matches.
    pub fn function_for(&self, path: &str) -> Option<&FunctionRoute> {
        self.functions.iter().find(|function| function.route.matches(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(pattern: &str, path: &str, expect: bool) {
        let pattern = RoutePattern::parse(pattern).unwrap();
        assert_eq!(pattern.matches(path), expect, "{pattern:?} vs {path}");
    }

    #[test]
    fn route_matching() {
        check("/api/*", "/api/pick", true);
        check("/api/*", "/api", true);
        check("/api/*", "/api/", true);
        check("/api/*", "/apix", false);
        check("/api/*", "/", false);
        check("/*", "/", true);
        check("/*", "/anything/at/all", true);
        check("/api/pick", "/api/pick", true);
        check("/api/pick", "/api/pick/", false);
    }

    #[test]
    fn route_refusals() {
        for bad in ["api", "/a/*/b", "/a*", "/a//b", "/a/../b", "/a b", "/a?x"] {
            assert!(RoutePattern::parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn pattern_round_trips_through_json() {
        let pattern = RoutePattern::parse("/api/*").unwrap();
        let json = serde_json::to_string(&pattern).unwrap();
        assert_eq!(json, "\"/api/*\"");
        assert_eq!(serde_json::from_str::<RoutePattern>(&json).unwrap(), pattern);
        assert!(serde_json::from_str::<RoutePattern>("\"nope\"").is_err());
    }
}
