//! The software YubiKey 5 as a card in pcscd's vpcd reader (`keystation simulate`).
//!
//! vsmartcard's vpcd (the pcscd driver `libifdvpcd.so`) listens on a TCP port, 35963 for
//! its first reader by default. A virtual card "is inserted" by connecting to that port
//! and "removed" by closing the connection. Both directions carry frames of a 2-byte
//! big-endian length and a payload. From vpcd:
//!
//! * a 1-byte payload is a control: `00` power off, `01` power on, `02` reset (each a
//!   power cycle of the card: volatile state such as verified PINs is gone), `04` "send
//!   your ATR", answered with a framed ATR;
//! * a longer payload is a command APDU, answered with a framed response APDU.
//!
//! The framing and the reading of payloads are [`crate::vpcd`]'s.
//!
//! The card is created once and outlives connections: when vpcd goes away (pcscd
//! restarted) the bridge reconnects with backoff, and the card keeps its keys and PINs,
//! as a real card does when it is unplugged and plugged back in. [`run_until`] stops
//! cleanly when its flag is set (the binary sets it on SIGINT and SIGTERM).
//!
//! **State file** ([`Options::state`], `--state FILE`). Without it the card's state is lost when the process
//! stops. With it the card survives restarts: at start the file is loaded if it exists
//! (a file that cannot be read or is corrupt, or was saved by a card with another serial
//! or firmware version, is an error naming the file: the card never silently starts
//! factory-fresh over it); after every APDU the card's persistent state
//! ([`SoftCard::save_state`]) is compared with what was last written, and when it
//! changed (a key generated, a PIN changed or mistyped, a data object written…) the file
//! is rewritten atomically: a temporary file in the same directory, created with mode
//! 0600, written and synced, then renamed over `FILE`. A power cycle or a volatile change
//! (a verified PIN) writes nothing. A failed write is logged as an error and retried
//! after the next APDU; the state is written once more on a clean stop. **The file holds
//! the card's private keys, PINs, PUK and management key in the clear: it is for
//! rehearsal cards with test keys only.**
//!
//! **Fault injection** ([`Options::remove_after`], `--remove-after N`, for tests). After answering the N-th command
//! APDU the bridge closes its vpcd connection — to pcscd the card was pulled out of the
//! reader mid-session — waits [`REINSERT_DELAY`] and connects again: the card is back,
//! power-cycled, with its persistent state. This happens once per run.
//!
//! Logging: connection events at `info` (first failure to connect at `warn`, retries at
//! `debug`), control bytes at `debug`; at `trace` each APDU's header, length and status
//! word, never its data (it can hold PINs and keys).

use std::io::{self, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::vpcd::{self, Control, Message};
use crate::{Identity, SoftCard, TouchResponse, Version};
use zeroize::Zeroizing;

/// Where vpcd listens by default (its first reader).
pub const DEFAULT_VPCD: &str = "127.0.0.1:35963";

/// How often the serve loop looks at the stop flag while waiting for vpcd.
const POLL: Duration = Duration::from_millis(200);
/// First and longest wait between connection attempts.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(2);
/// How long a card "removed" by `--remove-after` stays out of the reader: long enough
/// for pcscd, which polls vpcd every 400 ms, to see the reader empty.
pub const REINSERT_DELAY: Duration = Duration::from_secs(1);
/// How long one connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// What to simulate, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// vpcd's address, `HOST:PORT`.
    pub vpcd: String,
    /// The card's serial number (default: [`Identity::default`]'s).
    pub serial: Option<u32>,
    /// The firmware version the card reports (default: 5.4.3).
    pub version: Option<Version>,
    /// Seed of the card's random source, for reproducible keys in tests (default: the
    /// operating system's randomness).
    pub seed: Option<u64>,
    /// The state file, loaded at start and rewritten when the card's persistent state
    /// changes (see the module documentation). Holds test keys and PINs in the clear.
    pub state: Option<PathBuf>,
    /// Fault injection for tests: remove the card (close the vpcd connection) after this
    /// many command APDUs, then insert it again (see the module documentation). Once.
    pub remove_after: Option<u64>,
    /// What the simulated user does when a key's touch policy asks for a touch
    /// (default: touches at once).
    pub touch: TouchResponse,
}

/// The state file could not be read, is corrupt, or could not be written.
#[derive(Debug, thiserror::Error)]
#[error("software card state file {}: {reason}", path.display())]
pub struct StateFileError {
    /// The state file.
    pub path: PathBuf,
    /// What went wrong.
    pub reason: String,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            vpcd: DEFAULT_VPCD.to_owned(),
            serial: None,
            version: None,
            seed: None,
            state: None,
            remove_after: None,
            touch: TouchResponse::Immediate,
        }
    }
}

/// The card's state file: where it is and what was last written to it.
#[derive(Debug)]
pub struct StateFile {
    path: PathBuf,
    written: Zeroizing<Vec<u8>>,
}

impl StateFile {
    /// Restores `card` from the file at `path` if it exists; a file that cannot be read
    /// or restored is an error naming it.
    pub fn open(path: &Path, card: &mut SoftCard) -> Result<Self, StateFileError> {
        let failure = |reason: String| StateFileError { path: path.to_path_buf(), reason };
        let written = match std::fs::read(path) {
            Ok(bytes) => {
                let bytes = Zeroizing::new(bytes);
                card.restore_state(&bytes).map_err(|e| failure(e.to_string()))?;
                tracing::info!(state = %path.display(), "card state loaded");
                bytes
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                tracing::info!(state = %path.display(), "no state file yet; the card starts factory-fresh and will be saved there");
                // Nothing on disk: the first save writes the file.
                Zeroizing::new(Vec::new())
            }
            Err(error) => return Err(failure(format!("cannot read it: {error}"))),
        };
        Ok(Self { path: path.to_path_buf(), written })
    }

    /// Writes the card's state if it differs from what was last written.
    pub fn save(&mut self, card: &SoftCard) -> Result<bool, StateFileError> {
        let state = card.save_state();
        if *state == *self.written {
            return Ok(false);
        }
        write_atomically(&self.path, &state).map_err(|error| StateFileError {
            path: self.path.clone(),
            reason: format!("cannot write it: {error}"),
        })?;
        self.written = state;
        tracing::debug!(state = %self.path.display(), "card state saved");
        Ok(true)
    }

    /// [`save`](Self::save), logging a failure instead of returning it (the card keeps
    /// serving; the next change retries).
    fn save_or_log(&mut self, card: &SoftCard) {
        if let Err(error) = self.save(card) {
            tracing::error!(%error, "the card's state was not saved");
        }
    }
}

/// Writes `bytes` to `path` atomically: a temporary file next to it (mode 0600), synced,
/// then renamed over `path`.
fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temporary = directory.join(format!(".{name}.{}.tmp", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let result = (|| {
        let mut file = options.open(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&temporary, path)?;
        // Make the rename itself durable.
        if let Ok(dir) = std::fs::File::open(directory) {
            let _ = dir.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    result
}

/// The card `options` describe.
pub fn card(options: &Options) -> SoftCard {
    let mut identity = Identity::default();
    if let Some(serial) = options.serial {
        identity.serial = serial;
    }
    if let Some(version) = options.version {
        identity.version = version;
    }
    let mut card = SoftCard::yubikey5(identity, options.seed);
    card.set_touch(options.touch);
    card
}

/// Runs the bridge for the card `options` describe until `stop` is set, then saves the
/// state file one last time.
pub fn run_until(options: &Options, stop: &AtomicBool) -> Result<(), StateFileError> {
    let mut card = card(options);
    let mut state = match &options.state {
        Some(path) => Some(StateFile::open(path, &mut card)?),
        None => None,
    };
    let identity = card.identity().clone();
    tracing::info!(
        serial = identity.serial,
        version = %identity.version,
        vpcd = %options.vpcd,
        "software YubiKey 5 ready; inserting it into vpcd (stop with Ctrl-C or SIGTERM)"
    );
    let mut faults = Faults { remove_after: options.remove_after, apdus: 0 };
    serve_with_faults(&options.vpcd, &mut card, state.as_mut(), stop, &mut faults);
    if let Some(state) = &mut state {
        state.save(&card)?;
    }
    tracing::info!("stopped");
    Ok(())
}

/// Connects to vpcd at `address` and serves `card` until `stop` is set, reconnecting
/// with backoff whenever vpcd is unreachable or goes away.
/// With a `state` file, the card's state is saved after every APDU that changed it.
pub fn serve_until(
    address: &str,
    card: &mut SoftCard,
    state: Option<&mut StateFile>,
    stop: &AtomicBool,
) {
    serve_with_faults(address, card, state, stop, &mut Faults::default());
}

/// The faults to inject (`--remove-after`) and what has happened so far.
#[derive(Debug, Default)]
struct Faults {
    /// Remove the card after this many command APDUs; `None` once it has happened.
    remove_after: Option<u64>,
    /// Command APDUs answered so far, over all connections.
    apdus: u64,
}

impl Faults {
    /// Counts one answered command APDU; true when the card is to be removed now.
    fn removal_due(&mut self) -> bool {
        self.apdus += 1;
        if self.remove_after.is_some_and(|n| self.apdus >= n) {
            self.remove_after = None;
            return true;
        }
        false
    }
}

/// [`serve_until`] with fault injection.
fn serve_with_faults(
    address: &str,
    card: &mut SoftCard,
    mut state: Option<&mut StateFile>,
    stop: &AtomicBool,
    faults: &mut Faults,
) {
    let mut backoff = BACKOFF_MIN;
    let mut failures = 0u32;
    while !stop.load(Ordering::Relaxed) {
        match connect(address) {
            Ok(mut stream) => {
                if failures > 0 {
                    tracing::info!(vpcd = address, "vpcd is reachable again");
                }
                failures = 0;
                backoff = BACKOFF_MIN;
                tracing::info!(vpcd = address, "card inserted (connected to vpcd)");
                card.power_cycle();
                let end = serve(&mut stream, card, state.as_deref_mut(), stop, faults);
                let _ = stream.shutdown(Shutdown::Both);
                match end {
                    Ok(End::Stopped) => {
                        tracing::info!(vpcd = address, "card removed (stopping)");
                        return;
                    }
                    Ok(End::Closed) => {
                        tracing::info!(vpcd = address, "vpcd closed the connection; reconnecting");
                    }
                    Ok(End::Removed) => {
                        tracing::warn!(
                            vpcd = address,
                            apdus = faults.apdus,
                            "card removed (--remove-after fault injection); inserting it again in {REINSERT_DELAY:?}"
                        );
                        sleep_unless_stopped(REINSERT_DELAY, stop);
                        continue;
                    }
                    Err(error) => {
                        tracing::warn!(vpcd = address, %error, "connection to vpcd failed; reconnecting");
                    }
                }
            }
            Err(error) => {
                failures += 1;
                if failures == 1 {
                    tracing::warn!(vpcd = address, %error, "cannot connect to vpcd; retrying (is pcscd running with the vpcd reader?)");
                } else {
                    tracing::debug!(vpcd = address, %error, failures, "cannot connect to vpcd; retrying");
                }
            }
        }
        sleep_unless_stopped(backoff, stop);
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// Sleeps `duration` in small steps, returning early once `stop` is set.
fn sleep_unless_stopped(duration: Duration, stop: &AtomicBool) {
    let step = Duration::from_millis(50);
    let mut slept = Duration::ZERO;
    while slept < duration && !stop.load(Ordering::Relaxed) {
        std::thread::sleep(step);
        slept += step;
    }
}

fn connect(address: &str) -> io::Result<TcpStream> {
    let mut last =
        io::Error::new(io::ErrorKind::NotFound, format!("{address} resolves to no address"));
    for socket in address.to_socket_addrs()? {
        match TcpStream::connect_timeout(&socket, CONNECT_TIMEOUT) {
            Ok(stream) => {
                stream.set_nodelay(true)?;
                stream.set_read_timeout(Some(POLL))?;
                return Ok(stream);
            }
            Err(error) => last = error,
        }
    }
    Err(last)
}

/// Why a connection's serve loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The stop flag was set.
    Stopped,
    /// vpcd closed the connection.
    Closed,
    /// The bridge closed it: `--remove-after` pulled the card.
    Removed,
}

/// Serves vpcd's frames on one connection.
fn serve(
    stream: &mut TcpStream,
    card: &mut SoftCard,
    mut state: Option<&mut StateFile>,
    stop: &AtomicBool,
    faults: &mut Faults,
) -> io::Result<End> {
    let mut frames = vpcd::FrameReader::new();
    loop {
        if stop.load(Ordering::Relaxed) {
            return Ok(End::Stopped);
        }
        if let Some(payload) = frames.next_payload() {
            if let Some(answer) = handle(card, &payload) {
                write_frame(stream, &answer)?;
            }
            // After answering, so that saving never delays the response.
            if payload.len() > 1
                && let Some(state) = state.as_deref_mut()
            {
                state.save_or_log(card);
            }
            if payload.len() > 1 && faults.removal_due() {
                return Ok(End::Removed);
            }
            continue;
        }
        match frames.read_from(stream) {
            Ok(0) => return Ok(End::Closed),
            Ok(_) => acknowledge_now(stream),
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
                ) =>
            {
                return Ok(End::Closed);
            }
            Err(error) => return Err(error),
        }
    }
}

/// The card's answer to one payload from vpcd, if it needs one.
fn handle(card: &mut SoftCard, payload: &[u8]) -> Option<Vec<u8>> {
    match Message::from_payload(payload) {
        Message::Empty => None,
        Message::Control(control) => {
            match control {
                Control::PowerOff => tracing::debug!("power off"),
                Control::PowerOn => tracing::debug!("power on"),
                Control::Reset => tracing::debug!("reset"),
                Control::GetAtr => {
                    tracing::trace!("ATR requested");
                    return Some(card.atr().to_vec());
                }
                Control::Unknown(other) => {
                    tracing::debug!(control = other, "unknown vpcd control byte ignored");
                    return None;
                }
            }
            card.power_cycle();
            None
        }
        Message::Apdu(apdu) => {
            // Applets must never panic; should one (a bug), the card answers 6F00 ("no
            // precise diagnosis") and stays in the reader, where panics unwind (debug
            // builds; release builds abort).
            let response =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| card.process(apdu)))
                    .unwrap_or_else(|_| {
                        tracing::error!("the software card panicked on an APDU; answered 6F00");
                        card.power_cycle();
                        vec![0x6F, 0x00]
                    });
            if tracing::enabled!(tracing::Level::TRACE) {
                let header: Vec<String> = apdu.iter().take(4).map(|b| format!("{b:02X}")).collect();
                let sw: Vec<String> = response
                    .iter()
                    .skip(response.len().saturating_sub(2))
                    .map(|b| format!("{b:02X}"))
                    .collect();
                tracing::trace!(
                    header = %header.join(" "),
                    command_bytes = apdu.len(),
                    response_bytes = response.len(),
                    sw = %sw.join(""),
                    "APDU"
                );
            }
            Some(response)
        }
    }
}

/// Acknowledges what was just read at once instead of after the delayed-ACK timeout.
///
/// vpcd sends a frame as two writes (the 2-byte length, then the payload) on a socket with
/// Nagle's algorithm on, so the payload waits until the length is acknowledged — and
/// Linux delays that acknowledgement by up to 40 ms. Measured through pcscd, that made
/// every APDU take about 44 ms. `TCP_QUICKACK` is not sticky, so it is set after every
/// read. Elsewhere than Linux this does nothing.
fn acknowledge_now(stream: &TcpStream) {
    #[cfg(target_os = "linux")]
    if let Err(error) = socket2::SockRef::from(stream).set_tcp_quickack(true) {
        tracing::debug!(%error, "TCP_QUICKACK not available");
    }
    #[cfg(not(target_os = "linux"))]
    let _ = stream;
}

fn write_frame(stream: &mut TcpStream, payload: &[u8]) -> io::Result<()> {
    let frame = vpcd::encode(payload)
        .ok_or_else(|| io::Error::other("response longer than a vpcd frame (65535 bytes)"))?;
    stream.write_all(&frame)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use std::io::Read;
    use std::net::TcpListener;
    use std::sync::Arc;

    /// A fake vpcd: accepts the card twice (the bridge reconnects after the first
    /// connection closes) and talks the frame protocol with it.
    #[test]
    fn serves_vpcd_frames_and_reconnects() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let bridge = {
            let stop = Arc::clone(&stop);
            let address = address.clone();
            std::thread::spawn(move || {
                let mut card = card(&Options {
                    vpcd: address.clone(),
                    serial: Some(0x0A0B_0C0D),
                    version: Some(Version(5, 4, 3)),
                    seed: Some(1),
                    state: None,
                    remove_after: None,
                    touch: TouchResponse::Immediate,
                });
                serve_until(&address, &mut card, None, &stop);
            })
        };
        let exchange = |stream: &mut TcpStream, payload: &[u8]| -> Vec<u8> {
            write_frame(stream, payload).unwrap();
            let mut header = [0u8; 2];
            stream.read_exact(&mut header).unwrap();
            let mut answer = vec![0u8; usize::from(u16::from_be_bytes(header))];
            stream.read_exact(&mut answer).unwrap();
            answer
        };
        for _ in 0..2 {
            let (mut stream, _) = listener.accept().unwrap();
            stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            write_frame(&mut stream, &[0x01]).unwrap();
            assert_eq!(exchange(&mut stream, &[0x04]), crate::YUBIKEY_5_ATR);
            let select = [0x00, 0xA4, 0x04, 0x00, 0x07, 0xA0, 0x00, 0x00, 0x05, 0x27, 0x20, 0x01];
            assert_eq!(exchange(&mut stream, &select), [5, 4, 3, 0, 0, 0, 0x90, 0x00]);
            assert_eq!(
                exchange(&mut stream, &[0x00, 0x01, 0x10, 0x00]),
                [0x0A, 0x0B, 0x0C, 0x0D, 0x90, 0x00]
            );
            // Reset: the selection is gone.
            write_frame(&mut stream, &[0x02]).unwrap();
            assert_eq!(exchange(&mut stream, &[0x00, 0x01, 0x10, 0x00]), [0x6D, 0x00]);
            drop(stream);
        }
        let (_third, _) = listener.accept().unwrap();
        stop.store(true, Ordering::Relaxed);
        bridge.join().unwrap();
    }

    /// `--remove-after 2`: the bridge answers two APDUs, closes the connection (the
    /// card is pulled), connects again after [`REINSERT_DELAY`] and then keeps serving.
    #[test]
    fn remove_after_pulls_the_card_once_and_reinserts_it() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let bridge = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut card = card(&Options { seed: Some(2), ..Options::default() });
                let mut faults = Faults { remove_after: Some(2), apdus: 0 };
                serve_with_faults(&address, &mut card, None, &stop, &mut faults);
            })
        };
        let exchange = |stream: &mut TcpStream, payload: &[u8]| -> Vec<u8> {
            write_frame(stream, payload).unwrap();
            let mut header = [0u8; 2];
            stream.read_exact(&mut header).unwrap();
            let mut answer = vec![0u8; usize::from(u16::from_be_bytes(header))];
            stream.read_exact(&mut answer).unwrap();
            answer
        };
        let version = [0x00, 0xFD, 0x00, 0x00];
        let (mut stream, _) = listener.accept().unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write_frame(&mut stream, &[0x01]).unwrap();
        assert_ok(&exchange(&mut stream, &SELECT_PIV));
        assert_eq!(exchange(&mut stream, &version), [5, 4, 3, 0x90, 0x00]);
        // The card is gone: the bridge closed the connection after the second APDU.
        let mut rest = Vec::new();
        assert_eq!(stream.read_to_end(&mut rest).unwrap(), 0, "{rest:02X?}");
        let pulled = std::time::Instant::now();
        let (mut again, _) = listener.accept().unwrap();
        assert!(pulled.elapsed() >= REINSERT_DELAY / 2, "reinserted too soon");
        again.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        // Power-cycled (no application selected), and only once: it keeps serving.
        assert_eq!(exchange(&mut again, &version), [0x6D, 0x00]);
        for _ in 0..4 {
            assert_ok(&exchange(&mut again, &SELECT_PIV));
        }
        stop.store(true, Ordering::Relaxed);
        bridge.join().unwrap();
    }

    fn assert_ok(response: &[u8]) {
        assert_eq!(&response[response.len() - 2..], &[0x90, 0x00], "{response:02X?}");
    }

    fn process_ok(card: &mut SoftCard, apdu: &[u8]) -> Vec<u8> {
        let response = card.process(apdu);
        assert_eq!(&response[response.len() - 2..], &[0x90, 0x00], "{apdu:02X?}");
        response[..response.len() - 2].to_vec()
    }

    const SELECT_PIV: [u8; 10] = [0x00, 0xA4, 0x04, 0x00, 0x05, 0xA0, 0x00, 0x00, 0x03, 0x08];
    const CHANGE_PIN: &[u8] = b"\x00\x24\x00\x80\x10123456\xFF\xFF135790\xFF\xFF";
    const VERIFY_NEW_PIN: &[u8] = b"\x00\x20\x00\x80\x08135790\xFF\xFF";

    /// The state file is created on the first change (mode 0600), not rewritten for
    /// volatile changes, and a new card restored from it has the changed PIN.
    #[test]
    fn state_file_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("card.state");
        let options = Options { seed: Some(3), state: Some(path.clone()), ..Options::default() };
        let mut first = card(&options);
        let mut state = StateFile::open(&path, &mut first).unwrap();
        assert!(!path.exists(), "nothing is written before a change");
        process_ok(&mut first, &SELECT_PIV);
        assert!(state.save(&first).unwrap(), "the first save writes the file");
        assert!(!state.save(&first).unwrap(), "no change, no write");
        process_ok(&mut first, CHANGE_PIN);
        assert!(state.save(&first).unwrap());
        process_ok(&mut first, VERIFY_NEW_PIN);
        assert!(!state.save(&first).unwrap(), "a verified PIN is volatile");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file left behind");

        let mut second = card(&Options { seed: Some(4), ..options.clone() });
        let _state = StateFile::open(&path, &mut second).unwrap();
        process_ok(&mut second, &SELECT_PIV);
        process_ok(&mut second, VERIFY_NEW_PIN);
        assert_eq!(second.save_state(), first.save_state());
    }

    #[test]
    fn corrupt_or_foreign_state_files_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broken.state");
        std::fs::write(&path, b"not a card").unwrap();
        let mut card = card(&Options::default());
        let error = StateFile::open(&path, &mut card).unwrap_err().to_string();
        assert!(error.contains("broken.state") && error.contains("magic"), "{error}");

        let saved = card.save_state();
        std::fs::write(&path, &saved[..saved.len() / 2]).unwrap();
        let error = StateFile::open(&path, &mut card).unwrap_err().to_string();
        assert!(error.contains("broken.state"), "{error}");

        std::fs::write(&path, &saved).unwrap();
        let mut other = super::card(&Options { serial: Some(42), ..Options::default() });
        let error = StateFile::open(&path, &mut other).unwrap_err().to_string();
        assert!(error.contains("serial 42"), "{error}");
    }

    /// Through the vpcd bridge: an APDU that changes the card writes the state file
    /// before the next frame is read.
    #[test]
    fn the_bridge_saves_after_changing_apdus() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bridge.state");
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let bridge = {
            let stop = Arc::clone(&stop);
            let path = path.clone();
            std::thread::spawn(move || {
                let options =
                    Options { seed: Some(5), state: Some(path.clone()), ..Options::default() };
                let mut card = card(&options);
                let mut state = StateFile::open(&path, &mut card).unwrap();
                serve_until(&address, &mut card, Some(&mut state), &stop);
            })
        };
        let (mut stream, _) = listener.accept().unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut exchange = |payload: &[u8]| -> Vec<u8> {
            write_frame(&mut stream, payload).unwrap();
            let mut header = [0u8; 2];
            stream.read_exact(&mut header).unwrap();
            let mut answer = vec![0u8; usize::from(u16::from_be_bytes(header))];
            stream.read_exact(&mut answer).unwrap();
            answer
        };
        assert_eq!(
            &exchange(&SELECT_PIV)[..],
            &[
                0x61, 0x11, 0x4F, 0x06, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00, 0x79, 0x07, 0x4F, 0x05,
                0xA0, 0x00, 0x00, 0x03, 0x08, 0x90, 0x00
            ][..]
        );
        assert_eq!(exchange(CHANGE_PIN), [0x90, 0x00]);
        // The next answer comes after the state was saved.
        assert_eq!(exchange(&[0x00, 0xFD, 0x00, 0x00]), [5, 4, 3, 0x90, 0x00]);
        stop.store(true, Ordering::Relaxed);
        bridge.join().unwrap();
        let mut restored = card(&Options::default());
        restored.restore_state(&std::fs::read(&path).unwrap()).unwrap();
        process_ok(&mut restored, &SELECT_PIV);
        process_ok(&mut restored, VERIFY_NEW_PIN);
    }
}
