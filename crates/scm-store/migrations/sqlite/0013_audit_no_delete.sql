-- Audit events cannot be deleted either, except by the retention job: it opens the gate up to
-- its cut-off inside its own transaction, deletes the older rows and closes the gate again, so
-- any other DELETE (a bug, a stray query through the server's connection) is refused.
CREATE TABLE audit_prune_gate (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    before_ms BIGINT NOT NULL
);
INSERT INTO audit_prune_gate (id, before_ms) VALUES (1, 0);
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
WHEN OLD.at_ms >= (SELECT before_ms FROM audit_prune_gate WHERE id = 1)
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only: only the retention job deletes events');
END;
