//! The simulated touch sensor.
//!
//! A YubiKey with a touch policy on a key waits up to about 15 seconds for the user to
//! touch the sensor before it signs, decrypts or authenticates; without a touch the
//! command fails with `6982` (security status not satisfied), the status yubico-piv-tool
//! and step-kms report as a missing touch. "Cached" policies (PIV `03`, OpenPGP UIF `03`
//! and `04`) accept one touch for 15 seconds.
//!
//! The software card has no sensor, so a [`TouchResponse`] stands in for the user. It is
//! card-wide: one touch satisfies a cached policy in every application, which is looser
//! than the per-key cache of real firmware and never stricter.

use std::time::{Duration, Instant};

use keystation_core::StatusWord;

/// How long a cached touch stays valid (Yubico: 15 seconds).
pub const TOUCH_CACHE: Duration = Duration::from_secs(15);

/// What the simulated user does when the card waits for a touch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum TouchResponse {
    /// Touches at once (the default: rehearsals and tests run unattended).
    #[default]
    Immediate,
    /// Touches after this long (the command's answer is delayed by it).
    After(Duration),
    /// Never touches: every operation that needs a touch fails with `6982` (at once — the
    /// real card's 15-second wait is not simulated).
    Never,
}

/// The card's touch sensor: the simulated response, the cache, and a count of touch
/// requests that tests can assert on.
#[derive(Debug, Default)]
pub struct Touch {
    response: TouchResponse,
    last_touch: Option<Instant>,
    requests: u64,
}

impl Touch {
    /// Sets what the simulated user does from now on.
    pub fn set_response(&mut self, response: TouchResponse) {
        self.response = response;
    }

    /// How many times the card has waited for a touch (cache hits do not count).
    pub fn requests(&self) -> u64 {
        self.requests
    }

    /// Waits for a touch as the card does before a private-key operation: `cached`
    /// policies accept a touch within the last [`TOUCH_CACHE`]. Without a touch the
    /// operation fails with `6982`.
    pub(crate) fn require(&mut self, cached: bool) -> Result<(), StatusWord> {
        if cached && self.last_touch.is_some_and(|at| at.elapsed() < TOUCH_CACHE) {
            return Ok(());
        }
        self.requests += 1;
        match self.response {
            TouchResponse::Immediate => {}
            TouchResponse::After(delay) => std::thread::sleep(delay),
            TouchResponse::Never => {
                tracing::debug!("touch required and not given");
                return Err(StatusWord::SECURITY_STATUS_NOT_SATISFIED);
            }
        }
        self.last_touch = Some(Instant::now());
        Ok(())
    }

    /// A power cycle forgets the cached touch.
    pub(crate) fn reset(&mut self) {
        self.last_touch = None;
    }
}
