//! The ACME server's state (RFC 8555): replay nonces, accounts, orders with their
//! authorizations and challenges, the certificates issued through them, and external
//! account binding keys (step-ca's `acme` tables in `smallstep/certificates/acme/db/nosql`).
//!
//! Every id is a string the authority generates; JSON-valued fields are text the
//! authority serialized, stored and handed back unread. What must hold across replicas is
//! decided by single statements: a nonce is used by deleting it, an account is created by
//! an `INSERT … ON CONFLICT DO NOTHING` on its key, and every status change is an `UPDATE
//! … WHERE status IN (…)` whose row count says whether this call made it.

use std::fmt;
use std::time::SystemTime;

use sqlx::any::AnyRow;

use crate::error::db;
use crate::x509::normalize_serial;
use crate::{
    Error, Result, Store, col, join_lines, now_secs, opt_time_col, split_lines, time_col, to_secs,
};

/// Account statuses (RFC 8555 §7.1.6).
const ACCOUNT_STATUSES: &[&str] = &["valid", "deactivated", "revoked"];
/// Order statuses (RFC 8555 §7.1.6).
const ORDER_STATUSES: &[&str] = &["pending", "ready", "processing", "valid", "invalid"];
/// Authorization statuses (RFC 8555 §7.1.6).
const AUTHORIZATION_STATUSES: &[&str] =
    &["pending", "valid", "invalid", "deactivated", "expired", "revoked"];
/// Challenge statuses (RFC 8555 §7.1.6).
const CHALLENGE_STATUSES: &[&str] = &["pending", "processing", "valid", "invalid"];

/// An ACME account (RFC 8555 §7.1.2), as created and as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeAccountRecord {
    /// The account's id (the last segment of its URL).
    pub id: String,
    /// The ACME provisioner it belongs to.
    pub provisioner: String,
    /// The RFC 7638 thumbprint of the account key; one account per key per provisioner.
    pub key_thumbprint: String,
    /// The account key as a JWK (RFC 7517), as the authority serialized it.
    pub key_jwk: String,
    /// `valid`, `deactivated` or `revoked` (RFC 8555 §7.1.6).
    pub status: String,
    /// The `contact` URLs (RFC 8555 §7.1.2), in order; none may be empty or contain a
    /// line break.
    pub contact: Vec<String>,
    /// The external account key the account was created with (RFC 8555 §7.3.4).
    pub eab_key_id: Option<String>,
    /// When it was created (whole seconds, as the authority gave it).
    pub created_at: SystemTime,
}

/// The outcome of [`Store::acme_create_account`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcmeAccountCreated {
    /// This call created the account (RFC 8555 §7.3: 201 Created).
    Created(AcmeAccountRecord),
    /// The provisioner already had an account with this key, unchanged (RFC 8555 §7.3.1:
    /// 200 OK with the existing account's URL). No external account key was bound.
    Existing(AcmeAccountRecord),
    /// The account named an external account key (RFC 8555 §7.3.4) that its provisioner
    /// does not have, or that is bound to another account already: nothing was written.
    EabKeyUnavailable,
}

/// The outcome of [`Store::acme_change_account_key`] (RFC 8555 §7.3.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyChange {
    /// The account's key is now the new one.
    Changed,
    /// Another account of the provisioner has the new key (RFC 8555 §7.3.5: 409 Conflict
    /// with its URL in `Location`): its id. It is this very account when its key already
    /// is the new one (a rollover repeated).
    InUse(String),
    /// The account's key is no longer the old one (a concurrent rollover won), or the
    /// account is no longer valid: nothing changed.
    Stale,
}

/// An ACME order (RFC 8555 §7.1.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeOrderRecord {
    /// The order's id.
    pub id: String,
    /// The ACME provisioner it belongs to.
    pub provisioner: String,
    /// The account that placed it.
    pub account_id: String,
    /// `pending`, `ready`, `processing`, `valid` or `invalid` (RFC 8555 §7.1.6).
    pub status: String,
    /// The order's `identifiers`, a JSON array as the authority serialized it.
    pub identifiers: String,
    /// The requested `notBefore` (whole seconds).
    pub not_before: Option<SystemTime>,
    /// The requested `notAfter` (whole seconds).
    pub not_after: Option<SystemTime>,
    /// When the order expires (`expires`, whole seconds).
    pub expires_at: SystemTime,
    /// The `error` problem document (RFC 7807 JSON) of an invalid order.
    pub error: Option<String>,
    /// The issued certificate's id, once the order is valid.
    pub certificate_id: Option<String>,
    /// When it was created (whole seconds, as the authority gave it).
    pub created_at: SystemTime,
}

/// An ACME authorization (RFC 8555 §7.1.4), of one order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeAuthorizationRecord {
    /// The authorization's id.
    pub id: String,
    /// The order it belongs to.
    pub order_id: String,
    /// The account of that order.
    pub account_id: String,
    /// The identifier's `type` (`dns`, `ip`, `permanent-identifier`, …).
    pub identifier_type: String,
    /// The identifier's `value` (without the `*.` of a wildcard).
    pub identifier_value: String,
    /// Whether the order asked for a wildcard (RFC 8555 §7.1.4 `wildcard`).
    pub wildcard: bool,
    /// `pending`, `valid`, `invalid`, `deactivated`, `expired` or `revoked` (RFC 8555
    /// §7.1.6).
    pub status: String,
    /// When it expires (`expires`, whole seconds).
    pub expires_at: SystemTime,
    /// For device-attest-01: the fingerprint of the attested key, which the CSR at
    /// finalization must carry.
    pub key_fingerprint: Option<String>,
}

/// An ACME challenge (RFC 8555 §7.1.5, §8), of one authorization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeChallengeRecord {
    /// The challenge's id.
    pub id: String,
    /// The authorization it belongs to.
    pub authorization_id: String,
    /// The challenge `type`: `http-01`, `dns-01`, `tls-alpn-01` (RFC 8737),
    /// `device-attest-01`.
    pub kind: String,
    /// The `token` (RFC 8555 §8.3).
    pub token: String,
    /// `pending`, `processing`, `valid` or `invalid` (RFC 8555 §7.1.6).
    pub status: String,
    /// When it was validated (`validated`, whole seconds).
    pub validated_at: Option<SystemTime>,
    /// The `error` problem document (RFC 7807 JSON) of the last failed attempt.
    pub error: Option<String>,
    /// How many validation attempts were made (RFC 8555 §8.2 retries).
    pub attempts: u32,
    /// What the client submitted, kept for the record (device-attest-01's `attObj`).
    pub payload: Option<String>,
}

/// A certificate issued through ACME, for download (RFC 8555 §7.4.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeCertificateRecord {
    /// The certificate's id (the last segment of its URL).
    pub id: String,
    /// The ACME provisioner that issued it.
    pub provisioner: String,
    /// The account it was issued to.
    pub account_id: String,
    /// The order it finalized.
    pub order_id: String,
    /// The serial number in hexadecimal; stored as keystation's X.509 records spell it
    /// (lowercase, no leading zeros, so `00AB` and `ab` are one serial).
    pub serial: String,
    /// The chain as issued, PEM, leaf first (`application/pem-certificate-chain`).
    pub chain_pem: String,
    /// When it was recorded (whole seconds, as the authority gave it).
    pub created_at: SystemTime,
}

/// The MAC key of an external account binding key (RFC 8555 §7.3.4): a secret. Its
/// `Debug` shows only its length; its bytes are zeroized when it is dropped.
#[derive(Clone)]
pub struct EabHmacKey(Vec<u8>);

impl EabHmacKey {
    /// Wraps the key bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// The key bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The key's length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the key is empty (the store refuses to add such a key).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Vec<u8>> for EabHmacKey {
    fn from(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }
}

impl fmt::Debug for EabHmacKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EabHmacKey(<{} bytes, redacted>)", self.0.len())
    }
}

impl PartialEq for EabHmacKey {
    /// Compares without stopping at the first differing byte.
    fn eq(&self, other: &Self) -> bool {
        self.0.len() == other.0.len()
            && self.0.iter().zip(&other.0).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }
}

impl Eq for EabHmacKey {}

impl Drop for EabHmacKey {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

/// An external account binding key (RFC 8555 §7.3.4; step-ca's `step ca acme eab add
/// <provisioner> [reference]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeEabKeyRecord {
    /// The key identifier the client puts in the binding JWS's `kid`.
    pub key_id: String,
    /// The ACME provisioner it belongs to.
    pub provisioner: String,
    /// The operator's name for it, unique in the provisioner when given.
    pub reference: Option<String>,
    /// The MAC key (HS256 and friends); stored in base64.
    pub hmac_key: EabHmacKey,
    /// The account it is bound to, once bound.
    pub account_id: Option<String>,
    /// When it was added (whole seconds, as the authority gave it).
    pub created_at: SystemTime,
    /// When it was bound (the store's clock, whole seconds).
    pub bound_at: Option<SystemTime>,
}

/// Overwrites `bytes` with zeros before they are freed.
fn wipe(bytes: &mut Vec<u8>) {
    zeroize::Zeroize::zeroize(bytes);
}

/// `bytes` in base64 (RFC 4648 §4, padded).
fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// What [`base64_encode`] encoded; `None` for anything else.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}

/// Refuses an empty `value`.
fn non_empty(what: &'static str, value: &str) -> Result<()> {
    if value.is_empty() {
        return Err(Error::Invalid { what, reason: "empty".into() });
    }
    Ok(())
}

/// Refuses a status outside `allowed`.
fn check_status(what: &'static str, allowed: &[&str], status: &str) -> Result<()> {
    if !allowed.contains(&status) {
        return Err(Error::Invalid {
            what,
            reason: format!("{status:?} is not one of {}", allowed.join(", ")),
        });
    }
    Ok(())
}

/// Checks a status transition's statuses; `from` must name at least one.
fn check_transition(what: &'static str, allowed: &[&str], from: &[&str], to: &str) -> Result<()> {
    if from.is_empty() {
        return Err(Error::Invalid { what, reason: "no status to move from".into() });
    }
    for status in from.iter().copied().chain([to]) {
        check_status(what, allowed, status)?;
    }
    Ok(())
}

/// `UPDATE {table} SET {set} WHERE id = $1 AND status IN (${first}, …)` with one
/// placeholder per `from` status.
fn transition_sql(table: &str, set: &str, first: usize, from: &[&str]) -> String {
    let placeholders: Vec<String> = (first..first + from.len()).map(|n| format!("${n}")).collect();
    format!("UPDATE {table} SET {set} WHERE id = $1 AND status IN ({})", placeholders.join(", "))
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error().is_some_and(|d| d.is_unique_violation())
}

fn is_foreign_key_violation(e: &sqlx::Error) -> bool {
    e.as_database_error().is_some_and(|d| d.is_foreign_key_violation())
}

/// Maps a failed insert: a unique violation is [`Error::AlreadyExists`] of `what` `key`,
/// anything else a database error while `context`.
fn insert_error(
    what: &'static str,
    key: &str,
    context: &'static str,
) -> impl FnOnce(sqlx::Error) -> Error {
    let key = key.to_owned();
    move |e| {
        if is_unique_violation(&e) { Error::AlreadyExists { what, key } } else { db(context)(e) }
    }
}

fn secs(what: &'static str, t: Option<SystemTime>) -> Result<Option<i64>> {
    t.map(|t| to_secs(what, t)).transpose()
}

fn position(index: usize) -> Result<i64> {
    i64::try_from(index)
        .map_err(|_| Error::Invalid { what: "ACME order", reason: "too many entries".into() })
}

const ACCOUNT_COLUMNS: &str =
    "id, provisioner, key_thumbprint, key_jwk, status, contact, eab_key_id, created_at";

fn account_from_row(row: &AnyRow) -> Result<AcmeAccountRecord> {
    Ok(AcmeAccountRecord {
        id: col(row, "id")?,
        provisioner: col(row, "provisioner")?,
        key_thumbprint: col(row, "key_thumbprint")?,
        key_jwk: col(row, "key_jwk")?,
        status: col(row, "status")?,
        contact: split_lines(&col::<String>(row, "contact")?),
        eab_key_id: col(row, "eab_key_id")?,
        created_at: time_col(row, "created_at")?,
    })
}

const ORDER_COLUMNS: &str = "id, provisioner, account_id, status, identifiers, not_before, \
                             not_after, expires_at, error, certificate_id, created_at";

fn order_from_row(row: &AnyRow) -> Result<AcmeOrderRecord> {
    Ok(AcmeOrderRecord {
        id: col(row, "id")?,
        provisioner: col(row, "provisioner")?,
        account_id: col(row, "account_id")?,
        status: col(row, "status")?,
        identifiers: col(row, "identifiers")?,
        not_before: opt_time_col(row, "not_before")?,
        not_after: opt_time_col(row, "not_after")?,
        expires_at: time_col(row, "expires_at")?,
        error: col(row, "error")?,
        certificate_id: col(row, "certificate_id")?,
        created_at: time_col(row, "created_at")?,
    })
}

const AUTHORIZATION_COLUMNS: &str = "id, order_id, account_id, identifier_type, \
                                     identifier_value, wildcard, status, expires_at, \
                                     key_fingerprint";

fn authorization_from_row(row: &AnyRow) -> Result<AcmeAuthorizationRecord> {
    Ok(AcmeAuthorizationRecord {
        id: col(row, "id")?,
        order_id: col(row, "order_id")?,
        account_id: col(row, "account_id")?,
        identifier_type: col(row, "identifier_type")?,
        identifier_value: col(row, "identifier_value")?,
        wildcard: col::<i64>(row, "wildcard")? != 0,
        status: col(row, "status")?,
        expires_at: time_col(row, "expires_at")?,
        key_fingerprint: col(row, "key_fingerprint")?,
    })
}

const CHALLENGE_COLUMNS: &str =
    "id, authorization_id, kind, token, status, validated_at, error, attempts, payload";

fn attempts(n: i64) -> Result<u32> {
    u32::try_from(n).map_err(|_| Error::Corrupt {
        what: "attempts",
        reason: format!("{n} does not fit a uint32"),
    })
}

fn challenge_from_row(row: &AnyRow) -> Result<AcmeChallengeRecord> {
    Ok(AcmeChallengeRecord {
        id: col(row, "id")?,
        authorization_id: col(row, "authorization_id")?,
        kind: col(row, "kind")?,
        token: col(row, "token")?,
        status: col(row, "status")?,
        validated_at: opt_time_col(row, "validated_at")?,
        error: col(row, "error")?,
        attempts: attempts(col(row, "attempts")?)?,
        payload: col(row, "payload")?,
    })
}

const CERTIFICATE_COLUMNS: &str =
    "id, provisioner, account_id, order_id, serial, chain_pem, created_at";

fn certificate_from_row(row: &AnyRow) -> Result<AcmeCertificateRecord> {
    Ok(AcmeCertificateRecord {
        id: col(row, "id")?,
        provisioner: col(row, "provisioner")?,
        account_id: col(row, "account_id")?,
        order_id: col(row, "order_id")?,
        serial: col(row, "serial")?,
        chain_pem: col(row, "chain_pem")?,
        created_at: time_col(row, "created_at")?,
    })
}

const EAB_COLUMNS: &str =
    "key_id, provisioner, reference, hmac_key, account_id, created_at, bound_at";

fn eab_key_from_row(row: &AnyRow) -> Result<AcmeEabKeyRecord> {
    let encoded: String = col(row, "hmac_key")?;
    let decoded = base64_decode(&encoded);
    let mut encoded = encoded.into_bytes();
    wipe(&mut encoded);
    let hmac_key = decoded
        .map(EabHmacKey)
        .ok_or_else(|| Error::Corrupt { what: "hmac_key", reason: "not base64".into() })?;
    Ok(AcmeEabKeyRecord {
        key_id: col(row, "key_id")?,
        provisioner: col(row, "provisioner")?,
        reference: col(row, "reference")?,
        hmac_key,
        account_id: col(row, "account_id")?,
        created_at: time_col(row, "created_at")?,
        bound_at: opt_time_col(row, "bound_at")?,
    })
}

impl Store {
    // ---- nonces ----

    /// Records a fresh replay nonce (RFC 8555 §7.2) that [`Store::acme_use_nonce`] accepts
    /// until `expires_at`; [`Error::AlreadyExists`] if it is recorded already.
    pub async fn acme_add_nonce(&self, nonce: &str, expires_at: SystemTime) -> Result<()> {
        non_empty("ACME nonce", nonce)?;
        let done = sqlx::query(
            "INSERT INTO acme_nonces (nonce, expires_at) VALUES ($1, $2) \
             ON CONFLICT (nonce) DO NOTHING",
        )
        .bind(nonce)
        .bind(to_secs("nonce expiry", expires_at)?)
        .execute(self.pool())
        .await
        .map_err(db("recording an ACME nonce"))?;
        if done.rows_affected() == 0 {
            return Err(Error::AlreadyExists { what: "ACME nonce", key: nonce.to_owned() });
        }
        Ok(())
    }

    /// Uses the replay nonce `nonce` (RFC 8555 §6.5): true for exactly one call per
    /// recorded, unexpired nonce, however many run at once on however many replicas (one
    /// `DELETE`, whose row count is the answer); false for an unknown, used or expired
    /// one (`badNonce`). A nonce expiring at `now` is still accepted.
    pub async fn acme_use_nonce(&self, nonce: &str, now: SystemTime) -> Result<bool> {
        let done = sqlx::query("DELETE FROM acme_nonces WHERE nonce = $1 AND expires_at >= $2")
            .bind(nonce)
            .bind(to_secs("now", now)?)
            .execute(self.pool())
            .await
            .map_err(db("using an ACME nonce"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Forgets the nonces that expired before `now`; returns how many.
    pub async fn acme_purge_nonces(&self, now: SystemTime) -> Result<u64> {
        let done = sqlx::query("DELETE FROM acme_nonces WHERE expires_at < $1")
            .bind(to_secs("now", now)?)
            .execute(self.pool())
            .await
            .map_err(db("purging ACME nonces"))?;
        Ok(done.rows_affected())
    }

    // ---- accounts ----

    /// Creates an account (RFC 8555 §7.3) unless its provisioner has one with the same key
    /// thumbprint: one `INSERT … ON CONFLICT DO NOTHING` on (provisioner, key thumbprint)
    /// decides, so of concurrent creations with one key exactly one is
    /// [`AcmeAccountCreated::Created`] and the others get that account as
    /// [`AcmeAccountCreated::Existing`]. Either way the account is read back as stored.
    /// [`Error::AlreadyExists`] if `new.id` is taken by an account with another key.
    ///
    /// With `new.eab_key_id`, the account and the binding of that external account key
    /// (RFC 8555 §7.3.4) are one transaction: the key, if its provisioner has it and no
    /// account holds it, is bound to the new account; otherwise nothing is written
    /// ([`AcmeAccountCreated::EabKeyUnavailable`]). So of concurrent creations with one
    /// key, one account is made, and a key is never spent on an account that was not.
    pub async fn acme_create_account(&self, new: &AcmeAccountRecord) -> Result<AcmeAccountCreated> {
        non_empty("ACME account id", &new.id)?;
        non_empty("ACME provisioner", &new.provisioner)?;
        non_empty("ACME account key thumbprint", &new.key_thumbprint)?;
        check_status("ACME account status", ACCOUNT_STATUSES, &new.status)?;
        let contact = join_lines("ACME account contact", &new.contact)?;
        let context = "creating an ACME account";
        let mut tx = self.pool().begin().await.map_err(db(context))?;
        // Write first: on SQLite the transaction holds the write lock from its first
        // statement on. An early return drops the transaction, which rolls it back.
        let done = sqlx::query(
            "INSERT INTO acme_accounts \
             (id, provisioner, key_thumbprint, key_jwk, status, contact, eab_key_id, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (provisioner, key_thumbprint) DO NOTHING",
        )
        .bind(&new.id)
        .bind(&new.provisioner)
        .bind(&new.key_thumbprint)
        .bind(&new.key_jwk)
        .bind(&new.status)
        .bind(contact)
        .bind(new.eab_key_id.as_deref())
        .bind(to_secs("account creation time", new.created_at)?)
        .execute(&mut *tx)
        .await
        .map_err(insert_error("ACME account id", &new.id, context))?;
        let created = done.rows_affected() == 1;
        if let (true, Some(key_id)) = (created, new.eab_key_id.as_deref()) {
            let bound = sqlx::query(
                "UPDATE acme_eab_keys SET account_id = $3, bound_at = $4 \
                 WHERE provisioner = $1 AND key_id = $2 AND account_id IS NULL",
            )
            .bind(&new.provisioner)
            .bind(key_id)
            .bind(&new.id)
            .bind(now_secs()?)
            .execute(&mut *tx)
            .await
            .map_err(db("binding an ACME external account key"))?;
            if bound.rows_affected() != 1 {
                tx.rollback().await.map_err(db(context))?;
                return Ok(AcmeAccountCreated::EabKeyUnavailable);
            }
        }
        tx.commit().await.map_err(db(context))?;
        let stored = self
            .acme_account_by_key(&new.provisioner, &new.key_thumbprint)
            .await?
            .ok_or_else(|| Error::NotFound { what: "ACME account", key: new.id.clone() })?;
        Ok(if created {
            AcmeAccountCreated::Created(stored)
        } else {
            AcmeAccountCreated::Existing(stored)
        })
    }

    /// Account `id` of `provisioner`, if there is one.
    pub async fn acme_account(
        &self,
        provisioner: &str,
        id: &str,
    ) -> Result<Option<AcmeAccountRecord>> {
        let sql = format!(
            "SELECT {ACCOUNT_COLUMNS} FROM acme_accounts WHERE provisioner = $1 AND id = $2"
        );
        sqlx::query(&sql)
            .bind(provisioner)
            .bind(id)
            .fetch_optional(self.pool())
            .await
            .map_err(db("reading an ACME account"))?
            .as_ref()
            .map(account_from_row)
            .transpose()
    }

    /// The account of `provisioner` whose key has the RFC 7638 thumbprint `thumbprint`
    /// (RFC 8555 §7.3.1, `onlyReturnExisting`).
    pub async fn acme_account_by_key(
        &self,
        provisioner: &str,
        thumbprint: &str,
    ) -> Result<Option<AcmeAccountRecord>> {
        let sql = format!(
            "SELECT {ACCOUNT_COLUMNS} FROM acme_accounts \
             WHERE provisioner = $1 AND key_thumbprint = $2"
        );
        sqlx::query(&sql)
            .bind(provisioner)
            .bind(thumbprint)
            .fetch_optional(self.pool())
            .await
            .map_err(db("looking up an ACME account by key"))?
            .as_ref()
            .map(account_from_row)
            .transpose()
    }

    /// Account `id` in whichever provisioner.
    async fn acme_account_by_id(&self, id: &str) -> Result<Option<AcmeAccountRecord>> {
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM acme_accounts WHERE id = $1");
        sqlx::query(&sql)
            .bind(id)
            .fetch_optional(self.pool())
            .await
            .map_err(db("reading an ACME account"))?
            .as_ref()
            .map(account_from_row)
            .transpose()
    }

    /// Replaces the `contact` of account `id` (RFC 8555 §7.3.2) while it is valid; true iff
    /// it was (false for an unknown or deactivated account).
    pub async fn acme_update_account_contact(&self, id: &str, contact: &[String]) -> Result<bool> {
        let contact = join_lines("ACME account contact", contact)?;
        let done =
            sqlx::query("UPDATE acme_accounts SET contact = $2 WHERE id = $1 AND status = 'valid'")
                .bind(id)
                .bind(contact)
                .execute(self.pool())
                .await
                .map_err(db("updating an ACME account's contact"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Deactivates account `id` (RFC 8555 §7.3.6): true iff this call moved it from
    /// `valid` to `deactivated`.
    pub async fn acme_deactivate_account(&self, id: &str) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE acme_accounts SET status = 'deactivated' WHERE id = $1 AND status = 'valid'",
        )
        .bind(id)
        .execute(self.pool())
        .await
        .map_err(db("deactivating an ACME account"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Rolls account `id` over to a new key (RFC 8555 §7.3.5), in one `UPDATE` conditioned
    /// on the account being valid with key `old_thumbprint`; the unique (provisioner, key
    /// thumbprint) constraint keeps the new key from being any other account's at the
    /// same moment. [`KeyChange::InUse`] names the account that has the new key;
    /// [`KeyChange::Stale`] means the old key is no longer the account's (or the account
    /// is no longer valid); [`Error::NotFound`] for an unknown account.
    pub async fn acme_change_account_key(
        &self,
        id: &str,
        old_thumbprint: &str,
        new_thumbprint: &str,
        new_jwk: &str,
    ) -> Result<KeyChange> {
        non_empty("ACME account key thumbprint", new_thumbprint)?;
        let outcome = sqlx::query(
            "UPDATE acme_accounts SET key_thumbprint = $3, key_jwk = $4 \
             WHERE id = $1 AND key_thumbprint = $2 AND status = 'valid' AND key_thumbprint <> $3",
        )
        .bind(id)
        .bind(old_thumbprint)
        .bind(new_thumbprint)
        .bind(new_jwk)
        .execute(self.pool())
        .await;
        match outcome {
            Ok(done) if done.rows_affected() == 1 => return Ok(KeyChange::Changed),
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {}
            Err(e) => return Err(db("changing an ACME account's key")(e)),
        }
        // Refused: say why (the update decided; these reads only explain).
        let account = self
            .acme_account_by_id(id)
            .await?
            .ok_or_else(|| Error::NotFound { what: "ACME account", key: id.to_owned() })?;
        if let Some(holder) = self.acme_account_by_key(&account.provisioner, new_thumbprint).await?
        {
            return Ok(KeyChange::InUse(holder.id));
        }
        Ok(KeyChange::Stale)
    }

    // ---- orders, authorizations, challenges ----

    /// Records a new order with its authorizations and their challenges in one
    /// transaction (RFC 8555 §7.4): all of them or none. Authorizations and challenges
    /// read back in the order given. Each authorization must name this order and its
    /// account, each challenge its authorization ([`Error::Invalid`] otherwise);
    /// [`Error::NotFound`] if the account does not exist, [`Error::AlreadyExists`] if an id
    /// is taken.
    pub async fn acme_create_order(
        &self,
        order: &AcmeOrderRecord,
        authorizations: &[(AcmeAuthorizationRecord, Vec<AcmeChallengeRecord>)],
    ) -> Result<()> {
        non_empty("ACME order id", &order.id)?;
        check_status("ACME order status", ORDER_STATUSES, &order.status)?;
        for (authz, challenges) in authorizations {
            non_empty("ACME authorization id", &authz.id)?;
            check_status("ACME authorization status", AUTHORIZATION_STATUSES, &authz.status)?;
            if authz.order_id != order.id || authz.account_id != order.account_id {
                return Err(Error::Invalid {
                    what: "ACME authorization",
                    reason: format!(
                        "{:?} names order {:?} of account {:?}, not order {:?} of account {:?}",
                        authz.id, authz.order_id, authz.account_id, order.id, order.account_id
                    ),
                });
            }
            for challenge in challenges {
                non_empty("ACME challenge id", &challenge.id)?;
                check_status("ACME challenge status", CHALLENGE_STATUSES, &challenge.status)?;
                if challenge.authorization_id != authz.id {
                    return Err(Error::Invalid {
                        what: "ACME challenge",
                        reason: format!(
                            "{:?} names authorization {:?}, not {:?}",
                            challenge.id, challenge.authorization_id, authz.id
                        ),
                    });
                }
            }
        }

        let context = "recording an ACME order";
        let mut tx = self.pool().begin().await.map_err(db(context))?;
        // Write first: on SQLite the transaction holds the write lock from its first
        // statement on. An error drops the transaction, which rolls it back.
        sqlx::query(
            "INSERT INTO acme_orders (id, provisioner, account_id, status, identifiers, \
             not_before, not_after, expires_at, error, certificate_id, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&order.id)
        .bind(&order.provisioner)
        .bind(&order.account_id)
        .bind(&order.status)
        .bind(&order.identifiers)
        .bind(secs("not_before", order.not_before)?)
        .bind(secs("not_after", order.not_after)?)
        .bind(to_secs("order expiry", order.expires_at)?)
        .bind(order.error.as_deref())
        .bind(order.certificate_id.as_deref())
        .bind(to_secs("order creation time", order.created_at)?)
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            if is_foreign_key_violation(&e) {
                Error::NotFound { what: "ACME account", key: order.account_id.clone() }
            } else {
                insert_error("ACME order id", &order.id, context)(e)
            }
        })?;
        for (authz_index, (authz, challenges)) in authorizations.iter().enumerate() {
            sqlx::query(
                "INSERT INTO acme_authorizations (id, order_id, position, account_id, \
                 identifier_type, identifier_value, wildcard, status, expires_at, \
                 key_fingerprint) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(&authz.id)
            .bind(&authz.order_id)
            .bind(position(authz_index)?)
            .bind(&authz.account_id)
            .bind(&authz.identifier_type)
            .bind(&authz.identifier_value)
            .bind(i64::from(authz.wildcard))
            .bind(&authz.status)
            .bind(to_secs("authorization expiry", authz.expires_at)?)
            .bind(authz.key_fingerprint.as_deref())
            .execute(&mut *tx)
            .await
            .map_err(insert_error("ACME authorization id", &authz.id, context))?;
            for (challenge_index, challenge) in challenges.iter().enumerate() {
                sqlx::query(
                    "INSERT INTO acme_challenges (id, authorization_id, position, kind, token, \
                     status, validated_at, error, attempts, payload) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(&challenge.id)
                .bind(&challenge.authorization_id)
                .bind(position(challenge_index)?)
                .bind(&challenge.kind)
                .bind(&challenge.token)
                .bind(&challenge.status)
                .bind(secs("validated_at", challenge.validated_at)?)
                .bind(challenge.error.as_deref())
                .bind(i64::from(challenge.attempts))
                .bind(challenge.payload.as_deref())
                .execute(&mut *tx)
                .await
                .map_err(insert_error(
                    "ACME challenge id",
                    &challenge.id,
                    context,
                ))?;
            }
        }
        tx.commit().await.map_err(db(context))
    }

    /// Order `id` of `provisioner`, if there is one.
    pub async fn acme_order(&self, provisioner: &str, id: &str) -> Result<Option<AcmeOrderRecord>> {
        let sql =
            format!("SELECT {ORDER_COLUMNS} FROM acme_orders WHERE provisioner = $1 AND id = $2");
        sqlx::query(&sql)
            .bind(provisioner)
            .bind(id)
            .fetch_optional(self.pool())
            .await
            .map_err(db("reading an ACME order"))?
            .as_ref()
            .map(order_from_row)
            .transpose()
    }

    /// The ids of the orders of account `account_id` (RFC 8555 §7.1.2.1 `orders`), oldest
    /// first (by creation time in whole seconds, then by id).
    pub async fn acme_orders_of_account(&self, account_id: &str) -> Result<Vec<String>> {
        sqlx::query_scalar(
            "SELECT id FROM acme_orders WHERE account_id = $1 ORDER BY created_at, id",
        )
        .bind(account_id)
        .fetch_all(self.pool())
        .await
        .map_err(db("listing an ACME account's orders"))
    }

    /// The authorizations of order `order_id`, in the order they were recorded.
    pub async fn acme_authorizations_of_order(
        &self,
        order_id: &str,
    ) -> Result<Vec<AcmeAuthorizationRecord>> {
        let sql = format!(
            "SELECT {AUTHORIZATION_COLUMNS} FROM acme_authorizations \
             WHERE order_id = $1 ORDER BY position"
        );
        sqlx::query(&sql)
            .bind(order_id)
            .fetch_all(self.pool())
            .await
            .map_err(db("listing an ACME order's authorizations"))?
            .iter()
            .map(authorization_from_row)
            .collect()
    }

    /// Authorization `id`, if there is one.
    pub async fn acme_authorization(&self, id: &str) -> Result<Option<AcmeAuthorizationRecord>> {
        let sql = format!("SELECT {AUTHORIZATION_COLUMNS} FROM acme_authorizations WHERE id = $1");
        sqlx::query(&sql)
            .bind(id)
            .fetch_optional(self.pool())
            .await
            .map_err(db("reading an ACME authorization"))?
            .as_ref()
            .map(authorization_from_row)
            .transpose()
    }

    /// The challenges of authorization `authorization_id`, in the order they were
    /// recorded.
    pub async fn acme_challenges_of(
        &self,
        authorization_id: &str,
    ) -> Result<Vec<AcmeChallengeRecord>> {
        let sql = format!(
            "SELECT {CHALLENGE_COLUMNS} FROM acme_challenges \
             WHERE authorization_id = $1 ORDER BY position"
        );
        sqlx::query(&sql)
            .bind(authorization_id)
            .fetch_all(self.pool())
            .await
            .map_err(db("listing an ACME authorization's challenges"))?
            .iter()
            .map(challenge_from_row)
            .collect()
    }

    /// Challenge `id`, if there is one.
    pub async fn acme_challenge(&self, id: &str) -> Result<Option<AcmeChallengeRecord>> {
        let sql = format!("SELECT {CHALLENGE_COLUMNS} FROM acme_challenges WHERE id = $1");
        sqlx::query(&sql)
            .bind(id)
            .fetch_optional(self.pool())
            .await
            .map_err(db("reading an ACME challenge"))?
            .as_ref()
            .map(challenge_from_row)
            .transpose()
    }

    /// Moves challenge `id` to status `to` if its status is one of `from` (RFC 8555 §7.1.6,
    /// §7.5.1): true iff this call did, so of concurrent calls one wins. `error` replaces
    /// the stored problem document (`None` clears it); `validated_at` and `payload`
    /// replace the stored values when given and keep them when `None`. Statuses outside
    /// RFC 8555's set, or an empty `from`, are [`Error::Invalid`].
    pub async fn acme_set_challenge_status(
        &self,
        id: &str,
        from: &[&str],
        to: &str,
        error: Option<&str>,
        validated_at: Option<SystemTime>,
        payload: Option<&str>,
    ) -> Result<bool> {
        check_transition("ACME challenge status", CHALLENGE_STATUSES, from, to)?;
        let sql = transition_sql(
            "acme_challenges",
            "status = $2, error = $3, validated_at = COALESCE($4, validated_at), \
             payload = COALESCE($5, payload)",
            6,
            from,
        );
        let mut query = sqlx::query(&sql)
            .bind(id)
            .bind(to)
            .bind(error)
            .bind(secs("validated_at", validated_at)?)
            .bind(payload);
        for status in from {
            query = query.bind(*status);
        }
        let done =
            query.execute(self.pool()).await.map_err(db("changing an ACME challenge's status"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Counts one more validation attempt of challenge `id` (RFC 8555 §8.2) and returns the
    /// new count: one `UPDATE … RETURNING`, so concurrent validators each get their own
    /// number. [`Error::NotFound`] for an unknown challenge.
    pub async fn acme_count_challenge_attempt(&self, id: &str) -> Result<u32> {
        let count: Option<i64> = sqlx::query_scalar(
            "UPDATE acme_challenges SET attempts = attempts + 1 WHERE id = $1 RETURNING attempts",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await
        .map_err(db("counting an ACME challenge attempt"))?;
        match count {
            Some(n) => attempts(n),
            None => Err(Error::NotFound { what: "ACME challenge", key: id.to_owned() }),
        }
    }

    /// Moves authorization `id` to status `to` if its status is one of `from` (RFC 8555
    /// §7.1.6, §7.5.2): true iff this call did. `key_fingerprint`, when given, records the
    /// device-attest-01 key (`None` keeps the stored one).
    pub async fn acme_set_authorization_status(
        &self,
        id: &str,
        from: &[&str],
        to: &str,
        key_fingerprint: Option<&str>,
    ) -> Result<bool> {
        check_transition("ACME authorization status", AUTHORIZATION_STATUSES, from, to)?;
        let sql = transition_sql(
            "acme_authorizations",
            "status = $2, key_fingerprint = COALESCE($3, key_fingerprint)",
            4,
            from,
        );
        let mut query = sqlx::query(&sql).bind(id).bind(to).bind(key_fingerprint);
        for status in from {
            query = query.bind(*status);
        }
        let done = query
            .execute(self.pool())
            .await
            .map_err(db("changing an ACME authorization's status"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Moves order `id` to status `to` if its status is one of `from` (RFC 8555 §7.1.6,
    /// §7.4): true iff this call did. `error` replaces the stored problem document (`None`
    /// clears it). Issuing goes through [`Store::acme_finish_order`] instead.
    pub async fn acme_set_order_status(
        &self,
        id: &str,
        from: &[&str],
        to: &str,
        error: Option<&str>,
    ) -> Result<bool> {
        check_transition("ACME order status", ORDER_STATUSES, from, to)?;
        let sql = transition_sql("acme_orders", "status = $2, error = $3", 4, from);
        let mut query = sqlx::query(&sql).bind(id).bind(to).bind(error);
        for status in from {
            query = query.bind(*status);
        }
        let done =
            query.execute(self.pool()).await.map_err(db("changing an ACME order's status"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Completes order `id` (RFC 8555 §7.4): `processing` → `valid` with the issued
    /// certificate's id, true iff this call did.
    pub async fn acme_finish_order(&self, id: &str, certificate_id: &str) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE acme_orders SET status = 'valid', certificate_id = $2, error = NULL \
             WHERE id = $1 AND status = 'processing'",
        )
        .bind(id)
        .bind(certificate_id)
        .execute(self.pool())
        .await
        .map_err(db("completing an ACME order"))?;
        Ok(done.rows_affected() == 1)
    }

    // ---- certificates ----

    /// Records a certificate issued through ACME, for download (RFC 8555 §7.4.2); its
    /// serial is stored normalised (see [`AcmeCertificateRecord::serial`]).
    /// [`Error::AlreadyExists`] if its id or serial is recorded already,
    /// [`Error::NotFound`] if its order or account does not exist, [`Error::Invalid`] for
    /// a serial that is not hexadecimal.
    pub async fn acme_add_certificate(&self, cert: &AcmeCertificateRecord) -> Result<()> {
        non_empty("ACME certificate id", &cert.id)?;
        let serial = normalize_serial(&cert.serial)?;
        let context = "recording an ACME certificate";
        let done = sqlx::query(
            "INSERT INTO acme_certificates \
             (id, provisioner, account_id, order_id, serial, chain_pem, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
        )
        .bind(&cert.id)
        .bind(&cert.provisioner)
        .bind(&cert.account_id)
        .bind(&cert.order_id)
        .bind(&serial)
        .bind(&cert.chain_pem)
        .bind(to_secs("certificate creation time", cert.created_at)?)
        .execute(self.pool())
        .await
        .map_err(|e| {
            if is_foreign_key_violation(&e) {
                Error::NotFound {
                    what: "ACME order or account",
                    key: format!("{}/{}", cert.order_id, cert.account_id),
                }
            } else {
                db(context)(e)
            }
        })?;
        if done.rows_affected() == 1 {
            return Ok(());
        }
        let id_taken: Option<String> =
            sqlx::query_scalar("SELECT id FROM acme_certificates WHERE id = $1")
                .bind(&cert.id)
                .fetch_optional(self.pool())
                .await
                .map_err(db(context))?;
        Err(match id_taken {
            Some(id) => Error::AlreadyExists { what: "ACME certificate id", key: id },
            None => Error::AlreadyExists { what: "ACME certificate serial", key: serial },
        })
    }

    /// Certificate `id` of `provisioner`, if there is one.
    pub async fn acme_certificate(
        &self,
        provisioner: &str,
        id: &str,
    ) -> Result<Option<AcmeCertificateRecord>> {
        let sql = format!(
            "SELECT {CERTIFICATE_COLUMNS} FROM acme_certificates \
             WHERE provisioner = $1 AND id = $2"
        );
        sqlx::query(&sql)
            .bind(provisioner)
            .bind(id)
            .fetch_optional(self.pool())
            .await
            .map_err(db("reading an ACME certificate"))?
            .as_ref()
            .map(certificate_from_row)
            .transpose()
    }

    /// The certificate issued through ACME with serial `serial` (hexadecimal, however
    /// written: `00AB`, `0xab`, `ab`), for revocation (RFC 8555 §7.6);
    /// [`Error::Invalid`] if `serial` is not hexadecimal.
    pub async fn acme_certificate_by_serial(
        &self,
        serial: &str,
    ) -> Result<Option<AcmeCertificateRecord>> {
        let serial = normalize_serial(serial)?;
        let sql = format!("SELECT {CERTIFICATE_COLUMNS} FROM acme_certificates WHERE serial = $1");
        sqlx::query(&sql)
            .bind(serial)
            .fetch_optional(self.pool())
            .await
            .map_err(db("looking up an ACME certificate by serial"))?
            .as_ref()
            .map(certificate_from_row)
            .transpose()
    }

    // ---- external account binding keys ----

    /// Adds an external account binding key (RFC 8555 §7.3.4; `step ca acme eab add`), its
    /// MAC key stored in base64. [`Error::AlreadyExists`] if the provisioner has a key with
    /// this id, or with this reference; [`Error::Invalid`] for an empty id, reference or
    /// MAC key.
    pub async fn acme_add_eab_key(&self, key: &AcmeEabKeyRecord) -> Result<()> {
        non_empty("ACME external account key id", &key.key_id)?;
        non_empty("ACME provisioner", &key.provisioner)?;
        if let Some(reference) = &key.reference {
            non_empty("ACME external account key reference", reference)?;
        }
        if key.hmac_key.is_empty() {
            return Err(Error::Invalid {
                what: "ACME external account MAC key",
                reason: "empty".into(),
            });
        }
        let context = "adding an ACME external account key";
        let encoded = base64_encode(key.hmac_key.as_bytes());
        let outcome = sqlx::query(
            "INSERT INTO acme_eab_keys \
             (provisioner, key_id, reference, hmac_key, account_id, created_at, bound_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
        )
        .bind(&key.provisioner)
        .bind(&key.key_id)
        .bind(key.reference.as_deref())
        .bind(encoded.as_str())
        .bind(key.account_id.as_deref())
        .bind(to_secs("external account key creation time", key.created_at)?)
        .bind(secs("bound_at", key.bound_at)?)
        .execute(self.pool())
        .await;
        // The encoded copy of the secret is wiped before it is freed.
        let mut bytes = encoded.into_bytes();
        wipe(&mut bytes);
        let done = outcome.map_err(db(context))?;
        if done.rows_affected() == 1 {
            return Ok(());
        }
        if self.acme_eab_key(&key.provisioner, &key.key_id).await?.is_some() {
            return Err(Error::AlreadyExists {
                what: "ACME external account key id",
                key: key.key_id.clone(),
            });
        }
        Err(Error::AlreadyExists {
            what: "ACME external account key reference",
            key: key.reference.clone().unwrap_or_default(),
        })
    }

    /// External account key `key_id` of `provisioner`, if there is one.
    pub async fn acme_eab_key(
        &self,
        provisioner: &str,
        key_id: &str,
    ) -> Result<Option<AcmeEabKeyRecord>> {
        let sql = format!(
            "SELECT {EAB_COLUMNS} FROM acme_eab_keys WHERE provisioner = $1 AND key_id = $2"
        );
        sqlx::query(&sql)
            .bind(provisioner)
            .bind(key_id)
            .fetch_optional(self.pool())
            .await
            .map_err(db("reading an ACME external account key"))?
            .as_ref()
            .map(eab_key_from_row)
            .transpose()
    }

    /// The external account key of `provisioner` with reference `reference` (`step ca
    /// acme eab list <provisioner> <reference>`), if there is one.
    pub async fn acme_eab_key_by_reference(
        &self,
        provisioner: &str,
        reference: &str,
    ) -> Result<Option<AcmeEabKeyRecord>> {
        let sql = format!(
            "SELECT {EAB_COLUMNS} FROM acme_eab_keys WHERE provisioner = $1 AND reference = $2"
        );
        sqlx::query(&sql)
            .bind(provisioner)
            .bind(reference)
            .fetch_optional(self.pool())
            .await
            .map_err(db("looking up an ACME external account key by reference"))?
            .as_ref()
            .map(eab_key_from_row)
            .transpose()
    }

    /// The external account keys of `provisioner`, oldest first (by creation time, then
    /// id).
    pub async fn acme_eab_keys(&self, provisioner: &str) -> Result<Vec<AcmeEabKeyRecord>> {
        let sql = format!(
            "SELECT {EAB_COLUMNS} FROM acme_eab_keys WHERE provisioner = $1 \
             ORDER BY created_at, key_id"
        );
        sqlx::query(&sql)
            .bind(provisioner)
            .fetch_all(self.pool())
            .await
            .map_err(db("listing ACME external account keys"))?
            .iter()
            .map(eab_key_from_row)
            .collect()
    }

    /// Removes external account key `key_id` of `provisioner` (`step ca acme eab remove`);
    /// true iff there was one. An account bound with it stays.
    pub async fn acme_remove_eab_key(&self, provisioner: &str, key_id: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM acme_eab_keys WHERE provisioner = $1 AND key_id = $2")
            .bind(provisioner)
            .bind(key_id)
            .execute(self.pool())
            .await
            .map_err(db("removing an ACME external account key"))?;
        Ok(done.rows_affected() == 1)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn base64_round_trips_and_matches_rfc_4648_vectors() {
        // RFC 4648 §10.
        let vectors = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in vectors {
            assert_eq!(base64_encode(plain.as_bytes()), encoded);
            assert_eq!(base64_decode(encoded).unwrap(), plain.as_bytes());
        }
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(base64_decode(&base64_encode(&all)).unwrap(), all);
        for bad in ["Zg=", "Z===", "Zg==Zm9v", "Zm9*", "Zm9v\n"] {
            assert_eq!(base64_decode(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_mac_key_is_not_shown_and_compares_by_value() {
        let key = EabHmacKey::new(b"\x13\x37secret-bytes".to_vec());
        let shown = format!("{key:?}");
        assert_eq!(shown, "EabHmacKey(<14 bytes, redacted>)");
        assert_eq!(key, EabHmacKey::from(b"\x13\x37secret-bytes".to_vec()));
        assert_ne!(key, EabHmacKey::from(b"\x13\x37secret-bytez".to_vec()));
        assert_ne!(key, EabHmacKey::from(b"\x13\x37".to_vec()));
    }

    #[test]
    fn transitions_name_one_placeholder_per_status() {
        assert_eq!(
            transition_sql("t", "status = $2", 3, &["a", "b"]),
            "UPDATE t SET status = $2 WHERE id = $1 AND status IN ($3, $4)"
        );
        assert!(check_transition("s", ORDER_STATUSES, &[], "valid").is_err());
        assert!(check_transition("s", ORDER_STATUSES, &["pending"], "done").is_err());
        assert!(check_transition("s", ORDER_STATUSES, &["nope"], "valid").is_err());
        assert!(check_transition("s", ORDER_STATUSES, &["pending", "ready"], "invalid").is_ok());
    }
}
