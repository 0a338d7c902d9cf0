//! The store's one error type.

use crate::jobs::JobStatus;

/// A boxed error from the database driver; its type stays private to this crate.
pub(crate) type DriverError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can fail in keystation-store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The database URL names neither SQLite nor PostgreSQL, or cannot be read.
    #[error("unsupported database URL {url:?}: expected sqlite://PATH or postgres://…")]
    UnsupportedUrl {
        /// The URL as given, with any password replaced by `***`.
        url: String,
    },
    /// The database could not be reached, or a statement failed; `source` carries the
    /// driver's error (error reports walk the `source` chain to show it).
    #[error("database error while {context}")]
    Database {
        /// What the store was doing.
        context: &'static str,
        /// The driver's own error.
        #[source]
        source: DriverError,
    },
    /// Bringing the schema up to date failed (or the database holds a newer schema than
    /// this build knows).
    #[error("migrating the database schema failed")]
    Migration {
        /// The migrator's own error.
        #[source]
        source: DriverError,
    },
    /// A record with this key exists already (provisioner name, admin, certificate serial).
    #[error("{what} {key:?} already exists")]
    AlreadyExists {
        /// What kind of record.
        what: &'static str,
        /// Its key.
        key: String,
    },
    /// No record with this key.
    #[error("{what} {key:?} not found")]
    NotFound {
        /// What kind of record.
        what: &'static str,
        /// Its key.
        key: String,
    },
    /// A value handed to the store cannot be stored as it is.
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// Which value.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// A worker reported a job that is not queued any more.
    #[error("job {id} is not queued: it is {status}")]
    JobNotQueued {
        /// The job.
        id: u32,
        /// Its status.
        status: JobStatus,
    },
    /// A worker reported a job queued for another worker.
    #[error("job {id} is queued for worker {owner:?}, not {worker:?}")]
    JobOfAnotherWorker {
        /// The job.
        id: u32,
        /// The worker it is queued for.
        owner: String,
        /// The worker that reported it.
        worker: String,
    },
    /// A stored value does not read back as this version of the store wrote it (a newer
    /// schema, or a row changed by hand).
    #[error("stored {what} is unreadable: {reason}")]
    Corrupt {
        /// Which value.
        what: &'static str,
        /// Why.
        reason: String,
    },
}

/// The store's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Wraps a driver error with what the store was doing.
pub(crate) fn db(context: &'static str) -> impl FnOnce(sqlx::Error) -> Error {
    move |e| Error::Database { context, source: Box::new(e) }
}
