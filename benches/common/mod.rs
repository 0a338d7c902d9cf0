//! What the software card benchmarks share: raw OpenPGP commands that put a fresh
//! signature key on a card and the PSO:CDS that signs with it.

use keystation_core::{Channel, Command, Le};

/// OpenPGP application AID (OpenPGP card 3.4.1 §4.2.1).
pub(crate) const OPENPGP_AID: &[u8] = &[0xD2, 0x76, 0x00, 0x01, 0x24, 0x01];

/// Sends `command`, which must succeed; returns its data.
pub(crate) fn ok(channel: &mut Channel<'_>, command: &Command) -> Vec<u8> {
    match channel.transmit_ok(command) {
        Ok(data) => data.to_vec(),
        Err(e) => panic!("{command}: {e}"),
    }
}

/// Algorithm attributes (§4.4.3.10) of each benchmarked signature algorithm, and the
/// input PSO:COMPUTE DIGITAL SIGNATURE signs for it (a SHA-256 DigestInfo for RSA, a
/// hash for ECDSA, a message for EdDSA).
pub(crate) fn signature_cases() -> Vec<(&'static str, Vec<u8>, Vec<u8>)> {
    let mut digest_info_sha256 = vec![
        0x30, 0x31, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
        0x05, 0x00, 0x04, 0x20,
    ];
    digest_info_sha256.extend_from_slice(&[0x5A; 32]);
    vec![
        ("rsa2048", vec![0x01, 0x08, 0x00, 0x00, 0x11, 0x00], digest_info_sha256),
        ("nistp256", vec![0x13, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07], vec![0x5A; 32]),
        ("nistp384", vec![0x13, 0x2B, 0x81, 0x04, 0x00, 0x22], vec![0x5A; 48]),
        (
            "ed25519",
            vec![0x16, 0x2B, 0x06, 0x01, 0x04, 0x01, 0xDA, 0x47, 0x0F, 0x01],
            vec![0x5A; 32],
        ),
    ]
}

/// With the OpenPGP application selected: sets the signature key's `attributes`,
/// generates the key, verifies PW1, and returns the PSO:CDS command over `input` —
/// checked to succeed twice, since PW1 stays verified for several signatures (factory PW1
/// status byte 01) and every benchmark iteration must really sign.
pub(crate) fn signature_key(channel: &mut Channel<'_>, attributes: &[u8], input: &[u8]) -> Command {
    ok(channel, &Command::new(0, 0x20, 0, 0x83).with_data(b"12345678"));
    ok(channel, &Command::new(0, 0xDA, 0, 0xC1).with_data(attributes));
    ok(channel, &Command::new(0, 0x47, 0x80, 0).with_data(&[0xB6, 0x00]).with_le(Le::Max));
    ok(channel, &Command::new(0, 0x20, 0, 0x81).with_data(b"123456"));
    let sign = Command::new(0, 0x2A, 0x9E, 0x9A).with_data(input).with_le(Le::Max);
    ok(channel, &sign);
    ok(channel, &sign);
    sign
}

/// Waits until pcscd reports `reader` with a card (`present`) or without one. Benchmarks
/// that plug a software card into vpcd wait for the previous one to be gone first: a
/// connection made in between would reach the card that is going away.
#[cfg(feature = "pcsc")]
#[allow(dead_code)]
pub(crate) fn wait_for_card(context: &keystation_pcsc::PcscContext, reader: &str, present: bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let readers = context.readers().unwrap_or_default();
        if readers.iter().any(|r| r.name == reader && r.card_present == present) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the card in {reader} did not {} within 20 s",
            if present { "appear" } else { "go" }
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
