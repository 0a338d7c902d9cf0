//! JWT claims (RFC 7519 §4.1) with step's: `sans`, `sha` and `step.ssh`.
//!
//! Parsing checks types only; what the values must be (issuer, audience, times) is the
//! provisioner's business. Unknown claims are ignored; duplicate claims are refused.

use serde::de::{self, Deserializer};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::json;
use crate::jwk::PrivateJwk;
use crate::jws::{Header, sign_compact};
use crate::step_time::TimeOrDuration;

/// The claims of a step token.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[non_exhaustive]
pub struct Claims {
    /// `iss`: for step's tokens, the provisioner's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// `sub`: the certificate's subject (X.509 CN, SSH key ID) or the serial to revoke.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// `aud`: a string or an array of strings in JSON (RFC 7519 §4.1.3); a single audience
    /// is written as a string, as go-jose does.
    #[serde(
        default,
        deserialize_with = "audience_de",
        serialize_with = "audience_ser",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub aud: Vec<String>,
    /// `exp`, Unix seconds.
    #[serde(default, deserialize_with = "numeric_date", skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    /// `nbf`, Unix seconds.
    #[serde(default, deserialize_with = "numeric_date", skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// `iat`, Unix seconds.
    #[serde(default, deserialize_with = "numeric_date", skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// `jti`: the token's unique ID (single use).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// step's `sans`: the subject alternative names the certificate may have.
    #[serde(default, deserialize_with = "null_as_empty", skip_serializing_if = "Vec::is_empty")]
    pub sans: Vec<String>,
    /// step's `sha`: the hex SHA-256 fingerprint of the root the client trusts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha: Option<String>,
    /// step's `step` object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<StepClaims>,
}

/// step's `step` claim.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[non_exhaustive]
pub struct StepClaims {
    /// `ssh`: present in a token for an SSH certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh: Option<SshClaims>,
}

/// The kind of SSH certificate (`certType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SshCertType {
    /// `user`.
    User,
    /// `host`.
    Host,
}

/// step's `step.ssh` claim (its `SignSSHOptions`): what the SSH certificate may be.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[non_exhaustive]
pub struct SshClaims {
    /// `certType`: `user` or `host` (step writes `""` for unset).
    #[serde(
        default,
        rename = "certType",
        deserialize_with = "cert_type_de",
        skip_serializing_if = "Option::is_none"
    )]
    pub cert_type: Option<SshCertType>,
    /// `keyID`.
    #[serde(
        default,
        rename = "keyID",
        deserialize_with = "empty_as_none",
        skip_serializing_if = "Option::is_none"
    )]
    pub key_id: Option<String>,
    /// `principals`.
    #[serde(default, deserialize_with = "null_as_empty", skip_serializing_if = "Vec::is_empty")]
    pub principals: Vec<String>,
    /// `validAfter`: an RFC 3339 time or a Go duration from the signing time.
    #[serde(
        default,
        rename = "validAfter",
        deserialize_with = "time_or_duration_de",
        serialize_with = "time_or_duration_ser",
        skip_serializing_if = "Option::is_none"
    )]
    pub valid_after: Option<TimeOrDuration>,
    /// `validBefore`: an RFC 3339 time or a Go duration from the signing time.
    #[serde(
        default,
        rename = "validBefore",
        deserialize_with = "time_or_duration_de",
        serialize_with = "time_or_duration_ser",
        skip_serializing_if = "Option::is_none"
    )]
    pub valid_before: Option<TimeOrDuration>,
}

impl Claims {
    /// Parses claims from a JWS payload. The payload must be a JSON object.
    pub fn from_json(payload: &[u8]) -> Result<Self> {
        json::object(payload, "JWT claims")
    }

    /// The claims as compact JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The SSH part of the claims (`step.ssh`), if any.
    pub fn ssh(&self) -> Option<&SshClaims> {
        self.step.as_ref().and_then(|s| s.ssh.as_ref())
    }
}

impl SshClaims {
    /// SSH claims with the given type, key ID and principals.
    pub fn new(cert_type: SshCertType, key_id: impl Into<String>, principals: Vec<String>) -> Self {
        Self {
            cert_type: Some(cert_type),
            key_id: Some(key_id.into()),
            principals,
            ..Self::default()
        }
    }
}

/// Signs `claims` as a JWT: a compact JWS with `typ` `JWT` (unless `header` names another),
/// the key's `kid` (unless `header` names one) and the key's algorithm. `header` carries the
/// extras: `x5c`, `x5cInsecure`, `sshpop`, `jwk`.
pub fn sign_jwt(key: &PrivateJwk, header: &Header, claims: &Claims) -> Result<String> {
    let mut header = header.clone();
    if header.typ.is_none() {
        header.typ = Some("JWT".into());
    }
    sign_compact(key, &header, claims.to_json().as_bytes())
}

fn audience_de<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Aud {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<Aud>::deserialize(d)? {
        None => Vec::new(),
        Some(Aud::One(s)) => vec![s],
        Some(Aud::Many(v)) => v,
    })
}

fn audience_ser<S: Serializer>(aud: &[String], s: S) -> Result<S::Ok, S::Error> {
    match aud {
        [one] => s.serialize_str(one),
        many => many.serialize(s),
    }
}

/// RFC 7519 §2 NumericDate: a JSON number of seconds, possibly with a fraction (truncated);
/// `null` is absent.
fn numeric_date<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let Some(n) = Option::<serde_json::Number>::deserialize(d)? else { return Ok(None) };
    if let Some(i) = n.as_i64() {
        return Ok(Some(i));
    }
    match n.as_f64() {
        Some(f) if f.is_finite() && f.abs() < 9.0e15 => Ok(Some(f.trunc() as i64)),
        _ => Err(de::Error::custom("NumericDate out of range")),
    }
}

fn null_as_empty<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}

fn empty_as_none<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.filter(|s| !s.is_empty()))
}

fn cert_type_de<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SshCertType>, D::Error> {
    match Option::<String>::deserialize(d)?.as_deref() {
        None | Some("") => Ok(None),
        Some("user") => Ok(Some(SshCertType::User)),
        Some("host") => Ok(Some(SshCertType::Host)),
        Some(other) => Err(de::Error::custom(format!("unknown certType {other:?}"))),
    }
}

fn time_or_duration_de<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<TimeOrDuration>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(s) => TimeOrDuration::parse(&s).map_err(de::Error::custom),
    }
}

fn time_or_duration_ser<S: Serializer>(
    v: &Option<TimeOrDuration>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match v {
        Some(t) => s.serialize_str(&t.to_json_string()),
        None => s.serialize_str(""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_token_claims_parse() {
        // The shape step's tools write for an X.509 token.
        let x509 = br#"{"aud":"https://127.0.0.1:19443/1.0/sign","exp":1700000300,"iat":1700000000,"iss":"admin","jti":"8d2c","nbf":1700000000,"sans":["localhost","127.0.0.1"],"sha":"ab12","sub":"localhost"}"#;
        let c = Claims::from_json(x509).map_err(|e| e.to_string());
        let Ok(c) = c else { panic!("{c:?}") };
        assert_eq!(c.aud, vec!["https://127.0.0.1:19443/1.0/sign".to_string()]);
        assert_eq!(
            (c.exp, c.nbf, c.iat),
            (Some(1_700_000_300), Some(1_700_000_000), Some(1_700_000_000))
        );
        assert_eq!(c.sans, vec!["localhost".to_string(), "127.0.0.1".into()]);
        assert_eq!(c.sha.as_deref(), Some("ab12"));
        assert!(c.ssh().is_none());
        // Round trip, single audience as a string.
        let again = Claims::from_json(c.to_json().as_bytes()).map_err(|e| e.to_string());
        assert_eq!(again.as_ref().ok(), Some(&c));
        assert!(c.to_json().contains(r#""aud":"https://127.0.0.1:19443/1.0/sign""#));

        // An SSH token as Go writes it: unset fields empty strings, nil slices null.
        let ssh = br#"{"aud":["a","b"],"sub":"alice","exp":1.7e9,"step":{"ssh":{"certType":"user","keyID":"alice","principals":["alice","root"],"validAfter":"","validBefore":"2024-02-29T12:00:00Z","templateData":null}},"sans":null}"#;
        let c = Claims::from_json(ssh).map_err(|e| e.to_string());
        let Ok(c) = c else { panic!("{c:?}") };
        assert_eq!(c.aud.len(), 2);
        assert_eq!(c.exp, Some(1_700_000_000));
        let s = c.ssh().cloned().unwrap_or_default();
        assert_eq!(s.cert_type, Some(SshCertType::User));
        assert_eq!(s.key_id.as_deref(), Some("alice"));
        assert_eq!(s.principals, vec!["alice".to_string(), "root".into()]);
        assert_eq!(s.valid_after, None);
        assert_eq!(s.valid_before, Some(TimeOrDuration::Time(1_709_208_000)));
        let host =
            br#"{"step":{"ssh":{"certType":"","keyID":"","principals":null,"validAfter":"-5m"}}}"#;
        let c = Claims::from_json(host).map_err(|e| e.to_string());
        let s = c.ok().and_then(|c| c.ssh().cloned()).unwrap_or_default();
        assert_eq!((s.cert_type, s.key_id, s.principals.len()), (None, None, 0));
        assert_eq!(s.valid_after, Some(TimeOrDuration::Duration(-300_000_000_000)));
    }

    #[test]
    fn wrong_types_are_errors() {
        for bad in [
            &br#"[]"#[..],
            br#"{"exp":"1700000000"}"#,
            br#"{"exp":1e300}"#,
            br#"{"aud":7}"#,
            br#"{"aud":["a",7]}"#,
            br#"{"sub":"a","sub":"b"}"#,
            br#"{"step":{"ssh":{"certType":"root"}}}"#,
            br#"{"step":{"ssh":{"validAfter":"tomorrow"}}}"#,
            br#"{"sans":"x"}"#,
            b"\xff",
        ] {
            assert!(Claims::from_json(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
