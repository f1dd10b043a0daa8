-- Expiry reminders (EnableNotification / DisableNotification): a certificate's reminders are on
-- unless a row here turns one kind off; `certificate_reminders` records each reminder sent, once
-- per kind and expiry (a renewed certificate, with a new not_after, is reminded again). Both go
-- when their certificate goes.
CREATE TABLE certificate_notices (
    cert_id     TEXT NOT NULL REFERENCES certificates (id) ON DELETE CASCADE,
    notice_type TEXT NOT NULL,
    enabled     BOOLEAN NOT NULL,
    updated_ms  BIGINT NOT NULL,
    PRIMARY KEY (cert_id, notice_type)
);
CREATE TABLE certificate_reminders (
    cert_id      TEXT NOT NULL REFERENCES certificates (id) ON DELETE CASCADE,
    notice_type  TEXT NOT NULL,
    not_after_ms BIGINT NOT NULL,
    sent_ms      BIGINT NOT NULL,
    PRIMARY KEY (cert_id, notice_type, not_after_ms)
);
CREATE INDEX certificates_by_expiry ON certificates (not_after_ms);
