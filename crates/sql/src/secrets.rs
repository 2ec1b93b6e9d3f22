//! Applications' secrets: several may be live at once, each with an
//! optional expiry, while clients move to a new one.

use latchkey_core::application::{
    Application, ClientSecret, NewSecret, Ownership, Retire, SecretDeletion, SecretInfo,
    MAX_LIVE_SECRETS,
};
use latchkey_core::store::StoreError;

use crate::conn::{count, query_as, query_one, query_opt_as, Conn, Row};
use crate::params;
use crate::rows::app_from_row;

const INSERT: &str = "INSERT INTO application_secrets
       (application_id, digest, hint, created_at, expires_at)
     VALUES ($1, $2, $3, $4, $5)
     RETURNING id, hint, created_at, expires_at, last_used_at";
const LIVE: &str = "SELECT id, hint, created_at, expires_at, last_used_at FROM application_secrets
     WHERE application_id = $1 AND (expires_at IS NULL OR expires_at > $2) ORDER BY id";
const COUNT_LIVE: &str = "SELECT COUNT(*) FROM application_secrets
     WHERE application_id = $1 AND (expires_at IS NULL OR expires_at > $2)";
const DELETE_ONE: &str = "DELETE FROM application_secrets WHERE application_id = $1 AND id = $2";
const FIND_ONE: &str = "SELECT id, hint, created_at, expires_at, last_used_at
     FROM application_secrets WHERE application_id = $1 AND id = $2";
const DELETE_ALL: &str = "DELETE FROM application_secrets WHERE application_id = $1";
/// Every live secret expires by `$2`, or sooner if it already would.
const RETIRE_BY: &str = "UPDATE application_secrets
     SET expires_at = $2
     WHERE application_id = $1 AND (expires_at IS NULL OR expires_at > $2)";
/// The newest secret's digest, on the application's own row.
const NEWEST: &str = "UPDATE oauth_applications SET secret_digest = $2 WHERE id = $1";
const REVOKE_TOKENS: &str = "UPDATE oauth_access_tokens SET revoked_at = $2
     WHERE application_id = $1 AND revoked_at IS NULL";
const DELETE_GRANTS: &str = "DELETE FROM oauth_access_grants WHERE application_id = $1";
const DELETE_DEVICE_GRANTS: &str = "DELETE FROM device_grants WHERE application_id = $1";
pub(crate) const TOUCH: &str = "UPDATE application_secrets SET last_used_at = $2
     WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $2)";
/// Secrets past their expiry (`$1`): removed by the background sweep.
pub(crate) const DELETE_EXPIRED: &str =
    "DELETE FROM application_secrets WHERE expires_at IS NOT NULL AND expires_at <= $1";
/// An application by its client_id, once per secret it has (or once with
/// no secret).
pub(crate) const BY_UID: &str = "SELECT a.id, a.uid, a.name, a.redirect_uri, a.scopes,
       a.confidential, a.trusted, a.owner_id, a.created_at, a.dynamic, a.grant_types,
       a.group_id, s.id AS s_id, s.digest AS s_digest, s.expires_at AS s_expires_at
     FROM oauth_applications a LEFT JOIN application_secrets s ON s.application_id = a.id
     WHERE a.uid = $1 ORDER BY s.id";

pub(crate) fn info_from_row(row: &mut Row) -> Result<SecretInfo, StoreError> {
    Ok(SecretInfo {
        id: row.int("id")?,
        hint: row.opt_text("hint")?,
        created_at: row.int("created_at")?,
        expires_at: row.opt_int("expires_at")?,
        last_used_at: row.opt_int("last_used_at")?,
    })
}

/// The rows of [`BY_UID`] as the application and its secrets.
pub(crate) fn with_secrets(
    mut rows: Vec<Row>,
) -> Result<Option<(Application, Vec<ClientSecret>)>, StoreError> {
    let Some(first) = rows.first_mut() else {
        return Ok(None);
    };
    let app = app_from_row(first)?;
    let mut secrets = Vec::with_capacity(rows.len());
    for row in &mut rows {
        if let Some(id) = row.opt_int("s_id")? {
            secrets.push(ClientSecret {
                id,
                digest: row.text("s_digest")?,
                expires_at: row.opt_int("s_expires_at")?,
            });
        }
    }
    Ok(Some((app, secrets)))
}

/// Add `secret` to application `application_id`, and make it the newest.
pub(crate) async fn insert(
    c: &mut dyn Conn,
    application_id: i64,
    secret: &NewSecret,
) -> Result<SecretInfo, StoreError> {
    let params = params![
        application_id,
        &secret.digest,
        &secret.hint,
        secret.created_at,
        secret.expires_at,
    ];
    let info = info_from_row(&mut query_one(c, INSERT, &params).await?)?;
    c.execute(NEWEST, &params![application_id, &secret.digest])
        .await?;
    Ok(info)
}

/// The application (within `scope`), locked on PostgreSQL.
async fn locked_app(
    c: &mut dyn Conn,
    id: i64,
    scope: Ownership,
    lock: &str,
) -> Result<Option<Application>, StoreError> {
    crate::applications::find(c, id, scope, lock).await
}

pub(crate) async fn renew(
    c: &mut dyn Conn,
    id: i64,
    scope: Ownership,
    secret: NewSecret,
    retire: Retire,
    lock: &str,
) -> Result<Option<(Application, SecretInfo)>, StoreError> {
    let Some(app) = locked_app(c, id, scope, lock).await? else {
        return Ok(None);
    };
    match retire {
        Retire::Now => c.execute(DELETE_ALL, &params![id]).await?,
        Retire::At(at) => {
            let live = count(c, COUNT_LIVE, &params![id, secret.created_at]).await?;
            if live >= MAX_LIVE_SECRETS as u64 {
                return Err(StoreError::Conflict("secrets".to_owned()));
            }
            c.execute(RETIRE_BY, &params![id, at]).await?
        }
    };
    let info = insert(c, id, &secret).await?;
    Ok(Some((app, info)))
}

pub(crate) async fn delete_one(
    c: &mut dyn Conn,
    application_id: i64,
    secret_id: i64,
    now: i64,
    lock: &str,
) -> Result<SecretDeletion, StoreError> {
    // The application's row orders concurrent deletions of its secrets.
    if locked_app(c, application_id, Ownership::Any, lock)
        .await?
        .is_none()
    {
        return Ok(SecretDeletion::NotFound);
    }
    let Some(found) = query_opt_as(
        c,
        FIND_ONE,
        &params![application_id, secret_id],
        info_from_row,
    )
    .await?
    else {
        return Ok(SecretDeletion::NotFound);
    };
    let live = found.expires_at.is_none_or(|at| at > now);
    if live && count(c, COUNT_LIVE, &params![application_id, now]).await? <= 1 {
        return Ok(SecretDeletion::LastLive);
    }
    c.execute(DELETE_ONE, &params![application_id, secret_id])
        .await?;
    Ok(SecretDeletion::Deleted)
}

pub(crate) async fn revoke_all(
    c: &mut dyn Conn,
    id: i64,
    scope: Ownership,
    secret: NewSecret,
    now: i64,
    lock: &str,
) -> Result<Option<(Application, SecretInfo)>, StoreError> {
    let Some(app) = locked_app(c, id, scope, lock).await? else {
        return Ok(None);
    };
    // The secrets first: an issuer holding one (see `oauth::insert_token`)
    // finishes before they go, and its token is then revoked below; one
    // that comes after finds its secret gone.
    c.execute(DELETE_ALL, &params![id]).await?;
    c.execute(REVOKE_TOKENS, &params![id, now]).await?;
    c.execute(DELETE_GRANTS, &params![id]).await?;
    c.execute(DELETE_DEVICE_GRANTS, &params![id]).await?;
    let info = insert(c, id, &secret).await?;
    Ok(Some((app, info)))
}

pub(crate) async fn live(
    c: &mut dyn Conn,
    application_id: i64,
    now: i64,
) -> Result<Vec<SecretInfo>, StoreError> {
    query_as(c, LIVE, &params![application_id, now], info_from_row).await
}
