//! Finding the one card a job is for, through PC/SC.
//!
//! A provisioning station has one card slot in mind: the job runs when exactly one reader
//! holds a card. With none, it looks again `retries` times, `interval` apart (defguard's
//! `YUBIKEY_RETRIES` and `YUBIKEY_RETRY_INTERVAL`), then gives up with "no card
//! detected"; with several it refuses at once, since it cannot know which card the person
//! at the station meant. `--reader` narrows the readers considered, `--card-serial` the cards:
//! each card in a remaining reader is then opened shared, asked its serial numbers
//! ([`crate::list::serials`]) and let go of before the one that matches is opened as the
//! search says.

use std::time::Duration;

use keystation_pcsc::{PcscCard, PcscContext, ShareMode};

use crate::Error;
use crate::list::matches_filter;

/// How to look for the card.
#[derive(Debug, Clone)]
pub(crate) struct Search {
    /// Keep only readers whose name contains this (ASCII case ignored).
    pub(crate) reader: Option<String>,
    /// Keep only the card with this serial number.
    pub(crate) serial: Option<String>,
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
        let mut readers: Vec<String> = context
            .readers()?
            .into_iter()
            .filter(|r| r.card_present && matches_filter(&r.name, search.reader.as_deref()))
            .map(|r| r.name)
            .collect();
        if let Some(serial) = &search.serial {
            readers = with_serial(&context, readers, serial)?;
        }
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
            [] => {
                return Err(Error::NoCard {
                    filter: search.reader.clone(),
                    serial: search.serial.clone(),
                });
            }
            _ => return Err(Error::SeveralCards { readers }),
        }
    }
}

/// The readers whose card has serial number `serial` (see [`crate::list::serials`]). A
/// card that cannot be asked (held exclusively elsewhere, pulled meanwhile) is not the one;
/// only a vanished PC/SC service is an error.
fn with_serial(
    context: &PcscContext,
    readers: Vec<String>,
    serial: &str,
) -> Result<Vec<String>, Error> {
    let wanted = normalize(serial);
    let mut matching = Vec::new();
    for reader in readers {
        let serials = context
            .connect(&reader, ShareMode::Shared)
            .and_then(|mut card| crate::list::serials(&mut card));
        match serials {
            Ok(serials) if serials.iter().any(|s| normalize(s) == wanted) => matching.push(reader),
            Ok(_) => {}
            Err(error)
                if error.transport_failure()
                    == Some(keystation_core::TransportFailure::ServiceUnavailable) =>
            {
                return Err(error.into());
            }
            Err(error) => {
                tracing::debug!(%reader, %error, "cannot read the card's serial number");
            }
        }
    }
    Ok(matching)
}

/// A serial number as compared: ASCII case and leading zeros ignored.
fn normalize(serial: &str) -> String {
    serial.trim().trim_start_matches('0').to_ascii_uppercase()
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
