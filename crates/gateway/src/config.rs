//! `[gateway]` in `terrarium.toml`.

use std::time::Duration;

use serde::Deserialize;

use crate::GatewayConfig;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewaySection {
    /// Apps are also served at `<app>.<namespace>.<apps_domain>`.
    pub apps_domain: String,
    pub request_timeout_secs: u64,
    pub max_in_flight: usize,
    pub max_app_body_bytes: usize,
    /// Memory for static files served often (files up to 1 MiB each).
    pub blob_cache_mib: u64,
}

impl Default for GatewaySection {
    fn default() -> GatewaySection {
        GatewaySection {
            apps_domain: "localhost".to_owned(),
            request_timeout_secs: 60,
            max_in_flight: 10_000,
            max_app_body_bytes: 10 * 1024 * 1024,
            blob_cache_mib: 64,
        }
    }
}

impl GatewaySection {
    /// Every problem of the section, each naming its key.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let domain = &self.apps_domain;
        let label_ok = |label: &str| {
            !label.is_empty()
                && label.len() <= 63
                && label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        };
        if domain.is_empty() || !domain.split('.').all(label_ok) {
            problems
                .push(format!("gateway.apps_domain: {domain:?} is not a lowercase domain name like apps.example.com"));
        }
        if self.request_timeout_secs == 0 {
            problems.push("gateway.request_timeout_secs is 0; give a number of seconds".to_owned());
        }
        if self.max_in_flight == 0 {
            problems.push("gateway.max_in_flight is 0; give at least 1".to_owned());
        }
        problems
    }

    /// The gateway's settings. `public_url` is where the sign-in page is; uploads to the
    /// control API may be up to `max_request_body_bytes`.
    pub fn build(&self, public_url: String, max_request_body_bytes: usize) -> GatewayConfig {
        GatewayConfig {
            apps_domain: self.apps_domain.clone(),
            request_timeout: Duration::from_secs(self.request_timeout_secs),
            max_request_body_bytes,
            max_app_body_bytes: self.max_app_body_bytes,
            max_in_flight: self.max_in_flight,
            secure_cookies: public_url.starts_with("https://"),
            public_url,
        }
    }

    pub fn blob_cache_bytes(&self) -> u64 {
        self.blob_cache_mib * 1024 * 1024
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_apps_domain_must_be_a_domain() {
        assert!(GatewaySection::default().validate().is_empty());
        for bad in ["", "Apps.Example.com", "apps..example.com", "-x.example.com", "apps.example.com:8080"] {
            let section = GatewaySection { apps_domain: bad.into(), ..GatewaySection::default() };
            assert_eq!(section.validate().len(), 1, "{bad}");
        }
    }
}
