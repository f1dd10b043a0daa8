-- Revocation. A revoked certificate keeps its row, in status REVOKED, with when and why.
ALTER TABLE certificates ADD COLUMN revoked_ms BIGINT;
ALTER TABLE certificates ADD COLUMN revoke_reason TEXT;

-- The serials each issuing CA has revoked, keyed by the CA's id (the lower-case hex of its key
-- identifier, also the name of its CRL): every CA signs its own CRL from its own rows. No foreign
-- key to certificates: a revoked certificate may be deleted, and its serial must stay on the CRL
-- until it expires (not_after_ms).
CREATE TABLE revocations (
    ca_id        TEXT NOT NULL,
    serial_hex   TEXT NOT NULL,
    cert_id      TEXT NOT NULL,
    revoked_ms   BIGINT NOT NULL,
    reason       TEXT NOT NULL,
    not_after_ms BIGINT NOT NULL,
    PRIMARY KEY (ca_id, serial_hex)
);

-- The current CRL of each CA, shared by every server on this database. crl_number only grows (a
-- CRL is stored only over a lower number); der is NULL until the first one is signed. changes
-- counts the CA's revocations; covers is the count the stored CRL was signed from, so a
-- revocation that arrives while a CRL is being signed is seen and signed at once after it.
CREATE TABLE crls (
    ca_id          TEXT PRIMARY KEY,
    crl_number     BIGINT NOT NULL,
    der            BYTEA,
    this_update_ms BIGINT,
    next_update_ms BIGINT,
    changes        BIGINT NOT NULL,
    covers         BIGINT NOT NULL
);
