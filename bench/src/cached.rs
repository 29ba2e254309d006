//! `--cache`: a function's response served from the gateway's response cache, the same
//! response run every time, and nginx serving the same bytes, in one run; with the server's
//! CPU time per request for the first two.

use std::net::SocketAddr;
use std::time::Duration;

use crate::{LoadResult, load, load_as};

const CACHED_JS: &str = "export default { fetch(request) {\n\
  const cached = new URL(request.url).pathname === '/hit';\n\
  return new Response('Hello, world!', { headers: { 'content-type': 'text/plain', 'cache-control': cached ? 'public, s-maxage=300' : 'no-store' } });\n\
} };\n";

/// A read-heavy app: nine of ten requests read a menu rendered from 200 items, the tenth is an
/// order that is never cached. `CACHE` is the menu's Cache-Control.
const READ_HEAVY_JS: &str = "const items = Array.from({ length: 200 }, (_, i) => ({ id: i, name: `dish ${i}`, price: (i * 37) % 23 + 5 }));\n\
export default { fetch(request) {\n\
  const url = new URL(request.url);\n\
  if (url.pathname === '/order') {\n\
    return new Response(JSON.stringify({ ok: true, at: url.search }), { headers: { 'content-type': 'application/json', 'cache-control': 'no-store' } });\n\
  }\n\
  const menu = items.filter((item) => item.price > 6).map((item) => ({ ...item, label: `${item.name} (${item.price} EUR)` }));\n\
  return new Response(JSON.stringify(menu), { headers: { 'content-type': 'application/json', 'cache-control': CACHE } });\n\
} };\n";

/// CPU seconds (user and system) the process has used, from `/proc/PID/stat`.
fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let fields: Vec<&str> =
        stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    // utime and stime are the 14th and 15th fields: 12th and 13th after the command.
    let ticks: f64 = fields.get(11).and_then(|value| value.parse().ok()).unwrap_or(0.0)
        + fields.get(12).and_then(|value| value.parse().ok()).unwrap_or(0.0);
    Ok(ticks / 100.0)
}

/// A load run and the server's CPU microseconds per request during it.
async fn measured(
    address: SocketAddr,
    paths: &[&str],
    pid: u32,
    connections: usize,
    duration: Duration,
) -> anyhow::Result<(LoadResult, f64)> {
    load_as(address, "127.0.0.1", paths, None, connections, Duration::from_millis(500)).await?;
    let before = cpu_seconds(pid)?;
    let result = load_as(address, "127.0.0.1", paths, None, connections, duration).await?;
    let used = cpu_seconds(pid)? - before;
    anyhow::ensure!(result.errors == 0, "{} requests to {paths:?} failed", result.errors);
    let requests = result.requests_per_second * duration.as_secs_f64();
    Ok((result, used / requests.max(1.0) * 1e6))
}

pub async fn run(args: &crate::Args, address: SocketAddr, token: &str, terrarium_pid: u32) -> anyhow::Result<()> {
    crate::deploy(
        address,
        token,
        &[("terrarium.yaml", crate::manifest("cached", "function")), ("fn.js", CACHED_JS.into())],
    )
    .await?;
    for (name, control) in [("readcached", "public, s-maxage=60"), ("readuncached", "no-store")] {
        let code = READ_HEAVY_JS.replace("CACHE", &format!("'{control}'"));
        crate::deploy(address, token, &[("terrarium.yaml", crate::manifest(name, "function")), ("fn.js", code)])
            .await?;
    }
    let duration = Duration::from_secs(args.seconds);
    let (hit, hit_cpu) =
        measured(address, &["/apps/bench/cached/hit"], terrarium_pid, args.connections, duration).await?;
    let (run, run_cpu) =
        measured(address, &["/apps/bench/cached/miss"], terrarium_pid, args.connections, duration).await?;
    let mut read_heavy = Vec::new();
    for name in ["readcached", "readuncached"] {
        let menu = format!("/apps/bench/{name}/menu");
        let order = format!("/apps/bench/{name}/order");
        let mut mix = vec![menu.as_str(); 9];
        mix.push(order.as_str());
        read_heavy.push(measured(address, &mix, terrarium_pid, args.connections, duration).await?);
    }
    // The floor a Rust server on hyper starts from: hello world with no platform around it.
    let hyper = {
        let (_process, hyper_address) = crate::start(std::process::Command::new(&args.hyper), "listening on ")?;
        load(hyper_address, "127.0.0.1", "/", args.connections, Duration::from_millis(500)).await?;
        load(hyper_address, "127.0.0.1", "/", args.connections, duration).await?
    };
    let nginx_dir = tempfile::tempdir()?;
    let nginx = match &args.nginx {
        Some(nginx) => {
            let (process, nginx_address) = crate::idle::start_nginx(nginx, nginx_dir.path())?;
            load(nginx_address, "127.0.0.1", "/", args.connections, Duration::from_millis(500)).await?;
            let result = load(nginx_address, "127.0.0.1", "/", args.connections, duration).await?;
            drop(process);
            Some(result)
        }
        None => None,
    };

    println!();
    println!("Response cache: {} connections, {} s each, loopback, same run", args.connections, args.seconds);
    println!("| {:<36} | {:>10} | {:>8} | {:>8} | {:>12} |", "target", "req/s", "p50 ms", "p99 ms", "CPU µs/req");
    println!("|{:-<38}|{:->12}|{:->10}|{:->10}|{:->14}|", "", "", "", "", "");
    let row = |name: &str, result: &LoadResult, cpu: Option<f64>| {
        println!(
            "| {:<36} | {:>10.0} | {:>8.3} | {:>8.3} | {:>12} |",
            name,
            result.requests_per_second,
            result.p50.as_secs_f64() * 1e3,
            result.p99.as_secs_f64() * 1e3,
            cpu.map_or(String::new(), |cpu| format!("{cpu:.1}"))
        );
    };
    row("terrarium function, cached (HIT)", &hit, Some(hit_cpu));
    row("terrarium function, run each time", &run, Some(run_cpu));
    row("bare hyper hello, no platform", &hyper, None);
    if let Some(nginx) = &nginx {
        row("nginx, the same bytes", nginx, None);
        println!("cached ÷ nginx, req/s: {:.2}", hit.requests_per_second / nginx.requests_per_second);
    }
    println!("cached ÷ bare hyper, req/s: {:.2}", hit.requests_per_second / hyper.requests_per_second);
    println!(
        "cached ÷ run each time, req/s: {:.2}; CPU per request: {:.2}",
        hit.requests_per_second / run.requests_per_second,
        hit_cpu / run_cpu
    );
    let [(cached, cached_cpu), (uncached, uncached_cpu)] = &read_heavy[..] else { unreachable!("two runs") };
    println!();
    println!("Read-heavy app (9 of 10 requests the same GET of a rendered menu, 1 an order never cached):");
    row("read-heavy, menu cached", cached, Some(*cached_cpu));
    row("read-heavy, nothing cached", uncached, Some(*uncached_cpu));
    println!(
        "cached ÷ uncached, req/s: {:.2}; CPU per request: {:.2}",
        cached.requests_per_second / uncached.requests_per_second,
        cached_cpu / uncached_cpu
    );
    Ok(())
}
