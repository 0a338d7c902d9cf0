//! `keystation piv …`: the PIV commands users know from ykman — `info`, `generate`,
//! `certificate import/export/request/generate/delete`, `attest`, `reset` — over
//! keystation-piv, with certificates and requests from keystation-x509.
//!
//! Secrets come from files (`--pin-file`, `--management-key-file`) or the terminal,
//! never from the command line, and stay in zeroizing memory. The management key is,
//! in order: the file's, the PIN-protected one ykman stores (ADMIN DATA flag `02`, key
//! in PRINTED), or the factory default.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use keystation_core::SecretBytes;
use keystation_core::key::{KeyAlgorithm, PublicKey, RsaBits};
use keystation_core::keygen::{PinPolicy, PivSlot, RetiredSlot, TouchPolicy};
use keystation_pcsc::{PcscCard, ShareMode};
use keystation_piv::{ManagementAlgorithm, ManagementKey, PivCard};
use keystation_x509::{CertificateOptions, DistinguishedName, ExtendedKeyUsage, Validity};

/// What went wrong in a `piv` command.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PivCmdError {
    /// No card, several cards, or PC/SC failed.
    #[error(transparent)]
    Acquire(#[from] crate::acquire::AcquireError),
    /// A card operation failed.
    #[error("{what}")]
    Piv {
        /// What was being done.
        what: String,
        /// The card's error.
        #[source]
        source: keystation_piv::Error,
    },
    /// A certificate, request or PEM problem.
    #[error("{what}")]
    X509 {
        /// What was being done.
        what: String,
        /// The cause.
        #[source]
        source: keystation_x509::Error,
    },
    /// A file could not be read or written.
    #[error("{what} {}", .path.display())]
    File {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A value given on the command line (or in a file) is unusable.
    #[error("{0}")]
    Usage(String),
}

fn piv_err(what: impl Into<String>) -> impl FnOnce(keystation_piv::Error) -> PivCmdError {
    let what = what.into();
    move |source| PivCmdError::Piv { what, source }
}

fn x509_err(what: impl Into<String>) -> impl FnOnce(keystation_x509::Error) -> PivCmdError {
    let what = what.into();
    move |source| PivCmdError::X509 { what, source }
}

/// Parses a PIV slot name as ykman writes it: `9a`, `9c`, `9d`, `9e`, or a retired slot
/// `82`…`95`; the names `authentication`, `signature`, `key-management` and
/// `card-authentication` too.
pub fn parse_slot_name(text: &str) -> Result<PivSlot, PivCmdError> {
    let lower = text.trim().to_ascii_lowercase();
    let named = match lower.as_str() {
        "authentication" | "auth" => Some(PivSlot::Authentication),
        "signature" | "sign" => Some(PivSlot::Signature),
        "key-management" | "key_management" => Some(PivSlot::KeyManagement),
        "card-authentication" | "card_authentication" => Some(PivSlot::CardAuthentication),
        _ => None,
    };
    named
        .or_else(|| {
            u8::from_str_radix(lower.trim_start_matches("0x"), 16)
                .ok()
                .and_then(PivSlot::from_key_reference)
                .filter(|slot| *slot != PivSlot::Attestation)
        })
        .ok_or_else(|| {
            PivCmdError::Usage(format!(
                "unknown PIV slot {text:?}: use 9a, 9c, 9d, 9e or a retired slot 82-95"
            ))
        })
}

/// A slot as ykman names it (`9a`).
pub fn slot_name(slot: PivSlot) -> String {
    format!("{:02x}", slot.key_reference())
}

/// Where the PIN and management key come from.
#[derive(Debug, Clone, Default, Args)]
pub struct AccessArgs {
    /// Read the PIN from this file (else it is asked for on the terminal when needed)
    #[arg(long, value_name = "FILE")]
    pub pin_file: Option<PathBuf>,
    /// Read the management key (hex) from this file [default: the PIN-protected key if the
    /// card has one, else the factory default]
    #[arg(long, value_name = "FILE")]
    pub management_key_file: Option<PathBuf>,
}

/// `keystation piv …`
#[derive(Debug, Subcommand)]
#[non_exhaustive]
pub enum PivCommand {
    /// Show the PIV application: version, serial, PIN tries, management key, and each
    /// slot's key and certificate.
    Info,
    /// Generate a key on the card in SLOT and print its public key (PEM).
    Generate(GenerateArgs),
    /// Certificates in slots.
    #[command(subcommand)]
    Certificate(CertificateCommand),
    /// Attest that the key in SLOT was generated on the card, verify the chain to the
    /// Yubico roots (or --roots), and print what the attestation says.
    Attest(AttestArgs),
    /// Reset the PIV application: every key and certificate goes; PIN 123456, PUK
    /// 12345678, default management key.
    Reset {
        /// Really reset.
        #[arg(long)]
        force: bool,
    },
}

/// `keystation piv generate`
#[derive(Debug, Clone, Args)]
pub struct GenerateArgs {
    /// The slot: 9a, 9c, 9d, 9e or a retired slot 82-95
    #[arg(value_parser = parse_slot_arg)]
    pub slot: PivSlot,
    /// p256, p384, rsa2048, rsa3072, rsa4096, ed25519 or x25519 (the last two on
    /// YubiKey 5.7)
    #[arg(long = "key-algorithm", id = "key_algorithm", default_value = "p256", value_parser = parse_algorithm)]
    pub algorithm: KeyAlgorithm,
    /// default, never, once or always
    #[arg(long = "key-pin-policy", id = "key_pin_policy", default_value = "default", value_parser = parse_pin_policy)]
    pub pin_policy: PinPolicy,
    /// default, never, always or cached
    #[arg(long = "key-touch-policy", id = "key_touch_policy", default_value = "default", value_parser = parse_touch_policy)]
    pub touch_policy: TouchPolicy,
    /// Write the public key here instead of stdout
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// PIN and management key.
    #[command(flatten)]
    pub access: AccessArgs,
}

/// `keystation piv certificate …`
#[derive(Debug, Subcommand)]
#[non_exhaustive]
pub enum CertificateCommand {
    /// Write a certificate (PEM or DER file) into SLOT.
    Import {
        /// The slot.
        #[arg(value_parser = parse_slot_arg)]
        slot: PivSlot,
        /// The certificate file.
        file: PathBuf,
        /// Store it gzip-compressed (for large certificates)
        #[arg(long)]
        compress: bool,
        /// PIN and management key.
        #[command(flatten)]
        access: AccessArgs,
    },
    /// Print the certificate in SLOT (PEM, or DER with --der).
    Export {
        /// The slot (f9 for the attestation certificate).
        #[arg(value_parser = parse_any_slot)]
        slot: PivSlot,
        /// Write here instead of stdout
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// DER instead of PEM (needs --out)
        #[arg(long, requires = "out")]
        der: bool,
    },
    /// Make a certificate signing request (PKCS#10) signed by the key in SLOT.
    Request {
        /// The slot.
        #[arg(value_parser = parse_slot_arg)]
        slot: PivSlot,
        /// Subject, e.g. "CN=alice,O=team"
        #[arg(long)]
        subject: String,
        /// The slot's public key (PEM, as `piv generate` prints it), for cards that
        /// cannot tell it (no GET METADATA, no certificate in the slot)
        #[arg(long, value_name = "FILE")]
        public_key: Option<PathBuf>,
        /// Write here instead of stdout
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// PIN and management key.
        #[command(flatten)]
        access: AccessArgs,
    },
    /// Make a self-signed certificate for the key in SLOT and store it there.
    Generate {
        /// The slot.
        #[arg(value_parser = parse_slot_arg)]
        slot: PivSlot,
        /// Subject, e.g. "CN=alice"
        #[arg(long)]
        subject: String,
        /// The slot's public key (PEM, as `piv generate` prints it), for cards that
        /// cannot tell it (no GET METADATA, no certificate in the slot)
        #[arg(long, value_name = "FILE")]
        public_key: Option<PathBuf>,
        /// Days of validity
        #[arg(long, default_value_t = 365)]
        days: u32,
        /// PIN and management key.
        #[command(flatten)]
        access: AccessArgs,
    },
    /// Delete the certificate in SLOT.
    Delete {
        /// The slot.
        #[arg(value_parser = parse_slot_arg)]
        slot: PivSlot,
        /// PIN and management key.
        #[command(flatten)]
        access: AccessArgs,
    },
}

/// `keystation piv attest`
#[derive(Debug, Clone, Args)]
pub struct AttestArgs {
    /// The slot.
    #[arg(value_parser = parse_slot_arg)]
    pub slot: PivSlot,
    /// Trust these root certificates (PEM) instead of the Yubico roots
    #[arg(long, value_name = "FILE")]
    pub roots: Option<PathBuf>,
    /// Intermediate certificates (PEM) between the device certificate and the root
    #[arg(long, value_name = "FILE")]
    pub intermediates: Option<PathBuf>,
    /// Write the attestation and device certificates (PEM) here
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

fn parse_slot_arg(text: &str) -> Result<PivSlot, String> {
    parse_slot_name(text).map_err(|e| e.to_string())
}

fn parse_any_slot(text: &str) -> Result<PivSlot, String> {
    if text.eq_ignore_ascii_case("f9") {
        return Ok(PivSlot::Attestation);
    }
    parse_slot_arg(text)
}

/// Parses an algorithm name as ykman and keystation's profile write them.
pub fn parse_algorithm(text: &str) -> Result<KeyAlgorithm, String> {
    match text.to_ascii_lowercase().as_str() {
        "p256" | "nistp256" | "eccp256" => Ok(KeyAlgorithm::NistP256),
        "p384" | "nistp384" | "eccp384" => Ok(KeyAlgorithm::NistP384),
        "rsa2048" => Ok(KeyAlgorithm::Rsa(RsaBits::Rsa2048)),
        "rsa3072" => Ok(KeyAlgorithm::Rsa(RsaBits::Rsa3072)),
        "rsa4096" => Ok(KeyAlgorithm::Rsa(RsaBits::Rsa4096)),
        "ed25519" => Ok(KeyAlgorithm::Ed25519),
        "x25519" => Ok(KeyAlgorithm::X25519),
        _ => Err(format!(
            "unknown algorithm {text:?}: use p256, p384, rsa2048, rsa3072, rsa4096, ed25519 or x25519"
        )),
    }
}

/// Parses a PIN policy.
pub fn parse_pin_policy(text: &str) -> Result<PinPolicy, String> {
    match text.to_ascii_lowercase().as_str() {
        "default" => Ok(PinPolicy::Default),
        "never" => Ok(PinPolicy::Never),
        "once" => Ok(PinPolicy::Once),
        "always" => Ok(PinPolicy::Always),
        _ => Err(format!("unknown PIN policy {text:?}: use default, never, once or always")),
    }
}

/// Parses a touch policy.
pub fn parse_touch_policy(text: &str) -> Result<TouchPolicy, String> {
    match text.to_ascii_lowercase().as_str() {
        "default" => Ok(TouchPolicy::Default),
        "never" => Ok(TouchPolicy::Never),
        "always" => Ok(TouchPolicy::Always),
        "cached" => Ok(TouchPolicy::Cached),
        _ => Err(format!("unknown touch policy {text:?}: use default, never, always or cached")),
    }
}

/// The one card present, connected exclusively.
pub fn connect(reader: Option<&str>) -> Result<PcscCard, PivCmdError> {
    let search = crate::acquire::Search {
        reader: reader.map(str::to_owned),
        retries: 0,
        interval: std::time::Duration::ZERO,
        share_mode: ShareMode::Exclusive,
    };
    Ok(crate::acquire::single_card(&search, &|| false)?)
}

/// The PIN, read once from `--pin-file` or the terminal, then kept (zeroized on drop).
#[derive(Default)]
pub struct Pin {
    file: Option<PathBuf>,
    value: Option<SecretBytes>,
}

impl Pin {
    /// A PIN source.
    pub fn new(file: Option<PathBuf>) -> Self {
        Self { file, value: None }
    }

    /// The PIN, reading or asking for it the first time.
    pub fn get(&mut self) -> Result<SecretBytes, PivCmdError> {
        if let Some(value) = &self.value {
            return Ok(value.clone());
        }
        let value = match &self.file {
            Some(path) => read_secret_file(path, "cannot read the PIN file")?,
            None => {
                let typed = rpassword::prompt_password("PIV PIN: ").map_err(|_| {
                    PivCmdError::Usage("the PIN is needed and there is no terminal to ask on: give --pin-file FILE".into())
                })?;
                let typed = zeroize::Zeroizing::new(typed);
                SecretBytes::copy_from(typed.trim_end_matches(['\r', '\n']).as_bytes())
            }
        };
        self.value = Some(value.clone());
        Ok(value)
    }

    /// Verifies the PIN on the card.
    pub fn verify(&mut self, piv: &mut PivCard<'_>) -> Result<(), PivCmdError> {
        let pin = self.get()?;
        piv.verify_pin(&pin).map_err(piv_err("PIN verification failed"))?;
        piv.remember_pin(pin).map_err(piv_err("PIN verification failed"))
    }
}

/// A file's bytes without trailing line ends, in zeroizing memory.
pub fn read_secret_file(path: &Path, what: &'static str) -> Result<SecretBytes, PivCmdError> {
    let bytes = SecretBytes::new(
        crate::config::read_capped(path, crate::config::MAX_SECRET_FILE_BYTES)
            .map_err(|source| PivCmdError::File { what, path: path.into(), source })?
            .to_vec(),
    );
    let text = bytes.expose();
    let end = text.iter().rposition(|b| !matches!(b, b'\n' | b'\r' | b' ')).map_or(0, |i| i + 1);
    Ok(SecretBytes::copy_from(&text[..end]))
}

/// Authenticates with the management key (see the module documentation).
pub fn authenticate(
    piv: &mut PivCard<'_>,
    access: &AccessArgs,
    pin: &mut Pin,
) -> Result<(), PivCmdError> {
    let key = if let Some(path) = &access.management_key_file {
        let hex = read_secret_file(path, "cannot read the management key file")?;
        let bytes = decode_hex(hex.expose()).ok_or_else(|| {
            PivCmdError::Usage(format!("{}: the management key must be hex", path.display()))
        })?;
        let algorithm = match bytes.len() {
            16 => ManagementAlgorithm::Aes128,
            32 => ManagementAlgorithm::Aes256,
            24 => ManagementAlgorithm::TripleDes,
            n => {
                return Err(PivCmdError::Usage(format!(
                    "a management key of {n} bytes: expected 16, 24 or 32"
                )));
            }
        };
        // authenticate() takes the algorithm from the card's metadata where it has it
        // (24 bytes may be AES-192).
        ManagementKey::new(algorithm, bytes).map_err(piv_err("bad management key"))?
    } else {
        let protected = piv
            .admin_data()
            .map_err(piv_err("cannot read ADMIN DATA"))?
            .is_some_and(|a| a.flags & keystation_piv::AdminData::MGMT_KEY_STORED != 0);
        if protected {
            pin.verify(piv)?;
            piv.pin_protected_management_key()
                .map_err(piv_err("cannot read the PIN-protected management key"))?
                .ok_or_else(|| PivCmdError::Usage("ADMIN DATA says the management key is PIN-protected, but PRINTED holds none".into()))?
        } else {
            ManagementKey::factory_default()
        }
    };
    piv.authenticate(&key).map_err(piv_err(
        "management key authentication failed (give the card's key with --management-key-file)",
    ))
}

fn decode_hex(text: &[u8]) -> Option<SecretBytes> {
    let text: Vec<u8> = text.iter().copied().filter(|b| !b.is_ascii_whitespace()).collect();
    let text = SecretBytes::new(text);
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let nibble = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(text.len() / 2);
    for pair in text.expose().chunks(2) {
        out.push(nibble(pair[0])? << 4 | nibble(pair[1])?);
    }
    Some(SecretBytes::new(out))
}

/// The public key of the key in `slot`: from the metadata (YubiKey 5.3+), else from the
/// slot's certificate.
pub fn slot_public_key(
    piv: &mut PivCard<'_>,
    slot: PivSlot,
    given: Option<&Path>,
) -> Result<PublicKey, PivCmdError> {
    let name = slot_name(slot);
    let given = given.map(read_public_key_file).transpose()?;
    match piv.public_key(slot) {
        Ok(Some(public)) => {
            if given.as_ref().is_some_and(|g| *g != public) {
                return Err(PivCmdError::Usage(format!(
                    "--public-key is not the key in slot {name}"
                )));
            }
            return Ok(public);
        }
        Err(keystation_piv::Error::NoKey { .. }) => {
            return Err(PivCmdError::Usage(format!(
                "slot {name} holds no key: generate one with `keystation piv generate {name}`"
            )));
        }
        _ => {}
    }
    if let Some(public) = given {
        return Ok(public);
    }
    let der = piv
        .read_certificate(slot)
        .map_err(piv_err(format!("cannot read the certificate in slot {name}")))?
        .ok_or_else(|| {
            PivCmdError::Usage(format!(
                "cannot tell the public key of slot {name}: the card has no metadata and the slot no certificate; give the key `piv generate` printed with --public-key FILE"
            ))
        })?;
    keystation_x509::Certificate::from_der(&der)
        .and_then(|c| c.public_key())
        .map_err(x509_err(format!("the certificate in slot {name}")))
}

/// The PEM blocks of a file.
fn read_pem_file(path: &Path) -> Result<Vec<keystation_x509::pem::PemBlock>, PivCmdError> {
    let bytes = read_file(path)?;
    let text = String::from_utf8_lossy(&bytes);
    keystation_x509::pem::decode_all(&text).map_err(x509_err(format!("{}", path.display())))
}

fn read_public_key_file(path: &Path) -> Result<PublicKey, PivCmdError> {
    let blocks = read_pem_file(path)?;
    let spki = blocks
        .iter()
        .find(|b| b.label == "PUBLIC KEY")
        .ok_or_else(|| PivCmdError::Usage(format!("{} holds no PEM public key", path.display())))?;
    keystation_x509::public_key_from_spki(&spki.der)
        .map_err(x509_err(format!("{} is not a usable public key", path.display())))
}

/// A random positive 16-byte certificate serial (RFC 5280 §4.1.2.2).
pub fn random_serial() -> Result<Vec<u8>, PivCmdError> {
    let mut serial = vec![0u8; 16];
    keystation_core::keygen::RandomSource::fill(&mut keystation_keygen::OsRandom, &mut serial)
        .map_err(|_| PivCmdError::Usage("the random source failed".into()))?;
    serial[0] = (serial[0] & 0x7F) | 0x40;
    Ok(serial)
}

/// The validity `days` long from a minute ago (clock skew).
pub fn validity_days(days: u32) -> Validity {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    Validity { not_before: now.saturating_sub(60), not_after: now + u64::from(days) * 86_400 }
}

/// Writes `text` to `out` or to the file.
fn emit(out: &mut dyn Write, file: Option<&Path>, bytes: &[u8]) -> Result<(), crate::Error> {
    match file {
        Some(path) => std::fs::write(path, bytes).map_err(|source| PivCmdError::File {
            what: "cannot write",
            path: path.into(),
            source,
        })?,
        None => out.write_all(bytes)?,
    }
    Ok(())
}

/// The largest key, certificate or request file `piv` reads (a certificate chain fits in
/// a fraction of it).
const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// A key, certificate or request file, at most [`MAX_FILE_BYTES`].
fn read_file(path: &Path) -> Result<zeroize::Zeroizing<Vec<u8>>, PivCmdError> {
    crate::config::read_capped(path, MAX_FILE_BYTES).map_err(|source| PivCmdError::File {
        what: "cannot read",
        path: path.into(),
        source,
    })
}

fn read_certificate_file(path: &Path) -> Result<keystation_x509::Certificate, PivCmdError> {
    let bytes = read_file(path)?;
    let parsed = if bytes.starts_with(b"-----") || bytes.iter().take(64).all(u8::is_ascii) {
        keystation_x509::Certificate::from_pem(&String::from_utf8_lossy(&bytes))
    } else {
        keystation_x509::Certificate::from_der(&bytes)
    };
    parsed.map_err(x509_err(format!("{} is not a certificate", path.display())))
}

fn read_pem_certificates(path: &Path) -> Result<Vec<Vec<u8>>, PivCmdError> {
    let blocks = read_pem_file(path)?;
    let certificates: Vec<Vec<u8>> =
        blocks.into_iter().filter(|b| b.label == "CERTIFICATE").map(|b| b.der.clone()).collect();
    if certificates.is_empty() {
        return Err(PivCmdError::Usage(format!("{} holds no PEM certificate", path.display())));
    }
    Ok(certificates)
}

/// The slots `info` lists: the four standard ones always, retired ones when used.
fn info_slots() -> Vec<PivSlot> {
    let mut slots = vec![
        PivSlot::Authentication,
        PivSlot::Signature,
        PivSlot::KeyManagement,
        PivSlot::CardAuthentication,
    ];
    slots.extend((1..=20).filter_map(RetiredSlot::new).map(PivSlot::Retired));
    slots
}

fn slot_title(slot: PivSlot) -> &'static str {
    match slot {
        PivSlot::Authentication => "AUTHENTICATION",
        PivSlot::Signature => "SIGNATURE",
        PivSlot::KeyManagement => "KEY_MANAGEMENT",
        PivSlot::CardAuthentication => "CARD_AUTH",
        PivSlot::Retired(_) => "RETIRED",
        PivSlot::Attestation => "ATTESTATION",
    }
}

/// Runs a `piv` command.
pub fn run(
    command: &PivCommand,
    reader: Option<&str>,
    out: &mut dyn Write,
) -> Result<(), crate::Error> {
    let mut card = connect(reader)?;
    let mut piv =
        PivCard::select(&mut card).map_err(piv_err("cannot select the PIV application"))?;
    match command {
        PivCommand::Info => info(&mut piv, out)?,
        PivCommand::Generate(args) => {
            let mut pin = Pin::new(args.access.pin_file.clone());
            authenticate(&mut piv, &args.access, &mut pin)?;
            let public = piv
                .generate(args.slot, args.algorithm, args.pin_policy, args.touch_policy)
                .map_err(piv_err(format!(
                    "cannot generate a key in slot {}",
                    slot_name(args.slot)
                )))?;
            let pem = keystation_x509::pem::encode("PUBLIC KEY", &public.to_spki_der());
            emit(out, args.out.as_deref(), pem.as_bytes())?;
        }
        PivCommand::Certificate(command) => certificate(&mut piv, command, out)?,
        PivCommand::Attest(args) => attest(&mut piv, args, out)?,
        PivCommand::Reset { force } => {
            if !force {
                return Err(PivCmdError::Usage(
                    "reset deletes every PIV key and certificate on the card: add --force to proceed".into(),
                )
                .into());
            }
            piv.reset().map_err(piv_err("PIV reset failed"))?;
            writeln!(
                out,
                "PIV application reset: PIN 123456, PUK 12345678, default management key"
            )?;
        }
    }
    Ok(())
}

fn info(piv: &mut PivCard<'_>, out: &mut dyn Write) -> Result<(), crate::Error> {
    match piv.version() {
        Some(v) => writeln!(out, "PIV version:              {}.{}.{}", v.0, v.1, v.2)?,
        None => writeln!(out, "PIV version:              not reported (not a YubiKey)")?,
    }
    if let Ok(Some(serial)) = piv.serial() {
        writeln!(out, "Serial number:            {serial}")?;
    }
    match piv.pin_tries_left() {
        Ok(tries) => writeln!(out, "PIN tries remaining:      {tries}")?,
        Err(error) => writeln!(out, "PIN tries remaining:      unknown ({error})")?,
    }
    if let Ok(Some(metadata)) = piv.metadata(0x9B) {
        let algorithm =
            metadata.algorithm.map_or_else(|| "unknown".into(), |a| a.name().to_owned());
        writeln!(out, "Management key algorithm: {algorithm}")?;
        if metadata.default_value == Some(true) {
            writeln!(out, "WARNING: the default management key is in use")?;
        }
    }
    if let Ok(Some(admin)) = piv.admin_data()
        && admin.flags & keystation_piv::AdminData::MGMT_KEY_STORED != 0
    {
        writeln!(out, "Management key is stored on the card, protected by the PIN.")?;
    }
    let present = |found: Result<Option<Vec<u8>>, keystation_piv::Error>| match found {
        Ok(Some(_)) => "present",
        _ => "No data available",
    };
    writeln!(out, "CHUID:                    {}", present(piv.chuid()))?;
    writeln!(out, "CCC:                      {}", present(piv.ccc()))?;
    for slot in info_slots() {
        let metadata = piv.metadata(slot.key_reference()).ok().flatten();
        let certificate = piv.read_certificate(slot).ok().flatten();
        let standard = !matches!(slot, PivSlot::Retired(_));
        if !standard && metadata.is_none() && certificate.is_none() {
            continue;
        }
        writeln!(out, "Slot {} ({}):", slot_name(slot).to_uppercase(), slot_title(slot))?;
        if let Some(metadata) = &metadata {
            if let Some(algorithm) = metadata.algorithm {
                writeln!(out, "  Private key type: {}", algorithm.name())?;
            }
            if let Some(policy) = metadata.pin_policy {
                writeln!(out, "  PIN policy:       {policy:?}")?;
            }
            if let Some(policy) = metadata.touch_policy {
                writeln!(out, "  Touch policy:     {policy:?}")?;
            }
            if let Some(origin) = metadata.origin {
                writeln!(out, "  Origin:           {origin:?}")?;
            }
        }
        match certificate.as_deref().map(keystation_x509::Certificate::from_der) {
            Some(Ok(cert)) => {
                if let Ok(key) = cert.public_key() {
                    writeln!(out, "  Public key type:  {}", key.algorithm())?;
                }
                writeln!(out, "  Subject DN:       {}", cert.subject())?;
                writeln!(out, "  Issuer DN:        {}", cert.issuer())?;
                writeln!(out, "  Serial:           {}", cert.serial_hex())?;
                let fingerprint: String =
                    cert.fingerprint_sha256().iter().map(|b| format!("{b:02x}")).collect();
                writeln!(out, "  Fingerprint:      {fingerprint}")?;
                writeln!(
                    out,
                    "  Not before:       {}",
                    keystation_x509::rfc3339(cert.not_before())
                )?;
                writeln!(
                    out,
                    "  Not after:        {}",
                    keystation_x509::rfc3339(cert.not_after())
                )?;
            }
            Some(Err(error)) => writeln!(out, "  Certificate:      does not parse ({error})")?,
            None if metadata.is_none() => writeln!(out, "  Empty")?,
            None => {}
        }
    }
    Ok(())
}

fn certificate(
    piv: &mut PivCard<'_>,
    command: &CertificateCommand,
    out: &mut dyn Write,
) -> Result<(), crate::Error> {
    match command {
        CertificateCommand::Import { slot, file, compress, access } => {
            let certificate = read_certificate_file(file)?;
            let name = slot_name(*slot);
            if let Some(on_card) = piv.public_key(*slot).ok().flatten() {
                let in_file =
                    certificate.public_key().map_err(x509_err("the certificate's key"))?;
                if on_card != in_file {
                    return Err(PivCmdError::Usage(format!(
                        "the certificate's public key is not the key in slot {name}"
                    ))
                    .into());
                }
            }
            let mut pin = Pin::new(access.pin_file.clone());
            authenticate(piv, access, &mut pin)?;
            piv.write_certificate_with(*slot, certificate.der(), *compress)
                .map_err(piv_err(format!("cannot write the certificate into slot {name}")))?;
            writeln!(out, "Certificate for {} written to slot {name}", certificate.subject())?;
        }
        CertificateCommand::Export { slot, out: file, der } => {
            let name = slot_name(*slot);
            let certificate = piv
                .read_certificate(*slot)
                .map_err(piv_err(format!("cannot read the certificate in slot {name}")))?
                .ok_or_else(|| PivCmdError::Usage(format!("slot {name} holds no certificate")))?;
            if *der {
                emit(out, file.as_deref(), &certificate)?;
            } else {
                emit(
                    out,
                    file.as_deref(),
                    keystation_x509::pem::encode("CERTIFICATE", &certificate).as_bytes(),
                )?;
            }
        }
        CertificateCommand::Request { slot, subject, public_key, out: file, access } => {
            let subject = DistinguishedName::parse(subject).map_err(x509_err("bad --subject"))?;
            let public = slot_public_key(piv, *slot, public_key.as_deref())?;
            let mut pin = Pin::new(access.pin_file.clone());
            pin.verify(piv)?;
            let mut signer = keystation_piv::PivSigner::new(piv, *slot, public);
            let options = CertificateOptions {
                extended_key_usage: vec![ExtendedKeyUsage::ClientAuth],
                ..CertificateOptions::default()
            };
            let csr = keystation_x509::build_csr(&mut signer, &subject, &options)
                .map_err(x509_err("the card could not sign the request"))?;
            emit(
                out,
                file.as_deref(),
                keystation_x509::pem::encode("CERTIFICATE REQUEST", &csr).as_bytes(),
            )?;
        }
        CertificateCommand::Generate { slot, subject, public_key, days, access } => {
            let name = slot_name(*slot);
            let subject = DistinguishedName::parse(subject).map_err(x509_err("bad --subject"))?;
            let mut pin = Pin::new(access.pin_file.clone());
            authenticate(piv, access, &mut pin)?;
            let public = slot_public_key(piv, *slot, public_key.as_deref())?;
            pin.verify(piv)?;
            let serial = random_serial()?;
            let der = {
                let mut signer = keystation_piv::PivSigner::new(piv, *slot, public);
                keystation_x509::self_signed_certificate(
                    &mut signer,
                    &subject,
                    &serial,
                    validity_days(*days),
                    &CertificateOptions::default(),
                )
                .map_err(x509_err("the card could not sign the certificate"))?
            };
            piv.write_certificate(*slot, &der)
                .map_err(piv_err(format!("cannot write the certificate into slot {name}")))?;
            writeln!(out, "Self-signed certificate for {subject} written to slot {name}")?;
        }
        CertificateCommand::Delete { slot, access } => {
            let name = slot_name(*slot);
            let mut pin = Pin::new(access.pin_file.clone());
            authenticate(piv, access, &mut pin)?;
            piv.delete_certificate(*slot)
                .map_err(piv_err(format!("cannot delete the certificate in slot {name}")))?;
            writeln!(out, "Certificate in slot {name} deleted")?;
        }
    }
    Ok(())
}

fn attest(
    piv: &mut PivCard<'_>,
    args: &AttestArgs,
    out: &mut dyn Write,
) -> Result<(), crate::Error> {
    let name = slot_name(args.slot);
    let attestation =
        piv.attest(args.slot).map_err(piv_err(format!("the card cannot attest slot {name}")))?;
    let device = piv
        .attestation_certificate()
        .map_err(piv_err("cannot read the attestation certificate (slot f9)"))?
        .ok_or_else(|| {
            PivCmdError::Usage("the card has no attestation certificate in slot f9".into())
        })?;
    let roots = match &args.roots {
        Some(path) => read_pem_certificates(path)?,
        None => keystation_x509::attestation::yubico_roots(),
    };
    let intermediates = match &args.intermediates {
        Some(path) => read_pem_certificates(path)?,
        None => Vec::new(),
    };
    let verified = keystation_x509::attestation::verify_piv_attestation(
        &attestation,
        &device,
        &intermediates,
        &roots,
    )
    .map_err(x509_err(format!("the attestation of slot {name} does not verify")))?;
    writeln!(out, "Attestation of slot {name}: verified")?;
    writeln!(out, "  Root:             {}", verified.root.subject())?;
    writeln!(out, "  Device:           {}", verified.device.subject())?;
    if let Some(serial) = verified.serial {
        writeln!(out, "  Serial:           {serial}")?;
    }
    if let Some(v) = verified.firmware {
        writeln!(out, "  Firmware:         {}.{}.{}", v.major, v.minor, v.patch)?;
    }
    if let Some(policy) = verified.pin_policy() {
        writeln!(out, "  PIN policy:       {policy:?}")?;
    }
    if let Some(policy) = verified.touch_policy() {
        writeln!(out, "  Touch policy:     {policy:?}")?;
    }
    writeln!(out, "  Key:              {}", verified.public_key.algorithm())?;
    if let Some(path) = &args.out {
        let mut pem = keystation_x509::pem::encode("CERTIFICATE", &attestation);
        pem.push_str(&keystation_x509::pem::encode("CERTIFICATE", &device));
        std::fs::write(path, pem).map_err(|source| PivCmdError::File {
            what: "cannot write",
            path: path.clone(),
            source,
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn names_parse_and_bad_ones_say_what_is_allowed() {
        assert_eq!(parse_algorithm("ECCP256"), Ok(KeyAlgorithm::NistP256));
        assert_eq!(parse_algorithm("rsa2048"), Ok(KeyAlgorithm::Rsa(RsaBits::Rsa2048)));
        assert!(parse_algorithm("dsa").unwrap_err().contains("p256"));
        assert_eq!(parse_pin_policy("Once"), Ok(PinPolicy::Once));
        assert!(parse_pin_policy("sometimes").unwrap_err().contains("always"));
        assert_eq!(parse_touch_policy("cached"), Ok(TouchPolicy::Cached));
        assert_eq!(parse_any_slot("F9"), Ok(PivSlot::Attestation));
        assert!(parse_slot_arg("f9").is_err());
    }

    #[test]
    fn hex_keys_decode() {
        let key = decode_hex(b"0102 0304\n").unwrap();
        assert_eq!(key.expose(), &[1, 2, 3, 4]);
        assert!(decode_hex(b"012").is_none());
        assert!(decode_hex(b"zz").is_none());
    }

    #[test]
    fn serials_are_positive_and_nonzero_leading() {
        let serial = random_serial().unwrap();
        assert_eq!(serial.len(), 16);
        assert_eq!(serial[0] & 0xC0, 0x40);
    }
}
