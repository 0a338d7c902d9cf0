//! Issued SSH certificates and their revocations (step-ca's `ssh_certs`, `ssh_hosts`,
//! `ssh_users`, `ssh_host_principals` and `revoked_ssh_certs`).

use std::fmt;
use std::time::SystemTime;

use sqlx::any::AnyRow;

use crate::error::db;
use crate::x509::{details_from_row, insert_revocation};
use crate::{
    Error, Result, Revocation, RevocationDetails, Store, col, join_lines, now_secs, opt_time_col,
    split_lines, time_col, to_secs,
};

/// Whether an SSH certificate is for a user or a host (PROTOCOL.certkeys `type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SshCertType {
    /// SSH_CERT_TYPE_USER (1).
    User,
    /// SSH_CERT_TYPE_HOST (2).
    Host,
}

impl SshCertType {
    /// The stored name: `user` or `host`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Host => "host",
        }
    }
}

impl fmt::Display for SshCertType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An issued SSH certificate, as recorded and as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshCertificateRecord {
    /// The certificate's serial (PROTOCOL.certkeys `serial`, a uint64).
    pub serial: u64,
    /// Its key id.
    pub key_id: String,
    /// Its principals, in order; none may be empty or contain a line break.
    pub principals: Vec<String>,
    /// User or host certificate.
    pub cert_type: SshCertType,
    /// `valid_before` (whole seconds; "forever", u64::MAX, does not fit: record the
    /// largest time the authority issues instead).
    pub not_after: SystemTime,
    /// The provisioner that authorised it.
    pub provisioner: String,
    /// The certificate as an OpenSSH line (`ssh-ed25519-cert-v01@openssh.com AAAA…`).
    pub certificate: String,
}

/// A revoked SSH certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedSshCertificate {
    /// The certificate's serial.
    pub serial: u64,
    /// The revocation.
    pub details: RevocationDetails,
    /// The certificate's end of validity when the store has its record.
    pub not_after: Option<SystemTime>,
}

const COLUMNS: &str = "serial, key_id, cert_type, principals, not_after, provisioner, certificate";

fn parse_serial(s: &str) -> Result<u64> {
    s.parse()
        .map_err(|_| Error::Corrupt { what: "SSH certificate serial", reason: format!("{s:?}") })
}

fn from_row(row: &AnyRow) -> Result<SshCertificateRecord> {
    let cert_type: String = col(row, "cert_type")?;
    Ok(SshCertificateRecord {
        serial: parse_serial(&col::<String>(row, "serial")?)?,
        key_id: col(row, "key_id")?,
        principals: split_lines(&col::<String>(row, "principals")?),
        cert_type: match cert_type.as_str() {
            "user" => SshCertType::User,
            "host" => SshCertType::Host,
            _ => {
                return Err(Error::Corrupt { what: "cert_type", reason: format!("{cert_type:?}") });
            }
        },
        not_after: time_col(row, "not_after")?,
        provisioner: col(row, "provisioner")?,
        certificate: col(row, "certificate")?,
    })
}

impl Store {
    /// Records an issued SSH certificate and indexes its principals (lowercased, as
    /// step-ca does), in one transaction; [`Error::AlreadyExists`] if its serial is
    /// recorded already.
    pub async fn record_ssh_certificate(&self, cert: &SshCertificateRecord) -> Result<()> {
        let serial = cert.serial.to_string();
        let principals = join_lines("SSH principal", &cert.principals)?;
        let not_after = to_secs("not_after", cert.not_after)?;
        let mut tx = self.pool().begin().await.map_err(db("recording an SSH certificate"))?;
        let done = sqlx::query(
            "INSERT INTO ssh_certificates \
             (serial, key_id, cert_type, principals, not_after, provisioner, certificate, \
             recorded_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (serial) DO NOTHING",
        )
        .bind(&serial)
        .bind(&cert.key_id)
        .bind(cert.cert_type.as_str())
        .bind(principals)
        .bind(not_after)
        .bind(&cert.provisioner)
        .bind(&cert.certificate)
        .bind(now_secs()?)
        .execute(&mut *tx)
        .await
        .map_err(db("recording an SSH certificate"))?;
        if done.rows_affected() == 0 {
            tx.rollback().await.map_err(db("recording an SSH certificate"))?;
            return Err(Error::AlreadyExists { what: "SSH certificate serial", key: serial });
        }
        for principal in &cert.principals {
            sqlx::query(
                "INSERT INTO ssh_certificate_principals (serial, principal) VALUES ($1, $2) \
                 ON CONFLICT (serial, principal) DO NOTHING",
            )
            .bind(&serial)
            .bind(principal.to_lowercase())
            .execute(&mut *tx)
            .await
            .map_err(db("recording an SSH certificate's principals"))?;
        }
        tx.commit().await.map_err(db("recording an SSH certificate"))
    }

    /// The SSH certificate with serial `serial`.
    pub async fn ssh_certificate(&self, serial: u64) -> Result<Option<SshCertificateRecord>> {
        let sql = format!("SELECT {COLUMNS} FROM ssh_certificates WHERE serial = $1");
        sqlx::query(&sql)
            .bind(serial.to_string())
            .fetch_optional(self.pool())
            .await
            .map_err(db("reading an SSH certificate"))?
            .as_ref()
            .map(from_row)
            .transpose()
    }

    /// Whether a host certificate was ever issued for `principal` (case-insensitive;
    /// step-ca's `IsSSHHost`, behind `/ssh/check-host`).
    pub async fn is_ssh_host(&self, principal: &str) -> Result<bool> {
        let found: Option<String> = sqlx::query_scalar(
            "SELECT p.serial FROM ssh_certificate_principals p \
             JOIN ssh_certificates c ON c.serial = p.serial \
             WHERE p.principal = $1 AND c.cert_type = 'host' LIMIT 1",
        )
        .bind(principal.to_lowercase())
        .fetch_optional(self.pool())
        .await
        .map_err(db("looking up an SSH host"))?;
        Ok(found.is_some())
    }

    /// The principals (lowercased, sorted, each once) of the host certificates valid at
    /// `now` and not revoked (step-ca's `GetSSHHostPrincipals`, behind `/ssh/hosts`).
    pub async fn ssh_host_principals(&self, now: SystemTime) -> Result<Vec<String>> {
        sqlx::query_scalar(
            "SELECT DISTINCT p.principal FROM ssh_certificate_principals p \
             JOIN ssh_certificates c ON c.serial = p.serial \
             WHERE c.cert_type = 'host' AND c.not_after > $1 \
             AND NOT EXISTS (SELECT 1 FROM ssh_revocations r WHERE r.serial = c.serial) \
             ORDER BY p.principal",
        )
        .bind(to_secs("now", now)?)
        .fetch_all(self.pool())
        .await
        .map_err(db("listing SSH host principals"))
    }

    /// Revokes the SSH certificate with serial `serial`: [`Revocation::Revoked`] for exactly
    /// one of any number of concurrent calls, across replicas.
    pub async fn revoke_ssh(&self, serial: u64, details: &RevocationDetails) -> Result<Revocation> {
        insert_revocation(self, "ssh_revocations", &serial.to_string(), details).await
    }

    /// Whether the SSH certificate with serial `serial` is revoked.
    pub async fn is_ssh_revoked(&self, serial: u64) -> Result<bool> {
        Ok(self.ssh_revocation(serial).await?.is_some())
    }

    /// The revocation of the SSH certificate with serial `serial`, if it is revoked.
    pub async fn ssh_revocation(&self, serial: u64) -> Result<Option<RevocationDetails>> {
        sqlx::query(
            "SELECT reason_code, reason, revoked_at, provisioner, mtls \
             FROM ssh_revocations WHERE serial = $1",
        )
        .bind(serial.to_string())
        .fetch_optional(self.pool())
        .await
        .map_err(db("reading an SSH revocation"))?
        .as_ref()
        .map(details_from_row)
        .transpose()
    }

    /// Every revoked SSH certificate, in order of revocation (for a KRL).
    pub async fn ssh_revocations(&self) -> Result<Vec<RevokedSshCertificate>> {
        sqlx::query(
            "SELECT r.serial, r.reason_code, r.reason, r.revoked_at, r.provisioner, r.mtls, \
             c.not_after FROM ssh_revocations r \
             LEFT JOIN ssh_certificates c ON c.serial = r.serial \
             ORDER BY r.revoked_at, r.serial",
        )
        .fetch_all(self.pool())
        .await
        .map_err(db("listing SSH revocations"))?
        .iter()
        .map(|row| {
            Ok(RevokedSshCertificate {
                serial: parse_serial(&col::<String>(row, "serial")?)?,
                details: details_from_row(row)?,
                not_after: opt_time_col(row, "not_after")?,
            })
        })
        .collect()
    }
}
