//! Embeddings per second of the local all-MiniLM-L6-v2 (embed-candle), on 1 thread and on every
//! core, the way the server runs it: many concurrent requests of a few texts each, batched by
//! `LocalEmbedder` onto its pool. Run by hand after `terrarium models fetch`:
//!
//!   cargo run --release -p bench --bin embed-bench -- [MODELS_DIR] [SECONDS]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use capability_ai::Embedder;

/// Texts of a typical wiki passage's length (about 40 tokens), all different.
fn passage(index: usize) -> String {
    format!(
        "Passage {index}: the team wiki explains how to request access to the shared drive, who approves it, \
         and what to do when the request is stuck for more than {} days.",
        index % 7 + 2
    )
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let models = PathBuf::from(args.first().map_or(".terrarium/models", String::as_str));
    let seconds: u64 = args.get(1).map_or(Ok(5), |value| value.parse())?;
    let dir = models.join(embed_candle::MODEL);
    let cores = std::thread::available_parallelism().map_or(1, |cores| cores.get());
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    println!("| threads | concurrent requests × texts | embeddings/s | p50 ms | p99 ms |");
    println!("|---------|-----------------------------|--------------|--------|--------|");
    let mut counts = vec![1, cores];
    counts.dedup();
    for threads in counts {
        let embedder = Arc::new(embed_candle::LocalEmbedder::new(dir.clone(), threads));
        anyhow::ensure!(embedder.installed(), "the model is not in {}; run terrarium models fetch", dir.display());
        // Load it and warm up outside the timed run.
        runtime.block_on(embedder.embed((0..8).map(passage).collect())).map_err(anyhow::Error::msg)?;
        let (clients, per_call) = (16, 4);
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let started = Instant::now();
        let mut latencies: Vec<Duration> = runtime.block_on(async {
            let tasks = (0..clients).map(|client| {
                let embedder = embedder.clone();
                tokio::spawn(async move {
                    let mut latencies = Vec::new();
                    let mut next = client * 1_000_000;
                    while Instant::now() < deadline {
                        let texts: Vec<String> = (next..next + per_call).map(passage).collect();
                        next += per_call;
                        let began = Instant::now();
                        embedder.embed(texts).await.expect("embeddings");
                        latencies.push(began.elapsed());
                    }
                    latencies
                })
            });
            futures::future::join_all(tasks).await.into_iter().flat_map(Result::unwrap).collect()
        });
        let elapsed = started.elapsed().as_secs_f64();
        latencies.sort();
        let at = |fraction: f64| latencies[((latencies.len() as f64 * fraction) as usize).min(latencies.len() - 1)];
        println!(
            "| {threads:>7} | {clients} × {per_call:<23} | {:>12.0} | {:>6.1} | {:>6.1} |",
            (latencies.len() * per_call) as f64 / elapsed,
            at(0.5).as_secs_f64() * 1000.0,
            at(0.99).as_secs_f64() * 1000.0
        );
    }
    Ok(())
}
