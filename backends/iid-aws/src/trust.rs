//! The certificates identity documents are verified with, and the verification of the
//! base64 `/signature` form.
//!
//! AWS publishes one certificate per region for each signature form
//! (<https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/regions-certs.html>). The
//! `/signature` form is an RSA PKCS#1 v1.5 SHA-256 signature over the document's bytes
//! (<https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/verify-rsa2048.html> and
//! `verify-signature.html`); its "RSA format" certificates hold **1024-bit** keys, which
//! ring verifies only through its explicitly named legacy algorithm
//! (`RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY`). Many regions share one key: the
//! embedded bundle's 33 certificates carry 15 distinct keys, so each key is tried once.
//!
//! The embedded set is step-ca's `aws_certificates.pem` (one "RSA format" certificate per
//! region, each preceded by a `# certificate for <region>` comment) plus the RSA-2048
//! certificate of us-east-1 for the PKCS#7 form. A configured `iidRoots` replaces it, as
//! in step-ca. Certificates are key holders, not a chain: their validity is not checked
//! (step-ca does not either; AWS rotates documents, not these keys, and the keys of the
//! expired 2014 `ec2.amazonaws.com` certificate live on in the current ones).

use keystation_x509::Certificate;
use ring::signature;

use crate::Error;

/// step-ca's bundle of AWS's per-region "RSA format" certificates.
pub(crate) const EMBEDDED_RSA_CERTIFICATES: &str = include_str!("../certs/aws_certificates.pem");

/// AWS's RSA-2048 certificate for us-east-1 (the `/rsa2048` PKCS#7 form).
pub(crate) const EMBEDDED_RSA2048_US_EAST_1: &str = include_str!("../certs/rsa2048_use1.pem");

const RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";

/// One trusted certificate, reduced to what verification needs.
#[derive(Debug, Clone)]
pub(crate) struct TrustedCertificate {
    /// The region the bundle's comment names, when it names one.
    pub(crate) region: Option<String>,
    /// The issuer's DER (PKCS#7 signers name their certificate by issuer and serial).
    pub(crate) issuer_der: Vec<u8>,
    /// The serial number's content octets, leading zeros removed.
    pub(crate) serial: Vec<u8>,
    /// The subjectKeyIdentifier's key id, when the certificate has one.
    pub(crate) key_id: Option<Vec<u8>>,
    /// PKCS#1 `RSAPublicKey` DER.
    pub(crate) rsa_key: Vec<u8>,
    /// The modulus size in bits.
    pub(crate) bits: usize,
    /// The certificate's DER.
    pub(crate) der: Vec<u8>,
}

/// The certificates a provisioner trusts, with their keys deduplicated.
#[derive(Debug, Clone)]
pub(crate) struct TrustStore {
    pub(crate) certificates: Vec<TrustedCertificate>,
    /// Indexes into `certificates` of the first certificate of each distinct key.
    distinct: Vec<usize>,
}

fn strip_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

fn trusted(cert: &Certificate, region: Option<String>) -> Result<TrustedCertificate, Error> {
    use der::Decode as _;
    let spki = x509_cert::spki::SubjectPublicKeyInfoRef::from_der(cert.spki_der())
        .map_err(|e| Error::Certificates(format!("{}: public key: {e}", cert.subject())))?;
    if spki.algorithm.oid.to_string() != RSA_ENCRYPTION {
        return Err(Error::Certificates(format!(
            "{}: the key is not RSA ({}); identity documents are RSA-signed",
            cert.subject(),
            spki.algorithm.oid
        )));
    }
    let rsa_key = spki.subject_public_key.raw_bytes().to_vec();
    let bits = rsa_modulus_bits(&rsa_key).ok_or_else(|| {
        Error::Certificates(format!("{}: not a PKCS#1 RSA public key", cert.subject()))
    })?;
    if !(1024..=8192).contains(&bits) {
        return Err(Error::Certificates(format!(
            "{}: a {bits}-bit RSA key (1024 to 8192 bits are accepted)",
            cert.subject()
        )));
    }
    // subjectKeyIdentifier: the extension's value is an OCTET STRING holding the key id.
    let key_id = cert.extension("2.5.29.14").and_then(|value| {
        der::asn1::OctetString::from_der(value).ok().map(|o| o.as_bytes().to_vec())
    });
    Ok(TrustedCertificate {
        region,
        issuer_der: cert.issuer_der().to_vec(),
        serial: strip_zeros(cert.serial()).to_vec(),
        key_id,
        rsa_key,
        bits,
        der: cert.der().to_vec(),
    })
}

/// The modulus size of a PKCS#1 `RSAPublicKey`.
fn rsa_modulus_bits(rsa_key: &[u8]) -> Option<usize> {
    use der::Decode as _;
    #[derive(der::Sequence)]
    struct RsaPublicKey<'a> {
        modulus: der::asn1::UintRef<'a>,
        #[allow(dead_code)]
        exponent: der::asn1::UintRef<'a>,
    }
    let key = RsaPublicKey::from_der(rsa_key).ok()?;
    let n = key.modulus.as_bytes();
    let first = *n.first()?;
    Some(n.len() * 8 - first.leading_zeros() as usize)
}

impl TrustStore {
    /// The embedded set: step-ca's per-region RSA certificates and the us-east-1 RSA-2048
    /// certificate.
    pub(crate) fn embedded() -> Result<Self, Error> {
        let mut certificates = parse_bundle(EMBEDDED_RSA_CERTIFICATES)?;
        certificates.extend(parse_bundle(EMBEDDED_RSA2048_US_EAST_1)?.into_iter().map(|mut c| {
            c.region = Some("us-east-1".into());
            c
        }));
        Ok(Self::new(certificates))
    }

    /// The certificates of a PEM bundle (`iidRoots`); at least one.
    pub(crate) fn from_pem(pem: &str) -> Result<Self, Error> {
        let certificates = parse_bundle(pem)?;
        if certificates.is_empty() {
            return Err(Error::Certificates("no CERTIFICATE block".into()));
        }
        Ok(Self::new(certificates))
    }

    fn new(certificates: Vec<TrustedCertificate>) -> Self {
        let mut distinct: Vec<usize> = Vec::new();
        for (i, c) in certificates.iter().enumerate() {
            if !distinct.iter().any(|&j| certificates[j].rsa_key == c.rsa_key) {
                distinct.push(i);
            }
        }
        Self { certificates, distinct }
    }

    /// The number of distinct keys.
    pub(crate) fn distinct_keys(&self) -> usize {
        self.distinct.len()
    }

    /// Verifies the `/signature` form — RSA PKCS#1 v1.5 with SHA-256 over `document` —
    /// with any trusted key, the ones labelled for `region_hint` first (the hint is the
    /// unverified document's region: it only orders the attempts). Returns the index of
    /// a certificate whose key verified.
    pub(crate) fn verify_raw(
        &self,
        document: &[u8],
        signature: &[u8],
        region_hint: Option<&str>,
    ) -> Option<usize> {
        let labelled = |i: &usize| {
            region_hint.is_some_and(|r| {
                self.certificates.iter().any(|c| {
                    c.rsa_key == self.certificates[*i].rsa_key && c.region.as_deref() == Some(r)
                })
            })
        };
        let first = self.distinct.iter().copied().filter(labelled);
        let rest = self.distinct.iter().copied().filter(|i| !labelled(i));
        first
            .chain(rest)
            .find(|&i| verify_rsa_sha256(&self.certificates[i].rsa_key, document, signature))
    }
}

/// RSA PKCS#1 v1.5 SHA-256 verification with a PKCS#1 public key of 1024 to 8192 bits.
pub(crate) fn verify_rsa_sha256(rsa_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    signature::UnparsedPublicKey::new(
        &signature::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY,
        rsa_key,
    )
    .verify(message, signature)
    .is_ok()
}

/// Parses a PEM bundle, remembering the region a `# certificate for <region>` comment
/// before a block names.
fn parse_bundle(pem: &str) -> Result<Vec<TrustedCertificate>, Error> {
    let mut out = Vec::new();
    let mut region: Option<String> = None;
    let mut block: Option<String> = None;
    for line in pem.lines() {
        let line = line.trim();
        if let Some(text) = block.as_mut() {
            text.push_str(line);
            text.push('\n');
            if line.starts_with("-----END") {
                let text = block.take().unwrap_or_default();
                if line == "-----END CERTIFICATE-----" {
                    let cert = Certificate::from_pem(&text).map_err(|e| {
                        Error::Certificates(format!("certificate {}: {e}", out.len() + 1))
                    })?;
                    out.push(trusted(&cert, region.take())?);
                }
                region = None;
            }
        } else if line.starts_with("-----BEGIN") {
            block = Some(format!("{line}\n"));
        } else if let Some(r) = line.strip_prefix("# certificate for ") {
            region = Some(r.trim().to_owned());
        }
    }
    if block.is_some() {
        return Err(Error::Certificates("a PEM block is not terminated".into()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_bundle_parses_with_regions() {
        let store = TrustStore::embedded().unwrap();
        assert_eq!(store.certificates.len(), 34);
        assert_eq!(store.distinct_keys(), 16);
        let regions: Vec<_> = store.certificates.iter().filter_map(|c| c.region.clone()).collect();
        assert_eq!(regions.len(), 34);
        for r in ["us-east-1", "us-gov-west-1", "cn-northwest-1", "il-central-1", "ca-west-1"] {
            assert!(regions.iter().any(|x| x == r), "{r}");
        }
        assert!(store.certificates[..33].iter().all(|c| c.bits == 1024));
        assert_eq!(store.certificates[33].bits, 2048);
        assert_eq!(store.certificates[33].serial, [0xB1, 0x69, 0xCC, 0x40, 0x15, 0x59, 0xA4, 0x19]);
    }
}
