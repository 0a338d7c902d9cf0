//! dns-01 (RFC 8555 §8.4) against a loopback DNS server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::Ipv4Addr;
use std::time::Duration;

use common::*;
use keystation_acme_va::{FailureKind, dns01_txt_value};

/// The TXT value of [`KEY_AUTHORIZATION`] (RFC 8555 §8.4), computed here rather than by
/// the crate: base64url without padding of its SHA-256 digest.
fn expected_value() -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    let value = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(KEY_AUTHORIZATION.as_bytes()));
    assert_eq!(value, dns01_txt_value(KEY_AUTHORIZATION));
    value
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

#[tokio::test]
async fn the_right_txt_record_among_others_passes() {
    let value = leak(expected_value());
    let (head, tail) = value.split_at(10);
    let dns = dns_server(&[
        ("_acme-challenge.a.test", Rec::Txt(vec!["v=spf1 -all"])),
        ("_acme-challenge.a.test", Rec::Txt(vec![head, tail])),
        ("_acme-challenge.b.test", Rec::Txt(vec![value])),
    ])
    .await;
    let va = validator(dns, 1, 1);
    // A record split in character-strings counts as their concatenation.
    va.dns01("a.test", KEY_AUTHORIZATION).await.unwrap();
    // A wildcard's challenge is at the base domain (RFC 8555 §7.1.3).
    va.dns01("*.B.test.", KEY_AUTHORIZATION).await.unwrap();
}

#[tokio::test]
async fn cnames_are_followed() {
    let value = leak(expected_value());
    let dns = dns_server(&[
        ("_acme-challenge.a.test", Rec::Cname("_acme-challenge.delegated.test")),
        ("_acme-challenge.delegated.test", Rec::Txt(vec![value])),
    ])
    .await;
    validator(dns, 1, 1).dns01("a.test", KEY_AUTHORIZATION).await.unwrap();
}

#[tokio::test]
async fn a_wrong_txt_record_is_an_incorrect_response_quoted() {
    let dns = dns_server(&[("_acme-challenge.a.test", Rec::Txt(vec!["stale-value\t"]))]).await;
    let failure = validator(dns, 1, 1).dns01("a.test", KEY_AUTHORIZATION).await.unwrap_err();
    assert_eq!(failure.kind, FailureKind::IncorrectResponse, "{failure:?}");
    assert!(failure.detail.contains(r#""stale-value\t""#), "{}", failure.detail);
    assert!(failure.detail.contains("_acme-challenge.a.test"), "{}", failure.detail);
    // The key authorization itself, rather than its digest, is wrong too.
    let dns = dns_server(&[("_acme-challenge.a.test", Rec::Txt(vec![KEY_AUTHORIZATION]))]).await;
    let failure = validator(dns, 1, 1).dns01("a.test", KEY_AUTHORIZATION).await.unwrap_err();
    assert_eq!(failure.kind, FailureKind::IncorrectResponse, "{failure:?}");
}

#[tokio::test]
async fn nxdomain_is_a_dns_failure() {
    let dns = dns_server(&[("a.test", Rec::A(Ipv4Addr::LOCALHOST))]).await;
    let failure = validator(dns, 1, 1).dns01("a.test", KEY_AUTHORIZATION).await.unwrap_err();
    assert_eq!(failure.kind, FailureKind::Dns, "{failure:?}");
    assert!(
        failure.detail.contains("NXDOMAIN") && failure.detail.contains("_acme-challenge.a.test"),
        "{}",
        failure.detail
    );
}

#[tokio::test]
async fn a_name_without_txt_records_is_a_dns_failure() {
    let dns = dns_server(&[("_acme-challenge.a.test", Rec::A(Ipv4Addr::LOCALHOST))]).await;
    let failure = validator(dns, 1, 1).dns01("a.test", KEY_AUTHORIZATION).await.unwrap_err();
    assert_eq!(failure.kind, FailureKind::Dns, "{failure:?}");
    assert!(failure.detail.contains("no TXT records"), "{}", failure.detail);
}

#[tokio::test]
async fn servfail_is_a_dns_failure() {
    let dns = dns_server(&[("_acme-challenge.a.test", Rec::ServFail)]).await;
    let failure = validator(dns, 1, 1).dns01("a.test", KEY_AUTHORIZATION).await.unwrap_err();
    assert_eq!(failure.kind, FailureKind::Dns, "{failure:?}");
    assert!(failure.detail.contains("SERVFAIL"), "{}", failure.detail);
}

#[tokio::test]
async fn a_silent_dns_server_fails_within_the_timeout() {
    // A UDP socket that reads nothing: every query goes unanswered.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let address = silent.local_addr().unwrap();
    let va = validator_with(address, 1, 1, |c| c.timeout = Duration::from_secs(1));
    let started = std::time::Instant::now();
    let failure = va.dns01("a.test", KEY_AUTHORIZATION).await.unwrap_err();
    assert!(matches!(failure.kind, FailureKind::Connection | FailureKind::Dns), "{failure:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
    drop(silent);
}

#[tokio::test]
async fn a_malformed_domain_is_refused() {
    let dns = dns_server(&[]).await;
    for domain in ["", "a..test", "a test", "*.*.a.test", "10.0.0.1"] {
        let failure = validator(dns, 1, 1).dns01(domain, KEY_AUTHORIZATION).await.unwrap_err();
        assert_eq!(failure.kind, FailureKind::Malformed, "{domain:?}: {failure:?}");
    }
}
