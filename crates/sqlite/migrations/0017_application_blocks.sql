-- latchkey schema, version 17: the count of instance applications, kept as
-- deltas per block of 1,024 ids (`block_start` is the first id of the
-- block the counted application's id falls in), by triggers as on
-- PostgreSQL. The sums per block, read in order, say in which block the
-- n-th instance application lies, so an offset page
-- (GET /api/v4/applications?page=3000) seeks to that block and walks at
-- most 1,024 index entries, not every entry before it. The table of
-- version 16 was always empty here; it is made again with the new column.

DROP TABLE instance_application_counts;
CREATE TABLE instance_application_counts (
    id          INTEGER PRIMARY KEY,
    delta       INTEGER NOT NULL,
    block_start INTEGER NOT NULL
);
INSERT INTO instance_application_counts (block_start, delta)
    SELECT id - id % 1024, COUNT(*) FROM oauth_applications
    WHERE owner_id IS NULL AND group_id IS NULL
    GROUP BY id - id % 1024;

CREATE TRIGGER oauth_applications_count_insert
    AFTER INSERT ON oauth_applications
    FOR EACH ROW WHEN NEW.owner_id IS NULL AND NEW.group_id IS NULL
BEGIN
    INSERT INTO instance_application_counts (block_start, delta) VALUES (NEW.id - NEW.id % 1024, 1);
END;

CREATE TRIGGER oauth_applications_count_delete
    AFTER DELETE ON oauth_applications
    FOR EACH ROW WHEN OLD.owner_id IS NULL AND OLD.group_id IS NULL
BEGIN
    INSERT INTO instance_application_counts (block_start, delta) VALUES (OLD.id - OLD.id % 1024, -1);
END;

CREATE TRIGGER oauth_applications_count_move
    AFTER UPDATE OF owner_id, group_id ON oauth_applications
    FOR EACH ROW
    WHEN (OLD.owner_id IS NULL AND OLD.group_id IS NULL) <> (NEW.owner_id IS NULL AND NEW.group_id IS NULL)
BEGIN
    INSERT INTO instance_application_counts (block_start, delta)
    VALUES (NEW.id - NEW.id % 1024,
            CASE WHEN NEW.owner_id IS NULL AND NEW.group_id IS NULL THEN 1 ELSE -1 END);
END;
