//! App data, key-value: Workers KV code running unmodified through `env.KV`, its limits and
//! errors in Workers' words, the platform's counter and compare-and-set, expiry on the
//! platform's clock, data that outlives a restart, and apps that never see each other's keys.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{DataBackend, Server, client, copy_fixture, on_both_backends};

fn call(server: &Server, namespace: &str, path: &str) -> Value {
    let response = client().post(server.app_url(namespace, "poll", path)).send().unwrap();
    if response.status() != 200 {
        let logs = server.cli(&["logs", &format!("{namespace}/poll")]);
        panic!("{path}: {}\n{}", response.status(), crate::support::stdout(&logs));
    }
    response.json().unwrap()
}

/// The poll, deployed into `namespace`.
fn deploy_poll(server: &Server, namespace: &str) {
    let app = copy_fixture("kv-poll");
    let manifest = std::fs::read_to_string(app.path().join("terrarium.yaml")).unwrap();
    std::fs::write(
        app.path().join("terrarium.yaml"),
        manifest.replace("namespace: it", &format!("namespace: {namespace}")),
    )
    .unwrap();
    server.deploy(app.path());
}

on_both_backends!(
    votes_survive_a_restart_and_stay_in_their_namespace,
    the_workers_kv_api_with_its_limits_and_the_platforms_additions,
    data_usage_export_and_import_carry_an_apps_keys_over_its_deletion,
    a_namespace_stops_at_its_storage_quota_and_deleting_makes_room,
    a_confidential_apps_values_are_sealed_at_rest,
);

fn start(backend: DataBackend) -> Server {
    let settings = backend.settings();
    Server::start_on(&settings, &tempfile::tempdir().unwrap().keep())
}

fn votes_survive_a_restart_and_stay_in_their_namespace(backend: DataBackend) {
    let data_dir = tempfile::tempdir().unwrap();
    let settings = backend.settings();
    let server = Server::start_on(&settings, data_dir.path());
    server.cli_ok(&["namespaces", "create", "other"]);
    deploy_poll(&server, "it");
    deploy_poll(&server, "other");
    assert_eq!(call(&server, "it", "/vote?choice=pizza"), json!({ "pizza": 1 }));
    assert_eq!(call(&server, "it", "/vote?choice=pizza"), json!({ "pizza": 2 }));
    assert_eq!(call(&server, "it", "/vote?choice=soup"), json!({ "soup": 1 }));
    assert_eq!(call(&server, "other", "/vote?choice=pizza"), json!({ "pizza": 1 }), "the same app elsewhere");
    assert_eq!(call(&server, "it", "/results"), json!({ "pizza": 2, "soup": 1 }));

    let data_dir_path = server.kill();
    let server = Server::start_on(&settings, &data_dir_path);
    assert_eq!(call(&server, "it", "/results"), json!({ "pizza": 2, "soup": 1 }), "acknowledged votes are kept");
    assert_eq!(call(&server, "other", "/results"), json!({ "pizza": 1 }));

    // Deleting the app deletes its data, and says so in the audit log; its neighbour keeps its own.
    server.cli_ok(&["apps", "delete", "it/poll", "--yes"]);
    let audit = server.audit_events("?namespace=it&limit=50");
    assert!(audit.to_string().contains("KV: 2 key(s) deleted with the app"), "{audit}");
    deploy_poll(&server, "it");
    assert_eq!(call(&server, "it", "/results"), json!({}), "a new app of the same name starts empty");
    assert_eq!(call(&server, "other", "/results"), json!({ "pizza": 1 }));
}

fn the_workers_kv_api_with_its_limits_and_the_platforms_additions(backend: DataBackend) {
    let server = start(backend);
    deploy_poll(&server, "it");

    let types = call(&server, "it", "/types");
    assert_eq!(types["json"], json!({ "name": "ana", "lunch": "pizza" }));
    assert_eq!(types["text"], json!("{\"name\":\"ana\",\"lunch\":\"pizza\"}"));
    assert_eq!(types["stream"], types["text"]);
    assert_eq!(types["arrayBuffer"], json!([1, 2, 3]));
    assert_eq!(types["withMetadata"], json!({ "value": { "name": "ana", "lunch": "pizza" }, "metadata": { "v": 2 } }));
    assert_eq!(types["missing"], Value::Null);
    assert_eq!(types["missingWithMetadata"], json!({ "value": null, "metadata": null, "cacheStatus": null }));
    assert_eq!(types["deleted"], Value::Null);

    let limits = call(&server, "it", "/limits");
    let error = |name: &str| limits[name]["error"].as_str().unwrap_or_else(|| panic!("{name}: {limits}")).to_owned();
    assert_eq!(
        error("longKey"),
        "Error: KV GET failed: 414 UTF-8 encoded length of 513 exceeds key length limit of 512."
    );
    assert_eq!(error("dot"), "Error: Illegal key name \".\". Please use a different name.");
    assert!(error("bigMetadata").starts_with("Error: KV PUT failed: 413 Metadata length of"), "{limits}");
    assert!(error("shortTtl").contains("Expiration TTL must be at least 60"), "{limits}");
    assert!(error("badValue").starts_with("TypeError: KV put() accepts only strings"), "{limits}");
    assert!(error("badLimit").starts_with("TypeError: KV LIST failed: 400 Invalid limit"), "{limits}");
    assert!(error("badType").starts_with("TypeError: KV GET failed: Unknown response type"), "{limits}");

    // Counters and locks, which Workers KV's eventual consistency breaks.
    for expected in 1..=3 {
        assert_eq!(call(&server, "it", "/counter?key=hits"), json!({ "count": expected }));
    }
    assert_eq!(call(&server, "it", "/counter?key=hits&by=-10"), json!({ "count": -7 }));
    let lock = call(&server, "it", "/lock");
    assert_eq!(
        lock,
        json!({ "first": "string", "second": null, "swapped": "string", "stale": null, "value": "released" })
    );

    let page = call(&server, "it", "/page");
    let names =
        |list: &Value| list["keys"].as_array().unwrap().iter().map(|key| key["name"].clone()).collect::<Vec<_>>();
    assert_eq!(names(&page["first"]), [json!("page:0"), json!("page:1")]);
    assert_eq!(page["first"]["list_complete"], false);
    assert_eq!(names(&page["second"]), [json!("page:2"), json!("page:3")]);
    assert_eq!(names(&page["rest"]), [json!("page:4")]);
    assert_eq!(page["rest"]["list_complete"], true);
    assert_eq!(page["first"]["keys"][1]["metadata"], json!({ "i": 1 }));

    // Expiry follows the platform's clock: past it the key is gone, before any sweep runs.
    assert_eq!(call(&server, "it", "/expire"), json!({ "soon": "here" }));
    server.advance_clock(Duration::from_secs(61));
    assert_eq!(call(&server, "it", "/soon"), json!({ "soon": null, "listed": 0 }));
    server.run_task("kv.sweep");
}

fn data_usage_export_and_import_carry_an_apps_keys_over_its_deletion(backend: DataBackend) {
    let server = start(backend);
    deploy_poll(&server, "it");
    call(&server, "it", "/vote?choice=pizza");
    call(&server, "it", "/vote?choice=pizza");
    call(&server, "it", "/vote?choice=soup");

    let usage: Value = serde_json::from_str(&server.cli_ok(&["data", "usage", "it/poll", "--output", "json"])).unwrap();
    assert_eq!(usage["kv"]["keys"], 2, "{usage}");
    assert!(usage["kv"]["bytes"].as_u64().unwrap() > 0, "{usage}");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("poll.jsonl");
    server.cli_ok(&["data", "export", "it/poll", "-f", file.to_str().unwrap()]);
    let exported = std::fs::read_to_string(&file).unwrap();
    assert_eq!(exported.lines().count(), 2, "one line per key:\n{exported}");
    for line in exported.lines() {
        let entry: Value = serde_json::from_str(line).unwrap();
        assert!(entry["key"].is_string(), "{line}");
    }

    // A signed-in stranger can neither read nor write the app's data.
    let stranger = server.user_token("stranger", &[]);
    let refused = server.cli_as(&stranger, &["data", "export", "it/poll"]);
    assert!(!refused.status.success());
    assert!(crate::support::stdout(&refused).is_empty(), "nothing exported to a stranger");
    let refused = server.cli_as(&stranger, &["data", "import", "it/poll", file.to_str().unwrap()]);
    assert!(!refused.status.success());

    // Delete the app (its keys go with it), deploy it again and bring the votes back.
    server.cli_ok(&["apps", "delete", "it/poll", "--yes"]);
    deploy_poll(&server, "it");
    assert_eq!(call(&server, "it", "/results"), json!({}));
    let imported = server.cli_ok(&["data", "import", "it/poll", file.to_str().unwrap()]);
    assert!(imported.contains("2 entries imported"), "{imported}");
    assert_eq!(call(&server, "it", "/results"), json!({ "pizza": 2, "soup": 1 }));
    assert_eq!(call(&server, "it", "/vote?choice=soup"), json!({ "soup": 2 }), "counters carry on");

    // A broken export is refused whole, naming the line, and writes nothing.
    std::fs::write(&file, "{\"key\":\"ok\",\"value\":\"1\"}\nnot json\n").unwrap();
    let broken = server.cli(&["data", "import", "it/poll", file.to_str().unwrap()]);
    assert!(!broken.status.success());
    assert!(crate::support::stderr(&broken).contains("line 2"), "{}", crate::support::stderr(&broken));
    let audit = server.audit_events("?namespace=it&limit=50").to_string();
    assert!(audit.contains("data.export") && audit.contains("data.import"), "{audit}");
}

fn a_namespace_stops_at_its_storage_quota_and_deleting_makes_room(backend: DataBackend) {
    let server = start(backend);
    let app = copy_fixture("kv-poll");
    let manifest = std::fs::read_to_string(app.path().join("terrarium.yaml")).unwrap();
    std::fs::write(
        app.path().join("terrarium.yaml"),
        manifest.replace("  data:\n", "  quotas:\n    kvStorageMiB: 1\n  data:\n"),
    )
    .unwrap();
    server.deploy(app.path());
    // 1 MiB holds three values of 300 KiB, not four.
    let filled = call(&server, "it", "/fill?kib=300&count=5");
    assert_eq!(filled["stored"], 3, "{filled}");
    assert_eq!(
        filled["error"],
        "Error: KV PUT failed: 413 the namespace is full: it may hold 1 MiB (spec.quotas.kvStorageMiB); delete keys to make room"
    );
    call(&server, "it", "/drain");
    assert_eq!(call(&server, "it", "/fill?kib=300&count=3")["stored"], 3, "deleting made room");
}

/// Every value at rest of `namespace`, as the backend holds it: the SQLite files' bytes, or
/// PostgreSQL's rows.
fn at_rest(backend: DataBackend, settings: &(String, Vec<(String, String)>), data_dir: &std::path::Path) -> String {
    match backend {
        DataBackend::Sqlite => ["terrarium.db", "terrarium.db-wal"]
            .iter()
            .filter_map(|file| std::fs::read(data_dir.join(file)).ok())
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .collect(),
        DataBackend::Postgres => {
            let url = &settings.1[0].1;
            let out = std::process::Command::new("psql")
                .args([
                    url.as_str(),
                    "-Atc",
                    "SELECT namespace, key, sealed, encode(value, 'escape') FROM terrarium_kv_entries",
                ])
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            String::from_utf8_lossy(&out.stdout).into_owned()
        }
    }
}

fn a_confidential_apps_values_are_sealed_at_rest(backend: DataBackend) {
    let settings = backend.settings();
    let data_dir = tempfile::tempdir().unwrap();
    let server = Server::start_on(&settings, data_dir.path());
    server.cli_ok(&["namespaces", "create", "open"]);
    let app = copy_fixture("kv-poll");
    let manifest = std::fs::read_to_string(app.path().join("terrarium.yaml")).unwrap();
    std::fs::write(
        app.path().join("terrarium.yaml"),
        manifest.replace("  namespace: it\n", "  namespace: it\n  labels:\n    dataClass: confidential\n"),
    )
    .unwrap();
    server.deploy(app.path());
    deploy_poll(&server, "open");

    // The app sees its values as it wrote them: text, JSON, bytes, metadata, counters, locks.
    let types = call(&server, "it", "/types");
    assert_eq!(types["json"], json!({ "name": "ana", "lunch": "pizza" }));
    assert_eq!(types["arrayBuffer"], json!([1, 2, 3]));
    assert_eq!(types["withMetadata"]["metadata"], json!({ "v": 2 }));
    assert_eq!(call(&server, "it", "/counter?key=hits&by=5"), json!({ "count": 5 }));
    assert_eq!(call(&server, "it", "/counter?key=hits&by=5"), json!({ "count": 10 }));
    assert_eq!(call(&server, "it", "/lock")["value"], "released");
    // The same app in a namespace whose data is not labelled keeps it in clear.
    call(&server, "open", "/types");

    assert_eq!(call(&server, "it", "/remember?value=sealed-marker-7f3a"), json!({ "memo": "sealed-marker-7f3a" }));
    call(&server, "open", "/remember?value=clear-marker-2c9e");

    // Its owner's export is in clear; at rest, its values are not.
    let exported = server.cli_ok(&["data", "export", "it/poll"]);
    assert!(exported.contains("sealed-marker-7f3a") && exported.contains("pizza"), "{exported}");
    let data_dir_path = server.kill();
    let stored = at_rest(backend, &settings, &data_dir_path);
    assert!(stored.contains("clear-marker-2c9e"), "the unlabelled app's value is in clear: the scan sees values");
    assert!(!stored.contains("sealed-marker-7f3a"), "the confidential app's value is sealed");
    if let DataBackend::Postgres = backend {
        let sealed: Vec<&str> = stored.lines().filter(|line| line.starts_with("it|")).collect();
        assert!(!sealed.is_empty() && sealed.iter().all(|row| row.split('|').nth(2) == Some("1")), "{stored}");
        assert!(sealed.iter().all(|row| !row.contains("pizza")), "{stored}");
    }

    // After a restart the sealed values open again.
    let server = Server::start_on(&settings, &data_dir_path);
    assert_eq!(call(&server, "it", "/counter?key=hits"), json!({ "count": 11 }));
}
