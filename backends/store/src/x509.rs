//! Issued X.509 certificates and their revocations (step-ca's `x509_certs`,
//! `x509_certs_data` and `revoked_x509_certs`).

use std::time::SystemTime;

use sqlx::any::AnyRow;

use crate::error::db;
use crate::{
    Error, Result, Store, col, join_lines, now_secs, opt_time_col, split_lines, time_col, to_secs,
};

/// An issued X.509 certificate, as recorded and as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateRecord {
    /// The serial number in hexadecimal. The store keeps it lowercase without leading
    /// zeros, so `00AB` and `ab` name the same certificate.
    pub serial: String,
    /// The provisioner that authorised it.
    pub provisioner: String,
    /// Its subject (as the authority renders it, e.g. the common name).
    pub subject: String,
    /// Its subject alternative names, rendered as the authority likes (`DNS:a.example`,
    /// or plain names); none may be empty or contain a line break.
    pub sans: Vec<String>,
    /// Start of validity (whole seconds).
    pub not_before: SystemTime,
    /// End of validity (whole seconds).
    pub not_after: SystemTime,
    /// The certificate, PEM.
    pub pem: String,
}

/// Why and by whom a certificate was revoked (step-ca's `RevokedCertificateInfo`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationDetails {
    /// RFC 5280 §5.3.1 CRLReason: 0–10, except 7.
    pub reason_code: u8,
    /// The reason in words, as the requester gave it (may be empty).
    pub reason: String,
    /// When it was revoked (whole seconds; the CRL's revocationDate).
    pub revoked_at: SystemTime,
    /// The provisioner whose token authorised the revocation (or that issued the
    /// certificate, for a revocation by mutual TLS).
    pub provisioner: String,
    /// Whether the requester proved possession of the certificate by mutual TLS instead of
    /// a token.
    pub mtls: bool,
}

/// The outcome of [`Store::revoke`] and [`Store::revoke_ssh`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revocation {
    /// This call revoked it.
    Revoked,
    /// It was revoked before; the earlier details stay.
    AlreadyRevoked,
}

/// A revoked X.509 certificate, for the CRL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedCertificate {
    /// The serial number (lowercase hexadecimal, no leading zeros).
    pub serial: String,
    /// The revocation.
    pub details: RevocationDetails,
    /// The certificate's end of validity when the store has its record (a CRL may leave
    /// out certificates that expired).
    pub not_after: Option<SystemTime>,
}

/// `serial` as the store keys it: lowercase hex without leading zeros.
pub(crate) fn normalize_serial(serial: &str) -> Result<String> {
    let digits = serial.strip_prefix("0x").or_else(|| serial.strip_prefix("0X")).unwrap_or(serial);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::Invalid {
            what: "certificate serial",
            reason: format!("{serial:?} is not hexadecimal"),
        });
    }
    let trimmed = digits.trim_start_matches('0');
    Ok(if trimmed.is_empty() { "0".to_owned() } else { trimmed.to_ascii_lowercase() })
}

pub(crate) fn check_reason_code(code: u8) -> Result<()> {
    if code > 10 || code == 7 {
        return Err(Error::Invalid {
            what: "revocation reason code",
            reason: format!("{code} is not an RFC 5280 CRLReason"),
        });
    }
    Ok(())
}

pub(crate) fn details_from_row(row: &AnyRow) -> Result<RevocationDetails> {
    let code: i64 = col(row, "reason_code")?;
    Ok(RevocationDetails {
        reason_code: u8::try_from(code)
            .map_err(|_| Error::Corrupt { what: "reason_code", reason: format!("{code}") })?,
        reason: col(row, "reason")?,
        revoked_at: time_col(row, "revoked_at")?,
        provisioner: col(row, "provisioner")?,
        mtls: col::<i64>(row, "mtls")? != 0,
    })
}

/// Inserts a revocation of `serial` (already normalised) into `table`, atomically.
pub(crate) async fn insert_revocation(
    store: &Store,
    table: &'static str,
    serial: &str,
    details: &RevocationDetails,
) -> Result<Revocation> {
    check_reason_code(details.reason_code)?;
    let sql = format!(
        "INSERT INTO {table} (serial, reason_code, reason, revoked_at, provisioner, mtls) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (serial) DO NOTHING"
    );
    let done = sqlx::query(&sql)
        .bind(serial)
        .bind(i64::from(details.reason_code))
        .bind(&details.reason)
        .bind(to_secs("revocation time", details.revoked_at)?)
        .bind(&details.provisioner)
        .bind(i64::from(details.mtls))
        .execute(store.pool())
        .await
        .map_err(db("revoking a certificate"))?;
    Ok(if done.rows_affected() == 1 { Revocation::Revoked } else { Revocation::AlreadyRevoked })
}

const COLUMNS: &str = "serial, provisioner, subject, sans, not_before, not_after, pem";

fn from_row(row: &AnyRow) -> Result<CertificateRecord> {
    Ok(CertificateRecord {
        serial: col(row, "serial")?,
        provisioner: col(row, "provisioner")?,
        subject: col(row, "subject")?,
        sans: split_lines(&col::<String>(row, "sans")?),
        not_before: time_col(row, "not_before")?,
        not_after: time_col(row, "not_after")?,
        pem: col(row, "pem")?,
    })
}

impl Store {
    /// Records an issued certificate; [`Error::AlreadyExists`] if its serial is recorded
    /// already (a serial must never be issued twice). Returns when the record is committed:
    /// hand the certificate out only after that.
    pub async fn record_certificate(&self, cert: &CertificateRecord) -> Result<()> {
        let serial = normalize_serial(&cert.serial)?;
        let done = sqlx::query(
            "INSERT INTO x509_certificates \
             (serial, provisioner, subject, sans, not_before, not_after, pem, recorded_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (serial) DO NOTHING",
        )
        .bind(&serial)
        .bind(&cert.provisioner)
        .bind(&cert.subject)
        .bind(join_lines("subject alternative name", &cert.sans)?)
        .bind(to_secs("not_before", cert.not_before)?)
        .bind(to_secs("not_after", cert.not_after)?)
        .bind(&cert.pem)
        .bind(now_secs()?)
        .execute(self.pool())
        .await
        .map_err(db("recording a certificate"))?;
        if done.rows_affected() == 0 {
            return Err(Error::AlreadyExists { what: "certificate serial", key: serial });
        }
        Ok(())
    }

    /// The certificate with serial `serial` (hex, any case, leading zeros ignored).
    pub async fn certificate(&self, serial: &str) -> Result<Option<CertificateRecord>> {
        let sql = format!("SELECT {COLUMNS} FROM x509_certificates WHERE serial = $1");
        sqlx::query(&sql)
            .bind(normalize_serial(serial)?)
            .fetch_optional(self.pool())
            .await
            .map_err(db("reading a certificate"))?
            .as_ref()
            .map(from_row)
            .transpose()
    }

    /// The certificates issued to `subject`, oldest first.
    pub async fn certificates_for_subject(&self, subject: &str) -> Result<Vec<CertificateRecord>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM x509_certificates WHERE subject = $1 \
             ORDER BY not_before, serial"
        );
        sqlx::query(&sql)
            .bind(subject)
            .fetch_all(self.pool())
            .await
            .map_err(db("listing certificates"))?
            .iter()
            .map(from_row)
            .collect()
    }

    /// Revokes the certificate with serial `serial` (recorded or not, as step-ca allows):
    /// [`Revocation::Revoked`] for exactly one of any number of concurrent calls, across
    /// replicas; the others get [`Revocation::AlreadyRevoked`] and change nothing.
    pub async fn revoke(&self, serial: &str, details: &RevocationDetails) -> Result<Revocation> {
        let serial = normalize_serial(serial)?;
        insert_revocation(self, "x509_revocations", &serial, details).await
    }

    /// Whether the certificate with serial `serial` is revoked.
    pub async fn is_revoked(&self, serial: &str) -> Result<bool> {
        Ok(self.revocation(serial).await?.is_some())
    }

    /// The revocation of the certificate with serial `serial`, if it is revoked.
    pub async fn revocation(&self, serial: &str) -> Result<Option<RevocationDetails>> {
        sqlx::query(
            "SELECT reason_code, reason, revoked_at, provisioner, mtls \
             FROM x509_revocations WHERE serial = $1",
        )
        .bind(normalize_serial(serial)?)
        .fetch_optional(self.pool())
        .await
        .map_err(db("reading a revocation"))?
        .as_ref()
        .map(details_from_row)
        .transpose()
    }

    /// Every revoked X.509 certificate, in order of revocation, for the CRL.
    pub async fn revocations(&self) -> Result<Vec<RevokedCertificate>> {
        sqlx::query(
            "SELECT r.serial, r.reason_code, r.reason, r.revoked_at, r.provisioner, r.mtls, \
             c.not_after FROM x509_revocations r \
             LEFT JOIN x509_certificates c ON c.serial = r.serial \
             ORDER BY r.revoked_at, r.serial",
        )
        .fetch_all(self.pool())
        .await
        .map_err(db("listing revocations"))?
        .iter()
        .map(|row| {
            Ok(RevokedCertificate {
                serial: col(row, "serial")?,
                details: details_from_row(row)?,
                not_after: opt_time_col(row, "not_after")?,
            })
        })
        .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn serials_are_compared_as_numbers() {
        assert_eq!(normalize_serial("00AbC1").unwrap(), "abc1");
        assert_eq!(normalize_serial("0x1F").unwrap(), "1f");
        assert_eq!(normalize_serial("000").unwrap(), "0");
        assert!(normalize_serial("").is_err());
        assert!(normalize_serial("12g").is_err());
        assert!(normalize_serial("0x").is_err());
    }

    #[test]
    fn reason_codes_are_rfc_5280_ones() {
        for ok in [0, 1, 6, 8, 10] {
            check_reason_code(ok).unwrap();
        }
        assert!(check_reason_code(7).is_err());
        assert!(check_reason_code(11).is_err());
    }
}
