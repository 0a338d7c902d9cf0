//! One provisioning job on an OpenPGP card: the station's main job and `keystation
//! provision`.
//!
//! The flow, in card commands (OpenPGP card 3.4.1 section numbers):
//!
//! 1. SELECT the application and read the application related data once (§7.2.1,
//!    §4.4.3.1); a terminated application is activated first (§7.2.17).
//! 2. Factory reset unless the profile says not to: block PW1 and PW3, TERMINATE DF,
//!    ACTIVATE FILE (§7.2.16–17). Keys, PINs and data objects of the previous holder are
//!    gone.
//! 3. VERIFY PW3 (§7.2.2).
//! 4. For the signature, decryption and authentication keys: algorithm attributes
//!    (PUT DATA `C1`–`C3`, §4.4.3.10), then GENERATE ASYMMETRIC KEY PAIR on the card
//!    (§7.2.14) or, with host-generated keys, the key import (§4.4.3.12).
//! 5. The OpenPGP certificate: the signature key is the primary key; the card makes the
//!    user ID certification and both subkey binding signatures (PSO:COMPUTE DIGITAL
//!    SIGNATURE, §7.2.10, after VERIFY PW1 `81`).
//! 6. Fingerprints and generation times (PUT DATA `C7`–`C9`, `CE`–`D0`) so that gpg links
//!    the card to the certificate; cardholder name (`5B`) and login data (`5E`).
//! 7. Touch policy (Yubico's UIF DOs `D6`–`D8`) when the profile asks for one.
//! 8. The PINs: kept, set from configuration, or random (CHANGE REFERENCE DATA, §7.2.3).
//!    Random PINs are returned in [`Provisioned::new_pins`] — for keystation's own result
//!    output — and never logged.
//!
//! Every step logs one line at `info` level, without secrets. Private keys generated in
//! host memory are zeroized once imported; nothing is written to disk.

use core::fmt;

pub mod run;

use keystation_core::key::{KeyAlgorithm, PublicKey, RsaBits};
use keystation_core::keygen::{OpenPgpKeySlot, RandomSource};
use keystation_core::{Card, SecretBytes};
use keystation_openpgp::{CardSigner, OpenPgpCard, PinRef, Uif};
use keystation_openpgp_cert::{Certificate, CertificateParams, S2kCount, SecretKeys, Subkey};
use zeroize::{Zeroize, Zeroizing};

/// The factory user PIN (PW1) of OpenPGP cards after a reset (OpenPGP card 3.4.1 §4.3.1).
pub const FACTORY_USER_PIN: &[u8] = b"123456";
/// The factory admin PIN (PW3).
pub const FACTORY_ADMIN_PIN: &[u8] = b"12345678";

/// The three OpenPGP key slots, in certificate order: primary (signature), encryption
/// subkey, authentication subkey.
const SLOTS: [OpenPgpKeySlot; 3] =
    [OpenPgpKeySlot::Signature, OpenPgpKeySlot::Decryption, OpenPgpKeySlot::Authentication];

/// The first step, named in its error.
pub(crate) const STEP_SELECT: &str = "select the OpenPGP application";

/// Yubico's manufacturer ID in the OpenPGP AID.
const YUBICO: u16 = 0x0006;

/// Longest name or e-mail address a job may carry, in bytes.
pub const MAX_FIELD_LEN: usize = 256;

/// The person the card is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    first_name: String,
    last_name: String,
    email: String,
}

impl Holder {
    /// Checks a holder's fields: names non-empty, at most [`MAX_FIELD_LEN`] bytes, no
    /// control characters and no `<`, `>` (they would break the `Name <email>` user ID);
    /// the e-mail a plain `local@domain` address.
    pub fn new(first_name: &str, last_name: &str, email: &str) -> Result<Self, InvalidHolder> {
        let first_name = check_name("first name", first_name)?;
        let last_name = check_name("last name", last_name)?;
        let email = check_email(email)?;
        Ok(Self { first_name, last_name, email })
    }

    /// Given name(s).
    pub fn first_name(&self) -> &str {
        &self.first_name
    }

    /// Surname.
    pub fn last_name(&self) -> &str {
        &self.last_name
    }

    /// E-mail address.
    pub fn email(&self) -> &str {
        &self.email
    }

    /// The OpenPGP user ID, `First Last <email>` (RFC 4880 §5.11).
    pub fn user_id(&self) -> String {
        format!("{} {} <{}>", self.first_name, self.last_name, self.email)
    }
}

/// A holder field that cannot go on a card.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field}: {reason}")]
pub struct InvalidHolder {
    /// Which field.
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: &'static str,
}

fn check_name(field: &'static str, value: &str) -> Result<String, InvalidHolder> {
    let invalid = |reason| InvalidHolder { field, reason };
    let value = value.trim();
    if value.is_empty() {
        return Err(invalid("it is empty"));
    }
    if value.len() > MAX_FIELD_LEN {
        return Err(invalid("it is longer than 256 bytes"));
    }
    if value.chars().any(char::is_control) {
        return Err(invalid("it contains control characters"));
    }
    if value.contains(['<', '>']) {
        return Err(invalid("it contains '<' or '>'"));
    }
    Ok(value.to_owned())
}

fn check_email(value: &str) -> Result<String, InvalidHolder> {
    let invalid = |reason| InvalidHolder { field: "email", reason };
    let value = value.trim();
    if value.is_empty() {
        return Err(invalid("it is empty"));
    }
    if value.len() > MAX_FIELD_LEN {
        return Err(invalid("it is longer than 256 bytes"));
    }
    if value.chars().any(|c| c.is_control() || c.is_whitespace() || matches!(c, '<' | '>')) {
        return Err(invalid("it contains spaces, control characters, '<' or '>'"));
    }
    let Some((local, domain)) = value.split_once('@') else {
        return Err(invalid("it has no '@'"));
    };
    if local.is_empty() || domain.is_empty() || domain.contains('@') {
        return Err(invalid("it is not of the form local@domain"));
    }
    if domain.starts_with('.') || domain.ends_with('.') || domain.contains("..") {
        return Err(invalid("its domain is malformed"));
    }
    Ok(value.to_owned())
}

/// Which algorithms the three keys get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AlgorithmChoice {
    /// Ed25519 signature and authentication keys with a Cv25519 (X25519) encryption key
    /// where the card supports them; RSA-2048 otherwise (every OpenPGP card has it, and
    /// on-card RSA-2048 generation takes seconds where RSA-4096 takes minutes).
    #[default]
    Auto,
    /// Ed25519 / Cv25519.
    Curve25519,
    /// NIST P-256 for all three keys.
    NistP256,
    /// NIST P-384 for all three keys.
    NistP384,
    /// RSA of this size for all three keys.
    Rsa(RsaBits),
}

impl AlgorithmChoice {
    /// The algorithm of each slot, in [`SLOTS`] order, for a fixed choice.
    fn suite(self) -> Option<[KeyAlgorithm; 3]> {
        Some(match self {
            Self::Auto => return None,
            Self::Curve25519 => {
                [KeyAlgorithm::Ed25519, KeyAlgorithm::X25519, KeyAlgorithm::Ed25519]
            }
            Self::NistP256 => [KeyAlgorithm::NistP256; 3],
            Self::NistP384 => [KeyAlgorithm::NistP384; 3],
            Self::Rsa(bits) => [KeyAlgorithm::Rsa(bits); 3],
        })
    }
}

/// Where the private keys are generated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyOrigin {
    /// On the card: the private keys never exist anywhere else.
    #[default]
    Card,
    /// In host memory, then imported to the card and zeroized (for cards whose on-card
    /// generation is slow or missing).
    Host,
}

/// What happens to the PINs at the end.
#[derive(Clone, Default)]
pub enum PinPlan {
    /// Leave them as they are (after a reset: the factory PINs).
    Keep,
    /// Set these.
    Set {
        /// New user PIN (PW1), at least 6 characters.
        user: SecretBytes,
        /// New admin PIN (PW3), at least 8 characters.
        admin: SecretBytes,
    },
    /// Random digits: a 6-digit user PIN and an 8-digit admin PIN, returned in
    /// [`Provisioned::new_pins`].
    #[default]
    Random,
    /// For a station nobody watches: the user PIN stays as it is (after the reset, the
    /// factory PIN, which the holder changes) and the admin PIN becomes `admin`, or 8
    /// random digits that are not returned — nobody learns them, so the card's keys and
    /// data can only be replaced after a factory reset. [`Provisioned::new_pins`] is `None`.
    Unattended {
        /// The admin PIN to set (e.g. an organisation's, from a file), or `None` for random.
        admin: Option<SecretBytes>,
    },
}

impl fmt::Debug for PinPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Keep => "Keep",
            Self::Set { .. } => "Set { [redacted] }",
            Self::Random => "Random",
            Self::Unattended { admin: None } => "Unattended { admin: random }",
            Self::Unattended { admin: Some(_) } => "Unattended { admin: [redacted] }",
        })
    }
}

/// How to provision a card.
#[derive(Debug, Clone)]
pub struct Profile {
    /// Algorithms of the three keys.
    pub algorithm: AlgorithmChoice,
    /// Where the keys are generated.
    pub key_origin: KeyOrigin,
    /// The PINs at the end.
    pub pins: PinPlan,
    /// User interaction flag (touch policy) of all three keys; `None` leaves the card's.
    /// Cards without UIF data objects accept only `None` or [`Uif::Off`].
    pub touch: Option<Uif>,
    /// Factory-reset the OpenPGP application first.
    pub reset: bool,
    /// The card's current PINs when `reset` is off (default: the factory PINs).
    pub current_pins: Option<(SecretBytes, SecretBytes)>,
    /// With [`KeyOrigin::Host`]: also return the secret keys, encrypted with this
    /// passphrase, in [`Provisioned::backup`].
    pub backup_passphrase: Option<SecretBytes>,
}

impl Default for Profile {
    fn default() -> Self {
        Self {
            algorithm: AlgorithmChoice::Auto,
            key_origin: KeyOrigin::Card,
            pins: PinPlan::Random,
            touch: None,
            reset: true,
            current_pins: None,
            backup_passphrase: None,
        }
    }
}

/// PINs set by the provisioning, for the holder.
#[derive(Clone)]
pub struct NewPins {
    /// User PIN (PW1).
    pub user: SecretBytes,
    /// Admin PIN (PW3).
    pub admin: SecretBytes,
}

impl fmt::Debug for NewPins {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NewPins([redacted])")
    }
}

/// What a provisioning produced: everything public, plus PINs the holder must learn.
#[derive(Debug, Clone)]
pub struct Provisioned {
    /// The card's serial number (from the AID, OpenPGP card 3.4.1 §4.2.1) as its holder
    /// knows it: a YubiKey's decimal serial (printed on the key and shown by ykman; Yubico
    /// writes it in BCD), otherwise the eight hex digits `gpg --card-status` shows.
    pub serial: String,
    /// The card's manufacturer, where known.
    pub manufacturer: Option<&'static str>,
    /// The ASCII-armored OpenPGP certificate (public key block).
    pub certificate: String,
    /// The authentication key in OpenSSH format, commented like `gpg --export-ssh-key`.
    pub ssh_key: String,
    /// Fingerprints of the signature (primary), encryption and authentication keys.
    pub fingerprints: [[u8; 20]; 3],
    /// The algorithms of the three keys.
    pub algorithms: [KeyAlgorithm; 3],
    /// New PINs, when the profile set or randomized them.
    pub new_pins: Option<NewPins>,
    /// The host-generated secret keys as an OpenPGP Transferable Secret Key
    /// (RFC 4880 §11.2), each key encrypted with the profile's backup passphrase
    /// (iterated and salted S2K with SHA-256, AES-256; §3.7, §5.5.3), ASCII-armored.
    /// `gpg --import` takes it. Present only with [`KeyOrigin::Host`] and a passphrase.
    pub backup: Option<Zeroizing<String>>,
    /// APDUs exchanged.
    pub apdus: u64,
}

/// Why a provisioning failed, and at which step. The card may be half provisioned; run
/// the job again (it starts with a reset).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProvisionError {
    /// The holder's data cannot go on a card.
    #[error(transparent)]
    Holder(#[from] InvalidHolder),
    /// A card command failed.
    #[error("{step}: {source}")]
    Card {
        /// The step.
        step: &'static str,
        /// The card client's error.
        #[source]
        source: keystation_openpgp::Error,
    },
    /// The card cannot hold the profile's algorithms.
    #[error("the card does not support {0}")]
    Unsupported(String),
    /// A PIN the profile sets is too short for the card (OpenPGP card 3.4.1 §4.3.1).
    #[error("the new {which} must have at least {min} characters")]
    PinTooShort {
        /// Which PIN.
        which: &'static str,
        /// The shortest allowed.
        min: usize,
    },
    /// The certificate could not be made (a card signature failed or came back unusable).
    #[error("make the OpenPGP certificate: {0}")]
    Certificate(#[from] keystation_openpgp_cert::CertError),
    /// Host key generation or the random source failed.
    #[error("{step}: {source}")]
    Host {
        /// The step.
        step: &'static str,
        /// What failed.
        #[source]
        source: keystation_core::Error,
    },
}

/// Adds the step name to a card error.
trait Step<T> {
    fn step(self, step: &'static str) -> Result<T, ProvisionError>;
}

impl<T> Step<T> for Result<T, keystation_openpgp::Error> {
    fn step(self, step: &'static str) -> Result<T, ProvisionError> {
        self.map_err(|source| ProvisionError::Card { step, source })
    }
}

impl<T> Step<T> for Result<T, keystation_core::Error> {
    fn step(self, step: &'static str) -> Result<T, ProvisionError> {
        self.map_err(|source| ProvisionError::Host { step, source })
    }
}

/// Provisions the OpenPGP application of `card` for `holder` as `profile` says. `now` is
/// the key creation and signature time (seconds since 1970); `rng` makes host keys and
/// random PINs.
pub fn provision(
    card: &mut dyn Card,
    holder: &Holder,
    profile: &Profile,
    now: u32,
    rng: &mut dyn RandomSource,
) -> Result<Provisioned, ProvisionError> {
    // Everything that can be refused is refused before the card changes.
    if profile.backup_passphrase.is_some() && profile.key_origin != KeyOrigin::Host {
        return Err(ProvisionError::Unsupported(
            "a backup of keys generated on the card (they cannot leave it)".to_owned(),
        ));
    }
    match &profile.pins {
        PinPlan::Set { user, admin } => {
            check_pin_length("user PIN", user, MIN_USER_PIN)?;
            check_pin_length("admin PIN", admin, MIN_ADMIN_PIN)?;
        }
        PinPlan::Unattended { admin: Some(admin) } => {
            check_pin_length("admin PIN", admin, MIN_ADMIN_PIN)?;
        }
        _ => {}
    }
    let mut pgp = OpenPgpCard::select_activating(card).step(STEP_SELECT)?;
    tracing::info!(
        serial = %pgp.application_related_data().aid.serial_string(),
        manufacturer = pgp.manufacturer_name().unwrap_or("unknown"),
        "OpenPGP application selected"
    );
    // The card's capabilities (algorithm information, extended capabilities) survive a
    // reset, so the choice is made, and refused, before it.
    let algorithms = choose_algorithms(&pgp, profile.algorithm)?;
    let (user_pin, admin_pin) = if profile.reset {
        pgp.factory_reset().step("factory reset")?;
        tracing::info!("OpenPGP application reset to factory state");
        (SecretBytes::copy_from(FACTORY_USER_PIN), SecretBytes::copy_from(FACTORY_ADMIN_PIN))
    } else {
        match &profile.current_pins {
            Some((user, admin)) => (user.clone(), admin.clone()),
            None => (
                SecretBytes::copy_from(FACTORY_USER_PIN),
                SecretBytes::copy_from(FACTORY_ADMIN_PIN),
            ),
        }
    };
    pgp.verify(PinRef::Pw3, &admin_pin).step("verify the admin PIN")?;

    let mut keygen = match profile.key_origin {
        KeyOrigin::Host => Some(HostKeys::new(profile.backup_passphrase.is_some())),
        KeyOrigin::Card => None,
    };
    let mut publics = Vec::with_capacity(3);
    for (slot, algorithm) in SLOTS.into_iter().zip(algorithms) {
        pgp.set_algorithm(slot, algorithm).step("set algorithm attributes")?;
        let public = match &mut keygen {
            None => pgp.generate_key_pair(slot).step("generate a key on the card")?,
            Some(host) => host.generate_and_import(&mut pgp, slot, algorithm)?,
        };
        tracing::info!(slot = slot_name(slot), algorithm = %algorithm, origin = ?profile.key_origin, "key ready");
        publics.push(public);
    }
    let [_signature, decryption, authentication]: [PublicKey; 3] =
        publics.try_into().map_err(|_| ProvisionError::Unsupported("three keys".to_owned()))?;

    if let Some(flag) = profile.touch {
        for slot in SLOTS {
            // A card without touch DOs has no touch to switch off.
            if flag == Uif::Off && pgp.uif(slot).is_none() {
                continue;
            }
            pgp.set_uif(slot, flag).step("set the touch policy")?;
        }
        tracing::info!(policy = ?flag, "touch policy set");
    }

    pgp.remember_user_pin(user_pin.clone()).step("verify the user PIN")?;
    let certificate = {
        let mut signer =
            CardSigner::new(&mut pgp, OpenPgpKeySlot::Signature).step("read the signature key")?;
        certify(&mut signer, holder, [&decryption, &authentication], now)?
    };
    tracing::info!(user_id = %holder.user_id(), "certificate signed by the card");
    let fingerprints = [
        *certificate.primary().fingerprint.as_bytes(),
        *certificate.encryption().fingerprint.as_bytes(),
        *certificate.authentication().fingerprint.as_bytes(),
    ];
    let backup = match (&keygen, &profile.backup_passphrase) {
        (Some(host), Some(passphrase)) => Some(host.backup(&certificate, passphrase, rng)?),
        _ => None,
    };
    drop(keygen);
    for (index, slot) in SLOTS.into_iter().enumerate() {
        pgp.write_fingerprint(slot, &fingerprints[index]).step("write fingerprints")?;
        pgp.write_generation_time(slot, now).step("write generation times")?;
    }
    pgp.set_cardholder_name(holder.last_name(), holder.first_name())
        .step("write the cardholder name")?;
    pgp.set_login_data(holder.email().as_bytes()).step("write the login data")?;
    tracing::info!("fingerprints, generation times and cardholder data written");

    let new_pins = match &profile.pins {
        PinPlan::Keep | PinPlan::Unattended { .. } => None,
        PinPlan::Set { user, admin } => Some(NewPins { user: user.clone(), admin: admin.clone() }),
        PinPlan::Random => Some(NewPins {
            user: random_digits(rng, 6).step("make a random user PIN")?,
            admin: random_digits(rng, 8).step("make a random admin PIN")?,
        }),
    };
    if let Some(pins) = &new_pins {
        pgp.change_pin(PinRef::Pw1, &user_pin, &pins.user).step("change the user PIN")?;
        pgp.change_pin(PinRef::Pw3, &admin_pin, &pins.admin).step("change the admin PIN")?;
        tracing::info!("user and admin PINs changed");
    }
    if let PinPlan::Unattended { admin } = &profile.pins {
        let new_admin = match admin {
            Some(admin) => admin.clone(),
            None => random_digits(rng, 8).step("make a random admin PIN")?,
        };
        pgp.change_pin(PinRef::Pw3, &admin_pin, &new_admin).step("change the admin PIN")?;
        tracing::info!("admin PIN changed; user PIN left for the holder to change");
    }
    pgp.forget_user_pin();

    let ssh_key = certificate
        .ssh_public_key(Some(&certificate.gpg_ssh_comment()))
        .ok_or_else(|| ProvisionError::Unsupported(format!("SSH keys of {}", algorithms[2])))?;
    let aid = &pgp.application_related_data().aid;
    let serial = match aid.manufacturer() {
        YUBICO => aid.serial_string().trim_start_matches('0').to_owned(),
        _ => aid.serial_string(),
    };
    Ok(Provisioned {
        serial,
        manufacturer: pgp.manufacturer_name(),
        certificate: certificate.armored(),
        ssh_key,
        fingerprints,
        algorithms,
        new_pins,
        backup,
        apdus: pgp.apdus_sent(),
    })
}

fn slot_name(slot: OpenPgpKeySlot) -> &'static str {
    match slot {
        OpenPgpKeySlot::Signature => "signature",
        OpenPgpKeySlot::Decryption => "decryption",
        OpenPgpKeySlot::Authentication => "authentication",
    }
}

/// The algorithms for the three slots: the profile's, checked against what the card
/// announces; or for [`AlgorithmChoice::Auto`], Curve25519 where possible, else RSA-2048.
fn choose_algorithms(
    pgp: &OpenPgpCard<'_>,
    choice: AlgorithmChoice,
) -> Result<[KeyAlgorithm; 3], ProvisionError> {
    let supported = |suite: [KeyAlgorithm; 3]| {
        SLOTS.into_iter().zip(suite).all(|(slot, a)| pgp.supported_algorithms(slot).contains(&a))
    };
    let suite = match choice.suite() {
        Some(suite) => suite,
        None => [AlgorithmChoice::Curve25519, AlgorithmChoice::Rsa(RsaBits::Rsa2048)]
            .into_iter()
            .filter_map(AlgorithmChoice::suite)
            .find(|s| supported(*s))
            .ok_or_else(|| ProvisionError::Unsupported("Curve25519 or RSA-2048".to_owned()))?,
    };
    if !supported(suite) {
        let names: Vec<String> = suite.iter().map(ToString::to_string).collect();
        return Err(ProvisionError::Unsupported(names.join(" / ")));
    }
    Ok(suite)
}

/// Shortest user PIN (PW1) and admin PIN (PW3) OpenPGP cards accept (§4.3.1).
const MIN_USER_PIN: usize = 6;
const MIN_ADMIN_PIN: usize = 8;

fn check_pin_length(
    which: &'static str,
    pin: &SecretBytes,
    min: usize,
) -> Result<(), ProvisionError> {
    if pin.len() < min {
        return Err(ProvisionError::PinTooShort { which, min });
    }
    Ok(())
}

/// `len` random decimal digits, without modulo bias.
fn random_digits(
    rng: &mut dyn RandomSource,
    len: usize,
) -> Result<SecretBytes, keystation_core::Error> {
    let mut out = Zeroizing::new(Vec::with_capacity(len));
    let mut byte = [0u8; 1];
    while out.len() < len {
        rng.fill(&mut byte)?;
        // 250 = 25 × 10: values 250..=255 would favour 0–5.
        if byte[0] < 250 {
            out.push(b'0' + byte[0] % 10);
        }
    }
    byte.zeroize();
    Ok(SecretBytes::new(out.to_vec()))
}

/// Host-side key generation for [`KeyOrigin::Host`]: each key is generated in memory and
/// imported to the card. The secrets are kept (zeroizing) only when a backup is wanted,
/// until it is made; everything is zeroized when this is dropped.
struct HostKeys {
    keygen: keystation_keygen::SoftKeyGen,
    kept: Option<Vec<keystation_core::SecretKey>>,
}

impl HostKeys {
    fn new(keep_for_backup: bool) -> Self {
        Self {
            keygen: keystation_keygen::SoftKeyGen::with_os_random(),
            kept: keep_for_backup.then(Vec::new),
        }
    }

    fn generate_and_import(
        &mut self,
        pgp: &mut OpenPgpCard<'_>,
        slot: OpenPgpKeySlot,
        algorithm: KeyAlgorithm,
    ) -> Result<PublicKey, ProvisionError> {
        use keystation_core::KeyGen;
        use keystation_core::keygen::{KeyLocation, KeyPurpose, KeyRequest};
        let request = KeyRequest::new(KeyPurpose::OpenPgp(slot), algorithm);
        let generated = self.keygen.generate(&request).step("generate a key in host memory")?;
        let public = generated.public.clone();
        let KeyLocation::Host(secret) = generated.location else {
            return Err(ProvisionError::Unsupported("host key generation".to_owned()));
        };
        pgp.import_key(slot, &secret).step("import the key to the card")?;
        if let Some(kept) = &mut self.kept {
            kept.push(secret);
        }
        Ok(public)
    }

    /// The passphrase-protected backup of the three keys, in certificate order.
    fn backup(
        &self,
        certificate: &Certificate,
        passphrase: &SecretBytes,
        rng: &mut dyn RandomSource,
    ) -> Result<Zeroizing<String>, ProvisionError> {
        let Some([primary, encryption, authentication]) = self.kept.as_deref() else {
            return Err(ProvisionError::Unsupported("a backup without three host keys".into()));
        };
        let secrets = SecretKeys { primary, encryption, authentication };
        Ok(certificate.secret_backup(&secrets, passphrase.expose(), S2kCount::default(), rng)?)
    }
}

/// Builds the OpenPGP certificate, every signature made by `signer` (the card's signature
/// key, which becomes the primary key). All keys are created, and signed, at `now`.
fn certify(
    signer: &mut dyn keystation_core::keygen::Signer,
    holder: &Holder,
    [decryption, authentication]: [&PublicKey; 2],
    now: u32,
) -> Result<Certificate, ProvisionError> {
    let user_id = holder.user_id();
    let params = CertificateParams {
        primary_created: now,
        encryption: Subkey { public: decryption.clone(), created: now },
        authentication: Subkey { public: authentication.clone(), created: now },
        user_id: &user_id,
        signed_at: now,
    };
    Ok(Certificate::build(signer, &params)?)
}
