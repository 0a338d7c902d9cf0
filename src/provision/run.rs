//! Running the provisioning flow for real: the profile from configuration, the card
//! backend (a PC/SC card, or the built-in software card for rehearsals), the one-shot
//! `keystation provision` output, and the station's [`Provision`] implementation.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use keystation_core::key::RsaBits;
use keystation_core::{Card, SecretBytes, Transaction};
use keystation_openpgp::Uif;
use zeroize::Zeroizing;

use super::{AlgorithmChoice, Holder, KeyOrigin, PinPlan, Profile, Provisioned, provision};
use crate::config::{self, Settings};
use crate::station::{AbortSignal, JobError, JobReport, JobRequest, Provision};

/// Which card a provisioning uses (`--card`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum CardChoice {
    /// The one card in a PC/SC reader; the built-in software card when no reader holds
    /// a card (or PC/SC is not available).
    #[default]
    Auto,
    /// The one card in a PC/SC reader (`--reader` narrows the readers).
    Pcsc,
    /// A software YubiKey 5 in this process: a rehearsal, whose keys vanish at exit.
    Software,
}

/// Why a provisioning run failed before or around the flow itself.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The flow failed.
    #[error(transparent)]
    Provision(#[from] super::ProvisionError),
    /// The holder's fields are invalid.
    #[error(transparent)]
    Holder(#[from] super::InvalidHolder),
    /// No card could be opened.
    #[cfg(feature = "pcsc")]
    #[error(transparent)]
    Acquire(#[from] crate::acquire::AcquireError),
    /// The card transaction could not begin.
    #[error("begin a card transaction: {0}")]
    Transaction(#[source] keystation_core::Error),
    /// A secret file (PIN, backup passphrase) could not be read.
    #[error("read {what} from {}: {source}", path.display())]
    SecretFile {
        /// Which secret.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The backup file exists already, or cannot be written.
    #[error("backup file {}: {reason}", path.display())]
    BackupFile {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// This build has no such card backend.
    #[error("this keystation was built without the {0} card backend")]
    NoBackend(&'static str),
    /// Random PINs would have nowhere to go.
    #[error(
        "pin_policy = random needs a console to show the new PINs on, and this station has \
         no terminal (/dev/tty: {0}); use pin_policy = unattended (the default for the \
         station), or set with user_pin_file and admin_pin_file"
    )]
    NoConsole(std::io::Error),
    /// The job was aborted.
    #[error("aborted by station shutdown")]
    Aborted,
}

/// The provisioning profile the configuration describes for a provisioning under
/// `attendance` (which resolves `pin_policy = auto`). PIN and passphrase files are read now
/// (zeroized buffers); the backup file path is returned alongside.
pub fn profile(
    settings: &Settings,
    attendance: config::Attendance,
) -> Result<(Profile, Option<PathBuf>), RunError> {
    let algorithm = match settings.algorithm {
        config::Algorithm::Auto => AlgorithmChoice::Auto,
        config::Algorithm::Ed25519 => AlgorithmChoice::Curve25519,
        config::Algorithm::Nistp256 => AlgorithmChoice::NistP256,
        config::Algorithm::Nistp384 => AlgorithmChoice::NistP384,
        config::Algorithm::Rsa2048 => AlgorithmChoice::Rsa(RsaBits::Rsa2048),
        config::Algorithm::Rsa3072 => AlgorithmChoice::Rsa(RsaBits::Rsa3072),
        config::Algorithm::Rsa4096 => AlgorithmChoice::Rsa(RsaBits::Rsa4096),
    };
    let key_origin = match settings.key_location {
        config::KeyLocation::Card => KeyOrigin::Card,
        config::KeyLocation::Host => KeyOrigin::Host,
    };
    let read = |what: &'static str, path: &Option<PathBuf>| -> Result<SecretBytes, RunError> {
        // The configuration checks that the files named together are all present.
        let path = path.clone().unwrap_or_default();
        config::read_secret_file(&path).map_err(|source| RunError::SecretFile {
            what,
            path,
            source,
        })
    };
    let pins = match settings.pin_policy.for_command(attendance) {
        config::PinPolicy::Keep | config::PinPolicy::Auto => PinPlan::Keep,
        config::PinPolicy::Random => PinPlan::Random,
        config::PinPolicy::Set => PinPlan::Set {
            user: read("the user PIN", &settings.user_pin_file)?,
            admin: read("the admin PIN", &settings.admin_pin_file)?,
        },
        config::PinPolicy::Unattended => PinPlan::Unattended {
            admin: match &settings.admin_pin_file {
                Some(_) => Some(read("the admin PIN", &settings.admin_pin_file)?),
                None => None,
            },
        },
    };
    let touch = Some(match settings.touch_policy {
        config::TouchPolicy::Off => Uif::Off,
        config::TouchPolicy::On => Uif::On,
        config::TouchPolicy::Fixed => Uif::Fixed,
        config::TouchPolicy::Cached => Uif::Cached,
        config::TouchPolicy::CachedFixed => Uif::CachedFixed,
    });
    let backup_passphrase = match &settings.backup_file {
        Some(_) => Some(read("the backup passphrase", &settings.backup_passphrase_file)?),
        None => None,
    };
    let profile = Profile {
        algorithm,
        key_origin,
        pins,
        touch,
        reset: settings.reset,
        current_pins: None,
        backup_passphrase,
    };
    Ok((profile, settings.backup_file.clone()))
}

/// Seconds since 1970, as OpenPGP timestamps them (RFC 4880 §3.5).
fn now() -> u32 {
    let seconds = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    u32::try_from(seconds).unwrap_or(u32::MAX)
}

/// Refuses a backup file that exists (keystation never overwrites a key backup).
fn check_backup_target(path: Option<&Path>) -> Result<(), RunError> {
    match path {
        Some(path) if path.exists() => Err(RunError::BackupFile {
            path: path.to_owned(),
            reason: "exists already; keystation does not overwrite key backups".to_owned(),
        }),
        _ => Ok(()),
    }
}

/// Writes the (passphrase-encrypted) backup, readable by its owner only, never replacing
/// a file.
fn write_backup(path: &Path, backup: &str) -> Result<(), RunError> {
    let fail = |error: std::io::Error| RunError::BackupFile {
        path: path.to_owned(),
        reason: error.to_string(),
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(fail)?;
    file.write_all(backup.as_bytes()).and_then(|()| file.sync_all()).map_err(fail)
}

/// Runs the flow on `card` inside one PC/SC transaction.
fn on_card(
    card: &mut dyn Card,
    holder: &Holder,
    profile: &Profile,
) -> Result<Provisioned, RunError> {
    let mut transaction = Transaction::begin(card).map_err(RunError::Transaction)?;
    let mut rng = keystation_keygen::OsRandom;
    Ok(provision(transaction.card(), holder, profile, now(), &mut rng)?)
}

/// Runs the flow on the card `choice` names.
fn provision_with(
    choice: CardChoice,
    settings: &Settings,
    search: Option<&crate::station::CardSearch>,
    abort: Option<&AbortSignal>,
    holder: &Holder,
    profile: &Profile,
) -> Result<Provisioned, RunError> {
    let _ = (settings, search, abort);
    match choice {
        CardChoice::Software => software(holder, profile),
        #[cfg(feature = "pcsc")]
        CardChoice::Pcsc | CardChoice::Auto => {
            let retries = search.map_or(0, |s| s.retries);
            let interval = search.map_or(std::time::Duration::ZERO, |s| s.interval);
            let share_mode = match settings.share_mode {
                config::ShareMode::Exclusive => keystation_pcsc::ShareMode::Exclusive,
                config::ShareMode::Shared => keystation_pcsc::ShareMode::Shared,
            };
            let search = crate::acquire::Search {
                reader: settings.reader.clone(),
                retries,
                interval,
                share_mode,
            };
            let stopped = || abort.is_some_and(AbortSignal::is_aborted);
            match crate::acquire::single_card(&search, &stopped) {
                Ok(mut card) => match on_card(&mut card, holder, profile) {
                    // pcscd still listed a card that had just been pulled: nothing was
                    // done to any card, so look again as if none had been there — after
                    // letting go of the stale handle, which would otherwise keep an
                    // exclusive connection to the card's return from being granted.
                    Err(error) if gone_before_select(&error) && search.retries > 0 => {
                        drop(card);
                        tracing::info!("the card went away before the job began; looking again");
                        let search =
                            crate::acquire::Search { retries: search.retries - 1, ..search };
                        let mut card = crate::acquire::single_card(&search, &stopped).map_err(
                            |e| match e {
                                crate::acquire::AcquireError::Stopped => RunError::Aborted,
                                e => e.into(),
                            },
                        )?;
                        on_card(&mut card, holder, profile)
                    }
                    result => result,
                },
                Err(crate::acquire::AcquireError::Stopped) => Err(RunError::Aborted),
                Err(error) if choice == CardChoice::Auto && software_fallback(&error) => {
                    tracing::warn!(
                        %error,
                        "no card to provision; using the built-in software card (a rehearsal: its keys vanish at exit)"
                    );
                    software(holder, profile)
                }
                Err(error) => Err(error.into()),
            }
        }
        #[cfg(not(feature = "pcsc"))]
        CardChoice::Pcsc => Err(RunError::NoBackend("PC/SC")),
        #[cfg(not(feature = "pcsc"))]
        CardChoice::Auto => software(holder, profile),
    }
}

/// Whether the run failed because the card was gone already at the first command (the
/// SELECT), before anything on it changed.
#[cfg(feature = "pcsc")]
fn gone_before_select(error: &RunError) -> bool {
    let RunError::Provision(super::ProvisionError::Card { step, source }) = error else {
        return false;
    };
    let gone = |kind| {
        matches!(
            kind,
            Some(
                keystation_core::TransportFailure::CardRemoved
                    | keystation_core::TransportFailure::NoCard
            )
        )
    };
    *step == super::STEP_SELECT
        && std::error::Error::source(source)
            .and_then(|e| e.downcast_ref::<keystation_core::Error>())
            .is_some_and(|e| gone(e.transport_failure()))
}

/// With `--card auto`, the software card stands in when no reader has a card or PC/SC
/// is not running — not when several cards make the choice ambiguous.
#[cfg(feature = "pcsc")]
fn software_fallback(error: &crate::acquire::AcquireError) -> bool {
    use crate::acquire::AcquireError;
    match error {
        AcquireError::NoCard { .. } => true,
        AcquireError::Pcsc(e) => matches!(
            e.transport_failure(),
            Some(
                keystation_core::TransportFailure::ServiceUnavailable
                    | keystation_core::TransportFailure::NoCard
            )
        ),
        _ => false,
    }
}

#[cfg(feature = "softcard")]
fn software(holder: &Holder, profile: &Profile) -> Result<Provisioned, RunError> {
    let mut card = keystation_softcard::SoftCard::yubikey5(Default::default(), None);
    on_card(&mut card, holder, profile)
}

#[cfg(not(feature = "softcard"))]
fn software(_: &Holder, _: &Profile) -> Result<Provisioned, RunError> {
    Err(RunError::NoBackend("software"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// The `--json` result: one object with `serial`, `manufacturer`, `algorithms`,
/// `fingerprints` (`signature`, `encryption`, `authentication`), `ssh_key`,
/// `certificate`, `pins` (`user`, `admin`, or null), `backup_file` and `apdus`. It may
/// hold PINs, so it lives in a zeroizing buffer.
fn json_result(
    done: &Provisioned,
    pins: Option<&(Zeroizing<String>, Zeroizing<String>)>,
    backup_file: Option<&Path>,
) -> Zeroizing<String> {
    use crate::config::show::json_string as s;
    let [sig, dec, aut] = done.algorithms.map(|a| s(&a.to_string()));
    let [fsig, fdec, faut] = done.fingerprints.map(|f| s(&hex(&f)));
    let mut out = Zeroizing::new(String::with_capacity(4096));
    out.push_str(&format!("{{\n  \"serial\": {},\n", s(&done.serial)));
    out.push_str(&format!(
        "  \"manufacturer\": {},\n",
        done.manufacturer.map_or_else(|| "null".to_owned(), s)
    ));
    out.push_str(&format!("  \"algorithms\": [{sig}, {dec}, {aut}],\n"));
    out.push_str(&format!(
        "  \"fingerprints\": {{\"signature\": {fsig}, \"encryption\": {fdec}, \"authentication\": {faut}}},\n"
    ));
    out.push_str(&format!("  \"ssh_key\": {},\n", s(&done.ssh_key)));
    out.push_str(&format!("  \"certificate\": {},\n", s(&done.certificate)));
    match pins {
        Some((user, admin)) => {
            out.push_str("  \"pins\": {\"user\": ");
            out.push_str(&Zeroizing::new(s(user)));
            out.push_str(", \"admin\": ");
            out.push_str(&Zeroizing::new(s(admin)));
            out.push_str("},\n");
        }
        None => out.push_str("  \"pins\": null,\n"),
    }
    let backup = match backup_file.filter(|_| done.backup.is_some()) {
        Some(path) => s(&path.to_string_lossy()),
        None => "null".to_owned(),
    };
    out.push_str(&format!("  \"backup_file\": {backup},\n"));
    out.push_str(&format!("  \"apdus\": {}\n}}", done.apdus));
    out
}

/// `keystation provision`: provisions one card and writes the result to `out` — the only
/// place random PINs appear.
pub fn one_shot(
    choice: CardChoice,
    settings: &Settings,
    holder: &Holder,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), crate::Error> {
    let (profile, backup_file) = profile(settings, config::Attendance::Attended)?;
    check_backup_target(backup_file.as_deref())?;
    let search = crate::station::CardSearch::new(
        settings.smartcard_retries,
        settings.smartcard_retry_interval,
    );
    let done = provision_with(choice, settings, Some(&search), None, holder, &profile)?;
    if let (Some(path), Some(backup)) = (&backup_file, &done.backup) {
        write_backup(path, backup)?;
    }
    let pin_text = done.new_pins.as_ref().map(|pins| {
        (
            Zeroizing::new(String::from_utf8_lossy(pins.user.expose()).into_owned()),
            Zeroizing::new(String::from_utf8_lossy(pins.admin.expose()).into_owned()),
        )
    });
    if json {
        let text = json_result(&done, pin_text.as_ref(), backup_file.as_deref());
        writeln!(out, "{}", text.as_str())?;
        return Ok(());
    }
    let [sig, dec, aut] = done.algorithms;
    writeln!(
        out,
        "Provisioned OpenPGP card {} ({}): {sig} / {dec} / {aut}",
        done.serial,
        done.manufacturer.unwrap_or("unknown manufacturer")
    )?;
    writeln!(out, "Signature key:      {}", hex(&done.fingerprints[0]))?;
    writeln!(out, "Encryption key:     {}", hex(&done.fingerprints[1]))?;
    writeln!(out, "Authentication key: {}", hex(&done.fingerprints[2]))?;
    if let Some((user, admin)) = &pin_text {
        writeln!(out, "User PIN:           {}", user.as_str())?;
        writeln!(out, "Admin PIN:          {}", admin.as_str())?;
    }
    if let (Some(path), Some(_)) = (&backup_file, &done.backup) {
        writeln!(out, "Key backup:         {} (passphrase-protected)", path.display())?;
    }
    writeln!(out, "\nSSH public key:\n{}\n", done.ssh_key)?;
    write!(out, "{}", done.certificate)?;
    Ok(())
}

/// The station's provisioning: the configured profile on the card `choice` names; new
/// random PINs go to the station's console (`/dev/tty`), never to defguard or a log.
#[derive(Debug, Clone)]
pub struct StationJobs {
    choice: CardChoice,
    settings: Settings,
}

impl StationJobs {
    /// Jobs on `choice` with the profile in `settings`.
    pub fn new(choice: CardChoice, settings: Settings) -> Self {
        Self { choice, settings }
    }

    fn run(&self, job: &JobRequest, abort: &AbortSignal) -> Result<JobReport, RunError> {
        let holder = Holder::new(&job.first_name, &job.last_name, &job.email)?;
        let (profile, backup_file) = profile(&self.settings, config::Attendance::Unattended)?;
        check_backup_target(backup_file.as_deref())?;
        // Random PINs need somewhere to go before the card is touched.
        let console = match profile.pins {
            PinPlan::Random => Some(
                std::fs::OpenOptions::new()
                    .write(true)
                    .open("/dev/tty")
                    .map_err(RunError::NoConsole)?,
            ),
            _ => None,
        };
        let done = provision_with(
            self.choice,
            &self.settings,
            Some(&job.card_search),
            Some(abort),
            &holder,
            &profile,
        )?;
        if let (Some(path), Some(backup)) = (&backup_file, &done.backup) {
            write_backup(path, backup)?;
        }
        if let (Some(mut console), Some(pins)) = (console, &done.new_pins) {
            let mut text = Zeroizing::new(Vec::new());
            text.extend_from_slice(
                format!("\nCard {} for {}:\n  user PIN:  ", done.serial, holder.user_id())
                    .as_bytes(),
            );
            text.extend_from_slice(pins.user.expose());
            text.extend_from_slice(b"\n  admin PIN: ");
            text.extend_from_slice(pins.admin.expose());
            text.extend_from_slice(b"\n");
            console.write_all(&text).map_err(RunError::NoConsole)?;
        }
        let pins = self
            .settings
            .pin_policy
            .describe(config::Attendance::Unattended, self.settings.admin_pin_file.is_some());
        Ok(JobReport::new(done.certificate, done.ssh_key, done.serial).with_pins(pins))
    }
}

impl Provision for StationJobs {
    fn provision(&self, job: &JobRequest, abort: &AbortSignal) -> Result<JobReport, JobError> {
        self.run(job, abort).map_err(|error| JobError::new(crate::error::describe(&error)))
    }
}
