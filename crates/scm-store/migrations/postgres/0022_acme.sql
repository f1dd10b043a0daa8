-- ACME issuance: one account per configured issuer (its credentials sealed under the master
-- key), one order per (certificate, version) whose state is kept as it is learned so that a
-- restart or another server carries on the same order, the http-01 tokens every server
-- answers, and per-name validation failures (a name failing too often is left alone).
CREATE TABLE acme_accounts (
    issuer              TEXT PRIMARY KEY,
    credentials_sealed  BYTEA NOT NULL,
    paused_until_ms     BIGINT,
    pause_reason        TEXT,
    created_ms          BIGINT NOT NULL,
    updated_ms          BIGINT NOT NULL
);

CREATE TABLE acme_orders (
    cert_id       TEXT NOT NULL,
    seq           BIGINT NOT NULL,
    domain_id     TEXT NOT NULL,
    issuer        TEXT NOT NULL,
    issuer_index  BIGINT NOT NULL DEFAULT 0,
    state         TEXT NOT NULL,
    order_url     TEXT,
    key_sealed    BYTEA,
    data          TEXT NOT NULL,
    placed_ms     BIGINT,
    error         TEXT,
    rev           BIGINT NOT NULL DEFAULT 0,
    created_ms    BIGINT NOT NULL,
    updated_ms    BIGINT NOT NULL,
    PRIMARY KEY (cert_id, seq)
);
-- The order cap counts the orders placed to one CA account within a window.
CREATE INDEX acme_orders_placed ON acme_orders (issuer, placed_ms);

CREATE TABLE acme_tokens (
    token              TEXT PRIMARY KEY,
    key_authorization  TEXT NOT NULL,
    cert_id            TEXT NOT NULL,
    expires_ms         BIGINT NOT NULL
);
CREATE INDEX acme_tokens_by_cert ON acme_tokens (cert_id);

CREATE TABLE acme_name_failures (
    domain_id   TEXT NOT NULL,
    name        TEXT NOT NULL,
    failures    BIGINT NOT NULL,
    first_ms    BIGINT NOT NULL,
    last_ms     BIGINT NOT NULL,
    PRIMARY KEY (domain_id, name)
);
