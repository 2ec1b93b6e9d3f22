-- latchkey schema, version 17: the count of instance applications, kept as
-- deltas since version 16, is kept per block of 1,024 ids: `block_start` is
-- the first id of the block the counted application's id falls in. The sum
-- of every row is still the count; the sums per block, read in order, say
-- in which block the n-th instance application lies, so an offset page
-- (GET /api/v4/applications?page=3000) seeks to that block and walks at
-- most 1,024 index entries, not every entry before it. One insert per
-- create, delete or move, as before: no row is shared by two writers.

ALTER TABLE instance_application_counts ADD COLUMN block_start BIGINT NOT NULL DEFAULT 0;
ALTER TABLE instance_application_counts ALTER COLUMN block_start DROP DEFAULT;
DELETE FROM instance_application_counts;
INSERT INTO instance_application_counts (block_start, delta)
    SELECT id - id % 1024, COUNT(*) FROM oauth_applications
    WHERE owner_id IS NULL AND group_id IS NULL
    GROUP BY id - id % 1024;

CREATE OR REPLACE FUNCTION latchkey_count_instance_applications() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    was BOOLEAN := TG_OP IN ('UPDATE', 'DELETE') AND OLD.owner_id IS NULL AND OLD.group_id IS NULL;
    now_is BOOLEAN := TG_OP IN ('UPDATE', 'INSERT') AND NEW.owner_id IS NULL AND NEW.group_id IS NULL;
BEGIN
    IF was AND NOT now_is THEN
        INSERT INTO instance_application_counts (block_start, delta) VALUES (OLD.id - OLD.id % 1024, -1);
    ELSIF now_is AND NOT was THEN
        INSERT INTO instance_application_counts (block_start, delta) VALUES (NEW.id - NEW.id % 1024, 1);
    END IF;
    RETURN NULL;
END
$$;
