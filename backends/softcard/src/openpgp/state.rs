//! The application's state, split as a card splits it: [`Persistent`] (what survives
//! power loss: PINs with their retry counters, keys, data objects) and [`Volatile`]
//! (which PINs are verified, OpenPGP card 3.4 §4.3).

use keystation_core::StatusWord;
use keystation_core::key::KeyAlgorithm;
use zeroize::Zeroizing;

use super::keys::{PrivateKey, Role, parse_attributes, rsa_attributes};

/// Factory user PIN (PW1), §4.3.
pub(super) const DEFAULT_PW1: &[u8] = b"123456";
/// Factory admin PIN (PW3), §4.3.
pub(super) const DEFAULT_PW3: &[u8] = b"12345678";
/// Retry counters a YubiKey starts with.
pub(super) const DEFAULT_TRIES: u8 = 3;
/// Longest PIN the card accepts (the PW status bytes announce it, §4.4.3.7).
pub(super) const MAX_PIN_LEN: usize = 127;
/// Shortest PW1 (§4.3.1).
pub(super) const MIN_PW1_LEN: usize = 6;
/// Shortest PW3 and resetting code (§4.3.2, §4.3.3).
pub(super) const MIN_PW3_LEN: usize = 8;

/// A password with its retry counter (§4.3). An empty value means "not set" (the
/// resetting code of a factory card).
#[derive(Clone)]
pub(super) struct Pin {
    value: Zeroizing<Vec<u8>>,
    /// Tries left.
    pub(super) tries: u8,
    /// What the counter is set to after a correct entry or a change.
    pub(super) max: u8,
}

impl core::fmt::Debug for Pin {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Pin([redacted], tries {}/{})", self.tries, self.max)
    }
}

impl Pin {
    /// A PIN set to `value` with full tries.
    pub(super) fn new(value: &[u8], max: u8) -> Self {
        Self { value: Zeroizing::new(value.to_vec()), tries: max, max }
    }

    /// A PIN that is not set (resetting code): no tries.
    pub(super) fn unset(max: u8) -> Self {
        Self { value: Zeroizing::new(Vec::new()), tries: 0, max }
    }

    /// The stored value's length (to split old and new PIN in CHANGE REFERENCE DATA).
    pub(super) fn len(&self) -> usize {
        self.value.len()
    }

    /// Whether the counter is at zero (or the PIN is unset).
    pub(super) fn blocked(&self) -> bool {
        self.tries == 0 || self.value.is_empty()
    }

    /// Checks `candidate`: a blocked PIN answers `6983` without comparing; a wrong one
    /// costs a try and answers `6982` (§7.2.2); a right one restores the counter.
    pub(super) fn check(&mut self, candidate: &[u8]) -> Result<(), StatusWord> {
        if self.blocked() {
            return Err(StatusWord::AUTH_METHOD_BLOCKED);
        }
        let equal = candidate.len() == self.value.len()
            && candidate.iter().zip(self.value.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
        if equal {
            self.tries = self.max;
            Ok(())
        } else {
            self.tries -= 1;
            Err(StatusWord::SECURITY_STATUS_NOT_SATISFIED)
        }
    }

    /// Sets a new value and restores the counter.
    pub(super) fn set(&mut self, value: &[u8]) {
        self.value = Zeroizing::new(value.to_vec());
        self.tries = self.max;
    }
}

/// One key slot: attributes, key, and the data objects that describe it.
#[derive(Debug, Clone)]
pub(super) struct Slot {
    /// Algorithm attributes as written (C1–C3, §4.4.3.9).
    pub(super) attributes: Vec<u8>,
    /// The algorithm the attributes select.
    pub(super) algorithm: KeyAlgorithm,
    /// The private key, if one was generated or imported.
    pub(super) key: Option<PrivateKey>,
    /// Key status for the key information DO `DE` (§4.4.3.8): 0 none, 1 generated,
    /// 2 imported.
    pub(super) status: u8,
    /// Fingerprint (C7–C9).
    pub(super) fingerprint: [u8; 20],
    /// CA fingerprint (CA–CC; indexed like the slots).
    pub(super) ca_fingerprint: [u8; 20],
    /// Generation timestamp (CE–D0), big-endian seconds since 1970.
    pub(super) timestamp: [u8; 4],
    /// User interaction flag (D6–D8, Yubico): 0 off, 1 on, 2 fixed, 3 cached,
    /// 4 cached-fixed.
    pub(super) uif: u8,
}

impl Slot {
    fn factory(role: Role) -> Self {
        let attributes = rsa_attributes(2048);
        let algorithm = parse_attributes(role, &attributes)
            .unwrap_or(KeyAlgorithm::Rsa(keystation_core::key::RsaBits::Rsa2048));
        Self {
            attributes,
            algorithm,
            key: None,
            status: 0,
            fingerprint: [0; 20],
            ca_fingerprint: [0; 20],
            timestamp: [0; 4],
            uif: 0,
        }
    }
}

/// Everything that survives power loss (§4.4: the data objects; §4.3: the PINs).
#[derive(Clone)]
pub(super) struct Persistent {
    /// User PIN.
    pub(super) pw1: Pin,
    /// Resetting code (§4.3.3).
    pub(super) rc: Pin,
    /// Admin PIN.
    pub(super) pw3: Pin,
    /// PW1 status byte 1 (§4.4.3.7): `true` = PW1 stays valid for several PSO:CDS,
    /// `false` = one signature per VERIFY.
    pub(super) pw1_multi: bool,
    /// Signature, decryption and authentication slots.
    pub(super) slots: [Slot; 3],
    /// Cardholder name `5B` (§4.4.3.3).
    pub(super) name: Vec<u8>,
    /// Language preference `5F2D`.
    pub(super) language: Vec<u8>,
    /// Sex `5F35` (ISO 5218: `30` unknown, `31` male, `32` female, `39` not applicable).
    pub(super) sex: u8,
    /// Login data `5E`.
    pub(super) login: Vec<u8>,
    /// URL `5F50`.
    pub(super) url: Vec<u8>,
    /// Private use DOs `0101`–`0104`.
    pub(super) private: [Vec<u8>; 4],
    /// Cardholder certificates `7F21`, one per occurrence that SELECT DATA picks
    /// (§7.2.5): Yubico numbers them 0 authentication, 1 decryption, 2 signature.
    pub(super) certificates: [Vec<u8>; 3],
    /// User interaction flag of the attestation key (`D9`, Yubico, firmware 5.2.1+).
    pub(super) att_uif: u8,
    /// Digital signature counter (`93` in `7A`), three bytes.
    pub(super) signature_counter: u32,
    /// KDF DO `F9` (§4.3.2), value as written.
    pub(super) kdf: Vec<u8>,
    /// Whether TERMINATE DF put the application in its termination state.
    pub(super) terminated: bool,
}

impl core::fmt::Debug for Persistent {
    /// Shows counters, slots and flags; never PINs, private use DOs or the KDF DO.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Persistent")
            .field("pw1", &self.pw1)
            .field("rc", &self.rc)
            .field("pw3", &self.pw3)
            .field("pw1_multi", &self.pw1_multi)
            .field("slots", &self.slots)
            .field("signature_counter", &self.signature_counter)
            .field("terminated", &self.terminated)
            .finish_non_exhaustive()
    }
}

impl Persistent {
    /// The state of a factory-fresh YubiKey 5.
    pub(super) fn factory() -> Self {
        Self {
            pw1: Pin::new(DEFAULT_PW1, DEFAULT_TRIES),
            rc: Pin::unset(DEFAULT_TRIES),
            pw3: Pin::new(DEFAULT_PW3, DEFAULT_TRIES),
            pw1_multi: true,
            slots: [Slot::factory(Role::Sig), Slot::factory(Role::Dec), Slot::factory(Role::Aut)],
            name: Vec::new(),
            language: Vec::new(),
            sex: 0x30,
            login: Vec::new(),
            url: Vec::new(),
            private: Default::default(),
            certificates: Default::default(),
            att_uif: 0,
            signature_counter: 0,
            kdf: vec![0x81, 0x01, 0x00],
            terminated: false,
        }
    }

    /// The PW status bytes `C4` (§4.4.3.7).
    pub(super) fn pw_status(&self) -> [u8; 7] {
        let max = MAX_PIN_LEN as u8;
        [u8::from(self.pw1_multi), max, max, max, self.pw1.tries, self.rc.tries, self.pw3.tries]
    }

    /// The slot of `role`.
    pub(super) fn slot(&mut self, role: Role) -> &mut Slot {
        &mut self.slots[role.index()]
    }
}

/// What a reset or a new SELECT forgets (§4.3, access status).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Volatile {
    /// PW1 verified with P2 = 81 (PSO:CDS).
    pub(super) pw1_sign: bool,
    /// PW1 verified with P2 = 82 (decipher, authenticate, private DOs).
    pub(super) pw1_other: bool,
    /// PW3 verified.
    pub(super) pw3: bool,
    /// The cardholder certificate occurrence SELECT DATA chose (§7.2.5).
    pub(super) certificate: usize,
}

/// Saving and restoring the persistent state (`persist.rs`) reads and sets PIN values.
impl Pin {
    /// The stored value (empty when not set).
    pub(super) fn value(&self) -> &[u8] {
        &self.value
    }

    /// A PIN with this value and counters, as saved.
    pub(super) fn restored(value: &[u8], tries: u8, max: u8) -> Self {
        Self { value: Zeroizing::new(value.to_vec()), tries, max }
    }
}
