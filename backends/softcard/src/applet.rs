//! The [`Applet`] trait every application of the software card implements.

use keystation_core::{Command, StatusWord};
use rand_chacha::ChaCha20Rng;
use zeroize::Zeroizing;

use crate::identity::Identity;

/// What an applet sees of the card around it while it handles a command.
pub struct Context<'a> {
    /// The card's identity (serial, firmware version, form factor).
    pub identity: &'a Identity,
    /// The card's random source: seeded deterministically in tests, from the operating
    /// system otherwise.
    pub rng: &'a mut ChaCha20Rng,
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
}
