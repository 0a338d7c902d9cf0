//! step-ca's `claims`: the certificate lifetimes a provisioner allows, and their layering.

use std::time::Duration;

use keystation_core::provisioner::Denial;

use crate::error::Error;
use crate::kind::CertificateKind;

/// Durations a provisioner allows, step-ca's `claims` object: each field unset means
/// "inherit". Field docs give step-ca's JSON names.
///
/// Layering is built-in defaults < authority < provisioner ([`Claims::over`]); every
/// field comes from the nearest level that sets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Claims {
    /// Shortest X.509 certificate lifetime (`minTLSCertDuration`).
    pub min_tls_duration: Option<Duration>,
    /// Longest X.509 certificate lifetime (`maxTLSCertDuration`).
    pub max_tls_duration: Option<Duration>,
    /// X.509 lifetime when the request names none (`defaultTLSCertDuration`).
    pub default_tls_duration: Option<Duration>,
    /// Shortest SSH user certificate lifetime (`minUserSSHCertDuration`).
    pub min_ssh_user_duration: Option<Duration>,
    /// Longest SSH user certificate lifetime (`maxUserSSHCertDuration`).
    pub max_ssh_user_duration: Option<Duration>,
    /// SSH user lifetime when the request names none (`defaultUserSSHCertDuration`).
    pub default_ssh_user_duration: Option<Duration>,
    /// Shortest SSH host certificate lifetime (`minHostSSHCertDuration`).
    pub min_ssh_host_duration: Option<Duration>,
    /// Longest SSH host certificate lifetime (`maxHostSSHCertDuration`).
    pub max_ssh_host_duration: Option<Duration>,
    /// SSH host lifetime when the request names none (`defaultHostSSHCertDuration`).
    pub default_ssh_host_duration: Option<Duration>,
    /// Refuse renewals (`disableRenewal`).
    pub disable_renewal: Option<bool>,
    /// Allow renewing an expired certificate (`allowRenewalAfterExpiry`).
    pub allow_renewal_after_expiry: Option<bool>,
    /// Issue SSH certificates (`enableSSHCA`); step-ca's default is off.
    pub enable_ssh_ca: Option<bool>,
}

/// A lifetime range: shortest, default, longest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationBounds {
    /// Shortest allowed.
    pub min: Duration,
    /// Used when the request names none.
    pub default: Duration,
    /// Longest allowed.
    pub max: Duration,
}

impl DurationBounds {
    /// The lifetime to issue for `requested` (or the default), refusing one outside
    /// `min ..= max` with [`Denial::ValidityOutOfBounds`] (which converts into core's
    /// `Error::Unauthorized`, so `authorize` can use `?`).
    pub fn pick(&self, requested: Option<Duration>) -> Result<Duration, Denial> {
        let d = requested.unwrap_or(self.default);
        if d < self.min || d > self.max {
            return Err(Denial::ValidityOutOfBounds);
        }
        Ok(d)
    }
}

/// Claims with every field resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EffectiveClaims {
    /// X.509 lifetimes.
    pub tls: DurationBounds,
    /// SSH user certificate lifetimes.
    pub ssh_user: DurationBounds,
    /// SSH host certificate lifetimes.
    pub ssh_host: DurationBounds,
    /// Renewals refused.
    pub disable_renewal: bool,
    /// Expired certificates may be renewed.
    pub allow_renewal_after_expiry: bool,
    /// SSH certificates may be issued.
    pub enable_ssh_ca: bool,
}

const MINUTE: u64 = 60;
const HOUR: u64 = 60 * MINUTE;

/// step-ca's built-in TLS range (`GlobalProvisionerClaims`): 5 min / 24 h / 24 h.
const BUILT_IN_TLS: DurationBounds = DurationBounds {
    min: Duration::from_secs(5 * MINUTE),
    default: Duration::from_secs(24 * HOUR),
    max: Duration::from_secs(24 * HOUR),
};
/// step-ca's built-in SSH user range: 5 min / 16 h / 24 h.
const BUILT_IN_SSH_USER: DurationBounds = DurationBounds {
    min: Duration::from_secs(5 * MINUTE),
    default: Duration::from_secs(16 * HOUR),
    max: Duration::from_secs(24 * HOUR),
};
/// step-ca's built-in SSH host range: 5 min / 30 days / 30 days.
const BUILT_IN_SSH_HOST: DurationBounds = DurationBounds {
    min: Duration::from_secs(5 * MINUTE),
    default: Duration::from_secs(720 * HOUR),
    max: Duration::from_secs(720 * HOUR),
};

impl Claims {
    /// step-ca's built-in global claims (`GlobalProvisionerClaims`): TLS 5 min / 24 h /
    /// 24 h, SSH user 5 min / 16 h / 24 h, SSH host 5 min / 30 days / 30 days (min /
    /// default / max), renewal allowed (not after expiry), SSH CA off.
    pub const BUILT_IN: Self = Self {
        min_tls_duration: Some(BUILT_IN_TLS.min),
        max_tls_duration: Some(BUILT_IN_TLS.max),
        default_tls_duration: Some(BUILT_IN_TLS.default),
        min_ssh_user_duration: Some(BUILT_IN_SSH_USER.min),
        max_ssh_user_duration: Some(BUILT_IN_SSH_USER.max),
        default_ssh_user_duration: Some(BUILT_IN_SSH_USER.default),
        min_ssh_host_duration: Some(BUILT_IN_SSH_HOST.min),
        max_ssh_host_duration: Some(BUILT_IN_SSH_HOST.max),
        default_ssh_host_duration: Some(BUILT_IN_SSH_HOST.default),
        disable_renewal: Some(false),
        allow_renewal_after_expiry: Some(false),
        enable_ssh_ca: Some(false),
    };

    /// `self` layered over `base`: fields `self` sets win.
    ///
    /// As in step-ca, when `self` sets only a default that lies outside the inherited
    /// range, the inherited min or max is stretched to include it.
    pub fn over(&self, base: &Self) -> Self {
        fn layer(
            min: Option<Duration>,
            default: Option<Duration>,
            max: Option<Duration>,
            base: (Option<Duration>, Option<Duration>, Option<Duration>),
        ) -> (Option<Duration>, Option<Duration>, Option<Duration>) {
            let mut min_out = min.or(base.0);
            let default_out = default.or(base.1);
            let mut max_out = max.or(base.2);
            if let Some(d) = default {
                if min.is_none() {
                    min_out = min_out.map(|m| m.min(d));
                }
                if max.is_none() {
                    max_out = max_out.map(|m| m.max(d));
                }
            }
            (min_out, default_out, max_out)
        }
        let tls = layer(
            self.min_tls_duration,
            self.default_tls_duration,
            self.max_tls_duration,
            (base.min_tls_duration, base.default_tls_duration, base.max_tls_duration),
        );
        let user = layer(
            self.min_ssh_user_duration,
            self.default_ssh_user_duration,
            self.max_ssh_user_duration,
            (
                base.min_ssh_user_duration,
                base.default_ssh_user_duration,
                base.max_ssh_user_duration,
            ),
        );
        let host = layer(
            self.min_ssh_host_duration,
            self.default_ssh_host_duration,
            self.max_ssh_host_duration,
            (
                base.min_ssh_host_duration,
                base.default_ssh_host_duration,
                base.max_ssh_host_duration,
            ),
        );
        Self {
            min_tls_duration: tls.0,
            default_tls_duration: tls.1,
            max_tls_duration: tls.2,
            min_ssh_user_duration: user.0,
            default_ssh_user_duration: user.1,
            max_ssh_user_duration: user.2,
            min_ssh_host_duration: host.0,
            default_ssh_host_duration: host.1,
            max_ssh_host_duration: host.2,
            disable_renewal: self.disable_renewal.or(base.disable_renewal),
            allow_renewal_after_expiry: self
                .allow_renewal_after_expiry
                .or(base.allow_renewal_after_expiry),
            enable_ssh_ca: self.enable_ssh_ca.or(base.enable_ssh_ca),
        }
    }

    /// Resolves every field over [`Claims::BUILT_IN`] and checks that each range is
    /// positive and ordered (min ≤ default ≤ max) — for SSH as well as TLS, where step-ca
    /// checks TLS only. A range that fails is [`Error::InvalidClaims`], naming it.
    pub fn resolve(&self) -> Result<EffectiveClaims, Error> {
        let full = self.over(&Self::BUILT_IN);
        fn bounds(
            certificates: CertificateKind,
            (min, default, max): (Option<Duration>, Option<Duration>, Option<Duration>),
            built_in: DurationBounds,
        ) -> Result<DurationBounds, Error> {
            // Layered over BUILT_IN every field is set; the fallbacks only make that total.
            let min = min.unwrap_or(built_in.min);
            let default = default.unwrap_or(built_in.default);
            let max = max.unwrap_or(built_in.max);
            if min.is_zero() || min > default || default > max {
                return Err(Error::InvalidClaims { certificates, min, default, max });
            }
            Ok(DurationBounds { min, default, max })
        }
        Ok(EffectiveClaims {
            tls: bounds(
                CertificateKind::Tls,
                (full.min_tls_duration, full.default_tls_duration, full.max_tls_duration),
                BUILT_IN_TLS,
            )?,
            ssh_user: bounds(
                CertificateKind::SshUser,
                (
                    full.min_ssh_user_duration,
                    full.default_ssh_user_duration,
                    full.max_ssh_user_duration,
                ),
                BUILT_IN_SSH_USER,
            )?,
            ssh_host: bounds(
                CertificateKind::SshHost,
                (
                    full.min_ssh_host_duration,
                    full.default_ssh_host_duration,
                    full.max_ssh_host_duration,
                ),
                BUILT_IN_SSH_HOST,
            )?,
            disable_renewal: full.disable_renewal.unwrap_or(false),
            allow_renewal_after_expiry: full.allow_renewal_after_expiry.unwrap_or(false),
            enable_ssh_ca: full.enable_ssh_ca.unwrap_or(false),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: Duration = Duration::from_secs(3600);

    #[test]
    fn built_in_claims_resolve_to_step_ca_defaults() {
        let c = Claims::default().resolve().map_err(|e| e.to_string());
        let Ok(c) = c else { panic!("{c:?}") };
        assert_eq!(
            c.tls,
            DurationBounds { min: Duration::from_secs(300), default: 24 * H, max: 24 * H }
        );
        assert_eq!(
            c.ssh_user,
            DurationBounds { min: Duration::from_secs(300), default: 16 * H, max: 24 * H }
        );
        assert_eq!(
            c.ssh_host,
            DurationBounds { min: Duration::from_secs(300), default: 720 * H, max: 720 * H }
        );
        assert!(!c.disable_renewal);
    }

    #[test]
    fn nearest_layer_wins() {
        let authority = Claims {
            max_tls_duration: Some(48 * H),
            disable_renewal: Some(true),
            ..Default::default()
        };
        let provisioner = Claims {
            max_tls_duration: Some(12 * H),
            default_tls_duration: Some(8 * H),
            ..Default::default()
        };
        let c = provisioner.over(&authority).resolve().map_err(|e| e.to_string());
        let Ok(c) = c else { panic!("{c:?}") };
        assert_eq!((c.tls.default, c.tls.max), (8 * H, 12 * H));
        assert!(c.disable_renewal, "inherited from the authority layer");
        let c = Claims::default().over(&authority).resolve().map_err(|e| e.to_string());
        assert_eq!(c.map(|c| c.tls.max), Ok(48 * H), "the authority layer over built-in");
    }

    #[test]
    fn ssh_ca_and_renewal_after_expiry_are_off_unless_a_layer_turns_them_on() {
        let c = Claims::default().resolve().map_err(|e| e.to_string());
        assert_eq!(c.map(|c| (c.enable_ssh_ca, c.allow_renewal_after_expiry)), Ok((false, false)));
        let authority = Claims { enable_ssh_ca: Some(true), ..Default::default() };
        let c = Claims::default().over(&authority).resolve().map_err(|e| e.to_string());
        assert_eq!(c.map(|c| c.enable_ssh_ca), Ok(true));
        let provisioner = Claims { enable_ssh_ca: Some(false), ..Default::default() };
        let c = provisioner.over(&authority).resolve().map_err(|e| e.to_string());
        assert_eq!(c.map(|c| c.enable_ssh_ca), Ok(false), "the provisioner's own word wins");
    }

    #[test]
    fn a_lone_default_stretches_the_inherited_range() {
        let provisioner = Claims { default_tls_duration: Some(72 * H), ..Default::default() };
        let c = provisioner.resolve().map_err(|e| e.to_string());
        assert_eq!(c.map(|c| c.tls.max), Ok(72 * H));
        let short =
            Claims { default_tls_duration: Some(Duration::from_secs(60)), ..Default::default() };
        assert_eq!(short.resolve().map(|c| c.tls.min).ok(), Some(Duration::from_secs(60)));
    }

    #[test]
    fn disordered_or_zero_ranges_are_rejected_for_ssh_too() {
        let bad = Claims { min_ssh_user_duration: Some(30 * H), ..Default::default() };
        assert!(matches!(
            bad.resolve(),
            Err(Error::InvalidClaims { certificates: CertificateKind::SshUser, min, .. })
                if min == 30 * H
        ));
        let zero = Claims { min_tls_duration: Some(Duration::ZERO), ..Default::default() };
        let err = zero.resolve().map_err(|e| e.to_string());
        assert_eq!(
            err.err().as_deref(),
            Some(
                "invalid claims: TLS certificate durations must satisfy 0 < min <= default \
                 <= max, but min is 0ns, default 86400s, max 86400s"
            )
        );
    }

    #[test]
    fn pick_enforces_bounds() {
        let b = DurationBounds { min: H, default: 2 * H, max: 4 * H };
        assert_eq!(b.pick(None), Ok(2 * H));
        assert_eq!(b.pick(Some(3 * H)), Ok(3 * H));
        assert_eq!(b.pick(Some(4 * H)), Ok(4 * H));
        assert_eq!(b.pick(Some(5 * H)), Err(Denial::ValidityOutOfBounds));
        assert_eq!(b.pick(Some(H / 2)), Err(Denial::ValidityOutOfBounds));
        let refused: keystation_core::Error = Denial::ValidityOutOfBounds.into();
        assert_eq!(
            refused.to_string(),
            "unauthorized: requested validity outside the allowed range"
        );
    }
}
