-- keystation authority store, first schema.
--
-- One file for SQLite and PostgreSQL alike: only types and statements both accept.
-- Times are BIGINT unix seconds; text (certificates as PEM or OpenSSH lines, JSON
-- configuration) is TEXT; flags are BIGINT 0/1 (SQLite has no BOOLEAN). Every integer is
-- BIGINT so that both engines hand back 64-bit values. Identifiers the store generates
-- (job ids, CRL numbers) come from the `counters` table rather than SERIAL/AUTOINCREMENT,
-- which the two engines spell differently.

-- Provisioners managed in the store (step-ca's linkedca provisioners): `kind` is step-ca's
-- type name (JWK, X5C, SSHPOP, …), `config` the provisioner's JSON object.
CREATE TABLE provisioners (
    name TEXT NOT NULL PRIMARY KEY,
    kind TEXT NOT NULL,
    config TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Administrators: a subject authenticated through a provisioner, with a role.
CREATE TABLE admins (
    subject TEXT NOT NULL,
    provisioner TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'super-admin')),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (subject, provisioner)
);

-- Single-use token ids (step-ca's used_ott bucket), per provisioner, kept until the token
-- could no longer be accepted anyway.
CREATE TABLE spent_tokens (
    provisioner TEXT NOT NULL,
    jti TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    spent_at BIGINT NOT NULL,
    PRIMARY KEY (provisioner, jti)
);
CREATE INDEX spent_tokens_by_expiry ON spent_tokens (expires_at);

-- Issued X.509 certificates (step-ca's x509_certs and x509_certs_data). `serial` is
-- lowercase hexadecimal without leading zeros; `sans` one name per line.
CREATE TABLE x509_certificates (
    serial TEXT NOT NULL PRIMARY KEY,
    provisioner TEXT NOT NULL,
    subject TEXT NOT NULL,
    sans TEXT NOT NULL,
    not_before BIGINT NOT NULL,
    not_after BIGINT NOT NULL,
    pem TEXT NOT NULL,
    recorded_at BIGINT NOT NULL
);
CREATE INDEX x509_certificates_by_subject ON x509_certificates (subject);

-- Revoked X.509 certificates (step-ca's revoked_x509_certs); a serial need not be in
-- x509_certificates (step-ca revokes serials it has no record of, too).
CREATE TABLE x509_revocations (
    serial TEXT NOT NULL PRIMARY KEY,
    reason_code BIGINT NOT NULL,
    reason TEXT NOT NULL,
    revoked_at BIGINT NOT NULL,
    provisioner TEXT NOT NULL,
    mtls BIGINT NOT NULL
);

-- Issued SSH certificates (step-ca's ssh_certs); `serial` is the certificate's uint64 in
-- decimal (BIGINT is signed), `principals` one per line in the certificate's order,
-- `certificate` the OpenSSH line.
CREATE TABLE ssh_certificates (
    serial TEXT NOT NULL PRIMARY KEY,
    key_id TEXT NOT NULL,
    cert_type TEXT NOT NULL CHECK (cert_type IN ('user', 'host')),
    principals TEXT NOT NULL,
    not_after BIGINT NOT NULL,
    provisioner TEXT NOT NULL,
    certificate TEXT NOT NULL,
    recorded_at BIGINT NOT NULL
);

-- Each SSH certificate's principals, lowercased, for lookups (step-ca's ssh_hosts,
-- ssh_users and ssh_host_principals buckets).
CREATE TABLE ssh_certificate_principals (
    serial TEXT NOT NULL REFERENCES ssh_certificates (serial) ON DELETE CASCADE,
    principal TEXT NOT NULL,
    PRIMARY KEY (serial, principal)
);
CREATE INDEX ssh_certificate_principals_by_principal ON ssh_certificate_principals (principal);

-- Revoked SSH certificates (step-ca's revoked_ssh_certs).
CREATE TABLE ssh_revocations (
    serial TEXT NOT NULL PRIMARY KEY,
    reason_code BIGINT NOT NULL,
    reason TEXT NOT NULL,
    revoked_at BIGINT NOT NULL,
    provisioner TEXT NOT NULL,
    mtls BIGINT NOT NULL
);

-- Provisioning stations (defguard's worker protocol).
CREATE TABLE workers (
    id TEXT NOT NULL PRIMARY KEY,
    registered_at BIGINT NOT NULL,
    last_seen BIGINT NOT NULL
);

-- Provisioning jobs. `worker` NULL: any worker may take it. A job stays 'queued' until a
-- worker reports it 'done' or 'failed'.
CREATE TABLE jobs (
    id BIGINT NOT NULL PRIMARY KEY,
    worker TEXT,
    first_name TEXT NOT NULL,
    last_name TEXT NOT NULL,
    email TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('queued', 'done', 'failed')),
    public_key TEXT,
    ssh_key TEXT,
    yubikey_serial TEXT,
    error TEXT,
    created_at BIGINT NOT NULL,
    finished_at BIGINT,
    finished_by TEXT
);
CREATE INDEX jobs_by_status ON jobs (status, id);

-- Counters handed out atomically: UPDATE … SET value = value + 1 … RETURNING value.
CREATE TABLE counters (
    name TEXT NOT NULL PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO counters (name, value) VALUES ('crl_number', 0), ('job_id', 0);
