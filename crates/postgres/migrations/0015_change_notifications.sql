-- latchkey schema, version 15: the database announces the changes that
-- servers cache against. Every instance on a PostgreSQL database keeps
-- what presented tokens authenticate as in memory; a trigger notifies
-- channel latchkey_changes (NOTIFY is delivered when the change commits)
-- on every change that can make such an entry wrong: when a token, its
-- user or its application changes or goes. Inserts never notify: a
-- transaction that notifies takes a database-wide lock through its commit,
-- which would serialise the commits of creates and of new tokens. Whoever
-- writes (any instance, the command line, a hand-written UPDATE) is
-- covered. Writes that change nothing a token
-- authenticates as, such as recording when a token was last used, do not
-- notify. Before answering from memory an instance makes sure it has
-- received every notification committed before (see the server's
-- ARCHITECTURE.md). SQLite's schema of the same version has no such
-- triggers: there the server sees every write itself.

CREATE FUNCTION latchkey_announce_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('latchkey_changes', TG_ARGV[0]);
    RETURN NULL;
END
$$;

CREATE TRIGGER personal_access_tokens_announce
    AFTER UPDATE OF user_id, name, token_digest, scopes, expires_at, revoked OR DELETE
    ON personal_access_tokens FOR EACH ROW EXECUTE FUNCTION latchkey_announce_change('auth');
CREATE TRIGGER personal_access_tokens_announce_truncate
    AFTER TRUNCATE ON personal_access_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION latchkey_announce_change('auth');

CREATE TRIGGER oauth_access_tokens_announce
    AFTER UPDATE OR DELETE
    ON oauth_access_tokens FOR EACH ROW EXECUTE FUNCTION latchkey_announce_change('auth');
CREATE TRIGGER oauth_access_tokens_announce_truncate
    AFTER TRUNCATE ON oauth_access_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION latchkey_announce_change('auth');

CREATE TRIGGER users_announce
    AFTER UPDATE OR DELETE
    ON users FOR EACH ROW EXECUTE FUNCTION latchkey_announce_change('auth');
CREATE TRIGGER users_announce_truncate
    AFTER TRUNCATE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION latchkey_announce_change('auth');

-- Not on secret_digest: every create and renewal sets it, and a secret is
-- not part of what a bearer token authenticates as.
CREATE TRIGGER oauth_applications_announce
    AFTER UPDATE OF uid, name, redirect_uri, scopes, confidential, trusted, owner_id, group_id,
        dynamic, grant_types OR DELETE
    ON oauth_applications FOR EACH ROW EXECUTE FUNCTION latchkey_announce_change('auth');
CREATE TRIGGER oauth_applications_announce_truncate
    AFTER TRUNCATE ON oauth_applications
    FOR EACH STATEMENT EXECUTE FUNCTION latchkey_announce_change('auth');
