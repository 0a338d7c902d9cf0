//! `keystation simulate`: the software YubiKey 5 as a card in pcscd's vpcd reader.
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
//! The card is created once and outlives connections: when vpcd goes away (pcscd
//! restarted) the bridge reconnects with backoff, and the card keeps its keys and PINs,
//! as a real card does when it is unplugged and plugged back in. SIGINT and SIGTERM stop
//! the bridge cleanly (a second signal exits at once); the card's state is then lost, as
//! `--state` is not implemented yet.
//!
//! Logging: connection events at `info` (first failure to connect at `warn`, retries at
//! `debug`), control bytes at `debug`; at `trace` each APDU's header, length and status
//! word, never its data (it can hold PINs and keys).

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use keystation_softcard::{Identity, SoftCard, Version};

use crate::Error;

/// Where vpcd listens by default (its first reader).
pub const DEFAULT_VPCD: &str = "127.0.0.1:35963";

/// How often the serve loop looks at the stop flag while waiting for vpcd.
const POLL: Duration = Duration::from_millis(200);
/// First and longest wait between connection attempts.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(2);
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
}

impl Default for Options {
    fn default() -> Self {
        Self { vpcd: DEFAULT_VPCD.to_owned(), serial: None, version: None, seed: None }
    }
}

/// Parses `HOST:PORT` as `--vpcd` takes it (the host is resolved at each connection).
pub fn parse_address(text: &str) -> Result<String, String> {
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| format!("expected HOST:PORT, such as {DEFAULT_VPCD}"))?;
    if host.is_empty() {
        return Err(format!("expected HOST:PORT, such as {DEFAULT_VPCD}: the host is empty"));
    }
    match port.parse::<u16>() {
        Ok(0) | Err(_) => Err(format!("{port:?} is not a TCP port number (1 to 65535)")),
        Ok(_) => Ok(text.to_owned()),
    }
}

/// Parses a firmware version `MAJOR.MINOR.PATCH`, each 0 to 255.
pub fn parse_version(text: &str) -> Result<Version, String> {
    let parts: Vec<&str> = text.split('.').collect();
    let numbers: Result<Vec<u8>, _> = parts.iter().map(|p| p.parse::<u8>()).collect();
    match numbers.as_deref() {
        Ok([major, minor, patch]) => Ok(Version(*major, *minor, *patch)),
        _ => Err(format!("expected MAJOR.MINOR.PATCH such as 5.4.3, each 0 to 255, not {text:?}")),
    }
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
    SoftCard::yubikey5(identity, options.seed)
}

/// Runs the bridge until SIGINT or SIGTERM.
pub fn run(options: &Options) -> Result<(), Error> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // The second signal exits at once (status 1), should the clean stop hang.
        signal_hook::flag::register_conditional_shutdown(signal, 1, Arc::clone(&stop))?;
        signal_hook::flag::register(signal, Arc::clone(&stop))?;
    }
    let mut card = card(options);
    let identity = card.identity().clone();
    tracing::info!(
        serial = identity.serial,
        version = %identity.version,
        vpcd = %options.vpcd,
        "software YubiKey 5 ready; inserting it into vpcd (stop with Ctrl-C or SIGTERM)"
    );
    serve_until(&options.vpcd, &mut card, &stop);
    tracing::info!("stopped");
    Ok(())
}

/// Connects to vpcd at `address` and serves `card` until `stop` is set, reconnecting
/// with backoff whenever vpcd is unreachable or goes away.
pub fn serve_until(address: &str, card: &mut SoftCard, stop: &AtomicBool) {
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
                let end = serve(&mut stream, card, stop);
                let _ = stream.shutdown(Shutdown::Both);
                match end {
                    Ok(End::Stopped) => {
                        tracing::info!(vpcd = address, "card removed (stopping)");
                        return;
                    }
                    Ok(End::Closed) => {
                        tracing::info!(vpcd = address, "vpcd closed the connection; reconnecting");
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
}

/// Serves vpcd's frames on one connection.
fn serve(stream: &mut TcpStream, card: &mut SoftCard, stop: &AtomicBool) -> io::Result<End> {
    let mut buffer: Vec<u8> = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        if stop.load(Ordering::Relaxed) {
            return Ok(End::Stopped);
        }
        if let Some(payload) = take_frame(&mut buffer) {
            if let Some(answer) = handle(card, &payload) {
                write_frame(stream, &answer)?;
            }
            continue;
        }
        match stream.read(&mut chunk) {
            Ok(0) => return Ok(End::Closed),
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
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

/// Removes and returns the first whole frame's payload from `buffer`, if there is one.
fn take_frame(buffer: &mut Vec<u8>) -> Option<Vec<u8>> {
    let [high, low, ..] = buffer[..] else { return None };
    let length = usize::from(u16::from_be_bytes([high, low]));
    if buffer.len() < 2 + length {
        return None;
    }
    let payload = buffer[2..2 + length].to_vec();
    buffer.drain(..2 + length);
    Some(payload)
}

/// The card's answer to one payload from vpcd, if it needs one.
fn handle(card: &mut SoftCard, payload: &[u8]) -> Option<Vec<u8>> {
    match payload {
        [] => None,
        [control] => {
            match control {
                0x00 => tracing::debug!("power off"),
                0x01 => tracing::debug!("power on"),
                0x02 => tracing::debug!("reset"),
                0x04 => {
                    tracing::trace!("ATR requested");
                    return Some(card.atr().to_vec());
                }
                other => {
                    tracing::debug!(control = other, "unknown vpcd control byte ignored");
                    return None;
                }
            }
            card.power_cycle();
            None
        }
        apdu => {
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

fn write_frame(stream: &mut TcpStream, payload: &[u8]) -> io::Result<()> {
    let length = u16::try_from(payload.len())
        .map_err(|_| io::Error::other("response longer than a vpcd frame (65535 bytes)"))?;
    let mut frame = Vec::with_capacity(payload.len() + 2);
    frame.extend_from_slice(&length.to_be_bytes());
    frame.extend_from_slice(payload);
    stream.write_all(&frame)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use std::net::TcpListener;

    #[test]
    fn addresses_and_versions_are_validated() {
        assert_eq!(parse_address("127.0.0.1:35963").as_deref(), Ok("127.0.0.1:35963"));
        assert_eq!(parse_address("localhost:1").as_deref(), Ok("localhost:1"));
        assert!(parse_address("127.0.0.1").is_err());
        assert!(parse_address(":35963").is_err());
        assert!(parse_address("host:0").is_err());
        assert!(parse_address("host:65536").is_err());
        assert_eq!(parse_version("5.7.1"), Ok(Version(5, 7, 1)));
        assert!(parse_version("5.7").is_err());
        assert!(parse_version("5.7.256").is_err());
        assert!(parse_version("a.b.c").is_err());
    }

    #[test]
    fn frames_are_split_across_reads() {
        let mut buffer = vec![0x00];
        assert_eq!(take_frame(&mut buffer), None);
        buffer.extend_from_slice(&[0x02, 0xAA]);
        assert_eq!(take_frame(&mut buffer), None);
        buffer.extend_from_slice(&[0xBB, 0x00, 0x01, 0x04]);
        assert_eq!(take_frame(&mut buffer), Some(vec![0xAA, 0xBB]));
        assert_eq!(take_frame(&mut buffer), Some(vec![0x04]));
        assert!(buffer.is_empty());
    }

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
                });
                serve_until(&address, &mut card, &stop);
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
            assert_eq!(exchange(&mut stream, &[0x04]), keystation_softcard::YUBIKEY_5_ATR);
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
}
