-- latchkey schema, version 20: the fold of the count of instance
-- applications marks the rows it writes and sets a new (random) generation, as on
-- PostgreSQL (see that backend's migration of the same version), so that
-- both schemas stay one. SQLite's server remembers the count itself (every
-- write goes through it) and reads neither.
ALTER TABLE instance_application_counts ADD COLUMN folded BOOLEAN NOT NULL DEFAULT 0;
CREATE TABLE instance_application_count_folds (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    generation INTEGER NOT NULL
);
INSERT INTO instance_application_count_folds (id, generation) VALUES (1, 0);
