//! The OpenPGP profile the configuration describes, for `provision` and `station`.

use std::path::PathBuf;

use keystation_core::SecretBytes;
use keystation_provision::{Attendance, NewPinValues, PinPlan, Profile};

use crate::Error;
use crate::config::{self, Settings};

/// The provisioning profile the configuration describes for a provisioning under
/// `attendance` (which resolves `pin_policy = auto`). PIN and passphrase files are read now
/// (zeroized buffers); the backup file path is returned alongside.
pub(crate) fn profile(
    settings: &Settings,
    attendance: Attendance,
) -> Result<(Profile, Option<PathBuf>), Error> {
    let read = |what: &'static str, path: &Option<PathBuf>| -> Result<SecretBytes, Error> {
        // The configuration checks that the files named together are all present.
        let path = path.clone().unwrap_or_default();
        config::read_secret_file(&path).map_err(|source| Error::SecretFile { what, path, source })
    };
    let pins = settings.pin_policy.for_command(attendance);
    let new_pin_values = match pins {
        PinPlan::Set => NewPinValues {
            user: Some(read("the user PIN", &settings.user_pin_file)?),
            admin: Some(read("the admin PIN", &settings.admin_pin_file)?),
        },
        PinPlan::Unattended if settings.admin_pin_file.is_some() => NewPinValues {
            user: None,
            admin: Some(read("the admin PIN", &settings.admin_pin_file)?),
        },
        _ => NewPinValues::default(),
    };
    let backup_passphrase = match &settings.backup_file {
        Some(_) => Some(read("the backup passphrase", &settings.backup_passphrase_file)?),
        None => None,
    };
    let profile = Profile {
        algorithm: settings.algorithm,
        key_origin: settings.key_location,
        pins,
        new_pin_values,
        touch: settings.touch_policy,
        reset: settings.reset,
        current_pins: None,
        backup_passphrase,
    };
    Ok((profile, settings.backup_file.clone()))
}
