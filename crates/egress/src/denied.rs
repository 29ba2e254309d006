//! The refusal of an outbound request, worded for the app developer who has to fix it.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use crate::address::AddressClass;
use crate::rules::Scheme;

/// An outbound request that egress policy refuses. Its message names the host (never the path,
/// query, headers or body, which may carry secrets) and says what would allow it, if anything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denied {
    /// The host as the URL spells it after canonicalisation (`[::1]`, `127.0.0.1`, `api.example.com`),
    /// or `None` when the URL has no usable host.
    pub host: Option<String>,
    pub reason: DenyReason,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DenyReason {
    /// The URL does not parse.
    InvalidUrl { problem: String },
    /// A scheme other than `http` and `https`.
    Scheme { scheme: String },
    /// A user name or password in the URL (`http://user@host/`).
    Userinfo,
    /// The app has no `spec.allowedEgress` entries at all.
    NoEgressAllowed { suggestion: String },
    /// No entry matches the host.
    NotAllowed { suggestion: String },
    /// An entry matches the host, but not with this scheme or port.
    PortOrSchemeNotAllowed { scheme: Scheme, port: u16, suggestion: String },
    /// The address (in the URL, or one the host resolves to) is internal.
    Address {
        address: IpAddr,
        /// The IPv4 address embedded in an IPv6 one (`::ffff:127.0.0.1`), when that is what was blocked.
        embedded: Option<Ipv4Addr>,
        class: AddressClass,
        /// Whether `address` came from resolving the host rather than from the URL.
        resolved: bool,
    },
}

impl Denied {
    /// The same denial for an address that `host` resolved to.
    pub fn resolved_from(self, host: &str) -> Denied {
        let reason = match self.reason {
            DenyReason::Address { address, embedded, class, .. } => {
                DenyReason::Address { address, embedded, class, resolved: true }
            }
            other => other,
        };
        Denied { host: Some(host.to_owned()), reason }
    }

    /// A bounded code for logs and metrics.
    pub fn code(&self) -> &'static str {
        match self.reason {
            DenyReason::InvalidUrl { .. } => "invalid_url",
            DenyReason::Scheme { .. } => "scheme",
            DenyReason::Userinfo => "userinfo",
            DenyReason::NoEgressAllowed { .. } | DenyReason::NotAllowed { .. } => "host_not_allowed",
            DenyReason::PortOrSchemeNotAllowed { .. } => "port_or_scheme_not_allowed",
            DenyReason::Address { .. } => "blocked_address",
        }
    }
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            Some(host) => write!(f, "fetch to {host:?} denied: {}", self.reason),
            None => write!(f, "fetch denied: {}", self.reason),
        }
    }
}

impl std::error::Error for Denied {}

impl fmt::Display for DenyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DenyReason::InvalidUrl { problem } => write!(f, "the URL is not valid ({problem})"),
            DenyReason::Scheme { scheme } => {
                write!(f, "only http and https URLs may be fetched, not {scheme}")
            }
            DenyReason::Userinfo => f.write_str(
                "URLs with a user name or password (user@host) are refused; send credentials in a header instead",
            ),
            DenyReason::NoEgressAllowed { suggestion } => write!(
                f,
                "this app has no spec.allowedEgress, so it may not make outbound requests; \
                 add {suggestion:?} to allowedEgress in terrarium.yaml"
            ),
            DenyReason::NotAllowed { suggestion } => {
                write!(f, "host not in spec.allowedEgress; add {suggestion:?} to allowedEgress in terrarium.yaml")
            }
            DenyReason::PortOrSchemeNotAllowed { scheme, port, suggestion } => write!(
                f,
                "the host is in spec.allowedEgress, but not for {scheme} on port {port}; \
                 add {suggestion:?} to allowedEgress in terrarium.yaml"
            ),
            DenyReason::Address { address, embedded, class, resolved } => {
                match (resolved, embedded) {
                    (false, None) => write!(f, "the address is {}", class.description())?,
                    (false, Some(embedded)) => write!(f, "the address embeds {embedded}, {}", class.description())?,
                    (true, None) => write!(f, "it resolves to {address}, {}", class.description())?,
                    (true, Some(embedded)) => {
                        write!(f, "it resolves to {address}, which embeds {embedded}, {}", class.description())?
                    }
                }
                match class.is_never_allowed() {
                    true => f.write_str(", which apps may never reach"),
                    false => f.write_str(
                        ", which apps may not reach unless the platform operator allows that range in terrarium.toml",
                    ),
                }
            }
        }
    }
}
