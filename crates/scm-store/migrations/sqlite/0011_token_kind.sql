-- Tokens say what they are: an API token (X-Auth-Token) or a console session. Each kind has its
-- own per-credential limit, so signing in to the console never evicts an API token (or the
-- reverse), and a value is only ever accepted where its kind is.
ALTER TABLE tokens ADD COLUMN kind TEXT NOT NULL DEFAULT 'api';
DROP INDEX tokens_by_credential;
CREATE INDEX tokens_by_credential ON tokens (access_key, kind, seq);
