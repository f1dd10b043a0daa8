-- Tags of certificates (CreateCertificateTag, BatchCreateOrDeleteTags): one value per key and
-- certificate; they go when their certificate goes.
CREATE TABLE certificate_tags (
    cert_id    TEXT NOT NULL REFERENCES certificates (id) ON DELETE CASCADE,
    domain_id  TEXT NOT NULL,
    tag_key    TEXT NOT NULL,
    tag_value  TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    PRIMARY KEY (cert_id, tag_key)
);
CREATE INDEX certificate_tags_by_account ON certificate_tags (domain_id, tag_key);
