//! `[limits]` and `[access]` in `terrarium.toml`: what an app gets when its manifest is silent.

use bundle::BundleLimits;
use deployment::Visibility;
use serde::Deserialize;

use crate::PlatformDefaults;

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

#[cfg(test)]
mod tests {
    use super::*;

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
