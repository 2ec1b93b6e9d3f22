//! Authorization codes and OAuth access and refresh tokens: statements and
//! store methods.

use async_trait::async_trait;
use latchkey_core::oauth::{
    AuthorizedToken, Grant, NewGrant, NewOAuthToken, OAuthStore, OAuthToken, OAuthTokenFound,
    PkceMethod,
};
use latchkey_core::scopes::Scopes;
use latchkey_core::store::StoreError;

use crate::backend::{Access, Backend, SqlStore};
use crate::conn::{query_one, Conn, Row};
use crate::params;
use crate::rows::{grant_from_row, oauth_found, oauth_token_from_row};

macro_rules! grant_columns {
    () => {
        "id, application_id, user_id, redirect_uri, scopes, code_challenge, \
         code_challenge_method, nonce, created_at, expires_at, redeemed_at, auth_time"
    };
}
macro_rules! token_columns {
    () => {
        "id, application_id, user_id, refresh_digest IS NOT NULL AS has_refresh, scopes, \
         created_at, expires_at, revoked_at, refreshed_at, family, previous_token_id, grant_id, \
         auth_time"
    };
}

const INSERT_GRANT: &str = concat!(
    "INSERT INTO oauth_access_grants
       (application_id, user_id, code_digest, redirect_uri, scopes, code_challenge,
        code_challenge_method, nonce, created_at, expires_at, auth_time)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING ",
    grant_columns!()
);
const FIND_GRANT: &str = concat!(
    "SELECT ",
    grant_columns!(),
    " FROM oauth_access_grants WHERE code_digest = $1"
);
const REDEEM_GRANT: &str =
    "UPDATE oauth_access_grants SET redeemed_at = $2 WHERE id = $1 AND redeemed_at IS NULL";
const REVOKE_GRANT_TOKENS: &str = "UPDATE oauth_access_tokens SET revoked_at = $2
     WHERE revoked_at IS NULL
       AND family IN (SELECT family FROM oauth_access_tokens WHERE grant_id = $1)";
const INSERT_TOKEN: &str = concat!(
    "INSERT INTO oauth_access_tokens
       (application_id, user_id, token_digest, refresh_digest, scopes, created_at, expires_at,
        family, previous_token_id, grant_id, auth_time)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING ",
    token_columns!()
);
/// A token with its application and (optional) user, by one digest column.
macro_rules! token_by {
    ($column:literal) => {
        concat!(
            "SELECT t.id AS t_id, t.application_id AS t_application_id, t.user_id AS t_user_id,
                t.refresh_digest IS NOT NULL AS t_has_refresh, t.scopes AS t_scopes,
                t.created_at AS t_created_at, t.expires_at AS t_expires_at,
                t.revoked_at AS t_revoked_at, t.refreshed_at AS t_refreshed_at,
                t.family AS t_family, t.previous_token_id AS t_previous_token_id,
                t.grant_id AS t_grant_id, t.auth_time AS t_auth_time,
                a.id, a.uid, a.name, a.redirect_uri, a.scopes, a.confidential, a.trusted,
                a.owner_id, a.created_at, a.dynamic, a.grant_types, a.group_id,
                u.id AS u_id, u.username AS u_username, u.email AS u_email, u.name AS u_name,
                u.admin AS u_admin, u.state AS u_state, u.created_at AS u_created_at,
            u.external AS u_external, u.updated_at AS u_updated_at, u.profile AS u_profile,
            u.avatar AS u_avatar
             FROM oauth_access_tokens t
             JOIN oauth_applications a ON a.id = t.application_id
             LEFT JOIN users u ON u.id = t.user_id
             WHERE t.",
            $column,
            " = $1"
        )
    };
}
const BY_ACCESS: &str = token_by!("token_digest");
const BY_REFRESH: &str = token_by!("refresh_digest");
const MARK_REFRESHED: &str = "UPDATE oauth_access_tokens SET refreshed_at = $2
     WHERE id = $1 AND refreshed_at IS NULL AND revoked_at IS NULL
       AND refresh_digest IS NOT NULL";
pub(crate) const REVOKE_FAMILY: &str =
    "UPDATE oauth_access_tokens SET revoked_at = $2 WHERE family = $1 AND revoked_at IS NULL";
const REVOKE: &str =
    "UPDATE oauth_access_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL";
const FORGET_PREVIOUS: &str =
    "UPDATE oauth_access_tokens SET previous_token_id = NULL WHERE id = $1";

/// The client secret a token is issued on, still live at `$2`; locked
/// until the unit ends (PostgreSQL: `FOR SHARE`, which a renewal's or a
/// revoke-all's delete of that secret waits for, and which waits for
/// theirs).
const SECRET_LIVE: &str = "SELECT id FROM application_secrets
     WHERE id = $1 AND (expires_at IS NULL OR expires_at > $2)";

/// Insert an OAuth token; the token as stored. A token issued on a client
/// secret needs that secret live (`Gone` otherwise); `lock` is the
/// dialect's share lock.
pub(crate) async fn insert_token(
    c: &mut dyn Conn,
    t: &NewOAuthToken,
    lock: &str,
) -> Result<OAuthToken, StoreError> {
    if let Some(secret) = t.client_secret_id {
        let sql = format!("{SECRET_LIVE}{lock}");
        if c.query(&sql, &params![secret, t.created_at])
            .await?
            .is_empty()
        {
            return Err(StoreError::Gone);
        }
    }
    let params = params![
        t.application_id,
        t.user_id,
        &t.token_digest,
        &t.refresh_digest,
        t.scopes.joined(),
        t.created_at,
        t.expires_at,
        &t.family,
        t.previous_token_id,
        t.grant_id,
        t.auth_time,
    ];
    oauth_token_from_row(&mut query_one(c, INSERT_TOKEN, &params).await?, "")
}

impl<B: Backend> SqlStore<B> {
    async fn token_by(
        &self,
        sql: &'static str,
        digest: &str,
    ) -> Result<Option<OAuthTokenFound>, StoreError> {
        self.read_opt(sql, params![digest], oauth_found).await
    }
}

/// Store an authorization code's grant.
pub(crate) async fn insert_grant(c: &mut dyn Conn, g: &NewGrant) -> Result<Grant, StoreError> {
    let params = params![
        g.application_id,
        g.user_id,
        &g.code_digest,
        &g.redirect_uri,
        g.scopes.joined(),
        &g.code_challenge,
        g.code_challenge_method.map(PkceMethod::as_str),
        &g.nonce,
        g.created_at,
        g.expires_at,
        g.auth_time,
    ];
    grant_from_row(&mut query_one(c, INSERT_GRANT, &params).await?)
}

/// A user's live tokens with their applications (`$1` the user, `$2` now).
const AUTHORIZED: &str = "SELECT t.application_id, a.uid, a.name, t.scopes, t.created_at
     FROM oauth_access_tokens t JOIN oauth_applications a ON a.id = t.application_id
     WHERE t.user_id = $1 AND t.revoked_at IS NULL
       AND (t.expires_at > $2 OR (t.refresh_digest IS NOT NULL AND t.refreshed_at IS NULL))
     ORDER BY t.application_id, t.created_at, t.id LIMIT 1000";

fn authorized_from_row(row: &mut Row) -> Result<AuthorizedToken, StoreError> {
    Ok(AuthorizedToken {
        application_id: row.int("application_id")?,
        client_id: row.text("uid")?,
        application_name: row.text("name")?,
        scopes: Scopes::from_stored(&row.text("scopes")?),
        created_at: row.int("created_at")?,
    })
}

#[async_trait]
impl<B: Backend> OAuthStore for SqlStore<B> {
    async fn authorized_tokens(
        &self,
        user_id: i64,
        now: i64,
    ) -> Result<Vec<AuthorizedToken>, StoreError> {
        self.read_all(
            Access::SCAN,
            AUTHORIZED,
            params![user_id, now],
            authorized_from_row,
        )
        .await
    }

    async fn insert_grant(&self, g: NewGrant) -> Result<Grant, StoreError> {
        self.run(Access::WRITE, move |c| {
            Box::pin(async move { insert_grant(c, &g).await })
        })
        .await
    }

    async fn find_grant(&self, code_digest: &str) -> Result<Option<Grant>, StoreError> {
        self.read_opt(FIND_GRANT, params![code_digest], grant_from_row)
            .await
    }

    async fn redeem_grant(
        &self,
        grant_id: i64,
        now: i64,
        token: NewOAuthToken,
    ) -> Result<Option<OAuthToken>, StoreError> {
        self.run(Access::TRANSACTION, move |c| {
            Box::pin(async move {
                if c.execute(REDEEM_GRANT, &params![grant_id, now]).await? == 0 {
                    return Ok(None);
                }
                Ok(Some(
                    insert_token(c, &token, B::DIALECT.share_lock()).await?,
                ))
            })
        })
        .await
    }

    async fn revoke_grant_tokens(&self, grant_id: i64, now: i64) -> Result<u64, StoreError> {
        self.write_one(REVOKE_GRANT_TOKENS, params![grant_id, now])
            .await
    }

    async fn insert_oauth_token(&self, token: NewOAuthToken) -> Result<OAuthToken, StoreError> {
        self.run(Access::WRITE, move |c| {
            Box::pin(async move { insert_token(c, &token, B::DIALECT.share_lock()).await })
        })
        .await
    }

    async fn find_oauth_token_by_access(
        &self,
        digest: &str,
    ) -> Result<Option<OAuthTokenFound>, StoreError> {
        self.token_by(BY_ACCESS, digest).await
    }

    async fn find_oauth_token_by_refresh(
        &self,
        digest: &str,
    ) -> Result<Option<OAuthTokenFound>, StoreError> {
        self.token_by(BY_REFRESH, digest).await
    }

    async fn refresh_oauth_token(
        &self,
        old_id: i64,
        now: i64,
        new: NewOAuthToken,
    ) -> Result<Option<OAuthToken>, StoreError> {
        self.run(Access::TRANSACTION, move |c| {
            Box::pin(async move {
                if c.execute(MARK_REFRESHED, &params![old_id, now]).await? == 0 {
                    return Ok(None);
                }
                Ok(Some(insert_token(c, &new, B::DIALECT.share_lock()).await?))
            })
        })
        .await
    }

    async fn revoke_token_family(&self, family: &str, now: i64) -> Result<u64, StoreError> {
        self.write_one(REVOKE_FAMILY, params![family, now]).await
    }

    async fn revoke_oauth_token(&self, id: i64, now: i64) -> Result<bool, StoreError> {
        Ok(self.write_one(REVOKE, params![id, now]).await? > 0)
    }

    async fn finish_refresh(
        &self,
        token_id: i64,
        previous_id: i64,
        now: i64,
    ) -> Result<(), StoreError> {
        self.run(Access::TRANSACTION, move |c| {
            Box::pin(async move {
                c.execute(REVOKE, &params![previous_id, now]).await?;
                c.execute(FORGET_PREVIOUS, &params![token_id]).await?;
                Ok(())
            })
        })
        .await
    }
}
