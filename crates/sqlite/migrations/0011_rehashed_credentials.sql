-- latchkey schema, version 11: credentials imported in another system's
-- form (GitLab's bcrypt or PBKDF2 passwords, PBKDF2 or SHA-512 application
-- secrets, salted SHA-256 token digests) are replaced with latchkey's own
-- at their first successful use; rehashed_from keeps the SHA-256 (hex) of
-- the stored form each replaced, so that a state file (or an import) still
-- naming the imported form is seen as already applied. Any other change of
-- the credential clears it. Same columns as the other backend's schema of
-- the same version.

ALTER TABLE users ADD COLUMN rehashed_from TEXT;
ALTER TABLE application_secrets ADD COLUMN rehashed_from TEXT;
ALTER TABLE personal_access_tokens ADD COLUMN rehashed_from TEXT;
