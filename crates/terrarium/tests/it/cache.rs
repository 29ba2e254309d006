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
               if (path === '/spoof') headers['x-cache'] = 'HIT';\n\
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

    // An app saying `x-cache: HIT` itself is not priced as a hit: another app, never cached.
    for _ in 0..3 {
        let response = client().post(server.app_url("other", "menu", "/spoof")).send().unwrap();
        assert_eq!(response.status(), 200);
    }

    // Hits, misses and what was served from the cache are counted per app.
    let metrics =
        client().get(format!("{}/metrics", server.url)).bearer_auth(&server.token).send().unwrap().text().unwrap();
    let counted = |line: &str| {
        metrics
            .lines()
            .find(|found| found.starts_with(line))
            .and_then(|found| found.rsplit(' ').next()?.parse::<u64>().ok())
    };
    assert!(
        counted("terrarium_app_cache_responses_total{namespace=\"team\",app=\"menu\",result=\"hit\"}") >= Some(2),
        "{metrics}"
    );
    assert!(
        counted("terrarium_app_cache_responses_total{namespace=\"team\",app=\"menu\",result=\"bypass\"}") >= Some(6),
        "{metrics}"
    );
    assert!(
        counted("terrarium_app_cache_bytes_served_total{namespace=\"team\",app=\"menu\"}") >= Some(26),
        "{metrics}"
    );

    // And in the usage roll-ups and the chargeback, which prices hits apart and says what they saved.
    server.run_task("metering.flush");
    let usage: serde_json::Value =
        serde_json::from_str(&server.cli_ok(&["usage", "--app", "team/menu", "-o", "json"])).unwrap();
    let entry = &usage[0];
    assert!(entry["cache_hits"].as_u64() >= Some(2), "{usage}");
    assert!(entry["cache_misses"].as_u64() >= Some(2), "{usage}");
    assert!(entry["cache_bytes_served"].as_u64() >= Some(26), "{usage}");
    let other: serde_json::Value =
        serde_json::from_str(&server.cli_ok(&["usage", "--app", "other/menu", "-o", "json"])).unwrap();
    assert_eq!(other[0]["requests"].as_u64(), Some(4), "{other}");
    assert_eq!(other[0]["cache_hits"].as_u64(), Some(0), "{other}");
    let table = server.cli_ok(&["usage", "--app", "team/menu"]);
    assert!(table.contains("CACHE HIT/MISS"), "{table}");
    let rows: serde_json::Value =
        serde_json::from_str(&server.cli_ok(&["usage", "--chargeback", "namespace", "-o", "json"])).unwrap();
    let team = rows.as_array().unwrap().iter().find(|row| row["key"] == "team").unwrap();
    assert!(team["cache_hits"].as_u64() >= Some(2), "{rows}");
    assert!(team["saved_by_cache"].as_f64() > Some(0.0), "{rows}");
    let csv = server.cli_ok(&["usage", "--chargeback", "namespace", "--csv"]);
    assert!(
        csv.starts_with("namespace,apps,requests,cpu_seconds,bytes_out,cost,currency,cache_hits,saved_by_cache\n"),
        "{csv}"
    );

    // A purge by tag from the CLI (audited as cache.purge): the next request runs the code.
    let said = server.cli_ok(&["cache", "purge", "team/menu", "--tag", "menu"]);
    assert!(said.contains("Purged cached responses tagged menu of team/menu"), "{said}");
    let (label, _, _) = fetch(&server, "team", "menu", "/public");
    assert_eq!(label, "MISS");
    let said = server.cli(&["cache", "purge", "team/menu", "--prefix", "public"]);
    assert!(!said.status.success());
    assert!(String::from_utf8_lossy(&said.stderr).contains("starts with /"), "{said:?}");
    let audit = server.cli_ok(&["audit", "--app", "team/menu", "--action", "cache.purge"]);
    assert!(audit.contains("cache.purge"), "{audit}");

    // A deploy purges at once: the new code answers.
    write_app(&folders.path().join("a"), "team", "menu", "v2");
    server.deploy(&folders.path().join("a"));
    let (label, body, _) = fetch(&server, "team", "menu", "/public");
    assert_eq!(label, "MISS");
    assert!(body.starts_with("team/menu v2 /public run "), "{body}");
    let (label, _, _) = fetch(&server, "team", "menu", "/public");
    assert_eq!(label, "HIT");
}

/// An app using the Workers Cache API as Workers code does: `caches.default` and `caches.open`.
fn write_cache_api_app(dir: &Path, namespace: &str, name: &str) {
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
            r#"const item = "https://data.example/item?id=1";
export default {{
  async fetch(request) {{
    const url = new URL(request.url);
    const cache = url.searchParams.has("named") ? await caches.open("mine") : caches.default;
    switch (url.pathname) {{
      case "/put":
        await cache.put(item, new Response("kept by {namespace}/{name}", {{ headers: {{ "cache-control": "max-age=60", etag: '"e1"' }} }}));
        return new Response("ok");
      case "/get": {{
        const found = await cache.match(new Request(item));
        return new Response(found ? `${{await found.text()}} ${{found.headers.get("cf-cache-status")}}` : "miss");
      }}
      case "/conditional": {{
        const found = await cache.match(new Request(item, {{ headers: {{ "if-none-match": '"e1"' }} }}));
        return new Response(String(found && found.status));
      }}
      case "/delete":
        return new Response(String(await cache.delete(item)));
      case "/refused": {{
        const messages = [];
        for (const attempt of [
          () => cache.put(new Request(item, {{ method: "POST" }}), new Response("x")),
          () => cache.put(item, new Response("x", {{ status: 206 }})),
          () => cache.put(item, new Response("x", {{ headers: {{ vary: "*" }} }})),
        ]) {{
          try {{ await attempt(); messages.push("stored"); }} catch (error) {{ messages.push(error.message); }}
        }}
        const post = await cache.match(new Request(item, {{ method: "POST" }}));
        messages.push(String(post));
        return new Response(messages.join("\n"));
      }}
    }}
    return new Response("?", {{ status: 404 }});
  }},
}};
"#
        ),
    )
    .unwrap();
}

#[test]
fn workers_cache_api_code_runs_unmodified_and_sees_only_its_own_entries() {
    let server = Server::start("");
    let folders = tempfile::tempdir().unwrap();
    for (folder, namespace, name) in [("a", "team", "menu"), ("b", "team", "board"), ("c", "other", "menu")] {
        write_cache_api_app(&folders.path().join(folder), namespace, name);
        server.deploy(&folders.path().join(folder));
    }
    let text = |namespace: &str, app: &str, path: &str| server.get(namespace, app, path).text().unwrap();

    assert_eq!(text("team", "menu", "/get"), "miss");
    assert_eq!(text("team", "menu", "/put"), "ok");
    assert_eq!(text("team", "menu", "/get"), "kept by team/menu HIT");
    assert_eq!(text("team", "menu", "/conditional"), "304");
    // The same URL in another app, another namespace and another cache of its own: nothing.
    assert_eq!(text("team", "board", "/get"), "miss");
    assert_eq!(text("other", "menu", "/get"), "miss");
    assert_eq!(text("team", "menu", "/get?named"), "miss");

    // Workers' refusals, word for word.
    let refused = text("team", "menu", "/refused");
    assert_eq!(
        refused,
        "Cannot cache response to non-GET request.\nCannot cache response to a range request (206 Partial Content).\n\
         Cannot cache response with 'Vary: *' header.\nundefined"
    );

    assert_eq!(text("team", "menu", "/delete"), "true");
    assert_eq!(text("team", "menu", "/get"), "miss");
    assert_eq!(text("team", "menu", "/delete"), "false");

    // A deploy purges the app's entries.
    assert_eq!(text("team", "board", "/put"), "ok");
    assert_eq!(text("team", "board", "/get"), "kept by team/board HIT");
    // (a new revision: the same bundle again deploys nothing)
    let code = folders.path().join("b/functions/index.js");
    let changed = std::fs::read_to_string(&code).unwrap() + "// v2\n";
    std::fs::write(&code, changed).unwrap();
    server.deploy(&folders.path().join("b"));
    assert_eq!(text("team", "board", "/get"), "miss");
}

/// With `[cache] disk_path`, what memory has no room for is kept on disk and served from there;
/// a purge reaches it.
#[test]
fn responses_memory_cannot_hold_are_served_from_the_disk_tier() {
    let data_dir = tempfile::tempdir().unwrap().keep();
    let config = "[cache]\nmax_bytes = 65536\nmax_entry_bytes = 16384\nnamespace_share_percent = 100\ndisk_path = \"response-cache\"\ndisk_max_bytes = 10485760\n";
    let server = Server::start_in(config, &data_dir, &[]);
    let folder = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(folder.path().join("functions")).unwrap();
    std::fs::write(
        folder.path().join("terrarium.yaml"),
        "apiVersion: terrarium.dev/v1\nkind: MicroApp\nmetadata:\n  name: pages\n  namespace: team\nspec:\n  owner: user:admin\n  access:\n    visibility: public\n  runtime: function\n  functions:\n    - route: /*\n      entry: functions/index.js\n",
    )
    .unwrap();
    // 8 KB pages: 30 of them are nearly four times what memory holds.
    std::fs::write(
        folder.path().join("functions/index.js"),
        "export default { fetch(request) {\n\
           const path = new URL(request.url).pathname;\n\
           return new Response(path.padEnd(8000, '.'), { headers: { 'cache-control': 'public, s-maxage=300' } });\n\
         } };\n",
    )
    .unwrap();
    server.deploy(folder.path());
    // The tier's directory is the server's user's alone.
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(data_dir.join("response-cache")).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o700);
    let page = |index: usize| format!("/page/{index}");
    for index in 0..30 {
        let (label, body, _) = fetch(&server, "team", "pages", &page(index));
        assert_eq!((label.as_str(), body.len()), ("MISS", 8000), "{}", page(index));
    }
    // Every page is served again without running the app: most of them from disk.
    for index in 0..30 {
        let (label, body, _) = fetch(&server, "team", "pages", &page(index));
        assert_eq!(label, "HIT", "{}", page(index));
        assert_eq!(body, format!("{:.<8000}", page(index)));
    }
    // A purge of the app reaches the disk tier: every page runs again.
    server.cli_ok(&["cache", "purge", "team/pages"]);
    for index in 0..30 {
        let (label, _, _) = fetch(&server, "team", "pages", &page(index));
        assert_eq!(label, "MISS", "{}", page(index));
    }
}
