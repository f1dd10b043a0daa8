-- The durable job queue: work that must happen outside a request (pushes and their retries; later
-- validation checks, renewals, expiry sweeps, notifications). A worker leases a job (lease_owner,
-- lease_expires_ms) and renews the lease while it works; a job whose lease expired is claimed
-- again. `attempts` counts claims. States: pending, running, done, failed.
CREATE TABLE jobs (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    kind             TEXT NOT NULL,
    payload          TEXT NOT NULL,
    dedupe_key       TEXT,
    state            TEXT NOT NULL,
    due_ms           BIGINT NOT NULL,
    attempts         BIGINT NOT NULL DEFAULT 0,
    max_attempts     BIGINT NOT NULL,
    last_error       TEXT,
    lease_owner      TEXT,
    lease_expires_ms BIGINT,
    created_ms       BIGINT NOT NULL,
    updated_ms       BIGINT NOT NULL,
    finished_ms      BIGINT
);
CREATE INDEX jobs_claimable ON jobs (state, due_ms);
-- At most one live job per idempotency key (e.g. one renewal per certificate).
CREATE UNIQUE INDEX jobs_dedupe ON jobs (dedupe_key)
    WHERE dedupe_key IS NOT NULL AND state IN ('pending', 'running');
