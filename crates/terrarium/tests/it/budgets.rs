//! Budgets as a new user meets them: a budget of a few cents, an 80 % alert on a local webhook,
//! the app stopped at 100 %, the budget raised and the app back. Monthly quotas and chargeback.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::{Server, client, holds, wait_for};

/// A webhook receiver on 127.0.0.1 that fails its first delivery (500) and accepts the rest.
pub(crate) fn start_receiver() -> (u16, Arc<Mutex<Vec<serde_json::Value>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let received = Arc::new(Mutex::new(Vec::new()));
    let record = received.clone();
    std::thread::spawn(move || {
        let mut deliveries = 0;
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
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
            deliveries += 1;
            let mut stream = stream;
            if deliveries == 1 {
                let _ = stream.write_all(b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                continue;
            }
            record.lock().unwrap().push(serde_json::from_slice(&body).unwrap());
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    (port, received)
}

fn write_app(dir: &Path, name: &str, quotas: &str) {
    std::fs::create_dir_all(dir.join("functions")).unwrap();
    std::fs::write(
        dir.join("terrarium.yaml"),
        format!(
            "apiVersion: terrarium.dev/v1\nkind: MicroApp\nmetadata:\n  name: {name}\n  namespace: it\nspec:\n  owner: user:admin\n  access:\n    visibility: public\n  runtime: function\n  functions:\n    - route: /*\n      entry: functions/index.js\n  quotas:\n{quotas}"
        ),
    )
    .unwrap();
    std::fs::write(dir.join("functions/index.js"), "export default { fetch() { return new Response(\"hi\"); } };\n")
        .unwrap();
}

fn config(webhook_port: u16) -> String {
    format!(
        "[metering]\nflush_secs = 3600\n\n[pricing]\ncurrency = \"USD\"\nper_million_requests = 10000.0\nper_cpu_second = 0.0\nper_gb_out = 0.0\n\n[budgets]\nevaluate_secs = 3600\n\n[[notify.webhooks]]\nurl = \"http://127.0.0.1:{webhook_port}/hook?token=abc\"\n"
    )
}

/// Waits for a notification the receiver got (delivery is asynchronous and retried).
pub(crate) fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    wait_for(what, || holds(done(), || "not yet".to_owned()));
}

#[test]
fn a_budget_alerts_at_80_percent_stops_the_app_at_100_and_raising_it_brings_it_back() {
    let (port, received) = start_receiver();
    let server = Server::start(&config(port));
    let folder = tempfile::tempdir().unwrap();
    // One request costs one cent: a budget of ten cents lasts ten requests.
    write_app(folder.path(), "lunch", "    monthlyBudget: { amount: 0.10, currency: USD }\n");
    server.deploy(folder.path());
    let http = client();
    let url = server.app_url("it", "lunch", "/");
    for _ in 0..8 {
        assert_eq!(http.get(&url).send().unwrap().status(), 200);
    }
    server.run_task("budgets.evaluate");
    let has_alert = |threshold: u64| {
        received
            .lock()
            .unwrap()
            .iter()
            .any(|body| body["kind"] == "budget.threshold" && body["details"]["threshold"] == threshold)
    };
    wait_until("the 80 % alert arrives", || has_alert(80));
    wait_until("the 50 % alert arrives (its first delivery failed)", || has_alert(50));
    assert!(!has_alert(100));
    let alert = received.lock().unwrap().iter().find(|body| body["details"]["threshold"] == 80).cloned().unwrap();
    assert!(alert["subject"].as_str().unwrap().contains("app:it/lunch has used 80 % of its monthly budget"), "{alert}");
    assert_eq!(alert["details"]["currency"], "USD");

    // Past 100 %: the app answers 402 with a page that says why.
    let mut stopped = None;
    for _ in 0..20 {
        let response = http.get(&url).send().unwrap();
        if response.status() == 402 {
            stopped = Some(response.text().unwrap());
            break;
        }
        server.run_task("budgets.evaluate");
    }
    let page = stopped.expect("the app stops once its budget is used up");
    assert!(page.contains("monthly budget") && page.contains("0.10 USD"), "{page}");
    wait_until("the 100 % alert arrives", || has_alert(100));

    // Raise the budget: the app comes back.
    write_app(folder.path(), "lunch", "    monthlyBudget: { amount: 5.00, currency: USD }\n");
    server.deploy(folder.path());
    server.run_task("budgets.evaluate");
    assert_eq!(http.get(&url).send().unwrap().status(), 200, "the app answers again");

    // Every delivery is recorded, the first one after a retry, and the URL's token is not kept.
    let notifications: serde_json::Value = client()
        .get(format!("{}/api/v1/notifications", server.url))
        .bearer_auth(&server.token)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let rows = notifications.as_array().unwrap();
    assert!(rows.iter().all(|row| row["status"] == "sent"), "{notifications}");
    assert!(rows.iter().any(|row| row["attempts"].as_u64().unwrap() >= 2), "a retry after the 500: {notifications}");
    assert!(!notifications.to_string().contains("token=abc"));
    let audit = client()
        .get(format!("{}/api/v1/audit?limit=1000", server.url))
        .bearer_auth(&server.token)
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(audit.contains("app.suspend") && audit.contains("app.resume"), "{audit}");

    // The month's cost per namespace, as CSV for finance.
    let csv = server.cli_ok(&["usage", "--chargeback", "namespace", "--csv"]);
    let line = csv.lines().find(|line| line.starts_with("it,")).unwrap_or_else(|| panic!("{csv}"));
    let fields: Vec<&str> = line.split(',').collect();
    let requests: u64 = fields[2].parse().unwrap();
    let cost: f64 = fields[5].parse().unwrap();
    assert!((cost - requests as f64 * 0.01).abs() < 1e-6, "{line}");
}

#[test]
fn a_monthly_request_quota_stops_the_app_with_429_until_next_month() {
    let (port, _received) = start_receiver();
    let server = Server::start(&config(port));
    let folder = tempfile::tempdir().unwrap();
    write_app(folder.path(), "quota", "    monthlyRequests: 3\n");
    server.deploy(folder.path());
    let http = client();
    let url = server.app_url("it", "quota", "/");
    for _ in 0..3 {
        assert_eq!(http.get(&url).send().unwrap().status(), 200);
    }
    server.run_task("budgets.evaluate");
    let response = http.get(&url).send().unwrap();
    assert_eq!(response.status(), 429, "the quota stops the app");
    assert!(response.headers().get("retry-after").is_some());
    server.run_task("metering.flush");
    let usage: serde_json::Value =
        serde_json::from_str(&server.cli_ok(&["usage", "--app", "it/quota", "-o", "json"])).unwrap();
    assert_eq!(usage[0]["requests"], 3, "exactly the quota was served; refusals are not usage: {usage}");
}

#[test]
fn an_app_failing_its_slo_shows_a_fast_burn_and_alerts() {
    let (port, received) = start_receiver();
    let server = Server::start(&config(port));
    let folder = tempfile::tempdir().unwrap();
    write_app(
        folder.path(),
        "flaky",
        "    requestsPerSecond: 1000\n    burst: 1000\n  slo:\n    availability: 99.0\n    latencyP95Ms: 2000\n",
    );
    std::fs::write(
        folder.path().join("functions/index.js"),
        "export default { fetch(request) { return new Response(\"x\", { status: new URL(request.url).searchParams.has(\"fail\") ? 500 : 200 }); } };\n",
    )
    .unwrap();
    server.deploy(folder.path());
    let shown = server.cli_ok(&["apps", "get", "it/flaky"]);
    assert!(shown.contains("availability: 99 % succeed; last hour no traffic") && shown.contains(": ok"), "{shown}");

    let http = client();
    for index in 0..40 {
        let path = if index % 4 == 0 { "/?fail" } else { "/" };
        http.get(server.app_url("it", "flaky", path)).send().unwrap();
    }
    // A quarter failing against a 1 % budget burns it 25 times too fast: a fast burn.
    let shown = server.cli_ok(&["apps", "get", "it/flaky"]);
    assert!(
        shown.contains("last hour 75.00 %") && shown.contains("burn 25.0× (1 h)") && shown.contains("FAST BURN"),
        "{shown}"
    );
    assert!(shown.contains("latency: 95 % within 2000 ms; last hour 100.00 %"), "{shown}");
    let has_alert = || {
        received
            .lock()
            .unwrap()
            .iter()
            .any(|body| body["kind"] == "slo.burn" && body["details"]["alert"] == "fast_burn")
    };
    server.run_task("budgets.evaluate");
    wait_until("the fast-burn alert arrives", has_alert);
    let detail: serde_json::Value =
        serde_json::from_str(&server.cli_ok(&["apps", "get", "it/flaky", "-o", "json"])).unwrap();
    assert_eq!(detail["slo"]["objectives"][0]["alert"], "fast_burn");
}

#[test]
fn a_monthly_quota_counts_only_this_months_requests() {
    let (port, _received) = start_receiver();
    let server = Server::start(&config(port));
    let folder = tempfile::tempdir().unwrap();
    write_app(folder.path(), "monthly", "    monthlyRequests: 3\n");
    server.deploy(folder.path());
    let http = client();
    let url = server.app_url("it", "monthly", "/");
    for _ in 0..3 {
        assert_eq!(http.get(&url).send().unwrap().status(), 200);
    }
    server.run_task("budgets.evaluate");
    assert_eq!(http.get(&url).send().unwrap().status(), 429, "the quota is used up");
    server.run_task("metering.flush");
    let this_month = &clock_now(&server)[..7];

    // A month on, last month's requests do not count: the app serves again, up to its quota.
    server.advance_clock(Duration::from_secs(32 * 86_400));
    server.run_task("budgets.evaluate");
    for _ in 0..3 {
        assert_eq!(http.get(&url).send().unwrap().status(), 200, "last month's requests do not count");
    }
    server.run_task("budgets.evaluate");
    assert_eq!(http.get(&url).send().unwrap().status(), 429, "this month's quota stops the app");
    server.run_task("metering.flush");
    let last_month: serde_json::Value =
        serde_json::from_str(&server.cli_ok(&["usage", "--app", "it/monthly", "--month", this_month, "-o", "json"]))
            .unwrap();
    assert_eq!(last_month[0]["requests"], 3, "{last_month}");
}

/// The server's "now" (RFC 3339), as its adjustable clock says.
fn clock_now(server: &Server) -> String {
    let clock: serde_json::Value =
        client().get(format!("{}/api/v1/clock", server.url)).bearer_auth(&server.token).send().unwrap().json().unwrap();
    clock["now"].as_str().unwrap().to_owned()
}

/// A real SMTP server (aiosmtpd from tests/smtp/.venv, installed by scripts/test) on 127.0.0.1,
/// printing every message it receives; the lines are collected here.
pub(crate) struct SmtpServer {
    child: std::process::Child,
    pub(crate) port: u16,
    pub(crate) output: Arc<Mutex<String>>,
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn start_smtp() -> SmtpServer {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/smtp/.venv/bin/python");
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = std::process::Command::new(python)
        .args(["-u", "-m", "aiosmtpd", "-n", "-c", "aiosmtpd.handlers.Debugging", "-l", &format!("127.0.0.1:{port}")])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("aiosmtpd starts (scripts/test installs it in tests/smtp/.venv)");
    let output = Arc::new(Mutex::new(String::new()));
    let sink = output.clone();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let mut text = sink.lock().unwrap();
            text.push_str(&line);
            text.push('\n');
        }
    });
    wait_for("aiosmtpd to accept connections", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).map(drop).map_err(|error| error.to_string())
    });
    SmtpServer { child, port, output }
}

#[test]
fn budget_alerts_are_mailed_to_the_platform_team() {
    let smtp = start_smtp();
    let config = format!(
        "[metering]\nflush_secs = 3600\n\n[pricing]\ncurrency = \"USD\"\nper_million_requests = 10000.0\nper_cpu_second = 0.0\nper_gb_out = 0.0\n\n[budgets]\nevaluate_secs = 3600\n\n[notify.smtp]\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\nfrom = \"Terrarium <terrarium@test.example>\"\nto = [\"platform@test.example\"]\n",
        smtp.port
    );
    let server = Server::start(&config);
    let folder = tempfile::tempdir().unwrap();
    write_app(folder.path(), "mailed", "    monthlyBudget: { amount: 0.10, currency: USD }\n");
    server.deploy(folder.path());
    let http = client();
    for _ in 0..6 {
        assert_eq!(http.get(server.app_url("it", "mailed", "/")).send().unwrap().status(), 200);
    }
    server.run_task("budgets.evaluate");
    wait_until("the 50 % alert is mailed", || {
        smtp.output.lock().unwrap().contains("Subject: [Terrarium] app:it/mailed has used 50 % of its monthly budget")
    });
    let text = smtp.output.lock().unwrap().clone();
    assert!(
        text.contains("From: Terrarium <terrarium@test.example>") && text.contains("To: platform@test.example"),
        "{text}"
    );
    assert!(text.contains("has spent 0.0"), "{text}");
    wait_until("the delivery is recorded", || {
        let rows: serde_json::Value = client()
            .get(format!("{}/api/v1/notifications", server.url))
            .bearer_auth(&server.token)
            .send()
            .unwrap()
            .json()
            .unwrap();
        rows.as_array()
            .unwrap()
            .iter()
            .any(|row| row["channel"] == "email" && row["status"] == "sent" && row["target"] == "platform@test.example")
    });
}
