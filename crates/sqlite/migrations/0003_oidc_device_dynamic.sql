-- latchkey schema, version 3: OpenID Connect signing keys, the device
-- authorization grant, dynamic client registration.

CREATE TABLE signing_keys (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    kid         TEXT    NOT NULL UNIQUE,
    algorithm   TEXT    NOT NULL,
    private_pem TEXT    NOT NULL,
    public_n    TEXT    NOT NULL,
    public_e    TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    retired_at  INTEGER
);

ALTER TABLE oauth_access_grants ADD COLUMN auth_time INTEGER;

ALTER TABLE oauth_applications ADD COLUMN dynamic INTEGER NOT NULL DEFAULT 0 CHECK (dynamic IN (0, 1));
ALTER TABLE oauth_applications ADD COLUMN registration_token_digest TEXT;

CREATE TABLE device_grants (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    application_id     INTEGER NOT NULL REFERENCES oauth_applications (id) ON DELETE CASCADE,
    device_code_digest TEXT    NOT NULL UNIQUE,
    user_code          TEXT    NOT NULL UNIQUE,
    scopes             TEXT    NOT NULL,
    created_at         INTEGER NOT NULL,
    expires_at         INTEGER NOT NULL,
    last_polled_at     INTEGER,
    user_id            INTEGER REFERENCES users (id) ON DELETE CASCADE,
    status             TEXT    NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'denied'))
);
CREATE INDEX device_grants_expires ON device_grants (expires_at);
CREATE INDEX device_grants_application ON device_grants (application_id);
