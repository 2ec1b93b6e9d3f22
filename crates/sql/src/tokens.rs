//! Personal access tokens: their statements and store methods.

use async_trait::async_trait;
use latchkey_core::pagination::PageRequest;
use latchkey_core::store::{StoreError, TokenWithOwner};
use latchkey_core::token::{NewToken, PersonalAccessToken, TokenStore};

use crate::applications::bounded;
use crate::backend::{Access, Backend, SqlStore};
use crate::conn::{count, query_as, query_one, Conn};
use crate::params;
use crate::rows::{token_from_row, token_with_owner};

macro_rules! token_columns {
    () => {
        "id, user_id, name, scopes, expires_at, revoked, created_at"
    };
}

const INSERT: &str = concat!(
    "INSERT INTO personal_access_tokens
       (user_id, name, token_digest, scopes, expires_at, revoked, created_at)
     VALUES ($1, $2, $3, $4, $5, FALSE, $6) RETURNING ",
    token_columns!()
);
const WITH_OWNER: &str =
    "SELECT t.id, t.user_id, t.name, t.scopes, t.expires_at, t.revoked, t.created_at,
            u.id AS u_id, u.username AS u_username, u.email AS u_email, u.name AS u_name,
            u.admin AS u_admin, u.state AS u_state, u.created_at AS u_created_at,
            u.external AS u_external, u.updated_at AS u_updated_at, u.profile AS u_profile
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
const COUNT: &str =
    "SELECT COUNT(*) FROM personal_access_tokens WHERE (CAST($1 AS BIGINT) IS NULL OR user_id = $1)";
const PAGE: &str = concat!(
    "SELECT ",
    token_columns!(),
    " FROM personal_access_tokens WHERE (CAST($1 AS BIGINT) IS NULL OR user_id = $1)
     ORDER BY id LIMIT $2 OFFSET $3"
);

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

#[async_trait]
impl<B: Backend> TokenStore for SqlStore<B> {
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
        user_id: Option<i64>,
        page: PageRequest,
    ) -> Result<(Vec<PersonalAccessToken>, u64), StoreError> {
        let access = Access::Read {
            bounded: user_id.is_some() && bounded(page),
            snapshot: true,
        };
        self.run(access, move |c| {
            Box::pin(async move {
                let n = count(c, COUNT, &params![user_id]).await?;
                let page = params![user_id, page.limit(), page.offset()];
                Ok((query_as(c, PAGE, &page, token_from_row).await?, n))
            })
        })
        .await
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
