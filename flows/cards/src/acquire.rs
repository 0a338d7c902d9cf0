//! Finding the one card a job is for, through PC/SC.
//!
//! A provisioning station has one card slot in mind: the job runs when exactly one reader
//! holds a card. With none, it looks again `retries` times, `interval` apart (defguard's
//! `YUBIKEY_RETRIES` and `YUBIKEY_RETRY_INTERVAL`), then gives up with "no card
//! detected"; with several it refuses at once, since it cannot know which card the person
//! at the station meant. `--reader` narrows the readers considered.

use std::time::Duration;

use keystation_pcsc::{PcscCard, PcscContext, ShareMode};

use crate::Error;
use crate::list::matches_filter;

/// How to look for the card.
#[derive(Debug, Clone)]
pub(crate) struct Search {
    /// Keep only readers whose name contains this (ASCII case ignored).
    pub(crate) reader: Option<String>,
    /// How many more times to look when no card is present.
    pub(crate) retries: u32,
    /// The wait between looks.
    pub(crate) interval: Duration,
    /// Sharing mode of the connection.
    pub(crate) share_mode: ShareMode,
}

/// Connects to the one card present, looking again as `search` says while there is none.
/// `stopped` is polled during waits; when it returns true the search ends with
/// [`Error::Stopped`].
pub(crate) fn single_card(search: &Search, stopped: &dyn Fn() -> bool) -> Result<PcscCard, Error> {
    let context = PcscContext::establish()?;
    let mut attempt = 0;
    loop {
        let readers: Vec<String> = context
            .readers()?
            .into_iter()
            .filter(|r| r.card_present && matches_filter(&r.name, search.reader.as_deref()))
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
                    return Err(Error::Stopped);
                }
            }
            [] => return Err(Error::NoCard { filter: search.reader.clone() }),
            _ => return Err(Error::SeveralCards { readers }),
        }
    }
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
