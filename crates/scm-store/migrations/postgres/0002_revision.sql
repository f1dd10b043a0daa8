-- A counter bumped by every write that changes what servers cache (credentials, policies,
-- certificates, pushes), in the same transaction. Servers poll it and drop their read caches
-- when it moves, so a change made by another process is seen within one poll interval.
CREATE TABLE revision (
    id INTEGER PRIMARY KEY,
    n  BIGINT NOT NULL
);
INSERT INTO revision (id, n) VALUES (1, 0);
