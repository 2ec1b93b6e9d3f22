-- latchkey schema, version 4: the instance always keeps an active
-- administrator. Blocking, demoting or deleting the last one is refused
-- here, in the database, so that no path (API, CLI, two administrators or
-- two instances racing each other) can lock everyone out. Same rule as the
-- SQLite schema of the same version.
--
-- Under READ COMMITTED two transactions could each see the other's target
-- still active; a transaction-scoped advisory lock orders them, and the
-- check after it reads a fresh snapshot (each statement of a volatile
-- function does). The error carries SQLSTATE LK001, which only this
-- function raises.

CREATE FUNCTION latchkey_keep_an_administrator() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.admin AND OLD.state = 'active'
       AND (TG_OP = 'DELETE' OR NOT NEW.admin OR NEW.state <> 'active') THEN
        PERFORM pg_advisory_xact_lock(7458201);
        IF NOT EXISTS (SELECT 1 FROM users
                       WHERE admin AND state = 'active' AND id <> OLD.id) THEN
            RAISE EXCEPTION 'the last active administrator cannot be blocked, demoted or deleted'
                USING ERRCODE = 'LK001';
        END IF;
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER users_keep_an_administrator
BEFORE UPDATE OF admin, state OR DELETE ON users
FOR EACH ROW EXECUTE FUNCTION latchkey_keep_an_administrator();
