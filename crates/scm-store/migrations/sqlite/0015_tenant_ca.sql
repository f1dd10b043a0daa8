-- A CA per account. Every CA OpenSCM holds is a row: id is the lower-case hex of the issuing
-- (intermediate) certificate's key identifier, the name of its CRL. role is 'tenant' (the CA of
-- the account domain_id, the only one that issues that account's certificates), 'serving' (the
-- CA of the server's own HTTPS certificate, which issues nothing else; domain_id NULL) or
-- 'shared' (the one CA of every account before this migration, copied here from the table ca by
-- the server, retired: it signs its CRL and nothing else). A retired CA (retired_ms set) issues
-- nothing new; its CRL is signed until its last certificate expires. Keys are sealed under the
-- master key like every other secret.
CREATE TABLE cas (
    id                      TEXT PRIMARY KEY,
    domain_id               TEXT REFERENCES accounts (domain_id),
    role                    TEXT NOT NULL,
    root_cert_pem           TEXT NOT NULL,
    root_key_sealed         BLOB NOT NULL,
    intermediate_cert_pem   TEXT NOT NULL,
    intermediate_key_sealed BLOB NOT NULL,
    created_ms              BIGINT NOT NULL,
    retired_ms              BIGINT
);
-- At most one live CA per account, and one live serving CA: two servers making an account's CA
-- at once (or the serving CA) insert one row, and the other reads it.
CREATE UNIQUE INDEX cas_live_tenant ON cas (domain_id) WHERE role = 'tenant' AND retired_ms IS NULL;
CREATE UNIQUE INDEX cas_live_serving ON cas (role) WHERE role = 'serving' AND retired_ms IS NULL;

-- The CA that issued a purchased certificate (NULL for an imported one, and, until the server
-- fills it in at its first start after this migration, for those the shared CA issued).
ALTER TABLE certificates ADD COLUMN ca_id TEXT;
CREATE INDEX certificates_by_ca ON certificates (ca_id, not_after_ms);
