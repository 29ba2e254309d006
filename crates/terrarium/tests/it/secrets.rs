//! Secrets end to end: `terrarium secrets`, functions reading `env.NAME`, Vault references,
//! key-encryption key rotation surviving kill -9, and no value leaking anywhere.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::{Server, client, holds, stderr, stdout, wait_for};

/// An app whose function reports which env names it has and, for `?name=`, that value; with
/// `?call=URL` it calls URL with its API_TOKEN as a bearer token.
fn write_app(dir: &Path, namespace: &str, name: &str, owner: &str, secrets_ref: &str, egress: &[String]) {
    let egress = match egress.is_empty() {
        true => String::new(),
        false => format!(
            "  allowedEgress:\n{}",
            egress.iter().map(|entry| format!("    - \"{entry}\"\n")).collect::<String>()
        ),
    };
    let manifest = format!(
        "apiVersion: terrarium.dev/v1\nkind: MicroApp\nmetadata:\n  name: {name}\n  namespace: {namespace}\nspec:\n  owner: {owner}\n  access:\n    visibility: public\n  runtime: function\n  secretsRef: {secrets_ref}\n  vars:\n    CITY: Lisbon\n  functions:\n    - route: /*\n      entry: functions/index.js\n{egress}"
    );
    std::fs::create_dir_all(dir.join("functions")).unwrap();
    std::fs::write(dir.join("terrarium.yaml"), manifest).unwrap();
    std::fs::write(
        dir.join("functions/index.js"),
        r#"export default {
  async fetch(request, env) {
    const params = new URL(request.url).searchParams;
    const call = params.get("call");
    if (call) {
      try {
        const response = await fetch(call, { headers: { authorization: "Bearer " + env.API_TOKEN } });
        return Response.json({ status: response.status });
      } catch (error) {
        return Response.json({ error: String(error.message) }, { status: 502 });
      }
    }
    const name = params.get("name");
    console.log("serving a request for", name);
    return Response.json({ names: Object.keys(env).sort(), value: name ? (env[name] ?? null) : null });
  },
};
"#,
    )
    .unwrap();
}

/// `terrarium secrets set APP NAME` with the value on standard input, as a script would.
fn set_secret(server: &Server, app: &str, name: &str, value: &str, extra: &[&str]) -> std::process::Output {
    let mut child = server
        .command(&["secrets", "set", app, name])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{value}").unwrap();
    child.wait_with_output().unwrap()
}

fn value_of(server: &Server, namespace: &str, app: &str, name: &str) -> serde_json::Value {
    let response = server.get(namespace, app, &format!("/?name={name}"));
    assert_eq!(response.status(), 200);
    response.json::<serde_json::Value>().unwrap()["value"].clone()
}

fn api_get(server: &Server, path: &str) -> String {
    let response = client().get(format!("{}{path}", server.url)).bearer_auth(&server.token).send().unwrap();
    assert!(response.status().is_success(), "{path}: {}", response.status());
    response.text().unwrap()
}

/// A plain HTTP upstream on 127.0.0.1 that answers 200 and keeps every request's head.
fn start_upstream() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut head = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                head.push_str(&line);
            }
            record.lock().unwrap().push(head);
            let mut stream = stream;
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
        }
    });
    (port, seen)
}

#[test]
fn secrets_reach_only_their_app_and_their_values_never_leak() {
    const VALUE: &str = "s3cr3t-VALUE-4f9a1c";
    const SECOND: &str = "s3cr3t-SECOND-77b2e0";
    let (upstream_port, upstream_seen) = start_upstream();
    let config = "[egress]\nallow_internal = [\"127.0.0.1/32\"]\n";
    let data_dir = tempfile::tempdir().unwrap().keep();
    let server = Server::start_full(config, &data_dir, &[], &[], true);
    let apps = tempfile::tempdir().unwrap();
    let upstream = format!("127.0.0.1:{upstream_port}");
    write_app(
        &apps.path().join("a"),
        "it",
        "vaulted",
        "user:admin",
        "terrarium://it/vaulted",
        std::slice::from_ref(&upstream),
    );
    write_app(&apps.path().join("b"), "it", "neighbour", "user:admin", "terrarium://it/neighbour", &[]);
    server.deploy(&apps.path().join("a"));
    server.deploy(&apps.path().join("b"));
    assert_eq!(value_of(&server, "it", "vaulted", "API_TOKEN"), serde_json::Value::Null);

    // Set: the running app is reloaded with the value; the neighbour never sees it.
    let output = set_secret(&server, "it/vaulted", "API_TOKEN", VALUE, &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("Set API_TOKEN of it/vaulted (version 1); the app was reloaded"),
        "{}",
        stdout(&output)
    );
    assert_eq!(value_of(&server, "it", "vaulted", "API_TOKEN"), VALUE);
    assert_eq!(value_of(&server, "it", "vaulted", "CITY"), "Lisbon", "vars stay beside secrets");
    assert_eq!(value_of(&server, "it", "neighbour", "API_TOKEN"), serde_json::Value::Null);
    let names = server.get("it", "neighbour", "/").json::<serde_json::Value>().unwrap()["names"].clone();
    assert_eq!(names, serde_json::json!(["CITY", "USER"]));

    // A new version replaces the value; versions and listing show names and dates only.
    assert!(
        set_secret(&server, "it/vaulted", "API_TOKEN", SECOND, &["--expires", "2030-01-01T00:00:00Z"]).status.success()
    );
    assert_eq!(value_of(&server, "it", "vaulted", "API_TOKEN"), SECOND);
    let listed = server.cli_ok(&["secrets", "list", "it/vaulted"]);
    assert!(
        listed.contains("API_TOKEN") && listed.contains("2 of 2") && listed.contains("2030-01-01T00:00:00Z"),
        "{listed}"
    );
    assert!(server.cli_ok(&["secrets", "versions", "it/vaulted", "API_TOKEN"]).contains("admin"));
    let listed: serde_json::Value =
        serde_json::from_str(&server.cli_ok(&["secrets", "list", "it", "-o", "json"])).unwrap();
    assert!(listed[0]["last_read_at"].is_string(), "the reload read it: {listed}");

    // Bad input: clear errors that never repeat the value.
    let bad_name = set_secret(&server, "it/vaulted", "API-TOKEN", VALUE, &[]);
    assert!(!bad_name.status.success());
    assert!(
        stderr(&bad_name).contains("is not a valid secret name") && !stderr(&bad_name).contains(VALUE),
        "{}",
        stderr(&bad_name)
    );
    let bad_body = client()
        .put(format!("{}/api/v1/apps/it/vaulted/secrets/OTHER", server.url))
        .bearer_auth(&server.token)
        .body(format!("{{\"value\": {VALUE}}}"))
        .send()
        .unwrap();
    assert_eq!(bad_body.status(), 400);
    assert!(!bad_body.text().unwrap().contains(VALUE));
    // An app cannot name another app's secrets.
    write_app(&apps.path().join("c"), "it", "thief", "user:admin", "terrarium://it/vaulted", &[]);
    let stolen = server.cli(&["deploy", apps.path().join("c").to_str().unwrap()]);
    assert!(!stolen.status.success());
    assert!(stderr(&stolen).contains("names another app's secrets"), "{}", stderr(&stolen));

    // The secret travels to the allowed upstream in a header; a denied fetch with it in the URL is refused.
    let called = server
        .get("it", "vaulted", &format!("/?call=http://127.0.0.1:{upstream_port}/hook"))
        .json::<serde_json::Value>()
        .unwrap();
    assert_eq!(called["status"], 200);
    assert!(upstream_seen.lock().unwrap().iter().any(|head| head.contains(&format!("Bearer {SECOND}"))));
    let denied = server.get("it", "vaulted", &format!("/?call=http://169.254.169.254/latest?k={SECOND}"));
    let denied = denied.json::<serde_json::Value>().unwrap();
    let message = denied["error"].as_str().unwrap();
    assert!(message.contains("a cloud metadata address") && !message.contains(SECOND), "{message}");

    // Both calls are in the egress log, with the upstream's address; the denial with its code.
    let log = wait_for("both calls in the egress log", || {
        let log = server.cli_ok(&["egress", "log", "it/vaulted", "-o", "json"]);
        let entries: serde_json::Value = serde_json::from_str(&log).unwrap();
        match entries.as_array().unwrap().len() >= 2 {
            true => Ok(entries),
            false => Err(log),
        }
    });
    let entries = log.as_array().unwrap();
    assert!(
        entries
            .iter()
            .any(|entry| entry["decision"] == "allowed" && entry["address"] == "127.0.0.1" && entry["status"] == 200),
        "{log}"
    );
    assert!(
        entries.iter().any(|entry| entry["decision"] == "denied"
            && entry["code"] == "blocked_address"
            && entry["host"] == "169.254.169.254"),
        "{log}"
    );
    let denied_only = server.cli_ok(&["egress", "log", "it", "--denied"]);
    assert!(denied_only.contains("denied (blocked_address)") && !denied_only.contains("allowed "), "{denied_only}");
    let metrics = api_get(&server, "/metrics");
    assert!(
        metrics
            .contains(r#"terrarium_egress_requests_total{namespace="it",app="vaulted",decision="allowed",code=""} 1"#),
        "{metrics}"
    );
    assert!(metrics.contains(r#"terrarium_egress_requests_total{namespace="it",app="vaulted",decision="denied",code="blocked_address"} 1"#), "{metrics}");

    // The calls are in the app's usage too, with the function's heap high-water mark.
    server.run_task("metering.flush");
    let usage: serde_json::Value =
        serde_json::from_str(&server.cli_ok(&["usage", "--app", "it/vaulted", "-o", "json"])).unwrap();
    assert_eq!(usage[0]["outbound_requests"], 2, "{usage}");
    assert!(usage[0]["outbound_bytes"].as_u64().unwrap() > 0, "{usage}");
    assert!(usage[0]["heap_bytes_max"].as_u64().unwrap() > 0, "{usage}");

    // Removing destroys every version and reloads the app.
    assert!(server.cli_ok(&["secrets", "rm", "it/vaulted", "API_TOKEN"]).contains("Removed API_TOKEN"));
    assert_eq!(value_of(&server, "it", "vaulted", "API_TOKEN"), serde_json::Value::Null);
    assert!(!server.cli(&["secrets", "rm", "it/vaulted", "API_TOKEN"]).status.success());

    // Now grep everything the platform wrote or answered.
    let mut surfaces = vec![
        ("audit log", api_get(&server, "/api/v1/audit?limit=10000")),
        ("egress log", api_get(&server, "/api/v1/egress?namespace=it&limit=10000")),
        ("metrics", api_get(&server, "/metrics")),
        ("secret listing", api_get(&server, "/api/v1/secrets?namespace=it")),
        ("app detail", api_get(&server, "/api/v1/apps/it/vaulted")),
        ("app logs", server.cli_ok(&["logs", "it/vaulted"])),
    ];
    let server_log = std::fs::read_to_string(server.stderr_log.as_ref().unwrap()).unwrap();
    assert!(server_log.contains("outbound fetch"), "the captured log is the server's");
    drop(server);
    surfaces.push(("server log", server_log));
    for file in ["terrarium.db", "terrarium.db-wal", "secrets-kek.json", "signing-keys.json"] {
        let mut bytes = Vec::new();
        if let Ok(mut opened) = std::fs::File::open(data_dir.join(file)) {
            opened.read_to_end(&mut bytes).unwrap();
        }
        surfaces.push((file, String::from_utf8_lossy(&bytes).into_owned()));
    }
    for (surface, text) in &surfaces {
        for value in [VALUE, SECOND] {
            assert!(!text.contains(value), "a secret value appears in the {surface}");
        }
    }
    let audit = &surfaces[0].1;
    for action in ["secret.set", "secret.remove"] {
        assert!(audit.contains(action), "{action} is audited");
    }
}

#[test]
fn only_owners_and_operators_change_secrets_and_an_owner_change_flags_them() {
    let server = Server::start("");
    server.cli_ok(&["users", "add", "bob", "--groups", "growth"]);
    server.cli_ok(&["roles", "grant", "it", "user:bob", "builder"]);
    let apps = tempfile::tempdir().unwrap();
    write_app(&apps.path().join("a"), "it", "owned", "user:admin", "terrarium://it/owned", &[]);
    server.deploy(&apps.path().join("a"));
    assert!(set_secret(&server, "it/owned", "KEY", "owned-value-1", &[]).status.success());

    // Bob (a builder, not the owner) may neither set nor remove; nor plant secrets for an app not yet deployed.
    let bob_password = {
        let created: serde_json::Value =
            serde_json::from_str(&server.cli_ok(&["users", "add", "bob2", "-o", "json"])).unwrap();
        server.cli_ok(&["roles", "grant", "it", "user:bob2", "builder"]);
        created["password"].as_str().unwrap().to_owned()
    };
    let admin_home = server.cli_home.path().join("terrarium/credentials.json");
    let admin_credentials = std::fs::read(&admin_home).unwrap();
    assert!(server.login("bob2", &bob_password).status.success());
    let refused = set_secret(&server, "it/owned", "KEY", "bob-value", &[]);
    assert!(stderr(&refused).contains("belongs to user:admin"), "{}", stderr(&refused));
    let refused = set_secret(&server, "it/not-yet", "KEY", "bob-value", &[]);
    assert!(stderr(&refused).contains("deploy it first"), "{}", stderr(&refused));
    assert!(!server.cli(&["secrets", "rm", "it/owned", "KEY"]).status.success());
    // Reading names is fine for anyone with a role there.
    assert!(server.cli_ok(&["secrets", "list", "it"]).contains("KEY"));
    std::fs::write(&admin_home, admin_credentials).unwrap();

    // A new owner: the secrets are flagged for rotation and the deployer is told.
    write_app(&apps.path().join("a"), "it", "owned", "user:bob2", "terrarium://it/owned", &[]);
    let deployed = server.deploy(&apps.path().join("a"));
    let warnings = deployed["warnings"].to_string();
    assert!(warnings.contains("flagged for rotation") && warnings.contains("KEY"), "{warnings}");
    let listed = server.cli_ok(&["secrets", "list", "it/owned"]);
    assert!(listed.contains("rotate: the owner changed from user:admin to user:bob2"), "{listed}");
    assert!(set_secret(&server, "it/owned", "KEY", "owned-value-2", &[]).status.success());
    assert!(!server.cli_ok(&["secrets", "list", "it/owned"]).contains("rotate:"), "a new value clears the flag");

    // Deleting the app destroys its secrets: a later app of that name starts without them.
    server.cli_ok(&["apps", "delete", "it/owned", "--yes"]);
    assert!(server.cli_ok(&["secrets", "list", "it"]).contains("No secrets"));
}

#[test]
fn vault_references_are_read_and_refreshed() {
    use test_support::vault::VaultShapedServer;
    let vault = VaultShapedServer::start("hvs.root", "role-1", "secret-id-1", Duration::from_secs(60));
    vault.put_kv("kv", "it/vaulty", serde_json::json!({ "API_TOKEN": "from-vault-1", "DB_URL": "postgres://db" }));
    let config = format!(
        "[secrets.vault]\naddress = \"{}\"\nauth = \"approle\"\nrole_id = \"role-1\"\nsecret_id_env = \"TEST_VAULT_SECRET_ID\"\ncache_secs = 1\n",
        vault.url()
    );
    let data_dir = tempfile::tempdir().unwrap().keep();
    let server = Server::start_with(&config, &data_dir, &[], &[("TEST_VAULT_SECRET_ID", "secret-id-1")]);
    let apps = tempfile::tempdir().unwrap();
    write_app(&apps.path().join("a"), "it", "vaulty", "user:admin", "vault://kv/it/vaulty", &[]);
    server.deploy(&apps.path().join("a"));
    assert_eq!(value_of(&server, "it", "vaulty", "API_TOKEN"), "from-vault-1");
    assert_eq!(value_of(&server, "it", "vaulty", "DB_URL"), "postgres://db");
    assert_eq!(vault.calls("login"), 1, "AppRole sign-in, once");

    // A new version in Vault reaches the running app within the cache time.
    vault.put_kv("kv", "it/vaulty", serde_json::json!({ "API_TOKEN": "from-vault-2" }));
    // The cache lasts a second: once it has lapsed, a refresh reads the new version.
    wait_for("the new Vault version to reach the app", || {
        server.run_task("secrets.vault_refresh");
        let value = value_of(&server, "it", "vaulty", "API_TOKEN");
        holds(value == "from-vault-2", || format!("API_TOKEN is {value}"))
    });
    assert_eq!(value_of(&server, "it", "vaulty", "DB_URL"), serde_json::Value::Null);

    // Another namespace's Vault path, and a missing secret, are refused at deploy with a way out.
    write_app(&apps.path().join("b"), "it", "other", "user:admin", "vault://kv/finance/payroll", &[]);
    let refused = server.cli(&["deploy", apps.path().join("b").to_str().unwrap()]);
    assert!(stderr(&refused).contains("vault://kv/it/payroll"), "{}", stderr(&refused));
    write_app(&apps.path().join("b"), "it", "other", "user:admin", "vault://kv/it/missing", &[]);
    let refused = server.cli(&["deploy", apps.path().join("b").to_str().unwrap()]);
    assert!(stderr(&refused).contains("vault kv put kv/it/missing"), "{}", stderr(&refused));
}

#[test]
fn a_server_without_vault_refuses_vault_references_clearly() {
    let server = Server::start("");
    let apps = tempfile::tempdir().unwrap();
    write_app(&apps.path().join("a"), "it", "vaulty", "user:admin", "vault://kv/it/vaulty", &[]);
    let refused = server.cli(&["deploy", apps.path().join("a").to_str().unwrap()]);
    assert!(stderr(&refused).contains("this server has no Vault configured"), "{}", stderr(&refused));
}

/// Opens every namespace's secret straight from the data directory, as a restarted server would.
fn every_secret_decrypts(data_dir: &Path, namespaces: usize) -> usize {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let db = Arc::new(store_sqlite::SqliteStore::open(&data_dir.join("terrarium.db")).await.unwrap());
        let kek = Arc::new(secrets::kek::KeyFile::open_or_create(&data_dir.join("secrets-kek.json")).unwrap());
        let key_count = kek.key_count();
        let store = secrets::SecretStore::new(db, kek);
        for index in 0..namespaces {
            let opened = store.open_app(&format!("ns{index}"), "app", "2026-11-22T00:00:00Z").await.unwrap();
            assert_eq!(opened["KEY"].expose(), format!("value-of-ns{index}"), "ns{index}");
        }
        key_count
    })
}

#[test]
fn kek_rotation_survives_kill_9_at_any_point() {
    const NAMESPACES: usize = 60;
    let data_dir = tempfile::tempdir().unwrap().keep();
    let server = Server::start_in("", &data_dir, &[]);
    let http = client();
    for index in 0..NAMESPACES {
        let response = http
            .put(format!("{}/api/v1/apps/ns{index}/app/secrets/KEY", server.url))
            .bearer_auth(&server.token)
            .json(&serde_json::json!({ "value": format!("value-of-ns{index}") }))
            .send()
            .unwrap();
        assert_eq!(response.status(), 201);
    }
    // One secret already past its expiry: the sweep at start reminds about it.
    let expired = http
        .put(format!("{}/api/v1/apps/ns0/app/secrets/OLD", server.url))
        .bearer_auth(&server.token)
        .json(&serde_json::json!({ "value": "old-value", "expires_at": "2026-01-01T00:00:00Z" }))
        .send()
        .unwrap();
    assert_eq!(expired.status(), 201);

    let mut server = Some(server);
    let mut interrupted = 0;
    // Kill right after the rotation starts, part-way, and near the end.
    for lines_before_kill in [1, 15, 45] {
        let running = server.take().unwrap_or_else(|| Server::start_in("", &data_dir, &[]));
        let response =
            http.post(format!("{}/api/v1/secrets/rotate-kek", running.url)).bearer_auth(&running.token).send().unwrap();
        assert_eq!(response.status(), 200);
        let mut lines = BufReader::new(response).lines();
        for _ in 0..lines_before_kill {
            if lines.next().is_none() {
                break;
            }
        }
        running.kill();
        let keys_left = every_secret_decrypts(&data_dir, NAMESPACES);
        if keys_left > 1 {
            interrupted += 1;
        }
    }
    assert!(interrupted >= 1, "at least one kill landed in the middle of a rotation");

    // A restart finishes the interrupted rotation by itself; apps read their secrets.
    let server = Server::start_in("", &data_dir, &[]);
    wait_for("the restart to finish the interrupted rotation (one key left)", || {
        let kek: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(data_dir.join("secrets-kek.json")).unwrap()).unwrap();
        let keys = kek["keys"].as_array().unwrap().len();
        holds(keys == 1, || format!("{keys} keys"))
    });
    let apps = tempfile::tempdir().unwrap();
    write_app(&apps.path().join("a"), "ns7", "app", "user:admin", "terrarium://ns7/app", &[]);
    server.deploy(&apps.path().join("a"));
    assert_eq!(value_of(&server, "ns7", "app", "KEY"), "value-of-ns7");
    let audit = api_get(&server, "/api/v1/audit?limit=10000");
    assert!(audit.contains("secrets.rotate_kek") && audit.contains("secret.expired"), "{audit}");
    assert!(!audit.contains("value-of-ns"), "no value in the audit log");
    // The CLI shows the progress of a rotation.
    let rotated = server.cli_ok(&["secrets", "rotate-kek"]);
    assert!(rotated.contains("60 data key(s) to re-wrap") && rotated.contains("Done"), "{rotated}");
    drop(server);
    assert_eq!(every_secret_decrypts(&data_dir, NAMESPACES), 1);
}

#[test]
fn internal_apis_receive_a_platform_token_they_can_verify() {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let (port, seen) = start_upstream();
    let config = "[egress]\nallow_internal = [\"127.0.0.1/32\"]\n\n[[egress.internal_apis]]\nhost = \"127.0.0.1\"\naudience = \"billing\"\n";
    let server = Server::start(config);
    let apps = tempfile::tempdir().unwrap();
    write_app(
        &apps.path().join("a"),
        "it",
        "caller",
        "user:admin",
        "terrarium://it/caller",
        &[format!("127.0.0.1:{port}")],
    );
    server.deploy(&apps.path().join("a"));
    assert!(set_secret(&server, "it/caller", "API_TOKEN", "app-pasted-key", &[]).status.success());
    let called = server
        .get("it", "caller", &format!("/?call=http://127.0.0.1:{port}/invoices"))
        .json::<serde_json::Value>()
        .unwrap();
    assert_eq!(called["status"], 200);

    let head = seen.lock().unwrap().last().cloned().unwrap();
    assert!(!head.contains("app-pasted-key"), "the app's own credential is replaced: {head}");
    let token = head
        .lines()
        .find_map(|line| {
            line.strip_prefix("authorization: Bearer ").or_else(|| line.strip_prefix("Authorization: Bearer "))
        })
        .unwrap_or_else(|| panic!("no bearer token: {head}"))
        .trim()
        .to_owned();
    let parts: Vec<&str> = token.split('.').collect();
    let header: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    assert_eq!(claims["sub"], "app:it/caller");
    assert_eq!(claims["aud"], "billing");
    assert_eq!(claims["token_use"], "service");
    assert_eq!(claims["iss"], server.url.as_str());
    assert!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap() <= 300, "short-lived");

    // The service verifies the signature with the platform's published keys.
    let jwks: serde_json::Value =
        client().get(format!("{}/.well-known/jwks.json", server.url)).send().unwrap().json().unwrap();
    let key =
        jwks["keys"].as_array().unwrap().iter().find(|key| key["kid"] == header["kid"]).expect("the kid is published");
    let public_key = URL_SAFE_NO_PAD.decode(key["x"].as_str().unwrap()).unwrap();
    let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    let signed = format!("{}.{}", parts[0], parts[1]);
    aws_lc_rs::signature::UnparsedPublicKey::new(&aws_lc_rs::signature::ED25519, &public_key)
        .verify(signed.as_bytes(), &signature)
        .expect("the token verifies against the JWKS");
}

#[test]
fn secrets_of_an_app_past_its_ttl_are_flagged_for_rotation() {
    let (port, received) = crate::budgets::start_receiver();
    let config = format!("[[notify.webhooks]]\nurl = \"http://127.0.0.1:{port}/hook\"\n");
    let data_dir = tempfile::tempdir().unwrap().keep();
    let server = Server::start_in(&config, &data_dir, &[]);
    let apps = tempfile::tempdir().unwrap();
    let dir = apps.path().join("a");
    write_app(&dir, "it", "aging", "user:admin", "terrarium://it/aging", &[]);
    let manifest = std::fs::read_to_string(dir.join("terrarium.yaml")).unwrap();
    std::fs::write(
        dir.join("terrarium.yaml"),
        manifest.replace("  runtime: function\n", "  runtime: function\n  ttlDays: 30\n"),
    )
    .unwrap();
    server.deploy(&dir);
    assert!(set_secret(&server, "it/aging", "KEY", "aging-value", &[]).status.success());

    // Twenty days on, the 30-day TTL holds: nothing is flagged.
    server.advance_clock(Duration::from_secs(20 * 86_400));
    server.run_task("secrets.sweep");
    assert!(!server.cli_ok(&["secrets", "list", "it/aging"]).contains("rotate:"));

    // Forty days after the deploy, the TTL has ended.
    server.advance_clock(Duration::from_secs(20 * 86_400));
    server.run_task("secrets.sweep");
    let listed = server.cli_ok(&["secrets", "list", "it/aging"]);
    let deployed: serde_json::Value =
        serde_json::from_str(&server.cli_ok(&["apps", "get", "it/aging", "-o", "json"])).unwrap();
    let deployed_on = time::OffsetDateTime::parse(
        deployed["updated_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let ended = (deployed_on + time::Duration::days(30)).date();
    assert!(listed.contains(&format!("rotate: the app's TTL of 30 days ended on {ended}")), "{listed}");
    assert!(api_get(&server, "/api/v1/audit?limit=1000").contains("secret.flag_rotation"));
    // The platform team is told through the notifier, with names only.
    wait_for("the rotation notification at the webhook", || {
        let received = received.lock().unwrap();
        holds(received.iter().any(|body| body["kind"] == "secret.rotation"), || format!("{:?}", *received))
    });
    let sent = received.lock().unwrap().iter().find(|body| body["kind"] == "secret.rotation").cloned().unwrap();
    assert!(
        sent["subject"].as_str().unwrap().contains("it/aging") && !sent.to_string().contains("aging-value"),
        "{sent}"
    );
}

#[test]
fn a_pasted_key_stops_the_deploy_on_the_laptop_and_on_the_server() {
    // A GitHub-format token, built here so no literal token lives in the repository.
    let token = format!("ghp_{}", "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8");
    let rules = tempfile::tempdir().unwrap();
    let rules_file = rules.path().join("gitleaks.toml");
    std::fs::write(
        &rules_file,
        "[extend]\nuseDefault = true\n\n[[rules]]\nid = \"acme-internal-key\"\ndescription = \"ACME internal API key\"\nregex = '''acme_[a-z0-9]{24}'''\nkeywords = [\"acme_\"]\n",
    )
    .unwrap();
    let server = Server::start(&format!("[scan]\nrules_file = \"{}\"\n", rules_file.display()));
    let apps = tempfile::tempdir().unwrap();
    let dir = apps.path().join("a");
    write_app(&dir, "it", "leaky", "user:admin", "terrarium://it/leaky", &[]);
    let source = std::fs::read_to_string(dir.join("functions/index.js")).unwrap();
    std::fs::write(dir.join("functions/index.js"), format!("const GITHUB = \"{token}\";\n{source}")).unwrap();

    // On the laptop: nothing is uploaded; the finding names file and line, masked, with a way out.
    let refused = server.cli(&["deploy", dir.to_str().unwrap()]);
    let message = stderr(&refused);
    assert!(!refused.status.success());
    assert!(message.contains("functions/index.js:1:17") && message.contains("github-token"), "{message}");
    assert!(message.contains("ghp_") && !message.contains(&token), "masked: {message}");
    assert!(
        message.contains("terrarium secrets set it/leaky NAME") && message.contains("terrarium:allow-secret"),
        "{message}"
    );
    assert!(!server.cli(&["validate", dir.to_str().unwrap()]).status.success(), "validate says so too");
    assert!(!server.cli_ok(&["apps", "list"]).contains("leaky"), "nothing was deployed");

    // An allow comment for a false positive lets it through.
    std::fs::write(
        dir.join("functions/index.js"),
        format!("const GITHUB = \"{token}\"; // terrarium:allow-secret\n{source}"),
    )
    .unwrap();
    server.deploy(&dir);

    // On the server: the operator's own rule catches what the built-in rules on the laptop do not.
    let internal = format!("acme_{}", "k3j4h5g6f7d8s9a0q1w2e3r4");
    std::fs::write(dir.join("functions/index.js"), format!("const INTERNAL = \"{internal}\";\n{source}")).unwrap();
    let refused = server.cli(&["deploy", dir.to_str().unwrap()]);
    let message = stderr(&refused);
    assert!(message.contains("acme-internal-key") && !message.contains(&internal), "{message}");
    let audit = api_get(&server, "/api/v1/audit?limit=100");
    assert!(audit.contains("\"refused\"") && audit.contains("likely secret") && !audit.contains(&internal), "{audit}");
}

#[test]
fn an_apps_log_never_shows_its_secrets_whatever_it_logs_or_throws() {
    const VALUE: &str = "s3cr3t-LOGGED-8e41d2";
    let server = Server::start("");
    let apps = tempfile::tempdir().unwrap();
    let dir = apps.path().join("chatty");
    write_app(&dir, "it", "chatty", "user:admin", "terrarium://it/chatty", &[]);
    std::fs::write(
        dir.join("functions/index.js"),
        r#"export default {
  async fetch(request, env) {
    const how = new URL(request.url).searchParams.get("how");
    if (how === "log") {
      console.log("the token is", env.API_TOKEN);
      console.warn(`as base64: ${btoa(env.API_TOKEN)}, in a query: ?t=${encodeURIComponent(env.API_TOKEN)}`);
      console.error({ nested: { token: env.API_TOKEN } });
      return new Response("logged");
    }
    if (how === "throw") throw new Error("cannot use " + env.API_TOKEN);
    if (how === "reject") return Promise.reject(new TypeError("rejected with " + env.API_TOKEN));
    return new Response("ok");
  },
};
"#,
    )
    .unwrap();
    server.deploy(&dir);
    let output = set_secret(&server, "it/chatty", "API_TOKEN", VALUE, &[]);
    assert!(output.status.success(), "{}", stderr(&output));

    assert_eq!(server.get("it", "chatty", "/?how=log").text().unwrap(), "logged");
    for how in ["throw", "reject"] {
        let failed = server.get("it", "chatty", &format!("/?how={how}"));
        assert_eq!(failed.status(), 500, "{how}");
        assert!(!failed.text().unwrap().contains(VALUE), "{how}: the error page shows the secret");
    }
    let logs = server.cli_ok(&["logs", "it/chatty"]);
    assert!(!logs.contains(VALUE) && !logs.contains("czNjcjN0LUxPR0dFRC04ZTQxZDI"), "{logs}");
    assert!(logs.contains("the token is [redacted:API_TOKEN]"), "{logs}");
    assert!(logs.contains("as base64: [redacted:API_TOKEN], in a query: ?t=[redacted:API_TOKEN]"), "{logs}");
    assert!(logs.contains("cannot use [redacted:API_TOKEN]"), "{logs}");
    assert!(logs.contains("rejected with [redacted:API_TOKEN]"), "{logs}");
    assert!(logs.matches("[redacted:API_TOKEN]").count() >= 6, "{logs}");
}
