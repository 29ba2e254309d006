//! Metering end to end: usage roll-ups that match the requests sent, survive kill -9, and the
//! metrics that name them.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::Server;

const CONFIG: &str =
    "[metering]\nflush_secs = 3600\n\n[limits]\nrequests_per_second = 1000000\nburst = 1000000\nconcurrency = 1000\n";

/// A function app that burns a little CPU, so CPU time is measurable.
fn write_app(dir: &Path, namespace: &str, name: &str, quotas: &str) {
    std::fs::create_dir_all(dir.join("functions")).unwrap();
    std::fs::write(
        dir.join("terrarium.yaml"),
        format!(
            "apiVersion: terrarium.dev/v1\nkind: MicroApp\nmetadata:\n  name: {name}\n  namespace: {namespace}\nspec:\n  owner: user:admin\n  access:\n    visibility: public\n  runtime: function\n  functions:\n    - route: /*\n      entry: functions/index.js\n{quotas}"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("functions/index.js"),
        "export default { fetch(request) { let x = 0; for (let i = 0; i < 2000; i++) { x += Math.sqrt(i); } return new Response(String(x)); } };\n",
    )
    .unwrap();
}

/// Sends `per_app` requests to each app from `threads` threads; returns (status counts, CPU ms summed from Server-Timing).
fn load(server: &Server, apps: &[String], per_app: usize, threads: usize) -> (Vec<(String, usize)>, f64) {
    let chunks: Vec<Vec<String>> = apps.chunks(apps.len().div_ceil(threads)).map(|chunk| chunk.to_vec()).collect();
    let handles: Vec<_> = chunks
        .into_iter()
        .map(|chunk| {
            let base = server.url.clone();
            std::thread::spawn(move || {
                let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
                let mut counts = Vec::new();
                let mut cpu_ms = 0.0;
                for app in &chunk {
                    let mut ok = 0;
                    for _ in 0..per_app {
                        let response = client.get(format!("{base}/apps/{app}/")).send().unwrap();
                        if response.status() == 200 {
                            ok += 1;
                        }
                        let timing = response.headers()["server-timing"].to_str().unwrap().to_owned();
                        cpu_ms += timing.strip_prefix("cpu;dur=").unwrap().parse::<f64>().unwrap();
                        response.bytes().unwrap();
                    }
                    counts.push((app.clone(), ok));
                }
                (counts, cpu_ms)
            })
        })
        .collect();
    let mut counts = Vec::new();
    let mut cpu_ms = 0.0;
    for handle in handles {
        let (chunk_counts, chunk_cpu) = handle.join().unwrap();
        counts.extend(chunk_counts);
        cpu_ms += chunk_cpu;
    }
    (counts, cpu_ms)
}

fn usage_by_app(server: &Server) -> serde_json::Value {
    serde_json::from_str(&server.cli_ok(&["usage", "--by", "app", "-o", "json"])).unwrap()
}

/// Flushes metering and checks that the roll-ups hold `expected` requests in total.
fn flushed_total(server: &Server, expected: u64) -> serde_json::Value {
    server.run_task("metering.flush");
    let usage = usage_by_app(server);
    let total: u64 = usage.as_array().unwrap().iter().map(|entry| entry["requests"].as_u64().unwrap()).sum();
    assert_eq!(total, expected, "{usage}");
    usage
}

#[test]
fn usage_matches_the_requests_sent_and_survives_kill_9() {
    const APPS: usize = 200;
    const PER_APP: usize = 500;
    let data_dir = tempfile::tempdir().unwrap().keep();
    let server = Server::start_in(CONFIG, &data_dir, &[]);
    let folders = tempfile::tempdir().unwrap();
    let mut apps = Vec::new();
    for index in 0..APPS {
        let namespace = format!("team{}", index % 10);
        let name = format!("app{index}");
        let dir = folders.path().join(&name);
        write_app(&dir, &namespace, &name, "");
        server.deploy(&dir);
        apps.push(format!("{namespace}/{name}"));
    }
    let started = Instant::now();
    let (counts, cpu_ms) = load(&server, &apps, PER_APP, 4);
    eprintln!("{} requests in {:?}", APPS * PER_APP, started.elapsed());
    assert!(counts.iter().all(|(_, ok)| *ok == PER_APP), "every request answered 200");

    let usage = flushed_total(&server, (APPS * PER_APP) as u64);
    let check = |usage: &serde_json::Value| {
        let entries = usage.as_array().unwrap();
        assert_eq!(entries.len(), APPS);
        for entry in entries {
            assert_eq!(entry["requests"], PER_APP as u64, "{entry}");
            assert_eq!(entry["server_errors"], 0);
        }
        let cpu_seconds: f64 = entries.iter().map(|entry| entry["cpu_seconds"].as_f64().unwrap()).sum();
        let expected = cpu_ms / 1000.0;
        assert!(
            (cpu_seconds - expected).abs() <= expected * 0.01,
            "CPU {cpu_seconds} s metered, {expected} s reported"
        );
    };
    check(&usage);

    // Counted usage is durable: a kill -9 after a flush loses nothing.
    let data_dir = server.kill();
    let server = Server::start_in(CONFIG, &data_dir, &[]);
    check(&usage_by_app(&server));
    let by_day: serde_json::Value =
        serde_json::from_str(&server.cli_ok(&["usage", "--app", "team3/app3", "--by", "day", "-o", "json"])).unwrap();
    assert_eq!(by_day.as_array().unwrap().len(), 1);
    assert_eq!(by_day[0]["requests"], PER_APP as u64);
    let by_hour = server.cli_ok(&["usage", "--namespace", "team3", "--by", "hour"]);
    assert!(by_hour.contains("team3/app3"), "{by_hour}");
    let by_owner: serde_json::Value =
        serde_json::from_str(&server.cli_ok(&["usage", "--owner", "user:admin", "-o", "json"])).unwrap();
    assert_eq!(by_owner.as_array().unwrap().len(), APPS, "every app is the admin's");
    let nobody: serde_json::Value =
        serde_json::from_str(&server.cli_ok(&["usage", "--owner", "user:nobody", "-o", "json"])).unwrap();
    assert!(nobody.as_array().unwrap().is_empty());
}

#[test]
fn refusals_are_metered_and_metrics_name_every_series() {
    let server = Server::start(CONFIG);
    let folders = tempfile::tempdir().unwrap();
    write_app(&folders.path().join("a"), "it", "busy", "");
    write_app(&folders.path().join("b"), "it", "tight", "  quotas:\n    requestsPerSecond: 1\n    burst: 2\n");
    server.deploy(&folders.path().join("a"));
    server.deploy(&folders.path().join("b"));
    let http = crate::support::client();
    for _ in 0..3 {
        assert_eq!(http.get(server.app_url("it", "busy", "/")).send().unwrap().status(), 200);
    }
    // A burst of 2 at one a second: sent back to back, some are refused however slow the machine.
    let mut statuses: Vec<u16> = Vec::new();
    while statuses.iter().filter(|status| **status == 429).count() < 2 {
        assert!(statuses.len() < 100, "the rate limit refused nothing: {statuses:?}");
        statuses.push(http.get(server.app_url("it", "tight", "/")).send().unwrap().status().as_u16());
    }
    let refused = statuses.iter().filter(|status| **status == 429).count();
    let served = statuses.len() - refused;

    // The platform's own answers are accounted too: a caller who is not signed in, and a
    // signed-in user the app is not shared with, are counted under their reason.
    write_app(&folders.path().join("c"), "it", "private", "");
    let manifest = folders.path().join("c/terrarium.yaml");
    let text = std::fs::read_to_string(&manifest).unwrap().replace("visibility: public", "visibility: private");
    std::fs::write(&manifest, text).unwrap();
    server.deploy(&folders.path().join("c"));
    assert_eq!(http.get(server.app_url("it", "private", "/")).send().unwrap().status(), 401);
    let stranger = server.user_token("stranger", &[]);
    let forbidden = http.get(server.app_url("it", "private", "/")).bearer_auth(&stranger).send().unwrap();
    assert_eq!(forbidden.status(), 403);

    let usage = flushed_total(&server, (3 + served) as u64);
    let tight = usage.as_array().unwrap().iter().find(|entry| entry["app"] == "tight").unwrap();
    assert_eq!(tight["rate_limited"], refused as u64);
    assert_eq!(tight["requests"], served as u64);

    let response = http.get(format!("{}/metrics", server.url)).bearer_auth(&server.token).send().unwrap();
    assert_eq!(response.status(), 200);
    let metrics = response.text().unwrap();
    for expected in [
        "# TYPE terrarium_app_requests counter".to_owned(),
        r#"terrarium_app_requests_total{namespace="it",app="busy",code="2xx"} 3"#.to_owned(),
        format!(r#"terrarium_app_refused_total{{namespace="it",app="tight",reason="rate_limited"}} {refused}"#),
        r#"terrarium_app_refused_total{namespace="it",app="private",reason="sign_in_required"} 1"#.to_owned(),
        r#"terrarium_app_refused_total{namespace="it",app="private",reason="forbidden"} 1"#.to_owned(),
        "# TYPE terrarium_app_request_duration_seconds histogram".to_owned(),
        r#"terrarium_app_request_duration_seconds_count{namespace="it",app="busy"} 3"#.to_owned(),
        r#"terrarium_app_request_duration_seconds_bucket{le="+Inf",namespace="it",app="busy"} 3"#.to_owned(),
        "# TYPE terrarium_app_cpu_seconds counter".to_owned(),
        "# TYPE terrarium_egress_log_dropped counter".to_owned(),
        "# TYPE terrarium_apps_live gauge".to_owned(),
        "terrarium_apps_live 3".to_owned(),
        "terrarium_apps_suspended 0".to_owned(),
        r#"terrarium_app_spend{namespace="it",app="busy"}"#.to_owned(),
        "# TYPE terrarium_process_start_time_seconds gauge".to_owned(),
        "# EOF".to_owned(),
    ] {
        assert!(metrics.contains(&expected), "missing {expected}:\n{metrics}");
    }
    // Anonymous scrapes are refused.
    assert_eq!(http.get(format!("{}/metrics", server.url)).send().unwrap().status(), 401);
}

#[test]
fn a_namespace_tier_caps_its_apps_together_and_bounds_what_one_may_ask() {
    let config = "[tiers.small]\nrequests_per_second = 1\nburst = 4\nconcurrency = 50\nmax_app_requests_per_second = 10\n\n[namespaces]\ndefault_tier = \"small\"\n";
    let server = Server::start(config);
    let folders = tempfile::tempdir().unwrap();
    write_app(&folders.path().join("a"), "it", "first", "  quotas:\n    requestsPerSecond: 10\n    burst: 10\n");
    write_app(&folders.path().join("b"), "it", "second", "  quotas:\n    requestsPerSecond: 10\n    burst: 10\n");
    server.deploy(&folders.path().join("a"));
    server.deploy(&folders.path().join("b"));

    // Each app alone could take 10 at once; together the namespace takes a burst of 4.
    let http = crate::support::client();
    let mut statuses = Vec::new();
    for index in 0..8 {
        let app = if index % 2 == 0 { "first" } else { "second" };
        let response = http.get(server.app_url("it", app, "/")).send().unwrap();
        statuses.push(response.status().as_u16());
        if response.status() == 429 {
            assert!(response.headers().get("retry-after").is_some());
            assert!(response.text().unwrap().contains("namespace it"), "the page names the namespace's ceiling");
        }
    }
    assert_eq!(statuses.iter().filter(|status| **status == 200).count(), 4, "{statuses:?}");

    // An app asking more than the tier allows waits for an operator's approval, told why.
    write_app(&folders.path().join("c"), "it", "greedy", "  quotas:\n    requestsPerSecond: 50\n");
    let pending = server.cli_ok(&["deploy", folders.path().join("c").to_str().unwrap()]);
    assert!(
        pending.contains("Waiting for approval") && pending.contains("spec.quotas.requestsPerSecond 50 is over the 10"),
        "{pending}"
    );
    assert_eq!(server.get("it", "greedy", "/").status(), 404, "not live before it is approved");
}

/// An OTLP/HTTP receiver on 127.0.0.1 that keeps every JSON export sent to /v1/traces.
fn start_otlp_receiver() -> (u16, std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = received.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let record = record.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut stream = stream;
                loop {
                    let mut request_line = String::new();
                    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
                        return;
                    }
                    let mut length = 0;
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                            break;
                        }
                        if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                            length = value.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).unwrap();
                    if request_line.starts_with("POST /v1/traces") {
                        record.lock().unwrap().push(serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null));
                    }
                    let _ = stream
                        .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}");
                }
            });
        }
    });
    (port, received)
}

/// Every span the receiver has been sent.
fn exported_spans(received: &std::sync::Mutex<Vec<serde_json::Value>>) -> Vec<serde_json::Value> {
    let mut spans = Vec::new();
    for export in received.lock().unwrap().iter() {
        for resource in export["resourceSpans"].as_array().into_iter().flatten() {
            for scope in resource["scopeSpans"].as_array().into_iter().flatten() {
                spans.extend(scope["spans"].as_array().into_iter().flatten().cloned());
            }
        }
    }
    spans
}

/// A span's string attribute.
fn attribute<'a>(span: &'a serde_json::Value, key: &str) -> Option<&'a str> {
    span["attributes"].as_array()?.iter().find(|attribute| attribute["key"] == key)?["value"]["stringValue"].as_str()
}

#[test]
fn app_requests_are_traced_over_otlp_with_the_request_id_as_an_attribute() {
    let (port, received) = start_otlp_receiver();
    let config = format!("[telemetry]\notlp_endpoint = \"http://127.0.0.1:{port}\"\nexport_every_ms = 200\n");
    let server = Server::start(&config);
    let folder = tempfile::tempdir().unwrap();
    write_app(folder.path(), "it", "traced", "");
    server.deploy(folder.path());
    let response = crate::support::client().get(server.app_url("it", "traced", "/")).send().unwrap();
    assert_eq!(response.status(), 200);
    let request_id = response.headers()["x-request-id"].to_str().unwrap().to_owned();

    let names = crate::support::wait_for("the app request's spans at the OTLP receiver", || {
        let spans = exported_spans(&received);
        // The request's span is a root (no invented parent), found by its request id.
        let Some(root) = spans.iter().find(|span| attribute(span, "request_id") == Some(request_id.as_str())) else {
            return Err(format!("no span with request_id {request_id} yet"));
        };
        assert_eq!(root["name"], "app request");
        assert!(root["parentSpanId"].as_str().unwrap_or_default().is_empty(), "a root span: {root}");
        let trace = root["traceId"].clone();
        let names: Vec<String> = spans
            .iter()
            .filter(|span| span["traceId"] == trace)
            .map(|span| span["name"].as_str().unwrap_or_default().to_owned())
            .collect();
        match names.len() >= 4 {
            true => Ok(names),
            false => Err(format!("{names:?}")),
        }
    });
    for phase in ["app request", "authenticate", "admit", "dispatch"] {
        assert!(names.iter().any(|name| name == phase), "no {phase:?} span: {names:?}");
    }
}

/// A caller's W3C trace context is honoured: the request's span is the caller's span's child,
/// and the app's outbound `fetch` carries the trace on to the next hop, as a child of a span the
/// platform exported.
#[test]
fn a_callers_trace_continues_through_the_app_and_out_of_it() {
    use std::io::{Read, Write};
    let (otlp_port, received) = start_otlp_receiver();
    // The next hop: keeps the traceparent of each request it is sent.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hop_port = listener.local_addr().unwrap().port();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let record = seen.clone();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut buffer = [0u8; 8192];
            let read = stream.read(&mut buffer).unwrap_or(0);
            let head = String::from_utf8_lossy(&buffer[..read]).to_ascii_lowercase();
            if let Some(line) = head.lines().find(|line| line.starts_with("traceparent:")) {
                record.lock().unwrap().push(line["traceparent:".len()..].trim().to_owned());
            }
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
        }
    });
    let config = format!(
        "[telemetry]\notlp_endpoint = \"http://127.0.0.1:{otlp_port}\"\nexport_every_ms = 200\n\n[egress]\nallow_internal = [\"127.0.0.1/32\"]\n"
    );
    let server = Server::start(&config);
    let app = crate::support::copy_fixture("upstream");
    let manifest_path = app.path().join("terrarium.yaml");
    let manifest = std::fs::read_to_string(&manifest_path).unwrap();
    std::fs::write(&manifest_path, manifest.replace("- 127.0.0.1", &format!("- 127.0.0.1:{hop_port}"))).unwrap();
    server.deploy(app.path());

    let (trace, caller_span) = ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7");
    let response = crate::support::client()
        .get(server.app_url("it", "upstream", "/"))
        .query(&[("url", format!("http://127.0.0.1:{hop_port}/next"))])
        .header("traceparent", format!("00-{trace}-{caller_span}-01"))
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    let request_id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
    let outgoing = seen.lock().unwrap().clone();
    assert_eq!(outgoing.len(), 1, "the next hop was called once with a traceparent: {outgoing:?}");
    let parts: Vec<&str> = outgoing[0].split('-').collect();
    assert_eq!((parts[0], parts[1]), ("00", trace), "the next hop is in the caller's trace: {outgoing:?}");
    assert_ne!(parts[2], caller_span, "its parent is a span of the platform's, not the caller's");

    crate::support::wait_for("the request's spans, in the caller's trace", || {
        let spans = exported_spans(&received);
        let Some(root) = spans.iter().find(|span| attribute(span, "request_id") == Some(request_id.as_str())) else {
            return Err("not exported yet".to_owned());
        };
        assert_eq!(root["traceId"], trace, "{root}");
        assert_eq!(root["parentSpanId"], caller_span, "{root}");
        match spans.iter().any(|span| span["traceId"] == trace && span["spanId"] == parts[2]) {
            true => Ok(()),
            false => Err(format!("no exported span {} in the trace yet", parts[2])),
        }
    });
}
