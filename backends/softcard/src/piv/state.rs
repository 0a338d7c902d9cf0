//! PIV state: what survives power loss (PIN, PUK, management key, slot keys with their
//! policies, data objects) and what does not (verified PIN, authenticated management key,
//! the pending management-key challenge).

use std::collections::BTreeMap;

use keystation_core::StatusWord;
use zeroize::Zeroizing;

use super::keys::PrivateKey;
use super::mgmt::{MgmtAlgorithm, MgmtKey};
use crate::identity::{Identity, Version};

/// The factory PIN, `123456` (Yubico, "PIV PIN, PUK and management key").
pub(crate) const DEFAULT_PIN: &[u8] = b"123456";
/// The factory PUK, `12345678` (same source).
pub(crate) const DEFAULT_PUK: &[u8] = b"12345678";
/// Factory retry counters of PIN and PUK (same source: three tries each).
pub(crate) const DEFAULT_RETRIES: u8 = 3;

/// PIN policy bytes (Yubico PIV extensions, GENERATE `AA` and GET METADATA `02`).
pub(crate) mod pin_policy {
    /// The slot's default.
    pub(crate) const DEFAULT: u8 = 0;
    /// Never.
    pub(crate) const NEVER: u8 = 1;
    /// Once per session.
    pub(crate) const ONCE: u8 = 2;
    /// Before every use.
    pub(crate) const ALWAYS: u8 = 3;
}

/// Touch policy bytes (GENERATE `AB`, GET METADATA `02`).
pub(crate) mod touch_policy {
    /// The slot's default.
    pub(crate) const DEFAULT: u8 = 0;
    /// Never.
    pub(crate) const NEVER: u8 = 1;
    /// Every use.
    pub(crate) const ALWAYS: u8 = 2;
    /// Cached for 15 seconds (firmware 4.3).
    pub(crate) const CACHED: u8 = 3;
}

/// Key origin bytes (GET METADATA `03`).
pub(crate) mod origin {
    /// Generated on the card.
    pub(crate) const GENERATED: u8 = 1;
    /// Imported.
    pub(crate) const IMPORTED: u8 = 2;
}

/// A PIN or PUK: its value padded with `FF` to eight bytes (SP 800-73-4 part 2 §2.4.3)
/// and its retry counter.
pub(crate) struct Secret {
    padded: Zeroizing<[u8; 8]>,
    default: Zeroizing<[u8; 8]>,
    /// Tries left; zero means blocked.
    pub(crate) remaining: u8,
    /// Tries after a successful verification.
    pub(crate) total: u8,
}

impl Secret {
    /// A secret set to `value` (6–8 bytes) with `total` tries.
    pub(crate) fn new(value: &[u8], total: u8) -> Self {
        let padded = Zeroizing::new(pad(value));
        Self { default: padded.clone(), padded, remaining: total, total }
    }

    /// Whether no tries are left.
    pub(crate) fn blocked(&self) -> bool {
        self.remaining == 0
    }

    /// Whether the value is still the factory value.
    pub(crate) fn is_default(&self) -> bool {
        ct_eq(self.padded.as_slice(), self.default.as_slice())
    }

    /// Checks a padded candidate: resets the counter on success, spends a try otherwise
    /// and answers `63Cx` with the tries left (`6983` once blocked).
    pub(crate) fn check(&mut self, candidate: &[u8]) -> Result<(), StatusWord> {
        if self.blocked() {
            return Err(StatusWord::AUTH_METHOD_BLOCKED);
        }
        if ct_eq(candidate, self.padded.as_slice()) {
            self.remaining = self.total;
            Ok(())
        } else {
            self.remaining -= 1;
            Err(retries_status(self.remaining))
        }
    }

    /// Sets a new padded value and refills the counter.
    pub(crate) fn set(&mut self, padded: &[u8; 8]) {
        self.padded.copy_from_slice(padded);
        self.remaining = self.total;
    }

    /// The padded value (for saving the card's state).
    pub(crate) fn padded(&self) -> &[u8; 8] {
        &self.padded
    }

    /// Restores a saved value and counter (at most `total`).
    pub(crate) fn restore(&mut self, padded: &[u8; 8], remaining: u8) {
        self.padded.copy_from_slice(padded);
        self.remaining = remaining.min(self.total);
    }
}

/// `63Cx`: a wrong PIN with `x` tries left (SP 800-73-4 part 2 §3.2.1).
pub(crate) fn retries_status(remaining: u8) -> StatusWord {
    StatusWord::from_bytes(0x63, 0xC0 | remaining.min(15))
}

/// Pads a 1–8 byte value with `FF` to eight bytes.
pub(crate) fn pad(value: &[u8]) -> [u8; 8] {
    let mut out = [0xFF; 8];
    for (o, v) in out.iter_mut().zip(value) {
        *o = *v;
    }
    out
}

/// Whether `padded` is a well-formed PIN reference value of 6–8 characters: bytes other
/// than `FF`, then only `FF` padding (SP 800-73-4 part 2 §2.4.3; YubiKeys take any byte
/// value but `FF` for the characters).
pub(crate) fn valid_padded(padded: &[u8]) -> bool {
    if padded.len() != 8 {
        return false;
    }
    let len = padded.iter().position(|&b| b == 0xFF).unwrap_or(8);
    len >= 6 && padded[len..].iter().all(|&b| b == 0xFF)
}

/// Equality that does not stop at the first differing byte.
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A key in a slot with its policies, as recorded at generation or import.
#[derive(Debug)]
pub(crate) struct SlotKey {
    /// The private key.
    pub(crate) key: PrivateKey,
    /// PIN policy, resolved (never [`pin_policy::DEFAULT`]).
    pub(crate) pin_policy: u8,
    /// Touch policy, resolved (never [`touch_policy::DEFAULT`]).
    pub(crate) touch_policy: u8,
    /// [`origin::GENERATED`] or [`origin::IMPORTED`].
    pub(crate) origin: u8,
}

/// The slot's default PIN policy (Yubico, "PIV certificate slots": 9C always, 9E and F9
/// never, the others once).
pub(crate) fn default_pin_policy(slot: u8) -> u8 {
    match slot {
        0x9C => pin_policy::ALWAYS,
        0x9E | 0xF9 => pin_policy::NEVER,
        _ => pin_policy::ONCE,
    }
}

/// State that survives power loss.
pub(crate) struct Persistent {
    /// The PIV Card Application PIN (key reference `80`).
    pub(crate) pin: Secret,
    /// The PIN Unblocking Key (`81`).
    pub(crate) puk: Secret,
    /// The card application administration key (`9B`).
    pub(crate) mgmt: MgmtKey,
    /// Keys by key reference.
    pub(crate) slots: BTreeMap<u8, SlotKey>,
    /// Data objects by tag: the value inside `53`.
    pub(crate) objects: BTreeMap<u32, Vec<u8>>,
}

impl Persistent {
    /// Factory state for a card with this firmware (PIN, PUK, management key, no keys, no
    /// objects; the attestation key is added by the caller).
    pub(crate) fn factory(version: Version) -> Self {
        Self {
            pin: Secret::new(DEFAULT_PIN, DEFAULT_RETRIES),
            puk: Secret::new(DEFAULT_PUK, DEFAULT_RETRIES),
            mgmt: MgmtKey::factory(version),
            slots: BTreeMap::new(),
            objects: BTreeMap::new(),
        }
    }

    /// RESET: everything back to factory values except the attestation key in `F9` and
    /// its certificate in `5FFF01`, which survive (Yubico, "PIV attestation": a reset
    /// does not restore, and does not remove, the attestation key).
    pub(crate) fn reset(&mut self, identity: &Identity) {
        let mut fresh = Self::factory(identity.version);
        if let Some(f9) = self.slots.remove(&0xF9) {
            fresh.slots.insert(0xF9, f9);
        }
        if let Some(cert) = self.objects.remove(&super::OBJ_ATTESTATION) {
            fresh.objects.insert(super::OBJ_ATTESTATION, cert);
        }
        *self = fresh;
    }
}

/// A management-key challenge the card is waiting for an answer to.
pub(crate) enum Pending {
    /// Mutual authentication step 1 done: the host must return this plaintext decrypted
    /// from the witness, with its own challenge.
    Witness(MgmtAlgorithm, Zeroizing<Vec<u8>>),
    /// External authentication step 1 done: the host must return this challenge
    /// encrypted.
    Challenge(MgmtAlgorithm, Zeroizing<Vec<u8>>),
}

/// State that a reset, a power cycle or selecting another applet clears.
#[derive(Default)]
pub(crate) struct Volatile {
    /// The PIN was verified in this session.
    pub(crate) pin_verified: bool,
    /// The PIN was verified by the command just before this one (for PIN policy
    /// "always").
    pub(crate) pin_fresh: bool,
    /// The management key was authenticated in this session.
    pub(crate) mgmt_authenticated: bool,
    /// The pending management-key challenge.
    pub(crate) pending: Option<Pending>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_reference_values_are_six_to_eight_characters_padded_with_ff() {
        assert!(valid_padded(&pad(b"123456")));
        assert!(valid_padded(b"12345678"));
        assert!(!valid_padded(&pad(b"12345")));
        assert!(!valid_padded(&[0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0xFF, 0x37]));
        assert!(!valid_padded(b"1234567"));
        assert!(!valid_padded(&[0xFF; 8]));
    }

    #[test]
    fn a_secret_counts_down_blocks_and_refills() {
        let mut pin = Secret::new(DEFAULT_PIN, 2);
        assert!(pin.is_default());
        assert_eq!(pin.check(&pad(b"000000")), Err(StatusWord(0x63C1)));
        assert_eq!(pin.check(&pad(DEFAULT_PIN)), Ok(()));
        assert_eq!(pin.remaining, 2);
        assert_eq!(pin.check(&pad(b"000000")), Err(StatusWord(0x63C1)));
        assert_eq!(pin.check(&pad(b"000000")), Err(StatusWord(0x63C0)));
        assert_eq!(pin.check(&pad(DEFAULT_PIN)), Err(StatusWord::AUTH_METHOD_BLOCKED));
        pin.set(&pad(b"654321"));
        assert!(!pin.is_default());
        assert_eq!(pin.check(&pad(b"654321")), Ok(()));
        assert_eq!(retries_status(200), StatusWord(0x63CF));
    }
}
