-- OpenSCM schema v1 (SQLite). Times are Unix milliseconds. Private keys and secret keys are stored
-- only sealed (AES-256-GCM under the master key), in the *_sealed BLOB columns.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Monotonic allocator for certificate ids (scs + ms timestamp): one row per id kind.
CREATE TABLE id_alloc (
    name    TEXT PRIMARY KEY,
    last_ms BIGINT NOT NULL
);
INSERT INTO id_alloc (name, last_ms) VALUES ('certificate', 0);

CREATE TABLE accounts (
    domain_id  TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    policy     TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);

CREATE TABLE projects (
    project_id TEXT PRIMARY KEY,
    domain_id  TEXT NOT NULL REFERENCES accounts (domain_id),
    name       TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    UNIQUE (domain_id, name)
);

CREATE TABLE credentials (
    access_key    TEXT PRIMARY KEY,
    domain_id     TEXT NOT NULL REFERENCES accounts (domain_id),
    project_id    TEXT NOT NULL REFERENCES projects (project_id),
    secret_sealed BLOB NOT NULL,
    status        TEXT NOT NULL,
    description   TEXT NOT NULL,
    created_ms    BIGINT NOT NULL,
    revoked_ms    BIGINT
);

CREATE TABLE tokens (
    token_hash TEXT PRIMARY KEY,
    access_key TEXT NOT NULL REFERENCES credentials (access_key),
    domain_id  TEXT NOT NULL,
    project_id TEXT NOT NULL,
    issued_ms  BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL
);

CREATE TABLE ca (
    id                      TEXT PRIMARY KEY,
    root_cert_pem           TEXT NOT NULL,
    root_key_sealed         BLOB NOT NULL,
    intermediate_cert_pem   TEXT NOT NULL,
    intermediate_key_sealed BLOB NOT NULL,
    created_ms              BIGINT NOT NULL
);

CREATE TABLE orders (
    order_id               TEXT PRIMARY KEY,
    domain_id              TEXT NOT NULL REFERENCES accounts (domain_id),
    project_id             TEXT NOT NULL,
    brand                  TEXT NOT NULL,
    cert_type              TEXT NOT NULL,
    domain_type            TEXT NOT NULL,
    effective_time         BIGINT NOT NULL,
    domain_numbers         BIGINT NOT NULL,
    order_number           BIGINT NOT NULL,
    primary_domain_type    TEXT,
    single_domain_number   BIGINT,
    wildcard_domain_number BIGINT,
    enterprise_project_id  TEXT NOT NULL,
    tags                   TEXT NOT NULL,
    created_ms             BIGINT NOT NULL
);

CREATE TABLE certificates (
    id                     TEXT PRIMARY KEY,
    domain_id              TEXT NOT NULL REFERENCES accounts (domain_id),
    project_id             TEXT NOT NULL,
    order_id               TEXT NOT NULL REFERENCES orders (order_id),
    name                   TEXT NOT NULL,
    status                 TEXT NOT NULL,
    brand                  TEXT NOT NULL,
    cert_type              TEXT NOT NULL,
    domain_type            TEXT NOT NULL,
    effective_time         BIGINT NOT NULL,
    domain_numbers         BIGINT NOT NULL,
    primary_domain_type    TEXT,
    single_domain_number   BIGINT,
    wildcard_domain_number BIGINT,
    enterprise_project_id  TEXT NOT NULL,
    description            TEXT NOT NULL,
    tags                   TEXT NOT NULL,
    domain                 TEXT,
    sans                   TEXT,
    application            TEXT,
    csr_pem                TEXT,
    validation_method      TEXT,
    key_algorithm          TEXT,
    certificate_pem        TEXT,
    chain_pem              TEXT,
    private_key_sealed     BLOB,
    serial_hex             TEXT,
    fingerprint            TEXT,
    signature_algorithm    TEXT,
    issued_ms              BIGINT,
    not_before_ms          BIGINT,
    not_after_ms           BIGINT,
    created_ms             BIGINT NOT NULL,
    updated_ms             BIGINT NOT NULL
);
CREATE INDEX certificates_by_account ON certificates (domain_id, updated_ms);

-- Every push attempt, successful or not; the API shows the last 10 successful ones.
CREATE TABLE push_records (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    cert_id   TEXT NOT NULL REFERENCES certificates (id),
    domain_id TEXT NOT NULL,
    pushed_ms BIGINT NOT NULL,
    service   TEXT NOT NULL,
    region    TEXT,
    outcome   TEXT NOT NULL,
    detail    TEXT NOT NULL,
    targets   TEXT NOT NULL
);
CREATE INDEX push_records_by_cert ON push_records (cert_id, pushed_ms);
