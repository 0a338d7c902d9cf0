//! The issuing CA: an intermediate certificate and the signer holding its key, issuing
//! leaf certificates from templates (step-ca's `x509util.DefaultLeafTemplate`), renewing
//! and rekeying them (step-ca's `authority.Rekey`).

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use keystation_core::key::PublicKey;
use keystation_core::keygen::Signer;
use keystation_x509::{Certificate, ExtendedKeyUsage, SubjectAltName, pem};
use x509_cert::der::Encode;
use x509_cert::ext::Extension;
use x509_cert::name::Name;

use crate::cert::{self, KeyUsage, TbsParts};
use crate::csr::{CheckedCsr, check_key};
use crate::extension::CustomExtension;
use crate::{Error, Serial};

/// How far back step-ca dates a certificate's `notBefore` (its default `backdate`), so
/// that a client whose clock is a little behind accepts it at once.
pub const BACKDATE: Duration = Duration::from_secs(60);

/// What a leaf certificate should say; the [`Issuer`] adds the serial, issuer, key
/// identifiers and signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafTemplate {
    /// The subject's common name; `None` gives an empty subject, and then the SAN
    /// extension is critical (RFC 5280 §4.2.1.6).
    pub common_name: Option<String>,
    /// Subject alternative names (see [`classify_sans`](crate::classify_sans) for step-ca's
    /// reading of plain strings).
    pub sans: Vec<SubjectAltName>,
    /// Extended key usage; step-ca's default is serverAuth and clientAuth. Empty leaves
    /// the extension out.
    pub extended_key_usage: Vec<ExtendedKeyUsage>,
    /// Key usage; `None` is step-ca's default for the key: digitalSignature, plus
    /// keyEncipherment for RSA.
    pub key_usage: Option<Vec<KeyUsage>>,
    /// Start of validity; `None` is the time of issue less [`BACKDATE`].
    pub not_before: Option<SystemTime>,
    /// End of validity.
    pub not_after: SystemTime,
    /// The subject key as a DER SubjectPublicKeyInfo (a CSR's, unchanged).
    pub spki_der: Vec<u8>,
    /// Further extensions, written after the others as given (step-ca's
    /// [`ProvisionerExtension`](crate::ProvisionerExtension), say). An OID the issuer
    /// writes itself, or one given twice, is refused.
    pub extra_extensions: Vec<CustomExtension>,
}

impl LeafTemplate {
    /// A template for `spki_der` valid until `not_after`, with step-ca's defaults and no
    /// names yet.
    pub fn new(spki_der: Vec<u8>, not_after: SystemTime) -> Self {
        Self {
            common_name: None,
            sans: Vec::new(),
            extended_key_usage: vec![ExtendedKeyUsage::ServerAuth, ExtendedKeyUsage::ClientAuth],
            key_usage: None,
            not_before: None,
            not_after,
            spki_der,
            extra_extensions: Vec::new(),
        }
    }

    /// A template with the common name, SANs and key of a checked request.
    pub fn from_csr(csr: &CheckedCsr, not_after: SystemTime) -> Self {
        Self {
            common_name: csr.common_name.clone(),
            sans: csr.typed_sans.clone(),
            ..Self::new(csr.spki_der.clone(), not_after)
        }
    }
}

/// A certificate the CA made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedCertificate {
    /// The certificate's DER.
    pub der: Vec<u8>,
    /// The same as a PEM `CERTIFICATE` block.
    pub pem: String,
    /// Its serial number.
    pub serial: Serial,
    /// Start of validity (whole seconds).
    pub not_before: SystemTime,
    /// End of validity (whole seconds).
    pub not_after: SystemTime,
}

/// The issuing CA: the intermediate certificate (with any certificates above it short of
/// the root) and the signer holding its key — a [`CaKey`](crate::CaKey) or a key on a
/// card.
///
/// The signer sits behind a mutex, so one `Issuer` serves many threads through `&self`
/// (it is `Send + Sync`); signatures are made one at a time, which a card requires anyway.
pub struct Issuer {
    chain: Vec<Vec<u8>>,
    name: Name,
    key_id: Vec<u8>,
    public_key: PublicKey,
    signer: Mutex<Box<dyn Signer + Send>>,
}

impl core::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Issuer")
            .field("subject", &self.name.to_string())
            .field("key", &self.public_key)
            .field("chain_len", &self.chain.len())
            .finish_non_exhaustive()
    }
}

impl Issuer {
    /// An issuer for `chain` (DER; the first certificate is the issuing CA's, then the
    /// ones above it, without the root) signing through `signer`, which must hold the
    /// first certificate's key ([`Error::SignerMismatch`] otherwise). The first
    /// certificate must be a CA certificate.
    pub fn new(chain: Vec<Vec<u8>>, signer: Box<dyn Signer + Send>) -> Result<Self, Error> {
        let first = chain.first().ok_or_else(|| Error::Certificate("empty chain".into()))?;
        let parsed = Certificate::from_der(first)?;
        if !parsed.is_ca() {
            return Err(Error::Certificate(format!(
                "{} is not a CA certificate (BasicConstraints cA is not set)",
                parsed.subject()
            )));
        }
        let public_key = parsed.public_key()?;
        if &public_key != signer.public_key() {
            return Err(Error::SignerMismatch("intermediate certificate's"));
        }
        for der in &chain[1..] {
            Certificate::from_der(der)?;
        }
        // The AKI of what it issues: its own SKI when it has one, else computed the same
        // way step-ca computes SKIs.
        let key_id = match parsed.extension(cert::OID_SUBJECT_KEY_ID) {
            Some(value) => {
                use x509_cert::der::Decode as _;
                x509_cert::ext::pkix::SubjectKeyIdentifier::from_der(value)
                    .map_err(|e| Error::Certificate(format!("subject key identifier: {e}")))?
                    .0
                    .into_bytes()
            }
            None => cert::key_identifier(parsed.spki_der())?,
        };
        let name = cert::name(parsed.subject_der())?;
        Ok(Self { chain, name, key_id, public_key, signer: Mutex::new(signer) })
    }

    /// [`new`](Self::new) from the PEM `CERTIFICATE` blocks of `chain_pem`, in order.
    pub fn from_pem(chain_pem: &str, signer: Box<dyn Signer + Send>) -> Result<Self, Error> {
        let chain = Certificate::all_from_pem(chain_pem)?.into_iter().map(|c| c.to_der()).collect();
        Self::new(chain, signer)
    }

    /// The issuing CA's certificate (DER).
    pub fn certificate_der(&self) -> &[u8] {
        &self.chain[0]
    }

    /// The chain as given: the issuing CA's certificate first.
    pub fn chain_der(&self) -> &[Vec<u8>] {
        &self.chain
    }

    /// The chain as concatenated PEM `CERTIFICATE` blocks.
    pub fn chain_pem(&self) -> String {
        self.chain.iter().map(|der| pem::encode("CERTIFICATE", der)).collect()
    }

    /// The issuing key.
    pub fn public_key(&self) -> &PublicKey {
        &self.public_key
    }

    /// Signs a TBS through the signer.
    pub(crate) fn with_signer<T>(
        &self,
        f: impl FnOnce(&mut dyn Signer) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let mut signer = self.signer.lock().map_err(|_| Error::SignerPoisoned)?;
        f(signer.as_mut())
    }

    pub(crate) fn name(&self) -> &Name {
        &self.name
    }

    pub(crate) fn key_id(&self) -> &[u8] {
        &self.key_id
    }

    /// Issues a leaf certificate from `template` at the current time.
    pub fn issue_leaf(&self, template: &LeafTemplate) -> Result<IssuedCertificate, Error> {
        self.issue_leaf_at(template, SystemTime::now())
    }

    /// Issues a leaf certificate from `template`, as if at `now` (the default
    /// `notBefore` is `now` less [`BACKDATE`]).
    ///
    /// The certificate has a random 128-bit serial; the subject `CN=<common name>`; the
    /// extensions KeyUsage (critical), ExtendedKeyUsage, SubjectKeyIdentifier (SHA-1 of
    /// the key, RFC 5280 §4.2.1.2), AuthorityKeyIdentifier (the issuer's key identifier)
    /// and SubjectAltName, as step-ca writes them. The key must be one
    /// [`check_csr`](crate::check_csr) accepts, and the certificate must name someone (a
    /// common name or a SAN).
    pub fn issue_leaf_at(
        &self,
        template: &LeafTemplate,
        now: SystemTime,
    ) -> Result<IssuedCertificate, Error> {
        let key = check_key(&template.spki_der)?;
        let common_name = template.common_name.as_deref().filter(|cn| !cn.is_empty());
        if common_name.is_none() && template.sans.is_empty() {
            return Err(Error::template("a certificate needs a common name or a SAN"));
        }
        let not_before = match template.not_before {
            Some(t) => cert::unix(t)?,
            None => cert::unix(now)?.saturating_sub(BACKDATE.as_secs()),
        };
        let not_after = cert::unix(template.not_after)?;
        if not_after <= not_before {
            return Err(Error::template("not_after is not after not_before"));
        }
        let subject = match common_name {
            Some(cn) => keystation_x509::DistinguishedName::common_name(cn),
            None => keystation_x509::DistinguishedName::new(),
        };
        let subject = cert::name(&subject.to_der()?)?;
        let usages = match &template.key_usage {
            Some(usages) => usages.clone(),
            None => KeyUsage::defaults_for(key.algorithm()),
        };
        let mut extensions = Vec::new();
        extensions.extend(cert::leaf_key_usage(&usages)?);
        extensions.extend(cert::ext_key_usage(&template.extended_key_usage)?);
        extensions.push(cert::subject_key_id(&cert::key_identifier(&template.spki_der)?)?);
        extensions.push(cert::authority_key_id(&self.key_id)?);
        extensions.extend(cert::subject_alt_name(&template.sans, common_name.is_none())?);
        for extra in &template.extra_extensions {
            let oid = cert::oid(&extra.oid)?;
            if extensions.iter().any(|e| e.extn_id == oid) {
                return Err(Error::template(format!("extension {} is given twice", extra.oid)));
            }
            extensions.push(x509_cert::ext::Extension {
                extn_id: oid,
                critical: extra.critical,
                extn_value: x509_cert::der::asn1::OctetString::new(extra.value.clone())
                    .map_err(cert::bad)?,
            });
        }
        self.sign_leaf(subject, &template.spki_der, not_before, not_after, extensions)
    }

    fn sign_leaf(
        &self,
        subject: Name,
        spki_der: &[u8],
        not_before: u64,
        not_after: u64,
        extensions: Vec<Extension>,
    ) -> Result<IssuedCertificate, Error> {
        let serial = Serial::random()?;
        let parts = TbsParts {
            issuer: self.name.clone(),
            subject,
            spki_der,
            serial: &serial,
            not_before,
            not_after,
            extensions,
        };
        let der = self.with_signer(|signer| cert::sign_certificate(signer, parts))?;
        Ok(IssuedCertificate {
            pem: pem::encode("CERTIFICATE", &der),
            der,
            serial,
            not_before: cert::from_unix(not_before),
            not_after: cert::from_unix(not_after),
        })
    }

    /// Renews `old` (DER) at `now`, as step-ca's `Renew`: the same subject, key and
    /// extensions (the authority key identifier replaced by this issuer's), a new serial,
    /// and the same validity length starting at `now` less [`BACKDATE`].
    pub fn renew(&self, old: &[u8], now: SystemTime) -> Result<IssuedCertificate, Error> {
        self.reissue(old, None, now)
    }

    /// Rekeys `old` (DER) at `now` for the key `new_spki_der`, as step-ca's `Rekey`: as
    /// [`renew`](Self::renew), with the new key and its own subject key identifier.
    pub fn rekey(
        &self,
        old: &[u8],
        new_spki_der: &[u8],
        now: SystemTime,
    ) -> Result<IssuedCertificate, Error> {
        check_key(new_spki_der)?;
        self.reissue(old, Some(new_spki_der), now)
    }

    fn reissue(
        &self,
        old: &[u8],
        new_key: Option<&[u8]>,
        now: SystemTime,
    ) -> Result<IssuedCertificate, Error> {
        let parsed = cert::parse(old)?;
        let tbs = parsed.tbs_certificate;
        let start = tbs.validity.not_before.to_unix_duration().as_secs();
        let end = tbs.validity.not_after.to_unix_duration().as_secs();
        if end <= start {
            return Err(Error::Certificate("the certificate has no validity period".into()));
        }
        let not_before = cert::unix(now)?.saturating_sub(BACKDATE.as_secs());
        let not_after = not_before.saturating_add(end - start);
        let old_spki = tbs.subject_public_key_info.to_der().map_err(cert::bad)?;
        let spki_der = new_key.map_or(old_spki, <[u8]>::to_vec);
        let aki_oid = cert::oid(cert::OID_AUTHORITY_KEY_ID)?;
        let ski_oid = cert::oid(cert::OID_SUBJECT_KEY_ID)?;
        let mut extensions = Vec::new();
        let mut had_aki = false;
        for extension in tbs.extensions.unwrap_or_default() {
            if extension.extn_id == aki_oid {
                extensions.push(cert::authority_key_id(&self.key_id)?);
                had_aki = true;
            } else if extension.extn_id == ski_oid && new_key.is_some() {
                extensions.push(cert::subject_key_id(&cert::key_identifier(&spki_der)?)?);
            } else {
                extensions.push(extension);
            }
        }
        if !had_aki {
            extensions.push(cert::authority_key_id(&self.key_id)?);
        }
        self.sign_leaf(tbs.subject, &spki_der, not_before, not_after, extensions)
    }

    /// Checks that `der` was signed by this issuer's key, with this issuer's name
    /// (RFC 5280 §6.1.3 (a)(1), (a)(4)); validity is not checked.
    pub fn verify_issued(&self, der: &[u8]) -> Result<(), Error> {
        keystation_x509::verify_signed_by(der, self.certificate_der())?;
        Ok(())
    }
}
