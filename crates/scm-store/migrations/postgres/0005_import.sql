-- Imported certificates (ImportCertificate): `issuer` holds the issuer of the imported leaf and
-- marks the row as imported (NULL for purchased certificates, whose order is a real one; an
-- imported certificate gets an order row of its own only because certificates.order_id must
-- name one). Duplicate checks look certificates up by fingerprint within an account.
ALTER TABLE certificates ADD COLUMN issuer TEXT;
CREATE INDEX certificates_by_fingerprint ON certificates (domain_id, fingerprint);
