//! `keystation station`: the headless station (keystation-station) running the OpenPGP
//! flow (keystation-provision) for each job, with the profile and card the configuration
//! describes.

use std::sync::Arc;

use clap::Args;
use keystation_station::{JobRunner, StationSettings};

use super::options::{
    CardSearchOptions, CommonOptions, FlagGroups, ProfileOptions, StationOptions, command_line,
};
use crate::Error;
use crate::config::{CommandLine, ConfigError, Settings};

/// `keystation station …`
#[derive(Debug, Clone, Default, Args)]
#[non_exhaustive]
pub struct StationArgs {
    /// Which card each job uses: auto = the one card in a PC/SC reader (the built-in
    /// software card when there is none), pcsc, or software (a rehearsal)
    #[cfg(feature = "openpgp")]
    #[arg(long, value_name = "CARD", default_value = "pcsc", value_parser = super::options::card_choice_parser())]
    pub card: keystation_cards::CardChoice,
    /// How to reach defguard.
    #[command(flatten)]
    pub station: StationOptions,
    /// The card search of each job.
    #[command(flatten)]
    pub search: CardSearchOptions,
    /// The OpenPGP profile of each job.
    #[command(flatten)]
    pub profile: ProfileOptions,
}

impl StationArgs {
    /// The command line's configuration layer.
    pub(crate) fn command_line(&self, common: &CommonOptions) -> Result<CommandLine, ConfigError> {
        let groups = FlagGroups {
            station: Some(&self.station),
            search: Some(&self.search),
            profile: Some(&self.profile),
            authority: None,
        };
        command_line(common, groups)
    }
}

/// The station part of the configuration, with the default timings: the card each job is
/// for is the one `--card` names, as `reader`, `card_serial` and the retries narrow it.
pub fn station_settings(args: &StationArgs, settings: &Settings) -> StationSettings {
    let mut station = StationSettings::new(settings.id.clone(), settings.grpc_url.clone());
    station.grpc_ca = settings.grpc_ca.clone();
    station.token = settings.token.clone();
    station.token_file = settings.token_file.clone();
    station.allow_plaintext = settings.grpc_allow_plaintext;
    station.state_dir = settings
        .state_dir
        .clone()
        .or_else(|| std::env::var_os("STATE_DIRECTORY").map(std::path::PathBuf::from))
        // systemd may list several directories, separated by colons: use the first.
        .map(|dir| match dir.to_str().and_then(|d| d.split(':').next()) {
            Some(first) => std::path::PathBuf::from(first),
            None => dir,
        });
    station.package = settings.grpc_package;
    station.poll_interval = settings.poll_interval;
    #[cfg(feature = "openpgp")]
    {
        station.card = super::options::card_selection(settings, args.card, true);
    }
    #[cfg(not(feature = "openpgp"))]
    let _ = args;
    station
}

/// Runs the station until SIGTERM or SIGINT.
pub fn run(args: &StationArgs, settings: &Settings) -> Result<(), Error> {
    let jobs = job_runner(settings);
    keystation_station::run_until_signalled(station_settings(args, settings), jobs)?;
    Ok(())
}

/// What the station runs jobs with: the OpenPGP flow with the configured profile, or — in a build without the `openpgp` feature — a refusal of
/// every job.
fn job_runner(settings: &Settings) -> Arc<dyn JobRunner> {
    #[cfg(feature = "openpgp")]
    return Arc::new(openpgp::OpenPgpJobs::new(settings.clone()));
    #[cfg(not(feature = "openpgp"))]
    {
        let _ = settings;
        Arc::new(keystation_station::RefuseJobs)
    }
}

#[cfg(feature = "openpgp")]
mod openpgp {
    use std::io::Write as _;

    use keystation_provision::{
        Attendance, Holder, PinPlan, check_backup_target, provision_selected, write_backup,
    };
    use keystation_station::{AbortSignal, JobError, JobReport, JobRequest, JobRunner};
    use zeroize::Zeroizing;

    use super::super::profile::profile;
    use crate::Error;
    use crate::config::Settings;

    /// The station's jobs: the configured profile on the card each job names; new random
    /// PINs go to the station's console (`/dev/tty`), never to defguard or a log.
    #[derive(Debug, Clone)]
    pub(super) struct OpenPgpJobs {
        settings: Settings,
    }

    impl OpenPgpJobs {
        /// Jobs with the profile in `settings`.
        pub(super) fn new(settings: Settings) -> Self {
            Self { settings }
        }

        fn run(&self, job: &JobRequest, abort: &AbortSignal) -> Result<JobReport, Error> {
            let holder = Holder::new(&job.first_name, &job.last_name, &job.email)?;
            let (profile, backup_file) = profile(&self.settings, Attendance::Unattended)?;
            check_backup_target(backup_file.as_deref())?;
            // Random PINs need somewhere to go before the card is touched.
            let console = match profile.pins {
                PinPlan::Random => Some(
                    std::fs::OpenOptions::new()
                        .write(true)
                        .open("/dev/tty")
                        .map_err(Error::NoConsole)?,
                ),
                _ => None,
            };
            let done = provision_selected(&job.card, &holder, &profile, &|| abort.is_aborted())?;
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
                console.write_all(&text).map_err(Error::NoConsole)?;
            }
            let pins = self
                .settings
                .pin_policy
                .describe(Attendance::Unattended, self.settings.admin_pin_file.is_some());
            Ok(JobReport::new(done.certificate, done.ssh_key, done.serial).with_pins(pins))
        }
    }

    impl JobRunner for OpenPgpJobs {
        fn run_job(&self, job: &JobRequest, abort: &AbortSignal) -> Result<JobReport, JobError> {
            self.run(job, abort)
                .map_err(|error| JobError::new(keystation_core::describe_chain(&error)))
        }
    }
}
