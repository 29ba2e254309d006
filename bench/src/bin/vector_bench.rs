//! The vector index on generated data shaped like a multi-tenant deployment: tenants with
//! power-law sizes (Zipf, s = 1), 384-d vectors drawn around per-tenant topic clusters (as real
//! embeddings cluster), queries from the same distribution. Measures, on one thread:
//! queries/s with uniform tenant traffic and with traffic weighted by tenant size, recall@10
//! against exact search, the fixed memory of a hot tenant, a cold 10k-vector tenant's first
//! query (loaded from its sealed file), and a restart with many tenants on disk.
//!
//!   cargo run --release -p bench --bin vector-bench -- --export /tmp/vectors
//!   python3 bench/vectors/baselines.py /tmp/vectors     # hnswlib and faiss on the same data
//!
//! `--export DIR` writes the data and the exact answers for the baselines.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use capability_vectors::index::{Entry, Index, dot};
use clap::Parser;
use futures::future::BoxFuture;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 1000)]
    tenants: usize,
    #[arg(long, default_value_t = 100_000)]
    vectors: usize,
    #[arg(long, default_value_t = 384)]
    dimensions: usize,
    /// Seconds of queries per traffic shape.
    #[arg(long, default_value_t = 3)]
    seconds: u64,
    /// Tenants on disk for the restart measure.
    #[arg(long, default_value_t = 100_000)]
    restart_tenants: usize,
    /// Where to write the data and the exact answers for bench/vectors/baselines.py.
    #[arg(long)]
    export: Option<PathBuf>,
    /// HNSW search expansions to measure (tenants from capability_vectors::index::GRAPH_FROM
    /// vectors get a graph); 0 measures the scan alone.
    #[arg(long, value_delimiter = ',', default_values_t = [0, 32, 64, 128])]
    expansions: Vec<usize>,
}

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const TOP_K: usize = 10;
const QUERIES: usize = 2000;

fn gaussian(rng: &mut StdRng) -> f32 {
    // Box-Muller.
    let (u, v): (f32, f32) = (rng.random_range(f32::EPSILON..1.0), rng.random());
    (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos()
}

fn unit(mut values: Vec<f32>) -> Vec<f32> {
    let norm = dot(&values, &values).sqrt();
    values.iter_mut().for_each(|value| *value /= norm);
    values
}

struct Data {
    dimensions: usize,
    /// Per tenant, its vectors.
    tenants: Vec<Vec<Vec<f32>>>,
    /// Queries with uniform tenant traffic and weighted by size: (tenant, vector).
    uniform: Vec<(usize, Vec<f32>)>,
    weighted: Vec<(usize, Vec<f32>)>,
}

fn generate(args: &Args) -> Data {
    let mut rng = StdRng::seed_from_u64(42);
    let dimensions = args.dimensions;
    let centers: Vec<Vec<f32>> =
        (0..512).map(|_| unit((0..dimensions).map(|_| gaussian(&mut rng)).collect())).collect();
    // Zipf sizes, at least one vector each, summing to `vectors`.
    let harmonic: f64 = (1..=args.tenants).map(|rank| 1.0 / rank as f64).sum();
    let mut sizes: Vec<usize> = (1..=args.tenants)
        .map(|rank| ((args.vectors as f64 / rank as f64 / harmonic).round() as usize).max(1))
        .collect();
    let total: usize = sizes.iter().sum();
    sizes[0] = (sizes[0] + args.vectors).saturating_sub(total).max(1);
    let spread = 1.0 / (dimensions as f32).sqrt();
    let topics: Vec<Vec<usize>> =
        (0..args.tenants).map(|_| (0..8).map(|_| rng.random_range(0..centers.len())).collect()).collect();
    let draw = |rng: &mut StdRng, tenant: usize| -> Vec<f32> {
        let center = &centers[topics[tenant][rng.random_range(0..8)]];
        unit(center.iter().map(|value| value + spread * gaussian(rng)).collect())
    };
    let tenants: Vec<Vec<Vec<f32>>> =
        sizes.iter().enumerate().map(|(tenant, &size)| (0..size).map(|_| draw(&mut rng, tenant)).collect()).collect();
    let uniform = (0..QUERIES)
        .map(|_| {
            let tenant = rng.random_range(0..args.tenants);
            (tenant, draw(&mut rng, tenant))
        })
        .collect();
    let weighted = (0..QUERIES)
        .map(|_| {
            let mut pick = rng.random_range(0..args.vectors.max(total));
            let tenant = sizes.iter().position(|&size| {
                if pick < size {
                    return true;
                }
                pick -= size;
                false
            });
            let tenant = tenant.unwrap_or(0);
            (tenant, draw(&mut rng, tenant))
        })
        .collect();
    Data { dimensions, tenants, uniform, weighted }
}

fn entry(id: usize, values: &[f32]) -> Entry {
    Entry {
        id: id.to_string().into(),
        namespace: None,
        values: values.into(),
        metadata: None,
        text: None,
        provenance: None,
        fingerprint: None,
        expires_at: None,
    }
}

/// The exact top 10 ids of a tenant for a query, by brute force.
fn exact(vectors: &[Vec<f32>], query: &[f32]) -> Vec<usize> {
    let mut scored: Vec<(f32, usize)> =
        vectors.iter().enumerate().map(|(id, vector)| (dot(query, vector), id)).collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    scored.iter().take(TOP_K).map(|(_, id)| *id).collect()
}

fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|pages| pages.parse().ok()).unwrap_or(0);
    pages * 4096
}

/// Seals with AES-256-GCM under one random key, as the server's data keys do.
struct KeySealer(secrets::envelope::Key);

impl capability_kv::Sealer for KeySealer {
    fn seal(&self, _: &str, aad: Vec<u8>, plaintext: Vec<u8>) -> BoxFuture<'static, Result<(i64, Vec<u8>), String>> {
        let sealed = self.0.seal(&plaintext, &aad).map(|sealed| (1, sealed)).map_err(|error| error.to_string());
        Box::pin(async move { sealed })
    }
    fn open(&self, _: &str, _: i64, aad: Vec<u8>, sealed: Vec<u8>) -> BoxFuture<'static, Result<Vec<u8>, String>> {
        let opened = self.0.open(&sealed, &aad).map(|plain| plain.to_vec()).map_err(|error| error.to_string());
        Box::pin(async move { opened })
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let started = Instant::now();
    let data = generate(&args);
    println!(
        "{} tenants, {} vectors of {} dimensions (largest tenant {}), generated in {:.1} s",
        data.tenants.len(),
        data.tenants.iter().map(Vec::len).sum::<usize>(),
        data.dimensions,
        data.tenants[0].len(),
        started.elapsed().as_secs_f64()
    );
    if let Some(dir) = &args.export {
        export(dir, &data)?;
    }
    // First, while the process has allocated little, so resident memory measures the tenants.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(tiers(&args, &data))?;

    println!("| traffic | HNSW expansion | queries/s (1 thread) | recall@10 | p50 µs | p99 µs |");
    println!("|---|---|---|---|---|---|");
    for &expansion in &args.expansions {
        let began = Instant::now();
        let indexes: Vec<Index> = data
            .tenants
            .iter()
            .map(|vectors| {
                let mut index = Index::new(data.dimensions);
                for (id, values) in vectors.iter().enumerate() {
                    index.put(entry(id, values));
                }
                if expansion > 0 && index.needs_graph() {
                    use capability_vectors::graph::GraphBuilder;
                    let snapshot = index.start_graph();
                    let graph = ann_usearch::Usearch { expansion }.new_graph(data.dimensions, snapshot.len()).unwrap();
                    for (slot, unit) in &snapshot {
                        graph.add(*slot, unit).unwrap();
                    }
                    index.finish_graph(Arc::from(graph)).unwrap();
                }
                index
            })
            .collect();
        if expansion > 0 {
            let graphs = indexes.iter().filter(|index| index.has_graph()).count();
            eprintln!(
                "({graphs} graphs built in {:.1} s; USearch SIMD: {})",
                began.elapsed().as_secs_f64(),
                ann_usearch::acceleration()
            );
        }
        measure(&args, &data, &indexes, expansion);
    }
    Ok(())
}

/// Queries/s and recall of both traffic shapes over `indexes`.
fn measure(args: &Args, data: &Data, indexes: &[Index], expansion: usize) {
    let search = capability_vectors::index::Search { top_k: TOP_K, rerank: true, filter: None, narrowed: false };
    let shown = if expansion == 0 { "scan only".to_owned() } else { expansion.to_string() };
    for (name, queries) in [("uniform over tenants", &data.uniform), ("weighted by tenant size", &data.weighted)] {
        let mut found_right = 0usize;
        for (tenant, query) in queries.iter() {
            let truth = exact(&data.tenants[*tenant], query);
            let index = &indexes[*tenant];
            let found = index.search(query, |_| true, &search);
            found_right += found
                .iter()
                .filter(|scored| {
                    let id: usize = index.slot(scored.slot).unwrap().id.parse().unwrap();
                    truth.contains(&id)
                })
                .count();
        }
        let expected: usize = queries.iter().map(|(tenant, _)| data.tenants[*tenant].len().min(TOP_K)).sum();
        let recall = found_right as f64 / expected as f64;
        let mut latencies = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(args.seconds);
        let began = Instant::now();
        let mut done = 0usize;
        while Instant::now() < deadline {
            for (tenant, query) in queries.iter() {
                let at = Instant::now();
                std::hint::black_box(indexes[*tenant].search(query, |_| true, &search));
                latencies.push(at.elapsed());
                done += 1;
            }
        }
        let rate = done as f64 / began.elapsed().as_secs_f64();
        latencies.sort();
        let at = |share: f64| {
            latencies[((latencies.len() as f64 * share) as usize).min(latencies.len() - 1)].as_secs_f64() * 1e6
        };
        println!("| {name} | {shown} | {rate:.0} | {recall:.4} | {:.1} | {:.1} |", at(0.5), at(0.99));
    }
}

/// Memory of hot tenants, a cold tenant's first query and a restart, through the service with
/// its sealed files.
async fn tiers(args: &Args, data: &Data) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let sealer: Arc<dyn capability_kv::Sealer> =
        Arc::new(KeySealer(secrets::envelope::Key::generate().map_err(|error| anyhow::anyhow!("{error}"))?));
    let clock = background::Clock::system();
    let service = |dir: &Path| {
        Arc::new(capability_vectors::Vectors::new(
            dir,
            capability_vectors::config::VectorsSection::default(),
            sealer.clone(),
            None,
            clock.clone(),
            Arc::new(runtime::NoDataMeter),
        ))
    };
    let index = |dimensions: u32| deployment::VectorIndex {
        binding: "VECTORS".to_owned(),
        dimensions,
        pii_redaction: false,
        ttl_days: None,
    };

    // Restart: many tenants of one vector each on disk, written as the service writes them
    // (without its per-write sync, to set up quickly); the server is ready at once (indexes load
    // on first use), and every tenant is loaded by its first query.
    let vectors = service(dir.path());
    let one = &data.tenants[0][0];
    let began = Instant::now();
    for tenant in 0..args.restart_tenants {
        let key = capability_vectors::IndexKey {
            app: deployment::AppKey::new(format!("ns-{}", tenant % 1000), format!("app-{tenant}")),
            binding: "VECTORS".to_owned(),
        };
        let record = capability_vectors::segment::Record::Put(vec![entry(tenant, one)]);
        let (version, sealed) = sealer
            .seal(&key.app.namespace, capability_vectors::frame_aad(&key), capability_vectors::segment::encode(&record))
            .await
            .map_err(anyhow::Error::msg)?;
        let path = vectors.path(&key).map_err(anyhow::Error::msg)?;
        std::fs::create_dir_all(path.parent().unwrap())?;
        let mut file = capability_vectors::segment::MAGIC.to_vec();
        file.extend(capability_vectors::segment::frame(version, &sealed));
        std::fs::write(path, file)?;
    }
    let written = began.elapsed();
    drop(vectors);
    let before = resident_bytes();
    let began = Instant::now();
    let restarted = service(dir.path());
    let ready = began.elapsed();
    let query = runtime::vectors::VectorOp::Query { vector: one.clone(), options: Default::default() };
    for tenant in 0..args.restart_tenants {
        let app = deployment::AppKey::new(format!("ns-{}", tenant % 1000), format!("app-{tenant}"));
        let host = restarted.for_app(&app, &index(data.dimensions as u32), 1, &[]).index;
        host.call(query.clone()).await.map_err(|error| anyhow::anyhow!("{error}"))?;
    }
    let all_loaded = began.elapsed();
    let per_tenant = (resident_bytes().saturating_sub(before)) as f64 / args.restart_tenants as f64;
    let payload = (data.dimensions * (4 + 4 + 1) + 4) as f64;
    println!(
        "restart with {} tenants on disk (written in {:.1} s): ready in {:.3} s; every tenant loaded by its first query after {:.1} s",
        args.restart_tenants,
        written.as_secs_f64(),
        ready.as_secs_f64(),
        all_loaded.as_secs_f64()
    );
    println!(
        "memory per hot tenant of one vector: {per_tenant:.0} B resident, of which {payload:.0} B the vector (values, unit copy, int8, scale): {:.0} B fixed",
        per_tenant - payload
    );

    // A cold tenant of 10,000 vectors: its first query loads the sealed file.
    let cold_dir = tempfile::tempdir()?;
    let writer = service(cold_dir.path());
    let app = deployment::AppKey::new("cold", "wiki");
    let host = writer.for_app(&app, &index(data.dimensions as u32), 1, &[]).index;
    let source: Vec<&Vec<f32>> = data.tenants.iter().flatten().take(10_000).collect();
    for chunk in source.chunks(1000).enumerate() {
        let (at, chunk) = chunk;
        let vectors = chunk
            .iter()
            .enumerate()
            .map(|(n, values)| runtime::vectors::VectorRecord {
                id: (at * 1000 + n).to_string(),
                values: (*values).clone(),
                metadata: None,
                namespace: None,
            })
            .collect();
        host.call(runtime::vectors::VectorOp::Insert { vectors, upsert: true })
            .await
            .map_err(|error| anyhow::anyhow!("{error}"))?;
    }
    drop((host, writer));
    let mut firsts = Vec::new();
    // Unloaded after every query (idle after 0 s), so each query finds the tenant cold.
    let cold = Arc::new(capability_vectors::Vectors::new(
        cold_dir.path(),
        capability_vectors::config::VectorsSection { idle_secs: 0, ..Default::default() },
        sealer.clone(),
        None,
        clock.clone(),
        Arc::new(runtime::NoDataMeter),
    ));
    let host = cold.for_app(&app, &index(data.dimensions as u32), 1, &[]).index;
    for round in 0..50 {
        let vector = data.uniform[round].1.clone();
        let began = Instant::now();
        host.call(runtime::vectors::VectorOp::Query { vector, options: Default::default() })
            .await
            .map_err(|error| anyhow::anyhow!("{error}"))?;
        firsts.push(began.elapsed());
        anyhow::ensure!(cold.unload_idle() == 1, "the tenant did not go cold");
    }
    firsts.sort();
    println!(
        "cold tenant of 10,000 vectors, first query (load from disk and search), 50 runs: p50 {:.2} ms, p99 {:.2} ms",
        firsts[25].as_secs_f64() * 1e3,
        firsts[49].as_secs_f64() * 1e3
    );
    Ok(())
}

/// Raw little-endian arrays for the Python baselines.
fn export(dir: &Path, data: &Data) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut vectors = std::io::BufWriter::new(std::fs::File::create(dir.join("vectors.f32"))?);
    let mut tenants = std::io::BufWriter::new(std::fs::File::create(dir.join("tenants.u32"))?);
    for (tenant, rows) in data.tenants.iter().enumerate() {
        for row in rows {
            for value in row {
                vectors.write_all(&value.to_le_bytes())?;
            }
            tenants.write_all(&(tenant as u32).to_le_bytes())?;
        }
    }
    for (name, queries) in [("uniform", &data.uniform), ("weighted", &data.weighted)] {
        let mut vectors = std::io::BufWriter::new(std::fs::File::create(dir.join(format!("{name}.f32")))?);
        let mut tenants = std::io::BufWriter::new(std::fs::File::create(dir.join(format!("{name}.tenants.u32")))?);
        let mut truth = std::io::BufWriter::new(std::fs::File::create(dir.join(format!("{name}.truth.i32")))?);
        for (tenant, query) in queries.iter() {
            for value in query {
                vectors.write_all(&value.to_le_bytes())?;
            }
            tenants.write_all(&(*tenant as u32).to_le_bytes())?;
            // Ids local to the tenant, -1 where it has fewer than 10 vectors.
            let mut ids = exact(&data.tenants[*tenant], query);
            ids.resize(TOP_K, usize::MAX);
            for id in ids {
                let id = if id == usize::MAX { -1i32 } else { id as i32 };
                truth.write_all(&id.to_le_bytes())?;
            }
        }
    }
    std::fs::write(
        dir.join("shape.json"),
        format!("{{\"dimensions\": {}, \"tenants\": {}}}\n", data.dimensions, data.tenants.len()),
    )?;
    println!("data for the baselines written to {}", dir.display());
    Ok(())
}
