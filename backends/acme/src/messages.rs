//! ACME's JSON objects (RFC 8555 §7.1) with the RFC's member names: the directory, the
//! request payloads a client sends, and the account, order, authorization and challenge
//! objects a server answers with, with their status enums.
//!
//! Payloads are read with each type's `from_json` (a JSON object, never a panic; the caller
//! caps the body, [`MAX_REQUEST_LEN`](crate::MAX_REQUEST_LEN)); unknown members are
//! ignored, as RFC 8555 §7.1 lets clients and servers extend objects.

use keystation_jose::Jwk;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};
use crate::json;
use crate::problem::Problem;

/// Enums written as fixed strings in JSON, with `as_str` and `FromStr`.
macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$doc:meta])* $variant:ident => $text:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $($(#[$doc])* $variant,)*
        }

        impl $name {
            /// Every value, in the RFC's order.
            pub const ALL: &'static [Self] = &[$(Self::$variant,)*];

            /// The value as JSON writes it.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)*
                }
            }
        }

        impl core::str::FromStr for $name {
            type Err = Error;

            fn from_str(s: &str) -> Result<Self> {
                Self::ALL.iter().copied().find(|v| v.as_str() == s).ok_or_else(|| {
                    Error::malformed(stringify!($name), format!("unknown value {s:?}"))
                })
            }
        }

        impl core::fmt::Display for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> core::result::Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> core::result::Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

string_enum! {
    /// An account's status (RFC 8555 §7.1.2, §7.1.6).
    AccountStatus {
        /// In use.
        Valid => "valid",
        /// Deactivated by its holder (§7.3.6).
        Deactivated => "deactivated",
        /// Revoked by the server.
        Revoked => "revoked",
    }
}

string_enum! {
    /// An order's status (RFC 8555 §7.1.3, §7.1.6).
    OrderStatus {
        /// Authorizations not all valid yet.
        Pending => "pending",
        /// Every authorization is valid: the order may be finalized.
        Ready => "ready",
        /// Finalized; the certificate is being issued.
        Processing => "processing",
        /// The certificate is issued.
        Valid => "valid",
        /// An authorization failed, or the order expired.
        Invalid => "invalid",
    }
}

string_enum! {
    /// An authorization's status (RFC 8555 §7.1.4, §7.1.6).
    AuthorizationStatus {
        /// No challenge has succeeded yet.
        Pending => "pending",
        /// A challenge succeeded.
        Valid => "valid",
        /// A challenge failed.
        Invalid => "invalid",
        /// Deactivated by the client (§7.5.2).
        Deactivated => "deactivated",
        /// Past its `expires`.
        Expired => "expired",
        /// Revoked by the server.
        Revoked => "revoked",
    }
}

string_enum! {
    /// A challenge's status (RFC 8555 §7.1.6).
    ChallengeStatus {
        /// Waiting for the client's response.
        Pending => "pending",
        /// The server is validating.
        Processing => "processing",
        /// Validated.
        Valid => "valid",
        /// Validation failed.
        Invalid => "invalid",
    }
}

string_enum! {
    /// An identifier's type: RFC 8555 §9.7.7's `dns`, RFC 8738's `ip`, and
    /// draft-ietf-acme-device-attest's `permanent-identifier` (a device serial).
    IdentifierType {
        /// A DNS name, possibly a wildcard `*.example.com`.
        Dns => "dns",
        /// An IPv4 or IPv6 address (RFC 8738 §3).
        Ip => "ip",
        /// A device's permanent identifier (RFC 4043), for device-attest-01.
        PermanentIdentifier => "permanent-identifier",
    }
}

string_enum! {
    /// A challenge type: RFC 8555 §8.3 and §8.4, RFC 8737 and draft-ietf-acme-device-attest.
    ChallengeType {
        /// A file at `/.well-known/acme-challenge/{token}` over HTTP (RFC 8555 §8.3).
        Http01 => "http-01",
        /// A TXT record at `_acme-challenge.{domain}` (RFC 8555 §8.4).
        Dns01 => "dns-01",
        /// A certificate over TLS with the `acme-tls/1` ALPN protocol (RFC 8737).
        TlsAlpn01 => "tls-alpn-01",
        /// An attestation statement from the device (draft-ietf-acme-device-attest §4).
        DeviceAttest01 => "device-attest-01",
    }
}

/// An identifier (RFC 8555 §7.1.3, §9.7.7).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Identifier {
    /// `type`.
    #[serde(rename = "type")]
    pub identifier_type: IdentifierType,
    /// `value`: the name, the address, the serial.
    pub value: String,
}

impl Identifier {
    /// A `dns` identifier.
    pub fn dns(value: impl Into<String>) -> Self {
        Self { identifier_type: IdentifierType::Dns, value: value.into() }
    }

    /// An `ip` identifier.
    pub fn ip(value: impl Into<String>) -> Self {
        Self { identifier_type: IdentifierType::Ip, value: value.into() }
    }

    /// A `permanent-identifier` identifier.
    pub fn permanent(value: impl Into<String>) -> Self {
        Self { identifier_type: IdentifierType::PermanentIdentifier, value: value.into() }
    }
}

/// A JWS in the flattened JSON serialization, kept as its three base64url members (an
/// `externalAccountBinding`, RFC 8555 §7.3.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlattenedJws {
    /// `protected`: the base64url protected header.
    pub protected: String,
    /// `payload`: the base64url payload.
    pub payload: String,
    /// `signature`: the base64url signature.
    pub signature: String,
}

/// The `meta` object of the directory (RFC 8555 §7.1.1).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryMeta {
    /// The terms of service's URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terms_of_service: Option<String>,
    /// The operator's website.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub website: Option<String>,
    /// The CAA issuer domains that name this CA (RFC 8659).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub caa_identities: Vec<String>,
    /// Whether newAccount requires an external account binding (§7.3.4).
    #[serde(default)]
    pub external_account_required: bool,
}

/// The directory (RFC 8555 §7.1.1). `newAuthz` (pre-authorization) is not offered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Directory {
    /// `newNonce`.
    pub new_nonce: String,
    /// `newAccount`.
    pub new_account: String,
    /// `newOrder`.
    pub new_order: String,
    /// `revokeCert`.
    pub revoke_cert: String,
    /// `keyChange`.
    pub key_change: String,
    /// `meta`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<DirectoryMeta>,
}

/// The newAccount payload (RFC 8555 §7.3).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewAccount {
    /// `contact`: `mailto:` URLs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contact: Vec<String>,
    /// `termsOfServiceAgreed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terms_of_service_agreed: Option<bool>,
    /// `onlyReturnExisting`: look the key's account up, create none (§7.3.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only_return_existing: Option<bool>,
    /// `externalAccountBinding` (§7.3.4); see [`verify_eab`](crate::eab::verify_eab).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_account_binding: Option<FlattenedJws>,
}

/// An account update (RFC 8555 §7.3.2) or deactivation (§7.3.6), POSTed to the account URL.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountUpdate {
    /// The new `contact` list, when changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<Vec<String>>,
    /// `status`: only `deactivated` may be asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<AccountStatus>,
}

/// The newOrder payload (RFC 8555 §7.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewOrder {
    /// `identifiers`: at least one.
    pub identifiers: Vec<Identifier>,
    /// `notBefore`, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<String>,
    /// `notAfter`, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after: Option<String>,
}

/// The finalize payload (RFC 8555 §7.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finalize {
    /// `csr`: the PKCS#10 request's DER, base64url.
    pub csr: String,
}

/// The revokeCert payload (RFC 8555 §7.6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokeCert {
    /// `certificate`: the certificate's DER, base64url.
    pub certificate: String,
    /// `reason`: an RFC 5280 §5.3.1 CRLReason code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<u8>,
}

/// The inner payload of a key change (RFC 8555 §7.3.5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyChange {
    /// `account`: the account URL.
    pub account: String,
    /// `oldKey`: the account's current key, a JWK.
    pub old_key: serde_json::Value,
}

/// The device-attest-01 response payload (draft-ietf-acme-device-attest §5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceAttestPayload {
    /// `attObj`: the CBOR attestation object, base64url.
    #[serde(rename = "attObj")]
    pub att_obj: String,
}

/// The response to an http-01, dns-01 or tls-alpn-01 challenge: the empty object
/// (RFC 8555 §7.5.1).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChallengeResponse {}

/// An account object (RFC 8555 §7.1.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    /// `status`.
    pub status: AccountStatus,
    /// `contact`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contact: Vec<String>,
    /// `termsOfServiceAgreed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terms_of_service_agreed: Option<bool>,
    /// `externalAccountBinding`, as the client sent it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_account_binding: Option<FlattenedJws>,
    /// `orders`: the URL of the account's order list.
    #[serde(default)]
    pub orders: String,
}

/// An order object (RFC 8555 §7.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    /// `status`.
    pub status: OrderStatus,
    /// `expires`, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    /// `identifiers`.
    pub identifiers: Vec<Identifier>,
    /// `notBefore`, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<String>,
    /// `notAfter`, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after: Option<String>,
    /// `error`: why the order is invalid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Problem>,
    /// `authorizations`: their URLs.
    pub authorizations: Vec<String>,
    /// `finalize`: the URL to POST the CSR to.
    pub finalize: String,
    /// `certificate`: the certificate's URL, once issued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
}

/// An authorization object (RFC 8555 §7.1.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authorization {
    /// `identifier`: without the wildcard's `*.` (§7.1.4).
    pub identifier: Identifier,
    /// `status`.
    pub status: AuthorizationStatus,
    /// `expires`, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    /// `challenges`.
    pub challenges: Vec<Challenge>,
    /// `wildcard`: present and true for a wildcard name's authorization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wildcard: Option<bool>,
}

/// A challenge object (RFC 8555 §7.1.5, §8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    /// `type`.
    #[serde(rename = "type")]
    pub challenge_type: ChallengeType,
    /// `url`: where the client POSTs its response.
    pub url: String,
    /// `status`.
    pub status: ChallengeStatus,
    /// `validated`, RFC 3339, once valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validated: Option<String>,
    /// `error`: why validation failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Problem>,
    /// `token` (§8.1): at least 128 bits of entropy, base64url.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub token: String,
}

macro_rules! from_json {
    ($($ty:ident => $what:literal,)*) => {
        $(impl $ty {
            #[doc = concat!("Parses a ", $what, " from a JSON object; anything else is [`Error::Malformed`].")]
            pub fn from_json(bytes: &[u8]) -> Result<Self> {
                json::object(bytes, $what)
            }
        })*
    };
}

from_json! {
    Directory => "directory",
    NewAccount => "newAccount payload",
    AccountUpdate => "account update payload",
    Finalize => "finalize payload",
    RevokeCert => "revokeCert payload",
    KeyChange => "keyChange payload",
    DeviceAttestPayload => "device-attest-01 payload",
    ChallengeResponse => "challenge response",
    Account => "account",
    Order => "order",
    Authorization => "authorization",
    Challenge => "challenge",
}

impl NewOrder {
    /// Parses a newOrder payload. An identifier `type` other than `dns`, `ip` and
    /// `permanent-identifier` is [`Error::UnsupportedIdentifier`] (RFC 8555 §7.4); no
    /// identifier at all is [`Error::Malformed`]. Values are checked by
    /// [`normalize_identifier`](crate::identifiers::normalize_identifier).
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        #[derive(Deserialize)]
        struct RawIdentifier {
            #[serde(rename = "type")]
            identifier_type: String,
        }
        #[derive(Deserialize)]
        struct Raw {
            identifiers: Vec<RawIdentifier>,
        }
        let raw: Raw = json::object(bytes, "newOrder payload")?;
        if let Some(unknown) =
            raw.identifiers.iter().find(|i| i.identifier_type.parse::<IdentifierType>().is_err())
        {
            return Err(Error::UnsupportedIdentifier(unknown.identifier_type.clone()));
        }
        let order: Self = json::object(bytes, "newOrder payload")?;
        if order.identifiers.is_empty() {
            return Err(Error::malformed("newOrder payload", "no identifiers"));
        }
        for (what, time) in [("notBefore", &order.not_before), ("notAfter", &order.not_after)] {
            if let Some(text) = time {
                keystation_jose::step_time::parse_rfc3339(text).map_err(|_| {
                    Error::malformed("newOrder payload", format!("{what} {text:?} is not RFC 3339"))
                })?;
            }
        }
        Ok(order)
    }

    /// `notBefore` and `notAfter` in Unix seconds (validated by [`from_json`](Self::from_json)).
    pub fn validity(&self) -> Result<(Option<i64>, Option<i64>)> {
        let parse = |time: &Option<String>| {
            time.as_deref()
                .map(|t| {
                    keystation_jose::step_time::parse_rfc3339(t).map_err(|_| {
                        Error::malformed("newOrder payload", format!("{t:?} is not RFC 3339"))
                    })
                })
                .transpose()
        };
        Ok((parse(&self.not_before)?, parse(&self.not_after)?))
    }
}

impl AccountUpdate {
    /// Whether the update deactivates the account (RFC 8555 §7.3.6).
    pub fn is_deactivation(&self) -> bool {
        self.status == Some(AccountStatus::Deactivated)
    }
}

impl Finalize {
    /// The CSR's DER.
    pub fn csr_der(&self) -> Result<Vec<u8>> {
        crate::b64::decode(&self.csr, "csr")
    }
}

impl RevokeCert {
    /// The certificate's DER.
    pub fn certificate_der(&self) -> Result<Vec<u8>> {
        crate::b64::decode(&self.certificate, "certificate")
    }
}

impl KeyChange {
    /// `oldKey` as a JWK; a key that is not one is [`Error::BadPublicKey`].
    pub fn old_jwk(&self) -> Result<Jwk> {
        Jwk::from_json_value(&self.old_key).map_err(|e| Error::BadPublicKey(e.to_string()))
    }
}

impl DeviceAttestPayload {
    /// The attestation object's bytes.
    pub fn att_obj_bytes(&self) -> Result<Vec<u8>> {
        crate::b64::decode(&self.att_obj, "attObj")
    }
}

impl Directory {
    /// The directory as JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}
