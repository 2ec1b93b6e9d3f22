-- latchkey schema, version 16: on PostgreSQL, a trigger keeps the count of
-- instance applications as deltas in this table (see that backend's
-- migration of the same version). On SQLite the serving process remembers
-- the count itself and the table stays empty; it exists so that both
-- schemas have the same columns.

CREATE TABLE instance_application_counts (
    id    INTEGER PRIMARY KEY AUTOINCREMENT,
    delta INTEGER NOT NULL
);
