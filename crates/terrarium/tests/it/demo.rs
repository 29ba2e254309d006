//! `serve --demo` and the other commands a new user runs first.

use crate::support::{BIN, Server, client};

#[test]
fn demo_apps_answer() {
    let data_dir = tempfile::tempdir().unwrap().keep();
    let server = Server::start_in("", &data_dir, &["--demo"]);

    let page = server.get("demo", "where2eat", "/");
    assert_eq!(page.status(), 200);
    assert!(page.text().unwrap().to_lowercase().contains("where2eat"));

    // The cuisine filter is honoured, case-insensitively, and every pick is of that cuisine.
    for _ in 0..10 {
        let pick: serde_json::Value = server.get("demo", "where2eat", "/api/pick?cuisine=JAPANESE").json().unwrap();
        assert_eq!(pick["place"]["cuisine"], "Japanese", "{pick}");
    }
    let none = server.get("demo", "where2eat", "/api/pick?cuisine=martian");
    assert_eq!(none.status(), 404);
    let body: serde_json::Value = none.json().unwrap();
    assert!(body["hint"].as_str().unwrap().contains("Thai"), "{body}");

    // The second demo: vars, query strings, form bodies.
    let greet: serde_json::Value = server.get("demo", "status", "/api/greet?name=Ada").json().unwrap();
    assert_eq!(greet["message"], "Hello, Ada!");
    let echo: serde_json::Value = client()
        .post(server.app_url("demo", "status", "/api/echo"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("a=1&b=two+words")
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(echo["body"]["b"], "two words", "{echo}");

    // A second start with --demo changes nothing: same revisions, nothing redeployed.
    let data_dir = server.kill();
    let server = Server::start_in("", &data_dir, &["--demo"]);
    let detail: serde_json::Value =
        serde_json::from_str(&server.cli_ok(&["apps", "get", "demo/where2eat", "--output", "json"])).unwrap();
    assert_eq!(detail["active_revision"], 1);
}

#[test]
fn schema_is_json_schema_of_the_manifest() {
    let output = std::process::Command::new(BIN).arg("schema").output().unwrap();
    assert!(output.status.success());
    let schema: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(schema["$schema"].as_str().unwrap().contains("json-schema.org"));
    let text = schema.to_string();
    for field in ["apiVersion", "allowedEgress", "cpuMsPerRequest", "vars"] {
        assert!(text.contains(field), "the schema describes {field}");
    }
}

#[test]
fn serve_check_reports_every_problem_of_a_configuration_and_starts_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("terrarium.toml");
    let data_dir = dir.path().join("data");
    std::fs::write(
        &config,
        "[namespaces]\ndefault_tier = \"gold\"\n\n[egress]\nallow_internal = [\"10.0.0.0/33\"]\n\n[[notify.webhooks]]\nurl = \"http://127.0.0.1:9/hook\"\nformat = \"teams\"\n",
    )
    .unwrap();
    let check = |config: &std::path::Path| {
        std::process::Command::new(crate::support::BIN)
            .args(["serve", "--check", "--config"])
            .arg(config)
            .arg("--data-dir")
            .arg(&data_dir)
            .output()
            .unwrap()
    };
    let refused = check(&config);
    assert!(!refused.status.success());
    let text = crate::support::stderr(&refused);
    assert!(text.contains("has 3 problem(s)"), "{text}");
    assert!(text.contains("namespaces.default_tier: there is no [tiers.gold]"), "{text}");
    assert!(text.contains("egress.allow_internal: \"10.0.0.0/33\" is not a CIDR"), "{text}");
    assert!(text.contains("format \"teams\" is not supported"), "{text}");

    std::fs::write(&config, "[server]\nlisten = \"127.0.0.1:0\"\n[tiers.gold]\nrequests_per_second = 10\nburst = 20\nconcurrency = 5\n[namespaces]\ndefault_tier = \"gold\"\n").unwrap();
    let valid = check(&config);
    assert!(valid.status.success(), "{}", crate::support::stderr(&valid));
    assert!(crate::support::stdout(&valid).contains("is valid"));
    assert!(!data_dir.exists(), "a check writes nothing");
}
