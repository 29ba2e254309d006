//! Sign-in through a real OpenID provider (`tests/oidc`, the certified oidc-provider package
//! run with Node): the browser's code flow with PKCE, the CLI's device flow, group mapping,
//! token exchange and key rotation at the provider.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use test_support::oidc::{Browser, Outcome, TestProvider};

use crate::support::{BIN, Server, client, copy_fixture, stderr};

/// The provider must know the server's callback before the server starts, so the port is
/// chosen first; should another process take it before the server binds it, both start again
/// on a new one.
fn start() -> (TestProvider, Server, tokio::runtime::Runtime) {
    for _ in 0..5 {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let callback = format!("http://127.0.0.1:{port}/auth/oidc/callback");
        let provider = TestProvider::start_with(&[("REDIRECT_URIS", callback.as_str())]);
        let config = format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n[identity.oidc]\nissuer = \"{}\"\nclient_id = \"terrarium\"\ndisplay_name = \"Test IdP\"\n",
            provider.issuer
        );
        let data_dir = tempfile::tempdir().unwrap().keep();
        let secret = [("TERRARIUM_OIDC_CLIENT_SECRET", "terrarium-secret")];
        if let Some(server) = Server::try_start_full(&config, &data_dir, &[], &secret, false) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            return (provider, server, runtime);
        }
    }
    panic!("no free loopback port for the server in five tries");
}

fn whoami(server: &Server, token: &str) -> serde_json::Value {
    let response = client().get(format!("{}/api/v1/whoami", server.url)).bearer_auth(token).send().unwrap();
    assert_eq!(response.status(), 200);
    response.json().unwrap()
}

#[test]
fn browser_code_flow_and_group_mapping() {
    let (_provider, server, runtime) = start();
    server.cli_ok(&["namespaces", "create", "growth"]);
    server.cli_ok(&["roles", "grant", "growth", "group:growth-team", "builder"]);

    // The sign-in page offers the provider.
    let page = client().get(format!("{}/auth/login", server.url)).send().unwrap().text().unwrap();
    assert!(page.contains("Sign in with Test IdP"), "{page}");

    // Ana signs in at the provider (code flow with PKCE) and comes back signed in.
    let start = format!("{}/auth/oidc/start?return_to=%2Fapps%2Fgrowth%2F", server.url);
    let callback_prefix = format!("{}/auth/oidc/callback", server.url);
    let mut browser = Browser::new();
    let Outcome::Redirected(callback) = runtime.block_on(browser.sign_in_until(&start, "ana", &callback_prefix)) else {
        panic!("the provider did not send ana back");
    };
    let back = client().get(callback.as_str()).send().unwrap();
    assert_eq!(back.status(), 303);
    assert_eq!(back.headers()["location"], "/apps/growth/");
    let cookie = back.headers()["set-cookie"].to_str().unwrap().to_owned();
    let token = cookie.split(';').next().unwrap().split_once('=').unwrap().1.to_owned();
    let me = whoami(&server, &token);
    assert_eq!(me["user"], "ana");
    assert_eq!(me["groups"], serde_json::json!(["growth-team", "admins"]));
    assert_eq!(me["roles"], serde_json::json!(["growth:builder"]), "the group's role");

    // A callback is good once: replaying it does not sign anyone in.
    let replayed = client().get(callback.as_str()).send().unwrap();
    assert_eq!(replayed.status(), 401);

    // Her group lets her deploy into growth; her account came from the provider.
    let app = copy_fixture("site");
    let manifest = std::fs::read_to_string(app.path().join("terrarium.yaml"))
        .unwrap()
        .replace("namespace: it", "namespace: growth")
        .replace("owner: user:tester", "owner: group:growth-team");
    std::fs::write(app.path().join("terrarium.yaml"), manifest).unwrap();
    let deployed = Command::new(BIN)
        .args(["deploy", app.path().to_str().unwrap(), "--server", &server.url, "--token", &token])
        .output()
        .unwrap();
    assert!(deployed.status.success(), "{}", stderr(&deployed));
    let users = server.cli_ok(&["users", "list"]);
    assert!(users.contains("ana") && users.contains("identity provider"), "{users}");
}

#[test]
fn cli_device_flow() {
    let (_provider, server, runtime) = start();
    let home = tempfile::tempdir().unwrap();
    let mut login = Command::new(BIN)
        .args(["login", "--server", &server.url])
        .env("XDG_CONFIG_HOME", home.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(login.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let verification =
        first.strip_prefix("Open ").unwrap_or_else(|| panic!("the CLI shows where to go: {first}")).trim().to_owned();
    assert!(lines.next().unwrap().unwrap().contains("confirm the code"));

    // Bob confirms the code in a browser and signs in at the provider; the CLI finishes.
    let Outcome::Page(page) = runtime.block_on(Browser::new().sign_in(&verification, "bob")) else {
        panic!("the device flow redirected somewhere");
    };
    assert_eq!(page.status, 200, "{}", page.body);
    let status = login.wait().unwrap();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(status.success(), "{rest:?}");
    assert!(rest.iter().any(|line| line.contains("Signed in to") && line.contains("as bob")), "{rest:?}");
    let me = Command::new(BIN)
        .args(["whoami", "--server", &server.url, "--output", "json"])
        .env("XDG_CONFIG_HOME", home.path())
        .output()
        .unwrap();
    let me: serde_json::Value = serde_json::from_slice(&me.stdout).unwrap();
    assert_eq!(me["user"], "bob");
    assert_eq!(me["groups"], serde_json::json!(["finance"]));
}

#[test]
fn token_exchange_and_key_rotation() {
    let (provider, server, runtime) = start();
    let exchange = |subject_token: &str| {
        client()
            .post(format!("{}/oauth/token", server.url))
            .form(&[
                ("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
                ("subject_token", subject_token),
                ("subject_token_type", "urn:ietf:params:oauth:token-type:access_token"),
            ])
            .send()
            .unwrap()
    };
    let idp_token = runtime.block_on(provider.sign("RS256", serde_json::json!({"groups": ["growth-team"]})));
    let answer: serde_json::Value = exchange(&idp_token).json().unwrap();
    assert_eq!(answer["issued_token_type"], "urn:ietf:params:oauth:token-type:access_token");
    assert_eq!(answer["token_type"], "Bearer");
    let platform_token = answer["access_token"].as_str().unwrap();
    assert_eq!(whoami(&server, platform_token)["user"], "ana");

    // Tokens for another audience, expired, or unsigned by the provider are refused.
    for claims in [serde_json::json!({"aud": "someone-else"}), serde_json::json!({"exp": 1_000_000_000})] {
        let token = runtime.block_on(provider.sign("RS256", claims));
        let refused = exchange(&token);
        assert_eq!(refused.status(), 400);
        assert_eq!(refused.json::<serde_json::Value>().unwrap()["error"], "invalid_grant");
    }
    let forged = format!("{}.{}.", idp_token.split('.').next().unwrap(), idp_token.split('.').nth(1).unwrap());
    assert_eq!(exchange(&forged).status(), 400);

    // The provider rotates its keys; a token signed with the new key is accepted.
    runtime.block_on(provider.rotate_keys());
    let rotated = runtime.block_on(provider.sign("RS256", serde_json::json!({"sub": "bob"})));
    let answer: serde_json::Value = exchange(&rotated).json().unwrap();
    assert_eq!(whoami(&server, answer["access_token"].as_str().unwrap())["user"], "bob");

    // Unsupported grants get OAuth's error.
    let wrong_grant =
        client().post(format!("{}/oauth/token", server.url)).form(&[("grant_type", "password")]).send().unwrap();
    assert_eq!(wrong_grant.json::<serde_json::Value>().unwrap()["error"], "unsupported_grant_type");
}
