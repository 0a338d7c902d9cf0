//! The proxy's key: a PIV slot on a card in a PC/SC reader.
//!
//! [`open`] finds the one card present, selects its PIV application, reads the slot's
//! certificate, checks it against the key (Yubico metadata, where the firmware has it)
//! and gets the PIN when the key's PIN policy asks for it. The session then signs TLS
//! handshakes ([`KeySession`]); after a removal the next signature reconnects to the same
//! reader and checks that the certificate there is still the one the proxy serves.

use std::path::Path;

use keystation_core::SecretBytes;
use keystation_core::key::{HashAlgorithm, KeyAlgorithm};
use keystation_core::keygen::{PinPolicy, PivSlot, RandomSource as _};
use keystation_pcsc::{PcscCard, PcscContext, ShareMode};
use keystation_piv::PivCard;
use sha2::Digest as _;

use super::signer::{CardKey, KeySession, TlsScheme};
use super::{KubeError, slot_name};

/// A card found with a usable key, before its signing thread starts.
pub struct Opened {
    /// The reader holding the card.
    pub reader: String,
    /// The slot's certificate (DER).
    pub certificate: Vec<u8>,
    /// The key's algorithm.
    pub algorithm: KeyAlgorithm,
    session: PivKeySession,
}

impl std::fmt::Debug for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opened")
            .field("reader", &self.reader)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// The running key: its signing thread and certificate.
#[derive(Debug)]
pub struct StartedKey {
    /// Signs on the card.
    pub key: CardKey,
    /// The certificate to present.
    pub certificate: Vec<u8>,
}

impl Opened {
    /// Starts the signing thread; it reconnects to the same reader after a removal.
    pub fn start(self) -> Result<StartedKey, KubeError> {
        let reader = self.reader.clone();
        let slot = self.session.slot;
        let algorithm = self.algorithm;
        let pin = self.session.pin.clone();
        let certificate = self.certificate.clone();
        let expected = certificate.clone();
        let opener = Box::new(move || -> Result<Box<dyn KeySession>, KubeError> {
            let card = connect(&reader)?;
            let mut session = PivKeySession { card, slot, algorithm, pin: pin.clone() };
            session.check_certificate(&expected)?;
            tracing::info!(reader, "reconnected to the card");
            Ok(Box::new(session))
        });
        let key = CardKey::start(self.algorithm, Some(Box::new(self.session)), opener)?;
        Ok(StartedKey { key, certificate })
    }
}

/// Finds the card and the key in `slot` (see the module documentation).
pub fn open(
    reader: Option<&str>,
    slot: PivSlot,
    pin_file: Option<&Path>,
) -> Result<Opened, KubeError> {
    let search = crate::acquire::Search {
        reader: reader.map(str::to_owned),
        retries: 0,
        interval: std::time::Duration::ZERO,
        share_mode: ShareMode::Shared,
    };
    let card = crate::acquire::single_card(&search, &|| false)
        .map_err(|source| KubeError::NoCard { slot: slot_name(slot), source })?;
    let reader = card.reader().to_owned();
    let mut session = PivKeySession { card, slot, algorithm: KeyAlgorithm::NistP256, pin: None };
    let (certificate, algorithm, pin_policy) = session.inspect()?;
    session.algorithm = algorithm;
    let needs_pin = match pin_policy {
        Some(PinPolicy::Never) => false,
        Some(_) => true,
        // No metadata (not a YubiKey, or firmware before 5.3): PIV's own rules — only
        // the card authentication key (9E) is usable without the PIN.
        None => slot != PivSlot::CardAuthentication,
    };
    if let Some(path) = pin_file {
        session.pin = Some(read_pin_file(path)?);
    } else if needs_pin {
        session.pin = Some(prompt_pin(slot)?);
    }
    if session.pin.is_some() {
        // Fail now, with the tries left, rather than in the first handshake.
        session.verify_pin()?;
    }
    tracing::info!(reader, slot = slot_name(slot), ?algorithm, "key found");
    Ok(Opened { reader, certificate, algorithm, session })
}

fn connect(reader: &str) -> Result<PcscCard, KubeError> {
    let context =
        PcscContext::establish().map_err(|e| KubeError::piv("cannot reach PC/SC")(e.into()))?;
    context
        .connect(reader, ShareMode::Shared)
        .map_err(|e| KubeError::piv(format!("cannot connect to the card in {reader:?}"))(e.into()))
}

/// Reads a PIN file (trailing newline ignored) into zeroizing memory.
pub fn read_pin_file(path: &Path) -> Result<SecretBytes, KubeError> {
    let bytes = std::fs::read(path).map_err(|source| KubeError::File {
        what: "cannot read the PIN file",
        path: path.into(),
        source,
    })?;
    let bytes = SecretBytes::new(bytes);
    let text = bytes.expose();
    let end = text.iter().rposition(|b| !matches!(b, b'\n' | b'\r')).map_or(0, |i| i + 1);
    Ok(SecretBytes::copy_from(&text[..end]))
}

/// Asks for the PIN on the terminal (not echoed).
fn prompt_pin(slot: PivSlot) -> Result<SecretBytes, KubeError> {
    let prompt = format!("PIN for the key in PIV slot {}: ", slot_name(slot));
    match rpassword::prompt_password(prompt) {
        Ok(pin) => {
            let pin = zeroize::Zeroizing::new(pin);
            Ok(SecretBytes::copy_from(pin.trim_end_matches(['\r', '\n']).as_bytes()))
        }
        Err(_) => Err(KubeError::Pin(format!(
            "the key in PIV slot {} needs the PIN and there is no terminal to ask on: give --pin-file FILE",
            slot_name(slot)
        ))),
    }
}

/// A PC/SC connection to the card and the slot whose key signs.
struct PivKeySession {
    card: PcscCard,
    slot: PivSlot,
    algorithm: KeyAlgorithm,
    pin: Option<SecretBytes>,
}

impl PivKeySession {
    /// The slot's certificate, its key's algorithm, and the PIN policy (from metadata).
    fn inspect(&mut self) -> Result<(Vec<u8>, KeyAlgorithm, Option<PinPolicy>), KubeError> {
        let slot = self.slot;
        let name = slot_name(slot);
        let mut piv = PivCard::select(&mut self.card)
            .map_err(KubeError::piv("cannot select the PIV application"))?;
        let certificate = piv
            .read_certificate(slot)
            .map_err(KubeError::piv(format!("cannot read the certificate in slot {name}")))?
            .ok_or_else(|| KubeError::NoCertificate(name.clone()))?;
        let parsed = keystation_x509::Certificate::from_der(&certificate)
            .map_err(KubeError::x509(format!("the certificate in slot {name} does not parse")))?;
        let public = parsed.public_key().map_err(KubeError::x509(format!(
            "the certificate in slot {name} has an unsupported key"
        )))?;
        let metadata = match piv.metadata(slot.key_reference()) {
            Ok(metadata) => metadata,
            Err(keystation_piv::Error::NoKey { .. }) => {
                return Err(KubeError::BadCertificate {
                    slot: name,
                    reason: "the slot holds a certificate but no key".into(),
                });
            }
            Err(error) => return Err(KubeError::piv("cannot read the key's metadata")(error)),
        };
        if let Some(on_card) = metadata.as_ref().and_then(|m| m.public_key.as_ref())
            && on_card != &public
        {
            return Err(KubeError::BadCertificate {
                slot: name,
                reason: "its public key is not the key in the slot".into(),
            });
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        if !parsed.is_valid_at(now) {
            tracing::warn!(
                slot = name,
                not_after = %keystation_x509::rfc3339(parsed.not_after()),
                "the slot's certificate is not valid now; the API server will refuse it"
            );
        }
        let algorithm = public.algorithm();
        if TlsScheme::for_algorithm(algorithm).is_empty() {
            return Err(KubeError::BadCertificate {
                slot: name,
                reason: format!("{algorithm} keys cannot sign TLS handshakes"),
            });
        }
        Ok((certificate, algorithm, metadata.and_then(|m| m.pin_policy)))
    }

    /// After a reconnect: the slot must still hold the certificate the proxy presents.
    fn check_certificate(&mut self, expected: &[u8]) -> Result<(), KubeError> {
        let name = slot_name(self.slot);
        let mut piv = PivCard::select(&mut self.card)
            .map_err(KubeError::piv("cannot select the PIV application"))?;
        let found = piv
            .read_certificate(self.slot)
            .map_err(KubeError::piv(format!("cannot read the certificate in slot {name}")))?;
        if found.as_deref() != Some(expected) {
            return Err(KubeError::BadCertificate {
                slot: name,
                reason: "a different card (or certificate) is in the reader now; restart the proxy"
                    .into(),
            });
        }
        Ok(())
    }

    fn verify_pin(&mut self) -> Result<(), KubeError> {
        let Some(pin) = &self.pin else { return Ok(()) };
        let mut piv = PivCard::select(&mut self.card)
            .map_err(KubeError::piv("cannot select the PIV application"))?;
        piv.verify_pin(pin).map_err(KubeError::piv("PIN verification failed"))
    }

    fn sign_once(
        &mut self,
        scheme: TlsScheme,
        message: &[u8],
        verify: bool,
    ) -> Result<Vec<u8>, keystation_piv::Error> {
        let slot = self.slot;
        let algorithm = self.algorithm;
        let mut piv = PivCard::select(&mut self.card)?;
        if verify && let Some(pin) = &self.pin {
            piv.verify_pin(pin)?;
        }
        match scheme {
            TlsScheme::EcdsaP256Sha256 | TlsScheme::RsaPkcs1Sha256 => {
                piv.sign_digest(slot, algorithm, &sha2::Sha256::digest(message))
            }
            TlsScheme::EcdsaP384Sha384 => {
                piv.sign_digest(slot, algorithm, &sha2::Sha384::digest(message))
            }
            TlsScheme::RsaPssSha256 | TlsScheme::RsaPssSha384 => {
                let KeyAlgorithm::Rsa(bits) = algorithm else {
                    return Err(keystation_piv::Error::InvalidInput {
                        what: "scheme",
                        reason: "not an RSA key",
                    });
                };
                let (hash, digest) = if scheme == TlsScheme::RsaPssSha256 {
                    (HashAlgorithm::Sha256, sha2::Sha256::digest(message).to_vec())
                } else {
                    (HashAlgorithm::Sha384, sha2::Sha384::digest(message).to_vec())
                };
                let mut salt = vec![0u8; hash.output_len()];
                keystation_keygen::OsRandom
                    .fill(&mut salt)
                    .map_err(|_| keystation_piv::Error::Random)?;
                let encoded =
                    keystation_piv::pss_encode(hash, &digest, usize::from(bits.bits() / 8), &salt)?;
                Ok(piv.rsa_raw(slot, bits, &encoded)?.expose().to_vec())
            }
            TlsScheme::Ed25519 => piv.sign_ed25519(slot, message),
        }
    }
}

impl KeySession for PivKeySession {
    fn sign(&mut self, scheme: TlsScheme, message: &[u8]) -> Result<Vec<u8>, KubeError> {
        let slot = slot_name(self.slot);
        let what = || format!("the card could not sign with the key in slot {slot}");
        match self.sign_once(scheme, message, false) {
            // PIN policy ONCE forgets the PIN when another application reset the card or
            // selected another applet; ALWAYS wants it before every signature.
            Err(keystation_piv::Error::SecurityStatusNotSatisfied { .. }) if self.pin.is_some() => {
                let what = what();
                self.sign_once(scheme, message, true).map_err(KubeError::piv(what))
            }
            Err(keystation_piv::Error::SecurityStatusNotSatisfied { .. }) => {
                Err(KubeError::Pin(format!(
                    "{}: the card wants the PIN (or a touch); give --pin-file or touch the key",
                    what()
                )))
            }
            other => {
                let what = what();
                other.map_err(KubeError::piv(what))
            }
        }
    }
}
