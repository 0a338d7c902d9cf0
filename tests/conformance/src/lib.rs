//! One conformance suite for keystation-core [`Card`] implementations: the OpenPGP card
//! and PIV operations a client performs, each a public function over `&mut dyn Card`,
//! run over every card keystation is tested with — the software YubiKey 5 in process
//! (`tests/softcard.rs` here), and the software card, Nitrokey's opcard and
//! piv-authenticator through pcscd (`tests/card_conformance.rs` in the root package) —
//! the way rustls runs one test suite over every crypto provider.
//!
//! Cards differ, so each run declares the card's capabilities ([`OpenPgpCapabilities`],
//! [`PivCapabilities`]): what the card announces and does. A check whose capability the
//! card lacks verifies that the card (or the client, from what the card announces)
//! refuses it properly and reports [`Outcome::Refused`]; where a refusal cannot be
//! observed the check reports [`Outcome::NotApplicable`] naming the capability. Nothing
//! passes silently: the generated test prints every outcome but a full pass.
//!
//! [`openpgp_conformance!`] and [`piv_conformance!`] generate one `#[test]` per check:
//!
//! ```ignore
//! mod openpgp {
//!     keystation_card_conformance::openpgp_conformance!(super::card(), super::openpgp_caps());
//! }
//! ```
//!
//! Every signature, shared secret and decryption is checked with host crypto (RustCrypto,
//! dalek); host keys are generated and imported.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use keystation_core::Card;

mod host;
pub mod openpgp;
pub mod piv;

pub use openpgp::OpenPgpCapabilities;
pub use piv::PivCapabilities;

/// What a check found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Outcome {
    /// Everything the check does, the card did correctly.
    Passed,
    /// The card lacks the capability (as declared), and it — or the client, from what the
    /// card announces — refused the operation properly. The string names the capability.
    Refused(&'static str),
    /// The card lacks the declared capability and there is nothing to observe about it.
    NotApplicable(&'static str),
}

/// Reports a check's outcome on stderr (what is not a full pass), for the generated tests.
#[allow(clippy::print_stderr)]
pub fn report(check: &str, card: &str, outcome: &Outcome) {
    match outcome {
        Outcome::Passed => {}
        Outcome::Refused(capability) => {
            eprintln!("{check} on {card}: refused as it should be (no {capability})");
        }
        Outcome::NotApplicable(capability) => {
            eprintln!("{check} on {card}: not applicable (no {capability})");
        }
    }
}

/// What a generated test gets its card from: a [`Card`] itself, or something that holds
/// one with what keeps it alive (a card in a pcscd reader with the program that plays it,
/// which need not be `Send`).
pub trait CardFixture {
    /// The card under test.
    fn card(&mut self) -> &mut dyn Card;
}

impl<C: Card> CardFixture for C {
    fn card(&mut self) -> &mut dyn Card {
        self
    }
}

/// A card reached without extended length: commands longer than 255 bytes must go in a
/// chain and responses longer than 256 bytes come back with `61xx` + GET RESPONSE. It
/// records the longest command sent.
pub struct ShortOnly<'a> {
    card: &'a mut dyn Card,
    /// The longest command APDU sent through it, in bytes.
    pub longest_command: usize,
}

impl<'a> ShortOnly<'a> {
    /// Wraps `card`.
    pub fn new(card: &'a mut dyn Card) -> Self {
        Self { card, longest_command: 0 }
    }
}

impl Card for ShortOnly<'_> {
    fn transmit(
        &mut self,
        command: &[u8],
        response: &mut [u8],
    ) -> Result<usize, keystation_core::Error> {
        self.longest_command = self.longest_command.max(command.len());
        self.card.transmit(command, response)
    }
    fn begin_transaction(&mut self) -> Result<(), keystation_core::Error> {
        self.card.begin_transaction()
    }
    fn end_transaction(&mut self) -> Result<(), keystation_core::Error> {
        self.card.end_transaction()
    }
    fn take_reset(&mut self) -> bool {
        self.card.take_reset()
    }
    fn atr(&self) -> Option<&[u8]> {
        self.card.atr()
    }
    fn supports_extended_length(&self) -> bool {
        false
    }
}

/// Generates one `#[test]` per check of a part of the suite. Not for direct use: see
/// [`openpgp_conformance!`] and [`piv_conformance!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_tests {
    ($part:ident, $card:expr, $caps:expr, [$($check:ident),* $(,)?]) => {
        $(
            #[test]
            fn $check() {
                let capabilities = $caps;
                let check = stringify!($check);
                if let Some((_, reason)) =
                    capabilities.not_applicable.iter().find(|(name, _)| *name == check)
                {
                    let outcome = $crate::Outcome::NotApplicable(reason);
                    $crate::report(
                        concat!(stringify!($part), "::", stringify!($check)),
                        capabilities.name,
                        &outcome,
                    );
                    return;
                }
                let mut card = $card;
                let outcome =
                    $crate::$part::$check($crate::CardFixture::card(&mut card), &capabilities);
                $crate::report(
                    concat!(stringify!($part), "::", stringify!($check)),
                    capabilities.name,
                    &outcome,
                );
            }
        )*
        /// The generated tests are the whole part of the suite.
        #[test]
        fn every_check_runs() {
            let generated: &[&str] = &[$(stringify!($check)),*];
            assert_eq!(generated, $crate::$part::CHECKS);
        }
    };
}

/// One `#[test]` per OpenPGP check ([`openpgp::CHECKS`]): `card` is evaluated anew for
/// each test (a fresh card, a [`CardFixture`]), `capabilities` is its
/// [`OpenPgpCapabilities`].
#[macro_export]
macro_rules! openpgp_conformance {
    ($card:expr, $capabilities:expr $(,)?) => {
        $crate::__conformance_tests!(
            openpgp,
            $card,
            $capabilities,
            [
                select_and_application_related_data,
                pin_verify_change_and_retry_counters,
                resetting_code_unblocks_pw1,
                admin_pin_blocks,
                factory_reset_restores_factory_pins,
                terminated_application_can_be_activated,
                ed25519_and_x25519_generated_sign_and_agree,
                p256_sign_authenticate_and_ecdh,
                p384_signature_key,
                rsa2048_generate_sign_and_decipher,
                import_host_keys,
                short_apdus_chaining_and_get_response,
                touch_policies,
                single_signature_pw1,
            ]
        );
    };
}

/// One `#[test]` per PIV check ([`piv::CHECKS`]): `card` is evaluated anew for each test
/// (a fresh card, a [`CardFixture`]), `capabilities` is its
/// [`PivCapabilities`].
#[macro_export]
macro_rules! piv_conformance {
    ($card:expr, $capabilities:expr $(,)?) => {
        $crate::__conformance_tests!(
            piv,
            $card,
            $capabilities,
            [
                select_version_serial_and_chuid,
                generate_p256_and_sign,
                generate_p384_and_sign,
                generate_rsa2048_sign_and_pss,
                generate_ed25519_and_sign,
                ecdh_p256,
                import_p256_and_rsa,
                management_key_3des_aes_and_wrong_key,
                pin_protected_management_key,
                pin_blocks_and_puk_unblocks,
                certificates_round_trip,
                metadata,
                attestation,
                reset,
            ]
        );
    };
}
