//! `--idle N`: the front door holding N idle keep-alive connections. A static file's throughput
//! and the server's resident memory, without and with the idle connections, beside nginx serving
//! the same file to the same clients, in the same run.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::{LoadResult, Process, load, resident_kib};

/// Connections from one source address: under the server's per-client cap (1,000 by default),
/// so the idle clients come from several loopback addresses, as many clients would.
const PER_SOURCE: usize = 900;

/// One target's measurements.
struct Measured {
    idle: usize,
    load: LoadResult,
    resident_kib: u64,
}

/// Sends one keep-alive request on a fresh connection from `source` and reads its answer whole:
/// the connection is then an idle keep-alive one.
async fn idle_connection(address: SocketAddr, source: Ipv4Addr, path: &str) -> anyhow::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((source, 0)))?;
    let mut stream = socket.connect(address).await?;
    stream.write_all(format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").as_bytes()).await?;
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let n = stream.read(&mut buffer).await?;
        if n == 0 {
            bail!("the server closed an idle connection before answering");
        }
        answer.extend_from_slice(&buffer[..n]);
        let text = String::from_utf8_lossy(&answer);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            if !head.starts_with("HTTP/1.1 200") {
                bail!("an idle connection's request was answered {}", head.lines().next().unwrap_or_default());
            }
            let length = head
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length").then(|| value.trim().parse::<usize>().ok())?
                })
                .context("an answer without Content-Length")?;
            if body.len() >= length {
                return Ok(stream);
            }
        }
    }
}

/// Opens `count` idle keep-alive connections, 200 at a time.
async fn hold(address: SocketAddr, path: &str, count: usize) -> anyhow::Result<Vec<TcpStream>> {
    let mut held = Vec::with_capacity(count);
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..count {
        let source = Ipv4Addr::new(127, 0, 0, 2 + u8::try_from(index / PER_SOURCE).context("too many connections")?);
        let path = path.to_owned();
        tasks.spawn(async move { idle_connection(address, source, &path).await });
        if tasks.len() >= 200 {
            held.push(tasks.join_next().await.context("a task")???);
        }
    }
    while let Some(stream) = tasks.join_next().await {
        held.push(stream??);
    }
    Ok(held)
}

/// Throughput and memory of one target: alone, then with `idle` connections held.
async fn measure(
    address: SocketAddr,
    path: &str,
    pids: &dyn Fn() -> Vec<u32>,
    idle: usize,
    connections: usize,
    duration: Duration,
) -> anyhow::Result<[Measured; 2]> {
    let resident = || -> anyhow::Result<u64> { pids().into_iter().map(resident_kib).sum() };
    load(address, "127.0.0.1", path, connections, Duration::from_millis(500)).await?;
    let alone = Measured {
        idle: 0,
        load: load(address, "127.0.0.1", path, connections, duration).await?,
        resident_kib: resident()?,
    };
    let opened = Instant::now();
    let held = hold(address, path, idle).await?;
    let opening = opened.elapsed();
    let resident_idle = resident()?;
    let with_idle = load(address, "127.0.0.1", path, connections, duration).await?;
    // Every one is still open: none was closed while the load ran.
    let mut probe = [0u8; 1];
    let closed = held.iter().filter(|stream| matches!(stream.try_read(&mut probe), Ok(0))).count();
    if closed > 0 {
        bail!("{closed} of the idle connections were closed during the run");
    }
    eprintln!("{idle} idle connections opened in {:.1} s", opening.as_secs_f64());
    drop(held);
    Ok([alone, Measured { idle, load: with_idle, resident_kib: resident_idle }])
}

/// nginx serving `root` on a free loopback port: its process and address.
pub(crate) fn start_nginx(nginx: &Path, dir: &Path) -> anyhow::Result<(Process, SocketAddr)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let www = dir.join("www");
    std::fs::create_dir_all(&www)?;
    std::fs::write(www.join("index.html"), "Hello, world!")?;
    // Workers may run as another user: the folders are readable, as a web root is.
    use std::os::unix::fs::PermissionsExt;
    for path in [dir, &www] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))?;
    }
    let d = dir.display();
    let config = format!(
        "daemon off;\nworker_processes auto;\nworker_rlimit_nofile 40000;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
         events {{ worker_connections 30000; }}\n\
         http {{\n  access_log off;\n  keepalive_timeout 75s;\n  keepalive_requests 100000000;\n  \
         client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  \
         uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n  \
         server {{\n    listen 127.0.0.1:{port};\n    root {d}/www;\n  }}\n}}\n"
    );
    let config_path = dir.join("nginx.conf");
    std::fs::write(&config_path, config)?;
    let child = Command::new(nginx)
        .arg("-c")
        .arg(&config_path)
        .arg("-p")
        .arg(dir)
        .arg("-e")
        .arg(dir.join("error.log"))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting nginx")?;
    let process = Process { child };
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    for _ in 0..200 {
        if std::net::TcpStream::connect(address).is_ok() {
            return Ok((process, address));
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    bail!("nginx did not listen on {address}; see {}", dir.join("error.log").display())
}

/// A process and its children (nginx's master and workers).
fn with_children(pid: u32) -> Vec<u32> {
    let mut pids = vec![pid];
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(child) = entry.file_name().to_str().and_then(|name| name.parse::<u32>().ok()) else { continue };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else { continue };
            // The parent is the second field after the command's closing parenthesis.
            let parent = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1));
            if parent.and_then(|parent| parent.parse::<u32>().ok()) == Some(pid) {
                pids.push(child);
            }
        }
    }
    pids
}

pub async fn run(
    args: &crate::Args,
    address: SocketAddr,
    token: &str,
    terrarium_pid: u32,
    idle: usize,
) -> anyhow::Result<()> {
    crate::deploy(
        address,
        token,
        &[("terrarium.yaml", crate::manifest("static", "static")), ("public/index.html", "Hello, world!".into())],
    )
    .await?;
    let duration = Duration::from_secs(args.seconds);
    let ours =
        measure(address, "/apps/bench/static/", &|| vec![terrarium_pid], idle, args.connections, duration).await?;
    let nginx_dir = tempfile::tempdir()?;
    let theirs = match &args.nginx {
        Some(nginx) => {
            let (process, nginx_address) = start_nginx(nginx, nginx_dir.path())?;
            let pid = process.child.id();
            let measured =
                measure(nginx_address, "/", &|| with_children(pid), idle, args.connections, duration).await?;
            drop(process);
            Some(measured)
        }
        None => None,
    };

    println!();
    println!(
        "Idle keep-alive connections: a static file, {} loaded connections, {} s each, loopback, same run",
        args.connections, args.seconds
    );
    println!(
        "| {:<10} | {:>6} | {:>10} | {:>8} | {:>8} | {:>8} | {:>14} |",
        "target", "idle", "req/s", "p50 ms", "p99 ms", "RSS MiB", "KiB per idle"
    );
    println!("|{:-<12}|{:->8}|{:->12}|{:->10}|{:->10}|{:->10}|{:->16}|", "", "", "", "", "", "", "");
    let print = |name: &str, measured: &[Measured; 2]| {
        for row in measured {
            let per_idle = if row.idle == 0 {
                "".to_owned()
            } else {
                format!("{:.1}", row.resident_kib.saturating_sub(measured[0].resident_kib) as f64 / row.idle as f64)
            };
            println!(
                "| {:<10} | {:>6} | {:>10.0} | {:>8.3} | {:>8.3} | {:>8.1} | {:>14} |",
                name,
                row.idle,
                row.load.requests_per_second,
                row.load.p50.as_secs_f64() * 1e3,
                row.load.p99.as_secs_f64() * 1e3,
                row.resident_kib as f64 / 1024.0,
                per_idle
            );
        }
    };
    print("terrarium", &ours);
    if let Some(theirs) = &theirs {
        print("nginx", theirs);
        println!(
            "terrarium ÷ nginx, req/s with {idle} idle: {:.2}; memory per idle connection: {:.2}",
            ours[1].load.requests_per_second / theirs[1].load.requests_per_second,
            ours[1].resident_kib.saturating_sub(ours[0].resident_kib) as f64
                / theirs[1].resident_kib.saturating_sub(theirs[0].resident_kib).max(1) as f64
        );
    }
    println!(
        "terrarium with {idle} idle ÷ alone, req/s: {:.2}",
        ours[1].load.requests_per_second / ours[0].load.requests_per_second
    );
    Ok(())
}
