//! ACME answers: the status, the body (JSON, a PEM chain, a problem document or nothing)
//! and the headers every response carries — a fresh `Replay-Nonce` (RFC 8555 §6.5), the
//! `index` link to the directory (§7.1), `Cache-Control: no-store` (§7.2) — plus
//! `Location`, `Link` and `Retry-After` where the protocol puts them.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use keystation_acme::problem::{PROBLEM_CONTENT_TYPE, Problem, ProblemType};

/// The PEM certificate chain's media type (RFC 8555 §9.1).
pub(super) const PEM_CHAIN_CONTENT_TYPE: &str = "application/pem-certificate-chain";

/// What an ACME handler answers with, before the common headers are added.
#[derive(Debug)]
pub(super) struct Reply {
    status: StatusCode,
    body: Body,
    location: Option<String>,
    links: Vec<(String, &'static str)>,
    retry_after: Option<u64>,
}

#[derive(Debug)]
enum Body {
    Json(serde_json::Value),
    PemChain(String),
    Problem(String),
    Empty,
}

impl Reply {
    /// 200 with a JSON object.
    pub(super) fn json(value: serde_json::Value) -> Self {
        Self::with_status(StatusCode::OK, Body::Json(value))
    }

    /// 201 Created with a JSON object at `location`.
    pub(super) fn created(value: serde_json::Value, location: String) -> Self {
        Self::with_status(StatusCode::CREATED, Body::Json(value)).at(location)
    }

    /// 200 with a PEM certificate chain (RFC 8555 §7.4.2).
    pub(super) fn pem_chain(pem: String) -> Self {
        Self::with_status(StatusCode::OK, Body::PemChain(pem))
    }

    /// A problem document that also points somewhere: 409 Conflict with the `Location` of
    /// the account that already has the key (RFC 8555 §7.3.5).
    pub(super) fn problem_at(problem: &Problem, location: String) -> Self {
        let status = StatusCode::from_u16(problem.http_status()).unwrap_or(StatusCode::CONFLICT);
        Self::with_status(status, Body::Problem(problem.to_json())).at(location)
    }

    /// A status with no body (newNonce: 200 for HEAD, 204 for GET, §7.2).
    pub(super) fn empty(status: StatusCode) -> Self {
        Self::with_status(status, Body::Empty)
    }

    fn with_status(status: StatusCode, body: Body) -> Self {
        Self { status, body, location: None, links: Vec::new(), retry_after: None }
    }

    /// The `Location` header.
    pub(super) fn at(mut self, location: String) -> Self {
        self.location = Some(location);
        self
    }

    /// A `Link` header with `rel`.
    pub(super) fn link(mut self, url: String, rel: &'static str) -> Self {
        self.links.push((url, rel));
        self
    }

    /// `Retry-After` in seconds (RFC 8555 §7.5.1, §7.4: the client polls after it).
    pub(super) fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// The response, with `nonce` as `Replay-Nonce` and `directory` as the `index` link.
    pub(super) fn into_response_with(self, nonce: Option<&str>, directory: &str) -> Response {
        let mut response = match self.body {
            Body::Json(value) => (self.status, axum::Json(value)).into_response(),
            Body::PemChain(pem) => {
                (self.status, [(header::CONTENT_TYPE, PEM_CHAIN_CONTENT_TYPE)], pem).into_response()
            }
            Body::Problem(json) => {
                (self.status, [(header::CONTENT_TYPE, PROBLEM_CONTENT_TYPE)], json).into_response()
            }
            Body::Empty => self.status.into_response(),
        };
        let headers = response.headers_mut();
        add_common(headers, nonce, directory);
        if let Some(location) = self.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
            headers.insert(header::LOCATION, location);
        }
        for (url, rel) in self.links {
            if let Ok(value) = HeaderValue::from_str(&format!("<{url}>;rel=\"{rel}\"")) {
                headers.append(header::LINK, value);
            }
        }
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// A problem document (RFC 7807) as the response, with the common headers: a badNonce
/// answer must carry a fresh nonce for the client's retry (RFC 8555 §6.5).
pub(super) fn problem_response(
    problem: &Problem,
    nonce: Option<&str>,
    directory: &str,
) -> Response {
    let status = StatusCode::from_u16(problem.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    let mut response =
        (status, [(header::CONTENT_TYPE, PROBLEM_CONTENT_TYPE)], problem.to_json()).into_response();
    add_common(response.headers_mut(), nonce, directory);
    response
}

fn add_common(headers: &mut axum::http::HeaderMap, nonce: Option<&str>, directory: &str) {
    if let Some(nonce) = nonce.and_then(|n| HeaderValue::from_str(n).ok()) {
        headers.insert("replay-nonce", nonce);
    }
    if let Ok(value) = HeaderValue::from_str(&format!("<{directory}>;rel=\"index\"")) {
        headers.append(header::LINK, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// A problem of `problem_type` saying `detail`.
pub(super) fn problem(problem_type: ProblemType, detail: impl Into<String>) -> Problem {
    Problem::new(problem_type, detail)
}

/// The authority failed (the store, the CA): the detail goes to the log, the client gets
/// serverInternal.
pub(super) fn internal(error: &dyn std::fmt::Display) -> Problem {
    tracing::error!(%error, "ACME request failed");
    Problem::new(
        ProblemType::ServerInternal,
        "the authority failed to complete the request; see its log",
    )
}
