//! OpenID Connect signing keys: statements and store methods.

use async_trait::async_trait;
use latchkey_core::oidc::{NewSigningKey, SigningKey, SigningKeyStore};
use latchkey_core::store::StoreError;

use crate::backend::{Access, Backend, SqlStore};
use crate::conn::{query_as, Conn};
use crate::params;
use crate::rows::key_from_row;

const INSERT: &str =
    "INSERT INTO signing_keys (kid, algorithm, private_pem, public_n, public_e, created_at)
     SELECT $1, $2, $3, $4, $5, $6";
const INSERT_FIRST: &str =
    "INSERT INTO signing_keys (kid, algorithm, private_pem, public_n, public_e, created_at)
     SELECT $1, $2, $3, $4, $5, $6
     WHERE NOT EXISTS (SELECT 1 FROM signing_keys WHERE retired_at IS NULL)";
pub(crate) const RETIRE: &str =
    "UPDATE signing_keys SET retired_at = $2 WHERE retired_at IS NULL AND kid <> $1";
const PUBLISHED: &str =
    "SELECT id, kid, algorithm, private_pem, public_n, public_e, created_at, retired_at
     FROM signing_keys WHERE retired_at IS NULL OR retired_at > $1 ORDER BY id DESC";

/// Store a signing key (only if no key is active, when asked); whether it was.
pub(crate) async fn insert(
    c: &mut dyn Conn,
    k: &NewSigningKey,
    only_if_none_active: bool,
) -> Result<bool, StoreError> {
    let sql = if only_if_none_active {
        INSERT_FIRST
    } else {
        INSERT
    };
    let params = params![
        &k.kid,
        &k.algorithm,
        &k.private_pem,
        &k.public_n,
        &k.public_e,
        k.created_at
    ];
    Ok(c.execute(sql, &params).await? > 0)
}

#[async_trait]
impl<B: Backend> SigningKeyStore for SqlStore<B> {
    async fn insert_signing_key(
        &self,
        k: NewSigningKey,
        only_if_none_active: bool,
    ) -> Result<bool, StoreError> {
        self.run(Access::WRITE, move |c| {
            Box::pin(async move { insert(c, &k, only_if_none_active).await })
        })
        .await
    }

    async fn retire_signing_keys(&self, except_kid: &str, now: i64) -> Result<u64, StoreError> {
        self.write_one(RETIRE, params![except_kid, now]).await
    }

    async fn signing_keys(&self, retired_after: i64) -> Result<Vec<SigningKey>, StoreError> {
        self.run(Access::POINT, move |c| {
            Box::pin(
                async move { query_as(c, PUBLISHED, &params![retired_after], key_from_row).await },
            )
        })
        .await
    }
}
