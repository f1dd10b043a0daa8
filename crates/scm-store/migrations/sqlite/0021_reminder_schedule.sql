-- Expiry reminders at several points before not_after ([notifications] expiring_days): each
-- certificate carries the time the reminder sweep must next look at it (remind_at_ms, indexed,
-- so a sweep reads only what is due, however many certificates there are), and a reminder is
-- recorded once per kind, expiry and threshold (days_before; 0 for CERT_EXPIRED).
--
-- A new expiry (issuance, renewal, import) sets remind_at_ms to a year before it, the earliest a
-- threshold can fall due (1..=365 days); the sweep then moves it from threshold to threshold,
-- and clears it once CERT_EXPIRED is dealt with. Kept by triggers: every writer of not_after_ms
-- stays unaware of it.
ALTER TABLE certificates ADD COLUMN remind_at_ms BIGINT;

CREATE TABLE certificate_reminders_0021 (
    cert_id      TEXT NOT NULL REFERENCES certificates (id) ON DELETE CASCADE,
    notice_type  TEXT NOT NULL,
    not_after_ms BIGINT NOT NULL,
    days_before  BIGINT NOT NULL,
    sent_ms      BIGINT NOT NULL,
    PRIMARY KEY (cert_id, notice_type, not_after_ms, days_before)
);
-- Reminders sent before: CERT_EXPIRING was sent 30 days before the expiry.
INSERT INTO certificate_reminders_0021 (cert_id, notice_type, not_after_ms, days_before, sent_ms)
SELECT cert_id, notice_type, not_after_ms,
       CASE WHEN notice_type = 'CERT_EXPIRING' THEN 30 ELSE 0 END, sent_ms
  FROM certificate_reminders;
DROP TABLE certificate_reminders;
ALTER TABLE certificate_reminders_0021 RENAME TO certificate_reminders;

-- Every expiry not yet told as expired is looked at by the next sweeps.
UPDATE certificates SET remind_at_ms = not_after_ms - 31536000000
 WHERE not_after_ms IS NOT NULL
   AND NOT EXISTS (SELECT 1 FROM certificate_reminders r WHERE r.cert_id = certificates.id
                   AND r.notice_type = 'CERT_EXPIRED' AND r.not_after_ms = certificates.not_after_ms);
CREATE INDEX certificates_by_remind_at ON certificates (remind_at_ms) WHERE remind_at_ms IS NOT NULL;

CREATE TRIGGER certificates_remind_on_insert AFTER INSERT ON certificates
WHEN NEW.not_after_ms IS NOT NULL
BEGIN
    UPDATE certificates SET remind_at_ms = NEW.not_after_ms - 31536000000 WHERE id = NEW.id;
END;
CREATE TRIGGER certificates_remind_on_expiry AFTER UPDATE OF not_after_ms ON certificates
WHEN NEW.not_after_ms IS NOT OLD.not_after_ms
BEGIN
    UPDATE certificates SET remind_at_ms = NEW.not_after_ms - 31536000000 WHERE id = NEW.id;
END;

-- The metrics count the deployments in trouble (failing, not served, drifted) at every scrape of
-- every server: through this index they read only those.
CREATE INDEX deployments_in_trouble ON deployments (target)
    WHERE failing_version IS NOT NULL OR drift_ms IS NOT NULL;
