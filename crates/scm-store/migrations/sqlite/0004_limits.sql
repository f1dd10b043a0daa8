-- Limits per account and per credential.
-- Quotas: the certificates an account holds, and the orders it placed on its last order's UTC day
-- (day = Unix ms / 86400000), checked and moved in the buying transaction.
ALTER TABLE accounts ADD COLUMN certificate_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE accounts ADD COLUMN order_day BIGINT NOT NULL DEFAULT 0;
ALTER TABLE accounts ADD COLUMN orders_today BIGINT NOT NULL DEFAULT 0;
UPDATE accounts SET certificate_count =
    (SELECT COUNT(*) FROM certificates c WHERE c.domain_id = accounts.domain_id);

-- Tokens get an issue sequence, so that "the oldest tokens of a credential" is well defined even
-- for tokens issued in the same millisecond (SQLite cannot add such a column: the table is rebuilt).
CREATE TABLE tokens_new (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    token_hash TEXT NOT NULL UNIQUE,
    access_key TEXT NOT NULL REFERENCES credentials (access_key),
    domain_id  TEXT NOT NULL,
    project_id TEXT NOT NULL,
    issued_ms  BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL
);
INSERT INTO tokens_new (token_hash, access_key, domain_id, project_id, issued_ms, expires_ms)
    SELECT token_hash, access_key, domain_id, project_id, issued_ms, expires_ms FROM tokens
    ORDER BY issued_ms;
DROP TABLE tokens;
ALTER TABLE tokens_new RENAME TO tokens;
CREATE INDEX tokens_by_credential ON tokens (access_key, seq);
CREATE INDEX tokens_by_expiry ON tokens (expires_ms);
