//! core's [`Signer`] for keys in PIV slots, and core's [`KeyGen`] for on-card generation.

use keystation_core::KeyGen;
use keystation_core::key::{HashAlgorithm, KeyAlgorithm, PublicKey};
use keystation_core::keygen::{
    GeneratedKey, KeyLocation, KeyPurpose, KeyRequest, PivSlot, SignInput, Signer,
};
use rand_core::{OsRng, RngCore};
use tracing::debug;

use crate::card::PivCard;
use crate::error::Error;
use crate::padding::{pkcs1v15_digest_info, pss_encode};

/// Signs with the key in one PIV slot of the card it borrows (GENERAL AUTHENTICATE,
/// SP 800-73-4 part 2 §3.2.4).
///
/// RSA signs PKCS#1 v1.5 through [`Signer::sign`] (as core's `Signer` documents) and
/// RSA-PSS through [`sign_pss`](Self::sign_pss); ECDSA returns DER; Ed25519 signs
/// messages. The key's PIN policy applies: verify the PIN first, or
/// [`PivCard::remember_pin`] so the signer verifies when the card asks.
pub struct PivSigner<'a, 'c> {
    card: &'a mut PivCard<'c>,
    slot: PivSlot,
    public: PublicKey,
}

impl<'a, 'c> PivSigner<'a, 'c> {
    /// A signer for `slot` whose public key the caller knows (from generation or the
    /// slot's certificate).
    pub fn new(card: &'a mut PivCard<'c>, slot: PivSlot, public: PublicKey) -> Self {
        Self { card, slot, public }
    }

    /// A signer for `slot`, its public key read with GET METADATA (YubiKey 5.3+).
    pub fn from_metadata(card: &'a mut PivCard<'c>, slot: PivSlot) -> Result<Self, Error> {
        let public = card.public_key(slot)?.ok_or(Error::Unsupported {
            operation: crate::Operation::Metadata(slot.key_reference()),
        })?;
        Ok(Self { card, slot, public })
    }

    /// The slot.
    pub fn slot(&self) -> PivSlot {
        self.slot
    }

    /// The card, e.g. to verify the PIN between signatures.
    pub fn card(&mut self) -> &mut PivCard<'c> {
        self.card
    }

    /// RSASSA-PSS (RFC 8017 §8.1) over a digest: MGF1 with the same hash, a random salt
    /// as long as the hash (TLS 1.3 `rsa_pss_rsae_*`). Only for RSA keys.
    pub fn sign_pss(&mut self, hash: HashAlgorithm, digest: &[u8]) -> Result<Vec<u8>, Error> {
        let KeyAlgorithm::Rsa(bits) = self.public.algorithm() else {
            return Err(Error::invalid("algorithm", "PSS needs an RSA key"));
        };
        let mut salt = vec![0u8; hash.output_len()];
        OsRng.try_fill_bytes(&mut salt).map_err(|_| Error::Random)?;
        let em = pss_encode(hash, digest, usize::from(bits.bits() / 8), &salt)?;
        Ok(self.card.rsa_raw(self.slot, bits, &em)?.expose().to_vec())
    }
}

impl core::fmt::Debug for PivSigner<'_, '_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PivSigner").field("slot", &self.slot).field("public", &self.public).finish()
    }
}

impl Signer for PivSigner<'_, '_> {
    fn public_key(&self) -> &PublicKey {
        &self.public
    }

    fn sign(&mut self, input: SignInput<'_>) -> Result<Vec<u8>, keystation_core::Error> {
        let algorithm = self.public.algorithm();
        let invalid = keystation_core::Error::InvalidSignInput(algorithm);
        match (algorithm, input) {
            (KeyAlgorithm::Rsa(bits), SignInput::Digest { hash, digest }) => {
                if digest.len() != hash.output_len() {
                    return Err(invalid);
                }
                let em = pkcs1v15_digest_info(hash, digest, usize::from(bits.bits() / 8))?;
                Ok(self.card.rsa_raw(self.slot, bits, &em)?.expose().to_vec())
            }
            (
                KeyAlgorithm::NistP256 | KeyAlgorithm::NistP384,
                SignInput::Digest { hash, digest },
            ) => {
                if digest.len() != hash.output_len() {
                    return Err(invalid);
                }
                Ok(self.card.sign_digest(self.slot, algorithm, digest)?)
            }
            (KeyAlgorithm::Ed25519, SignInput::Message(message)) => {
                Ok(self.card.sign_ed25519(self.slot, message)?)
            }
            _ => Err(invalid),
        }
    }
}

/// On-card key generation for PIV slots ([`KeyPurpose::Piv`]; not the attestation slot).
///
/// The management key must be authenticated first
/// ([`PivCard::authenticate`]). Requests for OpenPGP purposes, the attestation slot or
/// algorithms the card does not offer are refused before anything is sent.
impl KeyGen for PivCard<'_> {
    fn algorithms(&self) -> &[KeyAlgorithm] {
        self.supported_algorithms()
    }

    fn generate(
        &mut self,
        request: &KeyRequest,
    ) -> Result<GeneratedKey<'_>, keystation_core::Error> {
        let KeyPurpose::Piv(slot) = request.purpose else {
            return Err(keystation_core::Error::UnsupportedAlgorithm(request.algorithm));
        };
        if slot == PivSlot::Attestation || !self.supported_algorithms().contains(&request.algorithm)
        {
            return Err(keystation_core::Error::UnsupportedAlgorithm(request.algorithm));
        }
        debug!(?slot, algorithm = %request.algorithm, "on-card PIV key generation");
        let public = PivCard::generate(
            self,
            slot,
            request.algorithm,
            request.pin_policy,
            request.touch_policy,
        )?;
        let signer = PivSigner { card: self, slot, public: public.clone() };
        Ok(GeneratedKey { public, location: KeyLocation::OnCard, signer: Box::new(signer) })
    }
}
