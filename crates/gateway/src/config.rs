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
    /// Session cookies without `Secure`, for plain HTTP on a name browsers do not treat as
    /// local: sessions then travel in clear. Never needed with HTTPS or on `localhost`.
    pub insecure_cookies: bool,
    /// Serve apps under `/apps/<ns>/<app>/` on the platform's host too. Turn it off when the
    /// console has a domain of its own, so that no app shares the console's origin.
    pub path_routes: bool,
}

impl Default for GatewaySection {
    fn default() -> GatewaySection {
        GatewaySection {
            apps_domain: "localhost".to_owned(),
            request_timeout_secs: 60,
            max_in_flight: 10_000,
            max_app_body_bytes: 10 * 1024 * 1024,
            blob_cache_mib: 64,
            insecure_cookies: false,
            path_routes: true,
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
    pub fn build(&self, public_url: String, max_request_body_bytes: usize) -> Result<GatewayConfig, String> {
        Ok(GatewayConfig {
            apps_domain: self.apps_domain.clone(),
            request_timeout: Duration::from_secs(self.request_timeout_secs),
            max_request_body_bytes,
            max_app_body_bytes: self.max_app_body_bytes,
            max_in_flight: self.max_in_flight,
            secure_cookies: self.secure_cookies(&public_url)?,
            path_routes: self.path_routes,
            public_url,
        })
    }

    /// Whether session cookies are `Secure` (and `__Host-`): always over HTTPS, and over plain
    /// HTTP where browsers treat the hosts as secure (`localhost`, `*.localhost`, loopback
    /// addresses). Elsewhere plain HTTP needs `insecure_cookies = true`.
    pub fn secure_cookies(&self, public_url: &str) -> Result<bool, String> {
        let Some(rest) = public_url.strip_prefix("http://") else {
            return Ok(true);
        };
        let authority = rest.split('/').next().unwrap_or_default();
        let host = match authority.strip_prefix('[') {
            Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
            None => authority.rsplit_once(':').map_or(authority, |(host, _)| host),
        }
        .to_ascii_lowercase();
        let local = |name: &str| {
            name == "localhost" || name.ends_with(".localhost") || name == "::1" || name.starts_with("127.")
        };
        match (local(&host) && local(&self.apps_domain), self.insecure_cookies) {
            (true, _) => Ok(true),
            (false, true) => Ok(false),
            (false, false) => Err(format!(
                "{public_url} (apps under {}) is plain HTTP on names browsers do not treat as secure, so they would refuse its session cookies: serve it over HTTPS, or set [gateway] insecure_cookies = true (sessions then travel in clear)",
                self.apps_domain
            )),
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
    fn cookies_are_secure_unless_plain_http_on_a_public_name_is_asked_for() {
        let section = GatewaySection::default();
        assert_eq!(section.secure_cookies("https://terrarium.example.com"), Ok(true));
        assert_eq!(section.secure_cookies("http://127.0.0.1:8080"), Ok(true));
        assert_eq!(section.secure_cookies("http://localhost:8080/"), Ok(true));
        assert_eq!(section.secure_cookies("http://[::1]:8080"), Ok(true));
        assert!(section.secure_cookies("http://terrarium.internal:8080").unwrap_err().contains("insecure_cookies"));
        let apps_elsewhere = GatewaySection { apps_domain: "apps.internal".into(), ..GatewaySection::default() };
        assert!(apps_elsewhere.secure_cookies("http://127.0.0.1:8080").is_err());
        let insecure = GatewaySection { insecure_cookies: true, ..GatewaySection::default() };
        assert_eq!(insecure.secure_cookies("http://terrarium.internal:8080"), Ok(false));
    }

    #[test]
    fn the_apps_domain_must_be_a_domain() {
        assert!(GatewaySection::default().validate().is_empty());
        for bad in ["", "Apps.Example.com", "apps..example.com", "-x.example.com", "apps.example.com:8080"] {
            let section = GatewaySection { apps_domain: bad.into(), ..GatewaySection::default() };
            assert_eq!(section.validate().len(), 1, "{bad}");
        }
    }
}
