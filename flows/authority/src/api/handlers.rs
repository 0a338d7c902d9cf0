//! The route handlers: parse the body step-ca's client sends, call the [`Authority`], answer
//! with step-ca's body. Authorization and issuance live in the authority, not here.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::bodies::{
    AddAdmin, AttestedSignRequest, NewJob, RekeyRequest, RevokeRequest, SignRequest, SshPopRequest,
    SshSignRequest,
};
use super::{ApiError, ClientCertificates};
use crate::authority::{Admin, Authority, Caller};

type Shared = State<Arc<Authority>>;
type ApiResult<T> = Result<T, ApiError>;

/// The `Host` header without its port, to try the audience the client dialled first.
fn host(headers: &HeaderMap) -> Option<String> {
    headers.get(header::HOST).and_then(|h| h.to_str().ok()).map(str::to_owned)
}

fn caller(headers: &HeaderMap, certificates: &ClientCertificates) -> Caller {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    Caller { host: host(headers), client_chain: certificates.0.clone(), bearer }
}

/// A JSON body, with step-ca's 400 answer when it does not parse.
pub(crate) struct Body<T>(T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> axum::extract::FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(
        request: axum::extract::Request,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::Bytes::from_request(request, state)
            .await
            .map_err(|e| ApiError::bad_request(format!("error reading request body: {e}")))?;
        serde_json::from_slice(&bytes)
            .map(Body)
            .map_err(|e| ApiError::bad_request(format!("error reading request body: {e}")))
    }
}

pub(super) async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

pub(super) async fn version() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "version": concat!("keystation/", env!("CARGO_PKG_VERSION")) }))
}

pub(super) async fn roots(State(a): Shared) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "crts": a.roots_pem() }))
}

pub(super) async fn roots_pem(State(a): Shared) -> Response {
    ([(header::CONTENT_TYPE, "application/x-pem-file")], a.roots_pem().concat()).into_response()
}

pub(super) async fn root(
    State(a): Shared,
    Path(sha): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    a.root_by_fingerprint(&sha).map(|pem| Json(serde_json::json!({ "ca": pem }))).ok_or_else(|| {
        ApiError::not_found(format!("root certificate with fingerprint {sha} was not found"))
    })
}

pub(super) async fn provisioners(
    State(a): Shared,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<Json<serde_json::Value>> {
    let cursor = query.get("cursor").map(String::as_str).unwrap_or("");
    let limit = match query.get("limit") {
        Some(l) => l
            .parse::<usize>()
            .map_err(|_| ApiError::bad_request(format!("limit {l:?} is not a number")))?,
        None => 20,
    };
    let (list, next) = a.provisioners_page(cursor, limit)?;
    Ok(Json(serde_json::json!({ "provisioners": list, "nextCursor": next })))
}

pub(super) async fn encrypted_key(
    State(a): Shared,
    Path(kid): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    a.encrypted_key(&kid)
        .map(|key| Json(serde_json::json!({ "key": key })))
        .ok_or_else(|| ApiError::not_found(format!("provisioner with kid {kid} was not found")))
}

fn created<T: Serialize>(body: T) -> Response {
    (StatusCode::CREATED, Json(body)).into_response()
}

pub(super) async fn sign(
    State(a): Shared,
    headers: HeaderMap,
    Body(req): Body<SignRequest>,
) -> ApiResult<Response> {
    let h = host(&headers);
    a.sign_x509(
        &req.csr,
        &req.ott,
        req.not_before.as_deref(),
        req.not_after.as_deref(),
        h.as_deref(),
    )
    .await
    .map(created)
}

pub(super) async fn renew(
    State(a): Shared,
    headers: HeaderMap,
    axum::Extension(certs): axum::Extension<ClientCertificates>,
) -> ApiResult<Response> {
    a.renew_x509(&caller(&headers, &certs)).await.map(created)
}

pub(super) async fn rekey(
    State(a): Shared,
    headers: HeaderMap,
    axum::Extension(certs): axum::Extension<ClientCertificates>,
    Body(req): Body<RekeyRequest>,
) -> ApiResult<Response> {
    a.rekey_x509(&caller(&headers, &certs), &req.csr).await.map(created)
}

pub(super) async fn revoke(
    State(a): Shared,
    headers: HeaderMap,
    axum::Extension(certs): axum::Extension<ClientCertificates>,
    Body(req): Body<RevokeRequest>,
) -> ApiResult<Json<serde_json::Value>> {
    a.revoke_x509(&caller(&headers, &certs), &req).await?;
    Ok(Json(serde_json::json!({ "status": "ok" })))
}

pub(super) async fn crl(
    State(a): Shared,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    let (der, pem) = a.crl().await?;
    Ok(if query.contains_key("pem") {
        ([(header::CONTENT_TYPE, "application/x-pem-file")], pem).into_response()
    } else {
        ([(header::CONTENT_TYPE, "application/pkix-crl")], der).into_response()
    })
}

pub(super) async fn ssh_sign(
    State(a): Shared,
    headers: HeaderMap,
    Body(req): Body<SshSignRequest>,
) -> ApiResult<Response> {
    let h = host(&headers);
    a.ssh_sign(&req, h.as_deref()).await.map(|crt| created(serde_json::json!({ "crt": crt })))
}

pub(super) async fn ssh_roots(State(a): Shared) -> ApiResult<Json<serde_json::Value>> {
    let (user, host) =
        a.ssh_roots().ok_or_else(|| ApiError::not_found("the authority has no SSH CA"))?;
    Ok(Json(serde_json::json!({ "userKey": user, "hostKey": host })))
}

pub(super) async fn ssh_renew(
    State(a): Shared,
    headers: HeaderMap,
    Body(req): Body<SshPopRequest>,
) -> ApiResult<Response> {
    let h = host(&headers);
    a.ssh_renew_or_rekey(&req, false, h.as_deref())
        .await
        .map(|crt| created(serde_json::json!({ "crt": crt })))
}

pub(super) async fn ssh_rekey(
    State(a): Shared,
    headers: HeaderMap,
    Body(req): Body<SshPopRequest>,
) -> ApiResult<Response> {
    let h = host(&headers);
    a.ssh_renew_or_rekey(&req, true, h.as_deref())
        .await
        .map(|crt| created(serde_json::json!({ "crt": crt })))
}

pub(super) async fn ssh_revoke(
    State(a): Shared,
    headers: HeaderMap,
    Body(req): Body<SshPopRequest>,
) -> ApiResult<Json<serde_json::Value>> {
    let h = host(&headers);
    a.ssh_revoke(&req, h.as_deref()).await?;
    Ok(Json(serde_json::json!({ "status": "ok" })))
}

pub(super) async fn sign_attested(
    State(a): Shared,
    Body(req): Body<AttestedSignRequest>,
) -> ApiResult<Response> {
    a.sign_attested(&req).await.map(created)
}

// --- the admin API: an admin's client certificate or an admin provisioner's token -------

async fn admin(a: &Authority, headers: &HeaderMap, certs: &ClientCertificates) -> ApiResult<Admin> {
    a.authenticate_admin(&caller(headers, certs)).await
}

pub(super) async fn admin_list_provisioners(
    State(a): Shared,
    headers: HeaderMap,
    axum::Extension(certs): axum::Extension<ClientCertificates>,
) -> ApiResult<Json<serde_json::Value>> {
    admin(&a, &headers, &certs).await?;
    Ok(Json(serde_json::json!({ "provisioners": a.admin_provisioners().await? })))
}

pub(super) async fn admin_add_provisioner(
    State(a): Shared,
    headers: HeaderMap,
    axum::Extension(certs): axum::Extension<ClientCertificates>,
    Body(config): Body<serde_json::Value>,
) -> ApiResult<Response> {
    let who = admin(&a, &headers, &certs).await?;
    a.add_provisioner(&config, &who).await?;
    Ok((StatusCode::CREATED, Json(config)).into_response())
}

pub(super) async fn admin_update_provisioner(
    State(a): Shared,
    headers: HeaderMap,
    axum::Extension(certs): axum::Extension<ClientCertificates>,
    Path(name): Path<String>,
    Body(config): Body<serde_json::Value>,
) -> ApiResult<Json<serde_json::Value>> {
    let who = admin(&a, &headers, &certs).await?;
    a.update_provisioner(&name, &config, &who).await?;
    Ok(Json(config))
}

pub(super) async fn admin_remove_provisioner(
    State(a): Shared,
    headers: HeaderMap,
    axum::Extension(certs): axum::Extension<ClientCertificates>,
    Path(name): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let who = admin(&a, &headers, &certs).await?;
    a.remove_provisioner(&name, &who).await?;
    Ok(Json(serde_json::json!({ "status": "ok" })))
}

pub(super) async fn admin_list_admins(
    State(a): Shared,
    headers: HeaderMap,
    axum::Extension(certs): axum::Extension<ClientCertificates>,
) -> ApiResult<Json<serde_json::Value>> {
    admin(&a, &headers, &certs).await?;
    Ok(Json(serde_json::json!({ "admins": a.admins().await? })))
}

pub(super) async fn admin_add_admin(
    State(a): Shared,
    headers: HeaderMap,
    axum::Extension(certs): axum::Extension<ClientCertificates>,
    Body(req): Body<AddAdmin>,
) -> ApiResult<Response> {
    let who = admin(&a, &headers, &certs).await?;
    let added = a.add_admin(&req.subject, &req.provisioner, req.role.as_deref(), &who).await?;
    Ok((StatusCode::CREATED, Json(added)).into_response())
}

pub(super) async fn admin_remove_admin(
    State(a): Shared,
    headers: HeaderMap,
    axum::Extension(certs): axum::Extension<ClientCertificates>,
    Path(subject): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<Json<serde_json::Value>> {
    let who = admin(&a, &headers, &certs).await?;
    a.remove_admin(&subject, query.get("provisioner").map(String::as_str), &who).await?;
    Ok(Json(serde_json::json!({ "status": "ok" })))
}

pub(super) async fn admin_list_jobs(
    State(a): Shared,
    headers: HeaderMap,
    axum::Extension(certs): axum::Extension<ClientCertificates>,
) -> ApiResult<Json<serde_json::Value>> {
    admin(&a, &headers, &certs).await?;
    Ok(Json(serde_json::json!({ "jobs": a.jobs().await? })))
}

pub(super) async fn admin_add_job(
    State(a): Shared,
    headers: HeaderMap,
    axum::Extension(certs): axum::Extension<ClientCertificates>,
    Body(job): Body<NewJob>,
) -> ApiResult<Response> {
    admin(&a, &headers, &certs).await?;
    let job = a.add_job(&job).await?;
    Ok((StatusCode::CREATED, Json(job)).into_response())
}

pub(super) async fn admin_show_job(
    State(a): Shared,
    headers: HeaderMap,
    axum::Extension(certs): axum::Extension<ClientCertificates>,
    Path(id): Path<u32>,
) -> ApiResult<Json<serde_json::Value>> {
    admin(&a, &headers, &certs).await?;
    a.job(id).await?.map(Json).ok_or_else(|| ApiError::not_found(format!("no job {id}")))
}
