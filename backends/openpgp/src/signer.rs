//! core's [`Signer`] for keys on the card, and core's [`KeyGen`] for on-card generation.

use keystation_core::KeyGen;
use keystation_core::key::{KeyAlgorithm, PublicKey};
use keystation_core::keygen::{
    GeneratedKey, KeyLocation, KeyPurpose, KeyRequest, OpenPgpKeySlot, PinPolicy, SignInput, Signer,
};
use tracing::debug;

use crate::card::OpenPgpCard;
use crate::data::Uif;
use crate::error::{Error, slot_name};

/// Signs with the signature key (PSO:COMPUTE DIGITAL SIGNATURE, §7.2.10) or the
/// authentication key (INTERNAL AUTHENTICATE, §7.2.13) of the card it borrows.
///
/// The card needs PW1 verified; a PIN given to
/// [`OpenPgpCard::remember_user_pin`] is used when it does not hold it. A signer for the
/// decryption key refuses to sign.
pub struct CardSigner<'a, 'c> {
    card: &'a mut OpenPgpCard<'c>,
    slot: OpenPgpKeySlot,
    public: PublicKey,
}

impl<'a, 'c> CardSigner<'a, 'c> {
    /// A signer for `slot`; reads the public key from the card unless it is cached.
    pub fn new(card: &'a mut OpenPgpCard<'c>, slot: OpenPgpKeySlot) -> Result<Self, Error> {
        let public = card.public_key(slot)?;
        Ok(Self { card, slot, public })
    }

    /// The slot this signer uses.
    pub fn slot(&self) -> OpenPgpKeySlot {
        self.slot
    }

    /// The card, e.g. to verify a PIN between signatures.
    pub fn card(&mut self) -> &mut OpenPgpCard<'c> {
        self.card
    }
}

impl core::fmt::Debug for CardSigner<'_, '_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CardSigner")
            .field("slot", &self.slot)
            .field("public", &self.public)
            .finish()
    }
}

impl Signer for CardSigner<'_, '_> {
    fn public_key(&self) -> &PublicKey {
        &self.public
    }

    fn sign(&mut self, input: SignInput<'_>) -> Result<Vec<u8>, keystation_core::Error> {
        Ok(self.card.private_key_signature(self.slot, input)?)
    }
}

/// On-card key generation for the three OpenPGP slots ([`KeyPurpose::OpenPgp`]).
///
/// [`generate`](KeyGen::generate) refuses, before sending anything, PIV purposes,
/// algorithms the slot or the card (its algorithm information) cannot take, PIN
/// policies other than the default (OpenPGP's PW1 status byte rules instead) and touch
/// policies on cards without user interaction flag DOs. It then writes the slot's
/// attributes (when they differ), generates, and writes the touch policy (when asked
/// for). PW3 must be verified. The key's fingerprint and generation time are for the
/// caller to write once it has built the OpenPGP key packet.
impl KeyGen for OpenPgpCard<'_> {
    fn algorithms(&self) -> &[KeyAlgorithm] {
        self.all_algorithms()
    }

    fn generate(
        &mut self,
        request: &KeyRequest,
    ) -> Result<GeneratedKey<'_>, keystation_core::Error> {
        let KeyPurpose::OpenPgp(slot) = request.purpose else {
            return Err(keystation_core::Error::UnsupportedAlgorithm(request.algorithm));
        };
        if request.pin_policy != PinPolicy::Default {
            return Err(keystation_core::Error::UnsupportedPolicy);
        }
        let uif = Uif::from_touch_policy(request.touch_policy);
        if uif.is_some() && self.uif(slot).is_none() {
            return Err(keystation_core::Error::UnsupportedPolicy);
        }
        self.check_algorithm(slot, request.algorithm)?;
        debug!(slot = slot_name(slot), algorithm = %request.algorithm, "on-card key generation");
        self.set_algorithm(slot, request.algorithm)?;
        let public = self.generate_key_pair(slot)?;
        if let Some(flag) = uif {
            self.set_uif(slot, flag)?;
        }
        let signer = CardSigner { card: self, slot, public: public.clone() };
        Ok(GeneratedKey { public, location: KeyLocation::OnCard, signer: Box::new(signer) })
    }
}
