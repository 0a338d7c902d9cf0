//! Provisioning stations and their jobs, as defguard core keeps them for its worker
//! protocol (`proto/worker/worker.proto`): a worker registers, polls for the oldest queued
//! job, and reports its outcome; a job stays queued until reported.

use std::fmt;
use std::time::SystemTime;

use sqlx::any::AnyRow;

use crate::error::db;
use crate::{Error, Result, Store, col, now_secs, opt_time_col, time_col};

/// A job's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobStatus {
    /// Waiting for a worker to report it.
    Queued,
    /// A worker reported success.
    Done,
    /// A worker reported failure.
    Failed,
}

impl JobStatus {
    /// The stored name: `queued`, `done` or `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        match s {
            "queued" => Ok(Self::Queued),
            "done" => Ok(Self::Done),
            "failed" => Ok(Self::Failed),
            _ => Err(Error::Corrupt { what: "job status", reason: format!("{s:?}") }),
        }
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A job to queue: the user whose keys go onto a card (GetJobResponse's fields).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    /// The worker that should run it; `None`: whichever worker asks first.
    pub worker: Option<String>,
    /// The user's first name.
    pub first_name: String,
    /// The user's last name.
    pub last_name: String,
    /// The user's e-mail address.
    pub email: String,
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// Its id (GetJobResponse.job_id, a uint32).
    pub id: u32,
    /// The worker it is queued for; `None`: any.
    pub worker: Option<String>,
    /// The user's first name.
    pub first_name: String,
    /// The user's last name.
    pub last_name: String,
    /// The user's e-mail address.
    pub email: String,
    /// Queued, done or failed.
    pub status: JobStatus,
    /// On success: the ASCII-armoured OpenPGP certificate.
    pub public_key: Option<String>,
    /// On success: the OpenSSH public key of the authentication key.
    pub ssh_key: Option<String>,
    /// On success: the card's serial number.
    pub yubikey_serial: Option<String>,
    /// On failure: the worker's error message.
    pub error: Option<String>,
    /// When it was queued.
    pub created_at: SystemTime,
    /// When it was reported.
    pub finished_at: Option<SystemTime>,
    /// The worker that reported it.
    pub finished_by: Option<String>,
}

/// What a worker reports (JobStatus's fields).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    /// The card is provisioned.
    Success {
        /// ASCII-armoured OpenPGP certificate.
        public_key: String,
        /// OpenSSH public key of the authentication key.
        ssh_key: String,
        /// The card's serial number.
        yubikey_serial: String,
    },
    /// Provisioning failed.
    Failure {
        /// Why, in words.
        error: String,
    },
}

/// The outcome of [`Store::register_worker`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registration {
    /// The worker is new.
    Registered,
    /// A worker with this id was registered before (defguard answers ALREADY_EXISTS; the
    /// station carries on).
    AlreadyExists,
}

/// A worker as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerRecord {
    /// Its id.
    pub id: String,
    /// When it first registered.
    pub registered_at: SystemTime,
    /// When it last registered, polled or reported (whole seconds).
    pub last_seen: SystemTime,
}

const COLUMNS: &str = "id, worker, first_name, last_name, email, status, public_key, ssh_key, \
                       yubikey_serial, error, created_at, finished_at, finished_by";

fn job_id(id: i64) -> Result<u32> {
    u32::try_from(id).map_err(|_| Error::Corrupt {
        what: "job id",
        reason: format!("{id} does not fit a uint32"),
    })
}

fn from_row(row: &AnyRow) -> Result<Job> {
    Ok(Job {
        id: job_id(col(row, "id")?)?,
        worker: col(row, "worker")?,
        first_name: col(row, "first_name")?,
        last_name: col(row, "last_name")?,
        email: col(row, "email")?,
        status: JobStatus::parse(&col::<String>(row, "status")?)?,
        public_key: col(row, "public_key")?,
        ssh_key: col(row, "ssh_key")?,
        yubikey_serial: col(row, "yubikey_serial")?,
        error: col(row, "error")?,
        created_at: time_col(row, "created_at")?,
        finished_at: opt_time_col(row, "finished_at")?,
        finished_by: col(row, "finished_by")?,
    })
}

fn worker_from_row(row: &AnyRow) -> Result<WorkerRecord> {
    Ok(WorkerRecord {
        id: col(row, "id")?,
        registered_at: time_col(row, "registered_at")?,
        last_seen: time_col(row, "last_seen")?,
    })
}

fn worker_not_found(id: &str) -> Error {
    Error::NotFound { what: "worker", key: id.to_owned() }
}

impl Store {
    /// Queues a job; its id is the next of a counter shared by all replicas (1, 2, …).
    pub async fn add_job(&self, new: &NewJob) -> Result<Job> {
        let id = self.next_counter("job_id", "taking the next job id").await?;
        let id = u32::try_from(id).map_err(|_| Error::Invalid {
            what: "job id",
            reason: format!("the job ids are used up ({id} does not fit a uint32)"),
        })?;
        sqlx::query(
            "INSERT INTO jobs (id, worker, first_name, last_name, email, status, created_at) \
             VALUES ($1, $2, $3, $4, $5, 'queued', $6)",
        )
        .bind(i64::from(id))
        .bind(new.worker.as_deref())
        .bind(&new.first_name)
        .bind(&new.last_name)
        .bind(&new.email)
        .bind(now_secs()?)
        .execute(self.pool())
        .await
        .map_err(db("queueing a job"))?;
        self.job(id).await?.ok_or_else(|| Error::NotFound { what: "job", key: id.to_string() })
    }

    /// Every job, oldest first.
    pub async fn list_jobs(&self) -> Result<Vec<Job>> {
        let sql = format!("SELECT {COLUMNS} FROM jobs ORDER BY id");
        sqlx::query(&sql)
            .fetch_all(self.pool())
            .await
            .map_err(db("listing jobs"))?
            .iter()
            .map(from_row)
            .collect()
    }

    /// Job `id`, if there is one.
    pub async fn job(&self, id: u32) -> Result<Option<Job>> {
        let sql = format!("SELECT {COLUMNS} FROM jobs WHERE id = $1");
        sqlx::query(&sql)
            .bind(i64::from(id))
            .fetch_optional(self.pool())
            .await
            .map_err(db("reading a job"))?
            .as_ref()
            .map(from_row)
            .transpose()
    }

    /// The oldest queued job for `worker` or for any worker (GetJob). The job stays queued
    /// until a worker reports it: asking again returns it again.
    pub async fn next_job_for(&self, worker: &str) -> Result<Option<Job>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM jobs WHERE status = 'queued' \
             AND (worker IS NULL OR worker = $1) ORDER BY id LIMIT 1"
        );
        sqlx::query(&sql)
            .bind(worker)
            .fetch_optional(self.pool())
            .await
            .map_err(db("looking for a queued job"))?
            .as_ref()
            .map(from_row)
            .transpose()
    }

    /// Records what `worker` reports for job `id` (SetJobDone), in one conditional update:
    /// of concurrent reports exactly one succeeds. Refused with [`Error::NotFound`] for an
    /// unknown job, [`Error::JobNotQueued`] for a job reported before, and
    /// [`Error::JobOfAnotherWorker`] for a job queued for another worker.
    pub async fn finish_job(&self, worker: &str, id: u32, outcome: &JobOutcome) -> Result<()> {
        let (status, public_key, ssh_key, yubikey_serial, error) = match outcome {
            JobOutcome::Success { public_key, ssh_key, yubikey_serial } => (
                JobStatus::Done,
                Some(public_key.as_str()),
                Some(ssh_key.as_str()),
                Some(yubikey_serial.as_str()),
                None,
            ),
            JobOutcome::Failure { error } => {
                (JobStatus::Failed, None, None, None, Some(error.as_str()))
            }
        };
        let done = sqlx::query(
            "UPDATE jobs SET status = $3, public_key = $4, ssh_key = $5, yubikey_serial = $6, \
             error = $7, finished_at = $8, finished_by = $2 \
             WHERE id = $1 AND status = 'queued' AND (worker IS NULL OR worker = $2)",
        )
        .bind(i64::from(id))
        .bind(worker)
        .bind(status.as_str())
        .bind(public_key)
        .bind(ssh_key)
        .bind(yubikey_serial)
        .bind(error)
        .bind(now_secs()?)
        .execute(self.pool())
        .await
        .map_err(db("recording a job's outcome"))?;
        if done.rows_affected() == 1 {
            return Ok(());
        }
        // Refused: say why (the update decided; this read only explains).
        let job = self
            .job(id)
            .await?
            .ok_or_else(|| Error::NotFound { what: "job", key: id.to_string() })?;
        match job.worker {
            Some(owner) if owner != worker && job.status == JobStatus::Queued => {
                Err(Error::JobOfAnotherWorker { id, owner, worker: worker.to_owned() })
            }
            _ => Err(Error::JobNotQueued { id, status: job.status }),
        }
    }

    /// Registers worker `id` (RegisterWorker); a known id is [`Registration::AlreadyExists`]
    /// and only counts as being seen.
    pub async fn register_worker(&self, id: &str) -> Result<Registration> {
        if id.is_empty() {
            return Err(Error::Invalid { what: "worker id", reason: "empty".into() });
        }
        let now = now_secs()?;
        let done = sqlx::query(
            "INSERT INTO workers (id, registered_at, last_seen) VALUES ($1, $2, $2) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(now)
        .execute(self.pool())
        .await
        .map_err(db("registering a worker"))?;
        if done.rows_affected() == 1 {
            return Ok(Registration::Registered);
        }
        self.touch_worker(id).await?;
        Ok(Registration::AlreadyExists)
    }

    /// Notes that worker `id` was just seen; [`Error::NotFound`] if it never registered.
    pub async fn touch_worker(&self, id: &str) -> Result<()> {
        let done = sqlx::query("UPDATE workers SET last_seen = $2 WHERE id = $1")
            .bind(id)
            .bind(now_secs()?)
            .execute(self.pool())
            .await
            .map_err(db("noting a worker's visit"))?;
        if done.rows_affected() == 0 {
            return Err(worker_not_found(id));
        }
        Ok(())
    }

    /// Worker `id`, if it registered.
    pub async fn worker(&self, id: &str) -> Result<Option<WorkerRecord>> {
        sqlx::query("SELECT id, registered_at, last_seen FROM workers WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await
            .map_err(db("reading a worker"))?
            .as_ref()
            .map(worker_from_row)
            .transpose()
    }

    /// Every registered worker, by id.
    pub async fn workers(&self) -> Result<Vec<WorkerRecord>> {
        sqlx::query("SELECT id, registered_at, last_seen FROM workers ORDER BY id")
            .fetch_all(self.pool())
            .await
            .map_err(db("listing workers"))?
            .iter()
            .map(worker_from_row)
            .collect()
    }
}
