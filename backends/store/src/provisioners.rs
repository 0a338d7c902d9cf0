//! Provisioners kept in the store (step-ca's admin database, linkedca provisioners).

use std::time::SystemTime;

use sqlx::any::AnyRow;

use crate::error::db;
use crate::{Error, Result, Store, col, now_secs, time_col};

/// A provisioner to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewProvisioner {
    /// Its name, unique in the store (step-ca's `name`).
    pub name: String,
    /// step-ca's type name: `JWK`, `X5C`, `SSHPOP`, … (the store does not interpret it).
    pub kind: String,
    /// Its configuration, a JSON object (the store does not interpret it).
    pub config: String,
}

/// A provisioner as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionerRecord {
    /// Its name.
    pub name: String,
    /// step-ca's type name.
    pub kind: String,
    /// Its configuration (JSON).
    pub config: String,
    /// When it was added.
    pub created_at: SystemTime,
    /// When it was last changed.
    pub updated_at: SystemTime,
}

const COLUMNS: &str = "name, kind, config, created_at, updated_at";

fn from_row(row: &AnyRow) -> Result<ProvisionerRecord> {
    Ok(ProvisionerRecord {
        name: col(row, "name")?,
        kind: col(row, "kind")?,
        config: col(row, "config")?,
        created_at: time_col(row, "created_at")?,
        updated_at: time_col(row, "updated_at")?,
    })
}

impl Store {
    /// Adds a provisioner; [`Error::AlreadyExists`] if one of that name exists.
    pub async fn add_provisioner(&self, new: &NewProvisioner) -> Result<ProvisionerRecord> {
        if new.name.is_empty() {
            return Err(Error::Invalid { what: "provisioner name", reason: "empty".into() });
        }
        let now = now_secs()?;
        let done = sqlx::query(
            "INSERT INTO provisioners (name, kind, config, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $4) ON CONFLICT (name) DO NOTHING",
        )
        .bind(&new.name)
        .bind(&new.kind)
        .bind(&new.config)
        .bind(now)
        .execute(self.pool())
        .await
        .map_err(db("adding a provisioner"))?;
        if done.rows_affected() == 0 {
            return Err(Error::AlreadyExists { what: "provisioner", key: new.name.clone() });
        }
        self.provisioner(&new.name).await?.ok_or_else(|| not_found(&new.name))
    }

    /// Replaces the type and configuration of provisioner `name`; [`Error::NotFound`] if
    /// there is none.
    pub async fn update_provisioner(
        &self,
        name: &str,
        kind: &str,
        config: &str,
    ) -> Result<ProvisionerRecord> {
        let done = sqlx::query(
            "UPDATE provisioners SET kind = $2, config = $3, updated_at = $4 WHERE name = $1",
        )
        .bind(name)
        .bind(kind)
        .bind(config)
        .bind(now_secs()?)
        .execute(self.pool())
        .await
        .map_err(db("updating a provisioner"))?;
        if done.rows_affected() == 0 {
            return Err(not_found(name));
        }
        self.provisioner(name).await?.ok_or_else(|| not_found(name))
    }

    /// Removes provisioner `name` and, in the same transaction, the admins who
    /// authenticate through it (as step-ca does); [`Error::NotFound`] if there is none.
    pub async fn remove_provisioner(&self, name: &str) -> Result<()> {
        let mut tx = self.pool().begin().await.map_err(db("removing a provisioner"))?;
        // Write first: on SQLite the transaction then holds the write lock from its first
        // statement and never has to upgrade a read.
        sqlx::query("DELETE FROM admins WHERE provisioner = $1")
            .bind(name)
            .execute(&mut *tx)
            .await
            .map_err(db("removing a provisioner's admins"))?;
        let done = sqlx::query("DELETE FROM provisioners WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await
            .map_err(db("removing a provisioner"))?;
        if done.rows_affected() == 0 {
            tx.rollback().await.map_err(db("removing a provisioner"))?;
            return Err(not_found(name));
        }
        tx.commit().await.map_err(db("removing a provisioner"))
    }

    /// Provisioner `name`, if there is one.
    pub async fn provisioner(&self, name: &str) -> Result<Option<ProvisionerRecord>> {
        let sql = format!("SELECT {COLUMNS} FROM provisioners WHERE name = $1");
        sqlx::query(&sql)
            .bind(name)
            .fetch_optional(self.pool())
            .await
            .map_err(db("reading a provisioner"))?
            .as_ref()
            .map(from_row)
            .transpose()
    }

    /// Every provisioner, by name.
    pub async fn provisioners(&self) -> Result<Vec<ProvisionerRecord>> {
        let sql = format!("SELECT {COLUMNS} FROM provisioners ORDER BY name");
        sqlx::query(&sql)
            .fetch_all(self.pool())
            .await
            .map_err(db("listing provisioners"))?
            .iter()
            .map(from_row)
            .collect()
    }
}

fn not_found(name: &str) -> Error {
    Error::NotFound { what: "provisioner", key: name.to_owned() }
}
