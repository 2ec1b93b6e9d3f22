//! Personal access tokens: their statements and store methods.

use async_trait::async_trait;
use latchkey_core::pagination::PageRequest;
use latchkey_core::store::{StoreError, TokenWithOwner};
use latchkey_core::token::{NewToken, PersonalAccessToken, TokenFilter, TokenStore};

use crate::applications::bounded;
use crate::backend::{Access, Backend, Dialect, SqlStore};
use crate::conn::{count, query_as, query_one, Conn};
use crate::filter::Where;
use crate::params;
use crate::rows::{token_from_row, token_with_owner};

macro_rules! token_columns {
    () => {
        "id, user_id, name, scopes, expires_at, revoked, created_at, last_used_at"
    };
}

pub(crate) use token_columns;

const INSERT: &str = concat!(
    "INSERT INTO personal_access_tokens
       (user_id, name, token_digest, scopes, expires_at, revoked, created_at)
     VALUES ($1, $2, $3, $4, $5, FALSE, $6) RETURNING ",
    token_columns!()
);
const WITH_OWNER: &str =
    "SELECT t.id, t.user_id, t.name, t.scopes, t.expires_at, t.revoked, t.created_at,
            t.last_used_at,
            u.id AS u_id, u.username AS u_username, u.email AS u_email, u.name AS u_name,
            u.admin AS u_admin, u.state AS u_state, u.created_at AS u_created_at,
            u.external AS u_external, u.updated_at AS u_updated_at, u.profile AS u_profile,
            u.avatar AS u_avatar
     FROM personal_access_tokens t JOIN users u ON u.id = t.user_id
     WHERE t.token_digest = $1";
pub(crate) const REVOKE: &str = "UPDATE personal_access_tokens SET revoked = TRUE WHERE id = $1";
pub(crate) const REVOKE_LIVE: &str =
    "UPDATE personal_access_tokens SET revoked = TRUE WHERE id = $1 AND NOT revoked";
pub(crate) const FIND: &str = concat!(
    "SELECT ",
    token_columns!(),
    " FROM personal_access_tokens WHERE id = $1"
);
const UPDATE: &str = concat!(
    "UPDATE personal_access_tokens SET name = $2, scopes = $3, expires_at = $4 WHERE id = $1
     RETURNING ",
    token_columns!()
);
/// An imported token's digest becomes latchkey's (`$4`: the SHA-256 of the
/// form it replaces).
const REHASH: &str = "UPDATE personal_access_tokens SET token_digest = $3, rehashed_from = $4
     WHERE id = $1 AND token_digest = $2";
/// A later time only: batches may arrive out of order.
const TOUCH: &str = "UPDATE personal_access_tokens SET last_used_at = $2
     WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $2)";

/// The conditions of `f`.
fn filtered(d: Dialect, f: &TokenFilter) -> Where {
    let mut w = Where::default();
    if let Some(user_id) = f.user_id {
        w.add("user_id = ?", user_id);
    }
    if let Some(revoked) = f.revoked {
        w.add_plain(if revoked {
            "revoked = TRUE"
        } else {
            "revoked = FALSE"
        });
    }
    // Expired: its last day (YYYY-MM-DD, which sorts as text) is before today.
    let today = f.today.map(|d| d.to_string()).unwrap_or_default();
    match f.active {
        Some(true) => w.add(
            "(revoked = FALSE AND (expires_at IS NULL OR expires_at >= ?))",
            today,
        ),
        Some(false) => w.add(
            "(revoked = TRUE OR (expires_at IS NOT NULL AND expires_at < ?))",
            today,
        ),
        None => {}
    }
    if let Some(t) = f.created_after {
        w.add("created_at >= ?", t);
    }
    if let Some(t) = f.created_before {
        w.add("created_at <= ?", t);
    }
    if let Some(t) = f.last_used_after {
        w.add("last_used_at >= ?", t);
    }
    if let Some(t) = f.last_used_before {
        w.add("last_used_at <= ?", t);
    }
    if let Some(search) = &f.search {
        w.add(
            &d.nocase_like("name", "?"),
            crate::users::contains_pattern(search),
        );
    }
    w
}

/// Insert `t` for `user_id`; the token as stored.
pub(crate) async fn insert(
    c: &mut dyn Conn,
    user_id: i64,
    t: &NewToken,
) -> Result<PersonalAccessToken, StoreError> {
    let params = params![
        user_id,
        &t.name,
        &t.digest,
        t.scopes.joined(),
        t.expires_at.map(|d| d.to_string()),
        t.created_at,
    ];
    token_from_row(&mut query_one(c, INSERT, &params).await?)
}

pub(crate) async fn update(
    c: &mut dyn Conn,
    id: i64,
    name: &str,
    scopes: &latchkey_core::scopes::Scopes,
    expires_at: Option<time::Date>,
) -> Result<Option<PersonalAccessToken>, StoreError> {
    let params = params![id, name, scopes.joined(), expires_at.map(|d| d.to_string())];
    crate::conn::query_opt_as(c, UPDATE, &params, token_from_row).await
}

#[async_trait]
impl<B: Backend> TokenStore for SqlStore<B> {
    async fn rehash_token(&self, id: i64, old: &str, new: &str) -> Result<bool, StoreError> {
        self.rehash(REHASH, id, old, new).await
    }

    async fn insert_token(&self, token: NewToken) -> Result<PersonalAccessToken, StoreError> {
        self.run(Access::WRITE, move |c| {
            Box::pin(async move { insert(c, token.user_id, &token).await })
        })
        .await
    }

    async fn find_token_by_digest(
        &self,
        digest: &str,
    ) -> Result<Option<TokenWithOwner>, StoreError> {
        // Every request with a PRIVATE-TOKEN starts here.
        self.read_opt(WITH_OWNER, params![digest], token_with_owner)
            .await
    }

    async fn revoke_token(&self, id: i64) -> Result<bool, StoreError> {
        Ok(self.write_one(REVOKE, params![id]).await? > 0)
    }

    async fn find_token(&self, id: i64) -> Result<Option<PersonalAccessToken>, StoreError> {
        self.read_opt(FIND, params![id], token_from_row).await
    }

    async fn list_tokens(
        &self,
        filter: &TokenFilter,
        page: PageRequest,
    ) -> Result<(Vec<PersonalAccessToken>, u64), StoreError> {
        let access = Access::Read {
            bounded: filter.user_id.is_some() && bounded(page),
            snapshot: true,
            ordered: false,
        };
        let w = filtered(B::DIALECT, filter);
        let count_sql = format!("SELECT COUNT(*) FROM personal_access_tokens{}", w.clause());
        let page_sql = format!(
            concat!(
                "SELECT ",
                token_columns!(),
                " FROM personal_access_tokens{} ORDER BY id LIMIT {} OFFSET {}"
            ),
            w.clause(),
            w.next_placeholder(0),
            w.next_placeholder(1),
        );
        let mut params = w.params;
        self.run(access, move |c| {
            Box::pin(async move {
                let n = count(c, &count_sql, &params).await?;
                params.extend(params![page.limit(), page.offset()]);
                Ok((query_as(c, &page_sql, &params, token_from_row).await?, n))
            })
        })
        .await
    }

    async fn record_token_usage(&self, used: Vec<(i64, i64)>) -> Result<u64, StoreError> {
        self.record_uses(TOUCH, used).await
    }

    async fn rotate_token(
        &self,
        id: i64,
        new: NewToken,
    ) -> Result<Option<PersonalAccessToken>, StoreError> {
        self.run(Access::TRANSACTION, move |c| {
            Box::pin(async move {
                if c.execute(REVOKE_LIVE, &params![id]).await? == 0 {
                    return Ok(None);
                }
                Ok(Some(insert(c, new.user_id, &new).await?))
            })
        })
        .await
    }
}
