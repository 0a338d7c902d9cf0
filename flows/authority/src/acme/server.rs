//! What each ACME request does with the store and the CA (RFC 8555 §7).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::http::StatusCode;
use keystation_acme::envelope::{AcmeRequest, KeyRef, VerifiedRequest};
use keystation_acme::messages::{
    AccountStatus, AccountUpdate, AuthorizationStatus, ChallengeStatus, ChallengeType,
    DeviceAttestPayload, Finalize, Identifier, IdentifierType, NewAccount, NewOrder, OrderStatus,
    RevokeCert,
};
use keystation_acme::problem::{Problem, ProblemType};
use keystation_acme::{AcmeProvisioner, identifiers, key_authorization};
use keystation_acme_va::{AddressPolicy, ValidationConfig, Validator};
use keystation_jose::Jwk;
use keystation_store::{
    AcmeAccountCreated, AcmeAccountRecord, AcmeAuthorizationRecord, AcmeCertificateRecord,
    AcmeChallengeRecord, AcmeOrderRecord, KeyChange, Revocation, RevocationDetails,
};
use keystation_x509::{Certificate, SubjectAltName};

use super::render;
use super::reply::{Reply, internal, problem};
use crate::authority::Authority;
use crate::config::AcmeSettings;
use crate::error::Error;

/// How long a nonce may wait for its request.
const NONCE_LIFETIME: Duration = Duration::from_secs(3600);
/// How long an order and its authorizations stay usable (Let's Encrypt gives 7 days to
/// pending authorizations; step-ca 24 hours).
const ORDER_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// What a client is told to wait before polling a challenge or order being processed.
pub(super) const POLL_AFTER_SECONDS: u64 = 1;

/// The ACME server's own state: the validator of challenges, built from `[acme]`.
#[derive(Debug)]
pub(crate) struct AcmeState {
    pub(super) validator: Validator,
    pub(super) settings: AcmeSettings,
}

impl AcmeState {
    /// The state for `settings`; a bad network in `allow`/`deny` is a configuration error.
    pub(crate) fn new(settings: &AcmeSettings) -> Result<Self, Error> {
        let policy = AddressPolicy::parse(&settings.allow, &settings.deny)
            .map_err(|e| Error::Config(format!("[acme] allow/deny: {e}")))?;
        let config = ValidationConfig {
            http01_port: settings.http01_port,
            tls_alpn01_port: settings.tls_alpn01_port,
            resolver: settings.resolver,
            policy,
            timeout: Duration::from_secs(settings.timeout_seconds.max(1)),
            ..ValidationConfig::default()
        };
        let validator =
            Validator::new(config).map_err(|e| Error::Config(format!("[acme] resolver: {e}")))?;
        Ok(Self { validator, settings: settings.clone() })
    }
}

/// Where a request arrived: the provisioner's base URL (`https://host/acme/NAME`), the
/// full URL of this request, and the provisioner's name.
#[derive(Debug, Clone)]
pub(super) struct Endpoint {
    pub(super) base: String,
    pub(super) url: String,
    pub(super) provisioner: String,
}

impl Endpoint {
    pub(super) fn account_url(&self, id: &str) -> String {
        format!("{}/account/{id}", self.base)
    }
    pub(super) fn order_url(&self, id: &str) -> String {
        format!("{}/order/{id}", self.base)
    }
    pub(super) fn authz_url(&self, id: &str) -> String {
        format!("{}/authz/{id}", self.base)
    }
    pub(super) fn challenge_url(&self, authz: &str, id: &str) -> String {
        format!("{}/challenge/{authz}/{id}", self.base)
    }
    pub(super) fn certificate_url(&self, id: &str) -> String {
        format!("{}/certificate/{id}", self.base)
    }
}

type AcmeResult<T> = Result<T, Problem>;

/// A new random identifier (128 bits, base64url): nonces and the ids in URLs.
fn new_id() -> AcmeResult<String> {
    key_authorization::new_token().map_err(|e| internal(&e))
}

/// `with_http_status`: the same problem answered with another HTTP status (404 for an
/// unknown resource, 409 for a key already in use).
trait WithHttpStatus {
    fn with_http_status(self, status: u16) -> Self;
}

impl WithHttpStatus for Problem {
    fn with_http_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }
}

/// An external account key that binds an account already (RFC 8555 §7.3.4: one key, one
/// account).
fn eab_key_taken(key_id: &str) -> Problem {
    problem(
        ProblemType::Unauthorized,
        format!("external account key {key_id:?} is already bound to an account"),
    )
}

/// 404 for a resource that does not exist or is not the requesting account's: the two are
/// not told apart, so an account cannot learn which ids other accounts hold.
fn not_found(what: &str, id: &str) -> Problem {
    Problem::new(ProblemType::Malformed, format!("{what} {id:?} does not exist"))
        .with_http_status(404)
}

fn store_error(e: keystation_store::Error) -> Problem {
    internal(&e)
}

fn envelope_problem(e: keystation_acme::Error) -> Problem {
    e.problem()
}

/// The `kid` an external account binding names (its protected header, read before the
/// MAC is checked so that the key can be fetched).
fn binding_key_id(binding: &keystation_acme::messages::FlattenedJws) -> AcmeResult<String> {
    use base64::Engine as _;
    let malformed =
        |why: &str| problem(ProblemType::Malformed, format!("externalAccountBinding: {why}"));
    let header = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&binding.protected)
        .map_err(|_| malformed("the protected header is not base64url"))?;
    let header: serde_json::Value = serde_json::from_slice(&header)
        .map_err(|_| malformed("the protected header is not JSON"))?;
    header
        .get("kid")
        .and_then(|k| k.as_str())
        .filter(|k| !k.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| malformed("the protected header names no \"kid\""))
}

/// A request verified against an account.
struct AccountRequest {
    account: AcmeAccountRecord,
    request: VerifiedRequest,
}

fn from_unix(secs: i64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs.max(0) as u64)
}

impl Authority {
    /// The ACME provisioner the path names.
    pub(super) fn acme_provisioner(&self, endpoint: &Endpoint) -> AcmeResult<Arc<AcmeProvisioner>> {
        self.registry().by_name(&endpoint.provisioner).and_then(|e| e.acme.clone()).ok_or_else(
            || {
                Problem::new(
                    ProblemType::Malformed,
                    format!("there is no ACME provisioner named {:?}", endpoint.provisioner),
                )
                .with_http_status(404)
            },
        )
    }

    /// A fresh nonce, stored so that any replica accepts it once.
    pub(super) async fn acme_fresh_nonce(&self) -> Option<String> {
        let nonce = new_id().ok()?;
        match self.store.acme_add_nonce(&nonce, SystemTime::now() + NONCE_LIFETIME).await {
            Ok(()) => Some(nonce),
            Err(e) => {
                tracing::error!(error = %e, "cannot store an ACME nonce");
                None
            }
        }
    }

    /// `GET directory` (RFC 8555 §7.1.1).
    pub(super) fn acme_directory(&self, endpoint: &Endpoint) -> AcmeResult<Reply> {
        let provisioner = self.acme_provisioner(endpoint)?;
        Ok(Reply::json(render::directory(endpoint, provisioner.require_eab())))
    }

    // --- authentication -----------------------------------------------------------------

    /// Parses the envelope and checks its `url` (RFC 8555 §6.4).
    fn acme_parse(endpoint: &Endpoint, body: &[u8]) -> AcmeResult<AcmeRequest> {
        let request = keystation_acme::envelope::parse_request(body).map_err(envelope_problem)?;
        if request.protected().url != endpoint.url {
            return Err(problem(
                ProblemType::Unauthorized,
                format!(
                    "the JWS url {:?} is not the URL of this request ({:?})",
                    request.protected().url,
                    endpoint.url
                ),
            ));
        }
        Ok(request)
    }

    /// Spends the request's nonce (after its signature verified): badNonce when it is
    /// unknown, expired or spent (RFC 8555 §6.5).
    async fn acme_spend_nonce(&self, nonce: &str) -> AcmeResult<()> {
        if self.store.acme_use_nonce(nonce, SystemTime::now()).await.map_err(store_error)? {
            Ok(())
        } else {
            Err(problem(ProblemType::BadNonce, "the nonce is unknown, expired or already used"))
        }
    }

    /// A request signed by an existing, valid account (`kid`, RFC 8555 §6.2).
    async fn acme_authenticate(
        &self,
        endpoint: &Endpoint,
        body: &[u8],
    ) -> AcmeResult<AccountRequest> {
        let request = Self::acme_parse(endpoint, body)?;
        let KeyRef::Kid(kid) = &request.protected().key else {
            return Err(problem(
                ProblemType::Malformed,
                "this request must be signed with the account's key and name it as \"kid\"",
            ));
        };
        let id = kid.strip_prefix(&format!("{}/account/", endpoint.base)).ok_or_else(|| {
            problem(
                ProblemType::AccountDoesNotExist,
                format!("{kid:?} is not an account URL of this provisioner"),
            )
        })?;
        let account = self
            .store
            .acme_account(&endpoint.provisioner, id)
            .await
            .map_err(store_error)?
            .ok_or_else(|| {
                problem(ProblemType::AccountDoesNotExist, format!("account {id:?} does not exist"))
            })?;
        let key = Jwk::from_json(&account.key_jwk).map_err(|e| internal(&e))?;
        let verified = request.verify(&key).map_err(envelope_problem)?;
        self.acme_spend_nonce(&verified.protected().nonce).await?;
        if account.status != AccountStatus::Valid.as_str() {
            return Err(problem(
                ProblemType::Unauthorized,
                format!("account {id:?} is {}", account.status),
            ));
        }
        Ok(AccountRequest { account, request: verified })
    }

    // --- accounts (RFC 8555 §7.3) -------------------------------------------------------

    /// `POST new-account`.
    pub(super) async fn acme_new_account(
        &self,
        endpoint: &Endpoint,
        body: &[u8],
    ) -> AcmeResult<Reply> {
        let provisioner = self.acme_provisioner(endpoint)?;
        let request = Self::acme_parse(endpoint, body)?;
        let KeyRef::Jwk(jwk) = &request.protected().key else {
            return Err(problem(
                ProblemType::Malformed,
                "newAccount must be signed with the new key, carried as \"jwk\"",
            ));
        };
        let jwk = jwk.clone();
        let verified = request.verify(&jwk).map_err(envelope_problem)?;
        self.acme_spend_nonce(&verified.protected().nonce).await?;
        let payload = NewAccount::from_json(verified.payload()).map_err(envelope_problem)?;
        let thumbprint = jwk.thumbprint();

        if let Some(existing) = self
            .store
            .acme_account_by_key(&endpoint.provisioner, &thumbprint)
            .await
            .map_err(store_error)?
        {
            let url = endpoint.account_url(&existing.id);
            return Ok(Reply::json(render::account(endpoint, &existing)).at(url));
        }
        if payload.only_return_existing == Some(true) {
            return Err(problem(ProblemType::AccountDoesNotExist, "no account has this key"));
        }
        check_contacts(&payload.contact)?;

        let id = new_id()?;
        let eab_key_id = match (&payload.external_account_binding, provisioner.require_eab()) {
            (None, true) => {
                return Err(problem(
                    ProblemType::ExternalAccountRequired,
                    format!(
                        "provisioner {:?} requires an external account binding",
                        endpoint.provisioner
                    ),
                ));
            }
            (None, false) => None,
            (Some(binding), _) => {
                Some(self.acme_check_external_account(endpoint, binding, &jwk).await?)
            }
        };
        let record = AcmeAccountRecord {
            id: id.clone(),
            provisioner: endpoint.provisioner.clone(),
            key_thumbprint: thumbprint,
            key_jwk: jwk.to_json(),
            status: AccountStatus::Valid.as_str().to_owned(),
            contact: payload.contact.clone(),
            eab_key_id,
            created_at: SystemTime::now(),
        };
        match self.store.acme_create_account(&record).await.map_err(store_error)? {
            AcmeAccountCreated::Created(account) => {
                tracing::info!(provisioner = %endpoint.provisioner, account = %account.id, "ACME account created");
                Ok(Reply::created(
                    render::account(endpoint, &account),
                    endpoint.account_url(&account.id),
                ))
            }
            // Another request with the same key won the race.
            AcmeAccountCreated::Existing(account) => {
                let url = endpoint.account_url(&account.id);
                Ok(Reply::json(render::account(endpoint, &account)).at(url))
            }
            // Another account took the key since it was checked.
            AcmeAccountCreated::EabKeyUnavailable => {
                Err(eab_key_taken(record.eab_key_id.as_deref().unwrap_or_default()))
            }
        }
    }

    /// Verifies an external account binding (RFC 8555 §7.3.4): its key exists, is bound to
    /// no account, and MACs the account's key. The key id, which the store binds to the
    /// account in the same transaction that creates it.
    async fn acme_check_external_account(
        &self,
        endpoint: &Endpoint,
        binding: &keystation_acme::messages::FlattenedJws,
        jwk: &Jwk,
    ) -> AcmeResult<String> {
        let new_account_url = format!("{}/new-account", endpoint.base);
        let key_id = binding_key_id(binding)?;
        let key = self
            .store
            .acme_eab_key(&endpoint.provisioner, &key_id)
            .await
            .map_err(store_error)?
            .ok_or_else(|| {
                problem(
                    ProblemType::Unauthorized,
                    format!("external account key {key_id:?} does not exist"),
                )
            })?;
        if key.account_id.is_some() {
            return Err(eab_key_taken(&key_id));
        }
        let hmac = zeroize::Zeroizing::new(key.hmac_key.as_bytes().to_vec());
        keystation_acme::eab::verify_eab(binding, jwk, &new_account_url, |kid| {
            (kid == key_id).then_some(hmac)
        })
        .map_err(envelope_problem)?;
        Ok(key_id)
    }

    /// `POST account/{id}`: read (POST-as-GET), update the contacts, or deactivate.
    pub(super) async fn acme_account(
        &self,
        endpoint: &Endpoint,
        id: &str,
        body: &[u8],
    ) -> AcmeResult<Reply> {
        self.acme_provisioner(endpoint)?;
        let AccountRequest { account, request } = self.acme_authenticate(endpoint, body).await?;
        if account.id != id {
            return Err(problem(ProblemType::Unauthorized, "this is not the requester's account"));
        }
        if request.is_post_as_get() {
            return Ok(Reply::json(render::account(endpoint, &account)));
        }
        let update = AccountUpdate::from_json(request.payload()).map_err(envelope_problem)?;
        if update.is_deactivation() {
            self.store.acme_deactivate_account(id).await.map_err(store_error)?;
            tracing::info!(provisioner = %endpoint.provisioner, account = %id, "ACME account deactivated");
        } else if let Some(status) = update.status {
            return Err(problem(
                ProblemType::Malformed,
                format!("an account's status can only be set to \"deactivated\", not {status:?}"),
            ));
        }
        if let Some(contact) = &update.contact {
            check_contacts(contact)?;
            self.store.acme_update_account_contact(id, contact).await.map_err(store_error)?;
        }
        let account = self
            .store
            .acme_account(&endpoint.provisioner, id)
            .await
            .map_err(store_error)?
            .ok_or_else(|| internal(&"the account vanished"))?;
        Ok(Reply::json(render::account(endpoint, &account)))
    }

    /// `POST account/{id}/orders` (RFC 8555 §7.1.2.1).
    pub(super) async fn acme_account_orders(
        &self,
        endpoint: &Endpoint,
        id: &str,
        body: &[u8],
    ) -> AcmeResult<Reply> {
        self.acme_provisioner(endpoint)?;
        let AccountRequest { account, .. } = self.acme_authenticate(endpoint, body).await?;
        if account.id != id {
            return Err(problem(ProblemType::Unauthorized, "this is not the requester's account"));
        }
        let ids = self.store.acme_orders_of_account(id).await.map_err(store_error)?;
        let orders: Vec<String> = ids.iter().map(|o| endpoint.order_url(o)).collect();
        Ok(Reply::json(serde_json::json!({ "orders": orders })))
    }

    /// `POST key-change` (RFC 8555 §7.3.5).
    pub(super) async fn acme_key_change(
        &self,
        endpoint: &Endpoint,
        body: &[u8],
    ) -> AcmeResult<Reply> {
        self.acme_provisioner(endpoint)?;
        let AccountRequest { account, request } = self.acme_authenticate(endpoint, body).await?;
        let change =
            keystation_acme::envelope::verify_key_change(&request).map_err(envelope_problem)?;
        let old_thumbprint = change.old_key.thumbprint();
        if old_thumbprint != account.key_thumbprint {
            return Err(problem(
                ProblemType::Unauthorized,
                "oldKey is not the account's current key",
            ));
        }
        let new_thumbprint = change.new_key.thumbprint();
        match self
            .store
            .acme_change_account_key(
                &account.id,
                &old_thumbprint,
                &new_thumbprint,
                &change.new_key.to_json(),
            )
            .await
            .map_err(store_error)?
        {
            KeyChange::Changed => {
                tracing::info!(provisioner = %endpoint.provisioner, account = %account.id, "ACME account key changed");
                let account = self
                    .store
                    .acme_account(&endpoint.provisioner, &account.id)
                    .await
                    .map_err(store_error)?
                    .ok_or_else(|| internal(&"the account vanished"))?;
                Ok(Reply::json(render::account(endpoint, &account)))
            }
            KeyChange::InUse(other) => {
                let conflict = Problem::new(
                    ProblemType::Malformed,
                    "the new key is already the key of another account (see Location)",
                )
                .with_http_status(409);
                Ok(Reply::problem_at(&conflict, endpoint.account_url(&other)))
            }
            KeyChange::Stale => {
                Err(problem(ProblemType::Unauthorized, "the account's key changed meanwhile"))
            }
        }
    }

    // --- orders (RFC 8555 §7.4) ---------------------------------------------------------

    /// `POST new-order`.
    pub(super) async fn acme_new_order(
        &self,
        endpoint: &Endpoint,
        body: &[u8],
    ) -> AcmeResult<Reply> {
        let provisioner = self.acme_provisioner(endpoint)?;
        let AccountRequest { account, request } = self.acme_authenticate(endpoint, body).await?;
        let payload = NewOrder::from_json(request.payload()).map_err(envelope_problem)?;
        if payload.identifiers.is_empty() {
            return Err(problem(ProblemType::Malformed, "the order names no identifier"));
        }
        let (not_before, not_after) = payload.validity().map_err(envelope_problem)?;
        let longest = Some(provisioner.claims().tls.max);
        if let (Some(nb), Some(na)) = (not_before, not_after)
            && (na <= nb || longest.is_some_and(|max| (na - nb) as u64 > max.as_secs()))
        {
            return Err(problem(
                ProblemType::Malformed,
                "notBefore/notAfter ask for a validity outside what the provisioner allows",
            ));
        }
        let now = SystemTime::now();
        let expires = now + ORDER_LIFETIME;
        let order_id = new_id()?;
        let mut normalized = Vec::new();
        let mut authorizations = Vec::new();
        for identifier in &payload.identifiers {
            let identifier =
                identifiers::normalize_identifier(identifier).map_err(envelope_problem)?;
            if normalized.contains(&identifier) {
                continue;
            }
            let kinds = identifiers::challenge_types_for(&identifier, provisioner.challenges());
            if kinds.is_empty() {
                return Err(Problem::new(
                    ProblemType::RejectedIdentifier,
                    format!(
                        "provisioner {:?} offers no challenge for {} identifier {:?}",
                        endpoint.provisioner, identifier.identifier_type, identifier.value
                    ),
                )
                .with_identifier(identifier.clone()));
            }
            let (value, wildcard) = match identifier.value.strip_prefix("*.") {
                Some(base) => (base.to_owned(), true),
                None => (identifier.value.clone(), false),
            };
            let authz_id = new_id()?;
            let mut challenges = Vec::with_capacity(kinds.len());
            for kind in &kinds {
                challenges.push(AcmeChallengeRecord {
                    id: new_id()?,
                    authorization_id: authz_id.clone(),
                    kind: kind.as_str().to_owned(),
                    token: new_id()?,
                    status: ChallengeStatus::Pending.as_str().to_owned(),
                    validated_at: None,
                    error: None,
                    attempts: 0,
                    payload: None,
                });
            }
            authorizations.push((
                AcmeAuthorizationRecord {
                    id: authz_id,
                    order_id: order_id.clone(),
                    account_id: account.id.clone(),
                    identifier_type: identifier.identifier_type.as_str().to_owned(),
                    identifier_value: value,
                    wildcard,
                    status: AuthorizationStatus::Pending.as_str().to_owned(),
                    expires_at: expires,
                    key_fingerprint: None,
                },
                challenges,
            ));
            normalized.push(identifier);
        }
        let order = AcmeOrderRecord {
            id: order_id.clone(),
            provisioner: endpoint.provisioner.clone(),
            account_id: account.id.clone(),
            status: OrderStatus::Pending.as_str().to_owned(),
            identifiers: serde_json::to_string(&normalized).map_err(|e| internal(&e))?,
            not_before: not_before.map(from_unix),
            not_after: not_after.map(from_unix),
            expires_at: expires,
            error: None,
            certificate_id: None,
            created_at: now,
        };
        self.store.acme_create_order(&order, &authorizations).await.map_err(store_error)?;
        tracing::info!(provisioner = %endpoint.provisioner, account = %account.id, order = %order_id, identifiers = ?normalized.iter().map(|i| &i.value).collect::<Vec<_>>(), "ACME order created");
        let body = self.acme_order_json(endpoint, &order).await?;
        Ok(Reply::created(body, endpoint.order_url(&order_id)))
    }

    /// The order `id` of `account`, with an expired unfinished one marked invalid.
    async fn acme_owned_order(
        &self,
        endpoint: &Endpoint,
        account: &AcmeAccountRecord,
        id: &str,
    ) -> AcmeResult<AcmeOrderRecord> {
        let order = self
            .store
            .acme_order(&endpoint.provisioner, id)
            .await
            .map_err(store_error)?
            .filter(|o| o.account_id == account.id)
            .ok_or_else(|| not_found("order", id))?;
        if order.expires_at < SystemTime::now()
            && matches!(order.status.as_str(), "pending" | "ready")
        {
            let error = problem(ProblemType::Malformed, "the order expired").to_json();
            self.store
                .acme_set_order_status(id, &["pending", "ready"], "invalid", Some(&error))
                .await
                .map_err(store_error)?;
            return self
                .store
                .acme_order(&endpoint.provisioner, id)
                .await
                .map_err(store_error)?
                .ok_or_else(|| internal(&"the order vanished"));
        }
        Ok(order)
    }

    async fn acme_order_json(
        &self,
        endpoint: &Endpoint,
        order: &AcmeOrderRecord,
    ) -> AcmeResult<serde_json::Value> {
        let authorizations =
            self.store.acme_authorizations_of_order(&order.id).await.map_err(store_error)?;
        Ok(render::order(endpoint, order, &authorizations))
    }

    /// `POST order/{id}` (POST-as-GET).
    pub(super) async fn acme_order(
        &self,
        endpoint: &Endpoint,
        id: &str,
        body: &[u8],
    ) -> AcmeResult<Reply> {
        self.acme_provisioner(endpoint)?;
        let AccountRequest { account, .. } = self.acme_authenticate(endpoint, body).await?;
        let order = self.acme_owned_order(endpoint, &account, id).await?;
        let reply = Reply::json(self.acme_order_json(endpoint, &order).await?);
        Ok(if order.status == "processing" { reply.retry_after(POLL_AFTER_SECONDS) } else { reply })
    }

    /// `POST order/{id}/finalize` (RFC 8555 §7.4): the order is ready, the CSR asks for
    /// exactly its identifiers (and, for a device, the attested key), the certificate is
    /// issued and recorded.
    pub(super) async fn acme_finalize(
        &self,
        endpoint: &Endpoint,
        id: &str,
        body: &[u8],
    ) -> AcmeResult<Reply> {
        let provisioner = self.acme_provisioner(endpoint)?;
        let AccountRequest { account, request } = self.acme_authenticate(endpoint, body).await?;
        let order = self.acme_owned_order(endpoint, &account, id).await?;
        if order.status != OrderStatus::Ready.as_str() {
            return Err(problem(
                ProblemType::OrderNotReady,
                format!("order {id:?} is {}, not ready", order.status),
            ));
        }
        let payload = Finalize::from_json(request.payload()).map_err(envelope_problem)?;
        let der = payload.csr_der().map_err(envelope_problem)?;
        let csr = keystation_ca::check_csr(&der)
            .map_err(|e| problem(ProblemType::BadCsr, format!("the CSR is not acceptable: {e}")))?;
        let identifiers: Vec<Identifier> =
            serde_json::from_str(&order.identifiers).map_err(|e| internal(&e))?;
        let authorizations =
            self.store.acme_authorizations_of_order(&order.id).await.map_err(store_error)?;

        let dns: Vec<String> =
            csr.sans.iter().filter(|s| s.parse::<std::net::IpAddr>().is_err()).cloned().collect();
        let ips: Vec<std::net::IpAddr> = csr.sans.iter().filter_map(|s| s.parse().ok()).collect();
        identifiers::csr_matches_order(&dns, &ips, csr.common_name.as_deref(), &identifiers)
            .map_err(|reason| problem(ProblemType::BadCsr, reason))?;

        // A device's certificate is for the key its attestation proved, and no other.
        let device = identifiers
            .iter()
            .find(|i| i.identifier_type == IdentifierType::PermanentIdentifier)
            .cloned();
        if device.is_some() {
            let fingerprint = keystation_acme::attestation::spki_fingerprint(&csr.public_key);
            let bound = authorizations.iter().all(|a| {
                a.identifier_type != IdentifierType::PermanentIdentifier.as_str()
                    || a.key_fingerprint.as_deref() == Some(fingerprint.as_str())
            });
            if !bound {
                return Err(problem(
                    ProblemType::BadCsr,
                    "the CSR's key is not the key the device attested",
                ));
            }
        }

        if !self
            .store
            .acme_set_order_status(&order.id, &["ready"], "processing", None)
            .await
            .map_err(store_error)?
        {
            return Err(problem(
                ProblemType::OrderNotReady,
                format!("order {id:?} is being finalized already"),
            ));
        }

        let now = SystemTime::now();
        let not_after = order.not_after.unwrap_or(now + provisioner.tls_lifetime());
        let mut template = keystation_ca::LeafTemplate::new(csr.spki_der.clone(), not_after);
        template.not_before = order.not_before;
        template.sans = identifiers
            .iter()
            .map(|i| match i.identifier_type {
                IdentifierType::Ip => i
                    .value
                    .parse()
                    .map(SubjectAltName::Ip)
                    .unwrap_or_else(|_| SubjectAltName::Dns(i.value.clone())),
                IdentifierType::PermanentIdentifier => {
                    SubjectAltName::PermanentIdentifier(i.value.clone())
                }
                _ => SubjectAltName::Dns(i.value.clone()),
            })
            .collect();
        template.common_name = match (&csr.common_name, &device) {
            (Some(cn), _) if !cn.is_empty() => Some(cn.clone()),
            (_, Some(device)) => Some(device.value.clone()),
            _ if provisioner.force_cn() => identifiers
                .iter()
                .find(|i| i.identifier_type == IdentifierType::Dns)
                .map(|i| i.value.clone()),
            _ => None,
        };
        template.extended_key_usage = if device.is_some() {
            vec![keystation_ca::ExtendedKeyUsage::ClientAuth]
        } else {
            vec![
                keystation_ca::ExtendedKeyUsage::ServerAuth,
                keystation_ca::ExtendedKeyUsage::ClientAuth,
            ]
        };
        let issued = match self.issue_and_record_pem(&template, &endpoint.provisioner).await {
            Ok(issued) => issued,
            Err(e) => {
                let failure = internal(&e.message);
                let _ = self
                    .store
                    .acme_set_order_status(
                        &order.id,
                        &["processing"],
                        "invalid",
                        Some(&failure.to_json()),
                    )
                    .await;
                return Err(failure);
            }
        };
        let certificate_id = new_id()?;
        let record = AcmeCertificateRecord {
            id: certificate_id.clone(),
            provisioner: endpoint.provisioner.clone(),
            account_id: account.id.clone(),
            order_id: order.id.clone(),
            serial: issued.serial,
            chain_pem: issued.chain_pem,
            created_at: now,
        };
        self.store.acme_add_certificate(&record).await.map_err(store_error)?;
        self.store.acme_finish_order(&order.id, &certificate_id).await.map_err(store_error)?;
        tracing::info!(provisioner = %endpoint.provisioner, account = %account.id, order = %order.id, serial = %record.serial, "ACME order finalized");
        let order = self
            .store
            .acme_order(&endpoint.provisioner, &order.id)
            .await
            .map_err(store_error)?
            .ok_or_else(|| internal(&"the order vanished"))?;
        Ok(Reply::json(self.acme_order_json(endpoint, &order).await?)
            .at(endpoint.order_url(&order.id)))
    }

    /// `POST certificate/{id}` (POST-as-GET, RFC 8555 §7.4.2): the PEM chain, leaf first.
    pub(super) async fn acme_certificate(
        &self,
        endpoint: &Endpoint,
        id: &str,
        body: &[u8],
    ) -> AcmeResult<Reply> {
        self.acme_provisioner(endpoint)?;
        let AccountRequest { account, .. } = self.acme_authenticate(endpoint, body).await?;
        let certificate = self
            .store
            .acme_certificate(&endpoint.provisioner, id)
            .await
            .map_err(store_error)?
            .filter(|c| c.account_id == account.id)
            .ok_or_else(|| not_found("certificate", id))?;
        Ok(Reply::pem_chain(certificate.chain_pem))
    }

    // --- authorizations and challenges (RFC 8555 §7.5) ----------------------------------

    async fn acme_owned_authorization(
        &self,
        account: &AcmeAccountRecord,
        id: &str,
    ) -> AcmeResult<AcmeAuthorizationRecord> {
        self.store
            .acme_authorization(id)
            .await
            .map_err(store_error)?
            .filter(|a| a.account_id == account.id)
            .ok_or_else(|| not_found("authorization", id))
    }

    /// `POST authz/{id}`: read (POST-as-GET) or deactivate (RFC 8555 §7.5.2).
    pub(super) async fn acme_authorization(
        &self,
        endpoint: &Endpoint,
        id: &str,
        body: &[u8],
    ) -> AcmeResult<Reply> {
        self.acme_provisioner(endpoint)?;
        let AccountRequest { account, request } = self.acme_authenticate(endpoint, body).await?;
        let authz = self.acme_owned_authorization(&account, id).await?;
        if !request.is_post_as_get() {
            let update: serde_json::Value =
                serde_json::from_slice(request.payload()).map_err(|e| {
                    problem(ProblemType::Malformed, format!("the payload is not JSON: {e}"))
                })?;
            if update.get("status").and_then(|s| s.as_str()) == Some("deactivated") {
                self.store
                    .acme_set_authorization_status(id, &["pending", "valid"], "deactivated", None)
                    .await
                    .map_err(store_error)?;
            } else {
                return Err(problem(
                    ProblemType::Malformed,
                    "an authorization can only be deactivated ({\"status\": \"deactivated\"})",
                ));
            }
        }
        let authz = self.acme_owned_authorization(&account, &authz.id).await?;
        let challenges = self.store.acme_challenges_of(&authz.id).await.map_err(store_error)?;
        Ok(Reply::json(render::authorization(endpoint, &authz, &challenges)))
    }

    /// `POST challenge/{authz}/{id}`: a POST-as-GET reads it; `{}` (or device-attest-01's
    /// `attObj`) asks the server to validate it (RFC 8555 §7.5.1).
    pub(super) async fn acme_challenge(
        self: Arc<Self>,
        endpoint: &Endpoint,
        authz_id: &str,
        id: &str,
        body: &[u8],
    ) -> AcmeResult<Reply> {
        let provisioner = self.acme_provisioner(endpoint)?;
        let AccountRequest { account, request } = self.acme_authenticate(endpoint, body).await?;
        let authz = self.acme_owned_authorization(&account, authz_id).await?;
        let challenge = self
            .store
            .acme_challenge(id)
            .await
            .map_err(store_error)?
            .filter(|c| c.authorization_id == authz.id)
            .ok_or_else(|| not_found("challenge", id))?;
        let up = endpoint.authz_url(&authz.id);
        if request.is_post_as_get() || challenge.status != ChallengeStatus::Pending.as_str() {
            let reply =
                Reply::json(render::challenge(endpoint, &authz.id, &challenge)).link(up, "up");
            return Ok(if challenge.status == "processing" {
                reply.retry_after(POLL_AFTER_SECONDS)
            } else {
                reply
            });
        }
        if authz.status != AuthorizationStatus::Pending.as_str() {
            return Err(problem(
                ProblemType::Malformed,
                format!("authorization {:?} is {}, not pending", authz.id, authz.status),
            ));
        }
        let kind: ChallengeType = challenge.kind.parse().map_err(|e| internal(&e))?;
        let key = Jwk::from_json(&account.key_jwk).map_err(|e| internal(&e))?;
        let key_authorization = key_authorization::key_authorization(&challenge.token, &key);

        if kind == ChallengeType::DeviceAttest01 {
            let payload =
                DeviceAttestPayload::from_json(request.payload()).map_err(envelope_problem)?;
            let challenge = self
                .acme_device_attest(&provisioner, &authz, challenge, &payload, &key_authorization)
                .await?;
            return Ok(
                Reply::json(render::challenge(endpoint, &authz.id, &challenge)).link(up, "up")
            );
        }

        if !self
            .store
            .acme_set_challenge_status(&challenge.id, &["pending"], "processing", None, None, None)
            .await
            .map_err(store_error)?
        {
            // Another request started it: answer with what is there now.
            let now = self.store.acme_challenge(id).await.map_err(store_error)?;
            let now = now.ok_or_else(|| internal(&"the challenge vanished"))?;
            return Ok(Reply::json(render::challenge(endpoint, &authz.id, &now)).link(up, "up"));
        }
        let authority = Arc::clone(&self);
        let (authz_for_task, challenge_for_task) = (authz.clone(), challenge.clone());
        let provisioner_name = endpoint.provisioner.clone();
        tokio::spawn(async move {
            authority
                .acme_validate(
                    provisioner_name,
                    authz_for_task,
                    challenge_for_task,
                    kind,
                    key_authorization,
                )
                .await;
        });
        let mut shown = challenge;
        shown.status = ChallengeStatus::Processing.as_str().to_owned();
        Ok(Reply::json(render::challenge(endpoint, &authz.id, &shown))
            .link(up, "up")
            .retry_after(POLL_AFTER_SECONDS))
    }

    /// device-attest-01: verified at once (nothing to fetch), no retry — the statement
    /// would not change.
    async fn acme_device_attest(
        &self,
        provisioner: &AcmeProvisioner,
        authz: &AcmeAuthorizationRecord,
        challenge: AcmeChallengeRecord,
        payload: &DeviceAttestPayload,
        key_authorization: &str,
    ) -> AcmeResult<AcmeChallengeRecord> {
        let att_obj = payload.att_obj_bytes().map_err(envelope_problem)?;
        let verdict = keystation_acme::attestation::parse_attestation_object(&att_obj).and_then(
            |statement| {
                provisioner.verify_device_attestation(
                    &statement,
                    key_authorization,
                    &authz.identifier_value,
                    SystemTime::now(),
                )
            },
        );
        match verdict {
            Ok(device) => {
                let now = SystemTime::now();
                self.store
                    .acme_set_challenge_status(
                        &challenge.id,
                        &["pending"],
                        "valid",
                        None,
                        Some(now),
                        Some(&payload.att_obj),
                    )
                    .await
                    .map_err(store_error)?;
                self.acme_authorization_valid(authz, Some(&device.spki_fingerprint)).await?;
                tracing::info!(serial = %device.serial, "ACME device attestation verified");
            }
            Err(e) => {
                let refusal = e.problem();
                tracing::warn!(authorization = %authz.id, reason = %refusal, "ACME device attestation refused");
                self.acme_fail(authz, &challenge, &refusal).await?;
            }
        }
        self.store
            .acme_challenge(&challenge.id)
            .await
            .map_err(store_error)?
            .ok_or_else(|| internal(&"the challenge vanished"))
    }

    /// The authorization is valid: and its order ready once all of them are.
    pub(super) async fn acme_authorization_valid(
        &self,
        authz: &AcmeAuthorizationRecord,
        key_fingerprint: Option<&str>,
    ) -> AcmeResult<()> {
        self.store
            .acme_set_authorization_status(&authz.id, &["pending"], "valid", key_fingerprint)
            .await
            .map_err(store_error)?;
        let all =
            self.store.acme_authorizations_of_order(&authz.order_id).await.map_err(store_error)?;
        if all.iter().all(|a| a.status == AuthorizationStatus::Valid.as_str()) {
            self.store
                .acme_set_order_status(&authz.order_id, &["pending"], "ready", None)
                .await
                .map_err(store_error)?;
        }
        Ok(())
    }

    /// The challenge failed for good: it, its authorization and its order are invalid
    /// (RFC 8555 §7.1.6), the problem recorded on the challenge and the order.
    pub(super) async fn acme_fail(
        &self,
        authz: &AcmeAuthorizationRecord,
        challenge: &AcmeChallengeRecord,
        refusal: &Problem,
    ) -> AcmeResult<()> {
        let identifier = Identifier {
            identifier_type: authz.identifier_type.parse().map_err(|e| internal(&e))?,
            value: authz.identifier_value.clone(),
        };
        let error = refusal.clone().with_identifier(identifier).to_json();
        self.store
            .acme_set_challenge_status(
                &challenge.id,
                &["pending", "processing"],
                "invalid",
                Some(&error),
                None,
                None,
            )
            .await
            .map_err(store_error)?;
        self.store
            .acme_set_authorization_status(&authz.id, &["pending"], "invalid", None)
            .await
            .map_err(store_error)?;
        self.store
            .acme_set_order_status(&authz.order_id, &["pending", "ready"], "invalid", Some(&error))
            .await
            .map_err(store_error)?;
        Ok(())
    }

    // --- revocation (RFC 8555 §7.6) -----------------------------------------------------

    /// `POST revoke-cert`: signed by the account that ordered the certificate, or by the
    /// certificate's own key (`jwk`).
    pub(super) async fn acme_revoke(&self, endpoint: &Endpoint, body: &[u8]) -> AcmeResult<Reply> {
        self.acme_provisioner(endpoint)?;
        let parsed = Self::acme_parse(endpoint, body)?;
        let payload =
            RevokeCert::from_json(parsed.unverified_payload()).map_err(envelope_problem)?;
        let der = payload.certificate_der().map_err(envelope_problem)?;
        let cert = Certificate::from_der(&der).map_err(|e| {
            problem(ProblemType::Malformed, format!("the certificate does not parse: {e}"))
        })?;
        self.issuer_verifies(&cert).map_err(|_| {
            problem(ProblemType::Unauthorized, "the certificate was not issued by this authority")
        })?;
        let serial = crate::authority::certificate_serial(&cert);
        let (who, _request) = match &parsed.protected().key {
            KeyRef::Jwk(jwk) => {
                let verified = parsed.verify(jwk).map_err(envelope_problem)?;
                let cert_key = cert.public_key().map_err(|e| internal(&e))?;
                if jwk.public_key() != &cert_key {
                    return Err(problem(
                        ProblemType::Unauthorized,
                        "the request is signed with a key that is neither an account's nor the certificate's",
                    ));
                }
                self.acme_spend_nonce(&verified.protected().nonce).await?;
                ("the certificate's key".to_owned(), verified)
            }
            KeyRef::Kid(_) => {
                let AccountRequest { account, request } =
                    self.acme_authenticate(endpoint, body).await?;
                let owned = self
                    .store
                    .acme_certificate_by_serial(&serial)
                    .await
                    .map_err(store_error)?
                    .is_some_and(|c| c.account_id == account.id);
                if !owned {
                    return Err(problem(
                        ProblemType::Unauthorized,
                        "the account did not order this certificate",
                    ));
                }
                (format!("account {}", account.id), request)
            }
        };
        let reason_code = match payload.reason {
            None => 0,
            Some(code) if code <= 10 && code != 7 => code,
            Some(code) => {
                return Err(problem(
                    ProblemType::BadRevocationReason,
                    format!("{code} is not an RFC 5280 revocation reason"),
                ));
            }
        };
        let details = RevocationDetails {
            reason_code,
            reason: String::new(),
            revoked_at: SystemTime::now(),
            provisioner: endpoint.provisioner.clone(),
            mtls: false,
        };
        match self.store.revoke(&serial, &details).await.map_err(store_error)? {
            Revocation::Revoked => {
                tracing::info!(provisioner = %endpoint.provisioner, %serial, by = %who, "certificate revoked through ACME");
                Ok(Reply::empty(StatusCode::OK))
            }
            Revocation::AlreadyRevoked => Err(problem(
                ProblemType::AlreadyRevoked,
                format!("certificate {serial} is already revoked"),
            )),
        }
    }
}

/// Contacts must be `mailto:` URLs (RFC 8555 §7.3: the server says which schemes it
/// supports); others are unsupportedContact.
fn check_contacts(contacts: &[String]) -> AcmeResult<()> {
    for contact in contacts {
        let Some(address) = contact.strip_prefix("mailto:") else {
            return Err(problem(
                ProblemType::UnsupportedContact,
                format!("contact {contact:?} is not a mailto: URL"),
            ));
        };
        if address.is_empty() || !address.contains('@') || address.contains(',') {
            return Err(problem(
                ProblemType::InvalidContact,
                format!("contact {contact:?} is not one e-mail address"),
            ));
        }
    }
    Ok(())
}
