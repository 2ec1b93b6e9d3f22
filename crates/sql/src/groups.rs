//! Groups and their members: statements and store methods.
//!
//! Hierarchies are walked with recursive common table expressions (both
//! dialects have them): a group's ancestors up `parent_id`, the groups
//! under a user's memberships down it. Nesting is at most
//! [`latchkey_core::group::MAX_DEPTH`] deep, so each walk is short.

use std::sync::LazyLock;

use async_trait::async_trait;
use latchkey_core::group::{
    level, Group, GroupAccess, GroupFilter, GroupStore, GroupUpdate, Member, MemberFilter,
    NewGroup, Viewer, Visibility,
};
use latchkey_core::pagination::PageRequest;
use latchkey_core::store::StoreError;
use latchkey_core::user::Avatar;

use crate::backend::{Access, Backend, Dialect, SqlStore};
use crate::conn::{count, invalid, query_as, query_one, query_opt_as, Conn, Row, Value};
use crate::filter::Where;
use crate::members::{self, level_of, live};
use crate::params;
use crate::users::contains_pattern;

macro_rules! group_columns {
    () => {
        "id, parent_id, name, path, full_path, full_name, description, visibility, created_at, \
         updated_at, avatar"
    };
}

pub(crate) use group_columns;

const INSERT_GROUP: &str = concat!(
    "INSERT INTO groups (parent_id, name, path, full_path, full_name, description, visibility,
                         created_at, updated_at, avatar)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9) RETURNING ",
    group_columns!()
);
const FIND_GROUP: &str = concat!("SELECT ", group_columns!(), " FROM groups WHERE id = $1");
static BY_PATH: LazyLock<[String; 2]> = LazyLock::new(|| {
    Dialect::ALL.map(|d| {
        format!(
            concat!("SELECT ", group_columns!(), " FROM groups WHERE {}"),
            d.nocase_eq("full_path", "$1")
        )
    })
});
static TOP_LEVEL_TAKEN: LazyLock<[String; 2]> = LazyLock::new(|| {
    Dialect::ALL.map(|d| {
        format!(
            "SELECT COUNT(*) FROM groups WHERE parent_id IS NULL AND {}",
            d.nocase_eq("full_path", "$1")
        )
    })
});
/// The group's own row; its full path and name from its parent's.
const UPDATE_GROUP: &str = concat!(
    "UPDATE groups
     SET name = COALESCE($2, name), path = COALESCE($3, path),
         description = COALESCE($4, description), visibility = COALESCE($5, visibility),
         updated_at = $6,
         avatar = CASE WHEN CAST($7 AS BOOLEAN) THEN $8 ELSE avatar END,
         full_path = COALESCE((SELECT p.full_path || '/' FROM groups p WHERE p.id = groups.parent_id), '')
                     || COALESCE($3, path),
         full_name = COALESCE((SELECT p.full_name || ' / ' FROM groups p WHERE p.id = groups.parent_id), '')
                     || COALESCE($2, name)
     WHERE id = $1 RETURNING ",
    group_columns!()
);
/// Every descendant of `$1` gets its full path and name from its
/// ancestors' (after `$1` itself changed).
const RENAME_DESCENDANTS: &str = "WITH RECURSIVE d(id, full_path, full_name) AS (
       SELECT id, full_path, full_name FROM groups WHERE id = $1
       UNION ALL
       SELECT g.id, d.full_path || '/' || g.path, d.full_name || ' / ' || g.name
       FROM groups g JOIN d ON g.parent_id = d.id
     )
     UPDATE groups SET full_path = d.full_path, full_name = d.full_name
     FROM d WHERE groups.id = d.id AND d.id <> $1";
const DELETE_GROUP: &str = "DELETE FROM groups WHERE id = $1";
const SOLELY_OWNED: &str = concat!(
    "SELECT ",
    group_columns!(),
    " FROM groups WHERE parent_id IS NULL AND id IN (
       SELECT m.group_id FROM group_members m
       WHERE m.user_id = $1 AND m.access_level = 50 AND ",
    live!("m", "$2"),
    " AND NOT EXISTS (
         SELECT 1 FROM group_members o
         WHERE o.group_id = m.group_id AND o.user_id <> $1 AND o.access_level = 50 AND ",
    live!("o", "$2"),
    "))
     ORDER BY id"
);
const SIBLING_NAMED: &str = "SELECT COUNT(*) FROM groups
     WHERE parent_id = $1 AND name = $2 AND id <> COALESCE($3, 0)";
const PUT_AVATAR: &str = "INSERT INTO group_avatars (group_id, content_type, data) VALUES ($1, $2, $3)
     ON CONFLICT (group_id) DO UPDATE SET content_type = excluded.content_type, data = excluded.data";
const DROP_AVATAR: &str = "DELETE FROM group_avatars WHERE group_id = $1";
const FIND_AVATAR: &str = "SELECT content_type, data FROM group_avatars WHERE group_id = $1";
const SUBGROUP_VISIBILITIES: &str = "SELECT DISTINCT visibility FROM groups WHERE parent_id = $1";

/// A group and its ancestors.
macro_rules! ancestors_of {
    ($group:literal) => {
        concat!(
            "WITH RECURSIVE a(id, parent_id) AS (
               SELECT id, parent_id FROM groups WHERE id = ",
            $group,
            "
               UNION ALL
               SELECT g.id, g.parent_id FROM groups g JOIN a ON g.id = a.parent_id
             ) "
        )
    };
}

const GROUP_ACCESS: &str = concat!(
    ancestors_of!("$1"),
    "SELECT MAX(m.access_level) AS level FROM group_members m JOIN a ON m.group_id = a.id
     WHERE m.user_id = $2 AND ",
    live!("m", "$3")
);

/// Every group under a user's live memberships, with the level each
/// membership gives (`direct` only on the membership's own group).
const GROUPS_OF_USER: &str = concat!(
    "WITH RECURSIVE d(id, level, direct) AS (
       SELECT m.group_id, m.access_level, m.access_level FROM group_members m
       WHERE m.user_id = $1 AND ",
    live!("m", "$2"),
    "
       UNION ALL
       SELECT g.id, d.level, CAST(NULL AS BIGINT) FROM groups g JOIN d ON g.parent_id = d.id
     )
     SELECT g.id, g.full_path, MAX(d.level) AS level, MAX(d.direct) AS direct
     FROM d JOIN groups g ON g.id = d.id
     GROUP BY g.id, g.full_path ORDER BY g.id"
);

pub(crate) fn group_from_row(row: &mut Row) -> Result<Group, StoreError> {
    let visibility = row.text("visibility")?;
    Ok(Group {
        id: row.int("id")?,
        parent_id: row.opt_int("parent_id")?,
        name: row.text("name")?,
        path: row.text("path")?,
        full_path: row.text("full_path")?,
        full_name: row.text("full_name")?,
        description: row.text("description")?,
        visibility: Visibility::parse(&visibility)
            .ok_or_else(|| invalid(format!("group visibility {visibility:?}")))?,
        created_at: row.int("created_at")?,
        updated_at: row.int("updated_at")?,
        avatar: row.opt_text("avatar")?,
    })
}

// --- writes, on a unit of work's connection ----------------------------

pub(crate) async fn insert_group(c: &mut dyn Conn, g: &NewGroup) -> Result<Group, StoreError> {
    let params = params![
        g.parent_id,
        &g.name,
        &g.path,
        &g.full_path,
        &g.full_name,
        &g.description,
        g.visibility.as_str(),
        g.created_at,
        g.avatar.as_ref().map(|a| a.kind.file_name()),
    ];
    let group = group_from_row(&mut query_one(c, INSERT_GROUP, &params).await?)?;
    if let Some(avatar) = &g.avatar {
        put_avatar(c, group.id, avatar).await?;
    }
    Ok(group)
}

async fn put_avatar(c: &mut dyn Conn, group_id: i64, avatar: &Avatar) -> Result<(), StoreError> {
    crate::users::store_avatar(c, PUT_AVATAR, group_id, avatar).await
}

pub(crate) async fn find_group(
    c: &mut dyn Conn,
    id: i64,
    lock: &str,
) -> Result<Option<Group>, StoreError> {
    let sql = format!("{FIND_GROUP}{lock}");
    query_opt_as(c, &sql, &params![id], group_from_row).await
}

pub(crate) async fn top_level_taken(
    c: &mut dyn Conn,
    dialect: Dialect,
    path: &str,
) -> Result<bool, StoreError> {
    if let Some(lock) = dialect.lock_name() {
        c.execute(lock, &params![path]).await?;
    }
    Ok(count(c, dialect.pick(&TOP_LEVEL_TAKEN), &params![path]).await? > 0)
}

pub(crate) async fn solely_owned(
    c: &mut dyn Conn,
    user_id: i64,
    today: &str,
) -> Result<Vec<Group>, StoreError> {
    query_as(c, SOLELY_OWNED, &params![user_id, today], group_from_row).await
}

pub(crate) async fn name_taken(
    c: &mut dyn Conn,
    parent_id: i64,
    name: &str,
    except: Option<i64>,
) -> Result<bool, StoreError> {
    Ok(count(c, SIBLING_NAMED, &params![parent_id, name, except]).await? > 0)
}

pub(crate) async fn update_group(
    c: &mut dyn Conn,
    id: i64,
    u: GroupUpdate,
    at: i64,
) -> Result<Option<Group>, StoreError> {
    // Destructured so that a new field fails to compile here.
    let GroupUpdate {
        name,
        path,
        description,
        visibility,
        avatar,
    } = u;
    let renamed = name.is_some() || path.is_some();
    let file = avatar
        .as_ref()
        .and_then(|a| a.as_ref().map(|a| a.kind.file_name()));
    let params = params![
        id,
        name,
        path,
        description,
        visibility.map(|v| v.as_str()),
        at,
        avatar.is_some(),
        file,
    ];
    let group = query_opt_as(c, UPDATE_GROUP, &params, group_from_row).await?;
    if group.is_some() {
        if renamed {
            c.execute(RENAME_DESCENDANTS, &params![id]).await?;
        }
        match &avatar {
            Some(Some(picture)) => put_avatar(c, id, picture).await?,
            Some(None) => {
                c.execute(DROP_AVATAR, &params![id]).await?;
            }
            None => {}
        }
    }
    Ok(group)
}

pub(crate) async fn delete_group(c: &mut dyn Conn, id: i64) -> Result<bool, StoreError> {
    Ok(c.execute(DELETE_GROUP, &params![id]).await? > 0)
}

pub(crate) async fn most_visible_subgroup(
    c: &mut dyn Conn,
    id: i64,
) -> Result<Option<Visibility>, StoreError> {
    let found = query_as(c, SUBGROUP_VISIBILITIES, &params![id], |row| {
        let v = row.text("visibility")?;
        Visibility::parse(&v).ok_or_else(|| invalid(format!("group visibility {v:?}")))
    })
    .await?;
    Ok(found.into_iter().max())
}

// --- listings ------------------------------------------------------------

/// The groups under a user's live memberships of at least `?3`: those
/// groups and their descendants (`?1` the user, `?2` today).
const UNDER_MEMBERSHIPS: &str = concat!(
    "id IN (WITH RECURSIVE d(id) AS (
       SELECT m.group_id FROM group_members m
       WHERE m.user_id = ?1 AND ",
    live!("m", "?2"),
    " AND m.access_level >= ?3
       UNION
       SELECT g.id FROM groups g JOIN d ON g.parent_id = d.id
     ) SELECT d.id FROM d)"
);

/// The ancestors of the groups a user is a live member of.
const ABOVE_MEMBERSHIPS: &str = concat!(
    "id IN (WITH RECURSIVE a(id, parent_id) AS (
       SELECT g.id, g.parent_id FROM groups g JOIN group_members m ON m.group_id = g.id
       WHERE m.user_id = ?1 AND ",
    live!("m", "?2"),
    "
       UNION
       SELECT g.id, g.parent_id FROM groups g JOIN a ON g.id = a.parent_id
     ) SELECT a.id FROM a)"
);

/// The conditions of `filter`.
fn filtered(d: Dialect, f: &GroupFilter) -> Where {
    let mut w = Where::default();
    let today = f.today.as_str();
    let under = |w: &mut Where, user: i64, at_least: i32| {
        w.add_each(
            UNDER_MEMBERSHIPS,
            vec![
                Value::from(user),
                Value::from(today),
                Value::from(i64::from(at_least)),
            ],
        );
    };
    match f.viewer {
        // Nobody owns anything, nor is a member of anything.
        Viewer::Anonymous if f.owned || f.min_access_level.is_some() => w.add_plain("FALSE"),
        Viewer::Anonymous => w.add_plain("visibility = 'public'"),
        Viewer::Admin { .. } if f.all_available && !f.owned && f.min_access_level.is_none() => {}
        Viewer::User { id, .. } | Viewer::Admin { id } => {
            if f.owned {
                w.add_each(
                    concat!(
                        "id IN (SELECT m.group_id FROM group_members m WHERE m.user_id = ?1
                           AND m.access_level = ?3 AND ",
                        live!("m", "?2"),
                        ")"
                    ),
                    vec![
                        Value::from(id),
                        Value::from(today),
                        Value::from(i64::from(level::OWNER)),
                    ],
                );
            } else if let Some(min) = f.min_access_level {
                under(&mut w, id, min);
            } else {
                let external = matches!(f.viewer, Viewer::User { external: true, .. });
                let mut any = vec![
                    UNDER_MEMBERSHIPS.replace("?3", "0"),
                    ABOVE_MEMBERSHIPS.to_owned(),
                ];
                if f.all_available {
                    any.push("visibility = 'public'".to_owned());
                    if !external {
                        any.push("visibility = 'internal'".to_owned());
                    }
                }
                w.add_each(
                    &format!("({})", any.join(" OR ")),
                    vec![Value::from(id), Value::from(today)],
                );
            }
        }
    }
    if let Some(search) = &f.search {
        // Among one group's subgroups, their own names; else full ones.
        let (name, path) = if f.parent_id.is_some() || f.descendants_of.is_some() {
            ("name", "path")
        } else {
            ("full_name", "full_path")
        };
        let either = format!(
            "({} OR {})",
            d.nocase_like(name, "?"),
            d.nocase_like(path, "?")
        );
        w.add(&either, contains_pattern(search));
    }
    if let Some(parent) = f.parent_id {
        w.add("parent_id = ?", parent);
    }
    if let Some(top) = f.descendants_of {
        w.add(
            "id IN (WITH RECURSIVE d(id) AS (
               SELECT g.id FROM groups g WHERE g.parent_id = ?
               UNION ALL
               SELECT g.id FROM groups g JOIN d ON g.parent_id = d.id
             ) SELECT d.id FROM d)",
            top,
        );
    }
    if f.top_level_only {
        w.add_plain("parent_id IS NULL");
    }
    if !f.skip_groups.is_empty() {
        let ids = f.skip_groups.iter().map(|id| Value::from(*id)).collect();
        w.add_in("id", true, ids);
    }
    if let Some(v) = f.visibility {
        w.add("visibility = ?", v.as_str());
    }
    w
}

#[async_trait]
impl<B: Backend> GroupStore for SqlStore<B> {
    async fn find_group(&self, id: i64) -> Result<Option<Group>, StoreError> {
        self.read_opt(FIND_GROUP, params![id], group_from_row).await
    }

    async fn find_group_avatar(
        &self,
        group_id: i64,
    ) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        let found = self
            .read_opt(FIND_AVATAR, params![group_id], |row| {
                Ok((row.text("content_type")?, row.text("data")?))
            })
            .await?;
        match found {
            None => Ok(None),
            Some((content_type, data)) => match Avatar::from_stored(&data) {
                Some(bytes) => Ok(Some((content_type, bytes))),
                None => Err(invalid("a stored avatar is not base64".to_owned())),
            },
        }
    }

    async fn find_group_by_path(&self, full_path: &str) -> Result<Option<Group>, StoreError> {
        let sql = B::DIALECT.pick(&BY_PATH);
        self.read_opt(sql, params![full_path], group_from_row).await
    }

    async fn list_groups(
        &self,
        filter: &GroupFilter,
        page: PageRequest,
    ) -> Result<(Vec<Group>, u64), StoreError> {
        let w = filtered(B::DIALECT, filter);
        let direction = if filter.ascending { "ASC" } else { "DESC" };
        let count_sql = format!("SELECT COUNT(*) FROM groups{}", w.clause());
        let page_sql = format!(
            concat!(
                "SELECT ",
                group_columns!(),
                " FROM groups{} ORDER BY {} {}, id {} LIMIT {} OFFSET {}"
            ),
            w.clause(),
            filter.order.column(),
            direction,
            direction,
            w.next_placeholder(0),
            w.next_placeholder(1),
        );
        self.read_counted_page(count_sql, page_sql, w.params, page, group_from_row)
            .await
    }

    async fn group_access(
        &self,
        group_id: i64,
        user_id: i64,
        today: &str,
    ) -> Result<Option<i32>, StoreError> {
        let found = self
            .read_opt(GROUP_ACCESS, params![group_id, user_id, today], |row| {
                row.opt_int("level")
            })
            .await?;
        match found.flatten() {
            None => Ok(None),
            Some(n) => i32::try_from(n)
                .map(Some)
                .map_err(|_| invalid(format!("access level {n}"))),
        }
    }

    async fn groups_of_user(
        &self,
        user_id: i64,
        today: &str,
    ) -> Result<Vec<GroupAccess>, StoreError> {
        self.read_all(
            Access::SCAN,
            GROUPS_OF_USER,
            params![user_id, today],
            |row| {
                let direct = match row.opt_int("direct")? {
                    Some(n) => Some(i32::try_from(n).map_err(|_| invalid(format!("level {n}")))?),
                    None => None,
                };
                Ok(GroupAccess {
                    group_id: row.int("id")?,
                    full_path: row.text("full_path")?,
                    access_level: level_of(row, "level")?,
                    direct_level: direct,
                })
            },
        )
        .await
    }

    async fn list_members(
        &self,
        group_id: i64,
        filter: &MemberFilter,
        page: PageRequest,
    ) -> Result<(Vec<Member>, u64), StoreError> {
        let (count_sql, page_sql, params) = members::page(B::DIALECT, group_id, filter);
        self.read_counted_page(count_sql, page_sql, params, page, members::member_from_row)
            .await
    }

    async fn find_member(
        &self,
        group_id: i64,
        user_id: i64,
        inherited: bool,
        today: &str,
    ) -> Result<Option<Member>, StoreError> {
        let params = params![group_id, inherited, today, user_id];
        self.read_opt(members::ONE.as_str(), params, members::member_from_row)
            .await
    }
}
