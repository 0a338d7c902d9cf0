//! The APDU trace (`--log-level trace`, target `keystation::apdu`) shows commands and
//! responses but never PINs or decrypted data: checked on the log text a real subscriber
//! writes.

use std::io::Write;
use std::sync::{Arc, Mutex};

use keystation_core::apdu::{Command, Le};
use keystation_core::{Card, Channel, Error};

/// Collects everything the subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Answers VERIFY with 9000 and PSO:DECIPHER with a "session key" in two parts (61xx).
struct Card0 {
    step: usize,
}

impl Card for Card0 {
    fn transmit(&mut self, _command: &[u8], response: &mut [u8]) -> Result<usize, Error> {
        self.step += 1;
        let answer: &[u8] = match self.step {
            1 => &[0x90, 0x00],
            2 => &[0xAB, 0xCD, 0x61, 0x02],
            _ => &[0xEF, 0x99, 0x90, 0x00],
        };
        response[..answer.len()].copy_from_slice(answer);
        Ok(answer.len())
    }
}

#[test]
fn trace_shows_headers_and_hides_secrets() -> Result<(), Error> {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, || -> Result<(), Error> {
        let mut card = Card0 { step: 0 };
        let mut channel = Channel::new(&mut card);
        channel.transmit_ok(&Command::new(0, 0x20, 0, 0x81).with_data(b"123456"))?;
        let plain = channel.transmit_ok(
            &Command::new(0, 0x2A, 0x80, 0x86).with_data(&[0x00, 0x11, 0x22]).with_le(Le::Max),
        )?;
        assert_eq!(&plain[..], &[0xAB, 0xCD, 0xEF, 0x99]);
        Ok(())
    })?;
    let log =
        String::from_utf8_lossy(&captured.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned();
    assert!(log.contains("keystation::apdu"), "{log}");
    assert!(log.contains("> 00 20 00 81 [6 bytes redacted]"), "{log}");
    assert!(!log.contains("31 32 33"), "PIN leaked:\n{log}");
    // The ciphertext may be shown; the plaintext (both parts, incl. GET RESPONSE) may not.
    assert!(log.contains("> 00 2A 80 86 00 11 22 Le=max"), "{log}");
    assert!(log.contains("> 00 C0 00 00 Le=2"), "{log}");
    assert!(log.contains("[2 bytes redacted] 6102"), "{log}");
    assert!(!log.contains("AB CD") && !log.contains("EF 99"), "plaintext leaked:\n{log}");
    Ok(())
}
