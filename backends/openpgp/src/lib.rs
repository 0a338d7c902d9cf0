//! keystation-openpgp: a client for the OpenPGP card application, version 3.x
//! (OpenPGP Smart Card Application 3.4.1), over keystation-core's APDU layer.
//!
//! [`OpenPgpCard::select`] opens a session on any [`Card`](keystation_core::Card): it
//! selects the application and reads the application related data `6E` once (and the
//! algorithm information `FA` where the card has it). Everything after that is driven by
//! what the card announced — extended length, command chaining, changeable attributes,
//! the algorithms it lists, the retry counters, the user interaction flags — so the same
//! code works with YubiKeys, Nitrokeys, Gnuk and other 3.x cards.
//!
//! The session offers the factory reset of §7.2.16/§7.2.17, the PIN commands, algorithm
//! attributes, on-card generation, key import, the fingerprints, timestamps and
//! cardholder DOs, the touch policy, and the private key operations. [`CardSigner`] and
//! the [`KeyGen`](keystation_core::KeyGen) implementation plug the card into
//! keystation-core's traits.
//!
//! The session caches what it read and updates that cache with its own writes instead of
//! reading again; [`OpenPgpCard::apdus_sent`] counts what went over the wire. PINs and
//! private keys travel in zeroizing buffers and are never logged; each step is logged at
//! `debug` level.
//!
//! The parsers of card data ([`ApplicationRelatedData::parse`], [`KeyAttributes::parse`],
//! [`PwStatus::parse`], [`AlgorithmInformation::parse`], [`parse_public_key_template`], …)
//! are public and total: they never panic, whatever the input.
//!
//! ```
//! use keystation_core::key::KeyAlgorithm;
//! use keystation_core::keygen::{KeyPurpose, KeyRequest, OpenPgpKeySlot, SignInput};
//! use keystation_core::{KeyGen, SecretBytes};
//! use keystation_openpgp::{OpenPgpCard, PinRef};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut card = keystation_softcard::SoftCard::yubikey5(Default::default(), Some(1));
//! let mut pgp = OpenPgpCard::select(&mut card)?;
//! assert_eq!(pgp.manufacturer_name(), Some("Yubico"));
//! pgp.verify(PinRef::Pw3, &SecretBytes::copy_from(b"12345678"))?;
//! pgp.remember_user_pin(SecretBytes::copy_from(b"123456"))?;
//! let request =
//!     KeyRequest::new(KeyPurpose::OpenPgp(OpenPgpKeySlot::Signature), KeyAlgorithm::Ed25519);
//! let mut key = pgp.generate(&request)?;
//! let signature = key.signer.sign(SignInput::Message(b"self-signature"))?;
//! assert_eq!(signature.len(), 64);
//! # Ok(()) }
//! ```

mod card;
mod data;
mod error;
mod keys;
mod signer;

pub use card::{OPENPGP_AID_PREFIX, OpenPgpCard};
pub use data::{
    ALGO_ECDH, ALGO_ECDSA, ALGO_EDDSA, ALGO_RSA, Aid, AlgorithmInformation, ApplicationRelatedData,
    CardCapabilities, CardholderData, ExtendedCapabilities, ExtendedLengthInfo, HistoricalBytes,
    KeyAttributes, KeyStatus, OID_CURVE25519, OID_ED25519, OID_ED25519_RFC8410, OID_NIST_P256,
    OID_NIST_P384, OID_X25519_RFC8410, PwStatus, RSA_EXPONENT_BITS, Uif, UifDo,
    encode_cardholder_name, manufacturer_name, slot_index,
};
pub use error::{Error, Operation, PinRef};
pub use keys::{
    digest_info_prefix, ecdsa_signature_to_der, import_template, parse_public_key_template,
};
pub use signer::CardSigner;
