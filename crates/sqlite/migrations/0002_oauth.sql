-- latchkey schema, version 2: the OAuth 2 provider (codes, tokens),
-- browser sessions and sign-in throttling.

CREATE TABLE oauth_access_grants (
    id                    INTEGER PRIMARY KEY AUTOINCREMENT,
    application_id        INTEGER NOT NULL REFERENCES oauth_applications (id) ON DELETE CASCADE,
    user_id               INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_digest           TEXT    NOT NULL UNIQUE,
    redirect_uri          TEXT    NOT NULL,
    scopes                TEXT    NOT NULL,
    code_challenge        TEXT,
    code_challenge_method TEXT,
    nonce                 TEXT,
    created_at            INTEGER NOT NULL,
    expires_at            INTEGER NOT NULL,
    redeemed_at           INTEGER
);
CREATE INDEX oauth_access_grants_expires ON oauth_access_grants (expires_at);

CREATE TABLE oauth_access_tokens (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    application_id    INTEGER NOT NULL REFERENCES oauth_applications (id) ON DELETE CASCADE,
    user_id           INTEGER REFERENCES users (id) ON DELETE CASCADE,
    token_digest      TEXT    NOT NULL UNIQUE,
    refresh_digest    TEXT    UNIQUE,
    scopes            TEXT    NOT NULL,
    created_at        INTEGER NOT NULL,
    expires_at        INTEGER NOT NULL,
    revoked_at        INTEGER,
    refreshed_at      INTEGER,
    family            TEXT    NOT NULL,
    previous_token_id INTEGER,
    grant_id          INTEGER REFERENCES oauth_access_grants (id) ON DELETE SET NULL
);
CREATE INDEX oauth_access_tokens_family ON oauth_access_tokens (family);
CREATE INDEX oauth_access_tokens_grant ON oauth_access_tokens (grant_id);
CREATE INDEX oauth_access_tokens_expires ON oauth_access_tokens (expires_at);
CREATE INDEX oauth_access_tokens_application ON oauth_access_tokens (application_id);
CREATE INDEX oauth_access_tokens_user ON oauth_access_tokens (user_id);
CREATE INDEX oauth_access_grants_application ON oauth_access_grants (application_id);
CREATE INDEX oauth_access_grants_user ON oauth_access_grants (user_id);

CREATE TABLE sessions (
    digest     TEXT    PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE login_throttles (
    key          TEXT    PRIMARY KEY,
    failures     INTEGER NOT NULL,
    window_start INTEGER NOT NULL
);
