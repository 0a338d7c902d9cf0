//! The [`KeyGen`] trait: make a key pair for a purpose, get back its public key and a
//! handle that signs with it.
//!
//! Two kinds of backend implement it. A card backend (OpenPGP, PIV) generates the key on
//! the card, where it stays; its handle signs by sending the card a command. A software
//! backend generates the key in host memory (for example RSA-4096 for cards too slow to
//! generate it themselves) and hands out the private key once, for import, inside a
//! zeroizing container.

use crate::error::Error;
use crate::key::{HashAlgorithm, KeyAlgorithm, PublicKey};
use crate::secret::SecretKey;

/// The three key slots of the OpenPGP card application, OpenPGP card 3.4 §4.4.3.x (the
/// control reference templates `B6`, `B8` and `A4` of §4.4.3.12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpenPgpKeySlot {
    /// Signature key (PSO: COMPUTE DIGITAL SIGNATURE), CRT `B6`.
    Signature,
    /// Decryption key (PSO: DECIPHER), CRT `B8`.
    Decryption,
    /// Authentication key (INTERNAL AUTHENTICATE; the SSH key), CRT `A4`.
    Authentication,
}

impl OpenPgpKeySlot {
    /// The control reference template tag that names this slot in GENERATE ASYMMETRIC
    /// KEY PAIR and in key import.
    pub const fn crt_tag(self) -> u8 {
        match self {
            Self::Signature => 0xB6,
            Self::Decryption => 0xB8,
            Self::Authentication => 0xA4,
        }
    }
}

/// PIV key slots, NIST SP 800-73-4 part 1 §3.1 and table 4b, plus Yubico's attestation
/// slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PivSlot {
    /// `9A` PIV Authentication: log-in and TLS client authentication (the kube proxy's
    /// slot).
    Authentication,
    /// `9C` Digital Signature: document and e-mail signing; PIN every use.
    Signature,
    /// `9D` Key Management: decryption and key agreement.
    KeyManagement,
    /// `9E` Card Authentication: physical access; usable without the PIN.
    CardAuthentication,
    /// `82`–`95` Retired Key Management keys 1–20.
    Retired(RetiredSlot),
    /// `F9` Yubico attestation key, which signs attestation certificates for the others.
    Attestation,
}

/// A retired key-management slot number, 1 through 20 (`82`–`95`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RetiredSlot(u8);

impl RetiredSlot {
    /// Retired slot `n` (1–20).
    pub const fn new(n: u8) -> Option<Self> {
        if n >= 1 && n <= 20 { Some(Self(n)) } else { None }
    }

    /// The slot's number, 1–20.
    pub const fn number(self) -> u8 {
        self.0
    }
}

impl PivSlot {
    /// The key reference byte used in P2 of GENERAL AUTHENTICATE and GENERATE.
    pub const fn key_reference(self) -> u8 {
        match self {
            Self::Authentication => 0x9A,
            Self::Signature => 0x9C,
            Self::KeyManagement => 0x9D,
            Self::CardAuthentication => 0x9E,
            Self::Retired(RetiredSlot(n)) => 0x81 + n,
            Self::Attestation => 0xF9,
        }
    }

    /// The slot with this key reference.
    pub const fn from_key_reference(reference: u8) -> Option<Self> {
        match reference {
            0x9A => Some(Self::Authentication),
            0x9C => Some(Self::Signature),
            0x9D => Some(Self::KeyManagement),
            0x9E => Some(Self::CardAuthentication),
            0x82..=0x95 => Some(Self::Retired(RetiredSlot(reference - 0x81))),
            0xF9 => Some(Self::Attestation),
            _ => None,
        }
    }
}

/// When the card asks for the PIN before using a key: the PIV key PIN policy (Yubico PIV
/// extension, ykman's `--pin-policy`; fixed at generation or import, cannot be changed
/// later). Not to be confused with an OpenPGP provisioning's PIN plan, which decides what
/// the card's PINs become.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PinPolicy {
    /// The slot's default (PIN once per session for 9A/9D, every use for 9C, never for 9E).
    #[default]
    Default,
    /// Never.
    Never,
    /// Once per session.
    Once,
    /// For every use.
    Always,
}

impl PinPolicy {
    /// Every policy, in the order ykman lists them.
    pub const ALL: [Self; 4] = [Self::Default, Self::Never, Self::Once, Self::Always];

    /// ykman's name: `default`, `never`, `once`, `always`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Default => "default",
            Self::Never => "never",
            Self::Once => "once",
            Self::Always => "always",
        }
    }
}

impl core::fmt::Display for PinPolicy {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

impl core::str::FromStr for PinPolicy {
    type Err = Error;

    /// Parses ykman's names, ignoring ASCII case.
    fn from_str(s: &str) -> Result<Self, Error> {
        by_name(&Self::ALL, Self::name, s, "PIN policy")
    }
}

/// Whether the card waits for a touch before using a key (Yubico extension). One type for
/// both applications, which spell it differently: OpenPGP keys take it from the user
/// interaction flag data objects (OpenPGP card 3.4 §4.1.3.6; ykman's `off`, `on`, `fixed`,
/// `cached`, `cached-fixed`), PIV keys at generation or import (ykman's `default`,
/// `never`, `always`, `cached`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TouchPolicy {
    /// The slot's default (PIV: never, except the attestation key; OpenPGP: what the card
    /// has).
    #[default]
    Default,
    /// Never (OpenPGP `off`).
    Never,
    /// Every use (OpenPGP `on`).
    Always,
    /// Once, then cached for 15 seconds.
    Cached,
    /// Every use, and the policy cannot be changed but by resetting the application
    /// (OpenPGP only).
    Fixed,
    /// Cached, and fixed (OpenPGP only).
    CachedFixed,
}

impl TouchPolicy {
    /// The policies an OpenPGP key can have, by their OpenPGP names.
    pub const OPENPGP: [Self; 5] =
        [Self::Never, Self::Always, Self::Fixed, Self::Cached, Self::CachedFixed];
    /// The policies a PIV key can have, by their PIV names.
    pub const PIV: [Self; 4] = [Self::Default, Self::Never, Self::Always, Self::Cached];

    /// The OpenPGP name (`ykman openpgp keys set-touch`, keystation's `--touch-policy`):
    /// `off`, `on`, `fixed`, `cached`, `cached-fixed`; `default` for [`Default`](Self::Default).
    pub const fn openpgp_name(self) -> &'static str {
        match self {
            Self::Default => "default",
            Self::Never => "off",
            Self::Always => "on",
            Self::Cached => "cached",
            Self::Fixed => "fixed",
            Self::CachedFixed => "cached-fixed",
        }
    }

    /// The PIV name (`ykman piv keys generate --touch-policy`): `default`, `never`,
    /// `always`, `cached`; the OpenPGP name for the two policies PIV lacks.
    pub const fn piv_name(self) -> &'static str {
        match self {
            Self::Default => "default",
            Self::Never => "never",
            Self::Always => "always",
            Self::Cached => "cached",
            Self::Fixed | Self::CachedFixed => self.openpgp_name(),
        }
    }

    /// Parses an OpenPGP name ([`openpgp_name`](Self::openpgp_name)), ignoring ASCII case.
    pub fn from_openpgp_name(name: &str) -> Result<Self, Error> {
        by_name(&Self::OPENPGP, Self::openpgp_name, name, "touch policy")
    }

    /// Parses a PIV name ([`piv_name`](Self::piv_name)), ignoring ASCII case.
    pub fn from_piv_name(name: &str) -> Result<Self, Error> {
        by_name(&Self::PIV, Self::piv_name, name, "touch policy")
    }
}

/// The one of `all` that `name_of` calls `name` (ASCII case ignored), or
/// [`Error::UnknownPolicy`] naming `what`.
fn by_name<T: Copy>(
    all: &[T],
    name_of: fn(T) -> &'static str,
    name: &str,
    what: &'static str,
) -> Result<T, Error> {
    all.iter()
        .copied()
        .find(|p| name_of(*p).eq_ignore_ascii_case(name))
        .ok_or_else(|| Error::UnknownPolicy { what, name: name.into() })
}

/// Where a private key was generated: the key origin of Yubico's PIV metadata (GET
/// METADATA tag `03`) and the choice a provisioning profile makes (`--key-location`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum KeyOrigin {
    /// Generated on the card (metadata `01`, "generated"): the private key never existed
    /// anywhere else, and only such keys can be attested.
    #[default]
    Card,
    /// Generated off the card and imported (metadata `02`, "imported"), e.g. in host
    /// memory, which is zeroized after the import.
    Host,
}

impl KeyOrigin {
    /// keystation's configuration name: `card` or `host`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Card => "card",
            Self::Host => "host",
        }
    }

    /// Parses [`name`](Self::name), ignoring ASCII case.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Card, Self::Host].into_iter().find(|o| o.name().eq_ignore_ascii_case(name))
    }
}

/// Where a key should live, and what it is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyPurpose {
    /// A key of the OpenPGP card application.
    OpenPgp(OpenPgpKeySlot),
    /// A key in a PIV slot.
    Piv(PivSlot),
}

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyRequest {
    /// The slot the key is for.
    pub purpose: KeyPurpose,
    /// The algorithm.
    pub algorithm: KeyAlgorithm,
    /// PIN policy (PIV; ignored by OpenPGP, where PW1 status byte rules).
    pub pin_policy: PinPolicy,
    /// Touch policy.
    pub touch_policy: TouchPolicy,
}

impl KeyRequest {
    /// A request with default policies.
    pub fn new(purpose: KeyPurpose, algorithm: KeyAlgorithm) -> Self {
        Self {
            purpose,
            algorithm,
            pin_policy: PinPolicy::Default,
            touch_policy: TouchPolicy::Default,
        }
    }
}

/// What a signature is made over.
#[derive(Debug, Clone, Copy)]
pub enum SignInput<'a> {
    /// A digest already computed with `hash` (RSA PKCS#1 v1.5 wraps it in a DigestInfo;
    /// ECDSA signs it as is).
    Digest {
        /// The hash that made `digest`.
        hash: HashAlgorithm,
        /// The digest, `hash.output_len()` bytes.
        digest: &'a [u8],
    },
    /// The whole message (EdDSA hashes internally, RFC 8032).
    Message(&'a [u8]),
}

/// Something that signs with one private key: the card holding it, or host memory.
pub trait Signer {
    /// The public key that verifies this signer's signatures.
    fn public_key(&self) -> &PublicKey;

    /// Signs `input` and returns the signature in the algorithm's usual encoding: the
    /// RSA signature as big-endian bytes of the modulus length; ECDSA as DER
    /// `Ecdsa-Sig-Value` (RFC 5480 §2.2.3 / RFC 3279 §2.2.3); Ed25519 as the 64 bytes of
    /// RFC 8032 §5.1.6.
    ///
    /// An input that does not fit the key (a digest of the wrong length, a message for
    /// ECDSA) is [`Error::InvalidSignInput`].
    fn sign(&mut self, input: SignInput<'_>) -> Result<Vec<u8>, Error>;
}

/// Where a generated private key is.
#[derive(Debug)]
#[non_exhaustive]
pub enum KeyLocation {
    /// On the card; it cannot be read out.
    OnCard,
    /// In host memory. This is the only copy: the caller imports it to the card and
    /// drops it (which zeroizes it). It is never written to disk or logged.
    Host(SecretKey),
}

/// A freshly generated key pair.
pub struct GeneratedKey<'a> {
    /// The public key.
    pub public: PublicKey,
    /// Where the private key is.
    pub location: KeyLocation,
    /// A handle that signs with the new key (for self-signatures and proof of
    /// possession). For on-card keys it borrows the card.
    pub signer: Box<dyn Signer + 'a>,
}

impl core::fmt::Debug for GeneratedKey<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("GeneratedKey")
            .field("public", &self.public)
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

/// A source of randomness for software key generation, injected so that tests and
/// fuzzing can be deterministic. Production backends use the operating system's CSPRNG.
pub trait RandomSource: Send {
    /// Fills `dest` with random bytes, or reports [`Error::RandomSourceFailed`].
    fn fill(&mut self, dest: &mut [u8]) -> Result<(), Error>;
}

/// Generates key pairs.
///
/// # Contract
///
/// * [`algorithms`](KeyGen::algorithms) lists exactly the algorithms `generate` accepts
///   (for a card: those its firmware supports, learned from the card).
/// * [`generate`](KeyGen::generate) replaces any key in the requested slot. On success it
///   returns the public key, where the private key lives, and a signer for it. On failure
///   the slot may be empty or hold a half-written key — the error says which step failed,
///   and callers re-run generation rather than use the slot.
/// * A request the backend cannot honour (algorithm, slot or policy) fails with
///   [`Error::UnsupportedAlgorithm`] or [`Error::UnsupportedPolicy`] *before* anything on
///   the card changes.
/// * Private key material never leaves the implementation except as
///   [`KeyLocation::Host`], never reaches a log, and is zeroized when dropped.
/// * Implementations are blocking (a card keygen can take seconds; software RSA-4096
///   about one); async callers run them on a blocking thread.
pub trait KeyGen {
    /// The algorithms this generator can produce.
    fn algorithms(&self) -> &[KeyAlgorithm];

    /// Generates a key pair as `request` describes.
    fn generate(&mut self, request: &KeyRequest) -> Result<GeneratedKey<'_>, Error>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn piv_key_references_round_trip() {
        for reference in 0u8..=255 {
            if let Some(slot) = PivSlot::from_key_reference(reference) {
                assert_eq!(slot.key_reference(), reference);
            }
        }
        assert_eq!(PivSlot::from_key_reference(0x82), RetiredSlot::new(1).map(PivSlot::Retired));
        assert_eq!(PivSlot::from_key_reference(0x95), RetiredSlot::new(20).map(PivSlot::Retired));
        assert_eq!(PivSlot::from_key_reference(0x96), None);
        assert_eq!(RetiredSlot::new(0), None);
        assert_eq!(RetiredSlot::new(21), None);
    }

    #[test]
    fn openpgp_crt_tags() {
        let tags =
            [OpenPgpKeySlot::Signature, OpenPgpKeySlot::Decryption, OpenPgpKeySlot::Authentication]
                .map(OpenPgpKeySlot::crt_tag);
        assert_eq!(tags, [0xB6, 0xB8, 0xA4]);
    }
}
