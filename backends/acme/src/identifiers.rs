//! Order rules: which identifiers may be ordered and how they are written
//! ([`normalize_identifier`]), which challenges can prove each ([`challenge_types_for`]),
//! and whether a CSR asks for exactly the order's names ([`csr_matches_order`],
//! RFC 8555 §7.4).

use std::collections::BTreeSet;
use std::net::IpAddr;

use crate::error::{Error, Result};
use crate::messages::{ChallengeType, Identifier, IdentifierType};

/// The longest DNS name, without the trailing dot (RFC 1035 §2.3.4).
const MAX_DNS_NAME: usize = 253;
/// The longest DNS label (RFC 1035 §2.3.4).
const MAX_LABEL: usize = 63;
/// The longest permanent identifier accepted.
const MAX_PERMANENT_IDENTIFIER: usize = 255;

fn rejected(value: &str, reason: impl Into<String>) -> Error {
    Error::RejectedIdentifier { value: value.to_owned(), reason: reason.into() }
}

/// The identifier in its canonical form, or why it cannot be ordered
/// ([`Error::RejectedIdentifier`]):
///
/// * `dns`: ASCII only (internationalized names as A-labels, `xn--…`), lowercased, one
///   trailing dot removed; letter-digit-hyphen labels of 1 to 63 characters, not starting
///   or ending with a hyphen; at most 253 characters; at most one wildcard, as the whole
///   leftmost label (`*.example.com`), followed by at least two labels; not an IP address
///   (RFC 8738 §3: those are `ip` identifiers).
/// * `ip`: an IPv4 or IPv6 address, written as Rust writes it (RFC 5952's form for
///   IPv6); brackets, zones and prefixes are refused.
/// * `permanent-identifier`: 1 to 255 printable ASCII characters, no spaces.
pub fn normalize_identifier(identifier: &Identifier) -> Result<Identifier> {
    let value = identifier.value.as_str();
    let normalized = match identifier.identifier_type {
        IdentifierType::Dns => normalize_dns(value)?,
        IdentifierType::Ip => value
            .parse::<IpAddr>()
            .map_err(|_| rejected(value, "not an IPv4 or IPv6 address"))?
            .to_string(),
        IdentifierType::PermanentIdentifier => {
            if value.is_empty() || value.len() > MAX_PERMANENT_IDENTIFIER {
                return Err(rejected(value, "a permanent identifier has 1 to 255 characters"));
            }
            if !value.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(rejected(value, "a permanent identifier is printable ASCII"));
            }
            value.to_owned()
        }
    };
    Ok(Identifier { identifier_type: identifier.identifier_type, value: normalized })
}

fn normalize_dns(value: &str) -> Result<String> {
    if !value.is_ascii() {
        return Err(rejected(value, "not ASCII: internationalized names are ordered as A-labels"));
    }
    let lower = value.to_ascii_lowercase();
    let name = lower.strip_suffix('.').unwrap_or(&lower);
    if name.is_empty() {
        return Err(rejected(value, "empty name"));
    }
    if name.len() > MAX_DNS_NAME {
        return Err(rejected(value, "longer than 253 characters"));
    }
    if name.parse::<IpAddr>().is_ok() {
        return Err(rejected(value, "an IP address is an \"ip\" identifier, not \"dns\""));
    }
    let (wildcard, base) = match name.strip_prefix("*.") {
        Some(base) => (true, base),
        None => (false, name),
    };
    let labels: Vec<&str> = base.split('.').collect();
    if wildcard && labels.len() < 2 {
        return Err(rejected(value, "a wildcard must cover a name of at least two labels"));
    }
    for label in &labels {
        if label.is_empty() || label.len() > MAX_LABEL {
            return Err(rejected(value, "labels have 1 to 63 characters"));
        }
        if label.contains('*') {
            return Err(rejected(value, "a wildcard may only be the whole leftmost label"));
        }
        if !label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(rejected(
                value,
                format!("label {label:?} is not letters, digits and hyphens"),
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(rejected(value, format!("label {label:?} starts or ends with a hyphen")));
        }
    }
    if labels.last().is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit())) {
        return Err(rejected(value, "the last label is all digits"));
    }
    Ok(name.to_owned())
}

/// Whether `identifier` is a wildcard DNS name (`*.example.com`).
pub fn is_wildcard(identifier: &Identifier) -> bool {
    identifier.identifier_type == IdentifierType::Dns && identifier.value.starts_with("*.")
}

/// The identifier an authorization is for, and its `wildcard` flag (RFC 8555 §7.1.4): a
/// wildcard order's authorization names the base domain, without `*.`.
pub fn authorization_identifier(identifier: &Identifier) -> (Identifier, bool) {
    match identifier.value.strip_prefix("*.") {
        Some(base) if identifier.identifier_type == IdentifierType::Dns => {
            (Identifier::dns(base), true)
        }
        _ => (identifier.clone(), false),
    }
}

/// The challenges, of those `enabled` on the provisioner (in that order), that can prove
/// control of `identifier`: for a DNS name http-01, dns-01 and tls-alpn-01 — a wildcard
/// only dns-01 (RFC 8555 §7.1.3); for an IP address http-01 and tls-alpn-01 (RFC 8738
/// §7); for a permanent identifier only device-attest-01. Empty when none is enabled: the
/// order must be refused.
pub fn challenge_types_for(
    identifier: &Identifier,
    enabled: &[ChallengeType],
) -> Vec<ChallengeType> {
    let allowed: &[ChallengeType] = match identifier.identifier_type {
        IdentifierType::Dns if is_wildcard(identifier) => &[ChallengeType::Dns01],
        IdentifierType::Dns => {
            &[ChallengeType::Http01, ChallengeType::Dns01, ChallengeType::TlsAlpn01]
        }
        IdentifierType::Ip => &[ChallengeType::Http01, ChallengeType::TlsAlpn01],
        IdentifierType::PermanentIdentifier => &[ChallengeType::DeviceAttest01],
    };
    enabled.iter().copied().filter(|c| allowed.contains(c)).collect()
}

/// Whether a CSR asks for exactly what the order validated (RFC 8555 §7.4: the server
/// "MUST reject … if the CSR … requests … identifiers … different from those in the
/// order"): its DNS names (compared case-insensitively, one trailing dot ignored) are the
/// order's `dns` identifiers and its IP addresses the order's `ip` identifiers, as sets;
/// its subject CN, if any, is one of them. For an order of permanent identifiers
/// (device-attest-01) the CSR has no DNS names or IP addresses and its CN is empty or
/// one of the identifiers; such an order cannot also hold names. The error says what
/// differs (the caller answers badCSR).
pub fn csr_matches_order(
    csr_dns: &[String],
    csr_ips: &[IpAddr],
    csr_cn: Option<&str>,
    identifiers: &[Identifier],
) -> core::result::Result<(), String> {
    let dns_name = |name: &str| {
        let lower = name.to_ascii_lowercase();
        lower.strip_suffix('.').map(str::to_owned).unwrap_or(lower)
    };
    let cn = csr_cn.filter(|cn| !cn.is_empty());
    let permanent: BTreeSet<&str> = identifiers
        .iter()
        .filter(|i| i.identifier_type == IdentifierType::PermanentIdentifier)
        .map(|i| i.value.as_str())
        .collect();
    if !permanent.is_empty() {
        if permanent.len() != identifiers.len() {
            return Err("an order of permanent identifiers cannot also hold DNS names or IP \
                        addresses"
                .into());
        }
        if !csr_dns.is_empty() || !csr_ips.is_empty() {
            return Err("the CSR for a device (permanent identifier) must not ask for DNS \
                        names or IP addresses"
                .into());
        }
        return match cn {
            Some(cn) if !permanent.contains(cn) => {
                Err(format!("the CSR's common name {cn:?} is not the order's permanent identifier"))
            }
            _ => Ok(()),
        };
    }

    let order_dns: BTreeSet<String> = identifiers
        .iter()
        .filter(|i| i.identifier_type == IdentifierType::Dns)
        .map(|i| dns_name(&i.value))
        .collect();
    let mut order_ips = BTreeSet::new();
    for identifier in identifiers.iter().filter(|i| i.identifier_type == IdentifierType::Ip) {
        let ip = identifier.value.parse::<IpAddr>().map_err(|_| {
            format!("the order's IP identifier {:?} is not an address", identifier.value)
        })?;
        order_ips.insert(ip);
    }
    let csr_dns_set: BTreeSet<String> = csr_dns.iter().map(|n| dns_name(n)).collect();
    let csr_ip_set: BTreeSet<IpAddr> = csr_ips.iter().copied().collect();

    let extra: Vec<&String> = csr_dns_set.difference(&order_dns).collect();
    let missing: Vec<&String> = order_dns.difference(&csr_dns_set).collect();
    if !extra.is_empty() || !missing.is_empty() {
        return Err(format!(
            "the CSR's DNS names are not the order's (not in the order: {extra:?}; missing: \
             {missing:?})"
        ));
    }
    let extra: Vec<&IpAddr> = csr_ip_set.difference(&order_ips).collect();
    let missing: Vec<&IpAddr> = order_ips.difference(&csr_ip_set).collect();
    if !extra.is_empty() || !missing.is_empty() {
        return Err(format!(
            "the CSR's IP addresses are not the order's (not in the order: {extra:?}; missing: \
             {missing:?})"
        ));
    }
    if let Some(cn) = cn {
        let named = order_dns.contains(&dns_name(cn))
            || cn.parse::<IpAddr>().is_ok_and(|ip| order_ips.contains(&ip));
        if !named {
            return Err(format!(
                "the CSR's common name {cn:?} is not one of the order's identifiers"
            ));
        }
    }
    Ok(())
}
