//! Saving and restoring the PIV application's persistent state, for a simulated card
//! that survives restarts (`keystation simulate --state`).
//!
//! **The saved state holds the private keys, PIN, PUK and management key in the clear.**
//! It is meant for rehearsal cards with test keys only.
//!
//! Format (keystation's own, BER-TLV as in ISO/IEC 7816-4 §5.2): `01` format version
//! (`01`); `02` PIN and `03` PUK, each the padded value, tries left and total tries; `04`
//! management key: algorithm, touch flag, key; `05` per key slot: reference, algorithm,
//! PIN policy, touch policy, origin, then the private key as IMPORT KEY data (`01`–`05`
//! RSA, `06` ECC scalar, `07` Ed25519 seed, `08` X25519 scalar); `06` per data object:
//! its three-byte tag, then its value. Volatile state (verified PIN, authenticated
//! management key) is never saved.

use keystation_core::tlv;
use rsa::traits::{PrivateKeyParts, PublicKeyParts};
use zeroize::{Zeroize, Zeroizing};

use super::Piv;
use super::keys::{Algorithm, PrivateKey};
use super::mgmt::{MgmtAlgorithm, MgmtKey};
use super::state::{Persistent, SlotKey, Volatile, pin_policy, touch_policy};
use crate::identity::Identity;

/// The format version this module writes and reads.
const FORMAT: u8 = 1;

/// A saved PIV state that cannot be restored: truncated, from another format, or with a
/// key the card's firmware version does not support.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid saved PIV state: {0}")]
pub struct InvalidState(&'static str);

/// Appends the IMPORT KEY encoding of `key`.
fn write_key(out: &mut Vec<u8>, key: &PrivateKey) {
    match key {
        PrivateKey::Rsa(k) => {
            let half = k.size() / 2;
            let parts = [
                k.primes().first().cloned(),
                k.primes().get(1).cloned(),
                k.dp().cloned(),
                k.dq().cloned(),
                k.crt_coefficient(),
            ];
            for (tag, part) in (1u32..).zip(parts) {
                let bytes = Zeroizing::new(part.map(|p| p.to_bytes_be()).unwrap_or_default());
                let mut padded = Zeroizing::new(vec![0u8; half.saturating_sub(bytes.len())]);
                padded.extend_from_slice(&bytes);
                tlv::write(out, tag, &padded);
            }
        }
        PrivateKey::P256(k) => {
            let mut bytes = k.to_bytes();
            tlv::write(out, 0x06, &bytes);
            bytes[..].zeroize();
        }
        PrivateKey::P384(k) => {
            let mut bytes = k.to_bytes();
            tlv::write(out, 0x06, &bytes);
            bytes[..].zeroize();
        }
        PrivateKey::Ed25519(k) => tlv::write(out, 0x07, &Zeroizing::new(k.to_bytes())[..]),
        PrivateKey::X25519(k) => tlv::write(out, 0x08, &Zeroizing::new(k.to_bytes())[..]),
    }
}

impl Piv {
    /// The persistent state (keys, PIN, PUK, management key, data objects), serialized.
    /// **It holds every secret of the application in the clear**; it is zeroized when
    /// dropped.
    pub fn save_state(&self) -> Zeroizing<Vec<u8>> {
        let state = &self.persistent;
        let mut out = Zeroizing::new(Vec::with_capacity(4096));
        tlv::write(&mut out, 0x01, &[FORMAT]);
        for (tag, secret) in [(0x02u32, &state.pin), (0x03, &state.puk)] {
            let mut value = Zeroizing::new(secret.padded().to_vec());
            value.extend_from_slice(&[secret.remaining, secret.total]);
            tlv::write(&mut out, tag, &value);
        }
        let mut mgmt = Zeroizing::new(vec![state.mgmt.algorithm.id(), u8::from(state.mgmt.touch)]);
        mgmt.extend_from_slice(&state.mgmt.key);
        tlv::write(&mut out, 0x04, &mgmt);
        for (slot, key) in &state.slots {
            let mut value = Zeroizing::new(vec![
                *slot,
                key.key.algorithm().id(),
                key.pin_policy,
                key.touch_policy,
                key.origin,
            ]);
            write_key(&mut value, &key.key);
            tlv::write(&mut out, 0x05, &value);
        }
        for (tag, object) in &state.objects {
            let mut value = tag.to_be_bytes()[1..].to_vec();
            value.extend_from_slice(object);
            tlv::write(&mut out, 0x06, &value);
        }
        out
    }

    /// A PIV application with the state [`save_state`](Self::save_state) produced, for the
    /// card with this identity.
    pub fn restore_state(identity: &Identity, saved: &[u8]) -> Result<Self, InvalidState> {
        let version = identity.version;
        let mut state = Persistent::factory(version);
        let mut format = None;
        for item in tlv::parse(saved) {
            let item = item.map_err(|_| InvalidState("malformed TLV"))?;
            let value = item.value();
            match item.tag().0 {
                0x01 => format = value.first().copied(),
                tag @ (0x02 | 0x03) => {
                    let [padded @ .., remaining, total] = value else {
                        return Err(InvalidState("PIN or PUK"));
                    };
                    let padded: &[u8; 8] =
                        padded.try_into().map_err(|_| InvalidState("PIN or PUK length"))?;
                    if *total == 0 {
                        return Err(InvalidState("PIN or PUK tries"));
                    }
                    let secret = if tag == 0x02 { &mut state.pin } else { &mut state.puk };
                    secret.total = *total;
                    secret.restore(padded, *remaining);
                }
                0x04 => {
                    let [alg, touch, key @ ..] = value else {
                        return Err(InvalidState("management key"));
                    };
                    let algorithm = MgmtAlgorithm::from_id(*alg, version)
                        .filter(|a| a.key_len() == key.len())
                        .ok_or(InvalidState("management key algorithm"))?;
                    state.mgmt = MgmtKey {
                        algorithm,
                        key: Zeroizing::new(key.to_vec()),
                        touch: *touch != 0,
                    };
                }
                0x05 => {
                    let [slot, alg, pin, touch, origin, key @ ..] = value else {
                        return Err(InvalidState("slot"));
                    };
                    let algorithm = Algorithm::from_id(*alg, version)
                        .ok_or(InvalidState("key algorithm for this firmware"))?;
                    let key = PrivateKey::import(algorithm, key)
                        .map_err(|_| InvalidState("private key"))?;
                    let valid_pin = (pin_policy::NEVER..=pin_policy::ALWAYS).contains(pin);
                    let valid_touch = (touch_policy::NEVER..=touch_policy::CACHED).contains(touch);
                    if !valid_pin || !valid_touch || !matches!(origin, 1 | 2) {
                        return Err(InvalidState("slot policies"));
                    }
                    state.slots.insert(
                        *slot,
                        SlotKey { key, pin_policy: *pin, touch_policy: *touch, origin: *origin },
                    );
                }
                0x06 => {
                    let [a, b, c, object @ ..] = value else {
                        return Err(InvalidState("data object"));
                    };
                    let tag = u32::from_be_bytes([0, *a, *b, *c]);
                    state.objects.insert(tag, object.to_vec());
                }
                _ => return Err(InvalidState("unknown item")),
            }
        }
        if format != Some(FORMAT) {
            return Err(InvalidState("format version"));
        }
        Ok(Self { persistent: state, volatile: Volatile::default() })
    }
}
