//! Unit tests of the request preparation that needs no network; the network paths are in `tests/it`.

use crate::host::{decode_body, parse_method, request_headers};

fn check_method(method: &str, expect: Result<&str, &str>) {
    let got = parse_method(method, "api.example.com").map(|method| method.to_string()).map_err(|failure| failure.code);
    assert_eq!(got.as_deref().map_err(|code| *code), expect, "{method}");
}

#[test]
fn methods_are_normalised_like_fetch() {
    check_method("GET", Ok("GET"));
    check_method("get", Ok("GET"));
    check_method("Post", Ok("POST"));
    check_method("delete", Ok("DELETE"));
    check_method("options", Ok("OPTIONS"));
    // Only the standard methods are case-insensitive; others are sent as written.
    check_method("PATCH", Ok("PATCH"));
    check_method("patch", Ok("patch"));
    check_method("PROPFIND", Ok("PROPFIND"));
    check_method("connect", Err("forbidden_method"));
    check_method("TRACE", Err("forbidden_method"));
    check_method("track", Err("forbidden_method"));
    check_method("GE T", Err("invalid_method"));
    check_method("", Err("invalid_method"));
}

#[test]
fn framing_and_hop_by_hop_headers_are_dropped() {
    let headers: Vec<(String, String)> = [
        ("Host", "internal.example.com"),
        ("Content-Length", "5"),
        ("Transfer-Encoding", "chunked"),
        ("Connection", "close"),
        ("Proxy-Authorization", "Basic abc"),
        ("Authorization", "Bearer token"),
        ("X-Custom", "1"),
        ("x-custom", "2"),
    ]
    .map(|(name, value)| (name.to_owned(), value.to_owned()))
    .to_vec();
    let map = request_headers(&headers, "api.example.com").unwrap_or_else(|_| panic!("valid headers"));
    let mut names: Vec<&str> = map.keys().map(|name| name.as_str()).collect();
    names.sort();
    assert_eq!(names, ["authorization", "x-custom"]);
    assert_eq!(map.get_all("x-custom").iter().count(), 2);
}

#[test]
fn invalid_headers_are_refused_without_showing_the_value() {
    let bad_value = [("Authorization".to_owned(), "Bearer secret\nInjected: yes".to_owned())];
    let failure = request_headers(&bad_value, "api.example.com").expect_err("refused");
    let message = failure.error.to_string();
    assert_eq!(failure.code, "invalid_header");
    assert!(message.contains("authorization") && !message.contains("secret"), "{message}");
    let bad_name = [("Bad Name".to_owned(), "x".to_owned())];
    assert!(request_headers(&bad_name, "api.example.com").is_err());
}

async fn encode(coding: &str, data: &[u8]) -> Vec<u8> {
    use async_compression::tokio::bufread::{BrotliEncoder, GzipEncoder, ZlibEncoder, ZstdEncoder};
    use tokio::io::AsyncReadExt;
    let mut out = Vec::new();
    match coding {
        "gzip" => GzipEncoder::new(data).read_to_end(&mut out).await,
        "deflate" => ZlibEncoder::new(data).read_to_end(&mut out).await,
        "br" => BrotliEncoder::new(data).read_to_end(&mut out).await,
        _ => ZstdEncoder::new(data).read_to_end(&mut out).await,
    }
    .unwrap();
    out
}

fn encoded_headers(coding: &str, length: usize) -> http::HeaderMap {
    let mut headers = http::HeaderMap::new();
    headers.insert(http::header::CONTENT_ENCODING, coding.parse().unwrap());
    headers.insert(http::header::CONTENT_LENGTH, length.into());
    headers
}

#[tokio::test]
async fn compressed_bodies_are_decoded_as_workers_fetch_decodes_them() {
    let text = b"lunch is at noon, ".repeat(100);
    for coding in ["gzip", "deflate", "br", "zstd"] {
        let raw = encode(coding, &text).await;
        let (body, headers) =
            decode_body(raw.clone().into(), encoded_headers(coding, raw.len()), 1 << 20, "api.example.com")
                .await
                .unwrap_or_else(|failure| panic!("{coding}: {}", failure.error));
        assert_eq!(&body[..], &text[..], "{coding}");
        assert!(headers.get(http::header::CONTENT_ENCODING).is_none(), "{coding}");
        assert_eq!(headers[http::header::CONTENT_LENGTH], text.len().to_string().as_str(), "{coding}");
    }
    // Two codings are undone last first.
    let twice = encode("br", &encode("gzip", &text).await).await;
    let (body, _) = decode_body(twice.into(), encoded_headers("gzip, br", 0), 1 << 20, "h").await.ok().unwrap();
    assert_eq!(&body[..], &text[..]);
    // A coding it does not know is left as it came.
    let (body, headers) =
        decode_body(b"abc"[..].into(), encoded_headers("compress", 3), 1 << 20, "h").await.ok().unwrap();
    assert_eq!(&body[..], b"abc");
    assert_eq!(headers[http::header::CONTENT_ENCODING], "compress");
}

#[tokio::test]
async fn a_compression_bomb_or_a_broken_body_is_refused() {
    let zeros = vec![0u8; 8 << 20];
    let bomb = encode("gzip", &zeros).await;
    assert!(bomb.len() < 64 * 1024, "8 MiB of zeros compress to {} bytes", bomb.len());
    let failure = decode_body(bomb.into(), encoded_headers("gzip", 0), 1 << 20, "h").await.err().unwrap();
    assert_eq!(failure.code, "too_large");
    let failure =
        decode_body(b"not gzip at all"[..].into(), encoded_headers("gzip", 15), 1 << 20, "h").await.err().unwrap();
    assert_eq!(failure.code, "body");
    assert!(failure.error.to_string().contains("not valid gzip"), "{}", failure.error);
}
