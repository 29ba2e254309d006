//! The front door against hostile clients, over raw sockets: oversized and too many headers,
//! broken framing, smuggling shapes, old protocol versions, connection floods and slow
//! clients each get the right status or a closed connection, and the server keeps answering.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::support::{Server, copy_fixture};

/// Limits small enough to reach in a test; the rest are the defaults.
const CONFIG: &str = "[server.limits]\nmax_connections_per_client = 8\nheader_read_timeout_s = 2\n";

fn connect(server: &Server) -> TcpStream {
    let stream = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    // A bound on every read: a probe that hangs fails instead of stalling the suite.
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    stream
}

/// Sends `request` and reads until the server closes (or the read bound passes).
fn exchange(server: &Server, request: &[u8]) -> String {
    let mut stream = connect(server);
    stream.write_all(request).unwrap();
    read_to_close(&mut stream)
}

fn read_to_close(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    let mut buffer = [0u8; 8192];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&buffer[..n]),
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}

fn status(answer: &str) -> &str {
    answer.split_whitespace().nth(1).unwrap_or("(closed)")
}

fn healthy(server: &Server) {
    let answer = exchange(server, b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    assert_eq!(status(&answer), "200", "{answer}");
}

fn start() -> Server {
    let server = Server::start(CONFIG);
    server.deploy(copy_fixture("d1-expenses").path());
    server
}

#[test]
fn oversized_heads_are_refused_with_431_and_414() {
    let server = start();
    let big = "a".repeat(200 * 1024);
    let answer = exchange(
        &server,
        format!("GET /apps/it/expenses/list HTTP/1.1\r\nHost: localhost\r\nX-Big: {big}\r\n\r\n").as_bytes(),
    );
    assert_eq!(status(&answer), "431", "one 200 KB header: {}", &answer[..answer.len().min(200)]);
    let many: String = (0..300).map(|n| format!("X-H{n}: v\r\n")).collect();
    let answer = exchange(&server, format!("GET / HTTP/1.1\r\nHost: localhost\r\n{many}\r\n").as_bytes());
    assert_eq!(status(&answer), "431", "300 headers");
    let long = "a".repeat(100 * 1024);
    let answer = exchange(&server, format!("GET /{long} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes());
    assert!(["414", "431"].contains(&status(&answer)), "a 100 KB URI: {}", status(&answer));
    healthy(&server);
}

#[test]
fn broken_framing_is_400_and_a_smuggling_shape_closes_the_connection() {
    let server = start();
    let bad_chunk = exchange(
        &server,
        b"POST /apps/it/expenses/add HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
          Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
    );
    assert_eq!(status(&bad_chunk), "400", "a malformed chunk size: {bad_chunk}");

    let both = exchange(
        &server,
        b"POST /apps/it/expenses/add HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4\r\n\
          Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: localhost\r\n\r\n",
    );
    // Read by its chunked framing (RFC 9112 §6.3), then the connection closes: the request
    // hidden after it is never answered.
    assert_eq!(both.matches("HTTP/1.1 ").count(), 1, "one answer, then the connection closed: {both}");
    assert!(!both.contains("smuggled"), "{both}");

    let bad_length =
        exchange(&server, b"POST /apps/it/expenses/add HTTP/1.1\r\nHost: localhost\r\nContent-Length: x\r\n\r\n");
    assert_eq!(status(&bad_length), "400", "a Content-Length that is no number");

    let announced = exchange(
        &server,
        b"POST /apps/it/expenses/add HTTP/1.1\r\nHost: localhost\r\nContent-Length: 67108864\r\n\r\n",
    );
    assert_eq!(status(&announced), "413", "64 MB announced");
    healthy(&server);
}

#[test]
fn old_protocols_and_odd_hosts_get_an_answer_or_a_closed_connection() {
    let server = start();
    let http10 = exchange(&server, b"GET /healthz HTTP/1.0\r\n\r\n");
    assert_eq!(status(&http10), "200", "HTTP/1.0: {http10}");
    let http09 = exchange(&server, b"GET /healthz\r\n\r\n");
    assert!(http09.is_empty() || status(&http09) == "400", "HTTP/0.9: {http09}");
    for host in ["", "localhost:99999", "a b", "..", "localhost\u{0}evil"] {
        let answer =
            exchange(&server, format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes());
        assert!(["200", "400", "404", "421", "(closed)"].contains(&status(&answer)), "Host {host:?}: {answer}");
    }
    for path in [
        "/apps/it/expenses/../../../etc/passwd",
        "/apps/it/expenses/%2e%2e/%2e%2e/etc/passwd",
        "/apps/it/expenses/..%2f..%2fetc/passwd",
        "/apps/it/expenses/%252e%252e/etc/passwd",
        "/apps/it/expenses/..\\..\\etc\\passwd",
        "/apps/it/expenses/%c0%ae%c0%ae/etc/passwd",
    ] {
        let answer = exchange(
            &server,
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes(),
        );
        assert!(!answer.contains("root:"), "{path}: {answer}");
    }
    healthy(&server);
}

#[test]
fn a_client_over_its_connection_cap_gets_503_at_once_and_slow_clients_are_cut_off() {
    let server = start();
    // Eight idle connections (the per-client cap in CONFIG): the ninth is refused at once.
    let held: Vec<TcpStream> = (0..8).map(|_| connect(&server)).collect();
    // The server counts a connection when it accepts it: wait until it has the eight.
    crate::support::wait_for("the eight held connections to be accepted", || {
        let mut probe = connect(&server);
        probe.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
        let answer = read_to_close(&mut probe);
        crate::support::holds(status(&answer) == "503", || format!("the ninth got {}", status(&answer)))
    });
    let mut ninth = connect(&server);
    ninth.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let refused = read_to_close(&mut ninth);
    assert_eq!(status(&refused), "503", "{refused}");
    assert!(refused.contains("Retry-After: 1"), "{refused}");

    // The held connections dribble a part of a head and stop: the header timeout closes each.
    let mut held = held;
    for stream in &mut held {
        stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: loc").unwrap();
    }
    for mut stream in held {
        let answer = read_to_close(&mut stream);
        assert!(!answer.contains("200 OK"), "a slow client is cut off: {answer}");
    }
    // With them gone, the client is served again.
    crate::support::wait_for("the client to be served again", || {
        let answer = exchange(&server, b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        crate::support::holds(status(&answer) == "200", || answer.clone())
    });
}
