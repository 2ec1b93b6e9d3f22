-- latchkey schema, version 1: users, personal access tokens, OAuth applications.
-- Instants are milliseconds since the Unix epoch; secrets are SHA-256 hex digests.

CREATE TABLE users (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    username        TEXT    NOT NULL COLLATE NOCASE UNIQUE,
    email           TEXT    NOT NULL COLLATE NOCASE UNIQUE,
    name            TEXT    NOT NULL,
    password_digest TEXT,
    admin           INTEGER NOT NULL DEFAULT 0 CHECK (admin IN (0, 1)),
    state           TEXT    NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'blocked')),
    created_at      INTEGER NOT NULL
);

CREATE TABLE personal_access_tokens (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT    NOT NULL,
    token_digest TEXT    NOT NULL UNIQUE,
    scopes       TEXT    NOT NULL,
    expires_at   TEXT,
    revoked      INTEGER NOT NULL DEFAULT 0 CHECK (revoked IN (0, 1)),
    created_at   INTEGER NOT NULL
);
CREATE INDEX personal_access_tokens_user ON personal_access_tokens (user_id);

CREATE TABLE oauth_applications (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    uid           TEXT    NOT NULL UNIQUE,
    name          TEXT    NOT NULL,
    secret_digest TEXT    NOT NULL,
    redirect_uri  TEXT    NOT NULL,
    scopes        TEXT    NOT NULL,
    confidential  INTEGER NOT NULL DEFAULT 1 CHECK (confidential IN (0, 1)),
    trusted       INTEGER NOT NULL DEFAULT 0 CHECK (trusted IN (0, 1)),
    owner_id      INTEGER REFERENCES users (id) ON DELETE CASCADE,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE INDEX oauth_applications_owner ON oauth_applications (owner_id, id);
