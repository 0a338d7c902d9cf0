//! Which addresses the validation authority may connect to.
//!
//! An ACME server connects wherever a client's DNS (or an HTTP redirect) points it. Left
//! unchecked, that lets any account make the authority fetch from its own network: the
//! cloud metadata service at 169.254.169.254, an admin interface on loopback, a database
//! on a private range. RFC 8555 §10.2 asks the server to guard against this; Let's
//! Encrypt refuses the special-purpose ranges of RFC 6890 and its successors, and so does
//! the default [`AddressPolicy`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::Error;

/// An address range in CIDR notation (`10.0.0.0/8`, `fe80::/10`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `address/prefix` or a bare address (a range of one). Host bits below the
    /// prefix are cleared (`10.1.2.3/8` is `10.0.0.0/8`). An IPv4-mapped IPv6 range
    /// (`::ffff:10.0.0.0/104`) becomes the IPv4 range it maps, as addresses do in
    /// [`AddressPolicy::permits`].
    pub fn parse(text: &str) -> Result<Self, Error> {
        let bad = |reason: &str| Error::BadCidr { entry: text.to_owned(), reason: reason.into() };
        let trimmed = text.trim();
        let (address, prefix) = match trimmed.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (trimmed, None),
        };
        let address: IpAddr = address.parse().map_err(|_| bad("not an IP address"))?;
        let max = max_prefix(address);
        let prefix = match prefix {
            None => max,
            Some(p) => {
                let p: u8 = p.parse().map_err(|_| bad("the prefix length is not a number"))?;
                if p > max {
                    return Err(bad(if max == 32 {
                        "an IPv4 prefix is at most 32 bits"
                    } else {
                        "an IPv6 prefix is at most 128 bits"
                    }));
                }
                p
            }
        };
        Ok(Self::new(address, prefix))
    }

    /// The range of `address` with `prefix` leading bits (clamped to the address's
    /// length), host bits cleared.
    fn new(address: IpAddr, prefix: u8) -> Self {
        let prefix = prefix.min(max_prefix(address));
        if let IpAddr::V6(v6) = address
            && let Some(v4) = v6.to_ipv4_mapped()
            && prefix >= 96
        {
            return Self::new(IpAddr::V4(v4), prefix - 96);
        }
        let network = match address {
            IpAddr::V4(v4) => IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask32(prefix))),
            IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask128(prefix))),
        };
        Self { network, prefix }
    }

    const fn v4(a: u8, b: u8, c: u8, d: u8, prefix: u8) -> Self {
        Self { network: IpAddr::V4(Ipv4Addr::new(a, b, c, d)), prefix }
    }

    const fn v6(segments: [u16; 8], prefix: u8) -> Self {
        let [a, b, c, d, e, f, g, h] = segments;
        Self { network: IpAddr::V6(Ipv6Addr::new(a, b, c, d, e, f, g, h)), prefix }
    }

    /// Whether `ip` (taken as it is, not canonicalized) is in the range.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                u32::from(ip) & mask32(self.prefix) == u32::from(net)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                u128::from(ip) & mask128(self.prefix) == u128::from(net)
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

fn max_prefix(ip: IpAddr) -> u8 {
    if ip.is_ipv4() { 32 } else { 128 }
}

fn mask32(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix.min(32))).unwrap_or(0)
}

fn mask128(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix.min(128))).unwrap_or(0)
}

/// The ranges refused by default, with the reason a failure's detail gives.
const DEFAULT_DENIED: &[(Cidr, &str)] = &[
    (Cidr::v4(0, 0, 0, 0, 8), "\"this network\" (RFC 791), unspecified among it"),
    (Cidr::v4(10, 0, 0, 0, 8), "private (RFC 1918)"),
    (Cidr::v4(100, 64, 0, 0, 10), "shared address space, carrier-grade NAT (RFC 6598)"),
    (Cidr::v4(127, 0, 0, 0, 8), "loopback (RFC 1122)"),
    (Cidr::v4(169, 254, 0, 0, 16), "link-local, cloud metadata among it (RFC 3927)"),
    (Cidr::v4(172, 16, 0, 0, 12), "private (RFC 1918)"),
    (Cidr::v4(192, 0, 0, 0, 24), "IETF protocol assignments (RFC 6890)"),
    (Cidr::v4(192, 0, 2, 0, 24), "documentation (RFC 5737)"),
    (Cidr::v4(192, 168, 0, 0, 16), "private (RFC 1918)"),
    (Cidr::v4(198, 18, 0, 0, 15), "benchmarking (RFC 2544)"),
    (Cidr::v4(198, 51, 100, 0, 24), "documentation (RFC 5737)"),
    (Cidr::v4(203, 0, 113, 0, 24), "documentation (RFC 5737)"),
    (Cidr::v4(224, 0, 0, 0, 4), "multicast (RFC 5771)"),
    (
        Cidr::v4(240, 0, 0, 0, 4),
        "reserved, the limited broadcast address among it (RFC 1112, RFC 919)",
    ),
    (Cidr::v6([0, 0, 0, 0, 0, 0, 0, 0], 128), "unspecified (RFC 4291)"),
    (Cidr::v6([0, 0, 0, 0, 0, 0, 0, 1], 128), "loopback (RFC 4291)"),
    (Cidr::v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64), "discard-only (RFC 6666)"),
    (
        Cidr::v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 23),
        "IETF protocol assignments, Teredo among them (RFC 6890)",
    ),
    (Cidr::v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32), "documentation (RFC 3849)"),
    (Cidr::v6([0x2002, 0, 0, 0, 0, 0, 0, 0], 16), "6to4, deprecated (RFC 7526)"),
    (Cidr::v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20), "documentation (RFC 9637)"),
    (Cidr::v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7), "unique local (RFC 4193)"),
    (Cidr::v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10), "link-local (RFC 4291)"),
    (Cidr::v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10), "site-local, deprecated (RFC 3879)"),
    (Cidr::v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8), "multicast (RFC 4291)"),
];

/// The well-known NAT64 prefix (RFC 6052 §2.1): its addresses reach the IPv4 address in
/// their last 32 bits.
const NAT64: Cidr = Cidr::v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96);

/// The addresses the validation authority may connect to (RFC 8555 §10.2).
///
/// An address is judged in this order:
///
/// 1. An IPv4-mapped IPv6 address (`::ffff:10.0.0.1`) is judged as the IPv4 address it
///    maps (the kernel connects to that), and so are the `allow`/`deny` entries written
///    in that form.
/// 2. An explicit `deny` entry that contains it refuses it — even when an `allow` entry
///    contains it too: deny wins, so an operator can carve a hole back out of an allowed
///    range (`allow 10.0.0.0/8`, `deny 10.0.0.5`).
/// 3. An explicit `allow` entry that contains it permits it, overriding the defaults
///    (tests allow `127.0.0.0/8` and `::1/128` to validate against loopback servers).
/// 4. The default denials refuse it: "this network" and unspecified, loopback, the RFC 1918
///    private ranges, carrier-grade NAT `100.64.0.0/10`, link-local (`169.254.0.0/16` with
///    the cloud metadata services, `fe80::/10`), unique local `fc00::/7`, multicast,
///    `240.0.0.0/4` with the broadcast address, the documentation and benchmarking ranges,
///    IETF protocol assignments, 6to4, discard-only, site-local; a NAT64 address
///    (`64:ff9b::/96`) whose embedded IPv4 address is one of those.
/// 5. Anything else is permitted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressPolicy {
    allow: Vec<Cidr>,
    deny: Vec<Cidr>,
}

impl AddressPolicy {
    /// The policy with `allow` and `deny` entries in CIDR notation (a bare address is a
    /// range of one). Empty lists give the defaults.
    pub fn parse(allow: &[String], deny: &[String]) -> Result<Self, Error> {
        Ok(Self {
            allow: allow.iter().map(|e| Cidr::parse(e)).collect::<Result<_, _>>()?,
            deny: deny.iter().map(|e| Cidr::parse(e)).collect::<Result<_, _>>()?,
        })
    }

    /// Whether the authority may connect to `ip`.
    pub fn permits(&self, ip: IpAddr) -> bool {
        self.refusal(ip).is_none()
    }

    /// Why `ip` is refused, or `None` when it is permitted.
    pub(crate) fn refusal(&self, ip: IpAddr) -> Option<String> {
        let ip = canonical(ip);
        if let Some(entry) = self.deny.iter().find(|c| c.contains(ip)) {
            return Some(format!("{ip} is in the denied range {entry}"));
        }
        if self.allow.iter().any(|c| c.contains(ip)) {
            return None;
        }
        default_refusal(ip).map(|why| format!("{ip} is {why}"))
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it maps; any other as it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

fn default_refusal(ip: IpAddr) -> Option<&'static str> {
    if let Some((_, why)) = DEFAULT_DENIED.iter().find(|(c, _)| c.contains(ip)) {
        return Some(why);
    }
    if let IpAddr::V6(v6) = ip
        && NAT64.contains(ip)
    {
        let [.., a, b, c, d] = v6.octets();
        if default_refusal(IpAddr::V4(Ipv4Addr::new(a, b, c, d))).is_some() {
            return Some("NAT64 (RFC 6052) for an address refused by default");
        }
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cidrs_parse_and_clear_host_bits() {
        assert_eq!(Cidr::parse("10.1.2.3/8").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(Cidr::parse("::1").unwrap().to_string(), "::1/128");
        assert_eq!(Cidr::parse(" 192.0.2.7 ").unwrap().to_string(), "192.0.2.7/32");
        assert_eq!(Cidr::parse("::ffff:10.0.0.0/104").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(Cidr::parse("0.0.0.0/0").unwrap().to_string(), "0.0.0.0/0");
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        assert!(!Cidr::parse("0.0.0.0/0").unwrap().contains(ip("::1")));
        for bad in ["10.0.0.0/33", "::/129", "10.0.0/8", "x", "10.0.0.0/", "10.0.0.0/-1", ""] {
            let err = Cidr::parse(bad).unwrap_err();
            assert!(matches!(&err, Error::BadCidr { entry, .. } if entry == bad), "{bad}: {err}");
        }
    }

    #[test]
    fn the_defaults_refuse_special_purpose_addresses() {
        let policy = AddressPolicy::default();
        for denied in [
            "127.0.0.1",
            "10.1.2.3",
            "172.31.255.255",
            "192.168.0.1",
            "100.64.0.1",
            "169.254.169.254",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "192.0.2.1",
            "198.51.100.1",
            "203.0.113.9",
            "::",
            "::1",
            "fd00::1",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:10.0.0.1",
            "::ffff:127.0.0.1",
            "64:ff9b::a9fe:a9fe",
        ] {
            assert!(!policy.permits(ip(denied)), "{denied} permitted");
        }
        for permitted in ["93.184.216.34", "8.8.8.8", "2606:2800:220:1::1", "::ffff:93.184.216.34"]
        {
            assert!(policy.permits(ip(permitted)), "{permitted} refused");
        }
        let why = policy.refusal(ip("::ffff:10.0.0.1")).unwrap();
        assert!(why.contains("10.0.0.1") && why.contains("RFC 1918"), "{why}");
    }

    #[test]
    fn allow_overrides_the_defaults_and_deny_wins_over_allow() {
        let allow = ["127.0.0.0/8".to_owned(), "::1".to_owned(), "10.0.0.0/8".to_owned()];
        let deny = ["10.0.0.5".to_owned(), "93.184.216.0/24".to_owned()];
        let policy = AddressPolicy::parse(&allow, &deny).unwrap();
        assert!(policy.permits(ip("127.0.0.1")));
        assert!(policy.permits(ip("::ffff:127.0.0.2")));
        assert!(policy.permits(ip("::1")));
        assert!(policy.permits(ip("10.9.9.9")));
        assert!(!policy.permits(ip("10.0.0.5")));
        assert!(!policy.permits(ip("::ffff:10.0.0.5")));
        assert!(!policy.permits(ip("93.184.216.34")));
        assert!(!policy.permits(ip("169.254.169.254")));
        let why = policy.refusal(ip("10.0.0.5")).unwrap();
        assert_eq!(why, "10.0.0.5 is in the denied range 10.0.0.5/32");
        assert!(AddressPolicy::parse(&["nope".to_owned()], &[]).is_err());
    }
}
