-- latchkey schema, version 9: groups (GitLab's group namespaces), their
-- members, and applications a group owns. Same tables and columns as the
-- PostgreSQL schema of the same version.
--
-- A group's full path ("org/platform") and full name ("Org / Platform") are
-- kept on each row, so that finding a group by its path, and listing
-- groups, reads one row each; renaming a group rewrites its descendants'
-- in the same unit of work. A subgroup goes with its parent, memberships
-- with their group or user, group applications (and, through them, their
-- grants and tokens) with their group.

CREATE TABLE groups (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    parent_id   INTEGER REFERENCES groups (id) ON DELETE CASCADE,
    name        TEXT    NOT NULL,
    path        TEXT    NOT NULL,
    full_path   TEXT    NOT NULL COLLATE NOCASE UNIQUE,
    full_name   TEXT    NOT NULL,
    description TEXT    NOT NULL DEFAULT '',
    visibility  TEXT    NOT NULL DEFAULT 'private'
                CHECK (visibility IN ('private', 'internal', 'public')),
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    avatar      TEXT
);
CREATE INDEX groups_parent ON groups (parent_id, id);

-- Group avatars, kept apart from the groups as users' are (the file name
-- each is served under is groups.avatar).
CREATE TABLE group_avatars (
    group_id     INTEGER PRIMARY KEY REFERENCES groups (id) ON DELETE CASCADE,
    content_type TEXT    NOT NULL,
    data         TEXT    NOT NULL
);

-- expires_at: a date (YYYY-MM-DD, UTC); the membership ends when it begins.
CREATE TABLE group_members (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    group_id     INTEGER NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    access_level INTEGER NOT NULL CHECK (access_level IN (5, 10, 15, 20, 30, 40, 50)),
    expires_at   TEXT,
    created_by   INTEGER REFERENCES users (id) ON DELETE SET NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    UNIQUE (group_id, user_id)
);
CREATE INDEX group_members_user ON group_members (user_id, group_id);

-- An application belongs to a user (owner_id), to a group (group_id), or,
-- with neither, to the instance.
ALTER TABLE oauth_applications ADD COLUMN group_id INTEGER REFERENCES groups (id) ON DELETE CASCADE;
CREATE INDEX oauth_applications_group ON oauth_applications (group_id, id);
CREATE INDEX oauth_applications_instance ON oauth_applications (id)
    WHERE owner_id IS NULL AND group_id IS NULL;
