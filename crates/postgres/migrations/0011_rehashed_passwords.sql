-- latchkey schema, version 11: a password hash imported from elsewhere
-- (bcrypt, as GitLab stores them) is replaced by an Argon2id hash at the
-- user's first sign-in; rehashed_from keeps the SHA-256 (hex) of the hash
-- it replaced, so that a state file still naming the imported hash is seen
-- as already applied. Any other password change clears it. Same column as
-- the other backend's schema of the same version.

ALTER TABLE users ADD COLUMN rehashed_from TEXT;
