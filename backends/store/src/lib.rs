//! keystation-store: the authority's store — provisioners, admins, spent token ids, issued
//! X.509 and SSH certificates, revocations, and the provisioning stations' job queue.
//!
//! One schema and one code path for two engines: SQLite (one file, the default) and
//! PostgreSQL (when several authority replicas share state). [`Store::open`] takes a URL,
//! brings the schema up to date with the migrations embedded from `migrations/` (written
//! in SQL both engines accept), and returns a cheap-to-clone handle on a connection pool.
//!
//! What is kept follows step-ca's database (`smallstep/certificates/db`): its `used_ott`
//! bucket becomes [`Store::spend_token`], `x509_certs` [`Store::record_certificate`],
//! `revoked_x509_certs` [`Store::revoke`], `ssh_certs` and the SSH host/user principal
//! buckets [`Store::record_ssh_certificate`]; its admin database (linkedca) the provisioner
//! and admin tables; defguard's worker protocol (`proto/worker/worker.proto`) the workers
//! and jobs.
//!
//! Operations that must hold across replicas are single statements whose outcome the
//! database decides: a spent token id or a revocation is an `INSERT … ON CONFLICT DO
//! NOTHING` whose row count says whether this call was first; counters are an `UPDATE …
//! RETURNING`; a job is finished by an `UPDATE` conditioned on its status. Nothing reads
//! first and writes after.
//!
//! Times are stored as whole unix seconds (fractions are dropped); times the store itself
//! stamps (`created_at`, `spent_at`, `last_seen`, `finished_at`, …) come from the system
//! clock.

mod acme;
mod admins;
mod error;
mod jobs;
mod provisioners;
mod ssh;
mod tokens;
mod x509;

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime};

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};
use sqlx::{AnyPool, Connection, Executor, Row};

pub use acme::{
    AcmeAccountCreated, AcmeAccountRecord, AcmeAuthorizationRecord, AcmeCertificateRecord,
    AcmeChallengeRecord, AcmeEabKeyRecord, AcmeOrderRecord, EabHmacKey, KeyChange,
};
pub use admins::{AdminRecord, AdminRole};
pub use error::{Error, Result};
pub use jobs::{Job, JobOutcome, JobStatus, NewJob, Registration, WorkerRecord};
pub use provisioners::{NewProvisioner, ProvisionerRecord};
pub use ssh::{RevokedSshCertificate, SshCertType, SshCertificateRecord};
pub use tokens::Spent;
pub use x509::{CertificateRecord, Revocation, RevocationDetails, RevokedCertificate};

use error::db;

/// The migrations, in order: (version, description, SQL). Every file in `migrations/` is
/// listed here (a test checks it), and a file once released is never edited — the
/// migrator refuses a database whose applied migration's checksum differs.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "initial", include_str!("../migrations/0001_initial.sql")),
    (2, "acme", include_str!("../migrations/0002_acme.sql")),
];

/// How long a SQLite connection waits for another writer before giving up.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Which database engine a [`Store`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// SQLite: one file (or memory), one authority.
    Sqlite,
    /// PostgreSQL: shared by any number of authority replicas.
    Postgres,
}

/// Pool settings for [`Store::open_with`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StoreOptions {
    /// Most connections the pool opens on PostgreSQL (default 10); SQLite always uses one
    /// (see [`Store::open_with`]).
    pub max_connections: u32,
    /// How long an operation waits for a free connection (default 30 s).
    pub acquire_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self { max_connections: 10, acquire_timeout: Duration::from_secs(30) }
    }
}

/// A handle on the store: a connection pool. Cloning is cheap and clones share the pool.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    engine: Engine,
}

/// The embedded migrations as a source for sqlx's migrator.
#[derive(Debug)]
struct Embedded;

impl MigrationSource<'static> for Embedded {
    fn resolve(
        self,
    ) -> Pin<
        Box<
            dyn Future<Output = std::result::Result<Vec<Migration>, sqlx::error::BoxDynError>>
                + Send
                + 'static,
        >,
    > {
        Box::pin(async {
            Ok(MIGRATIONS
                .iter()
                .map(|&(version, description, sql)| {
                    Migration::new(
                        version,
                        Cow::Borrowed(description),
                        MigrationType::Simple,
                        Cow::Borrowed(sql),
                        false,
                    )
                })
                .collect())
        })
    }
}

/// A database URL, sorted out.
struct Target {
    engine: Engine,
    /// The URL as sqlx's Any driver reads it.
    url: String,
    /// An in-memory SQLite database (lives as long as its one connection).
    memory: bool,
}

/// `url` with the password of its user info (`scheme://user:password@…`) replaced by `***`.
fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match (authority.rfind('@'), authority.find(':')) {
        (Some(at), Some(colon)) if colon < at => format!(
            "{}{}:***{}",
            &url[..scheme_end + 3],
            &authority[..colon],
            &url[scheme_end + 3 + at..]
        ),
        _ => url.to_owned(),
    }
}

fn parse_target(url: &str) -> Result<Target> {
    let unsupported = || Error::UnsupportedUrl { url: redact(url) };
    if let Some(rest) = url.strip_prefix("sqlite:") {
        let rest = rest.strip_prefix("//").unwrap_or(rest);
        let (path, query) = match rest.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (rest, None),
        };
        if path.is_empty() {
            return Err(unsupported());
        }
        let params: Vec<&str> =
            query.into_iter().flat_map(|q| q.split('&')).filter(|p| !p.is_empty()).collect();
        let memory = path == ":memory:" || params.contains(&"mode=memory");
        let mut query: Vec<&str> = params.clone();
        if !memory && !params.iter().any(|p| p.starts_with("mode=")) {
            // Create the file when it does not exist yet.
            query.push("mode=rwc");
        }
        let mut sqlx_url = format!("sqlite:{path}");
        if !query.is_empty() {
            sqlx_url.push('?');
            sqlx_url.push_str(&query.join("&"));
        }
        return Ok(Target { engine: Engine::Sqlite, url: sqlx_url, memory });
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Target { engine: Engine::Postgres, url: url.to_owned(), memory: false });
    }
    Err(unsupported())
}

impl Store {
    /// Opens the store at `url` with default pool settings; see [`Store::open_with`].
    pub async fn open(url: &str) -> Result<Self> {
        Self::open_with(url, &StoreOptions::default()).await
    }

    /// Opens the store at `url` and brings its schema up to date.
    ///
    /// - `sqlite://PATH` or `sqlite:PATH` (`sqlite:///abs/path` for an absolute path): the
    ///   file is created when missing and put in WAL journal mode (readers do not block the
    ///   writer); every connection enforces foreign keys and waits up to 10 s for another
    ///   writer. `sqlite::memory:` is a private in-memory database, for tests.
    /// - `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?…]` (or `postgresql://`), with
    ///   libpq's query parameters as sqlx reads them: `?host=/run/postgresql` for a unix
    ///   socket directory, `sslmode`, `sslrootcert`, … The database must exist. Replicas
    ///   may open it at the same time: migrations run under PostgreSQL's advisory lock.
    pub async fn open_with(url: &str, options: &StoreOptions) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let target = parse_target(url)?;

        if target.engine == Engine::Sqlite && !target.memory {
            // WAL is a property of the file: set it once, on a connection of its own,
            // before the pool exists (switching needs a lock busy_timeout does not wait on).
            let mut conn = sqlx::AnyConnection::connect(&target.url)
                .await
                .map_err(db("opening the SQLite database"))?;
            conn.execute(
                format!("PRAGMA busy_timeout = {}", SQLITE_BUSY_TIMEOUT.as_millis()).as_str(),
            )
            .await
            .map_err(db("setting SQLite's busy timeout"))?;
            let mode: String = sqlx::query_scalar("PRAGMA journal_mode = WAL")
                .fetch_one(&mut conn)
                .await
                .map_err(db("switching SQLite to WAL journal mode"))?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(Error::Invalid {
                    what: "SQLite database",
                    reason: format!(
                        "its journal mode stays {mode:?}: WAL is not available on this file system"
                    ),
                });
            }
            conn.close().await.map_err(db("closing the SQLite setup connection"))?;
        }

        let engine = target.engine;
        let mut pool_options = AnyPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.acquire_timeout)
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if engine == Engine::Sqlite {
                        let busy =
                            format!("PRAGMA busy_timeout = {}", SQLITE_BUSY_TIMEOUT.as_millis());
                        conn.execute(busy.as_str()).await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                        // In WAL mode NORMAL syncs at checkpoints, not at every commit: a
                        // commit survives the authority being killed (the kill -9 test),
                        // not a power cut right after it. FULL costs an fsync per write —
                        // two per certificate — and capped a loaded authority at the disk's
                        // fsync rate. Replicas that need more keep their state in
                        // PostgreSQL, whose commits are synchronous.
                        conn.execute("PRAGMA synchronous = NORMAL").await?;
                    }
                    Ok(())
                })
            });
        if engine == Engine::Sqlite && !target.memory {
            // SQLite takes one writer at a time and makes the others wait in its busy
            // handler, which sleeps in steps of up to 100 ms: with several connections a
            // loaded authority's writes (a spent token id and a certificate record per
            // request) queue there, and its p99 latency grew twentyfold. One connection
            // queues them in the pool instead, in order and without sleeping.
            pool_options = pool_options.max_connections(1);
        }
        if target.memory {
            // Every connection to `:memory:` is a database of its own: keep exactly one,
            // forever.
            pool_options = pool_options
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None);
        }
        let pool =
            pool_options.connect(&target.url).await.map_err(db("connecting to the database"))?;

        let migrator =
            Migrator::new(Embedded).await.map_err(|e| Error::Migration { source: Box::new(e) })?;
        if let Err(first) = migrator.run(&pool).await {
            // SQLite has no lock for the migrator to take: when two processes create the
            // same new file at once, the second's migration fails on the tables the first
            // just made, and its transaction rolls back. Looking again finds them applied.
            if engine != Engine::Sqlite {
                return Err(Error::Migration { source: Box::new(first) });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            migrator.run(&pool).await.map_err(|e| Error::Migration { source: Box::new(e) })?;
        }

        Ok(Self { pool, engine })
    }

    /// The engine this store runs on.
    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// Closes every connection of the pool (shared by all clones); operations after this
    /// fail.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Takes the next value of the counter `name`, atomically across connections and
    /// replicas.
    pub(crate) async fn next_counter(&self, name: &str, context: &'static str) -> Result<i64> {
        sqlx::query_scalar("UPDATE counters SET value = value + 1 WHERE name = $1 RETURNING value")
            .bind(name)
            .fetch_one(&self.pool)
            .await
            .map_err(db(context))
    }

    /// The next CRL number (RFC 5280 §5.2.3): 1, 2, 3, …, never the same twice, across
    /// replicas sharing the database.
    pub async fn next_crl_number(&self) -> Result<u64> {
        let n = self.next_counter("crl_number", "taking the next CRL number").await?;
        u64::try_from(n)
            .map_err(|_| Error::Corrupt { what: "CRL number", reason: format!("{n} is negative") })
    }
}

/// `t` as whole unix seconds.
pub(crate) fn to_secs(what: &'static str, t: SystemTime) -> Result<i64> {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_err(|_| Error::Invalid { what, reason: "before 1970-01-01".into() })?
        .as_secs();
    i64::try_from(secs).map_err(|_| Error::Invalid { what, reason: "too far in the future".into() })
}

/// Unix seconds as a time.
pub(crate) fn from_secs(what: &'static str, secs: i64) -> Result<SystemTime> {
    let corrupt = || Error::Corrupt { what, reason: format!("{secs} is not a time") };
    let secs = u64::try_from(secs).map_err(|_| corrupt())?;
    SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(secs)).ok_or_else(corrupt)
}

/// The system clock in unix seconds.
pub(crate) fn now_secs() -> Result<i64> {
    to_secs("system clock", SystemTime::now())
}

/// Column `name` of `row`.
pub(crate) fn col<'r, T>(row: &'r AnyRow, name: &'static str) -> Result<T>
where
    T: sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    row.try_get(name).map_err(|e| Error::Corrupt { what: name, reason: e.to_string() })
}

/// Time column `name` of `row`.
pub(crate) fn time_col(row: &AnyRow, name: &'static str) -> Result<SystemTime> {
    from_secs(name, col(row, name)?)
}

/// Optional time column `name` of `row`.
pub(crate) fn opt_time_col(row: &AnyRow, name: &'static str) -> Result<Option<SystemTime>> {
    col::<Option<i64>>(row, name)?.map(|s| from_secs(name, s)).transpose()
}

/// Joins a list of names (SANs, principals) one per line, refusing names that contain a
/// line break or are empty.
pub(crate) fn join_lines(what: &'static str, names: &[String]) -> Result<String> {
    if let Some(bad) = names.iter().find(|n| n.is_empty() || n.contains(['\n', '\r'])) {
        return Err(Error::Invalid {
            what,
            reason: format!("{bad:?} is empty or contains a line break"),
        });
    }
    Ok(names.join("\n"))
}

/// Splits what [`join_lines`] joined.
pub(crate) fn split_lines(joined: &str) -> Vec<String> {
    if joined.is_empty() { Vec::new() } else { joined.split('\n').map(str::to_owned).collect() }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn every_migration_file_is_embedded_in_order() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        files.sort();
        assert_eq!(files.len(), MIGRATIONS.len(), "{files:?}");
        for (file, &(version, description, sql)) in files.iter().zip(MIGRATIONS) {
            assert_eq!(file, &format!("{version:04}_{description}.sql"));
            assert_eq!(std::fs::read_to_string(dir.join(file)).unwrap(), sql);
        }
    }

    #[test]
    fn sqlite_urls_create_the_file_and_keep_their_parameters() {
        let t = parse_target("sqlite:///var/lib/keystation/ca.db").unwrap();
        assert_eq!(t.engine, Engine::Sqlite);
        assert_eq!(t.url, "sqlite:/var/lib/keystation/ca.db?mode=rwc");
        assert!(!t.memory);
        let t = parse_target("sqlite://ca.db").unwrap();
        assert_eq!(t.url, "sqlite:ca.db?mode=rwc");
        let t = parse_target("sqlite:ca.db?mode=ro").unwrap();
        assert_eq!(t.url, "sqlite:ca.db?mode=ro");
        let t = parse_target("sqlite::memory:").unwrap();
        assert!(t.memory);
        assert_eq!(t.url, "sqlite::memory:");
        assert!(parse_target("sqlite://").is_err());
    }

    #[test]
    fn postgres_urls_pass_through_and_others_are_refused() {
        let t = parse_target("postgres://ca@localhost/ca?host=/run/postgresql").unwrap();
        assert_eq!(t.engine, Engine::Postgres);
        assert_eq!(t.url, "postgres://ca@localhost/ca?host=/run/postgresql");
        assert_eq!(parse_target("postgresql://db/ca").unwrap().engine, Engine::Postgres);
        let e = parse_target("mysql://root:hunter2@db/ca").err().unwrap();
        let shown = e.to_string();
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("mysql://root:***@db/ca"), "{shown}");
    }

    #[test]
    fn redaction_leaves_urls_without_a_password_alone() {
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("postgres://u:p@h/db?x=1"), "postgres://u:***@h/db?x=1");
        assert_eq!(redact("postgres://h:5432/db"), "postgres://h:5432/db");
        assert_eq!(redact("nonsense"), "nonsense");
    }

    #[test]
    fn times_round_trip_in_whole_seconds() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_999);
        let s = to_secs("t", t).unwrap();
        assert_eq!(s, 1_700_000_000);
        assert_eq!(
            from_secs("t", s).unwrap(),
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
        );
        assert!(to_secs("t", SystemTime::UNIX_EPOCH - Duration::from_secs(1)).is_err());
        assert!(from_secs("t", -1).is_err());
    }

    #[test]
    fn lines_join_and_split_back() {
        let names = vec!["a.example".to_owned(), "10.0.0.1".to_owned()];
        assert_eq!(split_lines(&join_lines("sans", &names).unwrap()), names);
        assert!(split_lines("").is_empty());
        assert!(join_lines("sans", &["a\nb".to_owned()]).is_err());
        assert!(join_lines("sans", &[String::new()]).is_err());
    }
}
