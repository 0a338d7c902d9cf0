//! keystation-provision: one provisioning job on an OpenPGP card — the station's main job
//! and `keystation provision`.
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

#[cfg(feature = "flow")]
mod flow;
#[cfg(feature = "flow")]
mod run;

#[cfg(feature = "flow")]
pub use flow::{ProvisionError, provision};
#[cfg(feature = "flow")]
pub use run::{RunError, check_backup_target, provision_card, provision_selected, write_backup};

use keystation_core::SecretBytes;
use keystation_core::key::{KeyAlgorithm, RsaBits};
use keystation_core::keygen::{KeyOrigin, TouchPolicy};
use zeroize::Zeroizing;

/// The factory user PIN (PW1) of OpenPGP cards after a reset (OpenPGP card 3.4.1 §4.3.1).
pub const FACTORY_USER_PIN: &[u8] = b"123456";
/// The factory admin PIN (PW3).
pub const FACTORY_ADMIN_PIN: &[u8] = b"12345678";

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

/// Which algorithms the three keys get (`--algorithm`). Named as gpg names key
/// attributes; [`from_name`](Self::from_name) also takes ykman's and OpenSSH's spellings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AlgorithmChoice {
    /// Ed25519 signature and authentication keys with a Cv25519 (X25519) encryption key
    /// where the card supports them; RSA-2048 otherwise (every OpenPGP card has it, and
    /// on-card RSA-2048 generation takes seconds where RSA-4096 takes minutes).
    #[default]
    Auto,
    /// Ed25519 for signing and authentication, Cv25519 (X25519) for encryption
    /// (RFC 9580 §9.1).
    Curve25519,
    /// NIST P-256 for all three keys.
    NistP256,
    /// NIST P-384 for all three keys.
    NistP384,
    /// RSA of this size for all three keys.
    Rsa(RsaBits),
}

impl AlgorithmChoice {
    /// Every choice, in the order the documentation lists them.
    pub const ALL: [Self; 7] = [
        Self::Auto,
        Self::Curve25519,
        Self::NistP256,
        Self::NistP384,
        Self::Rsa(RsaBits::Rsa2048),
        Self::Rsa(RsaBits::Rsa3072),
        Self::Rsa(RsaBits::Rsa4096),
    ];

    /// The name in configuration and output: `auto`, or the algorithm of the signature key
    /// as gpg names it (`ed25519`, `nistp256`, `nistp384`, `rsa2048`, `rsa3072`, `rsa4096`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Curve25519 => "ed25519",
            Self::NistP256 => "nistp256",
            Self::NistP384 => "nistp384",
            Self::Rsa(RsaBits::Rsa2048) => "rsa2048",
            Self::Rsa(RsaBits::Rsa3072) => "rsa3072",
            Self::Rsa(RsaBits::Rsa4096) => "rsa4096",
            // A size added to core after this crate was written.
            Self::Rsa(_) => "rsa",
        }
    }

    /// Parses `auto` or a signing algorithm in any spelling [`KeyAlgorithm`] reads (gpg's
    /// `nistp256`, ykman's `eccp256`, `p256`, …), ignoring ASCII case. `cv25519`/`x25519`
    /// cannot sign and are refused.
    pub fn from_name(name: &str) -> Option<Self> {
        if name.eq_ignore_ascii_case("auto") {
            return Some(Self::Auto);
        }
        match name.parse::<KeyAlgorithm>().ok()? {
            KeyAlgorithm::Ed25519 => Some(Self::Curve25519),
            KeyAlgorithm::NistP256 => Some(Self::NistP256),
            KeyAlgorithm::NistP384 => Some(Self::NistP384),
            KeyAlgorithm::Rsa(bits) => Some(Self::Rsa(bits)),
            _ => None,
        }
    }

    /// The algorithm of each slot (signature, decryption, authentication) for a fixed
    /// choice.
    #[cfg_attr(not(feature = "flow"), allow(dead_code))]
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

impl fmt::Display for AlgorithmChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which command a provisioning runs under; [`PinPlan::Auto`] depends on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Attendance {
    /// `keystation provision`: someone reads the output.
    Attended,
    /// `keystation station`: a service with no console, whose results go to defguard.
    Unattended,
}

/// What a provisioning does with the card's PINs (`--pin-policy`): the OpenPGP PIN plan.
/// (A PIV key's PIN policy, when the card asks for the PIN, is
/// [`keystation_core::keygen::PinPolicy`].) The PINs a plan sets come in [`NewPinValues`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PinPlan {
    /// [`Unattended`](Self::Unattended) for the station, which has no console, and
    /// [`Random`](Self::Random) for `keystation provision`, whose output is read by the
    /// person at the keyboard ([`PinPlan::for_command`]).
    #[default]
    Auto,
    /// For a station nobody watches: the user PIN is left as it is (after the reset: the
    /// factory PIN 123456, which the holder changes, as with a new card) and the admin PIN
    /// is set from [`NewPinValues::admin`], or to 8 random digits that nobody is told — so
    /// no card leaves the station with the factory admin PIN, and the card's keys and data
    /// can only be replaced after a factory reset. [`Provisioned::new_pins`] is `None`.
    Unattended,
    /// Fresh random digits, a 6-digit user PIN and an 8-digit admin PIN, returned in
    /// [`Provisioned::new_pins`] for keystation's result output (never a log).
    Random,
    /// Set them from [`NewPinValues`] (both needed).
    Set,
    /// Leave the PINs as they are (after a reset: the factory PINs 123456/12345678).
    Keep,
}

impl PinPlan {
    /// Every plan, in the order the documentation lists them.
    pub const ALL: [Self; 5] = [Self::Auto, Self::Unattended, Self::Random, Self::Set, Self::Keep];

    /// The configuration name: `auto`, `unattended`, `random`, `set`, `keep`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Unattended => "unattended",
            Self::Random => "random",
            Self::Set => "set",
            Self::Keep => "keep",
        }
    }

    /// Parses [`name`](Self::name), ignoring ASCII case.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name().eq_ignore_ascii_case(name))
    }

    /// The plan a provisioning under `attendance` follows: [`Auto`](Self::Auto) resolved,
    /// any other plan as configured.
    pub fn for_command(self, attendance: Attendance) -> Self {
        match (self, attendance) {
            (Self::Auto, Attendance::Attended) => Self::Random,
            (Self::Auto, Attendance::Unattended) => Self::Unattended,
            (plan, _) => plan,
        }
    }

    /// What provisioning under this plan does with the PINs, in words for a log line,
    /// `config show` and the README; `admin_from_file` tells whether the admin PIN comes
    /// from a file (`admin_pin_file`). Holds no PIN.
    pub fn describe(self, attendance: Attendance, admin_from_file: bool) -> &'static str {
        match (self.for_command(attendance), attendance) {
            (Self::Unattended, _) if admin_from_file => {
                "user PIN left at the factory value 123456 for the holder to change; admin PIN \
                 set from admin_pin_file"
            }
            (Self::Unattended, _) => {
                "user PIN left at the factory value 123456 for the holder to change; admin PIN \
                 set to a random value that nobody is told (a factory reset of the OpenPGP \
                 application is the way back)"
            }
            (Self::Random, Attendance::Attended) => {
                "random user and admin PINs, printed in the result"
            }
            (Self::Random, Attendance::Unattended) => {
                "random user and admin PINs, shown on the station's console (/dev/tty)"
            }
            (Self::Set, _) => "user and admin PINs set from user_pin_file and admin_pin_file",
            (Self::Keep | Self::Auto, _) => {
                "PINs left as they are (after the reset: the factory PINs 123456 and 12345678)"
            }
        }
    }
}

impl fmt::Display for PinPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The PINs a [`PinPlan`] sets: both for [`PinPlan::Set`], the admin PIN (optionally) for
/// [`PinPlan::Unattended`]; ignored by the other plans.
#[derive(Clone, Default)]
pub struct NewPinValues {
    /// New user PIN (PW1), at least 6 characters.
    pub user: Option<SecretBytes>,
    /// New admin PIN (PW3), at least 8 characters.
    pub admin: Option<SecretBytes>,
}

impl fmt::Debug for NewPinValues {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = |pin: &Option<SecretBytes>| if pin.is_some() { "[redacted]" } else { "none" };
        write!(f, "NewPinValues {{ user: {}, admin: {} }}", shown(&self.user), shown(&self.admin))
    }
}

/// How to provision a card.
#[derive(Debug, Clone)]
pub struct Profile {
    /// Algorithms of the three keys.
    pub algorithm: AlgorithmChoice,
    /// Where the keys are generated.
    pub key_origin: KeyOrigin,
    /// The PINs at the end ([`PinPlan::Auto`] counts as attended: random PINs).
    pub pins: PinPlan,
    /// The PINs [`pins`](Self::pins) sets.
    pub new_pin_values: NewPinValues,
    /// Touch policy (user interaction flag) of all three keys; [`TouchPolicy::Default`]
    /// leaves the card's. Cards without UIF data objects accept only that or
    /// [`TouchPolicy::Never`].
    pub touch: TouchPolicy,
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
            new_pin_values: NewPinValues::default(),
            touch: TouchPolicy::Default,
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
