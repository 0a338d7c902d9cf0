//! The client side: a managed-identity access token from the instance metadata service, as
//! `step ca token --provisioner <azure>` gets it (step-ca's `GetIdentityToken`).
//!
//! `GET <metadata>/metadata/identity/oauth2/token?api-version=2018-02-01&resource=<audience>`
//! with `Metadata: true`; the answer is JSON whose `access_token` goes to the CA
//! (<https://learn.microsoft.com/entra/identity/managed-identities-azure-resources/how-to-use-vm-token#get-a-token-using-http>).

use keystation_fetch::{Fetcher, Method};
use serde::Deserialize;

use crate::error::Error;

/// The instance metadata service's base URL inside an Azure VM.
pub const DEFAULT_METADATA_BASE: &str = "http://169.254.169.254";

/// The path of the managed-identity token endpoint.
pub const TOKEN_PATH: &str = "/metadata/identity/oauth2/token";

/// The API version step asks the token endpoint for.
pub const TOKEN_API_VERSION: &str = "2018-02-01";

/// The resource (audience) to ask for in an Azure environment, as step maps the
/// environment IMDS reports (`/metadata/instance/compute/azEnvironment`); `None` for an
/// unknown one (step then asks for the public cloud's).
pub fn resource_for_environment(environment: &str) -> Option<&'static str> {
    Some(match environment.trim() {
        "AzurePublicCloud" | "AzureCloud" => "https://management.azure.com/",
        "AzureUSGovernmentCloud" | "AzureUSGovernment" => "https://management.usgovcloudapi.net/",
        "AzureChinaCloud" => "https://management.chinacloudapi.cn/",
        "AzureGermanCloud" => "https://management.microsoftazure.de/",
        _ => return None,
    })
}

/// A query component encoded as Go's `url.QueryEscape` does (what step sends).
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

#[derive(Deserialize)]
struct TokenAnswer {
    #[serde(default)]
    access_token: String,
}

/// The managed-identity token for `resource` (the provisioner's audience,
/// `https://management.azure.com/` by default) from the metadata service at
/// `metadata_base` ([`DEFAULT_METADATA_BASE`] in a VM; the fetcher must allow plain HTTP
/// there).
pub async fn identity_token(
    fetcher: &Fetcher,
    metadata_base: &str,
    resource: &str,
) -> Result<String, Error> {
    let base = format!("{}{TOKEN_PATH}", metadata_base.trim_end_matches('/'));
    let url = format!("{base}?api-version={TOKEN_API_VERSION}&resource={}", query_escape(resource));
    let response = fetcher
        .send(Method::Get, &url, &[("Metadata", "true")], None)
        .await
        .map_err(|e| Error::Fetch { url: base.clone(), reason: e.to_string() })?;
    let answer: TokenAnswer = response
        .json()
        .map_err(|e| Error::NotAToken { url: base.clone(), reason: e.to_string() })?;
    let token = answer.access_token;
    if token.split('.').count() != 3 || token.bytes().any(|b| b.is_ascii_whitespace()) {
        return Err(Error::NotAToken {
            url: base,
            reason: "access_token is not a compact JWS".into(),
        });
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environments_and_queries_are_what_step_uses() {
        assert_eq!(resource_for_environment("AzureCloud"), Some("https://management.azure.com/"));
        assert_eq!(
            resource_for_environment("AzureChinaCloud\n"),
            Some("https://management.chinacloudapi.cn/")
        );
        assert_eq!(resource_for_environment("Mars"), None);
        assert_eq!(
            query_escape("https://management.azure.com/"),
            "https%3A%2F%2Fmanagement.azure.com%2F"
        );
    }
}
