//! The ACME route handlers: find the provisioner and the URL the client addressed, call
//! the authority, and answer with the common headers (a fresh nonce on every answer,
//! problems included).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::Response;

use super::reply::{Reply, problem_response};
use super::server::Endpoint;
use crate::authority::Authority;

type Shared = State<Arc<Authority>>;

/// The scheme and authority the client addressed: `https://` and the `Host` header (or
/// HTTP/2's `:authority`), as the URLs handed out must be the ones the client can reach
/// and the JWS `url` is compared with (RFC 8555 §6.4).
fn origin(headers: &HeaderMap, uri: &Uri) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| uri.authority().map(|a| a.to_string()))
        .unwrap_or_default();
    format!("https://{host}")
}

fn endpoint(provisioner: &str, headers: &HeaderMap, uri: &Uri) -> Endpoint {
    let origin = origin(headers, uri);
    Endpoint {
        base: format!("{origin}/acme/{provisioner}"),
        url: format!("{origin}{}", uri.path()),
        provisioner: provisioner.to_owned(),
    }
}

/// RFC 8555 §6.2: every POST carries `application/jose+json`; anything else is refused with
/// 415 before the authority looks at it (so no nonce is spent).
fn jose_content_type(headers: &HeaderMap) -> Result<(), keystation_acme::problem::Problem> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let media_type = content_type.map(|c| c.split(';').next().unwrap_or_default().trim());
    if media_type.is_some_and(|m| m.eq_ignore_ascii_case("application/jose+json")) {
        return Ok(());
    }
    let mut problem = keystation_acme::problem::Problem::new(
        keystation_acme::problem::ProblemType::Malformed,
        format!(
            "the request's Content-Type is {}, not application/jose+json",
            content_type.map_or_else(|| "missing".to_owned(), |c| format!("{c:?}"))
        ),
    );
    problem.status = Some(415);
    Err(problem)
}

/// Answers `result` with a fresh nonce; a nonce that cannot be made leaves the header out
/// (the client's next request then fails with badNonce and it asks newNonce).
async fn answer(
    authority: &Authority,
    endpoint: &Endpoint,
    result: Result<Reply, keystation_acme::problem::Problem>,
) -> Response {
    let nonce = authority.acme_fresh_nonce().await;
    let directory = format!("{}/directory", endpoint.base);
    match result {
        Ok(reply) => reply.into_response_with(nonce.as_deref(), &directory),
        Err(problem) => problem_response(&problem, nonce.as_deref(), &directory),
    }
}

pub(super) async fn directory(
    State(a): Shared,
    Path(provisioner): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let endpoint = endpoint(&provisioner, &headers, &uri);
    let result = a.acme_directory(&endpoint);
    let directory = format!("{}/directory", endpoint.base);
    // The directory carries no nonce (RFC 8555 §7.1.1 does not ask for one).
    match result {
        Ok(reply) => reply.into_response_with(None, &directory),
        Err(problem) => problem_response(&problem, None, &directory),
    }
}

pub(super) async fn new_nonce(
    State(a): Shared,
    Path(provisioner): Path<String>,
    method: Method,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let endpoint = endpoint(&provisioner, &headers, &uri);
    let result = a.acme_provisioner(&endpoint).map(|_| {
        // RFC 8555 §7.2: 200 to HEAD, 204 to GET.
        Reply::empty(if method == Method::HEAD { StatusCode::OK } else { StatusCode::NO_CONTENT })
    });
    answer(&a, &endpoint, result).await
}

/// A POST handler: the provisioner and the URL, the body, and which operation.
macro_rules! post_handler {
    ($name:ident, $method:ident) => {
        pub(super) async fn $name(
            State(a): Shared,
            Path(provisioner): Path<String>,
            headers: HeaderMap,
            uri: Uri,
            body: Bytes,
        ) -> Response {
            let endpoint = endpoint(&provisioner, &headers, &uri);
            let result = match jose_content_type(&headers) {
                Ok(()) => a.$method(&endpoint, &body).await,
                Err(problem) => Err(problem),
            };
            answer(&a, &endpoint, result).await
        }
    };
    ($name:ident, $method:ident, $id:ident) => {
        pub(super) async fn $name(
            State(a): Shared,
            Path((provisioner, $id)): Path<(String, String)>,
            headers: HeaderMap,
            uri: Uri,
            body: Bytes,
        ) -> Response {
            let endpoint = endpoint(&provisioner, &headers, &uri);
            let result = match jose_content_type(&headers) {
                Ok(()) => a.$method(&endpoint, &$id, &body).await,
                Err(problem) => Err(problem),
            };
            answer(&a, &endpoint, result).await
        }
    };
}

post_handler!(new_account, acme_new_account);
post_handler!(new_order, acme_new_order);
post_handler!(revoke_certificate, acme_revoke);
post_handler!(key_change, acme_key_change);
post_handler!(account, acme_account, id);
post_handler!(account_orders, acme_account_orders, id);
post_handler!(order, acme_order, id);
post_handler!(finalize, acme_finalize, id);
post_handler!(authorization, acme_authorization, id);
post_handler!(certificate, acme_certificate, id);

pub(super) async fn challenge(
    State(a): Shared,
    Path((provisioner, authz, id)): Path<(String, String, String)>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    let endpoint = endpoint(&provisioner, &headers, &uri);
    let result = match jose_content_type(&headers) {
        Ok(()) => a.clone().acme_challenge(&endpoint, &authz, &id, &body).await,
        Err(problem) => Err(problem),
    };
    answer(&a, &endpoint, result).await
}
