-- latchkey schema, version 8: when a personal access token was last used
-- (ms), written in batches by the usage recorder, at most once a minute per
-- token; NULL until first used. Same as the SQLite schema of the same
-- version.

ALTER TABLE personal_access_tokens ADD COLUMN last_used_at BIGINT;
