//! The OpenPGP card application, version 3.4 (OpenPGP Smart Card Application 3.4.1), as a
//! YubiKey 5 presents it.
//!
//! * AID `D2 76 00 01 24 01 03 04 00 06` + serial + `00 00` (§4.2.1): version 3.4,
//!   manufacturer Yubico (`0006`), and the serial number in BCD, as YubiKeys write it
//!   (yubikit's `OpenPgpAid.serial` reads the four bytes as decimal digits; gpg prints
//!   them in hex, so both show the number printed on the key).
//! * Yubico's GET VERSION (`00 F1 00 00`) answers the firmware version as three BCD bytes
//!   (yubikit's `_read_version`).
//! * Factory state: PW1 `123456`, PW3 `12345678`, no resetting code, retry counters
//!   3/0/3, RSA-2048 in all three slots, PW1 valid for several signatures, no KDF.
//!
//! Commands: SELECT (by the dispatcher), GET DATA, PUT DATA (`DA`, and `DB` for key
//! import), VERIFY, CHANGE REFERENCE DATA, RESET RETRY COUNTER, GENERATE ASYMMETRIC KEY
//! PAIR, PSO:COMPUTE DIGITAL SIGNATURE, PSO:DECIPHER, INTERNAL AUTHENTICATE, GET
//! CHALLENGE, TERMINATE DF, ACTIVATE FILE, SELECT DATA, GET NEXT DATA, and Yubico's GET
//! VERSION and SET PIN RETRIES.

mod data;
mod keys;
mod persist;
mod state;

use keystation_core::{Command, Le, StatusWord, tlv};
use zeroize::Zeroizing;

use crate::applet::{Applet, Context, Reply};
use crate::identity::Version;
use keys::{PrivateKey, Role};
use state::{MAX_PIN_LEN, MIN_PW1_LEN, MIN_PW3_LEN, Persistent, Volatile};

/// OpenPGP card AID prefix: RID `D2 76 00 01 24`, application `01` (§4.2.1).
const RID_AND_APPLICATION: [u8; 6] = [0xD2, 0x76, 0x00, 0x01, 0x24, 0x01];
/// Specification version 3.4 and manufacturer `0006` (Yubico), §4.2.1.
const VERSION_AND_MANUFACTURER: [u8; 4] = [0x03, 0x04, 0x00, 0x06];

/// `6285`: selected file in termination state (§7.2.1, §7.2.16).
const TERMINATED: StatusWord = StatusWord(0x6285);

/// Instruction bytes (§7.1, and Yubico's F1/F2).
mod ins {
    pub(super) const VERIFY: u8 = 0x20;
    pub(super) const CHANGE_REFERENCE_DATA: u8 = 0x24;
    pub(super) const RESET_RETRY_COUNTER: u8 = 0x2C;
    pub(super) const PSO: u8 = 0x2A;
    pub(super) const ACTIVATE_FILE: u8 = 0x44;
    pub(super) const GENERATE_ASYMMETRIC_KEY_PAIR: u8 = 0x47;
    pub(super) const GET_CHALLENGE: u8 = 0x84;
    pub(super) const INTERNAL_AUTHENTICATE: u8 = 0x88;
    pub(super) const SELECT_DATA: u8 = 0xA5;
    pub(super) const GET_DATA: u8 = 0xCA;
    pub(super) const GET_NEXT_DATA: u8 = 0xCC;
    pub(super) const PUT_DATA: u8 = 0xDA;
    pub(super) const PUT_DATA_ODD: u8 = 0xDB;
    pub(super) const TERMINATE_DF: u8 = 0xE6;
    pub(super) const GET_VERSION: u8 = 0xF1;
    pub(super) const SET_PIN_RETRIES: u8 = 0xF2;
}

/// The OpenPGP applet.
#[derive(Debug)]
pub struct OpenPgp {
    aid: Vec<u8>,
    version: Version,
    state: Persistent,
    volatile: Volatile,
}

/// The four serial-number bytes of the AID: BCD when the serial has at most eight decimal
/// digits (as YubiKeys write it), binary otherwise.
fn serial_bytes(serial: u32) -> [u8; 4] {
    if serial > 99_999_999 {
        return serial.to_be_bytes();
    }
    let mut out = [0u8; 4];
    let mut rest = serial;
    for byte in out.iter_mut().rev() {
        let low = (rest % 10) as u8;
        let high = (rest / 10 % 10) as u8;
        *byte = (high << 4) | low;
        rest /= 100;
    }
    out
}

/// One version component in BCD (saturating at 99).
fn bcd(value: u8) -> u8 {
    let value = value.min(99);
    ((value / 10) << 4) | (value % 10)
}

impl OpenPgp {
    /// A factory-fresh OpenPGP application for the card with this identity.
    pub fn new(identity: &crate::Identity) -> Self {
        let mut aid = RID_AND_APPLICATION.to_vec();
        aid.extend_from_slice(&VERSION_AND_MANUFACTURER);
        aid.extend_from_slice(&serial_bytes(identity.serial));
        aid.extend_from_slice(&[0x00, 0x00]);
        Self {
            aid,
            version: identity.version,
            state: Persistent::factory(),
            volatile: Volatile::default(),
        }
    }

    fn view(&self) -> data::View<'_> {
        data::View {
            aid: &self.aid,
            version: self.version,
            state: &self.state,
            volatile: self.volatile,
        }
    }

    /// VERIFY (§7.2.2). P2 `81` PW1 for PSO:CDS, `82` PW1 for other commands, `83` PW3.
    /// Without data: `9000` if verified, else `63Cx` with the tries left. P1 `FF` with no
    /// data resets the access status.
    fn verify(&mut self, command: &Command) -> Reply {
        let data = command.data();
        if command.p1 == 0xFF {
            if !data.is_empty() {
                return Err(StatusWord::WRONG_LENGTH);
            }
            match command.p2 {
                0x81 => self.volatile.pw1_sign = false,
                0x82 => self.volatile.pw1_other = false,
                0x83 => self.volatile.pw3 = false,
                _ => return Err(StatusWord::INCORRECT_P1_P2),
            }
            return Ok(Zeroizing::default());
        }
        if command.p1 != 0x00 {
            return Err(StatusWord::INCORRECT_P1_P2);
        }
        let (pin, verified) = match command.p2 {
            0x81 => (&mut self.state.pw1, &mut self.volatile.pw1_sign),
            0x82 => (&mut self.state.pw1, &mut self.volatile.pw1_other),
            0x83 => (&mut self.state.pw3, &mut self.volatile.pw3),
            _ => return Err(StatusWord::INCORRECT_P1_P2),
        };
        if data.is_empty() {
            return if *verified {
                Ok(Zeroizing::default())
            } else {
                Err(StatusWord::from_bytes(0x63, 0xC0 | pin.tries.min(15)))
            };
        }
        match pin.check(data) {
            Ok(()) => {
                *verified = true;
                Ok(Zeroizing::default())
            }
            Err(sw) => {
                *verified = false;
                Err(sw)
            }
        }
    }

    /// CHANGE REFERENCE DATA (§7.2.3): P2 `81` (PW1) or `83` (PW3); data is the old
    /// PIN followed by the new one.
    fn change_reference_data(&mut self, command: &Command) -> Reply {
        if command.p1 != 0x00 {
            return Err(StatusWord::INCORRECT_P1_P2);
        }
        let (pin, min) = match command.p2 {
            0x81 => (&mut self.state.pw1, MIN_PW1_LEN),
            0x83 => (&mut self.state.pw3, MIN_PW3_LEN),
            _ => return Err(StatusWord::INCORRECT_P1_P2),
        };
        let data = command.data();
        if pin.blocked() {
            return Err(StatusWord::AUTH_METHOD_BLOCKED);
        }
        let split = pin.len().min(data.len());
        let (old, new) = data.split_at(split);
        if let Err(sw) = pin.check(old) {
            if command.p2 == 0x81 {
                self.volatile.pw1_sign = false;
                self.volatile.pw1_other = false;
            } else {
                self.volatile.pw3 = false;
            }
            return Err(sw);
        }
        if !(min..=MAX_PIN_LEN).contains(&new.len()) {
            return Err(StatusWord::WRONG_LENGTH);
        }
        pin.set(new);
        Ok(Zeroizing::default())
    }

    /// RESET RETRY COUNTER (§7.2.4): P1 `00` with the resetting code followed by the new
    /// PW1; P1 `02` with the new PW1 after PW3 was verified. P2 is `81`.
    fn reset_retry_counter(&mut self, command: &Command) -> Reply {
        if command.p2 != 0x81 {
            return Err(StatusWord::INCORRECT_P1_P2);
        }
        let data = command.data();
        let new = match command.p1 {
            0x00 => {
                if self.state.rc.blocked() {
                    return Err(StatusWord::AUTH_METHOD_BLOCKED);
                }
                let (code, new) = data.split_at(self.state.rc.len().min(data.len()));
                self.state.rc.check(code)?;
                new
            }
            0x02 => {
                if !self.volatile.pw3 {
                    return Err(StatusWord::SECURITY_STATUS_NOT_SATISFIED);
                }
                data
            }
            _ => return Err(StatusWord::INCORRECT_P1_P2),
        };
        if !(MIN_PW1_LEN..=MAX_PIN_LEN).contains(&new.len()) {
            return Err(StatusWord::WRONG_LENGTH);
        }
        self.state.pw1.set(new);
        Ok(Zeroizing::default())
    }

    /// GENERATE ASYMMETRIC KEY PAIR (§7.2.14): P1 `80` generates (PW3 needed), `81`
    /// reads the public key; the data is the CRT `B6`, `B8` or `A4` naming the slot.
    fn generate(&mut self, context: &mut Context<'_>, command: &Command) -> Reply {
        if command.p2 != 0x00 {
            return Err(StatusWord::INCORRECT_P1_P2);
        }
        let role = crt_role(command.data())?;
        match command.p1 {
            0x80 => {
                if !self.volatile.pw3 {
                    return Err(StatusWord::SECURITY_STATUS_NOT_SATISFIED);
                }
                let algorithm = self.state.slot(role).algorithm;
                let key = PrivateKey::generate(algorithm, context.rng)?;
                let template = key.public_key_template();
                self.install(role, key, 1);
                Ok(Zeroizing::new(template))
            }
            0x81 => match &self.state.slot(role).key {
                Some(key) => Ok(Zeroizing::new(key.public_key_template())),
                None => Err(StatusWord::REFERENCED_DATA_NOT_FOUND),
            },
            _ => Err(StatusWord::INCORRECT_P1_P2),
        }
    }

    /// Puts a new key in a slot: status (1 generated, 2 imported), fingerprint and
    /// timestamp cleared (the host writes the new ones), signature counter reset for the
    /// signature key (§4.4.3.10).
    fn install(&mut self, role: Role, key: PrivateKey, status: u8) {
        let slot = self.state.slot(role);
        slot.key = Some(key);
        slot.status = status;
        slot.fingerprint = [0; 20];
        slot.timestamp = [0; 4];
        if role == Role::Sig {
            self.state.signature_counter = 0;
        }
    }

    /// PUT DATA with odd INS `DB`, P1-P2 `3FFF`: key import with the extended header
    /// list `4D` (§4.4.3.12): CRT, `7F48` (tags and lengths), `5F48` (the values).
    fn import(&mut self, command: &Command) -> Reply {
        if (command.p1, command.p2) != (0x3F, 0xFF) {
            return Err(StatusWord::INCORRECT_P1_P2);
        }
        if !self.volatile.pw3 {
            return Err(StatusWord::SECURITY_STATUS_NOT_SATISFIED);
        }
        let bad = StatusWord::INCORRECT_DATA;
        let list = tlv::find(command.data(), 0x4D).map_err(|_| bad)?.ok_or(bad)?;
        let mut crt = None;
        let mut header = None;
        let mut values = None;
        for item in tlv::parse(list) {
            let item = item.map_err(|_| bad)?;
            match item.tag().0 {
                0x7F48 => header = Some(item.value()),
                0x5F48 => values = Some(item.value()),
                tag => {
                    if crt.is_none() {
                        crt = Role::from_crt(tag);
                    }
                }
            }
        }
        let (Some(role), Some(header), Some(values)) = (crt, header, values) else {
            return Err(bad);
        };
        let parts = split_template(header, values)?;
        let key = PrivateKey::import(self.state.slot(role).algorithm, &parts)?;
        self.install(role, key, 2);
        Ok(Zeroizing::default())
    }

    /// PSO (§7.2.10, §7.2.11): P1-P2 `9E9A` computes a digital signature (PW1 `81`),
    /// `8086` deciphers (PW1 `82`).
    fn pso(&mut self, context: &mut Context<'_>, command: &Command) -> Reply {
        match (command.p1, command.p2) {
            (0x9E, 0x9A) => {
                if !self.volatile.pw1_sign {
                    return Err(StatusWord::SECURITY_STATUS_NOT_SATISFIED);
                }
                let slot = self.state.slot(Role::Sig);
                let key = slot.key.as_ref().ok_or(StatusWord::REFERENCED_DATA_NOT_FOUND)?;
                require_touch(context, slot.uif)?;
                let signature = key.sign(command.data(), context.rng)?;
                self.state.signature_counter = (self.state.signature_counter + 1).min(0xFF_FFFF);
                if !self.state.pw1_multi {
                    self.volatile.pw1_sign = false;
                }
                Ok(signature)
            }
            (0x80, 0x86) => {
                if !self.volatile.pw1_other {
                    return Err(StatusWord::SECURITY_STATUS_NOT_SATISFIED);
                }
                let slot = self.state.slot(Role::Dec);
                let key = slot.key.as_ref().ok_or(StatusWord::REFERENCED_DATA_NOT_FOUND)?;
                require_touch(context, slot.uif)?;
                key.decipher(command.data(), context.rng)
            }
            _ => Err(StatusWord::INCORRECT_P1_P2),
        }
    }

    /// INTERNAL AUTHENTICATE (§7.2.13): signs with the authentication key; PW1 `82`.
    fn internal_authenticate(&mut self, context: &mut Context<'_>, command: &Command) -> Reply {
        if (command.p1, command.p2) != (0x00, 0x00) {
            return Err(StatusWord::INCORRECT_P1_P2);
        }
        if !self.volatile.pw1_other {
            return Err(StatusWord::SECURITY_STATUS_NOT_SATISFIED);
        }
        let slot = self.state.slot(Role::Aut);
        let key = slot.key.as_ref().ok_or(StatusWord::REFERENCED_DATA_NOT_FOUND)?;
        require_touch(context, slot.uif)?;
        key.sign(command.data(), context.rng)
    }

    /// GET CHALLENGE (§7.2.15): Le random bytes, at most what `C0` announces.
    fn get_challenge(&mut self, context: &mut Context<'_>, command: &Command) -> Reply {
        use rand_core::RngCore;
        if (command.p1, command.p2) != (0x00, 0x00) {
            return Err(StatusWord::INCORRECT_P1_P2);
        }
        let len = match command.le {
            Le::Exactly(n) if n as usize <= usize::from(data::MAX_EXTENDED) => n as usize,
            Le::Max => keystation_core::apdu::SHORT_MAX_LE,
            _ => return Err(StatusWord::WRONG_LENGTH),
        };
        let mut out = Zeroizing::new(vec![0u8; len]);
        context.rng.fill_bytes(&mut out);
        Ok(out)
    }

    /// TERMINATE DF (§7.2.16): allowed with PW3 verified, or when PW1 and PW3 are both
    /// blocked (ykman's reset blocks both before sending it).
    fn terminate(&mut self, command: &Command) -> Reply {
        if (command.p1, command.p2) != (0x00, 0x00) {
            return Err(StatusWord::INCORRECT_P1_P2);
        }
        let blocked = self.state.pw1.blocked() && self.state.pw3.blocked();
        if !self.volatile.pw3 && !blocked {
            return Err(StatusWord::SECURITY_STATUS_NOT_SATISFIED);
        }
        self.state.terminated = true;
        self.volatile = Volatile::default();
        Ok(Zeroizing::default())
    }

    /// SELECT DATA (§7.2.5): P1 is the occurrence (0–2) of the cardholder certificate
    /// `7F21` that GET DATA and PUT DATA then address, P2 is `04`, the data
    /// `60 { 5C { 7F 21 } }` (firmware up to 5.4.3 takes, and ykman sends, an extra
    /// length byte `06` in front).
    fn select_data(&mut self, command: &Command) -> Reply {
        if command.p2 != 0x04 {
            return Err(StatusWord::INCORRECT_P1_P2);
        }
        let data = command.data();
        let data = match data {
            [0x06, rest @ ..] if rest.len() == 6 => rest,
            other => other,
        };
        let bad = StatusWord::INCORRECT_DATA;
        let tag_list = tlv::find(data, 0x60).map_err(|_| bad)?.ok_or(bad)?;
        let tag = tlv::find(tag_list, 0x5C).map_err(|_| bad)?.ok_or(bad)?;
        if tag != [0x7F, 0x21] {
            return Err(StatusWord::REFERENCED_DATA_NOT_FOUND);
        }
        if command.p1 > 2 {
            return Err(StatusWord::REFERENCED_DATA_NOT_FOUND);
        }
        self.volatile.certificate = usize::from(command.p1);
        Ok(Zeroizing::default())
    }

    /// Yubico SET PIN RETRIES (`F2`): three counters (PW1, resetting code, PW3), each
    /// 1–99; PW3 needed. The counters are set to their new maximum.
    fn set_pin_retries(&mut self, command: &Command) -> Reply {
        if (command.p1, command.p2) != (0x00, 0x00) {
            return Err(StatusWord::INCORRECT_P1_P2);
        }
        if !self.volatile.pw3 {
            return Err(StatusWord::SECURITY_STATUS_NOT_SATISFIED);
        }
        let &[pw1, rc, pw3] = command.data() else { return Err(StatusWord::WRONG_LENGTH) };
        if [pw1, rc, pw3].iter().any(|n| !(1..=99).contains(n)) {
            return Err(StatusWord::INCORRECT_DATA);
        }
        let s = &mut self.state;
        s.pw1.max = pw1;
        s.pw1.tries = pw1;
        s.rc.max = rc;
        s.rc.tries = if s.rc.len() == 0 { 0 } else { rc };
        s.pw3.max = pw3;
        s.pw3.tries = pw3;
        Ok(Zeroizing::default())
    }
}

/// The slot a control reference template names (§7.2.14): `B6`, `B8` or `A4`, empty or
/// with the key reference `84 01 0x`. The attestation key (`84 01 81`) is not on this card.
fn crt_role(data: &[u8]) -> Result<Role, StatusWord> {
    let item = match tlv::parse(data).next() {
        None => return Err(StatusWord::WRONG_LENGTH),
        Some(Err(_)) => return Err(StatusWord::INCORRECT_DATA),
        Some(Ok(item)) => item,
    };
    let role = Role::from_crt(item.tag().0).ok_or(StatusWord::INCORRECT_DATA)?;
    match item.value() {
        [] => Ok(role),
        [0x84, 0x01, reference] if usize::from(*reference) == role.index() + 1 => Ok(role),
        [0x84, 0x01, _] => Err(StatusWord::REFERENCED_DATA_NOT_FOUND),
        _ => Err(StatusWord::INCORRECT_DATA),
    }
}

/// Pairs the tag–length list of `7F48` with the concatenated values of `5F48`
/// (§4.4.3.12).
fn split_template<'a>(header: &[u8], values: &'a [u8]) -> Result<Vec<(u32, &'a [u8])>, StatusWord> {
    let bad = StatusWord::INCORRECT_DATA;
    let mut parts = Vec::new();
    let mut pos = 0;
    let mut offset = 0;
    while pos < header.len() {
        let tag = u32::from(header[pos]);
        pos += 1;
        let first = *header.get(pos).ok_or(bad)?;
        pos += 1;
        let len = match first {
            0x00..=0x7F => usize::from(first),
            0x81 => {
                let b = *header.get(pos).ok_or(bad)?;
                pos += 1;
                usize::from(b)
            }
            0x82 => {
                let hi = *header.get(pos).ok_or(bad)?;
                let lo = *header.get(pos + 1).ok_or(bad)?;
                pos += 2;
                usize::from(u16::from_be_bytes([hi, lo]))
            }
            _ => return Err(bad),
        };
        let value = values.get(offset..offset + len).ok_or(bad)?;
        offset += len;
        parts.push((tag, value));
    }
    if offset != values.len() {
        return Err(bad);
    }
    Ok(parts)
}

impl Applet for OpenPgp {
    fn aid(&self) -> &[u8] {
        &self.aid
    }

    fn name(&self) -> &'static str {
        "OpenPGP"
    }

    /// SELECT (§7.2.1): empty data; `6285` in termination state. Selecting resets the
    /// access status.
    fn select(&mut self, _context: &mut Context<'_>) -> Reply {
        self.volatile = Volatile::default();
        if self.state.terminated { Err(TERMINATED) } else { Ok(Zeroizing::default()) }
    }

    fn deselect(&mut self) {
        self.volatile = Volatile::default();
    }

    fn save(&self) -> Zeroizing<Vec<u8>> {
        persist::save(self)
    }

    fn restore(
        &mut self,
        identity: &crate::Identity,
        saved: &[u8],
    ) -> Result<(), crate::StateError> {
        persist::restore(self, identity, saved)
    }

    fn process(&mut self, context: &mut Context<'_>, command: &Command) -> Reply {
        if self.state.terminated {
            return match command.ins {
                ins::ACTIVATE_FILE => {
                    self.state = Persistent::factory();
                    self.volatile = Volatile::default();
                    Ok(Zeroizing::default())
                }
                ins::TERMINATE_DF => Ok(Zeroizing::default()),
                _ => Err(TERMINATED),
            };
        }
        match command.ins {
            ins::GET_DATA => {
                let tag = u16::from_be_bytes([command.p1, command.p2]);
                self.view().get(tag).map(Zeroizing::new)
            }
            ins::PUT_DATA => {
                let tag = u16::from_be_bytes([command.p1, command.p2]);
                data::put(&mut self.state, self.volatile, tag, command.data())?;
                Ok(Zeroizing::default())
            }
            ins::PUT_DATA_ODD => self.import(command),
            ins::VERIFY => self.verify(command),
            ins::CHANGE_REFERENCE_DATA => self.change_reference_data(command),
            ins::RESET_RETRY_COUNTER => self.reset_retry_counter(command),
            ins::GENERATE_ASYMMETRIC_KEY_PAIR => self.generate(context, command),
            ins::PSO => self.pso(context, command),
            ins::INTERNAL_AUTHENTICATE => self.internal_authenticate(context, command),
            ins::GET_CHALLENGE => self.get_challenge(context, command),
            ins::TERMINATE_DF => self.terminate(command),
            // ACTIVATE FILE on an active application does nothing (§7.2.17).
            ins::ACTIVATE_FILE => Ok(Zeroizing::default()),
            ins::SELECT_DATA => self.select_data(command),
            // GET NEXT DATA (§7.2.7): the next occurrence of the cardholder certificate.
            ins::GET_NEXT_DATA => {
                if (command.p1, command.p2) != (0x7F, 0x21) {
                    return Err(StatusWord::REFERENCED_DATA_NOT_FOUND);
                }
                let next = self.volatile.certificate + 1;
                if next > 2 {
                    return Err(StatusWord::REFERENCED_DATA_NOT_FOUND);
                }
                self.volatile.certificate = next;
                self.view().get(0x7F21).map(Zeroizing::new)
            }
            ins::GET_VERSION => {
                let Version(major, minor, patch) = self.version;
                Ok(Zeroizing::new(vec![bcd(major), bcd(minor), bcd(patch)]))
            }
            ins::SET_PIN_RETRIES => self.set_pin_retries(command),
            _ => Err(StatusWord::INS_NOT_SUPPORTED),
        }
    }
}

/// Waits for a touch when the key's user interaction flag asks for one (Yubico's UIF DOs
/// `D6`–`D8`, first byte: `00` off, `01` on, `02` fixed, `03` cached, `04` cached-fixed).
fn require_touch(context: &mut Context<'_>, uif: u8) -> Result<(), StatusWord> {
    match uif {
        0x01 | 0x02 => context.touch.require(false),
        0x03 | 0x04 => context.touch.require(true),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_is_bcd_like_a_yubikey() {
        assert_eq!(serial_bytes(12_345_678), [0x12, 0x34, 0x56, 0x78]);
        assert_eq!(serial_bytes(10_000_001), [0x10, 0x00, 0x00, 0x01]);
        assert_eq!(serial_bytes(7), [0, 0, 0, 0x07]);
        assert_eq!(serial_bytes(100_000_000), 100_000_000u32.to_be_bytes());
        assert_eq!((bcd(5), bcd(12), bcd(200)), (0x05, 0x12, 0x99));
    }

    #[test]
    fn template_split_pairs_tags_with_values() {
        let header = [0x91, 0x03, 0x92, 0x81, 0x80];
        let values: Vec<u8> = (0..131).map(|i| i as u8).collect();
        let parts = split_template(&header, &values).unwrap_or_default();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0], (0x91, &values[..3]));
        assert_eq!(parts[1].1.len(), 128);
        assert!(split_template(&header, &values[..100]).is_err());
        assert!(split_template(&[0x91], &values).is_err());
        assert!(split_template(&[0x91, 0x01], &[1, 2]).is_err());
    }
}
