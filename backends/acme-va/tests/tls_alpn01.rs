//! tls-alpn-01 (RFC 8737) against loopback rustls servers presenting rcgen certificates.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::IpAddr;

use common::*;
use keystation_acme_va::{FailureKind, Identifier, key_authorization_digest};
use rcgen::{CertificateParams, CustomExtension, KeyPair, SanType};

const ACME_TLS_1: &[u8] = b"acme-tls/1";

/// What the challenge certificate carries.
struct Cert {
    names: Vec<SanType>,
    /// The acmeIdentifier digest, and whether the extension is critical; `None`: no
    /// extension.
    digest: Option<([u8; 32], bool)>,
}

impl Cert {
    fn right_for(name: &str) -> Self {
        Self {
            names: vec![SanType::DnsName(name.try_into().unwrap())],
            digest: Some((digest(KEY_AUTHORIZATION), true)),
        }
    }

    fn make(self) -> (Vec<u8>, Vec<u8>) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        params.subject_alt_names = self.names;
        if let Some((digest, critical)) = self.digest {
            let mut extension = CustomExtension::new_acme_identifier(&digest);
            extension.set_criticality(critical);
            params.custom_extensions.push(extension);
        }
        let certificate = params.self_signed(&key).unwrap();
        (certificate.der().to_vec(), key.serialize_der())
    }
}

/// SHA-256 computed here rather than by the crate under test.
fn digest(key_authorization: &str) -> [u8; 32] {
    use sha2::Digest as _;
    let digest: [u8; 32] = sha2::Sha256::digest(key_authorization.as_bytes()).into();
    assert_eq!(digest, key_authorization_digest(key_authorization));
    digest
}

async fn serve(cert: Cert, alpn: &[&[u8]]) -> TlsServer {
    let (der, key) = cert.make();
    TlsServer::start(der, key, alpn, rustls::DEFAULT_VERSIONS, None).await
}

async fn attempt(
    server: &TlsServer,
    identifier: &Identifier,
) -> Result<(), keystation_acme_va::ValidationFailure> {
    let dns = dns_server(&loopback_zone()).await;
    validator(dns, 1, server.port).tls_alpn01(identifier, KEY_AUTHORIZATION).await
}

fn a_test() -> Identifier {
    Identifier::Dns("a.test".into())
}

#[tokio::test]
async fn the_right_certificate_passes_with_the_name_as_sni() {
    let server = serve(Cert::right_for("a.test"), &[ACME_TLS_1]).await;
    attempt(&server, &Identifier::Dns("A.test".into())).await.unwrap();
    assert_eq!(*server.sni.lock().unwrap(), vec![Some("a.test".to_owned())]);
}

#[tokio::test]
async fn tls_1_2_passes_too() {
    let (der, key) = Cert::right_for("a.test").make();
    let server = TlsServer::start(der, key, &[ACME_TLS_1], &[&rustls::version::TLS12], None).await;
    attempt(&server, &a_test()).await.unwrap();
}

#[tokio::test]
async fn a_handshake_signed_with_another_key_fails() {
    // The certificate is right, but the server signs the handshake with a key that is not
    // the certificate's: it does not hold the certificate's key.
    let (der, _) = Cert::right_for("a.test").make();
    let other_key = KeyPair::generate().unwrap().serialize_der();
    for versions in [rustls::DEFAULT_VERSIONS, &[&rustls::version::TLS12]] {
        let server =
            TlsServer::start(der.clone(), other_key.clone(), &[ACME_TLS_1], versions, None).await;
        let failure = attempt(&server, &a_test()).await.unwrap_err();
        assert_eq!(failure.kind, FailureKind::Tls, "{failure:?}");
        assert!(failure.detail.contains("BadSignature"), "{}", failure.detail);
    }
}

#[tokio::test]
async fn an_ip_identifier_uses_its_reverse_name_as_sni() {
    let ip: IpAddr = localhost();
    let cert = Cert {
        names: vec![SanType::IpAddress(ip)],
        digest: Some((digest(KEY_AUTHORIZATION), true)),
    };
    let server = serve(cert, &[ACME_TLS_1]).await;
    attempt(&server, &Identifier::Ip(ip)).await.unwrap();
    assert_eq!(*server.sni.lock().unwrap(), vec![Some("1.0.0.127.in-addr.arpa".to_owned())]);
}

#[tokio::test]
async fn a_wrong_digest_is_an_incorrect_response() {
    let cert = Cert {
        names: vec![SanType::DnsName("a.test".try_into().unwrap())],
        digest: Some((digest("someone-else.thumbprint"), true)),
    };
    let server = serve(cert, &[ACME_TLS_1]).await;
    let failure = attempt(&server, &a_test()).await.unwrap_err();
    assert_eq!(failure.kind, FailureKind::IncorrectResponse, "{failure:?}");
    assert!(failure.detail.contains("not an OCTET STRING of the SHA-256"), "{}", failure.detail);
}

#[tokio::test]
async fn a_missing_extension_is_an_incorrect_response() {
    let cert = Cert { names: vec![SanType::DnsName("a.test".try_into().unwrap())], digest: None };
    let server = serve(cert, &[ACME_TLS_1]).await;
    let failure = attempt(&server, &a_test()).await.unwrap_err();
    assert_eq!(failure.kind, FailureKind::IncorrectResponse, "{failure:?}");
    assert!(failure.detail.contains("no id-pe-acmeIdentifier"), "{}", failure.detail);
}

#[tokio::test]
async fn a_non_critical_extension_is_an_incorrect_response() {
    let cert = Cert {
        names: vec![SanType::DnsName("a.test".try_into().unwrap())],
        digest: Some((digest(KEY_AUTHORIZATION), false)),
    };
    let server = serve(cert, &[ACME_TLS_1]).await;
    let failure = attempt(&server, &a_test()).await.unwrap_err();
    assert_eq!(failure.kind, FailureKind::IncorrectResponse, "{failure:?}");
    assert!(failure.detail.contains("not marked critical"), "{}", failure.detail);
}

#[tokio::test]
async fn a_certificate_for_another_name_is_an_incorrect_response() {
    let server = serve(Cert::right_for("b.test"), &[ACME_TLS_1]).await;
    let failure = attempt(&server, &a_test()).await.unwrap_err();
    assert_eq!(failure.kind, FailureKind::IncorrectResponse, "{failure:?}");
    assert!(failure.detail.contains(r#"DNS:"b.test""#), "{}", failure.detail);
}

#[tokio::test]
async fn a_certificate_with_more_names_is_an_incorrect_response() {
    let cert = Cert {
        names: vec![
            SanType::DnsName("a.test".try_into().unwrap()),
            SanType::DnsName("b.test".try_into().unwrap()),
        ],
        digest: Some((digest(KEY_AUTHORIZATION), true)),
    };
    let server = serve(cert, &[ACME_TLS_1]).await;
    let failure = attempt(&server, &a_test()).await.unwrap_err();
    assert_eq!(failure.kind, FailureKind::IncorrectResponse, "{failure:?}");
    assert!(failure.detail.contains("alone"), "{}", failure.detail);
}

#[tokio::test]
async fn no_alpn_negotiated_is_a_tls_failure() {
    let server = serve(Cert::right_for("a.test"), &[]).await;
    let failure = attempt(&server, &a_test()).await.unwrap_err();
    assert_eq!(failure.kind, FailureKind::Tls, "{failure:?}");
    assert!(
        failure.detail.contains("did not negotiate the acme-tls/1 protocol"),
        "{}",
        failure.detail
    );
}

#[tokio::test]
async fn a_server_that_only_speaks_other_protocols_is_a_tls_failure() {
    let server = serve(Cert::right_for("a.test"), &[b"h2", b"http/1.1"]).await;
    let failure = attempt(&server, &a_test()).await.unwrap_err();
    assert_eq!(failure.kind, FailureKind::Tls, "{failure:?}");
}

#[tokio::test]
async fn plain_http_instead_of_tls_is_a_tls_failure() {
    let port = blurting_server(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n").await;
    let dns = dns_server(&loopback_zone()).await;
    let failure =
        validator(dns, 1, port).tls_alpn01(&a_test(), KEY_AUTHORIZATION).await.unwrap_err();
    assert_eq!(failure.kind, FailureKind::Tls, "{failure:?}");
}

#[tokio::test]
async fn the_default_policy_refuses_loopback() {
    let server = serve(Cert::right_for("a.test"), &[ACME_TLS_1]).await;
    let dns = dns_server(&loopback_zone()).await;
    let va = validator_with(dns, 1, server.port, |c| c.policy = Default::default());
    let failure = va.tls_alpn01(&a_test(), KEY_AUTHORIZATION).await.unwrap_err();
    assert_eq!(failure.kind, FailureKind::RejectedIdentifier, "{failure:?}");
    assert!(server.sni.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_silent_server_times_out_as_a_connection_failure() {
    let port = silent_listener().await;
    let dns = dns_server(&loopback_zone()).await;
    let va = validator_with(dns, 1, port, |c| c.timeout = std::time::Duration::from_secs(1));
    let failure = va.tls_alpn01(&a_test(), KEY_AUTHORIZATION).await.unwrap_err();
    assert_eq!(failure.kind, FailureKind::Connection, "{failure:?}");
}
