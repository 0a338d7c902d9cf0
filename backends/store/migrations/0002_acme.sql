-- keystation authority store: the ACME server's state (RFC 8555).
--
-- The same rules as 0001: one file for SQLite and PostgreSQL, times as BIGINT unix
-- seconds, flags as BIGINT 0/1, text as TEXT, no SERIAL. Every id is a string the
-- authority generates; JSON-valued columns (identifiers, problem documents, JWKs) hold
-- what the authority serialized, which the store does not read. `position` columns keep
-- the order in which an order's authorizations and an authorization's challenges were
-- given.

-- Replay nonces (RFC 8555 §7.2): a nonce is used by deleting it, so it is used once
-- across replicas.
CREATE TABLE acme_nonces (
    nonce TEXT NOT NULL PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX acme_nonces_by_expiry ON acme_nonces (expires_at);

-- Accounts (RFC 8555 §7.1.2), one per key per provisioner. `key_thumbprint` is the RFC
-- 7638 thumbprint of the account key, `key_jwk` the key itself as a JWK; `contact` holds
-- one URL per line; `eab_key_id` the external account key it was bound with (§7.3.4).
CREATE TABLE acme_accounts (
    id TEXT NOT NULL PRIMARY KEY,
    provisioner TEXT NOT NULL,
    key_thumbprint TEXT NOT NULL,
    key_jwk TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('valid', 'deactivated', 'revoked')),
    contact TEXT NOT NULL,
    eab_key_id TEXT,
    created_at BIGINT NOT NULL,
    UNIQUE (provisioner, key_thumbprint)
);

-- Orders (RFC 8555 §7.1.3). `identifiers` is the order's JSON array, `error` a problem
-- document (RFC 7807), `certificate_id` the acme_certificates row once issued.
CREATE TABLE acme_orders (
    id TEXT NOT NULL PRIMARY KEY,
    provisioner TEXT NOT NULL,
    account_id TEXT NOT NULL REFERENCES acme_accounts (id),
    status TEXT NOT NULL
        CHECK (status IN ('pending', 'ready', 'processing', 'valid', 'invalid')),
    identifiers TEXT NOT NULL,
    not_before BIGINT,
    not_after BIGINT,
    expires_at BIGINT NOT NULL,
    error TEXT,
    certificate_id TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX acme_orders_by_account ON acme_orders (account_id, created_at, id);

-- Authorizations (RFC 8555 §7.1.4), each of one order. `key_fingerprint` binds a
-- device-attest-01 authorization to the attested key.
CREATE TABLE acme_authorizations (
    id TEXT NOT NULL PRIMARY KEY,
    order_id TEXT NOT NULL REFERENCES acme_orders (id) ON DELETE CASCADE,
    position BIGINT NOT NULL,
    account_id TEXT NOT NULL,
    identifier_type TEXT NOT NULL,
    identifier_value TEXT NOT NULL,
    wildcard BIGINT NOT NULL,
    status TEXT NOT NULL CHECK (status IN
        ('pending', 'valid', 'invalid', 'deactivated', 'expired', 'revoked')),
    expires_at BIGINT NOT NULL,
    key_fingerprint TEXT
);
CREATE INDEX acme_authorizations_by_order ON acme_authorizations (order_id, position);

-- Challenges (RFC 8555 §7.1.5, §8). `kind` is the challenge type (http-01, dns-01,
-- tls-alpn-01, device-attest-01), `attempts` counts validation attempts, `payload` keeps
-- what the client submitted (device-attest-01's attestation object).
CREATE TABLE acme_challenges (
    id TEXT NOT NULL PRIMARY KEY,
    authorization_id TEXT NOT NULL REFERENCES acme_authorizations (id) ON DELETE CASCADE,
    position BIGINT NOT NULL,
    kind TEXT NOT NULL,
    token TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'processing', 'valid', 'invalid')),
    validated_at BIGINT,
    error TEXT,
    attempts BIGINT NOT NULL,
    payload TEXT
);
CREATE INDEX acme_challenges_by_authorization ON acme_challenges (authorization_id, position);

-- Certificates issued through ACME, for download (RFC 8555 §7.4.2): the chain as issued,
-- PEM, leaf first. `serial` is spelled as in x509_certificates (lowercase hexadecimal
-- without leading zeros).
CREATE TABLE acme_certificates (
    id TEXT NOT NULL PRIMARY KEY,
    provisioner TEXT NOT NULL,
    account_id TEXT NOT NULL REFERENCES acme_accounts (id),
    order_id TEXT NOT NULL REFERENCES acme_orders (id),
    serial TEXT NOT NULL UNIQUE,
    chain_pem TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- External account binding keys (RFC 8555 §7.3.4; step-ca's `step ca acme eab add`).
-- `hmac_key` is the MAC key in base64 (RFC 4648 §4, padded); `account_id` the account it
-- is bound to, once bound (no foreign key: a key may be bound before its account row is
-- written). A reference, when given, names one key per provisioner (NULLs are distinct
-- in both engines).
CREATE TABLE acme_eab_keys (
    provisioner TEXT NOT NULL,
    key_id TEXT NOT NULL,
    reference TEXT,
    hmac_key TEXT NOT NULL,
    account_id TEXT,
    created_at BIGINT NOT NULL,
    bound_at BIGINT,
    PRIMARY KEY (provisioner, key_id),
    UNIQUE (provisioner, reference)
);
