//! Tidy: the layout's rules, checked over `cargo metadata` and the source tree, so that an edge
//! that breaks a layer fails the suite instead of waiting for a review (see ARCHITECTURE.md,
//! "Invariants").

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The layer of every crate: 0 pure, 1 contracts and services, 2 adapters, 3 the binary.
/// A new crate must be placed here: the tidy test fails until it is.
const LAYERS: &[(&str, u8)] = &[
    ("manifest", 0),
    ("deployment", 0),
    ("bundle", 0),
    ("plan", 0),
    ("egress", 0),
    ("scan", 0),
    ("pii", 0),
    ("identity", 0),
    ("api-types", 0),
    ("audit", 0),
    ("durable", 0),
    ("app-templates", 0),
    ("runtime", 1),
    ("background", 1),
    ("capability-http", 1),
    ("capability-kv", 1),
    ("capability-sql", 1),
    ("capability-ai", 1),
    ("capability-vectors", 1),
    ("cache", 1),
    ("gateway", 1),
    ("secrets", 1),
    ("notify", 1),
    ("metering", 1),
    ("accounts", 1),
    ("vault", 1),
    ("oidc", 1),
    ("control", 1),
    ("control-api", 1),
    ("dashboard", 1),
    ("engine-js", 2),
    ("embed-candle", 2),
    ("ann-usearch", 2),
    ("store-sqlite", 2),
    ("store-postgres", 2),
    ("data-postgres", 2),
    ("policy", 2),
    ("telemetry", 2),
    ("terrarium", 3),
];

/// Crates that serve the tests and benchmarks, outside the layers.
const TOOLS: &[&str] = &["test-support", "bench"];

/// What a layer-0 crate never depends on: runtimes, network and storage stacks, engines.
const NOT_PURE: &[&str] = &[
    "tokio",
    "hyper",
    "axum",
    "tower",
    "tower-http",
    "reqwest",
    "sqlx",
    "rusqlite",
    "tokio-postgres",
    "sqlparser",
    "redis",
    "lettre",
    "kube",
    "rquickjs",
];

/// Heavy dependencies and the only crates that may name them.
const HOMES: &[(&str, &[&str])] = &[
    ("sqlx", &["store-sqlite", "store-postgres"]),
    ("rusqlite", &["capability-sql"]),
    ("tokio-postgres", &["data-postgres"]),
    ("postgres-protocol", &["data-postgres"]),
    ("sqlparser", &["data-postgres"]),
    ("rquickjs", &["engine-js"]),
    ("ada-url", &["engine-js"]),
    ("candle-core", &["embed-candle"]),
    ("usearch", &["ann-usearch"]),
    ("candle-nn", &["embed-candle"]),
    ("candle-transformers", &["embed-candle"]),
    ("tokenizers", &["embed-candle"]),
    ("regorus", &["policy"]),
    ("lettre", &["notify"]),
    ("opentelemetry", &["telemetry"]),
    ("opentelemetry_sdk", &["telemetry"]),
    ("opentelemetry-otlp", &["telemetry"]),
    ("tracing-opentelemetry", &["telemetry"]),
    ("prometheus-client", &["metering"]),
    ("jsonwebtoken", &["identity", "oidc"]),
    ("axum", &["gateway", "control-api", "dashboard", "terrarium"]),
    ("reqwest", &["capability-http", "oidc", "vault", "notify", "terrarium"]),
];

/// What the gateway never names: it sees deployments, the runtime contract and identity.
const NOT_FOR_THE_GATEWAY: &[&str] = &[
    "control",
    "accounts",
    "control-api",
    "dashboard",
    "notify",
    "metering",
    "secrets",
    "vault",
    "oidc",
    "capability-http",
    "capability-kv",
    "capability-sql",
    "engine-js",
    "store-sqlite",
];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// Each workspace crate's normal (not dev, not build) dependencies.
fn dependencies() -> BTreeMap<String, Vec<String>> {
    let output = std::process::Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(workspace_root())
        .output()
        .expect("cargo metadata runs");
    assert!(output.status.success(), "cargo metadata: {}", String::from_utf8_lossy(&output.stderr));
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let mut crates = BTreeMap::new();
    for package in metadata["packages"].as_array().unwrap() {
        let normal = package["dependencies"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|dependency| dependency["kind"].is_null())
            .map(|dependency| dependency["name"].as_str().unwrap().to_owned())
            .collect();
        crates.insert(package["name"].as_str().unwrap().to_owned(), normal);
    }
    crates
}

fn layer(name: &str) -> Option<u8> {
    LAYERS.iter().find(|(crate_name, _)| *crate_name == name).map(|(_, layer)| *layer)
}

#[test]
fn every_crate_has_a_layer_and_no_edge_points_up() {
    let crates = dependencies();
    let mut problems = Vec::new();
    for (name, dependencies) in &crates {
        if TOOLS.contains(&name.as_str()) {
            continue;
        }
        let Some(own) = layer(name) else {
            problems.push(format!("{name} has no layer: add it to LAYERS in {}", file!()));
            continue;
        };
        for dependency in dependencies.iter().filter(|dependency| crates.contains_key(*dependency)) {
            match layer(dependency) {
                Some(theirs) if theirs > own => {
                    problems.push(format!("{name} (layer {own}) depends on {dependency} (layer {theirs}), above it"))
                }
                None if !TOOLS.contains(&dependency.as_str()) => {
                    problems.push(format!("{name} depends on {dependency}, which has no layer"))
                }
                None => problems.push(format!("{name} depends on the test tool {dependency} outside its tests")),
                Some(_) => {}
            }
        }
    }
    assert!(problems.is_empty(), "layer rules broken:\n{}", problems.join("\n"));
}

#[test]
fn pure_crates_stay_pure_and_heavy_dependencies_stay_home() {
    let crates = dependencies();
    let mut problems = Vec::new();
    for (name, dependencies) in &crates {
        if TOOLS.contains(&name.as_str()) {
            continue;
        }
        for dependency in dependencies {
            if layer(name) == Some(0) && NOT_PURE.contains(&dependency.as_str()) {
                problems.push(format!("{name} is pure (layer 0) but depends on {dependency}"));
            }
            if let Some((_, homes)) = HOMES.iter().find(|(heavy, _)| heavy == dependency)
                && !homes.contains(&name.as_str())
            {
                problems.push(format!("{name} depends on {dependency}, which only {} may name", homes.join(", ")));
            }
            if name == "gateway" && NOT_FOR_THE_GATEWAY.contains(&dependency.as_str()) {
                problems.push(format!("the gateway depends on {dependency}; it sees only its own traits"));
            }
        }
    }
    assert!(problems.is_empty(), "dependency rules broken:\n{}", problems.join("\n"));
}

#[test]
fn every_module_says_what_it_is_for() {
    let mut missing = Vec::new();
    let mut stack: Vec<PathBuf> = ["crates", "bench"].iter().map(|dir| workspace_root().join(dir)).collect();
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                if !matches!(name.as_str(), "target" | "node_modules" | "fixtures" | "snapshots") {
                    stack.push(path);
                }
            } else if name.ends_with(".rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                let first = text.lines().find(|line| !line.trim().is_empty()).unwrap_or_default();
                if !first.starts_with("//!") {
                    missing.push(path.strip_prefix(workspace_root()).unwrap().display().to_string());
                }
            }
        }
    }
    missing.sort();
    assert!(
        missing.is_empty(),
        "these files do not start with a `//!` line saying what they are for:\n{}",
        missing.join("\n")
    );
}

/// The components with a section in `terrarium.toml`: each types it in its own `config` module,
/// with `validate` and `build` (see ARCHITECTURE.md, "Configuration and the shape of a component").
const CONFIGURED: &[&str] = &[
    "accounts",
    "cache",
    "capability-http",
    "capability-kv",
    "capability-sql",
    "engine-js",
    "gateway",
    "metering",
    "notify",
    "plan",
    "scan",
    "secrets",
    "store-postgres",
    "telemetry",
];

#[test]
fn every_configured_component_owns_its_section() {
    let mut problems = Vec::new();
    for name in CONFIGURED {
        let src = workspace_root().join("crates").join(name).join("src");
        let config = ["config.rs", "config/mod.rs"].iter().map(|file| src.join(file)).find(|path| path.exists());
        let Some(config) = config else {
            problems.push(format!("{name} has no src/config.rs for its terrarium.toml section"));
            continue;
        };
        let text = std::fs::read_to_string(&config).unwrap();
        for needed in ["Deserialize", "deny_unknown_fields", "fn validate", "fn build"] {
            if !text.contains(needed) {
                problems.push(format!("{} has no {needed}", config.strip_prefix(workspace_root()).unwrap().display()));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Dependencies declared for what they switch on, not for code that names them: each with why.
const USED_WITHOUT_A_NAME: &[(&str, &str, &str)] = &[(
    "capability-sql",
    "libsqlite3-sys",
    "its feature builds SQLCipher in place of SQLite, for rusqlite and sqlx alike",
)];

/// Every `.rs` file under `dir`, as one text (sources, tests, benches and the build script).
fn crate_sources(dir: &Path) -> String {
    let mut text = String::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                if !matches!(name.as_str(), "target" | "node_modules") {
                    stack.push(path);
                }
            } else if name.ends_with(".rs") {
                text.push_str(&std::fs::read_to_string(&path).unwrap());
                text.push('\n');
            }
        }
    }
    text
}

/// `cargo machete`'s check, without installing it: a dependency no source of its crate names
/// (`name::`, `use name`) is unused, and the suite fails until it goes (or is listed above with
/// the reason it is there).
#[test]
fn every_declared_dependency_is_used() {
    let output = std::process::Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(workspace_root())
        .output()
        .expect("cargo metadata runs");
    assert!(output.status.success(), "cargo metadata: {}", String::from_utf8_lossy(&output.stderr));
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let mut unused = Vec::new();
    for package in metadata["packages"].as_array().unwrap() {
        let name = package["name"].as_str().unwrap();
        let dir = Path::new(package["manifest_path"].as_str().unwrap()).parent().unwrap().to_path_buf();
        let sources = crate_sources(&dir);
        for dependency in package["dependencies"].as_array().unwrap() {
            let declared = dependency["rename"].as_str().or(dependency["name"].as_str()).unwrap();
            let ident = declared.replace('-', "_");
            // `name::` after no identifier character, or `use name` and `extern crate name` as a
            // whole word (`use tokio` must not pass for `use tokio_stream`).
            let ident_char = |c: char| c.is_alphanumeric() || c == '_';
            let found = |needle: &str, word_end: bool| {
                sources.match_indices(needle).any(|(at, _)| {
                    let before = sources[..at].chars().next_back().is_none_or(|c| !ident_char(c));
                    let after = !word_end || sources[at + needle.len()..].chars().next().is_none_or(|c| !ident_char(c));
                    before && after
                })
            };
            let named = found(&format!("{ident}::"), false)
                || found(&format!("use {ident}"), true)
                || found(&format!("extern crate {ident}"), true);
            let excused = USED_WITHOUT_A_NAME.iter().any(|(krate, dep, _)| *krate == name && *dep == declared);
            if !named && !excused {
                let kind = dependency["kind"].as_str().unwrap_or("normal");
                unused.push(format!("{name}: {declared} ({kind})"));
            }
        }
    }
    // And every `[workspace.dependencies]` entry is some member's dependency.
    let root: toml::Table = std::fs::read_to_string(workspace_root().join("Cargo.toml")).unwrap().parse().unwrap();
    let declared: std::collections::BTreeSet<&str> = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|package| package["dependencies"].as_array().unwrap())
        .map(|dependency| dependency["name"].as_str().unwrap())
        .collect();
    for name in root["workspace"]["dependencies"].as_table().unwrap().keys() {
        if !declared.contains(name.as_str()) {
            unused.push(format!("[workspace.dependencies]: {name}"));
        }
    }
    unused.sort();
    unused.dedup();
    assert!(unused.is_empty(), "declared but never named in the crate's sources; remove them:\n{}", unused.join("\n"));
}
