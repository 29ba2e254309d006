//! The gateway: routing by path and host, static files, health, unknown apps.

use crate::support::{Server, client, fixture};

#[test]
fn static_site_serving() {
    let server = Server::start("");
    server.deploy(&fixture("site"));
    let http = client();

    // index.html at the root, with its content type and cache headers.
    let index = server.get("it", "site", "/");
    assert_eq!(index.status(), 200);
    assert_eq!(index.headers()["content-type"], "text/html; charset=utf-8");
    assert_eq!(index.headers()["cache-control"], "no-cache");
    let etag = index.headers()["etag"].to_str().unwrap().to_owned();
    assert!(index.headers().contains_key("x-request-id"));
    assert!(index.text().unwrap().contains("The site"));

    // The mount without a trailing slash redirects, so relative links stay inside the app.
    let bare = http.get(format!("{}/apps/it/site", server.url)).send().unwrap();
    assert_eq!(bare.status(), 308);
    assert_eq!(bare.headers()["location"], "/apps/it/site/");

    // Conditional requests get 304 with no body.
    let again = http.get(server.app_url("it", "site", "/")).header("if-none-match", &etag).send().unwrap();
    assert_eq!(again.status(), 304);
    assert!(again.bytes().unwrap().is_empty());

    let css = server.get("it", "site", "/style.css");
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
    assert_eq!(css.headers()["cache-control"], "public, max-age=300, must-revalidate");
    let js = server.get("it", "site", "/app.js");
    assert_eq!(js.headers()["content-type"], "text/javascript; charset=utf-8");

    // Folders serve their index.html; SPA fallback serves the root page for unknown pages
    // but not for missing assets.
    assert!(server.get("it", "site", "/docs/").text().unwrap().contains("Docs"));
    let deep = server.get("it", "site", "/some/client/route");
    assert_eq!(deep.status(), 200);
    assert!(deep.text().unwrap().contains("The site"));
    assert_eq!(server.get("it", "site", "/missing.js").status(), 404);
    // Files outside the static folder, like the manifest, are never served.
    assert_eq!(server.get("it", "site", "/../terrarium.yaml").status(), 404);
    assert_eq!(server.get("it", "site", "/terrarium.yaml").status(), 404);

    // Compression when the client asks for it.
    for encoding in ["gzip", "br"] {
        let compressed =
            http.get(server.app_url("it", "site", "/")).header("accept-encoding", encoding).send().unwrap();
        assert_eq!(compressed.headers()["content-encoding"], encoding);
    }

    // Writing to a static site is refused.
    let post = http.post(server.app_url("it", "site", "/")).body("x").send().unwrap();
    assert_eq!(post.status(), 405);
}

#[test]
fn host_routing_health_and_unknown_apps() {
    let server = Server::start("");
    server.deploy(&fixture("site"));
    let http = client();

    let by_host = http
        .get(format!("{}/style.css", server.url))
        .header("host", format!("site.it.localhost:{}", server.port))
        .send()
        .unwrap();
    assert_eq!(by_host.status(), 200);
    assert_eq!(by_host.headers()["content-type"], "text/css; charset=utf-8");

    assert_eq!(http.get(format!("{}/healthz", server.url)).send().unwrap().status(), 200);
    assert_eq!(http.get(format!("{}/readyz", server.url)).send().unwrap().status(), 200);

    let unknown = server.get("it", "nope", "/");
    assert_eq!(unknown.status(), 404);
    let page = unknown.text().unwrap();
    assert!(page.contains("No app named <code>nope</code>"), "{page}");
    let unknown_host = http.get(format!("{}/", server.url)).header("host", "nope.it.localhost").send().unwrap();
    assert_eq!(unknown_host.status(), 404);
    assert!(unknown_host.text().unwrap().contains("No app named"));

    // A client-sent request id is replaced: logs cannot be forged from outside.
    let response = http.get(server.app_url("it", "site", "/")).header("x-request-id", "forged").send().unwrap();
    assert_ne!(response.headers()["x-request-id"], "forged");
}
