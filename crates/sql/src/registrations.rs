//! Dynamic client registration: statements and store methods.

use async_trait::async_trait;
use latchkey_core::application::Application;
use latchkey_core::registration::RegistrationStore;
use latchkey_core::store::StoreError;

use crate::applications::app_columns;
use crate::backend::{Access, Backend, SqlStore};
use crate::conn::{query_as, query_opt_as, Conn};
use crate::params;
use crate::rows::app_from_row;

const FIND: &str = concat!(
    "SELECT ",
    app_columns!(),
    ", registration_token_digest FROM oauth_applications WHERE uid = $1 AND dynamic = TRUE"
);
/// Up to `$2` of them, oldest first.
const DELETE_UNUSED: &str = concat!(
    "DELETE FROM oauth_applications WHERE id IN
       (SELECT a.id FROM oauth_applications a WHERE a.dynamic = TRUE AND a.created_at < $1
          AND NOT EXISTS (SELECT 1 FROM oauth_access_tokens t WHERE t.application_id = a.id)
          AND NOT EXISTS (SELECT 1 FROM oauth_access_grants g WHERE g.application_id = a.id)
        ORDER BY a.id LIMIT $2)
     RETURNING ",
    app_columns!()
);

/// Delete up to `limit` of the dynamically registered applications created
/// before `created_before` that never got a grant or a token; those deleted.
pub(crate) async fn delete_unused(
    c: &mut dyn Conn,
    created_before: i64,
    limit: i64,
) -> Result<Vec<Application>, StoreError> {
    let params = params![created_before, limit];
    query_as(c, DELETE_UNUSED, &params, app_from_row).await
}

#[async_trait]
impl<B: Backend> RegistrationStore for SqlStore<B> {
    async fn find_registration(
        &self,
        client_id: &str,
    ) -> Result<Option<(Application, Option<String>)>, StoreError> {
        let params = params![client_id];
        self.run(Access::POINT, move |c| {
            Box::pin(async move {
                query_opt_as(c, FIND, &params, |row| {
                    Ok((
                        app_from_row(row)?,
                        row.opt_text("registration_token_digest")?,
                    ))
                })
                .await
            })
        })
        .await
    }

    async fn delete_unused_dynamic_applications(
        &self,
        created_before: i64,
    ) -> Result<u64, StoreError> {
        let done = self
            .run(Access::WRITE, move |c| {
                Box::pin(async move { delete_unused(c, created_before, i64::MAX).await })
            })
            .await;
        self.applications_changed();
        Ok(done?.len() as u64)
    }
}
