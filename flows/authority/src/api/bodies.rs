//! The JSON bodies of step-ca's API as its clients send them (`certificates/api` of step-ca
//! 0.19), and keystation's additions. Public so the fuzz target `authority_bodies` reads
//! them exactly as the server does.

use serde::{Deserialize, Serialize};

/// `/sign`: `{csr, ott, notBefore, notAfter, templateData}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignRequest {
    /// The certificate request (PEM).
    pub csr: String,
    /// The one-time token.
    pub ott: String,
    /// Requested start of validity (RFC 3339 or a duration).
    #[serde(default)]
    pub not_before: Option<String>,
    /// Requested end of validity (RFC 3339 or a duration).
    #[serde(default)]
    pub not_after: Option<String>,
}

/// step-ca's `SignResponse`: `{crt, ca, certChain}`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SignResponse {
    /// The leaf (PEM).
    pub crt: String,
    /// The issuing intermediate (PEM).
    pub ca: String,
    /// Leaf and intermediate (PEM each).
    pub cert_chain: Vec<String>,
}

/// `/rekey`: `{csr}`.
#[derive(Debug, Deserialize)]
pub struct RekeyRequest {
    /// The certificate request for the new key (PEM).
    pub csr: String,
}

/// `/revoke`: `{serial, ott, reasonCode, reason, passive}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RevokeRequest {
    /// The serial (decimal, or `0x` hex).
    pub serial: String,
    /// The one-time token.
    #[serde(default)]
    pub ott: String,
    /// RFC 5280 §5.3.1 reason code.
    #[serde(default)]
    pub reason_code: i32,
    /// The reason in words.
    #[serde(default)]
    pub reason: String,
}

/// `/ssh/sign`: `{publicKey, ott, certType, keyID, principals, validAfter, validBefore}`;
/// `publicKey` is the key's SSH wire encoding in base64.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SshSignRequest {
    /// The SSH public key's wire encoding, base64.
    pub public_key: String,
    /// The one-time token.
    pub ott: String,
    /// `user` or `host`.
    #[serde(default)]
    pub cert_type: String,
    /// The certificate's key ID.
    #[serde(default, rename = "keyID")]
    pub key_id: String,
    /// The principals asked for.
    #[serde(default)]
    pub principals: Vec<String>,
    /// Requested start of validity.
    #[serde(default)]
    pub valid_after: Option<String>,
    /// Requested end of validity.
    #[serde(default)]
    pub valid_before: Option<String>,
}

/// `/ssh/renew` and `/ssh/revoke`-style bodies carry an SSHPOP token.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SshPopRequest {
    /// The one-time token.
    pub ott: String,
    /// The SSH public key's wire encoding, base64.
    #[serde(default)]
    pub public_key: Option<String>,
    /// The serial (decimal, or `0x` hex).
    #[serde(default)]
    pub serial: Option<String>,
    /// RFC 5280 §5.3.1 reason code.
    #[serde(default)]
    pub reason_code: i32,
    /// The reason in words.
    #[serde(default)]
    pub reason: String,
}

/// `/sign-attested`: keystation's attested enrollment.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttestedSignRequest {
    /// The provisioner's name.
    pub provisioner: String,
    /// The certificate request (PEM).
    pub csr: String,
    /// The attestation of the CSR's key.
    pub attestation: AttestationBody,
}

/// The attestation of the key in the CSR.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttestationBody {
    /// The slot's attestation certificate (PEM).
    pub slot_certificate: String,
    /// The card's F9 attestation certificate (PEM).
    pub intermediate: String,
}

/// `/admin/admins` POST: `{subject, provisioner, type}` as step-ca's admin API names them.
#[derive(Debug, Deserialize)]
pub struct AddAdmin {
    /// The admin's subject.
    pub subject: String,
    /// The provisioner's name.
    pub provisioner: String,
    /// `ADMIN` or `SUPER_ADMIN`.
    #[serde(default, rename = "type")]
    pub role: Option<String>,
}

/// A job for a station: the holder, and optionally the one worker that may take it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewJob {
    /// Holder's first name.
    pub first_name: String,
    /// Holder's last name.
    pub last_name: String,
    /// Holder's e-mail address.
    pub email: String,
    /// The worker (station id) the job is for; any when absent.
    #[serde(default)]
    pub worker: Option<String>,
}
