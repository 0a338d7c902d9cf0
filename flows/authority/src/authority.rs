//! The loaded authority: its CA, SSH CAs, store and provisioner registry, and what each
//! API call does with them. Handlers (`api`) only translate HTTP; every check is here.
//!
//! The order of checks on a one-time token is the same for every route, and is what makes
//! keystation stricter than step-ca (research note §7):
//!
//! 1. the body parses and the CSR (or SSH key) is well-formed and self-signed;
//! 2. the provisioner the token names verifies it — signature with the algorithm of *its*
//!    key, `exp` required, lifetime bounded, `nbf`/`iat` with leeway, audience this
//!    authority's URL for *this* route — and grants the request;
//! 3. the request is checked against the grant (CSR names ⊆ the token's `sans`, SSH
//!    principals and certificate type as the token says);
//! 4. only then is the token's `jti` spent, atomically in the store (so a forged or
//!    invalid request cannot burn a victim's token, and replicas sharing PostgreSQL agree);
//! 5. the certificate is issued and recorded before the answer leaves.

use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use keystation_ca::{CaKey, Issuer, LeafTemplate, SshCa, SshCertTemplate, SshCertType};
use keystation_core::key::PublicKey;
use keystation_core::keygen::Signer;
use keystation_core::provisioner::{Credential, Denial, Grant, Operation, Request, TrustedKeys};
use keystation_provisioners::token_checks::LONGEST_TOKEN_LIFETIME;
use keystation_provisioners::{Claims, ProvisionerContext, ProvisionerKind};
use keystation_store::{
    AdminRole, CertificateRecord, NewProvisioner, Revocation, RevocationDetails, Spent,
    SshCertificateRecord, Store,
};
use keystation_x509::Certificate;
use serde::Serialize;
use zeroize::Zeroizing;

use crate::api::ApiError;
use crate::api::bodies::{
    AttestedSignRequest, RevokeRequest, SignResponse, SshPopRequest, SshSignRequest,
};
use crate::config::AuthorityConfig;
use crate::error::Error;
use crate::layout::Layout;
use crate::registry::{Entry, Registry};
use crate::text::{parse_go_duration, serial_hex, ssh_line_from_base64, ssh_line_from_wire};

/// Clock skew tolerated on `nbf`/`iat` (issue 12: 60 s).
pub(crate) const LEEWAY: Duration = keystation_provisioners::token_checks::LEEWAY;

/// How long the API's own TLS certificate lasts; it is issued anew at every start.
const SERVER_CERTIFICATE_LIFETIME: Duration = Duration::from_secs(90 * 24 * 3600);

/// How long a trust-on-first-use record is kept: for good (9999-12-31), until an operator
/// resets it (`keystation authority tofu reset`), as seconds since the epoch.
const TOFU_KEPT_FOR: Duration = Duration::from_secs(253_402_300_799);

/// How often the registry is reloaded from the store, so replicas see each other's changes.
pub(crate) const REGISTRY_REFRESH: Duration = Duration::from_secs(5);

/// Who is calling: the `Host` header, the verified client certificate chain (mTLS), the
/// bearer token.
#[derive(Debug, Clone, Default)]
pub(crate) struct Caller {
    /// The `Host` header.
    pub host: Option<String>,
    /// Client certificates the handshake verified against the root, leaf first.
    pub client_chain: Arc<Vec<Vec<u8>>>,
    /// `Authorization: Bearer …`.
    pub bearer: Option<String>,
}

/// A certificate just issued: its serial (the store's form) and its chain as PEM.
#[cfg(feature = "acme")]
#[derive(Debug, Clone)]
pub(crate) struct IssuedChain {
    pub serial: String,
    pub chain_pem: String,
}

/// An authenticated administrator.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Admin {
    /// The admin's subject (certificate common name or token subject).
    pub subject: String,
    /// The provisioner the admin authenticates through.
    pub provisioner: String,
}

/// The SSH user and host CAs and their public keys (OpenSSH lines).
struct SshCas {
    ca: SshCa,
    user_line: String,
    host_line: String,
}

/// A loaded authority.
pub struct Authority {
    config: AuthorityConfig,
    layout: Layout,
    root: Certificate,
    root_pem: String,
    intermediate: Certificate,
    intermediate_pem: String,
    issuer: Issuer,
    ssh: Option<SshCas>,
    pub(crate) store: Store,
    registry: RwLock<Arc<Registry>>,
    context: ProvisionerContext,
    tls_chain: Vec<Vec<u8>>,
    tls_chain_pem: String,
    tls_key_pkcs8: Zeroizing<Vec<u8>>,
    tls_key_pem: Zeroizing<String>,
    /// The ACME server's validator and settings (`[acme]`).
    #[cfg(feature = "acme")]
    pub(crate) acme: Option<crate::acme::AcmeState>,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority")
            .field("name", &self.config.name)
            .field("address", &self.config.address)
            .field("root", &self.root.subject())
            .finish_non_exhaustive()
    }
}

fn now_unix() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

fn unix(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

fn from_unix(secs: i64) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + Duration::from_secs(secs as u64)
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    }
}

fn read_text(path: &std::path::Path) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|source| Error::Read { path: path.to_owned(), source })
}

/// Refusals from a provisioner: 403 when the credential is good but does not allow the
/// request, 401 otherwise; the message names the check.
fn refusal(provisioner: &str, denial: Denial) -> ApiError {
    tracing::warn!(provisioner, reason = %denial, "request refused");
    match denial {
        Denial::OperationNotAllowed | Denial::PolicyViolation | Denial::ValidityOutOfBounds => {
            ApiError::forbidden(format!("forbidden by provisioner {provisioner:?}: {denial}"))
        }
        _ => {
            ApiError::unauthorized(format!("unauthorized by provisioner {provisioner:?}: {denial}"))
        }
    }
}

fn core_refusal(provisioner: &str, error: keystation_core::Error) -> ApiError {
    match error {
        keystation_core::Error::Unauthorized(denial) => refusal(provisioner, denial),
        other => {
            tracing::warn!(provisioner, error = %other, "request refused");
            ApiError::unauthorized(format!("unauthorized by provisioner {provisioner:?}: {other}"))
        }
    }
}

/// Parses step's time fields: empty, an RFC 3339 time, or a duration from now (`5m`).
fn time_field(value: Option<&str>, now: i64) -> Result<Option<i64>, ApiError> {
    let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) else { return Ok(None) };
    if let Some(d) = parse_go_duration(v) {
        return Ok(Some(now + d));
    }
    crate::text::parse_rfc3339(v).map(Some).ok_or_else(|| {
        ApiError::bad_request(format!("{v:?} is neither an RFC 3339 time nor a duration"))
    })
}

/// A certificate's serial in the store's form.
pub(crate) fn certificate_serial(cert: &Certificate) -> String {
    let hex = cert.serial_hex().to_ascii_lowercase().replace(':', "");
    let trimmed = hex.trim_start_matches('0');
    if trimmed.is_empty() { "0".into() } else { trimmed.to_owned() }
}

impl Authority {
    /// Loads the authority in `layout` with its password. `intermediate_signer` is the
    /// signer of a key in a PIV slot (`IntermediateKey::PivSlot`); for a key file it is
    /// `None` and the password decrypts `secrets/intermediate_ca_key`.
    pub async fn load(
        layout: Layout,
        config: AuthorityConfig,
        password: &[u8],
        intermediate_signer: Option<Box<dyn Signer + Send>>,
    ) -> Result<Self, Error> {
        let root_pem = read_text(&layout.root_certificate())?;
        let root = Certificate::from_pem(&root_pem)?;
        let intermediate_pem = read_text(&layout.intermediate_certificate())?;
        let intermediate = Certificate::from_pem(&intermediate_pem)?;
        let signer = match intermediate_signer {
            Some(signer) => signer,
            None => {
                let pem = Zeroizing::new(read_text(&layout.intermediate_key())?);
                Box::new(CaKey::from_pem(&pem, Some(password))?)
            }
        };
        if signer.public_key() != &intermediate.public_key()? {
            return Err(Error::Config(format!(
                "the intermediate key is not the key of {}",
                layout.intermediate_certificate().display()
            )));
        }
        let issuer = Issuer::new(vec![intermediate.der().to_vec()], signer)?;
        let claims = match &config.claims {
            Some(text) => keystation_provisioners::claims_from_json(text)?,
            None => Claims::default(),
        };
        let mut context = ProvisionerContext::with_claims(claims);
        context.max_token_lifetime = config.max_token_lifetime();
        let ssh = if config.ssh {
            let load = |host: bool| -> Result<CaKey, Error> {
                let pem = Zeroizing::new(read_text(&layout.ssh_key(host))?);
                Ok(CaKey::from_pem(&pem, Some(password))?)
            };
            let (user, host) = (load(false)?, load(true)?);
            context.ssh_user_ca_keys = vec![user.public_key().clone()];
            context.ssh_host_ca_keys = vec![host.public_key().clone()];
            let ca = SshCa::new(Some(Box::new(user)), Some(Box::new(host)))?;
            let user_line = ca.user_public_key().unwrap_or_default().to_owned();
            let host_line = ca.host_public_key().unwrap_or_default().to_owned();
            Some(SshCas { ca, user_line, host_line })
        } else {
            None
        };
        let store = Store::open(&config.database_url(&layout)).await?;
        let registry = Registry::from_configs(
            store.provisioners().await?.into_iter().map(|p| p.config),
            &context,
            None,
        )?;

        // The API's own certificate, for every configured name, with a fresh key.
        let tls_key = CaKey::generate(keystation_core::key::KeyAlgorithm::NistP256)?;
        let tls_spki = tls_key.public_key().to_spki_der();
        let tls_pkcs8 = tls_key.to_pkcs8_der()?;
        let mut template =
            LeafTemplate::new(tls_spki, SystemTime::now() + SERVER_CERTIFICATE_LIFETIME);
        template.common_name = config.dns_names.first().cloned();
        template.sans = keystation_ca::classify_sans(&config.dns_names);
        template.extended_key_usage = vec![keystation_ca::ExtendedKeyUsage::ServerAuth];
        let leaf = issuer.issue_leaf(&template)?;
        let tls_chain = vec![leaf.der.clone(), intermediate.der().to_vec()];
        let tls_chain_pem = format!("{}{}", leaf.pem, intermediate.to_pem());
        let tls_key_pem = Zeroizing::new(keystation_x509::pem::encode("PRIVATE KEY", &tls_pkcs8));
        #[cfg(feature = "acme")]
        let acme = Some(crate::acme::AcmeState::new(&config.acme)?);
        Ok(Self {
            config,
            layout,
            root,
            root_pem,
            intermediate,
            intermediate_pem,
            issuer,
            ssh,
            store,
            registry: RwLock::new(Arc::new(registry)),
            context,
            tls_chain,
            tls_chain_pem,
            tls_key_pkcs8: Zeroizing::new(tls_pkcs8.to_vec()),
            tls_key_pem,
            #[cfg(feature = "acme")]
            acme,
        })
    }

    /// The settings.
    pub fn config(&self) -> &AuthorityConfig {
        &self.config
    }

    /// The state directory.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    pub(crate) fn tls_config(&self, alpn: &[&[u8]]) -> Result<Arc<rustls::ServerConfig>, Error> {
        crate::tls::server_config(
            self.tls_chain.clone(),
            self.tls_key_pkcs8.to_vec(),
            self.root.der(),
            alpn,
        )
    }

    pub(crate) fn tls_identity_pem(&self) -> (String, Zeroizing<String>) {
        (self.tls_chain_pem.clone(), self.tls_key_pem.clone())
    }

    pub(crate) fn registry(&self) -> Arc<Registry> {
        match self.registry.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Reloads the provisioners from the store (after a change, and on a timer so that
    /// replicas converge).
    pub async fn reload_provisioners(&self) -> Result<(), Error> {
        let previous = self.registry();
        let registry = Registry::from_configs(
            self.store.provisioners().await?.into_iter().map(|p| p.config),
            &self.context,
            Some(&previous),
        )?;
        match self.registry.write() {
            Ok(mut guard) => *guard = Arc::new(registry),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(registry),
        }
        Ok(())
    }

    // --- roots and provisioners ---------------------------------------------------------

    pub(crate) fn roots_pem(&self) -> Vec<String> {
        vec![self.root_pem.clone()]
    }

    /// The root whose SHA-256 fingerprint is `sha` (hex, any case, colons allowed).
    pub(crate) fn root_by_fingerprint(&self, sha: &str) -> Option<String> {
        let wanted = sha.replace(':', "").to_ascii_lowercase();
        let have: String =
            self.root.fingerprint_sha256().iter().map(|b| format!("{b:02x}")).collect();
        (wanted == have).then(|| self.root_pem.clone())
    }

    /// One page of `/provisioners`: the cursor is the index to start at.
    pub(crate) fn provisioners_page(
        &self,
        cursor: &str,
        limit: usize,
    ) -> Result<(Vec<serde_json::Value>, String), ApiError> {
        let registry = self.registry();
        let listing = registry.step_listing();
        let start = if cursor.is_empty() {
            0
        } else {
            cursor
                .parse::<usize>()
                .map_err(|_| ApiError::bad_request(format!("cursor {cursor:?} is not valid")))?
        };
        let limit = limit.clamp(1, 100);
        let page: Vec<serde_json::Value> =
            listing.iter().skip(start).take(limit).map(|v| (*v).clone()).collect();
        let end = start + page.len();
        let next = if end < listing.len() { end.to_string() } else { String::new() };
        Ok((page, next))
    }

    pub(crate) fn encrypted_key(&self, kid: &str) -> Option<String> {
        self.registry().encrypted_key(kid)
    }

    // --- authorization ----------------------------------------------------------------------

    /// The audiences a request on `path` may name, the one the client dialled first.
    fn audiences(&self, path: &str, host: Option<&str>) -> Vec<String> {
        let mut bases = self.config.base_urls();
        if let Some(host) = host {
            let dialled = format!("https://{host}");
            if let Some(i) = bases.iter().position(|b| *b == dialled) {
                let b = bases.remove(i);
                bases.insert(0, b);
            }
        }
        bases.into_iter().map(|b| format!("{b}/1.0{path}")).collect()
    }

    /// Authorizes a one-time token for `operation` on `path` (e.g. `/sign`): finds the
    /// provisioner it names and lets it decide, for each audience this authority answers
    /// to. Keys a provisioner fetches come from its cache; a token naming a key the cache
    /// lacks makes one (rate-limited) refetch. Returns the grant and the provisioner's
    /// name; spends nothing.
    async fn authorize_token(
        &self,
        token: &str,
        operation: Operation,
        path: &str,
        host: Option<&str>,
        subject_key: Option<&PublicKey>,
    ) -> Result<(Grant, Entry), ApiError> {
        if token.is_empty() {
            return Err(ApiError::unauthorized("the request carries no token (ott)"));
        }
        let registry = self.registry();
        let candidates = registry.for_token(token);
        if candidates.is_empty() {
            tracing::warn!(path, "token names no known provisioner (issuer or key id unknown)");
            return Err(ApiError::unauthorized(
                "unauthorized: the token names no provisioner of this authority (unknown issuer or key id)",
            ));
        }
        let now = SystemTime::now();
        // Several provisioners may claim a token (two OIDC provisioners of one client ID,
        // a K8sSA by keys and one by TokenReview): each is tried; the first grant wins.
        // When all refuse, the client hears the refusal of the one that got furthest — a
        // policy or lifetime refusal after its signature verified says more than another
        // provisioner's "unknown signing key".
        let mut best: Option<(u8, ApiError)> = None;
        for entry in candidates {
            let refusal = match self
                .authorize_with(entry, token, operation, path, host, subject_key, now)
                .await
            {
                Ok(grant) => return Ok((grant, entry.clone())),
                Err(refusal) => refusal,
            };
            if best.as_ref().is_none_or(|(rank, _)| refusal.0 > *rank) {
                best = Some(refusal);
            }
        }
        Err(best.map_or_else(|| ApiError::unauthorized("unauthorized"), |(_, error)| error))
    }

    /// One provisioner's answer for a token: a grant, or its refusal ranked by how far the
    /// token got (0: its keys could not be fetched; 1: not this provisioner's token —
    /// issuer, key, signature, audience, malformed; 2: verified, and refused).
    #[allow(clippy::too_many_arguments)]
    async fn authorize_with(
        &self,
        entry: &Entry,
        token: &str,
        operation: Operation,
        path: &str,
        host: Option<&str>,
        subject_key: Option<&PublicKey>,
        now: SystemTime,
    ) -> Result<Grant, (u8, ApiError)> {
        let rank = |error: &keystation_core::Error| match error {
            keystation_core::Error::Unauthorized(
                Denial::UnknownKey
                | Denial::BadSignature
                | Denial::WrongIssuer
                | Denial::WrongAudience
                | Denial::Malformed,
            ) => 1,
            _ => 2,
        };
        let mut keys = self.trusted_keys(entry, token).await.map_err(|e| (0, e))?;
        let mut refetched = false;
        let audiences = self.audiences(path, host);
        let mut last = None;
        let mut i = 0;
        while let Some(audience) = audiences.get(i) {
            let request =
                Request { credential: Credential::Token(token), operation, audience, subject_key };
            match entry.provisioner.authorize(&request, &keys, now) {
                Ok(grant) => return Ok(grant),
                Err(keystation_core::Error::Unauthorized(Denial::UnknownKey))
                    if !refetched && entry.keys.is_some() =>
                {
                    refetched = true;
                    match self.refetch_keys(entry).await.map_err(|e| (0, e))? {
                        // The same audience again, with the fresh keys.
                        Some(fresh) => keys = fresh,
                        None => {
                            let error = keystation_core::Error::Unauthorized(Denial::UnknownKey);
                            return Err((rank(&error), core_refusal(&entry.name, error)));
                        }
                    }
                }
                Err(keystation_core::Error::Unauthorized(Denial::WrongAudience)) => {
                    last = Some(keystation_core::Error::Unauthorized(Denial::WrongAudience));
                    i += 1;
                }
                Err(error) => return Err((rank(&error), core_refusal(&entry.name, error))),
            }
        }
        let error = last.unwrap_or(keystation_core::Error::Unauthorized(Denial::WrongAudience));
        Err((rank(&error), core_refusal(&entry.name, error)))
    }

    /// The keys `entry` verifies `token` with: none for configured keys, else from its
    /// cache (fetched when stale). A source that cannot be reached refuses the request with
    /// a message naming it (no secret: URLs only).
    async fn trusted_keys(&self, entry: &Entry, token: &str) -> Result<TrustedKeys, ApiError> {
        let Some(cache) = &entry.keys else { return Ok(TrustedKeys::default()) };
        cache.keys_for(token).await.map_err(|error| {
            tracing::warn!(provisioner = %entry.name, %error, "cannot fetch the provisioner's keys");
            ApiError::unavailable(format!(
                "provisioner {:?} cannot fetch the keys it verifies with: {error}",
                entry.name
            ))
        })
    }

    /// A forced refetch after an unknown `kid`, at most once per interval.
    async fn refetch_keys(&self, entry: &Entry) -> Result<Option<TrustedKeys>, ApiError> {
        let Some(cache) = &entry.keys else { return Ok(None) };
        cache.refetch_for_unknown_kid().await.map_err(|error| {
            tracing::warn!(provisioner = %entry.name, %error, "cannot refetch the provisioner's keys");
            ApiError::unavailable(format!(
                "provisioner {:?} cannot fetch the keys it verifies with: {error}",
                entry.name
            ))
        })
    }

    /// Spends the grant's single-use id, refusing a replay. Called only once everything
    /// about the request has been checked. A trust-on-first-use id (a cloud instance's
    /// first certificate) is kept until an operator resets it; a token id until the token
    /// could no longer verify.
    async fn spend(&self, grant: &Grant) -> Result<(), ApiError> {
        let Some(jti) = &grant.replay_id else { return Ok(()) };
        // A token is worthless after its `exp`, which lies at most the bounded lifetime
        // plus the leeway ahead: keep the record until then. Provisioners whose tokens
        // live longer (ID tokens, cloud identity tokens) bound them themselves; keep their
        // ids for the longest such lifetime.
        let keep_until = if keystation_provisioners::is_tofu_id(jti) {
            UNIX_EPOCH + TOFU_KEPT_FOR
        } else {
            SystemTime::now()
                + self.config.max_token_lifetime().max(LONGEST_TOKEN_LIFETIME)
                + 2 * LEEWAY
        };
        match self.store.spend_token(&grant.provisioner, jti, keep_until).await {
            Ok(Spent::Fresh) => Ok(()),
            Ok(Spent::Replayed) => {
                tracing::warn!(provisioner = %grant.provisioner, "token replayed");
                Err(ApiError::unauthorized(format!(
                    "unauthorized by provisioner {:?}: {}",
                    grant.provisioner,
                    Denial::Replayed
                )))
            }
            Err(error) => Err(ApiError::internal(&error)),
        }
    }

    /// A static token presented by a station to the worker service.
    pub(crate) fn authorize_station(&self, token: Option<&str>) -> Result<String, Denial> {
        let token =
            token.map(|t| t.strip_prefix("Bearer ").unwrap_or(t)).ok_or(Denial::Malformed)?;
        let registry = self.registry();
        let now = SystemTime::now();
        let mut denial = Denial::UnknownKey;
        for entry in registry.static_tokens() {
            let request = Request {
                credential: Credential::Token(token),
                operation: Operation::TakeJobs,
                audience: "grpc",
                subject_key: None,
            };
            match entry.provisioner.authorize(&request, &TrustedKeys::default(), now) {
                Ok(_) => return Ok(entry.name.clone()),
                Err(keystation_core::Error::Unauthorized(d)) => denial = d,
                Err(_) => denial = Denial::Malformed,
            }
        }
        Err(denial)
    }

    // --- X.509 ------------------------------------------------------------------------------

    fn check_csr(csr: &str) -> Result<keystation_ca::CheckedCsr, ApiError> {
        keystation_ca::check_csr(csr.as_bytes())
            .map_err(|e| ApiError::bad_request(format!("invalid certificate request: {e}")))
    }

    fn response(&self, leaf_pem: String) -> SignResponse {
        SignResponse {
            crt: leaf_pem.clone(),
            ca: self.intermediate_pem.clone(),
            cert_chain: vec![leaf_pem, self.intermediate_pem.clone()],
        }
    }

    /// Records an issued certificate; the answer leaves only once the record is stored.
    async fn record(
        &self,
        issued: &keystation_ca::IssuedCertificate,
        provisioner: &str,
    ) -> Result<SignResponse, ApiError> {
        let cert = Certificate::from_der(&issued.der).map_err(|e| ApiError::internal(&e))?;
        let record = CertificateRecord {
            serial: issued.serial.to_hex(),
            provisioner: provisioner.to_owned(),
            subject: cert.subject_common_name().unwrap_or_default().to_owned(),
            sans: cert.subject_alt_names().iter().map(keystation_ca::san_value).collect(),
            not_before: issued.not_before,
            not_after: issued.not_after,
            pem: issued.pem.clone(),
        };
        self.store.record_certificate(&record).await.map_err(|e| ApiError::internal(&e))?;
        tracing::info!(provisioner, serial = %record.serial, subject = %record.subject, "certificate issued");
        Ok(self.response(issued.pem.clone()))
    }

    /// Issues a leaf from `template`, records it, and gives its serial and its chain (PEM,
    /// leaf then intermediate) — for ACME, which answers with the chain.
    #[cfg(feature = "acme")]
    pub(crate) async fn issue_and_record_pem(
        &self,
        template: &LeafTemplate,
        provisioner: &str,
    ) -> Result<IssuedChain, ApiError> {
        let issued = self.issuer.issue_leaf(template).map_err(|e| ApiError::internal(&e))?;
        self.record(&issued, provisioner).await?;
        Ok(IssuedChain {
            serial: issued.serial.to_hex(),
            chain_pem: format!("{}{}", issued.pem, self.intermediate_pem),
        })
    }

    /// Whether this authority's intermediate issued `cert`.
    #[cfg(feature = "acme")]
    pub(crate) fn issuer_verifies(&self, cert: &Certificate) -> Result<(), ApiError> {
        self.issuer
            .verify_issued(cert.der())
            .map_err(|_| ApiError::unauthorized("the certificate was not issued by this authority"))
    }

    async fn issue_and_record(
        &self,
        template: LeafTemplate,
        provisioner: &str,
    ) -> Result<SignResponse, ApiError> {
        let issued = self.issuer.issue_leaf(&template).map_err(|e| ApiError::internal(&e))?;
        self.record(&issued, provisioner).await
    }

    /// `/sign`.
    pub(crate) async fn sign_x509(
        &self,
        csr: &str,
        ott: &str,
        not_before: Option<&str>,
        not_after: Option<&str>,
        host: Option<&str>,
    ) -> Result<SignResponse, ApiError> {
        let csr = Self::check_csr(csr)?;
        let (grant, entry) = self
            .authorize_token(ott, Operation::SignX509, "/sign", host, Some(&csr.public_key))
            .await?;
        // Every name the request asks for must be one the token allows.
        if let Some(name) = csr.sans.iter().find(|s| !grant.sans.contains(s)) {
            tracing::warn!(provisioner = %entry.name, name = %name, "CSR names a SAN the token does not allow");
            return Err(ApiError::forbidden(format!(
                "certificate request names {name:?}, which the token does not allow (token sans: {:?})",
                grant.sans
            )));
        }
        if let Some(cn) = csr.common_name.as_deref().filter(|cn| !cn.is_empty())
            && cn != grant.subject
            && !grant.sans.iter().any(|s| s == cn)
        {
            return Err(ApiError::forbidden(format!(
                "certificate request common name {cn:?} is neither the token's subject nor one of its sans"
            )));
        }
        let now = now_unix();
        let (grant_nb, grant_na) = (unix(grant.not_before), unix(grant.not_after));
        let nb = time_field(not_before, now)?.unwrap_or(grant_nb);
        let na = time_field(not_after, now)?.unwrap_or(nb + (grant_na - grant_nb));
        // A requested validity must fit what the provisioner's claims allow.
        let bounds = entry.provisioner.effective_claims().map(|c| c.tls);
        let allowed = match bounds {
            Some(b) => {
                na > nb
                    && (na - nb) as u64 <= b.max.as_secs()
                    && (na - nb) as u64 >= b.min.as_secs()
            }
            None => na > nb && na <= grant_na,
        };
        if !allowed || nb < now - 3600 {
            return Err(ApiError::forbidden(format!(
                "the requested validity lies outside what provisioner {:?} allows",
                entry.name
            )));
        }
        self.spend(&grant).await?;
        let mut template = LeafTemplate::new(csr.spki_der.clone(), from_unix(na));
        template.not_before = Some(from_unix(nb));
        template.common_name = Some(grant.subject.clone());
        template.sans = keystation_ca::classify_sans(&grant.sans);
        self.issue_and_record(template, &entry.name).await
    }

    /// The certificate a renew, rekey or mTLS revoke is for: the mTLS client certificate,
    /// else the leaf of a bearer token's `x5cInsecure` header (verified by the token's own
    /// signature); it must be issued by this intermediate, unexpired and not revoked.
    async fn presented_certificate(
        &self,
        caller: &Caller,
        path: &str,
    ) -> Result<Certificate, ApiError> {
        let der = if let Some(leaf) = caller.client_chain.first() {
            leaf.clone()
        } else if let Some(token) = &caller.bearer {
            let audiences = self.audiences(path, caller.host.as_deref());
            keystation_provisioners::verify_x5c_insecure(
                token,
                &audiences,
                self.intermediate.der(),
                SystemTime::now(),
                self.config.max_token_lifetime(),
            )
            .map_err(|d| {
                tracing::warn!(reason = %d, path, "renewal token refused");
                ApiError::unauthorized(format!("unauthorized: renewal token: {d}"))
            })?
        } else {
            return Err(ApiError::unauthorized(
                "unauthorized: no client certificate and no bearer token",
            ));
        };
        let cert = Certificate::from_der(&der)
            .map_err(|e| ApiError::bad_request(format!("client certificate: {e}")))?;
        self.issuer.verify_issued(cert.der()).map_err(|_| {
            ApiError::unauthorized("unauthorized: the certificate was not issued by this authority")
        })?;
        if !cert.is_valid_at(now_unix()) {
            return Err(ApiError::unauthorized("unauthorized: the certificate has expired"));
        }
        let serial = certificate_serial(&cert);
        if self.store.is_revoked(&serial).await.map_err(|e| ApiError::internal(&e))? {
            tracing::warn!(%serial, path, "revoked certificate presented");
            return Err(ApiError::unauthorized(format!(
                "unauthorized: certificate {serial} has been revoked"
            )));
        }
        Ok(cert)
    }

    async fn provisioner_of(&self, cert: &Certificate) -> Result<String, ApiError> {
        let serial = certificate_serial(cert);
        Ok(self
            .store
            .certificate(&serial)
            .await
            .map_err(|e| ApiError::internal(&e))?
            .map(|r| r.provisioner)
            .unwrap_or_default())
    }

    /// `/renew`: same subject, names, key and duration; new serial and validity.
    pub(crate) async fn renew_x509(&self, caller: &Caller) -> Result<SignResponse, ApiError> {
        let cert = self.presented_certificate(caller, "/renew").await?;
        let provisioner = self.provisioner_of(&cert).await?;
        if self.registry().by_name(&provisioner).is_some_and(|e| e.provisioner.renewal_disabled()) {
            return Err(ApiError::unauthorized(format!(
                "renewal is disabled for provisioner {provisioner:?}"
            )));
        }
        let issued =
            self.issuer.renew(cert.der(), SystemTime::now()).map_err(|e| ApiError::internal(&e))?;
        self.record(&issued, &provisioner).await
    }

    /// `/rekey`: as renew, for the CSR's new key (mTLS only, as step-ca).
    pub(crate) async fn rekey_x509(
        &self,
        caller: &Caller,
        csr: &str,
    ) -> Result<SignResponse, ApiError> {
        if caller.client_chain.is_empty() {
            return Err(ApiError::unauthorized(
                "unauthorized: rekey needs the current certificate over mTLS",
            ));
        }
        let csr = Self::check_csr(csr)?;
        let cert = self.presented_certificate(caller, "/rekey").await?;
        let provisioner = self.provisioner_of(&cert).await?;
        let issued = self
            .issuer
            .rekey(cert.der(), &csr.spki_der, SystemTime::now())
            .map_err(|e| ApiError::bad_request(format!("rekey: {e}")))?;
        self.record(&issued, &provisioner).await
    }

    /// `/revoke`: by one-time token (whose subject is the serial) or over mTLS with the
    /// certificate being revoked.
    pub(crate) async fn revoke_x509(
        &self,
        caller: &Caller,
        req: &RevokeRequest,
    ) -> Result<(), ApiError> {
        let serial = serial_hex(&req.serial).ok_or_else(|| {
            ApiError::bad_request(format!(
                "serial {:?} is not a decimal or 0x-hex number",
                req.serial
            ))
        })?;
        let reason_code = u8::try_from(req.reason_code)
            .ok()
            .filter(|c| *c <= 10 && *c != 7)
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "reason code {} is not an RFC 5280 reason",
                    req.reason_code
                ))
            })?;
        let (provisioner, mtls, grant) = if !req.ott.is_empty() {
            let (grant, entry) = self
                .authorize_token(
                    &req.ott,
                    Operation::RevokeX509,
                    "/revoke",
                    caller.host.as_deref(),
                    None,
                )
                .await?;
            if serial_hex(&grant.subject).as_deref() != Some(serial.as_str()) {
                return Err(ApiError::unauthorized(format!(
                    "unauthorized: the token is for serial {:?}, not {:?}",
                    grant.subject, req.serial
                )));
            }
            (entry.name, false, Some(grant))
        } else {
            let Some(leaf) = caller.client_chain.first() else {
                return Err(ApiError::unauthorized(
                    "unauthorized: revoke needs a token (ott) or the certificate over mTLS",
                ));
            };
            let cert = Certificate::from_der(leaf)
                .map_err(|e| ApiError::bad_request(format!("client certificate: {e}")))?;
            if certificate_serial(&cert) != serial {
                return Err(ApiError::bad_request(
                    "serial number in the client certificate differs from the one in the request",
                ));
            }
            self.issuer.verify_issued(cert.der()).map_err(|_| {
                ApiError::unauthorized(
                    "unauthorized: the certificate was not issued by this authority",
                )
            })?;
            (self.provisioner_of(&cert).await?, true, None)
        };
        if let Some(grant) = &grant {
            self.spend(grant).await?;
        }
        let details = RevocationDetails {
            reason_code,
            reason: req.reason.clone(),
            revoked_at: SystemTime::now(),
            provisioner: provisioner.clone(),
            mtls,
        };
        match self.store.revoke(&serial, &details).await.map_err(|e| ApiError::internal(&e))? {
            Revocation::Revoked => {
                tracing::info!(%provisioner, %serial, "certificate revoked");
                Ok(())
            }
            Revocation::AlreadyRevoked => Err(ApiError::bad_request(format!(
                "certificate with serial number {} is already revoked",
                req.serial
            ))),
        }
    }

    /// `/crl`: every revoked, unexpired serial, signed by the intermediate (DER and PEM).
    pub(crate) async fn crl(&self) -> Result<(Vec<u8>, String), ApiError> {
        let revoked = self.store.revocations().await.map_err(|e| ApiError::internal(&e))?;
        let number = self.store.next_crl_number().await.map_err(|e| ApiError::internal(&e))?;
        let now = SystemTime::now();
        let mut entries = Vec::new();
        for r in revoked.iter().filter(|r| r.not_after.is_none_or(|t| t > now)) {
            let serial =
                keystation_ca::Serial::from_hex(&r.serial).map_err(|e| ApiError::internal(&e))?;
            let reason = keystation_ca::RevocationReason::from_code(r.details.reason_code)
                .unwrap_or_default();
            entries.push(keystation_ca::RevokedEntry {
                serial,
                revoked_at: r.details.revoked_at,
                reason,
            });
        }
        let template = keystation_ca::CrlTemplate {
            number,
            this_update: now,
            next_update: now + Duration::from_secs(24 * 3600),
            revoked: entries,
        };
        let crl = self.issuer.issue_crl(&template).map_err(|e| ApiError::internal(&e))?;
        Ok((crl.der, crl.pem))
    }

    // --- SSH ----------------------------------------------------------------------------

    fn ssh_cas(&self) -> Result<&SshCas, ApiError> {
        self.ssh
            .as_ref()
            .ok_or_else(|| ApiError::not_found("this authority has no SSH CA (init --ssh)"))
    }

    /// `/ssh/roots`: the CA keys' wire encodings in base64.
    pub(crate) fn ssh_roots(&self) -> Option<(Vec<String>, Vec<String>)> {
        let ssh = self.ssh.as_ref()?;
        let b64 = |line: &str| line.split_whitespace().nth(1).unwrap_or_default().to_owned();
        Some((vec![b64(&ssh.user_line)], vec![b64(&ssh.host_line)]))
    }

    async fn record_ssh(
        &self,
        cert: &keystation_ca::SshCertificate,
        provisioner: &str,
    ) -> Result<String, ApiError> {
        let record = SshCertificateRecord {
            serial: cert.serial,
            key_id: cert.key_id.clone(),
            principals: cert.principals.clone(),
            cert_type: match cert.cert_type {
                SshCertType::User => keystation_store::SshCertType::User,
                SshCertType::Host => keystation_store::SshCertType::Host,
            },
            not_after: cert.valid_before,
            provisioner: provisioner.to_owned(),
            certificate: cert.line.clone(),
        };
        self.store.record_ssh_certificate(&record).await.map_err(|e| ApiError::internal(&e))?;
        tracing::info!(provisioner, serial = cert.serial, key_id = %cert.key_id, kind = cert.cert_type.name(), "SSH certificate issued");
        Ok(cert.line.split_whitespace().nth(1).unwrap_or_default().to_owned())
    }

    /// `/ssh/sign`.
    pub(crate) async fn ssh_sign(
        &self,
        req: &SshSignRequest,
        host: Option<&str>,
    ) -> Result<String, ApiError> {
        let ssh = self.ssh_cas()?;
        let cert_type = match req.cert_type.as_str() {
            "" | "user" => SshCertType::User,
            "host" => SshCertType::Host,
            other => {
                return Err(ApiError::bad_request(format!(
                    "certType {other:?} is neither user nor host"
                )));
            }
        };
        let public_key = ssh_line_from_base64(&req.public_key)
            .map_err(|e| ApiError::bad_request(format!("publicKey: {e}")))?;
        let operation = match cert_type {
            SshCertType::User => Operation::SignSshUser,
            SshCertType::Host => Operation::SignSshHost,
        };
        let (grant, entry) =
            self.authorize_token(&req.ott, operation, "/ssh/sign", host, None).await?;
        let principals =
            if req.principals.is_empty() { grant.sans.clone() } else { req.principals.clone() };
        if let Some(p) = principals.iter().find(|p| !grant.sans.contains(p)) {
            tracing::warn!(provisioner = %entry.name, principal = %p, "SSH principal not allowed by the token");
            return Err(ApiError::forbidden(format!(
                "principal {p:?} is not allowed by the token (allowed: {:?})",
                grant.sans
            )));
        }
        if !req.key_id.is_empty() && req.key_id != grant.subject {
            return Err(ApiError::forbidden(format!(
                "keyID {:?} differs from the token's {:?}",
                req.key_id, grant.subject
            )));
        }
        let now = now_unix();
        let after = time_field(req.valid_after.as_deref(), now)?.unwrap_or(unix(grant.not_before));
        let before = time_field(req.valid_before.as_deref(), now)?.unwrap_or(unix(grant.not_after));
        if before <= after || before > unix(grant.not_after) || after < unix(grant.not_before) - 60
        {
            return Err(ApiError::forbidden(
                "the requested SSH validity lies outside what the provisioner allows",
            ));
        }
        self.spend(&grant).await?;
        let template = SshCertTemplate::new(
            cert_type,
            public_key,
            grant.subject.clone(),
            principals,
            from_unix(after),
            from_unix(before),
        );
        let cert = ssh
            .ca
            .sign(&template)
            .map_err(|e| ApiError::bad_request(format!("SSH certificate: {e}")))?;
        self.record_ssh(&cert, &entry.name).await
    }

    /// The SSH certificate an SSHPOP token presents, as an OpenSSH line.
    fn sshpop_certificate(token: &str) -> Result<String, ApiError> {
        let wire = keystation_provisioners::SshPopProvisioner::presented_certificate(token)
            .ok_or_else(|| ApiError::bad_request("the token carries no sshpop certificate"))?;
        ssh_line_from_wire(&wire)
            .map_err(|e| ApiError::bad_request(format!("sshpop certificate: {e}")))
    }

    /// `/ssh/renew` and `/ssh/rekey`: SSHPOP proves possession of a host certificate.
    pub(crate) async fn ssh_renew_or_rekey(
        &self,
        req: &SshPopRequest,
        rekey: bool,
        host: Option<&str>,
    ) -> Result<String, ApiError> {
        let ssh = self.ssh_cas()?;
        let (operation, path) = if rekey {
            (Operation::RekeySsh, "/ssh/rekey")
        } else {
            (Operation::RenewSsh, "/ssh/renew")
        };
        let (grant, entry) = self.authorize_token(&req.ott, operation, path, host, None).await?;
        let line = Self::sshpop_certificate(&req.ott)?;
        let current = keystation_ca::SshCertificate::parse(&line)
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        if self.store.is_ssh_revoked(current.serial).await.map_err(|e| ApiError::internal(&e))? {
            return Err(ApiError::unauthorized(format!(
                "unauthorized: SSH certificate {} has been revoked",
                current.serial
            )));
        }
        let new_key = if rekey {
            let key = req
                .public_key
                .as_deref()
                .ok_or_else(|| ApiError::bad_request("rekey needs publicKey"))?;
            Some(
                ssh_line_from_base64(key)
                    .map_err(|e| ApiError::bad_request(format!("publicKey: {e}")))?,
            )
        } else {
            None
        };
        self.spend(&grant).await?;
        let now = SystemTime::now();
        let cert = match &new_key {
            Some(key) => ssh.ca.rekey(&line, key, now),
            None => ssh.ca.renew(&line, now),
        }
        .map_err(|e| ApiError::unauthorized(format!("unauthorized: {e}")))?;
        self.record_ssh(&cert, &entry.name).await
    }

    /// `/ssh/revoke`.
    pub(crate) async fn ssh_revoke(
        &self,
        req: &SshPopRequest,
        host: Option<&str>,
    ) -> Result<(), ApiError> {
        self.ssh_cas()?;
        let serial: u64 = req.serial.as_deref().and_then(|s| s.parse().ok()).ok_or_else(|| {
            ApiError::bad_request("serial must be a decimal SSH certificate serial")
        })?;
        let reason_code = u8::try_from(req.reason_code)
            .ok()
            .filter(|c| *c <= 10 && *c != 7)
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "reason code {} is not an RFC 5280 reason",
                    req.reason_code
                ))
            })?;
        let (grant, entry) =
            self.authorize_token(&req.ott, Operation::RevokeSsh, "/ssh/revoke", host, None).await?;
        if grant.subject != serial.to_string() {
            return Err(ApiError::unauthorized(format!(
                "unauthorized: the token is for serial {:?}",
                grant.subject
            )));
        }
        self.spend(&grant).await?;
        let details = RevocationDetails {
            reason_code,
            reason: req.reason.clone(),
            revoked_at: SystemTime::now(),
            provisioner: entry.name.clone(),
            mtls: false,
        };
        match self.store.revoke_ssh(serial, &details).await.map_err(|e| ApiError::internal(&e))? {
            Revocation::Revoked => Ok(()),
            Revocation::AlreadyRevoked => {
                Err(ApiError::bad_request(format!("SSH certificate {serial} is already revoked")))
            }
        }
    }

    // --- attested enrollment ------------------------------------------------------------

    /// `/sign-attested`: a CSR whose key a PIV attestation proves to be on a card.
    pub(crate) async fn sign_attested(
        &self,
        req: &AttestedSignRequest,
    ) -> Result<SignResponse, ApiError> {
        let csr = Self::check_csr(&req.csr)?;
        let registry = self.registry();
        let entry = registry
            .by_name(&req.provisioner)
            .filter(|e| e.kind == ProvisionerKind::YubiKeyAttestation)
            .ok_or_else(|| {
                ApiError::unauthorized(format!(
                    "no attestation provisioner named {:?}",
                    req.provisioner
                ))
            })?;
        let der = |pem: &str, what: &str| {
            Certificate::from_pem(pem)
                .map(|c| c.der().to_vec())
                .map_err(|e| ApiError::bad_request(format!("{what}: {e}")))
        };
        let slot = der(&req.attestation.slot_certificate, "attestation slotCertificate")?;
        let intermediate = der(&req.attestation.intermediate, "attestation intermediate")?;
        let audience = format!(
            "{}/1.0/sign-attested",
            self.config.base_urls().into_iter().next().unwrap_or_default()
        );
        let request = Request {
            credential: Credential::Attestation {
                slot_certificate: &slot,
                intermediate: &intermediate,
            },
            operation: Operation::SignX509,
            audience: &audience,
            subject_key: Some(&csr.public_key),
        };
        let grant = entry
            .provisioner
            .authorize(&request, &TrustedKeys::default(), SystemTime::now())
            .map_err(|e| core_refusal(&entry.name, e))?;
        let mut template = LeafTemplate::new(csr.spki_der.clone(), grant.not_after);
        template.not_before = Some(grant.not_before);
        template.common_name = Some(grant.subject.clone());
        template.sans = keystation_ca::classify_sans(&grant.sans);
        template.extended_key_usage = vec![keystation_ca::ExtendedKeyUsage::ClientAuth];
        self.issue_and_record(template, &entry.name).await
    }

    // --- administration -----------------------------------------------------------------

    /// An admin: a client certificate whose common name is a registered admin, or a
    /// token of a provisioner with that admin's subject (audience `/admin`).
    pub(crate) async fn authenticate_admin(&self, caller: &Caller) -> Result<Admin, ApiError> {
        let admins = self.store.admins().await.map_err(|e| ApiError::internal(&e))?;
        if let Some(leaf) = caller.client_chain.first() {
            let cert = Certificate::from_der(leaf)
                .map_err(|e| ApiError::bad_request(format!("client certificate: {e}")))?;
            let serial = certificate_serial(&cert);
            if self.store.is_revoked(&serial).await.map_err(|e| ApiError::internal(&e))? {
                return Err(ApiError::unauthorized(
                    "unauthorized: the admin certificate has been revoked",
                ));
            }
            let cn = cert.subject_common_name().unwrap_or_default();
            let issued_by = self.provisioner_of(&cert).await?;
            if let Some(a) = admins.iter().find(|a| a.subject == cn && a.provisioner == issued_by) {
                return Ok(Admin {
                    subject: a.subject.clone(),
                    provisioner: a.provisioner.clone(),
                });
            }
            return Err(ApiError::forbidden(format!("{cn:?} is not an admin of this authority")));
        }
        let Some(token) = &caller.bearer else {
            return Err(ApiError::unauthorized(
                "unauthorized: the admin API needs an admin certificate or token",
            ));
        };
        let (grant, _) = self
            .authorize_token(token, Operation::Administer, "/admin", caller.host.as_deref(), None)
            .await?;
        let Some(admin) = admins
            .iter()
            .find(|a| a.subject == grant.subject && a.provisioner == grant.provisioner)
        else {
            return Err(ApiError::forbidden(format!(
                "{:?} is not an admin of provisioner {:?}",
                grant.subject, grant.provisioner
            )));
        };
        self.spend(&grant).await?;
        Ok(Admin { subject: admin.subject.clone(), provisioner: admin.provisioner.clone() })
    }

    pub(crate) async fn admin_provisioners(&self) -> Result<Vec<serde_json::Value>, ApiError> {
        Ok(self.registry().entries().iter().map(|e| e.config.as_ref().clone()).collect())
    }

    pub(crate) async fn add_provisioner(
        &self,
        config: &serde_json::Value,
        who: &Admin,
    ) -> Result<(), ApiError> {
        let text = config.to_string();
        let provisioner = keystation_provisioners::provisioner_from_json_with(
            &text,
            &self.context,
            &crate::registry::factories(),
        )
        .map_err(|e| ApiError::bad_request(format!("provisioner: {e}")))?;
        let new = NewProvisioner {
            name: provisioner.name().to_owned(),
            kind: provisioner.kind().type_name().to_owned(),
            config: text.clone(),
        };
        self.store.add_provisioner(&new).await.map_err(|e| match e {
            keystation_store::Error::AlreadyExists { .. } => ApiError::bad_request(e.to_string()),
            e => ApiError::internal(&e),
        })?;
        tracing::info!(admin = %who.subject, provisioner = provisioner.name(), "provisioner added");
        self.reload_provisioners().await.map_err(ApiError::from)
    }

    pub(crate) async fn update_provisioner(
        &self,
        name: &str,
        config: &serde_json::Value,
        who: &Admin,
    ) -> Result<(), ApiError> {
        let text = config.to_string();
        let provisioner = keystation_provisioners::provisioner_from_json_with(
            &text,
            &self.context,
            &crate::registry::factories(),
        )
        .map_err(|e| ApiError::bad_request(format!("provisioner: {e}")))?;
        if provisioner.name() != name {
            return Err(ApiError::bad_request("a provisioner's name cannot change"));
        }
        self.store.update_provisioner(name, provisioner.kind().type_name(), &text).await.map_err(
            |e| match e {
                keystation_store::Error::NotFound { .. } => ApiError::not_found(e.to_string()),
                e => ApiError::internal(&e),
            },
        )?;
        tracing::info!(admin = %who.subject, provisioner = name, "provisioner updated");
        self.reload_provisioners().await.map_err(ApiError::from)
    }

    pub(crate) async fn remove_provisioner(&self, name: &str, who: &Admin) -> Result<(), ApiError> {
        self.store.remove_provisioner(name).await.map_err(|e| match e {
            keystation_store::Error::NotFound { .. } => ApiError::not_found(e.to_string()),
            e => ApiError::internal(&e),
        })?;
        tracing::info!(admin = %who.subject, provisioner = name, "provisioner removed");
        self.reload_provisioners().await.map_err(ApiError::from)
    }

    pub(crate) async fn admins(&self) -> Result<Vec<serde_json::Value>, ApiError> {
        let admins = self.store.admins().await.map_err(|e| ApiError::internal(&e))?;
        Ok(admins
            .into_iter()
            .map(|a| serde_json::json!({ "subject": a.subject, "provisioner": a.provisioner, "type": a.role.to_string() }))
            .collect())
    }

    pub(crate) async fn add_admin(
        &self,
        subject: &str,
        provisioner: &str,
        role: Option<&str>,
        who: &Admin,
    ) -> Result<serde_json::Value, ApiError> {
        if self.registry().by_name(provisioner).is_none() {
            return Err(ApiError::bad_request(format!("no provisioner named {provisioner:?}")));
        }
        let role = match role {
            None => AdminRole::Admin,
            Some(name) => name.parse::<AdminRole>().map_err(|_| {
                ApiError::bad_request(format!(
                    "admin type {name:?} is neither ADMIN nor SUPER_ADMIN"
                ))
            })?,
        };
        self.store.add_admin(subject, provisioner, role).await.map_err(|e| match e {
            keystation_store::Error::AlreadyExists { .. } => ApiError::bad_request(e.to_string()),
            e => ApiError::internal(&e),
        })?;
        tracing::info!(admin = %who.subject, subject, provisioner, "admin added");
        Ok(
            serde_json::json!({ "subject": subject, "provisioner": provisioner, "type": role.to_string() }),
        )
    }

    pub(crate) async fn remove_admin(
        &self,
        subject: &str,
        provisioner: Option<&str>,
        who: &Admin,
    ) -> Result<(), ApiError> {
        let admins = self.store.admins().await.map_err(|e| ApiError::internal(&e))?;
        let matching: Vec<_> = admins
            .iter()
            .filter(|a| a.subject == subject && provisioner.is_none_or(|p| a.provisioner == p))
            .collect();
        let target = match matching.as_slice() {
            [one] => one.provisioner.clone(),
            [] => return Err(ApiError::not_found(format!("no admin {subject:?}"))),
            _ => {
                return Err(ApiError::bad_request(format!(
                    "{subject:?} is an admin of several provisioners: name one (?provisioner=NAME)"
                )));
            }
        };
        self.store.remove_admin(subject, &target).await.map_err(|e| ApiError::internal(&e))?;
        tracing::info!(admin = %who.subject, subject, provisioner = %target, "admin removed");
        Ok(())
    }

    pub(crate) async fn jobs(&self) -> Result<Vec<serde_json::Value>, ApiError> {
        let jobs = self.store.list_jobs().await.map_err(|e| ApiError::internal(&e))?;
        Ok(jobs.iter().map(job_json).collect())
    }

    pub(crate) async fn job(&self, id: u32) -> Result<Option<serde_json::Value>, ApiError> {
        Ok(self.store.job(id).await.map_err(|e| ApiError::internal(&e))?.as_ref().map(job_json))
    }

    pub(crate) async fn add_job(
        &self,
        job: &crate::api::bodies::NewJob,
    ) -> Result<serde_json::Value, ApiError> {
        if job.email.is_empty() || !job.email.contains('@') {
            return Err(ApiError::bad_request(format!(
                "email {:?} is not an e-mail address",
                job.email
            )));
        }
        let new = keystation_store::NewJob {
            worker: job.worker.clone(),
            first_name: job.first_name.clone(),
            last_name: job.last_name.clone(),
            email: job.email.clone(),
        };
        let stored = self.store.add_job(&new).await.map_err(|e| ApiError::internal(&e))?;
        Ok(job_json(&stored))
    }
}

/// A job as the API and `authority job show` print it: times in RFC 3339 (as step-ca's
/// JSON has them), `finishedBy` the station that reported it.
pub fn job_json(job: &keystation_store::Job) -> serde_json::Value {
    let time = |t: SystemTime| keystation_jose::step_time::format_rfc3339(unix(t));
    serde_json::json!({
        "id": job.id,
        "worker": job.worker,
        "firstName": job.first_name,
        "lastName": job.last_name,
        "email": job.email,
        "status": job.status.to_string(),
        "publicKey": job.public_key,
        "sshKey": job.ssh_key,
        "yubikeySerial": job.yubikey_serial,
        "error": job.error,
        "createdAt": time(job.created_at),
        "finishedAt": job.finished_at.map(time),
        "finishedBy": job.finished_by,
    })
}
