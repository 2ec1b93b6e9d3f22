//! Users: their statements and store methods.

use std::sync::LazyLock;

use async_trait::async_trait;
use latchkey_core::pagination::PageRequest;
use latchkey_core::store::StoreError;
use latchkey_core::user::{Avatar, NewUser, User, UserFilter, UserState, UserStore, UserUpdate};

use crate::backend::{Access, Backend, Dialect, SqlStore};
use crate::conn::{count, query_one, query_opt_as, Conn};
use crate::filter::Where;
use crate::params;
use crate::rows::user_from_row;

macro_rules! user_columns {
    () => {
        "id, username, email, name, admin, state, created_at, external, updated_at, profile, \
         avatar"
    };
}

pub(crate) use user_columns;

const INSERT: &str = concat!(
    "INSERT INTO users (username, email, name, password_digest, admin, state, created_at,
                        updated_at, external, profile, avatar)
     VALUES ($1, $2, $3, $4, $5, 'active', $6, $6, $7, $8, $9) RETURNING ",
    user_columns!()
);
const FIND: &str = concat!("SELECT ", user_columns!(), " FROM users WHERE id = $1");
static BY_USERNAME: LazyLock<[String; 2]> = LazyLock::new(|| {
    Dialect::ALL.map(|d| {
        format!(
            concat!("SELECT ", user_columns!(), " FROM users WHERE {}"),
            d.nocase_eq("username", "$1")
        )
    })
});
/// By username or email; a username match first.
static FOR_LOGIN: LazyLock<[String; 2]> = LazyLock::new(|| {
    Dialect::ALL.map(|d| {
        let by_username = d.nocase_eq("username", "$1");
        format!(
            concat!(
                "SELECT ",
                user_columns!(),
                ", password_digest FROM users WHERE {by_username} OR {by_email}
                 ORDER BY ({by_username}) DESC LIMIT 1"
            ),
            by_username = by_username,
            by_email = d.nocase_eq("email", "$1"),
        )
    })
});
/// `$3`: when (ms), or NULL to keep `updated_at`.
pub(crate) const SET_STATE: &str =
    "UPDATE users SET state = $2, updated_at = COALESCE($3, updated_at) WHERE id = $1";
const UPDATE: &str = concat!(
    "UPDATE users SET username = COALESCE($2, username), email = COALESCE($3, email),
            name = COALESCE($4, name), password_digest = COALESCE($5, password_digest),
            rehashed_from = CASE WHEN $5 IS NULL THEN rehashed_from END,
            admin = COALESCE($6, admin), external = COALESCE($7, external),
            profile = CASE WHEN CAST($8 AS BOOLEAN) THEN $9 ELSE profile END,
            updated_at = COALESCE($10, updated_at), avatar = COALESCE($11, avatar)
     WHERE id = $1 RETURNING ",
    user_columns!()
);
pub(crate) const PUT_AVATAR: &str = "INSERT INTO user_avatars (user_id, content_type, data) VALUES ($1, $2, $3)
     ON CONFLICT (user_id) DO UPDATE SET content_type = excluded.content_type, data = excluded.data";
const FIND_AVATAR: &str = "SELECT content_type, data FROM user_avatars WHERE user_id = $1";
pub(crate) const DELETE: &str = "DELETE FROM users WHERE id = $1";
/// A rehash: `$4` is the SHA-256 of the hash it replaces.
const REPLACE_DIGEST: &str = "UPDATE users SET password_digest = $3, rehashed_from = $4
     WHERE id = $1 AND password_digest = $2";
static TAKEN: LazyLock<[String; 2]> = LazyLock::new(|| {
    Dialect::ALL.map(|d| {
        format!(
            "SELECT COUNT(*) FROM users WHERE {}",
            d.nocase_eq("username", "$1")
        )
    })
});
const ANY: &str = "SELECT COUNT(*) FROM (SELECT 1 FROM users LIMIT 1) AS one";

fn decode(row: &mut crate::conn::Row) -> Result<User, StoreError> {
    user_from_row(row, "")
}

pub(crate) async fn insert(c: &mut dyn Conn, u: &NewUser) -> Result<User, StoreError> {
    let params = params![
        &u.username,
        &u.email,
        &u.name,
        &u.password_digest,
        u.admin,
        u.created_at,
        u.external,
        u.profile.to_stored(),
        u.avatar.as_ref().map(|a| a.kind.file_name()),
    ];
    let user = decode(&mut query_one(c, INSERT, &params).await?)?;
    if let Some(avatar) = &u.avatar {
        put_avatar(c, user.id, avatar).await?;
    }
    Ok(user)
}

/// Change some of a user's attributes; the user as now, if they exist.
pub(crate) async fn update(
    c: &mut dyn Conn,
    id: i64,
    u: UserUpdate,
) -> Result<Option<User>, StoreError> {
    // Destructured so that a new field fails to compile here.
    let UserUpdate {
        username,
        email,
        name,
        password_digest,
        admin,
        external,
        profile,
        updated_at,
        avatar,
    } = u;
    let params = params![
        id,
        username,
        email,
        name,
        password_digest,
        admin,
        external,
        profile.is_some(),
        profile.and_then(|p| p.to_stored()),
        updated_at,
        avatar.as_ref().map(|a| a.kind.file_name()),
    ];
    let user = query_opt_as(c, UPDATE, &params, decode).await?;
    if let (Some(user), Some(avatar)) = (&user, &avatar) {
        put_avatar(c, user.id, avatar).await?;
    }
    Ok(user)
}

/// Store `avatar` as the user's (replacing any before).
async fn put_avatar(c: &mut dyn Conn, user_id: i64, avatar: &Avatar) -> Result<(), StoreError> {
    store_avatar(c, PUT_AVATAR, user_id, avatar).await
}

/// Store `avatar` with `statement` (an upsert of its owner's id `$1`,
/// content type `$2` and base64 data `$3`): users' and groups' alike.
pub(crate) async fn store_avatar(
    c: &mut dyn Conn,
    statement: &str,
    owner_id: i64,
    avatar: &Avatar,
) -> Result<(), StoreError> {
    let params = params![owner_id, avatar.kind.content_type(), avatar.to_stored()];
    c.execute(statement, &params).await.map(drop)
}

/// A user; `lock` is the dialect's row lock or empty.
pub(crate) async fn find(
    c: &mut dyn Conn,
    id: i64,
    lock: &str,
) -> Result<Option<User>, StoreError> {
    query_opt_as(c, &format!("{FIND}{lock}"), &params![id], decode).await
}

/// Lock the users `ids` as rows about to reference them would, in id
/// order (see `Transaction::lock_users_referenced`). `Gone` if one is.
pub(crate) async fn lock_referenced(
    c: &mut dyn Conn,
    dialect: Dialect,
    ids: &[i64],
) -> Result<(), StoreError> {
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    for id in ids {
        crate::conn::lock_referenced(c, "users", id, dialect.key_share()).await?;
    }
    Ok(())
}

/// Is `username` taken (ignoring ASCII case)?
pub(crate) async fn taken(
    c: &mut dyn Conn,
    dialect: Dialect,
    username: &str,
) -> Result<bool, StoreError> {
    if let Some(lock) = dialect.lock_name() {
        c.execute(lock, &params![username]).await?;
    }
    Ok(count(c, dialect.pick(&TAKEN), &params![username]).await? > 0)
}

pub(crate) async fn any(c: &mut dyn Conn) -> Result<bool, StoreError> {
    Ok(count(c, ANY, &[]).await? > 0)
}

/// The conditions of `filter`.
fn filtered(d: Dialect, filter: &UserFilter) -> Where {
    let mut w = Where::default();
    if let Some(username) = &filter.username {
        w.add(&d.nocase_eq("username", "?"), username.as_str());
    }
    if let Some(search) = &filter.search {
        let pattern = contains_pattern(search);
        let mut any = vec![d.nocase_like("username", "?"), d.nocase_like("name", "?")];
        if filter.search_emails {
            any.push(d.nocase_like("email", "?"));
        }
        w.add(&format!("({})", any.join(" OR ")), pattern);
    }
    if filter.blocked {
        w.add_plain("state = 'blocked'");
    }
    if filter.active {
        w.add_plain("state = 'active'");
    }
    if filter.admins {
        w.add_plain("admin = TRUE");
    }
    if filter.external {
        w.add_plain("external = TRUE");
    }
    if filter.exclude_external {
        w.add_plain("external = FALSE");
    }
    if let Some(after) = filter.created_after {
        w.add("created_at >= ?", after);
    }
    if let Some(before) = filter.created_before {
        w.add("created_at <= ?", before);
    }
    w
}

/// A LIKE pattern matching `s` anywhere, its own wildcards escaped.
pub(crate) fn contains_pattern(s: &str) -> String {
    let escaped = s
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

#[async_trait]
impl<B: Backend> UserStore for SqlStore<B> {
    async fn insert_user(&self, user: NewUser) -> Result<User, StoreError> {
        // With an avatar, two statements that commit together.
        let access = Access::Write {
            atomic: user.avatar.is_some(),
        };
        self.run(access, move |c| {
            Box::pin(async move { insert(c, &user).await })
        })
        .await
    }

    async fn find_user(&self, id: i64) -> Result<Option<User>, StoreError> {
        self.read_opt(FIND, params![id], decode).await
    }

    async fn replace_password_digest(
        &self,
        id: i64,
        old: &str,
        new: &str,
    ) -> Result<bool, StoreError> {
        self.rehash(REPLACE_DIGEST, id, old, new).await
    }

    async fn find_user_by_username(&self, username: &str) -> Result<Option<User>, StoreError> {
        let sql = B::DIALECT.pick(&BY_USERNAME);
        self.read_opt(sql, params![username], decode).await
    }

    async fn set_user_state(&self, id: i64, state: UserState) -> Result<bool, StoreError> {
        let changed = self
            .write_one(SET_STATE, params![id, state.as_str(), None::<i64>])
            .await?;
        Ok(changed > 0)
    }

    async fn list_users(
        &self,
        filter: &UserFilter,
        page: PageRequest,
    ) -> Result<(Vec<User>, u64), StoreError> {
        let w = filtered(B::DIALECT, filter);
        let direction = if filter.ascending { "ASC" } else { "DESC" };
        let column = filter.order.column();
        let count_sql = format!("SELECT COUNT(*) FROM users{}", w.clause());
        let page_sql = format!(
            concat!(
                "SELECT ",
                user_columns!(),
                " FROM users{} ORDER BY {} {}, id {} LIMIT {} OFFSET {}"
            ),
            w.clause(),
            column,
            direction,
            direction,
            w.next_placeholder(0),
            w.next_placeholder(1),
        );
        self.read_counted_page(count_sql, page_sql, w.params, page, decode)
            .await
    }

    async fn find_avatar(&self, user_id: i64) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        let found = self
            .read_opt(FIND_AVATAR, params![user_id], |row| {
                Ok((row.text("content_type")?, row.text("data")?))
            })
            .await?;
        match found {
            None => Ok(None),
            Some((content_type, data)) => match Avatar::from_stored(&data) {
                Some(bytes) => Ok(Some((content_type, bytes))),
                None => Err(crate::conn::invalid(
                    "a stored avatar is not base64".to_owned(),
                )),
            },
        }
    }

    async fn update_user(&self, id: i64, u: UserUpdate) -> Result<Option<User>, StoreError> {
        let access = Access::Write {
            atomic: u.avatar.is_some(),
        };
        self.run(access, move |c| {
            Box::pin(async move { update(c, id, u).await })
        })
        .await
    }

    async fn delete_user(&self, id: i64) -> Result<bool, StoreError> {
        let done = self.write_one(DELETE, params![id]).await;
        // Their applications went with them.
        self.applications_changed();
        Ok(done? > 0)
    }

    async fn find_user_for_login(
        &self,
        login: &str,
    ) -> Result<Option<(User, Option<String>)>, StoreError> {
        let sql = B::DIALECT.pick(&FOR_LOGIN);
        self.read_opt(sql, params![login], |row| {
            Ok((decode(row)?, row.opt_text("password_digest")?))
        })
        .await
    }
}
