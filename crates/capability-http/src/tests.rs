//! Unit tests of the request preparation that needs no network; the network paths are in `tests/it`.

use crate::host::{parse_method, request_headers};

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
