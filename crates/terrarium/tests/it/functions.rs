//! Edge functions: env, isolation, logs, and every limit contained while neighbours answer.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::support::{Server, client, fixture};

fn neighbour_answers(server: &Server) {
    let response = server.get("it", "neighbour", "/api/ping");
    assert_eq!(response.status(), 200, "the neighbour app must keep answering");
    let body: serde_json::Value = response.json().unwrap();
    assert_eq!(body["greeting"], "hi there");
    assert_eq!(server.get("it", "neighbour", "/").status(), 200);
}

#[test]
fn every_limit_is_contained() {
    let server = Server::start("");
    server.deploy(&fixture("limits"));
    server.deploy(&fixture("neighbour"));
    neighbour_answers(&server);
    assert_eq!(server.get("it", "limits", "/hello").text().unwrap(), "hello");

    for (path, status) in
        [("/loop", 503), ("/bomb", 503), ("/recurse", 500), ("/huge", 500), ("/throw", 500), ("/bad-return", 500)]
    {
        let response = server.get("it", "limits", path);
        assert_eq!(response.status().as_u16(), status, "{path}");
        let request_id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
        let page = response.text().unwrap();
        assert!(page.contains(&request_id), "{path}: the error page names the request id");
        assert!(!page.contains("boom from the app"), "{path}: app internals stay out of the page");
        neighbour_answers(&server);
        // The misbehaving app itself recovers for its next request.
        assert_eq!(server.get("it", "limits", "/hello").text().unwrap(), "hello", "after {path}");
    }

    // While one app loops on every request, its neighbour keeps answering.
    let looping = {
        let url = server.app_url("it", "limits", "/loop");
        std::thread::spawn(move || {
            for _ in 0..20 {
                assert_eq!(client().get(&url).send().unwrap().status(), 503);
            }
        })
    };
    for _ in 0..20 {
        neighbour_answers(&server);
    }
    looping.join().unwrap();

    // The reasons are in the app's log, with request ids.
    let logs = server.cli_ok(&["logs", "it/limits", "--tail", "200"]);
    for expected in ["hello from limits", "boom from the app", "CPU", "memory", "stack", "larger than"] {
        assert!(logs.to_lowercase().contains(&expected.to_lowercase()), "missing {expected:?} in logs:\n{logs}");
    }

    // No state crosses apps: a global of one app is invisible to another.
    let global: serde_json::Value = server.get("it", "neighbour", "/api/global").json().unwrap();
    assert_eq!(global["leakedLimitsGlobal"], "undefined");
}

#[test]
fn a_function_streams_its_response_through_a_transform_stream() {
    let server = Server::start("");
    server.deploy(&fixture("neighbour"));
    let response = server.get("it", "neighbour", "/api/stream");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/plain; charset=utf-8");
    assert_eq!(response.text().unwrap(), "streamed through a TransformStream");
    neighbour_answers(&server);
}

#[test]
fn egress_is_denied_by_default() {
    let upstream = Upstream::start();
    let server = Server::start("");
    server.deploy(&fixture("limits"));
    server.deploy(&fixture("neighbour"));
    let fetch = |url: &str| {
        let response = client().get(server.app_url("it", "limits", "/fetch")).query(&[("url", url)]).send().unwrap();
        let status = response.status().as_u16();
        (status, response.json::<serde_json::Value>().unwrap())
    };
    let local = format!("http://127.0.0.1:{}/", upstream.port);
    for url in [
        "http://not-allowed.example.com/",
        local.as_str(),
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/",
        &format!("http://localhost:{}/", upstream.port),
        &format!("http://2130706433:{}/", upstream.port),
        &format!("http://[::ffff:127.0.0.1]:{}/", upstream.port),
        "file:///etc/passwd",
    ] {
        let (status, body) = fetch(url);
        assert_eq!(status, 502, "{url}: {body}");
        assert_eq!(body["ok"], false, "{url}: {body}");
        let error = body["error"].as_str().unwrap();
        assert!(["denied", "not allowed", "not supported"].iter().any(|word| error.contains(word)), "{url}: {error}");
        neighbour_answers(&server);
    }
    assert_eq!(upstream.hits(), 0, "nothing reached the upstream");
}

#[test]
fn operator_may_allow_an_internal_upstream() {
    let upstream = Upstream::start();
    let server = Server::start("[egress]\nallow_internal = [\"127.0.0.1/32\"]\n");
    // The app lists the upstream with its (ephemeral) port: a bare host allows default ports only.
    let app = crate::support::copy_fixture("upstream");
    let manifest_path = app.path().join("terrarium.yaml");
    let manifest = std::fs::read_to_string(&manifest_path).unwrap();
    std::fs::write(&manifest_path, manifest.replace("- 127.0.0.1", &format!("- 127.0.0.1:{}", upstream.port))).unwrap();
    server.deploy(app.path());
    let response = client()
        .get(server.app_url("it", "upstream", "/"))
        .query(&[("url", format!("http://127.0.0.1:{}/hello", upstream.port))])
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().unwrap(), "upstream says hi");
    assert_eq!(upstream.hits(), 1);

    // A compressed answer reaches the app decoded, as Workers' fetch hands it over.
    let response = client()
        .get(server.app_url("it", "upstream", "/"))
        .query(&[("url", format!("http://127.0.0.1:{}/gzip", upstream.port))])
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().unwrap(), "upstream says hi, compressed");

    // The operator range does not open other internal addresses.
    let response = client()
        .get(server.app_url("it", "upstream", "/"))
        .query(&[("url", "http://169.254.169.254/")])
        .send()
        .unwrap();
    assert_eq!(response.status(), 502);
}

#[test]
fn logs_follow_streams_new_lines() {
    let server = Server::start("");
    server.deploy(&fixture("limits"));
    let mut follower = std::process::Command::new(crate::support::BIN)
        .args(["logs", "it/limits", "--follow", "--server", &server.url, "--token", &server.token])
        .env_remove("TERRARIUM_TOKEN")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Requests until the follower shows one: it may take a while to subscribe on a busy machine.
    let done = Arc::new(AtomicBool::new(false));
    let sender = {
        let (done, url) = (done.clone(), server.app_url("it", "limits", "/hello"));
        std::thread::spawn(move || {
            let mut request_ids = Vec::new();
            while !done.load(Ordering::SeqCst) && request_ids.len() < 600 {
                let response = client().get(&url).send().unwrap();
                request_ids.push(response.headers()["x-request-id"].to_str().unwrap().to_owned());
                std::thread::sleep(Duration::from_millis(100));
            }
            request_ids
        })
    };
    let mut lines = BufReader::new(follower.stdout.take().unwrap()).lines();
    let line = lines.next().expect("the follower prints a line").unwrap();
    done.store(true, Ordering::SeqCst);
    let request_ids = sender.join().unwrap();
    assert!(line.contains("hello from limits"), "{line}");
    assert!(request_ids.iter().any(|id| line.contains(id.as_str())), "{line} names one of {request_ids:?}");
    follower.kill().unwrap();
    let _ = follower.wait();
}

/// `upstream says hi, compressed`, gzipped.
const GZIPPED: &[u8] = &[
    31, 139, 8, 0, 0, 0, 0, 0, 2, 3, 43, 45, 40, 46, 41, 74, 77, 204, 85, 40, 78, 172, 44, 86, 200, 200, 212, 81, 72,
    206, 207, 45, 40, 74, 45, 46, 78, 77, 1, 0, 197, 31, 70, 43, 28, 0, 0, 0,
];

/// A tiny HTTP server on 127.0.0.1 standing in for an internal service; counts its requests.
struct Upstream {
    port: u16,
    hits: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Upstream {
    fn start() -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = hits.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let mut buffer = [0u8; 4096];
                let read = stream.read(&mut buffer).unwrap_or(0);
                // GET /gzip answers a gzip-compressed body, as many servers do whatever was asked.
                if buffer[..read].starts_with(b"GET /gzip ") {
                    let _ = write!(
                        stream,
                        "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-encoding: gzip\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                        GZIPPED.len()
                    );
                    let _ = stream.write_all(GZIPPED);
                    continue;
                }
                let body = "upstream says hi";
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Upstream { port, hits }
    }

    fn hits(&self) -> usize {
        self.hits.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// stress-ng keeping every core busy, stopped when dropped.
struct Stress(std::process::Child);

impl Drop for Stress {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The processes whose parent is `pid`, from /proc.
fn children_of(pid: u32) -> usize {
    let parent = |stat: &str| stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse().ok());
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| std::fs::read_to_string(entry.ok()?.path().join("stat")).ok())
        .filter(|stat| parent(stat) == Some(pid))
        .count()
}

/// The function's CPU time as the gateway reports it (`Server-Timing: cpu;dur=…`), in ms.
fn cpu_ms(response: &reqwest::blocking::Response) -> f64 {
    let timing = response.headers()["server-timing"].to_str().unwrap();
    timing.trim_start_matches("cpu;dur=").parse().unwrap()
}

/// The CPU limit counts the function's own CPU time: while stress-ng keeps every core busy, a
/// function well within its 50 ms keeps answering, and one over it still stops at its CPU limit
/// (not at the wall-clock deadline).
#[test]
fn a_busy_machine_does_not_spend_a_functions_cpu_budget() {
    let server = Server::start("");
    server.deploy(&fixture("limits"));
    // Size the work to about a third of the budget on this machine.
    let mut steps: u64 = 100_000;
    for _ in 0..8 {
        let spent = cpu_ms(&server.get("it", "limits", &format!("/work?n={steps}")));
        if (12.0..=20.0).contains(&spent) {
            break;
        }
        steps = ((steps as f64) * 16.0 / spent.max(0.05)).clamp(1_000.0, 1e9) as u64;
    }

    let cores = std::thread::available_parallelism().map_or(2, usize::from);
    let workers = (2 * cores).to_string();
    let stress = Stress(
        std::process::Command::new("stress-ng")
            .args(["--cpu", &workers, "--timeout", "300s", "--quiet"])
            .spawn()
            .expect("stress-ng runs (scripts/test installs it)"),
    );
    let pid = stress.0.id();
    crate::support::wait_for("stress-ng's workers", || {
        let running = children_of(pid);
        crate::support::holds(running >= 2 * cores, || format!("{running} workers"))
    });

    for attempt in 0..20 {
        let response = server.get("it", "limits", &format!("/work?n={steps}"));
        assert_eq!(response.status(), 200, "request {attempt} within its CPU budget on a busy machine");
        assert!(cpu_ms(&response) < 50.0, "request {attempt}: {} ms", cpu_ms(&response));
    }
    let looping = server.get("it", "limits", "/loop");
    assert_eq!(looping.status(), 503);
    let request_id = looping.headers()["x-request-id"].to_str().unwrap().to_owned();
    drop(stress);
    let logs = server.cli_ok(&["logs", "it/limits"]);
    let line = logs.lines().find(|line| line.contains(&request_id)).unwrap_or_else(|| panic!("{logs}"));
    assert!(line.contains("more than its 50 ms of CPU time"), "{line}");
}
