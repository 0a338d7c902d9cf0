//! A fresh database per test, on SQLite (a file in a temporary directory) or PostgreSQL
//! (a database of its own on the server that `KEYSTATION_TEST_POSTGRES_URL` names, which
//! `scripts/with-postgres` starts).

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::panic)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime};

use keystation_store::Store;
use sqlx::Connection;

/// The environment variable naming the PostgreSQL server the tests use.
pub const POSTGRES_URL_VAR: &str = "KEYSTATION_TEST_POSTGRES_URL";

/// One test's database.
pub struct TestDb {
    url: String,
    kind: Kind,
}

enum Kind {
    Sqlite { _dir: tempfile::TempDir },
    Postgres { server_url: String, name: String },
}

/// `url` with its database (the path after the host) replaced by `database`.
fn with_database(url: &str, database: &str) -> String {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let (base, query) = match url.find('?') {
        Some(q) => (&url[..q], &url[q..]),
        None => (url, ""),
    };
    let path_start = base[after_scheme..].find('/').map_or(base.len(), |i| after_scheme + i);
    format!("{}/{database}{query}", &base[..path_start])
}

impl TestDb {
    /// A new SQLite database file.
    pub async fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("store.db").display());
        Self { url, kind: Kind::Sqlite { _dir: dir } }
    }

    /// A new, empty PostgreSQL database; fails the test when no server is configured.
    pub async fn postgres() -> Self {
        let server_url = std::env::var(POSTGRES_URL_VAR).unwrap_or_else(|_| {
            panic!(
                "{POSTGRES_URL_VAR} is not set: the PostgreSQL half of the store tests needs a \
                 server; run them under scripts/with-postgres, e.g. \
                 `scripts/with-postgres cargo test -p keystation-store`"
            )
        });
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let nanos =
            SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().subsec_nanos();
        let name = format!(
            "keystation_test_{}_{}_{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut conn = sqlx::PgConnection::connect(&server_url)
            .await
            .unwrap_or_else(|e| panic!("connecting to {server_url}: {e}"));
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.unwrap();
        conn.close().await.unwrap();
        Self { url: with_database(&server_url, &name), kind: Kind::Postgres { server_url, name } }
    }

    /// The database's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Whether this is the SQLite half.
    pub fn is_sqlite(&self) -> bool {
        matches!(self.kind, Kind::Sqlite { .. })
    }

    /// A new store handle on this database, with a pool of its own (like another replica).
    pub async fn open(&self) -> Store {
        Store::open(&self.url)
            .await
            .unwrap_or_else(|e| panic!("opening {}: {e} ({:?})", self.url, e))
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Kind::Postgres { server_url, name } = &self.kind {
            let server_url = server_url.clone();
            let name = name.clone();
            let shown = name.clone();
            // Drop runs inside the test's runtime, which must not be blocked on: drop the
            // database from a thread with a runtime of its own.
            let dropped = std::thread::spawn(move || {
                let rt =
                    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                rt.block_on(async {
                    let mut conn = sqlx::PgConnection::connect(&server_url).await?;
                    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut conn)
                        .await?;
                    conn.close().await
                })
            })
            .join();
            match dropped {
                Ok(Ok(())) => {}
                Ok(Err(e)) if !std::thread::panicking() => panic!("dropping database {shown}: {e}"),
                _ => {}
            }
        }
    }
}

/// Unix time `secs`.
pub fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

/// Runs each named test body (an `async fn(&TestDb)`) once on SQLite and once on
/// PostgreSQL, as `NAME::sqlite` and `NAME::postgres`.
#[macro_export]
macro_rules! on_both_engines {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn sqlite() {
                    let db = $crate::support::TestDb::sqlite().await;
                    super::$name(&db).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn postgres() {
                    let db = $crate::support::TestDb::postgres().await;
                    super::$name(&db).await;
                }
            }
        )*
    };
}

#[test]
fn database_names_replace_the_path_only() {
    assert_eq!(
        with_database("postgres://postgres@localhost/postgres?host=/tmp/x", "t1"),
        "postgres://postgres@localhost/t1?host=/tmp/x"
    );
    assert_eq!(with_database("postgres://u:p@db:5433", "t2"), "postgres://u:p@db:5433/t2");
    assert_eq!(
        with_database("postgresql://db/main?sslmode=require", "t3"),
        "postgresql://db/t3?sslmode=require"
    );
}
