-- latchkey schema, version 6: the audit trail (GitLab's audit events).
-- One row per change, written in the same transaction as the change. No
-- foreign keys: an event outlives the user, application or token it names.
-- Never a secret or token value: `details` holds what changed (from/to) and
-- facts about the target, as JSON text (text, not jsonb: it is written and
-- read whole, and SQLite stores the same). Same columns as the SQLite
-- schema of the same version.

CREATE TABLE audit_events (
    id             BIGSERIAL PRIMARY KEY,
    created_at     BIGINT  NOT NULL,
    author_id      BIGINT  NOT NULL,
    author_name    TEXT    NOT NULL,
    author_email   TEXT,
    entity_type    TEXT    NOT NULL,
    entity_id      BIGINT  NOT NULL,
    entity_path    TEXT,
    event_name     TEXT    NOT NULL,
    target_type    TEXT,
    target_id      BIGINT,
    target_details TEXT,
    ip_address     TEXT,
    request_id     TEXT,
    details        TEXT    NOT NULL
);
CREATE INDEX audit_events_created ON audit_events (created_at);
CREATE INDEX audit_events_entity ON audit_events (entity_type, entity_id, id);
