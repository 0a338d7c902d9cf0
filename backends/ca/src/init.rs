//! Making a new CA, as `step ca init` does: a root (self-signed, path length 1) and an
//! intermediate signed by it (path length 0), each valid ten years, with `keyCertSign` and
//! `cRLSign`; and the SSH CA's user and host keys.

use std::time::{Duration, SystemTime};

use keystation_core::key::KeyAlgorithm;
use keystation_core::keygen::Signer;
use keystation_x509::{DistinguishedName, NameAttribute, pem};
use sha2::{Digest as _, Sha256};

use crate::cert::{self, TbsParts};
use crate::{CaKey, Error, Issuer, PBKDF2_ITERATIONS, Serial, SshCa};

/// Ten years of 365 days, the lifetime `step ca init` gives both CA certificates.
pub const CA_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 60 * 60);

/// What `init_ca` makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaInitOptions {
    /// The CA's name: the subjects are `CN=<name> Root CA` and `CN=<name> Intermediate CA`.
    pub name: String,
    /// The subjects' organization (`O=`); `None` is the name, as `step ca init` does.
    pub organization: Option<String>,
    /// The algorithm of the root key and of a generated intermediate key: P-256 (step-ca's
    /// default), P-384, RSA 2048/3072/4096 or Ed25519.
    pub algorithm: KeyAlgorithm,
    /// The root certificate's lifetime ([`CA_LIFETIME`] by default).
    pub root_lifetime: Duration,
    /// The intermediate certificate's lifetime ([`CA_LIFETIME`] by default).
    pub intermediate_lifetime: Duration,
    /// PBKDF2 iterations for the key files ([`PBKDF2_ITERATIONS`], step-ca's count, by
    /// default; at least 10 000).
    pub key_file_iterations: u32,
}

impl CaInitOptions {
    /// `step ca init`'s defaults for a CA called `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            organization: None,
            algorithm: KeyAlgorithm::NistP256,
            root_lifetime: CA_LIFETIME,
            intermediate_lifetime: CA_LIFETIME,
            key_file_iterations: PBKDF2_ITERATIONS,
        }
    }
}

/// Where the intermediate CA's key comes from.
pub enum IntermediateKey {
    /// A new software key of the options' algorithm, returned encrypted.
    Generate,
    /// A key held elsewhere — a PIV slot's signer, say; the root certifies its public key
    /// and the issuer signs through it.
    Signer(Box<dyn Signer + Send>),
}

impl core::fmt::Debug for IntermediateKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Generate => f.write_str("Generate"),
            Self::Signer(s) => write!(f, "Signer({:?})", s.public_key()),
        }
    }
}

/// A new CA: its certificates, its password-protected key files, and the issuer ready to
/// sign.
#[derive(Debug)]
pub struct CaMaterial {
    /// The root certificate (DER).
    pub root_der: Vec<u8>,
    /// The intermediate certificate (DER).
    pub intermediate_der: Vec<u8>,
    /// The root key as an `ENCRYPTED PRIVATE KEY` PEM file. The root key exists nowhere
    /// else: keep this file offline.
    pub root_key_pem: String,
    /// The intermediate key as an `ENCRYPTED PRIVATE KEY` PEM file, when it was generated
    /// here (`None` when it is held by the given signer).
    pub intermediate_key_pem: Option<String>,
    /// The issuer: the intermediate certificate and its signer.
    pub issuer: Issuer,
}

impl CaMaterial {
    /// The root certificate as PEM.
    pub fn root_pem(&self) -> String {
        pem::encode("CERTIFICATE", &self.root_der)
    }

    /// The intermediate certificate as PEM.
    pub fn intermediate_pem(&self) -> String {
        pem::encode("CERTIFICATE", &self.intermediate_der)
    }

    /// The root's SHA-256 fingerprint in lower-case hex: what `step ca bootstrap
    /// --fingerprint` and step-ca's `defaults.json` carry.
    pub fn root_fingerprint(&self) -> String {
        fingerprint(&self.root_der)
    }
}

/// The SHA-256 fingerprint of a DER certificate in lower-case hex (step-ca's form).
pub fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der).iter().map(|b| format!("{b:02x}")).collect()
}

/// Makes a new CA as `step ca init` does, at the current time.
///
/// `password` encrypts the root key file and a generated intermediate key file (see
/// [`CaKey::to_encrypted_pem`]). The root is self-signed, `O=<organization>,
/// CN=<name> Root CA`, with BasicConstraints `cA` and path length 1, KeyUsage
/// `keyCertSign, cRLSign` and a subject key identifier; the intermediate,
/// `CN=<name> Intermediate CA`, has path length 0 and an authority key identifier. Each
/// has a random 128-bit serial and is valid from now for its lifetime.
pub fn init_ca(
    options: &CaInitOptions,
    password: &[u8],
    intermediate: IntermediateKey,
) -> Result<CaMaterial, Error> {
    init_ca_at(options, password, intermediate, SystemTime::now())
}

/// [`init_ca`] as if at `now`.
pub fn init_ca_at(
    options: &CaInitOptions,
    password: &[u8],
    intermediate: IntermediateKey,
    now: SystemTime,
) -> Result<CaMaterial, Error> {
    if options.name.trim().is_empty() {
        return Err(Error::template("the CA needs a name"));
    }
    let mut root_key = CaKey::generate(options.algorithm)?;
    let root_key_pem = root_key.to_encrypted_pem_with(password, options.key_file_iterations)?;
    let (intermediate_signer, intermediate_key_pem): (Box<dyn Signer + Send>, _) =
        match intermediate {
            IntermediateKey::Generate => {
                let key = CaKey::generate(options.algorithm)?;
                let file = key.to_encrypted_pem_with(password, options.key_file_iterations)?;
                (Box::new(key), Some(file))
            }
            IntermediateKey::Signer(signer) => (signer, None),
        };
    let organization = options.organization.as_deref().unwrap_or(&options.name);
    let subject = |suffix: &str| -> Result<x509_cert::name::Name, Error> {
        let mut name = DistinguishedName::new();
        name.push(NameAttribute::Organization, organization);
        name.push(NameAttribute::CommonName, &format!("{} {suffix}", options.name));
        cert::name(&name.to_der()?)
    };
    let start = cert::unix(now)?;
    let root_subject = subject("Root CA")?;
    let root_spki = root_key.public_key().to_spki_der();
    let root_key_id = cert::key_identifier(&root_spki)?;
    let root_der = cert::sign_certificate(
        &mut root_key,
        TbsParts {
            issuer: root_subject.clone(),
            subject: root_subject.clone(),
            spki_der: &root_spki,
            serial: &Serial::random()?,
            not_before: start,
            not_after: start.saturating_add(options.root_lifetime.as_secs()),
            extensions: vec![
                cert::ca_key_usage()?,
                cert::basic_constraints(true, Some(1))?,
                cert::subject_key_id(&root_key_id)?,
            ],
        },
    )?;
    let intermediate_spki = intermediate_signer.public_key().to_spki_der();
    // The signer must be able to sign certificates (X25519 cannot).
    keystation_x509::signature_algorithm_der(intermediate_signer.public_key())?;
    let intermediate_der = cert::sign_certificate(
        &mut root_key,
        TbsParts {
            issuer: root_subject,
            subject: subject("Intermediate CA")?,
            spki_der: &intermediate_spki,
            serial: &Serial::random()?,
            not_before: start,
            not_after: start.saturating_add(options.intermediate_lifetime.as_secs()),
            extensions: vec![
                cert::ca_key_usage()?,
                cert::basic_constraints(true, Some(0))?,
                cert::subject_key_id(&cert::key_identifier(&intermediate_spki)?)?,
                cert::authority_key_id(&root_key_id)?,
            ],
        },
    )?;
    drop(root_key);
    let issuer = Issuer::new(vec![intermediate_der.clone()], intermediate_signer)?;
    Ok(CaMaterial { root_der, intermediate_der, root_key_pem, intermediate_key_pem, issuer })
}

/// The SSH CA `step ca init --ssh` makes: a user and a host CA key.
#[derive(Debug)]
pub struct SshCaMaterial {
    /// The user CA key as an `ENCRYPTED PRIVATE KEY` PEM file (`ssh_user_ca_key`).
    pub user_key_pem: String,
    /// The host CA key as an `ENCRYPTED PRIVATE KEY` PEM file (`ssh_host_ca_key`).
    pub host_key_pem: String,
    /// The user CA public key as an OpenSSH line (`ssh_user_ca_key.pub`; what servers
    /// put in `TrustedUserCAKeys`).
    pub user_public_key: String,
    /// The host CA public key as an OpenSSH line (`ssh_host_ca_key.pub`; what clients
    /// put in `known_hosts` as `@cert-authority`).
    pub host_public_key: String,
    /// The SSH CA, ready to sign with both keys.
    pub ca: SshCa,
}

/// Makes the SSH user and host CA keys of `algorithm` (step-ca's default P-256, or
/// Ed25519, P-384), encrypted with `password` (PBKDF2 with [`PBKDF2_ITERATIONS`]).
pub fn init_ssh_ca(algorithm: KeyAlgorithm, password: &[u8]) -> Result<SshCaMaterial, Error> {
    init_ssh_ca_with(algorithm, password, PBKDF2_ITERATIONS)
}

/// [`init_ssh_ca`] with another PBKDF2 iteration count for the key files (at least
/// 10 000).
pub fn init_ssh_ca_with(
    algorithm: KeyAlgorithm,
    password: &[u8],
    key_file_iterations: u32,
) -> Result<SshCaMaterial, Error> {
    if !matches!(algorithm, KeyAlgorithm::NistP256 | KeyAlgorithm::NistP384 | KeyAlgorithm::Ed25519)
    {
        return Err(Error::UnsupportedCaKey(algorithm));
    }
    let user = CaKey::generate(algorithm)?;
    let host = CaKey::generate(algorithm)?;
    let user_key_pem = user.to_encrypted_pem_with(password, key_file_iterations)?;
    let host_key_pem = host.to_encrypted_pem_with(password, key_file_iterations)?;
    let user_public_key = user.openssh_public_key()?;
    let host_public_key = host.openssh_public_key()?;
    let ca = SshCa::new(Some(Box::new(user)), Some(Box::new(host)))?;
    Ok(SshCaMaterial { user_key_pem, host_key_pem, user_public_key, host_public_key, ca })
}
