//! The public parsers are total: they never panic, whatever the input; and they decode
//! what the encoders write.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;

use keystation_core::key::{KeyAlgorithm, RsaBits};
use keystation_core::keygen::{KeyOrigin, PinPolicy, TouchPolicy};
use keystation_piv::{
    AdminData, CertificateObject, Error, MAX_DECOMPRESSED_CERTIFICATE, Metadata, PivAlgorithm,
    Retries, parse_public_key,
};

/// xorshift64*: deterministic, dependency-free pseudo-random numbers.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

fn mutate(rng: &mut Rng, sample: &[u8]) -> Vec<u8> {
    let mut out = sample.to_vec();
    for _ in 0..=rng.below(4) {
        match rng.below(4) {
            0 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] = rng.next() as u8;
            }
            1 if !out.is_empty() => {
                out.truncate(rng.below(out.len()));
            }
            2 => {
                let i = rng.below(out.len() + 1);
                out.insert(i, rng.next() as u8);
            }
            _ => {
                let n = rng.below(8);
                let extra = rng.bytes(n);
                out.extend_from_slice(&extra);
            }
        }
    }
    out
}

fn samples() -> Vec<Vec<u8>> {
    let cert = [0x30, 0x82, 0x01, 0x00, 0xAA, 0xBB];
    let mut metadata = vec![0x01, 0x01, 0x11, 0x02, 0x02, 0x03, 0x03, 0x03, 0x01, 0x01];
    metadata.extend_from_slice(&[0x04, 0x43, 0x86, 0x41, 0x04]);
    metadata.extend_from_slice(&[0x11; 64]);
    vec![
        CertificateObject::encode(&cert, false).unwrap(),
        CertificateObject::encode(&cert, true).unwrap(),
        metadata,
        vec![0x80, 0x03, 0x81, 0x01, 0x02],
        vec![0x7F, 0x49, 0x05, 0x81, 0x01, 0x01, 0x82, 0x00],
        vec![0x53, 0x04, 0x70, 0x02, 0x30, 0x00],
    ]
}

fn run_all(input: &[u8]) {
    let _ = CertificateObject::parse(input);
    let _ = Metadata::parse(input);
    let _ = AdminData::parse(input);
    for algorithm in [KeyAlgorithm::NistP256, KeyAlgorithm::Rsa(RsaBits::Rsa2048)] {
        let _ = parse_public_key(algorithm, input);
    }
}

#[test]
fn parsers_never_panic_on_random_or_mutated_input() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let samples = samples();
    for round in 0..6000 {
        let input = if round % 3 == 0 {
            let len = rng.below(300);
            rng.bytes(len)
        } else {
            let sample = &samples[rng.below(samples.len())];
            mutate(&mut rng, sample)
        };
        run_all(&input);
    }
}

#[test]
fn certificate_objects_round_trip() {
    let cert: Vec<u8> = (0..2000u32).map(|i| (i % 7) as u8).collect();
    for compress in [false, true] {
        let encoded = CertificateObject::encode(&cert, compress).unwrap();
        let parsed = CertificateObject::parse(&encoded).unwrap();
        assert_eq!(parsed.certificate, cert);
        assert_eq!(parsed.compressed, compress);
        if compress {
            assert!(encoded.len() < cert.len() / 4, "gzip made {} bytes", encoded.len());
        }
        // With the 53 header too.
        let mut wrapped = Vec::new();
        keystation_core::tlv::write(&mut wrapped, 0x53, &encoded);
        assert_eq!(CertificateObject::parse(&wrapped).unwrap().certificate, cert);
    }
    assert!(matches!(CertificateObject::parse(&[0x71, 0x01, 0x00]), Err(Error::Malformed { .. })));
}

fn gzip_object(plain: &[u8]) -> Vec<u8> {
    let mut encoder = flate2_free_gzip::Encoder::new(Vec::new());
    encoder.write_all(plain).unwrap();
    let zipped = encoder.finish();
    let mut out = Vec::new();
    keystation_core::tlv::write(&mut out, 0x70, &zipped);
    keystation_core::tlv::write(&mut out, 0x71, &[0x01]);
    out
}

/// A gzip writer using only stored (uncompressed) deflate blocks, so that this test does
/// not share the crate's compressor: RFC 1952 header, RFC 1951 §3.2.4 stored blocks,
/// CRC-32 and ISIZE trailer.
mod flate2_free_gzip {
    pub(super) struct Encoder {
        data: Vec<u8>,
    }
    impl Encoder {
        pub(super) fn new(_: Vec<u8>) -> Self {
            Self { data: Vec::new() }
        }
        pub(super) fn finish(self) -> Vec<u8> {
            let mut out = vec![0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 0xFF];
            let chunks: Vec<&[u8]> = self.data.chunks(65_535).collect();
            if chunks.is_empty() {
                out.extend_from_slice(&[1, 0, 0, 0xFF, 0xFF]);
            }
            for (i, chunk) in chunks.iter().enumerate() {
                out.push(u8::from(i + 1 == chunks.len()));
                let len = chunk.len() as u16;
                out.extend_from_slice(&len.to_le_bytes());
                out.extend_from_slice(&(!len).to_le_bytes());
                out.extend_from_slice(chunk);
            }
            out.extend_from_slice(&crc32(&self.data).to_le_bytes());
            out.extend_from_slice(&(self.data.len() as u32).to_le_bytes());
            out
        }
    }
    impl std::io::Write for Encoder {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.data.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    fn crc32(data: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &byte in data {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
            }
        }
        !crc
    }
}

#[test]
fn gzip_output_is_bounded() {
    let fits = vec![0x30; MAX_DECOMPRESSED_CERTIFICATE];
    let parsed = CertificateObject::parse(&gzip_object(&fits)).unwrap();
    assert_eq!(parsed.certificate.len(), MAX_DECOMPRESSED_CERTIFICATE);
    let bomb = vec![0x30; MAX_DECOMPRESSED_CERTIFICATE + 1];
    let error = CertificateObject::parse(&gzip_object(&bomb)).unwrap_err();
    assert!(error.to_string().contains("too large"), "{error}");
    let mut corrupt = gzip_object(b"certificate");
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xFF;
    assert!(CertificateObject::parse(&corrupt).is_err());
}

#[test]
fn metadata_fields() {
    let meta = Metadata::parse(&samples()[2]).unwrap();
    assert_eq!(meta.algorithm, Some(PivAlgorithm::EccP256));
    assert_eq!(meta.pin_policy, Some(PinPolicy::Always));
    assert_eq!(meta.touch_policy, Some(TouchPolicy::Cached));
    assert_eq!(meta.origin, Some(KeyOrigin::Card));
    assert_eq!(meta.public_key.map(|k| k.algorithm()), Some(KeyAlgorithm::NistP256));
    let pin =
        Metadata::parse(&[0x01, 0x01, 0xFF, 0x05, 0x01, 0x00, 0x06, 0x02, 0x05, 0x02]).unwrap();
    assert_eq!(pin.algorithm, Some(PivAlgorithm::Pin));
    assert_eq!(pin.default_value, Some(false));
    assert_eq!(pin.retries, Some(Retries { total: 5, remaining: 2 }));
    assert!(Metadata::parse(&[0x01, 0x05, 0x11]).is_err());
    let admin = AdminData { flags: 3, salt: Some(vec![1; 16]), pin_timestamp: None };
    assert_eq!(AdminData::parse(&admin.encode()).unwrap(), admin);
}
