-- latchkey schema, version 14: what a user sees of their sessions under
-- User Settings → Active sessions: the address and the browser (User-Agent)
-- that signed in. Unknown (NULL) for sessions begun before this version.
-- Same columns as the other backend's schema of the same version.

ALTER TABLE sessions ADD COLUMN ip TEXT;
ALTER TABLE sessions ADD COLUMN user_agent TEXT;
