//! Applications' secrets: several may be live at once, each with an
//! optional expiry, while clients move to a new one. Their statements;
//! the units of work that renew, delete and revoke them are the
//! application's (`applications.rs`), which they lock first.

use latchkey_core::application::{Application, ClientSecret, NewSecret, SecretInfo};
use latchkey_core::store::StoreError;

use crate::conn::{query_as, query_one, Conn, Row};
use crate::params;
use crate::rows::app_from_row;

const INSERT: &str = "INSERT INTO application_secrets
       (application_id, digest, hint, created_at, expires_at)
     VALUES ($1, $2, NULLIF($3, ''), $4, $5)
     RETURNING id, hint, created_at, expires_at, last_used_at";
const LIVE: &str = "SELECT id, hint, created_at, expires_at, last_used_at FROM application_secrets
     WHERE application_id = $1 AND (expires_at IS NULL OR expires_at > $2) ORDER BY id";
pub(crate) const COUNT_LIVE: &str = "SELECT COUNT(*) FROM application_secrets
     WHERE application_id = $1 AND (expires_at IS NULL OR expires_at > $2)";
pub(crate) const DELETE_ONE: &str =
    "DELETE FROM application_secrets WHERE application_id = $1 AND id = $2";
pub(crate) const FIND_ONE: &str = "SELECT id, hint, created_at, expires_at, last_used_at
     FROM application_secrets WHERE application_id = $1 AND id = $2";
pub(crate) const DELETE_ALL: &str = "DELETE FROM application_secrets WHERE application_id = $1";
/// Every live secret expires by `$2`, or sooner if it already would.
pub(crate) const RETIRE_BY: &str = "UPDATE application_secrets
     SET expires_at = $2
     WHERE application_id = $1 AND (expires_at IS NULL OR expires_at > $2)";
/// The newest secret's digest, on the application's own row.
const NEWEST: &str = "UPDATE oauth_applications SET secret_digest = $2 WHERE id = $1";
pub(crate) const REVOKE_TOKENS: &str = "UPDATE oauth_access_tokens SET revoked_at = $2
     WHERE application_id = $1 AND revoked_at IS NULL";
pub(crate) const DELETE_GRANTS: &str = "DELETE FROM oauth_access_grants WHERE application_id = $1";
pub(crate) const DELETE_DEVICE_GRANTS: &str = "DELETE FROM device_grants WHERE application_id = $1";
pub(crate) const TOUCH: &str = "UPDATE application_secrets SET last_used_at = $2
     WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $2)";
/// An imported secret's digest becomes latchkey's (`$4`: the SHA-256 of
/// the form it replaces).
pub(crate) const REHASH: &str = "UPDATE application_secrets SET digest = $3, rehashed_from = $4
     WHERE id = $1 AND digest = $2";
/// Secrets past their expiry (`$1`): removed by the background sweep.
pub(crate) const DELETE_EXPIRED: &str =
    "DELETE FROM application_secrets WHERE expires_at IS NOT NULL AND expires_at <= $1";
/// Applications, once per secret each has (or once with no secret).
macro_rules! with_secrets_select {
    () => {
        "SELECT a.id, a.uid, a.name, a.redirect_uri, a.scopes,
       a.confidential, a.trusted, a.owner_id, a.created_at, a.dynamic, a.grant_types,
       a.group_id, s.id AS s_id, s.digest AS s_digest, s.expires_at AS s_expires_at
     FROM oauth_applications a LEFT JOIN application_secrets s ON s.application_id = a.id"
    };
}
pub(crate) use with_secrets_select;

/// An application by its client_id, once per secret it has (or once with
/// no secret).
pub(crate) const BY_UID: &str = concat!(with_secrets_select!(), " WHERE a.uid = $1 ORDER BY s.id");

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
    rows: Vec<Row>,
) -> Result<Option<(Application, Vec<ClientSecret>)>, StoreError> {
    Ok(grouped_by_application(rows)?.into_iter().next())
}

/// Rows of [`with_secrets_select`], ordered by application, as each
/// application with its secrets.
pub(crate) fn grouped_by_application(
    rows: Vec<Row>,
) -> Result<Vec<(Application, Vec<ClientSecret>)>, StoreError> {
    let mut out: Vec<(Application, Vec<ClientSecret>)> = Vec::new();
    for mut row in rows {
        let id = row.int("id")?;
        if out.last().is_none_or(|(app, _)| app.id != id) {
            out.push((app_from_row(&mut row)?, Vec::new()));
        }
        if let (Some(secret_id), Some((_, secrets))) = (row.opt_int("s_id")?, out.last_mut()) {
            secrets.push(ClientSecret {
                id: secret_id,
                digest: row.text("s_digest")?,
                expires_at: row.opt_int("s_expires_at")?,
            });
        }
    }
    Ok(out)
}

/// Add `secret` to application `application_id`, and make it the newest.
/// Add a secret to an application, as its newest.
pub(crate) async fn insert(
    c: &mut dyn Conn,
    application_id: i64,
    secret: &NewSecret,
) -> Result<SecretInfo, StoreError> {
    let info = insert_first(c, application_id, secret).await?;
    c.execute(NEWEST, &params![application_id, &secret.digest])
        .await?;
    Ok(info)
}

/// Add an application's first secret (already its newest: the digest it
/// was inserted with).
pub(crate) async fn insert_first(
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
    info_from_row(&mut query_one(c, INSERT, &params).await?)
}

pub(crate) async fn live(
    c: &mut dyn Conn,
    application_id: i64,
    now: i64,
) -> Result<Vec<SecretInfo>, StoreError> {
    query_as(c, LIVE, &params![application_id, now], info_from_row).await
}
