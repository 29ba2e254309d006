//! A real HTTP server on 127.0.0.1 that plays the app's upstream: it answers, echoes, redirects,
//! streams large bodies and stalls, and counts every request it receives.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};

pub struct Upstream {
    pub port: u16,
    hits: Arc<AtomicUsize>,
}

impl Upstream {
    /// Requests the server has received so far.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

pub async fn start() -> Upstream {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&hits);
    let router = Router::new()
        .route("/hello", get(|| async { "hello" }))
        .route("/echo", any(echo))
        .route("/big/{bytes}", any(big))
        .route("/stream/{bytes}", get(stream))
        .route("/redirect", any(redirect))
        .route("/loop/{n}", get(redirect_loop))
        .route("/slow", get(slow))
        .layer(middleware::from_fn(move |request: Request, next: Next| {
            let counter = Arc::clone(&counter);
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                next.run(request).await
            }
        }));
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    Upstream { port, hits }
}

/// Describes the request it received, one `name=value` per line.
async fn echo(method: Method, headers: HeaderMap, body: Bytes) -> String {
    let header = |name: header::HeaderName| {
        headers.get(&name).map(|value| value.to_str().unwrap().to_owned()).unwrap_or_else(|| "-".to_owned())
    };
    format!(
        "method={method}\nhost={}\nauthorization={}\ncookie={}\ncontent-type={}\nuser-agent={}\nx-custom={}\nbody={}\n",
        header(header::HOST),
        header(header::AUTHORIZATION),
        header(header::COOKIE),
        header(header::CONTENT_TYPE),
        header(header::USER_AGENT),
        header(header::HeaderName::from_static("x-custom")),
        String::from_utf8_lossy(&body),
    )
}

/// A body of `bytes` bytes with a Content-Length.
async fn big(Path(bytes): Path<usize>) -> Vec<u8> {
    vec![b'x'; bytes]
}

/// A body of `bytes` bytes in 1000-byte chunks, without a Content-Length.
async fn stream(Path(bytes): Path<usize>) -> Body {
    let chunks = (0..bytes / 1000).map(|_| Ok::<_, Infallible>(Bytes::from(vec![b'x'; 1000])));
    Body::from_stream(futures::stream::iter(chunks))
}

/// Redirects to `?to=` with `?status=` (302 by default).
async fn redirect(Query(query): Query<HashMap<String, String>>) -> Response {
    let status = query.get("status").map_or(302, |status| status.parse().unwrap());
    let status = StatusCode::from_u16(status).unwrap();
    (status, [(header::LOCATION, query["to"].clone())]).into_response()
}

/// `/loop/n?until=m` redirects to `/loop/n+1` until n reaches m.
async fn redirect_loop(Path(n): Path<u32>, Query(query): Query<HashMap<String, String>>) -> Response {
    let until: u32 = query["until"].parse().unwrap();
    match n < until {
        true => (StatusCode::FOUND, [(header::LOCATION, format!("/loop/{}?until={until}", n + 1))]).into_response(),
        false => format!("done after {n} redirects").into_response(),
    }
}

async fn slow() -> &'static str {
    tokio::time::sleep(Duration::from_secs(30)).await;
    "too late"
}
