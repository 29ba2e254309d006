//! Measurements: instance creation + first call, hot calls, and resident memory per warm app.
//!
//! Prints its numbers (`cargo test -p engine-js --release -- measure --nocapture`); it asserts
//! only that every app answered, since a debug build or a busy machine would fail any time bound.

use std::time::{Duration, Instant};

use crate::support::{AppBuilder, ENTRY, request};
use engine_js::{JsEngine, JsEngineConfig};

const HELLO: &str = r#"export default { async fetch(request) { return new Response("Hello, world!"); } };"#;

fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

fn percentile(samples: &mut [Duration], fraction: f64) -> Duration {
    samples.sort();
    samples[((samples.len() - 1) as f64 * fraction) as usize]
}

#[tokio::test]
async fn measure_first_and_hot_calls_and_memory() {
    let n_apps: usize =
        std::env::var("ENGINE_JS_MEASURE_APPS").ok().and_then(|value| value.parse().ok()).unwrap_or(1000);
    let engine = JsEngine::new(JsEngineConfig {
        worker_threads: 1,
        worker_stack_bytes: 4 * 1024 * 1024,
        queue_capacity_per_worker: 4096,
        max_instances_per_app: 1,
        idle_instances_per_app: 1,
        idle_instance_timeout: None,
    });
    // Warm the process: the prelude is compiled once, the worker thread exists.
    let warmup = AppBuilder::new("warmup", HELLO).load(&engine).unwrap();
    warmup.text("/").await;

    let before_load = resident_bytes();
    let started = Instant::now();
    let apps: Vec<_> =
        (0..n_apps).map(|index| AppBuilder::new(&format!("app-{index}"), HELLO).load(&engine).unwrap()).collect();
    let load_time = started.elapsed();
    let after_load = resident_bytes();

    let mut first_calls = Vec::with_capacity(n_apps);
    for app in &apps {
        let started = Instant::now();
        let response = app.app.invoke(ENTRY, request("GET", "/")).await.unwrap();
        first_calls.push(started.elapsed());
        assert_eq!(response.status, 200);
    }
    let after_warm = resident_bytes();

    let mut hot_calls = Vec::with_capacity(2000);
    for index in 0..2000 {
        let app = &apps[index % 10];
        let started = Instant::now();
        app.app.invoke(ENTRY, request("GET", "/")).await.unwrap();
        hot_calls.push(started.elapsed());
    }
    let hot_started = Instant::now();
    let concurrent = (0..2000).map(|index| apps[index % 10].app.invoke(ENTRY, request("GET", "/")));
    for result in futures::future::join_all(concurrent).await {
        result.unwrap();
    }
    let pipelined = hot_started.elapsed();

    let per_app = |bytes: u64| bytes as f64 / n_apps as f64 / 1024.0;
    println!(
        "engine-js measurements ({} build, {n_apps} hello-world apps, 1 worker thread):",
        if cfg!(debug_assertions) { "debug" } else { "release" }
    );
    println!("  load (compile + check) per app:      {:?}", load_time / n_apps as u32);
    println!(
        "  first call (new instance) p50 / p99:  {:?} / {:?}",
        percentile(&mut first_calls, 0.5),
        percentile(&mut first_calls, 0.99)
    );
    println!(
        "  hot call round trip p50 / p99:        {:?} / {:?}",
        percentile(&mut hot_calls, 0.5),
        percentile(&mut hot_calls, 0.99)
    );
    println!("  hot calls, 2000 in flight at once:    {:?} per call", pipelined / 2000);
    println!("  resident per loaded app (no instance): {:.1} KiB", per_app(after_load.saturating_sub(before_load)));
    println!("  resident per warm app (with instance): {:.1} KiB", per_app(after_warm.saturating_sub(before_load)));
    println!("  resident per warm instance alone:      {:.1} KiB", per_app(after_warm.saturating_sub(after_load)));
}
