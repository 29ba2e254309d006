//! Which IP addresses apps may connect to: everything public, nothing internal unless the operator says so.
//!
//! The blocked ranges are written out here by hand because `std`'s `is_global` is still unstable
//! and no small, well-kept crate covers IPv4 embedded in IPv6 (mapped, NAT64, 6to4) the way an
//! egress check needs.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::LazyLock;

use ipnet::IpNet;

use crate::denied::{Denied, DenyReason};

/// The operator's exceptions to the blocked ranges, from `terrarium.toml`. Empty means no internal
/// address is reachable, which is the only safe default.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AddressPolicy {
    /// Internal ranges apps may reach (on-premises services, a local test upstream). These never
    /// unlock cloud metadata, unspecified, multicast or broadcast addresses.
    pub allowed_internal: Vec<IpNet>,
}

/// Why an address is blocked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AddressClass {
    /// Instance metadata services (`169.254.169.254`, `fd00:ec2::254`, `100.100.100.200`, ...).
    CloudMetadata,
    /// `0.0.0.0/8` and `::`: connecting to them reaches this machine.
    Unspecified,
    Loopback,
    /// RFC 1918: `10.0.0.0/8`, `172.16.0.0/12`, `192.168.0.0/16`.
    Private,
    /// RFC 6598: `100.64.0.0/10`.
    CarrierGradeNat,
    /// `169.254.0.0/16` and `fe80::/10`.
    LinkLocal,
    /// `fc00::/7`.
    UniqueLocal,
    /// `fec0::/10`, deprecated but still routed on some internal networks.
    SiteLocal,
    Multicast,
    Broadcast,
    /// Benchmarking ranges: `198.18.0.0/15` and `2001:2::/48`.
    Benchmarking,
    /// Documentation ranges: `192.0.2.0/24`, `198.51.100.0/24`, `203.0.113.0/24`, `2001:db8::/32`, `3fff::/20`.
    Documentation,
    /// Everything else that is not global unicast: `240.0.0.0/4`, IETF protocol assignments,
    /// Teredo, and IPv6 outside `2000::/3`.
    Reserved,
}

impl AddressClass {
    /// How the class reads in a message: "the address is {description}".
    pub fn description(self) -> &'static str {
        match self {
            AddressClass::CloudMetadata => "a cloud metadata address",
            AddressClass::Unspecified => "an unspecified address (it reaches the platform's own machine)",
            AddressClass::Loopback => "a loopback address (the platform's own machine)",
            AddressClass::Private => "a private network address (RFC 1918)",
            AddressClass::CarrierGradeNat => "a carrier-grade NAT address (100.64.0.0/10)",
            AddressClass::LinkLocal => "a link-local address",
            AddressClass::UniqueLocal => "a unique-local IPv6 address (fc00::/7)",
            AddressClass::SiteLocal => "a site-local IPv6 address (fec0::/10)",
            AddressClass::Multicast => "a multicast address",
            AddressClass::Broadcast => "the broadcast address",
            AddressClass::Benchmarking => "a benchmarking address",
            AddressClass::Documentation => "a documentation address",
            AddressClass::Reserved => "a reserved address that is not publicly routable",
        }
    }

    /// Classes that no operator range unlocks: there is no legitimate reason for an app to reach
    /// them, and a broad operator range (`0.0.0.0/0`, `169.254.0.0/16`) must not expose them by accident.
    pub fn is_never_allowed(self) -> bool {
        matches!(
            self,
            AddressClass::CloudMetadata | AddressClass::Unspecified | AddressClass::Multicast | AddressClass::Broadcast
        )
    }

    /// A bounded name for logs and metrics.
    pub fn code(self) -> &'static str {
        match self {
            AddressClass::CloudMetadata => "cloud_metadata",
            AddressClass::Unspecified => "unspecified",
            AddressClass::Loopback => "loopback",
            AddressClass::Private => "private",
            AddressClass::CarrierGradeNat => "carrier_grade_nat",
            AddressClass::LinkLocal => "link_local",
            AddressClass::UniqueLocal => "unique_local",
            AddressClass::SiteLocal => "site_local",
            AddressClass::Multicast => "multicast",
            AddressClass::Broadcast => "broadcast",
            AddressClass::Benchmarking => "benchmarking",
            AddressClass::Documentation => "documentation",
            AddressClass::Reserved => "reserved",
        }
    }
}

/// A blocked address and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockedAddress {
    pub class: AddressClass,
    /// The IPv4 address inside an IPv6 one that decided the class, if any.
    pub embedded: Option<Ipv4Addr>,
}

impl AddressPolicy {
    pub fn new(allowed_internal: Vec<IpNet>) -> AddressPolicy {
        AddressPolicy { allowed_internal }
    }

    /// Allows a public address, or an internal one inside an operator range (for an IPv6 address
    /// embedding an IPv4 one, a range containing either counts).
    pub fn check_ip(&self, address: IpAddr) -> Result<(), Denied> {
        let Some(blocked) = classify(address) else {
            return Ok(());
        };
        let in_operator_range = self.allowed_internal.iter().any(|range| {
            range.contains(&address) || blocked.embedded.is_some_and(|embedded| range.contains(&IpAddr::V4(embedded)))
        });
        if in_operator_range && !blocked.class.is_never_allowed() {
            return Ok(());
        }
        Err(Denied {
            host: Some(address.to_string()),
            reason: DenyReason::Address { address, embedded: blocked.embedded, class: blocked.class, resolved: false },
        })
    }
}

/// Classifies an address: `None` for a public unicast address, otherwise why it is blocked by default.
pub fn classify(address: IpAddr) -> Option<BlockedAddress> {
    match address {
        IpAddr::V4(address) => classify_v4(address).map(|class| BlockedAddress { class, embedded: None }),
        IpAddr::V6(address) => classify_v6(address),
    }
}

fn classify_v4(address: Ipv4Addr) -> Option<AddressClass> {
    let address = IpAddr::V4(address);
    BLOCKED_V4.iter().find(|(range, _)| range.contains(&address)).map(|(_, class)| *class)
}

fn classify_v6(address: Ipv6Addr) -> Option<BlockedAddress> {
    let not_embedded = |class| Some(BlockedAddress { class, embedded: None });
    if address.is_unspecified() {
        return not_embedded(AddressClass::Unspecified);
    }
    if address.is_loopback() {
        return not_embedded(AddressClass::Loopback);
    }
    if let Some(embedded) = embedded_ipv4(address) {
        return classify_v4(embedded).map(|class| BlockedAddress { class, embedded: Some(embedded) });
    }
    let full = IpAddr::V6(address);
    if let Some((_, class)) = BLOCKED_V6.iter().find(|(range, _)| range.contains(&full)) {
        return not_embedded(*class);
    }
    // Only 2000::/3 is allocated for global unicast; everything outside it is internal or unassigned.
    let global_unicast = address.segments()[0] & 0xe000 == 0x2000;
    match global_unicast {
        true => None,
        false => not_embedded(AddressClass::Reserved),
    }
}

/// The IPv4 address carried inside an IPv6 address that reaches it: IPv4-mapped (`::ffff:a.b.c.d`),
/// IPv4-compatible (`::a.b.c.d`), IPv4-translated (`::ffff:0:a.b.c.d`), NAT64 (`64:ff9b::/96`,
/// `64:ff9b:1::/48`) and 6to4 (`2002:aabb:ccdd::/48`).
fn embedded_ipv4(address: Ipv6Addr) -> Option<Ipv4Addr> {
    let segments = address.segments();
    let low_32 =
        Ipv4Addr::new((segments[6] >> 8) as u8, segments[6] as u8, (segments[7] >> 8) as u8, segments[7] as u8);
    let first_five_zero = segments[..5].iter().all(|segment| *segment == 0);
    match segments {
        // IPv4-mapped and IPv4-compatible (`::` and `::1` are handled before this is called).
        _ if first_five_zero && (segments[5] == 0xffff || segments[5] == 0) => Some(low_32),
        // IPv4-translated.
        [0, 0, 0, 0, 0xffff, 0, _, _] => Some(low_32),
        // NAT64 well-known prefix.
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(low_32),
        // NAT64 local-use prefix: the IPv4 address sits in the low 32 bits of its /96 subnets.
        [0x64, 0xff9b, 1, ..] => Some(low_32),
        // 6to4.
        [0x2002, high, low, ..] => Some(Ipv4Addr::new((high >> 8) as u8, high as u8, (low >> 8) as u8, low as u8)),
        _ => None,
    }
}

fn parse_ranges(ranges: &[(&str, AddressClass)]) -> Vec<(IpNet, AddressClass)> {
    ranges.iter().map(|(range, class)| (range.parse().expect("the built-in ranges are valid CIDR"), *class)).collect()
}

/// IPv4 ranges in match order: exact metadata addresses before the ranges that contain them.
static BLOCKED_V4: LazyLock<Vec<(IpNet, AddressClass)>> = LazyLock::new(|| {
    parse_ranges(&[
        // AWS, GCP, Azure, Oracle, DigitalOcean and OpenStack instance metadata.
        ("169.254.169.254/32", AddressClass::CloudMetadata),
        // AWS ECS task metadata and credentials.
        ("169.254.170.2/32", AddressClass::CloudMetadata),
        // Alibaba Cloud instance metadata.
        ("100.100.100.200/32", AddressClass::CloudMetadata),
        // Azure WireServer: a public address that only answers inside Azure, with host secrets.
        ("168.63.129.16/32", AddressClass::CloudMetadata),
        ("0.0.0.0/8", AddressClass::Unspecified),
        ("127.0.0.0/8", AddressClass::Loopback),
        ("10.0.0.0/8", AddressClass::Private),
        ("172.16.0.0/12", AddressClass::Private),
        ("192.168.0.0/16", AddressClass::Private),
        ("100.64.0.0/10", AddressClass::CarrierGradeNat),
        ("169.254.0.0/16", AddressClass::LinkLocal),
        // IETF protocol assignments.
        ("192.0.0.0/24", AddressClass::Reserved),
        ("192.0.2.0/24", AddressClass::Documentation),
        // Deprecated 6to4 relay anycast.
        ("192.88.99.0/24", AddressClass::Reserved),
        ("198.18.0.0/15", AddressClass::Benchmarking),
        ("198.51.100.0/24", AddressClass::Documentation),
        ("203.0.113.0/24", AddressClass::Documentation),
        ("224.0.0.0/4", AddressClass::Multicast),
        ("255.255.255.255/32", AddressClass::Broadcast),
        ("240.0.0.0/4", AddressClass::Reserved),
    ])
});

/// IPv6 ranges that do not embed IPv4, in match order; `::`, `::1` and embedded forms are handled in code.
static BLOCKED_V6: LazyLock<Vec<(IpNet, AddressClass)>> = LazyLock::new(|| {
    parse_ranges(&[
        // AWS instance metadata over IPv6.
        ("fd00:ec2::254/128", AddressClass::CloudMetadata),
        ("fc00::/7", AddressClass::UniqueLocal),
        ("fe80::/10", AddressClass::LinkLocal),
        ("fec0::/10", AddressClass::SiteLocal),
        ("ff00::/8", AddressClass::Multicast),
        // Discard-only.
        ("100::/64", AddressClass::Reserved),
        ("2001:db8::/32", AddressClass::Documentation),
        ("3fff::/20", AddressClass::Documentation),
        ("2001:2::/48", AddressClass::Benchmarking),
        // IETF protocol assignments, including Teredo (2001::/32), whose IPv4 is obfuscated.
        ("2001::/23", AddressClass::Reserved),
    ])
});
