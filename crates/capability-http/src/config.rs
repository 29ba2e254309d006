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

/// `[egress]` in `terrarium.toml`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EgressSection {
    /// Internal ranges apps may reach despite the built-in deny list (on-premises services),
    /// as CIDRs like `10.20.0.0/16`. Empty by default: loopback, private, link-local and
    /// metadata addresses are denied.
    pub allow_internal: Vec<String>,
    /// Internal ranges only the apps of one namespace may reach: `namespace = ["10.20.0.0/16"]`.
    pub allow_internal_by_namespace: BTreeMap<String, Vec<String>>,
    /// Internal services that authenticate apps by the platform's token: for a request to one
    /// of these hosts, the platform sets `Authorization: Bearer <app token>` itself.
    pub internal_apis: Vec<InternalApiSection>,
    /// Outbound response bytes one incoming request may read in total, over all its fetches.
    pub max_bytes_per_request: u64,
    /// Newest egress log entries kept; older ones are deleted.
    pub log_keep_entries: u64,
    pub timeout_secs: u64,
    pub max_response_bytes: u64,
    pub max_redirects: u32,
}

#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InternalApiSection {
    /// The host, exactly (`billing.internal.example.com`). Apps still list it in allowedEgress.
    pub host: String,
    /// The `aud` of the tokens the platform attaches; the service checks it.
    pub audience: String,
}

impl Default for EgressSection {
    fn default() -> EgressSection {
        EgressSection {
            allow_internal: Vec::new(),
            allow_internal_by_namespace: BTreeMap::new(),
            internal_apis: Vec::new(),
            max_bytes_per_request: 32 * 1024 * 1024,
            log_keep_entries: 1_000_000,
            timeout_secs: 10,
            max_response_bytes: 10 * 1024 * 1024,
            max_redirects: 5,
        }
    }
}

impl EgressSection {
    /// Every problem of the section, each naming its key.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        problems.extend(parse_ranges("egress.allow_internal", &self.allow_internal).err());
        for (namespace, ranges) in &self.allow_internal_by_namespace {
            problems.extend(parse_ranges(&format!("egress.allow_internal_by_namespace.{namespace}"), ranges).err());
        }
        for (index, api) in self.internal_apis.iter().enumerate() {
            let host = &api.host;
            if host.is_empty() || host.contains([':', '/', '*']) {
                problems.push(format!(
                    "egress.internal_apis[{index}].host: {host:?} is not a host name like billing.internal.example.com"
                ));
            }
            if api.audience.trim().is_empty() {
                problems.push(format!("egress.internal_apis[{index}].audience is empty; give the service's audience"));
            }
        }
        if self.timeout_secs == 0 {
            problems.push("egress.timeout_secs is 0; give a number of seconds".to_owned());
        }
        problems
    }

    /// The outbound settings; `user_agent` is sent when an app sets none. `by_namespace` are
    /// the namespaces' own internal ranges (from their settings, which gather
    /// `allow_internal_by_namespace` of this section).
    pub fn build(
        &self,
        user_agent: String,
        by_namespace: &BTreeMap<String, Vec<String>>,
    ) -> Result<OutboundConfig, String> {
        let mut allowed_internal_by_namespace = BTreeMap::new();
        for (namespace, ranges) in by_namespace {
            let key = format!("egress.allow_internal_by_namespace.{namespace}");
            allowed_internal_by_namespace.insert(namespace.clone(), parse_ranges(&key, ranges)?);
        }
        Ok(OutboundConfig {
            allowed_internal: parse_ranges("egress.allow_internal", &self.allow_internal)?,
            allowed_internal_by_namespace,
            internal_apis: self
                .internal_apis
                .iter()
                .map(|api| InternalApi { host: api.host.to_ascii_lowercase(), audience: api.audience.clone() })
                .collect(),
            timeout: Duration::from_secs(self.timeout_secs),
            max_response_bytes: self.max_response_bytes,
            max_redirects: self.max_redirects,
            user_agent,
        })
    }
}

fn parse_ranges(key: &str, ranges: &[String]) -> Result<Vec<IpNet>, String> {
    ranges
        .iter()
        .map(|cidr| cidr.parse().map_err(|_| format!("{key}: {cidr:?} is not a CIDR like 10.0.0.0/8")))
        .collect()
}

#[cfg(test)]
mod section_tests {
    use super::*;

    #[test]
    fn every_bad_range_and_api_is_named() {
        assert!(EgressSection::default().validate().is_empty());
        let section = EgressSection {
            allow_internal: vec!["10.0.0.0/33".into()],
            allow_internal_by_namespace: [("growth".to_owned(), vec!["nope".to_owned()])].into(),
            internal_apis: vec![InternalApiSection { host: "https://billing".into(), audience: "billing".into() }],
            ..EgressSection::default()
        };
        let problems = section.validate();
        assert_eq!(problems.len(), 3, "{problems:#?}");
        assert!(problems[0].starts_with("egress.allow_internal: \"10.0.0.0/33\""));
        assert!(problems[1].starts_with("egress.allow_internal_by_namespace.growth"));
        let built = EgressSection { allow_internal: vec!["10.20.0.0/16".into()], ..EgressSection::default() }
            .build("t".into(), &BTreeMap::new())
            .unwrap();
        assert_eq!(built.allowed_internal.len(), 1);
    }
}
