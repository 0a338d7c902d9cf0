//! CA private keys in host memory, and their password-protected files: PKCS #8
//! `ENCRYPTED PRIVATE KEY` (RFC 5958 §3) under PBES2 (RFC 8018 §6.2), which is what
//! step-ca's `step ca init` writes (PBKDF2-HMAC-SHA256, 100 000 iterations, AES-256-CBC)
//! and what `openssl pkey -passin …` reads.

use keystation_core::SecretKey;
use keystation_core::key::{KeyAlgorithm, PublicKey};
use keystation_core::keygen::{RandomSource, SignInput, Signer};
use keystation_keygen::{HostSigner, OsRandom, SoftKeyGen};
use keystation_x509::pem;
use pkcs8::der::Decode;
use zeroize::Zeroizing;

use crate::Error;

/// PBKDF2 iterations for the key files keystation writes: step-ca's `pemutil` count.
pub const PBKDF2_ITERATIONS: u32 = 100_000;

/// The most PBKDF2 iterations a key file may ask for when it is read (a damaged or
/// hostile file should not pin a core for minutes).
const MAX_PBKDF2_ITERATIONS: u32 = 10_000_000;

/// The most memory (bytes) a key file's scrypt parameters may need when it is read
/// (`128 · N · r`, RFC 7914 §2).
const MAX_SCRYPT_MEMORY: u64 = 1 << 30;

/// The PEM label of encrypted PKCS #8 (RFC 7468 §11).
const ENCRYPTED_LABEL: &str = "ENCRYPTED PRIVATE KEY";

/// A CA private key held in host memory: the root key, a software intermediate, an SSH
/// user or host CA key.
///
/// It signs as a [`Signer`] (so an [`Issuer`](crate::Issuer) or [`SshCa`](crate::SshCa)
/// takes it like a key on a card) and is written and read as a password-protected PKCS #8
/// file. The key material is zeroized when the value is dropped; `Debug` shows only the
/// algorithm.
pub struct CaKey {
    secret: SecretKey,
    signer: HostSigner,
}

impl core::fmt::Debug for CaKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "CaKey({}, [redacted])", self.algorithm())
    }
}

impl CaKey {
    /// A new key of `algorithm` from the operating system's CSPRNG. P-256 is step-ca's
    /// default; P-384, RSA 2048/3072/4096 and Ed25519 are also offered. X25519 cannot sign
    /// and is refused.
    pub fn generate(algorithm: KeyAlgorithm) -> Result<Self, Error> {
        Self::generate_with(algorithm, Box::new(OsRandom))
    }

    /// A new key of `algorithm` drawn from `random` (a seeded source makes tests
    /// reproducible).
    pub fn generate_with(
        algorithm: KeyAlgorithm,
        random: Box<dyn RandomSource>,
    ) -> Result<Self, Error> {
        if !algorithm.can_sign() {
            return Err(Error::UnsupportedCaKey(algorithm));
        }
        let secret = SoftKeyGen::new(random).generate_secret(algorithm)?;
        Self::from_secret(secret)
    }

    /// A key from private key material obtained elsewhere.
    pub fn from_secret(secret: SecretKey) -> Result<Self, Error> {
        if let SecretKey::X25519(_) = secret {
            return Err(Error::UnsupportedCaKey(KeyAlgorithm::X25519));
        }
        let signer = HostSigner::new(&secret)?;
        Ok(Self { secret, signer })
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.signer.public_key().algorithm()
    }

    /// The unencrypted PKCS #8 `PrivateKeyInfo` (RFC 5208 §5; RFC 8410 §7 for Ed25519), as
    /// DER that is zeroized when dropped.
    pub fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, Error> {
        use pkcs8::EncodePrivateKey as _;
        let failed = |e: pkcs8::Error| Error::KeyFile(format!("cannot encode the key: {e}"));
        let document = match &self.secret {
            SecretKey::Rsa { e, p, q, .. } => {
                let big = |bytes: &[u8]| rsa::BigUint::from_bytes_be(bytes);
                let key = rsa::RsaPrivateKey::from_p_q(big(p.expose()), big(q.expose()), big(e))
                    .map_err(|e| Error::KeyFile(format!("inconsistent RSA key: {e}")))?;
                key.to_pkcs8_der().map_err(failed)?
            }
            SecretKey::NistP256(scalar) => p256::SecretKey::from_slice(scalar.expose())
                .map_err(|_| Error::KeyFile("P-256 scalar out of range".into()))?
                .to_pkcs8_der()
                .map_err(failed)?,
            SecretKey::NistP384(scalar) => p384::SecretKey::from_slice(scalar.expose())
                .map_err(|_| Error::KeyFile("P-384 scalar out of range".into()))?
                .to_pkcs8_der()
                .map_err(failed)?,
            SecretKey::Ed25519(seed) => {
                let seed: &[u8; 32] = seed
                    .expose()
                    .try_into()
                    .map_err(|_| Error::KeyFile("Ed25519 seed is not 32 bytes".into()))?;
                // RFC 8410 §7 as a v1 PrivateKeyInfo (the seed only): OpenSSL 3.0 does not
                // read the v2 form with the public key that ed25519-dalek writes.
                let inner = Zeroizing::new(
                    pkcs8::der::asn1::OctetStringRef::new(seed)
                        .and_then(|o| pkcs8::der::Encode::to_der(&o))
                        .map_err(|e| Error::KeyFile(format!("cannot encode the key: {e}")))?,
                );
                let algorithm = pkcs8::AlgorithmIdentifierRef {
                    oid: pkcs8::ObjectIdentifier::new_unwrap("1.3.101.112"),
                    parameters: None,
                };
                let info = pkcs8::PrivateKeyInfo::new(algorithm, &inner);
                pkcs8::SecretDocument::encode_msg(&info)
                    .map_err(|e| Error::KeyFile(format!("cannot encode the key: {e}")))?
            }
            _ => return Err(Error::UnsupportedCaKey(self.algorithm())),
        };
        Ok(Zeroizing::new(document.as_bytes().to_vec()))
    }

    /// The key as a password-protected PEM file, `-----BEGIN ENCRYPTED PRIVATE KEY-----`:
    /// PKCS #8 `EncryptedPrivateKeyInfo` under PBES2 with PBKDF2-HMAC-SHA256
    /// ([`PBKDF2_ITERATIONS`], a random 16-byte salt) and AES-256-CBC (a random IV), as
    /// step-ca writes its CA keys. `openssl pkey -passin` opens it.
    pub fn to_encrypted_pem(&self, password: &[u8]) -> Result<String, Error> {
        self.to_encrypted_pem_with(password, PBKDF2_ITERATIONS)
    }

    /// [`to_encrypted_pem`](Self::to_encrypted_pem) with another PBKDF2 iteration count
    /// (at least 10 000, NIST SP 800-132's floor; a lower count is refused).
    pub fn to_encrypted_pem_with(&self, password: &[u8], iterations: u32) -> Result<String, Error> {
        if password.is_empty() {
            return Err(Error::KeyFile("an empty password protects nothing".into()));
        }
        if iterations < 10_000 {
            return Err(Error::KeyFile(format!("{iterations} PBKDF2 iterations are too few")));
        }
        let mut random = [0u8; 32];
        OsRandom.fill(&mut random)?;
        let (salt, iv) = random.split_at(16);
        let iv: &[u8; 16] = iv.try_into().map_err(|_| Error::KeyFile("IV length".into()))?;
        let params = pkcs8::pkcs5::pbes2::Parameters::pbkdf2_sha256_aes256cbc(iterations, salt, iv)
            .map_err(|e| Error::KeyFile(format!("PBES2 parameters: {e}")))?;
        let plain = self.to_pkcs8_der()?;
        let info = pkcs8::PrivateKeyInfo::from_der(&plain)
            .map_err(|e| Error::KeyFile(format!("cannot re-read the key: {e}")))?;
        let encrypted = info
            .encrypt_with_params(params, password)
            .map_err(|e| Error::KeyFile(format!("cannot encrypt the key: {e}")))?;
        Ok(pem::encode(ENCRYPTED_LABEL, encrypted.as_bytes()))
    }

    /// Reads a key file: an `ENCRYPTED PRIVATE KEY` opened with `password`, or — only when
    /// no password is given — an unencrypted `PRIVATE KEY`, `EC PRIVATE KEY` or
    /// `RSA PRIVATE KEY`.
    ///
    /// A password that does not open the file is [`Error::WrongPassword`]; an encrypted
    /// file without a password, an unencrypted one with a password, and PBES2 parameters
    /// beyond sane bounds (more than 10 million PBKDF2 iterations, scrypt needing more
    /// than 1 GiB) are [`Error::KeyFile`].
    pub fn from_pem(text: &str, password: Option<&[u8]>) -> Result<Self, Error> {
        let blocks = pem::decode_all(text)?;
        let encrypted = blocks.iter().find(|b| b.label == ENCRYPTED_LABEL);
        match (encrypted, password) {
            (Some(block), Some(password)) => Self::from_encrypted_der(&block.der, password),
            (Some(_), None) => {
                Err(Error::KeyFile("the key file is encrypted: a password is needed".into()))
            }
            (None, Some(_)) => Err(Error::KeyFile(
                "a password was given, but the file holds no ENCRYPTED PRIVATE KEY".into(),
            )),
            (None, None) => Self::from_secret(keystation_x509::private_key::parse_pem(text)?),
        }
    }

    /// Reads a DER PKCS #8 `EncryptedPrivateKeyInfo` (RFC 5958 §3) with `password`.
    pub fn from_encrypted_der(der: &[u8], password: &[u8]) -> Result<Self, Error> {
        let info = pkcs8::EncryptedPrivateKeyInfo::from_der(der)
            .map_err(|e| Error::KeyFile(format!("malformed encrypted private key: {e}")))?;
        check_kdf_bounds(&info)?;
        let plain = info.decrypt(password).map_err(|_| Error::WrongPassword)?;
        let secret = keystation_x509::private_key::parse_pkcs8_der(plain.as_bytes()).map_err(
            |e| match e {
                // PKCS #7 padding that checks out by chance under a wrong key leaves
                // garbage, not a key.
                keystation_x509::Error::Malformed { .. } => Error::WrongPassword,
                other => Error::KeyFile(other.to_string()),
            },
        )?;
        Self::from_secret(secret)
    }

    /// The private key material (to import it elsewhere, e.g. onto a card).
    pub fn secret(&self) -> &SecretKey {
        &self.secret
    }

    /// The public key as an OpenSSH `authorized_keys` line (what step-ca writes to
    /// `ssh_user_ca_key.pub` / `ssh_host_ca_key.pub`), with no comment.
    pub fn openssh_public_key(&self) -> Result<String, Error> {
        self.signer
            .public_key()
            .to_openssh(None)
            .ok_or_else(|| Error::ssh(format!("{} keys have no SSH form", self.algorithm())))
    }
}

fn check_kdf_bounds(info: &pkcs8::EncryptedPrivateKeyInfo<'_>) -> Result<(), Error> {
    use pkcs8::pkcs5::pbes2::Kdf;
    let Some(params) = info.encryption_algorithm.pbes2() else {
        return Err(Error::KeyFile("only PBES2 (RFC 8018 §6.2) key files are read".into()));
    };
    match &params.kdf {
        Kdf::Pbkdf2(p) if p.iteration_count > MAX_PBKDF2_ITERATIONS => {
            Err(Error::KeyFile(format!("{} PBKDF2 iterations exceed the limit", p.iteration_count)))
        }
        Kdf::Scrypt(s) => {
            let memory = 128u64
                .saturating_mul(s.cost_parameter)
                .saturating_mul(u64::from(s.block_size))
                .saturating_mul(u64::from(s.parallelization.max(1)));
            if memory > MAX_SCRYPT_MEMORY {
                return Err(Error::KeyFile(format!(
                    "scrypt parameters N={} r={} p={} need more than 1 GiB",
                    s.cost_parameter, s.block_size, s.parallelization
                )));
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

impl Signer for CaKey {
    fn public_key(&self) -> &PublicKey {
        self.signer.public_key()
    }

    fn sign(&mut self, input: SignInput<'_>) -> Result<Vec<u8>, keystation_core::Error> {
        self.signer.sign(input)
    }
}
