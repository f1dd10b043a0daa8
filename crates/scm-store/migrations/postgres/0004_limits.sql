-- Limits per account and per credential.
-- Quotas: the certificates an account holds, and the orders it placed on its last order's UTC day
-- (day = Unix ms / 86400000), checked and moved in the buying transaction.
ALTER TABLE accounts ADD COLUMN certificate_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE accounts ADD COLUMN order_day BIGINT NOT NULL DEFAULT 0;
ALTER TABLE accounts ADD COLUMN orders_today BIGINT NOT NULL DEFAULT 0;
UPDATE accounts SET certificate_count =
    (SELECT COUNT(*) FROM certificates c WHERE c.domain_id = accounts.domain_id);

-- Tokens get an issue sequence, so that "the oldest tokens of a credential" is well defined even
-- for tokens issued in the same millisecond.
ALTER TABLE tokens ADD COLUMN seq BIGINT GENERATED ALWAYS AS IDENTITY;
CREATE INDEX tokens_by_credential ON tokens (access_key, seq);
CREATE INDEX tokens_by_expiry ON tokens (expires_ms);
