//! Parsing `spec.allowedEgress` entries into an allow list, and matching URLs against it.

use std::fmt;
use std::net::IpAddr;

use url::{Host, Url};

use crate::denied::{Denied, DenyReason};

/// The two schemes apps may fetch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    /// Parses a lowercase scheme name; anything but `http` and `https` is `None`.
    pub fn parse(scheme: &str) -> Option<Scheme> {
        match scheme {
            "http" => Some(Scheme::Http),
            "https" => Some(Scheme::Https),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The hosts, schemes and ports one deployment may call, parsed from its `spec.allowedEgress`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllowList {
    rules: Vec<Rule>,
}

/// One parsed `allowedEgress` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Rule {
    /// `None` allows both `http` and `https`.
    scheme: Option<Scheme>,
    host: HostPattern,
    /// `None` allows the default port of the request's scheme (80 for `http`, 443 for `https`).
    port: Option<u16>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum HostPattern {
    /// Exactly this host: a lowercase ASCII domain without a trailing dot, or an IP address.
    Exact(Host<String>),
    /// Every subdomain of this domain at any depth, but not the domain itself.
    Subdomains(String),
}

/// An `allowedEgress` entry that was refused, with its position in the list.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("spec.allowedEgress[{index}] {entry:?}: {problem}")]
pub struct RuleError {
    pub index: usize,
    pub entry: String,
    pub problem: RuleProblem,
}

/// Why an `allowedEgress` entry was refused. Every message says what to write instead.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RuleProblem {
    #[error("the entry is empty; write a host such as \"api.example.com\"")]
    Empty,
    #[error("the entry contains spaces or control characters; write only the host, such as \"api.example.com\"")]
    Whitespace,
    #[error(
        "\"*\" would allow every host on the internet; list the hosts the app calls, such as \"api.example.com\" or \"*.example.com\""
    )]
    MatchAll,
    #[error("\"**\" is not supported; \"*.example.com\" already matches subdomains at any depth")]
    DoubleStar,
    #[error("\"*\" may only be the whole first label, as in \"*.example.com\"")]
    WildcardPosition,
    #[error(
        "\"*.{suffix}\" would allow every host under \".{suffix}\"; name the domain, such as \"*.example.{suffix}\""
    )]
    WildcardTooBroad { suffix: String },
    #[error(
        "\"*.{suffix}\" would allow every site registered under the public suffix \".{suffix}\"; name the domain, such as \"*.example.{suffix}\""
    )]
    WildcardOverPublicSuffix { suffix: String },
    #[error("a wildcard only applies to domain names, not IP addresses; list each address")]
    WildcardOnAddress,
    #[error("only http and https are supported, not {scheme:?}; write \"https://{rest}\" or just the host")]
    UnsupportedScheme { scheme: String, rest: String },
    #[error("backslashes are not allowed; write the host alone, such as \"api.example.com\"")]
    Backslash,
    #[error("the scheme needs \"://\"; write \"{scheme}://{rest}\"")]
    MissingSlashes { scheme: String, rest: String },
    #[error(
        "paths, queries and fragments are not supported, allowedEgress lists hosts; write \"{host}\" to allow the whole host"
    )]
    Path { host: String },
    #[error(
        "user names and passwords are not allowed in allowedEgress; write only the host and send credentials in a header"
    )]
    Userinfo,
    #[error("the port must be a number from 1 to 65535, as in \"api.example.com:8443\"")]
    InvalidPort,
    #[error("IPv6 addresses need brackets, as in \"[2001:db8::1]\" or \"[2001:db8::1]:8443\"")]
    UnbracketedIpv6,
    #[error("the host is missing; write a host such as \"api.example.com\"")]
    MissingHost,
    #[error("{host:?} is not a valid host name or IP address ({reason})")]
    InvalidHost { host: String, reason: String },
}

impl AllowList {
    /// Parses every entry and reports every refused one, not only the first.
    pub fn parse(entries: &[String]) -> Result<AllowList, Vec<RuleError>> {
        let mut rules = Vec::with_capacity(entries.len());
        let mut errors = Vec::new();
        for (index, entry) in entries.iter().enumerate() {
            match parse_entry(entry) {
                Ok(rule) => rules.push(rule),
                Err(problem) => errors.push(RuleError { index, entry: entry.clone(), problem }),
            }
        }
        match errors.is_empty() {
            true => Ok(AllowList { rules }),
            false => Err(errors),
        }
    }

    /// The wildcard entries over a shared-hosting suffix (the Public Suffix List's private
    /// section: `*.github.io`, `*.vercel.app`): anyone can publish a site there, so such an
    /// entry lets the app send data to anyone. Each with its suffix.
    pub fn shared_hosting(entries: &[String]) -> Vec<(String, String)> {
        entries
            .iter()
            .filter_map(|entry| match parse_entry(entry).ok()?.host {
                HostPattern::Subdomains(domain) if suffix_type(&domain) == Some(psl::Type::Private) => {
                    Some((entry.clone(), domain))
                }
                _ => None,
            })
            .collect()
    }

    /// An allow list that allows nothing (an app without `spec.allowedEgress`).
    pub fn empty() -> AllowList {
        AllowList { rules: Vec::new() }
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Parses `url` with [`parse_url`] and checks it against the list with [`AllowList::check`].
    pub fn check_url(&self, url: &str) -> Result<Url, Denied> {
        let url = parse_url(url)?;
        self.check(&url)?;
        Ok(url)
    }

    /// Checks an already parsed URL: scheme, no user name or password, and a matching entry.
    pub fn check(&self, url: &Url) -> Result<(), Denied> {
        let checked = checked_parts(url)?;
        let host = normalise_host(checked.host);
        let host_text = url.host_str().unwrap_or_default().to_owned();
        let deny = |reason| Err(Denied { host: Some(host_text.clone()), reason });

        if self.rules.iter().any(|rule| rule.matches(checked.scheme, &host, checked.port)) {
            return Ok(());
        }
        let suggestion = match checked.port == checked.scheme.default_port() {
            true => host_text.clone(),
            false => format!("{host_text}:{}", checked.port),
        };
        if self.rules.is_empty() {
            return deny(DenyReason::NoEgressAllowed { suggestion });
        }
        if self.rules.iter().any(|rule| rule.host.matches(&host)) {
            let suggestion = format!("{}://{suggestion}", checked.scheme);
            return deny(DenyReason::PortOrSchemeNotAllowed { scheme: checked.scheme, port: checked.port, suggestion });
        }
        deny(DenyReason::NotAllowed { suggestion })
    }
}

impl Rule {
    fn matches(&self, scheme: Scheme, host: &Host<String>, port: u16) -> bool {
        let scheme_matches = self.scheme.is_none_or(|rule_scheme| rule_scheme == scheme);
        let port_matches = match self.port {
            Some(rule_port) => rule_port == port,
            None => port == scheme.default_port(),
        };
        scheme_matches && port_matches && self.host.matches(host)
    }
}

impl HostPattern {
    fn matches(&self, host: &Host<String>) -> bool {
        match (self, host) {
            (HostPattern::Exact(rule_host), host) => rule_host == host,
            (HostPattern::Subdomains(domain), Host::Domain(host)) => host
                .strip_suffix(domain.as_str())
                .and_then(|prefix| prefix.strip_suffix('.'))
                .is_some_and(|subdomain| !subdomain.is_empty()),
            (HostPattern::Subdomains(_), _) => false,
        }
    }
}

/// Parses a URL an app wants to fetch, as a browser would, and refuses anything but plain
/// `http`/`https` URLs without a user name or password.
pub fn parse_url(url: &str) -> Result<Url, Denied> {
    let url = Url::parse(url)
        .map_err(|error| Denied { host: None, reason: DenyReason::InvalidUrl { problem: error.to_string() } })?;
    checked_parts(&url)?;
    Ok(url)
}

/// The IP address of a URL whose host is an IP literal (after canonicalisation), if it is one.
pub fn ip_literal(url: &Url) -> Option<IpAddr> {
    match url.host()? {
        Host::Ipv4(address) => Some(IpAddr::V4(address)),
        Host::Ipv6(address) => Some(IpAddr::V6(address)),
        Host::Domain(_) => None,
    }
}

struct CheckedParts {
    scheme: Scheme,
    host: Host<String>,
    port: u16,
}

fn checked_parts(url: &Url) -> Result<CheckedParts, Denied> {
    let host_text = url.host_str().filter(|host| !host.is_empty()).map(str::to_owned);
    let deny = |reason| Err(Denied { host: host_text.clone(), reason });
    let Some(scheme) = Scheme::parse(url.scheme()) else {
        return deny(DenyReason::Scheme { scheme: url.scheme().to_owned() });
    };
    if !url.username().is_empty() || url.password().is_some() {
        return deny(DenyReason::Userinfo);
    }
    let Some(host) = url.host() else {
        return deny(DenyReason::InvalidUrl { problem: "the URL has no host".to_owned() });
    };
    let port = url.port_or_known_default().unwrap_or(scheme.default_port());
    Ok(CheckedParts { scheme, host: host.to_owned(), port })
}

/// Drops one trailing dot of a domain: `example.com.` and `example.com` are the same DNS name.
fn normalise_host(host: Host<String>) -> Host<String> {
    match host {
        Host::Domain(domain) => match domain.strip_suffix('.') {
            Some(stripped) => Host::Domain(stripped.to_owned()),
            None => Host::Domain(domain),
        },
        other => other,
    }
}

fn parse_entry(entry: &str) -> Result<Rule, RuleProblem> {
    if entry.is_empty() {
        return Err(RuleProblem::Empty);
    }
    if entry.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(RuleProblem::Whitespace);
    }
    if entry.contains('\\') {
        return Err(RuleProblem::Backslash);
    }

    let (scheme, rest) = match entry.split_once("://") {
        Some((scheme, rest)) => {
            let scheme = scheme.to_ascii_lowercase();
            match Scheme::parse(&scheme) {
                Some(scheme) => (Some(scheme), rest),
                None => {
                    return Err(RuleProblem::UnsupportedScheme {
                        scheme,
                        rest: rest.split(['/', '?', '#']).next().unwrap_or_default().to_owned(),
                    });
                }
            }
        }
        None => (None, entry),
    };

    // A single trailing slash is harmless (`https://api.example.com/`); anything after it is a path.
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if let Some(end) = rest.find(['/', '?', '#']) {
        let host = match scheme {
            Some(scheme) => format!("{scheme}://{}", &rest[..end]),
            None => rest[..end].to_owned(),
        };
        return Err(RuleProblem::Path { host });
    }
    if rest.contains('@') {
        return Err(RuleProblem::Userinfo);
    }

    let (host, port) = split_host_port(rest, scheme.is_none())?;
    if host.is_empty() {
        return Err(RuleProblem::MissingHost);
    }
    let host = parse_host_pattern(host)?;
    Ok(Rule { scheme, host, port })
}

/// Splits `host`, `host:port`, `[v6]` and `[v6]:port`.
fn split_host_port(authority: &str, may_be_missing_slashes: bool) -> Result<(&str, Option<u16>), RuleProblem> {
    let (host, port) = match authority.strip_prefix('[') {
        Some(bracketed) => {
            let Some(close) = bracketed.find(']') else {
                return Err(RuleProblem::InvalidHost {
                    host: authority.to_owned(),
                    reason: "missing \"]\"".to_owned(),
                });
            };
            let after = &bracketed[close + 1..];
            let port = match after {
                "" => None,
                _ => Some(after.strip_prefix(':').ok_or(RuleProblem::InvalidPort)?),
            };
            (&authority[..close + 2], port)
        }
        None => match authority.rsplit_once(':') {
            Some((host, _)) if host.contains(':') => return Err(RuleProblem::UnbracketedIpv6),
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    let Some(port) = port else {
        return Ok((host, None));
    };
    // `https:api.example.com` is a scheme without `//`, not a host with a port.
    let lowercase_host = host.to_ascii_lowercase();
    if may_be_missing_slashes && Scheme::parse(&lowercase_host).is_some() && port.parse::<u16>().is_err() {
        return Err(RuleProblem::MissingSlashes { scheme: lowercase_host, rest: port.to_owned() });
    }
    // `u16::from_str` accepts a leading `+`, so check for digits first.
    if port.is_empty() || !port.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(RuleProblem::InvalidPort);
    }
    match port.parse::<u16>() {
        Ok(port) if port != 0 => Ok((host, Some(port))),
        _ => Err(RuleProblem::InvalidPort),
    }
}

fn parse_host_pattern(host: &str) -> Result<HostPattern, RuleProblem> {
    if host == "*" {
        return Err(RuleProblem::MatchAll);
    }
    if host.contains("**") {
        return Err(RuleProblem::DoubleStar);
    }
    let (is_wildcard, domain) = match host.strip_prefix("*.") {
        Some(domain) => (true, domain),
        None => (false, host),
    };
    if domain.contains('*') {
        return Err(RuleProblem::WildcardPosition);
    }
    if domain.is_empty() {
        return Err(RuleProblem::MissingHost);
    }
    let parsed = Host::parse(domain)
        .map_err(|error| RuleProblem::InvalidHost { host: host.to_owned(), reason: error.to_string() })?;
    let parsed = normalise_host(parsed);
    if !is_wildcard {
        return Ok(HostPattern::Exact(parsed));
    }
    match parsed {
        Host::Domain(domain) if suffix_type(&domain) == Some(psl::Type::Icann) => {
            Err(RuleProblem::WildcardOverPublicSuffix { suffix: domain })
        }
        Host::Domain(domain) if domain.contains('.') => Ok(HostPattern::Subdomains(domain)),
        Host::Domain(domain) => Err(RuleProblem::WildcardTooBroad { suffix: domain }),
        Host::Ipv4(_) | Host::Ipv6(_) => Err(RuleProblem::WildcardOnAddress),
    }
}

/// Whether `domain` is itself a public suffix of the bundled Public Suffix List, and of which
/// section: ICANN's (`co.uk`, `com`) or the private one (`github.io`, shared hosting).
fn suffix_type(domain: &str) -> Option<psl::Type> {
    let suffix = psl::suffix(domain.as_bytes())?;
    match suffix.as_bytes() == domain.as_bytes() {
        true => suffix.typ(),
        false => None,
    }
}
