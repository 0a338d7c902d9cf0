//! The operator's side of ACME: external account binding keys (RFC 8555 §7.3.4), made,
//! listed and removed in the store as `step ca acme eab add|list|remove` does for step-ca.
//! The HMAC key is shown once, when made; listings never show it.

use std::time::SystemTime;

use base64::Engine as _;
use keystation_provisioners::ProvisionerKind;
use keystation_store::{AcmeEabKeyRecord, EabHmacKey, Store};
use rand_core::{OsRng, RngCore as _};
use zeroize::Zeroizing;

use crate::error::Error;

/// The length of a new HMAC key: 256 bits, for HS256 (RFC 7518 §3.2: at least the hash's
/// size).
const HMAC_KEY_BYTES: usize = 32;

/// A new key: its ID and the HMAC key as a client takes it (base64url, no padding).
#[derive(Debug)]
pub struct NewEabKey {
    /// The key ID (`--eab-kid`).
    pub key_id: String,
    /// The HMAC key, base64url (`--eab-hmac-key`); zeroized when dropped.
    pub hmac_key_b64url: Zeroizing<String>,
}

async fn require_acme(store: &Store, provisioner: &str) -> Result<(), Error> {
    let record = store.provisioner(provisioner).await?;
    match record {
        Some(p) if p.kind == ProvisionerKind::Acme.type_name() => Ok(()),
        Some(p) => Err(Error::Config(format!(
            "provisioner {provisioner:?} is of type {}, not ACME",
            p.kind
        ))),
        None => Err(Error::Config(format!("no provisioner named {provisioner:?}"))),
    }
}

fn random(bytes: usize) -> Result<Zeroizing<Vec<u8>>, Error> {
    let mut buffer = Zeroizing::new(vec![0u8; bytes]);
    OsRng
        .try_fill_bytes(&mut buffer)
        .map_err(|e| Error::Config(format!("the system's random source failed: {e}")))?;
    Ok(buffer)
}

/// `bytes` random bytes whose base64url form (RFC 4648 §5) does not begin with `-`, so that
/// it can follow a command-line option as a word of its own (certbot's argument parser
/// takes `--eab-hmac-key -x…` for an unknown option `-x`). One draw in 64 is drawn again,
/// which costs the key less than 0.03 bits.
fn random_for_command_line(bytes: usize) -> Result<Zeroizing<Vec<u8>>, Error> {
    loop {
        let buffer = random(bytes)?;
        // The first base64 digit is the first byte's top six bits; `-` is digit 62.
        if buffer.first().is_none_or(|first| first >> 2 != 62) {
            return Ok(buffer);
        }
    }
}

/// Makes a key for the ACME provisioner `provisioner`, optionally under an operator's
/// `reference` (unique within the provisioner).
pub async fn add_eab_key(
    store: &Store,
    provisioner: &str,
    reference: Option<&str>,
) -> Result<NewEabKey, Error> {
    require_acme(store, provisioner).await?;
    let key_id = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(random_for_command_line(16)?.as_slice());
    let hmac = random_for_command_line(HMAC_KEY_BYTES)?;
    let hmac_key_b64url =
        Zeroizing::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&*hmac));
    let record = AcmeEabKeyRecord {
        key_id: key_id.clone(),
        provisioner: provisioner.to_owned(),
        reference: reference.map(str::to_owned),
        hmac_key: EabHmacKey::new(hmac.to_vec()),
        account_id: None,
        created_at: SystemTime::now(),
        bound_at: None,
    };
    store.acme_add_eab_key(&record).await?;
    Ok(NewEabKey { key_id, hmac_key_b64url })
}

/// One line per key of `provisioner`: key ID, reference, bound account (or `-`), created.
pub async fn eab_keys(store: &Store, provisioner: &str) -> Result<Vec<String>, Error> {
    require_acme(store, provisioner).await?;
    let unix =
        |t: SystemTime| t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    Ok(store
        .acme_eab_keys(provisioner)
        .await?
        .into_iter()
        .map(|k| {
            format!(
                "{}\t{}\t{}\t{}",
                k.key_id,
                k.reference.as_deref().unwrap_or("-"),
                k.account_id.as_deref().unwrap_or("-"),
                crate::text::rfc3339(unix(k.created_at))
            )
        })
        .collect())
}

/// Removes the key `key_id` of `provisioner`.
pub async fn remove_eab_key(store: &Store, provisioner: &str, key_id: &str) -> Result<(), Error> {
    require_acme(store, provisioner).await?;
    if store.acme_remove_eab_key(provisioner, key_id).await? {
        Ok(())
    } else {
        Err(Error::Config(format!("provisioner {provisioner:?} has no key {key_id:?}")))
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;

    use super::{Error, HMAC_KEY_BYTES, random_for_command_line};

    /// 3000 draws: without the redraw, one in 64 would begin with `-` (all 3000 clean by
    /// chance: (63/64)^3000, about 3e-21).
    #[test]
    fn keys_never_begin_with_a_dash() -> Result<(), Error> {
        for _ in 0..3000 {
            let key = random_for_command_line(HMAC_KEY_BYTES)?;
            assert_eq!(key.len(), HMAC_KEY_BYTES);
            let text = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key.as_slice());
            assert!(!text.starts_with('-'), "{text}");
        }
        Ok(())
    }
}
