//! The operator's settings for apps' outbound HTTP.

use std::collections::BTreeMap;
use std::time::Duration;

use ipnet::IpNet;

/// Process-wide settings for outbound `fetch`. There is deliberately no `Default`: every value
/// bounds what apps can do or reach, so the caller spells each one out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboundConfig {
    /// Internal ranges apps may reach (on-premises services, a test upstream on 127.0.0.1).
    /// Empty means none. Cloud metadata, unspecified, multicast and broadcast addresses stay
    /// blocked whatever this says.
    pub allowed_internal: Vec<IpNet>,
    /// Internal ranges only the apps of one namespace may reach, besides `allowed_internal`.
    pub allowed_internal_by_namespace: BTreeMap<String, Vec<IpNet>>,
    /// Internal services that authenticate apps with the platform's token: on a request to one
    /// of these hosts, the platform sets `Authorization: Bearer <token>` itself.
    pub internal_apis: Vec<InternalApi>,
    /// Wall-clock budget of one `fetch`: connecting, every redirect hop and the whole response body.
    pub timeout: Duration,
    /// Largest response body one `fetch` may read; a larger one fails the call.
    pub max_response_bytes: u64,
    /// Redirects one `fetch` follows before it fails (browsers use 20).
    pub max_redirects: u32,
    /// Sent when the app sets no `User-Agent` of its own.
    pub user_agent: String,
}

/// An internal service that accepts apps' platform tokens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InternalApi {
    /// The host, compared exactly (lowercase, no port).
    pub host: String,
    /// The tokens' `aud`.
    pub audience: String,
}
