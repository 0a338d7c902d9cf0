//! Running the flow on the card a [`CardSelection`] names, and the key backup file.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use keystation_cards::CardSelection;
use keystation_core::{Card, Transaction, TransportFailure};

use crate::flow::STEP_SELECT;
use crate::{Holder, Profile, ProvisionError, Provisioned, provision};

/// Why a provisioning run failed before or around the flow itself.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The flow failed.
    #[error(transparent)]
    Provision(#[from] ProvisionError),
    /// No card could be opened.
    #[error(transparent)]
    Card(#[from] keystation_cards::Error),
    /// The card transaction could not begin.
    #[error("begin a card transaction: {0}")]
    Transaction(#[source] keystation_core::Error),
    /// The backup file exists already, or cannot be written.
    #[error("backup file {}: {reason}", path.display())]
    BackupFile {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The job was aborted.
    #[error("aborted by station shutdown")]
    Aborted,
}

/// Seconds since 1970, as OpenPGP timestamps them (RFC 4880 §3.5).
fn now() -> u32 {
    let seconds = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    u32::try_from(seconds).unwrap_or(u32::MAX)
}

/// Refuses a backup file that exists (keystation never overwrites a key backup); checked
/// before the card is touched.
pub fn check_backup_target(path: Option<&Path>) -> Result<(), RunError> {
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
pub fn write_backup(path: &Path, backup: &str) -> Result<(), RunError> {
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

/// Runs the flow on `card` inside one card transaction, with the operating system's
/// random numbers and the current time.
pub fn provision_card(
    card: &mut dyn Card,
    holder: &Holder,
    profile: &Profile,
) -> Result<Provisioned, RunError> {
    let mut transaction = Transaction::begin(card).map_err(RunError::Transaction)?;
    let mut rng = keystation_keygen::OsRandom;
    Ok(provision(transaction.card(), holder, profile, now(), &mut rng)?)
}

/// Opens the card `selection` names (waiting for it as the selection says; `stopped` ends
/// the wait) and runs the flow on it.
///
/// A card that pcscd still listed but that had been pulled fails at the first command,
/// before anything on any card changed: then the card is let go of (a stale exclusive
/// handle would keep the card's return from being granted) and looked for again, once,
/// if the selection allows another look.
pub fn provision_selected(
    selection: &CardSelection,
    holder: &Holder,
    profile: &Profile,
    stopped: &dyn Fn() -> bool,
) -> Result<Provisioned, RunError> {
    let open = |selection: &CardSelection| {
        keystation_cards::open(selection, stopped).map_err(|error| match error {
            keystation_cards::Error::Stopped => RunError::Aborted,
            error => error.into(),
        })
    };
    let mut card = open(selection)?;
    match provision_card(&mut card, holder, profile) {
        Err(error) if gone_before_select(&error) && selection.retries > 0 => {
            drop(card);
            tracing::info!("the card went away before the job began; looking again");
            let mut card = open(&selection.with_one_retry_less())?;
            provision_card(&mut card, holder, profile)
        }
        result => result,
    }
}

/// Whether the run failed because the card was gone already at the first command (the
/// SELECT), before anything on it changed.
fn gone_before_select(error: &RunError) -> bool {
    let RunError::Provision(ProvisionError::Card { step, source }) = error else {
        return false;
    };
    let gone =
        |kind| matches!(kind, Some(TransportFailure::CardRemoved | TransportFailure::NoCard));
    *step == STEP_SELECT
        && std::error::Error::source(source)
            .and_then(|e| e.downcast_ref::<keystation_core::Error>())
            .is_some_and(|e| gone(e.transport_failure()))
}
