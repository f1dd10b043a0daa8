-- The certificate lifecycle: versions under a stable id, domain control validation, renewal, and
-- the history of state changes.
--
-- Every issuance of a purchased certificate is a version (seq 1, 2, ...); an imported certificate
-- has none (its material is its row, and it is never renewed). The certificate row keeps a copy
-- of its current version's material (certificate_pem .. ca_id, written in the same transaction
-- as the version and the pointer current_version), so that show, export, push and the list's
-- sort indexes read one row as before. A version's private key is sealed bound to the
-- certificate and its seq: version 1 as 'cert-key:<id>' (the key of every certificate issued
-- before this migration), version n > 1 as 'cert-key:<id>:<n>', so a sealed key cannot be moved
-- to another version.
CREATE TABLE certificate_versions (
    cert_id             TEXT NOT NULL REFERENCES certificates (id) ON DELETE CASCADE,
    seq                 BIGINT NOT NULL,
    reason              TEXT NOT NULL,
    certificate_pem     TEXT NOT NULL,
    chain_pem           TEXT NOT NULL,
    private_key_sealed  BYTEA,
    serial_hex          TEXT NOT NULL,
    fingerprint         TEXT NOT NULL,
    signature_algorithm TEXT NOT NULL,
    issued_ms           BIGINT NOT NULL,
    not_before_ms       BIGINT NOT NULL,
    not_after_ms        BIGINT NOT NULL,
    ca_id               TEXT,
    renew_at_ms         BIGINT,
    created_ms          BIGINT NOT NULL,
    PRIMARY KEY (cert_id, seq)
);
CREATE INDEX certificate_versions_by_serial ON certificate_versions (serial_hex);

INSERT INTO certificate_versions (cert_id, seq, reason, certificate_pem, chain_pem,
    private_key_sealed, serial_hex, fingerprint, signature_algorithm, issued_ms, not_before_ms,
    not_after_ms, ca_id, renew_at_ms, created_ms)
SELECT id, 1, 'issued', certificate_pem,
       chain_pem, private_key_sealed, serial_hex, fingerprint, signature_algorithm, issued_ms,
       not_before_ms, not_after_ms, ca_id,
       not_after_ms - (not_after_ms - not_before_ms) / 3,
       updated_ms
  FROM certificates WHERE certificate_pem IS NOT NULL AND issuer IS NULL;

-- current_version: the seq of the version the row's material is (NULL: none issued yet).
-- renew_at_ms: when the current version is due for renewal; NULL when the certificate is not to
-- be renewed (imported, revoked, auto-renew off, nothing issued). The renewal sweep reads it
-- through its own partial index and moves it forward when it queues a renewal, so the sweep's
-- cost follows the work due, not the inventory.
-- auto_renew: the per-certificate switch (default on).
-- validation_started_ms: when the pending domain validation began (NULL: none pending); its
-- deadline counts from here.
ALTER TABLE certificates ADD COLUMN current_version BIGINT;
ALTER TABLE certificates ADD COLUMN renew_at_ms BIGINT;
ALTER TABLE certificates ADD COLUMN auto_renew BOOLEAN NOT NULL DEFAULT TRUE;
ALTER TABLE certificates ADD COLUMN validation_started_ms BIGINT;
UPDATE certificates SET current_version = 1 WHERE certificate_pem IS NOT NULL AND issuer IS NULL;
UPDATE certificates
   SET renew_at_ms = not_after_ms - (not_after_ms - not_before_ms) / 3
 WHERE certificate_pem IS NOT NULL AND issuer IS NULL AND status IN ('ISSUED', 'EXPIRED');
CREATE INDEX certificates_renew_due ON certificates (renew_at_ms) WHERE renew_at_ms IS NOT NULL;

-- Proof of control, per account and name. value is the TXT record value and the file content:
-- made once per account and name and kept, so a record left in place proves control again at
-- every renewal. validated_ms is the last successful check; last_error what the last failed one
-- saw.
CREATE TABLE domain_validations (
    domain_id    TEXT NOT NULL REFERENCES accounts (domain_id),
    name         TEXT NOT NULL,
    value        TEXT NOT NULL,
    validated_ms BIGINT,
    method       TEXT,
    checked_ms   BIGINT,
    last_error   TEXT,
    created_ms   BIGINT NOT NULL,
    PRIMARY KEY (domain_id, name)
);

-- Every state change of a certificate, with its time and cause.
CREATE TABLE certificate_events (
    id      BIGSERIAL PRIMARY KEY,
    cert_id TEXT NOT NULL REFERENCES certificates (id) ON DELETE CASCADE,
    at_ms   BIGINT NOT NULL,
    event   TEXT NOT NULL,
    detail  TEXT NOT NULL,
    actor   TEXT NOT NULL
);
CREATE INDEX certificate_events_by_cert ON certificate_events (cert_id, id);
