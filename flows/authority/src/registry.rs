//! The provisioners the authority knows, built from the store's records.
//!
//! A record is the provisioner's `ca.json` object (step-ca's field names); the registry
//! turns each into its implementation of core's `Provisioner` (through
//! `keystation_provisioners::provisioner_from_json`, with the authority's claims layered
//! in) and keeps the object for `/provisioners`. It is rebuilt whenever a provisioner is
//! added, changed or removed, and on a timer, so replicas sharing PostgreSQL converge.

use std::sync::Arc;

use keystation_provisioners::{ProvisionerContext, ProvisionerKind, StepProvisioner};

use crate::error::Error;

/// One provisioner.
#[derive(Clone)]
pub(crate) struct Entry {
    /// Its name.
    pub(crate) name: String,
    /// Its type.
    pub(crate) kind: ProvisionerKind,
    /// The implementation.
    pub(crate) provisioner: Arc<dyn StepProvisioner>,
    /// Its `ca.json` object (public keys and `encryptedKey` only); shared, because every
    /// authorized request takes a copy of its entry.
    pub(crate) config: Arc<serde_json::Value>,
}

/// The provisioners, in the order they were added.
#[derive(Clone, Default)]
pub struct Registry {
    entries: Vec<Entry>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.entries.iter().map(|e| (&e.name, e.kind))).finish()
    }
}

/// The provisioner types step-ca 0.19's client can decode in `/provisioners`: listing any
/// other makes smallstep's `provisioner.List` refuse the whole page, so keystation's own
/// types (static token, YubiKey attestation) are served only through the admin API.
fn step_ca_knows(kind: ProvisionerKind) -> bool {
    matches!(
        kind,
        ProvisionerKind::Jwk
            | ProvisionerKind::X5c
            | ProvisionerKind::Oidc
            | ProvisionerKind::K8sSa
            | ProvisionerKind::Aws
            | ProvisionerKind::Gcp
            | ProvisionerKind::Azure
            | ProvisionerKind::SshPop
    )
}

impl Registry {
    /// Builds the registry from `ca.json` objects.
    pub(crate) fn from_configs(
        configs: impl IntoIterator<Item = String>,
        context: &ProvisionerContext,
    ) -> Result<Self, Error> {
        let mut entries = Vec::new();
        for text in configs {
            let provisioner = keystation_provisioners::provisioner_from_json_in(&text, context)?;
            // What clients see: the provisioner's own public form, never the stored text.
            let config: serde_json::Value = serde_json::from_str(&provisioner.to_json())
                .map_err(|e| Error::Config(format!("provisioner {:?}: {e}", provisioner.name())))?;
            entries.push(Entry {
                name: provisioner.name().to_owned(),
                kind: provisioner.kind(),
                provisioner,
                config: Arc::new(config),
            });
        }
        Ok(Self { entries })
    }

    /// The provisioner named `name`.
    pub(crate) fn by_name(&self, name: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.name == name)
    }

    /// Every provisioner.
    pub(crate) fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The provisioners a JWT may be for: those named by its `iss` (JWK, X5C, SSHPOP …)
    /// and, for JWK, holding the key its `kid` names. The token is only peeked at here;
    /// the provisioner verifies it.
    pub(crate) fn for_token(&self, token: &str) -> Vec<&Entry> {
        let Some(peek) = Peek::of(token) else { return Vec::new() };
        self.entries
            .iter()
            .filter(|e| peek.issuer.as_deref() == Some(e.name.as_str()))
            .filter(|e| match (e.kind, &peek.kid) {
                (ProvisionerKind::Jwk, Some(kid)) => {
                    e.config["key"]["kid"].as_str() == Some(kid.as_str())
                }
                (ProvisionerKind::Jwk, None) => false,
                _ => true,
            })
            .collect()
    }

    /// The static-token provisioners (station tokens).
    pub(crate) fn static_tokens(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().filter(|e| e.kind == ProvisionerKind::Token)
    }

    /// The `/provisioners` listing: the `ca.json` objects of the types step's clients know.
    pub(crate) fn step_listing(&self) -> Vec<&serde_json::Value> {
        self.entries.iter().filter(|e| step_ca_knows(e.kind)).map(|e| e.config.as_ref()).collect()
    }

    /// The `encryptedKey` of the JWK provisioner whose key id is `kid`.
    pub(crate) fn encrypted_key(&self, kid: &str) -> Option<String> {
        self.entries
            .iter()
            .filter(|e| e.kind == ProvisionerKind::Jwk)
            .find(|e| e.config["key"]["kid"].as_str() == Some(kid))
            .and_then(|e| e.config["encryptedKey"].as_str().map(str::to_owned))
    }
}

/// What a JWT names before it is verified: enough to find its provisioner.
struct Peek {
    issuer: Option<String>,
    kid: Option<String>,
}

impl Peek {
    fn of(token: &str) -> Option<Self> {
        use base64::Engine as _;
        let mut parts = token.split('.');
        let (header, payload) = (parts.next()?, parts.next()?);
        let decode = |part: &str| -> Option<serde_json::Value> {
            if part.len() > 64 * 1024 {
                return None;
            }
            let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).ok()?;
            serde_json::from_slice(&bytes).ok()
        };
        let header = decode(header)?;
        let payload = decode(payload)?;
        Some(Self {
            issuer: payload["iss"].as_str().map(str::to_owned),
            kid: header["kid"].as_str().map(str::to_owned),
        })
    }
}
