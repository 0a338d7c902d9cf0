//! keystation-x509: X.509 for keystation.
//!
//! * [`pem`]: RFC 7468 textual encoding, both ways.
//! * [`Certificate`]: a parsed certificate (RFC 5280 §4.1) reduced to what keystation
//!   needs: names as RFC 4514 strings, serial, validity, fingerprint, public key.
//! * [`DistinguishedName`]: names for building, parsed from `CN=x,O=y` strings.
//! * [`build_csr`], [`self_signed_certificate`], [`issue_certificate`]: PKCS#10 requests
//!   (RFC 2986) and certificates signed through keystation-core's
//!   [`Signer`](keystation_core::keygen::Signer), so the private key may stay on a card.
//! * [`verify_signed_by`], [`verify_csr`]: signature checks (RSA PKCS#1 v1.5 with
//!   SHA-2, ECDSA on P-256/P-384, Ed25519).
//! * [`private_key`]: PKCS#8, SEC1 and PKCS#1 private-key files into
//!   [`SecretKey`](keystation_core::SecretKey).
//! * [`attestation`]: YubiKey PIV attestation chains and Yubico's extensions.
//!
//! The ASN.1 types of the underlying crates never appear in this API: it takes and
//! returns DER as `Vec<u8>`/`&[u8]` and keystation's own types. Every parser is total: any
//! input gives a value or an [`Error`], never a panic.

pub mod attestation;
mod build;
mod certificate;
mod der;
mod error;
mod name;
pub mod pem;
pub mod private_key;
mod time;
mod verify;

pub use build::{
    CertificateOptions, ExtendedKeyUsage, OID_PERMANENT_IDENTIFIER, SubjectAltName, Validity,
    build_csr, issue_certificate, permanent_identifier_name, self_signed_certificate, sign_tbs,
    signature_algorithm_der,
};
pub use certificate::{Certificate, CertificateRequest, public_key_from_spki};
pub use error::Error;
pub use name::{DistinguishedName, NameAttribute};
pub use time::rfc3339;
pub use verify::{verify_csr, verify_signed_by};

/// This crate's result type.
pub type Result<T, E = Error> = core::result::Result<T, E>;
