-- Fencing of job attempts. lease_token counts the claims of a job and is never reset (unlike
-- attempts, which a release or a wait gives back): while a job runs, (lease_owner, lease_token)
-- names the one claim that may renew its lease, end it and write its effects. A worker whose
-- lease expired and was claimed again, by another worker or by itself, records nothing.
-- From this version on, lease_expires_ms is set and compared on the database's clock, not on the
-- clock of the server that claims.
ALTER TABLE jobs ADD COLUMN lease_token BIGINT NOT NULL DEFAULT 0;
