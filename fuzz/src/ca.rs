//! Target for `keystation-ca`: the CA's check of a certification request, and issuance
//! from what passes it.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use keystation_ca::{CaKey, Error, Issuer, LeafTemplate, check_csr};
use keystation_core::key::KeyAlgorithm;
use keystation_x509::{Certificate, CertificateOptions, DistinguishedName, Validity};

/// A CA made once per process: a self-signed P-256 CA certificate and its key.
fn issuer() -> &'static Issuer {
    static ISSUER: OnceLock<Issuer> = OnceLock::new();
    ISSUER.get_or_init(|| {
        let mut key = CaKey::generate(KeyAlgorithm::NistP256).expect("P-256 key");
        let options = CertificateOptions { ca: true, ..CertificateOptions::default() };
        let validity = Validity { not_before: 1_700_000_000, not_after: 4_102_444_799 };
        let der = keystation_x509::self_signed_certificate(
            &mut key,
            &DistinguishedName::common_name("keystation fuzz CA"),
            &[1],
            validity,
            &options,
        )
        .expect("CA certificate");
        Issuer::new(vec![der], Box::new(key)).expect("issuer")
    })
}

/// `check_csr` on arbitrary bytes (DER, or PEM when they start so).
///
/// A refusal is one of the CSR errors. What passes has a signature keystation-x509
/// verifies, a key that is its SPKI's, as many typed SANs as string SANs, and checks the
/// same again; a leaf issued from it is signed by the issuer and certifies that key, or
/// the template is refused with a template error — never another failure or a panic.
pub fn ca_csr(data: &[u8]) {
    let csr = match check_csr(data) {
        Ok(csr) => csr,
        Err(
            Error::MalformedCsr(_)
            | Error::CsrSignature(_)
            | Error::RsaKeyTooSmall { .. }
            | Error::UnsupportedKey(_),
        ) => return,
        Err(other) => panic!("check_csr failed with a non-CSR error: {other:?}"),
    };
    keystation_x509::verify_csr(&csr.der).expect("an accepted request verifies");
    assert_eq!(
        keystation_x509::public_key_from_spki(&csr.spki_der).ok().as_ref(),
        Some(&csr.public_key)
    );
    assert_eq!(csr.sans.len(), csr.typed_sans.len());
    assert_eq!(check_csr(&csr.der).ok().as_ref(), Some(&csr), "checking is deterministic");

    let template = LeafTemplate::from_csr(&csr, SystemTime::now() + Duration::from_secs(3600));
    match issuer().issue_leaf(&template) {
        Ok(issued) => {
            issuer().verify_issued(&issued.der).expect("the issuer signed it");
            let leaf = Certificate::from_der(&issued.der).expect("our certificate parses");
            assert_eq!(leaf.public_key().ok().as_ref(), Some(&csr.public_key));
        }
        Err(Error::InvalidTemplate(_) | Error::X509(_)) => {}
        Err(other) => panic!("issuance failed with {other:?}"),
    }
}
