//! A minimal virtual smart card for vsmartcard's vpcd reader driver.
//!
//! vpcd (the pcscd driver `libifdvpcd.so`) listens on a TCP port; a virtual card "is
//! inserted" by connecting to it and "removed" by closing the connection. Both directions
//! use frames of a 2-byte big-endian length followed by the payload. vpcd sends:
//!
//! * a 1-byte control payload: `00` power off, `01` power on, `02` reset (no answer), or
//!   `04` "send your ATR", answered with a framed ATR;
//! * any longer payload: a command APDU, answered with a framed response APDU.
//!
//! This card knows one application, the OpenPGP card (AID `D2 76 00 01 24 01`): SELECT of
//! it answers [`SELECT_RESPONSE`] and `9000`, GET DATA `4F` then answers [`OPENPGP_AID`];
//! SELECT of anything else answers `6A82`, other instructions `6D00`.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use keystation_core::Command;

/// The card's ATR: T=0 and T=1 offered (TD1 = 80, TD2 = 01), historical bytes
/// "KEYSTATION", and the check byte TCK (ISO/IEC 7816-3 §8.2.5) that T=1 requires.
pub(crate) const ATR: [u8; 15] = atr();

const fn atr() -> [u8; 15] {
    let mut atr =
        [0x3B, 0x8A, 0x80, 0x01, b'K', b'E', b'Y', b'S', b'T', b'A', b'T', b'I', b'O', b'N', 0];
    // TCK: XOR of every byte from T0 to the last historical byte.
    let mut tck = 0;
    let mut i = 1;
    while i < 14 {
        tck ^= atr[i];
        i += 1;
    }
    atr[14] = tck;
    atr
}

/// The OpenPGP application's AID.
pub(crate) const OPENPGP_RID_PIX: [u8; 6] = [0xD2, 0x76, 0x00, 0x01, 0x24, 0x01];

/// The full AID returned by GET DATA `4F`: version 3.4, manufacturer `FFFE` (the range
/// OpenPGP card 3.4 §4.2.1 leaves for test cards), serial `12345678`.
pub(crate) const OPENPGP_AID: [u8; 16] = [
    0xD2, 0x76, 0x00, 0x01, 0x24, 0x01, 0x03, 0x04, 0xFF, 0xFE, 0x12, 0x34, 0x56, 0x78, 0x00, 0x00,
];

/// What SELECT of the OpenPGP application returns before `9000`: an FCI template `6F`
/// with the DF name `84` (ISO/IEC 7816-4 §7.4.1).
pub(crate) const SELECT_RESPONSE: [u8; 10] =
    [0x6F, 0x08, 0x84, 0x06, 0xD2, 0x76, 0x00, 0x01, 0x24, 0x01];

/// What the card received, for assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Received {
    /// A control byte (`00` off, `01` on, `02` reset, `04` ATR request).
    Control(u8),
    /// A command APDU.
    Apdu(Vec<u8>),
}

/// A virtual card connected to vpcd; dropping it removes it.
pub(crate) struct VirtualCard {
    stream: TcpStream,
    received: Arc<Mutex<Vec<Received>>>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl VirtualCard {
    /// Inserts the card into the vpcd reader listening on `127.0.0.1:port`. vpcd accepts
    /// one card per port; retries for up to `timeout` while the previous card's
    /// connection is still being torn down.
    pub(crate) fn insert(port: u16, timeout: Duration) -> io::Result<Self> {
        let deadline = Instant::now() + timeout;
        let stream = loop {
            match TcpStream::connect(("127.0.0.1", port)) {
                Ok(stream) => break stream,
                Err(error) if Instant::now() < deadline => {
                    let _ = error;
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(error) => return Err(error),
            }
        };
        stream.set_nodelay(true)?;
        let received = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let stream = stream.try_clone()?;
            let received = Arc::clone(&received);
            std::thread::Builder::new()
                .name("vpcd-card".into())
                .spawn(move || serve(stream, &received))?
        };
        Ok(Self { stream, received, thread: Some(thread) })
    }

    /// Everything received so far.
    pub(crate) fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Removes the card: closes the connection and waits for the card's thread. Returns
    /// the thread's I/O error, if it had one before the removal.
    pub(crate) fn remove(mut self) -> io::Result<()> {
        self.close()
    }

    fn close(&mut self) -> io::Result<()> {
        // The peer may already be gone; shutting down then fails harmlessly.
        let _ = self.stream.shutdown(Shutdown::Both);
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(io::Error::other("virtual card thread panicked")),
            None => Ok(()),
        }
    }
}

impl Drop for VirtualCard {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

/// Serves vpcd's frames until the connection closes.
fn serve(mut stream: TcpStream, received: &Mutex<Vec<Received>>) -> io::Result<()> {
    let mut selected = false;
    loop {
        let mut header = [0u8; 2];
        match stream.read_exact(&mut header) {
            Ok(()) => {}
            // Removal (our shutdown) or vpcd going away: the card's life ends.
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::UnexpectedEof
                        | io::ErrorKind::ConnectionReset
                        | io::ErrorKind::ConnectionAborted
                ) =>
            {
                return Ok(());
            }
            Err(error) => return Err(error),
        }
        let mut payload = vec![0u8; usize::from(u16::from_be_bytes(header))];
        if stream.read_exact(&mut payload).is_err() {
            return Ok(());
        }
        let log = |entry| received.lock().unwrap_or_else(PoisonError::into_inner).push(entry);
        let answer = match payload[..] {
            [] => continue,
            [control] => {
                log(Received::Control(control));
                match control {
                    0x04 => ATR.to_vec(),
                    0x00 | 0x02 => {
                        selected = false;
                        continue;
                    }
                    _ => continue,
                }
            }
            _ => {
                log(Received::Apdu(payload.clone()));
                respond(&payload, &mut selected)
            }
        };
        let len = u16::try_from(answer.len()).map_err(io::Error::other)?;
        let mut frame = len.to_be_bytes().to_vec();
        frame.extend_from_slice(&answer);
        if stream.write_all(&frame).is_err() {
            return Ok(());
        }
    }
}

/// The card's answer to one command APDU.
fn respond(apdu: &[u8], selected: &mut bool) -> Vec<u8> {
    let with_status = |data: &[u8], sw: u16| {
        let mut response = data.to_vec();
        response.extend_from_slice(&sw.to_be_bytes());
        response
    };
    let Ok(command) = Command::parse(apdu) else {
        return with_status(&[], 0x6700);
    };
    match (command.cla, command.ins, command.p1, command.p2) {
        (0x00, 0xA4, 0x04, _) if command.data() == OPENPGP_RID_PIX => {
            *selected = true;
            with_status(&SELECT_RESPONSE, 0x9000)
        }
        (0x00, 0xA4, 0x04, _) => {
            *selected = false;
            with_status(&[], 0x6A82)
        }
        (0x00, 0xCA, 0x00, 0x4F) if *selected => with_status(&OPENPGP_AID, 0x9000),
        (0x00, 0xCA, _, _) => with_status(&[], 0x6A88),
        _ => with_status(&[], 0x6D00),
    }
}
