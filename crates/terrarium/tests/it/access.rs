//! Sign-in, local accounts and roles at the control API: nobody deploys anonymously, builders
//! deploy only where they hold the role and only what they own, and every denial is audited.

use std::path::Path;

use crate::support::{Server, client, copy_fixture, stderr, stdout};

/// The `site` fixture as app `name` in `namespace`, owned by `owner`.
fn app_as(name: &str, namespace: &str, owner: &str) -> tempfile::TempDir {
    let app = copy_fixture("site");
    let manifest_path = app.path().join("terrarium.yaml");
    let manifest = std::fs::read_to_string(&manifest_path)
        .unwrap()
        .replace("name: site", &format!("name: {name}"))
        .replace("namespace: it", &format!("namespace: {namespace}"))
        .replace("owner: user:tester", &format!("owner: {owner}"));
    std::fs::write(&manifest_path, manifest).unwrap();
    app
}

fn deploy(server: &Server, dir: &Path) -> std::process::Output {
    server.cli(&["deploy", dir.to_str().unwrap()])
}

#[test]
fn builders_deploy_only_where_they_may() {
    let server = Server::start("");
    // The admin sets up a namespace, a builder and a shared app.
    server.cli_ok(&["namespaces", "create", "growth"]);
    server.cli_ok(&["namespaces", "create", "finance"]);
    let added: serde_json::Value =
        serde_json::from_str(&server.cli_ok(&["users", "add", "bea", "--groups", "growth-team", "--output", "json"]))
            .unwrap();
    let password = added["password"].as_str().unwrap().to_owned();
    assert!(password.len() >= 20);
    server.cli_ok(&["roles", "grant", "growth", "user:bea", "builder"]);
    assert!(deploy(&server, app_as("shared", "growth", "group:ops").path()).status.success());
    let users = server.cli_ok(&["users", "list"]);
    assert!(users.contains("bea") && users.contains("growth-team"), "{users}");

    // A wrong password is refused without saying which part was wrong, and audited.
    let wrong = server.login("bea", "not her password");
    assert!(!wrong.status.success());
    assert!(stderr(&wrong).contains("wrong user name or password"), "{}", stderr(&wrong));
    let ghost = server.login("nobody", "whatever it is");
    assert!(stderr(&ghost).contains("wrong user name or password"));

    // Bea signs in and deploys her own app into her namespace.
    assert!(server.login("bea", &password).status.success());
    let me: serde_json::Value = serde_json::from_str(&server.cli_ok(&["whoami", "--output", "json"])).unwrap();
    assert_eq!(me["user"], "bea");
    assert_eq!(me["roles"], serde_json::json!(["growth:builder"]));
    let own = deploy(&server, app_as("beas-app", "growth", "user:bea").path());
    assert!(own.status.success(), "{}", stderr(&own));
    assert_eq!(server.get("growth", "beas-app", "/").status(), 200);

    // Not in another namespace, not an app owned by someone else, not a change to another's app.
    let elsewhere = deploy(&server, app_as("sneaky", "finance", "user:bea").path());
    assert!(!elsewhere.status.success());
    assert!(stderr(&elsewhere).contains("needs the builder role"), "{}", stderr(&elsewhere));
    let not_hers = deploy(&server, app_as("other", "growth", "user:carl").path());
    assert!(stderr(&not_hers).contains("builders deploy apps they own"), "{}", stderr(&not_hers));
    let takeover = deploy(&server, app_as("shared", "growth", "user:bea").path());
    assert!(stderr(&takeover).contains("belongs to group:ops"), "{}", stderr(&takeover));
    let rollback = server.cli(&["apps", "delete", "growth/shared", "--yes"]);
    assert!(stderr(&rollback).contains("belongs to group:ops"), "{}", stderr(&rollback));
    assert_eq!(server.get("growth", "shared", "/").status(), 200, "the shared app is untouched");
    let create = server.cli(&["namespaces", "create", "mine"]);
    assert!(stderr(&create).contains("platform admin"), "{}", stderr(&create));
    let grant = server.cli(&["roles", "grant", "growth", "user:bea", "admin"]);
    assert!(stderr(&grant).contains("needs the admin role"), "{}", stderr(&grant));

    // She sees only the namespaces she has a role in.
    let apps: serde_json::Value = serde_json::from_str(&server.cli_ok(&["apps", "list", "--output", "json"])).unwrap();
    assert!(apps.as_array().unwrap().iter().all(|app| app["namespace"] == "growth"), "{apps}");
    let namespaces = server.cli_ok(&["namespaces", "list"]);
    assert!(namespaces.contains("growth") && !namespaces.contains("finance"), "{namespaces}");
    let bea_token = server.stored_token();

    // Back as admin: every denial is in the audit log with the principal.
    assert!(server.login("admin", crate::support::ADMIN_PASSWORD).status.success());
    let audit: serde_json::Value = client()
        .get(format!("{}/api/v1/audit?limit=200", server.url))
        .bearer_auth(server.stored_token())
        .send()
        .unwrap()
        .json()
        .unwrap();
    let denied: Vec<(String, String)> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["outcome"] == "denied")
        .map(|event| (event["principal"].as_str().unwrap().to_owned(), event["action"].as_str().unwrap().to_owned()))
        .collect();
    for expected in [
        ("bea", "app.deploy"),
        ("bea", "app.delete"),
        ("bea", "namespace.create"),
        ("bea", "role.grant"),
        ("bea", "auth.login"),
        ("nobody", "auth.login"),
    ] {
        assert!(denied.contains(&(expected.0.to_owned(), expected.1.to_owned())), "missing {expected:?} in {denied:?}");
    }

    // Disabling her stops her token at once.
    server.cli_ok(&["users", "disable", "bea"]);
    let refused = client().get(format!("{}/api/v1/whoami", server.url)).bearer_auth(&bea_token).send().unwrap();
    assert_eq!(refused.status(), 401);
    assert!(refused.text().unwrap().contains("disabled"));
    assert!(!server.login("bea", &password).status.success());
    let own_account = server.cli(&["users", "disable", "admin"]);
    assert!(stderr(&own_account).contains("your own account"));
}

#[test]
fn tokens_are_checked_and_keys_published() {
    let server = Server::start("");
    let http = client();
    let whoami = |token: &str| {
        http.get(format!("{}/api/v1/whoami", server.url)).bearer_auth(token).send().unwrap().status().as_u16()
    };
    assert_eq!(whoami(&server.token), 200);

    // No token, a tampered token, a token with its signature cut off, garbage: all 401.
    let anonymous = http.get(format!("{}/api/v1/apps", server.url)).send().unwrap();
    assert_eq!(anonymous.status(), 401);
    assert!(anonymous.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
    let parts: Vec<&str> = server.token.split('.').collect();
    let payload = String::from_utf8(base64_url_decode(parts[1])).unwrap().replace("\"admin\"", "\"root\"");
    let tampered = format!("{}.{}.{}", parts[0], base64_url_encode(payload.as_bytes()), parts[2]);
    assert_eq!(whoami(&tampered), 401);
    assert_eq!(whoami(&format!("{}.{}.", parts[0], parts[1])), 401);
    assert_eq!(whoami("not-a-token"), 401);

    // The keys anyone can verify platform tokens with, and OIDC-style discovery.
    let jwks: serde_json::Value =
        http.get(format!("{}/.well-known/jwks.json", server.url)).send().unwrap().json().unwrap();
    let key = &jwks["keys"][0];
    assert_eq!(key["kty"], "OKP");
    assert_eq!(key["crv"], "Ed25519");
    assert!(key.get("d").is_none(), "no private key material");
    let discovery: serde_json::Value =
        http.get(format!("{}/.well-known/openid-configuration", server.url)).send().unwrap().json().unwrap();
    assert_eq!(discovery["issuer"], server.url);
    assert_eq!(discovery["jwks_uri"], format!("{}/.well-known/jwks.json", server.url));

    // The CLI keeps its token readable by the user only.
    use std::os::unix::fs::PermissionsExt;
    let credentials = server.cli_home.path().join("terrarium/credentials.json");
    assert_eq!(std::fs::metadata(&credentials).unwrap().permissions().mode() & 0o777, 0o600);

    // Tokens survive a restart: the signing keys are kept in the data directory (mode 0600).
    let mode = std::fs::metadata(server.data_dir.join("signing-keys.json")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let token = server.token.clone();
    let data_dir = server.kill();
    let server = Server::start_in("", &data_dir, &[]);
    let status = client().get(format!("{}/api/v1/whoami", server.url)).bearer_auth(&token).send().unwrap().status();
    // The issuer is the server's URL, which changed with the new ephemeral port: the old token is refused.
    assert_eq!(status, 401);
    let me: serde_json::Value = serde_json::from_str(&server.cli_ok(&["whoami", "--output", "json"])).unwrap();
    assert_eq!(me["roles"], serde_json::json!(["*:admin"]));
    let _ = stdout;
}

fn base64_url_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text).unwrap()
}

fn base64_url_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Hostile tokens at the control API and at an app: each refused with 401 and audited.
#[test]
fn jwt_attacks_are_refused_and_audited() {
    let server = Server::start("");
    let parts: Vec<&str> = server.token.split('.').collect();
    let header: serde_json::Value = serde_json::from_slice(&base64_url_decode(parts[0])).unwrap();
    let kid = header["kid"].as_str().unwrap().to_owned();
    let claims: serde_json::Value = serde_json::from_slice(&base64_url_decode(parts[1])).unwrap();
    let jwks: serde_json::Value =
        client().get(format!("{}/.well-known/jwks.json", server.url)).send().unwrap().json().unwrap();
    let public_key = jwks["keys"][0]["x"].as_str().unwrap().to_owned();
    let encode_json = |value: &serde_json::Value| base64_url_encode(value.to_string().as_bytes());
    let with = |header: serde_json::Value, claims: &serde_json::Value, signature: &str| {
        format!("{}.{}.{signature}", encode_json(&header), encode_json(claims))
    };
    let mut expired = claims.clone();
    expired["exp"] = serde_json::json!(1_000_000_000);
    expired["iat"] = serde_json::json!(999_999_000);
    expired["nbf"] = serde_json::json!(999_999_000);
    let mut future = claims.clone();
    future["nbf"] = serde_json::json!(4_000_000_000i64);
    let mut other_issuer = claims.clone();
    other_issuer["iss"] = serde_json::json!("https://evil.example");
    let mut other_audience = claims.clone();
    other_audience["aud"] = serde_json::json!("app:growth/payroll");
    let attacks = [
        ("alg none", with(serde_json::json!({"alg": "none", "kid": kid}), &claims, "")),
        ("alg NoNe", with(serde_json::json!({"alg": "NoNe", "kid": kid}), &claims, "")),
        ("empty signature", with(serde_json::json!({"alg": "EdDSA", "kid": kid}), &claims, "")),
        ("HS256 with the public key", with(serde_json::json!({"alg": "HS256", "kid": kid}), &claims, &public_key)),
        (
            "embedded jwk",
            with(serde_json::json!({"alg": "EdDSA", "kid": kid, "jwk": jwks["keys"][0]}), &claims, parts[2]),
        ),
        (
            "jku elsewhere",
            with(
                serde_json::json!({"alg": "EdDSA", "kid": kid, "jku": "https://evil.example/jwks"}),
                &claims,
                parts[2],
            ),
        ),
        (
            "x5u elsewhere",
            with(
                serde_json::json!({"alg": "EdDSA", "kid": kid, "x5u": "https://evil.example/cert"}),
                &claims,
                parts[2],
            ),
        ),
        (
            "kid traversal",
            with(serde_json::json!({"alg": "EdDSA", "kid": "../../../../etc/passwd"}), &claims, parts[2]),
        ),
        ("kid injection", with(serde_json::json!({"alg": "EdDSA", "kid": "x' OR '1'='1"}), &claims, parts[2])),
        ("expired", with(header.clone(), &expired, parts[2])),
        ("not yet valid", with(header.clone(), &future, parts[2])),
        ("wrong issuer", with(header.clone(), &other_issuer, parts[2])),
        ("wrong audience", with(header.clone(), &other_audience, parts[2])),
    ];
    for (name, token) in &attacks {
        let control = client().get(format!("{}/api/v1/whoami", server.url)).bearer_auth(token).send().unwrap();
        assert_eq!(control.status(), 401, "{name} at the control API");
    }
    let audit: serde_json::Value = client()
        .get(format!("{}/api/v1/audit?limit=100", server.url))
        .bearer_auth(&server.token)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let refusals = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["action"] == "auth.whoami" && event["outcome"] == "denied")
        .count();
    assert_eq!(refusals, attacks.len(), "every refused token is audited");

    // At an app, a forged token is no identity at all: a signed-in-only app answers 401.
    let app = copy_fixture("site");
    let manifest = std::fs::read_to_string(app.path().join("terrarium.yaml"))
        .unwrap()
        .replace("visibility: public", "visibility: org");
    std::fs::write(app.path().join("terrarium.yaml"), manifest).unwrap();
    server.deploy(app.path());
    for (name, token) in &attacks {
        let response = client().get(server.app_url("it", "site", "/")).bearer_auth(token).send().unwrap();
        assert_eq!(response.status(), 401, "{name} at an app");
    }
    let audit: serde_json::Value = client()
        .get(format!("{}/api/v1/audit?namespace=it&limit=100", server.url))
        .bearer_auth(&server.token)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let refused_at_app = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["action"] == "app.access" && event["outcome"] == "denied")
        .count();
    assert_eq!(refused_at_app, attacks.len(), "every refused token at the app is audited");
    assert_eq!(
        client().get(server.app_url("it", "site", "/")).bearer_auth(&server.token).send().unwrap().status(),
        200
    );
}

/// The platform's own signing key rotates without downtime and the ring survives a restart.
#[test]
fn platform_key_rotation() {
    let server = Server::start("");
    let kid_of = |token: &str| -> String {
        let header: serde_json::Value =
            serde_json::from_slice(&base64_url_decode(token.split('.').next().unwrap())).unwrap();
        header["kid"].as_str().unwrap().to_owned()
    };
    let jwks_kids = |server: &Server| -> Vec<String> {
        let jwks: serde_json::Value =
            client().get(format!("{}/.well-known/jwks.json", server.url)).send().unwrap().json().unwrap();
        jwks["keys"].as_array().unwrap().iter().map(|key| key["kid"].as_str().unwrap().to_owned()).collect()
    };
    let old_token = server.token.clone();
    let old_kid = kid_of(&old_token);
    let rotated: serde_json::Value =
        serde_json::from_str(&server.cli_ok(&["keys", "rotate", "--output", "json"])).unwrap();
    let new_kid = rotated["active_kid"].as_str().unwrap().to_owned();
    assert_ne!(new_kid, old_kid);
    assert_eq!(jwks_kids(&server), [new_kid.clone(), old_kid.clone()]);

    // Tokens signed before keep working; new ones are signed with the new key.
    let status = client().get(format!("{}/api/v1/whoami", server.url)).bearer_auth(&old_token).send().unwrap().status();
    assert_eq!(status, 200);
    server.login("admin", crate::support::ADMIN_PASSWORD);
    assert_eq!(kid_of(&server.stored_token()), new_kid);

    // Only platform admins rotate.
    let added: serde_json::Value =
        serde_json::from_str(&server.cli_ok(&["users", "add", "bea", "--output", "json"])).unwrap();
    server.login("bea", added["password"].as_str().unwrap());
    let refused = server.cli(&["keys", "rotate"]);
    assert!(stderr(&refused).contains("platform admin"), "{}", stderr(&refused));

    // The rotated ring is what a restarted server publishes.
    let data_dir = server.kill();
    let server = Server::start_in("", &data_dir, &[]);
    assert_eq!(jwks_kids(&server), [new_kid, old_kid]);
}

/// Guessing a password locks the name for a while (429 with Retry-After), audited; the right
/// password after the lock works.
#[test]
fn password_guessing_is_throttled() {
    let server = Server::start("");
    let attempt = |password: &str| {
        client()
            .post(format!("{}/auth/login", server.url))
            .json(&serde_json::json!({"username": "admin", "password": password}))
            .send()
            .unwrap()
    };
    for _ in 0..5 {
        assert_eq!(attempt("guess").status(), 401);
    }
    let locked = attempt(crate::support::ADMIN_PASSWORD);
    assert_eq!(locked.status(), 429, "even the right password waits out the lock");
    assert!(locked.headers()["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(attempt(crate::support::ADMIN_PASSWORD).status(), 200);
    let audit: serde_json::Value = client()
        .get(format!("{}/api/v1/audit?limit=50", server.url))
        .bearer_auth(&server.token)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert!(audit.as_array().unwrap().iter().any(|event| event["detail"] == "locked after repeated failures"));
}
