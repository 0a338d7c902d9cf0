//! dns-01 (RFC 8555 §8.4): a TXT record at `_acme-challenge.<domain>` holding the
//! base64url SHA-256 digest of the key authorization.

use crate::{FailureKind, Inner, ValidationFailure, dns01_txt_value, normalize_name, quote};

pub(crate) async fn validate(
    inner: &Inner,
    domain: &str,
    key_authorization: &str,
) -> Result<(), ValidationFailure> {
    let base = domain.strip_prefix("*.").unwrap_or(domain);
    let Some(base) = normalize_name(base) else {
        return Err(ValidationFailure::new(
            FailureKind::Malformed,
            format!("{} is not a DNS name that dns-01 can validate", quote(domain.as_bytes())),
        ));
    };
    let name = format!("_acme-challenge.{base}");
    let expected = dns01_txt_value(key_authorization);
    let records = inner.resolver.txt(&name).await?;
    if records.iter().any(|r| r.as_slice() == expected.as_bytes()) {
        tracing::debug!(%name, "dns-01 TXT record found");
        return Ok(());
    }
    match records.first() {
        None => Err(ValidationFailure::new(
            FailureKind::Dns,
            format!("DNS problem: no TXT records found for {name}"),
        )),
        Some(first) => Err(ValidationFailure::new(
            FailureKind::IncorrectResponse,
            format!(
                "incorrect TXT record {} found at {name} ({} record{} there, none of them the digest of this challenge's key authorization)",
                quote(first),
                records.len(),
                if records.len() == 1 { "" } else { "s" },
            ),
        )),
    }
}
