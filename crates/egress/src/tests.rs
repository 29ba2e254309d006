//! Tests for allow-list parsing and matching, URL canonicalisation and the address policy.

use std::fmt::Write;
use std::net::IpAddr;

use crate::{AddressPolicy, AllowList, Denied, RuleProblem, ip_literal, parse_url};

fn allow_list(entries: &[&str]) -> AllowList {
    let entries: Vec<String> = entries.iter().map(|entry| entry.to_string()).collect();
    match AllowList::parse(&entries) {
        Ok(allow_list) => allow_list,
        Err(errors) => panic!("{entries:?} should parse: {errors:?}"),
    }
}

/// Checks each `(url, allowed)` pair against the allow list made of `entries`.
fn check(entries: &[&str], cases: &[(&str, bool)]) {
    let allow_list = allow_list(entries);
    for (url, expect_allowed) in cases {
        let result = allow_list.check_url(url);
        assert_eq!(result.is_ok(), *expect_allowed, "{entries:?} vs {url}: {result:?}");
    }
}

/// Checks that `url` is denied by the allow list made of `entries`, with `code`.
fn check_denied(entries: &[&str], url: &str, code: &str) -> Denied {
    let denied = allow_list(entries).check_url(url).expect_err(url);
    assert_eq!(denied.code(), code, "{url}: {denied}");
    denied
}

/// Checks the address policy with the operator's `ranges`: `Some(class code)` for a denial.
fn check_ip(ranges: &[&str], cases: &[(&str, Option<&str>)]) {
    let policy = AddressPolicy::new(ranges.iter().map(|range| range.parse().unwrap()).collect());
    for (address, expect) in cases {
        let address: IpAddr = address.parse().unwrap();
        let got = match policy.check_ip(address) {
            Ok(()) => None,
            Err(Denied { reason: crate::DenyReason::Address { class, .. }, .. }) => Some(class.code()),
            Err(other) => panic!("{address}: unexpected denial {other:?}"),
        };
        assert_eq!(got, *expect, "{address} with operator ranges {ranges:?}");
    }
}

/// Runs a URL through the whole pure path: parse, then the address policy for IP literals, then the allow list.
fn check_pipeline(entries: &[&str], ranges: &[&str], url: &str) -> Result<(), Denied> {
    let policy = AddressPolicy::new(ranges.iter().map(|range| range.parse().unwrap()).collect());
    let url = parse_url(url)?;
    if let Some(address) = ip_literal(&url) {
        policy.check_ip(address)?;
    }
    allow_list(entries).check(&url)
}

#[test]
fn exact_host_allows_http_and_https_on_default_ports() {
    check(
        &["api.example.com"],
        &[
            ("https://api.example.com/v1/items?x=1", true),
            ("http://api.example.com/", true),
            ("https://api.example.com:443/", true),
            ("http://api.example.com:80/", true),
            ("https://API.Example.COM/", true),
            ("https://api.example.com./", true),
            ("https://api.example.com:8443/", false),
            ("http://api.example.com:443/", false),
            ("https://example.com/", false),
            ("https://other.api.example.com/", false),
            ("https://api.example.com.evil.com/", false),
            ("https://evilapi.example.com/", false),
        ],
    );
}

#[test]
fn scheme_restricts_to_that_scheme() {
    check(
        &["https://api.example.com"],
        &[
            ("https://api.example.com/", true),
            ("http://api.example.com/", false),
            ("http://api.example.com:443/", false),
        ],
    );
    check(&["HTTP://api.example.com/"], &[("http://api.example.com/", true), ("https://api.example.com/", false)]);
}

#[test]
fn explicit_port_allows_only_that_port() {
    check(
        &["api.example.com:8443"],
        &[
            ("https://api.example.com:8443/", true),
            ("http://api.example.com:8443/", true),
            ("https://api.example.com/", false),
            ("http://api.example.com/", false),
        ],
    );
    check(
        &["https://api.example.com:8443"],
        &[("https://api.example.com:8443/", true), ("http://api.example.com:8443/", false)],
    );
    // An explicit default port is the same as no port for that scheme only.
    check(&["api.example.com:443"], &[("https://api.example.com/", true), ("http://api.example.com/", false)]);
}

#[test]
fn wildcard_matches_subdomains_not_the_apex() {
    check(
        &["*.example.com"],
        &[
            ("https://a.example.com/", true),
            ("https://a.b.example.com/", true),
            ("http://A.EXAMPLE.COM/", true),
            ("https://example.com/", false),
            ("https://badexample.com/", false),
            ("https://example.com.evil.com/", false),
            ("https://a.example.com:8443/", false),
        ],
    );
    check(&["https://*.example.com:8443"], &[("https://a.example.com:8443/", true), ("https://a.example.com/", false)]);
}

#[test]
fn ip_literals_match_exactly() {
    check(
        &["93.184.215.14", "[2606:2800:21f:cb07:6820:80da:af6b:8b2c]:8080"],
        &[
            ("http://93.184.215.14/", true),
            // Another spelling of the same address is the same address.
            ("http://1572394766/", true),
            ("http://93.184.215.15/", false),
            ("http://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]:8080/", true),
            ("http://[2606:2800:021f:cb07:6820:80da:af6b:8b2c]:8080/", true),
            ("http://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]/", false),
        ],
    );
}

#[test]
fn idna_hosts_are_normalised() {
    check(
        &["bücher.example"],
        &[
            ("https://xn--bcher-kva.example/", true),
            ("https://BÜCHER.example/", true),
            ("https://bucher.example/", false),
        ],
    );
    check(&["xn--bcher-kva.example"], &[("https://bücher.example/", true)]);
}

#[test]
fn several_entries_and_duplicates() {
    check(
        &["a.example.com", "https://b.example.com", "a.example.com", "*.c.example.com:9000"],
        &[
            ("http://a.example.com/", true),
            ("https://b.example.com/", true),
            ("http://b.example.com/", false),
            ("http://x.c.example.com:9000/", true),
            ("http://c.example.com:9000/", false),
        ],
    );
}

#[test]
fn empty_allow_list_allows_nothing() {
    let denied = check_denied(&[], "https://api.example.com/", "host_not_allowed");
    assert!(denied.to_string().contains("this app has no spec.allowedEgress"), "{denied}");
    assert!(AllowList::empty().is_empty());
}

#[test]
fn only_http_and_https() {
    for url in ["ftp://api.example.com/", "file:///etc/passwd", "gopher://api.example.com/", "ws://api.example.com/"] {
        check_denied(&["api.example.com"], url, "scheme");
    }
    check_denied(&["api.example.com"], "data:text/plain,hello", "scheme");
    check_denied(&["api.example.com"], "javascript:alert(1)", "scheme");
}

#[test]
fn userinfo_and_backslash_tricks() {
    // The host is evil.com: the part before @ is a user name, which is refused outright.
    let denied = check_denied(&["allowed.com"], "http://allowed.com@evil.com/", "userinfo");
    assert_eq!(denied.host.as_deref(), Some("evil.com"));
    check_denied(&["allowed.com"], "http://user:pass@allowed.com/", "userinfo");
    check_denied(&["allowed.com"], "http://:pass@allowed.com/", "userinfo");
    // WHATWG treats `\` like `/` for http(s), so the host is evil.com and `@allowed.com` is the path.
    let denied = check_denied(&["allowed.com"], "http://evil.com\\@allowed.com/", "host_not_allowed");
    assert_eq!(denied.host.as_deref(), Some("evil.com"));
    check_denied(&["allowed.com"], "http://evil.com#@allowed.com/", "host_not_allowed");
    check_denied(&["allowed.com"], "http://evil.com?@allowed.com/", "host_not_allowed");
    check(&["allowed.com"], &[("http://allowed.com\\path", true), ("http:\\\\allowed.com\\", true)]);
}

#[test]
fn invalid_urls_are_denied() {
    for url in ["", "not a url", "/relative/path", "http://", "http://exa mple.com/", "http://[::1/"] {
        check_denied(&["example.com"], url, "invalid_url");
    }
}

#[test]
fn url_canonicalises_every_ipv4_spelling() {
    let loopback = [
        "http://127.0.0.1/",
        "http://2130706433/",
        "http://0x7f000001/",
        "http://0x7F.0x0.0x0.0x1/",
        "http://0177.0.0.1/",
        "http://0177.0000.0000.0001/",
        "http://127.1/",
        "http://127.0.1/",
        "http://127.000.000.001/",
        "http://0x7f.1/",
        "http://017700000001/",
        "http://127.0.0.1./",
        "http://%31%32%37.0.0.1/",
        "http://１２７.０.０.１/",
    ];
    for url in loopback {
        let parsed = parse_url(url).unwrap();
        assert_eq!(ip_literal(&parsed), Some("127.0.0.1".parse().unwrap()), "{url}");
    }
    let zero = parse_url("http://0/").unwrap();
    assert_eq!(ip_literal(&zero), Some("0.0.0.0".parse().unwrap()));
    let metadata = [
        "http://169.254.169.254/",
        "http://2852039166/",
        "http://0xa9fea9fe/",
        "http://0xA9.0xFE.0xA9.0xFE/",
        "http://0251.0376.0251.0376/",
        "http://169.254.43518/",
        "http://169.16689662/",
        "http://0251.254.169.0xfe/",
    ];
    for url in metadata {
        let parsed = parse_url(url).unwrap();
        assert_eq!(ip_literal(&parsed), Some("169.254.169.254".parse().unwrap()), "{url}");
    }
    assert_eq!(ip_literal(&parse_url("https://example.com/").unwrap()), None);
}

#[test]
fn ip_literal_urls_are_checked_against_the_address_policy() {
    // The app lists the address, but it is internal and the operator allows nothing.
    let cases = [
        ("http://2130706433/", "loopback"),
        ("http://0x7f000001/", "loopback"),
        ("http://0177.0.0.1/", "loopback"),
        ("http://127.1/", "loopback"),
        ("http://0/", "unspecified"),
        ("http://[::1]/", "loopback"),
        ("http://[::ffff:127.0.0.1]/", "loopback"),
        ("http://[::ffff:7f00:1]/", "loopback"),
        ("http://[::127.0.0.1]/", "loopback"),
        ("http://[64:ff9b::127.0.0.1]/", "loopback"),
        ("http://[2002:7f00:1::]/", "loopback"),
        ("http://[::]/", "unspecified"),
        ("http://169.254.169.254/", "cloud_metadata"),
        ("http://2852039166/", "cloud_metadata"),
        ("http://0xa9fea9fe/", "cloud_metadata"),
        ("http://0251.0376.0251.0376/", "cloud_metadata"),
        ("http://[::ffff:169.254.169.254]/", "cloud_metadata"),
        ("http://[::ffff:a9fe:a9fe]/", "cloud_metadata"),
        ("http://[fd00:ec2::254]/", "cloud_metadata"),
        ("http://100.100.100.200/", "cloud_metadata"),
        ("http://10.0.0.1/", "private"),
        ("http://192.168.1.1/", "private"),
    ];
    let entries = [
        "127.0.0.1",
        "0.0.0.0",
        "[::1]",
        "[::ffff:127.0.0.1]",
        "[::127.0.0.1]",
        "[64:ff9b::127.0.0.1]",
        "[2002:7f00:1::]",
        "[::]",
        "169.254.169.254",
        "[::ffff:169.254.169.254]",
        "[fd00:ec2::254]",
        "100.100.100.200",
        "10.0.0.1",
        "192.168.1.1",
    ];
    for (url, class) in cases {
        let denied = check_pipeline(&entries, &[], url).expect_err(url);
        match &denied.reason {
            crate::DenyReason::Address { class: got, .. } => {
                assert_eq!(got.code(), class, "{url}: {denied}")
            }
            other => panic!("{url}: expected an address denial, got {other:?}"),
        }
    }
    // With the operator's range, loopback passes the address policy and then needs the allow list.
    assert_eq!(check_pipeline(&entries, &["127.0.0.0/8"], "http://0x7f000001/"), Ok(()));
    assert_eq!(check_pipeline(&entries, &["127.0.0.0/8"], "http://[::ffff:127.0.0.1]/"), Ok(()));
    let denied = check_pipeline(&["example.com"], &["127.0.0.0/8"], "http://127.1/").unwrap_err();
    assert_eq!(denied.code(), "host_not_allowed");
    // Metadata stays denied even when the operator allows everything.
    let denied = check_pipeline(&entries, &["0.0.0.0/0", "::/0"], "http://0xa9fea9fe/").unwrap_err();
    assert_eq!(denied.code(), "blocked_address");
}

#[test]
fn ipv4_blocked_ranges() {
    check_ip(
        &[],
        &[
            ("8.8.8.8", None),
            ("1.1.1.1", None),
            ("93.184.215.14", None),
            ("0.0.0.0", Some("unspecified")),
            ("0.1.2.3", Some("unspecified")),
            ("127.0.0.1", Some("loopback")),
            ("127.255.255.254", Some("loopback")),
            ("10.0.0.0", Some("private")),
            ("10.255.255.255", Some("private")),
            ("172.16.0.1", Some("private")),
            ("172.31.255.255", Some("private")),
            ("172.15.255.255", None),
            ("172.32.0.0", None),
            ("192.168.0.1", Some("private")),
            ("192.169.0.1", None),
            ("100.64.0.1", Some("carrier_grade_nat")),
            ("100.127.255.255", Some("carrier_grade_nat")),
            ("100.63.255.255", None),
            ("100.128.0.0", None),
            ("169.254.0.1", Some("link_local")),
            ("169.254.169.254", Some("cloud_metadata")),
            ("169.254.170.2", Some("cloud_metadata")),
            ("100.100.100.200", Some("cloud_metadata")),
            ("168.63.129.16", Some("cloud_metadata")),
            ("192.0.0.8", Some("reserved")),
            ("192.0.2.1", Some("documentation")),
            ("198.51.100.1", Some("documentation")),
            ("203.0.113.1", Some("documentation")),
            ("192.88.99.1", Some("reserved")),
            ("198.18.0.1", Some("benchmarking")),
            ("198.19.255.255", Some("benchmarking")),
            ("198.20.0.0", None),
            ("224.0.0.1", Some("multicast")),
            ("239.255.255.255", Some("multicast")),
            ("240.0.0.1", Some("reserved")),
            ("255.255.255.254", Some("reserved")),
            ("255.255.255.255", Some("broadcast")),
            ("223.255.255.255", None),
        ],
    );
}

#[test]
fn ipv6_blocked_ranges() {
    check_ip(
        &[],
        &[
            ("2606:4700:4700::1111", None),
            ("2001:4860:4860::8888", None),
            ("::", Some("unspecified")),
            ("::1", Some("loopback")),
            ("fe80::1", Some("link_local")),
            ("febf::1", Some("link_local")),
            ("fec0::1", Some("site_local")),
            ("fc00::1", Some("unique_local")),
            ("fdff:ffff::1", Some("unique_local")),
            ("fd00:ec2::254", Some("cloud_metadata")),
            ("ff02::1", Some("multicast")),
            ("ff0e::1", Some("multicast")),
            ("100::1", Some("reserved")),
            ("2001:db8::1", Some("documentation")),
            ("3fff::1", Some("documentation")),
            ("2001:2::1", Some("benchmarking")),
            ("2001::1", Some("reserved")),
            ("2001:0:4136:e378:8000:63bf:3fff:fdd2", Some("reserved")),
            ("5f00::1", Some("reserved")),
            ("4000::1", Some("reserved")),
            ("1::1", Some("reserved")),
        ],
    );
}

#[test]
fn ipv4_embedded_in_ipv6_is_checked_on_the_ipv4() {
    check_ip(
        &[],
        &[
            // IPv4-mapped.
            ("::ffff:127.0.0.1", Some("loopback")),
            ("::ffff:10.1.2.3", Some("private")),
            ("::ffff:169.254.169.254", Some("cloud_metadata")),
            ("::ffff:0.0.0.0", Some("unspecified")),
            ("::ffff:8.8.8.8", None),
            // IPv4-compatible.
            ("::127.0.0.1", Some("loopback")),
            ("::169.254.169.254", Some("cloud_metadata")),
            ("::8.8.8.8", None),
            // IPv4-translated.
            ("::ffff:0:127.0.0.1", Some("loopback")),
            ("::ffff:0:8.8.8.8", None),
            // NAT64, well-known and local-use prefixes.
            ("64:ff9b::127.0.0.1", Some("loopback")),
            ("64:ff9b::169.254.169.254", Some("cloud_metadata")),
            ("64:ff9b::8.8.8.8", None),
            ("64:ff9b:1::10.0.0.1", Some("private")),
            ("64:ff9b:1::8.8.8.8", None),
            // 6to4 embeds the IPv4 address in bits 16 to 48.
            ("2002:7f00:1::1", Some("loopback")),
            ("2002:a9fe:a9fe::", Some("cloud_metadata")),
            ("2002:c0a8:101::1", Some("private")),
            ("2002:808:808::1", None),
        ],
    );
}

#[test]
fn operator_ranges_unlock_internal_addresses() {
    check_ip(
        &["127.0.0.1/32", "10.20.0.0/16", "fd12:3456::/32"],
        &[
            ("127.0.0.1", None),
            ("::ffff:127.0.0.1", None),
            ("127.0.0.2", Some("loopback")),
            ("::1", Some("loopback")),
            ("10.20.30.40", None),
            ("10.21.0.1", Some("private")),
            ("fd12:3456::1", None),
            ("fd12:3457::1", Some("unique_local")),
            ("8.8.8.8", None),
        ],
    );
    // The IPv6 form of an allowed IPv4 address counts too, and an IPv6 range covers its mapped form.
    check_ip(&["::ffff:10.0.0.0/104"], &[("10.1.2.3", Some("private")), ("::ffff:10.1.2.3", None)]);
}

#[test]
fn operator_ranges_never_unlock_metadata_unspecified_multicast_broadcast() {
    check_ip(
        &["0.0.0.0/0", "::/0"],
        &[
            ("127.0.0.1", None),
            ("10.0.0.1", None),
            ("169.254.1.1", None),
            ("fe80::1", None),
            ("169.254.169.254", Some("cloud_metadata")),
            ("::ffff:169.254.169.254", Some("cloud_metadata")),
            ("fd00:ec2::254", Some("cloud_metadata")),
            ("100.100.100.200", Some("cloud_metadata")),
            ("0.0.0.0", Some("unspecified")),
            ("::", Some("unspecified")),
            ("224.0.0.1", Some("multicast")),
            ("ff02::1", Some("multicast")),
            ("255.255.255.255", Some("broadcast")),
        ],
    );
    check_ip(&["169.254.169.254/32"], &[("169.254.169.254", Some("cloud_metadata"))]);
}

#[test]
fn refused_entries() {
    let entries = [
        "",
        " api.example.com",
        "api.example.com ",
        "api .example.com",
        "*",
        "https://*",
        "*:443",
        "**",
        "**.example.com",
        "*.*.example.com",
        "api.*.example.com",
        "api*.example.com",
        "*example.com",
        "example.*",
        "*.com",
        "*.localhost",
        "*.10.0.0.1",
        "*.",
        "ftp://files.example.com",
        "ws://api.example.com",
        "https:api.example.com",
        "https://api.example.com/v1",
        "api.example.com/v1",
        "api.example.com?key=1",
        "api.example.com#top",
        "user@api.example.com",
        "https://user:pass@api.example.com",
        "api.example.com:",
        "api.example.com:0",
        "api.example.com:65536",
        "api.example.com:+80",
        "api.example.com:http",
        "::1",
        "[::1",
        "[::1]x",
        "https://",
        ":8080",
        "exa<mple.com",
        "example.123",
        "http:\\\\example.com",
    ];
    let entries: Vec<String> = entries.iter().map(|entry| entry.to_string()).collect();
    let errors = AllowList::parse(&entries).expect_err("every entry is refused");
    assert_eq!(errors.len(), entries.len(), "{errors:#?}");
    let mut report = String::new();
    for error in &errors {
        writeln!(report, "{error}").unwrap();
    }
    insta::assert_snapshot!("refused_entries", report);
}

#[test]
fn accepted_entries() {
    let entries = [
        "api.example.com",
        "API.EXAMPLE.COM",
        "api.example.com.",
        "https://api.example.com/",
        "HTTPS://api.example.com",
        "http://api.example.com:8080",
        "api.example.com:8443",
        "*.example.com",
        "*.example.co.uk",
        "localhost",
        "internal-api.company.svc.cluster.local",
        "10.0.0.1",
        "10.0.0.1:8080",
        "[2001:db8::1]",
        "[2001:db8::1]:8443",
        "https://[2001:db8::1]:8443/",
        "bücher.example",
        "under_score.example.com",
    ];
    let entries: Vec<String> = entries.iter().map(|entry| entry.to_string()).collect();
    assert!(AllowList::parse(&entries).is_ok());
}

#[test]
fn parse_reports_every_error_with_its_index() {
    let entries: Vec<String> = ["ok.example.com", "*", "also-ok.example.com", "*.com"].map(String::from).to_vec();
    let errors = AllowList::parse(&entries).unwrap_err();
    let indexes: Vec<usize> = errors.iter().map(|error| error.index).collect();
    assert_eq!(indexes, [1, 3]);
}

#[test]
fn denial_messages() {
    let mut report = String::new();
    let mut record = |denied: Denied| writeln!(report, "{:<26} {denied}", denied.code()).unwrap();
    let entries = ["api.example.com", "https://secure.example.com"];
    for url in [
        "https://api.evil.com/path?token=secret",
        "https://api.evil.com:8443/",
        "http://secure.example.com/",
        "https://api.example.com:9000/",
        "ftp://api.example.com/",
        "file:///etc/passwd",
        "http://allowed.com@evil.com/",
        "http://evil.com\\@allowed.com/",
        "not a url",
    ] {
        record(allow_list(&entries).check_url(url).unwrap_err());
    }
    record(AllowList::empty().check_url("https://api.example.com/").unwrap_err());
    let policy = AddressPolicy::default();
    for address in ["169.254.169.254", "127.0.0.1", "::ffff:10.0.0.1", "0.0.0.0", "fd00::1"] {
        record(policy.check_ip(address.parse().unwrap()).unwrap_err());
    }
    for address in ["127.0.0.1", "::ffff:169.254.169.254"] {
        record(policy.check_ip(address.parse().unwrap()).unwrap_err().resolved_from("internal.example.com"));
    }
    insta::assert_snapshot!("denial_messages", report);
}

#[test]
fn denial_messages_never_contain_path_or_query() {
    let denied =
        allow_list(&["api.example.com"]).check_url("https://evil.com/secret-path?api_key=hunter2#frag").unwrap_err();
    let message = denied.to_string();
    assert!(!message.contains("secret-path") && !message.contains("hunter2"), "{message}");
}

#[test]
fn wildcards_over_public_suffixes_are_refused_with_the_suffix() {
    for (entry, suffix) in [("*.co.uk", "co.uk"), ("*.com.au", "com.au"), ("https://*.CO.JP", "co.jp")] {
        let errors = AllowList::parse(&[entry.to_owned()]).unwrap_err();
        assert_eq!(errors[0].problem, RuleProblem::WildcardOverPublicSuffix { suffix: suffix.to_owned() }, "{entry}");
        let message = errors[0].to_string();
        assert!(message.contains(&format!("\".{suffix}\"")) && message.contains("*.example."), "{message}");
    }
    // One level down is a registered domain: allowed.
    assert!(AllowList::parse(&["*.example.co.uk".to_owned(), "*.bbc.co.uk".to_owned()]).is_ok());
}

#[test]
fn wildcards_over_shared_hosting_are_reported() {
    let entries: Vec<String> =
        ["*.github.io", "https://*.vercel.app", "*.workers.dev", "*.example.com", "me.github.io"]
            .map(String::from)
            .to_vec();
    assert!(AllowList::parse(&entries).is_ok(), "allowed here; the policies make them an ask");
    let shared = AllowList::shared_hosting(&entries);
    let suffixes: Vec<&str> = shared.iter().map(|(_, suffix)| suffix.as_str()).collect();
    assert_eq!(suffixes, ["github.io", "vercel.app", "workers.dev"]);
    assert_eq!(shared[1].0, "https://*.vercel.app");
}
