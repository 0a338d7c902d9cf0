//! The parsers are total: thousands of deterministically mutated inputs give values or
//! errors, never panics.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use keystation_core::key::KeyAlgorithm;
use keystation_x509::attestation::verify_piv_attestation_at;
use keystation_x509::{
    Certificate, CertificateOptions, CertificateRequest, DistinguishedName, SubjectAltName,
    Validity, build_csr, pem, private_key, self_signed_certificate, verify_csr, verify_signed_by,
};

/// xorshift64*: a small deterministic generator, so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..=rng.below(3) {
        let at = rng.below(out.len());
        match rng.below(6) {
            0 => {
                if let Some(b) = out.get_mut(at) {
                    *b ^= 1 << rng.below(8);
                }
            }
            1 => {
                if let Some(b) = out.get_mut(at) {
                    *b = rng.next() as u8;
                }
            }
            2 => out.truncate(at),
            3 => out.insert(at, rng.next() as u8),
            4 => {
                if at < out.len() {
                    out.remove(at);
                }
            }
            // Length bytes are where DER parsers go wrong: set one to a large value.
            _ => {
                if let Some(b) = out.get_mut(at) {
                    *b = [0x80, 0x81, 0x82, 0x84, 0xFF, 0x00][rng.below(6)];
                }
            }
        }
    }
    out
}

fn seeds() -> Vec<Vec<u8>> {
    let options = CertificateOptions {
        subject_alt_names: vec![SubjectAltName::Dns("a.test".into())],
        ..CertificateOptions::default()
    };
    let name = DistinguishedName::parse("CN=fuzz,O=keystation").unwrap();
    let validity = Validity { not_before: 1_704_067_200, not_after: 4_102_444_799 };
    let mut out = Vec::new();
    for (i, alg) in [KeyAlgorithm::NistP256, KeyAlgorithm::Ed25519].into_iter().enumerate() {
        let mut signer = common::signer(alg, 100 + i as u64);
        out.push(self_signed_certificate(&mut signer, &name, &[1, 2], validity, &options).unwrap());
        out.push(build_csr(&mut signer, &name, &options).unwrap());
    }
    out.extend(keystation_x509::attestation::yubico_roots());
    out
}

#[test]
fn der_parsers_and_verifiers_survive_mutations() {
    let seeds = seeds();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut parsed = 0usize;
    for round in 0..3000 {
        let seed = &seeds[round % seeds.len()];
        let input = mutate(&mut rng, seed);
        if let Ok(cert) = Certificate::from_der(&input) {
            parsed += 1;
            let _ = cert.public_key();
            let _ = cert.subject_alt_names();
            let _ = cert.is_ca();
            let _ = keystation_x509::rfc3339(cert.not_after());
        }
        let _ = CertificateRequest::from_der(&input).map(|r| r.subject_alt_names());
        let _ = verify_signed_by(&input, seed);
        let _ = verify_signed_by(seed, &input);
        let _ = verify_csr(&input);
        let _ = private_key::parse_pkcs8_der(&input);
        let _ = private_key::parse_sec1_der(&input);
        let _ = private_key::parse_pkcs1_der(&input);
        let _ = verify_piv_attestation_at(
            &input,
            seed,
            std::slice::from_ref(&input),
            std::slice::from_ref(seed),
            0,
        );
    }
    // Some mutations leave a parseable certificate (bit flips inside names and keys), so
    // the deeper code ran too.
    assert!(parsed > 50, "only {parsed} mutated inputs parsed");
}

#[test]
fn text_parsers_survive_mutations() {
    let dir = tempfile::tempdir().unwrap();
    let mut texts = Vec::new();
    for args in [
        &["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "k.pem"][..],
        &["genpkey", "-algorithm", "ed25519", "-out", "k.pem"][..],
        &["ecparam", "-name", "secp384r1", "-genkey", "-out", "k.pem"][..],
    ] {
        let (ok, out) = common::openssl(dir.path(), args);
        assert!(ok, "{out}");
        texts.push(std::fs::read_to_string(dir.path().join("k.pem")).unwrap());
    }
    texts.push(pem::encode("CERTIFICATE", &seeds()[0]));
    let mut rng = Rng(42);
    let mut keys = 0usize;
    for round in 0..3000 {
        let seed = &texts[round % texts.len()];
        let bytes = mutate(&mut rng, seed.as_bytes());
        let text = String::from_utf8_lossy(&bytes);
        let _ = pem::decode_all(&text);
        keys += usize::from(private_key::parse_pem(&text).is_ok());
        let _ = Certificate::from_pem(&text);
        let _ = Certificate::all_from_pem(&text);
        let _ = CertificateRequest::from_pem(&text);
    }
    assert!(keys > 0, "no mutated key file parsed at all");
}

#[test]
fn distinguished_names_survive_mutations_and_round_trip() {
    let seed = r"CN=system:admin,OU=a\, b,O=system:masters,emailAddress=a@b.test,C=DE,DC=x";
    let mut rng = Rng(7);
    let mut valid = 0usize;
    for _ in 0..5000 {
        let bytes = mutate(&mut rng, seed.as_bytes());
        let text = String::from_utf8_lossy(&bytes);
        if let Ok(name) = DistinguishedName::parse(&text) {
            valid += 1;
            // What we print parses back to the same name.
            let again = DistinguishedName::parse(&name.to_string());
            assert_eq!(again.ok().as_ref(), Some(&name), "{text:?} printed as {name}");
            assert!(name.to_der().is_ok());
        }
    }
    assert!(valid > 100, "only {valid} mutated names parsed");
}
