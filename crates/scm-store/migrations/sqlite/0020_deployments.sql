-- The deployment engine: one delivery per (certificate version, target), each attempt recorded
-- with the version it delivered, whether a TLS handshake saw it served, and what was served.
ALTER TABLE push_records ADD COLUMN version BIGINT;
ALTER TABLE push_records ADD COLUMN verified BIGINT NOT NULL DEFAULT 0;
ALTER TABLE push_records ADD COLUMN served_serial TEXT;
ALTER TABLE push_records ADD COLUMN attempt BIGINT NOT NULL DEFAULT 0;

-- Where each certificate is deployed: per (certificate, target), the version last delivered
-- (0: none yet), whether it was seen served, the delivery that is failing now (if any), and the
-- last drift check. ListDeployedResources and the drift sweep read this, not the history.
CREATE TABLE deployments (
    cert_id         TEXT NOT NULL,
    target          TEXT NOT NULL,
    domain_id       TEXT NOT NULL,
    version         BIGINT NOT NULL DEFAULT 0,
    sha256          TEXT,
    verified        BIGINT NOT NULL DEFAULT 0,
    served_serial   TEXT,
    delivered_ms    BIGINT,
    verified_ms     BIGINT,
    failing_version BIGINT,
    not_served      BIGINT NOT NULL DEFAULT 0,
    last_error      TEXT,
    drift_ms        BIGINT,
    checked_ms      BIGINT,
    updated_ms      BIGINT NOT NULL,
    PRIMARY KEY (cert_id, target)
);
-- The drift sweep takes the rows checked longest ago.
CREATE INDEX deployments_by_check ON deployments (checked_ms);
