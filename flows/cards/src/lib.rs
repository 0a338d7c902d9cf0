//! keystation-cards: the one place where a command gets its card.
//!
//! Every command that works on a card — `provision`, `piv`, `kube`, the station's jobs —
//! describes the card it wants as a [`CardSelection`] and calls [`open`]. The backends are
//! chosen at compile time:
//!
//! * `pcsc`: the one card present in a PC/SC reader, optionally narrowed by reader name
//!   and serial number (waiting for it as the station's retry settings say);
//! * `softcard`: keystation's software YubiKey 5 in this process, for rehearsals.
//!
//! A new card backend is a feature of this crate, a variant of [`OpenedCard`] and of
//! [`CardChoice`], and nothing else: the commands take whatever [`open`] returns as a
//! [`keystation_core::Card`].

#[cfg(feature = "pcsc")]
mod acquire;
#[cfg(feature = "pcsc")]
mod list;

use core::fmt;
use std::time::Duration;

use keystation_core::{Card, TransportFailure};

#[cfg(feature = "pcsc")]
pub use list::list;

/// Which card a command uses (`--card`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CardChoice {
    /// The one card in a PC/SC reader; the built-in software card when no reader holds
    /// a card (or PC/SC is not available).
    #[default]
    Auto,
    /// The one card in a PC/SC reader (`--reader` narrows the readers).
    Pcsc,
    /// A software YubiKey 5 in this process: a rehearsal, whose keys vanish at exit.
    Software,
}

impl CardChoice {
    /// Every choice, in the order the help lists them.
    pub const ALL: [Self; 3] = [Self::Auto, Self::Pcsc, Self::Software];

    /// The name on the command line: `auto`, `pcsc`, `software`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Pcsc => "pcsc",
            Self::Software => "software",
        }
    }
}

impl fmt::Display for CardChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a PC/SC card is opened (`--share-mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ShareMode {
    /// No other application may use the card while keystation has it open.
    #[default]
    Exclusive,
    /// Other applications may use the card at the same time.
    Shared,
}

impl ShareMode {
    /// Both modes.
    pub const ALL: [Self; 2] = [Self::Exclusive, Self::Shared];

    /// The configuration name: `exclusive`, `shared`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Exclusive => "exclusive",
            Self::Shared => "shared",
        }
    }

    #[cfg(feature = "pcsc")]
    fn to_pcsc(self) -> keystation_pcsc::ShareMode {
        match self {
            Self::Exclusive => keystation_pcsc::ShareMode::Exclusive,
            Self::Shared => keystation_pcsc::ShareMode::Shared,
        }
    }
}

impl fmt::Display for ShareMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The card a command wants, and how long to wait for it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CardSelection {
    /// Which backend.
    pub choice: CardChoice,
    /// Keep only PC/SC readers whose name contains this (ASCII case ignored).
    pub reader: Option<String>,
    /// Keep only the card with this serial number: a YubiKey's decimal serial (as ykman
    /// shows it), or the OpenPGP serial as `gpg --card-status` shows it; leading zeros and
    /// ASCII case do not matter.
    pub serial: Option<String>,
    /// How to open a PC/SC card.
    pub share_mode: ShareMode,
    /// How many more times to look when no card is present (`smartcard_retries`).
    pub retries: u32,
    /// The wait between looks (`smartcard_retry_interval`).
    pub interval: Duration,
}

impl CardSelection {
    /// The one card in a PC/SC reader matching `reader`, opened exclusively, no waiting:
    /// what the `piv` and `kube` commands work on.
    pub fn pcsc(reader: Option<&str>) -> Self {
        Self { choice: CardChoice::Pcsc, reader: reader.map(str::to_owned), ..Self::default() }
    }

    /// The same selection with one look fewer (after a card vanished under a job).
    pub fn with_one_retry_less(&self) -> Self {
        Self { retries: self.retries.saturating_sub(1), ..self.clone() }
    }
}

/// Why no card was opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No reader (matching the filter) held a card (with the serial), after every retry.
    #[error("no card detected{}{}", serial_note(.serial), filter_note(.filter))]
    NoCard {
        /// The reader filter in force.
        filter: Option<String>,
        /// The serial number asked for.
        serial: Option<String>,
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
    /// This build has no such card backend.
    #[error("this keystation was built without the {0} card backend")]
    NoBackend(&'static str),
    /// Writing the `card list` report failed.
    #[error("writing output: {0}")]
    Io(#[from] std::io::Error),
}

fn serial_note(serial: &Option<String>) -> String {
    match serial {
        Some(serial) => format!(" with serial number {serial:?}"),
        None => String::new(),
    }
}

fn filter_note(filter: &Option<String>) -> String {
    match filter {
        Some(filter) => format!(" in a reader matching {filter:?}"),
        None => String::new(),
    }
}

impl Error {
    /// Whether, with [`CardChoice::Auto`], the software card stands in: no reader has a
    /// card, or PC/SC is not running — not when several cards make the choice ambiguous.
    pub fn leaves_auto_to_software(&self) -> bool {
        match self {
            Self::NoCard { serial: None, .. } | Self::NoBackend("PC/SC") => true,
            Self::Pcsc(e) => matches!(
                e.transport_failure(),
                Some(TransportFailure::ServiceUnavailable | TransportFailure::NoCard)
            ),
            _ => false,
        }
    }
}

/// A card [`open`] found, of whichever backend.
#[non_exhaustive]
pub enum OpenedCard {
    /// A card in a PC/SC reader.
    #[cfg(feature = "pcsc")]
    Pcsc(keystation_pcsc::PcscCard),
    /// The software YubiKey 5 in this process.
    #[cfg(feature = "softcard")]
    Software(Box<keystation_softcard::SoftCard>),
}

impl fmt::Debug for OpenedCard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.reader() {
            Some(reader) => write!(f, "OpenedCard(reader {reader:?})"),
            None => f.write_str("OpenedCard(software)"),
        }
    }
}

impl OpenedCard {
    /// The PC/SC reader holding the card; `None` for the software card.
    pub fn reader(&self) -> Option<&str> {
        match self {
            #[cfg(feature = "pcsc")]
            Self::Pcsc(card) => Some(card.reader()),
            #[cfg(feature = "softcard")]
            Self::Software(_) => None,
            #[cfg(not(any(feature = "pcsc", feature = "softcard")))]
            _ => None,
        }
    }

    fn inner(&mut self) -> &mut dyn Card {
        match self {
            #[cfg(feature = "pcsc")]
            Self::Pcsc(card) => card,
            #[cfg(feature = "softcard")]
            Self::Software(card) => card.as_mut(),
            #[cfg(not(any(feature = "pcsc", feature = "softcard")))]
            _ => unreachable!("no card backend, so no OpenedCard"),
        }
    }

    fn inner_ref(&self) -> &dyn Card {
        match self {
            #[cfg(feature = "pcsc")]
            Self::Pcsc(card) => card,
            #[cfg(feature = "softcard")]
            Self::Software(card) => card.as_ref(),
            #[cfg(not(any(feature = "pcsc", feature = "softcard")))]
            _ => unreachable!("no card backend, so no OpenedCard"),
        }
    }
}

impl Card for OpenedCard {
    fn transmit(
        &mut self,
        command: &[u8],
        response: &mut [u8],
    ) -> Result<usize, keystation_core::Error> {
        self.inner().transmit(command, response)
    }

    fn begin_transaction(&mut self) -> Result<(), keystation_core::Error> {
        self.inner().begin_transaction()
    }

    fn end_transaction(&mut self) -> Result<(), keystation_core::Error> {
        self.inner().end_transaction()
    }

    fn take_reset(&mut self) -> bool {
        self.inner().take_reset()
    }

    fn atr(&self) -> Option<&[u8]> {
        self.inner_ref().atr()
    }

    fn supports_extended_length(&self) -> bool {
        self.inner_ref().supports_extended_length()
    }
}

/// Opens the card `selection` names. For PC/SC that is the one card present, looking
/// again as `selection` says while there is none; `stopped` is polled during the waits
/// and ends them with [`Error::Stopped`]. With [`CardChoice::Auto`] the software card
/// stands in when PC/SC has no card for us ([`Error::leaves_auto_to_software`]), with a
/// warning in the log.
pub fn open(selection: &CardSelection, stopped: &dyn Fn() -> bool) -> Result<OpenedCard, Error> {
    match selection.choice {
        CardChoice::Software => software(),
        CardChoice::Pcsc => pcsc(selection, stopped),
        CardChoice::Auto => match pcsc(selection, stopped) {
            Err(error) if error.leaves_auto_to_software() => {
                tracing::warn!(
                    %error,
                    "no card to provision; using the built-in software card (a rehearsal: its keys vanish at exit)"
                );
                software()
            }
            result => result,
        },
    }
}

#[cfg(feature = "pcsc")]
fn pcsc(selection: &CardSelection, stopped: &dyn Fn() -> bool) -> Result<OpenedCard, Error> {
    let search = acquire::Search {
        reader: selection.reader.clone(),
        serial: selection.serial.clone(),
        retries: selection.retries,
        interval: selection.interval,
        share_mode: selection.share_mode.to_pcsc(),
    };
    Ok(OpenedCard::Pcsc(acquire::single_card(&search, stopped)?))
}

#[cfg(not(feature = "pcsc"))]
fn pcsc(_: &CardSelection, _: &dyn Fn() -> bool) -> Result<OpenedCard, Error> {
    // Without PC/SC there is no card in a reader; `auto` goes on to the software card.
    Err(Error::NoBackend("PC/SC"))
}

#[cfg(feature = "softcard")]
fn software() -> Result<OpenedCard, Error> {
    Ok(OpenedCard::Software(Box::new(keystation_softcard::SoftCard::yubikey5(
        Default::default(),
        None,
    ))))
}

#[cfg(not(feature = "softcard"))]
fn software() -> Result<OpenedCard, Error> {
    Err(Error::NoBackend("software"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used)]

    use super::*;

    #[test]
    fn errors_say_what_to_do() {
        let several = Error::SeveralCards { readers: vec!["A 00".into(), "B 00".into()] };
        assert_eq!(
            several.to_string(),
            "several cards present (A 00, B 00); remove all but one, or choose one with --reader"
        );
        let none = Error::NoCard { filter: Some("yubi".into()), serial: None };
        assert_eq!(none.to_string(), "no card detected in a reader matching \"yubi\"");
        assert!(none.leaves_auto_to_software());
        // A card asked for by serial is that card: no stand-in.
        let none = Error::NoCard { filter: None, serial: Some("12345678".into()) };
        assert_eq!(none.to_string(), "no card detected with serial number \"12345678\"");
        assert!(!none.leaves_auto_to_software());
        assert!(!several.leaves_auto_to_software());
    }

    #[cfg(feature = "softcard")]
    #[test]
    fn software_choice_opens_the_software_card() {
        let selection = CardSelection { choice: CardChoice::Software, ..Default::default() };
        let card = open(&selection, &|| false).expect("software card");
        assert_eq!(card.reader(), None);
        assert!(card.atr().is_some());
    }
}
