//! The server's front door: accepts connections and speaks HTTP/1.1 and HTTP/2 (in the clear)
//! under limits set explicitly (`[server]`), never left to the libraries' defaults. A client
//! over the connection caps gets a 503 with `Retry-After` and a closed connection at once; it is
//! never accepted and left waiting. A request with both `Content-Length` and
//! `Transfer-Encoding` (where request smuggling lives) is read by its chunked framing, as RFC
//! 9112 §6.3 allows, and its connection is closed after the answer (hyper's rule), so nothing
//! sent after it is taken as another request.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use serde::Deserialize;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

/// `[server]` limits of the front door, with the anchors' defaults beside each.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FrontDoorLimits {
    /// Bytes of a request's head (request line and headers together): over it, 431 (Envoy caps
    /// headers at 60 KiB, nginx a header line at 8 KiB).
    pub max_header_bytes: usize,
    /// Header fields in one request: over it, 431 (Envoy: 100).
    pub max_headers: usize,
    /// Seconds a client has to send a request's head, on a new connection and between
    /// requests on a kept-alive one (nginx: 60 for headers, 75 idle).
    pub header_read_timeout_s: u64,
    /// Connections open at once: over it, 503 and closed.
    pub max_connections: usize,
    /// Connections one client address may hold: over it, 503 and closed.
    pub max_connections_per_client: usize,
    /// HTTP/2: streams one connection may have open (Envoy: 100; nginx: 128).
    pub h2_max_concurrent_streams: u32,
    /// HTTP/2: bytes of one request's header list (as `max_header_bytes`).
    pub h2_max_header_list_bytes: u32,
    /// HTTP/2: streams a client may open and reset before the server reads them, the guard
    /// against rapid reset (CVE-2023-44487): over it the connection is closed.
    pub h2_max_pending_resets: usize,
}

impl Default for FrontDoorLimits {
    fn default() -> FrontDoorLimits {
        FrontDoorLimits {
            max_header_bytes: 64 * 1024,
            max_headers: 100,
            header_read_timeout_s: 30,
            max_connections: 20_000,
            max_connections_per_client: 1_000,
            h2_max_concurrent_streams: 100,
            h2_max_header_list_bytes: 64 * 1024,
            h2_max_pending_resets: 20,
        }
    }
}

impl FrontDoorLimits {
    /// Every problem, each naming its key.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.max_header_bytes < 8 * 1024 {
            problems.push("server.max_header_bytes is below 8192; give at least 8192 bytes".to_owned());
        }
        for (key, value) in [
            ("max_headers", self.max_headers),
            ("header_read_timeout_s", self.header_read_timeout_s as usize),
            ("max_connections", self.max_connections),
            ("max_connections_per_client", self.max_connections_per_client),
            ("h2_max_concurrent_streams", self.h2_max_concurrent_streams as usize),
            ("h2_max_header_list_bytes", self.h2_max_header_list_bytes as usize),
            ("h2_max_pending_resets", self.h2_max_pending_resets),
        ] {
            if value == 0 {
                problems.push(format!("server.{key} is 0; give a positive number"));
            }
        }
        problems
    }

    fn builder(&self) -> Builder<TokioExecutor> {
        let mut builder = Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(self.header_read_timeout_s))
            .max_buf_size(self.max_header_bytes)
            .max_headers(self.max_headers)
            .keep_alive(true);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_concurrent_streams(self.h2_max_concurrent_streams)
            .max_header_list_size(self.h2_max_header_list_bytes)
            .max_pending_accept_reset_streams(self.h2_max_pending_resets)
            .max_local_error_reset_streams(self.h2_max_pending_resets)
            .keep_alive_interval(Duration::from_secs(self.header_read_timeout_s))
            .keep_alive_timeout(Duration::from_secs(self.header_read_timeout_s));
        builder
    }
}

/// Open connections, in total and per client address.
#[derive(Default)]
struct Open {
    total: usize,
    by_client: HashMap<IpAddr, usize>,
}

/// One admitted connection: counted until dropped.
struct Admitted {
    open: Arc<Mutex<Open>>,
    client: IpAddr,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.total = open.total.saturating_sub(1);
        if let Some(count) = open.by_client.get_mut(&self.client) {
            *count -= 1;
            if *count == 0 {
                open.by_client.remove(&self.client);
            }
        }
    }
}

const OVER_CAPACITY: &[u8] =
    b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: text/plain; charset=utf-8\r\n\
Content-Length: 43\r\nConnection: close\r\n\r\nToo many connections; try again in a moment\n";

/// Serves `app` on `listener` until `shutdown` resolves, then lets open requests finish.
pub async fn serve(
    listener: TcpListener,
    app: axum::Router,
    limits: FrontDoorLimits,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let builder = limits.builder();
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let open = Arc::new(Mutex::new(Open::default()));
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer): (tokio::net::TcpStream, SocketAddr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of descriptors and the like: wait a moment rather than spin.
                    tracing::warn!(%error, "a connection could not be accepted");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let admitted = {
            let mut counts = open.lock().unwrap_or_else(PoisonError::into_inner);
            let mine = counts.by_client.get(&peer.ip()).copied().unwrap_or(0);
            if counts.total >= limits.max_connections || mine >= limits.max_connections_per_client {
                None
            } else {
                counts.total += 1;
                *counts.by_client.entry(peer.ip()).or_default() += 1;
                Some(Admitted { open: open.clone(), client: peer.ip() })
            }
        };
        let Some(admitted) = admitted else {
            tokio::spawn(async move {
                let mut stream = stream;
                let _ = tokio::time::timeout(Duration::from_secs(1), async {
                    let _ = stream.write_all(OVER_CAPACITY).await;
                    let _ = stream.shutdown().await;
                })
                .await;
            });
            continue;
        };
        let service = TowerToHyperService::new(app.clone());
        let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service).into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _ = connection.await;
            drop(admitted);
        });
    }
    drop(listener);
    // Open requests get a while to finish; idle connections close at once.
    let _ = tokio::time::timeout(Duration::from_secs(10), graceful.shutdown()).await;
    Ok(())
}
