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

    /// Whether namespace and name are both valid names ([`is_name`]).
    pub fn is_valid(&self) -> bool {
        is_name(&self.namespace) && is_name(&self.name)
    }
}

/// An app or namespace name: 1 to 40 lowercase letters, digits and `-`, starting and ending
/// with a letter or digit (a DNS label, so it can be part of a host name). The manifest's
/// validation explains a bad name; this only answers whether it is one.
pub fn is_name(name: &str) -> bool {
    (1..=40).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
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
    /// Who may use the app, enforced by the gateway.
    pub access: AppAccess,
    /// How much traffic the gateway admits for the app.
    pub admission: Admission,
    /// Where the app's secrets come from (`spec.secretsRef`); `None` when it has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets: Option<SecretsSource>,
    /// `spec.ttlDays`: the app expires this many days after its last deploy unless renewed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_days: Option<u32>,
    /// `spec.quotas.monthlyBudget`: spending limit per calendar month.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monthly_budget: Option<Budget>,
    /// `spec.quotas.monthlyRequests`: requests per calendar month.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monthly_requests: Option<u64>,
    /// `spec.slo`: availability (percent) and p95 latency targets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo: Option<SloTarget>,
    /// `spec.data.kv`: the name the app's key-value namespace is bound under in `env`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv_binding: Option<String>,
    /// `spec.quotas.kvStorageMiB`: the most the key-value namespace may hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv_max_mib: Option<u32>,
    /// The app's stored data is sealed under its namespace's data key (`dataClass`
    /// confidential or restricted).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub seal_data: bool,
    /// `metadata.labels.dataClass` (`public`, `internal`, `confidential`, `restricted`), for
    /// inventories and filters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_class: Option<String>,
    /// `spec.data.sql`: the app's SQL database, its binding and isolation tier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql: Option<SqlDatabase>,
    /// `spec.ai.models`: the model aliases the app may run through `env.AI`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ai_models: Vec<String>,
    /// `spec.data.vectors`: the app's vector index, its binding and ingestion rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vectors: Option<VectorIndex>,
}

/// An app's vector index as the manifest asks for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VectorIndex {
    /// The name in `env` (`VECTORS` by default).
    pub binding: String,
    /// Numbers per vector.
    pub dimensions: u32,
    /// Personal data is removed from text before it is stored (`piiRedaction`, on by default).
    pub pii_redaction: bool,
    /// Vectors are deleted this many days after they were written, unless an upsert says sooner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_days: Option<u32>,
}

/// An app's SQL database as the manifest asks for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SqlDatabase {
    /// The name in `env` (`DB` by default).
    pub binding: String,
    pub isolation: SqlTier,
    /// `spec.quotas.sqlStorageMiB`: the most the database may grow to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_mib: Option<u32>,
    /// The app is labelled `dataClass: restricted`: its data stays in `isolated`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub restricted: bool,
    /// The app is labelled `dataClass: confidential` or `restricted`: its database file is
    /// encrypted at rest (SQLCipher) under a key derived from the namespace's data key, which
    /// needs `isolated`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub encrypted: bool,
}

/// How far an app's SQL data is kept from other apps'.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SqlTier {
    /// One database per namespace, its tables shared by the namespace's apps.
    Shared,
    /// One database per namespace, each app's tables its own.
    Schema,
    /// A database of the app's own.
    Isolated,
}

impl SqlTier {
    pub fn as_str(self) -> &'static str {
        match self {
            SqlTier::Shared => "shared",
            SqlTier::Schema => "schema",
            SqlTier::Isolated => "isolated",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SloTarget {
    pub availability: Option<f64>,
    pub latency_p95_ms: Option<u32>,
}

/// An amount of money per calendar month.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Budget {
    pub amount: f64,
    /// ISO 4217, like `USD`.
    pub currency: String,
}

/// Where an app's secrets are kept: the platform's own store or a Vault KV v2 secret.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum SecretsSource {
    /// `terrarium://<namespace>/<app>`; always the app's own namespace and name.
    Terrarium { namespace: String, app: String },
    /// `vault://<mount>/<path>`: every key of that KV v2 secret becomes one binding.
    Vault { mount: String, path: String },
}

impl fmt::Display for SecretsSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretsSource::Terrarium { namespace, app } => write!(f, "terrarium://{namespace}/{app}"),
            SecretsSource::Vault { mount, path } => write!(f, "vault://{mount}/{path}"),
        }
    }
}

/// The gateway's per-app admission limits, from `spec.quotas` or the platform defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Admission {
    /// Sustained requests per second (GCRA).
    pub requests_per_second: u32,
    /// Requests that may arrive at once above the sustained rate.
    pub burst: u32,
    /// Requests in flight at once; more are refused at once with 503, never queued.
    pub concurrency: u32,
}

/// Who may use an app: its owner, its visibility and extra groups.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppAccess {
    /// `user:<name>` or `group:<name>`, from `spec.owner`.
    pub owner: String,
    pub visibility: Visibility,
    /// Groups let in besides what the visibility allows (`spec.access.groups`).
    pub groups: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    /// The owner only.
    Private,
    /// Members of the app's namespace (anyone with a role there).
    Team,
    /// Any signed-in user.
    Org,
    /// Anyone, signed in or not.
    Public,
}

/// A signed-in user as the gateway sees them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Visitor {
    pub subject: String,
    pub groups: Vec<String>,
    /// Namespaces (or `*`) where the user holds any role.
    pub member_of: Vec<String>,
}

/// The gateway's decision for one request to one app.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessDecision {
    Allow,
    /// Not signed in and the app is not public: sign in first.
    SignInRequired,
    /// Signed in, but not let in.
    Forbidden,
}

impl AppAccess {
    /// Whether `visitor` (None: anonymous) may use the app of namespace `namespace`.
    pub fn decide(&self, namespace: &str, visitor: Option<&Visitor>) -> AccessDecision {
        if self.visibility == Visibility::Public {
            return AccessDecision::Allow;
        }
        let Some(visitor) = visitor else { return AccessDecision::SignInRequired };
        let is_owner = match self.owner.split_once(':') {
            Some(("user", name)) => name == visitor.subject,
            Some(("group", group)) => visitor.groups.iter().any(|mine| mine == group),
            _ => false,
        };
        let in_extra_group = visitor.groups.iter().any(|group| self.groups.contains(group));
        let allowed = is_owner
            || in_extra_group
            || match self.visibility {
                Visibility::Private => false,
                Visibility::Team => visitor.member_of.iter().any(|member| member == namespace || member == "*"),
                Visibility::Org | Visibility::Public => true,
            };
        match allowed {
            true => AccessDecision::Allow,
            false => AccessDecision::Forbidden,
        }
    }
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
    /// Body bytes one request may send and receive over all its `fetch` calls.
    #[serde(default = "default_max_outbound_bytes")]
    pub max_outbound_bytes: u64,
}

/// For deployments recorded before the limit existed.
fn default_max_outbound_bytes() -> u64 {
    32 * 1024 * 1024
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
    fn visibility_matrix() {
        let visitor = |subject: &str, groups: &[&str], member_of: &[&str]| Visitor {
            subject: subject.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            member_of: member_of.iter().map(|m| m.to_string()).collect(),
        };
        let owner = visitor("ana", &[], &["growth"]);
        let member = visitor("bea", &[], &["growth"]);
        let outsider = visitor("carl", &[], &["finance"]);
        let extra = visitor("dan", &["auditors"], &[]);
        use AccessDecision::*;
        for (visibility, expect) in [
            (Visibility::Private, [SignInRequired, Allow, Forbidden, Forbidden, Allow]),
            (Visibility::Team, [SignInRequired, Allow, Allow, Forbidden, Allow]),
            (Visibility::Org, [SignInRequired, Allow, Allow, Allow, Allow]),
            (Visibility::Public, [Allow, Allow, Allow, Allow, Allow]),
        ] {
            let access = AppAccess { owner: "user:ana".into(), visibility, groups: vec!["auditors".into()] };
            let got = [
                access.decide("growth", None),
                access.decide("growth", Some(&owner)),
                access.decide("growth", Some(&member)),
                access.decide("growth", Some(&outsider)),
                access.decide("growth", Some(&extra)),
            ];
            assert_eq!(got, expect, "{visibility:?}");
        }
        let by_group = AppAccess { owner: "group:growth-team".into(), visibility: Visibility::Private, groups: vec![] };
        assert_eq!(by_group.decide("growth", Some(&visitor("eve", &["growth-team"], &[]))), Allow);
        assert_eq!(by_group.decide("growth", Some(&visitor("eve", &["other"], &[]))), Forbidden);
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
