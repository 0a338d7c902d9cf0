//! The station's note of the job it is running, so that a job during which the station
//! dies is not taken again forever.
//!
//! defguard keeps a job queued until `SetJobDone` (DESIGN §3), so a station that dies
//! mid-job — the release build aborts on a panic, the OOM killer, a power cut, `kill -9` —
//! is offered the same job again when systemd restarts it. Running it again is right once
//! (the flow starts with a factory reset, so a half-provisioned card is no obstacle); a job
//! that kills the station every time would otherwise loop for ever. Before a job runs, the
//! station writes `<state_dir>/running-job` (`JOB_ID STARTS`); once the outcome is
//! delivered, it removes the file. A job found there with [`MAX_STARTS`] starts already is
//! reported as failed without running it.
//!
//! The file holds a job id and a count, nothing about the holder and nothing secret. It is
//! written to a temporary file, synced and renamed, so a power cut leaves the old note or
//! the new one, never half of one.

use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

/// How many times one job may be started before the station gives up on it: a first run
/// and two more after the station died during it.
pub(crate) const MAX_STARTS: u32 = 3;

const FILE: &str = "running-job";

/// The note in one state directory.
#[derive(Debug, Clone)]
pub(crate) struct Journal {
    path: PathBuf,
}

/// What [`Journal::start`] decided for a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Start {
    /// Run the job; this is its `n`th start (1 unless the station died during it before).
    Run(u32),
    /// The station died during each of this job's [`MAX_STARTS`] starts: fail it.
    GiveUp,
}

impl Journal {
    /// The journal in `dir`, which is created if missing; fails if no note can be written
    /// there (checked now, not at the first job).
    pub(crate) fn open(dir: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let journal = Self { path: dir.join(FILE) };
        let probe = dir.join(format!(".{FILE}.probe"));
        std::fs::write(&probe, b"")?;
        std::fs::remove_file(&probe)?;
        Ok(journal)
    }

    /// Notes that `job_id` starts, counting earlier starts of the same job that never
    /// finished; a note of another job (one whose station died, then defguard dropped it)
    /// is replaced.
    pub(crate) fn start(&self, job_id: u32) -> io::Result<Start> {
        let earlier = match std::fs::read_to_string(&self.path) {
            Ok(text) => parse(&text).filter(|(id, _)| *id == job_id).map_or(0, |(_, n)| n),
            Err(error) if error.kind() == io::ErrorKind::NotFound => 0,
            Err(error) => return Err(error),
        };
        if earlier >= MAX_STARTS {
            return Ok(Start::GiveUp);
        }
        let starts = earlier + 1;
        self.write(&format!("{job_id} {starts}\n"))?;
        Ok(Start::Run(starts))
    }

    /// Forgets the note once the job's outcome is with defguard.
    pub(crate) fn finish(&self) -> io::Result<()> {
        match std::fs::remove_file(&self.path) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
            _ => Ok(()),
        }
    }

    fn write(&self, text: &str) -> io::Result<()> {
        let temporary = self.path.with_extension("tmp");
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&temporary, &self.path)?;
        // The rename itself reaches the disk with the directory.
        if let Some(dir) = self.path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    }
}

/// `JOB_ID STARTS`; anything else (a file cut short, edited by hand) is no note.
fn parse(text: &str) -> Option<(u32, u32)> {
    let mut words = text.split_ascii_whitespace();
    let id = words.next()?.parse().ok()?;
    let starts = words.next()?.parse().ok()?;
    words.next().is_none().then_some((id, starts))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn counts_starts_of_one_job_and_gives_up() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(&dir.path().join("state")).unwrap();
        assert_eq!(journal.start(7).unwrap(), Start::Run(1));
        // The station died; after the restart defguard offers job 7 again.
        assert_eq!(journal.start(7).unwrap(), Start::Run(2));
        assert_eq!(journal.start(7).unwrap(), Start::Run(3));
        assert_eq!(journal.start(7).unwrap(), Start::GiveUp);
        // Another job replaces the note.
        assert_eq!(journal.start(8).unwrap(), Start::Run(1));
        journal.finish().unwrap();
        assert_eq!(journal.start(8).unwrap(), Start::Run(1));
        journal.finish().unwrap();
        journal.finish().unwrap();
        assert!(!dir.path().join("state").join(FILE).exists());
    }

    #[test]
    fn a_damaged_note_counts_as_none() {
        for text in ["", "7", "7 x", "7 2 9", "-1 2", "\u{0}"] {
            assert_eq!(parse(text), None, "{text:?}");
        }
        assert_eq!(parse("7 2\n"), Some((7, 2)));
    }

    #[test]
    fn an_unwritable_directory_is_refused_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a-file");
        std::fs::write(&file, b"").unwrap();
        assert!(Journal::open(&file).is_err());
    }
}
