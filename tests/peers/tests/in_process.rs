//! The peers without pcscd: the applets through the card layer, and the vpcd protocol
//! against a fake vpcd on a loopback socket.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use keystation_test_peers::applets::{NITROKEY_MANUFACTURER, OPENPGP_SERIAL, OpenPgp, Piv};
use keystation_test_peers::card::VirtualCard;
use keystation_test_peers::platform;
use keystation_test_peers::vpcd::{self, Ended, Endpoint};

const SELECT_OPENPGP: [u8; 11] = [0x00, 0xA4, 0x04, 0x00, 0x06, 0xD2, 0x76, 0x00, 0x01, 0x24, 0x01];
const SELECT_PIV_RID: [u8; 10] = [0x00, 0xA4, 0x04, 0x00, 0x05, 0xA0, 0x00, 0x00, 0x03, 0x08];

fn sw(response: &[u8]) -> [u8; 2] {
    response[response.len() - 2..].try_into().unwrap()
}

#[test]
fn opcard_answers_select_and_application_related_data() {
    platform::with_client("opcard", |client| {
        let mut card = VirtualCard::new(OpenPgp::new(client), OpenPgp::atr());
        assert_eq!(sw(&card.transmit(&SELECT_OPENPGP)), [0x90, 0x00]);
        // GET DATA 4F: the AID with version 3.4, Nitrokey's manufacturer ID and our serial.
        let aid = card.transmit(&[0x00, 0xCA, 0x00, 0x4F, 0x00]);
        assert_eq!(sw(&aid), [0x90, 0x00]);
        let mut expected = vec![0xD2, 0x76, 0x00, 0x01, 0x24, 0x01, 0x03, 0x04];
        expected.extend_from_slice(&NITROKEY_MANUFACTURER);
        expected.extend_from_slice(&OPENPGP_SERIAL);
        expected.extend_from_slice(&[0x00, 0x00]);
        assert_eq!(aid[..16], expected[..]);
        // GET DATA 6E: opcard answers the DO's contents (without the 6E wrapper), the AID
        // DO 4F first.
        let related = card.transmit(&[0x00, 0xCA, 0x00, 0x6E, 0x00]);
        assert_eq!(sw(&related), [0x90, 0x00]);
        assert_eq!(related[..2], [0x4F, 0x10], "{related:02X?}");
        assert_eq!(related[2..18], expected[..]);
        // The historical bytes DO agrees with the ATR.
        let historical = card.transmit(&[0x00, 0xCA, 0x5F, 0x52, 0x00]);
        assert_eq!(sw(&historical), [0x90, 0x00]);
        let atr = OpenPgp::atr();
        assert_eq!(historical[..historical.len() - 2], atr[4..atr.len() - 1]);
        // Another application's AID is not there.
        assert_eq!(card.transmit(&SELECT_PIV_RID), [0x6A, 0x82]);
    });
}

#[test]
fn piv_selects_by_full_aid_and_optionally_by_rid() {
    platform::with_client("piv", |client| {
        let mut card = VirtualCard::new(Piv::new(client, false), Piv::atr());
        assert_eq!(card.transmit(&SELECT_PIV_RID), [0x6A, 0x82]);
        let mut select = vec![0x00, 0xA4, 0x04, 0x00, 0x09, 0xA0, 0x00, 0x00, 0x03, 0x08];
        select.extend_from_slice(&[0x00, 0x00, 0x10, 0x00]);
        let response = card.transmit(&select);
        assert_eq!(sw(&response), [0x90, 0x00]);
        // The application property template (SP 800-73-4 part 2 §3.1.1) names the AID.
        assert_eq!(response[0], 0x61, "{response:02X?}");
        assert_eq!(card.transmit(&SELECT_OPENPGP), [0x6A, 0x82]);
    });
    platform::with_client("piv", |client| {
        let mut card = VirtualCard::new(Piv::new(client, true), Piv::atr());
        let response = card.transmit(&SELECT_PIV_RID);
        assert_eq!(sw(&response), [0x90, 0x00]);
        assert_eq!(response[0], 0x61);
    });
}

fn send(stream: &mut TcpStream, payload: &[u8]) {
    let mut frame = u16::try_from(payload.len()).unwrap().to_be_bytes().to_vec();
    frame.extend_from_slice(payload);
    stream.write_all(&frame).unwrap();
}

fn receive(stream: &mut TcpStream) -> Vec<u8> {
    let mut length = [0u8; 2];
    stream.read_exact(&mut length).unwrap();
    let mut payload = vec![0u8; usize::from(u16::from_be_bytes(length))];
    stream.read_exact(&mut payload).unwrap();
    payload
}

#[test]
fn vpcd_protocol_atr_apdus_and_close() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let vpcd = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        send(&mut stream, &[0x01]); // power on: no answer
        send(&mut stream, &[0x04]);
        let atr = receive(&mut stream);
        // A frame split across two writes is still one frame.
        let mut frame = vec![0x00, 0x0B];
        frame.extend_from_slice(&SELECT_OPENPGP);
        stream.write_all(&frame[..5]).unwrap();
        stream.flush().unwrap();
        std::thread::sleep(Duration::from_millis(300));
        stream.write_all(&frame[5..]).unwrap();
        let select = receive(&mut stream);
        send(&mut stream, &[0x02]); // reset
        send(&mut stream, &[0x00, 0xCA, 0x00, 0x4F, 0x00]);
        let aid = receive(&mut stream);
        (atr, select, aid)
    });
    let stop = AtomicBool::new(false);
    let endpoint = Endpoint { port, wait: Duration::from_secs(5) };
    let mut connected = false;
    let ended = platform::with_client("opcard", |client| {
        let mut card = VirtualCard::new(OpenPgp::new(client), OpenPgp::atr());
        vpcd::serve(endpoint, &stop, &mut card, || connected = true)
    });
    assert!(matches!(ended, Ok(Ended::VpcdClosed)), "{ended:?}");
    assert!(connected);
    let (atr, select, aid) = vpcd.join().unwrap();
    assert_eq!(atr, OpenPgp::atr());
    assert_eq!(select, [0x90, 0x00]);
    assert_eq!(aid[..8], [0xD2, 0x76, 0x00, 0x01, 0x24, 0x01, 0x03, 0x04]);
}

#[test]
fn stop_flag_ends_serving_and_removes_the_card() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let stop = AtomicBool::new(false);
    let endpoint = Endpoint { port, wait: Duration::from_secs(5) };
    std::thread::scope(|s| {
        let vpcd = s.spawn(|| {
            let (mut stream, _) = listener.accept().unwrap();
            send(&mut stream, &[0x04]);
            let _atr = receive(&mut stream);
            stop.store(true, Ordering::Relaxed);
            // The card goes away: end of stream.
            let mut rest = Vec::new();
            stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            stream.read_to_end(&mut rest).unwrap();
            rest
        });
        let ended = platform::with_client("opcard", |client| {
            let mut card = VirtualCard::new(OpenPgp::new(client), OpenPgp::atr());
            vpcd::serve(endpoint, &stop, &mut card, || {})
        });
        assert!(matches!(ended, Ok(Ended::Stopped)), "{ended:?}");
        assert_eq!(vpcd.join().unwrap(), Vec::<u8>::new());
    });
}

#[test]
fn nothing_listening_is_a_connect_error() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let stop = AtomicBool::new(false);
    let endpoint = Endpoint { port, wait: Duration::from_millis(300) };
    let ended = platform::with_client("opcard", |client| {
        let mut card = VirtualCard::new(OpenPgp::new(client), OpenPgp::atr());
        vpcd::serve(endpoint, &stop, &mut card, || {})
    });
    let message = ended.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
}
