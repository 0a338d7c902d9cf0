//! The YubiKey PIV attestation provisioner (keystation's own; step-ca verifies the same
//! chain only inside ACME's `device-attest-01` with the `step` format, research note §3).
//!
//! A client generates a key in a PIV slot, asks the card to attest it (Yubico, "PIV
//! attestation": `INS F9` issues a certificate for the slot key signed by the factory key
//! in slot `F9`), and presents that attestation certificate, the card's `F9` certificate
//! and a CSR for the key. [`YubiKeyAttestationProvisioner`] grants an X.509 certificate
//! when
//!
//! 1. the chain slot certificate ← `F9` certificate ← (configured intermediates) ← a
//!    trusted root verifies — names, signatures, and every certificate (the root too)
//!    valid at `now` (RFC 5280 §6.1.3 (a)(2));
//! 2. the attested public key is the CSR's key ([`Request::subject_key`]);
//! 3. what the attestation says passes the [`AttestationPolicy`]: the slot, the serial
//!    (allow-list), the firmware (minimum), the PIN and touch policies — the checks
//!    step-ca leaves out (research note §3, "Not checked").
//!
//! The granted subject is the card's serial in decimal, which the attestation binds
//! (extension `1.3.6.1.4.1.41482.3.7`), as step-ca's `step` format binds the ACME
//! permanent identifier.
//!
//! Trusted roots: those configured for the provisioner and those handed to
//! [`authorize`](Provisioner::authorize) in [`TrustedKeys::certificates`]; when neither
//! gives any, Yubico's two public roots ([`yubico_roots`]). Configuring roots replaces
//! Yubico's, as step-ca's `attestationRoots` does.

use std::time::{SystemTime, UNIX_EPOCH};

use keystation_core::Provisioner;
use keystation_core::keygen::{PinPolicy, PivSlot, TouchPolicy};
use keystation_core::provisioner::{Credential, Denial, Grant, Operation, Request, TrustedKeys};
use keystation_x509::Certificate;
use keystation_x509::attestation::{
    FirmwareVersion, PivAttestation, verify_piv_attestation_at, yubico_roots,
};
use serde::{Deserialize, Serialize};

use crate::config::{ClaimsJson, common, invalid};
use crate::{Claims, EffectiveClaims, Error, ProvisionerKind, StepProvisioner};

/// The provisioner's `type` in its JSON configuration.
pub const YUBIKEY_ATTESTATION_TYPE: &str = ProvisionerKind::YubiKeyAttestation.type_name();

/// What an attestation must say for a certificate to be granted. An empty list allows
/// any value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttestationPolicy {
    /// The oldest firmware allowed (extension `.3.3`); an attestation without a firmware
    /// version is refused when this is set.
    pub min_firmware: Option<FirmwareVersion>,
    /// The PIN policies allowed (extension `.3.8`, first byte). `Default` never matches:
    /// the card records the policy it applies.
    pub pin_policies: Vec<PinPolicy>,
    /// The touch policies allowed (extension `.3.8`, second byte). As for PIN policies,
    /// `Default` never matches.
    pub touch_policies: Vec<TouchPolicy>,
    /// The slots whose keys may be certified. The attestation slot `F9` is never
    /// certified, listed or not.
    pub slots: Vec<PivSlot>,
    /// The card serials allowed (extension `.3.7`).
    pub serials: Vec<u32>,
}

/// A refused request: the coarse [`Denial`] a client is told and the precise reason for
/// the log (which certificate, which policy, which value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttestationRefusal {
    /// Which check failed.
    pub denial: Denial,
    /// Why, in words fit for a log line (no secret: attestations are public).
    pub reason: String,
}

impl AttestationRefusal {
    fn new(denial: Denial, reason: impl Into<String>) -> Self {
        Self { denial, reason: reason.into() }
    }
}

impl core::fmt::Display for AttestationRefusal {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}: {}", self.denial, self.reason)
    }
}

impl std::error::Error for AttestationRefusal {}

impl From<AttestationRefusal> for keystation_core::Error {
    fn from(refusal: AttestationRefusal) -> Self {
        Self::Unauthorized(refusal.denial)
    }
}

/// The YubiKey PIV attestation provisioner: see the module documentation.
#[derive(Debug, Clone)]
pub struct YubiKeyAttestationProvisioner {
    name: String,
    roots: Vec<Vec<u8>>,
    intermediates: Vec<Vec<u8>>,
    policy: AttestationPolicy,
    sans: Vec<String>,
    claims: EffectiveClaims,
    /// The provisioner's own claims layer, as its JSON declared it (for [`Self::to_json`]).
    declared_claims: Claims,
}

impl YubiKeyAttestationProvisioner {
    /// A provisioner named `name` trusting the DER certificates `roots` (empty: Yubico's
    /// roots, unless [`TrustedKeys::certificates`] brings some), enforcing `policy`, and
    /// issuing the default TLS lifetime of `claims`.
    pub fn new(
        name: impl Into<String>,
        roots: Vec<Vec<u8>>,
        policy: AttestationPolicy,
        claims: EffectiveClaims,
    ) -> Self {
        Self {
            name: name.into(),
            roots,
            intermediates: Vec::new(),
            policy,
            sans: Vec::new(),
            claims,
            declared_claims: Claims::default(),
        }
    }

    /// The same provisioner with DER certificates that may stand between the `F9`
    /// certificate and a root (Yubico's devices from firmware 5.7.4 chain to "Yubico
    /// Attestation Root 1" through intermediates).
    #[must_use]
    pub fn with_intermediates(mut self, intermediates: Vec<Vec<u8>>) -> Self {
        self.intermediates = intermediates;
        self
    }

    /// The same provisioner granting these subject alternative names; `{serial}` in a
    /// name is replaced by the card's serial (e.g. `{serial}.cards.example.com`).
    #[must_use]
    pub fn with_sans(mut self, sans: Vec<String>) -> Self {
        self.sans = sans;
        self
    }

    /// The policy enforced.
    pub fn policy(&self) -> &AttestationPolicy {
        &self.policy
    }

    /// The configured roots (DER); empty means Yubico's unless the caller's
    /// [`TrustedKeys`] bring some.
    pub fn roots(&self) -> &[Vec<u8>] {
        &self.roots
    }

    /// The resolved claims.
    pub fn claims(&self) -> &EffectiveClaims {
        &self.claims
    }

    /// The roots a request is checked against: the configured ones and `keys`'
    /// certificates, or Yubico's when there are none.
    fn trust_anchors(&self, keys: &TrustedKeys) -> Vec<Vec<u8>> {
        let mut roots: Vec<Vec<u8>> =
            self.roots.iter().chain(keys.certificates.iter()).cloned().collect();
        if roots.is_empty() {
            roots = yubico_roots();
        }
        roots
    }

    /// [`authorize`](Provisioner::authorize) with the precise reason of a refusal, for
    /// the authority's log.
    pub fn check(
        &self,
        request: &Request<'_>,
        keys: &TrustedKeys,
        now: SystemTime,
    ) -> Result<Grant, AttestationRefusal> {
        if request.operation != Operation::SignX509 {
            return Err(AttestationRefusal::new(
                Denial::OperationNotAllowed,
                format!(
                    "{:?} is not allowed: an attestation provisioner only signs X.509 \
                     certificates",
                    request.operation
                ),
            ));
        }
        let Credential::Attestation { slot_certificate, intermediate } = request.credential else {
            return Err(AttestationRefusal::new(
                Denial::Malformed,
                "expected a PIV attestation (slot and F9 certificates), got a token",
            ));
        };
        let unix = unix_seconds(now);
        let attestation = self.verify_chain(slot_certificate, intermediate, keys, unix)?;
        let slot = slot_label(attestation.slot);

        // The key binding: the certificate will be for the attested key and no other.
        let Some(subject_key) = request.subject_key else {
            return Err(AttestationRefusal::new(
                Denial::PolicyViolation,
                "the request carries no public key to compare with the attested one",
            ));
        };
        if *subject_key != attestation.public_key {
            return Err(AttestationRefusal::new(
                Denial::PolicyViolation,
                format!(
                    "the request's public key ({}) is not the key attested in slot {slot} ({})",
                    subject_key.algorithm(),
                    attestation.public_key.algorithm()
                ),
            ));
        }

        self.check_policy(&attestation)?;
        let Some(serial) = attestation.serial else {
            // check_policy has refused this already; kept total.
            return Err(no_serial());
        };

        let lifetime = self.claims.tls.pick(None).map_err(|denial| {
            AttestationRefusal::new(denial, "the default TLS lifetime is outside the claims")
        })?;
        let serial_text = serial.to_string();
        Ok(Grant {
            provisioner: self.name.clone(),
            subject: serial_text.clone(),
            sans: self.sans.iter().map(|san| san.replace("{serial}", &serial_text)).collect(),
            not_before: now,
            not_after: now.checked_add(lifetime).ok_or_else(|| {
                AttestationRefusal::new(Denial::ValidityOutOfBounds, "the validity overflows")
            })?,
            operations: vec![Operation::SignX509],
            replay_id: None,
        })
    }

    /// Verifies the chain at `unix`. A chain whose signatures and names hold but which is
    /// outside a certificate's validity at `unix` is [`Denial::Expired`] or
    /// [`Denial::NotYetValid`]; any other failure [`Denial::UntrustedChain`] (or
    /// [`Denial::Malformed`] for DER that does not parse).
    fn verify_chain(
        &self,
        slot_der: &[u8],
        f9_der: &[u8],
        keys: &TrustedKeys,
        unix: i64,
    ) -> Result<PivAttestation, AttestationRefusal> {
        let malformed = |what: &str, e: keystation_x509::Error| {
            AttestationRefusal::new(Denial::Malformed, format!("the {what} does not parse: {e}"))
        };
        let slot = Certificate::from_der(slot_der)
            .map_err(|e| malformed("slot's attestation certificate", e))?;
        let device = Certificate::from_der(f9_der)
            .map_err(|e| malformed("F9 attestation certificate", e))?;
        let roots = self.trust_anchors(keys);
        let verify =
            |at: i64| verify_piv_attestation_at(slot_der, f9_der, &self.intermediates, &roots, at);
        let failure = match verify(unix) {
            Ok(attestation) => {
                let root = &attestation.root;
                if root.is_valid_at(unix) {
                    return Ok(attestation);
                }
                let denial =
                    if unix < root.not_before() { Denial::NotYetValid } else { Denial::Expired };
                return Err(AttestationRefusal::new(
                    denial,
                    format!(
                        "root {:?} is not valid at {} (valid {} to {})",
                        root.subject(),
                        keystation_x509::rfc3339(unix),
                        keystation_x509::rfc3339(root.not_before()),
                        keystation_x509::rfc3339(root.not_after())
                    ),
                ));
            }
            Err(e) => e.to_string(),
        };
        // Only the time, or the chain itself? Verify again at the start and at the end of
        // the window in which both given certificates are valid: a chain whose names and
        // signatures hold there failed at `unix` on validity alone.
        let start = slot.not_before().max(device.not_before());
        let end = slot.not_after().min(device.not_after());
        let probes = [start, end];
        if start <= end
            && let Some(probe) = probes.into_iter().find(|at| verify(*at).is_ok())
        {
            let denial = if unix < probe { Denial::NotYetValid } else { Denial::Expired };
            return Err(AttestationRefusal::new(denial, failure));
        }
        Err(AttestationRefusal::new(Denial::UntrustedChain, failure))
    }

    /// Slot, serial, firmware, PIN policy, touch policy.
    fn check_policy(&self, attestation: &PivAttestation) -> Result<(), AttestationRefusal> {
        let policy = &self.policy;
        let violation = |reason: String| AttestationRefusal::new(Denial::PolicyViolation, reason);
        let slot = slot_label(attestation.slot);
        if attestation.slot == PivSlot::Attestation {
            return Err(violation("the attestation key (slot f9) is never certified".into()));
        }
        if !policy.slots.is_empty() && !policy.slots.contains(&attestation.slot) {
            let allowed: Vec<String> = policy.slots.iter().map(|s| slot_label(*s)).collect();
            return Err(violation(format!(
                "slot {slot} is not allowed (allowed: {})",
                allowed.join(", ")
            )));
        }
        let Some(serial) = attestation.serial else { return Err(no_serial()) };
        if !policy.serials.is_empty() && !policy.serials.contains(&serial) {
            return Err(violation(format!("serial {serial} is not on the allow-list")));
        }
        if let Some(minimum) = policy.min_firmware {
            match attestation.firmware {
                None => {
                    return Err(violation(format!(
                        "the attestation carries no firmware version; {minimum} or later is \
                         required"
                    )));
                }
                Some(firmware) if firmware < minimum => {
                    return Err(violation(format!(
                        "firmware {firmware} is below the minimum {minimum}"
                    )));
                }
                Some(_) => {}
            }
        }
        if !policy.pin_policies.is_empty() {
            let allowed = attestation
                .pin_policy_byte
                .and_then(pin_policy_from_byte)
                .is_some_and(|p| policy.pin_policies.contains(&p));
            if !allowed {
                let names: Vec<&str> = policy.pin_policies.iter().map(|p| p.name()).collect();
                return Err(violation(format!(
                    "PIN policy {} of slot {slot} is not allowed (allowed: {})",
                    pin_policy_byte_name(attestation.pin_policy_byte),
                    names.join(", ")
                )));
            }
        }
        if !policy.touch_policies.is_empty() {
            let allowed = attestation
                .touch_policy_byte
                .and_then(touch_policy_from_byte)
                .is_some_and(|p| policy.touch_policies.contains(&p));
            if !allowed {
                let names: Vec<&str> = policy.touch_policies.iter().map(|p| p.piv_name()).collect();
                return Err(violation(format!(
                    "touch policy {} of slot {slot} is not allowed (allowed: {})",
                    touch_policy_byte_name(attestation.touch_policy_byte),
                    names.join(", ")
                )));
            }
        }
        Ok(())
    }
}

fn no_serial() -> AttestationRefusal {
    AttestationRefusal::new(
        Denial::PolicyViolation,
        "the attestation carries no serial number (extension 1.3.6.1.4.1.41482.3.7) to bind \
         the certificate to",
    )
}

impl Provisioner for YubiKeyAttestationProvisioner {
    fn name(&self) -> &str {
        &self.name
    }

    /// [`check`](YubiKeyAttestationProvisioner::check), with the refusal's reason logged
    /// (at `info`, naming the provisioner) and only its [`Denial`] returned.
    fn authorize(
        &self,
        request: &Request<'_>,
        keys: &TrustedKeys,
        now: SystemTime,
    ) -> Result<Grant, keystation_core::Error> {
        self.check(request, keys, now).map_err(|refusal| {
            tracing::info!(
                provisioner = %self.name,
                denial = %refusal.denial,
                reason = %refusal.reason,
                "attestation refused"
            );
            refusal.into()
        })
    }
}

impl StepProvisioner for YubiKeyAttestationProvisioner {
    fn kind(&self) -> ProvisionerKind {
        ProvisionerKind::YubiKeyAttestation
    }

    fn effective_claims(&self) -> Option<&EffectiveClaims> {
        Some(&self.claims)
    }

    /// [`YubiKeyAttestationProvisioner::to_json`]: roots and policy are public.
    fn to_json(&self) -> String {
        YubiKeyAttestationProvisioner::to_json(self)
    }
}

/// Unix seconds of `time` (negative before 1970), saturating.
fn unix_seconds(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        Err(before) => {
            let d = before.duration();
            let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
            i64::try_from(secs).map_or(i64::MIN, |s| -s)
        }
    }
}

/// A slot as ykman names it (`9a`).
fn slot_label(slot: PivSlot) -> String {
    format!("{:02x}", slot.key_reference())
}

/// The attestation's PIN policy byte (Yubico: 1 never, 2 once, 3 always; 4 and 5 the
/// YubiKey Bio's match-once and match-always, which core's policy has no name for).
fn pin_policy_from_byte(byte: u8) -> Option<PinPolicy> {
    match byte {
        1 => Some(PinPolicy::Never),
        2 => Some(PinPolicy::Once),
        3 => Some(PinPolicy::Always),
        _ => None,
    }
}

fn pin_policy_byte_name(byte: Option<u8>) -> String {
    match byte {
        None => "(not attested)".into(),
        Some(4) => "match-once".into(),
        Some(5) => "match-always".into(),
        Some(b) => pin_policy_from_byte(b)
            .map_or_else(|| format!("unknown (byte {b:#04x})"), |p| p.name().into()),
    }
}

/// The attestation's touch policy byte (Yubico: 1 never, 2 always, 3 cached).
fn touch_policy_from_byte(byte: u8) -> Option<TouchPolicy> {
    match byte {
        1 => Some(TouchPolicy::Never),
        2 => Some(TouchPolicy::Always),
        3 => Some(TouchPolicy::Cached),
        _ => None,
    }
}

fn touch_policy_byte_name(byte: Option<u8>) -> String {
    match byte {
        None => "(not attested)".into(),
        Some(b) => touch_policy_from_byte(b)
            .map_or_else(|| format!("unknown (byte {b:#04x})"), |p| p.piv_name().into()),
    }
}

// ---------------------------------------------------------------------------------------
// JSON configuration, in the style of a provisioner of step-ca's `ca.json`.

/// The provisioner's JSON configuration (camelCase keys, as step-ca's `ca.json`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ConfigJson {
    #[serde(rename = "type")]
    kind: String,
    name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    roots: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    intermediates: Vec<String>,
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
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    sans: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    claims: Option<ClaimsJson>,
}

/// `5.2.3` into a firmware version.
fn parse_firmware(text: &str) -> Option<FirmwareVersion> {
    let mut parts = text.trim().split('.').map(|p| p.parse::<u8>().ok());
    let version =
        FirmwareVersion { major: parts.next()??, minor: parts.next()??, patch: parts.next()?? };
    parts.next().is_none().then_some(version)
}

/// Every `CERTIFICATE` of the PEM texts, as DER, each checked to parse.
fn certificates_from_pem(
    provisioner: &str,
    field: &str,
    texts: &[String],
) -> Result<Vec<Vec<u8>>, Error> {
    let mut out = Vec::new();
    for (i, text) in texts.iter().enumerate() {
        let blocks = keystation_x509::pem::decode_all(text)
            .map_err(|e| invalid(provisioner, format!("{field}[{i}]: {e}")))?;
        let before = out.len();
        for block in blocks.iter().filter(|b| b.label == "CERTIFICATE") {
            Certificate::from_der(&block.der).map_err(|e| {
                invalid(provisioner, format!("{field}[{i}] is not a certificate: {e}"))
            })?;
            out.push(block.der.clone());
        }
        if out.len() == before {
            return Err(invalid(provisioner, format!("{field}[{i}] holds no PEM certificate")));
        }
    }
    Ok(out)
}

impl YubiKeyAttestationProvisioner {
    /// Reads the provisioner from its JSON configuration:
    ///
    /// ```json
    /// {"type": "YubiKeyAttestation", "name": "yubikeys",
    ///  "roots": ["-----BEGIN CERTIFICATE-----…"], "intermediates": [],
    ///  "minFirmware": "5.2.3", "pinPolicies": ["once", "always"],
    ///  "touchPolicies": ["always", "cached"], "slots": ["9a", "9c"],
    ///  "serials": [12345678], "sans": ["{serial}.cards.example.com"],
    ///  "claims": {"defaultTLSCertDuration": "24h0m0s"}}
    /// ```
    ///
    /// Every key but `type` and `name` is optional; absent lists allow anything, absent
    /// `roots` trust Yubico's. Policies use ykman's names (`never`, `once`, `always`;
    /// `never`, `always`, `cached`), slots their key reference in hex. The claims are
    /// layered over `authority` (the authority's own `claims`, step-ca's
    /// `authority.claims`) and resolved over the built-in ones. Unknown keys are refused,
    /// so that a misspelt policy does not silently allow everything.
    pub fn from_json(json: &str, authority: &Claims) -> Result<Self, Error> {
        let config: ConfigJson =
            serde_json::from_str(json).map_err(|e| Error::InvalidProvisioner {
                name: String::new(),
                reason: format!("not a {YUBIKEY_ATTESTATION_TYPE} provisioner configuration: {e}"),
            })?;
        let name = config.name.as_str();
        let (declared_claims, claims) = common(
            ProvisionerKind::YubiKeyAttestation,
            &config.kind,
            name,
            config.claims.as_ref(),
            authority,
        )?;
        let roots = certificates_from_pem(name, "roots", &config.roots)?;
        let intermediates = certificates_from_pem(name, "intermediates", &config.intermediates)?;
        let min_firmware = config
            .min_firmware
            .as_deref()
            .map(|text| {
                parse_firmware(text).ok_or_else(|| {
                    invalid(name, format!("minFirmware {text:?} is not a version like 5.2.3"))
                })
            })
            .transpose()?;
        let pin_policies = config
            .pin_policies
            .iter()
            .map(|text| {
                text.parse::<PinPolicy>().ok().filter(|p| *p != PinPolicy::Default).ok_or_else(
                    || invalid(name, format!("pinPolicies: {text:?} is not never, once or always")),
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        let touch_policies = config
            .touch_policies
            .iter()
            .map(|text| {
                TouchPolicy::from_piv_name(text)
                    .ok()
                    .filter(|p| *p != TouchPolicy::Default)
                    .ok_or_else(|| {
                        invalid(
                            name,
                            format!("touchPolicies: {text:?} is not never, always or cached"),
                        )
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let slots = config
            .slots
            .iter()
            .map(|text| {
                u8::from_str_radix(text.trim(), 16)
                    .ok()
                    .and_then(PivSlot::from_key_reference)
                    .filter(|s| *s != PivSlot::Attestation)
                    .ok_or_else(|| {
                        invalid(
                            name,
                            format!(
                                "slots: {text:?} is not 9a, 9c, 9d, 9e or a retired slot 82-95"
                            ),
                        )
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let policy = AttestationPolicy {
            min_firmware,
            pin_policies,
            touch_policies,
            slots,
            serials: config.serials,
        };
        let mut provisioner = Self::new(name, roots, policy, claims)
            .with_intermediates(intermediates)
            .with_sans(config.sans);
        provisioner.declared_claims = declared_claims;
        Ok(provisioner)
    }

    /// The JSON configuration [`from_json`](Self::from_json) reads (roots and
    /// intermediates as PEM, the provisioner's own claims layer as declared).
    pub fn to_json(&self) -> String {
        let pem = |list: &[Vec<u8>]| -> Vec<String> {
            list.iter().map(|der| keystation_x509::pem::encode("CERTIFICATE", der)).collect()
        };
        let config = ConfigJson {
            kind: YUBIKEY_ATTESTATION_TYPE.into(),
            name: self.name.clone(),
            roots: pem(&self.roots),
            intermediates: pem(&self.intermediates),
            min_firmware: self.policy.min_firmware.map(|v| v.to_string()),
            pin_policies: self.policy.pin_policies.iter().map(|p| p.name().into()).collect(),
            touch_policies: self
                .policy
                .touch_policies
                .iter()
                .map(|p| p.piv_name().into())
                .collect(),
            slots: self.policy.slots.iter().map(|s| slot_label(*s)).collect(),
            serials: self.policy.serials.clone(),
            sans: self.sans.clone(),
            claims: ClaimsJson::from_claims(&self.declared_claims),
        };
        // Strings, numbers and lists only: serialization cannot fail.
        serde_json::to_string(&config).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use std::time::Duration;

    const H: Duration = Duration::from_secs(3600);

    #[test]
    fn firmware_versions_need_three_parts() {
        assert_eq!(parse_firmware("5.2.3"), Some(FirmwareVersion { major: 5, minor: 2, patch: 3 }));
        assert_eq!(parse_firmware("5.2"), None);
        assert_eq!(parse_firmware("5.2.3.1"), None);
        assert_eq!(parse_firmware("5.x.3"), None);
        assert_eq!(parse_firmware("5.256.0"), None);
    }

    #[test]
    fn json_round_trips_and_layers_claims_over_the_authority() {
        let json = r#"{"type":"YubiKeyAttestation","name":"yk","minFirmware":"5.4.0",
            "pinPolicies":["once","always"],"touchPolicies":["always"],"slots":["9a","9C"],
            "serials":[12345678],"sans":["{serial}.cards.example"],
            "claims":{"defaultTLSCertDuration":"8h","maxTLSCertDuration":"12h0m0s"}}"#;
        let authority = Claims { max_tls_duration: Some(48 * H), ..Claims::default() };
        let p = YubiKeyAttestationProvisioner::from_json(json, &authority).unwrap();
        assert_eq!(p.name(), "yk");
        assert_eq!(p.kind(), ProvisionerKind::YubiKeyAttestation);
        assert_eq!(
            p.policy(),
            &AttestationPolicy {
                min_firmware: Some(FirmwareVersion { major: 5, minor: 4, patch: 0 }),
                pin_policies: vec![PinPolicy::Once, PinPolicy::Always],
                touch_policies: vec![TouchPolicy::Always],
                slots: vec![PivSlot::Authentication, PivSlot::Signature],
                serials: vec![12_345_678],
            }
        );
        assert_eq!((p.claims().tls.default, p.claims().tls.max), (8 * H, 12 * H));
        assert!(p.roots().is_empty());

        let again = YubiKeyAttestationProvisioner::from_json(&p.to_json(), &authority).unwrap();
        assert_eq!(again.policy(), p.policy());
        assert_eq!(again.claims(), p.claims());
        assert_eq!(again.sans, p.sans);
        assert_eq!(again.to_json(), p.to_json());
        let value: serde_json::Value = serde_json::from_str(&p.to_json()).unwrap();
        assert_eq!(value["claims"]["defaultTLSCertDuration"], "8h0m0s");
        assert_eq!(value["slots"], serde_json::json!(["9a", "9c"]));

        // The crate's dispatcher builds the same provisioner, and the registry's trait
        // object lists it with its roots and policy.
        let listed = crate::provisioner_from_json(json, &authority).unwrap();
        assert_eq!(listed.kind(), ProvisionerKind::YubiKeyAttestation);
        assert_eq!(listed.effective_claims(), Some(p.claims()));
        assert_eq!(StepProvisioner::to_json(listed.as_ref()), p.to_json());
    }

    #[test]
    fn bad_configurations_are_refused_with_the_field_named() {
        let cases = [
            (r#"{"type":"JWK","name":"yk"}"#, "is not \"YubiKeyAttestation\""),
            (r#"{"type":"YubiKeyAttestation","name":" "}"#, "the name is empty"),
            (
                r#"{"type":"YubiKeyAttestation","name":"yk","touchPolicy":["always"]}"#,
                "unknown field",
            ),
            (r#"{"type":"YubiKeyAttestation","name":"yk","minFirmware":"5"}"#, "minFirmware"),
            (
                r#"{"type":"YubiKeyAttestation","name":"yk","pinPolicies":["default"]}"#,
                "pinPolicies",
            ),
            (
                r#"{"type":"YubiKeyAttestation","name":"yk","touchPolicies":["on"]}"#,
                "touchPolicies",
            ),
            (r#"{"type":"YubiKeyAttestation","name":"yk","slots":["f9"]}"#, "slots"),
            (
                r#"{"type":"YubiKeyAttestation","name":"yk","roots":["hello"]}"#,
                "roots[0] holds no PEM",
            ),
            (
                r#"{"type":"YubiKeyAttestation","name":"yk","claims":{"maxTLSCertDuration":"1d"}}"#,
                "claims.maxTLSCertDuration",
            ),
            (
                r#"{"type":"YubiKeyAttestation","name":"yk","claims":{"minTLSCertDuration":"48h"}}"#,
                "invalid claims",
            ),
        ];
        for (json, expected) in cases {
            let err = YubiKeyAttestationProvisioner::from_json(json, &Claims::default())
                .map(|_| ())
                .unwrap_err();
            assert!(err.to_string().contains(expected), "{json}: {err}");
        }
    }

    #[test]
    fn policy_bytes_are_named_in_reasons() {
        assert_eq!(pin_policy_byte_name(Some(2)), "once");
        assert_eq!(pin_policy_byte_name(Some(4)), "match-once");
        assert_eq!(pin_policy_byte_name(Some(9)), "unknown (byte 0x09)");
        assert_eq!(touch_policy_byte_name(Some(3)), "cached");
        assert_eq!(touch_policy_byte_name(None), "(not attested)");
        assert_eq!(unix_seconds(UNIX_EPOCH + Duration::from_secs(5)), 5);
        assert_eq!(unix_seconds(UNIX_EPOCH - Duration::from_millis(1500)), -2);
    }
}
