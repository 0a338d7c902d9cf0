//! Administrators (step-ca's admin database: a subject, the provisioner it authenticates
//! through, and a role).

use std::fmt;
use std::str::FromStr;
use std::time::SystemTime;

use sqlx::any::AnyRow;

use crate::error::db;
use crate::{Error, Result, Store, col, now_secs, time_col};

/// What an administrator may do (step-ca's `ADMIN` and `SUPER_ADMIN`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AdminRole {
    /// Manages certificates.
    Admin,
    /// Also manages provisioners and admins.
    SuperAdmin,
}

impl AdminRole {
    /// The stored name: `admin` or `super-admin`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::SuperAdmin => "super-admin",
        }
    }
}

impl fmt::Display for AdminRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AdminRole {
    type Err = Error;

    /// `admin` or `super-admin` (also step-ca's `ADMIN` and `SUPER_ADMIN`).
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "admin" | "ADMIN" => Ok(Self::Admin),
            "super-admin" | "SUPER_ADMIN" => Ok(Self::SuperAdmin),
            _ => Err(Error::Invalid {
                what: "admin role",
                reason: format!("{s:?} is neither admin nor super-admin"),
            }),
        }
    }
}

/// An administrator as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminRecord {
    /// Who: the subject of the admin's certificate or token.
    pub subject: String,
    /// The provisioner the admin authenticates through.
    pub provisioner: String,
    /// What the admin may do.
    pub role: AdminRole,
    /// When the admin was added.
    pub created_at: SystemTime,
}

const COLUMNS: &str = "subject, provisioner, role, created_at";

fn from_row(row: &AnyRow) -> Result<AdminRecord> {
    let role: String = col(row, "role")?;
    Ok(AdminRecord {
        subject: col(row, "subject")?,
        provisioner: col(row, "provisioner")?,
        role: role
            .parse()
            .map_err(|_| Error::Corrupt { what: "admin role", reason: format!("{role:?}") })?,
        created_at: time_col(row, "created_at")?,
    })
}

fn key(subject: &str, provisioner: &str) -> String {
    format!("{subject} via {provisioner}")
}

impl Store {
    /// Adds an administrator; [`Error::AlreadyExists`] if `subject` is already one through
    /// `provisioner`. The provisioner need not be in the store (it may come from the
    /// configuration file).
    pub async fn add_admin(
        &self,
        subject: &str,
        provisioner: &str,
        role: AdminRole,
    ) -> Result<AdminRecord> {
        if subject.is_empty() || provisioner.is_empty() {
            return Err(Error::Invalid {
                what: "admin",
                reason: "subject and provisioner must not be empty".into(),
            });
        }
        let done = sqlx::query(
            "INSERT INTO admins (subject, provisioner, role, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (subject, provisioner) DO NOTHING",
        )
        .bind(subject)
        .bind(provisioner)
        .bind(role.as_str())
        .bind(now_secs()?)
        .execute(self.pool())
        .await
        .map_err(db("adding an admin"))?;
        if done.rows_affected() == 0 {
            return Err(Error::AlreadyExists { what: "admin", key: key(subject, provisioner) });
        }
        self.admin(subject, provisioner)
            .await?
            .ok_or_else(|| Error::NotFound { what: "admin", key: key(subject, provisioner) })
    }

    /// Changes an administrator's role; [`Error::NotFound`] if there is no such admin.
    pub async fn set_admin_role(
        &self,
        subject: &str,
        provisioner: &str,
        role: AdminRole,
    ) -> Result<()> {
        let done =
            sqlx::query("UPDATE admins SET role = $3 WHERE subject = $1 AND provisioner = $2")
                .bind(subject)
                .bind(provisioner)
                .bind(role.as_str())
                .execute(self.pool())
                .await
                .map_err(db("changing an admin's role"))?;
        if done.rows_affected() == 0 {
            return Err(Error::NotFound { what: "admin", key: key(subject, provisioner) });
        }
        Ok(())
    }

    /// Removes an administrator; [`Error::NotFound`] if there is no such admin.
    pub async fn remove_admin(&self, subject: &str, provisioner: &str) -> Result<()> {
        let done = sqlx::query("DELETE FROM admins WHERE subject = $1 AND provisioner = $2")
            .bind(subject)
            .bind(provisioner)
            .execute(self.pool())
            .await
            .map_err(db("removing an admin"))?;
        if done.rows_affected() == 0 {
            return Err(Error::NotFound { what: "admin", key: key(subject, provisioner) });
        }
        Ok(())
    }

    /// The administrator `subject` authenticating through `provisioner`, if there is one.
    pub async fn admin(&self, subject: &str, provisioner: &str) -> Result<Option<AdminRecord>> {
        let sql = format!("SELECT {COLUMNS} FROM admins WHERE subject = $1 AND provisioner = $2");
        sqlx::query(&sql)
            .bind(subject)
            .bind(provisioner)
            .fetch_optional(self.pool())
            .await
            .map_err(db("reading an admin"))?
            .as_ref()
            .map(from_row)
            .transpose()
    }

    /// Every administrator, by provisioner and subject.
    pub async fn admins(&self) -> Result<Vec<AdminRecord>> {
        let sql = format!("SELECT {COLUMNS} FROM admins ORDER BY provisioner, subject");
        sqlx::query(&sql)
            .fetch_all(self.pool())
            .await
            .map_err(db("listing admins"))?
            .iter()
            .map(from_row)
            .collect()
    }
}
