-- latchkey schema, version 13: Admin Mode (GitLab's re-authentication
-- before the Admin Area, when the server runs with admin_mode on). A
-- session that re-entered its password is in Admin Mode until expires_at
-- (six hours) or until it ends: the row goes with its session. Same
-- columns as the other backend's schema of the same version.

CREATE TABLE admin_mode_sessions (
    session_digest TEXT PRIMARY KEY REFERENCES sessions (digest) ON DELETE CASCADE,
    expires_at     INTEGER NOT NULL
);
