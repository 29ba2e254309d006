//! The gateway's response cache through deployed apps: what is stored and served again, what
//! never is, that entries stay with their app and namespace, and that a deploy purges them.

use std::path::Path;

use crate::support::{Server, client};

/// A function app: `/public` is marked shareable, `/private` and `/cookie` are not; every body
/// says which app answered and how many times its code ran.
fn write_app(dir: &Path, namespace: &str, name: &str, version: &str) {
    std::fs::create_dir_all(dir.join("functions")).unwrap();
    std::fs::write(
        dir.join("terrarium.yaml"),
        format!(
            "apiVersion: terrarium.dev/v1\nkind: MicroApp\nmetadata:\n  name: {name}\n  namespace: {namespace}\nspec:\n  owner: user:admin\n  access:\n    visibility: public\n  runtime: function\n  functions:\n    - route: /*\n      entry: functions/index.js\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("functions/index.js"),
        format!(
            "let runs = 0;\n\
             export default {{ fetch(request) {{\n\
               runs += 1;\n\
               const path = new URL(request.url).pathname;\n\
               const body = `{namespace}/{name} {version} ${{path}} run ${{runs}}`;\n\
               const headers = {{ 'content-type': 'text/plain' }};\n\
               if (path === '/public') {{ headers['cache-control'] = 'public, s-maxage=60'; headers.etag = '\"{version}\"'; headers['cache-tag'] = 'menu'; }}\n\
               if (path === '/private') headers['cache-control'] = 'private, max-age=60';\n\
               if (path === '/cookie') {{ headers['cache-control'] = 'public, max-age=60'; headers['set-cookie'] = 'a=b'; }}\n\
               if (path === '/denied') return new Response('no', {{ status: 403, headers: {{ 'cache-control': 'public, max-age=60' }} }});\n\
               return new Response(body, {{ headers }});\n\
             }} }};\n"
        ),
    )
    .unwrap();
}

fn fetch(server: &Server, namespace: &str, app: &str, path: &str) -> (String, String, String) {
    let response = server.get(namespace, app, path);
    let cache = response.headers().get("x-cache").map(|value| value.to_str().unwrap().to_owned()).unwrap_or_default();
    let age = response.headers().get("age").map(|value| value.to_str().unwrap().to_owned()).unwrap_or_default();
    (cache, response.text().unwrap(), age)
}

#[test]
fn a_public_response_is_served_again_and_stays_with_its_app() {
    let server = Server::start("");
    let folders = tempfile::tempdir().unwrap();
    for (folder, namespace, name) in [("a", "team", "menu"), ("b", "team", "board"), ("c", "other", "menu")] {
        write_app(&folders.path().join(folder), namespace, name, "v1");
        server.deploy(&folders.path().join(folder));
    }

    // Stored on the first request, served on the second without running the code.
    let (first, body, _) = fetch(&server, "team", "menu", "/public");
    assert_eq!((first.as_str(), body.as_str()), ("MISS", "team/menu v1 /public run 1"));
    let (second, body, age) = fetch(&server, "team", "menu", "/public");
    assert_eq!((second.as_str(), body.as_str()), ("HIT", "team/menu v1 /public run 1"));
    assert!(age.parse::<u64>().is_ok(), "an Age header: {age:?}");

    // The same path in another app of the namespace, and in another namespace: their own.
    for (namespace, name) in [("team", "board"), ("other", "menu")] {
        let (label, body, _) = fetch(&server, namespace, name, "/public");
        assert_eq!(label, "MISS");
        assert_eq!(body, format!("{namespace}/{name} v1 /public run 1"));
    }

    // Another query is another entry; odd spellings of the path never reach another app's.
    let (label, body, _) = fetch(&server, "team", "menu", "/public?x=1");
    assert_eq!(label, "MISS");
    assert!(body.starts_with("team/menu v1 /public run "), "{body}");
    for path in ["//public", "/%70ublic", "/x/../public", "/public%2f", "/./public"] {
        let response = client()
            .get(format!("{}/apps/team/board{path}", server.url))
            .header("x-forwarded-host", "menu.team.localhost")
            .send()
            .unwrap();
        let body = response.text().unwrap();
        assert!(!body.starts_with("team/menu"), "{path}: {body}");
    }

    // Conditional and HEAD requests are answered from the stored copy.
    let response =
        client().get(server.app_url("team", "menu", "/public")).header("if-none-match", "\"v1\"").send().unwrap();
    assert_eq!(response.status(), 304);
    let response = client().head(server.app_url("team", "menu", "/public")).send().unwrap();
    assert_eq!(response.headers()["x-cache"], "HIT");
    assert_eq!(response.headers()["content-length"], "team/menu v1 /public run 1".len().to_string().as_str());

    // What is private, sets a cookie or refuses is never stored.
    for path in ["/private", "/cookie", "/denied"] {
        let _ = fetch(&server, "team", "menu", path);
        let (label, _, _) = fetch(&server, "team", "menu", path);
        assert_eq!(label, "BYPASS", "{path}");
    }

    // A deploy purges at once: the new code answers.
    write_app(&folders.path().join("a"), "team", "menu", "v2");
    server.deploy(&folders.path().join("a"));
    let (label, body, _) = fetch(&server, "team", "menu", "/public");
    assert_eq!(label, "MISS");
    assert!(body.starts_with("team/menu v2 /public run "), "{body}");
    let (label, _, _) = fetch(&server, "team", "menu", "/public");
    assert_eq!(label, "HIT");
}
