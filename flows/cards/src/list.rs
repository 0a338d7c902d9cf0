//! `keystation card list`: the readers PC/SC knows, their cards and the applications on
//! them.
//!
//! Readers are listed without touching the cards (`SCardGetStatusChange`, see
//! [`PcscContext::readers`]). Each card is then opened in *shared* mode, so that
//! applications already using it (gpg's scdaemon, ykman) are not locked out, and inside
//! one PC/SC transaction the well-known applications are SELECTed by AID
//! (ISO/IEC 7816-4 §11.2.2, SELECT with P1 = `04`, "select by DF name"):
//!
//! | application | AID | reported as |
//! |---|---|---|
//! | OpenPGP card | `D2 76 00 01 24 01` (OpenPGP card 3.4 §4.2.1) | `OpenPGP 3.4 (serial …)` |
//! | PIV | `A0 00 00 03 08` (NIST SP 800-73-4 part 1 §2.2; YubiKeys accept this prefix) | `PIV` |
//! | Yubico management | `A0 00 00 05 27 47 11 17` | `management` |
//! | Yubico OTP | `A0 00 00 05 27 20 01` | `OTP` |
//!
//! An application is present when SELECT answers `9000`. An OpenPGP application in
//! termination state (OpenPGP card 3.4 §7.2.16, TERMINATE DF) answers `6283` ("selected
//! file deactivated") or `6285` ("selected file in termination state", ISO/IEC 7816-4
//! §5.6 table 6) and is reported as terminated. Any other status means absent.
//!
//! Probing changes which application is selected on the card; PC/SC clients that share
//! the card re-select their application at the start of each transaction.

use std::io::Write;

use keystation_core::apdu::HexOrRedacted;
use keystation_core::{Card, Channel, Command, Le, StatusWord, Transaction, TransportFailure};
use keystation_pcsc::{PcscContext, ReaderInfo, ShareMode};

use keystation_core::describe_chain as describe;

use crate::Error;

/// OpenPGP card application, RID `D2 76 00 01 24` + PIX application `01` (OpenPGP card 3.4
/// §4.2.1).
const OPENPGP_AID: &[u8] = &[0xD2, 0x76, 0x00, 0x01, 0x24, 0x01];
/// PIV card application, truncated to the RID and the first PIX bytes as YubiKeys accept
/// it (the full AID is `A0 00 00 03 08 00 00 10 00 01 00`, NIST SP 800-73-4 part 1 §2.2).
const PIV_AID: &[u8] = &[0xA0, 0x00, 0x00, 0x03, 0x08];
/// The PIV AID without its two-byte version, as SP 800-73-4 part 1 §2.2 says every PIV
/// card must accept it; cards that refuse the 5-byte form (Nitrokey's piv-authenticator)
/// answer this one.
const PIV_AID_9: &[u8] = &[0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00];
/// Yubico management application (YubiKey 5 device information and configuration).
const YUBICO_MANAGEMENT_AID: &[u8] = &[0xA0, 0x00, 0x00, 0x05, 0x27, 0x47, 0x11, 0x17];
/// Yubico OTP application.
const YUBICO_OTP_AID: &[u8] = &[0xA0, 0x00, 0x00, 0x05, 0x27, 0x20, 0x01];

/// Writes the reader and card report to `out`.
///
/// `reader_filter` keeps only readers whose name contains it (ignoring ASCII case), as
/// in `--reader yubikey`.
///
/// * No readers at all is not an error: a line says so, with a hint.
/// * pcscd not running is: [`TransportFailure::ServiceUnavailable`] comes back as
///   [`Error::Pcsc`].
/// * A card that cannot be probed (held exclusively by another application, removed
///   during the probe, …) is reported in its reader's entry; the listing goes on.
///
/// The output, per reader, separated by blank lines:
///
/// ```text
/// Yubico YubiKey OTP+FIDO+CCID 00 00
///   card: present
///   ATR:  3B FD 13 00 00 81 31 FE 15 80 73 C0 21 C0 57 59 75 62 69 4B 65 79 40
///   applications: OpenPGP 3.4 (serial 01234567, Yubico), PIV, management, OTP
/// ```
pub fn list(reader_filter: Option<&str>, out: &mut dyn Write) -> Result<(), Error> {
    let context = PcscContext::establish()?;
    let readers = context.readers()?;
    if readers.is_empty() {
        writeln!(out, "{NO_READERS}")?;
        return Ok(());
    }
    let selected: Vec<&ReaderInfo> =
        readers.iter().filter(|r| matches_filter(&r.name, reader_filter)).collect();
    if selected.is_empty() {
        let names: Vec<&str> = readers.iter().map(|r| r.name.as_str()).collect();
        writeln!(
            out,
            "No reader matches {:?}. Readers: {}",
            reader_filter.unwrap_or_default(),
            names.join(", ")
        )?;
        return Ok(());
    }
    let mut reports = Vec::with_capacity(selected.len());
    for reader in selected {
        reports.push(inspect(&context, reader)?);
    }
    write_reports(out, &reports)?;
    Ok(())
}

/// What is printed when PC/SC has no readers.
const NO_READERS: &str = "No smart-card readers found. \
    Make sure pcscd is running and a reader or security key is plugged in.";

/// Whether `name` passes the `--reader` filter.
pub(crate) fn matches_filter(name: &str, filter: Option<&str>) -> bool {
    match filter {
        None => true,
        Some(filter) => name.to_ascii_lowercase().contains(&filter.to_ascii_lowercase()),
    }
}

/// One reader's entry in the report.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ReaderReport {
    name: String,
    card: CardState,
}

/// The card part of a reader's entry.
#[derive(Debug, Clone, PartialEq, Eq)]
enum CardState {
    /// No card in the reader.
    Absent,
    /// A card that did not answer the reset.
    Mute,
    /// A card with its ATR and what probing it found.
    Present { atr: Vec<u8>, probe: Probe },
}

/// The outcome of probing a present card.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Probe {
    /// The applications that answered SELECT, in table order.
    Found(Vec<Application>),
    /// Another application holds the card exclusively (`SCARD_E_SHARING_VIOLATION`).
    InUse,
    /// Probing failed; the message says why.
    Failed(String),
}

/// An application found on a card.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Application {
    /// OpenPGP card, with its full AID when GET DATA `4F` returned one.
    OpenPgp(Option<OpenPgpAid>),
    /// OpenPGP card in termination state.
    OpenPgpTerminated,
    /// PIV.
    Piv,
    /// Yubico management.
    Management,
    /// Yubico OTP.
    Otp,
}

/// The fields of a full OpenPGP card AID (OpenPGP card 3.4 §4.2.1): `D2 76 00 01 24` RID,
/// `01` application, 2 bytes version, 2 bytes manufacturer, 4 bytes serial number,
/// 2 bytes RFU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct OpenPgpAid {
    /// Major and minor version (bytes 6 and 7), e.g. `03 04` for 3.4.
    version: [u8; 2],
    /// Manufacturer ID (bytes 8 and 9).
    manufacturer: u16,
    /// Serial number (bytes 10 to 13), unique per manufacturer.
    serial: [u8; 4],
}

impl OpenPgpAid {
    /// The serial number as eight hex digits, as `gpg --card-status` shows it.
    fn serial_hex(&self) -> String {
        self.serial.iter().map(|b| format!("{b:02X}")).collect()
    }

    /// Parses the value of data object `4F`; `None` unless it is an OpenPGP AID of at
    /// least 14 bytes (the 2 RFU bytes may be missing on some cards).
    fn parse(aid: &[u8]) -> Option<Self> {
        let rest = aid.strip_prefix(OPENPGP_AID)?;
        let (&[v1, v2, m1, m2, s1, s2, s3, s4], _) = rest.split_first_chunk::<8>()?;
        Some(Self {
            version: [v1, v2],
            manufacturer: u16::from_be_bytes([m1, m2]),
            serial: [s1, s2, s3, s4],
        })
    }
}

/// Names of the manufacturer IDs that the OpenPGP card registry (kept by GnuPG) assigns
/// to common vendors; others are printed in hex.
fn manufacturer_name(id: u16) -> Option<&'static str> {
    Some(match id {
        0x0000 | 0xFFFF => "test card",
        0x0005 => "ZeitControl",
        0x0006 => "Yubico",
        0x000F => "Nitrokey",
        0xF517 => "FSIJ",
        _ => return None,
    })
}

/// Looks at one reader: card state, and for a present card the applications on it.
/// Only a vanished PC/SC service is an error; everything else ends up in the report.
fn inspect(context: &PcscContext, reader: &ReaderInfo) -> Result<ReaderReport, Error> {
    let name = reader.name.clone();
    if !reader.card_present {
        return Ok(ReaderReport { name, card: CardState::Absent });
    }
    if reader.mute {
        return Ok(ReaderReport { name, card: CardState::Mute });
    }
    let atr = reader.atr.clone().unwrap_or_default();
    let mut card = match context.connect(&reader.name, ShareMode::Shared) {
        Ok(card) => card,
        Err(error) => {
            let card = match error.transport_failure() {
                Some(TransportFailure::ServiceUnavailable) => return Err(error.into()),
                Some(
                    TransportFailure::NoCard
                    | TransportFailure::CardRemoved
                    | TransportFailure::UnknownReader,
                ) => CardState::Absent,
                Some(TransportFailure::SharingViolation) => {
                    CardState::Present { atr, probe: Probe::InUse }
                }
                _ => CardState::Present { atr, probe: Probe::Failed(describe(&error)) },
            };
            return Ok(ReaderReport { name, card });
        }
    };
    let atr = card.atr().map(<[u8]>::to_vec).unwrap_or(atr);
    let mut outcome = probe(&mut card);
    // A reset by another application is reported once; the connection is recovered, so
    // one retry sees the card as it is now.
    if outcome.as_ref().err().and_then(keystation_core::Error::transport_failure)
        == Some(TransportFailure::CardReset)
    {
        outcome = probe(&mut card);
    }
    let probe = match outcome {
        Ok(applications) => Probe::Found(applications),
        Err(error) => match error.transport_failure() {
            Some(TransportFailure::ServiceUnavailable) => return Err(error.into()),
            Some(TransportFailure::SharingViolation) => Probe::InUse,
            _ => Probe::Failed(describe(&error)),
        },
    };
    Ok(ReaderReport { name, card: CardState::Present { atr, probe } })
}

/// SELECTs each known application inside one transaction and reports those present.
fn probe(card: &mut dyn Card) -> Result<Vec<Application>, keystation_core::Error> {
    let mut transaction = Transaction::begin(card)?;
    let mut channel = Channel::new(transaction.card());
    let mut found = Vec::new();

    let status = select(&mut channel, OPENPGP_AID)?;
    if status.is_success() {
        found.push(Application::OpenPgp(read_aid(&mut channel)?));
    } else if status == StatusWord::SELECTED_FILE_DEACTIVATED
        || status == StatusWord::SELECTED_FILE_TERMINATED
    {
        found.push(Application::OpenPgpTerminated);
    }
    if select_piv(&mut channel)? {
        found.push(Application::Piv);
    }
    for (aid, application) in
        [(YUBICO_MANAGEMENT_AID, Application::Management), (YUBICO_OTP_AID, Application::Otp)]
    {
        if select(&mut channel, aid)?.is_success() {
            found.push(application);
        }
    }
    drop(channel);
    transaction.end()?;
    Ok(found)
}

/// The serial numbers `card` answers to, inside one transaction: the OpenPGP
/// application's (bytes 10–13 of its AID, OpenPGP card 3.4 §4.2.1, as the eight hex digits
/// `gpg --card-status` shows; Yubico writes its decimal serial there in BCD, so they are
/// also the serial ykman shows) and Yubico's PIV GET SERIAL (`00 F8 00 00`, four bytes,
/// big-endian, shown in decimal). A card without either has none.
pub(crate) fn serials(card: &mut dyn Card) -> Result<Vec<String>, keystation_core::Error> {
    let mut transaction = Transaction::begin(card)?;
    let mut channel = Channel::new(transaction.card());
    let mut serials = Vec::new();
    if select(&mut channel, OPENPGP_AID)?.is_success()
        && let Some(aid) = read_aid(&mut channel)?
    {
        serials.push(aid.serial_hex());
    }
    if select_piv(&mut channel)? {
        let reply = channel.transmit(&Command::new(0x00, 0xF8, 0x00, 0x00).with_le(Le::Max))?;
        if let (true, Ok(bytes)) = (reply.status().is_success(), <[u8; 4]>::try_from(reply.data()))
        {
            serials.push(u32::from_be_bytes(bytes).to_string());
        }
    }
    drop(channel);
    transaction.end()?;
    Ok(serials)
}

/// GET DATA of data object `4F` in the selected OpenPGP application: its full application
/// identifier (OpenPGP card 3.4 §4.4.1, §7.2.6); `None` when the card gives none.
fn read_aid(channel: &mut Channel<'_>) -> Result<Option<OpenPgpAid>, keystation_core::Error> {
    let aid = channel.transmit(&Command::new(0x00, 0xCA, 0x00, 0x4F).with_le(Le::Max))?;
    Ok(if aid.status().is_success() { OpenPgpAid::parse(aid.data()) } else { None })
}

/// SELECTs the PIV application by the AID YubiKeys accept, else by the one every PIV card
/// must accept; whether either answered `9000`.
fn select_piv(channel: &mut Channel<'_>) -> Result<bool, keystation_core::Error> {
    Ok(select(channel, PIV_AID)?.is_success() || select(channel, PIV_AID_9)?.is_success())
}

/// SELECT by DF name, first or only occurrence, FCI requested (`00 A4 04 00 Lc AID`,
/// ISO/IEC 7816-4 §11.2.2), without Le as gpg and ykman send it. Returns the status.
fn select(channel: &mut Channel<'_>, aid: &[u8]) -> Result<StatusWord, keystation_core::Error> {
    Ok(channel.transmit(&Command::new(0x00, 0xA4, 0x04, 0x00).with_data(aid))?.status())
}

/// Bytes as upper-case hex pairs separated by spaces.
fn hex(bytes: &[u8]) -> String {
    HexOrRedacted { bytes, secret: false }.to_string()
}

impl core::fmt::Display for Application {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::OpenPgp(None) => f.write_str("OpenPGP"),
            Self::OpenPgp(Some(aid)) => {
                // Version and serial are BCD by convention (3.4 is 03 04); printing the
                // nibbles in hex shows them as the card's vendor writes them.
                let [major, minor] = aid.version;
                write!(f, "OpenPGP {major:X}.{minor:X} (serial {}, ", aid.serial_hex())?;
                match manufacturer_name(aid.manufacturer) {
                    Some(name) => write!(f, "{name})"),
                    None => write!(f, "manufacturer {:04X})", aid.manufacturer),
                }
            }
            Self::OpenPgpTerminated => f.write_str("OpenPGP (terminated)"),
            Self::Piv => f.write_str("PIV"),
            Self::Management => f.write_str("management"),
            Self::Otp => f.write_str("OTP"),
        }
    }
}

/// Writes the reports, one block per reader, separated by blank lines.
fn write_reports(out: &mut dyn Write, reports: &[ReaderReport]) -> std::io::Result<()> {
    for (i, report) in reports.iter().enumerate() {
        if i > 0 {
            writeln!(out)?;
        }
        writeln!(out, "{}", report.name)?;
        match &report.card {
            CardState::Absent => writeln!(out, "  card: absent")?,
            CardState::Mute => writeln!(out, "  card: present, but it does not answer (mute)")?,
            CardState::Present { atr, probe } => {
                writeln!(out, "  card: present")?;
                writeln!(out, "  ATR:  {}", hex(atr))?;
                match probe {
                    Probe::Found(found) if found.is_empty() => {
                        writeln!(out, "  applications: none found")?;
                    }
                    Probe::Found(found) => {
                        let names: Vec<String> = found.iter().map(ToString::to_string).collect();
                        writeln!(out, "  applications: {}", names.join(", "))?;
                    }
                    Probe::InUse => writeln!(
                        out,
                        "  applications: not checked, another application holds the card exclusively"
                    )?,
                    Probe::Failed(why) => writeln!(out, "  applications: not checked ({why})")?,
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    /// A card that checks each command it receives and answers from a script.
    struct Script {
        steps: VecDeque<(Vec<u8>, Vec<u8>)>,
        transactions: (u32, u32),
    }

    impl Script {
        fn new(steps: &[(&[u8], &[u8])]) -> Self {
            Self {
                steps: steps.iter().map(|(c, r)| (c.to_vec(), r.to_vec())).collect(),
                transactions: (0, 0),
            }
        }
    }

    impl Card for Script {
        fn transmit(
            &mut self,
            command: &[u8],
            response: &mut [u8],
        ) -> Result<usize, keystation_core::Error> {
            let (expected, answer) = self
                .steps
                .pop_front()
                .ok_or(keystation_core::Error::transport(TransportFailure::Unresponsive))?;
            assert_eq!(hex(command), hex(&expected), "unexpected command");
            response[..answer.len()].copy_from_slice(&answer);
            Ok(answer.len())
        }
        fn begin_transaction(&mut self) -> Result<(), keystation_core::Error> {
            self.transactions.0 += 1;
            Ok(())
        }
        fn end_transaction(&mut self) -> Result<(), keystation_core::Error> {
            self.transactions.1 += 1;
            Ok(())
        }
    }

    const SELECT_OPENPGP: &[u8] =
        &[0x00, 0xA4, 0x04, 0x00, 0x06, 0xD2, 0x76, 0x00, 0x01, 0x24, 0x01];
    const GET_AID: &[u8] = &[0x00, 0xCA, 0x00, 0x4F, 0x00];
    const SELECT_PIV: &[u8] = &[0x00, 0xA4, 0x04, 0x00, 0x05, 0xA0, 0x00, 0x00, 0x03, 0x08];
    /// A card that refuses the 5-byte PIV AID is asked with the 9-byte one.
    const SELECT_PIV_9: &[u8] =
        &[0x00, 0xA4, 0x04, 0x00, 0x09, 0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00];
    const SELECT_MGMT: &[u8] =
        &[0x00, 0xA4, 0x04, 0x00, 0x08, 0xA0, 0x00, 0x00, 0x05, 0x27, 0x47, 0x11, 0x17];
    const SELECT_OTP: &[u8] =
        &[0x00, 0xA4, 0x04, 0x00, 0x07, 0xA0, 0x00, 0x00, 0x05, 0x27, 0x20, 0x01];
    const YUBIKEY_AID: &[u8] = &[
        0xD2, 0x76, 0x00, 0x01, 0x24, 0x01, 0x03, 0x04, 0x00, 0x06, 0x01, 0x23, 0x45, 0x67, 0x00,
        0x00, 0x90, 0x00,
    ];

    #[test]
    fn a_yubikey_shows_every_application() {
        let mut card = Script::new(&[
            (SELECT_OPENPGP, &[0x90, 0x00]),
            (GET_AID, YUBIKEY_AID),
            (SELECT_PIV, &[0x61, 0x11, 0x90, 0x00]),
            (SELECT_MGMT, b"5.4.3\x90\x00"),
            (SELECT_OTP, &[0x05, 0x04, 0x03, 0x90, 0x00]),
        ]);
        let found = probe(&mut card).map_err(|e| e.to_string());
        let expected_aid =
            OpenPgpAid { version: [3, 4], manufacturer: 6, serial: [0x01, 0x23, 0x45, 0x67] };
        assert_eq!(
            found,
            Ok(vec![
                Application::OpenPgp(Some(expected_aid)),
                Application::Piv,
                Application::Management,
                Application::Otp,
            ])
        );
        assert!(card.steps.is_empty());
        assert_eq!(card.transactions, (1, 1), "one transaction around the probe");
    }

    #[test]
    fn terminated_openpgp_and_missing_applications() {
        let mut card = Script::new(&[
            (SELECT_OPENPGP, &[0x62, 0x85]),
            (SELECT_PIV, &[0x6A, 0x82]),
            (SELECT_PIV_9, &[0x6A, 0x82]),
            (SELECT_MGMT, &[0x6D, 0x00]),
            (SELECT_OTP, &[0x6A, 0x82]),
        ]);
        assert_eq!(probe(&mut card).ok(), Some(vec![Application::OpenPgpTerminated]));

        let mut card = Script::new(&[
            (SELECT_OPENPGP, &[0x62, 0x83]),
            (SELECT_PIV, &[0x6A, 0x82]),
            (SELECT_PIV_9, &[0x6A, 0x82]),
            (SELECT_MGMT, &[0x6A, 0x82]),
            (SELECT_OTP, &[0x6A, 0x82]),
        ]);
        assert_eq!(probe(&mut card).ok(), Some(vec![Application::OpenPgpTerminated]));
    }

    #[test]
    fn openpgp_without_a_readable_aid_has_no_version() {
        let mut card = Script::new(&[
            (SELECT_OPENPGP, &[0x90, 0x00]),
            (GET_AID, &[0x6A, 0x88]),
            (SELECT_PIV, &[0x6A, 0x82]),
            (SELECT_PIV_9, &[0x6A, 0x82]),
            (SELECT_MGMT, &[0x6A, 0x82]),
            (SELECT_OTP, &[0x6A, 0x82]),
        ]);
        assert_eq!(probe(&mut card).ok(), Some(vec![Application::OpenPgp(None)]));
    }

    #[test]
    fn transport_errors_end_the_probe() {
        let mut card = Script::new(&[]);
        let error = probe(&mut card).err();
        assert_eq!(error.and_then(|e| e.transport_failure()), Some(TransportFailure::Unresponsive));
        assert_eq!(card.transactions, (1, 1), "the transaction is ended on error too");
    }

    #[test]
    fn openpgp_aid_parsing() {
        let aid = OpenPgpAid::parse(&YUBIKEY_AID[..16]);
        assert_eq!(
            aid,
            Some(OpenPgpAid { version: [3, 4], manufacturer: 6, serial: [1, 0x23, 0x45, 0x67] })
        );
        assert!(OpenPgpAid::parse(&YUBIKEY_AID[..14]).is_some(), "RFU bytes are optional");
        assert_eq!(OpenPgpAid::parse(&YUBIKEY_AID[..13]), None);
        assert_eq!(OpenPgpAid::parse(&[0xA0, 0, 0, 3, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0]), None);
        assert_eq!(OpenPgpAid::parse(&[]), None);
    }

    #[test]
    fn report_format() {
        let reports = [
            ReaderReport {
                name: "Yubico YubiKey OTP+FIDO+CCID 00 00".into(),
                card: CardState::Present {
                    atr: vec![0x3B, 0xFD, 0x13],
                    probe: Probe::Found(vec![
                        Application::OpenPgp(Some(OpenPgpAid {
                            version: [3, 4],
                            manufacturer: 6,
                            serial: [1, 0x23, 0x45, 0x67],
                        })),
                        Application::Piv,
                        Application::Management,
                    ]),
                },
            },
            ReaderReport { name: "Empty Reader 00 00".into(), card: CardState::Absent },
            ReaderReport {
                name: "Busy Reader 01 00".into(),
                card: CardState::Present { atr: vec![0x3B, 0x00], probe: Probe::InUse },
            },
            ReaderReport {
                name: "Odd Reader".into(),
                card: CardState::Present {
                    atr: vec![0x3B],
                    probe: Probe::Found(vec![
                        Application::OpenPgp(Some(OpenPgpAid {
                            version: [2, 1],
                            manufacturer: 0xFFFE,
                            serial: [0, 0, 0, 9],
                        })),
                        Application::Otp,
                    ]),
                },
            },
            ReaderReport {
                name: "Plain Reader".into(),
                card: CardState::Present { atr: vec![0x3B], probe: Probe::Found(vec![]) },
            },
            ReaderReport { name: "Mute Reader".into(), card: CardState::Mute },
        ];
        let mut out = Vec::new();
        assert!(write_reports(&mut out, &reports).is_ok());
        assert_eq!(
            String::from_utf8_lossy(&out),
            "Yubico YubiKey OTP+FIDO+CCID 00 00\n\
             \x20 card: present\n\
             \x20 ATR:  3B FD 13\n\
             \x20 applications: OpenPGP 3.4 (serial 01234567, Yubico), PIV, management\n\
             \n\
             Empty Reader 00 00\n\
             \x20 card: absent\n\
             \n\
             Busy Reader 01 00\n\
             \x20 card: present\n\
             \x20 ATR:  3B 00\n\
             \x20 applications: not checked, another application holds the card exclusively\n\
             \n\
             Odd Reader\n\
             \x20 card: present\n\
             \x20 ATR:  3B\n\
             \x20 applications: OpenPGP 2.1 (serial 00000009, manufacturer FFFE), OTP\n\
             \n\
             Plain Reader\n\
             \x20 card: present\n\
             \x20 ATR:  3B\n\
             \x20 applications: none found\n\
             \n\
             Mute Reader\n\
             \x20 card: present, but it does not answer (mute)\n"
        );
    }

    #[test]
    fn reader_filter_ignores_case() {
        assert!(matches_filter("Yubico YubiKey OTP+FIDO+CCID 00 00", Some("yubikey")));
        assert!(matches_filter("anything", None));
        assert!(!matches_filter("Virtual PCD 00 00", Some("yubikey")));
    }

    #[test]
    fn errors_are_described_with_their_causes() {
        let error = keystation_core::Error::transport_with(
            TransportFailure::Other,
            std::io::Error::other("socket closed"),
        );
        assert_eq!(describe(&error), "transport failure: socket closed");
    }
}
