//! The PIV application (NIST SP 800-73-4) as a YubiKey 5 presents it, with Yubico's
//! extensions.
//!
//! Standard commands (SP 800-73-4 part 2 §3): SELECT, GET DATA (`CB`), PUT DATA (`DB`),
//! VERIFY (`20`), CHANGE REFERENCE DATA (`24`), RESET RETRY COUNTER (`2C`), GENERAL
//! AUTHENTICATE (`87`) and GENERATE ASYMMETRIC KEY PAIR (`47`).
//!
//! Yubico's extensions (developers.yubico.com "PIV", docs.yubico.com "PIV commands"):
//! MOVE KEY (`F6`, 5.7), GET METADATA (`F7`, 5.3), GET SERIAL (`F8`, 5.0), ATTEST (`F9`,
//! 4.3), SET PIN RETRIES (`FA`), RESET (`FB`), GET VERSION (`FD`), IMPORT KEY (`FE`) and
//! SET MANAGEMENT KEY (`FF`).
//!
//! Factory state: PIN `123456`, PUK `12345678`, three tries each; management key
//! `010203040506070801020304050607080102030405060708` (3DES before firmware 5.7, AES-192
//! from 5.7); an attestation key in `F9` with its certificate in `5FFF01`, issued by the
//! software test root of [`test_attestation_root_der`] — never by Yubico's roots.
//!
//! Touch policies are recorded, reported and enforced through the card's simulated touch
//! sensor ([`TouchResponse`](crate::TouchResponse)): by default the user touches at once.

mod attest;
mod keys;
mod mgmt;
mod persist;
mod state;

use keystation_core::{Command, StatusWord, tlv};
use rand_core::RngCore;
use zeroize::Zeroizing;

pub use attest::{
    TEST_F9_SUBJECT, TEST_ROOT_SUBJECT, test_attestation_root_der, test_attestation_root_pem,
};
pub use persist::InvalidState;

use crate::applet::{Applet, Context, Reply, StateError};
use crate::identity::{Identity, Version};
use keys::{Algorithm, PrivateKey};
use mgmt::{MgmtAlgorithm, MgmtKey};
use state::{
    Pending, Persistent, SlotKey, Volatile, origin, pin_policy, retries_status, touch_policy,
};

/// PIV AID (NIST SP 800-73-4 part 1 §2.2), full form: RID `A0 00 00 03 08`, PIX
/// `00 00 10 00 01 00`.
const PIV_AID: [u8; 11] = [0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00];

/// Key reference of the management key (SP 800-73-4 part 1 table 4b).
const MGMT_REF: u8 = 0x9B;
/// Key reference of the PIN.
const PIN_REF: u8 = 0x80;
/// Key reference of the PUK.
const PUK_REF: u8 = 0x81;
/// Key reference of Yubico's attestation slot.
const ATTESTATION_SLOT: u8 = 0xF9;

/// The Yubico object holding the `F9` attestation certificate.
pub(crate) const OBJ_ATTESTATION: u32 = 0x5F_FF01;
/// The discovery object (SP 800-73-4 part 1 §3.3.2), addressed by the one-byte tag `7E`.
const OBJ_DISCOVERY: u32 = 0x7E;
/// The biometric information templates group template, tag `7F61`.
const OBJ_BIT_GROUP: u32 = 0x7F61;
/// The largest data object a YubiKey 5 stores (yubico-piv-tool `CB_OBJ_MAX`).
const MAX_OBJECT: usize = 3063;

/// Objects whose GET DATA needs the PIN (SP 800-73-4 part 1 table 3: fingerprints,
/// facial image, printed information, iris images).
const PIN_PROTECTED: [u32; 4] = [0x5F_C103, 0x5F_C108, 0x5F_C109, 0x5F_C121];

/// The PIV applet.
pub struct Piv {
    persistent: Persistent,
    volatile: Volatile,
}

impl core::fmt::Debug for Piv {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Piv")
            .field("slots", &self.persistent.slots.keys().collect::<Vec<_>>())
            .field("objects", &self.persistent.objects.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Piv {
    /// A factory-fresh PIV application for the card with this identity. The attestation
    /// key in `F9` is a P-256 key derived from the serial, and its certificate is issued
    /// by the software test root.
    pub fn new(identity: &Identity) -> Self {
        let mut persistent = Persistent::factory(identity.version);
        let f9 = attest::factory_f9_key(identity.serial);
        let cert = attest::factory_f9_certificate(identity, &f9);
        persistent.slots.insert(
            ATTESTATION_SLOT,
            SlotKey {
                key: f9,
                pin_policy: pin_policy::NEVER,
                touch_policy: touch_policy::NEVER,
                origin: origin::IMPORTED,
            },
        );
        if !cert.is_empty() {
            persistent.objects.insert(OBJ_ATTESTATION, attest::certificate_object(&cert));
        }
        Self { persistent, volatile: Volatile::default() }
    }
}

fn ok(data: Vec<u8>) -> Reply {
    Ok(Zeroizing::new(data))
}

fn require_version(context: &Context<'_>, version: Version) -> Result<(), StatusWord> {
    if context.identity.version < version {
        return Err(StatusWord::INS_NOT_SUPPORTED);
    }
    Ok(())
}

/// Whether `slot` is a key reference that can hold an asymmetric key.
fn is_key_slot(slot: u8) -> bool {
    matches!(slot, 0x9A | 0x9C | 0x9D | 0x9E | 0x82..=0x95 | ATTESTATION_SLOT)
}

/// The tag list of GET DATA / PUT DATA: `5C` with a one- to three-byte tag. Anything else
/// is `6A80`.
fn object_tag(tag_list: &[u8]) -> Result<u32, StatusWord> {
    let bad = StatusWord::INCORRECT_DATA;
    let value = tlv::find(tag_list, 0x5C).map_err(|_| bad)?.ok_or(bad)?;
    if value.is_empty() || value.len() > 3 {
        return Err(bad);
    }
    let tag = value.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b));
    let known = matches!(tag, OBJ_DISCOVERY | OBJ_BIT_GROUP)
        || (0x5F_C101..=0x5F_C123).contains(&tag)
        || (0x5F_FF00..=0x5F_FFFF).contains(&tag);
    if known { Ok(tag) } else { Err(bad) }
}

impl Piv {
    fn require_mgmt(&self) -> Result<(), StatusWord> {
        if self.volatile.mgmt_authenticated {
            Ok(())
        } else {
            Err(StatusWord::SECURITY_STATUS_NOT_SATISFIED)
        }
    }

    /// GET DATA (SP 800-73-4 part 2 §3.1.2): `00 CB 3F FF` with `5C` tag list; answers
    /// `53` with the object (the discovery object answers as `7E`). Absent: `6A82`.
    fn get_data(&self, command: &Command) -> Reply {
        if (command.p1, command.p2) != (0x3F, 0xFF) {
            return Err(StatusWord::INCORRECT_P1_P2);
        }
        let tag = object_tag(command.data())?;
        if tag == OBJ_DISCOVERY {
            // PIV AID and PIN usage policy: PIV PIN only, no global PIN (part 1 §3.3.2).
            let mut out = Vec::new();
            tlv::write_constructed(&mut out, 0x7E, |o| {
                tlv::write(o, 0x4F, &PIV_AID);
                tlv::write(o, 0x5F2F, &[0x40, 0x00]);
            });
            return ok(out);
        }
        if PIN_PROTECTED.contains(&tag) && !self.volatile.pin_verified {
            return Err(StatusWord::SECURITY_STATUS_NOT_SATISFIED);
        }
        let value = self.persistent.objects.get(&tag).ok_or(StatusWord::NOT_FOUND)?;
        let mut out = Vec::with_capacity(value.len() + 4);
        tlv::write(&mut out, 0x53, value);
        ok(out)
    }

    /// PUT DATA (SP 800-73-4 part 2 §3.3.1): `00 DB 3F FF` with `5C` tag and `53` value;
    /// an empty `53` deletes the object. Needs the management key.
    fn put_data(&mut self, command: &Command) -> Reply {
        if (command.p1, command.p2) != (0x3F, 0xFF) {
            return Err(StatusWord::INCORRECT_P1_P2);
        }
        self.require_mgmt()?;
        let data = command.data();
        let tag = object_tag(data)?;
        if matches!(tag, OBJ_DISCOVERY | OBJ_BIT_GROUP) {
            return Err(StatusWord::FUNCTION_NOT_SUPPORTED);
        }
        let bad = StatusWord::INCORRECT_DATA;
        let value = tlv::find(data, 0x53).map_err(|_| bad)?.ok_or(bad)?;
        if value.len() > MAX_OBJECT {
            return Err(StatusWord::NOT_ENOUGH_MEMORY);
        }
        if value.is_empty() {
            self.persistent.objects.remove(&tag);
        } else {
            self.persistent.objects.insert(tag, value.to_vec());
        }
        ok(Vec::new())
    }

    /// VERIFY (SP 800-73-4 part 2 §3.2.1) of the PIN: `00 20 00 80` with eight bytes
    /// checks it; no data asks the status (`9000` verified, `63Cx` tries left, `6983`
    /// blocked); `00 20 FF 80` resets the verified state.
    fn verify(&mut self, command: &Command) -> Reply {
        if command.p2 != PIN_REF {
            return Err(StatusWord::REFERENCED_DATA_NOT_FOUND);
        }
        let data = command.data();
        match command.p1 {
            0xFF if data.is_empty() => {
                self.volatile.pin_verified = false;
                return ok(Vec::new());
            }
            0x00 => {}
            _ => return Err(StatusWord::INCORRECT_P1_P2),
        }
        let pin = &mut self.persistent.pin;
        if data.is_empty() {
            return if pin.blocked() {
                Err(StatusWord::AUTH_METHOD_BLOCKED)
            } else if self.volatile.pin_verified {
                ok(Vec::new())
            } else {
                Err(retries_status(pin.remaining))
            };
        }
        if data.len() != 8 {
            return Err(StatusWord::INCORRECT_DATA);
        }
        match pin.check(data) {
            Ok(()) => {
                self.volatile.pin_verified = true;
                self.volatile.pin_fresh = true;
                ok(Vec::new())
            }
            Err(sw) => {
                self.volatile.pin_verified = false;
                Err(sw)
            }
        }
    }

    /// CHANGE REFERENCE DATA (SP 800-73-4 part 2 §3.2.2): `00 24 00 80|81` with the old
    /// and the new value, eight padded bytes each. The new value must be 6–8 characters.
    fn change_reference(&mut self, command: &Command) -> Reply {
        if command.p1 != 0x00 {
            return Err(StatusWord::INCORRECT_P1_P2);
        }
        let secret = match command.p2 {
            PIN_REF => &mut self.persistent.pin,
            PUK_REF => &mut self.persistent.puk,
            _ => return Err(StatusWord::REFERENCED_DATA_NOT_FOUND),
        };
        let data = command.data();
        if data.len() != 16 {
            return Err(StatusWord::INCORRECT_DATA);
        }
        let (old, new) = data.split_at(8);
        // The old value is checked first: ykman's `piv reset` blocks the PUK with empty
        // (all-`FF`) old and new values and expects `63Cx` each time (yubikit `piv.py`).
        let result = secret.check(old);
        if command.p2 == PIN_REF {
            self.volatile.pin_verified = false;
        }
        result?;
        if !state::valid_padded(new) {
            return Err(StatusWord::INCORRECT_DATA);
        }
        let new: [u8; 8] = new.try_into().map_err(|_| StatusWord::INCORRECT_DATA)?;
        let secret =
            if command.p2 == PIN_REF { &mut self.persistent.pin } else { &mut self.persistent.puk };
        secret.set(&Zeroizing::new(new));
        ok(Vec::new())
    }

    /// RESET RETRY COUNTER (SP 800-73-4 part 2 §3.2.3): `00 2C 00 80` with the PUK and the
    /// new PIN; unblocks and sets the PIN.
    fn reset_retry_counter(&mut self, command: &Command) -> Reply {
        if command.p1 != 0x00 {
            return Err(StatusWord::INCORRECT_P1_P2);
        }
        if command.p2 != PIN_REF {
            return Err(StatusWord::REFERENCED_DATA_NOT_FOUND);
        }
        let data = command.data();
        if data.len() != 16 {
            return Err(StatusWord::INCORRECT_DATA);
        }
        let (puk, new) = data.split_at(8);
        // PUK first, as in CHANGE REFERENCE DATA: ykman blocks the PUK with all-`FF` values.
        self.persistent.puk.check(puk)?;
        if !state::valid_padded(new) {
            return Err(StatusWord::INCORRECT_DATA);
        }
        let new: [u8; 8] = new.try_into().map_err(|_| StatusWord::INCORRECT_DATA)?;
        self.persistent.pin.set(&Zeroizing::new(new));
        self.volatile.pin_verified = false;
        ok(Vec::new())
    }

    /// GENERAL AUTHENTICATE (SP 800-73-4 part 2 §3.2.4): `00 87 alg key` with a dynamic
    /// authentication template `7C`.
    fn general_authenticate(
        &mut self,
        context: &mut Context<'_>,
        command: &Command,
        pin_fresh: bool,
    ) -> Reply {
        let bad = StatusWord::INCORRECT_DATA;
        let template = tlv::find(command.data(), 0x7C).map_err(|_| bad)?.ok_or(bad)?;
        let mut items: [Option<&[u8]>; 4] = [None; 4];
        for item in tlv::parse(template) {
            let item = item.map_err(|_| bad)?;
            let index = match item.tag().0 {
                0x80 => 0,
                0x81 => 1,
                0x82 => 2,
                0x85 => 3,
                _ => return Err(bad),
            };
            items[index] = Some(item.value());
        }
        if command.p2 == MGMT_REF {
            return self.authenticate_mgmt(context, command.p1, items);
        }
        if !is_key_slot(command.p2) || command.p2 == ATTESTATION_SLOT {
            return Err(StatusWord::INCORRECT_P1_P2);
        }
        // An empty slot is `6A80`, as yubikit's `_use_private_key` expects of a YubiKey.
        let slot = self.persistent.slots.get(&command.p2).ok_or(bad)?;
        if slot.key.algorithm().id() != command.p1 {
            return Err(bad);
        }
        match slot.pin_policy {
            pin_policy::ALWAYS if !pin_fresh => {
                return Err(StatusWord::SECURITY_STATUS_NOT_SATISFIED);
            }
            pin_policy::ONCE if !self.volatile.pin_verified => {
                return Err(StatusWord::SECURITY_STATUS_NOT_SATISFIED);
            }
            _ => {}
        }
        // The response placeholder `82` must be asked for, empty.
        if items[2] != Some(&[][..]) || items[0].is_some() {
            return Err(bad);
        }
        match slot.touch_policy {
            touch_policy::ALWAYS => context.touch.require(false)?,
            touch_policy::CACHED => context.touch.require(true)?,
            _ => {}
        }
        let result = match (items[1], items[3]) {
            (Some(challenge), None) => slot.key.sign(challenge)?,
            (None, Some(point)) => slot.key.ecdh(point)?,
            _ => return Err(bad),
        };
        let mut out = Zeroizing::new(Vec::with_capacity(result.len() + 8));
        tlv::write_constructed(&mut out, 0x7C, |o| tlv::write(o, 0x82, &result));
        Ok(out)
    }

    /// Management key authentication, as yubico-piv-tool and ykman do it: mutual
    /// (`7C{80}` → `7C{80 witness}`; `7C{80 decrypted, 81 challenge}` → `7C{82 encrypted}`)
    /// or external (`7C{81}` → `7C{81 challenge}`; `7C{82 encrypted}` → `9000`). The
    /// algorithm in P1 must be the key's; a wrong answer is `6982`.
    fn authenticate_mgmt(
        &mut self,
        context: &mut Context<'_>,
        p1: u8,
        items: [Option<&[u8]>; 4],
    ) -> Reply {
        let bad = StatusWord::INCORRECT_DATA;
        let key = &self.persistent.mgmt;
        if MgmtAlgorithm::from_id(p1, context.identity.version) != Some(key.algorithm) {
            return Err(StatusWord::INCORRECT_P1_P2);
        }
        let pending = self.volatile.pending.take();
        let block = key.algorithm.block_len();
        let empty = Some(&[][..]);
        match items {
            // Mutual authentication, step 1: the witness.
            [w, None, None, None] if w == empty => {
                self.volatile.mgmt_authenticated = false;
                let mut plain = Zeroizing::new(vec![0u8; block]);
                context.rng.fill_bytes(&mut plain);
                let witness = key.crypt(&plain, true)?;
                self.volatile.pending = Some(Pending::Witness(key.algorithm, plain));
                let mut out = Zeroizing::new(Vec::new());
                tlv::write_constructed(&mut out, 0x7C, |o| tlv::write(o, 0x80, &witness));
                Ok(out)
            }
            // Mutual authentication, step 2.
            [Some(decrypted), Some(challenge), None | Some([]), None]
                if !decrypted.is_empty() && !challenge.is_empty() =>
            {
                let Some(Pending::Witness(alg, plain)) = pending else {
                    return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
                };
                if alg != key.algorithm || challenge.len() != block {
                    return Err(bad);
                }
                if !state::ct_eq(decrypted, &plain) {
                    return Err(StatusWord::SECURITY_STATUS_NOT_SATISFIED);
                }
                if key.touch {
                    context.touch.require(false)?;
                }
                let response = key.crypt(challenge, true)?;
                self.volatile.mgmt_authenticated = true;
                let mut out = Zeroizing::new(Vec::new());
                tlv::write_constructed(&mut out, 0x7C, |o| tlv::write(o, 0x82, &response));
                Ok(out)
            }
            // External authentication, step 1: a challenge in clear.
            [None, c, None, None] if c == empty => {
                self.volatile.mgmt_authenticated = false;
                let mut challenge = Zeroizing::new(vec![0u8; block]);
                context.rng.fill_bytes(&mut challenge);
                let mut out = Zeroizing::new(Vec::new());
                tlv::write_constructed(&mut out, 0x7C, |o| tlv::write(o, 0x81, &challenge));
                self.volatile.pending = Some(Pending::Challenge(key.algorithm, challenge));
                Ok(out)
            }
            // External authentication, step 2.
            [None, None, Some(response), None] if !response.is_empty() => {
                let Some(Pending::Challenge(alg, challenge)) = pending else {
                    return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
                };
                if alg != key.algorithm || response.len() != block {
                    return Err(bad);
                }
                let expected = key.crypt(&challenge, true)?;
                if !state::ct_eq(response, &expected) {
                    return Err(StatusWord::SECURITY_STATUS_NOT_SATISFIED);
                }
                if key.touch {
                    context.touch.require(false)?;
                }
                self.volatile.mgmt_authenticated = true;
                ok(Vec::new())
            }
            _ => Err(bad),
        }
    }

    /// Reads and resolves the PIN (`AA`) and touch (`AB`) policies of GENERATE and IMPORT
    /// KEY. Unknown values (and the biometric "match" policies a YubiKey 5 without a
    /// fingerprint sensor refuses) are `6A80`.
    fn policies(data: &[u8], slot: u8) -> Result<(u8, u8), StatusWord> {
        let bad = StatusWord::INCORRECT_DATA;
        let byte = |tag: u32| -> Result<Option<u8>, StatusWord> {
            match tlv::find(data, tag).map_err(|_| bad)? {
                None => Ok(None),
                Some([b]) => Ok(Some(*b)),
                Some(_) => Err(bad),
            }
        };
        let pin = match byte(0xAA)?.unwrap_or(pin_policy::DEFAULT) {
            pin_policy::DEFAULT => state::default_pin_policy(slot),
            p @ (pin_policy::NEVER | pin_policy::ONCE | pin_policy::ALWAYS) => p,
            _ => return Err(bad),
        };
        let touch = match byte(0xAB)?.unwrap_or(touch_policy::DEFAULT) {
            touch_policy::DEFAULT => touch_policy::NEVER,
            t @ (touch_policy::NEVER | touch_policy::ALWAYS | touch_policy::CACHED) => t,
            _ => return Err(bad),
        };
        Ok((pin, touch))
    }

    /// GENERATE ASYMMETRIC KEY PAIR (SP 800-73-4 part 2 §3.3.2): `00 47 00 slot` with
    /// `AC { 80 alg [AA pin policy] [AB touch policy] }`; answers `7F49` with the public
    /// key. Needs the management key.
    fn generate(&mut self, context: &mut Context<'_>, command: &Command) -> Reply {
        if command.p1 != 0x00 || !is_key_slot(command.p2) {
            return Err(StatusWord::INCORRECT_P1_P2);
        }
        self.require_mgmt()?;
        let bad = StatusWord::INCORRECT_DATA;
        let template = tlv::find(command.data(), 0xAC).map_err(|_| bad)?.ok_or(bad)?;
        let algorithm = match tlv::find(template, 0x80).map_err(|_| bad)? {
            Some([id]) => Algorithm::from_id(*id, context.identity.version).ok_or(bad)?,
            _ => return Err(bad),
        };
        let (pin, touch) = Self::policies(template, command.p2)?;
        let key = PrivateKey::generate(algorithm, context.rng)?;
        let mut out = Vec::with_capacity(540);
        tlv::write(&mut out, 0x7F49, &key.public_tlvs());
        self.persistent.slots.insert(
            command.p2,
            SlotKey { key, pin_policy: pin, touch_policy: touch, origin: origin::GENERATED },
        );
        ok(out)
    }

    /// IMPORT KEY (Yubico `FE`): `00 FE alg slot` with the private key components and
    /// optional `AA`/`AB` policies. Needs the management key.
    fn import(&mut self, context: &mut Context<'_>, command: &Command) -> Reply {
        if !is_key_slot(command.p2) {
            return Err(StatusWord::INCORRECT_P1_P2);
        }
        let algorithm = Algorithm::from_id(command.p1, context.identity.version)
            .ok_or(StatusWord::INCORRECT_P1_P2)?;
        self.require_mgmt()?;
        let data = command.data();
        let (pin, touch) = Self::policies(data, command.p2)?;
        let key = PrivateKey::import(algorithm, data)?;
        self.persistent.slots.insert(
            command.p2,
            SlotKey { key, pin_policy: pin, touch_policy: touch, origin: origin::IMPORTED },
        );
        ok(Vec::new())
    }

    /// SET MANAGEMENT KEY (Yubico `FF`): `00 FF FF FF|FE` with `alg 9B len key`; P2 `FE`
    /// requires touch for every use. Needs the management key.
    fn set_management_key(&mut self, context: &mut Context<'_>, command: &Command) -> Reply {
        let touch = match (command.p1, command.p2) {
            (0xFF, 0xFF) => false,
            (0xFF, 0xFE) => true,
            _ => return Err(StatusWord::INCORRECT_P1_P2),
        };
        self.require_mgmt()?;
        let bad = StatusWord::INCORRECT_DATA;
        let [alg, reference, len, key @ ..] = command.data() else {
            return Err(bad);
        };
        let algorithm = MgmtAlgorithm::from_id(*alg, context.identity.version).ok_or(bad)?;
        if *reference != MGMT_REF
            || usize::from(*len) != key.len()
            || key.len() != algorithm.key_len()
        {
            return Err(bad);
        }
        self.persistent.mgmt = MgmtKey { algorithm, key: Zeroizing::new(key.to_vec()), touch };
        ok(Vec::new())
    }

    /// RESET (Yubico `FB`): `00 FB 00 00`, allowed only when both PIN and PUK are blocked
    /// (`6985` otherwise). Everything but the attestation key and certificate returns to
    /// factory state.
    fn reset(&mut self, context: &Context<'_>, command: &Command) -> Reply {
        if (command.p1, command.p2) != (0, 0) {
            return Err(StatusWord::INCORRECT_P1_P2);
        }
        if !(self.persistent.pin.blocked() && self.persistent.puk.blocked()) {
            return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
        }
        self.persistent.reset(context.identity);
        self.volatile = Volatile::default();
        ok(Vec::new())
    }

    /// SET PIN RETRIES (Yubico `FA`): `00 FA pin-tries puk-tries`. Needs the management
    /// key and the PIN; sets PIN and PUK back to their factory values.
    fn set_pin_retries(&mut self, command: &Command) -> Reply {
        if command.p1 == 0 || command.p2 == 0 {
            return Err(StatusWord::INCORRECT_P1_P2);
        }
        self.require_mgmt()?;
        if !self.volatile.pin_verified {
            return Err(StatusWord::SECURITY_STATUS_NOT_SATISFIED);
        }
        self.persistent.pin = state::Secret::new(state::DEFAULT_PIN, command.p1);
        self.persistent.puk = state::Secret::new(state::DEFAULT_PUK, command.p2);
        self.volatile.pin_verified = false;
        ok(Vec::new())
    }

    /// ATTEST (Yubico `F9`): `00 F9 slot 00` answers the DER attestation certificate of a
    /// key generated in `slot`. Empty slot: `6A82`; imported key: `6A80`.
    fn attest(&mut self, context: &mut Context<'_>, command: &Command) -> Reply {
        require_version(context, Version(4, 3, 0))?;
        if command.p2 != 0 || !is_key_slot(command.p1) || command.p1 == ATTESTATION_SLOT {
            return Err(StatusWord::INCORRECT_P1_P2);
        }
        let slot = self.persistent.slots.get(&command.p1).ok_or(StatusWord::NOT_FOUND)?;
        if slot.origin != origin::GENERATED {
            return Err(StatusWord::INCORRECT_DATA);
        }
        let f9 = self.persistent.slots.get(&ATTESTATION_SLOT).ok_or(StatusWord::NOT_FOUND)?;
        let f9_cert = self
            .persistent
            .objects
            .get(&OBJ_ATTESTATION)
            .and_then(|object| tlv::find(object, 0x70).ok().flatten());
        let attested = attest::Attested {
            slot: command.p1,
            key: &slot.key,
            pin_policy: slot.pin_policy,
            touch_policy: slot.touch_policy,
        };
        ok(attest::attest(context.identity, &attested, &f9.key, f9_cert, context.rng)?)
    }

    /// GET METADATA (Yubico `F7`, firmware 5.3): `00 F7 00 ref` for the PIN (`80`), PUK
    /// (`81`), management key (`9B`) or a key slot. Tags: `01` algorithm, `02` policy (PIN,
    /// touch), `03` origin, `04` public key, `05` default value, `06` retries (total,
    /// remaining). An empty slot, and a reference this card does not have (such as the
    /// YubiKey Bio's `96`), answer `6A88`: ykman 5 lists keys and probes for a
    /// fingerprint sensor by exactly that status (yubikit `piv.py` `get_bio_metadata`,
    /// ykman `piv.py` `_list_keys`).
    fn metadata(&self, context: &Context<'_>, command: &Command) -> Reply {
        require_version(context, Version(5, 3, 0))?;
        if command.p1 != 0 {
            return Err(StatusWord::INCORRECT_P1_P2);
        }
        let mut out = Vec::new();
        match command.p2 {
            PIN_REF | PUK_REF => {
                let secret =
                    if command.p2 == PIN_REF { &self.persistent.pin } else { &self.persistent.puk };
                tlv::write(&mut out, 0x01, &[0xFF]);
                tlv::write(&mut out, 0x05, &[u8::from(secret.is_default())]);
                tlv::write(&mut out, 0x06, &[secret.total, secret.remaining]);
            }
            MGMT_REF => {
                let key = &self.persistent.mgmt;
                let touch = if key.touch { touch_policy::ALWAYS } else { touch_policy::NEVER };
                tlv::write(&mut out, 0x01, &[key.algorithm.id()]);
                tlv::write(&mut out, 0x02, &[0x00, touch]);
                tlv::write(&mut out, 0x05, &[u8::from(key.is_default())]);
            }
            slot if is_key_slot(slot) => {
                let key = self
                    .persistent
                    .slots
                    .get(&slot)
                    .ok_or(StatusWord::REFERENCED_DATA_NOT_FOUND)?;
                tlv::write(&mut out, 0x01, &[key.key.algorithm().id()]);
                tlv::write(&mut out, 0x02, &[key.pin_policy, key.touch_policy]);
                tlv::write(&mut out, 0x03, &[key.origin]);
                tlv::write(&mut out, 0x04, &key.key.public_tlvs());
            }
            _ => return Err(StatusWord::REFERENCED_DATA_NOT_FOUND),
        }
        ok(out)
    }

    /// MOVE KEY (Yubico `F6`, firmware 5.7): `00 F6 to from` moves a key between slots;
    /// `to` = `FF` deletes it. Needs the management key. The attestation slot takes no
    /// part. An empty source is `6A88` and an occupied destination `6A80`, the statuses
    /// ykman 5 reports as "No key stored" and "DEST slot is not empty".
    fn move_key(&mut self, context: &Context<'_>, command: &Command) -> Reply {
        require_version(context, Version(5, 7, 0))?;
        let (to, from) = (command.p1, command.p2);
        let valid = |s: u8| is_key_slot(s) && s != ATTESTATION_SLOT;
        if !valid(from) || !(valid(to) || to == 0xFF) || to == from {
            return Err(StatusWord::INCORRECT_P1_P2);
        }
        self.require_mgmt()?;
        if to != 0xFF && self.persistent.slots.contains_key(&to) {
            return Err(StatusWord::INCORRECT_DATA);
        }
        let key =
            self.persistent.slots.remove(&from).ok_or(StatusWord::REFERENCED_DATA_NOT_FOUND)?;
        if to != 0xFF {
            self.persistent.slots.insert(to, key);
        }
        ok(Vec::new())
    }
}

impl Applet for Piv {
    fn aid(&self) -> &[u8] {
        &PIV_AID
    }

    fn name(&self) -> &'static str {
        "PIV"
    }

    /// SELECT answers the application property template (SP 800-73-4 part 2 §3.1.1,
    /// table 3) as a YubiKey 5 does: `61 { 4F PIX, 79 { 4F RID } }`.
    fn select(&mut self, _context: &mut Context<'_>) -> Reply {
        self.volatile = Volatile::default();
        let mut out = Vec::new();
        tlv::write_constructed(&mut out, 0x61, |o| {
            tlv::write(o, 0x4F, &PIV_AID[5..]);
            tlv::write_constructed(o, 0x79, |a| tlv::write(a, 0x4F, &PIV_AID[..5]));
        });
        ok(out)
    }

    fn deselect(&mut self) {
        self.volatile = Volatile::default();
    }

    fn save(&self) -> Zeroizing<Vec<u8>> {
        self.save_state()
    }

    fn restore(&mut self, identity: &Identity, saved: &[u8]) -> Result<(), StateError> {
        *self = Self::restore_state(identity, saved).map_err(|e| {
            let text = e.to_string();
            let reason = text.trim_start_matches("invalid saved PIV state: ").to_owned();
            StateError::applet("PIV", reason)
        })?;
        Ok(())
    }

    fn process(&mut self, context: &mut Context<'_>, command: &Command) -> Reply {
        // PIN policy "always" needs the VERIFY to be the command just before.
        let pin_fresh = core::mem::take(&mut self.volatile.pin_fresh);
        // An unfinished management-key challenge does not survive other commands.
        if command.ins != 0x87 {
            self.volatile.pending = None;
        }
        match command.ins {
            0xFD => {
                let v = context.identity.version;
                ok(vec![v.0, v.1, v.2])
            }
            0xF8 => {
                require_version(context, Version(5, 0, 0))?;
                ok(context.identity.serial.to_be_bytes().to_vec())
            }
            0xCB => self.get_data(command),
            0xDB => self.put_data(command),
            0x20 => self.verify(command),
            0x24 => self.change_reference(command),
            0x2C => self.reset_retry_counter(command),
            0x87 => self.general_authenticate(context, command, pin_fresh),
            0x47 => self.generate(context, command),
            0xFE => self.import(context, command),
            0xFF => self.set_management_key(context, command),
            0xFB => self.reset(context, command),
            0xFA => self.set_pin_retries(command),
            0xF9 => self.attest(context, command),
            0xF7 => self.metadata(context, command),
            0xF6 => self.move_key(context, command),
            _ => Err(StatusWord::INS_NOT_SUPPORTED),
        }
    }
}
