//! `keystation piv enroll --acme DIRECTORY`: the key certified through ACME (RFC 8555)
//! with device-attest-01 (draft-acme-device-attest §4–§5), in step's `step` format.
//!
//! 1. The directory is read over TLS trusting only the given root, an account is made
//!    with a fresh ES256 key held in memory (RFC 8555 §7.3), and an order for the card's
//!    permanent identifier — its serial in decimal — is placed (§7.4); the order's
//!    authorization must offer device-attest-01. All this before the card is touched, so
//!    that an unreachable or unwilling server leaves the slot as it was.
//! 2. GENERATE in the slot (PIN and touch policies as asked, management key as for `piv
//!    generate`), ATTEST it and read the card's `F9` certificate.
//! 3. The card signs the challenge's key authorization (RFC 8555 §8.1) with the new key:
//!    ECDSA over its SHA-256 (COSE `-7`; a P-384 key signs the same digest, as step's
//!    verifier hashes with SHA-256 whatever the curve), RSASSA-PKCS1-v1_5 with SHA-256
//!    (`-257`), Ed25519 over the bytes (`-8`).
//! 4. `{"attObj": …}` with that signature and `x5c` = [slot attestation, `F9`
//!    certificate] goes to the challenge; the authorization is polled until valid.
//! 5. A PKCS#10 request signed by the card — subject `CN=<serial>` unless `--subject`
//!    says otherwise, no SANs: the authority puts the permanent identifier in the
//!    certificate — finalizes the order; the chain is downloaded (§7.4.2).
//! 6. The certificate must be for the generated key (and signed by the next certificate
//!    of the chain); then it is written to the slot.

use std::io::Write;

use keystation_acme_client::{BlockingAcmeClient, Challenge, CoseAlgorithm, Identifier};
use keystation_core::key::{HashAlgorithm, KeyAlgorithm, PublicKey};
use keystation_core::keygen::{PivSlot, SignInput, Signer as _};
use keystation_piv::PivCard;
use keystation_x509::{Certificate, CertificateOptions, DistinguishedName};
use sha2::{Digest as _, Sha256};

use super::{EnrollOptions, check_issued, describe, parse_subject, read_root};
use crate::{Error, Pin, authenticate, piv_err, slot_name, x509_err};

fn acme_err(what: impl Into<String>) -> impl FnOnce(keystation_acme_client::Error) -> Error {
    let what = what.into();
    move |source| Error::Acme { what, source: Box::new(source) }
}

/// The COSE algorithm the card's signature over the key authorization is made with, for
/// a key of `algorithm`; keys that cannot sign are refused before anything is done.
fn cose_algorithm(algorithm: KeyAlgorithm) -> Result<CoseAlgorithm, Error> {
    match algorithm {
        KeyAlgorithm::NistP256 | KeyAlgorithm::NistP384 => Ok(CoseAlgorithm::Es256),
        KeyAlgorithm::Rsa(_) => Ok(CoseAlgorithm::Rs256),
        KeyAlgorithm::Ed25519 => Ok(CoseAlgorithm::EdDsa),
        other => Err(Error::Usage(format!(
            "device-attest-01 needs a key that signs the key authorization, and a {other} \
             (X25519) key cannot sign: use p256, p384, rsa2048, rsa3072, rsa4096 or ed25519"
        ))),
    }
}

/// The card's signature over `key_authorization` with the key in `slot` (see the module
/// documentation, step 3).
fn sign_key_authorization(
    piv: &mut PivCard<'_>,
    slot: PivSlot,
    public: &PublicKey,
    key_authorization: &str,
) -> Result<Vec<u8>, Error> {
    let name = slot_name(slot);
    let digest = Sha256::digest(key_authorization.as_bytes());
    let failed = || format!("the card could not sign the key authorization with slot {name}");
    let signed = match public.algorithm() {
        KeyAlgorithm::NistP384 => {
            // The SHA-256 digest as the 48-byte integer the card signs: the same number,
            // so the signature verifies over SHA-256 (FIPS 186-5 §6.4.1: a hash shorter
            // than the order is used whole).
            let mut padded = [0u8; 48];
            padded[16..].copy_from_slice(&digest);
            return piv
                .sign_digest(slot, KeyAlgorithm::NistP384, &padded)
                .map_err(piv_err(failed()));
        }
        KeyAlgorithm::Ed25519 => {
            let mut signer = keystation_piv::PivSigner::new(piv, slot, public.clone());
            signer.sign(SignInput::Message(key_authorization.as_bytes()))
        }
        _ => {
            let mut signer = keystation_piv::PivSigner::new(piv, slot, public.clone());
            signer.sign(SignInput::Digest { hash: HashAlgorithm::Sha256, digest: &digest })
        }
    };
    signed.map_err(|e| Error::Usage(format!("{}: {e}", failed())))
}

/// Runs `piv enroll --acme` (see the module documentation).
pub(super) fn enroll(
    piv: &mut PivCard<'_>,
    args: &EnrollOptions,
    directory: &str,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let name = slot_name(args.slot);
    let alg = cose_algorithm(args.algorithm)?;
    let root = read_root(args)?;
    let subject = args.subject.as_deref().map(parse_subject).transpose()?;
    let serial =
        piv.serial().map_err(piv_err("cannot read the card's serial"))?.ok_or_else(|| {
            Error::Usage(
                "the card reports no serial: device-attest-01 names the card by its serial".into(),
            )
        })?;
    let identifier = Identifier::permanent_identifier(serial.to_string());

    let mut client = BlockingAcmeClient::connect(directory, &root).map_err(acme_err(format!(
        "the ACME server at {directory} is not reachable or has no usable directory"
    )))?;
    client.new_account(&[], true).map_err(acme_err("the ACME server refused a new account"))?;
    let order = client.new_order(std::slice::from_ref(&identifier)).map_err(acme_err(format!(
        "the ACME server refused an order for the card's serial {serial}"
    )))?;
    let mut authorization = None;
    for url in &order.authorizations {
        let found =
            client.authorization(url).map_err(acme_err("cannot read the order's authorization"))?;
        if found.identifier == identifier {
            authorization = Some(found);
            break;
        }
    }
    let authorization = authorization.ok_or_else(|| {
        Error::Usage(format!(
            "the ACME server's order has no authorization for permanent identifier {serial}"
        ))
    })?;
    let challenge = authorization.challenge(Challenge::DEVICE_ATTEST_01).ok_or_else(|| {
        let offered: Vec<&str> = authorization.challenges.iter().map(|c| c.kind.as_str()).collect();
        Error::Usage(format!(
            "the ACME server offers no device-attest-01 challenge for the card (offered: {}); \
             is {directory} an ACME provisioner with device-attest-01?",
            if offered.is_empty() { "none".to_owned() } else { offered.join(", ") }
        ))
    })?;
    let token = challenge.token.as_deref().ok_or_else(|| {
        Error::Usage("the ACME server's device-attest-01 challenge has no token".into())
    })?;
    let key_authorization = client
        .key_authorization(token)
        .map_err(acme_err("cannot compute the challenge's key authorization"))?;

    let mut pin = Pin::new(args.access.pin_file.clone());
    authenticate(piv, &args.access, &mut pin)?;
    let public = piv
        .generate(args.slot, args.algorithm, args.pin_policy, args.touch_policy)
        .map_err(piv_err(format!("cannot generate a key in slot {name}")))?;
    let slot_certificate =
        piv.attest(args.slot).map_err(piv_err(format!("the card cannot attest slot {name}")))?;
    let f9_certificate = piv
        .attestation_certificate()
        .map_err(piv_err("cannot read the attestation certificate (slot f9)"))?
        .ok_or_else(|| Error::Usage("the card has no attestation certificate in slot f9".into()))?;
    pin.verify(piv)?;
    let signature = sign_key_authorization(piv, args.slot, &public, &key_authorization)?;

    let refused_attestation = || {
        acme_err(format!(
            "the ACME server did not accept the attestation of slot {name} (device-attest-01 \
             for serial {serial}); the slot's certificate is unchanged"
        ))
    };
    client
        .respond_device_attest(&challenge.url, alg, &signature, &[slot_certificate, f9_certificate])
        .map_err(refused_attestation())?;
    client.poll_authorization(&authorization.url).map_err(refused_attestation())?;
    let order = client.poll_order(&order.url).map_err(acme_err(format!(
        "the ACME order for serial {serial} did not become ready; the slot's certificate is \
         unchanged"
    )))?;

    let subject = subject.unwrap_or_else(|| DistinguishedName::common_name(&serial.to_string()));
    let csr = {
        let mut signer = keystation_piv::PivSigner::new(piv, args.slot, public.clone());
        keystation_x509::build_csr(&mut signer, &subject, &CertificateOptions::default())
            .map_err(x509_err("the card could not sign the request"))?
    };
    let chain = client.finalize_and_download(&order, &csr).map_err(acme_err(format!(
        "the ACME server refused to certify slot {name}; the slot's certificate is unchanged"
    )))?;
    let issued = Certificate::from_der(chain.leaf())
        .map_err(x509_err("the ACME server's chain holds no usable certificate"))?;
    let issuer = chain
        .certificates
        .get(1)
        .map(|der| Certificate::from_der(der))
        .transpose()
        .map_err(x509_err("the ACME server's chain holds an unusable CA certificate"))?;
    let issued = check_issued(&issued, &public, issuer.as_ref(), &name)?;
    piv.write_certificate(args.slot, issued.der())
        .map_err(piv_err(format!("cannot write the certificate into slot {name}")))?;
    writeln!(
        out,
        "Enrolled slot {name} with {directory} (ACME device-attest-01, permanent identifier \
         {serial})"
    )?;
    describe(out, issued, &public)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_that_sign_have_their_cose_algorithm_and_x25519_is_refused() {
        assert_eq!(cose_algorithm(KeyAlgorithm::NistP256).ok(), Some(CoseAlgorithm::Es256));
        assert_eq!(cose_algorithm(KeyAlgorithm::NistP384).ok(), Some(CoseAlgorithm::Es256));
        assert_eq!(
            cose_algorithm(KeyAlgorithm::Rsa(keystation_core::key::RsaBits::Rsa2048)).ok(),
            Some(CoseAlgorithm::Rs256)
        );
        assert_eq!(cose_algorithm(KeyAlgorithm::Ed25519).ok(), Some(CoseAlgorithm::EdDsa));
        let refused = cose_algorithm(KeyAlgorithm::X25519);
        assert!(
            matches!(&refused, Err(Error::Usage(m)) if m.contains("cannot sign")),
            "{refused:?}"
        );
    }
}
