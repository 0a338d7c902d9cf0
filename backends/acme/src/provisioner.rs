//! The ACME provisioner (step-ca's `ACME` type, `authority/provisioner/acme.go`): which
//! challenges an order may use, whether accounts need an external account binding, the
//! certificate lifetimes, and for device-attest-01 the attestation roots and keystation's
//! YubiKey policy (the YubiKey attestation provisioner's fields and checks).
//!
//! ACME requests are never bearer tokens: the authority serves `/acme/{name}/…` itself
//! and decides from the order's validated authorizations, so [`routes`] is always false
//! and [`authorize`] refuses with [`Denial::OperationNotAllowed`].
//!
//! [`routes`]: StepProvisioner::routes
//! [`authorize`]: Provisioner::authorize

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use keystation_core::Provisioner;
use keystation_core::provisioner::{Denial, Grant, Request, TrustedKeys};
use keystation_provisioners::{
    AttestationPolicy, ClaimsJson, EffectiveClaims, Factory, ProvisionerContext, ProvisionerKind,
    StepProvisioner, TokenPeek, YubiKeyAttestationProvisioner, check_no_templates, common, invalid,
};
use serde::{Deserialize, Serialize};

use crate::messages::{ChallengeType, DirectoryMeta};

/// The provisioner's `type` in `ca.json`.
pub const ACME_TYPE: &str = ProvisionerKind::Acme.type_name();

/// The challenges enabled when `challenges` is absent (step-ca's default).
pub const DEFAULT_CHALLENGES: [ChallengeType; 3] =
    [ChallengeType::Http01, ChallengeType::Dns01, ChallengeType::TlsAlpn01];

/// The attestation formats (draft-ietf-acme-device-attest §5's `fmt`) keystation
/// verifies: step's YubiKey PIV format only.
pub const SUPPORTED_ATTESTATION_FORMATS: [&str; 1] = ["step"];

/// The provisioner's `ca.json` object: step-ca's names, and the YubiKey attestation
/// provisioner's policy fields for device-attest-01.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AcmeJson {
    #[serde(rename = "type")]
    kind: String,
    name: String,
    #[serde(rename = "forceCN", default, skip_serializing_if = "is_false")]
    force_cn: bool,
    #[serde(rename = "requireEAB", default, skip_serializing_if = "is_false")]
    require_eab: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    terms_of_service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    website: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    caa_identities: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    challenges: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    attestation_formats: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    attestation_roots: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    attestation_intermediates: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    min_firmware: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pin_policies: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    touch_policies: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    slots: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    serials: Vec<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    claims: Option<ClaimsJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    options: Option<serde_json::Value>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The ACME provisioner: see the module documentation.
#[derive(Debug, Clone)]
pub struct AcmeProvisioner {
    config: AcmeJson,
    challenges: Vec<ChallengeType>,
    attestation_formats: Vec<String>,
    claims: EffectiveClaims,
    /// `attestationIntermediates` (DER), to which a statement's own `x5c[2..]` is added.
    pub(crate) intermediates: Vec<Vec<u8>>,
    /// device-attest-01's chain and policy checks, as the YubiKey attestation provisioner
    /// makes them (its roots, intermediates, policy and claims are this provisioner's).
    pub(crate) attestation: YubiKeyAttestationProvisioner,
}

/// A PEM bundle as `ca.json` holds it: PEM text, or (as step-ca's Go `[]byte` field
/// writes it) the PEM text in standard base64.
fn pem_text(
    name: &str,
    field: &str,
    value: &str,
) -> Result<String, keystation_provisioners::Error> {
    if value.trim_start().starts_with("-----BEGIN") {
        return Ok(value.to_owned());
    }
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .map_err(|_| invalid(name, format!("{field} is neither PEM nor base64-encoded PEM")))?;
    String::from_utf8(bytes)
        .ok()
        .filter(|t| t.trim_start().starts_with("-----BEGIN"))
        .ok_or_else(|| invalid(name, format!("{field} does not hold PEM certificates")))
}

impl AcmeProvisioner {
    /// Reads the provisioner from its `ca.json` object, claims layered over the
    /// authority's:
    ///
    /// ```json
    /// {"type": "ACME", "name": "acme", "forceCN": false, "requireEAB": false,
    ///  "termsOfService": "https://…", "website": "https://…", "caaIdentities": ["ca.example"],
    ///  "challenges": ["http-01", "dns-01", "tls-alpn-01", "device-attest-01"],
    ///  "attestationFormats": ["step"], "attestationRoots": "-----BEGIN CERTIFICATE-----…",
    ///  "attestationIntermediates": "-----BEGIN CERTIFICATE-----…",
    ///  "minFirmware": "5.2.3", "pinPolicies": ["once"], "touchPolicies": ["always"],
    ///  "slots": ["9a"], "serials": [12345678],
    ///  "claims": {"defaultTLSCertDuration": "24h0m0s"}}
    /// ```
    ///
    /// `challenges` defaults to http-01, dns-01 and tls-alpn-01 ([`DEFAULT_CHALLENGES`]);
    /// `attestationFormats` to `step`, the only one supported (others are refused);
    /// `attestationRoots` (PEM text, or base64 of it as step-ca writes its `[]byte`)
    /// replaces Yubico's roots. The policy fields are the YubiKey attestation
    /// provisioner's. Unknown keys are refused, and `options` may not configure templates.
    pub fn from_json(
        json: &str,
        context: &ProvisionerContext,
    ) -> Result<Self, keystation_provisioners::Error> {
        let config: AcmeJson = serde_json::from_str(json)
            .map_err(|e| invalid("", format!("not an {ACME_TYPE} provisioner object: {e}")))?;
        let name = config.name.clone();
        let (_, claims) = common(
            ProvisionerKind::Acme,
            &config.kind,
            &name,
            config.claims.as_ref(),
            &context.claims,
        )?;
        check_no_templates(&name, config.options.as_ref())?;

        let challenges = match &config.challenges {
            None => DEFAULT_CHALLENGES.to_vec(),
            Some(list) => {
                let mut out = Vec::new();
                for text in list {
                    let challenge = text.parse::<ChallengeType>().map_err(|_| {
                        invalid(
                            &name,
                            format!(
                                "challenges: {text:?} is not http-01, dns-01, tls-alpn-01 or \
                                 device-attest-01"
                            ),
                        )
                    })?;
                    if !out.contains(&challenge) {
                        out.push(challenge);
                    }
                }
                if out.is_empty() {
                    return Err(invalid(&name, "challenges is empty: no order could be validated"));
                }
                out
            }
        };
        let attestation_formats = match &config.attestation_formats {
            None => SUPPORTED_ATTESTATION_FORMATS.iter().map(|f| (*f).to_owned()).collect(),
            Some(list) => {
                if let Some(other) =
                    list.iter().find(|f| !SUPPORTED_ATTESTATION_FORMATS.contains(&f.as_str()))
                {
                    return Err(invalid(
                        &name,
                        format!(
                            "attestationFormats: {other:?} is not supported; keystation \
                             verifies only \"step\" (YubiKey PIV attestation)"
                        ),
                    ));
                }
                list.clone()
            }
        };
        if challenges.contains(&ChallengeType::DeviceAttest01) && attestation_formats.is_empty() {
            return Err(invalid(
                &name,
                "device-attest-01 is enabled but attestationFormats is empty",
            ));
        }

        // The YubiKey attestation provisioner reads (and checks) the roots, intermediates
        // and policy under its own field names.
        let mut inner = serde_json::json!({
            "type": ProvisionerKind::YubiKeyAttestation.type_name(),
            "name": name,
        });
        let bundles = [
            ("roots", "attestationRoots", &config.attestation_roots),
            ("intermediates", "attestationIntermediates", &config.attestation_intermediates),
        ];
        for (key, field, value) in bundles {
            if let Some(value) = value {
                inner[key] = serde_json::json!([pem_text(&name, field, value)?]);
            }
        }
        if let Some(v) = &config.min_firmware {
            inner["minFirmware"] = v.clone().into();
        }
        inner["pinPolicies"] = config.pin_policies.clone().into();
        inner["touchPolicies"] = config.touch_policies.clone().into();
        inner["slots"] = config.slots.clone().into();
        inner["serials"] = config.serials.clone().into();
        if let Some(c) = &config.claims {
            inner["claims"] = serde_json::to_value(c).unwrap_or_default();
        }
        let attestation =
            YubiKeyAttestationProvisioner::from_json(&inner.to_string(), &context.claims)?;
        let intermediates = match &inner["intermediates"][0] {
            serde_json::Value::String(pem) => keystation_x509::pem::decode_all(pem)
                .map_err(|e| invalid(&name, format!("attestationIntermediates: {e}")))?
                .into_iter()
                .filter(|b| b.label == "CERTIFICATE")
                .map(|b| b.der.clone())
                .collect(),
            _ => Vec::new(),
        };

        Ok(Self { config, challenges, attestation_formats, claims, intermediates, attestation })
    }

    /// The `ca.json` object, as [`from_json`](Self::from_json) reads it (everything in it
    /// is public configuration).
    pub fn to_json(&self) -> String {
        let mut config = self.config.clone();
        config.kind = ACME_TYPE.into();
        serde_json::to_string(&config).unwrap_or_default()
    }

    /// The challenge types orders may be validated with, in configuration order.
    pub fn challenges(&self) -> &[ChallengeType] {
        &self.challenges
    }

    /// The attestation formats accepted for device-attest-01 (`step`).
    pub fn attestation_formats(&self) -> &[String] {
        &self.attestation_formats
    }

    /// Whether newAccount requires an external account binding (`requireEAB`, RFC 8555
    /// §7.3.4; the directory's `meta.externalAccountRequired`).
    pub fn require_eab(&self) -> bool {
        self.config.require_eab
    }

    /// Whether the certificate's CN is set to the first identifier when the CSR has none
    /// (`forceCN`, step-ca's).
    pub fn force_cn(&self) -> bool {
        self.config.force_cn
    }

    /// The resolved claims.
    pub fn claims(&self) -> &EffectiveClaims {
        &self.claims
    }

    /// The lifetime of certificates issued without `notBefore`/`notAfter`: the claims'
    /// default TLS duration.
    pub fn tls_lifetime(&self) -> Duration {
        self.claims.tls.default
    }

    /// The YubiKey policy device-attest-01 attestations must pass.
    pub fn attestation_policy(&self) -> &AttestationPolicy {
        self.attestation.policy()
    }

    /// The directory's `meta` object (RFC 8555 §7.1.1) for this provisioner.
    pub fn directory_meta(&self) -> DirectoryMeta {
        DirectoryMeta {
            terms_of_service: self.config.terms_of_service.clone(),
            website: self.config.website.clone(),
            caa_identities: self.config.caa_identities.clone(),
            external_account_required: self.config.require_eab,
        }
    }
}

impl Provisioner for AcmeProvisioner {
    fn name(&self) -> &str {
        &self.config.name
    }

    /// Always [`Denial::OperationNotAllowed`]: ACME grants come from validated orders,
    /// which the authority's ACME server decides, never from a credential presented here.
    fn authorize(
        &self,
        _request: &Request<'_>,
        _keys: &TrustedKeys,
        _now: SystemTime,
    ) -> Result<Grant, keystation_core::Error> {
        Err(keystation_core::Error::Unauthorized(Denial::OperationNotAllowed))
    }
}

impl StepProvisioner for AcmeProvisioner {
    fn kind(&self) -> ProvisionerKind {
        ProvisionerKind::Acme
    }

    fn effective_claims(&self) -> Option<&EffectiveClaims> {
        Some(&self.claims)
    }

    /// Never: ACME requests are not tokens.
    fn routes(&self, _peek: &TokenPeek) -> bool {
        false
    }

    /// [`AcmeProvisioner::to_json`].
    fn to_json(&self) -> String {
        AcmeProvisioner::to_json(self)
    }
}

fn build(
    json: &str,
    context: &ProvisionerContext,
) -> Result<Arc<dyn StepProvisioner>, keystation_provisioners::Error> {
    Ok(Arc::new(AcmeProvisioner::from_json(json, context)?))
}

/// Builds `ACME` provisioners for the authority's registry.
pub const FACTORY: Factory = Factory { kind: ProvisionerKind::Acme, build };
