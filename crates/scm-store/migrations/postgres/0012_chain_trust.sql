-- Imported certificates: whether the chain reached a certificate the server trusts when it was
-- imported (the signatures verified from the leaf up to a trust anchor: the machine's trust store
-- or OpenSCM's own CA), and the verdict in words (the anchor reached, or where the chain stops).
-- NULL for purchased certificates and for certificates imported before chains were verified,
-- which count as not trusted (their brand, read from an issuer name nobody verified, is no longer
-- shown).
ALTER TABLE certificates ADD COLUMN chain_trusted BOOLEAN;
ALTER TABLE certificates ADD COLUMN chain_trust_note TEXT;
