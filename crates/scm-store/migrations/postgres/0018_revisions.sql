-- A second change counter. Row 1 (migration 0002) now counts only writes to what the access
-- caches hold (credentials, accounts and their policies); row 2 counts writes to what the
-- certificate caches hold (certificates with their application, material, versions, status,
-- renewal state and tags, and their successful pushes). Servers poll both and drop only the
-- caches whose counter moved, so the background work on certificates (issuance, renewal,
-- delivery, expiry) no longer empties every server's credential cache.
INSERT INTO revision (id, n) VALUES (2, 0);
