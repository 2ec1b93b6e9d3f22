-- latchkey schema, version 7: what GitLab's Users API keeps about a user
-- besides the account: whether they are external (a column, since lists
-- filter by it), when they last changed, and their profile (bio, location,
-- website, public email, administrator's note, …) as a JSON object of the
-- fields that were set.

ALTER TABLE users ADD COLUMN external INTEGER NOT NULL DEFAULT 0 CHECK (external IN (0, 1));
ALTER TABLE users ADD COLUMN updated_at INTEGER;
ALTER TABLE users ADD COLUMN profile TEXT;
UPDATE users SET updated_at = created_at;
