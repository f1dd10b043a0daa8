-- The audit log: one row per state-changing call and per export of a private key, written by the
-- API after the call is answered. Append-only: no code path updates or deletes a row, and the
-- trigger below refuses an update (a changed row would be a forged record).
CREATE TABLE audit_events (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at_ms      BIGINT NOT NULL,
    account    TEXT NOT NULL,
    credential TEXT NOT NULL,
    operation  TEXT NOT NULL,
    -- The ids the call named or created, each between commas (`,scs1,ord2,`), so that a search
    -- for one id is a LIKE on whole ids.
    targets    TEXT NOT NULL,
    outcome    TEXT NOT NULL,
    status     INTEGER NOT NULL,
    request_id TEXT NOT NULL,
    source     TEXT NOT NULL
);
CREATE INDEX audit_events_by_time ON audit_events (at_ms, id);
CREATE INDEX audit_events_by_account ON audit_events (account, at_ms, id);
CREATE INDEX audit_events_by_operation ON audit_events (operation, at_ms, id);
CREATE FUNCTION audit_events_refuse_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only';
END
$$;
CREATE TRIGGER audit_events_append_only BEFORE UPDATE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_refuse_update();
