//! The data objects of the OpenPGP application (OpenPGP card 3.4.1 §4.4) and their
//! parsers.
//!
//! Every parser here is total: any input gives a value or an [`Error::Malformed`], never
//! a panic, so they can be fuzzed directly.

use keystation_core::key::{KeyAlgorithm, RsaBits};
use keystation_core::keygen::{OpenPgpKeySlot, TouchPolicy};
use keystation_core::tlv;

use crate::error::Error;

/// Algorithm ID of RSA in the attributes (RFC 4880 §9.1; §4.4.3.10).
pub const ALGO_RSA: u8 = 0x01;
/// Algorithm ID of ECDH (RFC 6637 §5).
pub const ALGO_ECDH: u8 = 0x12;
/// Algorithm ID of ECDSA (RFC 6637 §5).
pub const ALGO_ECDSA: u8 = 0x13;
/// Algorithm ID of EdDSA (RFC 4880bis; §4.4.3.10).
pub const ALGO_EDDSA: u8 = 0x16;

/// OID of NIST P-256, 1.2.840.10045.3.1.7 (§4.4.3.10 table).
pub const OID_NIST_P256: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];
/// OID of NIST P-384, 1.3.132.0.34.
pub const OID_NIST_P384: &[u8] = &[0x2B, 0x81, 0x04, 0x00, 0x22];
/// OID of Ed25519 as OpenPGP names it, 1.3.6.1.4.1.11591.15.1.
pub const OID_ED25519: &[u8] = &[0x2B, 0x06, 0x01, 0x04, 0x01, 0xDA, 0x47, 0x0F, 0x01];
/// OID of Curve25519 for ECDH as OpenPGP names it, 1.3.6.1.4.1.3029.1.5.1.
pub const OID_CURVE25519: &[u8] = &[0x2B, 0x06, 0x01, 0x04, 0x01, 0x97, 0x55, 0x01, 0x05, 0x01];
/// OID of Ed25519 in RFC 8410, 1.3.101.112 (some cards list it).
pub const OID_ED25519_RFC8410: &[u8] = &[0x2B, 0x65, 0x70];
/// OID of X25519 in RFC 8410, 1.3.101.110.
pub const OID_X25519_RFC8410: &[u8] = &[0x2B, 0x65, 0x6E];

/// The public exponent length keystation writes in RSA attributes: 17 bits, for
/// e = 65537 (§4.4.3.10).
pub const RSA_EXPONENT_BITS: u16 = 17;

/// Index 0, 1, 2 of a slot in the per-slot arrays (key reference − 1, §7.2.14).
pub const fn slot_index(slot: OpenPgpKeySlot) -> usize {
    match slot {
        OpenPgpKeySlot::Signature => 0,
        OpenPgpKeySlot::Decryption => 1,
        OpenPgpKeySlot::Authentication => 2,
    }
}

/// The three slots in key-reference order.
pub(crate) const SLOTS: [OpenPgpKeySlot; 3] =
    [OpenPgpKeySlot::Signature, OpenPgpKeySlot::Decryption, OpenPgpKeySlot::Authentication];

fn malformed(what: &'static str, tag: u16, reason: &'static str) -> Error {
    Error::malformed(what, tag, reason)
}

/// The application identifier `4F` (§4.2.1): RID `D2 76 00 01 24`, application `01`,
/// version, manufacturer, serial number, RFU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aid {
    /// The 16 bytes as the card sent them.
    pub bytes: [u8; 16],
}

impl Aid {
    /// Parses the 16-byte AID.
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        let bytes: [u8; 16] =
            bytes.try_into().map_err(|_| malformed("AID", 0x4F, "not 16 bytes"))?;
        if bytes[..6] != [0xD2, 0x76, 0x00, 0x01, 0x24, 0x01] {
            return Err(malformed("AID", 0x4F, "not an OpenPGP application identifier"));
        }
        Ok(Self { bytes })
    }

    /// Specification version (major, minor), e.g. (3, 4).
    pub fn version(&self) -> (u8, u8) {
        (self.bytes[6], self.bytes[7])
    }

    /// Manufacturer ID (§4.2.1; the registry is kept by the GnuPG project).
    pub fn manufacturer(&self) -> u16 {
        u16::from_be_bytes([self.bytes[8], self.bytes[9]])
    }

    /// The manufacturer's name, for the IDs keystation knows.
    pub fn manufacturer_name(&self) -> Option<&'static str> {
        manufacturer_name(self.manufacturer())
    }

    /// The serial number bytes (unique per manufacturer).
    pub fn serial_bytes(&self) -> [u8; 4] {
        [self.bytes[10], self.bytes[11], self.bytes[12], self.bytes[13]]
    }

    /// The serial number as a big-endian integer.
    pub fn serial(&self) -> u32 {
        u32::from_be_bytes(self.serial_bytes())
    }

    /// The serial number as gpg shows it: eight hex digits. Yubico writes the serial in
    /// BCD, so this is also the decimal number printed on a YubiKey.
    pub fn serial_string(&self) -> String {
        format!("{:08X}", self.serial())
    }
}

/// Names of the manufacturer IDs of §4.2.1 (the list GnuPG keeps).
pub fn manufacturer_name(id: u16) -> Option<&'static str> {
    Some(match id {
        0x0001 => "PPC Card Systems",
        0x0002 => "Prism",
        0x0003 => "OpenFortress",
        0x0004 => "Wewid",
        0x0005 => "ZeitControl",
        0x0006 => "Yubico",
        0x0007 => "OpenKMS",
        0x0008 => "LogoEmail",
        0x0009 => "Fidesmo",
        0x000A => "VivoKey",
        0x000B => "Feitian Technologies",
        0x000D => "Dangerous Things",
        0x000E => "Excelsecu",
        0x000F => "Nitrokey",
        0x002A => "Magrathea",
        0x0042 => "GnuPG e.V.",
        0x1337 => "Warsaw Hackerspace",
        0x2342 => "warpzone",
        0x4354 => "Confidential Technologies",
        0x5443 => "TIF-IT e.V.",
        0x63AF => "Trustica",
        0xBA53 => "c-base e.V.",
        0xBD0E => "Paranoidlabs",
        0xF1D0 => "CanoKeys",
        0xF517 => "FSIJ",
        0xF5EC => "F-Secure",
        0x0000 | 0xFFFF => "test card",
        _ => return None,
    })
}

/// What the historical bytes say about APDU transmission (ISO/IEC 7816-4 §8.1.1.2.7,
/// "card capabilities", third software function table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CardCapabilities {
    /// Command chaining supported.
    pub command_chaining: bool,
    /// Extended Lc and Le fields supported.
    pub extended_length: bool,
}

/// The historical bytes `5F52` (§4.4.3.2, ISO/IEC 7816-4 §8.1.1), also found in the ATR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoricalBytes {
    /// The bytes as the card sent them.
    pub raw: Vec<u8>,
    /// The card capabilities, when the bytes carry them (compact-TLV tag `7`).
    pub capabilities: Option<CardCapabilities>,
}

impl HistoricalBytes {
    /// Parses historical bytes with category indicator `00` (status in the last three
    /// bytes) or `80` (compact-TLV only). Other categories keep only the raw bytes.
    pub fn parse(bytes: &[u8]) -> Self {
        let body = match bytes {
            [0x00, rest @ ..] if rest.len() >= 3 => &rest[..rest.len() - 3],
            [0x80, rest @ ..] => rest,
            _ => &[],
        };
        let mut capabilities = None;
        let mut pos = 0;
        while let Some(&header) = body.get(pos) {
            let (tag, len) = (header >> 4, usize::from(header & 0x0F));
            let Some(value) = body.get(pos + 1..pos + 1 + len) else { break };
            if tag == 0x7
                && let Some(&third) = value.get(2)
            {
                capabilities = Some(CardCapabilities {
                    command_chaining: third & 0x80 != 0,
                    extended_length: third & 0x40 != 0,
                });
            }
            pos += 1 + len;
        }
        Self { raw: bytes.to_vec(), capabilities }
    }

    /// The historical bytes inside an ATR (ISO/IEC 7816-3 §8.2), parsed; `None` if the
    /// ATR is too short for what its format byte announces.
    pub fn from_atr(atr: &[u8]) -> Option<Self> {
        let (&t0, mut rest) = atr.get(1..)?.split_first()?;
        let historical = usize::from(t0 & 0x0F);
        let mut indicator = t0 >> 4;
        loop {
            let count = indicator.count_ones() as usize;
            let interface = rest.get(..count)?;
            rest = &rest[count..];
            if indicator & 0x8 == 0 {
                break;
            }
            // TDi is the last interface byte of this group; its high nibble says which
            // bytes of the next group follow.
            indicator = interface.last()? >> 4;
        }
        Some(Self::parse(rest.get(..historical)?))
    }
}

/// Extended length information `7F66` (§4.1.3.1): the longest command and response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtendedLengthInfo {
    /// Maximum number of bytes in a command APDU.
    pub max_command: u16,
    /// Maximum number of bytes in a response APDU.
    pub max_response: u16,
}

impl ExtendedLengthInfo {
    /// Parses the value of `7F66`: two `02` objects.
    pub fn parse(value: &[u8]) -> Result<Self, Error> {
        let bad = || malformed("extended length information", 0x7F66, "expected two 02 objects");
        let mut numbers = tlv::parse(value).filter_map(Result::ok).filter(|t| t.tag().0 == 0x02);
        let mut next = || -> Result<u16, Error> {
            match numbers.next().map(|t| t.value()) {
                Some([hi, lo]) => Ok(u16::from_be_bytes([*hi, *lo])),
                Some([lo]) => Ok(u16::from(*lo)),
                _ => Err(bad()),
            }
        };
        Ok(Self { max_command: next()?, max_response: next()? })
    }
}

/// Extended capabilities `C0` (§4.4.3.7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtendedCapabilities {
    /// The bytes as the card sent them.
    pub raw: Vec<u8>,
}

impl ExtendedCapabilities {
    /// Parses `C0` (at least the flags byte).
    pub fn parse(value: &[u8]) -> Result<Self, Error> {
        if value.is_empty() {
            return Err(malformed("extended capabilities", 0xC0, "empty"));
        }
        Ok(Self { raw: value.to_vec() })
    }

    fn flag(&self, bit: u8) -> bool {
        self.raw.first().is_some_and(|b| b & bit != 0)
    }

    fn u16_at(&self, at: usize) -> Option<u16> {
        Some(u16::from_be_bytes([*self.raw.get(at)?, *self.raw.get(at + 1)?]))
    }

    /// Secure messaging supported.
    pub fn secure_messaging(&self) -> bool {
        self.flag(0x80)
    }
    /// GET CHALLENGE supported.
    pub fn get_challenge(&self) -> bool {
        self.flag(0x40)
    }
    /// Key import supported (§4.4.3.12).
    pub fn key_import(&self) -> bool {
        self.flag(0x20)
    }
    /// PW status changeable (PUT DATA `C4`).
    pub fn pw_status_changeable(&self) -> bool {
        self.flag(0x10)
    }
    /// Private use DOs `0101`–`0104` supported.
    pub fn private_use_dos(&self) -> bool {
        self.flag(0x08)
    }
    /// Algorithm attributes changeable with PUT DATA (`C1`–`C3`).
    pub fn algorithm_attributes_changeable(&self) -> bool {
        self.flag(0x04)
    }
    /// PSO:DECIPHER/ENCIPHER with AES supported.
    pub fn aes(&self) -> bool {
        self.flag(0x02)
    }
    /// Key derivation function (KDF-DO `F9`) supported.
    pub fn kdf(&self) -> bool {
        self.flag(0x01)
    }
    /// Longest GET CHALLENGE answer.
    pub fn max_challenge(&self) -> Option<u16> {
        self.u16_at(2)
    }
    /// Longest cardholder certificate.
    pub fn max_certificate(&self) -> Option<u16> {
        self.u16_at(4)
    }
    /// Longest special DO (private use, login data, URL, …) in version 3.x.
    pub fn max_special_do(&self) -> Option<u16> {
        self.u16_at(6)
    }
}

/// Algorithm attributes `C1`–`C3` (§4.4.3.10).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KeyAttributes {
    /// RSA.
    Rsa {
        /// Modulus length in bits.
        modulus_bits: u16,
        /// Public exponent length in bits.
        exponent_bits: u16,
        /// Private key import format: `00` standard (e, p, q), `01` standard with
        /// modulus, `02` CRT, `03` CRT with modulus.
        import_format: u8,
    },
    /// ECDSA, ECDH or EdDSA on a curve named by its OID.
    Ecc {
        /// Algorithm ID: [`ALGO_ECDH`], [`ALGO_ECDSA`], [`ALGO_EDDSA`].
        algorithm_id: u8,
        /// The curve OID (DER contents, without tag and length).
        oid: Vec<u8>,
        /// `true` when the import format byte `FF` asks for the public key with the
        /// private key.
        with_public_key: bool,
    },
    /// Anything else, kept as the card sent it.
    Other(Vec<u8>),
}

impl KeyAttributes {
    /// Parses attributes. Unknown algorithm IDs are kept as [`KeyAttributes::Other`];
    /// only empty input and truncated RSA attributes are errors.
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        let what = "algorithm attributes";
        let Some((&id, rest)) = bytes.split_first() else {
            return Err(malformed(what, 0xC1, "empty"));
        };
        match id {
            ALGO_RSA => match rest {
                [nh, nl, eh, el, format @ ..] if format.len() <= 1 => Ok(Self::Rsa {
                    modulus_bits: u16::from_be_bytes([*nh, *nl]),
                    exponent_bits: u16::from_be_bytes([*eh, *el]),
                    import_format: format.first().copied().unwrap_or(0),
                }),
                _ => Err(malformed(what, 0xC1, "RSA attributes of the wrong length")),
            },
            ALGO_ECDH | ALGO_ECDSA | ALGO_EDDSA => {
                // An OID's last byte never has bit 8 set, so a trailing FF is the import
                // format byte.
                let (oid, with_public_key) = match rest.strip_suffix(&[0xFF]) {
                    Some(oid) => (oid, true),
                    None => (rest, false),
                };
                if oid.is_empty() {
                    return Err(malformed(what, 0xC1, "ECC attributes without an OID"));
                }
                Ok(Self::Ecc { algorithm_id: id, oid: oid.to_vec(), with_public_key })
            }
            _ => Ok(Self::Other(bytes.to_vec())),
        }
    }

    /// The encoding for PUT DATA `C1`–`C3`.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Self::Rsa { modulus_bits, exponent_bits, import_format } => {
                let [nh, nl] = modulus_bits.to_be_bytes();
                let [eh, el] = exponent_bits.to_be_bytes();
                vec![ALGO_RSA, nh, nl, eh, el, *import_format]
            }
            Self::Ecc { algorithm_id, oid, with_public_key } => {
                let mut out = Vec::with_capacity(oid.len() + 2);
                out.push(*algorithm_id);
                out.extend_from_slice(oid);
                if *with_public_key {
                    out.push(0xFF);
                }
                out
            }
            Self::Other(raw) => raw.clone(),
        }
    }

    /// The attributes keystation writes for `algorithm` in `slot`: RSA with a 17-bit
    /// exponent and the standard (e, p, q) import format; ECDSA on NIST curves and
    /// EdDSA on Ed25519 for the signature and authentication keys; ECDH on NIST curves
    /// and Curve25519 for the decryption key. `None` when the slot cannot hold the
    /// algorithm (X25519 cannot sign; Ed25519 cannot decrypt).
    pub fn for_algorithm(slot: OpenPgpKeySlot, algorithm: KeyAlgorithm) -> Option<Self> {
        let decryption = slot == OpenPgpKeySlot::Decryption;
        let ecc = |algorithm_id: u8, oid: &[u8]| {
            Some(Self::Ecc { algorithm_id, oid: oid.to_vec(), with_public_key: false })
        };
        let nist = if decryption { ALGO_ECDH } else { ALGO_ECDSA };
        match algorithm {
            KeyAlgorithm::Rsa(bits) => Some(Self::Rsa {
                modulus_bits: bits.bits(),
                exponent_bits: RSA_EXPONENT_BITS,
                import_format: 0,
            }),
            KeyAlgorithm::NistP256 => ecc(nist, OID_NIST_P256),
            KeyAlgorithm::NistP384 => ecc(nist, OID_NIST_P384),
            KeyAlgorithm::Ed25519 if !decryption => ecc(ALGO_EDDSA, OID_ED25519),
            KeyAlgorithm::X25519 if decryption => ecc(ALGO_ECDH, OID_CURVE25519),
            _ => None,
        }
    }

    /// The keystation algorithm these attributes select, if it is one keystation knows
    /// (RSA 2048/3072/4096; ECDSA/ECDH on P-256 and P-384; EdDSA on Ed25519; ECDH on
    /// Curve25519).
    pub fn key_algorithm(&self) -> Option<KeyAlgorithm> {
        match self {
            Self::Rsa { modulus_bits, .. } => {
                RsaBits::from_bits(*modulus_bits).map(KeyAlgorithm::Rsa)
            }
            Self::Ecc { algorithm_id, oid, .. } => {
                let oid = oid.as_slice();
                match *algorithm_id {
                    ALGO_ECDSA | ALGO_ECDH if oid == OID_NIST_P256 => Some(KeyAlgorithm::NistP256),
                    ALGO_ECDSA | ALGO_ECDH if oid == OID_NIST_P384 => Some(KeyAlgorithm::NistP384),
                    ALGO_EDDSA if oid == OID_ED25519 || oid == OID_ED25519_RFC8410 => {
                        Some(KeyAlgorithm::Ed25519)
                    }
                    ALGO_ECDH if oid == OID_CURVE25519 || oid == OID_X25519_RFC8410 => {
                        Some(KeyAlgorithm::X25519)
                    }
                    _ => None,
                }
            }
            Self::Other(_) => None,
        }
    }

    /// Whether `self` and `other` select the same key type (algorithm ID, size or curve),
    /// whatever their import formats.
    pub fn same_key_type(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Rsa { modulus_bits: a, .. }, Self::Rsa { modulus_bits: b, .. }) => a == b,
            (
                Self::Ecc { algorithm_id: a, oid: x, .. },
                Self::Ecc { algorithm_id: b, oid: y, .. },
            ) => a == b && x == y,
            (a, b) => a == b,
        }
    }
}

/// PW status bytes `C4` (§4.4.3.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PwStatus {
    /// `true`: PW1 stays valid for several PSO:CDS; `false`: one signature per VERIFY.
    pub pw1_valid_for_several_signatures: bool,
    /// Longest PW1 (bits 1–7 of byte 2).
    pub pw1_max_len: u8,
    /// Whether PW1 is expected in PIN block format 2 (bit 8 of byte 2).
    pub pin_block_2_format: bool,
    /// Longest resetting code.
    pub rc_max_len: u8,
    /// Longest PW3 (bits 1–7 of byte 4).
    pub pw3_max_len: u8,
    /// PW1 tries left.
    pub pw1_retries: u8,
    /// Resetting code tries left (0 when it is not set).
    pub rc_retries: u8,
    /// PW3 tries left.
    pub pw3_retries: u8,
}

impl PwStatus {
    /// Parses the seven PW status bytes.
    pub fn parse(value: &[u8]) -> Result<Self, Error> {
        let &[validity, pw1_len, rc_len, pw3_len, pw1, rc, pw3, ..] = value else {
            return Err(malformed("PW status bytes", 0xC4, "fewer than 7 bytes"));
        };
        Ok(Self {
            pw1_valid_for_several_signatures: validity != 0,
            pw1_max_len: pw1_len & 0x7F,
            pin_block_2_format: pw1_len & 0x80 != 0,
            rc_max_len: rc_len,
            pw3_max_len: pw3_len & 0x7F,
            pw1_retries: pw1,
            rc_retries: rc,
            pw3_retries: pw3,
        })
    }
}

/// User interaction flag (`D6`–`D8`, §4.4.3.6 of 3.4.1; the touch policy of YubiKeys).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Uif {
    /// `00`: no touch needed.
    Off,
    /// `01`: touch for every use.
    On,
    /// `02`: touch for every use, and the flag cannot be changed but by a reset.
    Fixed,
    /// `03`: touch, then cached for 15 seconds (Yubico).
    Cached,
    /// `04`: cached, and fixed (Yubico).
    CachedFixed,
    /// A value keystation does not know.
    Other(u8),
}

impl Uif {
    /// The flag a touch policy asks for; `None` for [`TouchPolicy::Default`], "leave it as
    /// it is".
    pub const fn from_touch_policy(policy: TouchPolicy) -> Option<Self> {
        match policy {
            TouchPolicy::Default => None,
            TouchPolicy::Never => Some(Self::Off),
            TouchPolicy::Always => Some(Self::On),
            TouchPolicy::Cached => Some(Self::Cached),
            TouchPolicy::Fixed => Some(Self::Fixed),
            TouchPolicy::CachedFixed => Some(Self::CachedFixed),
        }
    }

    /// The flag byte.
    pub const fn to_byte(self) -> u8 {
        match self {
            Self::Off => 0,
            Self::On => 1,
            Self::Fixed => 2,
            Self::Cached => 3,
            Self::CachedFixed => 4,
            Self::Other(b) => b,
        }
    }

    /// The flag of a byte.
    pub const fn from_byte(byte: u8) -> Self {
        match byte {
            0 => Self::Off,
            1 => Self::On,
            2 => Self::Fixed,
            3 => Self::Cached,
            4 => Self::CachedFixed,
            other => Self::Other(other),
        }
    }
}

/// A user interaction flag DO: the flag and the "additional hardware" byte (§4.4.3.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UifDo {
    /// The flag.
    pub flag: Uif,
    /// The second byte as read (`20` = button), written back unchanged.
    pub feature: Option<u8>,
}

impl UifDo {
    /// Parses `D6`–`D8` (one or two bytes).
    pub fn parse(value: &[u8]) -> Result<Self, Error> {
        match value {
            [flag] => Ok(Self { flag: Uif::from_byte(*flag), feature: None }),
            [flag, feature, ..] => {
                Ok(Self { flag: Uif::from_byte(*flag), feature: Some(*feature) })
            }
            [] => Err(malformed("user interaction flag", 0xD6, "empty")),
        }
    }
}

/// Key status from the key information DO `DE` (§4.4.3.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStatus {
    /// `00`: no key.
    None,
    /// `01`: generated on the card.
    Generated,
    /// `02`: imported.
    Imported,
    /// Another value.
    Other(u8),
}

impl KeyStatus {
    fn from_byte(byte: u8) -> Self {
        match byte {
            0 => Self::None,
            1 => Self::Generated,
            2 => Self::Imported,
            other => Self::Other(other),
        }
    }
}

/// Application related data `6E` (§4.4.3.1), everything a client needs to know about
/// the card, read once after SELECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplicationRelatedData {
    /// Application identifier `4F`.
    pub aid: Aid,
    /// Historical bytes `5F52`.
    pub historical_bytes: Option<HistoricalBytes>,
    /// Extended length information `7F66`.
    pub extended_length: Option<ExtendedLengthInfo>,
    /// General feature management `7F74` (byte of `81`: bit 6 = button).
    pub general_feature_management: Option<u8>,
    /// Extended capabilities `C0`.
    pub extended_capabilities: ExtendedCapabilities,
    /// Algorithm attributes `C1`, `C2`, `C3`.
    pub key_attributes: [KeyAttributes; 3],
    /// PW status bytes `C4`.
    pub pw_status: PwStatus,
    /// Fingerprints `C5` (`None` where the card holds zeros).
    pub fingerprints: [Option<[u8; 20]>; 3],
    /// CA fingerprints `C6`.
    pub ca_fingerprints: [Option<[u8; 20]>; 3],
    /// Key generation times `CD`, seconds since 1970 (`None` where zero).
    pub generation_times: [Option<u32>; 3],
    /// Key information `DE`, per slot.
    pub key_status: [Option<KeyStatus>; 3],
    /// User interaction flags `D6`, `D7`, `D8`, where the card has them.
    pub uif: [Option<UifDo>; 3],
}

impl ApplicationRelatedData {
    /// Parses the response to GET DATA `6E`: the `6E` object itself or its contents.
    /// The discretionary DOs are found inside `73` or, on cards that omit it, at the top
    /// level.
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        let what = "application related data";
        let bad_tlv = |_| malformed(what, 0x6E, "broken BER-TLV");
        let mut body = bytes;
        if let Some(Ok(first)) = tlv::parse(bytes).next()
            && first.tag().0 == 0x6E
        {
            body = first.value();
        }
        // Flatten 6E and 73 into one list of (tag, value).
        let mut objects: Vec<(u32, &[u8])> = Vec::with_capacity(24);
        for item in tlv::parse(body) {
            let item = item.map_err(bad_tlv)?;
            if item.tag().0 == 0x73 {
                for inner in item.children() {
                    let inner = inner.map_err(bad_tlv)?;
                    objects.push((inner.tag().0, inner.value()));
                }
            } else {
                objects.push((item.tag().0, item.value()));
            }
        }
        let find = |tag: u32| objects.iter().find(|(t, _)| *t == tag).map(|(_, v)| *v);
        let require = |tag: u32, name: &'static str| {
            find(tag).ok_or_else(|| malformed(what, tag as u16, name))
        };

        let aid = Aid::parse(require(0x4F, "no AID (4F)")?)?;
        let historical_bytes = find(0x5F52).map(HistoricalBytes::parse);
        let extended_length = find(0x7F66).map(ExtendedLengthInfo::parse).transpose()?;
        let general_feature_management = find(0x7F74)
            .and_then(|v| tlv::find(v, 0x81).ok().flatten())
            .and_then(|v| v.first().copied());
        let extended_capabilities =
            ExtendedCapabilities::parse(require(0xC0, "no extended capabilities (C0)")?)?;
        let key_attributes = [
            KeyAttributes::parse(require(0xC1, "no signature key attributes (C1)")?)?,
            KeyAttributes::parse(require(0xC2, "no decryption key attributes (C2)")?)?,
            KeyAttributes::parse(require(0xC3, "no authentication key attributes (C3)")?)?,
        ];
        let pw_status = PwStatus::parse(require(0xC4, "no PW status bytes (C4)")?)?;
        let fingerprints = fingerprints_of(find(0xC5));
        let ca_fingerprints = fingerprints_of(find(0xC6));
        let mut generation_times = [None; 3];
        if let Some(times) = find(0xCD) {
            for (slot, chunk) in generation_times.iter_mut().zip(times.chunks_exact(4)) {
                let time = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
                *slot = (time != 0).then_some(time);
            }
        }
        let mut key_status = [None; 3];
        if let Some(info) = find(0xDE) {
            for pair in info.chunks_exact(2) {
                if let Some(slot) =
                    usize::from(pair[0]).checked_sub(1).and_then(|i| key_status.get_mut(i))
                {
                    *slot = Some(KeyStatus::from_byte(pair[1]));
                }
            }
        }
        let mut uif = [None; 3];
        for (i, entry) in uif.iter_mut().enumerate() {
            if let Some(value) = find(0xD6 + i as u32) {
                *entry = Some(UifDo::parse(value)?);
            }
        }
        Ok(Self {
            aid,
            historical_bytes,
            extended_length,
            general_feature_management,
            extended_capabilities,
            key_attributes,
            pw_status,
            fingerprints,
            ca_fingerprints,
            generation_times,
            key_status,
            uif,
        })
    }

    /// The card capabilities from the historical bytes.
    pub fn card_capabilities(&self) -> Option<CardCapabilities> {
        self.historical_bytes.as_ref().and_then(|h| h.capabilities)
    }
}

/// Splits 60 bytes into three 20-byte fingerprints; all-zero ones are absent.
fn fingerprints_of(value: Option<&[u8]>) -> [Option<[u8; 20]>; 3] {
    let mut out = [None; 3];
    if let Some(value) = value {
        for (slot, chunk) in out.iter_mut().zip(value.chunks_exact(20)) {
            if chunk.iter().any(|&b| b != 0) {
                let mut fp = [0u8; 20];
                fp.copy_from_slice(chunk);
                *slot = Some(fp);
            }
        }
    }
    out
}

/// Algorithm information `FA` (§4.4.3.11): the attributes each slot accepts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AlgorithmInformation {
    /// (tag, attributes): tag `C1`–`C3` for the key slots (`DA` for an attestation key
    /// on YubiKeys).
    pub entries: Vec<(u8, KeyAttributes)>,
}

impl AlgorithmInformation {
    /// Parses the response to GET DATA `FA` (with or without the `FA` wrapper).
    /// Entries whose attributes do not parse are skipped.
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        let bad = |_| malformed("algorithm information", 0xFA, "broken BER-TLV");
        let mut body = bytes;
        if let Some(Ok(first)) = tlv::parse(bytes).next()
            && first.tag().0 == 0xFA
        {
            body = first.value();
        }
        let mut entries = Vec::new();
        for item in tlv::parse(body) {
            let item = item.map_err(bad)?;
            let Ok(tag) = u8::try_from(item.tag().0) else { continue };
            if let Ok(attributes) = KeyAttributes::parse(item.value()) {
                entries.push((tag, attributes));
            }
        }
        Ok(Self { entries })
    }

    /// Whether the card lists attributes of the same key type as `attributes` for `slot`.
    pub fn supports(&self, slot: OpenPgpKeySlot, attributes: &KeyAttributes) -> bool {
        let tag = 0xC1 + slot_index(slot) as u8;
        self.entries.iter().any(|(t, a)| *t == tag && a.same_key_type(attributes))
    }

    /// The keystation algorithms the card lists for `slot`, in the card's order, once each.
    pub fn algorithms(&self, slot: OpenPgpKeySlot) -> Vec<KeyAlgorithm> {
        let tag = 0xC1 + slot_index(slot) as u8;
        let mut out = Vec::new();
        for (t, attributes) in &self.entries {
            if *t != tag {
                continue;
            }
            if let Some(algorithm) = attributes.key_algorithm()
                && KeyAttributes::for_algorithm(slot, algorithm)
                    .is_some_and(|ours| ours.same_key_type(attributes))
                && !out.contains(&algorithm)
            {
                out.push(algorithm);
            }
        }
        out
    }
}

/// Cardholder related data `65` (§4.4.3.3).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CardholderData {
    /// Name `5B`, ISO 8859-1, "Surname<<Given names".
    pub name: Vec<u8>,
    /// Language preference `5F2D` (ISO 639-1 codes, concatenated).
    pub language: Vec<u8>,
    /// Sex `5F35` (ISO 5218).
    pub sex: Option<u8>,
}

impl CardholderData {
    /// Parses the response to GET DATA `65` (with or without the wrapper).
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        let bad = |_| malformed("cardholder related data", 0x65, "broken BER-TLV");
        let mut body = bytes;
        if let Some(Ok(first)) = tlv::parse(bytes).next()
            && first.tag().0 == 0x65
        {
            body = first.value();
        }
        let mut out = Self::default();
        for item in tlv::parse(body) {
            let item = item.map_err(bad)?;
            match item.tag().0 {
                0x5B => out.name = item.value().to_vec(),
                0x5F2D => out.language = item.value().to_vec(),
                0x5F35 => out.sex = item.value().first().copied(),
                _ => {}
            }
        }
        Ok(out)
    }

    /// The name as (surname, given names), decoded from ISO 8859-1, with `<` as space.
    pub fn name_parts(&self) -> (String, String) {
        let text: String = self.name.iter().map(|&b| char::from(b)).collect();
        let (last, first) = text.split_once("<<").unwrap_or((text.as_str(), ""));
        (last.replace('<', " "), first.replace('<', " "))
    }
}

/// Encodes a cardholder name as §4.4.3.3 wants it: "Surname<<Given names", spaces as
/// `<`, ISO 8859-1, at most 39 bytes.
pub fn encode_cardholder_name(surname: &str, given_names: &str) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(surname.len() + given_names.len() + 2);
    encode_name_part(surname, &mut out)?;
    if !given_names.trim().is_empty() {
        out.extend_from_slice(b"<<");
        encode_name_part(given_names, &mut out)?;
    }
    if out.len() > 39 {
        return Err(Error::InvalidInput {
            what: "cardholder name",
            reason: "longer than 39 bytes",
        });
    }
    Ok(out)
}

fn encode_name_part(part: &str, out: &mut Vec<u8>) -> Result<(), Error> {
    for c in part.trim().chars() {
        let byte = u8::try_from(u32::from(c)).map_err(|_| Error::InvalidInput {
            what: "cardholder name",
            reason: "characters outside ISO 8859-1",
        })?;
        if byte < 0x20 || (0x7F..0xA0).contains(&byte) || byte == b'<' {
            return Err(Error::InvalidInput {
                what: "cardholder name",
                reason: "control characters or '<'",
            });
        }
        out.push(if byte == b' ' { b'<' } else { byte });
    }
    Ok(())
}
