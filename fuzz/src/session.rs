//! The `softcard_session` target: arbitrary APDU sequences, mixed with well-formed
//! commands from a table, replayed into a software YubiKey 5.
//!
//! The input is a list of operations. Each starts with one byte that picks the kind
//! (a raw APDU cut from the input with a one-byte length, or a command built from the
//! table — SELECT, VERIFY with right and wrong PINs, GET/PUT DATA, GENERATE with ECC
//! algorithms, PSO, GENERAL AUTHENTICATE with the default management key, chaining,
//! GET RESPONSE, power cycles); the bytes after it parameterise it.
//!
//! RSA key generation takes far too long for fuzzing, so the harness (never the card)
//! skips every GENERATE ASYMMETRIC KEY PAIR that could generate an RSA key: PIV requests
//! whose data holds an RSA algorithm byte, and OpenPGP requests while a slot might have
//! RSA attributes. To know the command the card will act on, the harness reassembles
//! command chains the way the card does.
//!
//! At most [`MAX_GENERATIONS`] key generations run per input.
//!
//! Invariants: no panic; every response ends in a status word and is at most 65538
//! bytes; after a power cycle no PIN reports "verified"; retry counters never exceed
//! their maximum; and the saved state restores into a card that saves the same state.

use des::cipher::{BlockEncrypt, KeyInit};
use keystation_core::tlv;
use keystation_softcard::{Identity, SoftCard};

/// OpenPGP application AID prefix.
const AID_OPENPGP: &[u8] = &[0xD2, 0x76, 0x00, 0x01, 0x24, 0x01];
/// PIV, full and short.
const AID_PIV: &[u8] = &[0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00];
const AID_PIV_SHORT: &[u8] = &[0xA0, 0x00, 0x00, 0x03, 0x08];
const AID_MGMT: &[u8] = &[0xA0, 0x00, 0x00, 0x05, 0x27, 0x47, 0x11, 0x17];
const AID_OTP: &[u8] = &[0xA0, 0x00, 0x00, 0x05, 0x27, 0x20, 0x01];
const AID_UNKNOWN: &[u8] = &[0xA0, 0x00, 0x00, 0x06, 0x47, 0x2F, 0x00, 0x01];
const AIDS: [&[u8]; 6] = [AID_OPENPGP, AID_PIV, AID_PIV_SHORT, AID_MGMT, AID_OTP, AID_UNKNOWN];

/// PIV's factory management key (3DES before firmware 5.7).
const PIV_MGMT_KEY: [u8; 24] =
    [1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8];
/// PIV algorithm bytes of RSA keys (1024, 2048, 3072, 4096).
const PIV_RSA: [u8; 4] = [0x06, 0x07, 0x05, 0x16];
/// PIV ECC algorithm bytes the table-driven commands use (P-256, Ed25519, X25519). P-384
/// (`14`) costs three P-256 scalar multiplications under coverage instrumentation and
/// runs the same card code, so only raw APDUs from the input reach it.
const PIV_ECC: [u8; 3] = [0x11, 0xE0, 0xE1];

/// OpenPGP algorithm attributes for ECC keys: ECDSA/EdDSA for signing and
/// authentication, ECDH for decryption.
/// (P-256 and Curve25519; P-384 only through raw APDUs, as for PIV.)
const PGP_SIG_ATTRS: [&[u8]; 2] = [
    &[0x13, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07],
    &[0x16, 0x2B, 0x06, 0x01, 0x04, 0x01, 0xDA, 0x47, 0x0F, 0x01],
];
const PGP_DEC_ATTRS: [&[u8]; 2] = [
    &[0x12, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07],
    &[0x12, 0x2B, 0x06, 0x01, 0x04, 0x01, 0x97, 0x55, 0x01, 0x05, 0x01],
];

/// OpenPGP GET DATA tags worth asking for.
const PGP_GET: [u16; 16] = [
    0x004F, 0x005E, 0x0065, 0x006E, 0x007A, 0x00C4, 0x00C5, 0x00CD, 0x00DE, 0x00F9, 0x00FA, 0x0101,
    0x5F50, 0x5F52, 0x7F21, 0x7F74,
];
/// OpenPGP PUT DATA tags (their data comes from the input).
const PGP_PUT: [u16; 20] = [
    0x005B, 0x5F2D, 0x5F35, 0x005E, 0x5F50, 0x0101, 0x0103, 0x00C4, 0x00C7, 0x00C8, 0x00CA, 0x00CE,
    0x00D1, 0x00D3, 0x00D6, 0x00D9, 0x00F9, 0x7F21, 0x00C1, 0x00C2,
];
/// PIV objects.
const PIV_OBJECTS: [&[u8]; 6] = [
    &[0x5F, 0xC1, 0x02],
    &[0x5F, 0xC1, 0x07],
    &[0x5F, 0xC1, 0x05],
    &[0x7E],
    &[0x5F, 0xFF, 0x01],
    &[0x5F, 0xC1, 0x09],
];
const PIV_SLOTS: [u8; 6] = [0x9A, 0x9C, 0x9D, 0x9E, 0x82, 0xF9];

/// Most operations one input may run (bounds the time per input).
const MAX_OPS: usize = 128;
/// Most key generations one input may ask for. Each costs a scalar multiplication that
/// coverage instrumentation makes ~10× slower; beyond a few per input they add time, not
/// new paths (the harness skips the rest, as it skips RSA generation).
const MAX_GENERATIONS: u32 = 2;
/// The largest response APDU: 65536 data bytes and the status word.
const MAX_RESPONSE: usize = 65_538;

/// Reads the fuzz input.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn byte(&mut self) -> u8 {
        let Some((&b, rest)) = self.0.split_first() else { return 0 };
        self.0 = rest;
        b
    }

    fn bytes(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.0.len());
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        head
    }

    fn pick<T: Copy>(&mut self, table: &[T]) -> T {
        table[usize::from(self.byte()) % table.len()]
    }
}

/// The harness's copy of the card's chain reassembly (header, data so far).
type Chain = Option<([u8; 4], Vec<u8>)>;

/// A command as the card acts on it: INS, P1, P2 and the whole (reassembled) data.
type Effective = (u8, u8, u8, Vec<u8>);

struct Session {
    card: SoftCard,
    chain: Chain,
    /// Whether every OpenPGP slot is known to have ECC attributes (factory: RSA-2048).
    pgp_ecc: bool,
    /// The largest OpenPGP retry counter maximum ever set (factory 3).
    pgp_max: u8,
    /// The last response's data.
    last: Vec<u8>,
    /// The last public point a response carried (for ECDH).
    point: Vec<u8>,
    /// Key generations sent so far (see [`MAX_GENERATIONS`]).
    generations: u32,
    /// Print every exchange (`SOFTCARD_SESSION_TRACE=1`, for writing seeds).
    trace: bool,
}

/// Encodes a command APDU: short when it fits, extended otherwise.
fn apdu(cla: u8, ins: u8, p1: u8, p2: u8, data: &[u8], le: Option<usize>) -> Vec<u8> {
    let mut out = vec![cla, ins, p1, p2];
    let extended = data.len() > 255 || le.is_some_and(|l| l > 256);
    if !data.is_empty() {
        if extended {
            out.push(0);
            out.extend_from_slice(&(data.len() as u16).to_be_bytes());
        } else {
            out.push(data.len() as u8);
        }
        out.extend_from_slice(data);
    }
    if let Some(le) = le {
        if extended {
            if data.is_empty() {
                out.push(0);
            }
            out.extend_from_slice(&((le % 65_536) as u16).to_be_bytes());
        } else {
            out.push((le % 256) as u8);
        }
    }
    out
}

/// Status word of a response.
fn sw(response: &[u8]) -> u16 {
    match response {
        [.., a, b] => u16::from_be_bytes([*a, *b]),
        _ => 0,
    }
}

/// The command the card acts on, as its dispatcher reassembles it, or `None` when this
/// APDU only extends a chain (or is not a command the card acts on).
fn effective(chain: &Chain, bytes: &[u8]) -> (Option<Effective>, Option<Chain>) {
    let Ok(command) = keystation_core::Command::parse(bytes) else { return (None, None) };
    if command.cla & !0x10 != 0 || command.ins == 0xC0 {
        return (None, None);
    }
    let header = [command.cla & !0x10, command.ins, command.p1, command.p2];
    let chained = command.cla & 0x10 != 0;
    let mut data = match chain {
        Some((h, d)) if *h == header => d.clone(),
        _ if chained => Vec::new(),
        _ => {
            return (
                Some((command.ins, command.p1, command.p2, command.data().to_vec())),
                Some(None),
            );
        }
    };
    if data.len() + command.data().len() > 65_535 {
        return (None, Some(None));
    }
    data.extend_from_slice(command.data());
    if chained {
        return (None, Some(Some((header, data))));
    }
    (Some((command.ins, command.p1, command.p2, data)), Some(None))
}

impl Session {
    fn new() -> Self {
        Self {
            card: SoftCard::yubikey5(Identity::default(), Some(0x5EED)),
            chain: None,
            pgp_ecc: false,
            pgp_max: 3,
            last: Vec::new(),
            point: Vec::new(),
            generations: 0,
            trace: std::env::var_os("SOFTCARD_SESSION_TRACE").is_some(),
        }
    }

    /// Sends one APDU (unless it could generate an RSA key) and checks the response.
    fn send(&mut self, bytes: &[u8]) -> u16 {
        let (command, chain) = effective(&self.chain, bytes);
        if let Some((0x47, p1, _, data)) = &command {
            let rsa_byte = data.iter().any(|b| PIV_RSA.contains(b));
            let generates = *p1 != 0x81;
            if generates && (rsa_byte || self.generations >= MAX_GENERATIONS)
                || (*p1 == 0x80 && !self.pgp_ecc)
            {
                return 0;
            }
            self.generations += u32::from(generates);
        }
        let response = self.card.process(bytes);
        assert!(response.len() >= 2, "no status word: {response:02X?}");
        assert!(response.len() <= MAX_RESPONSE, "response of {} bytes", response.len());
        if let Some(chain) = chain {
            self.chain = chain;
        }
        let status = sw(&response);
        if self.trace {
            eprintln!("> {bytes:02X?}\n< {} bytes, {status:04X}", response.len() - 2);
        }
        if let Some((ins, p1, p2, data)) = command {
            self.track(ins, p1, p2, &data, status);
        }
        self.last = response[..response.len() - 2].to_vec();
        if let Ok(Some(point)) = tlv::find_nested(&self.last, 0x86)
            && !point.is_empty()
        {
            self.point = point.to_vec();
        }
        status
    }

    /// Follows what the harness needs to know of the card's persistent state.
    fn track(&mut self, ins: u8, p1: u8, p2: u8, data: &[u8], status: u16) {
        match (ins, p1, p2) {
            // ACTIVATE FILE after TERMINATE DF: factory attributes (RSA).
            (0x44, _, _) => self.pgp_ecc = false,
            // An attribute change that might be RSA.
            (0xDA, 0x00, 0xC1..=0xC3)
                if status == 0x9000 && !matches!(data.first(), Some(0x12 | 0x13 | 0x16)) =>
            {
                self.pgp_ecc = false;
            }
            (0xF2, 0x00, 0x00) if status == 0x9000 => {
                let most = data.iter().copied().max().unwrap_or(0);
                self.pgp_max = self.pgp_max.max(most);
            }
            _ => {}
        }
    }

    fn select(&mut self, aid: &[u8]) -> u16 {
        self.send(&apdu(0, 0xA4, 4, 0, aid, None))
    }

    /// Sets ECC attributes in all three OpenPGP slots (with the admin PIN given).
    fn pgp_ecc_attributes(&mut self, choice: u8) {
        let i = usize::from(choice) % PGP_SIG_ATTRS.len();
        let ok = [
            self.send(&apdu(0, 0xDA, 0, 0xC1, PGP_SIG_ATTRS[i], None)),
            self.send(&apdu(0, 0xDA, 0, 0xC2, PGP_DEC_ATTRS[i], None)),
            self.send(&apdu(0, 0xDA, 0, 0xC3, PGP_SIG_ATTRS[i], None)),
        ];
        if ok.iter().all(|&s| s == 0x9000) {
            self.pgp_ecc = true;
        }
    }

    /// After a power cycle nothing is verified; counters stay within their maximum.
    fn check_after_power_cycle(&mut self) {
        if self.select(AID_OPENPGP) == 0x9000 {
            for p2 in [0x81, 0x82, 0x83] {
                let status = self.send(&[0, 0x20, 0, p2]);
                assert_ne!(status, 0x9000, "OpenPGP PW {p2:02X} verified after power cycle");
            }
        }
        if self.select(AID_PIV) == 0x9000 {
            let status = self.send(&[0, 0x20, 0, 0x80]);
            assert_ne!(status, 0x9000, "PIV PIN verified after power cycle");
        }
        self.check_counters();
    }

    /// Reads the retry counters: OpenPGP `C4`, PIV metadata `F7` of PIN and PUK.
    fn check_counters(&mut self) {
        if self.select(AID_OPENPGP) == 0x9000 && self.send(&[0, 0xCA, 0, 0xC4, 0]) == 0x9000 {
            let status = self.last.clone();
            assert_eq!(status.len(), 7, "PW status bytes {status:02X?}");
            for &tries in &status[4..] {
                assert!(tries <= self.pgp_max, "OpenPGP tries {tries} > max {}", self.pgp_max);
            }
        }
        if self.select(AID_PIV) == 0x9000 {
            let mut pin_remaining = None;
            for p2 in [0x80, 0x81] {
                if self.send(&[0, 0xF7, 0, p2, 0]) == 0x9000 {
                    let meta = self.last.clone();
                    if let Ok(Some(&[total, remaining])) = tlv::find(&meta, 0x06) {
                        assert!(remaining <= total, "PIV {p2:02X}: {remaining} of {total} tries");
                        if p2 == 0x80 {
                            pin_remaining = Some(remaining);
                        }
                    }
                }
            }
            // PIV's status query agrees with the metadata.
            let status = self.send(&[0, 0x20, 0, 0x80]);
            if let Some(remaining) = pin_remaining {
                let expected = match remaining {
                    0 => 0x6983,
                    n => 0x63C0 | u16::from(n.min(15)),
                };
                assert_eq!(status, expected, "PIV PIN status query vs metadata");
            }
        }
    }

    /// PIV management key authentication (external: challenge, then its encryption).
    fn piv_authenticate(&mut self, wrong: bool) {
        if self.send(&apdu(0, 0x87, 0x03, 0x9B, &[0x7C, 0x02, 0x81, 0x00], Some(256))) != 0x9000 {
            return;
        }
        let challenge = tlv::find(&self.last, 0x7C)
            .ok()
            .flatten()
            .and_then(|t| tlv::find(t, 0x81).ok().flatten())
            .map(<[u8]>::to_vec);
        let Some(challenge) = challenge.filter(|c| c.len() == 8) else { return };
        let Ok(cipher) = des::TdesEde3::new_from_slice(&PIV_MGMT_KEY) else { return };
        let mut block = des::cipher::Block::<des::TdesEde3>::default();
        block.copy_from_slice(&challenge);
        cipher.encrypt_block(&mut block);
        if wrong {
            block[0] ^= 1;
        }
        let mut data = vec![0x7C, 0x0A, 0x82, 0x08];
        data.extend_from_slice(&block);
        self.send(&apdu(0, 0x87, 0x03, 0x9B, &data, None));
    }

    fn op(&mut self, input: &mut Input<'_>) {
        let kind = input.byte();
        match kind % 24 {
            0..=4 => {
                let len = usize::from(input.byte());
                let len = if len == 0xFF { usize::from(input.byte()) * 32 } else { len };
                let bytes = input.bytes(len).to_vec();
                self.send(&bytes);
            }
            5 => {
                let aid = input.pick(&AIDS);
                self.select(aid);
            }
            6 => {
                let b = input.byte();
                let p2 = [0x81, 0x82, 0x83][usize::from(b % 3)];
                let right: &[u8] = if p2 == 0x83 { b"12345678" } else { b"123456" };
                let pin: &[u8] = match (b >> 2) % 5 {
                    0 | 1 => right,
                    2 => b"000000",
                    3 => &[],
                    _ => b"87654321",
                };
                let p1 = if b & 0x80 != 0 && pin.is_empty() { 0xFF } else { 0x00 };
                self.send(&apdu(0, 0x20, p1, p2, pin, None));
            }
            7 => {
                let [p1, p2] = input.pick(&PGP_GET).to_be_bytes();
                let le = if input.byte() & 1 == 0 { 0 } else { 65_536 };
                self.send(&apdu(0, 0xCA, p1, p2, &[], Some(le)));
            }
            8 => {
                let [p1, p2] = input.pick(&PGP_PUT).to_be_bytes();
                let len = usize::from(input.byte());
                let data = input.bytes(len).to_vec();
                self.send(&apdu(0, 0xDA, p1, p2, &data, None));
            }
            9 => {
                let choice = input.byte();
                self.pgp_ecc_attributes(choice);
            }
            10 => {
                let b = input.byte();
                let crt: &[u8] = [
                    &[0xB6, 0x00][..],
                    &[0xB8, 0x00],
                    &[0xA4, 0x00],
                    &[0xB6, 0x03, 0x84, 0x01, 0x01],
                ][usize::from(b % 4)];
                let p1 = if b & 0x10 != 0 { 0x81 } else { 0x80 };
                self.send(&apdu(
                    0,
                    0x47,
                    p1,
                    0,
                    crt,
                    Some(if b & 0x20 != 0 { 65_536 } else { 256 }),
                ));
            }
            11 => {
                let b = input.byte();
                let len = [20, 32, 35, 48, 51, 64][usize::from(b % 6)];
                let data = input.bytes(len).to_vec();
                match (b >> 3) % 3 {
                    0 => self.send(&apdu(0, 0x2A, 0x9E, 0x9A, &data, Some(256))),
                    1 => self.send(&apdu(0, 0x88, 0, 0, &data, Some(256))),
                    _ => {
                        let point = self.point.clone();
                        let mut inner = Vec::new();
                        tlv::write_constructed(&mut inner, 0xA6, |o| {
                            tlv::write_constructed(o, 0x7F49, |o| tlv::write(o, 0x86, &point));
                        });
                        self.send(&apdu(0, 0x2A, 0x80, 0x86, &inner, Some(256)))
                    }
                };
            }
            12 => {
                let b = input.byte();
                let bytes = match b % 8 {
                    0 => apdu(0, 0x24, 0, 0x81, b"123456654321", None),
                    1 => apdu(0, 0x24, 0, 0x83, b"1234567887654321", None),
                    2 => apdu(0, 0x2C, 0x02, 0x81, b"123456", None),
                    3 => apdu(0, 0x2C, 0x00, 0x81, b"1234567812345678", None),
                    4 => apdu(0, 0xF2, 0, 0, &[b % 7 + 1, 3, b % 5 + 1], None),
                    5 => apdu(0, 0xE6, 0, 0, &[], None),
                    6 => apdu(0, 0x44, 0, 0, &[], None),
                    _ => apdu(0, 0xDA, 0, 0xD3, b"12345678", None),
                };
                self.send(&bytes);
            }
            13 => {
                let b = input.byte();
                let pin: &[u8] = match b % 4 {
                    0 | 1 => b"123456\xFF\xFF",
                    2 => b"654321\xFF\xFF",
                    _ => &[],
                };
                let p1 = if b & 0x80 != 0 && pin.is_empty() { 0xFF } else { 0 };
                self.send(&apdu(0, 0x20, p1, 0x80, pin, None));
            }
            14 => {
                let wrong = input.byte().is_multiple_of(8);
                self.piv_authenticate(wrong);
            }
            15 => {
                let slot = input.pick(&PIV_SLOTS);
                let alg = input.pick(&PIV_ECC);
                let b = input.byte();
                let mut template = vec![0x80, 0x01, alg];
                if b & 1 != 0 {
                    template.extend_from_slice(&[0xAA, 0x01, b >> 1 & 3]);
                }
                if b & 8 != 0 {
                    template.extend_from_slice(&[0xAB, 0x01, b >> 4 & 3]);
                }
                let mut data = Vec::new();
                tlv::write(&mut data, 0xAC, &template);
                self.send(&apdu(0, 0x47, 0, slot, &data, Some(256)));
            }
            16 => {
                let slot = input.pick(&PIV_SLOTS);
                let alg = input.pick(&PIV_ECC);
                let b = input.byte();
                let mut inner = Vec::new();
                tlv::write(&mut inner, 0x82, &[]);
                if b & 1 == 0 {
                    let len = [32usize, 48, 64, 0][usize::from(b >> 1 & 3)];
                    tlv::write(&mut inner, 0x81, input.bytes(len));
                } else {
                    tlv::write(&mut inner, 0x85, &self.point.clone());
                }
                let mut data = Vec::new();
                tlv::write(&mut data, 0x7C, &inner);
                self.send(&apdu(0, 0x87, alg, slot, &data, Some(256)));
            }
            17 => {
                let object = input.pick(&PIV_OBJECTS);
                let mut data = Vec::new();
                tlv::write(&mut data, 0x5C, object);
                if input.byte() & 1 == 0 {
                    self.send(&apdu(0, 0xCB, 0x3F, 0xFF, &data, Some(65_536)));
                } else {
                    let len = usize::from(input.byte()) * 4;
                    let value = input.bytes(len).to_vec();
                    tlv::write(&mut data, 0x53, &value);
                    self.send(&apdu(0, 0xDB, 0x3F, 0xFF, &data, None));
                }
            }
            18 => {
                let b = input.byte();
                let slot = input.pick(&[0x80, 0x81, 0x9B, 0x9A, 0x9C, 0x9D, 0x9E, 0xF9]);
                let bytes = match b % 10 {
                    0 | 1 => apdu(0, 0xF7, 0, slot, &[], Some(256)),
                    2 => apdu(0, 0xF9, slot, 0, &[], Some(65_536)),
                    3 => apdu(0, 0xF8, 0, 0, &[], Some(256)),
                    4 => apdu(0, 0xFD, 0, 0, &[], Some(256)),
                    5 => apdu(0, 0xFB, 0, 0, &[], None),
                    6 => apdu(0, 0xFA, b % 5 + 1, b % 3 + 1, &[], None),
                    7 => apdu(0, 0x24, 0, 0x80, b"123456\xFF\xFF654321\xFF\xFF", None),
                    8 => apdu(0, 0x2C, 0, 0x80, b"12345678123456\xFF\xFF", None),
                    _ => apdu(0, 0x24, 0, 0x81, b"12345678876543210", None),
                };
                self.send(&bytes);
            }
            19 => {
                // A well-formed chain: data from the input in pieces of `size` bytes.
                let b = input.byte();
                let ins = input.pick(&[0xDA, 0xDB, 0x2A, 0x87, 0xCA, 0x20]);
                let (p1, p2) = match ins {
                    0xDA => (0x7F, 0x21),
                    0xDB => (0x3F, 0xFF),
                    0x2A => (0x9E, 0x9A),
                    0x87 => (0x11, 0x9A),
                    _ => (0x00, 0x81),
                };
                let len = usize::from(input.byte()) * 8;
                let data = input.bytes(len).to_vec();
                let size = usize::from(b % 64) + 1;
                let pieces: Vec<&[u8]> = data.chunks(size).collect();
                for (i, piece) in pieces.iter().enumerate() {
                    let last = i + 1 == pieces.len();
                    let cla = if last { 0x00 } else { 0x10 };
                    self.send(&apdu(cla, ins, p1, p2, piece, last.then_some(256)));
                }
            }
            20 => {
                let le = usize::from(input.byte());
                self.send(&[0, 0xC0, 0, 0, le as u8]);
            }
            21 => {
                self.card.power_cycle();
                self.chain = None;
                self.check_after_power_cycle();
            }
            22 => self.check_counters(),
            _ => {
                let b = input.byte();
                let bytes = match b % 4 {
                    0 => apdu(0, 0x84, 0, 0, &[], Some(usize::from(b))),
                    1 => apdu(0, 0xF1, 0, 0, &[], Some(256)),
                    2 => apdu(0, 0x1D, 0, 0, &[], Some(256)),
                    _ => apdu(
                        0,
                        0xA5,
                        b % 4,
                        0x04,
                        &[0x06, 0x60, 0x04, 0x5C, 0x02, 0x7F, 0x21],
                        None,
                    ),
                };
                self.send(&bytes);
            }
        }
    }
}

/// Runs one session from the fuzz input.
pub fn run(data: &[u8]) {
    let mut session = Session::new();
    let mut input = Input(data);
    let mut ops = 0;
    while !input.0.is_empty() && ops < MAX_OPS {
        session.op(&mut input);
        ops += 1;
    }
    session.card.power_cycle();
    session.chain = None;
    session.check_after_power_cycle();
    // Whatever state the session left, it saves, restores into a fresh card, and that
    // card saves the same bytes.
    let saved = session.card.save_state();
    let mut fresh = SoftCard::yubikey5(Identity::default(), Some(1));
    if let Err(error) = fresh.restore_state(&saved) {
        panic!("the card's own state does not restore: {error}");
    }
    assert!(*fresh.save_state() == *saved, "restored state saves differently");
}
