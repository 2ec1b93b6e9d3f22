//! One unit of work across aggregates (`Store::transaction`): each
//! aggregate's writes on one transaction of the backend.

use std::any::Any;

use async_trait::async_trait;
use latchkey_core::application::{Application, NewApplication, Ownership};
use latchkey_core::store::{StoreError, Transaction, TransactionWork};
use latchkey_core::token::{NewToken, PersonalAccessToken};
use latchkey_core::user::{NewUser, User};

use crate::backend::{Access, Backend, SqlStore};
use crate::conn::Conn;
use crate::{applications, params, tokens, users};

const REVOKE_APPLICATION_TOKENS: &str =
    "UPDATE oauth_access_tokens SET revoked_at = $2 WHERE application_id = $1 AND revoked_at IS NULL";

/// The aggregates' writes on one connection inside a transaction.
struct SqlTransaction<'c> {
    c: &'c mut dyn Conn,
}

#[async_trait]
impl Transaction for SqlTransaction<'_> {
    async fn insert_application(&mut self, app: NewApplication) -> Result<Application, StoreError> {
        applications::insert(self.c, &app).await
    }

    async fn delete_application(&mut self, id: i64, scope: Ownership) -> Result<bool, StoreError> {
        applications::delete(self.c, id, scope).await
    }

    async fn revoke_application_tokens(
        &mut self,
        application_id: i64,
        now: i64,
    ) -> Result<u64, StoreError> {
        self.c
            .execute(REVOKE_APPLICATION_TOKENS, &params![application_id, now])
            .await
    }

    async fn insert_user(&mut self, user: NewUser) -> Result<User, StoreError> {
        users::insert(self.c, &user).await
    }

    async fn insert_token(&mut self, token: NewToken) -> Result<PersonalAccessToken, StoreError> {
        tokens::insert(self.c, token.user_id, &token).await
    }

    async fn revoke_token(&mut self, id: i64) -> Result<bool, StoreError> {
        Ok(self.c.execute(tokens::REVOKE, &params![id]).await? > 0)
    }
}

impl<B: Backend> SqlStore<B> {
    pub(crate) async fn unit_of_work(
        &self,
        work: TransactionWork,
    ) -> Result<Box<dyn Any + Send>, StoreError> {
        let done = self
            .run(Access::TRANSACTION, move |c| {
                Box::pin(async move {
                    let mut tx = SqlTransaction { c };
                    work(&mut tx).await
                })
            })
            .await;
        // It may have created or deleted applications.
        self.applications_changed();
        done
    }
}
