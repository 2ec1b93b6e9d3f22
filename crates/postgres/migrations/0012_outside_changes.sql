-- latchkey schema, version 12: a generation that every process other than
-- the server (the command line: `latchkey users block`, `tokens revoke`,
-- `apply`, …) moves in the same transaction as each change it writes. A
-- server on SQLite caches token lookups and the count of applications,
-- counting on every change going through it; it checks this generation
-- before answering from those caches and forgets them when it moved, so a
-- change made by the command line takes effect at once. One row at most
-- (id 1), made by the first change. Not data: `db copy` and exports leave
-- it out. Same columns as the other backend's schema of the same version.

CREATE TABLE outside_changes (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    generation BIGINT NOT NULL
);
