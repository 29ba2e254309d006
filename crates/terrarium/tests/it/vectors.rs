//! Vector search for apps: a team wiki written against Cloudflare's Vectorize and Workers AI
//! APIs runs unmodified through `env.WIKI` and `env.AI`; the governed text pipeline redacts
//! personal data before anything is stored; the index outlives going cold, a crash and a
//! restart; another team's app with the same binding sees nothing; deleting the app deletes its
//! vectors. The embedding model is the real all-MiniLM-L6-v2 (`TERRARIUM_TEST_MODELS`).

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{Server, client, copy_fixture};

fn config() -> String {
    let models = std::env::var("TERRARIUM_TEST_MODELS")
        .expect("TERRARIUM_TEST_MODELS names the models directory; scripts/test installs the model and sets it");
    format!("[ai]\nmodels_dir = {models:?}\nembedding_threads = 1\n[data.vectors]\nidle_secs = 60\n")
}

/// The wiki, deployed into `namespace`.
fn deploy_wiki(server: &Server, namespace: &str) {
    let app = copy_fixture("team-wiki");
    let manifest = std::fs::read_to_string(app.path().join("terrarium.yaml")).unwrap();
    std::fs::write(
        app.path().join("terrarium.yaml"),
        manifest.replace("namespace: it", &format!("namespace: {namespace}")),
    )
    .unwrap();
    server.deploy(app.path());
}

fn post(server: &Server, namespace: &str, path: &str, body: &Value) -> Value {
    let response = client().post(server.app_url(namespace, "team-wiki", path)).json(body).send().unwrap();
    assert_eq!(response.status(), 200, "{path}");
    response.json().unwrap()
}

fn get(server: &Server, namespace: &str, path: &str) -> (u16, Value) {
    let response = server.get(namespace, "team-wiki", path);
    (response.status().as_u16(), response.json().unwrap())
}

fn ask(server: &Server, namespace: &str, question: &str) -> Value {
    let (status, found) = get(server, namespace, &format!("/ask?q={}", question.replace(' ', "%20")));
    assert_eq!(status, 200, "{found}");
    found
}

fn best(found: &Value) -> &str {
    found["matches"][0]["id"].as_str().unwrap_or_else(|| panic!("no match: {found}"))
}

fn pages() -> Value {
    json!([
        { "id": "vpn", "text": "Working from home: connect to the VPN with the company app. If it fails, e-mail Maria Garcia at maria.garcia@example.com or call +44 20 7946 0958.", "metadata": { "team": "it" } },
        { "id": "lunch", "text": "The cafeteria serves lunch from noon until two in the afternoon.", "metadata": { "team": "facilities" } },
        { "id": "laptop", "text": "To request a new laptop, open a ticket in the IT service desk.", "metadata": { "team": "it" } },
        { "id": "expenses", "text": "Expense reports are due on the fifth working day of each month.", "metadata": { "team": "finance" } },
        { "id": "expenses-copy", "text": "Expense reports are due on the fifth   working day of each month.", "metadata": { "team": "finance" } },
    ])
}

#[test]
fn a_team_wiki_finds_the_right_page_without_showing_personal_data() {
    let data_dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(&config(), data_dir.path(), &[]);
    server.cli_ok(&["namespaces", "create", "other"]);
    deploy_wiki(&server, "it");
    deploy_wiki(&server, "other");

    let stored = post(&server, "it", "/pages", &pages());
    assert_eq!(stored["count"], 5, "{stored}");
    assert_eq!(stored["deduplicated"], 1, "the copy differs only in white space: {stored}");
    assert!(stored["redacted"].as_u64().unwrap() >= 2, "the e-mail and the phone number at least: {stored}");

    let found = ask(&server, "it", "how do I connect to the vpn from home");
    assert_eq!(best(&found), "vpn", "{found}");
    let page = &found["matches"][0];
    let text = page["text"].as_str().unwrap();
    for personal in ["maria.garcia@example.com", "7946", "Maria Garcia"] {
        assert!(!text.contains(personal), "{personal:?} was stored: {text}");
    }
    assert!(text.contains("[EMAIL_ADDRESS]") && text.contains("[PHONE_NUMBER]"), "{text}");
    assert_eq!(page["metadata"], json!({ "team": "it" }));
    assert_eq!(page["provenance"]["source"], "it/team-wiki");
    assert_eq!(page["provenance"]["revision"], 1);
    assert!(page["score"].as_f64().unwrap() > 0.3, "{page}");
    assert_eq!(best(&ask(&server, "it", "when is lunch")), "lunch");
    assert_eq!(best(&ask(&server, "it", "my computer is broken, I need a new one")), "laptop");
    // A filter narrows before ranking: the closest finance page, whatever the question.
    let (_, filtered) = get(&server, "it", "/ask?q=vpn&team=finance&k=10");
    let ids: Vec<&str> =
        filtered["matches"].as_array().unwrap().iter().map(|found| found["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 2, "{filtered}");
    assert!(ids.iter().all(|id| id.starts_with("expenses")), "{filtered}");

    // The Vectorize way: vectors from Workers AI, upserted and queried as on Cloudflare.
    let upserted = post(
        &server,
        "it",
        "/vectors",
        &json!([
            { "id": "parking", "title": "Parking", "text": "Staff parking is in the garage under building B." },
        ]),
    );
    assert_eq!((upserted["count"].clone(), upserted["ids"].clone()), (json!(1), json!(["parking"])), "{upserted}");
    let (_, found) = get(&server, "it", "/search?q=where%20can%20I%20park%20my%20car");
    assert_eq!(best(&found), "parking", "{found}");
    assert_eq!(found["matches"][0]["metadata"], json!({ "title": "Parking" }));
    let (_, got) = get(&server, "it", "/get?id=parking&id=nope");
    assert_eq!(got, json!([{ "id": "parking", "metadata": { "title": "Parking" }, "dimensions": 384 }]));
    let (_, described) = get(&server, "it", "/describe");
    assert_eq!(
        (described["dimensions"].clone(), described["vectorCount"].clone()),
        (json!(384), json!(6)),
        "{described}"
    );
    let (status, refused) = get(&server, "it", "/bad");
    assert_eq!(status, 400);
    assert_eq!(refused["type"], "TypeError", "the app's mistake");
    assert!(refused["error"].as_str().unwrap().contains("has 3 dimensions; the index WIKI has 384"), "{refused}");

    // Another team's app with the same binding and the same ids finds nothing of ours.
    let theirs = ask(&server, "other", "how do I connect to the vpn from home");
    assert_eq!(theirs["count"], 0, "{theirs}");
    let (_, got) = get(&server, "other", "/get?id=vpn&id=parking");
    assert_eq!(got, json!([]));

    // Nothing in the index files is readable: vectors, text and metadata are sealed.
    let file = std::fs::read(data_dir.path().join("vectors/it/team-wiki/WIKI.vec")).unwrap();
    let bytes = String::from_utf8_lossy(&file);
    assert!(!bytes.contains("cafeteria") && !bytes.contains("finance"), "index files are sealed");

    // Searches, writes, embedding tokens and the index's bytes are in usage and cost.
    server.run_task("data.storage");
    server.run_task("metering.flush");
    let usage: Value = serde_json::from_str(&server.cli_ok(&["usage", "--app", "it/team-wiki", "-o", "json"])).unwrap();
    let entry = &usage[0];
    assert!(entry["vector_queries"].as_u64().unwrap() >= 5, "{usage}");
    assert_eq!(entry["vectors_written"], 6, "{usage}");
    assert!(entry["embedding_tokens"].as_u64().unwrap() > 50, "{usage}");
    assert!(entry["storage_bytes_max"].as_u64().unwrap() > 6 * 384 * 4, "{usage}");

    // Cold: an index nobody used for idle_secs leaves memory and comes back on its next use.
    server.advance_clock(Duration::from_secs(120));
    server.run_task("vectors.unload");
    assert_eq!(best(&ask(&server, "it", "when is lunch")), "lunch");

    // A crash (kill -9) and a restart keep every acknowledged write.
    let data_dir_path = server.kill();
    let server = Server::start_in(&config(), &data_dir_path, &[]);
    assert_eq!(best(&ask(&server, "it", "how do I connect to the vpn from home")), "vpn");
    let (_, described) = get(&server, "it", "/describe");
    assert_eq!(described["vectorCount"], 6);

    // Deleting the app deletes its vectors; the other team's stay.
    post(&server, "other", "/pages", &json!([{ "id": "x", "text": "Other team's page." }]));
    server.cli_ok(&["apps", "delete", "it/team-wiki", "--yes"]);
    assert!(!data_dir_path.join("vectors/it/team-wiki").exists(), "the index files are gone");
    assert!(data_dir_path.join("vectors/other/team-wiki/WIKI.vec").exists());
    let events = server.audit_events("action=data.delete");
    assert!(events.to_string().contains("index file(s) deleted with the app"), "{events}");
}

#[test]
fn vectors_expire_after_the_manifests_ttl() {
    let server = Server::start(&config());
    let app = copy_fixture("team-wiki");
    let manifest = std::fs::read_to_string(app.path().join("terrarium.yaml")).unwrap();
    std::fs::write(
        app.path().join("terrarium.yaml"),
        manifest.replace("piiRedaction: true", "piiRedaction: true\n      ttlDays: 30"),
    )
    .unwrap();
    server.deploy(app.path());
    post(&server, "it", "/pages", &json!([{ "id": "lunch", "text": "Lunch is at noon." }]));
    server.advance_clock(Duration::from_secs(29 * 86_400));
    assert_eq!(get(&server, "it", "/describe").1["vectorCount"], 1);
    server.advance_clock(Duration::from_secs(2 * 86_400));
    assert_eq!(get(&server, "it", "/describe").1["vectorCount"], 0, "expired vectors are never answered");
    assert_eq!(ask(&server, "it", "lunch")["count"], 0);
    server.run_task("vectors.sweep");
    let (_, described) = get(&server, "it", "/describe");
    assert_eq!(described["vectorCount"], 0);
}

#[test]
fn pii_detect_reads_json_lines_and_says_what_is_wrong() {
    let run = |args: &[&str], input: &str| {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_terrarium"))
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    let input = "{\"text\": \"Grüße, mail jürgen@example.de or call +49 30 901820\"}\n\n{\"text\": \"nothing here\"}\n";
    let output = run(&["pii", "detect", "--output", "json"], input);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let lines: Vec<Value> =
        String::from_utf8(output.stdout).unwrap().lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    assert_eq!(
        lines,
        [
            json!({ "entities": [
                { "type": "EMAIL_ADDRESS", "start": 12, "end": 29 },
                { "type": "PHONE_NUMBER", "start": 38, "end": 51 },
            ] }),
            json!({ "entities": [] }),
        ],
        "one answer per input line, character offsets"
    );
    let table = run(&["pii", "detect", "-o", "table"], input);
    assert!(String::from_utf8_lossy(&table.stdout).contains("EMAIL_ADDRESS\t12-29\tjürgen@example.de"));

    let bad = run(&["pii", "detect"], "{\"text\": \"fine\"}\n{\"body\": \"x\"}\n");
    assert!(!bad.status.success());
    let message = String::from_utf8_lossy(&bad.stderr);
    assert!(message.contains("standard input line 2") && message.contains("{\"text\": \"...\"}"), "{message}");
}
