-- latchkey schema, version 18: a device code redeemed for a token is marked
-- (`redeemed_at`, ms) instead of deleted, as an authorization code is. A
-- delete rewrote the row's entry in each of the table's four indexes (on
-- SQLite a page of the write-ahead log each, per grant); the mark changes
-- one column no index holds. The row goes with the expired ones, and a
-- second redemption of the code is refused as before (invalid_grant).
ALTER TABLE device_grants ADD COLUMN redeemed_at BIGINT;
