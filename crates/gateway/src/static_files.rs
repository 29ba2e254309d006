//! The dispatch phase for static front ends: files from the content-addressed blob store.

use axum::body::Body;
use http::{HeaderMap, Method, Response, StatusCode, header};

use crate::pages;
use crate::routing::LiveApp;
use crate::stack::GatewayState;

/// Serves `path` (decoded, inside the app) from the app's static site.
pub async fn serve(
    state: &GatewayState,
    live: &LiveApp,
    path: &str,
    method: &Method,
    headers: &HeaderMap,
    request_id: &str,
) -> Response<Body> {
    let deployment = &live.deployment;
    let Some(site) = &deployment.static_site else {
        return pages::not_found_in_app(&deployment.app, path, request_id);
    };
    if method != Method::GET && method != Method::HEAD {
        return pages::method_not_allowed();
    }
    let Some(bundle_path) = lookup(deployment, &site.dir, path, site.spa, headers) else {
        return pages::not_found_in_app(&deployment.app, path, request_id);
    };
    let file = &deployment.files[&bundle_path];
    let etag = format!("\"{}\"", file.digest.trim_start_matches("sha256:"));
    let content_type = content_type(&bundle_path);
    // HTML is revalidated on every load so a new revision shows at once; assets for a while.
    let cache_control = match content_type.starts_with("text/html") {
        true => "no-cache",
        false => "public, max-age=300, must-revalidate",
    };
    let base = Response::builder()
        .header(header::ETAG, &etag)
        .header(header::CACHE_CONTROL, cache_control)
        .header("x-request-id", request_id);
    if if_none_match(headers, &etag) {
        return base.status(StatusCode::NOT_MODIFIED).body(Body::empty()).expect("valid headers");
    }
    let base = base.header(header::CONTENT_TYPE, content_type).header("x-content-type-options", "nosniff");
    if method == Method::HEAD {
        return base.header(header::CONTENT_LENGTH, file.size).body(Body::empty()).expect("valid headers");
    }
    match state.blobs.read(&file.digest).await {
        Ok(bytes) => base.body(Body::from(bytes)).expect("valid headers"),
        Err(error) => {
            tracing::error!(
                namespace = %deployment.app.namespace,
                app = %deployment.app.name,
                request_id,
                digest = %file.digest,
                %error,
                "static file blob unreadable"
            );
            pages::internal_error_with_id(request_id)
        }
    }
}

/// The bundle path answering `path`: the file itself, the folder's `index.html`, or with
/// `spa` the root `index.html` for page requests (not for missing assets like `/app.js`).
fn lookup(
    deployment: &deployment::Deployment,
    dir: &str,
    path: &str,
    spa: bool,
    headers: &HeaderMap,
) -> Option<String> {
    let relative = path.trim_start_matches('/');
    if relative.split('/').any(|segment| segment == "..") {
        return None;
    }
    let join = |inner: &str| match (dir.is_empty(), inner.is_empty()) {
        (true, _) => inner.to_owned(),
        (false, true) => dir.to_owned(),
        (false, false) => format!("{dir}/{inner}"),
    };
    let exact = join(relative);
    if !relative.is_empty() && !relative.ends_with('/') && deployment.files.contains_key(&exact) {
        return Some(exact);
    }
    let index = join(&format!(
        "{}index.html",
        if relative.is_empty() || relative.ends_with('/') { relative.to_owned() } else { format!("{relative}/") }
    ));
    if deployment.files.contains_key(&index) {
        return Some(index);
    }
    let wants_page = headers
        .get(header::ACCEPT)
        .and_then(|accept| accept.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"))
        || !relative.rsplit('/').next().unwrap_or_default().contains('.');
    let root_index = join("index.html");
    (spa && wants_page && deployment.files.contains_key(&root_index)).then_some(root_index)
}

fn content_type(path: &str) -> String {
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    match mime.type_() == mime_guess::mime::TEXT || mime.subtype() == "javascript" || mime.subtype() == "json" {
        true => format!("{mime}; charset=utf-8"),
        false => mime.to_string(),
    }
}

fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|candidate| candidate.trim().trim_start_matches("W/"))
        .any(|candidate| candidate == etag || candidate == "*")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use deployment::{AppKey, BundleFile, Deployment, FunctionLimits, StaticSite};

    use super::*;

    fn deployment(files: &[&str]) -> Deployment {
        Deployment {
            app: AppKey::new("demo", "site"),
            revision: 1,
            bundle_digest: "sha256:0".into(),
            static_site: Some(StaticSite { dir: "public".into(), spa: true }),
            files: files
                .iter()
                .map(|path| (path.to_string(), BundleFile { digest: "sha256:ab".into(), size: 1 }))
                .collect::<BTreeMap<_, _>>(),
            functions: vec![],
            vars: BTreeMap::new(),
            allowed_egress: vec![],
            admission: deployment::Admission { requests_per_second: 1000, burst: 1000, concurrency: 100 },
            secrets: None,
            ttl_days: None,
            monthly_budget: None,
            monthly_requests: None,
            slo: None,
            kv_binding: None,
            kv_max_mib: None,
            ai_models: Vec::new(),
            vectors: None,
            seal_data: false,
            data_class: None,
            sql: None,
            access: deployment::AppAccess {
                owner: "user:tester".into(),
                visibility: deployment::Visibility::Public,
                groups: vec![],
            },
            limits: FunctionLimits {
                cpu_ms_per_request: 1,
                memory_bytes: 1,
                stack_bytes: 1,
                wall_timeout_ms: 1,
                max_response_bytes: 1,
                max_outbound_requests: 1,
                max_outbound_bytes: 1 << 20,
            },
        }
    }

    #[test]
    fn lookup_rules() {
        let d = deployment(&["public/index.html", "public/app.js", "public/docs/index.html", "terrarium.yaml"]);
        let html = HeaderMap::new();
        let check = |path: &str, spa: bool, expect: Option<&str>| {
            assert_eq!(lookup(&d, "public", path, spa, &html).as_deref(), expect, "{path} spa={spa}");
        };
        check("/", false, Some("public/index.html"));
        check("/app.js", false, Some("public/app.js"));
        check("/docs", false, Some("public/docs/index.html"));
        check("/docs/", false, Some("public/docs/index.html"));
        check("/missing", false, None);
        check("/missing", true, Some("public/index.html"));
        check("/deep/link/page", true, Some("public/index.html"));
        check("/missing.js", true, None);
        // Files outside the static folder are never served.
        check("/../terrarium.yaml", true, None);
        check("/terrarium.yaml", false, None);
    }

    #[test]
    fn etag_matching() {
        let mut headers = HeaderMap::new();
        headers.insert(header::IF_NONE_MATCH, "\"x\", W/\"abc\"".parse().unwrap());
        assert!(if_none_match(&headers, "\"abc\""));
        assert!(!if_none_match(&headers, "\"abd\""));
    }

    #[test]
    fn content_types() {
        assert_eq!(content_type("a/index.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("app.js"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("logo.png"), "image/png");
        assert_eq!(content_type("data.bin"), "application/octet-stream");
    }
}
