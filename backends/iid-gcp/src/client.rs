//! The client side: an instance's identity token from the metadata server, as `step ca
//! token --provisioner <gcp>` gets it (step-ca's `GetIdentityToken`).
//!
//! `GET <metadata>/computeMetadata/v1/instance/service-accounts/default/identity
//! ?audience=<aud>&format=full&licenses=FALSE` with `Metadata-Flavor: Google`
//! (<https://cloud.google.com/compute/docs/instances/verifying-instance-identity#request_signature>);
//! the answer is the JWT itself, handed to the CA as is.

use keystation_fetch::{Fetcher, Method};

use crate::error::Error;

/// The metadata server's base URL inside Google Compute Engine.
pub const DEFAULT_METADATA_BASE: &str = "http://metadata.google.internal";

/// The path of the default service account's identity token.
pub const IDENTITY_PATH: &str = "/computeMetadata/v1/instance/service-accounts/default/identity";

/// The audience step's client asks for: the CA's origin with the path `/1.0/sign` and the
/// fragment `gcp/<provisioner>` (step's `generateSignAudience`: any path or query of the
/// CA URL is replaced).
pub fn sign_audience(ca_url: &str, provisioner_name: &str) -> Result<String, Error> {
    let bad = || Error::BadCaUrl { url: ca_url.to_owned() };
    let (scheme, rest) = ca_url.split_once("://").ok_or_else(bad)?;
    if !scheme.eq_ignore_ascii_case("https") && !scheme.eq_ignore_ascii_case("http") {
        return Err(bad());
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() {
        return Err(bad());
    }
    Ok(format!("{}://{authority}/1.0/sign#gcp/{provisioner_name}", scheme.to_ascii_lowercase()))
}

/// A query component encoded as Go's `url.QueryEscape` does (what step sends): unreserved
/// characters as they are, a space as `+`, every other byte as `%XX`.
pub fn query_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len() * 3);
    for &b in value.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The identity token for the provisioner `provisioner_name` of the CA at `ca_url`, from
/// the metadata server at `metadata_base` ([`DEFAULT_METADATA_BASE`] on a GCE instance;
/// the fetcher must allow plain HTTP there).
pub async fn identity_token(
    fetcher: &Fetcher,
    metadata_base: &str,
    ca_url: &str,
    provisioner_name: &str,
) -> Result<String, Error> {
    let audience = sign_audience(ca_url, provisioner_name)?;
    let base = format!("{}{IDENTITY_PATH}", metadata_base.trim_end_matches('/'));
    let url = format!("{base}?audience={}&format=full&licenses=FALSE", query_escape(&audience));
    let response = fetcher
        .send(Method::Get, &url, &[("Metadata-Flavor", "Google")], None)
        .await
        .map_err(|e| Error::Fetch { url: base.clone(), reason: e.to_string() })?;
    let text = response
        .text()
        .map_err(|e| Error::NotAToken { url: base.clone(), reason: e.to_string() })?
        .trim();
    if text.split('.').count() != 3 || text.bytes().any(|b| b.is_ascii_whitespace()) {
        return Err(Error::NotAToken { url: base, reason: "not a compact JWS".into() });
    }
    Ok(text.to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn audiences_and_queries_are_what_step_sends() {
        assert_eq!(
            sign_audience("https://ca.example:9000/some/path?x=1", "google").unwrap(),
            "https://ca.example:9000/1.0/sign#gcp/google"
        );
        assert_eq!(sign_audience("https://ca", "g").unwrap(), "https://ca/1.0/sign#gcp/g");
        assert!(sign_audience("ca.example", "g").is_err());
        assert!(sign_audience("https://", "g").is_err());
        assert_eq!(
            query_escape("https://ca:9000/1.0/sign#gcp/g x"),
            "https%3A%2F%2Fca%3A9000%2F1.0%2Fsign%23gcp%2Fg+x"
        );
    }
}
