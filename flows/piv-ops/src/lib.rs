//! keystation-piv-ops: the PIV operations users know from ykman — `info`, `generate`,
//! `certificate import/export/request/generate/delete`, `attest`, `reset`; with feature
//! `enroll`, `enroll` (attested enrollment with a keystation authority, over its
//! `/1.0/sign-attested` or ACME device-attest-01) — over
//! keystation-piv on any [`Card`], with certificates and requests from keystation-x509;
//! and the pieces other flows reuse (the kube setup): [`Access`], [`Pin`],
//! [`authenticate`], slot names, certificate serials and validity.
//!
//! Secrets come from files ([`Access`]) or the terminal, never from the command line, and
//! stay in zeroizing memory. The management key is,
//! in order: the file's, the PIN-protected one ykman stores (ADMIN DATA flag `02`, key
//! in PRINTED), or the factory default.

use std::io::Write;
use std::path::{Path, PathBuf};

use keystation_core::key::{KeyAlgorithm, PublicKey};
use keystation_core::keygen::{KeyOrigin, PinPolicy, PivSlot, RetiredSlot, TouchPolicy};
use keystation_core::{Card, SecretBytes};
use keystation_piv::{ManagementAlgorithm, ManagementKey, PivCard};
use keystation_x509::{CertificateOptions, DistinguishedName, ExtendedKeyUsage, Validity};

#[cfg(feature = "enroll")]
mod enroll;
#[cfg(feature = "enroll")]
pub use enroll::{EnrollAuthority, EnrollOptions};

/// What went wrong in a PIV operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
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
    /// Writing output failed.
    #[error("writing output: {0}")]
    Io(#[from] std::io::Error),
    /// The certificate authority could not be reached, or refused (`piv enroll`).
    #[cfg(feature = "enroll")]
    #[error("{what}")]
    Authority {
        /// What was being done.
        what: String,
        /// The client's error: the authority's status and message for a refusal.
        #[source]
        source: keystation_ca_client::Error,
    },
    /// The ACME server could not be reached, refused, or did not accept the attestation
    /// (`piv enroll --acme`).
    #[cfg(feature = "enroll")]
    #[error("{what}")]
    Acme {
        /// What was being done.
        what: String,
        /// The client's error: the server's problem document for a refusal (boxed: it
        /// carries the whole document).
        #[source]
        source: Box<keystation_acme_client::Error>,
    },
}

fn piv_err(what: impl Into<String>) -> impl FnOnce(keystation_piv::Error) -> Error {
    let what = what.into();
    move |source| Error::Piv { what, source }
}

fn x509_err(what: impl Into<String>) -> impl FnOnce(keystation_x509::Error) -> Error {
    let what = what.into();
    move |source| Error::X509 { what, source }
}

/// Parses a PIV slot name as ykman writes it: `9a`, `9c`, `9d`, `9e`, or a retired slot
/// `82`…`95`; the names `authentication`, `signature`, `key-management` and
/// `card-authentication` too.
pub fn parse_slot_name(text: &str) -> Result<PivSlot, Error> {
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
            Error::Usage(format!(
                "unknown PIV slot {text:?}: use 9a, 9c, 9d, 9e or a retired slot 82-95"
            ))
        })
}

/// A slot as ykman names it (`9a`).
pub fn slot_name(slot: PivSlot) -> String {
    format!("{:02x}", slot.key_reference())
}

/// Where the PIN and management key come from.
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// The PIN's file; without one the PIN is asked for on the terminal when needed.
    pub pin_file: Option<PathBuf>,
    /// The management key's file (hex); without one, the PIN-protected key if the card
    /// has one, else the factory default.
    pub management_key_file: Option<PathBuf>,
}

/// A PIV operation, as `keystation piv` offers them.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum PivOperation {
    /// Report the application: version, serial, PIN tries, management key, and each
    /// slot's key and certificate.
    Info,
    /// Generate a key on the card and write its public key (PEM).
    Generate(GenerateOptions),
    /// Work with the certificate in a slot.
    Certificate(CertificateOperation),
    /// Attest a key generated on the card and verify the attestation chain.
    Attest(AttestOptions),
    /// Generate a key on the card, attest it, have a keystation authority certify it
    /// (YubiKey attestation provisioner, or ACME device-attest-01) and write the
    /// certificate to the slot.
    #[cfg(feature = "enroll")]
    Enroll(EnrollOptions),
    /// Reset the application: every key and certificate goes; PIN 123456, PUK
    /// 12345678, default management key. Refused unless `force`.
    Reset {
        /// The user confirmed.
        force: bool,
    },
}

/// What [`PivOperation::Generate`] makes.
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    /// The slot.
    pub slot: PivSlot,
    /// The algorithm.
    pub algorithm: KeyAlgorithm,
    /// When the card asks for the PIN before using the key.
    pub pin_policy: PinPolicy,
    /// When the card waits for a touch before using the key.
    pub touch_policy: TouchPolicy,
    /// Where the public key goes; `None`: the output.
    pub out: Option<PathBuf>,
    /// PIN and management key.
    pub access: Access,
}

/// What [`PivOperation::Certificate`] does.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum CertificateOperation {
    /// Write a certificate (PEM or DER file) into a slot, gzip-compressed if `compress`.
    Import {
        /// The slot.
        slot: PivSlot,
        /// The certificate file.
        file: PathBuf,
        /// Store it gzip-compressed.
        compress: bool,
        /// PIN and management key.
        access: Access,
    },
    /// Write out the certificate in a slot (PEM, or DER with `der`).
    Export {
        /// The slot (the attestation slot too).
        slot: PivSlot,
        /// Where it goes; `None`: the output.
        out: Option<PathBuf>,
        /// DER instead of PEM.
        der: bool,
    },
    /// Make a certificate signing request (PKCS#10) signed by the key in a slot.
    Request {
        /// The slot.
        slot: PivSlot,
        /// The subject, e.g. `CN=alice,O=team`.
        subject: String,
        /// The slot's public key (PEM file) for cards that cannot tell it.
        public_key: Option<PathBuf>,
        /// Where the request goes; `None`: the output.
        out: Option<PathBuf>,
        /// PIN and management key.
        access: Access,
    },
    /// Make a self-signed certificate for the key in a slot and store it there.
    Generate {
        /// The slot.
        slot: PivSlot,
        /// The subject.
        subject: String,
        /// The slot's public key (PEM file) for cards that cannot tell it.
        public_key: Option<PathBuf>,
        /// Days of validity.
        days: u32,
        /// PIN and management key.
        access: Access,
    },
    /// Delete the certificate in a slot.
    Delete {
        /// The slot.
        slot: PivSlot,
        /// PIN and management key.
        access: Access,
    },
}

/// What [`PivOperation::Attest`] checks.
#[derive(Debug, Clone)]
pub struct AttestOptions {
    /// The slot.
    pub slot: PivSlot,
    /// Root certificates (PEM file) trusted instead of the Yubico roots.
    pub roots: Option<PathBuf>,
    /// Intermediate certificates (PEM file) between the device certificate and the root.
    pub intermediates: Option<PathBuf>,
    /// Where the attestation and device certificates (PEM) go.
    pub out: Option<PathBuf>,
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
    pub fn get(&mut self) -> Result<SecretBytes, Error> {
        if let Some(value) = &self.value {
            return Ok(value.clone());
        }
        let value = match &self.file {
            Some(path) => read_secret_file(path, "cannot read the PIN file")?,
            None => {
                let typed = rpassword::prompt_password("PIV PIN: ").map_err(|_| {
                    Error::Usage("the PIN is needed and there is no terminal to ask on: give --pin-file FILE".into())
                })?;
                let typed = zeroize::Zeroizing::new(typed);
                SecretBytes::copy_from(typed.trim_end_matches(['\r', '\n']).as_bytes())
            }
        };
        self.value = Some(value.clone());
        Ok(value)
    }

    /// Verifies the PIN on the card.
    pub fn verify(&mut self, piv: &mut PivCard<'_>) -> Result<(), Error> {
        let pin = self.get()?;
        piv.verify_pin(&pin).map_err(piv_err("PIN verification failed"))?;
        piv.remember_pin(pin).map_err(piv_err("PIN verification failed"))
    }
}

/// The largest PIN or management key file read: far above any real one, small enough that
/// a wrong path (a disk image, `/dev/zero`) fails at once.
pub const MAX_SECRET_FILE_BYTES: u64 = 64 * 1024;

/// At most `max` bytes of the file at `path`, in zeroizing memory.
fn read_capped(path: &Path, max: u64) -> std::io::Result<zeroize::Zeroizing<Vec<u8>>> {
    keystation_core::secret::read_capped(std::fs::File::open(path)?, max)
}

/// A file's bytes without trailing line ends, in zeroizing memory.
pub fn read_secret_file(path: &Path, what: &'static str) -> Result<SecretBytes, Error> {
    let bytes = SecretBytes::new(
        read_capped(path, MAX_SECRET_FILE_BYTES)
            .map_err(|source| Error::File { what, path: path.into(), source })?
            .to_vec(),
    );
    let text = bytes.expose();
    let end = text.iter().rposition(|b| !matches!(b, b'\n' | b'\r' | b' ')).map_or(0, |i| i + 1);
    Ok(SecretBytes::copy_from(&text[..end]))
}

/// Authenticates with the management key (see the module documentation).
pub fn authenticate(piv: &mut PivCard<'_>, access: &Access, pin: &mut Pin) -> Result<(), Error> {
    let key = if let Some(path) = &access.management_key_file {
        let hex = read_secret_file(path, "cannot read the management key file")?;
        let bytes = decode_hex(hex.expose()).ok_or_else(|| {
            Error::Usage(format!("{}: the management key must be hex", path.display()))
        })?;
        let algorithm = match bytes.len() {
            16 => ManagementAlgorithm::Aes128,
            32 => ManagementAlgorithm::Aes256,
            24 => ManagementAlgorithm::TripleDes,
            n => {
                return Err(Error::Usage(format!(
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
                .ok_or_else(|| Error::Usage("ADMIN DATA says the management key is PIN-protected, but PRINTED holds none".into()))?
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
) -> Result<PublicKey, Error> {
    let name = slot_name(slot);
    let given = given.map(read_public_key_file).transpose()?;
    match piv.public_key(slot) {
        Ok(Some(public)) => {
            if given.as_ref().is_some_and(|g| *g != public) {
                return Err(Error::Usage(format!("--public-key is not the key in slot {name}")));
            }
            return Ok(public);
        }
        Err(keystation_piv::Error::NoKey { .. }) => {
            return Err(Error::Usage(format!(
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
            Error::Usage(format!(
                "cannot tell the public key of slot {name}: the card has no metadata and the slot no certificate; give the key `piv generate` printed with --public-key FILE"
            ))
        })?;
    keystation_x509::Certificate::from_der(&der)
        .and_then(|c| c.public_key())
        .map_err(x509_err(format!("the certificate in slot {name}")))
}

/// The PEM blocks of a file.
fn read_pem_file(path: &Path) -> Result<Vec<keystation_x509::pem::PemBlock>, Error> {
    let bytes = read_file(path)?;
    let text = String::from_utf8_lossy(&bytes);
    keystation_x509::pem::decode_all(&text).map_err(x509_err(format!("{}", path.display())))
}

fn read_public_key_file(path: &Path) -> Result<PublicKey, Error> {
    let blocks = read_pem_file(path)?;
    let spki = blocks
        .iter()
        .find(|b| b.label == "PUBLIC KEY")
        .ok_or_else(|| Error::Usage(format!("{} holds no PEM public key", path.display())))?;
    keystation_x509::public_key_from_spki(&spki.der)
        .map_err(x509_err(format!("{} is not a usable public key", path.display())))
}

/// A random positive 16-byte certificate serial (RFC 5280 §4.1.2.2).
pub fn random_serial() -> Result<Vec<u8>, Error> {
    let mut serial = vec![0u8; 16];
    keystation_core::keygen::RandomSource::fill(&mut keystation_keygen::OsRandom, &mut serial)
        .map_err(|_| Error::Usage("the random source failed".into()))?;
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
fn emit(out: &mut dyn Write, file: Option<&Path>, bytes: &[u8]) -> Result<(), Error> {
    match file {
        Some(path) => std::fs::write(path, bytes).map_err(|source| Error::File {
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
fn read_file(path: &Path) -> Result<zeroize::Zeroizing<Vec<u8>>, Error> {
    read_capped(path, MAX_FILE_BYTES).map_err(|source| Error::File {
        what: "cannot read",
        path: path.into(),
        source,
    })
}

fn read_certificate_file(path: &Path) -> Result<keystation_x509::Certificate, Error> {
    let bytes = read_file(path)?;
    let parsed = if bytes.starts_with(b"-----") || bytes.iter().take(64).all(u8::is_ascii) {
        keystation_x509::Certificate::from_pem(&String::from_utf8_lossy(&bytes))
    } else {
        keystation_x509::Certificate::from_der(&bytes)
    };
    parsed.map_err(x509_err(format!("{} is not a certificate", path.display())))
}

fn read_pem_certificates(path: &Path) -> Result<Vec<Vec<u8>>, Error> {
    let blocks = read_pem_file(path)?;
    let certificates: Vec<Vec<u8>> =
        blocks.into_iter().filter(|b| b.label == "CERTIFICATE").map(|b| b.der.clone()).collect();
    if certificates.is_empty() {
        return Err(Error::Usage(format!("{} holds no PEM certificate", path.display())));
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

/// Runs `operation` on the PIV application of `card`, writing what it reports to `out`.
pub fn run(
    card: &mut dyn Card,
    operation: &PivOperation,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let mut piv = PivCard::select(card).map_err(piv_err("cannot select the PIV application"))?;
    match operation {
        PivOperation::Info => info(&mut piv, out)?,
        PivOperation::Generate(args) => {
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
        PivOperation::Certificate(operation) => certificate(&mut piv, operation, out)?,
        PivOperation::Attest(args) => attest(&mut piv, args, out)?,
        #[cfg(feature = "enroll")]
        PivOperation::Enroll(args) => enroll::enroll(&mut piv, args, out)?,
        PivOperation::Reset { force } => {
            if !force {
                return Err(Error::Usage(
                    "reset deletes every PIV key and certificate on the card: add --force to proceed".into(),
                ));
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

fn info(piv: &mut PivCard<'_>, out: &mut dyn Write) -> Result<(), Error> {
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
                let origin = match origin {
                    KeyOrigin::Card => "Generated",
                    KeyOrigin::Host => "Imported",
                };
                writeln!(out, "  Origin:           {origin}")?;
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
    operation: &CertificateOperation,
    out: &mut dyn Write,
) -> Result<(), Error> {
    match operation {
        CertificateOperation::Import { slot, file, compress, access } => {
            let certificate = read_certificate_file(file)?;
            let name = slot_name(*slot);
            if let Some(on_card) = piv.public_key(*slot).ok().flatten() {
                let in_file =
                    certificate.public_key().map_err(x509_err("the certificate's key"))?;
                if on_card != in_file {
                    return Err(Error::Usage(format!(
                        "the certificate's public key is not the key in slot {name}"
                    )));
                }
            }
            let mut pin = Pin::new(access.pin_file.clone());
            authenticate(piv, access, &mut pin)?;
            piv.write_certificate_with(*slot, certificate.der(), *compress)
                .map_err(piv_err(format!("cannot write the certificate into slot {name}")))?;
            writeln!(out, "Certificate for {} written to slot {name}", certificate.subject())?;
        }
        CertificateOperation::Export { slot, out: file, der } => {
            let name = slot_name(*slot);
            let certificate = piv
                .read_certificate(*slot)
                .map_err(piv_err(format!("cannot read the certificate in slot {name}")))?
                .ok_or_else(|| Error::Usage(format!("slot {name} holds no certificate")))?;
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
        CertificateOperation::Request { slot, subject, public_key, out: file, access } => {
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
        CertificateOperation::Generate { slot, subject, public_key, days, access } => {
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
        CertificateOperation::Delete { slot, access } => {
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

fn attest(piv: &mut PivCard<'_>, args: &AttestOptions, out: &mut dyn Write) -> Result<(), Error> {
    let name = slot_name(args.slot);
    let attestation =
        piv.attest(args.slot).map_err(piv_err(format!("the card cannot attest slot {name}")))?;
    let device = piv
        .attestation_certificate()
        .map_err(piv_err("cannot read the attestation certificate (slot f9)"))?
        .ok_or_else(|| Error::Usage("the card has no attestation certificate in slot f9".into()))?;
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
        std::fs::write(path, pem).map_err(|source| Error::File {
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
