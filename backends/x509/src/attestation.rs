//! YubiKey PIV attestation (Yubico, "PIV attestation", developers.yubico.com/PIV/
//! Introduction/PIV_attestation.html).
//!
//! ATTEST (`INS F9`) makes the YubiKey issue an X.509 certificate for a key generated in a
//! slot, signed by the device's attestation key in slot `F9`. That key's certificate
//! (data object `5FFF01`) is issued by Yubico, directly by a root or through
//! intermediates. The attestation certificate carries, under Yubico's arc
//! `1.3.6.1.4.1.41482.3`:
//!
//! | OID  | contents                                            |
//! |------|-----------------------------------------------------|
//! | `.3` | firmware version, three bytes (major, minor, patch) |
//! | `.7` | serial number, a DER INTEGER                        |
//! | `.8` | PIN policy byte, touch policy byte                  |
//! | `.9` | form factor byte                                    |
//!
//! and its subject is `CN=YubiKey PIV Attestation <slot>`, the slot as two hex digits.

use keystation_core::key::PublicKey;
use keystation_core::keygen::{PinPolicy, PivSlot, TouchPolicy};
use x509_cert::der::Decode;

use crate::{Certificate, Error, Result, pem, rfc3339};

const OID_FIRMWARE: &str = "1.3.6.1.4.1.41482.3.3";
const OID_SERIAL: &str = "1.3.6.1.4.1.41482.3.7";
const OID_POLICY: &str = "1.3.6.1.4.1.41482.3.8";
const OID_FORM_FACTOR: &str = "1.3.6.1.4.1.41482.3.9";

/// The subject CN prefix of attestation certificates.
const SUBJECT_PREFIX: &str = "YubiKey PIV Attestation ";

const YUBICO_PIV_ROOT: &str = include_str!("../trust-anchors/yubicoPIVRootCA.pem");
const YUBICO_ATTESTATION_ROOT: &str = include_str!("../trust-anchors/yubicoAttestationRootCA.pem");

/// The DER certificates of Yubico's public attestation roots: the "Yubico PIV Root CA"
/// (devices made before 2024-12) and "Yubico Attestation Root 1" (after it, reached
/// through intermediates).
pub fn yubico_roots() -> Vec<Vec<u8>> {
    [YUBICO_PIV_ROOT, YUBICO_ATTESTATION_ROOT]
        .into_iter()
        .filter_map(|text| pem::first_with_label(text, "CERTIFICATE").ok())
        .collect()
}

/// A YubiKey firmware version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FirmwareVersion {
    /// Major.
    pub major: u8,
    /// Minor.
    pub minor: u8,
    /// Patch.
    pub patch: u8,
}

impl core::fmt::Display for FirmwareVersion {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// What a verified attestation proves about a key.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PivAttestation {
    /// The slot the key was generated in.
    pub slot: PivSlot,
    /// The attested public key.
    pub public_key: PublicKey,
    /// The device's serial number (extension `.3.7`), if present.
    pub serial: Option<u32>,
    /// The firmware version (extension `.3.3`), if present.
    pub firmware: Option<FirmwareVersion>,
    /// The PIN policy byte (extension `.3.8`, first byte): 1 never, 2 once, 3 always,
    /// 4 and 5 the YubiKey Bio's match-once and match-always.
    pub pin_policy_byte: Option<u8>,
    /// The touch policy byte (extension `.3.8`, second byte): 1 never, 2 always, 3 cached.
    pub touch_policy_byte: Option<u8>,
    /// The form factor byte (extension `.3.9`), if present.
    pub form_factor: Option<u8>,
    /// The attestation certificate.
    pub attestation: Certificate,
    /// The device's `F9` certificate.
    pub device: Certificate,
    /// The trust anchor the chain ended at.
    pub root: Certificate,
}

impl PivAttestation {
    /// The PIN policy in core's terms (`None` when absent or a biometric policy).
    pub fn pin_policy(&self) -> Option<PinPolicy> {
        match self.pin_policy_byte? {
            1 => Some(PinPolicy::Never),
            2 => Some(PinPolicy::Once),
            3 => Some(PinPolicy::Always),
            _ => None,
        }
    }

    /// The touch policy in core's terms (`None` when absent or unknown).
    pub fn touch_policy(&self) -> Option<TouchPolicy> {
        match self.touch_policy_byte? {
            1 => Some(TouchPolicy::Never),
            2 => Some(TouchPolicy::Always),
            3 => Some(TouchPolicy::Cached),
            _ => None,
        }
    }
}

fn chain_error(link: impl Into<String>, reason: impl core::fmt::Display) -> Error {
    Error::Attestation { link: link.into(), reason: reason.to_string() }
}

/// Verifies an attestation at the current system time; see
/// [`verify_piv_attestation_at`].
pub fn verify_piv_attestation(
    attestation_der: &[u8],
    device_cert_der: &[u8],
    intermediates: &[Vec<u8>],
    roots: &[Vec<u8>],
) -> Result<PivAttestation> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    verify_piv_attestation_at(attestation_der, device_cert_der, intermediates, roots, now)
}

/// Verifies the chain attestation ← device (`F9`) certificate ← intermediates … ← one of
/// `roots`, at Unix time `now`, and reads what the attestation says.
///
/// Each link is checked for the name (the child's issuer DER equals the parent's subject
/// DER), the signature, and the child's validity period at `now`. Intermediates may be
/// given in any order and unused ones are ignored; roots are trusted as given. Errors are
/// [`Error::Attestation`] naming the link that failed.
pub fn verify_piv_attestation_at(
    attestation_der: &[u8],
    device_cert_der: &[u8],
    intermediates: &[Vec<u8>],
    roots: &[Vec<u8>],
    now: i64,
) -> Result<PivAttestation> {
    let attestation = Certificate::from_der(attestation_der)
        .map_err(|e| chain_error("attestation certificate", e))?;
    let device = Certificate::from_der(device_cert_der)
        .map_err(|e| chain_error("device (F9) certificate", e))?;
    let parse_all = |list: &[Vec<u8>], what: &str| -> Result<Vec<Certificate>> {
        list.iter()
            .enumerate()
            .map(|(i, der)| {
                Certificate::from_der(der).map_err(|e| chain_error(format!("{what} #{i}"), e))
            })
            .collect()
    };
    let intermediates = parse_all(intermediates, "intermediate")?;
    let roots = parse_all(roots, "root")?;

    check_link(&attestation, &device, "attestation certificate ← device (F9) certificate", now)?;

    // Walk up from the device certificate; each intermediate is used at most once, so
    // the walk ends.
    let mut current = device.clone();
    let mut used = vec![false; intermediates.len()];
    let root = loop {
        let child = if current.der() == device.der() {
            "device (F9) certificate".to_owned()
        } else {
            format!("intermediate {:?}", current.subject())
        };
        let mut failure = None;
        let mut anchored = None;
        for root in roots.iter().filter(|r| r.subject_der() == current.issuer_der()) {
            let link = format!("{child} ← root {:?}", root.subject());
            match check_link(&current, root, &link, now) {
                Ok(()) => {
                    anchored = Some(root.clone());
                    break;
                }
                Err(e) => failure = Some(e),
            }
        }
        if let Some(root) = anchored {
            break root;
        }
        let mut next = None;
        for (i, parent) in intermediates.iter().enumerate() {
            if used[i] || parent.subject_der() != current.issuer_der() {
                continue;
            }
            let link = format!("{child} ← intermediate {:?}", parent.subject());
            match check_link(&current, parent, &link, now) {
                Ok(()) => {
                    next = Some(i);
                    break;
                }
                Err(e) => failure = Some(e),
            }
        }
        match next {
            Some(i) => {
                used[i] = true;
                current = intermediates[i].clone();
            }
            None => {
                return Err(failure.unwrap_or_else(|| {
                    chain_error(
                        format!("{child} ← issuer {:?}", current.issuer()),
                        "no trusted root or given intermediate has that name",
                    )
                }));
            }
        }
    };

    read_attestation(attestation, device, root)
}

/// Name, signature and validity of one link.
fn check_link(child: &Certificate, parent: &Certificate, link: &str, now: i64) -> Result<()> {
    if child.issuer_der() != parent.subject_der() {
        return Err(chain_error(
            link,
            format!("issuer {:?} is not {:?}", child.issuer(), parent.subject()),
        ));
    }
    crate::verify_signed_by(child.der(), parent.der()).map_err(|e| chain_error(link, e))?;
    if !child.is_valid_at(now) {
        return Err(chain_error(
            link,
            format!(
                "{:?} is not valid at {} (valid {} to {})",
                child.subject(),
                rfc3339(now),
                rfc3339(child.not_before()),
                rfc3339(child.not_after())
            ),
        ));
    }
    Ok(())
}

fn read_attestation(
    attestation: Certificate,
    device: Certificate,
    root: Certificate,
) -> Result<PivAttestation> {
    const LINK: &str = "attestation certificate";
    let cn = attestation.subject_common_name().unwrap_or_default();
    let slot = cn
        .strip_prefix(SUBJECT_PREFIX)
        .filter(|hex| hex.len() == 2)
        .and_then(|hex| u8::from_str_radix(hex, 16).ok())
        .and_then(PivSlot::from_key_reference)
        .ok_or_else(|| chain_error(LINK, format!("subject CN {cn:?} names no PIV slot")))?;
    let public_key = attestation.public_key().map_err(|e| chain_error(LINK, e))?;
    let firmware = match attestation.extension(OID_FIRMWARE) {
        None => None,
        Some(&[major, minor, patch]) => Some(FirmwareVersion { major, minor, patch }),
        Some(_) => return Err(chain_error(LINK, "firmware extension is not three bytes")),
    };
    let serial = match attestation.extension(OID_SERIAL) {
        None => None,
        Some(value) => Some(
            u32::from_der(value)
                .map_err(|e| chain_error(LINK, format!("serial extension: {e}")))?,
        ),
    };
    let (pin_policy_byte, touch_policy_byte) = match attestation.extension(OID_POLICY) {
        None => (None, None),
        Some(&[pin, touch]) => (Some(pin), Some(touch)),
        Some(_) => return Err(chain_error(LINK, "policy extension is not two bytes")),
    };
    let form_factor = match attestation.extension(OID_FORM_FACTOR) {
        None => None,
        Some(&[byte]) => Some(byte),
        Some(_) => return Err(chain_error(LINK, "form factor extension is not one byte")),
    };
    Ok(PivAttestation {
        slot,
        public_key,
        serial,
        firmware,
        pin_policy_byte,
        touch_policy_byte,
        form_factor,
        attestation,
        device,
        root,
    })
}
