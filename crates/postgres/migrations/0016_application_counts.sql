-- latchkey schema, version 16: the count of instance-wide applications, kept
-- as deltas. Every page of GET /api/v4/applications carries the total
-- (capped at 10,001, as GitLab's); counting it walked up to 10,001 index
-- entries per page, which no instance could remember, since another
-- instance's creates are not announced (a NOTIFY would serialise their
-- commits). A trigger inserts +1 or -1 here in the transaction of each
-- create, delete or move of an instance application: no row is shared by
-- two writers, so creates do not wait for each other, and the sum read in
-- the page's own snapshot is exact. Servers fold the rows into one every
-- second. SQLite's schema of the same version has no such table: there the
-- serving process remembers the count itself.

CREATE TABLE instance_application_counts (
    id    BIGSERIAL PRIMARY KEY,
    delta BIGINT NOT NULL
);
INSERT INTO instance_application_counts (delta)
    SELECT COUNT(*) FROM oauth_applications WHERE owner_id IS NULL AND group_id IS NULL;

CREATE FUNCTION latchkey_count_instance_applications() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    was BOOLEAN := TG_OP IN ('UPDATE', 'DELETE') AND OLD.owner_id IS NULL AND OLD.group_id IS NULL;
    now_is BOOLEAN := TG_OP IN ('UPDATE', 'INSERT') AND NEW.owner_id IS NULL AND NEW.group_id IS NULL;
BEGIN
    IF was AND NOT now_is THEN
        INSERT INTO instance_application_counts (delta) VALUES (-1);
    ELSIF now_is AND NOT was THEN
        INSERT INTO instance_application_counts (delta) VALUES (1);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER oauth_applications_count
    AFTER INSERT OR DELETE OR UPDATE OF owner_id, group_id ON oauth_applications
    FOR EACH ROW EXECUTE FUNCTION latchkey_count_instance_applications();

CREATE FUNCTION latchkey_count_no_applications() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM instance_application_counts;
    RETURN NULL;
END
$$;

CREATE TRIGGER oauth_applications_count_truncate
    AFTER TRUNCATE ON oauth_applications
    FOR EACH STATEMENT EXECUTE FUNCTION latchkey_count_no_applications();
