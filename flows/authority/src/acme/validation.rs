//! Validating a challenge after the client asked for it (RFC 8555 §7.5.1, §8.2): in the
//! background, each attempt bounded by the validator's timeout, failed attempts retried
//! after a pause that doubles, and the outcome written to the store — the challenge, its
//! authorization and, when every authorization holds, the order.

use std::time::{Duration, SystemTime};

use keystation_acme::messages::ChallengeType;
use keystation_acme::problem::{Problem, ProblemType};
use keystation_acme_va::{FailureKind, Identifier as VaIdentifier, ValidationFailure};
use keystation_store::{AcmeAuthorizationRecord, AcmeChallengeRecord};

use crate::authority::Authority;

/// The RFC 8555 §6.7 problem type of a failed check.
fn problem_of(failure: &ValidationFailure) -> Problem {
    let kind = ProblemType::from_urn(failure.kind.problem_type()).unwrap_or(ProblemType::Malformed);
    Problem::new(kind, failure.detail.clone())
}

impl Authority {
    /// Runs the checks of `kind` for `authz` until one passes or the attempts are spent;
    /// never returns an error (the outcome is in the store, failures in the log).
    pub(super) async fn acme_validate(
        &self,
        provisioner: String,
        authz: AcmeAuthorizationRecord,
        challenge: AcmeChallengeRecord,
        kind: ChallengeType,
        key_authorization: String,
    ) {
        let Some(state) = self.acme.as_ref() else { return };
        let attempts = state.settings.attempts.max(1);
        let mut pause = Duration::from_secs(state.settings.retry_seconds);
        let identifier = if authz.identifier_type == "ip" {
            match authz.identifier_value.parse() {
                Ok(ip) => VaIdentifier::Ip(ip),
                Err(_) => VaIdentifier::Dns(authz.identifier_value.clone()),
            }
        } else {
            VaIdentifier::Dns(authz.identifier_value.clone())
        };
        for attempt in 1..=attempts {
            if let Err(e) = self.store.acme_count_challenge_attempt(&challenge.id).await {
                tracing::error!(error = %e, "cannot count an ACME validation attempt");
            }
            let outcome = match kind {
                ChallengeType::Http01 => {
                    state.validator.http01(&identifier, &challenge.token, &key_authorization).await
                }
                ChallengeType::Dns01 => {
                    state.validator.dns01(&authz.identifier_value, &key_authorization).await
                }
                ChallengeType::TlsAlpn01 => {
                    state.validator.tls_alpn01(&identifier, &key_authorization).await
                }
                _ => Err(ValidationFailure {
                    kind: FailureKind::Malformed,
                    detail: format!("{kind} is not validated over the network"),
                }),
            };
            match outcome {
                Ok(()) => {
                    let stored = self
                        .store
                        .acme_set_challenge_status(
                            &challenge.id,
                            &["processing"],
                            "valid",
                            None,
                            Some(SystemTime::now()),
                            None,
                        )
                        .await;
                    let done = match stored {
                        Ok(_) => self
                            .acme_authorization_valid(&authz, None)
                            .await
                            .map_err(|p| p.to_string()),
                        Err(e) => Err(e.to_string()),
                    };
                    match done {
                        Ok(()) => {
                            tracing::info!(%provisioner, challenge = %kind, identifier = %authz.identifier_value, attempt, "ACME challenge valid")
                        }
                        Err(e) => {
                            tracing::error!(%provisioner, error = %e, "cannot record a valid ACME challenge")
                        }
                    }
                    return;
                }
                Err(failure) if attempt < attempts => {
                    tracing::info!(%provisioner, challenge = %kind, identifier = %authz.identifier_value, attempt, reason = %failure.detail, "ACME validation failed; retrying");
                    tokio::time::sleep(pause).await;
                    pause = pause.saturating_mul(2);
                }
                Err(failure) => {
                    let refusal = problem_of(&failure);
                    tracing::warn!(%provisioner, challenge = %kind, identifier = %authz.identifier_value, attempt, reason = %refusal, "ACME challenge invalid");
                    if let Err(p) = self.acme_fail(&authz, &challenge, &refusal).await {
                        tracing::error!(%provisioner, error = %p, "cannot record an invalid ACME challenge");
                    }
                    return;
                }
            }
        }
    }
}
