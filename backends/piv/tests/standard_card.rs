//! A standard PIV card (no Yubico extensions) simulated by wrapping the software YubiKey:
//! Yubico's instructions answer `6D00`, and SELECT with the full AID answers `6A82`, so
//! the client must fall back to the short AID.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use keystation_core::key::KeyAlgorithm;
use keystation_core::keygen::{PinPolicy, PivSlot, TouchPolicy};
use keystation_core::{Card, Error as CoreError, SecretBytes, SecretKey};
use keystation_piv::{ManagementAlgorithm, ManagementKey, Operation, PIV_AID, PivCard, PivSigner};
use keystation_softcard::{Identity, SoftCard};
use p256::ecdsa::signature::hazmat::PrehashVerifier;
use sha2::{Digest, Sha256};

/// Yubico's PIV extension instructions.
const YUBICO_INS: [u8; 7] = [0xFD, 0xF8, 0xF7, 0xF9, 0xFE, 0xFF, 0xFB];

struct StandardCard {
    inner: SoftCard,
    refused: Vec<u8>,
}

impl Card for StandardCard {
    fn transmit(&mut self, command: &[u8], response: &mut [u8]) -> Result<usize, CoreError> {
        let answer: Option<[u8; 2]> = match command {
            [_, ins, ..] if YUBICO_INS.contains(ins) => Some([0x6D, 0x00]),
            [_, 0xA4, 0x04, 0x00, 11, aid @ ..] if aid.starts_with(&PIV_AID) => Some([0x6A, 0x82]),
            _ => None,
        };
        if let Some(sw) = answer {
            self.refused.push(command[1]);
            response[..2].copy_from_slice(&sw);
            return Ok(2);
        }
        self.inner.transmit(command, response)
    }
}

fn standard() -> StandardCard {
    StandardCard { inner: SoftCard::yubikey5(Identity::default(), Some(21)), refused: Vec::new() }
}

#[test]
fn standard_card_works_without_yubico_extensions() {
    let mut card = standard();
    {
        let mut piv = PivCard::select(&mut card).unwrap();
        assert_eq!(piv.version(), None);
        assert_eq!(piv.serial().unwrap(), None);
        assert_eq!(
            piv.supported_algorithms(),
            &[
                KeyAlgorithm::Rsa(keystation_core::key::RsaBits::Rsa2048),
                KeyAlgorithm::NistP256,
                KeyAlgorithm::NistP384
            ]
        );
        assert_eq!(piv.metadata(0x9A).unwrap(), None);

        piv.verify_pin(&SecretBytes::copy_from(b"123456")).unwrap();
        // No metadata: the given algorithm (3DES) is used.
        piv.authenticate(&ManagementKey::factory_default()).unwrap();
        let slot = PivSlot::Authentication;
        let public = piv
            .generate(slot, KeyAlgorithm::NistP256, PinPolicy::Default, TouchPolicy::Default)
            .unwrap();
        let digest = Sha256::digest(b"standard");
        let der = piv.sign_digest(slot, KeyAlgorithm::NistP256, &digest).unwrap();
        let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(public.point().unwrap()).unwrap();
        key.verify_prehash(&digest, &p256::ecdsa::Signature::from_der(&der).unwrap()).unwrap();

        let cert = [0x30, 0x03, 0x02, 0x01, 0x05];
        piv.write_certificate(slot, &cert).unwrap();
        assert_eq!(piv.read_certificate(slot).unwrap().as_deref(), Some(&cert[..]));

        // Yubico-only calls: a clear Unsupported error.
        let attest = piv.attest(slot).unwrap_err();
        assert!(matches!(
            attest,
            keystation_piv::Error::Unsupported { operation: Operation::Attest(0x9A) }
        ));
        assert!(attest.to_string().contains("does not support ATTEST"), "{attest}");
        let import = piv.import_key(
            slot,
            &SecretKey::NistP256(SecretBytes::copy_from(&[0x11; 32])),
            PinPolicy::Default,
            TouchPolicy::Default,
        );
        assert!(matches!(import, Err(keystation_piv::Error::Unsupported { .. })), "{import:?}");
        let aes = ManagementKey::new(ManagementAlgorithm::Aes128, SecretBytes::copy_from(&[3; 16]))
            .unwrap();
        assert!(matches!(
            piv.set_management_key(&aes, false),
            Err(keystation_piv::Error::Unsupported { operation: Operation::SetManagementKey })
        ));
        // Reset is refused before any PIN is blocked.
        assert!(matches!(piv.reset(), Err(keystation_piv::Error::Unsupported { .. })));
        assert_eq!(piv.pin_tries_left().unwrap(), 3);
        assert!(PivSigner::from_metadata(&mut piv, slot).is_err());
        // The signer works with a public key the caller knows.
        let mut signer = PivSigner::new(&mut piv, slot, public.clone());
        let sig = keystation_core::keygen::Signer::sign(
            &mut signer,
            keystation_core::keygen::SignInput::Digest {
                hash: keystation_core::key::HashAlgorithm::Sha256,
                digest: &digest,
            },
        )
        .unwrap();
        key.verify_prehash(&digest, &p256::ecdsa::Signature::from_der(&sig).unwrap()).unwrap();
    }
    // The wrapper did refuse the full AID and Yubico's instructions.
    assert!(card.refused.contains(&0xA4));
    assert!(card.refused.contains(&0xFD));
    assert!(card.refused.contains(&0xF9));
}

#[test]
fn a_card_without_piv_is_reported() {
    struct Empty;
    impl Card for Empty {
        fn transmit(&mut self, _: &[u8], response: &mut [u8]) -> Result<usize, CoreError> {
            response[..2].copy_from_slice(&[0x6A, 0x82]);
            Ok(2)
        }
    }
    let error = PivCard::select(&mut Empty).unwrap_err();
    assert!(matches!(error, keystation_piv::Error::NoApplication));
    assert_eq!(error.to_string(), "the card has no PIV application");
}
