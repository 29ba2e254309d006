//! `policy-bench`: decisions per second of the bundled policy library on one core, and the
//! latency of one decision (p50, p99), for a typical app manifest.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

fn main() -> anyhow::Result<()> {
    let seconds: u64 = std::env::args().nth(1).and_then(|arg| arg.parse().ok()).unwrap_or(5);
    // An optional directory of policies to measure instead of the bundled library.
    let policies = match std::env::args().nth(2) {
        Some(dir) => policy::PolicySet::from_dir(std::path::Path::new(&dir))?,
        None => policy::PolicySet::builtin(),
    };
    let input = serde_json::json!({
        "manifest": {
            "apiVersion": "terrarium.dev/v1",
            "kind": "MicroApp",
            "metadata": { "name": "where2eat", "namespace": "growth" },
            "spec": {
                "owner": "group:growth",
                "runtime": "static+edge",
                "ttlDays": 60,
                "access": { "visibility": "org" },
                "secretsRef": "terrarium://growth/where2eat",
                "allowedEgress": ["api.example.com", "*.maps.example.com", "https://search.example.com:8443"],
                "quotas": { "requestsPerSecond": 20, "burst": 40, "concurrency": 8 },
                "dataClass": "internal"
            }
        },
        "namespace": { "maxTtlDays": 90, "tier": { "maxAppRequestsPerSecond": 100, "maxAppConcurrency": 32 } },
        "directory": { "owners": ["group:growth", "user:ana"] }
    });
    let modes = BTreeMap::new();
    // Warm up, and check the decision is the expected one.
    let decision = policies.evaluate(&input, &modes)?;
    anyhow::ensure!(decision.violations.is_empty(), "the sample app should pass: {decision:?}");
    for _ in 0..100 {
        policies.evaluate(&input, &modes)?;
    }
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut latencies = Vec::new();
    let started = Instant::now();
    while Instant::now() < deadline {
        let one = Instant::now();
        policies.evaluate(&input, &modes)?;
        latencies.push(one.elapsed());
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let at = |p: usize| latencies[(latencies.len() * p / 100).min(latencies.len() - 1)];
    println!(
        "Policy decisions, {} policies ({} files), one thread, {seconds} s:",
        policies.policies().len(),
        policies.files().len()
    );
    println!("| decisions/s | p50 µs | p99 µs |");
    println!("|-------------|--------|--------|");
    println!(
        "| {:>11.0} | {:>6.1} | {:>6.1} |",
        latencies.len() as f64 / elapsed.as_secs_f64(),
        at(50).as_secs_f64() * 1e6,
        at(99).as_secs_f64() * 1e6
    );
    Ok(())
}
