//! Saving and restoring the OpenPGP application's persistent state, for a simulated card
//! that survives restarts (`keystation simulate --state`).
//!
//! **The saved state holds the private keys, PINs and resetting code in the clear.** It
//! is meant for rehearsal cards with test keys only.
//!
//! Format (keystation's own, BER-TLV as in ISO/IEC 7816-4 §5.2):
//!
//! * `01` format version (`01`);
//! * `02` PW1, `03` resetting code, `04` PW3: tries left, maximum, then the value (empty
//!   when not set);
//! * `05` flags: PW1 valid for several signatures, terminated, sex, attestation UIF;
//! * `06` digital signature counter, four bytes big-endian;
//! * `07` per key slot, holding `81` (slot index 0–2, key status, UIF), `82` fingerprint,
//!   `83` CA fingerprint, `84` generation timestamp, `85` algorithm attributes and, when
//!   the slot has a key, `86`: the key's algorithm (its index in
//!   [`KeyAlgorithm::ALL`]) followed by its parts as key import writes them (§4.4.3.12:
//!   `91` public exponent, `92`/`93` primes for RSA; `92` the private scalar or seed for
//!   ECC, an X25519 scalar big-endian);
//! * `08` per cardholder data object: its two-byte tag (`5B`, `5F2D`, `5E`, `5F50`,
//!   `0101`–`0104`), then its value;
//! * `09` per cardholder certificate: its occurrence (0–2), then the certificate;
//! * `0A` the KDF DO as written.
//!
//! Volatile state (verified PINs, the selected certificate) is never saved.

use keystation_core::key::KeyAlgorithm;
use keystation_core::tlv;
use rsa::traits::{PrivateKeyParts, PublicKeyParts};
use zeroize::Zeroizing;

use super::OpenPgp;
use super::keys::{PrivateKey, Role, parse_attributes};
use super::state::{Persistent, Pin, Volatile};
use crate::applet::StateError;
use crate::identity::Identity;

/// The format version this module writes and reads.
const FORMAT: u8 = 1;

/// Cardholder data objects saved under `08`.
const OBJECTS: [u16; 8] = [0x005B, 0x5F2D, 0x005E, 0x5F50, 0x0101, 0x0102, 0x0103, 0x0104];

fn invalid(reason: &str) -> StateError {
    StateError::applet("OpenPGP", reason)
}

/// The value of a saved cardholder data object.
fn object(state: &mut Persistent, tag: u16) -> Option<&mut Vec<u8>> {
    Some(match tag {
        0x005B => &mut state.name,
        0x5F2D => &mut state.language,
        0x005E => &mut state.login,
        0x5F50 => &mut state.url,
        0x0101..=0x0104 => &mut state.private[usize::from(tag - 0x0101)],
        _ => return None,
    })
}

/// The value of a cardholder data object, to save it.
fn object_ref(state: &Persistent, tag: u16) -> Option<&Vec<u8>> {
    Some(match tag {
        0x005B => &state.name,
        0x5F2D => &state.language,
        0x005E => &state.login,
        0x5F50 => &state.url,
        0x0101..=0x0104 => &state.private[usize::from(tag - 0x0101)],
        _ => return None,
    })
}

/// Appends the key's algorithm index and its import parts.
fn write_key(out: &mut Vec<u8>, key: &PrivateKey) {
    let algorithm = key.algorithm();
    let index = KeyAlgorithm::ALL.iter().position(|a| *a == algorithm).unwrap_or(usize::MAX);
    out.push(u8::try_from(index).unwrap_or(u8::MAX));
    match key {
        PrivateKey::Rsa(k) => {
            tlv::write(out, 0x91, &k.e().to_bytes_be());
            for (tag, prime) in [0x92u32, 0x93].into_iter().zip(k.primes()) {
                tlv::write(out, tag, &Zeroizing::new(prime.to_bytes_be()));
            }
        }
        PrivateKey::P256(k) => tlv::write(out, 0x92, &Zeroizing::new(k.to_bytes().to_vec())),
        PrivateKey::P384(k) => tlv::write(out, 0x92, &Zeroizing::new(k.to_bytes().to_vec())),
        PrivateKey::Ed25519(k) => tlv::write(out, 0x92, &Zeroizing::new(k.to_bytes())[..]),
        PrivateKey::X25519(k) => {
            let mut scalar = Zeroizing::new(k.to_bytes());
            scalar.reverse();
            tlv::write(out, 0x92, &scalar[..]);
        }
    }
}

/// Reads what [`write_key`] wrote.
fn read_key(saved: &[u8]) -> Result<PrivateKey, StateError> {
    let (&index, parts) = saved.split_first().ok_or_else(|| invalid("key"))?;
    let algorithm =
        *KeyAlgorithm::ALL.get(usize::from(index)).ok_or_else(|| invalid("key algorithm"))?;
    let mut list = Vec::new();
    for item in tlv::parse(parts) {
        let item = item.map_err(|_| invalid("malformed key"))?;
        list.push((item.tag().0, item.value()));
    }
    PrivateKey::import(algorithm, &list).map_err(|_| invalid("private key"))
}

/// The persistent state, serialized; zeroized when dropped.
pub(super) fn save(applet: &OpenPgp) -> Zeroizing<Vec<u8>> {
    let state = &applet.state;
    let mut out = Zeroizing::new(Vec::with_capacity(2048));
    tlv::write(&mut out, 0x01, &[FORMAT]);
    for (tag, pin) in [(0x02u32, &state.pw1), (0x03, &state.rc), (0x04, &state.pw3)] {
        let mut value = Zeroizing::new(vec![pin.tries, pin.max]);
        value.extend_from_slice(pin.value());
        tlv::write(&mut out, tag, &value);
    }
    let flags = [u8::from(state.pw1_multi), u8::from(state.terminated), state.sex, state.att_uif];
    tlv::write(&mut out, 0x05, &flags);
    tlv::write(&mut out, 0x06, &state.signature_counter.to_be_bytes());
    for (index, slot) in state.slots.iter().enumerate() {
        let mut value = Zeroizing::new(Vec::with_capacity(256));
        tlv::write(&mut value, 0x81, &[index as u8, slot.status, slot.uif]);
        tlv::write(&mut value, 0x82, &slot.fingerprint);
        tlv::write(&mut value, 0x83, &slot.ca_fingerprint);
        tlv::write(&mut value, 0x84, &slot.timestamp);
        tlv::write(&mut value, 0x85, &slot.attributes);
        if let Some(key) = &slot.key {
            let mut key_bytes = Zeroizing::new(Vec::with_capacity(600));
            write_key(&mut key_bytes, key);
            tlv::write(&mut value, 0x86, &key_bytes);
        }
        tlv::write(&mut out, 0x07, &value);
    }
    for tag in OBJECTS {
        if let Some(data) = object_ref(state, tag)
            && !data.is_empty()
        {
            let mut value = Zeroizing::new(tag.to_be_bytes().to_vec());
            value.extend_from_slice(data);
            tlv::write(&mut out, 0x08, &value);
        }
    }
    for (index, certificate) in state.certificates.iter().enumerate() {
        if !certificate.is_empty() {
            let mut value = vec![index as u8];
            value.extend_from_slice(certificate);
            tlv::write(&mut out, 0x09, &value);
        }
    }
    tlv::write(&mut out, 0x0A, &state.kdf);
    out
}

/// Reads one saved key slot into `state`.
fn restore_slot(state: &mut Persistent, saved: &[u8]) -> Result<(), StateError> {
    let mut meta = None;
    let (mut fingerprint, mut ca_fingerprint, mut timestamp) = ([0; 20], [0; 20], [0; 4]);
    let mut attributes = None;
    let mut key = None;
    for item in tlv::parse(saved) {
        let item = item.map_err(|_| invalid("malformed key slot"))?;
        let value = item.value();
        let fixed = |what| invalid(what);
        match item.tag().0 {
            0x81 => meta = Some(<[u8; 3]>::try_from(value).map_err(|_| fixed("slot"))?),
            0x82 => fingerprint = value.try_into().map_err(|_| fixed("fingerprint"))?,
            0x83 => ca_fingerprint = value.try_into().map_err(|_| fixed("CA fingerprint"))?,
            0x84 => timestamp = value.try_into().map_err(|_| fixed("timestamp"))?,
            0x85 => attributes = Some(value.to_vec()),
            0x86 => key = Some(read_key(value)?),
            _ => return Err(invalid("unknown item in a key slot")),
        }
    }
    let [index, status, uif] = meta.ok_or_else(|| invalid("slot index missing"))?;
    let role = *[Role::Sig, Role::Dec, Role::Aut]
        .get(usize::from(index))
        .ok_or_else(|| invalid("slot index"))?;
    let attributes = attributes.ok_or_else(|| invalid("algorithm attributes missing"))?;
    let algorithm =
        parse_attributes(role, &attributes).map_err(|_| invalid("algorithm attributes"))?;
    if status > 2 || uif > 4 {
        return Err(invalid("key status or UIF"));
    }
    let slot = state.slot(role);
    slot.attributes = attributes;
    slot.algorithm = algorithm;
    slot.key = key;
    slot.status = status;
    slot.uif = uif;
    slot.fingerprint = fingerprint;
    slot.ca_fingerprint = ca_fingerprint;
    slot.timestamp = timestamp;
    Ok(())
}

/// Replaces the applet's state with a saved one; on error the applet is unchanged.
pub(super) fn restore(
    applet: &mut OpenPgp,
    identity: &Identity,
    saved: &[u8],
) -> Result<(), StateError> {
    let mut state = Persistent::factory();
    let mut format = None;
    for item in tlv::parse(saved) {
        let item = item.map_err(|_| invalid("malformed TLV"))?;
        let value = item.value();
        match item.tag().0 {
            0x01 => format = value.first().copied(),
            tag @ 0x02..=0x04 => {
                let [tries, max, pin @ ..] = value else { return Err(invalid("PIN")) };
                if tries > max || pin.len() > super::state::MAX_PIN_LEN {
                    return Err(invalid("PIN counters or length"));
                }
                let pin = Pin::restored(pin, *tries, *max);
                match tag {
                    0x02 => state.pw1 = pin,
                    0x03 => state.rc = pin,
                    _ => state.pw3 = pin,
                }
            }
            0x05 => {
                let &[multi, terminated, sex, att_uif] = value else {
                    return Err(invalid("flags"));
                };
                state.pw1_multi = multi != 0;
                state.terminated = terminated != 0;
                state.sex = sex;
                state.att_uif = att_uif;
            }
            0x06 => {
                let bytes = <[u8; 4]>::try_from(value).map_err(|_| invalid("signature counter"))?;
                state.signature_counter = u32::from_be_bytes(bytes).min(0xFF_FFFF);
            }
            0x07 => restore_slot(&mut state, value)?,
            0x08 => {
                let [high, low, data @ ..] = value else { return Err(invalid("data object")) };
                let tag = u16::from_be_bytes([*high, *low]);
                *object(&mut state, tag).ok_or_else(|| invalid("data object tag"))? = data.to_vec();
            }
            0x09 => {
                let [index, data @ ..] = value else { return Err(invalid("certificate")) };
                *state
                    .certificates
                    .get_mut(usize::from(*index))
                    .ok_or_else(|| invalid("certificate occurrence"))? = data.to_vec();
            }
            0x0A => state.kdf = value.to_vec(),
            _ => return Err(invalid("unknown item")),
        }
    }
    if format != Some(FORMAT) {
        return Err(invalid("format version"));
    }
    let fresh = OpenPgp::new(identity);
    applet.aid = fresh.aid;
    applet.version = fresh.version;
    applet.state = state;
    applet.volatile = Volatile::default();
    Ok(())
}
