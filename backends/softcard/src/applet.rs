//! The [`Applet`] trait every application of the software card implements.

use keystation_core::{Command, StatusWord};
use rand_chacha::ChaCha20Rng;
use zeroize::Zeroizing;

use crate::identity::Identity;
use crate::touch::Touch;

/// What an applet sees of the card around it while it handles a command.
pub struct Context<'a> {
    /// The card's identity (serial, firmware version, form factor).
    pub identity: &'a Identity,
    /// The card's random source: seeded deterministically in tests, from the operating
    /// system otherwise.
    pub rng: &'a mut ChaCha20Rng,
    /// The touch sensor, for keys with a touch policy.
    pub touch: &'a mut Touch,
}

impl core::fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Context").field("identity", self.identity).finish_non_exhaustive()
    }
}

/// Response data of an applet: zeroized when dropped, since it may be a decrypted key.
pub type Reply = Result<Zeroizing<Vec<u8>>, StatusWord>;

/// One application on the card (OpenPGP, PIV, management, OTP).
///
/// The dispatcher owns SELECT, chaining and GET RESPONSE; an applet sees whole commands
/// with all their data and answers with all its data. It must never panic on any input:
/// every malformed command gets the status word a real card gives (`6700` wrong length,
/// `6A80` incorrect data, `6A86` incorrect P1-P2, `6D00` unknown instruction, …).
pub trait Applet: Send {
    /// The application's full AID. SELECT matches when the selected name is a prefix of
    /// it of at least five bytes (the RID), as YubiKeys do for PIV's `A0 00 00 03 08`.
    fn aid(&self) -> &[u8];

    /// A short name for logs ("OpenPGP", "PIV", …).
    fn name(&self) -> &'static str;

    /// The applet was selected; returns the SELECT response data (for example the
    /// application property template), or the status a real card gives (OpenPGP in
    /// termination state answers `6285`).
    fn select(&mut self, context: &mut Context<'_>) -> Reply;

    /// Another applet was selected, or the card was reset: forget volatile state
    /// (verified PINs, authenticated management key).
    fn deselect(&mut self);

    /// Handles one complete command for this applet.
    fn process(&mut self, context: &mut Context<'_>, command: &Command) -> Reply;

    /// The persistent state, serialized in the applet's own versioned format, for a card
    /// that survives restarts ([`SoftCard::save_state`](crate::SoftCard::save_state)).
    /// Empty means there is nothing to save (the default). **It may hold private keys and
    /// PINs in the clear.** Volatile state (verified PINs) is never part of it.
    fn save(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(Vec::new())
    }

    /// Replaces the persistent state with what [`save`](Self::save) produced, for the
    /// card with this identity, and forgets the volatile state. On error the applet is
    /// unchanged.
    fn restore(&mut self, identity: &Identity, saved: &[u8]) -> Result<(), StateError> {
        let _ = identity;
        if saved.is_empty() {
            Ok(())
        } else {
            Err(StateError::applet(self.name(), "this application saves no state"))
        }
    }
}

/// A saved card state that cannot be restored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// The bytes do not start with the state file's magic.
    #[error("not a keystation software card state (wrong magic bytes)")]
    Magic,
    /// A container format version this build does not read.
    #[error("unsupported software card state format version {0}")]
    Version(u8),
    /// The container's TLV structure is broken (truncated or corrupt).
    #[error("corrupt software card state: {0}")]
    Malformed(&'static str),
    /// The state was saved by a card with another identity.
    #[error("the state was saved by a card with {saved}, but this card has {current}")]
    Identity {
        /// The saved identity, as text.
        saved: String,
        /// This card's identity, as text.
        current: String,
    },
    /// The state names an application this card does not have.
    #[error("the state holds an application this card does not have (AID {0})")]
    UnknownApplet(String),
    /// An application's own state is invalid.
    #[error("invalid saved {applet} state: {reason}")]
    Applet {
        /// The application's name.
        applet: &'static str,
        /// What is wrong.
        reason: String,
    },
}

impl StateError {
    /// An application's state is invalid.
    pub fn applet(applet: &'static str, reason: impl Into<String>) -> Self {
        Self::Applet { applet, reason: reason.into() }
    }
}
