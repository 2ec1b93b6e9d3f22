-- latchkey schema, version 2: the OAuth 2 provider (codes, tokens),
-- browser sessions and sign-in throttling.
--
-- The same tables and columns as the SQLite schema of the same version.
-- Unique constraints are named <table>_<column>_key (primary keys on text
-- included): the store reports a conflict by the column the name gives.

CREATE TABLE oauth_access_grants (
    id                    BIGSERIAL PRIMARY KEY,
    application_id        BIGINT  NOT NULL REFERENCES oauth_applications (id) ON DELETE CASCADE,
    user_id               BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_digest           TEXT    NOT NULL,
    redirect_uri          TEXT    NOT NULL,
    scopes                TEXT    NOT NULL,
    code_challenge        TEXT,
    code_challenge_method TEXT,
    nonce                 TEXT,
    created_at            BIGINT  NOT NULL,
    expires_at            BIGINT  NOT NULL,
    redeemed_at           BIGINT,
    CONSTRAINT oauth_access_grants_code_digest_key UNIQUE (code_digest)
);
CREATE INDEX oauth_access_grants_expires ON oauth_access_grants (expires_at);

CREATE TABLE oauth_access_tokens (
    id                BIGSERIAL PRIMARY KEY,
    application_id    BIGINT  NOT NULL REFERENCES oauth_applications (id) ON DELETE CASCADE,
    user_id           BIGINT  REFERENCES users (id) ON DELETE CASCADE,
    token_digest      TEXT    NOT NULL,
    refresh_digest    TEXT,
    scopes            TEXT    NOT NULL,
    created_at        BIGINT  NOT NULL,
    expires_at        BIGINT  NOT NULL,
    revoked_at        BIGINT,
    refreshed_at      BIGINT,
    family            TEXT    NOT NULL,
    previous_token_id BIGINT,
    grant_id          BIGINT  REFERENCES oauth_access_grants (id) ON DELETE SET NULL,
    -- Last-declared first, as SQLite checks them (see users in 0001).
    CONSTRAINT oauth_access_tokens_refresh_digest_key UNIQUE (refresh_digest),
    CONSTRAINT oauth_access_tokens_token_digest_key UNIQUE (token_digest)
);
CREATE INDEX oauth_access_tokens_family ON oauth_access_tokens (family);
CREATE INDEX oauth_access_tokens_grant ON oauth_access_tokens (grant_id);
CREATE INDEX oauth_access_tokens_expires ON oauth_access_tokens (expires_at);
CREATE INDEX oauth_access_tokens_application ON oauth_access_tokens (application_id);
CREATE INDEX oauth_access_tokens_user ON oauth_access_tokens (user_id);
CREATE INDEX oauth_access_grants_application ON oauth_access_grants (application_id);
CREATE INDEX oauth_access_grants_user ON oauth_access_grants (user_id);

CREATE TABLE sessions (
    digest     TEXT    CONSTRAINT sessions_digest_key PRIMARY KEY,
    user_id    BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT  NOT NULL,
    expires_at BIGINT  NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE login_throttles (
    key          TEXT    CONSTRAINT login_throttles_key_key PRIMARY KEY,
    failures     BIGINT  NOT NULL,
    window_start BIGINT  NOT NULL
);
