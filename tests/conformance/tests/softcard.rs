//! The conformance suite over the software YubiKey 5 (keystation-softcard), in process:
//! both applets on firmware 5.4.3, and the PIV applet again on firmware 5.7 (Ed25519,
//! AES-192 factory management key).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use keystation_card_conformance::{OpenPgpCapabilities, PivCapabilities};
use keystation_core::key::{KeyAlgorithm, RsaBits};
use keystation_piv::{FirmwareVersion, ManagementAlgorithm};
use keystation_softcard::{Identity, SoftCard, Version};

fn softcard() -> SoftCard {
    SoftCard::yubikey5(Identity::default(), Some(7))
}

fn softcard_5_7() -> SoftCard {
    SoftCard::yubikey5(Identity { version: Version(5, 7, 0), ..Identity::default() }, Some(3))
}

/// The software card's OpenPGP applet as Identity::default() makes it.
fn openpgp_capabilities() -> OpenPgpCapabilities {
    OpenPgpCapabilities {
        not_applicable: Vec::new(),
        name: "softcard in process",
        serial: "10000001".into(),
        manufacturer: 0x0006,
        manufacturer_name: Some("Yubico"),
        version: (3, 4),
        extended_length: Some((0x0BFE, 0x0BFE)),
        algorithms: KeyAlgorithm::ALL.to_vec(),
        default_algorithm: KeyAlgorithm::Rsa(RsaBits::Rsa2048),
        pin_max_len: (127, 127, 127),
        pw1_valid_for_several_signatures: true,
        default_sex: Some(0x30),
        historical_bytes_in_atr: false,
        key_information: true,
        kdf: true,
        touch: true,
        touch_fixed: true,
        touch_cached: true,
        change_pin_reports_retries: true,
        import: true,
        rsa_attributes_as_written: true,
    }
}

fn piv_capabilities() -> PivCapabilities {
    PivCapabilities {
        not_applicable: Vec::new(),
        name: "softcard 5.4.3 in process",
        version: Some(FirmwareVersion(5, 4, 3)),
        serial: Some(10_000_001),
        select_by_rid: true,
        factory_chuid: false,
        algorithms: vec![
            KeyAlgorithm::NistP256,
            KeyAlgorithm::NistP384,
            KeyAlgorithm::Rsa(RsaBits::Rsa2048),
        ],
        policies: true,
        import: true,
        default_management_algorithm: ManagementAlgorithm::TripleDes,
        management_algorithms: vec![
            ManagementAlgorithm::TripleDes,
            ManagementAlgorithm::Aes128,
            ManagementAlgorithm::Aes192,
            ManagementAlgorithm::Aes256,
        ],
        metadata: true,
        pin_protected_management_key: true,
        attestation: true,
        reset: true,
    }
}

fn piv_5_7_capabilities() -> PivCapabilities {
    let mut caps = piv_capabilities();
    caps.name = "softcard 5.7.0 in process";
    caps.version = Some(FirmwareVersion(5, 7, 0));
    caps.algorithms.extend([KeyAlgorithm::Ed25519]);
    caps.default_management_algorithm = ManagementAlgorithm::Aes192;
    caps
}

mod openpgp {
    keystation_card_conformance::openpgp_conformance!(
        super::softcard(),
        super::openpgp_capabilities()
    );
}

mod piv {
    keystation_card_conformance::piv_conformance!(super::softcard(), super::piv_capabilities());
}

mod piv_5_7 {
    keystation_card_conformance::piv_conformance!(
        super::softcard_5_7(),
        super::piv_5_7_capabilities()
    );
}
