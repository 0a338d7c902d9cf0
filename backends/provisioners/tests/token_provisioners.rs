//! The token provisioners (JWK, X5C, SSHPOP, static token) through their public API: what
//! they grant, and the negative suite of issue 12 — alg `none`, HS256 signed with the
//! public key, no `exp`, an overlong lifetime, a future `nbf`, a wrong `aud`, an SSH
//! audience on X.509, an unknown `kid` — each refused with its reason and no single-use
//! slot to spend. SSH certificates come from OpenSSH's `ssh-keygen`.
#![allow(clippy::panic, clippy::expect_used, clippy::unwrap_used)]

use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use keystation_core::Error as CoreError;
use keystation_core::key::{KeyAlgorithm, PublicKey};
use keystation_core::provisioner::{Credential, Denial, Grant, Operation, Request, TrustedKeys};
use keystation_core::{Provisioner, SecretKey};
use keystation_jose::jwe::{Pbes2Options, encrypt_pbes2_with};
use keystation_jose::{
    Algorithm, Claims as TokenClaims, Header, PrivateJwk, SshCertType, SshClaims, StepClaims,
    TimeOrDuration, sign_jwt,
};
use keystation_provisioners::{
    Claims, EffectiveClaims, JwkProvisioner, ProvisionerContext, ProvisionerKind,
    SshPopProvisioner, StaticTokenProvisioner, StepProvisioner, X5cProvisioner,
    provisioner_from_json, provisioner_from_json_in, verify_x5c_insecure,
};
use keystation_x509::{
    CertificateOptions, DistinguishedName, ExtendedKeyUsage, Validity, issue_certificate,
    self_signed_certificate,
};

const NOW: u64 = 1_760_000_000;
const SIGN: &str = "https://ca.example.test:9443/1.0/sign";

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW)
}

fn t(offset: i64) -> i64 {
    NOW as i64 + offset
}

fn effective(claims: Claims) -> EffectiveClaims {
    claims.resolve().unwrap()
}

fn ssh_enabled() -> EffectiveClaims {
    effective(Claims { enable_ssh_ca: Some(true), ..Claims::default() })
}

/// A step token's claims: issued now, five minutes of life, aud = the sign endpoint.
fn claims(iss: &str, sub: &str, aud: &str) -> TokenClaims {
    let mut c = TokenClaims::default();
    c.iss = Some(iss.into());
    c.sub = Some(sub.into());
    c.aud = vec![aud.into()];
    c.iat = Some(t(0));
    c.nbf = Some(t(0));
    c.exp = Some(t(300));
    c.jti = Some(format!("jti-{sub}-{aud}"));
    c
}

fn request<'a>(token: &'a str, operation: Operation, audience: &'a str) -> Request<'a> {
    Request { credential: Credential::Token(token), operation, audience, subject_key: None }
}

fn authorize(
    p: &dyn Provisioner,
    token: &str,
    operation: Operation,
    audience: &str,
) -> Result<Grant, Denial> {
    match p.authorize(&request(token, operation, audience), &TrustedKeys::default(), now()) {
        Ok(grant) => Ok(grant),
        Err(CoreError::Unauthorized(d)) => Err(d),
        Err(other) => panic!("not a refusal: {other}"),
    }
}

fn jwk_setup(alg: Algorithm) -> (PrivateJwk, JwkProvisioner) {
    let key = PrivateJwk::generate(alg).unwrap();
    let p = JwkProvisioner::new("admin", key.public().clone(), None, ssh_enabled());
    (key, p)
}

fn b64url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[test]
fn jwk_grants_step_tokens() {
    let (key, p) = jwk_setup(Algorithm::Es256);
    let mut c = claims("admin", "host.example.test", SIGN);
    c.sans = vec!["host.example.test".into(), "10.0.0.1".into()];
    let token = sign_jwt(&key, &Header::default(), &c).unwrap();
    let grant = authorize(&p, &token, Operation::SignX509, SIGN).unwrap();
    assert_eq!(grant.provisioner, "admin");
    assert_eq!(grant.subject, "host.example.test");
    assert_eq!(grant.sans, c.sans);
    assert_eq!(grant.replay_id, c.jti, "the jti is what the caller spends");
    assert_eq!(grant.not_before, now());
    assert_eq!(grant.not_after, now() + Duration::from_secs(24 * 3600), "default TLS lifetime");
    assert_eq!(grant.operations, vec![Operation::SignX509]);

    // No sans: the subject, as step does.
    let c = claims("admin", "solo", SIGN);
    let token = sign_jwt(&key, &Header::default(), &c).unwrap();
    assert_eq!(
        authorize(&p, &token, Operation::SignX509, SIGN).unwrap().sans,
        vec!["solo".to_string()]
    );

    // step-ca's port stripping and /1.0 optional: the default port, and /sign ≡ /1.0/sign.
    let c = claims("admin", "a", "https://CA.example.test/sign");
    let token = sign_jwt(&key, &Header::default(), &c).unwrap();
    assert!(
        authorize(&p, &token, Operation::SignX509, "https://ca.example.test:443/1.0/sign").is_ok()
    );

    // Revoke: the subject is the serial.
    let c = claims("admin", "1234567", "https://ca.example.test:9443/1.0/revoke");
    let token = sign_jwt(&key, &Header::default(), &c).unwrap();
    let grant =
        authorize(&p, &token, Operation::RevokeX509, "https://ca.example.test:9443/1.0/revoke")
            .unwrap();
    assert_eq!(grant.subject, "1234567");
}

#[test]
fn jwk_negative_suite() {
    let (key, p) = jwk_setup(Algorithm::Es256);
    let good = claims("admin", "host", SIGN);
    let sign = |c: &TokenClaims| sign_jwt(&key, &Header::default(), c).unwrap();

    // alg none, and HS256 keyed with the provisioner's public JWK (key confusion).
    let kid = key.public().kid().unwrap().to_owned();
    let header =
        |alg: &str| b64url(format!(r#"{{"alg":"{alg}","kid":"{kid}","typ":"JWT"}}"#).as_bytes());
    let payload = b64url(good.to_json().as_bytes());
    let none = format!("{}.{payload}.", header("none"));
    let input = format!("{}.{payload}", header("HS256"));
    let mac = {
        use hmac::Mac as _;
        let mut mac =
            hmac::Hmac::<sha2::Sha256>::new_from_slice(key.public().to_json().as_bytes()).unwrap();
        mac.update(input.as_bytes());
        mac.finalize().into_bytes()
    };
    let hs256 = format!("{input}.{}", b64url(&mac));

    let mut no_exp = good.clone();
    no_exp.exp = None;
    let mut overlong = good.clone();
    overlong.exp = Some(t(301));
    let mut future = good.clone();
    future.nbf = Some(t(120));
    future.exp = Some(t(400));
    let mut expired = good.clone();
    (expired.iat, expired.nbf, expired.exp) = (Some(t(-600)), Some(t(-600)), Some(t(-400)));
    let wrong_aud = claims("admin", "host", "https://elsewhere.test:9443/1.0/sign");
    let wrong_port = claims("admin", "host", "https://ca.example.test:8443/1.0/sign");
    let ssh_aud = claims("admin", "host", "https://ca.example.test:9443/1.0/ssh/sign");
    let revoke_aud = claims("admin", "host", "https://ca.example.test:9443/1.0/revoke");
    let wrong_iss = claims("someone-else", "host", SIGN);
    let mut no_jti = good.clone();
    no_jti.jti = None;
    let mut no_sub = good.clone();
    no_sub.sub = None;
    let mut unknown_kid = Header::default();
    unknown_kid.kid = Some("not-the-provisioners-kid".into());
    let other_key = PrivateJwk::generate(Algorithm::Es256).unwrap().with_kid(kid.clone());

    let cases: Vec<(&str, String, Denial)> = vec![
        ("alg none", none, Denial::BadSignature),
        ("HS256 with the public key", hs256, Denial::BadSignature),
        ("no exp", sign(&no_exp), Denial::MissingExpiry),
        ("lifetime 301 s", sign(&overlong), Denial::LifetimeTooLong),
        ("nbf 2 min ahead", sign(&future), Denial::NotYetValid),
        ("expired", sign(&expired), Denial::Expired),
        ("other host", sign(&wrong_aud), Denial::WrongAudience),
        ("other port", sign(&wrong_port), Denial::WrongAudience),
        ("SSH audience on X.509", sign(&ssh_aud), Denial::WrongAudience),
        ("revoke audience on sign", sign(&revoke_aud), Denial::WrongAudience),
        ("wrong iss", sign(&wrong_iss), Denial::WrongIssuer),
        ("no jti", sign(&no_jti), Denial::Malformed),
        ("no sub", sign(&no_sub), Denial::Malformed),
        ("unknown kid", sign_jwt(&key, &unknown_kid, &good).unwrap(), Denial::UnknownKey),
        (
            "same kid, other key",
            sign_jwt(&other_key, &Header::default(), &good).unwrap(),
            Denial::BadSignature,
        ),
        ("not a JWS", "eyJhbGciOiJFUzI1NiJ9.e30".into(), Denial::Malformed),
    ];
    for (what, token, denial) in &cases {
        // A refusal carries no grant, so no replay id exists to be spent.
        assert_eq!(
            authorize(&p, token, Operation::SignX509, SIGN).map(|g| g.replay_id),
            Err(*denial),
            "{what}"
        );
    }
    // The good token itself passes, so each case fails for its own reason.
    assert!(authorize(&p, &sign(&good), Operation::SignX509, SIGN).is_ok());
}

#[test]
fn jwk_algorithm_comes_from_the_key() {
    // An RSA provisioner key declared PS256: an RS256 token by the same key is refused.
    let key = PrivateJwk::generate(Algorithm::Rs256).unwrap();
    let pss_public = key.public().clone().with_alg(Algorithm::Ps256).unwrap();
    let p = JwkProvisioner::new("admin", pss_public, None, ssh_enabled());
    let token = sign_jwt(&key, &Header::default(), &claims("admin", "h", SIGN)).unwrap();
    assert_eq!(authorize(&p, &token, Operation::SignX509, SIGN).err(), Some(Denial::BadSignature));
    let pss = key.with_alg(Algorithm::Ps256).unwrap();
    let token = sign_jwt(&pss, &Header::default(), &claims("admin", "h", SIGN)).unwrap();
    assert!(authorize(&p, &token, Operation::SignX509, SIGN).is_ok());
    // EdDSA.
    let (key, p) = jwk_setup(Algorithm::EdDsa);
    let token = sign_jwt(&key, &Header::default(), &claims("admin", "h", SIGN)).unwrap();
    assert!(authorize(&p, &token, Operation::SignX509, SIGN).is_ok());
}

fn ssh_token(key: &PrivateJwk, cert_type: SshCertType, aud: &str) -> TokenClaims {
    let mut c = claims("admin", "alice", aud);
    let mut ssh =
        SshClaims::new(cert_type, "alice@example.test", vec!["alice".into(), "root".into()]);
    ssh.valid_before = Some(TimeOrDuration::Duration(8 * 3600 * 1_000_000_000));
    let mut step = StepClaims::default();
    step.ssh = Some(ssh);
    c.step = Some(step);
    let _ = key;
    c
}

#[test]
fn jwk_ssh_tokens_only_for_ssh_and_x509_tokens_never_for_ssh() {
    let (key, p) = jwk_setup(Algorithm::Es256);
    let ssh_sign = "https://ca.example.test:9443/1.0/ssh/sign";
    let user = ssh_token(&key, SshCertType::User, ssh_sign);
    let token = sign_jwt(&key, &Header::default(), &user).unwrap();
    let grant = authorize(&p, &token, Operation::SignSshUser, ssh_sign).unwrap();
    assert_eq!(grant.subject, "alice@example.test", "the keyID");
    assert_eq!(grant.sans, vec!["alice".to_string(), "root".into()], "the principals");
    assert_eq!(grant.not_after, now() + Duration::from_secs(8 * 3600), "validBefore");
    assert_eq!(
        authorize(&p, &token, Operation::SignSshHost, ssh_sign).err(),
        Some(Denial::PolicyViolation)
    );

    // An SSH token on the X.509 endpoint, an X.509 token on the SSH endpoint.
    let on_x509 =
        sign_jwt(&key, &Header::default(), &ssh_token(&key, SshCertType::User, SIGN)).unwrap();
    assert_eq!(
        authorize(&p, &on_x509, Operation::SignX509, SIGN).err(),
        Some(Denial::PolicyViolation)
    );
    let x509 = sign_jwt(&key, &Header::default(), &claims("admin", "alice", ssh_sign)).unwrap();
    assert_eq!(
        authorize(&p, &x509, Operation::SignSshUser, ssh_sign).err(),
        Some(Denial::PolicyViolation)
    );

    // Beyond the user maximum (24 h).
    let mut long = ssh_token(&key, SshCertType::User, ssh_sign);
    long.step.as_mut().unwrap().ssh.as_mut().unwrap().valid_before =
        Some(TimeOrDuration::Duration(25 * 3600 * 1_000_000_000));
    let long = sign_jwt(&key, &Header::default(), &long).unwrap();
    assert_eq!(
        authorize(&p, &long, Operation::SignSshUser, ssh_sign).err(),
        Some(Denial::ValidityOutOfBounds)
    );

    // Without enableSSHCA.
    let off =
        JwkProvisioner::new("admin", key.public().clone(), None, effective(Claims::default()));
    assert_eq!(
        authorize(&off, &token, Operation::SignSshUser, ssh_sign).err(),
        Some(Denial::OperationNotAllowed)
    );

    // Operations outside the JWK matrix.
    for (op, path) in
        [(Operation::RekeyX509, "/1.0/rekey"), (Operation::RenewSsh, "/1.0/ssh/renew")]
    {
        let aud = format!("https://ca.example.test:9443{path}");
        let token = sign_jwt(&key, &Header::default(), &claims("admin", "h", &aud)).unwrap();
        assert_eq!(
            authorize(&p, &token, op, &aud).err(),
            Some(Denial::OperationNotAllowed),
            "{op:?}"
        );
    }
    // Renewal disabled.
    let no_renew = JwkProvisioner::new(
        "admin",
        key.public().clone(),
        None,
        effective(Claims { disable_renewal: Some(true), ..Claims::default() }),
    );
    let renew = "https://ca.example.test:9443/1.0/renew";
    let token = sign_jwt(&key, &Header::default(), &claims("admin", "h", renew)).unwrap();
    assert_eq!(
        authorize(&no_renew, &token, Operation::RenewX509, renew).err(),
        Some(Denial::OperationNotAllowed)
    );
    assert!(no_renew.renewal_disabled() && !p.renewal_disabled());
}

#[test]
fn jwk_configuration_is_step_ca_json() {
    let key = PrivateJwk::generate(Algorithm::Es256).unwrap();
    let fast = Pbes2Options { iterations: 1000, ..Pbes2Options::default() };
    let encrypted = encrypt_pbes2_with(key.to_json().as_bytes(), b"pw", &fast).unwrap();
    let json = serde_json::json!({
        "type": "JWK",
        "name": "admin",
        "key": serde_json::from_str::<serde_json::Value>(&key.public().to_json()).unwrap(),
        "encryptedKey": encrypted,
        "claims": {"enableSSHCA": true, "maxTLSCertDuration": "48h", "defaultTLSCertDuration": "36h"},
    })
    .to_string();
    let authority = Claims { disable_renewal: Some(true), ..Claims::default() };
    let p = provisioner_from_json(&json, &authority).unwrap();
    assert_eq!((p.kind(), p.name()), (ProvisionerKind::Jwk, "admin"));
    let claims = p.effective_claims().unwrap();
    assert!(claims.enable_ssh_ca && claims.disable_renewal, "layered over the authority");
    assert_eq!(claims.tls.default, Duration::from_secs(36 * 3600));
    let listed: serde_json::Value = serde_json::from_str(&p.to_json()).unwrap();
    assert_eq!(listed["type"], "JWK");
    assert_eq!(listed["encryptedKey"], encrypted);
    assert_eq!(listed["key"]["kid"], key.public().thumbprint());
    assert!(listed["key"].get("d").is_none());
    assert_eq!(listed["claims"]["maxTLSCertDuration"], "48h0m0s");
    // The listing reads back the same.
    let again = JwkProvisioner::from_json(&p.to_json(), &authority).unwrap();
    assert_eq!(again.to_json(), p.to_json());
    // step's client decrypts encryptedKey with the password; the key inside is the one.
    let inside = PrivateJwk::decrypt(again.encrypted_key().unwrap(), b"pw").unwrap();
    assert_eq!(inside.public().thumbprint(), key.public().thumbprint());

    // Refusals: a private key, templates, typos.
    let private = serde_json::json!({
        "type": "JWK", "name": "x",
        "key": serde_json::from_str::<serde_json::Value>(&key.to_json()).unwrap(),
    });
    let options = serde_json::json!({
        "type": "JWK", "name": "x",
        "key": serde_json::from_str::<serde_json::Value>(&key.public().to_json()).unwrap(),
        "options": {"x509": {"template": "{}"}},
    });
    let typo = serde_json::json!({
        "type": "JWK", "name": "x",
        "key": serde_json::from_str::<serde_json::Value>(&key.public().to_json()).unwrap(),
        "encryptedkey": "a.b.c.d.e",
    });
    for bad in [private, options, typo] {
        assert!(provisioner_from_json(&bad.to_string(), &Claims::default()).is_err(), "{bad}");
    }
}

#[test]
fn static_tokens_compare_hashes_and_allow_configured_operations() {
    let hash = StaticTokenProvisioner::hash_token("station-secret");
    let p = StaticTokenProvisioner::new("stations", hash, effective(Claims::default()));
    let grant = authorize(&p, "station-secret", Operation::TakeJobs, "grpc").unwrap();
    assert_eq!((grant.subject.as_str(), grant.replay_id), ("stations", None));
    assert_eq!(
        authorize(&p, "station-secreT", Operation::TakeJobs, "grpc").err(),
        Some(Denial::BadSignature)
    );
    assert_eq!(
        authorize(&p, "station-secret", Operation::SignX509, SIGN).err(),
        Some(Denial::OperationNotAllowed)
    );

    let json = serde_json::json!({
        "type": "StaticToken", "name": "defguard",
        "tokenSha256": StaticTokenProvisioner::hash_token("t0k3n").iter().map(|b| format!("{b:02x}")).collect::<String>(),
        "operations": ["takeJobs", "sign"], "subject": "station-7",
    })
    .to_string();
    let p = provisioner_from_json(&json, &Claims::default()).unwrap();
    assert_eq!(p.kind(), ProvisionerKind::Token);
    assert_eq!(
        authorize(p.as_ref(), "t0k3n", Operation::SignX509, SIGN).unwrap().subject,
        "station-7"
    );
    assert!(!p.to_json().contains("t0k3n"));
    let again = provisioner_from_json(&p.to_json(), &Claims::default()).unwrap();
    assert_eq!(again.to_json(), p.to_json());
    let bad = json.replace("takeJobs", "teleport");
    assert!(provisioner_from_json(&bad, &Claims::default()).is_err());
}

// --- X5C ------------------------------------------------------------------------------------

struct Pki {
    root_der: Vec<u8>,
    intermediate_der: Vec<u8>,
    intermediate: keystation_keygen::HostSigner,
}

fn signer() -> keystation_keygen::HostSigner {
    let secret: SecretKey = keystation_keygen::SoftKeyGen::with_os_random()
        .generate_secret(KeyAlgorithm::NistP256)
        .unwrap();
    keystation_keygen::HostSigner::new(&secret).unwrap()
}

fn validity(from: i64, to: i64) -> Validity {
    Validity { not_before: from as u64, not_after: to as u64 }
}

fn new_pki() -> Pki {
    let mut root = signer();
    let ca = CertificateOptions { ca: true, ..CertificateOptions::default() };
    let root_der = self_signed_certificate(
        &mut root,
        &DistinguishedName::common_name("Test Root"),
        &[1],
        validity(t(-86_400), t(365 * 86_400)),
        &ca,
    )
    .unwrap();
    let intermediate = signer();
    let intermediate_der = issue_certificate(
        &mut root,
        &root_der,
        &keystation_core::keygen::Signer::public_key(&intermediate).clone(),
        &DistinguishedName::common_name("Test Intermediate"),
        &[2],
        validity(t(-86_400), t(365 * 86_400)),
        &ca,
    )
    .unwrap();
    Pki { root_der, intermediate_der, intermediate }
}

impl Pki {
    fn leaf(
        &mut self,
        key: &PublicKey,
        cn: &str,
        eku: Vec<ExtendedKeyUsage>,
        from: i64,
        to: i64,
    ) -> Vec<u8> {
        let options =
            CertificateOptions { extended_key_usage: eku, ..CertificateOptions::default() };
        issue_certificate(
            &mut self.intermediate,
            &self.intermediate_der,
            key,
            &DistinguishedName::common_name(cn),
            &[3, cn.len() as u8],
            validity(from, to),
            &options,
        )
        .unwrap()
    }
}

fn x5c_token(key: &PrivateJwk, chain: Vec<Vec<u8>>, c: &TokenClaims) -> String {
    let mut header = Header::default();
    header.x5c = Some(chain);
    sign_jwt(key, &header, c).unwrap()
}

#[test]
fn x5c_chains_to_the_roots_and_signs_with_the_leaf() {
    let mut pki = new_pki();
    let leaf_key = PrivateJwk::generate(Algorithm::Es256).unwrap();
    let leaf_public = leaf_key.public().public_key().clone();
    let leaf = pki.leaf(
        &leaf_public,
        "client.example.test",
        vec![ExtendedKeyUsage::ClientAuth],
        t(-60),
        t(3600),
    );
    let p =
        X5cProvisioner::new("x5c", &[pki.root_der.clone()], effective(Claims::default())).unwrap();
    let aud = format!("{SIGN}#x5c/x5c");
    let c = claims("x5c", "client.example.test", &aud);
    let chain = vec![leaf.clone(), pki.intermediate_der.clone()];
    let grant =
        authorize(&p, &x5c_token(&leaf_key, chain.clone(), &c), Operation::SignX509, SIGN).unwrap();
    assert_eq!(grant.subject, "client.example.test");
    assert_eq!(grant.replay_id, c.jti);
    assert_eq!(
        grant.not_after,
        UNIX_EPOCH + Duration::from_secs(t(3600) as u64),
        "capped at the leaf"
    );

    // Refusals.
    let other = new_pki();
    let no_fragment = claims("x5c", "client.example.test", SIGN);
    let mut expired_pki = pki;
    let expired = expired_pki.leaf(&leaf_public, "old", vec![], t(-7200), t(-3600));
    let server_only =
        expired_pki.leaf(&leaf_public, "srv", vec![ExtendedKeyUsage::ServerAuth], t(-60), t(3600));
    let rogue = PrivateJwk::generate(Algorithm::Es256).unwrap();
    let p_other = X5cProvisioner::new(
        "x5c",
        std::slice::from_ref(&other.root_der),
        effective(Claims::default()),
    )
    .unwrap();
    let cases: Vec<(&str, &X5cProvisioner, String, Denial)> = vec![
        ("other roots", &p_other, x5c_token(&leaf_key, chain.clone(), &c), Denial::UntrustedChain),
        (
            "no intermediate",
            &p,
            x5c_token(&leaf_key, vec![leaf.clone()], &c),
            Denial::UntrustedChain,
        ),
        (
            "expired leaf",
            &p,
            x5c_token(&leaf_key, vec![expired, expired_pki.intermediate_der.clone()], &c),
            Denial::UntrustedChain,
        ),
        (
            "server-only EKU",
            &p,
            x5c_token(&leaf_key, vec![server_only, expired_pki.intermediate_der.clone()], &c),
            Denial::PolicyViolation,
        ),
        ("not signed by the leaf", &p, x5c_token(&rogue, chain.clone(), &c), Denial::BadSignature),
        (
            "no #x5c fragment",
            &p,
            x5c_token(&leaf_key, chain.clone(), &no_fragment),
            Denial::WrongAudience,
        ),
        (
            "no x5c header",
            &p,
            sign_jwt(&leaf_key, &Header::default(), &c).unwrap(),
            Denial::Malformed,
        ),
    ];
    for (what, p, token, denial) in cases {
        assert_eq!(authorize(p, &token, Operation::SignX509, SIGN).err(), Some(denial), "{what}");
    }

    // step-ca's JSON: roots are base64 of PEM.
    let pem = keystation_x509::Certificate::from_der(&expired_pki.root_der).unwrap().to_pem();
    use base64::Engine as _;
    let json = serde_json::json!({
        "type": "X5C", "name": "x5c",
        "roots": base64::engine::general_purpose::STANDARD.encode(pem),
        "claims": {"enableSSHCA": true},
    })
    .to_string();
    let p = provisioner_from_json(&json, &Claims::default()).unwrap();
    assert_eq!(p.kind(), ProvisionerKind::X5c);
    assert!(
        authorize(p.as_ref(), &x5c_token(&leaf_key, chain, &c), Operation::SignX509, SIGN).is_ok()
    );
    let again = provisioner_from_json(&p.to_json(), &Claims::default()).unwrap();
    assert_eq!(again.to_json(), p.to_json());
}

#[test]
fn x5c_insecure_renewal_tokens() {
    let mut pki = new_pki();
    let leaf_key = PrivateJwk::generate(Algorithm::Es256).unwrap();
    // An expired certificate: what renewal after expiry presents.
    let leaf = pki.leaf(
        leaf_key.public().public_key(),
        "c1",
        vec![ExtendedKeyUsage::ClientAuth],
        t(-7200),
        t(-3600),
    );
    let renew = "https://ca.example.test:9443/1.0/renew".to_string();
    let make = |iss: &str, sub: &str| {
        let mut header = Header::default();
        header.x5c_insecure = Some(vec![leaf.clone(), pki.intermediate_der.clone()]);
        sign_jwt(&leaf_key, &header, &claims(iss, sub, &renew)).unwrap()
    };
    let life = Duration::from_secs(300);
    let ok = verify_x5c_insecure(
        &make("step-ca-client/1.0", "c1"),
        std::slice::from_ref(&renew),
        &pki.intermediate_der,
        now(),
        life,
    );
    assert_eq!(ok.as_deref().ok(), Some(leaf.as_slice()));
    let v = |token: String, audiences: &[String], issuer: &[u8]| {
        verify_x5c_insecure(&token, audiences, issuer, now(), life).err()
    };
    assert_eq!(
        v(make("admin", "c1"), std::slice::from_ref(&renew), &pki.intermediate_der),
        Some(Denial::WrongIssuer)
    );
    assert_eq!(
        v(make("step-ca-client/1.0", "c2"), std::slice::from_ref(&renew), &pki.intermediate_der),
        Some(Denial::PolicyViolation)
    );
    let sign = vec![SIGN.to_string()];
    assert_eq!(
        v(make("step-ca-client/1.0", "c1"), &sign, &pki.intermediate_der),
        Some(Denial::WrongAudience)
    );
    assert_eq!(
        v(make("step-ca-client/1.0", "c1"), &[renew], &pki.root_der),
        Some(Denial::UntrustedChain)
    );
}

// --- SSHPOP ----------------------------------------------------------------------------------

fn ssh_keygen(dir: &std::path::Path, args: &[&str]) {
    let out = Command::new("ssh-keygen").current_dir(dir).args(args).output().unwrap_or_else(|e| {
        panic!("ssh-keygen is required for the SSHPOP tests (openssh-client): {e}")
    });
    assert!(out.status.success(), "ssh-keygen {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A core key from an OpenSSH public key line (the CA's).
fn openssh_public(line: &str) -> PublicKey {
    let key = ssh_key::PublicKey::from_openssh(line.trim()).unwrap();
    match key.key_data() {
        ssh_key::public::KeyData::Ed25519(k) => {
            PublicKey::from_point(KeyAlgorithm::Ed25519, &k.0).unwrap()
        }
        other => panic!("unexpected CA key {other:?}"),
    }
}

struct SshCa {
    dir: tempfile::TempDir,
    host_ca: PublicKey,
    user_ca: PublicKey,
}

fn ssh_ca() -> SshCa {
    let dir = tempfile::tempdir().unwrap();
    ssh_keygen(dir.path(), &["-q", "-t", "ed25519", "-N", "", "-C", "host-ca", "-f", "host_ca"]);
    ssh_keygen(dir.path(), &["-q", "-t", "ed25519", "-N", "", "-C", "user-ca", "-f", "user_ca"]);
    let read = |f: &str| std::fs::read_to_string(dir.path().join(f)).unwrap();
    let host_ca = openssh_public(&read("host_ca.pub"));
    let user_ca = openssh_public(&read("user_ca.pub"));
    SshCa { dir, host_ca, user_ca }
}

impl SshCa {
    /// Certifies `key` with `ssh-keygen -s`, returning the certificate's wire bytes.
    fn certify(
        &self,
        ca: &str,
        key: &PublicKey,
        name: &str,
        host: bool,
        serial: u64,
        validity: &str,
    ) -> Vec<u8> {
        let pub_file = format!("{name}.pub");
        std::fs::write(self.dir.path().join(&pub_file), key.to_openssh(Some(name)).unwrap())
            .unwrap();
        let serial = serial.to_string();
        let mut args = vec![
            "-q",
            "-s",
            ca,
            "-I",
            name,
            "-n",
            "host1.example.test,host1",
            "-z",
            &serial,
            "-V",
            validity,
        ];
        if host {
            args.push("-h");
        }
        args.push(&pub_file);
        ssh_keygen(self.dir.path(), &args);
        let line =
            std::fs::read_to_string(self.dir.path().join(format!("{name}-cert.pub"))).unwrap();
        let blob = line.split_whitespace().nth(1).unwrap();
        keystation_core::base64::decode(blob).unwrap()
    }
}

fn sshpop_token(key: &PrivateJwk, cert: &[u8], c: &TokenClaims) -> String {
    let mut header = Header::default();
    header.sshpop = Some(cert.to_vec());
    sign_jwt(key, &header, c).unwrap()
}

/// Real time: `ssh-keygen -V` is relative to the clock.
fn authorize_now(
    p: &dyn Provisioner,
    token: &str,
    operation: Operation,
    audience: &str,
) -> Result<Grant, Denial> {
    match p.authorize(
        &request(token, operation, audience),
        &TrustedKeys::default(),
        SystemTime::now(),
    ) {
        Ok(grant) => Ok(grant),
        Err(CoreError::Unauthorized(d)) => Err(d),
        Err(other) => panic!("not a refusal: {other}"),
    }
}

fn live_claims(iss: &str, sub: &str, aud: &str) -> TokenClaims {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let mut c = claims(iss, sub, aud);
    (c.iat, c.nbf, c.exp) = (Some(now), Some(now), Some(now + 300));
    c
}

#[test]
fn sshpop_renews_rekeys_and_revokes_host_certificates() {
    let ca = ssh_ca();
    let host_key = PrivateJwk::generate(Algorithm::Es256).unwrap();
    let host_cert =
        ca.certify("host_ca", host_key.public().public_key(), "host1", true, 4242, "-5m:+2h");
    let context = {
        let mut c = ProvisionerContext::with_claims(Claims {
            enable_ssh_ca: Some(true),
            ..Claims::default()
        });
        c.ssh_host_ca_keys = vec![ca.host_ca.clone()];
        c.ssh_user_ca_keys = vec![ca.user_ca.clone()];
        c
    };
    let p = provisioner_from_json_in(r#"{"type":"SSHPOP","name":"sshpop"}"#, &context).unwrap();
    assert_eq!(p.kind(), ProvisionerKind::SshPop);
    let base = "https://ca.example.test:9443/1.0/ssh";
    let aud = |op: &str| format!("{base}/{op}#sshpop/sshpop");
    let endpoint = |op: &str| format!("{base}/{op}");

    let c = live_claims("sshpop", "host1", &aud("renew"));
    let token = sshpop_token(&host_key, &host_cert, &c);
    let grant = authorize_now(p.as_ref(), &token, Operation::RenewSsh, &endpoint("renew")).unwrap();
    assert_eq!(grant.subject, "host1", "the key ID");
    assert_eq!(grant.sans, vec!["host1.example.test".to_string(), "host1".into()]);
    assert_eq!(grant.replay_id, c.jti);
    let length = grant.not_after.duration_since(grant.not_before).unwrap();
    assert_eq!(length, Duration::from_secs(2 * 3600 + 300), "as long as the old certificate");
    assert_eq!(SshPopProvisioner::presented_certificate(&token), Some(host_cert.clone()));

    let rekey = sshpop_token(&host_key, &host_cert, &live_claims("sshpop", "host1", &aud("rekey")));
    assert!(authorize_now(p.as_ref(), &rekey, Operation::RekeySsh, &endpoint("rekey")).is_ok());

    let revoke =
        sshpop_token(&host_key, &host_cert, &live_claims("sshpop", "4242", &aud("revoke")));
    assert_eq!(
        authorize_now(p.as_ref(), &revoke, Operation::RevokeSsh, &endpoint("revoke"))
            .unwrap()
            .subject,
        "4242"
    );

    // Refusals.
    let user_key = PrivateJwk::generate(Algorithm::EdDsa).unwrap();
    let user_cert =
        ca.certify("user_ca", user_key.public().public_key(), "alice", false, 7, "-5m:+1h");
    let rogue_cert =
        ca.certify("user_ca", host_key.public().public_key(), "rogue", true, 8, "-5m:+1h");
    let old_cert = ca.certify("host_ca", host_key.public().public_key(), "old", true, 9, "-2h:-1h");
    let other = PrivateJwk::generate(Algorithm::Es256).unwrap();
    let renew_claims = live_claims("sshpop", "host1", &aud("renew"));
    let cases: Vec<(&str, String, Operation, String, Denial)> = vec![
        (
            "user certificate renew",
            sshpop_token(&user_key, &user_cert, &live_claims("sshpop", "alice", &aud("renew"))),
            Operation::RenewSsh,
            endpoint("renew"),
            Denial::PolicyViolation,
        ),
        (
            "host cert by the user CA",
            sshpop_token(&host_key, &rogue_cert, &renew_claims),
            Operation::RenewSsh,
            endpoint("renew"),
            Denial::UntrustedChain,
        ),
        (
            "expired certificate",
            sshpop_token(&host_key, &old_cert, &renew_claims),
            Operation::RenewSsh,
            endpoint("renew"),
            Denial::Expired,
        ),
        (
            "not signed by the certificate's key",
            sshpop_token(&other, &host_cert, &renew_claims),
            Operation::RenewSsh,
            endpoint("renew"),
            Denial::BadSignature,
        ),
        (
            "revoke of another serial",
            sshpop_token(&host_key, &host_cert, &live_claims("sshpop", "4243", &aud("revoke"))),
            Operation::RevokeSsh,
            endpoint("revoke"),
            Denial::PolicyViolation,
        ),
        (
            "no fragment",
            sshpop_token(
                &host_key,
                &host_cert,
                &live_claims("sshpop", "host1", &endpoint("renew")),
            ),
            Operation::RenewSsh,
            endpoint("renew"),
            Denial::WrongAudience,
        ),
        (
            "X.509 sign",
            sshpop_token(&host_key, &host_cert, &live_claims("sshpop", "host1", SIGN)),
            Operation::SignX509,
            SIGN.into(),
            Denial::OperationNotAllowed,
        ),
    ];
    for (what, token, op, endpoint, denial) in cases {
        assert_eq!(authorize_now(p.as_ref(), &token, op, &endpoint).err(), Some(denial), "{what}");
    }
    // A user certificate may be revoked by its holder.
    let revoke_user =
        sshpop_token(&user_key, &user_cert, &live_claims("sshpop", "7", &aud("revoke")));
    assert!(
        authorize_now(p.as_ref(), &revoke_user, Operation::RevokeSsh, &endpoint("revoke")).is_ok()
    );

    // Without the SSH CA's keys there is no SSHPOP provisioner.
    assert!(
        provisioner_from_json(r#"{"type":"SSHPOP","name":"sshpop"}"#, &Claims::default()).is_err()
    );
}
