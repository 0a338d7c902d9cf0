//! The card side of vsmartcard's vpcd protocol.
//!
//! vpcd (pcscd's `libifdvpcd.so` driver) listens on a TCP port per reader slot; a virtual
//! card is inserted by connecting to it and removed by closing the connection. Both
//! directions carry frames: a 2-byte big-endian length, then the payload. From vpcd, a
//! 1-byte payload is a control (`00` power off, `01` power on, `02` reset, `04` "send the
//! ATR", the only one answered) and a longer one is a command APDU, answered with the
//! response APDU.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::Error;
use crate::card::{Applet, VirtualCard};

/// How often a blocked read or connect looks at the stop flag.
const POLL: Duration = Duration::from_millis(100);

/// Why [`serve`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// vpcd closed the connection (pcscd stopped).
    VpcdClosed,
    /// The stop flag was raised (SIGTERM or SIGINT).
    Stopped,
}

/// Where to find vpcd and how long to wait for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint {
    /// vpcd's TCP port on 127.0.0.1 (one per reader slot).
    pub port: u16,
    /// How long to keep retrying while nothing listens on the port yet.
    pub wait: Duration,
}

/// Inserts `card` into the vpcd reader at `endpoint` and serves it until vpcd closes the
/// connection or `stop` is raised; `on_connect` runs once the card is inserted.
pub fn serve<A: Applet>(
    endpoint: Endpoint,
    stop: &AtomicBool,
    card: &mut VirtualCard<A>,
    on_connect: impl FnOnce(),
) -> Result<Ended, Error> {
    let Some(stream) = connect(endpoint, stop)? else {
        return Ok(Ended::Stopped);
    };
    on_connect();
    let mut connection = Connection { stream, buffer: Vec::new() };
    loop {
        let payload = match connection.next_frame(stop).map_err(Error::Vpcd)? {
            Frame::Payload(payload) => payload,
            Frame::Closed => return Ok(Ended::VpcdClosed),
            Frame::Stopped => return Ok(Ended::Stopped),
        };
        match payload[..] {
            [] => {}
            [0x00..=0x02] => card.reset(),
            [0x04] => connection.send(card.atr()).map_err(Error::Vpcd)?,
            [control] => return Err(Error::UnknownControl(control)),
            _ => {
                let response = card.transmit(&payload);
                connection.send(&response).map_err(Error::Vpcd)?;
            }
        }
    }
}

/// Connects to vpcd, retrying until `endpoint.wait` has passed; `None` when stopped first.
fn connect(endpoint: Endpoint, stop: &AtomicBool) -> Result<Option<TcpStream>, Error> {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, endpoint.port));
    let deadline = Instant::now() + endpoint.wait;
    loop {
        if stop.load(Ordering::Relaxed) {
            return Ok(None);
        }
        match TcpStream::connect_timeout(&address, Duration::from_secs(1)) {
            Ok(stream) => {
                let setup =
                    stream.set_nodelay(true).and_then(|()| stream.set_read_timeout(Some(POLL)));
                setup.map_err(Error::Vpcd)?;
                return Ok(Some(stream));
            }
            Err(source) if Instant::now() >= deadline => {
                return Err(Error::Connect { port: endpoint.port, source });
            }
            Err(_) => std::thread::sleep(POLL),
        }
    }
}

enum Frame {
    Payload(Vec<u8>),
    Closed,
    Stopped,
}

struct Connection {
    stream: TcpStream,
    /// Bytes read but not yet returned as a frame.
    buffer: Vec<u8>,
}

impl Connection {
    /// The next frame's payload. Reads time out every [`POLL`] so that the stop flag is seen
    /// while vpcd is quiet; partial frames stay in the buffer across timeouts.
    fn next_frame(&mut self, stop: &AtomicBool) -> io::Result<Frame> {
        loop {
            if let [high, low, ref rest @ ..] = self.buffer[..] {
                let length = usize::from(u16::from_be_bytes([high, low]));
                if rest.len() >= length {
                    let payload = rest[..length].to_vec();
                    self.buffer.drain(..2 + length);
                    return Ok(Frame::Payload(payload));
                }
            }
            if stop.load(Ordering::Relaxed) {
                return Ok(Frame::Stopped);
            }
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Ok(Frame::Closed),
                Ok(n) => self.buffer.extend_from_slice(&chunk[..n]),
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
                    return Ok(Frame::Closed);
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Sends one frame.
    fn send(&mut self, payload: &[u8]) -> io::Result<()> {
        let length = u16::try_from(payload.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame longer than 65535"))?;
        let mut frame = Vec::with_capacity(2 + payload.len());
        frame.extend_from_slice(&length.to_be_bytes());
        frame.extend_from_slice(payload);
        self.stream.write_all(&frame)
    }
}
