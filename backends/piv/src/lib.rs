//! keystation-piv: a client for the PIV card application (NIST SP 800-73-4 parts 1 and 2)
//! with Yubico's PIV extensions, over keystation-core's APDU layer.
//!
//! [`PivCard::select`] opens a session on any [`Card`](keystation_core::Card): it selects
//! the application (full AID, then the short one) and asks Yubico's GET VERSION, which a
//! standard PIV card does not know. Everything YubiKey-only (metadata, serial, import,
//! attestation, SET MANAGEMENT KEY, RESET) reports [`Error::Unsupported`] — or `None`
//! where absence is an answer — on other cards; the standard commands work everywhere.
//!
//! The session covers the PIN and PUK (SP 800-73-4 part 2 §3.2), the management key
//! (mutual authentication, 3DES and AES; ykman's PIN-protected key), on-card generation
//! and import with PIN and touch policies, certificates (with gzip), the private key
//! operations (ECDSA, raw RSA with [`pkcs1v15_digest_info`] and [`pss_encode`], Ed25519,
//! ECDH), attestation, metadata and reset. [`PivSigner`] and the
//! [`KeyGen`](keystation_core::KeyGen) implementation plug the card into
//! keystation-core's traits.
//!
//! The parsers ([`CertificateObject::parse`], [`Metadata::parse`], [`AdminData::parse`],
//! [`parse_public_key`]) are public and total: they never panic. PINs and keys travel in
//! zeroizing buffers and are never logged; each step is logged at `debug` level, and
//! [`PivCard::apdus_sent`] counts what went over the wire.
//!
//! ```
//! use keystation_core::key::{HashAlgorithm, KeyAlgorithm};
//! use keystation_core::keygen::{PinPolicy, PivSlot, TouchPolicy};
//! use keystation_core::SecretBytes;
//! use keystation_piv::{ManagementKey, PivCard};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut card = keystation_softcard::SoftCard::yubikey5(Default::default(), Some(1));
//! let mut piv = PivCard::select(&mut card)?;
//! piv.authenticate(&ManagementKey::factory_default())?;
//! let slot = PivSlot::Authentication;
//! let public =
//!     piv.generate(slot, KeyAlgorithm::NistP256, PinPolicy::Default, TouchPolicy::Default)?;
//! piv.verify_pin(&SecretBytes::copy_from(b"123456"))?;
//! let signature = piv.sign_digest(slot, public.algorithm(), &[0x5A; 32])?;
//! assert_eq!(signature[0], 0x30); // DER Ecdsa-Sig-Value
//! # let _ = HashAlgorithm::Sha256;
//! # Ok(()) }
//! ```

mod card;
mod data;
mod error;
mod padding;
mod signer;

pub use card::{PIV_AID, PIV_AID_SHORT, PivCard};
pub use data::{
    AdminData, CertificateObject, DEFAULT_MANAGEMENT_KEY, FirmwareVersion,
    MAX_DECOMPRESSED_CERTIFICATE, ManagementAlgorithm, ManagementKey, Metadata, PivAlgorithm,
    Retries, certificate_object_id, object, parse_public_key,
};
pub use error::{Error, Operation, PinKind};
pub use padding::{pkcs1v15_digest_info, pss_encode};
pub use signer::PivSigner;
