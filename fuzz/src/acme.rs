//! Targets for `keystation-acme`: the request envelope, the JSON bodies and identifier
//! rules, and device-attest-01's attestation object.

use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::{Duration, UNIX_EPOCH};

use keystation_acme::eab::Zeroizing;
use keystation_acme::messages::{
    Account, AccountUpdate, Authorization, Challenge, ChallengeType, DeviceAttestPayload,
    Directory, Finalize, IdentifierType, KeyChange, NewAccount, NewOrder, Order, RevokeCert,
};
use keystation_acme::{
    ACCEPTED_ALGORITHMS, AcmeProvisioner, KeyRef, Problem, challenge_types_for, csr_matches_order,
    normalize_identifier, parse_attestation_object, parse_request, spki_fingerprint,
    step_attestation_object, verify_eab, verify_key_change,
};
use keystation_jose::Jwk;

/// The P-256 account key the `acme_jws` seeds are signed with and the `acme_bodies` EAB
/// seed binds (its private half is not kept).
const ACCOUNT_JWK: &str = r#"{"kty":"EC","crv":"P-256","x":"x25YiBhyHkeZY1w5pQZ6PKDZOsA6FNDeKtK60dF6pbU","y":"VkS7nzfyrTlwCKBvXr6xqOQ0sT2bb93nCa6aYO2dUko"}"#;

/// The EAB key ID and MAC key of the `new_account_eab` seed.
const EAB_KID: &str = "fuzz-eab";
const EAB_KEY: &[u8] = b"fuzz eab hmac key";
const NEW_ACCOUNT_URL: &str = "https://ca.example/acme/acme/new-account";

/// The key authorization the `acme_attestation` seeds sign, and their card's serial.
const KEY_AUTHORIZATION: &str =
    "fuzz-token-0123456789ab.NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";
const SERIAL: &str = "12345678";

fn account_key() -> &'static Jwk {
    static KEY: OnceLock<Jwk> = OnceLock::new();
    KEY.get_or_init(|| Jwk::from_json(ACCOUNT_JWK).expect("the fuzz account key parses"))
}

/// An error's problem document is always JSON that parses back to it.
fn check_problem(e: &keystation_acme::Error) {
    let problem = e.problem();
    assert_eq!(problem.problem_type, e.problem_type());
    let parsed = Problem::from_json(problem.to_json().as_bytes()).expect("problem JSON parses");
    assert_eq!(parsed, problem);
}

/// `parse_request` on an arbitrary body, then verification with the embedded key or the
/// seeds' account key, and the key change's inner JWS.
///
/// Whatever the input: nothing panics; an accepted header has an accepted `alg`, a nonce
/// and a url; a verified request's payload is the unverified one, POST-as-GET exactly
/// when it is empty; every error maps to a problem document.
pub fn acme_jws(data: &[u8]) {
    let request = match parse_request(data) {
        Ok(r) => r,
        Err(e) => return check_problem(&e),
    };
    let header = request.protected();
    assert!(ACCEPTED_ALGORITHMS.contains(&header.alg));
    assert!(!header.nonce.is_empty() && !header.url.is_empty());
    let verified = match &header.key {
        KeyRef::Jwk(_) => request.verify_with_embedded_key(),
        KeyRef::Kid(kid) => {
            assert!(!kid.is_empty());
            request.verify(account_key())
        }
    };
    let verified = match verified {
        Ok(v) => v,
        Err(e) => return check_problem(&e),
    };
    assert_eq!(verified.payload(), request.unverified_payload());
    assert_eq!(verified.is_post_as_get(), verified.payload().is_empty());
    let _ = verified.payload_json::<serde_json::Value>();
    match verify_key_change(&verified) {
        Ok(change) => {
            assert_eq!(Some(change.account.as_str()), verified.account_url().ok());
        }
        Err(e) => check_problem(&e),
    }
}

/// Every request payload and response object parser on the same bytes, and the order
/// rules on a newOrder's identifiers.
///
/// Whatever the input: nothing panics; normalization is idempotent; the challenges
/// offered are a subset of those enabled; a CSR naming exactly the normalized identifiers
/// matches the order unless it mixes permanent identifiers with names; an EAB that
/// verifies names the seeds' key ID; response objects and problems round-trip.
pub fn acme_bodies(data: &[u8]) {
    if let Ok(account) = NewAccount::from_json(data)
        && let Some(binding) = &account.external_account_binding
    {
        let lookup = |kid: &str| (kid == EAB_KID).then(|| Zeroizing::new(EAB_KEY.to_vec()));
        if let Ok(kid) = verify_eab(binding, account_key(), NEW_ACCOUNT_URL, lookup) {
            assert_eq!(kid, EAB_KID);
        }
    }
    if let Ok(update) = AccountUpdate::from_json(data) {
        let _ = update.is_deactivation();
    }
    if let Ok(finalize) = Finalize::from_json(data) {
        let _ = finalize.csr_der();
    }
    if let Ok(revoke) = RevokeCert::from_json(data) {
        let _ = revoke.certificate_der();
    }
    if let Ok(change) = KeyChange::from_json(data) {
        let _ = change.old_jwk();
    }
    if let Ok(payload) = DeviceAttestPayload::from_json(data)
        && let Ok(bytes) = payload.att_obj_bytes()
    {
        let _ = parse_attestation_object(&bytes);
    }
    match NewOrder::from_json(data) {
        Ok(order) => order_rules(&order),
        Err(e) => check_problem(&e),
    }
    macro_rules! round_trip {
        ($($ty:ty),*) => {$(
            if let Ok(object) = <$ty>::from_json(data) {
                let json = serde_json::to_vec(&object).expect("serializes");
                assert_eq!(<$ty>::from_json(&json).expect("reparses"), object);
            }
        )*};
    }
    round_trip!(Account, Order, Authorization, Challenge, Directory);
    if let Ok(problem) = Problem::from_json(data) {
        assert_eq!(Problem::from_json(problem.to_json().as_bytes()).ok(), Some(problem));
    }
}

fn order_rules(order: &NewOrder) {
    let _ = order.validity();
    let mut normalized = Vec::new();
    for identifier in &order.identifiers {
        let Ok(n) = normalize_identifier(identifier) else { return };
        assert_eq!(normalize_identifier(&n).ok().as_ref(), Some(&n), "idempotent");
        let enabled = [ChallengeType::Dns01, ChallengeType::DeviceAttest01];
        assert!(challenge_types_for(&n, &enabled).iter().all(|c| enabled.contains(c)));
        normalized.push(n);
    }
    let dns: Vec<String> = normalized
        .iter()
        .filter(|i| i.identifier_type == IdentifierType::Dns)
        .map(|i| i.value.clone())
        .collect();
    let ips: Vec<IpAddr> = normalized
        .iter()
        .filter(|i| i.identifier_type == IdentifierType::Ip)
        .filter_map(|i| i.value.parse().ok())
        .collect();
    let permanent =
        normalized.iter().filter(|i| i.identifier_type == IdentifierType::PermanentIdentifier);
    let count = permanent.count();
    let mixed = count != 0 && count != normalized.len();
    let result = if mixed {
        csr_matches_order(&dns, &ips, None, &normalized)
    } else if dns.is_empty() && ips.is_empty() {
        csr_matches_order(&[], &[], None, &normalized)
    } else {
        csr_matches_order(&dns, &ips, dns.first().map(String::as_str), &normalized)
    };
    assert_eq!(result.is_err(), mixed, "{result:?}");
}

fn attestation_provisioner() -> &'static AcmeProvisioner {
    static PROVISIONER: OnceLock<AcmeProvisioner> = OnceLock::new();
    PROVISIONER.get_or_init(|| {
        let root = keystation_x509::pem::encode(
            "CERTIFICATE",
            &keystation_softcard::piv::test_attestation_root_der(),
        );
        let config = serde_json::json!({
            "type": "ACME", "name": "fuzz", "challenges": ["device-attest-01"],
            "attestationRoots": root,
        });
        AcmeProvisioner::from_json(
            &config.to_string(),
            &keystation_provisioners::ProvisionerContext::default(),
        )
        .expect("the fuzz provisioner's configuration is valid")
    })
}

/// `parse_attestation_object` on arbitrary bytes, then the provisioner's verification
/// against the software card's root at 2030-01-01.
///
/// Whatever the input: nothing panics; a parsed statement re-encodes (as
/// `step_attestation_object` writes it) to one that parses equal; an accepted
/// attestation is for the seeds' serial, with the fingerprint of its key.
pub fn acme_attestation(data: &[u8]) {
    let statement = match parse_attestation_object(data) {
        Ok(s) => s,
        Err(e) => return check_problem(&e),
    };
    let again = step_attestation_object(statement.alg, &statement.sig, &statement.x5c);
    assert_eq!(parse_attestation_object(&again).ok().as_ref(), Some(&statement));
    let now = UNIX_EPOCH + Duration::from_secs(1_893_456_000);
    match attestation_provisioner().verify_device_attestation(
        &statement,
        KEY_AUTHORIZATION,
        SERIAL,
        now,
    ) {
        Ok(device) => {
            assert_eq!(device.serial, SERIAL);
            assert_eq!(device.spki_fingerprint, spki_fingerprint(&device.public_key));
        }
        Err(e) => check_problem(&e),
    }
}
