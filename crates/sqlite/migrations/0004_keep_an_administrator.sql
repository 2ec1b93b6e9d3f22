-- latchkey schema, version 4: the instance always keeps an active
-- administrator. Blocking, demoting or deleting the last one is refused
-- here, in the database, so that no path (API, CLI, two administrators
-- racing each other) can lock everyone out. SQLite runs one writer at a
-- time, so the check and the write are atomic. The error surfaces as
-- SQLITE_CONSTRAINT_TRIGGER, which only these triggers raise.

CREATE TRIGGER users_keep_an_administrator_on_update
BEFORE UPDATE OF admin, state ON users
WHEN OLD.admin = 1 AND OLD.state = 'active'
     AND (NEW.admin = 0 OR NEW.state <> 'active')
     AND NOT EXISTS (SELECT 1 FROM users
                     WHERE admin = 1 AND state = 'active' AND id <> OLD.id)
BEGIN
    SELECT RAISE(ABORT, 'latchkey: the last active administrator cannot be blocked, demoted or deleted');
END;

CREATE TRIGGER users_keep_an_administrator_on_delete
BEFORE DELETE ON users
WHEN OLD.admin = 1 AND OLD.state = 'active'
     AND NOT EXISTS (SELECT 1 FROM users
                     WHERE admin = 1 AND state = 'active' AND id <> OLD.id)
BEGIN
    SELECT RAISE(ABORT, 'latchkey: the last active administrator cannot be blocked, demoted or deleted');
END;
