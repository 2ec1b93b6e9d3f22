//! The services handlers and the CLI call. They combine validation,
//! secret generation and storage; they know nothing of HTTP or SQL.

use std::sync::Arc;

use futures::stream::BoxStream;
use time::Date;

use crate::application::{
    self, Application, ApplicationParams, NewApplication, Ownership, ValidationErrors,
};
use crate::clock::{unix_millis, Clock};
use crate::pagination::PageRequest;
use crate::scopes::{ScopeSet, Scopes};
use crate::secret::{self, RandomError};
use crate::store::{Store, StoreError, TokenWithOwner};
use crate::token::{self, NewToken, PersonalAccessToken, PAT_PREFIX};
use crate::user::{self, NewUser, User};

/// Settings the services need.
#[derive(Debug, Clone)]
pub struct Config {
    pub scopes: ScopeSet,
    /// Put before the 64 hex characters of every application secret.
    pub secret_prefix: String,
    /// GitLab's Admin Mode: an admin's token also needs `admin_mode`.
    pub admin_mode: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            scopes: ScopeSet::default(),
            secret_prefix: "gloas-".to_owned(),
            admin_mode: false,
        }
    }
}

/// What went wrong in a service call.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("validation failed")]
    Validation(ValidationErrors),
    #[error("not found")]
    NotFound,
    /// A rule refused the input; the text says which.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Random(#[from] RandomError),
}

/// Why a presented token does not authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRejection {
    Unknown,
    Expired,
    Revoked,
}

/// A newly made secret, shown once and never stored.
#[derive(Debug, Clone)]
pub struct Plaintext(pub String);

/// The result of first-start bootstrap.
#[derive(Debug, Clone)]
pub struct Bootstrapped {
    pub user: User,
    pub password: Option<Plaintext>,
    pub token: Plaintext,
}

#[derive(Clone)]
pub struct Services {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    config: Arc<Config>,
}

impl Services {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, config: Config) -> Self {
        Self {
            store,
            clock,
            config: Arc::new(config),
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    fn now_ms(&self) -> i64 {
        unix_millis(self.clock.now())
    }

    fn today(&self) -> Date {
        self.clock.now().date()
    }

    fn new_application_secret(&self) -> Result<Plaintext, RandomError> {
        Ok(Plaintext(format!(
            "{}{}",
            self.config.secret_prefix,
            secret::random_hex(32)?
        )))
    }

    // --- applications -------------------------------------------------------

    /// Validate and store a new application; returns it with its secret.
    pub async fn create_application(
        &self,
        owner_id: Option<i64>,
        params: &ApplicationParams,
    ) -> Result<(Application, Plaintext), ServiceError> {
        let valid =
            application::validate(params, &self.config.scopes).map_err(ServiceError::Validation)?;
        let secret = self.new_application_secret()?;
        let app = self
            .store
            .insert_application(NewApplication {
                application_id: secret::random_hex(32)?,
                secret_digest: secret::digest(&secret.0),
                name: valid.name,
                redirect_uri: valid.redirect_uri,
                scopes: valid.scopes,
                confidential: valid.confidential,
                owner_id,
                created_at: self.now_ms(),
            })
            .await?;
        Ok((app, secret))
    }

    pub async fn list_instance_applications(
        &self,
        page: PageRequest,
    ) -> Result<(Vec<Application>, u64), ServiceError> {
        Ok(self.store.list_instance_applications(page).await?)
    }

    pub fn stream_instance_applications(
        &self,
    ) -> BoxStream<'static, Result<Application, StoreError>> {
        self.store.stream_instance_applications()
    }

    pub async fn delete_application(&self, id: i64, scope: Ownership) -> Result<(), ServiceError> {
        if self.store.delete_application(id, scope).await? {
            Ok(())
        } else {
            Err(ServiceError::NotFound)
        }
    }

    /// A new secret; the old one stops working at once.
    pub async fn renew_application_secret(
        &self,
        id: i64,
        scope: Ownership,
    ) -> Result<(Application, Plaintext), ServiceError> {
        let secret = self.new_application_secret()?;
        let app = self
            .store
            .renew_application_secret(id, scope, &secret::digest(&secret.0))
            .await?
            .ok_or(ServiceError::NotFound)?;
        Ok((app, secret))
    }

    /// The application whose client_id and secret these are, if they match.
    /// The digest comparison is constant-time.
    pub async fn verify_client_secret(
        &self,
        application_id: &str,
        presented_secret: &str,
    ) -> Result<Option<Application>, ServiceError> {
        let found = self.store.find_application_by_uid(application_id).await?;
        Ok(found
            .filter(|(_, digest)| secret::verify(presented_secret, digest))
            .map(|(app, _)| app))
    }

    // --- authentication -------------------------------------------------------

    /// Who does this token belong to, and may it be used now?
    pub async fn authenticate_token(
        &self,
        presented: &str,
    ) -> Result<Result<TokenWithOwner, TokenRejection>, StoreError> {
        let digest = secret::digest(presented);
        let Some(found) = self.store.find_token_by_digest(&digest).await? else {
            return Ok(Err(TokenRejection::Unknown));
        };
        if found.token.revoked {
            return Ok(Err(TokenRejection::Revoked));
        }
        if found.token.is_expired(self.today()) {
            return Ok(Err(TokenRejection::Expired));
        }
        Ok(Ok(found))
    }

    // --- users and tokens -------------------------------------------------------

    /// Create a user. The password is hashed here: call from a blocking
    /// context or accept the cost (Argon2id is slow on purpose).
    pub async fn create_user(
        &self,
        username: &str,
        email: &str,
        name: &str,
        password: Option<&str>,
        admin: bool,
    ) -> Result<User, ServiceError> {
        let new = self.new_user(username, email, name, password, admin)?;
        Ok(self.store.insert_user(new).await?)
    }

    fn new_user(
        &self,
        username: &str,
        email: &str,
        name: &str,
        password: Option<&str>,
        admin: bool,
    ) -> Result<NewUser, ServiceError> {
        user::check_username(username).map_err(ServiceError::Invalid)?;
        user::check_email(email).map_err(ServiceError::Invalid)?;
        if name.trim().is_empty() || name.chars().count() > 255 {
            return Err(ServiceError::Invalid(
                "name must be 1 to 255 characters".to_owned(),
            ));
        }
        let password_digest = match password {
            Some(p) => {
                user::check_password_strength(p).map_err(ServiceError::Invalid)?;
                Some(user::hash_password(p).map_err(ServiceError::Invalid)?)
            }
            None => None,
        };
        Ok(NewUser {
            username: username.to_owned(),
            email: email.to_owned(),
            name: name.to_owned(),
            password_digest,
            admin,
            created_at: self.now_ms(),
        })
    }

    pub async fn find_user_by_username(
        &self,
        username: &str,
    ) -> Result<Option<User>, ServiceError> {
        Ok(self.store.find_user_by_username(username).await?)
    }

    fn new_token(
        &self,
        user_id: i64,
        name: &str,
        scopes: &str,
        expires_at: Option<Date>,
        value: Option<&str>,
    ) -> Result<(NewToken, Plaintext), ServiceError> {
        if name.trim().is_empty() || name.chars().count() > 255 {
            return Err(ServiceError::Invalid(
                "token name must be 1 to 255 characters".to_owned(),
            ));
        }
        let scopes = Scopes::parse(scopes, &self.config.scopes).ok_or_else(|| {
            ServiceError::Invalid(format!(
                "scopes {scopes:?} are empty or not configured on the server (configured: {})",
                self.config.scopes.names().join(" ")
            ))
        })?;
        if let Some(d) = expires_at {
            if d < self.today() {
                return Err(ServiceError::Invalid(
                    "expires_at is in the past".to_owned(),
                ));
            }
        }
        let plaintext = match value {
            Some(v) => {
                token::check_token_value(v).map_err(ServiceError::Invalid)?;
                v.to_owned()
            }
            None => format!("{PAT_PREFIX}{}", secret::random_hex(32)?),
        };
        Ok((
            NewToken {
                user_id,
                name: name.to_owned(),
                digest: secret::digest(&plaintext),
                scopes,
                expires_at,
                created_at: self.now_ms(),
            },
            Plaintext(plaintext),
        ))
    }

    /// A personal access token for `user_id`; the plaintext is returned once.
    pub async fn create_token(
        &self,
        user_id: i64,
        name: &str,
        scopes: &str,
        expires_at: Option<Date>,
    ) -> Result<(PersonalAccessToken, Plaintext), ServiceError> {
        let (new, plaintext) = self.new_token(user_id, name, scopes, expires_at, None)?;
        let token = self.store.insert_token(new).await?;
        Ok((token, plaintext))
    }

    /// On first start with no users: create the admin `root` with a token
    /// scoped `api read_api read_user sudo admin_mode`. Chosen values are
    /// checked and refused when weak; missing ones are generated.
    /// `Ok(None)` when users already exist.
    pub async fn bootstrap_root(
        &self,
        password: Option<&str>,
        token_value: Option<&str>,
    ) -> Result<Option<Bootstrapped>, ServiceError> {
        if let Some(p) = password {
            user::check_password_strength(p).map_err(|e| {
                ServiceError::Invalid(format!("LATCHKEY_ROOT_PASSWORD refused: {e}"))
            })?;
        }
        if let Some(t) = token_value {
            token::check_token_value(t)
                .map_err(|e| ServiceError::Invalid(format!("LATCHKEY_ROOT_TOKEN refused: {e}")))?;
        }
        if self.store.find_user_by_username("root").await?.is_some() {
            return Ok(None);
        }
        let generated_password = match password {
            Some(_) => None,
            None => Some(Plaintext(secret::random_hex(16)?)),
        };
        let chosen = password.or(generated_password.as_ref().map(|p| p.0.as_str()));
        let new_user =
            self.new_user("root", "root@latchkey.local", "Administrator", chosen, true)?;
        let (new_token, token_plain) = self.new_token(
            0,
            "bootstrap",
            "api read_api read_user sudo admin_mode",
            None,
            token_value,
        )?;
        Ok(self
            .store
            .bootstrap_first_user(new_user, new_token)
            .await?
            .map(|(user, _)| Bootstrapped {
                user,
                password: generated_password,
                token: token_plain,
            }))
    }
}
