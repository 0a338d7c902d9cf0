//! tls-alpn-01 (RFC 8737): a TLS handshake offering only `acme-tls/1`, and the
//! certificate it presents — named for the identifier alone, with the critical
//! id-pe-acmeIdentifier extension holding the digest of the key authorization.

use std::net::IpAddr;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, SubjectPublicKeyInfoDer, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, PeerMisbehaved};

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
///
/// rustls's `verify_tls12_signature`/`verify_tls13_signature` cannot be used: they have
/// webpki parse the certificate, and webpki refuses any certificate with a critical
/// extension it does not know — id-pe-acmeIdentifier, which RFC 8737 §3 requires to be
/// critical, among them. So the key is taken from the certificate as keystation-x509
/// parses it: TLS 1.3 through rustls's `verify_tls13_signature_with_raw_key`; TLS 1.2
/// (which rustls has no raw-key function for) by trying the provider's algorithms for the
/// scheme the server chose whose key type is the certificate's, as rustls does.
#[derive(Debug)]
struct InspectOnly {
    algorithms: WebPkiSupportedAlgorithms,
}

impl InspectOnly {
    fn verify(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
        tls13: bool,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let bad_signature = || rustls::Error::InvalidCertificate(CertificateError::BadSignature);
        let certificate = Certificate::from_der(cert.as_ref())
            .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
        if tls13 {
            let spki = SubjectPublicKeyInfoDer::from(certificate.spki_der());
            return rustls::crypto::verify_tls13_signature_with_raw_key(
                message,
                &spki,
                dss,
                &self.algorithms,
            );
        }
        let Some((_, candidates)) =
            self.algorithms.mapping.iter().find(|(scheme, _)| *scheme == dss.scheme)
        else {
            return Err(PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme.into());
        };
        let (algorithm, key) = split_spki(certificate.spki_der()).ok_or_else(bad_signature)?;
        let verified = candidates.iter().any(|candidate| {
            candidate.public_key_alg_id().as_ref() == algorithm
                && candidate.verify_signature(key, message, dss.signature()).is_ok()
        });
        if verified { Ok(HandshakeSignatureValid::assertion()) } else { Err(bad_signature()) }
    }
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
        self.verify(message, cert, dss, false)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verify(message, cert, dss, true)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A SubjectPublicKeyInfo (RFC 5280 §4.1.2.7) split into the contents of its
/// AlgorithmIdentifier and the bits of its subjectPublicKey (no unused bits).
fn split_spki(spki: &[u8]) -> Option<(&[u8], &[u8])> {
    let (0x30, body, []) = der_element(spki)? else { return None };
    let (0x30, algorithm, rest) = der_element(body)? else { return None };
    let (0x03, bits, []) = der_element(rest)? else { return None };
    let (0, key) = bits.split_first()? else { return None };
    Some((algorithm, key))
}

/// The first DER element of `input` (X.690 §8.1, one-byte tags, definite lengths):
/// `(tag, contents, rest)`.
fn der_element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let length = if first < 0x80 {
        usize::from(first)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let (bytes, after) = rest.split_at(count);
        rest = after;
        bytes.iter().fold(0usize, |n, &b| (n << 8) | usize::from(b))
    };
    if rest.len() < length {
        return None;
    }
    let (contents, rest) = rest.split_at(length);
    Some((tag, contents, rest))
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
    let (tcp, address) =
        connect(&addresses, port, &format!("{identifier} port {port}"), config.timeout / 2).await?;
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
    fn spkis_split_into_algorithm_and_key() {
        // id-ecPublicKey with prime256v1, and a 3-byte "key".
        let spki = [
            0x30, 0x1a, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06,
            0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x03, 0x00, 0x04, 0x01,
        ];
        let (algorithm, key) = split_spki(&spki).unwrap();
        assert_eq!(algorithm, &spki[4..23]);
        assert_eq!(key, &[0x04, 0x01]);
        // Unused bits, trailing bytes, truncation, a wrong tag: refused.
        let mut unused = spki;
        unused[25] = 1;
        assert!(split_spki(&unused).is_none());
        assert!(split_spki(&[&spki[..], &[0]].concat()).is_none());
        assert!(split_spki(&spki[..27]).is_none());
        assert!(split_spki(&[0x31, 0x00]).is_none());
        assert!(der_element(&[0x30, 0x85, 1, 1, 1, 1, 1]).is_none());
        assert_eq!(
            der_element(&[0x04, 0x81, 0x01, 0xaa, 0xbb]),
            Some((0x04, &[0xaa][..], &[0xbb][..]))
        );
    }

    #[test]
    fn a_certificate_that_does_not_parse_is_refused() {
        let why =
            check_certificate(b"\x30\x03\x02\x01\x00", &Identifier::Dns("a.test".into()), "k")
                .unwrap_err();
        assert!(why.starts_with("cannot be parsed"), "{why}");
    }
}
