-- Expiry reminders at several points before not_after ([notifications] expiring_days): each
-- certificate carries the time the reminder sweep must next look at it (remind_at_ms, indexed,
-- so a sweep reads only what is due, however many certificates there are), and a reminder is
-- recorded once per kind, expiry and threshold (days_before; 0 for CERT_EXPIRED).
--
-- A new expiry (issuance, renewal, import) sets remind_at_ms to a year before it, the earliest a
-- threshold can fall due (1..=365 days); the sweep then moves it from threshold to threshold,
-- and clears it once CERT_EXPIRED is dealt with. Kept by a trigger: every writer of
-- not_after_ms stays unaware of it.
ALTER TABLE certificates ADD COLUMN remind_at_ms BIGINT;

-- Reminders sent before: CERT_EXPIRING was sent 30 days before the expiry.
ALTER TABLE certificate_reminders ADD COLUMN days_before BIGINT NOT NULL DEFAULT 0;
UPDATE certificate_reminders SET days_before = 30 WHERE notice_type = 'CERT_EXPIRING';
ALTER TABLE certificate_reminders ALTER COLUMN days_before DROP DEFAULT;
ALTER TABLE certificate_reminders DROP CONSTRAINT certificate_reminders_pkey;
ALTER TABLE certificate_reminders ADD PRIMARY KEY (cert_id, notice_type, not_after_ms, days_before);

-- Every expiry not yet told as expired is looked at by the next sweeps.
UPDATE certificates SET remind_at_ms = not_after_ms - 31536000000
 WHERE not_after_ms IS NOT NULL
   AND NOT EXISTS (SELECT 1 FROM certificate_reminders r WHERE r.cert_id = certificates.id
                   AND r.notice_type = 'CERT_EXPIRED' AND r.not_after_ms = certificates.not_after_ms);
CREATE INDEX certificates_by_remind_at ON certificates (remind_at_ms) WHERE remind_at_ms IS NOT NULL;

CREATE FUNCTION certificates_remind_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' OR NEW.not_after_ms IS DISTINCT FROM OLD.not_after_ms THEN
        NEW.remind_at_ms := NEW.not_after_ms - 31536000000;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER certificates_remind_at BEFORE INSERT OR UPDATE OF not_after_ms ON certificates
    FOR EACH ROW EXECUTE FUNCTION certificates_remind_at();

-- The metrics count the deployments in trouble (failing, not served, drifted) at every scrape of
-- every server: through this index they read only those.
CREATE INDEX deployments_in_trouble ON deployments (target)
    WHERE failing_version IS NOT NULL OR drift_ms IS NOT NULL;
