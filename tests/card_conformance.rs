#![cfg(feature = "test-vpcd")]
//! The card conformance suite (`tests/conformance`, keystation-card-conformance) over the
//! cards behind pcscd: the software YubiKey 5 (`keystation simulate`) and Nitrokey's
//! opcard and piv-authenticator (the test-only adapters in `tests/peers/`), each in the
//! vpcd reader of a private pcscd, reached through keystation-pcsc.
//!
//! ```text
//! peers=$(scripts/peer-cards --env) && eval "$peers"   # KEYSTATION_TEST_{OPCARD,PIV}_VPCD
//! scripts/with-pcscd cargo test --features test-vpcd --test card_conformance
//! ```
//!
//! Every test starts its card afresh (a new process: factory state) and stops it after;
//! the tests share the vpcd reader and run one at a time (the simulator's mutex).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/simulator.rs"]
mod simulator;

use keystation_card_conformance::{CardFixture, OpenPgpCapabilities, PivCapabilities};
use keystation_core::Card;
use keystation_core::key::{KeyAlgorithm, RsaBits};
use keystation_piv::{FirmwareVersion, ManagementAlgorithm};
use simulator::Simulator;

/// A card in the vpcd reader with the program that plays it (the reader's lock is not
/// `Send`, so this is a fixture, not a `Card`): the PC/SC connection is dropped before the
/// program is stopped.
struct InReader {
    card: keystation_pcsc::PcscCard,
    _program: Simulator,
}

impl InReader {
    fn new(program: Simulator) -> Self {
        Self { card: program.connect(), _program: program }
    }
}

impl CardFixture for InReader {
    fn card(&mut self) -> &mut dyn Card {
        &mut self.card
    }
}

fn softcard() -> InReader {
    InReader::new(Simulator::start())
}

fn opcard() -> InReader {
    InReader::new(Simulator::start_peer("KEYSTATION_TEST_OPCARD_VPCD", &[], false))
}

fn piv_authenticator() -> InReader {
    InReader::new(Simulator::start_peer("KEYSTATION_TEST_PIV_VPCD", &[], false))
}

/// The software card as `keystation simulate` runs it here (serial 12345678, 5.4.3).
fn softcard_openpgp() -> OpenPgpCapabilities {
    OpenPgpCapabilities::software_yubikey5("softcard through pcscd", simulator::SERIAL)
}

fn softcard_piv() -> PivCapabilities {
    PivCapabilities::software_yubikey5(
        "softcard through pcscd",
        FirmwareVersion(5, 4, 3),
        simulator::SERIAL,
    )
}

/// Nitrokey's opcard 1.11 as tests/peers hosts it: OpenPGP 3.4, Nitrokey's manufacturer
/// ID, serial 00000001, RSA-2048 generation enabled.
fn opcard_openpgp() -> OpenPgpCapabilities {
    OpenPgpCapabilities {
        not_applicable: Vec::new(),
        name: "opcard through pcscd",
        serial: "00000001".into(),
        manufacturer: 0x000F,
        manufacturer_name: Some("Nitrokey"),
        version: (3, 4),
        extended_length: Some((7609, 7609)),
        algorithms: KeyAlgorithm::ALL.to_vec(),
        default_algorithm: KeyAlgorithm::Rsa(RsaBits::Rsa2048),
        pin_max_len: (127, 127, 127),
        pw1_valid_for_several_signatures: false,
        default_sex: Some(0x30),
        historical_bytes_in_atr: true,
        key_information: true,
        kdf: true,
        touch: true,
        touch_fixed: true,
        touch_cached: false,
        change_pin_reports_retries: false,
        import: false,
        rsa_attributes_as_written: true,
    }
}

/// Nitrokey's piv-authenticator 0.7 (with RSA) as tests/peers hosts it: it reports
/// version 6.6.6 to GET VERSION.
fn piv_authenticator_piv() -> PivCapabilities {
    PivCapabilities {
        not_applicable: vec![
            (
                "generate_rsa2048_sign_and_pss",
                "piv-authenticator 0.7 generates RSA-2048 keys but panics signing with them \
                 (FunctionNotSupported), which ends the card",
            ),
            ("metadata", "piv-authenticator 0.7 answers GET METADATA with 9000 and nothing in it"),
        ],
        name: "piv-authenticator through pcscd",
        version: Some(FirmwareVersion(6, 6, 6)),
        serial: Some(5_437_251),
        select_by_rid: false,
        factory_chuid: true,
        algorithms: vec![KeyAlgorithm::NistP256, KeyAlgorithm::NistP384],
        policies: false,
        import: false,
        default_management_algorithm: ManagementAlgorithm::TripleDes,
        management_algorithms: vec![ManagementAlgorithm::TripleDes, ManagementAlgorithm::Aes256],
        metadata: false,
        pin_protected_management_key: false,
        attestation: false,
        reset: false,
    }
}

mod softcard_openpgp {
    keystation_card_conformance::openpgp_conformance!(super::softcard(), super::softcard_openpgp());
}

mod softcard_piv {
    keystation_card_conformance::piv_conformance!(super::softcard(), super::softcard_piv());
}

mod opcard {
    keystation_card_conformance::openpgp_conformance!(super::opcard(), super::opcard_openpgp());
}

mod piv_authenticator {
    keystation_card_conformance::piv_conformance!(
        super::piv_authenticator(),
        super::piv_authenticator_piv()
    );
}
