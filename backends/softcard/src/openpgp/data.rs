//! GET DATA (§7.2.6) and PUT DATA (§7.2.8): the data objects of OpenPGP card 3.4 §4.4,
//! with the values and layout a YubiKey 5 uses.

use keystation_core::{StatusWord, tlv};

use super::keys::{
    ALGO_ECDH, ALGO_ECDSA, ALGO_EDDSA, OID_ED25519, OID_P256, OID_P384, OID_X25519, Role,
    ecc_attributes, parse_attributes, rsa_attributes,
};
use super::state::{MAX_PIN_LEN, MIN_PW3_LEN, Persistent, Volatile};
use crate::identity::Version;

/// Historical bytes `5F52` of a YubiKey 5 (§4.4.3.2, ISO/IEC 7816-4 §8.1.1): category
/// `00`, card capabilities `73 00 00 E0` (command chaining, extended Lc/Le, extended
/// length information in `7F66`), status `05 90 00`.
pub(super) const HISTORICAL_BYTES: [u8; 8] = [0x00, 0x73, 0x00, 0x00, 0xE0, 0x05, 0x90, 0x00];

/// Largest command and response a YubiKey 5 takes in one extended APDU (`7F66`, §4.1.3.1).
pub(super) const MAX_EXTENDED: u16 = 0x0BFE;
/// Largest cardholder certificate (extended capabilities bytes 5–6).
const MAX_CERTIFICATE: usize = 0x0800;
/// Largest special DO (private use, login, URL; extended capabilities bytes 7–8).
const MAX_SPECIAL_DO: usize = 0xFF;
/// Largest cardholder name (§4.4.3.3).
const MAX_NAME: usize = 39;

/// Extended capabilities flags (§4.4.3.7, byte 1) of a YubiKey 5: GET CHALLENGE, key
/// import, changeable PW status, private use DOs, changeable algorithm attributes, KDF.
const EXTENDED_CAPABILITY_FLAGS: u8 = 0x7D;

/// The extended capabilities `C0` (§4.4.3.7): flags, no secure messaging, challenge up
/// to 3070 bytes, certificate up to 2048, special DOs up to 255, no PIN block 2 format,
/// no MSE.
fn extended_capabilities() -> [u8; 10] {
    let [ch, cl] = MAX_EXTENDED.to_be_bytes();
    let [rh, rl] = (MAX_CERTIFICATE as u16).to_be_bytes();
    [EXTENDED_CAPABILITY_FLAGS, 0x00, ch, cl, rh, rl, 0x00, MAX_SPECIAL_DO as u8, 0x00, 0x00]
}

/// The "button" bit of the general feature management DO (`7F74`, §4.4.3.13).
const FEATURE_BUTTON: u8 = 0x20;

/// What GET DATA needs to know besides the persistent state.
pub(super) struct View<'a> {
    pub(super) aid: &'a [u8],
    pub(super) version: Version,
    pub(super) state: &'a Persistent,
    pub(super) volatile: Volatile,
}

impl View<'_> {
    /// GET DATA for the DO `tag` (P1-P2, §7.2.6). Unknown DOs answer `6A88`.
    pub(super) fn get(&self, tag: u16) -> Result<Vec<u8>, StatusWord> {
        let s = self.state;
        let mut out = Vec::new();
        match tag {
            0x004F => out.extend_from_slice(self.aid),
            0x005B => out.extend_from_slice(&s.name),
            0x005E => out.extend_from_slice(&s.login),
            0x5F2D => out.extend_from_slice(&s.language),
            0x5F35 => out.push(s.sex),
            0x5F50 => out.extend_from_slice(&s.url),
            0x5F52 => out.extend_from_slice(&HISTORICAL_BYTES),
            0x0065 => tlv::write_constructed(&mut out, 0x65, |out| {
                tlv::write(out, 0x5B, &s.name);
                tlv::write(out, 0x5F2D, &s.language);
                tlv::write(out, 0x5F35, &[s.sex]);
            }),
            0x006E => self.application_related(&mut out),
            0x0073 => self.discretionary(&mut out),
            0x007A => tlv::write_constructed(&mut out, 0x7A, |out| {
                tlv::write(out, 0x93, &s.signature_counter.to_be_bytes()[1..]);
            }),
            0x7F21 => out.extend_from_slice(&s.certificates[self.volatile.certificate.min(2)]),
            0x7F66 => extended_length_info(&mut out),
            0x7F74 => tlv::write(&mut out, 0x81, &[FEATURE_BUTTON]),
            0x00C0 => out.extend_from_slice(&extended_capabilities()),
            0x00C1..=0x00C3 => out.extend_from_slice(&s.slots[usize::from(tag - 0xC1)].attributes),
            0x00C4 => out.extend_from_slice(&s.pw_status()),
            0x00C5 => s.slots.iter().for_each(|slot| out.extend_from_slice(&slot.fingerprint)),
            0x00C6 => s.slots.iter().for_each(|slot| out.extend_from_slice(&slot.ca_fingerprint)),
            0x00CD => s.slots.iter().for_each(|slot| out.extend_from_slice(&slot.timestamp)),
            0x00D6..=0x00D8 => {
                out.extend_from_slice(&[s.slots[usize::from(tag - 0xD6)].uif, FEATURE_BUTTON])
            }
            0x00D9 => out.extend_from_slice(&[s.att_uif, FEATURE_BUTTON]),
            0x00DE => key_information(s, &mut out),
            0x00F9 => out.extend_from_slice(&s.kdf),
            0x00FA => self.algorithm_information(&mut out),
            0x0101 | 0x0102 => out.extend_from_slice(&s.private[usize::from(tag - 0x0101)]),
            0x0103 => {
                if !self.volatile.pw1_other {
                    return Err(StatusWord::SECURITY_STATUS_NOT_SATISFIED);
                }
                out.extend_from_slice(&s.private[2]);
            }
            0x0104 => {
                if !self.volatile.pw3 {
                    return Err(StatusWord::SECURITY_STATUS_NOT_SATISFIED);
                }
                out.extend_from_slice(&s.private[3]);
            }
            _ => return Err(StatusWord::REFERENCED_DATA_NOT_FOUND),
        }
        Ok(out)
    }

    /// Application related data `6E` (§4.4.3.1), laid out as a YubiKey 5 does: AID,
    /// historical bytes, extended length information, general feature management, and
    /// the discretionary data objects `73`.
    fn application_related(&self, out: &mut Vec<u8>) {
        tlv::write_constructed(out, 0x6E, |out| {
            tlv::write(out, 0x4F, self.aid);
            tlv::write(out, 0x5F52, &HISTORICAL_BYTES);
            tlv::write_constructed(out, 0x7F66, extended_length_info);
            tlv::write_constructed(out, 0x7F74, |out| tlv::write(out, 0x81, &[FEATURE_BUTTON]));
            self.discretionary(out);
        });
    }

    /// Discretionary data objects `73` (§4.4.3.1), with Yubico's touch DOs `D6`–`D9`.
    fn discretionary(&self, out: &mut Vec<u8>) {
        let s = self.state;
        tlv::write_constructed(out, 0x73, |out| {
            tlv::write(out, 0xC0, &extended_capabilities());
            for (tag, slot) in (0xC1u32..).zip(&s.slots) {
                tlv::write(out, tag, &slot.attributes);
            }
            tlv::write(out, 0xC4, &s.pw_status());
            tlv::write_header(out, 0xC5, 60);
            s.slots.iter().for_each(|slot| out.extend_from_slice(&slot.fingerprint));
            tlv::write_header(out, 0xC6, 60);
            s.slots.iter().for_each(|slot| out.extend_from_slice(&slot.ca_fingerprint));
            tlv::write_header(out, 0xCD, 12);
            s.slots.iter().for_each(|slot| out.extend_from_slice(&slot.timestamp));
            let mut info = Vec::new();
            key_information(s, &mut info);
            tlv::write(out, 0xDE, &info);
            for (tag, slot) in (0xD6u32..).zip(&s.slots) {
                tlv::write(out, tag, &[slot.uif, FEATURE_BUTTON]);
            }
            if self.version >= Version(5, 2, 1) {
                tlv::write(out, 0xD9, &[s.att_uif, FEATURE_BUTTON]);
            }
        });
    }

    /// Algorithm information `FA` (§4.4.3.11): every attribute PUT DATA C1–C3 accepts.
    /// Firmware before 5.6.1 lists X25519 with the EdDSA ID in every slot and Ed25519 for
    /// decryption, and ykman (yubikit `get_algorithm_information`) corrects exactly
    /// those entries, failing if they are absent; so this card lists them as such
    /// firmware does, and as 5.6.1 does for later versions. The attestation key (`DA`)
    /// appears as on the real key, though this card does not implement it.
    fn algorithm_information(&self, out: &mut Vec<u8>) {
        let buggy = self.version < Version(5, 6, 1);
        tlv::write_constructed(out, 0xFA, |out| {
            for tag in [0xC1u32, 0xC2, 0xC3, 0xDA] {
                let ecc = if tag == 0xC2 { ALGO_ECDH } else { ALGO_ECDSA };
                for bits in [2048u16, 3072, 4096] {
                    tlv::write(out, tag, &rsa_attributes(bits));
                }
                tlv::write(out, tag, &ecc_attributes(ecc, OID_P256));
                tlv::write(out, tag, &ecc_attributes(ecc, OID_P384));
                if buggy || tag != 0xC2 {
                    tlv::write(out, tag, &ecc_attributes(ALGO_EDDSA, OID_ED25519));
                }
                if buggy {
                    tlv::write(out, tag, &ecc_attributes(ALGO_EDDSA, OID_X25519));
                }
                if tag == 0xC2 {
                    tlv::write(out, tag, &ecc_attributes(ALGO_ECDH, OID_X25519));
                }
            }
        });
    }
}

/// Extended length information `7F66` (§4.1.3.1): maximum command and response length.
fn extended_length_info(out: &mut Vec<u8>) {
    tlv::write(out, 0x02, &MAX_EXTENDED.to_be_bytes());
    tlv::write(out, 0x02, &MAX_EXTENDED.to_be_bytes());
}

/// Key information `DE` (§4.4.3.8): key reference and status for each slot.
fn key_information(s: &Persistent, out: &mut Vec<u8>) {
    for (reference, slot) in (1u8..).zip(&s.slots) {
        out.extend_from_slice(&[reference, slot.status]);
    }
}

/// PUT DATA (`DA`, §7.2.8) of the simple DO `tag`. Access: `0101` and `0103` need PW1
/// verified for P2 = 82, everything else PW3 (§4.4.1).
pub(super) fn put(
    state: &mut Persistent,
    volatile: Volatile,
    tag: u16,
    data: &[u8],
) -> Result<(), StatusWord> {
    let pw1_needed = matches!(tag, 0x0101 | 0x0103);
    let allowed = if pw1_needed { volatile.pw1_other } else { volatile.pw3 };
    let known = matches!(
        tag,
        0x0101..=0x0104
            | 0x005B
            | 0x005E
            | 0x5F2D
            | 0x5F35
            | 0x5F50
            | 0x7F21
            | 0x00C1..=0x00C4
            | 0x00C7..=0x00D0
            | 0x00D3
            | 0x00D6..=0x00D9
            | 0x00F9
    );
    if !known {
        return Err(StatusWord::REFERENCED_DATA_NOT_FOUND);
    }
    if !allowed {
        return Err(StatusWord::SECURITY_STATUS_NOT_SATISFIED);
    }
    let limit = |max: usize| if data.len() > max { Err(StatusWord::WRONG_LENGTH) } else { Ok(()) };
    match tag {
        0x0101..=0x0104 => {
            limit(MAX_SPECIAL_DO)?;
            state.private[usize::from(tag - 0x0101)] = data.to_vec();
        }
        0x005B => {
            limit(MAX_NAME)?;
            state.name = data.to_vec();
        }
        0x005E => {
            limit(MAX_SPECIAL_DO)?;
            state.login = data.to_vec();
        }
        0x5F2D => {
            limit(8)?;
            state.language = data.to_vec();
        }
        0x5F35 => match data {
            [sex @ (0x30 | 0x31 | 0x32 | 0x39)] => state.sex = *sex,
            _ => return Err(StatusWord::INCORRECT_DATA),
        },
        0x5F50 => {
            limit(MAX_SPECIAL_DO)?;
            state.url = data.to_vec();
        }
        0x7F21 => {
            limit(MAX_CERTIFICATE)?;
            state.certificates[volatile.certificate.min(2)] = data.to_vec();
        }
        0x00C1..=0x00C3 => {
            let role = [Role::Sig, Role::Dec, Role::Aut][usize::from(tag - 0xC1)];
            let algorithm = parse_attributes(role, data)?;
            let slot = state.slot(role);
            if slot.attributes != data {
                // New attributes invalidate the key in the slot (§4.4.3.9).
                slot.attributes = data.to_vec();
                slot.algorithm = algorithm;
                slot.key = None;
                slot.status = 0;
            }
        }
        0x00C4 => match data {
            [policy @ (0 | 1), ..] if data.len() <= 4 => state.pw1_multi = *policy == 1,
            _ => return Err(StatusWord::INCORRECT_DATA),
        },
        0x00C7..=0x00C9 => {
            state.slots[usize::from(tag - 0xC7)].fingerprint = exact(data)?;
        }
        0x00CA..=0x00CC => {
            state.slots[usize::from(tag - 0xCA)].ca_fingerprint = exact(data)?;
        }
        0x00CE..=0x00D0 => {
            state.slots[usize::from(tag - 0xCE)].timestamp = exact(data)?;
        }
        0x00D3 => match data.len() {
            0 => state.rc = super::state::Pin::unset(state.rc.max),
            MIN_PW3_LEN..=MAX_PIN_LEN => state.rc.set(data),
            _ => return Err(StatusWord::INCORRECT_DATA),
        },
        0x00D6..=0x00D8 => put_uif(&mut state.slots[usize::from(tag - 0xD6)].uif, data)?,
        0x00D9 => put_uif(&mut state.att_uif, data)?,
        0x00F9 => put_kdf(state, data)?,
        _ => return Err(StatusWord::REFERENCED_DATA_NOT_FOUND),
    }
    Ok(())
}

/// PUT DATA of a user interaction flag DO (`D6`–`D9`, Yubico): the flag (0 off, 1 on,
/// 2 fixed, 3 cached, 4 cached-fixed) and optionally the button feature byte. A fixed
/// flag changes only with a reset of the application; YubiKeys answer `6982` (ykman
/// reports "Touch policy not allowed").
fn put_uif(uif: &mut u8, data: &[u8]) -> Result<(), StatusWord> {
    let [new @ 0..=4, rest @ ..] = data else { return Err(StatusWord::INCORRECT_DATA) };
    if rest.len() > 1 {
        return Err(StatusWord::WRONG_LENGTH);
    }
    if matches!(*uif, 2 | 4) {
        return Err(StatusWord::SECURITY_STATUS_NOT_SATISFIED);
    }
    *uif = *new;
    Ok(())
}

/// A fixed-length DO value.
fn exact<const N: usize>(data: &[u8]) -> Result<[u8; N], StatusWord> {
    data.try_into().map_err(|_| StatusWord::WRONG_LENGTH)
}

/// PUT DATA `F9` (§4.3.2): stores the KDF DO and, as the spec requires, resets PW1 and
/// PW3 to their initial values: the initial hashes `87`/`88` with KDF-ITERSALTED-S2K
/// (algorithm `03`), the factory PINs without KDF (`00`). The resetting code is
/// cleared.
fn put_kdf(state: &mut Persistent, data: &[u8]) -> Result<(), StatusWord> {
    let bad = StatusWord::INCORRECT_DATA;
    let algorithm = tlv::find(data, 0x81).map_err(|_| bad)?.ok_or(bad)?;
    let (pw1, pw3) = match algorithm {
        [0x00] => (super::state::DEFAULT_PW1, super::state::DEFAULT_PW3),
        [0x03] => {
            let user = tlv::find(data, 0x87).map_err(|_| bad)?.ok_or(bad)?;
            let admin = tlv::find(data, 0x88).map_err(|_| bad)?.ok_or(bad)?;
            (user, admin)
        }
        _ => return Err(bad),
    };
    if pw1.len() > MAX_PIN_LEN || pw3.len() > MAX_PIN_LEN || pw1.is_empty() || pw3.is_empty() {
        return Err(bad);
    }
    state.pw1.set(pw1);
    state.pw3.set(pw3);
    state.rc = super::state::Pin::unset(state.rc.max);
    state.kdf = data.to_vec();
    Ok(())
}
