//! Finding the one card a job is for, through PC/SC.
//!
//! A provisioning station has one card slot in mind: the job runs when exactly one reader
//! holds a card. With none, it looks again `retries` times, `interval` apart (defguard's
//! `YUBIKEY_RETRIES` and `YUBIKEY_RETRY_INTERVAL`), then gives up with "no card
//! detected"; with several it refuses at once, since it cannot know which card the person
//! at the station meant. `--reader` narrows the readers considered.

use std::time::Duration;

use keystation_pcsc::{PcscCard, PcscContext, ShareMode};

/// Why no card was acquired.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AcquireError {
    /// No reader (matching the filter) held a card, after every retry.
    #[error("no card detected{}", filter_note(.filter))]
    NoCard {
        /// The reader filter in force.
        filter: Option<String>,
    },
    /// Several readers hold cards.
    #[error("several cards present ({}); remove all but one, or choose one with --reader", .readers.join(", "))]
    SeveralCards {
        /// The readers with cards.
        readers: Vec<String>,
    },
    /// PC/SC failed (pcscd not running, the card went away while connecting, …).
    #[error(transparent)]
    Pcsc(#[from] keystation_core::Error),
    /// The wait was abandoned (the station is shutting down).
    #[error("stopped while waiting for a card")]
    Stopped,
}

fn filter_note(filter: &Option<String>) -> String {
    match filter {
        Some(filter) => format!(" in a reader matching {filter:?}"),
        None => String::new(),
    }
}

/// How to look for the card.
#[derive(Debug, Clone)]
pub struct Search {
    /// Keep only readers whose name contains this (ASCII case ignored).
    pub reader: Option<String>,
    /// How many more times to look when no card is present.
    pub retries: u32,
    /// The wait between looks.
    pub interval: Duration,
    /// Sharing mode of the connection.
    pub share_mode: ShareMode,
}

/// Connects to the one card present, looking again as `search` says while there is none.
/// `stopped` is polled during waits; when it returns true the search ends with
/// [`AcquireError::Stopped`].
pub fn single_card(search: &Search, stopped: &dyn Fn() -> bool) -> Result<PcscCard, AcquireError> {
    let context = PcscContext::establish()?;
    let mut attempt = 0;
    loop {
        let readers: Vec<String> = context
            .readers()?
            .into_iter()
            .filter(|r| r.card_present && matches(search.reader.as_deref(), &r.name))
            .map(|r| r.name)
            .collect();
        match readers.as_slice() {
            [one] => {
                tracing::info!(reader = %one, "card detected");
                return Ok(context.connect(one, search.share_mode)?);
            }
            [] if attempt < search.retries => {
                attempt += 1;
                tracing::info!(
                    attempt,
                    of = search.retries,
                    wait_ms = search.interval.as_millis() as u64,
                    "no card detected; looking again"
                );
                if sleep_unless(search.interval, stopped) {
                    return Err(AcquireError::Stopped);
                }
            }
            [] => return Err(AcquireError::NoCard { filter: search.reader.clone() }),
            _ => return Err(AcquireError::SeveralCards { readers }),
        }
    }
}

fn matches(filter: Option<&str>, name: &str) -> bool {
    filter.is_none_or(|f| name.to_ascii_lowercase().contains(&f.to_ascii_lowercase()))
}

/// Sleeps `duration` in short steps; true when `stopped` said to stop.
fn sleep_unless(duration: Duration, stopped: &dyn Fn() -> bool) -> bool {
    let step = Duration::from_millis(50);
    let mut slept = Duration::ZERO;
    while slept < duration {
        if stopped() {
            return true;
        }
        std::thread::sleep(step.min(duration - slept));
        slept += step;
    }
    stopped()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_filter_ignores_case() {
        assert!(matches(None, "Yubico YubiKey OTP+FIDO+CCID 00 00"));
        assert!(matches(Some("yubikey"), "Yubico YubiKey OTP+FIDO+CCID 00 00"));
        assert!(!matches(Some("nitrokey"), "Yubico YubiKey OTP+FIDO+CCID 00 00"));
    }

    #[test]
    fn errors_say_what_to_do() {
        let several = AcquireError::SeveralCards { readers: vec!["A 00".into(), "B 00".into()] };
        assert_eq!(
            several.to_string(),
            "several cards present (A 00, B 00); remove all but one, or choose one with --reader"
        );
        let none = AcquireError::NoCard { filter: Some("yubi".into()) };
        assert_eq!(none.to_string(), "no card detected in a reader matching \"yubi\"");
    }
}
