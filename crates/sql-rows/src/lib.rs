//! Turning rows into latchkey's domain types, the same way for every SQL
//! backend: the schemas are identical (a conformance test checks it), so
//! only the SQL text differs between backends, never the decoding.

use latchkey_core::application::Application;
use latchkey_core::dump::{Cell, Kind};
use latchkey_core::oauth::{DeviceGrant, DeviceStatus, Grant, OAuthToken, PkceMethod};
use latchkey_core::oidc::SigningKey;
use latchkey_core::scopes::Scopes;
use latchkey_core::token::PersonalAccessToken;
use latchkey_core::user::{User, UserState};
use sqlx::{ColumnIndex, Decode, Row, Type};

/// Typed column access by name, for any backend's rows (sqlx's, and
/// rusqlite's for SQLite's inline reads).
pub trait Columns {
    type Error;
    fn get_i64(&self, col: &str) -> Result<i64, Self::Error>;
    fn get_opt_i64(&self, col: &str) -> Result<Option<i64>, Self::Error>;
    fn get_text(&self, col: &str) -> Result<String, Self::Error>;
    fn get_opt_text(&self, col: &str) -> Result<Option<String>, Self::Error>;
    fn get_bool(&self, col: &str) -> Result<bool, Self::Error>;
    /// A stored value latchkey cannot read.
    fn invalid(message: String) -> Self::Error;
}

/// sqlx rows also give cells by position (for `db copy`).
pub trait RowExt: Columns<Error = sqlx::Error> {
    /// Column `i` as a cell of `kind`.
    fn cell(&self, i: usize, kind: Kind) -> Result<Cell, sqlx::Error>;
}

impl<R> Columns for R
where
    R: Row,
    for<'a> &'a str: ColumnIndex<R>,
    for<'r> i64: Decode<'r, R::Database>,
    i64: Type<R::Database>,
    for<'r> String: Decode<'r, R::Database>,
    String: Type<R::Database>,
    for<'r> bool: Decode<'r, R::Database>,
    bool: Type<R::Database>,
{
    type Error = sqlx::Error;

    fn get_i64(&self, col: &str) -> Result<i64, sqlx::Error> {
        self.try_get::<i64, _>(col)
    }

    fn get_opt_i64(&self, col: &str) -> Result<Option<i64>, sqlx::Error> {
        self.try_get::<Option<i64>, _>(col)
    }

    fn get_text(&self, col: &str) -> Result<String, sqlx::Error> {
        self.try_get::<String, _>(col)
    }

    fn get_opt_text(&self, col: &str) -> Result<Option<String>, sqlx::Error> {
        self.try_get::<Option<String>, _>(col)
    }

    fn get_bool(&self, col: &str) -> Result<bool, sqlx::Error> {
        self.try_get::<bool, _>(col)
    }

    fn invalid(message: String) -> sqlx::Error {
        sqlx::Error::Decode(message.into())
    }
}

impl<R> RowExt for R
where
    R: Row + Columns<Error = sqlx::Error>,
    usize: ColumnIndex<R>,
    for<'r> i64: Decode<'r, R::Database>,
    i64: Type<R::Database>,
    for<'r> String: Decode<'r, R::Database>,
    String: Type<R::Database>,
    for<'r> bool: Decode<'r, R::Database>,
    bool: Type<R::Database>,
{
    fn cell(&self, i: usize, kind: Kind) -> Result<Cell, sqlx::Error> {
        Ok(match kind {
            Kind::Int => self
                .try_get::<Option<i64>, _>(i)?
                .map_or(Cell::Null, Cell::Int),
            Kind::Text => self
                .try_get::<Option<String>, _>(i)?
                .map_or(Cell::Null, Cell::Text),
            Kind::Bool => self
                .try_get::<Option<bool>, _>(i)?
                .map_or(Cell::Null, Cell::Bool),
        })
    }
}

pub fn app_from_row<R: Columns>(row: &R) -> Result<Application, R::Error> {
    Ok(Application {
        id: row.get_i64("id")?,
        application_id: row.get_text("uid")?,
        name: row.get_text("name")?,
        redirect_uri: row.get_text("redirect_uri")?,
        scopes: Scopes::from_stored(&row.get_text("scopes")?),
        confidential: row.get_bool("confidential")?,
        trusted: row.get_bool("trusted")?,
        owner_id: row.get_opt_i64("owner_id")?,
        created_at: row.get_i64("created_at")?,
        dynamic: row.get_bool("dynamic")?,
        grant_types: latchkey_core::application::split_grant_types(
            row.get_opt_text("grant_types")?,
        ),
    })
}

/// A user from columns named `{prefix}id`, `{prefix}username`, …
pub fn user_from_row<R: Columns>(row: &R, prefix: &str) -> Result<User, R::Error> {
    let col = |c: &str| format!("{prefix}{c}");
    Ok(User {
        id: row.get_i64(&col("id"))?,
        username: row.get_text(&col("username"))?,
        email: row.get_text(&col("email"))?,
        name: row.get_text(&col("name"))?,
        admin: row.get_bool(&col("admin"))?,
        state: UserState::parse(&row.get_text(&col("state"))?),
        created_at: row.get_i64(&col("created_at"))?,
    })
}

pub fn token_from_row<R: Columns>(row: &R) -> Result<PersonalAccessToken, R::Error> {
    let expires_at = match row.get_opt_text("expires_at")? {
        Some(d) => {
            Some(latchkey_core::token::parse_expiry(&d).map_err(|e| R::invalid(e.to_string()))?)
        }
        None => None,
    };
    Ok(PersonalAccessToken {
        id: row.get_i64("id")?,
        user_id: row.get_i64("user_id")?,
        name: row.get_text("name")?,
        scopes: Scopes::from_stored(&row.get_text("scopes")?),
        expires_at,
        revoked: row.get_bool("revoked")?,
        created_at: row.get_i64("created_at")?,
    })
}

pub fn grant_from_row<R: Columns>(row: &R) -> Result<Grant, R::Error> {
    Ok(Grant {
        id: row.get_i64("id")?,
        application_id: row.get_i64("application_id")?,
        user_id: row.get_i64("user_id")?,
        redirect_uri: row.get_text("redirect_uri")?,
        scopes: Scopes::from_stored(&row.get_text("scopes")?),
        code_challenge: row.get_opt_text("code_challenge")?,
        code_challenge_method: row
            .get_opt_text("code_challenge_method")?
            .as_deref()
            .and_then(PkceMethod::parse),
        nonce: row.get_opt_text("nonce")?,
        created_at: row.get_i64("created_at")?,
        expires_at: row.get_i64("expires_at")?,
        redeemed_at: row.get_opt_i64("redeemed_at")?,
        auth_time: row.get_opt_i64("auth_time")?,
    })
}

/// An OAuth token from columns named `{prefix}id`, … (with `has_refresh`).
pub fn oauth_token_from_row<R: Columns>(row: &R, prefix: &str) -> Result<OAuthToken, R::Error> {
    let col = |c: &str| format!("{prefix}{c}");
    Ok(OAuthToken {
        id: row.get_i64(&col("id"))?,
        application_id: row.get_i64(&col("application_id"))?,
        user_id: row.get_opt_i64(&col("user_id"))?,
        scopes: Scopes::from_stored(&row.get_text(&col("scopes"))?),
        created_at: row.get_i64(&col("created_at"))?,
        expires_at: row.get_i64(&col("expires_at"))?,
        revoked_at: row.get_opt_i64(&col("revoked_at"))?,
        refreshed_at: row.get_opt_i64(&col("refreshed_at"))?,
        has_refresh_token: row.get_bool(&col("has_refresh"))?,
        family: row.get_text(&col("family"))?,
        previous_token_id: row.get_opt_i64(&col("previous_token_id"))?,
        grant_id: row.get_opt_i64(&col("grant_id"))?,
        auth_time: row.get_opt_i64(&col("auth_time"))?,
    })
}

pub fn device_from_row<R: Columns>(row: &R) -> Result<DeviceGrant, R::Error> {
    Ok(DeviceGrant {
        id: row.get_i64("id")?,
        application_id: row.get_i64("application_id")?,
        user_code: row.get_text("user_code")?,
        scopes: Scopes::from_stored(&row.get_text("scopes")?),
        created_at: row.get_i64("created_at")?,
        expires_at: row.get_i64("expires_at")?,
        last_polled_at: row.get_opt_i64("last_polled_at")?,
        user_id: row.get_opt_i64("user_id")?,
        status: DeviceStatus::parse(&row.get_text("status")?),
        auth_time: row.get_opt_i64("auth_time")?,
    })
}

pub fn key_from_row<R: Columns>(row: &R) -> Result<SigningKey, R::Error> {
    Ok(SigningKey {
        id: row.get_i64("id")?,
        kid: row.get_text("kid")?,
        algorithm: row.get_text("algorithm")?,
        private_pem: row.get_text("private_pem")?,
        public_n: row.get_text("public_n")?,
        public_e: row.get_text("public_e")?,
        created_at: row.get_i64("created_at")?,
        retired_at: row.get_opt_i64("retired_at")?,
    })
}

/// Every column of `table` from a row, in the table's column order.
pub fn cells<R: RowExt>(row: &R, columns: &[(&str, Kind)]) -> Result<Vec<Cell>, sqlx::Error> {
    columns
        .iter()
        .enumerate()
        .map(|(i, (_, k))| row.cell(i, *k))
        .collect()
}
