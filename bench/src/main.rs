//! `terrarium-bench`: starts the release binary, deploys fixtures, drives load on 127.0.0.1
//! and prints one table, every row measured in the same run.
//!
//! Rows: a static file, a hello-world function, a bare hyper server (the baseline), Bun's bare
//! server when `bench/run` could install it; then density: N apps deployed, each sent its first
//! request, with first-request latency and resident memory per app.

mod cached;
mod idle;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Empty, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;

#[derive(Parser)]
struct Args {
    /// The terrarium binary to measure.
    #[arg(long, default_value = "target/release/terrarium")]
    terrarium: PathBuf,
    /// The baseline server binary.
    #[arg(long, default_value = "target/release/hello-hyper")]
    hyper: PathBuf,
    /// Bun's binary, if installed (bench/run installs @oven/bun-linux-x64 from npm).
    #[arg(long)]
    bun: Option<PathBuf>,
    /// Open connections per load run.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Seconds per load run.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// JavaScript worker threads of the server (0: one per core).
    #[arg(long, default_value_t = 0)]
    engine_workers: usize,
    /// Apps deployed for the density measurement.
    #[arg(long, default_value_t = 1000)]
    apps: usize,
    /// Run the noisy-neighbour scenario instead: a quiet app under steady load, alone and then
    /// while a second app is flooded at 20 times its rate limit.
    #[arg(long)]
    noisy: bool,
    /// The quiet app's steady rate in the noisy-neighbour scenario, requests per second.
    #[arg(long, default_value_t = 500)]
    quiet_rate: u32,
    /// The flooded app's rate limit (requests per second); the flood is 20 times it.
    #[arg(long, default_value_t = 100)]
    noisy_limit: u32,
    /// Measure deploy admission instead: this many deploys of new revisions, each timed end to
    /// end, with the server's own time for the policy decision.
    #[arg(long)]
    admission: Option<usize>,
    /// Measure app data instead: a KV read-modify-write counter and a D1 insert+select through a
    /// deployed function, beside the same worker under Miniflare when --miniflare is given.
    #[arg(long)]
    data: bool,
    /// bench/miniflare/serve.mjs, run with Node.js (bench/run installs Miniflare beside it).
    #[arg(long)]
    miniflare: Option<PathBuf>,
    /// Measure the front door holding this many idle keep-alive connections instead: a static
    /// file's throughput and the server's memory without and with them, beside nginx (--nginx).
    #[arg(long)]
    idle: Option<usize>,
    /// Measure the response cache instead: a function's response served from the cache, the
    /// same response run every time, and nginx (--nginx) serving the same bytes.
    #[arg(long)]
    cache: bool,
    /// nginx's binary (Debian's nginx-light), for the --idle and --cache comparisons.
    #[arg(long)]
    nginx: Option<PathBuf>,
}

struct Process {
    child: Child,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a server and reads its address from the first stdout line containing `marker`.
fn start(mut command: Command, marker: &str) -> anyhow::Result<(Process, SocketAddr)> {
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().context("starting a server")?;
    let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
    let process = Process { child };
    loop {
        let Some(line) = lines.next() else { bail!("the server exited before printing {marker:?}") };
        let line = line?;
        if let Some(rest) = line.split(marker).nth(1) {
            let address =
                rest.trim().trim_start_matches("http://").split(['/', ' ']).next().unwrap_or_default().to_owned();
            std::thread::spawn(move || for _ in lines {});
            return Ok((process, address.parse().with_context(|| format!("no address in {line:?}"))?));
        }
    }
}

struct LoadResult {
    requests_per_second: f64,
    p50: Duration,
    p99: Duration,
    errors: u64,
}

/// Closed-loop load: `connections` keep-alive HTTP/1.1 connections, each sending the next
/// request when the previous answer is read, for `duration`.
async fn load(
    address: SocketAddr,
    host: &str,
    path: &str,
    connections: usize,
    duration: Duration,
) -> anyhow::Result<LoadResult> {
    load_as(address, host, &[path], None, connections, duration).await
}

/// [`load`] as a signed-in caller (each request carries `Authorization: Bearer TOKEN`), over a
/// mix of paths: each connection goes through `paths` in turn, from its own place in the list.
async fn load_as(
    address: SocketAddr,
    host: &str,
    paths: &[&str],
    bearer: Option<&str>,
    connections: usize,
    duration: Duration,
) -> anyhow::Result<LoadResult> {
    let deadline = Instant::now() + duration;
    let mut tasks = Vec::new();
    let authorization = bearer.map(|token| format!("Bearer {token}"));
    for connection in 0..connections {
        let host = host.to_owned();
        let paths: Vec<String> = paths.iter().map(|path| (*path).to_owned()).collect();
        let mut turn = connection;
        let authorization = authorization.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            let stream = tokio::net::TcpStream::connect(address).await?;
            stream.set_nodelay(true)?;
            let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(connection);
            while Instant::now() < deadline {
                let path = &paths[turn % paths.len()];
                turn += 1;
                let mut request = Request::get(path).header("host", &host);
                if let Some(authorization) = &authorization {
                    request = request.header("authorization", authorization);
                }
                let request = request.body(Empty::<Bytes>::new())?;
                let started = Instant::now();
                let response = sender.send_request(request).await?;
                let ok = response.status().is_success();
                response.into_body().collect().await?;
                latencies.push(started.elapsed());
                if !ok {
                    errors += 1;
                }
            }
            anyhow::Ok((latencies, errors))
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let (mut part, part_errors) = task.await??;
        latencies.append(&mut part);
        errors += part_errors;
    }
    latencies.sort();
    let n = latencies.len().max(1);
    Ok(LoadResult {
        requests_per_second: latencies.len() as f64 / duration.as_secs_f64(),
        p50: latencies.get(n / 2).copied().unwrap_or_default(),
        p99: latencies.get(n * 99 / 100).copied().unwrap_or_default(),
        errors,
    })
}

/// What an open-loop run saw: latencies of every answer and how many had each status.
struct PacedResult {
    latencies: Vec<Duration>,
    ok: u64,
    rate_limited: u64,
    busy: u64,
    other: u64,
}

/// Open-loop load: `rate` requests per second spread over `connections` keep-alive connections,
/// each sending on its own schedule whether or not the server keeps up, for `duration`.
async fn paced_load(
    address: SocketAddr,
    path: &str,
    rate: u32,
    connections: usize,
    duration: Duration,
) -> anyhow::Result<PacedResult> {
    let interval = Duration::from_secs_f64(connections as f64 / f64::from(rate.max(1)));
    let deadline = Instant::now() + duration;
    let mut tasks = Vec::new();
    for index in 0..connections {
        let path = path.to_owned();
        tasks.push(tokio::spawn(async move {
            let stream = tokio::net::TcpStream::connect(address).await?;
            stream.set_nodelay(true)?;
            let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(connection);
            // Stagger the connections so the rate is smooth.
            tokio::time::sleep(interval.mul_f64(index as f64 / connections as f64)).await;
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut result = PacedResult { latencies: Vec::new(), ok: 0, rate_limited: 0, busy: 0, other: 0 };
            while Instant::now() < deadline {
                ticks.tick().await;
                let request = Request::get(&path).header("host", "127.0.0.1").body(Empty::<Bytes>::new())?;
                let started = Instant::now();
                let response = sender.send_request(request).await?;
                let status = response.status().as_u16();
                response.into_body().collect().await?;
                result.latencies.push(started.elapsed());
                match status {
                    200 => result.ok += 1,
                    429 => result.rate_limited += 1,
                    503 => result.busy += 1,
                    _ => result.other += 1,
                }
            }
            anyhow::Ok(result)
        }));
    }
    let mut total = PacedResult { latencies: Vec::new(), ok: 0, rate_limited: 0, busy: 0, other: 0 };
    for task in tasks {
        let mut part = task.await??;
        total.latencies.append(&mut part.latencies);
        total.ok += part.ok;
        total.rate_limited += part.rate_limited;
        total.busy += part.busy;
        total.other += part.other;
    }
    total.latencies.sort();
    Ok(total)
}

/// The noisy-neighbour scenario: the quiet app's latency alone, then beside a flood.
async fn noisy_neighbour(args: &Args, address: SocketAddr, token: &str) -> anyhow::Result<()> {
    let duration = Duration::from_secs(args.seconds);
    let quiet = manifest("quiet", "function");
    let noisy = manifest("noisy", "function").replace(
        "    requestsPerSecond: 10000000\n    burst: 10000000\n    concurrency: 100000\n",
        &format!("    requestsPerSecond: {0}\n    burst: {0}\n    concurrency: 8\n", args.noisy_limit),
    );
    deploy(address, token, &[("terrarium.yaml", quiet), ("fn.js", HELLO_JS.into())]).await?;
    deploy(address, token, &[("terrarium.yaml", noisy), ("fn.js", HELLO_JS.into())]).await?;
    let flood_rate = args.noisy_limit * 20;
    paced_load(address, "/apps/bench/quiet/", args.quiet_rate, 8, Duration::from_millis(500)).await?;

    let alone = paced_load(address, "/apps/bench/quiet/", args.quiet_rate, 8, duration).await?;
    let (beside, flood) = tokio::join!(
        paced_load(address, "/apps/bench/quiet/", args.quiet_rate, 8, duration),
        paced_load(address, "/apps/bench/noisy/", flood_rate, 32, duration),
    );
    let (beside, flood) = (beside?, flood?);

    println!();
    println!(
        "Noisy neighbour: quiet app at {} req/s (open loop, 8 connections), {} s per phase; noisy app limited to {} req/s, flooded at {} req/s (32 connections)",
        args.quiet_rate, args.seconds, args.noisy_limit, flood_rate
    );
    println!("| quiet app                | answered | non-200 | p50 ms | p99 ms |");
    println!("|--------------------------|----------|---------|--------|--------|");
    for (name, result) in [("alone", &alone), ("beside the flood", &beside)] {
        println!(
            "| {name:<24} | {:>8} | {:>7} | {:>6.3} | {:>6.3} |",
            result.latencies.len(),
            result.rate_limited + result.busy + result.other,
            percentile(&result.latencies, 50).as_secs_f64() * 1e3,
            percentile(&result.latencies, 99).as_secs_f64() * 1e3,
        );
    }
    let sent = flood.latencies.len() as f64;
    println!(
        "Flood: {} answered; 200: {} ({:.1} %), 429: {} ({:.1} %), 503: {} ({:.1} %), other: {}",
        flood.latencies.len(),
        flood.ok,
        flood.ok as f64 / sent * 100.0,
        flood.rate_limited,
        flood.rate_limited as f64 / sent * 100.0,
        flood.busy,
        flood.busy as f64 / sent * 100.0,
        flood.other
    );
    println!(
        "Quiet p99 beside the flood ÷ alone: {:.2}",
        percentile(&beside.latencies, 99).as_secs_f64() / percentile(&alone.latencies, 99).as_secs_f64()
    );
    Ok(())
}

/// One request on a fresh connection; returns the latency and status.
async fn one_request(address: SocketAddr, path: &str) -> anyhow::Result<(Duration, u16)> {
    let stream = tokio::net::TcpStream::connect(address).await?;
    stream.set_nodelay(true)?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let request = Request::get(path).header("host", "127.0.0.1").body(Empty::<Bytes>::new())?;
    let started = Instant::now();
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    response.into_body().collect().await?;
    Ok((started.elapsed(), status))
}

const BENCH_ADMIN_PASSWORD: &str = "bench admin password";

/// Signs in as the first admin and returns the platform token.
async fn login(address: SocketAddr) -> anyhow::Result<String> {
    let stream = tokio::net::TcpStream::connect(address).await?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let body = serde_json::json!({ "username": "admin", "password": BENCH_ADMIN_PASSWORD }).to_string();
    let request = Request::post("/auth/login")
        .header("host", "127.0.0.1")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))?;
    let response = sender.send_request(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    if !status.is_success() {
        bail!("sign-in failed with {status}: {}", String::from_utf8_lossy(&body));
    }
    let answer: serde_json::Value = serde_json::from_slice(&body)?;
    Ok(answer["access_token"].as_str().context("no access_token in the sign-in answer")?.to_owned())
}

async fn deploy(address: SocketAddr, token: &str, files: &[(&str, String)]) -> anyhow::Result<serde_json::Value> {
    let limits = bundle::BundleLimits { max_total_bytes: 1 << 20, max_files: 100 };
    let mut app = bundle::Bundle::new();
    for (path, contents) in files {
        app.insert(path, contents.clone().into_bytes(), &limits)?;
    }
    let stream = tokio::net::TcpStream::connect(address).await?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let request = Request::post("/api/v1/deploy")
        .header("host", "127.0.0.1")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/x-tar")
        .body(Full::new(Bytes::from(app.to_tar())))?;
    let response = sender.send_request(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    if !status.is_success() {
        bail!("deploy failed with {status}: {}", String::from_utf8_lossy(&body));
    }
    Ok(serde_json::from_slice(&body)?)
}

/// Deploy admission: `n` deploys, each a new revision of one of 20 apps that pass every bundled
/// policy (so each is evaluated in full and goes live). Prints the end-to-end deploy latency and
/// the server's time for the policy decision, p50 and p99, from the same run.
async fn admission(address: SocketAddr, token: &str, n: usize) -> anyhow::Result<()> {
    let mut deploys = Vec::with_capacity(n);
    let mut decisions = Vec::with_capacity(n);
    for index in 0..n + 20 {
        let name = format!("app{}", index % 20);
        let manifest = format!(
            "apiVersion: terrarium.dev/v1\nkind: MicroApp\nmetadata:\n  name: {name}\n  namespace: bench\nspec:\n  owner: user:admin\n  description: Revision {index}\n  ttlDays: 60\n  access:\n    visibility: org\n  allowedEgress:\n    - api.example.com\n    - \"*.maps.example.com\"\n  quotas:\n    requestsPerSecond: 20\n    burst: 40\n  runtime: function\n  functions:\n    - route: /*\n      entry: fn.js\n"
        );
        let started = Instant::now();
        let answer = deploy(address, token, &[("terrarium.yaml", manifest), ("fn.js", HELLO_JS.into())]).await?;
        let elapsed = started.elapsed();
        anyhow::ensure!(answer["changed"] == true, "every deploy should be a new live revision: {answer}");
        // The first 20 create the apps; the rest are the measurement.
        if index >= 20 {
            deploys.push(elapsed);
            let ms = answer["admission_ms"].as_f64().context("the server reports admission_ms")?;
            decisions.push(Duration::from_secs_f64(ms / 1e3));
        }
    }
    deploys.sort();
    decisions.sort();
    println!();
    println!("Deploy admission: {n} deploys of new revisions (20 apps, bundled policies in deny mode), loopback");
    println!("| {:<40} | {:>8} | {:>8} |", "", "p50 ms", "p99 ms");
    println!("|{:-<42}|{:-<10}|{:-<10}|", "", "", "");
    for (label, samples) in
        [("whole deploy (client's view)", &deploys), ("policy decision (server's admission_ms)", &decisions)]
    {
        println!(
            "| {label:<40} | {:>8.3} | {:>8.3} |",
            percentile(samples, 50).as_secs_f64() * 1e3,
            percentile(samples, 99).as_secs_f64() * 1e3
        );
    }
    println!(
        "Policy decision ÷ whole deploy at p50: {:.3}",
        percentile(&decisions, 50).as_secs_f64() / percentile(&deploys, 50).as_secs_f64()
    );
    Ok(())
}

/// The data benchmark's worker, the same file under Terrarium and Miniflare.
const DATA_WORKER_JS: &str = include_str!("../data-worker.js");

/// App data: the KV counter and the D1 insert+select, under Terrarium and (when given) Miniflare,
/// each measured in the same run with the same load.
async fn data(args: &Args, address: SocketAddr, token: &str) -> anyhow::Result<()> {
    let duration = Duration::from_secs(args.seconds);
    let manifest = manifest("data", "function").replace(
        "  runtime: function\n",
        "  runtime: function\n  data:\n    kv: true\n    sql:\n      isolation: isolated\n",
    );
    // The same app for employees only: every request signed in (a bearer token), checked by
    // the access rules and metered, the path users take.
    let org = manifest.replace("name: data\n", "name: data-org\n").replace("visibility: public", "visibility: org");
    deploy(address, token, &[("terrarium.yaml", manifest), ("fn.js", DATA_WORKER_JS.into())]).await?;
    deploy(address, token, &[("terrarium.yaml", org), ("fn.js", DATA_WORKER_JS.into())]).await?;
    let (_, status) = one_request(address, "/apps/bench/data/setup").await?;
    anyhow::ensure!(status == 200, "the data app's setup answered {status}");
    let setup =
        load_as(address, "127.0.0.1", &["/apps/bench/data-org/setup"], Some(token), 1, Duration::from_millis(50))
            .await?;
    anyhow::ensure!(setup.errors == 0, "the signed-in data app's setup failed");
    let state = tempfile::tempdir()?;
    let miniflare = match &args.miniflare {
        Some(script) => {
            let mut command = Command::new("node");
            command.arg(script).arg(state.path());
            let (process, miniflare_address) = start(command, "listening on ")?;
            let (_, status) = one_request(miniflare_address, "/setup").await?;
            anyhow::ensure!(status == 200, "Miniflare's setup answered {status}");
            Some((process, miniflare_address))
        }
        None => None,
    };
    let mut rows = Vec::new();
    for (label, path) in [("KV counter (get + put)", "kv"), ("D1 insert + select", "d1")] {
        let ours = format!("/apps/bench/data/{path}");
        load(address, "127.0.0.1", &ours, args.connections, Duration::from_millis(500)).await?;
        let terrarium = load(address, "127.0.0.1", &ours, args.connections, duration).await?;
        let theirs = match &miniflare {
            Some((_, miniflare_address)) => {
                let theirs = format!("/{path}");
                load(*miniflare_address, "127.0.0.1", &theirs, args.connections, Duration::from_millis(500)).await?;
                Some(load(*miniflare_address, "127.0.0.1", &theirs, args.connections, duration).await?)
            }
            None => None,
        };
        let signed_in = format!("/apps/bench/data-org/{path}");
        load_as(address, "127.0.0.1", &[&signed_in], Some(token), args.connections, Duration::from_millis(500)).await?;
        let signed_in = load_as(address, "127.0.0.1", &[&signed_in], Some(token), args.connections, duration).await?;
        rows.push((label, terrarium, signed_in, theirs));
    }
    println!();
    println!("App data: {} connections, {} s each, loopback, same run", args.connections, args.seconds);
    println!(
        "| {:<32} | {:>10} | {:>8} | {:>8} | {:>6} | {:>12} |",
        "target", "ops/s", "p50 ms", "p99 ms", "errors", "÷ miniflare"
    );
    println!("|{:-<34}|{:->12}|{:->10}|{:->10}|{:->8}|{:->14}|", "", "", "", "", "", "");
    for (label, terrarium, signed_in, theirs) in &rows {
        let ratio =
            |ours: &LoadResult| theirs.as_ref().map(|theirs| ours.requests_per_second / theirs.requests_per_second);
        data_row(&format!("terrarium {label}"), terrarium, ratio(terrarium));
        data_row("  signed in (org app, bearer)", signed_in, ratio(signed_in));
        if let Some(theirs) = theirs {
            data_row(&format!("miniflare {label}"), theirs, Some(1.0));
        }
    }
    if miniflare.is_none() {
        println!("(no Miniflare row: bench/run runs it when Node.js and npm are installed)");
    }
    Ok(())
}

fn data_row(name: &str, result: &LoadResult, ratio: Option<f64>) {
    println!(
        "| {name:<32} | {:>10.0} | {:>8.3} | {:>8.3} | {:>6} | {:>12} |",
        result.requests_per_second,
        result.p50.as_secs_f64() * 1e3,
        result.p99.as_secs_f64() * 1e3,
        result.errors,
        ratio.map(|r| format!("{r:.2}")).unwrap_or_default()
    );
}

fn manifest(name: &str, runtime: &str) -> String {
    let mut text = format!(
        "apiVersion: terrarium.dev/v1\nkind: MicroApp\nmetadata:\n  name: {name}\n  namespace: bench\nspec:\n  owner: user:bench\n  access:\n    visibility: public\n  quotas:\n    requestsPerSecond: 10000000\n    burst: 10000000\n    concurrency: 100000\n  runtime: {runtime}\n"
    );
    if runtime != "function" {
        text.push_str("  static:\n    dir: public\n");
    }
    if runtime != "static" {
        text.push_str("  functions:\n    - route: /*\n      entry: fn.js\n");
    }
    text
}

const HELLO_JS: &str = "export default { fetch() { return new Response(\"Hello, world!\"); } };\n";

fn resident_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:")).context("no VmRSS")?;
    Ok(line.split_whitespace().nth(1).context("VmRSS value")?.parse()?)
}

fn row(name: &str, result: &LoadResult, ratio: Option<f64>) {
    println!(
        "| {name:<32} | {:>10.0} | {:>8.3} | {:>8.3} | {:>6} | {:>8} |",
        result.requests_per_second,
        result.p50.as_secs_f64() * 1e3,
        result.p99.as_secs_f64() * 1e3,
        result.errors,
        ratio.map(|r| format!("{r:.2}")).unwrap_or_default()
    );
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    sorted.get((sorted.len() * p / 100).min(sorted.len().saturating_sub(1))).copied().unwrap_or_default()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let duration = Duration::from_secs(args.seconds);
    let data_dir = tempfile::tempdir()?;
    let config_dir = tempfile::tempdir()?;
    let config = config_dir.path().join("terrarium.toml");
    // Generous engine and gateway limits so the measurement is of the path, not of shedding.
    std::fs::write(
        &config,
        // The throughput fixtures are public and owned by no real user: those two policies only
        // record them here. The admission apps call hosts on the namespace's list.
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[engine]\nworkers = {}\n[policy.modes]\nexposure = \"dryrun\"\nowner = \"dryrun\"\n[namespaces]\nallowed_egress = [\"api.example.com\", \"*.maps.example.com\"]\n",
            args.engine_workers
        ),
    )?;
    let mut command = Command::new(&args.terrarium);
    command
        .env("TERRARIUM_ADMIN_PASSWORD", BENCH_ADMIN_PASSWORD)
        .args(["serve", "--log", "warn", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(data_dir.path());
    let (terrarium, address) = start(command, "Terrarium is serving on ")?;
    let token = login(address).await?;
    if args.noisy {
        return noisy_neighbour(&args, address, &token).await;
    }
    if let Some(n) = args.admission {
        return admission(address, &token, n).await;
    }
    if args.data {
        return data(&args, address, &token).await;
    }
    if args.cache {
        return cached::run(&args, address, &token, terrarium.child.id()).await;
    }
    if let Some(idle) = args.idle {
        return idle::run(&args, address, &token, terrarium.child.id(), idle).await;
    }

    deploy(
        address,
        &token,
        &[("terrarium.yaml", manifest("static", "static")), ("public/index.html", "Hello, world!".into())],
    )
    .await?;
    deploy(address, &token, &[("terrarium.yaml", manifest("hello", "function")), ("fn.js", HELLO_JS.into())]).await?;

    let (_hyper, hyper_address) = start(Command::new(&args.hyper), "listening on ")?;
    let bun = match &args.bun {
        Some(bun) => {
            let mut command = Command::new(bun);
            command.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("bun-hello.js"));
            Some(start(command, "listening on ")?)
        }
        None => None,
    };

    // Warm up every target once, then measure.
    for (target, path) in [(address, "/apps/bench/static/"), (address, "/apps/bench/hello/"), (hyper_address, "/")] {
        load(target, "127.0.0.1", path, args.connections, Duration::from_millis(500)).await?;
    }
    let static_file = load(address, "127.0.0.1", "/apps/bench/static/", args.connections, duration).await?;
    let function = load(address, "127.0.0.1", "/apps/bench/hello/", args.connections, duration).await?;
    let baseline = load(hyper_address, "127.0.0.1", "/", args.connections, duration).await?;
    let bun_result = match &bun {
        Some((_, bun_address)) => {
            load(*bun_address, "127.0.0.1", "/", args.connections, Duration::from_millis(500)).await?;
            Some(load(*bun_address, "127.0.0.1", "/", args.connections, duration).await?)
        }
        None => None,
    };

    println!();
    println!("Throughput and latency: {} connections, {} s each, loopback, same run", args.connections, args.seconds);
    println!(
        "| {:<32} | {:>10} | {:>8} | {:>8} | {:>6} | {:>8} |",
        "target", "req/s", "p50 ms", "p99 ms", "errors", "÷ hyper"
    );
    println!("|{:-<34}|{:->12}|{:->10}|{:->10}|{:->8}|{:->10}|", "", "", "", "", "", "");
    let ratio = |result: &LoadResult| Some(result.requests_per_second / baseline.requests_per_second);
    row("(a) terrarium static file", &static_file, ratio(&static_file));
    row("(b) terrarium hello function", &function, ratio(&function));
    row("(c) bare hyper hello (baseline)", &baseline, Some(1.0));
    if let Some(bun) = &bun_result {
        row("(d) bun hello (Bun.serve)", bun, ratio(bun));
        println!("(b) ÷ (d) bun: {:.2}", function.requests_per_second / bun.requests_per_second);
    }
    println!("(b) ÷ (c) hyper: {:.2}", function.requests_per_second / baseline.requests_per_second);

    // Density: deploy N function apps, then send each its first request.
    let pid = terrarium.child.id();
    let rss_before = resident_kib(pid)?;
    let deploy_started = Instant::now();
    let token = Arc::new(token);
    for index in 0..args.apps {
        let name = format!("app-{index}");
        deploy(address, &token, &[("terrarium.yaml", manifest(&name, "function")), ("fn.js", HELLO_JS.into())]).await?;
    }
    let deploy_elapsed = deploy_started.elapsed();
    let rss_deployed = resident_kib(pid)?;
    let mut first = Vec::with_capacity(args.apps);
    for index in 0..args.apps {
        let (latency, status) = one_request(address, &format!("/apps/bench/app-{index}/")).await?;
        if status != 200 {
            bail!("app-{index} answered {status} to its first request");
        }
        first.push(latency);
    }
    let rss_warm = resident_kib(pid)?;
    first.sort();
    println!();
    println!("Density: {} function apps", args.apps);
    println!("| deploys/s | first request p50 ms | p99 ms | RSS before | after deploy | all warm | per warm app |");
    println!("|-----------|----------------------|--------|------------|--------------|----------|--------------|");
    println!(
        "| {:>9.0} | {:>20.3} | {:>6.3} | {:>7} MiB | {:>8} MiB | {:>4} MiB | {:>9.1} KiB |",
        args.apps as f64 / deploy_elapsed.as_secs_f64(),
        percentile(&first, 50).as_secs_f64() * 1e3,
        percentile(&first, 99).as_secs_f64() * 1e3,
        rss_before / 1024,
        rss_deployed / 1024,
        rss_warm / 1024,
        (rss_warm.saturating_sub(rss_before)) as f64 / args.apps as f64
    );
    println!("First-request latency is measured at the client on a new loopback connection: server time plus connect.");
    drop(terrarium);
    Ok(())
}
