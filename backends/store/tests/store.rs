//! The store's behaviour, each test once on SQLite and once on PostgreSQL (run under
//! `scripts/with-postgres`; without `KEYSTATION_TEST_POSTGRES_URL` the PostgreSQL half
//! fails).

#![allow(clippy::unwrap_used, clippy::panic)]

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use keystation_store::{
    AdminRole, CertificateRecord, Engine, Error, JobOutcome, JobStatus, NewJob, NewProvisioner,
    Registration, Revocation, RevocationDetails, Spent, SshCertType, SshCertificateRecord, Store,
};
use support::{TestDb, at};
use tokio::sync::Barrier;

on_both_engines!(
    opening_creates_the_schema_once,
    replicas_opening_a_new_database_at_once_both_succeed,
    provisioners_are_added_updated_listed_and_removed,
    admins_are_added_listed_and_removed,
    token_ids_are_spent_once_and_purged_after_expiry,
    trust_on_first_use_records_are_listed_and_reset_one_by_one,
    a_token_replayed_200_times_on_two_replicas_is_fresh_once,
    certificates_are_recorded_once_and_found_by_serial_and_subject,
    revocations_keep_the_first_details,
    concurrent_revocations_of_one_serial_revoke_it_once,
    crl_numbers_are_never_handed_out_twice,
    ssh_certificates_and_host_principals,
    ssh_revocations_are_atomic_too,
    jobs_are_queued_handed_out_and_finished,
    workers_register_once_and_are_seen,
    concurrent_workers_finish_each_job_exactly_once,
    concurrent_job_ids_are_distinct,
    records_survive_closing_and_reopening,
);

fn provisioner(name: &str) -> NewProvisioner {
    NewProvisioner {
        name: name.into(),
        kind: "JWK".into(),
        config: format!(r#"{{"type":"JWK","name":"{name}"}}"#),
    }
}

fn certificate(serial: &str, subject: &str, not_after: u64) -> CertificateRecord {
    CertificateRecord {
        serial: serial.into(),
        provisioner: "jwk".into(),
        subject: subject.into(),
        sans: vec![format!("{subject}.example"), "10.0.0.1".into()],
        not_before: at(not_after - 3600),
        not_after: at(not_after),
        pem: format!("-----BEGIN CERTIFICATE-----\n{serial}\n-----END CERTIFICATE-----\n"),
    }
}

fn details(reason: &str) -> RevocationDetails {
    RevocationDetails {
        reason_code: 1,
        reason: reason.into(),
        revoked_at: at(1_700_000_100),
        provisioner: "jwk".into(),
        mtls: false,
    }
}

fn ssh_cert(
    serial: u64,
    cert_type: SshCertType,
    principals: &[&str],
    not_after: u64,
) -> SshCertificateRecord {
    SshCertificateRecord {
        serial,
        key_id: format!("key-{serial}"),
        principals: principals.iter().map(|p| p.to_string()).collect(),
        cert_type,
        not_after: at(not_after),
        provisioner: "jwk".into(),
        certificate: format!("ssh-ed25519-cert-v01@openssh.com AAAA{serial} key-{serial}"),
    }
}

fn job(worker: Option<&str>, first_name: &str) -> NewJob {
    NewJob {
        worker: worker.map(str::to_owned),
        first_name: first_name.into(),
        last_name: "Lovelace".into(),
        email: format!("{}@example.com", first_name.to_lowercase()),
    }
}

fn success(serial: &str) -> JobOutcome {
    JobOutcome::Success {
        public_key: "-----BEGIN PGP PUBLIC KEY BLOCK-----\n…".into(),
        ssh_key: "ssh-ed25519 AAAA… ada".into(),
        yubikey_serial: serial.into(),
    }
}

async fn opening_creates_the_schema_once(db: &TestDb) {
    let store = db.open().await;
    let expected = if db.is_sqlite() { Engine::Sqlite } else { Engine::Postgres };
    assert_eq!(store.engine(), expected);
    store.add_provisioner(&provisioner("jwk")).await.unwrap();
    // A second handle finds the schema applied and the data there.
    let again = db.open().await;
    assert_eq!(again.provisioners().await.unwrap().len(), 1);
    if db.is_sqlite() {
        // The file is in WAL mode.
        let path = db.url().trim_start_matches("sqlite://");
        let mut conn =
            <sqlx::SqliteConnection as sqlx::Connection>::connect(&format!("sqlite:{path}"))
                .await
                .unwrap();
        let mode: String =
            sqlx::query_scalar("PRAGMA journal_mode").fetch_one(&mut conn).await.unwrap();
        assert_eq!(mode, "wal");
    }
}

async fn replicas_opening_a_new_database_at_once_both_succeed(db: &TestDb) {
    let (a, b) = tokio::join!(Store::open(db.url()), Store::open(db.url()));
    let (a, b) = (a.unwrap(), b.unwrap());
    a.add_provisioner(&provisioner("p")).await.unwrap();
    assert_eq!(b.provisioners().await.unwrap().len(), 1);
}

async fn provisioners_are_added_updated_listed_and_removed(db: &TestDb) {
    let store = db.open().await;
    let before = SystemTime::now() - Duration::from_secs(1);
    let added = store.add_provisioner(&provisioner("zeta")).await.unwrap();
    assert_eq!(added.name, "zeta");
    assert_eq!(added.kind, "JWK");
    assert!(added.created_at >= before && added.created_at == added.updated_at);
    store.add_provisioner(&provisioner("alpha")).await.unwrap();

    match store.add_provisioner(&provisioner("zeta")).await {
        Err(Error::AlreadyExists { what, key }) => {
            assert_eq!((what, key.as_str()), ("provisioner", "zeta"));
        }
        other => panic!("duplicate provisioner: {other:?}"),
    }
    let names: Vec<String> =
        store.provisioners().await.unwrap().into_iter().map(|p| p.name).collect();
    assert_eq!(names, ["alpha", "zeta"]);

    let updated = store.update_provisioner("zeta", "X5C", r#"{"type":"X5C"}"#).await.unwrap();
    assert_eq!(updated.kind, "X5C");
    assert_eq!(updated.config, r#"{"type":"X5C"}"#);
    assert_eq!(updated.created_at, added.created_at);
    assert_eq!(store.provisioner("zeta").await.unwrap(), Some(updated));
    assert!(matches!(
        store.update_provisioner("nope", "JWK", "{}").await,
        Err(Error::NotFound { .. })
    ));

    // Removing a provisioner removes the admins who authenticate through it.
    store.add_admin("ada", "zeta", AdminRole::SuperAdmin).await.unwrap();
    store.add_admin("ada", "alpha", AdminRole::Admin).await.unwrap();
    store.remove_provisioner("zeta").await.unwrap();
    assert_eq!(store.provisioner("zeta").await.unwrap(), None);
    let admins = store.admins().await.unwrap();
    assert_eq!(admins.len(), 1);
    assert_eq!(admins[0].provisioner, "alpha");
    assert!(matches!(store.remove_provisioner("zeta").await, Err(Error::NotFound { .. })));
    assert!(store.add_provisioner(&provisioner("")).await.is_err());
}

async fn admins_are_added_listed_and_removed(db: &TestDb) {
    let store = db.open().await;
    let ada = store.add_admin("ada", "jwk", AdminRole::SuperAdmin).await.unwrap();
    assert_eq!(ada.role, AdminRole::SuperAdmin);
    store.add_admin("bob", "jwk", AdminRole::Admin).await.unwrap();
    // The same subject through another provisioner is another admin.
    store.add_admin("ada", "x5c", AdminRole::Admin).await.unwrap();
    assert!(matches!(
        store.add_admin("ada", "jwk", AdminRole::Admin).await,
        Err(Error::AlreadyExists { what: "admin", .. })
    ));
    let listed: Vec<(String, String, AdminRole)> = store
        .admins()
        .await
        .unwrap()
        .into_iter()
        .map(|a| (a.provisioner, a.subject, a.role))
        .collect();
    assert_eq!(
        listed,
        [
            ("jwk".into(), "ada".into(), AdminRole::SuperAdmin),
            ("jwk".into(), "bob".into(), AdminRole::Admin),
            ("x5c".into(), "ada".into(), AdminRole::Admin),
        ]
    );
    store.set_admin_role("bob", "jwk", AdminRole::SuperAdmin).await.unwrap();
    assert_eq!(store.admin("bob", "jwk").await.unwrap().unwrap().role, AdminRole::SuperAdmin);
    store.remove_admin("bob", "jwk").await.unwrap();
    assert_eq!(store.admin("bob", "jwk").await.unwrap(), None);
    assert!(matches!(store.remove_admin("bob", "jwk").await, Err(Error::NotFound { .. })));
    assert_eq!("SUPER_ADMIN".parse::<AdminRole>().unwrap(), AdminRole::SuperAdmin);
    assert_eq!("admin".parse::<AdminRole>().unwrap(), AdminRole::Admin);
    assert!("root".parse::<AdminRole>().is_err());
}

async fn token_ids_are_spent_once_and_purged_after_expiry(db: &TestDb) {
    let store = db.open().await;
    assert_eq!(store.spend_token("jwk", "t1", at(1000)).await.unwrap(), Spent::Fresh);
    assert_eq!(store.spend_token("jwk", "t1", at(1000)).await.unwrap(), Spent::Replayed);
    // Token ids are per provisioner.
    assert_eq!(store.spend_token("x5c", "t1", at(1000)).await.unwrap(), Spent::Fresh);
    assert_eq!(store.spend_token("jwk", "t2", at(2000)).await.unwrap(), Spent::Fresh);

    // At 1500 the ids that expired at 1000 go; t2 stays spent.
    assert_eq!(store.purge_spent_tokens(at(1500)).await.unwrap(), 2);
    assert_eq!(store.spend_token("jwk", "t2", at(2000)).await.unwrap(), Spent::Replayed);
    assert_eq!(store.purge_spent_tokens(at(1500)).await.unwrap(), 0);
    // An id the purge forgot is fresh again: why callers must only purge ids of tokens
    // that can no longer verify.
    assert_eq!(store.spend_token("jwk", "t1", at(1000)).await.unwrap(), Spent::Fresh);
}

async fn trust_on_first_use_records_are_listed_and_reset_one_by_one(db: &TestDb) {
    let store = db.open().await;
    let never = at(253_402_300_799);
    assert_eq!(store.spend_token("aws", "tofu:i-0aaa", never).await.unwrap(), Spent::Fresh);
    assert_eq!(store.spend_token("aws", "tofu:i-0bbb", never).await.unwrap(), Spent::Fresh);
    assert_eq!(store.spend_token("aws", "jti-1", at(1000)).await.unwrap(), Spent::Fresh);
    assert_eq!(store.spend_token("gcp", "tofu:i-0aaa", never).await.unwrap(), Spent::Fresh);
    // Purging expired token ids leaves the permanent records.
    store.purge_spent_tokens(at(5000)).await.unwrap();
    let listed: Vec<String> = store
        .spent_tokens_with_prefix("aws", "tofu:")
        .await
        .unwrap()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(listed, ["tofu:i-0aaa", "tofu:i-0bbb"]);
    // Resetting one instance frees exactly that one, on that provisioner.
    assert!(store.forget_spent_token("aws", "tofu:i-0aaa").await.unwrap());
    assert!(!store.forget_spent_token("aws", "tofu:i-0aaa").await.unwrap());
    assert_eq!(store.spend_token("aws", "tofu:i-0aaa", never).await.unwrap(), Spent::Fresh);
    assert_eq!(store.spend_token("aws", "tofu:i-0bbb", never).await.unwrap(), Spent::Replayed);
    assert_eq!(store.spend_token("gcp", "tofu:i-0aaa", never).await.unwrap(), Spent::Replayed);
}

async fn a_token_replayed_200_times_on_two_replicas_is_fresh_once(db: &TestDb) {
    let replicas = [db.open().await, db.open().await];
    let barrier = Arc::new(Barrier::new(200));
    let mut tasks = Vec::new();
    for i in 0..200 {
        let store = replicas[i % 2].clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            store.spend_token("jwk", "the-one-jti", at(4_000_000_000)).await
        }));
    }
    let mut fresh = 0;
    let mut replayed = 0;
    for task in tasks {
        match task.await.unwrap().unwrap() {
            Spent::Fresh => fresh += 1,
            Spent::Replayed => replayed += 1,
        }
    }
    assert_eq!((fresh, replayed), (1, 199));
}

async fn certificates_are_recorded_once_and_found_by_serial_and_subject(db: &TestDb) {
    let store = db.open().await;
    store.record_certificate(&certificate("00AB12", "alice", 1_700_007_200)).await.unwrap();
    store.record_certificate(&certificate("0c", "alice", 1_700_003_600)).await.unwrap();
    store.record_certificate(&certificate("ff", "bob", 1_700_003_600)).await.unwrap();

    // One serial, however it is written.
    let got = store.certificate("ab12").await.unwrap().unwrap();
    assert_eq!(got.serial, "ab12");
    assert_eq!(got.sans, ["alice.example", "10.0.0.1"]);
    assert_eq!(got.not_after, at(1_700_007_200));
    assert_eq!(got.not_before, at(1_700_003_600));
    assert!(got.pem.contains("00AB12"));
    assert_eq!(store.certificate("0xAB12").await.unwrap(), Some(got.clone()));
    assert_eq!(store.certificate("abcd").await.unwrap(), None);
    assert!(matches!(store.certificate("xyz").await, Err(Error::Invalid { .. })));

    match store.record_certificate(&certificate("ab12", "mallory", 1_700_007_200)).await {
        Err(Error::AlreadyExists { key, .. }) => assert_eq!(key, "ab12"),
        other => panic!("duplicate serial: {other:?}"),
    }
    assert_eq!(store.certificate("ab12").await.unwrap().unwrap().subject, "alice");

    let alices: Vec<String> = store
        .certificates_for_subject("alice")
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.serial)
        .collect();
    assert_eq!(alices, ["c", "ab12"]);
    assert!(store.certificates_for_subject("carol").await.unwrap().is_empty());

    let mut bad = certificate("01", "eve", 1_700_003_600);
    bad.sans = vec!["a\nb".into()];
    assert!(matches!(store.record_certificate(&bad).await, Err(Error::Invalid { .. })));
}

async fn revocations_keep_the_first_details(db: &TestDb) {
    let store = db.open().await;
    store.record_certificate(&certificate("0a", "alice", 1_700_003_600)).await.unwrap();
    assert!(!store.is_revoked("a").await.unwrap());

    let first = RevocationDetails {
        reason_code: 4,
        reason: "superseded".into(),
        revoked_at: at(1_700_000_500),
        provisioner: "jwk".into(),
        mtls: true,
    };
    assert_eq!(store.revoke("0A", &first).await.unwrap(), Revocation::Revoked);
    assert_eq!(store.revoke("a", &details("again")).await.unwrap(), Revocation::AlreadyRevoked);
    assert!(store.is_revoked("0x0a").await.unwrap());
    assert_eq!(store.revocation("a").await.unwrap(), Some(first.clone()));

    // A serial the store never issued can be revoked too (as step-ca allows).
    let later = RevocationDetails { revoked_at: at(1_700_000_900), ..details("unknown") };
    assert_eq!(store.revoke("beef", &later).await.unwrap(), Revocation::Revoked);
    let crl = store.revocations().await.unwrap();
    assert_eq!(crl.len(), 2);
    assert_eq!(crl[0].serial, "a");
    assert_eq!(crl[0].details, first);
    assert_eq!(crl[0].not_after, Some(at(1_700_003_600)));
    assert_eq!(crl[1].serial, "beef");
    assert_eq!(crl[1].not_after, None);

    let mut bad = details("bad");
    bad.reason_code = 7;
    assert!(matches!(store.revoke("01", &bad).await, Err(Error::Invalid { .. })));
    assert!(!store.is_revoked("01").await.unwrap());
}

async fn concurrent_revocations_of_one_serial_revoke_it_once(db: &TestDb) {
    let replicas = [db.open().await, db.open().await];
    let barrier = Arc::new(Barrier::new(100));
    let mut tasks = Vec::new();
    for i in 0..100 {
        let store = replicas[i % 2].clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let reason = format!("attempt {i}");
            (reason.clone(), store.revoke("1234", &details(&reason)).await.unwrap())
        }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        let (reason, outcome) = task.await.unwrap();
        if outcome == Revocation::Revoked {
            winners.push(reason);
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    // The stored revocation is the winner's.
    let stored = replicas[0].revocation("1234").await.unwrap().unwrap();
    assert_eq!(stored.reason, winners[0]);
}

async fn crl_numbers_are_never_handed_out_twice(db: &TestDb) {
    let replicas = [db.open().await, db.open().await];
    let mut tasks = Vec::new();
    for i in 0..50 {
        let store = replicas[i % 2].clone();
        tasks.push(tokio::spawn(async move { store.next_crl_number().await.unwrap() }));
    }
    let mut numbers = BTreeSet::new();
    for task in tasks {
        assert!(numbers.insert(task.await.unwrap()));
    }
    assert_eq!(numbers, (1..=50).collect());
    assert_eq!(replicas[1].next_crl_number().await.unwrap(), 51);
}

async fn ssh_certificates_and_host_principals(db: &TestDb) {
    let store = db.open().await;
    let host = ssh_cert(u64::MAX, SshCertType::Host, &["Web.Example", "10.0.0.7"], 2_000_000_000);
    store.record_ssh_certificate(&host).await.unwrap();
    store
        .record_ssh_certificate(&ssh_cert(7, SshCertType::User, &["alice", "root"], 2_000_000_000))
        .await
        .unwrap();
    store
        .record_ssh_certificate(&ssh_cert(8, SshCertType::Host, &["old.example"], 1_000))
        .await
        .unwrap();
    store
        .record_ssh_certificate(&ssh_cert(9, SshCertType::Host, &["gone.example"], 2_000_000_000))
        .await
        .unwrap();
    store.revoke_ssh(9, &details("compromised")).await.unwrap();

    assert_eq!(store.ssh_certificate(u64::MAX).await.unwrap(), Some(host.clone()));
    assert_eq!(store.ssh_certificate(6).await.unwrap(), None);
    assert!(matches!(
        store
            .record_ssh_certificate(&ssh_cert(7, SshCertType::User, &["bob"], 2_000_000_000))
            .await,
        Err(Error::AlreadyExists { .. })
    ));
    // The failed duplicate left no principal behind.
    assert!(!store.is_ssh_host("bob").await.unwrap());
    assert_eq!(store.ssh_certificate(7).await.unwrap().unwrap().principals, ["alice", "root"]);

    // Host lookups ignore case; user principals are not hosts.
    assert!(store.is_ssh_host("web.example").await.unwrap());
    assert!(store.is_ssh_host("WEB.EXAMPLE").await.unwrap());
    assert!(store.is_ssh_host("old.example").await.unwrap());
    assert!(!store.is_ssh_host("alice").await.unwrap());
    // Valid, unrevoked host certificates only.
    assert_eq!(
        store.ssh_host_principals(at(1_700_000_000)).await.unwrap(),
        ["10.0.0.7", "web.example"]
    );

    let mut bad = ssh_cert(10, SshCertType::User, &["a\nb"], 2_000_000_000);
    assert!(store.record_ssh_certificate(&bad).await.is_err());
    bad.principals.clear();
    store.record_ssh_certificate(&bad).await.unwrap();
    assert!(store.ssh_certificate(10).await.unwrap().unwrap().principals.is_empty());
}

async fn ssh_revocations_are_atomic_too(db: &TestDb) {
    let replicas = [db.open().await, db.open().await];
    replicas[0]
        .record_ssh_certificate(&ssh_cert(42, SshCertType::User, &["alice"], 2_000_000_000))
        .await
        .unwrap();
    let barrier = Arc::new(Barrier::new(50));
    let mut tasks = Vec::new();
    for i in 0..50 {
        let store = replicas[i % 2].clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            store.revoke_ssh(42, &details("lost")).await.unwrap()
        }));
    }
    let mut revoked = 0;
    for task in tasks {
        if task.await.unwrap() == Revocation::Revoked {
            revoked += 1;
        }
    }
    assert_eq!(revoked, 1);
    assert!(replicas[1].is_ssh_revoked(42).await.unwrap());
    assert!(!replicas[1].is_ssh_revoked(43).await.unwrap());
    let krl = replicas[1].ssh_revocations().await.unwrap();
    assert_eq!(krl.len(), 1);
    assert_eq!(krl[0].serial, 42);
    assert_eq!(krl[0].not_after, Some(at(2_000_000_000)));
    assert_eq!(replicas[0].ssh_revocation(42).await.unwrap(), Some(details("lost")));
}

async fn jobs_are_queued_handed_out_and_finished(db: &TestDb) {
    let store = db.open().await;
    assert_eq!(store.next_job_for("w1").await.unwrap(), None);
    let j1 = store.add_job(&job(Some("w2"), "Ada")).await.unwrap();
    let j2 = store.add_job(&job(None, "Grace")).await.unwrap();
    let j3 = store.add_job(&job(Some("w1"), "Edsger")).await.unwrap();
    assert_eq!((j1.id, j2.id, j3.id), (1, 2, 3));
    assert_eq!(j1.status, JobStatus::Queued);
    assert_eq!(j1.worker.as_deref(), Some("w2"));
    assert_eq!(j2.email, "grace@example.com");
    assert_eq!(j2.finished_at, None);

    // w1 gets the oldest job for it or for anyone, again and again until it reports.
    assert_eq!(store.next_job_for("w1").await.unwrap().unwrap().id, 2);
    assert_eq!(store.next_job_for("w1").await.unwrap().unwrap().id, 2);
    assert_eq!(store.next_job_for("w2").await.unwrap().unwrap().id, 1);

    // Nobody reports a job queued for someone else.
    match store.finish_job("w1", 1, &success("1")).await {
        Err(Error::JobOfAnotherWorker { id, owner, worker }) => {
            assert_eq!((id, owner.as_str(), worker.as_str()), (1, "w2", "w1"));
        }
        other => panic!("another worker's job: {other:?}"),
    }
    assert!(matches!(
        store.finish_job("w1", 99, &success("1")).await,
        Err(Error::NotFound { what: "job", .. })
    ));

    store.finish_job("w1", 2, &success("12345678")).await.unwrap();
    let done = store.job(2).await.unwrap().unwrap();
    assert_eq!(done.status, JobStatus::Done);
    assert_eq!(done.yubikey_serial.as_deref(), Some("12345678"));
    assert_eq!(done.ssh_key.as_deref(), Some("ssh-ed25519 AAAA… ada"));
    assert_eq!(done.error, None);
    assert_eq!(done.finished_by.as_deref(), Some("w1"));
    assert!(done.finished_at.is_some());
    // Reported once only.
    assert!(matches!(
        store.finish_job("w1", 2, &success("1")).await,
        Err(Error::JobNotQueued { id: 2, status: JobStatus::Done })
    ));
    assert_eq!(store.next_job_for("w1").await.unwrap().unwrap().id, 3);

    store.finish_job("w1", 3, &JobOutcome::Failure { error: "no card".into() }).await.unwrap();
    let failed = store.job(3).await.unwrap().unwrap();
    assert_eq!(failed.status, JobStatus::Failed);
    assert_eq!(failed.error.as_deref(), Some("no card"));
    assert_eq!(failed.public_key, None);
    assert_eq!(store.next_job_for("w1").await.unwrap(), None);

    let statuses: Vec<(u32, JobStatus)> =
        store.list_jobs().await.unwrap().into_iter().map(|j| (j.id, j.status)).collect();
    assert_eq!(statuses, [(1, JobStatus::Queued), (2, JobStatus::Done), (3, JobStatus::Failed)]);
    assert_eq!(store.job(4).await.unwrap(), None);
}

async fn workers_register_once_and_are_seen(db: &TestDb) {
    let store = db.open().await;
    let before = SystemTime::now() - Duration::from_secs(1);
    assert_eq!(store.register_worker("w1").await.unwrap(), Registration::Registered);
    assert_eq!(store.register_worker("w1").await.unwrap(), Registration::AlreadyExists);
    assert_eq!(store.register_worker("w2").await.unwrap(), Registration::Registered);
    store.touch_worker("w1").await.unwrap();
    assert!(matches!(store.touch_worker("w3").await, Err(Error::NotFound { what: "worker", .. })));
    let w1 = store.worker("w1").await.unwrap().unwrap();
    assert!(w1.registered_at >= before && w1.last_seen >= w1.registered_at);
    let ids: Vec<String> = store.workers().await.unwrap().into_iter().map(|w| w.id).collect();
    assert_eq!(ids, ["w1", "w2"]);
    assert_eq!(store.worker("w3").await.unwrap(), None);
    assert!(store.register_worker("").await.is_err());
}

async fn concurrent_workers_finish_each_job_exactly_once(db: &TestDb) {
    let replicas = [db.open().await, db.open().await];
    for i in 0..8 {
        replicas[0].add_job(&job(None, &format!("User{i}"))).await.unwrap();
    }
    // Four workers poll and report at once (on two replicas) until the queue is empty;
    // two of them usually get the same job and one of the reports is refused.
    let mut tasks = Vec::new();
    for w in 0..4 {
        let store = replicas[w % 2].clone();
        tasks.push(tokio::spawn(async move {
            let worker = format!("w{w}");
            let mut finished = Vec::new();
            while let Some(job) = store.next_job_for(&worker).await.unwrap() {
                match store.finish_job(&worker, job.id, &success(&worker)).await {
                    Ok(()) => finished.push(job.id),
                    Err(Error::JobNotQueued { .. }) => {}
                    Err(e) => panic!("{worker}: {e:?}"),
                }
            }
            (worker, finished)
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        let (worker, finished) = task.await.unwrap();
        for id in finished {
            // The job records who reported it.
            let job = replicas[1].job(id).await.unwrap().unwrap();
            assert_eq!(job.finished_by.as_deref(), Some(worker.as_str()));
            assert_eq!(job.yubikey_serial.as_deref(), Some(worker.as_str()));
            all.push(id);
        }
    }
    all.sort_unstable();
    assert_eq!(all, (1..=8).collect::<Vec<u32>>());
}

async fn concurrent_job_ids_are_distinct(db: &TestDb) {
    let replicas = [db.open().await, db.open().await];
    let mut tasks = Vec::new();
    for i in 0..40 {
        let store = replicas[i % 2].clone();
        tasks.push(tokio::spawn(async move {
            store.add_job(&job(None, &format!("U{i}"))).await.unwrap().id
        }));
    }
    let mut ids = BTreeSet::new();
    for task in tasks {
        assert!(ids.insert(task.await.unwrap()));
    }
    assert_eq!(ids, (1..=40).collect());
    assert_eq!(replicas[0].list_jobs().await.unwrap().len(), 40);
}

async fn records_survive_closing_and_reopening(db: &TestDb) {
    let store = db.open().await;
    store.add_provisioner(&provisioner("jwk")).await.unwrap();
    store.add_admin("ada", "jwk", AdminRole::SuperAdmin).await.unwrap();
    store.spend_token("jwk", "jti-1", at(4_000_000_000)).await.unwrap();
    store.record_certificate(&certificate("0123", "alice", 1_700_003_600)).await.unwrap();
    store.revoke("0123", &details("gone")).await.unwrap();
    store
        .record_ssh_certificate(&ssh_cert(5, SshCertType::Host, &["h.example"], 2_000_000_000))
        .await
        .unwrap();
    assert_eq!(store.next_crl_number().await.unwrap(), 1);
    store.add_job(&job(Some("w1"), "Ada")).await.unwrap();
    store.register_worker("w1").await.unwrap();
    store.close().await;
    drop(store);

    let store = db.open().await;
    assert_eq!(store.provisioner("jwk").await.unwrap().unwrap().kind, "JWK");
    assert_eq!(store.admins().await.unwrap().len(), 1);
    assert_eq!(
        store.spend_token("jwk", "jti-1", at(4_000_000_000)).await.unwrap(),
        Spent::Replayed
    );
    assert_eq!(store.certificate("123").await.unwrap().unwrap().subject, "alice");
    assert!(store.is_revoked("123").await.unwrap());
    assert!(store.is_ssh_host("h.example").await.unwrap());
    assert_eq!(store.next_crl_number().await.unwrap(), 2);
    assert_eq!(store.next_job_for("w1").await.unwrap().unwrap().first_name, "Ada");
    assert_eq!(store.add_job(&job(None, "Bob")).await.unwrap().id, 2);
    assert_eq!(store.register_worker("w1").await.unwrap(), Registration::AlreadyExists);
}

#[tokio::test]
async fn an_in_memory_sqlite_store_works_with_its_one_connection() {
    let store = Store::open("sqlite::memory:").await.unwrap();
    assert_eq!(store.engine(), Engine::Sqlite);
    store.add_provisioner(&provisioner("jwk")).await.unwrap();
    assert_eq!(store.spend_token("jwk", "a", at(10)).await.unwrap(), Spent::Fresh);
    assert_eq!(store.spend_token("jwk", "a", at(10)).await.unwrap(), Spent::Replayed);
    assert_eq!(store.provisioners().await.unwrap().len(), 1);
}

#[tokio::test]
async fn unsupported_urls_and_unreachable_databases_are_clear_errors() {
    assert!(matches!(
        Store::open("mysql://root@localhost/ca").await,
        Err(Error::UnsupportedUrl { .. })
    ));
    let dir = tempfile::tempdir().unwrap();
    let missing = format!("sqlite://{}/no/such/dir/ca.db", dir.path().display());
    match Store::open(&missing).await {
        Err(e @ Error::Database { .. }) => {
            assert!(std::error::Error::source(&e).is_some());
        }
        other => panic!("{other:?}"),
    }
}
