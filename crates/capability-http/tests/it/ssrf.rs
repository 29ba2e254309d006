//! The SSRF suite: every trick to reach loopback, metadata or private addresses is denied with a
//! clear message, and the upstream never sees the request.

use crate::{config, denied, entries, get, outbound, upstream};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_is_denied_without_the_operator_range() {
    let upstream = upstream::start().await;
    let port = upstream.port;
    let outbound = outbound(
        config(&[]),
        &entries(&[&format!("127.0.0.1:{port}"), &format!("upstream.test:{port}"), &format!("localhost:{port}")]),
    );

    let url = format!("http://127.0.0.1:{port}/hello");
    assert_eq!(
        denied(&url, get(&outbound, &url).await),
        "fetch to \"127.0.0.1\" denied: the address is a loopback address (the platform's own machine), \
         which apps may not reach unless the platform operator allows that range in terrarium.toml"
    );
    // The test resolver maps upstream.test to 127.0.0.1: checked after resolution, before connecting.
    let url = format!("http://upstream.test:{port}/hello");
    assert_eq!(
        denied(&url, get(&outbound, &url).await),
        "fetch to \"upstream.test\" denied: it resolves to 127.0.0.1, a loopback address (the platform's own \
         machine), which apps may not reach unless the platform operator allows that range in terrarium.toml"
    );
    assert_eq!(upstream.hits(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_encoding_of_loopback_is_denied() {
    let upstream = upstream::start().await;
    let port = upstream.port;
    let urls = [
        format!("http://127.0.0.1:{port}/hello"),
        format!("http://2130706433:{port}/hello"),
        format!("http://0x7f000001:{port}/hello"),
        format!("http://0x7f.0.0.1:{port}/hello"),
        format!("http://0177.0.0.1:{port}/hello"),
        format!("http://017700000001:{port}/hello"),
        format!("http://127.1:{port}/hello"),
        format!("http://127.0.1:{port}/hello"),
        format!("http://0:{port}/hello"),
        format!("http://0.0.0.0:{port}/hello"),
        format!("http://[::1]:{port}/hello"),
        format!("http://[::]:{port}/hello"),
        format!("http://[::ffff:127.0.0.1]:{port}/hello"),
        format!("http://[::ffff:7f00:1]:{port}/hello"),
        format!("http://[0:0:0:0:0:ffff:127.0.0.1]:{port}/hello"),
        format!("http://%31%32%37.0.0.1:{port}/hello"),
    ];

    // The app lists every spelling, but the operator allows no internal range: the address policy denies.
    let listed = entries(&[
        &format!("127.0.0.1:{port}"),
        &format!("0.0.0.0:{port}"),
        &format!("[::1]:{port}"),
        &format!("[::]:{port}"),
        &format!("[::ffff:127.0.0.1]:{port}"),
    ]);
    let outbound_without_range = outbound(config(&[]), &listed);
    for url in &urls {
        let message = denied(url, get(&outbound_without_range, url).await);
        assert!(
            message.contains("a loopback address") || message.contains("an unspecified address"),
            "{url}: {message}"
        );
    }

    // The operator allows loopback, but the app lists only a name: no spelling of the address matches.
    let outbound_with_range =
        outbound(config(&["127.0.0.0/8", "::1/128"]), &entries(&[&format!("upstream.test:{port}")]));
    for url in &urls {
        let message = denied(url, get(&outbound_with_range, url).await);
        assert!(
            message.contains("host not in spec.allowedEgress") || message.contains("an unspecified address"),
            "{url}: {message}"
        );
    }
    assert_eq!(upstream.hits(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_encoding_of_the_metadata_address_is_denied_even_with_a_broad_operator_range() {
    let urls = [
        "http://169.254.169.254/latest/meta-data/",
        "http://2852039166/latest/meta-data/",
        "http://0xa9fea9fe/latest/meta-data/",
        "http://0xA9.0xFE.0xA9.0xFE/",
        "http://0251.0376.0251.0376/",
        "http://169.254.43518/",
        "http://169.16689662/",
        "http://[::ffff:169.254.169.254]/",
        "http://[::ffff:a9fe:a9fe]/",
        "http://[64:ff9b::169.254.169.254]/",
        "http://[2002:a9fe:a9fe::1]/",
        "http://[fd00:ec2::254]/",
        "http://100.100.100.200/",
        "http://metadata.test/computeMetadata/v1/",
    ];
    let listed = entries(&[
        "169.254.169.254",
        "[::ffff:169.254.169.254]",
        "[64:ff9b::169.254.169.254]",
        "[2002:a9fe:a9fe::1]",
        "[fd00:ec2::254]",
        "100.100.100.200",
        "metadata.test",
    ]);
    for ranges in [&[][..], &["0.0.0.0/0", "::/0"][..], &["169.254.0.0/16"][..]] {
        let outbound = outbound(config(ranges), &listed);
        for url in urls {
            let message = denied(url, get(&outbound, url).await);
            assert!(message.contains("a cloud metadata address, which apps may never reach"), "{url}: {message}");
        }
    }
    let outbound = outbound(config(&[]), &listed);
    assert_eq!(
        denied("", get(&outbound, "http://0xa9fea9fe/").await),
        "fetch to \"169.254.169.254\" denied: the address is a cloud metadata address, which apps may never reach"
    );
    assert_eq!(
        denied("", get(&outbound, "http://metadata.test/").await),
        "fetch to \"metadata.test\" denied: it resolves to 169.254.169.254, a cloud metadata address, \
         which apps may never reach"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_addresses_are_denied() {
    let listed =
        entries(&["10.0.0.1", "172.16.0.1", "192.168.1.1", "100.64.0.1", "169.254.1.1", "[fd12::1]", "private.test"]);
    let outbound = outbound(config(&[]), &listed);
    for (url, class) in [
        ("http://10.0.0.1/", "a private network address (RFC 1918)"),
        ("http://172.16.0.1/", "a private network address (RFC 1918)"),
        ("http://192.168.1.1/", "a private network address (RFC 1918)"),
        ("http://0xc0a80101/", "a private network address (RFC 1918)"),
        ("http://100.64.0.1/", "a carrier-grade NAT address"),
        ("http://169.254.1.1/", "a link-local address"),
        ("http://[fd12::1]/", "a unique-local IPv6 address"),
        ("http://private.test/", "it resolves to 10.0.0.7, a private network address (RFC 1918)"),
    ] {
        let message = denied(url, get(&outbound, url).await);
        assert!(message.contains(class), "{url}: {message}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_resolving_to_internal_addresses_are_denied() {
    let upstream = upstream::start().await;
    let port = upstream.port;
    let listed = entries(&[
        &format!("upstream.test:{port}"),
        &format!("public-and-loopback.test:{port}"),
        &format!("mapped-loopback.test:{port}"),
    ]);
    let outbound = outbound(config(&[]), &listed);
    for (host, expect) in [
        ("upstream.test", "it resolves to 127.0.0.1, a loopback address"),
        // One internal address among public ones is enough to deny the name.
        ("public-and-loopback.test", "it resolves to 127.0.0.1, a loopback address"),
        ("mapped-loopback.test", "it resolves to ::ffff:127.0.0.1, which embeds 127.0.0.1, a loopback address"),
    ] {
        let url = format!("http://{host}:{port}/hello");
        let message = denied(&url, get(&outbound, &url).await);
        assert!(message.starts_with(&format!("fetch to \"{host}\" denied: {expect}")), "{url}: {message}");
    }
    assert_eq!(upstream.hits(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_to_a_denied_destination_is_denied() {
    let upstream = upstream::start().await;
    let port = upstream.port;
    let outbound = outbound(
        config(&["127.0.0.1/32"]),
        &entries(&[&format!("upstream.test:{port}"), "169.254.169.254", "metadata.test", "private.test"]),
    );
    let cases = [
        (format!("http://other.test:{port}/hello"), "fetch to \"other.test\" denied: host not in spec.allowedEgress"),
        ("http://169.254.169.254/latest/meta-data/".to_owned(), "a cloud metadata address"),
        ("http://0xa9fea9fe/".to_owned(), "a cloud metadata address"),
        ("http://metadata.test/".to_owned(), "it resolves to 169.254.169.254, a cloud metadata address"),
        ("http://private.test/".to_owned(), "it resolves to 10.0.0.7, a private network address"),
        (format!("http://127.0.0.1:{port}/hello"), "fetch to \"127.0.0.1\" denied: host not in spec.allowedEgress"),
        (format!("http://[::1]:{port}/hello"), "a loopback address"),
        (format!("http://upstream.test:{port}@other.test:{port}/hello"), "user name or password"),
        ("file:///etc/passwd".to_owned(), "only http and https URLs may be fetched, not file"),
        ("gopher://upstream.test/".to_owned(), "only http and https URLs may be fetched, not gopher"),
    ];
    for (to, expect) in &cases {
        for status in [301, 302, 303, 307, 308] {
            let url = format!("http://upstream.test:{port}/redirect?status={status}&to={}", percent_encode(to));
            let message = denied(&url, get(&outbound, &url).await);
            assert!(message.contains(expect), "{to} via {status}: {message}");
            assert!(message.ends_with("(redirected from \"upstream.test\")"), "{to} via {status}: {message}");
        }
    }
    // Only the redirecting requests reached the upstream; no denied destination did.
    assert_eq!(upstream.hits(), cases.len() * 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemes_other_than_http_and_https_are_denied() {
    let outbound = outbound(config(&["127.0.0.1/32"]), &entries(&["upstream.test"]));
    for (url, scheme) in [
        ("ftp://upstream.test/file", "ftp"),
        ("file:///etc/passwd", "file"),
        ("gopher://upstream.test/", "gopher"),
        ("ws://upstream.test/", "ws"),
        ("data:text/plain,hello", "data"),
        ("javascript:alert(1)", "javascript"),
    ] {
        let message = denied(url, get(&outbound, url).await);
        assert!(
            message.ends_with(&format!("only http and https URLs may be fetched, not {scheme}")),
            "{url}: {message}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn userinfo_and_backslash_tricks_are_denied() {
    let upstream = upstream::start().await;
    let port = upstream.port;
    let outbound = outbound(config(&["127.0.0.1/32"]), &entries(&[&format!("upstream.test:{port}")]));
    let cases = [
        // The real host is other.test; upstream.test is a user name.
        (
            format!("http://upstream.test:{port}@other.test:{port}/hello"),
            "fetch to \"other.test\" denied: URLs with a user name",
        ),
        (
            format!("http://user:pass@upstream.test:{port}/hello"),
            "fetch to \"upstream.test\" denied: URLs with a user name",
        ),
        // WHATWG reads `\` as `/`: the host is other.test and `@upstream.test` is the path.
        (
            format!("http://other.test:{port}\\@upstream.test:{port}/hello"),
            "fetch to \"other.test\" denied: host not in",
        ),
        (
            format!("http://other.test:{port}#@upstream.test:{port}/hello"),
            "fetch to \"other.test\" denied: host not in",
        ),
        (
            format!("http://other.test:{port}?@upstream.test:{port}/hello"),
            "fetch to \"other.test\" denied: host not in",
        ),
        // The host is allowed on its listed port only.
        (format!("http://upstream.test:{}/hello", port + 1), "but not for http on port"),
        ("http://upstream.test/hello".to_owned(), "but not for http on port 80"),
    ];
    for (url, expect) in &cases {
        let message = denied(url, get(&outbound, url).await);
        assert!(message.starts_with(expect) || message.contains(expect), "{url}: {message}");
    }
    assert_eq!(upstream.hits(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_without_allowed_egress_may_not_fetch() {
    let outbound = outbound(config(&[]), &[]);
    let message = denied("", get(&outbound, "https://api.example.com/v1").await);
    assert_eq!(
        message,
        "fetch to \"api.example.com\" denied: this app has no spec.allowedEgress, so it may not make outbound \
         requests; add \"api.example.com\" to allowedEgress in terrarium.yaml"
    );
}

/// Enough percent-encoding to pass a URL as one query value.
fn percent_encode(value: &str) -> String {
    value
        .bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (byte as char).to_string(),
            _ => format!("%{byte:02X}"),
        })
        .collect()
}
