-- latchkey schema, version 21: an OAuth token announces only the changes
-- that can make a cached lookup of it wrong (see version 15). Two writes
-- of the refresh flow change nothing a token authenticates as, and no
-- longer announce themselves:
--   * marking a token refreshed (`refreshed_at`, its refresh token used):
--     its access token stays valid until the new token's first use, which
--     revokes it, and that revocation is announced;
--   * forgetting the token a refresh replaced (`previous_token_id`): no
--     instance keeps a token in memory while its refresh is unfinished.
-- A transaction that notifies holds the notification queue's lock through
-- its commit, so every refresh_token grant waited for the commits of the
-- others (3.5 to 9 backends waiting on it at 16 and 64 connections in the
-- benchmark).
DROP TRIGGER oauth_access_tokens_announce ON oauth_access_tokens;
CREATE TRIGGER oauth_access_tokens_announce
    AFTER UPDATE OF application_id, user_id, token_digest, refresh_digest, scopes, created_at,
        expires_at, revoked_at, family, grant_id, auth_time OR DELETE
    ON oauth_access_tokens FOR EACH ROW EXECUTE FUNCTION latchkey_announce_change('auth');
