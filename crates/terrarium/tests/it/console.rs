//! The web console: its walls spoken to over HTTP, and a builder and an operator using it in a
//! real browser (Debian's Chromium driven by playwright-core, `tests/browser/console.mjs`).

use std::process::Command;

use crate::support::{Server, client, fixture, stderr, stdout};

/// The bundled policies, with one egress host every app of a namespace may call: any other
/// host is an elevated ask that waits for an operator.
const CONSOLE_CONFIG: &str = r#"
[policy]
bundled = true

[namespaces]
allowed_egress = ["api.example.com"]

[budgets.namespaces]
team = 10.0
"#;

/// A user with the given grants and the password to sign in with.
fn user(server: &Server, name: &str, grants: &[&str]) -> String {
    let added: serde_json::Value =
        serde_json::from_str(&server.cli_ok(&["users", "add", name, "--output", "json"])).unwrap();
    for grant in grants {
        let (namespace, role) = grant.rsplit_once(':').unwrap();
        server.cli_ok(&["roles", "grant", namespace, &format!("user:{name}"), role]);
    }
    added["password"].as_str().unwrap().to_owned()
}

/// A static app `name` in `namespace`, made with `terrarium init` and deployed by the admin.
fn deploy_static(server: &Server, namespace: &str, name: &str) {
    let folder = tempfile::tempdir().unwrap();
    let dir = folder.path().join(name);
    let dir = dir.to_str().unwrap();
    let init = Command::new(env!("CARGO_BIN_EXE_terrarium"))
        .args(["init", dir, "--template", "static", "--namespace", namespace, "--owner", "user:admin"])
        .output()
        .unwrap();
    assert!(init.status.success(), "{}", stderr(&init));
    server.cli_ok(&["deploy", dir]);
}

/// The session cookie a browser holds after signing in (secure cookies: `__Host-`).
fn session(token: &str) -> String {
    format!("__Host-terrarium_session={token}")
}

/// The form token in a console page.
fn csrf_in(page: &str) -> String {
    let start = page.find("name=\"csrf\" value=\"").expect("the page has a form") + "name=\"csrf\" value=\"".len();
    page[start..start + 64].to_owned()
}

#[test]
fn console_pages_are_walled_off_from_scripts_other_sites_and_other_tenants() {
    let server = Server::start(CONSOLE_CONFIG);
    server.cli_ok(&["namespaces", "create", "team"]);
    server.cli_ok(&["namespaces", "create", "vault"]);
    deploy_static(&server, "vault", "ledger");
    let bea = server.user_token("bea", &["team:builder"]);
    let http = client();
    let get = |path: &str, token: Option<&str>, headers: &[(&str, &str)]| {
        let mut request = http.get(format!("{}{path}", server.url));
        if let Some(token) = token {
            request = request.header("cookie", session(token));
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().unwrap()
    };

    // Not signed in: to the sign-in page, and back after.
    let anonymous = get("/console/new", None, &[]);
    assert_eq!(anonymous.status(), 303);
    assert_eq!(anonymous.headers()["location"], "/auth/login?return_to=%2Fconsole%2Fnew");
    assert_eq!(get("/", None, &[]).headers()["location"], "/auth/login?return_to=%2F");
    let bad_cookie = get("/console", Some("not-a-token"), &[]);
    assert_eq!(bad_cookie.status(), 303);

    // Signed in: the page, with the headers that keep it whole.
    let home = get("/console", Some(&bea), &[("sec-fetch-mode", "navigate"), ("sec-fetch-dest", "document")]);
    assert_eq!(home.status(), 200);
    let headers = home.headers().clone();
    let csp = headers["content-security-policy"].to_str().unwrap();
    for directive in ["default-src 'none'", "script-src 'self'", "frame-ancestors 'none'", "form-action 'self'"] {
        assert!(csp.contains(directive), "{csp}");
    }
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["cross-origin-opener-policy"], "same-origin");
    assert_eq!(headers["cache-control"], "no-store");
    let page = home.text().unwrap();
    assert!(page.contains("My apps") && page.contains("bea"), "{page}");
    assert!(!page.contains("Approvals"), "a builder is not shown operator pages");

    // A script (an app's, on the shared origin) or a frame cannot read a console page.
    for (mode, dest) in [("cors", "empty"), ("no-cors", "empty"), ("navigate", "iframe"), ("same-origin", "empty")] {
        let scripted = get("/console", Some(&bea), &[("sec-fetch-mode", mode), ("sec-fetch-dest", dest)]);
        assert_eq!(scripted.status(), 403, "{mode} {dest}");
    }
    // The stylesheet loads as a stylesheet.
    let css = get("/console/assets/console.css", None, &[("sec-fetch-mode", "no-cors"), ("sec-fetch-dest", "style")]);
    assert_eq!(css.status(), 200);
    assert!(css.headers()["content-type"].to_str().unwrap().starts_with("text/css"));

    // Operator pages and other namespaces: refused by the same services as the API, audited.
    for path in ["/console/approvals", "/console/inventory", "/console/policy", "/console/people", "/console/spend"] {
        let refused = get(path, Some(&bea), &[]);
        assert_eq!(refused.status(), 403, "{path}");
    }
    for path in ["/console/apps/vault/ledger", "/console/apps/vault/ledger/edit", "/console/apps/vault/ledger/request"]
    {
        let refused = get(path, Some(&bea), &[]);
        assert_eq!(refused.status(), 403, "{path}");
        assert!(refused.text().unwrap().contains("viewer role"), "{path}");
    }
    let denials = server.audit_events("?limit=200");
    let denied: Vec<&serde_json::Value> = denials
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["principal"] == "bea" && event["outcome"] == "denied")
        .collect();
    assert!(denied.len() >= 8, "{denials:#}");

    // Forms: only from this server's pages, only with this session's token.
    let form_page = get("/console/new/static-edge", Some(&bea), &[]).text().unwrap();
    let csrf = csrf_in(&form_page);
    let post = |fields: &[(&str, &str)], origin: &str| {
        http.post(format!("{}/console/new/static-edge", server.url))
            .header("cookie", session(&bea))
            .header("origin", origin)
            .form(fields)
            .send()
            .unwrap()
    };
    let app = [("name", "poll"), ("namespace", "team"), ("visibility", "team"), ("kv", "on")];
    fn with<'a>(app: &[(&'a str, &'a str)], token: &'a str) -> Vec<(&'a str, &'a str)> {
        let mut fields = app.to_vec();
        fields.push(("csrf", token));
        fields
    }
    assert_eq!(post(&with(&app, &csrf), "https://evil.example").status(), 403);
    let zeros = "0".repeat(64);
    assert_eq!(post(&with(&app, &zeros), &server.url).status(), 403);
    assert_eq!(post(&app, &server.url).status(), 403);
    // A bad name comes back with the form whole and the problem named.
    let mut bad = with(&app, &csrf);
    bad[0] = ("name", "Lunch Poll");
    bad.push(("description", "Votes <b>for</b> lunch"));
    let refused = post(&bad, &server.url);
    assert_eq!(refused.status(), 422);
    let page = refused.text().unwrap();
    assert!(page.contains("cannot be an app name") && page.contains("value=\"Lunch Poll\""), "{page}");
    assert!(page.contains("Votes &lt;b&gt;for&lt;/b&gt; lunch"), "what was typed is kept, escaped: {page}");
    // The right form makes the app, live at once.
    let created = post(&with(&app, &csrf), &server.url);
    assert_eq!(created.status(), 303);
    assert_eq!(created.headers()["location"], "/console/apps/team/poll?notice=created");
    let live = client().get(server.app_url("team", "poll", "/")).bearer_auth(&bea).send().unwrap();
    assert_eq!(live.status(), 200);
    assert!(live.text().unwrap().contains("<h1>poll</h1>"));
    let listed = server.cli_ok(&["apps", "get", "team/poll", "-o", "json"]);
    assert!(listed.contains("\"owner\": \"user:bea\""), "{listed}");

    // A secret set through the console is never shown again.
    let secret = "s3cr3t-value-that-must-not-show";
    let app_page = get("/console/apps/team/poll", Some(&bea), &[]).text().unwrap();
    let set = http
        .post(format!("{}/console/apps/team/poll/secrets", server.url))
        .header("cookie", session(&bea))
        .form(&[("csrf", csrf_in(&app_page).as_str()), ("name", "API_TOKEN"), ("value", secret), ("expires", "")])
        .send()
        .unwrap();
    assert_eq!(set.status(), 303);
    let shown = get("/console/apps/team/poll", Some(&bea), &[]).text().unwrap();
    assert!(shown.contains("API_TOKEN") && !shown.contains(secret), "{shown}");

    // The app's cached responses, purged from its page with the form's token only.
    let app_page = get("/console/apps/team/poll", Some(&bea), &[]).text().unwrap();
    assert!(app_page.contains("Purge cached responses"), "{app_page}");
    let purge = |token: &str| {
        http.post(format!("{}/console/apps/team/poll/cache/purge", server.url))
            .header("cookie", session(&bea))
            .form(&[("csrf", token)])
            .send()
            .unwrap()
    };
    assert_eq!(purge(&"0".repeat(64)).status(), 403);
    let purged = purge(&csrf_in(&app_page));
    assert_eq!(purged.status(), 303);
    assert_eq!(purged.headers()["location"], "/console/apps/team/poll?notice=cache-purged");

    // The live log: only with the page's token, which is not the form token.
    let app_page = get("/console/apps/team/poll", Some(&bea), &[]).text().unwrap();
    let start = app_page.find("data-stream=\"").unwrap() + "data-stream=\"".len();
    let stream_url = app_page[start..].split('"').next().unwrap().replace("&amp;", "&");
    assert!(stream_url.starts_with("/console/log-stream/team/poll?token="), "{stream_url}");
    assert!(!stream_url.contains(&csrf));
    assert_eq!(get("/console/log-stream/team/poll", Some(&bea), &[("sec-fetch-mode", "cors")]).status(), 403);
    let forged = format!("/console/log-stream/team/poll?token={csrf}");
    assert_eq!(get(&forged, Some(&bea), &[("sec-fetch-mode", "cors")]).status(), 403);
    let stream = get(&stream_url, Some(&bea), &[("sec-fetch-mode", "cors"), ("sec-fetch-dest", "empty")]);
    assert_eq!(stream.status(), 200);
    assert!(stream.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    drop(stream);
    // An app named like a route is still a page, read only as a page.
    let logs_app = [("name", "logs"), ("namespace", "team"), ("visibility", "team"), ("csrf", csrf.as_str())];
    assert_eq!(post(&logs_app, &server.url).status(), 303);
    assert_eq!(get("/console/apps/team/logs", Some(&bea), &[("sec-fetch-mode", "cors")]).status(), 403);

    // Making an app never replaces one: the name is taken, the form comes back whole.
    let taken = post(&with(&app, &csrf), &server.url);
    assert_eq!(taken.status(), 409);
    assert!(taken.text().unwrap().contains("already exists"));
    assert_eq!(server.cli_ok(&["apps", "get", "team/poll", "-o", "json"]).matches("\"revision\":").count(), 1);

    // The editor publishes this app only, from the revision it opened.
    let edit = |fields: &[(&str, &str)]| {
        http.post(format!("{}/console/apps/team/poll/edit", server.url))
            .header("cookie", session(&bea))
            .form(fields)
            .send()
            .unwrap()
    };
    let manifest = server.cli_ok(&["apps", "get", "team/poll", "-o", "json"]);
    assert!(manifest.contains("poll"));
    let page = get("/console/apps/team/poll/edit?path=terrarium.yaml", Some(&bea), &[]).text().unwrap();
    let start = page.find("spellcheck=\"false\" autocapitalize=\"off\">").unwrap();
    let text = page[start..].split_once('>').unwrap().1.split("</textarea>").next().unwrap().trim_start_matches('\n');
    let text = text.replace("&quot;", "\"").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&");
    let renamed = text.replace("name: poll", "name: other");
    let moved = edit(&[
        ("csrf", &csrf),
        ("path", "terrarium.yaml"),
        ("content", &renamed),
        ("action", "deploy"),
        ("revision", "1"),
    ]);
    assert_eq!(moved.status(), 422);
    assert!(moved.text().unwrap().contains("the editor publishes this app only"));
    let stale = edit(&[
        ("csrf", &csrf),
        ("path", "terrarium.yaml"),
        ("content", &text),
        ("action", "deploy"),
        ("revision", "0"),
    ]);
    assert_eq!(stale.status(), 409);
    assert!(stale.text().unwrap().contains("was published after you opened this file"));
    let unchanged = edit(&[
        ("csrf", &csrf),
        ("path", "terrarium.yaml"),
        ("content", &text),
        ("action", "deploy"),
        ("revision", "1"),
    ]);
    assert_eq!(unchanged.status(), 303);
    assert_eq!(unchanged.headers()["location"], "/console/apps/team/poll?notice=unchanged");
    // Check is the deploy's own check: code that does not load is named, and nothing is deployed.
    let broken = "export default { fetch( { return new Response('x'); } };";
    let checked = edit(&[
        ("csrf", &csrf),
        ("path", "functions/api.js"),
        ("content", broken),
        ("action", "check"),
        ("revision", "1"),
    ]);
    assert_eq!(checked.status(), 422);
    let page = checked.text().unwrap();
    assert!(page.contains("code does not load") && page.contains("SyntaxError"), "{page}");
    let hinted = "export default { fetch(request, env) { return fetch('https://api.weather.example/x'); } };";
    let checked = edit(&[
        ("csrf", &csrf),
        ("path", "functions/api.js"),
        ("content", hinted),
        ("action", "check"),
        ("revision", "1"),
    ]);
    assert_eq!(checked.status(), 200);
    let page = checked.text().unwrap();
    assert!(page.contains("No problems found") && page.contains("does not list api.weather.example"), "{page}");
    assert!(server.cli_ok(&["apps", "get", "team/poll", "-o", "json"]).contains("\"active_revision\": 1"));

    // A signed-in browser is forwarded by the sign-in page, never off this server.
    for return_to in ["/%09/evil.example", "/%0a", "//evil.example", "https://evil.example/", "/\\evil.example"] {
        let forwarded = get(&format!("/auth/login?return_to={return_to}"), Some(&bea), &[]);
        assert_eq!(forwarded.status(), 303, "{return_to}");
        assert_eq!(forwarded.headers()["location"], "/", "{return_to}");
    }
    assert_eq!(get("/auth/login?return_to=/console/new", Some(&bea), &[]).headers()["location"], "/console/new");
}

#[test]
fn a_builder_and_an_operator_use_the_console_in_a_real_browser() {
    let server = Server::start(CONSOLE_CONFIG);
    server.cli_ok(&["namespaces", "create", "team"]);
    server.cli_ok(&["namespaces", "create", "vault"]);
    deploy_static(&server, "vault", "ledger");
    let bea = user(&server, "bea", &["team:builder"]);
    let ola = user(&server, "ola", &["team:operator", "*:viewer"]);
    let secret = "console-secret-5b1e7d";
    let screenshots = concat!(env!("CARGO_TARGET_TMPDIR"), "/console-screenshots");

    let output = Command::new("node")
        .arg(fixture("../browser/console.mjs"))
        .env("TERRARIUM_PORT", server.port.to_string())
        .env("BUILDER_USER", "bea")
        .env("BUILDER_PASSWORD", &bea)
        .env("OPERATOR_USER", "ola")
        .env("OPERATOR_PASSWORD", &ola)
        .env("SECRET_VALUE", secret)
        .env("SCREENSHOTS", screenshots)
        .output()
        .expect("node runs (scripts/test installs it)");
    assert!(output.status.success(), "the browser run failed:\n{}\n{}", stdout(&output), stderr(&output));
    let seen: serde_json::Value = serde_json::from_str(stdout(&output).trim()).unwrap();
    let text = |key: &str| seen[key].as_str().unwrap_or_default().to_owned();

    // From the sign-in page to a live app made from a template, with no files anywhere.
    assert_eq!(text("my_apps_heading"), "My apps");
    assert!(text("created_notice").contains("Your app is live"), "{seen:#}");
    assert_eq!(text("live_url"), format!("http://lunch.team.localhost:{}/", server.port));
    assert_eq!(text("live_heading"), "lunch", "{seen:#}");
    eprintln!("sign-in page to live app: {} s", seen["seconds_to_live"]);

    // The app's log follows on its page as the app writes it.
    assert!(text("function_answer").contains("Hello, console!"), "{seen:#}");
    assert!(text("live_log").contains("greeting console"), "{seen:#}");

    // Edited, checked and published; a manifest mistake named with its place; rolled back.
    assert!(text("check_notice").contains("No problems found"), "{seen:#}");
    assert_eq!(seen["kept_after_check"], true);
    assert!(text("deployed_notice").contains("Revision 2 is live"), "{seen:#}");
    assert!(text("changes").contains("1 changed"), "{seen:#}");
    assert_eq!(text("edited_heading"), "Lunch poll");
    let problems = text("manifest_problems");
    assert!(problems.contains("lunch/terrarium.yaml:") && problems.contains("spec.runtime"), "{problems}");
    assert_eq!(seen["kept_after_problem"], true);
    assert!(text("rollback_notice").contains("Revision 1 is live again"), "{seen:#}");
    assert_eq!(text("rolled_back_heading"), "lunch");

    // The secret is listed by name, its value never shown.
    assert_eq!(seen["secret_listed"], true);
    assert_eq!(seen["secret_value_shown"], false);

    // The ask waits for an operator, with its reason; the builder stays out of operator pages
    // and of another namespace's app.
    assert!(text("pending_notice").contains("waits for an operator"), "{seen:#}");
    assert!(text("pending_section").contains("by bea"), "{seen:#}");
    assert_eq!(seen["builder_operator_page"], 403, "{seen:#}");
    assert!(text("builder_operator_text").contains("operator role"), "{seen:#}");
    assert_eq!(seen["builder_other_namespace"], 403);
    assert_eq!(seen["builder_other_edit"], 403);

    // The operator sees the ask and its reason, approves it; the new revision goes live.
    let queue = text("queue");
    assert!(
        queue.contains("api.weather.dev") && queue.contains("The lunch poll shows the weather at noon."),
        "{queue}"
    );
    assert!(text("voted_notice").contains("Your decision is recorded"), "{seen:#}");
    assert!(text("decided").contains("approved"), "{seen:#}");
    let lunch: serde_json::Value =
        serde_json::from_str(&server.cli_ok(&["apps", "get", "team/lunch", "-o", "json"])).unwrap();
    assert!(lunch["active_revision"].as_i64().unwrap() >= 3, "the approved revision is live: {lunch:#}");
    assert!(text("after_approval").contains(&format!("Revision{}", lunch["active_revision"])), "{seen:#}");
    let approved = server.cli_ok(&["approvals", "list", "--state", "all", "-o", "json"]);
    assert!(approved.contains("\"state\": \"approved\"") && approved.contains("Weather data is public"), "{approved}");

    // Every operator page opens, with what it is for.
    for (page, expected) in [
        ("12-inventory", "lunch"),
        ("13-policy", "Policies in force"),
        ("14-spend", "% used"),
        ("15-people", "user:bea"),
        ("16-operator-app-detail", "Audit trail"),
        ("19-operator-home", "Waiting for you"),
    ] {
        assert_eq!(seen[page]["status"], 200, "{page}: {seen:#}");
        let shown = seen[page]["text"].as_str().unwrap();
        assert!(shown.contains(expected), "{page}: {shown}");
        assert!(!shown.contains(secret), "{page} shows the secret");
    }
    assert!(seen["16-operator-app-detail"]["text"].as_str().unwrap().contains("approval.approve"), "{seen:#}");
    assert_eq!(seen["csv"]["status"], 200);
    assert!(seen["csv"]["type"].as_str().unwrap().starts_with("text/csv"));
    let csv = seen["csv"]["body"].as_str().unwrap();
    assert!(
        csv.starts_with("namespace,apps,requests,cpu_seconds,bytes_out,cost,currency,cache_hits,saved_by_cache\n"),
        "{csv}"
    );
    assert!(csv.contains("\nteam,"), "{csv}");

    // Usable on a phone: nothing wider than the screen.
    assert!(seen["phone_scroll_width"].as_u64().unwrap() <= 390, "{seen:#}");
    assert!(seen["phone_app_scroll_width"].as_u64().unwrap() <= 390, "{seen:#}");

    // A screenshot of every page; every console page labelled for a screen reader.
    for page in seen["pages"].as_array().unwrap() {
        let name = page["name"].as_str().unwrap();
        if let Some(problems) = page["accessibility"].as_array() {
            assert!(problems.is_empty(), "{name}: {problems:?}");
        }
        assert!(std::path::Path::new(screenshots).join(format!("{name}.png")).is_file(), "{name}.png");
    }
}
