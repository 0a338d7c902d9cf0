//! Certificate revocation lists (RFC 5280 §5): v2 CRLs signed by the issuing CA, with a
//! CRL number and authority key identifier, and a reason code on each entry.

use std::time::SystemTime;

use x509_cert::crl::{CertificateList, RevokedCert, TbsCertList};
use x509_cert::der::Encode;
use x509_cert::der::asn1::{BitString, Uint};
use x509_cert::ext::pkix::{CrlNumber, CrlReason};
use x509_cert::serial_number::SerialNumber;

use crate::cert::{self, bad};
use crate::{Error, Issuer, Serial};

const OID_CRL_NUMBER: &str = "2.5.29.20";
const OID_CRL_REASON: &str = "2.5.29.21";

/// Why a certificate was revoked: the CRLReason of RFC 5280 §5.3.1 (code 7 is unused);
/// step-ca's `/1.0/revoke` takes the same codes as `reasonCode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum RevocationReason {
    /// 0; written as no reason-code extension at all (RFC 5280 §5.3.1: "SHOULD be absent
    /// instead of using the unspecified (0) reasonCode value").
    #[default]
    Unspecified,
    /// 1.
    KeyCompromise,
    /// 2.
    CaCompromise,
    /// 3.
    AffiliationChanged,
    /// 4.
    Superseded,
    /// 5.
    CessationOfOperation,
    /// 6.
    CertificateHold,
    /// 8.
    RemoveFromCrl,
    /// 9.
    PrivilegeWithdrawn,
    /// 10.
    AaCompromise,
}

impl RevocationReason {
    const ALL: [Self; 10] = [
        Self::Unspecified,
        Self::KeyCompromise,
        Self::CaCompromise,
        Self::AffiliationChanged,
        Self::Superseded,
        Self::CessationOfOperation,
        Self::CertificateHold,
        Self::RemoveFromCrl,
        Self::PrivilegeWithdrawn,
        Self::AaCompromise,
    ];

    /// The reason's code.
    pub const fn code(self) -> u8 {
        match self {
            Self::Unspecified => 0,
            Self::KeyCompromise => 1,
            Self::CaCompromise => 2,
            Self::AffiliationChanged => 3,
            Self::Superseded => 4,
            Self::CessationOfOperation => 5,
            Self::CertificateHold => 6,
            Self::RemoveFromCrl => 8,
            Self::PrivilegeWithdrawn => 9,
            Self::AaCompromise => 10,
        }
    }

    /// The reason with this code; `None` for 7 and above 10.
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.code() == code)
    }

    fn x509(self) -> CrlReason {
        match self {
            Self::Unspecified => CrlReason::Unspecified,
            Self::KeyCompromise => CrlReason::KeyCompromise,
            Self::CaCompromise => CrlReason::CaCompromise,
            Self::AffiliationChanged => CrlReason::AffiliationChanged,
            Self::Superseded => CrlReason::Superseded,
            Self::CessationOfOperation => CrlReason::CessationOfOperation,
            Self::CertificateHold => CrlReason::CertificateHold,
            Self::RemoveFromCrl => CrlReason::RemoveFromCRL,
            Self::PrivilegeWithdrawn => CrlReason::PrivilegeWithdrawn,
            Self::AaCompromise => CrlReason::AaCompromise,
        }
    }
}

/// One revoked certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedEntry {
    /// The certificate's serial.
    pub serial: Serial,
    /// When it was revoked.
    pub revoked_at: SystemTime,
    /// Why.
    pub reason: RevocationReason,
}

/// What a CRL should say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlTemplate {
    /// The CRL number (RFC 5280 §5.2.3): increases with every CRL the CA issues.
    pub number: u64,
    /// When this CRL was issued.
    pub this_update: SystemTime,
    /// When the next one will be, at the latest.
    pub next_update: SystemTime,
    /// The revoked certificates (not expired ones only, if the caller wants a short
    /// list).
    pub revoked: Vec<RevokedEntry>,
}

/// A signed CRL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crl {
    /// The `CertificateList` DER.
    pub der: Vec<u8>,
    /// The same as a PEM `X509 CRL` block (RFC 7468 §6).
    pub pem: String,
}

impl Issuer {
    /// Issues a v2 CRL (RFC 5280 §5.1) signed by this issuer: its name as issuer,
    /// `thisUpdate`/`nextUpdate`, the revoked serials with their dates and reason codes
    /// (§5.3.1; none for "unspecified"), and the CRL extensions AuthorityKeyIdentifier
    /// (§5.2.1) and CRLNumber (§5.2.3), both non-critical.
    pub fn issue_crl(&self, template: &CrlTemplate) -> Result<Crl, Error> {
        let this_update = cert::unix(template.this_update)?;
        let next_update = cert::unix(template.next_update)?;
        if next_update <= this_update {
            return Err(bad("next_update is not after this_update"));
        }
        let mut revoked = Vec::with_capacity(template.revoked.len());
        for entry in &template.revoked {
            let extensions = match entry.reason {
                RevocationReason::Unspecified => None,
                reason => Some(vec![cert::extension(OID_CRL_REASON, false, &reason.x509())?]),
            };
            revoked.push(RevokedCert {
                serial_number: SerialNumber::new(&entry.serial.to_der_contents()).map_err(bad)?,
                revocation_date: cert::x509_time(cert::unix(entry.revoked_at)?)?,
                crl_entry_extensions: extensions,
            });
        }
        let number = Uint::new(&template.number.to_be_bytes()).map_err(bad)?;
        let extensions = vec![
            cert::authority_key_id(self.key_id())?,
            cert::extension(OID_CRL_NUMBER, false, &CrlNumber(number))?,
        ];
        let der = self.with_signer(|signer| {
            let algorithm = cert::signature_algorithm(signer)?;
            let tbs = TbsCertList {
                version: x509_cert::Version::V2,
                signature: algorithm.clone(),
                issuer: self.name().clone(),
                this_update: cert::x509_time(this_update)?,
                next_update: Some(cert::x509_time(next_update)?),
                revoked_certificates: if revoked.is_empty() { None } else { Some(revoked) },
                crl_extensions: Some(extensions),
            };
            let body = tbs.to_der().map_err(bad)?;
            let signature = keystation_x509::sign_tbs(signer, &body)?;
            CertificateList {
                tbs_cert_list: tbs,
                signature_algorithm: algorithm,
                signature: BitString::from_bytes(&signature).map_err(bad)?,
            }
            .to_der()
            .map_err(bad)
        })?;
        Ok(Crl { pem: keystation_x509::pem::encode("X509 CRL", &der), der })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reason_codes() {
        for reason in RevocationReason::ALL {
            assert_eq!(RevocationReason::from_code(reason.code()), Some(reason));
            assert_eq!(reason.x509() as u32, u32::from(reason.code()));
        }
        assert_eq!(RevocationReason::from_code(7), None);
        assert_eq!(RevocationReason::from_code(11), None);
    }
}
