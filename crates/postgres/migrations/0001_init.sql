-- latchkey schema, version 1: users, personal access tokens, OAuth applications.
-- Instants are milliseconds since the Unix epoch; secrets are SHA-256 hex digests.
--
-- The same tables and columns as the SQLite schema of the same version.
-- SQLite's `COLLATE NOCASE UNIQUE` on usernames and emails becomes a unique
-- index on `lower(column COLLATE "C")`: under the C collation lower() folds
-- ASCII letters only, exactly as NOCASE does, whatever the database locale.
-- Lookups must use the same expression to match (and use) the index.

CREATE TABLE users (
    id              BIGSERIAL PRIMARY KEY,
    username        TEXT    NOT NULL,
    email           TEXT    NOT NULL,
    name            TEXT    NOT NULL,
    password_digest TEXT,
    admin           BOOLEAN NOT NULL DEFAULT FALSE,
    state           TEXT    NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'blocked')),
    created_at      BIGINT  NOT NULL
);
-- PostgreSQL checks unique indexes in creation order, SQLite its
-- column-constraint indexes last-declared first: email before username, so
-- a row taking both is reported as an email conflict by either backend.
CREATE UNIQUE INDEX users_email_key ON users (lower(email COLLATE "C"));
CREATE UNIQUE INDEX users_username_key ON users (lower(username COLLATE "C"));

CREATE TABLE personal_access_tokens (
    id           BIGSERIAL PRIMARY KEY,
    user_id      BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT    NOT NULL,
    token_digest TEXT    NOT NULL,
    scopes       TEXT    NOT NULL,
    -- A calendar day as text, "YYYY-MM-DD", as SQLite stores it.
    expires_at   TEXT,
    revoked      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at   BIGINT  NOT NULL,
    CONSTRAINT personal_access_tokens_token_digest_key UNIQUE (token_digest)
);
CREATE INDEX personal_access_tokens_user ON personal_access_tokens (user_id);

CREATE TABLE oauth_applications (
    id            BIGSERIAL PRIMARY KEY,
    uid           TEXT    NOT NULL,
    name          TEXT    NOT NULL,
    secret_digest TEXT    NOT NULL,
    redirect_uri  TEXT    NOT NULL,
    scopes        TEXT    NOT NULL,
    confidential  BOOLEAN NOT NULL DEFAULT TRUE,
    trusted       BOOLEAN NOT NULL DEFAULT FALSE,
    owner_id      BIGINT  REFERENCES users (id) ON DELETE CASCADE,
    created_at    BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL,
    CONSTRAINT oauth_applications_uid_key UNIQUE (uid)
);
CREATE INDEX oauth_applications_owner ON oauth_applications (owner_id, id);
