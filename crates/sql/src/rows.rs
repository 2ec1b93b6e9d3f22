//! Turning rows into latchkey's domain types, the same way for every SQL
//! backend: the schemas are identical (a conformance test checks it).

use latchkey_core::application::Application;
use latchkey_core::oauth::{
    DeviceGrant, DeviceStatus, Grant, OAuthToken, OAuthTokenFound, PkceMethod,
};
use latchkey_core::oidc::SigningKey;
use latchkey_core::scopes::Scopes;
use latchkey_core::store::{StoreError, TokenWithOwner};
use latchkey_core::token::PersonalAccessToken;
use latchkey_core::user::{Profile, User, UserState};

use crate::conn::{invalid, Row};

pub fn app_from_row(row: &mut Row) -> Result<Application, StoreError> {
    Ok(Application {
        id: row.int("id")?,
        application_id: row.text("uid")?,
        name: row.text("name")?,
        redirect_uri: row.text("redirect_uri")?,
        scopes: Scopes::from_stored(&row.text("scopes")?),
        confidential: row.bool("confidential")?,
        trusted: row.bool("trusted")?,
        owner_id: row.opt_int("owner_id")?,
        group_id: row.opt_int("group_id")?,
        created_at: row.int("created_at")?,
        dynamic: row.bool("dynamic")?,
        grant_types: latchkey_core::application::split_grant_types(row.opt_text("grant_types")?),
        client_secret_id: None,
    })
}

/// A user from columns named `{prefix}id`, `{prefix}username`, …
pub fn user_from_row(row: &mut Row, prefix: &str) -> Result<User, StoreError> {
    let col = |c: &str| format!("{prefix}{c}");
    let created_at = row.int(&col("created_at"))?;
    Ok(User {
        id: row.int(&col("id"))?,
        username: row.text(&col("username"))?,
        email: row.text(&col("email"))?,
        name: row.text(&col("name"))?,
        admin: row.bool(&col("admin"))?,
        state: UserState::parse(&row.text(&col("state"))?),
        created_at,
        external: row.bool(&col("external"))?,
        updated_at: row.opt_int(&col("updated_at"))?.unwrap_or(created_at),
        // A profile that does not read back must not lock its user out.
        profile: Profile::from_stored(row.opt_text(&col("profile"))?.as_deref()).unwrap_or_else(
            |e| {
                tracing::warn!(error = %e, "a stored user profile is not valid; shown empty");
                Profile::default()
            },
        ),
        avatar: row.opt_text(&col("avatar"))?,
    })
}

pub fn token_from_row(row: &mut Row) -> Result<PersonalAccessToken, StoreError> {
    let expires_at = match row.opt_text("expires_at")? {
        Some(d) => {
            Some(latchkey_core::token::parse_expiry(&d).map_err(|e| invalid(e.to_string()))?)
        }
        None => None,
    };
    Ok(PersonalAccessToken {
        id: row.int("id")?,
        user_id: row.int("user_id")?,
        name: row.text("name")?,
        scopes: Scopes::from_stored(&row.text("scopes")?),
        expires_at,
        revoked: row.bool("revoked")?,
        created_at: row.int("created_at")?,
        last_used_at: row.opt_int("last_used_at")?,
    })
}

pub fn grant_from_row(row: &mut Row) -> Result<Grant, StoreError> {
    Ok(Grant {
        id: row.int("id")?,
        application_id: row.int("application_id")?,
        user_id: row.int("user_id")?,
        redirect_uri: row.text("redirect_uri")?,
        scopes: Scopes::from_stored(&row.text("scopes")?),
        code_challenge: row.opt_text("code_challenge")?,
        code_challenge_method: row
            .opt_text("code_challenge_method")?
            .as_deref()
            .and_then(PkceMethod::parse),
        nonce: row.opt_text("nonce")?,
        created_at: row.int("created_at")?,
        expires_at: row.int("expires_at")?,
        redeemed_at: row.opt_int("redeemed_at")?,
        auth_time: row.opt_int("auth_time")?,
    })
}

/// An OAuth token from columns named `{prefix}id`, … (with `has_refresh`).
pub fn oauth_token_from_row(row: &mut Row, prefix: &str) -> Result<OAuthToken, StoreError> {
    let col = |c: &str| format!("{prefix}{c}");
    Ok(OAuthToken {
        id: row.int(&col("id"))?,
        application_id: row.int(&col("application_id"))?,
        user_id: row.opt_int(&col("user_id"))?,
        scopes: Scopes::from_stored(&row.text(&col("scopes"))?),
        created_at: row.int(&col("created_at"))?,
        expires_at: row.int(&col("expires_at"))?,
        revoked_at: row.opt_int(&col("revoked_at"))?,
        refreshed_at: row.opt_int(&col("refreshed_at"))?,
        has_refresh_token: row.bool(&col("has_refresh"))?,
        family: row.text(&col("family"))?,
        previous_token_id: row.opt_int(&col("previous_token_id"))?,
        grant_id: row.opt_int(&col("grant_id"))?,
        auth_time: row.opt_int(&col("auth_time"))?,
    })
}

pub fn device_from_row(row: &mut Row) -> Result<DeviceGrant, StoreError> {
    Ok(DeviceGrant {
        id: row.int("id")?,
        application_id: row.int("application_id")?,
        user_code: row.text("user_code")?,
        scopes: Scopes::from_stored(&row.text("scopes")?),
        created_at: row.int("created_at")?,
        expires_at: row.int("expires_at")?,
        last_polled_at: row.opt_int("last_polled_at")?,
        user_id: row.opt_int("user_id")?,
        // A redeemed grant keeps the status it was approved with.
        status: match row.opt_int("redeemed_at")? {
            Some(_) => DeviceStatus::Redeemed,
            None => DeviceStatus::parse(&row.text("status")?),
        },
        auth_time: row.opt_int("auth_time")?,
    })
}

pub fn key_from_row(row: &mut Row) -> Result<SigningKey, StoreError> {
    Ok(SigningKey {
        id: row.int("id")?,
        kid: row.text("kid")?,
        algorithm: row.text("algorithm")?,
        private_pem: row.text("private_pem")?,
        public_n: row.text("public_n")?,
        public_e: row.text("public_e")?,
        created_at: row.int("created_at")?,
        retired_at: row.opt_int("retired_at")?,
    })
}

/// An OAuth token with its application and (optional) user.
pub fn oauth_found(row: &mut Row) -> Result<OAuthTokenFound, StoreError> {
    let user = match row.opt_int("u_id")? {
        Some(_) => Some(user_from_row(row, "u_")?),
        None => None,
    };
    Ok(OAuthTokenFound {
        token: oauth_token_from_row(row, "t_")?,
        application: app_from_row(row)?,
        user,
    })
}

/// A personal access token with its owner.
pub fn token_with_owner(row: &mut Row) -> Result<TokenWithOwner, StoreError> {
    Ok(TokenWithOwner {
        token: token_from_row(row)?,
        user: user_from_row(row, "u_")?,
    })
}
