-- latchkey schema, version 5: when the user behind a token signed in
-- (OpenID Connect's auth_time, carried along a refresh chain and recorded
-- when a device request is approved), and the grant types an application
-- may use (RFC 7591's grant_types; NULL allows every grant the server
-- offers, as before). Same columns as the SQLite schema of the same version.

ALTER TABLE oauth_access_tokens ADD COLUMN auth_time BIGINT;
ALTER TABLE device_grants ADD COLUMN auth_time BIGINT;
ALTER TABLE oauth_applications ADD COLUMN grant_types TEXT;

-- Clients registered dynamically before this version stored no grant types:
-- give them what registration allows now (every registrable grant; never the
-- password grant, which registration never offered).
UPDATE oauth_applications
   SET grant_types = 'authorization_code refresh_token client_credentials urn:ietf:params:oauth:grant-type:device_code'
 WHERE dynamic;
