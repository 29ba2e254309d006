//! The Web-platform conformance suite (`tests/conformance/`): cases written for this project
//! from what the Web Platform Tests assert, plus WPT's own data files, run inside a deployed
//! function. Every case passes unless `known-failures.tsv` lists it with its reason; a listed case
//! that passes fails the run too, so the list stays true. The pass counts per suite are printed
//! and written to `$CARGO_TARGET_TMPDIR/conformance.txt`, which `scripts/test` shows.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use deployment::FunctionLimits;

use crate::support::{AppBuilder, engine};

const SUITES: [&str; 12] = [
    "headers",
    "body",
    "request",
    "response",
    "encoding",
    "labels",
    "blob",
    "formdata",
    "urlsearchparams",
    "url",
    "streams",
    "tamper",
];

/// The conformance app: the runner as its entry, every suite beside it, WPT's data as modules.
fn conformance_app() -> AppBuilder {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance");
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap_or_else(|error| panic!("{name}: {error}"));
    let mut app = AppBuilder::new("conformance", &read("runner.js"));
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".js") && name != "runner.js" {
            app = app.module(&format!("functions/{name}"), &read(&name));
        }
    }
    for data in ["urltestdata", "setters_tests", "encodings"] {
        let json = read(&format!("wpt/{data}.json"));
        app = app.module(&format!("functions/wpt/{data}.js"), &format!("export default {json};\n"));
    }
    // Thousands of cases in one request each suite: more time and memory than an app's default.
    app.limits(FunctionLimits {
        cpu_ms_per_request: 20_000,
        memory_bytes: 128 * 1024 * 1024,
        stack_bytes: 1024 * 1024,
        wall_timeout_ms: 60_000,
        max_response_bytes: 16 * 1024 * 1024,
        max_outbound_requests: 0,
        max_outbound_bytes: 0,
    })
}

/// `suite` → case → why it fails, from `known-failures.tsv` (suite, case, reason; tab-separated).
fn known_failures() -> BTreeMap<(String, String), String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/known-failures.tsv");
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .filter(|line| !line.trim().is_empty() && !line.starts_with('#'))
        .map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            assert_eq!(fields.len(), 3, "known-failures.tsv: suite, case and reason, tab-separated: {line:?}");
            ((fields[0].to_owned(), fields[1].to_owned()), fields[2].to_owned())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_platform_suites_pass_but_for_their_known_failures() {
    let engine = engine();
    let app = conformance_app().load(&engine).unwrap_or_else(|error| panic!("the conformance app loads: {error}"));
    let known = known_failures();
    let mut summary = String::from("Web-platform conformance (crates/engine-js/tests/conformance):\n");
    let (mut unexpected, mut stale) = (Vec::new(), Vec::new());
    let (mut all_passed, mut all_total) = (0, 0);
    for suite in SUITES {
        let answer: serde_json::Value = app.json(&format!("/{suite}")).await;
        let passed: BTreeSet<String> =
            answer["passed"].as_array().unwrap().iter().map(|name| name.as_str().unwrap().to_owned()).collect();
        let failed = answer["failed"].as_array().unwrap();
        for failure in failed {
            let name = failure["name"].as_str().unwrap().to_owned();
            if !known.contains_key(&(suite.to_owned(), name.clone())) {
                unexpected.push(format!("{suite}: {name}: {}", failure["message"].as_str().unwrap_or_default()));
            }
        }
        for (known_suite, name) in known.keys() {
            if known_suite == suite && passed.contains(name) {
                stale.push(format!("{suite}: {name}"));
            }
        }
        let total = passed.len() + failed.len();
        summary += &format!("  {suite:<16} {:>5} / {total:<5} passed\n", passed.len());
        all_passed += passed.len();
        all_total += total;
    }
    summary += &format!(
        "  {:<16} {all_passed:>5} / {all_total:<5} passed ({:.1} %)\n",
        "all",
        100.0 * all_passed as f64 / all_total.max(1) as f64
    );
    println!("{summary}");
    let _ = std::fs::write(Path::new(env!("CARGO_TARGET_TMPDIR")).join("conformance.txt"), &summary);
    assert!(unexpected.is_empty(), "cases that fail and are not in known-failures.tsv:\n{}", unexpected.join("\n"));
    assert!(stale.is_empty(), "cases in known-failures.tsv that pass now (take them out):\n{}", stale.join("\n"));
}
