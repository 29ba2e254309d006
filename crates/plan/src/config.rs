//! `[limits]` and `[access]` in `terrarium.toml`: what an app gets when its manifest is silent.

use std::collections::BTreeMap;

use bundle::BundleLimits;
use deployment::{Admission, Visibility};
use serde::Deserialize;

use crate::PlatformDefaults;
use crate::namespaces::{DEFAULT_MAX_TTL_DAYS, NamespaceSettings, Namespaces, Tier};

/// Limits an app gets when its manifest does not set them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsSection {
    pub cpu_ms_per_request: u64,
    pub memory_mib: u64,
    pub stack_kib: u64,
    pub wall_timeout_ms: u64,
    pub max_response_bytes: u64,
    pub max_outbound_requests: u32,
    pub max_bundle_bytes: u64,
    pub max_bundle_files: usize,
    /// Admission per app when its manifest sets no `spec.quotas`.
    pub requests_per_second: u32,
    pub burst: u32,
    pub concurrency: u32,
}

impl Default for LimitsSection {
    fn default() -> LimitsSection {
        LimitsSection {
            cpu_ms_per_request: 50,
            memory_mib: 64,
            stack_kib: 512,
            wall_timeout_ms: 10_000,
            max_response_bytes: 10 * 1024 * 1024,
            max_outbound_requests: 50,
            // The same caps the CLI applies before uploading.
            max_bundle_bytes: bundle::DEFAULT_LIMITS.max_total_bytes,
            max_bundle_files: bundle::DEFAULT_LIMITS.max_files,
            requests_per_second: 100,
            burst: 200,
            concurrency: 32,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccessSection {
    /// Who may use an app whose manifest sets no visibility: private, team, org or public.
    pub default_visibility: Visibility,
}

impl Default for AccessSection {
    fn default() -> AccessSection {
        // Behind the company's sign-in unless the app or the operator says otherwise.
        AccessSection { default_visibility: Visibility::Org }
    }
}

impl LimitsSection {
    /// Every problem of the section, each naming its key: a limit of 0 would make every app fail.
    pub fn validate(&self) -> Vec<String> {
        let numbers = [
            ("cpu_ms_per_request", self.cpu_ms_per_request),
            ("memory_mib", self.memory_mib),
            ("stack_kib", self.stack_kib),
            ("wall_timeout_ms", self.wall_timeout_ms),
            ("max_response_bytes", self.max_response_bytes),
            ("max_bundle_bytes", self.max_bundle_bytes),
            ("max_bundle_files", self.max_bundle_files as u64),
            ("requests_per_second", u64::from(self.requests_per_second)),
            ("burst", u64::from(self.burst)),
            ("concurrency", u64::from(self.concurrency)),
        ];
        numbers
            .into_iter()
            .filter(|(_, value)| *value == 0)
            .map(|(key, _)| format!("limits.{key} is 0; every app would fail: give a number above 0"))
            .collect()
    }

    pub fn bundle_limits(&self) -> BundleLimits {
        BundleLimits { max_total_bytes: self.max_bundle_bytes, max_files: self.max_bundle_files }
    }

    /// What `plan` fills in for a silent manifest; `max_outbound_bytes` is `[egress]`'s.
    pub fn defaults(&self, access: &AccessSection, max_outbound_bytes: u64) -> PlatformDefaults {
        PlatformDefaults {
            cpu_ms_per_request: self.cpu_ms_per_request,
            memory_mib: self.memory_mib,
            stack_kib: self.stack_kib,
            wall_timeout_ms: self.wall_timeout_ms,
            max_response_bytes: self.max_response_bytes,
            max_outbound_requests: self.max_outbound_requests,
            max_outbound_bytes,
            default_visibility: access.default_visibility,
            requests_per_second: self.requests_per_second,
            burst: self.burst,
            concurrency: self.concurrency,
        }
    }
}

/// `[tiers.<name>]`: a tier namespaces can be put in.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierSection {
    /// Namespace-wide: all its apps together.
    pub requests_per_second: u32,
    pub burst: u32,
    pub concurrency: u32,
    /// The most one app's spec.quotas may ask; deploys asking more are refused.
    pub max_app_requests_per_second: Option<u32>,
    pub max_app_burst: Option<u32>,
    pub max_app_concurrency: Option<u32>,
}

/// `[namespaces]`: the tiers and policy settings of namespaces.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NamespacesSection {
    /// The tier of namespaces not listed in `tiers`; none means no ceiling.
    pub default_tier: Option<String>,
    /// Namespace → tier name.
    pub tiers: BTreeMap<String, String>,
    /// The longest `spec.ttlDays` an app may ask (90 when unset).
    pub max_ttl_days: Option<u32>,
    /// Hosts (or `*.domain`) every namespace's apps may call without approval.
    pub allowed_egress: Vec<String>,
    /// Runtimes apps may use; every supported one when unset.
    pub approved_runtimes: Option<Vec<String>>,
    /// Per namespace: its own maximum TTL, runtimes, and hosts added to `allowed_egress`.
    pub settings: BTreeMap<String, NamespaceSection>,
}

/// `[namespaces.settings.<namespace>]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NamespaceSection {
    pub max_ttl_days: Option<u32>,
    pub allowed_egress: Vec<String>,
    pub approved_runtimes: Option<Vec<String>>,
}

impl NamespacesSection {
    /// The namespaces' tiers and policy settings, with `tiers` the `[tiers.*]` sections; an
    /// unknown tier name is a problem. Approvers, budgets and internal ranges are added by the
    /// sections that hold them.
    pub fn build(&self, tiers: &BTreeMap<String, TierSection>) -> Result<Namespaces, Vec<String>> {
        let mut problems = Vec::new();
        let mut tier = |name: &str, key: &str| -> Option<Tier> {
            let Some(section) = tiers.get(name) else {
                let known: Vec<&str> = tiers.keys().map(String::as_str).collect();
                problems.push(format!("{key}: there is no [tiers.{name}] (tiers: {})", known.join(", ")));
                return None;
            };
            Some(Tier {
                name: name.to_owned(),
                ceiling: Admission {
                    requests_per_second: section.requests_per_second.max(1),
                    burst: section.burst.max(1),
                    concurrency: section.concurrency.max(1),
                },
                max_app_requests_per_second: section.max_app_requests_per_second,
                max_app_burst: section.max_app_burst,
                max_app_concurrency: section.max_app_concurrency,
            })
        };
        let default = NamespaceSettings {
            tier: self.default_tier.as_deref().and_then(|name| tier(name, "namespaces.default_tier")),
            max_ttl_days: self.max_ttl_days.unwrap_or(DEFAULT_MAX_TTL_DAYS),
            allowed_egress: self.allowed_egress.clone(),
            approved_runtimes: self.approved_runtimes.clone(),
            ..NamespaceSettings::default()
        };
        let mut namespaces = Namespaces { default, named: BTreeMap::new() };
        for (namespace, name) in &self.tiers {
            let tier = tier(name, &format!("namespaces.tiers.{namespace}"));
            namespaces.entry(namespace).tier = tier;
        }
        for (namespace, section) in &self.settings {
            let default_runtimes = namespaces.default.approved_runtimes.clone();
            let entry = namespaces.entry(namespace);
            entry.max_ttl_days = section.max_ttl_days.unwrap_or(entry.max_ttl_days);
            entry.allowed_egress.extend(section.allowed_egress.iter().cloned());
            entry.approved_runtimes = section.approved_runtimes.clone().or(default_runtimes);
        }
        let all = namespaces.named.iter().map(|(name, settings)| (name.as_str(), settings));
        for (namespace, settings) in all.chain([("(default)", &namespaces.default)]) {
            if settings.max_ttl_days == 0 {
                problems.push(format!("namespaces: the maximum TTL of {namespace} is 0 days; give at least 1"));
            }
        }
        match problems.is_empty() {
            true => Ok(namespaces),
            false => Err(problems),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_get_their_tier_and_settings_over_the_default() {
        let tiers: BTreeMap<String, TierSection> = [(
            "gold".to_owned(),
            TierSection {
                requests_per_second: 10,
                burst: 20,
                concurrency: 5,
                max_app_requests_per_second: None,
                max_app_burst: None,
                max_app_concurrency: None,
            },
        )]
        .into();
        let section = NamespacesSection {
            default_tier: Some("gold".into()),
            allowed_egress: vec!["api.example.com".into()],
            settings: [(
                "growth".to_owned(),
                NamespaceSection {
                    max_ttl_days: Some(30),
                    allowed_egress: vec!["maps.example.com".into()],
                    approved_runtimes: None,
                },
            )]
            .into(),
            ..NamespacesSection::default()
        };
        let namespaces = section.build(&tiers).unwrap();
        let growth = namespaces.get("growth");
        assert_eq!(growth.tier.as_ref().map(|tier| tier.name.as_str()), Some("gold"));
        assert_eq!((growth.max_ttl_days, growth.allowed_egress.len()), (30, 2));
        assert_eq!(namespaces.get("other").max_ttl_days, 90);

        let unknown = NamespacesSection {
            default_tier: Some("platinum".into()),
            tiers: [("growth".to_owned(), "silver".to_owned())].into(),
            ..NamespacesSection::default()
        };
        let problems = unknown.build(&tiers).unwrap_err();
        assert_eq!(problems.len(), 2, "{problems:#?}");
        assert!(problems[0].starts_with("namespaces.default_tier: there is no [tiers.platinum] (tiers: gold)"));
    }

    #[test]
    fn a_zero_limit_is_named() {
        assert!(LimitsSection::default().validate().is_empty());
        let limits = LimitsSection { memory_mib: 0, burst: 0, ..LimitsSection::default() };
        assert_eq!(
            limits.validate(),
            [
                "limits.memory_mib is 0; every app would fail: give a number above 0",
                "limits.burst is 0; every app would fail: give a number above 0"
            ]
        );
    }
}
