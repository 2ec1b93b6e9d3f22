//! Authorization codes and OAuth access and refresh tokens: statements and
//! store methods.

use async_trait::async_trait;
use latchkey_core::oauth::{
    AuthorizedToken, Grant, NewGrant, NewOAuthToken, OAuthStore, OAuthToken, OAuthTokenFound,
    PkceMethod,
};
use latchkey_core::scopes::Scopes;
use latchkey_core::store::StoreError;

use crate::backend::{Access, Backend, Dialect, SqlStore};
use crate::batch::{self, Batches, Job};
use crate::conn::{query_opt, Conn, Row, Value};
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

/// PostgreSQL: the rows a unit of work that issues a token beside other
/// writes (a code redeemed, a refresh token rotated, a device grant
/// redeemed, the password grant) locks first, `FOR KEY SHARE` until it
/// commits: the token's user's row (`$user`, if any), then its
/// application's (`$app`), then the grant its chain came from (`$grant`, a
/// refresh's; `NULL` where the unit locks nothing more, or spends the
/// grant itself). The user's lock is in a subquery of its own, which the
/// join runs before the application's lock sees its row, whichever way
/// round the join goes; the grant's is in a lateral subquery that needs
/// the locked application's row, so it runs after (by its primary key: a
/// condition on `application_id` there made the generic plan walk every
/// grant of the application's index). (Locked before the
/// application, the grant deadlocked with revoke-all, which holds the
/// application and deletes its grants.) A row per application found; a
/// grant gone is no matter (see `insert_token!`).
///
/// That is the order in which everything that deletes or revokes takes
/// them: a user's delete (its row, then by cascade its applications,
/// grants and tokens), an application's delete (its row, then its grants,
/// tokens and secrets) and revoke-all (the application's row `FOR UPDATE`,
/// then its secrets, grants and tokens). Locked later, as the insert's
/// foreign-key checks would, the unit held the grant (or the old token)
/// while it waited for the application or the user, and a delete that
/// held those waited for the grant: a deadlock, answered 503. And
/// revoke-all, waiting for the application, sees the unit's token once it
/// commits, and revokes it.
///
/// The grant: the expired-data sweep deletes an expired code's grant, and
/// so (`ON DELETE SET NULL`) updates the tokens issued from it. Locked
/// only by the new token's foreign-key check, a refresh held the old
/// token (marked) while it waited for the grant the sweep was deleting,
/// and the sweep waited for the old token: a deadlock.
macro_rules! parents_locked {
    ($app:literal, $user:literal) => {
        concat!(
            "SELECT a.id FROM oauth_applications a
               LEFT JOIN (SELECT id FROM users WHERE id = ",
            $user,
            " OFFSET 0 FOR KEY SHARE) u ON TRUE
             WHERE a.id = ",
            $app,
            " FOR KEY SHARE OF a"
        )
    };
    ($app:literal, $user:literal, $grant:literal) => {
        concat!(
            "SELECT 1 FROM (",
            $crate::oauth::parents_locked!($app, $user),
            ") app
             LEFT JOIN LATERAL (SELECT id FROM oauth_access_grants
               WHERE id = ",
            $grant,
            " AND app.id IS NOT NULL OFFSET 0 FOR KEY SHARE) g ON TRUE"
        )
    };
}
pub(crate) use parents_locked;

/// [`parents_locked!`] on its own (the password grant's unit).
const LOCK_TOKEN_PARENTS: &str = parents_locked!("$1", "$2", "$3");

/// The statement that spends what a unit of work redeems for a token (`$1`
/// its row, `$2` now), one for each dialect (see [`Dialect::choose`]). On
/// PostgreSQL it locks the token's parents first ([`parents_locked!`],
/// `$3` the application, `$4` the user, `$5` the grant), in an `EXISTS` that refers to
/// nothing of the row, so it runs before any row is updated (and locked):
/// no round trip of its own. With the application gone it spends nothing,
/// as when the delete's cascade took the row.
macro_rules! redeeming {
    ($statement:literal) => {
        [
            $statement,
            concat!(
                $statement,
                " AND EXISTS (",
                $crate::oauth::parents_locked!("$3", "$4", "$5"),
                ")"
            ),
        ]
    };
}
pub(crate) use redeeming;

/// Store a code's grant. On PostgreSQL its user, then its application, are
/// locked first ([`parents_locked!`]), in an `EXISTS` that runs before the
/// insert: its foreign-key checks alone locked the application, then the
/// user (the order the columns are declared in), the reverse of a user's
/// delete, which deadlocked with it when the user owned the application
/// (or its group). No row if the application or the user is gone.
macro_rules! insert_grant {
    ($rows:expr) => {
        concat!(
            "INSERT INTO oauth_access_grants
               (application_id, user_id, code_digest, redirect_uri, scopes, code_challenge,
                code_challenge_method, nonce, created_at, expires_at, auth_time) ",
            $rows,
            " RETURNING ",
            grant_columns!()
        )
    };
}
const INSERT_GRANT: [&str; 2] = [
    insert_grant!("VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"),
    insert_grant!(concat!(
        "SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11 WHERE EXISTS (",
        parents_locked!("$1", "$2"),
        ")"
    )),
];
const FIND_GRANT: &str = concat!(
    "SELECT ",
    grant_columns!(),
    " FROM oauth_access_grants WHERE code_digest = $1"
);
const REDEEM_GRANT: [&str; 2] = redeeming!(
    "UPDATE oauth_access_grants SET redeemed_at = $2 WHERE id = $1 AND redeemed_at IS NULL"
);
const REVOKE_GRANT_TOKENS: &str = "UPDATE oauth_access_tokens SET revoked_at = $2
     WHERE revoked_at IS NULL
       AND family IN (SELECT family FROM oauth_access_tokens WHERE grant_id = $1)";
/// Insert an OAuth token, in one statement with the checks that its
/// application exists and that the client secret it is issued on (`$12`,
/// if any) is still live at its creation time: no row (so `Gone`) if not.
/// One statement, because PostgreSQL runs a one-statement write
/// autocommitted: a check of its own would release its lock before the
/// insert, and a renewal or revoke-all could commit in between. The grant
/// (`$10`) is kept only if it is still there: a refresh names its chain's
/// grant as it read it, and the sweep may have deleted it since (an
/// expired code's), as it forgot it in the chain's tokens; refused by the
/// foreign key, the refresh failed. (The units that issue with a grant
/// hold it meanwhile: see [`parents_locked!`].)
///
/// On PostgreSQL (`$app_lock`, `$secret_lock`) the application's row is
/// locked first (`FOR KEY SHARE`, as the foreign key's check would, behind
/// `OFFSET 0` so that the secret's check cannot run before it), then the
/// secret's (`FOR SHARE`), each until the token commits: the order in
/// which an application's delete takes them (its row, then its secrets by
/// cascade), so the two cannot deadlock. A renewal's, revoke-all's or
/// delete's change of the secret then waits for the token (and revoke-all
/// revokes it), or the statement waits for theirs and sees the secret
/// gone or expired.
macro_rules! insert_token {
    ($app_lock:literal, $secret_lock:literal) => {
        concat!(
            "INSERT INTO oauth_access_tokens
               (application_id, user_id, token_digest, refresh_digest, scopes, created_at,
                expires_at, family, previous_token_id, grant_id, auth_time)
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9,
               (SELECT id FROM oauth_access_grants WHERE id = $10), $11
             FROM (SELECT id FROM oauth_applications WHERE id = $1",
            $app_lock,
            ") app
             WHERE $12 IS NULL OR EXISTS (SELECT 1 FROM application_secrets s
               WHERE s.id = $12 AND s.application_id = app.id
                 AND (s.expires_at IS NULL OR s.expires_at > $6)",
            $secret_lock,
            ") RETURNING ",
            token_columns!()
        )
    };
}

/// The parameters of a [`redeeming!`] statement that spends row `id` at
/// `now` for `t`, locking `grant` too (see [`parents_locked!`]).
pub(crate) fn redeeming_params(
    dialect: Dialect,
    id: i64,
    now: i64,
    t: &NewOAuthToken,
    grant: Option<i64>,
) -> Vec<Value> {
    match dialect {
        Dialect::Sqlite => Vec::from(params![id, now]),
        Dialect::Postgres => Vec::from(params![id, now, t.application_id, t.user_id, grant]),
    }
}

/// Lock the rows that a unit of work which issues `t` (and spends nothing
/// with [`redeeming!`]) takes first: PostgreSQL only, see
/// [`parents_locked!`]. Nothing on SQLite, whose single writer runs one
/// unit at a time. A row that is gone is not an error here: the insert
/// finds it gone.
pub(crate) async fn lock_token_parents(
    c: &mut dyn Conn,
    t: &NewOAuthToken,
    dialect: Dialect,
) -> Result<(), StoreError> {
    if dialect == Dialect::Postgres {
        c.query(
            LOCK_TOKEN_PARENTS,
            &params![t.application_id, t.user_id, t.grant_id],
        )
        .await?;
    }
    Ok(())
}

/// The columns of one token in [`INSERT_TOKENS_MANY`]'s JSON: `n`, its
/// place in the batch, then `insert_token!`'s parameters in order, with
/// their types (checked against the parameters' kinds by a test).
macro_rules! many_token_columns {
    () => {
        "n BIGINT, p1 BIGINT, p2 BIGINT, p3 TEXT, p4 TEXT, p5 TEXT, p6 BIGINT, p7 BIGINT, \
         p8 TEXT, p9 BIGINT, p10 BIGINT, p11 BIGINT, p12 BIGINT"
    };
}

/// `insert_token!` for several tokens in one statement (PostgreSQL, see
/// [`crate::batch`]): `$1` is a JSON array with an object per token. For
/// each token its application's row is locked, then its secret's, as in
/// `insert_token!`, but `SKIP LOCKED`: a token whose application or secret
/// another transaction holds is left out, and runs again alone (see
/// [`SqlStore::token_batch`]), as does one whose application is gone or
/// whose secret is not live (the insert alone tells which). So a batch
/// never waits for a row while it holds others. No order of a batch's
/// rows agrees with every writer's: the flush of secrets' last use takes
/// secrets in ascending order, a delete of a group or a user takes several
/// applications in its own order, each before its secrets; a batch that
/// waited could close a cycle with any of them (with a group's delete,
/// which was aborted: checked). An insert alone holds one application.
/// A row per token stored, with its digest (unique) to match it to its
/// insert.
const INSERT_TOKENS_MANY: &str = concat!(
    "INSERT INTO oauth_access_tokens
       (application_id, user_id, token_digest, refresh_digest, scopes, created_at,
        expires_at, family, previous_token_id, grant_id, auth_time)
     SELECT p1, p2, p3, p4, p5, p6, p7, p8, p9,
       (SELECT id FROM oauth_access_grants WHERE id = job.p10), p11
     FROM json_to_recordset(CAST($1 AS json)) AS job(",
    many_token_columns!(),
    ")
     JOIN LATERAL (SELECT id FROM oauth_applications WHERE id = job.p1
                   OFFSET 0 FOR KEY SHARE SKIP LOCKED) app
       ON TRUE
     WHERE p12 IS NULL OR EXISTS (SELECT 1 FROM application_secrets s
       WHERE s.id = job.p12 AND s.application_id = app.id
         AND (s.expires_at IS NULL OR s.expires_at > job.p6) FOR SHARE SKIP LOCKED)
     RETURNING token_digest, ",
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
const MARK_REFRESHED: [&str; 2] = redeeming!(
    "UPDATE oauth_access_tokens SET refreshed_at = $2
     WHERE id = $1 AND refreshed_at IS NULL AND revoked_at IS NULL
       AND refresh_digest IS NOT NULL"
);
const REVOKE_FAMILY: &str =
    "UPDATE oauth_access_tokens SET revoked_at = $2 WHERE family = $1 AND revoked_at IS NULL";
const REVOKE: &str =
    "UPDATE oauth_access_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL";
const FORGET_PREVIOUS: &str =
    "UPDATE oauth_access_tokens SET previous_token_id = NULL WHERE id = $1";

/// Revoke every live token a statement such as `REVOKE_FAMILY` or
/// `REVOKE_GRANT_TOKENS` finds (`$1` the family or grant, `$2` now), pass
/// after pass until one revokes nothing; how many were revoked. A refresh
/// under way in the family holds the token it rotates from its mark to
/// its commit: on PostgreSQL a pass waits for it and revokes that token,
/// but the new one is not in the pass's snapshot, and would stay live; the
/// next pass, a new snapshot, revokes it (and the client may have
/// refreshed again meanwhile: hence until none). It ends: a refresh marks
/// only a live token, which the pass before revoked. (On SQLite the
/// second pass finds nothing.)
pub(crate) async fn revoke_until_none(
    c: &mut dyn Conn,
    sql: &str,
    params: &[Value],
) -> Result<u64, StoreError> {
    let mut revoked = 0;
    loop {
        let n = c.execute(sql, params).await?;
        if n == 0 {
            return Ok(revoked);
        }
        revoked += n;
    }
}

/// Revoke a token family (see [`revoke_until_none`]).
pub(crate) async fn revoke_family(
    c: &mut dyn Conn,
    family: &str,
    now: i64,
) -> Result<u64, StoreError> {
    revoke_until_none(c, REVOKE_FAMILY, &params![family, now]).await
}

/// `insert_token!`'s parameters for `t`.
fn token_params(t: &NewOAuthToken) -> Vec<Value> {
    Vec::from(params![
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
        t.client_secret_id,
    ])
}

/// Insert an OAuth token; the token as stored. A token issued on a client
/// secret needs that secret live (`Gone` otherwise; see `insert_token!`).
pub(crate) async fn insert_token(
    c: &mut dyn Conn,
    t: &NewOAuthToken,
    dialect: Dialect,
) -> Result<OAuthToken, StoreError> {
    let sql = match dialect {
        Dialect::Sqlite => insert_token!("", ""),
        Dialect::Postgres => insert_token!(" OFFSET 0 FOR KEY SHARE", " FOR SHARE"),
    };
    match query_opt(c, sql, &token_params(t)).await? {
        Some(mut row) => oauth_token_from_row(&mut row, ""),
        None => Err(StoreError::Gone),
    }
}

/// An OAuth token insert waiting for its batch (PostgreSQL).
type TokenJob = Job<NewOAuthToken, OAuthToken>;

/// PostgreSQL's queue of OAuth token inserts.
pub(crate) type TokenBatches = Batches<NewOAuthToken, OAuthToken>;

/// Answer each insert of a batch that [`INSERT_TOKENS_MANY`] stored, from
/// its rows (matched by digest); the inserts it left out (their
/// application or secret held, gone or not live), to run alone.
fn answer_tokens(jobs: Vec<TokenJob>, rows: Vec<Row>) -> Vec<TokenJob> {
    batch::answer_stored(
        jobs,
        rows,
        |row| Ok((row.text("token_digest")?, oauth_token_from_row(row, "")?)),
        |t: &NewOAuthToken| t.token_digest.as_str(),
        |_, token| token,
    )
}

impl<B: Backend> SqlStore<B> {
    /// One token insert, a statement of its own.
    async fn insert_token_alone(&self, token: NewOAuthToken) -> Result<OAuthToken, StoreError> {
        self.run(Access::WRITE, move |c| {
            Box::pin(async move { insert_token(c, &token, B::DIALECT).await })
        })
        .await
    }

    /// Run `jobs` as one statement (one alone as before), and answer each.
    async fn token_batch(&self, jobs: Vec<TokenJob>) {
        let alone = if jobs.len() > 1 {
            let params = vec![Value::from(batch::params_json(
                jobs.iter().map(|j| token_params(&j.input)),
            ))];
            let rows = self
                .run(Access::WRITE, move |c| {
                    Box::pin(async move { c.query(INSERT_TOKENS_MANY, &params).await })
                })
                .await;
            match rows {
                Ok(rows) => answer_tokens(jobs, rows),
                // Nothing of the batch was stored. Whatever the cause (a
                // digest taken, a lost connection), each insert runs again
                // on its own, all at once, for an answer of its own: one
                // token's trouble is not every client's.
                Err(e) => {
                    tracing::debug!(error = %e, tokens = jobs.len(), "a batch of token inserts failed; each runs alone");
                    jobs
                }
            }
        } else {
            jobs
        };
        futures::future::join_all(alone.into_iter().map(|job| async move {
            let token = self.insert_token_alone(job.input).await;
            let _ = job.reply.send(token);
        }))
        .await;
    }

    async fn token_by(
        &self,
        sql: &'static str,
        digest: &str,
    ) -> Result<Option<OAuthTokenFound>, StoreError> {
        self.read_opt(sql, params![digest], oauth_found).await
    }
}

/// Store an authorization code's grant (see [`INSERT_GRANT`]): `Gone` if
/// its application or user is.
pub(crate) async fn insert_grant(
    c: &mut dyn Conn,
    g: &NewGrant,
    dialect: Dialect,
) -> Result<Grant, StoreError> {
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
    match query_opt(c, dialect.choose(INSERT_GRANT), &params).await? {
        Some(mut row) => grant_from_row(&mut row),
        None => Err(StoreError::Gone),
    }
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
            Box::pin(async move { insert_grant(c, &g, B::DIALECT).await })
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
                // The grant is the row it spends (and so locks).
                let params = redeeming_params(B::DIALECT, grant_id, now, &token, None);
                if c.execute(B::DIALECT.choose(REDEEM_GRANT), &params).await? == 0 {
                    return Ok(None);
                }
                Ok(Some(insert_token(c, &token, B::DIALECT).await?))
            })
        })
        .await
    }

    async fn revoke_grant_tokens(&self, grant_id: i64, now: i64) -> Result<u64, StoreError> {
        self.run(Access::WRITE, move |c| {
            Box::pin(async move {
                revoke_until_none(c, REVOKE_GRANT_TOKENS, &params![grant_id, now]).await
            })
        })
        .await
    }

    async fn insert_oauth_token(&self, token: NewOAuthToken) -> Result<OAuthToken, StoreError> {
        match &self.token_batches {
            Some(batches) => {
                let run = |store: Self, jobs| async move { store.token_batch(jobs).await };
                batches.submit(token, "token inserts", self, run).await
            }
            None => self.insert_token_alone(token).await,
        }
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
                let params = redeeming_params(B::DIALECT, old_id, now, &new, new.grant_id);
                if c.execute(B::DIALECT.choose(MARK_REFRESHED), &params)
                    .await?
                    == 0
                {
                    return Ok(None);
                }
                Ok(Some(insert_token(c, &new, B::DIALECT).await?))
            })
        })
        .await
    }

    async fn revoke_token_family(&self, family: &str, now: i64) -> Result<u64, StoreError> {
        let family = family.to_owned();
        self.run(Access::WRITE, move |c| {
            Box::pin(async move { revoke_family(c, &family, now).await })
        })
        .await
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
        // See `OAuthStore::finish_refresh`: one row at a time, so that
        // neither write holds a token while it waits for another.
        self.write_one(REVOKE, params![previous_id, now]).await?;
        self.write_one(FORGET_PREVIOUS, params![token_id]).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The batch's column types are the single insert's parameters' kinds,
    /// in order.
    #[test]
    fn the_batch_columns_are_the_parameters_in_order() {
        let token = NewOAuthToken {
            application_id: 1,
            user_id: None,
            token_digest: "t".to_owned(),
            refresh_digest: None,
            scopes: Scopes::from_stored("api"),
            created_at: 0,
            expires_at: 1,
            family: "f".to_owned(),
            previous_token_id: None,
            grant_id: None,
            auth_time: None,
            client_secret_id: None,
        };
        batch::tests::assert_columns_match(
            many_token_columns!(),
            &token_params(&token),
            insert_token!("", ""),
        );
    }
}
