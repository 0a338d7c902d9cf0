//! `keystation piv enroll`: a key generated on the card, attested by the card, certified
//! by a keystation authority, and the certificate written to the slot — in one command.
//! The authority is asked in one of two ways ([`EnrollAuthority`]):
//!
//! **`--authority URL --provisioner NAME`**: keystation's `POST /1.0/sign-attested` with
//! a YubiKey attestation provisioner.
//!
//! 1. The authority is asked for its health first (`GET /health`, over TLS trusting only
//!    the given root), so that an unreachable authority stops the enrollment before the
//!    slot's key is replaced.
//! 2. GENERATE in the slot with the PIN and touch policies asked for (management key as
//!    for `piv generate`).
//! 3. ATTEST (`INS F9`) the new key and read the card's `F9` certificate (`5FFF01`):
//!    Yubico, "PIV attestation".
//! 4. A PKCS#10 request (RFC 2986) for the key, signed by the card (PIN as for `piv
//!    certificate request`), subject `CN=<card serial>` unless `--subject` says otherwise.
//! 5. `POST /1.0/sign-attested` with the request and both attestation certificates.
//! 6. The issued certificate must be for the generated key and signed by the returned
//!    CA certificate; then it is written to the slot.
//!
//! **`--acme DIRECTORY`**: ACME (RFC 8555) with device-attest-01 (draft-acme-device-attest,
//! step's `step` format), as step-ca's ACME provisioners offer it; see the `acme` module.
//!
//! A refusal leaves the slot's certificate as it was (the key is new by then: attesting
//! needs a key generated on the card).

use std::io::Write;
use std::path::PathBuf;

use keystation_core::key::{KeyAlgorithm, PublicKey};
use keystation_core::keygen::{PinPolicy, PivSlot, TouchPolicy};
use keystation_piv::PivCard;
use keystation_x509::{Certificate, CertificateOptions, DistinguishedName, ExtendedKeyUsage};

use crate::{Access, Error, Pin, authenticate, piv_err, read_file, slot_name, x509_err};

mod acme;

/// Which authority certifies the key, and how it is asked.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EnrollAuthority {
    /// A keystation authority's `POST /1.0/sign-attested` with a YubiKey attestation
    /// provisioner.
    SignAttested {
        /// The authority, `https://host[:port]`.
        url: String,
        /// The authority's YubiKey attestation provisioner.
        provisioner: String,
    },
    /// An ACME server's device-attest-01 (RFC 8555, draft-acme-device-attest): a keystation
    /// authority's (or step-ca's) ACME provisioner.
    Acme {
        /// The directory, `https://host[:port]/acme/{provisioner}/directory`.
        directory: String,
    },
}

/// What [`PivOperation::Enroll`](crate::PivOperation::Enroll) does.
#[derive(Debug, Clone)]
pub struct EnrollOptions {
    /// The authority and how it is asked.
    pub authority: EnrollAuthority,
    /// The authority's root certificate (PEM file): the only certificate trusted for its
    /// TLS connection.
    pub root: PathBuf,
    /// The slot.
    pub slot: PivSlot,
    /// The algorithm of the new key.
    pub algorithm: KeyAlgorithm,
    /// When the card asks for the PIN before using the key.
    pub pin_policy: PinPolicy,
    /// When the card waits for a touch before using the key.
    pub touch_policy: TouchPolicy,
    /// The request's subject (`CN=alice,O=team`, or a bare common name); `None`:
    /// `CN=<card serial>`, which the authority's certificate binds anyway.
    pub subject: Option<String>,
    /// PIN and management key.
    pub access: Access,
}

fn authority_err(what: impl Into<String>) -> impl FnOnce(keystation_ca_client::Error) -> Error {
    let what = what.into();
    move |source| Error::Authority { what, source }
}

/// A subject as `--subject` gives it: a distinguished name (`CN=alice,O=team`) or a bare
/// common name.
fn parse_subject(text: &str) -> Result<DistinguishedName, Error> {
    if text.contains('=') {
        DistinguishedName::parse(text).map_err(x509_err("bad --subject"))
    } else {
        Ok(DistinguishedName::common_name(text))
    }
}

/// The authority's root certificate, as text.
fn read_root(args: &EnrollOptions) -> Result<String, Error> {
    let root = read_file(&args.root)?;
    Ok(String::from_utf8_lossy(&root).into_owned())
}

/// Runs the enrollment on the selected PIV application.
pub(crate) fn enroll(
    piv: &mut PivCard<'_>,
    args: &EnrollOptions,
    out: &mut dyn Write,
) -> Result<(), Error> {
    match &args.authority {
        EnrollAuthority::SignAttested { url, provisioner } => {
            enroll_sign_attested(piv, args, url, provisioner, out)
        }
        EnrollAuthority::Acme { directory } => acme::enroll(piv, args, directory, out),
    }
}

/// `POST /1.0/sign-attested` (see the module documentation).
fn enroll_sign_attested(
    piv: &mut PivCard<'_>,
    args: &EnrollOptions,
    authority: &str,
    provisioner: &str,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let name = slot_name(args.slot);
    let root = read_root(args)?;
    let client = keystation_ca_client::BlockingCaClient::new(authority, &root)
        .map_err(authority_err("cannot use the authority"))?;
    let url = client.client().url().to_owned();
    client.health().map_err(authority_err(format!(
        "the authority at {url} is not reachable or not healthy"
    )))?;
    let subject = args.subject.as_deref().map(parse_subject).transpose()?;

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
    let subject = match subject {
        Some(subject) => subject,
        None => {
            let serial = piv
                .serial()
                .map_err(piv_err("cannot read the card's serial"))?
                .ok_or_else(|| {
                    Error::Usage(
                        "the card reports no serial: give the request's subject with --subject"
                            .into(),
                    )
                })?;
            DistinguishedName::common_name(&serial.to_string())
        }
    };

    pin.verify(piv)?;
    let csr = {
        let mut signer = keystation_piv::PivSigner::new(piv, args.slot, public.clone());
        let options = CertificateOptions {
            extended_key_usage: vec![ExtendedKeyUsage::ClientAuth],
            ..CertificateOptions::default()
        };
        keystation_x509::build_csr(&mut signer, &subject, &options)
            .map_err(x509_err("the card could not sign the request"))?
    };
    let pem = |der: &[u8], label: &str| keystation_x509::pem::encode(label, der);
    let signed = client
        .sign_attested(
            provisioner,
            &pem(&csr, "CERTIFICATE REQUEST"),
            &pem(&slot_certificate, "CERTIFICATE"),
            &pem(&f9_certificate, "CERTIFICATE"),
        )
        .map_err(authority_err(format!(
            "the authority refused to certify slot {name} (provisioner {provisioner:?}); the \
             slot's certificate is unchanged"
        )))?;

    let issued = Certificate::from_pem(&signed.crt)
        .map_err(x509_err("the authority's answer holds no usable certificate"))?;
    let ca = Certificate::from_pem(&signed.ca)
        .map_err(x509_err("the authority's answer holds no usable CA certificate"))?;
    let issued = check_issued(&issued, &public, Some(&ca), &name)?;
    piv.write_certificate(args.slot, issued.der())
        .map_err(piv_err(format!("cannot write the certificate into slot {name}")))?;
    writeln!(out, "Enrolled slot {name} with {url} (provisioner {provisioner})")?;
    describe(out, issued, &public)
}

/// The issued certificate must be for `public` (the key generated in the slot) and, when
/// the authority named its issuer, signed by it.
fn check_issued<'a>(
    issued: &'a Certificate,
    public: &PublicKey,
    issuer: Option<&Certificate>,
    name: &str,
) -> Result<&'a Certificate, Error> {
    let issued_key = issued.public_key().map_err(x509_err("the issued certificate's key"))?;
    if issued_key != *public {
        return Err(Error::Usage(format!(
            "the authority issued a certificate for another key than the one generated in slot \
             {name}; not written"
        )));
    }
    if let Some(issuer) = issuer {
        keystation_x509::verify_signed_by(issued.der(), issuer.der()).map_err(x509_err(
            "the issued certificate is not signed by the CA the authority named",
        ))?;
    }
    Ok(issued)
}

/// What `enroll` prints about the certificate written.
fn describe(out: &mut dyn Write, issued: &Certificate, public: &PublicKey) -> Result<(), Error> {
    writeln!(out, "  Subject:          {}", issued.subject())?;
    writeln!(out, "  Issuer:           {}", issued.issuer())?;
    writeln!(out, "  Serial:           {}", issued.serial_hex())?;
    writeln!(out, "  Not before:       {}", keystation_x509::rfc3339(issued.not_before()))?;
    writeln!(out, "  Not after:        {}", keystation_x509::rfc3339(issued.not_after()))?;
    writeln!(out, "  Key:              {}", public.algorithm())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn subjects_are_names_or_bare_common_names() {
        assert_eq!(parse_subject("alice").unwrap(), DistinguishedName::common_name("alice"));
        let full = parse_subject("CN=alice,O=team").unwrap();
        assert_eq!(full.attributes().len(), 2);
        assert!(parse_subject("XX=alice").is_err());
    }
}
