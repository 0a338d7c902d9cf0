//! ACME (RFC 8555) on the authority, laid out as step-ca lays it out: every ACME
//! provisioner `NAME` answers at `/acme/NAME/…` — `directory`, `new-nonce`,
//! `new-account`, `account/{id}`, `account/{id}/orders`, `new-order`, `order/{id}`,
//! `order/{id}/finalize`, `authz/{id}`, `challenge/{authz}/{id}`, `certificate/{id}`,
//! `revoke-cert` and `key-change`.
//!
//! The protocol's pieces without I/O (the JWS envelope, its JSON objects, problem
//! documents, key authorizations, external account binding, device attestation) are
//! keystation-acme's; the network checks of http-01, dns-01 and tls-alpn-01 are
//! keystation-acme-va's. Here they meet the store (accounts, orders, nonces — SQLite or
//! PostgreSQL, so replicas share them) and the CA.
//!
//! Order of checks on every POST (RFC 8555 §6.2–6.5): the envelope parses; its `url` is
//! the URL the request was sent to; the key (`jwk` where allowed, else the account `kid`
//! names) verifies the signature; only then is the nonce spent, so a forged request cannot
//! burn a client's nonce.

mod handlers;
mod render;
mod reply;
mod server;
mod validation;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};

pub(crate) use self::server::AcmeState;
use crate::authority::Authority;

/// The ACME routes, under `/acme/{provisioner}`.
pub(crate) fn routes() -> Router<Arc<Authority>> {
    use handlers::*;
    Router::new()
        .route("/acme/{provisioner}/directory", get(directory))
        .route("/acme/{provisioner}/new-nonce", get(new_nonce).head(new_nonce))
        .route("/acme/{provisioner}/new-account", post(new_account))
        .route("/acme/{provisioner}/account/{id}", post(account))
        .route("/acme/{provisioner}/account/{id}/orders", post(account_orders))
        .route("/acme/{provisioner}/new-order", post(new_order))
        .route("/acme/{provisioner}/order/{id}", post(order))
        .route("/acme/{provisioner}/order/{id}/finalize", post(finalize))
        .route("/acme/{provisioner}/authz/{id}", post(authorization))
        .route("/acme/{provisioner}/challenge/{authz}/{id}", post(challenge))
        .route("/acme/{provisioner}/certificate/{id}", post(certificate))
        .route("/acme/{provisioner}/revoke-cert", post(revoke_certificate))
        .route("/acme/{provisioner}/key-change", post(key_change))
}
