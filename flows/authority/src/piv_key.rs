//! The intermediate CA key in a PIV slot: signatures made by the card through keystation's
//! own PIV client (SP 800-73-4 part 2 §3.2.4 GENERAL AUTHENTICATE), where step-ca needs a
//! KMS plugin.
//!
//! Cards are blocking devices, so one thread owns the card and signs on request; the
//! [`PivKeySigner`] handed to the CA sends each signing input there and waits. The thread
//! keeps its session between signatures and opens the card again after a failure (removed
//! and put back), so the authority outlives a removal; a signature asked for while the card
//! is away fails with a precise error and nothing is issued.

use std::sync::mpsc;

use keystation_cards::CardSelection;
use keystation_core::key::{HashAlgorithm, PublicKey};
use keystation_core::keygen::{PivSlot, SignInput, Signer};
use keystation_core::secret::SecretBytes;
use keystation_core::{Error as CoreError, TransportFailure};
use keystation_piv::{PivCard, PivSigner};

use crate::error::Error;

enum Input {
    Digest(HashAlgorithm, Vec<u8>),
    Message(Vec<u8>),
}

struct Job {
    input: Input,
    reply: mpsc::Sender<Result<Vec<u8>, String>>,
}

/// A core [`Signer`] whose key is in a PIV slot, served by the card's own thread.
pub struct PivKeySigner {
    jobs: mpsc::Sender<Job>,
    public: PublicKey,
}

impl std::fmt::Debug for PivKeySigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PivKeySigner").field("public", &self.public).finish_non_exhaustive()
    }
}

fn card_error(context: &str, error: &dyn std::fmt::Display) -> String {
    format!("{context}: {error}")
}

/// Opens the card, selects PIV and verifies the PIN.
fn open_verified(
    selection: &CardSelection,
    pin: &SecretBytes,
) -> Result<keystation_cards::OpenedCard, String> {
    let mut card = keystation_cards::open(selection, &|| false)
        .map_err(|e| card_error("opening the card", &e))?;
    {
        let mut piv = PivCard::select(&mut card).map_err(|e| card_error("selecting PIV", &e))?;
        piv.verify_pin(pin).map_err(|e| card_error("verifying the PIN", &e))?;
    }
    Ok(card)
}

fn sign_once(
    card: &mut keystation_cards::OpenedCard,
    slot: PivSlot,
    public: &PublicKey,
    pin: &SecretBytes,
    input: &Input,
) -> Result<Vec<u8>, String> {
    let mut piv = PivCard::select(card).map_err(|e| card_error("selecting PIV", &e))?;
    piv.verify_pin(pin).map_err(|e| card_error("verifying the PIN", &e))?;
    let mut signer = PivSigner::new(&mut piv, slot, public.clone());
    let input = match input {
        Input::Digest(hash, digest) => SignInput::Digest { hash: *hash, digest },
        Input::Message(message) => SignInput::Message(message),
    };
    signer.sign(input).map_err(|e| card_error("the card's signature", &e))
}

impl PivKeySigner {
    /// Opens the card `selection` names, reads the public key of `slot` (metadata, else its
    /// certificate), checks the PIN, and starts the thread that signs with it.
    pub fn start(selection: CardSelection, slot: PivSlot, pin: SecretBytes) -> Result<Self, Error> {
        let mut card = open_verified(&selection, &pin).map_err(Error::Card)?;
        let public = {
            let mut piv = PivCard::select(&mut card)
                .map_err(|e| Error::Card(card_error("selecting PIV", &e)))?;
            match piv.public_key(slot) {
                Ok(Some(public)) => public,
                _ => {
                    let der = piv
                        .read_certificate(slot)
                        .map_err(|e| Error::Card(card_error("reading the slot's certificate", &e)))?
                        .ok_or_else(|| {
                            Error::Card(format!(
                                "slot {:02x} holds no key the card can describe",
                                slot.key_reference()
                            ))
                        })?;
                    keystation_x509::Certificate::from_der(&der)?.public_key()?
                }
            }
        };
        let (jobs, queue) = mpsc::channel::<Job>();
        let key = public.clone();
        std::thread::Builder::new()
            .name("piv-ca-key".into())
            .spawn(move || {
                let mut card = Some(card);
                for job in queue {
                    let mut result = Err(String::new());
                    for _attempt in 0..2 {
                        if card.is_none() {
                            match open_verified(&selection, &pin) {
                                Ok(opened) => card = Some(opened),
                                Err(e) => {
                                    result = Err(e);
                                    continue;
                                }
                            }
                        }
                        let Some(opened) = card.as_mut() else { continue };
                        result = sign_once(opened, slot, &key, &pin, &job.input);
                        if result.is_ok() {
                            break;
                        }
                        card = None;
                    }
                    if let Err(error) = &result {
                        tracing::error!(%error, "the intermediate CA key's card failed to sign");
                    }
                    let _ = job.reply.send(result);
                }
            })
            .map_err(|e| Error::Card(format!("starting the card thread: {e}")))?;
        Ok(Self { jobs, public })
    }
}

impl Signer for PivKeySigner {
    fn public_key(&self) -> &PublicKey {
        &self.public
    }

    fn sign(&mut self, input: SignInput<'_>) -> Result<Vec<u8>, CoreError> {
        let input = match input {
            SignInput::Digest { hash, digest } => Input::Digest(hash, digest.to_vec()),
            SignInput::Message(message) => Input::Message(message.to_vec()),
        };
        let (reply, answer) = mpsc::channel();
        let gone = || {
            CoreError::transport_with(
                TransportFailure::Other,
                std::io::Error::other("the card thread stopped"),
            )
        };
        self.jobs.send(Job { input, reply }).map_err(|_| gone())?;
        answer.recv().map_err(|_| gone())?.map_err(|message| {
            CoreError::transport_with(TransportFailure::Other, std::io::Error::other(message))
        })
    }
}
