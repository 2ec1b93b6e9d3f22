//! Reading what a state file manages (`latchkey apply` and `export`):
//! every user with their password digest, every token not revoked with its
//! digest, every group and membership, and every application not
//! registered dynamically with its secrets.

use async_trait::async_trait;
use latchkey_core::state::{Current, StateStore, StoredApplication, StoredToken, StoredUser};
use latchkey_core::store::StoreError;

use crate::backend::{Access, Backend, SqlStore};
use crate::conn::{query_as, Conn, Row};
use crate::groups::{group_columns, group_from_row};
use crate::members::{membership_columns, plain_membership};
use crate::rows::{token_from_row, user_from_row};
use crate::secrets::{grouped_by_application, with_secrets_select};
use crate::tokens::token_columns;
use crate::users::user_columns;

const USERS: &str = concat!(
    "SELECT ",
    user_columns!(),
    ", password_digest, rehashed_from FROM users ORDER BY id"
);
const TOKENS: &str = concat!(
    "SELECT ",
    token_columns!(),
    ", token_digest, rehashed_from FROM personal_access_tokens ORDER BY id"
);
const GROUPS: &str = concat!("SELECT ", group_columns!(), " FROM groups ORDER BY id");
const MEMBERS: &str = concat!(
    "SELECT ",
    membership_columns!(),
    " FROM group_members ORDER BY id"
);
const APPLICATIONS: &str = concat!(
    with_secrets_select!(),
    " WHERE a.dynamic = FALSE ORDER BY a.id, s.id"
);
const REHASHED_SECRETS: &str = "SELECT id, rehashed_from FROM application_secrets
     WHERE rehashed_from IS NOT NULL ORDER BY id";
const DYNAMIC: &str = "SELECT uid FROM oauth_applications WHERE dynamic = TRUE ORDER BY id";

fn stored_user(row: &mut Row) -> Result<StoredUser, StoreError> {
    Ok(StoredUser {
        user: user_from_row(row, "")?,
        password_digest: row.opt_text("password_digest")?,
        rehashed_from: row.opt_text("rehashed_from")?,
    })
}

fn stored_token(row: &mut Row) -> Result<StoredToken, StoreError> {
    Ok(StoredToken {
        token: token_from_row(row)?,
        digest: row.text("token_digest")?,
        rehashed_from: row.opt_text("rehashed_from")?,
    })
}

/// Everything [`Current`] holds, on one connection (in one transaction or
/// snapshot, as the caller runs it).
pub(crate) async fn read(c: &mut dyn Conn) -> Result<Current, StoreError> {
    let applications = grouped_by_application(c.query(APPLICATIONS, &[]).await?)?
        .into_iter()
        .map(|(app, secrets)| StoredApplication { app, secrets })
        .collect();
    Ok(Current {
        users: query_as(c, USERS, &[], stored_user).await?,
        tokens: query_as(c, TOKENS, &[], stored_token).await?,
        groups: query_as(c, GROUPS, &[], group_from_row).await?,
        members: query_as(c, MEMBERS, &[], plain_membership).await?,
        applications,
        dynamic_client_ids: query_as(c, DYNAMIC, &[], |row| row.text("uid")).await?,
        secrets_rehashed_from: query_as(c, REHASHED_SECRETS, &[], |row| {
            Ok((row.int("id")?, row.text("rehashed_from")?))
        })
        .await?
        .into_iter()
        .collect(),
    })
}

#[async_trait]
impl<B: Backend> StateStore for SqlStore<B> {
    async fn read_state(&self) -> Result<Current, StoreError> {
        let access = Access::Read {
            bounded: false,
            snapshot: true,
            ordered: false,
        };
        self.run(access, |c| Box::pin(read(c))).await
    }
}
