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

/// HTTP/2 in the clear, frame by frame: the probes below send what a client library would
/// never send (more streams than allowed, streams opened and reset at once).
mod h2 {
    use super::*;

    pub const SETTINGS: u8 = 0x4;
    pub const HEADERS: u8 = 0x1;
    pub const RST_STREAM: u8 = 0x3;
    pub const GOAWAY: u8 = 0x7;
    pub const END_STREAM: u8 = 0x1;
    pub const END_HEADERS: u8 = 0x4;
    pub const ACK: u8 = 0x1;
    pub const REFUSED_STREAM: u32 = 0x7;
    pub const CANCEL: u32 = 0x8;

    pub struct Frame {
        pub kind: u8,
        pub flags: u8,
        pub stream: u32,
        pub payload: Vec<u8>,
    }

    pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let length = payload.len() as u32;
        let mut bytes = length.to_be_bytes()[1..].to_vec();
        bytes.extend_from_slice(&[kind, flags]);
        bytes.extend_from_slice(&stream.to_be_bytes());
        bytes.extend_from_slice(payload);
        bytes
    }

    /// A request's header block in HPACK, every field a literal of the static table's names
    /// (no dynamic table, so each block stands alone).
    pub fn request(method_get: bool, path: &str) -> Vec<u8> {
        let mut block = vec![if method_get { 0x82 } else { 0x83 }, 0x86, 0x04, path.len() as u8];
        block.extend_from_slice(path.as_bytes());
        block.extend_from_slice(&[0x01, 9]);
        block.extend_from_slice(b"localhost");
        block
    }

    /// The next frame, or `None` when the server closed the connection (or the read bound
    /// passed).
    pub fn read_frame(stream: &mut TcpStream) -> Option<Frame> {
        let mut head = [0u8; 9];
        stream.read_exact(&mut head).ok()?;
        let length = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        let mut payload = vec![0u8; length];
        stream.read_exact(&mut payload).ok()?;
        let stream_id = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
        Some(Frame { kind: head[3], flags: head[4], stream: stream_id, payload })
    }

    /// Opens an HTTP/2 connection (prior knowledge), acknowledges the server's settings and
    /// answers them.
    pub fn open(server: &Server) -> (TcpStream, Vec<(u16, u32)>) {
        let mut stream = connect(server);
        stream.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").unwrap();
        stream.write_all(&frame(SETTINGS, 0, 0, &[])).unwrap();
        loop {
            let frame = read_frame(&mut stream).expect("the server's SETTINGS");
            if frame.kind == SETTINGS && frame.flags & ACK == 0 {
                let settings = frame
                    .payload
                    .chunks(6)
                    .map(|entry| {
                        (
                            u16::from_be_bytes([entry[0], entry[1]]),
                            u32::from_be_bytes([entry[2], entry[3], entry[4], entry[5]]),
                        )
                    })
                    .collect();
                stream.write_all(&frame_ack()).unwrap();
                return (stream, settings);
            }
        }
    }

    fn frame_ack() -> Vec<u8> {
        frame(SETTINGS, ACK, 0, &[])
    }
}

#[test]
fn http2_limits_are_stated_and_a_stream_flood_is_refused() {
    let server = start();
    let (mut stream, settings) = h2::open(&server);
    // SETTINGS_MAX_CONCURRENT_STREAMS (3) and SETTINGS_MAX_HEADER_LIST_SIZE (6), as configured.
    assert!(settings.contains(&(0x3, 100)), "{settings:?}");
    assert!(settings.contains(&(0x6, 64 * 1024)), "{settings:?}");

    // 150 requests whose bodies never come: each stream stays open. Those past 100 are
    // refused one by one; a client that goes on past the reset cap (20) loses the connection
    // (GOAWAY, ENHANCE_YOUR_CALM), the first 100 streams still its last processed.
    let mut burst = Vec::new();
    for index in 0..150u32 {
        let block = h2::request(false, "/apps/it/expenses/add");
        burst.extend(h2::frame(h2::HEADERS, h2::END_HEADERS, 2 * index + 1, &block));
    }
    stream.write_all(&burst).unwrap();
    let mut refused = 0;
    let goaway = loop {
        let frame = h2::read_frame(&mut stream).expect("the server refuses the streams past its limit");
        if frame.kind == h2::RST_STREAM && frame.payload == h2::REFUSED_STREAM.to_be_bytes() {
            assert!(frame.stream > 2 * 100, "stream {} is within the limit", frame.stream);
            refused += 1;
        }
        if frame.kind == h2::GOAWAY {
            break frame.payload;
        }
    };
    assert_eq!(refused, 20, "each stream past the limit is refused until the reset cap");
    let last_stream = u32::from_be_bytes([goaway[0], goaway[1], goaway[2], goaway[3]]);
    let code = u32::from_be_bytes([goaway[4], goaway[5], goaway[6], goaway[7]]);
    assert_eq!((last_stream, code), (199, 0xb), "GOAWAY after the hundredth stream, ENHANCE_YOUR_CALM");
    drop(stream);
    healthy(&server);
}

#[test]
fn a_rapid_reset_flood_ends_the_connection_and_the_server_holds() {
    let server = start();
    let before = server.resident_kib();
    let (mut stream, _) = h2::open(&server);
    // Streams opened and cancelled at once (CVE-2023-44487), far past the pending-reset cap.
    let mut burst = Vec::new();
    for index in 0..2000u32 {
        let id = 2 * index + 1;
        burst.extend(h2::frame(h2::HEADERS, h2::END_HEADERS | h2::END_STREAM, id, &h2::request(true, "/healthz")));
        burst.extend(h2::frame(h2::RST_STREAM, 0, id, &h2::CANCEL.to_be_bytes()));
    }
    // The server may close while the burst is still being written.
    let _ = stream.write_all(&burst);
    let mut goaway = None;
    while let Some(frame) = h2::read_frame(&mut stream) {
        if frame.kind == h2::GOAWAY {
            goaway = Some(u32::from_be_bytes([frame.payload[4], frame.payload[5], frame.payload[6], frame.payload[7]]));
        }
    }
    // ENHANCE_YOUR_CALM (0xb), or the connection closed without a word.
    assert!(matches!(goaway, None | Some(0xb)), "GOAWAY {goaway:?}");
    healthy(&server);
    let after = server.resident_kib();
    assert!(after < before + 64 * 1024, "resident memory grew from {before} to {after} KiB");
}
