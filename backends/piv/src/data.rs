//! PIV data: algorithm identifiers, object identifiers, the management key, and the
//! public, total parsers of what the card returns (certificate objects, metadata, public
//! key templates, Yubico's ADMIN DATA).

use std::io::{Read, Write};

use keystation_core::key::{KeyAlgorithm, PublicKey, RsaBits};
use keystation_core::keygen::{KeyOrigin, PinPolicy, PivSlot, TouchPolicy};
use keystation_core::{SecretBytes, tlv};

use crate::error::Error;

/// Object identifiers (BER-TLV tags) of the PIV data objects, SP 800-73-4 part 1 table 3,
/// and Yubico's.
pub mod object {
    /// Card Capability Container.
    pub const CCC: u32 = 0x5F_C107;
    /// Card Holder Unique Identifier.
    pub const CHUID: u32 = 0x5F_C102;
    /// X.509 certificate for PIV Authentication (`9A`).
    pub const CERT_AUTHENTICATION: u32 = 0x5F_C105;
    /// X.509 certificate for Digital Signature (`9C`).
    pub const CERT_SIGNATURE: u32 = 0x5F_C10A;
    /// X.509 certificate for Key Management (`9D`).
    pub const CERT_KEY_MANAGEMENT: u32 = 0x5F_C10B;
    /// X.509 certificate for Card Authentication (`9E`).
    pub const CERT_CARD_AUTHENTICATION: u32 = 0x5F_C101;
    /// X.509 certificate for retired key management key 1 (`82`); key `n` is this + n − 1.
    pub const CERT_RETIRED_1: u32 = 0x5F_C10D;
    /// Printed Information (read needs the PIN). ykman keeps the PIN-protected
    /// management key here.
    pub const PRINTED: u32 = 0x5F_C109;
    /// Yubico ADMIN DATA (ykman's PIN-protected management key flags).
    pub const ADMIN_DATA: u32 = 0x5F_FF00;
    /// Yubico attestation certificate of the `F9` key.
    pub const ATTESTATION: u32 = 0x5F_FF01;
}

/// The data object holding the certificate of `slot` (SP 800-73-4 part 1 table 3 and
/// table 4b; Yubico's `5FFF01` for `F9`).
pub fn certificate_object_id(slot: PivSlot) -> u32 {
    match slot {
        PivSlot::Authentication => object::CERT_AUTHENTICATION,
        PivSlot::Signature => object::CERT_SIGNATURE,
        PivSlot::KeyManagement => object::CERT_KEY_MANAGEMENT,
        PivSlot::CardAuthentication => object::CERT_CARD_AUTHENTICATION,
        PivSlot::Retired(n) => object::CERT_RETIRED_1 + u32::from(n.number()) - 1,
        PivSlot::Attestation => object::ATTESTATION,
    }
}

/// The factory management key of YubiKeys and many PIV test cards.
pub const DEFAULT_MANAGEMENT_KEY: [u8; 24] =
    [1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8];

/// A firmware version, as Yubico's GET VERSION (`FD`) answers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FirmwareVersion(pub u8, pub u8, pub u8);

impl core::fmt::Display for FirmwareVersion {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// Algorithm identifiers of SP 800-78-4 table 6-2 and Yubico's additions, as GET
/// METADATA reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PivAlgorithm {
    /// 3DES (`03`), management key.
    TripleDes,
    /// AES-128 (`08`), management key.
    Aes128,
    /// AES-192 (`0A`), management key.
    Aes192,
    /// AES-256 (`0C`), management key.
    Aes256,
    /// RSA-1024 (`06`).
    Rsa1024,
    /// RSA-2048 (`07`).
    Rsa2048,
    /// RSA-3072 (`05`, YubiKey 5.7).
    Rsa3072,
    /// RSA-4096 (`16`, YubiKey 5.7).
    Rsa4096,
    /// ECC P-256 (`11`).
    EccP256,
    /// ECC P-384 (`14`).
    EccP384,
    /// Ed25519 (`E0`, YubiKey 5.7).
    Ed25519,
    /// X25519 (`E1`, YubiKey 5.7).
    X25519,
    /// PIN or PUK (`FF` in Yubico's metadata).
    Pin,
}

impl PivAlgorithm {
    /// The name ykman prints for it (`ECCP256`, `RSA2048`, `TDES`, …).
    pub const fn name(self) -> &'static str {
        match self {
            Self::TripleDes => "TDES",
            Self::Aes128 => "AES128",
            Self::Aes192 => "AES192",
            Self::Aes256 => "AES256",
            Self::Rsa1024 => "RSA1024",
            Self::Rsa2048 => "RSA2048",
            Self::Rsa3072 => "RSA3072",
            Self::Rsa4096 => "RSA4096",
            Self::EccP256 => "ECCP256",
            Self::EccP384 => "ECCP384",
            Self::Ed25519 => "ED25519",
            Self::X25519 => "X25519",
            Self::Pin => "PIN",
        }
    }

    /// The algorithm with identifier `id`.
    pub const fn from_id(id: u8) -> Option<Self> {
        Some(match id {
            0x03 => Self::TripleDes,
            0x08 => Self::Aes128,
            0x0A => Self::Aes192,
            0x0C => Self::Aes256,
            0x06 => Self::Rsa1024,
            0x07 => Self::Rsa2048,
            0x05 => Self::Rsa3072,
            0x16 => Self::Rsa4096,
            0x11 => Self::EccP256,
            0x14 => Self::EccP384,
            0xE0 => Self::Ed25519,
            0xE1 => Self::X25519,
            0xFF => Self::Pin,
            _ => return None,
        })
    }

    /// The identifier byte.
    pub const fn id(self) -> u8 {
        match self {
            Self::TripleDes => 0x03,
            Self::Aes128 => 0x08,
            Self::Aes192 => 0x0A,
            Self::Aes256 => 0x0C,
            Self::Rsa1024 => 0x06,
            Self::Rsa2048 => 0x07,
            Self::Rsa3072 => 0x05,
            Self::Rsa4096 => 0x16,
            Self::EccP256 => 0x11,
            Self::EccP384 => 0x14,
            Self::Ed25519 => 0xE0,
            Self::X25519 => 0xE1,
            Self::Pin => 0xFF,
        }
    }

    /// The identifier of an asymmetric key algorithm.
    pub const fn for_key(algorithm: KeyAlgorithm) -> Option<Self> {
        Some(match algorithm {
            KeyAlgorithm::Rsa(RsaBits::Rsa2048) => Self::Rsa2048,
            KeyAlgorithm::Rsa(RsaBits::Rsa3072) => Self::Rsa3072,
            KeyAlgorithm::Rsa(RsaBits::Rsa4096) => Self::Rsa4096,
            KeyAlgorithm::NistP256 => Self::EccP256,
            KeyAlgorithm::NistP384 => Self::EccP384,
            KeyAlgorithm::Ed25519 => Self::Ed25519,
            KeyAlgorithm::X25519 => Self::X25519,
            _ => return None,
        })
    }

    /// The asymmetric key algorithm, where keystation has one (not RSA-1024).
    pub const fn key_algorithm(self) -> Option<KeyAlgorithm> {
        Some(match self {
            Self::Rsa2048 => KeyAlgorithm::Rsa(RsaBits::Rsa2048),
            Self::Rsa3072 => KeyAlgorithm::Rsa(RsaBits::Rsa3072),
            Self::Rsa4096 => KeyAlgorithm::Rsa(RsaBits::Rsa4096),
            Self::EccP256 => KeyAlgorithm::NistP256,
            Self::EccP384 => KeyAlgorithm::NistP384,
            Self::Ed25519 => KeyAlgorithm::Ed25519,
            Self::X25519 => KeyAlgorithm::X25519,
            _ => return None,
        })
    }

    /// The management key algorithm, for symmetric identifiers.
    pub const fn management_algorithm(self) -> Option<ManagementAlgorithm> {
        Some(match self {
            Self::TripleDes => ManagementAlgorithm::TripleDes,
            Self::Aes128 => ManagementAlgorithm::Aes128,
            Self::Aes192 => ManagementAlgorithm::Aes192,
            Self::Aes256 => ManagementAlgorithm::Aes256,
            _ => return None,
        })
    }
}

/// Algorithms of the card application administration key `9B` (SP 800-78-4 table 6-2;
/// AES on YubiKeys from 5.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ManagementAlgorithm {
    /// Three-key 3DES (`03`), the factory algorithm before YubiKey 5.7.
    TripleDes,
    /// AES-128 (`08`).
    Aes128,
    /// AES-192 (`0A`), the factory algorithm from YubiKey 5.7.
    Aes192,
    /// AES-256 (`0C`).
    Aes256,
}

impl ManagementAlgorithm {
    /// The identifier byte (P1 of GENERAL AUTHENTICATE).
    pub const fn id(self) -> u8 {
        match self {
            Self::TripleDes => 0x03,
            Self::Aes128 => 0x08,
            Self::Aes192 => 0x0A,
            Self::Aes256 => 0x0C,
        }
    }

    /// Key length in bytes.
    pub const fn key_len(self) -> usize {
        match self {
            Self::TripleDes | Self::Aes192 => 24,
            Self::Aes128 => 16,
            Self::Aes256 => 32,
        }
    }

    /// Block (witness and challenge) length in bytes.
    pub const fn block_len(self) -> usize {
        match self {
            Self::TripleDes => 8,
            _ => 16,
        }
    }
}

/// A management key: its algorithm and its bytes (zeroized on drop).
#[derive(Clone)]
pub struct ManagementKey {
    /// The algorithm.
    pub algorithm: ManagementAlgorithm,
    /// The key, [`ManagementAlgorithm::key_len`] bytes.
    pub key: SecretBytes,
}

impl ManagementKey {
    /// A key of `algorithm`; the length must fit it.
    pub fn new(algorithm: ManagementAlgorithm, key: SecretBytes) -> Result<Self, Error> {
        if key.len() != algorithm.key_len() {
            return Err(Error::invalid("management key", "wrong length for its algorithm"));
        }
        Ok(Self { algorithm, key })
    }

    /// The factory default: 3DES `010203040506070801020304050607080102030405060708`.
    /// (YubiKey 5.7 ships the same bytes as AES-192;
    /// [`authenticate`](crate::PivCard::authenticate) takes the algorithm from the card's
    /// metadata.)
    pub fn factory_default() -> Self {
        Self {
            algorithm: ManagementAlgorithm::TripleDes,
            key: SecretBytes::copy_from(&DEFAULT_MANAGEMENT_KEY),
        }
    }

    /// Encrypts (`encrypt`) or decrypts one block in ECB mode, as the mutual
    /// authentication of SP 800-73-4 part 2 appendix A.1 needs.
    pub(crate) fn crypt(&self, block: &[u8], encrypt: bool) -> Result<SecretBytes, Error> {
        use aes::cipher::{Block, BlockDecrypt, BlockEncrypt, KeyInit};
        let bad = || Error::invalid("management key", "wrong length for its algorithm");
        if block.len() != self.algorithm.block_len() {
            return Err(Error::malformed("management key challenge", "wrong block length"));
        }
        let mut buf = zeroize::Zeroizing::new(block.to_vec());
        macro_rules! run {
            ($cipher:ty) => {{
                let cipher = <$cipher>::new_from_slice(self.key.expose()).map_err(|_| bad())?;
                let mut b = Block::<$cipher>::default();
                b.copy_from_slice(&buf);
                if encrypt {
                    cipher.encrypt_block(&mut b);
                } else {
                    cipher.decrypt_block(&mut b);
                }
                buf.copy_from_slice(&b);
                zeroize::Zeroize::zeroize(&mut b[..]);
            }};
        }
        match self.algorithm {
            ManagementAlgorithm::TripleDes => run!(des::TdesEde3),
            ManagementAlgorithm::Aes128 => run!(aes::Aes128),
            ManagementAlgorithm::Aes192 => run!(aes::Aes192),
            ManagementAlgorithm::Aes256 => run!(aes::Aes256),
        }
        Ok(SecretBytes::new(core::mem::take(&mut *buf)))
    }
}

impl core::fmt::Debug for ManagementKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ManagementKey").field("algorithm", &self.algorithm).finish_non_exhaustive()
    }
}

/// A retry counter (GET METADATA tag `06`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Retries {
    /// Tries after a correct entry.
    pub total: u8,
    /// Tries left now.
    pub remaining: u8,
}

/// What Yubico's GET METADATA (`F7`, firmware 5.3) tells about a key or a PIN.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Metadata {
    /// Tag `01`: the algorithm (the raw byte is in `algorithm_id`).
    pub algorithm: Option<PivAlgorithm>,
    /// Tag `01` as sent.
    pub algorithm_id: Option<u8>,
    /// Tag `02`, first byte.
    pub pin_policy: Option<PinPolicy>,
    /// Tag `02`, second byte.
    pub touch_policy: Option<TouchPolicy>,
    /// Tag `03`.
    pub origin: Option<KeyOrigin>,
    /// Tag `05`: whether the PIN, PUK or management key still has its factory value.
    pub default_value: Option<bool>,
    /// Tag `06`: the retry counter of the PIN or PUK.
    pub retries: Option<Retries>,
    /// Tag `04`: the public key, where keystation supports its algorithm.
    pub public_key: Option<PublicKey>,
}

/// PIN policy byte (Yubico: `00` default, `01` never, `02` once, `03` always).
pub(crate) const fn pin_policy_byte(policy: PinPolicy) -> u8 {
    match policy {
        PinPolicy::Default => 0,
        PinPolicy::Never => 1,
        PinPolicy::Once => 2,
        PinPolicy::Always => 3,
    }
}

/// Touch policy byte (Yubico: `00` default, `01` never, `02` always, `03` cached); `None`
/// for the policies only OpenPGP keys have (fixed, cached-fixed).
pub(crate) const fn touch_policy_byte(policy: TouchPolicy) -> Option<u8> {
    match policy {
        TouchPolicy::Default => Some(0),
        TouchPolicy::Never => Some(1),
        TouchPolicy::Always => Some(2),
        TouchPolicy::Cached => Some(3),
        TouchPolicy::Fixed | TouchPolicy::CachedFixed => None,
    }
}

impl Metadata {
    /// Parses the data of a GET METADATA response. Unknown tags are ignored; a broken
    /// TLV structure is an error. Never panics.
    pub fn parse(data: &[u8]) -> Result<Self, Error> {
        let mut out = Self::default();
        let mut public = None;
        for item in tlv::parse(data) {
            let item = item.map_err(|_| Error::malformed("metadata", "broken TLV structure"))?;
            let value = item.value();
            match (item.tag().0, value) {
                (0x01, [id]) => {
                    out.algorithm_id = Some(*id);
                    out.algorithm = PivAlgorithm::from_id(*id);
                }
                (0x02, [pin, touch, ..]) => {
                    out.pin_policy = match pin {
                        0 => Some(PinPolicy::Default),
                        1 => Some(PinPolicy::Never),
                        2 => Some(PinPolicy::Once),
                        3 => Some(PinPolicy::Always),
                        _ => None,
                    };
                    out.touch_policy = match touch {
                        0 => Some(TouchPolicy::Default),
                        1 => Some(TouchPolicy::Never),
                        2 => Some(TouchPolicy::Always),
                        3 => Some(TouchPolicy::Cached),
                        _ => None,
                    };
                }
                (0x03, [origin]) => {
                    out.origin = match origin {
                        1 => Some(KeyOrigin::Card),
                        2 => Some(KeyOrigin::Host),
                        _ => None,
                    };
                }
                (0x04, v) => public = Some(v),
                (0x05, [flag]) => out.default_value = Some(*flag != 0),
                (0x06, [total, remaining]) => {
                    out.retries = Some(Retries { total: *total, remaining: *remaining });
                }
                _ => {}
            }
        }
        if let (Some(value), Some(algorithm)) =
            (public, out.algorithm.and_then(PivAlgorithm::key_algorithm))
        {
            out.public_key = parse_public_key(algorithm, value).ok();
        }
        Ok(out)
    }
}

/// Parses the contents of a public key template `7F49` (SP 800-73-4 part 2 §3.3.2
/// table 10: `81` modulus and `82` exponent for RSA, `86` the point otherwise; Yubico
/// sends Ed25519 and X25519 keys as their 32 raw bytes in `86`). Accepts the template
/// with or without its `7F49` header. Never panics.
pub fn parse_public_key(algorithm: KeyAlgorithm, data: &[u8]) -> Result<PublicKey, Error> {
    let broken = || Error::malformed("public key template", "broken TLV structure");
    let inner = match tlv::find(data, 0x7F49).map_err(|_| broken())? {
        Some(inner) => inner,
        None => data,
    };
    let missing = || Error::malformed("public key template", "a required element is missing");
    let key = match algorithm {
        KeyAlgorithm::Rsa(_) => {
            let n = tlv::find(inner, 0x81).map_err(|_| broken())?.ok_or_else(missing)?;
            let e = tlv::find(inner, 0x82).map_err(|_| broken())?.ok_or_else(missing)?;
            PublicKey::rsa(n, e)?
        }
        _ => {
            let point = tlv::find(inner, 0x86).map_err(|_| broken())?.ok_or_else(missing)?;
            PublicKey::from_point(algorithm, point)?
        }
    };
    if key.algorithm() != algorithm {
        return Err(Error::malformed("public key template", "key size differs from the request"));
    }
    Ok(key)
}

/// Largest certificate a gzip-compressed object may expand to: far above any PIV
/// certificate (a YubiKey object holds 3 063 bytes), small enough to stop zip bombs.
pub const MAX_DECOMPRESSED_CERTIFICATE: usize = 64 * 1024;

/// A certificate data object (SP 800-73-4 part 1 §3.3: `70` certificate, `71` CertInfo,
/// `FE` error detection code).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateObject {
    /// The DER certificate (decompressed if it was stored compressed).
    pub certificate: Vec<u8>,
    /// Whether the object stored it gzip-compressed (CertInfo `01`).
    pub compressed: bool,
}

impl CertificateObject {
    /// Parses an object, given as the value of `53` or with its `53` header. A gzip
    /// certificate (CertInfo `01`) is decompressed, up to
    /// [`MAX_DECOMPRESSED_CERTIFICATE`] bytes. Never panics.
    pub fn parse(data: &[u8]) -> Result<Self, Error> {
        let broken = || Error::malformed("certificate object", "broken TLV structure");
        let body = if data.first() == Some(&0x53) {
            tlv::find(data, 0x53).map_err(|_| broken())?.unwrap_or_default()
        } else {
            data
        };
        let mut certificate = None;
        let mut info = 0u8;
        for item in tlv::parse(body) {
            let item = item.map_err(|_| broken())?;
            match item.tag().0 {
                0x70 if certificate.is_none() => certificate = Some(item.value()),
                0x71 => info = item.value().first().copied().unwrap_or(0),
                _ => {}
            }
        }
        let certificate = certificate
            .ok_or_else(|| Error::malformed("certificate object", "no certificate (70)"))?;
        match info {
            0x00 => Ok(Self { certificate: certificate.to_vec(), compressed: false }),
            0x01 => Ok(Self { certificate: gunzip(certificate)?, compressed: true }),
            _ => Err(Error::malformed("certificate object", "unknown CertInfo")),
        }
    }

    /// Encodes a certificate as the value of a certificate object (what goes inside
    /// `53`), gzip-compressed when `compress` is set.
    pub fn encode(certificate: &[u8], compress: bool) -> Result<Vec<u8>, Error> {
        let mut out = Vec::with_capacity(certificate.len() + 16);
        if compress {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            let zipped = encoder
                .write_all(certificate)
                .and_then(|()| encoder.finish())
                .map_err(|_| Error::invalid("certificate", "compression failed"))?;
            tlv::write(&mut out, 0x70, &zipped);
            tlv::write(&mut out, 0x71, &[0x01]);
        } else {
            tlv::write(&mut out, 0x70, certificate);
            tlv::write(&mut out, 0x71, &[0x00]);
        }
        tlv::write(&mut out, 0xFE, &[]);
        Ok(out)
    }
}

/// gzip decompression with an output bound.
fn gunzip(data: &[u8]) -> Result<Vec<u8>, Error> {
    let limit = MAX_DECOMPRESSED_CERTIFICATE as u64;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data)
        .take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|_| Error::malformed("certificate object", "corrupt gzip data"))?;
    if out.len() as u64 > limit {
        return Err(Error::malformed("certificate object", "decompressed certificate too large"));
    }
    Ok(out)
}

/// Yubico's ADMIN DATA object `5FFF00` as ykman writes it: `80 { 81 flags, [82 salt],
/// [83 PIN timestamp] }`. Flag `01`: the PUK is blocked (PIN-derived key); `02`: the
/// management key is stored in PRINTED (`5FC109`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AdminData {
    /// Tag `81`.
    pub flags: u8,
    /// Tag `82`, the salt of a PIN-derived management key (deprecated in ykman).
    pub salt: Option<Vec<u8>>,
    /// Tag `83`, when the PIN was last changed.
    pub pin_timestamp: Option<Vec<u8>>,
}

impl AdminData {
    /// Flag: the management key is stored in the PRINTED object.
    pub const MGMT_KEY_STORED: u8 = 0x02;
    /// Flag: the PUK is blocked.
    pub const PUK_BLOCKED: u8 = 0x01;

    /// Parses the value of `53`. Never panics.
    pub fn parse(data: &[u8]) -> Result<Self, Error> {
        let broken = || Error::malformed("ADMIN DATA", "broken TLV structure");
        let inner = tlv::find(data, 0x80)
            .map_err(|_| broken())?
            .ok_or_else(|| Error::malformed("ADMIN DATA", "no template (80)"))?;
        let mut out = Self::default();
        for item in tlv::parse(inner) {
            let item = item.map_err(|_| broken())?;
            match item.tag().0 {
                0x81 => out.flags = item.value().first().copied().unwrap_or(0),
                0x82 => out.salt = Some(item.value().to_vec()),
                0x83 => out.pin_timestamp = Some(item.value().to_vec()),
                _ => {}
            }
        }
        Ok(out)
    }

    /// Encodes as the value of `53`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        tlv::write_constructed(&mut out, 0x80, |o| {
            tlv::write(o, 0x81, &[self.flags]);
            if let Some(salt) = &self.salt {
                tlv::write(o, 0x82, salt);
            }
            if let Some(time) = &self.pin_timestamp {
                tlv::write(o, 0x83, time);
            }
        });
        out
    }
}

/// The PRINTED object's value holding a management key, as ykman writes it:
/// `88 { 89 key }`.
pub(crate) fn encode_printed_key(key: &[u8]) -> SecretBytes {
    let mut out = zeroize::Zeroizing::new(Vec::with_capacity(key.len() + 4));
    tlv::write_constructed(&mut out, 0x88, |o| tlv::write(o, 0x89, key));
    SecretBytes::new(core::mem::take(&mut *out))
}

/// The management key in a PRINTED object's value, if it holds one.
pub(crate) fn parse_printed_key(data: &[u8]) -> Option<SecretBytes> {
    let inner = tlv::find(data, 0x88).ok().flatten()?;
    let key = tlv::find(inner, 0x89).ok().flatten()?;
    Some(SecretBytes::copy_from(key))
}
