//! The flow itself: [`provision`] on a card, step by step (see the crate documentation).

use keystation_core::key::{KeyAlgorithm, PublicKey, RsaBits};
use keystation_core::keygen::{KeyOrigin, OpenPgpKeySlot, RandomSource};
use keystation_core::{Card, SecretBytes};
use keystation_openpgp::{CardSigner, OpenPgpCard, PinRef, Uif};
use keystation_openpgp_cert::{Certificate, CertificateParams, S2kCount, SecretKeys, Subkey};
use zeroize::{Zeroize, Zeroizing};

use crate::{
    AlgorithmChoice, Attendance, FACTORY_ADMIN_PIN, FACTORY_USER_PIN, Holder, InvalidHolder,
    NewPins, PinPlan, Profile, Provisioned,
};

/// The three OpenPGP key slots, in certificate order: primary (signature), encryption
/// subkey, authentication subkey.
const SLOTS: [OpenPgpKeySlot; 3] =
    [OpenPgpKeySlot::Signature, OpenPgpKeySlot::Decryption, OpenPgpKeySlot::Authentication];

/// The first step, named in its error.
pub(crate) const STEP_SELECT: &str = "select the OpenPGP application";

/// Yubico's manufacturer ID in the OpenPGP AID.
const YUBICO: u16 = 0x0006;

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
    /// The profile's PIN plan is `set` without both PINs.
    #[error("the PIN plan `set` needs the new user PIN and the new admin PIN")]
    MissingPins,
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
    let plan = profile.pins.for_command(Attendance::Attended);
    let values = &profile.new_pin_values;
    match (plan, &values.user, &values.admin) {
        (PinPlan::Set, Some(user), Some(admin)) => {
            check_pin_length("user PIN", user, MIN_USER_PIN)?;
            check_pin_length("admin PIN", admin, MIN_ADMIN_PIN)?;
        }
        (PinPlan::Set, _, _) => return Err(ProvisionError::MissingPins),
        (PinPlan::Unattended, _, Some(admin)) => {
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

    if let Some(flag) = Uif::from_touch_policy(profile.touch) {
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

    let new_pins = match (plan, &values.user, &values.admin) {
        (PinPlan::Set, Some(user), Some(admin)) => {
            Some(NewPins { user: user.clone(), admin: admin.clone() })
        }
        (PinPlan::Random, _, _) => Some(NewPins {
            user: random_digits(rng, 6).step("make a random user PIN")?,
            admin: random_digits(rng, 8).step("make a random admin PIN")?,
        }),
        _ => None,
    };
    if let Some(pins) = &new_pins {
        pgp.change_pin(PinRef::Pw1, &user_pin, &pins.user).step("change the user PIN")?;
        pgp.change_pin(PinRef::Pw3, &admin_pin, &pins.admin).step("change the admin PIN")?;
        tracing::info!("user and admin PINs changed");
    }
    if plan == PinPlan::Unattended {
        let new_admin = match &values.admin {
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
