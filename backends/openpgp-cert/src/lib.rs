//! keystation-openpgp-cert: OpenPGP v4 certificates whose primary key is a card's
//! signature key, self-signed through keystation-core's [`Signer`] — so the card (or a
//! host key before import) makes every signature.
//!
//! [`Certificate::build`] writes the packets of RFC 4880 §11.1 — Public-Key, User ID,
//! positive certification (`13`), then a Public-Subkey with a subkey binding signature
//! (`18`) for the encryption and the authentication subkey — with the subpackets gpg
//! sets on its own keys, and gives the v4 fingerprints (RFC 4880 §12.2) that belong in the
//! card's C7/C8/C9 data objects, the key IDs, ASCII armor (§6) and the authentication key's
//! OpenSSH line. Algorithms: RSA (§5.5.2), ECDSA and ECDH on P-256 and P-384 (RFC 6637),
//! and the Curve25519 conventions gpg uses — EdDSA (22) with OID 1.3.6.1.4.1.11591.15.1
//! and ECDH (18) with OID 1.3.6.1.4.1.3029.1.5.1, both with `40`-prefixed points. ECDH
//! KDF parameters are gpg's defaults: SHA-256/AES-128 for Curve25519 and P-256,
//! SHA-384/AES-192 for P-384 (what gpg 2.2 writes, not RFC 6637's AES-256); they are
//! part of the fingerprint, and `tests/gpg_fingerprints.rs` checks them against keys gpg
//! generates. Signatures hash with SHA-256, or SHA-384 for P-384 keys (gpg refuses ECDSA
//! hashes shorter than the curve).
//!
//! [`sign_detached`] makes a binary-document signature as a card would, and
//! [`dearmor`] / [`parse_packets`] read armor and packet framing back; both are total
//! (every input gives a value or an error), for tests and fuzzing.
//!
//! With the `backup` feature, `Certificate::secret_backup` exports host-generated
//! secret keys as a passphrase-protected Transferable Secret Key (RFC 4880 §11.2: S2K
//! usage 254, iterated and salted SHA-256, AES-256 CFB, SHA-1 check) that `gpg --import`
//! accepts with the passphrase.
//!
//! # Why not rPGP
//!
//! The `pgp` crate (rPGP 0.21) can sign with an external key: its `SigningKey` trait
//! (`sign(&self, password, hash, data)`) can be implemented over a card, though over
//! `&self`, so a card signer would need interior mutability. It would be correct, but
//! it brings some sixty dependencies (every OpenPGP cipher, hash and curve). Measured
//! with release builds under this workspace's profile (fat LTO, one codegen unit,
//! stripped, abort on panic), a tiny binary that hashes its input was 335,840 bytes;
//! adding rPGP to parse, verify and re-armor a key made it 1,793,992 (+1,458,152, about
//! 1.4 MiB), while adding this crate to build, sign and armor a certificate and read it
//! back made it 414,352 (+78,512). What keystation needs is write-mostly and small —
//! three key packets, a User ID and three signatures — so it is written here on the
//! hashes the workspace already has, and gpg itself is the test oracle.
//! The `ssh-key` crate adds nothing either: core's `PublicKey::to_openssh` already
//! produces the line `gpg --export-ssh-key` prints.
//!
//! [`Signer`]: keystation_core::keygen::Signer

mod armor;
#[cfg(feature = "backup")]
mod backup;
mod cert;
mod packet;

pub use armor::{ArmorKind, armor, crc24, dearmor};
#[cfg(feature = "backup")]
pub use backup::{S2kCount, SecretKeys};
pub use cert::{
    CertKey, Certificate, CertificateParams, Fingerprint, KeyId, KeyRole, Subkey, fingerprint,
    sign_detached, user_id,
};
pub use packet::{Packet, parse_packets, tag};

use keystation_core::key::KeyAlgorithm;

/// Everything that can go wrong building or reading OpenPGP data here.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CertError {
    /// The key's algorithm cannot play this role (X25519 cannot sign, Ed25519 cannot
    /// encrypt).
    #[error("a {algorithm} key cannot be the {role} key")]
    UnsupportedKey {
        /// The role asked of it.
        role: KeyRole,
        /// The key's algorithm.
        algorithm: KeyAlgorithm,
    },
    /// The User ID is empty or contains control characters (a line break would break
    /// every tool that prints it).
    #[error("the User ID must be non-empty and free of control characters")]
    InvalidUserId,
    /// A self-signature would predate a key it covers, which gpg rejects.
    #[error("the signature time is before a key's creation time")]
    SignatureBeforeKey,
    /// The signer failed (card error, PIN not verified, …).
    #[error("signing failed: {0}")]
    Sign(#[source] keystation_core::Error),
    /// The signer returned something that is not a signature of its algorithm.
    #[error("the signer returned a malformed {0} signature")]
    MalformedSignature(KeyAlgorithm),
    /// The random source failed.
    #[error("random source: {0}")]
    Random(#[source] keystation_core::Error),
    /// A secret key that does not fit the certificate's key in the same position.
    #[error("a secret key does not match its certificate key")]
    SecretKeyMismatch,
    /// ASCII armor that cannot be read.
    #[error("invalid ASCII armor: {0}")]
    Armor(&'static str),
    /// Packet framing that cannot be read.
    #[error("malformed packet at byte {offset}: {reason}")]
    Packet {
        /// Where the packet starts.
        offset: usize,
        /// What is wrong.
        reason: &'static str,
    },
}
