//! The address policy through the public API: the cases of the validation authority's
//! brief (RFC 8555 §10.2).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::IpAddr;

use keystation_acme_va::{AddressPolicy, Error};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn the_default_denies_internal_addresses_and_permits_public_ones() {
    let policy = AddressPolicy::parse(&[], &[]).unwrap();
    assert_eq!(policy, AddressPolicy::default());
    for denied in ["127.0.0.1", "10.1.2.3", "169.254.169.254", "::1", "fd00::1", "::ffff:10.0.0.1"]
    {
        assert!(!policy.permits(ip(denied)), "{denied}");
    }
    assert!(policy.permits(ip("93.184.216.34")));
}

#[test]
fn allow_permits_loopback_and_deny_beats_allow() {
    let policy = AddressPolicy::parse(&["127.0.0.0/8".into(), "::1/128".into()], &[]).unwrap();
    assert!(
        policy.permits(ip("127.0.0.1"))
            && policy.permits(ip("127.1.2.3"))
            && policy.permits(ip("::1"))
    );
    assert!(!policy.permits(ip("10.1.2.3")));
    let policy = AddressPolicy::parse(&["127.0.0.0/8".into()], &["127.0.0.53".into()]).unwrap();
    assert!(policy.permits(ip("127.0.0.1")));
    assert!(!policy.permits(ip("127.0.0.53")));
}

#[test]
fn bad_entries_are_named() {
    let err = AddressPolicy::parse(&[], &["10.0.0.0/40".into()]).unwrap_err();
    assert!(matches!(&err, Error::BadCidr { entry, .. } if entry == "10.0.0.0/40"));
    assert!(err.to_string().contains("at most 32 bits"), "{err}");
}
