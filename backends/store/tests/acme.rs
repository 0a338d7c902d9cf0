//! The ACME state (RFC 8555) in the store, each test once on SQLite and once on
//! PostgreSQL (run under `scripts/with-postgres`; without `KEYSTATION_TEST_POSTGRES_URL`
//! the PostgreSQL half fails).

#![allow(clippy::unwrap_used, clippy::panic)]

mod support;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use keystation_store::{
    AcmeAccountCreated, AcmeAccountRecord, AcmeAuthorizationRecord, AcmeCertificateRecord,
    AcmeChallengeRecord, AcmeEabKeyRecord, AcmeOrderRecord, EabHmacKey, Error, KeyChange, Store,
};
use support::{TestDb, at};
use tokio::sync::Barrier;

on_both_engines!(
    nonces_are_used_once_and_not_after_they_expire,
    a_nonce_used_50_times_at_once_on_two_replicas_is_accepted_once,
    accounts_are_created_once_per_key_and_found_by_id_and_key,
    concurrent_registrations_of_one_key_create_one_account,
    concurrent_registrations_with_one_eab_key_create_one_account,
    account_contact_changes_and_deactivation_need_a_valid_account,
    account_keys_roll_over_only_from_the_current_key_to_an_unused_one,
    an_order_is_recorded_with_all_its_parts_or_not_at_all,
    status_transitions_happen_only_from_the_named_statuses,
    concurrent_validations_of_one_challenge_complete_it_once,
    challenge_attempts_are_counted_one_by_one,
    certificates_are_found_by_id_and_by_serial,
    eab_keys_are_added_bound_once_and_removed,
    acme_state_survives_closing_and_reopening,
);

fn account(id: &str, provisioner: &str, thumbprint: &str) -> AcmeAccountRecord {
    AcmeAccountRecord {
        id: id.into(),
        provisioner: provisioner.into(),
        key_thumbprint: thumbprint.into(),
        key_jwk: format!(r#"{{"kty":"OKP","crv":"Ed25519","x":"{thumbprint}"}}"#),
        status: "valid".into(),
        contact: vec!["mailto:admin@example.com".into()],
        eab_key_id: None,
        created_at: at(1_700_000_000),
    }
}

fn order(id: &str, account_id: &str, created_at: u64) -> AcmeOrderRecord {
    AcmeOrderRecord {
        id: id.into(),
        provisioner: "acme".into(),
        account_id: account_id.into(),
        status: "pending".into(),
        identifiers: r#"[{"type":"dns","value":"a.example"},{"type":"dns","value":"*.b.example"}]"#
            .into(),
        not_before: None,
        not_after: Some(at(1_700_086_400)),
        expires_at: at(1_700_003_600),
        error: None,
        certificate_id: None,
        created_at: at(created_at),
    }
}

fn authorization(id: &str, order: &AcmeOrderRecord, value: &str) -> AcmeAuthorizationRecord {
    AcmeAuthorizationRecord {
        id: id.into(),
        order_id: order.id.clone(),
        account_id: order.account_id.clone(),
        identifier_type: "dns".into(),
        identifier_value: value.into(),
        wildcard: false,
        status: "pending".into(),
        expires_at: at(1_700_003_600),
        key_fingerprint: None,
    }
}

fn challenge(id: &str, authorization_id: &str, kind: &str) -> AcmeChallengeRecord {
    AcmeChallengeRecord {
        id: id.into(),
        authorization_id: authorization_id.into(),
        kind: kind.into(),
        token: format!("token-{id}"),
        status: "pending".into(),
        validated_at: None,
        error: None,
        attempts: 0,
        payload: None,
    }
}

/// An account `acct` and an order `ord` with one authorization `authz` offering
/// `http-01` (`chall`) and `dns-01` (`chall-dns`).
async fn one_order(store: &Store) -> AcmeOrderRecord {
    store.acme_create_account(&account("acct", "acme", "tp-1")).await.unwrap();
    let ord = order("ord", "acct", 1_700_000_000);
    let authz = authorization("authz", &ord, "a.example");
    let challenges =
        vec![challenge("chall", "authz", "http-01"), challenge("chall-dns", "authz", "dns-01")];
    store.acme_create_order(&ord, &[(authz, challenges)]).await.unwrap();
    ord
}

fn certificate(id: &str, serial: &str) -> AcmeCertificateRecord {
    AcmeCertificateRecord {
        id: id.into(),
        provisioner: "acme".into(),
        account_id: "acct".into(),
        order_id: "ord".into(),
        serial: serial.into(),
        chain_pem: format!(
            "-----BEGIN CERTIFICATE-----\n{serial}\n-----END CERTIFICATE-----\n\
             -----BEGIN CERTIFICATE-----\nintermediate\n-----END CERTIFICATE-----\n"
        ),
        created_at: at(1_700_000_100),
    }
}

fn eab_key(key_id: &str, reference: Option<&str>, mac: &[u8]) -> AcmeEabKeyRecord {
    AcmeEabKeyRecord {
        key_id: key_id.into(),
        provisioner: "acme".into(),
        reference: reference.map(str::to_owned),
        hmac_key: EabHmacKey::new(mac.to_vec()),
        account_id: None,
        created_at: at(1_700_000_000),
        bound_at: None,
    }
}

async fn nonces_are_used_once_and_not_after_they_expire(db: &TestDb) {
    let store = db.open().await;
    store.acme_add_nonce("n1", at(1000)).await.unwrap();
    store.acme_add_nonce("n2", at(1000)).await.unwrap();
    store.acme_add_nonce("n3", at(3000)).await.unwrap();
    assert!(matches!(
        store.acme_add_nonce("n1", at(5000)).await,
        Err(Error::AlreadyExists { what: "ACME nonce", .. })
    ));

    // Accepted up to and including its expiry, once.
    assert!(store.acme_use_nonce("n1", at(1000)).await.unwrap());
    assert!(!store.acme_use_nonce("n1", at(1000)).await.unwrap());
    assert!(!store.acme_use_nonce("never-issued", at(0)).await.unwrap());
    // Expired: refused, and it stays until purged.
    assert!(!store.acme_use_nonce("n2", at(1001)).await.unwrap());

    // At 2000, n2 (expired at 1000) goes and n3 stays usable.
    assert_eq!(store.acme_purge_nonces(at(2000)).await.unwrap(), 1);
    assert_eq!(store.acme_purge_nonces(at(2000)).await.unwrap(), 0);
    assert!(!store.acme_use_nonce("n2", at(500)).await.unwrap());
    assert!(store.acme_use_nonce("n3", at(2000)).await.unwrap());
    assert!(store.acme_add_nonce("", at(1000)).await.is_err());
}

async fn a_nonce_used_50_times_at_once_on_two_replicas_is_accepted_once(db: &TestDb) {
    let replicas = [db.open().await, db.open().await];
    replicas[0].acme_add_nonce("the-nonce", at(4_000_000_000)).await.unwrap();
    let barrier = Arc::new(Barrier::new(50));
    let mut tasks = Vec::new();
    for i in 0..50 {
        let store = replicas[i % 2].clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            store.acme_use_nonce("the-nonce", at(1_700_000_000)).await.unwrap()
        }));
    }
    let mut accepted = 0;
    for task in tasks {
        if task.await.unwrap() {
            accepted += 1;
        }
    }
    assert_eq!(accepted, 1);
}

async fn accounts_are_created_once_per_key_and_found_by_id_and_key(db: &TestDb) {
    let store = db.open().await;
    store.acme_add_eab_key(&eab_key("kid-1", None, b"k1")).await.unwrap();
    let mut new = account("a1", "acme", "tp-1");
    new.contact = vec!["mailto:a@example.com".into(), "mailto:b@example.com".into()];
    new.eab_key_id = Some("kid-1".into());
    new.created_at = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_900);
    let created = match store.acme_create_account(&new).await.unwrap() {
        AcmeAccountCreated::Created(a) => a,
        other => panic!("first creation: {other:?}"),
    };
    // Read back as stored: whole seconds.
    assert_eq!(created, AcmeAccountRecord { created_at: at(1_700_000_000), ..new.clone() });

    // The same key again, under another id, finds the first account unchanged.
    match store.acme_create_account(&account("a2", "acme", "tp-1")).await.unwrap() {
        AcmeAccountCreated::Existing(a) => assert_eq!(a, created),
        other => panic!("same key: {other:?}"),
    }
    // The same key in another provisioner is another account.
    assert!(matches!(
        store.acme_create_account(&account("a3", "other", "tp-1")).await.unwrap(),
        AcmeAccountCreated::Created(_)
    ));
    // A taken id with another key is refused.
    assert!(matches!(
        store.acme_create_account(&account("a1", "acme", "tp-9")).await,
        Err(Error::AlreadyExists { what: "ACME account id", .. })
    ));

    assert_eq!(store.acme_account("acme", "a1").await.unwrap(), Some(created.clone()));
    assert_eq!(store.acme_account("other", "a1").await.unwrap(), None);
    assert_eq!(store.acme_account("acme", "a2").await.unwrap(), None);
    assert_eq!(store.acme_account_by_key("acme", "tp-1").await.unwrap(), Some(created));
    assert_eq!(store.acme_account_by_key("acme", "tp-2").await.unwrap().map(|a| a.id), None);
    assert_eq!(store.acme_account_by_key("other", "tp-1").await.unwrap().unwrap().id, "a3");

    let mut bad = account("a4", "acme", "tp-4");
    bad.status = "active".into();
    assert!(matches!(store.acme_create_account(&bad).await, Err(Error::Invalid { .. })));
    let mut bad = account("a5", "acme", "tp-5");
    bad.contact = vec!["mailto:a@example.com\nmailto:b@example.com".into()];
    assert!(matches!(store.acme_create_account(&bad).await, Err(Error::Invalid { .. })));
    assert_eq!(store.acme_account("acme", "a5").await.unwrap(), None);
}

async fn concurrent_registrations_of_one_key_create_one_account(db: &TestDb) {
    let replicas = [db.open().await, db.open().await];
    let barrier = Arc::new(Barrier::new(20));
    let mut tasks = Vec::new();
    for i in 0..20 {
        let store = replicas[i % 2].clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            store.acme_create_account(&account(&format!("acct-{i}"), "acme", "tp")).await.unwrap()
        }));
    }
    let mut created = Vec::new();
    let mut existing = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            AcmeAccountCreated::Created(a) => created.push(a.id),
            AcmeAccountCreated::Existing(a) => existing.push(a.id),
            AcmeAccountCreated::EabKeyUnavailable => panic!("no key was named"),
        }
    }
    assert_eq!(created.len(), 1, "{created:?}");
    // Every other caller was handed the winner's account.
    assert_eq!(existing.len(), 19);
    assert!(existing.iter().all(|id| *id == created[0]), "{existing:?} vs {created:?}");
}

/// Twenty new accounts (twenty account keys) race for one external account key, on two
/// pools: one account is created and holds the key; the others are refused and not written.
async fn concurrent_registrations_with_one_eab_key_create_one_account(db: &TestDb) {
    let replicas = [db.open().await, db.open().await];
    replicas[0].acme_add_eab_key(&eab_key("kid-1", None, b"k1")).await.unwrap();
    let barrier = Arc::new(Barrier::new(20));
    let mut tasks = Vec::new();
    for i in 0..20 {
        let store = replicas[i % 2].clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            let new = AcmeAccountRecord {
                eab_key_id: Some("kid-1".into()),
                ..account(&format!("acct-{i}"), "acme", &format!("tp-{i}"))
            };
            barrier.wait().await;
            (new.id.clone(), store.acme_create_account(&new).await.unwrap())
        }));
    }
    let mut created = Vec::new();
    for task in tasks {
        let (id, outcome) = task.await.unwrap();
        match outcome {
            AcmeAccountCreated::Created(a) => created.push(a.id),
            AcmeAccountCreated::EabKeyUnavailable => {
                assert_eq!(replicas[0].acme_account("acme", &id).await.unwrap(), None);
            }
            AcmeAccountCreated::Existing(a) => panic!("every key is new, yet {a:?}"),
        }
    }
    assert_eq!(created.len(), 1, "{created:?}");
    let key = replicas[1].acme_eab_key("acme", "kid-1").await.unwrap().unwrap();
    assert_eq!(key.account_id.as_ref(), Some(&created[0]));
}

async fn account_contact_changes_and_deactivation_need_a_valid_account(db: &TestDb) {
    let store = db.open().await;
    store.acme_create_account(&account("a1", "acme", "tp-1")).await.unwrap();
    let contact = vec!["mailto:new@example.com".to_owned(), "tel:+15555550100".to_owned()];
    assert!(store.acme_update_account_contact("a1", &contact).await.unwrap());
    assert_eq!(store.acme_account("acme", "a1").await.unwrap().unwrap().contact, contact);
    assert!(store.acme_update_account_contact("a1", &[]).await.unwrap());
    assert!(store.acme_account("acme", "a1").await.unwrap().unwrap().contact.is_empty());
    assert!(!store.acme_update_account_contact("nope", &contact).await.unwrap());
    assert!(matches!(
        store.acme_update_account_contact("a1", &["".to_owned()]).await,
        Err(Error::Invalid { .. })
    ));

    assert!(store.acme_deactivate_account("a1").await.unwrap());
    assert!(!store.acme_deactivate_account("a1").await.unwrap());
    assert!(!store.acme_deactivate_account("nope").await.unwrap());
    let gone = store.acme_account("acme", "a1").await.unwrap().unwrap();
    assert_eq!(gone.status, "deactivated");
    // A deactivated account is not changed any more (RFC 8555 §7.3.6).
    assert!(!store.acme_update_account_contact("a1", &contact).await.unwrap());
    assert!(store.acme_account("acme", "a1").await.unwrap().unwrap().contact.is_empty());
    assert_eq!(
        store.acme_change_account_key("a1", "tp-1", "tp-2", "{}").await.unwrap(),
        KeyChange::Stale
    );
}

async fn account_keys_roll_over_only_from_the_current_key_to_an_unused_one(db: &TestDb) {
    let store = db.open().await;
    store.acme_create_account(&account("a1", "acme", "tp-1")).await.unwrap();
    store.acme_create_account(&account("a2", "acme", "tp-2")).await.unwrap();
    store.acme_create_account(&account("b1", "other", "tp-3")).await.unwrap();

    // The new key is another account's: refused, and that account is named.
    assert_eq!(
        store.acme_change_account_key("a1", "tp-1", "tp-2", "{}").await.unwrap(),
        KeyChange::InUse("a2".into())
    );
    // A key of another provisioner's account is no conflict.
    assert_eq!(
        store.acme_change_account_key("a1", "tp-1", "tp-3", r#"{"new":1}"#).await.unwrap(),
        KeyChange::Changed
    );
    let rolled = store.acme_account("acme", "a1").await.unwrap().unwrap();
    assert_eq!((rolled.key_thumbprint.as_str(), rolled.key_jwk.as_str()), ("tp-3", r#"{"new":1}"#));
    assert_eq!(store.acme_account_by_key("acme", "tp-3").await.unwrap().unwrap().id, "a1");
    assert_eq!(store.acme_account_by_key("acme", "tp-1").await.unwrap(), None);

    // The old key is no longer a1's: a late or repeated rollover from it changes nothing.
    assert_eq!(
        store.acme_change_account_key("a1", "tp-1", "tp-4", "{}").await.unwrap(),
        KeyChange::Stale
    );
    // Rolling over to the key it already has names the account itself.
    assert_eq!(
        store.acme_change_account_key("a1", "tp-3", "tp-3", "{}").await.unwrap(),
        KeyChange::InUse("a1".into())
    );
    assert_eq!(store.acme_account("acme", "a1").await.unwrap().unwrap().key_jwk, r#"{"new":1}"#);
    // The freed key can be registered again.
    assert!(matches!(
        store.acme_create_account(&account("a9", "acme", "tp-1")).await.unwrap(),
        AcmeAccountCreated::Created(_)
    ));
    assert!(matches!(
        store.acme_change_account_key("nope", "tp-1", "tp-5", "{}").await,
        Err(Error::NotFound { what: "ACME account", .. })
    ));
}

async fn an_order_is_recorded_with_all_its_parts_or_not_at_all(db: &TestDb) {
    let store = db.open().await;
    store.acme_create_account(&account("acct", "acme", "tp-1")).await.unwrap();
    let ord = order("ord-1", "acct", 1_700_000_050);
    let mut wild = authorization("authz-b", &ord, "b.example");
    wild.wildcard = true;
    let mut attested = authorization("authz-a", &ord, "a.example");
    attested.key_fingerprint = Some("sha256:abc".into());
    let parts = vec![
        (wild.clone(), vec![challenge("c-b-dns", "authz-b", "dns-01")]),
        (
            attested.clone(),
            vec![
                challenge("c-a-tls", "authz-a", "tls-alpn-01"),
                challenge("c-a-http", "authz-a", "http-01"),
                challenge("c-a-dev", "authz-a", "device-attest-01"),
            ],
        ),
    ];
    store.acme_create_order(&ord, &parts).await.unwrap();

    assert_eq!(store.acme_order("acme", "ord-1").await.unwrap(), Some(ord.clone()));
    assert_eq!(store.acme_order("other", "ord-1").await.unwrap(), None);
    // Authorizations and challenges read back in the order given, not by id.
    assert_eq!(
        store.acme_authorizations_of_order("ord-1").await.unwrap(),
        [wild, attested.clone()]
    );
    assert_eq!(store.acme_authorization("authz-a").await.unwrap(), Some(attested));
    let kinds: Vec<String> =
        store.acme_challenges_of("authz-a").await.unwrap().into_iter().map(|c| c.kind).collect();
    assert_eq!(kinds, ["tls-alpn-01", "http-01", "device-attest-01"]);
    assert_eq!(
        store.acme_challenge("c-b-dns").await.unwrap(),
        Some(challenge("c-b-dns", "authz-b", "dns-01"))
    );
    assert_eq!(store.acme_challenge("nope").await.unwrap(), None);

    // A second order whose last challenge id is taken leaves nothing behind.
    let ord2 = order("ord-2", "acct", 1_700_000_010);
    let authz2 = authorization("authz-2", &ord2, "c.example");
    let clash = vec![(
        authz2,
        vec![challenge("c-2", "authz-2", "http-01"), challenge("c-a-dev", "authz-2", "dns-01")],
    )];
    assert!(matches!(
        store.acme_create_order(&ord2, &clash).await,
        Err(Error::AlreadyExists { what: "ACME challenge id", .. })
    ));
    assert_eq!(store.acme_order("acme", "ord-2").await.unwrap(), None);
    assert_eq!(store.acme_authorization("authz-2").await.unwrap(), None);
    assert_eq!(store.acme_challenge("c-2").await.unwrap(), None);
    assert_eq!(store.acme_challenge("c-a-dev").await.unwrap().unwrap().authorization_id, "authz-a");

    // Parts that name another order, or an unknown account, are refused.
    let mut stray = authorization("authz-3", &ord2, "d.example");
    stray.order_id = "ord-1".into();
    assert!(matches!(
        store.acme_create_order(&ord2, &[(stray, vec![])]).await,
        Err(Error::Invalid { what: "ACME authorization", .. })
    ));
    let authz4 = authorization("authz-4", &ord2, "e.example");
    assert!(matches!(
        store
            .acme_create_order(&ord2, &[(authz4, vec![challenge("c-4", "authz-x", "http-01")])])
            .await,
        Err(Error::Invalid { what: "ACME challenge", .. })
    ));
    let orphan = order("ord-3", "no-such-account", 1_700_000_000);
    assert!(matches!(
        store.acme_create_order(&orphan, &[]).await,
        Err(Error::NotFound { what: "ACME account", .. })
    ));
    assert!(matches!(
        store.acme_create_order(&ord, &[]).await,
        Err(Error::AlreadyExists { what: "ACME order id", .. })
    ));

    // The account's orders, oldest first.
    store.acme_create_order(&ord2, &[]).await.unwrap();
    store.acme_create_order(&order("ord-0", "acct", 1_700_000_090), &[]).await.unwrap();
    assert_eq!(store.acme_orders_of_account("acct").await.unwrap(), ["ord-2", "ord-1", "ord-0"]);
    assert!(store.acme_orders_of_account("nobody").await.unwrap().is_empty());
}

async fn status_transitions_happen_only_from_the_named_statuses(db: &TestDb) {
    let store = db.open().await;
    one_order(&store).await;

    // Challenge: pending → processing with the submitted payload.
    assert!(
        !store
            .acme_set_challenge_status("chall", &["processing"], "valid", None, None, None)
            .await
            .unwrap()
    );
    assert!(
        store
            .acme_set_challenge_status(
                "chall",
                &["pending"],
                "processing",
                None,
                None,
                Some("attObj")
            )
            .await
            .unwrap()
    );
    // A failed attempt records its problem while retrying; the payload stays.
    let problem = r#"{"type":"urn:ietf:params:acme:error:connection"}"#;
    assert!(
        store
            .acme_set_challenge_status(
                "chall",
                &["processing"],
                "processing",
                Some(problem),
                None,
                None
            )
            .await
            .unwrap()
    );
    let retrying = store.acme_challenge("chall").await.unwrap().unwrap();
    assert_eq!(
        (retrying.error.as_deref(), retrying.payload.as_deref()),
        (Some(problem), Some("attObj"))
    );
    assert!(
        store
            .acme_set_challenge_status(
                "chall",
                &["pending", "processing"],
                "valid",
                None,
                Some(at(1_700_000_200)),
                None
            )
            .await
            .unwrap()
    );
    let valid = store.acme_challenge("chall").await.unwrap().unwrap();
    assert_eq!(valid.status, "valid");
    assert_eq!(valid.error, None);
    assert_eq!(valid.validated_at, Some(at(1_700_000_200)));
    assert_eq!(valid.payload.as_deref(), Some("attObj"));
    assert!(
        !store
            .acme_set_challenge_status(
                "chall",
                &["pending", "processing"],
                "invalid",
                Some(problem),
                None,
                None
            )
            .await
            .unwrap()
    );
    assert_eq!(store.acme_challenge("chall").await.unwrap().unwrap().status, "valid");
    assert!(
        !store
            .acme_set_challenge_status("nope", &["pending"], "processing", None, None, None)
            .await
            .unwrap()
    );
    // Statuses RFC 8555 does not have are refused before reaching the database.
    assert!(matches!(
        store.acme_set_challenge_status("chall-dns", &["pending"], "ready", None, None, None).await,
        Err(Error::Invalid { .. })
    ));
    assert!(matches!(
        store.acme_set_challenge_status("chall-dns", &[], "valid", None, None, None).await,
        Err(Error::Invalid { .. })
    ));
    assert_eq!(store.acme_challenge("chall-dns").await.unwrap().unwrap().status, "pending");

    // Authorization: pending → valid binding the attested key; not again.
    assert!(
        !store
            .acme_set_authorization_status("authz", &["valid"], "deactivated", None)
            .await
            .unwrap()
    );
    assert!(
        store
            .acme_set_authorization_status("authz", &["pending"], "valid", Some("sha256:key"))
            .await
            .unwrap()
    );
    assert!(
        !store.acme_set_authorization_status("authz", &["pending"], "invalid", None).await.unwrap()
    );
    assert!(
        store
            .acme_set_authorization_status("authz", &["valid"], "deactivated", None)
            .await
            .unwrap()
    );
    let authz = store.acme_authorization("authz").await.unwrap().unwrap();
    assert_eq!(
        (authz.status.as_str(), authz.key_fingerprint.as_deref()),
        ("deactivated", Some("sha256:key"))
    );

    // Order: pending → ready → processing → valid with its certificate.
    assert!(!store.acme_finish_order("ord", "cert").await.unwrap());
    assert!(!store.acme_set_order_status("ord", &["ready"], "processing", None).await.unwrap());
    assert!(store.acme_set_order_status("ord", &["pending"], "ready", None).await.unwrap());
    assert!(store.acme_set_order_status("ord", &["ready"], "processing", None).await.unwrap());
    assert!(!store.acme_set_order_status("ord", &["ready"], "processing", None).await.unwrap());
    assert!(store.acme_finish_order("ord", "cert").await.unwrap());
    assert!(!store.acme_finish_order("ord", "cert-2").await.unwrap());
    let done = store.acme_order("acme", "ord").await.unwrap().unwrap();
    assert_eq!((done.status.as_str(), done.certificate_id.as_deref()), ("valid", Some("cert")));
    assert!(
        !store
            .acme_set_order_status(
                "ord",
                &["pending", "ready", "processing"],
                "invalid",
                Some(problem)
            )
            .await
            .unwrap()
    );
    assert!(matches!(
        store.acme_set_order_status("ord", &["valid"], "expired", None).await,
        Err(Error::Invalid { .. })
    ));

    // An invalid order keeps its problem document.
    let ord2 = order("ord-2", "acct", 1_700_000_000);
    store.acme_create_order(&ord2, &[]).await.unwrap();
    assert!(
        store
            .acme_set_order_status("ord-2", &["pending", "ready"], "invalid", Some(problem))
            .await
            .unwrap()
    );
    assert_eq!(
        store.acme_order("acme", "ord-2").await.unwrap().unwrap().error.as_deref(),
        Some(problem)
    );
}

async fn concurrent_validations_of_one_challenge_complete_it_once(db: &TestDb) {
    let replicas = [db.open().await, db.open().await];
    one_order(&replicas[0]).await;
    let barrier = Arc::new(Barrier::new(30));
    let mut tasks = Vec::new();
    for i in 0..30 {
        let store = replicas[i % 2].clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            store
                .acme_set_challenge_status(
                    "chall",
                    &["pending"],
                    "processing",
                    None,
                    None,
                    Some(&format!("p{i}")),
                )
                .await
                .unwrap()
                .then_some(i)
        }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        winners.extend(task.await.unwrap());
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    let stored = replicas[1].acme_challenge("chall").await.unwrap().unwrap();
    assert_eq!(stored.payload, Some(format!("p{}", winners[0])));
}

async fn challenge_attempts_are_counted_one_by_one(db: &TestDb) {
    let replicas = [db.open().await, db.open().await];
    one_order(&replicas[0]).await;
    assert_eq!(replicas[0].acme_count_challenge_attempt("chall").await.unwrap(), 1);
    assert_eq!(replicas[1].acme_count_challenge_attempt("chall").await.unwrap(), 2);
    let mut tasks = Vec::new();
    for i in 0..20 {
        let store = replicas[i % 2].clone();
        tasks.push(tokio::spawn(async move {
            store.acme_count_challenge_attempt("chall").await.unwrap()
        }));
    }
    let mut counts = Vec::new();
    for task in tasks {
        counts.push(task.await.unwrap());
    }
    counts.sort_unstable();
    assert_eq!(counts, (3..=22).collect::<Vec<u32>>());
    assert_eq!(replicas[0].acme_challenge("chall").await.unwrap().unwrap().attempts, 22);
    // The other challenge counts on its own.
    assert_eq!(replicas[0].acme_challenge("chall-dns").await.unwrap().unwrap().attempts, 0);
    assert!(matches!(
        replicas[0].acme_count_challenge_attempt("nope").await,
        Err(Error::NotFound { what: "ACME challenge", .. })
    ));
}

async fn certificates_are_found_by_id_and_by_serial(db: &TestDb) {
    let store = db.open().await;
    one_order(&store).await;
    store.acme_add_certificate(&certificate("cert-1", "00AB12")).await.unwrap();
    store.acme_add_certificate(&certificate("cert-2", "0c")).await.unwrap();

    let got = store.acme_certificate("acme", "cert-1").await.unwrap().unwrap();
    // The serial as the X.509 records spell it.
    assert_eq!(
        got,
        AcmeCertificateRecord { serial: "ab12".into(), ..certificate("cert-1", "00AB12") }
    );
    assert!(got.chain_pem.starts_with("-----BEGIN CERTIFICATE-----\n00AB12\n"));
    assert_eq!(store.acme_certificate("other", "cert-1").await.unwrap(), None);
    assert_eq!(store.acme_certificate("acme", "cert-9").await.unwrap(), None);
    assert_eq!(store.acme_certificate_by_serial("0xAB12").await.unwrap(), Some(got.clone()));
    assert_eq!(store.acme_certificate_by_serial("ab12").await.unwrap(), Some(got));
    assert_eq!(store.acme_certificate_by_serial("c").await.unwrap().unwrap().id, "cert-2");
    assert_eq!(store.acme_certificate_by_serial("abcd").await.unwrap(), None);
    assert!(matches!(store.acme_certificate_by_serial("xyz").await, Err(Error::Invalid { .. })));

    assert!(matches!(
        store.acme_add_certificate(&certificate("cert-1", "ff")).await,
        Err(Error::AlreadyExists { what: "ACME certificate id", .. })
    ));
    assert!(matches!(
        store.acme_add_certificate(&certificate("cert-3", "ab12")).await,
        Err(Error::AlreadyExists { what: "ACME certificate serial", .. })
    ));
    assert_eq!(store.acme_certificate("acme", "cert-3").await.unwrap(), None);
    let mut orphan = certificate("cert-4", "01");
    orphan.order_id = "no-such-order".into();
    assert!(matches!(store.acme_add_certificate(&orphan).await, Err(Error::NotFound { .. })));
    assert!(matches!(
        store.acme_add_certificate(&certificate("cert-5", "g1")).await,
        Err(Error::Invalid { .. })
    ));
}

async fn eab_keys_are_added_bound_once_and_removed(db: &TestDb) {
    let store = db.open().await;
    let mac: Vec<u8> = (0..=255).rev().collect();
    store.acme_add_eab_key(&eab_key("kid-1", Some("alice"), &mac)).await.unwrap();
    store.acme_add_eab_key(&eab_key("kid-2", None, b"k2")).await.unwrap();
    store.acme_add_eab_key(&eab_key("kid-3", None, b"k3")).await.unwrap();
    // References are per provisioner.
    let mut elsewhere = eab_key("kid-1", Some("alice"), b"other");
    elsewhere.provisioner = "other".into();
    store.acme_add_eab_key(&elsewhere).await.unwrap();

    assert!(matches!(
        store.acme_add_eab_key(&eab_key("kid-1", None, b"x")).await,
        Err(Error::AlreadyExists { what: "ACME external account key id", .. })
    ));
    assert!(matches!(
        store.acme_add_eab_key(&eab_key("kid-4", Some("alice"), b"x")).await,
        Err(Error::AlreadyExists { what: "ACME external account key reference", .. })
    ));
    assert!(matches!(
        store.acme_add_eab_key(&eab_key("kid-5", None, b"")).await,
        Err(Error::Invalid { .. })
    ));
    assert!(matches!(
        store.acme_add_eab_key(&eab_key("kid-6", Some(""), b"x")).await,
        Err(Error::Invalid { .. })
    ));

    // The MAC key reads back byte for byte.
    let first = store.acme_eab_key("acme", "kid-1").await.unwrap().unwrap();
    assert_eq!(first, eab_key("kid-1", Some("alice"), &mac));
    assert_eq!(first.hmac_key.as_bytes(), mac.as_slice());
    assert_eq!(store.acme_eab_key_by_reference("acme", "alice").await.unwrap(), Some(first));
    assert_eq!(store.acme_eab_key_by_reference("acme", "bob").await.unwrap(), None);
    assert_eq!(
        store.acme_eab_key("other", "kid-1").await.unwrap().unwrap().hmac_key.as_bytes(),
        b"other"
    );
    let listed: Vec<String> =
        store.acme_eab_keys("acme").await.unwrap().into_iter().map(|k| k.key_id).collect();
    assert_eq!(listed, ["kid-1", "kid-2", "kid-3"]);

    // Bound once, to one account, in the transaction that creates the account; a creation
    // that cannot bind its key writes nothing.
    let with_key =
        |id: &str, provisioner: &str, thumbprint: &str, key_id: &str| AcmeAccountRecord {
            eab_key_id: Some(key_id.into()),
            ..account(id, provisioner, thumbprint)
        };
    let before = SystemTime::now() - Duration::from_secs(1);
    assert!(matches!(
        store.acme_create_account(&with_key("acct-1", "acme", "tp-1", "kid-2")).await.unwrap(),
        AcmeAccountCreated::Created(_)
    ));
    for (id, provisioner, key_id) in
        [("acct-2", "acme", "kid-2"), ("acct-3", "acme", "nope"), ("acct-4", "other", "kid-2")]
    {
        let refused = store
            .acme_create_account(&with_key(id, provisioner, &format!("tp-{id}"), key_id))
            .await
            .unwrap();
        assert_eq!(refused, AcmeAccountCreated::EabKeyUnavailable, "{id} with {key_id}");
        assert_eq!(store.acme_account(provisioner, id).await.unwrap(), None, "{id} was written");
    }
    // The same account key again finds acct-1 and spends no other key.
    match store.acme_create_account(&with_key("acct-5", "acme", "tp-1", "kid-3")).await.unwrap() {
        AcmeAccountCreated::Existing(existing) => assert_eq!(existing.id, "acct-1"),
        other => panic!("the same key again: {other:?}"),
    }
    let bound = store.acme_eab_key("acme", "kid-2").await.unwrap().unwrap();
    assert_eq!(bound.account_id.as_deref(), Some("acct-1"));
    assert!(bound.bound_at.unwrap() >= before);
    assert_eq!(store.acme_eab_key("acme", "kid-3").await.unwrap().unwrap().account_id, None);

    assert!(store.acme_remove_eab_key("acme", "kid-1").await.unwrap());
    assert!(!store.acme_remove_eab_key("acme", "kid-1").await.unwrap());
    assert_eq!(store.acme_eab_key("acme", "kid-1").await.unwrap(), None);
    assert!(store.acme_eab_key("other", "kid-1").await.unwrap().is_some());
    // Its reference is free again.
    store.acme_add_eab_key(&eab_key("kid-7", Some("alice"), b"k7")).await.unwrap();
}

async fn acme_state_survives_closing_and_reopening(db: &TestDb) {
    let store = db.open().await;
    one_order(&store).await;
    store.acme_add_nonce("n", at(4_000_000_000)).await.unwrap();
    store.acme_add_eab_key(&eab_key("kid", None, b"secret")).await.unwrap();
    store.acme_add_certificate(&certificate("cert", "beef")).await.unwrap();
    store.close().await;
    drop(store);

    let store = db.open().await;
    assert!(store.acme_use_nonce("n", at(1_700_000_000)).await.unwrap());
    assert_eq!(store.acme_account_by_key("acme", "tp-1").await.unwrap().unwrap().id, "acct");
    assert_eq!(store.acme_orders_of_account("acct").await.unwrap(), ["ord"]);
    assert_eq!(store.acme_challenges_of("authz").await.unwrap().len(), 2);
    assert_eq!(
        store.acme_eab_key("acme", "kid").await.unwrap().unwrap().hmac_key.as_bytes(),
        b"secret"
    );
    assert_eq!(store.acme_certificate_by_serial("BEEF").await.unwrap().unwrap().id, "cert");
}

#[test]
fn debug_output_does_not_show_the_mac_key() {
    let key = eab_key("kid-1", Some("alice"), b"hunter2-hunter2");
    let shown = format!("{key:?} {:?}", key.hmac_key);
    assert!(!shown.contains("hunter2"), "{shown}");
    // Not as bytes either: 104 is 'h'.
    assert!(!shown.contains("104"), "{shown}");
    assert!(shown.contains("kid-1") && shown.contains("15 bytes"), "{shown}");
}
