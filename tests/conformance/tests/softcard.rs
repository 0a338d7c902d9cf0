//! The conformance suite over the software YubiKey 5 (keystation-softcard), in process:
//! both applets on firmware 5.4.3, and the PIV applet again on firmware 5.7 (Ed25519,
//! AES-192 factory management key).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use keystation_card_conformance::{OpenPgpCapabilities, PivCapabilities};
use keystation_piv::FirmwareVersion;
use keystation_softcard::{Identity, SoftCard, Version};

fn softcard() -> SoftCard {
    SoftCard::yubikey5(Identity::default(), Some(7))
}

fn softcard_5_7() -> SoftCard {
    SoftCard::yubikey5(Identity { version: Version(5, 7, 0), ..Identity::default() }, Some(3))
}

/// The software card's OpenPGP applet as Identity::default() makes it.
fn openpgp_capabilities() -> OpenPgpCapabilities {
    OpenPgpCapabilities::software_yubikey5("softcard in process", 10_000_001)
}

fn piv_capabilities() -> PivCapabilities {
    PivCapabilities::software_yubikey5(
        "softcard 5.4.3 in process",
        FirmwareVersion(5, 4, 3),
        10_000_001,
    )
}

fn piv_5_7_capabilities() -> PivCapabilities {
    PivCapabilities::software_yubikey5(
        "softcard 5.7.0 in process",
        FirmwareVersion(5, 7, 0),
        10_000_001,
    )
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
