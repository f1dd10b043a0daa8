-- Listing at scale (100,000 certificates in an account): one index per sort of ListCertificates,
-- each ending in the id tiebreak so that a page is a walk of the index, and a lower-cased search
-- column over name, domain and SANs (a generated column: every writer stays unaware of it).
-- The keyword never holds a control character (refused at the API), so the line feeds keep a
-- match inside one field. Unlike SQLite's, PostgreSQL's B-tree entries are limited in size, so the
-- search column (SANs can be long) is not put in an index.
ALTER TABLE certificates ADD COLUMN search_text TEXT NOT NULL
    GENERATED ALWAYS AS (lower(name || chr(10) || coalesce(domain, '') || chr(10) || coalesce(sans, ''))) STORED;

DROP INDEX certificates_by_account;
CREATE INDEX certificates_list_by_update ON certificates (domain_id, updated_ms, id);
CREATE INDEX certificates_list_by_expiry_asc
    ON certificates (domain_id, coalesce(not_after_ms, 9223372036854775807), id);
CREATE INDEX certificates_list_by_expiry_desc ON certificates (domain_id, coalesce(not_after_ms, -1), id);
CREATE INDEX certificates_list_by_status ON certificates (domain_id, status, id);

-- A keyword search (`LIKE '%keyword%'`) answered from a trigram index where the pg_trgm extension
-- can be had (it ships with PostgreSQL and is trusted: a database owner may create it). Where it
-- cannot, the search scans the account's certificates, and the migration still succeeds.
DO $$
BEGIN
    CREATE EXTENSION IF NOT EXISTS pg_trgm;
    CREATE INDEX certificates_search_trigram ON certificates USING gin (search_text gin_trgm_ops);
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'pg_trgm is not available (%): content search scans the account''s certificates', SQLERRM;
END
$$;
