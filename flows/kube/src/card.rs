//! The proxy's key: a PIV slot on a card in a PC/SC reader.
//!
//! [`open`] finds the one card present and starts the thread that owns it. That thread
//! selects the PIV application, reads the slot's certificate, checks it against the key
//! (Yubico metadata, where the firmware has it), gets the PIN when the key's PIN policy
//! asks for it, and then signs TLS handshakes ([`SignRequests`]) in that same session.
//!
//! # What a handshake costs on the card
//!
//! A PIV card keeps the PIN verified while its PIV application stays selected and the card
//! is not reset (SP 800-73-4: the security status lasts until the application is
//! deselected or the card reset; YubiKeys do the same). So the session is kept: the
//! application is not selected again while the connection lasts, and with PIN policy
//! "once" (or "never") a handshake costs the one GENERAL AUTHENTICATE of the signature —
//! the PIN goes to the card once per selection, not per handshake. Policy "always" wants
//! a VERIFY right before every signature, so there each handshake is VERIFY + GENERAL
//! AUTHENTICATE.
//!
//! Other applications share the card (PC/SC shared mode), so the session can be lost
//! under us; each case is detected and repaired within the same signature:
//!
//! * another application selected PIV again (the PIN is no longer verified): the card
//!   answers `6982`; VERIFY with the PIN and sign again, once;
//! * the card was reset (another application's `SCARD_RESET_CARD`, a power loss): the
//!   transport reports the reset ([`TransportFailure::CardReset`]) and has reconnected;
//!   select PIV again, VERIFY, sign again, once;
//! * another application selected a different applet: the card answers with an error
//!   status (`6D00`, say); select PIV again, VERIFY, sign again, once;
//! * the card was removed: the signature fails, and the next one connects to the reader
//!   again and checks that the certificate there is still the one the proxy serves.
//!
//! [`TransportFailure::CardReset`]: keystation_core::TransportFailure::CardReset

use std::path::Path;
use std::sync::mpsc;

use keystation_cards::{CardSelection, OpenedCard};
use keystation_core::key::{HashAlgorithm, KeyAlgorithm};
use keystation_core::keygen::{PinPolicy, PivSlot, RandomSource as _};
use keystation_core::{SecretBytes, TransportFailure};
use keystation_pcsc::{PcscCard, PcscContext, ShareMode};
use keystation_piv::PivCard;
use sha2::Digest as _;

use super::signer::{CardKey, SignRequest, SignRequests, TlsScheme, sign_channel};
use super::{KubeError, slot_name};

/// The proxy's key, found and running: its thread owns the card and signs on it.
#[derive(Debug)]
pub struct StartedKey {
    /// The reader holding the card.
    pub reader: String,
    /// The slot's certificate (DER), to present.
    pub certificate: Vec<u8>,
    /// Signs on the card.
    pub key: CardKey,
}

/// What the card's thread knows about the key.
struct Key {
    reader: String,
    slot: PivSlot,
    algorithm: KeyAlgorithm,
    certificate: Vec<u8>,
    pin: Option<SecretBytes>,
    /// From the metadata; `None` when the card has none (not a YubiKey, or firmware
    /// before 5.3).
    pin_policy: Option<PinPolicy>,
    /// The card refused the PIN (changed since the proxy started?): it is not sent again,
    /// which would spend the remaining tries.
    pin_refused: std::cell::Cell<bool>,
}

impl Key {
    /// Whether to VERIFY right after selecting PIV: a new selection has forgotten the
    /// PIN, and the key needs it (policy once, or unknown). Policy always verifies before
    /// each signature anyway.
    fn verify_after_select(&self) -> bool {
        self.pin.is_some() && !matches!(self.pin_policy, Some(PinPolicy::Never | PinPolicy::Always))
    }

    /// Whether every signature wants a VERIFY right before it (PIN policy always).
    fn verify_before_sign(&self) -> bool {
        self.pin.is_some() && self.pin_policy == Some(PinPolicy::Always)
    }

    /// VERIFY with the PIN (none: nothing to do), unless the card refused it before.
    fn verify(&self, piv: &mut PivCard<'_>) -> Result<(), KubeError> {
        let Some(pin) = &self.pin else { return Ok(()) };
        if self.pin_refused.get() {
            return Err(KubeError::Pin(format!(
                "the card refused the PIN for slot {} earlier; restart the proxy with the right PIN",
                slot_name(self.slot)
            )));
        }
        piv.verify_pin(pin).map_err(|error| {
            if matches!(
                error,
                keystation_piv::Error::WrongPin { .. } | keystation_piv::Error::PinBlocked(_)
            ) {
                self.pin_refused.set(true);
            }
            KubeError::piv("PIN verification failed")(error)
        })
    }
}

/// Finds the card and the key in `slot`, gets the PIN if the key needs it, and starts
/// the thread that signs with it (see the module documentation). Fails, with a clear
/// message, when no card is present or the key is unusable.
pub fn open(
    selection: &CardSelection,
    slot: PivSlot,
    pin_file: Option<&Path>,
) -> Result<StartedKey, KubeError> {
    let pin = pin_file.map(read_pin_file).transpose()?;
    let selection =
        CardSelection { share_mode: keystation_cards::ShareMode::Shared, ..selection.clone() };
    let card = match keystation_cards::open(&selection, &|| false) {
        Ok(OpenedCard::Pcsc(card)) => card,
        Ok(_) => return Err(KubeError::Usage(
            "the kube proxy needs the card in a PC/SC reader (it watches the reader for the card's removal)".into(),
        )),
        Err(source) => return Err(KubeError::NoCard { slot: slot_name(slot), source }),
    };
    let reader = card.reader().to_owned();
    let (sender, requests) = sign_channel();
    let (ready, found) = mpsc::channel();
    let thread_reader = reader.clone();
    std::thread::Builder::new()
        .name("card-key".into())
        .spawn(move || run(card, thread_reader, slot, pin, &ready, &requests))
        .map_err(KubeError::Thread)?;
    let (certificate, algorithm) = found.recv().map_err(|_| KubeError::CardThreadGone)??;
    tracing::info!(reader, slot = slot_name(slot), ?algorithm, "key found");
    Ok(StartedKey { reader, certificate, key: CardKey::new(algorithm, sender) })
}

/// How serving on one selection of the PIV application ended.
enum Served {
    /// No more requests: the proxy stopped.
    Stopped,
    /// The session was lost (reset, another applet selected); this request, not yet
    /// answered, is to be signed again after selecting PIV again.
    Reselect(SignRequest),
    /// Selecting PIV again failed (that request was answered with why): try again with
    /// the next request.
    Unselected,
    /// The card failed (removed): connect again for the next request.
    CardFailed,
}

/// The card's thread: opens the key (answering on `ready`), then serves `requests`.
fn run(
    mut card: PcscCard,
    reader: String,
    slot: PivSlot,
    pin: Option<SecretBytes>,
    ready: &mpsc::Sender<Result<(Vec<u8>, KeyAlgorithm), KubeError>>,
    requests: &SignRequests,
) {
    // The selection that found the key serves the first signatures too.
    let (key, mut served) = {
        let mut piv = match PivCard::select(&mut card) {
            Ok(piv) => piv,
            Err(error) => {
                let _ = ready.send(Err(KubeError::piv("cannot select the PIV application")(error)));
                return;
            }
        };
        let key = match open_key(&mut piv, reader, slot, pin) {
            Ok(key) => key,
            Err(error) => {
                let _ = ready.send(Err(error));
                return;
            }
        };
        if ready.send(Ok((key.certificate.clone(), key.algorithm))).is_err() {
            return;
        }
        let served = serve(&mut piv, &key, requests, None);
        (key, served)
    };
    let mut card = Some(card);
    let mut carried = None;
    loop {
        match served {
            Served::Stopped => return,
            Served::Reselect(request) => carried = Some(request),
            Served::CardFailed => card = None,
            Served::Unselected => {}
        }
        let Some(request) = carried.take().or_else(|| requests.next()) else { return };
        let fresh = card.is_none();
        let connection = match &mut card {
            Some(connection) => connection,
            None => match connect(&key.reader) {
                Ok(connection) => card.insert(connection),
                Err(error) => {
                    request.answer(Err(error));
                    served = Served::CardFailed;
                    continue;
                }
            },
        };
        served = match select(connection, &key, fresh) {
            Ok(mut piv) => serve(&mut piv, &key, requests, Some(request)),
            Err(error) => {
                let failed = error.card_failed();
                request.answer(Err(error));
                if failed { Served::CardFailed } else { Served::Unselected }
            }
        };
    }
}

/// Reads the slot's certificate and the key's metadata, and gets the PIN (from the file,
/// or asked for on the terminal) when the key's PIN policy needs it.
fn open_key(
    piv: &mut PivCard<'_>,
    reader: String,
    slot: PivSlot,
    pin: Option<SecretBytes>,
) -> Result<Key, KubeError> {
    let (certificate, algorithm, pin_policy) = inspect(piv, slot)?;
    let needs_pin = match pin_policy {
        Some(PinPolicy::Never) => false,
        Some(_) => true,
        // No metadata (not a YubiKey, or firmware before 5.3): PIV's own rules — only
        // the card authentication key (9E) is usable without the PIN.
        None => slot != PivSlot::CardAuthentication,
    };
    let pin = match pin {
        Some(pin) => Some(pin),
        None if needs_pin => Some(prompt_pin(slot)?),
        None => None,
    };
    if let Some(pin) = &pin {
        // Fail now, with the tries left, rather than in the first handshake.
        piv.verify_pin(pin).map_err(KubeError::piv("PIN verification failed"))?;
    }
    Ok(Key {
        reader,
        slot,
        algorithm,
        certificate,
        pin,
        pin_policy,
        pin_refused: std::cell::Cell::new(false),
    })
}

/// Selects PIV on `card` again — after a reconnect (`fresh`: then the slot must still
/// hold the certificate the proxy presents), a reset, or another application's SELECT —
/// and verifies the PIN if the key will need it.
fn select<'c>(card: &'c mut PcscCard, key: &Key, fresh: bool) -> Result<PivCard<'c>, KubeError> {
    // The reset, if that is why, is being dealt with now: selecting again.
    let reset = keystation_core::Card::take_reset(card);
    tracing::debug!(reset, reconnected = fresh, "selecting the PIV application");
    let mut piv =
        PivCard::select(card).map_err(KubeError::piv("cannot select the PIV application"))?;
    if fresh {
        check_certificate(&mut piv, key.slot, &key.certificate)?;
        tracing::info!(reader = key.reader, "reconnected to the card");
    }
    if key.verify_after_select() {
        key.verify(&mut piv)?;
    }
    Ok(piv)
}

/// Signs requests with the selected `piv`, `first` (already taken from `requests`)
/// first, until the requests end, the card fails, or the session is lost (see the module
/// documentation). `first` comes right after a new selection, so it is not handed back
/// for another.
fn serve(
    piv: &mut PivCard<'_>,
    key: &Key,
    requests: &SignRequests,
    first: Option<SignRequest>,
) -> Served {
    let mut after_select = first.is_some();
    let mut next = first;
    loop {
        let Some(request) = next.take().or_else(|| requests.next()) else {
            return Served::Stopped;
        };
        let retried = std::mem::replace(&mut after_select, false);
        match sign(piv, key, request.scheme, &request.message) {
            Ok(signature) => request.answer(Ok(signature)),
            Err(Failure::SessionLost(error)) if !retried => {
                tracing::debug!(
                    "the PIV session was lost ({}): selecting PIV again",
                    keystation_core::describe_chain(&error)
                );
                return Served::Reselect(request);
            }
            Err(Failure::SessionLost(error) | Failure::Other(error)) => {
                let failed = error.card_failed();
                request.answer(Err(error));
                if failed {
                    return Served::CardFailed;
                }
            }
        }
    }
}

/// Why a signature failed.
enum Failure {
    /// The card no longer has PIV selected for us (reset, another applet selected), as
    /// far as can be told: select it again and retry.
    SessionLost(KubeError),
    /// Anything else.
    Other(KubeError),
}

/// One signature, with the PIN sent only when the card asks for it (`6982`) or the key's
/// policy is "always"; see the module documentation.
fn sign(
    piv: &mut PivCard<'_>,
    key: &Key,
    scheme: TlsScheme,
    message: &[u8],
) -> Result<Vec<u8>, Failure> {
    let slot = slot_name(key.slot);
    let what = || format!("the card could not sign with the key in slot {slot}");
    let verify = |piv: &mut PivCard<'_>| -> Result<(), Failure> {
        let Some(pin) = &key.pin else { return Ok(()) };
        piv.verify_pin(pin)
            .map_err(|error| classify(KubeError::piv("PIN verification failed"), error))
    };
    if key.verify_before_sign() {
        verify(piv)?;
    }
    match sign_once(piv, key, scheme, message) {
        Ok(signature) => Ok(signature),
        // The PIN is no longer verified (another application selected PIV), or this
        // key's policy wants it before every signature.
        Err(keystation_piv::Error::SecurityStatusNotSatisfied { .. }) if key.pin.is_some() => {
            tracing::debug!("the card wants the PIN: VERIFY and sign again");
            verify(piv)?;
            sign_once(piv, key, scheme, message)
                .map_err(|error| classify(KubeError::piv(what()), error))
        }
        Err(keystation_piv::Error::SecurityStatusNotSatisfied { .. }) => {
            Err(Failure::Other(KubeError::Pin(format!(
                "{}: the card wants the PIN (or a touch); give --pin-file or touch the key",
                what()
            ))))
        }
        Err(error) => Err(classify(KubeError::piv(what()), error)),
    }
}

/// Sorts a PIV error into [`Failure`]: a reset, or an error status where PIV should have
/// answered (the card speaking for another applet), means the session was lost. Wrong or
/// blocked PINs never are: retrying those would spend the PIN's tries.
fn classify(
    wrap: impl FnOnce(keystation_piv::Error) -> KubeError,
    error: keystation_piv::Error,
) -> Failure {
    use keystation_piv::Error as E;
    let lost = match &error {
        E::Transport { source, .. } => {
            source.transport_failure() == Some(TransportFailure::CardReset)
        }
        E::Card { .. } | E::NoKey { .. } | E::Malformed { .. } => true,
        _ => false,
    };
    if lost { Failure::SessionLost(wrap(error)) } else { Failure::Other(wrap(error)) }
}

fn connect(reader: &str) -> Result<PcscCard, KubeError> {
    let context =
        PcscContext::establish().map_err(|e| KubeError::piv("cannot reach PC/SC")(e.into()))?;
    context
        .connect(reader, ShareMode::Shared)
        .map_err(|e| KubeError::piv(format!("cannot connect to the card in {reader:?}"))(e.into()))
}

/// Reads a PIN file (trailing line ends ignored) into zeroizing memory; a file larger than
/// [`MAX_SECRET_FILE_BYTES`](keystation_piv_ops::MAX_SECRET_FILE_BYTES) (a wrong path: a
/// disk image, `/dev/zero`) is refused without reading it all.
pub fn read_pin_file(path: &Path) -> Result<SecretBytes, KubeError> {
    Ok(keystation_piv_ops::read_secret_file(path, "cannot read the PIN file")?)
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

/// The slot's certificate, its key's algorithm, and the PIN policy (from metadata).
fn inspect(
    piv: &mut PivCard<'_>,
    slot: PivSlot,
) -> Result<(Vec<u8>, KeyAlgorithm, Option<PinPolicy>), KubeError> {
    let name = slot_name(slot);
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
fn check_certificate(
    piv: &mut PivCard<'_>,
    slot: PivSlot,
    expected: &[u8],
) -> Result<(), KubeError> {
    let name = slot_name(slot);
    let found = piv
        .read_certificate(slot)
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

/// One private-key operation for `scheme` on `message`, nothing else sent.
fn sign_once(
    piv: &mut PivCard<'_>,
    key: &Key,
    scheme: TlsScheme,
    message: &[u8],
) -> Result<Vec<u8>, keystation_piv::Error> {
    let (slot, algorithm) = (key.slot, key.algorithm);
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
