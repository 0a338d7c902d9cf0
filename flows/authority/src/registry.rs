//! The provisioners the authority knows, built from the store's records.
//!
//! A record is the provisioner's `ca.json` object (step-ca's field names); the registry
//! turns each into its implementation of core's `Provisioner` (through
//! `keystation_provisioners::provisioner_from_json`, with the authority's claims layered
//! in) and keeps the object for `/provisioners`. It is rebuilt whenever a provisioner is
//! added, changed or removed, and on a timer, so replicas sharing PostgreSQL converge.

use std::sync::Arc;

use keystation_provisioners::{
    CachedKeys, Factory, ProvisionerContext, ProvisionerKind, StepProvisioner, TokenPeek,
};

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
    /// The keys it fetches (a JWKS, a TokenReview), cached; `None` for provisioners whose
    /// keys are configured.
    pub(crate) keys: Option<Arc<CachedKeys>>,
    /// The stored object it was built from: an unchanged provisioner keeps its key cache
    /// across reloads.
    stored: Arc<str>,
    /// An ACME provisioner's own settings (challenges, external account binding,
    /// attestation roots and policy), which the ACME server reads.
    #[cfg(feature = "acme")]
    pub(crate) acme: Option<Arc<keystation_acme::AcmeProvisioner>>,
}

/// The factories of the identity and cloud provisioners this build has (cargo features
/// `oidc`, `k8s-sa`, `iid-aws`, `iid-gcp`, `iid-azure`); the other types are
/// keystation-provisioners' own.
pub(crate) fn factories() -> Vec<Factory> {
    vec![
        #[cfg(feature = "oidc")]
        keystation_oidc::FACTORY,
        #[cfg(feature = "k8s-sa")]
        keystation_k8s_sa::FACTORY,
        #[cfg(feature = "iid-aws")]
        keystation_iid_aws::FACTORY,
        #[cfg(feature = "iid-gcp")]
        keystation_iid_gcp::FACTORY,
        #[cfg(feature = "iid-azure")]
        keystation_iid_azure::FACTORY,
        #[cfg(feature = "acme")]
        keystation_acme::FACTORY,
    ]
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
            | ProvisionerKind::Acme
    )
}

impl Registry {
    /// Builds the registry from `ca.json` objects. A provisioner whose object is the same
    /// as in `previous` keeps its cached keys.
    pub(crate) fn from_configs(
        configs: impl IntoIterator<Item = String>,
        context: &ProvisionerContext,
        previous: Option<&Registry>,
    ) -> Result<Self, Error> {
        let factories = factories();
        let mut entries = Vec::new();
        for text in configs {
            let provisioner =
                keystation_provisioners::provisioner_from_json_with(&text, context, &factories)?;
            // What clients see: the provisioner's own public form, never the stored text.
            let config: serde_json::Value = serde_json::from_str(&provisioner.to_json())
                .map_err(|e| Error::Config(format!("provisioner {:?}: {e}", provisioner.name())))?;
            let stored: Arc<str> = Arc::from(text.as_str());
            let kept = previous
                .and_then(|r| r.by_name(provisioner.name()))
                .filter(|e| e.stored == stored)
                .and_then(|e| e.keys.clone());
            let keys =
                kept.or_else(|| provisioner.key_source().map(|s| Arc::new(CachedKeys::new(s))));
            #[cfg(feature = "acme")]
            let acme = if provisioner.kind() == ProvisionerKind::Acme {
                Some(Arc::new(keystation_acme::AcmeProvisioner::from_json(&text, context)?))
            } else {
                None
            };
            entries.push(Entry {
                name: provisioner.name().to_owned(),
                kind: provisioner.kind(),
                provisioner,
                config: Arc::new(config),
                keys,
                #[cfg(feature = "acme")]
                acme,
                stored,
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

    /// The provisioners a JWT may be for: those its claims route to (step-ca's
    /// `LoadByToken`: `iss` for JWK, X5C and SSHPOP, the client ID for OIDC, the audience
    /// fragment for AWS and GCP, the tenant for Azure …) and, for JWK, holding the key its
    /// `kid` names. The token is only peeked at here; the provisioner verifies it.
    pub(crate) fn for_token(&self, token: &str) -> Vec<&Entry> {
        let Some(peek) = TokenPeek::of(token) else { return Vec::new() };
        self.entries
            .iter()
            .filter(|e| e.provisioner.routes(&peek))
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
