//! tls-alpn-01 (RFC 8737): a TLS handshake offering only `acme-tls/1`, and the
//! certificate it presents — named for the identifier alone, with the critical
//! id-pe-acmeIdentifier extension holding the digest of the key authorization.

use std::net::IpAddr;
use std::sync::Arc;

use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

use keystation_x509::{Certificate, SubjectAltName};

use crate::net::{connect, permitted_addresses};
use crate::{Error, FailureKind, Identifier, Inner, ValidationFailure, normalize_name};

/// The ALPN protocol name of RFC 8737 §6.2.
pub(crate) const ACME_TLS_1: &[u8] = b"acme-tls/1";

/// id-pe-acmeIdentifier (RFC 8737 §6.1).
const ID_PE_ACME_IDENTIFIER: &str = "1.3.6.1.5.5.7.1.31";

/// A TLS 1.2/1.3 client (ring) offering `alpn`, accepting any certificate for inspection,
/// never resuming a session (each attempt must see the certificate presented now).
pub(crate) fn connector(alpn: Vec<Vec<u8>>) -> Result<tokio_rustls::TlsConnector, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = InspectOnly { algorithms: provider.signature_verification_algorithms };
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.alpn_protocols = alpn;
    config.resumption = rustls::client::Resumption::disabled();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// Accepts any certificate chain — the validator judges the certificate itself, and
/// RFC 8737 §3's certificate is self-signed — but verifies the handshake signature with
/// the certificate's key, so the server holds the key of the certificate it presents.
#[derive(Debug)]
struct InspectOnly {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for InspectOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The reverse-DNS name of an address (RFC 8738 §6, RFC 1035 §3.5, RFC 3596 §2.5):
/// `4.3.2.1.in-addr.arpa`, or 32 nibbles and `ip6.arpa`.
pub(crate) fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}.in-addr.arpa")
        }
        IpAddr::V6(v6) => {
            let mut name = String::with_capacity(72);
            for byte in v6.octets().iter().rev() {
                name.push_str(&format!("{:x}.{:x}.", byte & 0x0f, byte >> 4));
            }
            name.push_str("ip6.arpa");
            name
        }
    }
}

pub(crate) async fn validate(
    inner: &Inner,
    identifier: &Identifier,
    key_authorization: &str,
) -> Result<(), ValidationFailure> {
    let (identifier, sni) = match identifier {
        Identifier::Dns(name) => {
            let Some(name) = normalize_name(name) else {
                return Err(ValidationFailure::new(
                    FailureKind::Malformed,
                    format!(
                        "{} is not a DNS name that tls-alpn-01 can validate",
                        crate::quote(name.as_bytes())
                    ),
                ));
            };
            (Identifier::Dns(name.clone()), name)
        }
        Identifier::Ip(ip) => (Identifier::Ip(*ip), reverse_name(*ip)),
    };
    let server_name = ServerName::try_from(sni.clone()).map_err(|_| {
        ValidationFailure::new(FailureKind::Malformed, format!("{sni} cannot be sent as SNI"))
    })?;
    let config = &inner.config;
    let addresses = permitted_addresses(&inner.resolver, &config.policy, &identifier).await?;
    let port = config.tls_alpn01_port;
    let (tcp, address) = connect(&addresses, port, &format!("{identifier} port {port}")).await?;
    tracing::debug!(%address, %sni, "tls-alpn-01 handshake");
    let tls = inner.tls_alpn.connect(server_name, tcp).await.map_err(|e| {
        ValidationFailure::new(
            FailureKind::Tls,
            format!("the TLS handshake with {address} (SNI {sni}, ALPN acme-tls/1) failed: {e}"),
        )
    })?;
    let (_, session) = tls.get_ref();
    if session.alpn_protocol() != Some(ACME_TLS_1) {
        let got = session.alpn_protocol().map_or_else(|| "none".to_owned(), crate::quote);
        return Err(ValidationFailure::new(
            FailureKind::Tls,
            format!("{address} did not negotiate the acme-tls/1 protocol (negotiated: {got})"),
        ));
    }
    let leaf = session.peer_certificates().and_then(|chain| chain.first()).ok_or_else(|| {
        ValidationFailure::new(FailureKind::Tls, format!("{address} presented no certificate"))
    })?;
    check_certificate(leaf.as_ref(), &identifier, key_authorization).map_err(|why| {
        ValidationFailure::new(
            FailureKind::IncorrectResponse,
            format!("the certificate {address} presented for {sni}: {why}"),
        )
    })
}

/// RFC 8737 §3's checks of the challenge certificate; the error says which one failed.
pub(crate) fn check_certificate(
    der: &[u8],
    identifier: &Identifier,
    key_authorization: &str,
) -> Result<(), String> {
    let certificate = Certificate::from_der(der).map_err(|e| format!("cannot be parsed: {e}"))?;
    let names = certificate.subject_alt_names();
    let matches = |name: &SubjectAltName| match (name, identifier) {
        (SubjectAltName::Dns(got), Identifier::Dns(want)) => got.eq_ignore_ascii_case(want),
        (SubjectAltName::Ip(got), Identifier::Ip(want)) => got == want,
        _ => false,
    };
    match names.as_slice() {
        [only] if matches(only) => {}
        [] => return Err("it has no subjectAltName".into()),
        [only] => return Err(format!("its subjectAltName names {} instead", describe(only))),
        more => {
            let all: Vec<String> = more.iter().map(describe).collect();
            return Err(format!(
                "its subjectAltName must name {identifier} alone, and names {}",
                all.join(", ")
            ));
        }
    }
    let value = certificate
        .extension(ID_PE_ACME_IDENTIFIER)
        .ok_or("it has no id-pe-acmeIdentifier extension (1.3.6.1.5.5.7.1.31)")?;
    if !certificate.critical_extensions().contains(&ID_PE_ACME_IDENTIFIER) {
        return Err("its id-pe-acmeIdentifier extension is not marked critical".into());
    }
    let digest = crate::key_authorization_digest(key_authorization);
    let mut expected = Vec::with_capacity(34);
    expected.extend_from_slice(&[0x04, 0x20]);
    expected.extend_from_slice(&digest);
    if value != expected.as_slice() {
        return Err(format!(
            "its id-pe-acmeIdentifier extension is not an OCTET STRING of the SHA-256 of this challenge's key authorization (got {} bytes: {})",
            value.len(),
            hex_prefix(value)
        ));
    }
    Ok(())
}

fn describe(name: &SubjectAltName) -> String {
    match name {
        SubjectAltName::Dns(s) => format!("DNS:{}", crate::quote(s.as_bytes())),
        SubjectAltName::Email(s) => format!("email:{}", crate::quote(s.as_bytes())),
        SubjectAltName::Uri(s) => format!("URI:{}", crate::quote(s.as_bytes())),
        SubjectAltName::Ip(ip) => format!("IP:{ip}"),
        _ => "a name of another kind".into(),
    }
}

/// The first 40 bytes in hex.
fn hex_prefix(bytes: &[u8]) -> String {
    let mut out: String = bytes.iter().take(40).map(|b| format!("{b:02x}")).collect();
    if bytes.len() > 40 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverse_names_follow_rfc_8738_section_6() {
        assert_eq!(reverse_name("192.0.2.5".parse().unwrap()), "5.2.0.192.in-addr.arpa");
        assert_eq!(
            reverse_name("2001:db8::1".parse().unwrap()),
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"
        );
        // rustls takes them as DNS names for SNI.
        assert!(ServerName::try_from(reverse_name("127.0.0.1".parse().unwrap())).is_ok());
    }

    #[test]
    fn a_certificate_that_does_not_parse_is_refused() {
        let why =
            check_certificate(b"\x30\x03\x02\x01\x00", &Identifier::Dns("a.test".into()), "k")
                .unwrap_err();
        assert!(why.starts_with("cannot be parsed"), "{why}");
    }
}
