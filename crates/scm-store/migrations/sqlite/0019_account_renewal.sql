-- An account's own renewal window: a version is renewed when this many thousandths of its
-- lifetime are left (NULL: the server's [renewal] remaining_fraction).
ALTER TABLE accounts ADD COLUMN renew_remaining_permille BIGINT;
