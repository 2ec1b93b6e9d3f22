//! The device authorization grant (RFC 8628): statements and store methods.

use std::sync::LazyLock;

use async_trait::async_trait;
use latchkey_core::device::DeviceGrantStore;
use latchkey_core::oauth::{DeviceGrant, DeviceStatus, NewDeviceGrant, NewOAuthToken, OAuthToken};
use latchkey_core::store::StoreError;

use crate::backend::{Access, Backend, Dialect, SqlStore};
use crate::conn::{query_opt, Conn};
use crate::params;
use crate::rows::device_from_row;

macro_rules! device_columns {
    () => {
        "id, application_id, user_code, scopes, created_at, expires_at, last_polled_at, \
         user_id, status, auth_time, redeemed_at"
    };
}

const INSERT: &str = concat!(
    "INSERT INTO device_grants
       (application_id, device_code_digest, user_code, scopes, created_at, expires_at)
     VALUES ($1, $2, $3, $4, $5, $6) RETURNING ",
    device_columns!()
);
const BY_USER_CODE: &str = concat!(
    "SELECT ",
    device_columns!(),
    " FROM device_grants WHERE user_code = $1"
);
const BY_DEVICE_CODE: &str = concat!(
    "SELECT ",
    device_columns!(),
    " FROM device_grants WHERE device_code_digest = $1"
);
/// A user's answer (`$3` the user). On PostgreSQL the user is locked
/// first, in an `EXISTS` that runs before the row is updated: its
/// foreign-key check alone locked the user after the device grant, the
/// reverse of a user's delete (the user, then the applications it owns,
/// and their device grants by cascade), which deadlocked with it. Nothing
/// decided if the user is gone.
const DECIDE: [&str; 2] = [
    "UPDATE device_grants SET status = $2, user_id = $3, auth_time = $4
     WHERE id = $1 AND status = 'pending' AND expires_at > $5",
    "UPDATE device_grants SET status = $2, user_id = $3, auth_time = $4
     WHERE id = $1 AND status = 'pending' AND expires_at > $5
       AND EXISTS (SELECT 1 FROM users WHERE id = $3 FOR KEY SHARE)",
];
static LAST_POLL: LazyLock<[String; 2]> = LazyLock::new(|| {
    Dialect::ALL.map(|d| {
        format!(
            "SELECT last_polled_at FROM device_grants WHERE id = $1{}",
            d.for_update()
        )
    })
});
const POLL: &str = "UPDATE device_grants SET last_polled_at = $2 WHERE id = $1";
/// Spent, not deleted (schema 18): one column no index holds changes.
const CONSUME: [&str; 2] = crate::oauth::redeeming!(
    "UPDATE device_grants SET redeemed_at = $2
     WHERE id = $1 AND status = 'approved' AND redeemed_at IS NULL"
);
const DELETE: &str = "DELETE FROM device_grants WHERE id = $1";

/// A user's answer to a pending device request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Decision {
    pub id: i64,
    pub user_id: i64,
    pub approve: bool,
    pub now: i64,
    pub auth_time: i64,
}

/// Record `d` if the request is still pending and unexpired; whether it was.
pub(crate) async fn decide(
    c: &mut dyn Conn,
    d: Decision,
    dialect: Dialect,
) -> Result<bool, StoreError> {
    let status = if d.approve {
        DeviceStatus::Approved
    } else {
        DeviceStatus::Denied
    };
    let params = params![d.id, status.as_str(), d.user_id, d.auth_time, d.now];
    Ok(c.execute(dialect.choose(DECIDE), &params).await? > 0)
}

#[async_trait]
impl<B: Backend> DeviceGrantStore for SqlStore<B> {
    async fn insert_device_grant(&self, g: NewDeviceGrant) -> Result<DeviceGrant, StoreError> {
        let params = params![
            g.application_id,
            g.device_code_digest,
            g.user_code,
            g.scopes.joined(),
            g.created_at,
            g.expires_at,
        ];
        self.write_row(INSERT, params, device_from_row).await
    }

    async fn find_device_grant_by_user_code(
        &self,
        user_code: &str,
    ) -> Result<Option<DeviceGrant>, StoreError> {
        self.read_opt(BY_USER_CODE, params![user_code], device_from_row)
            .await
    }

    async fn find_device_grant(
        &self,
        device_code_digest: &str,
    ) -> Result<Option<DeviceGrant>, StoreError> {
        let params = params![device_code_digest];
        self.read_opt(BY_DEVICE_CODE, params, device_from_row).await
    }

    async fn decide_device_grant(
        &self,
        id: i64,
        user_id: i64,
        approve: bool,
        now: i64,
        auth_time: i64,
    ) -> Result<bool, StoreError> {
        let decision = Decision {
            id,
            user_id,
            approve,
            now,
            auth_time,
        };
        self.run(Access::WRITE, move |c| {
            Box::pin(async move { decide(c, decision, B::DIALECT).await })
        })
        .await
    }

    async fn poll_device_grant(&self, id: i64, now: i64) -> Result<Option<i64>, StoreError> {
        self.run(Access::TRANSACTION, move |c| {
            Box::pin(async move {
                let previous = query_opt(c, B::DIALECT.pick(&LAST_POLL), &params![id]).await?;
                c.execute(POLL, &params![id, now]).await?;
                Ok(previous.map(|r| r.first_int()).transpose()?.flatten())
            })
        })
        .await
    }

    async fn redeem_device_grant(
        &self,
        id: i64,
        token: NewOAuthToken,
    ) -> Result<Option<OAuthToken>, StoreError> {
        self.run(Access::TRANSACTION, move |c| {
            Box::pin(async move {
                let params =
                    crate::oauth::redeeming_params(B::DIALECT, id, token.created_at, &token, None);
                if c.execute(B::DIALECT.choose(CONSUME), &params).await? == 0 {
                    return Ok(None);
                }
                Ok(Some(
                    crate::oauth::insert_token(c, &token, B::DIALECT).await?,
                ))
            })
        })
        .await
    }

    async fn delete_device_grant(&self, id: i64) -> Result<(), StoreError> {
        self.write_one(DELETE, params![id]).await.map(drop)
    }
}
