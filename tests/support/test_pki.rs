//! A throwaway PKI for the Kubernetes tests: a test CA, a TLS server certificate for
//! `localhost` and 127.0.0.1, client certificates for the Kubernetes superuser
//! (`CN=system:admin, O=system:masters`), a signer for PKCS #10 requests (RFC 2986) that
//! issues client certificates the way the `kubernetes.io/kube-apiserver-client` signer
//! does, and a second, unrelated CA for the negative cases.
//!
//! Everything is generated fresh in memory by rcgen; [`Pki::write_to`] puts the PEM files
//! into a directory (a test's temporary directory) for tools such as nginx, curl and
//! kubectl. These keys are test fixtures, never real secrets.
#![allow(dead_code, unreachable_pub)]

use std::fmt;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rsa::pkcs8::EncodePrivateKey;

/// The Kubernetes user name of the test client certificate (its subject CN).
pub const CLIENT_CN: &str = "system:admin";
/// The Kubernetes group of the test client certificate (its subject O).
pub const CLIENT_ORG: &str = "system:masters";

/// Why a PKI operation failed (a bad CSR, mostly).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PkiError(pub String);

impl fmt::Display for PkiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PkiError {}

fn pki_err(context: &str) -> impl FnOnce(rcgen::Error) -> PkiError + '_ {
    move |e| PkiError(format!("{context}: {e}"))
}

/// The kind of key a client identity gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// ECDSA on NIST P-256 with SHA-256 (what a PIV slot usually holds).
    P256,
    /// RSA-2048, PKCS #1 v1.5 signatures with SHA-256.
    Rsa2048,
}

/// A certificate and its private key, in the encodings the tests hand to tools.
#[derive(Clone)]
pub struct Identity {
    /// The certificate, PEM ("CERTIFICATE").
    pub cert_pem: String,
    /// The certificate, DER.
    pub cert_der: Vec<u8>,
    /// The private key as PKCS #8 (RFC 5208), PEM ("PRIVATE KEY").
    pub key_pem: String,
    /// The private key as PKCS #8, DER.
    pub key_der: Vec<u8>,
    /// For P-256 keys: the private key as SEC 1 `ECPrivateKey` (RFC 5915), PEM
    /// ("EC PRIVATE KEY"), with the curve named, as OpenSSL writes it.
    pub key_sec1_pem: Option<String>,
    /// The SubjectPublicKeyInfo of the key, DER (to compare with a CSR's key).
    pub spki_der: Vec<u8>,
}

impl fmt::Debug for Identity {
    // The key stays out of Debug output even though it is only a test key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity").field("cert_pem", &self.cert_pem).finish_non_exhaustive()
    }
}

/// A certificate authority that can issue server and client certificates and sign CSRs.
///
/// It keeps its key as PKCS #8 and builds an rcgen issuer for each signature, so a `TestCa`
/// is `Clone + Send + Sync` and can be shared with a server thread.
#[derive(Clone)]
pub struct TestCa {
    params: CertificateParams,
    key_der: Vec<u8>,
    /// The CA certificate, PEM.
    pub cert_pem: String,
    /// The CA certificate, DER.
    pub cert_der: Vec<u8>,
}

impl fmt::Debug for TestCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestCa").field("cert_pem", &self.cert_pem).finish_non_exhaustive()
    }
}

impl TestCa {
    /// A new self-signed CA (P-256) whose subject is `CN=<common_name>`.
    pub fn new(common_name: &str) -> Result<Self, PkiError> {
        let key = KeyPair::generate().map_err(pki_err("CA key"))?;
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).map_err(pki_err("CA certificate"))?;
        Ok(Self {
            params,
            key_der: key.serialize_der(),
            cert_pem: cert.pem(),
            cert_der: cert.der().to_vec(),
        })
    }

    fn issuer(&self) -> Result<Issuer<'_, KeyPair>, PkiError> {
        let key = KeyPair::try_from(self.key_der.as_slice()).map_err(pki_err("CA key"))?;
        Ok(Issuer::from_params(&self.params, key))
    }

    /// A TLS server certificate (P-256) for `localhost` and IP 127.0.0.1.
    pub fn issue_server(&self) -> Result<Identity, PkiError> {
        let key = KeyPair::generate().map_err(pki_err("server key"))?;
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned()]).map_err(pki_err("server name"))?;
        params.subject_alt_names.push(SanType::IpAddress([127, 0, 0, 1].into()));
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, "localhost");
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.signed_by(&key, &self.issuer()?).map_err(pki_err("server cert"))?;
        identity(cert.pem(), cert.der().to_vec(), &key, KeyKind::P256)
    }

    /// A client certificate (`CN=<common_name>, O=<organization>`, the way Kubernetes
    /// reads user and group) with a fresh key of `kind`.
    pub fn issue_client(
        &self,
        common_name: &str,
        organization: &str,
        kind: KeyKind,
    ) -> Result<Identity, PkiError> {
        let key = generate_key(kind)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::OrganizationName, organization);
        params.distinguished_name.push(DnType::CommonName, common_name);
        client_usages(&mut params, kind == KeyKind::Rsa2048);
        let cert = params.signed_by(&key, &self.issuer()?).map_err(pki_err("client cert"))?;
        identity(cert.pem(), cert.der().to_vec(), &key, kind)
    }

    /// Signs a PKCS #10 certificate request (DER, or PEM "CERTIFICATE REQUEST") as a client
    /// certificate: the request's subject and public key, digitalSignature and the
    /// clientAuth extended key usage, not a CA; other requested extensions are ignored,
    /// as Kubernetes' client signer does. The request's own signature must verify.
    /// Returns the certificate as PEM.
    pub fn sign_csr(&self, csr: &[u8]) -> Result<String, PkiError> {
        let mut request = parse_csr_params(csr)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = request.params.distinguished_name.clone();
        let algorithm = request.public_key.algorithm();
        let rsa = [&rcgen::PKCS_RSA_SHA256, &rcgen::PKCS_RSA_SHA384, &rcgen::PKCS_RSA_SHA512]
            .contains(&algorithm);
        client_usages(&mut params, rsa);
        request.params = params;
        let cert = request.signed_by(&self.issuer()?).map_err(pki_err("signing the request"))?;
        Ok(cert.pem())
    }
}

/// What a PKCS #10 request (DER or PEM) asks for, after its signature verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CsrInfo {
    /// The requested subject's CommonName, if any.
    pub common_name: Option<String>,
    /// The requested subject's OrganizationName values.
    pub organizations: Vec<String>,
    /// The request's SubjectPublicKeyInfo, DER.
    pub spki_der: Vec<u8>,
}

/// Parses and verifies a PKCS #10 certificate request (DER, or PEM "CERTIFICATE REQUEST").
pub fn parse_csr(csr: &[u8]) -> Result<CsrInfo, PkiError> {
    use rcgen::PublicKeyData;
    let request = parse_csr_params(csr)?;
    let text = |value: &rcgen::DnValue| match value {
        rcgen::DnValue::PrintableString(s) => s.to_string(),
        rcgen::DnValue::Utf8String(s) => s.clone(),
        other => format!("{other:?}"),
    };
    let dn = &request.params.distinguished_name;
    Ok(CsrInfo {
        common_name: dn.get(&DnType::CommonName).map(text),
        organizations: dn
            .iter()
            .filter(|(ty, _)| **ty == DnType::OrganizationName)
            .map(|(_, value)| text(value))
            .collect(),
        spki_der: request.public_key.subject_public_key_info(),
    })
}

fn parse_csr_params(csr: &[u8]) -> Result<CertificateSigningRequestParams, PkiError> {
    let parsed = match std::str::from_utf8(csr) {
        Ok(text) if text.contains("-----BEGIN") => CertificateSigningRequestParams::from_pem(text),
        _ => CertificateSigningRequestParams::from_der(&csr.to_vec().into()),
    };
    parsed.map_err(pki_err("certificate request"))
}

/// A client certificate's usages: digitalSignature (and keyEncipherment for RSA, which TLS
/// 1.2 RSA key exchange would need), clientAuth, not a CA.
fn client_usages(params: &mut CertificateParams, rsa: bool) {
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = if rsa {
        vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment]
    } else {
        vec![KeyUsagePurpose::DigitalSignature]
    };
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
}

/// A fresh key for rcgen (to make CSRs with `CertificateParams::serialize_request`).
pub fn generate_key(kind: KeyKind) -> Result<KeyPair, PkiError> {
    match kind {
        KeyKind::P256 => KeyPair::generate().map_err(pki_err("P-256 key")),
        KeyKind::Rsa2048 => rsa_key_pair(),
    }
}

/// ring cannot generate RSA keys: the rsa crate does, and rcgen signs with its PKCS #8.
fn rsa_key_pair() -> Result<KeyPair, PkiError> {
    let key = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 2048)
        .map_err(|e| PkiError(format!("RSA key: {e}")))?;
    let der = key.to_pkcs8_der().map_err(|e| PkiError(format!("RSA key PKCS #8: {e}")))?;
    KeyPair::from_pkcs8_der_and_sign_algo(&der.as_bytes().to_vec().into(), &rcgen::PKCS_RSA_SHA256)
        .map_err(pki_err("RSA key for rcgen"))
}

fn identity(
    cert_pem: String,
    cert_der: Vec<u8>,
    key: &KeyPair,
    kind: KeyKind,
) -> Result<Identity, PkiError> {
    use rcgen::PublicKeyData;
    let key_der = key.serialize_der();
    let key_sec1_pem = match kind {
        KeyKind::P256 => Some(pem("EC PRIVATE KEY", &sec1_from_pkcs8_p256(&key_der)?)),
        KeyKind::Rsa2048 => None,
    };
    Ok(Identity {
        cert_pem,
        cert_der,
        key_pem: key.serialize_pem(),
        key_der,
        key_sec1_pem,
        spki_der: key.subject_public_key_info(),
    })
}

/// PEM (RFC 7468) with 64-column base64 lines.
pub fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// One DER element: (tag, contents, rest).
fn der_element(input: &[u8]) -> Result<(u8, &[u8], &[u8]), PkiError> {
    let bad = || PkiError("malformed DER in a PKCS #8 key".to_owned());
    let (&tag, rest) = input.split_first().ok_or_else(bad)?;
    let (&first, mut rest) = rest.split_first().ok_or_else(bad)?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let count = usize::from(first & 0x7F);
        if count == 0 || count > 2 || rest.len() < count {
            return Err(bad());
        }
        let len = rest[..count].iter().fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        rest = &rest[count..];
        len
    };
    if rest.len() < len {
        return Err(bad());
    }
    Ok((tag, &rest[..len], &rest[len..]))
}

fn der_tlv(tag: u8, contents: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    match contents.len() {
        n @ 0..=0x7F => out.push(n as u8),
        n @ 0x80..=0xFF => out.extend([0x81, n as u8]),
        n => out.extend([0x82, (n >> 8) as u8, n as u8]),
    }
    out.extend_from_slice(contents);
    out
}

/// Rewrites a P-256 PKCS #8 key (RFC 5208) as SEC 1 `ECPrivateKey` (RFC 5915 §3) with the
/// `parameters [0]` field naming prime256v1, which a bare "EC PRIVATE KEY" needs because no
/// AlgorithmIdentifier surrounds it.
fn sec1_from_pkcs8_p256(pkcs8: &[u8]) -> Result<Vec<u8>, PkiError> {
    const PRIME256V1: [u8; 10] = [0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];
    let (_, info, _) = der_element(pkcs8)?;
    let (_, _version, rest) = der_element(info)?;
    let (_, _algorithm, rest) = der_element(rest)?;
    let (_, ec_private_key, _) = der_element(rest)?;
    // ECPrivateKey ::= SEQUENCE { version, privateKey, [0] parameters OPTIONAL,
    //                             [1] publicKey OPTIONAL }
    let (_, fields, _) = der_element(ec_private_key)?;
    let (_, version, rest) = der_element(fields)?;
    let (_, scalar, mut rest) = der_element(rest)?;
    let mut public = None;
    while !rest.is_empty() {
        let (tag, contents, next) = der_element(rest)?;
        if tag == 0xA1 {
            public = Some(contents);
        }
        rest = next;
    }
    let mut body = der_tlv(0x02, version);
    body.extend(der_tlv(0x04, scalar));
    body.extend(der_tlv(0xA0, &PRIME256V1));
    if let Some(public) = public {
        body.extend(der_tlv(0xA1, public));
    }
    Ok(der_tlv(0x30, &body))
}

/// The whole test PKI: CA, server, clients, and an unrelated CA with its own client.
#[derive(Clone, Debug)]
pub struct Pki {
    /// The CA the servers trust for clients and the clients trust for servers.
    pub ca: TestCa,
    /// The server certificate for `localhost` / 127.0.0.1, issued by `ca`.
    pub server: Identity,
    /// `CN=system:admin, O=system:masters`, P-256, issued by `ca`.
    pub client: Identity,
    /// The same subject with an RSA-2048 key, issued by `ca`.
    pub client_rsa: Identity,
    /// A CA nobody trusts.
    pub other_ca: TestCa,
    /// `CN=system:admin, O=system:masters` (P-256) issued by `other_ca`: must be refused.
    pub other_client: Identity,
}

/// Where [`Pki::write_to`] put each PEM file.
#[derive(Clone, Debug)]
pub struct PkiFiles {
    /// The test CA's certificate.
    pub ca_cert: PathBuf,
    /// The server certificate and its PKCS #8 key.
    pub server_cert: PathBuf,
    /// The server's key (PKCS #8).
    pub server_key: PathBuf,
    /// The P-256 client certificate.
    pub client_cert: PathBuf,
    /// The P-256 client key, PKCS #8.
    pub client_key: PathBuf,
    /// The P-256 client key, SEC 1 ("EC PRIVATE KEY").
    pub client_key_sec1: PathBuf,
    /// The RSA client certificate.
    pub client_rsa_cert: PathBuf,
    /// The RSA client key, PKCS #8.
    pub client_rsa_key: PathBuf,
    /// The unrelated CA's certificate.
    pub other_ca_cert: PathBuf,
    /// The client certificate from the unrelated CA.
    pub other_client_cert: PathBuf,
    /// Its key, PKCS #8.
    pub other_client_key: PathBuf,
}

impl Pki {
    /// Generates everything (the RSA-2048 key takes a moment).
    pub fn new() -> Result<Self, PkiError> {
        let ca = TestCa::new("keystation test CA")?;
        let other_ca = TestCa::new("keystation unrelated CA")?;
        Ok(Self {
            server: ca.issue_server()?,
            client: ca.issue_client(CLIENT_CN, CLIENT_ORG, KeyKind::P256)?,
            client_rsa: ca.issue_client(CLIENT_CN, CLIENT_ORG, KeyKind::Rsa2048)?,
            other_client: other_ca.issue_client(CLIENT_CN, CLIENT_ORG, KeyKind::P256)?,
            ca,
            other_ca,
        })
    }

    /// Writes every certificate and key as PEM into `dir` (which must exist).
    pub fn write_to(&self, dir: &Path) -> std::io::Result<PkiFiles> {
        let write = |name: &str, text: &str| -> std::io::Result<PathBuf> {
            let path = dir.join(name);
            std::fs::write(&path, text)?;
            Ok(path)
        };
        let sec1 = self.client.key_sec1_pem.as_deref().unwrap_or_default();
        Ok(PkiFiles {
            ca_cert: write("ca.pem", &self.ca.cert_pem)?,
            server_cert: write("server.pem", &self.server.cert_pem)?,
            server_key: write("server-key.pem", &self.server.key_pem)?,
            client_cert: write("client.pem", &self.client.cert_pem)?,
            client_key: write("client-key.pem", &self.client.key_pem)?,
            client_key_sec1: write("client-key-sec1.pem", sec1)?,
            client_rsa_cert: write("client-rsa.pem", &self.client_rsa.cert_pem)?,
            client_rsa_key: write("client-rsa-key.pem", &self.client_rsa.key_pem)?,
            other_ca_cert: write("other-ca.pem", &self.other_ca.cert_pem)?,
            other_client_cert: write("other-client.pem", &self.other_client.cert_pem)?,
            other_client_key: write("other-client-key.pem", &self.other_client.key_pem)?,
        })
    }
}
