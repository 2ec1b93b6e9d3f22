-- latchkey schema, version 7: what GitLab's Users API keeps about a user
-- besides the account: whether they are external (a column, since lists
-- filter by it), when they last changed, and their profile (bio, location,
-- website, public email, administrator's note, …) as a JSON object of the
-- fields that were set.

ALTER TABLE users ADD COLUMN external INTEGER NOT NULL DEFAULT 0 CHECK (external IN (0, 1));
ALTER TABLE users ADD COLUMN updated_at INTEGER;
ALTER TABLE users ADD COLUMN profile TEXT;
UPDATE users SET updated_at = created_at;

-- Avatars: the file name each user's is served under (NULL: none), and
-- the uploaded bytes (base64), kept apart so that reading a user does not
-- read their picture.
ALTER TABLE users ADD COLUMN avatar TEXT;
CREATE TABLE user_avatars (
    user_id      INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    content_type TEXT    NOT NULL,
    data         TEXT    NOT NULL
);
