//! App data, SQL: Workers D1 code running unmodified through `env.DB`, D1's result shapes and
//! errors, batches that roll back whole, data that outlives a restart and a kill -9 in the
//! middle of writes, apps that never reach another's tables under any tier, and the owner's
//! usage, export and import.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};

use crate::support::{DataBackend, Server, client, copy_fixture, on_both_backends, stdout};

/// The expense tracker, deployed as `namespace/name` with `isolation`.
fn deploy_expenses(server: &Server, namespace: &str, name: &str, isolation: &str) {
    let app = copy_fixture("d1-expenses");
    let manifest = std::fs::read_to_string(app.path().join("terrarium.yaml")).unwrap();
    let manifest = manifest
        .replace("namespace: it", &format!("namespace: {namespace}"))
        .replace("name: expenses", &format!("name: {name}"))
        .replace("isolation: isolated", &format!("isolation: {isolation}"));
    std::fs::write(app.path().join("terrarium.yaml"), manifest).unwrap();
    server.deploy(app.path());
}

fn call(server: &Server, namespace: &str, name: &str, path: &str, body: Option<Value>) -> Value {
    let request = client().post(server.app_url(namespace, name, path));
    let request = match body {
        Some(body) => request.json(&body),
        None => request,
    };
    let response = request.send().unwrap();
    if response.status() != 200 {
        let logs = server.cli(&["logs", &format!("{namespace}/{name}")]);
        panic!("{path}: {}\n{}", response.status(), stdout(&logs));
    }
    response.json().unwrap()
}

fn query(server: &Server, namespace: &str, name: &str, sql: &str) -> Value {
    let response = client().post(server.app_url(namespace, name, "/query")).body(sql.to_owned()).send().unwrap();
    assert_eq!(response.status(), 200, "{sql}");
    response.json().unwrap()
}

fn add(server: &Server, namespace: &str, name: &str, who: &str, what: &str, cents: u64) -> Value {
    call(server, namespace, name, "/add", Some(json!({ "who": who, "what": what, "cents": cents })))
}

on_both_backends!(
    expenses_survive_a_restart_and_stay_in_their_namespace,
    the_d1_api_as_workers_code_uses_it,
    no_app_reaches_another_namespaces_or_apps_tables_under_any_tier,
    nothing_acknowledged_is_lost_and_nothing_half_written_shows_after_a_kill,
    data_calls_and_storage_are_metered_priced_and_exposed,
    restricted_data_must_be_isolated,
    the_owner_exports_and_imports_a_database,
    data_moves_between_tiers_and_a_revision_cannot_leave_it_behind,
);

fn expenses_survive_a_restart_and_stay_in_their_namespace(backend: DataBackend) {
    let data_dir = tempfile::tempdir().unwrap();
    let settings = backend.settings();
    let server = Server::start_on(&settings, data_dir.path());
    server.cli_ok(&["namespaces", "create", "other"]);
    deploy_expenses(&server, "it", "expenses", "isolated");
    deploy_expenses(&server, "other", "expenses", "isolated");
    assert_eq!(add(&server, "it", "expenses", "ana", "lunch", 1250), json!({ "id": 1, "changes": 1 }));
    assert_eq!(add(&server, "it", "expenses", "ana", "taxi", 2000), json!({ "id": 2, "changes": 1 }));
    add(&server, "other", "expenses", "bo", "hotel", 9900);
    assert_eq!(call(&server, "it", "expenses", "/total?who=ana", None), json!({ "total": 3250 }));
    assert_eq!(
        call(&server, "other", "expenses", "/total?who=ana", None),
        json!({ "total": 0 }),
        "the same app elsewhere"
    );

    let data_dir_path = server.kill();
    let server = Server::start_on(&settings, &data_dir_path);
    let list = call(&server, "it", "expenses", "/list", None);
    assert_eq!(
        list,
        json!([
            { "id": 1, "who": "ana", "what": "lunch", "cents": 1250 },
            { "id": 2, "who": "ana", "what": "taxi", "cents": 2000 },
        ])
    );
    assert_eq!(call(&server, "other", "expenses", "/total?who=bo", None), json!({ "total": 9900 }));

    // Usage says what is kept; deleting the app deletes its database and says so.
    let usage: Value =
        serde_json::from_str(&server.cli_ok(&["data", "usage", "it/expenses", "--output", "json"])).unwrap();
    assert_eq!(usage["sql"]["isolation"], "isolated", "{usage}");
    assert!(usage["sql"]["tables"].as_array().unwrap().contains(&json!({ "name": "expenses", "rows": 2 })), "{usage}");
    let unconfirmed = server.cli(&["apps", "delete", "it/expenses"]);
    assert!(!unconfirmed.status.success());
    let said = crate::support::stderr(&unconfirmed);
    assert!(said.contains("SQL tables expenses (2 rows), ledger (2 rows): all of it is deleted with it"), "{said}");
    server.cli_ok(&["apps", "delete", "it/expenses", "--yes"]);
    let audit = server.audit_events("?namespace=it&limit=50").to_string();
    assert!(audit.contains("SQL: its database") && audit.contains("deleted with the app"), "{audit}");
    deploy_expenses(&server, "it", "expenses", "isolated");
    assert_eq!(call(&server, "it", "expenses", "/list", None), json!([]), "a new app of the same name starts empty");
    assert_eq!(call(&server, "other", "expenses", "/total?who=bo", None), json!({ "total": 9900 }));
}

fn the_d1_api_as_workers_code_uses_it(backend: DataBackend) {
    let server = Server::start_on(&backend.settings(), &tempfile::tempdir().unwrap().keep());
    deploy_expenses(&server, "it", "expenses", "isolated");
    let api = call(&server, "it", "expenses", "/api", None);
    assert_eq!(api["insert"], json!({ "success": true, "changes": 1, "rows_written": 1, "changed_db": true }));
    assert_eq!(api["first"], json!({ "n": 42, "r": 1.5, "t": "text", "b": [1, 2, 255], "empty": null }));
    assert_eq!(api["firstColumn"], "text");
    assert_eq!(api["firstOfNothing"], Value::Null);
    assert_eq!(api["raw"], json!([[42, "text"]]));
    assert_eq!(api["rawWithNames"], json!([["n", "t"], [42, "text"]]));
    assert_eq!(api["allKeys"], json!(["meta", "results", "success"]));
    for key in ["changed_db", "changes", "duration", "last_row_id", "rows_read", "rows_written", "size_after"] {
        assert!(api["metaKeys"].as_array().unwrap().contains(&json!(key)), "meta has {key}: {api}");
    }
    assert_eq!(api["booleans"], json!({ "yes": 1, "no": 0 }), "booleans bind as 1 and 0");
    assert_eq!(api["byteArray"], "0102FF", "an array of bytes binds as a BLOB, as on D1");
    assert_eq!(api["exec"]["count"], 2);

    let errors = call(&server, "it", "expenses", "/errors", None);
    assert_eq!(errors["missingColumn"], json!({ "error": "Error: D1_COLUMN_NOTFOUND: Column not found (two)" }));
    assert!(
        errors["syntax"]["error"].as_str().unwrap().starts_with("Error: D1_ERROR: near \"SELEKT\": syntax error"),
        "{errors}"
    );
    assert_eq!(errors["noTable"], json!({ "error": "Error: D1_ERROR: no such table: missing: SQLITE_ERROR" }));
    assert_eq!(
        errors["undefinedValue"],
        json!({ "error": "Error: D1_TYPE_ERROR: Type 'undefined' not supported for value 'undefined'" })
    );
    assert!(errors["objectValue"]["error"].as_str().unwrap().contains("D1_TYPE_ERROR: Type 'object'"), "{errors}");
    assert!(errors["begin"]["error"].as_str().unwrap().contains("use the batch() API"), "{errors}");
    assert!(errors["check"]["error"].as_str().unwrap().contains("CHECK constraint failed"), "{errors}");
    assert!(errors["rolledBack"]["error"].as_str().unwrap().contains("no such table: nowhere"), "{errors}");
    assert_eq!(errors["ghosts"], 0, "the batch's first insert was rolled back with it");
}

fn no_app_reaches_another_namespaces_or_apps_tables_under_any_tier(backend: DataBackend) {
    let server = Server::start_on(&backend.settings(), &tempfile::tempdir().unwrap().keep());
    server.cli_ok(&["namespaces", "create", "other"]);
    let data_dir = server.data_dir.clone();
    for tier in ["isolated", "schema", "shared"] {
        let victim = format!("victim-{tier}");
        let thief = format!("thief-{tier}");
        deploy_expenses(&server, "it", &victim, tier);
        add(&server, "it", &victim, "ana", "secret dinner", 4200);
        deploy_expenses(&server, "other", &thief, tier);
        call(&server, "other", &thief, "/list", None);
        let victim_file = match tier {
            "isolated" => data_dir.join(format!("sql/it/app-{victim}.sqlite")),
            _ => data_dir.join(format!("sql/it/{tier}.sqlite")),
        };
        assert_eq!(victim_file.exists(), matches!(backend, DataBackend::Sqlite), "{}", victim_file.display());
        let victim_file = victim_file.display().to_string();
        for escape in [
            format!("ATTACH DATABASE '{victim_file}' AS loot"),
            format!("ATTACH DATABASE 'file:{victim_file}?mode=ro' AS loot"),
            format!("VACUUM INTO '{victim_file}'"),
            "SELECT load_extension('libc.so.6')".to_owned(),
            "PRAGMA database_list".to_owned(),
            "PRAGMA writable_schema = ON".to_owned(),
            "SELECT * FROM pragma_database_list".to_owned(),
            "CREATE TEMP TABLE t AS SELECT 1".to_owned(),
            // PostgreSQL's ways out.
            "SELECT * FROM pg_catalog.pg_tables".to_owned(),
            "SELECT * FROM pg_class".to_owned(),
            "SELECT table_schema, table_name FROM information_schema.tables".to_owned(),
            "SET search_path TO public".to_owned(),
            "SET ROLE terrarium".to_owned(),
            "RESET ROLE".to_owned(),
            "SELECT set_config('search_path', 'public', false)".to_owned(),
            "SELECT pg_read_file('/etc/passwd')".to_owned(),
            "COPY expenses TO '/tmp/loot'".to_owned(),
            "CREATE EXTENSION dblink".to_owned(),
        ] {
            let answer = query(&server, "other", &thief, &escape);
            assert!(
                answer["error"].as_str().is_some_and(|error| error.contains("D1_ERROR")),
                "{tier}: {escape}: {answer}"
            );
        }
        // The thief's own "expenses" table is its own, empty: never the victim's.
        let seen = query(&server, "other", &thief, "SELECT * FROM expenses");
        assert_eq!(seen, json!({ "ok": [] }), "{tier}");
    }
    // Within a namespace under schema, a neighbour's tables are out of reach too.
    deploy_expenses(&server, "it", "neighbour", "schema");
    let answer = query(&server, "it", "neighbour", "SELECT * FROM expenses");
    let (foreign, catalog) = match backend {
        DataBackend::Sqlite => ("belongs to another app", "not readable under isolation: schema"),
        // On PostgreSQL the app's schema is its own: the neighbour's table is not there at all.
        DataBackend::Postgres => ("no such table: expenses", "the catalog is the platform's"),
    };
    assert!(answer["error"].as_str().unwrap().contains(foreign), "{answer}");
    let answer = query(&server, "it", "neighbour", "SELECT * FROM sqlite_master");
    assert!(answer["error"].as_str().unwrap().contains(catalog), "{answer}");
    // Under shared, the namespace's apps share tables by design.
    deploy_expenses(&server, "it", "dashboard", "shared");
    let shared = query(&server, "it", "dashboard", "SELECT what FROM expenses");
    assert_eq!(shared, json!({ "ok": [{ "what": "secret dinner" }] }));
}

fn nothing_acknowledged_is_lost_and_nothing_half_written_shows_after_a_kill(backend: DataBackend) {
    let data_dir = tempfile::tempdir().unwrap();
    let settings = backend.settings();
    let server = Server::start_on(&settings, data_dir.path());
    deploy_expenses(&server, "it", "expenses", "isolated");
    let url = server.app_url("it", "expenses", "/add");
    let acknowledged = Arc::new(std::sync::Mutex::new(Vec::<u64>::new()));
    let count = Arc::new(AtomicU64::new(0));
    let writers: Vec<_> = (0..4)
        .map(|writer| {
            let (url, acknowledged, count) = (url.clone(), acknowledged.clone(), count.clone());
            std::thread::spawn(move || {
                for n in 0..400 {
                    let body = json!({ "who": format!("w{writer}"), "what": format!("item {n}"), "cents": n + 1 });
                    let Ok(response) = client().post(&url).json(&body).send() else { return };
                    if response.status() != 200 {
                        return;
                    }
                    let Ok(answer) = response.json::<Value>() else { return };
                    acknowledged.lock().unwrap().push(answer["id"].as_u64().unwrap());
                    count.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    // Kill the server once writes are flowing: after 100 acknowledged, with more in flight.
    crate::support::wait_for("100 acknowledged writes", || {
        let done = count.load(Ordering::SeqCst);
        crate::support::holds(done >= 100, || format!("{done} acknowledged"))
    });
    let data_dir_path = server.kill();
    for writer in writers {
        writer.join().unwrap();
    }
    let server = Server::start_on(&settings, &data_dir_path);
    let check = call(&server, "it", "expenses", "/check", None);
    let stored: Vec<u64> = serde_json::from_value(check["ids"].clone()).unwrap();
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(acknowledged.len() >= 100);
    for id in &acknowledged {
        assert!(stored.contains(id), "acknowledged expense {id} was lost");
    }
    assert_eq!(check["expenses"], check["ledger"], "every expense has its ledger line: {check}");
    assert_eq!(check["orphans"], 0, "{check}");
}

fn the_owner_exports_and_imports_a_database(backend: DataBackend) {
    let server = Server::start_on(&backend.settings(), &tempfile::tempdir().unwrap().keep());
    server.cli_ok(&["namespaces", "create", "other"]);
    deploy_expenses(&server, "it", "expenses", "schema");
    add(&server, "it", "expenses", "ana", "lunch", 1250);
    add(&server, "it", "expenses", "bo", "taxi", 2000);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("expenses.sqlite");
    server.cli_ok(&["data", "export", "it/expenses", "--sql", "-f", file.to_str().unwrap()]);
    assert!(std::fs::read(&file).unwrap().starts_with(b"SQLite format 3\0"));

    let stranger = server.user_token("stranger", &[]);
    assert!(!server.cli_as(&stranger, &["data", "export", "it/expenses", "--sql"]).status.success());

    // Into the same app in another namespace and tier, whose own empty tables go first.
    deploy_expenses(&server, "other", "expenses", "isolated");
    call(&server, "other", "expenses", "/reset", None);
    let imported = server.cli_ok(&["data", "import", "other/expenses", file.to_str().unwrap()]);
    assert!(imported.contains("2 table(s) imported into other/expenses"), "{imported}");
    assert_eq!(call(&server, "other", "expenses", "/total?who=bo", None), json!({ "total": 2000 }));
    assert_eq!(add(&server, "other", "expenses", "cy", "train", 500)["id"], 3, "ids carry on");

    // Importing over existing tables is refused whole, naming them.
    let refused = server.cli(&["data", "import", "other/expenses", file.to_str().unwrap()]);
    assert!(!refused.status.success());
    assert!(crate::support::stderr(&refused).contains("already has expenses"), "{}", crate::support::stderr(&refused));
}

fn data_calls_and_storage_are_metered_priced_and_exposed(backend: DataBackend) {
    let server = Server::start_on(&backend.settings(), &tempfile::tempdir().unwrap().keep());
    deploy_expenses(&server, "it", "expenses", "isolated");
    add(&server, "it", "expenses", "ana", "lunch", 1250);
    add(&server, "it", "expenses", "bo", "taxi", 2000);
    call(&server, "it", "expenses", "/list", None);
    server.run_task("data.storage");
    server.run_task("metering.flush");
    let usage: Value = serde_json::from_str(&server.cli_ok(&["usage", "--app", "it/expenses", "-o", "json"])).unwrap();
    let entry = &usage[0];
    assert!(entry["sql_rows_written"].as_u64().unwrap() >= 4, "two expenses and two ledger lines: {usage}");
    assert!(entry["sql_rows_read"].as_u64().unwrap() >= 2, "{usage}");
    assert!(entry["storage_bytes_max"].as_u64().unwrap() > 0, "{usage}");
    let namespace = server.cli_ok(&["data", "usage", "it"]);
    assert!(namespace.contains("it/expenses") && namespace.contains("isolated"), "{namespace}");
    let rows: Value = serde_json::from_str(&server.cli_ok(&["data", "usage", "it", "-o", "json"])).unwrap();
    assert_eq!(rows[0]["sql"]["tables"].as_array().unwrap().len(), 2, "{rows}");
    let table = server.cli_ok(&["usage", "--app", "it/expenses"]);
    assert!(table.contains("SQL ROWS R/W") && table.contains("STORED"), "{table}");

    let response = client().get(format!("{}/metrics", server.url)).bearer_auth(&server.token).send().unwrap();
    let metrics = response.text().unwrap();
    assert!(
        metrics.contains(r#"terrarium_app_data_operations_total{namespace="it",app="expenses",op="sql_row_written"}"#),
        "{metrics}"
    );
    assert!(metrics.contains(r#"terrarium_app_storage_bytes{namespace="it",app="expenses"}"#), "{metrics}");
}

fn restricted_data_must_be_isolated(backend: DataBackend) {
    let server = Server::start_on(&backend.settings(), &tempfile::tempdir().unwrap().keep());
    let app = copy_fixture("d1-expenses");
    let manifest = std::fs::read_to_string(app.path().join("terrarium.yaml")).unwrap();
    let labelled = manifest.replace("  namespace: it\n", "  namespace: it\n  labels:\n    dataClass: restricted\n");
    std::fs::write(app.path().join("terrarium.yaml"), labelled.replace("isolation: isolated", "isolation: shared"))
        .unwrap();
    let refused = server.cli(&["deploy", app.path().to_str().unwrap()]);
    assert!(!refused.status.success());
    let said = format!("{}{}", stdout(&refused), crate::support::stderr(&refused));
    assert!(
        said.contains("dataClass is restricted, whose SQL data is encrypted at rest")
            && said.contains("needs spec.data.sql.isolation: isolated (it is shared)"),
        "{said}"
    );
    std::fs::write(app.path().join("terrarium.yaml"), labelled).unwrap();
    server.deploy(app.path());
    add(&server, "it", "expenses", "ana", "lunch", 1250);
}

/// Writes the fixture's manifest for `isolation` (and `labels`) into `app`.
fn manifest_for(app: &std::path::Path, isolation: &str, labels: &str) {
    let manifest = std::fs::read_to_string(crate::support::fixture("d1-expenses").join("terrarium.yaml")).unwrap();
    let manifest = manifest
        .replace("isolation: isolated", &format!("isolation: {isolation}"))
        .replace("  namespace: it\n", &format!("  namespace: it\n{labels}"));
    std::fs::write(app.join("terrarium.yaml"), manifest).unwrap();
}

fn data_moves_between_tiers_and_a_revision_cannot_leave_it_behind(backend: DataBackend) {
    let settings = backend.settings();
    let server = Server::start_on(&settings, &tempfile::tempdir().unwrap().keep());
    let app = copy_fixture("d1-expenses");
    manifest_for(app.path(), "schema", "");
    server.deploy(app.path());
    add(&server, "it", "expenses", "ana", "lunch", 1250);
    add(&server, "it", "expenses", "bo", "taxi", 2000);

    // Changing the tier in the manifest alone would leave the data behind: refused, saying how.
    manifest_for(app.path(), "isolated", "");
    let refused = server.cli(&["deploy", app.path().to_str().unwrap()]);
    assert!(!refused.status.success());
    let said = format!("{}{}", stdout(&refused), crate::support::stderr(&refused));
    assert!(
        said.contains("move the data first with `terrarium data migrate it/expenses --isolation isolated`"),
        "{said}"
    );

    let moved = server.cli_ok(&["data", "migrate", "it/expenses", "--isolation", "isolated"]);
    assert!(moved.contains("isolation: isolated now (2 table(s)"), "{moved}");
    assert_eq!(call(&server, "it", "expenses", "/total?who=bo", None), json!({ "total": 2000 }));
    assert_eq!(add(&server, "it", "expenses", "cy", "train", 500)["id"], 3, "writes go to the moved copy");
    let usage: Value =
        serde_json::from_str(&server.cli_ok(&["data", "usage", "it/expenses", "--output", "json"])).unwrap();
    assert_eq!(usage["sql"]["isolation"], "isolated", "{usage}");
    let audit = server.audit_events("?namespace=it&limit=50").to_string();
    assert!(audit.contains("data.migrate"), "{audit}");

    // A restart keeps the move; a revision still naming the old tier keeps using the moved data.
    let data_dir = server.kill();
    let server = Server::start_on(&settings, &data_dir);
    assert_eq!(call(&server, "it", "expenses", "/list", None).as_array().unwrap().len(), 3);
    manifest_for(app.path(), "shared", "");
    let third = server.cli(&["deploy", app.path().to_str().unwrap()]);
    assert!(!third.status.success(), "a third tier would leave the data behind");
    // A revision naming the new tier finds the data there.
    manifest_for(app.path(), "isolated", "");
    server.deploy(app.path());
    assert_eq!(call(&server, "it", "expenses", "/list", None).as_array().unwrap().len(), 3);

    // The schema file no longer holds the app's tables: a neighbour may take their names.
    deploy_expenses(&server, "it", "neighbour", "schema");
    assert_eq!(call(&server, "it", "neighbour", "/list", None), json!([]));

    // Moving to where it is, or a restricted app below isolated, is refused.
    let again = server.cli(&["data", "migrate", "it/expenses", "--isolation", "isolated"]);
    assert!(
        crate::support::stderr(&again).contains("is in isolation: isolated already"),
        "{}",
        crate::support::stderr(&again)
    );
    let secret = copy_fixture("d1-expenses");
    let manifest = std::fs::read_to_string(secret.path().join("terrarium.yaml")).unwrap();
    let manifest = manifest
        .replace("name: expenses", "name: payroll")
        .replace("  namespace: it\n", "  namespace: it\n  labels:\n    dataClass: restricted\n");
    std::fs::write(secret.path().join("terrarium.yaml"), manifest).unwrap();
    server.deploy(secret.path());
    add(&server, "it", "payroll", "ana", "salary", 100);
    let below = server.cli(&["data", "migrate", "it/payroll", "--isolation", "schema"]);
    assert!(!below.status.success());
    assert!(
        crate::support::stderr(&below).contains("dataClass: restricted, whose data stays in isolation: isolated"),
        "{}",
        crate::support::stderr(&below)
    );
}

/// Whether `needle` is anywhere in the files under `folder`.
fn found_in(folder: &std::path::Path, needle: &str) -> bool {
    std::fs::read_dir(folder).unwrap().any(|entry| {
        let path = entry.unwrap().path();
        path.is_file() && std::fs::read(&path).unwrap().windows(needle.len()).any(|window| window == needle.as_bytes())
    })
}

#[test]
fn a_confidential_apps_database_is_encrypted_at_rest_and_its_data_outlives_a_restart() {
    let data_dir = tempfile::tempdir().unwrap();
    let server = Server::start_in("", data_dir.path(), &[]);
    // Written while the app was not labelled: in clear, as any app's.
    deploy_expenses(&server, "it", "expenses", "isolated");
    add(&server, "it", "expenses", "ana", "before-label-marker-41c", 1250);
    let folder = data_dir.path().join("sql/it");
    assert!(found_in(&folder, "before-label-marker-41c"), "an unlabelled app's rows are in clear");

    // Labelled confidential: the file is encrypted in place at the next call, its rows kept.
    let app = copy_fixture("d1-expenses");
    let manifest = std::fs::read_to_string(app.path().join("terrarium.yaml")).unwrap();
    let labelled = manifest.replace("  namespace: it\n", "  namespace: it\n  labels:\n    dataClass: confidential\n");
    std::fs::write(app.path().join("terrarium.yaml"), &labelled).unwrap();
    server.deploy(app.path());
    add(&server, "it", "expenses", "ana", "after-label-marker-9d2", 2000);
    assert_eq!(call(&server, "it", "expenses", "/total?who=ana", None), json!({ "total": 3250 }));
    let file = folder.join("app-expenses.sqlite");
    assert!(!std::fs::read(&file).unwrap().starts_with(b"SQLite format 3\0"), "the file is encrypted");
    assert!(!found_in(&folder, "before-label-marker-41c") && !found_in(&folder, "after-label-marker-9d2"));

    // Its owner's export is a database in clear.
    let export = tempfile::tempdir().unwrap();
    let exported = export.path().join("expenses.sqlite");
    server.cli_ok(&["data", "export", "it/expenses", "--sql", "-f", exported.to_str().unwrap()]);
    let bytes = std::fs::read(&exported).unwrap();
    assert!(bytes.starts_with(b"SQLite format 3\0"));
    assert!(bytes.windows(22).any(|window| window == b"after-label-marker-9d2"));

    // A confidential app's data cannot go to a namespace's shared file, by deploy or by move.
    std::fs::write(app.path().join("terrarium.yaml"), labelled.replace("isolation: isolated", "isolation: schema"))
        .unwrap();
    let refused = server.cli(&["deploy", app.path().to_str().unwrap()]);
    let said = format!("{}{}", stdout(&refused), crate::support::stderr(&refused));
    assert!(
        !refused.status.success() && said.contains("needs spec.data.sql.isolation: isolated (it is schema)"),
        "{said}"
    );
    let moved = server.cli(&["data", "migrate", "it/expenses", "--isolation", "shared"]);
    assert!(!moved.status.success());
    assert!(
        crate::support::stderr(&moved).contains("stays encrypted in isolation: isolated"),
        "{}",
        crate::support::stderr(&moved)
    );

    // After a kill and a restart, the key comes back from the secret store: the rows read.
    let data_dir_path = server.kill();
    let server = Server::start_in("", &data_dir_path, &[]);
    assert_eq!(call(&server, "it", "expenses", "/total?who=ana", None), json!({ "total": 3250 }));
}

/// Past the translation, PostgreSQL's own walls: each tenant's role, connected directly (as no
/// app ever is) and running any SQL, reaches no other tenant's database or schema, and cannot
/// become another role.
#[test]
fn on_postgres_no_tenant_role_reaches_another_tenant() {
    let settings = DataBackend::Postgres.settings();
    let server = Server::start_on(&settings, &tempfile::tempdir().unwrap().keep());
    server.cli_ok(&["namespaces", "create", "other"]);
    for tier in ["isolated", "schema", "shared"] {
        for (namespace, name) in [("it", format!("victim-{tier}")), ("other", format!("thief-{tier}"))] {
            deploy_expenses(&server, namespace, &name, tier);
            add(&server, namespace, &name, "ana", "secret dinner", 4200);
        }
    }
    let folder = std::env::var("TERRARIUM_TEST_POSTGRES").unwrap();
    let url = &settings.1[0].1;
    let database = url.split("localhost/").nth(1).unwrap().split('?').next().unwrap();
    let apps = format!("{database}_apps");
    let psql = |user: &str, db: &str, sql: &str| {
        let output = std::process::Command::new("psql")
            .args(["-h", &folder, "-U", user, "-d", db, "-v", "ON_ERROR_STOP=1", "-Atc", sql])
            .output()
            .unwrap();
        (output.status.success(), format!("{}{}", stdout(&output), crate::support::stderr(&output)))
    };
    // Each tenant's role, with its tier and its database and schema, from the roles' comments.
    let (_, listed) = psql(
        "terrarium",
        "postgres",
        &format!(
            "SELECT rolname, split_part(shobj_description(oid, 'pg_authid'), ' ', 3) FROM pg_roles \
             WHERE shobj_description(oid, 'pg_authid') LIKE 'terrarium: {apps} %' ORDER BY 1"
        ),
    );
    let tenants: Vec<(String, String, String)> = listed
        .lines()
        .map(|line| {
            let (role, tier) = line.split_once('|').unwrap();
            let db = if tier == "isolated" { role.to_owned() } else { apps.clone() };
            (role.to_owned(), tier.to_owned(), db)
        })
        .collect();
    assert_eq!(tenants.len(), 6, "two apps' roles under isolated and schema, two namespaces' under shared: {listed}");
    for (role, tier, db) in &tenants {
        let schema = if tier == "isolated" { "public" } else { role.as_str() };
        let (own, said) = psql(role, db, &format!("SELECT count(*) FROM {schema}.expenses"));
        assert!(own && said.trim() == "1", "{role} reads its own rows: {said}");
        for escape in ["SET ROLE terrarium", "SET SESSION AUTHORIZATION terrarium", "CREATE EXTENSION dblink"] {
            let (ran, said) = psql(role, db, escape);
            assert!(!ran, "{role}: {escape}: {said}");
        }
        for (other, other_tier, other_db) in tenants.iter().filter(|(other, ..)| other != role) {
            let other_schema = if other_tier == "isolated" { "public" } else { other.as_str() };
            let (ran, said) = psql(role, other_db, &format!("SELECT count(*) FROM {other_schema}.expenses"));
            assert!(!ran, "{role} reached {other}'s rows: {said}");
            assert!(said.contains("permission denied"), "{role} → {other}: {said}");
        }
    }
}

/// On PostgreSQL, a confidential app's SQL goes to an encrypted file on the server instead; an
/// app whose rows are on PostgreSQL already cannot be relabelled and leave them there in clear.
#[test]
fn on_postgres_a_confidential_apps_sql_is_in_an_encrypted_file() {
    let data_dir = tempfile::tempdir().unwrap();
    let server = Server::start_on(&DataBackend::Postgres.settings(), data_dir.path());
    let labelled = |name: &str| {
        let app = copy_fixture("d1-expenses");
        let manifest = std::fs::read_to_string(app.path().join("terrarium.yaml")).unwrap();
        let manifest = manifest
            .replace("name: expenses", &format!("name: {name}"))
            .replace("  namespace: it\n", "  namespace: it\n  labels:\n    dataClass: confidential\n");
        std::fs::write(app.path().join("terrarium.yaml"), manifest).unwrap();
        app
    };
    server.deploy(labelled("payroll").path());
    add(&server, "it", "payroll", "ana", "salary-marker-5e1", 100);
    let file = data_dir.path().join("sql/it/app-payroll.sqlite");
    let bytes = std::fs::read(&file).unwrap();
    assert!(!bytes.starts_with(b"SQLite format 3\0"), "the file is encrypted");
    assert!(!bytes.windows(17).any(|window| window == b"salary-marker-5e1"));

    deploy_expenses(&server, "it", "expenses", "isolated");
    add(&server, "it", "expenses", "ana", "lunch", 1250);
    let refused = server.cli(&["deploy", labelled("expenses").path().to_str().unwrap()]);
    let said = format!("{}{}", stdout(&refused), crate::support::stderr(&refused));
    assert!(!refused.status.success() && said.contains("SQL data is on PostgreSQL (isolation: isolated)"), "{said}");
    assert_eq!(call(&server, "it", "expenses", "/total?who=ana", None), json!({ "total": 1250 }), "still served");
}
