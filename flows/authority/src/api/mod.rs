//! step-ca's HTTP API: the same paths (unversioned, as smallstep's `ca.Client` calls them,
//! and under `/1.0`, as token audiences name them) and the same JSON bodies
//! (`certificates/api` of step-ca 0.19), plus keystation's attested enrollment
//! (`/sign-attested`), the CRL and the admin API.

pub mod bodies;
mod error;
pub(crate) mod handlers;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};

pub use self::error::ApiError;
use crate::authority::Authority;

/// The client certificate chain (DER, leaf first) the TLS handshake verified against the
/// root, empty when the client presented none. Handlers of mTLS routes read it.
#[derive(Debug, Clone, Default)]
pub struct ClientCertificates(pub Arc<Vec<Vec<u8>>>);

/// The largest request body accepted (a CSR with a long chain fits many times over).
pub const MAX_BODY_BYTES: usize = 256 * 1024;

fn routes() -> Router<Arc<Authority>> {
    use handlers::*;
    Router::new()
        .route("/health", get(health))
        .route("/version", get(version))
        .route("/roots", get(roots))
        .route("/roots.pem", get(roots_pem))
        .route("/root/{sha}", get(root))
        .route("/provisioners", get(provisioners))
        .route("/provisioners/{kid}/encrypted-key", get(encrypted_key))
        .route("/sign", post(sign))
        .route("/renew", post(renew))
        .route("/rekey", post(rekey))
        .route("/revoke", post(revoke))
        .route("/crl", get(crl))
        .route("/ssh/sign", post(ssh_sign))
        .route("/ssh/roots", get(ssh_roots))
        .route("/ssh/renew", post(ssh_renew))
        .route("/ssh/rekey", post(ssh_rekey))
        .route("/ssh/revoke", post(ssh_revoke))
        .route("/sign-attested", post(sign_attested))
        .route("/admin/provisioners", get(admin_list_provisioners).post(admin_add_provisioner))
        .route(
            "/admin/provisioners/{name}",
            axum::routing::delete(admin_remove_provisioner).put(admin_update_provisioner),
        )
        .route("/admin/admins", get(admin_list_admins).post(admin_add_admin))
        .route("/admin/admins/{subject}", axum::routing::delete(admin_remove_admin))
        .route("/admin/jobs", get(admin_list_jobs).post(admin_add_job))
        .route("/admin/jobs/{id}", get(admin_show_job))
}

/// The API's router: every route at its unversioned path and under `/1.0`.
pub fn router(authority: Arc<Authority>) -> Router {
    let router = Router::new();
    #[cfg(feature = "acme")]
    let router = router.merge(crate::acme::routes());
    router
        .merge(routes())
        .nest("/1.0", routes())
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(authority)
}
