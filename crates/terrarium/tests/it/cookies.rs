//! Cookie walls in a real browser: Debian's Chromium, driven by playwright-core
//! (`tests/browser/cookie-walls.mjs`), signs a visitor in to a victim app and then browses a
//! hostile app of the same namespace that tries every cookie trick there is.

use std::process::Command;

use crate::support::{Server, fixture, stderr, stdout};

#[test]
fn no_app_can_plant_or_push_out_another_apps_session() {
    let server = Server::start("");
    server.cli_ok(&["namespaces", "create", "shared"]);
    let added: serde_json::Value =
        serde_json::from_str(&server.cli_ok(&["users", "add", "vera", "--output", "json"])).unwrap();
    let vera_password = added["password"].as_str().unwrap().to_owned();
    server.cli_ok(&["roles", "grant", "shared", "user:vera", "viewer"]);
    let attacker_token = server.user_token("mallory", &["shared:builder"]);
    server.deploy(&fixture("cookie-victim"));
    server.deploy(&fixture("cookie-thief"));

    let script = fixture("../browser/cookie-walls.mjs");
    let output = Command::new("node")
        .arg(&script)
        .env("TERRARIUM_PORT", server.port.to_string())
        .env("VICTIM_USER", "vera")
        .env("VICTIM_PASSWORD", &vera_password)
        .env("ATTACKER_TOKEN", &attacker_token)
        .output()
        .expect("node runs (scripts/test installs it)");
    assert!(output.status.success(), "the browser run failed:\n{}\n{}", stdout(&output), stderr(&output));
    let seen: serde_json::Value = serde_json::from_str(stdout(&output).trim()).unwrap();

    // Signed in as herself before and after, whatever the hostile app did.
    assert_eq!(seen["before"]["user"]["sub"], "vera", "{seen:#}");
    assert_eq!(seen["after"]["user"]["sub"], "vera", "{seen:#}");
    // Her app never sees a platform cookie, nor the thief's cookies for the parent domain.
    let cookie = seen["after"]["cookie"].as_str().unwrap_or_default();
    assert!(!cookie.to_ascii_lowercase().contains("terrarium"), "{cookie}");
    assert!(!cookie.contains("theme=stolen"), "{cookie}");

    // Only the thief's own, host-only cookie came through, without its priority.
    let planted: Vec<&str> =
        seen["planted_set_cookies"].as_array().unwrap().iter().map(|value| value.as_str().unwrap()).collect();
    let planted = planted.join("\n");
    assert!(planted.starts_with("mine=1"), "{planted}");
    assert!(
        !planted.contains("terrarium") && !planted.contains("Domain") && !planted.contains("Priority"),
        "{planted}"
    );

    // The browser holds the victim's session on the victim's host only; no platform cookie of
    // the attacker's exists anywhere in the jar.
    let jar = seen["jar"].as_array().unwrap();
    // The flood filled the browser's jar for the shared parent domain (Chromium keeps 180):
    // the session survived eviction, not the absence of pressure.
    assert!(jar.len() >= 150, "{} cookies in the jar", jar.len());
    let sessions: Vec<&serde_json::Value> = jar
        .iter()
        .filter(|cookie| cookie["name"].as_str().unwrap().to_ascii_lowercase().contains("terrarium_session"))
        .collect();
    assert!(
        sessions.iter().all(|cookie| cookie["name"] == "__Host-terrarium_session"
            || cookie["domain"] == "shared.localhost"
            || cookie["domain"] == ".shared.localhost"),
        "{sessions:#?}"
    );
    assert!(
        sessions.iter().any(|cookie| cookie["name"] == "__Host-terrarium_session"
            && cookie["domain"] == "victim.shared.localhost"),
        "{sessions:#?}"
    );

    // The thief's owner can read in its log what the platform dropped, and why.
    let logs = server.cli_ok(&["logs", "shared/thief"]);
    assert!(logs.contains("the platform dropped 8 Set-Cookie header(s)"), "{logs}");
    assert!(logs.contains("reaches beyond this app's host"), "{logs}");
    assert!(logs.contains("are the platform's"), "{logs}");
    assert!(logs.contains("more than 32 Set-Cookie headers"), "{logs}");
}

/// With the console on a domain of its own, `path_routes = false` keeps every app off the
/// console's origin: apps answer only on their own hosts.
#[test]
fn path_routes_can_be_turned_off() {
    let server = Server::start("[gateway]\npath_routes = false\n");
    server.cli_ok(&["namespaces", "create", "shared"]);
    server.deploy(&fixture("cookie-thief"));
    let on_the_console = server.get("shared", "thief", "/plant");
    assert_eq!(on_the_console.status(), 404);
    let on_its_host = crate::support::client()
        .get(format!("{}/plant", server.url))
        .header("host", format!("thief.shared.localhost:{}", server.port))
        .send()
        .unwrap();
    assert_eq!(on_its_host.status(), 200);
}
