-- Listing at scale (100,000 certificates in an account): one index per sort of ListCertificates,
-- each ending in the id tiebreak so that a page is a walk of the index (no sort, no table read
-- for the rows skipped by an offset), and a lower-cased search column over name, domain and SANs
-- that the default-sort index covers, so a `content` search scans the index, not the table.

-- The keyword never holds a control character (refused at the API), so the line feeds keep a
-- match inside one field. Kept by triggers: every writer stays unaware of it.
ALTER TABLE certificates ADD COLUMN search_text TEXT NOT NULL DEFAULT '';
UPDATE certificates
   SET search_text = lower(name || char(10) || coalesce(domain, '') || char(10) || coalesce(sans, ''));
CREATE TRIGGER certificates_search_on_insert AFTER INSERT ON certificates
BEGIN
    UPDATE certificates
       SET search_text = lower(NEW.name || char(10) || coalesce(NEW.domain, '') || char(10) || coalesce(NEW.sans, ''))
     WHERE id = NEW.id;
END;
CREATE TRIGGER certificates_search_on_update AFTER UPDATE OF name, domain, sans ON certificates
BEGIN
    UPDATE certificates
       SET search_text = lower(NEW.name || char(10) || coalesce(NEW.domain, '') || char(10) || coalesce(NEW.sans, ''))
     WHERE id = NEW.id;
END;

DROP INDEX certificates_by_account;
CREATE INDEX certificates_list_by_update ON certificates (domain_id, updated_ms, id, search_text);
-- Expiry sorts put certificates without an expiry last in both directions.
CREATE INDEX certificates_list_by_expiry_asc
    ON certificates (domain_id, coalesce(not_after_ms, 9223372036854775807), id);
CREATE INDEX certificates_list_by_expiry_desc ON certificates (domain_id, coalesce(not_after_ms, -1), id);
CREATE INDEX certificates_list_by_status ON certificates (domain_id, status, id);
