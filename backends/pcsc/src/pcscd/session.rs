//! One connection to pcscd's UNIX socket, with the protocol version agreed
//! (pcsc-lite `ClientSetupSession` and the `CMD_VERSION` exchange of
//! `SCardEstablishContext`).
//!
//! Failures follow pcsc-lite's client library, so that they map to the same
//! [`TransportFailure`](keystation_core::TransportFailure) kinds: a socket that cannot be
//! reached or written is `SCARD_E_NO_SERVICE`; a read that fails or ends early (pcscd went
//! away mid-call) is `SCARD_F_COMM_ERROR`. After any I/O failure or malformed reply the
//! byte stream can no longer be trusted, so the session is marked broken and every later
//! call fails with the same code without touching the socket.

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::Error;
use super::wire::{self, size};

/// Where pcscd listens when `PCSCLITE_CSOCK_NAME` is not set (pcsc-lite's default
/// `PCSCLITE_CSOCK_NAME`, `/run/pcscd/pcscd.comm`).
pub(crate) const DEFAULT_SOCKET: &str = "/run/pcscd/pcscd.comm";

/// The socket path: `$PCSCLITE_CSOCK_NAME` when set and not empty, else
/// [`DEFAULT_SOCKET`]; the same rule as libpcsclite's `getSocketName`.
pub(crate) fn socket_path() -> PathBuf {
    match std::env::var_os("PCSCLITE_CSOCK_NAME") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => PathBuf::from(DEFAULT_SOCKET),
    }
}

/// A connection to pcscd that has agreed on a protocol version.
#[derive(Debug)]
pub(crate) struct Session {
    stream: UnixStream,
    /// The daemon's protocol version as it reported it (`major`, `minor`).
    server: (i32, i32),
    /// The minor version this client announced and the daemon accepted (4 or 5).
    minor: i32,
    /// Set after a failure that leaves the stream unusable; returned by every later call.
    broken: Option<Error>,
}

impl Session {
    /// Connects and agrees on a version: 4.4 first; if the daemon refuses it and reports
    /// 4.5, again on a fresh connection announcing 4.5 (a refused connection is not
    /// reused, as the daemon has already judged it).
    pub(crate) fn open() -> Result<Self, Error> {
        Self::open_at(&socket_path())
    }

    /// [`open`](Self::open) on the socket at `path`.
    fn open_at(path: &Path) -> Result<Self, Error> {
        let mut session = Self::connect(path)?;
        let reply = session.announce(wire::PROTOCOL_MINOR)?;
        if reply.rv == 0 {
            return Ok(session);
        }
        if reply.major == wire::PROTOCOL_MAJOR && reply.minor == wire::PROTOCOL_MINOR_FALLBACK {
            drop(session);
            let mut session = Self::connect(path)?;
            let again = session.announce(wire::PROTOCOL_MINOR_FALLBACK)?;
            if again.rv == 0 {
                return Ok(session);
            }
            return Err(refused(again));
        }
        Err(refused(reply))
    }

    /// The socket connection (`ClientSetupSession`).
    fn connect(path: &Path) -> Result<Self, Error> {
        let stream = UnixStream::connect(path).map_err(|error| {
            tracing::debug!(socket = %path.display(), %error, "cannot connect to pcscd");
            Error::NoService
        })?;
        Ok(Self { stream, server: (0, 0), minor: 0, broken: None })
    }

    /// Sends `CMD_VERSION` with `minor` and reads the daemon's answer.
    fn announce(&mut self, minor: i32) -> Result<wire::VersionReply, Error> {
        let mut reply = [0u8; size::VERSION];
        self.exchange(&wire::encode_version(minor), &mut reply)?;
        let version = self.decoded(wire::decode_version(&reply))?;
        self.server = (version.major, version.minor);
        self.minor = minor;
        tracing::debug!(
            client = format_args!("{}.{minor}", wire::PROTOCOL_MAJOR),
            server = format_args!("{}.{}", version.major, version.minor),
            accepted = version.rv == 0,
            "pcscd protocol version"
        );
        Ok(version)
    }

    /// The protocol version in use, as `(major, minor)`.
    pub(crate) fn version(&self) -> (i32, i32) {
        (wire::PROTOCOL_MAJOR, self.minor)
    }

    /// The daemon's own protocol version, as it reported it.
    pub(crate) fn server_version(&self) -> (i32, i32) {
        self.server
    }

    /// Passes a decoder's result through, marking the session broken when the reply was
    /// malformed.
    pub(crate) fn decoded<T>(&mut self, result: Result<T, Error>) -> Result<T, Error> {
        if let Err(code) = result {
            self.broken = Some(code);
        }
        result
    }

    /// Fails with the stored code when the session is broken.
    fn usable(&self) -> Result<(), Error> {
        self.broken.map_or(Ok(()), Err)
    }

    /// Writes a whole request (`MessageSend`).
    pub(crate) fn send(&mut self, request: &[u8]) -> Result<(), Error> {
        self.usable()?;
        if let Err(error) = self.stream.write_all(request) {
            tracing::debug!(%error, "writing to pcscd failed");
            self.broken = Some(Error::NoService);
            return Err(Error::NoService);
        }
        Ok(())
    }

    /// Reads exactly `reply.len()` bytes (`MessageReceive`), blocking as long as it takes:
    /// a card may compute for minutes (RSA key generation).
    pub(crate) fn receive(&mut self, reply: &mut [u8]) -> Result<(), Error> {
        self.usable()?;
        if let Err(error) = self.stream.read_exact(reply) {
            tracing::debug!(%error, "reading from pcscd failed");
            self.broken = Some(Error::CommError);
            return Err(Error::CommError);
        }
        Ok(())
    }

    /// Sends a request and reads its fixed-size reply.
    pub(crate) fn exchange(&mut self, request: &[u8], reply: &mut [u8]) -> Result<(), Error> {
        self.send(request)?;
        self.receive(reply)
    }

    /// Waits up to `timeout` (forever for `None`) for a `struct wait_reader_state_change`
    /// (`MessageReceiveTimeout`). `Ok(None)` when nothing arrived in time; once its first
    /// byte has arrived the rest is read without a limit.
    pub(crate) fn receive_within(
        &mut self,
        timeout: Option<Duration>,
    ) -> Result<Option<[u8; size::WAIT]>, Error> {
        self.usable()?;
        let mut message = [0u8; size::WAIT];
        // A zero timeout would mean "block" to the socket; wait at least a millisecond.
        let limit = timeout.map(|t| t.max(Duration::from_millis(1)));
        let first = self.stream.set_read_timeout(limit).and_then(|()| {
            loop {
                match self.stream.read(&mut message) {
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    other => break other,
                }
            }
        });
        let reset = self.stream.set_read_timeout(None);
        let got = match first {
            Ok(0) => Err(std::io::Error::from(ErrorKind::UnexpectedEof)),
            Ok(n) => Ok(n),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return reset.map(|()| None).map_err(|_| self.fail(Error::CommError));
            }
            Err(e) => Err(e),
        };
        let filled = got.and_then(|n| {
            reset?;
            self.stream.read_exact(message.get_mut(n..).unwrap_or_default())
        });
        match filled {
            Ok(()) => Ok(Some(message)),
            Err(error) => {
                tracing::debug!(%error, "waiting for pcscd failed");
                Err(self.fail(Error::CommError))
            }
        }
    }

    /// Marks the session broken with `code` and returns it.
    fn fail(&mut self, code: Error) -> Error {
        self.broken = Some(code);
        code
    }
}

/// The error when the daemon refused every version we speak.
fn refused(reply: wire::VersionReply) -> Error {
    tracing::warn!(
        server = format_args!("{}.{}", reply.major, reply.minor),
        "pcscd speaks message protocol {}.{}; this client speaks 4.4 and 4.5",
        reply.major,
        reply.minor
    );
    Error::check(reply.rv).err().unwrap_or(Error::ServiceStopped)
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use std::os::unix::net::UnixListener;

    use super::*;

    /// A fake pcscd on a socket in a fresh directory: each closure serves one accepted
    /// connection.
    fn fake_pcscd(
        serve: Vec<Box<dyn FnOnce(UnixStream) + Send>>,
    ) -> (PathBuf, std::thread::JoinHandle<()>) {
        let dir = std::env::temp_dir().join(format!(
            "keystation-fake-pcscd-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("pcscd.comm");
        let listener = UnixListener::bind(&path).expect("bind");
        let thread = std::thread::spawn(move || {
            for handler in serve {
                let (stream, _) = listener.accept().expect("accept");
                handler(stream);
            }
        });
        (path, thread)
    }

    /// Reads one CMD_VERSION request and answers it with `major.minor` and `rv`; returns
    /// the minor version the client announced.
    fn answer_version(stream: &mut UnixStream, major: i32, minor: i32, rv: u32) -> i32 {
        let mut request = [0u8; size::HEADER + size::VERSION];
        stream.read_exact(&mut request).expect("version request");
        assert_eq!(&request[..8], &[12u32.to_ne_bytes(), 0x11u32.to_ne_bytes()].concat()[..]);
        let announced = i32::from_ne_bytes([request[12], request[13], request[14], request[15]]);
        let reply = [major.to_ne_bytes(), minor.to_ne_bytes(), rv.to_ne_bytes()].concat();
        stream.write_all(&reply).expect("version reply");
        announced
    }

    #[test]
    fn a_daemon_at_4_5_gets_a_second_connection_announcing_4_5() {
        let (path, server) = fake_pcscd(vec![
            Box::new(|mut s| assert_eq!(answer_version(&mut s, 4, 5, 0x8010_001E), 4)),
            Box::new(|mut s| assert_eq!(answer_version(&mut s, 4, 5, 0), 5)),
        ]);
        let session = Session::open_at(&path).expect("accepted at 4.5");
        assert_eq!(session.version(), (4, 5));
        assert_eq!(session.server_version(), (4, 5));
        server.join().expect("fake pcscd");
    }

    #[test]
    fn a_daemon_that_accepts_4_4_is_kept() {
        let (path, server) =
            fake_pcscd(vec![Box::new(|mut s| assert_eq!(answer_version(&mut s, 4, 6, 0), 4))]);
        let session = Session::open_at(&path).expect("accepted at 4.4");
        assert_eq!((session.version(), session.server_version()), ((4, 4), (4, 6)));
        server.join().expect("fake pcscd");
    }

    #[test]
    fn other_versions_and_broken_replies_are_refused() {
        let (path, server) = fake_pcscd(vec![
            Box::new(|mut s| {
                answer_version(&mut s, 4, 3, 0x8010_001E);
            }),
            Box::new(|mut s| {
                let mut request = [0u8; size::HEADER + size::VERSION];
                s.read_exact(&mut request).expect("version request");
                s.write_all(&[0; 5]).expect("short reply"); // then hang up
            }),
        ]);
        assert_eq!(Session::open_at(&path).err(), Some(Error::ServiceStopped));
        assert_eq!(Session::open_at(&path).err(), Some(Error::CommError));
        server.join().expect("fake pcscd");
        let missing = path.with_file_name("nothing-here");
        assert_eq!(Session::open_at(&missing).err(), Some(Error::NoService));
    }

    #[test]
    fn a_broken_session_stays_broken() {
        let (path, server) = fake_pcscd(vec![Box::new(|mut s| {
            answer_version(&mut s, 4, 4, 0);
            // Hang up on the next request.
        })]);
        let mut session = Session::open_at(&path).expect("accepted");
        server.join().expect("fake pcscd");
        let mut reply = [0u8; size::READER_STATES];
        let request = wire::encode_bare(wire::Command::GetReadersState);
        // Writing to a socket pcscd has closed fails: SCARD_E_NO_SERVICE, as libpcsclite.
        assert_eq!(session.exchange(&request, &mut reply), Err(Error::NoService));
        assert_eq!(session.receive(&mut reply), Err(Error::NoService), "no further I/O");
        assert_eq!(session.receive_within(None), Err(Error::NoService));
    }
}
