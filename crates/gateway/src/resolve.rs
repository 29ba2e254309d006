//! The resolve phase: which app does a request address, and what is the path inside it.

use deployment::AppKey;

/// An app and the path inside it that a request addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppAddress {
    pub app: AppKey,
    /// The path inside the app, starting with `/`, still percent-encoded.
    pub path: String,
    /// Where the app is mounted on this host: `/apps/<ns>/<name>` for path routing, empty for host routing.
    pub mount: String,
}

/// `<app>.<namespace>.<apps-domain>[:port]` → the app, for host-based routing.
pub fn resolve_host(host: &str, apps_domain: &str) -> Option<AppKey> {
    let host = strip_port(host).trim_end_matches('.').to_ascii_lowercase();
    let labels = host.strip_suffix(apps_domain)?.strip_suffix('.')?;
    let (name, namespace) = labels.split_once('.')?;
    if namespace.contains('.') || !is_label(name) || !is_label(namespace) {
        return None;
    }
    Some(AppKey::new(namespace, name))
}

/// `/apps/<namespace>/<name>/rest` → the app and `/rest`, for path-based routing.
pub fn resolve_path(path: &str) -> Option<AppAddress> {
    let rest = path.strip_prefix("/apps/")?;
    let mut parts = rest.splitn(3, '/');
    let namespace = parts.next()?;
    let name = parts.next()?;
    if !is_label(namespace) || !is_label(name) {
        return None;
    }
    let inner = parts.next().map(|inner| format!("/{inner}")).unwrap_or_else(|| "/".to_owned());
    Some(AppAddress { app: AppKey::new(namespace, name), path: inner, mount: format!("/apps/{namespace}/{name}") })
}

fn strip_port(host: &str) -> &str {
    if let Some(end) = host.find(']') {
        // An IPv6 literal (`[::1]:8080`) never names an app; keep it whole.
        return &host[..=end];
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

fn is_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 63
        && label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_routing() {
        let check = |host: &str, expect: Option<(&str, &str)>| {
            assert_eq!(resolve_host(host, "localhost"), expect.map(|(ns, name)| AppKey::new(ns, name)), "{host}");
        };
        check("where2eat.demo.localhost:8080", Some(("demo", "where2eat")));
        check("where2eat.demo.localhost", Some(("demo", "where2eat")));
        check("Where2Eat.Demo.LOCALHOST.", Some(("demo", "where2eat")));
        check("localhost:8080", None);
        check("demo.localhost", None);
        check("a.b.demo.localhost", None);
        check("where2eat.demo.evil-localhost", None);
        check("127.0.0.1:8080", None);
        check("_x.demo.localhost", None);
        assert_eq!(
            resolve_host("shop.growth.apps.example.com", "apps.example.com"),
            Some(AppKey::new("growth", "shop"))
        );
    }

    #[test]
    fn path_routing() {
        let address = resolve_path("/apps/demo/where2eat/api/pick").unwrap();
        assert_eq!(address.app, AppKey::new("demo", "where2eat"));
        assert_eq!(address.path, "/api/pick");
        assert_eq!(address.mount, "/apps/demo/where2eat");
        assert_eq!(resolve_path("/apps/demo/where2eat").unwrap().path, "/");
        assert_eq!(resolve_path("/apps/demo/where2eat/").unwrap().path, "/");
        assert_eq!(resolve_path("/apps/demo"), None);
        assert_eq!(resolve_path("/apps/../x/y"), None);
        assert_eq!(resolve_path("/api/v1/apps"), None);
    }
}
