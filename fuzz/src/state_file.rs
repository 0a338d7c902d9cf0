//! The `softcard_state` target: the software card's state file (`keystation simulate
//! --state FILE`), as `SoftCard::restore_state` reads it.

use keystation_softcard::{Identity, SoftCard};

/// Commands a restored card must answer without panicking: SELECT and a read of each
/// application (PIV: GET VERSION, serial, metadata of 9A, the CHUID; OpenPGP: application
/// related data, PW status; management: device info; OTP: status).
const PROBES: &[&[u8]] = &[
    &[0x00, 0xA4, 0x04, 0x00, 0x05, 0xA0, 0x00, 0x00, 0x03, 0x08],
    &[0x00, 0xFD, 0x00, 0x00],
    &[0x00, 0xF8, 0x00, 0x00],
    &[0x00, 0xF7, 0x00, 0x9A],
    &[0x00, 0xCB, 0x3F, 0xFF, 0x05, 0x5C, 0x03, 0x5F, 0xC1, 0x02, 0x00],
    &[0x00, 0x20, 0x00, 0x80, 0x08, b'1', b'2', b'3', b'4', b'5', b'6', 0xFF, 0xFF],
    &[0x00, 0xA4, 0x04, 0x00, 0x06, 0xD2, 0x76, 0x00, 0x01, 0x24, 0x01],
    &[0x00, 0xCA, 0x00, 0x6E, 0x00],
    &[0x00, 0xCA, 0x00, 0xC4, 0x00],
    &[0x00, 0xCA, 0x7F, 0x21, 0x00],
    &[0x00, 0xA4, 0x04, 0x00, 0x08, 0xA0, 0x00, 0x00, 0x05, 0x27, 0x47, 0x11, 0x17],
    &[0x00, 0x1D, 0x00, 0x00, 0x00],
    &[0x00, 0xA4, 0x04, 0x00, 0x07, 0xA0, 0x00, 0x00, 0x05, 0x27, 0x20, 0x01],
    &[0x00, 0x03, 0x00, 0x00],
];

/// A factory-fresh card with the default identity (`keystation simulate` without
/// `--serial` or `--version`), which the seeds were saved from.
fn fresh_card() -> SoftCard {
    SoftCard::yubikey5(Identity::default(), Some(7))
}

/// `SoftCard::restore_state` on arbitrary bytes: never a panic; a state that restores
/// saves to a state that restores into a fresh card and saves the same again (the
/// format is a fixed point after one round); a restored card answers the probes with a
/// status word; a state that is refused leaves a fresh card's saved state unchanged
/// when the container itself is wrong.
pub fn softcard_state(data: &[u8]) {
    let mut card = fresh_card();
    let before = card.save_state();
    match card.restore_state(data) {
        Ok(()) => {
            let saved = card.save_state();
            let mut second = fresh_card();
            second.restore_state(&saved).expect("a saved state restores");
            assert_eq!(*second.save_state(), *saved, "save/restore round trip");
            for probe in PROBES {
                let response = card.process(probe);
                assert!(response.len() >= 2, "a response without a status word");
            }
        }
        Err(keystation_softcard::StateError::Applet { .. }) => {
            // An applet refused its part; the applets before it may be restored already
            // (documented): the card is to be discarded.
        }
        Err(_) => {
            assert_eq!(*card.save_state(), *before, "a refused container changed the card");
        }
    }
}
