//! Egress rules for apps' outbound HTTP: which hosts an app may call, and which addresses nobody may reach.
//!
//! This crate is pure: it parses and matches, and the outbound HTTP capability enforces. An outbound
//! request passes three checks, in this order:
//!
//! 1. [`parse_url`]: the URL is parsed the way browsers do (WHATWG), which canonicalises every
//!    spelling of an IPv4 address (`2130706433`, `0x7f000001`, `0177.0.0.1`, `127.1`) and treats
//!    `\` like `/`. Only `http` and `https` are accepted, and never a user name or password.
//! 2. [`AllowList::check`]: the host, scheme and port must match one of the app's
//!    `spec.allowedEgress` entries, parsed once per deployment with [`AllowList::parse`].
//! 3. [`AddressPolicy::check_ip`]: every address the host resolves to (or the address in the URL
//!    itself) must not be loopback, private, link-local, cloud metadata or otherwise internal,
//!    unless the operator allows that range.
//!
//! # `allowedEgress` entries
//!
//! | entry | allows |
//! |---|---|
//! | `api.example.com` | `http` on port 80 and `https` on port 443 |
//! | `https://api.example.com` | only `https`, on port 443 |
//! | `api.example.com:8443` | `http` and `https`, only on port 8443 |
//! | `https://api.example.com:8443` | only `https`, only on port 8443 |
//! | `*.example.com` | every subdomain at any depth (`a.example.com`, `a.b.example.com`), not `example.com` itself |
//! | `10.1.2.3`, `[2001:db8::1]` | that address exactly (the address policy still applies) |
//!
//! Hosts are compared after IDNA normalisation and lowercasing, and a trailing dot is ignored.
//! Entries that would allow far more than intended (`*`, `*.com`, `**.example.com`,
//! `api.*.example.com`) or that suggest a restriction that is not enforced (paths, queries,
//! user names) are refused with a message that says what to write instead. A wildcard over a
//! public suffix of the Public Suffix List's ICANN section (`*.co.uk`, `*.com.au`) is refused
//! too; one over a shared-hosting suffix of its private section (`*.github.io`, `*.vercel.app`)
//! is accepted here and reported by [`AllowList::shared_hosting`], because anyone can publish
//! there: the platform's policies make it an ask a person approves. The list is the one the
//! `psl` crate compiles in (updated with each release of the crate).

mod address;
mod denied;
mod rules;

#[cfg(test)]
mod tests;

pub use address::{AddressClass, AddressPolicy, BlockedAddress, classify};
pub use denied::{Denied, DenyReason};
pub use rules::{AllowList, RuleError, RuleProblem, Scheme, ip_literal, parse_url};
