//! Password-based JWE (RFC 7516 compact serialization, §7.1) with PBES2-HS256+A128KW key
//! wrapping (RFC 7518 §4.8) and A256GCM content encryption (§5.3): the format of a JWK
//! provisioner's `encryptedKey` in step-ca's `ca.json`, which step's client decrypts with
//! the provisioner password (go-jose).
//!
//! Format facts, as go-jose and step implement them:
//! * the PBKDF2 salt is `UTF8(alg) || 0x00 || p2s` (RFC 7518 §4.8.1.1);
//! * step writes a 16-byte `p2s` and `p2c` = 100 000, and `cty` = `jwk+json`;
//! * go-jose (the version step-ca 0.19 builds with) requires `p2s` non-empty and
//!   `p2c` > 0, with no upper bound; keystation caps `p2c` at [`MAX_P2C`] when decrypting so
//!   a crafted token cannot make it spin, and requires the 8-byte minimum salt of §4.8.1.1.

use aes_gcm::aead::{Aead as _, KeyInit as _, Payload};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::b64;
use crate::error::{Error, Result};
use crate::json;

/// The key-management algorithm, `alg`.
pub const PBES2_ALG: &str = "PBES2-HS256+A128KW";
/// The content-encryption algorithm, `enc`.
pub const CONTENT_ENC: &str = "A256GCM";
/// The PBKDF2 iteration count step uses and [`encrypt_pbes2`] writes.
pub const DEFAULT_P2C: u32 = 100_000;
/// The largest iteration count [`decrypt_pbes2`] accepts (ten times step's).
pub const MAX_P2C: u32 = 1_000_000;
/// The content type step gives an encrypted JWK.
pub const JWK_CONTENT_TYPE: &str = "jwk+json";
/// The longest compact JWE accepted, in bytes.
pub const MAX_JWE_LEN: usize = 64 * 1024;

const SALT_INPUT_LEN: usize = 16;
const MIN_SALT_INPUT_LEN: usize = 8;

/// Options for [`encrypt_pbes2_with`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pbes2Options {
    /// `p2c`, the PBKDF2 iteration count (at least 1000, RFC 7518 §4.8.1.2).
    pub iterations: u32,
    /// `cty`, the plaintext's content type.
    pub content_type: Option<String>,
}

impl Default for Pbes2Options {
    /// step's: 100 000 iterations, `cty` `jwk+json`.
    fn default() -> Self {
        Self { iterations: DEFAULT_P2C, content_type: Some(JWK_CONTENT_TYPE.into()) }
    }
}

#[derive(Deserialize, Serialize)]
struct JweHeader {
    alg: String,
    enc: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cty: Option<String>,
    p2c: u64,
    p2s: String,
    #[serde(default, skip_serializing)]
    zip: Option<serde_json::Value>,
    #[serde(default, skip_serializing)]
    crit: Option<serde_json::Value>,
}

fn random(buf: &mut [u8]) -> Result<()> {
    use rand_core::RngCore as _;
    rand_core::OsRng.try_fill_bytes(buf).map_err(|_| Error::Random)
}

/// The A128KW key-encryption key from the password (RFC 7518 §4.8.1.1).
fn derive_kek(password: &[u8], salt_input: &[u8], iterations: u32) -> Zeroizing<[u8; 16]> {
    let mut salt = Vec::with_capacity(PBES2_ALG.len() + 1 + salt_input.len());
    salt.extend_from_slice(PBES2_ALG.as_bytes());
    salt.push(0);
    salt.extend_from_slice(salt_input);
    let mut kek = Zeroizing::new([0u8; 16]);
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password, &salt, iterations, kek.as_mut_slice());
    kek
}

/// Encrypts `plaintext` with `password` as step does: PBES2-HS256+A128KW with a random
/// 16-byte salt and 100 000 iterations, A256GCM, `cty` `jwk+json`. Returns the compact JWE.
pub fn encrypt_pbes2(plaintext: &[u8], password: &[u8]) -> Result<String> {
    encrypt_pbes2_with(plaintext, password, &Pbes2Options::default())
}

/// [`encrypt_pbes2`] with a chosen iteration count and content type.
pub fn encrypt_pbes2_with(
    plaintext: &[u8],
    password: &[u8],
    options: &Pbes2Options,
) -> Result<String> {
    if options.iterations < 1000 || options.iterations > MAX_P2C {
        return Err(Error::IterationCount { p2c: options.iterations.into(), max: MAX_P2C });
    }
    let mut salt_input = [0u8; SALT_INPUT_LEN];
    random(&mut salt_input)?;
    let mut cek = Zeroizing::new([0u8; 32]);
    random(cek.as_mut_slice())?;
    let mut iv = [0u8; 12];
    random(&mut iv)?;

    let header = JweHeader {
        alg: PBES2_ALG.into(),
        enc: CONTENT_ENC.into(),
        cty: options.content_type.clone(),
        p2c: options.iterations.into(),
        p2s: b64::encode(&salt_input),
        zip: None,
        crit: None,
    };
    let header_b64 = b64::encode(&serde_json::to_vec(&header).map_err(|_| Error::Signing)?);

    let kek = derive_kek(password, &salt_input, options.iterations);
    let wrapped =
        aes_kw::KekAes128::from(*kek).wrap_vec(cek.as_slice()).map_err(|_| Error::Signing)?;
    let cipher = aes_gcm::Aes256Gcm::new_from_slice(cek.as_slice()).map_err(|_| Error::Signing)?;
    let sealed = cipher
        .encrypt((&iv).into(), Payload { msg: plaintext, aad: header_b64.as_bytes() })
        .map_err(|_| Error::Signing)?;
    let (ciphertext, tag) = sealed.split_at(sealed.len() - 16);
    Ok([
        header_b64,
        b64::encode(&wrapped),
        b64::encode(&iv),
        b64::encode(ciphertext),
        b64::encode(tag),
    ]
    .join("."))
}

/// Decrypts a compact JWE made with PBES2-HS256+A128KW and A256GCM (step's `encryptedKey`,
/// or [`encrypt_pbes2`]'s output), with at most [`MAX_P2C`] iterations. A wrong password and
/// an altered token are both [`Error::Decryption`].
pub fn decrypt_pbes2(token: &str, password: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    decrypt_pbes2_with_limit(token, password, MAX_P2C)
}

/// [`decrypt_pbes2`] with another iteration ceiling.
pub fn decrypt_pbes2_with_limit(
    token: &str,
    password: &[u8],
    max_iterations: u32,
) -> Result<Zeroizing<Vec<u8>>> {
    let token = token.trim();
    if token.len() > MAX_JWE_LEN {
        return Err(Error::TooLong { what: "compact JWE", len: token.len(), max: MAX_JWE_LEN });
    }
    let parts: Vec<&str> = token.split('.').collect();
    let [header_b64, wrapped, iv, ciphertext, tag] = parts[..] else {
        return Err(Error::malformed("compact JWE", format!("{} parts, 5 expected", parts.len())));
    };
    let header: JweHeader =
        json::object(&b64::decode(header_b64, "JWE protected header")?, "JWE header")?;
    if header.crit.is_some() {
        return Err(Error::CriticalHeader);
    }
    if header.zip.is_some() {
        return Err(Error::UnsupportedJwe("compressed (zip) content".into()));
    }
    if header.alg != PBES2_ALG {
        return Err(Error::UnsupportedJwe(format!("alg {:?}", header.alg)));
    }
    if header.enc != CONTENT_ENC {
        return Err(Error::UnsupportedJwe(format!("enc {:?}", header.enc)));
    }
    let iterations = match u32::try_from(header.p2c) {
        Ok(p2c) if p2c >= 1 && p2c <= max_iterations => p2c,
        _ => return Err(Error::IterationCount { p2c: header.p2c, max: max_iterations }),
    };
    let salt_input = b64::decode(&header.p2s, "p2s")?;
    if salt_input.len() < MIN_SALT_INPUT_LEN {
        return Err(Error::malformed("JWE header", "p2s shorter than 8 bytes"));
    }
    let wrapped = b64::decode(wrapped, "JWE encrypted key")?;
    let iv = b64::decode(iv, "JWE initialization vector")?;
    let ciphertext = b64::decode(ciphertext, "JWE ciphertext")?;
    let tag = b64::decode(tag, "JWE authentication tag")?;
    if wrapped.len() != 40 || iv.len() != 12 || tag.len() != 16 {
        return Err(Error::malformed("compact JWE", "wrong key, IV or tag length for A256GCM"));
    }

    let kek = derive_kek(password, &salt_input, iterations);
    let mut cek = Zeroizing::new([0u8; 32]);
    aes_kw::KekAes128::from(*kek)
        .unwrap(&wrapped, cek.as_mut_slice())
        .map_err(|_| Error::Decryption)?;
    let cipher =
        aes_gcm::Aes256Gcm::new_from_slice(cek.as_slice()).map_err(|_| Error::Decryption)?;
    let mut sealed = ciphertext;
    sealed.extend_from_slice(&tag);
    let iv: [u8; 12] = iv.try_into().map_err(|_| Error::Decryption)?;
    cipher
        .decrypt((&iv).into(), Payload { msg: &sealed, aad: header_b64.as_bytes() })
        .map(Zeroizing::new)
        .map_err(|_| Error::Decryption)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast() -> Pbes2Options {
        Pbes2Options { iterations: 1000, ..Pbes2Options::default() }
    }

    #[test]
    fn round_trip_and_refusals() {
        let secret = br#"{"kty":"OKP","crv":"Ed25519"}"#;
        let jwe = encrypt_pbes2_with(secret, b"password", &fast()).map_err(|e| e.to_string());
        let Ok(jwe) = jwe else { panic!("{jwe:?}") };
        assert_eq!(jwe.split('.').count(), 5);
        let header =
            b64::decode(jwe.split('.').next().unwrap_or_default(), "h").unwrap_or_default();
        let header: serde_json::Value = serde_json::from_slice(&header).unwrap_or_default();
        assert_eq!(header["alg"], "PBES2-HS256+A128KW");
        assert_eq!(header["enc"], "A256GCM");
        assert_eq!(header["cty"], "jwk+json");
        assert_eq!(header["p2c"], 1000);
        let plain = decrypt_pbes2(&jwe, b"password").map_err(|e| e.to_string());
        assert_eq!(plain.as_deref().map(Vec::as_slice).ok(), Some(&secret[..]));

        assert!(matches!(decrypt_pbes2(&jwe, b"passw0rd"), Err(Error::Decryption)));
        // A flipped ciphertext bit.
        let mut parts: Vec<String> = jwe.split('.').map(str::to_owned).collect();
        let mut ct = b64::decode(&parts[3], "ct").unwrap_or_default();
        ct[0] ^= 1;
        parts[3] = b64::encode(&ct);
        assert!(matches!(decrypt_pbes2(&parts.join("."), b"password"), Err(Error::Decryption)));
        // The iteration ceiling.
        assert!(matches!(
            decrypt_pbes2_with_limit(&jwe, b"password", 999),
            Err(Error::IterationCount { p2c: 1000, max: 999 })
        ));
        assert!(matches!(decrypt_pbes2("a.b.c", b"p"), Err(Error::Malformed { .. })));
    }

    #[test]
    fn other_algorithms_are_refused() {
        let header = |json: &str| format!("{}.AAAA.AAAA.AAAA.AAAA", b64::encode(json.as_bytes()));
        let cases = [
            r#"{"alg":"PBES2-HS512+A256KW","enc":"A256GCM","p2c":1000,"p2s":"AAAAAAAAAAA"}"#,
            r#"{"alg":"PBES2-HS256+A128KW","enc":"A128CBC-HS256","p2c":1000,"p2s":"AAAAAAAAAAA"}"#,
            r#"{"alg":"PBES2-HS256+A128KW","enc":"A256GCM","p2c":1000,"p2s":"AAAAAAAAAAA","zip":"DEF"}"#,
        ];
        for case in cases {
            assert!(
                matches!(decrypt_pbes2(&header(case), b"p"), Err(Error::UnsupportedJwe(_))),
                "{case}"
            );
        }
        let huge =
            r#"{"alg":"PBES2-HS256+A128KW","enc":"A256GCM","p2c":100000000,"p2s":"AAAAAAAAAAA"}"#;
        assert!(matches!(decrypt_pbes2(&header(huge), b"p"), Err(Error::IterationCount { .. })));
        let zero = r#"{"alg":"PBES2-HS256+A128KW","enc":"A256GCM","p2c":0,"p2s":"AAAAAAAAAAA"}"#;
        assert!(matches!(decrypt_pbes2(&header(zero), b"p"), Err(Error::IterationCount { .. })));
        let short = r#"{"alg":"PBES2-HS256+A128KW","enc":"A256GCM","p2c":1000,"p2s":"AAAA"}"#;
        assert!(matches!(decrypt_pbes2(&header(short), b"p"), Err(Error::Malformed { .. })));
    }

    /// RFC 7517 Appendix C: the PBES2-HS256+A128KW key derivation (C.4) and the wrapping of
    /// the content-encryption key (C.5), with the example's password, salt and count.
    #[test]
    fn rfc7517_appendix_c_key_derivation_and_wrap() {
        let salt = b64::decode("2WCTcJZ1Rvd_CJuJripQ1w", "p2s").unwrap_or_default();
        let kek = derive_kek(b"Thus from my lips, by yours, my sin is purged.", &salt, 4096);
        assert_eq!(
            *kek,
            [110, 171, 169, 92, 129, 92, 109, 117, 233, 242, 116, 233, 170, 14, 24, 75]
        );
        let cek = [
            111, 27, 25, 52, 66, 29, 20, 78, 92, 176, 56, 240, 65, 208, 82, 112, 161, 131, 36, 55,
            202, 236, 185, 172, 129, 23, 153, 194, 195, 48, 253, 182,
        ];
        let wrapped = aes_kw::KekAes128::from(*kek).wrap_vec(&cek).map_err(|e| e.to_string());
        assert_eq!(
            wrapped.map(|w| b64::encode(&w)).ok().as_deref(),
            Some("TrqXOwuNUfDV9VPTNbyGvEJ9JMjefAVn-TR1uIxR9p6hsRQh9Tk7BA")
        );
    }
}
