//! The store's records as RFC 8555 §7.1 objects, with the URLs of this endpoint.

use std::time::SystemTime;

use keystation_acme::messages::Identifier;
use keystation_acme::problem::Problem;
use keystation_store::{
    AcmeAccountRecord, AcmeAuthorizationRecord, AcmeChallengeRecord, AcmeOrderRecord,
};
use serde_json::{Value, json};

use super::server::Endpoint;

fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    keystation_x509::rfc3339(secs)
}

/// A stored problem document, or nothing when it does not parse.
fn stored_problem(text: Option<&str>) -> Option<Value> {
    let text = text?;
    Problem::from_json(text.as_bytes()).ok().and_then(|p| serde_json::to_value(p).ok())
}

/// The directory (§7.1.1).
pub(super) fn directory(endpoint: &Endpoint, external_account_required: bool) -> Value {
    let base = &endpoint.base;
    json!({
        "newNonce": format!("{base}/new-nonce"),
        "newAccount": format!("{base}/new-account"),
        "newOrder": format!("{base}/new-order"),
        "revokeCert": format!("{base}/revoke-cert"),
        "keyChange": format!("{base}/key-change"),
        "meta": { "externalAccountRequired": external_account_required },
    })
}

/// An account (§7.1.2).
pub(super) fn account(endpoint: &Endpoint, account: &AcmeAccountRecord) -> Value {
    let mut value = json!({
        "status": account.status,
        "contact": account.contact,
        "orders": format!("{}/orders", endpoint.account_url(&account.id)),
    });
    if account.eab_key_id.is_some() {
        value["externalAccountBinding"] = json!({ "kid": account.eab_key_id });
    }
    value
}

/// An order (§7.1.3).
pub(super) fn order(
    endpoint: &Endpoint,
    order: &AcmeOrderRecord,
    authorizations: &[AcmeAuthorizationRecord],
) -> Value {
    let identifiers: Vec<Identifier> = serde_json::from_str(&order.identifiers).unwrap_or_default();
    let mut value = json!({
        "status": order.status,
        "expires": rfc3339(order.expires_at),
        "identifiers": identifiers,
        "authorizations": authorizations.iter().map(|a| endpoint.authz_url(&a.id)).collect::<Vec<_>>(),
        "finalize": format!("{}/finalize", endpoint.order_url(&order.id)),
    });
    if let Some(nb) = order.not_before {
        value["notBefore"] = json!(rfc3339(nb));
    }
    if let Some(na) = order.not_after {
        value["notAfter"] = json!(rfc3339(na));
    }
    if let Some(error) = stored_problem(order.error.as_deref()) {
        value["error"] = error;
    }
    if let Some(certificate) = &order.certificate_id {
        value["certificate"] = json!(endpoint.certificate_url(certificate));
    }
    value
}

/// A challenge (§7.1.5, §8).
pub(super) fn challenge(
    endpoint: &Endpoint,
    authz_id: &str,
    challenge: &AcmeChallengeRecord,
) -> Value {
    let mut value = json!({
        "type": challenge.kind,
        "url": endpoint.challenge_url(authz_id, &challenge.id),
        "status": challenge.status,
        "token": challenge.token,
    });
    if let Some(validated) = challenge.validated_at {
        value["validated"] = json!(rfc3339(validated));
    }
    if let Some(error) = stored_problem(challenge.error.as_deref()) {
        value["error"] = error;
    }
    value
}

/// An authorization with its challenges (§7.1.4).
pub(super) fn authorization(
    endpoint: &Endpoint,
    authz: &AcmeAuthorizationRecord,
    challenges: &[AcmeChallengeRecord],
) -> Value {
    let mut value = json!({
        "identifier": { "type": authz.identifier_type, "value": authz.identifier_value },
        "status": authz.status,
        "expires": rfc3339(authz.expires_at),
        "challenges": challenges.iter().map(|c| challenge(endpoint, &authz.id, c)).collect::<Vec<_>>(),
    });
    if authz.wildcard {
        value["wildcard"] = json!(true);
    }
    value
}
