-- latchkey schema, version 3: OpenID Connect signing keys, the device
-- authorization grant, dynamic client registration. Same tables and
-- columns as the SQLite schema of the same version.

CREATE TABLE signing_keys (
    id          BIGSERIAL PRIMARY KEY,
    kid         TEXT   NOT NULL,
    algorithm   TEXT   NOT NULL,
    private_pem TEXT   NOT NULL,
    public_n    TEXT   NOT NULL,
    public_e    TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    retired_at  BIGINT,
    CONSTRAINT signing_keys_kid_key UNIQUE (kid)
);

ALTER TABLE oauth_access_grants ADD COLUMN auth_time BIGINT;

ALTER TABLE oauth_applications ADD COLUMN dynamic BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE oauth_applications ADD COLUMN registration_token_digest TEXT;

CREATE TABLE device_grants (
    id                 BIGSERIAL PRIMARY KEY,
    application_id     BIGINT NOT NULL REFERENCES oauth_applications (id) ON DELETE CASCADE,
    device_code_digest TEXT   NOT NULL,
    user_code          TEXT   NOT NULL,
    scopes             TEXT   NOT NULL,
    created_at         BIGINT NOT NULL,
    expires_at         BIGINT NOT NULL,
    last_polled_at     BIGINT,
    user_id            BIGINT REFERENCES users (id) ON DELETE CASCADE,
    status             TEXT   NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'denied')),
    -- Created in the order SQLite checks its column constraints (last first).
    CONSTRAINT device_grants_user_code_key UNIQUE (user_code),
    CONSTRAINT device_grants_device_code_digest_key UNIQUE (device_code_digest)
);
CREATE INDEX device_grants_expires ON device_grants (expires_at);
CREATE INDEX device_grants_application ON device_grants (application_id);
