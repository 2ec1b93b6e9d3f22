-- latchkey schema, version 7: what GitLab's Users API keeps about a user
-- besides the account: whether they are external (a column, since lists
-- filter by it), when they last changed, and their profile (bio, location,
-- website, public email, administrator's note, …) as a JSON object of the
-- fields that were set. Same columns as the SQLite schema of the same
-- version.

ALTER TABLE users ADD COLUMN external BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE users ADD COLUMN updated_at BIGINT;
ALTER TABLE users ADD COLUMN profile TEXT;
UPDATE users SET updated_at = created_at;
