//! Order rules: identifier normalization, the challenges each identifier may use, and the
//! CSR against the order (RFC 8555 §7.1.3, §7.4; RFC 8738).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::IpAddr;

use keystation_acme::identifiers::{authorization_identifier, is_wildcard};
use keystation_acme::messages::{ChallengeType, Identifier};
use keystation_acme::{
    Error, ProblemType, challenge_types_for, csr_matches_order, normalize_identifier,
};

fn normalized(identifier: Identifier) -> Result<String, Error> {
    normalize_identifier(&identifier).map(|i| i.value)
}

#[test]
fn dns_names_are_lowercased_without_the_trailing_dot() {
    for (input, output) in [
        ("Example.COM", "example.com"),
        ("www.example.com.", "www.example.com"),
        ("*.Example.com", "*.example.com"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("a-b.c1.example", "a-b.c1.example"),
        ("localhost", "localhost"),
        ("1.example.com", "1.example.com"),
    ] {
        assert_eq!(normalized(Identifier::dns(input)).unwrap(), output, "{input}");
    }
}

#[test]
fn bad_dns_names_are_rejected_identifiers() {
    let long_label = format!("{}.example", "a".repeat(64));
    let long_name = format!("{}.example", vec!["a".repeat(60); 5].join("."));
    for bad in [
        "",
        ".",
        "example..com",
        ".example.com",
        "-a.example.com",
        "a-.example.com",
        "a_b.example.com",
        "a b.example.com",
        "bücher.example",
        "*.*.example.com",
        "a.*.example.com",
        "*a.example.com",
        "*.com",
        "*",
        "192.0.2.1",
        "::1",
        "example.123",
        long_label.as_str(),
        long_name.as_str(),
    ] {
        let result = normalized(Identifier::dns(bad));
        let Err(e) = result else { panic!("{bad:?} accepted as {result:?}") };
        assert_eq!(e.problem_type(), ProblemType::RejectedIdentifier, "{bad:?}");
    }
}

#[test]
fn ip_addresses_are_written_canonically() {
    assert_eq!(normalized(Identifier::ip("192.0.2.1")).unwrap(), "192.0.2.1");
    assert_eq!(normalized(Identifier::ip("2001:DB8:0:0::1")).unwrap(), "2001:db8::1");
    for bad in ["[::1]", "fe80::1%eth0", "192.0.2.0/24", "192.0.2", "example.com", ""] {
        assert!(
            matches!(normalized(Identifier::ip(bad)), Err(Error::RejectedIdentifier { .. })),
            "{bad}"
        );
    }
}

#[test]
fn permanent_identifiers_are_printable_and_non_empty() {
    assert_eq!(normalized(Identifier::permanent("12345678")).unwrap(), "12345678");
    let too_long = "1".repeat(256);
    for bad in ["", "12 34", "12\n34", "séria", too_long.as_str()] {
        assert!(normalized(Identifier::permanent(bad)).is_err(), "{bad:?}");
    }
}

#[test]
fn challenges_follow_the_identifier_type() {
    use ChallengeType::*;
    let all = [Http01, Dns01, TlsAlpn01, DeviceAttest01];
    assert_eq!(
        challenge_types_for(&Identifier::dns("example.com"), &all),
        [Http01, Dns01, TlsAlpn01]
    );
    assert_eq!(challenge_types_for(&Identifier::dns("*.example.com"), &all), [Dns01]);
    assert_eq!(challenge_types_for(&Identifier::ip("::1"), &all), [Http01, TlsAlpn01]);
    assert_eq!(challenge_types_for(&Identifier::permanent("1"), &all), [DeviceAttest01]);
    // Only what the provisioner enables, in its order.
    assert_eq!(
        challenge_types_for(&Identifier::dns("example.com"), &[TlsAlpn01, Http01]),
        [TlsAlpn01, Http01]
    );
    assert!(
        challenge_types_for(&Identifier::dns("*.example.com"), &[Http01, TlsAlpn01]).is_empty()
    );
    assert!(
        challenge_types_for(&Identifier::permanent("1"), &[Http01, Dns01, TlsAlpn01]).is_empty()
    );
    assert!(challenge_types_for(&Identifier::ip("192.0.2.1"), &[Dns01]).is_empty());
}

#[test]
fn wildcard_authorizations_name_the_base_domain() {
    let (authz, wildcard) = authorization_identifier(&Identifier::dns("*.example.com"));
    assert_eq!((authz, wildcard), (Identifier::dns("example.com"), true));
    assert!(is_wildcard(&Identifier::dns("*.example.com")));
    let (authz, wildcard) = authorization_identifier(&Identifier::dns("www.example.com"));
    assert_eq!((authz.value.as_str(), wildcard), ("www.example.com", false));
    assert!(!authorization_identifier(&Identifier::permanent("*.x")).1);
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

fn ips(list: &[&str]) -> Vec<IpAddr> {
    list.iter().map(|s| s.parse().unwrap()).collect()
}

#[test]
fn the_csr_must_ask_for_exactly_the_orders_names() {
    let order = [
        Identifier::dns("example.com"),
        Identifier::dns("*.example.com"),
        Identifier::ip("2001:db8::1"),
    ];
    let dns = names(&["EXAMPLE.com.", "*.example.com"]);
    let ip = ips(&["2001:db8:0::1"]);
    assert_eq!(csr_matches_order(&dns, &ip, None, &order), Ok(()));
    assert_eq!(csr_matches_order(&dns, &ip, Some("example.com"), &order), Ok(()));
    assert_eq!(csr_matches_order(&dns, &ip, Some("2001:db8::1"), &order), Ok(()));
    assert_eq!(csr_matches_order(&dns, &ip, Some(""), &order), Ok(()));
    // Duplicates in the CSR do not change the set.
    let twice = names(&["example.com", "example.com", "*.example.com"]);
    assert_eq!(csr_matches_order(&twice, &ip, None, &order), Ok(()));

    let extra = names(&["example.com", "*.example.com", "evil.example"]);
    let e = csr_matches_order(&extra, &ip, None, &order).unwrap_err();
    assert!(e.contains("evil.example"), "{e}");
    let missing = names(&["example.com"]);
    let e = csr_matches_order(&missing, &ip, None, &order).unwrap_err();
    assert!(e.contains("*.example.com"), "{e}");
    let e = csr_matches_order(&dns, &[], None, &order).unwrap_err();
    assert!(e.contains("IP"), "{e}");
    let e = csr_matches_order(&dns, &ips(&["2001:db8::1", "192.0.2.1"]), None, &order).unwrap_err();
    assert!(e.contains("192.0.2.1"), "{e}");
    let e = csr_matches_order(&dns, &ip, Some("other.example"), &order).unwrap_err();
    assert!(e.contains("common name"), "{e}");
}

#[test]
fn a_device_csr_names_nothing_but_its_identifier() {
    let order = [Identifier::permanent("12345678")];
    assert_eq!(csr_matches_order(&[], &[], None, &order), Ok(()));
    assert_eq!(csr_matches_order(&[], &[], Some("12345678"), &order), Ok(()));
    assert!(csr_matches_order(&[], &[], Some("87654321"), &order).is_err());
    assert!(csr_matches_order(&names(&["a.example"]), &[], None, &order).is_err());
    assert!(csr_matches_order(&[], &ips(&["::1"]), None, &order).is_err());
    let mixed = [Identifier::permanent("12345678"), Identifier::dns("a.example")];
    assert!(csr_matches_order(&names(&["a.example"]), &[], None, &mixed).is_err());
}
