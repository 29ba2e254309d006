//! The deploy path: CLI validation, packing, refusals, revisions, rollback, delete, restart.

use std::io::Write;

use crate::support::{Server, client, copy_fixture, fixture, stderr, stdout};

#[test]
fn init_deploy_edit_redeploy_rollback() {
    // The README's tour, under the policies as they ship: `init` makes the signed-in user the
    // owner, a known account, so the first deploy passes them.
    let server = Server::start("[policy]\nbundled = true\n");
    let work = tempfile::tempdir().unwrap();
    let init = std::process::Command::new(crate::support::BIN)
        .args(["init", "--template", "static-edge", "hello"])
        .env("XDG_CONFIG_HOME", server.cli_home.path())
        .current_dir(work.path())
        .output()
        .unwrap();
    assert!(init.status.success(), "{}", stderr(&init));
    let app_dir = work.path().join("hello");

    let first = server.deploy(&app_dir);
    assert_eq!(first["revision"], 1);
    assert_eq!(first["changed"], true);
    let urls: Vec<String> = serde_json::from_value(first["urls"].clone()).unwrap();
    let namespace = first["namespace"].as_str().unwrap().to_owned();
    assert!(urls[0].ends_with(&format!("/apps/{namespace}/hello/")), "{urls:?}");
    // The template leaves the visibility to the platform default: signed-in users only.
    assert_eq!(client().get(&urls[0]).send().unwrap().status(), 401);
    let page = client().get(&urls[0]).bearer_auth(&server.token).send().unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));

    // The function answers; then a new version of it is served after a deploy, no restart.
    let functions_dir = app_dir.join("functions");
    let entry = std::fs::read_dir(&functions_dir).unwrap().next().unwrap().unwrap().path();
    let route_probe = |body: &str| {
        let source = format!("export default {{ async fetch() {{ return new Response({body:?}); }} }};\n");
        std::fs::write(&entry, source).unwrap();
    };
    route_probe("version two");
    let second = server.deploy(&app_dir);
    assert_eq!(second["revision"], 2);
    let api_url = function_url(&server, &app_dir, &namespace);
    assert_eq!(client().get(&api_url).bearer_auth(&server.token).send().unwrap().text().unwrap(), "version two");

    // Deploying the same folder again changes nothing.
    let same = server.deploy(&app_dir);
    assert_eq!(same["changed"], false);
    assert_eq!(same["revision"], 2);

    // Rollback brings the first version back.
    server.cli_ok(&["apps", "rollback", &format!("{namespace}/hello")]);
    let body = client().get(&api_url).bearer_auth(&server.token).send().unwrap().text().unwrap();
    assert_ne!(body, "version two");
    let detail: serde_json::Value =
        serde_json::from_str(&server.cli_ok(&["apps", "get", &format!("{namespace}/hello"), "--output", "json"]))
            .unwrap();
    assert_eq!(detail["active_revision"], 1);
    assert_eq!(detail["revisions"].as_array().unwrap().len(), 2);

    // Roll forward to an explicit revision, then delete.
    server.cli_ok(&["apps", "rollback", &format!("{namespace}/hello"), "--to", "2"]);
    assert_eq!(client().get(&api_url).bearer_auth(&server.token).send().unwrap().text().unwrap(), "version two");
    let table = server.cli_ok(&["apps", "list"]);
    assert!(table.contains("hello"), "{table}");
    server.cli_ok(&["apps", "delete", &format!("{namespace}/hello"), "--yes"]);
    assert_eq!(client().get(&urls[0]).bearer_auth(&server.token).send().unwrap().status(), 404);
    let missing = server.cli(&["apps", "get", &format!("{namespace}/hello")]);
    assert!(!missing.status.success());
    assert!(stderr(&missing).contains("does not exist"), "{}", stderr(&missing));

    // Every change and every read is in the audit log with its principal.
    let audit: serde_json::Value = client()
        .get(format!("{}/api/v1/audit?namespace={namespace}", server.url))
        .bearer_auth(&server.token)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let actions: Vec<&str> = audit.as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    // Reads are in it too: who looked at what (the audit query itself is the newest).
    assert_eq!(
        actions,
        ["audit.list", "app.delete", "app.rollback", "app.get", "app.rollback", "app.deploy", "app.deploy"]
    );
}

/// The URL of the template's first function route, with any `*` replaced.
fn function_url(server: &Server, app_dir: &std::path::Path, namespace: &str) -> String {
    let manifest = std::fs::read_to_string(app_dir.join("terrarium.yaml")).unwrap();
    let route = manifest
        .lines()
        .find_map(|line| line.trim().strip_prefix("- route:"))
        .expect("the template has a function route")
        .trim()
        .replace('*', "probe");
    server.app_url(namespace, "hello", &route)
}

#[test]
fn three_mistakes_three_messages() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("terrarium.yaml"),
        "apiVersion: terrarium.dev/v1\nkind: MicroApp\nmetadata:\n  name: Bad_Name\n  namespace: it\nspec:\n  owner: user:ana\n  runtime: static\n  static:\n    dir: public\n  ttlDays: ninety\n  quotas:\n    brust: 4\n",
    )
    .unwrap();
    let output = std::process::Command::new(crate::support::BIN)
        .args(["validate", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let text = format!("{}{}", stdout(&output), stderr(&output));
    for expected in [
        "terrarium.yaml:4:9",
        "metadata.name",
        "terrarium.yaml:11:12",
        "spec.ttlDays",
        "terrarium.yaml:13:5",
        "spec.quotas.brust",
        "burst",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}

#[test]
fn refusals_from_cli_and_server() {
    let server = Server::start("[limits]\nmax_bundle_bytes = 100000\nmax_bundle_files = 20\n");

    // The CLI refuses a symlink before uploading anything.
    let linked = copy_fixture("site");
    std::os::unix::fs::symlink("/etc/passwd", linked.path().join("public/passwd")).unwrap();
    let output = server.cli(&["deploy", linked.path().to_str().unwrap()]);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("symbolic link"), "{}", stderr(&output));

    // A missing entry file is caught offline.
    let missing = copy_fixture("neighbour");
    std::fs::remove_file(missing.path().join("functions/api.js")).unwrap();
    let output = server.cli(&["deploy", missing.path().to_str().unwrap()]);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("functions/api.js"), "{}", stderr(&output));

    // The server enforces its own caps on size and file count.
    let big = copy_fixture("site");
    std::fs::write(big.path().join("public/big.bin"), vec![7u8; 200_000]).unwrap();
    let output = server.cli(&["deploy", big.path().to_str().unwrap()]);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("larger than 100000 bytes"), "{}", stderr(&output));
    let many = copy_fixture("site");
    for i in 0..30 {
        std::fs::write(many.path().join(format!("public/f{i}.txt")), "x").unwrap();
    }
    let output = server.cli(&["deploy", many.path().to_str().unwrap()]);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("more than 20 files"), "{}", stderr(&output));

    // Hand-made uploads the CLI would never send: traversal, absolute path, symlink, no manifest.
    let upload = |archive: Vec<u8>| {
        client()
            .post(format!("{}/api/v1/deploy", server.url))
            .bearer_auth(&server.token)
            .header("content-type", "application/x-tar")
            .body(archive)
            .send()
            .unwrap()
    };
    for (path, kind, expected) in [
        ("../escape.txt", tar_kind::FILE, "leaves the app folder"),
        ("/etc/cron.d/evil", tar_kind::FILE, "absolute path"),
        ("public/link", tar_kind::SYMLINK, "symbolic link"),
    ] {
        let response = upload(raw_tar(path, kind));
        assert_eq!(response.status(), 400, "{path}");
        let body: serde_json::Value = response.json().unwrap();
        assert!(body["message"].as_str().unwrap().contains(expected), "{path}: {body}");
    }
    let response = upload(raw_tar("public/index.html", tar_kind::FILE));
    assert_eq!(response.status(), 400);
    assert!(response.text().unwrap().contains("terrarium.yaml"));

    // The server checks the entry file again, whatever the client did.
    let mut files = bundle::Bundle::new();
    let limits = bundle::BundleLimits { max_total_bytes: 100_000, max_files: 20 };
    files
        .insert("terrarium.yaml", std::fs::read(fixture("neighbour").join("terrarium.yaml")).unwrap(), &limits)
        .unwrap();
    files.insert("public/index.html", b"<h1>x</h1>".to_vec(), &limits).unwrap();
    let response = upload(files.to_tar());
    assert_eq!(response.status(), 422);
    let body: serde_json::Value = response.json().unwrap();
    assert!(body["details"][0].as_str().unwrap().contains("functions/api.js"), "{body}");

    // Without a token nothing is deployed, and the denial is audited.
    let anonymous = client().post(format!("{}/api/v1/deploy", server.url)).body(files.to_tar()).send().unwrap();
    assert_eq!(anonymous.status(), 401);
    assert!(anonymous.headers().contains_key("www-authenticate"));
    let audit: serde_json::Value =
        client().get(format!("{}/api/v1/audit", server.url)).bearer_auth(&server.token).send().unwrap().json().unwrap();
    assert!(audit.as_array().unwrap().iter().any(|e| e["outcome"] == "denied" && e["action"] == "app.deploy"));
    let apps: serde_json::Value = serde_json::from_str(&server.cli_ok(&["apps", "list", "--output", "json"])).unwrap();
    assert_eq!(apps.as_array().unwrap().len(), 0);
}

mod tar_kind {
    pub const FILE: u8 = b'0';
    pub const SYMLINK: u8 = b'2';
}

/// A one-entry tar archive with a raw name, bypassing the tar crate's own path checks.
fn raw_tar(path: &str, kind: u8) -> Vec<u8> {
    let mut header = [0u8; 512];
    header[..path.len()].copy_from_slice(path.as_bytes());
    header[100..107].copy_from_slice(b"0000644");
    header[108..115].copy_from_slice(b"0000000");
    header[116..123].copy_from_slice(b"0000000");
    header[124..135].copy_from_slice(b"00000000000");
    header[136..147].copy_from_slice(b"00000000000");
    header[156] = kind;
    if kind == tar_kind::SYMLINK {
        header[157..168].copy_from_slice(b"/etc/passwd");
    }
    header[257..263].copy_from_slice(b"ustar\0");
    header[263..265].copy_from_slice(b"00");
    header[148..156].copy_from_slice(b"        ");
    let checksum: u32 = header.iter().map(|&b| u32::from(b)).sum();
    let mut field = Vec::new();
    write!(field, "{checksum:06o}\0 ").unwrap();
    header[148..156].copy_from_slice(&field);
    let mut archive = header.to_vec();
    archive.extend_from_slice(&[0u8; 1024]);
    archive
}

#[test]
fn namespaces_and_restart_keep_everything() {
    let server = Server::start("");
    server.cli_ok(&["namespaces", "create", "growth"]);
    let again = server.cli(&["namespaces", "create", "growth"]);
    assert!(!again.status.success());
    assert!(stderr(&again).contains("already exists"));
    let bad = server.cli(&["namespaces", "create", "Not_Valid"]);
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("not a valid namespace name"), "{}", stderr(&bad));

    server.deploy(&fixture("site"));
    let neighbour = server.deploy(&fixture("neighbour"));
    let before = server.get("it", "neighbour", "/api/x").text().unwrap();
    let data_dir = server.kill();

    // A killed server restarts on the same data and serves the same revisions.
    let server = Server::start_in("", &data_dir, &[]);
    let namespaces = server.cli_ok(&["namespaces", "list"]);
    assert!(namespaces.contains("growth") && namespaces.contains("it"), "{namespaces}");
    assert_eq!(server.get("it", "site", "/").status(), 200);
    let after = server.get("it", "neighbour", "/api/x");
    assert_eq!(after.status(), 200);
    assert_eq!(after.text().unwrap(), before);
    let detail: serde_json::Value =
        serde_json::from_str(&server.cli_ok(&["apps", "get", "it/neighbour", "--output", "json"])).unwrap();
    assert_eq!(detail["active_revision"], neighbour["revision"]);
}

#[test]
fn policy_test_and_eval_work_offline() {
    let run = |args: &[&str]| std::process::Command::new(crate::support::BIN).args(args).output().unwrap();
    let tested = run(&["policy", "test"]);
    let out = crate::support::stdout(&tested);
    assert!(
        tested.status.success()
            && out.contains("policy tests passed")
            && out.contains("PASS  terrarium.policies.egress_test"),
        "{out}"
    );

    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("terrarium.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: terrarium.dev/v1\nkind: MicroApp\nmetadata:\n  name: lunch\n  namespace: growth\nspec:\n  owner: user:ana\n  runtime: function\n  ttlDays: 120\n  access:\n    visibility: public\n  allowedEgress:\n    - 10.0.0.7\n  functions:\n    - route: /*\n      entry: functions/index.js\n",
    )
    .unwrap();
    let evaluated = run(&["policy", "eval", "-f", manifest.to_str().unwrap()]);
    let out = crate::support::stdout(&evaluated);
    assert!(!evaluated.status.success());
    assert!(
        out.contains("deny      egress:") && out.contains("deny      ttl:") && out.contains("approval  exposure:"),
        "{out}"
    );

    // A policy directory of the team's own: a failing Rego test fails the command.
    let policies = tempfile::tempdir().unwrap();
    std::fs::write(
        policies.path().join("names.rego"),
        "package terrarium.policies.names\n\ndeny contains \"app names start with the team\" if {\n\tnot startswith(input.manifest.metadata.name, input.manifest.metadata.namespace)\n}\n",
    )
    .unwrap();
    std::fs::write(
        policies.path().join("names_test.rego"),
        "package terrarium.policies.names_test\n\nimport data.terrarium.policies.names\n\ntest_prefixed if {\n\tcount(names.deny) == 0 with input as {\"manifest\": {\"metadata\": {\"name\": \"growth-x\", \"namespace\": \"growth\"}}}\n}\n\ntest_wrong_on_purpose if {\n\tcount(names.deny) == 0 with input as {\"manifest\": {\"metadata\": {\"name\": \"x\", \"namespace\": \"growth\"}}}\n}\n",
    )
    .unwrap();
    let tested = run(&["policy", "test", policies.path().to_str().unwrap()]);
    let out = crate::support::stdout(&tested);
    assert!(
        !tested.status.success()
            && out.contains("PASS  terrarium.policies.names_test.test_prefixed")
            && out.contains("FAIL  terrarium.policies.names_test.test_wrong_on_purpose"),
        "{out}"
    );
    let evaluated = run(&[
        "policy",
        "eval",
        "-f",
        manifest.to_str().unwrap(),
        "--policies",
        policies.path().to_str().unwrap(),
        "-o",
        "json",
    ]);
    let decision: serde_json::Value = serde_json::from_slice(&evaluated.stdout).unwrap();
    assert_eq!(decision["violations"][0]["policy"], "names");
}

/// `terrarium validate` loads the functions offline as the server's deploy does: the mistakes
/// only `deploy` used to find are found before anything is uploaded, in the server's words.
#[test]
fn validate_loads_every_function_as_the_deploy_does() {
    let server = Server::start("");
    let check = |source: &str, expected: &[&str]| {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("functions")).unwrap();
        std::fs::write(
            dir.path().join("terrarium.yaml"),
            "apiVersion: terrarium.dev/v1\nkind: MicroApp\nmetadata:\n  name: broken\n  namespace: it\nspec:\n  owner: user:admin\n  runtime: function\n  functions:\n    - route: /*\n      entry: functions/api.js\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("functions/api.js"), source).unwrap();
        let validated = std::process::Command::new(crate::support::BIN)
            .args(["validate", dir.path().to_str().unwrap()])
            .output()
            .unwrap();
        let said = format!("{}{}", stdout(&validated), stderr(&validated));
        let deployed = server.cli(&["deploy", dir.path().to_str().unwrap()]);
        let server_said = format!("{}{}", stdout(&deployed), stderr(&deployed));
        match expected.is_empty() {
            true => {
                assert!(validated.status.success(), "{said}");
                assert!(said.contains("its function loads"), "{said}");
                assert!(deployed.status.success(), "{server_said}");
            }
            false => {
                assert!(!validated.status.success(), "validate passed {source}: {said}");
                assert!(!deployed.status.success(), "deploy passed {source}: {server_said}");
                for fragment in expected {
                    assert!(said.contains(fragment), "validate: {fragment:?} missing in {said}");
                    assert!(server_said.contains(fragment), "deploy: {fragment:?} missing in {server_said}");
                }
            }
        }
    };
    check(
        "export default { fetch( { return new Response('x'); } };",
        &["the app's code does not load", "functions/api.js", "SyntaxError"],
    );
    check("export const handler = { fetch() {} };", &["the app's code does not load", "default export"]);
    check(
        "const fs = require('fs');\nexport default { fetch() { return new Response('x'); } };",
        &["the app's code does not load", "require"],
    );
    check("export default { fetch() { return new Response('fine'); } };", &[]);
}

/// What the code will meet at run time is said before: at validate, and in the deploy's warnings.
#[test]
fn validate_and_deploy_name_unlisted_hosts_unknown_env_names_and_node_globals() {
    let server = Server::start("");
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("functions")).unwrap();
    std::fs::write(
        dir.path().join("terrarium.yaml"),
        "apiVersion: terrarium.dev/v1\nkind: MicroApp\nmetadata:\n  name: weather\n  namespace: it\nspec:\n  owner: user:admin\n  runtime: function\n  allowedEgress:\n    - api.example.com\n  vars:\n    CITY: Lisbon\n  functions:\n    - route: /*\n      entry: functions/api.js\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("functions/api.js"),
        "export default {\n  async fetch(request, env) {\n    const answer = await fetch(\"https://api.weather.example/v1?q=\" + env.CITY, { headers: { key: env.WEATHER_KEY } });\n    if (!answer.ok) console.log(process.env.DEBUG);\n    return new Response(await answer.text());\n  },\n};\n",
    )
    .unwrap();
    let validated = std::process::Command::new(crate::support::BIN)
        .args(["validate", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(validated.status.success(), "hints are warnings: {}", stderr(&validated));
    let said = stderr(&validated);
    for expected in [
        "warning: functions/api.js:3: fetch(\"https://api.weather.example/…\") will be refused: spec.allowedEgress does not list api.weather.example",
        "warning: functions/api.js:3: env.WEATHER_KEY is not in spec.vars",
        "warning: functions/api.js:4: process.env is Node.js's",
    ] {
        assert!(said.contains(expected), "missing {expected:?} in {said}");
    }
    let deployed = server.deploy(dir.path());
    let warnings = deployed["warnings"].to_string();
    assert!(
        warnings.contains("functions/api.js:3: fetch(\\\"https://api.weather.example/…\\\") will be refused"),
        "{warnings}"
    );
    assert!(warnings.contains("functions/api.js:4: process.env is Node.js's"), "{warnings}");
}

/// At deploy the server knows the app's secret names: an `env.NAME` that is none of them is
/// said, one that is a secret is not.
#[test]
fn the_deploy_tells_env_names_that_are_no_secret_of_the_app() {
    let server = Server::start("");
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("functions")).unwrap();
    std::fs::write(
        dir.path().join("terrarium.yaml"),
        "apiVersion: terrarium.dev/v1\nkind: MicroApp\nmetadata:\n  name: keyed\n  namespace: it\nspec:\n  owner: user:admin\n  runtime: function\n  secretsRef: terrarium://it/keyed\n  functions:\n    - route: /*\n      entry: functions/api.js\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("functions/api.js"),
        "export default { fetch(request, env) { return new Response(env.API_TOKEN + env.API_TOKNE); } };\n",
    )
    .unwrap();
    let first = server.deploy(dir.path());
    let warnings = first["warnings"].to_string();
    assert!(warnings.contains("env.API_TOKEN is not in spec.vars, not a binding and not a secret"), "{warnings}");
    let mut set = server
        .command(&["secrets", "set", "it/keyed", "API_TOKEN"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut set.stdin.take().unwrap(), b"value-of-the-token\n").unwrap();
    assert!(set.wait_with_output().unwrap().status.success());
    std::fs::write(
        dir.path().join("functions/api.js"),
        "export default { fetch(request, env) { return new Response(env.API_TOKEN + env.API_TOKNE + 1); } };\n",
    )
    .unwrap();
    let second = server.deploy(dir.path());
    let warnings = second["warnings"].to_string();
    assert!(!warnings.contains("env.API_TOKEN "), "{warnings}");
    assert!(
        warnings.contains("env.API_TOKNE is not in spec.vars, not a binding and not a secret of the app"),
        "{warnings}"
    );
}
