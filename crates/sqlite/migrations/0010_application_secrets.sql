-- latchkey schema, version 10: an application's secrets, several of which
-- may be live at once while clients move to a new one. Each is a digest,
-- with the last characters of the value as a hint (never enough to use),
-- an optional expiry and when it was last used (ms). The application's
-- own secret_digest column keeps the newest secret's digest, for readers
-- of earlier versions; latchkey reads the secrets from here. Same columns
-- as the PostgreSQL schema of the same version.

CREATE TABLE application_secrets (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    application_id INTEGER NOT NULL REFERENCES oauth_applications (id) ON DELETE CASCADE,
    digest         TEXT    NOT NULL,
    hint           TEXT,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER,
    last_used_at   INTEGER
);
CREATE INDEX application_secrets_application ON application_secrets (application_id, id);
CREATE INDEX application_secrets_expiry ON application_secrets (expires_at)
    WHERE expires_at IS NOT NULL;

-- Every application's secret so far becomes its one live secret.
INSERT INTO application_secrets (application_id, digest, created_at)
    SELECT id, secret_digest, updated_at FROM oauth_applications;
