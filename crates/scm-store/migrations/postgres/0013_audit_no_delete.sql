-- Audit events cannot be deleted either, except by the retention job: it opens the gate up to
-- its cut-off inside its own transaction, deletes the older rows and closes the gate again, so
-- any other DELETE (a bug, a stray query through the server's connection) is refused, and so is
-- TRUNCATE (which skips row triggers).
CREATE TABLE audit_prune_gate (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    before_ms BIGINT NOT NULL
);
INSERT INTO audit_prune_gate (id, before_ms) VALUES (1, 0);
CREATE FUNCTION audit_events_refuse_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.at_ms >= (SELECT before_ms FROM audit_prune_gate WHERE id = 1) THEN
        RAISE EXCEPTION 'audit_events is append-only: only the retention job deletes events';
    END IF;
    RETURN OLD;
END
$$;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_refuse_delete();
CREATE FUNCTION audit_events_refuse_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only: it cannot be truncated';
END
$$;
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_refuse_truncate();
